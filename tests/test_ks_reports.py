"""Reports from uploaded journals: visits (per home, carer, district, day; CSV), plan versus actual,
battery forecast and the battery-change list, lock health; and the CSV import/export commands."""

from __future__ import annotations

import csv
import datetime as dt
import io
import subprocess
import sys
from types import SimpleNamespace

import pytest
from hypothesis import given, settings, strategies as st

from lockproto import Event
from lockproto.journal import Record, chain_genesis, make_export_chunk, seal

from ks_support import *  # noqa: F401,F403
from ks_support import build_world

from keyserver.battery import forecast, theil_sen
from keyserver.reports import MAX_VISIT, visits_of_lock

T0 = int(dt.datetime(2026, 11, 30, 8, 0, tzinfo=dt.timezone.utc).timestamp())  # a Monday, 09:00 in Copenhagen


class SimJournal:
    """A lock's journal written the way the lock writes it (lockproto's encoder), uploaded in chunks."""

    def __init__(self, keys):
        self.keys, self.recs = keys, []
        self.prev = chain_genesis(keys.jm, keys.lock_id)

    def add(self, t, event, user=0, ticket=0, arg16=0, arg=0):
        r = seal(self.keys.jm, self.prev, Record(seq=len(self.recs) + 1, time=t, event=int(event), user_id=user,
                                                 ticket_id=ticket, arg16=arg16, arg=arg))
        self.recs.append(r)
        self.prev = r.chain

    def upload(self, ks, token, lock_id, start=0):
        genesis = chain_genesis(self.keys.jm, self.keys.lock_id)
        for i in range(start, len(self.recs), 16):
            part = self.recs[i:i + 16]
            prev = self.recs[i - 1].chain if i else genesis
            chunk = make_export_chunk(self.keys, i + 1, part, len(self.recs), prev)
            ks.call("POST", "/api/v1/phone/journal", token, 200, json={"lock_id": lock_id, "chunk": chunk.hex()})


def visit(j, user, t, minutes, lock_at_end=True):
    j.add(t, Event.UNLOCK, user, 1)
    j.add(t + 10, Event.DOOR_OPEN)
    j.add(t + 15, Event.DOOR_CLOSED)
    j.add(t + 20, Event.AUTO_RELOCK)
    end = t + minutes * 60
    j.add(end - 20, Event.BUTTON)
    j.add(end - 15, Event.DOOR_OPEN)
    j.add(end - 5, Event.DOOR_CLOSED)
    if lock_at_end:
        j.add(end, Event.LOCK, user, 1)


def test_visits_reports_and_csv(ks):
    w = build_world(ks, n_locks=2)
    bob = ks.call("POST", "/api/v1/staff", ks.admin, 201, json={"username": "bob", "role": "carer",
                                                                 "full_name": "Bob"}).json()["id"]
    j0, j1 = SimJournal(w.keys[0]), SimJournal(w.keys[1])
    visit(j0, w.carer, T0, 30)                          # Anna at home 0, 30 min, locks with her phone
    visit(j0, bob, T0 + 3 * 3600, 15, lock_at_end=False)  # Bob later, leaves without locking: last door close
    visit(j1, w.carer, T0 + 3600, 45)
    visit(j1, w.carer, T0 + 86400, 20)                  # the next day
    j0.upload(ks, w.phone_token, w.locks[0])
    j1.upload(ks, w.phone_token, w.locks[1])
    vs = ks.call("GET", f"/api/v1/reports/visits?start={T0 - 60}&end={T0 + 2 * 86400}", ks.admin, 200).json()
    got = [(v["home_id"], v["staff_id"], v["start"] - T0, v["duration_s"]) for v in vs]
    assert got == [(w.homes[0], w.carer, 0, 1800), (w.homes[1], w.carer, 3600, 2700),
                   (w.homes[0], bob, 3 * 3600, 15 * 60 - 5), (w.homes[1], w.carer, 86400, 1200)]
    day = ks.call("GET", "/api/v1/reports/visits?day=2026-11-30", ks.admin, 200).json()
    assert len(day) == 3 and {v["day"] for v in day} == {"2026-11-30"}
    per_staff = ks.call("GET", "/api/v1/reports/visits?day=2026-11-30&group_by=staff", ks.admin, 200).json()
    assert {g["key"]: (g["visits"], g["minutes"]) for g in per_staff} == {w.carer: (2, 75.0), bob: (1, 14.9)}
    per_home = ks.call("GET", f"/api/v1/reports/visits?day=2026-11-30&home_id={w.homes[0]}", ks.admin, 200).json()
    assert [v["staff_id"] for v in per_home] == [w.carer, bob]
    per_district = ks.call("GET", f"/api/v1/reports/visits?day=2026-12-01&district_id={w.district}&group_by=district",
                           ks.admin, 200).json()
    assert per_district == [{"key": w.district, "visits": 1, "minutes": 20.0, "open": 0}]
    r = ks.call("GET", "/api/v1/reports/visits?day=2026-11-30&format=csv", ks.admin, 200)
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [row["staff_name"] for row in rows] == ["Anna", "Anna", "Bob"]
    assert rows[0]["start"] == "2026-11-30T09:00:00+01:00" and rows[0]["duration_min"] == "30.0"
    assert rows[0]["citizen_ref"] == "C-0000"


