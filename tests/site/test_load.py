"""site/load.py: the catalog loaded (in parallel or not) and the API written."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sitecatalog import write_catalog
from testpaths import ROOT


def test_parallel_load_gives_the_same_catalog_and_api(tmp_path: Path) -> None:
    from builder.core.versions import BUILTIN_RELEASES
    from builder.site.load import load_and_write
    write_catalog(tmp_path / "catalog")
    facts = BUILTIN_RELEASES
    serial = load_and_write(tmp_path / "catalog", tmp_path / "serial", facts, workers=1)
    parallel = load_and_write(tmp_path / "catalog", tmp_path / "parallel", facts, workers=2,
                              min_bytes=0)
    assert list(parallel.files.items()) == list(serial.files.items())
    written = sorted(p.relative_to(tmp_path / "serial")
                     for p in (tmp_path / "serial").rglob("*") if p.is_file())
    assert written and written == sorted(p.relative_to(tmp_path / "parallel")
                                         for p in (tmp_path / "parallel").rglob("*")
                                         if p.is_file())
    for path in written:
        assert (tmp_path / "serial" / path).read_bytes() == \
            (tmp_path / "parallel" / path).read_bytes(), path


def test_parallel_load_of_a_broken_catalog_reports_every_problem(tmp_path: Path) -> None:
    from builder.core.errors import ProblemsError
    from builder.core.versions import BUILTIN_RELEASES
    from builder.site.load import load_and_write
    shutil.copytree(ROOT / "tests/data/broken-catalog", tmp_path / "catalog")
    with pytest.raises(ProblemsError) as caught:
        load_and_write(tmp_path / "catalog", tmp_path / "site", BUILTIN_RELEASES, workers=2,
                       min_bytes=0)
    assert len(caught.value.problems) > 5
