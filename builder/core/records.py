"""The records every stage passes around, and the one place they are validated.

Records are frozen dataclasses. Raw mappings (from YAML, JSON, the command
line) become records only through the `*_from_mapping` factories, which use
the schemas below; code that builds records from trusted parts calls the
constructors directly and `validate_name_parts` guards what goes into paths.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from builder.core.drivertypes import BY_NAME, DEFAULT_TYPE, DRIVER_TYPES
from builder.core.errors import Problem
from builder.core.limits import FIRST_YEAR, LAST_YEAR, MAX_COUNT, MAX_PROBE_SIZE
from builder.core.schema import Check, Field, Schema, Where, each, in_range, matches, one_of

ARCHES = ("x86_64", "aarch64")
# driverkit and Debian call them amd64/arm64; the loader sends `uname -m`.
ARCH_ALIASES = {"amd64": "x86_64", "x86_64": "x86_64", "arm64": "aarch64", "aarch64": "aarch64"}
# ... and back: the Debian (and driverkit) name of each `uname -m`.
DEB_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}
PROBE_PREFIX = "falco"

# Name parts end up in file names, URLs and folder names. Each pattern admits
# what real hosts produce and nothing that could escape a folder or a page:
# no "/", no NUL or control characters, no whitespace, no HTML metacharacters.
_SAFE = r"[A-Za-z0-9][A-Za-z0-9._+~-]*"
TARGET_RE = r"[a-z0-9][a-z0-9._-]*"
KERNEL_RELEASE_RE = _SAFE
KERNEL_VERSION_RE = r"[A-Za-z0-9][A-Za-z0-9._+~-]*"
DRIVER_VERSION_RE = _SAFE
SHA256_RE = r"[0-9a-f]{64}"
COMMIT_RE = r"[0-9a-f]{7,64}"
TIMESTAMP_RE = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
# Printable ASCII but space, quotes, backquote and <>: a URL with anything else
# (bidi overrides, other scripts) is percent-encoded by whoever wrote it.
URL_RE = r"(https?|file)://[\x21\x23-\x26\x28-\x3b\x3d\x3f-\x5f\x61-\x7e]+"
TAG_RE = r"[A-Za-z0-9][A-Za-z0-9._+-]*"
FILE_RE = r"[A-Za-z0-9][A-Za-z0-9._+~-]*\.k?o"  # an artifact: .o (eBPF) or .ko (module)
REF_RE = r"[A-Za-z0-9][A-Za-z0-9._+~/-]*"
FORTY_HEX = re.compile(r"[0-9a-fA-F]{40}")
SUITE_RE = r"[a-z][a-z0-9.-]{0,40}"  # a Debian suite: bookworm, bookworm-security, sid


def _no_dotdot(check_pattern: str, what: str, max_len: int) -> Check:
    base = matches(check_pattern, what, max_len)

    def check(value: Any) -> str | None:
        wrong = base(value)
        if wrong is None and isinstance(value, str) and ".." in value:
            return f"{value!r} is not allowed: must not contain '..'"
        return wrong

    return check


check_target = _no_dotdot(TARGET_RE, "lowercase letters, digits, '.', '_' and '-'", 64)
check_kernel_release = _no_dotdot(
    KERNEL_RELEASE_RE, "letters, digits and . _ + ~ - (as `uname -r` prints)", 128)
check_kernel_version = _no_dotdot(
    KERNEL_VERSION_RE, "letters, digits and . _ + ~ - (the digits after # in `uname -v`)", 64)
_driver_version_shape = _no_dotdot(
    DRIVER_VERSION_RE, "a libs driver version such as 6.0.1+driver or a commit hash", 128)
# Where a twin's files live in a store: <store>/twins/<root>/<driver_version>/<arch>/<file>
# (a root "" is the loader's default path, <store>/<driver_version>/<arch>/<file>).
TWINS_FOLDER = "twins"
# Top-level folders of a store besides the driver versions' own.
STORE_FOLDERS = ("logs", "attestations", TWINS_FOLDER)


def check_driver_version(value: Any) -> str | None:
    wrong = _driver_version_shape(value)
    if wrong is None and value in STORE_FOLDERS:
        return f"{value!r} is not allowed: a store keeps its {value} in that folder"
    return wrong
check_arch = one_of(*ARCHES)
check_sha256 = matches(SHA256_RE, "64 lowercase hex digits")
check_commit = matches(COMMIT_RE, "a git commit hash in lowercase hex", 64)
_timestamp_shape = matches(TIMESTAMP_RE, "UTC time as YYYY-MM-DDTHH:MM:SSZ", 20)
check_url = matches(URL_RE, "an http, https or file URL in printable ASCII without spaces or "
                            "quotes", 2048)
check_size = in_range(1, MAX_PROBE_SIZE)
check_attempts = in_range(1, MAX_COUNT)
check_count = in_range(0, MAX_COUNT)


def check_timestamp(value: Any) -> str | None:
    """A real UTC time (no 13th month, no 61st minute) in a sane year."""
    wrong = _timestamp_shape(value)
    if wrong or not isinstance(value, str):
        return wrong
    try:  # the shape is checked: fromisoformat is strptime's verdict at a tenth of its cost
        when = dt.datetime.fromisoformat(value[:-1])
    except ValueError:
        return f"{value!r} is not a real date and time"
    if not FIRST_YEAR <= when.year <= LAST_YEAR:
        return f"{value!r}: the year must be from {FIRST_YEAR} to {LAST_YEAR}"
    return None
check_ref = _no_dotdot(REF_RE, "a git ref: letters, digits and . _ + ~ / -", 200)
check_file = _no_dotdot(FILE_RE, "a driver file name such as falco_debian_6.1.0-1-amd64_1.o "
                                  "(or .ko)", 300)
check_driver_type = one_of(*DRIVER_TYPES)
check_root = _no_dotdot(TARGET_RE, "a twin root: lowercase letters, digits, '.', '_' and '-'", 100)



def root_prefix(root: str) -> str:
    """The folder a root's files live under, relative to the store: "" or twins/<root>/."""
    return f"{TWINS_FOLDER}/{root}/" if root else ""


