"""Download header packages once, verified, resumable, into a shared cache.

`download` takes http(s) and file:// URLs or plain paths. It writes to
`<dest>.part`, resumes a partial file with a Range request, retries
connection errors and 5xx answers with backoff, checks size and sha256, and
renames into place only when everything matched. A destination that already
has the expected digest is a cache hit: no request is made.

Only the standard library's urllib is used. Messages never show the
user:password part of a URL; credentials in a URL are sent as HTTP basic auth.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import http.client
import os
import re
import socket
import stat
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from builder import __version__
from builder.core import limits
from builder.core.errors import InputError, StoreError
from builder.core.files import open_regular, read_bytes
from builder.core.schema import printable

USER_AGENT = f"falco-probes/{__version__}"
CHUNK = 1 << 16
RETRY_BACKOFF_SECONDS = 0.25  # doubled after each failed attempt
MAX_BACKOFF_SECONDS = 8.0
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._+~-]")


def redact(url: str) -> str:
    """The URL without its user:password part, for messages and logs."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


class Meter(Protocol):
    """Where download progress goes; the command layer draws it (ui.DownloadMeter).

    Several downloads can run at once: `start` returns the handle the others take."""

    def start(self, name: str, total: int | None, done: int) -> int: ...

    def advance(self, task: int, count: int) -> None: ...

    def restart(self, task: int, done: int, total: int | None) -> None: ...


def sha256_file(path: Path) -> str:
    """The file's sha256; InputError for a FIFO or device (which could block or never end)."""
    digest = hashlib.sha256()
    with open_regular(path) as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class _Bound:
    """How much one download may read, and until when; `why` says whose rule that is."""

    cap: int
    why: str
    deadline: float     # time.monotonic() past which it stops
    seconds: int

    @classmethod
    def of(cls, url: str, size: int, limit: limits.Limit) -> _Bound:
        """The declared size bounds it; without one, the limit of its kind. A declared
        size past that limit is refused before anything is read."""
        most = limit.get()
        if size > most:
            raise limit.exceeded(redact(url), amount=f"declares {size} bytes",
                                 done="nothing was downloaded")
        seconds = limits.DOWNLOAD_SECONDS.get()
        why = ("the size recorded for it" if size else
               f"{limit.what} may be at most {limits.human(most)}B ({limit.env})")
        return cls(size or most, why, time.monotonic() + seconds, seconds)

    def check_time(self, what: str) -> None:
        if time.monotonic() > self.deadline:
            raise TooSlow(f"{what}: still downloading after {self.seconds} s; stopped",
                          hint=f"a slow or endless answer; raise "
                               f"{limits.DOWNLOAD_SECONDS.env} if the server is just slow")


def download(url: str, dest: Path, *, limit: limits.Limit, sha256: str = "", size: int = 0,
             meter: Meter | None = None, timeout: float = 60,
             retries: int = 3) -> Path:
    """Fetch `url` into `dest` (atomically) and return `dest`.

    `sha256` and `size`, when given, must match or the partial file is
    deleted and InputError raised. Never more than `size` bytes (or `limit`, the
    maximum of this kind of file, when no size is known) are written, and never for
    longer than limits.DOWNLOAD_SECONDS: a longer or slower body is cut off and
    refused (TooLong, TooSlow). `retries` is the number of attempts.
    """
    sha256 = sha256.lower()
    if _already_there(dest, sha256, size):
        return dest
    bound = _Bound.of(url, size, limit)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with _locked(dest):
        if _already_there(dest, sha256, size):  # another process finished it meanwhile
            return dest
        part = dest.with_name(dest.name + ".part")  # a stable name: a rerun resumes it
        scheme = urllib.parse.urlsplit(url).scheme.lower()
        if scheme in ("http", "https"):
            _fetch_http(url, part, size, bound, meter, timeout, max(1, retries))
        elif scheme in ("file", ""):
            _copy_local(url, part, bound, meter)
        else:
            raise InputError(f"{redact(url)}: unsupported URL scheme {scheme!r}",
                             hint="use an http(s) or file URL, or a plain path")
        _verify(url, part, sha256, size)
        os.replace(part, dest)
    return dest


