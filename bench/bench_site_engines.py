"""The generated site built by each engine: MkDocs 1.6 + Material 9 against Zensical.

    python -m bench.bench_site_engines WORK [--out DIR] [--engine mkdocs --engine zensical]
        [--mkdocs CMD] [--zensical CMD] [--variant classic] [--warm] [--repeat N]
        [--zensical-no-validation] [--no-links] [--no-compare]

WORK is a folder `falco-probes site generate` wrote (its mkdocs.yml, pages/, theme/,
api/). Each engine builds it in its own child process, from scratch:

- mkdocs: `CMD build --strict -f WORK/mkdocs.yml -d OUT/mkdocs` (CMD defaults to this
  interpreter's `-m mkdocs`);
- zensical: `CMD build --clean --strict -f WORK/.bench-zensical.yml`, a copy of
  WORK/mkdocs.yml with `theme.variant` (default classic, Material's look) and a site_dir
  inside WORK (Zensical has no -d and refuses a site_dir outside its project); its output
  is then moved to OUT/zensical. --clean empties Zensical's cache (.cache/ in WORK): a
  cold build. --warm adds a second run on the cache the first one left; the cache is
  removed afterwards. --zensical-no-validation turns Zensical's own link validation off
  (`validation: {invalid_links: false, invalid_link_anchors: false}`): it also checks
  the anchors of every raw-HTML link, most of its time on the bulk tables.

Then the API is placed into each output (hard links of WORK/api, as `site build` does
after the engine ran), and each output is measured: wall time, CPU time (user + sys of
the engine and the processes it waited for: the figure other load on the machine cannot
inflate), peak memory (the child's maximum resident set), the load average before and
after; HTML pages, generated pages or API files missing from the output; the search
index (its file, bytes, entries, and entries that point into pages whose front matter
says `search: exclude: true`: the bulk tables must stay out); our theme override
(builder/site/theme/main.html) applied: the no-js swap in every page, deferred scripts,
the on-demand theme script on every bulk page; every relative link and #anchor of every
page against the built files; with both engines, the <article> HTML of every page
compared (Zensical's skip target set aside). Figures are printed as JSON; each engine's
own output goes to OUT/<engine>.log.

The PYTHONPATH of both engines starts with the repository root (--pythonpath), so that
Python-Markdown finds the passthrough extension (builder.site.passthrough) by its name.
Only the standard library and PyYAML are used, so any interpreter with PyYAML runs it.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import yaml

from builder.site.engine import place_api

ROOT = Path(__file__).resolve().parents[1]
ENGINES = ("mkdocs", "zensical")
ZENSICAL_CONFIG = ".bench-zensical.yml"
ZENSICAL_SITE = ".bench-zensical-site"
SEARCH_INDEX = {"mkdocs": ("search/search_index.json", "docs"),
                "zensical": ("search.json", "items")}
# What builder/site/theme/main.html puts into pages: the class swap in every page's head,
# the theme's script made on-demand on bulk pages (front matter falco_probes_bulk).
NO_JS_SWAP = 'document.documentElement.classList.replace("no-js", "js")'
ON_DEMAND = "data-fp-on-demand"
ARTICLE = re.compile(r'<article class="md-content__inner md-typeset">(.*?)</article>', re.S)
SKIP_TARGET = '<a id="__skip" tabindex="-1"></a>'    # Zensical's, first in every article
LINK_TAG = re.compile(r"<(?:a|link|script|img|iframe|source)\b[^>]*>", re.I)
LINK_ATTR = re.compile(r'\s(?:href|src)="([^"]*)"')
ID_ATTR = re.compile(r'\sid="([^"]*)"')
SCRIPT_SRC = re.compile(r"<script\b([^>]*)\ssrc=", re.I)
WARNING_LINE = re.compile(r"^\s*(?:WARNING|Warning)\b", re.M)
GENERATOR = re.compile(r'<meta name="generator" content="([^"]*)"')


# --- the generated sources ------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Sources:
    """What WORK holds and what every engine's output must hold."""

    work: Path
    config: dict[str, Any]
    pages: dict[str, str]              # source path -> URL (relative to the site root)
    excluded: set[str] = field(default_factory=set)    # URLs of search-excluded pages
    bulk: set[str] = field(default_factory=set)        # URLs of bulk table pages
    api: list[str] = field(default_factory=list)       # paths under WORK/api


