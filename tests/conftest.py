"""Suite-wide fixtures. Helpers the tests import live in tests/helpers/ (on pytest's
pythonpath); fixtures used by one folder's tests live in that folder's conftest.py."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hostileserver import Hostile
from loopback import serving

from builder import ui


@pytest.fixture(autouse=True)
def _own_catalog(tmp_path_factory: pytest.TempPathFactory,
                 monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Tests never read or write the repository's catalog/: the default points elsewhere."""
    root = tmp_path_factory.mktemp("default-catalog")
    monkeypatch.setenv("FALCO_PROBES_CATALOG", str(root))
    yield root


@pytest.fixture(autouse=True, scope="session")
def _own_catalog_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The parsed-catalog cache and its key live in the session's folders, never in the
    user's ~/.cache and ~/.config (subprocesses of commands inherit them)."""
    saved = {name: os.environ.get(name) for name in ("FALCO_PROBES_CATALOG_CACHE",
                                                     "XDG_CONFIG_HOME")}
    os.environ["FALCO_PROBES_CATALOG_CACHE"] = str(tmp_path_factory.mktemp("catalog-cache"))
    os.environ["XDG_CONFIG_HOME"] = str(tmp_path_factory.mktemp("config"))
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(autouse=True, scope="session")
def _library_messages_on_stderr() -> None:
    """The library's messages (logger "builder") on stderr, as every command shows them,
    whichever test runs first: tests that call the library read them with capsys."""
    ui.show_library_messages()


@pytest.fixture(scope="module")
def hostile() -> Iterator[str]:
    """The base URL of an attacker's server (tests/helpers/hostileserver.py), used by the
    fetch, kernel list, verify and mirror tests alike."""
    with serving(Hostile) as url:
        yield url
