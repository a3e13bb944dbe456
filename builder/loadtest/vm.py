"""Boot a kernel in QEMU with the host's root file system shared read-only (9p or virtiofs).

One `Vm` per guest architecture and run (MACHINES says how QEMU emulates each)
decides how to accelerate: KVM only for a guest of this machine's own
architecture, when /dev/kvm can be opened and a first boot with it reaches
/init; TCG (emulation) otherwise. Nested KVM can hang or abort at once (QEMU
asserting on an MSR it cannot set, as on the machines we work on), so a KVM
boot that fails or says nothing within `kvm_start_timeout` is stopped and
that boot, and every later one of that Vm, runs under TCG; a Vm of another
architecture never tries KVM, so it cannot turn the others to TCG. Every boot
has a deadline; the serial console goes to a file. A Vm may boot several
kernels at once, from several threads.
"""

from __future__ import annotations

import contextlib
import functools
import os
import platform
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from builder.core.errors import BuildError, InputError
from builder.core.records import LoadTest
from builder.loadtest.initramfs import GUEST_TAG, HOST_TAG, MARK, WORK_TAG

ACCELS = ("auto", "kvm", "tcg")
POLL_SECONDS = 0.2


@dataclass(frozen=True, slots=True)
class Machine:
    """How QEMU emulates one guest architecture, and what a guest needs by default."""

    arch: str            # the guest's `uname -m`
    qemu: str            # the emulator
    package: str         # Debian's package that has it
    board: str           # -machine
    tcg_cpu: str         # -cpu under TCG (KVM: host)
    console: str         # the serial console's device in the guest
    memory_mb: int       # default -m
    cpus: int            # default -smp

    @property
    def kernel_args(self) -> str:
        return f"console={self.console} panic=-1 quiet"


MACHINES = {
    "x86_64": Machine("x86_64", "qemu-system-x86_64", "qemu-system-x86", "q35", "max", "ttyS0",
                      1536, 2),
    # neoverse-n1: ARMv8.2 (Graviton2, Ampere Altra) with the 16K granule the -arm64-16k
    # kernels need (cortex-a72 lacks it: they hang). `max` emulates pointer authentication
    # with QARMA, which loads a probe 5x slower (docs/loadtest.md). The guest's loader is one
    # thread: a second CPU only costs time; 256 MB is enough for every probe measured.
    "aarch64": Machine("aarch64", "qemu-system-aarch64", "qemu-system-arm", "virt",
                       "neoverse-n1", "ttyAMA0", 256, 1),
}


class VmUnavailable(BuildError):
    """No VM for this architecture here (its emulator is missing, or KVM cannot run it)."""


@dataclass(frozen=True, slots=True)
class VmSettings:
    memory_mb: int | None = None    # None: the machine's own default (MACHINES)
    cpus: int | None = None
    timeout: float = 900.0          # one boot, from start to power-off
    accel: str = "auto"
    kvm_start_timeout: float = 30.0  # KVM must reach /init by then, or TCG takes over

    def memory_for(self, machine: Machine) -> int:
        return self.memory_mb or machine.memory_mb

    def cpus_for(self, machine: Machine) -> int:
        return self.cpus or machine.cpus


@dataclass(frozen=True, slots=True)
class Boot:
    """How one boot went; the guest's own results are in the work folder."""

    accel: str
    share: str
    seconds: float
    reached_init: bool
    finished: bool                  # the guest command ran to its end and the VM powered off
    reason: str = ""                # why not, when not finished
    console: str = ""               # the serial console, as written


def log_head(test: LoadTest, boot: Boot | None) -> list[str]:
    """The lines every load-test log starts with, probe or module: verdict, kernel, boot."""
    lines = [f"load test: {test.status}", f"kernel: {test.kernel}", f"date: {test.date}"]
    if boot is not None:
        lines.append(f"boot: {boot.accel}, {boot.share}, {boot.seconds:.1f} s")
    if test.reason:
        lines.append(f"reason: {test.reason}")
    return lines


def check_settings(settings: VmSettings) -> VmSettings:
    if settings.accel not in ACCELS:
        raise InputError(f"--accel {settings.accel!r}: use one of {', '.join(ACCELS)}")
    if settings.memory_mb is not None and settings.memory_mb < 256:
        raise InputError(f"--memory {settings.memory_mb}: the VM needs at least 256 MB")
    if settings.cpus is not None and not 1 <= settings.cpus <= 64:
        raise InputError(f"--cpus {settings.cpus}: use 1 to 64")
    if settings.timeout <= 0:
        raise InputError("--timeout must be a positive number of seconds")
    return settings


# QEMU's own resident memory beside what the guest touches (measured: 200-340 MB for an
# aarch64 guest, whatever its -m).
QEMU_OVERHEAD_MB = 320


