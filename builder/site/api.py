"""The machine-readable side of the site, as pure functions: documents in, text out.

- `api/index.json`: every driver version with its Falco versions, counts and the
  URLs of its probe list and SHA256SUMS (schema in docs/site.md);
- `api/<driver_version>/probes.json`: every probe and failure, all catalog fields;
- `api/<driver_version>/SHA256SUMS`: `<sha256>  <arch>/<file>`, what `sha256sum -c`
  reads inside `<store>/<driver_version>/` of a directory store;
- `api/<driver_version>/<arch>/find/<n>.json`: the find-my-probe lookup, every
  requested name (file and aliases) hashed into small shards so that one lookup
  fetches a few kilobytes whatever the size of the catalog.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, fields
from typing import Any

from builder.core.catalog import CatalogFile
from builder.core.naming import MIN_KERNEL, OVERRIDE_RELEASES
from builder.core.records import FailureRecord, LoadTest, ProbeRecord
from builder.site import layout
from builder.site.model import SiteModel, row_sort_key

SCHEMA_VERSION = 1
# Names per lookup shard, on average: ~250 bytes each, so a shard is ~30 kB.
SHARD_NAMES = 128


def fnv1a(text: str) -> int:
    """32-bit FNV-1a of the UTF-8 bytes; find.js computes the same to pick a shard."""
    value = 0x811C9DC5
    for byte in text.encode("utf-8"):
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return value


def shard_count(names: int) -> int:
    return max(1, math.ceil(names / SHARD_NAMES))


def _url(path: str) -> str:
    """A URL relative to api/index.json for a site path under api/."""
    return layout.quote_url(path.removeprefix(layout.API_DIR + "/"))


def index_document(model: SiteModel, page_url: Mapping[str, str]) -> dict[str, Any]:
    """api/index.json. `page_url` maps a page's src_uri to its quoted site URL."""
    drivers = []
    for driver in model.drivers:
        arches = {}
        for arch, count in driver.arches:
            failures = sum(len(f.failures) for f in model.files_of(driver.version, arch))
            names = name_count(model.files_of(driver.version, arch))
            if names:
                arches[arch] = {"probe_count": count, "failure_count": failures,
                                "find_shards": shard_count(names)}
        drivers.append({
            "driver_version": driver.version,
            "falco_versions": list(driver.falco),
            "probe_count": driver.probes,
            "failure_count": driver.failures,
            "arches": arches,
            "targets": {t.target: {arch: n for arch, n in t.probes if n}
                        for t in driver.targets},
            "probes_url": _url(layout.api_probes(driver.version)),
            "sha256sums_url": _url(layout.api_sums(driver.version)),
            "page_url": "../" + page_url[layout.driver_page(driver.version)],
        })
    return {
        "schema_version": SCHEMA_VERSION,
        "generator": "falco-probes",
        "updated": model.totals.updated or None,
        "probe_count": model.totals.probes,
        "failure_count": model.totals.failures,
        "min_kernel": {arch: ".".join(map(str, v[:2])) for arch, v in MIN_KERNEL.items()},
        "falco_versions": dict(model.releases.as_mapping()),
        "driver_versions": drivers,
    }


def name_count(files: Iterable[CatalogFile]) -> int:
    """Names find-my-probe can look up: every probe file, alias and failure."""
    return sum(sum(1 + len(r.aliases) for r in f.probes) + len(f.failures) for f in files)


_PROBE_FIELDS = tuple(f.name for f in fields(ProbeRecord))
_FAILURE_FIELDS = tuple(f.name for f in fields(FailureRecord))


def record_dict(record: ProbeRecord | FailureRecord) -> dict[str, Any]:
    """builder.core.records.record_to_dict, without dataclasses.asdict's deep copies (100,000x)."""
    names = _PROBE_FIELDS if isinstance(record, ProbeRecord) else _FAILURE_FIELDS
    out: dict[str, Any] = {}
    for name in names:
        value = getattr(record, name)
        if isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, LoadTest):
            value = asdict(value)
        out[name] = value
        if name == "kernel_version":
            out["file"] = record.file
    return out


def _store_order(record: ProbeRecord | FailureRecord) -> tuple[object, ...]:
    return (record.arch, record.target, *row_sort_key(record))


def probes_document(driver_version: str, falco: Sequence[str],
                    files: Sequence[CatalogFile]) -> dict[str, Any]:
    """api/<driver_version>/probes.json: all catalog fields of every probe and failure."""
    probes = [r for f in files for r in f.probes]
    failures = [r for f in files for r in f.failures]
    return {
        "schema_version": SCHEMA_VERSION,
        "driver_version": driver_version,
        "falco_versions": list(falco),
        "probes": [record_dict(r) for r in sorted(probes, key=_store_order)],
        "failures": [record_dict(f) for f in sorted(failures, key=_store_order)],
    }


