"""Charts drawn on the server as inline SVG: nothing to load, nothing to run in the page."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from markupsafe import Markup

from console.buckets import Series
from console.time_axis import TimeAxis

_ROW = 22
_LABEL = 320
_BAR = 320
_PALETTE = ("#2f6f9f", "#d08c2c", "#7a9f35", "#a3475b", "#6a5a9f", "#4f8f8f", "#888888")


def bars(title: str, rows: Sequence[tuple[str, float]]) -> Markup:
    """A horizontal bar per row, labelled with its value; the title names it for readers
    of the page and of screen readers alike."""
    top = max((value for _, value in rows), default=0) or 1
    height = _ROW * max(len(rows), 1) + 8
    parts = [
        f'<svg class="chart" role="img" aria-label="{escape(title)}" '
        f'width="{_LABEL + _BAR + 80}" height="{height}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for n, (label, value) in enumerate(rows):
        y = 4 + n * _ROW
        width = max(1, int(_BAR * value / top)) if value else 0
        color = _PALETTE[n % len(_PALETTE)]
        parts += [
            f'<text x="{_LABEL - 6}" y="{y + 15}" text-anchor="end">{escape(label)}</text>',
            f'<rect x="{_LABEL}" y="{y + 3}" width="{width}" height="{_ROW - 6}" fill="{color}"/>',
            f'<text x="{_LABEL + width + 6}" y="{y + 15}">{value:g}</text>',
        ]
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 -- every value above is escaped


# A time chart: room for the scale on the left, the caption above, ticks and clock below.
_LEFT, _PLOT_W, _RIGHT = 40, 440, 12
_TOP, _PLOT_H, _BELOW = 26, 100, 40
_EMPTY_STUB = 2  # an empty bucket's mark on the baseline: there, and nothing in it
_GRID, _MUTED = "#d5dbe2", "#5b6775"


def time_columns(chart_id: str, caption: str, series: Series, axis: TimeAxis) -> Markup:
    """A column per bucket, oldest first, over a time axis with labelled ticks; an empty
    bucket keeps its place as a stub on the baseline; the last, still filling, is paler.
    The scale's top is the tallest column, and is not drawn when there is none."""
    counts = series.counts
    top = max(counts, default=0)
    step = _PLOT_W / max(len(counts), 1)
    base = _TOP + _PLOT_H
    width = _LEFT + _PLOT_W + _RIGHT
    parts = [
        f'<svg id="{escape(chart_id)}" class="chart time-chart" role="img" '
        f'aria-label="{escape(caption)}" width="{width}" height="{base + _BELOW}" '
        'xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(caption)}</title>",
        f'<text class="caption" x="0" y="14">{escape(caption)}</text>',
        f'<text class="scale" x="{_LEFT - 6}" y="{base + 4}" text-anchor="end">0</text>',
    ]
    if top:
        parts += [
            f'<line x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT + _PLOT_W}" y2="{_TOP}" '
            f'stroke="{_GRID}" stroke-dasharray="3 3"/>',
            f'<text class="scale" x="{_LEFT - 6}" y="{_TOP + 4}" text-anchor="end">{top}</text>',
        ]
    for tick in axis.ticks:
        x = _LEFT + tick.index * step
        parts.append(
            f'<g class="tick"><line x1="{x:.1f}" y1="{_TOP}" x2="{x:.1f}" y2="{base + 4}" '
            f'stroke="{_GRID}"/><text x="{x:.1f}" y="{base + 17}" text-anchor="middle">'
            f"{escape(tick.label)}</text></g>"
        )
    last = len(counts) - 1
    for n, (count, label) in enumerate(zip(counts, axis.bucket_labels, strict=True)):
        height = _PLOT_H * count / top if count else _EMPTY_STUB
        color = _PALETTE[0] if count else _GRID
        paler = ' fill-opacity="0.55"' if n == last else ""
        parts.append(
            f'<rect class="bucket" data-count="{count}" x="{_LEFT + n * step:.1f}" '
            f'y="{base - height:.1f}" width="{max(step - 1, 1):.1f}" height="{height:.1f}" '
            f'fill="{color}"{paler}><title>{escape(label)} · {count}</title></rect>'
        )
    parts += [
        f'<line x1="{_LEFT}" y1="{base}" x2="{_LEFT + _PLOT_W}" y2="{base}" stroke="{_MUTED}"/>',
        f'<text class="zone" x="{_LEFT}" y="{base + 34}">{escape(axis.zone)}</text>',
        f'<text class="now" x="{_LEFT + _PLOT_W}" y="{base + 34}" text-anchor="end">'
        f"{escape(axis.now)}</text>",
        "</svg>",
    ]
    return Markup("".join(parts))  # noqa: S704 -- every value above is escaped


def funnel(title: str, steps: Sequence[tuple[str, str, int | None]], top: int) -> Markup:
    """The steps of a journey, one row each in order: a bar as wide as the share of ``top``
    (the entered) that came this far; a step that holds no one (a branch, a split) is a
    line, not a bar. Each row is a ``g.step`` with its id and count, for readers and tests."""
    height = _ROW * max(len(steps), 1) + 8
    scale = top or 1
    parts = [
        f'<svg class="chart funnel" role="img" aria-label="{escape(title)}" '
        f'width="{_LABEL + _BAR + 80}" height="{height}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for n, (step, label, count) in enumerate(steps):
        y = 4 + n * _ROW
        shown = "" if count is None else str(count)
        parts.append(
            f'<g class="step" data-step="{escape(step)}" data-count="{shown}">'
            f'<text x="{_LABEL - 6}" y="{y + 15}" text-anchor="end">{escape(label)}</text>'
        )
        if count is None:
            parts.append(
                f'<line x1="{_LABEL}" y1="{y + 11}" x2="{_LABEL + 12}" y2="{y + 11}" '
                f'stroke="{_MUTED}"/></g>'
            )
            continue
        width = max(1, int(_BAR * min(count, scale) / scale)) if count else 0
        parts.append(
            f'<rect x="{_LABEL}" y="{y + 3}" width="{width}" height="{_ROW - 6}" '
            f'fill="{_PALETTE[0]}"/><text x="{_LABEL + width + 6}" y="{y + 15}">{count}</text></g>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 -- every value above is escaped
