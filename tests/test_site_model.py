"""The site's pure parts: page models, the JSON API, charts, rendering and escaping.

Checked against the fixture catalog of tests/sitecatalog.py (265 probes, 3 driver
versions, 5 targets, both arches, failures and aliases) and against records full
of hostile values that the catalog itself would refuse (the templates must not
rely on that).
"""

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
    DRIVERS,
    PROBES_YAML,
    REPOSITORY,
    SOURCES,
    STORE_URL,
    VERIFIER,
    Fixture,
    build_fixture,
    write_catalog,
)

from builder.core.catalog import Catalog, CatalogFile, load_catalog, natural_key
from builder.core.config import load_config
from builder.core.records import FailureRecord, ProbeRecord, kernel_series, record_to_dict
from builder.core.versions import BUILTIN_RELEASES, FalcoReleases, v
from builder.site import api, charts, layout
from builder.site.model import (
    SiteModel,
    TablePage,
    build_site,
    count_load_tests,
    coverage_pages,
    driver_order,
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


@pytest.fixture(scope="module")
def fixture() -> Fixture:
    return build_fixture()


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory, fixture: Fixture) -> SiteModel:
    root = tmp_path_factory.mktemp("site-model")
    write_catalog(root / "catalog", fixture)
    (root / "probes.yaml").write_text(PROBES_YAML)
    return build_site(load_catalog(root / "catalog"),
                      load_config(root / "probes.yaml").releases)


# --- facts and order ---------------------------------------------------------------------

def test_falco_releases_combine_probes_yaml_and_the_builtin_table(model: SiteModel) -> None:
    releases = model.releases
    assert releases.driver_for(v("0.37.1")) == "7.0.0+driver"       # probes.yaml
    assert releases.driver_for(v("0.36.2")) == "6.0.1+driver"       # built-in
    assert releases.driver_for(v("0.26.1")) == "2aa88dcf6243982697811df4c1b484bcbe9488a2"
    assert releases.driver_for(v("0.36.9")) is None                 # no such release
    assert releases.driver_for(v("0.44.0")) is None
    for driver, falcos in DRIVERS.items():
        assert tuple(map(str, releases.falco_for(driver))) == falcos
    assert {v("0.37.0"), v("0.26.0")} <= set(releases.releases())


def test_site_json_carries_the_same_table(model: SiteModel) -> None:
    shipped = api.find_manifest(model, {layout.driver_page(d.version): "x"
                                        for d in model.drivers} | {
        layout.coverage_page(t.target): "y" for t in model.targets}, "")["falco"]
    assert shipped == {str(f): d for f, d in model.releases.table}
    newest = model.releases.newest()
    assert shipped[str(newest)] == model.releases.driver_for(newest)
    assert "0.36.9" not in shipped  # no such release: no answer, in Python or the browser


def test_without_probes_yaml_only_builtin_driver_versions_are_served() -> None:
    assert BUILTIN_RELEASES.falco_for("5.0.1+driver") == (v("0.35.0"), v("0.35.1"))
    assert BUILTIN_RELEASES.falco_for("7.0.0+driver") == ()


def test_driver_order_is_newest_first_with_unserved_ones_on_top() -> None:
    order = driver_order(["2aa88dcf6243982697811df4c1b484bcbe9488a2", "6.0.1+driver",
                          "9.9.0+driver", "2.0.0+driver", "8.0.0+driver"], BUILTIN_RELEASES)
    assert order == ["9.9.0+driver", "8.0.0+driver", "6.0.1+driver", "2.0.0+driver",
                     "2aa88dcf6243982697811df4c1b484bcbe9488a2"]


@pytest.mark.parametrize(("release", "series"), [
    ("5.10.0-21-amd64", "5.10"), ("4.14.301-230.533.amzn2.x86_64", "4.14"),
    ("05.04.1", "5.4"), ("3510.2.1", "3510.2"), ("v8+", "other"), ("6", "other"),
])
def test_kernel_series(release: str, series: str) -> None:
    assert kernel_series(release) == series


# --- models against the fixture ---------------------------------------------------------

