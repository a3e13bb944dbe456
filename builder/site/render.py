"""Page models to HTML through Jinja2 templates (autoescaped), and the page plan.

Bulk tables are rendered straight to HTML here, never through Markdown, and
every page whose rows would pass the byte budget is split by kernel series
(`5.4`, `5.10` ...) into parts, each a page of its own under the table's
folder. Within a page the rows come in blocks of at most BLOCK_ROWS (small tables
the browser lays out only near the screen), with the columns chosen per page
(`Columns`: only those that say something, each as wide as its longest value).
Links are relative (the site works from any base URL, mirrors included); catalog
URLs become links only when they are http(s).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup, escape

from builder.core.config import Config
from builder.core.records import ARCHES, FAILURE_STEPS
from builder.site import api, charts, layout
from builder.site.model import (
    CoveragePage,
    FailuresPage,
    SiteModel,
    TablePage,
    coverage_pages,
    failures_page,
    table_pages,
)

# Rows of one page may take this many bytes of HTML; the theme's own markup
# (header, navigation, footer) adds about 20 kB. What a phone must parse before the
# page answers (about 450 probe rows, measured in bench/bench_site.py); far below
# the 1.5 MB a page may weigh.
PAGE_BUDGET = 300_000
# Front matter of the bulk pages: no navigation or outline (the table takes the width),
# and BULK_META, which theme/main.html reads to load Material's script on demand.
BULK_HIDE = ("navigation", "toc")
BULK_META = "falco_probes_bulk"
# The home page's theme script waits for an interaction too: at load it would start the
# search worker, which fetches the whole search index (183 kB of the demo's 580 kB, the
# biggest cost of the home page on a phone), before anyone searches (issue 22).
ON_DEMAND_META = "falco_probes_on_demand"
_HTTP_URL = re.compile(r"https?://[^\s<>\"'`\\\x00-\x1f\x7f]+", re.IGNORECASE)


def safe_url(value: object) -> str:
    """The URL if it is a plain http(s) URL, else "" (and the template shows no link)."""
    text = str(value or "")
    return text if _HTTP_URL.fullmatch(text) else ""


def human_size(size: object) -> str:
    value = float(size) if isinstance(size, int | float) else 0.0
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"  # pragma: no cover - the loop always returns


def short_driver(version: str) -> str:
    """A column-wide driver version: 6.0.1+driver -> 6.0.1, a commit hash -> 8 digits."""
    if re.fullmatch(r"[0-9a-f]{40}", version):
        return version[:8]
    return version.removesuffix("+driver")


def make_env() -> Environment:
    env = Environment(loader=PackageLoader("builder.site", "templates"), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                      keep_trailing_newline=False)
    env.filters["safe_url"] = safe_url
    env.filters["size"] = human_size
    env.filters["num"] = "{:,}".format
    env.filters["count"] = count_of
    env.filters["short_driver"] = short_driver
    env.globals["ARCHES"] = ARCHES
    env.globals["STEPS"] = FAILURE_STEPS
    env.globals["L"] = layout
    return env


@dataclass(frozen=True, slots=True)
class Links:
    """Relative links from the page at `current` (a quoted site URL)."""

    current: str
    page_urls: dict[str, str]
    use_directory_urls: bool = True

    def page(self, src_uri: str) -> str:
        """A generated page."""
        return layout.relative(self.page_urls[src_uri], self.current)

    def doc(self, src_uri: str) -> str:
        """A page of docs/ (usage.md, site.md ...)."""
        url = layout.page_url(src_uri, self.use_directory_urls)
        return layout.relative(layout.quote_url(url), self.current)

    def url(self, quoted_site_url: str) -> str:
        return layout.relative(quoted_site_url, self.current)

    def path(self, site_path: str) -> str:
        """A file of the site that is not a page (API, assets)."""
        return layout.relative(layout.quote_url(site_path), self.current)


@dataclass(frozen=True, slots=True)
class GeneratedPage:
    src_uri: str
    title: str
    html: str
    searchable: bool = False
    hide: tuple[str, ...] = ("toc",)
    bulk: bool = False      # a big table: the theme's script waits for an interaction
    theme_on_demand: bool = False   # the theme's script waits, the page keeps its chrome

    def markdown(self) -> str:
        """The page's Markdown source: front matter only; the plugin supplies the HTML."""
        meta: dict[str, Any] = {"title": str(escape(self.title)), "hide": list(self.hide)}
        if not self.searchable:
            meta["search"] = {"exclude": True}
        if self.bulk:
            meta[BULK_META] = True
        if self.theme_on_demand:
            meta[ON_DEMAND_META] = True
        # JSON is YAML: every value is quoted safely whatever the catalog holds.
        lines = ["---", *(f"{k}: {json.dumps(v)}" for k, v in meta.items()), "---", ""]
        return "\n".join(lines)