def front_matter(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        if handle.readline().rstrip("\n") != "---":
            return {}
        lines: list[str] = []
        for line in handle:
            if line.rstrip("\n") in ("---", "..."):
                meta = yaml.safe_load("".join(lines))
                return meta if isinstance(meta, dict) else {}
            lines.append(line)
    return {}


def page_url(src: str, directory_urls: bool) -> str:
    """The URL an engine gives a Markdown source (MkDocs' rules, which Zensical follows)."""
    stem = src.removesuffix(".md")
    if stem == "index" or stem.endswith("/index"):
        return stem.removesuffix("index")
    if stem == "README" or stem.endswith("/README"):
        return stem.removesuffix("README")
    return stem + "/" if directory_urls else stem + ".html"


def output_file(url: str) -> str:
    return url + "index.html" if url == "" or url.endswith("/") else url


def read_sources(work: Path) -> Sources:
    config_file = work / "mkdocs.yml"
    if not config_file.is_file():
        raise SystemExit(f"{work}: no mkdocs.yml; run `falco-probes site generate --work "
                         f"{work}` first")
    config = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    if not isinstance(config, dict):
        raise SystemExit(f"{config_file}: not a mapping")
    docs = work / str(config.get("docs_dir") or "docs")
    directory_urls = bool(config.get("use_directory_urls", True))
    sources = Sources(work, config, {})
    for path in sorted(docs.rglob("*.md")):
        src = path.relative_to(docs).as_posix()
        url = page_url(src, directory_urls)
        sources.pages[src] = url
        meta = front_matter(path)
        search = meta.get("search")
        if isinstance(search, dict) and search.get("exclude") is True:
            sources.excluded.add(url)
        if meta.get("falco_probes_bulk"):
            sources.bulk.add(url)
    api = work / "api"
    if api.is_dir():
        sources.api.extend(sorted(p.relative_to(api).as_posix() for p in api.rglob("*")
                                  if p.is_file()))
    return sources


# --- the engines ----------------------------------------------------------------------------

@dataclass
class Run:
    engine: str
    argv: list[str]
    exit_code: int
    wall_s: float
    cpu_s: float
    user_s: float
    sys_s: float
    max_rss_mb: int
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]
    warnings: int
    cache: str

    def figures(self) -> dict[str, Any]:
        return {"exit_code": self.exit_code, "cache": self.cache, "wall_s": self.wall_s,
                "cpu_s": self.cpu_s, "user_s": self.user_s, "sys_s": self.sys_s,
                "max_rss_mb": self.max_rss_mb, "load_before": list(self.load_before),
                "load_after": list(self.load_after), "warnings": self.warnings,
                "command": shlex.join(self.argv)}


def _loadavg() -> tuple[float, float, float]:
    one, five, fifteen = os.getloadavg()
    return round(one, 2), round(five, 2), round(fifteen, 2)


def timed(engine: str, argv: list[str], cwd: Path, env: dict[str, str], log: Path,
          cache: str) -> Run:
    """One child process: wall time, and its own CPU time and peak memory (wait4)."""
    load_before = _loadavg()
    with log.open("ab") as out:
        out.write(f"$ {shlex.join(argv)}\n".encode())
        out.flush()
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    text = log.read_text(encoding="utf-8", errors="replace")
    text = text[text.rfind("$ "):]
    return Run(engine, argv, proc.returncode, round(wall, 2),
               round(usage.ru_utime + usage.ru_stime, 2), round(usage.ru_utime, 2),
               round(usage.ru_stime, 2), round(usage.ru_maxrss / 1024), load_before,
               _loadavg(), len(WARNING_LINE.findall(text)), cache)


def child_env(pythonpath: Path) -> dict[str, str]:
    # NO_MKDOCS_2_WARNING is passed on as it is: set only where the engine decision is
    # recorded (docs/site-engine.md), never by this script.
    path = os.pathsep.join(p for p in (str(pythonpath), os.environ.get("PYTHONPATH", ""))
                           if p)
    return {**os.environ, "PYTHONPATH": path, "NO_COLOR": "1",
            "PYTHONDONTWRITEBYTECODE": "1"}


