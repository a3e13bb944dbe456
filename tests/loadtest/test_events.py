"""builder.loadtest.events: the capture recipe, the tables it fills, the events it counts.

The fast tests build recipes from hand-made layouts (struct members, enum constants) and
check what gets written and what gets counted. The slow ones read the recipe from real
probes' DWARF (the 2022 snapshot and Debian 13's 8.0.0+driver) and check it against what
the compiler wrote into the same probe's `maps` section: each table's value size is the
sizeof() of the struct the recipe describes, so a recipe read wrong (another struct, an
offset past the end, a member taken from the wrong version) fails here, before a VM.
The boot that loads Debian's 8.0.0+driver and 9.1.0+driver probes in their kernel and
counts a child's openat events with each is in tests/e2e/test_loadtest_boot.py.
"""

from __future__ import annotations

import itertools
import struct
from pathlib import Path
from typing import Any, cast

import pytest
from realprobe import compiled_probe, trixie_probe

from builder.loadtest.bpf import Bpf
from builder.loadtest.events import (
    OPENAT,
    PERF_RECORD_SAMPLE,
    Recipe,
    build_recipe,
    capture_recipe,
    fill_tables,
    generic_event_info,
    is_openat_of,
    openat_entry,
    samples,
    settings,
)
from builder.loadtest.probeelf import MapDef, read_probe

X86_OPENAT = OPENAT["x86_64"]
TID = 4242


def _struct(size: int, **members: tuple[int, int]) -> dict[str, Any]:
    return {"size": size, "members": members}


# The shapes of two eras (the 2022 snapshot's and 9.1.0's), in made-up numbers.
OLD_STRUCTS = {
    "scap_bpf_settings": _struct(40, snaplen=(16, 4), sampling_ratio=(20, 4),
                                 capture_enabled=(24, 1), dropping_mode=(27, 1)),
    "syscall_evt_pair": _struct(12, flags=(0, 4), enter_event_type=(4, 4),
                                exit_event_type=(8, 4)),
    "ppm_event_info": _struct(100, nparams=(40, 4), params=(48, 48)),
    "ppm_param_info": _struct(24, type=(8, 4)),
    "ppm_event_entry": _struct(30, filler_id=(8, 4)),
    "ppm_evt_hdr": _struct(26, ts=(0, 8), tid=(8, 8), len=(16, 4), type=(20, 2),
                           nparams=(22, 4)),
}
NEW_STRUCTS = {**OLD_STRUCTS,
               "scap_bpf_settings": _struct(34, snaplen=(16, 4), sampling_ratio=(20, 4),
                                            dropping_mode=(25, 1)),
               "syscall_evt_pair": _struct(16, flags=(0, 4), enter_event_type=(4, 4),
                                           exit_event_type=(8, 4), ppm_sc=(12, 4))}
CONSTANTS = {"PPME_GENERIC_E": 0, "PPME_GENERIC_X": 1, "PT_SYSCALLID": 18, "PT_UINT16": 6,
             "UF_USED": 1, "UF_UNINTERESTING": 32, "PPM_FILLER_sys_generic": 1,
             "PPM_FILLER_terminate_filler": 99, "PPM_SC_OPENAT": 197}


def _recipe(structs: dict[str, Any] = NEW_STRUCTS, **constants: int) -> Recipe:
    found = build_recipe(structs, {**CONSTANTS, **constants})
    assert found is not None
    return Recipe(found)


# --- the recipe ------------------------------------------------------------------------

def test_a_recipe_keeps_only_what_the_capture_uses() -> None:
    recipe = build_recipe(NEW_STRUCTS, CONSTANTS)
    assert recipe is not None
    assert recipe["structs"]["ppm_evt_hdr"] == \
        {"size": 26, "members": {"tid": [8, 8], "type": [20, 2], "nparams": [22, 4]}}
    assert recipe["structs"]["syscall_evt_pair"]["members"]["ppm_sc"] == [12, 4]
    assert set(recipe["constants"]) == {"PPME_GENERIC_E", "PT_SYSCALLID", "PT_UINT16",
                                        "UF_USED", "PPM_FILLER_sys_generic",
                                        "PPM_FILLER_terminate_filler", "PPM_SC_OPENAT"}


def test_optional_members_and_constants_are_left_out_or_zero() -> None:
    constants = {k: v for k, v in CONSTANTS.items() if k != "PPM_SC_OPENAT"}
    recipe = build_recipe(OLD_STRUCTS, constants)
    assert recipe is not None
    assert "ppm_sc" not in recipe["structs"]["syscall_evt_pair"]["members"]
    assert recipe["structs"]["scap_bpf_settings"]["members"]["capture_enabled"] == [24, 1]
    assert recipe["constants"]["PPM_SC_OPENAT"] == 0