def check_tag(value: Any) -> str | None:
    wrong = _no_dotdot(TAG_RE, "letters, digits and . _ + -", 200)(value)
    if wrong is None and FORTY_HEX.fullmatch(value):
        return f"{value!r} is not allowed: GitHub rejects 40-hex tags (they look like commits)"
    return wrong


def check_log(value: Any) -> str | None:
    return None if value == "" else check_url(value)


def check_line(max_len: int) -> Check:
    """One line of printable text: no control characters (ESC, CR, LF, NUL), no
    bidi overrides or other format characters, nothing a terminal or page obeys."""

    def check(value: Any) -> str | None:
        if not isinstance(value, str):
            return f"{value!r} is not text"
        if len(value) > max_len:
            return f"is longer than {max_len} characters"
        if not value.isprintable():
            bad = next(c for c in value if not c.isprintable())
            return f"contains the non-printable character U+{ord(bad):04X}"
        return None

    return check


check_optional_url = check_log
check_semver = matches(r"[0-9]{1,7}\.[0-9]{1,7}\.[0-9]{1,8}", "a version like 8.0.4", 30)


_RELEASE_NUMBERS = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")
OTHER_SERIES = "other"


def release_numbers(release: str) -> tuple[int, int, int] | None:
    """The version a kernel release starts with: `5.10.0-22-amd64` -> (5, 10, 0),
    `6.12.117+deb12-amd64` -> (6, 12, 117), `5.4` -> (5, 4, 0); None if it has none."""
    found = _RELEASE_NUMBERS.match(release)
    if found is None:
        return None
    return (int(found[1]), int(found[2]), int(found[3] or 0))


def kernel_series(release: str) -> str:
    """`5.15.0-1034-aws` -> `5.15`: how kernels are grouped (tables, --latest, offers)."""
    numbers = release_numbers(release)
    return f"{numbers[0]}.{numbers[1]}" if numbers else OTHER_SERIES


def unique_aliases(file: str, aliases: Iterable[str]) -> tuple[str, ...]:
    """Aliases as records keep them: sorted, once each, never the record's own name."""
    return tuple(sorted(set(aliases) - {file}))