def build_mkdocs(sources: Sources, site: Path, command: list[str], env: dict[str, str],
                 log: Path) -> list[Run]:
    argv = [*command, "build", "--strict", "-f", str(sources.work / "mkdocs.yml"),
            "-d", str(site)]
    return [timed("mkdocs", argv, sources.work, env, log, "none")]


def zensical_config(sources: Sources, variant: str, validation: bool = True) -> Path:
    """WORK/mkdocs.yml with the theme's variant and a site_dir Zensical accepts."""
    config = dict(sources.config)
    config["theme"] = {**(config.get("theme") or {"name": "material"}), "variant": variant}
    config["site_dir"] = ZENSICAL_SITE
    if not validation:
        config["validation"] = {**(config.get("validation") or {}), "invalid_links": False,
                                "invalid_link_anchors": False}
    path = sources.work / ZENSICAL_CONFIG
    path.write_text("# Written by bench/bench_site_engines.py from mkdocs.yml.\n" +
                    yaml.safe_dump(config, sort_keys=False, allow_unicode=True),
                    encoding="utf-8")
    return path


def build_zensical(sources: Sources, site: Path, command: list[str], env: dict[str, str],
                   log: Path, variant: str, warm: bool, validation: bool = True) -> list[Run]:
    config = zensical_config(sources, variant, validation)
    argv = [*command, "build", "--strict", "-f", str(config)]
    runs = [timed("zensical", [*argv[:2], "--clean", *argv[2:]], sources.work, env, log,
                  "cold")]
    if warm and runs[0].exit_code == 0:
        runs.append(timed("zensical", argv, sources.work, env, log, "warm"))
    shutil.rmtree(sources.work / ".cache", ignore_errors=True)   # Zensical's, 1x the pages
    built = sources.work / ZENSICAL_SITE
    if site.exists():
        shutil.rmtree(site)
    if built.is_dir():
        site.parent.mkdir(parents=True, exist_ok=True)
        try:
            built.rename(site)
        except OSError:
            shutil.copytree(built, site)
            shutil.rmtree(built)
    return runs


# --- the output -----------------------------------------------------------------------------

def html_pages(site: Path) -> Iterator[Path]:
    return (p for p in sorted(site.rglob("*.html")) if p.is_file())


def search_index(engine: str, site: Path, sources: Sources) -> dict[str, Any]:
    name, key = SEARCH_INDEX[engine]
    path = site / name
    if not path.is_file():
        return {"file": name, "present": False}
    entries = json.loads(path.read_text(encoding="utf-8")).get(key, [])
    pages = {unquote(str(e.get("location", "")).split("#", 1)[0]) for e in entries}
    leaked = sorted(pages & sources.excluded)
    return {"file": name, "present": True, "bytes": path.stat().st_size,
            "entries": len(entries), "pages": len(pages),
            "excluded_pages": len(sources.excluded), "excluded_pages_indexed": len(leaked),
            "leaked": leaked[:10]}


def theme_override(site: Path, sources: Sources) -> dict[str, Any]:
    """main.html's marks: the no-js swap everywhere, no blocking script, the theme's
    script on demand on every bulk page."""
    pages = swapped = blocking = 0
    bulk_on_demand = 0
    for path in html_pages(site):
        text = path.read_text(encoding="utf-8", errors="replace")
        pages += 1
        swapped += NO_JS_SWAP in text
        blocking += any("defer" not in attrs and "async" not in attrs
                        for attrs in SCRIPT_SRC.findall(text))
        url = path.relative_to(site).as_posix().removesuffix("index.html")
        if url in sources.bulk and ON_DEMAND in text:
            bulk_on_demand += 1
    return {"pages": pages, "pages_with_no_js_swap": swapped,
            "pages_with_blocking_script": blocking, "bulk_pages": len(sources.bulk),
            "bulk_pages_on_demand": bulk_on_demand,
            "applied": pages > 0 and swapped == pages and bulk_on_demand == len(sources.bulk)}


