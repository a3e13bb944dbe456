"""Boot a kernel in QEMU with the host's root file system shared read-only (9p or virtiofs).

One `Vm` per run decides how to accelerate: KVM when /dev/kvm can be opened
and a first boot with it reaches /init, TCG (emulation) otherwise. Nested
KVM can hang or abort at once (QEMU asserting on an MSR it cannot set, as on
the machines we work on), so a KVM boot that fails or says nothing within
`kvm_start_timeout` is stopped and that boot, and every later one, runs
under TCG. Every boot has a deadline; the serial console goes to a file.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from builder.core.errors import BuildError, InputError
from builder.loadtest.initramfs import HOST_TAG, MARK, WORK_TAG

QEMU = {"x86_64": "qemu-system-x86_64"}
ACCELS = ("auto", "kvm", "tcg")
POLL_SECONDS = 0.2
KERNEL_ARGS = "console=ttyS0 panic=-1 quiet"


@dataclass(frozen=True, slots=True)
class VmSettings:
    memory_mb: int = 1536
    cpus: int = 2
    timeout: float = 900.0          # one boot, from start to power-off
    accel: str = "auto"
    kvm_start_timeout: float = 30.0  # KVM must reach /init by then, or TCG takes over


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


def check_settings(settings: VmSettings) -> VmSettings:
    if settings.accel not in ACCELS:
        raise InputError(f"--accel {settings.accel!r}: use one of {', '.join(ACCELS)}")
    if settings.memory_mb < 256:
        raise InputError(f"--memory {settings.memory_mb}: the VM needs at least 256 MB")
    if not 1 <= settings.cpus <= 64:
        raise InputError(f"--cpus {settings.cpus}: use 1 to 64")
    if settings.timeout <= 0:
        raise InputError("--timeout must be a positive number of seconds")
    return settings


def find_qemu(arch: str = "x86_64") -> str:
    found = shutil.which(QEMU.get(arch, f"qemu-system-{arch}"))
    if found is None:
        raise BuildError(f"{QEMU.get(arch, 'qemu-system-' + arch)} is not installed (the load "
                         "test boots each probe's kernel in QEMU)",
                         hint="install Debian's qemu-system-x86")
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


class Vm:
    """Boots kernels for one run, remembering whether KVM works here."""

    def __init__(self, settings: VmSettings, qemu: str) -> None:
        self.settings = check_settings(settings)
        self.qemu = qemu
        self._kvm = settings.accel == "kvm" or (settings.accel == "auto" and kvm_usable())

    def boot(self, vmlinuz: Path, initrd: Path, work: Path, share: str = "9p",
             on_line: Callable[[str], None] | None = None) -> Boot:
        """Boot once; with KVM failing early, boot again under TCG."""
        if self._kvm:
            first = self._shared("kvm", vmlinuz, initrd, work, share, on_line)
            if first.reached_init or self.settings.accel == "kvm":
                return first
            self._kvm = False
            if on_line is not None:
                on_line(f"{MARK} KVM did not start the VM ({first.reason}); using TCG")
        return self._shared("tcg", vmlinuz, initrd, work, share, on_line)

    def command(self, accel: str, vmlinuz: Path, initrd: Path, work: Path, console: Path,
                share: str = "9p") -> list[str]:
        settings = self.settings
        return [
            self.qemu, "-machine", f"q35,accel={accel}",
            "-cpu", "host" if accel == "kvm" else "max",
            "-m", str(settings.memory_mb), "-smp", str(settings.cpus),
            "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
            "-kernel", str(vmlinuz), "-initrd", str(initrd), "-append", KERNEL_ARGS,
            "-chardev", f"file,id=console,path={_option(console)}", "-serial", "chardev:console",
            *(_virtiofs_devices(work, settings.memory_mb) if share == "virtiofs"
              else _9p_devices(work)),
        ]

    def _shared(self, accel: str, vmlinuz: Path, initrd: Path, work: Path, share: str,
                on_line: Callable[[str], None] | None) -> Boot:
        """One boot, with the virtiofsd daemons a virtiofs share needs around it."""
        if share != "virtiofs":
            return self._run(accel, vmlinuz, initrd, work, share, on_line)
        with _virtiofsd(work):
            return self._run(accel, vmlinuz, initrd, work, share, on_line)

    def _run(self, accel: str, vmlinuz: Path, initrd: Path, work: Path, share: str,
             on_line: Callable[[str], None] | None) -> Boot:
        console = work / f"console-{accel}.log"
        console.write_bytes(b"")
        errors = work / f"qemu-{accel}.err"
        started = time.monotonic()
        start_deadline = started + (self.settings.kvm_start_timeout if accel == "kvm"
                                    else self.settings.timeout)
        deadline = started + self.settings.timeout
        with errors.open("wb") as err:
            proc = subprocess.Popen(self.command(accel, vmlinuz, initrd, work, console, share),
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


def _9p_devices(work: Path) -> list[str]:
    """The host's root, read-only at the host, and the work folder, over virtio 9p."""
    return [
        "-fsdev", f"local,id={HOST_TAG},path=/,security_model=none,readonly=on,multidevs=remap",
        "-device", f"virtio-9p-pci,fsdev={HOST_TAG},mount_tag={HOST_TAG}",
        "-fsdev", f"local,id={WORK_TAG},path={_option(work)},security_model=none",
        "-device", f"virtio-9p-pci,fsdev={WORK_TAG},mount_tag={WORK_TAG}",
    ]


def _virtiofs_devices(work: Path, memory_mb: int) -> list[str]:
    """The same two shares over virtiofs: vhost-user needs the guest's memory shared."""
    devices = ["-object", f"memory-backend-memfd,id=mem,size={memory_mb}M,share=on",
               "-numa", "node,memdev=mem"]
    for tag in (HOST_TAG, WORK_TAG):
        devices += ["-chardev", f"socket,id={tag},path={_option(_socket(work, tag))}",
                    "-device", f"vhost-user-fs-pci,chardev={tag},tag={tag}"]
    return devices


def _socket(work: Path, tag: str) -> Path:
    return work / f"{tag}.sock"


@contextlib.contextmanager
def _virtiofsd(work: Path) -> Iterator[None]:
    """A virtiofsd per share for one boot: the host's root (cached, read-only) and the
    work folder (virtiofsd_argv says how). Stopped, by their pids, when the boot is over."""
    daemon = find_virtiofsd()
    if daemon is None:
        raise BuildError("virtiofs needs a virtiofsd and root",
                         hint="install Debian's virtiofsd (Debian 13) or qemu-system-x86 "
                              "(Debian 12) and run as root")
    started: list[subprocess.Popen[bytes]] = []
    try:
        for tag, source, readonly in ((HOST_TAG, Path("/"), True), (WORK_TAG, work, False)):
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
