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
import itertools
import json
import os
import re
import stat
import tempfile
from collections.abc import Hashable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import yaml

from builder.core import limits
from builder.core.errors import InputError, Problem
from builder.core.limits import Limit
from builder.core.schema import short

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
    """Malformed (or too costly) YAML; `problem` says where."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem), hint="fix the YAML syntax at that line")
        self.problem = problem


class _StrictLoader(SafeLoader):  # type: ignore[valid-type,misc]
    """The safe loader, refusing a key given twice in one mapping (YAML keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if not isinstance(node, yaml.MappingNode):
            raise yaml.constructor.ConstructorError(None, None, "expected a mapping",
                                                    node.start_mark)
        self.flatten_mapping(node)
        mapping: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):
                raise yaml.constructor.ConstructorError(None, None, "mapping keys must be "
                                                        "scalars", key_node.start_mark)
            if key in mapping:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {short(key)}",
                                                        key_node.start_mark)
            mapping[key] = self.construct_object(value_node, deep=deep)
        return mapping


def load_text(text: str, path: str) -> Any:
    """Parse YAML text safely; raise YamlSyntaxError naming the file and line.

    Refused like a syntax error: a key given twice, aliases that expand past
    limits.YAML_ALIAS_NODES ("billion laughs"), recursive aliases, nesting too
    deep for the parser, numbers too long to convert.
    """
    loader = _StrictLoader(text)
    try:
        require_few_nodes(text, path)
        node = loader.get_single_node()
        if node is None:
            return None
        if "*" in text:  # no alias without an asterisk: skip the walk for plain files
            check_aliases(node, path)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(_yaml_problem(exc, path)) from None
    except (RecursionError, ValueError) as exc:
        raise YamlSyntaxError(_unreadable(exc, path)) from None
    finally:
        loader.dispose()


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def check_aliases(root: yaml.Node, path: str) -> None:
    """Refuse a document whose aliases would expand into too many nodes, or into a loop.

    Aliases make one node appear many times; every reader that walks the data
    (schemas, line maps, JSON output) pays for each appearance. Counted on the
    composed graph, with each node's expanded size computed once and capped
    just past what is allowed (a bomb's true size has thousands of digits).
    """
    limit = limits.YAML_ALIAS_NODES.get()
    distinct = _distinct_nodes(root)
    cap = limit + distinct + 1
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()  # nodes whose subtree is being walked: an alias to one loops
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        if finished:
            open_nodes.discard(id(node))
            sizes[id(node)] = min(1 + sum(sizes[id(c)] for c in _children(node)), cap)
            continue
        if id(node) in sizes:
            continue
        open_nodes.add(id(node))
        stack.append((node, True))
        for child in _children(node):
            if id(child) in open_nodes:
                raise YamlSyntaxError(Problem(path, "recursive alias: a node contains itself",
                                              child.start_mark.line + 1))
            if id(child) not in sizes:
                stack.append((child, False))
    if sizes[id(root)] - distinct > limit:
        raise YamlSyntaxError(Problem(
            path, f"aliases expand to more than {limit} extra nodes (set "
                  f"{limits.YAML_ALIAS_NODES.env} to allow more)", root.start_mark.line + 1))


_NODE_EVENTS = (yaml.ScalarEvent, yaml.SequenceStartEvent, yaml.MappingStartEvent,
                yaml.AliasEvent)


def require_few_nodes(text: str, path: str) -> None:
    """Refuse a document of more than limits.YAML_NODES nodes before it is composed: a
    node costs a few hundred bytes once built, and `[1,1,1,...]` makes one of every two
    characters. Counted on libyaml's event stream, only for texts long enough to exceed
    the limit (a node takes at least one character)."""
    cap = limits.YAML_NODES.get()
    if len(text) <= cap:
        return
    parser = SafeLoader(text)
    try:
        count = 0
        while parser.check_event():
            event = parser.get_event()  # type: ignore[no-untyped-call]
            count += isinstance(event, _NODE_EVENTS)
            if count > cap:
                raise YamlSyntaxError(Problem(
                    path, f"more than {cap} YAML nodes (set {limits.YAML_NODES.env} to allow "
                          "more)", event.start_mark.line + 1))
    finally:
        parser.dispose()


def _distinct_nodes(root: yaml.Node) -> int:
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) not in seen:
            seen.add(id(node))
            stack.extend(_children(node))
    return len(seen)


def _unreadable(exc: BaseException, path: str, line: int | None = None) -> Problem:
    if isinstance(exc, RecursionError):
        return Problem(path, "nested too deeply to read", line)
    return Problem(path, f"a value cannot be read: {str(exc).split(';')[0]}", line)


def read_bytes(path: Path, limit: Limit) -> bytes:
    """A regular file's bytes, at most `limit`: FIFOs, devices and folders are refused
    before they are read, and a file that grows past the limit while read is refused."""
    cap = limit.get()
    try:
        with open_regular(path) as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > cap:
                raise limit.exceeded(str(path), size)
            data = handle.read(size + 1)  # a file that grows while we read: up to the cap
            if len(data) > size:
                data += handle.read(cap + 1 - len(data))
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(data) > cap:
        raise limit.exceeded(str(path))
    return data


def open_regular(path: Path) -> IO[bytes]:
    """Open a regular file for reading. FIFOs and devices are refused (InputError) before
    they can block or stream forever: checked before opening, and again on what was
    opened. A missing or unreadable file raises OSError, as open() does."""
    _require_regular(path, os.stat(path))
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    handle = os.fdopen(fd, "rb")
    try:
        _require_regular(path, os.fstat(fd))
    except BaseException:
        handle.close()
        raise
    return handle


