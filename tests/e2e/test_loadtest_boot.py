"""Real boots: a Debian 6.1 kernel from its linux-image package, in QEMU, loading the
session's real probe and a copy broken so that the verifier must reject it.

The real probe is the one this machine's clang builds into a probe 6.1 accepts: the 2022
snapshot with clang 14 or older (Debian 12; its probes also capture events here), else
Debian 13's 8.0.0+driver source. There the snapshot is loaded too, and must be rejected:
it predates libs' clang 15 verifier fixes, which is what a Debian 13 build machine gets.

From there the results go the whole way: into the report, through publish (which refuses
the broken probe with the verifier's message unless --allow-unverified), into the catalog
and out of `find`. That boot is shared by the tests below it (about a minute under TCG).

A second boot loads Debian's two newest driver versions (8.0.0+driver and 9.1.0+driver) and
counts a child's openat events with each: loadtest/events.py's capture, whose recipes and
tables tests/loadtest/test_events.py checks without a kernel.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from loadtestreports import Built, broken_copy, by_driver, write_built
from realprobe import (
    COMPILE_TIMEOUT,
    DKMS_DRIVER_VERSION,
    SID,
    TRIXIE_DRIVER_VERSION,
    compiled_probe,
    real_kernel,
    shared_cache,
    snapshot_loads_with,
    sysroot,
    trixie_probe,
)
from vmtools import needs_vm_tools

from builder.cli import main
from builder.compile.driversrc import prepare_source
from builder.compile.kbuild import compile_probe
from builder.core.catalog import read_fragments
from builder.core.config import DriverVersion
from builder.loadtest.events import OPENS
from builder.shared.elfcheck import check_probe

pytestmark = pytest.mark.slow

BROKEN_DRIVER = "0.0.0+broken"


@pytest.fixture(scope="module")
def tested(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    """A build folder with the probes, load-tested by `falco-probes loadtest` (one boot)."""
    needs_vm_tools()
    base = tmp_path_factory.getbasetemp()
    snapshot = compiled_probe(base)
    assert snapshot.probe is not None
    loads = snapshot_loads_with(snapshot.toolchain)
    real = snapshot if loads else trixie_probe(base)
    assert real.probe is not None
    kernel = real_kernel()
    out = tmp_path_factory.mktemp("loadtest") / "out"
    broken = broken_copy(real.probe, base / "broken.o")
    built = [Built(kernel.uname_r, kernel.package_version, real.driver_version,
                   probe=real.probe),
             Built(kernel.uname_r, kernel.package_version, BROKEN_DRIVER, probe=broken)]
    if not loads:
        built.append(Built(kernel.uname_r, kernel.package_version, DKMS_DRIVER_VERSION,
                           probe=snapshot.probe))
    write_built(out, built)
    code = main(["loadtest", str(out), "--cache", str(shared_cache()), "--json"])
    assert code == 0
    return out, {"programs": len(check_probe(real.probe).programs), "uname_r": kernel.uname_r,
                 "driver": real.driver_version, "snapshot_loads": loads,
                 "clang": snapshot.toolchain.clang_version}


def test_the_real_probe_loads_in_its_own_kernel(tested: tuple[Path, dict[str, object]]
                                                ) -> None:
    out, facts = tested
    driver = str(facts["driver"])
    programs = facts["programs"]
    results = by_driver(out)
    test = results[driver].loadtest
    assert test is not None
    assert test.status == "passed", test
    assert test.accepted == test.total == programs == \
        (107 if driver == DKMS_DRIVER_VERSION else 184)
    assert test.kernel == facts["uname_r"]
    assert test.reason == ""
    # The child opened a file OPENS times: an enter and an exit event each, no more. Only
    # the snapshot's types are what the capture knows (events.py); others are not tried.
    events = 2 * OPENS if driver == DKMS_DRIVER_VERSION else 0
    assert test.events == events
    log = out / "logs" / driver / "x86_64" / str(facts["uname_r"]) / \
        f"{results[driver].file}.loadtest.log"
    text = log.read_text()
    assert f"programs accepted: {programs}/{programs}, attached: 7" in text
    assert "raw_tracepoint/sys_enter: ok" in text
    if events:
        assert f"events captured: {events}\n" in text
    console = (out / "logs" / "loadtest" / f"{facts['uname_r']}.console.log").read_text()
    assert "falco-probes-vm: guest exited with 0" in console


def test_the_broken_probe_is_rejected_with_the_verifiers_log(
        tested: tuple[Path, dict[str, object]]) -> None:
    out, facts = tested
    broken = by_driver(out)[BROKEN_DRIVER]
    test = broken.loadtest
    assert test is not None
    assert test.status == "rejected"
    assert (test.accepted, test.total) == (facts["programs"] - 1, facts["programs"])  # type: ignore[operator]
    assert test.reason.startswith("raw_tracepoint/sys_enter: EACCES: ")
    assert "invalid read from stack" in test.reason
    log = (out / "logs" / BROKEN_DRIVER / "x86_64" / str(facts["uname_r"]) /
           f"{broken.file}.loadtest.log").read_text()
    assert "raw_tracepoint/sys_enter: REJECTED EACCES" in log
    verifier = log.split("--- verifier log of raw_tracepoint/sys_enter ---", 1)[1]
    assert "r0 = *(u64 *)(r10 +0)" in verifier


def test_the_snapshot_loads_only_when_clang_14_or_older_built_it(
        tested: tuple[Path, dict[str, object]]) -> None:
    out, facts = tested
    test = by_driver(out)[DKMS_DRIVER_VERSION].loadtest
    assert test is not None, facts["clang"]
    if facts["snapshot_loads"]:
        assert test.status == "passed", (facts["clang"], test)
        return
    assert test.status == "rejected", (facts["clang"], test)
    assert (test.accepted, test.total) == (96, 107), test
    assert "invalid mem access 'map_value_or_null'" in test.reason


def test_a_second_run_boots_nothing(tested: tuple[Path, dict[str, object]],
                                    capsys: pytest.CaptureFixture[str]) -> None:
    out, _ = tested
    before = (out / "report.jsonl").read_bytes()
    assert main(["loadtest", str(out), "--cache", str(shared_cache()), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary == {"passed": 0, "rejected": 0, "not_tested": 0, "boots": [], "probes": []}
    assert (out / "report.jsonl").read_bytes() == before


def test_publish_refuses_the_rejected_probe_and_find_says_it_loaded(
        tested: tuple[Path, dict[str, object]], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    out, facts = tested
    driver, programs = str(facts["driver"]), facts["programs"]
    fragment = tmp_path / "fragment.jsonl"
    assert main(["publish", str(out), "--store", "directory", "--path", str(tmp_path / "store"),
                 "--fragment", str(fragment)]) == 0
    said = capsys.readouterr().err
    assert f"refused {BROKEN_DRIVER} " in said and "invalid read from stack" in said
    records = read_fragments([fragment])
    (probe,) = records.probes
    assert probe.driver_version == driver
    assert probe.loadtest is not None and probe.loadtest.passed
    assert probe.loadtest.accepted == probe.loadtest.total == programs
    failures = {f.driver_version: f for f in records.failures}
    assert set(failures) == {BROKEN_DRIVER} | \
        (set() if facts["snapshot_loads"] else {DKMS_DRIVER_VERSION})
    failure = failures[BROKEN_DRIVER]
    assert (failure.step, failure.category) == ("loadtest", "verifier")
    assert failure.reason.startswith(f"the {facts['uname_r']} verifier rejected 1 of "
                                     f"{programs} programs: raw_tracepoint/sys_enter: EACCES")
    assert "invalid read from stack" in failure.reason
    assert not list((tmp_path / "store").rglob(f"*{BROKEN_DRIVER.replace('+', '*')}*/*.o"))

    catalog = tmp_path / "catalog"
    # Falco 0.34 requests a Debian probe by `uname -r`, which is how this report names it.
    assert main(["catalog", "merge", "--catalog", str(catalog), str(fragment)]) == 0
    capsys.readouterr()
    host = ["--uname-r", str(facts["uname_r"]), "--uname-m", "x86_64", "--uname-v",
            f"#1 SMP PREEMPT_DYNAMIC Debian {real_kernel().package_version}",
            "--os-release", str(_os_release(tmp_path)), "--driver-version",
            driver, "--falco-version", "0.34.0", "--catalog", str(catalog)]
    assert main(["find", *host, "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["load_tested"] is True
    assert found["loadtest"]["status"] == "passed" and found["loadtest"]["total"] == programs
    assert main(["find", *host]) == 0
    assert f"load test:     passed in {facts['uname_r']}" in capsys.readouterr().out


def test_allow_unverified_publishes_it_saying_it_was_rejected(
        tested: tuple[Path, dict[str, object]], tmp_path: Path) -> None:
    out, facts = tested
    fragment = tmp_path / "fragment.jsonl"
    assert main(["publish", str(out), "--store", "directory", "--path", str(tmp_path / "store"),
                 "--fragment", str(fragment), "--allow-unverified"]) == 0
    records = read_fragments([fragment])
    assert list(records.failures) == []
    status = {p.driver_version: p.loadtest.status for p in records.probes if p.loadtest}
    snapshot = "passed" if facts["snapshot_loads"] else "rejected"
    assert status == {str(facts["driver"]): "passed", BROKEN_DRIVER: "rejected",
                      DKMS_DRIVER_VERSION: snapshot}


def _os_release(folder: Path) -> Path:
    path = folder / "os-release"
    path.write_text('ID=debian\nVERSION_ID="12"\n')
    return path


# --- the one boot: events from the two newest driver versions' probes ------------------

SID_DRIVER_VERSION = "9.1.0+driver"


def _sid_probe(base: Path) -> Path:
    """Debian sid's 9.1.0+driver source (libs 0.23.2) compiled against the real headers."""
    driver = DriverVersion(SID_DRIVER_VERSION, SID_DRIVER_VERSION, (), SID)
    source = prepare_source(driver, shared_cache() / "driversrc")
    out = base / "probe-out-9.1.0"
    result = compile_probe(sysroot(base, "a"), source, out, timeout=COMPILE_TIMEOUT,
                           headers=real_kernel().headers)
    assert result.ok and result.probe is not None, result.reason + "\n" + result.log[-3000:]
    return result.probe


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_the_newest_driver_versions_capture_the_childs_openat_calls(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    needs_vm_tools()
    base = tmp_path_factory.getbasetemp()
    eight = trixie_probe(base).probe
    assert eight is not None
    kernel = real_kernel()
    out = tmp_path_factory.mktemp("events") / "out"
    write_built(out, [Built(kernel.uname_r, kernel.package_version, TRIXIE_DRIVER_VERSION,
                            probe=eight),
                      Built(kernel.uname_r, kernel.package_version, SID_DRIVER_VERSION,
                            probe=_sid_probe(base))])
    assert main(["loadtest", str(out), "--cache", str(shared_cache()), "--json"]) == 0
    for driver, results in by_driver(out).items():
        test = results.loadtest
        assert test is not None and test.status == "passed", (driver, test)
        # an enter and an exit event for each openat of the child, no more, no fewer
        assert test.events == 2 * OPENS, (driver, test)
