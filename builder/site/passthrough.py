"""A Python-Markdown extension: the generated HTML body of a page passes through untouched.

A generated page (builder/site/generate.py) is front matter, its heading in Markdown
(`# Title {#id}`: the engine puts it in the page's outline, which Material's *skip to
content* link points at), the line MARKER, then the page body: HTML our own
templates rendered. Everything after the marker goes into Markdown's raw-HTML stash
in one piece, so Markdown never parses 100,000 table rows (no HTML block parser, no
inline patterns) and no engine can rewrite them.

Engine neutral: MkDocs and Zensical both hand `markdown_extensions` to Python-Markdown,
which imports this module by its name:

    markdown_extensions:
      - builder.site.passthrough

A page without the marker is Markdown as usual (docs/ pages).
"""

from __future__ import annotations

import xml.etree.ElementTree as etree
from typing import Any

from markdown import Extension, Markdown
from markdown.preprocessors import Preprocessor
from markdown.treeprocessors import Treeprocessor

MARKER = "<!-- falco-probes: generated HTML follows -->"
# After normalize_whitespace (priority 30), which would strip the stash placeholder's
# control characters; before html_block (20), which would parse the body.
PRIORITY = 25
# After toc (5), which gives every heading its permalink (the ¶ after it).
HEADING_PRIORITY = 4


class _Passthrough(Preprocessor):  # type: ignore[misc]
    def run(self, lines: list[str]) -> list[str]:
        generated = MARKER in lines
        self.md.falco_probes_generated = generated
        if not generated:
            return lines
        at = lines.index(MARKER)
        body = "\n".join(lines[at + 1:]).strip()
        if not body:
            return lines[:at]
        # A paragraph of its own: the raw-HTML postprocessor then swaps the whole
        # <p>placeholder</p> for the body instead of wrapping the body in <p>.
        return [*lines[:at], "", self.md.htmlStash.store(body), "", ""]


class _PlainHeading(Treeprocessor):  # type: ignore[misc]
    """A generated page's heading without the permalink the toc extension gave it: the
    page is the link (as our templates render it); it stays in the outline."""

    def run(self, root: etree.Element) -> None:
        if not getattr(self.md, "falco_probes_generated", False):
            return
        heading = next(root.iter("h1"), None)
        if heading is None:
            return
        for link in [a for a in heading if a.tag == "a" and a.get("class") == "headerlink"]:
            if link.tail:
                previous = heading[-2] if len(heading) > 1 else None
                if previous is not None:
                    previous.tail = (previous.tail or "") + link.tail
                else:
                    heading.text = (heading.text or "") + link.tail
            heading.remove(link)


class PassthroughExtension(Extension):  # type: ignore[misc]
    def extendMarkdown(self, md: Markdown) -> None:
        md.preprocessors.register(_Passthrough(md), "falco_probes_passthrough", PRIORITY)
        md.treeprocessors.register(_PlainHeading(md), "falco_probes_heading", HEADING_PRIORITY)


def makeExtension(**kwargs: Any) -> PassthroughExtension:
    return PassthroughExtension(**kwargs)
