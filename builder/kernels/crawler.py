"""kernel-crawler lists -> Kernel records.

The Falco project's kernel-crawler publishes one JSON object per architecture
(`x86_64/list.json`, `aarch64/list.json`) mapping a distro key to a list of
driverkit-style entries `{kernelrelease, kernelversion, target, headers?,
kernelconfigdata?}`. Two key styles exist: display names in old lists
(`AmazonLinux2`, `Ubuntu`, `PhotonOS`...) and os-release-like keys in current
ones (`amazonlinux2`, `ol`, `photon`...). The key only labels messages: each
entry's own `target` says what it is, so both styles load the same way. The
file does not say its architecture; the caller does (or the file's path).

Parsing is pure (`parse_crawler_text`, `parse_crawler_data`); `load_crawler`
reads a path or URL at the edge. Junk entries become located problems and
the rest is still listed.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import posixpath
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from builder.core import limits
from builder.core.errors import InputError, Problem, StoreError
from builder.core.files import decode_text
from builder.core.jsonio import parse_json
from builder.core.records import (
    ARCH_ALIASES,
    HeaderPackage,
    HostFacts,
    Kernel,
    check_kernel_release,
    check_kernel_version,
    check_target,
    check_url,
)
from builder.core.schema import Field, Schema, Where, short
from builder.shared.apt import debian_uname_v, ubuntu_uname_v
from builder.shared.fetch import read_document

SOURCE_PREFIX = "kernel-crawler:"
DEFAULT_ARCH = "x86_64"


@dataclass(frozen=True, slots=True)
class CrawlerList:
    """What one list gave: kernels (with `labels[i]` = where kernel i came from),
    junk entries as problems, and notes about kernels listed with a caveat."""

    kernels: tuple[Kernel, ...]
    labels: tuple[str, ...]
    problems: tuple[Problem, ...]
    notes: tuple[Problem, ...]
    distros: tuple[str, ...]
    entries: int


@dataclass(frozen=True, slots=True)
class Entry:
    """One validated crawler entry, before we reconstruct its host."""

    target: str
    kernelrelease: str
    kernelversion: str
    headers: tuple[HeaderPackage, ...]
    kernelconfigdata: str
    arch: str


@dataclass(frozen=True, slots=True)
class Reconstructed:
    host: HostFacts
    flavor: str = ""
    package_version: str = ""


@dataclass(frozen=True, slots=True)
class Refusal:
    """An entry whose fields are fine one by one but do not describe a host."""

    field: str
    message: str


# --- target -> host: what falco-driver-loader would read on such a host -------


@dataclass(frozen=True, slots=True)
class HostRule:
    os_id: str                 # /etc/os-release ID
    version_id: str = ""       # VERSION_ID, or its fallback when version_re finds nothing
    version_re: str = ""       # regex whose group 1 is VERSION_ID: kernelrelease, then header URLs
    version_fmt: str = "{}"
    build: str = "plain"       # how uname -r/-v and extra facts are made (see _BUILDERS)


# One row per crawler target (lowercased). Targets not listed here are looked
# up by their family (the text before the first "-": ubuntu-gke-4.15 ->
# ubuntu), then fall back to os_id = target, which is what the loader does
# with an os-release ID it has no special case for. Old lists say oracle6/7/8
# and photonOS, current ones ol and photon; both are real hosts with ID=ol /
# ID=photon. Minikube's os-release says buildroot; its /etc/VERSION makes the
# loader say minikube.
TARGET_HOSTS: dict[str, HostRule] = {
    "ubuntu": HostRule("ubuntu", build="ubuntu"),
    "debian": HostRule("debian", build="debian"),
    "amazonlinux": HostRule("amzn", "2018.03", version_re=r"/(\d{4}\.\d\d)/"),
    "amazonlinux2": HostRule("amzn", "2"),
    "amazonlinux2022": HostRule("amzn", "2022"),
    "amazonlinux2023": HostRule("amzn", "2023"),
    "centos": HostRule("centos", version_re=r"\.el(\d+)"),
    "fedora": HostRule("fedora", version_re=r"\.fc(\d+)"),
    "oracle6": HostRule("ol", "6"),
    "oracle7": HostRule("ol", "7"),
    "oracle8": HostRule("ol", "8"),
    "oracle9": HostRule("ol", "9"),
    "ol": HostRule("ol", version_re=r"\.el(\d+)"),
    "photonos": HostRule("photon", version_re=r"\.ph(\d+)", version_fmt="{}.0",
                         build="strip-arch"),
    "photon": HostRule("photon", version_re=r"\.ph(\d+)", version_fmt="{}.0",
                       build="strip-arch"),
    "almalinux": HostRule("almalinux", version_re=r"\.el(\d+)"),
    "rocky": HostRule("rocky", version_re=r"\.el(\d+)"),
    "redhat": HostRule("rhel", version_re=r"\.el(\d+)"),
    "alinux": HostRule("alinux"),
    "opensuse": HostRule("opensuse"),
    "arch": HostRule("arch"),
    "cos": HostRule("cos"),
    "flatcar": HostRule("flatcar", build="flatcar"),
    "minikube": HostRule("buildroot", build="minikube"),
    "bottlerocket": HostRule("bottlerocket", build="bottlerocket"),
    "talos": HostRule("talos", build="talos"),
}


def host_rule(target: str) -> HostRule:
    return (TARGET_HOSTS.get(target) or TARGET_HOSTS.get(target.split("-", 1)[0])
            or HostRule(target))


def _version_id(rule: HostRule, entry: Entry) -> str:
    if rule.version_re:
        for text in (entry.kernelrelease, *(h.url for h in entry.headers)):
            found = re.search(rule.version_re, text)
            if found:
                return rule.version_fmt.format(found.group(1))
    return rule.version_id


def _host(rule: HostRule, entry: Entry, uname_r: str, uname_v: str,
          **extra: Any) -> HostFacts:
    extra.setdefault("version_id", _version_id(rule, entry))
    return HostFacts(os_id=rule.os_id, uname_r=uname_r, uname_v=uname_v,
                     uname_m=entry.arch, **extra)


def _plain(rule: HostRule, entry: Entry) -> Reconstructed | Refusal:
    return Reconstructed(_host(rule, entry, entry.kernelrelease,
                               f"#{entry.kernelversion} SMP"))


def _strip_arch(rule: HostRule, entry: Entry) -> Reconstructed | Refusal:
    # Photon's package release ends in .<arch>; `uname -r` does not.
    uname_r = entry.kernelrelease.removesuffix(f".{entry.arch}")
    return Reconstructed(_host(rule, entry, uname_r, f"#{entry.kernelversion} SMP"))


_DEB_FILE = re.compile(r"(?P<package>[^_]+)_(?P<version>[^_]+)_(?P<arch>[^_]+)\.deb")
_DEBIAN_RELEASE = re.compile(r"(?P<version>\d.*?)-(?P<flavor>(?:[a-z][a-z0-9]*-)?(?:amd64|arm64))")
_DEBIAN_SUITE_NUMBER = re.compile(r"(?:deb|bpo)(\d+)")


def _debian(rule: HostRule, entry: Entry) -> Reconstructed | Refusal:
    # The crawler names Debian kernels the way the 0.35+ loader does
    # (<package version>-<flavor>); the host's `uname -r` is the ABI name
    # found in the flavor's headers package, its `uname -v` holds the version.
    found = _DEBIAN_RELEASE.fullmatch(entry.kernelrelease)
    if found is None:
        return Refusal("kernelrelease", f"{entry.kernelrelease!r} is not <debian package "
                       "version>-<flavor> (like 6.1.158-1-amd64)")
    version, flavor = found["version"], found["flavor"]
    abis = [m["package"].removeprefix("linux-headers-").removesuffix(f"-{flavor}")
            for m in (_DEB_FILE.fullmatch(h.name) for h in entry.headers)
            if m and m["version"] == version and m["package"].startswith("linux-headers-")
            and m["package"].endswith(f"-{flavor}") and "-common" not in m["package"]]
    uname_r = f"{min(abis, key=len)}-{flavor}" if abis else entry.kernelrelease
    suites = _DEBIAN_SUITE_NUMBER.findall(version)  # the last one is the suite built for
    host = _host(rule, entry, uname_r,
                 debian_uname_v(entry.kernelversion, flavor, version, uname_r),
                 version_id=suites[-1] if suites else "")
    return Reconstructed(host, flavor, version)


_UBUNTU_FLAVOR_RELEASE = re.compile(r"\d+\.\d+\.\d+-\d+-(?P<flavor>[a-z].*)")
_UBUNTU_SERIES = re.compile(r"~(\d\d\.\d\d)")


def _ubuntu(rule: HostRule, entry: Entry) -> Reconstructed | Refusal:
    # Old lists append the archive folder's flavor to the release
    # (4.15.0-1070-gke-4.15, 4.15.0-62-hwe); a host's `uname -r` is the name of
    # a flavor headers package (4.15.0-1070-gke, 4.15.0-62-generic).
    debs = [m for m in (_DEB_FILE.fullmatch(h.name) for h in entry.headers) if m]
    releases = {m["package"].removeprefix("linux-headers-"): m["version"] for m in debs
                if m["package"].startswith("linux-headers-")
                and _UBUNTU_FLAVOR_RELEASE.fullmatch(m["package"].removeprefix("linux-headers-"))}
    uname_r = _pick_ubuntu_release(entry.kernelrelease, sorted(releases))
    flavor_match = _UBUNTU_FLAVOR_RELEASE.fullmatch(uname_r)
    flavor = flavor_match["flavor"] if flavor_match else entry.target.removeprefix("ubuntu-")
    package_version = releases.get(uname_r) or (debs[0]["version"] if debs else "")
    series = _UBUNTU_SERIES.search(entry.kernelversion)
    host = _host(rule, entry, uname_r, ubuntu_uname_v(entry.kernelversion),
                 version_id=series.group(1) if series else "")
    return Reconstructed(host, flavor, package_version)


def _pick_ubuntu_release(kernelrelease: str, releases: list[str]) -> str:
    if not releases or kernelrelease in releases:
        return kernelrelease
    prefixes = [r for r in releases if kernelrelease.startswith(f"{r}-")]
    generic = [r for r in releases if r.endswith("-generic")]
    return (prefixes or generic or releases)[0]


def _flatcar(rule: HostRule, entry: Entry) -> Reconstructed | Refusal:
    # The crawler's kernelrelease is the Flatcar version, which is what the
    # loader (0.32.1+) uses as KERNEL_RELEASE; the real `uname -r` is unknown.
    host = _host(rule, entry, entry.kernelrelease, f"#{entry.kernelversion} SMP",
                 version_id=entry.kernelrelease)
    return Reconstructed(host, package_version=entry.kernelrelease)


def _one_underscore(entry: Entry, example: str) -> tuple[str, str] | Refusal:
    build, sep, rest = entry.kernelversion.partition("_")
    if not sep or not build.isdigit() or not rest:
        return Refusal("kernelversion", f"{entry.kernelversion!r} is not like {example}")
    return build, rest


def _minikube(rule: HostRule, entry: Entry) -> Reconstructed | Refusal:
    parts = _one_underscore(entry, "1_1.26.0 (1_<minikube version>)")
    if isinstance(parts, Refusal):
        return parts
    host = _host(rule, entry, entry.kernelrelease, f"#{parts[0]} SMP",
                 etc_version=f"v{parts[1]}")
    return Reconstructed(host, package_version=entry.kernelversion)


def _bottlerocket(rule: HostRule, entry: Entry) -> Reconstructed | Refusal:
    parts = _one_underscore(entry, "1_1.19.2-aws (1_<version>-<variant>)")
    if isinstance(parts, Refusal):
        return parts
    version_id, _, variant_id = parts[1].partition("-")
    host = _host(rule, entry, entry.kernelrelease, f"#{parts[0]} SMP",
                 version_id=version_id, variant_id=variant_id)
    return Reconstructed(host, flavor=variant_id, package_version=entry.kernelversion)


def _talos(rule: HostRule, entry: Entry) -> Reconstructed | Refusal:
    parts = _one_underscore(entry, "1_v1.5.0 (1_<talos version>)")
    if isinstance(parts, Refusal):
        return parts
    host = _host(rule, entry, entry.kernelrelease, f"#{parts[0]} SMP", version_id=parts[1])
    return Reconstructed(host, package_version=entry.kernelversion)


_BUILDERS: dict[str, Callable[[HostRule, Entry], Reconstructed | Refusal]] = {
    "plain": _plain, "strip-arch": _strip_arch, "debian": _debian, "ubuntu": _ubuntu,
    "flatcar": _flatcar, "minikube": _minikube, "bottlerocket": _bottlerocket,
    "talos": _talos,
}


# --- entries -------------------------------------------------------------------


def _check_headers(value: Any) -> str | None:
    for i, item in enumerate(value):
        if not isinstance(item, str):
            return f"item {i}: must be a URL string, got {short(item)}"
        wrong = check_url(item)
        if wrong:
            return f"item {i}: {wrong}"
    return None


def _check_target(value: Any) -> str | None:
    return check_target(value.lower())


def _check_base64(value: Any) -> str | None:
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return "is not valid base64"
    return None


ENTRY_SCHEMA = Schema("kernel-crawler entry", [
    Field("kernelrelease", str, check=check_kernel_release),
    Field("kernelversion", str, check=check_kernel_version, coerce_str=True),
    Field("target", str, check=_check_target),
    Field("headers", list, required=False, default=[], check=_check_headers),
    Field("kernelconfigdata", str, required=False, default="", check=_check_base64),
])

_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+~-]*")
_TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.bz2", ".tbz2", ".tar.zst")
# Releases that name their architecture: rpm-style `.x86_64`, Debian-style `-arm64`.
_RELEASE_ARCH = re.compile(r"[.-](x86_64|aarch64|amd64|arm64)$")


def header_kind(name: str) -> str | None:
    if name.endswith(".deb"):
        return "deb"
    if name.endswith(".rpm"):
        return "rpm"
    return "tar" if name.endswith(_TAR_SUFFIXES) else None


def header_name(url: str) -> str | None:
    """The file name a header URL ends in, or None when it could escape a folder."""
    name = urllib.parse.unquote(posixpath.basename(urllib.parse.urlsplit(url).path))
    return name if _SAFE_NAME.fullmatch(name) and ".." not in name else None


def _headers(urls: list[str], where: Where, problems: list[Problem],
             notes: list[Problem]) -> tuple[HeaderPackage, ...] | None:
    """Header packages, one per file name (lists repeat a file from several mirrors)."""
    out: dict[str, HeaderPackage] = {}
    for i, url in enumerate(urls):
        name = header_name(url)
        if name is None:
            problems.append(where.problem(
                f"item {i}: {short(url)} does not end in a usable file name", "headers"))
            return None
        kind = header_kind(name)
        if kind is None:
            notes.append(where.problem(
                f"item {i}: {name} is not a .deb, .rpm or tarball; the kernel is listed "
                "without it (building it needs another backend)", "headers"))
            continue
        out.setdefault(name, HeaderPackage(name=name, url=url, kind=kind))
    return tuple(out.values())


def entry_from_mapping(raw: object, where: Where, arch: str, problems: list[Problem],
                       notes: list[Problem]) -> Entry | None:
    if isinstance(raw, dict):  # keys a newer crawler may add are not our business
        raw = {k: v for k, v in raw.items() if k in ENTRY_SCHEMA.by_name}
    clean = ENTRY_SCHEMA.parse(raw, where, problems)
    if clean is None:
        return None
    entry_notes: list[Problem] = []
    headers = _headers(clean["headers"], where, problems, entry_notes)
    if headers is None:
        return None
    release_arch = _RELEASE_ARCH.search(clean["kernelrelease"])
    if release_arch and ARCH_ALIASES[release_arch.group(1)] != arch:
        problems.append(where.problem(
            f"{clean['kernelrelease']!r} is a kernel for {ARCH_ALIASES[release_arch.group(1)]} but "
            f"the list is read as {arch} (give the list's architecture with --arch)",
            "kernelrelease"))
        return None
    notes.extend(entry_notes)
    return Entry(clean["target"].lower(), clean["kernelrelease"], clean["kernelversion"],
                 headers, clean["kernelconfigdata"], arch)


def kernel_from_entry(entry: Entry, source: str) -> Kernel | Refusal:
    rule = host_rule(entry.target)
    made = _BUILDERS[rule.build](rule, entry)
    if isinstance(made, Refusal):
        return made
    return Kernel(target=entry.target, host=made.host, headers=entry.headers, source=source,
                  flavor=made.flavor, package_version=made.package_version,
                  kernelconfigdata=entry.kernelconfigdata)


def _shown(key: str) -> str:
    """A distro key as messages show it (quoted and cut when it is not a plain name)."""
    return key if _SAFE_NAME.fullmatch(key) else short(key, 40)


def parse_crawler_data(data: object, path: str, arch: str = DEFAULT_ARCH) -> CrawlerList:
    """Kernels from an already-decoded list; raise InputError only if it is not a list at all."""
    arch = _arch(arch)
    if not isinstance(data, dict):
        raise InputError(f"{path}: a kernel-crawler list is a JSON object mapping distro "
                         f"names to lists of kernels, got {type(data).__name__}",
                         hint="give the list.json file kernel-crawler publishes per arch")
    source = f"{SOURCE_PREFIX}{path}"
    kernels: list[Kernel] = []
    labels: list[str] = []
    problems: list[Problem] = []
    notes: list[Problem] = []
    seen: dict[str, str] = {}
    count = 0
    for key, items in data.items():
        if not isinstance(items, list):
            problems.append(Problem(path, f"must be a list of kernels, got {short(items)}",
                                    record=_shown(key)))
            continue
        for index, raw in enumerate(items):
            count += 1
            where = Where(path, None, f"{_shown(key)}[{index}]")
            entry = entry_from_mapping(raw, where, arch, problems, notes)
            if entry is None:
                continue
            kernel = kernel_from_entry(entry, source)
            if isinstance(kernel, Refusal):
                problems.append(where.problem(kernel.message, kernel.field))
            elif kernel.key in seen:
                problems.append(where.problem(f"the same kernel as {seen[kernel.key]}",
                                              "kernelrelease"))
            else:
                seen[kernel.key] = where.record or ""
                kernels.append(kernel)
                labels.append(where.record or "")
    return CrawlerList(tuple(kernels), tuple(labels), tuple(problems), tuple(notes),
                       tuple(str(k) for k in data), count)


def parse_crawler_text(text: str, path: str, arch: str = DEFAULT_ARCH) -> CrawlerList:
    return parse_crawler_data(parse_json(text, path), path, arch)


# --- the edge: paths and URLs ----------------------------------------------------


def _arch(arch: str) -> str:
    if arch not in ARCH_ALIASES:
        raise InputError(f"unknown architecture {arch!r}",
                         hint="use x86_64 or aarch64 (amd64 and arm64 are accepted)")
    return ARCH_ALIASES[arch]


def guess_arch(location: str) -> str | None:
    """The architecture a list's path or URL names (…/aarch64/list.json), if any."""
    found = re.findall(r"(?<![A-Za-z0-9])(x86_64|aarch64|amd64|arm64)(?![A-Za-z0-9])", location)
    return ARCH_ALIASES[found[-1]] if found else None


