"""Two built sites compared: their pages, every internal link, the API files, the search index.

What "the same site" means when the way it was built changes (an MkDocs plugin in one
process, or generated pages rendered by an engine; MkDocs or Zensical): the same HTML
pages at the same paths, the same internal links on every page (and every one of them
resolving), the API files byte for byte, and a search index of the same size (within
`search_slack` bytes, for engines whose index formats differ).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

API = "api"


class Links(HTMLParser):
    """Every href and src of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("href", "src", "data-src") and value:
                self.refs.append(value)


def internal_links(page: Path) -> list[str]:
    parser = Links()
    parser.feed(page.read_text(encoding="utf-8"))
    out = []
    for ref in parser.refs:
        parts = urlsplit(ref)
        if parts.scheme or parts.netloc or ref.startswith(("mailto:", "javascript:")):
            continue
        out.append(ref)
    return out


def resolves(site: Path, page: Path, ref: str) -> bool:
    """A relative link of `page` lands on a file of the site (anchors are not checked)."""
    path = urlsplit(ref).path
    if not path:
        return True
    target = (page.parent / unquote(path)).resolve()
    if target.is_dir():
        target = target / "index.html"
    return target.is_file() and site.resolve() in target.parents


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class SiteFacts:
    pages: dict[str, list[str]] = field(default_factory=dict)   # page -> internal links
    api: dict[str, str] = field(default_factory=dict)           # api file -> sha256
    search_bytes: int = 0
    broken: list[tuple[str, str]] = field(default_factory=list)


def facts(site: Path, search_index: str = "search/search_index.json") -> SiteFacts:
    out = SiteFacts()
    for page in sorted(site.rglob("*.html")):
        rel = page.relative_to(site).as_posix()
        links = internal_links(page)
        out.pages[rel] = links
        out.broken += [(rel, ref) for ref in links if not resolves(site, page, ref)
                       and not rel.startswith("404")]
    api = site / API
    for path in sorted(api.rglob("*")) if api.is_dir() else []:
        if path.is_file():
            out.api[path.relative_to(site).as_posix()] = digest(path)
    index = site / search_index
    out.search_bytes = index.stat().st_size if index.is_file() else 0
    return out


def differences(one: SiteFacts, other: SiteFacts, *, search_slack: int = 0,
                links: bool = True) -> list[str]:
    """What differs, in words (empty: the same site)."""
    out = []
    if set(one.pages) != set(other.pages):
        out.append(f"pages only in the first: {sorted(set(one.pages) - set(other.pages))[:10]}; "
                   f"only in the second: {sorted(set(other.pages) - set(one.pages))[:10]}")
    if links:
        for page in sorted(set(one.pages) & set(other.pages)):
            if sorted(one.pages[page]) != sorted(other.pages[page]):
                a, b = set(one.pages[page]), set(other.pages[page])
                out.append(f"{page}: links only in the first {sorted(a - b)[:5]}, only in the "
                           f"second {sorted(b - a)[:5]}")
    if one.api != other.api:
        changed = [p for p in set(one.api) | set(other.api) if one.api.get(p) != other.api.get(p)]
        out.append(f"{len(changed)} API files differ: {sorted(changed)[:10]}")
    if abs(one.search_bytes - other.search_bytes) > search_slack:
        out.append(f"search index {one.search_bytes} vs {other.search_bytes} bytes")
    for site, found in (("first", one), ("second", other)):
        if found.broken:
            out.append(f"{len(found.broken)} broken links in the {site}: {found.broken[:5]}")
    return out
