"""Capture real system call events with a loaded probe: the least of libscap's user space.

A probe loads without any of its tables filled; it only emits events once user
space has filled them, as libscap's BPF engine does (`scap_bpf.c`: settings,
syscall table, event and filler tables, tail calls at their filler ids, one
perf buffer per CPU). We do the minimum for one kind of event:

- every system call is marked uninteresting except `openat`, which is left
  unclaimed so the probe reports it as a generic event (PPME_GENERIC_E/X,
  filled by the `sys_generic` filler, then `terminate_filler`);
- the event table describes those two events' parameters, the filler table
  points them at `sys_generic`, the tail-call map holds every filler at its id;
- `capture_enabled` and a snap length go into the settings map;
- one BPF output perf event per CPU goes into `perf_map`, each mapped once.

Then a child process opens a file a known number of times, and we count the
events the probe wrote with that child's thread id. Bookworm's sysdig 0.29.3
cannot do this on current Debian kernels: it maps each perf buffer twice with
MAP_FIXED so that the second mapping overlaps the first one's header page,
which the fix for CVE-2025-38563 refuses (ENOMEM, in Debian 6.1 since
6.1.148-1). A single mapping, read with wrap-around, needs no such trick.

The recipe (offsets, enum values, filler ids) is read on the host from the
probe's own DWARF (`capture_recipe`), so no table of a driver version is
copied here; probes whose types do not match what this needs get no recipe
and their events stay 0 ("not tried"). The capture runs in the VM
(`count_events`).
"""

from __future__ import annotations

import mmap
import os
import struct
import time
from pathlib import Path
from typing import Any

from builder.loadtest.bpf import Bpf, BpfError

# Native syscall numbers of openat, and what a perf BPF output event is.
OPENAT = {"x86_64": 257, "aarch64": 56}
PERF_TYPE_SOFTWARE = 1
PERF_COUNT_SW_BPF_OUTPUT = 10
PERF_SAMPLE_RAW = 1 << 10
PERF_RECORD_LOST = 2
PERF_RECORD_SAMPLE = 9
PERF_ATTR_SIZE = 112            # PERF_ATTR_SIZE_VER5: every kernel we test knows it
PERF_PAGES = 64                 # data pages per CPU (256 KiB): plenty for a few events
PERF_HEAD = 1024                # offsetof(struct perf_event_mmap_page, data_head)
SNAPLEN = 80
OPENS = 3                       # openat calls the child makes: 2 events each

# What the recipe needs from the probe's DWARF: struct members and enum constants.
STRUCTS = {
    "scap_bpf_settings": ("capture_enabled", "snaplen"),
    "syscall_evt_pair": ("flags", "enter_event_type", "exit_event_type"),
    "ppm_event_info": ("nparams", "params"),
    "ppm_param_info": ("type",),
    "ppm_event_entry": ("filler_id",),
    "ppm_evt_hdr": ("tid", "len", "type"),
}
ENUMS = {
    "ppm_event_type": ("PPME_GENERIC_E", "PPME_GENERIC_X"),
    "ppm_param_type": ("PT_SYSCALLID", "PT_UINT16"),
    "syscall_flags": ("UF_UNINTERESTING",),
    "ppm_filler_id": ("PPM_FILLER_sys_generic", "PPM_FILLER_terminate_filler"),
}
MAPS = ("settings_map", "syscall_table", "event_info_table", "fillers_table", "tail_map",
        "perf_map", "syscall_code_routing_table")


# --- host: the recipe, from the probe's DWARF ---------------------------------------------

def capture_recipe(path: Path) -> dict[str, Any] | None:
    """What count_events needs to know about this probe's types, or None if it cannot."""
    from elftools.common.exceptions import DWARFError, ELFError
    from elftools.elf.elffile import ELFFile

    try:
        with path.open("rb") as stream:
            elf = ELFFile(stream)
            if not elf.has_dwarf_info():
                return None
            structs, enums = _types(elf.get_dwarf_info(relocate_dwarf_sections=False))
    except (ELFError, DWARFError, OSError, KeyError, ValueError):
        return None
    for name, members in STRUCTS.items():
        if name not in structs or not set(members) <= set(structs[name]["members"]):
            return None
    for name, constants in ENUMS.items():
        if name not in enums or not set(constants) <= set(enums[name]):
            return None
    fillers = {name.removeprefix("PPM_FILLER_"): value
               for name, value in enums["ppm_filler_id"].items()}
    routing = enums.get("ppm_syscall_code", {}).get("PPM_SC_OPENAT", 0)
    return {"structs": {name: structs[name] for name in STRUCTS},
            "enums": {name: {c: enums[name][c] for c in constants}
                      for name, constants in ENUMS.items()},
            "fillers": fillers, "routing": routing}


