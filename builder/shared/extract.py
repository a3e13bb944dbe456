"""Extract kernel header packages (.deb, .rpm, tarballs) safely, without root.

Every member is checked before it is written, and everything is written into
a fresh staging folder beside the destination that is moved into place only
once the whole archive was accepted, so a refused or corrupt archive leaves
nothing behind. The rules:

- member names are relative: a leading "./" is stripped; absolute names and
  ".." components are refused;
- only files, directories, symlinks and hard links; device nodes, fifos and
  sockets are refused;
- nothing is written through a symlink (not one from this archive, not one
  already in the destination);
- absolute symlink targets are re-rooted inside the destination (rewritten as
  relative links to the same path under it), because real header packages
  ship `/lib/modules/<ver>/build -> /usr/src/...`; relative targets must stay
  inside; after extraction every link is resolved, following other links
  (also those already in the destination), and must stay inside;
- hard links must point at a regular file extracted earlier from the same
  archive;
- modes lose setuid/setgid/sticky and group/other write bits and gain owner
  read/write; ownership is never changed (we run without root).

Containers come from libraries: python-debian reads the .deb's ar container,
rpmfile the RPM headers, tarfile the tar stream. Every tar link also gets a
second opinion, the link rule of tarfile's 'data' filter: the link's target,
resolved on disk as it is about to be written, must stay inside. We apply it
ourselves because `tarfile.data_filter` needs Python 3.11.4 and Debian 12 has
3.11.2. RPM payloads are newc cpio, read here as a stream because rpmfile's
member list drops file types and hard links.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import lzma
import os
import posixpath
import shutil
import stat
import struct
import tarfile
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

import rpmfile
import zstandard
from debian.arfile import ArError
from debian.debfile import DebFile

from builder.core.errors import InputError
from builder.core.files import swap_tree

KINDS = ("deb", "rpm", "tar")
CHUNK = 1 << 20
MAX_LINK_HOPS = 40  # Linux's limit: a longer chain fails with ELOOP, it cannot escape

_DEB_MAGIC = b"!<arch>\n"
_RPM_MAGIC = b"\xed\xab\xee\xdb"
_COMPRESSION_MAGIC = {
    b"\x1f\x8b": "gzip",
    b"\xfd7zXZ\x00": "xz",
    b"BZh": "bzip2",
    b"\x28\xb5\x2f\xfd": "zstd",
}
_HINT = ("header packages must be .deb, .rpm or tar archives whose members stay "
         "inside the destination")


@dataclass(frozen=True, slots=True)
class ExtractReport:
    """What one extraction wrote, and how long it took (for bench/)."""

    archive: Path
    kind: str
    files: int
    directories: int
    links: int             # symlinks and hard links
    rewritten_links: int   # absolute symlinks re-rooted inside the destination
    bytes: int
    seconds: float


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class _Corrupt(Exception):
    """The archive's bytes are wrong: truncated, bad compression, bad headers."""


def extract(archive: Path, dest: Path, *, kind: str | None = None,
            keep: Callable[[str], bool] | None = None) -> ExtractReport:
    """Extract `archive` into `dest` (created, or merged into when it exists).

    `keep`, when given, is asked about each member's path (relative, as it
    would land under `dest`); members it refuses are checked and skipped.
    """
    started = time.perf_counter()
    kind = kind or detect_kind(archive)
    if kind not in KINDS:
        raise InputError(f"archive {archive}: unknown kind {kind!r}",
                         hint=f"use one of {', '.join(KINDS)}")
    if dest.exists() and not dest.is_dir():
        raise InputError(f"{dest}: exists and is not a directory",
                         hint="extract into a new or existing directory")
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.extract-", dir=dest.parent))
    writer = _Writer(archive, staging, keep)
    try:
        with _open_archive(archive) as handle, _corruption_as_input_error(archive, kind):
            _READERS[kind](archive, handle, writer)
        writer.finish()
        _place(writer, staging, dest)
    except OSError as exc:  # disk full, name too long, permissions: say which member
        raise InputError(f"archive {archive}: member {writer.current!r} could not be written "
                         f"into {dest}: {exc.strerror or exc}",
                         hint="check the free space and permissions of the destination") \
            from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ExtractReport(archive=archive, kind=kind, **writer.report_counts,
                         seconds=time.perf_counter() - started)


