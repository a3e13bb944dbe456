"""The engine's run over the generated sources, then the API placed into what it built.

Takes: a work folder written by generate.py. Gives: the built site, checked: the engine
(MkDocs 1.6 in this process, or Zensical's command) renders theme, nav and search over
the generated pages; then the API files are placed into its output (hard links, copies
across file systems): nothing is written into the output folder before the engine ran,
whichever engine empties it. Every generated page and every API file must then be in
the output: an engine that drops some stops the build with the list.

MkDocs rebuilds only what changed when it can (`--dirty`, by modification time, into
the output of the last build from this work folder): generate.py rewrites only the
files whose bytes changed; the pages every build must index for search (docs/ and the
searchable generated pages) are built every time; a change of theme, nav, styles or
docs/ makes the build a clean one.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import builder
from builder.core.errors import BuildError, InputError, ProbesError
from builder.site import layout
from builder.site.generate import (
    API,
    ENGINE_CONFIG,
    ENGINE_SITE,
    PAGES,
    read_state,
    write_engine_state,
)

ENGINES = ("mkdocs", "zensical")
# Shown by our own runs of MkDocs (Material prints its notice only when the `mkdocs`
# command runs); the decision is recorded in docs/engine.md. NO_MKDOCS_2_WARNING=1,
# set where that decision is recorded (Makefile, CI), silences both.
EOL_NOTICE = ("MkDocs 1.6 + Material 9: Material for MkDocs reaches end of life on "
              "2027-05-05; why this site stays on it for now: docs/engine.md")
_DIRTY_WARNING = "A 'dirty' build is being performed"
log = logging.getLogger(__name__)   # the command line shows it (ui.show_library_messages)


@dataclass(frozen=True, slots=True)
class Built:
    site: Path
    engine: str
    pages: int              # HTML pages in the output
    api_files: int          # placed under api/
    incremental: bool       # MkDocs rebuilt only what changed
    seconds: float          # the engine's own run


def build(work: Path, site_dir: Path, *, engine: str = "mkdocs", strict: bool = True,
          clean: bool = False, zensical: str = "zensical") -> Built:
    """Render the generated sources with `engine` into `site_dir`, place the API, check."""
    if engine not in ENGINES:
        raise InputError(f"unknown engine {engine!r}", hint=f"one of {', '.join(ENGINES)}")
    if not (work / ENGINE_CONFIG).is_file():
        raise InputError(f"{work}: no generated sources ({ENGINE_CONFIG} is missing)",
                         hint="run `falco-probes site generate` first")
    site_dir = site_dir.resolve()
    start = time.perf_counter()
    if engine == "mkdocs":
        incremental = build_mkdocs(work, site_dir, strict=strict, clean=clean)
    else:
        build_zensical(work, site_dir, strict=strict, clean=clean, command=zensical)
        incremental = False
    seconds = time.perf_counter() - start
    placed = place_api(work / API, site_dir)
    pages = check_output(work, site_dir)
    return Built(site_dir, engine, pages, placed, incremental, round(seconds, 2))


# --- MkDocs ---------------------------------------------------------------------------------

class _NoDirtyWarning(logging.Filter):
    """MkDocs warns about every --dirty build (its nav may be stale); ours is static (the
    generated pages are out of the nav) and a change to it makes a clean build."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(_DIRTY_WARNING)


@contextmanager
def _quiet_dirty() -> Iterator[None]:
    logger = logging.getLogger("mkdocs.commands.build")
    hush = _NoDirtyWarning()
    logger.addFilter(hush)
    try:
        yield
    finally:
        logger.removeFilter(hush)


def build_mkdocs(work: Path, site_dir: Path, *, strict: bool, clean: bool) -> bool:
    """MkDocs 1.6 in this process; True when it rebuilt only what changed."""
    from mkdocs.commands.build import build as mkdocs_build
    from mkdocs.config import load_config as load_mkdocs
    from mkdocs.exceptions import MkDocsException

    if not os.environ.get("NO_MKDOCS_2_WARNING"):
        log.warning(EOL_NOTICE)
    engine_state = read_state(work)
    chrome = engine_state.get("chrome", "")
    last = engine_state.get("mkdocs", {})
    dirty = (not clean and last.get("site_dir") == str(site_dir)
             and last.get("chrome") == chrome and (site_dir / "index.html").is_file())
    pages = _pages(work)
    if dirty:
        _prepare_dirty(site_dir, set(last.get("pages", [])) - set(pages),
                       engine_state.get("always", []))
    try:
        config = load_mkdocs(config_file=str(work / ENGINE_CONFIG), site_dir=str(site_dir),
                             strict=strict)
        with _quiet_dirty():
            mkdocs_build(config, dirty=dirty)
    except MkDocsException as exc:
        raise BuildError(f"mkdocs build failed: {exc}",
                         hint="the messages above name the page; generated pages come from "
                              f"the catalog, the others from docs/ (copied into {work / PAGES})"
                         ) from None
    except SystemExit as exc:   # click's Abort carries an exit code for strict warnings
        raise BuildError(f"mkdocs build failed (exit {exc.code})",
                         hint="the warnings above say why (strict mode)") from None
    write_engine_state(work, {**engine_state, "mkdocs": {
        "site_dir": str(site_dir), "chrome": chrome, "pages": pages}})
    return dirty


