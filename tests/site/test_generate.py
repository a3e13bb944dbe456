"""site/generate.py: the work folder any engine renders, written before the engine runs,
and brought up to date by rendering only what changed."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from sitebuild import source_config
from sitecatalog import PROBES_YAML, Fixture, write_catalog
from testpaths import ROOT

from builder.core.catalog import CatalogFile, render
from builder.core.errors import InputError
from builder.core.files import atomic_write
from builder.site import generate, layout
from builder.site.passthrough import MARKER
from builder.site.render import GeneratedPage


def _source(tmp: Path, **settings: object) -> generate.SiteSource:
    return generate.read_source(source_config(tmp / "config", **settings),
                                catalog=tmp / "catalog", probes_yaml=tmp / "probes.yaml")


@pytest.fixture
def site(tmp_path: Path) -> tuple[generate.SiteSource, Fixture, generate.Generated]:
    fixture = write_catalog(tmp_path / "catalog")
    (tmp_path / "probes.yaml").write_text(PROBES_YAML)
    source = _source(tmp_path)
    return source, fixture, generate.generate(source, tmp_path / "work")


def test_the_work_folder_holds_pages_docs_assets_theme_api_and_the_engine_config(
        site: tuple[generate.SiteSource, Fixture, generate.Generated]) -> None:
    _, fixture, done = site
    pages = done.pages_dir
    assert (pages / "index.md").is_file() and (pages / "drivers/6.0.1+driver/debian/index.md")
    assert (pages / "usage.md").read_bytes() == (ROOT / "docs/usage.md").read_bytes()
    for name in layout.ASSETS:
        assert (pages / layout.asset(name)).is_file()
    assert (done.work / "theme/main.html").is_file()
    assert (done.api_dir / "index.json").is_file() and (done.api_dir / "kernels/index.json")
    index = json.loads((done.api_dir / "index.json").read_text())
    assert index["probe_count"] == len(fixture.probes) == done.probes
    assert not (pages / "api").exists()       # the engine never sees the API


def test_the_engine_config_reads_the_pages_with_our_theme_and_no_plugin(
        site: tuple[generate.SiteSource, Fixture, generate.Generated]) -> None:
    _, _, done = site
    config = yaml.safe_load(done.config_file.read_text())
    assert config["docs_dir"] == "pages" and config["site_dir"] == "site"
    assert config["theme"]["custom_dir"] == "theme" and config["theme"]["name"] == "material"
    assert config["markdown_extensions"][0] == "builder.site.passthrough"
    assert config["plugins"] == ["search"]
    assert "extra" not in config
    assert config["extra_javascript"] == [layout.asset(s) for s in layout.SCRIPTS]
    assert config["not_in_nav"].split() == ["/drivers/*/", "/targets/*/", "/failures/*/"]
    assert config["nav"] == yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"]


def test_a_page_source_is_front_matter_heading_marker_and_body() -> None:
    page = GeneratedPage("drivers/x/index.md", "a <b> title",
                         '<h1 id="probes">ubuntu_aws probes for 6.0.1+driver &amp; *</h1>\n'
                         "<p>body *with* _marks_</p>", bulk=True)
    text = generate.page_source(page)
    front, rest = text.split("---\n", 2)[1:]
    meta = yaml.safe_load(front)
    assert meta["title"] == "a &lt;b&gt; title" and meta["search"] == {"exclude": True}
    assert meta["falco_probes_bulk"] is True
    heading, body = rest.strip().split(f"\n\n{MARKER}\n")
    assert heading == r"# ubuntu\_aws probes for 6.0.1\+driver & \* {#probes}"
    assert body == "<p>body *with* _marks_</p>"


def test_a_second_run_renders_only_the_groups_whose_catalog_files_changed(
        site: tuple[generate.SiteSource, Fixture, generate.Generated]) -> None:
    source, fixture, first = site
    again = generate.generate(source, first.work)
    fixed = 4 + len({r.driver_version for r in fixture.probes})    # home, indexes, drivers
    assert again.pages == first.pages and again.pages_rendered <= fixed + 1
    assert again.pages_written == 0 and again.api_written == 0
    records = tuple(r for r in fixture.probes if (r.driver_version, r.arch, r.target) ==
                    ("6.0.1+driver", "x86_64", "debian"))[1:]
    cat_file = CatalogFile("6.0.1+driver", "x86_64", "debian", records)
    atomic_write(source.catalog / cat_file.relpath, render(cat_file))
    changed = generate.generate(source, first.work)
    assert "drivers/6.0.1+driver/debian/index.md" in changed.changed_pages
    assert "targets/debian/index.md" in changed.changed_pages
    assert not any(p.startswith(("drivers/7.0.0+driver/", "drivers/5.0.1+driver/", "targets/"
                                 "minikube")) for p in changed.changed_pages)
    assert changed.pages_rendered < first.pages_rendered / 2


def test_a_page_or_api_file_no_longer_generated_is_removed(tmp_path: Path) -> None:
    write_catalog(tmp_path / "catalog")
    source = _source(tmp_path)
    done = generate.generate(source, tmp_path / "work")
    minikube = done.pages_dir / "drivers/7.0.0+driver/minikube/index.md"
    assert minikube.is_file()
    for path in (tmp_path / "catalog").rglob("minikube.yaml"):
        path.unlink()
    again = generate.generate(source, tmp_path / "work")
    assert not minikube.exists() and not (done.pages_dir / "targets/minikube").exists()
    assert not (done.api_dir / "targets/minikube.json").exists()
    assert again.removed >= 3


def test_a_changed_setting_or_forced_run_renders_everything(tmp_path: Path) -> None:
    write_catalog(tmp_path / "catalog")
    first = generate.generate(_source(tmp_path), tmp_path / "work")
    budget = generate.generate(_source(tmp_path, page_budget=5000), tmp_path / "work")
    assert budget.pages_rendered == budget.pages > first.pages
    forced = generate.generate(_source(tmp_path, page_budget=5000), tmp_path / "work",
                               force=True)
    assert forced.pages_rendered == forced.pages and forced.pages_written == 0


@pytest.mark.parametrize(("settings", "message"), [
    ({"drivers_repo": "javascript:alert(1)"}, "drivers_repo 'javascript:alert(1)' is not an"),
    ({"page_budget": 10}, "page_budget 10 is not a number of bytes"),
])
def test_bad_settings_are_refused_with_their_place(tmp_path: Path, settings: dict[str, object],
                                                   message: str) -> None:
    with pytest.raises(InputError, match=re.escape(message)) as raised:
        _source(tmp_path, **settings)
    assert "mkdocs.yml: extra.falco_probes" in raised.value.message


def test_a_missing_or_unreadable_source_config_is_located(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        generate.read_source(tmp_path / "mkdocs.yml")
    (tmp_path / "mkdocs.yml").write_text("theme: !!python/name:os.system\n")
    with pytest.raises(InputError, match="not YAML that safe_load reads") as raised:
        generate.read_source(tmp_path / "mkdocs.yml")
    assert "no !!python tags" in (raised.value.hint or "")


def test_generated_files_are_readable_by_any_web_server(
        site: tuple[generate.SiteSource, Fixture, generate.Generated]) -> None:
    _, _, done = site
    for folder in (done.pages_dir, done.api_dir):
        modes = {p.stat().st_mode & 0o777 for p in folder.rglob("*") if p.is_file()}
        assert modes == {0o644}
