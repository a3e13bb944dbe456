"""The load test's VM parts without booting: initramfs, /params quoting, module order, QEMU line.

The one real boot is in test_loadtest_boot.py.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from builder.core.errors import BuildError, InputError
from builder.loadtest import vm as vm_module
from builder.loadtest.initramfs import INIT, build_initramfs, newc, params, static_busybox
from builder.loadtest.kernelimage import (
    KernelModule,
    KernelUnavailable,
    headers_version,
    image_from_tree,
    load_order,
    module_name,
)
from builder.loadtest.vm import (
    LEGACY,
    RUST,
    Virtiofsd,
    Vm,
    VmSettings,
    check_settings,
    find_virtiofsd,
    virtiofsd_argv,
    virtiofsd_kind,
)

HOSTILE = "/tmp/it's a $(reboot) \"work\" dir,with;`commas`"


def _cpio_members(data: bytes) -> dict[str, tuple[int, bytes, tuple[int, int]]]:
    """name -> (mode, data, rdev), read back from newc bytes by the format's rules."""
    out = {}
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


def test_modules_load_after_what_they_depend_on(tmp_path: Path) -> None:
    index = {m.name: m for m in [
        _module(tmp_path, "9p", ("9pnet", "netfs", "fscache")),
        _module(tmp_path, "9pnet"), _module(tmp_path, "netfs"),
        _module(tmp_path, "fscache", ("netfs",)),
        _module(tmp_path, "9pnet_virtio", ("virtio", "9pnet", "virtio_ring")),
        _module(tmp_path, "virtio", ("virtio_ring",)), _module(tmp_path, "virtio_ring"),
        _module(tmp_path, "virtio_pci", ("virtio_ring", "virtio")),
    ]}
    order = [m.name for m in load_order(index, ("virtio_pci", "9pnet_virtio", "9p"), set())]
    assert order == ["virtio_ring", "virtio", "virtio_pci", "9pnet", "9pnet_virtio", "netfs",
                     "fscache", "9p"]
    builtin = [m.name for m in load_order(index, ("virtio_pci", "9pnet_virtio", "9p"),
                                          {"virtio", "virtio_ring", "virtio_pci"})]
    assert builtin == ["9pnet", "9pnet_virtio", "netfs", "fscache", "9p"]


def test_a_missing_or_circular_module_makes_the_kernel_unavailable(tmp_path: Path) -> None:
    index = {"9p": _module(tmp_path, "9p", ("netfs",))}
    with pytest.raises(KernelUnavailable, match="no module netfs \\(needed by 9p\\)"):
        load_order(index, ("9p",), set())
    index = {"a": _module(tmp_path, "a", ("b",)), "b": _module(tmp_path, "b", ("a",))}
    with pytest.raises(KernelUnavailable, match="circle: a -> b -> a"):
        load_order(index, ("a",), set())


@pytest.mark.parametrize(("path", "name"), [
    ("kernel/net/9p/9pnet_virtio.ko", "9pnet_virtio"),
    ("kernel/drivers/virtio/virtio_pci.ko.xz", "virtio_pci"),
    ("kernel/fs/fscache/fs-cache.ko.zst", "fs_cache"),
])
def test_module_names_are_the_kernels(path: str, name: str) -> None:
    assert module_name(path) == name


def test_headers_version_is_the_headers_packages() -> None:
    headers = ({"name": "linux-headers-6.1.0-56-common_6.1.192-2_all.deb"},
               {"name": "linux-headers-6.1.0-56-amd64_6.1.192-2_amd64.deb"})
    assert headers_version("6.1.0-56-amd64", headers, "x") == "6.1.192-2"
    epoch = ({"name": "linux-headers-6.12.9+deb12-amd64_1%3a6.12.9-1~bpo12_amd64.deb"},)
    assert headers_version("6.12.9+deb12-amd64", epoch, "x") == "1:6.12.9-1~bpo12"
    assert headers_version("6.1.0-56-amd64", (), "6.1.192-2") == "6.1.192-2"