def test_totals_and_summaries_match_the_fixture(model: SiteModel, fixture: Fixture) -> None:
    totals = model.totals
    assert (totals.probes, totals.failures) == (len(fixture.probes), len(fixture.failures))
    assert totals.driver_versions == 3 and totals.targets == 5
    assert dict(totals.arches) == dict(Counter(r.arch for r in fixture.probes))
    assert totals.updated == max([r.built for r in fixture.probes]
                                 + [f.last_attempt for f in fixture.failures])
    assert [d.version for d in model.drivers] == ["7.0.0+driver", "6.0.1+driver",
                                                  "5.0.1+driver"]
    for driver in model.drivers:
        mine = [r for r in fixture.probes if r.driver_version == driver.version]
        assert driver.probes == len(mine)
        assert driver.falco == DRIVERS[driver.version]
        per_target = Counter((r.target, r.arch) for r in mine)
        for count in driver.targets:
            assert dict(count.probes) == {a: per_target[(count.target, a)]
                                          for a in ("x86_64", "aarch64")}
    assert {t.target for t in model.targets} == {"debian", "ubuntu-generic", "ubuntu-aws",
                                                 "amazonlinux2", "minikube"}


def test_table_pages_hold_every_probe_once_in_natural_order(model: SiteModel,
                                                            fixture: Fixture) -> None:
    pages = list(table_pages(model))
    assert len(pages) == 15
    seen = [r for p in pages for _, rows in p.groups for r in rows]
    assert sorted(r.key for r in seen) == sorted(r.key for r in fixture.probes)
    for page in pages:
        rows = [r for _, rows in page.groups for r in rows]
        keys = [(natural_key(r.kernel_release), natural_key(r.kernel_version), r.arch)
                for r in rows]
        assert keys == sorted(keys)
        for series, group in page.groups:
            assert {kernel_series(r.kernel_release) for r in group} == {series}
        assert all(f.driver_version == page.driver_version and f.target == page.target
                   for f in page.failures)


def test_coverage_cells_say_built_failed_or_missing(model: SiteModel, fixture: Fixture) -> None:
    built = {(r.target, r.kernel_release, r.kernel_version, r.arch, r.driver_version)
             for r in fixture.probes}
    failed = {(f.target, f.kernel_release, f.kernel_version, f.arch, f.driver_version)
              for f in fixture.failures}
    statuses: Counter[str] = Counter()
    for page in coverage_pages(model):
        for _, rows in page.groups:
            for row in rows:
                for driver, cell in zip(page.drivers, row.cells, strict=True):
                    key = (page.target, row.kernel_release, row.kernel_version, row.arch, driver)
                    expected = ("ok" if key in built else "failed" if key in failed
                                else "missing")
                    assert cell.status == expected, key
                    statuses[cell.status] += 1
                    if cell.status == "failed":
                        assert cell.failure is not None and cell.failure.log
        for d in page.per_driver:
            assert d.built + d.failed + d.missing == page.kernels
    assert statuses["ok"] == len(fixture.probes)
    assert statuses["failed"] == len(fixture.failures)
    assert statuses["missing"] > 0


def test_failures_page(model: SiteModel, fixture: Fixture) -> None:
    page = failures_page(model)
    assert page.total == len(fixture.failures)
    assert dict(page.by_step) == {"compile": len(fixture.failures)}
    assert sum(n for _, n in page.by_driver) == page.total
    assert [d for d, _ in page.groups] == [d for d in model.order
                                          if any(f.driver_version == d for f in fixture.failures)]


# --- the API --------------------------------------------------------------------------------

def test_fnv1a_is_the_reference_function() -> None:
    # Reference values of 32-bit FNV-1a (find.js computes the same).
    assert api.fnv1a("") == 0x811C9DC5
    assert api.fnv1a("a") == 0xE40C292C
    assert api.fnv1a("foobar") == 0xBF9CF968
    assert api.fnv1a("é") == api.fnv1a("\u00e9")


def test_index_document(model: SiteModel) -> None:
    renderer = Renderer(model)
    doc = json.loads(api.dumps(api.index_document(model, renderer.page_urls)))
    assert doc["schema_version"] == api.SCHEMA_VERSION == 1
    assert doc["probe_count"] == model.totals.probes
    assert doc["min_kernel"] == {"x86_64": "4.14", "aarch64": "4.17"}
    assert doc["falco_versions"]["0.37.0"] == "7.0.0+driver"
    first = doc["driver_versions"][0]
    assert first["driver_version"] == "7.0.0+driver"
    assert first["falco_versions"] == ["0.37.0", "0.37.1"]
    assert first["probes_url"] == "7.0.0%2Bdriver/probes.json"
    assert first["sha256sums_url"] == "7.0.0%2Bdriver/SHA256SUMS"
    assert first["page_url"] == "../drivers/7.0.0%2Bdriver/"
    assert set(first["arches"]) == {"x86_64", "aarch64"}
    assert sum(a["probe_count"] for a in first["arches"].values()) == first["probe_count"]


