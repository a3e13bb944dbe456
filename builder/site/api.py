"""The machine-readable side of the site, as pure functions: documents in, text out.

Every record is in the API once, in full, in the kernel chunks; the rest points at
them or lists digests:

- `api/index.json`: every driver version with its Falco versions, counts and the
  URLs of its digest list and SHA256SUMS (schema in docs/site.md);
- `api/kernels/index.json` and `api/kernels/<n>.json`: every probe and failure, all its
  fields, filed by kernel release in chunks of consecutive releases (string order) as
  compact rows (chunks.py), so that a kernel release or a prefix of one (`5.10.135`) is
  answered from one or two small files; the index also maps a `uname -r` that differs
  from the loader's name (Debian's `6.1.0-57-amd64`) to the releases it is filed under;
- `api/<driver_version>/probes.json`: the file name and sha256 of every probe of a driver
  version (what `falco-probes verify --index` and scripts check against);
- `api/<driver_version>/SHA256SUMS`: `<sha256>  <arch>/<file>`, what `sha256sum -c`
  reads inside `<store>/<driver_version>/` of a directory store;
- `api/targets/<target>.json`: per driver version and arch, the newest kernel built in
  each kernel series (the near misses of find-my-probe).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from builder.core.catalog import CatalogFile
from builder.core.config import Config
from builder.core.drivertypes import DEFAULT_TYPE
from builder.core.naming import MIN_KERNEL, OVERRIDE_RELEASES
from builder.core.records import FailureRecord, ProbeRecord, kernel_series
from builder.site import chunks, layout
from builder.site.model import SiteModel, natural_key, row_sort_key

SCHEMA_VERSION = 2
# Records per chunk of api/kernels/ (a release's records are never split): about 40 kB,
# 10 kB over the wire; what one `uname -r` lookup reads.
CHUNK_RECORDS = 200


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
            if count or failures:
                arches[arch] = {"probe_count": count, "failure_count": failures}
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
        "kernels_url": _url(layout.KERNELS_INDEX),
        "driver_versions": drivers,
    }


def _digest_entry(record: ProbeRecord) -> dict[str, Any]:
    entry: dict[str, Any] = {"file": record.file, "sha256": record.sha256}
    if record.aliases:
        entry["aliases"] = list(record.aliases)
    if record.root:
        entry["root"] = record.root
    return entry


def probes_document(driver_version: str, falco: Sequence[str],
                    files: Sequence[CatalogFile]) -> dict[str, Any]:
    """api/<driver_version>/probes.json: every probe's file name and sha256 (its other names,
    its twin root), by arch and target; the whole record is in api/kernels/."""
    groups = []
    for cat_file in sorted(files, key=lambda f: (f.arch, natural_key(f.target))):
        if cat_file.probes:
            groups.append({"arch": cat_file.arch, "target": cat_file.target,
                           "probes": [_digest_entry(r) for r in
                                      sorted(cat_file.probes, key=row_sort_key)]})
    return {
        "schema_version": SCHEMA_VERSION,
        "driver_version": driver_version,
        "falco_versions": list(falco),
        "kernels_url": "../" + _url(layout.KERNELS_INDEX),
        "files": groups,
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


def driver_documents(driver_version: str, falco: Sequence[str],
                     files: Sequence[CatalogFile]) -> Iterator[tuple[str, str]]:
    """(site path, text) of every API file of one driver version, from its catalog files."""
    files = sorted(files, key=lambda f: f.key)
    yield (layout.api_probes(driver_version),
           dumps(probes_document(driver_version, falco, files)) + "\n")
    yield layout.api_sums(driver_version), sha256sums(r for f in files for r in f.probes)


def naming_constants() -> dict[str, Any]:
    """The facts naming.js needs besides its rules (FalcoNaming.configure)."""
    return {"override_releases": [str(f) for f in OVERRIDE_RELEASES],
            "min_kernel": {arch: list(v) for arch, v in MIN_KERNEL.items()}}


def target_rules(config: Config) -> dict[str, Any]:
    """What probes.yaml builds of each target: its arches, driver types, the kernels it
    takes (include and exclude on `uname -r`, the newest N per series, the minimum kernel):
    find.js says why a kernel is not built instead of promising that it will be."""
    out: dict[str, Any] = {}
    for target in config.targets:
        out[target.name] = {
            "arch": list(target.arch),
            "include": target.include, "exclude": target.exclude,
            "latest": target.latest, "min_kernel": dict(target.min_kernel),
            "kernels": target.kernels.split(":", 1)[0],
        }
    return out


def plan_summary(config: Config | None) -> dict[str, Any] | None:
    """What probes.yaml asks for: targets with their rules, and driver versions (with the
    driver types each is built as); None without probes.yaml (then nothing can be said
    about what is planned)."""
    if config is None:
        return None
    return {"targets": target_rules(config),
            "drivers": [d.version for d in config.driver_versions]}


def find_manifest(model: SiteModel, page_url: Mapping[str, str], drivers_repo: str,
                  config: Config | None = None) -> dict[str, Any]:
    """What find.js needs up front, embedded in the home page (URLs relative to it)."""
    drivers = {}
    for driver in model.drivers:
        drivers[driver.version] = {
            "falco": list(driver.falco),
            "arches": [arch for arch, n in driver.arches if n],
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


# --- by kernel release: the records ---------------------------------------------------------

def _order_key(rank: Mapping[str, int]) -> Any:
    def key(r: ProbeRecord | FailureRecord) -> tuple[Any, ...]:
        return (rank.get(r.driver_version, len(rank)), r.driver_type != DEFAULT_TYPE, r.arch,
                natural_key(r.target), natural_key(r.kernel_version), r.root)
    return key


def kernel_documents(files: Iterable[CatalogFile], order: Sequence[str],
                     chunk_records: int = CHUNK_RECORDS) -> Iterator[tuple[str, str]]:
    """(site path, text) of api/kernels/: every probe and failure, filed by kernel release.

    Releases in string order are packed into chunks of about `chunk_records` records; the
    index lists each chunk's first release, so the releases starting with any prefix are
    in a run of consecutive chunks. Within a release: newest driver version first. The
    index's `see` maps each `uname -r` that is not the release its records are filed
    under (Debian's `6.1.0-57-amd64` for `6.1.192-3-amd64`) to those releases.
    """
    probes: dict[str, list[ProbeRecord]] = defaultdict(list)
    failures: dict[str, list[FailureRecord]] = defaultdict(list)
    see: dict[str, set[str]] = defaultdict(set)
    for cat_file in files:
        for record in cat_file.probes:
            probes[record.kernel_release].append(record)
        for failure in cat_file.failures:
            failures[failure.kernel_release].append(failure)
        both: tuple[ProbeRecord | FailureRecord, ...] = (*cat_file.probes, *cat_file.failures)
        for any_record in both:
            if any_record.uname_r and any_record.uname_r != any_record.kernel_release:
                see[any_record.uname_r].add(any_record.kernel_release)
    key = _order_key({driver: i for i, driver in enumerate(order)})
    chunks_of: list[list[str]] = []
    index: list[list[Any]] = []
    size = chunk_records
    for release in sorted({*probes, *failures}):
        weight = len(probes.get(release, ())) + len(failures.get(release, ()))
        if size + weight > chunk_records and (not chunks_of or chunks_of[-1]):
            chunks_of.append([])
            index.append([release, 0, 0, 0])
            size = 0
        chunks_of[-1].append(release)
        index[-1][1:] = [index[-1][1] + 1, index[-1][2] + len(probes.get(release, ())),
                         index[-1][3] + len(failures.get(release, ()))]
        size += weight
    yield layout.KERNELS_INDEX, dumps({
        "schema_version": SCHEMA_VERSION,
        "chunk_fields": ["first", "releases", "probes", "failures"], "chunks": index,
        "see": {uname: sorted(releases) for uname, releases in sorted(see.items())}}) + "\n"
    for n, releases in enumerate(chunks_of):
        rows = chunks.encode(
            {r: sorted(probes[r], key=key) for r in releases if r in probes},
            {r: sorted(failures[r], key=key) for r in releases if r in failures})
        yield layout.kernels_chunk(n), dumps({"schema_version": SCHEMA_VERSION, "chunk": n,
                                              **rows}) + "\n"


def kernel_flavour(release: str) -> str:
    """The flavour a kernel release names after its numbers: `6.1.0-57-cloud-amd64` ->
    `cloud-amd64`, `5.15.0-1034-aws` -> `aws`, `5.10.180-170.711.amzn2.x86_64` -> "".
    A node only loads a probe of its own flavour; find.js computes the same (kernelFlavour)."""
    return "-".join(part for part in release.split("-")[1:] if part[:1].isalpha())


def series_key(release: str) -> str:
    """Where api/targets/ files a kernel: its series, and its flavour when it names one."""
    flavour = kernel_flavour(release)
    series = kernel_series(release)
    return f"{series} {flavour}" if flavour else series


def target_documents(model: SiteModel) -> Iterator[tuple[str, str]]:
    """(site path, text) of api/targets/<target>.json: per driver version, driver type and
    arch, the newest kernel built in each kernel series and flavour (series_key), as
    [kernel release, kernel version, probes of that series and flavour, its uname -r when
    the catalog knows it]: what find.js offers a node whose kernel has none, and how it
    tells a kernel older than those the plan keeps (`latest`)."""
    newest: dict[str, dict[str, dict[str, dict[str, dict[str, list[Any]]]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(lambda: defaultdict(dict))))
    for (driver, arch, target), cat_file in model.catalog.files.items():
        for record in cat_file.probes:
            per_series = newest[target][driver][record.driver_type][arch]
            key = series_key(record.kernel_release)
            best = per_series.get(key)
            if best is None:
                per_series[key] = [record.kernel_release, record.kernel_version, 1,
                                   record.uname_r]
                continue
            best[2] += 1
            if row_sort_key(record)[:2] > (natural_key(best[0]), natural_key(best[1])):
                best[:2] = [record.kernel_release, record.kernel_version]
                best[3] = record.uname_r
    for summary in model.targets:
        by_driver = newest.get(summary.target, {})
        drivers = {d: {kind: {arch: {key: best if best[3] else best[:3] for key, best in
                                     sorted(series.items(), key=lambda kv: natural_key(kv[0]))}
                              for arch, series in sorted(arches.items()) if series}
                       for kind, arches in sorted(by_driver[d].items())}
                   for d in model.order if d in by_driver}
        yield layout.api_target(summary.target), dumps({
            "schema_version": SCHEMA_VERSION, "target": summary.target,
            "newest_fields": ["kernel_release", "kernel_version", "probes", "uname_r"],
            "newest": {d: kinds for d, kinds in drivers.items() if kinds}}) + "\n"


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
