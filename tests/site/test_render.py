"""site/render.py: pages rendered from models, split under the page budget, and
escaping of records full of hostile values that the catalog itself would refuse
(the templates must not rely on that)."""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml
from markupsafe import escape
from sitecatalog import (
    DEBIAN_SOURCE,
    REPOSITORY,
    SOURCES,
    STORE_URL,
    VERIFIER,
    Fixture,
    hostile_model,
)

from builder.core.catalog import Catalog, CatalogFile
from builder.core.records import ProbeRecord
from builder.core.versions import BUILTIN_RELEASES
from builder.site import api, layout
from builder.site.model import (
    SiteModel,
    TablePage,
    build_site,
    count_load_tests,
    coverage_pages,
    failures_page,
    release_page,
    series_groups,
    table_pages,
)
from builder.site.render import (
    BLOCK_ROWS,
    BULK_META,
    GeneratedPage,
    Renderer,
    blocks,
    pack_parts,
    probe_columns,
    safe_url,
)

# --- rendering ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("url", "ok"), [
    ("https://example.org/a/falco_x.o", True), ("http://127.0.0.1:8000/store/x.o", True),
    ("HTTPS://EXAMPLE.ORG/x", True), ("file:///srv/store/x.o", False),
    ("javascript:alert(1)", False), ("data:text/html,<b>", False), ("", False),
    ("https://example.org/\"onmouseover=alert(1)", False), ("https://a b", False),
    ("//example.org/x", False), (" https://example.org/x", False),
])
def test_safe_url(url: str, ok: bool) -> None:
    assert safe_url(url) == (url if ok else "")


def test_generated_markdown_is_front_matter_only() -> None:
    page = GeneratedPage("x/index.md", 'a "<b>" title', "<p>x</p>")
    text = page.markdown()
    meta = yaml.safe_load(text.split("---")[1])
    assert meta == {"title": "a &#34;&lt;b&gt;&#34; title", "hide": ["toc"],
                    "search": {"exclude": True}}
    searchable = GeneratedPage("x/index.md", "t", "", searchable=True).markdown()
    assert "search" not in yaml.safe_load(searchable.split("---")[1])


