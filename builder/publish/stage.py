"""Publish: probes from build reports into a store, recorded in a catalog fragment.

Never lose a probe: the fragment (JSON Lines, `catalog merge` reads it) gets
one line per probe as soon as the store confirms it, written with one
`write` and fsynced, so a SIGKILL loses nothing that was confirmed. A rerun
skips what the fragment already records and asks the store about the rest;
the store records what it already holds instead of uploading it again.
Failures from the build reports become failure lines in the same fragment.

Everything is checked before anything is written: each probe file exists
inside its report folder, has the size and sha256 the report states, and
passes the ELF check.

Each record links the CI job that built it (`job`, from the build report), its
compile log kept in the store (`log`; the job's or run's page when the report
has no log file, or the store could not take it) and, when a bundle given with
`--attestations` attests its sha256, that bundle kept in the store
(`attestation`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from builder.core import limits
from builder.core.catalog import (
    Catalog,
    fragment_line,
    natural_key,
    read_fragments,
    unambiguous_aliases,
)
from builder.core.drivertypes import BY_NAME, KMOD
from builder.core.errors import ConflictError, InputError, Problem, ProblemsError, StoreError
from builder.core.files import fsync_path
from builder.core.records import (
    FailureRecord,
    LoadTest,
    ProbeRecord,
    RecordKey,
    check_commit,
    check_url,
)
from builder.core.report import BuildResult, iter_reports
from builder.core.schema import one_line
from builder.publish.attest import BundleFile, covering
from builder.publish.stores import Artifact, FailedBuild, Placed, Stop, Store
from builder.shared.elfcheck import check_artifact
from builder.shared.fetch import sha256_file

log = logging.getLogger(__name__)  # the command line shows it (ui.show_library_messages)


MAX_REASON = 2000


# --- provenance: log link and commit --------------------------------------------------

def ci_log_url(env: Mapping[str, str], job_id: str = "") -> str:
    """The Actions run (or job) page, from the variables Actions sets; "" outside Actions."""
    server = env.get("GITHUB_SERVER_URL", "").rstrip("/")
    repository = env.get("GITHUB_REPOSITORY", "")
    run_id = env.get("GITHUB_RUN_ID", "")
    if not (server and repository and run_id):
        return ""
    url = f"{server}/{repository}/actions/runs/{run_id}"
    if job_id:
        if not job_id.isdigit():
            raise InputError(f"job id {job_id!r} is not a number",
                             hint="pass the job's check-run id (Actions: job.check_run_id)")
        url += f"/job/{job_id}"
    wrong = check_url(url)
    if wrong:
        raise InputError(f"log link from GITHUB_SERVER_URL/GITHUB_REPOSITORY/GITHUB_RUN_ID: "
                         f"{wrong}")
    return url


def current_commit(env: Mapping[str, str], cwd: Path | None = None) -> str:
    """This repository's commit: GITHUB_SHA, else `git rev-parse HEAD`, else ""."""
    sha = env.get("GITHUB_SHA", "").strip().lower()
    if not sha:
        try:
            sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True,
                                 text=True, timeout=10, check=True).stdout.strip().lower()
        except (OSError, subprocess.SubprocessError):
            return ""
    return sha if check_commit(sha) is None else ""


@dataclass(frozen=True, slots=True)
class Provenance:
    log: str = ""       # the publishing run's page: the log link of last resort
    commit: str = ""


# --- reading and checking the build reports ---------------------------------------------

Failure = FailureRecord | FailedBuild   # a failed build, with its log file when it has one


