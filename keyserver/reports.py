"""Reports derived from verified journal records: visits, planned versus actual, battery, lock health.

Visits (docs/keyserver.md, "Visits"): per lock, events in sequence order. A visit by
carer U starts at an ``UNLOCK`` by U. Further unlocks by U before the door closed or the
bolt relocked continue it; a later one starts a new visit. It ends at a ``LOCK`` by U (the carer locked with the phone on leaving); otherwise at
the last ``DOOR_CLOSED``, ``AUTO_RELOCK`` or ``LOCK`` event before the next visit starts,
at most ``MAX_VISIT`` after the start; with no such event its end is unknown (an
ongoing visit, or a journal not yet uploaded). A visit whose records carry the lock's
time-uncertain flag is marked so.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
from dataclasses import asdict, dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lockproto import Event, Flag

from .battery import forecast, lock_cutoff
from .keystore import now
from .models import BatterySample, DenyEntry, Home, JournalGap, JournalRecord, Lock, PlannedVisit, Staff
from .settings import Settings

MAX_VISIT = 4 * 3600
PLAN_TOLERANCE = 2 * 3600
_ENDS = {Event.DOOR_CLOSED, Event.AUTO_RELOCK, Event.LOCK}


@dataclass
class Visit:
    lock_id: str
    home_id: int | None
    citizen_ref: str | None
    district_id: int | None
    staff_id: int
    staff_name: str
    start: int
    end: int | None
    duration_s: int | None
    time_uncertain: bool
    day: str


def _day(t: int, settings: Settings) -> str:
    return _dt.datetime.fromtimestamp(t, settings.zone).date().isoformat()


def visits_of_lock(records: list[JournalRecord]) -> list[tuple[int, int, int | None, bool]]:
    """``(user, start, end, uncertain)`` visits from one lock's records in sequence order."""
    out = []
    cur = None  # [user, start, last_end, uncertain]

    def close(c, end):
        out.append((c[0], c[1], end, c[3]))

    for r in records:
        unc = bool(r.flags & 1)
        if cur is not None and r.time - cur[1] > MAX_VISIT:
            close(cur, cur[2])
            cur = None
        if r.event == Event.UNLOCK and r.user_id:
            if cur is not None and cur[0] == r.user_id and cur[2] is None:
                cur[3] = cur[3] or unc
                continue  # unlocked again before the door was closed: the same visit
            if cur is not None:
                close(cur, cur[2])
            cur = [r.user_id, r.time, None, unc]
        elif cur is not None:
            if r.event == Event.LOCK and r.user_id == cur[0]:
                cur[3] = cur[3] or unc
                close(cur, r.time)
                cur = None
            elif r.event in _ENDS:
                cur[2] = r.time
                cur[3] = cur[3] or unc
    if cur is not None:
        close(cur, cur[2])
    return out


def visits(s: Session, settings: Settings, *, start: int, end: int, home_id: int | None = None,
           staff_id: int | None = None, district_id: int | None = None) -> list[Visit]:
    """Visits starting in ``[start, end)``, filtered by home, carer and district."""
    q = select(Lock, Home).outerjoin(Home, Lock.home_id == Home.id)
    if home_id is not None:
        q = q.where(Lock.home_id == home_id)
    if district_id is not None:
        q = q.where(Home.district_id == district_id)
    names = dict(s.execute(select(Staff.id, Staff.full_name)).all())
    out = []
    for lock, home in s.execute(q.order_by(Lock.id)).unique().all():
        recs = list(s.execute(select(JournalRecord).where(
            JournalRecord.lock_pk == lock.id, JournalRecord.time >= start - MAX_VISIT,
            JournalRecord.time < end + MAX_VISIT).order_by(JournalRecord.seq)).scalars())
        for user, v0, v1, unc in visits_of_lock(recs):
            if not start <= v0 < end or (staff_id is not None and user != staff_id):
                continue
            out.append(Visit(lock.lock_id, lock.home_id, home.citizen_ref if home else None,
                             home.district_id if home else None, user, names.get(user, ""), v0, v1,
                             v1 - v0 if v1 is not None else None, unc, _day(v0, settings)))
    out.sort(key=lambda v: (v.start, v.lock_id))
    return out


def _iso(t: int | None, settings: Settings) -> str:
    return "" if t is None else _dt.datetime.fromtimestamp(t, settings.zone).isoformat(timespec="seconds")


def visits_csv(vs: list[Visit], settings: Settings) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["day", "district_id", "home_id", "citizen_ref", "lock_id", "staff_id", "staff_name", "start", "end",
                "duration_min", "time_uncertain"])
    for v in vs:
        w.writerow([v.day, v.district_id or "", v.home_id or "", v.citizen_ref or "", v.lock_id, v.staff_id,
                    v.staff_name, _iso(v.start, settings), _iso(v.end, settings),
                    "" if v.duration_s is None else round(v.duration_s / 60, 1), int(v.time_uncertain)])
    return buf.getvalue()