def _already_there(dest: Path, sha256: str, size: int) -> bool:
    """A cache hit: dest exists and matches what we were told to expect."""
    if not (sha256 or size):
        return False
    try:
        if size and dest.stat().st_size != size:
            return False
        return not sha256 or sha256_file(dest) == sha256
    except FileNotFoundError:
        return False


@contextlib.contextmanager
def _locked(dest: Path) -> Iterator[None]:
    """One writer per destination, so parallel builds share one download."""
    lock_path = dest.with_name(f".{dest.name}.lock")
    with _open_own(lock_path, append=True) as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def _open_own(path: Path, *, append: bool = False) -> IO[bytes]:
    """Open a file we write (partial download, lock) without following a link planted at
    its name, and without blocking on a FIFO there."""
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    fd = os.open(path, flags if append else flags | os.O_TRUNC, 0o644)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise InputError(f"{path}: is not a regular file; refusing to write it")
    return os.fdopen(fd, "r+b" if append else "wb")


def _verify(url: str, part: Path, sha256: str, size: int) -> None:
    got_size = part.stat().st_size
    if size and got_size != size:
        part.unlink()
        raise InputError(f"{redact(url)}: size mismatch: expected {size} bytes, got {got_size}",
                         hint="the file changed at its source or the download was cut")
    if sha256:
        got = sha256_file(part)
        if got != sha256:
            part.unlink()
            raise InputError(f"{redact(url)}: sha256 mismatch: expected {sha256}, got {got}",
                             hint="the file changed at its source, or a proxy altered it")


def _local_path(url: str) -> Path:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() != "file":
        return Path(url)
    if parts.netloc not in ("", "localhost"):
        raise InputError(f"{redact(url)}: file URLs must name a local path (file:///path)")
    return Path(urllib.request.url2pathname(parts.path))


def _copy_local(url: str, part: Path, bound: _Bound, meter: Meter | None) -> None:
    source = _local_path(url)
    try:
        with open_regular(source) as src, _open_own(part) as out:
            task = _task(meter, source.name, os.fstat(src.fileno()).st_size, 0)
            _copy(src, out, meter, task, bound, 0, redact(url))
    except InputError:
        part.unlink(missing_ok=True)
        raise
    except FileNotFoundError:
        part.unlink(missing_ok=True)
        raise InputError(f"{redact(url)}: no such file") from None
    except OSError as exc:
        part.unlink(missing_ok=True)
        raise InputError(f"{redact(url)}: cannot read: {exc.strerror or exc}") from None


def _task(meter: Meter | None, name: str, total: int | None,
          done: int) -> int | None:
    if meter is None:
        return None
    return meter.start(name, total or None, done)


def _copy(src: IO[bytes], out: IO[bytes], meter: Meter | None,
          task: int | None, bound: _Bound, start: int, what: str) -> int:
    """Copy what follows byte `start`, up to the bound's cap and deadline; TooLong or
    TooSlow past them (the caller removes the partial file)."""
    cap = bound.cap - start
    copied = 0
    # read1: whatever has arrived, up to CHUNK; read() would wait for CHUNK bytes, and a
    # server dripping one byte at a time would hold it for an hour, past every deadline.
    read = getattr(src, "read1", src.read)
    while block := read(min(CHUNK, cap - copied + 1)):
        copied += len(block)
        if copied > cap:
            raise TooLong(f"{what}: more than {bound.cap} bytes; stopped and removed the "
                          f"partial file ({bound.why})",
                          hint="the source serves another (or an endless) file; check the "
                               "URL and the size recorded for it")
        bound.check_time(what)
        out.write(block)
        if meter is not None and task is not None:
            meter.advance(task, len(block))
    return copied


class TooLong(InputError):
    """A body longer than the size we expect (or may accept)."""


class TooSlow(InputError):
    """A body that takes longer than a download may."""


class _Retry(Exception):
    """A transient failure: try again (resuming) after a pause."""


