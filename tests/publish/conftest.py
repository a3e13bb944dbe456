"""The fake GitHub (tests/helpers/fakegithub/) the GitHub store tests publish to."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fakegithub import FakeGitHub
from githubstore import TOKEN


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    """A fake GitHub whose token is githubstore.TOKEN, holding the repository acme/probes."""
    with FakeGitHub(token=TOKEN, owner="acme", repo="probes") as server:
        yield server
