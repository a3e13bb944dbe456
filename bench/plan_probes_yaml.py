"""The repository's own probes.yaml, planned in full against the real archive (no builds).

    python -m bench.plan_probes_yaml [--config probes.yaml] [--crawler FILE] [--shards 32]

Every Debian suite probes.yaml lists, both arches, every driver version, through apt
(the mirror apt on this machine is configured with); the kernel-crawler targets read
`--crawler` (a list per arch, `{arch}` in the path) instead of their URLs, which this
machine cannot reach, or are left out. Checks that every planned path is unique (twin
kernels accounted for) and prints the counts as JSON on stdout: kernels, compiles,
distinct paths, twin groups and how many kernels share each, shards. The figures in
docs/plan-probes-yaml.md come from this command.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from builder.core.catalog import Catalog
from builder.core.config import Config, load_config
from builder.core.paths import apt_cache
from builder.plan import Plan, TargetPlan, plan_targets, require_unique_paths


def crawler_targets(config: Config, crawler: str | None) -> Config:
    """probes.yaml with its kernel-crawler targets reading `crawler` (or left out)."""
    targets = []
    for target in config.targets:
        if target.kernels.startswith("kernel-crawler:"):
            if crawler is None:
                continue
            target = replace(target, kernels=f"kernel-crawler:{crawler}")
        targets.append(target)
    return replace(config, targets=tuple(targets))


def figures(planned: TargetPlan, seconds: float) -> dict[str, Any]:
    plan: Plan = planned.plan
    require_unique_paths(plan.jobs, "the plan")   # raises if two results share a path
    sharing: dict[tuple[str, str, str], int] = collections.Counter()
    for job in plan.jobs:
        for probe in job.probes:
            sharing[(probe.driver_version, job.kernel.arch, probe.name.file)] += 1
    per_target: dict[str, dict[str, int]] = collections.defaultdict(collections.Counter)
    for job in plan.jobs:
        per_target[job.kernel.target][job.kernel.arch] += len(job.probes)
    roots = collections.Counter(p.root for job in plan.jobs for p in job.probes if p.root)
    return {
        "kernels": len(plan.jobs),
        "compiles": plan.compiles,
        "paths": len({p.store_path for job in plan.jobs for p in job.probes}),
        "file_names": len(sharing),
        "twin_groups": sum(1 for n in sharing.values() if n > 1),
        "kernels_per_twin_group": dict(sorted(collections.Counter(
            n for n in sharing.values() if n > 1).items())),
        "twin_roots": dict(sorted(roots.items())),
        "compiles_per_target": {t: dict(sorted(a.items())) for t, a in sorted(per_target.items())},
        "left_out": len(plan.left_out),
        "shards": len([s for s in plan.shards if s]),
        "largest_shard": max((sum(plan.jobs[i].weight for i in s) for s in plan.shards),
                             default=0),
        "entries_left_out_of_sources": len(planned.found.problems),
        "seconds": round(seconds, 1),
    }


def main(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=Path("probes.yaml"))
    parser.add_argument("--crawler", default=None, metavar="FILE",
                        help="kernel-crawler list(s) for the crawler targets ({arch} in it)")
    parser.add_argument("--shards", type=int, default=32, help="as the nightly plans (32)")
    parser.add_argument("--cache", type=Path, default=None)
    args = parser.parse_args(argv)
    config = crawler_targets(load_config(args.config), args.crawler)
    started = time.perf_counter()
    planned = plan_targets(config, Catalog(Path("-")), dt.datetime.now(dt.UTC),
                           cache=apt_cache(args.cache), shards=args.shards)
    return figures(planned, time.perf_counter() - started)


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:]), indent=2))
