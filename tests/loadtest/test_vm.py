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