@dataclass(frozen=True, slots=True)
class _Target:
    """The URL to request, without credentials, and the basic auth that carries them."""

    url: str
    authorization: str = ""

    @classmethod
    def of(cls, url: str) -> _Target:
        parts = urllib.parse.urlsplit(url)
        if parts.username is None:
            return cls(url)
        user = urllib.parse.unquote(parts.username)
        password = urllib.parse.unquote(parts.password or "")
        token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        return cls(redact(url), f"Basic {token}")

    def request(self, offset: int) -> urllib.request.Request:
        request = urllib.request.Request(self.url, headers={"User-Agent": USER_AGENT})
        if offset:
            request.add_header("Range", f"bytes={offset}-")
        if self.authorization:  # never follows a redirect to another server
            request.add_unredirected_header("Authorization", self.authorization)
        return request


def _fetch_http(url: str, part: Path, size: int, bound: _Bound, meter: Meter | None,
                timeout: float, attempts: int) -> None:
    target = _Target.of(url)
    task: int | None = None
    last = ""
    for attempt in range(attempts):
        if attempt:
            time.sleep(min(MAX_BACKOFF_SECONDS, RETRY_BACKOFF_SECONDS * 2 ** (attempt - 1)))
            bound.check_time(target.url)
        try:
            task = _attempt(target, part, size, bound, meter, task, timeout)
            return
        except (TooLong, TooSlow):
            part.unlink(missing_ok=True)
            raise
        except OSError as exc:  # the disk is full, a file-size limit: say which file
            part.unlink(missing_ok=True)
            raise InputError(f"{target.url}: cannot write {part}: {exc.strerror or exc}",
                             hint="check the free space of the cache folder") from None
        except _Retry as exc:
            last = str(exc)
    tries = f"{attempts} attempts" if attempts > 1 else "1 attempt"
    raise StoreError(f"{target.url}: download failed after {tries}: {last}",
                     hint="check the network and the archive, then run again; "
                          "the partial file is kept and resumed")


def _attempt(target: _Target, part: Path, size: int, bound: _Bound, meter: Meter | None,
             task: int | None, timeout: float) -> int | None:
    """One request; appends to `part` from where it stops. Raises _Retry if transient."""
    have = part.stat().st_size if part.exists() else 0
    if have > bound.cap:  # not a prefix of the file we want
        part.unlink()
        have = 0
    try:
        with urllib.request.urlopen(target.request(have), timeout=timeout) as response:
            start = _resume_offset(response, have, part) if response.status == 206 else 0
            declared = _declared_total(response, start)
            if declared > bound.cap:
                raise TooLong(f"{target.url}: the server announces {declared} bytes, more than "
                              f"{bound.cap} ({bound.why}); nothing was downloaded",
                              hint="check the URL and the size recorded for it")
            total = declared or size
            if task is None:
                task = _task(meter, Path(urllib.parse.urlsplit(target.url).path).name,
                             total, start)
            elif meter is not None:
                meter.restart(task, start, total or None)
            with _open_own(part, append=bool(start)) as out:
                out.seek(start)
                out.truncate()
                got = _copy(response, out, meter, task, bound, start, target.url)
            if declared and start + got < declared:  # urllib does not notice a short body
                raise _Retry(f"the connection closed after {start + got} of {declared} bytes")
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # our partial is stale or already complete
            if size and have == size:
                return task
            part.unlink()
            raise _Retry("the server refused to resume; starting over") from exc
        if exc.code >= 500 or exc.code in (408, 429):
            raise _Retry(f"HTTP {exc.code} {exc.reason}") from exc
        raise InputError(f"{target.url}: HTTP {exc.code} {exc.reason}",
                         hint="check the URL; the package may have left the archive "
                              "(refresh the package lists)") from exc
    except (urllib.error.URLError, http.client.HTTPException, ConnectionError,
            TimeoutError) as exc:
        reason = getattr(exc, "reason", None) or str(exc) or exc.__class__.__name__
        if isinstance(exc, urllib.error.URLError) and _is_permanent(exc):
            raise InputError(f"{target.url}: {reason}") from exc
        raise _Retry(str(reason)) from exc
    return task


def _is_permanent(exc: urllib.error.URLError) -> bool:
    """Unknown host names don't get better by retrying a second later."""
    return isinstance(exc.reason, socket.gaierror) and exc.reason.errno == socket.EAI_NONAME