class Renderer:
    def __init__(self, model: SiteModel, *, use_directory_urls: bool = True,
                 page_budget: int = PAGE_BUDGET, drivers_repo: str = "",
                 config: Config | None = None) -> None:
        self.model = model
        self.config = config
        self.env = make_env()
        self.use_directory_urls = use_directory_urls
        self.page_budget = page_budget
        self.drivers_repo = drivers_repo
        self.page_urls: dict[str, str] = {}
        for src_uri in self._fixed_pages():
            self._register(src_uri)

    # --- urls ---------------------------------------------------------------------------

    def _register(self, src_uri: str) -> str:
        url = layout.quote_url(layout.page_url(src_uri, self.use_directory_urls))
        self.page_urls[src_uri] = url
        return url

    def _fixed_pages(self) -> Iterator[str]:
        yield from (layout.HOME, layout.DRIVERS, layout.TARGETS, layout.FAILURES)
        for driver in self.model.drivers:
            yield layout.driver_page(driver.version)
            for count in driver.targets:
                yield layout.table_page(driver.version, count.target)
        for target in self.model.targets:
            yield layout.coverage_page(target.target)

    def links(self, src_uri: str) -> Links:
        return Links(self.page_urls[src_uri], self.page_urls, self.use_directory_urls)

    def _render(self, template: str, src_uri: str, **context: Any) -> str:
        return self.env.get_template(template).render(
            model=self.model, links=self.links(src_uri), **context)

    # --- the plan -------------------------------------------------------------------------

    def plan(self) -> Iterator[GeneratedPage]:
        """Every page of the site, rendered. Parts of split tables register their URLs."""
        yield self.home()
        yield self.drivers_index()
        yield self.targets_index()
        yield from self.failures()
        for driver in self.model.drivers:
            yield self.driver(driver.version)
        for page in table_pages(self.model):
            yield from self.table(page)
        for coverage in coverage_pages(self.model):
            yield from self.coverage(coverage)

    def home(self) -> GeneratedPage:
        manifest = api.find_manifest(self.model, self.page_urls, self.drivers_repo,
                                     self.config)
        html = self._render("home.html.j2", layout.HOME,
                            manifest=Markup(api.json_for_html(manifest)),  # noqa: S704
                            chart=self._drivers_chart(layout.HOME),
                            default_falco=self._default_falco())
        return GeneratedPage(layout.HOME, "Falco eBPF probes", html, searchable=True,
                             hide=("toc",), theme_on_demand=True)

    def _default_falco(self) -> str:
        """The newest known Falco release whose driver version has probes here."""
        present = {d.version for d in self.model.drivers if d.probes}
        releases = self.model.releases
        for falco in reversed(releases.releases()):
            if releases.driver_for(falco) in present:
                return str(falco)
        return str(releases.newest())

    def _drivers_chart(self, src_uri: str) -> charts.BarChart:
        links = self.links(src_uri)
        items = [charts.BarItem(d.version, tuple(d.arches),
                                links.page(layout.driver_page(d.version)))
                 for d in self.model.drivers]
        return charts.bar_chart("Probes per driver version", items,
                                [(a, a) for a in ARCHES])

    def drivers_index(self) -> GeneratedPage:
        html = self._render("drivers.html.j2", layout.DRIVERS,
                            chart=self._drivers_chart(layout.DRIVERS))
        return GeneratedPage(layout.DRIVERS, "Driver versions", html, searchable=True)

    def targets_index(self) -> GeneratedPage:
        links = self.links(layout.TARGETS)
        values: dict[tuple[str, str], int] = {}
        hrefs: dict[tuple[str, str], str] = {}
        for driver in self.model.drivers:
            for count in driver.targets:
                values[(count.target, driver.version)] = count.total
                hrefs[(count.target, driver.version)] = links.page(
                    layout.table_page(driver.version, count.target))
        grid = charts.heatmap("Probes per target and driver version",
                              [t.target for t in self.model.targets], list(self.model.order),
                              values, hrefs, column_label=short_driver)
        html = self._render("targets.html.j2", layout.TARGETS, chart=grid)
        return GeneratedPage(layout.TARGETS, "Targets", html, searchable=True)

    def driver(self, version: str) -> GeneratedPage:
        src_uri = layout.driver_page(version)
        summary = self.model.driver(version)
        assert summary is not None
        links = self.links(src_uri)
        chart = charts.bar_chart(
            f"Probes per target for {version}",
            [charts.BarItem(t.target, t.probes,
                            links.page(layout.table_page(version, t.target)))
             for t in summary.targets], [(a, a) for a in ARCHES])
        html = self._render("driver.html.j2", src_uri, driver=summary, chart=chart)
        return GeneratedPage(src_uri, f"Driver version {version}", html, searchable=True)

    # --- bulk pages, split when too big ---------------------------------------------------

    def _rows(self, template: str, cols: Columns, caption: Callable[[str, int], str],
              ) -> Callable[[Sequence[Group], str], str]:
        """A function rendering groups of rows as blocks, from the page at `current`."""
        rows = self.env.get_template(template)

        def render(groups: Sequence[Group], current: str) -> str:
            return rows.render(blocks=blocks(groups, caption), cols=cols, first=True,
                               links=self.links(current))

        return render

    def table(self, page: TablePage) -> Iterator[GeneratedPage]:
        src_uri = layout.table_page(page.driver_version, page.target)
        title = f"{page.target} probes for driver {page.driver_version}"
        cols = probe_columns(page)
        render_rows = self._rows("table_rows.html.j2", cols,
                                 lambda series, n: f"Kernels {series}: {n:,} probes")
        yield from self._bulk(src_uri, title, page.groups, render_rows,
                              lambda uri, body, parts, count: self._render(
                                  "table.html.j2", uri, page=page, rows=body, parts=parts,
                                  cols=cols, count=count))

    def coverage(self, page: CoveragePage) -> Iterator[GeneratedPage]:
        src_uri = layout.coverage_page(page.target)
        title = f"Coverage of {page.target}"
        cols = coverage_columns(page)
        render_rows = self._rows("coverage_rows.html.j2", cols,
                                 lambda series, n: f"Kernels {series}: {n:,}")
        # The chart is drawn on every part of a split page: its links are relative to
        # the part it is on (targets/<target>/<series>/ is one folder deeper).
        yield from self._bulk(src_uri, title, page.groups, render_rows,
                              lambda uri, body, parts, count: self._render(
                                  "coverage.html.j2", uri, page=page, rows=body, parts=parts,
                                  chart=self._coverage_chart(page, uri), cols=cols,
                                  count=count))

    def _coverage_chart(self, page: CoveragePage, current: str) -> charts.BarChart:
        links = self.links(current)
        return charts.bar_chart(
            f"Kernels of {page.target} per driver version",
            [charts.BarItem(d.driver_version, (("ok", d.built), ("failed", d.failed),
                                               ("missing", d.missing)),
                            links.page(layout.table_page(d.driver_version, page.target)))
             for d in page.per_driver],
            [("ok", "built"), ("failed", "failed"), ("missing", "missing")])

    def failures(self) -> Iterator[GeneratedPage]:
        page: FailuresPage = failures_page(self.model)
        cols = failure_columns(page)
        chart = charts.bar_chart("Failures per step",
                                 [charts.BarItem(step, (("failed", n),))
                                  for step, n in page.by_step], [])
        render_rows = self._rows("failure_rows.html.j2", cols,
                                 lambda driver, n: f"Driver version {driver}: {n:,} failures")
        yield from self._bulk(layout.FAILURES, "Failed builds", page.groups, render_rows,
                              lambda uri, body, parts, count: self._render(
                                  "failures.html.j2", uri, page=page, rows=body, parts=parts,
                                  chart=chart, cols=cols, count=count),
                              part_uri=layout.failures_page)

    def _bulk(self, src_uri: str, title: str, groups: Sequence[Group],
              render_rows: Callable[[Sequence[Group], str], str],
              render_page: Callable[[str, Markup, Sequence[Part], int], str],
              part_uri: Callable[[str], str] | None = None) -> Iterator[GeneratedPage]:
        """One page with every row, or an overview page and one page per part."""
        whole = render_rows(groups, src_uri)
        if len(whole) <= self.page_budget:
            count = sum(len(rows) for _, rows in groups)
            rows = Markup(whole)  # noqa: S704 - render_rows is an autoescaped template's output
            yield GeneratedPage(src_uri, title, render_page(src_uri, rows, (), count),
                                hide=BULK_HIDE, bulk=True)
            return
        chunks = [(label, rows, len(render_rows([(label, rows)], src_uri)))
                  for label, rows in groups]
        folder_uri = part_uri or (lambda slug: src_uri.removesuffix("index.md") + slug
                                  + "/index.md")
        parts = pack_parts(self._fit(chunks, render_rows, src_uri), self.page_budget)
        for part in parts:
            self._register(folder_uri(part.slug))
        planned = tuple(Part(p.slug, p.label, p.groups,
                             self.page_urls[folder_uri(p.slug)]) for p in parts)
        yield GeneratedPage(src_uri, title, render_page(src_uri, Markup(""), planned, 0),
                            hide=BULK_HIDE, bulk=True)
        for part in planned:
            uri = folder_uri(part.slug)
            body = Markup(render_rows(part.groups, uri))  # noqa: S704
            yield GeneratedPage(uri, f"{title}, kernels {part.label}",
                                render_page(uri, body, planned, part.count),
                                hide=BULK_HIDE, bulk=True)

    def _fit(self, chunks: list[tuple[str, Sequence[Any], int]],
             render_rows: Callable[[Sequence[Group], str], str],
             src_uri: str) -> list[tuple[str, Sequence[Any], int]]:
        """Cut every chunk bigger than the budget in halves until each fits (or is one row)."""
        out: list[tuple[str, Sequence[Any], int]] = []
        for label, rows, whole in chunks:
            pieces = [(rows, whole)]
            while any(size > self.page_budget and len(r) > 1 for r, size in pieces):
                next_pieces: list[tuple[Sequence[Any], int]] = []
                for r, size in pieces:
                    if size > self.page_budget and len(r) > 1:
                        half = len(r) // 2
                        next_pieces += [(piece, len(render_rows([(label, piece)], src_uri)))
                                        for piece in (r[:half], r[half:])]
                    else:
                        next_pieces.append((r, size))
                pieces = next_pieces
            if len(pieces) == 1:
                out.append((label, rows, whole))
            else:
                out += [(f"{label} ({i}/{len(pieces)})", r, size)
                        for i, (r, size) in enumerate(pieces, 1)]
        return out