def detect_kind(archive: Path) -> str:
    """'deb', 'rpm' or 'tar' from the first bytes; InputError for anything else."""
    with _open_archive(archive) as handle:
        head = handle.read(512)
    if head.startswith(_DEB_MAGIC):
        return "deb"
    if head.startswith(_RPM_MAGIC):
        return "rpm"
    if _compression(head) != "none" or head[257:262] == b"ustar":
        return "tar"
    raise InputError(f"archive {archive}: not a .deb, .rpm or tarball ({_starts(head)})",
                     hint="a download that returned an error page or a wrong file?")


def _starts(head: bytes) -> str:
    if not head:
        return "it is empty"
    return f"it starts with {head[:40].decode('latin-1')!r}"


@contextlib.contextmanager
def _open_archive(archive: Path) -> Iterator[IO[bytes]]:
    try:
        handle = archive.open("rb")
    except FileNotFoundError as exc:
        raise InputError(f"archive {archive}: no such file") from exc
    except IsADirectoryError as exc:
        raise InputError(f"archive {archive}: is a directory, not an archive") from exc
    except PermissionError as exc:
        raise InputError(f"archive {archive}: permission denied") from exc
    with handle:
        yield handle


@contextlib.contextmanager
def _corruption_as_input_error(archive: Path, kind: str) -> Iterator[None]:
    try:
        yield
    except (_Corrupt, tarfile.TarError) as exc:
        raise InputError(f"archive {archive}: truncated or corrupt {_LABELS[kind]}: {exc}",
                         hint="download it again (the cached copy is bad)") from exc


_LABELS = {"deb": ".deb", "rpm": ".rpm", "tar": "tarball"}


# --- compression ---------------------------------------------------------

def _compression(head: bytes) -> str:
    for magic, name in _COMPRESSION_MAGIC.items():
        if head.startswith(magic):
            return name
    return "none"


def _decompressed(raw: IO[bytes], hint: str = "") -> _Guarded:
    """A readable stream of `raw` decompressed by what its magic bytes say.

    `hint` is a file name whose extension decides when there is no magic
    (legacy .lzma has none). Read errors become _Corrupt.
    """
    position = raw.tell()
    head = raw.read(6)
    raw.seek(position)
    method = _compression(head)
    # The decompressors live as long as the archive handle, which is closed.
    stream: Readable
    if method == "gzip":
        stream = gzip.GzipFile(fileobj=raw, mode="rb")
    elif method == "xz" or hint.endswith(".lzma"):
        stream = lzma.LZMAFile(raw)  # noqa: SIM115
    elif method == "bzip2":
        stream = bz2.BZ2File(raw)
    elif method == "zstd":
        stream = io.BufferedReader(_ZstdReader(raw), CHUNK)
    else:
        stream = raw
    return _Guarded(stream)


class _Guarded(io.RawIOBase):
    """Turns the many read errors of decompressors into one _Corrupt."""

    def __init__(self, inner: Readable) -> None:
        super().__init__()
        self._inner = inner

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        try:
            data = self._inner.read(len(buffer))
        except EOFError as exc:
            raise _Corrupt(f"truncated ({exc})") from exc
        except (OSError, lzma.LZMAError, zlib.error, zstandard.ZstdError) as exc:
            raise _Corrupt(f"bad compressed data ({exc})") from exc
        buffer[: len(data)] = data
        return len(data)


