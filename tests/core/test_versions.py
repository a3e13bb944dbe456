"""core/versions.py: Falco versions and which driver version each release loads."""

from __future__ import annotations

import pytest

from builder.core.errors import InputError
from builder.core.versions import FalcoVersion


def test_versions_are_ascii() -> None:
    with pytest.raises(InputError, match="is not a version like"):
        FalcoVersion.parse("０.３６.２")
