"""shared/fetch.py: downloads against a real HTTP server on loopback that supports Range
and can be told to fail: 5xx, cut connections, ignored ranges, slow answers; and against
an attacker's server, where downloads stop at a sane size."""

from __future__ import annotations

import base64
import functools
import hashlib
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from loopback import serving
from rich.progress import Progress

from builder import __version__
from builder.core import limits
from builder.core.errors import InputError, StoreError
from builder.shared import fetch
from builder.shared.fetch import Cache, redact
from builder.ui import DownloadMeter

# Header packages' limit unless a test names another: the kind does not matter here.
download = functools.partial(fetch.download, limit=limits.HEADER_PACKAGE)

PAYLOAD = bytes(range(256)) * 800  # 200 KiB
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()
WRONG = "0" * 64
AUTH = "Basic " + base64.b64encode(b"user:s3cret").decode()


@dataclass
class Script:
    """What the server serves and how it misbehaves, request by request."""

    files: dict[str, bytes] = field(default_factory=dict)
    actions: list[str] = field(default_factory=list)   # consumed one per request
    log: list[dict[str, str]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)


class Handler(BaseHTTPRequestHandler):
    script: Script

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        script = self.script
        script.log.append({"path": self.path, "range": self.headers.get("Range", ""),
                           "agent": self.headers.get("User-Agent", ""),
                           "auth": self.headers.get("Authorization", "")})
        action = script.actions.pop(0) if script.actions else "ok"
        if action.startswith("redirect:"):
            self.send_response(302)
            self.send_header("Location", action.removeprefix("redirect:"))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if action == "hang":
            script.release.wait(10)
            return
        if action.isdigit():
            self.send_error(int(action))
            return
        if self.path.startswith("/private/") and self.headers.get("Authorization") != AUTH:
            self.send_error(401)
            return
        data = script.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        start = 0
        wanted = self.headers.get("Range", "")
        if wanted and action != "no-range":
            start = int(wanted.removeprefix("bytes=").rstrip("-"))
            if start >= len(data):
                self.send_error(416)
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if action == "cut":  # promise everything, send half, hang up
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


@dataclass
class Server:
    url: str
    script: Script


@pytest.fixture
def server() -> Iterator[Server]:
    script = Script(files={"/pkg.deb": PAYLOAD, "/private/pkg.deb": PAYLOAD})
    handler = type("ScriptedHandler", (Handler,), {"script": script})
    try:
        with serving(handler, poll_interval=0.05) as url:
            yield Server(url, script)
    finally:
        script.release.set()


def ranges(server: Server) -> list[str]:
    return [entry["range"] for entry in server.script.log]


def test_download_verifies_and_renames(server: Server, tmp_path: Path) -> None:
    dest = tmp_path / "pkg.deb"
    assert download(f"{server.url}/pkg.deb", dest, sha256=DIGEST, size=len(PAYLOAD)) == dest
    assert dest.read_bytes() == PAYLOAD
    assert not dest.with_name("pkg.deb.part").exists()
    assert server.script.log[0]["agent"] == f"falco-probes/{__version__}"


@pytest.mark.parametrize(("sha256", "size"), [(DIGEST, 0), ("", len(PAYLOAD)),
                                              (DIGEST.upper(), len(PAYLOAD))])
def test_cache_hit_makes_no_request(server: Server, tmp_path: Path, sha256: str,
                                    size: int) -> None:
    dest = tmp_path / "pkg.deb"
    download(f"{server.url}/pkg.deb", dest, sha256=sha256, size=size)
    download(f"{server.url}/pkg.deb", dest, sha256=sha256, size=size)
    assert len(server.script.log) == 1


def test_wrong_sha256_deletes_the_download(server: Server, tmp_path: Path) -> None:
    dest = tmp_path / "pkg.deb"
    with pytest.raises(InputError) as refused:
        download(f"{server.url}/pkg.deb", dest, sha256=WRONG)
    assert refused.value.message == (
        f"{server.url}/pkg.deb: sha256 mismatch: expected {WRONG}, got {DIGEST}")
    assert [p.name for p in tmp_path.iterdir()] == [".pkg.deb.lock"]