Group = tuple[str, Sequence[Any]]          # a label (kernel series, driver) and its rows
# Rows per block: what the browser lays out at once when the block nears the screen.
BLOCK_ROWS = 40


def blocks(groups: Sequence[Group], caption: Callable[[str, int], str],
           size: int = BLOCK_ROWS) -> list[tuple[str, Sequence[Any]]]:
    """Groups of rows as blocks of at most `size` rows, in order: a big group is cut into
    several blocks, the first captioned with the group; small groups in a row share a
    block, captioned with the first and last ("Kernels 3.10 to 4.1: 37")."""
    out: list[tuple[str, Sequence[Any]]] = []
    pending: list[tuple[str, Sequence[Any]]] = []

    def flush() -> None:
        if pending:
            first, last = pending[0][0], pending[-1][0]
            label = first if first == last else f"{first} to {last}"
            rows = [r for _, group in pending for r in group]
            out.append((caption(label, len(rows)), rows))
            pending.clear()

    for label, rows in groups:
        if len(rows) > size // 2:
            flush()
            out += [(caption(label, len(rows)) if start == 0 else "", rows[start:start + size])
                    for start in range(0, len(rows), size)]
        else:
            if sum(len(group) for _, group in pending) + len(rows) > size:
                flush()
            pending.append((label, rows))
    flush()
    return out