def default_jobs(settings: VmSettings, machines: Iterable[Machine], *, cores: int = 0,
                 available_mb: int = 0) -> int:
    """How many VMs this machine runs well at once: one per core (a guest's loader is one
    thread, so a VM keeps one core busy whatever its CPUs), and no more than its free
    memory holds (when known), each VM counted at its guest's memory plus QEMU's own."""
    cores = cores or len(os.sched_getaffinity(0))
    available_mb = available_mb or memory_available_mb()
    per_vm = max((settings.memory_for(m) + QEMU_OVERHEAD_MB for m in machines), default=0)
    by_memory = available_mb // per_vm if per_vm and available_mb else cores
    return max(1, min(cores, by_memory))


def memory_available_mb(meminfo: Path = Path("/proc/meminfo")) -> int:
    """MemAvailable: what this machine can give without swapping (0 when unknown)."""
    try:
        for line in meminfo.read_text(encoding="ascii").splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def host_arch() -> str:
    """This machine's `uname -m`: the only guest architecture KVM can run here."""
    return platform.machine()


def machine_for(arch: str) -> Machine:
    machine = MACHINES.get(arch)
    if machine is None:
        raise VmUnavailable(f"no {arch} VM: load tests boot {' and '.join(MACHINES)} kernels")
    return machine


def find_qemu(machine: Machine) -> str:
    found = shutil.which(machine.qemu)
    if found is None:
        raise VmUnavailable(f"{machine.qemu} is not installed (Debian's {machine.package}; "
                            f"the load test boots each {machine.arch} probe's kernel in it)",
                            hint=f"install Debian's {machine.package}")
    return found


# Where Debian puts a virtiofsd, the Rust one first: Debian 13's `virtiofsd` package
# (1.13, /usr/libexec/virtiofsd, with a compatibility link at QEMU's old path) and
# QEMU 7.2's C one, which Debian 12 ships in qemu-system-common (QEMU 8 dropped it).
VIRTIOFSD = (Path("/usr/libexec/virtiofsd"), Path("/usr/lib/qemu/virtiofsd"))
RUST, LEGACY = "rust", "legacy"     # the two kinds: their options differ


@dataclass(frozen=True, slots=True)
class Virtiofsd:
    path: Path
    kind: str                       # RUST or LEGACY


def virtiofsd_kind(help_text: str) -> str | None:
    """Which virtiofsd printed this --help: only the Rust one has --shared-dir (the C
    one takes `-o source=DIR`); both have --socket-path, else it is no virtiofsd. The
    path says nothing: Debian 13 links the Rust one to QEMU's old path."""
    if "--socket-path" not in help_text:
        return None
    return RUST if "--shared-dir" in help_text else LEGACY


