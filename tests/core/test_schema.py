"""core/schema.py: a Schema turns one raw mapping into clean values or reports every problem
with it, located; the reusable checks; printable text for terminals and pages."""

from __future__ import annotations

import pytest

from builder.core.errors import Problem
from builder.core.schema import (
    Field,
    Schema,
    Where,
    each,
    in_range,
    matches,
    one_line,
    one_of,
    printable,
    short,
)

SCHEMA = Schema("thing", [
    Field("name", str, check=matches(r"[a-z]+", "lowercase letters", 8)),
    Field("size", int, check=in_range(1, 10)),
    Field("version", str, required=False, default="", coerce_str=True),
    Field("tags", list, required=False, default=[], check=each(one_of("a", "b"))),
])
WHERE = Where("things.yaml", 3, "first")


def parse(raw: object) -> tuple[dict[str, object] | None, list[Problem]]:
    problems: list[Problem] = []
    return SCHEMA.parse(raw, WHERE, problems, {"size": 5}), problems


def test_a_good_mapping_gets_its_defaults_and_coerced_scalars() -> None:
    clean, problems = parse({"name": "abc", "size": 3, "version": 1})
    assert problems == []
    assert clean == {"name": "abc", "size": 3, "version": "1", "tags": []}


def test_every_problem_is_reported_with_its_place() -> None:
    clean, problems = parse({"nmae": "abc", "size": True, "tags": ["a", "c"], "extra": 1})
    assert clean is None
    assert [(p.field, p.message) for p in problems] == [
        ("nmae", "unknown key 'nmae' in thing; did you mean 'name'? (allowed: name, size, "
                 "version, tags)"),
        ("extra", "unknown key 'extra' in thing (allowed: name, size, version, tags)"),
        ("name", "missing required key 'name'"),
        ("size", "must be an integer, got a boolean True"),
        ("tags", "item 1: 'c' is not allowed; use one of: a, b")]
    size = next(p for p in problems if p.field == "size")
    assert str(size) == "things.yaml:5: record first field 'size': must be an integer, got a " \
                        "boolean True"  # the key's own line, not the record's


def test_not_a_mapping_at_all() -> None:
    clean, problems = parse(["name"])
    assert clean is None
    assert [str(p) for p in problems] == [
        "things.yaml:3: record first: expected thing as a mapping, got a list"]


def test_null_is_missing() -> None:
    clean, problems = parse({"name": "abc", "size": None})
    assert clean is None and [p.message for p in problems] == ["missing required key 'size'"]


@pytest.mark.parametrize(("value", "wrong"), [
    ("abc", None),
    ("", "must not be empty (lowercase letters)"),
    ("abcdefghi", "is 9 characters long; at most 8 allowed"),
    ("ab1", "'ab1' is not allowed: lowercase letters"),
    ("ａｂ", "'ａｂ' is not allowed: lowercase letters"),   # no full-width letters
])
def test_matches(value: str, wrong: str | None) -> None:
    assert matches(r"[a-z]+", "lowercase letters", 8)(value) == wrong


def test_in_range_shows_huge_values_shortened() -> None:
    check = in_range(1, 10)
    assert check(10) is None and check(1) is None
    assert check(0) == "must be from 1 to 10, got 0"
    assert (check(10 ** 400) or "").startswith("must be from 1 to 10, got 1000")
    assert len(check(10 ** 400) or "") < 60


def test_printable_escapes_what_a_terminal_would_obey() -> None:
    assert printable("plain text: é, 日本") == "plain text: é, 日本"
    assert printable("a\x1b]52;c;x\x07b\r\n\u202ec\U000e0001") == \
        "a\\x1b]52;c;x\\x07b\\x0d\\x0a\\u202ec\\U000e0001"
    assert one_line("error:\n  first\tline\x1b[2J", 20) == "error: first line\\x1"


def test_short_cuts_long_values_and_quotes_them() -> None:
    assert short("abc") == "'abc'"
    assert short("x" * 100, 10) == "'xxxxxx..."
    assert len(short(list(range(1000)))) == 60
