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
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from rich.progress import Progress, TaskID

from . import __version__
from .errors import InputError, StoreError

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


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download(url: str, dest: Path, *, sha256: str = "", size: int = 0,
             progress: Progress | None = None, timeout: float = 60,
             retries: int = 3) -> Path:
    """Fetch `url` into `dest` (atomically) and return `dest`.

    `sha256` and `size`, when given, must match or the partial file is
    deleted and InputError raised. `retries` is the number of attempts.
    """
    sha256 = sha256.lower()
    if _already_there(dest, sha256, size):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with _locked(dest):
        if _already_there(dest, sha256, size):  # another process finished it meanwhile
            return dest
        part = dest.with_name(dest.name + ".part")
        scheme = urllib.parse.urlsplit(url).scheme.lower()
        if scheme in ("http", "https"):
            _fetch_http(url, part, size, progress, timeout, max(1, retries))
        elif scheme in ("file", ""):
            _copy_local(url, part, size, progress)
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
    with lock_path.open("a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


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


def _copy_local(url: str, part: Path, size: int, progress: Progress | None) -> None:
    source = _local_path(url)
    try:
        with source.open("rb") as src, part.open("wb") as out:
            task = _task(progress, source.name, size or source.stat().st_size, 0)
            _copy(src, out, progress, task)
    except FileNotFoundError as exc:
        part.unlink(missing_ok=True)
        raise InputError(f"{redact(url)}: no such file") from exc
    except IsADirectoryError as exc:
        part.unlink(missing_ok=True)
        raise InputError(f"{redact(url)}: is a directory, not a file") from exc
    except PermissionError as exc:
        part.unlink(missing_ok=True)
        raise InputError(f"{redact(url)}: permission denied") from exc


def _task(progress: Progress | None, name: str, total: int | None,
          done: int) -> TaskID | None:
    if progress is None:
        return None
    return progress.add_task(name, total=total or None, completed=done)


def _copy(src: IO[bytes], out: IO[bytes], progress: Progress | None,
          task: TaskID | None) -> int:
    copied = 0
    while block := src.read(CHUNK):
        out.write(block)
        copied += len(block)
        if progress is not None and task is not None:
            progress.advance(task, len(block))
    return copied


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


def _fetch_http(url: str, part: Path, size: int, progress: Progress | None,
                timeout: float, attempts: int) -> None:
    target = _Target.of(url)
    task: TaskID | None = None
    last = ""
    for attempt in range(attempts):
        if attempt:
            time.sleep(min(MAX_BACKOFF_SECONDS, RETRY_BACKOFF_SECONDS * 2 ** (attempt - 1)))
        try:
            task = _attempt(target, part, size, progress, task, timeout)
            return
        except _Retry as exc:
            last = str(exc)
    tries = f"{attempts} attempts" if attempts > 1 else "1 attempt"
    raise StoreError(f"{target.url}: download failed after {tries}: {last}",
                     hint="check the network and the archive, then run again; "
                          "the partial file is kept and resumed")


def _attempt(target: _Target, part: Path, size: int, progress: Progress | None,
             task: TaskID | None, timeout: float) -> TaskID | None:
    """One request; appends to `part` from where it stops. Raises _Retry if transient."""
    have = part.stat().st_size if part.exists() else 0
    if size and have > size:  # not a prefix of the file we want
        part.unlink()
        have = 0
    try:
        with urllib.request.urlopen(target.request(have), timeout=timeout) as response:
            start = _resume_offset(response, have, part) if response.status == 206 else 0
            declared = _declared_total(response, start)
            total = declared or size
            if task is None:
                task = _task(progress, Path(urllib.parse.urlsplit(target.url).path).name,
                             total, start)
            elif progress is not None:
                progress.update(task, completed=start, total=total or None)
            with part.open("r+b" if start else "wb") as out:
                out.seek(start)
                out.truncate()
                got = _copy(response, out, progress, task)
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

    def fetch(self, url: str, *, sha256: str = "", size: int = 0,
              progress: Progress | None = None, timeout: float = 60,
              retries: int = 3) -> Path:
        return download(url, self.cache_path_for(url, sha256), sha256=sha256, size=size,
                        progress=progress, timeout=timeout, retries=retries)


def _file_name(url: str) -> str:
    """A safe local file name from the URL's last path segment."""
    path = urllib.parse.unquote(urllib.parse.urlsplit(url).path)
    name = _SAFE_NAME.sub("_", path.rsplit("/", 1)[-1]).lstrip(".")
    return name[:200] or "download"