def test_qemu_shares_the_root_read_only_and_the_work_folder_writable(tmp_path: Path) -> None:
    vm = Vm(VmSettings(accel="tcg", memory_mb=512, cpus=1), "qemu-system-x86_64")
    work = Path(HOSTILE)
    line = vm.command("tcg", Path("/k/vmlinuz"), Path("/k/initrd"), work, work / "console")
    joined = " ".join(line)
    assert "q35,accel=tcg" in line and line[line.index("-cpu") + 1] == "max"
    assert "local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap" in line
    assert f"local,id=work,path={HOSTILE.replace(',', ',,')},security_model=none" in line
    assert "-no-reboot" in line and "-nodefaults" in line and "-m 512 -smp 1" in joined
    assert vm.command("kvm", Path("/k"), Path("/i"), work, work / "c")[4] == "host"


@pytest.mark.parametrize(("settings", "message"), [
    (VmSettings(accel="xen"), "--accel"),
    (VmSettings(memory_mb=64), "--memory"),
    (VmSettings(cpus=0), "--cpus"),
    (VmSettings(timeout=0), "--timeout"),
])
def test_vm_settings_are_checked(settings: VmSettings, message: str) -> None:
    with pytest.raises(InputError, match=message):
        check_settings(settings)


def test_virtiofs_boots_share_the_guests_memory_with_two_daemons(tmp_path: Path) -> None:
    vm = Vm(VmSettings(accel="tcg", memory_mb=768), "qemu-system-x86_64")
    line = vm.command("tcg", Path("/k"), Path("/i"), tmp_path, tmp_path / "c", "virtiofs")
    assert "memory-backend-memfd,id=mem,size=768M,share=on" in line
    assert f"socket,id=hostroot,path={tmp_path}/hostroot.sock" in line
    assert "vhost-user-fs-pci,chardev=work,tag=work" in line
    assert not any(part.startswith("local,") for part in line)  # no 9p export
    text = params(["00-virtiofs.ko"], Path("/w"), "/src", ["true"], "virtiofs")
    assert "SHARE=virtiofs\nROOT_OPTIONS=ro\nWORK_OPTIONS=rw\n" in text


# What each virtiofsd's --help says, cut down: Debian 13's Rust one (1.13) and QEMU 7.2's C one.
RUST_HELP = """Launch a virtiofsd backend.

Usage: virtiofsd --shared-dir <SHARED_DIR> --socket-path <SOCKET_PATH> [OPTIONS]

      --socket-path <SOCKET_PATH>
      --sandbox <SANDBOX>     Sandbox mechanism (namespace, chroot, none)
      --readonly              Prevent the guest from making modifications to the filesystem
      --cache <CACHE>         The caching policy (auto, always, never, metadata)
  -o <COMPAT_OPTIONS>         Options in a format compatible with the legacy implementation
"""
LEGACY_HELP = """usage: /usr/lib/qemu/virtiofsd [options]

    -o cache=<mode>            cache mode. could be one of "auto, always, none"
    -o sandbox=namespace|chroot
    -o source=PATH             shared directory tree
    --socket-path=PATH         path for the vhost-user socket
"""


@pytest.mark.parametrize(("help_text", "kind"), [
    (RUST_HELP, RUST), (LEGACY_HELP, LEGACY), ("usage: cat [OPTION]... [FILE]...", None)])
def test_the_kind_of_virtiofsd_is_what_its_help_offers(help_text: str, kind: str | None) -> None:
    assert virtiofsd_kind(help_text) == kind


SOCK = Path("/w/hostroot.sock")


@pytest.mark.parametrize(("kind", "source", "readonly", "argv"), [
    (RUST, "/", True, ["/d", "--socket-path", "/w/hostroot.sock", "--shared-dir", "/",
                       "--cache", "always", "--sandbox", "chroot", "--readonly"]),
    (RUST, HOSTILE, False, ["/d", "--socket-path", "/w/hostroot.sock", "--shared-dir", HOSTILE,
                            "--cache", "never", "--sandbox", "chroot"]),
    # the C one has no read-only mode (the guest mounts the root read-only) and splits
    # its -o options at commas unless escaped
    (LEGACY, "/", True, ["/d", "--socket-path=/w/hostroot.sock", "-o", "source=/",
                         "-o", "cache=always", "-o", "sandbox=chroot"]),
    (LEGACY, "/w/a,b\\c", False, ["/d", "--socket-path=/w/hostroot.sock",
                                   "-o", "source=/w/a\\,b\\\\c",
                                   "-o", "cache=none", "-o", "sandbox=chroot"]),
])
def test_each_virtiofsd_gets_its_own_options(kind: str, source: str, readonly: bool,
                                             argv: list[str]) -> None:
    daemon = Virtiofsd(Path("/d"), kind)
    assert virtiofsd_argv(daemon, SOCK, Path(source), readonly=readonly) == argv


