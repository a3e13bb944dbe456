"""Declarative checks for the mappings we read (catalog records, fragments, probes.yaml).

A `Schema` is a list of `Field`s. `Schema.parse` turns one raw mapping into a
clean dict or reports every problem with it: unknown keys (with "did you
mean"), missing keys, wrong types and values a field's check refuses. The
records module turns the clean dicts into frozen dataclasses.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from builder.core.errors import Problem

Check = Callable[[Any], str | None]  # returns what is wrong, or None when fine

_TYPE_NAMES = {str: "a string", int: "an integer", bool: "true or false",
               list: "a list", dict: "a mapping", float: "a number"}


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    kind: type
    required: bool = True
    check: Check | None = None
    default: Any = None
    # Scalars YAML may type differently than we mean (kernel version `1`, `5.10`).
    coerce_str: bool = False


@dataclass(frozen=True, slots=True)
class Where:
    """Where a mapping came from, for messages: file, line, record label."""

    path: str
    line: int | None = None
    record: str | None = None

    def problem(self, message: str, field: str | None = None,
                line: int | None = None) -> Problem:
        return Problem(self.path, message, line or self.line, self.record, field)


class Schema:
    def __init__(self, name: str, fields: list[Field]) -> None:
        self.name = name
        self.fields = fields
        self.by_name = {f.name: f for f in fields}

    def parse(self, raw: object, where: Where, problems: list[Problem],
              lines: Mapping[str, int] | None = None) -> dict[str, Any] | None:
        """Validate `raw`; append problems; return clean values or None if any problem."""
        if not isinstance(raw, dict):
            problems.append(where.problem(f"expected {self.name} as a mapping, "
                                          f"got {type_name(raw)}"))
            return None
        before = len(problems)
        lines = lines or {}
        clean: dict[str, Any] = {}
        for key in raw:
            if key not in self.by_name:
                problems.append(where.problem(self._unknown(key), str(key), lines.get(str(key))))
        for spec in self.fields:
            line = lines.get(spec.name)
            if spec.name not in raw or raw[spec.name] is None:
                if spec.required:
                    problems.append(where.problem(f"missing required key {spec.name!r}",
                                                  spec.name))
                else:
                    clean[spec.name] = spec.default
                continue
            value = raw[spec.name]
            if spec.coerce_str and isinstance(value, int | float) and not isinstance(value, bool):
                value = str(value)
            if not _is_kind(value, spec.kind):
                problems.append(where.problem(
                    f"must be {_TYPE_NAMES.get(spec.kind, spec.kind.__name__)}, "
                    f"got {type_name(value)} {short(value)}", spec.name, line))
                continue
            if spec.check is not None:
                wrong = spec.check(value)
                if wrong:
                    problems.append(where.problem(wrong, spec.name, line))
                    continue
            clean[spec.name] = value
        return clean if len(problems) == before else None

    def _unknown(self, key: object) -> str:
        allowed = ", ".join(self.by_name)
        guess = difflib.get_close_matches(str(key), list(self.by_name), n=1, cutoff=0.6)
        hint = f"; did you mean {guess[0]!r}?" if guess else ""
        return f"unknown key {short(key)} in {self.name}{hint} (allowed: {allowed})"


def _is_kind(value: object, kind: type) -> bool:
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, kind)


def type_name(value: object) -> str:
    if value is None:
        return "nothing"
    return {str: "a string", int: "an integer", bool: "a boolean", float: "a number",
            list: "a list", dict: "a mapping"}.get(type(value), type(value).__name__)


def short(value: object, limit: int = 60) -> str:
    """repr() cut to a readable length: error messages quote hostile values safely."""
    text = repr(value) if not isinstance(value, str) or len(value) <= limit else repr(value[:limit])
    return text if len(text) <= limit else text[: limit - 3] + "..."


def printable(text: str) -> str:
    """`text` with every character a terminal or page could obey (ESC, CR, LF, bidi
    overrides and other control or format characters) written as a visible escape."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _escape(c) for c in text)


def _escape(char: str) -> str:
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def one_line(text: str, max_len: int) -> str:
    """Free text (a compiler's message, a server's answer) as one printable line."""
    return printable(" ".join(text.split()))[:max_len]


# --- reusable checks -------------------------------------------------------

def matches(pattern: str, what: str, max_len: int = 200) -> Check:
    compiled = re.compile(pattern, re.ASCII)  # \d, \w: ASCII; never full-width digits

    def check(value: Any) -> str | None:
        if not isinstance(value, str):
            return None
        if not value:
            return f"must not be empty ({what})"
        if len(value) > max_len:
            return f"is {len(value)} characters long; at most {max_len} allowed"
        if compiled.fullmatch(value) is None:
            return f"{short(value)} is not allowed: {what}"
        return None

    return check


def longest(max_len: int) -> Check:
    def check(value: Any) -> str | None:
        return f"is {len(value)} characters long; at most {max_len} allowed" \
            if len(value) > max_len else None

    return check


def one_of(*allowed: object) -> Check:
    def check(value: Any) -> str | None:
        if value in allowed:
            return None
        return f"{short(value)} is not allowed; use one of: {', '.join(map(str, allowed))}"

    return check


def each(inner: Check) -> Check:
    def check(value: Any) -> str | None:
        for i, item in enumerate(value):
            wrong = inner(item)
            if wrong:
                return f"item {i}: {wrong}"
        return None

    return check


def in_range(low: int, high: int) -> Check:
    """An integer from `low` to `high`: values enter bounded, so no later sum or date overflows."""

    def check(value: Any) -> str | None:
        if low <= value <= high:
            return None
        shown = value if abs(value) < 10 ** 30 else short(value, 20)
        return f"must be from {low} to {high}, got {shown}"

    return check


def positive(value: Any) -> str | None:
    return None if value > 0 else f"must be greater than 0, got {value}"


def non_negative(value: Any) -> str | None:
    return None if value >= 0 else f"must be 0 or more, got {value}"