class _ZstdReader(io.RawIOBase):
    """zstd frames decoded as a stream; unlike zstandard's stream_reader it
    notices when the input stops in the middle of a frame."""

    def __init__(self, raw: IO[bytes]) -> None:
        super().__init__()
        self._raw = raw
        self._context = zstandard.ZstdDecompressor()
        self._frame = self._context.decompressobj()
        self._in_frame = False
        self._pending = bytearray()
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._pending and not self._done:
            self._feed(self._raw.read(CHUNK))
        count = min(len(buffer), len(self._pending))
        buffer[:count] = self._pending[:count]
        del self._pending[:count]
        return count

    def _feed(self, chunk: bytes) -> None:
        if not chunk:
            if self._in_frame:
                raise EOFError("zstd data ended in the middle of a frame")
            self._done = True
            return
        while chunk:
            self._in_frame = True
            self._pending += self._frame.decompress(chunk)
            if not self._frame.eof:
                return
            chunk = self._frame.unused_data  # the next frame starts here
            self._frame = self._context.decompressobj()
            self._in_frame = False


# --- readers: one per container, all feeding the same writer ---------------

def _read_tar(archive: Path, handle: IO[bytes], writer: _Writer, hint: str = "") -> None:
    stream = _decompressed(handle, hint)
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            _tar_member(tar, member, writer)


def _tar_member(tar: tarfile.TarFile, member: tarfile.TarInfo, writer: _Writer) -> None:
    name = member.name
    if member.isreg():
        source = tar.extractfile(member)
        assert source is not None  # a regular member always has data
        writer.file(name, source, member.mode, member.mtime)
    elif member.isdir():
        writer.directory(name, member.mode, member.mtime)
    elif member.issym():
        writer.symlink(name, member.linkname, member.mtime, writer.tar_check(member))
    elif member.islnk():
        writer.hardlink(name, member.linkname, writer.tar_check(member))
    else:
        writer.special(name, _TAR_TYPES.get(member.type, f"member of tar type {member.type!r}"))


_TAR_TYPES = {tarfile.CHRTYPE: "character device", tarfile.BLKTYPE: "block device",
              tarfile.FIFOTYPE: "fifo"}


def _read_deb(archive: Path, handle: IO[bytes], writer: _Writer) -> None:
    try:
        deb = DebFile(fileobj=handle)  # type: ignore[arg-type]
        data_name = next(n for n in deb.getnames() if n.startswith("data.tar"))
        data = deb.getmember(data_name)
    except (ArError, OSError, ValueError, KeyError, StopIteration) as exc:
        raise InputError(f"archive {archive}: not a .deb ({_reason(exc, handle)})",
                         hint=_HINT) from exc
    _read_tar(archive, data, writer, data_name)  # type: ignore[arg-type]


def _reason(exc: BaseException, handle: IO[bytes]) -> str:
    """Why python-debian refused it; for a file that is no ar archive, what it is."""
    handle.seek(0)
    head = handle.read(40)
    if not head.startswith(_DEB_MAGIC):
        return _starts(head)
    return str(exc) or exc.__class__.__name__


def _read_rpm(archive: Path, handle: IO[bytes], writer: _Writer) -> None:
    head = handle.read(40)
    if not head.startswith(_RPM_MAGIC):
        raise InputError(f"archive {archive}: not a .rpm ({_starts(head)})", hint=_HINT)
    handle.seek(0)
    try:
        rpm = rpmfile.RPMFile(fileobj=handle)
        payload_at = int(rpm.data_offset)
        payload_format = rpm.headers.get("archive_format", b"cpio")
    except (rpmfile.errors.RPMError, AssertionError, struct.error, ValueError, TypeError,
            IndexError) as exc:
        raise _Corrupt(f"bad RPM header ({exc or exc.__class__.__name__})") from exc
    if payload_format not in (b"cpio", "cpio"):
        raise InputError(f"archive {archive}: RPM payload format {payload_format!r} "
                         "is not supported", hint="only cpio payloads are")
    handle.seek(payload_at)
    _read_cpio(_decompressed(handle), writer)


_CPIO_HEADER = 110
_S_IFMT_NAMES = {stat.S_IFCHR: "character device", stat.S_IFBLK: "block device",
                 stat.S_IFIFO: "fifo", stat.S_IFSOCK: "socket"}


def _read_exact(stream: Readable, size: int, what: str) -> bytes:
    data = stream.read(size) if size else b""
    if len(data) != size:
        raise _Corrupt(f"truncated cpio payload (in {what})")
    return data


