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
4. The predicted replacement date is where the fitted line reaches the idle voltage at
   which *this* lock goes CRITICAL and refuses unlocks (firmware/lib/lockbattery.py,
   ``Monitor._update``): the higher of the chemistry's critical pack voltage (1075 mV per
   alkaline cell, 1350 mV per lithium cell, times the cell count) and brown-out + reserve
   + the lock's motor sag (idle minus sag is the next run's predicted minimum). The sag is
   the one in the lock's latest ``BATTERY`` record (10 mV steps); where that record says
   none was measured yet, the chemistry's default sag per cell, as on the lock.
   A flat or rising fit gives no date ("not predictable yet"); fewer than ``MIN_SAMPLES``
   samples or less than ``MIN_SPAN_DAYS`` of history likewise.

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

#: per-cell numbers of firmware/lib/lockbattery.py's ``chemistry()`` (critical mV, default sag mV) and the
#: board-file defaults of its ``Monitor`` (brown-out 0, reserve 200 mV); tests/test_battery_limit.py checks
#: them against the firmware source, so the two cannot drift apart
CRITICAL_CELL_MV = {"alkaline-4aa": 1075, "lithium-4aa": 1350}
DEFAULT_SAG_CELL_MV = {"alkaline-4aa": 75, "lithium-4aa": 25}
DEFAULT_BROWNOUT_MV = 0
DEFAULT_RESERVE_MV = 200
DEFAULT_CHEMISTRY = "alkaline-4aa"
DEFAULT_CELLS = 4
CHANGE_RISE_MV = 300
WINDOW_DAYS = 30
MIN_SAMPLES = 4
MIN_SPAN_DAYS = 2
MAX_PAIRS_SAMPLES = 200

#: which rule sets a lock's cutoff (the ``limit`` field of a forecast)
LIMIT_CRITICAL = "critical voltage"
LIMIT_SAG = "motor sag: the next run would brown out"

BOARDS = Path(__file__).resolve().parent.parent / "boards"


@dataclass(frozen=True)
class Limits:
    """A board's battery thresholds in pack mV, as ``lockbattery.Monitor`` computes them from its ``battery`` part."""

    chemistry: str
    cells: int
    critical_mv: int      # chemistry critical per cell x cells
    guard_mv: int         # brown-out + reserve: the next run's minimum must stay above it
    default_sag_mv: int   # chemistry default sag per cell x cells: stands in until a run was measured

    @classmethod
    def of(cls, battery: dict) -> "Limits":
        """From a board file's ``battery`` part (an unknown chemistry counts as alkaline, as before)."""
        chem = battery.get("chemistry", DEFAULT_CHEMISTRY)
        if chem not in CRITICAL_CELL_MV:
            chem = DEFAULT_CHEMISTRY
        n = int(battery.get("cells", DEFAULT_CELLS))
        guard = int(battery.get("brownout_mv", DEFAULT_BROWNOUT_MV)) + int(battery.get("reserve_mv", DEFAULT_RESERVE_MV))
        return cls(chem, n, CRITICAL_CELL_MV[chem] * n, guard, DEFAULT_SAG_CELL_MV[chem] * n)

    def cutoff(self, sag_mv: int | None) -> "Cutoff":
        """The idle pack mV at (and below) which the lock is CRITICAL, for a measured sag (None: not measured)."""
        sag = self.default_sag_mv if not sag_mv else int(sag_mv)
        sag_limit = self.guard_mv + sag
        if sag_limit > self.critical_mv:
            return Cutoff(sag_limit, LIMIT_SAG, self.critical_mv, self.guard_mv, sag, bool(sag_mv))
        return Cutoff(self.critical_mv, LIMIT_CRITICAL, self.critical_mv, self.guard_mv, sag, bool(sag_mv))


@dataclass(frozen=True)
class Cutoff:
    """The voltage a forecast projects to, and why: ``limit`` is :data:`LIMIT_CRITICAL` or :data:`LIMIT_SAG`."""

    mv: int
    limit: str
    critical_mv: int
    guard_mv: int
    sag_mv: int
    sag_measured: bool


