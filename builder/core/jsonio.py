"""JSON read safely: one document or JSON Lines, every way it can be wrong located.

Refused before or while parsing: syntax errors (with line and column), nesting
deeper than Python recurses, more values than limits.JSON_VALUES, integers longer
than Python converts, NaN and Infinity, lines longer than limits.JSON_LINE.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from builder.core import limits
from builder.core.errors import InputError
from builder.core.files import decode_text, read_bytes
from builder.core.limits import Limit


def parse_json(text: str | bytes, where: str, *, lines: bool = True) -> Any:
    """One JSON document; every way it can be wrong is an InputError naming `where`.

    Refused: syntax errors (with line and column), nesting deeper than Python
    recurses, integers longer than Python converts, NaN and Infinity.
    """
    _require_few_values(text, where)
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        # Python 3.13's parser gives up on deep nesting with "Expecting value", 3.11's
        # with RecursionError: say the same thing whichever runs.
        if _depth(text[: exc.pos]) > _DEEP:
            raise InputError(f"{where}: invalid JSON: nested too deeply to read") from None
        line = f":{exc.lineno}" if lines else ""
        raise InputError(f"{where}{line}: invalid JSON: {exc.msg} (column {exc.colno})"
                         ) from None
    except RecursionError:
        raise InputError(f"{where}: invalid JSON: nested too deeply to read") from None
    except ValueError as exc:  # long integers; undecodable bytes
        raise InputError(f"{where}: invalid JSON: {str(exc).split(';')[0]}") from None


_DEEP = 100  # our documents nest a few levels; past this a parse error is about depth


_JSON_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def _depth(text: str | bytes) -> int:
    """How deeply the brackets of `text` nest (strings skipped)."""
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    depth = deepest = 0
    for token in _JSON_TOKENS.finditer(data):
        mark = token.group()
        if mark in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        elif mark in (b"]", b"}"):
            depth -= 1
    return deepest


def _require_few_values(text: str | bytes, where: str) -> None:
    """Refuse a document of more than limits.JSON_VALUES values before it is parsed: each
    costs tens of bytes once built, and `[{},{},...]` makes one of every three characters.
    Commas and brackets bound the count from above, at C speed."""
    cap = limits.JSON_VALUES.get()
    if len(text) <= cap:
        return
    if isinstance(text, str):
        marks = text.count(",") + text.count("[") + text.count("{")
    else:
        marks = text.count(b",") + text.count(b"[") + text.count(b"{")
    if marks > cap:
        raise InputError(f"{where}: more than {cap} commas and brackets: too many JSON values "
                         f"to read (set {limits.JSON_VALUES.env} to allow more)")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def iter_json_lines(path: Path, limit: Limit = limits.JSON_LINES) -> Iterator[tuple[int, Any]]:
    """(line number, parsed object) per non-blank line; InputError naming the line when a
    line is not UTF-8, not JSON, or longer than limits.JSON_LINE."""
    data = read_bytes(path, limit)
    line_cap = limits.JSON_LINE.get()
    start = 0
    for number in itertools.count(1):  # line by line, never a second copy of the file
        if start >= len(data):
            return
        end = data.find(b"\n", start)
        end = len(data) if end < 0 else end
        raw, start = data[start:end], end + 1
        if not raw.strip():
            continue
        where = f"{path}:{number}"
        if len(raw) > line_cap:
            raise limits.JSON_LINE.exceeded(where, len(raw))
        try:
            yield number, parse_json(decode_text(raw, where, lines=False), where, lines=False)
        except InputError as exc:
            raise InputError(exc.message, hint="fragments and reports are JSON Lines: one "
                                               "JSON object per line") from None