@dataclass(frozen=True, slots=True)
class Column:
    label: str
    width: int                  # in ch of the table's (monospace) font
    sort: str = ""              # order, natural, num or text; "" is not sortable
    title: str = ""


@dataclass(frozen=True, slots=True)
class Columns:
    """The columns of a bulk table: those that say something on this page (no Arch
    column with one arch...), each as wide as its longest value, so that every row is
    one line and every block of the page lines up."""

    columns: tuple[Column, ...]
    css: str = ""
    arch: bool = False
    loadtest: bool = False
    log: bool = False
    source: bool = False

    @property
    def width(self) -> int:
        return sum(c.width for c in self.columns)


_PAD = 3                        # cell padding and the sort arrow, in ch


def _column(label: str, values: Iterable[int], sort: str = "", title: str = "",
            at_most: int = 0) -> Column:
    width = max(len(label), *values, 1) + _PAD
    return Column(label, min(width, at_most) if at_most else width, sort, title)


def probe_columns(page: TablePage) -> Columns:
    rows = [r for _, records in page.groups for r in records]
    arch = len(page.shown_arches) > 1
    loadtest = any(r.loadtest for r in rows)
    log = any(r.log or r.job or r.attestation for r in rows)
    source = len(page.sources) > 1 or len(page.commits) > 1
    columns = [_column("Kernel release", (len(r.kernel_release) for r in rows), "order"),
               _column("Version", (len(r.kernel_version) for r in rows), "natural",
                       "Kernel version: the digits after # in uname -v, as the loader uses")]
    if arch:
        columns.append(_column("Arch", (len(r.arch) for r in rows), "text"))
    columns += [_column("File", (len(r.file) + (4 if r.aliases else 0) for r in rows), "text"),
                _column("sha256", [15]),
                _column("Size", [8], "num"),
                _column("Built", [10], "text")]
    if loadtest:
        columns.append(_column("Load test", [12], "text"))
    if log:
        columns.append(_column("Build", [len("log   job   attest.") if any(
            r.attestation for r in rows) else len("log   job")],
            title="Build log, CI job and build provenance attestation"))
    if source:
        columns.append(_column("Source", (len(r.source or r.driver_ref) + 9 for r in rows),
                               "text", at_most=40))
    return Columns(tuple(columns), "fp-probes", arch, loadtest, log, source)


