"""A thin MkDocs adapter: the generated pages as MkDocs' virtual files, in one process.

The site is built from generated sources (generate.py, then engine.py; `falco-probes
site build`), which any engine reading mkdocs.yml renders. This plugin is the other way
to the same site, for MkDocs only: it renders the same page sources (generate.page_source)
into MkDocs' own file list instead of a folder, with the same theme override, styles,
scripts and passthrough extension, and writes the same API files once MkDocs has written
every page (on_post_build). tests/site/test_engine.py builds the site both ways and
compares them.

    plugins:
      - search
      - falco-probes:
          catalog: catalog        # $FALCO_PROBES_CATALOG overrides
          config: probes.yaml     # $FALCO_PROBES_CONFIG overrides; missing: built-in table
          drivers_repo: ""
          page_budget: 300000
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mkdocs.config import base
from mkdocs.config import config_options as opt
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.plugins import BasePlugin
from mkdocs.structure.files import File, Files, InclusionLevel

from builder.core.config import Config
from builder.core.errors import ProbesError, ProblemsError
from builder.core.paths import CATALOG_ENV, CONFIG_ENV
from builder.site import generate, layout
from builder.site.generate import ASSETS, IN_NAV, PASSTHROUGH, THEME, SiteSource, page_source
from builder.site.load import write_apis
from builder.site.model import SiteModel
from builder.site.render import PAGE_BUDGET, Renderer


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
        self.source: SiteSource | None = None
        self.model: SiteModel | None = None
        self.renderer: Renderer | None = None

    def on_config(self, config: MkDocsConfig) -> MkDocsConfig:
        base_dir = Path(config.config_file_path or "mkdocs.yml").resolve().parent
        self.source = SiteSource(
            path=base_dir / "mkdocs.yml", config={}, docs_dir=Path(config.docs_dir),
            catalog=resolve(CATALOG_ENV, self.config.catalog, base_dir),
            probes_yaml=resolve(CONFIG_ENV, self.config.config, base_dir),
            drivers_repo=self.config.drivers_repo, page_budget=self.config.page_budget,
            use_directory_urls=config.use_directory_urls)
        repo = self.config.drivers_repo
        if repo and not repo.startswith(("http://", "https://")):
            raise PluginError(f"falco-probes: drivers_repo {repo!r} is not an http(s) URL\n"
                              "hint: give the URL a directory store is served at, or leave "
                              "it empty")
        config.theme.dirs.insert(0, str(THEME))
        config.extra_css.append(layout.asset("site.css"))
        for script in layout.SCRIPTS:
            config.extra_javascript.append(layout.asset(script))
        if PASSTHROUGH not in config.markdown_extensions:
            config.markdown_extensions.insert(0, PASSTHROUGH)
        return config

    def on_files(self, files: Files, config: MkDocsConfig) -> Files:
        assert self.source is not None
        try:
            self.model, probes_config = generate.load_site(self.source)
        except ProbesError as exc:
            raise _fail(exc) from exc
        self.renderer = _renderer(self.model, self.source, probes_config)
        for page in self.renderer.plan():
            if files.get_file_from_path(page.src_uri) is not None:
                raise PluginError(f"falco-probes: docs/{page.src_uri} clashes with a page the "
                                  "plugin generates\nhint: remove or rename it")
            inclusion = (InclusionLevel.UNDEFINED if page.src_uri in IN_NAV
                         else InclusionLevel.NOT_IN_NAV)
            files.append(File.generated(config, page.src_uri, content=page_source(page),
                                        inclusion=inclusion))
        for name in layout.ASSETS:
            files.append(File.generated(config, layout.asset(name),
                                        abs_src_path=str(ASSETS / name)))
        return files

    def on_post_build(self, *, config: MkDocsConfig) -> None:
        """The API, once every page is written."""
        if self.model is None or self.renderer is None:
            return
        site_dir = Path(config.site_dir)
        write_apis(site_dir, self.model.catalog.files.values(), self.model.releases)
        write_site_api(site_dir, self.model, self.renderer.page_urls)

    def on_serve(self, server: Any, /, *, config: MkDocsConfig, builder: Any) -> Any:
        assert self.source is not None
        for path in (self.source.catalog, self.source.probes_yaml, ASSETS, THEME,
                     ASSETS.parent / "templates"):
            if path.exists():
                server.watch(str(path))
        return server


def _renderer(model: SiteModel, source: SiteSource, config: Config | None) -> Renderer:
    return Renderer(model, use_directory_urls=source.use_directory_urls,
                    page_budget=source.page_budget, drivers_repo=source.drivers_repo,
                    config=config)


def write_site_api(site_dir: Path, model: SiteModel, page_urls: Mapping[str, str]) -> None:
    """api/index.json and the files spanning driver versions (generate.write_site_api)."""
    generate.write_site_api(site_dir, model, page_urls)
