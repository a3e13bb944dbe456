"""loadtest/loader.py against a stand-in for the kernel: libscap's loading steps (maps,
programs with statistics then a verbose log when rejected, fillers into the tail-call
map, the others onto their tracepoints) and what a result says. The real kernel's
verdicts are in tests/e2e/test_loadtest_boot.py."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from fakeprobe import make_fake_probe

from builder.loadtest import loader
from builder.loadtest.bpf import (
    BPF_LOG_LEVEL_STATS,
    BPF_LOG_LEVEL_VERBOSE,
    BPF_PROG_TYPE_RAW_TRACEPOINT,
    BPF_PROG_TYPE_TRACEPOINT,
    Bpf,
    BpfError,
    Loaded,
)
from builder.loadtest.loader import SKIPPED, ProbeResult, ProgramResult, load_probe
from builder.loadtest.probeelf import (
    PERF_TRACEPOINT,
    RAW_TRACEPOINT,
    TAIL_CALL,
    MapDef,
    ProbeObject,
    Program,
    read_probe,
)

VERBOSE_LOG = ("0: (b7) r0 = 0\n1: (79) r1 = *(u64 *)(r10 -8)\ninvalid read from stack off -8\n"
               "processed 2 insns (limit 1000000) max_states_per_insn 0\n"
               "verification time 5 usec\nstack depth 8\n")


# The raw tracepoints of a 6.1 kernel that the probes of the tests attach to.
RAW_TRACEPOINTS = {"sys_enter", "sys_exit", "sched_process_exit", "sched_switch",
                   "sched_process_fork", "sched_process_exec", "signal_deliver",
                   "page_fault_user", "page_fault_kernel"}


class Kernel(Bpf):
    """Accepts every program but those it is told to reject; remembers every call. Its fds
    are real (of /dev/null), so the loader's closing them is real too."""

    def __init__(self, reject: frozenset[int] = frozenset()) -> None:  # no libc needed
        self.reject = reject
        self.maps: list[tuple[int, int, int, int, int]] = []
        self.loads: list[int] = []                 # log level of each BPF_PROG_LOAD
        self.kinds: list[int] = []                 # program type of each BPF_PROG_LOAD
        self.updates: list[tuple[int, bytes, bytes]] = []
        self.attached: list[str] = []
        self.perf: list[int] = []                  # tracepoint ids given a program
        self.fds: list[int] = []

    def _fd(self) -> int:
        fd = os.open(os.devnull, os.O_RDONLY)
        self.fds.append(fd)
        return fd

    def map_create(self, kind: int, key_size: int, value_size: int, max_entries: int,
                   flags: int) -> int:
        self.maps.append((kind, key_size, value_size, max_entries, flags))
        return self._fd()

    def prog_load(self, kind: int, insns: bytes, license: str, log_level: int,
                  log_size: int) -> Loaded:
        self.loads.append(log_level)
        self.kinds.append(kind)
        program = self.loads.count(BPF_LOG_LEVEL_STATS) - 1
        if program in self.reject:
            return Loaded(-1, errno.EACCES, VERBOSE_LOG if log_level == 1 else "")
        return Loaded(self._fd(), 0, "processed 42 insns (limit 1000000)\n")

    def map_update(self, fd: int, key: bytes, value: bytes, flags: int = 0) -> None:
        self.updates.append((fd, key, value))

    def raw_tracepoint_open(self, name: str, prog_fd: int) -> int:
        if name not in RAW_TRACEPOINTS:
            raise BpfError(f"BPF_RAW_TRACEPOINT_OPEN {name}", errno.ENOENT)
        self.attached.append(name)
        return self._fd()

    def tracepoint_attach(self, event_id: int, prog_fd: int) -> int:
        self.perf.append(event_id)
        return self._fd()

    def all_closed(self) -> bool:
        def closed(fd: int) -> bool:
            try:
                os.fstat(fd)
            except OSError:
                return True
            return False

        return all(closed(fd) for fd in self.fds)