@functools.cache
def _probe_kind(path: Path) -> str | None:
    """The kind of the virtiofsd at `path`, asked once per run; None when it does not answer."""
    try:
        done = subprocess.run([str(path), "--help"], stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return virtiofsd_kind((done.stdout + done.stderr).decode("utf-8", "replace"))


def find_virtiofsd(candidates: tuple[Path, ...] | None = None) -> Virtiofsd | None:
    """A virtiofsd (of `candidates`, VIRTIOFSD by default), the Rust one if there is one,
    when we are root (the chroot sandbox and serving other users' files need it)."""
    if os.geteuid() != 0:
        return None
    found = [Virtiofsd(path, kind) for path in (candidates or VIRTIOFSD)
             if os.access(path, os.X_OK)
             for kind in [_probe_kind(path)] if kind is not None]
    return next((d for d in found if d.kind == RUST), found[0] if found else None)


def virtiofsd_argv(daemon: Virtiofsd, socket: Path, source: Path, *,
                   readonly: bool) -> list[str]:
    """The command line of one share's daemon. Read-only: the host's root, cached (nothing
    changes it during a boot) and refused writes where the daemon can (only the Rust one
    has --readonly; the guest mounts it read-only either way). Otherwise the work folder,
    which the guest writes: not cached."""
    if daemon.kind == RUST:
        return [str(daemon.path), "--socket-path", str(socket), "--shared-dir", str(source),
                "--cache", "always" if readonly else "never", "--sandbox", "chroot",
                *(["--readonly"] if readonly else [])]
    # The C one's -o options are split at commas; a backslash escapes one (libfuse's rule).
    escaped = str(source).replace("\\", "\\\\").replace(",", "\\,")
    return [str(daemon.path), f"--socket-path={socket}", "-o", f"source={escaped}",
            "-o", f"cache={'always' if readonly else 'none'}", "-o", "sandbox=chroot"]


def shares_here() -> tuple[str, ...]:
    """How this host can share its files with the VM, in order of preference."""
    return ("9p", "virtiofs") if find_virtiofsd() is not None else ("9p",)


def kvm_usable() -> bool:
    """/dev/kvm exists and we may open it; whether it works is only known by booting."""
    try:
        fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    os.close(fd)
    return True


@dataclass(frozen=True, slots=True)
class Export:
    """A folder of this machine the VM mounts: its tag, and whether the guest may write."""

    tag: str
    path: Path
    readonly: bool


def exports(work: Path, root: Path | None = None) -> list[Export]:
    """The host's root (read-only), the work folder (read-write) and, for a guest of another
    architecture, its own root (read-only; guestroot.py)."""
    out = [Export(HOST_TAG, Path("/"), True), Export(WORK_TAG, work, False)]
    if root is not None:
        out.append(Export(GUEST_TAG, root, True))
    return out


class Vm:
    """Boots kernels of one architecture for one run, remembering whether KVM works here."""

    def __init__(self, settings: VmSettings, qemu: str,
                 machine: Machine = MACHINES["x86_64"]) -> None:
        self.settings = check_settings(settings)
        self.qemu = qemu
        self.machine = machine
        native = machine.arch == host_arch()
        if settings.accel == "kvm" and not native:
            raise VmUnavailable(f"--accel kvm: KVM runs only {host_arch()} guests on this "
                                f"{host_arch()} machine, not {machine.arch} ones",
                                hint="use --accel auto (KVM where it can, else TCG)")
        self._kvm = native and (settings.accel == "kvm" or
                                (settings.accel == "auto" and kvm_usable()))

    @property
    def memory_mb(self) -> int:
        return self.settings.memory_for(self.machine)

    def boot(self, vmlinuz: Path, initrd: Path, work: Path, share: str = "9p",
             on_line: Callable[[str], None] | None = None, root: Path | None = None) -> Boot:
        """Boot once; with KVM failing early, boot again under TCG. `root`: the guest's own
        root file system, for a guest of another architecture."""
        if self._kvm:
            first = self._shared("kvm", vmlinuz, initrd, work, share, on_line, root)
            if first.reached_init or self.settings.accel == "kvm":
                return first
            self._kvm = False
            if on_line is not None:
                on_line(f"{MARK} KVM did not start the VM ({first.reason}); using TCG")
        return self._shared("tcg", vmlinuz, initrd, work, share, on_line, root)

    def command(self, accel: str, vmlinuz: Path, initrd: Path, work: Path, console: Path,
                share: str = "9p", root: Path | None = None) -> list[str]:
        machine, shared = self.machine, exports(work, root)
        return [
            self.qemu, "-machine", f"{machine.board},accel={accel}",
            "-cpu", "host" if accel == "kvm" else machine.tcg_cpu,
            "-m", str(self.memory_mb), "-smp", str(self.settings.cpus_for(machine)),
            "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
            "-kernel", str(vmlinuz), "-initrd", str(initrd), "-append", machine.kernel_args,
            "-chardev", f"file,id=console,path={_option(console)}", "-serial", "chardev:console",
            *(_virtiofs_devices(work, shared, self.memory_mb) if share == "virtiofs"
              else _9p_devices(shared)),
        ]

    def _shared(self, accel: str, vmlinuz: Path, initrd: Path, work: Path, share: str,
                on_line: Callable[[str], None] | None, root: Path | None) -> Boot:
        """One boot, with the virtiofsd daemons a virtiofs share needs around it."""
        if share != "virtiofs":
            return self._run(accel, vmlinuz, initrd, work, share, on_line, root)
        with _virtiofsd(work, exports(work, root)):
            return self._run(accel, vmlinuz, initrd, work, share, on_line, root)

    def _run(self, accel: str, vmlinuz: Path, initrd: Path, work: Path, share: str,
             on_line: Callable[[str], None] | None, root: Path | None) -> Boot:
        console = work / f"console-{accel}.log"
        console.write_bytes(b"")
        errors = work / f"qemu-{accel}.err"
        started = time.monotonic()
        start_deadline = started + (self.settings.kvm_start_timeout if accel == "kvm"
                                    else self.settings.timeout)
        deadline = started + self.settings.timeout
        with errors.open("wb") as err:
            proc = subprocess.Popen(self.command(accel, vmlinuz, initrd, work, console, share,
                                                 root),
                                    stdin=subprocess.DEVNULL, stdout=err, stderr=err)
            watcher = _Console(console, on_line)
            reason = ""
            try:
                while proc.poll() is None:
                    time.sleep(POLL_SECONDS)
                    watcher.read()
                    now = time.monotonic()
                    if not watcher.reached_init and now > start_deadline:
                        reason = f"no sign of /init after {now - started:.0f} s"
                    elif now > deadline:
                        reason = f"the VM did not finish within {self.settings.timeout:.0f} s"
                    if reason:
                        proc.kill()
                        break
            finally:
                if proc.poll() is None:
                    proc.kill()
                proc.wait()
        watcher.read()
        seconds = time.monotonic() - started
        if not reason and proc.returncode != 0:
            reason = f"QEMU exited with {proc.returncode}: " + _tail(errors)
        if not reason and not watcher.finished:
            reason = watcher.error or "the VM stopped before the guest finished " \
                                      "(kernel panic? see the console log)"
        if not reason and watcher.guest_code:
            reason = f"the loader in the VM failed (exit {watcher.guest_code}); its " \
                     "traceback is in the console log"
        return Boot(accel, share, seconds, watcher.reached_init, not reason, reason,
                    watcher.text)


class _Console:
    """Follows the console file: our marks say how far the boot got."""

    def __init__(self, path: Path, on_line: Callable[[str], None] | None) -> None:
        self._path = path
        self._on_line = on_line
        self._seen = 0
        self._pending = b""
        self.text = ""
        self.reached_init = False
        self.finished = False
        self.guest_code = 0
        self.error = ""

    def read(self) -> None:
        try:
            with self._path.open("rb") as stream:
                stream.seek(self._seen)
                chunk = stream.read()
        except FileNotFoundError:
            return
        self._seen += len(chunk)
        data = self._pending + chunk
        *lines, self._pending = data.split(b"\n")
        for raw in lines:
            line = raw.decode("utf-8", "replace").rstrip("\r")
            self.text += line + "\n"
            self._note(line)

    def _note(self, line: str) -> None:
        if MARK not in line:
            return
        said = line[line.index(MARK):]
        if said.startswith(f"{MARK} init"):
            self.reached_init = True
        elif said.startswith(f"{MARK} guest exited"):
            self.finished = True
            words = said.split()
            code = words[words.index("with") + 1] if "with" in words[:-1] else "0"
            self.guest_code = int(code) if code.isdigit() else -1
        elif said.startswith(f"{MARK} error:"):
            self.error = said.removeprefix(f"{MARK} error:").strip()
        if self._on_line is not None:
            self._on_line(said)


def _9p_devices(shared: list[Export]) -> list[str]:
    """The exports over virtio 9p (PCI on both boards); read-only ones refused writes by
    QEMU itself."""
    devices = []
    for export in shared:
        readonly = ",readonly=on,multidevs=remap" if export.readonly else ""
        devices += ["-fsdev", f"local,id={export.tag},path={_option(export.path)},"
                              f"security_model=none{readonly}",
                    "-device", f"virtio-9p-pci,fsdev={export.tag},mount_tag={export.tag}"]
    return devices


def _virtiofs_devices(work: Path, shared: list[Export], memory_mb: int) -> list[str]:
    """The same shares over virtiofs: vhost-user needs the guest's memory shared."""
    devices = ["-object", f"memory-backend-memfd,id=mem,size={memory_mb}M,share=on",
               "-numa", "node,memdev=mem"]
    for export in shared:
        tag = export.tag
        devices += ["-chardev", f"socket,id={tag},path={_option(_socket(work, tag))}",
                    "-device", f"vhost-user-fs-pci,chardev={tag},tag={tag}"]
    return devices


def _socket(work: Path, tag: str) -> Path:
    return work / f"{tag}.sock"


@contextlib.contextmanager
def _virtiofsd(work: Path, shared: list[Export]) -> Iterator[None]:
    """A virtiofsd per share for one boot: the read-only ones cached, the work folder not
    (virtiofsd_argv says how). Stopped, by their pids, when the boot is over."""
    daemon = find_virtiofsd()
    if daemon is None:
        raise BuildError("virtiofs needs a virtiofsd and root",
                         hint="install Debian's virtiofsd (Debian 13) or qemu-system-x86 "
                              "(Debian 12) and run as root")
    started: list[subprocess.Popen[bytes]] = []
    try:
        for tag, source, readonly in ((e.tag, e.path, e.readonly) for e in shared):
            sock = _socket(work, tag)
            log = (work / f"virtiofsd-{tag}.log").open("wb")
            started.append(subprocess.Popen(
                virtiofsd_argv(daemon, sock, source, readonly=readonly),
                stdin=subprocess.DEVNULL, stdout=log, stderr=log))
            log.close()
            _wait_for(sock, started[-1], work / f"virtiofsd-{tag}.log")
        yield
    finally:
        for proc in started:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def _wait_for(sock: Path, proc: subprocess.Popen[bytes], log: Path,
              seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not sock.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise BuildError(f"virtiofsd did not start: {_tail(log)}",
                             hint="it needs root; or give the kernel 9p (see docs/loadtest.md)")
        time.sleep(0.05)


def _option(path: Path) -> str:
    """A path inside a QEMU option list, where a comma must be doubled."""
    return str(path).replace(",", ",,")


def _tail(path: Path, limit: int = 400) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return ""
    return " ".join(text.split())[-limit:]
