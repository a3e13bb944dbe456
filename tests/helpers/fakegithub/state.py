"""The fake's state and what changes it: repositories, releases, assets, tokens, rate-limit
buckets, and the URLs every answer uses."""

from __future__ import annotations

import hashlib
import math
import re
import secrets
import threading
import urllib.parse
from collections import deque
from collections.abc import Callable

from .model import (
    _BAD_CREDENTIALS,
    JSON,
    Call,
    _Asset,
    _Bucket,
    _FaultSlot,
    _Release,
    _Repo,
    _Request,
)


class State:
    """The fake's state; FakeGitHub sets it up and the request handlers change it
    under its lock."""

    token: str
    owner: str
    repo: str
    login: str
    rate_limit: int
    anonymous_rate_limit: int
    rate_limit_window: int
    write_limit_per_minute: int | None
    max_assets_per_release: int
    max_asset_bytes: int
    clock: Callable[[], float]
    calls: list[Call]
    _lock: threading.RLock
    _tokens: dict[str, str]
    _user_ids: dict[str, int]
    _user_cache: dict[str, JSON]
    _repos: dict[str, _Repo]
    _assets: dict[int, _Asset]
    _buckets: dict[str, _Bucket]
    _writes: dict[str, deque[float]]
    _faults: list[_FaultSlot]
    _next_id: int
    _host: str

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
