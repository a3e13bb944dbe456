"""Compile logs and provenance bundles kept beside the probes in both stores: published with
them, linked from the records, served over HTTP, audited, mirrored, and checked by verify."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from attestations import subject_of, unsigned_bundle
from fakegithub import FakeGitHub
from test_publish import (
    Spec,
    directory_store,
    fragment_records,
    rewrite_report,
    specs,
    write_report,
)
from test_store_directory import http_server
from test_store_github import TOKEN, assets_by_name, make_store

from builder.cli import main
from builder.consumers.audit import MISSING_ATTESTATION, MISSING_LOG, audit
from builder.consumers.verify import (
    BAD_SIGNATURE,
    NOT_ATTESTED,
    OK,
    UNATTESTED,
    AttestationPolicy,
    index_from_catalog,
    verify_file,
)
from builder.core.catalog import fragment_line, load_catalog, merge_into
from builder.core.naming import host_from_inputs, probe_name
from builder.core.records import FailureRecord, ProbeRecord
from builder.core.report import BuildResult
from builder.core.versions import FalcoVersion
from builder.publish.attest import Subject, load_bundles, subject_name
from builder.publish.stage import FragmentFile, Provenance, load_reports, publish
from builder.publish.stores import Budget, Store
from builder.publish.stores.assetnames import asset_name

JOB = "https://github.com/acme/probes/actions/runs/7/job/99"


def build_with_logs(folder: Path, probes: list[Spec], failures: list[Spec] = ()) -> \
        list[BuildResult]:
    """A build folder whose results name their job and have real compile logs."""
    results = write_report(folder, probes, failures)
    out = []
    for result in results:
        rel = f"logs/{result.driver_version}/{result.arch}/{result.file}.log"
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(f"clang log of {result.file} ok={result.ok}\n")
        out.append(replace(result, log=rel, job=JOB, source="debian-package scap-dkms 1.0"))
    rewrite_report(folder, out)
    return out


def bundle_for(folder: Path, results: list[BuildResult], path: Path) -> Path:
    return unsigned_bundle(path, [Subject(subject_name(r.driver_version, r.arch, r.file),
                                          r.sha256) for r in results if r.ok])


def publish_all(folder: Path, store: Store, fragment: Path, bundles: list[Path] = (),
                ) -> tuple[list[ProbeRecord], list[FailureRecord]]:
    items, failures = load_reports([folder], Provenance(log="https://ci.example/run"),
                                   load_bundles(bundles))
    with FragmentFile(fragment) as handle:
        summary = publish(items, failures, store, handle)
    assert not summary.conflicts and summary.left == 0, summary
    return fragment_records(fragment)


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return bytes(response.read())


# --- directory store -------------------------------------------------------------------------

def test_directory_store_keeps_logs_and_bundles_beside_the_probes(tmp_path: Path) -> None:
    results = build_with_logs(tmp_path / "build", specs(2), failures=specs(1, start=5))
    bundle = bundle_for(tmp_path / "build", results, tmp_path / "att" / "attestation.json")
    root = tmp_path / "store"
    probes, failures = publish_all(tmp_path / "build", directory_store(root),
                                   tmp_path / "f.jsonl", [bundle])
    assert len(probes) == 2 and len(failures) == 1
    for probe in probes:
        folder = f"{probe.driver_version}/{probe.arch}"
        assert probe.job == JOB and probe.source == "debian-package scap-dkms 1.0"
        assert probe.log == (root / "logs" / folder / f"{probe.file}.log").as_uri().replace(
            "+", "%2B")
        assert (root / "logs" / folder / f"{probe.file}.log").read_text().startswith(
            f"clang log of {probe.file}")
        link = root / folder / f"{probe.file}.sigstore.json"
        assert probe.attestation == link.as_uri().replace("+", "%2B")
        assert link.samefile(next((root / "attestations").iterdir()))
    failure = failures[0]
    assert failure.job == JOB and failure.log.endswith(f"{failure.file}.attempt-2.log")
    assert "ok=False" in (root / "logs" / "6.0.1+driver" / "x86_64" /
                          f"{failure.file}.attempt-2.log").read_text()


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


def test_the_first_log_wins_and_sidecars_count_against_the_budget(tmp_path: Path) -> None:
    results = build_with_logs(tmp_path / "build", specs(2))
    bundle = bundle_for(tmp_path / "build", results, tmp_path / "a.json")
    root = tmp_path / "store"
    items, _ = load_reports([tmp_path / "build"], Provenance(),
                            load_bundles([bundle]))
    with FragmentFile(tmp_path / "f.jsonl") as fragment:
        summary = publish(items, [], directory_store(root, Budget(4)), fragment)
    # probe, log, bundle for the first (3 writes); the second probe is the 4th; its log stops
    assert (summary.uploaded, summary.stopped, summary.left) == (1, "budget", 1)
    log = root / "logs" / "6.0.1+driver" / "x86_64" / f"{results[0].file}.log"
    log.write_text("the published build's log\n")
    (tmp_path / "build" / results[0].log).write_text("a rebuild's log\n")
    with FragmentFile(tmp_path / "f.jsonl") as fragment:
        summary = publish(items, [], directory_store(root, Budget(10)), fragment)
    assert (summary.uploaded, summary.present, summary.skipped, summary.left) == (0, 1, 1, 0)
    assert log.read_text() == "the published build's log\n"
    probes, _ = fragment_records(tmp_path / "f.jsonl")
    assert all(p.log.endswith(".log") and p.attestation for p in probes)


def test_a_report_log_outside_its_folder_is_refused_and_a_missing_one_links_the_job(
        tmp_path: Path) -> None:
    results = build_with_logs(tmp_path / "build", specs(2))
    (tmp_path / "build" / results[1].log).unlink()
    items, _ = load_reports([tmp_path / "build"], Provenance())
    assert [i.log is None for i in items] == [False, True]
    assert items[1].probe.log == JOB                     # the job still has the log (90 days)
    rewrite_report(tmp_path / "build", [results[0], replace(results[1], log="../../etc/x")])
    assert main(["publish", "--store", "directory", "--path", str(tmp_path / "s"),
                 "--fragment", str(tmp_path / "f.jsonl"), str(tmp_path / "build")]) == 2


# --- GitHub releases -------------------------------------------------------------------------

@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    with FakeGitHub(token=TOKEN, owner="acme", repo="probes") as server:
        yield server


@pytest.mark.parametrize("immutable", [False, True], ids=["mutable", "immutable"])
def test_github_keeps_logs_and_the_bundle_in_the_probes_release(fake: FakeGitHub, tmp_path: Path,
                                                                immutable: bool) -> None:
    repo = "acme/locked" if immutable else "acme/probes"
    if immutable:
        fake.add_repo(repo, immutable_releases=True)
    results = build_with_logs(tmp_path / "build", specs(2), failures=specs(1, start=5))
    bundle = bundle_for(tmp_path / "build", results, tmp_path / "a.json")
    store = make_store(fake, immutable=immutable, repo=repo)
    probes, failures = publish_all(tmp_path / "build", store, tmp_path / "f.jsonl", [bundle])
    assets = assets_by_name(fake, repo)
    names = sorted(assets)
    assert len(names) == 6 and sum(n.endswith(".sigstore.json") for n in names) == 1
    assert len(fake.releases(repo)) == 1     # the failure's log shares the probes' (draft)
    assert all("untagged" not in url for p in probes for url in (p.url, p.log, p.attestation))
    for probe in probes:
        assert probe.log.endswith(f"/{asset_name(probe.file)}.log")
        assert probe.attestation.endswith(".sigstore.json")
        assert get(probe.log).decode() == f"clang log of {probe.file} ok=True\n"
        assert probe.release == probe.log.split("/download/")[1].split("/")[0]
    assert get(failures[0].log).decode().endswith("ok=False\n")
    assert failures[0].log.endswith(f"/{asset_name(failures[0].file)}.attempt-2.log")
    merge_into(tmp_path / "catalog", [tmp_path / "f.jsonl"])
    assert audit(load_catalog(tmp_path / "catalog"), make_store(fake, repo=repo)).drifts == []
    # A rerun finds everything and writes nothing.
    (tmp_path / "f.jsonl").unlink()
    fake.clear_calls()
    publish_all(tmp_path / "build", make_store(fake, immutable=immutable, repo=repo),
                tmp_path / "f.jsonl", [bundle])
    assert fake.count("POST") == 0


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


# --- mirror and verify -----------------------------------------------------------------------

def test_mirror_copies_bundles_and_verify_checks_them(fake: FakeGitHub, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    results = build_with_logs(tmp_path / "build", specs(3))
    ok = [r for r in results if r.ok]
    bundle = bundle_for(tmp_path / "build", ok[:2], tmp_path / "a.json")   # the third: none
    publish_all(tmp_path / "build", make_store(fake), tmp_path / "f.jsonl", [bundle])
    merge_into(tmp_path / "catalog", [tmp_path / "f.jsonl"])
    assert main(["mirror", str(tmp_path / "m"), "--catalog", "catalog"]) == 0
    mirrored = sorted((tmp_path / "m" / "6.0.1+driver" / "x86_64").glob("*.o"))
    beside = [p.with_name(p.name + ".sigstore.json") for p in mirrored]
    assert [b.is_file() for b in beside].count(True) == 2
    capsys.readouterr()
    assert main(["verify", "--catalog", "catalog", "--json", *map(str, mirrored)]) == 0
    files = json.loads(capsys.readouterr().out)["files"]
    assert sum(1 for f in files if f["attestation"] and f["attestation"]["attested"]) == 2
    assert main(["verify", "--catalog", "catalog", "--require-attestation",
                 *map(str, mirrored)]) == 1
    assert UNATTESTED in capsys.readouterr().out.lower()

    catalog = index_from_catalog(load_catalog(tmp_path / "catalog"))
    attested = next(p for p, b in zip(mirrored, beside, strict=True) if b.is_file())
    other = unsigned_bundle(tmp_path / "other.json", [subject_of(tmp_path / "a.json")])
    verdict = verify_file(attested, catalog, attestations=AttestationPolicy(bundle=other))
    assert verdict.status == NOT_ATTESTED
    verdict = verify_file(attested, catalog,
                          attestations=AttestationPolicy(repository="acme/probes"))
    assert verdict.status == BAD_SIGNATURE          # the test bundle is not signed
    verdict = verify_file(attested, catalog, attestations=AttestationPolicy())
    assert verdict.status == OK and "signature not checked" in verdict.message


def test_verify_fetches_the_bundle_a_record_links(fake: FakeGitHub, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    results = build_with_logs(tmp_path / "build", specs(1))
    bundle = bundle_for(tmp_path / "build", results, tmp_path / "a.json")
    probes, _ = publish_all(tmp_path / "build", make_store(fake), tmp_path / "f.jsonl", [bundle])
    merge_into(tmp_path / "catalog", [tmp_path / "f.jsonl"])
    (tmp_path / "dl").mkdir()
    (tmp_path / "dl" / probes[0].file).write_bytes(get(probes[0].url))
    assert main(["verify", "--catalog", "catalog", "--require-attestation", "--json",
                 str(tmp_path / "dl" / probes[0].file)]) == 0
    files = json.loads(capsys.readouterr().out)["files"]
    assert files[0]["attestation"]["attested"] is True


def test_mirror_refuses_a_bundle_that_does_not_attest_the_probe(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch,
                                                                ) -> None:
    monkeypatch.chdir(tmp_path)
    results = build_with_logs(tmp_path / "build", specs(1))
    bundle = bundle_for(tmp_path / "build", results, tmp_path / "a.json")
    publish_all(tmp_path / "build", directory_store(tmp_path / "store"), tmp_path / "f.jsonl",
                [bundle])
    merge_into(tmp_path / "catalog", [tmp_path / "f.jsonl"])
    unsigned_bundle(next((tmp_path / "store" / "attestations").iterdir()),
                    [Subject("x", "c" * 64)])      # someone swaps the bundle
    assert main(["mirror", str(tmp_path / "m"), "--catalog", "catalog"]) == 4


def test_a_rerun_adds_the_attestation_an_earlier_publish_lacked(fake: FakeGitHub,
                                                                 tmp_path: Path) -> None:
    """The attest job failed one night: its probes went out without a bundle. Re-running
    attest and publish fills the records' gap; nothing already recorded is replaced."""
    results = build_with_logs(tmp_path / "build", specs(2))
    publish_all(tmp_path / "build", make_store(fake), tmp_path / "night.jsonl")
    merge_into(tmp_path / "catalog", [tmp_path / "night.jsonl"])
    before = {p.file: p for p in load_catalog(tmp_path / "catalog").probes()}
    assert all(not p.attestation for p in before.values())
    bundle = bundle_for(tmp_path / "build", results, tmp_path / "a.json")
    publish_all(tmp_path / "build", make_store(fake), tmp_path / "rerun.jsonl", [bundle])
    report = merge_into(tmp_path / "catalog", [tmp_path / "rerun.jsonl"])
    assert report.updated == 2
    for probe in load_catalog(tmp_path / "catalog").probes():
        assert probe.attestation.endswith(".sigstore.json")
        assert replace(probe, attestation="") == before[probe.file]


