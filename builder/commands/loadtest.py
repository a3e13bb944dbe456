"""`falco-probes loadtest`: load every built probe in its own kernel, booted in QEMU."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from pathlib import Path

from builder.commands.common import add_apt_options, add_config_option, config_from
from builder.core.drivertypes import KMOD
from builder.core.errors import EXIT_NEGATIVE, EXIT_OK, InputError
from builder.core.paths import cache_root
from builder.core.records import LoadTest, check_kernel_release
from builder.loadtest.kernelimage import KernelUnavailable, debian_arch
from builder.loadtest.probeelf import read_probe
from builder.loadtest.stage import (
    LoadTester,
    LoadTestOptions,
    LoadTestSummary,
    Member,
    loadtest_of,
    probe_log,
    run_loadtest,
    utc_now,
)
from builder.loadtest.vm import ACCELS, MACHINES, VmSettings
from builder.ui import emit, emit_json, info, progress

DEFAULTS = VmSettings()
MEMORY_DEFAULTS = ", ".join(f"{m.memory_mb} for {m.arch}" for m in MACHINES.values())
CPU_DEFAULTS = ", ".join(f"{m.cpus} for {m.arch}" for m in MACHINES.values())

DESCRIPTION = """\
Between `build` and `publish`: for each kernel in the build report(s), fetch that kernel's
linux-image package through apt (cached, hash-checked), boot it once in QEMU with this
machine's root file system shared read-only (KVM when /dev/kvm works and the kernel is of
this machine's architecture, else TCG), and load every probe built for it with our own
loader (each program through bpf(), as libscap does; the verifier's log kept for a
rejected one), and every kernel module (finit_module, its /dev/falco* devices, its API
version asked by ioctl, a capture, delete_module). x86_64 and aarch64 kernels boot; an
aarch64 guest on an x86_64 machine runs Debian's arm64 Python (built once from the
archive's packages, cached). Several kernels boot at once (--jobs). Each probe's result
is written into its report as `loadtest`: passed, rejected (the program and the
verifier's last lines; a module: the kernel's words) or not_tested (with the reason: no
image for the kernel, no emulator for its architecture, a download or boot that failed).
`publish` refuses rejected probes.
Logs: logs/<driver_version>/<arch>/<uname -r>/<file>.loadtest.log.

With --probe FILE, load one probe file in the Debian kernel it was built for (its
kernel_version section) and print the whole story, verifier log included: how to
reproduce a load failure with one command. Nothing is written.

Needs Debian's qemu-system-x86 and busybox-static, and qemu-system-arm for aarch64
kernels. See docs/loadtest.md.

