"""core/errors.py: located problems and the exit code of each kind of error."""

from __future__ import annotations

import pytest

from builder.core.errors import (
    EXIT_BAD_INPUT,
    EXIT_BUILD,
    BuildError,
    ConflictError,
    InputError,
    ProbesError,
    Problem,
    ProblemsError,
    SourceLayoutError,
    StoreError,
)


def test_conflict_error_type_is_exit_3() -> None:
    assert ConflictError("x").exit_code == 3 and StoreError("x").exit_code == 4


@pytest.mark.parametrize(("problem", "text"), [
    (Problem("c.yaml", "bad"), "c.yaml: bad"),
    (Problem("c.yaml", "bad", 3), "c.yaml:3: bad"),
    (Problem("c.yaml", "bad", 3, "6.1.0-1 #1"), "c.yaml:3: record 6.1.0-1 #1: bad"),
    (Problem("c.yaml", "bad", None, None, "size"), "c.yaml: field 'size': bad"),
    (Problem("c.yaml", "bad", 3, "r", "size"), "c.yaml:3: record r field 'size': bad"),
])
def test_a_problem_says_where_it_is(problem: Problem, text: str) -> None:
    assert str(problem) == text


def test_many_problems_read_as_the_first_and_a_count() -> None:
    error = ProblemsError([Problem("a", "x", 1), Problem("a", "y", 2), Problem("b", "z")],
                          hint="fix them")
    assert (error.message, error.hint) == ("a:1: x (and 2 more)", "fix them")
    assert [str(p) for p in error.problems] == ["a:1: x", "a:2: y", "b: z"]
    assert ProblemsError([Problem("a", "x")]).message == "a: x"
    assert isinstance(error, InputError) and error.exit_code == EXIT_BAD_INPUT


def test_every_error_the_user_can_fix_is_a_probes_error_with_its_exit_code() -> None:
    codes = {cls: cls("m").exit_code for cls in (InputError, ConflictError, StoreError,
                                                 BuildError, SourceLayoutError)}
    assert codes == {InputError: 2, ConflictError: 3, StoreError: 4, BuildError: 5,
                     SourceLayoutError: EXIT_BUILD}
    assert all(issubclass(cls, ProbesError) for cls in codes)
    assert 1 not in codes.values()   # 1 is a negative answer, never an error