def probe_file_name(target: str, kernel_release: str, kernel_version: str,
                    driver_type: str = DEFAULT_TYPE) -> str:
    """The loader's file name: falco_<TARGET_ID>_<KERNEL_RELEASE>_<KERNEL_VERSION> and the
    driver type's extension (.o for the eBPF probe, .ko for the kernel module)."""
    extension = BY_NAME[driver_type].extension
    return f"{PROBE_PREFIX}_{target}_{kernel_release}_{kernel_version}{extension}"


@dataclass(frozen=True, slots=True, order=True)
class ProbeName:
    """The name parts the loader computes; never parsed back out of a file name."""

    target: str
    kernel_release: str
    kernel_version: str
    arch: str
    driver_type: str = DEFAULT_TYPE  # drivertypes.DRIVER_TYPES: the .o or the .ko

    @property
    def file(self) -> str:
        return probe_file_name(self.target, self.kernel_release, self.kernel_version,
                               self.driver_type)


def validate_name_parts(target: str, kernel_release: str, kernel_version: str, arch: str,
                        driver_version: str | None = None) -> list[str]:
    """Problems with name parts that are about to become paths; empty when safe."""
    checks = [("target", check_target, target),
              ("kernel_release", check_kernel_release, kernel_release),
              ("kernel_version", check_kernel_version, kernel_version),
              ("arch", check_arch, arch)]
    if driver_version is not None:
        checks.append(("driver_version", check_driver_version, driver_version))
    out = []
    for name, check, value in checks:
        wrong = check(value)
        if wrong:
            out.append(f"{name}: {wrong}")
    return out


class _NameParts:
    """Name properties shared by probe and failure records (which have the fields)."""

    __slots__ = ()
    driver_version: str
    arch: str
    target: str
    kernel_release: str
    kernel_version: str
    driver_type: str
    root: str

    @property
    def name(self) -> ProbeName:
        return ProbeName(self.target, self.kernel_release, self.kernel_version, self.arch,
                         self.driver_type)

    @property
    def file(self) -> str:
        return probe_file_name(self.target, self.kernel_release, self.kernel_version,
                               self.driver_type)

    @property
    def key(self) -> RecordKey:
        return (self.driver_version, self.arch, self.target, self.kernel_release,
                self.kernel_version, self.driver_type, self.root)

    @property
    def store_path(self) -> str:
        """Where the loader's request for this record lands, relative to the store."""
        return f"{root_prefix(self.root)}{self.driver_version}/{self.arch}/{self.file}"


# A record's identity: driver version, arch, target, kernel release and version, driver type,
# twin root ("" for the loader's default path).
RecordKey = tuple[str, str, str, str, str, str, str]


@dataclass(frozen=True, slots=True, order=True)
class Twin:
    """Another kernel whose loader requests the same file, and where its file lives."""

    uname_r: str
    root: str = ""          # "" = the loader's default path


def twins_to_list(twins: Iterable[Twin]) -> list[dict[str, str]]:
    return [{"uname_r": t.uname_r, **({"root": t.root} if t.root else {})} for t in twins]


def twins_from_list(raw: Iterable[Mapping[str, str]]) -> tuple[Twin, ...]:
    """Twins from mappings `check_twins` accepted, sorted."""
    return tuple(sorted(Twin(t["uname_r"], t.get("root", "")) for t in raw))

LOADTEST_STATES = ("passed", "rejected", "not_tested")


@dataclass(frozen=True, slots=True)
class LoadTest:
    """Whether a probe (or module) loaded in its own kernel (`falco-probes loadtest`)."""

    status: str            # passed | rejected | not_tested
    kernel: str = ""       # `uname -r` of the kernel booted
    accepted: int = 0      # programs the verifier accepted (a module has none)
    total: int = 0         # programs in the probe
    events: int = 0        # system call events captured with the probe (0: none or not tried)
    date: str = ""         # UTC time of the test
    reason: str = ""       # rejected: the program and the verifier's last line (a module:
                           # why the kernel refused it); not_tested: why
    api_version: str = ""  # a module: the API and schema versions it answered by ioctl
    schema_version: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "passed"


