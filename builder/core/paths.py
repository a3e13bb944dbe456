"""Where falco-probes finds its files by default, in one place.

The catalog and probes.yaml (./catalog and ./probes.yaml, or the environment),
and one cache root (`--cache` of every command, default
$XDG_CACHE_HOME/falco-probes) holding the apt state (apt/), downloads, driver
sources and sysroots.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_root(given: Path | None = None) -> Path:
    """`given`, else $XDG_CACHE_HOME/falco-probes (~/.cache/falco-probes)."""
    if given is not None:
        return given
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "falco-probes"


def apt_cache(root: Path | None = None) -> Path:
    """The private apt state folders live under the cache root."""
    return cache_root(root) / "apt"


CATALOG_ENV = "FALCO_PROBES_CATALOG"
CONFIG_ENV = "FALCO_PROBES_CONFIG"


def default_catalog() -> Path:
    """The catalog folder: $FALCO_PROBES_CATALOG, else ./catalog (the repo's, run from its root)."""
    return Path(os.environ.get(CATALOG_ENV) or "catalog")


def default_config() -> Path:
    return Path(os.environ.get(CONFIG_ENV) or "probes.yaml")