def _types(dwarf: Any) -> tuple[dict[str, Any], dict[str, dict[str, int]]]:
    """Named structs (size, member offsets) and enums at the top of each compile unit."""
    structs: dict[str, Any] = {}
    enums: dict[str, dict[str, int]] = {}
    wanted = {*STRUCTS, *ENUMS, "ppm_syscall_code"}
    for unit in dwarf.iter_CUs():
        for die in unit.get_top_DIE().iter_children():
            name = _name(die)
            if name not in wanted or name in structs or name in enums:
                continue
            if die.tag == "DW_TAG_structure_type" and "DW_AT_byte_size" in die.attributes:
                members = {_name(m): m.attributes["DW_AT_data_member_location"].value
                           for m in die.iter_children()
                           if m.tag == "DW_TAG_member"
                           and "DW_AT_data_member_location" in m.attributes}
                structs[name] = {"size": die.attributes["DW_AT_byte_size"].value,
                                 "members": members}
            elif die.tag == "DW_TAG_enumeration_type":
                enums[name] = {_name(c): c.attributes["DW_AT_const_value"].value
                               for c in die.iter_children() if c.tag == "DW_TAG_enumerator"}
    return structs, enums


def _name(die: Any) -> str:
    attribute = die.attributes.get("DW_AT_name")
    return attribute.value.decode("utf-8", "replace") if attribute else ""


# --- guest: fill the tables, open the buffers, run a child, count its events ----------------

class _Layout:
    def __init__(self, recipe: dict[str, Any]) -> None:
        self.structs = recipe["structs"]
        self.enums = recipe["enums"]

    def offset(self, struct_name: str, member: str) -> int:
        return int(self.structs[struct_name]["members"][member])

    def size(self, struct_name: str) -> int:
        return int(self.structs[struct_name]["size"])

    def value(self, enum: str, constant: str) -> int:
        return int(self.enums[enum][constant])


def count_events(recipe: dict[str, Any], maps: dict[str, tuple[int, Any]],
                 programs: dict[str, int], bpf: Bpf, *, machine: str = "") -> int:
    """Events the probe emits for a child's `openat` calls; raises BpfError or OSError.

    `maps` is name -> (fd, MapDef) of the loaded probe, `programs` filler name -> fd.
    """
    layout = _Layout(recipe)
    machine = machine or os.uname().machine
    if any(name not in maps for name in MAPS) or machine not in OPENAT:
        return 0
    _fill_tables(layout, recipe, maps, programs, bpf, OPENAT[machine])
    buffers = _open_buffers(maps["perf_map"][0], bpf)
    try:
        _set_capture(layout, maps["settings_map"], bpf, True)
        child = _opener()
        _set_capture(layout, maps["settings_map"], bpf, False)
        return sum(_count(buffer, layout, child) for _, buffer in buffers)
    finally:
        for fd, buffer in buffers:
            buffer.close()
            os.close(fd)


def _fill_tables(layout: _Layout, recipe: dict[str, Any], maps: dict[str, tuple[int, Any]],
                 programs: dict[str, int], bpf: Bpf, openat: int) -> None:
    key = _u32
    fillers = recipe["fillers"]
    for name, fd in programs.items():
        if name in fillers and fillers[name] < maps["tail_map"][1].max_entries:
            bpf.map_update(maps["tail_map"][0], key(fillers[name]), struct.pack("<I", fd))
    pair = layout.size("syscall_evt_pair")
    uninteresting = bytearray(pair)
    struct.pack_into("<I", uninteresting, layout.offset("syscall_evt_pair", "flags"),
                     layout.value("syscall_flags", "UF_UNINTERESTING"))
    table_fd, table = maps["syscall_table"]
    for number in range(table.max_entries):
        # flags 0: neither used nor uninteresting, so the probe sends a generic event
        bpf.map_update(table_fd, key(number),
                       bytes(pair) if number == openat else bytes(uninteresting))
    bpf.map_update(maps["syscall_code_routing_table"][0], key(openat),
                   struct.pack("<Q", int(recipe["routing"])))
    generic_e = layout.value("ppm_event_type", "PPME_GENERIC_E")
    generic_x = layout.value("ppm_event_type", "PPME_GENERIC_X")
    syscall_id = layout.value("ppm_param_type", "PT_SYSCALLID")
    native_id = layout.value("ppm_param_type", "PT_UINT16")
    for event, params in ((generic_e, (syscall_id, native_id)), (generic_x, (syscall_id,))):
        bpf.map_update(maps["event_info_table"][0], key(event), _event_info(layout, params))
        entry = bytearray(layout.size("ppm_event_entry"))
        struct.pack_into("<I", entry, layout.offset("ppm_event_entry", "filler_id"),
                         fillers["sys_generic"])
        bpf.map_update(maps["fillers_table"][0], key(event), bytes(entry))