@dataclass(frozen=True, slots=True)
class ProbeRecord(_NameParts):
    """One published probe, as one catalog line."""

    driver_version: str
    arch: str
    target: str
    kernel_release: str
    kernel_version: str
    sha256: str
    size: int
    url: str
    release: str = ""
    built: str = ""
    log: str = ""
    commit: str = ""
    driver_ref: str = ""
    aliases: tuple[str, ...] = ()
    source: str = ""                 # exactly what was compiled (provider, package, version)
    job: str = ""                    # the CI job that built it
    attestation: str = ""            # where its build provenance attestation is
    loadtest: LoadTest | None = None
    driver_type: str = DEFAULT_TYPE  # ebpf (.o) or kmod (.ko); written only when not ebpf
    # The kernel the bytes are for (its `uname -r` and package version): the file's name
    # says what the loader asks for, which twin kernels share (docs/twins.md).
    uname_r: str = ""
    package_version: str = ""
    compiler: str = ""               # what built it, name and version (clang, gcc)
    root: str = ""                   # "" = the default path, else <store>/twins/<root>/
    twins: tuple[Twin, ...] = ()     # the other kernels that request the same file

    def all_files(self) -> tuple[str, ...]:
        """Every file name a supported loader may request for this probe."""
        return (self.file, *self.aliases)


@dataclass(frozen=True, slots=True)
class FailureRecord(_NameParts):
    """A probe we tried to build or publish and could not; kept with its log."""

    driver_version: str
    arch: str
    target: str
    kernel_release: str
    kernel_version: str
    step: str
    reason: str
    log: str = ""
    attempts: int = 1
    last_attempt: str = ""
    commit: str = ""
    driver_ref: str = ""
    category: str = ""               # FAILURE_CATEGORIES: why, in one word
    aliases: tuple[str, ...] = ()    # every other name a loader requests for this kernel
    source: str = ""
    job: str = ""
    driver_type: str = DEFAULT_TYPE
    uname_r: str = ""
    package_version: str = ""
    root: str = ""
    twins: tuple[Twin, ...] = ()

    def all_files(self) -> tuple[str, ...]:
        return (self.file, *self.aliases)


FAILURE_STEPS = ("download", "extract", "source", "compile", "check", "loadtest", "publish",
                 "skip")
# What kind of failure it is, independent of the step it happened in:
# unsupported-kernel  the driver source does not support this kernel's API (genuine)
# source-layout       the source could not be prepared or built as upstream builds it
# toolchain           the compiler or kbuild itself failed (crash, missing tool)
# timeout             the compile ran out of time
# download, extract   header packages could not be fetched or unpacked
# source              the driver source could not be fetched or is not what it claims
# check               the object is not a valid probe (ELF check)
# verifier            the kernel's eBPF verifier rejected a program (loadtest)
# refused             the kernel refused the module, or it misbehaved once loaded (loadtest)
# publish             the store refused it
# unknown             none of the above could be told from the log
FAILURE_CATEGORIES = ("unsupported-kernel", "source-layout", "toolchain", "timeout", "download",
                      "extract", "source", "check", "verifier", "publish", "unknown",
                      "refused")

# Keys kept in the catalog file header rather than on every line.
FILE_KEYS = ("driver_version", "arch", "target")

_NAME_FIELDS = [
    Field("driver_version", str, check=check_driver_version),
    Field("arch", str, check=check_arch),
    Field("target", str, check=check_target),
    Field("kernel_release", str, check=check_kernel_release, coerce_str=True),
    Field("kernel_version", str, check=check_kernel_version, coerce_str=True),
]
_SOURCE_FIELDS = [
    Field("commit", str, required=False, default="",
          check=lambda v: None if v == "" else check_commit(v)),
    Field("driver_ref", str, required=False, default="",
          check=lambda v: None if v == "" else check_ref(v)),
    Field("source", str, required=False, default="", check=check_line(300)),
    Field("job", str, required=False, default="", check=check_optional_url),
]
check_package_version = matches(r"[0-9A-Za-z][A-Za-z0-9.+~:_-]*", "a package version", 128)


def check_twins(value: Any) -> str | None:
    """A list of {uname_r, root?} mappings: the other twins of a record."""
    for i, item in enumerate(value):
        if not isinstance(item, dict) or set(item) - {"uname_r", "root"} or "uname_r" not in item:
            return f"item {i}: must be a mapping with uname_r (and root)"
        wrong = check_kernel_release(item["uname_r"]) or (
            check_root(item["root"]) if item.get("root") else None)
        if wrong:
            return f"item {i}: {wrong}"
    return None


