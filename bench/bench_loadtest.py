"""Load test costs: what a boot costs around the probe, why programs load with log_level 4,
and how many probes an hour this machine load-tests.

    python -m bench.bench_loadtest [--repeat 2] [--probe FILE]
    python -m bench.bench_loadtest --throughput --probe FILE [--probe FILE ...]
                                   [--vms N] [--boots M]
    python -m bench.bench_loadtest --arm64-costs

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

--throughput, for each probe (x86_64 or arm64: its kernel_version says which kernel boots):
M boots of its kernel with that one probe, first one VM at a time, then N VMs at once,
under TCG and, for a kernel of this machine's architecture, KVM where it starts a VM (else
it says why not). Per run: probes per hour, and where a boot's time goes: the kernel's
start (to /init and the shares mounted), loading the probe (of which the verifier: the
bpf() calls), and the rest of the guest (Python's start, the events capture), with QEMU's
CPU seconds per boot. Not part of `python -m bench`: it takes many minutes under TCG.

--arm64-costs: what an arm64 kernel costs a machine before its first boot, in an empty
cache folder: apt's arm64 indices, the guest's root (first time and cached) and Debian
12's newest 6.1 arm64 image (downloaded and cut down), each in wall and CPU seconds, with
what it leaves on disk.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
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
from builder.loadtest.kernelimage import KernelImage, debian_arch
from builder.loadtest.probeelf import read_probe
from builder.loadtest.stage import LoadTester, LoadTestOptions
from builder.loadtest.vm import Boot, VmSettings, host_arch

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


# --- throughput: probes an hour, one VM and several ---------------------------------------

_MARK = re.compile(r"falco-probes-vm: (init|host root mounted|guest exited with \d+) at "
                   r"([0-9.]+) s")


def throughput(probes: list[Path], vms: int, boots: int) -> list[dict[str, Any]]:
    rows = []
    for probe in probes:
        release = read_probe(probe).kernel_release
        arch = debian_arch(release)
        for accel in ("tcg", "kvm") if arch == host_arch() else ("tcg",):
            tester = LoadTester(LoadTestOptions(cache=cache_dir(), vm=VmSettings(accel=accel)))
            image = tester.image(release, "", arch)
            if accel == "kvm":
                why_not = _kvm_does_not_start(tester, image)
                if why_not:
                    rows.append({"kernel": release, "accel": "kvm", "unavailable": why_not})
                    continue
            for at_once in dict.fromkeys((1, vms)):
                rows.append(_run(tester, image, probe, accel, at_once, boots))
                print(json.dumps(rows[-1]), file=sys.stderr)
    return rows


def _kvm_does_not_start(tester: LoadTester, image: KernelImage) -> str:
    """Why a KVM boot of `image` did not finish here ("" when it did)."""
    work = Path(tempfile.mkdtemp(prefix="falco-probes-bench-"))
    try:
        boot = tester.run(image, ["/bin/true"] if image.arch == host_arch() else
                          ["/bin/busybox", "true"], work)
        return "" if boot.finished else f"KVM unavailable here: {boot.reason}"
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(tester: LoadTester, image: KernelImage, probe: Path, accel: str, at_once: int,
         boots: int) -> dict[str, Any]:
    """`boots` boots of `image` loading `probe`, `at_once` VMs at a time."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load = os.getloadavg()[0]
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=at_once) as pool:
        done = list(pool.map(lambda _: tester.boot(image, [("probe", probe, "")]),
                             range(boots)))
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    parts = [_parts(boot, results.get("probe")) for boot, results in done]
    median = {key: round(statistics.median(p[key] for p in parts), 1) for key in parts[0]}
    return {"kernel": image.release, "arch": image.arch, "accel": accel, "vms": at_once,
            "boots": boots, "passed": sum(1 for _, results in done
                                          if results.get("probe", {}).get("passed")),
            "not_passed": [_why_not(boot, results.get("probe")) for boot, results in done
                           if not results.get("probe", {}).get("passed")],
            "wall_s": round(wall, 1), "probes_per_hour": round(boots * 3600 / wall),
            **median, "qemu_cpu_s_per_boot": round((after.ru_utime + after.ru_stime -
                                                    before.ru_utime - before.ru_stime)
                                                   / boots, 1),
            "load_average": [round(load, 1), round(os.getloadavg()[0], 1)]}


