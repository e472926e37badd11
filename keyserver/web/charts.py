"""Charts as inline SVG, rendered on the server (no script, no external library, no CDN).

Each chart is an ``<svg role="img">`` with a ``<title>`` and ``<desc>`` for screen readers;
the pages also show the same numbers in a table. Colours come from CSS classes
(``static/app.css``), so the Content-Security-Policy needs no inline styles.
"""

from __future__ import annotations

import datetime as _dt
import math

from markupsafe import Markup, escape


def _f(x: float) -> str:
    return f"{x:.1f}"


def _svg(width: int, height: int, title: str, desc: str, body: list[str], cls: str) -> Markup:
    return Markup(
        f'<svg class="chart {cls}" viewBox="0 0 {width} {height}" role="img" aria-labelledby="{cls}-t {cls}-d" '
        f'xmlns="http://www.w3.org/2000/svg" preserveAspectRatio="xMinYMin meet">'
        f'<title id="{cls}-t">{escape(title)}</title><desc id="{cls}-d">{escape(desc)}</desc>'
        + "".join(body) + "</svg>")


def nice_step(span: float, ticks: int = 5) -> float:
    """A round tick step (1, 2 or 5 times a power of ten) giving about ``ticks`` ticks over ``span``."""
    if span <= 0:
        return 1.0
    raw = span / ticks
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def hbars(rows: list[tuple[str, float | None]], *, title: str, unit: str, cls: str, diverging: bool = False,
          width: int = 640) -> Markup:
    """Horizontal bars, one per ``(label, value)``; ``diverging`` centres zero (early left, late right).
    A value of None (an open visit) is drawn as a dashed stub and says so."""
    label_w, bar_h, gap, top, bottom = 190, 18, 6, 10, 46
    height = top + bottom + max(1, len(rows)) * (bar_h + gap)
    vals = [v for _, v in rows if v is not None]
    hi = max([abs(v) for v in vals] + [1.0])
    plot_w = width - label_w - 60
    body = []
    if diverging:
        zero_x, scale = label_w + plot_w / 2, (plot_w / 2) / hi
    else:
        zero_x, scale = label_w, plot_w / hi
    step = nice_step(hi, 4)
    t = 0.0
    ticks = []
    while t <= hi + 1e-9:
        ticks.append(t)
        if diverging and t:
            ticks.append(-t)
        t += step
    for tv in sorted(set(ticks)):
        x = zero_x + tv * scale
        body.append(f'<line class="grid" x1="{_f(x)}" y1="{top}" x2="{_f(x)}" y2="{height - bottom}"/>')
        body.append(f'<text class="tick" x="{_f(x)}" y="{height - bottom + 14}" text-anchor="middle">'
                    f'{tv:g}</text>')
    body.append(f'<text class="axis-label" x="{width - 4}" y="{height - 4}" text-anchor="end">{escape(unit)}</text>')
    for i, (label, v) in enumerate(rows):
        y = top + i * (bar_h + gap)
        body.append(f'<text class="bar-label" x="{label_w - 6}" y="{y + bar_h - 5}" text-anchor="end">'
                    f'{escape(label[:30])}</text>')
        if v is None:
            body.append(f'<rect class="bar open" x="{_f(zero_x)}" y="{y}" width="24" height="{bar_h}"/>'
                        f'<text class="value" x="{_f(zero_x + 30)}" y="{y + bar_h - 5}">open</text>')
            continue
        x0, x1 = sorted((zero_x, zero_x + v * scale))
        kind = "late" if diverging and v > 0 else ("early" if diverging and v < 0 else "bar")
        body.append(f'<rect class="bar {kind}" x="{_f(x0)}" y="{y}" width="{_f(max(1.0, x1 - x0))}" '
                    f'height="{bar_h}"><title>{escape(label)}: {v:g} {escape(unit)}</title></rect>')
        tx = x1 + 4 if v >= 0 else x0 - 4
        anchor = "start" if v >= 0 else "end"
        body.append(f'<text class="value" x="{_f(tx)}" y="{y + bar_h - 5}" text-anchor="{anchor}">{v:g}</text>')
    desc = "; ".join(f"{lab}: {'open' if v is None else f'{v:g} {unit}'}" for lab, v in rows) or "no data"
    return _svg(width, height, title, desc, body, cls)