# The kernel a record's bytes are for, and its twins (docs/twins.md); empty in records
# written before twins were known (catalog schema 1).
_KERNEL_FIELDS = [
    Field("uname_r", str, required=False, default="",
          check=lambda v: None if v == "" else check_kernel_release(v)),
    Field("package_version", str, required=False, default="", coerce_str=True,
          check=lambda v: None if v == "" else check_package_version(v)),
    Field("root", str, required=False, default="",
          check=lambda v: None if v == "" else check_root(v)),
    Field("twins", list, required=False, default=[], check=check_twins),
]

LOADTEST_SCHEMA = Schema("loadtest", [
    Field("status", str, check=one_of(*LOADTEST_STATES)),
    Field("kernel", str, required=False, default="",
          check=lambda v: None if v == "" else check_kernel_release(v)),
    Field("accepted", int, required=False, default=0, check=check_count),
    Field("total", int, required=False, default=0, check=check_count),
    Field("events", int, required=False, default=0, check=check_count),
    Field("date", str, required=False, default="",
          check=lambda v: None if v == "" else check_timestamp(v)),
    Field("reason", str, required=False, default="", check=check_line(2000)),
    Field("api_version", str, required=False, default="",
          check=lambda v: None if v == "" else check_semver(v)),
    Field("schema_version", str, required=False, default="",
          check=lambda v: None if v == "" else check_semver(v)),
])


def loadtest_from_mapping(raw: object, where: Where, problems: list[Problem]) -> LoadTest | None:
    """A LoadTest from untrusted data; problems name the record and `loadtest.<field>`."""
    nested: list[Problem] = []
    clean = LOADTEST_SCHEMA.parse(raw, where, nested)
    problems.extend(Problem(p.path, p.message, p.line, p.record,
                            f"loadtest.{p.field}" if p.field else "loadtest") for p in nested)
    if clean is None:
        return None
    if clean["accepted"] > clean["total"]:
        problems.append(where.problem(f"loadtest: {clean['accepted']} programs accepted of "
                                      f"{clean['total']}", "loadtest.accepted"))
        return None
    return LoadTest(**clean)

PROBE_SCHEMA = Schema("probe record", [
    *_NAME_FIELDS,
    Field("file", str, required=False, check=check_file),
    Field("sha256", str, check=check_sha256),
    Field("size", int, check=check_size),
    Field("url", str, check=check_url),
    Field("release", str, required=False, default="",
          check=lambda v: None if v == "" else check_tag(v)),
    Field("built", str, required=False, default="",
          check=lambda v: None if v == "" else check_timestamp(v)),
    Field("log", str, required=False, default="", check=check_log),
    *_SOURCE_FIELDS,
    Field("aliases", list, required=False, default=[], check=each(check_file)),
    Field("attestation", str, required=False, default="", check=check_optional_url),
    Field("loadtest", dict, required=False, default=None),
    Field("driver_type", str, required=False, default=DEFAULT_TYPE, check=check_driver_type),
    *_KERNEL_FIELDS,
    Field("compiler", str, required=False, default="", check=check_line(200)),
])

FAILURE_SCHEMA = Schema("failure record", [
    *_NAME_FIELDS,
    Field("file", str, required=False, check=check_file),
    Field("step", str, check=one_of(*FAILURE_STEPS)),
    Field("reason", str, check=lambda v: check_line(2000)(v) or (
        "must not be empty" if not v.strip() else None)),
    Field("log", str, required=False, default="", check=check_log),
    Field("attempts", int, required=False, default=1, check=check_attempts),
    Field("last_attempt", str, required=False, default="",
          check=lambda v: None if v == "" else check_timestamp(v)),
    *_SOURCE_FIELDS,
    Field("category", str, required=False, default="",
          check=lambda v: None if v == "" else one_of(*FAILURE_CATEGORIES)(v)),
    Field("aliases", list, required=False, default=[], check=each(check_file)),
    Field("driver_type", str, required=False, default=DEFAULT_TYPE, check=check_driver_type),
    *_KERNEL_FIELDS,
])


