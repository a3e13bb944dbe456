"""publish/stores/__init__.py: what every store shares: the names of a probe's sidecars
(compile log, attestation) and the run's write budget and deadline."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from builder.core.records import FailureRecord, ProbeRecord
from builder.publish.stores import (
    ATTESTATION,
    LOG,
    PROBE,
    Artifact,
    Budget,
    FailedBuild,
    Stop,
    log_name,
    sidecar_kind,
)


def test_sidecars_are_named_after_their_probe_and_told_apart_by_name() -> None:
    assert log_name("falco_debian_6.1.0-1-amd64_1.o") == "falco_debian_6.1.0-1-amd64_1.o.log"
    assert log_name("f.o", 3) == "f.o.attempt-3.log"
    assert [sidecar_kind(n) for n in ("f.o", "f.o.log", "f.o.attempt-3.log",
                                      "f.o.sigstore.json", "attestation-0.sigstore.json")] == [
        PROBE, LOG, LOG, ATTESTATION, ATTESTATION]


def test_artifacts_and_failures_belong_to_one_catalog_file(tmp_path: Path) -> None:
    probe = ProbeRecord("6.0.1+driver", "aarch64", "debian", "6.1.0-1-arm64", "1", "a" * 64, 1,
                        "")
    artifact = Artifact(probe, tmp_path / "p.o")
    assert (artifact.file, artifact.family) == (probe.file,
                                                ("6.0.1+driver", "aarch64", "debian", ""))
    twin = Artifact(replace(probe, root="debian-13-16k"), tmp_path / "p.o")
    assert twin.family == ("6.0.1+driver", "aarch64", "debian", "debian-13-16k")
    failure = FailureRecord("6.0.1+driver", "x86_64", "cos", "5.15.107+", "1", "compile", "x",
                            attempts=2)
    failed = FailedBuild(failure, tmp_path / "x.log")
    assert failed.family == ("6.0.1+driver", "x86_64", "cos", "")
    assert failed.log_name == "falco_cos_5.15.107+_1.o.attempt-2.log"


def test_the_budget_stops_writes_at_the_cap_and_at_the_deadline() -> None:
    now = [100.0]
    budget = Budget(max_uploads=2, deadline=160.0, clock=lambda: now[0])
    budget.take_upload()
    budget.take_upload()
    with pytest.raises(Stop) as stopped:
        budget.take_upload()
    assert stopped.value.reason == "budget" and budget.uploads == 2
    budget.may_wait(59.0)                       # ends before the deadline
    with pytest.raises(Stop) as stopped:
        budget.may_wait(60.0)                   # would end on it
    assert stopped.value.reason == "deadline"
    now[0] = 160.0
    with pytest.raises(Stop, match="deadline"):
        Budget(deadline=160.0, clock=lambda: now[0]).take_upload()   # time before the cap
    unlimited = Budget(clock=lambda: now[0])
    for _ in range(1000):
        unlimited.take_upload()
    unlimited.check_time()
    assert unlimited.uploads == 1000
