"""Kernel discovery: the kernels we can build for, from kernel-crawler lists or apt.

Takes: a kernel source (and probes.yaml's targets with their filters). Gives: Kernel
records (the host facts a loader reads, the header packages), and for every kernel
left out, why (`targets.kernels_for_targets`, used by plan, build and demo).

A source is named as in probes.yaml: `apt` (the archive apt on this machine
uses), `apt:<sources file>`, or `kernel-crawler:<path or URL>` (a `{arch}` in
the path or URL reads one list per architecture). `discover` reads one and
returns its kernels plus the entries it had to leave out, each with a
located problem; `select.select_kernels` then keeps or skips each kernel
with a reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from builder.core.config import AptOptions
from builder.core.errors import InputError, Problem
from builder.core.paths import apt_cache
from builder.core.records import Kernel
from builder.kernels.crawler import SOURCE_PREFIX, load_crawler
from builder.shared.apt import AptArchive

SOURCE_HINT = "use apt, apt:<sources file> or kernel-crawler:<path or URL>"
DEFAULT_APT = AptOptions()  # the archive apt on this machine is configured with


@dataclass(frozen=True, slots=True)
class Discovery:
    kernels: tuple[Kernel, ...]
    problems: tuple[Problem, ...] = ()   # entries left out (junk, unresolvable packages)
    notes: tuple[Problem, ...] = ()      # kernels listed with a caveat
    entries: int = 0                     # entries read, kernels or not


def parse_source(spec: str) -> tuple[str, str]:
    """`apt` -> (apt, ""), `apt:FILE` -> (apt, FILE), `kernel-crawler:X` -> (kernel-crawler, X)."""
    if spec == "apt":
        return "apt", ""
    kind, sep, rest = spec.partition(":")
    if sep and kind in ("apt", SOURCE_PREFIX.rstrip(":")) and rest:
        return kind, rest
    raise InputError(f"{spec!r} is not a kernel source", hint=SOURCE_HINT)


def discover(spec: str, *, arches: Sequence[str] = (), cache_dir: Path | None = None,
             apt: AptOptions = DEFAULT_APT) -> Discovery:
    kind, where = parse_source(spec)
    if kind == "apt":
        if where and apt.sources:
            raise InputError(f"{spec!r} names a sources file and --sources gives another",
                             hint="give the sources file once")
        if where:
            apt = AptOptions(Path(where), apt.keyring, apt.suites, apt.mirror)
        if apt.sources and (apt.suites or apt.mirror):
            raise InputError("a sources file and suites/mirror both say which archive to read",
                             hint="give either a sources file or suites (and a mirror)")
        return _from_apt(arches, cache_dir or apt_cache(), apt)
    if apt != DEFAULT_APT:
        raise InputError("--sources, --keyring, suites and mirror are for apt sources, not "
                         "kernel-crawler lists")
    return _from_crawler(where, arches)


def _from_apt(arches: Sequence[str], cache_dir: Path, apt: AptOptions) -> Discovery:
    kernels: list[Kernel] = []
    problems: list[Problem] = []
    for arch in arches or ("x86_64",):
        archive = AptArchive(cache_dir, apt.sources, apt.keyring, arch, apt.suites, apt.mirror)
        archive.update()
        kernels += archive.kernels()
        problems += archive.problems
    return Discovery(tuple(kernels), tuple(problems), (), len(kernels) + len(problems))


def _from_crawler(location: str, arches: Sequence[str]) -> Discovery:
    if "{arch}" in location:
        lists = [load_crawler(location.replace("{arch}", arch), arch)
                 for arch in arches or ("x86_64",)]
    elif len(arches) > 1:
        raise InputError(f"{location}: one kernel-crawler list holds one architecture, "
                         f"but {', '.join(arches)} were asked for",
                         hint="put {arch} in the path or URL to read one list per arch")
    else:
        lists = [load_crawler(location, arches[0] if arches else None)]
    return Discovery(tuple(k for one in lists for k in one.kernels),
                     tuple(p for one in lists for p in one.problems),
                     tuple(n for one in lists for n in one.notes),
                     sum(one.entries for one in lists))
