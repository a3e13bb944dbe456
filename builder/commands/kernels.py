"""`falco-probes kernels`: the kernels a source offers, after the filters.

Results on stdout (one kernel per line, or one JSON array with --json), a
summary on stderr: how many were listed, how many skipped and why, and the
entries left out as junk with their problems. Exit 0 when something is
listed, 1 when the filters leave nothing, 2 on bad input.
"""

from __future__ import annotations

import argparse
import re
import urllib.parse
from collections import Counter
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from builder.commands.common import add_apt_options
from builder.core.config import DEFAULT_MIN_KERNEL, AptOptions, load_config
from builder.core.errors import EXIT_NEGATIVE, EXIT_OK, InputError, Problem, ProblemsError
from builder.core.paths import apt_cache
from builder.core.records import ARCH_ALIASES, Kernel
from builder.kernels import Discovery, discover, parse_source
from builder.kernels.select import (
    KernelFilters,
    Selection,
    Skipped,
    filters_for_target,
    select_kernels,
)
from builder.ui import emit, emit_json, info

_SHOWN_PROBLEMS = 20

EXAMPLES = """\
examples:
  falco-probes kernels --source apt
  falco-probes kernels --source apt --sources my.sources --keyring archive.gpg --json
  falco-probes kernels --source kernel-crawler:list.json --target ubuntu --latest 3
  falco-probes kernels --source 'kernel-crawler:https://example.org/{arch}/list.json' \\
      --arch x86_64 --arch aarch64
  falco-probes kernels --config probes.yaml --target debian --show-skipped
"""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "kernels", help="list the kernels a source offers (apt, kernel-crawler)",
        description="List the kernels a source offers, each with the host facts the loader "
                    "reads and its header packages, after the filters.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--source", metavar="SPEC",
                       help="apt | apt:SOURCES_FILE | kernel-crawler:PATH_OR_URL "
                            "({arch} in the path reads one list per --arch)")
    where.add_argument("--config", type=Path, metavar="PROBES_YAML",
                       help="use the source and filters of a probes.yaml target (see --target)")
    parser.add_argument("--target", metavar="T",
                        help="with --config: the target to list; otherwise keep only kernels "
                             "of this target or family (ubuntu keeps ubuntu-aws)")
    apt = parser.add_argument_group("apt sources")
    add_apt_options(apt, "this machine's sources (or the target's suites with --config)")
    apt.add_argument("--cache", type=Path, metavar="DIR",
                     help="cache root; the apt state goes to DIR/apt (default: "
                          "$XDG_CACHE_HOME/falco-probes)")
    filters = parser.add_argument_group("filters (each skipped kernel keeps its reason)")
    filters.add_argument("--arch", action="append", metavar="A",
                         help="x86_64 or aarch64 (repeatable); also the list's arch for "
                              "kernel-crawler and the archive's for apt (default x86_64)")
    filters.add_argument("--min-kernel", action="append", metavar="[ARCH=]VER",
                         help="oldest kernel to keep (default 4.14 on x86_64, 4.17 on aarch64; "
                              "0.0 keeps all)")
    filters.add_argument("--release-pattern", metavar="REGEX",
                         help="keep only kernels whose uname -r matches")
    filters.add_argument("--exclude", metavar="REGEX", help="skip kernels whose uname -r matches")
    filters.add_argument("--latest", type=int, metavar="N",
                         help="keep the N newest kernels per target, arch, flavor and series "
                              "(6.1, 6.12 ...)")
    out = parser.add_argument_group("output")
    out.add_argument("--show-skipped", action="store_true",
                     help="also show every skipped kernel and every problem")
    out.add_argument("--json", action="store_true",
                     help="one JSON array with every field on stdout")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    arches = tuple(_arch(a) for a in args.arch or ())
    spec, filters, apt = _spec_and_filters(args, arches)
    discovery = discover(spec, arches=arches or filters.arches, cache_dir=apt_cache(args.cache),
                         apt=apt)
    if not discovery.kernels and discovery.problems:
        raise ProblemsError(list(discovery.problems),
                            hint=f"{spec}: no usable kernel in it; see the problems above")
    selection = select_kernels(discovery.kernels, filters)
    if args.json:
        emit_json(_json_rows(selection, args.show_skipped))
    else:
        _print_table(selection.kept)
    _summary(spec, discovery, selection, args.show_skipped)
    return EXIT_OK if selection.kept else EXIT_NEGATIVE


# --- inputs --------------------------------------------------------------------


def _arch(value: str) -> str:
    if value not in ARCH_ALIASES:
        raise InputError(f"--arch {value!r} is not an architecture",
                         hint="use x86_64 or aarch64 (amd64 and arm64 are accepted)")
    return ARCH_ALIASES[value]


def _min_kernel(values: list[str] | None, base: dict[str, str]) -> dict[str, str]:
    out = dict(base)
    for value in values or ():
        arch, sep, version = value.rpartition("=")
        if not re.fullmatch(r"\d+\.\d+(\.\d+)?", version):
            raise InputError(f"--min-kernel {value!r}: give a version like 4.14 "
                             "or ARCH=VERSION like aarch64=5.4")
        for name in ([_arch(arch)] if sep else list(out) or list(DEFAULT_MIN_KERNEL)):
            out[name] = version
    return out


