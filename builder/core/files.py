"""Files read safely and written atomically: the one place bytes reach the disk.

Reads refuse FIFOs, devices and folders before they can block, and stop at a
limit. Writes go to a temporary file beside the target, are fsynced and renamed
over it, so a reader (or a crash) sees the old bytes or the new ones, never half;
several files are written all or none, and never through a symbolic link below
the folder the caller gave.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import stat
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO

from builder.core.errors import InputError
from builder.core.limits import Limit


def read_bytes(path: Path, limit: Limit) -> bytes:
    """A regular file's bytes, at most `limit`: FIFOs, devices and folders are refused
    before they are read, and a file that grows past the limit while read is refused."""
    cap = limit.get()
    try:
        with open_regular(path) as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > cap:
                raise limit.exceeded(str(path), size)
            data = handle.read(size + 1)  # a file that grows while we read: up to the cap
            if len(data) > size:
                data += handle.read(cap + 1 - len(data))
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(data) > cap:
        raise limit.exceeded(str(path))
    return data


def open_regular(path: Path) -> IO[bytes]:
    """Open a regular file for reading. FIFOs and devices are refused (InputError) before
    they can block or stream forever: checked before opening, and again on what was
    opened. A missing or unreadable file raises OSError, as open() does."""
    _require_regular(path, os.stat(path))
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    handle = os.fdopen(fd, "rb")
    try:
        _require_regular(path, os.fstat(fd))
    except BaseException:
        handle.close()
        raise
    return handle


def _require_regular(path: Path, info: os.stat_result) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise InputError(f"{path}: is {file_kind(info.st_mode)}, not a regular file",
                         hint="give the path of a regular file")


def file_kind(mode: int) -> str:
    kinds = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a device"),
             (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket"),
             (stat.S_ISLNK, "a symbolic link"))
    return next((name for test, name in kinds if test(mode)), "a special file")


def read_text(path: Path, limit: Limit) -> str:
    """A regular UTF-8 text file of at most `limit` bytes, without NUL."""
    return decode_text(read_bytes(path, limit), str(path))


def decode_text(data: bytes | bytearray, where: str, *, lines: bool = True) -> str:
    """UTF-8 text without NUL; `lines` adds the line of a bad byte to `where`."""
    if b"\x00" in data:
        raise InputError(f"{where}: contains a NUL byte; not a text file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        number = data.count(b"\n", 0, exc.start) + 1
        line = f":{number}" if lines else ""
        raise InputError(f"{where}{line}: not UTF-8 (byte {exc.start})") from None


def atomic_write(path: Path, data: bytes | str, *, durable: bool = True) -> bool:
    """Write via a temp file and rename; skip (return False) when content is unchanged.
    `durable` fsyncs before the rename (a cache that may be lost skips it: 30x cheaper)."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    with contextlib.suppress(OSError):
        if path.stat().st_size == len(payload) and path.read_bytes() == payload:
            return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return True


def require_inside(root: Path, path: Path) -> None:
    """Refuse to write `path` through a symbolic link (or a non-folder) below `root`.

    The root itself may be a link (the user chose it); nothing between it and
    `path` may be, or a write would land outside the folder we were given.
    """
    current = root
    for part in path.relative_to(root).parts:
        current = current / part
        try:
            info = os.lstat(current)
        except FileNotFoundError:
            return  # the rest is created by us
        except OSError as exc:
            raise InputError(f"{current}: cannot inspect: {exc.strerror or exc}") from None
        if stat.S_ISLNK(info.st_mode):
            raise InputError(f"{current}: is a symbolic link inside {root}; refusing to write "
                             "through it", hint="replace the link by a real folder or file, or "
                                                "give the folder it points to")
        if current != path and not stat.S_ISDIR(info.st_mode):
            raise InputError(f"{current}: is {file_kind(info.st_mode)}, not a folder")


def atomic_write_many(root: Path, files: Mapping[Path, bytes | str]) -> list[Path]:
    """Write several files under `root` all or nothing; return those whose bytes changed.

    Every new version is staged (written and fsynced beside its target) before
    any target is replaced; if a replace fails, the ones already replaced get
    their old bytes back. Writes through symbolic links below `root` are refused.
    """
    staged: list[tuple[Path, Path]] = []       # (temp file, target)
    made: list[Path] = []                       # folders we created, deepest last
    try:
        for path, data in files.items():
            payload = data.encode("utf-8") if isinstance(data, str) else data
            require_inside(root, path)
            if path.exists() and not path.is_file():
                raise InputError(f"{path}: is not a regular file; nothing was changed")
            if _holds(path, payload):
                continue
            made += _make_folders(path.parent)
            fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            staged.append((Path(name), path))
            with os.fdopen(fd, "wb") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
        _replace_all(staged)
    except BaseException as exc:
        for tmp, _ in staged:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        for folder in reversed(made):
            with contextlib.suppress(OSError):
                folder.rmdir()
        if isinstance(exc, OSError):
            where = str(exc.filename or root)
            raise InputError(f"{where}: cannot write: {exc.strerror or exc}; nothing was "
                             "changed") from None
        raise
    return [target for _, target in staged]