def links(site: Path) -> dict[str, Any]:
    """Every relative href/src of every page against the built files, and every #anchor
    into a page against that page's ids."""
    ids: dict[Path, set[str]] = {}
    hrefs: dict[Path, set[str]] = {}
    for path in html_pages(site):
        text = path.read_text(encoding="utf-8", errors="replace")
        ids[path.resolve()] = set(ID_ATTR.findall(text))
        found: set[str] = set()
        for tag in LINK_TAG.findall(text):
            found.update(html.unescape(h) for h in LINK_ATTR.findall(tag))
        hrefs[path] = found
    root = site.resolve()
    checked = 0
    broken: list[str] = []
    anchors: list[str] = []
    exists: dict[Path, bool] = {}
    for page, found in hrefs.items():
        for href in sorted(found):
            parts = urlsplit(href)
            if parts.scheme or parts.netloc or href.startswith(("/", "data:")):
                continue          # another host, or root-relative (404.html, needs site_url)
            checked += 1
            target = (page.parent / unquote(parts.path)) if parts.path else page
            if parts.path.endswith("/") or target.is_dir():
                target = target / "index.html"
            target = target.resolve()
            if target not in exists:
                exists[target] = target.is_file() and target.is_relative_to(root)
            where = f"{page.relative_to(site).as_posix()} -> {href}"
            if not exists[target]:
                broken.append(where)
            elif parts.fragment and target in ids and parts.fragment not in ids[target]:
                anchors.append(where)
    return {"checked": checked, "broken": len(broken), "broken_anchors": len(anchors),
            "examples": (broken + anchors)[:10]}


def external_loads(site: Path) -> int:
    """Stylesheets, scripts and images a page loads from another host (font: false)."""
    count = 0
    for path in html_pages(site):
        text = path.read_text(encoding="utf-8", errors="replace")
        for tag in LINK_TAG.findall(text):
            if tag[:2].lower() == "<a":
                continue
            count += any(urlsplit(h).scheme in ("http", "https") or h.startswith("//")
                         for h in LINK_ATTR.findall(tag))
    return count


def measure(engine: str, site: Path, sources: Sources, check_links: bool) -> dict[str, Any]:
    files = [p for p in site.rglob("*") if p.is_file()]
    missing_pages = [src for src, url in sources.pages.items()
                     if not (site / output_file(url)).is_file()]
    missing_api = [rel for rel in sources.api if not (site / "api" / rel).is_file()]
    home = site / "index.html"
    generator = GENERATOR.search(home.read_text(encoding="utf-8")) if home.is_file() else None
    figures: dict[str, Any] = {
        "site": str(site), "generator": generator[1] if generator else "",
        "html_pages": sum(1 for _ in html_pages(site)),
        "files": len(files), "bytes": sum(p.stat().st_size for p in files),
        "largest_page_bytes": max((p.stat().st_size for p in html_pages(site)), default=0),
        "generated_pages": len(sources.pages), "generated_pages_missing": len(missing_pages),
        "missing_examples": missing_pages[:10], "api_files": len(sources.api),
        "api_files_missing": len(missing_api),
        "search": search_index(engine, site, sources),
        "theme_override": theme_override(site, sources),
        "external_loads": external_loads(site)}
    if check_links:
        figures["links"] = links(site)
    return figures


def _article(path: Path) -> str | None:
    found = ARTICLE.search(path.read_text(encoding="utf-8", errors="replace"))
    if found is None:
        return None
    return " ".join(found[1].replace(SKIP_TARGET, "").split())


def compare_articles(a: Path, b: Path) -> dict[str, Any]:
    pages_a = {p.relative_to(a).as_posix() for p in html_pages(a)}
    pages_b = {p.relative_to(b).as_posix() for p in html_pages(b)}
    same, different = 0, []
    for rel in sorted(pages_a & pages_b):
        if _article(a / rel) == _article(b / rel):
            same += 1
        else:
            different.append(rel)
    return {"pages_in_both": len(pages_a & pages_b), "only_first": sorted(pages_a - pages_b),
            "only_second": sorted(pages_b - pages_a), "articles_identical": same,
            "articles_different": len(different), "different_examples": different[:10]}


# --- the run --------------------------------------------------------------------------------