def _pages(work: Path) -> list[str]:
    root = work / PAGES
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.md"))


def output_of(src_uri: str) -> str:
    """The HTML file MkDocs writes for a page (directory URLs)."""
    url = layout.page_url(src_uri)
    return "index.html" if url == "./" else url + "index.html"


def _prepare_dirty(site_dir: Path, gone: set[str], always: list[str]) -> None:
    """Outputs of pages no longer generated go; those every build must index are
    removed so that MkDocs renders (and search indexes) them again."""
    for src_uri in (*sorted(gone), *always):
        target = site_dir / output_of(src_uri)
        if target.is_file():
            target.unlink()


# --- Zensical -------------------------------------------------------------------------------

def build_zensical(work: Path, site_dir: Path, *, strict: bool, clean: bool,
                   command: str) -> None:
    """`zensical build` of the work folder (it only writes inside it), moved to site_dir."""
    binary = shutil.which(command)
    if binary is None:
        raise InputError(f"{command}: not found", hint="install the pinned Zensical "
                         "(see docs/engine.md) or pass --zensical with its path")
    argv = [binary, "build", "-f", str(work / ENGINE_CONFIG)]
    argv += ["--clean"] if clean else []
    argv += ["--strict"] if strict else []
    package_root = str(Path(builder.__file__).resolve().parents[1])   # builder.site.passthrough
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (package_root, os.environ.get("PYTHONPATH", "")) if p)}
    done = subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True,
                          check=False)
    if done.returncode:
        tail = (done.stdout + done.stderr).strip()[-3000:]
        raise BuildError(f"zensical build failed (exit {done.returncode}):\n{tail}",
                         hint="see docs/engine.md for what Zensical does differently")
    output = work / ENGINE_SITE
    if output.resolve() != site_dir:
        if site_dir.exists():
            shutil.rmtree(site_dir)
        site_dir.parent.mkdir(parents=True, exist_ok=True)
        try:
            output.rename(site_dir)
        except OSError:
            shutil.copytree(output, site_dir)
            shutil.rmtree(output)


# --- the API and the check ------------------------------------------------------------------

def place_api(api_dir: Path, site_dir: Path) -> int:
    """Every file of `api_dir` at site_dir/api/ (hard links, or copies across file
    systems); files there that the API no longer has are removed. Returns the count."""
    dest_root = site_dir / API
    wanted: set[Path] = set()
    for path in sorted(api_dir.rglob("*")):
        if not path.is_file():
            continue
        dest = dest_root / path.relative_to(api_dir)
        wanted.add(dest)
        if dest.is_file() and os.path.samefile(dest, path):
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.exists():
            dest.unlink()
        try:
            os.link(path, dest)
        except OSError:
            shutil.copy2(path, dest)
    if dest_root.is_dir():
        for path in sorted(dest_root.rglob("*"), reverse=True):
            if path.is_file() and path not in wanted:
                path.unlink()
            elif path.is_dir() and not any(path.iterdir()):
                path.rmdir()
    return len(wanted)


def check_output(work: Path, site_dir: Path) -> int:
    """Every page of the work folder and every API file in the output; the number of HTML
    pages. Raises with the missing ones: an engine must not drop pages silently."""
    missing = [f"{output_of(uri)} (page {uri})" for uri in _pages(work)
               if not (site_dir / output_of(uri)).is_file()]
    api = work / API
    missing += [f"{API}/{p.relative_to(api).as_posix()}" for p in sorted(api.rglob("*"))
                if p.is_file() and not (site_dir / API / p.relative_to(api)).is_file()]
    if missing:
        more = f" (and {len(missing) - 20} more)" if len(missing) > 20 else ""
        raise ProbesError(f"{site_dir}: {len(missing)} generated files are missing from the "
                          f"engine's output: {', '.join(missing[:20])}{more}",
                          hint="the engine dropped them; see docs/engine.md")
    return sum(1 for _ in site_dir.rglob("*.html"))


def summary(built: Built) -> dict[str, Any]:
    return {"site": str(built.site), "engine": built.engine, "pages": built.pages,
            "api_files": built.api_files, "incremental": built.incremental,
            "engine_seconds": built.seconds}
