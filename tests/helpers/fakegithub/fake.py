"""FakeGitHub: set up, started and stopped, seeded and inspected by tests; each request
routed to its handler."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import secrets
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from types import TracebackType

from .model import (
    _BAD_CREDENTIALS,
    _WRITE_METHODS,
    DOCS,
    DOCS_RATE_LIMIT,
    DOCS_SECONDARY,
    JSON,
    MAX_ASSET_BYTES,
    MAX_ASSETS_PER_RELEASE,
    Call,
    Fault,
    _Asset,
    _Bucket,
    _FaultSlot,
    _Repo,
    _Request,
    _Response,
    _Route,
)
from .names import github_asset_name
from .server import _Server
from .web import Web


class FakeGitHub(Web):
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