class _Tags(HTMLParser):
    """Every start tag and attribute, to prove hostile text never became markup."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def test_hostile_values_come_out_escaped() -> None:
    model = hostile_model()
    renderer = Renderer(model, page_budget=2_000)
    pages = list(renderer.plan())
    assert len(pages) >= 8
    for page in pages:
        parser = _Tags()
        parser.feed(page.html)
        for tag, attrs in parser.tags:
            json_data = tag == "script" and attrs.get("type") == "application/json"
            assert tag not in ("script", "img", "iframe") or json_data, (page.src_uri, tag)
            for name, value in attrs.items():
                assert not name.startswith("on"), (page.src_uri, tag, attrs)
                if name == "href" and value and ":" in value.split("/")[0]:
                    assert value.startswith(("http://", "https://")), (page.src_uri, value)
                    assert '"' not in value and "<" not in value
        assert 'href="javascript' not in page.html
        assert "<script>alert" not in page.html
        assert yaml.safe_load(page.markdown().split("---")[1])["title"]
    home = next(p for p in pages if p.src_uri == layout.HOME)
    data = re.search(r'<script type="application/json" id="fp-find-data">(.*?)</script>',
                     home.html, re.S)
    assert data is not None and "<" not in data.group(1) and ">" not in data.group(1)
    assert list(json.loads(data.group(1))["drivers"]) == [model.order[0]]


def test_big_tables_are_split_by_kernel_series(model: SiteModel) -> None:
    budget = 6_000
    renderer = Renderer(model, page_budget=budget)
    pages = {p.src_uri: p for p in renderer.plan()}
    table = layout.table_page("6.0.1+driver", "ubuntu-generic")
    overview = pages[table]
    parts = [uri for uri in pages if uri.startswith(table.removesuffix("index.md"))
             and uri != table]
    assert len(parts) >= 2
    assert "split by kernel series" in overview.html and "fp-table" not in overview.html
    expected = {r.file for p in table_pages(model)
                if (p.driver_version, p.target) == ("6.0.1+driver", "ubuntu-generic")
                for _, rows in p.groups for r in rows}
    found: list[str] = []
    for uri in parts:
        html = pages[uri].html
        body = html.split('<div id="fp-table"')[1]
        rows = body[:body.rindex("</table></div>")]
        assert len(rows) <= budget or rows.count("<tr data-arch") == 1
        found += re.findall(r">(falco_ubuntu-generic_[^<]+\.o)</a>", rows)
        assert renderer.page_urls[uri] in overview.html
    assert sorted(found) == sorted(expected)


def test_pack_parts_keeps_order_and_budget() -> None:
    chunks = [("4.14", (1, 2), 40), ("5.4", (3,), 50), ("5.10", (4,), 20), ("5.15", (5,), 90),
              ("6.1 (1/2)", (6,), 30), ("6.1 (2/2)", (7,), 30)]
    parts = pack_parts(chunks, 100)
    assert [p.label for p in parts] == ["4.14 to 5.4", "5.10", "5.15", "6.1 (1/2) to 6.1 (2/2)"]
    assert [r for p in parts for _, rows in p.groups for r in rows] == [1, 2, 3, 4, 5, 6, 7]
    assert [label for _, label in [(0, g[0]) for g in parts[0].groups]] == ["4.14", "5.4"]
    assert len({p.slug for p in parts}) == len(parts)


def test_empty_catalog_renders_every_fixed_page() -> None:
    model = build_site(Catalog(Path("empty")), BUILTIN_RELEASES)
    pages = {p.src_uri: p for p in Renderer(model).plan()}
    assert set(pages) == {layout.HOME, layout.DRIVERS, layout.TARGETS, layout.FAILURES}
    assert "The catalog is empty" in pages[layout.HOME].html
    assert "No failed build is recorded" in pages[layout.FAILURES].html
    assert api.index_document(model, {})["driver_versions"] == []


def table_html(model: SiteModel, records: list[ProbeRecord]) -> str:
    """One probe table page holding `records` (the first one's driver and target)."""
    first = records[0]
    page = TablePage(first.driver_version, first.target, (), series_groups(records), (),
                     (("x86_64", sum(r.arch == "x86_64" for r in records)),
                      ("aarch64", sum(r.arch == "aarch64" for r in records))),
                     count_load_tests(records))
    return next(Renderer(model).table(page)).html


def test_alias_rows_show_every_requested_name(model: SiteModel) -> None:
    page = next(p for p in table_pages(model)
                if (p.driver_version, p.target) == ("5.0.1+driver", "debian"))
    with_alias = next(r for _, rows in page.groups for r in rows if r.aliases)
    html = table_html(model, [with_alias])
    assert f'data-also="{" ".join(with_alias.aliases)}"' in html
    assert f"Also requested as {', '.join(with_alias.aliases)}" in html
    assert f">{with_alias.file}</a>" in html


def test_file_urls_are_shown_but_not_linked(model: SiteModel) -> None:
    record = next(iter(model.catalog.probes()))
    local = replace(record, url="file:///srv/store/x.o", aliases=())
    html = table_html(model, [local])
    assert "file:///" not in html and f"<td>{record.file}<td>" in html


def test_failures_page_splits_by_driver_version(model: SiteModel, fixture: Fixture) -> None:
    renderer = Renderer(model, page_budget=2_500)
    pages = {p.src_uri: p for p in renderer.plan()}
    parts = [uri for uri in pages if uri.startswith("failures/") and uri != layout.FAILURES]
    assert parts, "the failures table should be split"
    assert "fp-table" not in pages[layout.FAILURES].html
    rows = sum(pages[uri].html.count('<tr data-arch="') for uri in parts)
    assert rows == len(fixture.failures)
    assert all(renderer.page_urls[uri] in pages[layout.FAILURES].html for uri in parts)


# --- issue 13 and the records' new fields -------------------------------------------------

def test_load_tests_are_counted_and_shown(model: SiteModel, fixture: Fixture) -> None:
    driver = model.driver("6.0.1+driver")
    assert driver is not None
    mine = [r for r in fixture.probes if r.driver_version == "6.0.1+driver"]
    status = Counter(r.loadtest.status if r.loadtest else "none" for r in mine)
    assert (driver.loadtests.passed, driver.loadtests.rejected, driver.loadtests.untested) == (
        status["passed"], status["rejected"], status["not_tested"])
    page = next(p for p in table_pages(model)
                if (p.driver_version, p.target) == ("6.0.1+driver", "ubuntu-aws"))
    html = next(Renderer(model).table(page)).html
    rows = [r for _, group in page.groups for r in group]
    assert len(re.findall("✓ loads</span>(?:<td>|\n)", html)) == sum(
        1 for r in rows if r.loadtest and r.loadtest.status == "passed")
    rejected = [r for r in rows if r.loadtest and r.loadtest.status == "rejected"]
    assert rejected and page.rejected == tuple(rejected)
    for record in rejected:   # the badge links to the verifier's reason under the table
        assert f'<a class="fp-lt fp-lt-rejected" href="#lt-{record.file}">' in html
        assert f'<li id="lt-{record.file}">' in html
    assert html.count(escape(VERIFIER)) == len(rejected)
    assert f"{page.loadtests.passed} loaded in their kernel" in html
    untested = next(Renderer(model).table(next(
        p for p in table_pages(model) if p.driver_version == "5.0.1+driver"))).html
    assert "none of them load-tested yet" in untested and "Load test ↕" not in untested


def test_sources_commits_and_constant_columns(model: SiteModel) -> None:
    driver = model.driver("6.0.1+driver")
    assert driver is not None
    assert dict(driver.sources) == {
        DEBIAN_SOURCE: sum(1 for f in model.files_of("6.0.1+driver") if f.target == "debian"
                           for _ in f.probes),
        SOURCES["6.0.1+driver"]: driver.probes - dict(driver.sources)[DEBIAN_SOURCE]}
    html = Renderer(model).driver("6.0.1+driver").html
    assert f"<q>{DEBIAN_SOURCE}</q>" in html and "<q>libs archive 6.0.1+driver</q>" in html
    page = next(p for p in table_pages(model)
                if (p.driver_version, p.target) == ("6.0.1+driver", "debian"))
    cols = probe_columns(page)
    assert not cols.source      # one source, one commit: said once above the table
    assert [c.label for c in cols.columns] == ["Kernel release", "Version", "Arch", "File",
                                               "sha256", "Size", "Built", "Load test", "Build"]
    html = next(Renderer(model).table(page)).html
    assert f"Compiled from <q>{DEBIAN_SOURCE}</q>" in html
    assert "at commit <code>3c1d0f2a9b7e" in html
    single = next(p for p in table_pages(model)
                  if (p.driver_version, p.target) == ("6.0.1+driver", "amazonlinux2"))
    assert "Arch" in [c.label for c in probe_columns(single).columns]
    only_x86 = next(p for p in table_pages(model)
                    if (p.driver_version, p.target) == ("6.0.1+driver", "ubuntu-generic"))
    assert "Arch" not in [c.label for c in probe_columns(only_x86).columns]
    html = next(Renderer(model).table(only_x86)).html
    assert '<select name="arch"' not in html   # no arch filter with one arch


def test_rows_are_one_line_with_a_short_digest_that_copies_the_whole(model: SiteModel) -> None:
    page = next(p for p in table_pages(model)
                if (p.driver_version, p.target) == ("7.0.0+driver", "amazonlinux2"))
    html = next(Renderer(model).table(page)).html
    for _, rows in page.groups:
        for r in rows:
            assert f'data-copy="{r.sha256}">{r.sha256[:12]}…</button>' in html
            assert f'<a href="{r.job}">' in html   # in the row, or the caption of its block
            assert f'<a href="{r.attestation}" title="build provenance attestation">' in html
    widths = [c.width for c in probe_columns(page).columns]
    longest = max(len(r.kernel_release) for _, rows in page.groups for r in rows)
    assert widths[0] == max(longest, len("Kernel release")) + 3
    assert html.count("<colgroup>") == html.count('<div class="fp-block"')


def test_blocks_hold_at_most_block_rows_and_caption_the_series() -> None:
    def caption(label: str, n: int) -> str:
        return f"Kernels {label}: {n:,}"

    got = blocks([("5.10", list(range(95)))], caption)
    assert [len(r) for _, r in got] == [BLOCK_ROWS, BLOCK_ROWS, 95 - 2 * BLOCK_ROWS]
    assert [c for c, _ in got] == ["Kernels 5.10: 95", "", ""]
    assert [x for _, r in got for x in r] == list(range(95))
    big = list(range(4, 4 + BLOCK_ROWS))
    packed = blocks([("3.10", [1, 2]), ("4.1", [3]), ("4.4", big), ("5.4", [99])], caption)
    assert packed == [("Kernels 3.10 to 4.1: 3", [1, 2, 3]),
                      (f"Kernels 4.4: {BLOCK_ROWS}", big), ("Kernels 5.4: 1", [99])]
    many = blocks([(str(n), [n]) for n in range(2 * BLOCK_ROWS + 1)], caption)
    assert [len(r) for _, r in many] == [BLOCK_ROWS, BLOCK_ROWS, 1]   # a series per row


def test_targets_in_natural_order_and_no_empty_arch() -> None:
    records = [ProbeRecord("6.0.1+driver", "x86_64", t, "5.4.0-1", "1", "a" * 64, 1_234_567,
                           "https://example.org/x.o")
               for t in ("ubuntu-aws-5.11", "ubuntu-aws-5.3", "ubuntu-aws", "debian")]
    files = {(r.driver_version, r.arch, r.target): CatalogFile(r.driver_version, r.arch,
                                                                r.target, (r,))
             for r in records}
    model = build_site(Catalog(Path("x"), files), BUILTIN_RELEASES)
    expected = ["debian", "ubuntu-aws", "ubuntu-aws-5.3", "ubuntu-aws-5.11"]
    assert [t.target for t in model.targets] == expected
    driver = model.driver("6.0.1+driver")
    assert driver is not None and [t.target for t in driver.targets] == expected
    renderer = Renderer(model)
    html = renderer.driver("6.0.1+driver").html
    assert "<th scope=\"col\">aarch64</th>" not in html and "fp-seg-aarch64" not in html
    assert html.index(">ubuntu-aws-5.3<") < html.index(">ubuntu-aws-5.11<")
    home = renderer.home().html
    assert "fp-seg-aarch64" not in home and "aarch64</span>" not in home


def test_thousands_separators() -> None:
    probes = tuple(ProbeRecord("6.0.1+driver", "x86_64", "debian", f"5.10.{n}-1-amd64", "1",
                               f"{n:064x}", 3_000_000, "https://example.org/x.o")
                   for n in range(1_234))
    cat_file = CatalogFile("6.0.1+driver", "x86_64", "debian", probes)
    model = build_site(Catalog(Path("x"), {cat_file.key: cat_file}), BUILTIN_RELEASES)
    renderer = Renderer(model, page_budget=10_000_000)
    assert "<strong>1,234</strong> probes" in renderer.home().html
    assert "<td>1,234</td>" in renderer.drivers_index().html
    assert "1,234 probes (1,234 x86_64)" in renderer.driver("6.0.1+driver").html
    table = next(renderer.table(next(table_pages(model))))
    assert "1,234 rows" in table.html and "1,234 probes (1,234 x86_64)" in table.html


def test_release_tags_link_to_their_release(model: SiteModel) -> None:
    driver = model.driver("5.0.1+driver")
    assert driver is not None and driver.releases
    tag, count, url = driver.releases[0]
    assert url == f"https://github.com/{REPOSITORY}/releases/tag/{tag}"
    assert f'<a href="{url}">{tag}</a> ({count})' in Renderer(model).driver("5.0.1+driver").html
    assert release_page(f"{STORE_URL}/5.0.1%2Bdriver/x86_64/f.o", "t") == ""
    assert release_page("https://github.com/o/r/releases/download/t/f.o", "t") == \
        "https://github.com/o/r/releases/tag/t"


def test_failure_categories_on_every_failure_view(model: SiteModel, fixture: Fixture) -> None:
    page = failures_page(model)
    assert dict(page.by_category) == dict(Counter(f.category for f in fixture.failures
                                                  if f.category))
    pages = {p.src_uri: p.html for p in Renderer(model).plan()}
    failures = pages[layout.FAILURES]
    assert '<td>unsupported-kernel</td><td class="fp-wrap fp-reason">' in failures
    assert '<option value="unclassified">unclassified</option>' in failures
    classified = next(f for f in fixture.failures if f.category)
    coverage = pages[layout.coverage_page(classified.target)]
    assert f'title="failed at compile (unsupported-kernel): {escape(classified.reason)}' in \
        coverage


def test_coverage_matrix_counts_kernel_series(model: SiteModel) -> None:
    for page in coverage_pages(model):
        for matrix in page.series:
            rows = dict(page.groups)[matrix.series]
            assert matrix.kernels == len(rows)
            for i in range(len(page.drivers)):
                assert matrix.built[i] == sum(r.cells[i].status == "ok" for r in rows)
                assert matrix.failed[i] == sum(r.cells[i].status == "failed" for r in rows)
    page = next(p for p in coverage_pages(model) if p.target == "amazonlinux2")
    html = next(Renderer(model).coverage(page)).html
    assert '<table class="fp-matrix" data-fp-plain>' in html
    # numbers a screen reader reads apart: "5.10, 10 kernels", "3 built, 1✗ failed"
    assert all(f'{s.series} <small>{s.kernels}<span class="fp-sr"> kernels</span></small>'
               in html for s in page.series)
    assert '<span class="fp-sr"> built</span>' in html


def test_digests_are_linked_as_a_list_and_as_json(model: SiteModel) -> None:
    docs = dict(api.driver_documents("6.0.1+driver", (), list(model.files_of("6.0.1+driver"))))
    assert set(docs) == {layout.api_sums("6.0.1+driver"), layout.api_probes("6.0.1+driver")}
    html = Renderer(model).driver("6.0.1+driver").html
    assert 'href="../../api/6.0.1%2Bdriver/SHA256SUMS">SHA256SUMS</a>' in html
    assert 'href="../../api/6.0.1%2Bdriver/probes.json">probes.json</a>' in html


def test_a_log_published_beside_its_probe_is_linked_by_the_sentence_that_says_so(
        model: SiteModel) -> None:
    record = next(r for r in model.catalog.probes() if r.url.startswith("https://"))
    beside = replace(record, log=record.url + ".log", aliases=())
    html = table_html(model, [beside])
    assert '<a class="fp-log" href="#logs">log</a>' in html and 'id="logs"' in html
    assert record.url + ".log" not in html


def test_bulk_pages_ask_the_theme_to_wait(model: SiteModel) -> None:
    pages = list(Renderer(model).plan())
    for page in pages:
        meta = yaml.safe_load(page.markdown().split("---")[1])
        folders = page.src_uri.split("/")[:-1]
        bulk = (folders[:1] == ["drivers"] and len(folders) >= 3) or \
            (folders[:1] == ["targets"] and len(folders) >= 2) or folders[:1] == ["failures"]
        assert meta.get(BULK_META, False) == bulk, page.src_uri