def _require_regular(path: Path, info: os.stat_result) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise InputError(f"{path}: is {file_kind(info.st_mode)}, not a regular file",
                         hint="give the path of a regular file")


def file_kind(mode: int) -> str:
    kinds = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a device"),
             (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket"),
             (stat.S_ISLNK, "a symbolic link"))
    return next((name for test, name in kinds if test(mode)), "a special file")


def read_text(path: Path, limit: Limit) -> str:
    """A regular UTF-8 text file of at most `limit` bytes, without NUL."""
    return decode_text(read_bytes(path, limit), str(path))


def decode_text(data: bytes | bytearray, where: str, *, lines: bool = True) -> str:
    """UTF-8 text without NUL; `lines` adds the line of a bad byte to `where`."""
    if b"\x00" in data:
        raise InputError(f"{where}: contains a NUL byte; not a text file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        number = data.count(b"\n", 0, exc.start) + 1
        line = f":{number}" if lines else ""
        raise InputError(f"{where}{line}: not UTF-8 (byte {exc.start})") from None


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
    path for big catalogs is `load_text`. Refuses what `load_text` refuses.
    """
    try:
        require_few_nodes(text, path)
        node = yaml.compose(text, Loader=SafeLoader)
        if node is not None and "*" in text:
            check_aliases(node, path)
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(_yaml_problem(exc, path)) from None
    except RecursionError as exc:
        raise YamlSyntaxError(_unreadable(exc, path)) from None
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
                    raise YamlSyntaxError(Problem(path, f"duplicate key {short(key)}",
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
        try:
            return constructor.construct_object(n, deep=True)
        except ValueError as exc:
            raise YamlSyntaxError(_unreadable(exc, path, n.start_mark.line + 1)) from None

    try:
        data = build(node)
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(_yaml_problem(exc, path)) from None
    except RecursionError as exc:
        raise YamlSyntaxError(_unreadable(exc, path)) from None
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


def require_inside(root: Path, path: Path) -> None:
    """Refuse to write `path` through a symbolic link (or a non-folder) below `root`.

    The root itself may be a link (the user chose it); nothing between it and
    `path` may be, or a write would land outside the folder we were given.
    """
    current = root
    for part in path.relative_to(root).parts:
        current = current / part
        try:
            info = os.lstat(current)
        except FileNotFoundError:
            return  # the rest is created by us
        except OSError as exc:
            raise InputError(f"{current}: cannot inspect: {exc.strerror or exc}") from None
        if stat.S_ISLNK(info.st_mode):
            raise InputError(f"{current}: is a symbolic link inside {root}; refusing to write "
                             "through it", hint="replace the link by a real folder or file, or "
                                                "give the folder it points to")
        if current != path and not stat.S_ISDIR(info.st_mode):
            raise InputError(f"{current}: is {file_kind(info.st_mode)}, not a folder")


def atomic_write_many(root: Path, files: Mapping[Path, bytes | str]) -> list[Path]:
    """Write several files under `root` all or nothing; return those whose bytes changed.

    Every new version is staged (written and fsynced beside its target) before
    any target is replaced; if a replace fails, the ones already replaced get
    their old bytes back. Writes through symbolic links below `root` are refused.
    """
    staged: list[tuple[Path, Path]] = []       # (temp file, target)
    made: list[Path] = []                       # folders we created, deepest last
    try:
        for path, data in files.items():
            payload = data.encode("utf-8") if isinstance(data, str) else data
            require_inside(root, path)
            if path.exists() and not path.is_file():
                raise InputError(f"{path}: is not a regular file; nothing was changed")
            if _holds(path, payload):
                continue
            made += _make_folders(path.parent)
            fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            staged.append((Path(name), path))
            with os.fdopen(fd, "wb") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
        _replace_all(staged)
    except BaseException as exc:
        for tmp, _ in staged:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        for folder in reversed(made):
            with contextlib.suppress(OSError):
                folder.rmdir()
        if isinstance(exc, OSError):
            where = str(exc.filename or root)
            raise InputError(f"{where}: cannot write: {exc.strerror or exc}; nothing was "
                             "changed") from None
        raise
    return [target for _, target in staged]


def _holds(path: Path, payload: bytes) -> bool:
    with contextlib.suppress(OSError):
        return path.stat().st_size == len(payload) and path.read_bytes() == payload
    return False


def _make_folders(folder: Path) -> list[Path]:
    """mkdir -p, returning the folders it created (parents first)."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for item in reversed(missing):
        item.mkdir()
    return list(reversed(missing))


def _replace_all(staged: list[tuple[Path, Path]]) -> None:
    """Rename every staged file onto its target; on failure put back what was replaced."""
    backups: list[tuple[Path, Path | None]] = []   # (target, hard link to its old bytes)
    try:
        for tmp, target in staged:
            backup: Path | None = None
            if target.exists():
                backup = target.with_name(f".{target.name}.{os.getpid()}.old")
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(backup)
                os.link(target, backup)
            backups.append((target, backup))
            os.replace(tmp, target)
    except BaseException:
        for target, backup in reversed(backups):
            with contextlib.suppress(OSError):
                if backup is not None:
                    os.replace(backup, target)
                else:
                    os.unlink(target)
        raise
    finally:
        for _, backup in backups:
            if backup is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(backup)
    for folder in {target.parent for _, target in staged}:
        fsync_path(folder)


def fsync_path(path: Path) -> None:
    """Flush a file's (or a folder's entries') data to disk: it survives a crash."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
