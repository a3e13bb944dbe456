"""Falco versions, and which driver version each Falco release loads by default.

The table below is the built-in fact base (read from the Falco release
tags); `probes.yaml` extends it for newer releases and can override it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import InputError

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


# Oldest and newest Falco releases whose loaders we reproduce (legacy eBPF
# was removed in 0.44).
FIRST_SUPPORTED = v("0.26.0")
LAST_SUPPORTED = v("0.43.99")

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


def builtin_driver_version(falco: FalcoVersion) -> str | None:
    for first, last, driver in BUILTIN_DRIVER_VERSIONS:
        if first <= falco <= last:
            return driver
    return None


def check_supported(falco: FalcoVersion) -> None:
    if not FIRST_SUPPORTED <= falco <= LAST_SUPPORTED:
        raise InputError(
            f"Falco {falco} is outside the supported range 0.26 to 0.43",
            hint="legacy eBPF probes were removed in Falco 0.44; older loaders are not modelled")
