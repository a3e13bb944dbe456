"""The load-test VM's initramfs: a static busybox, the 9p modules and an /init script.

/init loads the modules, mounts the host's root file system read-only over
virtio 9p or virtiofs (tag `hostroot`) and the run's work folder read-write
at its own path (tag `work`), then runs the guest command chrooted into the host's
root, so the host's Python, this package and the probes are all where they
are on the host. Then it powers the VM off. Everything it says goes to the
serial console, each line starting with MARK.

A guest of another architecture cannot run the host's programs: it chroots
into its own root instead (tag `guestroot`, read-only: Debian's Python of its
architecture, guestroot.py), with the host's root at HOST_AT (/host) and the
work folder at /host<work>, so this package and the probes are still there,
one folder down. The busybox is then that root's, of the guest's architecture.

The archive is newc cpio, written here (byte-for-byte the same for the same
inputs: no times, fixed inode numbers), uncompressed: it is a few MB.
"""

from __future__ import annotations

import shlex
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from builder.core.errors import BuildError
from builder.loadtest.kernelimage import KernelModule

MARK = "falco-probes-vm:"
HOST_TAG = "hostroot"
WORK_TAG = "work"
GUEST_TAG = "guestroot"
# The machine an ELF binary must be for, per guest architecture (pyelftools' names).
ELF_MACHINES = {"x86_64": "EM_X86_64", "aarch64": "EM_AARCH64"}
GUEST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Mount options of the host's root (read-only) and of the work folder, per share.
# 9p over virtio: big messages, and the read-only root may cache (nothing changes it
# during a boot); that makes Python's start over 9p about 4x faster under emulation.
MOUNT_OPTIONS = {
    "9p": ("trans=virtio,version=9p2000.L,msize=512000,ro,cache=loose",
           "trans=virtio,version=9p2000.L,msize=512000,rw"),
    "virtiofs": ("ro", "rw"),
}

# /init itself never changes; what differs per boot is in /params, which it sources.
INIT = r"""#!/bin/busybox sh
B=/bin/busybox
. /params
say() { echo "$MARK $*"; }
now() { $B cut -d' ' -f1 /proc/uptime; }
fail() { say "error: $*"; $B sync; $B poweroff -f; }
$B mount -t devtmpfs dev /dev
$B mount -t proc proc /proc
$B mount -t sysfs sys /sys
say "init at $(now) s"
for module in $MODULES; do
  $B insmod "/modules/$module" || fail "insmod $module"
done
$B mount -t "$SHARE" -o "$ROOT_OPTIONS" "$ROOT_TAG" /newroot || fail "mounting $ROOT_TAG"
if [ "$ROOT_TAG" != "$HOST_TAG" ]; then
  $B mount -t "$SHARE" -o "$ROOT_OPTIONS" "$HOST_TAG" "/newroot$HOST_AT" ||
    fail "mounting the host's root"
fi
$B mount -t "$SHARE" -o "$WORK_OPTIONS" "$WORK_TAG" "/newroot$HOST_AT$WORK" || fail "mounting $WORK"
$B mount -t proc proc /newroot/proc || fail "mounting /proc"
$B mount -t sysfs sys /newroot/sys || fail "mounting /sys"
$B mount -t devtmpfs dev /newroot/dev || fail "mounting /dev"
$B mount -t tracefs tracefs /newroot/sys/kernel/tracing ||
  say "no tracefs: tracepoint programs cannot attach"
say "host root mounted at $(now) s"
$B env -i PATH="$GUEST_PATH" HOME=/ LC_ALL=C.UTF-8 PYTHONDONTWRITEBYTECODE=1 \
  PYTHONPATH="$GUEST_PYTHONPATH" $B chroot /newroot "$@"
say "guest exited with $? at $(now) s"
$B sync
$B poweroff -f
"""


