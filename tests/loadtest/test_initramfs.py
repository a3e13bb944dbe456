"""loadtest/initramfs.py: the guest's initramfs (newc), /init and its /params quoting."""

from __future__ import annotations

import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from builder.core.errors import BuildError
from builder.loadtest.initramfs import INIT, build_initramfs, newc, params, static_busybox
from builder.loadtest.kernelimage import KernelModule

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
    with pytest.raises(BuildError, match="no statically linked busybox") as refused:
        static_busybox([dynamic, tmp_path / "missing"])
    assert refused.value.hint == "install Debian's busybox-static"
    assert refused.value.exit_code == 5
    found = Path("/bin/busybox")
    if found.is_file():
        assert static_busybox([dynamic, found]) == found
