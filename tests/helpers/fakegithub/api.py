"""The REST API's handlers: rate limit, users, repositories, releases, assets and uploads."""

from __future__ import annotations

import re
import secrets
import urllib.parse

from .faults import Faults
from .model import (
    DOCS,
    DOCS_CREATE_RELEASE,
    DOCS_UPDATE_ASSET,
    DOCS_UPDATE_RELEASE,
    DOCS_UPLOAD_ASSET,
    JSON,
    _Release,
    _Repo,
    _Request,
    _Response,
)
from .names import github_asset_name, validate_tag_name


class Api(Faults):
    """The REST endpoints the publisher uses, as github.com answers them."""

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
