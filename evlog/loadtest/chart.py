"""A small log-log line chart as SVG text (no plotting library needed to draw a report)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 760, 440
LEFT, RIGHT, TOP, BOTTOM = 70, 190, 40, 55


@dataclass
class Series:
    label: str
    xs: list[float]
    ys: list[float]
    colour: str
    dashed: bool = False


def _decades(lo: float, hi: float) -> list[float]:
    return [10.0**e for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)]


def _fmt(v: float) -> str:
    if v >= 1000:
        return f"{v / 1000:g}k"
    return f"{v:g}"


def line_chart_svg(
    series: list[Series],
    *,
    title: str,
    x_label: str,
    y_label: str,
    hline: tuple[float, str] | None = None,
) -> str:
    points = [(x, y) for s in series for x, y in zip(s.xs, s.ys, strict=True) if x > 0 and y > 0]
    ys = [y for _, y in points] + ([hline[0]] if hline else [])
    xs = [x for x, _ in points]
    x_ticks = _decades(min(xs) / 1.5, max(xs) * 1.5) if xs else [1.0, 10.0]
    y_ticks = _decades(min(ys), max(ys)) if ys else [1.0, 10.0]
    x0, x1 = math.log10(min(x_ticks)), math.log10(max(x_ticks))
    y0, y1 = math.log10(min(y_ticks)), math.log10(max(y_ticks))
    pw, ph = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def px(x: float) -> float:
        return LEFT + (math.log10(x) - x0) / ((x1 - x0) or 1) * pw

    def py(y: float) -> float:
        return TOP + ph - (math.log10(y) - y0) / ((y1 - y0) or 1) * ph

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}"'
        ' font-family="sans-serif" font-size="12">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        f'<text x="{WIDTH / 2}" y="22" text-anchor="middle" font-size="15">{escape(title)}</text>',
    ]
    for t in y_ticks:
        y = py(t)
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + pw}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_fmt(t)}</text>')
    for t in x_ticks:
        x = px(t)
        out.append(f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{TOP + ph}" stroke="#ddd"/>')
        out.append(f'<text x="{x:.1f}" y="{TOP + ph + 18}" text-anchor="middle">{_fmt(t)}</text>')
    out.append(f'<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#444"/>')
    out.append(
        f'<text x="{LEFT + pw / 2}" y="{HEIGHT - 12}" text-anchor="middle">{escape(x_label)}</text>'
    )
    out.append(
        f'<text transform="translate(18 {TOP + ph / 2}) rotate(-90)" text-anchor="middle">'
        f"{escape(y_label)}</text>"
    )
    if hline:
        y = py(hline[0])
        out.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + pw}" y2="{y:.1f}" stroke="#c00"'
            ' stroke-dasharray="6 4"/>'
        )
        out.append(f'<text x="{LEFT + 6}" y="{y - 5:.1f}" fill="#c00">{escape(hline[1])}</text>')
    for i, s in enumerate(series):
        pts = [(px(x), py(y)) for x, y in zip(s.xs, s.ys, strict=True) if x > 0 and y > 0]
        dash = ' stroke-dasharray="3 3"' if s.dashed else ""
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
        out.append(
            f'<polyline points="{path}" fill="none" stroke="{s.colour}" stroke-width="2"{dash}/>'
        )
        out += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{s.colour}"/>' for x, y in pts]
        ly = TOP + 14 + i * 20
        out.append(
            f'<line x1="{LEFT + pw + 15}" y1="{ly}" x2="{LEFT + pw + 40}" y2="{ly}"'
            f' stroke="{s.colour}" stroke-width="2"{dash}/>'
        )
        out.append(f'<text x="{LEFT + pw + 46}" y="{ly + 4}">{escape(s.label)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
