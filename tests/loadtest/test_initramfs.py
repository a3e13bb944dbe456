"""loadtest/initramfs.py: the guest's initramfs (newc), /init and its /params quoting."""

from __future__ import annotations

import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from fakeprobe import make_fake_probe

from builder.core.errors import BuildError
from builder.loadtest.initramfs import (
    INIT,
    build_initramfs,
    is_static_for,
    newc,
    params,
    static_busybox,
)
from builder.loadtest.kernelimage import KernelModule

EM_AARCH64 = 183

HOSTILE = "/tmp/it's a $(reboot) \"work\" dir,with;`commas`"


def _cpio_members(data: bytes) -> dict[str, tuple[int, bytes, tuple[int, int]]]:
    """name -> (mode, data, rdev), read back from newc bytes by the format's rules."""
    out: dict[str, tuple[int, bytes, tuple[int, int]]] = {}
    at = 0
    while True:
        header = data[at:at + 110]
        assert header[:6] == b"070701"
        fields = [int(header[6 + 8 * i:14 + 8 * i], 16) for i in range(13)]
        mode, size, rdev, name_size = fields[1], fields[6], (fields[9], fields[10]), fields[11]
        name = data[at + 110:at + 110 + name_size - 1].decode()
        at += 110 + name_size
        at += -at % 4
        body = data[at:at + size]
        at += size
        at += -at % 4
        if name == "TRAILER!!!":
            return out
        out[name] = (mode, body, rdev)


def _module(tmp_path: Path, name: str, depends: tuple[str, ...] = ()) -> KernelModule:
    path = tmp_path / f"{name}.ko"
    path.write_bytes(b"\x7fELF" + name.encode())
    return KernelModule(name, path, depends)


def test_initramfs_holds_init_params_busybox_and_modules_in_order(tmp_path: Path) -> None:
    busybox = tmp_path / "busybox"
    busybox.write_bytes(b"static busybox")
    modules = [_module(tmp_path, "virtio_ring"), _module(tmp_path, "9p", ("virtio_ring",))]
    command = ["/venv/bin/python", "-m", "builder.loadtest.guest", "/w/job.json"]
    data = build_initramfs(busybox, modules, Path("/w"), "/src", command)
    assert data == build_initramfs(busybox, modules, Path("/w"), "/src", command)  # reproducible
    members = _cpio_members(data)
    assert set(members) == {"bin", "dev", "modules", "newroot", "proc", "sys", "dev/console",
                            "init", "params", "bin/busybox", "modules/00-virtio_ring.ko",
                            "modules/01-9p.ko"}
    mode, body, _ = members["init"]
    assert stat.S_ISREG(mode) and mode & 0o111 and body == INIT.encode()
    assert members["bin/busybox"][1] == b"static busybox"
    assert members["modules/01-9p.ko"][1] == b"\x7fELF9p"
    assert stat.S_ISCHR(members["dev/console"][0]) and members["dev/console"][2] == (5, 1)
    assert "MODULES='00-virtio_ring.ko 01-9p.ko'" in members["params"][1].decode()


def test_newc_is_what_cpio_reads(tmp_path: Path) -> None:
    cpio = shutil.which("cpio")
    if cpio is None:
        pytest.skip("cpio is not installed (make deps installs it)")
    busybox = tmp_path / "busybox"
    busybox.write_bytes(b"x" * 1001)
    data = build_initramfs(busybox, [_module(tmp_path, "netfs")], Path("/w"), "/src", ["true"])
    listing = subprocess.run([cpio, "-it", "--quiet"], input=data, capture_output=True,
                             check=True).stdout.decode().split()
    assert listing == ["bin", "dev", "modules", "newroot", "proc", "sys", "dev/console", "init",
                       "params", "bin/busybox", "modules/00-netfs.ko"]
    assert newc([]).startswith(b"070701") and b"TRAILER!!!" in newc([])


