"""The kernels of probes.yaml's targets: each source read once, each kernel kept or
skipped by its target's filters, with the reason.

Used by `plan`, `build --target` and `demo`. Pure but for the sources it
reads; problems with source entries come back for the caller to show.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from builder.core.config import Config, Target
from builder.core.errors import InputError, Problem
from builder.core.records import Kernel, Left, release_numbers
from builder.kernels import Discovery, discover
from builder.kernels.select import filters_for_target, select_kernels, version_order

_OFFERS_SHOWN = 12


@dataclass(frozen=True, slots=True)
class TargetKernels:
    kernels: tuple[Kernel, ...]          # kept, every target
    left: tuple[Left, ...]               # skipped by a filter, with the reason
    problems: tuple[tuple[str, Problem], ...] = ()  # (source, entry left out of it)


def kernels_for_targets(config: Config, only: Sequence[str], cache: Path | None,
                        ) -> TargetKernels:
    """Kernels of every (selected) target; InputError when the filters keep none."""
    names = {t.name for t in config.targets}
    missing = sorted(set(only) - names)
    if missing:
        raise InputError(f"target {missing[0]!r} is not in {config.path}",
                         hint=f"targets: {', '.join(sorted(names))}")
    discovered: dict[tuple[object, ...], Discovery] = {}
    kernels: list[Kernel] = []
    left: list[Left] = []
    problems: list[tuple[str, Problem]] = []
    offered: list[Kernel] = []
    for target in (t for t in config.targets if not only or t.name in only):
        key = (target.kernels, target.arch, target.suites, target.mirror)
        if key not in discovered:
            discovered[key] = discover(target.kernels, arches=target.arch, cache_dir=cache,
                                       apt=target.apt_options())
            problems += [(target.kernels, p) for p in discovered[key].problems]
        selection = select_kernels(discovered[key].kernels,
                                   filters_for_target(target, by_target=True))
        kernels += selection.kept
        left += [Left(s.kernel.target, s.kernel.arch, s.kernel.host.uname_r, "*", s.reason)
                 for s in selection.skipped if s.rule != "target"]
        offered += [s.kernel for s in selection.skipped if s.rule != "target"]
    if not kernels:
        raise _nothing_matches(config, only, offered)
    return TargetKernels(tuple(kernels), tuple(left), tuple(problems))


def _nothing_matches(config: Config, only: Sequence[str], offered: list[Kernel]) -> InputError:
    """Say which filters kept nothing, and what the sources do offer."""
    targets = [t for t in config.targets if not only or t.name in only]
    asked = "; ".join(_describe(t) for t in targets)
    newest: dict[tuple[str, str, tuple[int, ...]], Kernel] = {}
    for kernel in offered:
        series = (release_numbers(kernel.host.uname_r) or (0,))[:2]
        group = (kernel.arch, kernel.flavor, series)
        if group not in newest or version_order(kernel) > version_order(newest[group]):
            newest[group] = kernel
    shown = sorted({k.host.uname_r for k in newest.values()})
    offers = ", ".join(shown[:_OFFERS_SHOWN]) + (" ..." if len(shown) > _OFFERS_SHOWN else "")
    return InputError(f"{config.path}: no kernel matches {asked}",
                      hint=(f"the sources offer (newest per series): {offers}; adjust the "
                            "target's suites, include or exclude")
                      if shown else "the sources list no kernel at all for these targets")


def _describe(target: Target) -> str:
    parts = [f"target {target.name!r} ({target.kernels}"]
    if target.suites:
        parts.append(f" suites {', '.join(target.suites)}")
    parts.append(f", {'/'.join(target.arch)}")
    if target.include:
        parts.append(f", include {target.include!r}")
    if target.exclude:
        parts.append(f", exclude {target.exclude!r}")
    return "".join(parts) + ")"