def timeplot(points: list[tuple[int, float]], *, title: str, unit: str, cls: str, zone,
             line: tuple[tuple[int, float], tuple[int, float]] | None = None,
             hline: tuple[float, str] | None = None, marker: tuple[int, str] | None = None,
             width: int = 640, height: int = 300) -> Markup:
    """Points over time (Unix seconds), with an optional fitted line, a horizontal limit and a
    vertical marker (e.g. the predicted replacement date)."""
    left, right, top, bottom = 56, 36, 26, 40
    xs = [t for t, _ in points] + ([line[0][0], line[1][0]] if line else []) + ([marker[0]] if marker else [])
    ys = [v for _, v in points] + ([line[0][1], line[1][1]] if line else []) + ([hline[0]] if hline else [])
    if not points:
        return _svg(width, 60, title, "no readings yet", ['<text class="tick" x="8" y="30">no readings yet</text>'],
                    cls)
    x0, x1 = min(xs), max(xs)
    if x1 == x0:
        x0, x1 = x0 - 43200, x1 + 43200
    step = nice_step(max(ys) - min(ys) or 100, 5)
    y0 = math.floor(min(ys) / step) * step
    y1 = math.ceil(max(ys) / step) * step
    if y1 == y0:
        y1 = y0 + step
    pw, ph = width - left - right, height - top - bottom

    def px(t: float) -> float:
        return left + (t - x0) / (x1 - x0) * pw

    def py(v: float) -> float:
        return top + (y1 - v) / (y1 - y0) * ph

    body = []
    v = y0
    while v <= y1 + 1e-9:
        body.append(f'<line class="grid" x1="{left}" y1="{_f(py(v))}" x2="{width - right}" y2="{_f(py(v))}"/>'
                    f'<text class="tick" x="{left - 6}" y="{_f(py(v) + 4)}" text-anchor="end">{v:g}</text>')
        v += step
    days = (x1 - x0) / 86400
    n = max(2, min(6, int(days) + 1))
    for i in range(n):
        t = x0 + (x1 - x0) * i / (n - 1)
        d = _dt.datetime.fromtimestamp(t, zone)
        lab = d.strftime("%d %b") if days >= 2 else d.strftime("%H:%M")
        body.append(f'<text class="tick" x="{_f(px(t))}" y="{height - bottom + 16}" text-anchor="middle">{lab}</text>')
    body.append(f'<text class="axis-label" x="{left - 6}" y="{top - 12}" text-anchor="end">{escape(unit)}</text>')
    if hline:
        body.append(f'<line class="limit" x1="{left}" y1="{_f(py(hline[0]))}" x2="{width - right}" '
                    f'y2="{_f(py(hline[0]))}"/><text class="limit-label" x="{left + 4}" '
                    f'y="{_f(py(hline[0]) - 4)}">{escape(hline[1])}</text>')
    if marker:
        body.append(f'<line class="marker" x1="{_f(px(marker[0]))}" y1="{top}" x2="{_f(px(marker[0]))}" '
                    f'y2="{height - bottom}"/><text class="limit-label" x="{_f(px(marker[0]) - 4)}" y="{top + 12}" '
                    f'text-anchor="end">{escape(marker[1])}</text>')
    if line:
        (a, b), (c, d) = line
        body.append(f'<line class="fit" x1="{_f(px(a))}" y1="{_f(py(b))}" x2="{_f(px(c))}" y2="{_f(py(d))}"/>')
    pts = " ".join(f"{_f(px(t))},{_f(py(v))}" for t, v in points)
    body.append(f'<polyline class="series" points="{pts}"/>')
    for t, v in points:
        body.append(f'<circle class="dot" cx="{_f(px(t))}" cy="{_f(py(v))}" r="3"/>')
    first, last = points[0], points[-1]
    desc = (f"{len(points)} readings from {first[1]:g} {unit} to {last[1]:g} {unit}"
            + (f"; {hline[1]} at {hline[0]:g} {unit}" if hline else "") + (f"; {marker[1]}" if marker else ""))
    return _svg(width, height, title, desc, body, cls)
