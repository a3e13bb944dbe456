"""`mkdocs build --strict` of the repository's mkdocs.yml, on a catalog of the test's."""

from __future__ import annotations

import os
from pathlib import Path

from testpaths import ROOT

MKDOCS_YML = ROOT / "mkdocs.yml"


def mkdocs_build(site: Path, catalog: Path, probes_yaml: Path | None,
                 config_file: Path = MKDOCS_YML) -> None:
    """mkdocs build --strict through its Python API, with the plugin's env overrides."""
    from mkdocs.commands.build import build
    from mkdocs.config import load_config

    env = {"FALCO_PROBES_CATALOG": str(catalog),
           "FALCO_PROBES_CONFIG": str(probes_yaml or site.parent / "absent.yaml")}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        build(load_config(config_file=str(config_file), site_dir=str(site), strict=True))
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
