"""Hosts whose probe names exercise the store layout, and every request path the
loader (shell and falcoctl spellings) sends for a probe."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from fakeprobe import fake_probe_bytes

from builder.core.naming import (
    OVERRIDE_RELEASES,
    NoRequest,
    falcoctl_request_path,
    host_from_inputs,
    names_for_driver,
    probe_name,
    request_path,
)
from builder.core.records import HostFacts, ProbeRecord
from builder.core.versions import BUILTIN_RELEASES, FalcoVersion

UBUNTU = 'NAME="Ubuntu"\nID=ubuntu\nVERSION_ID="20.04"\n'
# Hosts whose names exercise the layout: `~` and `+` in names, aliases across naming
# eras, both arches (os-release, uname -r, uname -v, uname -m).
HOSTS: dict[str, tuple[str, str, str, str]] = {
    "ubuntu-hwe": (UBUNTU, "5.15.0-1034-aws",
                   "#38~20.04.1-Ubuntu SMP Wed Mar 29 19:34:42 UTC 2023", "x86_64"),
    "ubuntu-arm": (UBUNTU, "5.15.0-1035-aws",
                   "#39~20.04.1-Ubuntu SMP Wed Mar 29 19:34:42 UTC 2023", "aarch64"),
    "cos": ("ID=cos\nVERSION_ID=101\nBUILD_ID=17162.40.34\n", "5.15.107+",
            "#1 SMP Sat Apr 29 10:06:20 UTC 2023", "x86_64"),
    "debian-6.12": ('ID=debian\nVERSION_ID="12"\n', "6.12.48+deb12-amd64",
                    "#1 SMP PREEMPT_DYNAMIC Debian 6.12.48-1~bpo12+1 (2025-09-22)", "x86_64"),
    "debian-arm": ('ID=debian\nVERSION_ID="12"\n', "6.1.0-13-arm64",
                   "#1 SMP Debian 6.1.55-1 (2023-09-29)", "aarch64"),
    "amzn2": ('ID="amzn"\nVERSION_ID="2"\n', "5.10.178-162.673.amzn2.x86_64",
              "#1 SMP Mon May 1 21:51:57 UTC 2023", "x86_64"),
}
DRIVER_VERSIONS = (
    "2aa88dcf6243982697811df4c1b484bcbe9488a2",   # Falco 0.26: no arch folder
    "39ae7d40496793cf3d3e7890c9bbdc202263836b",   # Falco 0.32.0
    "2.0.0+driver",                               # 0.32.1 (no arch) and 0.32.2 (arch)
    "4.0.0+driver",
    "5.0.1+driver",                               # 0.35.0 and 0.35.1 name differently
    "6.0.1+driver",
    "0.1.1dev+git20220316.e5c53d64",              # no Falco release: override aliases
)


def every_request(host: HostFacts, driver_version: str,
                  falco_versions: Sequence[FalcoVersion]) -> dict[str, set[str]]:
    """file name -> every request path (both spellings) the given releases send for it."""
    out: dict[str, set[str]] = {}
    for falco in falco_versions:
        try:
            name = probe_name(host, falco)
        except NoRequest:
            continue
        paths = out.setdefault(name.file, set())
        paths.add(request_path(driver_version, name, falco))
        paths.add(falcoctl_request_path(driver_version, name))
    return out


def host(key: str) -> HostFacts:
    """The facts of one of HOSTS."""
    return host_from_inputs(*HOSTS[key])


def probe_for(host_key: str, driver_version: str, directory: Path) -> tuple[ProbeRecord, Path]:
    """A fake probe named as the builder names it (names_for_driver), and its file."""
    facts = host(host_key)
    name, aliases = names_for_driver(facts, BUILTIN_RELEASES.falco_for(driver_version))
    data = fake_probe_bytes(f"{host_key} {driver_version}", kernel_release=facts.uname_r)
    path = directory / f"{host_key}-{hashlib.sha256(driver_version.encode()).hexdigest()[:8]}.o"
    path.write_bytes(data)
    record = ProbeRecord(driver_version, name.arch, name.target, name.kernel_release,
                         name.kernel_version, hashlib.sha256(data).hexdigest(), len(data),
                         url="", aliases=aliases)
    return record, path


def served_requests(probe: ProbeRecord, facts: HostFacts) -> dict[str, set[str]]:
    """Every request path naming computes for this probe (shell and falcoctl spellings)."""
    falco = BUILTIN_RELEASES.falco_for(probe.driver_version) or OVERRIDE_RELEASES
    return {f: p for f, p in every_request(facts, probe.driver_version, falco).items()
            if f in probe.all_files()}