def test_wrong_size_deletes_the_download(server: Server, tmp_path: Path) -> None:
    dest = tmp_path / "pkg.deb"
    with pytest.raises(InputError) as refused:
        download(f"{server.url}/pkg.deb", dest, size=len(PAYLOAD) + 1)
    assert refused.value.message == (f"{server.url}/pkg.deb: size mismatch: expected "
                                     f"{len(PAYLOAD) + 1} bytes, got {len(PAYLOAD)}")
    assert not dest.exists() and not dest.with_name("pkg.deb.part").exists()


def test_existing_partial_file_is_resumed(server: Server, tmp_path: Path) -> None:
    dest = tmp_path / "pkg.deb"
    dest.with_name("pkg.deb.part").write_bytes(PAYLOAD[:1000])
    download(f"{server.url}/pkg.deb", dest, sha256=DIGEST)
    assert ranges(server) == ["bytes=1000-"]
    assert dest.read_bytes() == PAYLOAD


def test_cut_connection_is_resumed(server: Server, tmp_path: Path) -> None:
    server.script.actions = ["cut"]
    dest = tmp_path / "pkg.deb"
    download(f"{server.url}/pkg.deb", dest, sha256=DIGEST)
    assert ranges(server) == ["", f"bytes={len(PAYLOAD) // 2}-"]
    assert dest.read_bytes() == PAYLOAD


def test_server_ignoring_range_starts_over(server: Server, tmp_path: Path) -> None:
    server.script.actions = ["no-range"]
    dest = tmp_path / "pkg.deb"
    dest.with_name("pkg.deb.part").write_bytes(b"stale bytes that are not the file")
    download(f"{server.url}/pkg.deb", dest, sha256=DIGEST)
    assert dest.read_bytes() == PAYLOAD


def test_complete_partial_file_answered_416(server: Server, tmp_path: Path) -> None:
    dest = tmp_path / "pkg.deb"
    dest.with_name("pkg.deb.part").write_bytes(PAYLOAD)
    download(f"{server.url}/pkg.deb", dest, sha256=DIGEST, size=len(PAYLOAD))
    assert ranges(server) == [f"bytes={len(PAYLOAD)}-"]
    assert dest.read_bytes() == PAYLOAD


def test_5xx_is_retried(server: Server, tmp_path: Path) -> None:
    server.script.actions = ["503", "500"]
    download(f"{server.url}/pkg.deb", tmp_path / "pkg.deb", sha256=DIGEST, retries=3)
    assert len(server.script.log) == 3


def test_5xx_until_out_of_attempts(server: Server, tmp_path: Path) -> None:
    server.script.actions = ["503", "502"]
    with pytest.raises(StoreError) as failed:
        download(f"{server.url}/pkg.deb", tmp_path / "pkg.deb", retries=2)
    assert failed.value.message == (
        f"{server.url}/pkg.deb: download failed after 2 attempts: HTTP 502 Bad Gateway")


def test_404_is_not_retried(server: Server, tmp_path: Path) -> None:
    with pytest.raises(InputError) as refused:
        download(f"{server.url}/gone.deb", tmp_path / "gone.deb", retries=3)
    assert refused.value.message == f"{server.url}/gone.deb: HTTP 404 Not Found"
    assert len(server.script.log) == 1


def test_slow_server_times_out(server: Server, tmp_path: Path) -> None:
    server.script.actions = ["hang"]
    with pytest.raises(StoreError) as failed:
        download(f"{server.url}/pkg.deb", tmp_path / "pkg.deb", timeout=0.3, retries=1)
    assert failed.value.message.startswith(f"{server.url}/pkg.deb: download failed after "
                                           "1 attempt: ")


def test_credentials_are_sent_but_never_shown(server: Server, tmp_path: Path) -> None:
    with_auth = server.url.replace("http://", "http://user:s3cret@")
    download(f"{with_auth}/private/pkg.deb", tmp_path / "pkg.deb", sha256=DIGEST)
    assert server.script.log[-1]["auth"] == AUTH
    with pytest.raises(InputError) as refused:
        download(f"{with_auth}/private/gone.deb", tmp_path / "gone.deb")
    assert refused.value.message == f"{server.url}/private/gone.deb: HTTP 404 Not Found"
    assert "s3cret" not in str(refused.value) and "user" not in str(refused.value)


