"""The few `bpf()` and `perf_event_open()` calls a legacy probe loader needs, via ctypes.

`union bpf_attr` and `struct perf_event_attr` are laid out by hand
(struct.pack_into a zeroed buffer) for the commands used here; the offsets are
those of include/uapi/linux/bpf.h and perf_event.h, stable since the commands
were added. Errors come back as BpfError with the errno, never as a crash: a
loader records them as results.
"""

from __future__ import annotations

import ctypes
import errno as errno_names
import fcntl
import os
import platform
import struct
from dataclasses import dataclass

# Syscall numbers of the architectures we build probes for.
SYSCALLS = {"x86_64": {"bpf": 321, "perf_event_open": 298},
            "aarch64": {"bpf": 280, "perf_event_open": 241}}

BPF_MAP_CREATE = 0
BPF_MAP_LOOKUP_ELEM = 1
BPF_MAP_UPDATE_ELEM = 2
BPF_PROG_LOAD = 5
BPF_RAW_TRACEPOINT_OPEN = 17
BPF_MAP_TYPE_PROG_ARRAY = 3
BPF_PROG_TYPE_TRACEPOINT = 5
BPF_PROG_TYPE_RAW_TRACEPOINT = 17
BPF_ANY = 0
BPF_LOG_LEVEL_VERBOSE = 1
BPF_LOG_LEVEL_STATS = 4
ATTR_SIZE = 128           # larger than every field we set; the kernel wants the tail zeroed
STATS_LOG_SIZE = 4096     # log_level 4 prints a few lines of statistics
VERBOSE_LOG_SIZE = (1 << 24) - 1   # 16 MiB: the largest log kernels before 5.2 accept

PERF_TYPE_SOFTWARE = 1
PERF_TYPE_TRACEPOINT = 2
PERF_SAMPLE_RAW = 1 << 10
PERF_ATTR_SIZE = 112            # PERF_ATTR_SIZE_VER5: every kernel we test knows it
PERF_EVENT_IOC_SET_BPF = 0x40042408   # _IOW('$', 8, __u32), the same on every architecture
# Where a tracepoint's id is: tracefs (the load-test VM mounts it), then libscap's path.
TRACEFS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")


class BpfError(Exception):
    def __init__(self, what: str, code: int) -> None:
        name = errno_names.errorcode.get(code, str(code))
        super().__init__(f"{what}: {name} ({os.strerror(code)})")
        self.code = code
        self.errno_name = name


@dataclass(frozen=True, slots=True)
class Loaded:
    """The result of one BPF_PROG_LOAD: an fd, or the errno and the verifier's log."""

    fd: int
    code: int = 0          # errno when rejected
    log: str = ""          # statistics when accepted, the verbose log when rejected

    @property
    def ok(self) -> bool:
        return self.fd >= 0


def perf_attr(kind: int, config: int) -> bytes:
    """A perf_event_attr as libscap opens its events: every event sampled with its raw
    data (sample_period 1, PERF_SAMPLE_RAW), waking the reader at each (wakeup_events 1)."""
    attr = bytearray(PERF_ATTR_SIZE)
    struct.pack_into("<IIQQQ", attr, 0, kind, PERF_ATTR_SIZE, config, 1, PERF_SAMPLE_RAW)
    struct.pack_into("<I", attr, 48, 1)  # wakeup_events
    return bytes(attr)


def tracepoint_id(event: str, roots: tuple[str, ...] = TRACEFS) -> int | None:
    """The id of tracepoint `category/name` (tracefs `events/<event>/id`), None without one."""
    for root in roots:
        try:
            with open(f"{root}/events/{event}/id", encoding="ascii") as handle:
                return int(handle.read().strip())
        except (FileNotFoundError, NotADirectoryError, ValueError):
            continue
    return None