def _resume_offset(response: http.client.HTTPResponse, have: int, part: Path) -> int:
    """Where a 206 answer starts; it must be exactly where our partial file ends."""
    match = re.fullmatch(r"bytes (\d+)-\d+/(\d+|\*)",
                         (response.headers.get("Content-Range") or "").strip())
    if match is None or int(match.group(1)) != have:
        part.unlink(missing_ok=True)  # start over rather than ask the same again
        raise _Retry("the server answered a range we did not ask for")
    return have


def _declared_total(response: http.client.HTTPResponse, start: int) -> int:
    """The file's full size as the answer's Content-Length tells it, 0 if unknown."""
    length = response.headers.get("Content-Length")
    if length and length.isdigit():
        return start + int(length)
    return 0


def read_document(location: str, limit: limits.Limit) -> bytes | bytearray:
    """A document (JSON index, kernel list) from a path, file:// or http(s):// URL, with at
    most `limit` bytes, within limits.HTTP_SECONDS in all over the network.

    InputError for what is wrong with the document, StoreError when the network fails.
    """
    scheme = urllib.parse.urlsplit(location).scheme.lower()
    if scheme in ("", "file"):
        return read_bytes(_local_path(location), limit)
    if scheme not in ("http", "https"):
        raise InputError(f"{redact(location)}: unsupported URL scheme {scheme!r}",
                         hint="use an http(s) or file URL, or a plain path")
    target = _Target.of(location)
    cap = limit.get()
    deadline = time.monotonic() + limits.HTTP_SECONDS.get()
    try:
        with urllib.request.urlopen(target.request(0), timeout=limits.HTTP_TIMEOUT.get()
                                    ) as response:
            declared = _declared_total(response, 0)
            if declared > cap:
                raise limit.exceeded(target.url, declared)
            body = bytearray()  # grows in place: the document is held once, never twice
            while chunk := response.read1(CHUNK):
                if len(body) + len(chunk) > cap:
                    raise limit.exceeded(target.url)
                if time.monotonic() > deadline:
                    raise InputError(f"{target.url}: still sending after "
                                     f"{limits.HTTP_SECONDS.get()} s; stopped",
                                     hint=f"a slow or endless answer; raise "
                                          f"{limits.HTTP_SECONDS.env} if the server is "
                                          "just slow")
                body += chunk
            if declared and len(body) < declared:
                raise StoreError(f"{target.url}: the connection closed after {len(body)} of "
                                 f"{declared} bytes", hint="run again")
            return body
    except urllib.error.HTTPError as exc:
        raise StoreError(f"{target.url}: HTTP {exc.code} {printable(str(exc.reason))}") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise StoreError(f"{target.url}: {printable(str(reason))}",
                         hint="check the URL and the network") from None


@dataclass(frozen=True, slots=True)
class Cache:
    """Where downloads live so that each package is fetched once for every build."""

    root: Path

    @classmethod
    def default(cls) -> Cache:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        return cls(Path(base) / "falco-probes" / "downloads")

    def cache_path_for(self, url: str, sha256: str = "") -> Path:
        """sha256 known: keyed by content; else by URL (re-checked by size only)."""
        name = _file_name(url)
        if sha256:
            return self.root / "sha256" / sha256.lower()[:2] / sha256.lower() / name
        key = hashlib.sha256(redact(url).encode()).hexdigest()[:24]
        return self.root / "url" / key / name

    def fetch(self, url: str, *, limit: limits.Limit, sha256: str = "", size: int = 0,
              meter: Meter | None = None, timeout: float = 60,
              retries: int = 3) -> Path:
        return download(url, self.cache_path_for(url, sha256), limit=limit, sha256=sha256,
                        size=size, meter=meter, timeout=timeout, retries=retries)


def _file_name(url: str) -> str:
    """A safe local file name from the URL's last path segment."""
    path = urllib.parse.unquote(urllib.parse.urlsplit(url).path)
    name = _SAFE_NAME.sub("_", path.rsplit("/", 1)[-1]).lstrip(".")
    return name[:200] or "download"

