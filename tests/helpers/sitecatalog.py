"""A realistic small catalog for the site tests: 3 driver versions, 5 targets, both arches.

Every probe is named by builder.core.naming exactly as the loaders of the Falco
releases its driver version serves name it (aliases included), so the site's
find-my-probe can be tested against real host inputs. Some kernels are left
unbuilt for some driver versions, some builds failed (with a category). Probe bytes
are deterministic (`probe_bytes`) so a test can lay out a directory store whose
files match the catalog digests.

Stores: 6.0.1+driver and 7.0.0+driver probes are in a directory store (the loader's
layout, STORE_URL); 5.0.1+driver probes are GitHub release assets (GITHUB_URL), which a
loader cannot fetch directly. 6.0.1+driver and 7.0.0+driver probes carry load tests
(passed, some rejected, some not tested) and the source compiled; 7.0.0+driver probes
also their CI job and build provenance attestation.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from builder.core.catalog import Catalog, CatalogFile, render
from builder.core.files import atomic_write
from builder.core.naming import host_from_inputs, names_for_driver
from builder.core.records import FailureRecord, HostFacts, LoadTest, ProbeRecord
from builder.core.versions import FalcoReleases, FalcoVersion
from builder.site.model import SiteModel, build_site

STORE_URL = "https://downloads.example.org/falco-probes"
REPOSITORY = "falcosecurity/falco-probes"
GITHUB_URL = f"https://github.com/{REPOSITORY}/releases/download"
LOG_URL = "https://ci.example.org/falco-probes/runs/{n}"
JOB_URL = f"https://github.com/{REPOSITORY}/actions/runs/{{n}}/job/{{m}}"
ATTESTATION_URL = f"{GITHUB_URL}/attestations-7/attestation-{{n:016x}}.sigstore.json"
COMMIT = "3c1d0f2a9b7e41d5c0ffee0123456789abcdef01"
SOURCES = {"6.0.1+driver": "libs archive 6.0.1+driver",
           "7.0.0+driver": "libs archive 7.0.0+driver"}
DEBIAN_SOURCE = "debian falcosecurity-scap-dkms 0.23.2-6 (libs 0.23.2, Debian patches)"
VERIFIER = "raw_tracepoint/filler/sys_open_x: R2 invalid mem access 'scalar'"

# Driver version -> the Falco releases it serves (7.0.0+driver comes from probes.yaml).
DRIVERS = {
    "5.0.1+driver": ("0.35.0", "0.35.1"),
    "6.0.1+driver": ("0.36.0", "0.36.1", "0.36.2"),
    "7.0.0+driver": ("0.37.0", "0.37.1"),
}
PROBES_YAML = """\
schema_version: 1
driver_versions:
  - version: 7.0.0+driver
    falco: [0.37.0, 0.37.1]
    source: {kind: libs-archive}
targets:
  - name: debian
    kernels: apt
