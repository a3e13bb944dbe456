"""loadtest/stage.py without a boot: grouping, kernels that cannot be tested, reports,
several kernels at once.

Kernels whose image cannot be had are `not_tested` with the reason, never passed:
a crawler (Ubuntu) kernel, an aarch64 one where its emulator is missing, a Debian
kernel apt does not list, and one whose image download fails (a local apt archive
whose file is gone). Boots are stood in for (LoadTester.attempt): the real ones are
in tests/e2e/test_loadtest_boot.py.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import elftools
import pytest
from loadtestreports import Built, by_file, write_built
from vmtools import needs_vm_tools

import builder
from builder.cli import main
from builder.core.catalog import read_fragments
from builder.core.errors import Problem, ProblemsError
from builder.core.records import LOADTEST_SCHEMA, LoadTest
from builder.core.report import REPORT_NAME, iter_reports, read_report, replace_report
from builder.core.schema import Where
from builder.loadtest.stage import (
    Attempt,
    GuestSpace,
    KernelGroup,
    LoadTester,
    LoadTestOptions,
    group_results,
    guest_pythonpath,
    kernel_of,
    loadtest_of,
    one_line,
    probe_log,
    run_loadtest,
    untestable,
)
from builder.loadtest.vm import Boot
from builder.publish.stage import Provenance, load_reports

UBUNTU = Built("5.15.0-100-generic", "5.15.0-100.110", target="ubuntu-generic")
ARM = Built("6.1.0-56-arm64", "6.1.192-2", arch="aarch64")
GONE = Built("6.1.0-77-amd64", "6.1.777-1")         # listed by the archive, its file is gone
UNLISTED = Built("6.1.0-78-amd64", "6.1.778-1")     # not in the archive at all


def test_probes_are_grouped_by_the_kernel_they_were_built_against(tmp_path: Path) -> None:
    items = [Built("6.1.0-56-amd64", "6.1.192-2", "1.0.0+driver", kernel_release="6.1.192-2-amd64"),
             Built("6.1.0-56-amd64", "6.1.192-2", "2.0.0+driver", kernel_release="6.1.192-2-amd64"),
             Built("6.1.0-55-amd64", "6.1.190-1", "1.0.0+driver"),
             Built("6.1.0-54-amd64", "6.1.180-1", "1.0.0+driver",
                   loadtest={"status": "passed", "accepted": 3, "total": 3}),
             Built("6.1.0-53-amd64", "6.1.170-1", "1.0.0+driver",
                   loadtest={"status": "not_tested", "reason": "no image"})]
    write_built(tmp_path, items, failed=[Built("6.1.0-57-amd64", "6.1.193-1")])
    groups = group_results(iter_reports([tmp_path]))
    # Debian's loader name (6.1.192-2-amd64) is not the kernel: the kernel key says which.
    assert [(g.release, g.version, len(g.members)) for g in groups] == [
        ("6.1.0-53-amd64", "6.1.170-1", 1),      # not_tested: always tried again
        ("6.1.0-55-amd64", "6.1.190-1", 1),
        ("6.1.0-56-amd64", "6.1.192-2", 2)]
    retested = group_results(iter_reports([tmp_path]), retest=True)
    assert [g.release for g in retested] == ["6.1.0-53-amd64", "6.1.0-54-amd64",
                                             "6.1.0-55-amd64", "6.1.0-56-amd64"]
    first = next(iter(by_file(tmp_path).values()))
    assert kernel_of(first) == ("6.1.0-56-amd64", "6.1.192-2")


def test_kernels_without_an_image_here_say_why(tmp_path: Path) -> None:
    write_built(tmp_path, [UBUNTU, ARM, Built("6.1.0-1-amd64", "6.1.1-1")])
    reasons = {g.target + "/" + g.arch: untestable(g)
               for g in group_results(iter_reports([tmp_path]))}
    assert reasons == {
        "ubuntu-generic/x86_64": "no kernel image source for ubuntu-generic kernels: load tests "
                                 "boot Debian's linux-image packages",
        "debian/aarch64": "",      # qemu-system-aarch64 boots it (with a root of its own)
        "debian/x86_64": ""}


def _without(monkeypatch: pytest.MonkeyPatch, program: str) -> None:
    """As if `program` were not installed."""
    which = shutil.which
    monkeypatch.setattr(shutil, "which",
                        lambda name, *a, **k: None if name == program else which(name, *a, **k))


def test_untestable_kernels_are_recorded_not_tested_and_still_publishable(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _without(monkeypatch, "qemu-system-aarch64")
    results = write_built(tmp_path, [UBUNTU, ARM])
    before = (tmp_path / REPORT_NAME).read_text()
    summary = run_loadtest([tmp_path], LoadTestOptions(cache=tmp_path / "cache"))
    assert (summary.passed, summary.rejected, summary.not_tested) == (0, 0, 2)
    assert summary.boots == []
    after = by_file(tmp_path)
    for result in results:
        test = after[result.file].loadtest
        assert test is not None and test.status == "not_tested"
        assert test.reason and test.date
        # Every other field is as the build wrote it.
        assert {**json.loads(_line_of(before, result.file)), "loadtest": None} == \
            {**json.loads(_line_of((tmp_path / REPORT_NAME).read_text(), result.file)),
             "loadtest": None}
        log = tmp_path / "logs" / result.driver_version / result.arch / \
            kernel_of(result)[0] / f"{result.file}.loadtest.log"
        assert "load test: not_tested" in log.read_text()
    artifacts, failures = load_reports([tmp_path], Provenance())
    assert failures == []
    assert sorted(a.probe.loadtest.status for a in artifacts if a.probe.loadtest) == \
        ["not_tested", "not_tested"]
    # the one reason left for an arm64 kernel is outside our reach, and says what to install
    arm = after[results[1].file].loadtest
    assert arm is not None and arm.reason == (
        "qemu-system-aarch64 is not installed (Debian's qemu-system-arm; the load test boots "
        "each aarch64 probe's kernel in it)")


def _line_of(text: str, file: str) -> str:
    return next(line for line in text.splitlines() if json.loads(line)["file"] == file)


def _local_archive(root: Path) -> Path:
    """An unsigned Debian archive listing the image of GONE, whose file is missing."""
    name = f"linux-image-{GONE.uname_r}"
    filename = f"pool/main/l/linux-signed-amd64/{name}_{GONE.package_version}_amd64.deb"
    stanza = (f"Package: {name}\nSource: linux-signed-amd64\nVersion: {GONE.package_version}\n"
              f"Architecture: amd64\nFilename: {filename}\nSize: 1234\n"
              f"SHA256: {hashlib.sha256(b'gone').hexdigest()}\n")
    index = root / "dists" / "bookworm" / "main" / "binary-amd64" / "Packages"
    index.parent.mkdir(parents=True)
    index.write_text(stanza)
    (root / "dists" / "bookworm" / "Release").write_text(
        "Origin: Debian\nLabel: Debian\nSuite: stable\nVersion: 12.12\nCodename: bookworm\n"
        "Date: Tue, 25 Nov 2025 00:00:00 UTC\nArchitectures: amd64\nComponents: main\n"
        f"SHA256:\n {hashlib.sha256(stanza.encode()).hexdigest()} {len(stanza)} "
        "main/binary-amd64/Packages\n")
    sources = root.parent / "local.sources"
    sources.write_text(f"Types: deb\nURIs: file:{root}\nSuites: bookworm\nComponents: main\n"
                       "Trusted: yes\n")
    return sources


def test_a_kernel_whose_image_cannot_be_fetched_is_not_tested(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]
                                                              ) -> None:
    needs_vm_tools()
    if shutil.which("apt-get") is None:
        pytest.skip("apt-get is not installed")
    sources = _local_archive(tmp_path / "archive")
    out = tmp_path / "out"
    write_built(out, [GONE, UNLISTED])
    code = main(["loadtest", str(out), "--sources", str(sources), "--cache",
                 str(tmp_path / "cache"), "--json", "--strict"])
    assert code == 1  # --strict: a probe was not tested
    summary = json.loads(capsys.readouterr().out)
    assert (summary["passed"], summary["rejected"], summary["not_tested"]) == (0, 0, 2)
    tests = {r.kernel_release: r.loadtest for r in by_file(out).values()}
    gone, unlisted = tests[GONE.uname_r], tests[UNLISTED.uname_r]
    assert gone is not None and unlisted is not None
    assert gone.status == unlisted.status == "not_tested"
    assert gone.reason.startswith("the kernel image could not be downloaded: file://")
    assert "no such file" in gone.reason
    assert unlisted.reason == (f"no kernel image: package 'linux-image-{UNLISTED.uname_r}' "
                                  f"version {UNLISTED.package_version} is not in the archive "
                                  "(amd64)")
    # Without --strict the run itself succeeded: the results are in the report.
    assert main(["loadtest", str(out), "--sources", str(sources), "--cache",
                 str(tmp_path / "cache")]) == 0


def test_results_of_the_guest_become_loadtests() -> None:
    date = "2026-01-02T03:04:05Z"
    passed = loadtest_of({"key": "k", "kernel": "6.1.0-56-amd64", "total": 107, "accepted": 107,
                          "passed": True, "events": 0}, "6.1.0-56-amd64", None, date)
    assert passed == LoadTest("passed", "6.1.0-56-amd64", 107, 107, 0, date)
    verifier = "0: (79) r0 = *(u64 *)(r10 +0)\ninvalid read from stack\tR10 off=0 size=8\x1b[0m"
    rejected = loadtest_of({"kernel": "6.1.0-56-amd64", "total": 107, "accepted": 106,
                            "passed": False, "reason": "raw_tracepoint/sys_enter: EACCES: "
                            + verifier * 200}, "6.1.0-56-amd64", None, date)
    assert rejected.status == "rejected" and (rejected.accepted, rejected.total) == (106, 107)
    assert rejected.reason.startswith("raw_tracepoint/sys_enter: EACCES: 0: (79) r0 = *(u64")
    assert len(rejected.reason) == 2000 and rejected.reason.isprintable()
    problems: list[Problem] = []
    assert LOADTEST_SCHEMA.parse(asdict(rejected), Where("x"), problems) is not None
    assert problems == []  # what the catalog's schema accepts
    missing = loadtest_of(None, "6.1.0-56-amd64", None, date, "no kernel image: gone")
    assert missing == LoadTest("not_tested", "6.1.0-56-amd64", date=date,
                               reason="no kernel image: gone")
    assert "reason: no kernel image: gone" in probe_log(None, missing, None)
    assert one_line("a\n\tb\x00c  d") == "a b c d"


def test_a_malformed_loadtest_field_is_refused_by_publish(tmp_path: Path) -> None:
    write_built(tmp_path, [Built("6.1.0-1-amd64", "6.1.1-1",
                                 loadtest={"status": "great", "accepted": 1, "total": 1})])
    with pytest.raises(ProblemsError, match="field 'loadtest.status': 'great' is not allowed"):
        load_reports([tmp_path], Provenance())


@pytest.mark.parametrize(("argv", "message"), [
    (["loadtest"], "give the build output folder"),
    (["loadtest", "out", "--probe", "x.o"], "--probe loads one file"),
    (["loadtest", "out", "--kernel", "("], "is not a regular expression"),
    (["loadtest", "nowhere"], "no build report"),
    (["loadtest", "out", "--accel", "tcg", "--memory", "1"], "--memory 1"),
])
def test_bad_input_exits_2(tmp_path: Path, argv: list[str], message: str,
                           capsys: pytest.CaptureFixture[str],
                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_built(tmp_path / "out", [Built("6.1.0-1-amd64", "6.1.1-1")])
    if "--memory" in argv:
        needs_vm_tools()
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_a_refused_probe_says_which_compiler_built_it(tmp_path: Path) -> None:
    """Debian 13's clang 19 builds the 2022 snapshot into a probe 6.1 rejects, Debian 12's
    clang 14 into one it accepts: the refusal names the compiler, half of the answer."""
    out = tmp_path / "out"
    rejected = {"status": "rejected", "kernel": "6.1.0-56-amd64", "accepted": 96, "total": 107,
                "date": "2026-01-02T03:04:05Z",
                "reason": "raw_tracepoint/filler/sys_empty: EACCES (and 10 more programs): "
                          "R8 invalid mem access 'map_value_or_null'"}
    (result,) = write_built(out, [Built("6.1.0-56-amd64", "6.1.158-1", loadtest=rejected)])
    clang = "Debian clang version 19.1.7 (3+b1)"
    replace_report(out / REPORT_NAME, [replace(result, compiler={"clang": clang})])
    fragment = tmp_path / "fragment.jsonl"
    assert main(["publish", str(out), "--store", "directory", "--path", str(tmp_path / "store"),
                 "--fragment", str(fragment)]) == 0
    (failure,) = read_fragments([fragment]).failures
    assert (failure.step, failure.category) == ("loadtest", "verifier")
    assert failure.reason == (
        f"the 6.1.0-56-amd64 verifier rejected 11 of 107 programs (built by {clang}): "
        "raw_tracepoint/filler/sys_empty: EACCES (and 10 more programs): "
        "R8 invalid mem access 'map_value_or_null'")


# --- several kernels at once --------------------------------------------------------------

def _passing(group: KernelGroup) -> Attempt:
    """What a finished boot of `group` gives: every probe passed."""
    raw = {"|".join(m.key): {"key": "|".join(m.key), "kernel": group.release, "total": 3,
                             "accepted": 3, "passed": True, "events": 6}
           for m in group.members}
    return Attempt("2026-01-02T03:04:05Z", Boot("tcg", "9p", 1.0, True, True), raw)


def _stand_in_boots(monkeypatch: pytest.MonkeyPatch,
                    attempt: Any) -> list[str]:
    """LoadTester.attempt replaced by `attempt(group)`; returns the kernels, as attempted."""
    attempted: list[str] = []

    def fake(self: LoadTester, group: KernelGroup) -> Attempt:
        attempted.append(group.release)
        return attempt(group)  # type: ignore[no-any-return]

    monkeypatch.setattr(LoadTester, "attempt", fake)
    monkeypatch.setattr(LoadTester, "check_tools", lambda self, arch="": None)
    return attempted


def test_kernels_finishing_together_lose_no_result(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Four kernels' boots end at the same moment (a barrier only four VMs at once pass);
    every report rewrite is slowed down, so two writers at once would lose results."""
    kernels = [Built(f"6.1.0-{n}-amd64", f"6.1.{n}-1", driver) for n in (51, 52, 53, 54)
               for driver in ("8.0.0+driver", "9.1.0+driver")]
    out_a, out_b = tmp_path / "a", tmp_path / "b"
    write_built(out_a, kernels[:5])
    write_built(out_b, kernels[5:])      # one kernel's probes in both folders
    together = threading.Barrier(4, timeout=30)

    def boot(group: KernelGroup) -> Attempt:
        together.wait()                  # broken (an error) unless 4 run at once
        return _passing(group)

    _stand_in_boots(monkeypatch, boot)
    def slow_read(path: Path) -> Any:
        found = read_report(path)
        time.sleep(0.05)                 # between reading a report and replacing it
        return found

    monkeypatch.setattr("builder.loadtest.stage.read_report", slow_read)
    summary = run_loadtest([out_a, out_b], LoadTestOptions(cache=tmp_path / "c", jobs=4))
    assert (summary.passed, summary.rejected, summary.not_tested) == (8, 0, 0)
    assert len(summary.boots) == 4
    for folder in (out_a, out_b):
        for result in iter_reports([folder]):
            assert result[1].loadtest is not None and result[1].loadtest.status == "passed"
    assert sum(1 for _ in iter_reports([out_a, out_b])) == 8


