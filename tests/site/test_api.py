"""site/api.py: the JSON API documents, shards and lookups, on the fixture catalog and on
records full of hostile values."""

from __future__ import annotations

import json
import re

from sitecatalog import (
    DRIVERS,
    Fixture,
    hostile_model,
)
from testpaths import ROOT

from builder.core.catalog import natural_key
from builder.core.records import kernel_series, record_to_dict
from builder.site import api, layout
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
    failures = [record_to_dict(f) for cat_file in files for f in cat_file.failures]
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


def test_documents_of_hostile_records_are_valid_json() -> None:
    model = hostile_model()
    driver = model.order[0]
    for _path, text in api.driver_documents(driver, ("0.36.2",), list(model.files_of(driver))):
        if _path.endswith(".json"):
            json.loads(text)


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

    config = load_config(ROOT / "probes.yaml")
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
