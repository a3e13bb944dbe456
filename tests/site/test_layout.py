"""site/layout.py: page URLs are MkDocs's, relative links resolve."""

from __future__ import annotations

import pytest

from builder.site import layout


@pytest.mark.parametrize("src_uri", ["index.md", "drivers/index.md", "usage.md",
                                     "drivers/6.0.1+driver/debian/index.md", "a/b.md"])
@pytest.mark.parametrize("directory_urls", [True, False])
def test_page_urls_are_mkdocs_urls(src_uri: str, directory_urls: bool) -> None:
    from mkdocs.structure.files import File
    mk = File(src_uri, "docs", "site", directory_urls)
    assert layout.quote_url(layout.page_url(src_uri, directory_urls)) == mk.url


@pytest.mark.parametrize(("target", "current", "expected"), [
    ("drivers/", "./", "drivers/"), ("./", "drivers/x/", "../../"),
    ("api/index.json", "drivers/6.0.1%2Bdriver/debian/", "../../../api/index.json"),
    ("targets/debian/", "index.html", "targets/debian/"),
    ("usage.html", "drivers/index.html", "../usage.html"),
])
def test_relative_links(target: str, current: str, expected: str) -> None:
    assert layout.relative(target, current) == expected
