"""site/engine.py: real builds of generated sources (`falco-probes site build`: generate,
`mkdocs build --strict` in this process, the API placed after it) on fixture catalogs.

The fixture (tests/helpers/sitecatalog.py): 265 probes, 3 driver versions, 5 targets,
failures and aliases. Checked: every page, api/index.json, probes.json, and
SHA256SUMS files that `sha256sum -c` accepts against a directory store whose
probe files hold the bytes the catalog's digests describe; nothing fetched from
another host; the bulk pages out of the search index; empty, hostile and broken
catalogs; the page budget; an engine that drops pages or API files stops the build;
a rebuild after one catalog file changed equals a clean build.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
import sitecompare
import yaml
from sitebuild import generated_site, source_config
from sitecatalog import DRIVERS, PROBES_YAML, Fixture, build_fixture, write_catalog, write_store
from testpaths import ROOT

from builder.core.catalog import CatalogFile, render
from builder.core.errors import InputError, ProbesError, ProblemsError
from builder.core.files import atomic_write
from builder.core.records import FailureRecord, ProbeRecord
from builder.site import chunks as chunk_rows
from builder.site import engine, generate, layout


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Fixture]]:
    root = tmp_path_factory.mktemp("site-build")
    fixture = write_catalog(root / "catalog", build_fixture())
    (root / "probes.yaml").write_text(PROBES_YAML)
    yield generated_site(root, root / "catalog", root / "probes.yaml"), fixture


def test_every_page_is_built(built: tuple[Path, Fixture]) -> None:
    site, fixture = built
    expected = ["index.html", "drivers/index.html", "targets/index.html", "failures/index.html",
                "usage/index.html", "site/index.html", "404.html"]
    for driver in DRIVERS:
        expected.append(f"drivers/{driver}/index.html")
        for target in {r.target for r in fixture.probes if r.driver_version == driver}:
            expected.append(f"drivers/{driver}/{target}/index.html")
    expected += [f"targets/{t}/index.html" for t in fixture.targets()]
    for page in expected:
        assert (site / page).is_file(), page
    for asset in layout.ASSETS:
        assert (site / layout.asset(asset)).is_file()
    home = (site / "index.html").read_text()
    assert 'id="fp-find"' in home and "265</strong> probes" in home
    for script in ("naming.js", "find.js", "tables.js"):
        assert f'assets/falco-probes/{script}"' in home


def test_table_page_lists_its_probes_with_links(built: tuple[Path, Fixture]) -> None:
    site, fixture = built
    html = (site / "drivers/5.0.1+driver/debian/index.html").read_text()
    mine = [r for r in fixture.probes if (r.driver_version, r.target) ==
            ("5.0.1+driver", "debian")]
    assert html.count('<tr data-arch="') == len(mine)
    for record in mine:
        assert f'<a href="{record.url}">{record.file}</a>' in html
        assert f'data-copy="{record.sha256}"' in html and f">{record.sha256[:12]}…<" in html
        for alias in record.aliases:
            assert alias in html
    failed = [f for f in fixture.failures if (f.driver_version, f.target) ==
              ("5.0.1+driver", "debian")]
    for failure in failed:
        assert failure.log in html


def test_api_index_and_probe_lists(built: tuple[Path, Fixture]) -> None:
    site, fixture = built
    index = json.loads((site / "api/index.json").read_text())
    assert index["schema_version"] == 2
    assert index["probe_count"] == len(fixture.probes)
    assert [d["driver_version"] for d in index["driver_versions"]] == \
        ["7.0.0+driver", "6.0.1+driver", "5.0.1+driver"]
    for entry in index["driver_versions"]:
        driver = entry["driver_version"]
        assert entry["falco_versions"] == list(DRIVERS[driver])
        probes = json.loads((site / "api" / _unquote(entry["probes_url"])).read_text())
        mine = {r.file for r in fixture.probes if r.driver_version == driver}
        listed = [p["file"] for group in probes["files"] for p in group["probes"]]
        assert set(listed) == mine and len(listed) == entry["probe_count"]
        assert (site / "api" / _unquote(entry["sha256sums_url"])).is_file()
        assert (site / "api" / _unquote(entry["page_url"]) / "index.html").resolve().is_file()
        assert set(entry["arches"]) <= {"x86_64", "aarch64"}


def _unquote(url: str) -> str:
    from urllib.parse import unquote
    return unquote(url)


def test_sha256sums_check_against_a_directory_store(built: tuple[Path, Fixture],
                                                    tmp_path: Path) -> None:
    site, fixture = built
    store = tmp_path / "store"
    write_store(store, fixture)
    for driver in DRIVERS:
        shutil.copy(site / "api" / driver / "SHA256SUMS", store / driver / "SHA256SUMS")
        done = subprocess.run(["sha256sum", "--strict", "-c", "SHA256SUMS"], cwd=store / driver,
                              capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        count = sum(1 for r in fixture.probes if r.driver_version == driver)
        assert done.stdout.count(": OK") == count
    victim = next(r for r in fixture.probes if r.driver_version == "6.0.1+driver")
    (store / victim.driver_version / victim.arch / victim.file).write_bytes(b"tampered")
    done = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=store / "6.0.1+driver",
                          capture_output=True, text=True, check=False)
    assert done.returncode == 1 and f"{victim.arch}/{victim.file}: FAILED" in done.stdout


def test_bulk_pages_are_not_in_the_search_index(built: tuple[Path, Fixture]) -> None:
    site, _ = built
    index = json.loads((site / "search/search_index.json").read_text())
    locations = {doc["location"] for doc in index["docs"]}
    assert any(loc.startswith("usage/") for loc in locations)
    assert any(loc.startswith("drivers/6.0.1+driver/") or loc.startswith("drivers/6.0.1%2Bdriver/")
               for loc in locations)  # the driver version page itself is searchable
    for loc in locations:
        parts = loc.split("#")[0].strip("/").split("/")
        assert not (parts[0] == "drivers" and len(parts) >= 3), loc
        assert not (parts[0] == "targets" and len(parts) >= 2 and parts[1]), loc
        assert parts[0] != "failures", loc


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.loaded: list[str] = []    # what a browser fetches while showing the page
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag in ("script", "img", "iframe", "source", "audio", "video") and values.get("src"):
            self.loaded.append(values["src"] or "")
        if tag == "script" and values.get("data-src"):    # Material's, on demand
            self.loaded.append(values["data-src"] or "")
        if tag == "link" and values.get("href") and values.get("rel") not in ("canonical",):
            self.loaded.append(values["href"] or "")
        if tag == "a" and values.get("href"):
            self.links.append(values["href"] or "")


def test_nothing_is_loaded_from_another_host(built: tuple[Path, Fixture]) -> None:
    site, _ = built
    for page in site.rglob("*.html"):
        html = page.read_text()
        parser = _Refs()
        parser.feed(html)
        for ref in parser.loaded:
            assert not re.match(r"(https?:)?//", ref), (page, ref)
        assert "fonts.googleapis" not in html and "fonts.gstatic" not in html
        assert "@import" not in html
    for css in site.rglob("*.css"):
        assert not re.search(r"url\((['\"]?)(https?:)?//", css.read_text()), css


def test_internal_links_resolve(built: tuple[Path, Fixture]) -> None:
    site, _ = built
    from urllib.parse import unquote, urlsplit
    for page in [site / "index.html", site / "drivers/index.html", site / "targets/index.html",
                 site / "drivers/6.0.1+driver/index.html", site / "targets/debian/index.html",
                 site / "drivers/7.0.0+driver/minikube/index.html", site / "failures/index.html"]:
        parser = _Refs()
        parser.feed(page.read_text())
        for href in parser.links:
            parts = urlsplit(href)
            if parts.scheme or href.startswith("#") or not parts.path:
                continue
            target = (page.parent / unquote(parts.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            assert target.exists(), (page, href)


def test_every_generated_page_has_a_skip_link_to_its_heading(built: tuple[Path, Fixture]) -> None:
    site, _ = built
    pages = [site / "index.html", site / "drivers/index.html", site / "targets/index.html",
             site / "failures/index.html", site / "drivers/6.0.1+driver/index.html",
             site / "drivers/6.0.1+driver/debian/index.html", site / "targets/debian/index.html"]
    for page in pages:
        html = page.read_text()
        skip = re.search(r'<a href="#([^"]+)" class="md-skip">', html)
        assert skip is not None, page
        assert f'<h1 id="{skip.group(1)}">' in html, page


def test_scripts_wait_for_the_page_and_bulk_pages_for_the_reader(
        built: tuple[Path, Fixture]) -> None:
    site, _ = built
    for page, bulk in [(site / "index.html", True), (site / "usage/index.html", False),
                       (site / "drivers/6.0.1+driver/index.html", False),
                       (site / "drivers/6.0.1+driver/debian/index.html", True),
                       (site / "targets/debian/index.html", True),
                       (site / "failures/index.html", True)]:
        html = page.read_text()
        head = html.split("</head>")[0]
        assert 'classList.replace("no-js", "js")' in head, page
        scripts = re.findall(r"<script [^>]*(?:src|data-src)=\"[^\"]+\"[^>]*>", html)
        assert len(scripts) == 1 + len(layout.SCRIPTS), page
        theme = next(tag for tag in scripts if "assets/javascripts/bundle." in tag)
        assert ("data-fp-on-demand" in theme) is bulk, page
        assert all("defer" in tag for tag in scripts if tag != theme), page
        assert bulk or "defer" in theme


def test_kernel_and_target_lookups_are_written(built: tuple[Path, Fixture]) -> None:
    site, fixture = built
    index = json.loads((site / layout.KERNELS_INDEX).read_text())
    chunks = [json.loads((site / layout.kernels_chunk(n)).read_text())
              for n in range(len(index["chunks"]))]
    releases = {k for c in chunks for k in c["probes"]}
    assert releases == {r.kernel_release for r in fixture.probes}
    assert sum(len(chunk_rows.decode_rows(c)) for c in chunks) == len(fixture.probes)
    for target in fixture.targets():
        doc = json.loads((site / layout.api_target(target)).read_text())
        assert doc["target"] == target and doc["newest"]


# --- other catalogs ----------------------------------------------------------------------

def test_empty_catalog_builds_a_useful_site(tmp_path: Path) -> None:
    (tmp_path / "catalog").mkdir()
    generated_site(tmp_path, tmp_path / "catalog", None)
    home = (tmp_path / "site/index.html").read_text()
    assert "The catalog is empty" in home and 'id="fp-find"' in home
    index = json.loads((tmp_path / "site/api/index.json").read_text())
    assert index["driver_versions"] == [] and index["probe_count"] == 0
    assert "0.36.2" in index["falco_versions"]


def test_missing_catalog_folder_is_an_empty_catalog(tmp_path: Path) -> None:
    generated_site(tmp_path, tmp_path / "nowhere", None)
    assert "The catalog is empty" in (tmp_path / "site/index.html").read_text()


def test_without_probes_yaml_the_builtin_table_is_used(tmp_path: Path) -> None:
    write_catalog(tmp_path / "catalog")
    generated_site(tmp_path, tmp_path / "catalog", None)
    index = json.loads((tmp_path / "site/api/index.json").read_text())
    served = {d["driver_version"]: d["falco_versions"] for d in index["driver_versions"]}
    assert served["5.0.1+driver"] == ["0.35.0", "0.35.1"]
    assert served["7.0.0+driver"] == []
    page = (tmp_path / "site/drivers/7.0.0+driver/index.html").read_text()
    assert "Loaded by no Falco release by default" in page


def test_broken_catalog_stops_the_build_with_located_problems(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "tests/data/broken-catalog", tmp_path / "catalog")
    with pytest.raises(ProblemsError) as raised:
        generated_site(tmp_path, tmp_path / "catalog", None)
    assert any("5.0.1+driver/aarch64/debian.yaml:3: field 'arch'" in str(p)
               for p in raised.value.problems)
    assert "falco-probes catalog check" in (raised.value.hint or "")
    assert not (tmp_path / "site").exists()


def test_hostile_values_in_a_real_catalog_are_escaped(tmp_path: Path) -> None:
    """What the catalog admits as free text: failure reasons, and the longest names."""
    evil = "</script><script>alert(1)</script><img src=x onerror=alert(2)> \"quotes' &amp;"
    release = "5.10.0-" + "9" * 100 + "-amd64"
    probe = ProbeRecord("6.0.1+driver", "x86_64", "debian", release, "1", "c" * 64, 10,
                        "https://example.org/" + "p" * 1500 + ".o", log="https://ci.example.org/l")
    failure = FailureRecord("6.0.1+driver", "x86_64", "debian", "6.1.0-1-amd64", "1", "compile",
                            (evil + " ") * 20, log="file:///var/log/build.log")
    cat_file = CatalogFile("6.0.1+driver", "x86_64", "debian", (probe,), (failure,))
    atomic_write(tmp_path / "catalog" / cat_file.relpath, render(cat_file))
    generated_site(tmp_path, tmp_path / "catalog", None)
    for page in (tmp_path / "site").rglob("*.html"):
        html = page.read_text()
        assert "<script>alert" not in html and "<img src=x" not in html, page
        assert "file:///var/log" not in html or 'href="file:' not in html
    failures = (tmp_path / "site/failures/index.html").read_text()
    assert "&lt;/script&gt;&lt;script&gt;alert(1)" in failures
    chunk = json.loads((tmp_path / "site" / layout.kernels_chunk(0)).read_text())
    assert chunk_rows.decode_rows(chunk, "failures")[0]["reason"] == failure.reason


def test_docs_page_clashing_with_a_generated_one_is_refused(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    shutil.copytree(ROOT / "docs", docs)
    (docs / "index.md").write_text("# my own home\n")
    mkdocs_yml = source_config(tmp_path / "config")
    config = yaml.safe_load(mkdocs_yml.read_text())
    config["docs_dir"] = str(docs)
    mkdocs_yml.write_text(yaml.safe_dump(config))
    (tmp_path / "catalog").mkdir()
    with pytest.raises(InputError, match="index.md: clashes with a page the site generates"):
        generated_site(tmp_path, tmp_path / "catalog", None, mkdocs_yml=mkdocs_yml)


def test_page_budget_splits_big_tables(tmp_path: Path) -> None:
    fixture = write_catalog(tmp_path / "catalog")
    site = generated_site(tmp_path, tmp_path / "catalog", None,
                          mkdocs_yml=source_config(tmp_path / "config", page_budget=5000))
    folder = site / "drivers/6.0.1+driver/ubuntu-generic"
    parts = sorted(p for p in folder.glob("*/index.html"))
    assert len(parts) >= 2
    rows = sum(p.read_text().count('<tr data-arch="') for p in parts)
    assert rows == sum(1 for r in fixture.probes
                       if (r.driver_version, r.target) == ("6.0.1+driver", "ubuntu-generic"))
    overview = (folder / "index.html").read_text()
    for part in parts:
        assert f'ubuntu-generic/{part.parent.name}/"' in overview
    # Split pages sit a folder deeper: every link on them (the coverage chart's labels
    # were once relative to the overview) lands on a page of the site.
    coverage_parts = list((site / "targets").glob("*/*/index.html"))
    assert coverage_parts
    assert sitecompare.facts(site).broken == []


# --- the engine's run --------------------------------------------------------------------

def test_api_files_are_placed_after_the_engine_and_counted(
        built: tuple[Path, Fixture], tmp_path: Path) -> None:
    site, _ = built
    work = site.parent / ".site"
    api = sorted(p.relative_to(work / "api") for p in (work / "api").rglob("*") if p.is_file())
    assert api and all((site / "api" / rel).is_file() for rel in api)
    assert all(os.path.samefile(site / "api" / rel, work / "api" / rel) for rel in api)
    pages = sorted((work / "pages").rglob("*.md"))
    assert engine.check_output(work, site) == sum(1 for _ in site.rglob("*.html"))
    assert len(pages) + 1 == sum(1 for _ in site.rglob("*.html"))     # and 404.html


@pytest.mark.parametrize("dropped", ["drivers/6.0.1+driver/debian/index.html",
                                     "api/kernels/index.json", "usage/index.html"])
def test_an_engine_that_drops_a_file_stops_the_build(built: tuple[Path, Fixture],
                                                     tmp_path: Path, dropped: str) -> None:
    site, _ = built
    copy = tmp_path / "site"
    shutil.copytree(site, copy)
    (copy / dropped).unlink()
    with pytest.raises(ProbesError, match=re.escape(dropped)):
        engine.check_output(site.parent / ".site", copy)


def test_nothing_reaches_the_output_folder_before_the_engine(tmp_path: Path) -> None:
    """generate writes only into its work folder; an engine that empties the output
    folder first (Zensical does) can lose nothing of ours."""
    write_catalog(tmp_path / "catalog")
    source = generate.read_source(source_config(tmp_path / "config"),
                                  catalog=tmp_path / "catalog", probes_yaml=tmp_path / "no.yaml")
    before = {p for p in tmp_path.rglob("*")}
    generate.generate(source, tmp_path / "work")
    made = {p for p in tmp_path.rglob("*")} - before
    work = tmp_path / "work"
    assert made and all(p == work or work in p.parents for p in made)


def test_a_rebuild_after_one_catalog_file_changed_equals_a_clean_build(tmp_path: Path) -> None:
    fixture = write_catalog(tmp_path / "catalog")
    site = generated_site(tmp_path, tmp_path / "catalog", None)
    victim = next(r for r in fixture.probes if (r.driver_version, r.target, r.arch) ==
                  ("6.0.1+driver", "debian", "x86_64"))
    records = tuple(r for r in fixture.probes if (r.driver_version, r.target, r.arch) ==
                    ("6.0.1+driver", "debian", "x86_64") and r != victim)
    cat_file = CatalogFile("6.0.1+driver", "x86_64", "debian", records)
    atomic_write(tmp_path / "catalog" / cat_file.relpath, render(cat_file))
    untouched = site / "drivers/7.0.0+driver/minikube/index.html"
    stamp = untouched.stat().st_mtime_ns
    generated_site(tmp_path, tmp_path / "catalog", None)
    assert untouched.stat().st_mtime_ns == stamp       # not rendered again by the engine
    clean = generated_site(tmp_path / "clean", tmp_path / "catalog", None)
    left, right = sitecompare.facts(site), sitecompare.facts(clean)
    assert sitecompare.differences(left, right) == []
    for page in sorted(site.rglob("*.html")):
        assert page.read_bytes() == (clean / page.relative_to(site)).read_bytes(), page
    assert victim.file not in (site / "drivers/6.0.1+driver/debian/index.html").read_text()
