"""compile/kmodiface.py: a module's ioctls and capture protocol, read from the headers of
its own source, for each era of the protocol (small fixtures in the headers' own shape:
defines continued on the next line, dropped ioctls left as comments)."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.compile.kmodiface import device_interface

CONFIG = """#pragma once
#define PPM_API_CURRENT_VERSION_MAJOR 8
#define PPM_API_CURRENT_VERSION_MINOR 0
#define PPM_API_CURRENT_VERSION_PATCH 4
#define PPM_SCHEMA_CURRENT_VERSION_MAJOR 4
#define PPM_SCHEMA_CURRENT_VERSION_MINOR 1
#define PPM_SCHEMA_CURRENT_VERSION_PATCH 0
#define DRIVER_NAME "falco"
"""
# 9.1.0+driver's shape: ENABLE_SYSCALL and ENABLE_TP, one define split over two lines
ENABLE_TP = """#define PPM_IOCTL_MAGIC 's'
// #define PPM_IOCTL_ENABLE_CAPTURE _IO(PPM_IOCTL_MAGIC, 1) Support dropped
#define PPM_IOCTL_GET_DRIVER_VERSION _IO(PPM_IOCTL_MAGIC, 21)
#define PPM_IOCTL_GET_API_VERSION _IO(PPM_IOCTL_MAGIC, 24)
#define PPM_IOCTL_GET_SCHEMA_VERSION _IO(PPM_IOCTL_MAGIC, 25)
#define PPM_IOCTL_ENABLE_SYSCALL _IO(PPM_IOCTL_MAGIC, 29)  // replaces MASK_SET_EVENT
#define PPM_IOCTL_DISABLE_SYSCALL \\
	_IO(PPM_IOCTL_MAGIC, 30)  // this replaces PPM_IOCTL_MASK_UNSET_EVENT
#define PPM_IOCTL_ENABLE_TP _IO(PPM_IOCTL_MAGIC, 31)
#define PPM_IOCTL_DISABLE_TP _IO(PPM_IOCTL_MAGIC, 32)
#define SYSCALL_TABLE_SIZE 512
"""
TRACEPOINTS = """#define KMOD_PROGS                                      \\
	X(KMOD_PROG_SYS_ENTER, "sys_enter")                 \\
	X(KMOD_PROG_SYS_EXIT, "sys_exit")                   \\
	X(KMOD_PROG_SCHED_PROC_EXIT, "sched_process_exit")  \\
"""
MANAGE_TP = """#define PPM_IOCTL_MAGIC 's'
#define PPM_IOCTL_GET_DRIVER_VERSION _IO(PPM_IOCTL_MAGIC, 21)
#define PPM_IOCTL_ENABLE_SYSCALL _IO(PPM_IOCTL_MAGIC, 29)
#define PPM_IOCTL_MANAGE_TP _IO(PPM_IOCTL_MAGIC, 26)
"""
ENABLE_CAPTURE = """#define PPM_IOCTL_MAGIC 's'
#define PPM_IOCTL_DISABLE_CAPTURE _IO(PPM_IOCTL_MAGIC, 0)
#define PPM_IOCTL_ENABLE_CAPTURE _IO(PPM_IOCTL_MAGIC, 1)
#define PPM_IOCTL_GET_PROBE_VERSION _IO(PPM_IOCTL_MAGIC, 21)
"""


def source(folder: Path, public: str, tracepoints: str = "", config: str = "") -> Path:
    folder.mkdir()
    (folder / "ppm_events_public.h").write_text(public)
    if tracepoints:
        (folder / "ppm_tp.h").write_text(tracepoints)
    if config:
        (folder / "driver_config.h").write_text(config)
    return folder


def test_the_5_0_1_protocol_with_its_numbers_and_tracepoints(tmp_path: Path) -> None:
    found = device_interface(source(tmp_path / "d", ENABLE_TP, TRACEPOINTS, CONFIG))
    assert found == {
        "ioctls": {"GET_DRIVER_VERSION": 0x7315, "GET_API_VERSION": 0x7318,
                   "GET_SCHEMA_VERSION": 0x7319, "ENABLE_SYSCALL": 0x731D,
                   "DISABLE_SYSCALL": 0x731E, "ENABLE_TP": 0x731F, "DISABLE_TP": 0x7320},
        "kmod_progs": ["KMOD_PROG_SYS_ENTER", "KMOD_PROG_SYS_EXIT",
                       "KMOD_PROG_SCHED_PROC_EXIT"],
        "syscall_table_size": 512, "api": "8.0.4", "schema": "4.1.0", "capture": "enable_tp"}


@pytest.mark.parametrize(("public", "capture", "names"), [
    (MANAGE_TP, "manage_tp", {"GET_DRIVER_VERSION", "ENABLE_SYSCALL", "MANAGE_TP"}),
    (ENABLE_CAPTURE, "enable_capture", {"DISABLE_CAPTURE", "ENABLE_CAPTURE",
                                        "GET_PROBE_VERSION"}),
], ids=["4.0.0", "up to 3.0.1"])
def test_older_protocols_are_named(tmp_path: Path, public: str, capture: str,
                                   names: set[str]) -> None:
    found = device_interface(source(tmp_path / "d", public))
    assert found["capture"] == capture and set(found["ioctls"]) == names
    assert (found["api"], found["schema"], found["kmod_progs"]) == ("", "", [])
    assert found["syscall_table_size"] == 512


def test_a_folder_without_the_header_has_no_interface(tmp_path: Path) -> None:
    assert device_interface(tmp_path) == {}
    assert device_interface(source(tmp_path / "d", "#define NOTHING 1\n")) == {}
