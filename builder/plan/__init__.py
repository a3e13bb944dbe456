"""Plan: desired probes (probes.yaml x kernels) minus what the catalog holds.

Takes: the config, the kernels of its targets (kernels/) and the loaded catalog.
Gives: jobs grouped by kernel (headers are fetched once per kernel and every missing
driver version is compiled against them), each probe placed at the loader's default
path or, for a twin kernel, under its root (twins.py), plus what was left out and
why. Sharding spreads kernel groups over CI legs deterministically.

`plan_targets` is the one planning pipeline (kernels -> catalog -> plan ->
limit -> shards) that `plan`, `build --target` and `demo` call; `make_plan`
below it is pure.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from builder.core.catalog import Catalog, natural_key
from builder.core.config import Config
from builder.core.drivertypes import DEFAULT_TYPE
from builder.core.errors import InputError, Problem, ProblemsError
from builder.core.limits import MAX_COUNT
from builder.core.naming import names_for_driver
from builder.core.records import (
    FailureRecord,
    Kernel,
    Left,
    ProbeName,
    Twin,
    check_driver_type,
    check_driver_version,
    check_file,
    check_root,
    check_twins,
    kernel_from_mapping,
    kernel_to_dict,
    root_prefix,
    twins_from_list,
    twins_to_list,
    validate_name_parts,
)
from builder.core.schema import Field, Schema, Where, each, in_range
from builder.core.versions import FalcoReleases
from builder.kernels.targets import TargetKernels, kernels_for_targets
from builder.plan.twins import FileName, Member, Placement, place_twins

MAX_SHARDS = 256  # GitHub Actions refuses a matrix with more legs
PLAN_SCHEMA_VERSION = 3  # 2: each job lists its probes with their names; 3: twin roots


@dataclass(frozen=True, slots=True)
class Planned:
    """One probe to build: its driver version, the names its loaders request, which try."""

    driver_version: str
    name: ProbeName               # the name the driver version's own Falco releases request
    aliases: tuple[str, ...]      # every other file name a supported loader requests
    attempt: int = 1              # 1 = first try
    root: str = ""                # twin root ("" = the loader's default path), twins.py
    twins: tuple[Twin, ...] = ()  # the other kernels whose loaders request this file

    @property
    def driver_type(self) -> str:
        return self.name.driver_type

    @property
    def store_path(self) -> str:
        """Where it will be published, relative to the store (twin root included)."""
        name = self.name
        return f"{root_prefix(self.root)}{self.driver_version}/{name.arch}/{name.file}"


@dataclass(frozen=True, slots=True)
class Job:
    """One kernel and the probes to compile against its headers."""

    kernel: Kernel
    probes: tuple[Planned, ...]

    @property
    def weight(self) -> int:
        return len(self.probes)

    @property
    def driver_versions(self) -> tuple[str, ...]:
        return tuple(p.driver_version for p in self.probes)


def plan_probe(kernel: Kernel, driver_version: str, releases: FalcoReleases,
               attempt: int = 1, driver_type: str = DEFAULT_TYPE) -> Planned:
    """Name a probe once, here: every later stage uses these names."""
    name, aliases = names_for_driver(kernel.host, releases.falco_for(driver_version),
                                     driver_type)
    return Planned(driver_version, name, aliases, attempt)


def plan_job(kernel: Kernel, driver_versions: Sequence[str], releases: FalcoReleases,
             attempts: Sequence[int] = (), driver_type: str = DEFAULT_TYPE) -> Job:
    tries = list(attempts) or [1] * len(driver_versions)
    return Job(kernel, tuple(plan_probe(kernel, d, releases, a, driver_type)
                             for d, a in zip(driver_versions, tries, strict=True)))


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
    """Jobs for every (kernel, driver version, driver type) the catalog does not hold yet,
    each file placed at the loader's default path or, for a twin kernel, under its root
    (a module by the same rule as a probe: its name differs only by its extension)."""
    wanted = [d for d in config.driver_versions
              if driver_versions is None or d.version in driver_versions]
    failures = {(f.driver_version, f.arch, f.file, f.root): f for f in catalog.failures()}
    ordered = sorted(set(kernels), key=_kernel_order)
    named = {kernel.key: [plan_probe(kernel, d.version, config.releases, driver_type=kind)
                          for d in wanted for kind in d.types]
             for kernel in ordered}
    placements = _placements(config, ordered, named, catalog)
    jobs: list[Job] = []
    left: list[Left] = []
    for kernel in ordered:
        todo: list[Planned] = []
        for planned in named[kernel.key]:
            file = (planned.driver_version, kernel.arch, planned.name.file)
            place = placements[(file, kernel.key)]
            planned = replace(planned, root=place.root, twins=place.twins)
            if _built(catalog, planned, kernel):
                continue
            failure = failures.get((*file, planned.root))
            if failure is not None:
                until = backoff_until(failure, config.build.backoff_hours)
                if until is not None and now < until:
                    left.append(Left(kernel.target, kernel.arch, kernel.host.uname_r,
                                     planned.driver_version, f"failed {failure.attempts}x at "
                                     f"{failure.step}; retry after {until:%Y-%m-%dT%H:%MZ}"))
                    continue
                planned = replace(planned, attempt=failure.attempts + 1)
            todo.append(planned)
        if todo:
            jobs.append(Job(kernel, tuple(todo)))
    return Plan(tuple(jobs), tuple(left))


@dataclass(frozen=True, slots=True)
class TargetPlan:
    """A plan of probes.yaml's targets, and the kernels it was made from."""

    plan: Plan
    found: TargetKernels        # every kernel kept, skipped (and why), entries left out


