"""The machine-readable side of the site, as pure functions: documents in, text out.

- `api/index.json`: every driver version with its Falco versions, counts and the
  URLs of its probe list and SHA256SUMS (schema in docs/site.md);
- `api/<driver_version>/probes.json`: every probe and failure, all catalog fields;
- `api/<driver_version>/SHA256SUMS`: `<sha256>  <arch>/<file>`, what `sha256sum -c`
  reads inside `<store>/<driver_version>/` of a directory store;
- `api/<driver_version>/<arch>/find/<n>.json`: the find-my-probe lookup, every
  requested name (file and aliases) hashed into small shards so that one lookup
  fetches a few kilobytes whatever the size of the catalog;
- `api/kernels/index.json` and `api/kernels/<n>.json`: every probe and failure by
  kernel release, in chunks of consecutive releases (string order), so that a kernel
  release or a prefix of one (`5.10.135`) is answered from one or two small files;
- `api/targets/<target>.json`: per driver version and arch, the newest kernel built in
  each kernel series (the near misses of find-my-probe).
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import fields
from typing import Any

from builder.core.catalog import CatalogFile
from builder.core.config import Config
from builder.core.naming import MIN_KERNEL, OVERRIDE_RELEASES
from builder.core.records import (
    FailureRecord,
    LoadTest,
    ProbeRecord,
    kernel_series,
    twins_to_list,
)
from builder.site import layout
from builder.site.model import SiteModel, natural_key, row_sort_key

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
    """Names find-my-probe can look up: every probe and failure file, and their aliases."""
    return sum(sum(len(r.all_files()) for r in f.probes) +
               sum(len(x.all_files()) for x in f.failures) for f in files)


_PROBE_FIELDS = tuple(f.name for f in fields(ProbeRecord))
_FAILURE_FIELDS = tuple(f.name for f in fields(FailureRecord))
_LOADTEST_FIELDS = tuple(f.name for f in fields(LoadTest))


def record_dict(record: ProbeRecord | FailureRecord) -> dict[str, Any]:
    """builder.core.records.record_to_dict, without dataclasses.asdict's deep copies (100,000x)."""
    names = _PROBE_FIELDS if isinstance(record, ProbeRecord) else _FAILURE_FIELDS
    out: dict[str, Any] = {}
    for name in names:
        value = getattr(record, name)
        if name == "twins":
            value = twins_to_list(value)
        elif isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, LoadTest):
            value = {name: getattr(value, name) for name in _LOADTEST_FIELDS}
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
    get a leading backslash, which the catalog's name rules make impossible); a twin
    kernel's probe as `../twins/<root>/<driver version>/<arch>/<file>`, so that the one
    list checks a whole directory store from inside <store>/<driver version>/."""
    lines = []
    for record in sorted(records, key=lambda r: (r.root, r.arch, r.file)):
        path = f"{record.arch}/{record.file}" if not record.root else f"../{record.store_path}"
        if "\\" in path or "\n" in path or "\r" in path:
            escaped = path.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
            lines.append(f"\\{record.sha256}  {escaped}\n")
        else:
            lines.append(f"{record.sha256}  {path}\n")
    return "".join(lines)


# Lookup shards hold rows, not objects: keys named once per shard keep the
# shards (the biggest part of the API after probes.json) a third smaller.
SHARD_PROBE_FIELDS = ("file", "sha256", "size", "url", "built", "log", "job", "attestation",
                      "source", "loadtest")
SHARD_FAILURE_FIELDS = ("file", "step", "category", "reason", "log", "job", "attempts",
                        "last_attempt")
# A load test as a row too: null when the probe has none.
LOADTEST_FIELDS = tuple(f.name for f in fields(LoadTest))


def _loadtest_row(loadtest: LoadTest | None) -> list[Any] | None:
    return None if loadtest is None else [getattr(loadtest, f) for f in LOADTEST_FIELDS]


def _probe_entry(record: ProbeRecord) -> list[Any]:
    return [record.file, record.sha256, record.size, record.url, record.built, record.log,
            record.job, record.attestation, record.source, _loadtest_row(record.loadtest)]


def _failure_entry(failure: FailureRecord) -> list[Any]:
    return [failure.file, failure.step, failure.category, failure.reason, failure.log,
            failure.job, failure.attempts, failure.last_attempt]


def find_shards(driver_version: str, arch: str, files: Sequence[CatalogFile],
                ) -> dict[int, dict[str, Any]]:
    """The lookup shards of one driver version and arch (`files`: that driver version's
    catalog files of that arch): shard number -> document.

    Every shard up to the count is present (possibly empty), so find.js never
    meets a 404. A name is answered by the first probe claiming it (the catalog
    forbids two); a failed build is found under every name a loader requests for it.
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
            entry = _failure_entry(failure)
            for name in failure.all_files():
                failed[fnv1a(name) % count].setdefault(name, entry)
    return {n: {"schema_version": SCHEMA_VERSION, "driver_version": driver_version,
                "arch": arch, "shard": n, "shards": count,
                "probe_fields": list(SHARD_PROBE_FIELDS),
                "probes": dict(sorted(names[n].items())),
                "failure_fields": list(SHARD_FAILURE_FIELDS),
                "failures": dict(sorted(failed[n].items())),
                "loadtest_fields": list(LOADTEST_FIELDS)}
            for n in range(count)}


