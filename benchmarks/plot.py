"""The latency-vs-throughput chart: panels of lines on a linear x axis and a logarithmic
y axis (latency spans from fractions of a millisecond to seconds near saturation)."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.png import Canvas, Color

INK: Color = (40, 40, 40)
GRID: Color = (225, 225, 225)
PALETTE: tuple[Color, ...] = (
    (31, 119, 180),
    (214, 39, 40),
    (44, 160, 44),
    (255, 127, 14),
    (148, 103, 189),
    (140, 86, 75),
)


@dataclass
class Series:
    label: str
    color: Color
    points: list[tuple[float, float]]  # (x, y), drawn in this order
    dashed: bool = False
    connected: bool = True  # False: markers only


@dataclass
class Panel:
    title: str
    x_label: str
    y_label: str
    series: list[Series] = field(default_factory=list)
    #: Vertical markers: (x, label), e.g. the knee of a curve.
    marks: list[tuple[float, str, Color]] = field(default_factory=list)
    note: str = ""


def _nice_step(span: float, ticks: int = 5) -> float:
    raw = span / ticks
    power = 10 ** math.floor(math.log10(raw))
    return float(next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw))


def _log_ticks(low: float, high: float) -> list[float]:
    """1-2-5 ticks; every integer mantissa when the range is too narrow for three."""
    ticks: list[float] = []
    for mantissas in ((1, 2, 5), tuple(range(1, 10))):
        ticks = [
            m * 10.0**e
            for e in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
            for m in mantissas
            if low <= m * 10.0**e <= high
        ]
        if len(ticks) >= 3:
            break
    return ticks


def _label(value: float) -> str:
    if value >= 1000:
        return f"{value / 1000:g}K"
    return f"{value:g}"


def _draw_panel(canvas: Canvas, panel: Panel, left: int, top: int, width: int, height: int) -> None:
    points = [p for s in panel.series for p in s.points if p[1] > 0 and math.isfinite(p[1])]
    canvas.text(left, top - 44, panel.title, INK, 2)
    canvas.text(left, top - 20, panel.y_label, INK, 1)
    if not points:
        canvas.text(left + 10, top + height // 2, "NO DATA", INK, 2)
        return
    x_high = max(x for x, _ in points) * 1.08 or 1.0
    y_low = min(y for _, y in points) / 1.5
    y_high = max(y for _, y in points) * 1.5
    x_step = _nice_step(x_high)

    def px(x: float) -> int:
        return left + round(x / x_high * width)

    def py(y: float) -> int:
        span = math.log10(y_high) - math.log10(y_low)
        return top + height - round((math.log10(y) - math.log10(y_low)) / span * height)

    for tick in _log_ticks(y_low, y_high):
        canvas.line(left, py(tick), left + width, py(tick), GRID)
        text = _label(tick)
        canvas.text(left - 8 - canvas.text_width(text, 1), py(tick) - 3, text, INK, 1)
    tick = 0.0
    while tick <= x_high:
        canvas.line(px(tick), top, px(tick), top + height, GRID)
        text = _label(tick)
        canvas.text(px(tick) - canvas.text_width(text, 1) // 2, top + height + 8, text, INK, 1)
        tick += x_step
    canvas.line(left, top, left, top + height, INK)
    canvas.line(left, top + height, left + width, top + height, INK)
    label_x = left + width // 2 - canvas.text_width(panel.x_label, 1) // 2
    canvas.text(label_x, top + height + 24, panel.x_label, INK, 1)
    for x, text, color in panel.marks:
        canvas.line(px(x), top, px(x), top + height, color, 1, dash=4)
        canvas.text(px(x) + 4, top + 4, text, color, 1)
    for series in panel.series:
        drawn = [(px(x), py(y)) for x, y in series.points if y > 0 and math.isfinite(y)]
        for (x0, y0), (x1, y1) in itertools.pairwise(drawn if series.connected else []):
            canvas.line(
                x0,
                y0,
                x1,
                y1,
                series.color,
                1 if series.dashed else 2,
                dash=5 if series.dashed else 0,
            )
        for x, y in drawn:
            canvas.disc(x, y, 2 if series.dashed else (3 if series.connected else 5), series.color)
    legend_y = top + height + 44
    legend_x = left
    for series in (s for s in panel.series if s.label):
        canvas.line(
            legend_x,
            legend_y + 3,
            legend_x + 18,
            legend_y + 3,
            series.color,
            1 if series.dashed else 2,
            dash=4 if series.dashed else 0,
        )
        canvas.text(legend_x + 24, legend_y, series.label, INK, 1)
        legend_x += 24 + canvas.text_width(series.label, 1) + 18
        if legend_x > left + width - 120:
            legend_x, legend_y = left, legend_y + 14
    if panel.note:
        canvas.text(left, legend_y + 16, panel.note, INK, 1)


def render(panels: list[Panel], path: Path, title: str) -> Path:
    """Draws ``panels`` side by side under ``title`` and writes the PNG to ``path``."""
    panel_width, panel_height, margin = 470, 330, 80
    width = len(panels) * (panel_width + 2 * margin) if panels else 400
    height = panel_height + 230
    canvas = Canvas(width, height)
    canvas.text(margin, 14, title, INK, 2)
    for index, panel in enumerate(panels):
        left = margin + index * (panel_width + 2 * margin)
        _draw_panel(canvas, panel, left, 100, panel_width, panel_height)
    path.write_bytes(canvas.png())
    return path
