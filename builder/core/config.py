"""probes.yaml: what we want built, for whom, from where, and where it goes.

Loaded with safe YAML, validated field by field with messages that name the
file, line and key, and turned into frozen records. See docs/configuration.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from builder.core import limits
from builder.core.drivertypes import BY_NAME, DRIVER_TYPES, EBPF
from builder.core.errors import InputError, Problem, ProblemsError
from builder.core.files import read_text
from builder.core.limits import MAX_BACKOFF_HOURS, MAX_JOBS
from builder.core.records import (
    ARCHES,
    SUITE_RE,
    URL_RE,
    check_driver_version,
    check_ref,
    check_target,
)
from builder.core.schema import Field, Schema, Where, each, in_range, matches, one_of, short
from builder.core.versions import (
    BUILTIN_RELEASES,
    FalcoReleases,
    FalcoVersion,
    driver_types_of,
)
from builder.core.yamlio import compose_with_lines

DEFAULT_MIN_KERNEL = {"x86_64": "4.14", "aarch64": "4.17"}
SOURCE_KINDS = ("libs-archive", "debian-package", "directory")
STORE_KINDS = ("directory", "github")
DEFAULT_LIBS_ARCHIVE = "https://github.com/falcosecurity/libs/archive/{ref}.tar.gz"
DEFAULT_BACKOFF_HOURS = (24, 72, 168)
HTTP_URL_RE = URL_RE.replace("(https?|file)", "https?")


@dataclass(frozen=True, slots=True)
class AptOptions:
    """Which apt archive: a sources file and keyring, or suites on the machine's mirror."""

    sources: Path | None = None
    keyring: Path | None = None
    suites: tuple[str, ...] = ()   # read these suites from the machine's (or this) mirror
    mirror: str = ""


@dataclass(frozen=True, slots=True)
class DriverSource:
    kind: str                # libs-archive | debian-package | directory
    url: str = ""            # libs-archive: URL template with {ref}
    package: str = ""        # debian-package: binary package with the driver source
    path: str = ""           # directory: a libs checkout (or its driver/ folder)
    suite: str = ""          # debian-package: the suite to take it from (default: the host's)
    version: str = ""        # debian-package: exactly this package version (default: newest)


@dataclass(frozen=True, slots=True)
class DriverVersion:
    version: str
    ref: str
    falco: tuple[str, ...]
    source: DriverSource
    # What to build of it (drivertypes.DRIVER_TYPES): default_types() unless listed.
    types: tuple[str, ...] = (EBPF.name,)


def default_types(version: str) -> tuple[str, ...]:
    """What a driver version builds when probes.yaml lists no `types`: the legacy eBPF
    probe where its source has one (what this repository always built), else the kernel
    module (10.0.0+driver on have no driver/bpf)."""
    return (EBPF.name,) if EBPF.name in driver_types_of(version) else driver_types_of(version)


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    kernels: str                          # apt | apt:<sources file> | kernel-crawler:<path|url>
    arch: tuple[str, ...] = ("x86_64",)
    min_kernel: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_MIN_KERNEL))
    include: str = ""                     # regex on uname -r
    exclude: str = ""
    latest: int = 0                       # only the N newest kernels per arch (0 = all)
    suites: tuple[str, ...] = ()          # apt: read these suites (bullseye, bookworm, sid ...)
    mirror: str = ""                      # apt: their archive (default: the machine's)
    twins_owner: str = "native"           # which twin kernel owns the loader's default path

    def apt_options(self) -> AptOptions:
        return AptOptions(suites=self.suites, mirror=self.mirror)


@dataclass(frozen=True, slots=True)
class StoreConfig:
    kind: str = "directory"
    path: str = "store"
    repository: str = ""
    max_assets_per_release: int = 900
    immutable: bool = False


@dataclass(frozen=True, slots=True)
class BuildConfig:
    jobs: int = 2
    timeout: int = 900
    backoff_hours: tuple[int, ...] = DEFAULT_BACKOFF_HOURS


