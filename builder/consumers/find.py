"""`find`: which probe (or kernel module) a node's loader requests, and whether the
catalog has it.

Pure: host facts + Falco/driver version + driver type + catalog in, a FindResult out.
The command module reads the node (os-release, uname) and prints. The driver type
defaults to what the Falco release loads: the kernel module from Falco 0.44, which has
no legacy eBPF probe; the eBPF probe before.
"""

from __future__ import annotations

import contextlib
import urllib.parse
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

from builder.core.catalog import Catalog
from builder.core.config import Config, driver_version_for, falco_releases
from builder.core.drivertypes import BY_NAME, DEFAULT_TYPE, EBPF, KMOD
from builder.core.naming import (
    FIRST_FALCOCTL,
    NoRequest,
    checked,
    client_for,
    falcoctl_request_path,
    min_kernel,
    names_for_driver,
    probe_name,
    request_path,
)
from builder.core.records import (
    ARCHES,
    TWINS_FOLDER,
    HostFacts,
    LoadTest,
    ProbeName,
    ProbeRecord,
    check_target,
    release_numbers,
)
from builder.core.versions import FalcoVersion, check_supported, default_driver_type
from builder.publish.attest import repository_of, verify_commands

# What `status` can say; exit code 0 only for "available".
AVAILABLE = "available"
NOT_BUILT = "not_built"
FAILED = "failed"
TOO_OLD = "kernel_too_old"
NOT_REQUESTED = "not_requested"
UNSUPPORTED_ARCH = "unsupported_arch"
# The file the loader requests exists, but only built for other kernels (twins): this
# node's Falco would refuse it (libscap compares the probe's kernel_version with uname -r).
OTHER_KERNEL = "other_kernel"


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
    note: str = ""          # available, but with a caveat the user must know
    loadtest: LoadTest | None = None   # the probe's load test, None when never load-tested
    attestation: str = ""   # the provenance bundle of the probe
    job: str = ""           # the CI job that built it
    built_for: str = ""     # `uname -r` of the kernel the bytes are for ("": not recorded)
    root: str = ""          # twin root the file is under ("": the loader's default path)
    # The loader settings that make this node's Falco fetch the file built for its
    # kernel (a twin's root first, then the store); empty when the defaults do.
    settings: dict[str, str] = field(default_factory=dict)
    driver_type: str = DEFAULT_TYPE   # ebpf (the .o) or kmod (the .ko)
    # How to point this node's loader at the store: one command per way Falco is run
    # (falcoctl, falco-driver-loader, the Helm chart), for the driver type asked.
    loader: dict[str, str] = field(default_factory=dict)

    @property
    def available(self) -> bool:
        return self.status == AVAILABLE

    def as_dict(self) -> dict[str, Any]:
        name = self.name
        out: dict[str, Any] = {
            "falco_version": self.falco_version, "driver_version": self.driver_version,
            "driver_type": self.driver_type, "client": self.client,
            "target": name.target if name else None,
            "kernel_release": name.kernel_release if name else None,
            "kernel_version": name.kernel_version if name else None,
            "arch": name.arch if name else None,
            "file": name.file if name else None,
            "request_path": self.request_path or None,
            "falcoctl_request_path": self.falcoctl_request_path or None,
            "available": self.available, "status": self.status,
        }
        if self.built_for:
            out["built_for"] = self.built_for
        if self.root:
            out["root"] = self.root
        if self.settings:
            out["settings"] = dict(self.settings)
        if self.available:
            out.update(url=self.url, sha256=self.sha256, size=self.size,
                       load_tested=self.loadtest is not None,
                       loadtest=asdict(self.loadtest) if self.loadtest else None)
            if self.loader:
                out["loader"] = dict(self.loader)
            if self.note:
                out["note"] = self.note
            if self.attestation:
                out["attestation"] = self.attestation
                out["verify"] = verify_commands(out["file"],
                                                repository_of(self.job, self.attestation))
        else:
            out["reason"] = self.reason
            if self.log:
                out["log"] = self.log
        return out


def loadtest_summary(test: LoadTest | None, driver_type: str = DEFAULT_TYPE) -> str:
    """One line for people: whether and how the probe (or module) was load-tested."""
    if test is None:
        return "not load-tested"
    when = f" on {test.date[:10]}" if test.date else ""
    if driver_type == KMOD.name:
        return _module_summary(test, when)
    programs = f"{test.accepted}/{test.total} programs accepted"
    if test.status == "passed":
        events = f", {test.events} events captured" if test.events else ""
        return f"passed in {test.kernel}{when} ({programs}{events})"
    if test.status == "rejected":
        return f"REJECTED by the {test.kernel} verifier{when} ({programs}): {test.reason}"
    return f"not tested{when}: {test.reason}"


def _module_summary(test: LoadTest, when: str) -> str:
    if test.status == "passed":
        api = f", API {test.api_version}" if test.api_version else ""
        events = f", {test.events} events captured" if test.events else ""
        return f"passed in {test.kernel}{when} (loaded and unloaded{api}{events})"
    if test.status == "rejected":
        return f"REFUSED by the {test.kernel} kernel{when}: {test.reason}"
    return f"not tested{when}: {test.reason}"


