"""`falco-probes demo`: the main job end to end on embedded defaults, then serve it.

A thin list of the real subcommands (the nightly workflow runs the same ones)
into one folder, followed by `falco-probes site build`, a summary of what to do next
(with a `find` command that resolves a probe it built) and a local web
server for the site and the directory store.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import http.server
import os
import shlex
import shutil
import sys
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path

from builder.commands.plan import write_plan
from builder.commands.site import SiteHandler, build_site
from builder.consumers.find import find
from builder.core.catalog import load_catalog
from builder.core.config import falco_releases, load_config
from builder.core.drivertypes import BY_NAME, DRIVER_TYPES, EBPF
from builder.core.errors import EXIT_OK, InputError, ProbesError
from builder.core.paths import apt_cache
from builder.core.records import Kernel, release_numbers
from builder.core.versions import FalcoVersion, default_driver_type
from builder.plan import plan_targets
from builder.site.generate import read_source
from builder.ui import emit, info

DESCRIPTION = """\
Run the whole pipeline on embedded defaults (builder/demo.yaml): list the Debian 12
kernels of the machine's apt mirror, plan, build real probes of the driver versions of
Falco 0.43 and 0.40 (and a 2022 snapshot) from Debian's falcosecurity-scap-dkms packages
with clang, and their kernel modules with the gcc-12 the kernels were built with, load
each one in its own kernel booted in QEMU, publish them into a directory store in
falco-driver-loader's layout, merge the catalog, build the site, and serve both
on 127.0.0.1:
  http://127.0.0.1:PORT/          the probe index
  http://127.0.0.1:PORT/store/    DRIVERS_REPO for falco-driver-loader and falcoctl
Everything lands in --out; run it again and only what is missing is built. At the end it
prints the loader settings and `falco-probes find` commands for a probe and a kernel
module it built.

exit codes: 0 done (or served until Ctrl-C); 2 bad input, including no kernel matching
the targets (the message lists what the archive offers); any stage's own code otherwise.
"""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("demo", help="the whole pipeline on real Debian kernels, served "
                                         "locally", description=DESCRIPTION,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("demo"), metavar="DIR",
                        help="where everything goes (default: ./demo)")
    parser.add_argument("--config", type=Path, default=None, metavar="FILE",
                        help="use this probes.yaml instead of the embedded defaults")
    parser.add_argument("--mkdocs", type=Path, default=Path("mkdocs.yml"), metavar="FILE",
                        help="the site's mkdocs.yml (default: ./mkdocs.yml)")
    parser.add_argument("--cache", type=Path, default=None, metavar="DIR",
                        help="downloads, apt indices, sources and sysroots (default: "
                             "$XDG_CACHE_HOME/falco-probes)")
    parser.add_argument("--port", type=int, default=8000, help="port to serve on (default 8000)")
    parser.add_argument("--no-serve", action="store_true",
                        help="stop after building the site (for scripts and tests)")
    parser.add_argument("--no-loadtest", action="store_true",
                        help="skip booting each kernel in QEMU to load its probes (the "
                             "probes are then recorded as never load-tested)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from builder.cli import main as cli  # the same entry point a user types

    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    config = _config(args.config, out)
    base_url = f"http://127.0.0.1:{args.port}/store"
    catalog = out / "catalog"
    cache = ["--cache", str(args.cache.resolve())] if args.cache else []
    build = ["build", "--config", str(config), "--plan", str(out / "plan.json"), "--out",
             str(out / "build"), *cache]
    loadtest = ["loadtest", "--config", str(config), str(out / "build"), *cache]
    publish = ["publish", "--config", str(config), "--store", "directory", "--path",
               str(out / "store"), "--base-url", base_url, "--fragment",
               str(out / "fragment.jsonl"), str(out / "build")]
    merge = ["catalog", "merge", "--catalog", str(catalog), str(out / "fragment.jsonl")]
    info(f"demo: plan {config} against {_shown(catalog)}")
    planned = plan_targets(load_config(config), load_catalog(catalog),
                           dt.datetime.now(dt.UTC).replace(microsecond=0),
                           cache=apt_cache(args.cache))
    write_plan(planned, out / "plan.json")
    if not planned.plan.jobs:
        info("demo: nothing new to build: the catalog holds every probe the plan wants")
    else:
        shutil.rmtree(out / "build", ignore_errors=True)  # a fresh report for this plan
        _step(cli, build)
        if not args.no_loadtest:
            _step(cli, loadtest)
        _step(cli, publish)
    if (out / "fragment.jsonl").exists():
        _step(cli, merge)
    site = _build_site(args.mkdocs, catalog, config, out / "site")
    _next_steps(out, config, catalog, base_url, planned.found.kernels, args.no_serve)
    if not args.no_serve:
        serve(site, out / "store", args.port)
    return EXIT_OK


def _step(cli: Callable[[list[str]], int], argv: list[str],
          allowed: tuple[int, ...] = (EXIT_OK,)) -> int:
    info(f"demo: falco-probes {' '.join(argv)}")
    code = cli(argv)
    if code not in allowed:
        raise ProbesError(f"demo: `falco-probes {argv[0]}` exited with {code}",
                          hint="the messages above say why")
    return code


def _config(given: Path | None, out: Path) -> Path:
    """A copy of the config in the output folder, so the run can be read and repeated."""
    if given is not None:
        if not given.is_file():
            raise InputError(f"{given}: no such file")
        return given.resolve()
    path = out / "probes.yaml"
    embedded = resources.files("builder").joinpath("demo.yaml").read_text(encoding="utf-8")
    if not path.exists() or path.read_text(encoding="utf-8") != embedded:
        path.write_text(embedded, encoding="utf-8")
    return path


def _build_site(mkdocs_file: Path, catalog: Path, config: Path, site_dir: Path) -> Path:
    """The site from the demo's catalog: pages generated into <out>/.site, rendered by the
    engine into <out>/site, the API placed after it (`falco-probes site build`)."""
    if not mkdocs_file.is_file():
        raise InputError(f"{mkdocs_file}: no such file",
                         hint="run the demo from the repository root, or pass --mkdocs")
    source = read_source(mkdocs_file, catalog=catalog, probes_yaml=config)
    info(f"demo: falco-probes site build -> {site_dir}")
    build_site(source, site_dir.parent / ".site", site_dir)
    return site_dir


# --- what next ----------------------------------------------------------------------------

def _next_steps(out: Path, config_path: Path, catalog: Path, base_url: str,
                kernels: Sequence[Kernel], no_serve: bool) -> None:
    """The newcomer's next moves, on stdout: site, loader settings, a find that works."""
    site = base_url.removesuffix("/store") + "/"
    emit("")
    emit(f"The probe index: {site}" + ("  (run without --no-serve to serve it)"
                                       if no_serve else ""))
    emit(f"Point Falco at the store (any static web server of {_shown(out / 'store')} works):")
    emit(f"  Falco 0.26-0.36, falco-driver-loader:  DRIVERS_REPO={base_url} "
         "falco-driver-loader bpf   (the kernel module: no argument)")
    emit(f"  Falco 0.37-0.44, falcoctl:             FALCOCTL_DRIVER_REPOS={base_url} "
         "falcoctl driver install --type ebpf   (or --type kmod)")
    emit("  Helm chart: --set driver.kind=ebpf (or kmod), with the same repository setting")
    for kind in DRIVER_TYPES:
        command = _find_command(out, config_path, catalog, kernels, kind)
        if command:
            emit(f"Ask for {ARTICLE[kind]} {BY_NAME[kind].noun} it built, as a Debian 12 "
                 "node's loader would:")
            emit(f"  {command}")