def test_the_old_settings_struct_name_is_taken() -> None:
    structs = {k: v for k, v in OLD_STRUCTS.items() if k != "scap_bpf_settings"}
    structs["sysdig_bpf_settings"] = OLD_STRUCTS["scap_bpf_settings"]
    recipe = build_recipe(structs, CONSTANTS)
    assert recipe is not None
    assert recipe["structs"]["scap_bpf_settings"]["size"] == 40


@pytest.mark.parametrize("broken", [
    "no settings struct", "no tid in the header", "a member of unknown size",
    "no sys_generic filler", "no UF_USED"])
def test_anything_required_missing_gives_no_recipe(broken: str) -> None:
    structs = {k: _struct(v["size"], **v["members"]) for k, v in NEW_STRUCTS.items()}
    constants = dict(CONSTANTS)
    if broken == "no settings struct":
        del structs["scap_bpf_settings"]
    elif broken == "no tid in the header":
        del structs["ppm_evt_hdr"]["members"]["tid"]
    elif broken == "a member of unknown size":
        structs["ppm_event_entry"]["members"]["filler_id"] = (8, 0)
    elif broken == "no sys_generic filler":
        del constants["PPM_FILLER_sys_generic"]
    else:
        del constants["UF_USED"]
    assert build_recipe(structs, constants) is None


# --- what gets written ---------------------------------------------------------------

def test_settings_set_the_capture_switch_only_where_there_is_one() -> None:
    old, new = settings(_recipe(OLD_STRUCTS)), settings(_recipe())
    assert len(old) == 40 and len(new) == 34
    assert struct.unpack_from("<II", old, 16) == struct.unpack_from("<II", new, 16) == (80, 1)
    assert old[24] == 1 and old[27] == 1           # capture_enabled, dropping_mode
    assert new[25] == 1 and new.count(0) == 34 - 3  # dropping_mode; snaplen, ratio: 1 byte each


def test_openat_is_generic_both_ways_with_its_ppm_code() -> None:
    recipe = _recipe(PPME_GENERIC_E=7)
    used = openat_entry(recipe, used=True)
    assert struct.unpack("<4I", used) == (1, 7, 7, 197)
    assert openat_entry(recipe, used=False) == bytes(16)
    assert struct.unpack("<3I", openat_entry(_recipe(OLD_STRUCTS, PPME_GENERIC_E=7),
                                             used=True)) == (1, 7, 7)


def test_the_generic_event_has_its_two_parameters() -> None:
    info = generic_event_info(_recipe())
    assert len(info) == 100
    assert struct.unpack_from("<I", info, 40)[0] == 2
    assert struct.unpack_from("<I", info, 48 + 8)[0] == 18        # PT_SYSCALLID
    assert struct.unpack_from("<I", info, 48 + 24 + 8)[0] == 6    # PT_UINT16


class FakeBpf:
    def __init__(self) -> None:
        self.updates: list[tuple[int, int, bytes]] = []

    def map_update(self, fd: int, key: bytes, value: bytes) -> None:
        self.updates.append((fd, struct.unpack("<I", key)[0], value))


def _maps(recipe: Recipe, **extra: int) -> dict[str, tuple[int, MapDef]]:
    sizes = {"settings_map": recipe.size("scap_bpf_settings"),
             "syscall_table": recipe.size("syscall_evt_pair"),
             "event_info_table": recipe.size("ppm_event_info"),
             "fillers_table": recipe.size("ppm_event_entry"), "tail_map": 4, "perf_map": 4,
             **extra}
    return {name: (fd, MapDef(name, 0, 2, 4, size, 512, 0))
            for fd, (name, size) in enumerate(sizes.items(), start=100)}


def test_the_tables_get_one_entry_each_at_the_probes_own_numbers() -> None:
    recipe = _recipe()
    maps = _maps(recipe, interesting_syscalls_table=1)
    bpf = FakeBpf()
    fill_tables(recipe, maps, {"sys_generic": 7, "terminate_filler": 8, "sys_open_x": 9},
                cast(Bpf, bpf), X86_OPENAT)
    by_map = {fd: name for name, (fd, _) in maps.items()}
    written = {(by_map[fd], key): value for fd, key, value in bpf.updates}
    assert written == {
        ("tail_map", 1): struct.pack("<I", 7),
        ("tail_map", 99): struct.pack("<I", 8),
        ("event_info_table", 0): generic_event_info(recipe),
        ("fillers_table", 0): recipe.pack("ppm_event_entry", filler_id=1),
        ("interesting_syscalls_table", X86_OPENAT): b"\x01",
        ("settings_map", 0): settings(recipe),
    }


