"""The build report: one JSON line per probe built or failed, the contract between
`falco-probes build` and `falco-probes publish`.

A build writes, under its output folder:
    report.jsonl                       one BuildResult per line
    probes/<driver_version>/<arch>/<uname -r>/<file>  the checked files, by the kernel
                                       they are for (twin kernels share a file name)
    logs/<driver_version>/<arch>/<uname -r>/<file>.log  the compiler log of each
Paths in the report are relative to the folder holding report.jsonl.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from builder.core.drivertypes import DEFAULT_TYPE
from builder.core.errors import InputError, Problem, ProblemsError
from builder.core.files import atomic_write
from builder.core.jsonio import iter_json_lines
from builder.core.limits import MAX_COUNT, MAX_PROBE_SIZE
from builder.core.records import (
    FAILURE_CATEGORIES,
    FAILURE_STEPS,
    FailureRecord,
    LoadTest,
    ProbeName,
    ProbeRecord,
    Twin,
    check_arch,
    check_driver_type,
    check_driver_version,
    check_file,
    check_kernel_release,
    check_kernel_version,
    check_line,
    check_optional_url,
    check_package_version,
    check_ref,
    check_root,
    check_sha256,
    check_target,
    check_timestamp,
    check_twins,
    loadtest_from_mapping,
    twins_from_list,
    twins_to_list,
    unique_aliases,
)
from builder.core.schema import Field, Schema, Where, each, in_range, longest, one_line, one_of

REPORT_NAME = "report.jsonl"
MAX_REASON = 64 * 1024  # a compiler's message; publish keeps one printable line of it
MAX_FAILURE_REASON = 2000  # what a catalog failure keeps of it


@dataclass(frozen=True, slots=True)
class BuildResult:
    """One probe: built (ok) or not, with everything needed to rebuild or publish it."""

    ok: bool
    driver_version: str
    arch: str
    target: str
    kernel_release: str
    kernel_version: str
    aliases: tuple[str, ...] = ()
    path: str = ""          # the probe file, relative to the report folder (ok only)
    sha256: str = ""
    size: int = 0
    built: str = ""         # UTC time of the build
    log: str = ""           # the compiler log, relative to the report folder
    step: str = ""          # failures: which step failed
    reason: str = ""        # failures: one line
    attempts: int = 1
    driver_ref: str = ""
    driver_source_sha256: str = ""
    compiler: dict[str, str] = field(default_factory=dict)    # clang, llc versions
    headers: tuple[dict[str, str], ...] = ()                  # name, sha256 per package
    kernel_key: str = ""
    duration: float = 0.0
    category: str = ""      # failures: FAILURE_CATEGORIES
    source: str = ""        # exactly what was compiled (PreparedSource.description)
    job: str = ""           # the CI job that ran the build
    loadtest: LoadTest | None = None  # added by `falco-probes loadtest`
    driver_type: str = DEFAULT_TYPE   # drivertypes.DRIVER_TYPES: what was built
    # The kernel the bytes are for: twin kernels share a file name (docs/twins.md).
    uname_r: str = ""
    package_version: str = ""
    root: str = ""                    # where it is published: "" = the default path
    twins: tuple[Twin, ...] = ()      # the other kernels whose loaders request the file
    # A kernel module's device interface, read from its source at build time (ioctl
    # numbers, tracepoint order, capture protocol: compile/kmodiface.py): what the load
    # test asks it with. Empty for an eBPF probe.
    interface: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> ProbeName:
        return ProbeName(self.target, self.kernel_release, self.kernel_version, self.arch,
                         self.driver_type)

    @property
    def file(self) -> str:
        return self.name.file

    # The one place a build result becomes a catalog record (publish and audit alike).

    def to_probe(self, *, commit: str = "", log: str = "") -> ProbeRecord:
        """This built probe as a catalog record; the store adds its url and release.
        `log`: where its log is when the build's own job cannot say (the run's page)."""
        return ProbeRecord(self.driver_version, self.arch, self.target, self.kernel_release,
                           self.kernel_version, self.sha256, self.size, url="",
                           built=self.built, log=self.job or log, commit=commit,
                           driver_ref=self.driver_ref,
                           aliases=unique_aliases(self.file, self.aliases),
                           source=self.source, job=self.job, loadtest=self.loadtest,
                           driver_type=self.driver_type, uname_r=self.uname_r,
                           package_version=self.package_version,
                           compiler=self.compiler_name, root=self.root, twins=self.twins)

    def to_failure(self, *, commit: str = "", log: str = "") -> FailureRecord:
        """This failed build as a catalog failure: the compiler's words on one line."""
        return FailureRecord(self.driver_version, self.arch, self.target, self.kernel_release,
                             self.kernel_version,
                             step=self.step if self.step in FAILURE_STEPS else "compile",
                             reason=one_line(self.reason, MAX_FAILURE_REASON)
                             or "the build failed without a reason",
                             log=self.job or log, attempts=self.attempts,
                             last_attempt=self.built, commit=commit,
                             driver_ref=self.driver_ref, category=self.category or "unknown",
                             aliases=unique_aliases(self.file, self.aliases),
                             source=self.source, job=self.job,
                             driver_type=self.driver_type, uname_r=self.uname_r,
                             package_version=self.package_version, root=self.root,
                             twins=self.twins)

    @property
    def compiler_name(self) -> str:
        """What built it, name and version (`Debian clang version 14.0.6`), one line."""
        return one_line(self.compiler.get("clang", "") or self.compiler.get("gcc", ""), 200)


