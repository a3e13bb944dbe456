"""The catalog's own YAML form, read at the speed of a tokenizer.

`catalog merge` writes every catalog file in one canonical form (yamlio.block): comment
lines, `key: scalar` header lines, then `probes:` and `failures:` each followed by one
`- {flow mapping}` line per record, scalars plain only when YAML reads them as the
same string, else double-quoted ASCII with `\\"`, `\\\\`, `\\uXXXX` and `\\UXXXXXXXX`
escapes. `read` parses exactly that form and nothing else: any other spelling (a hand
edit, a hostile file, a YAML feature we never write) returns None, and the caller
falls back to the strict safe YAML loader (yamlio.load_text), which reads it or says
what is wrong. For everything it accepts, `read` gives what the safe loader gives:
plain scalars are typed by PyYAML's own implicit resolvers, and a value they would
turn into anything we never write (a float, a date, `yes`) is not accepted here.

It is several times faster than libyaml through PyYAML (whose resolver and
constructor run in Python for every scalar): one regular expression splits a line
into tokens, and a small recursive reader builds the values.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

_TOKEN = re.compile(r'"(?:[^"\\\n]|\\.)*"|[A-Za-z0-9][A-Za-z0-9_.+~/-]*|[{}\[\]]|, |: ')
_QUOTED_OK = re.compile(r'"(?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\["\\]|\\u[0-9a-f]{4}'
                        r'|\\U[0-9a-f]{8})*"')
_ESCAPE = re.compile(r'\\(["\\]|u[0-9a-f]{4}|U[0-9a-f]{8})')
_HEADER = re.compile(r"([a-z_]+): (.*)")
_LIST_KEY = re.compile(r"[a-z_]+:")
_DECIMAL = re.compile(r"-?(0|[1-9][0-9]*)")
_RESOLVERS = yaml.resolver.Resolver.yaml_implicit_resolvers
_STR = "tag:yaml.org,2002:str"
_NOT_CANONICAL = object()


class NotCanonical(Exception):
    """The text is not in the canonical form; read it with the YAML loader instead."""


def read(text: str, max_nodes: int) -> dict[str, Any] | None:
    """The document, as the safe YAML loader would give it; None if not canonical, or if
    it holds more than `max_nodes` values (the YAML loader then says so)."""
    try:
        return _document(text.split("\n"), max_nodes)
    except (NotCanonical, IndexError, RecursionError, ValueError):
        return None  # ValueError: an integer longer than Python converts


def _document(lines: list[str], max_nodes: int) -> dict[str, Any]:
    if lines[-1] != "":
        raise NotCanonical  # render() ends every file with a newline
    doc: dict[str, Any] = {}
    current: list[Any] | None = None
    words = 0
    for line in lines[:-1]:
        if line.startswith("- {"):
            if current is None:
                raise NotCanonical
            item, count = _line_mapping(line)
            current.append(item)
            words += count
            if words > max_nodes:  # a value takes at least one word
                raise NotCanonical
        elif line.startswith("#"):
            if doc:
                raise NotCanonical  # comments only before the first key
        else:
            if current is not None and not current:
                raise NotCanonical  # `key:` with no item is null to YAML; we write `[]`
            current = _header_line(line, doc)
    if current is not None and not current:
        raise NotCanonical
    return doc


def _header_line(line: str, doc: dict[str, Any]) -> list[Any] | None:
    """`key: scalar`, `key: []` or `key:` (its items follow); the list items go into."""
    current: list[Any] | None = None
    if _LIST_KEY.fullmatch(line):
        key, items = line[:-1], list[Any]()
        current = items
        value: Any = items
    else:
        match = _HEADER.fullmatch(line)
        if match is None:
            raise NotCanonical
        key, text = match.groups()
        value = [] if text == "[]" else _scalar_text(text)
    if key in doc:
        raise NotCanonical  # the YAML loader reports the duplicate with its line
    doc[key] = value
    return current


def _scalar_text(text: str) -> Any:
    tokens = _TOKEN.findall(text)
    if "".join(tokens) != text or len(tokens) != 1:
        raise NotCanonical
    return _scalar(tokens[0])


def _line_mapping(line: str) -> tuple[dict[str, Any], int]:
    """The record on a `- {...}` line, and how many tokens it took."""
    tokens = _TOKEN.findall(line, 2)
    if sum(map(len, tokens)) != len(line) - 2:
        raise NotCanonical  # something the tokenizer skipped: not our spelling
    value, end = _value(tokens, 0)
    if end != len(tokens) or not isinstance(value, dict):
        raise NotCanonical
    return value, len(tokens)


def _value(tokens: list[str], i: int) -> tuple[Any, int]:
    word = tokens[i]
    if word == "{":
        return _mapping(tokens, i + 1)
    if word == "[":
        return _sequence(tokens, i + 1)
    if word in ("}", "]", ", ", ": "):
        raise NotCanonical
    return _scalar(word), i + 1


def _mapping(tokens: list[str], i: int) -> tuple[dict[str, Any], int]:
    out: dict[str, Any] = {}
    if tokens[i] == "}":
        return out, i + 1
    while True:
        key = tokens[i]
        if key[0] in '"{}[],: ' or tokens[i + 1] != ": ":
            raise NotCanonical
        name = _scalar(key)
        if not isinstance(name, str) or name in out:
            raise NotCanonical
        out[name], i = _value(tokens, i + 2)
        if tokens[i] == "}":
            return out, i + 1
        if tokens[i] != ", ":
            raise NotCanonical
        i += 1


def _sequence(tokens: list[str], i: int) -> tuple[list[Any], int]:
    out: list[Any] = []
    if tokens[i] == "]":
        return out, i + 1
    while True:
        item, i = _value(tokens, i)
        out.append(item)
        if tokens[i] == "]":
            return out, i + 1
        if tokens[i] != ", ":
            raise NotCanonical
        i += 1


def _scalar(word: str) -> Any:
    if word[0] == '"':
        if _QUOTED_OK.fullmatch(word) is None:
            raise NotCanonical
        return _ESCAPE.sub(_unescape, word[1:-1])
    found = _plain(word)
    if found is _NOT_CANONICAL:
        raise NotCanonical
    return found


def _unescape(match: re.Match[str]) -> str:
    escape = match.group(1)
    return escape if len(escape) == 1 else chr(int(escape[1:], 16))


_plain_cache: dict[str, Any] = {}


def _plain(word: str) -> Any:
    """A plain scalar as PyYAML's resolver types it; _NOT_CANONICAL for a type we never
    write (float, timestamp, an int or bool in another spelling)."""
    found = _plain_cache.get(word, _plain_cache)
    if found is not _plain_cache:
        return found
    tag = next((tag for tag, regexp in _RESOLVERS.get(word[0], ())
                if regexp.match(word)), _STR)
    if tag == _STR:
        value: Any = word
    elif tag.endswith(":int") and _DECIMAL.fullmatch(word):
        value = int(word)
    elif tag.endswith(":bool") and word in ("true", "false"):
        value = word == "true"
    elif tag.endswith(":null") and word == "null":
        value = None
    else:
        value = _NOT_CANONICAL
    if len(_plain_cache) < 100_000:  # repeated values (versions, tags, commits) come back
        _plain_cache[word] = value
    return value
