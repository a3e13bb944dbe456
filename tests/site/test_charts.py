"""site/charts.py: bar chart shares and legend, heatmap levels."""

from __future__ import annotations

from builder.site import charts


def test_charts_shares_and_legend() -> None:
    chart = charts.bar_chart("t", [charts.BarItem("a", (("ok", 10), ("failed", 5))),
                                   charts.BarItem("b" * 40, (("ok", 0),))],
                             [("ok", "built"), ("failed", "failed"), ("missing", "missing")])
    first, second = chart.bars
    assert first.total == 15 and second.total == 0 and second.segments == ()
    assert [(s.kind, s.label, s.share, s.value) for s in first.segments] == [
        ("ok", "built", 66.67, 10), ("failed", "failed", 33.33, 5)]
    assert second.label == "b" * 40                      # whole: the bar wraps, not cuts
    assert chart.legend == (("ok", "built"), ("failed", "failed"))   # no missing key
    grid = charts.heatmap("g", ["t1", "t2"], ["d1", "d2"], {("t1", "d1"): 1, ("t2", "d2"): 1000},
                          {("t1", "d1"): "x/"})
    cells = [c for _, row in grid.rows for c in row]
    assert [c.level if c else 0 for c in cells] == [1, 0, 0, charts.LEVELS]
    assert cells[0] is not None and cells[0].href == "x/" and grid.cells == 2
    assert cells[3] is not None and cells[3].title == "t2, d2: 1,000 probes"
    assert charts.level(0, 10) == 0
