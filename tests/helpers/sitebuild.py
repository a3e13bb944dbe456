"""The site built from a test's catalog: generated pages rendered by an engine (the way
`falco-probes site build` builds it), or through the MkDocs plugin adapter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from testpaths import ROOT

from builder.site import engine, generate

MKDOCS_YML = ROOT / "mkdocs.yml"


def source_config(tmp: Path, **falco_probes: Any) -> Path:
    """The repository's mkdocs.yml with docs/ by its absolute path and `extra.falco_probes`
    settings changed (page_budget, drivers_repo), written into `tmp`."""
    config = yaml.safe_load(MKDOCS_YML.read_text())
    config["docs_dir"] = str(ROOT / "docs")
    config["extra"]["falco_probes"].update(falco_probes)
    path = tmp / "mkdocs.yml"
    tmp.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def generated_site(root: Path, catalog: Path, probes_yaml: Path | None, *,
                   mkdocs_yml: Path = MKDOCS_YML, site: Path | None = None,
                   engine_name: str = "mkdocs", clean: bool = False) -> Path:
    """`falco-probes site build` as a library call: generate into root/.site, build into
    `site` (default root/site). A missing probes.yaml means the built-in Falco table."""
    source = generate.read_source(mkdocs_yml, catalog=catalog,
                                  probes_yaml=probes_yaml or root / "absent.yaml")
    generate.generate(source, root / ".site")
    out = site or root / "site"
    engine.build(root / ".site", out, engine=engine_name, clean=clean)
    return out


def plugin_site(root: Path, catalog: Path, probes_yaml: Path | None, *,
                site: Path | None = None, **options: Any) -> Path:
    """The same site through the MkDocs plugin adapter, in one `mkdocs build --strict`."""
    from mkdocs.commands.build import build
    from mkdocs.config import load_config

    config = yaml.safe_load(MKDOCS_YML.read_text())
    config["docs_dir"] = str(ROOT / "docs")
    settings = {k: v for k, v in config.pop("extra")["falco_probes"].items()
                if k in ("drivers_repo", "page_budget")}
    settings.update(options)
    settings.update(catalog=str(catalog),
                    config=str(probes_yaml or root / "absent.yaml"))
    config["plugins"] = ["search", {"falco-probes": settings}]
    root.mkdir(parents=True, exist_ok=True)
    path = root / "mkdocs-plugin.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    out = site or root / "site-plugin"
    build(load_config(config_file=str(path), site_dir=str(out), strict=True))
    return out