def read_location(location: str) -> str:
    """The text at a path, file:// URL or http(s):// URL, at most limits.KERNEL_LIST bytes."""
    try:
        return decode_text(read_document(location, limits.KERNEL_LIST), location)
    except StoreError as exc:
        raise StoreError(f"could not download the kernel list: {exc.message}",
                         hint="check the URL, or download the file and give its path"
                         ) from None


def load_crawler(location: str, arch: str | None = None) -> CrawlerList:
    """Read and parse one kernel-crawler list; arch from the caller, the path, or x86_64."""
    chosen = arch or guess_arch(location) or DEFAULT_ARCH
    found = parse_crawler_text(read_location(location), location, chosen)
    if location.startswith(("http://", "https://")):
        return _remote_headers_only(found, location)
    return found


def _remote_headers_only(found: CrawlerList, location: str) -> CrawlerList:
    """A list fetched over the network may not make `build` read local files: a kernel
    whose header URL is not http(s) becomes a problem of the list."""
    kept: list[tuple[Kernel, str]] = []
    problems = list(found.problems)
    for kernel, label in zip(found.kernels, found.labels, strict=True):
        local = [h.url for h in kernel.headers if not h.url.startswith(("http://", "https://"))]
        if local:
            problems.append(Problem(location, f"header URL {short(local[0], 120)}: a list fetched "
                                    "over the network may only name http(s) URLs",
                                    record=label, field="headers"))
        else:
            kept.append((kernel, label))
    return dataclasses.replace(found, kernels=tuple(k for k, _ in kept),
                               labels=tuple(label for _, label in kept),
                               problems=tuple(problems))
