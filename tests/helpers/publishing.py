"""Publishing in tests: a directory store, artifacts from a build folder, a publish run
into a fragment, and the records a fragment holds."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from buildreports import Spec, write_report

from builder.core.catalog import read_fragments
from builder.core.records import FailureRecord, ProbeRecord
from builder.core.versions import BUILTIN_RELEASES
from builder.publish.attest import load_bundles
from builder.publish.stage import FragmentFile, Provenance, PublishSummary, load_reports, publish
from builder.publish.stores import Artifact, Budget, Store
from builder.publish.stores.directory import DirectoryStore
from builder.publish.stores.github import GitHubStore


def directory_store(root: Path, budget: Budget | None = None) -> DirectoryStore:
    return DirectoryStore(root, BUILTIN_RELEASES.falco_for, budget=budget)


def fragment_records(path: Path) -> tuple[list[ProbeRecord], list[FailureRecord]]:
    fragment = read_fragments([path])
    return list(fragment.probes), list(fragment.failures)


def artifacts(tmp_path: Path, probes: list[Spec], name: str = "build") -> list[Artifact]:
    write_report(tmp_path / name, probes)
    return load_reports([tmp_path / name], Provenance())[0]


def run(store: GitHubStore, items: list[Artifact], fragment: Path) -> PublishSummary:
    with FragmentFile(fragment) as handle:
        return publish(items, [], store, handle)


def publish_all(folder: Path, store: Store, fragment: Path, bundles: Iterable[Path] = (),
                ) -> tuple[list[ProbeRecord], list[FailureRecord]]:
    items, failures = load_reports([folder], Provenance(log="https://ci.example/run"),
                                   load_bundles(bundles))
    with FragmentFile(fragment) as handle:
        summary = publish(items, failures, store, handle)
    assert not summary.conflicts and summary.left == 0, summary
    return fragment_records(fragment)