def load_reports(paths: Iterable[Path], provenance: Provenance,
                 bundles: Sequence[BundleFile] = (), *, allow_unverified: bool = False,
                 ) -> tuple[list[Artifact], list[Failure]]:
    """Artifacts and failures of the reports; every problem reported at once, nothing used.

    Each artifact carries its log file and the first of `bundles` attesting its sha256.
    A probe the kernel's verifier rejected (`falco-probes loadtest`) is not an artifact
    but a failure (step loadtest, category verifier), nor is a module its kernel refused
    (category refused), unless `allow_unverified`.
    """
    problems: list[Problem] = []
    artifacts: dict[RecordKey, Artifact] = {}
    failures: dict[RecordKey, Failure] = {}
    attested = covering(bundles)
    for folder, result in iter_reports(paths):
        where = str(folder / "report.jsonl")
        log = _log_file(folder, result, where, problems)
        if result.ok:
            artifact = _artifact(folder, result, provenance, where, problems)
            if artifact is None:
                continue
            test = artifact.probe.loadtest
            if test is not None and test.status == "rejected" and not allow_unverified:
                refused = _refused(result, test, provenance)
                failures[refused.key] = refused if log is None else FailedBuild(refused, log)
                continue
            artifact = replace(artifact, log=log, attestation=attested.get(result.sha256))
            key = artifact.probe.key
            other = artifacts.get(key)
            if other is not None and other.probe.sha256 != artifact.probe.sha256:
                problems.append(Problem(where, f"{result.file} is built twice with different "
                                        f"bytes ({other.path} and {artifact.path})",
                                        record=result.file))
                continue
            artifacts[key] = artifact
        else:
            failure = _failure(result, provenance)
            failures[failure.key] = failure if log is None else FailedBuild(failure, log)
    if problems:
        raise ProblemsError(problems, hint="nothing was published; rebuild the probes or pass "
                                           "the folder `falco-probes build --out` wrote")
    return list(artifacts.values()), [f for k, f in failures.items() if k not in artifacts]


def _log_file(folder: Path, result: BuildResult, where: str,
              problems: list[Problem]) -> Path | None:
    """The result's compile log, inside its report folder; None when it names none or the
    file is gone (then the record links the job instead)."""
    if not result.log:
        return None
    path = (folder / result.log).resolve()
    if not path.is_relative_to(folder.resolve()):
        problems.append(Problem(where, f"log {result.log!r} points outside the report folder",
                                record=result.file, field="log"))
        return None
    if not path.is_file():
        log.info(f"{where}: {result.file}: its log {result.log} is missing; linking the job "
                 "instead")
        return None
    return path


def _artifact(folder: Path, result: BuildResult, provenance: Provenance, where: str,
              problems: list[Problem]) -> Artifact | None:
    def problem(message: str, field_name: str | None = None) -> None:
        problems.append(Problem(where, message, record=result.file, field=field_name))

    path = (folder / result.path).resolve()
    if not path.is_relative_to(folder.resolve()):
        problem(f"path {result.path!r} points outside the report folder", "path")
        return None
    if not path.is_file():
        problem(f"probe file {result.path} is missing", "path")
        return None
    size = path.stat().st_size
    if size != result.size:
        problem(f"{result.path} has {size} bytes, the report says {result.size}", "size")
        return None
    sha256 = sha256_file(path)
    if sha256 != result.sha256:
        problem(f"{result.path} has sha256 {sha256}, the report says {result.sha256}", "sha256")
        return None
    checked = check_artifact(path, result.driver_type, arch=result.arch,
                             driver_version=result.driver_version)
    if not checked.ok:
        problem(f"{result.path} is not a valid {BY_NAME[result.driver_type].noun}: "
                f"{checked.reason}", "path")
        return None
    probe = result.to_probe(commit=provenance.commit, log=provenance.log)
    return Artifact(probe, path)


def _refused(result: BuildResult, test: LoadTest, provenance: Provenance) -> FailureRecord:
    """A probe the verifier rejected (a module its kernel refused), as the failure publish
    records instead of it."""
    failure = _failure(result, provenance)
    if result.driver_type == KMOD.name:
        built_by = result.compiler.get("gcc", "")
        reason = f"the {test.kernel or 'kernel'} kernel refused the module" \
                 f"{f' (built by {built_by})' if built_by else ''}: " \
                 f"{test.reason or 'no reason recorded'}"
        return replace(failure, step="loadtest", category="refused",
                       reason=one_line(reason, MAX_REASON))
    # The compiler is half of the answer: the same source can load when an older clang
    # builds it (docs/loadtest.md, "Rejected by the verifier").
    built_by = result.compiler.get("clang", "")
    reason = f"the {test.kernel or 'kernel'} verifier rejected {test.total - test.accepted} " \
             f"of {test.total} programs{f' (built by {built_by})' if built_by else ''}: " \
             f"{test.reason or 'no reason recorded'}"
    return replace(failure, step="loadtest", category="verifier",
                   reason=one_line(reason, MAX_REASON))


