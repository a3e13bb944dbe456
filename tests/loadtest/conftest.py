"""The session's one real probe (tests/helpers/realprobe.py), for the load test's tests
that read or load a real object. Tests using it are marked slow: it is a real compile."""

from __future__ import annotations

from pathlib import Path

import pytest
from realprobe import compiled_probe


@pytest.fixture(scope="module")
def real_probe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Debian-packaged driver source compiled against a real Debian 6.1 kernel."""
    result = compiled_probe(tmp_path_factory.getbasetemp())
    assert result.probe is not None
    return result.probe
