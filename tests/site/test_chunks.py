"""site/chunks.py: records as compact rows, read back exactly."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from sitecatalog import Fixture

from builder.core.records import FailureRecord, LoadTest, ProbeRecord, Twin
from builder.site import chunks

GITHUB = "https://github.com/o/r/releases/download/probes-6.0.1-driver-x86_64-debian-001/"


def _filed(records: list[ProbeRecord]) -> dict[str, list[ProbeRecord]]:
    out: dict[str, list[ProbeRecord]] = {}
    for record in records:
        out.setdefault(record.kernel_release, []).append(record)
    return out


def test_every_fixture_record_reads_back_as_it_was(fixture: Fixture) -> None:
    probes = _filed(list(fixture.probes))
    failures: dict[str, list[FailureRecord]] = {}
    for failure in fixture.failures:
        failures.setdefault(failure.kernel_release, []).append(failure)
    document = json.loads(json.dumps(chunks.encode(probes, failures)))
    def canonical(rows: list[dict[str, object]]) -> list[str]:
        return sorted(json.dumps(row, sort_keys=True) for row in rows)

    assert canonical(chunks.decode_rows(document)) == \
        canonical([chunks.as_dict(r) for r in fixture.probes])
    assert canonical(chunks.decode_rows(document, "failures")) == \
        canonical([chunks.as_dict(f) for f in fixture.failures])


def _probe(release: str, **fields: object) -> ProbeRecord:
    base = ProbeRecord("6.0.1+driver", "x86_64", "debian", release, "1", "a" * 64, 123,
                       "", built="2026-11-25T03:00:00Z")
    file = base.file
    urls: dict[str, object] = {"url": GITHUB + file, "log": GITHUB + file + ".log"}
    return replace(base, **(urls | fields))  # type: ignore[arg-type]


def test_urls_naming_the_file_cost_a_number_and_shared_texts_are_written_once() -> None:
    records = [_probe(f"6.1.0-{n}-amd64", job="https://github.com/o/r/actions/runs/7/job/9",
                      compiler="Debian clang version 14.0.6") for n in range(50)]
    document = chunks.encode(_filed(records), {})
    text = json.dumps(document)
    assert text.count("releases/download") == 2            # the url and log templates
    assert text.count("actions/runs/7") == 1 and text.count("Debian clang") == 1
    row = document["probes"]["6.1.0-3-amd64"][0]
    assert isinstance(row[6], int) and isinstance(row[8], int)
    assert document["strings"][row[6]] == GITHUB + "{file}"
    assert chunks.decode_rows(document)[3]["url"] == GITHUB + "falco_debian_6.1.0-3-amd64_1.o"
    assert len(text) / len(records) < 160


def test_escaped_names_braces_twins_kmod_and_load_tests_survive() -> None:
    release = "6.12.118+deb12-amd64"
    escaped = "falco_debian_6.12.118%2Bdeb12-amd64_1.ko"
    records = [
        _probe(release, driver_type="kmod", url="https://x.example/" + escaped,
               log="https://x.example/{weird}/" + escaped, root="debian-12",
               uname_r="6.12.118+deb12-amd64", package_version="6.12.118-1~deb12u1",
               twins=(Twin("6.12.118+deb13-amd64"),), aliases=("falco_debian_x_1.ko",),
               loadtest=LoadTest("rejected", "6.12.118+deb12-amd64", 168, 170, 0,
                                 "2026-11-25T04:00:00Z", "R2 invalid mem access 'scalar'")),
        _probe(release, kernel_version="2", loadtest=LoadTest("passed"))]
    document = json.loads(json.dumps(chunks.encode(_filed(records), {})))
    back = chunks.decode_rows(document)
    assert [sorted(b.items()) for b in back] == [sorted(chunks.as_dict(r).items())
                                                 for r in records]
    assert back[0]["url"] == "https://x.example/" + escaped
    assert back[0]["file"].endswith(".ko") and back[1]["file"].endswith("_2.o")


def test_rows_stop_at_their_last_field_with_a_value() -> None:
    document = chunks.encode(_filed([_probe("5.4.0-1-generic")]), {})
    row = document["probes"]["5.4.0-1-generic"][0]
    assert len(row) == chunks.PROBE_FIELDS.index("log") + 1


@pytest.mark.parametrize("value", ["", "plain", "https://e.example/a{b}/falco_x.o"])
def test_template_leaves_what_it_cannot_template(value: str) -> None:
    assert chunks.template(value, "falco_x.o") == value or value == ""