_SCHEMA = Schema("build result", [
    Field("ok", bool),
    Field("driver_version", str, check=check_driver_version),
    Field("arch", str, check=check_arch),
    Field("target", str, check=check_target),
    Field("kernel_release", str, check=check_kernel_release),
    Field("kernel_version", str, check=check_kernel_version),
    Field("file", str, required=False, check=check_file),
    Field("aliases", list, required=False, default=[], check=each(check_file)),
    Field("path", str, required=False, default=""),
    Field("sha256", str, required=False, default="",
          check=lambda v: None if v == "" else check_sha256(v)),
    Field("size", int, required=False, default=0, check=in_range(0, MAX_PROBE_SIZE)),
    Field("built", str, required=False, default="",
          check=lambda v: None if v == "" else check_timestamp(v)),
    Field("log", str, required=False, default=""),
    Field("step", str, required=False, default="",
          check=lambda v: None if v == "" else one_of(*FAILURE_STEPS)(v)),
    Field("reason", str, required=False, default="", check=longest(MAX_REASON)),
    Field("attempts", int, required=False, default=1, check=in_range(1, MAX_COUNT)),
    Field("driver_ref", str, required=False, default="",
          check=lambda v: None if v == "" else check_ref(v)),
    Field("driver_source_sha256", str, required=False, default=""),
    Field("compiler", dict, required=False, default={}),
    Field("headers", list, required=False, default=[]),
    Field("kernel_key", str, required=False, default=""),
    Field("duration", float, required=False, default=0.0, check=in_range(0, 10 ** 9)),
    Field("category", str, required=False, default="",
          check=lambda v: None if v == "" else one_of(*FAILURE_CATEGORIES)(v)),
    Field("source", str, required=False, default="", check=check_line(300)),
    Field("job", str, required=False, default="", check=check_optional_url),
    Field("loadtest", dict, required=False, default=None),
    Field("driver_type", str, required=False, default=DEFAULT_TYPE, check=check_driver_type),
    Field("uname_r", str, required=False, default="",
          check=lambda v: None if v == "" else check_kernel_release(v)),
    Field("package_version", str, required=False, default="",
          check=lambda v: None if v == "" else check_package_version(v)),
    Field("root", str, required=False, default="",
          check=lambda v: None if v == "" else check_root(v)),
    Field("twins", list, required=False, default=[], check=check_twins),
    Field("interface", dict, required=False, default={}),
])


def result_to_dict(result: BuildResult) -> dict[str, Any]:
    data = asdict(result)
    data["file"] = result.file
    data["aliases"] = list(result.aliases)
    data["headers"] = list(result.headers)
    data["twins"] = twins_to_list(result.twins)
    if not data["interface"]:  # an eBPF probe's lines stay as they were
        del data["interface"]
    return data


def write_result(handle: Any, result: BuildResult) -> None:
    """Append one line and flush it: a killed build keeps every finished result."""
    handle.write(json.dumps(result_to_dict(result), sort_keys=True) + "\n")
    handle.flush()


def replace_report(path: Path, results: Iterable[BuildResult]) -> None:
    """Rewrite a whole report atomically (temp file + rename): readers see old or new."""
    atomic_write(path, "".join(json.dumps(result_to_dict(r), sort_keys=True) + "\n"
                               for r in results))


def read_report(path: Path) -> list[BuildResult]:
    """Every result of a report; all problems reported at once, nothing half-read."""
    problems: list[Problem] = []
    results: list[BuildResult] = []
    for number, raw in iter_json_lines(path):
        clean = _SCHEMA.parse(raw, Where(str(path), number), problems)
        if clean is None:
            continue
        stated = clean.pop("file")
        clean["aliases"] = tuple(clean["aliases"])
        clean["twins"] = twins_from_list(clean["twins"])
        clean["headers"] = tuple(clean["headers"])
        clean["duration"] = float(clean["duration"])
        if clean["loadtest"] is not None:
            label = f"{clean['kernel_release']} #{clean['kernel_version']}"
            clean["loadtest"] = loadtest_from_mapping(
                clean["loadtest"], Where(str(path), number, label), problems)
            if clean["loadtest"] is None:
                continue
        result = BuildResult(**clean)
        if stated is not None and stated != result.file:
            problems.append(Problem(str(path), f"file {stated!r} does not match its name parts",
                                    number, field="file"))
            continue
        if result.ok and not (result.path and result.sha256 and result.size > 0):
            problems.append(Problem(str(path), "a successful result needs path, sha256 and "
                                    "size", number))
            continue
        results.append(result)
    if problems:
        raise ProblemsError(problems, hint="the report is written by `falco-probes build`")
    return results


def iter_reports(paths: Iterable[Path]) -> Iterator[tuple[Path, BuildResult]]:
    """(folder of the report, result) for each report file or folder holding report.jsonl."""
    for given in paths:
        report = given / REPORT_NAME if given.is_dir() else given
        if not report.exists():
            raise InputError(f"{given}: no build report ({REPORT_NAME}) found",
                             hint="pass the folder `falco-probes build --out` wrote")
        for result in read_report(report):
            yield report.parent, result