def test_probes_document_keeps_every_catalog_field(model: SiteModel) -> None:
    files = list(model.files_of("6.0.1+driver"))
    doc = api.probes_document("6.0.1+driver", ("0.36.0",), files)
    records = sorted((r for f in files for r in f.probes), key=lambda r: r.key)
    assert sorted(doc["probes"], key=lambda d: (d["arch"], d["target"], d["kernel_release"],
                                                d["kernel_version"])) == \
        sorted((record_to_dict(r) for r in records),
               key=lambda d: (d["arch"], d["target"], d["kernel_release"],
                              d["kernel_version"]))
    failures = [record_to_dict(f) for f in files for f in f.failures]
    assert sorted(json.dumps(d, sort_keys=True) for d in doc["failures"]) == \
        sorted(json.dumps(d, sort_keys=True) for d in failures)


def test_sha256sums_lines(model: SiteModel) -> None:
    records = [r for f in model.files_of("5.0.1+driver") for r in f.probes]
    text = api.sha256sums(records)
    lines = text.splitlines()
    assert len(lines) == len(records) and text.endswith("\n")
    for line in lines:
        assert re.fullmatch(r"[0-9a-f]{64}  (x86_64|aarch64)/falco_[^/\s]+\.o", line), line
    assert lines == sorted(lines, key=lambda line: line.split("  ")[1])


def test_every_name_is_in_its_shard(model: SiteModel, fixture: Fixture) -> None:
    for driver in DRIVERS:
        for arch in ("x86_64", "aarch64"):
            files = list(model.files_of(driver, arch))
            shards = api.find_shards(driver, arch, files)
            count = len(shards)
            assert count == api.shard_count(api.name_count(files))
            for record in (r for f in files for r in f.probes):
                for name in record.all_files():
                    shard = shards[api.fnv1a(name) % count]
                    row = dict(zip(shard["probe_fields"], shard["probes"][name], strict=True))
                    loadtest = record.loadtest
                    assert row == {"file": record.file, "sha256": record.sha256,
                                   "size": record.size, "url": record.url,
                                   "built": record.built, "log": record.log,
                                   "job": record.job, "attestation": record.attestation,
                                   "source": record.source,
                                   "loadtest": None if loadtest is None else [
                                       getattr(loadtest, f) for f in shard["loadtest_fields"]]}
            for failure in (f for cf in files for f in cf.failures):
                for name in failure.all_files():  # found under every name, aliases too
                    shard = shards[api.fnv1a(name) % count]
                    row = dict(zip(shard["failure_fields"], shard["failures"][name],
                                   strict=True))
                    assert (row["file"], row["step"], row["category"], row["reason"],
                            row["log"]) == (failure.file, failure.step, failure.category,
                                            failure.reason, failure.log)
    assert any(f.aliases for f in fixture.failures)


def test_shards_stay_small_whatever_the_catalog_size() -> None:
    assert api.shard_count(0) == 1
    assert api.shard_count(api.SHARD_NAMES) == 1
    assert api.shard_count(api.SHARD_NAMES + 1) == 2
    assert api.shard_count(10_000) == 79


def test_json_for_html_cannot_close_the_script_element() -> None:
    text = api.json_for_html({"a": "</script><script>alert(1)</script>", "b": "<!--", "c": "&"})
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text)["a"] == "</script><script>alert(1)</script>"


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


@pytest.mark.parametrize("src_uri", ["index.md", "drivers/index.md", "usage.md",
                                     "drivers/6.0.1+driver/debian/index.md", "a/b.md"])
@pytest.mark.parametrize("directory_urls", [True, False])
def test_page_urls_are_mkdocs_urls(src_uri: str, directory_urls: bool) -> None:
    from mkdocs.structure.files import File
    mk = File(src_uri, "docs", "site", directory_urls)
    assert layout.quote_url(layout.page_url(src_uri, directory_urls)) == mk.url


@pytest.mark.parametrize(("target", "current", "expected"), [
    ("drivers/", "./", "drivers/"), ("./", "drivers/x/", "../../"),
    ("api/index.json", "drivers/6.0.1%2Bdriver/debian/", "../../../api/index.json"),
    ("targets/debian/", "index.html", "targets/debian/"),
    ("usage.html", "drivers/index.html", "../usage.html"),
])
def test_relative_links(target: str, current: str, expected: str) -> None:
    assert layout.relative(target, current) == expected


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


EVIL = '"><script>alert(1)</script><img src=x onerror=alert(2)>\'&'


