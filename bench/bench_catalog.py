"""Catalog at scale: load + validate, check, and merge, against a bare libyaml parse.

    python -m bench.bench_catalog [--probes 100000] [--workdir DIR]

Each stage runs in its own Python process so peak memory (max RSS) is per stage;
times are best of --repeat runs; the figures that matter are the ratios, measured
in the same run on the same machine.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import synth

STAGES = ("bare", "load", "check", "merge_one", "merge_all")


def stage(name: str, root: Path, fragments: Path) -> dict[str, Any]:
    """Run one stage in this process; return seconds and what it saw."""
    import yaml

    from builder.core.catalog import catalog_files, check_catalog, load_catalog, merge_into

    start = time.perf_counter()
    if name == "bare":
        count = 0
        for path in catalog_files(root):
            count += len(yaml.load(path.read_text(), Loader=yaml.CSafeLoader)["probes"])
    elif name == "load":
        count = sum(1 for _ in load_catalog(root).probes())
    elif name == "check":
        count = len(check_catalog(root))
    else:
        copy = root.parent / f"{root.name}-{name}"
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(root, copy)
        start = time.perf_counter()
        report = merge_into(copy, [fragments / f"{name}.jsonl"])
        count = report.added
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "count": count, "max_rss_mb": peak_mb}


def write_fragments(folder: Path) -> None:
    """1,000 new probes: all for the newest driver version, or spread over all twenty."""
    from builder.core.catalog import fragment_line

    folder.mkdir(parents=True, exist_ok=True)
    kernels = synth.kernels()
    one = [synth._record(synth.DRIVER_VERSIONS[0], "x86_64", t, r + ".new", v, "new")
           for t, r, v in kernels[:1000]]
    spread = [synth._record(d, "x86_64", t, r + ".new", v, "new")
              for d in synth.DRIVER_VERSIONS for t, r, v in kernels[:50]]
    for name, records in (("merge_one", one), ("merge_all", spread)):
        (folder / f"{name}.jsonl").write_text(
            "".join(json.dumps(fragment_line(r)) + "\n" for r in records))


def run_stage(name: str, root: Path, fragments: Path, repeat: int) -> dict[str, Any]:
    best: dict[str, Any] = {}
    for _ in range(repeat):
        out = subprocess.run([sys.executable, "-m", "bench.bench_catalog", "--stage", name,
                              "--workdir", str(root.parent)], check=True, capture_output=True,
                             text=True)
        result = json.loads(out.stdout)
        if not best or result["seconds"] < best["seconds"]:
            best = result
    return best


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--probes", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--stage", choices=STAGES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.stage:
        root = args.workdir / "catalog"
        print(json.dumps(stage(args.stage, root, args.workdir / "fragments")))
        return {}
    if not synth.KERNEL_LIST.exists():
        print(f"skipped: {synth.KERNEL_LIST} is absent", file=sys.stderr)
        return {"skipped": True}
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-catalog-"))
    root = workdir / "catalog"
    if not root.exists():
        files = synth.write_catalog(root, args.probes)
        print(f"synthesized {args.probes} probes in {files} files under {root}", file=sys.stderr)
    write_fragments(workdir / "fragments")
    size_mb = sum(p.stat().st_size for p in root.rglob("*.yaml")) / 1e6
    results = {name: run_stage(name, root, workdir / "fragments", args.repeat)
               for name in STAGES}
    bare = results["bare"]["seconds"]
    load = results["load"]["seconds"]
    figures = {
        "probes": args.probes, "catalog_mb": round(size_mb, 1),
        "bare_libyaml_s": round(bare, 2), "load_validate_s": round(load, 2),
        "check_with_lines_s": round(results["check"]["seconds"], 2),
        "merge_1000_one_driver_s": round(results["merge_one"]["seconds"], 2),
        "merge_1000_all_drivers_s": round(results["merge_all"]["seconds"], 2),
        "ratio_load_vs_bare": round(load / bare, 2),
        "ratio_check_vs_bare": round(results["check"]["seconds"] / bare, 2),
        "ratio_merge_one_vs_load": round(results["merge_one"]["seconds"] / load, 2),
        "ratio_merge_all_vs_load": round(results["merge_all"]["seconds"] / load, 2),
        "peak_rss_mb": {k: round(v["max_rss_mb"]) for k, v in results.items()},
    }
    print(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    main()
