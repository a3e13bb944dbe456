"""loadtest/guestroot.py: a guest's own user space from Debian packages, without a VM.

The packages here are .debs made for the test (tests/helpers/archives.py) holding this
machine's own interpreter, one of its extension modules and its static busybox, so the
checks read real ELF programs; the libraries they need are stand-ins, present or not.
The real arm64 root boots in tests/e2e/test_loadtest_boot.py.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from archives import Entry, deb, file, symlink

from builder.core.records import HeaderPackage
from builder.loadtest.guestroot import (
    FORMAT,
    PACKAGES_FILE,
    GuestRootUnavailable,
    guest_root,
    guest_suites,
    python_minor,
    root_key,
    root_packages,
)
from builder.shared.apt import AptArchive
from builder.shared.fetch import Cache

MINOR = sys.version_info.minor
TRIPLET = "x86_64-linux-gnu"
PYTHON = Path(sys.executable).resolve()
CTYPES = Path(f"/usr/lib/python3.{MINOR}/lib-dynload/_ctypes.cpython-3{MINOR}-{TRIPLET}.so")
BUSYBOX = Path("/bin/busybox")
LIB = f"lib/{TRIPLET}"


def _contents() -> dict[str, list[Entry]]:
    """What each package of an x86_64 root holds, as Debian 12 lays it out."""
    return {
        f"python3.{MINOR}-minimal": [file(f"usr/bin/python3.{MINOR}", PYTHON.read_bytes(),
                                          0o755)],
        f"libpython3.{MINOR}-minimal": [file(f"usr/lib/python3.{MINOR}/os.py", b"x = 1\n")],
        f"libpython3.{MINOR}-stdlib": [
            file(f"usr/lib/python3.{MINOR}/lib-dynload/{CTYPES.name}", CTYPES.read_bytes()),
            file("usr/share/doc/libpython3-stdlib/copyright", b"trimmed\n")],
        "libc6": [file(f"{LIB}/libc.so.6"), file(f"{LIB}/libm.so.6"),
                  file(f"{LIB}/ld-linux-x86-64.so.2"),
                  # absolute, as Debian ships it: read inside the root, never on this machine
                  symlink("lib64/ld-linux-x86-64.so.2", f"/{LIB}/ld-linux-x86-64.so.2")],
        "zlib1g": [file(f"{LIB}/libz.so.1")],
        "libexpat1": [file(f"{LIB}/libexpat.so.1")],
        "libffi8": [file(f"usr/{LIB}/libffi.so.8")],
        "busybox-static": [file("bin/busybox", BUSYBOX.read_bytes() if BUSYBOX.is_file()
                                else b"", 0o755)],
    }


class Archive(AptArchive):
    """An archive offering these .debs (file:// URLs, with their sha256 and size)."""

    def __init__(self, folder: Path, contents: dict[str, list[Entry]]) -> None:  # no apt
        self.offered: dict[str, HeaderPackage] = {}
        folder.mkdir(parents=True, exist_ok=True)
        for name, entries in contents.items():
            path = folder / f"{name}_1.0-1_amd64.deb"
            path.write_bytes(deb(entries, "none"))
            data = path.read_bytes()
            self.offered[name] = HeaderPackage(path.name, path.as_uri(),
                                               hashlib.sha256(data).hexdigest(), len(data))

    def newest(self, wanted: Callable[[str], bool]) -> dict[str, HeaderPackage]:
        return {name: p for name, p in self.offered.items() if wanted(name)}


@pytest.fixture
def real_programs() -> None:
    if not (CTYPES.is_file() and BUSYBOX.is_file()):
        pytest.skip("needs this Python's _ctypes module and a static busybox (make deps)")


@pytest.mark.usefixtures("real_programs")
def test_a_root_is_built_once_checked_and_found_by_its_packages(tmp_path: Path) -> None:
    archive = Archive(tmp_path / "pool", _contents())
    cache, downloads = tmp_path / "guestroot", Cache(tmp_path / "downloads")
    root = guest_root("x86_64", archive, downloads, cache)
    key, lines = root_key(list(archive.offered.values()))
    assert (root.key, root.packages, root.path) == (key, lines, cache / key)
    assert root.python == f"/usr/bin/python3.{MINOR}"
    assert (root.path / PACKAGES_FILE).read_text() == "\n".join(lines) + "\n"
    assert root.busybox.read_bytes() == BUSYBOX.read_bytes()
    for mount_point in ("proc", "sys", "dev", "tmp", "host"):      # a read-only share has them
        assert (root.path / mount_point).is_dir()
    assert not (root.path / "usr" / "share" / "doc").exists()       # trimmed
    # this machine's Python is of the same minor version: the stdlib is byte-compiled
    assert list((root.path / "usr" / "lib" / f"python3.{MINOR}" / "__pycache__").glob("os.*"))
    assert [p.name for p in cache.iterdir()] == [key]               # no staging left behind
    # the same packages: the same root, nothing downloaded again
    for deb_file in (tmp_path / "pool").iterdir():
        deb_file.unlink()
    assert guest_root("x86_64", archive, downloads, cache) == root


@pytest.mark.usefixtures("real_programs")
@pytest.mark.parametrize(("package", "without", "problem"), [
    ("libffi8", f"usr/{LIB}/libffi.so.8",
     f"/usr/lib/python3.{MINOR}/lib-dynload/{CTYPES.name} needs libffi.so.8, which is missing"),
    ("zlib1g", f"{LIB}/libz.so.1", f"/usr/bin/python3.{MINOR} needs libz.so.1, which is missing"),
    # the link is there, what it names (inside the root) is not
    ("libc6", f"{LIB}/ld-linux-x86-64.so.2",
     f"/usr/bin/python3.{MINOR} needs the dynamic loader /lib64/ld-linux-x86-64.so.2, which "
     "is missing"),
    ("busybox-static", "bin/busybox", "/bin/busybox is not a static x86_64 program"),
])
def test_a_root_the_guest_could_not_run_is_refused_saying_what_it_lacks(
        tmp_path: Path, package: str, without: str, problem: str) -> None:
    contents = _contents()
    contents[package] = [e for e in contents[package] if e.name != without]
    archive = Archive(tmp_path / "pool", contents)
    with pytest.raises(GuestRootUnavailable) as refused:
        guest_root("x86_64", archive, Cache(tmp_path / "downloads"), tmp_path / "guestroot")
    assert refused.value.message.startswith("the x86_64 guest root made of "
                                            "busybox-static_1.0-1_amd64.deb, libc6_1.0-1_amd64.deb")
    assert refused.value.message.endswith(f"is not usable: {problem}")
    assert list((tmp_path / "guestroot").iterdir()) == []           # nothing half-made kept


@pytest.mark.parametrize(("offered", "host", "chosen"), [
    ({11}, 11, 11),
    ({11, 13}, 11, 11),      # this machine's version, whose .pyc files fit
    ({11, 13}, 12, 13),      # else the archive's newest
    ({13}, 11, 13),
])
def test_the_guests_python_is_this_machines_version_where_offered(
        offered: set[int], host: int, chosen: int) -> None:
    assert python_minor(offered, host) == chosen


@pytest.mark.parametrize(("offered", "have"), [({9}, "3.9"), (set(), "none")])
def test_a_python_older_than_the_loaders_floor_is_refused(offered: set[int], have: str) -> None:
    with pytest.raises(GuestRootUnavailable, match=f"too old \\(it has: {have}\\); the loader "
                                                   "needs 3.11 or newer"):
        python_minor(offered, 11)


def _offered(*names: str) -> dict[str, HeaderPackage]:
    return {n: HeaderPackage(f"{n}_1_arm64.deb", f"file:///{n}.deb", "0" * 64) for n in names}


def test_the_packages_are_the_chosen_pythons_and_its_libraries() -> None:
    found = _offered("python3.11-minimal", "libpython3.11-minimal", "libpython3.11-stdlib",
                     "python3.13-minimal",   # without its libraries: not a candidate
                     "libc6", "zlib1g", "libexpat1", "libffi8", "busybox-static")
    minor, packages = root_packages(found, "aarch64", host_minor=13)
    assert minor == 11
    assert [p.name.split("_")[0] for p in packages] == [
        "python3.11-minimal", "libpython3.11-minimal", "libpython3.11-stdlib", "libc6",
        "zlib1g", "libexpat1", "libffi8", "busybox-static"]
    del found["libffi8"], found["busybox-static"]
    with pytest.raises(GuestRootUnavailable, match="the archive has no aarch64 package "
                                                   "libffi8, busybox-static"):
        root_packages(found, "aarch64", host_minor=11)


def test_the_key_changes_with_any_package_and_only_then() -> None:
    packages = list(_offered("libc6", "zlib1g").values())
    key, lines = root_key(packages)
    assert root_key(list(reversed(packages))) == (key, lines)       # order does not matter
    assert lines == (f"libc6_1_arm64.deb {'0' * 64}", f"zlib1g_1_arm64.deb {'0' * 64}")
    newer = [packages[0], HeaderPackage("zlib1g_2_arm64.deb", "file:///z", "0" * 64)]
    rebuilt = [packages[0], HeaderPackage("zlib1g_1_arm64.deb", "file:///z", "1" * 64)]
    assert len({key, root_key(newer)[0], root_key(rebuilt)[0]}) == 3
    assert key == hashlib.sha256("\n".join((FORMAT, *lines)).encode()).hexdigest()[:20]


# --- one release: the guest's packages fit together ----------------------------------------

@pytest.mark.parametrize(("os_release", "suites"), [
    ('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\n'
     'VERSION_ID="12"\nVERSION_CODENAME=bookworm\nID=debian\n',
     ("bookworm", "bookworm-updates", "bookworm-security")),
    ('ID=debian\nVERSION_ID="13"\nVERSION_CODENAME=trixie\n',
     ("trixie", "trixie-updates", "trixie-security")),
    # sid names no VERSION_ID (its codename is the next release's): the load test's suites
    ('ID=debian\nVERSION_CODENAME=forky\n', ()),
    ('ID=ubuntu\nVERSION_ID="24.04"\nVERSION_CODENAME=noble\n', ()),
    ('ID=debian\nVERSION_ID="12"\nVERSION_CODENAME="../../etc"\n', ()),
    ('', ()),
])
def test_the_guest_root_reads_this_machines_own_release(
        os_release: str, suites: tuple[str, ...], tmp_path: Path) -> None:
    path = tmp_path / "os-release"
    path.write_text(os_release)
    assert guest_suites(path) == suites


def test_no_os_release_means_the_load_tests_own_suites(tmp_path: Path) -> None:
    assert guest_suites(tmp_path / "absent") == ()
