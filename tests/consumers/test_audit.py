"""consumers/audit.py: every kind of drift between the catalog and a store (compile logs and
bundles included), found and (where safe) repaired."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from pathlib import Path

import github
import pytest
from attestations import bundle_for
from buildreports import Spec, build_with_logs, specs, write_report
from commandline import cli
from fakegithub import FakeGitHub, Fault
from fakeprobe import fake_probe_bytes
from githubstore import make_store
from loopback import get, http_server
from publishing import directory_store, publish_all

from builder.cli import main
from builder.consumers.audit import (
    DRAFT,
    MISMATCH,
    MISSING,
    MISSING_ATTESTATION,
    MISSING_LOG,
    MISSING_PATH,
    NOT_IN_CATALOG,
    REPAIRABLE,
    STARTER,
    AuditReport,
    audit,
    report_probes,
)
from builder.core.catalog import load_catalog, merge_into
from builder.core.versions import BUILTIN_RELEASES
from builder.publish.stage import FragmentFile, Provenance, load_reports, publish
from builder.publish.stores import Budget
from builder.publish.stores.assetnames import asset_name
from builder.publish.stores.directory import DirectoryStore
from builder.publish.stores.github import GitHubStore
from builder.publish.stores.githubapi import GitHubApi, GitHubSettings

TOKEN = "ghp_auditToken0123456789"
ALIASED = Spec("5.15.0-1034-aws", "38~20.04.1", driver_version="5.0.1+driver",
               target="ubuntu-aws", aliases=("falco_ubuntu-aws_5.15.0-1034-aws_38.o",))


def kinds(result: AuditReport) -> dict[str, int]:
    return {k: v for k, v in result.as_dict()["counts"].items() if v}


# --- directory store -----------------------------------------------------------------------------

@pytest.fixture
def published_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                  ) -> tuple[Path, Path, DirectoryStore]:
    """A directory store with 4 probes (one aliased) and the catalog that lists them."""
    monkeypatch.chdir(tmp_path)  # no probes.yaml here
    write_report(tmp_path / "build", [*specs(3), ALIASED])
    store = DirectoryStore(tmp_path / "store", BUILTIN_RELEASES.falco_for)
    items, _ = load_reports([tmp_path / "build"], Provenance())
    with FragmentFile(tmp_path / "f.jsonl") as fragment:
        publish(items, [], store, fragment)
    merge_into(tmp_path / "catalog", [tmp_path / "f.jsonl"])
    return tmp_path / "catalog", tmp_path / "store", store


def test_clean_directory_store(published_dir: tuple[Path, Path, DirectoryStore],
                               capsys: pytest.CaptureFixture[str]) -> None:
    catalog, root, store = published_dir
    result = audit(load_catalog(catalog), store)
    assert (result.checked, result.ok, result.drifts) == (4, 4, [])
    assert main(["audit", "--path", str(root), "--catalog", str(catalog)]) == 0
    assert "4 catalogued probe(s) checked, 4 ok" in capsys.readouterr().err


def test_every_drift_in_a_directory_store(published_dir: tuple[Path, Path, DirectoryStore],
                                          tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                          ) -> None:
    catalog_dir, root, store = published_dir
    catalog = load_catalog(catalog_dir)
    probes = sorted(catalog.probes(), key=lambda p: p.kernel_release)
    gone, changed, aliased = probes[0], probes[1], next(p for p in probes if p.aliases)
    (root / store.expected_keys(gone)[0]).unlink()                       # missing
    target = root / store.expected_keys(changed)[0]
    target.unlink()
    target.write_bytes(fake_probe_bytes("tampered"))                      # mismatch
    (root / store.expected_keys(aliased)[1]).unlink()                    # missing_path
    # a probe in the store that the catalog lost, and a build report that names it
    write_report(tmp_path / "lost", specs(1, start=50))
    lost = report_probes([tmp_path / "lost"])
    lost_file = tmp_path / "lost" / "probes" / "6.0.1+driver" / "x86_64" / \
        lost[0].kernel_release / lost[0].file
    store.place(lost_file, lost[0])
    (root / "6.0.1+driver" / "x86_64" / "falco_stray_1.0_1.o").write_bytes(b"stray")

    result = audit(catalog, store, reported=lost)
    assert kinds(result) == {MISSING: 1, MISMATCH: 1, MISSING_PATH: 1, REPAIRABLE: 1,
                             NOT_IN_CATALOG: 1}
    assert [p.file for p in result.repairs] == [lost[0].file]
    assert result.repairs[0].url == store.url_for_path(store.expected_keys(lost[0])[0])

    argv = ["audit", "--path", str(root), "--catalog", str(catalog_dir), "--report",
            str(tmp_path / "lost"), "--repair", "--fragment", str(tmp_path / "repair.jsonl")]
    assert main(argv) == 1  # missing, mismatch and the stray file stay
    out = capsys.readouterr().out
    assert "repairable (repaired):" in out and "missing_path (repaired):" in out
    assert "mismatch:" in out and "not_in_catalog:" in out
    assert (root / store.expected_keys(aliased)[1]).exists()  # relinked
    merge_into(catalog_dir, [tmp_path / "repair.jsonl"])
    after = audit(load_catalog(catalog_dir), store)
    assert kinds(after) == {MISSING: 1, MISMATCH: 1, NOT_IN_CATALOG: 1}


# --- GitHub store ------------------------------------------------------------------------------

@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    with FakeGitHub(token=TOKEN) as server:
        yield server


def github_store(fake: FakeGitHub, *, immutable: bool = False, repo: str = "acme/probes",
                 cap: int = 900) -> GitHubStore:
    settings = GitHubSettings(fake.api_url, repo, TOKEN, write_interval=0, retry_delay=0)
    return GitHubStore(GitHubApi(settings, Budget(), sleep=lambda s: None), cap=cap,
                       immutable=immutable)


def test_every_drift_in_github_releases(fake: FakeGitHub, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    write_report(tmp_path / "build", specs(5))
    items, _ = load_reports([tmp_path / "build"], Provenance())
    with FragmentFile(tmp_path / "f.jsonl") as fragment:
        publish(items, [], github_store(fake, cap=3), fragment)
    merge_into(tmp_path / "catalog", [tmp_path / "f.jsonl"])
    catalog = load_catalog(tmp_path / "catalog")
    fake.clear_calls()
    clean = audit(catalog, github_store(fake))
    assert (clean.checked, clean.ok, clean.stored, clean.drifts) == (5, 5, 5, [])
    assert fake.count() == 1 + 1 + 2  # repository, releases, assets of each release

    gh = github.Github(base_url=fake.api_url, auth=github.Auth.Token(TOKEN), retry=None,
                       seconds_between_requests=None, seconds_between_writes=None)
    release = gh.get_repo("acme/probes").get_release(
        next(r["id"] for r in fake.releases() if r["tag_name"].endswith("-002")))
    by_name = {a.name: a for r in gh.get_repo("acme/probes").get_releases()
               for a in r.get_assets()}
    by_name[asset_name(items[0].file)].delete_asset()                            # missing
    by_name[asset_name(items[1].file)].delete_asset()
    release.upload_asset_from_memory(io.BytesIO(b"other"), 5, asset_name(items[1].file))
    write_report(tmp_path / "lost", specs(2, start=70))                         # repairable
    lost = report_probes([tmp_path / "lost"])
    for probe in lost[:1]:
        data = (tmp_path / "lost" / "probes" / "6.0.1+driver" / "x86_64" /
                probe.kernel_release / probe.file)
        release.upload_asset_from_memory(io.BytesIO(data.read_bytes()), data.stat().st_size,
                                         asset_name(probe.file))
    release.upload_asset_from_memory(io.BytesIO(b"?"), 1, "unknown.o")         # not in catalog
    fake.inject(Fault("POST", r"/assets$", leave_starter=True))
    with pytest.raises(github.GithubException):
        release.upload_asset_from_memory(io.BytesIO(b"x"), 1, "half.o")       # starter

    result = audit(catalog, github_store(fake), reported=lost)
    assert kinds(result) == {MISSING: 1, MISMATCH: 1, REPAIRABLE: 1, NOT_IN_CATALOG: 1,
                             STARTER: 1}
    assert result.repairs[0].release.endswith("-002")

    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    argv = ["audit", "--store", "github", "--api-url", fake.api_url, "--repository",
            "acme/probes", "--catalog", str(tmp_path / "catalog"), "--report",
            str(tmp_path / "lost"), "--repair", "--fragment", str(tmp_path / "r.jsonl"),
            "--json"]
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["repaired"] == 1 and report["remaining"] == 4 and not report["clean"]
    merge_into(tmp_path / "catalog", [tmp_path / "r.jsonl"])
    assert len(list(load_catalog(tmp_path / "catalog").probes())) == 6
    assert TOKEN not in json.dumps(report)


def test_draft_left_by_an_interrupted_immutable_run(fake: FakeGitHub, tmp_path: Path) -> None:
    fake.add_repo("acme/locked", immutable_releases=True)
    write_report(tmp_path / "build", specs(2))
    items, _ = load_reports([tmp_path / "build"], Provenance())
    store = github_store(fake, immutable=True, repo="acme/locked")
    for item in items:
        store.publish(item, lambda a, p: None)  # killed before the draft was published
    result = audit(load_catalog(tmp_path / "empty"), github_store(fake, repo="acme/locked"))
    assert kinds(result) == {DRAFT: 2}
    assert all("next publish run publishes it" in d.message for d in result.drifts)


def test_repair_needs_a_fragment(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["audit", "--path", str(tmp_path), "--repair"]) == 2
    assert "--repair needs --fragment" in capsys.readouterr().err


def test_audit_only_one_driver_version(published_dir: tuple[Path, Path, DirectoryStore]) -> None:
    catalog, _root, store = published_dir
    result = audit(load_catalog(catalog), store, driver_version="5.0.1+driver")
    assert (result.checked, result.ok, result.drifts) == (1, 1, [])
    assert result.stored == len(store.expected_keys(next(
        p for p in load_catalog(catalog).probes() if p.driver_version == "5.0.1+driver")))
    assert os.path.isdir(catalog)


def test_audit_lists_a_fifo_in_the_store_without_reading_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "store" / "5.0.1+driver" / "x86_64"
    store.mkdir(parents=True)
    os.mkfifo(store / "falco_debian_6.1.0-1-amd64_1.o")
    (store / "link.o").symlink_to("/dev/zero")
    code, out, _ = cli(["audit", "--path", str(tmp_path / "store"), "--catalog",
                        str(tmp_path / "c")], capsys)
    assert code == 1
    assert out.splitlines() == [
        "not_in_catalog: 5.0.1+driver/x86_64/falco_debian_6.1.0-1-amd64_1.o: a symbolic link "
        "or special file (FIFO, device) in the store; not read",
        "not_in_catalog: 5.0.1+driver/x86_64/link.o: a symbolic link or special file (FIFO, "
        "device) in the store; not read"]


def test_served_by_a_static_server_and_audited(tmp_path: Path) -> None:
    results = build_with_logs(tmp_path / "build", specs(1), failures=specs(1, start=5))
    bundle = bundle_for(tmp_path / "build", results, tmp_path / "a.json")
    root = tmp_path / "store"
    with http_server(root.parent) as base:
        store = directory_store(root)
        store.base_url = f"{base}/store"
        probes, failures = publish_all(tmp_path / "build", store, tmp_path / "f.jsonl",
                                       [bundle])
        assert get(probes[0].log).decode().startswith("clang log")
        assert json.loads(get(probes[0].attestation))["mediaType"].startswith(
            "application/vnd.dev.sigstore.bundle")
        assert b"ok=False" in get(failures[0].log)
    merge_into(tmp_path / "catalog", [tmp_path / "f.jsonl"])
    catalog = load_catalog(tmp_path / "catalog")
    store = directory_store(root)
    store.base_url = probes[0].url.split("/6.0.1")[0]
    assert audit(catalog, store).drifts == []               # sidecars are not strays
    (root / "logs" / "6.0.1+driver" / "x86_64" / f"{probes[0].file}.log").unlink()
    next(root.glob("6.0.1+driver/x86_64/*.sigstore.json")).unlink()
    kinds = sorted(d.kind for d in audit(catalog, store).drifts)
    assert kinds == [MISSING_ATTESTATION, MISSING_LOG]


def test_github_audit_finds_a_deleted_log(fake: FakeGitHub, tmp_path: Path) -> None:
    results = build_with_logs(tmp_path / "build", specs(1))
    bundle = bundle_for(tmp_path / "build", results, tmp_path / "a.json")
    probes, _ = publish_all(tmp_path / "build", make_store(fake), tmp_path / "f.jsonl", [bundle])
    merge_into(tmp_path / "catalog", [tmp_path / "f.jsonl"])
    store = make_store(fake)
    release = store.api.repo.get_release(probes[0].release)
    for asset in release.get_assets():
        if asset.name.endswith(".log"):
            asset.delete_asset()
    drifts = audit(load_catalog(tmp_path / "catalog"), make_store(fake)).drifts
    assert [(d.kind, d.url) for d in drifts] == [(MISSING_LOG, probes[0].log)]