def _skip_padding(stream: Readable, done: int, what: str) -> None:
    _read_exact(stream, -done % 4, what)


def _read_cpio(stream: Readable, writer: _Writer) -> None:
    """newc ("070701"/"070702") cpio, as in RPM payloads, in one pass."""
    waiting: dict[tuple[int, int, int], list[str]] = {}   # hard links seen before their data
    written: dict[tuple[int, int, int], str] = {}
    while True:
        header = _read_exact(stream, _CPIO_HEADER, "a member header")
        magic = header[:6]
        if magic == b"07070X":
            raise _Corrupt("RPM large-file payloads (cpio magic 07070X) are not supported")
        if magic not in (b"070701", b"070702"):
            raise _Corrupt(f"bad cpio member header {header[:6]!r}")
        try:
            fields = [int(header[6 + 8 * i: 14 + 8 * i], 16) for i in range(13)]
        except ValueError as exc:
            raise _Corrupt("bad cpio member header (not hex)") from exc
        ino, mode, _uid, _gid, nlink, mtime, size, dev_major, dev_minor = fields[:9]
        name_size = fields[11]
        raw_name = _read_exact(stream, name_size, "a member name")
        _skip_padding(stream, _CPIO_HEADER + name_size, "a member name")
        name = raw_name.rstrip(b"\x00").decode("utf-8", "surrogateescape")
        if name == "TRAILER!!!":
            break
        kind = stat.S_IFMT(mode)
        key = (ino, dev_major, dev_minor)
        if kind == stat.S_IFREG and nlink > 1 and (size == 0 or key in written):
            # newc stores a hard-linked file's data once, with its last name
            _read_exact(stream, size, name)
            if key in written:
                writer.hardlink(name, written[key])
            else:
                waiting.setdefault(key, []).append(name)
        elif kind == stat.S_IFREG:
            writer.file(name, _Limited(stream, size, name), mode, mtime)
            written[key] = name
            for other in waiting.pop(key, []):
                writer.hardlink(other, name)
        elif kind == stat.S_IFDIR:
            _read_exact(stream, size, name)
            writer.directory(name, mode, mtime)
        elif kind == stat.S_IFLNK:
            target = _read_exact(stream, size, name).decode("utf-8", "surrogateescape")
            writer.symlink(name, target, mtime)
        elif kind in _S_IFMT_NAMES:
            writer.special(name, _S_IFMT_NAMES[kind])
        else:
            raise _Corrupt(f"member {name!r} has an unknown file type {oct(kind)}")
        _skip_padding(stream, size, name)
    for names in waiting.values():  # hard links whose data never came: empty files
        writer.file(names[0], io.BytesIO(b""), 0o644, 0)
        for other in names[1:]:
            writer.hardlink(other, names[0])


class _Limited(io.RawIOBase):
    """Exactly `size` bytes of a stream; short input is a truncated archive."""

    def __init__(self, stream: Readable, size: int, name: str) -> None:
        super().__init__()
        self._stream, self._left, self._name = stream, size, name

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if not self._left:
            return 0
        data = self._stream.read(min(len(buffer), self._left))
        if not data:
            raise _Corrupt(f"truncated cpio payload (in {self._name})")
        buffer[: len(data)] = data
        self._left -= len(data)
        return len(data)


_READERS: dict[str, Callable[[Path, IO[bytes], _Writer], None]] = {
    "deb": _read_deb, "rpm": _read_rpm, "tar": _read_tar}


# --- the writer: every member goes through these checks ----------------------

def _file_mode(mode: int) -> int:
    return (mode & 0o755) | 0o600


def _dir_mode(mode: int) -> int:
    return (mode & 0o755) | 0o700


Check = Callable[[str, str], None]  # (path under root, link target) -> refuse or not


