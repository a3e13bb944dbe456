"""What a browser reaches: release asset downloads (redirects to the object store) and
the object store itself, with HEAD and Range."""

from __future__ import annotations

import re
import time
import urllib.parse
from collections.abc import Iterable

from .api import Api
from .model import _Release, _Request, _Response


class Web(Api):
    """Browser downloads and the objects they redirect to."""

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