def sha256sums(records: Iterable[ProbeRecord]) -> str:
    """`<sha256>  <arch>/<file>` per probe, in GNU coreutils' format (escaped names
    get a leading backslash, which the catalog's name rules make impossible)."""
    lines = []
    for record in sorted(records, key=lambda r: (r.arch, r.file)):
        path = f"{record.arch}/{record.file}"
        if "\\" in path or "\n" in path or "\r" in path:
            escaped = path.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
            lines.append(f"\\{record.sha256}  {escaped}\n")
        else:
            lines.append(f"{record.sha256}  {path}\n")
    return "".join(lines)


# Lookup shards hold rows, not objects: keys named once per shard keep the
# shards (the biggest part of the API after probes.json) a third smaller.
SHARD_PROBE_FIELDS = ("file", "sha256", "size", "url", "built", "log")
SHARD_FAILURE_FIELDS = ("file", "step", "reason", "log", "attempts", "last_attempt")


def _probe_entry(record: ProbeRecord) -> list[Any]:
    return [record.file, record.sha256, record.size, record.url, record.built, record.log]


def _failure_entry(failure: FailureRecord) -> list[Any]:
    return [failure.file, failure.step, failure.reason, failure.log, failure.attempts,
            failure.last_attempt]


def find_shards(driver_version: str, arch: str, files: Sequence[CatalogFile],
                ) -> dict[int, dict[str, Any]]:
    """The lookup shards of one driver version and arch (`files`: that driver version's
    catalog files of that arch): shard number -> document.

    Every shard up to the count is present (possibly empty), so find.js never
    meets a 404. A name is answered by the first probe claiming it (the catalog
    forbids two).
    """
    count = shard_count(name_count(files))
    names: list[dict[str, list[Any]]] = [{} for _ in range(count)]
    failed: list[dict[str, list[Any]]] = [{} for _ in range(count)]
    for cat_file in files:
        for record in cat_file.probes:
            entry = _probe_entry(record)
            for name in record.all_files():
                names[fnv1a(name) % count].setdefault(name, entry)
        for failure in cat_file.failures:
            failed[fnv1a(failure.file) % count][failure.file] = _failure_entry(failure)
    return {n: {"schema_version": SCHEMA_VERSION, "driver_version": driver_version,
                "arch": arch, "shard": n, "shards": count,
                "probe_fields": list(SHARD_PROBE_FIELDS),
                "probes": dict(sorted(names[n].items())),
                "failure_fields": list(SHARD_FAILURE_FIELDS),
                "failures": dict(sorted(failed[n].items()))}
            for n in range(count)}


def driver_documents(driver_version: str, falco: Sequence[str],
                     files: Sequence[CatalogFile]) -> Iterator[tuple[str, str]]:
    """(site path, text) of every API file of one driver version, from its catalog files."""
    files = sorted(files, key=lambda f: f.key)
    yield (layout.api_probes(driver_version),
           dumps(probes_document(driver_version, falco, files)) + "\n")
    yield (layout.api_sums(driver_version),
           sha256sums(r for f in files for r in f.probes))
    for arch in sorted({f.arch for f in files}):
        of_arch = [f for f in files if f.arch == arch]
        if not name_count(of_arch):
            continue  # find.js never asks: the manifest lists no such arch
        for shard, document in find_shards(driver_version, arch, of_arch).items():
            yield layout.api_shard(driver_version, arch, shard), dumps(document) + "\n"


def find_manifest(model: SiteModel, page_url: Mapping[str, str],
                  drivers_repo: str) -> dict[str, Any]:
    """What find.js needs up front, embedded in the home page (URLs relative to it)."""
    drivers = {}
    for driver in model.drivers:
        counts = {arch: name_count(model.files_of(driver.version, arch))
                  for arch, _ in driver.arches}
        drivers[driver.version] = {
            "falco": list(driver.falco),
            "arches": {arch: shard_count(n) for arch, n in counts.items() if n},
            "api": layout.quote_url(driver.version) + "/",   # relative to api/
            "page": page_url[layout.driver_page(driver.version)],
        }
    return {
        "schema_version": SCHEMA_VERSION,
        "drivers": drivers,
        "falco": dict(model.releases.as_mapping()),
        "override_releases": [str(f) for f in OVERRIDE_RELEASES],
        "coverage": {t.target: page_url[layout.coverage_page(t.target)] for t in model.targets},
        "drivers_repo": drivers_repo,
    }


def dumps(document: Any) -> str:
    """Compact, deterministic JSON for files under api/."""
    return json.dumps(document, separators=(",", ":"), sort_keys=False, ensure_ascii=False)


def json_for_html(document: Any) -> str:
    """JSON safe inside <script type="application/json">: no </script>, no <!--."""
    text = json.dumps(document, separators=(",", ":"), ensure_ascii=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
