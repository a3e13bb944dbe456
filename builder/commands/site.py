"""`falco-probes site generate|build|api|serve`: the probe index, generated before the engine.

generate writes every page and the JSON API from the catalog into a work folder git
ignores (.site/); build runs the engine (MkDocs, or Zensical) over it and places the API
into its output; api places the API after an engine run started by hand; serve builds,
serves, and rebuilds when the catalog, probes.yaml, mkdocs.yml, docs/ or the site's code
change. See docs/site.md and docs/engine.md.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from builder.core.errors import EXIT_OK, ProbesError
from builder.core.paths import CATALOG_ENV, CONFIG_ENV
from builder.site import engine, generate
from builder.ui import emit, emit_json, info

DESCRIPTION = """\
The site is built in two steps, so that any engine reading mkdocs.yml can render it:

  falco-probes site generate   catalog + probes.yaml + mkdocs.yml + docs/ -> .site/
                               (pages as Markdown with our HTML, the engine's mkdocs.yml,
                               the JSON API); only what changed is rendered again
  falco-probes site build      generate, then the engine -> site/, then the API into it

exit codes: 0 built; 2 bad input (a catalog or probes.yaml problem, located); 5 the engine
failed or dropped generated files.
"""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("site", help="generate the probe index and build it with an engine",
                            description=DESCRIPTION,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    gen = actions.add_parser("generate", help="write the pages and the JSON API into .site/",
                             description="Write every generated page, docs/, the engine's "
                                         "mkdocs.yml and the JSON API into the work folder; "
                                         "only pages whose inputs changed are rendered.")
    _source_options(gen)
    gen.add_argument("--force", action="store_true",
                     help="render every page again, whatever changed")
    gen.add_argument("--json", action="store_true", help="print what was done as JSON")
    gen.set_defaults(func=run_generate)

    build = actions.add_parser("build", help="generate, run the engine, place the API",
                               description="Generate, render with the engine, place the API "
                                           "into its output and check that every generated "
                                           "page and API file is there.")
    _source_options(build)
    _build_options(build)
    build.add_argument("--json", action="store_true", help="print what was built as JSON")
    build.set_defaults(func=run_build)

    place = actions.add_parser("api", help="place the API into a site an engine built",
                               description="After `mkdocs build -f .site/mkdocs.yml` (or "
                                           "zensical build) run by hand: the API files into "
                                           "its output, and the check that nothing is missing.")
    place.add_argument("--work", type=Path, default=None, metavar="DIR",
                       help="the work folder (default: .site beside mkdocs.yml)")
    place.add_argument("--mkdocs", type=Path, default=Path("mkdocs.yml"), metavar="FILE")
    place.add_argument("--site-dir", type=Path, required=True, metavar="DIR",
                       help="what the engine built")
    place.set_defaults(func=run_api)

    serve = actions.add_parser("serve", help="build, serve on 127.0.0.1, rebuild on changes",
                               description="Build, then serve the site (pages and API) and "
                                           "rebuild what changed when the catalog, "
                                           "probes.yaml, mkdocs.yml, docs/ or the site's code "
                                           "change (reload the page to see it).")
    _source_options(serve)
    _build_options(serve)
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument("--interval", type=float, default=1.0, metavar="SECONDS",
                       help="how often to look for changes (default 1)")
    serve.set_defaults(func=run_serve)


def _source_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mkdocs", type=Path, default=Path("mkdocs.yml"), metavar="FILE",
                        help="the site's source configuration (default: ./mkdocs.yml)")
    parser.add_argument("--catalog", type=Path, default=None, metavar="DIR",
                        help=f"catalog folder (default: ${CATALOG_ENV}, else extra.falco_probes"
                             ".catalog of mkdocs.yml)")
    parser.add_argument("--config", type=Path, default=None, metavar="FILE",
                        help=f"probes.yaml (default: ${CONFIG_ENV}, else extra.falco_probes."
                             "config of mkdocs.yml; missing: the built-in Falco table)")
    parser.add_argument("--work", type=Path, default=None, metavar="DIR",
                        help="the work folder (default: .site beside mkdocs.yml)")


def _build_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--site-dir", type=Path, default=None, metavar="DIR",
                        help="where the site goes (default: site_dir of mkdocs.yml)")
    parser.add_argument("--engine", choices=engine.ENGINES, default="mkdocs",
                        help="the engine (default: mkdocs; see docs/engine.md)")
    parser.add_argument("--zensical", default="zensical", metavar="COMMAND",
                        help="the zensical command, with --engine zensical")
    parser.add_argument("--clean", action="store_true",
                        help="build every page with the engine (MkDocs otherwise rebuilds "
                             "only what changed since its last build into the same folder)")
    parser.add_argument("--no-strict", dest="strict", action="store_false",
                        help="do not stop on the engine's warnings")


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None


def source_from(args: argparse.Namespace) -> generate.SiteSource:
    return generate.read_source(args.mkdocs, catalog=args.catalog or _env_path(CATALOG_ENV),
                                probes_yaml=args.config or _env_path(CONFIG_ENV))


def work_dir(args: argparse.Namespace) -> Path:
    """--work, else .site beside the source mkdocs.yml (git ignores it)."""
    given: Path | None = args.work
    mkdocs_yml: Path = args.mkdocs
    return given if given is not None else mkdocs_yml.resolve().parent / ".site"


def site_dir(args: argparse.Namespace, source: generate.SiteSource) -> Path:
    if args.site_dir is not None:
        return Path(str(args.site_dir))
    return source.root / str(source.config.get("site_dir") or "site")


def run_generate(args: argparse.Namespace) -> int:
    source = source_from(args)
    done = _generate(source, work_dir(args), force=args.force)
    if args.json:
        emit_json(_generated(done))
    else:
        emit(str(done.work))
    return EXIT_OK


def _generate(source: generate.SiteSource, work: Path, *, force: bool = False,
              ) -> generate.Generated:
    start = time.perf_counter()
    done = generate.generate(source, work, force=force)
    info(f"site: {done.probes:,} probes, {done.failures:,} failures from {source.catalog}: "
         f"{done.pages:,} pages ({done.pages_rendered:,} rendered, {done.pages_written:,} "
         f"changed), {done.api_files:,} API files ({done.api_written:,} changed), "
         f"{done.removed:,} removed, in {time.perf_counter() - start:.1f} s -> {work}")
    return done


def _generated(done: generate.Generated) -> dict[str, object]:
    return {"work": str(done.work), "pages": done.pages, "pages_rendered": done.pages_rendered,
            "pages_written": done.pages_written, "api_files": done.api_files,
            "api_written": done.api_written, "removed": done.removed}


def run_build(args: argparse.Namespace) -> int:
    source = source_from(args)
    built = build_site(source, work_dir(args), site_dir(args, source), engine_name=args.engine,
                       strict=args.strict, clean=args.clean, zensical=args.zensical)
    if args.json:
        emit_json(engine.summary(built))
    else:
        emit(str(built.site))
    return EXIT_OK


def build_site(source: generate.SiteSource, work: Path, site: Path, *,
               engine_name: str = "mkdocs", strict: bool = True, clean: bool = False,
               zensical: str = "zensical") -> engine.Built:
    """Generate, then the engine, then the API: what `site build` and the demo run."""
    _generate(source, work)
    built = engine.build(work, site, engine=engine_name, strict=strict, clean=clean,
                         zensical=zensical)
    info(f"site: {engine_name} built {built.pages:,} pages in {built.seconds:.1f} s"
         f"{' (only what changed)' if built.incremental else ''}; {built.api_files:,} API "
         f"files placed -> {built.site}")
    return built


def run_api(args: argparse.Namespace) -> int:
    work = work_dir(args)
    placed = engine.place_api(work / generate.API, args.site_dir)
    pages = engine.check_output(work, args.site_dir)
    info(f"site: {placed:,} API files placed into {args.site_dir}; {pages:,} pages, none "
         "missing")
    emit(str(args.site_dir))
    return EXIT_OK


# --- serving --------------------------------------------------------------------------------

class SiteHandler(http.server.SimpleHTTPRequestHandler):
    """A built site over HTTP, with text where a browser should show text (build logs,
    SHA256SUMS.txt) and JSON as JSON."""

    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".log": "text/plain; charset=utf-8", ".txt": "text/plain; charset=utf-8",
                      ".json": "application/json", ".md": "text/plain; charset=utf-8"}

    def log_message(self, format: str, *args: object) -> None:
        info("serve: " + format % args)


def _watched(source: generate.SiteSource) -> list[Path]:
    return [source.catalog, source.probes_yaml, source.path, source.docs_dir,
            generate.HERE]


def _fingerprint(paths: list[Path]) -> tuple[tuple[str, int, int], ...]:
    def files() -> Iterator[Path]:
        for path in paths:
            if path.is_dir():
                yield from (p for p in path.rglob("*") if p.is_file())
            elif path.is_file():
                yield path

    return tuple(sorted((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files()))


def run_serve(args: argparse.Namespace) -> int:
    source = source_from(args)
    work, site = work_dir(args), site_dir(args, source)

    def rebuild(source: generate.SiteSource, clean: bool = False) -> None:
        build_site(source, work, site, engine_name=args.engine, strict=False, clean=clean,
                   zensical=args.zensical)

    rebuild(source, clean=args.clean)
    handler = functools.partial(SiteHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    info(f"site: serving {site} at http://127.0.0.1:{server.server_address[1]}/ ; rebuilds "
         "when its inputs change; Ctrl-C to stop")
    seen = _fingerprint(_watched(source))
    try:
        while True:
            time.sleep(args.interval)
            now = _fingerprint(_watched(source))
            if now == seen:
                continue
            seen = now
            try:
                rebuild(generate.read_source(source.path, catalog=source.catalog,
                                             probes_yaml=source.probes_yaml))
            except ProbesError as exc:   # keep serving the last good site
                info(f"site: rebuild failed: {exc.message}" +
                     (f"\nhint: {exc.hint}" if exc.hint else ""))
    finally:
        server.shutdown()
        server.server_close()