def test_one_vm_at_a_time_runs_the_kernels_with_most_probes_first(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_built(tmp_path, [Built("6.1.0-1-amd64", "6.1.1-1"),
                           *(Built("6.1.0-2-amd64", "6.1.2-1", f"{n}.0.0+driver")
                             for n in (1, 2, 3))])
    running = threading.Semaphore(1)

    def boot(group: KernelGroup) -> Attempt:
        assert running.acquire(blocking=False), "two VMs at once with --jobs 1"
        time.sleep(0.05)
        running.release()
        return _passing(group)

    attempted = _stand_in_boots(monkeypatch, boot)
    summary = run_loadtest([tmp_path], LoadTestOptions(cache=tmp_path / "c", jobs=1))
    assert attempted == ["6.1.0-2-amd64", "6.1.0-1-amd64"]
    assert summary.passed == 4


def test_twins_are_each_tested_in_their_own_kernel(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """bookworm's and trixie's 6.12.57 both ask for falco_debian_6.12.57-1-amd64_1.o: two
    files of one name, two kernels, two boots, each result on its own path."""
    twins = [Built("6.12.57+deb12-amd64", "6.12.57-1~deb12u1", "9.1.0+driver",
                   kernel_release="6.12.57-1-amd64"),
             Built("6.12.57+deb13-amd64", "6.12.57-1", "9.1.0+driver",
                   kernel_release="6.12.57-1-amd64")]
    results = write_built(tmp_path, twins)
    assert results[0].file == results[1].file and results[0].path != results[1].path
    booted: dict[str, list[str]] = {}

    def boot(group: KernelGroup) -> Attempt:
        booted[group.release] = [m.result.path for m in group.members]
        attempt = _passing(group)
        events = 4 if "deb13" in group.release else 6  # each result tells its boot
        return replace(attempt, raw={k: {**v, "events": events} for k, v in attempt.raw.items()})

    _stand_in_boots(monkeypatch, boot)
    run_loadtest([tmp_path], LoadTestOptions(cache=tmp_path / "c", jobs=2))
    assert booted == {"6.12.57+deb12-amd64": [results[0].path],
                      "6.12.57+deb13-amd64": [results[1].path]}
    tests = {r.path: r.loadtest for _, r in iter_reports([tmp_path])}
    deb12, deb13 = tests[results[0].path], tests[results[1].path]
    assert deb12 is not None and (deb12.kernel, deb12.events) == ("6.12.57+deb12-amd64", 6)
    assert deb13 is not None and (deb13.kernel, deb13.events) == ("6.12.57+deb13-amd64", 4)
    for result, release in zip(results, ("6.12.57+deb12-amd64", "6.12.57+deb13-amd64"),
                               strict=True):
        assert (tmp_path / "logs" / "9.1.0+driver" / "x86_64" / release /
                f"{result.file}.loadtest.log").is_file()


def test_a_foreign_guest_imports_exactly_this_package_and_pyelftools(tmp_path: Path) -> None:
    """An arm64 guest sees this machine's root at /host; its PYTHONPATH is a folder of links
    to this package and pyelftools, not all of this machine's site-packages."""
    native = GuestSpace(Path("/bin/busybox"), "/venv/bin/python")
    assert guest_pythonpath(tmp_path, native) == str(Path(builder.__file__).resolve()
                                                     .parent.parent)
    foreign = GuestSpace(Path("/r/bin/busybox"), "/usr/bin/python3.11", "/host", Path("/r"))
    assert guest_pythonpath(tmp_path, foreign) == f"/host{tmp_path}/pythonpath"
    links = {p.name: str(p.readlink()) for p in (tmp_path / "pythonpath").iterdir()}
    assert links == {name: "/host" + str(Path(package.__file__ or "").resolve().parent)
                     for name, package in (("builder", builder), ("elftools", elftools))}
    assert foreign.sees(Path("/tmp/w/job.json")) == "/host/tmp/w/job.json"
    assert native.sees(Path("/tmp/w/job.json")) == "/tmp/w/job.json"
