"""Real boots, two at once: Debian 6.1 kernels from their linux-image packages, in QEMU.

x86_64: the session's real probe, a copy broken so that the verifier must reject it, and
Debian's two newest driver versions (8.0.0+driver and 9.1.0+driver), whose events are
counted (a child's openat calls: loadtest/events.py's capture, whose recipes and tables
tests/loadtest/test_events.py checks without a kernel). The real probe is the one this
machine's clang builds into a probe 6.1 accepts: the 2022 snapshot with clang 14 or older
(Debian 12), else Debian 13's 8.0.0+driver source. The snapshot is loaded either way, and
must be rejected where clang 15 or newer built it: it predates libs' clang 15 verifier
fixes, which is what a Debian 13 build machine gets.

arm64: sid's 9.1.0+driver cross-built (the compile tests' probe), in Debian's arm64
kernel under qemu-system-aarch64, running Debian's own arm64 Python (guestroot.py):
every program accepted (the `&2` section attached to its tracepoint) and the child's
openat calls counted by arm64's number (56).

One `falco-probes loadtest --jobs 2` boots both kernels at once. From there the results go
the whole way: into the report, through publish (which refuses the broken probe with the
verifier's message unless --allow-unverified), into the catalog and out of `find`.
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
    sid_arm64_probe,
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
from builder.core.report import BuildResult
from builder.loadtest.events import OPENS
from builder.shared.elfcheck import check_probe

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]

BROKEN_DRIVER = "0.0.0+broken"
SID_DRIVER_VERSION = "9.1.0+driver"
# Where the kernels' images come from, whatever Debian this machine runs.
SUITE = ["--suite", "bookworm"]


def _sid_probe(base: Path) -> Path:
    """Debian sid's 9.1.0+driver source (libs 0.23.2) compiled against the real headers."""
    driver = DriverVersion(SID_DRIVER_VERSION, SID_DRIVER_VERSION, (), SID)
    source = prepare_source(driver, shared_cache() / "driversrc")
    out = base / "probe-out-9.1.0"
    result = compile_probe(sysroot(base, "a"), source, out, timeout=COMPILE_TIMEOUT,
                           headers=real_kernel().headers)
    assert result.ok and result.probe is not None, result.reason + "\n" + result.log[-3000:]
    return result.probe