def test_plan_versus_actual(ks):
    w = build_world(ks, n_locks=2)
    j0 = SimJournal(w.keys[0])
    visit(j0, w.carer, T0 + 600, 25)  # ten minutes late, five short
    j0.add(T0 + 5 * 3600, Event.UNLOCK, w.carer, 1)  # an unplanned visit
    j0.upload(ks, w.phone_token, w.locks[0])
    plan = {"visits": [{"staff_id": w.carer, "home_id": w.homes[0], "start": T0, "end": T0 + 1800},
                       {"staff_id": w.carer, "home_id": w.homes[1], "start": T0 + 7200, "end": T0 + 9000}]}
    ks.call("POST", "/api/v1/plan", ks.admin, 201, json=plan)
    r = ks.call("GET", "/api/v1/reports/plan?day=2026-11-30", ks.admin, 200).json()
    assert r["summary"] == {"planned": 2, "done": 1, "missed": 1, "unplanned": 1}
    done = r["planned"][0]
    assert done["status"] == "done" and done["start_delta_min"] == 10.0 and done["duration_delta_min"] == -5.0
    assert r["planned"][1]["status"] == "missed"
    bad = {"visits": [{"staff_id": w.carer, "home_id": 999, "start": T0, "end": T0 + 1}]}
    assert "unknown" in ks.call("POST", "/api/v1/plan", ks.admin, 422, json=bad).json()["detail"]


def test_battery_forecast_and_change_list(ks):
    w = build_world(ks, n_locks=3)
    # lock 0: an old pack, then a change, then 20 days falling 10 mV/day with motor-load dips
    j = SimJournal(w.keys[0])
    for d in range(5):
        j.add(T0 + d * 86400, Event.BATTERY, arg16=4700 - 20 * d, arg=10)
    t1 = T0 + 5 * 86400
    for d in range(20):
        for k in range(4):
            t = t1 + d * 86400 + k * 6 * 3600
            mv = 6000 - 10 * (t - t1) / 86400 - (350 if k == 2 else 0)  # one reading a day under load
            j.add(t, Event.BATTERY, arg16=int(mv), arg=80 | (5 << 24))  # 80 %, a measured sag of 50 mV
    j.upload(ks, w.phone_token, w.locks[0])
    b = ks.call("GET", f"/api/v1/reports/battery/{w.locks[0]}", ks.admin, 200).json()
    assert b["source"] == "journal" and b["cutoff_mv"] == 4300 and len(b["history"]) == 85
    # 4300 (4 x 1075) is above brown-out + reserve + sag (4200 + 50): the critical voltage binds
    assert (b["limit"], b["critical_mv"], b["sag_mv"], b["sag_measured"]) == ("critical voltage", 4300, 50, True)
    assert b["slope_mv_per_day"] == pytest.approx(-10, abs=0.5)
    expect = t1 + (6000 - 4300) / 10 * 86400
    assert abs(b["predicted_at"] - expect) < 3 * 86400  # least squares would be ~ 9 days early here
    # lock 1: too few readings; lock 2: nothing at all
    j1 = SimJournal(w.keys[1])
    j1.add(T0, Event.BATTERY, arg16=5000, arg=40)
    j1.upload(ks, w.phone_token, w.locks[1])
    assert ks.call("GET", f"/api/v1/reports/battery/{w.locks[1]}", ks.admin, 200).json()["predicted_at"] is None
    days = int((expect - T0) / 86400) + 30
    lst = ks.call("GET", f"/api/v1/reports/battery-changes?district_id={w.district}&days={max(days, 200)}",
                  ks.admin, 200).json()
    # the list is relative to today; the simulated pack of 2026-12 is due within the horizon
    assert [x["lock_id"] for x in lst] == [w.locks[0]] and lst[0]["address"] == "Gade 0"
    ks.call("GET", f"/api/v1/reports/battery-changes?district_id={w.district}&days=0", ks.admin, 422)
    r = ks.call("GET", f"/api/v1/reports/battery-changes?district_id={w.district}&days={max(days, 200)}&format=csv",
                ks.admin, 200)
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0][:4] == ["predicted_change", "citizen_ref", "address", "lock_id"]
    assert [row[3] for row in rows[1:]] == [w.locks[0]] and rows[1][2] == "Gade 0"
    assert rows[1][0] == dt.datetime.fromtimestamp(lst[0]["predicted_at"], ks.settings.zone).isoformat(timespec="seconds")


