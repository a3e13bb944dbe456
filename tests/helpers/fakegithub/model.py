"""What the fake holds (repositories, releases, assets, rate-limit buckets, injected
faults) and the requests and responses it handles."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

JSON = dict[str, Any]

MAX_ASSETS_PER_RELEASE = 1000
MAX_ASSET_BYTES = 2 * 1024**3

DOCS = "https://docs.github.com/rest"
DOCS_CREATE_RELEASE = "https://docs.github.com/rest/releases/releases#create-a-release"
DOCS_UPDATE_RELEASE = "https://docs.github.com/rest/releases/releases#update-a-release"
DOCS_UPLOAD_ASSET = "https://docs.github.com/rest/releases/assets#upload-a-release-asset"
DOCS_UPDATE_ASSET = "https://docs.github.com/rest/releases/assets#update-a-release-asset"
DOCS_RATE_LIMIT = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
DOCS_SECONDARY = DOCS_RATE_LIMIT + "#about-secondary-rate-limits"

_WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})
_BAD_CREDENTIALS = object()
_T = TypeVar("_T")


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
