"""Stacked bar charts as inline SVG, rendered on the server (no script, no CDN).

Each chart carries ``<title>`` and ``<desc>`` (named by ``aria-labelledby``) and a ``<title>``
per bar segment, so screen readers and hover both get the numbers; the page shows the same
numbers as a table next to it. Colours are presentation attributes, not inline styles, so the
strict Content-Security-Policy (``style-src 'self'``) allows them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH = 720
HEIGHT = 220
LEFT = 48
BOTTOM = 34
TOP = 10


@dataclass(frozen=True)
class Series:
    label: str
    colour: str
    values: Sequence[int]


def _nice(top: int) -> int:
    if top <= 5:
        return 5
    magnitude: int = 10 ** (len(str(top)) - 1)
    for step in (1, 2, 5, 10):
        if top <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def stacked_bars(
    *, key: str, title: str, desc: str, labels: Sequence[str], series: Sequence[Series]
) -> str:
    """An SVG of one stacked bar per label; ``key`` makes the element ids unique."""
    count = max(1, len(labels))
    totals = [sum(s.values[i] for s in series) for i in range(len(labels))]
    top = _nice(max(totals, default=0))
    plot_width = WIDTH - LEFT - 8
    plot_height = HEIGHT - TOP - BOTTOM
    slot = plot_width / count
    bar = max(1.0, slot * 0.7)
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT + 22}" width="100%" role="img" '
        f'aria-labelledby="{key}-title {key}-desc" data-testid="chart-{key}">',
        f'<title id="{key}-title">{escape(title)}</title>',
        f'<desc id="{key}-desc">{escape(desc)}</desc>',
    ]
    for fraction in (0, 0.5, 1):
        y = TOP + plot_height * (1 - fraction)
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - 8}" y1="{y:.1f}" y2="{y:.1f}" stroke="#adb5bd" '
            f'stroke-width="0.5"/><text x="{LEFT - 4}" y="{y + 4:.1f}" font-size="11" '
            f'text-anchor="end" fill="currentColor">{int(top * fraction)}</text>'
        )
    every = max(1, count // 12)
    for index, label in enumerate(labels):
        x = LEFT + slot * index + (slot - bar) / 2
        y = TOP + plot_height
        for item in series:
            value = item.values[index]
            if not value:
                continue
            height = plot_height * value / top
            y -= height
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{height:.1f}" '
                f'fill="{item.colour}"><title>{escape(label)}: {escape(item.label)} '
                f"{value}</title></rect>"
            )
        if index % every == 0:
            parts.append(
                f'<text x="{x + bar / 2:.1f}" y="{TOP + plot_height + 14}" font-size="11" '
                f'text-anchor="middle" fill="currentColor">{escape(label)}</text>'
            )
    legend_x = LEFT
    for item in series:
        parts.append(
            f'<rect x="{legend_x}" y="{HEIGHT + 6}" width="12" height="12" fill="{item.colour}"/>'
            f'<text x="{legend_x + 16}" y="{HEIGHT + 16}" font-size="12" '
            f'fill="currentColor">{escape(item.label)}</text>'
        )
        legend_x += 20 + 13 * len(item.label) + 16
    parts.append("</svg>")
    return "".join(parts)
