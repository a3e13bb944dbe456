"""core/jsonio.py: JSON documents and JSON Lines read safely, every way they can be wrong
located (line and column, or the line of a JSON Lines file)."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.core.errors import InputError
from builder.core.jsonio import iter_json_lines, parse_json


def test_a_document_parses() -> None:
    assert parse_json('{"a": [1, 2.5, "x", null, true]}', "doc.json") == {
        "a": [1, 2.5, "x", None, True]}
    assert parse_json(b'["\\u00e9"]', "doc.json") == ["é"]


@pytest.mark.parametrize(("text", "message"), [
    ('{"a": 1,\n "b": }', "doc.json:2: invalid JSON: Expecting value (column 7)"),
    ('{"a": NaN}', "doc.json: invalid JSON: NaN is not a number JSON allows"),
    ('[-Infinity]', "doc.json: invalid JSON: -Infinity is not a number JSON allows"),
    ("[" + "9" * 5000 + "]", "doc.json: invalid JSON: Exceeds the limit (4300 digits)"),
    ("[" * 5000 + "]" * 5000, "doc.json: invalid JSON: nested too deeply to read"),
    ('{"a": ' + "[" * 200, "doc.json: invalid JSON: nested too deeply to read"),
])
def test_what_is_refused(text: str, message: str) -> None:
    with pytest.raises(InputError) as refused:
        parse_json(text, "doc.json")
    assert refused.value.message.startswith(message), refused.value.message


def test_a_document_of_too_many_values_is_refused_before_parsing(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FALCO_PROBES_LIMIT_JSON_VALUES", "100")
    assert parse_json("[" + ",".join(["1"] * 99) + "]", "doc.json") == [1] * 99
    with pytest.raises(InputError, match="doc.json: more than 100 commas and brackets: too many "
                                         r"JSON values to read \(set "
                                         "FALCO_PROBES_LIMIT_JSON_VALUES to allow more\\)"):
        parse_json("[" + ",".join(["{}"] * 101) + "]", "doc.json")


def test_json_lines_skip_blank_lines_and_keep_their_numbers(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text('{"n": 1}\n\n   \n{"n": 2}\n{"n": 3}')   # no final newline either
    assert list(iter_json_lines(path)) == [(1, {"n": 1}), (4, {"n": 2}), (5, {"n": 3})]


@pytest.mark.parametrize(("data", "message"), [
    (b'{"n": 1}\n{"n": \n', ":2: invalid JSON: Expecting value (column 7)"),
    (b'{"n": 1}\n{"n": "\xff"}\n', ":2: not UTF-8 (byte 7)"),
    (b'{"n": 1}\n' + b" " * 2000 + b"{}\n", ":2: is 2002 bytes; one line of a fragment"),
], ids=["not JSON", "not UTF-8", "too long"])
def test_a_bad_line_is_named_and_the_format_said(tmp_path: Path, data: bytes, message: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FALCO_PROBES_LIMIT_JSON_LINE", "1K")
    path = tmp_path / "r.jsonl"
    path.write_bytes(data)
    lines = iter_json_lines(path)
    assert next(lines) == (1, {"n": 1})
    with pytest.raises(InputError) as refused:
        next(lines)
    assert refused.value.message.startswith(f"{path}{message}"), refused.value.message