def test_a_rejected_programs_reason_is_the_verifiers_last_words() -> None:
    rejected = ProgramResult("raw_tracepoint/sys_enter", False, 2, error="EACCES",
                             log=VERBOSE_LOG)
    assert rejected.tail() == ["0: (b7) r0 = 0", "1: (79) r1 = *(u64 *)(r10 -8)",
                               "invalid read from stack off -8"]   # no statistics
    result = ProbeResult("p.o", "6.1.0-1-amd64", total=3, accepted=1, programs=[
        ProgramResult("a", True, 2), rejected, ProgramResult("b", False, 2, error="E2BIG")])
    assert not result.passed
    assert result.reason() == ("raw_tracepoint/sys_enter: EACCES (and 1 more programs): 0: "
                               "(b7) r0 = 0 | 1: (79) r1 = *(u64 *)(r10 -8) | invalid read "
                               "from stack off -8")
    assert ProbeResult("p.o", "k", total=0).passed is False         # nothing loaded is no pass
    assert ProbeResult("p.o", "k", error="not a probe").reason() == "not a probe"


def test_a_file_that_is_not_a_probe_is_an_error_and_no_call(tmp_path: Path) -> None:
    kernel = Kernel()
    result = load_probe(str(make_fake_probe(tmp_path / "p.o")), kernel, kernel="6.1.0-0-amd64")
    assert "no symbol table" in result.error and result.total == 0 and not result.passed
    assert kernel.maps == [] and kernel.loads == []


@pytest.mark.slow
def test_every_program_loads_then_fillers_and_tracepoints_are_attached(real_probe: Path) -> None:
    probe = read_probe(real_probe)
    kernel = Kernel()
    result = load_probe(str(real_probe), kernel, kernel=probe.kernel_release)
    assert result.passed and result.error == ""
    assert result.accepted == result.total == len(probe.programs) == len(kernel.loads)
    assert set(kernel.loads) == {BPF_LOG_LEVEL_STATS}                  # no verbose log needed
    assert all(p.processed == 42 for p in result.programs)
    cpus = os.sysconf("SC_NPROCESSORS_CONF")
    assert [m[3] for m in kernel.maps] == [spec.max_entries or cpus for spec in probe.maps]
    fillers = [p for p in probe.programs if p.is_filler]
    raw = [p.event for p in probe.programs if not p.is_filler and p.raw]
    assert sorted(int.from_bytes(key, "little") for _, key, _ in kernel.updates) == \
        list(range(len(fillers)))                                    # distinct tail-call slots
    assert kernel.attached == raw and result.attached == len(raw) > 0
    assert kernel.all_closed()                                       # maps, programs, links


@pytest.mark.slow
def test_a_rejected_program_is_loaded_again_verbosely_and_nothing_is_attached(
        real_probe: Path) -> None:
    probe = read_probe(real_probe)
    kernel = Kernel(reject=frozenset({1}))
    result = load_probe(str(real_probe), kernel, kernel=probe.kernel_release)
    assert not result.passed and result.accepted == result.total - 1
    assert kernel.loads.count(BPF_LOG_LEVEL_VERBOSE) == 1
    assert result.reason().startswith(f"{probe.programs[1].section}: EACCES: 0: (b7) r0 = 0")
    assert kernel.attached == [] and kernel.updates == [] and kernel.all_closed()


@pytest.mark.slow
def test_a_probe_for_another_kernel_is_refused_as_libscap_does(real_probe: Path) -> None:
    kernel = Kernel()
    result = load_probe(str(real_probe), kernel, kernel="5.10.0-1-amd64")
    assert result.error.startswith("the probe is built for ")
    assert result.error.endswith(" but the kernel is 5.10.0-1-amd64 (libscap refuses to load it)")
    assert kernel.maps == []


