"""Battery forecast: when will a lock's pack reach the voltage at which it must be replaced?

Method (docs/keyserver.md, "Battery forecast"):

1. Samples: the authenticated ``BATTERY`` journal records (pack mV at rest), plus
   the unauthenticated HELLO hints phones report (used only when no journal sample
   exists in the window).
2. Only samples since the last battery change count: a new pack is where the median
   of the next three readings is at least ``CHANGE_RISE_MV`` above the median of the
   previous three (a single reading recovering from a load dip is not a change).
3. Over the last ``WINDOW_DAYS`` of those, a Theil–Sen fit (the median of all pairwise
   slopes, intercept the median residual): robust to the motor-load dips and cold
   mornings that pull single readings down, unlike least squares.
4. The predicted replacement date is where the fitted line reaches the chemistry's
   *critical* pack voltage (the level at which the firmware refuses to run the motor,
   firmware/lib/lockbattery.py: 1075 mV per alkaline cell, 1350 mV per lithium cell,
   times the cell count). A flat or rising fit gives no date ("not predictable yet");
   fewer than ``MIN_SAMPLES`` samples or less than ``MIN_SPAN_DAYS`` of history likewise.

A linear fit over a recent window is deliberately simple: alkaline cells fall slowly
on a plateau and faster past the knee, so the forecast moves earlier as the knee
arrives; with a 30-day window it follows that within weeks. Planners get a list of
locks whose date falls inside their planning horizon (per district).
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

#: critical mV per cell (firmware/lib/lockbattery.py) and default cell count per chemistry
CRITICAL_CELL_MV = {"alkaline-4aa": 1075, "lithium-4aa": 1350}
DEFAULT_CELLS = 4
CHANGE_RISE_MV = 300
WINDOW_DAYS = 30
MIN_SAMPLES = 4
MIN_SPAN_DAYS = 2
MAX_PAIRS_SAMPLES = 200

BOARDS = Path(__file__).resolve().parent.parent / "boards"


@lru_cache(maxsize=32)
def cutoff_mv(board: str) -> int:
    """Critical pack voltage for a board (its ``battery`` block in boards/<board>.json, else alkaline 4xAA)."""
    chem, cells = "alkaline-4aa", DEFAULT_CELLS
    try:
        data = json.loads((BOARDS / f"{board}.json").read_text())
        chem = data.get("battery", {}).get("chemistry", chem)
        cells = int(data.get("battery", {}).get("cells", cells))
    except (OSError, ValueError):
        pass
    return CRITICAL_CELL_MV.get(chem, CRITICAL_CELL_MV["alkaline-4aa"]) * cells


def theil_sen(points: list[tuple[float, float]]) -> tuple[float, float]:
    """(slope, intercept) of the Theil–Sen estimator over ``(x, y)`` points (at least two distinct x)."""
    pts = points[-MAX_PAIRS_SAMPLES:]
    slopes = [(y2 - y1) / (x2 - x1) for i, (x1, y1) in enumerate(pts) for (x2, y2) in pts[i + 1:] if x2 != x1]
    if not slopes:
        raise ValueError("need two samples at different times")
    m = statistics.median(slopes)
    b = statistics.median(y - m * x for x, y in pts)
    return m, b


@dataclass
class Forecast:
    last_mv: int | None
    last_pct: int | None
    last_at: int | None
    samples: int
    slope_mv_per_day: float | None
    cutoff_mv: int
    predicted_at: int | None
    reason: str

    def as_dict(self) -> dict:
        return self.__dict__.copy()


def forecast(samples: list[tuple[int, int, int]], cutoff: int) -> Forecast:
    """Forecast from ``(at, mv, pct)`` samples (any order)."""
    pts = sorted((a, mv, pct) for a, mv, pct in samples if mv > 0)
    if not pts:
        return Forecast(None, None, None, 0, None, cutoff, None, "no battery readings yet")
    start = 0
    for i in range(1, len(pts)):
        before = statistics.median(p[1] for p in pts[max(0, i - 3):i])
        after = statistics.median(p[1] for p in pts[i:i + 3])
        if after - before >= CHANGE_RISE_MV:
            start = i  # batteries were changed here (a lasting rise, not one reading after a load dip)
    pts = pts[start:]
    last = pts[-1]
    pts = [p for p in pts if p[0] >= last[0] - WINDOW_DAYS * 86400]
    base = Forecast(last[1], last[2], last[0], len(pts), None, cutoff, None, "")
    if statistics.median(p[1] for p in pts[-3:]) <= cutoff:
        base.predicted_at, base.reason = last[0], "at or below the critical voltage now"
        return base
    if len(pts) < MIN_SAMPLES or pts[-1][0] - pts[0][0] < MIN_SPAN_DAYS * 86400:
        base.reason = f"not predictable yet (needs {MIN_SAMPLES} readings over {MIN_SPAN_DAYS} days)"
        return base
    t0 = pts[0][0]
    m, b = theil_sen([((a - t0) / 86400.0, float(mv)) for a, mv, _ in pts])
    base.slope_mv_per_day = round(m, 3)
    if m >= 0:
        base.reason = "voltage not falling: no replacement in sight"
        return base
    days = (cutoff - b) / m
    base.predicted_at = int(t0 + days * 86400)
    base.reason = "Theil-Sen fit of pack mV over time reaches the critical voltage"
    return base
