"""Page models of the probe index: pure functions from a loaded catalog to frozen records.

Nothing here reads files or renders markup. Rows stay the catalog's own
ProbeRecord/FailureRecord objects (100,000 of them must not be copied); the
models add grouping, counts and order.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from builder.core.catalog import Catalog, CatalogFile
from builder.core.catalog import natural_key as _natural_key
from builder.core.records import (
    ARCHES,
    LOADTEST_STATES,
    FailureRecord,
    ProbeRecord,
    kernel_series,
)
from builder.core.versions import FalcoReleases, FalcoVersion


def driver_order(driver_versions: Iterable[str], releases: FalcoReleases) -> list[str]:
    """Newest first: by the newest Falco release served; unserved ones (newer) on top."""
    def key(driver: str) -> tuple[int, FalcoVersion, tuple[object, ...]]:
        served = releases.falco_for(driver)
        newest = served[-1] if served else FalcoVersion(0, 0, 0)
        return (0 if served else 1, newest, natural_key(driver))
    return sorted(set(driver_versions), key=key, reverse=True)


# Kernel releases repeat across driver versions: 100,000 probes have ~5,000 distinct ones.
natural_key = lru_cache(maxsize=65536)(_natural_key)


def row_sort_key(record: ProbeRecord | FailureRecord) -> tuple[object, ...]:
    """builder.core.catalog's record order (natural kernel release, then version), then arch."""
    return (natural_key(record.kernel_release), natural_key(record.kernel_version), record.arch)


def release_page(url: str, tag: str) -> str:
    """The page of the GitHub release a probe URL downloads from, or "" for other stores."""
    marker = f"/releases/download/{tag}/"
    head, found, _ = url.partition(marker)
    return f"{head}/releases/tag/{tag}" if found and head.startswith("https://") else ""


@dataclass(frozen=True, slots=True)
class LoadTests:
    """How many probes passed, were rejected by the verifier, or were not load-tested."""

    passed: int = 0
    rejected: int = 0
    untested: int = 0                       # not_tested, or no load test recorded

    @property
    def tested(self) -> int:
        return self.passed + self.rejected


def count_load_tests(records: Iterable[ProbeRecord]) -> LoadTests:
    counts = Counter(r.loadtest.status if r.loadtest else LOADTEST_STATES[2] for r in records)
    return LoadTests(counts["passed"], counts["rejected"], counts["not_tested"])


def counted(values: Iterable[str]) -> tuple[tuple[str, int], ...]:
    """Distinct non-empty values with their counts, most frequent first."""
    counts = Counter(v for v in values if v)
    return tuple(sorted(counts.items(), key=lambda kv: (-kv[1], natural_key(kv[0]))))


def series_groups(records: Iterable[ProbeRecord],
                  ) -> tuple[tuple[str, tuple[ProbeRecord, ...]], ...]:
    """Records in natural order, cut into runs of one kernel series."""
    groups: list[tuple[str, list[ProbeRecord]]] = []
    for record in sorted(records, key=row_sort_key):
        series = kernel_series(record.kernel_release)
        if not groups or groups[-1][0] != series:
            groups.append((series, []))
        groups[-1][1].append(record)
    return tuple((series, tuple(rows)) for series, rows in groups)


# --- summaries ----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class TargetCount:
    """Probes (per arch) and failures of one target, within one driver version or overall."""

    target: str
    probes: tuple[tuple[str, int], ...]   # (arch, count) for every arch in ARCHES
    failures: int

    @property
    def total(self) -> int:
        return sum(n for _, n in self.probes)


@dataclass(frozen=True, slots=True)
class DriverSummary:
    version: str
    falco: tuple[str, ...]
    probes: int
    failures: int
    arches: tuple[tuple[str, int], ...]
    targets: tuple[TargetCount, ...]        # natural order (ubuntu-aws-5.3 before -5.11)
    releases: tuple[tuple[str, int, str], ...]  # GitHub release tag, probes in it, its page
    sources: tuple[tuple[str, int], ...] = ()   # what was compiled, probes built from it
    loadtests: LoadTests = LoadTests()


@dataclass(frozen=True, slots=True)
class TargetSummary:
    target: str
    probes: int
    failures: int
    kernels: int
    drivers: tuple[tuple[str, int], ...]    # (driver version, probes), newest driver first


@dataclass(frozen=True, slots=True)
class Totals:
    probes: int
    failures: int
    driver_versions: int
    targets: int
    kernels: int
    arches: tuple[tuple[str, int], ...]
    updated: str                            # newest build or attempt time, "" if none


