"""Build archives for tests, hostile ones included: tarballs (any compression),
.deb (ar) packages and RPMs with a newc cpio payload, member by member.

Real tools would refuse to make most of these (absolute names, "..", devices),
so the bytes are assembled here from the formats' specifications: tar through
tarfile's writer (which writes whatever TarInfo says), ar and cpio by hand, and
an RPM as lead + empty signature header + a main header naming the payload
compressor, which is all a reader needs to find the payload.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import shlex
import shutil
import struct
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

import zstandard

MTIME = 1_700_000_000


@dataclass(frozen=True)
class Entry:
    """One member: kind is file, dir, symlink, hardlink, chr, blk or fifo."""

    name: str
    kind: str = "file"
    data: bytes = b""
    target: str = ""          # symlink or hard link target
    mode: int = 0o644
    ino: int = 0              # cpio: members with the same ino are hard links
    nlink: int = 1


def file(name: str, data: bytes = b"data\n", mode: int = 0o644) -> Entry:
    return Entry(name, "file", data, mode=mode)


def folder(name: str) -> Entry:
    return Entry(name, "dir", mode=0o755)


def symlink(name: str, target: str) -> Entry:
    return Entry(name, "symlink", target=target, mode=0o777)


def hardlink(name: str, target: str) -> Entry:
    return Entry(name, "hardlink", target=target)


def device(name: str, kind: str = "chr") -> Entry:
    return Entry(name, kind, mode=0o666)


# --- compression -----------------------------------------------------------

def compress(data: bytes, method: str) -> bytes:
    if method == "none":
        return data
    if method == "gzip":
        return gzip.compress(data, mtime=0)
    if method == "xz":
        return lzma.compress(data)
    if method == "bzip2":
        return bz2.compress(data)
    if method == "zstd":
        return zstandard.ZstdCompressor().compress(data)
    raise ValueError(method)


SUFFIX = {"none": "", "gzip": ".gz", "xz": ".xz", "bzip2": ".bz2", "zstd": ".zst"}

# --- tar --------------------------------------------------------------------

_TAR_TYPES = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE,
              "hardlink": tarfile.LNKTYPE, "chr": tarfile.CHRTYPE, "blk": tarfile.BLKTYPE,
              "fifo": tarfile.FIFOTYPE}


def tar(entries: list[Entry], compression: str = "none") -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as archive:
        for entry in entries:
            info = tarfile.TarInfo(entry.name)
            info.type = _TAR_TYPES[entry.kind]
            info.mode = entry.mode
            info.mtime = MTIME
            info.linkname = entry.target
            if entry.kind == "file":
                info.size = len(entry.data)
                archive.addfile(info, io.BytesIO(entry.data))
            else:
                archive.addfile(info)
    return compress(out.getvalue(), compression)


# --- ar / .deb ----------------------------------------------------------------

def ar(members: list[tuple[str, bytes]]) -> bytes:
    out = bytearray(b"!<arch>\n")
    for name, data in members:
        header = (f"{name:<16}{MTIME:<12}{0:<6}{0:<6}{0o100644:<8o}{len(data):<10}".encode()
                  + b"`\n")
        assert len(header) == 60
        out += header + data + (b"\n" if len(data) % 2 else b"")
    return bytes(out)


def deb(entries: list[Entry], compression: str = "xz") -> bytes:
    """A .deb whose data.tar.<compression> holds `entries`."""
    control = tar([file("./control", b"Package: hostile\nVersion: 1\nArchitecture: all\n")],
                  "xz")
    data_name = "data.tar" + SUFFIX[compression]
    return ar([("debian-binary", b"2.0\n"), ("control.tar.xz", control),
               (data_name, tar(entries, compression))])


# --- cpio (newc) / .rpm ---------------------------------------------------------

_CPIO_TYPES = {"file": 0o100000, "dir": 0o040000, "symlink": 0o120000, "chr": 0o020000,
               "blk": 0o060000, "fifo": 0o010000}


def _cpio_member(name: str, mode: int, data: bytes, ino: int, nlink: int) -> bytes:
    raw_name = name.encode() + b"\x00"
    fields = [ino, mode, 0, 0, nlink, MTIME, len(data), 0, 0, 0, 0, len(raw_name), 0]
    header = b"070701" + b"".join(f"{value:08X}".encode() for value in fields)
    blob = header + raw_name
    blob += b"\x00" * (-len(blob) % 4)
    return blob + data + b"\x00" * (-len(data) % 4)


def cpio(entries: list[Entry]) -> bytes:
    out = bytearray()
    for number, entry in enumerate(entries, 1):
        data = entry.target.encode() if entry.kind == "symlink" else entry.data
        mode = _CPIO_TYPES[entry.kind] | (entry.mode & 0o7777)
        out += _cpio_member(entry.name, mode, data, entry.ino or number, entry.nlink)
    out += _cpio_member("TRAILER!!!", 0, b"", 0, 1)
    return bytes(out)


def _rpm_header(entries: list[tuple[int, int, bytes, int]]) -> bytes:
    """An RPM header structure: (tag, type, data, count) entries."""
    index, store = bytearray(), bytearray()
    for tag, kind, data, count in entries:
        index += struct.pack("!iiii", tag, kind, len(store), count)
        store += data
    return (b"\x8e\xad\xe8\x01\x00\x00\x00\x00" + struct.pack("!ii", len(entries), len(store))
            + bytes(index) + bytes(store))


_RPM_COMPRESSOR = {"gzip": b"gzip", "xz": b"xz", "zstd": b"zstd", "bzip2": b"bzip2",
                   "none": b"gzip"}


def rpm(entries: list[Entry], compression: str = "gzip", name: str = "hostile") -> bytes:
    """A minimal RPM (v3 lead, empty signature, main header) with a cpio payload."""
    lead = struct.pack("!4sBBhh66shh16s", b"\xed\xab\xee\xdb", 3, 0, 0, 1,
                       name.encode()[:65], 1, 5, b"")
    signature = _rpm_header([])
    signature += b"\x00" * (-len(signature) % 8)
    string = 6  # RPM_STRING_TYPE
    main = _rpm_header([(1000, string, name.encode() + b"\x00", 1),          # NAME
                        (1124, string, b"cpio\x00", 1),                       # PAYLOADFORMAT
                        (1125, string, _RPM_COMPRESSOR[compression] + b"\x00", 1)])
    return lead + signature + main + compress(cpio(entries), compression)




# --- real RPMs, made by rpmbuild ---------------------------------------------------

def require_rpmbuild() -> str:
    """rpmbuild's path; skip where it is missing, except in CI where it must be."""
    import os

    import pytest

    found = shutil.which("rpmbuild")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("rpmbuild is missing in CI (Debian package rpm; `make deps`)")
        pytest.skip("rpmbuild is not installed (Debian package rpm)")
    return found


