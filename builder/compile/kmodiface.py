"""What a loader needs to talk to a kernel module's /dev/falco<cpu>, read from its source.

Read at build time from the very folder the module was compiled from, and recorded with
it in the build report, so the load test (which may run elsewhere) asks the module the
questions its own source defines, and no table of any driver version is copied here:

- the ioctl numbers: `PPM_IOCTL_<X>` is `_IO(PPM_IOCTL_MAGIC, N)` in ppm_events_public.h,
  which on every Linux arch is `(magic << 8) | N` (no size or direction bits);
- the order of the tracepoints `PPM_IOCTL_ENABLE_TP` takes (`KMOD_PROG_*`, ppm_tp.h);
- the size of the syscall table the syscall ioctls index (`SYSCALL_TABLE_SIZE`);
- the API and schema versions the module must answer (driver_config.h);
- how a capture is switched on, which changed over the versions: `ENABLE_CAPTURE` (up
  to 3.0.1+driver), `MANAGE_TP` (4.0.0+driver), `ENABLE_SYSCALL` + `ENABLE_TP` (from
  5.0.1+driver on; the only one the load test speaks).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from builder.compile.driversrc import CONFIG_FILE, declared_versions

PUBLIC_HEADER = "ppm_events_public.h"
TRACEPOINTS_HEADER = "ppm_tp.h"
DEFAULT_TABLE_SIZE = 512
ENABLE_TP = "enable_tp"
MANAGE_TP = "manage_tp"
ENABLE_CAPTURE = "enable_capture"
_MAGIC = re.compile(r"^#define\s+PPM_IOCTL_MAGIC\s+'(.)'", re.MULTILINE)
_IOCTL = re.compile(r"^#define\s+PPM_IOCTL_(\w+)\s+_IO\(\s*PPM_IOCTL_MAGIC\s*,\s*(\d+)\s*\)",
                    re.MULTILINE)
_CONTINUED = re.compile(r"\\\n\s*")
_TABLE_SIZE = re.compile(r"^#define\s+SYSCALL_TABLE_SIZE\s+(\d+)", re.MULTILINE)
_KMOD_PROG = re.compile(r"X\((KMOD_PROG_\w+),")


def device_interface(driver_dir: Path) -> dict[str, Any]:
    """The module's ioctls and capture protocol from its source folder ({} if unreadable)."""
    try:
        public = _CONTINUED.sub(" ", (driver_dir / PUBLIC_HEADER).read_text(errors="replace"))
    except OSError:
        return {}
    magic = _MAGIC.search(public)
    if magic is None:
        return {}
    ioctls = {name: (ord(magic.group(1)) << 8) | int(number)
              for name, number in _IOCTL.findall(public)}
    size = _TABLE_SIZE.search(public)
    api, schema = declared_versions(_read(driver_dir / CONFIG_FILE))
    return {"ioctls": ioctls, "kmod_progs": _KMOD_PROG.findall(_read(driver_dir /
                                                                      TRACEPOINTS_HEADER)),
            "syscall_table_size": int(size.group(1)) if size else DEFAULT_TABLE_SIZE,
            "api": api, "schema": schema, "capture": capture_protocol(ioctls)}


def capture_protocol(ioctls: dict[str, int]) -> str:
    """How this version's capture is switched on ("" when none is known)."""
    if "ENABLE_CAPTURE" in ioctls:
        return ENABLE_CAPTURE
    if "ENABLE_TP" in ioctls and "ENABLE_SYSCALL" in ioctls:
        return ENABLE_TP
    return MANAGE_TP if "MANAGE_TP" in ioctls else ""


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""
