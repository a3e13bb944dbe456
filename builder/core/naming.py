"""What falco-driver-loader (Falco 0.26-0.36) and falcoctl (0.37-0.44) request.

From what the loader reads on a host (os-release, /etc/VERSION, uname -r,
-v, -m) and a Falco version, compute the probe's name parts and the request
path relative to DRIVERS_REPO, exactly as that release's loader does. Every
rule cites the first Falco release that has it; the cases are in
tests/data/naming_cases.yaml and docs/naming.md. The browser lookup on the
site (builder/site/assets/naming.js) implements the same rules and is
tested against the same table.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace

from builder.core.drivertypes import DEFAULT_TYPE, EBPF, KMOD
from builder.core.errors import InputError
from builder.core.records import (
    HostFacts,
    ProbeName,
    check_kernel_release,
    unique_aliases,
    validate_name_parts,
)
from builder.core.versions import LAST_EBPF, FalcoVersion, v

CLIENT_SHELL = "falco-driver-loader"
CLIENT_FALCOCTL = "falcoctl"
FIRST_FALCOCTL = v("0.37.0")
# The newest rules: used for driver versions that no Falco release loads by default.
LATEST_RULES = v("0.43.0")
# A driver version no release loads by default is reached with DRIVER_VERSION (0.33+)
# or falcoctl's driver version setting: one release of each naming era from 0.33 on.
OVERRIDE_RELEASES = tuple(v(x) for x in ("0.33.0", "0.34.0", "0.35.0", "0.35.1", "0.36.0",
                                         "0.37.0", "0.37.1", "0.38.0", "0.39.0", "0.43.0"))

# ... and for the kernel module, whose loaders Falco 0.44 (falcoctl 0.13) adds.
OVERRIDE_RELEASES_KMOD = (*OVERRIDE_RELEASES, v("0.44.0"))

# Minimum kernels for legacy eBPF probes (driverkit; enforced by falcoctl >= 0.8).
MIN_KERNEL = {"x86_64": (4, 14, 0), "aarch64": (4, 17, 0)}
# ... and for the kernel module (driverkit's moduleMinKernelVersion: 2.6 on x86_64 until
# driverkit 0.23, falcoctl 0.13, Falco 0.44, which raised it to 3.10).
MIN_KERNEL_KMOD = {"x86_64": (2, 6, 0), "aarch64": (3, 16, 0)}
MIN_KERNEL_KMOD_044 = {"x86_64": (3, 10, 0), "aarch64": (3, 16, 0)}


def override_releases(driver_type: str = DEFAULT_TYPE) -> tuple[FalcoVersion, ...]:
    """One release of each naming era that can be pointed at a driver version of that type
    (the kernel module's include Falco 0.44, which has no legacy eBPF probe)."""
    return OVERRIDE_RELEASES_KMOD if driver_type == KMOD.name else OVERRIDE_RELEASES


def min_kernel(driver_type: str, falco: FalcoVersion, arch: str) -> tuple[int, int, int]:
    """The oldest kernel falcoctl (Falco 0.38+) takes a driver of that type for."""
    if driver_type == EBPF.name:
        return MIN_KERNEL[arch]
    return (MIN_KERNEL_KMOD_044 if falco >= v("0.44.0") else MIN_KERNEL_KMOD)[arch]


class NoRequest(Exception):
    """The loader computes no download for this host; the reason says why."""

    def __init__(self, reason: str, name: ProbeName | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.name = name


# --- os-release ---------------------------------------------------------------------

_ASSIGN = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)")
_WORD_END = re.compile(r"[ \t\r\n#\\'\"]")
_DQUOTE_STOP = re.compile(r'["\\]')


def parse_os_release(text: str) -> dict[str, str]:
    """KEY=value pairs as a shell `source` (the loader) and go-ini (falcoctl) read them."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        match = _ASSIGN.fullmatch(line)
        if match is None:
            continue
        key, raw = match.groups()
        try:
            words = shell_words(raw)
        except ValueError:  # unbalanced quotes: keep the raw text, as go-ini would
            words = [raw.strip().strip("\"'")]
        values[key] = words[0] if words else ""
    return values


def shell_words(raw: str) -> list[str]:
    """`shlex.split(raw, comments=True)` for one line, in linear time.

    shlex grows each token one character at a time, which is quadratic: 14 s
    for a 1 MB os-release line. Same rules: quotes join a word, backslash
    escapes (only " and \\ inside double quotes), # starts a comment.
    """
    words: list[str] = []
    parts: list[str] = []
    in_word = False
    i, end = 0, len(raw)
    while i < end:
        char = raw[i]
        if char in " \t\r\n" or char == "#":
            if in_word:
                words.append("".join(parts))
                parts, in_word = [], False
            if char == "#":
                break
            i += 1
            continue
        in_word = True
        if char == "\\":
            if i + 1 >= end:
                raise ValueError("No escaped character")
            parts.append(raw[i + 1])
            i += 2
        elif char == "'":
            close = raw.find("'", i + 1)
            if close < 0:
                raise ValueError("No closing quotation")
            parts.append(raw[i + 1:close])
            i = close + 1
        elif char == '"':
            i = _double_quoted(raw, i + 1, parts)
        else:
            stop = _WORD_END.search(raw, i)
            after = stop.start() if stop else end
            parts.append(raw[i:after])
            i = after
    if in_word:
        words.append("".join(parts))
    return words


def _double_quoted(raw: str, i: int, parts: list[str]) -> int:
    """Append the text of a double-quoted part starting at `i`; return where it ends."""
    while True:
        stop = _DQUOTE_STOP.search(raw, i)
        if stop is None:
            raise ValueError("No closing quotation")
        parts.append(raw[i:stop.start()])
        i = stop.start()
        if raw[i] == '"':
            return i + 1
        if i + 1 >= len(raw):
            raise ValueError("No escaped character")
        escaped = raw[i + 1]
        parts.append(escaped if escaped in '"\\' else "\\" + escaped)
        i += 2


def host_from_inputs(os_release: str | None, uname_r: str, uname_v: str, uname_m: str,
                     etc_version: str | None = None, fallback: str = "") -> HostFacts:
    """HostFacts from the texts the loader reads (os_release None: the file is missing)."""
    for field, value, wrong in (("uname -r", uname_r, check_kernel_release(uname_r.strip())),
                                ("uname -m", uname_m, None if re.fullmatch(
                                    r"[A-Za-z0-9_]{1,32}", uname_m.strip()) else "not allowed"),
                                ("uname -v", uname_v, None if uname_v.isprintable() and
                                 len(uname_v) < 512 else "must be one printable line")):
        if wrong:
            raise InputError(f"{field} {value!r}: {wrong}",
                             hint="pass the exact output of uname on the node")
    values = parse_os_release(os_release) if os_release is not None else {}
    if os_release is not None and not values.get("ID"):
        raise InputError("os-release has no ID= line",
                         hint="pass the whole /etc/os-release, or at least ID= and VERSION_ID=")
    return HostFacts(os_id=values.get("ID", ""), uname_r=uname_r.strip(),
                     uname_v=uname_v.strip("\n"), uname_m=uname_m.strip(),
                     version_id=values.get("VERSION_ID", ""),
                     variant_id=values.get("VARIANT_ID", ""),
                     build_id=values.get("BUILD_ID", ""), etc_version=etc_version,
                     fallback=fallback)


# --- pieces shared by both loaders -----------------------------------------------------

_KV_SHELL = re.compile(r"#([0-9]+).*", re.DOTALL)
_UBUNTU_FLAVOR = re.compile(r"-([a-zA-Z]+)(-.*)?$")
_UBUNTU_TILDE = re.compile(r"^#[0-9]+~[^-]*-Ubuntu .*$", re.DOTALL)
_UBUNTU_TILDE_KV = re.compile(r"#([^-\\ ]*).*", re.DOTALL)
_DEBIAN_VERSION = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+-[0-9]+")
_DEBIAN_FLAVOR_0350 = re.compile(r"-(amd64|arm64)")
_DEBIAN_FLAVOR = re.compile(r"-?(rt-|cloud-|)(amd64|arm64)")
_MINIKUBE_VERSION = re.compile(r"[0-9]+(\.[0-9]+){2}")


def shell_kernel_version(uname_v: str) -> str:
    """`uname -v | sed 's/#\\([[:digit:]]\\+\\).*/\\1/'`: the digits after the first #."""
    return _KV_SHELL.sub(r"\1", uname_v, count=1)


def minikube_version(etc_version: str) -> str | None:
    match = _MINIKUBE_VERSION.search(etc_version)
    return match.group(0) if match else None


def _amzn_target(version_id: str, falco: FalcoVersion) -> str:
    if version_id == "2":
        return "amazonlinux2"
    if falco >= v("0.35.0") and version_id in ("2022", "2023"):
        return f"amazonlinux{version_id}"
    return "amazonlinux"


def _debian_release(uname_r: str, uname_v: str, keep_rt_cloud: bool) -> str | None:
    """Debian (0.35+): rebuild the release from the package version in uname -v."""
    version = _DEBIAN_VERSION.search(uname_v)
    if version is None:
        return None
    if keep_rt_cloud:
        flavor = _DEBIAN_FLAVOR.search(uname_r)
        extra = f"-{flavor.group(1)}{flavor.group(2)}" if flavor else ""
    else:
        flavor = _DEBIAN_FLAVOR_0350.search(uname_r)
        extra = f"-{flavor.group(1)}" if flavor else ""
    return version.group(0) + extra


# --- falco-driver-loader (shell), Falco 0.26.0 - 0.36.2 -----------------------------------

def shell_name(host: HostFacts, falco: FalcoVersion) -> ProbeName:
    os_id = _shell_os_id(host, falco)
    release = host.uname_r
    version = shell_kernel_version(host.uname_v)
    target = os_id
    if os_id == "amzn":
        target = _amzn_target(host.version_id, falco)
    elif os_id == "ubuntu":
        target, version = _shell_ubuntu(host, falco, version)
    elif os_id == "debian" and falco >= v("0.35.0"):
        rebuilt = _debian_release(host.uname_r, host.uname_v, falco >= v("0.35.1"))
        release = rebuilt or release
    elif os_id == "flatcar" and falco >= v("0.32.1"):
        release = host.version_id
    elif os_id == "bottlerocket" and falco >= v("0.34.0"):
        variant = host.variant_id.split("-")[0] if host.variant_id else ""
        version = f"1_{host.version_id}-{variant}"
    elif os_id == "talos" and falco >= v("0.35.0"):
        version = f"1_{host.version_id}"
    elif os_id == "minikube" and falco >= v("0.33.0"):
        mk = minikube_version(host.etc_version or "")
        if mk is None:
            raise NoRequest(f"Falco {falco} exits: /etc/VERSION has no minikube version x.y.z")
        version = f"1_{mk}"
    elif os_id not in ("minikube",):
        target = os_id.lower()  # only the default branch lowercases (0.26 FDL:137)
    return ProbeName(target, release, version, host.uname_m)


def _shell_os_id(host: HostFacts, falco: FalcoVersion) -> str:
    os_id = host.os_id
    if not os_id:
        os_id = _shell_fallback(host, falco)
    if falco >= v("0.33.0") and host.etc_version is not None:
        return "minikube"  # /etc/VERSION overrides os-release from 0.33
    return os_id


def _shell_fallback(host: HostFacts, falco: FalcoVersion) -> str:
    """No os-release: /etc/debian_version, centos-release, redhat-release (0.34+), VERSION."""
    if host.fallback in ("debian", "centos"):
        return host.fallback
    if host.fallback == "rhel" and falco >= v("0.34.0"):
        return "rhel"
    if v("0.28.0") <= falco < v("0.33.0") and host.etc_version is not None:
        return "minikube"
    raise NoRequest(f"Falco {falco}'s loader finds no /etc/os-release and cannot tell the "
                    "distribution (target undetermined): it downloads nothing")


def _shell_ubuntu(host: HostFacts, falco: FalcoVersion, version: str) -> tuple[str, str]:
    release = host.uname_r
    if falco < v("0.33.0"):
        return ("ubuntu-aws" if "aws" in release else "ubuntu-generic"), version
    flavor = _UBUNTU_FLAVOR.search(release)
    if flavor is None:
        target = "ubuntu-generic"
    elif falco < v("0.35.1"):
        target = f"ubuntu-{flavor.group(1)}{flavor.group(2) or ''}"
    else:
        target = f"ubuntu-{flavor.group(1)}"
    if falco >= v("0.35.1") and _UBUNTU_TILDE.match(host.uname_v):
        version = _UBUNTU_TILDE_KV.sub(r"\1", host.uname_v, count=1)
    return target, version


# The first shell loader whose URL has the arch folder: the module's gained it in 0.32.1,
# the eBPF probe's only in 0.32.2.
SHELL_ARCH_FOLDER = {EBPF.name: v("0.32.2"), KMOD.name: v("0.32.1")}


def shell_request_path(driver_version: str, name: ProbeName, falco: FalcoVersion) -> str:
    """The path after DRIVERS_REPO; the loader rewrites every + in the URL to %2B."""
    parts = [driver_version, name.file]
    if falco >= SHELL_ARCH_FOLDER[name.driver_type]:
        parts.insert(1, name.arch)
    return "/".join(parts).replace("+", "%2B")


# --- falcoctl, Falco 0.37 - 0.43 ----------------------------------------------------------

# driverkit's kernel release pattern, in the three forms falcoctl releases link.
_KR_HEAD = (r"(?P<fullversion>^(?P<version>0|[1-9][0-9]*)\.(?P<patchlevel>0|[1-9][0-9]*)"
            r"[.+]?(?P<sublevel>0|[1-9][0-9]*)?)")
_KR_TAIL = r"(\+[0-9a-zA-Z-]+(\.[0-9a-zA-Z-]+)*)?$"
_KR_R1 = re.compile(_KR_HEAD + r"(?P<fullextraversion>[-.+](?P<extraversion>0|[1-9][0-9]*|"
                    r"[0-9]*[a-zA-Z-][0-9a-zA-Z-]*)([.+~](0|[1-9][0-9]*|"
                    r"[0-9]*[a-zA-Z-][0-9a-zA-Z-_]*))*)?" + _KR_TAIL)
_KR_R2 = re.compile(_KR_HEAD + r"(?P<fullextraversion>[-.+](?P<extraversion>[0-9]+|"
                    r"[0-9]*[a-zA-Z-][0-9a-zA-Z-]*)([.+~]([0-9]+|"
                    r"[0-9]*[a-zA-Z-][0-9a-zA-Z-_]*))*)?" + _KR_TAIL)
_KR_R3 = re.compile(_KR_HEAD + r"(?P<fullextraversion>[-.+](?P<extraversion>[0-9]+|"
                    r"[0-9]*[a-zA-Z-][0-9a-zA-Z-]*)?([.+~]([0-9]+|"
                    r"[0-9]*[a-zA-Z-][0-9a-zA-Z-_]*))*)?" + _KR_TAIL)
# driverkit 0.23 (falcoctl 0.13, Falco 0.44): the patch level became optional.
_KR_R4 = re.compile(r"(?P<fullversion>^(?P<version>0|[1-9][0-9]*)(?:\.(?P<patchlevel>0|[1-9][0-9]*)"
                    r"[.+]?(?P<sublevel>0|[1-9][0-9]*)?)?)(?P<fullextraversion>[-.+]"
                    r"(?P<extraversion>[0-9]+|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*)?([.+~]([0-9]+|"
                    r"[0-9]*[a-zA-Z-][0-9a-zA-Z-_]*))*)?" + _KR_TAIL)
_FLATCAR_SEMVER = re.compile(r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)"
                             r"(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?")


@dataclass(frozen=True, slots=True)
class ParsedRelease:
    """driverkit's kernelrelease: empty when its pattern does not match."""

    full: str              # fullversion + fullextraversion ("" when unparsable)
    fullextraversion: str
    numbers: tuple[int, int, int]


def _falcoctl_pattern(falco: FalcoVersion) -> re.Pattern[str]:
    if falco < v("0.38.0"):
        return _KR_R1   # falcoctl 0.7.x
    if falco < v("0.39.0"):
        return _KR_R2   # falcoctl 0.8.0 / 0.9.0
    if falco < v("0.44.0"):
        return _KR_R3   # falcoctl 0.10.0 - 0.12.x
    return _KR_R4       # falcoctl 0.13.0+


def parse_release(release: str, falco: FalcoVersion) -> ParsedRelease:
    match = _falcoctl_pattern(falco).search(release)
    if match is None:
        return ParsedRelease("", "", (0, 0, 0))
    full = match.group("fullversion") + (match.group("fullextraversion") or "")
    numbers = (int(match.group("version")), int(match.group("patchlevel") or 0),
               int(match.group("sublevel") or 0))
    return ParsedRelease(full, match.group("fullextraversion") or "", numbers)


def _falcoctl_generic_version(uname_v: str, falco: FalcoVersion) -> str:
    if falco < v("0.37.1"):  # falcoctl 0.7.1: strip '#', first word
        return uname_v.lstrip("#").split(" ")[0]
    match = re.search(r"#([0-9]+)", uname_v)
    return match.group(1) if match else uname_v


def falcoctl_name(host: HostFacts, falco: FalcoVersion,
                  driver_type: str = DEFAULT_TYPE) -> ProbeName:
    arch = host.uname_m
    if arch not in MIN_KERNEL:
        raise NoRequest(f"falcoctl is built only for x86_64 and aarch64, not {arch!r}")
    parsed = parse_release(host.uname_r, falco)
    os_id = _falcoctl_os_id(host)
    release, version = parsed.full, _falcoctl_generic_version(host.uname_v, falco)
    target = os_id
    if os_id == "ubuntu":
        flavor = _UBUNTU_FLAVOR.search(parsed.fullextraversion)
        target = f"ubuntu-{flavor.group(1) if flavor else 'generic'}"
        version = host.uname_v.lstrip("#").split(" ")[0].removesuffix("-Ubuntu")
    elif os_id == "debian":
        release, version = _falcoctl_debian(host, parsed, falco, release, version)
    elif os_id == "amzn":
        _require(host.version_id, "VERSION_ID", os_id)
        target = _amzn_target(host.version_id, falco)
    elif os_id == "minikube":
        version = f"1_{minikube_version(host.etc_version or '')}"
    elif os_id == "bottlerocket":
        _require(host.version_id, "VERSION_ID", os_id)
        _require(host.variant_id, "VARIANT_ID", os_id)
        version = f"1_{host.version_id}-{host.variant_id.split('-')[0]}"
    elif os_id == "talos":
        _require(host.version_id, "VERSION_ID", os_id)
        version = f"1_{host.version_id}"
    elif os_id == "flatcar":
        _require(host.version_id, "VERSION_ID", os_id)
        if not _FLATCAR_SEMVER.fullmatch(host.version_id):
            raise NoRequest(f"falcoctl crashes: flatcar VERSION_ID {host.version_id!r} is "
                            "not a semantic version")
        release = host.version_id
    elif os_id == "cos":
        _require(host.build_id, "BUILD_ID", os_id)
    floor = min_kernel(driver_type, falco, arch)
    if falco >= v("0.38.0") and parsed.numbers < floor:
        minimum = ".".join(map(str, floor[:2]))
        noun = "eBPF" if driver_type == EBPF.name else "the kernel module"
        raise NoRequest(f"falcoctl (Falco {falco}) refuses {noun} below kernel {minimum} on "
                        f"{arch}: no supported driver",
                        ProbeName(target, release, version, arch, driver_type))
    # An unparsable release gives an empty one: falcoctl really requests
    # falco_<target>__<version>.o, which names no kernel (callers say so).
    return ProbeName(target, release, version, arch, driver_type)


def _falcoctl_os_id(host: HostFacts) -> str:
    mk = host.etc_version is not None and minikube_version(host.etc_version) is not None
    if host.os_id:
        return "minikube" if mk else host.os_id.lower()
    fallbacks = sorted({*([host.fallback] if host.fallback else []), *(["minikube"] if mk else [])})
    if len(fallbacks) == 1:
        return fallbacks[0]
    if fallbacks:
        raise NoRequest("falcoctl finds no os-release and several legacy files "
                        f"({', '.join(fallbacks)}); it picks one at random")
    raise NoRequest("falcoctl finds no /etc/os-release: target undetermined, "
                    "download disabled")


def _require(value: str, key: str, os_id: str) -> None:
    if not value:
        raise NoRequest(f"falcoctl needs {key} in os-release for {os_id}; without it the "
                        "target is undetermined and nothing is downloaded")


def _falcoctl_debian(host: HostFacts, parsed: ParsedRelease, falco: FalcoVersion,
                     release: str, version: str) -> tuple[str, str]:
    debian = _DEBIAN_VERSION.search(host.uname_v)
    if debian is None:
        return release, version
    flavor = _DEBIAN_FLAVOR.search(parsed.fullextraversion)
    extra = f"-{flavor.group(1)}{flavor.group(2)}" if flavor else ""
    return parse_release(debian.group(0) + extra, falco).full, "1"  # falcoctl forces 1


def falcoctl_request_path(driver_version: str, name: ProbeName) -> str:
    """falcoctl: QueryEscape(driver version)/arch/file, the file name sent raw."""
    return f"{driver_version.replace('+', '%2B')}/{name.arch}/{name.file}"


# --- one entry point ----------------------------------------------------------------------

def client_for(falco: FalcoVersion) -> str:
    return CLIENT_FALCOCTL if falco >= FIRST_FALCOCTL else CLIENT_SHELL


def probe_name(host: HostFacts, falco: FalcoVersion,
               driver_type: str = DEFAULT_TYPE) -> ProbeName:
    """The name parts Falco `falco`'s loader computes for a driver of that type; NoRequest if
    it requests nothing."""
    if driver_type == EBPF.name and falco > LAST_EBPF:
        raise NoRequest(f"Falco {falco} has no legacy eBPF probe (removed in 0.44): it loads "
                        "the kernel module (falcoctl driver install --type kmod) or the modern "
                        "eBPF probe built into Falco")
    if falco >= FIRST_FALCOCTL:
        return falcoctl_name(host, falco, driver_type)
    return replace(shell_name(host, falco), driver_type=driver_type)


def request_path(driver_version: str, name: ProbeName, falco: FalcoVersion) -> str:
    if falco >= FIRST_FALCOCTL:
        return falcoctl_request_path(driver_version, name)
    return shell_request_path(driver_version, name, falco)


def checked(name: ProbeName, source: str) -> ProbeName:
    """Refuse names that would be unsafe as paths (hostile host input)."""
    wrong = validate_name_parts(name.target, name.kernel_release, name.kernel_version,
                                name.arch)
    if wrong:
        raise InputError(f"{source}: the loader would request {name.file!r}, which is not a "
                         "safe file name: " + "; ".join(wrong),
                         hint="check the uname and os-release values you passed")
    return name


def names_for_driver(host: HostFacts, falco_versions: Iterable[FalcoVersion],
                     driver_type: str = DEFAULT_TYPE) -> tuple[ProbeName, tuple[str, ...]]:
    """The canonical name (newest Falco release served) and every other name requested.

    A driver version that no Falco release loads by default is named with the
    newest rules, and aliased for every release that can be pointed at it
    (override_releases: OVERRIDE_RELEASES, and Falco 0.44 for the kernel module).
    Names a loader cannot really use (it requests nothing, or a name without a
    kernel release) are not aliases.
    """
    versions = sorted(set(falco_versions)) or list(override_releases(driver_type))
    names: list[ProbeName] = []
    for falco in reversed(versions):
        try:
            names.append(probe_name(host, falco, driver_type))
        except NoRequest:
            continue
    if not names:  # fall back to the newest shell rules, which always name something
        names.append(replace(shell_name(host, min(versions[-1], v("0.36.2"))),
                             driver_type=driver_type))
    canonical = names[0]
    return canonical, unique_aliases(canonical.file,
                                     (n.file for n in names[1:] if n.kernel_release))
