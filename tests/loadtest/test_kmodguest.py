"""loadtest/kmodguest.py, without a VM: the version numbers as ppm_api_version.h packs
them, the ring buffer read as libscap reads it (records of the child counted, a cut record
caught), and what makes a module pass or not. Loading one for real is
tests/e2e/test_kmod_boot.py."""

from __future__ import annotations

import mmap
import os
import struct
from typing import Any

import pytest

from builder.loadtest.kmodguest import HEADER, INFO, _count, reason, version_text

INTERFACE = {"api": "8.0.4", "schema": "4.1.0"}
CPUS = os.sysconf("SC_NPROCESSORS_ONLN")
GOOD = {"devices": [f"falco{cpu}" for cpu in range(CPUS)], "api_version": "8.0.4",
        "schema_version": "4.1.0", "left_behind": []}


def packed(major: int, minor: int, patch: int) -> int:
    """PPM_API_VERSION(major, minor, patch) of ppm_api_version.h."""
    return (major << 44) | (minor << 24) | patch


@pytest.mark.parametrize("version", [(8, 0, 4), (10, 1, 0), (4, 5, 1), (0, 0, 0),
                                     ((1 << 19) - 1, (1 << 20) - 1, (1 << 24) - 1)])
def test_versions_unpack_as_the_driver_packs_them(version: tuple[int, int, int]) -> None:
    assert version_text(packed(*version)) == ".".join(map(str, version))


def ring(records: list[tuple[int, int]], size: int = 4096, tail: int = 0,
         cut: bool = False) -> tuple[mmap.mmap, mmap.mmap]:
    """A ring (mapped twice, as the driver maps it) holding (tid, length) records."""
    data = mmap.mmap(-1, size * 2)
    offset = tail
    for tid, length in records:
        HEADER.pack_into(data, offset % (2 * size), 1, tid, length, 306, 2)
        offset += length
    head = offset - (8 if cut else 0)
    info = mmap.mmap(-1, mmap.PAGESIZE)
    INFO.pack_into(info, 0, head % size, tail, len(records))
    return data, info


def test_the_childs_records_are_counted_and_consumed() -> None:
    data, info = ring([(7, 40), (99, 30), (7, 26), (7, 64)])
    assert _count(data, info, 4096, 7) == (4, 3, 0)
    head, tail, _ = INFO.unpack_from(info)
    assert head == tail                      # consumed: the driver may write again


def test_a_record_cut_short_is_caught() -> None:
    data, info = ring([(7, 40), (7, 40)], cut=True)
    assert _count(data, info, 4096, 7) == (1, 1, 1)
    data, info = ring([(7, 10)])             # shorter than a header: corrupt
    assert _count(data, info, 4096, 7)[2] == 1


@pytest.mark.parametrize(("result", "why"), [
    (GOOD, ""),
    ({"error": "insmod refused: Invalid argument",
      "kmsg": ["falco: disagrees about version of symbol _printk"]},
     "insmod refused: Invalid argument (falco: disagrees about version of symbol _printk)"),
    ({**GOOD, "devices": ["falco0"] if CPUS > 1 else []},
     f"devices {'falco0' if CPUS > 1 else 'none'} for {CPUS} CPUs"),
    ({**GOOD, "api_version": "8.0.3"},
     "the module answers API 8.0.3 and schema 4.1.0, its source says 8.0.4 and 4.1.0"),
    ({**GOOD, "rmmod_error": "rmmod refused: Device or resource busy"},
     "rmmod refused: Device or resource busy"),
    ({**GOOD, "left_behind": ["/dev/falco0"]}, "still there after rmmod: /dev/falco0"),
    ({**GOOD, "device_error": "/dev/falco: [Errno 2] No such file"},
     "/dev/falco: [Errno 2] No such file"),
], ids=["passes", "refused", "devices missing", "another API", "busy", "left behind",
        "no device"])
def test_what_makes_a_module_pass(result: dict[str, Any], why: str) -> None:
    assert reason(result, INTERFACE) == why


def test_a_driver_without_api_versions_passes_on_loading_alone() -> None:
    old = {k: v for k, v in GOOD.items() if not k.endswith("_version")}
    assert reason(old, {}) == "" and reason(old, INTERFACE) == ""
    assert struct.calcsize("<QQIHI") == HEADER.size == 26  # struct ppm_evt_hdr, packed
