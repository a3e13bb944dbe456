"""The numbers behind the site's charts, computed at build time.

Pure: counts in, shares and levels out. The markup lives in templates/charts.html.j2
(plain HTML and CSS: bars are boxes with a width in percent, the heatmap is a table),
so the charts reflow to any screen width, keep their numbers as text, and follow
Material's light and dark schemes through assets/site.css. No JavaScript chart
library, nothing fetched.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

LEVELS = 5


@dataclass(frozen=True, slots=True)
class Segment:
    kind: str           # css class suffix: ok, failed, missing, x86_64, aarch64 ...
    label: str          # what the kind means, for the segment's title
    share: float        # percent of the largest bar's total
    value: int


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    href: str
    total: int
    segments: tuple[Segment, ...]


@dataclass(frozen=True, slots=True)
class BarChart:
    title: str
    bars: tuple[Bar, ...]
    legend: tuple[tuple[str, str], ...]     # (kind, label) of the kinds that occur


@dataclass(frozen=True, slots=True)
class BarItem:
    label: str
    parts: tuple[tuple[str, int], ...]      # (kind, value), stacked left to right
    href: str = ""


def bar_chart(title: str, items: Sequence[BarItem],
              legend: Sequence[tuple[str, str]] = ()) -> BarChart:
    """Horizontal (stacked) bars, one per item, scaled to the largest total. The legend
    keeps only kinds with a value somewhere (no aarch64 key without aarch64 probes)."""
    largest = max((sum(v for _, v in i.parts) for i in items), default=0) or 1
    names = dict(legend)
    bars = tuple(
        Bar(item.label, item.href, sum(v for _, v in item.parts),
            tuple(Segment(kind, names.get(kind, kind), round(100 * value / largest, 2), value)
                  for kind, value in item.parts if value))
        for item in items)
    present = {s.kind for bar in bars for s in bar.segments}
    return BarChart(title, bars, tuple((k, label) for k, label in legend if k in present))


@dataclass(frozen=True, slots=True)
class HeatCell:
    level: int          # 1..LEVELS, log-scaled against the largest value
    value: int
    href: str
    title: str


@dataclass(frozen=True, slots=True)
class Heatmap:
    title: str
    columns: tuple[tuple[str, str], ...]                        # (short label, full label)
    rows: tuple[tuple[str, tuple[HeatCell | None, ...]], ...]   # (label, a cell per column)

    @property
    def cells(self) -> int:
        return sum(1 for _, cells in self.rows for cell in cells if cell)


def level(value: int, largest: int) -> int:
    if value <= 0 or largest <= 0:
        return 0
    return max(1, min(LEVELS, math.ceil(LEVELS * math.log1p(value) / math.log1p(largest))))


def heatmap(title: str, rows: Sequence[str], columns: Sequence[str],
            values: dict[tuple[str, str], int], hrefs: dict[tuple[str, str], str],
            unit: str = "probes",
            column_label: Callable[[str], str] = lambda c: c) -> Heatmap:
    """A grid of rows x columns; empty cells are None."""
    largest = max(values.values(), default=0)

    def cell(row: str, column: str) -> HeatCell | None:
        value = values.get((row, column), 0)
        if not value:
            return None
        return HeatCell(level(value, largest), value, hrefs.get((row, column), ""),
                        f"{row}, {column}: {value:,} {unit}")

    return Heatmap(title, tuple((column_label(c), c) for c in columns),
                   tuple((row, tuple(cell(row, c) for c in columns)) for row in rows))
