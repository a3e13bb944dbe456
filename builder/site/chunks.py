"""Records as compact rows: the one copy of every probe and failure the site's API holds.

A document of rows names its fields once (`probe_fields`, `failure_fields`,
`loadtest_fields`), and every text value of a row is either the text itself or a
number: the index of a text in the document's `strings`, where `{file}` stands for the
record's own file name and `{qfile}` for it URL-escaped. So the release URL prefix
shared by a thousand probes, a CI job, a build date or a compiler is written once per
document, and a download or log URL ending in the probe's own name costs a number:

    "strings": ["", "9.1.0+driver", "https://github.com/o/r/releases/download/t-001/{file}"]
    row: [1, "x86_64", "debian", "1", "9f2c…", 3412904, 2, ...]

A row stops at its last non-empty field (empty text "" is 0, and the rest are "", [],
null or 0). The file name is never stored: it is `falco_<target>_<kernel release>_<kernel
version>` with the driver type's extension (.o, .ko), from the row's own fields and the
release it is filed under. decode_rows() reads rows back into catalog-shaped
dictionaries (what builder.core.records.record_to_dict gives, `file` included);
lookup.js does the same in the browser.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import fields
from operator import attrgetter
from typing import Any
from urllib.parse import quote

from builder.core.drivertypes import DEFAULT_TYPE
from builder.core.records import (
    FailureRecord,
    LoadTest,
    ProbeRecord,
    probe_file_name,
    twins_to_list,
)

FILE = "{file}"
QFILE = "{qfile}"
# Row order: the fields every record has first, those most often empty last (a row stops
# at its last non-empty field). kernel_release is the key the rows are filed under.
PROBE_FIELDS: tuple[str, ...] = (
    "driver_version", "arch", "target", "kernel_version", "sha256", "size", "url", "built",
    "log", "loadtest", "release", "commit", "driver_ref", "source", "job", "attestation",
    "compiler", "driver_type", "uname_r", "package_version", "root", "twins", "aliases")
FAILURE_FIELDS: tuple[str, ...] = (
    "driver_version", "arch", "target", "kernel_version", "step", "category", "reason", "log",
    "attempts", "last_attempt", "commit", "driver_ref", "source", "job", "driver_type",
    "uname_r", "package_version", "root", "twins", "aliases")
LOADTEST_FIELDS = tuple(f.name for f in fields(LoadTest))
# Text fields that may name the record's own file (templates with {file} or {qfile}).
URL_FIELDS = frozenset({"url", "log", "attestation", "job"})
_NUMBERS = frozenset({"size", "attempts", "accepted", "total", "events"})
_LISTS = frozenset({"twins", "aliases"})


class Strings:
    """A document's string table: texts used twice or more, and every URL template."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.index: dict[str, int] = {}
        self.table: list[str] = [""]

    def count(self, text: str) -> None:
        self.counts[text] += 1

    def freeze(self) -> None:
        """Numbers for the texts worth a number: used twice or more, or templates (a
        number of one or two digits instead of a URL of a hundred characters)."""
        for text, n in sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0])):
            if text and (n > 1 or FILE in text or QFILE in text) and len(text) > 2:
                self.index[text] = len(self.table)
                self.table.append(text)

    def encode(self, text: str) -> str | int:
        if text == "":
            return 0
        return self.index.get(text, text)


def template(value: str, file: str) -> str:
    """`value` with the record's file name as {file} (or {qfile}, URL-escaped), when it holds
    it and no brace that would make the template ambiguous; else `value`."""
    if not value or "{" in value or "}" in value:
        return value
    if file in value:
        return value.replace(file, FILE, 1)
    if "%" in value:
        escaped = quote(file, safe="")
        if escaped != file and escaped in value:
            return value.replace(escaped, QFILE, 1)
    return value


def expand(text: str, file: str) -> str:
    return text.replace(FILE, file, 1).replace(QFILE, quote(file, safe=""), 1)


Record = ProbeRecord | FailureRecord
_GET = {names: attrgetter(*names) for names in (PROBE_FIELDS, FAILURE_FIELDS)}
_URL_AT = {names: tuple(i for i, n in enumerate(names) if n in URL_FIELDS)
           for names in (PROBE_FIELDS, FAILURE_FIELDS)}
_TYPE_AT = {names: names.index("driver_type") for names in (PROBE_FIELDS, FAILURE_FIELDS)}
_LOADTEST = attrgetter(*LOADTEST_FIELDS)


def _prepared(record: Record, names: tuple[str, ...]) -> list[Any]:
    """The record's values in row order: URLs templated, the default driver type empty,
    a load test as a list, twins as pairs."""
    values = list(_GET[names](record))
    file = record.file
    for i in _URL_AT[names]:
        values[i] = template(values[i], file)
    at = _TYPE_AT[names]
    if values[at] == DEFAULT_TYPE:
        values[at] = ""
    for i, value in enumerate(values):
        if isinstance(value, LoadTest):
            values[i] = list(_LOADTEST(value))
        elif isinstance(value, tuple):
            values[i] = [[t.uname_r, t.root] for t in value] if value and \
                not isinstance(value[0], str) else list(value)
    return values