def driver_documents(driver_version: str, falco: Sequence[str],
                     files: Sequence[CatalogFile]) -> Iterator[tuple[str, str]]:
    """(site path, text) of every API file of one driver version, from its catalog files."""
    files = sorted(files, key=lambda f: f.key)
    yield (layout.api_probes(driver_version),
           dumps(probes_document(driver_version, falco, files)) + "\n")
    sums = sha256sums(r for f in files for r in f.probes)
    yield layout.api_sums(driver_version), sums
    yield layout.api_sums_text(driver_version), sums
    for arch in sorted({f.arch for f in files}):
        of_arch = [f for f in files if f.arch == arch]
        if not name_count(of_arch):
            continue  # find.js never asks: the manifest lists no such arch
        for shard, document in find_shards(driver_version, arch, of_arch).items():
            yield layout.api_shard(driver_version, arch, shard), dumps(document) + "\n"


def naming_constants() -> dict[str, Any]:
    """The facts naming.js needs besides its rules (FalcoNaming.configure)."""
    return {"override_releases": [str(f) for f in OVERRIDE_RELEASES],
            "min_kernel": {arch: list(v) for arch, v in MIN_KERNEL.items()}}


def plan_summary(config: Config | None) -> dict[str, Any] | None:
    """What probes.yaml asks for: target families with their arches, and driver versions;
    None without probes.yaml (then nothing can be said about what is planned)."""
    if config is None:
        return None
    return {"targets": {t.name: list(t.arch) for t in config.targets},
            "drivers": [d.version for d in config.driver_versions]}


def find_manifest(model: SiteModel, page_url: Mapping[str, str], drivers_repo: str,
                  config: Config | None = None) -> dict[str, Any]:
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
    github = config is not None and config.store.kind == "github"
    return {
        "schema_version": SCHEMA_VERSION,
        "drivers": drivers,
        "order": list(model.order),
        "falco": dict(model.releases.as_mapping()),
        "naming": naming_constants(),
        "coverage": {t.target: page_url[layout.coverage_page(t.target)] for t in model.targets},
        "drivers_repo": drivers_repo,
        "repository": config.store.repository if github and config else "",
        "plan": plan_summary(config),
        "kernels": layout.quote_url(layout.KERNELS_DIR.removeprefix(layout.API_DIR + "/")) + "/",
    }


# --- by kernel release ------------------------------------------------------------------

# What a list of a kernel's probes shows (the rest is one exact lookup away): the load
# test by its status only, a failure without its reason.
KERNEL_PROBE_FIELDS = ("driver_version", "arch", "target", "kernel_version", "sha256", "size",
                       "url", "loadtest")
KERNEL_FAILURE_FIELDS = ("driver_version", "arch", "target", "kernel_version", "step",
                         "category", "log")
# Bytes of rows per chunk file of api/kernels/: ~12 kB over the wire (gzip).
KERNEL_CHUNK_BYTES = 64_000


def _kernel_probe(record: ProbeRecord) -> list[Any]:
    return [record.driver_version, record.arch, record.target, record.kernel_version,
            record.sha256, record.size, record.url,
            record.loadtest.status if record.loadtest else None]


def _kernel_failure(failure: FailureRecord) -> list[Any]:
    return [failure.driver_version, failure.arch, failure.target, failure.kernel_version,
            failure.step, failure.category, failure.log]