class _Writer:
    """Writes checked members under `root` (the staging folder)."""

    def __init__(self, archive: Path, root: Path,
                 keep: Callable[[str], bool] | None = None) -> None:
        self.archive = archive
        self.root = root
        self.keep = keep
        self.known_dirs: set[str] = {""}  # real directories under root, verified or made
        self.dir_attrs: dict[str, tuple[int, float]] = {}
        self.symlinks: dict[str, str] = {}  # relative path -> target as in the archive
        self.rerooted: set[str] = set()     # symlinks whose absolute target we rewrote
        self.files = self.hardlinks = self.bytes = 0
        self.current = ""  # the member being written, for error messages

    @property
    def report_counts(self) -> dict[str, int]:
        return {"files": self.files, "directories": len(self.dir_attrs),
                "links": len(self.symlinks) + self.hardlinks,
                "rewritten_links": len(self.rerooted), "bytes": self.bytes}

    def refuse(self, member: str, what: str) -> InputError:
        return InputError(f"archive {self.archive}: member {member!r} {what}", hint=_HINT)

    def relative(self, member: str) -> str:
        """The member's path under root ('' for root itself), or a refusal."""
        self.current = member
        name = member
        while name.startswith("./"):
            name = name[2:].lstrip("/")  # ".//x" is "./x", not "/x"
        if name.startswith("/"):
            raise self.refuse(member, "has an absolute path")
        parts = [part for part in name.split("/") if part not in ("", ".")]
        if ".." in parts:
            raise self.refuse(member, "escapes the destination")
        return "/".join(parts)

    def tar_check(self, member: tarfile.TarInfo) -> Check:
        """A second opinion on a tar link, as we are about to write it (our name, our
        link target): the rule of tarfile's 'data' filter, which Python 3.11.2 lacks."""

        def check(rel: str, link: str) -> None:
            problem = link_escape(self.root, rel, link, hard=member.islnk())
            if problem:
                raise self.refuse(member.name, problem)

        return check

    def _make_parents(self, member: str, rel: str) -> None:
        parent = posixpath.dirname(rel)
        if parent in self.known_dirs:
            return
        current = ""
        for part in parent.split("/"):
            current = f"{current}/{part}" if current else part
            if current in self.known_dirs:
                continue
            path = self.root / current
            try:
                mode = os.lstat(path).st_mode
            except FileNotFoundError:
                os.mkdir(path, 0o755)
                self.known_dirs.add(current)
                continue
            if stat.S_ISLNK(mode):
                raise self.refuse(member, f"would be written through the symlink {current!r}")
            if not stat.S_ISDIR(mode):
                raise self.refuse(member, f"needs {current!r} to be a directory, "
                                          "but the archive made it a file")
            self.known_dirs.add(current)

    def _clear(self, member: str, rel: str) -> None:
        """Make room for a non-directory: a later member replaces an earlier one."""
        path = self.root / rel
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            return
        if stat.S_ISDIR(mode):
            raise self.refuse(member, "would replace a directory")
        os.unlink(path)  # never write through what was there
        self.symlinks.pop(rel, None)
        self.rerooted.discard(rel)

    def _named(self, member: str, what: str, check: Check | None = None,
               link: str = "") -> str:
        rel = self.relative(member)
        if not rel:
            raise self.refuse(member, f"is a {what} in place of the destination itself")
        self._make_parents(member, rel)
        if check is not None:
            check(rel, link)
        self._clear(member, rel)
        return rel

    def skips(self, member: str) -> bool:
        """True for a member `keep` refuses (its name is still checked)."""
        return self.keep is not None and not self.keep(self.relative(member))

    def file(self, member: str, source: Readable, mode: int, mtime: float) -> None:
        if self.skips(member):
            while source.read(CHUNK):  # a cpio stream must be read past the data
                pass
            return
        rel = self._named(member, "file")
        path = self.root / rel
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        with os.fdopen(os.open(path, flags, 0o600), "wb") as out:
            while block := source.read(CHUNK):
                out.write(block)
                self.bytes += len(block)
            os.fchmod(out.fileno(), _file_mode(mode))
        os.utime(path, (mtime, mtime), follow_symlinks=False)
        self.files += 1

    def directory(self, member: str, mode: int, mtime: float) -> None:
        rel = self.relative(member)
        if self.skips(member):
            return
        if not rel:
            return  # the destination itself: its mode is ours to choose
        self._make_parents(member, rel)
        if rel not in self.known_dirs:
            existing = _lstat_mode(self.root / rel)
            if existing and not stat.S_ISDIR(existing):
                raise self.refuse(member, "would replace a file or link with a directory")
            if not existing:
                os.mkdir(self.root / rel, 0o700)
            self.known_dirs.add(rel)
        self.dir_attrs[rel] = (_dir_mode(mode), mtime)

    def symlink(self, member: str, target: str, mtime: float,
                check: Check | None = None) -> None:
        rel = self.relative(member)
        if self.skips(member):
            return
        if not target or "\x00" in target:
            raise self.refuse(member, "is a symlink with an empty or invalid target")
        base = posixpath.dirname(rel)
        if target.startswith("/"):
            # re-rooted: the same path, but under the destination
            inside = posixpath.normpath("/" + target.lstrip("/")).lstrip("/")
            link = posixpath.relpath(inside or ".", base or ".")
        else:
            joined = posixpath.normpath(posixpath.join(base, target))
            if joined == ".." or joined.startswith("../"):
                raise self.refuse(member, f"is a symlink to {target!r}, "
                                          "outside the destination")
            link = target
        rel = self._named(member, "symlink", check, link)
        os.symlink(link, self.root / rel)
        os.utime(self.root / rel, (mtime, mtime), follow_symlinks=False)
        self.symlinks[rel] = target
        if link != target:
            self.rerooted.add(rel)

    def hardlink(self, member: str, target: str, check: Check | None = None) -> None:
        if self.skips(member):
            return
        try:
            source = self.relative(target)
        except InputError:
            raise self.refuse(member, f"is a hard link to {target!r}, "
                                      "outside the destination") from None
        source_path = self.root / source
        if (posixpath.dirname(source) not in self.known_dirs or not source
                or not stat.S_ISREG(_lstat_mode(source_path))):
            raise self.refuse(member, f"is a hard link to {target!r}, which is not a file "
                                      "extracted before it from this archive")
        if self.relative(member) == source:
            return  # a link to itself: the file is already there
        rel = self._named(member, "hard link", check, source)
        os.link(source_path, self.root / rel, follow_symlinks=False)
        self.hardlinks += 1

    def special(self, member: str, what: str) -> None:
        raise self.refuse(member, f"is a {what}; only files, directories and links "
                                  "are allowed")

    def finish(self) -> None:
        """Directory modes and times last, deepest first (writing children changes them)."""
        for rel in sorted(self.dir_attrs, key=lambda r: r.count("/"), reverse=True):
            mode, mtime = self.dir_attrs[rel]
            os.chmod(self.root / rel, mode)
            os.utime(self.root / rel, (mtime, mtime))


