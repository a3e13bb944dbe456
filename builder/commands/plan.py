"""`falco-probes plan`: what to build next, grouped by kernel, sharded for a CI matrix."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path
from typing import Any

from builder.commands.common import (
    add_catalog_option,
    add_config_option,
    catalog_dir,
    config_from,
    int_in,
    show_problems,
)
from builder.core.catalog import load_catalog
from builder.core.errors import EXIT_NEGATIVE, EXIT_OK, InputError
from builder.core.files import atomic_write
from builder.core.paths import apt_cache
from builder.core.records import Left
from builder.plan import MAX_SHARDS, TargetPlan, matrix, plan_targets, plan_to_dict
from builder.ui import emit_json, info

DESCRIPTION = """\
Desired probes (probes.yaml: driver versions x targets x their kernels) minus what the
catalog holds, minus failures still backing off. Jobs are grouped by kernel: its headers
are fetched once and every missing driver version is compiled against them.

exit codes: 0 there is work, 1 nothing to build, 2 bad input.
"""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("plan", help="compute what to build (and shard it for CI)",
                            description=DESCRIPTION,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_option(parser)
    add_catalog_option(parser)
    parser.add_argument("--target", action="append", default=[], metavar="NAME",
                        help="only these probes.yaml targets (repeatable)")
    parser.add_argument("--driver-version", action="append", default=[], metavar="D",
                        help="only these driver versions (repeatable)")
    parser.add_argument("--shards", type=int_in(1, MAX_SHARDS), default=1, metavar="N",
                        help="split the jobs over N CI legs (1 to 256; default 1)")
    parser.add_argument("--limit", type=int_in(0, 10 ** 6), default=0, metavar="N",
                        help="at most N kernels (the first N in plan order; 0 = all)")
    parser.add_argument("--out", type=Path, default=None, metavar="FILE",
                        help="write the plan (what `build --plan` reads) to FILE")
    parser.add_argument("--matrix-out", type=Path, default=None, metavar="FILE",
                        help="write the GitHub Actions matrix JSON to FILE")
    parser.add_argument("--cache", type=Path, default=None, metavar="DIR",
                        help="cache root; apt indices go to DIR/apt (default: "
                             "$XDG_CACHE_HOME/falco-probes)")
    parser.add_argument("--now", default=None, metavar="TIME",
                        help="pretend it is TIME (UTC, YYYY-MM-DDTHH:MM:SSZ) for retry backoff; "
                             "makes a plan reproducible")
    parser.add_argument("--json", action="store_true",
                        help="print the whole plan as JSON on stdout")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = config_from(args)
    assert config is not None
    unknown = sorted(set(args.driver_version) - {d.version for d in config.driver_versions})
    if unknown:
        raise InputError(f"driver version {unknown[0]!r} is not in {config.path}",
                         hint="list it under driver_versions first")
    planned = plan_targets(config, load_catalog(catalog_dir(args)), _now(args.now),
                           cache=apt_cache(args.cache), targets=args.target,
                           driver_versions=args.driver_version or None, limit=args.limit,
                           shards=args.shards)
    doc = write_plan(planned, args.out)
    if args.matrix_out is not None:
        atomic_write(args.matrix_out, json.dumps(matrix(planned.plan), sort_keys=True) + "\n")
    if args.json:
        emit_json(doc)
    return EXIT_OK if planned.plan.jobs else EXIT_NEGATIVE


def write_plan(planned: TargetPlan, out: Path | None) -> dict[str, Any]:
    """Show what the plan holds (and why things were left out) and write it to `out`,
    the file `build --plan` reads; the plan's JSON document. Used by `demo` too."""
    show_problems(planned.found)
    doc = plan_to_dict(planned.plan)
    if out is not None:
        atomic_write(out, json.dumps(doc, indent=1, sort_keys=True) + "\n")
    summary = doc["summary"]
    info(f"plan: {summary['kernels']} kernels, {summary['compiles']} compiles to "
         f"{summary['paths']} distinct paths in {summary['shards']} shard(s); "
         f"{summary['left_out']} left out" + (f"; written to {out}" if out else ""))
    if summary["twin_groups"]:
        info(f"  {summary['twin_groups']} file(s) are requested by two or more kernels (twin "
             "kernels): each gets its own file, one at the loader's default path, the others "
             "under twins/<root>/ (docs/twins.md)")
    for reason, count in _reasons(planned.plan.left_out).items():
        info(f"  left out {count}x: {reason}")
    return doc


def _now(text: str | None) -> dt.datetime:
    if text is None:
        return dt.datetime.now(dt.UTC).replace(microsecond=0)
    try:
        return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    except ValueError as exc:
        raise InputError(f"--now {text!r} is not a UTC time like 2026-11-25T03:00:00Z") from exc


def _reasons(left: tuple[Left, ...]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in left:
        generic = item.reason.replace(item.kernel_release, "<kernel>").split(";")[0]
        counts[generic] = counts.get(generic, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1])[:8])