def version_of(command: list[str], env: dict[str, str]) -> str:
    done = subprocess.run([*command, "--version"], capture_output=True, text=True, env=env,
                          check=False)
    return " ".join((done.stdout or done.stderr).split())[:200]


def run(work: Path, out: Path, engines: list[str], commands: dict[str, list[str]],
        pythonpath: Path, variant: str, warm: bool, repeat: int, check_links: bool,
        compare: bool, zensical_validation: bool = True) -> dict[str, Any]:
    sources = read_sources(work.resolve())
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    env = child_env(pythonpath)
    figures: dict[str, Any] = {
        "work": str(sources.work), "cpus": os.cpu_count(), "variant": variant,
        "zensical_validation": zensical_validation,
        "generated_pages": len(sources.pages), "search_excluded_pages": len(sources.excluded),
        "bulk_pages": len(sources.bulk), "api_files": len(sources.api), "engines": {}}
    for engine in engines:
        site, log = out / engine, out / f"{engine}.log"
        log.unlink(missing_ok=True)
        runs: list[Run] = []
        for _ in range(repeat):
            print(f"bench: {engine} building {sources.work}", file=sys.stderr)
            if engine == "mkdocs":
                runs += build_mkdocs(sources, site, commands[engine], env, log)
            else:
                runs += build_zensical(sources, site, commands[engine], env, log, variant,
                                       warm, zensical_validation)
        result: dict[str, Any] = {"version": version_of(commands[engine], env),
                                  "runs": [r.figures() for r in runs], "log": str(log)}
        if all(r.exit_code == 0 for r in runs) and site.is_dir():
            place_api(sources.work / "api", site)  # as `site build` does
            print(f"bench: measuring {site}", file=sys.stderr)
            result.update(measure(engine, site, sources, check_links))
        figures["engines"][engine] = result
    built = [e for e in engines if "html_pages" in figures["engines"][e]]
    if compare and len(built) == 2:
        print("bench: comparing articles", file=sys.stderr)
        figures["articles"] = compare_articles(out / built[0], out / built[1])
    return figures


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_site_engines",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("work", type=Path, help="a folder `falco-probes site generate` wrote")
    parser.add_argument("--out", type=Path, default=None,
                        help="where the sites go (default: WORK/../site-engines)")
    parser.add_argument("--engine", action="append", choices=ENGINES, default=None,
                        help="an engine to build with (repeatable; default: both)")
    parser.add_argument("--mkdocs", default=f"{shlex.quote(sys.executable)} -m mkdocs",
                        metavar="CMD", help="the MkDocs command (default: this Python's)")
    parser.add_argument("--zensical", default="zensical", metavar="CMD",
                        help="the Zensical command (default: zensical on PATH)")
    parser.add_argument("--variant", default="classic", choices=("classic", "modern"),
                        help="Zensical's theme variant (default: classic)")
    parser.add_argument("--warm", action="store_true",
                        help="a second Zensical run on the cache of the first")
    parser.add_argument("--repeat", type=int, default=1, metavar="N",
                        help="builds per engine (default 1)")
    parser.add_argument("--pythonpath", type=Path, default=ROOT, metavar="DIR",
                        help="prepended to the engines' PYTHONPATH (default: the repository)")
    parser.add_argument("--zensical-no-validation", action="store_true",
                        help="Zensical's own link validation off (invalid_links, "
                             "invalid_link_anchors: false)")
    parser.add_argument("--no-links", action="store_true", help="skip the link check")
    parser.add_argument("--no-compare", action="store_true",
                        help="skip the article comparison")
    args = parser.parse_args(argv)
    engines: list[str] = args.engine or list(ENGINES)
    commands = {"mkdocs": shlex.split(args.mkdocs), "zensical": shlex.split(args.zensical)}
    out: Path = args.out or args.work.resolve().parent / "site-engines"
    figures = run(args.work, out, engines, commands, args.pythonpath, args.variant,
                  args.warm, max(1, args.repeat), not args.no_links, not args.no_compare,
                  not args.zensical_no_validation)
    json.dump(figures, sys.stdout, indent=2)
    print()
    return figures


if __name__ == "__main__":
    main()