@pytest.mark.parametrize(("url", "clean"), [
    ("https://u:p@host:8443/x.deb?a=1", "https://host:8443/x.deb?a=1"),
    ("https://token@host/x.deb", "https://host/x.deb"),
    ("http://[::1]:80/x", "http://[::1]:80/x"),
    ("http://u:p@[::1]:8080/x", "http://[::1]:8080/x"),
    ("file:///tmp/x.deb", "file:///tmp/x.deb"),
])
def test_redact(url: str, clean: str) -> None:
    assert redact(url) == clean


def test_progress_task_counts_bytes(server: Server, tmp_path: Path) -> None:
    """The library reports progress to a meter; the command layer's draws it with rich."""
    with Progress(disable=True) as progress:
        download(f"{server.url}/pkg.deb", tmp_path / "pkg.deb", meter=DownloadMeter(progress))
        (task,) = progress.tasks
    assert (task.total, task.completed) == (len(PAYLOAD), len(PAYLOAD))
    assert task.description == "pkg.deb"


@pytest.mark.parametrize("form", ["file-url", "plain-path"])
def test_local_files(tmp_path: Path, form: str) -> None:
    source = tmp_path / "source.deb"
    source.write_bytes(PAYLOAD)
    url = source.as_uri() if form == "file-url" else str(source)
    dest = tmp_path / "cache" / "copy.deb"
    download(url, dest, sha256=DIGEST, size=len(PAYLOAD))
    assert dest.read_bytes() == PAYLOAD
    missing = tmp_path / "missing.deb"
    url = missing.as_uri() if form == "file-url" else str(missing)
    with pytest.raises(InputError) as refused:
        download(url, tmp_path / "cache" / "missing.deb")
    assert refused.value.message == f"{url}: no such file"
    with pytest.raises(InputError) as refused:
        download(url.replace("missing", "source"), tmp_path / "cache" / "bad.deb", sha256=WRONG)
    assert refused.value.message.endswith(f"sha256 mismatch: expected {WRONG}, got {DIGEST}")


def test_unsupported_scheme(tmp_path: Path) -> None:
    with pytest.raises(InputError) as refused:
        download("ftp://example.invalid/x.deb", tmp_path / "x.deb")
    assert refused.value.message == "ftp://example.invalid/x.deb: unsupported URL scheme 'ftp'"


def test_cache_shares_one_download(server: Server, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    cache = Cache.default()
    assert cache.root == tmp_path / "xdg" / "falco-probes" / "downloads"
    url = f"{server.url}/pkg.deb"
    first = cache.fetch(url, limit=limits.HEADER_PACKAGE, sha256=DIGEST)
    second = Cache.default().fetch(url, limit=limits.HEADER_PACKAGE, sha256=DIGEST)
    assert first == second == cache.root / "sha256" / DIGEST[:2] / DIGEST / "pkg.deb"
    assert len(server.script.log) == 1
    by_url = cache.cache_path_for(f"{server.url}/a%20b/../x.deb?x=1")
    assert by_url.parent.parent == cache.root / "url" and by_url.name == "x.deb"
    assert cache.cache_path_for("http://h/") .name == "download"


def test_redirect_does_not_carry_credentials(server: Server, tmp_path: Path) -> None:
    """A redirect may lead to another server: the password stays with the first."""
    server.script.actions = [f"redirect:{server.url}/pkg.deb"]
    with_auth = server.url.replace("http://", "http://user:s3cret@")
    download(f"{with_auth}/private/pkg.deb", tmp_path / "pkg.deb", sha256=DIGEST)
    assert [(e["path"], e["auth"]) for e in server.script.log] == [
        ("/private/pkg.deb", AUTH), ("/pkg.deb", "")]


def test_parallel_downloads_share_one_request(server: Server, tmp_path: Path) -> None:
    dest = tmp_path / "pkg.deb"
    errors: list[BaseException] = []

    def fetch() -> None:
        try:
            download(f"{server.url}/pkg.deb", dest, sha256=DIGEST)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=fetch) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == [] and dest.read_bytes() == PAYLOAD
    assert len(server.script.log) == 1


