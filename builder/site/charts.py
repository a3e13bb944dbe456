"""Geometry of the charts the site draws at build time as inline SVG.

Pure: numbers in, positions out. The markup lives in templates/charts.html.j2
and the colours in assets/site.css (so they follow Material's light/dark scheme).
No JavaScript chart library, nothing fetched.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

BAR_HEIGHT = 16
BAR_GAP = 6
LABEL_CHARS = 26
CHAR_WIDTH = 7          # px per label character at the chart's font size
VALUE_WIDTH = 70        # room right of the longest bar for its number
CELL = 14
LEVELS = 5


def short_label(text: str, limit: int = LABEL_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True, slots=True)
class Segment:
    kind: str           # css class suffix: ok, failed, missing, x86_64, aarch64 ...
    x: float
    width: float
    value: int


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    title: str
    href: str
    y: float
    total: int
    segments: tuple[Segment, ...]
    end: float          # x where the bar ends (its number is drawn there)


@dataclass(frozen=True, slots=True)
class BarChart:
    title: str
    width: int
    height: int
    label_width: int
    bars: tuple[Bar, ...]
    legend: tuple[tuple[str, str], ...]     # (kind, label)


@dataclass(frozen=True, slots=True)
class BarItem:
    label: str
    parts: tuple[tuple[str, int], ...]      # (kind, value), stacked left to right
    href: str = ""


def bar_chart(title: str, items: Sequence[BarItem], legend: Sequence[tuple[str, str]] = (),
              width: int = 720) -> BarChart:
    """Horizontal (stacked) bars, one per item, scaled to the largest total."""
    label_width = min(LABEL_CHARS, max((len(i.label) for i in items), default=1)) * CHAR_WIDTH
    label_width += 10
    scale_width = max(100, width - label_width - VALUE_WIDTH)
    largest = max((sum(v for _, v in i.parts) for i in items), default=0) or 1
    bars = []
    for row, item in enumerate(items):
        x = float(label_width)
        segments = []
        for kind, value in item.parts:
            w = scale_width * value / largest
            if value:
                segments.append(Segment(kind, round(x, 1), round(max(w, 1.0), 1), value))
            x += w
        bars.append(Bar(short_label(item.label), item.label, item.href,
                        row * (BAR_HEIGHT + BAR_GAP), sum(v for _, v in item.parts),
                        tuple(segments), round(x + 4, 1)))
    height = max(1, len(items)) * (BAR_HEIGHT + BAR_GAP)
    return BarChart(title, width, height, label_width, tuple(bars), tuple(legend))


@dataclass(frozen=True, slots=True)
class HeatCell:
    x: int
    y: int
    level: int          # 1..LEVELS, log-scaled against the largest value
    value: int
    href: str
    title: str


@dataclass(frozen=True, slots=True)
class Heatmap:
    title: str
    width: int
    height: int
    left: int           # width of the row labels
    top: int            # height of the column labels
    rows: tuple[tuple[str, str, int], ...]      # (short label, full label, y)
    columns: tuple[tuple[str, str, int], ...]   # (short label, full label, x)
    cells: tuple[HeatCell, ...]


def level(value: int, largest: int) -> int:
    if value <= 0 or largest <= 0:
        return 0
    return max(1, min(LEVELS, math.ceil(LEVELS * math.log1p(value) / math.log1p(largest))))


def heatmap(title: str, rows: Sequence[str], columns: Sequence[str],
            values: dict[tuple[str, str], int], hrefs: dict[tuple[str, str], str],
            unit: str = "probes",
            column_label: Callable[[str], str] = lambda c: short_label(c, 16)) -> Heatmap:
    """A grid of rows x columns; empty cells are left out."""
    labels = [column_label(c) for c in columns]
    left = min(LABEL_CHARS, max((len(r) for r in rows), default=1)) * CHAR_WIDTH + 10
    top = max((len(c) for c in labels), default=1) * CHAR_WIDTH + 10
    largest = max(values.values(), default=0)
    cells = []
    for i, row in enumerate(rows):
        for j, column in enumerate(columns):
            value = values.get((row, column), 0)
            if value:
                cells.append(HeatCell(left + j * CELL, top + i * CELL, level(value, largest),
                                      value, hrefs.get((row, column), ""),
                                      f"{row}, {column}: {value} {unit}"))
    return Heatmap(title, left + len(columns) * CELL + 10, top + len(rows) * CELL + 4, left, top,
                   tuple((short_label(r), r, top + i * CELL) for i, r in enumerate(rows)),
                   tuple((label, c, left + j * CELL)
                         for j, (label, c) in enumerate(zip(labels, columns, strict=True))),
                   tuple(cells))