def link_escape(root: Path, rel: str, link: str, *, hard: bool) -> str | None:
    """Why a link at `rel` to `link` would leave `root` once resolved on disk, or None.

    The same rule as tarfile's 'data' filter: no absolute target, and the
    target (relative to the link's folder, or to root for a hard link), with
    every symlink already on disk followed, must stay inside root.
    """
    if not link or posixpath.isabs(link):
        return f"is a link to {link!r}, which is not a relative path"
    base = root if hard else root / posixpath.dirname(rel)
    real_root = os.path.realpath(root)
    real = os.path.realpath(os.path.join(base, link))
    if os.path.commonpath([real_root, real]) != real_root:
        return f"is a link to {link!r}, which resolves outside the destination"
    return None


def _lstat_mode(path: Path) -> int:
    try:
        return os.lstat(path).st_mode
    except FileNotFoundError:
        return 0


# --- placing the staging folder: final link check, then rename or merge -------

def _place(writer: _Writer, staging: Path, dest: Path) -> None:
    """Move the accepted tree into `dest`, after checking that, together with
    what `dest` already holds, no link leads outside it."""
    merging = dest.is_dir()
    layers = [staging, dest] if merging else [staging]
    if merging:
        _check_merge(writer, staging, dest, "")
    for rel, target in writer.symlinks.items():
        if _resolve(layers, rel) is None:
            raise writer.refuse(rel, f"is a symlink to {target!r} that resolves outside "
                                     "the destination (through other links)")
    if merging:
        for rel in _symlinks_under(dest):
            if rel not in writer.symlinks and _resolve(layers, rel) is None:
                raise InputError(f"archive {writer.archive}: its members make the symlink "
                                 f"{rel!r} already in {dest} resolve outside it", hint=_HINT)
        _merge(staging, dest, "")
    else:
        os.chmod(staging, 0o755)  # noqa: S103 - mkdtemp made it 0o700; a tree to share
        swap_tree(staging, dest)


