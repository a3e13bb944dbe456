"""Plan: desired probes (probes.yaml x kernels) minus what the catalog holds.

Pure: takes the config, the discovered kernels and the loaded catalog, and
returns jobs grouped by kernel (headers are fetched once per kernel and
every missing driver version is compiled against them), plus what was left
out and why. Sharding spreads kernel groups over CI legs deterministically.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .catalog import Catalog, natural_key
from .config import Config
from .errors import InputError, Problem, ProblemsError
from .limits import MAX_COUNT
from .naming import names_for_driver
from .records import (
    FailureRecord,
    Kernel,
    check_driver_version,
    kernel_from_mapping,
    kernel_to_dict,
)

MAX_SHARDS = 256  # GitHub Actions refuses a matrix with more legs
PLAN_SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class Job:
    """One kernel and the driver versions to compile against its headers."""

    kernel: Kernel
    driver_versions: tuple[str, ...]
    attempts: tuple[int, ...]  # per driver version: which attempt this is (1 = first)

    @property
    def weight(self) -> int:
        return len(self.driver_versions)


@dataclass(frozen=True, slots=True)
class Left:
    """A desired probe the plan does not build, and why."""

    target: str
    arch: str
    kernel_release: str
    driver_version: str
    reason: str


@dataclass(frozen=True, slots=True)
class Plan:
    jobs: tuple[Job, ...]
    left_out: tuple[Left, ...]
    shards: tuple[tuple[int, ...], ...] = ()  # job indices per shard

    @property
    def compiles(self) -> int:
        return sum(job.weight for job in self.jobs)


def backoff_until(failure: FailureRecord, hours: Sequence[int]) -> dt.datetime | None:
    """When a failed probe may be tried again: longer waits after each attempt."""
    if not failure.last_attempt:
        return None
    last = dt.datetime.strptime(failure.last_attempt, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    wait = hours[min(failure.attempts, len(hours)) - 1] if hours else 0
    return last + dt.timedelta(hours=wait)


def make_plan(config: Config, kernels: Iterable[Kernel], catalog: Catalog, now: dt.datetime,
              *, driver_versions: Sequence[str] | None = None) -> Plan:
    """Jobs for every (kernel, driver version) the catalog does not hold yet."""
    wanted = [d for d in config.driver_versions
              if driver_versions is None or d.version in driver_versions]
    failures = {(f.driver_version, f.arch, f.file): f for f in catalog.failures()}
    jobs: list[Job] = []
    left: list[Left] = []
    for kernel in sorted(set(kernels), key=_kernel_order):
        todo: list[str] = []
        attempts: list[int] = []
        for driver in wanted:
            name, _aliases = names_for_driver(kernel.host, driver.falco_versions())
            if catalog.lookup(driver.version, kernel.arch, name.file) is not None:
                continue
            failure = failures.get((driver.version, kernel.arch, name.file))
            attempt = 1
            if failure is not None:
                until = backoff_until(failure, config.build.backoff_hours)
                if until is not None and now < until:
                    left.append(Left(kernel.target, kernel.arch, kernel.host.uname_r,
                                     driver.version, f"failed {failure.attempts}x at "
                                     f"{failure.step}; retry after {until:%Y-%m-%dT%H:%MZ}"))
                    continue
                attempt = failure.attempts + 1
            todo.append(driver.version)
            attempts.append(attempt)
        if todo:
            jobs.append(Job(kernel, tuple(todo), tuple(attempts)))
    return Plan(tuple(jobs), tuple(left))


def _kernel_order(kernel: Kernel) -> tuple[Any, ...]:
    return (kernel.target, kernel.arch, natural_key(kernel.host.uname_r), kernel.key)


def shard(plan: Plan, shards: int) -> Plan:
    """Spread jobs over `shards` legs, balancing compiles; same plan, same shards."""
    if not 1 <= shards <= MAX_SHARDS:
        raise InputError(f"--shards must be between 1 and {MAX_SHARDS}, got {shards}",
                         hint="GitHub Actions accepts at most 256 jobs in one matrix")
    shards = min(shards, max(1, len(plan.jobs)))
    loads = [0] * shards
    members: list[list[int]] = [[] for _ in range(shards)]
    # Heaviest first, ties by position: greedy "least loaded leg" is deterministic.
    order = sorted(range(len(plan.jobs)), key=lambda i: (-plan.jobs[i].weight, i))
    for index in order:
        leg = min(range(shards), key=lambda s: (loads[s], s))
        members[leg].append(index)
        loads[leg] += plan.jobs[index].weight
    return Plan(plan.jobs, plan.left_out, tuple(tuple(sorted(m)) for m in members))


# --- the plan file: what `build --plan FILE --shard N` reads --------------------------

def plan_to_dict(plan: Plan) -> dict[str, Any]:
    jobs = [{"kernel": kernel_to_dict(job.kernel), "driver_versions": list(job.driver_versions),
             "attempts": list(job.attempts)} for job in plan.jobs]
    doc: dict[str, Any] = {
        "schema_version": PLAN_SCHEMA_VERSION,
        "summary": {"kernels": len(plan.jobs), "compiles": plan.compiles,
                    "left_out": len(plan.left_out), "shards": len(plan.shards)},
        "jobs": jobs,
        "shards": [list(s) for s in plan.shards],
        "left_out": [{"target": x.target, "arch": x.arch, "kernel_release": x.kernel_release,
                      "driver_version": x.driver_version, "reason": x.reason}
                     for x in plan.left_out],
    }
    doc["digest"] = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()
    return doc


def matrix(plan: Plan) -> dict[str, Any]:
    """A GitHub Actions strategy.matrix: one leg per non-empty shard."""
    return {"include": [{"shard": i, "kernels": len(s),
                         "compiles": sum(plan.jobs[j].weight for j in s)}
                        for i, s in enumerate(plan.shards) if s]}


def plan_from_dict(doc: Mapping[str, Any], path: str) -> Plan:
    if not isinstance(doc, Mapping) or doc.get("schema_version") != PLAN_SCHEMA_VERSION:
        raise InputError(f"{path}: not a falco-probes plan (schema_version "
                         f"{PLAN_SCHEMA_VERSION} expected)", hint="create it with "
                         "`falco-probes plan --out FILE`")
    problems: list[Problem] = []
    jobs: list[Job] = []
    raw_jobs = doc.get("jobs") or []
    if not isinstance(raw_jobs, list):
        raise InputError(f"{path}: jobs must be a list", hint="regenerate the plan with "
                                                              "`falco-probes plan`")
    for i, raw in enumerate(raw_jobs):
        item = raw if isinstance(raw, dict) else {}
        kernel = kernel_from_mapping(item.get("kernel"), path, f"jobs[{i}].kernel", problems)
        versions, attempts = item.get("driver_versions"), item.get("attempts")
        wrong = _versions_problem(versions)
        if wrong or not isinstance(versions, list):
            problems.append(Problem(path, wrong or "", record=f"jobs[{i}]",
                                    field="driver_versions"))
            continue
        if not (isinstance(attempts, list) and len(attempts) == len(versions)
                and all(_is_count(a) for a in attempts)):
            attempts = [1] * len(versions)
        if kernel is not None:
            jobs.append(Job(kernel, tuple(versions), tuple(attempts)))
    if problems:
        raise ProblemsError(problems, hint="regenerate the plan with `falco-probes plan`")
    return Plan(tuple(jobs), (), _shards(doc.get("shards"), len(jobs), path))


def _versions_problem(versions: object) -> str | None:
    if not (isinstance(versions, list) and all(isinstance(v, str) for v in versions)):
        return "driver_versions must be a list of strings"
    bad = next((v for v in versions if check_driver_version(v)), None)
    return f"driver version {bad!r}: {check_driver_version(bad)}" if bad is not None else None


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_COUNT


def _shards(raw: object, jobs: int, path: str) -> tuple[tuple[int, ...], ...]:
    """The plan's shards: lists of job indices, each naming a job that exists."""
    if raw is None:
        return ()
    if not isinstance(raw, list) or len(raw) > MAX_SHARDS or not all(
            isinstance(s, list) and all(isinstance(j, int) and not isinstance(j, bool)
                                        for j in s) for s in raw):
        raise InputError(f"{path}: shards must be at most {MAX_SHARDS} lists of job numbers",
                         hint="regenerate the plan with `falco-probes plan`")
    for members in raw:
        for j in members:
            if not 0 <= j < jobs:
                raise InputError(f"{path}: shard refers to job {j}, which does not exist")
    return tuple(tuple(s) for s in raw)


def shard_jobs(plan: Plan, index: int | None) -> tuple[Job, ...]:
    if index is None:
        return plan.jobs
    if not plan.shards:
        raise InputError("this plan has no shards; drop --shard or plan with --shards N")
    if not 0 <= index < len(plan.shards):
        raise InputError(f"--shard {index} is out of range: the plan has "
                         f"{len(plan.shards)} shards (0 to {len(plan.shards) - 1})")
    return tuple(plan.jobs[i] for i in plan.shards[index])