def test_a_big_motor_sag_brings_the_battery_change_forward(ks):
    """Two locks on the same falling voltage: a big measured sag makes the lock refuse (CRITICAL) at a higher
    idle voltage, so it is due earlier on the change list, and the list says why."""
    from keyserver.keystore import now

    w = build_world(ks, n_locks=3)
    t1 = now() - 20 * 86400
    # sim board: brown-out 4000 + reserve 200; critical 4 x 1075 = 4300; default sag 4 x 75 = 300
    for i, sag_field in enumerate((70, 5, 0)):  # 700 mV (cold cells, a stiff bolt), 50 mV, none measured yet
        j = SimJournal(w.keys[i])
        for d in range(20):
            for k in range(2):
                t = t1 + d * 86400 + k * 12 * 3600
                j.add(t, Event.BATTERY, arg16=int(6000 - 10 * (t - t1) / 86400), arg=70 | (sag_field << 24))
        j.upload(ks, w.phone_token, w.locks[i])
    big, small, unmeasured = (ks.call("GET", f"/api/v1/reports/battery/{lk}", ks.admin, 200).json() for lk in w.locks)
    assert (big["cutoff_mv"], big["limit"], big["sag_mv"], big["sag_measured"]) == (
        4900, "motor sag: the next run would brown out", 700, True)
    assert (small["cutoff_mv"], small["limit"], small["sag_mv"]) == (4300, "critical voltage", 50)
    assert (unmeasured["cutoff_mv"], unmeasured["limit"], unmeasured["sag_mv"], unmeasured["sag_measured"]) == (
        4500, "motor sag: the next run would brown out", 300, False)
    for r, cut in ((big, 4900), (small, 4300), (unmeasured, 4500)):
        assert r["critical_mv"] == 4300 and r["guard_mv"] == 4200
        assert r["slope_mv_per_day"] == pytest.approx(-10, abs=0.01)
        assert abs(r["predicted_at"] - (t1 + (6000 - cut) / 10 * 86400)) <= 3600
    assert "motor-sag limit (4900 mV" in big["reason"] and "measured 700 mV sag" in big["reason"]
    assert "brown out" in big["reason"] and small["reason"].endswith("reaches the critical voltage")
    assert "default (none measured yet) 300 mV sag" in unmeasured["reason"]
    # big: due ~90 days from now, unmeasured ~130, small ~150
    url = f"/api/v1/reports/battery-changes?district_id={w.district}"
    assert [x["lock_id"] for x in ks.call("GET", url + "&days=365", ks.admin, 200).json()] == [
        w.locks[0], w.locks[2], w.locks[1]]
    lst = ks.call("GET", url + "&days=110", ks.admin, 200).json()
    assert [(x["lock_id"], x["limit"], x["cutoff_mv"]) for x in lst] == [
        (w.locks[0], "motor sag: the next run would brown out", 4900)]
    rows = list(csv.reader(io.StringIO(ks.call("GET", url + "&days=365&format=csv", ks.admin, 200).text)))
    assert rows[0][-3:] == ["cutoff_mv", "limit", "sag_mv"]
    assert [r[3] for r in rows[1:]] == [w.locks[0], w.locks[2], w.locks[1]]
    assert rows[1][-3:] == ["4900", "motor sag: the next run would brown out", "700"]
    assert rows[3][-3:] == ["4300", "critical voltage", "50"]


def test_theil_sen_is_robust_and_exact_on_lines():
    pts = [(x, 100 - 2 * x) for x in range(10)]
    assert theil_sen(pts) == (pytest.approx(-2), pytest.approx(100))
    pts[3] = (3, -500)  # a wild outlier
    m, b = theil_sen(pts)
    assert m == pytest.approx(-2) and b == pytest.approx(100)


@settings(max_examples=100, deadline=None)
@given(start=st.integers(5000, 6500), step=st.integers(-40, -1), n=st.integers(10, 60),
       dips=st.lists(st.integers(0, 800), min_size=12, max_size=12))
