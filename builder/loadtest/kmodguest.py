"""Inside the load-test VM: load one Falco kernel module, talk to it, capture, unload.

Called by guest.py for each module of the job (driver_type kmod), in the module's own
kernel, as root, on the host's Python (the standard library only). What happens is
what libscap's kmod engine does with /dev/falco<cpu> (userspace/libscap/engine/kmod):

1. `finit_module` (the kernel refuses a module built for another kernel: modversions
   compare every imported symbol's CRC, so a twin kernel's module is refused too);
2. /dev/falco0 .. /dev/falco<N-1> appear, one per online CPU; each is opened (which
   makes us a consumer) and the API and schema versions are asked by ioctl;
3. a capture, for the drivers that switch one on with `ENABLE_SYSCALL` and `ENABLE_TP`
   (5.0.1+driver on): per CPU the ring buffer is mapped twice (the driver maps it back
   to back, so a record never wraps) plus its `ppm_ring_buffer_info` page; every system
   call is enabled, sys_enter and sys_exit attached, a child opens and closes a file 20
   times, and the records (`struct ppm_evt_hdr`: ts, tid, len, type, nparams, packed)
   carrying the child's thread id are counted;
4. `delete_module`, and the devices are gone.

The ioctl numbers, the tracepoints' order and the capture protocol come from the job
(read from the module's own source at build time: compile/kmodiface.py). Older drivers
(up to 4.0.0+driver) are loaded, asked and unloaded; their capture is not attempted.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import glob
import mmap
import os
import platform
import struct
import time
from typing import Any

MODULE = "falco"
# finit_module and delete_module have no wrapper in Python: their syscall numbers.
SYSCALLS = {"x86_64": {"finit_module": 313, "delete_module": 176},
            "aarch64": {"finit_module": 273, "delete_module": 106}}
HEADER = struct.Struct("<QQIHI")        # struct ppm_evt_hdr, #pragma pack(1)
INFO = struct.Struct("<IIQ")            # struct ppm_ring_buffer_info: head, tail, n_evts
DEFAULT_BUFFER = 8 * 1024 * 1024        # g_buffer_bytes_dim's default
CHILD_OPENS = 20
KMSG_WORDS = ("falco", "taint", "signature", "module", "symbol")
ENABLE_TP = "enable_tp"


def version_text(value: int) -> str:
    """ppm_api_version.h: major in bits 44-62, minor 24-43, patch 0-23."""
    return f"{(value >> 44) & ((1 << 19) - 1)}.{(value >> 24) & ((1 << 20) - 1)}." \
           f"{value & ((1 << 24) - 1)}"


class Kmsg:
    """The kernel log records written since it was opened (what insmod and rmmod said)."""

    def __init__(self) -> None:
        self._fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
        os.lseek(self._fd, 0, os.SEEK_END)

    def read(self) -> list[str]:
        lines: list[str] = []
        while True:
            try:
                record = os.read(self._fd, 8192).decode("utf-8", "replace")
            except BlockingIOError:
                return lines
            except OSError as exc:
                if exc.errno == errno.EPIPE:  # overwritten records: go on with the next
                    continue
                return lines
            text = record.split(";", 1)[-1].strip()
            if any(word in text.lower() for word in KMSG_WORDS):
                lines.append(text)

    def close(self) -> None:
        os.close(self._fd)


def _syscall(name: str, *args: object) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    if libc.syscall(SYSCALLS[platform.machine()][name], *args) < 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{name}: {errno.errorcode.get(code, code)} {os.strerror(code)}")


def _ioctl_u64(fd: int, request: int) -> int:
    buffer = bytearray(8)
    fcntl.ioctl(fd, request, buffer, True)
    return int(struct.unpack("<Q", buffer)[0])


def load_module(path: str, interface: dict[str, Any]) -> dict[str, Any]:
    """Load, ask, capture and unload the module at `path`; one result line."""
    result: dict[str, Any] = {"path": path, "kernel": platform.release(), "events": 0}
    kmsg = Kmsg()
    started = time.monotonic()
    try:
        _insmod(path, result)
        if "error" not in result:
            _talk(interface, result)
            _rmmod(result)
    finally:
        result["kmsg"] = kmsg.read()[-20:]
        kmsg.close()
    result["seconds"] = round(time.monotonic() - started, 2)
    result["passed"] = passed(result, interface)
    result["reason"] = "" if result["passed"] else reason(result, interface)
    return result


def _insmod(path: str, result: dict[str, Any]) -> None:
    started = time.monotonic()
    fd = os.open(path, os.O_RDONLY)
    try:
        _syscall("finit_module", fd, b"", 0)
    except OSError as exc:
        result["error"] = f"insmod refused: {exc.strerror}"
    finally:
        os.close(fd)
        result["insmod_seconds"] = round(time.monotonic() - started, 2)


def _talk(interface: dict[str, Any], result: dict[str, Any]) -> None:
    """Open every CPU's device, ask the versions, capture when this driver can."""
    cpus = os.sysconf("SC_NPROCESSORS_ONLN")
    result["devices"] = sorted(os.path.basename(d) for d in glob.glob(f"/dev/{MODULE}*"))
    ioctls = interface.get("ioctls", {})
    devices: list[int] = []
    try:
        for cpu in range(cpus):
            devices.append(os.open(f"/dev/{MODULE}{cpu}", os.O_RDWR | os.O_SYNC))
        if "GET_API_VERSION" in ioctls:  # from Falco 0.31.1's driver on
            result["api_version"] = version_text(_ioctl_u64(devices[0], ioctls["GET_API_VERSION"]))
            result["schema_version"] = version_text(
                _ioctl_u64(devices[0], ioctls["GET_SCHEMA_VERSION"]))
        if interface.get("capture") == ENABLE_TP:
            try:
                _capture(devices, interface, result)
            except OSError as exc:
                result["capture"] = f"capture failed: {exc}"
        else:
            result["capture"] = (f"capture not attempted: this driver switches it on with "
                                 f"{interface.get('capture') or 'an unknown protocol'}")
    except OSError as exc:
        result["device_error"] = f"/dev/{MODULE}: {exc}"
    finally:
        for fd in devices:
            os.close(fd)