@pytest.mark.parametrize(("path", "message"), [
    ("/endless/linux-headers.deb", "more than 262144 bytes; stopped and removed the partial "
                                   "file (a kernel header package (.deb, .rpm) whose size the "
                                   "kernel list does not declare may be at most 256KB "
                                   "(FALCO_PROBES_LIMIT_HEADER_PACKAGE))"),
    ("/huge/linux-headers.deb", "the server announces 1000000000000000 bytes, more than "
                                "262144 (a kernel header package"),
], ids=["endless", "announced too big"])
def test_header_downloads_stop_at_a_sane_maximum(hostile: str, tmp_path: Path, path: str,
                                                 message: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FALCO_PROBES_LIMIT_HEADER_PACKAGE", "256K")
    cache = Cache(tmp_path / "cache")
    with pytest.raises(InputError, match=re.escape(message)):
        cache.fetch(f"{hostile}{path}", limit=limits.HEADER_PACKAGE)
    assert [p for p in cache.root.rglob("*") if p.is_file() and ".lock" not in p.name] == []


def test_a_local_header_url_is_a_regular_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="/dev/zero: is a device, not a regular file"):
        Cache(tmp_path / "cache").fetch("file:///dev/zero", limit=limits.HEADER_PACKAGE)


# --- every download bounded: by size and kind, and in time ---------------------------------

def test_a_body_that_never_ends_stops_at_the_download_time(hostile: str, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FALCO_PROBES_LIMIT_DOWNLOAD_SECONDS", "1")
    with pytest.raises(InputError, match=r"still downloading after 1 s; stopped") as slow:
        Cache(tmp_path / "cache").fetch(f"{hostile}/drip/linux-headers.deb",
                                        limit=limits.HEADER_PACKAGE, retries=1)
    assert "FALCO_PROBES_LIMIT_DOWNLOAD_SECONDS" in (slow.value.hint or "")
    assert [p for p in (tmp_path / "cache").rglob("*") if p.is_file() and ".lock" not in p.name
            ] == []


@pytest.mark.parametrize(("limit", "env"), [
    (limits.HEADER_PACKAGE, "FALCO_PROBES_LIMIT_HEADER_PACKAGE"),
    (limits.DRIVER_SOURCE, "FALCO_PROBES_LIMIT_DRIVER_SOURCE"),
    (limits.KERNEL_IMAGE, "FALCO_PROBES_LIMIT_KERNEL_IMAGE"),
    (limits.PROBE_FILE, "FALCO_PROBES_LIMIT_PROBE_FILE"),
], ids=lambda v: getattr(v, "name", ""))
def test_each_kind_of_file_has_its_own_maximum(hostile: str, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch,
                                               limit: limits.Limit, env: str) -> None:
    monkeypatch.setenv(env, "64K")
    with pytest.raises(InputError, match=rf"may be at most 64KB \({env}\)"):
        Cache(tmp_path / "cache").fetch(f"{hostile}/endless/file", limit=limit)


def test_a_declared_size_past_the_maximum_is_refused_before_reading(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FALCO_PROBES_LIMIT_HEADER_PACKAGE", "1K")
    with pytest.raises(InputError, match="declares 5000 bytes") as refused:
        download("http://127.0.0.1:9/never-asked.deb", tmp_path / "x.deb", size=5000)
    assert "nothing was downloaded" in (refused.value.hint or "")


def test_a_write_the_disk_refuses_is_a_located_error(server: Server, tmp_path: Path) -> None:
    """A file-size limit (or a full disk) while downloading: an error naming the file,
    never a crash, and no partial file left behind."""
    script = (f"import resource, sys; sys.path[:0] = {sys.path!r}\n"
              "resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))\n"
              "import signal; signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
              "from builder.core import limits\n"
              "from builder.core.errors import InputError\n"
              "from builder.shared.fetch import download\n"
              "try:\n"
              f"    download({server.url!r} + '/pkg.deb', __import__('pathlib').Path("
              f"{str(tmp_path / 'x.deb')!r}), limit=limits.HEADER_PACKAGE, retries=1)\n"
              "except InputError as exc:\n"
              "    print(exc.message)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60)
    assert "cannot write" in done.stdout and "x.deb.part" in done.stdout, done.stderr
    assert not (tmp_path / "x.deb.part").exists() and not (tmp_path / "x.deb").exists()
