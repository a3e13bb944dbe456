"""The directory store: loader layout, aliases, + and %2B, atomic and idempotent writes,
and a real `python -m http.server` answering every path naming computes; compile logs
and provenance bundles kept beside the probes; nothing written through a link or half."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import replace
from pathlib import Path

import pytest
from attestations import bundle_for
from buildreports import JOB, Spec, build_with_logs, specs, write_report
from commandline import cli
from fakeprobe import fake_probe_bytes
from loopback import fetch, http_server
from publishing import directory_store, fragment_records, publish_all
from requestpaths import DRIVER_VERSIONS, HOSTS, host, probe_for, served_requests

from builder.core.catalog import fragment_line, merge_into
from builder.core.errors import ConflictError, InputError
from builder.core.naming import OVERRIDE_RELEASES
from builder.core.records import ProbeRecord
from builder.core.versions import BUILTIN_RELEASES
from builder.publish.attest import load_bundles
from builder.publish.stage import FragmentFile, Provenance, load_reports, publish
from builder.publish.stores import Budget, Stop
from builder.publish.stores.directory import DirectoryStore, disk_paths


def record(driver_version: str = "6.0.1+driver", arch: str = "x86_64", target: str = "cos",
           release: str = "5.15.107+", version: str = "1",
           aliases: tuple[str, ...] = ()) -> ProbeRecord:
    return ProbeRecord(driver_version, arch, target, release, version, "0" * 64, 1, url="",
                       aliases=aliases)


@pytest.mark.parametrize(("probe", "expected"), [
    (record(), [
        "6.0.1+driver/x86_64/falco_cos_5.15.107+_1.o",
        "6.0.1%2Bdriver/x86_64/falco_cos_5.15.107%2B_1.o",     # shell loader, raw server
        "6.0.1%2Bdriver/x86_64/falco_cos_5.15.107+_1.o",       # falcoctl, raw server
    ]),
    (record("2aa88dcf6243982697811df4c1b484bcbe9488a2", target="ubuntu-generic",
            release="5.4.0-42-generic", version="46"), [
        "2aa88dcf6243982697811df4c1b484bcbe9488a2/x86_64/falco_ubuntu-generic_5.4.0-42-generic_46.o",
        "2aa88dcf6243982697811df4c1b484bcbe9488a2/falco_ubuntu-generic_5.4.0-42-generic_46.o",
    ]),
    # aarch64 never gets the no-arch path (an old loader cannot say which arch it wants)
    (record("2aa88dcf6243982697811df4c1b484bcbe9488a2", arch="aarch64",
            target="ubuntu-generic", release="5.4.0-42-generic", version="46"), [
        "2aa88dcf6243982697811df4c1b484bcbe9488a2/aarch64/falco_ubuntu-generic_5.4.0-42-generic_46.o",
    ]),
    (record("2.0.0+driver", target="debian", release="6.12.48+deb12-amd64"), [
        "2.0.0+driver/x86_64/falco_debian_6.12.48+deb12-amd64_1.o",
        "2.0.0%2Bdriver/falco_debian_6.12.48%2Bdeb12-amd64_1.o",
        "2.0.0%2Bdriver/x86_64/falco_debian_6.12.48%2Bdeb12-amd64_1.o",
        "2.0.0%2Bdriver/x86_64/falco_debian_6.12.48+deb12-amd64_1.o",
        "2.0.0+driver/falco_debian_6.12.48+deb12-amd64_1.o",
    ]),
    (record("5.0.1+driver", target="ubuntu-aws", release="5.15.0-1034-aws",
            version="38~20.04.1", aliases=("falco_ubuntu-aws_5.15.0-1034-aws_38.o",)), [
        "5.0.1+driver/x86_64/falco_ubuntu-aws_5.15.0-1034-aws_38~20.04.1.o",
        "5.0.1%2Bdriver/x86_64/falco_ubuntu-aws_5.15.0-1034-aws_38.o",
        "5.0.1%2Bdriver/x86_64/falco_ubuntu-aws_5.15.0-1034-aws_38~20.04.1.o",
        "5.0.1+driver/x86_64/falco_ubuntu-aws_5.15.0-1034-aws_38.o",
    ]),
], ids=["cos-plus", "commit-hash-no-arch", "aarch64-no-arch", "2.0.0-both", "alias"])
def test_disk_paths(probe: ProbeRecord, expected: list[str]) -> None:
    paths = disk_paths(probe, BUILTIN_RELEASES.falco_for(probe.driver_version))
    assert paths[0] == expected[0]  # the bytes live at the canonical path
    assert sorted(paths) == sorted(expected)


def test_unknown_driver_version_uses_the_override_releases() -> None:
    probe = record("0.1.1dev+git20220316.e5c53d64")
    assert disk_paths(probe, ()) == disk_paths(probe, OVERRIDE_RELEASES)


def test_place_links_every_path_and_is_idempotent(tmp_path: Path) -> None:
    probe, source = probe_for("ubuntu-hwe", "5.0.1+driver", tmp_path)
    store = directory_store(tmp_path / "store")
    placed = store.place(source, probe)
    assert placed.uploaded is True
    assert placed.url == (f"{(tmp_path / 'store').as_uri()}/5.0.1%2Bdriver/x86_64/"
                          "falco_ubuntu-aws_5.15.0-1034-aws_38~20.04.1.o")
    paths = [tmp_path / "store" / p for p in store.expected_keys(probe)]
    inodes = {p.stat().st_ino for p in paths}
    assert len(paths) == 4 and len(inodes) == 1  # hard links: one copy of the bytes
    assert paths[0].read_bytes() == source.read_bytes()

    again = store.place(source, probe)
    assert again == replace(placed, uploaded=False)
    leftovers = [p for p in (tmp_path / "store").rglob(".*")]
    assert leftovers == []  # no temp files


def test_base_url_is_recorded(tmp_path: Path) -> None:
    probe, source = probe_for("cos", "6.0.1+driver", tmp_path)
    store = DirectoryStore(tmp_path / "s", lambda dv: (), base_url="https://probes.example/x/")
    assert store.place(source, probe).url == \
        "https://probes.example/x/6.0.1%2Bdriver/x86_64/falco_cos_5.15.107%2B_1.o"


def test_refuses_to_overwrite_other_bytes(tmp_path: Path) -> None:
    probe, source = probe_for("cos", "6.0.1+driver", tmp_path)
    store = directory_store(tmp_path / "store")
    store.place(source, probe)
    other = tmp_path / "other.o"
    other.write_bytes(fake_probe_bytes("different"))
    changed = replace(probe, sha256=hashlib.sha256(other.read_bytes()).hexdigest())
    with pytest.raises(ConflictError, match="already holds other bytes"):
        store.place(other, changed)
    assert (tmp_path / "store" / store.expected_keys(probe)[0]).read_bytes() == \
        source.read_bytes()


def test_two_probes_claiming_one_alias_conflict(tmp_path: Path) -> None:
    first, first_file = probe_for("ubuntu-hwe", "5.0.1+driver", tmp_path)
    store = directory_store(tmp_path / "store")
    store.place(first_file, first)
    data = fake_probe_bytes("another kernel")
    second_file = tmp_path / "second.o"
    second_file.write_bytes(data)
    second = replace(first, kernel_version="38~20.04.2", sha256=hashlib.sha256(data).hexdigest(),
                     size=len(data))  # same alias falco_..._38.o
    with pytest.raises(ConflictError):
        store.place(second_file, second)


def test_digest_is_checked_on_write(tmp_path: Path) -> None:
    probe, source = probe_for("cos", "6.0.1+driver", tmp_path)
    with pytest.raises(InputError, match="sha256 is"):
        directory_store(tmp_path / "store").place(source, replace(probe, sha256="1" * 64))
    assert not (tmp_path / "store" / "6.0.1+driver" / "x86_64" / probe.file).exists()


def test_unsafe_names_are_refused(tmp_path: Path) -> None:
    probe, source = probe_for("cos", "6.0.1+driver", tmp_path)
    with pytest.raises(InputError, match="target"):
        directory_store(tmp_path / "store").place(source, replace(probe, target="../etc"))


def test_budget_stops_before_writing(tmp_path: Path) -> None:
    store = directory_store(tmp_path / "store", Budget(max_uploads=1))
    first, first_file = probe_for("cos", "6.0.1+driver", tmp_path)
    second, second_file = probe_for("amzn2", "6.0.1+driver", tmp_path)
    store.place(first_file, first)
    store.place(first_file, first)  # already there: costs nothing
    with pytest.raises(Stop) as stop:
        store.place(second_file, second)
    assert stop.value.reason == "budget"
    assert not (tmp_path / "store" / store.expected_keys(second)[0]).exists()


def test_http_server_answers_every_request_path(tmp_path: Path) -> None:
    store = directory_store(tmp_path / "store")
    probes = []
    for host_key in HOSTS:
        for driver_version in DRIVER_VERSIONS:
            probe, source = probe_for(host_key, driver_version, tmp_path)
            store.place(source, probe)
            probes.append((host_key, probe, source.read_bytes()))
    asked = refused = 0
    with http_server(tmp_path / "store") as base:
        for host_key, probe, data in probes:
            for file, paths in served_requests(probe, host(host_key)).items():
                for path in paths:
                    no_arch = path.count("/") == 1
                    got = fetch(f"{base}/{path}")
                    if no_arch and probe.arch == "aarch64":
                        assert got == 404, path  # documented: no-arch paths are x86_64 only
                        refused += 1
                        continue
                    assert got == data, (host_key, file, path)
                    asked += 1
    assert asked >= 60 and refused > 0
    # servers that do not decode the path find the literal %2B names too
    literal = tmp_path / "store" / "6.0.1%2Bdriver" / "x86_64" / "falco_cos_5.15.107%2B_1.o"
    assert literal.is_file() and os.path.samefile(
        literal, tmp_path / "store" / "6.0.1+driver" / "x86_64" / "falco_cos_5.15.107+_1.o")


# --- the directory store: nothing outside, nothing half ---------------------------------------

def test_a_conflict_on_one_spelling_writes_nothing_for_that_probe(tmp_path: Path) -> None:
    build = tmp_path / "build"
    write_report(build, [Spec("6.1.0-1-amd64", target="debian", driver_version="5.0.1+driver")])
    (artifact,), _ = load_reports([build], Provenance())
    store = directory_store(tmp_path / "store")
    encoded = store.root / "5.0.1%2Bdriver" / "x86_64" / artifact.file
    encoded.parent.mkdir(parents=True)
    encoded.write_bytes(b"someone else's bytes")
    with pytest.raises(ConflictError, match="already holds other bytes"):
        store.place(artifact.path, artifact.probe)
    files = sorted(p.relative_to(store.root).as_posix() for p in store.root.rglob("*")
                   if p.is_file())
    assert files == [f"5.0.1%2Bdriver/x86_64/{artifact.file}"]


@pytest.mark.parametrize("command", ["publish", "mirror"])
def test_no_write_through_a_symlinked_folder_of_the_store(tmp_path: Path, command: str,
                                                          capsys: pytest.CaptureFixture[str]
                                                          ) -> None:
    build = tmp_path / "build"
    write_report(build, [Spec("6.1.0-1-amd64", target="debian", driver_version="5.0.1+driver")])
    (artifact,), _ = load_reports([build], Provenance())
    store, outside = tmp_path / "store", tmp_path / "outside"
    store.mkdir()
    outside.mkdir()
    (store / "5.0.1+driver").symlink_to(outside, target_is_directory=True)
    if command == "publish":
        argv = ["publish", str(build), "--fragment", str(tmp_path / "f.jsonl"), "--path",
                str(store)]
    else:
        root = tmp_path / "catalog"
        probe = replace(artifact.probe, url=artifact.path.as_uri())
        merge_into(root, [_fragment(tmp_path, probe)])
        argv = ["mirror", str(store), "--catalog", str(root)]
    code, _, err = cli(argv, capsys)
    assert code == 2
    assert f"error: {store}/5.0.1+driver: is a symbolic link inside {store}" in err
    assert list(outside.iterdir()) == []


def _fragment(tmp_path: Path, probe: ProbeRecord) -> Path:
    path = tmp_path / "probe.jsonl"
    path.write_text(json.dumps(fragment_line(probe)) + "\n")
    return path


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