ARTICLE = {"ebpf": "an", "kmod": "a"}


def _find_command(out: Path, config_path: Path, catalog_dir: Path,
                  kernels: Sequence[Kernel], driver_type: str = EBPF.name) -> str:
    """A `falco-probes find` for a node whose driver of that type the catalog holds ("" if
    none)."""
    config = load_config(config_path)
    falco = falco_releases(config).newest()
    catalog = load_catalog(catalog_dir)
    driver = falco_releases(config).driver_for(falco)
    for kernel in sorted(kernels, key=_preferred):
        if driver is None or kernel.host.os_id != "debian":
            continue
        if find(kernel.host, falco, driver, catalog, config, driver_type=driver_type).available:
            return _command(out, config_path, catalog_dir, kernel, str(falco), driver_type)
    return ""


def _preferred(kernel: Kernel) -> tuple[object, ...]:
    """This machine's arch first, then the plain flavour, then the oldest series (6.1)."""
    return (kernel.arch != os.uname().machine, "-" in kernel.flavor,
            release_numbers(kernel.host.uname_r) or (0,), kernel.host.uname_r)


def _command(out: Path, config: Path, catalog: Path, kernel: Kernel, falco: str,
             driver_type: str = EBPF.name) -> str:
    node = out / "node"
    node.mkdir(exist_ok=True)
    os_release = node / "os-release"
    os_release.write_text(f"ID={kernel.host.os_id}\nVERSION_ID={kernel.host.version_id}\n",
                          encoding="utf-8")
    argv = [_program(), "find", "--catalog", _shown(catalog), "--config", _shown(config),
            "--falco-version", falco, "--os-release", _shown(os_release),
            "--uname-r", kernel.host.uname_r, "--uname-v", kernel.host.uname_v,
            "--uname-m", kernel.host.uname_m]
    if driver_type != default_driver_type(FalcoVersion.parse(falco)):
        argv += ["--driver-type", driver_type]
    return shlex.join(argv)


def _program() -> str:
    """How to run falco-probes as this run was started: `make demo` runs the venv's."""
    script = Path(sys.argv[0])
    if script.name == "falco-probes" and script.is_file():
        return _shown(script) if "/" in _shown(script) else "falco-probes"
    return "falco-probes"


def _shown(path: Path) -> str:
    """A path as the user would type it: relative to where they are, when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


# --- serving ------------------------------------------------------------------------------

class _Handler(SiteHandler):
    """The site at /, the directory store at /store/ (a working DRIVERS_REPO); build logs
    (.log) as text, which browsers show instead of downloading."""

    def __init__(self, *args: object, site: Path, store: Path, **kwargs: object) -> None:
        self._site, self._store = site, store
        super().__init__(*args, directory=str(site), **kwargs)  # type: ignore[arg-type]

    def translate_path(self, path: str) -> str:
        if path == "/store" or path.startswith("/store/"):
            inner = path[len("/store"):] or "/"
            self.directory = str(self._store)
            return super().translate_path(inner)
        self.directory = str(self._site)
        return super().translate_path(path)

def make_server(site: Path, store: Path, port: int) -> http.server.ThreadingHTTPServer:
    """The demo's web server on 127.0.0.1 (port 0: any free port)."""
    handler = functools.partial(_Handler, site=site, store=store)
    return http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)


def serve(site: Path, store: Path, port: int) -> None:
    server = make_server(site, store, port)
    info(f"demo: serving the site at http://127.0.0.1:{port}/ and the probes at "
         f"http://127.0.0.1:{port}/store/ ; Ctrl-C to stop")
    try:
        server.serve_forever()
    finally:
        server.server_close()
