"""The site's fixture catalog (tests/helpers/sitecatalog.py) and its page model."""

from __future__ import annotations

import pytest
from sitecatalog import PROBES_YAML, Fixture, build_fixture, write_catalog

from builder.core.catalog import load_catalog
from builder.core.config import load_config
from builder.site.model import SiteModel, build_site


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
