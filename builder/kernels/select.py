"""Which discovered kernels to build for: each one kept, or skipped with its reason.

Filters run in a fixed order (arch, target, minimum kernel, include pattern,
exclude pattern, then `latest N`); a kernel is skipped by the first one that
refuses it, and the reason says which and why. Nothing is dropped silently.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from builder.core.config import DEFAULT_MIN_KERNEL, Target
from builder.core.errors import InputError
from builder.core.records import ARCH_ALIASES, OTHER_SERIES, Kernel, kernel_series, release_numbers


@dataclass(frozen=True, slots=True)
class Skipped:
    kernel: Kernel
    reason: str
    rule: str = ""  # arch | target | min-kernel | include | exclude | latest


@dataclass(frozen=True, slots=True)
class KernelFilters:
    arches: tuple[str, ...] = ()       # empty: every arch
    targets: tuple[str, ...] = ()      # a target or its family (ubuntu keeps ubuntu-aws)
    min_kernel: Mapping[str, str] = field(
        default_factory=lambda: MappingProxyType(dict(DEFAULT_MIN_KERNEL)))
    include: str = ""                  # regex searched in `uname -r`
    exclude: str = ""
    latest: int = 0                    # the N newest per target/arch/flavor/series; 0 = all

    def __post_init__(self) -> None:
        for name in ("include", "exclude"):
            pattern = getattr(self, name)
            try:
                re.compile(pattern)
            except re.error as exc:
                raise InputError(f"{name} pattern {pattern!r} is not a valid regular "
                                 f"expression: {exc}", hint="use Python regex syntax") from None
        for arch in (*self.arches, *self.min_kernel):
            if arch not in ARCH_ALIASES:
                raise InputError(f"unknown architecture {arch!r}", hint="use x86_64 or aarch64")
        for arch, version in self.min_kernel.items():
            if not re.fullmatch(r"\d+\.\d+(\.\d+)?", version):
                raise InputError(f"minimum kernel {version!r} for {arch} is not a version "
                                 "like 4.14")
        if self.latest < 0:
            raise InputError(f"--latest {self.latest}: give 0 (all) or a positive number")


def filters_for_target(target: Target, *, by_target: bool) -> KernelFilters:
    """The filters a probes.yaml target asks for; `by_target` keeps only its own kernels."""
    return KernelFilters(arches=target.arch, targets=(target.name,) if by_target else (),
                         min_kernel=dict(target.min_kernel), include=target.include,
                         exclude=target.exclude, latest=target.latest)


@dataclass(frozen=True, slots=True)
class Selection:
    kept: tuple[Kernel, ...]
    skipped: tuple[Skipped, ...]


def _chunks(text: str) -> tuple[tuple[int, int, str], ...]:
    """A sort key in the spirit of dpkg: numbers as numbers, '~' before anything."""
    rank = {"~": 0}
    parts = [(3, int(p), "") if p.isdigit() else (rank.get(p, 2), 0, p)
             for p in re.findall(r"\d+|[A-Za-z]+|~", text)]
    return (*parts, (1, 0, ""))


def version_order(kernel: Kernel) -> tuple[object, ...]:
    return (_chunks(kernel.package_version), _chunks(kernel.host.uname_r),
            _chunks(kernel.host.uname_v))


def _target_matches(target: str, wanted: tuple[str, ...]) -> bool:
    return any(target == w or target.startswith(f"{w}-") for w in wanted)


def _first_refusal(kernel: Kernel, filters: KernelFilters) -> tuple[str, str] | None:
    release = kernel.host.uname_r
    if filters.arches and kernel.arch not in {ARCH_ALIASES[a] for a in filters.arches}:
        return "arch", f"arch {kernel.arch} is not {' or '.join(filters.arches)}"
    if filters.targets and not _target_matches(kernel.target, filters.targets):
        return "target", f"target {kernel.target} is not {' or '.join(filters.targets)}"
    minimum = {ARCH_ALIASES[a]: v for a, v in filters.min_kernel.items()}.get(kernel.arch)
    if minimum:
        numbers = release_numbers(release)
        if numbers is None:
            return "min-kernel", f"uname -r {release} does not start with a kernel version"
        if numbers < (release_numbers(minimum) or ()):
            return "min-kernel", (f"kernel {release} is older than {minimum}, the minimum for "
                                  f"eBPF probes on {kernel.arch}")
    if filters.include and not re.search(filters.include, release):
        return "include", f"uname -r {release} does not match {filters.include!r}"
    if filters.exclude and re.search(filters.exclude, release):
        return "exclude", f"uname -r {release} matches the exclusion {filters.exclude!r}"
    return None


def select_kernels(kernels: Iterable[Kernel], filters: KernelFilters) -> Selection:
    kept: list[Kernel] = []
    skipped: list[Skipped] = []
    for kernel in kernels:
        refusal = _first_refusal(kernel, filters)
        if refusal is None:
            kept.append(kernel)
        else:
            skipped.append(Skipped(kernel, refusal[1], refusal[0]))
    if filters.latest:
        kept, older = _latest(kept, filters.latest)
        skipped += older
    return Selection(tuple(kept), tuple(skipped))


def _latest(kernels: list[Kernel], count: int) -> tuple[list[Kernel], list[Skipped]]:
    # Per kernel series too: a distribution that ships 6.1 and 6.12 lines side by side
    # (Debian 12) keeps the newest of each, not only of the newest line.
    groups: dict[tuple[str, ...], list[Kernel]] = defaultdict(list)
    for kernel in kernels:
        groups[(kernel.target, kernel.arch, kernel.flavor, _series(kernel))].append(kernel)
    newest: set[int] = set()
    for group in groups.values():
        newest.update(id(k) for k in sorted(group, key=version_order, reverse=True)[:count])
    kept = [k for k in kernels if id(k) in newest]
    skipped = [Skipped(k, f"not among the {count} newest {_group_name(k)} kernels", "latest")
               for k in kernels if id(k) not in newest]
    return kept, skipped


def _series(kernel: Kernel) -> str:
    series = kernel_series(kernel.host.uname_r)
    return "" if series == OTHER_SERIES else series


def _group_name(kernel: Kernel) -> str:
    parts = (kernel.target, kernel.arch, kernel.flavor, _series(kernel))
    return "/".join(part for part in parts if part)