def kernel_documents(files: Iterable[CatalogFile], order: Sequence[str],
                     chunk_bytes: int = KERNEL_CHUNK_BYTES) -> Iterator[tuple[str, str]]:
    """(site path, text) of api/kernels/: every probe and failure by kernel release.

    Releases in string order are packed into chunks of about `chunk_bytes`; the
    index lists each chunk's first release, so the releases starting with any prefix
    are in a run of consecutive chunks. Within a release: newest driver version first.
    """
    rank = {driver: i for i, driver in enumerate(order)}
    probes: dict[str, list[ProbeRecord]] = defaultdict(list)
    failures: dict[str, list[FailureRecord]] = defaultdict(list)
    for cat_file in files:
        for record in cat_file.probes:
            probes[record.kernel_release].append(record)
        for failure in cat_file.failures:
            failures[failure.kernel_release].append(failure)

    def order_key(r: ProbeRecord | FailureRecord) -> tuple[Any, ...]:
        return (rank.get(r.driver_version, len(rank)), r.arch, natural_key(r.target),
                natural_key(r.kernel_version))

    chunks: list[dict[str, Any]] = []
    index: list[list[Any]] = []
    size = chunk_bytes
    for release in sorted({*probes, *failures}):
        built = [_kernel_probe(r) for r in sorted(probes.get(release, []), key=order_key)]
        failed = [_kernel_failure(f) for f in sorted(failures.get(release, []), key=order_key)]
        weight = len(dumps(built)) + len(dumps(failed)) + len(release)
        if size + weight > chunk_bytes and (not chunks or chunks[-1]["probes"]
                                            or chunks[-1]["failures"]):
            chunks.append({"probes": {}, "failures": {}})
            index.append([release, 0, 0, 0])
            size = 0
        if built:
            chunks[-1]["probes"][release] = built
        if failed:
            chunks[-1]["failures"][release] = failed
        index[-1][1:] = [index[-1][1] + 1, index[-1][2] + len(built), index[-1][3] + len(failed)]
        size += weight
    yield layout.KERNELS_INDEX, dumps({
        "schema_version": SCHEMA_VERSION, "chunk_fields": ["first", "releases", "probes",
                                                           "failures"],
        "chunks": index}) + "\n"
    for n, chunk in enumerate(chunks):
        yield layout.kernels_chunk(n), dumps({
            "schema_version": SCHEMA_VERSION, "chunk": n,
            "probe_fields": list(KERNEL_PROBE_FIELDS),
            "failure_fields": list(KERNEL_FAILURE_FIELDS), **chunk}) + "\n"


def target_documents(model: SiteModel) -> Iterator[tuple[str, str]]:
    """(site path, text) of api/targets/<target>.json: per driver version and arch, the
    newest kernel built in each kernel series, [kernel release, kernel version, probes]."""
    newest: dict[str, dict[str, dict[str, dict[str, list[Any]]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(dict)))
    for (driver, arch, target), cat_file in model.catalog.files.items():
        per_series = newest[target][driver][arch]
        for record in cat_file.probes:
            series = kernel_series(record.kernel_release)
            best = per_series.get(series)
            if best is None:
                per_series[series] = [record.kernel_release, record.kernel_version, 1]
                continue
            best[2] += 1
            if row_sort_key(record)[:2] > (natural_key(best[0]), natural_key(best[1])):
                best[:2] = [record.kernel_release, record.kernel_version]
    for summary in model.targets:
        by_driver = newest.get(summary.target, {})
        drivers = {d: {arch: dict(sorted(series.items(), key=lambda kv: natural_key(kv[0])))
                       for arch, series in sorted(by_driver[d].items()) if series}
                   for d in model.order if d in by_driver}
        yield layout.api_target(summary.target), dumps({
            "schema_version": SCHEMA_VERSION, "target": summary.target,
            "newest_fields": ["kernel_release", "kernel_version", "probes"],
            "newest": {d: arches for d, arches in drivers.items() if arches}}) + "\n"


def site_documents(model: SiteModel) -> Iterator[tuple[str, str]]:
    """The API files that span driver versions (written after the catalog is loaded)."""
    yield from kernel_documents(model.catalog.files.values(), model.order)
    yield from target_documents(model)


def dumps(document: Any) -> str:
    """Compact, deterministic JSON for files under api/."""
    return json.dumps(document, separators=(",", ":"), sort_keys=False, ensure_ascii=False)


def json_for_html(document: Any) -> str:
    """JSON safe inside <script type="application/json">: no </script>, no <!--."""
    text = json.dumps(document, separators=(",", ":"), ensure_ascii=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
