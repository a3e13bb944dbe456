"""site/api.py: the JSON API documents, shards and lookups, on the fixture catalog and on
records full of hostile values."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest
from sitecatalog import (
    Fixture,
    hostile_model,
)
from testpaths import ROOT

from builder.core.catalog import natural_key
from builder.site import api, layout
from builder.site import chunks as chunk_rows
from builder.site.model import SiteModel
from builder.site.render import Renderer


def test_site_json_carries_the_same_table(model: SiteModel) -> None:
    shipped = api.find_manifest(model, {layout.driver_page(d.version): "x"
                                        for d in model.drivers} | {
        layout.coverage_page(t.target): "y" for t in model.targets}, "")["falco"]
    assert shipped == {str(f): d for f, d in model.releases.table}
    newest = model.releases.newest()
    assert shipped[str(newest)] == model.releases.driver_for(newest)
    assert "0.36.9" not in shipped  # no such release: no answer, in Python or the browser


# --- the API --------------------------------------------------------------------------------

def test_index_document(model: SiteModel) -> None:
    renderer = Renderer(model)
    doc = json.loads(api.dumps(api.index_document(model, renderer.page_urls)))
    assert doc["schema_version"] == api.SCHEMA_VERSION == 2
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
    assert doc["kernels_url"] == "kernels/index.json"


def test_probes_document_lists_every_probe_file_and_digest(model: SiteModel) -> None:
    files = list(model.files_of("6.0.1+driver"))
    doc = api.probes_document("6.0.1+driver", ("0.36.0",), files)
    listed = sorted((g["arch"], g["target"], p["file"], p["sha256"], tuple(p.get("aliases", ())),
                     p.get("root", "")) for g in doc["files"] for p in g["probes"])
    assert listed == sorted((r.arch, r.target, r.file, r.sha256, r.aliases, r.root)
                            for f in files for r in f.probes)
    assert doc["kernels_url"] == "../kernels/index.json"


def test_sha256sums_lines(model: SiteModel) -> None:
    records = [r for f in model.files_of("5.0.1+driver") for r in f.probes]
    text = api.sha256sums(records)
    lines = text.splitlines()
    assert len(lines) == len(records) and text.endswith("\n")
    for line in lines:
        assert re.fullmatch(r"[0-9a-f]{64}  (x86_64|aarch64)/falco_[^/\s]+\.o", line), line
    assert lines == sorted(lines, key=lambda line: line.split("  ")[1])


def test_json_for_html_cannot_close_the_script_element() -> None:
    text = api.json_for_html({"a": "</script><script>alert(1)</script>", "b": "<!--", "c": "&"})
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text)["a"] == "</script><script>alert(1)</script>"


def test_documents_of_hostile_records_are_valid_json() -> None:
    model = hostile_model()
    driver = model.order[0]
    for _path, text in api.driver_documents(driver, ("0.36.2",), list(model.files_of(driver))):
        if _path.endswith(".json"):
            json.loads(text)


def test_kernel_documents_answer_every_prefix(model: SiteModel, fixture: Fixture) -> None:
    docs = dict(api.kernel_documents(model.catalog.files.values(), model.order,
                                     chunk_records=12))
    index = json.loads(docs[layout.KERNELS_INDEX])
    chunks = [json.loads(docs[layout.kernels_chunk(n)]) for n in range(len(index["chunks"]))]
    assert len(chunks) > 3
    firsts = [c[0] for c in index["chunks"]]
    assert firsts == sorted(firsts)
    decoded = [(chunk_rows.decode_rows(c), chunk_rows.decode_rows(c, "failures"))
               for c in chunks]
    def canonical(rows: list[dict[str, object]]) -> list[str]:
        return sorted(json.dumps(row, sort_keys=True) for row in rows)

    assert canonical([r for probes, _ in decoded for r in probes]) == \
        canonical([chunk_rows.as_dict(r) for r in fixture.probes])
    assert canonical([f for _, failures in decoded for f in failures]) == \
        canonical([chunk_rows.as_dict(f) for f in fixture.failures])
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


def test_kernel_index_maps_each_uname_r_to_the_releases_it_is_filed_under(
        model: SiteModel) -> None:
    """Debian's loaders name a file after the package version (6.1.192-3-amd64); a user
    types `uname -r` (6.1.0-57-amd64): the index maps one to the other, twins each to
    their own record."""
    debian = next(f for f in model.catalog.files.values() if f.target == "debian")
    release = debian.probes[0].kernel_release
    twins = [replace(debian.probes[0], uname_r="6.1.0-57-amd64"),
             replace(debian.probes[0], uname_r="6.1.0-0.deb11.50-amd64", root="debian-11")]
    files = [replace(debian, probes=(*twins, *debian.probes[1:]))]
    docs = dict(api.kernel_documents(files, model.order))
    index = json.loads(docs[layout.KERNELS_INDEX])
    assert index["see"] == {"6.1.0-0.deb11.50-amd64": [release], "6.1.0-57-amd64": [release]}
    rows = chunk_rows.decode_rows(json.loads(docs[layout.kernels_chunk(0)]))
    mine = [r for r in rows if r["kernel_release"] == release]
    assert sorted((r["uname_r"], r["root"]) for r in mine) == [
        ("6.1.0-0.deb11.50-amd64", "debian-11"), ("6.1.0-57-amd64", "")]


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
    for driver, kinds in doc["newest"].items():
        assert set(kinds) == {"ebpf"}
        for arch, series in kinds["ebpf"].items():
            for name, (release, version, count, *_) in series.items():
                mine = [r for r in fixture.probes
                        if (r.driver_version, r.arch, r.target) == (driver, arch, "amazonlinux2")
                        and api.series_key(r.kernel_release) == name]
                best = max(mine, key=lambda r: (natural_key(r.kernel_release),
                                                natural_key(r.kernel_version)))
                assert (release, version, count) == (best.kernel_release,
                                                     best.kernel_version, len(mine))


def test_find_manifest_carries_naming_facts_plan_and_repository(model: SiteModel) -> None:
    from builder.core.config import load_config
    from builder.core.naming import MIN_KERNEL, OVERRIDE_RELEASES

    config = load_config(ROOT / "probes.yaml")
    renderer = Renderer(model, config=config)
    manifest = api.find_manifest(model, renderer.page_urls, "", config)
    assert manifest["naming"] == {"override_releases": [str(v) for v in OVERRIDE_RELEASES],
                                  "min_kernel": {a: list(v) for a, v in MIN_KERNEL.items()}}
    assert manifest["plan"]["targets"]["ubuntu"]["arch"] == ["x86_64", "aarch64"]
    assert "9.1.0+driver" in manifest["plan"]["drivers"]
    assert manifest["repository"] == config.store.repository
    assert manifest["order"] == list(model.order) and manifest["kernels"] == "kernels/"
    bare = api.find_manifest(model, renderer.page_urls, "", None)
    assert bare["plan"] is None and bare["repository"] == ""


@pytest.mark.parametrize(("release", "flavour", "key"), [
    ("6.1.0-57-amd64", "amd64", "6.1 amd64"), ("6.1.192-3-cloud-amd64", "cloud-amd64",
                                               "6.1 cloud-amd64"),
    ("6.1.0-57-rt-amd64", "rt-amd64", "6.1 rt-amd64"), ("5.15.0-1034-aws", "aws", "5.15 aws"),
    ("5.10.180-170.711.amzn2.x86_64", "", "5.10"), ("6.12.118+deb12-amd64", "amd64",
                                                    "6.12 amd64")])
def test_a_kernel_is_offered_only_kernels_of_its_own_flavour(release: str, flavour: str,
                                                             key: str) -> None:
    assert api.kernel_flavour(release) == flavour and api.series_key(release) == key


def test_verify_reads_the_probe_lists_the_index_links(model: SiteModel, tmp_path: Path) -> None:
    """`falco-probes verify --index api/index.json`: every probe by name and digest, with its
    driver version and arch, from the lean probes.json."""
    from builder.consumers.verify import load_index

    renderer = Renderer(model)
    (tmp_path / "api").mkdir()
    (tmp_path / "api/index.json").write_text(api.dumps(api.index_document(model,
                                                                          renderer.page_urls)))
    for driver in model.drivers:
        for path, text in api.driver_documents(driver.version, driver.falco,
                                               list(model.files_of(driver.version))):
            (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / path).write_text(text)
    index = load_index(str(tmp_path / "api/index.json"))
    probes = list(model.catalog.probes())
    assert index.size == len(probes)
    for record in probes:
        known = index.by_sha[record.sha256]
        assert (record.driver_version, record.arch, record.file) in {
            (k.driver_version, k.arch, k.file) for k in known}