exit codes: 0 the run finished (results are in the reports) or, with --probe, the probe
passed; 1 with --strict when a probe was rejected or not tested, or with --probe when it
did not pass; 2 bad input; 5 QEMU or busybox-static for this machine's architecture is
missing.
"""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("loadtest", help="load built probes in their own kernels (QEMU)",
                            description=DESCRIPTION,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("reports", nargs="*", type=Path, metavar="REPORT",
                        help="a build output folder (holding report.jsonl) or a report file")
    parser.add_argument("--probe", type=Path, metavar="FILE",
                        help="instead of reports: load this probe file and print its log")
    parser.add_argument("--package-version", default="", metavar="V",
                        help="with --probe: the kernel's Debian package version (default: "
                             "the newest apt knows for that kernel release)")
    parser.add_argument("--kernel", metavar="REGEX",
                        help="only kernels whose `uname -r` matches REGEX")
    parser.add_argument("--retest", action="store_true",
                        help="test again probes that already passed or were rejected "
                             "(not_tested ones are always tried again)")
    vm = parser.add_argument_group("the VMs")
    vm.add_argument("--jobs", type=int, default=0, metavar="N",
                    help="VMs at once (default: as many as this machine has cores and free "
                         "memory for)")
    vm.add_argument("--accel", choices=ACCELS, default="auto",
                    help="auto: KVM when /dev/kvm works and the kernel is of this machine's "
                         "architecture, else TCG (default)")
    vm.add_argument("--memory", type=int, default=None, metavar="MB",
                    help=f"each VM's memory (default: {MEMORY_DEFAULTS})")
    vm.add_argument("--cpus", type=int, default=None, metavar="N",
                    help=f"each VM's CPUs (default: {CPU_DEFAULTS})")
    vm.add_argument("--timeout", type=float, default=DEFAULTS.timeout, metavar="SECONDS",
                    help=f"per boot, all its probes included (default {DEFAULTS.timeout:.0f})")
    apt = parser.add_argument_group("where kernel images come from")
    add_apt_options(apt, "the suites of the apt targets in --config")
    add_config_option(apt)
    apt.add_argument("--cache", type=Path, default=None, metavar="DIR",
                     help="downloads, apt state and kernel images "
                          "(default: $XDG_CACHE_HOME/falco-probes, as `build`)")
    parser.add_argument("--strict", action="store_true",
                        help="exit 1 if a probe was rejected or not tested")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.set_defaults(func=run)


def _suites(args: argparse.Namespace) -> tuple[tuple[str, ...], str]:
    """Where kernel images come from: --suite, else the suites the config's apt targets
    read their headers from (so a Debian 13 machine tests Debian 12's kernels)."""
    if args.suite or args.sources:
        return tuple(args.suite), args.mirror
    config = config_from(args, required=args.config is not None)
    targets = [t for t in (config.targets if config else ()) if t.kernels == "apt"]
    suites = tuple(dict.fromkeys(s for t in targets for s in t.suites))
    mirrors = {t.mirror for t in targets if t.suites}
    return suites, args.mirror or (mirrors.pop() if len(mirrors) == 1 else "")


def run(args: argparse.Namespace) -> int:
    suites, mirror = _suites(args)
    if args.jobs < 0:
        raise InputError(f"--jobs {args.jobs}: give 1 or more VMs at once (0: the default)")
    options = LoadTestOptions(
        cache=cache_root(args.cache),
        vm=VmSettings(memory_mb=args.memory, cpus=args.cpus, timeout=args.timeout,
                      accel=args.accel),
        sources=args.sources, keyring=args.keyring, retest=args.retest, suites=suites,
        mirror=mirror, jobs=args.jobs)
    if args.probe is not None:
        if args.reports or args.kernel:
            raise InputError("--probe loads one file; drop the reports and --kernel")
        return _one_probe(args, options)
    if not args.reports:
        raise InputError("give the build output folder(s) to test, or --probe FILE",
                         hint="falco-probes loadtest out   (the folder `build --out` wrote)")
    kernel_filter = _kernel_filter(args.kernel)
    with progress() as bar:
        task = bar.add_task("load testing", total=None)

        def on_probe(member: Member, test: LoadTest) -> None:
            bar.advance(task)
            state = test.status if test.passed else f"{test.status}: {test.reason[:200]}"
            what = (f"API {test.api_version or '?'}, {test.events} events"
                    if member.result.driver_type == KMOD.name else
                    f"{test.accepted}/{test.total}")
            bar.console.print(f"{member.result.driver_version} {member.result.file}: "
                              f"{what} {state}", markup=False, highlight=False)

        summary = run_loadtest(args.reports, options, kernel_filter=kernel_filter,
                               say=lambda line: bar.console.print(line, markup=False,
                                                                  highlight=False),
                               on_probe=on_probe)
    _report(summary, args.json)
    failed = summary.rejected or summary.not_tested
    return EXIT_NEGATIVE if args.strict and failed else EXIT_OK


def _kernel_filter(pattern: str | None) -> Callable[[str], bool]:
    if pattern is None:
        return lambda release: True
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise InputError(f"--kernel {pattern!r} is not a regular expression: {exc}") from exc
    return lambda release: compiled.search(release) is not None


def _one_probe(args: argparse.Namespace, options: LoadTestOptions) -> int:
    probe = read_probe(args.probe)
    release = probe.kernel_release
    wrong = check_kernel_release(release)
    if wrong:
        raise InputError(f"{args.probe}: its kernel_version section {release!r} names no "
                         f"kernel release: {wrong}")
    arch = debian_arch(release)
    tester = LoadTester(options, say=info)
    tester.check_tools(arch)
    date = utc_now()
    try:
        image = tester.image(release, args.package_version, arch)
    except KernelUnavailable as exc:
        test = loadtest_of(None, release, None, date, exc.message)
        emit(probe_log(None, test, None).rstrip())
        return EXIT_NEGATIVE
    info(f"booting {image.package}")
    boot, results = tester.boot(image, [("probe", args.probe.resolve(), "")])
    raw = results.get("probe")
    test = loadtest_of(raw, release, boot, date)
    if args.json:
        emit_json({"loadtest": {"status": test.status, "kernel": test.kernel,
                                "accepted": test.accepted, "total": test.total,
                                "reason": test.reason},
                   "boot": {"accel": boot.accel, "share": boot.share,
                            "seconds": round(boot.seconds, 1)},
                   "result": raw})
    else:
        emit(probe_log(raw, test, boot).rstrip())
    return EXIT_OK if test.passed else EXIT_NEGATIVE


def _report(summary: LoadTestSummary, as_json: bool) -> None:
    for boot in summary.boots:
        late = "" if boot["finished"] else ", did not finish"
        info(f"booted {boot['kernel']} ({boot['arch']}, {boot['accel']}, {boot['share']}) in "
             f"{boot['seconds']} s for {boot['probes']} probe(s){late}")
    info(f"load test: {summary.passed} passed, {summary.rejected} rejected, "
         f"{summary.not_tested} not tested")
    if as_json:
        emit_json(summary.as_dict())
