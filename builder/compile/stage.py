"""Build: for each planned kernel, fetch and extract its headers once, then compile,
check and name every driver version it needs. Writes the build report (report.py).

A failure is a result, never an exception: it is written with its step, a
one-line reason and the full log, and the other kernels go on. Only a
missing toolchain (BuildError) stops the run before it starts.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from builder.compile.compilers import compiler_for
from builder.compile.driversrc import PreparedSource, prepare_source
from builder.compile.sysroot import Sysroot, prepare_sysroot
from builder.core import limits
from builder.core.config import Config, DriverVersion
from builder.core.drivertypes import DEFAULT_TYPE
from builder.core.errors import InputError, ProbesError, SourceLayoutError
from builder.core.records import Kernel, release_numbers
from builder.core.report import REPORT_NAME, BuildResult, write_result
from builder.plan import Job, Planned, require_unique_paths
from builder.shared.fetch import Cache, Meter


@dataclass
class BuildSummary:
    built: int = 0
    failed: int = 0
    by_step: dict[str, int] = field(default_factory=dict)
    report: Path | None = None

    def add(self, result: BuildResult) -> None:
        if result.ok:
            self.built += 1
        else:
            self.failed += 1
            self.by_step[result.step] = self.by_step.get(result.step, 0) + 1


@dataclass(frozen=True, slots=True)
class BuildOptions:
    out: Path
    cache: Path
    jobs: int = 2
    timeout: float = 900
    base_dir: Path = Path(".")  # where relative driver source folders are resolved
    job: str = ""               # the CI job running this build (its page), recorded per probe


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Sources:
    """Driver sources prepared once per run, per driver version and type, and shared by
    every kernel (thread-safe)."""

    def __init__(self, config: Config, options: BuildOptions) -> None:
        self._config = config
        self._options = options
        self._lock = threading.Lock()
        self._prepared: dict[tuple[str, str], PreparedSource | ProbesError] = {}

    def get(self, version: str, driver_type: str = DEFAULT_TYPE) -> PreparedSource:
        key = (version, driver_type)
        with self._lock:
            if key not in self._prepared:
                driver = self._driver(version)
                try:
                    self._prepared[key] = prepare_source(
                        driver, self._options.cache, base_dir=self._options.base_dir,
                        driver_type=driver_type)
                except ProbesError as exc:
                    self._prepared[key] = exc
            found = self._prepared[key]
        if isinstance(found, ProbesError):
            raise found
        return found

    def _driver(self, version: str) -> DriverVersion:
        driver = self._config.driver(version)
        if driver is None:
            raise ProbesError(f"driver version {version!r} is not in {self._config.path}")
        return driver


class _Report:
    """The report file, appended line by line from several threads."""

    def __init__(self, handle: IO[str], summary: BuildSummary,
                 on_result: Callable[[BuildResult], None]) -> None:
        self._handle = handle
        self._summary = summary
        self._lock = threading.Lock()
        self._on_result = on_result

    def write(self, result: BuildResult) -> None:
        with self._lock:
            write_result(self._handle, result)
            self._summary.add(result)
            self._on_result(result)


def build(jobs: Sequence[Job], config: Config, options: BuildOptions, *,
          on_result: Callable[[BuildResult], None] | None = None,
          meter: Meter | None = None) -> BuildSummary:
    """Run every job; results go to <out>/report.jsonl as they finish.

    `on_result` hears of each result as it is written (from the build's threads, one at a
    time); `meter` shows the header downloads. The command layer draws both.
    """
    for kind in sorted({p.driver_type for job in jobs for p in job.probes}):
        compiler_for(kind).find_toolchain()  # fail fast, before any download
    require_unique_paths(jobs, "the plan")
    _require_no_earlier_result(jobs, options)
    options.out.mkdir(parents=True, exist_ok=True)
    report_path = options.out / REPORT_NAME
    summary = BuildSummary(report=report_path)
    sources = _Sources(config, options)
    downloads = Cache(options.cache / "downloads")
    with open(report_path, "a", encoding="utf-8") as handle:
        report = _Report(handle, summary, on_result or (lambda result: None))
        with ThreadPoolExecutor(max_workers=max(1, options.jobs)) as pool:
            for future in [pool.submit(_build_kernel, job, options, sources, downloads,
                                       report, meter) for job in jobs]:
                future.result()
    return summary


def _build_kernel(job: Job, options: BuildOptions, sources: _Sources, downloads: Cache,
                  report: _Report, meter: Meter | None) -> None:
    kernel = job.kernel
    started = utc_now()
    step = "download"
    try:
        packages = _download(kernel, downloads, meter)
        step = "extract"
        build_dir = _sysroot(kernel, packages, options).build_dir(kernel.host.uname_r)
    except ProbesError as exc:
        for planned in job.probes:
            report.write(_failure(kernel, planned, step, exc.message, started, options))
        return
    for planned in job.probes:
        report.write(_compile_one(kernel, planned, build_dir, sources, options))


def _require_no_earlier_result(jobs: Sequence[Job], options: BuildOptions) -> None:
    """A result is never overwritten: its report line and its bytes must stay one pair."""
    for job in jobs:
        for planned in job.probes:
            probe, _ = _paths(options, job.kernel, planned)
            if probe.exists():
                raise InputError(f"{probe}: an earlier build in {options.out} already holds "
                                 f"{planned.driver_version} {planned.name.file} for "
                                 f"{job.kernel.host.uname_r}; refusing to overwrite it",
                                 hint="build into a new --out folder (or delete that one)")


def _download(kernel: Kernel, downloads: Cache, meter: Meter | None) -> list[Path]:
    if not kernel.headers:
        raise ProbesError(f"{kernel.key}: the kernel source lists no header packages")
    return [downloads.fetch(h.url, limit=limits.HEADER_ARCHIVE if h.kind == "tar"
                            else limits.HEADER_PACKAGE, sha256=h.sha256, size=h.size,
                            meter=meter)
            for h in kernel.headers]


def _sysroot(kernel: Kernel, packages: list[Path], options: BuildOptions) -> Sysroot:
    """One sysroot per header set, shared by every driver version (and every run)."""
    key = hashlib.sha256("\n".join(f"{h.name} {h.sha256}" for h in kernel.headers)
                         .encode()).hexdigest()[:20]
    return prepare_sysroot(packages, options.cache / "sysroots" / key)


def _paths(options: BuildOptions, kernel: Kernel, planned: Planned) -> tuple[Path, Path]:
    """Where a result goes, keyed by the kernel it is built for (twin kernels share the
    file name): probes/<driver version>/<arch>/<uname -r>/<file>, and its log in logs/."""
    name = planned.name
    folder = Path(planned.driver_version, name.arch, kernel.host.uname_r)
    return (options.out / "probes" / folder / name.file,
            options.out / "logs" / folder / f"{name.file}.log")


def _base(kernel: Kernel, planned: Planned, started: str) -> dict[str, Any]:
    name = planned.name
    return {"driver_version": planned.driver_version, "arch": name.arch, "target": name.target,
            "kernel_release": name.kernel_release, "kernel_version": name.kernel_version,
            "aliases": planned.aliases, "attempts": planned.attempt, "built": started,
            "kernel_key": kernel.key, "driver_type": planned.driver_type,
            "uname_r": kernel.host.uname_r, "package_version": kernel.package_version,
            "root": planned.root, "twins": planned.twins,
            "headers": tuple({"name": h.name, "sha256": h.sha256} for h in kernel.headers)}


def _failure(kernel: Kernel, planned: Planned, step: str, reason: str, started: str,
             options: BuildOptions, log: str = "", category: str = "",
             source: str = "") -> BuildResult:
    _, log_path = _paths(options, kernel, planned)
    _write_text(log_path, log or reason + "\n")
    return BuildResult(ok=False, step=step, reason=_one_line(reason),
                       category=category or _STEP_CATEGORY.get(step, "unknown"), source=source,
                       log=str(log_path.relative_to(options.out)), job=options.job,
                       **_base(kernel, planned, started))


# The category of a failure that is all about its step.
_STEP_CATEGORY = {"download": "download", "extract": "extract", "source": "source",
                  "check": "check"}
FIRST_IGNORING_ALWAYS = (5, 11)  # kbuild ignores `always +=` from Linux 5.11


def _legacy_always_reason(kernel: Kernel, source: PreparedSource) -> str | None:
    """The oldest sources (Falco 0.26-0.29) cannot build for kernels >= 5.11: say why."""
    numbers = release_numbers(kernel.host.uname_r)
    if not source.legacy_always or numbers is None or numbers[:2] < FIRST_IGNORING_ALWAYS:
        return None
    return (f"driver {source.driver_version}'s bpf Makefile uses `always += probe.o`, which "
            f"kbuild ignores from Linux 5.11: this source cannot build a probe for "
            f"{kernel.host.uname_r}")


def _compile_one(kernel: Kernel, planned: Planned, build_dir: Path, sources: _Sources,
                 options: BuildOptions) -> BuildResult:
    started = utc_now()
    version = planned.driver_version
    try:
        source = sources.get(version, planned.driver_type)
    except ProbesError as exc:
        category = "source-layout" if isinstance(exc, SourceLayoutError) else "source"
        return _failure(kernel, planned, "source", exc.message, started, options,
                        category=category)
    work_out = options.out / ".work" / hashlib.sha256(
        f"{kernel.key}|{version}|{planned.driver_type}".encode()).hexdigest()[:16]
    compiler = compiler_for(planned.driver_type)
    result = compiler.compile(build_dir, source, work_out, timeout=options.timeout,
                              headers=kernel.headers, arch=kernel.arch)
    if not result.ok or result.probe is None:
        legacy = None if result.timed_out else _legacy_always_reason(kernel, source)
        return _failure(kernel, planned, result.step or "compile", legacy or result.reason,
                        started, options, result.log,
                        "unsupported-kernel" if legacy else result.category, source.description)
    expected = kernel.host.uname_r if kernel.source == "apt" else None
    check = compiler.check(result.probe, kernel_release=expected, arch=kernel.arch,
                           driver_version=version)
    if not check.ok:
        return _failure(kernel, planned, "check", check.reason, started, options, result.log,
                        source=source.description)
    base = _base(kernel, planned, started)
    probe_path, log_path = _paths(options, kernel, planned)
    probe_path.parent.mkdir(parents=True, exist_ok=True)
    os.replace(result.probe, probe_path)
    _write_text(log_path, result.log)
    fields = result.report_fields()
    fields.pop("ok")
    fields["source"] = source.description
    fields["headers"] = base.pop("headers")
    return BuildResult(ok=True, path=str(probe_path.relative_to(options.out)),
                       log=str(log_path.relative_to(options.out)), job=options.job, **base,
                       **fields)


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line[:300] or "unknown error"