def _holds(path: Path, payload: bytes) -> bool:
    with contextlib.suppress(OSError):
        return path.stat().st_size == len(payload) and path.read_bytes() == payload
    return False


def _make_folders(folder: Path) -> list[Path]:
    """mkdir -p, returning the folders it created (parents first)."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for item in reversed(missing):
        item.mkdir()
    return list(reversed(missing))


def _replace_all(staged: list[tuple[Path, Path]]) -> None:
    """Rename every staged file onto its target; on failure put back what was replaced."""
    backups: list[tuple[Path, Path | None]] = []   # (target, hard link to its old bytes)
    try:
        for tmp, target in staged:
            backup: Path | None = None
            if target.exists():
                backup = target.with_name(f".{target.name}.{os.getpid()}.old")
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(backup)
                os.link(target, backup)
            backups.append((target, backup))
            os.replace(tmp, target)
    except BaseException:
        for target, backup in reversed(backups):
            with contextlib.suppress(OSError):
                if backup is not None:
                    os.replace(backup, target)
                else:
                    os.unlink(target)
        raise
    finally:
        for _, backup in backups:
            if backup is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(backup)
    for folder in {target.parent for _, target in staged}:
        fsync_path(folder)


def fsync_path(path: Path) -> None:
    """Flush a file's (or a folder's entries') data to disk: it survives a crash."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def replacing(dest: Path) -> Iterator[Path]:
    """A temporary path beside `dest` for the caller to fill; when the block ends without
    an error it is fsynced and renamed over `dest` (readers see the old file or the new
    one), otherwise removed. A random name, not created here (the caller may make it a
    hard link): concurrent writers of one `dest` never share a temporary file."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{secrets.token_hex(8)}.tmp")  # not created: may be
    try:                                                              # a hard link's name
        yield tmp
        if tmp.is_file() and not tmp.is_symlink():
            fsync_path(tmp)
        os.replace(tmp, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def remove_tree(root: Path) -> None:
    """rmtree that also removes a read-only tree (we make sources read-only) as non-root."""
    for folder, _, _ in os.walk(root):
        os.chmod(folder, stat.S_IRWXU)
    shutil.rmtree(root, ignore_errors=True)


def swap_tree(new: Path, dest: Path, *,
              theirs_will_do: Callable[[Path], bool] = lambda _: False) -> None:
    """Put the folder `new` at `dest` with one rename: readers see a whole tree, old or new.

    An existing `dest` is moved aside first, put back if the rename fails, and removed
    after. `theirs_will_do(dest)` says that a tree another process installed at `dest`
    meanwhile is as good as ours: then ours is dropped instead (checked before and
    after a failed rename, so two builds of the same thing never fight)."""
    if dest.exists() and theirs_will_do(dest):
        remove_tree(new)
        return
    old = dest.with_name(f".{dest.name}.old-{os.getpid()}-{threading.get_ident()}")
    had_old = dest.exists()
    if had_old:
        os.rename(dest, old)
    try:
        os.rename(new, dest)
    except OSError:
        if had_old and not dest.exists():
            os.rename(old, dest)
        if not (dest.exists() and theirs_will_do(dest)):
            raise
        remove_tree(new)
    if had_old:
        remove_tree(old)


@contextlib.contextmanager
def creating(dest: Path) -> Iterator[Path]:
    """Like `replacing`, but `dest` is only ever created, never replaced: the finished
    temporary file is hard-linked to `dest` (fails if it exists) and removed. When `dest`
    appeared meanwhile (another writer of the same file), theirs is kept, and ours
    dropped.

    Why not rename: a file renamed over another orphans the old inode, and a concurrent
    link(2) to the old one that had already looked it up fails with ENOENT (the kernel
    refuses to link an inode with no names). Writers that share a file (two probes
    attested by one bundle, mirrors running in parallel) never replace it under each
    other this way. On a filesystem without hard links it falls back to a rename where
    nothing is there yet."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{secrets.token_hex(8)}.tmp")
    try:
        yield tmp
        if tmp.is_file() and not tmp.is_symlink():
            fsync_path(tmp)
        try:
            os.link(tmp, dest)
        except FileExistsError:
            pass   # another writer created it first: keep theirs
        except OSError as exc:
            if exc.errno not in NO_HARD_LINKS or dest.exists():
                raise
            os.replace(tmp, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


# Where a filesystem (or its mount) refuses hard links.
NO_HARD_LINKS = {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP}
