"""The MkDocs edge of the site: the `falco-probes` plugin.

mkdocs.yml:

    plugins:
      - search
      - falco-probes:
          catalog: catalog        # $FALCO_PROBES_CATALOG overrides
          config: probes.yaml     # $FALCO_PROBES_CONFIG overrides; missing: built-in table
          drivers_repo: ""        # optional public directory store to show as DRIVERS_REPO

on_files loads the catalog (writing each driver version's API files as it goes,
see load.py), builds the page models and renders every generated page (virtual
files: nothing is written into docs/); on_page_content swaps the HTML in (the
Markdown source is front matter only, so the plugin also names the page's heading as
its table of contents: Material's "skip to content" link points there); on_post_build
writes api/index.json and the API files that span driver versions.
Catalog or configuration errors stop the build with the message and hint every
other command gives.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mkdocs.config import base
from mkdocs.config import config_options as opt
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.plugins import BasePlugin, get_plugin_logger
from mkdocs.structure.files import File, Files, InclusionLevel
from mkdocs.structure.pages import Page
from mkdocs.structure.toc import AnchorLink, TableOfContents

from builder.core.config import Config, falco_releases, load_config
from builder.core.errors import ProbesError, ProblemsError
from builder.core.paths import CATALOG_ENV, CONFIG_ENV
from builder.site import api, layout
from builder.site.load import load_and_write, write_text
from builder.site.model import SiteModel, build_site
from builder.site.render import PAGE_BUDGET, Renderer

ASSETS = Path(__file__).parent / "assets"
THEME = Path(__file__).parent / "theme"     # template overrides, before Material's own
_HEADING = re.compile(r'<h1 id="([^"]+)">(.*?)</h1>', re.DOTALL)
# Pages linked from mkdocs.yml's nav; every other generated page stays out of it.
IN_NAV = (layout.HOME, layout.DRIVERS, layout.TARGETS, layout.FAILURES)
log = get_plugin_logger("falco-probes")


class ProbeIndexConfig(base.Config):  # type: ignore[no-untyped-call]
    catalog = opt.Type(str, default="catalog")
    config = opt.Type(str, default="probes.yaml")
    drivers_repo = opt.Type(str, default="")
    page_budget = opt.Type(int, default=PAGE_BUDGET)


def resolve(env_name: str, configured: str, base_dir: Path) -> Path:
    """The environment variable (relative to the working directory) wins over mkdocs.yml
    (relative to mkdocs.yml's folder)."""
    from_env = os.environ.get(env_name)
    if from_env:
        return Path(from_env).resolve()
    path = Path(configured)
    return path if path.is_absolute() else (base_dir / path).resolve()


def _fail(exc: ProbesError) -> PluginError:
    lines = [f"falco-probes: {exc.message}"]
    if isinstance(exc, ProblemsError):
        lines += [f"  {p}" for p in exc.problems[:20]]
    if exc.hint:
        lines.append(f"hint: {exc.hint}")
    return PluginError("\n".join(lines))


class ProbeIndexPlugin(BasePlugin[ProbeIndexConfig]):  # type: ignore[no-untyped-call]
    def __init__(self) -> None:
        self.catalog_path = Path("catalog")
        self.config_path = Path("probes.yaml")
        self.model: SiteModel | None = None
        self.probes_config: Config | None = None
        self.renderer: Renderer | None = None
        self._html: dict[str, str] = {}

    def on_config(self, config: MkDocsConfig) -> MkDocsConfig:
        base_dir = Path(config.config_file_path or "mkdocs.yml").resolve().parent
        self.catalog_path = resolve(CATALOG_ENV, self.config.catalog, base_dir)
        self.config_path = resolve(CONFIG_ENV, self.config.config, base_dir)
        repo = self.config.drivers_repo
        if repo and not re.fullmatch(r"https?://[^\s<>\"'`\\]+", repo):
            raise PluginError(f"falco-probes: drivers_repo {repo!r} is not an http(s) URL\n"
                              "hint: give the URL a directory store is served at, or leave "
                              "it empty")
        config.theme.dirs.insert(0, str(THEME))
        config.extra_css.append(layout.asset("site.css"))
        for script in layout.SCRIPTS:
            config.extra_javascript.append(layout.asset(script))
        return config

    def _load_config(self) -> Config | None:
        if not self.config_path.exists():
            log.info("no %s: using the built-in Falco to driver version table",
                     self.config_path)
            return None
        return load_config(self.config_path)

    def on_files(self, files: Files, config: MkDocsConfig) -> Files:
        try:
            self.probes_config = self._load_config()
            releases = falco_releases(self.probes_config)
            catalog = load_and_write(self.catalog_path, Path(config.site_dir), releases)
        except ProbesError as exc:
            raise _fail(exc) from exc
        self.model = build_site(catalog, releases)
        log.info("catalog %s: %d probes, %d failures", self.catalog_path,
                 self.model.totals.probes, self.model.totals.failures)
        self.renderer = Renderer(self.model, use_directory_urls=config.use_directory_urls,
                                 page_budget=self.config.page_budget,
                                 drivers_repo=self.config.drivers_repo,
                                 config=self.probes_config)
        self._html.clear()
        for page in self.renderer.plan():
            if files.get_file_from_path(page.src_uri) is not None:
                raise PluginError(f"falco-probes: docs/{page.src_uri} clashes with a page the "
                                  "plugin generates\nhint: remove or rename it")
            self._html[page.src_uri] = page.html
            inclusion = (InclusionLevel.UNDEFINED if page.src_uri in IN_NAV
                         else InclusionLevel.NOT_IN_NAV)
            files.append(File.generated(config, page.src_uri, content=page.markdown(),
                                        inclusion=inclusion))
        for name in layout.ASSETS:
            files.append(File.generated(config, layout.asset(name),
                                        abs_src_path=str(ASSETS / name)))
        return files

    def on_page_content(self, html: str, /, *, page: Page, config: MkDocsConfig,
                        files: Files) -> str | None:
        generated = self._html.pop(page.file.src_uri, None)
        if generated is None:
            return html
        heading = _HEADING.search(generated)
        if heading:  # the theme's skip link and page outline need one anchor
            page.toc = TableOfContents([AnchorLink(re.sub(r"<[^>]+>", "", heading[2]),
                                                   heading[1], 1)])
        return generated

    def on_post_build(self, *, config: MkDocsConfig) -> None:
        """api/index.json and the files spanning driver versions (each driver version's own
        API files were written while loading)."""
        if self.model is None or self.renderer is None:
            return
        write_site_api(Path(config.site_dir), self.model, self.renderer.page_urls)

    def on_serve(self, server: Any, /, *, config: MkDocsConfig, builder: Any) -> Any:
        for path in (self.catalog_path, self.config_path, ASSETS, THEME,
                     ASSETS.parent / "templates"):
            if path.exists():
                server.watch(str(path))
        return server



def write_site_api(site_dir: Path, model: SiteModel, page_urls: Mapping[str, str]) -> None:
    """api/index.json, api/kernels/ and api/targets/: what spans driver versions."""
    write_text(site_dir, layout.API_INDEX,
               api.dumps(api.index_document(model, page_urls)) + "\n")
    for path, text in api.site_documents(model):
        write_text(site_dir, path, text)