def newest_falco(config: Config | None) -> FalcoVersion:
    """The default Falco version: the newest one probes.yaml (or the built-in table) knows."""
    return falco_releases(config).newest()


def resolve_versions(falco: str | None, driver: str | None, config: Config | None,
                     driver_type: str | None = None) -> tuple[FalcoVersion, str, str]:
    """Falco version, driver version and driver type: either version may be given (both
    means DRIVER_VERSION=D); the type defaults to what that Falco release loads."""
    if falco is None and driver is not None:
        served = falco_releases(config).falco_for(driver)
        falco_version = served[-1] if served else newest_falco(config)
    else:
        falco_version = FalcoVersion.parse(falco) if falco else newest_falco(config)
    kind = driver_type or default_driver_type(falco_version)
    check_supported(falco_version, kind)
    return falco_version, driver or driver_version_for(falco_version, config), kind


def catalog_files_for(host: HostFacts, falco: FalcoVersion, driver_version: str,
                      config: Config | None,
                      driver_type: str = DEFAULT_TYPE) -> set[tuple[str, str, str]]:
    """The catalog files that can answer this node: the one of the target its loader names
    and the one of its canonical name's target (where the record, and the aliases that
    other Falco releases request, live). Nothing else needs reading. The type matters:
    a release may request a module where it requests no probe (Falco 0.44, old kernels)."""
    served = falco_releases(config).falco_for(driver_version)
    names = []
    with contextlib.suppress(NoRequest):
        names.append(probe_name(host, falco, driver_type))
    with contextlib.suppress(NoRequest):
        names.append(names_for_driver(host, served or [falco], driver_type)[0])
    return {(driver_version, n.arch, n.target) for n in names
            if n.arch in ARCHES and not check_target(n.target)}


def find(host: HostFacts, falco: FalcoVersion, driver_version: str, catalog: Catalog,
         config: Config | None, source: str = "input",
         driver_type: str = DEFAULT_TYPE) -> FindResult:
    client = client_for(falco)
    result = partial(FindResult, str(falco), driver_version, client, driver_type=driver_type)
    try:
        name = probe_name(host, falco, driver_type)
    except NoRequest as exc:
        return result(NOT_REQUESTED, exc.name, reason=exc.reason)
    found = partial(result, name=name, request_path=request_path(driver_version, name, falco),
                    falcoctl_request_path=falcoctl_request_path(driver_version, name))
    if not name.kernel_release:
        return found(NOT_REQUESTED, reason=f"{client} cannot parse kernel release "
                                           f"{host.uname_r!r} and requests {name.file}, "
                                           "which names no kernel")
    if name.arch not in ARCHES:
        return found(UNSUPPORTED_ARCH, reason=f"drivers are built for {' and '.join(ARCHES)} "
                                              f"only, not {name.arch}")
    checked(name, source)
    records = catalog.answering(driver_version, name.arch, name.file)
    record = _for_this_kernel(records, host.uname_r)
    if record is not None:
        settings = twin_settings(record, falco)
        return found(AVAILABLE, url=record.url, sha256=record.sha256, size=record.size,
                     loadtest=record.loadtest, attestation=record.attestation, job=record.job,
                     built_for=record.uname_r, root=record.root, settings=settings,
                     loader=loader_settings(record, falco, settings),
                     note=_twin_note(record, host, name, falco) or _other_kernels_probe(
                         host, falco, driver_version, record, config))
    status, reason, log = _why_missing(host, falco, driver_version, name, catalog, config)
    if records and status != TOO_OLD:
        kernels = ", ".join(sorted(r.uname_r for r in records))
        reason = (f"{name.file} is published only for {kernels}: the same name, other kernels' "
                  f"bytes, which Falco refuses on {host.uname_r} (a probe's kernel_version, a "
                  f"module's vermagic, must be this kernel's `uname -r`). {reason}")
        status = OTHER_KERNEL if status == NOT_BUILT else status
    return found(status, reason=reason, log=log)


def _for_this_kernel(records: list[ProbeRecord], uname_r: str) -> ProbeRecord | None:
    """The record built for this kernel among those answering one name (twins); a record
    that does not say its kernel (catalog schema 1) answers when no other one does."""
    mine = [r for r in records if r.uname_r == uname_r]
    unknown = [r for r in records if not r.uname_r and not r.root]
    candidates = mine or unknown
    return candidates[0] if candidates else None


def store_base(record: ProbeRecord) -> str:
    """The DRIVERS_REPO a record's URL is served from ("" when its URL is not in a loader's
    layout, as a GitHub release asset's is not)."""
    quoted = urllib.parse.quote(record.store_path, safe="/~")
    for suffix in (quoted, record.store_path):
        if record.url.endswith("/" + suffix):
            return record.url[: -len(suffix) - 1]
    return ""