def _spec_and_filters(args: argparse.Namespace, arches: tuple[str, ...],
                      ) -> tuple[str, KernelFilters, AptOptions]:
    apt = AptOptions()
    if args.config is not None:
        spec, base, apt = _from_config(args.config, args.target)
    else:
        spec = args.source
        parse_source(spec)
        base = KernelFilters(targets=(args.target,) if args.target else ())
    if args.mirror and not args.suite:
        raise InputError("--mirror needs --suite", hint="name the suites to read from it")
    apt = AptOptions(args.sources, args.keyring, tuple(args.suite or ()) or apt.suites,
                     args.mirror or apt.mirror)
    overrides: dict[str, Any] = {"min_kernel": _min_kernel(args.min_kernel,
                                                           dict(base.min_kernel))}
    if arches:
        overrides["arches"] = arches
    if args.release_pattern is not None:
        overrides["include"] = args.release_pattern
    if args.exclude is not None:
        overrides["exclude"] = args.exclude
    if args.latest is not None:
        overrides["latest"] = args.latest
    return spec, replace(base, **overrides), apt


def _from_config(path: Path, name: str | None) -> tuple[str, KernelFilters, AptOptions]:
    config = load_config(path)
    names = ", ".join(t.name for t in config.targets) or "none"
    if not name:
        raise InputError("--config needs --target NAME", hint=f"targets in {path}: {names}")
    target = config.target(name)
    if target is None:
        raise InputError(f"{path}: no target named {name!r}", hint=f"targets: {names}")
    kind, where = parse_source(target.kernels)
    spec = target.kernels
    if where and "://" not in where and not Path(where).is_absolute():
        # Paths in probes.yaml are relative to the file, like the rest of it.
        spec = f"{kind}:{path.parent / where}"
    # A kernel-crawler list holds every distro, so keep the target's own kernels;
    # an apt archive is the target's by definition, whatever the target is called.
    return (spec, filters_for_target(target, by_target=kind == "kernel-crawler"),
            target.apt_options())


# --- outputs -------------------------------------------------------------------


def _version(kernel: Kernel) -> str:
    return kernel.package_version or kernel.host.uname_v.split(" ", 1)[0]


def _print_table(kernels: tuple[Kernel, ...]) -> None:
    rows = [(k.target, k.arch, k.host.uname_r, _version(k), f"{len(k.headers)} headers")
            for k in kernels]
    widths = [max((len(row[i]) for row in rows), default=0) for i in range(4)]
    for row in rows:
        emit("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
             + "  " + row[4])


def kernel_json(kernel: Kernel, skipped: str | None = None) -> dict[str, Any]:
    data = asdict(kernel)
    data["headers"] = [asdict(h) for h in kernel.headers]
    data.update(arch=kernel.arch, key=kernel.key, skipped=skipped)
    return data


def _json_rows(selection: Selection, show_skipped: bool) -> list[dict[str, Any]]:
    rows = [kernel_json(k) for k in selection.kept]
    if show_skipped:
        rows += [kernel_json(s.kernel, s.reason) for s in selection.skipped]
    return rows


def _summary(spec: str, discovery: Discovery, selection: Selection, show_all: bool) -> None:
    rules = Counter(s.rule for s in selection.skipped)
    by_rule = ", ".join(f"{n} by {rule}" for rule, n in sorted(rules.items()))
    info(f"{_label(spec)}: listed {len(selection.kept)} kernels, skipped "
         f"{len(selection.skipped)}{f' ({by_rule})' if by_rule else ''}, "
         f"{len(discovery.problems)} junk entries left out")
    if show_all:
        for skipped in selection.skipped:
            info(_skipped_line(skipped))
    _problems("junk", discovery.problems, show_all)
    if show_all or len(discovery.notes) == 1:
        _problems("note", discovery.notes, True)
    elif discovery.notes:
        info(f"note: {len(discovery.notes)} kernels are listed with a caveat, such as: "
             f"{discovery.notes[0]} (--show-skipped shows all)")


def _skipped_line(skipped: Skipped) -> str:
    kernel = skipped.kernel
    return f"skipped: {kernel.target} {kernel.arch} {kernel.host.uname_r}: {skipped.reason}"


def _problems(kind: str, problems: tuple[Problem, ...], show_all: bool) -> None:
    shown = problems if show_all else problems[:_SHOWN_PROBLEMS]
    for problem in shown:
        info(f"{kind}: {problem}")
    if len(shown) < len(problems):
        info(f"{kind}: ... and {len(problems) - len(shown)} more (--show-skipped shows all)")


def _label(spec: str) -> str:
    """The source as given, minus any credentials in a URL."""
    parts = urllib.parse.urlsplit(spec.partition(":")[2])
    if parts.password or parts.username:
        return spec.replace(parts.netloc, parts.hostname or "", 1)
    return spec
