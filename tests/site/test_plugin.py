"""site/plugin.py: the MkDocs adapter builds the same site as generated pages rendered by
the engine (`falco-probes site build`): the same pages, every internal link, the API
files byte for byte and the search index, on the same catalog."""

from __future__ import annotations

from pathlib import Path

import pytest
import sitecompare
from sitebuild import generated_site, plugin_site
from sitecatalog import PROBES_YAML, write_catalog
from testpaths import ROOT

from builder.site import layout


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("both-ways")
    write_catalog(root / "catalog")
    (root / "probes.yaml").write_text(PROBES_YAML)
    generated = generated_site(root / "generated", root / "catalog", root / "probes.yaml")
    plugin = plugin_site(root / "plugin", root / "catalog", root / "probes.yaml")
    return generated, plugin


def test_both_ways_build_the_same_site(both: tuple[Path, Path]) -> None:
    generated, plugin = (sitecompare.facts(site) for site in both)
    assert sitecompare.differences(generated, plugin) == []
    assert len(generated.pages) > 30 and len(generated.api) > 10
    assert generated.search_bytes > 10_000


def test_the_pages_are_byte_for_byte_the_same(both: tuple[Path, Path]) -> None:
    generated, plugin = both
    pages = sorted(p.relative_to(generated) for p in generated.rglob("*.html"))
    assert pages == sorted(p.relative_to(plugin) for p in plugin.rglob("*.html"))
    for rel in pages:
        if rel.name == "404.html":
            continue
        assert (generated / rel).read_bytes() == (plugin / rel).read_bytes(), rel


def test_the_comparison_sees_a_missing_page_and_a_changed_api_file(
        both: tuple[Path, Path]) -> None:
    generated, plugin = (sitecompare.facts(site) for site in both)
    del plugin.pages["drivers/6.0.1+driver/debian/index.html"]
    plugin.api[layout.KERNELS_INDEX] = "0" * 64
    found = sitecompare.differences(generated, plugin)
    assert any("drivers/6.0.1+driver/debian/index.html" in d for d in found)
    assert any("API files differ" in d for d in found)


def test_the_source_config_names_no_plugin_and_the_generator_adds_none() -> None:
    text = (ROOT / "mkdocs.yml").read_text()
    assert "- falco-probes" not in text and "falco_probes:" in text