def _parts(boot: Boot, raw: dict[str, Any] | None) -> dict[str, float]:
    """Where one boot's time went (seconds): see the module's docstring."""
    marks = {m[1].split(" with")[0]: float(m[2]) for m in _MARK.finditer(boot.console)}
    load = float(raw.get("seconds", 0)) if raw else 0.0
    verifier = sum(float(p.get("seconds", 0)) for p in raw.get("programs", [])) if raw else 0.0
    guest = marks.get("guest exited", 0.0) - marks.get("host root mounted", 0.0)
    return {"boot_s": round(boot.seconds, 1),
            "kernel_to_mounts_s": marks.get("host root mounted", 0.0),
            "probe_load_s": load, "of_which_verifier_s": verifier,
            "python_and_events_s": max(0.0, guest - load),
            "qemu_outside_guest_s": max(0.0, boot.seconds - marks.get("guest exited", 0.0))}


def _why_not(boot: Boot, raw: dict[str, Any] | None) -> str:
    """Why a boot of the benchmark did not pass: the VM's reason, else the probe's, with
    the console's last lines (the boot's work folder is gone by then)."""
    reason = boot.reason or (raw or {}).get("reason") or "no result from the guest"
    return f"{reason} | console: {' / '.join(boot.console.splitlines()[-6:])}"


# --- arm64-costs: a cold cache's first arm64 kernel -----------------------------------------

ARM64_KERNEL = ("6.1.0-57-arm64", "6.1.192-3")
BOOKWORM = ("bookworm", "bookworm-updates", "bookworm-security")


def arm64_costs() -> dict[str, Any]:
    from builder.loadtest.guestroot import guest_root
    from builder.shared.apt import AptArchive
    from builder.shared.fetch import Cache

    with tempfile.TemporaryDirectory(prefix="falco-probes-bench-") as tmp:
        cache = Path(tmp)
        apt = AptArchive(cache / "apt", arch="arm64", suites=BOOKWORM)
        downloads = Cache(cache / "downloads")
        tester = LoadTester(LoadTestOptions(cache=cache, suites=BOOKWORM))
        steps = {"apt_indices": _timed(apt.update),
                 "root_first": _timed(lambda: guest_root("aarch64", apt, downloads,
                                                         cache / "guestroot")),
                 "root_cached": _timed(lambda: guest_root("aarch64", apt, downloads,
                                                          cache / "guestroot")),
                 "image_first": _timed(lambda: tester.image(*ARM64_KERNEL, "aarch64"))}
        return {**steps, "mb_on_disk": {part: _megabytes(cache / part) for part in
                                        ("apt", "guestroot", "kernels", "downloads")},
                "load_average": os.getloadavg()}


def _timed(step: Any) -> dict[str, float]:
    """Wall and CPU seconds (this process and its children) of one call."""
    def cpu() -> float:
        mine, kids = (resource.getrusage(who) for who in
                      (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
        return mine.ru_utime + mine.ru_stime + kids.ru_utime + kids.ru_stime
    started, cpu_before = time.perf_counter(), cpu()
    step()
    return {"wall_s": round(time.perf_counter() - started, 1),
            "cpu_s": round(cpu() - cpu_before, 1)}


def _megabytes(folder: Path) -> float:
    return round(sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 1e6, 1)


def main(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_loadtest")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--probe", type=Path, action="append", default=[])
    parser.add_argument("--throughput", action="store_true",
                        help="probes per hour with one VM and --vms VMs (needs --probe)")
    parser.add_argument("--vms", type=int, default=2)
    parser.add_argument("--boots", type=int, default=2)
    parser.add_argument("--arm64-costs", action="store_true",
                        help="an arm64 kernel's first costs in an empty cache (see above)")
    args = parser.parse_args(argv)
    if args.arm64_costs:
        figures: dict[str, Any] = {"arm64_costs": arm64_costs()}
    elif args.throughput:
        if not args.probe:
            parser.error("--throughput needs --probe FILE (x86_64 or arm64)")
        figures = {"throughput": throughput(args.probe, args.vms, args.boots)}
    else:
        with tempfile.TemporaryDirectory(prefix="falco-probes-bench-") as tmp:
            probe = args.probe[0] if args.probe else compiled_probe(Path(tmp))
            figures = {"boot": boot_costs(probe, args.repeat), "log_levels": log_levels(probe),
                       "load_average": os.getloadavg()[0]}
    print(json.dumps(figures, indent=2), file=sys.stderr)
    return figures


if __name__ == "__main__":
    main(sys.argv[1:])