def _label(raw: Mapping[str, Any]) -> str:
    release, version = (str(raw.get(k, "?")) for k in ("kernel_release", "kernel_version"))
    label = f"{release} #{version}"
    return label[:120] if label.isprintable() else repr(label)[:120]


def _from_mapping(schema: Schema, make: Any, raw: object, where: Where,
                  problems: list[Problem], lines: Mapping[str, int] | None) -> Any:
    """Validate `raw` with `schema`, build the record with `make(clean)`, check `file`."""
    if isinstance(raw, dict) and where.record is None:
        where = Where(where.path, where.line, _label(raw))
    clean = schema.parse(raw, where, problems, lines)
    if clean is None:
        return None
    stated_file = clean.pop("file")
    file = probe_file_name(clean["target"], clean["kernel_release"], clean["kernel_version"],
                           clean["driver_type"])
    clean["aliases"] = unique_aliases(file, clean["aliases"])
    clean["twins"] = twins_from_list(clean["twins"])
    if clean.get("loadtest") is not None:
        clean["loadtest"] = loadtest_from_mapping(clean["loadtest"], where, problems)
        if clean["loadtest"] is None:
            return None
    record = make(clean)
    if stated_file is not None and stated_file != record.file:
        problems.append(where.problem(
            f"file {stated_file!r} does not match its name parts (expected {record.file!r})",
            "file", (lines or {}).get("file")))
        return None
    return record


def probe_from_mapping(raw: object, where: Where, problems: list[Problem],
                       lines: Mapping[str, int] | None = None) -> ProbeRecord | None:
    """Build a ProbeRecord from untrusted data; report every problem in `problems`."""
    record: ProbeRecord | None = _from_mapping(
        PROBE_SCHEMA, lambda clean: ProbeRecord(**clean), raw, where, problems, lines)
    return record


def failure_from_mapping(raw: object, where: Where, problems: list[Problem],
                         lines: Mapping[str, int] | None = None) -> FailureRecord | None:
    """Build a FailureRecord from untrusted data; report every problem in `problems`."""
    record: FailureRecord | None = _from_mapping(
        FAILURE_SCHEMA, lambda clean: FailureRecord(**clean), raw, where, problems, lines)
    return record


def record_to_dict(record: ProbeRecord | FailureRecord) -> dict[str, Any]:
    """All fields, in declaration order, plus `file` right after the name parts."""
    data = asdict(record)
    data["aliases"] = list(record.aliases)
    data["twins"] = twins_to_list(record.twins)
    out: dict[str, Any] = {}
    for key, value in data.items():
        out[key] = value
        if key == "kernel_version":
            out["file"] = record.file
    return out


# --- kernels: what the builder compiles against -------------------------------

@dataclass(frozen=True, slots=True)
class Left:
    """A desired probe the plan does not build, and why (a target's filter, a backoff).

    Made by kernel selection (driver_version "*": every driver version) and by the plan."""

    target: str
    arch: str
    kernel_release: str
    driver_version: str
    reason: str



@dataclass(frozen=True, slots=True)
class HostFacts:
    """What falco-driver-loader / falcoctl read on a host to name the probe."""

    os_id: str
    uname_r: str
    uname_v: str
    uname_m: str
    version_id: str = ""
    variant_id: str = ""
    build_id: str = ""              # os-release BUILD_ID (falcoctl requires it on COS)
    etc_version: str | None = None  # content of <HOST_ROOT>/etc/VERSION (minikube)
    # With no os-release (os_id ""), which legacy file the host has instead:
    # "debian" (/etc/debian_version), "centos" (/etc/centos-release), "rhel" (/etc/redhat-release).
    fallback: str = ""


@dataclass(frozen=True, slots=True)
class HeaderPackage:
    """One package (deb, rpm or tarball) needed to build against a kernel."""

    name: str
    url: str
    sha256: str = ""  # empty when the source does not publish one
    size: int = 0
    kind: str = "deb"  # deb | rpm | tar