# An aarch64 probe of each kind, as its section names say (see test_probeelf.py):
# 8.x/9.x (raw tracepoints, a second program on sched_process_fork) and the 2022 snapshot
# (tracepoint/ programs, x86-only page-fault tracepoints this kernel lacks).
TRACEFS = {"raw_syscalls/sys_enter": 21, "raw_syscalls/sys_exit": 20,
           "sched/sched_process_exit": 317}


def _probe(sections: tuple[str, ...]) -> ProbeObject:
    tail = MapDef("tail_map", 0, 3, 4, 4, 16, 0)           # BPF_MAP_TYPE_PROG_ARRAY
    return ProbeObject("p.o", (tail,), tuple(Program(s, BPF_RETURN, ()) for s in sections),
                       "GPL", "")


BPF_RETURN = bytes.fromhex("b700000000000000" "9500000000000000")


@pytest.mark.parametrize(("sections", "kinds", "raw", "perf", "attached", "skipped"), [
    (("raw_tracepoint/filler/sys_open_x", "raw_tracepoint/sys_enter",
      "raw_tracepoint/sched_process_fork&2"),
     [BPF_PROG_TYPE_RAW_TRACEPOINT] * 3, ["sys_enter", "sched_process_fork"], [], 2, 0),
    (("tracepoint/filler/sys_autofill", "tracepoint/raw_syscalls/sys_enter",
      "tracepoint/raw_syscalls/sys_exit", "tracepoint/sched/sched_process_exit",
      "tracepoint/exceptions/page_fault_user", "tracepoint/exceptions/page_fault_kernel"),
     [BPF_PROG_TYPE_TRACEPOINT] * 6, [], [21, 20, 317], 3, 2),
])
def test_each_program_is_attached_as_its_section_says(
        monkeypatch: pytest.MonkeyPatch, sections: tuple[str, ...], kinds: list[int],
        raw: list[str], perf: list[int], attached: int, skipped: int) -> None:
    monkeypatch.setattr(loader, "read_probe", lambda path: _probe(sections))
    monkeypatch.setattr(loader, "tracepoint_id", TRACEFS.get)
    kernel = Kernel()
    result = load_probe("p.o", kernel, kernel="6.1.0-57-arm64")
    assert result.passed, result.reason()
    assert kernel.kinds == kinds
    assert kernel.attached == raw and kernel.perf == perf
    assert [int.from_bytes(key, "little") for _, key, _ in kernel.updates] == [0]  # the filler
    assert result.attached == attached                   # what really attached, no more
    how = [p.attach for p in result.programs]
    assert how[0] == TAIL_CALL and how.count(SKIPPED) == skipped
    assert set(how[1:]) - {SKIPPED} == {RAW_TRACEPOINT if raw else PERF_TRACEPOINT}
    assert kernel.all_closed()


@pytest.mark.parametrize(("section", "error"), [
    # a tracepoint the kernel lacks and libscap does not skip refuses the probe
    ("tracepoint/sched/sched_process_fork", "attach: no tracepoint sched/sched_process_fork "
                                            "in tracefs: ENOENT"),
    # the raw tracepoint's name without `&N` must exist (here it does not: no `&` stripped
    # from a name that does not end in `&<digit>`)
    ("raw_tracepoint/sched_process_fork&x", "attach: BPF_RAW_TRACEPOINT_OPEN "
                                            "sched_process_fork&x: ENOENT"),
])
def test_a_tracepoint_the_kernel_lacks_is_a_rejection(monkeypatch: pytest.MonkeyPatch,
                                                      section: str, error: str) -> None:
    monkeypatch.setattr(loader, "read_probe", lambda path: _probe((section,)))
    monkeypatch.setattr(loader, "tracepoint_id", TRACEFS.get)
    result = load_probe("p.o", Kernel(), kernel="6.1.0-57-arm64")
    assert not result.passed and result.attached == 0
    assert result.reason().startswith(f"{section}: {error}")