def plan_targets(config: Config, catalog: Catalog, now: dt.datetime, *, cache: Path | None,
                 targets: Sequence[str] = (), driver_versions: Sequence[str] | None = None,
                 release: re.Pattern[str] | None = None, limit: int = 0,
                 shards: int = 1) -> TargetPlan:
    """The kernels of the targets (or of `targets`), those whose `uname -r` matches
    `release`, planned against the catalog, the first `limit` kernels (0: all), sharded;
    the kernels a target's filter skipped are listed in the plan's `left_out`."""
    found = kernels_for_targets(config, targets, cache)
    kernels = [k for k in found.kernels if release is None or release.search(k.host.uname_r)]
    plan = make_plan(config, kernels, catalog, now, driver_versions=driver_versions)
    if limit:
        plan = replace(plan, jobs=plan.jobs[:limit])
    plan = shard(plan, shards)
    skipped = tuple(x for x in found.left
                    if release is None or release.search(x.kernel_release))
    return TargetPlan(replace(plan, left_out=(*skipped, *plan.left_out)), found)


def _placements(config: Config, kernels: Sequence[Kernel],
                named: Mapping[str, list[Planned]], catalog: Catalog,
                ) -> dict[tuple[FileName, str], Placement]:
    """Where each kernel's file of each name goes: twins (kernels whose loaders request
    one file) each get their own place (twins.py)."""
    members: dict[FileName, list[Member]] = defaultdict(list)
    rules: dict[str, str] = {}
    for kernel in kernels:
        rules[kernel.key] = _owner_rule(config, kernel)
        for planned in named[kernel.key]:
            members[(planned.driver_version, kernel.arch, planned.name.file)].append(
                Member(kernel, planned.name))

    def held_by(file: FileName) -> str | None:
        record = catalog.lookup(*file)
        return None if record is None else record.uname_r

    return place_twins(members, lambda m: rules[m.kernel.key], held_by)


def _owner_rule(config: Config, kernel: Kernel) -> str:
    """The twins.owner rule of the kernel's target (its family: ubuntu for ubuntu-aws)."""
    for target in config.targets:
        if kernel.target == target.name or kernel.target.startswith(f"{target.name}-"):
            return target.twins_owner
    return "native"


def _built(catalog: Catalog, planned: Planned, kernel: Kernel) -> bool:
    """The catalog holds this probe already: at its place, built for this kernel (or by a
    record that does not say for which: catalog schema 1)."""
    record = catalog.lookup(planned.driver_version, kernel.arch, planned.name.file, planned.root)
    return record is not None and record.uname_r in ("", kernel.host.uname_r)


def twin_groups(plan: Plan) -> int:
    """How many files of the plan are requested by more than one of its kernels."""
    return len({(p.driver_version, job.kernel.arch, p.name.file)
                for job in plan.jobs for p in job.probes if p.twins})


