"""site/model.py: page models from the fixture catalog (tests/helpers/sitecatalog.py:
265 probes, 3 driver versions, 5 targets, both arches, failures and aliases)."""

from __future__ import annotations

from collections import Counter

import pytest
from sitecatalog import (
    DRIVERS,
    Fixture,
)

from builder.core.catalog import natural_key
from builder.core.records import kernel_series
from builder.core.versions import BUILTIN_RELEASES, v
from builder.site.model import (
    SiteModel,
    coverage_pages,
    driver_order,
    failures_page,
    table_pages,
)

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
