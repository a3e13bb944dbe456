"""`falco-probes demo`: the main job end to end on embedded defaults, then serve it.

A thin list of the real subcommands (the nightly workflow runs the same ones)
into one folder, followed by `mkdocs build` and a local web server for the
site and the directory store.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import shutil
from collections.abc import Callable
from importlib import resources
from pathlib import Path

from ..errors import EXIT_NEGATIVE, EXIT_OK, InputError, ProbesError
from ..ui import info

DESCRIPTION = """\
Run the whole pipeline on embedded defaults (builder/demo.yaml): list the Debian kernels
apt sees, plan, build real probes from Debian's falcosecurity-scap-dkms driver source
with clang, load each one in its own kernel booted in QEMU, publish them into a directory
store in falco-driver-loader's layout, merge the catalog, build the site, and serve both
on 127.0.0.1:
  http://127.0.0.1:PORT/          the probe index
  http://127.0.0.1:PORT/store/    DRIVERS_REPO for falco-driver-loader and falcoctl
Everything lands in --out; run it again and only what is missing is built.
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
    parser.add_argument("--port", type=int, default=8000, help="port to serve on (default 8000)")
    parser.add_argument("--no-serve", action="store_true",
                        help="stop after building the site (for scripts and tests)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..cli import main as cli  # the same entry point a user types

    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    config = _config(args.config, out)
    base_url = f"http://127.0.0.1:{args.port}/store"
    catalog = out / "catalog"
    plan = ["plan", "--config", str(config), "--catalog", str(catalog), "--out",
            str(out / "plan.json")]
    build = ["build", "--config", str(config), "--plan", str(out / "plan.json"), "--out",
             str(out / "build")]
    loadtest = ["loadtest", str(out / "build")]
    publish = ["publish", "--config", str(config), "--store", "directory", "--path",
               str(out / "store"), "--base-url", base_url, "--fragment",
               str(out / "fragment.jsonl"), str(out / "build")]
    merge = ["catalog", "merge", "--catalog", str(catalog), str(out / "fragment.jsonl")]
    if _step(cli, plan, allowed=(EXIT_OK, EXIT_NEGATIVE)) == EXIT_NEGATIVE:
        info("demo: nothing new to build; the catalog has every planned probe")
    else:
        shutil.rmtree(out / "build", ignore_errors=True)  # a fresh report for this plan
        _step(cli, build)
        _step(cli, loadtest)
        _step(cli, publish)
    if (out / "fragment.jsonl").exists():
        _step(cli, merge)
    site = _build_site(args.mkdocs, catalog, config, out / "site")
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
    if not mkdocs_file.is_file():
        raise InputError(f"{mkdocs_file}: no such file",
                         hint="run the demo from the repository root, or pass --mkdocs")
    from mkdocs.commands.build import build as mkdocs_build
    from mkdocs.config import load_config

    os.environ["FALCO_PROBES_CATALOG"] = str(catalog)
    os.environ["FALCO_PROBES_CONFIG"] = str(config)
    info(f"demo: mkdocs build -> {site_dir}")
    shutil.rmtree(site_dir, ignore_errors=True)
    mkdocs_build(load_config(config_file=str(mkdocs_file), site_dir=str(site_dir)))
    return site_dir


class _Handler(http.server.SimpleHTTPRequestHandler):
    """The site at /, the directory store at /store/ (a working DRIVERS_REPO)."""

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

    def log_message(self, format: str, *args: object) -> None:
        info("serve: " + format % args)


def serve(site: Path, store: Path, port: int) -> None:
    handler = functools.partial(_Handler, site=site, store=store)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    info(f"demo: site at http://127.0.0.1:{port}/ ; probes at http://127.0.0.1:{port}/store/ "
         f"(DRIVERS_REPO=http://127.0.0.1:{port}/store) ; Ctrl-C to stop")
    try:
        server.serve_forever()
    finally:
        server.server_close()
