"""core/catalogcache.py: a catalog file's checked records kept by the sha256 of its bytes,
trusted only under this machine's key; anything else is a miss and the file is read."""

from __future__ import annotations

import hashlib
import os
from dataclasses import replace
from pathlib import Path

import pytest
from catalogfiles import good_probe

from builder.core import catalogcache
from builder.core.catalogcache import CACHE_ENV, CatalogCache
from builder.core.records import FailureRecord, LoadTest, Twin

KEY = ("5.0.1+driver", "x86_64", "debian")
DIGEST = hashlib.sha256(b"the file's bytes").hexdigest()
PROBES = (good_probe(), good_probe("6.1.0-2-amd64", "b" * 64))
FAILURES = (FailureRecord("5.0.1+driver", "x86_64", "debian", "6.1.0-3-amd64", "1", "compile",
                          "error: x", attempts=2, aliases=("falco_a.o",),
                          twins=(Twin("6.1.0-3+deb13-amd64", "debian-13"),)),)


def test_records_come_back_as_they_went_in(tmp_path: Path) -> None:
    cache = CatalogCache(tmp_path, b"k" * 32)
    assert cache.get(DIGEST, KEY) is None and cache.misses == 1
    tested = (replace(PROBES[0], loadtest=LoadTest("rejected", "6.1.0-1-amd64", 2, 3,
                                                   reason="sys_enter: EACCES")), PROBES[1])
    cache.put(DIGEST, KEY, tested, FAILURES)
    assert cache.get(DIGEST, KEY) == (tested, FAILURES) and cache.hits == 1
    assert cache.get(DIGEST, ("5.0.1+driver", "x86_64", "ubuntu")) is None   # another file's
    assert [p.name for p in tmp_path.rglob("*.json")] == [f"{DIGEST}.json"]  # no pickle


def test_an_entry_not_made_under_this_key_is_ignored(tmp_path: Path) -> None:
    CatalogCache(tmp_path, b"a" * 32).put(DIGEST, KEY, PROBES, FAILURES)
    assert CatalogCache(tmp_path, b"b" * 32).get(DIGEST, KEY) is None   # restored elsewhere
    entry = next(tmp_path.rglob("*.json"))
    data = bytearray(entry.read_bytes())
    data[-5] ^= 1                                                          # one bit flipped
    entry.write_bytes(bytes(data))
    assert CatalogCache(tmp_path, b"a" * 32).get(DIGEST, KEY) is None


def test_the_cache_is_off_or_elsewhere_as_the_environment_says(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv(CACHE_ENV, "off")
    assert CatalogCache.default() is None
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    cache = CatalogCache.default()
    assert cache is not None and cache.folder == tmp_path / "cache"
    key = tmp_path / "config" / "falco-probes" / "catalog-cache.key"
    assert len(key.read_bytes()) == 32 and key.stat().st_mode & 0o777 == 0o600
    os.chmod(key, 0o644)                                   # readable by others: not trusted
    assert CatalogCache.default() is None
    assert catalogcache.default_folder() == tmp_path / "cache"
