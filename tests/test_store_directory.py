"""The directory store: loader layout, aliases, + and %2B, atomic and idempotent writes,
and a real `python -m http.server` answering every path naming computes."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import pytest
from fakeprobe import fake_probe_bytes

from builder.core.errors import ConflictError, InputError
from builder.core.naming import (
    OVERRIDE_RELEASES,
    NoRequest,
    falcoctl_request_path,
    host_from_inputs,
    names_for_driver,
    probe_name,
    request_path,
)
from builder.core.records import HostFacts, ProbeRecord
from builder.core.versions import BUILTIN_RELEASES, FalcoVersion
from builder.publish.stores import Budget, Stop
from builder.publish.stores.directory import DirectoryStore, disk_paths

UBUNTU = 'NAME="Ubuntu"\nID=ubuntu\nVERSION_ID="20.04"\n'
# Hosts whose names exercise the layout: `~` and `+` in names, aliases across naming
# eras, both arches (os-release, uname -r, uname -v, uname -m).
HOSTS: dict[str, tuple[str, str, str, str]] = {
    "ubuntu-hwe": (UBUNTU, "5.15.0-1034-aws",
                   "#38~20.04.1-Ubuntu SMP Wed Mar 29 19:34:42 UTC 2023", "x86_64"),
    "ubuntu-arm": (UBUNTU, "5.15.0-1035-aws",
                   "#39~20.04.1-Ubuntu SMP Wed Mar 29 19:34:42 UTC 2023", "aarch64"),
    "cos": ("ID=cos\nVERSION_ID=101\nBUILD_ID=17162.40.34\n", "5.15.107+",
            "#1 SMP Sat Apr 29 10:06:20 UTC 2023", "x86_64"),
    "debian-6.12": ('ID=debian\nVERSION_ID="12"\n', "6.12.48+deb12-amd64",
                    "#1 SMP PREEMPT_DYNAMIC Debian 6.12.48-1~bpo12+1 (2025-09-22)", "x86_64"),
    "debian-arm": ('ID=debian\nVERSION_ID="12"\n', "6.1.0-13-arm64",
                   "#1 SMP Debian 6.1.55-1 (2023-09-29)", "aarch64"),
    "amzn2": ('ID="amzn"\nVERSION_ID="2"\n', "5.10.178-162.673.amzn2.x86_64",
              "#1 SMP Mon May 1 21:51:57 UTC 2023", "x86_64"),
}
DRIVER_VERSIONS = (
    "2aa88dcf6243982697811df4c1b484bcbe9488a2",   # Falco 0.26: no arch folder
    "39ae7d40496793cf3d3e7890c9bbdc202263836b",   # Falco 0.32.0
    "2.0.0+driver",                               # 0.32.1 (no arch) and 0.32.2 (arch)
    "4.0.0+driver",
    "5.0.1+driver",                               # 0.35.0 and 0.35.1 name differently
    "6.0.1+driver",
    "0.1.1dev+git20220316.e5c53d64",              # no Falco release: override aliases
)


def every_request(host: HostFacts, driver_version: str,
                  falco_versions: Sequence[FalcoVersion]) -> dict[str, set[str]]:
    """file name -> every request path (both spellings) the given releases send for it."""
    out: dict[str, set[str]] = {}
    for falco in falco_versions:
        try:
            name = probe_name(host, falco)
        except NoRequest:
            continue
        paths = out.setdefault(name.file, set())
        paths.add(request_path(driver_version, name, falco))
        paths.add(falcoctl_request_path(driver_version, name))
    return out


def host(key: str) -> HostFacts:
    return host_from_inputs(*HOSTS[key])


def probe_for(host_key: str, driver_version: str, directory: Path) -> tuple[ProbeRecord, Path]:
    """A fake probe named as the builder names it (names_for_driver), and its file."""
    facts = host(host_key)
    name, aliases = names_for_driver(facts, BUILTIN_RELEASES.falco_for(driver_version))
    data = fake_probe_bytes(f"{host_key} {driver_version}", kernel_release=facts.uname_r)
    path = directory / f"{host_key}-{hashlib.sha256(driver_version.encode()).hexdigest()[:8]}.o"
    path.write_bytes(data)
    record = ProbeRecord(driver_version, name.arch, name.target, name.kernel_release,
                         name.kernel_version, hashlib.sha256(data).hexdigest(), len(data),
                         url="", aliases=aliases)
    return record, path


def store_at(root: Path, budget: Budget | None = None) -> DirectoryStore:
    return DirectoryStore(root, BUILTIN_RELEASES.falco_for, budget=budget)


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
    store = store_at(tmp_path / "store")
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
    store = store_at(tmp_path / "store")
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
    store = store_at(tmp_path / "store")
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
        store_at(tmp_path / "store").place(source, replace(probe, sha256="1" * 64))
    assert not (tmp_path / "store" / "6.0.1+driver" / "x86_64" / probe.file).exists()


def test_unsafe_names_are_refused(tmp_path: Path) -> None:
    probe, source = probe_for("cos", "6.0.1+driver", tmp_path)
    with pytest.raises(InputError, match="target"):
        store_at(tmp_path / "store").place(source, replace(probe, target="../etc"))


def test_budget_stops_before_writing(tmp_path: Path) -> None:
    store = store_at(tmp_path / "store", Budget(max_uploads=1))
    first, first_file = probe_for("cos", "6.0.1+driver", tmp_path)
    second, second_file = probe_for("amzn2", "6.0.1+driver", tmp_path)
    store.place(first_file, first)
    store.place(first_file, first)  # already there: costs nothing
    with pytest.raises(Stop) as stop:
        store.place(second_file, second)
    assert stop.value.reason == "budget"
    assert not (tmp_path / "store" / store.expected_keys(second)[0]).exists()


# --- served by python -m http.server ---------------------------------------------------------

@contextlib.contextmanager
def http_server(folder: Path) -> Iterator[str]:
    """`python -m http.server` on a free loopback port; yields its base URL."""
    process = subprocess.Popen(
        [sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1",
         "--directory", str(folder)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.search(r"port (\d+)", line)
        assert match, line
        yield f"http://127.0.0.1:{match.group(1)}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def fetch(url: str) -> bytes | int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return bytes(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code


def served_requests(probe: ProbeRecord, facts: HostFacts) -> dict[str, set[str]]:
    """Every request path naming computes for this probe (shell and falcoctl spellings)."""
    falco = BUILTIN_RELEASES.falco_for(probe.driver_version) or OVERRIDE_RELEASES
    return {f: p for f, p in every_request(facts, probe.driver_version, falco).items()
            if f in probe.all_files()}


def test_http_server_answers_every_request_path(tmp_path: Path) -> None:
    store = store_at(tmp_path / "store")
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
