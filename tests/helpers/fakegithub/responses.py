"""Answers as GitHub writes them: JSON bodies of users, repositories, releases and
assets, errors with their documentation links, pagination."""

from __future__ import annotations

import json
import math
import secrets
import time
import urllib.parse
from collections.abc import Callable
from typing import Any, cast

from .model import _T, DOCS, JSON, _Asset, _Release, _Repo, _Request, _Response
from .state import State


class Responses(State):
    """JSON answers and error answers."""

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
