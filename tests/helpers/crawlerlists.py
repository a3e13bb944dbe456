"""The kernel-crawler lists in tests/data/kernel-crawler: both key styles, both arches, junk."""

from __future__ import annotations

from testpaths import DATA

LISTS = DATA / "kernel-crawler"
OLD = LISTS / "old-format.json"
CURRENT = LISTS / "x86_64" / "list.json"
ARM = LISTS / "aarch64" / "list.json"
JUNK = LISTS / "junk.json"