def _count(values: list[Any], strings: Strings) -> None:
    for value in values:
        if isinstance(value, str):
            strings.count(value)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, str):
                    strings.count(item)
                elif isinstance(item, list):
                    for text in item:
                        strings.count(text)


def _trim(row: list[Any]) -> list[Any]:
    while row and row[-1] in (0, "", None, []):
        row.pop()
    return row


def _encoded(values: list[Any], strings: Strings, lists: tuple[int, int]) -> list[Any]:
    """A prepared row with its texts as numbers where the table has them; `lists` are the
    positions of twins and aliases (their texts: twins encoded, alias names as they are)."""
    twins, aliases = lists
    row: list[Any] = []
    for i, value in enumerate(values):
        if isinstance(value, str):
            row.append(strings.encode(value))
        elif i == twins:
            row.append([_trim([strings.encode(u), strings.encode(r)]) for u, r in value])
        elif i == aliases or not isinstance(value, list):
            row.append(value)
        else:   # a load test
            row.append(_trim([strings.encode(v) if isinstance(v, str) else v for v in value]))
    return _trim(row)


def encode(probes: Mapping[str, Sequence[ProbeRecord]],
           failures: Mapping[str, Sequence[FailureRecord]]) -> dict[str, Any]:
    """The rows of records filed by kernel release (`probes` and `failures` map a release to
    its records, in the order to keep), with their string table and field names."""
    strings = Strings()
    prepared: list[tuple[str, str, list[Any]]] = []
    for kind, records, names in (("probes", probes, PROBE_FIELDS),
                                 ("failures", failures, FAILURE_FIELDS)):
        for release, group in records.items():
            for record in group:
                values = _prepared(record, names)
                _count(values, strings)
                prepared.append((kind, release, values))
    strings.freeze()
    out: dict[str, Any] = {
        "probe_fields": list(PROBE_FIELDS), "failure_fields": list(FAILURE_FIELDS),
        "loadtest_fields": list(LOADTEST_FIELDS), "strings": strings.table,
        "probes": {}, "failures": {}}
    lists = {"probes": (PROBE_FIELDS.index("twins"), PROBE_FIELDS.index("aliases")),
             "failures": (FAILURE_FIELDS.index("twins"), FAILURE_FIELDS.index("aliases"))}
    for kind, release, values in prepared:
        out[kind].setdefault(release, []).append(_encoded(values, strings, lists[kind]))
    return out


# --- reading rows back ----------------------------------------------------------------------

def _text(value: Any, strings: Sequence[str]) -> str:
    return strings[value] if isinstance(value, int) else str(value)


def decode_rows(document: Mapping[str, Any], kind: str = "probes") -> list[dict[str, Any]]:
    """Every row of `kind` ("probes" or "failures") as a dictionary with all the fields of
    its catalog record, `kernel_release` and `file` included."""
    names = document["probe_fields" if kind == "probes" else "failure_fields"]
    strings = document["strings"]
    out = []
    for release, rows in document[kind].items():
        for row in rows:
            out.append(_decoded(release, row, names, strings, document["loadtest_fields"]))
    return out


def _decoded(release: str, row: Sequence[Any], names: Sequence[str], strings: Sequence[str],
             loadtest_fields: Sequence[str]) -> dict[str, Any]:
    raw = dict(zip(names, list(row) + [None] * (len(names) - len(row)), strict=True))
    record: dict[str, Any] = {"kernel_release": release}
    for name in names:
        value = raw[name]
        if name == "loadtest":
            record[name] = None if not value else {
                f: (value[i] if i < len(value) else 0) if f in _NUMBERS else
                _text(value[i] if i < len(value) else "", strings)
                for i, f in enumerate(loadtest_fields)}
        elif name == "twins":
            record[name] = [{"uname_r": _text(t[0], strings),
                             **({"root": _text(t[1], strings)} if len(t) > 1 and t[1] else {})}
                            for t in value or []]
        elif name in _LISTS:
            record[name] = list(value or [])
        elif name in _NUMBERS:
            record[name] = value or 0
        else:
            record[name] = _text(value if value is not None else "", strings)
    record["driver_type"] = record["driver_type"] or DEFAULT_TYPE
    file = probe_file_name(record["target"], release, record["kernel_version"],
                           record["driver_type"])
    record["file"] = file
    for name in URL_FIELDS & set(names):
        if isinstance(raw[name], int):
            record[name] = expand(record[name], file)
    return record


def as_dict(record: Record) -> dict[str, Any]:
    """A record as decode_rows gives it back (for comparisons)."""
    names = PROBE_FIELDS if isinstance(record, ProbeRecord) else FAILURE_FIELDS
    out: dict[str, Any] = {"kernel_release": record.kernel_release, "file": record.file}
    for name in names:
        value = getattr(record, name)
        if isinstance(value, LoadTest):
            value = {f: getattr(value, f) for f in LOADTEST_FIELDS}
        elif name == "twins":
            value = twins_to_list(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[name] = value
    return out