@dataclass(frozen=True, slots=True)
class SiteModel:
    catalog: Catalog
    releases: FalcoReleases                 # which Falco releases load which driver version
    totals: Totals
    drivers: tuple[DriverSummary, ...]      # newest first
    targets: tuple[TargetSummary, ...]      # by name, in natural order
    order: tuple[str, ...]                  # driver versions, newest first
    by_driver: Mapping[str, tuple[CatalogFile, ...]] = field(default_factory=dict)

    def files_of(self, driver_version: str, arch: str | None = None) -> Iterator[CatalogFile]:
        for cat_file in self.by_driver.get(driver_version, ()):
            if arch is None or cat_file.arch == arch:
                yield cat_file

    def driver(self, version: str) -> DriverSummary | None:
        return next((d for d in self.drivers if d.version == version), None)

    @property
    def empty(self) -> bool:
        return self.totals.probes == 0 and self.totals.failures == 0


def _arch_counts(counter: Mapping[str, int]) -> tuple[tuple[str, int], ...]:
    extra = sorted(a for a in counter if a not in ARCHES)
    return tuple((arch, counter.get(arch, 0)) for arch in (*ARCHES, *extra))


def build_site(catalog: Catalog, releases: FalcoReleases) -> SiteModel:
    probes_by_driver: dict[str, list[ProbeRecord]] = defaultdict(list)
    failures_by_driver: dict[str, list[FailureRecord]] = defaultdict(list)
    for record in catalog.probes():
        probes_by_driver[record.driver_version].append(record)
    for failure in catalog.failures():
        failures_by_driver[failure.driver_version].append(failure)
    order = tuple(driver_order([*probes_by_driver, *failures_by_driver], releases))
    drivers = tuple(_driver_summary(d, probes_by_driver[d], failures_by_driver[d], releases)
                    for d in order)
    targets = _target_summaries(catalog, order)
    kernels = {(r.arch, r.target, r.kernel_release, r.kernel_version) for r in catalog.probes()}
    kernels |= {(f.arch, f.target, f.kernel_release, f.kernel_version)
                for f in catalog.failures()}
    times = [r.built for r in catalog.probes()] + [f.last_attempt for f in catalog.failures()]
    totals = Totals(probes=sum(d.probes for d in drivers),
                    failures=sum(d.failures for d in drivers),
                    driver_versions=len(drivers), targets=len(targets), kernels=len(kernels),
                    arches=_arch_counts(Counter(r.arch for r in catalog.probes())),
                    updated=max((t for t in times if t), default=""))
    by_driver: dict[str, list[CatalogFile]] = defaultdict(list)
    for key in sorted(catalog.files):
        by_driver[key[0]].append(catalog.files[key])
    return SiteModel(catalog, releases, totals, drivers, targets, order,
                     {d: tuple(files) for d, files in by_driver.items()})


def _driver_summary(version: str, probes: list[ProbeRecord], failures: list[FailureRecord],
                    releases: FalcoReleases) -> DriverSummary:
    per_target: dict[str, Counter[str]] = defaultdict(Counter)
    failed: Counter[str] = Counter()
    for record in probes:
        per_target[record.target][record.arch] += 1
    for failure in failures:
        failed[failure.target] += 1
        per_target.setdefault(failure.target, Counter())
    targets = tuple(TargetCount(t, _arch_counts(per_target[t]), failed[t])
                    for t in sorted(per_target, key=natural_key))
    tags: Counter[str] = Counter()
    pages: dict[str, str] = {}
    for record in probes:
        if record.release:
            tags[record.release] += 1
            pages.setdefault(record.release, release_page(record.url, record.release))
    served = tuple(str(f) for f in releases.falco_for(version))
    return DriverSummary(version, served, len(probes), len(failures),
                         _arch_counts(Counter(r.arch for r in probes)), targets,
                         tuple((tag, n, pages[tag])
                               for tag, n in sorted(tags.items(),
                                                    key=lambda kv: natural_key(kv[0]))),
                         counted(r.source for r in probes), count_load_tests(probes))