def test_the_old_routing_table_gets_openats_ppm_code() -> None:
    recipe = _recipe(OLD_STRUCTS)
    maps = _maps(recipe, syscall_code_routing_table=8)
    bpf = FakeBpf()
    fill_tables(recipe, maps, {"sys_generic": 7, "terminate_filler": 8}, cast(Bpf, bpf),
                X86_OPENAT)
    routing = maps["syscall_code_routing_table"][0]
    assert [(k, v) for fd, k, v in bpf.updates if fd == routing] == \
        [(X86_OPENAT, struct.pack("<Q", 197))]


def test_a_value_of_the_wrong_size_is_refused_before_the_kernel_reads_past_it() -> None:
    recipe = _recipe()
    maps = _maps(recipe)
    maps["fillers_table"] = (maps["fillers_table"][0],
                             MapDef("fillers_table", 0, 2, 4, 58, 512, 0))
    with pytest.raises(OSError, match="fillers_table: the recipe gives 30 bytes, the map "
                                      "holds 58"):
        fill_tables(recipe, maps, {"sys_generic": 7, "terminate_filler": 8},
                    cast(Bpf, FakeBpf()), X86_OPENAT)


# --- what gets counted ---------------------------------------------------------------

def _event(recipe: Recipe, tid: int = TID, kind: int = 0, ppm: int = 197,
           native: int = X86_OPENAT) -> bytes:
    header = recipe.pack("ppm_evt_hdr", tid=tid, type=kind, nparams=2, len=26 + 8)
    return header + struct.pack("<HHHH", 2, 2, ppm, native)


def _ring(raws: list[bytes], size: int = 1024) -> tuple[bytes, int]:
    """A perf ring of `size` bytes holding these samples, and its head."""
    ring = bytearray(size)
    position = 0
    for raw in raws:
        body = struct.pack("<I", len(raw)) + raw
        body += bytes(-(len(body) + 8) % 8)
        record = struct.pack("<IHH", PERF_RECORD_SAMPLE, 0, 8 + len(body)) + body
        ring[position:position + len(record)] = record
        position += len(record)
    return bytes(ring), position


def test_only_the_childs_generic_openat_events_count() -> None:
    recipe = _recipe()
    raws = [_event(recipe), _event(recipe, tid=1), _event(recipe, kind=1),
            _event(recipe, native=3), _event(recipe, ppm=5), _event(recipe)[:30],
            _event(recipe)]
    data, head = _ring(raws)
    found = samples(data, head)
    assert found[0] == raws[0]
    assert [is_openat_of(raw, recipe, TID, X86_OPENAT) for raw in found] == \
        [True, False, False, False, False, False, True]


# --- recipes from real probes ---------------------------------------------------------

MAP_HOLDS = {"settings_map": "scap_bpf_settings", "syscall_table": "syscall_evt_pair",
             "event_info_table": "ppm_event_info", "fillers_table": "ppm_event_entry"}


@pytest.fixture(scope="module", params=["e5c53d64", "8.0.0+driver"])
def real(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
         ) -> tuple[str, Path]:
    base = tmp_path_factory.getbasetemp()
    built = compiled_probe(base) if request.param == "e5c53d64" else trixie_probe(base)
    assert built.probe is not None
    return request.param, built.probe


@pytest.mark.slow
def test_a_real_recipe_matches_the_sizes_of_the_maps_that_hold_it(real: tuple[str, Path]
                                                                 ) -> None:
    _, path = real
    found = capture_recipe(path)
    assert found is not None
    recipe = Recipe(found)
    maps = {m.name: m for m in read_probe(path).maps}
    for name, holds in MAP_HOLDS.items():
        assert maps[name].value_size == recipe.size(holds), name
    for name, layout in found["structs"].items():
        spans = sorted((offset, offset + size) for offset, size in layout["members"].values())
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans)), (name, spans)
        assert spans[-1][1] <= layout["size"], name
    assert found["structs"]["ppm_evt_hdr"]["members"]["tid"][1] == 8
    fillers = {p.event for p in read_probe(path).programs if p.is_filler}
    assert {"sys_generic", "terminate_filler"} <= fillers
    ids = (found["constants"]["PPM_FILLER_sys_generic"],
           found["constants"]["PPM_FILLER_terminate_filler"])
    assert len(set(ids)) == 2 and max(ids) < maps["tail_map"].max_entries
    assert found["constants"]["PPM_SC_OPENAT"] > 0


@pytest.mark.slow
def test_each_era_has_its_own_switches(real: tuple[str, Path]) -> None:
    version, path = real
    found = capture_recipe(path)
    assert found is not None
    maps = {m.name for m in read_probe(path).maps}
    settings_members = found["structs"]["scap_bpf_settings"]["members"]
    pair_members = found["structs"]["syscall_evt_pair"]["members"]
    old = version == "e5c53d64"
    assert ("capture_enabled" in settings_members) == old
    assert ("syscall_code_routing_table" in maps) == old
    assert ("ppm_sc" in pair_members) == (not old)
    assert ("interesting_syscalls_table" in maps) == (not old)
