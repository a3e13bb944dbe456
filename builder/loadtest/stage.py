"""`falco-probes loadtest`, the stage: every built probe loaded in its own kernel.

Reads build reports, groups the probes built successfully by kernel, and for
each kernel fetches its image (kernelimage), boots it once (vm) with an
initramfs (initramfs) whose /init runs the guest (guest) on Python, which
loads every probe of that kernel. A kernel of this machine's architecture
runs this machine's own Python; one of another architecture (arm64 on an
x86_64 machine) runs Debian's Python of its own (guestroot). Each probe gets
a LoadTest:

- passed      every program accepted by the verifier and attached;
- rejected    a program was refused (its name and the verifier's last lines)
              or the probe could not be loaded at all;
- not_tested  no image for the kernel, a download that failed, no emulator
              for its architecture, a VM that did not finish: never counted
              as passed.

Several kernels boot at once (`jobs`, by default as many VMs as this machine
has cores and memory for): workers fetch, boot and load; the results of each
kernel go back into its reports (`loadtest` of its BuildResult) from the
calling thread alone, as each kernel finishes, every report rewritten
atomically, so a run that is stopped keeps what it finished and no result is
lost to another's write. Per probe, the whole story (each program, the
verifier's log of a rejected one) is written to
logs/<driver_version>/<arch>/<uname -r>/<file>.loadtest.log, and each boot's
serial console to logs/loadtest/<kernel>.console.log.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar, cast

import elftools

import builder
from builder.core.drivertypes import KMOD
from builder.core.errors import ProbesError
from builder.core.records import LoadTest, check_kernel_release
from builder.core.report import REPORT_NAME, BuildResult, iter_reports, read_report, replace_report
from builder.loadtest.events import capture_recipe
from builder.loadtest.guestroot import HOST_AT, guest_root, guest_suites
from builder.loadtest.initramfs import build_initramfs, static_busybox
from builder.loadtest.kernelimage import KernelImage, fetch_image, headers_version
from builder.loadtest.kmodtest import job_entry, module_loadtest, module_log
from builder.loadtest.vm import (
    MACHINES,
    Boot,
    Vm,
    VmSettings,
    default_jobs,
    find_qemu,
    host_arch,
    log_head,
    machine_for,
    shares_here,
)
from builder.shared.apt import AptArchive
from builder.shared.fetch import Cache

T = TypeVar("T")

MAX_REASON = 2000
DEBIAN_TARGETS = ("debian",)

# (report folder, the probe's path in it): the path, not the file name, names one result
# (twin kernels share a file name; their results lie apart, by kernel).
ProbeKey = tuple[str, str]


@dataclass(frozen=True, slots=True)
class LoadTestOptions:
    cache: Path
    vm: VmSettings = field(default_factory=VmSettings)
    sources: Path | None = None
    keyring: Path | None = None
    retest: bool = False
    suites: tuple[str, ...] = ()   # read images from these suites (the targets' own)
    mirror: str = ""
    jobs: int = 0                  # VMs at once; 0: what this machine has cores and memory for


@dataclass(frozen=True, slots=True)
class Member:
    folder: Path
    result: BuildResult

    @property
    def key(self) -> ProbeKey:
        return (str(self.folder), self.result.path)

    @property
    def probe(self) -> Path:
        return (self.folder / self.result.path).resolve()

    @property
    def source(self) -> str:
        """What it was compiled from: probes of one source share their types."""
        result = self.result
        return f"{result.driver_version}|{result.driver_source_sha256}" \
            if result.driver_source_sha256 else ""


@dataclass(frozen=True, slots=True)
class KernelGroup:
    """Every probe built for one kernel: one boot."""

    target: str
    arch: str
    release: str
    version: str               # the Debian package version of its headers (and image)
    members: tuple[Member, ...]


@dataclass
class LoadTestSummary:
    passed: int = 0
    rejected: int = 0
    not_tested: int = 0
    boots: list[dict[str, Any]] = field(default_factory=list)
    probes: list[dict[str, Any]] = field(default_factory=list)

    def add(self, member: Member, test: LoadTest, seconds: float) -> None:
        setattr(self, test.status, getattr(self, test.status) + 1)
        self.probes.append({"driver_version": member.result.driver_version,
                            "file": member.result.file, "status": test.status,
                            "accepted": test.accepted, "total": test.total,
                            "seconds": round(seconds, 2), "reason": test.reason})

    def as_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "rejected": self.rejected,
                "not_tested": self.not_tested, "boots": self.boots, "probes": self.probes}


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def one_line(text: str, limit: int = MAX_REASON) -> str:
    """Printable, one line: what a LoadTest reason must be."""
    cleaned = "".join(c if c.isprintable() else " " for c in text)
    return " ".join(cleaned.split())[:limit]


def group_results(reports: Iterable[tuple[Path, BuildResult]], retest: bool = False,
                  ) -> list[KernelGroup]:
    """Probes that were built, by kernel; already tested ones only with `retest`."""
    groups: dict[tuple[str, str, str, str], list[Member]] = {}
    for folder, result in reports:
        if not result.ok:
            continue
        done = result.loadtest is not None and result.loadtest.status != "not_tested"
        if done and not retest:
            continue
        release, version = kernel_of(result)
        key = (result.target, result.arch, release, version)
        groups.setdefault(key, []).append(Member(folder, result))
    return [KernelGroup(*key, tuple(members)) for key, members in sorted(groups.items())]


def kernel_of(result: BuildResult) -> tuple[str, str]:
    """(`uname -r`, Debian package version) of the kernel a probe was built against.

    The probe's own kernel_release is the loader's name for it, which for
    Debian is rebuilt from the package version (6.1.0-56-amd64 is requested as
    6.1.192-2-amd64); the report says both (older reports: the build's kernel key).
    """
    if result.uname_r and result.package_version:
        return result.uname_r, result.package_version
    parts = result.kernel_key.split("/")
    if len(parts) != 4 or check_kernel_release(parts[2]):
        return "", ""
    return parts[2], headers_version(parts[2], result.headers, parts[3])


def untestable(group: KernelGroup) -> str:
    """Why this kernel cannot be booted here, or "" when it can be tried."""
    if group.target not in DEBIAN_TARGETS:
        return (f"no kernel image source for {group.target} kernels: load tests boot Debian's "
                "linux-image packages")
    if group.arch not in MACHINES:
        return f"no {group.arch} VM: load tests boot {' and '.join(MACHINES)} kernels"
    if not group.release or not group.version:
        return "the report does not say which kernel (uname -r and package version) it was " \
               "built against"
    return ""


@dataclass(frozen=True, slots=True)
class GuestSpace:
    """Where the guest command runs: this machine's root, or, for a guest of another
    architecture, its own root (guestroot.py) with this machine's root at `host_at`."""

    busybox: Path                   # static, of the guest's architecture, for /init
    python: str                     # the interpreter, as the guest sees it
    host_at: str = ""
    root: Path | None = None        # the guest's own root, shared read-only

    def sees(self, path: Path) -> str:
        """A path of this machine as the guest sees it."""
        return self.host_at + str(path)


# What the guest imports from this machine: this package, and pyelftools (probeelf).
GUEST_PACKAGES = (builder, elftools)


@dataclass(frozen=True, slots=True)
class Attempt:
    """One kernel's boot as a worker left it: the guest's results by key, or why not."""

    date: str
    boot: Boot | None = None
    raw: dict[str, dict[str, Any]] = field(default_factory=dict)
    why_not: str = ""


class LoadTester:
    """One run: per architecture an apt archive, a VM and the guest's user space, made once
    and shared by every kernel; several kernels may be tested at once, from threads."""

    def __init__(self, options: LoadTestOptions,
                 say: Callable[[str], None] = lambda line: None) -> None:
        self.options = options
        self.say = say
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._made: dict[str, object] = {}

    def _once(self, key: str, make: Callable[[], T]) -> T:
        """`make()`, once per run for `key`; other threads wanting it wait. A failure is not
        kept: the next caller tries again."""
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._made:
                self._made[key] = make()
            return cast(T, self._made[key])

    def check_tools(self, arch: str = "") -> None:
        """Fail before any download when QEMU or a static busybox for this machine's own
        architecture (or `arch`) is missing (VmUnavailable, BuildError). Another
        architecture's missing emulator only makes its probes not_tested (attempt)."""
        arch = arch or host_arch()
        self.vm(arch)
        if arch == host_arch():
            self.space(arch)

    def vm(self, arch: str) -> Vm:
        machine = machine_for(arch)
        return self._once(f"vm {arch}",
                          lambda: Vm(self.options.vm, find_qemu(machine), machine))

    def apt(self, arch: str) -> AptArchive:
        """The archive of `arch` (an amd64 one never lists arm64 images), updated once."""
        def make() -> AptArchive:
            options = self.options
            apt = AptArchive(options.cache / "apt", options.sources, options.keyring, arch,
                             options.suites, options.mirror)
            if not apt.index_files():
                apt.update()
            return apt

        return self._once(f"apt {arch}", make)

    def root_archive(self, arch: str) -> AptArchive:
        """Where the guest root's packages come from: one Debian release, this machine's
        own (guest_suites), never the newest of each package across the targets' suites:
        a bookworm Python on trixie's libc, which keeps its loader in /usr/lib only,
        cannot start. Without a Debian release here (or with --sources): the archive the
        images come from."""
        suites = guest_suites()
        if not suites or self.options.sources is not None:
            return self.apt(arch)

        def make() -> AptArchive:
            options = self.options
            apt = AptArchive(options.cache / "apt", None, options.keyring, arch, suites,
                             options.mirror)
            if not apt.index_files():
                apt.update()
            return apt

        return self._once(f"root apt {arch}", make)

    def space(self, arch: str) -> GuestSpace:
        """Where the guest runs: this machine's root for its own architecture, else a root of
        Debian's packages of `arch` (built once, cached)."""
        def make() -> GuestSpace:
            if arch == host_arch():
                return GuestSpace(static_busybox(arch=arch), sys.executable)
            self.say(f"preparing the {arch} guest's user space (Debian's Python for {arch})")
            root = guest_root(arch, self.root_archive(arch), self.downloads,
                              self.options.cache / "guestroot")
            return GuestSpace(root.busybox, root.python, HOST_AT, root.path)

        return self._once(f"space {arch}", make)

    @property
    def downloads(self) -> Cache:
        return Cache(self.options.cache / "downloads")

    def image(self, release: str, version: str, arch: str = "x86_64") -> KernelImage:
        """The kernel's image at that package version ("" for the newest apt knows)."""
        return fetch_image(release, version, arch, self.apt(arch), self.downloads,
                           self.options.cache / "kernels", shares_here())

    def recipe(self, path: Path, source: str) -> dict[str, Any] | None:
        """How to capture events with this probe (events.py), once per driver source."""
        return self._once(f"recipe {source}", lambda: capture_recipe(path))

    def attempt(self, group: KernelGroup) -> Attempt:
        """Fetch, boot and load one kernel's probes: a worker's part (no report is touched)."""
        date = utc_now()
        why_not = untestable(group)
        if why_not:
            return Attempt(date, why_not=why_not)
        try:
            self.vm(group.arch)  # a missing emulator says so before any download
            image = self.image(group.release, group.version, group.arch)
            self.say(f"booting {image.package} for {len(group.members)} probe(s)")
            boot, raw = self.boot(image, [("|".join(m.key), m.probe, m.source)
                                          for m in group.members],
                                  {"|".join(m.key): m.result.interface for m in group.members
                                   if m.result.driver_type == KMOD.name})
        except ProbesError as exc:  # no image, no emulator, apt, the cache, the guest's root
            return Attempt(date, why_not=exc.message)
        return Attempt(date, boot, raw)

    def attempts(self, groups: list[KernelGroup], jobs: int,
                 ) -> Iterator[tuple[KernelGroup, Attempt]]:
        """Each group's attempt, `jobs` at once, as they finish. The kernels with the most
        probes start first: the run ends sooner than with a long boot left for last."""
        pool = ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="loadtest")
        try:
            futures = {pool.submit(self.attempt, group): group
                       for group in sorted(groups, key=lambda g: -len(g.members))}
            for future in as_completed(futures):
                yield futures[future], future.result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def boot(self, image: KernelImage, probes: list[tuple[str, Path, str]],
             modules: Mapping[str, Mapping[str, Any]] | None = None,
             ) -> tuple[Boot, dict[str, dict[str, Any]]]:
        """Boot `image` once and load `probes` in it; results by key.

        Each probe is (key, path, source): `source` names what it was compiled
        from, so the capture recipe is read from one probe of each source.
        `modules` holds the kernel modules' device interfaces by key (kmodtest.py).
        """
        modules = modules or {}
        space = self.space(image.arch)
        work = Path(tempfile.mkdtemp(prefix="falco-probes-loadtest-"))
        try:
            results = work / "results.jsonl"
            job = {"probes": [job_entry(key, space.sees(path), modules[key])
                              if key in modules else
                              {"key": key, "path": space.sees(path),
                               "recipe": self.recipe(path, source or str(path))}
                              for key, path, source in probes],
                   "results": space.sees(results)}
            (work / "job.json").write_text(json.dumps(job), encoding="utf-8")
            command = [space.python, "-m", "builder.loadtest.guest",
                       space.sees(work / "job.json")]
            return self.run(image, command, work), _read_results(results)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def run(self, image: KernelImage, command: list[str], work: Path) -> Boot:
        """Boot `image` once to run `command` (a path as the guest sees it) in its root."""
        space, vm = self.space(image.arch), self.vm(image.arch)
        initrd = work / "initrd.cpio"
        initrd.write_bytes(build_initramfs(space.busybox, image.modules, work,
                                           guest_pythonpath(work, space), command, image.share,
                                           space.host_at))
        return vm.boot(image.vmlinuz, initrd, work, image.share,
                       lambda line: self.say(f"{image.release}: {line}"), space.root)


