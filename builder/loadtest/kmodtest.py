"""The kernel module's load test, host side: its entry in the guest's job, and what the
guest's result line means (a LoadTest, and the story for its log).

A module passed when its own kernel loaded it, made /dev/falco<cpu> for every CPU,
answered the API and schema versions its source declares, and unloaded. Its events are
the records a child's system calls made while sys_enter and sys_exit were attached
(drivers from 5.0.1+driver on; older ones are loaded and asked, not captured with).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from builder.core.drivertypes import KMOD
from builder.core.records import LoadTest
from builder.loadtest.vm import Boot, log_head

MAX_REASON = 2000
# What the guest may be sent: names are C identifiers, numbers fit an ioctl request.
_INTERFACE_KEYS = {"ioctls", "kmod_progs", "syscall_table_size", "api", "schema", "capture"}


def job_entry(key: str, path: str | Path, interface: Mapping[str, Any]) -> dict[str, Any]:
    # path: as the guest sees it (an arm64 guest mounts the host elsewhere)
    """The guest's instructions for one module: where it is and how to talk to it."""
    return {"key": key, "path": str(path), "driver_type": KMOD.name,
            "interface": usable_interface(interface)}


def usable_interface(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The report's interface, kept only where it has the shape the build wrote (a report
    is input: nothing else reaches an ioctl); {} when it is not usable at all."""
    ioctls = raw.get("ioctls")
    if not isinstance(ioctls, dict) or not all(
            isinstance(k, str) and k.isidentifier() and isinstance(v, int)
            and not isinstance(v, bool) and 0 <= v < 1 << 16 for k, v in ioctls.items()):
        return {}
    progs = raw.get("kmod_progs", [])
    size = raw.get("syscall_table_size", 512)
    if not isinstance(progs, list) or not all(isinstance(p, str) and p.isidentifier()
                                              for p in progs):
        progs = []
    if not isinstance(size, int) or isinstance(size, bool) or not 0 < size <= 4096:
        size = 512
    return {"ioctls": ioctls, "kmod_progs": progs, "syscall_table_size": size,
            **{k: raw[k] for k in ("api", "schema", "capture")
               if isinstance(raw.get(k), str) and len(raw[k]) < 40}}


def module_loadtest(raw: dict[str, Any] | None, release: str, boot: Boot | None, date: str,
                    why_not: str = "") -> LoadTest:
    """The LoadTest of one module from the guest's result line (None: it never got one)."""
    if raw is None:
        reason = why_not or (boot.reason if boot is not None and boot.reason else
                             "the VM finished without a result for this module")
        return LoadTest("not_tested", release, date=date, reason=_one_line(reason))
    kernel = str(raw.get("kernel") or release)
    api, schema = str(raw.get("api_version", "")), str(raw.get("schema_version", ""))
    if raw.get("passed"):
        return LoadTest("passed", kernel, events=_count(raw.get("events")), date=date,
                        api_version=api, schema_version=schema)
    return LoadTest("rejected", kernel, date=date,
                    reason=_one_line(str(raw.get("reason") or "refused")),
                    api_version=api, schema_version=schema)


def module_log(raw: dict[str, Any] | None, test: LoadTest, boot: Boot | None) -> str:
    """The human-readable story of one module's load test."""
    lines = log_head(test, boot)
    if raw is not None:
        lines += [f"insmod: {raw.get('insmod_seconds', '?')} s, devices: "
                  f"{', '.join(raw.get('devices', [])) or 'none'}",
                  f"API version: {raw.get('api_version', 'not asked')}, schema version: "
                  f"{raw.get('schema_version', 'not asked')}",
                  f"events of the child: {raw.get('events', 0)} (all records: "
                  f"{raw.get('events_all', 0)}, corrupt: {raw.get('corrupt', 0)})"
                  + (f"; {raw['capture']}" if raw.get("capture") else ""),
                  f"rmmod: {raw.get('rmmod_seconds', '?')} s"]
        if raw.get("kmsg"):
            lines += ["", "--- kernel log ---", *map(str, raw["kmsg"])]
    return "\n".join(lines) + "\n"


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _one_line(text: str, limit: int = MAX_REASON) -> str:
    cleaned = "".join(c if c.isprintable() else " " for c in text)
    return " ".join(cleaned.split())[:limit]
