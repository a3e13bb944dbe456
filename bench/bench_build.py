"""Build overhead: `falco-probes build` against bare kbuild on the same prepared tree.

    python -m bench.bench_build [--repeat 3]

A) one kernel, one driver version, headers already extracted: the whole CLI run
   (Python start-up, plan file, compile, ELF check, naming, report) against a bare
   `make -C <headers> M=<bpf>` of the same source. Target: overhead under 15%.
B) one kernel, three driver versions, headers downloaded but not extracted: the CLI
   against one header extraction plus three bare compiles.
The driver source is Debian's falcosecurity-scap-dkms (the one reachable here), copied
as three driver versions; needs the Debian archive (apt) and clang.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from builder.compile.driversrc import prepare_source
from builder.compile.kbuild import find_toolchain
from builder.compile.sysroot import prepare_sysroot
from builder.core import limits
from builder.core.config import DriverSource, DriverVersion
from builder.core.paths import apt_cache
from builder.core.records import Kernel
from builder.core.versions import BUILTIN_RELEASES
from builder.plan import Plan, plan_job, plan_to_dict
from builder.shared.apt import AptArchive
from builder.shared.fetch import Cache

# Named suites: the same on a Debian 12 and a Debian 13 machine.
DKMS = DriverVersion("0.1.1dev+git20220316.e5c53d64", "e5c53d64", (),
                     DriverSource("debian-package", package="falcosecurity-scap-dkms",
                                  suite="bookworm",
                                  version="0.1.1dev+git20220316.e5c53d64-5.1"))


def pick_kernel(apt: AptArchive) -> Kernel:
    kernels = [k for k in apt.kernels() if k.flavor == "amd64" and
               k.host.uname_r.startswith("6.1.")]
    return sorted(kernels, key=lambda k: k.package_version)[-1]


def driver_copies(work: Path, source_dir: Path, count: int) -> list[tuple[str, Path]]:
    out = []
    for i in range(count):
        version = f"0.0.{i + 1}+bench"
        dest = work / f"driver-{i}"
        shutil.copytree(source_dir, dest)
        for path in dest.rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)
        config = dest / "driver_config.h"
        config.write_text(config.read_text().replace(DKMS.version, version))
        out.append((version, dest))
    return out


def config_file(work: Path, drivers: list[tuple[str, Path]]) -> Path:
    lines = ["schema_version: 1", "driver_versions:"]
    lines += [f"  - {{version: {v}, source: {{kind: directory, path: {p}}}}}" for v, p in drivers]
    lines += ["targets:", "  - {name: debian, kernels: apt}", "build: {jobs: 1, timeout: 600}"]
    path = work / "probes.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def timed(command: list[str], cwd: Path | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def bare_make(build_dir: Path, driver_dir: Path, scratch: Path) -> float:
    work = Path(tempfile.mkdtemp(dir=scratch))
    shutil.copytree(driver_dir, work / "driver")
    tools = find_toolchain()
    seconds = timed(["make", "-C", str(build_dir), f"M={work / 'driver' / 'bpf'}",
                     f"CLANG={tools.clang}", f"LLC={tools.llc}"])
    shutil.rmtree(work)
    return seconds


def cli_build(work: Path, config: Path, kernel: Kernel, versions: tuple[str, ...],
              cache: Path, name: str) -> float:
    plan = work / f"plan-{name}.json"
    plan.write_text(json.dumps(plan_to_dict(Plan((plan_job(kernel, versions, BUILTIN_RELEASES),),
                                                 ()))))
    out = work / f"out-{name}"
    shutil.rmtree(out, ignore_errors=True)
    seconds = timed([sys.executable, "-m", "builder", "build", "--config", str(config),
                     "--plan", str(plan), "--out", str(out), "--cache", str(cache),
                     "--jobs", "1"])
    report = [json.loads(line) for line in (out / "report.jsonl").read_text().splitlines()]
    assert all(r["ok"] for r in report), [r.get("reason") for r in report]
    return seconds


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-build-"))
    cache = work / "cache"
    apt = AptArchive(apt_cache(), suites=("bookworm",))
    apt.update()
    kernel = pick_kernel(apt)
    packages = [Cache.default().fetch(h.url, limit=limits.HEADER_PACKAGE, sha256=h.sha256,
                                      size=h.size)
                for h in kernel.headers]
    source = prepare_source(DKMS, Path.home() / ".cache" / "falco-probes", apt=apt)
    drivers = driver_copies(work, source.driver_dir, 3)
    config = config_file(work, drivers)
    (cache / "downloads").mkdir(parents=True)
    shutil.copytree(Cache.default().root, cache / "downloads", dirs_exist_ok=True)
    # Warm: extract once (the CLI's sysroot cache) and compile once (page cache).
    cli_build(work, config, kernel, (drivers[0][0],), cache, "warm")
    sysroot = prepare_sysroot(packages, work / "bare-sysroot")
    build_dir = sysroot.build_dir(kernel.host.uname_r)
    bare_make(build_dir, drivers[0][1], work)

    one_cli, one_bare, three_cli, three_bare = [], [], [], []
    for _ in range(args.repeat):
        one_bare.append(bare_make(build_dir, drivers[0][1], work))
        one_cli.append(cli_build(work, config, kernel, (drivers[0][0],), cache, "one"))
        shutil.rmtree(cache / "sysroots")
        three_cli.append(cli_build(work, config, kernel, tuple(v for v, _ in drivers), cache,
                                   "three"))
        shutil.rmtree(work / "bare-sysroot")
        start = time.perf_counter()
        fresh = prepare_sysroot(packages, work / "bare-sysroot")
        extract = time.perf_counter() - start
        fresh_dir = fresh.build_dir(kernel.host.uname_r)
        three_bare.append(extract + sum(bare_make(fresh_dir, d, work) for _, d in drivers))
    med = statistics.median
    figures = {
        "kernel": kernel.host.uname_r, "repeat": args.repeat,
        "one_driver_cli_s": round(med(one_cli), 2),
        "one_driver_bare_make_s": round(med(one_bare), 2),
        "one_driver_overhead": round(med(one_cli) / med(one_bare) - 1, 3),
        "three_drivers_cli_s": round(med(three_cli), 2),
        "three_bare_plus_extract_s": round(med(three_bare), 2),
        "three_drivers_ratio": round(med(three_cli) / med(three_bare), 3),
    }
    shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    main()
