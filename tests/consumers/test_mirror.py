"""consumers/mirror.py: catalogued probes (published to the fake GitHub) into a folder that
`python -m http.server` serves as a working DRIVERS_REPO for every request naming
computes; their bundles beside them; downloads that stop at the catalogued size."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from attestations import bundle_for, subject_of, unsigned_bundle
from buildreports import build_with_logs, specs, write_report
from catalogfiles import good_probe
from commandline import MAX_RSS_MB, measured
from fakegithub import FakeGitHub, Fault
from githubstore import make_store
from loopback import fetch, http_server
from publishing import directory_store, publish_all
from requestpaths import DRIVER_VERSIONS, HOSTS, host, probe_for, served_requests

from builder.cli import main
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
from builder.core.records import ProbeRecord
from builder.publish.attest import Subject
from builder.publish.stage import FragmentFile, Provenance, load_reports, publish
from builder.publish.stores import Artifact, Budget
from builder.publish.stores.github import GitHubStore
from builder.publish.stores.githubapi import GitHubApi, GitHubSettings

TOKEN = "ghp_mirrorToken0123456789"


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    with FakeGitHub(token=TOKEN) as server:
        yield server


def publish_to_github(fake: FakeGitHub, items: list[Artifact], tmp_path: Path) -> Path:
    """Publish, merge the fragment, return the catalog folder."""
    settings = GitHubSettings(fake.api_url, "acme/probes", TOKEN, write_interval=0)
    store = GitHubStore(GitHubApi(settings, Budget()), cap=20)
    with FragmentFile(tmp_path / "f.jsonl") as fragment:
        summary = publish(items, [], store, fragment)
    assert summary.left == 0 and not summary.conflicts
    merge_into(tmp_path / "catalog", [tmp_path / "f.jsonl"])
    return tmp_path / "catalog"


def mirror_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, object]]:
    code = main(["mirror", *argv, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else {}


def test_mirror_serves_every_request_path(fake: FakeGitHub, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    sources = tmp_path / "sources"
    sources.mkdir()
    probes: list[tuple[str, ProbeRecord, bytes]] = []
    items = []
    for host_key in HOSTS:
        for driver_version in DRIVER_VERSIONS:
            record, path = probe_for(host_key, driver_version, sources)
            items.append(Artifact(record, path))
            probes.append((host_key, record, path.read_bytes()))
    catalog = publish_to_github(fake, items, tmp_path)

    dest = tmp_path / "mirror"
    code, summary = mirror_cli(capsys, str(dest), "--catalog", str(catalog), "--jobs", "4")
    assert code == 0 and summary["downloaded"] == len(items) and summary["complete"]
    assert not (dest / ".partial").exists()

    asked = 0
    with http_server(dest) as base:
        for host_key, record, data in probes:
            for paths in served_requests(record, host(host_key)).values():
                for request in paths:
                    got = fetch(f"{base}/{request}")
                    if request.count("/") == 1 and record.arch == "aarch64":
                        assert got == 404, request  # no-arch paths hold x86_64 probes only
                    else:
                        assert got == data, (host_key, request)
                        asked += 1
    assert asked >= 60

    fake.clear_calls()  # resumable: a second run downloads nothing
    code, summary = mirror_cli(capsys, str(dest), "--catalog", str(catalog))
    assert code == 0 and (summary["downloaded"], summary["present"]) == (0, len(items))
    assert fake.calls == []


@pytest.mark.parametrize(("filters", "count"), [
    (["--driver-version", "6.0.1+driver"], 4),
    (["--driver-version", "6.0.1+driver", "--driver-version", "5.0.1+driver"], 6),
    (["--falco-version", "0.36.2"], 4),
    (["--falco-version", "0.35.1"], 2),
    (["--target", "debian"], 2),
    (["--arch", "aarch64"], 1),
    (["--driver-version", "6.0.1+driver", "--target", "ubuntu-generic", "--arch", "x86_64"], 2),
], ids=["driver", "two-drivers", "falco-0.36", "falco-0.35", "target", "arch", "all"])
def test_filters(fake: FakeGitHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                 capsys: pytest.CaptureFixture[str], filters: list[str], count: int) -> None:
    monkeypatch.chdir(tmp_path)
    write_report(tmp_path / "build", [*specs(2), *specs(2, target="debian"),
                                      *specs(1, driver_version="5.0.1+driver"),
                                      *specs(1, start=9, driver_version="5.0.1+driver",
                                             arch="aarch64")])
    items, _ = load_reports([tmp_path / "build"], Provenance())
    catalog = publish_to_github(fake, items, tmp_path)
    code, summary = mirror_cli(capsys, str(tmp_path / "m"), "--catalog", str(catalog), *filters)
    assert code == 0 and summary["selected"] == count


def test_no_match_and_bad_filters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "catalog").mkdir()
    code, summary = mirror_cli(capsys, str(tmp_path / "m"), "--catalog",
                               str(tmp_path / "catalog"))
    assert code == 1 and summary["selected"] == 0
    with pytest.raises(SystemExit) as excinfo:  # argparse: mutually exclusive
        main(["mirror", "m", "--driver-version", "x", "--falco-version", "0.36.0"])
    assert excinfo.value.code == 2
    assert main(["mirror", "m", "--falco-version", "0.99.0"]) == 2
    assert "no driver version is known" in capsys.readouterr().err


def test_download_cut_midway_is_resumed(fake: FakeGitHub, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    write_report(tmp_path / "build", specs(2))
    items, _ = load_reports([tmp_path / "build"], Provenance())
    catalog = publish_to_github(fake, items, tmp_path)
    fake.inject(Fault("GET", r"^/_objects/", truncate_body_at=100, times=2))
    code, summary = mirror_cli(capsys, str(tmp_path / "m"), "--catalog", str(catalog),
                               "--jobs", "1")
    assert code == 0 and summary["downloaded"] == 2
    ranged = [c for c in fake.calls if c.path.startswith("/_objects/") and c.status == 206]
    assert len(ranged) == 2  # each resumed from byte 100, not restarted


def test_failures_are_reported_and_the_rest_mirrored(fake: FakeGitHub, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    write_report(tmp_path / "build", specs(3))
    items, _ = load_reports([tmp_path / "build"], Provenance())
    records = sorted(load_catalog(publish_to_github(fake, items, tmp_path)).probes(),
                     key=lambda p: p.kernel_release)
    # a catalog that lies about one digest
    lying = [replace(records[0], sha256="a" * 64), *records[1:]]
    (tmp_path / "lying.jsonl").write_text("".join(json.dumps(fragment_line(r)) + "\n"
                                                  for r in lying))
    merge_into(tmp_path / "lying", [tmp_path / "lying.jsonl"])

    fake.inject(Fault("GET", r"^/_objects/", status=502, times=1000))  # downloads failing
    code, summary = mirror_cli(capsys, "m", "--catalog", "lying", "--jobs", "1")
    fake.clear_faults()
    failed: list[dict[str, str]] = summary["failed"]  # type: ignore[assignment]
    assert code == 4 and summary["complete"] is False
    assert len(failed) == 3 and all("HTTP 502" in f["reason"] for f in failed)

    code, summary = mirror_cli(capsys, "m", "--catalog", "lying")  # run again: resumes
    failed = summary["failed"]  # type: ignore[assignment]
    assert code == 4 and summary["downloaded"] == 2 and len(failed) == 1
    assert failed[0]["probe"].endswith(records[0].file)
    assert "sha256 mismatch" in failed[0]["reason"]
    assert not (tmp_path / "m" / "6.0.1+driver" / "x86_64" / records[0].file).exists()


def test_mirror_of_a_directory_store_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """file:// URLs (a directory store's catalog) mirror like http ones."""
    monkeypatch.chdir(tmp_path)
    write_report(tmp_path / "build", specs(3))
    assert main(["publish", "build", "--fragment", "f.jsonl", "--path", "store"]) == 0
    capsys.readouterr()
    merge_into(tmp_path / "catalog", [tmp_path / "f.jsonl"])
    code, summary = mirror_cli(capsys, "copy", "--catalog", "catalog")
    assert code == 0 and summary["downloaded"] == 3
    for record in load_catalog(tmp_path / "catalog").probes():
        copy = tmp_path / "copy" / record.driver_version / record.arch / record.file
        assert copy.read_bytes() == (tmp_path / "store" / record.driver_version /
                                     record.arch / record.file).read_bytes()


# --- downloads stop at the expected size, and leave nothing behind ------------------------------

def test_mirror_stops_at_the_catalogued_size(hostile: str, tmp_path: Path) -> None:
    root = tmp_path / "catalog"
    fragment = tmp_path / "f.jsonl"
    probe = replace(good_probe(), size=1000, url=f"{hostile}/endless/falco.o")
    fragment.write_text(json.dumps(fragment_line(probe)) + "\n")
    merge_into(root, [fragment])
    dest = tmp_path / "mirror"
    code, out, _, mb = measured(["mirror", str(dest), "--catalog", str(root)])
    assert code == 4
    assert out.startswith(f"FAILED  5.0.1+driver/x86_64/{probe.file}: {hostile}/endless/falco.o: "
                          "more than 1000 bytes; stopped and removed the partial file (the "
                          "size recorded for it)")
    assert [p for p in dest.rglob("*") if p.is_file() and not p.name.endswith(".lock")] == []
    assert mb < MAX_RSS_MB


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
