"""Reports for planners and IT: visits (JSON or CSV), plan versus actual, battery, lock health."""

from __future__ import annotations

import datetime as _dt
from dataclasses import asdict
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select

from .. import reports
from ..errors import Invalid
from ..keystore import get_lock
from ..models import Home, Lock
from .deps import STAFF, require, state

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])


def _span(request: Request, day: str | None, start: int | None, end: int | None) -> tuple[int, int]:
    if day is not None:
        if start is not None or end is not None:
            raise Invalid("give either day or from/to, not both")
        try:
            d = _dt.date.fromisoformat(day)
        except ValueError:
            raise Invalid("day is YYYY-MM-DD") from None
        zone = state(request).settings.zone
        t0 = int(_dt.datetime.combine(d, _dt.time(), zone).timestamp())
        t1 = int(_dt.datetime.combine(d + _dt.timedelta(days=1), _dt.time(), zone).timestamp())
        return t0, t1
    if start is None or end is None:
        raise Invalid("give day=YYYY-MM-DD or both from and to (Unix seconds)")
    if end <= start or end - start > 366 * 86400:
        raise Invalid("to must be after from, at most a year later")
    return start, end


@router.get("/visits", summary="Visits (who, home, start, end, duration); format=csv for a spreadsheet, "
                               "group_by for totals per home, staff, district or day")
def visits(request: Request, day: str | None = None, start: int | None = None, end: int | None = None,
           home_id: int | None = None, staff_id: int | None = None, district_id: int | None = None,
           format: Literal["json", "csv"] = "json", group_by: Literal["home", "staff", "district", "day"] | None = None,
           p=require(*STAFF)):
    st = state(request)
    t0, t1 = _span(request, day, start, end)
    with st.db.tx() as s:
        vs = reports.visits(s, st.settings, start=t0, end=t1, home_id=home_id, staff_id=staff_id,
                            district_id=district_id)
    if format == "csv":
        if group_by:
            raise Invalid("CSV export lists visits; leave out group_by")
        return Response(reports.visits_csv(vs, st.settings), media_type="text/csv",
                        headers={"Content-Disposition": 'attachment; filename="visits.csv"'})
    if group_by:
        return reports.visits_summary(vs, group_by)
    return [asdict(v) for v in vs]


@router.get("/plan", summary="Planned versus actual visits")
def plan(request: Request, day: str | None = None, start: int | None = None, end: int | None = None,
         district_id: int | None = None, p=require(*STAFF)):
    st = state(request)
    t0, t1 = _span(request, day, start, end)
    with st.db.tx() as s:
        return reports.plan_vs_actual(s, st.settings, start=t0, end=t1, district_id=district_id)


@router.get("/battery/{lock_id}", summary="Battery history and predicted replacement date of one lock")
def battery(lock_id: str, request: Request, p=require(*STAFF)):
    with state(request).db.tx() as s:
        lock = get_lock(s, lock_id)
        out = reports.battery_report(s, lock)
        out["history"] = reports.battery_history(s, lock)
        return out


@router.get("/battery-changes", summary="Locks of a district due for new batteries within `days`, soonest first; "
                                       "format=csv for the change route as a spreadsheet")
def battery_changes(request: Request, district_id: int, days: int = 30,
                    format: Literal["json", "csv"] = "json", p=require(*STAFF)):
    if not 1 <= days <= 365:
        raise Invalid("days is 1..365")
    with state(request).db.tx() as s:
        rows = reports.battery_changes(s, district_id, days)
    if format == "csv":
        return Response(reports.battery_changes_csv(rows, state(request).settings), media_type="text/csv",
                        headers={"Content-Disposition": 'attachment; filename="battery-changes.csv"'})
    return rows


@router.get("/health", summary="Lock health: deny-list staleness, time uncertain, journal backlog, jams")
def health(request: Request, district_id: int | None = None, only_problems: bool = False, p=require(*STAFF)):
    with state(request).db.tx() as s:
        q = select(Lock).outerjoin(Home, Lock.home_id == Home.id).order_by(Lock.id)
        if district_id is not None:
            q = q.where(Home.district_id == district_id)
        rows = [reports.lock_health(s, lk) for lk in s.execute(q).unique().scalars()]
    return [r for r in rows if r["problems"]] if only_problems else rows
