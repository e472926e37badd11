"""Scenario files end to end (simulator/scenario.py): parse errors are clear, and a small
district day plays against real firmware with the report telling what happened."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from simulator.scenario import ScenarioError, load_scenario, run_scenario, scenario_from_dict

ROOT = Path(__file__).resolve().parent.parent

SMALL = {
    "district": {"name": "tiny", "start": "2026-03-02T06:30:00+00:00", "hours": 12, "procs": 2,
                 "storage": "files"},
    "locks": {"count": 4},
    "lock": [{"name": "L0003", "battery_mv": 4300}],
    "shifts": {"day": {"start": "07:00", "end": "15:00"}},
    "carer": [{"name": "ann", "user": 11}, {"name": "bob", "user": 12}],
    "visits": {"per_lock": 2, "minutes": 20, "travel_minutes": 5},
    "lost_phone": [{"carer": "bob", "at": "07:50", "finder_at": "14:30", "lock": "L0002"}],
    "battery_change": [{"lock": "L0003", "at": "09:00", "mv": 6300}],
    "rekey": [{"lock": "L0001", "at": "07:05"}],
}


def test_small_district_day_end_to_end(tmp_path):
    sc = scenario_from_dict(SMALL)
    report = asyncio.run(run_scenario(sc, state_dir=tmp_path / "st"))
    d = report.data
    # per_lock 2 with one shift: 8 route visits; two carers at 25 minutes a visit all fit
    assert d["visits"]["planned"] == 8 and d["visits"]["unscheduled"] == 0
    # L0003's cells (4300 mV) are critical: its second visit is refused until the cells change
    assert d["refusals"] == {"BATTERY_CRITICAL": 1}, d["visit_log"]
    refused = [v for v in d["visit_log"] if v["result"] != "ok"]
    assert [(v["lock"], v["result"]) for v in refused] == [("L0003", "BATTERY_CRITICAL")]
    assert d["visits"]["done"] == 7 and d["visits"]["relocked_by_phone"] == 7
    # bob's replacement phone (a new user id) goes on working after the loss
    assert all(v["result"] == "ok" for v in d["visit_log"] if v["carer"] == "bob")
    text = report.text()
    assert "L0001: re-key to epoch 2 delivered by ann's phone" in text
    # the lost phone's tickets are still within their shift, but the deny list reached L0002
    assert any("finder" in e and "REVOKED (lock held)" in e for e in d["events"]), d["events"]
    st = {s["lock"]: s for s in d["lock_status"]}
    assert st["L0001"]["epoch"] == 2 and st["L0002"]["deny"] == 1
    assert st["L0003"]["boots"] == 2 and st["L0003"]["battery_mv"] == 6300
    assert st["L0003"]["uncertain"]  # no phone came by after the battery change
    assert d["health"]["time_uncertain"] == 1
    # every door ends locked and every visit's records reached the server
    assert d["health"]["unlocked"] == 0 and d["health"]["powered_off"] == 0
    assert d["journal"]["problems"] == 0 and d["journal"]["ingested"] > 8 * 4
    assert d["journal"]["lost"] == 0


def test_scenario_file_errors_name_the_key(tmp_path):
    bad = dict(SMALL, visit=[{"lock": "L0099", "carer": "ann", "at": "08:00"}])
    with pytest.raises(ScenarioError, match="visit: no lock 'L0099'"):
        scenario_from_dict(bad)
    with pytest.raises(ScenarioError, match="shifts.day: end before start"):
        scenario_from_dict(dict(SMALL, shifts={"day": {"start": "15:00", "end": "07:00"}}))
    with pytest.raises(ScenarioError, match="expected HH:MM"):
        scenario_from_dict(dict(SMALL, rekey=[{"lock": "L0001", "at": "noon"}]))
    with pytest.raises(ScenarioError, match="district needs locks"):
        scenario_from_dict({"district": {}})
    f = tmp_path / "broken.toml"
    f.write_text("[district\n")
    r = subprocess.run([sys.executable, "-m", "simulator.cli", "run", str(f)], capture_output=True, text=True)
    assert r.returncode == 1 and r.stderr.startswith("locksim: ") and "broken.toml" in r.stderr


def test_example_district_scenario_parses():
    sc = load_scenario(ROOT / "simulator" / "scenarios" / "district.toml")
    assert len(sc.locks) == 24 and len(sc.carers) == 6
    assert all(v["t"] is not None for v in sc.visits)
