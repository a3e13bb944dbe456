"""The site at scale: our build against a naive one, sizes, and find-my-probe latency.

    python -m bench.bench_site [--probes 100000] [--workdir DIR] [--no-naive] [--no-browser]

A catalog of --probes probes is synthesized (bench/synth.py, from the real 2022
kernel list; skipped with a message when the list is absent). Then, each in its
own process, in the same run:

- ours: `mkdocs build --strict` with the repository's mkdocs.yml and the
  falco-probes plugin (tables rendered by Jinja, excluded from search; coverage
  pages, charts and the JSON API on top);
- naive: the same catalog, the same table pages with the same rows and the same
  nav, but written as Markdown tables and rendered by MkDocs' Markdown (and
  indexed by search), with this file as the MkDocs hooks module (the `on_*`
  functions below). Both builds read the catalog inside the build.

Reported: build times and their ratio (goal: ours <= 0.35 x naive), total site size,
search index size (goal < 2 MB), largest HTML page (goal < 1.5 MB), and, in
headless Chromium, the time from typing a kernel release into find-my-probe to the
answer being in the page, and to the frame that draws it (goal < 50 ms), for
lookups whose shard is not cached yet (cold) and is (warm).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
GOALS = {"ratio": 0.35, "search_index_bytes": 2_000_000, "largest_page_bytes": 1_500_000,
         "find_ms": 50.0}


# --- the naive build: MkDocs hooks (mkdocs.yml `hooks: [bench/bench_site.py]`) ------------

def on_files(files: Any, config: Any) -> Any:
    """Naive: the same table pages, as Markdown tables, searchable, through MkDocs."""
    from mkdocs.structure.files import File, InclusionLevel

    from builder.core.catalog import load_catalog
    from builder.core.versions import BUILTIN_RELEASES
    from builder.site import layout
    from builder.site.model import build_site, table_pages

    model = build_site(load_catalog(Path(os.environ["FALCO_PROBES_CATALOG"])),
                       BUILTIN_RELEASES)
    fixed = {layout.HOME: "# Falco eBPF probes\n", layout.DRIVERS: "# Driver versions\n",
             layout.TARGETS: "# Targets\n", layout.FAILURES: "# Failed builds\n"}
    for src_uri, text in fixed.items():
        files.append(File.generated(config, src_uri, content=text))
    for page in table_pages(model):
        lines = [f"# {page.target} probes for driver {page.driver_version}", "",
                 "| Kernel release | Kernel version | Arch | File | sha256 | Size | Built | Log "
                 "| Source |", "|---|---|---|---|---|---|---|---|---|"]
        for _, rows in page.groups:
            lines += [_naive_row(r) for r in rows]
        files.append(File.generated(config, layout.table_page(page.driver_version, page.target),
                                    content="\n".join(lines) + "\n",
                                    inclusion=InclusionLevel.NOT_IN_NAV))
    return files


def _naive_row(r: Any) -> str:
    aliases = "<br>also " + ", ".join(r.aliases) if r.aliases else ""
    return (f"| {r.kernel_release} | {r.kernel_version} | {r.arch} | [{r.file}]({r.url}){aliases} "
            f"| `{r.sha256}` | {r.size} | {r.built[:10]} | [log]({r.log}) "
            f"| {r.driver_ref} `{r.commit[:12]}` |")


# --- measuring ------------------------------------------------------------------------------

def _naive_config(work: Path) -> Path:
    """mkdocs.yml with the plugin replaced by these hooks; docs, theme and nav unchanged."""
    import yaml

    text = (ROOT / "mkdocs.yml").read_text()
    config = yaml.safe_load(text)
    config["docs_dir"] = str(ROOT / "docs")
    config["plugins"] = ["search"]
    config["hooks"] = [str(Path(__file__).resolve())]
    path = work / "mkdocs-naive.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def build(config: Path, site: Path, catalog: Path) -> dict[str, Any]:
    """One `mkdocs build --strict` in a child process: wall time and its own peak memory."""
    env = {**os.environ, "FALCO_PROBES_CATALOG": str(catalog), "NO_MKDOCS_2_WARNING": "1",
           "FALCO_PROBES_CONFIG": str(site.parent / "no-probes.yaml"),
           "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryFile() as errors:
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet",
                                 "-f", str(config), "-d", str(site)], env=env, cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=errors)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode:
            errors.seek(0)
            raise SystemExit(f"mkdocs build failed ({config}):\n"
                             f"{errors.read().decode(errors='replace')[-3000:]}")
    return {"seconds": round(seconds, 2), "max_rss_mb": round(usage.ru_maxrss / 1024)}


def sizes(site: Path) -> dict[str, Any]:
    total = 0
    pages = 0
    largest = (0, "")
    for path in site.rglob("*"):
        if not path.is_file():
            continue
        size = path.stat().st_size
        total += size
        if path.suffix == ".html":
            pages += 1
            largest = max(largest, (size, str(path.relative_to(site))))
    index = site / "search" / "search_index.json"
    return {"total_bytes": total, "html_pages": pages, "largest_page_bytes": largest[0],
            "largest_page": largest[1],
            "search_index_bytes": index.stat().st_size if index.exists() else 0}


@contextmanager
def serve(site: Path) -> Iterator[str]:
    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet,
                                                                     directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


# Typing a kernel release, timed inside the page: from the input event to the answer.
MEASURE_JS = """async (q) => {
  const form = document.getElementById('fp-find');
  const field = name => form.elements.namedItem(name);
  const answer = () => Promise.race([
    new Promise(resolve => form.addEventListener('fp-answer',
      e => resolve([performance.now(), e.detail.state]), {once: true})),
    new Promise((_, reject) => setTimeout(() => reject(new Error('no answer in 10 s')), 10000))]);
  const type = async (name, value) => {
    const answered = answer();
    const start = performance.now();
    field(name).value = value;
    field(name).dispatchEvent(new Event('input', {bubbles: true}));
    const [end, state] = await answered;
    // Seen: the answer is in the DOM and the frame that draws it is starting.
    await new Promise(r => requestAnimationFrame(r));
    return [end - start, state, performance.now() - start];
  };
  field('os').value = q.os; field('v').value = q.v; field('m').value = q.m;
  field('falco').value = q.falco; field('driver').value = q.driver;
  await type('r', '');                      // a fresh state: nothing answered yet
  const cold = await type('r', q.r);        // the shard is not cached yet
  await type('r', '');
  const warm = await type('r', q.r);        // same name again: the shard is cached
  return [cold[0], warm[0], warm[1], cold[2], warm[2]];
}"""


def _queries(catalog: Path, count: int, seed: int = 5) -> list[dict[str, str]]:
    """Host inputs whose names are in the catalog: centos, fedora and amazonlinux2 hosts
    (their names are plain uname -r and the digits of uname -v), found by driver version."""
    from builder.core.catalog import load_catalog

    os_release = {"centos": "ID=centos\nVERSION_ID=7\n", "fedora": "ID=fedora\n",
                  "amazonlinux2": "ID=amzn\nVERSION_ID=2\n"}
    pool = []
    for (driver, _arch, target), cat_file in load_catalog(catalog).files.items():
        if target in os_release and cat_file.arch == "x86_64":
            pool += [(driver, r) for r in cat_file.probes
                     if r.kernel_version.isdigit() and r.kernel_release[0].isdigit()
                     and int(r.kernel_release.split(".")[0]) >= 4]
    rng = random.Random(seed)
    picks = rng.sample(pool, min(count, len(pool)))
    return [{"os": os_release[r.target], "r": r.kernel_release,
             "v": f"#{r.kernel_version} SMP Mon Jan 1 00:00:00 UTC 2024", "m": r.arch,
             "falco": "", "driver": driver} for driver, r in picks]


def find_latency(site: Path, catalog: Path, samples: int) -> dict[str, Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return {"skipped": "playwright is not installed"}
    if not Path(CHROMIUM).exists():
        return {"skipped": f"{CHROMIUM} is not installed"}
    queries = _queries(catalog, samples)
    if not queries:
        return {"skipped": "no centos/fedora/amazonlinux2 probes in the catalog"}
    cold: list[float] = []
    warm: list[float] = []
    cold_seen: list[float] = []
    warm_seen: list[float] = []
    states: list[str] = []
    with serve(site) as url, sync_playwright() as pw, \
            tempfile.TemporaryDirectory() as profile:
        context = pw.chromium.launch_persistent_context(profile, headless=True,
                                                        executable_path=CHROMIUM,
                                                        args=CHROMIUM_ARGS)
        page = context.new_page()
        page.goto(url, wait_until="load")
        page.wait_for_selector("#fp-find[data-fp-ready]")
        for query in queries:
            cold_ms, warm_ms, state, cold_drawn, warm_drawn = page.evaluate(MEASURE_JS, query)
            cold.append(cold_ms)
            warm.append(warm_ms)
            cold_seen.append(cold_drawn)
            warm_seen.append(warm_drawn)
            states.append(state)
        context.close()
    return {"samples": len(queries), "found": states.count("found"),
            "cold_ms_median": round(statistics.median(cold), 1),
            "cold_ms_max": round(max(cold), 1),
            "warm_ms_median": round(statistics.median(warm), 1),
            "warm_ms_max": round(max(warm), 1),
            "cold_drawn_ms_median": round(statistics.median(cold_seen), 1),
            "cold_drawn_ms_max": round(max(cold_seen), 1),
            "warm_drawn_ms_median": round(statistics.median(warm_seen), 1)}


def run(probes: int, work: Path, naive: bool, browser: bool, samples: int) -> dict[str, Any]:
    from bench import synth

    if not synth.KERNEL_LIST.exists():
        return {"skipped": f"{synth.KERNEL_LIST} is absent"}
    catalog = work / "catalog"
    shutil.rmtree(catalog, ignore_errors=True)
    files = synth.write_catalog(catalog, probes)
    figures: dict[str, Any] = {"probes": probes, "catalog_files": files}
    print(f"site bench: {probes} probes in {files} catalog files; building ours", file=sys.stderr)
    figures["ours"] = {**build(ROOT / "mkdocs.yml", work / "site", catalog),
                       **sizes(work / "site")}
    if naive:
        print("site bench: building the naive site", file=sys.stderr)
        figures["naive"] = {**build(_naive_config(work), work / "site-naive", catalog),
                            **sizes(work / "site-naive")}
        figures["ratio"] = round(figures["ours"]["seconds"] / figures["naive"]["seconds"], 3)
    if browser:
        print("site bench: find-my-probe in Chromium", file=sys.stderr)
        figures["find"] = find_latency(work / "site", catalog, samples)
    figures["goals"] = GOALS
    return figures


def report(figures: dict[str, Any]) -> str:
    if "skipped" in figures:
        return f"site bench skipped: {figures['skipped']}"
    lines = [f"{figures['probes']:,} probes, {figures['catalog_files']} catalog files"]
    for name in ("ours", "naive"):
        f = figures.get(name)
        if f:
            lines.append(f"{name:>5}: build {f['seconds']} s (max RSS {f['max_rss_mb']} MB), "
                         f"site {f['total_bytes'] / 1e6:.1f} MB in {f['html_pages']} pages, "
                         f"search index {f['search_index_bytes'] / 1e6:.2f} MB, largest page "
                         f"{f['largest_page_bytes'] / 1e6:.2f} MB ({f['largest_page']})")
    if "ratio" in figures:
        lines.append(f"ratio ours/naive: {figures['ratio']} (goal <= {GOALS['ratio']})")
    find = figures.get("find")
    if find and "skipped" not in find:
        lines.append(f"find-my-probe: {find['found']}/{find['samples']} found; typing to answer "
                     f"cold median {find['cold_ms_median']} ms (max {find['cold_ms_max']}), "
                     f"warm median {find['warm_ms_median']} ms (max {find['warm_ms_max']}); "
                     f"to the frame that draws it: cold median {find['cold_drawn_ms_median']} ms "
                     f"(max {find['cold_drawn_ms_max']}), warm median "
                     f"{find['warm_drawn_ms_median']} ms (goal < {GOALS['find_ms']:.0f} ms)")
    elif find:
        lines.append(f"find-my-probe skipped: {find['skipped']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_site", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--probes", type=int, default=100_000)
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keep the catalog and both sites here (default: a temp folder)")
    parser.add_argument("--no-naive", action="store_true", help="skip the naive build")
    parser.add_argument("--no-browser", action="store_true", help="skip the Chromium timing")
    parser.add_argument("--samples", type=int, default=30, help="find-my-probe lookups")
    args = parser.parse_args(argv)
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        figures = run(args.probes, args.workdir, not args.no_naive, not args.no_browser,
                      args.samples)
    else:
        with tempfile.TemporaryDirectory(prefix="bench-site-") as tmp:
            figures = run(args.probes, Path(tmp), not args.no_naive, not args.no_browser,
                          args.samples)
    print(report(figures), file=sys.stderr)
    return figures


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