def visits_summary(vs: list[Visit], by: str) -> list[dict]:
    """Counts and total minutes grouped by ``home``, ``staff``, ``district`` or ``day``."""
    key = {"home": "home_id", "staff": "staff_id", "district": "district_id", "day": "day"}[by]
    groups: dict = {}
    for v in vs:
        g = groups.setdefault(getattr(v, key), {"key": getattr(v, key), "visits": 0, "minutes": 0.0, "open": 0})
        g["visits"] += 1
        if v.duration_s is None:
            g["open"] += 1
        else:
            g["minutes"] = round(g["minutes"] + v.duration_s / 60, 1)
    return sorted(groups.values(), key=lambda g: str(g["key"]))


def plan_vs_actual(s: Session, settings: Settings, *, start: int, end: int, district_id: int | None = None) -> dict:
    """Each planned visit in ``[start, end)`` matched to the actual visit of the same carer at the same home
    whose start is nearest, within ``PLAN_TOLERANCE`` of the planned span; actual visits matched by none are
    listed as unplanned."""
    actual = visits(s, settings, start=start - PLAN_TOLERANCE, end=end + PLAN_TOLERANCE, district_id=district_id)
    q = select(PlannedVisit, Home).join(Home, PlannedVisit.home_id == Home.id).where(
        PlannedVisit.start >= start, PlannedVisit.start < end)
    if district_id is not None:
        q = q.where(Home.district_id == district_id)
    used: set[int] = set()
    rows = []
    for p, home in s.execute(q.order_by(PlannedVisit.start)).all():
        best = None
        for i, v in enumerate(actual):
            if i in used or v.staff_id != p.staff_id or v.home_id != p.home_id:
                continue
            if not p.start - PLAN_TOLERANCE <= v.start <= p.end + PLAN_TOLERANCE:
                continue
            if best is None or abs(v.start - p.start) < abs(actual[best].start - p.start):
                best = i
        row = {"planned_id": p.id, "staff_id": p.staff_id, "home_id": p.home_id, "citizen_ref": home.citizen_ref,
               "planned_start": p.start, "planned_end": p.end, "status": "missed", "actual_start": None,
               "actual_end": None, "start_delta_min": None, "duration_delta_min": None}
        if best is not None:
            used.add(best)
            v = actual[best]
            row.update(status="done", actual_start=v.start, actual_end=v.end,
                       start_delta_min=round((v.start - p.start) / 60, 1),
                       duration_delta_min=None if v.duration_s is None else
                       round((v.duration_s - (p.end - p.start)) / 60, 1))
        rows.append(row)
    unplanned = [asdict(v) for i, v in enumerate(actual) if i not in used and start <= v.start < end]
    return {"planned": rows, "unplanned": unplanned,
            "summary": {"planned": len(rows), "done": sum(r["status"] == "done" for r in rows),
                        "missed": sum(r["status"] == "missed" for r in rows), "unplanned": len(unplanned)}}


def battery_report(s: Session, lock: Lock, t: int | None = None) -> dict:
    """One lock's battery forecast (:func:`keyserver.battery.forecast`) to the idle voltage at which it goes
    CRITICAL, with the motor sag of its latest ``BATTERY`` record (``cutoff_mv``, ``limit``, ``sag_mv``)."""
    t = t or now()
    journal = [(a, mv, pct) for a, mv, pct in s.execute(
        select(BatterySample.at, BatterySample.mv, BatterySample.pct).where(
            BatterySample.lock_pk == lock.id, BatterySample.source == "journal")).all()]
    samples = journal or [(a, mv, pct) for a, mv, pct in s.execute(
        select(BatterySample.at, BatterySample.mv, BatterySample.pct).where(BatterySample.lock_pk == lock.id)).all()]
    # the latest record in journal order (ids follow the sequence numbers); None: no run measured since its boot
    sag = s.execute(select(BatterySample.sag_mv).where(
        BatterySample.lock_pk == lock.id, BatterySample.source == "journal")
        .order_by(BatterySample.id.desc()).limit(1)).scalar_one_or_none() if journal else None
    f = forecast(samples, lock_cutoff(lock.board, sag))
    d = f.as_dict()
    if d["predicted_at"] is None and (lock.seen_flags or 0) & (Flag.BATTERY_LOW | Flag.BATTERY_CRITICAL):
        # too few readings for a trend, but the lock itself says its cells are low: due now
        d["predicted_at"] = lock.seen_at or t
        d["reason"] = "the lock reports a low battery (BATTERY_LOW/CRITICAL in its HELLO)"
    d.update(lock_id=lock.lock_id, home_id=lock.home_id, board=lock.board,
             source="journal" if journal else ("hello" if samples else None))
    return d