def rpmbuild(tree: Path, work: Path, *, name: str, version: str, files: list[str],
             symlinks: dict[str, str] | None = None, payload: str = "w9.gzdio") -> Path:
    """A real noarch RPM of `tree` (installed at /), plus `symlinks` (path -> target).

    `files` are the %files lines; `payload` is rpm's _binary_payload
    (w9.gzdio, w6.xzdio, w19.zstdio, w9.bzdio).
    """
    links = "\n".join(f"mkdir -p %{{buildroot}}{shlex.quote(str(Path(p).parent))}\n"
                      f"ln -s {shlex.quote(t)} %{{buildroot}}{shlex.quote(p)}"
                      for p, t in (symlinks or {}).items())
    spec = work / f"{name}.spec"
    spec.write_text(f"""Name: {name}
Version: {version}
Release: 1
Summary: test package
License: GPL-2.0-only
BuildArch: noarch
%description
Kernel headers for tests.
%install
mkdir -p %{{buildroot}}
cp -a %{{srctree}}/. %{{buildroot}}/
{links}
%files
{chr(10).join(files)}
""")
    top = work / "rpmbuild"
    command = [require_rpmbuild(), "-bb", "--quiet",
               "--define", f"_topdir {top}", "--define", f"srctree {tree}",
               "--define", f"_binary_payload {payload}",
               "--define", "__os_install_post %{nil}", "--define", "_build_id_links none",
               str(spec)]
    proc = subprocess.run(command, capture_output=True, text=True, check=False, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (built,) = (top / "RPMS" / "noarch").glob(f"{name}-{version}-1.noarch.rpm")
    return built
