"""`falco-probes build`: compile and check probes, from a plan file or for chosen kernels."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
from pathlib import Path

from builder.commands.common import (
    add_catalog_option,
    add_config_option,
    catalog_dir,
    config_from,
    folder,
    int_in,
    seconds,
    show_problems,
)
from builder.compile.stage import BuildOptions, build
from builder.core import limits
from builder.core.catalog import Catalog, load_catalog
from builder.core.config import Config
from builder.core.errors import EXIT_NEGATIVE, EXIT_OK, InputError
from builder.core.files import read_text
from builder.core.jsonio import parse_json
from builder.core.limits import MAX_JOBS
from builder.core.paths import apt_cache, cache_root
from builder.core.report import BuildResult
from builder.core.schema import printable
from builder.plan import MAX_SHARDS, Job, plan_from_dict, plan_targets, shard_jobs
from builder.publish.stage import ci_log_url
from builder.ui import DownloadMeter, emit_json, info, progress

DESCRIPTION = """\
Compile Falco eBPF probes with kbuild (clang, llc), check each one (ELF, EM_BPF, program
sections), name it as every supported loader requests it, and write under --out:
  report.jsonl                                     one result per probe, built or failed
  probes/<driver_version>/<arch>/<uname -r>/<file>  the checked probes, by the kernel each
                                                   is for (twin kernels share a file name)
  logs/<driver_version>/<arch>/<uname -r>/<file>.log  the full compiler log of each
A result is never overwritten: a plan that places two results at one path, or a folder
that already holds one, is refused.
Header packages are downloaded once into the cache and extracted once per kernel.

Either --plan FILE [--shard N] (from `falco-probes plan`), or pick kernels of a
probes.yaml target with --target and --release.

exit codes: 0 the run finished (failed probes are in the report), 1 with --strict when a
probe failed or when nothing matched, 2 bad input, 5 the toolchain is missing.
"""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("build", help="compile, check and name probes",
                            description=DESCRIPTION,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plan", type=Path, metavar="FILE", help="a plan from `plan --out`")
    parser.add_argument("--shard", type=int_in(0, MAX_SHARDS - 1), metavar="N",
                        help="only shard N of the plan")
    parser.add_argument("--target", action="append", default=[], metavar="NAME",
                        help="without --plan: kernels of this probes.yaml target (repeatable)")
    parser.add_argument("--release", metavar="REGEX",
                        help="without --plan: only kernels whose `uname -r` matches REGEX")
    parser.add_argument("--driver-version", action="append", default=[], metavar="D",
                        help="without --plan: only these driver versions (repeatable)")
    parser.add_argument("--limit", type=int_in(0, 10 ** 6), default=0, metavar="N",
                        help="without --plan: at most N kernels")
    parser.add_argument("--rebuild", action="store_true",
                        help="without --plan: build even what the catalog already has")
    parser.add_argument("--out", type=folder, required=True, metavar="DIR",
                        help="output folder (report.jsonl, probes/, logs/)")
    parser.add_argument("--jobs", type=int_in(1, MAX_JOBS), default=None, metavar="N",
                        help="kernels built in parallel (default: build.jobs in probes.yaml)")
    parser.add_argument("--timeout", type=seconds, default=None, metavar="SECONDS",
                        help="per compile (default: build.timeout in probes.yaml)")
    parser.add_argument("--cache", type=Path, default=None, metavar="DIR",
                        help="downloads, sysroots and driver sources "
                             "(default: $XDG_CACHE_HOME/falco-probes)")
    parser.add_argument("--strict", action="store_true", help="exit 1 if any probe failed")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--job-id", default=os.environ.get("FALCO_PROBES_JOB_ID", ""),
                        metavar="ID",
                        help="this CI job's check-run id: each result links the job's page "
                             "(default: $FALCO_PROBES_JOB_ID; Actions: ${{ job.check_run_id }}; "
                             "without it, the run's page; outside Actions, none)")
    add_config_option(parser)
    add_catalog_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = config_from(args)
    assert config is not None
    if args.plan is not None:
        if args.target or args.release or args.driver_version or args.limit:
            raise InputError("--plan already says what to build; drop --target, --release, "
                             "--driver-version and --limit")
        jobs = shard_jobs(plan_from_dict(_read_plan(args.plan), str(args.plan)), args.shard)
    else:
        if args.shard is not None:
            raise InputError("--shard needs --plan")
        jobs = _pick(args, config)
    options = BuildOptions(out=args.out, cache=cache_root(args.cache),
                           jobs=args.jobs or config.build.jobs,
                           timeout=args.timeout or config.build.timeout,
                           base_dir=Path(config.path).resolve().parent,
                           job=ci_log_url(dict(os.environ), str(args.job_id or "")))
    info(f"building {sum(j.weight for j in jobs)} probe(s) for {len(jobs)} kernel(s) "
         f"into {args.out}")
    with progress() as bar:
        task = bar.add_task("compiling probes", total=sum(job.weight for job in jobs))

        def on_result(result: BuildResult) -> None:
            bar.advance(task)
            state = "ok" if result.ok else f"failed at {result.step}: {result.reason[:80]}"
            bar.console.print(printable(f"{result.driver_version} {result.file}: {state}"),
                              markup=False, highlight=False)

        summary = build(jobs, config, options, on_result=on_result, meter=DownloadMeter(bar))
    steps = ", ".join(f"{n} at {s}" for s, n in sorted(summary.by_step.items()))
    info(f"built {summary.built}, failed {summary.failed}" + (f" ({steps})" if steps else "")
         + f"; report: {summary.report}")
    if args.json:
        emit_json({"built": summary.built, "failed": summary.failed,
                   "failed_by_step": summary.by_step, "report": str(summary.report)})
    if not jobs:
        return EXIT_NEGATIVE
    return EXIT_NEGATIVE if args.strict and summary.failed else EXIT_OK


def _release_pattern(text: str | None) -> re.Pattern[str] | None:
    if not text:
        return None
    try:
        return re.compile(text)
    except re.error as exc:
        raise InputError(f"--release {text!r} is not a regular expression: {exc}") from exc


def _read_plan(path: Path) -> dict[str, object]:
    doc = parse_json(read_text(path, limits.PLAN), str(path))
    if not isinstance(doc, dict):
        raise InputError(f"{path}: not a falco-probes plan")
    return doc


def _pick(args: argparse.Namespace, config: Config) -> tuple[Job, ...]:
    if not args.target:
        raise InputError("say what to build: --plan FILE, or --target NAME [--release REGEX]")
    catalog = Catalog(Path("-")) if args.rebuild else load_catalog(catalog_dir(args))
    planned = plan_targets(config, catalog, dt.datetime.now(dt.UTC),
                           cache=apt_cache(args.cache), targets=args.target,
                           driver_versions=args.driver_version or None,
                           release=_release_pattern(args.release), limit=args.limit)
    show_problems(planned.found)
    for left in planned.plan.left_out:
        info(f"not building {left.driver_version} {left.target} {left.kernel_release}: "
             f"{left.reason}")
    jobs = planned.plan.jobs
    if not jobs:
        info("nothing to build: no kernel matched, or the catalog has every probe "
             "(--rebuild to build anyway)")
    return jobs