def battery_history(s: Session, lock: Lock) -> list[dict]:
    return [{"at": a, "mv": mv, "pct": pct, "source": src} for a, mv, pct, src in s.execute(
        select(BatterySample.at, BatterySample.mv, BatterySample.pct, BatterySample.source)
        .where(BatterySample.lock_pk == lock.id).order_by(BatterySample.at)).all()]


def battery_changes(s: Session, district_id: int, horizon_days: int) -> list[dict]:
    """Locks in a district whose predicted replacement falls within ``horizon_days``, soonest first."""
    t = now()
    rows = []
    for lock, home in s.execute(select(Lock, Home).join(Home, Lock.home_id == Home.id)
                                .where(Home.district_id == district_id).order_by(Lock.id)).unique().all():
        r = battery_report(s, lock, t)
        if r["predicted_at"] is not None and r["predicted_at"] <= t + horizon_days * 86400:
            r.update(citizen_ref=home.citizen_ref, address=home.address)
            rows.append(r)
    rows.sort(key=lambda r: r["predicted_at"])
    return rows


def battery_changes_csv(rows: list[dict], settings: Settings) -> str:
    """The battery-change list as CSV, most urgent first (the order of :func:`battery_changes`)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["predicted_change", "citizen_ref", "address", "lock_id", "board", "last_mv", "last_pct", "last_reading",
                "slope_mv_per_day", "reason", "cutoff_mv", "limit", "sag_mv"])
    for r in rows:
        w.writerow([_iso(r["predicted_at"], settings), r.get("citizen_ref") or "", r.get("address") or "",
                    r["lock_id"], r.get("board") or "", r.get("last_mv") or "", "" if r.get("last_pct") is None
                    else r["last_pct"], _iso(r.get("last_at"), settings),
                    "" if r.get("slope_mv_per_day") is None else round(r["slope_mv_per_day"], 1), r.get("reason") or "",
                    r.get("cutoff_mv") or "", r.get("limit") or "", "" if r.get("sag_mv") is None else r["sag_mv"]])
    return buf.getvalue()


STALE_DENY = 24 * 3600


def lock_health(s: Session, lock: Lock, t: int | None = None) -> dict:
    """Deny-list staleness, time uncertainty, journal backlog and jams, from journal and phone reports."""
    t = t or now()
    flags = lock.seen_flags or 0
    last_deny = s.execute(select(func.max(JournalRecord.time)).where(
        JournalRecord.lock_pk == lock.id, JournalRecord.event == Event.DENY_UPDATED)).scalar_one()
    jams = s.execute(select(func.count()).select_from(JournalRecord).where(
        JournalRecord.lock_pk == lock.id, JournalRecord.event == Event.JAM,
        JournalRecord.time >= t - 30 * 86400)).scalar_one()
    gaps = s.execute(select(func.count()).select_from(JournalGap).where(JournalGap.lock_pk == lock.id)).scalar_one()
    live_deny = s.execute(select(func.count()).select_from(DenyEntry).where(
        DenyEntry.lock_pk == lock.id, DenyEntry.expires > t)).scalar_one()
    backlog = None if lock.seen_journal_head is None else max(0, lock.seen_journal_head - lock.journal_seq)
    deny_behind = lock.seen_deny_version is not None and lock.seen_deny_version < lock.deny_version
    problems = []
    if deny_behind:
        problems.append("deny list behind the server's")
    if flags & Flag.DENY_STALE:
        problems.append("deny list not refreshed for 24 h")
    if flags & Flag.TIME_UNCERTAIN:
        problems.append("time uncertain")
    if flags & Flag.JOURNAL_BACKLOG or (backlog or 0) > 1000:
        problems.append("journal backlog")
    if jams:
        problems.append(f"{jams} jams in 30 days")
    if live_deny > 64:
        problems.append("deny list over capacity: re-key the lock")
    if lock.seen_at is None or lock.seen_at < t - 7 * 86400:
        problems.append("not seen by any phone for 7 days")
    return {"lock_id": lock.lock_id, "home_id": lock.home_id, "epoch": lock.epoch, "seen_at": lock.seen_at,
            "seen_flags": flags, "deny_version": lock.deny_version, "seen_deny_version": lock.seen_deny_version,
            "deny_behind": deny_behind, "deny_stale": bool(flags & Flag.DENY_STALE), "deny_entries": live_deny,
            "last_deny_update_at": last_deny, "time_uncertain": bool(flags & Flag.TIME_UNCERTAIN),
            "journal_seq": lock.journal_seq, "journal_backlog": backlog, "journal_gaps": gaps, "jams_30d": jams,
            "battery_pct": lock.seen_battery_pct, "problems": problems}