@dataclass(frozen=True, slots=True)
class Config:
    path: str
    site_url: str
    driver_versions: tuple[DriverVersion, ...]
    targets: tuple[Target, ...]
    store: StoreConfig
    build: BuildConfig
    # Which Falco releases load which driver version: the built-in facts united
    # with the `falco:` lists above. The one answer; see falco_releases().
    releases: FalcoReleases = BUILTIN_RELEASES

    def driver(self, version: str) -> DriverVersion | None:
        return next((d for d in self.driver_versions if d.version == version), None)

    def target(self, name: str) -> Target | None:
        return next((t for t in self.targets if t.name == name), None)


def falco_releases(config: Config | None) -> FalcoReleases:
    """Which Falco releases load which driver version, for every stage alike."""
    return config.releases if config is not None else BUILTIN_RELEASES


def driver_version_for(falco: FalcoVersion, config: Config | None) -> str:
    """The driver version Falco `falco` loads (probes.yaml, else the built-in table)."""
    driver = falco_releases(config).driver_for(falco)
    if driver is None:
        raise InputError(f"no driver version is known for Falco {falco}",
                         hint="pass --driver-version, or list the release under `falco:` of a "
                              "driver version in probes.yaml")
    return driver


def _regex(value: Any) -> str | None:
    try:
        re.compile(value)
    except re.error as exc:
        return f"is not a valid regular expression: {exc}"
    return None


def _kernel_source(value: Any) -> str | None:
    if value == "apt" or value.startswith(("apt:", "kernel-crawler:")):
        return None
    return (f"{value!r} is not a kernel source; use 'apt', 'apt:<sources file>' or "
            "'kernel-crawler:<path or URL>'")


def _min_kernel(value: Any) -> str | None:
    for arch, version in value.items():
        if arch not in ARCHES:
            return f"unknown arch {arch!r}; use {' or '.join(ARCHES)}"
        if not re.fullmatch(r"[0-9]+\.[0-9]+", str(version)):
            return f"{arch}: {version!r} is not a kernel version like 4.14"
    return None


def _falco_list(value: Any) -> str | None:
    for item in value:  # ASCII digits only: a full-width 0.36.2 must not claim a release
        if not re.fullmatch(r"[0-9]{1,4}\.[0-9]{1,4}\.[0-9]{1,4}", str(item)):
            return f"{item!r} is not a Falco version like 0.36.2"
    return None


def _types_list(value: Any) -> str | None:
    if not value:
        return f"must list at least one driver type ({' or '.join(DRIVER_TYPES)})"
    for item in value:
        if item not in DRIVER_TYPES:
            return f"{item!r} is not a driver type; use {' or '.join(DRIVER_TYPES)}"
    if len(set(value)) != len(value):
        return "lists a driver type twice"
    return None


def _types_problem(version: str, types: tuple[str, ...]) -> str | None:
    """A type the driver version's source does not have (10.x: no eBPF probe)."""
    missing = [t for t in types if t not in driver_types_of(version)]
    if not missing:
        return None
    return (f"driver {version} has no {BY_NAME[missing[0]].noun} source (libs removed "
            f"driver/bpf in 10.0.0+driver): build {', '.join(driver_types_of(version))} only")


