"""core/errors.py: located problems and the exit code of each kind of error."""

from __future__ import annotations

from builder.core.errors import ConflictError, StoreError


def test_conflict_error_type_is_exit_3() -> None:
    assert ConflictError("x").exit_code == 3 and StoreError("x").exit_code == 4
