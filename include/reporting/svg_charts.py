"""Inline SVG bar charts: no JavaScript, no external assets, readable by screen readers.

:func:`stacked_bar_layout` does the geometry (every coordinate a plain number a test can
read); the macro in ``templates/_charts.svg.j2`` draws it, escaped like every other value,
so callers may pass API strings (data center names, run ids) as they are. The pages call the
macro with the layout; :func:`stacked_bar_chart` renders one chart on its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from include.reporting.page_parts import REPORT_TEMPLATES

ROW_HEIGHT = 26
BAR_HEIGHT = 18
LABEL_WIDTH = 110
#: Room per label character at 12px sans-serif (digits are the widest common glyphs, ~7.6 px).
LABEL_CHAR_WIDTH = 8
BAR_WIDTH = 440
COUNT_WIDTH = 50
LEGEND_ROW = 20
LEGEND_COLUMNS = 3
#: Where a label's baseline sits below the top of its row (and of a legend swatch).
TEXT_BASELINE, LEGEND_BASELINE = 14, 11
SWATCH = 12
GAP = 6
#: ``(key, label, colour)`` of one series of counts, e.g. ``("failed", "Failed", "#cf222e")``.
Series = tuple[str, str, str]


@dataclass(frozen=True)
class Segment:
    """One series' part of a bar; ``tooltip`` names the group, the series and the count."""

    x: float
    width: float
    colour: str
    tooltip: str


@dataclass(frozen=True)
class Bar:
    """One group's row: its label, its segments left to right and its total after them."""

    label: str
    bar_y: int
    text_y: int
    total: int
    total_x: float
    segments: tuple[Segment, ...]


@dataclass(frozen=True)
class LegendEntry:
    """A colour swatch at ``(x, y)`` and its label at ``(text_x, text_y)``."""

    x: float
    y: int
    text_x: float
    text_y: int
    colour: str
    label: str


@dataclass(frozen=True)
class BarChart:
    """Everything the template needs to draw one chart."""

    chart_id: str
    title: str
    width: int
    height: int
    bars: tuple[Bar, ...]
    legend: tuple[LegendEntry, ...]
    label_x: int = LABEL_WIDTH - 8
    bar_height: int = BAR_HEIGHT
    swatch: int = SWATCH


def _legend_entry(index: int, width: int, top: int, colour: str, label: str) -> LegendEntry:
    x = (index % LEGEND_COLUMNS) * (width / LEGEND_COLUMNS)
    y = top + (index // LEGEND_COLUMNS) * LEGEND_ROW
    return LegendEntry(x, y, x + SWATCH + 4, y + LEGEND_BASELINE, colour, label)


def _label_width(groups: Mapping[str, Mapping[str, int]]) -> int:
    """Wide enough for the longest group label (a run's date), never narrower than the default."""
    longest = max((len(label) for label in groups), default=0)
    return max(LABEL_WIDTH, LABEL_CHAR_WIDTH * longest + 12)


def _bar(
    row: int, group: str, counts: Mapping[str, int], series: Sequence[Series], largest: int, label_width: int
) -> Bar:
    top = row * ROW_HEIGHT
    x = float(label_width)
    segments = []
    for key, label, colour in series:
        count = counts.get(key, 0)
        if not count:
            continue
        width = BAR_WIDTH * count / largest
        segments.append(Segment(x, width, colour, f"{group} - {label}: {count}"))
        x += width
    return Bar(group, top + 1, top + TEXT_BASELINE, sum(counts.values()), x + GAP, tuple(segments))


def stacked_bar_layout(
    chart_id: str,
    title: str,
    groups: Mapping[str, Mapping[str, int]],
    series: Sequence[Series],
) -> BarChart:
    """Horizontal stacked bars, one per group, scaled to the largest group.

    ``groups`` maps a group label (``VA1``, ``linux``) to counts per series key;
    ``series`` lists ``(key, label, colour)`` in stacking order. Only series with a non-zero
    count somewhere appear in the legend. ``chart_id`` must be unique in the page (it links
    the accessible title).
    """
    largest = max((sum(counts.values()) for counts in groups.values()), default=0) or 1
    used = [s for s in series if any(counts.get(s[0], 0) for counts in groups.values())]
    legend_rows = (len(used) + LEGEND_COLUMNS - 1) // LEGEND_COLUMNS
    legend_top = ROW_HEIGHT * max(len(groups), 1) + 10
    label_width = _label_width(groups)
    width = label_width + BAR_WIDTH + COUNT_WIDTH
    legend = tuple(
        _legend_entry(index, width, legend_top, colour, label)
        for index, (_key, label, colour) in enumerate(used)
    )
    return BarChart(
        chart_id=chart_id,
        title=title,
        width=width,
        height=legend_top + LEGEND_ROW * legend_rows,
        bars=tuple(
            _bar(row, group, counts, series, largest, label_width)
            for row, (group, counts) in enumerate(groups.items())
        ),
        legend=legend,
        label_x=label_width - 8,
    )


def stacked_bar_chart(
    chart_id: str,
    title: str,
    groups: Mapping[str, Mapping[str, int]],
    series: Sequence[Series],
) -> str:
    """One chart as SVG markup (see :func:`stacked_bar_layout`); each segment has a tooltip."""
    layout = stacked_bar_layout(chart_id, title, groups, series)
    return REPORT_TEMPLATES.render("stacked_bar_chart.svg.j2", chart=layout)