@pytest.fixture(scope="module")
def tested(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    """A build folder with the probes, load-tested by `falco-probes loadtest` (two boots)."""
    needs_vm_tools(arm64=True)
    base = tmp_path_factory.getbasetemp()
    snapshot = compiled_probe(base)
    assert snapshot.probe is not None
    loads = snapshot_loads_with(snapshot.toolchain)
    eight = trixie_probe(base)
    assert eight.probe is not None
    real = snapshot if loads else eight
    assert real.probe is not None
    kernel = real_kernel()
    arm = sid_arm64_probe(base)
    assert arm.result.probe is not None
    out = tmp_path_factory.mktemp("loadtest") / "out"
    broken = broken_copy(real.probe, base / "broken.o")
    on = (kernel.uname_r, kernel.package_version)
    write_built(out, [Built(*on, DKMS_DRIVER_VERSION, probe=snapshot.probe),
                      Built(*on, TRIXIE_DRIVER_VERSION, probe=eight.probe),
                      Built(*on, SID_DRIVER_VERSION, probe=_sid_probe(base)),
                      Built(*on, BROKEN_DRIVER, probe=broken),
                      Built(arm.uname_r, arm.package_version, SID_DRIVER_VERSION,
                            arch="aarch64", probe=arm.result.probe)])
    code = main(["loadtest", str(out), "--cache", str(shared_cache()), *SUITE, "--jobs", "2",
                 "--json"])
    assert code == 0
    return out, {"programs": len(check_probe(real.probe).programs), "uname_r": kernel.uname_r,
                 "driver": real.driver_version, "snapshot_loads": loads,
                 "clang": snapshot.toolchain.clang_version, "arm64_uname_r": arm.uname_r,
                 "arm64_programs": len(check_probe(arm.result.probe).programs)}


def _log(out: Path, result: BuildResult, uname_r: str) -> str:
    return (out / "logs" / result.driver_version / result.arch / uname_r /
            f"{result.file}.loadtest.log").read_text()


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
    # The child opened a file OPENS times: an enter and an exit event each, no more.
    assert test.events == 2 * OPENS
    text = _log(out, results[driver], str(facts["uname_r"]))
    assert f"programs accepted: {programs}/{programs}, attached: 7" in text
    assert "raw_tracepoint/sys_enter: ok" in text and "; raw tracepoint\n" in text
    assert f"events captured: {2 * OPENS}\n" in text
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
    log = _log(out, broken, str(facts["uname_r"]))
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
    assert main(["loadtest", str(out), "--cache", str(shared_cache()), *SUITE, "--json"]) == 0
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
    published = {(p.driver_version, p.arch): p for p in records.probes}
    assert set(published) == {(TRIXIE_DRIVER_VERSION, "x86_64"), (SID_DRIVER_VERSION, "x86_64"),
                              (SID_DRIVER_VERSION, "aarch64")} | \
        ({(DKMS_DRIVER_VERSION, "x86_64")} if facts["snapshot_loads"] else set())
    probe = published[(driver, "x86_64")]
    assert probe.loadtest is not None and probe.loadtest.passed
    assert probe.loadtest.accepted == probe.loadtest.total == programs
    arm = published[(SID_DRIVER_VERSION, "aarch64")].loadtest
    assert arm is not None and arm.passed and arm.kernel == facts["arm64_uname_r"]
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
    status = {(p.driver_version, p.arch): p.loadtest.status for p in records.probes
              if p.loadtest}
    snapshot = "passed" if facts["snapshot_loads"] else "rejected"
    assert status == {(TRIXIE_DRIVER_VERSION, "x86_64"): "passed",
                      (SID_DRIVER_VERSION, "x86_64"): "passed",
                      (SID_DRIVER_VERSION, "aarch64"): "passed",
                      (BROKEN_DRIVER, "x86_64"): "rejected",
                      (DKMS_DRIVER_VERSION, "x86_64"): snapshot}


def _os_release(folder: Path) -> Path:
    path = folder / "os-release"
    path.write_text('ID=debian\nVERSION_ID="12"\n')
    return path


def test_the_newest_driver_versions_capture_the_childs_openat_calls(
        tested: tuple[Path, dict[str, object]]) -> None:
    out, _ = tested
    results = by_driver(out)
    for driver in (TRIXIE_DRIVER_VERSION, SID_DRIVER_VERSION):
        test = results[driver].loadtest
        assert test is not None and test.status == "passed", (driver, test)
        # an enter and an exit event for each openat of the child, no more, no fewer
        assert test.events == 2 * OPENS, (driver, test)


def test_an_arm64_probe_loads_in_its_own_arm64_kernel(tested: tuple[Path, dict[str, object]]
                                                      ) -> None:
    """Every program through arm64's verifier, the `&2` program on its tracepoint, and the
    child's openat calls counted by their arm64 number, in Debian's arm64 Python."""
    out, facts = tested
    result = by_driver(out, "aarch64")[SID_DRIVER_VERSION]
    test = result.loadtest
    programs = facts["arm64_programs"]
    assert test is not None and test.status == "passed", test
    assert test.accepted == test.total == programs
    assert test.kernel == facts["arm64_uname_r"]
    assert test.events == 2 * OPENS
    text = _log(out, result, str(facts["arm64_uname_r"]))
    assert f"programs accepted: {programs}/{programs}, attached: 7" in text
    assert "raw_tracepoint/sched_process_fork&2: ok" in text
    assert "boot: tcg" in text or "boot: kvm" in text
    console = (out / "logs" / "loadtest" / f"{facts['arm64_uname_r']}.console.log").read_text()
    assert "falco-probes-vm: guest exited with 0" in console
    # Debian's arm64 Python ran it: the guest root the load test made of arm64 packages
    roots = [p.read_text() for p in (shared_cache() / "guestroot").glob("*/PACKAGES")]
    assert any("busybox-static_" in r and "-minimal_" in r and "_arm64.deb" in r for r in roots)
