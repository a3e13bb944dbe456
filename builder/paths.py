"""Where falco-probes keeps its caches, in one place.

One cache root (`--cache` of every command, default $XDG_CACHE_HOME/falco-probes)
holds the apt state (apt/), downloads, driver sources and sysroots.
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