def test_forecast_is_exact_on_a_line_with_load_dips(start, step, n, dips):
    # readings every 12 h on an exact line, one in five pulled down by up to 800 mV (a reading
    # taken under load): more than half the pairwise slopes are exact, so Theil-Sen recovers the line
    t0 = 1_700_000_000
    samples = [(t0 + i * 43200, start + step * i - (dips[i // 5] if i % 5 == 2 else 0), 50) for i in range(n)]
    f = forecast(samples, 4300)
    clean_last = start + step * (n - 1)
    if clean_last <= 4300:  # already crossed inside the readings: due now (or at the crossing)
        assert f.predicted_at is not None and f.predicted_at <= samples[-1][0]
        return
    assert f.slope_mv_per_day == pytest.approx(step * 2, abs=1e-3)
    true = t0 + (4300 - start) / (step * 2) * 86400
    assert f.predicted_at is not None and abs(f.predicted_at - true) <= 1


R = SimpleNamespace


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([Event.UNLOCK, Event.LOCK, Event.DOOR_OPEN, Event.DOOR_CLOSED,
                                           Event.AUTO_RELOCK, Event.BUTTON, Event.BATTERY]),
                          st.sampled_from([0, 1, 2]), st.integers(1, 7200), st.booleans()), max_size=40))
def test_visits_are_well_formed(events):
    t, recs = 1_700_000_000, []
    for i, (ev, user, gap, unc) in enumerate(events):
        t += gap
        recs.append(R(seq=i + 1, time=t, event=ev, user_id=user, flags=int(unc)))
    vs = visits_of_lock(recs)
    starts = {(r.user_id, r.time) for r in recs if r.event == Event.UNLOCK and r.user_id}
    for i, (user, v0, v1, _) in enumerate(vs):
        assert (user, v0) in starts
        if v1 is not None:
            assert v0 <= v1 <= v0 + MAX_VISIT
        if i + 1 < len(vs):
            assert (v1 or v0) <= vs[i + 1][1]
    # every unlock by a person lies in some visit of theirs
    for user, tt in starts:
        assert any(u == user and v0 <= tt and (tt - v0 <= MAX_VISIT) for u, v0, _, _ in vs)


def test_csv_import_and_export(db_url, key_file, tmp_path):
    from keyserver.cli import main

    base = ["--database-url", db_url, "--master-key-file", str(key_file)]
    assert main(base + ["init"]) == 0
    (tmp_path / "staff.csv").write_text("username,full_name,role,district,groups\n"
                                        "anna,Anna A,carer,Nord,team1;team2\nper,Per P,planner,Nord,\n")
    (tmp_path / "homes.csv").write_text("citizen_ref,address,district\nC1,Gade 1,Nord\nC2,Vej 2,Syd\n")
    key = "ab" * 32
    (tmp_path / "locks.csv").write_text(f"lock_id,key,epoch,citizen_ref,board\n{'01' * 8},{key},1,C1,sim\n")
    (tmp_path / "plan.csv").write_text("username,citizen_ref,start,end\nanna,C1,2026-11-30T09:00,2026-11-30T09:30\n")
    for kind in ("staff", "homes", "locks", "plan"):
        assert main(base + ["import", kind, str(tmp_path / f"{kind}.csv")]) == 0, kind
    # a bad row: the whole file is refused, with file and line, and nothing is imported
    (tmp_path / "bad.csv").write_text(f"lock_id,key\n{'02' * 8},{key}\n{'03' * 8},nothex\n")
    r = subprocess.run([sys.executable, "-m", "keyserver", *base, "import", "locks", str(tmp_path / "bad.csv")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and r.stderr.startswith("keyserver: ") and "bad.csv:3" in r.stderr
    (tmp_path / "cols.csv").write_text("user,role\nx,carer\n")
    r = subprocess.run([sys.executable, "-m", "keyserver", *base, "import", "staff", str(tmp_path / "cols.csv")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "missing column" in r.stderr
    out = tmp_path / "export"
    assert main(base + ["export", str(out)]) == 0
    locks = list(csv.DictReader((out / "locks.csv").open()))
    assert [lk["lock_id"] for lk in locks] == ["01" * 8]
    staff = list(csv.DictReader((out / "staff.csv").open()))
    assert [s["username"] for s in staff] == ["anna", "per"]
    for f in out.iterdir():
        text = f.read_text()
        assert key not in text and "argon2" not in text


def test_a_second_visit_by_the_same_carer_is_a_visit_of_its_own():
    t = 1_700_000_000
    evs = [(Event.UNLOCK, 5, 0), (Event.DOOR_OPEN, 0, 5), (Event.DOOR_CLOSED, 0, 1500), (Event.AUTO_RELOCK, 0, 1505),
           (Event.UNLOCK, 5, 7200), (Event.DOOR_OPEN, 0, 7205), (Event.DOOR_CLOSED, 0, 7800),
           (Event.AUTO_RELOCK, 0, 7805)]
    recs = [R(seq=i + 1, time=t + dt, event=ev, user_id=u, flags=0) for i, (ev, u, dt) in enumerate(evs)]
    assert [(v0 - t, v1 - t) for _, v0, v1, _ in visits_of_lock(recs)] == [(0, 1505), (7200, 7805)]
