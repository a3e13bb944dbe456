"""loadtest/vm.py without booting: the QEMU command line, VM settings, virtiofsd, and the
console watcher. The one real boot is in tests/e2e/test_loadtest_boot.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from builder.core.errors import BuildError, InputError
from builder.loadtest import vm as vm_module
from builder.loadtest.initramfs import params
from builder.loadtest.vm import (
    LEGACY,
    MACHINES,
    QEMU_OVERHEAD_MB,
    RUST,
    Boot,
    Virtiofsd,
    Vm,
    VmSettings,
    VmUnavailable,
    check_settings,
    default_jobs,
    find_qemu,
    find_virtiofsd,
    memory_available_mb,
    virtiofsd_argv,
    virtiofsd_kind,
)

HOSTILE = "/tmp/it's a $(reboot) \"work\" dir,with;`commas`"


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


ARM64 = MACHINES["aarch64"]


def _option_of(line: list[str], flag: str) -> str:
    return line[line.index(flag) + 1]


@pytest.mark.parametrize(("arch", "board", "cpu", "console", "memory", "cpus"), [
    ("x86_64", "q35,accel=tcg", "max", "console=ttyS0 panic=-1 quiet", "1536", "2"),
    # neoverse-n1: fast under TCG and boots the 16k-page kernels; PL011 is ttyAMA0
    ("aarch64", "virt,accel=tcg", "neoverse-n1", "console=ttyAMA0 panic=-1 quiet", "256", "1"),
])
def test_each_architecture_boots_on_its_own_board(tmp_path: Path, arch: str, board: str,
                                                  cpu: str, console: str, memory: str,
                                                  cpus: str) -> None:
    machine = MACHINES[arch]
    vm = Vm(VmSettings(accel="tcg"), machine.qemu, machine)
    line = vm.command("tcg", Path("/k"), Path("/i"), tmp_path, tmp_path / "c")
    assert line[0] == f"qemu-system-{arch}"
    assert (_option_of(line, "-machine"), _option_of(line, "-cpu"), _option_of(line, "-append"),
            _option_of(line, "-m"), _option_of(line, "-smp")) == (board, cpu, console, memory,
                                                                  cpus)
    # the same virtio-pci 9p devices on both boards: the same modules and tags in the guest
    assert line.count("-device") == 2 and "virtio-9p-pci,fsdev=work,mount_tag=work" in line
    given = Vm(VmSettings(accel="tcg", memory_mb=768, cpus=3), machine.qemu, machine)
    assert given.command("tcg", Path("/k"), Path("/i"), tmp_path, tmp_path / "c")[5:9] == \
        ["-m", "768", "-smp", "3"]


@pytest.mark.parametrize("share", ["9p", "virtiofs"])
def test_a_guest_of_another_architecture_also_gets_its_own_root_read_only(
        tmp_path: Path, share: str) -> None:
    vm = Vm(VmSettings(accel="tcg"), ARM64.qemu, ARM64)
    root = tmp_path / "guestroot" / "abc"
    line = vm.command("tcg", Path("/k"), Path("/i"), tmp_path, tmp_path / "c", share, root)
    if share == "9p":
        assert f"local,id=guestroot,path={root},security_model=none,readonly=on," \
               "multidevs=remap" in line
        assert "virtio-9p-pci,fsdev=guestroot,mount_tag=guestroot" in line
    else:
        assert f"socket,id=guestroot,path={tmp_path}/guestroot.sock" in line
        assert "memory-backend-memfd,id=mem,size=256M,share=on" in line
    assert line.count("-device") == 3
    assert [e.tag for e in vm_module.exports(tmp_path, root)] == ["hostroot", "work",
                                                                    "guestroot"]
    assert [e.readonly for e in vm_module.exports(tmp_path, root)] == [True, False, True]


def _boots(monkeypatch: pytest.MonkeyPatch, reaches_init: dict[str, bool]) -> list[str]:
    """Vm._shared stood in for: each boot says whether it reached /init by accel and arch."""
    said: list[str] = []

    def shared(self: Vm, accel: str, *args: object) -> Boot:
        said.append(f"{self.machine.arch}/{accel}")
        reached = reaches_init.get(f"{self.machine.arch}/{accel}", True)
        return Boot(accel, "9p", 1.0, reached, reached, "" if reached else "no sign of /init")

    monkeypatch.setattr(Vm, "_shared", shared)
    monkeypatch.setattr(vm_module, "kvm_usable", lambda: True)
    monkeypatch.setattr(vm_module, "host_arch", lambda: "x86_64")
    return said


def test_kvm_only_for_this_machines_architecture(monkeypatch: pytest.MonkeyPatch) -> None:
    """An arm64 guest on an x86_64 machine never asks for KVM; its failures leave the
    x86_64 boots on KVM; an x86_64 KVM boot that never reaches /init turns that Vm to TCG."""
    said = _boots(monkeypatch, {"aarch64/tcg": False})
    x86 = Vm(VmSettings(), "qemu-system-x86_64", MACHINES["x86_64"])
    arm = Vm(VmSettings(), ARM64.qemu, ARM64)
    for vm in (arm, x86, arm, x86):
        vm.boot(Path("/k"), Path("/i"), Path("/w"))
    assert said == ["aarch64/tcg", "x86_64/kvm", "aarch64/tcg", "x86_64/kvm"]
    said.clear()
    failing = _boots(monkeypatch, {"x86_64/kvm": False})
    x86 = Vm(VmSettings(), "qemu-system-x86_64", MACHINES["x86_64"])
    x86.boot(Path("/k"), Path("/i"), Path("/w"))
    x86.boot(Path("/k"), Path("/i"), Path("/w"))
    assert failing == ["x86_64/kvm", "x86_64/tcg", "x86_64/tcg"]


def test_kvm_asked_for_a_guest_it_cannot_run_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vm_module, "host_arch", lambda: "x86_64")
    with pytest.raises(VmUnavailable, match="--accel kvm: KVM runs only x86_64 guests on this "
                                            "x86_64 machine, not aarch64 ones"):
        Vm(VmSettings(accel="kvm"), ARM64.qemu, ARM64)


def test_a_missing_emulator_names_the_debian_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("builder.loadtest.vm.shutil.which", lambda name: None)
    with pytest.raises(VmUnavailable) as missing:
        find_qemu(ARM64)
    assert missing.value.message.startswith("qemu-system-aarch64 is not installed (Debian's "
                                            "qemu-system-arm;")
    assert missing.value.hint == "install Debian's qemu-system-arm"
    assert missing.value.exit_code == 5     # for this machine's own architecture: exit 5


@pytest.mark.parametrize(("cores", "available", "settings", "arches", "jobs"), [
    (2, 24_000, VmSettings(), ("x86_64",), 2),             # this kind of machine: the cores
    (4, 16_000, VmSettings(), ("x86_64", "aarch64"), 4),   # a GitHub runner
    (16, 4_000, VmSettings(), ("x86_64",), 4000 // (1536 + QEMU_OVERHEAD_MB)),  # memory
    (16, 4_000, VmSettings(), ("aarch64",), 4000 // (256 + QEMU_OVERHEAD_MB)),
    (16, 4_000, VmSettings(memory_mb=4096), ("aarch64",), 1),  # never fewer than one
    (3, 0, VmSettings(), ("x86_64",), 3),                  # memory unknown: the cores
])
def test_as_many_vms_as_cores_and_memory_allow(cores: int, available: int,
                                               settings: VmSettings, arches: tuple[str, ...],
                                               jobs: int) -> None:
    machines = [MACHINES[a] for a in arches]
    assert default_jobs(settings, machines, cores=cores, available_mb=available) == jobs


def test_free_memory_is_memavailable(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24576000 kB\nMemFree:         1000 kB\n"
                       "MemAvailable:   20480000 kB\n")
    assert memory_available_mb(meminfo) == 20000
    meminfo.write_text("MemTotal:       24576000 kB\n")
    assert memory_available_mb(meminfo) == 0
    assert memory_available_mb(tmp_path / "missing") == 0


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
    monkeypatch.setattr(os, "geteuid", lambda: 0)
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
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert find_virtiofsd((tmp_path / "libexec" / "virtiofsd", tmp_path / "qemu" / "virtiofsd")) \
        is None
    not_a_daemon = _fake_daemon(tmp_path / "cat", "usage: cat [FILE]\n")
    assert find_virtiofsd((not_a_daemon,)) is None
    rust = _fake_daemon(tmp_path / "libexec" / "virtiofsd", RUST_HELP)
    assert find_virtiofsd((rust,)) == Virtiofsd(rust, RUST)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert find_virtiofsd((rust,)) is None
    monkeypatch.setattr(vm_module, "VIRTIOFSD", (rust,))
    assert vm_module.shares_here() == ("9p",)
    with pytest.raises(BuildError, match="virtiofs needs a virtiofsd and root") as refused, \
            vm_module._virtiofsd(tmp_path, vm_module.exports(tmp_path)):
        pass
    assert refused.value.hint == ("install Debian's virtiofsd (Debian 13) or "
                                  "qemu-system-x86 (Debian 12) and run as root")


def test_a_virtiofs_boot_starts_one_daemon_per_share_and_stops_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """_virtiofsd with a stand-in Rust daemon: the argv it is given, then stopped."""
    monkeypatch.setattr(os, "geteuid", lambda: 0)
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
    with vm_module._virtiofsd(work, vm_module.exports(work)):
        assert (work / "hostroot.sock").exists() and (work / "work.sock").exists()
    assert (tmp_path / "started").read_text().splitlines() == [
        f"--socket-path {work}/hostroot.sock --shared-dir / --cache always --sandbox chroot "
        "--readonly",
        f"--socket-path {work}/work.sock --shared-dir {work} --cache never --sandbox chroot"]
    for pid in (tmp_path / "pids").read_text().split():  # stopped and reaped
        with pytest.raises(ProcessLookupError):
            os.kill(int(pid), 0)


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