def guest_pythonpath(work: Path, space: GuestSpace) -> str:
    """The guest's PYTHONPATH. This machine's Python finds pyelftools where it is installed
    and only needs this package's folder; another architecture's Python gets a folder of
    links to exactly this package and pyelftools (naming their folder would put all of
    this machine's site-packages before the guest's standard library)."""
    parents = [Path(package.__file__ or "").resolve().parent for package in GUEST_PACKAGES]
    if not space.host_at:
        return str(parents[0].parent)
    links = work / "pythonpath"
    links.mkdir(exist_ok=True)
    for folder in parents:
        (links / folder.name).symlink_to(space.sees(folder))
    return space.sees(links)


def _read_results(path: Path) -> dict[str, dict[str, Any]]:
    """The guest's result lines by key; a last line cut short by a crash is ignored."""
    out: dict[str, dict[str, Any]] = {}
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return out
    for line in text.splitlines():
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(data, dict) and isinstance(data.get("key"), str):
            out[data["key"]] = data
    return out


def loadtest_of(raw: dict[str, Any] | None, release: str, boot: Boot | None, date: str,
                why_not: str = "") -> LoadTest:
    """The LoadTest of one probe from the guest's result line (None: it never got one)."""
    if raw is None:
        reason = why_not or (boot.reason if boot is not None and boot.reason else
                             "the VM finished without a result for this probe")
        return LoadTest("not_tested", release, date=date, reason=one_line(reason))
    total, accepted = int(raw.get("total", 0)), int(raw.get("accepted", 0))
    kernel = str(raw.get("kernel") or release)
    if raw.get("passed"):
        return LoadTest("passed", kernel, accepted, total, int(raw.get("events", 0)), date)
    return LoadTest("rejected", kernel, min(accepted, total), total, 0, date,
                    one_line(str(raw.get("reason") or "rejected")))


