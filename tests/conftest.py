"""Suite-wide fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _own_catalog(tmp_path_factory: pytest.TempPathFactory,
                 monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Tests never read or write the repository's catalog/: the default points elsewhere."""
    root = tmp_path_factory.mktemp("default-catalog")
    monkeypatch.setenv("FALCO_PROBES_CATALOG", str(root))
    yield root
