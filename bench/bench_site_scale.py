"""The site at GitHub Pages scale: its size, and a rebuild after one fragment is merged.

    python -m bench.bench_site_scale [--probes 100000] [--workdir DIR] [--new 20]

A catalog of --probes probes is synthesized (bench/synth.py and the site bench's
decorations: source, CI job, attestation, a load test on every other probe, the build log
beside the probe). Then, each in its own process, timed with its CPU time and peak memory:

- full: `falco-probes site build --clean` into an empty work folder (every page rendered,
  every API file written, MkDocs over every page);
- one fragment: --new probes of the newest driver version for one target are merged into
  the catalog (`catalog merge`, as the nightly does), then `falco-probes site build` again
  on the same work folder: only the pages and API files whose inputs changed are
  rendered, MkDocs rebuilds only the pages whose files changed (--dirty).

Reported: both builds (wall, CPU, peak memory) and their ratio (goal < 0.25), the site's
size on disk by part (API, table pages, the rest) and what GitHub Pages sends for it
(gzip at level 6 of every text file, as Pages compresses them), the largest page and the
search index. GitHub Pages refuses a site over 1 GB; the goal at 400,000 probes is 500 MB.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench import synth
from bench.bench_site import COMPRESSED, _decorate, site_build
from builder.core.catalog import fragment_line, merge_into

ROOT = Path(__file__).resolve().parents[1]
GOALS = {"rebuild_ratio": 0.25, "site_bytes_400k": 500_000_000,
         "largest_page_bytes": 1_500_000, "search_index_bytes": 2_000_000}


def decorate(record: Any, n: int) -> Any:
    """The site bench's fields, and the build log beside the probe (as the stores publish
    it: its URL + .log)."""
    from dataclasses import replace

    decorated = _decorate(record, n)
    return replace(decorated, log=decorated.url + ".log")


def merge_one_fragment(catalog: Path, work: Path, new: int) -> str:
    """--new probes of the newest driver version for one target, merged: what one nightly
    fragment does to the catalog. Returns the catalog file it touched."""
    driver = synth.DRIVER_VERSIONS[0]
    picked = [k for k in synth.kernels() if k[0] == "ubuntu-generic"][:new] or \
        synth.kernels()[:new]
    records = [synth._record(driver, "x86_64", t, r + ".new", v, "new") for t, r, v in picked]
    fragment = work.parent / "fragment.jsonl"
    fragment.write_text("".join(json.dumps(fragment_line(decorate(r, n))) + "\n"
                                for n, r in enumerate(records)))
    report = merge_into(catalog, [fragment])
    assert report.added == len(records), report
    return f"{driver}/x86_64/{records[0].target}.yaml"


def sizes(site: Path) -> dict[str, Any]:
    """Bytes on disk by part, and what GitHub Pages sends (text gzipped)."""
    parts = {"api": 0, "tables": 0, "other": 0}
    wire = 0
    largest = (0, "")
    files = 0
    for path in site.rglob("*"):
        if not path.is_file():
            continue
        files += 1
        rel = path.relative_to(site).as_posix()
        data = path.read_bytes()
        part = "api" if rel.startswith("api/") else \
            "tables" if rel.startswith("drivers/") and rel.count("/") >= 3 else "other"
        parts[part] += len(data)
        wire += len(gzip.compress(data, 6)) if path.suffix in COMPRESSED else len(data)
        if path.suffix == ".html":
            largest = max(largest, (len(data), rel))
    index = site / "search" / "search_index.json"
    return {"total_bytes": sum(parts.values()), **{f"{k}_bytes": v for k, v in parts.items()},
            "wire_bytes": wire, "files": files, "largest_page_bytes": largest[0],
            "largest_page": largest[1],
            "search_index_bytes": index.stat().st_size if index.exists() else 0}


def run(probes: int, workdir: Path, new: int) -> dict[str, Any]:
    if not synth.KERNEL_LIST.exists():
        return {"skipped": f"{synth.KERNEL_LIST} is absent"}
    catalog, work, site = workdir / "catalog", workdir / "work", workdir / "site"
    for folder in (catalog, work, site):
        shutil.rmtree(folder, ignore_errors=True)
    files = synth.write_catalog(catalog, probes, decorate=decorate)
    print(f"site scale: {probes} probes in {files} catalog files; full build", file=sys.stderr)
    full = site_build(catalog, work, site, clean=True)
    size = sizes(site)
    touched = merge_one_fragment(catalog, work, new)
    print(f"site scale: {new} probes merged into {touched}; rebuild", file=sys.stderr)
    again = site_build(catalog, work, site, clean=False)
    return {"probes": probes, "catalog_files": files, "full": full, "one_fragment": again,
            "fragment": {"probes": new, "file": touched},
            "rebuild_ratio": round(again["seconds"] / full["seconds"], 3),
            "rebuild_cpu_ratio": round(again["cpu_seconds"] / full["cpu_seconds"], 3),
            "size": size, "goals": GOALS}


def report(figures: dict[str, Any]) -> str:
    if "skipped" in figures:
        return f"site scale skipped: {figures['skipped']}"
    full, again, size = figures["full"], figures["one_fragment"], figures["size"]
    mb = 1_000_000
    return "\n".join([
        f"site scale: {figures['probes']:,} probes, {figures['catalog_files']} catalog files",
        f"  full build: {full['seconds']} s (CPU {full['cpu_seconds']} s, peak "
        f"{full['max_rss_mb']} MB)",
        f"  after one fragment ({figures['fragment']['probes']} probes into "
        f"{figures['fragment']['file']}): {again['seconds']} s (CPU {again['cpu_seconds']} s, "
        f"peak {again['max_rss_mb']} MB); ratio {figures['rebuild_ratio']} wall, "
        f"{figures['rebuild_cpu_ratio']} CPU (goal < {GOALS['rebuild_ratio']})",
        f"  site: {size['total_bytes'] / mb:.1f} MB on disk in {size['files']:,} files (API "
        f"{size['api_bytes'] / mb:.1f} MB, table pages {size['tables_bytes'] / mb:.1f} MB, "
        f"the rest {size['other_bytes'] / mb:.1f} MB); sent gzipped "
        f"{size['wire_bytes'] / mb:.1f} MB",
        f"  largest page {size['largest_page_bytes'] / mb:.2f} MB ({size['largest_page']}); "
        f"search index {size['search_index_bytes'] / mb:.2f} MB",
    ])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_site_scale",
                                     description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--probes", type=int, default=100_000)
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keep the catalog and the site here (default: a temporary folder)")
    parser.add_argument("--new", type=int, default=20, help="probes in the merged fragment")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if args.workdir is None:
        with tempfile.TemporaryDirectory(prefix="falco-probes-site-scale-") as tmp:
            figures = run(args.probes, Path(tmp), args.new)
    else:
        args.workdir.mkdir(parents=True, exist_ok=True)
        figures = run(args.probes, args.workdir, args.new)
    print(json.dumps(figures, indent=2) if args.json else report(figures))
    return figures


if __name__ == "__main__":
    main()
