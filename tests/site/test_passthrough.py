"""site/passthrough.py: the generated HTML body passes through Python-Markdown untouched;
the heading before it stays Markdown (the outline), without its permalink."""

from __future__ import annotations

import markdown

from builder.site.passthrough import MARKER

EXTENSIONS = ["builder.site.passthrough", "attr_list", "md_in_html", "tables",
              "toc"]
CONFIGS = {"toc": {"permalink": True}}


def convert(text: str) -> tuple[str, list[dict[str, object]]]:
    md = markdown.Markdown(extensions=EXTENSIONS, extension_configs=CONFIGS)
    html: str = md.convert(text)
    tokens: list[dict[str, object]] = md.toc_tokens
    return html, tokens


BODY = ("<p>a *not emphasis* | not | a table</p>\n\n<table><tr><td>_x_</td></tr></table>\n"
        "<div markdown=\"1\">**not bold**</div>\n    <pre>indented, not code</pre>")


def test_the_body_is_not_parsed_as_markdown() -> None:
    html, _ = convert(f"# Title {{#probes}}\n\n{MARKER}\n{BODY}\n")
    assert BODY in html
    assert "<em>" not in html and "<strong>" not in html and "<code>" not in html


def test_the_heading_is_in_the_outline_without_a_permalink() -> None:
    html, toc = convert(f"# Probes for 6.0.1\\+driver {{#probes}}\n\n{MARKER}\n<p>x</p>\n")
    assert html.startswith('<h1 id="probes">Probes for 6.0.1+driver</h1>')
    assert "headerlink" not in html
    assert toc[0]["id"] == "probes" and toc[0]["name"] == "Probes for 6.0.1+driver"


def test_a_page_without_the_marker_is_markdown_with_permalinks() -> None:
    html, toc = convert("# Usage\n\nSome *emphasis*.\n\n## More\n")
    assert "<em>emphasis</em>" in html
    assert html.count("headerlink") == 2 and [t["id"] for t in toc] == ["usage"]


def test_one_markdown_instance_keeps_each_pages_own_kind() -> None:
    md = markdown.Markdown(extensions=EXTENSIONS, extension_configs=CONFIGS)
    generated = md.convert(f"# A {{#a}}\n\n{MARKER}\n<p>body</p>\n")
    md.reset()
    plain = md.convert("# B\n\ntext\n")
    assert "headerlink" not in generated and "headerlink" in plain


def test_an_empty_body_leaves_the_heading() -> None:
    html, _ = convert(f"# Empty {{#e}}\n\n{MARKER}\n")
    assert html == '<h1 id="e">Empty</h1>'