def _buffer_size() -> int:
    try:
        with open(f"/sys/module/{MODULE}/parameters/g_buffer_bytes_dim", encoding="ascii") as f:
            return int(f.read())
    except (OSError, ValueError):
        return DEFAULT_BUFFER


def _capture(devices: list[int], interface: dict[str, Any], result: dict[str, Any]) -> None:
    ioctls, progs = interface["ioctls"], interface["kmod_progs"]
    size = _buffer_size()
    rings = [(mmap.mmap(fd, size * 2, mmap.MAP_SHARED, mmap.PROT_READ),
              mmap.mmap(fd, mmap.PAGESIZE, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE))
             for fd in devices]
    try:
        for number in range(int(interface.get("syscall_table_size", 512))):
            with contextlib.suppress(OSError):  # numbers this arch has no system call for
                fcntl.ioctl(devices[0], ioctls["ENABLE_SYSCALL"], number)
        tracepoints = [progs.index("KMOD_PROG_SYS_ENTER"), progs.index("KMOD_PROG_SYS_EXIT")]
        for tracepoint in tracepoints:
            fcntl.ioctl(devices[0], ioctls["ENABLE_TP"], tracepoint)
        for _, info in rings:  # what our own ioctls made is not the child's
            head = INFO.unpack_from(info)[0]
            struct.pack_into("<I", info, 4, head)
        child = _child()
        time.sleep(0.2)
        for tracepoint in tracepoints:
            fcntl.ioctl(devices[0], ioctls["DISABLE_TP"], tracepoint)
        counted = [_count(data, info, size, child) for data, info in rings]
    finally:
        for data, info in rings:
            data.close()
            info.close()
    result["events_all"] = sum(c[0] for c in counted)
    result["events"] = sum(c[1] for c in counted)
    result["corrupt"] = sum(c[2] for c in counted)


def _child() -> int:
    pid = os.fork()
    if pid == 0:
        for _ in range(CHILD_OPENS):
            os.close(os.open("/etc/hostname", os.O_RDONLY))
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


def _count(data: mmap.mmap, info: mmap.mmap, size: int, tid: int) -> tuple[int, int, int]:
    """(records, records of `tid`, corrupt records) between tail and head; consumed."""
    head, tail, _ = INFO.unpack_from(info)
    end = tail + (head - tail if head >= tail else size - tail + head)
    offset, records, mine, corrupt = tail, 0, 0, 0
    while offset < end:
        _, thread, length, _, _ = HEADER.unpack_from(data, offset) \
            if offset + HEADER.size <= end else (0, 0, 0, 0, 0)
        if length < HEADER.size or offset + length > end:  # cut short, or no header at all
            corrupt += 1
            break
        records += 1
        mine += thread == tid
        offset += length
    struct.pack_into("<I", info, 4, head)
    return records, mine, corrupt


def _rmmod(result: dict[str, Any]) -> None:
    started = time.monotonic()
    for attempt in range(50):  # the devices' last release may still be running
        try:
            _syscall("delete_module", MODULE.encode(), os.O_NONBLOCK)
            break
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EBUSY) or attempt == 49:
                result["rmmod_error"] = f"rmmod refused: {exc.strerror}"
                break
            time.sleep(0.1)
    result["rmmod_seconds"] = round(time.monotonic() - started, 2)
    result["left_behind"] = sorted(glob.glob(f"/dev/{MODULE}*") +
                                   glob.glob(f"/sys/module/{MODULE}"))


def passed(result: dict[str, Any], interface: dict[str, Any]) -> bool:
    return not reason(result, interface)


def reason(result: dict[str, Any], interface: dict[str, Any]) -> str:
    """Why the module did not pass ("" when it did): the first thing that went wrong."""
    if "error" in result:
        said = "; ".join(result.get("kmsg", [])[-3:])
        return str(result["error"]) + (f" ({said})" if said else "")
    if "device_error" in result:
        return str(result["device_error"])
    cpus = os.sysconf("SC_NPROCESSORS_ONLN")
    expected = [f"{MODULE}{cpu}" for cpu in range(cpus)]
    if [d for d in expected if d not in result.get("devices", [])]:
        return f"devices {', '.join(result.get('devices', [])) or 'none'} for {cpus} CPUs"
    wanted = (interface.get("api", ""), interface.get("schema", ""))
    got = (result.get("api_version", ""), result.get("schema_version", ""))
    if all(wanted) and "api_version" in result and got != wanted:
        return f"the module answers API {got[0]} and schema {got[1]}, its source says " \
               f"{wanted[0]} and {wanted[1]}"
    if "rmmod_error" in result:
        return str(result["rmmod_error"])
    if result.get("left_behind"):
        return f"still there after rmmod: {', '.join(result['left_behind'])}"
    return ""