def hostile_model() -> SiteModel:
    """Records no catalog would accept: markup and quotes in every text field."""
    probe = ProbeRecord(
        driver_version=f"6.0.1+driver{EVIL}", arch="x86_64", target=f"debian{EVIL}",
        kernel_release=f"5.10.0-1-amd64{EVIL}" + "x" * 300, kernel_version=f"1{EVIL}",
        sha256="a" * 64 + EVIL, size=1234, url=f"javascript:alert(3)//{EVIL}",
        release=f"tag{EVIL}", built=f"2026-11-25T00:00:00Z{EVIL}",
        log=f"https://ci.example.org/{EVIL}", commit=f"abc{EVIL}",
        driver_ref=f"ref{EVIL}", aliases=(f"falco_alias{EVIL}.o",))
    failure = FailureRecord(
        probe.driver_version, "x86_64", probe.target, f"6.1.0{EVIL}", f"2{EVIL}", "compile",
        f"error: {EVIL}\n" * 50, log=f"file:///tmp/{EVIL}", attempts=2,
        last_attempt="2026-11-25T00:00:00Z")
    cat_file = CatalogFile(probe.driver_version, "x86_64", probe.target, (probe,), (failure,))
    catalog = Catalog(Path("hostile"), {cat_file.key: cat_file})
    releases = FalcoReleases.from_lists([(probe.driver_version, ["0.36.2"])])
    return build_site(catalog, releases)


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


def test_documents_of_hostile_records_are_valid_json() -> None:
    model = hostile_model()
    driver = model.order[0]
    for _path, text in api.driver_documents(driver, ("0.36.2",), list(model.files_of(driver))):
        if _path.endswith(".json"):
            json.loads(text)


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