@dataclass(frozen=True, slots=True)
class Kernel:
    """A kernel we can build for: the loader's view of it and its header packages."""

    target: str           # target family in probes.yaml (debian, ubuntu, amazonlinux2 ...)
    host: HostFacts
    headers: tuple[HeaderPackage, ...] = ()
    source: str = ""      # where it was discovered: apt, kernel-crawler:<path>
    flavor: str = ""      # Debian/Ubuntu flavor (amd64, cloud-amd64, rt-amd64, aws ...)
    package_version: str = ""  # distro package version (the one in `uname -v` on Debian)
    kernelconfigdata: str = field(default="", repr=False)

    @property
    def arch(self) -> str:
        return ARCH_ALIASES.get(self.host.uname_m, self.host.uname_m)

    @property
    def key(self) -> str:
        """Stable identity for grouping jobs: one header set per key."""
        return f"{self.target}/{self.arch}/{self.host.uname_r}/{self.package_version}"


_HOST_SCHEMA = Schema("host facts", [
    Field("os_id", str, check=lambda v: None if v == "" else matches(
        r"[A-Za-z0-9._-]+", "an os-release ID", 64)(v)),
    Field("uname_r", str, check=check_kernel_release, coerce_str=True),
    Field("uname_v", str, check=lambda v: check_line(256)(v) or (
        "must not be empty" if not v else None)),
    Field("uname_m", str, check=one_of(*ARCH_ALIASES)),
    Field("version_id", str, required=False, default="", coerce_str=True,
          check=lambda v: None if v == "" else matches(r"[A-Za-z0-9._~+-]+",
                                                       "an os-release VERSION_ID", 64)(v)),
    Field("variant_id", str, required=False, default="",
          check=lambda v: None if v == "" else matches(r"[A-Za-z0-9._-]+",
                                                       "an os-release VARIANT_ID", 64)(v)),
    Field("build_id", str, required=False, default="", coerce_str=True,
          check=lambda v: None if v == "" else matches(r"[A-Za-z0-9._~+-]+",
                                                       "an os-release BUILD_ID", 64)(v)),
    Field("etc_version", str, required=False, default=None,
          check=matches(r"[^\x00]*", "text without NUL", 256)),
    Field("fallback", str, required=False, default="",
          check=lambda v: None if v == "" else one_of("debian", "centos", "rhel")(v)),
])
_HEADER_SCHEMA = Schema("header package", [
    Field("name", str, check=matches(r"[A-Za-z0-9][A-Za-z0-9._+~-]*", "a package file name",
                                     256)),
    Field("url", str, check=check_url),
    Field("sha256", str, required=False, default="",
          check=lambda v: None if v == "" else check_sha256(v)),
    Field("size", int, required=False, default=0, check=in_range(0, MAX_PROBE_SIZE)),
    Field("kind", str, required=False, default="deb", check=one_of("deb", "rpm", "tar")),
])
_KERNEL_SCHEMA = Schema("kernel", [
    Field("target", str, check=check_target),
    Field("host", dict),
    Field("headers", list, required=False, default=[]),
    Field("source", str, required=False, default="", check=check_line(300)),
    Field("flavor", str, required=False, default="", check=check_line(64)),
    Field("package_version", str, required=False, default="", coerce_str=True,
          check=check_line(128)),
    Field("kernelconfigdata", str, required=False, default=""),
])


def kernel_to_dict(kernel: Kernel) -> dict[str, Any]:
    data = asdict(kernel)
    data["headers"] = [asdict(h) for h in kernel.headers]
    return data


def kernel_from_mapping(raw: object, path: str, label: str,
                        problems: list[Problem]) -> Kernel | None:
    """A Kernel from untrusted data (a plan file, a cache); problems name the record."""
    where = Where(path, None, label)
    clean = _KERNEL_SCHEMA.parse(raw, where, problems)
    if clean is None:
        return None
    host = _HOST_SCHEMA.parse(clean["host"], Where(path, None, f"{label}.host"), problems)
    headers = []
    for i, item in enumerate(clean["headers"]):
        header = _HEADER_SCHEMA.parse(item, Where(path, None, f"{label}.headers[{i}]"), problems)
        if header is not None:
            headers.append(HeaderPackage(**header))
    if host is None or len(headers) != len(clean["headers"]):
        return None
    return Kernel(clean["target"], HostFacts(**host), tuple(headers), clean["source"],
                  clean["flavor"], clean["package_version"], clean["kernelconfigdata"])
