"""Load test costs: what a boot costs around the probe, and why programs load with log_level 4.

    python -m bench.bench_loadtest [--repeat 2] [--probe FILE]

A) one Debian kernel, one probe, its image already cached: `falco-probes loadtest
   --probe` against a bare boot of the same kernel and share running `true` (QEMU,
   firmware, kernel, /init, no Python). The difference is Python's start over the
   share, the loads and the capture.
B) the probe's programs loaded through bpf() in *this* machine's kernel, each with
   log_level 4 (statistics only) and with log_level 1 (the verbose log): the ratio
   behind loading with 4 first and 1 only for a rejected program. Skipped where this
   kernel does not let us call bpf().
Without --probe, the probe is compiled first (Debian's falcosecurity-scap-dkms against
the newest Debian 6.1 amd64 headers; needs apt and clang).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from builder.compile.kbuild import compile_probe
from builder.core import limits
from builder.loadtest.bpf import (
    BPF_LOG_LEVEL_STATS,
    BPF_LOG_LEVEL_VERBOSE,
    BPF_PROG_TYPE_RAW_TRACEPOINT,
    STATS_LOG_SIZE,
    VERBOSE_LOG_SIZE,
    Bpf,
    BpfError,
)
from builder.loadtest.probeelf import read_probe
from builder.loadtest.stage import LoadTester, LoadTestOptions
from builder.loadtest.vm import VmSettings

from .bench_build import DKMS, pick_kernel


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "falco-probes"


def compiled_probe(work: Path) -> Path:
    from builder.compile.driversrc import prepare_source
    from builder.compile.sysroot import prepare_sysroot
    from builder.shared.apt import AptArchive
    from builder.shared.fetch import Cache

    cache = cache_dir()
    apt = AptArchive(cache / "apt")
    apt.update()
    kernel = pick_kernel(apt)
    downloads = Cache(cache / "downloads")
    packages = [downloads.fetch(h.url, limit=limits.HEADER_PACKAGE, sha256=h.sha256,
                                size=h.size) for h in kernel.headers]
    build_dir = prepare_sysroot(packages, work / "sysroot").build_dir(kernel.host.uname_r)
    source = prepare_source(DKMS, cache / "driversrc", apt=apt)
    result = compile_probe(build_dir, source, work / "out", timeout=600,
                           headers=kernel.headers)
    if not result.ok or result.probe is None:
        raise SystemExit(f"the probe did not compile: {result.reason}")
    return result.probe


def boot_costs(probe: Path, repeat: int) -> dict[str, Any]:
    release = read_probe(probe).kernel_release
    tester = LoadTester(LoadTestOptions(cache=cache_dir(), vm=VmSettings()))
    tester.check_tools()
    image = tester.image(release, "")
    bare, full, loads = [], [], []
    for _ in range(repeat):
        bare.append(_bare_boot(tester, image))
        started = time.perf_counter()
        run = subprocess.run([sys.executable, "-m", "builder", "loadtest", "--probe",
                              str(probe), "--json"], check=True, capture_output=True, text=True)
        full.append(time.perf_counter() - started)
        loads.append(float(json.loads(run.stdout)["result"]["seconds"]))
    return {"kernel": release, "share": image.share,
            "bare_boot_s": round(statistics.median(bare), 1),
            "loadtest_probe_s": round(statistics.median(full), 1),
            "probe_load_s": round(statistics.median(loads), 1),
            "ratio_loadtest_to_bare_boot": round(statistics.median(full) /
                                                 statistics.median(bare), 2)}


def _bare_boot(tester: LoadTester, image: Any) -> float:
    work = Path(tempfile.mkdtemp(prefix="falco-probes-bench-"))
    try:
        boot = tester.run(image, ["/bin/true"], work)
        if not boot.finished:
            raise SystemExit(f"the bare boot failed: {boot.reason}")
        return boot.seconds
    finally:
        shutil.rmtree(work, ignore_errors=True)


def log_levels(probe: Path) -> dict[str, Any]:
    parsed = read_probe(probe)
    bpf = Bpf()
    fds: list[int] = []
    try:
        maps = []
        for spec in parsed.maps:
            maps.append(bpf.map_create(spec.type, spec.key_size, spec.value_size,
                                       spec.max_entries or os.cpu_count() or 1, spec.flags))
        fds += maps
    except (BpfError, OSError) as exc:
        return {"skipped": f"bpf() is not usable here: {exc}"}
    seconds = {BPF_LOG_LEVEL_STATS: 0.0, BPF_LOG_LEVEL_VERBOSE: 0.0}
    sizes = {BPF_LOG_LEVEL_STATS: STATS_LOG_SIZE, BPF_LOG_LEVEL_VERBOSE: VERBOSE_LOG_SIZE}
    try:
        for program in parsed.programs:
            insns = program.linked(maps)
            for level in (BPF_LOG_LEVEL_STATS, BPF_LOG_LEVEL_VERBOSE):
                started = time.perf_counter()
                loaded = bpf.prog_load(BPF_PROG_TYPE_RAW_TRACEPOINT, insns, parsed.license,
                                       level, sizes[level])
                seconds[level] += time.perf_counter() - started
                if loaded.ok:
                    os.close(loaded.fd)
    finally:
        for fd in fds:
            os.close(fd)
    stats, verbose = seconds[BPF_LOG_LEVEL_STATS], seconds[BPF_LOG_LEVEL_VERBOSE]
    return {"kernel": os.uname().release, "programs": len(parsed.programs),
            "log_level_4_s": round(stats, 2), "log_level_1_s": round(verbose, 2),
            "ratio_level_1_to_4": round(verbose / stats, 2) if stats else None}


def main(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_loadtest")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--probe", type=Path, default=None)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="falco-probes-bench-") as tmp:
        probe = args.probe or compiled_probe(Path(tmp))
        figures = {"boot": boot_costs(probe, args.repeat), "log_levels": log_levels(probe),
                   "load_average": os.getloadavg()[0]}
    print(json.dumps(figures, indent=2), file=sys.stderr)
    return figures


if __name__ == "__main__":
    main(sys.argv[1:])