"""


@dataclass(frozen=True)
class Host:
    os_release: str | None
    uname_r: str
    uname_v: str
    uname_m: str
    etc_version: str | None = None

    def facts(self) -> HostFacts:
        return host_from_inputs(self.os_release, self.uname_r, self.uname_v, self.uname_m,
                                self.etc_version)


DEBIAN = 'PRETTY_NAME="Debian GNU/Linux 11 (bullseye)"\nID=debian\nVERSION_ID="11"\n'
UBUNTU = 'NAME="Ubuntu"\nID=ubuntu\nID_LIKE=debian\nVERSION_ID="20.04"\n'
AMZN2 = 'NAME="Amazon Linux"\nID="amzn"\nVERSION_ID="2"\n'
BUILDROOT = "NAME=Buildroot\nID=buildroot\nVERSION_ID=2021.02.12\n"


def hosts() -> list[Host]:
    out = []
    for n, patch in enumerate((162, 178, 179, 191, 197, 205, 209)):
        deb = f"5.10.{patch}-{n % 3 + 1}"
        abi = 20 + n
        out.append(Host(DEBIAN, f"5.10.0-{abi}-amd64",
                        f"#1 SMP Debian {deb} (2023-0{n % 9 + 1}-01)", "x86_64"))
        # Falco 0.35.0 names cloud kernels like amd64 ones: distinct versions keep the
        # fixture free of the alias collision a real pair would have.
        out.append(Host(DEBIAN, f"5.10.0-{abi}-cloud-amd64",
                        f"#1 SMP Debian 5.10.{patch + 1}-9 (2023-0{n % 9 + 1}-01)", "x86_64"))
        out.append(Host(DEBIAN, f"5.10.0-{abi}-arm64",
                        f"#1 SMP Debian {deb} (2023-0{n % 9 + 1}-01)", "aarch64"))
    for n in range(12):
        out.append(Host(UBUNTU, f"5.4.0-{100 + n}-generic",
                        f"#{110 + n}-Ubuntu SMP Fri Jul 10 00:24:02 UTC 2020", "x86_64"))
        out.append(Host(UBUNTU, f"5.15.0-{60 + n}-generic",
                        f"#{66 + n}~20.04.1-Ubuntu SMP Mon Apr 24 01:58:15 UTC 2023", "x86_64"))
        out.append(Host(UBUNTU, f"5.4.0-{1080 + n}-aws",
                        f"#{88 + n}-Ubuntu SMP Mon Apr 24 01:58:15 UTC 2023", "x86_64"))
        out.append(Host(UBUNTU, f"5.15.0-{1030 + n}-aws",
                        f"#{33 + n}~20.04.1-Ubuntu SMP Mon Apr 24 01:58:15 UTC 2023", "aarch64"))
    for n in range(10):
        out.append(Host(AMZN2, f"4.14.{300 + n}-{230 + n}.533.amzn2.x86_64",
                        "#1 SMP Mon Jun 5 18:11:43 UTC 2023", "x86_64"))
        out.append(Host(AMZN2, f"5.10.{180 + n}-{170 + n}.711.amzn2.x86_64",
                        "#1 SMP Tue May 30 18:10:51 UTC 2023", "x86_64"))
        out.append(Host(AMZN2, f"5.10.{180 + n}-{170 + n}.711.amzn2.aarch64",
                        "#1 SMP Tue May 30 18:10:51 UTC 2023", "aarch64"))
    for version in ("1.24.0", "1.25.2", "1.26.0", "1.26.1", "1.28.0", "1.29.0"):
        out.append(Host(BUILDROOT, "5.10.57", "#1 SMP Thu Jun 16 21:01:29 UTC 2022", "x86_64",
                        f"v{version}-1655407986-14197\n"))
    return out


def probe_bytes(record: ProbeRecord) -> bytes:
    return f"falco-probes site test probe {record.driver_version} {record.arch} " \
           f"{record.file}\n".encode()


def _digest(driver: str, arch: str, target: str, release: str, version: str) -> str:
    fake = ProbeRecord(driver, arch, target, release, version, "0" * 64, 1, "https://x/")
    return hashlib.sha256(probe_bytes(fake)).hexdigest()


@dataclass(frozen=True)
class Fixture:
    probes: tuple[ProbeRecord, ...]
    failures: tuple[FailureRecord, ...]
    unbuilt: tuple[tuple[str, Host], ...]     # (driver version, host) with no record at all

    def targets(self) -> set[str]:
        return {r.target for r in self.probes}


def _loadtest(driver: str, counter: int) -> LoadTest | None:
    if driver == "5.0.1+driver":
        return None
    if counter % 7 == 0:
        return LoadTest("rejected", "6.1.0-13-amd64", 169, 170, 0, "2026-11-25T04:00:00Z",
                        VERIFIER)
    if counter % 5 == 0:
        return LoadTest("not_tested", reason="no kernel image for this release")
    return LoadTest("passed", "6.1.0-13-amd64", 170, 170, 1234, "2026-11-25T04:00:00Z")


def _placement(driver: str, arch: str, target: str, file: str, counter: int,
               ) -> dict[str, object]:
    """Where a probe is published and what the catalog says about its making."""
    if driver == "5.0.1+driver":
        tag = f"probes-5.0.1-{arch}-{counter // 40:03d}"
        return {"url": f"{GITHUB_URL}/{tag}/{file}", "release": tag}
    out: dict[str, object] = {
        "url": f"{STORE_URL}/{driver.replace('+', '%2B')}/{arch}/{file}",
        "source": DEBIAN_SOURCE if target == "debian" and driver == "6.0.1+driver"
        else SOURCES[driver],
        "loadtest": _loadtest(driver, counter)}
    if driver == "7.0.0+driver":
        out["job"] = JOB_URL.format(n=900 + counter % 3, m=counter)
        out["attestation"] = ATTESTATION_URL.format(n=counter)
    return out


def build_fixture() -> Fixture:
    """Every host x driver version: most built, every 11th failed, every 13th not built."""
    probes: list[ProbeRecord] = []
    failures: list[FailureRecord] = []
    unbuilt: list[tuple[str, Host]] = []
    counter = 0
    for driver, falcos in DRIVERS.items():
        for host in hosts():
            counter += 1
            name, aliases = names_for_driver(host.facts(), [FalcoVersion.parse(f)
                                                            for f in falcos])
            parts = (driver, name.arch, name.target, name.kernel_release, name.kernel_version)
            if counter % 13 == 0:
                unbuilt.append((driver, host))
            elif counter % 11 == 0:
                failures.append(FailureRecord(
                    *parts, step="compile",
                    reason=f"error: implicit declaration of function 'bpf_probe_read' "
                           f"({name.kernel_release})",
                    log=LOG_URL.format(n=counter), attempts=counter % 3 + 1,
                    last_attempt="2026-11-24T03:10:00Z", driver_ref=driver,
                    category="unsupported-kernel" if counter % 2 else "",
                    aliases=aliases))
            else:
                sha = _digest(*parts)
                probes.append(ProbeRecord(
                    *parts, sha256=sha, size=3_000_000 + counter,
                    built=f"2026-11-{10 + counter % 15:02d}T03:00:00Z",
                    log=LOG_URL.format(n=counter), commit=COMMIT, driver_ref=driver,
                    aliases=aliases, **_placement(driver, name.arch, name.target, name.file,
                                                  counter)))  # type: ignore[arg-type]
    return Fixture(tuple(probes), tuple(failures), tuple(unbuilt))


def write_catalog(root: Path, fixture: Fixture | None = None) -> Fixture:
    fixture = fixture or build_fixture()
    files: dict[tuple[str, str, str], tuple[list[ProbeRecord], list[FailureRecord]]] = \
        defaultdict(lambda: ([], []))
    for record in fixture.probes:
        files[record.key[:3]][0].append(record)
    for failure in fixture.failures:
        files[failure.key[:3]][1].append(failure)
    for key, (probes, failures) in files.items():
        cat_file = CatalogFile(*key, tuple(probes), tuple(failures))
        atomic_write(root / cat_file.relpath, render(cat_file))
    return fixture


def write_store(root: Path, fixture: Fixture) -> None:
    """A directory store holding every probe at <dv>/<arch>/<file> with matching bytes."""
    for record in fixture.probes:
        path = root / record.driver_version / record.arch / record.file
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(probe_bytes(record))


EVIL = '"><script>alert(1)</script><img src=x onerror=alert(2)>\'&'


def hostile_model() -> SiteModel:
    """Records no catalog would accept: markup and quotes in every text field."""
    probe = ProbeRecord(
        driver_version=f"6.0.1+driver{EVIL}", arch="x86_64", target=f"debian{EVIL}",
        kernel_release=f"5.10.0-1-amd64{EVIL}" + "x" * 300, kernel_version=f"1{EVIL}",
        sha256="a" * 64 + EVIL, size=1234, url=f"javascript:alert(3)//{EVIL}",
        release=f"tag{EVIL}", built=f"2026-11-25T00:00:00Z{EVIL}",
        log=f"https://ci.example.org/{EVIL}", commit=f"abc{EVIL}",
        driver_ref=f"ref{EVIL}", aliases=(f"falco_alias{EVIL}.o",))
    failure = FailureRecord(
        probe.driver_version, "x86_64", probe.target, f"6.1.0{EVIL}", f"2{EVIL}", "compile",
        f"error: {EVIL}\n" * 50, log=f"file:///tmp/{EVIL}", attempts=2,
        last_attempt="2026-11-25T00:00:00Z")
    cat_file = CatalogFile(probe.driver_version, "x86_64", probe.target, (probe,), (failure,))
    catalog = Catalog(Path("hostile"), {cat_file.key: cat_file})
    releases = FalcoReleases.from_lists([(probe.driver_version, ["0.36.2"])])
    return build_site(catalog, releases)