def coverage_columns(page: CoveragePage) -> Columns:
    arch = len(page.arches) > 1
    kernel = (len(row.kernel_release) + len(row.kernel_version) + 2
              + (len(row.arch) + 1 if arch else 0)
              for _, rows in page.groups for row in rows)
    columns = [_column("Kernel", kernel),
               *(Column(short_driver(d), 3, "", d) for d in page.drivers)]
    return Columns(tuple(columns), "fp-coverage fp-narrow", arch)


def count_of(n: int, singular: str, plural: str = "") -> str:
    """`1 probe`, `2 probes`: a number with the noun that agrees with it."""
    return f"{n:,} {singular if n == 1 else plural or singular + 's'}"


def failure_columns(page: FailuresPage) -> Columns:
    rows = [f for _, records in page.groups for f in records]
    arch = len({f.arch for f in rows}) > 1
    columns = [_column("Driver", (len(short_driver(f.driver_version)) for f in rows), "order"),
               _column("Target", (len(f.target) for f in rows), "text"),
               _column("Kernel release", (len(f.kernel_release) for f in rows), "natural"),
               _column("Version", (len(f.kernel_version) for f in rows), "natural"),
               # The log right after the kernel: in view without scrolling sideways, on a
               # desktop and (site.css lays a row out as lines there) on a phone.
               _column("Log", [7])]
    if arch:
        columns.append(_column("Arch", (len(f.arch) for f in rows), "text"))
    columns += [_column("Step", (len(f.step) for f in rows), "text"),
                _column("Category", (len(f.category) for f in rows), "text"),
                _column("Reason", [50], "text"),
                _column("Attempts", [2], "num"),
                _column("Last attempt", [10], "text")]
    return Columns(tuple(columns), "fp-failures", arch, log=True)


@dataclass(frozen=True, slots=True)
class Part:
    slug: str
    label: str
    groups: tuple[Group, ...]
    url: str = ""

    @property
    def count(self) -> int:
        return sum(len(rows) for _, rows in self.groups)


def _slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", label).strip("-") or "part"


def pack_parts(chunks: Sequence[tuple[str, Sequence[Any], int]], budget: int) -> list[Part]:
    """Consecutive chunks packed greedily into parts of at most `budget` bytes."""
    packed: list[list[tuple[str, Sequence[Any], int]]] = []
    size = 0
    for chunk in chunks:
        if packed and size + chunk[2] <= budget:
            packed[-1].append(chunk)
            size += chunk[2]
        else:
            packed.append([chunk])
            size = chunk[2]
    parts: list[Part] = []
    seen: set[str] = set()
    for group in packed:
        first, last = group[0][0], group[-1][0]
        label = first if first == last else f"{first} to {last}"
        slug = _slug(label.replace(" to ", "-to-"))
        while slug in seen:
            slug += "-"
        seen.add(slug)
        parts.append(Part(slug, label, tuple((name, rows) for name, rows, _ in group)))
    return parts
