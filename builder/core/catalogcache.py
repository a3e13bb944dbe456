"""A parsed-catalog cache: each catalog file's checked records, keyed by its sha256.

The YAML files stay the source of truth. Reading one costs a parse and a check of every
record; this cache keeps the outcome so that the next reader of the same bytes (the
next command of a nightly, a site rebuild, `find`) skips both: a catalog of 100,000
probes loads from it in about a second, and after one file changed, only that file is
parsed again.

- An entry is keyed by the SHA-256 of the catalog file's bytes: a file that changed is
  never answered from the cache, whatever its name or date.
- An entry is JSON rows (never pickle) and carries an HMAC-SHA256 under a key that lives
  outside the cache folder ($XDG_CONFIG_HOME/falco-probes/catalog-cache.key, created
  0600 on first use): an entry that is corrupt, truncated, written by another machine or
  by anyone without the key (a cache restored from elsewhere) fails the check and is
  ignored, and the file is read again. Never share the key or cache it in CI.
- Entries are written atomically after a file was read and found clean; a file with any
  problem is never cached. The folder ($XDG_CACHE_HOME/falco-probes/catalog, or the
  FALCO_PROBES_CATALOG_CACHE folder; `off` disables it) is safe to delete at any time
  and is never committed.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import fields
from pathlib import Path
from typing import Any

from builder.core.files import atomic_write
from builder.core.records import FailureRecord, LoadTest, ProbeRecord, Twin

CACHE_ENV = "FALCO_PROBES_CATALOG_CACHE"
KEY_NAME = "catalog-cache.key"
_PROBE_FIELDS = tuple(f.name for f in fields(ProbeRecord))
_FAILURE_FIELDS = tuple(f.name for f in fields(FailureRecord))
_LOADTEST_FIELDS = tuple(f.name for f in fields(LoadTest))
# Entries from another record layout are another format: a new field, a new format.
FORMAT = hashlib.sha256(json.dumps([_PROBE_FIELDS, _FAILURE_FIELDS, _LOADTEST_FIELDS, 1])
                        .encode()).hexdigest()[:16]
_MAC_LENGTH = 64   # hex digits of the HMAC at the head of an entry


def default_folder() -> Path | None:
    """$FALCO_PROBES_CATALOG_CACHE, else $XDG_CACHE_HOME/falco-probes/catalog; None if
    the variable says `off`."""
    given = os.environ.get(CACHE_ENV, "")
    if given.lower() in ("off", "0", "no"):
        return None
    if given:
        return Path(given)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "falco-probes" / "catalog"


def _key_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "falco-probes" / KEY_NAME


def _load_key(path: Path) -> bytes | None:
    """This machine's cache key, made on first use; None when it cannot be had (then
    nothing is cached: a cache without its key would be trusted blindly)."""
    try:
        data = path.read_bytes()
        if len(data) == 32 and (path.stat().st_mode & 0o077) == 0:
            return data
        if data:
            return None   # someone else's file, or readable by others: do not trust it
    except FileNotFoundError:
        pass
    except OSError:
        return None
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as handle:
            key = secrets.token_bytes(32)
            handle.write(key)
        return key
    except OSError:
        return None


class CatalogCache:
    """Checked records of catalog files, by the sha256 of each file's bytes."""

    def __init__(self, folder: Path, key: bytes) -> None:
        self.folder = folder
        self._key = key
        self.hits = self.misses = 0

    @classmethod
    def default(cls) -> CatalogCache | None:
        folder = default_folder()
        if folder is None:
            return None
        key = _load_key(_key_path())
        return None if key is None else cls(folder, key)

    def _path(self, digest: str) -> Path:
        return self.folder / digest[:2] / f"{digest}.json"

    def _mac(self, body: bytes) -> str:
        return hmac.new(self._key, body, hashlib.sha256).hexdigest()

    def get(self, digest: str, key: tuple[str, str, str],
            ) -> tuple[tuple[ProbeRecord, ...], tuple[FailureRecord, ...]] | None:
        """The records of the file whose bytes have this sha256, or None (a miss, or an
        entry that fails its check: corrupt, foreign, of another format)."""
        try:
            data = self._path(digest).read_bytes()
        except OSError:
            self.misses += 1
            return None
        body = data[_MAC_LENGTH + 1:]
        if not hmac.compare_digest(data[:_MAC_LENGTH], self._mac(body).encode()):
            self.misses += 1
            return None
        try:
            entry = json.loads(body)
            if entry["format"] != FORMAT or entry["file"] != digest or \
                    tuple(entry["key"]) != key:
                raise ValueError("another file's entry")
            found = (tuple(_probe(row) for row in entry["probes"]),
                     tuple(_failure(row) for row in entry["failures"]))
        except (ValueError, KeyError, TypeError, IndexError):
            self.misses += 1
            return None
        self.hits += 1
        return found

    def put(self, digest: str, key: tuple[str, str, str], probes: tuple[ProbeRecord, ...],
            failures: tuple[FailureRecord, ...]) -> None:
        """Keep a clean file's records; a cache that cannot be written is just no cache."""
        body = json.dumps({"format": FORMAT, "file": digest, "key": list(key),
                           "probes": [_row(r, _PROBE_FIELDS) for r in probes],
                           "failures": [_row(r, _FAILURE_FIELDS) for r in failures]},
                          separators=(",", ":")).encode()
        with contextlib.suppress(OSError):
            atomic_write(self._path(digest), self._mac(body).encode() + b"\n" + body,
                         durable=False)


def _row(record: ProbeRecord | FailureRecord, names: tuple[str, ...]) -> list[Any]:
    row: list[Any] = []
    for name in names:
        value = getattr(record, name)
        if name == "loadtest":
            value = None if value is None else [getattr(value, f) for f in _LOADTEST_FIELDS]
        elif name == "twins":
            value = [[t.uname_r, t.root] for t in value]
        elif isinstance(value, tuple):
            value = list(value)
        row.append(value)
    return row


# Rows back to records: the positions are _PROBE_FIELDS' and _FAILURE_FIELDS' (FORMAT
# changes with them); the values were checked before they were written.
_P_ALIASES = _PROBE_FIELDS.index("aliases")
_P_LOADTEST = _PROBE_FIELDS.index("loadtest")
_P_TWINS = _PROBE_FIELDS.index("twins")
_F_ALIASES = _FAILURE_FIELDS.index("aliases")
_F_TWINS = _FAILURE_FIELDS.index("twins")


def _probe(row: list[Any]) -> ProbeRecord:
    row[_P_ALIASES] = tuple(row[_P_ALIASES])
    test = row[_P_LOADTEST]
    row[_P_LOADTEST] = None if test is None else LoadTest(*test)
    row[_P_TWINS] = tuple(Twin(*t) for t in row[_P_TWINS])
    return ProbeRecord(*row)


def _failure(row: list[Any]) -> FailureRecord:
    row[_F_ALIASES] = tuple(row[_F_ALIASES])
    row[_F_TWINS] = tuple(Twin(*t) for t in row[_F_TWINS])
    return FailureRecord(*row)
