"""Audit: compare the catalog with a store, so no probe is ever silently lost.

Drift kinds (docs/publishing.md):

* `missing`: the catalog lists the probe, the store does not hold it;
* `missing_path`: directory store: an alias or `+`/`%2B` spelling is absent;
* `mismatch`: the store holds other bytes under the probe's name;
* `starter`: GitHub holds a half-uploaded asset (a failed upload);
* `draft`: the probe sits in an unpublished draft release (an interrupted
  immutable run; the next publish run publishes it);
* `not_in_catalog`: the store holds a probe the catalog does not list;
* `repairable`: like not_in_catalog, but a build report names the probe and
  its digest matches: `--repair` records it in a fragment for `catalog merge`;
* `missing_log`, `missing_attestation`: a record links a compile log or a
  provenance bundle in this store that the store does not hold.

Logs and bundles the store holds beyond what records link (an earlier failed
attempt's log, say) are not drift.

Only `repairable` (and, for a directory store, `missing_path` whose bytes are
present) can be repaired without a human: the rest need a rebuild, a
publish run or a decision, and stay reported.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from builder.core.catalog import Catalog
from builder.core.records import FailureRecord, ProbeRecord
from builder.core.report import iter_reports
from builder.publish.stores import ATTESTATION, LOG, PROBE, Store, StoredItem
from builder.publish.stores.directory import SPECIAL

MISSING = "missing"
MISSING_PATH = "missing_path"
MISMATCH = "mismatch"
STARTER = "starter"
DRAFT = "draft"
NOT_IN_CATALOG = "not_in_catalog"
REPAIRABLE = "repairable"
MISSING_LOG = "missing_log"
MISSING_ATTESTATION = "missing_attestation"
KINDS = (MISSING, MISSING_PATH, MISMATCH, STARTER, DRAFT, NOT_IN_CATALOG, REPAIRABLE,
         MISSING_LOG, MISSING_ATTESTATION)


@dataclass(frozen=True, slots=True)
class Drift:
    kind: str
    key: str
    message: str
    url: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "key": self.key, "message": self.message, "url": self.url}


@dataclass
class AuditReport:
    store: str
    checked: int = 0          # catalog probes compared
    ok: int = 0
    stored: int = 0           # items the store holds
    drifts: list[Drift] = field(default_factory=list)
    repairs: list[ProbeRecord] = field(default_factory=list)     # records for a fragment
    relink: list[ProbeRecord] = field(default_factory=list)      # directory paths to recreate

    def count(self, kind: str) -> int:
        return sum(1 for d in self.drifts if d.kind == kind)

    def as_dict(self) -> dict[str, Any]:
        return {"store": self.store, "checked": self.checked, "ok": self.ok,
                "stored": self.stored, "clean": not self.drifts,
                "counts": {k: self.count(k) for k in KINDS},
                "drift": [d.as_dict() for d in self.drifts]}


def report_probes(paths: Iterable[Path]) -> list[ProbeRecord]:
    """Successful probes of build reports, as records without url (the store supplies it).

    The probe files themselves need not exist any more: the store holds the bytes.
    """
    return [result.to_probe() for _folder, result in iter_reports(paths) if result.ok]


def audit(catalog: Catalog, store: Store, *, reported: Iterable[ProbeRecord] = (),
          driver_version: str | None = None) -> AuditReport:
    """Compare; never changes anything (the command applies repairs)."""
    result = AuditReport(store.description)
    items: dict[str, StoredItem] = {}
    sidecars: dict[str, set[str]] = {LOG: set(), ATTESTATION: set()}   # kind -> URLs
    for item in store.inventory():
        if item.kind != PROBE:
            sidecars[item.kind].add(item.url)
        elif driver_version is None or unquote(item.key).startswith(driver_version + "/"):
            items[item.key] = item  # keys may spell + as %2B
    result.stored = len(items)
    matched: set[str] = set()
    for probe in sorted(catalog.probes(), key=lambda p: p.key):
        if driver_version is not None and probe.driver_version != driver_version:
            continue
        result.checked += 1
        if _check_probe(probe, store.expected_keys(probe), items, matched, result) \
                & _check_links(probe, store, sidecars, result):
            result.ok += 1
    for failure in catalog.failures():
        if driver_version is None or failure.driver_version == driver_version:
            _check_links(failure, store, sidecars, result)
    _orphans(store, items, matched, reported, result)
    return result


def _check_links(record: ProbeRecord | FailureRecord, store: Store,
                 sidecars: dict[str, set[str]], result: AuditReport) -> bool:
    """The log and bundle a record links in this store must be there."""
    label = f"{record.driver_version}/{record.arch}/{record.file}"
    links = [(LOG, MISSING_LOG, "compile log", record.log)]
    if isinstance(record, ProbeRecord):
        links.append((ATTESTATION, MISSING_ATTESTATION, "provenance bundle",
                      record.attestation))
    clean = True
    for kind, drift, what, url in links:
        if url and store.owns(url) and url not in sidecars[kind]:
            result.drifts.append(Drift(drift, label, f"{label}: links its {what} at {url}, "
                                       "which the store does not hold", url))
            clean = False
    return clean


def _check_probe(probe: ProbeRecord, keys: tuple[str, ...], items: dict[str, StoredItem],
                 matched: set[str], result: AuditReport) -> bool:
    label = f"{probe.driver_version}/{probe.arch}/{probe.file}"
    clean = True
    matched.update(keys)
    for index, key in enumerate(keys):
        item = items.get(key)
        if item is None:
            if index == 0:
                result.drifts.append(Drift(MISSING, key, f"{label}: in the catalog but not in "
                                           "the store", probe.url))
                return False
            result.drifts.append(Drift(MISSING_PATH, key, f"{label}: the store lacks the "
                                       f"path {key}"))
            if not result.relink or result.relink[-1] is not probe:
                result.relink.append(probe)
            clean = False
        elif item.state == STARTER:
            result.drifts.append(Drift(STARTER, key, f"{label}: the store holds only a failed "
                                       "upload (state starter)", item.url))
            clean = False
        elif item.state == SPECIAL:
            result.drifts.append(Drift(MISMATCH, key, f"{label}: the store holds a symbolic "
                                       f"link or special file at {key}, not the probe"))
            clean = False
        elif item.sha256 != probe.sha256:
            result.drifts.append(Drift(MISMATCH, key, f"{label}: the store has sha256 "
                                       f"{item.sha256 or '(unknown)'}, the catalog "
                                       f"{probe.sha256}", item.url))
            clean = False
    return clean


def _orphans(store: Store, items: dict[str, StoredItem], matched: set[str],
             reported: Iterable[ProbeRecord], result: AuditReport) -> None:
    """What the store holds beyond the catalog; repairable when a build report names it."""
    for probe in reported:
        keys = store.expected_keys(probe)
        item = items.get(keys[0])
        if item is None or keys[0] in matched or item.state != "ok":
            continue
        if probe.sha256 == item.sha256:
            result.drifts.append(Drift(REPAIRABLE, keys[0], f"{keys[0]}: not in the catalog; "
                                       "a build report names it with the same sha256",
                                       item.url))
            result.repairs.append(replace(probe, url=item.url, release=item.release))
            matched.update(keys)
    for key in sorted(set(items) - matched):
        item = items[key]
        if item.state == STARTER:
            result.drifts.append(Drift(STARTER, key, f"{key}: a failed upload (state starter); "
                                       "publish deletes it when it retries the probe", item.url))
        elif item.state == DRAFT:
            result.drifts.append(Drift(DRAFT, key, f"{key}: in unpublished draft {item.release};"
                                       " the next publish run publishes it", item.url))
        elif item.state == SPECIAL:
            result.drifts.append(Drift(NOT_IN_CATALOG, key, f"{key}: a symbolic link or "
                                       "special file (FIFO, device) in the store; not read"))
        else:
            result.drifts.append(Drift(NOT_IN_CATALOG, key, f"{key}: in the store but not in "
                                       "the catalog (no build report names it with this "
                                       "sha256)", item.url))