# --- find: the answer carries the attestation and the gh commands ------------------------------

def test_find_answers_with_the_attestation_and_how_to_verify_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    host = host_from_inputs("ID=debian\n", "6.1.0-13-amd64",
                            "#1 SMP PREEMPT_DYNAMIC Debian 6.1.55-1 (2023-09-29)", "x86_64")
    name = probe_name(host, FalcoVersion.parse("0.36.2"))
    bundle = "https://github.com/acme/probes/releases/download/t/attestation-0.sigstore.json"
    record = ProbeRecord("6.0.1+driver", "x86_64", name.target, name.kernel_release,
                         name.kernel_version, "c" * 64, 42, "https://example.org/x.o",
                         job=JOB, attestation=bundle)
    (tmp_path / "f.jsonl").write_text(json.dumps(fragment_line(record)) + "\n")
    merge_into(tmp_path / "catalog", [tmp_path / "f.jsonl"])
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "os-release").write_text("ID=debian\n")
    argv = ["find", "--catalog", str(tmp_path / "catalog"), "--falco-version", "0.36.2",
            "--host-root", str(tmp_path), "--uname-r", host.uname_r, "--uname-v",
            host.uname_v, "--uname-m", "x86_64"]
    assert main([*argv, "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["attestation"] == bundle
    assert answer["verify"]["online"] == (f"gh attestation verify {record.file} "
                                          "--repo acme/probes")
    assert f"--bundle {record.file}.sigstore.json" in answer["verify"]["offline"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert f"verify (online): gh attestation verify {record.file} --repo acme/probes" in printed
