"""A faithful, in-process fake of the GitHub REST endpoints used to publish release assets.

The fake is an HTTP server on loopback, laid out like GitHub Enterprise Server, so real
PyGithub (or urllib, curl, ...) can talk to it over real sockets:

* REST API under ``/api/v3`` (what PyGithub gets as ``base_url``),
* uploads under ``/api/uploads``,
* browser downloads at ``/<owner>/<repo>/releases/download/<tag>/<name>``, answered with a
  302 to ``/_objects/<asset id>``, which serves the bytes (HEAD and ``Range`` supported);
  drafts' assets are at ``.../download/untagged-<hex>/<name>`` (authenticated callers only)
  until the release is published;
* ``GET .../releases/assets/<id>`` with ``Accept: application/octet-stream`` redirects to
  ``/api/_objects/<asset id>`` (same bytes): PyGithub refuses to follow a redirect to its own
  host unless the path starts with ``/api/``, so ``GitReleaseAsset.download_asset()`` works.

Every URL in responses (JSON, ``Link``, ``Location``) uses the scheme, host and port of
``api_url``; PyGithub asserts that. API responses carry ``X-RateLimit-*`` headers; browser
downloads and ``/_objects`` are not API calls and neither count nor carry them.

Usage::

    with FakeGitHub(token="secret-token", owner="acme", repo="probes") as fake:
        gh = github.Github(base_url=fake.api_url, auth=github.Auth.Token("secret-token"),
                           retry=None, seconds_between_requests=None,
                           seconds_between_writes=None)
        ...
        assert fake.count("POST", r"/assets$") == 3

Behaviour modelled on github.com (see the individual handlers): drafts are only visible to
authenticated callers and are not found by tag; draft asset download URLs use an
``untagged-<hex>`` path that stops working on publish; asset names are rewritten like GitHub
does (:func:`github_asset_name`); 1,000 assets per release; assets must be under 2 GiB; a
failed upload can leave a ``starter`` asset that blocks its name until deleted; immutable
releases; primary and secondary rate limits; faults (:class:`Fault`) injected per request.

Only the standard library is used.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import re
import secrets
import socket
import threading
import time
import unicodedata
import urllib.parse
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, TypeVar, cast

__all__ = [
    "MAX_ASSETS_PER_RELEASE",
    "MAX_ASSET_BYTES",
    "Call",
    "FakeGitHub",
    "Fault",
    "github_asset_name",
    "validate_tag_name",
]

JSON = dict[str, Any]

#: GitHub refuses more than this many assets (``starter`` ones included) in one release.
MAX_ASSETS_PER_RELEASE = 1000
#: "Each file included in a release must be under 2 GiB."
MAX_ASSET_BYTES = 2 * 1024**3

DOCS = "https://docs.github.com/rest"
DOCS_CREATE_RELEASE = "https://docs.github.com/rest/releases/releases#create-a-release"
DOCS_UPDATE_RELEASE = "https://docs.github.com/rest/releases/releases#update-a-release"
DOCS_UPLOAD_ASSET = "https://docs.github.com/rest/releases/assets#upload-a-release-asset"
DOCS_UPDATE_ASSET = "https://docs.github.com/rest/releases/assets#update-a-release-asset"
DOCS_RATE_LIMIT = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
DOCS_SECONDARY = DOCS_RATE_LIMIT + "#about-secondary-rate-limits"

_WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})
_UNSAFE_RUN = re.compile(r"[^A-Za-z0-9._-]+")
_HEX40 = re.compile(r"[0-9a-fA-F]{40}")
_BAD_REF_CHARS = frozenset(" ~^:?*[\\")
_DRAIN_LIMIT = 64 * 1024 * 1024
_DRAIN_SECONDS = 2.0


# --------------------------------------------------------------------------------------
# Public helpers
# --------------------------------------------------------------------------------------


def github_asset_name(name: str) -> str:
    """Return the name GitHub stores for an asset uploaded as ``name``.

    Non-ASCII letters are transliterated when they decompose to an ASCII letter plus accents
    (``é`` -> ``e``); every run of characters outside ``[A-Za-z0-9._-]`` becomes one ``.``;
    leading and trailing periods are stripped. ``a~b.o`` -> ``a.b.o``, ``5.15.65+`` ->
    ``5.15.65``, ``a b`` -> ``a.b``, ``.x.`` -> ``x``, ``a+~b`` -> ``a.b``.
    """
    decomposed = unicodedata.normalize("NFKD", name)
    transliterated = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _UNSAFE_RUN.sub(".", transliterated).strip(".")


def validate_tag_name(tag: str) -> str | None:
    """Return why GitHub would refuse ``tag`` as a release tag name, or None if it is fine.

    Rules of ``git check-ref-format`` plus GitHub's refusal of 40-hex names (they look like
    commit SHAs).
    """
    if not tag:
        return "tag_name is missing"
    if _HEX40.fullmatch(tag):
        return "tag_name must not look like a commit SHA (40 hexadecimal characters)"
    if tag.startswith("-"):
        return "tag_name must not start with '-'"
    if any(ord(c) < 0x20 or ord(c) == 0x7F or c in _BAD_REF_CHARS for c in tag):
        return "tag_name contains characters not allowed in a git ref"
    if ".." in tag or "@{" in tag or "//" in tag or tag == "@":
        return "tag_name is not a valid git ref name"
    if tag.startswith("/") or tag.endswith("/") or tag.endswith("."):
        return "tag_name is not a valid git ref name"
    for component in tag.split("/"):
        if component.startswith(".") or component.endswith(".lock"):
            return "tag_name is not a valid git ref name"
    return None


@dataclass(frozen=True)
class Call:
    """One request the fake received. ``status`` is 0 when the connection was dropped."""

    method: str
    path: str
    query: dict[str, str]
    status: int


@dataclass
class Fault:
    """A fault answered, instead of normal handling, to the next ``times`` matching requests.

    ``method`` is an HTTP method (``"*"`` matches any); ``path_re`` is searched
    (``re.search``) in the request path, without query string, as sent on the wire.

    * default: ``status`` (502) with a GitHub-like JSON body (or ``body``);
    * ``retry_after``: adds ``Retry-After``; with status 403/429 the body is GitHub's
      secondary-rate-limit message;
    * ``rate_limit_reset_in``: primary rate-limit shape: ``X-RateLimit-Remaining: 0``,
      ``X-RateLimit-Reset`` = now + this, body "API rate limit exceeded ..." (pass 403);
    * ``drop_connection``: close the socket without any response (the body is read first);
    * ``leave_starter`` (uploads): the upload is processed but the asset is left in state
      ``starter`` (listed and counted, size 0, no digest, not downloadable), then the request
      fails with ``status`` (or a dropped connection when ``drop_connection`` too); an upload
      refused anyway (422, 401, ...) gets that answer and still uses the fault up;
    * ``truncate_body_at``: the request is handled normally but only the first N bytes of the
      response body are sent (``Content-Length`` still announces the whole body), then the
      connection is closed, like a download cut midway;
    * ``echo_authorization``: the error message quotes the request's ``Authorization``
      header, as a careless proxy or API does (a client must never print it).
    """

    method: str
    path_re: str
    status: int = 502
    times: int = 1
    retry_after: int | None = None
    drop_connection: bool = False
    leave_starter: bool = False
    body: dict[str, Any] | None = None
    rate_limit_reset_in: int | None = None
    truncate_body_at: int | None = None
    echo_authorization: bool = False


# --------------------------------------------------------------------------------------
# Internal state
# --------------------------------------------------------------------------------------


@dataclass
class _Asset:
    id: int
    release: _Release
    name: str
    label: str | None
    content_type: str
    state: str
    data: bytes
    digest: str | None
    uploader: str
    created_at: float
    updated_at: float
    download_count: int = 0


@dataclass
class _Release:
    id: int
    repo: _Repo
    tag_name: str
    target_commitish: str
    name: str | None
    body: str | None
    draft: bool
    prerelease: bool
    author: str
    created_at: float
    updated_at: float
    untagged: str
    published_at: float | None = None
    immutable: bool = False
    assets: dict[int, _Asset] = field(default_factory=dict)


@dataclass
class _Repo:
    id: int
    owner: str
    name: str
    immutable_releases: bool
    created_at: float
    releases: dict[int, _Release] = field(default_factory=dict)
    burned_tags: set[str] = field(default_factory=set)

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


@dataclass
class _Bucket:
    limit: int
    reset: float
    used: int = 0


@dataclass
class _FaultSlot:
    fault: Fault
    pattern: re.Pattern[str]
    remaining: int


@dataclass
class _Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: bytes | None  # None: not read (oversized upload)
    client_ip: str


@dataclass
class _Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False
    truncate_at: int | None = None
    payload: Any = None  # JSON to encode into body once the state lock is released


_BAD_CREDENTIALS = object()
_T = TypeVar("_T")


class _Route:
    __slots__ = ("handler", "methods", "pattern")

    def __init__(
        self,
        methods: str,
        pattern: str,
        handler: Callable[[_Request, str | None, re.Match[str]], _Response],
    ) -> None:
        self.methods = frozenset(methods.split())
        self.pattern = re.compile(pattern)
        self.handler = handler


# --------------------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, fake: FakeGitHub) -> None:
        self.fake = fake
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet about clients that hang up (the default prints a traceback)."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "GitHub.com"
    sys_version = ""
    timeout = 60

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        server = cast(_Server, self.server)
        with server.connections_lock:
            server.connections.add(self.connection)

    def finish(self) -> None:
        server = cast(_Server, self.server)
        with server.connections_lock:
            server.connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        fake = cast(_Server, self.server).fake
        split = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(split.query, keep_blank_values=True))
        headers = {k.lower(): v for k, v in self.headers.items()}
        body: bytes | None
        try:
            if fake._reads_body(method, split.path, headers):
                body = self._read_body(headers)
            else:
                body = None
        except (ValueError, OSError):
            self.close_connection = True
            return
        request = _Request(method, split.path, query, headers, body, self.client_address[0])
        response = fake._handle(request)
        self._send(request, response)

    def _read_body(self, headers: dict[str, str]) -> bytes:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65537)
        length = int(headers.get("content-length") or "0")
        if length <= 0:
            return b""
        data = self.rfile.read(length)
        if len(data) != length:
            raise ValueError("short body")
        return data

    def _send(self, request: _Request, response: _Response) -> None:
        if response.drop:
            self.close_connection = True
            if request.body is None:
                self._linger()
            return
        unread = request.body is None
        truncated = response.truncate_at is not None
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        if response.status != 204 and response.status != 304:
            self.send_header("Content-Length", str(len(response.body)))
        if unread or truncated:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if request.method != "HEAD" and response.body:
            body = response.body
            if response.truncate_at is not None:
                body = body[: max(0, response.truncate_at)]
            self.wfile.write(body)
        if unread or truncated:
            self._linger()

    def _linger(self) -> None:
        """Half-close and drain what the client still sends, so it reads our answer (no RST)."""
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + _DRAIN_SECONDS
            drained = 0
            while drained < _DRAIN_LIMIT:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self.connection.settimeout(remaining)
                chunk = self.connection.recv(65536)
                if not chunk:
                    break
                drained += len(chunk)
        except OSError:
            pass


# --------------------------------------------------------------------------------------
# The fake
# --------------------------------------------------------------------------------------


class FakeGitHub:
    """Fake GitHub (Enterprise layout) REST server for releases and release assets.

    ``token`` authenticates as ``login`` (default: ``owner``), which may write to every repo.
    ``rate_limit`` is the primary limit per token (anonymous callers get
    ``anonymous_rate_limit``, default the same) per ``rate_limit_window`` seconds.
    ``write_limit_per_minute`` (None: unlimited; github.com uses about 80) is the secondary
    limit on writes. ``clock`` (epoch seconds) drives rate limits and timestamps.
    Like github.com the primary limit defaults to 5000 requests per hour: a test making more
    API calls than that must raise ``rate_limit``. ``max_assets_per_release`` and
    ``max_asset_bytes`` (uploads must be smaller) can be lowered to test the caps cheaply.

    PyGithub throttles itself by default (``seconds_between_requests=0.25``,
    ``seconds_between_writes=1.0``); pass None for both to keep tests fast.
    """

    def __init__(
        self,
        token: str = "secret-token",
        owner: str = "acme",
        repo: str = "probes",
        *,
        login: str | None = None,
        immutable_releases: bool = False,
        rate_limit: int = 5000,
        anonymous_rate_limit: int | None = None,
        rate_limit_window: int = 3600,
        write_limit_per_minute: int | None = None,
        max_assets_per_release: int = MAX_ASSETS_PER_RELEASE,
        max_asset_bytes: int = MAX_ASSET_BYTES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.token = token
        self.owner = owner
        self.repo = repo
        self.login = login if login is not None else owner
        self.rate_limit = rate_limit
        self.anonymous_rate_limit = (
            anonymous_rate_limit if anonymous_rate_limit is not None else rate_limit
        )
        self.rate_limit_window = rate_limit_window
        self.write_limit_per_minute = write_limit_per_minute
        self.max_assets_per_release = max_assets_per_release
        self.max_asset_bytes = max_asset_bytes
        self.clock = clock
        self.calls: list[Call] = []

        self._lock = threading.RLock()
        self._tokens: dict[str, str] = {token: self.login}
        self._user_ids: dict[str, int] = {}
        self._user_cache: dict[str, JSON] = {}
        self._repos: dict[str, _Repo] = {}
        self._assets: dict[int, _Asset] = {}
        self._buckets: dict[str, _Bucket] = {}
        self._writes: dict[str, deque[float]] = {}
        self._faults: list[_FaultSlot] = []
        self._next_id = 1000
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._host = ""
        self._routes = self._build_routes()
        self.add_repo(f"{owner}/{repo}", immutable_releases=immutable_releases)

    # ---- lifecycle ---------------------------------------------------------------------

    def start(self) -> FakeGitHub:
        """Bind 127.0.0.1 on a free port and serve in a daemon thread."""
        if self._server is not None:
            return self
        server = _Server(self)
        self._server = server
        self._user_cache.clear()
        self._host = f"127.0.0.1:{server.server_address[1]}"
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"FakeGitHub-{self._host}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every open connection."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with server.connections_lock:
            connections = list(server.connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeGitHub:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``."""
        if not self._host:
            raise RuntimeError("FakeGitHub is not started")
        return self._host

    @property
    def web_url(self) -> str:
        """``http://127.0.0.1:PORT`` (html_url / browser_download_url side)."""
        return f"http://{self.host}"

    @property
    def api_url(self) -> str:
        """``http://127.0.0.1:PORT/api/v3``, the ``base_url`` for PyGithub."""
        return f"{self.web_url}/api/v3"

    @property
    def uploads_url(self) -> str:
        """``http://127.0.0.1:PORT/api/uploads``."""
        return f"{self.web_url}/api/uploads"

    # ---- configuration & inspection ----------------------------------------------------

    def add_repo(self, full_name: str, immutable_releases: bool = False) -> None:
        """Add a public repository ``owner/name`` (writable by every known token)."""
        owner, _, name = full_name.partition("/")
        if not owner or not name or "/" in name:
            raise ValueError(f"expected owner/name, got {full_name!r}")
        with self._lock:
            key = full_name.lower()
            if key in self._repos:
                raise ValueError(f"repo {full_name} already exists")
            self._repos[key] = _Repo(self._new_id(), owner, name, immutable_releases, self.clock())

    def add_token(self, token: str, login: str) -> None:
        """Accept another token, authenticating as ``login``."""
        with self._lock:
            self._tokens[token] = login

    def inject(self, fault: Fault) -> None:
        """Queue a fault; faults are matched in the order they were injected."""
        slot = _FaultSlot(fault, re.compile(fault.path_re), fault.times)
        with self._lock:
            self._faults.append(slot)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def pending_faults(self) -> int:
        """How many fault answers are still queued."""
        with self._lock:
            return sum(slot.remaining for slot in self._faults)

    def count(self, method: str | None = None, path_re: str | None = None) -> int:
        """Number of recorded calls with this method (any if None) and path (``re.search``)."""
        pattern = re.compile(path_re) if path_re is not None else None
        with self._lock:
            calls = list(self.calls)
        return sum(
            1
            for c in calls
            if (method is None or c.method == method.upper())
            and (pattern is None or pattern.search(c.path))
        )

    def clear_calls(self) -> None:
        with self._lock:
            self.calls.clear()

    def releases(self, repo: str | None = None) -> list[JSON]:
        """Every release of ``repo`` (default: the main repo), drafts included, newest first."""
        with self._lock:
            r = self._repo_or_raise(repo)
            return [self._release_json(rel) for rel in self._sorted_releases(r, True)]

    def asset_bytes(self, repo: str | None, release_id: int, name: str) -> bytes:
        """The stored bytes of asset ``name`` (b"" for a starter asset); KeyError if none."""
        with self._lock:
            r = self._repo_or_raise(repo)
            release = r.releases[release_id]
            for asset in release.assets.values():
                if asset.name == name:
                    return asset.data
        raise KeyError(f"no asset {name!r} in release {release_id} of {r.full_name}")

    def add_release(
        self,
        tag_name: str,
        repo: str | None = None,
        *,
        draft: bool = False,
        prerelease: bool = False,
        name: str | None = None,
        body: str | None = None,
        assets: dict[str, bytes] | None = None,
    ) -> JSON:
        """Seed a release (and uploaded assets) directly, without HTTP; returns its JSON.

        Call it once the fake is started (the JSON holds URLs with the port)."""
        with self._lock:
            r = self._repo_or_raise(repo)
            release = self._new_release(r, tag_name, "main", name, body, draft, prerelease)
            for asset_name, data in (assets or {}).items():
                self._new_asset(release, github_asset_name(asset_name), None, data, "uploaded")
            return self._release_json(release)

    # ---- request entry points (called from handler threads) -----------------------------

    def _reads_body(self, method: str, path: str, headers: dict[str, str]) -> bool:
        """False only for an upload whose Content-Length exceeds the limit (GitHub answers
        422 without reading it)."""
        if method != "POST" or not path.startswith("/api/uploads/"):
            return True
        try:
            length = int(headers.get("content-length") or "0")
        except ValueError:
            return True
        return length < self.max_asset_bytes

    def _handle(self, req: _Request) -> _Response:
        with self._lock:
            try:
                response = self._route(req)
            except Exception as exc:  # pragma: no cover - a bug in the fake
                response = self._json(500, {"message": f"fake GitHub error: {exc!r}"})
            self.calls.append(
                Call(req.method, req.path, req.query, 0 if response.drop else response.status)
            )
        if response.payload is not None:  # fresh objects: safe to encode without the lock
            response.body = json.dumps(response.payload, separators=(",", ":")).encode()
        return response

    # ---- routing -----------------------------------------------------------------------

    def _build_routes(self) -> list[tuple[str, list[_Route]]]:
        repo = r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)"
        rels = repo + "/releases"
        api = [
            _Route("GET", r"/rate_limit", self._get_rate_limit),
            _Route("GET", r"/user", self._get_user),
            _Route("GET", r"/users/(?P<login>[^/]+)", self._get_named_user),
            _Route("GET", r"/repositories/(?P<repo_id>\d+)", self._get_repo_by_id),
            _Route("GET", repo, self._get_repo),
            _Route("GET POST", rels, self._releases),
            _Route("GET", rels + r"/latest", self._latest_release),
            _Route("GET", rels + r"/tags/(?P<tag>.+)", self._release_by_tag),
            _Route("GET PATCH DELETE", rels + r"/assets/(?P<asset_id>\d+)", self._asset),
            _Route("GET PATCH DELETE", rels + r"/(?P<release_id>\d+)", self._release),
            _Route("GET", rels + r"/(?P<release_id>\d+)/assets", self._list_assets),
        ]
        uploads = [
            _Route("POST", rels + r"/(?P<release_id>\d+)/assets", self._upload),
        ]
        web = [
            _Route(
                "GET HEAD",
                r"/(?P<owner>[^/]+)/(?P<repo>[^/]+)/releases/download/(?P<tag>[^/]+)/(?P<name>[^/]+)",
                self._browser_download,
            ),
            _Route("GET HEAD", r"(?:/api)?/_objects/(?P<asset_id>\d+)", self._object),
        ]
        return [("/api/v3", api), ("/api/uploads", uploads), ("", web)]

    def _route(self, req: _Request) -> _Response:
        fault = self._take_fault(req)
        is_upload = req.method == "POST" and req.path.startswith("/api/uploads/")
        if (
            fault is not None
            and fault.truncate_body_at is None
            and not (fault.leave_starter and is_upload)
        ):
            return self._fault_response(req, fault)
        is_api = req.path.startswith("/api/v3/") or req.path.startswith("/api/uploads/")
        if is_api:
            response = self._api(req, fault)
        else:
            response = self._dispatch(req, "", self._routes[2][1], None) or self._web_404()
        if fault is not None and fault.truncate_body_at is not None:
            response.truncate_at = fault.truncate_body_at
        return response

    def _dispatch(
        self, req: _Request, prefix: str, routes: list[_Route], login: str | None
    ) -> _Response | None:
        rest = req.path[len(prefix) :]
        for route in routes:
            match = route.pattern.fullmatch(rest)
            if match is not None and req.method in route.methods:
                return route.handler(req, login, match)
        return None

    def _api(self, req: _Request, fault: Fault | None) -> _Response:
        if req.method == "HEAD":  # like GitHub: a GET without the body (recorded as HEAD)
            req = dataclasses.replace(req, method="GET")
        auth = self._authenticate(req)
        if auth is _BAD_CREDENTIALS or auth is None:
            bucket_key, limit = f"ip:{req.client_ip}", self.anonymous_rate_limit
        else:
            bucket_key, limit = f"user:{auth}", self.rate_limit
        login = auth if isinstance(auth, str) else None
        bucket = self._bucket(bucket_key, limit)
        exempt = req.method == "GET" and req.path == "/api/v3/rate_limit"
        exceeded = bucket.used >= bucket.limit
        if not exempt and not exceeded:
            bucket.used += 1
        response = self._api_inner(req, fault, auth, login, exceeded and not exempt)
        headers = self._rate_headers(bucket)
        headers.update(response.headers)
        response.headers = headers
        return response

    def _api_inner(
        self,
        req: _Request,
        fault: Fault | None,
        auth: object,
        login: str | None,
        rate_limited: bool,
    ) -> _Response:
        if auth is _BAD_CREDENTIALS:
            return self._json(401, {"message": "Bad credentials", "documentation_url": DOCS})
        if rate_limited:
            who = f"user ID {self._user_id(login)}" if login else req.client_ip
            message = f"API rate limit exceeded for {who}."
            if login is None:
                message += (
                    " (But here's the good news: Authenticated requests get a higher rate"
                    " limit. Check out the documentation for more details.)"
                )
            return self._json(403, {"message": message, "documentation_url": DOCS_RATE_LIMIT})
        is_write = req.method in _WRITE_METHODS
        if is_write and login is None:
            return self._requires_auth()
        if is_write and login is not None and self.write_limit_per_minute is not None:
            retry_after = self._take_write(login)
            if retry_after is not None:
                response = self._json(
                    403,
                    {
                        "message": "You have exceeded a secondary rate limit. Please wait a few"
                        " minutes before you try again. If you reach out to GitHub Support for"
                        f" help, please include the request ID {secrets.token_hex(8).upper()}.",
                        "documentation_url": DOCS_SECONDARY,
                    },
                )
                response.headers["Retry-After"] = str(retry_after)
                return response
        if req.path.startswith("/api/uploads/"):
            uploaded = self._dispatch(req, "/api/uploads", self._routes[1][1], login)
            if uploaded is None:
                return self._not_found()
            if fault is not None and fault.leave_starter and uploaded.status == 201:
                asset = self._assets[uploaded.payload["id"]]
                asset.state, asset.data, asset.digest = "starter", b"", None
                return self._fault_response(req, fault)
            return uploaded
        answered = self._dispatch(req, "/api/v3", self._routes[0][1], login)
        return answered if answered is not None else self._not_found()

    # ---- auth & rate limits ------------------------------------------------------------

    def _authenticate(self, req: _Request) -> object:
        """None (anonymous), a login, or _BAD_CREDENTIALS."""
        header = req.headers.get("authorization")
        if header is None:
            return None
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() not in ("token", "bearer"):
            return _BAD_CREDENTIALS
        login = self._tokens.get(value.strip())
        return login if login is not None else _BAD_CREDENTIALS

    def _bucket(self, key: str, limit: int) -> _Bucket:
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None or now >= bucket.reset:
            bucket = _Bucket(limit=limit, reset=math.floor(now) + self.rate_limit_window)
            self._buckets[key] = bucket
        return bucket

    def _rate_headers(self, bucket: _Bucket) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(bucket.limit),
            "X-RateLimit-Remaining": str(max(0, bucket.limit - bucket.used)),
            "X-RateLimit-Reset": str(int(bucket.reset)),
            "X-RateLimit-Used": str(bucket.used),
            "X-RateLimit-Resource": "core",
        }

    def _take_write(self, login: str) -> int | None:
        """Record a write; return a Retry-After (seconds) instead if over the budget."""
        assert self.write_limit_per_minute is not None
        now = self.clock()
        window = self._writes.setdefault(login, deque())
        while window and window[0] <= now - 60:
            window.popleft()
        if len(window) >= self.write_limit_per_minute:
            return max(1, math.ceil(window[0] + 60 - now))
        window.append(now)
        return None

    # ---- faults ------------------------------------------------------------------------

    def _take_fault(self, req: _Request) -> Fault | None:
        for slot in self._faults:
            method = slot.fault.method.upper()
            if method not in ("*", req.method) or not slot.pattern.search(req.path):
                continue
            slot.remaining -= 1
            if slot.remaining <= 0:
                self._faults.remove(slot)
            return slot.fault
        return None

    def _fault_response(self, req: _Request, fault: Fault) -> _Response:
        if fault.drop_connection:
            return _Response(0, drop=True)
        status = fault.status
        headers: dict[str, str] = {}
        body: JSON
        if fault.rate_limit_reset_in is not None:
            body = {
                "message": f"API rate limit exceeded for user ID {self._user_id(self.login)}.",
                "documentation_url": DOCS_RATE_LIMIT,
            }
            headers.update(
                {
                    "X-RateLimit-Limit": str(self.rate_limit),
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": str(int(self.clock()) + fault.rate_limit_reset_in),
                    "X-RateLimit-Used": str(self.rate_limit),
                    "X-RateLimit-Resource": "core",
                }
            )
        elif fault.retry_after is not None and status in (403, 429):
            body = {
                "message": "You have exceeded a secondary rate limit. Please wait a few minutes"
                " before you try again.",
                "documentation_url": DOCS_SECONDARY,
            }
        else:
            try:
                phrase = HTTPStatus(status).phrase
            except ValueError:
                phrase = "Error"
            body = {"message": phrase if status < 500 else f"Server Error: {phrase}"}
            if fault.echo_authorization:
                body["message"] += f" (Authorization: {req.headers.get('authorization', '')})"
            body["documentation_url"] = DOCS
        if fault.retry_after is not None:
            headers["Retry-After"] = str(fault.retry_after)
        response = self._json(status, fault.body if fault.body is not None else body)
        response.headers.update(headers)
        if req.path.startswith("/api/"):
            # like GitHub, even error answers carry rate-limit headers (not consumed here)
            auth = self._authenticate(req)
            key = f"user:{auth}" if isinstance(auth, str) else f"ip:{req.client_ip}"
            limit = self.rate_limit if isinstance(auth, str) else self.anonymous_rate_limit
            for name, value in self._rate_headers(self._bucket(key, limit)).items():
                response.headers.setdefault(name, value)
        return response

    # ---- helpers -----------------------------------------------------------------------

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _user_id(self, login: str | None) -> int:
        key = login or ""
        if key not in self._user_ids:
            self._user_ids[key] = 583231 + len(self._user_ids)
        return self._user_ids[key]

    def _repo_or_raise(self, repo: str | None) -> _Repo:
        name = repo if repo is not None else f"{self.owner}/{self.repo}"
        r = self._repos.get(name.lower())
        if r is None:
            raise KeyError(f"unknown repo {name}")
        return r

    def _find_repo(self, match: re.Match[str]) -> _Repo | None:
        owner = urllib.parse.unquote(match["owner"])
        name = urllib.parse.unquote(match["repo"])
        return self._repos.get(f"{owner}/{name}".lower())

    def _find_release(self, match: re.Match[str], login: str | None) -> _Release | None:
        repo = self._find_repo(match)
        if repo is None:
            return None
        release = repo.releases.get(int(match["release_id"]))
        if release is None or (release.draft and login is None):
            return None
        return release

    @staticmethod
    def _sorted_releases(repo: _Repo, include_drafts: bool) -> list[_Release]:
        rels = [r for r in repo.releases.values() if include_drafts or not r.draft]
        rels.sort(key=lambda r: (r.created_at, r.id), reverse=True)
        return rels

    def _json(self, status: int, payload: Any) -> _Response:
        return _Response(
            status,
            b"",
            {
                "Content-Type": "application/json; charset=utf-8",
                "X-GitHub-Media-Type": "github.v3; format=json",
                "X-GitHub-Api-Version-Selected": "2022-11-28",
                "X-GitHub-Request-Id": secrets.token_hex(8).upper(),
            },
            payload=payload,
        )

    def _requires_auth(self) -> _Response:
        return self._json(401, {"message": "Requires authentication", "documentation_url": DOCS})

    def _not_found(self) -> _Response:
        return self._json(404, {"message": "Not Found", "documentation_url": DOCS, "status": "404"})

    @staticmethod
    def _web_404() -> _Response:
        return _Response(404, b"Not Found", {"Content-Type": "text/plain; charset=utf-8"})

    def _validation(
        self, resource: str, code: str, field_name: str, docs: str, message: str | None = None
    ) -> _Response:
        error: JSON = {"resource": resource, "code": code, "field": field_name}
        if message is not None:
            error["message"] = message
        return self._json(
            422,
            {"message": "Validation Failed", "errors": [error], "documentation_url": docs},
        )

    def _message_422(self, message: str, docs: str = DOCS) -> _Response:
        return self._json(422, {"message": message, "documentation_url": docs, "status": "422"})

    @staticmethod
    def _ts(t: float | None) -> str | None:
        if t is None:
            return None
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))

    def _parse_json_body(self, req: _Request) -> JSON | _Response:
        raw = req.body or b""
        if not raw.strip():
            return {}
        try:
            data = json.loads(raw)
        except ValueError:
            return self._json(400, {"message": "Problems parsing JSON", "documentation_url": DOCS})
        if not isinstance(data, dict):
            return self._json(400, {"message": "Problems parsing JSON", "documentation_url": DOCS})
        return cast(JSON, data)

    def _paginate(self, req: _Request, items: list[_T], render: Callable[[_T], JSON]) -> _Response:
        def number(key: str, default: int) -> int:
            try:
                return int(req.query.get(key, default))
            except ValueError:
                return default

        per_page = number("per_page", 30)
        per_page = 30 if per_page < 1 else min(per_page, 100)
        page = max(1, number("page", 1))
        last = max(1, math.ceil(len(items) / per_page))
        chunk = items[(page - 1) * per_page : page * per_page]
        response = self._json(200, [render(item) for item in chunk])

        def link(target: int, rel: str) -> str:
            query = dict(req.query)
            query["page"] = str(target)
            return f'<{self.web_url}{req.path}?{urllib.parse.urlencode(query)}>; rel="{rel}"'

        links: list[str] = []
        if page > 1:
            links.append(link(page - 1, "prev"))
        if page < last:
            links.append(link(page + 1, "next"))
            links.append(link(last, "last"))
        if page > 1:
            links.append(link(1, "first"))
        if links:
            response.headers["Link"] = ", ".join(links)
        return response

    # ---- JSON renderers ----------------------------------------------------------------

    def _user_json(self, login: str) -> JSON:
        """Shared, never mutated (copy before changing it)."""
        cached = self._user_cache.get(login)
        if cached is not None:
            return cached
        uid = self._user_id(login)
        cached = self._user_cache[login] = {
            "login": login,
            "id": uid,
            "node_id": f"U_kgDO{uid:08d}",
            "avatar_url": f"{self.web_url}/avatars/u/{uid}",
            "gravatar_id": "",
            "url": f"{self.api_url}/users/{login}",
            "html_url": f"{self.web_url}/{login}",
            "repos_url": f"{self.api_url}/users/{login}/repos",
            "type": "User",
            "site_admin": False,
        }
        return cached

    def _repo_json(self, repo: _Repo, login: str | None) -> JSON:
        api = f"{self.api_url}/repos/{repo.full_name}"
        data: JSON = {
            "id": repo.id,
            "node_id": f"R_kgDO{repo.id:08d}",
            "name": repo.name,
            "full_name": repo.full_name,
            "private": False,
            "visibility": "public",
            "owner": self._user_json(repo.owner),
            "html_url": f"{self.web_url}/{repo.full_name}",
            "description": None,
            "fork": False,
            "url": api,
            "releases_url": f"{api}/releases{{/id}}",
            "tags_url": f"{api}/tags",
            "clone_url": f"{self.web_url}/{repo.full_name}.git",
            "default_branch": "main",
            "archived": False,
            "disabled": False,
            "created_at": self._ts(repo.created_at),
            "updated_at": self._ts(repo.created_at),
            "pushed_at": self._ts(repo.created_at),
        }
        if login is not None:
            data["permissions"] = {
                "admin": True,
                "maintain": True,
                "push": True,
                "triage": True,
                "pull": True,
            }
        return data

    def _download_url(self, asset: _Asset) -> str:
        release = asset.release
        segment = release.untagged if release.draft else urllib.parse.quote(release.tag_name, "")
        name = urllib.parse.quote(asset.name, "")
        return f"{self.web_url}/{release.repo.full_name}/releases/download/{segment}/{name}"

    def _asset_json(self, asset: _Asset) -> JSON:
        repo = asset.release.repo
        return {
            "url": f"{self.api_url}/repos/{repo.full_name}/releases/assets/{asset.id}",
            "id": asset.id,
            "node_id": f"RA_kwDO{asset.id:08d}",
            "name": asset.name,
            "label": asset.label,
            "uploader": self._user_json(asset.uploader),
            "content_type": asset.content_type,
            "state": asset.state,
            "size": len(asset.data),
            "digest": asset.digest,
            "download_count": asset.download_count,
            "created_at": self._ts(asset.created_at),
            "updated_at": self._ts(asset.updated_at),
            "browser_download_url": self._download_url(asset),
        }

    def _release_json(self, release: _Release) -> JSON:
        repo = release.repo
        url = f"{self.api_url}/repos/{repo.full_name}/releases/{release.id}"
        tag_segment = (
            release.untagged if release.draft else urllib.parse.quote(release.tag_name, "")
        )
        tag_quoted = urllib.parse.quote(release.tag_name, "")
        archive = f"{self.api_url}/repos/{repo.full_name}"
        return {
            "url": url,
            "assets_url": f"{url}/assets",
            "upload_url": (
                f"{self.uploads_url}/repos/{repo.full_name}/releases/{release.id}"
                "/assets{?name,label}"
            ),
            "html_url": f"{self.web_url}/{repo.full_name}/releases/tag/{tag_segment}",
            "id": release.id,
            "author": self._user_json(release.author),
            "node_id": f"RE_kwDO{release.id:08d}",
            "tag_name": release.tag_name,
            "target_commitish": release.target_commitish,
            "name": release.name,
            "draft": release.draft,
            "immutable": release.immutable,
            "prerelease": release.prerelease,
            "created_at": self._ts(release.created_at),
            "updated_at": self._ts(release.updated_at),
            "published_at": self._ts(release.published_at),
            "assets": [self._asset_json(a) for a in release.assets.values()],
            "tarball_url": None if release.draft else f"{archive}/tarball/{tag_quoted}",
            "zipball_url": None if release.draft else f"{archive}/zipball/{tag_quoted}",
            "body": release.body,
        }

    # ---- state mutation ----------------------------------------------------------------

    def _new_release(
        self,
        repo: _Repo,
        tag_name: str,
        target_commitish: str,
        name: str | None,
        body: str | None,
        draft: bool,
        prerelease: bool,
        author: str | None = None,
    ) -> _Release:
        now = self.clock()
        release = _Release(
            id=self._new_id(),
            repo=repo,
            tag_name=tag_name,
            target_commitish=target_commitish,
            name=name,
            body=body,
            draft=draft,
            prerelease=prerelease,
            author=author if author is not None else self.login,
            created_at=now,
            updated_at=now,
            untagged=f"untagged-{secrets.token_hex(10)}",
        )
        if not draft:
            self._publish(release, now)
        repo.releases[release.id] = release
        return release

    def _publish(self, release: _Release, now: float) -> None:
        release.draft = False
        release.published_at = now
        release.immutable = release.repo.immutable_releases

    def _new_asset(
        self,
        release: _Release,
        name: str,
        label: str | None,
        data: bytes,
        state: str,
        content_type: str = "application/octet-stream",
        uploader: str | None = None,
    ) -> _Asset:
        now = self.clock()
        asset = _Asset(
            id=self._new_id(),
            release=release,
            name=name,
            label=label,
            content_type=content_type,
            state=state,
            data=data if state == "uploaded" else b"",
            digest="sha256:" + hashlib.sha256(data).hexdigest() if state == "uploaded" else None,
            uploader=uploader if uploader is not None else self.login,
            created_at=now,
            updated_at=now,
        )
        release.assets[asset.id] = asset
        self._assets[asset.id] = asset
        return asset

    def _published_with_tag(self, repo: _Repo, tag: str, exclude: int | None) -> bool:
        return any(
            r.tag_name == tag and not r.draft and r.id != exclude for r in repo.releases.values()
        )

    def _check_tag(
        self, repo: _Repo, tag: str, publishing: bool, exclude: int | None, docs: str
    ) -> _Response | None:
        problem = validate_tag_name(tag)
        if problem is not None:
            code = "missing_field" if not tag else "invalid"
            return self._validation("Release", code, "tag_name", docs, problem)
        if publishing and self._published_with_tag(repo, tag, exclude):
            return self._validation("Release", "already_exists", "tag_name", docs)
        if publishing and tag in repo.burned_tags:
            return self._validation(
                "Release", "custom", "tag_name", docs, "tag_name was used by an immutable release"
            )
        return None

    # ---- API handlers ------------------------------------------------------------------

    def _get_rate_limit(self, req: _Request, login: str | None, m: re.Match[str]) -> _Response:
        key = f"user:{login}" if login else f"ip:{req.client_ip}"
        bucket = self._bucket(key, self.rate_limit if login else self.anonymous_rate_limit)
        core = {
            "limit": bucket.limit,
            "used": bucket.used,
            "remaining": max(0, bucket.limit - bucket.used),
            "reset": int(bucket.reset),
        }
        reset = int(self.clock()) + 60
        search = {"limit": 30, "used": 0, "remaining": 30, "reset": reset}
        graphql = {"limit": 5000, "used": 0, "remaining": 5000, "reset": int(bucket.reset)}
        return self._json(
            200,
            {"resources": {"core": core, "search": search, "graphql": graphql}, "rate": core},
        )

    def _get_user(self, req: _Request, login: str | None, m: re.Match[str]) -> _Response:
        if login is None:
            return self._requires_auth()
        data = dict(self._user_json(login))
        data.update({"name": login, "email": None, "public_repos": 1})
        response = self._json(200, data)
        response.headers["X-OAuth-Scopes"] = "repo"
        return response

    def _get_named_user(self, req: _Request, login: str | None, m: re.Match[str]) -> _Response:
        name = urllib.parse.unquote(m["login"])
        known = set(self._tokens.values()) | {r.owner for r in self._repos.values()}
        if name not in known:
            return self._not_found()
        return self._json(200, self._user_json(name))

    def _get_repo(self, req: _Request, login: str | None, m: re.Match[str]) -> _Response:
        repo = self._find_repo(m)
        return self._json(200, self._repo_json(repo, login)) if repo else self._not_found()

    def _get_repo_by_id(self, req: _Request, login: str | None, m: re.Match[str]) -> _Response:
        for repo in self._repos.values():
            if repo.id == int(m["repo_id"]):
                return self._json(200, self._repo_json(repo, login))
        return self._not_found()

    def _releases(self, req: _Request, login: str | None, m: re.Match[str]) -> _Response:
        repo = self._find_repo(m)
        if repo is None:
            return self._not_found()
        if req.method == "GET":
            rels = self._sorted_releases(repo, include_drafts=login is not None)
            return self._paginate(req, rels, self._release_json)
        assert login is not None
        data = self._parse_json_body(req)
        if isinstance(data, _Response):
            return data
        tag = data.get("tag_name")
        if not isinstance(tag, str) or not tag:
            return self._validation("Release", "missing_field", "tag_name", DOCS_CREATE_RELEASE)
        draft = bool(data.get("draft", False))
        problem = self._check_tag(repo, tag, not draft, None, DOCS_CREATE_RELEASE)
        if problem is not None:
            return problem
        target = data.get("target_commitish")
        name = data.get("name")
        body = data.get("body")
        release = self._new_release(
            repo,
            tag,
            target if isinstance(target, str) and target else "main",
            name if isinstance(name, str) else None,
            body if isinstance(body, str) else None,
            draft,
            bool(data.get("prerelease", False)),
            author=login,
        )
        payload = self._release_json(release)
        response = self._json(201, payload)
        response.headers["Location"] = payload["url"]
        return response

    def _latest_release(self, req: _Request, login: str | None, m: re.Match[str]) -> _Response:
        repo = self._find_repo(m)
        if repo is None:
            return self._not_found()
        candidates = [r for r in repo.releases.values() if not r.draft and not r.prerelease]
        if not candidates:
            return self._not_found()
        latest = max(candidates, key=lambda r: (r.published_at or 0.0, r.id))
        return self._json(200, self._release_json(latest))

    def _release_by_tag(self, req: _Request, login: str | None, m: re.Match[str]) -> _Response:
        repo = self._find_repo(m)
        if repo is None:
            return self._not_found()
        tag = urllib.parse.unquote(m["tag"])
        for release in self._sorted_releases(repo, include_drafts=False):
            if release.tag_name == tag:
                return self._json(200, self._release_json(release))
        return self._not_found()

    def _release(self, req: _Request, login: str | None, m: re.Match[str]) -> _Response:
        release = self._find_release(m, login)
        if release is None:
            return self._not_found()
        if req.method == "GET":
            return self._json(200, self._release_json(release))
        if req.method == "DELETE":
            for asset_id in release.assets:
                self._assets.pop(asset_id, None)
            if release.immutable:
                release.repo.burned_tags.add(release.tag_name)
            del release.repo.releases[release.id]
            return _Response(204)
        data = self._parse_json_body(req)
        if isinstance(data, _Response):
            return data
        return self._update_release(release, data)

    def _update_release(self, release: _Release, data: JSON) -> _Response:
        tag = data.get("tag_name", release.tag_name)
        if not isinstance(tag, str):
            return self._validation("Release", "invalid", "tag_name", DOCS_UPDATE_RELEASE)
        draft = bool(data.get("draft", release.draft))
        if release.immutable and (draft or tag != release.tag_name):
            return self._message_422("Cannot modify an immutable release.", DOCS_UPDATE_RELEASE)
        if tag != release.tag_name or (release.draft and not draft):
            problem = self._check_tag(release.repo, tag, not draft, release.id, DOCS_UPDATE_RELEASE)
            if problem is not None:
                return problem
        now = self.clock()
        release.tag_name = tag
        for key in ("target_commitish", "name", "body"):
            value = data.get(key)
            if key in data and (value is None or isinstance(value, str)):
                setattr(release, key, value)
        if "prerelease" in data:
            release.prerelease = bool(data["prerelease"])
        if release.draft and not draft:
            self._publish(release, now)
        elif draft and not release.draft:
            release.draft = True
            release.published_at = None
            release.untagged = f"untagged-{secrets.token_hex(10)}"
        release.updated_at = now
        return self._json(200, self._release_json(release))

    def _list_assets(self, req: _Request, login: str | None, m: re.Match[str]) -> _Response:
        release = self._find_release(m, login)
        if release is None:
            return self._not_found()
        return self._paginate(req, list(release.assets.values()), self._asset_json)

    def _asset(self, req: _Request, login: str | None, m: re.Match[str]) -> _Response:
        repo = self._find_repo(m)
        asset = self._assets.get(int(m["asset_id"]))
        if (
            repo is None
            or asset is None
            or asset.release.repo is not repo
            or (asset.release.draft and login is None)
        ):
            return self._not_found()
        if req.method == "GET":
            if "application/octet-stream" in req.headers.get("accept", ""):
                asset.download_count += 1
                # PyGithub only follows same-host redirects whose path starts with /api/
                return _Response(302, b"", {"Location": f"{self.web_url}/api/_objects/{asset.id}"})
            return self._json(200, self._asset_json(asset))
        if asset.release.immutable:
            verb = "delete assets from" if req.method == "DELETE" else "update assets of"
            return self._message_422(f"Cannot {verb} an immutable release.")
        if req.method == "DELETE":
            del asset.release.assets[asset.id]
            del self._assets[asset.id]
            return _Response(204)
        data = self._parse_json_body(req)
        if isinstance(data, _Response):
            return data
        if "name" in data:
            new_name = github_asset_name(str(data["name"] or ""))
            if not new_name:
                return self._validation("ReleaseAsset", "invalid", "name", DOCS_UPDATE_ASSET)
            if any(a.name == new_name and a.id != asset.id for a in asset.release.assets.values()):
                return self._validation("ReleaseAsset", "already_exists", "name", DOCS_UPDATE_ASSET)
            asset.name = new_name
        if "label" in data:
            label = data["label"]
            asset.label = label if isinstance(label, str) else None
        asset.updated_at = self.clock()
        return self._json(200, self._asset_json(asset))

    def _upload(self, req: _Request, login: str | None, m: re.Match[str]) -> _Response:
        release = self._find_release(m, login)
        if release is None:
            return self._not_found()
        assert login is not None
        if release.immutable:
            return self._message_422("Cannot upload assets to an immutable release.")
        if "content-length" not in req.headers:
            return self._json(
                411, {"message": "Content-Length header is required", "documentation_url": DOCS}
            )
        size = int(req.headers["content-length"])
        if req.body is None or size >= self.max_asset_bytes:
            return self._validation(
                "ReleaseAsset",
                "custom",
                "size",
                DOCS_UPLOAD_ASSET,
                f"size must be less than {self.max_asset_bytes} bytes",
            )
        content_type = req.headers.get("content-type", "").strip()
        if not content_type:
            return self._validation(
                "ReleaseAsset", "missing_field", "content_type", DOCS_UPLOAD_ASSET
            )
        raw_name = req.query.get("name", "")
        if not raw_name:
            return self._validation("ReleaseAsset", "missing_field", "name", DOCS_UPLOAD_ASSET)
        name = github_asset_name(raw_name)
        if not name:
            return self._validation("ReleaseAsset", "invalid", "name", DOCS_UPLOAD_ASSET)
        if len(release.assets) >= self.max_assets_per_release:
            # GitHub's own answer, word for word (its cap is 1000):
            # {"resource":"ReleaseAsset","code":"custom","field":"file_count",
            #  "message":"file_count limited to 1000 assets"}
            return self._validation(
                "ReleaseAsset",
                "custom",
                "file_count",
                DOCS_UPLOAD_ASSET,
                f"file_count limited to {self.max_assets_per_release} assets",
            )
        if any(a.name == name for a in release.assets.values()):
            return self._validation("ReleaseAsset", "already_exists", "name", DOCS_UPLOAD_ASSET)
        asset = self._new_asset(
            release,
            name,
            req.query.get("label"),
            req.body,
            "uploaded",
            content_type=content_type,
            uploader=login,
        )
        return self._json(201, self._asset_json(asset))

    # ---- web handlers ------------------------------------------------------------------

    def _browser_download(self, req: _Request, login: str | None, m: re.Match[str]) -> _Response:
        repo = self._find_repo(m)
        if repo is None:
            return self._web_404()
        segment = urllib.parse.unquote(m["tag"])
        name = urllib.parse.unquote(m["name"])
        auth = self._authenticate(req)
        candidates: Iterable[_Release]
        if segment.startswith("untagged-"):
            # draft assets: only for authenticated callers, only until the release is published
            if not isinstance(auth, str):
                return self._web_404()
            candidates = (r for r in repo.releases.values() if r.draft and r.untagged == segment)
        else:
            candidates = (
                r for r in repo.releases.values() if not r.draft and r.tag_name == segment
            )
        for release in candidates:
            for asset in release.assets.values():
                if asset.name == name and asset.state == "uploaded":
                    if req.method == "GET":
                        asset.download_count += 1
                    location = f"{self.web_url}/_objects/{asset.id}"
                    return _Response(
                        302, b"", {"Location": location, "Content-Type": "text/html; charset=utf-8"}
                    )
        return self._web_404()

    def _object(self, req: _Request, login: str | None, m: re.Match[str]) -> _Response:
        asset = self._assets.get(int(m["asset_id"]))
        if asset is None or asset.state != "uploaded":
            return self._web_404()
        data = asset.data
        size = len(data)
        headers = {
            "Content-Type": "application/octet-stream",
            "Accept-Ranges": "bytes",
            "ETag": f'"{(asset.digest or "").removeprefix("sha256:")}"',
            "Last-Modified": time.strftime(
                "%a, %d %b %Y %H:%M:%S GMT", time.gmtime(asset.updated_at)
            ),
            "Content-Disposition": f"attachment; filename={asset.name}",
        }
        header = req.headers.get("range")
        if header is None:
            return _Response(200, data, headers)
        span = self._parse_range(header, size)
        if span is None:
            return _Response(200, data, headers)
        start, end = span
        if start >= size or start > end:
            headers["Content-Range"] = f"bytes */{size}"
            return _Response(416, b"", headers)
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        return _Response(206, data[start : end + 1], headers)

    @staticmethod
    def _parse_range(header: str, size: int) -> tuple[int, int] | None:
        """(start, end) inclusive for a single ``bytes=`` range; None if not understood."""
        unit, _, spec = header.strip().partition("=")
        if unit.strip().lower() != "bytes" or "," in spec:
            return None
        first, dash, last = spec.strip().partition("-")
        if not dash:
            return None
        try:
            if first == "":
                suffix = int(last)
                return (max(0, size - suffix), size - 1) if suffix > 0 else (size, size - 1)
            start = int(first)
            end = int(last) if last else size - 1
        except ValueError:
            return None
        return start, min(end, size - 1)
