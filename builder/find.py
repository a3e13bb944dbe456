"""`find`: which probe a node's loader requests, and whether the catalog has it.

Pure: host facts + Falco/driver version + catalog in, a FindResult out. The
command module reads the node (os-release, uname) and prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from .attest import repository_of, verify_commands
from .catalog import Catalog
from .config import Config, driver_version_for
from .naming import (
    MIN_KERNEL,
    NoRequest,
    checked,
    client_for,
    falcoctl_request_path,
    names_for_driver,
    probe_name,
    request_path,
)
from .records import ARCHES, HostFacts, ProbeName
from .versions import KNOWN_RELEASES, FalcoVersion, check_supported

# What `status` can say; exit code 0 only for "available".
AVAILABLE = "available"
NOT_BUILT = "not_built"
FAILED = "failed"
TOO_OLD = "kernel_too_old"
NOT_REQUESTED = "not_requested"
UNSUPPORTED_ARCH = "unsupported_arch"


@dataclass(frozen=True, slots=True)
class FindResult:
    falco_version: str
    driver_version: str
    client: str
    status: str
    name: ProbeName | None = None
    request_path: str = ""
    falcoctl_request_path: str = ""
    reason: str = ""
    url: str = ""
    sha256: str = ""
    size: int = 0
    log: str = ""
    attestation: str = ""   # the provenance bundle of the probe
    job: str = ""           # the CI job that built it

    @property
    def available(self) -> bool:
        return self.status == AVAILABLE

    def as_dict(self) -> dict[str, Any]:
        name = self.name
        out: dict[str, Any] = {
            "falco_version": self.falco_version, "driver_version": self.driver_version,
            "client": self.client,
            "target": name.target if name else None,
            "kernel_release": name.kernel_release if name else None,
            "kernel_version": name.kernel_version if name else None,
            "arch": name.arch if name else None,
            "file": name.file if name else None,
            "request_path": self.request_path or None,
            "falcoctl_request_path": self.falcoctl_request_path or None,
            "available": self.available, "status": self.status,
        }
        if self.available:
            out.update(url=self.url, sha256=self.sha256, size=self.size)
            if self.attestation:
                out["attestation"] = self.attestation
                out["verify"] = verify_commands(out["file"],
                                                repository_of(self.job, self.attestation))
        else:
            out["reason"] = self.reason
            if self.log:
                out["log"] = self.log
        return out


def newest_falco(config: Config | None) -> FalcoVersion:
    """The default Falco version: the newest one probes.yaml (or the built-in table) knows."""
    known = [FalcoVersion.parse(f) for f in KNOWN_RELEASES]
    if config is not None:
        known += [f for d in config.driver_versions for f in d.falco_versions()]
    return max(known)


def resolve_versions(falco: str | None, driver: str | None,
                     config: Config | None) -> tuple[FalcoVersion, str]:
    """Falco version and driver version: either may be given; both means DRIVER_VERSION=D."""
    if falco is None and driver is not None and config is not None:
        served = config.falco_for_driver(driver)
        falco_version = max(served) if served else newest_falco(config)
    else:
        falco_version = FalcoVersion.parse(falco) if falco else newest_falco(config)
    check_supported(falco_version)
    return falco_version, driver or driver_version_for(falco_version, config)


def find(host: HostFacts, falco: FalcoVersion, driver_version: str, catalog: Catalog,
         config: Config | None, source: str = "input") -> FindResult:
    client = client_for(falco)
    result = partial(FindResult, str(falco), driver_version, client)
    try:
        name = probe_name(host, falco)
    except NoRequest as exc:
        return result(NOT_REQUESTED, exc.name, reason=exc.reason)
    found = partial(result, name=name, request_path=request_path(driver_version, name, falco),
                    falcoctl_request_path=falcoctl_request_path(driver_version, name))
    if not name.kernel_release:
        return found(NOT_REQUESTED, reason=f"{client} cannot parse kernel release "
                                           f"{host.uname_r!r} and requests {name.file}, "
                                           "which names no kernel")
    if name.arch not in ARCHES:
        return found(UNSUPPORTED_ARCH, reason=f"probes are built for {' and '.join(ARCHES)} "
                                              f"only, not {name.arch}")
    checked(name, source)
    record = catalog.lookup(driver_version, name.arch, name.file)
    if record is not None:
        return found(AVAILABLE, url=record.url, sha256=record.sha256, size=record.size,
                     attestation=record.attestation, job=record.job)
    status, reason, log = _why_missing(host, falco, driver_version, name, catalog, config)
    return found(status, reason=reason, log=log)


def _why_missing(host: HostFacts, falco: FalcoVersion, driver_version: str, name: ProbeName,
                 catalog: Catalog, config: Config | None) -> tuple[str, str, str]:
    """(status, reason, log link) for a probe the catalog does not have."""
    minimum = MIN_KERNEL.get(name.arch)
    numbers = _release_numbers(host.uname_r)
    if minimum is not None and numbers is not None and numbers < minimum:
        need = ".".join(map(str, minimum[:2]))
        return (TOO_OLD, f"kernel {host.uname_r} is too old: legacy eBPF probes need kernel "
                         f"{need} or newer on {name.arch}; use the kernel module", "")
    served = config.falco_for_driver(driver_version) if config else ()
    canonical, _ = names_for_driver(host, served or [falco])
    for file in sorted({name.file, canonical.file}):
        failure = catalog.failure_for(driver_version, name.arch, file)
        if failure is not None:
            return (FAILED, f"the build failed at {failure.step} ({failure.attempts}x): "
                            f"{failure.reason}", failure.log)
    return (NOT_BUILT, f"no probe for {name.file} in the catalog for driver {driver_version} "
                       f"({name.arch}): not built yet", "")


def _release_numbers(release: str) -> tuple[int, int, int] | None:
    parts = release.split("-")[0].split(".")
    try:
        numbers = [int("".join(ch for ch in p if ch.isdigit()) or "0") for p in parts[:3]]
    except ValueError:
        return None
    while len(numbers) < 3:
        numbers.append(0)
    return (numbers[0], numbers[1], numbers[2])
