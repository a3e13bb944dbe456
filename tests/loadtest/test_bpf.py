"""loadtest/bpf.py: the bpf() door. Errors come back as BpfError or a Loaded result with
the errno, never as a crash, whatever this machine lets a process do (the real loads
happen in the VM of tests/e2e/test_loadtest_boot.py)."""

from __future__ import annotations

import errno
import platform

import pytest

from builder.loadtest.bpf import (
    BPF_LOG_LEVEL_STATS,
    BPF_PROG_TYPE_RAW_TRACEPOINT,
    SYSCALLS,
    Bpf,
    BpfError,
    Loaded,
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