def _u32(number: int) -> bytes:
    """Every table here is keyed by a u32."""
    return struct.pack("<I", number)


def _event_info(layout: _Layout, params: tuple[int, ...]) -> bytes:
    info = bytearray(layout.size("ppm_event_info"))
    struct.pack_into("<I", info, layout.offset("ppm_event_info", "nparams"), len(params))
    first = layout.offset("ppm_event_info", "params")
    stride = layout.size("ppm_param_info")
    for index, kind in enumerate(params):
        struct.pack_into("<I", info, first + index * stride + layout.offset("ppm_param_info",
                                                                            "type"), kind)
    return bytes(info)


def _set_capture(layout: _Layout, settings: tuple[int, Any], bpf: Bpf, enabled: bool) -> None:
    value = bytearray(layout.size("scap_bpf_settings"))
    struct.pack_into("<I", value, layout.offset("scap_bpf_settings", "snaplen"), SNAPLEN)
    value[layout.offset("scap_bpf_settings", "capture_enabled")] = 1 if enabled else 0
    bpf.map_update(settings[0], struct.pack("<I", 0), bytes(value))


def _open_buffers(perf_map: int, bpf: Bpf) -> list[tuple[int, mmap.mmap]]:
    """One BPF output perf event per online CPU, in perf_map at its CPU, mapped once."""
    attr = bytearray(PERF_ATTR_SIZE)
    struct.pack_into("<IIQQQ", attr, 0, PERF_TYPE_SOFTWARE, PERF_ATTR_SIZE,
                     PERF_COUNT_SW_BPF_OUTPUT, 1, PERF_SAMPLE_RAW)
    struct.pack_into("<I", attr, 48, 1)  # wakeup_events
    out: list[tuple[int, mmap.mmap]] = []
    try:
        for cpu in sorted(os.sched_getaffinity(0)):
            fd = bpf.perf_event_open(bytes(attr), -1, cpu, -1, 0)
            try:
                size = (PERF_PAGES + 1) * mmap.PAGESIZE
                buffer = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
            except OSError:
                os.close(fd)
                raise
            out.append((fd, buffer))
            bpf.map_update(perf_map, struct.pack("<I", cpu), struct.pack("<I", fd))
    except (BpfError, OSError):
        for fd, buffer in out:
            buffer.close()
            os.close(fd)
        raise
    return out


def _opener(path: str = "/proc/self/status") -> int:
    """A child that opens `path` OPENS times and exits; returns its pid once it is gone."""
    pid = os.fork()
    if pid == 0:  # the child: nothing but the system calls we count
        try:
            for _ in range(OPENS):
                os.close(os.open(path, os.O_RDONLY))
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    time.sleep(0.05)  # let the last event land in the buffer
    return pid


def _count(buffer: mmap.mmap, layout: _Layout, tid: int) -> int:
    """Events in one perf buffer whose ppm header names thread `tid` (generic ones)."""
    head, _tail, offset, size = struct.unpack_from("<QQQQ", buffer, PERF_HEAD)
    if not size:  # kernels before 4.1: data right after the header page
        offset, size = mmap.PAGESIZE, PERF_PAGES * mmap.PAGESIZE
    data = bytes(buffer[offset:offset + size])
    types = {layout.value("ppm_event_type", "PPME_GENERIC_E"),
             layout.value("ppm_event_type", "PPME_GENERIC_X")}
    tid_at = layout.offset("ppm_evt_hdr", "tid")
    type_at = layout.offset("ppm_evt_hdr", "type")
    found = 0
    position = max(0, head - size)
    while position + 8 <= head:
        record = _read(data, position, 8)
        kind, _misc, length = struct.unpack("<IHH", record)
        if length < 8:
            break
        if kind == PERF_RECORD_SAMPLE and length >= 12:
            raw_size = struct.unpack("<I", _read(data, position + 8, 4))[0]
            raw = _read(data, position + 12, min(raw_size, length - 12))
            if len(raw) >= type_at + 2:
                event_tid = struct.unpack_from("<Q", raw, tid_at)[0]
                event_type = struct.unpack_from("<H", raw, type_at)[0]
                if event_tid == tid and event_type in types:
                    found += 1
        position += length
    return found


def _read(data: bytes, position: int, length: int) -> bytes:
    """`length` bytes of the ring at `position`, wrapping around its end."""
    start = position % len(data)
    chunk = data[start:start + length]
    return chunk + data[:length - len(chunk)]
