"""loadtest/guest.py, what runs inside the VM: one JSON line per probe in the results file
as soon as it is known, progress on the console, the capture only where there is a
recipe. The kernel is stood in for here; tests/e2e/test_loadtest_boot.py boots one."""

from __future__ import annotations

import json
import resource
from pathlib import Path
from typing import Any

import pytest

from builder.loadtest import guest
from builder.loadtest.loader import Capture, ProbeResult, ProgramResult


def test_results_are_written_probe_by_probe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    seen: list[tuple[str, bool]] = []

    def load_probe(path: str, bpf: object, *, capture: Capture | None = None) -> ProbeResult:
        # what the results file holds by now: the earlier probes' lines, each whole
        done = (tmp_path / "results.jsonl").read_text().splitlines()
        assert len(done) == len(seen)
        seen.append((path, capture is not None))
        if path.endswith("bad.o"):
            return ProbeResult(path, "6.1.0-1-amd64", total=2, accepted=1, programs=[
                ProgramResult("a", True, 4),
                ProgramResult("b", False, 4, error="EACCES", log="R1 invalid mem access\n")])
        return ProbeResult(path, "6.1.0-1-amd64", total=2, accepted=2, attached=2, events=6)

    monkeypatch.setattr(guest, "load_probe", load_probe)
    monkeypatch.setattr(guest, "Bpf", lambda: object())
    monkeypatch.setattr(resource, "setrlimit", lambda *args: None)
    job = {"results": str(tmp_path / "results.jsonl"),
           "probes": [{"key": "k1", "path": "/w/good.o", "recipe": {"structs": {}}},
                      {"key": "k2", "path": "/w/bad.o", "recipe": None}]}
    (tmp_path / "job.json").write_text(json.dumps(job))
    assert guest.main([str(tmp_path / "job.json")]) == 0
    assert seen == [("/w/good.o", True), ("/w/bad.o", False)]
    lines = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert [(r["key"], r["passed"], r["accepted"], r["total"], r["events"]) for r in lines] == [
        ("k1", True, 2, 2, 6), ("k2", False, 1, 2, 0)]
    assert lines[1]["reason"] == "b: EACCES: R1 invalid mem access"
    assert lines[1]["programs"][1]["log"] == "R1 invalid mem access\n"
    console = capsys.readouterr().out.splitlines()
    assert console[:4] == ["falco-probes-vm: loading good.o",
                           "falco-probes-vm: 2/2 programs in 0.0 s, 6 events, passed",
                           "falco-probes-vm: loading bad.o",
                           "falco-probes-vm: 1/2 programs in 0.0 s, rejected: b: EACCES: R1 "
                           "invalid mem access"]
    assert console[4].startswith("falco-probes-vm: guest done in ")


def test_a_result_line_carries_the_verdict_and_the_reason() -> None:
    result = ProbeResult("/w/p.o", "k", total=1, accepted=0, error="not a probe")
    line: dict[str, Any] = guest.result_line("key", result)
    assert (line["key"], line["passed"], line["reason"], line["path"]) == (
        "key", False, "not a probe", "/w/p.o")


def test_the_guest_wants_exactly_one_job(capsys: pytest.CaptureFixture[str]) -> None:
    assert guest.main([]) == 2
    assert capsys.readouterr().err.startswith("usage: python -m builder.loadtest.guest JOB.json")