class Bpf:
    """The calling process's door to the kernel's eBPF subsystem."""

    def __init__(self, machine: str | None = None) -> None:
        machine = machine or platform.machine()
        if machine not in SYSCALLS:
            raise OSError(f"no bpf() syscall number known for {machine}")
        self._numbers = SYSCALLS[machine]
        self._libc = ctypes.CDLL(None, use_errno=True)
        self._libc.syscall.restype = ctypes.c_long

    def _call(self, name: str, *args: object) -> int:
        ctypes.set_errno(0)
        result = int(self._libc.syscall(ctypes.c_long(self._numbers[name]), *args))
        return result if result >= 0 else -ctypes.get_errno()

    def _bpf(self, cmd: int, attr: ctypes.Array[ctypes.c_char]) -> int:
        return self._call("bpf", ctypes.c_int(cmd), attr, ctypes.c_uint(ATTR_SIZE))

    def map_create(self, kind: int, key_size: int, value_size: int, max_entries: int,
                   flags: int) -> int:
        attr = ctypes.create_string_buffer(ATTR_SIZE)
        struct.pack_into("<5I", attr, 0, kind, key_size, value_size, max_entries, flags)
        fd = self._bpf(BPF_MAP_CREATE, attr)
        if fd < 0:
            raise BpfError("BPF_MAP_CREATE", -fd)
        return fd

    def map_update(self, fd: int, key: bytes, value: bytes, flags: int = BPF_ANY) -> None:
        key_buf, value_buf = ctypes.create_string_buffer(key), ctypes.create_string_buffer(value)
        attr = ctypes.create_string_buffer(ATTR_SIZE)
        struct.pack_into("<IIQQQ", attr, 0, fd, 0, ctypes.addressof(key_buf),
                         ctypes.addressof(value_buf), flags)
        code = self._bpf(BPF_MAP_UPDATE_ELEM, attr)
        if code < 0:
            raise BpfError("BPF_MAP_UPDATE_ELEM", -code)

    def map_lookup(self, fd: int, key: bytes, value_size: int) -> bytes:
        key_buf, value_buf = ctypes.create_string_buffer(key), \
            ctypes.create_string_buffer(value_size)
        attr = ctypes.create_string_buffer(ATTR_SIZE)
        struct.pack_into("<IIQQ", attr, 0, fd, 0, ctypes.addressof(key_buf),
                         ctypes.addressof(value_buf))
        code = self._bpf(BPF_MAP_LOOKUP_ELEM, attr)
        if code < 0:
            raise BpfError("BPF_MAP_LOOKUP_ELEM", -code)
        return value_buf.raw[:value_size]

    def prog_load(self, kind: int, insns: bytes, license: str, log_level: int,
                  log_size: int) -> Loaded:
        """One BPF_PROG_LOAD with kern_version 0, as libscap loads Falco's programs."""
        code_buf = ctypes.create_string_buffer(insns, len(insns))
        license_buf = ctypes.create_string_buffer(license.encode() + b"\0")
        log_buf = ctypes.create_string_buffer(log_size) if log_size else None
        attr = ctypes.create_string_buffer(ATTR_SIZE)
        # prog_type, insn_cnt, insns, license, log_level, log_size, log_buf, kern_version
        struct.pack_into("<IIQQIIQI", attr, 0, kind, len(insns) // 8,
                         ctypes.addressof(code_buf), ctypes.addressof(license_buf),
                         log_level if log_buf is not None else 0,
                         log_size if log_buf is not None else 0,
                         ctypes.addressof(log_buf) if log_buf is not None else 0, 0)
        fd = self._bpf(BPF_PROG_LOAD, attr)
        log = log_buf.value.decode("utf-8", "replace") if log_buf is not None else ""
        return Loaded(fd, -fd if fd < 0 else 0, log)

    def raw_tracepoint_open(self, name: str, prog_fd: int) -> int:
        name_buf = ctypes.create_string_buffer(name.encode() + b"\0")
        attr = ctypes.create_string_buffer(ATTR_SIZE)
        struct.pack_into("<QI", attr, 0, ctypes.addressof(name_buf), prog_fd)
        fd = self._bpf(BPF_RAW_TRACEPOINT_OPEN, attr)
        if fd < 0:
            raise BpfError(f"BPF_RAW_TRACEPOINT_OPEN {name}", -fd)
        return fd

    def tracepoint_attach(self, event_id: int, prog_fd: int) -> int:
        """libscap's attach of a `tracepoint/` program: a perf tracepoint event (every
        process, CPU 0) with the program set on it; the event's fd keeps it attached."""
        fd = self.perf_event_open(perf_attr(PERF_TYPE_TRACEPOINT, event_id), -1, 0, -1, 0)
        try:
            fcntl.ioctl(fd, PERF_EVENT_IOC_SET_BPF, prog_fd)
        except OSError as exc:
            os.close(fd)
            raise BpfError(f"PERF_EVENT_IOC_SET_BPF (tracepoint {event_id})",
                           exc.errno or errno_names.EINVAL) from None
        return fd

    def perf_event_open(self, attr: bytes, pid: int, cpu: int, group_fd: int,
                        flags: int) -> int:
        buf = ctypes.create_string_buffer(attr, len(attr))
        fd = self._call("perf_event_open", buf, ctypes.c_int(pid), ctypes.c_int(cpu),
                        ctypes.c_int(group_fd), ctypes.c_ulong(flags))
        if fd < 0:
            raise BpfError("perf_event_open", -fd)
        return fd
