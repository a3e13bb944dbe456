"""Falco versions, which driver version each Falco release loads by default, and which
types of driver (drivertypes.py) a release and a driver version have.

The table below is the built-in fact base (read from the Falco release
tags, 0.26 to 0.36); `probes.yaml` extends it for newer releases and can
override it. `FalcoReleases` is the one answer every stage uses (plan,
build, publish, the stores, find, the site and its browser lookup).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from builder.core.drivertypes import BY_NAME, EBPF, KMOD
from builder.core.errors import InputError

_VERSION_RE = re.compile(r"v?([0-9]{1,4})\.([0-9]{1,4})(?:\.([0-9]{1,4}))?")  # ASCII digits


@dataclass(frozen=True, slots=True, order=True)
class FalcoVersion:
    major: int
    minor: int
    patch: int = 0

    @classmethod
    def parse(cls, text: str, *, what: str = "Falco version") -> FalcoVersion:
        match = _VERSION_RE.fullmatch(str(text).strip())
        if match is None:
            raise InputError(f"{what} {text!r} is not a version like 0.35.1",
                             hint="give MAJOR.MINOR.PATCH, for example 0.36.2")
        major, minor, patch = match.groups()
        return cls(int(major), int(minor), int(patch or 0))

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


def v(text: str) -> FalcoVersion:
    return FalcoVersion.parse(text)


# Oldest and newest Falco releases whose loaders we reproduce, per driver type: Falco 0.44
# removed the legacy eBPF probe and loads the kernel module (or the modern eBPF probe
# built into Falco itself, which nobody downloads).
FIRST_SUPPORTED = v("0.26.0")
LAST_SUPPORTED = v("0.44.99")
LAST_EBPF = v("0.43.99")
LAST_OF_TYPE = {EBPF.name: LAST_EBPF, KMOD.name: LAST_SUPPORTED}
# The first Falco release whose default driver is the kernel module (falcoctl's own
# default before was its preference order, but no release after 0.43 has a legacy probe).
FIRST_KMOD_ONLY = v("0.44.0")
# libs removed driver/bpf in 10.0.0+driver: the driver versions from it are modules only.
FIRST_WITHOUT_EBPF = (10, 0, 0)
_TAGGED_DRIVER = re.compile(r"([0-9]+)\.([0-9]+)\.([0-9]+)\+driver")

# Falco release -> default DRIVER_VERSION, as (first, last) inclusive ranges.
BUILTIN_DRIVER_VERSIONS: tuple[tuple[FalcoVersion, FalcoVersion, str], ...] = (
    (v("0.26.0"), v("0.26.99"), "2aa88dcf6243982697811df4c1b484bcbe9488a2"),
    (v("0.27.0"), v("0.28.99"), "5c0b863ddade7a45568c0ac97d037422c9efb750"),
    (v("0.29.0"), v("0.29.99"), "17f5df52a7d9ed6bb12d3b1768460def8439936d"),
    (v("0.30.0"), v("0.30.99"), "3aa7a83bf7b9e6229a3824e3fd1f4452d1e95cb4"),
    (v("0.31.0"), v("0.31.0"), "319368f1ad778691164d33d59945e00c5752cd27"),
    (v("0.31.1"), v("0.31.99"), "b7eb0dd65226a8dc254d228c8d950d07bf3521d2"),
    (v("0.32.0"), v("0.32.0"), "39ae7d40496793cf3d3e7890c9bbdc202263836b"),
    (v("0.32.1"), v("0.32.99"), "2.0.0+driver"),
    (v("0.33.0"), v("0.33.99"), "3.0.1+driver"),
    (v("0.34.0"), v("0.34.99"), "4.0.0+driver"),
    (v("0.35.0"), v("0.35.99"), "5.0.1+driver"),
    (v("0.36.0"), v("0.36.99"), "6.0.1+driver"),
)

# Patch releases we know exist, used to list "Falco versions served" when
# probes.yaml does not list them for a driver version.
KNOWN_RELEASES: tuple[str, ...] = (
    "0.26.0", "0.26.1", "0.26.2", "0.27.0", "0.28.0", "0.28.1", "0.29.0", "0.29.1",
    "0.30.0", "0.31.0", "0.31.1", "0.32.0", "0.32.1", "0.32.2", "0.33.0", "0.33.1",
    "0.34.0", "0.34.1", "0.35.0", "0.35.1", "0.36.0", "0.36.1", "0.36.2",
)


@dataclass(frozen=True, slots=True)
class FalcoReleases:
    """Which Falco release loads which driver version by default.

    Exact releases only: a release nobody listed (0.31.2 does not exist) has
    no driver version, in Python and in the site's JavaScript alike.
    """

    table: tuple[tuple[FalcoVersion, str], ...]  # (release, driver version), oldest first

    @classmethod
    def from_lists(cls, listed: Iterable[tuple[str, Iterable[str]]] = ()) -> FalcoReleases:
        """The built-in facts, overridden by `listed` (driver version, its Falco releases)."""
        table = {FalcoVersion.parse(r): builtin_driver_version(FalcoVersion.parse(r)) or ""
                 for r in KNOWN_RELEASES}
        for driver_version, releases in listed:
            for release in releases:
                table[FalcoVersion.parse(release)] = driver_version
        return cls(tuple(sorted(table.items())))

    def driver_for(self, falco: FalcoVersion) -> str | None:
        return next((d for f, d in self.table if f == falco), None)

    def falco_for(self, driver_version: str) -> tuple[FalcoVersion, ...]:
        """The releases loading `driver_version` by default, oldest first (may be none)."""
        return tuple(f for f, d in self.table if d == driver_version)

    def releases(self) -> tuple[FalcoVersion, ...]:
        return tuple(f for f, _ in self.table)

    def newest(self) -> FalcoVersion:
        return self.table[-1][0]

    def as_mapping(self) -> Mapping[str, str]:
        """{"0.43.1": "9.1.0+driver", ...}: what the site ships to the browser."""
        return {str(f): d for f, d in self.table}


BUILTIN_RELEASES: FalcoReleases  # set below, once the table's helpers exist


# Driver version -> (API version, schema version) its source declares (driver/API_VERSION
# and driver/SCHEMA_VERSION at each libs ref). A source built as one of these must
# declare the same: that is what makes a Debian-packaged source "this driver version".
# The oldest commits (Falco 0.26-0.31.0) declare none.
DRIVER_API: dict[str, tuple[str, str]] = {
    "b7eb0dd65226a8dc254d228c8d950d07bf3521d2": ("1.0.0", "1.0.0"),
    "39ae7d40496793cf3d3e7890c9bbdc202263836b": ("1.0.0", "1.0.0"),
    "2.0.0+driver": ("1.0.0", "2.0.0"),
    "3.0.1+driver": ("2.0.0", "2.1.0"),
    "4.0.0+driver": ("3.0.0", "2.2.0"),
    "5.0.1+driver": ("4.0.1", "2.4.1"),
    "6.0.1+driver": ("5.0.0", "2.10.0"),
    "7.0.0+driver": ("8.0.1", "2.14.0"),
    "7.2.0+driver": ("8.0.3", "2.20.1"),
    "7.2.1+driver": ("8.0.3", "2.20.1"),
    "7.3.0+driver": ("8.0.3", "2.22.1"),
    "8.0.0+driver": ("8.0.3", "3.5.0"),
    "8.1.0+driver": ("8.0.3", "3.6.1"),
    "9.0.0+driver": ("8.0.4", "4.0.1"),
    "9.1.0+driver": ("8.0.4", "4.1.0"),
    "10.0.0+driver": ("10.0.0", "4.3.0"),
    "10.1.0+driver": ("10.0.0", "4.5.0"),
    "10.2.0+driver": ("10.1.0", "4.5.1"),
}


def driver_types_of(driver_version: str) -> tuple[str, ...]:
    """The driver types whose source a driver version holds: every one has the kernel
    module; the legacy eBPF probe (driver/bpf) exists up to 9.1.0+driver, and in every
    commit-hash version and Debian snapshot before it."""
    tagged = _TAGGED_DRIVER.fullmatch(driver_version)
    if tagged and tuple(int(n) for n in tagged.groups()) >= FIRST_WITHOUT_EBPF:
        return (KMOD.name,)
    return (EBPF.name, KMOD.name)


def default_driver_type(falco: FalcoVersion) -> str:
    """The driver type a Falco release loads when nobody says: its kernel module from 0.44,
    which has no legacy eBPF probe; the eBPF probe before (what this repository serves)."""
    return KMOD.name if falco >= FIRST_KMOD_ONLY else EBPF.name


def builtin_driver_version(falco: FalcoVersion) -> str | None:
    for first, last, driver in BUILTIN_DRIVER_VERSIONS:
        if first <= falco <= last:
            return driver
    return None


def check_supported(falco: FalcoVersion, driver_type: str = EBPF.name) -> None:
    """Refuse a release whose loader we do not reproduce for that type of driver."""
    last = LAST_OF_TYPE[driver_type]
    if FIRST_SUPPORTED <= falco <= last:
        return
    noun = BY_NAME[driver_type].noun
    if driver_type == EBPF.name and falco <= LAST_SUPPORTED:
        hint = (f"Falco {falco.major}.{falco.minor} has no legacy eBPF probe (removed in 0.44): "
                "ask for its kernel module (--driver-type kmod)")
    else:
        hint = "older and newer loaders are not modelled"
    raise InputError(f"Falco {falco} is outside the supported range 0.26 to "
                     f"{last.major}.{last.minor} for the {noun}", hint=hint)


BUILTIN_RELEASES = FalcoReleases.from_lists()
