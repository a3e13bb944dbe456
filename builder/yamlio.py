"""Safe YAML in, deterministic one-record-per-line YAML out, atomic writes.

Loading only ever uses the safe loaders (libyaml's C one when present).
Writing does not go through PyYAML's emitter: catalog lines are flow
mappings we format ourselves so that one probe is one greppable line and the
same records always give the same bytes. Every scalar is written plain only
when YAML would read it back as the same string; otherwise it is written as an
ASCII double-quoted scalar with escapes.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from .errors import InputError, Problem

try:  # libyaml is an optional speed-up; the pure loader is just as safe
    SafeLoader: type[yaml.SafeLoader] = yaml.CSafeLoader  # type: ignore[assignment]
except AttributeError:  # pragma: no cover - depends on how PyYAML was built
    SafeLoader = yaml.SafeLoader

_PLAIN_OK = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+~/-]*")
_QUOTE_AS_IS = re.compile(r'[\x20-\x21\x23-\x5b\x5d-\x7e]*')  # printable ASCII but " and \\
_resolver = yaml.resolver.Resolver()


def _plain_is_string(text: str) -> bool:
    if _PLAIN_OK.fullmatch(text) is None:
        return False
    tag = _resolver.resolve(yaml.ScalarNode, text, (True, False))  # type: ignore[no-untyped-call]
    return bool(tag == "tag:yaml.org,2002:str")


def scalar(value: Any) -> str:
    """One YAML scalar that reads back as `value` (str, int, bool or None)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    text = str(value)
    if _plain_is_string(text):
        return text
    return quoted(text)


def _escape(char: str) -> str:
    if char == '"' or char == "\\":
        return "\\" + char
    code = ord(char)
    if 0x20 <= code < 0x7F:
        return char
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def quoted(text: str) -> str:
    """A double-quoted YAML scalar in plain ASCII; non-BMP characters as \\U escapes."""
    if _QUOTE_AS_IS.fullmatch(text):
        return f'"{text}"'
    return '"' + "".join(_escape(c) for c in text) + '"'


def flow(value: Any) -> str:
    """A flow-style YAML rendering of scalars, lists and mappings on one line."""
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{scalar(k)}: {flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(flow(v) for v in value) + "]"
    return scalar(value)


def block(header_comment: str, top: Mapping[str, Any],
          sequences: Mapping[str, Iterable[Mapping[str, Any]]]) -> str:
    """A document: a comment, top-level scalars, then sequences of one-line mappings."""
    out = [f"# {line}".rstrip() for line in header_comment.splitlines()]
    out += [f"{scalar(k)}: {flow(v)}" for k, v in top.items()]
    for key, items in sequences.items():
        rows = [f"- {flow(item)}" for item in items]
        out.append(f"{scalar(key)}:" + ("" if rows else " []"))
        out += rows
    return "\n".join(out) + "\n"


class YamlSyntaxError(InputError):
    """Malformed YAML; `problem` says where."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem), hint="fix the YAML syntax at that line")
        self.problem = problem


def load_text(text: str, path: str) -> Any:
    """Parse YAML text safely; raise YamlSyntaxError naming the file and line."""
    try:
        return yaml.load(text, Loader=SafeLoader)  # noqa: S506 - SafeLoader (C or pure)
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(_yaml_problem(exc, path)) from exc


def load_file(path: Path) -> Any:
    return load_text(read_text(path), str(path))


def read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise InputError(f"{path}: no such file") from exc
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from exc
    if b"\x00" in data:
        raise InputError(f"{path}: contains a NUL byte; not a text file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 (byte {exc.start})") from exc


def _yaml_problem(exc: yaml.YAMLError, path: str) -> Problem:
    mark = getattr(exc, "problem_mark", None)
    line = mark.line + 1 if mark is not None else None
    what = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    message = f"invalid YAML: {what}" + (f" ({context})" if context else "")
    return Problem(path, message, line)


_PLAIN_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")
LineMaps = tuple[Any, dict[int, dict[str, int]], dict[int, int]]


def compose_with_lines(text: str, path: str) -> LineMaps:
    """Load YAML and remember lines: per mapping (by id) its keys' lines, per node its line.

    Used where we must point at a line (catalog check, probes.yaml); the fast
    path for big catalogs is `load_text`.
    """
    try:
        node = yaml.compose(text, Loader=SafeLoader)
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(_yaml_problem(exc, path)) from exc
    if node is None:
        return None, {}, {}
    key_lines: dict[int, dict[str, int]] = {}
    node_lines: dict[int, int] = {}
    constructor = yaml.constructor.SafeConstructor()

    def build(n: yaml.Node) -> Any:
        if isinstance(n, yaml.MappingNode | yaml.SequenceNode) and n.tag not in _PLAIN_TAGS:
            raise YamlSyntaxError(Problem(path, f"tag {n.tag!r} is not allowed (safe YAML only)",
                                          n.start_mark.line + 1))
        if isinstance(n, yaml.MappingNode):
            out: dict[Any, Any] = {}
            lines: dict[str, int] = {}
            constructor.flatten_mapping(n)
            for key_node, value_node in n.value:
                key = build(key_node)
                if not isinstance(key, str | int | float | bool) and key is not None:
                    raise YamlSyntaxError(Problem(path, "mapping keys must be scalars",
                                                  key_node.start_mark.line + 1))
                if key in out:
                    raise YamlSyntaxError(Problem(path, f"duplicate key {key!r}",
                                                  key_node.start_mark.line + 1))
                out[key] = build(value_node)
                lines[str(key)] = key_node.start_mark.line + 1
            key_lines[id(out)] = lines
            node_lines[id(out)] = n.start_mark.line + 1
            return out
        if isinstance(n, yaml.SequenceNode):
            seq = [build(v) for v in n.value]
            node_lines[id(seq)] = n.start_mark.line + 1
            return seq
        return constructor.construct_object(n, deep=True)

    try:
        data = build(node)
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(_yaml_problem(exc, path)) from exc
    return data, key_lines, node_lines


def atomic_write(path: Path, data: bytes | str) -> bool:
    """Write via a temp file and rename; skip (return False) when content is unchanged."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    with contextlib.suppress(OSError):
        if path.stat().st_size == len(payload) and path.read_bytes() == payload:
            return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return True


def fsync_path(path: Path) -> None:
    """Flush a file's (or a folder's entries') data to disk: it survives a crash."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def iter_json_lines(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, parsed object) per non-blank line; InputError on bad JSON."""
    text = read_text(path)
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{number}: invalid JSON: {exc.msg} (column {exc.colno})",
                             hint="fragments are JSON Lines: one JSON object per line") from exc