def test_params_survive_hostile_paths_in_a_real_shell(tmp_path: Path) -> None:
    """Whatever the work folder and Python are called, /init sees exactly those strings."""
    text = params(["00-a.ko"], Path(HOSTILE), "/src dir/$HOME", [HOSTILE + "/py", "-c", "x;y"])
    (tmp_path / "params").write_text(text)
    script = '. ./params; printf "%s\\n" "$WORK" "$GUEST_PYTHONPATH" "$#" "$@"'
    out = subprocess.run(["sh", "-c", script], cwd=tmp_path, capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out == [HOSTILE, "/src dir/$HOME", "3", HOSTILE + "/py", "-c", "x;y"]


def test_init_script_is_valid_shell() -> None:
    subprocess.run(["sh", "-n", "-c", INIT], check=True)


def test_static_busybox_refuses_a_dynamic_binary(tmp_path: Path) -> None:
    dynamic = Path(shutil.which("sh") or "/bin/sh").resolve()
    with pytest.raises(BuildError, match="no statically linked x86_64 busybox") as refused:
        static_busybox([dynamic, tmp_path / "missing"])
    assert refused.value.hint == "install Debian's busybox-static"
    assert refused.value.exit_code == 5
    found = Path("/bin/busybox")
    if found.is_file():
        assert static_busybox([dynamic, found]) == found


def test_a_busybox_must_be_of_the_guests_architecture(tmp_path: Path) -> None:
    """An arm64 guest cannot run this machine's busybox, nor an x86_64 guest an arm64 one."""
    arm64 = make_fake_probe(tmp_path / "busybox", machine=EM_AARCH64)  # ELF, no PT_INTERP
    assert is_static_for(arm64, "aarch64") and not is_static_for(arm64, "x86_64")
    assert not is_static_for(tmp_path / "missing", "aarch64")
    with pytest.raises(BuildError, match="no statically linked x86_64 busybox"):
        static_busybox([arm64])
    assert static_busybox([arm64], arch="aarch64") == arm64


# /init run by a real shell with a busybox that only says what it was asked: which share
# becomes the root, where the host's root and the work folder go, what runs.
FAKE_BUSYBOX = """#!/bin/sh
echo "$*" >> "$(dirname "$0")/calls"
case "$1" in cut) echo 1.5;; esac
exit 0
"""


@pytest.mark.parametrize(("host_at", "mounts"), [
    ("", ["mount -t 9p -o {ro} hostroot /newroot",
          "mount -t 9p -o {rw} work /newroot/w"]),
    # another architecture: its own root, this machine's at /host, the work folder under it
    ("/host", ["mount -t 9p -o {ro} guestroot /newroot",
               "mount -t 9p -o {ro} hostroot /newroot/host",
               "mount -t 9p -o {rw} work /newroot/host/w"]),
])
def test_init_chroots_into_the_right_root(tmp_path: Path, host_at: str,
                                          mounts: list[str]) -> None:
    busybox = tmp_path / "busybox"
    busybox.write_text(FAKE_BUSYBOX)
    busybox.chmod(0o755)
    (tmp_path / "params").write_text(params(["00-9p.ko"], Path("/w"), "/py", ["/py3", "-m", "g"],
                                            "9p", host_at))
    script = INIT.replace("B=/bin/busybox", f"B={busybox}").replace(
        ". /params", f". {tmp_path / 'params'}")
    subprocess.run(["sh", "-c", script], check=True, capture_output=True)
    calls = (tmp_path / "calls").read_text().splitlines()
    ro = "trans=virtio,version=9p2000.L,msize=512000,ro,cache=loose"
    rw = "trans=virtio,version=9p2000.L,msize=512000,rw"
    shared = [c for c in calls if c.startswith("mount -t 9p")]
    assert shared == [m.format(ro=ro, rw=rw) for m in mounts]
    assert "mount -t tracefs tracefs /newroot/sys/kernel/tracing" in calls
    assert calls.index("insmod /modules/00-9p.ko") < calls.index(shared[0])
    ran = [c for c in calls if c.startswith("env ")]
    assert ran == ["env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "
                   "HOME=/ LC_ALL=C.UTF-8 PYTHONDONTWRITEBYTECODE=1 PYTHONPATH=/py "
                   f"{busybox} chroot /newroot /py3 -m g"]
    assert calls.index(ran[0]) > calls.index(shared[-1]) and calls[-2:] == ["sync", "poweroff -f"]
