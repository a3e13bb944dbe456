"""core/paths.py: where falco-probes looks by default, and how the environment moves it."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.core.paths import (
    CATALOG_ENV,
    CONFIG_ENV,
    apt_cache,
    cache_root,
    default_catalog,
    default_config,
)


def test_the_cache_follows_xdg_unless_given(monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "falco-probes"
    assert apt_cache() == tmp_path / "xdg" / "falco-probes" / "apt"
    assert cache_root(tmp_path / "given") == tmp_path / "given"
    assert apt_cache(tmp_path / "given") == tmp_path / "given" / "apt"
    monkeypatch.setenv("XDG_CACHE_HOME", "")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root() == tmp_path / "home" / ".cache" / "falco-probes"


def test_catalog_and_config_default_to_the_working_directory(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CATALOG_ENV, raising=False)   # the suite's autouse fixture sets it
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    assert (default_catalog(), default_config()) == (Path("catalog"), Path("probes.yaml"))
    monkeypatch.setenv(CATALOG_ENV, "/srv/catalog")
    monkeypatch.setenv(CONFIG_ENV, "/etc/probes.yaml")
    assert (default_catalog(), default_config()) == (Path("/srv/catalog"),
                                                     Path("/etc/probes.yaml"))
    assert (CATALOG_ENV, CONFIG_ENV) == ("FALCO_PROBES_CATALOG", "FALCO_PROBES_CONFIG")