def require_unique_paths(jobs: Iterable[Job], where: str) -> None:
    """Refuse jobs that would publish two results at one place (or build one kernel's
    probe twice): every planned store path is its kernel's alone."""
    owners: dict[str, str] = {}
    for job in jobs:
        for planned in job.probes:
            path, uname_r = planned.store_path, job.kernel.host.uname_r
            if path in owners:
                raise InputError(f"{where}: {path} is planned twice, for {owners[path]} and "
                                 f"for {uname_r}",
                                 hint="twin kernels need roots of their own: regenerate the "
                                      "plan with this version of `falco-probes plan`")
            owners[path] = uname_r


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
    jobs = [{"kernel": kernel_to_dict(job.kernel),
             "probes": [_planned_to_dict(p) for p in job.probes]} for job in plan.jobs]
    doc: dict[str, Any] = {
        "schema_version": PLAN_SCHEMA_VERSION,
        "summary": {"kernels": len(plan.jobs), "compiles": plan.compiles,
                    "paths": len({p.store_path for j in plan.jobs for p in j.probes}),
                    "twin_groups": twin_groups(plan),
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


def _planned_to_dict(planned: Planned) -> dict[str, Any]:
    name = planned.name
    return {"driver_version": planned.driver_version, "target": name.target,
            "kernel_release": name.kernel_release, "kernel_version": name.kernel_version,
            "arch": name.arch, "aliases": list(planned.aliases), "attempt": planned.attempt,
            "driver_type": name.driver_type, "root": planned.root,
            "twins": twins_to_list(planned.twins)}


_PLANNED_SCHEMA = Schema("planned probe", [
    Field("driver_version", str, check=check_driver_version),
    Field("target", str),
    Field("kernel_release", str),
    Field("kernel_version", str),
    Field("arch", str),
    Field("aliases", list, required=False, default=[], check=each(check_file)),
    Field("attempt", int, required=False, default=1, check=in_range(1, MAX_COUNT)),
    Field("driver_type", str, required=False, default=DEFAULT_TYPE, check=check_driver_type),
    Field("root", str, required=False, default="",
          check=lambda v: None if v == "" else check_root(v)),
    Field("twins", list, required=False, default=[], check=check_twins),
])


def _planned_from_dict(raw: object, where: Where, problems: list[Problem]) -> Planned | None:
    clean = _PLANNED_SCHEMA.parse(raw, where, problems)
    if clean is None:
        return None
    name = ProbeName(clean["target"], clean["kernel_release"], clean["kernel_version"],
                     clean["arch"], clean["driver_type"])
    wrong = validate_name_parts(name.target, name.kernel_release, name.kernel_version,
                                name.arch)
    if wrong:
        problems.append(where.problem("; ".join(wrong)))
        return None
    return Planned(clean["driver_version"], name, tuple(clean["aliases"]), clean["attempt"],
                   clean["root"], twins_from_list(clean["twins"]))


def plan_from_dict(doc: Mapping[str, Any], path: str) -> Plan:
    if not isinstance(doc, Mapping) or doc.get("schema_version") != PLAN_SCHEMA_VERSION:
        raise InputError(f"{path}: not a falco-probes plan (schema_version "
                         f"{PLAN_SCHEMA_VERSION} expected)", hint="create it with "
                         "`falco-probes plan --out FILE`")
    problems: list[Problem] = []
    jobs: list[Job] = []
    raw_jobs = doc.get("jobs") or []
    if not isinstance(raw_jobs, list):
        raise InputError(f"{path}: jobs must be a list", hint="regenerate the plan")
    for i, raw in enumerate(raw_jobs):
        kernel = kernel_from_mapping(raw.get("kernel") if isinstance(raw, dict) else None,
                                     path, f"jobs[{i}].kernel", problems)
        raw_probes = raw.get("probes") if isinstance(raw, dict) else None
        if not isinstance(raw_probes, list) or not raw_probes:
            problems.append(Problem(path, "probes must be a non-empty list",
                                    record=f"jobs[{i}]", field="probes"))
            continue
        probes = [_planned_from_dict(p, Where(path, None, f"jobs[{i}].probes[{j}]"), problems)
                  for j, p in enumerate(raw_probes)]
        if kernel is not None and all(p is not None for p in probes):
            jobs.append(Job(kernel, tuple(p for p in probes if p is not None)))
    if problems:
        raise ProblemsError(problems, hint="regenerate the plan with `falco-probes plan`")
    return Plan(tuple(jobs), (), _shards(doc.get("shards"), len(jobs), path))


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