def params(modules: Sequence[str], work: Path, pythonpath: str, command: Sequence[str],
           share: str = "9p", host_at: str = "") -> str:
    """/params: shell assignments (every value quoted) and the command as "$@".

    `host_at` "" chroots into the host's root; "/host" into the guest's own root
    (GUEST_TAG) with the host's root there."""
    root_options, work_options = MOUNT_OPTIONS[share]
    values = {"MARK": MARK, "MODULES": " ".join(modules), "SHARE": share,
              "ROOT_OPTIONS": root_options, "WORK_OPTIONS": work_options,
              "HOST_TAG": HOST_TAG, "WORK_TAG": WORK_TAG,
              "ROOT_TAG": GUEST_TAG if host_at else HOST_TAG, "HOST_AT": host_at,
              "WORK": str(work), "GUEST_PATH": GUEST_PATH, "GUEST_PYTHONPATH": pythonpath}
    lines = [f"{key}={shlex.quote(value)}" for key, value in values.items()]
    lines.append("set -- " + " ".join(shlex.quote(part) for part in command))
    return "\n".join(lines) + "\n"


@dataclass(frozen=True, slots=True)
class _Entry:
    name: str
    mode: int
    data: bytes = b""
    rdev: tuple[int, int] = (0, 0)


def build_initramfs(busybox: Path, modules: Sequence[KernelModule], work: Path,
                    pythonpath: str, command: Sequence[str], share: str = "9p",
                    host_at: str = "") -> bytes:
    """The initramfs bytes for one boot that runs `command` chrooted into the host's root
    (or, with `host_at`, the guest's own root; see params)."""
    files = [(f"{i:02d}-{m.name}.ko", m.data()) for i, m in enumerate(modules)]
    settings = params([name for name, _ in files], work, pythonpath, command, share, host_at)
    entries = [_Entry(d, stat.S_IFDIR | 0o755)
               for d in ("bin", "dev", "modules", "newroot", "proc", "sys")]
    entries += [
        _Entry("dev/console", stat.S_IFCHR | 0o600, rdev=(5, 1)),
        _Entry("init", stat.S_IFREG | 0o755, INIT.encode()),
        _Entry("params", stat.S_IFREG | 0o644, settings.encode()),
        _Entry("bin/busybox", stat.S_IFREG | 0o755, busybox.read_bytes()),
        *(_Entry(f"modules/{name}", stat.S_IFREG | 0o644, data) for name, data in files),
    ]
    return newc(entries)


def newc(entries: Sequence[_Entry]) -> bytes:
    """A newc ("070701") cpio archive of `entries` and its trailer."""
    out = bytearray()
    for ino, entry in enumerate([*entries, _Entry("TRAILER!!!", 0)], 1):
        name = entry.name.encode() + b"\0"
        fields = (ino, entry.mode, 0, 0, 1 if not stat.S_ISDIR(entry.mode) else 2, 0,
                  len(entry.data), 0, 0, entry.rdev[0], entry.rdev[1], len(name), 0)
        out += b"070701" + b"".join(b"%08X" % f for f in fields) + name
        out += bytes(-len(out) % 4)
        out += entry.data
        out += bytes(-len(out) % 4)
    return bytes(out)


def static_busybox(candidates: Sequence[Path] = (Path("/bin/busybox"),
                                                 Path("/usr/bin/busybox")),
                   arch: str = "x86_64") -> Path:
    """A statically linked busybox for `arch`: the initramfs has no C library for anything
    else."""
    for path in candidates:
        if path.is_file() and is_static_for(path, arch):
            return path
    raise BuildError(f"no statically linked {arch} busybox found (the load-test VM's /init "
                     "runs on it)", hint="install Debian's busybox-static")


def is_static_for(path: Path, arch: str) -> bool:
    """Whether `path` is an ELF program for `arch` that needs no dynamic loader."""
    try:
        with path.open("rb") as stream:
            elf = ELFFile(stream)
            return elf["e_machine"] == ELF_MACHINES.get(arch) and \
                not any(s["p_type"] == "PT_INTERP" for s in elf.iter_segments())
    except (ELFError, OSError):
        return False
