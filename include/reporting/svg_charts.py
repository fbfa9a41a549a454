"""Inline SVG bar charts: no JavaScript, no external assets, readable by screen readers.

A chart is a plain string of SVG markup that goes straight into the HTML report. Every
label is HTML-escaped here, so callers may pass API strings (data center names...) as-is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

ROW_HEIGHT = 26
BAR_HEIGHT = 18
LABEL_WIDTH = 110
BAR_WIDTH = 440
COUNT_WIDTH = 50
LEGEND_ROW = 20


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def stacked_bar_chart(
    chart_id: str,
    title: str,
    groups: Mapping[str, Mapping[str, int]],
    series: Sequence[tuple[str, str, str]],
) -> str:
    """Horizontal stacked bars, one per group, scaled to the largest group.

    ``groups`` maps a group label (``VA1``, ``linux``) to counts per series key;
    ``series`` lists ``(key, label, colour)`` in stacking order. Only series with a non-zero
    count somewhere appear in the legend. Each segment carries a ``<title>`` tooltip.
    ``chart_id`` must be unique in the page (it links the accessible title).
    """
    largest = max((sum(counts.values()) for counts in groups.values()), default=0) or 1
    used = [s for s in series if any(counts.get(s[0], 0) for counts in groups.values())]
    legend_rows = (len(used) + 2) // 3
    height = ROW_HEIGHT * max(len(groups), 1) + 10 + LEGEND_ROW * legend_rows
    width = LABEL_WIDTH + BAR_WIDTH + COUNT_WIDTH
    parts = [
        f'<svg class="chart" role="img" aria-labelledby="{chart_id}-title" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{chart_id}-title">{_e(title)}</title>',
    ]
    if not groups:
        parts.append(f'<text x="0" y="18" class="chart-label">{_e("no servers")}</text>')
    for row, (group, counts) in enumerate(groups.items()):
        y = row * ROW_HEIGHT
        total = sum(counts.values())
        parts.append(
            f'<text x="{LABEL_WIDTH - 8}" y="{y + 14}" text-anchor="end" class="chart-label">'
            f"{_e(group)}</text>"
        )
        x = float(LABEL_WIDTH)
        for key, label, colour in series:
            count = counts.get(key, 0)
            if not count:
                continue
            w = BAR_WIDTH * count / largest
            parts.append(
                f'<rect x="{x:.1f}" y="{y + 1}" width="{w:.1f}" height="{BAR_HEIGHT}" fill="{_e(colour)}">'
                f"<title>{_e(group)} - {_e(label)}: {count}</title></rect>"
            )
            x += w
        parts.append(f'<text x="{x + 6:.1f}" y="{y + 14}" class="chart-count">{total}</text>')
    legend_y = ROW_HEIGHT * max(len(groups), 1) + 10
    for index, (_key, label, colour) in enumerate(used):
        lx = (index % 3) * (width / 3)
        ly = legend_y + (index // 3) * LEGEND_ROW
        parts.append(
            f'<rect x="{lx:.0f}" y="{ly}" width="12" height="12" fill="{_e(colour)}"/>'
            f'<text x="{lx + 16:.0f}" y="{ly + 11}" class="chart-legend">{_e(label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
