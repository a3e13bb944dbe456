"""Safe YAML in, deterministic one-record-per-line YAML out, atomic writes.

Loading only ever uses the safe loaders (libyaml's C one when present).
Writing does not go through PyYAML's emitter: catalog lines are flow
mappings we format ourselves so that one probe is one greppable line and the
same records always give the same bytes. Every scalar is written plain only
when YAML would read it back as the same string; otherwise it is written as an
ASCII double-quoted scalar with escapes.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterable, Mapping
from typing import Any

import yaml

from builder.core import limits
from builder.core.errors import InputError, Problem
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


