def _fake_daemon(path: Path, help_text: str, code: int = 0) -> Path:
    """A stand-in virtiofsd that prints `help_text` and counts how often it was asked."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\necho asked >> '{path}.asked'\ncat <<'EOF'\n{help_text}EOF\n"
                    f"exit {code}\n")
    path.chmod(0o755)
    return path


def test_the_rust_virtiofsd_wins_whatever_its_path(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vm_module.os, "geteuid", lambda: 0)
    legacy = _fake_daemon(tmp_path / "lib" / "virtiofsd", LEGACY_HELP)
    rust = _fake_daemon(tmp_path / "libexec" / "virtiofsd", RUST_HELP)
    broken = _fake_daemon(tmp_path / "broken" / "virtiofsd", RUST_HELP, code=1)
    assert find_virtiofsd((legacy, rust)) == Virtiofsd(rust, RUST)
    assert find_virtiofsd((rust, legacy)) == Virtiofsd(rust, RUST)
    assert find_virtiofsd((tmp_path / "none", legacy)) == Virtiofsd(legacy, LEGACY)
    assert find_virtiofsd((broken, legacy)) == Virtiofsd(legacy, LEGACY)  # --help failed
    # each daemon's help is read once per run
    assert Path(f"{rust}.asked").read_text() == "asked\n"
    assert Path(f"{legacy}.asked").read_text() == "asked\n"
    # Debian 13 links the Rust one to QEMU's old path: its help decides, not the path
    link = tmp_path / "qemu" / "virtiofsd"
    link.parent.mkdir()
    link.symlink_to(rust)
    assert find_virtiofsd((link,)) == Virtiofsd(link, RUST)


def test_no_virtiofsd_without_one_or_without_root(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vm_module.os, "geteuid", lambda: 0)
    assert find_virtiofsd((tmp_path / "libexec" / "virtiofsd", tmp_path / "qemu" / "virtiofsd")) \
        is None
    not_a_daemon = _fake_daemon(tmp_path / "cat", "usage: cat [FILE]\n")
    assert find_virtiofsd((not_a_daemon,)) is None
    rust = _fake_daemon(tmp_path / "libexec" / "virtiofsd", RUST_HELP)
    assert find_virtiofsd((rust,)) == Virtiofsd(rust, RUST)
    monkeypatch.setattr(vm_module.os, "geteuid", lambda: 1000)
    assert find_virtiofsd((rust,)) is None
    monkeypatch.setattr(vm_module, "VIRTIOFSD", (rust,))
    assert vm_module.shares_here() == ("9p",)
    with pytest.raises(BuildError, match="virtiofs needs a virtiofsd and root") as refused, \
            vm_module._virtiofsd(tmp_path):
        pass
    assert refused.value.hint == ("install Debian's virtiofsd (Debian 13) or "
                                  "qemu-system-x86 (Debian 12) and run as root")


def test_a_virtiofs_boot_starts_one_daemon_per_share_and_stops_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """_virtiofsd with a stand-in Rust daemon: the argv it is given, then stopped."""
    monkeypatch.setattr(vm_module.os, "geteuid", lambda: 0)
    daemon = tmp_path / "libexec" / "virtiofsd"
    daemon.parent.mkdir()
    daemon.write_text(f"""#!/bin/sh
