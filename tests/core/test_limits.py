"""core/limits.py: every size, depth and count limit is documented with its default."""

from __future__ import annotations

from testpaths import ROOT

from builder.core import limits
from builder.core.limits import human


def _documented(limit: limits.Limit) -> str:
    """A limit's default as docs/limits.md writes it: 64 KiB, 100,000, 300 s."""
    if limit.unit == "bytes":
        amount = human(limit.default)
        return f"{amount[:-1]} {amount[-1]}iB"
    return f"{limit.default:,}" if limit.unit == "count" else f"{limit.default} s"


def test_every_limit_is_documented_with_its_default() -> None:
    text = (ROOT / "docs" / "limits.md").read_text()
    rows = {line.split("|")[3].strip(" `"): line.split("|")[2].strip()
            for line in text.splitlines() if line.startswith("| ") and "_LIMIT_" in line}
    assert rows == {limit.env: _documented(limit) for limit in limits.ALL}
