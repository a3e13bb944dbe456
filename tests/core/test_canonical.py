"""core/canonical.py: the fast reader of the catalog's canonical form gives exactly what
the safe YAML loader gives, and declines (None) anything else, which that loader reads."""

from __future__ import annotations

from typing import Any

import pytest

from builder.core.canonical import read
from builder.core.catalog import CatalogFile, render
from builder.core.records import FailureRecord, LoadTest, ProbeRecord
from builder.core.yamlio import load_text

TRICKY = ["1", "5.10", "yes", "null", "~", "0x1f", "1e3", "2026-11-25", "12:30", "a: b",
          "#x", "'q'", "<script>", "6.12.48+deb12-amd64", "37~20.04.1", 'say "hi" \\ é']


def catalog_text() -> str:
    probes = tuple(
        ProbeRecord("6.0.1+driver", "x86_64", "debian", f"6.1.0-{i}-amd64", "1",
                    f"{i:064x}", 100 + i, f"https://example.org/{i}.o",
                    built="2026-11-25T08:00:00Z", source=value,
                    aliases=(f"falco_debian_6.1.0-{i}-cloud-amd64_1.o",) if i % 2 else (),
                    loadtest=LoadTest("passed", f"6.1.0-{i}-amd64", 3, 3) if i % 3 else None)
        for i, value in enumerate(TRICKY))
    failures = (FailureRecord("6.0.1+driver", "x86_64", "debian", "6.12.1-1-amd64", "1",
                              "compile", "error: 'x' undeclared\\here", attempts=2),)
    return render(CatalogFile("6.0.1+driver", "x86_64", "debian", probes, failures))


def test_the_canonical_form_reads_as_the_yaml_loader_reads_it() -> None:
    text = catalog_text()
    fast = read(text, 100_000)
    assert fast is not None
    assert fast == load_text(text, "debian.yaml")
    assert [p["source"] for p in fast["probes"]] == TRICKY   # every tricky scalar a string


@pytest.mark.parametrize("change", [
    lambda text: text.rstrip("\n"),                              # no final newline
    lambda text: text.replace("- {", "-   {", 1),                # another spelling
    lambda text: text + "extra: [1, 2]\n  - nested\n",          # block YAML
    lambda text: text.replace("probes:", "probes: !!python/object:os.system", 1),
])
def test_anything_else_is_left_to_the_yaml_loader(change: Any) -> None:
    assert read(change(catalog_text()), 100_000) is None


def test_too_many_values_are_left_to_the_loader_that_says_so() -> None:
    text = catalog_text()
    assert read(text, 10) is None and read(text, 100_000) is not None
