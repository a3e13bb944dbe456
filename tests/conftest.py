"""Suite-wide fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from builder import ui


@pytest.fixture(autouse=True)
def _own_catalog(tmp_path_factory: pytest.TempPathFactory,
                 monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Tests never read or write the repository's catalog/: the default points elsewhere."""
    root = tmp_path_factory.mktemp("default-catalog")
    monkeypatch.setenv("FALCO_PROBES_CATALOG", str(root))
    yield root


@pytest.fixture(autouse=True, scope="session")
def _library_messages_on_stderr() -> None:
    """The library's messages (logger "builder") on stderr, as every command shows them,
    whichever test runs first: tests that call the library read them with capsys."""
    ui.show_library_messages()
