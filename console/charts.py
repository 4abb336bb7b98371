"""Server-rendered SVG charts (no JavaScript, no charting library): bars for the fair's volume by
currency, columns for contracts signed per day. Pure geometry; the template draws the shapes.

Colours and sizes are attributes (the CSP forbids inline styles)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Bar:
    label: str
    value_text: str
    x: float
    y: float
    width: float
    height: float


def bars(items: list[tuple[str, int, str]], *, width: int = 420, row: int = 28, label_w: int = 70) -> list[Bar]:
    """Horizontal bars, one per (label, value, value as text), scaled to the largest value."""
    top = max((v for _, v, _ in items), default=0) or 1
    usable = width - label_w - 150
    return [Bar(label, text, label_w, i * row + 4, max(2.0, usable * value / top) if value else 0.0, row - 10)
            for i, (label, value, text) in enumerate(items)]


def columns(items: list[tuple[str, int]], *, height: int = 120, col: int = 34) -> list[Bar]:
    """Vertical columns, one per (label, count), scaled to the largest count."""
    top = max((v for _, v in items), default=0) or 1
    usable = height - 30
    out = []
    for i, (label, value) in enumerate(items):
        h = usable * value / top if value else 0.0
        out.append(Bar(label, str(value), i * col + 4, height - 20 - h, col - 10, h))
    return out