def _check_merge(writer: _Writer, staging: Path, dest: Path, rel: str) -> None:
    """Refuse what a merge would break: a directory over a file, or writing
    under a symlink that an earlier archive left in dest."""
    for entry in os.scandir(staging / rel if rel else staging):
        path = f"{rel}/{entry.name}" if rel else entry.name
        existing = _lstat_mode(dest / path)
        if not existing:
            continue
        ours_dir = entry.is_dir(follow_symlinks=False)
        if ours_dir and stat.S_ISLNK(existing):
            raise writer.refuse(path + "/", f"would be written through the symlink {path!r} "
                                            f"already in {dest}")
        if ours_dir and stat.S_ISDIR(existing):
            _check_merge(writer, staging, dest, path)
        elif ours_dir:
            raise writer.refuse(path + "/", f"is a directory but {dest} already has a file "
                                            "there")
        elif stat.S_ISDIR(existing):
            raise writer.refuse(path, f"would replace a directory already in {dest}")


def _merge(staging: Path, dest: Path, rel: str) -> None:
    for entry in os.scandir(staging / rel if rel else staging):
        path = f"{rel}/{entry.name}" if rel else entry.name
        if entry.is_dir(follow_symlinks=False) and stat.S_ISDIR(_lstat_mode(dest / path)):
            _merge(staging, dest, path)
        else:
            os.replace(entry.path, dest / path)


def _symlinks_under(root: Path) -> Iterator[str]:
    stack = [""]
    while stack:
        rel = stack.pop()
        for entry in os.scandir(root / rel if rel else root):
            path = f"{rel}/{entry.name}" if rel else entry.name
            if entry.is_symlink():
                yield path
            elif entry.is_dir(follow_symlinks=False):
                stack.append(path)


def resolve_inside(root: Path, rel: str) -> str | None:
    """`rel` with every symlink followed, relative to `root`; None if it leaves it."""
    return _resolve([root], rel)


def _resolve(layers: list[Path], rel: str) -> str | None:
    """Where `rel` leads, following symlinks as the kernel would, with `layers`
    stacked (the first that has a path wins); None if it leaves the root.

    Missing components are taken as they are (a link may point into a package
    extracted later); a chain longer than the kernel allows cannot escape.
    """
    pending = list(reversed(rel.split("/")))
    resolved: list[str] = []
    hops = 0
    while pending:
        part = pending.pop()
        if part in ("", "."):
            continue
        if part == "..":
            if not resolved:
                return None
            resolved.pop()
            continue
        candidate = "/".join([*resolved, part])
        link = _readlink(layers, candidate)
        if link is None:
            resolved.append(part)
            continue
        hops += 1
        if hops > MAX_LINK_HOPS or link.startswith("/"):
            # over the limit: ELOOP, harmless; absolute: only in trees we did not write
            return candidate if hops > MAX_LINK_HOPS else None
        pending.extend(reversed(link.split("/")))
    return "/".join(resolved)


def _readlink(layers: list[Path], rel: str) -> str | None:
    """The target if the first layer that has `rel` has a symlink there."""
    for layer in layers:
        mode = _lstat_mode(layer / rel)
        if mode:
            return os.readlink(layer / rel) if stat.S_ISLNK(mode) else None
    return None
