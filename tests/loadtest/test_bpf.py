"""loadtest/bpf.py: the bpf() door. Errors come back as BpfError or a Loaded result with
the errno, never as a crash, whatever this machine lets a process do (the real loads
happen in the VM of tests/e2e/test_loadtest_boot.py)."""

from __future__ import annotations

import errno
import platform
import struct
from pathlib import Path

import pytest

from builder.loadtest.bpf import (
    BPF_LOG_LEVEL_STATS,
    BPF_PROG_TYPE_RAW_TRACEPOINT,
    PERF_ATTR_SIZE,
    PERF_SAMPLE_RAW,
    PERF_TYPE_TRACEPOINT,
    SYSCALLS,
    Bpf,
    BpfError,
    Loaded,
    perf_attr,
    tracepoint_id,
)

# Refused before or by the verifier, by a container's seccomp filter, or for lack of rights.
REFUSALS = {"EINVAL", "EPERM", "EACCES", "ENOSYS", "E2BIG"}


def test_an_error_names_the_call_and_the_errno() -> None:
    error = BpfError("BPF_MAP_CREATE", errno.EPERM)
    assert str(error) == "BPF_MAP_CREATE: EPERM (Operation not permitted)"
    assert (error.code, error.errno_name) == (errno.EPERM, "EPERM")
    assert BpfError("x", 100000).errno_name == "100000"
    assert Loaded(5).ok and not Loaded(-1, errno.EACCES, "log").ok


def test_only_known_machines_have_syscall_numbers() -> None:
    assert SYSCALLS["x86_64"] == {"bpf": 321, "perf_event_open": 298}
    assert SYSCALLS["aarch64"] == {"bpf": 280, "perf_event_open": 241}
    with pytest.raises(OSError, match="no bpf\\(\\) syscall number known for sparc64"):
        Bpf("sparc64")


@pytest.mark.skipif(platform.machine() not in SYSCALLS, reason="no bpf() numbers here")
def test_a_refused_call_is_an_errno_not_a_crash() -> None:
    bpf = Bpf()
    with pytest.raises(BpfError) as refused:
        bpf.map_create(0xFFFF, 4, 4, 1, 0)             # no such map type
    assert refused.value.errno_name in REFUSALS
    loaded = bpf.prog_load(BPF_PROG_TYPE_RAW_TRACEPOINT, b"\xff" * 8, "GPL",
                           BPF_LOG_LEVEL_STATS, 4096)   # not an instruction
    assert not loaded.ok and errno.errorcode[loaded.code] in REFUSALS
    with pytest.raises(BpfError, match="BPF_RAW_TRACEPOINT_OPEN no_such_tracepoint"):
        bpf.raw_tracepoint_open("no_such_tracepoint", 999_999)   # no such fd either


def test_a_tracepoints_id_is_read_from_the_first_tracefs_that_has_it(tmp_path: Path) -> None:
    tracefs, debugfs = tmp_path / "tracing", tmp_path / "debug" / "tracing"
    for root, name, number in ((tracefs, "raw_syscalls/sys_enter", "21\n"),
                               (debugfs, "raw_syscalls/sys_enter", "99\n"),
                               (debugfs, "sched/sched_switch", "317\n"),
                               (tracefs, "broken/event", "not a number\n")):
        (root / "events" / name).mkdir(parents=True)
        (root / "events" / name / "id").write_text(number)
    roots = (str(tracefs), str(debugfs))
    assert tracepoint_id("raw_syscalls/sys_enter", roots) == 21
    assert tracepoint_id("sched/sched_switch", roots) == 317        # libscap's debugfs path
    assert tracepoint_id("exceptions/page_fault_user", roots) is None
    assert tracepoint_id("broken/event", roots) is None


def test_a_perf_attr_is_libscaps_tracepoint_event() -> None:
    """type, size, config (the tracepoint id), sample_period 1, PERF_SAMPLE_RAW and
    wakeup_events 1 at the offsets of include/uapi/linux/perf_event.h."""
    attr = perf_attr(PERF_TYPE_TRACEPOINT, 317)
    assert len(attr) == PERF_ATTR_SIZE == 112
    assert struct.unpack_from("<IIQQQ", attr, 0) == (2, 112, 317, 1, PERF_SAMPLE_RAW)
    assert struct.unpack_from("<I", attr, 48) == (1,)
    assert attr[32:48] == bytes(16) and attr[52:] == bytes(60)
