"""The geometry of the usage bar chart: bars, axis ticks and labels in SVG user units."""

from __future__ import annotations

from collections.abc import Sequence

import attrs

WIDTH, HEIGHT = 720, 300
_LEFT, _RIGHT, _TOP, _BOTTOM = 56, 16, 28, 52


@attrs.frozen
class Column:
    """One period of the chart: its label, the live recount and the billed quantity (if billed)."""

    label: str
    live: int
    billed: int | None


@attrs.frozen
class Bar:
    """One bar: which figure it draws (``live`` or ``billed``), where, and its value."""

    kind: str
    value: int
    x: float
    y: float
    width: float
    height: float
    label: str


@attrs.frozen
class Chart:
    """A bar chart ready to draw: the bars, the y-axis ticks and each column's label."""

    bars: tuple[Bar, ...]
    ticks: tuple[tuple[float, int], ...]
    labels: tuple[tuple[float, str], ...]
    split: bool
    width: int = WIDTH
    height: int = HEIGHT
    left: int = _LEFT
    right: int = WIDTH - _RIGHT
    baseline: int = HEIGHT - _BOTTOM


def axis(value: int) -> tuple[int, int]:
    """The y axis up to *value*: a round step (1, 2 or 5 x a power of ten), 4 or 5 times.

    The least such axis whose top is at or above *value*.
    """
    scale = 1
    while True:
        for step in (1, 2, 5):
            for count in (4, 5):
                if step * scale * count >= value:
                    return step * scale, count
        scale *= 10


def chart(columns: Sequence[Column]) -> Chart:
    """Lay out *columns* oldest first; billed and live side by side where they differ."""
    split = any(c.billed is not None and c.billed != c.live for c in columns)
    step, count = axis(max([c.live for c in columns] + [c.billed or 0 for c in columns] + [0]))
    top = step * count
    plot_width = WIDTH - _LEFT - _RIGHT
    plot_height = HEIGHT - _TOP - _BOTTOM
    slot = plot_width / max(len(columns), 1)
    bars: list[Bar] = []
    labels: list[tuple[float, str]] = []

    def bar(kind: str, value: int, x: float, width: float, label: str) -> Bar:
        height = plot_height * value / top
        return Bar(kind, value, x, _TOP + plot_height - height, width, height, label)

    for index, column in enumerate(columns):
        middle = _LEFT + slot * (index + 0.5)
        labels.append((middle, column.label))
        if split:
            width = slot * 0.32
            billed = column.billed
            if billed is not None:
                bars.append(bar("billed", billed, middle - width - 1, width, column.label))
            bars.append(bar("live", column.live, middle + 1, width, column.label))
        else:
            width = slot * 0.5
            bars.append(bar("live", column.live, middle - width / 2, width, column.label))
    ticks = tuple((_TOP + plot_height * (1 - n / count), step * n) for n in range(count + 1))
    return Chart(tuple(bars), ticks, tuple(labels), split)