def probe_log(raw: dict[str, Any] | None, test: LoadTest, boot: Boot | None) -> str:
    """The human-readable story of one probe's load test."""
    lines = log_head(test, boot)
    if raw is not None:
        lines.append(f"programs accepted: {raw.get('accepted')}/{raw.get('total')}, "
                     f"attached: {raw.get('attached')}, load time: "
                     f"{float(raw.get('seconds', 0)):.2f} s")
        lines.append(f"events captured: {raw.get('events', 0)}"
                     + (f" (capture failed: {raw['capture']})" if raw.get("capture") else ""))
        for program in raw.get("programs", []):
            state = "ok" if program.get("accepted") else f"REJECTED {program.get('error')}"
            attach = f"; {program['attach']}" if program.get("attach") else ""
            lines.append(f"  {program.get('section')}: {state}, {program.get('insns')} insns, "
                         f"{program.get('processed')} processed{attach}")
        for program in raw.get("programs", []):
            if program.get("log"):
                lines += ["", f"--- verifier log of {program.get('section')} ---",
                          str(program["log"]).rstrip()]
    return "\n".join(lines) + "\n"


def finish_group(group: KernelGroup, attempt: Attempt, summary: LoadTestSummary,
                 on_probe: Callable[[Member, LoadTest], None] | None = None,
                 ) -> dict[ProbeKey, LoadTest]:
    """One kernel's LoadTests from its attempt; writes their logs and the console."""
    boot = attempt.boot
    if boot is not None:
        summary.boots.append({"kernel": group.release, "arch": group.arch,
                              "accel": boot.accel, "share": boot.share,
                              "seconds": round(boot.seconds, 1), "finished": boot.finished,
                              "probes": len(group.members)})
        for folder in {member.folder for member in group.members}:
            _write_console(folder, group.release, boot.console)
    out = {}
    for member in group.members:
        line = attempt.raw.get("|".join(member.key))
        kmod = member.result.driver_type == KMOD.name
        test = (module_loadtest if kmod else loadtest_of)(line, group.release, boot,
                                                          attempt.date, attempt.why_not)
        _write_log(member, (module_log if kmod else probe_log)(line, test, boot))
        summary.add(member, test, float(line.get("seconds", 0)) if line else 0.0)
        out[member.key] = test
        if on_probe is not None:
            on_probe(member, test)
    return out