def twin_settings(record: ProbeRecord, falco: FalcoVersion) -> dict[str, str]:
    """For a twin kernel's file: the loader settings that fetch it (its root first, then
    the store: both loaders try each repository in turn). Empty for the default path."""
    if not record.root:
        return {}
    base = store_base(record) or "<mirror>"
    repos = f"{base}/{TWINS_FOLDER}/{record.root},{base}"
    if falco >= FIRST_FALCOCTL:
        return {"FALCOCTL_DRIVER_REPOS": repos}
    return {"DRIVERS_REPO": repos}


def loader_settings(record: ProbeRecord, falco: FalcoVersion,
                    settings: dict[str, str]) -> dict[str, str]:
    """How this node's Falco is pointed at the store for a driver of the record's type:
    falcoctl (0.37+; `--type`), falco-driver-loader (0.26-0.36; `bpf` for the probe, no
    argument for the module) and the Helm chart's `driver.kind`."""
    kind = BY_NAME[record.driver_type]
    repos = next(iter(settings.values()), "") or store_base(record) or "<your mirror>"
    if falco >= FIRST_FALCOCTL:
        out = {"falcoctl": f"FALCOCTL_DRIVER_REPOS={repos} falcoctl driver install "
                           f"--type {kind.name}"}
    else:
        arg = f" {kind.shell_loader_arg}" if kind.shell_loader_arg else ""
        out = {"falco-driver-loader": f"DRIVERS_REPO={repos} falco-driver-loader{arg}"}
    out["helm"] = f"--set driver.kind={kind.helm_kind}"
    return out


def _twin_note(record: ProbeRecord, host: HostFacts, name: ProbeName,
               falco: FalcoVersion) -> str:
    """Say plainly which kernel the default path serves, when this node is not that one."""
    if not record.twins:
        return ""
    if not record.root:
        others = ", ".join(f"{t.uname_r} (under {TWINS_FOLDER}/{t.root}/)" for t in record.twins
                           if t.root)
        return (f"{name.file} is also requested by other kernels, which have files of their "
                f"own: {others}. The default path serves this node's kernel, {host.uname_r}."
                if others else "")
    owner = next((t.uname_r for t in record.twins if not t.root), "another kernel")
    setting = ", ".join(f"{k}={v}" for k, v in twin_settings(record, falco).items())
    mirror = "" if store_base(record) else (" (this store is not in a loader's layout: "
                                            "serve it with `falco-probes mirror` first)")
    return (f"the loader's default path for {name.file} serves {owner}, another kernel that "
            f"requests the same name; Falco refuses that file on {host.uname_r}. This node's "
            f"own file is under the twin root {record.root!r}: set {setting}{mirror}")


def _other_kernels_probe(host: HostFacts, falco: FalcoVersion, driver_version: str,
                         record: ProbeRecord, config: Config | None) -> str:
    """Say so when the file this loader requests is another kernel's probe.

    Falco 0.35.0 asks a Debian cloud-amd64 host for the plain -amd64 file: it
    gets the amd64 kernel's probe, built against other headers.
    """
    served = falco_releases(config).falco_for(driver_version)
    own, _ = names_for_driver(host, served or [falco], record.driver_type)
    if own.file in record.all_files():
        return ""
    return (f"Falco {falco}'s loader requests {record.file}, which is the probe built for "
            f"kernel {record.kernel_release} (#{record.kernel_version}), not for this node's "
            f"{host.uname_r}: it may not load. This node's own probe is {own.file}; newer "
            "loaders request it, or set DRIVER_KERNEL_RELEASE (Falco 0.36) / "
            "--kernelrelease (falcoctl)")


def _why_missing(host: HostFacts, falco: FalcoVersion, driver_version: str, name: ProbeName,
                 catalog: Catalog, config: Config | None) -> tuple[str, str, str]:
    """(status, reason, log link) for a probe the catalog does not have."""
    minimum = min_kernel(name.driver_type, falco, name.arch)
    numbers = release_numbers(host.uname_r)
    if numbers is not None and numbers < minimum:
        need = ".".join(map(str, minimum[:2]))
        instead = "; use the kernel module" if name.driver_type == EBPF.name else ""
        return (TOO_OLD, f"kernel {host.uname_r} is too old: {BY_NAME[name.driver_type].noun}s "
                         f"need kernel {need} or newer on {name.arch}{instead}", "")
    served = falco_releases(config).falco_for(driver_version)
    canonical, _ = names_for_driver(host, served or [falco], name.driver_type)
    for file in sorted({name.file, canonical.file}):
        failure = catalog.failure_for(driver_version, name.arch, file, host.uname_r)
        if failure is not None:
            return (FAILED, f"the build failed at {failure.step} ({failure.attempts}x): "
                            f"{failure.reason}", failure.log)
    return (NOT_BUILT, f"no {BY_NAME[name.driver_type].noun} for {name.file} in the catalog "
                       f"for driver {driver_version} ({name.arch}): not built yet", "")
