"""loadtest/stage.py without a boot: grouping, kernels that cannot be tested, reports.

Kernels whose image cannot be had are `not_tested` with the reason, never passed:
a crawler (Ubuntu) kernel, an aarch64 one, a Debian kernel apt does not list,
and one whose image download fails (a local apt archive whose file is gone).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict, replace
from pathlib import Path

import pytest
from loadtestreports import Built, by_file, write_built
from vmtools import needs_vm_tools

from builder.cli import main
from builder.core.catalog import read_fragments
from builder.core.errors import Problem, ProblemsError
from builder.core.records import LOADTEST_SCHEMA, LoadTest
from builder.core.report import REPORT_NAME, iter_reports, replace_report
from builder.core.schema import Where
from builder.loadtest.stage import (
    LoadTestOptions,
    group_results,
    kernel_of,
    loadtest_of,
    one_line,
    probe_log,
    run_loadtest,
    untestable,
)
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
        "debian/aarch64": "no aarch64 VM here: load tests boot x86_64 kernels only",
        "debian/x86_64": ""}


def test_untestable_kernels_are_recorded_not_tested_and_still_publishable(tmp_path: Path
                                                                          ) -> None:
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