def _target_summaries(catalog: Catalog, order: tuple[str, ...]) -> tuple[TargetSummary, ...]:
    probes: dict[str, Counter[str]] = defaultdict(Counter)
    failures: Counter[str] = Counter()
    kernels: dict[str, set[tuple[str, str, str]]] = defaultdict(set)
    for record in catalog.probes():
        probes[record.target][record.driver_version] += 1
        kernels[record.target].add((record.arch, record.kernel_release, record.kernel_version))
    for failure in catalog.failures():
        failures[failure.target] += 1
        probes.setdefault(failure.target, Counter())
        kernels[failure.target].add((failure.arch, failure.kernel_release,
                                     failure.kernel_version))
    return tuple(
        TargetSummary(t, sum(probes[t].values()), failures[t], len(kernels[t]),
                      tuple((d, probes[t][d]) for d in order if probes[t][d]))
        for t in sorted(probes, key=natural_key))


# --- the bulk pages ---------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class TablePage:
    """Every probe of one driver version and one target (both arches)."""

    driver_version: str
    target: str
    falco: tuple[str, ...]
    groups: tuple[tuple[str, tuple[ProbeRecord, ...]], ...]
    failures: tuple[FailureRecord, ...]
    arches: tuple[tuple[str, int], ...]
    loadtests: LoadTests = LoadTests()
    sources: tuple[tuple[str, int], ...] = ()     # what was compiled, probes built from it
    commits: tuple[tuple[str, int], ...] = ()     # this repository's commit, probes

    @property
    def probes(self) -> int:
        return sum(len(rows) for _, rows in self.groups)

    @property
    def rejected(self) -> tuple[ProbeRecord, ...]:
        """Probes their kernel's verifier refused (load test), in table order."""
        return tuple(r for _, rows in self.groups for r in rows
                     if r.loadtest and r.loadtest.status == "rejected")

    @property
    def shown_arches(self) -> tuple[str, ...]:
        """The arches with probes here: an Arch column only when there are two."""
        return tuple(arch for arch, n in self.arches if n)


def table_pages(model: SiteModel) -> Iterator[TablePage]:
    """One page per (driver version, target), newest driver first, targets by name."""
    by_key: dict[tuple[str, str], list[ProbeRecord]] = defaultdict(list)
    failed: dict[tuple[str, str], list[FailureRecord]] = defaultdict(list)
    for cat_file in model.catalog.files.values():
        key = (cat_file.driver_version, cat_file.target)
        by_key[key].extend(cat_file.probes)
        failed[key].extend(cat_file.failures)
    for driver in model.drivers:
        for count in driver.targets:
            key = (driver.version, count.target)
            rows = by_key.get(key, [])
            yield TablePage(driver.version, count.target, driver.falco, series_groups(rows),
                            tuple(sorted(failed.get(key, []), key=row_sort_key)),
                            _arch_counts(Counter(r.arch for r in rows)),
                            count_load_tests(rows), counted(r.source for r in rows),
                            counted(r.commit for r in rows))


KernelKey = tuple[str, str, str]            # (kernel_release, kernel_version, arch)


@dataclass(frozen=True, slots=True)
class Cell:
    """One driver version for one kernel: built ("ok"), "failed" or "missing"."""

    status: str
    failure: FailureRecord | None = None


OK = Cell("ok")
MISSING = Cell("missing")


@dataclass(frozen=True, slots=True)
class CoverageRow:
    kernel_release: str
    kernel_version: str
    arch: str
    cells: tuple[Cell, ...]

    @property
    def flags(self) -> str:
        """Space-separated tokens the coverage filter selects on."""
        out = []
        if any(c.status == "missing" for c in self.cells):
            out.append("missing")
        if any(c.status == "failed" for c in self.cells):
            out.append("failed")
        if all(c.status == "ok" for c in self.cells):
            out.append("complete")
        return " ".join(out)


@dataclass(frozen=True, slots=True)
class DriverCoverage:
    driver_version: str
    built: int
    failed: int
    missing: int


MATRIX_SERIES = 30