def record_sag_mv(arg: int) -> int | None:
    """The sag of a ``BATTERY`` record's ``arg`` (bits 24..31, 10 mV steps; 0 = not measured yet -> None),
    as ``lockproto.codes.battery_record`` reads it (without its check of the reason byte)."""
    sag = (arg >> 24) & 0xFF
    return sag * 10 if sag else None


def _battery_part(board: str) -> dict:
    try:
        data = json.loads((BOARDS / f"{board}.json").read_text())
        part = data.get("battery", {})
        return part if isinstance(part, dict) else {}
    except (OSError, ValueError, AttributeError):  # no such board, not JSON, not an object
        return {}


@lru_cache(maxsize=32)
def board_limits(board: str) -> Limits:
    """A board's :class:`Limits` (its ``battery`` block in boards/<board>.json, else alkaline 4xAA)."""
    try:
        return Limits.of(_battery_part(board))
    except (TypeError, ValueError):
        return Limits.of({})


def cutoff_mv(board: str) -> int:
    """The chemistry's critical pack voltage for a board (not counting the motor sag: see :func:`lock_cutoff`)."""
    return board_limits(board).critical_mv


def lock_cutoff(board: str, sag_mv: int | None) -> Cutoff:
    """The idle voltage at which a lock on ``board`` with motor sag ``sag_mv`` (None: not measured) goes CRITICAL."""
    return board_limits(board).cutoff(sag_mv)


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
    limit: str = LIMIT_CRITICAL          # which rule sets cutoff_mv
    critical_mv: int | None = None       # the chemistry's critical pack voltage
    guard_mv: int | None = None          # brown-out + reserve
    sag_mv: int | None = None            # the motor sag used (measured, or the chemistry's default)
    sag_measured: bool | None = None

    def as_dict(self) -> dict:
        return self.__dict__.copy()


def _why(c: Cutoff) -> str:
    if c.limit == LIMIT_SAG:
        what = "measured" if c.sag_measured else "default (none measured yet)"
        return (f"the motor-sag limit ({c.mv} mV: idle minus the {what} {c.sag_mv} mV sag within the reserve of "
                f"brown-out, the next run would brown out)")
    return "the critical voltage"


def forecast(samples: list[tuple[int, int, int]], cutoff: int | Cutoff) -> Forecast:
    """Forecast from ``(at, mv, pct)`` samples (any order) to ``cutoff``: a lock's :class:`Cutoff`
    (:func:`lock_cutoff`), or a bare pack mV taken as the critical voltage."""
    c = cutoff if isinstance(cutoff, Cutoff) else Cutoff(int(cutoff), LIMIT_CRITICAL, int(cutoff), None, None, None)
    extra = dict(limit=c.limit, critical_mv=c.critical_mv, guard_mv=c.guard_mv, sag_mv=c.sag_mv,
                 sag_measured=c.sag_measured)
    pts = sorted((a, mv, pct) for a, mv, pct in samples if mv > 0)
    if not pts:
        return Forecast(None, None, None, 0, None, c.mv, None, "no battery readings yet", **extra)
    start = 0
    for i in range(1, len(pts)):
        before = statistics.median(p[1] for p in pts[max(0, i - 3):i])
        after = statistics.median(p[1] for p in pts[i:i + 3])
        if after - before >= CHANGE_RISE_MV:
            start = i  # batteries were changed here (a lasting rise, not one reading after a load dip)
    pts = pts[start:]
    last = pts[-1]
    pts = [p for p in pts if p[0] >= last[0] - WINDOW_DAYS * 86400]
    base = Forecast(last[1], last[2], last[0], len(pts), None, c.mv, None, "", **extra)
    if statistics.median(p[1] for p in pts[-3:]) <= c.mv:
        base.predicted_at, base.reason = last[0], f"at or below {_why(c)} now"
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
    days = (c.mv - b) / m
    base.predicted_at = int(t0 + days * 86400)
    base.reason = f"Theil-Sen fit of pack mV over time reaches {_why(c)}"
    return base