def test_charts_shares_and_legend() -> None:
    chart = charts.bar_chart("t", [charts.BarItem("a", (("ok", 10), ("failed", 5))),
                                   charts.BarItem("b" * 40, (("ok", 0),))],
                             [("ok", "built"), ("failed", "failed"), ("missing", "missing")])
    first, second = chart.bars
    assert first.total == 15 and second.total == 0 and second.segments == ()
    assert [(s.kind, s.label, s.share, s.value) for s in first.segments] == [
        ("ok", "built", 66.67, 10), ("failed", "failed", 33.33, 5)]
    assert second.label == "b" * 40                      # whole: the bar wraps, not cuts
    assert chart.legend == (("ok", "built"), ("failed", "failed"))   # no missing key
    grid = charts.heatmap("g", ["t1", "t2"], ["d1", "d2"], {("t1", "d1"): 1, ("t2", "d2"): 1000},
                          {("t1", "d1"): "x/"})
    cells = [c for _, row in grid.rows for c in row]
    assert [c.level if c else 0 for c in cells] == [1, 0, 0, charts.LEVELS]
    assert cells[0] is not None and cells[0].href == "x/" and grid.cells == 2
    assert cells[3] is not None and cells[3].title == "t2, d2: 1,000 probes"
    assert charts.level(0, 10) == 0


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
    assert "file:///" not in html and f"<td>{record.file}</td>" in html


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
    assert html.count("✓ loads</span></td>") == sum(
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
            assert f'<a href="{r.job}">job</a>' in html
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
    assert all(f"{s.series} <small>{s.kernels}</small>" in html for s in page.series)


def test_kernel_documents_answer_every_prefix(model: SiteModel, fixture: Fixture) -> None:
    docs = dict(api.kernel_documents(model.catalog.files.values(), model.order,
                                     chunk_bytes=4_000))
    index = json.loads(docs[layout.KERNELS_INDEX])
    chunks = [json.loads(docs[layout.kernels_chunk(n)]) for n in range(len(index["chunks"]))]
    assert len(chunks) > 3
    firsts = [c[0] for c in index["chunks"]]
    assert firsts == sorted(firsts)
    seen = [(release, row[0], row[1], row[2], row[3]) for c in chunks
            for release, rows in c["probes"].items() for row in rows]
    assert sorted(seen) == sorted((r.kernel_release, r.driver_version, r.arch, r.target,
                                   r.kernel_version) for r in fixture.probes)
    assert sum(len(rows) for c in chunks for rows in c["failures"].values()) == \
        len(fixture.failures)
    for (first, releases, probes, failures), chunk in zip(index["chunks"], chunks, strict=True):
        assert min({*chunk["probes"], *chunk["failures"]}) == first
        assert releases == len({*chunk["probes"], *chunk["failures"]})
        assert probes == sum(map(len, chunk["probes"].values()))
        assert failures == sum(map(len, chunk["failures"].values()))
    releases = sorted({r.kernel_release for r in fixture.probes})
    for prefix in ["5", "5.10.1", "5.10.18", "5.4.0-10", "4.14.30", releases[7], "9", "0"]:
        picked = pick_chunks(firsts, prefix)          # what lookup.js fetches
        found = {k for n in picked for k in {*chunks[n]["probes"], *chunks[n]["failures"]}
                 if k.startswith(prefix)}
        assert found == {k for k in releases if k.startswith(prefix)} | {
            f.kernel_release for f in fixture.failures if f.kernel_release.startswith(prefix)}
    newest = next(r for r in fixture.probes if r.kernel_release == releases[7])
    chunk = chunks[pick_chunks(firsts, releases[7])[0]]
    row = dict(zip(chunk["probe_fields"], next(
        x for x in chunk["probes"][releases[7]] if x[0] == newest.driver_version
        and x[2] == newest.target), strict=True))
    assert (row["sha256"], row["url"], row["size"], row["loadtest"]) == (
        newest.sha256, newest.url, newest.size,
        newest.loadtest.status if newest.loadtest else None)


def pick_chunks(firsts: list[str], prefix: str) -> list[int]:
    """lookup.js's choice: from the last chunk starting at or before the prefix, every
    chunk starting before prefix + U+FFFF."""
    start = max([i for i, f in enumerate(firsts) if f <= prefix], default=0)
    return [i for i in range(start, len(firsts)) if firsts[i] < prefix + "\uffff"]


def test_target_documents_name_the_newest_kernel_per_series(model: SiteModel,
                                                            fixture: Fixture) -> None:
    docs = {path: json.loads(text) for path, text in api.target_documents(model)}
    assert set(docs) == {layout.api_target(t.target) for t in model.targets}
    doc = docs[layout.api_target("amazonlinux2")]
    for driver, arches in doc["newest"].items():
        for arch, series in arches.items():
            for name, (release, version, count) in series.items():
                mine = [r for r in fixture.probes
                        if (r.driver_version, r.arch, r.target) == (driver, arch, "amazonlinux2")
                        and kernel_series(r.kernel_release) == name]
                best = max(mine, key=lambda r: (natural_key(r.kernel_release),
                                                natural_key(r.kernel_version)))
                assert (release, version, count) == (best.kernel_release,
                                                     best.kernel_version, len(mine))


def test_find_manifest_carries_naming_facts_plan_and_repository(model: SiteModel) -> None:
    from builder.core.config import load_config
    from builder.core.naming import MIN_KERNEL, OVERRIDE_RELEASES

    config = load_config(Path(__file__).resolve().parents[1] / "probes.yaml")
    renderer = Renderer(model, config=config)
    manifest = api.find_manifest(model, renderer.page_urls, "", config)
    assert manifest["naming"] == {"override_releases": [str(v) for v in OVERRIDE_RELEASES],
                                  "min_kernel": {a: list(v) for a, v in MIN_KERNEL.items()}}
    assert manifest["plan"]["targets"]["ubuntu"] == ["x86_64", "aarch64"]
    assert "9.1.0+driver" in manifest["plan"]["drivers"]
    assert manifest["repository"] == config.store.repository
    assert manifest["order"] == list(model.order) and manifest["kernels"] == "kernels/"
    bare = api.find_manifest(model, renderer.page_urls, "", None)
    assert bare["plan"] is None and bare["repository"] == ""


def test_sha256sums_also_as_text(model: SiteModel) -> None:
    docs = dict(api.driver_documents("6.0.1+driver", (), list(model.files_of("6.0.1+driver"))))
    assert docs[layout.api_sums_text("6.0.1+driver")] == docs[layout.api_sums("6.0.1+driver")]
    html = Renderer(model).driver("6.0.1+driver").html
    assert 'href="../../api/6.0.1%2Bdriver/SHA256SUMS.txt">SHA256SUMS</a>' in html


def test_bulk_pages_ask_the_theme_to_wait(model: SiteModel) -> None:
    pages = list(Renderer(model).plan())
    for page in pages:
        meta = yaml.safe_load(page.markdown().split("---")[1])
        folders = page.src_uri.split("/")[:-1]
        bulk = (folders[:1] == ["drivers"] and len(folders) >= 3) or \
            (folders[:1] == ["targets"] and len(folders) >= 2) or folders[:1] == ["failures"]
        assert meta.get(BULK_META, False) == bulk, page.src_uri