@dataclass(frozen=True, slots=True)
class SeriesCoverage:
    """One kernel series of a target: its kernels, and per driver version how many are
    built and failed (in the order of CoveragePage.drivers)."""

    series: str
    kernels: int
    built: tuple[int, ...]
    failed: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class CoveragePage:
    """One target across driver versions: which kernels have probes for which."""

    target: str
    drivers: tuple[str, ...]                # the columns, newest first
    groups: tuple[tuple[str, tuple[CoverageRow, ...]], ...]
    per_driver: tuple[DriverCoverage, ...]

    @property
    def kernels(self) -> int:
        return sum(len(rows) for _, rows in self.groups)

    @property
    def arches(self) -> tuple[str, ...]:
        present = {row.arch for _, rows in self.groups for row in rows}
        return tuple(a for a in (*ARCHES, *sorted(present - set(ARCHES))) if a in present)

    @property
    def series(self) -> tuple[SeriesCoverage, ...]:
        """Which driver versions cover which kernel series: the compact matrix; empty
        when the target has more than MATRIX_SERIES of them (Flatcar's releases are its
        OS versions: hundreds of "series" of one kernel each say nothing)."""
        if len(self.groups) > MATRIX_SERIES:
            return ()
        out = []
        for series, rows in self.groups:
            built = [0] * len(self.drivers)
            failed = [0] * len(self.drivers)
            for row in rows:
                for i, cell in enumerate(row.cells):
                    built[i] += cell.status == "ok"
                    failed[i] += cell.status == "failed"
            out.append(SeriesCoverage(series, len(rows), tuple(built), tuple(failed)))
        return tuple(out)


def coverage_pages(model: SiteModel) -> Iterator[CoveragePage]:
    built: dict[str, dict[KernelKey, set[str]]] = defaultdict(lambda: defaultdict(set))
    failed: dict[str, dict[KernelKey, dict[str, FailureRecord]]] = defaultdict(
        lambda: defaultdict(dict))
    for record in model.catalog.probes():
        built[record.target][_kernel(record)].add(record.driver_version)
    for failure in model.catalog.failures():
        failed[failure.target][_kernel(failure)][failure.driver_version] = failure
    for summary in model.targets:
        target = summary.target
        drivers = tuple(d for d in model.order
                        if any(d in s for s in built[target].values())
                        or any(d in f for f in failed[target].values()))
        yield _coverage(target, drivers, built[target], failed[target])


def _kernel(record: ProbeRecord | FailureRecord) -> KernelKey:
    return (record.kernel_release, record.kernel_version, record.arch)


def _coverage(target: str, drivers: tuple[str, ...], built: Mapping[KernelKey, set[str]],
              failed: Mapping[KernelKey, Mapping[str, FailureRecord]]) -> CoveragePage:
    rows = []
    counts = {d: [0, 0, 0] for d in drivers}
    for key in sorted({*built, *failed}, key=lambda k: (natural_key(k[0]), natural_key(k[1]),
                                                        k[2])):
        cells = []
        for driver in drivers:
            failure = failed.get(key, {}).get(driver)
            if driver in built.get(key, ()):
                cell, slot = OK, 0
            elif failure is not None:
                cell, slot = Cell("failed", failure), 1
            else:
                cell, slot = MISSING, 2
            counts[driver][slot] += 1
            cells.append(cell)
        rows.append(CoverageRow(*key, cells=tuple(cells)))
    groups: list[tuple[str, list[CoverageRow]]] = []
    for row in rows:
        series = kernel_series(row.kernel_release)
        if not groups or groups[-1][0] != series:
            groups.append((series, []))
        groups[-1][1].append(row)
    return CoveragePage(target, drivers, tuple((s, tuple(r)) for s, r in groups),
                        tuple(DriverCoverage(d, *counts[d]) for d in drivers))


@dataclass(frozen=True, slots=True)
class FailuresPage:
    total: int
    by_step: tuple[tuple[str, int], ...]
    by_reason: tuple[tuple[str, int], ...]   # the most frequent reasons
    by_driver: tuple[tuple[str, int], ...]
    groups: tuple[tuple[str, tuple[FailureRecord, ...]], ...] = field(default=())
    by_category: tuple[tuple[str, int], ...] = ()   # "" (not classified) left out


TOP_REASONS = 15


def failures_page(model: SiteModel) -> FailuresPage:
    failures = list(model.catalog.failures())
    per_driver: dict[str, list[FailureRecord]] = defaultdict(list)
    for failure in failures:
        per_driver[failure.driver_version].append(failure)
    groups = tuple((d, tuple(sorted(per_driver[d], key=lambda f: (f.target, *row_sort_key(f)))))
                   for d in model.order if per_driver.get(d))
    reasons = Counter(f.reason for f in failures)
    return FailuresPage(
        total=len(failures),
        by_step=tuple(sorted(Counter(f.step for f in failures).items(),
                             key=lambda kv: (-kv[1], kv[0]))),
        by_reason=tuple(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_REASONS]),
        by_driver=tuple((d, len(rows)) for d, rows in groups),
        groups=groups, by_category=counted(f.category for f in failures))
