"""Charts drawn on the server as inline SVG: nothing to load, nothing to run in the page."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from markupsafe import Markup

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


def columns(title: str, values: Sequence[float], first_label: str, last_label: str) -> Markup:
    """A column per value, oldest first, with the first and last moments named below."""
    width, height, gap = 420, 110, 1
    top = max(values, default=0) or 1
    step = width / max(len(values), 1)
    parts = [
        f'<svg class="chart" role="img" aria-label="{escape(title)}" width="{width + 60}" '
        f'height="{height + 24}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
        f'<text x="{width + 4}" y="12">{top:g}</text>',
    ]
    for n, value in enumerate(values):
        bar = height * value / top
        parts.append(
            f'<rect x="{n * step:.1f}" y="{height - bar:.1f}" width="{max(step - gap, 1):.1f}" '
            f'height="{bar:.1f}" fill="{_PALETTE[0]}"><title>{value:g}</title></rect>'
        )
    parts += [
        f'<text x="0" y="{height + 18}">{escape(first_label)}</text>',
        f'<text x="{width}" y="{height + 18}" text-anchor="end">{escape(last_label)}</text>',
        "</svg>",
    ]
    return Markup("".join(parts))  # noqa: S704 -- every value above is escaped