TOP_SCHEMA = Schema("probes.yaml", [
    Field("schema_version", int, check=one_of(1)),
    Field("site_url", str, required=False, default="",
          check=matches(HTTP_URL_RE, "an http(s) URL in printable ASCII")),
    Field("driver_versions", list),
    Field("targets", list),
    Field("store", dict, required=False, default={}),
    Field("build", dict, required=False, default={}),
])
DRIVER_SCHEMA = Schema("driver version", [
    Field("version", str, check=check_driver_version, coerce_str=True),
    Field("ref", str, required=False, check=check_ref, coerce_str=True),
    Field("falco", list, required=False, default=[], check=_falco_list),
    Field("types", list, required=False, default=None, check=_types_list),
    Field("source", dict),
])
SOURCE_SCHEMA = Schema("driver source", [
    Field("kind", str, check=one_of(*SOURCE_KINDS)),
    Field("url", str, required=False, default="",
          check=matches(URL_RE, "an http(s) or file URL template in printable ASCII")),
    Field("package", str, required=False, default="",
          check=matches(r"[a-z0-9][a-z0-9.+-]*", "a Debian package name")),
    Field("path", str, required=False, default=""),
    Field("suite", str, required=False, default="",
          check=matches(SUITE_RE, "a Debian suite name like bookworm or sid", 41)),
    Field("version", str, required=False, default="",
          check=matches(r"[0-9][A-Za-z0-9.+~:-]*", "a Debian package version", 100)),
])
TARGET_SCHEMA = Schema("target", [
    Field("name", str, check=check_target),
    Field("kernels", str, check=_kernel_source),
    Field("arch", list, required=False, default=["x86_64"], check=each(one_of(*ARCHES))),
    Field("min_kernel", dict, required=False, default=dict(DEFAULT_MIN_KERNEL),
          check=_min_kernel),
    Field("include", str, required=False, default="", check=_regex),
    Field("exclude", str, required=False, default="", check=_regex),
    Field("latest", int, required=False, default=0, check=in_range(0, 10 ** 6)),
    Field("suites", list, required=False, default=[],
          check=each(matches(SUITE_RE, "a Debian suite name like bookworm or sid", 41))),
    Field("mirror", str, required=False, default="",
          check=matches(URL_RE, "an http(s) or file URI of a Debian archive")),
    Field("twins", dict, required=False, default={}),
])
# Kernels whose loaders request one file (twins, docs/twins.md): which owns the default path.
TWIN_OWNERS = ("native", "newest", "oldest")
TWINS_SCHEMA = Schema("twins", [
    Field("owner", str, required=False, default="native", check=one_of(*TWIN_OWNERS)),
])
STORE_SCHEMA = Schema("store", [
    Field("kind", str, required=False, default="directory", check=one_of(*STORE_KINDS)),
    Field("path", str, required=False, default="store",
          check=lambda v: None if v.strip() else "must not be empty (it would mean the working "
                                                 "directory)"),
    Field("repository", str, required=False, default="",
          check=matches(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", "owner/name")),
    Field("max_assets_per_release", int, required=False, default=900,
          check=lambda v: None if 1 <= v <= 1000 else "must be between 1 and 1000 "
                                                     "(GitHub refuses more than 1,000 assets)"),
    Field("immutable", bool, required=False, default=False),
])
BUILD_SCHEMA = Schema("build", [
    Field("jobs", int, required=False, default=2, check=in_range(1, MAX_JOBS)),
    Field("timeout", int, required=False, default=900, check=in_range(1, 7 * 24 * 3600)),
    Field("backoff_hours", list, required=False, default=list(DEFAULT_BACKOFF_HOURS),
          check=each(lambda v: None if isinstance(v, int) and not isinstance(v, bool)
                     and 0 < v <= MAX_BACKOFF_HOURS
                     else f"{short(v)} is not a number of hours from 1 to "
                          f"{MAX_BACKOFF_HOURS} (ten years)")),
])


def load_config(path: Path) -> Config:
    """Read and validate probes.yaml; raise ProblemsError listing every problem."""
    text = read_text(path, limits.CONFIG)
    data, key_lines, node_lines = compose_with_lines(text, str(path))
    problems: list[Problem] = []
    name = str(path)
    top = TOP_SCHEMA.parse(data, Where(name, 1), problems, key_lines.get(id(data)))
    if top is None:
        raise ProblemsError(problems, hint="see docs/configuration.md for every key")

    def where(item: object, label: str) -> tuple[Where, Mapping[str, int]]:
        return Where(name, node_lines.get(id(item)), label), key_lines.get(id(item), {})

    drivers = []
    for i, raw in enumerate(top["driver_versions"]):
        w, lines = where(raw, f"driver_versions[{i}]")
        clean = DRIVER_SCHEMA.parse(raw, w, problems, lines)
        if clean is None:
            continue
        src_raw = clean["source"]
        sw, slines = where(src_raw, f"driver_versions[{i}].source")
        src = SOURCE_SCHEMA.parse(src_raw, sw, problems, slines)
        if src is None:
            continue
        source = DriverSource(**src)
        needed = {"debian-package": "package", "directory": "path"}.get(source.kind)
        if needed and not getattr(source, needed):
            problems.append(sw.problem(f"source kind {source.kind!r} needs {needed!r}", needed))
            continue
        stray = [k for k in ("suite", "version") if getattr(source, k)]
        if stray and source.kind != "debian-package":
            problems.append(sw.problem(f"{stray[0]!r} is for debian-package sources", stray[0]))
            continue
        if source.kind == "libs-archive" and not source.url:
            source = DriverSource(source.kind, url=DEFAULT_LIBS_ARCHIVE)
        types = tuple(clean["types"] or default_types(clean["version"]))
        wrong = _types_problem(clean["version"], types)
        if wrong:
            problems.append(w.problem(wrong, "types", lines.get("types")))
            continue
        drivers.append(DriverVersion(clean["version"], clean["ref"] or clean["version"],
                                     tuple(str(f) for f in clean["falco"]), source, types))
    _check_unique(drivers, "version", name, problems)
    _check_falco_claims(drivers, name, problems)

    targets = []
    for i, raw in enumerate(top["targets"]):
        w, lines = where(raw, f"targets[{i}]")
        clean = TARGET_SCHEMA.parse(raw, w, problems, lines)
        if clean is None:
            continue
        min_kernel = {**DEFAULT_MIN_KERNEL, **{k: str(v) for k, v in clean["min_kernel"].items()}}
        if (clean["suites"] or clean["mirror"]) and clean["kernels"] != "apt":
            problems.append(w.problem("suites and mirror need `kernels: apt`", "suites"))
            continue
        tw, tlines = where(clean["twins"], f"targets[{i}].twins")
        twins = TWINS_SCHEMA.parse(clean["twins"], tw, problems, tlines)
        if twins is None:
            continue
        targets.append(Target(clean["name"], clean["kernels"], tuple(clean["arch"]),
                              min_kernel, clean["include"], clean["exclude"], clean["latest"],
                              tuple(clean["suites"]), clean["mirror"], twins["owner"]))
    _check_unique(targets, "name", name, problems)

    sw, slines = where(top["store"], "store")
    store = STORE_SCHEMA.parse(top["store"], sw, problems, slines)
    bw, blines = where(top["build"], "build")
    build = BUILD_SCHEMA.parse(top["build"], bw, problems, blines)
    if problems or store is None or build is None:
        raise ProblemsError(problems, hint="see docs/configuration.md for every key")
    releases = FalcoReleases.from_lists((d.version, d.falco) for d in drivers)
    return Config(name, top["site_url"], tuple(drivers), tuple(targets), StoreConfig(**store),
                  BuildConfig(build["jobs"], build["timeout"], tuple(build["backoff_hours"])),
                  releases)


def _check_unique(items: list[Any], attr: str, path: str, problems: list[Problem]) -> None:
    seen: set[str] = set()
    for item in items:
        value = getattr(item, attr)
        if value in seen:
            problems.append(Problem(path, f"{value!r} is listed twice", field=attr))
        seen.add(value)


def _check_falco_claims(drivers: list[DriverVersion], path: str, problems: list[Problem]) -> None:
    """A Falco release loads exactly one driver version by default."""
    owner: dict[str, str] = {}
    for driver in drivers:
        for falco in driver.falco:
            if falco in owner and owner[falco] != driver.version:
                problems.append(Problem(path, f"Falco {falco} is claimed by both "
                                        f"{owner[falco]!r} and {driver.version!r}",
                                        field="falco"))
            owner[falco] = driver.version