_REPORTS = threading.Lock()  # one report rewrite at a time in this process


def record(tests: dict[ProbeKey, LoadTest]) -> None:
    """Write LoadTests into their reports, each report read, changed and rewritten
    atomically (a temporary file renamed over it), one at a time."""
    by_folder: dict[str, dict[str, LoadTest]] = {}
    for (folder, probe_path), test in tests.items():
        by_folder.setdefault(folder, {})[probe_path] = test
    with _REPORTS:
        for folder, found in by_folder.items():
            path = Path(folder) / REPORT_NAME
            results = [replace(r, loadtest=found[r.path]) if r.ok and r.path in found else r
                       for r in read_report(path)]
            replace_report(path, results)


def run_loadtest(paths: list[Path], options: LoadTestOptions, *,
                 kernel_filter: Callable[[str], bool] = lambda release: True,
                 say: Callable[[str], None] = lambda line: None,
                 on_probe: Callable[[Member, LoadTest], None] | None = None,
                 ) -> LoadTestSummary:
    groups = [g for g in group_results(iter_reports(paths), options.retest)
              if kernel_filter(g.release)]
    tester = LoadTester(options, say)
    if any(not untestable(g) and g.arch == host_arch() for g in groups):
        tester.check_tools()
    jobs = options.jobs or default_jobs(options.vm, {machine_for(g.arch) for g in groups
                                                     if not untestable(g)})
    summary = LoadTestSummary()
    for group, attempt in tester.attempts(groups, jobs):
        record(finish_group(group, attempt, summary, on_probe))
    return summary


def _write_log(member: Member, text: str) -> None:
    name = member.result
    release = kernel_of(name)[0] or "unknown-kernel"
    path = (member.folder / "logs" / name.driver_version / name.arch / release
            / f"{name.file}.loadtest.log")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _write_console(folder: Path, release: str, console: str) -> None:
    path = folder / "logs" / "loadtest" / f"{release}.console.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(console, encoding="utf-8")