def _failure(result: BuildResult, provenance: Provenance) -> FailureRecord:
    return result.to_failure(commit=provenance.commit, log=provenance.log)


# --- the fragment ------------------------------------------------------------------------

class FragmentFile:
    """The fragment publish appends to; reopened by reruns to skip what it records."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        created = not path.exists()
        try:
            self._fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK,
                               0o644)
        except OSError as exc:
            raise InputError(f"{path}: cannot open the fragment: {exc.strerror or exc}"
                             ) from None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            raise InputError(f"{path}: another publish is writing this fragment",
                             hint="wait for it, or give each run its own --fragment") from None
        try:
            if created:
                fsync_path(path.parent)
            self._drop_partial_line()
            existing = read_fragments([path])
        except BaseException:
            os.close(self._fd)
            raise
        self.probes: dict[RecordKey, ProbeRecord] = {r.key: r for r in existing.probes}
        self.failures: set[RecordKey] = {r.key for r in existing.failures}

    def _drop_partial_line(self) -> None:
        """A run killed mid-write can leave a last line without newline: it was never
        confirmed to anyone, so drop it (the store still has the probe; a rerun records it)."""
        size = os.fstat(self._fd).st_size
        if size == 0:
            return
        if size > limits.JSON_LINES.get():
            raise limits.JSON_LINES.exceeded(str(self.path), size)
        data = os.pread(self._fd, size, 0)
        keep = data.rfind(b"\n") + 1
        if keep != len(data):
            log.info(f"{self.path}: dropping an unfinished last line left by an interrupted run")
            os.ftruncate(self._fd, keep)
            os.fsync(self._fd)

    def append(self, record: ProbeRecord | FailureRecord) -> None:
        data = (json.dumps(fragment_line(record), separators=(", ", ": ")) + "\n").encode()
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        os.fsync(self._fd)
        if isinstance(record, ProbeRecord):
            self.probes[record.key] = record
        else:
            self.failures.add(record.key)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)

    def __enter__(self) -> FragmentFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- publishing ---------------------------------------------------------------------------

@dataclass
class PublishSummary:
    uploaded: int = 0       # written to the store by this run
    present: int = 0        # already in the store: recorded without uploading
    skipped: int = 0        # already recorded in the fragment
    failures: int = 0       # failure lines written
    left: int = 0           # not published because the run stopped (budget, deadline, error)
    stopped: str = ""       # "", "budget", "deadline" or "error"
    conflicts: list[str] = field(default_factory=list)
    error: str = ""         # the store failure that ended the run (exit 4)

    def as_dict(self) -> dict[str, Any]:
        return {"uploaded": self.uploaded, "present": self.present, "skipped": self.skipped,
                "failures": self.failures, "left": self.left, "stopped": self.stopped or None,
                "complete": self.left == 0 and not self.conflicts and not self.error,
                "conflicts": list(self.conflicts), "error": self.error or None}


OnProbe = Callable[[ProbeRecord, bool], None]


def resolve_aliases(artifacts: list[Artifact], catalog: Catalog,
                    ) -> tuple[list[Artifact], list[tuple[ProbeRecord, str]]]:
    """Keep only aliases that answer one probe, across the catalog and this batch.

    Returns the artifacts with their kept aliases, and the (catalog probe,
    alias) pairs this batch takes away (a new probe's own name, or a name now
    claimed twice), so a directory store can retire those links before it
    places the new files. catalog merge applies the same rule afterwards.
    """
    batch = {a.probe.key: a for a in artifacts}
    known = [r for r in catalog.probes() if r.key not in batch]
    keep = unambiguous_aliases([*known, *(a.probe for a in artifacts)])
    resolved = [replace(a, probe=replace(a.probe, aliases=keep[a.probe.key]))
                for a in artifacts]
    stale = [(r, alias) for r in known for alias in r.aliases if alias not in keep[r.key]]
    for artifact, new in zip(artifacts, resolved, strict=True):
        for alias in sorted(set(artifact.probe.aliases) - set(new.probe.aliases)):
            log.info(f"{artifact.file}: not serving alias {alias}: another probe answers it")
    return resolved, stale


def publish_order(artifact: Artifact) -> tuple[Any, ...]:
    """Family by family (each family's releases are listed once), oldest kernel first."""
    probe = artifact.probe
    return (natural_key(probe.driver_version), probe.arch, probe.target,
            natural_key(probe.kernel_release), natural_key(probe.kernel_version))


def publish(artifacts: Iterable[Artifact], failures: Iterable[Failure], store: Store,
            fragment: FragmentFile, *, on_probe: OnProbe | None = None,
            on_step: Callable[[], None] | None = None,
            summary: PublishSummary | None = None) -> PublishSummary:
    """Put every artifact into the store and record it, then every failure with its log;
    returns what happened.

    Conflicts (the store or the fragment holds other bytes under the name)
    are collected and the run goes on with the other probes. Failures left when
    the run stops are still recorded, linking the job that built them. Drafts
    are published once, at the end, so failure logs share the probes' drafts.
    A StoreError ends the run: it is raised after `summary` (pass one to read it
    then) records it, with how many probes are left.
    """
    run = _Run(store, fragment, on_probe, summary if summary is not None else PublishSummary())
    todo = run.unrecorded(artifacts, on_step)
    try:
        try:
            for artifact in todo:
                try:
                    store.publish(artifact, run.confirm)
                except ConflictError as exc:
                    run.summary.conflicts.append(exc.message)
                    run.conflicted += 1
                if on_step is not None:
                    on_step()
        except Stop as stop:
            run.summary.stopped = stop.reason
        run.record_failures(failures)
        try:
            store.finish(run.confirm)
        except Stop as stop:
            run.summary.stopped = run.summary.stopped or stop.reason
    except StoreError as exc:
        run.summary.stopped, run.summary.error = "error", exc.message
        raise
    finally:
        run.summary.left = len(todo) - len(run.done) - run.conflicted
    return run.summary


@dataclass
class _Run:
    """One publish run: what it confirmed, into the fragment and the summary."""

    store: Store
    fragment: FragmentFile
    on_probe: OnProbe | None
    summary: PublishSummary = field(default_factory=PublishSummary)
    done: set[RecordKey] = field(default_factory=set)
    conflicted: int = 0

    def unrecorded(self, artifacts: Iterable[Artifact],
                   on_step: Callable[[], None] | None) -> list[Artifact]:
        """The artifacts the fragment does not record yet, in publish order."""
        todo: list[Artifact] = []
        for artifact in sorted(artifacts, key=publish_order):
            recorded = self.fragment.probes.get(artifact.probe.key)
            if recorded is None:
                todo.append(artifact)
                continue
            if recorded.sha256 == artifact.probe.sha256:
                self.summary.skipped += 1
            else:
                self.summary.conflicts.append(
                    f"{artifact.file}: {self.fragment.path} records sha256 {recorded.sha256}, "
                    f"the build report {artifact.probe.sha256}")
            if on_step is not None:
                on_step()
        return todo

    def confirm(self, artifact: Artifact, placed: Placed) -> None:
        record = replace(artifact.probe, url=placed.url, release=placed.release,
                         log=placed.log or artifact.probe.log, attestation=placed.attestation)
        self.fragment.append(record)
        self.done.add(record.key)
        if placed.uploaded:
            self.summary.uploaded += 1
        else:
            self.summary.present += 1
        if self.on_probe is not None:
            self.on_probe(record, placed.uploaded)

    def confirm_failure(self, item: FailedBuild, url: str) -> None:
        self._record(replace(item.failure, log=url or item.failure.log))

    def _record(self, failure: FailureRecord) -> None:
        if failure.key not in self.fragment.failures:
            self.fragment.append(failure)
            self.summary.failures += 1

    def record_failures(self, failures: Iterable[Failure]) -> None:
        """Each failure with its log in the store; once the run has stopped, linking the
        job that built it instead."""
        for failure in failures:
            record = failure.failure if isinstance(failure, FailedBuild) else failure
            if record.key in self.fragment.failures or record.key in self.fragment.probes:
                continue
            if isinstance(failure, FailedBuild) and not self.summary.stopped:
                try:
                    self.store.publish_failure(failure, self.confirm_failure)
                    continue
                except Stop as stop:
                    self.summary.stopped = stop.reason
            self._record(record)