case "$1" in --help) printf '%s' '{RUST_HELP}'; exit 0;; esac
printf '%s\\n' "$*" >> '{tmp_path}/started'
echo $$ >> '{tmp_path}/pids'
: > "$2"
exec sleep 60
""")
    daemon.chmod(0o755)
    monkeypatch.setattr(vm_module, "VIRTIOFSD", (tmp_path / "none", daemon))
    work = tmp_path / "work"
    work.mkdir()
    with vm_module._virtiofsd(work):
        assert (work / "hostroot.sock").exists() and (work / "work.sock").exists()
    assert (tmp_path / "started").read_text().splitlines() == [
        f"--socket-path {work}/hostroot.sock --shared-dir / --cache always --sandbox chroot "
        "--readonly",
        f"--socket-path {work}/work.sock --shared-dir {work} --cache never --sandbox chroot"]
    for pid in (tmp_path / "pids").read_text().split():  # stopped and reaped
        with pytest.raises(ProcessLookupError):
            os.kill(int(pid), 0)


def _real_module(folder: Path, name: str, depends: str) -> None:
    """A kernel module stand-in: a real ELF object with the .modinfo a module has."""
    clang = shutil.which("clang")
    if clang is None:
        pytest.skip("clang is not installed (make deps installs it)")
    source = f'__attribute__((section(".modinfo"), used)) char info[] = "depends={depends}";'
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run([clang, "-c", "-x", "c", "-", "-o", str(folder / f"{name}.ko")],
                   input=source.encode(), check=True)


def _kernel_tree(root: Path, release: str, modules: dict[str, str]) -> Path:
    (root / "boot").mkdir(parents=True)
    (root / "boot" / f"vmlinuz-{release}").write_bytes(b"kernel")
    kernel = root / "lib" / "modules" / release / "kernel"
    for name, depends in modules.items():
        _real_module(kernel / "drivers", name, depends)
    (root / "lib" / "modules" / release / "modules.builtin").write_text(
        "kernel/drivers/virtio/virtio_ring.ko\n")
    return root


VIRTIO = {"virtio": "virtio_ring", "virtio_pci": "virtio_ring,virtio"}
NINE_P = {"9pnet": "", "9pnet_virtio": "virtio,9pnet,virtio_ring", "9p": "9pnet"}
VIRTIOFS = {"fuse": "", "virtiofs": "fuse,virtio,virtio_ring"}


@pytest.mark.parametrize(("modules", "shares", "share", "order"), [
    ({**VIRTIO, **NINE_P, **VIRTIOFS}, ("9p", "virtiofs"), "9p",
     ["virtio", "virtio_pci", "9pnet", "9pnet_virtio", "9p"]),
    # Debian's cloud flavors have no 9p: virtiofs, when this host can run virtiofsd.
    ({**VIRTIO, **VIRTIOFS}, ("9p", "virtiofs"), "virtiofs",
     ["virtio", "virtio_pci", "fuse", "virtiofs"]),
])
def test_the_share_is_the_first_the_kernel_has_modules_for(
        tmp_path: Path, modules: dict[str, str], shares: tuple[str, ...], share: str,
        order: list[str]) -> None:
    tree = _kernel_tree(tmp_path, "6.1.0-9-cloud-amd64", modules)
    image = image_from_tree(tree, "6.1.0-9-cloud-amd64", "linux-image-x", shares)
    assert image.share == share
    assert [m.name for m in image.modules] == order  # virtio_ring is built in


def test_a_kernel_without_a_usable_share_is_unavailable(tmp_path: Path) -> None:
    tree = _kernel_tree(tmp_path, "6.1.0-9-cloud-amd64", {**VIRTIO, **VIRTIOFS})
    with pytest.raises(KernelUnavailable) as raised:
        image_from_tree(tree, "6.1.0-9-cloud-amd64", "linux-image-x", ("9p",))
    # What the kernel lacks, and the share it has that this host does not offer.
    assert raised.value.message == (
        "the VM could not see this machine's files: 9p: the kernel has no module "
        "9pnet_virtio and it is not built in; virtiofs: this host runs no virtiofsd (it "
        "needs root and Debian's "
        "virtiofsd on Debian 13, qemu-system-x86 on Debian 12)")


def test_the_console_says_how_far_the_boot_got(tmp_path: Path) -> None:
    from builder.loadtest.vm import _Console

    console = tmp_path / "console.log"
    said: list[str] = []
    watcher = _Console(console, said.append)
    console.write_bytes(b"[    0.1] Linux version 6.1.0\r\n"
                        b"falco-probes-vm: init at 2.1 s\r\nfalco-p")
    watcher.read()
    assert watcher.reached_init and not watcher.finished
    assert said == ["falco-probes-vm: init at 2.1 s"]  # the cut line waits for its end
    with console.open("ab") as out:
        out.write(b"robes-vm: loading x.o\nTraceback ...\n"
                  b"[ 9.0] falco-probes-vm: guest exited with 1 at 9.0 s\n")
    watcher.read()
    assert watcher.finished and watcher.guest_code == 1
    assert said[1:] == ["falco-probes-vm: loading x.o",
                        "falco-probes-vm: guest exited with 1 at 9.0 s"]
    assert "Traceback ...\n" in watcher.text
