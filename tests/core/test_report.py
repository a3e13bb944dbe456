"""core/report.py: the build report (report.jsonl), one BuildResult per probe: written
and read back whole, refused whole when a line is wrong, and turned into catalog records."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from builder.core.errors import InputError, ProblemsError
from builder.core.records import FailureRecord, LoadTest
from builder.core.report import (
    REPORT_NAME,
    BuildResult,
    iter_reports,
    read_report,
    replace_report,
    result_to_dict,
)

BUILT = BuildResult(True, "6.0.1+driver", "x86_64", "debian", "6.1.0-13-amd64", "1",
                    aliases=("falco_debian_6.1.0-13-amd64_1.o", "falco_b.o"),
                    path="probes/p.o", sha256="a" * 64, size=100, built="2026-01-02T03:04:05Z",
                    headers=({"name": "h.deb", "sha256": "b" * 64},), job="https://ci/1",
                    loadtest=LoadTest("passed", "6.1.0-13-amd64", 2, 2))
FAILED = BuildResult(False, "6.0.1+driver", "x86_64", "debian", "6.1.0-14-amd64", "1",
                     step="compile", reason="error:\n\x1b[31mno such member\x1b[0m",
                     attempts=3, built="2026-01-02T03:04:05Z")


def test_a_report_reads_back_as_written(tmp_path: Path) -> None:
    path = tmp_path / REPORT_NAME
    replace_report(path, [BUILT, FAILED])
    assert read_report(path) == [BUILT, FAILED]
    line = json.loads(path.read_text().splitlines()[0])
    assert line["file"] == "falco_debian_6.1.0-13-amd64_1.o" == BUILT.file
    assert list(iter_reports([tmp_path])) == [(tmp_path, BUILT), (tmp_path, FAILED)]
    with pytest.raises(InputError, match="no build report"):
        list(iter_reports([tmp_path / "elsewhere"]))


def test_every_bad_line_is_reported_and_nothing_is_read(tmp_path: Path) -> None:
    path = tmp_path / REPORT_NAME
    good = result_to_dict(BUILT)
    lines = [good, {**good, "file": "falco_other_1_1.o"}, {**good, "sha256": ""},
             {**good, "loadtest": {"status": "passed", "accepted": 3, "total": 2}},
             {**good, "arch": "sparc"}]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    with pytest.raises(ProblemsError) as refused:
        read_report(path)
    assert [(p.line, p.field) for p in refused.value.problems] == [
        (2, "file"), (3, None), (4, "loadtest.accepted"), (5, "arch")]
    assert refused.value.hint == "the report is written by `falco-probes build`"


def test_results_become_catalog_records() -> None:
    probe = BUILT.to_probe(commit="c" * 40)
    assert (probe.file, probe.aliases, probe.url, probe.log, probe.commit) == (
        BUILT.file, ("falco_b.o",), "", "https://ci/1", "c" * 40)   # own name never an alias
    assert probe.loadtest == BUILT.loadtest
    failure = FAILED.to_failure(log="https://ci/run")
    assert isinstance(failure, FailureRecord)
    assert (failure.step, failure.category, failure.attempts, failure.log) == (
        "compile", "unknown", 3, "https://ci/run")
    assert failure.reason == "error: \\x1b[31mno such member\\x1b[0m"   # one printable line
    assert replace(FAILED, step="lunch", reason="").to_failure().reason == \
        "the build failed without a reason"
