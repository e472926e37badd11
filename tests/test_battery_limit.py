"""The key server's battery cutoff is the lock's own CRITICAL rule.

The lock (firmware/lib/lockbattery.py, ``Monitor._update``) refuses unlocks once its idle
pack voltage is at or below the chemistry's critical level, or idle minus the measured
motor sag is at or below brown-out + reserve. The server (keyserver/battery.py) projects
the voltage trend to the higher of the two, with the sag of the lock's latest BATTERY
record. Here:

- the server's copied per-cell numbers against the firmware source (its ``chemistry()``
  and ``Monitor`` defaults, loaded under CPython through its ``const`` fallback), and
  against every board file;
- a hypothesis property: for any chemistry, cell count, brown-out, reserve and sag field,
  the server's cutoff is exactly the highest idle voltage at which the firmware, run under
  the real MicroPython (tests/mpy/battlimit.py), refuses an unlock;
- the sag as the record carries it (10 mV steps) against the firmware's own;
- the migration that adds ``battery_samples.sag_mv`` fills it for samples ingested before,
  on SQLite and PostgreSQL.
"""

from __future__ import annotations

import ast
import importlib.util
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import mpyhost
from lockproto.codes import battery_record
from keyserver import battery as ksb
from ks_support import *  # noqa: F401,F403

ROOT = Path(__file__).resolve().parent.parent
LOCKBATTERY = ROOT / "firmware" / "lib" / "lockbattery.py"


def _firmware():
    spec = importlib.util.spec_from_file_location("lockbattery_cpython", LOCKBATTERY)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _firmware_chemistries() -> set[str]:
    """The names ``chemistry()`` accepts, read off its ``if name == "..."`` tests."""
    tree = ast.parse(LOCKBATTERY.read_text())
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "chemistry")
    return {c.comparators[0].value for c in ast.walk(fn) if isinstance(c, ast.Compare)
            and isinstance(c.left, ast.Name) and c.left.id == "name"}


# ---------------------------------------------------------------- one source of truth for the numbers

def test_the_servers_per_cell_numbers_are_the_firmwares():
    fw = _firmware()
    chems = _firmware_chemistries()
    assert chems == set(ksb.CRITICAL_CELL_MV) == set(ksb.DEFAULT_SAG_CELL_MV) == {"alkaline-4aa", "lithium-4aa"}
    for chem in chems:
        _curve, _low, crit, _hyst, sag = fw.chemistry(chem)
        assert (ksb.CRITICAL_CELL_MV[chem], ksb.DEFAULT_SAG_CELL_MV[chem]) == (crit, sag), chem
    # the Monitor's defaults for a board file without brownout_mv / reserve_mv
    m = fw.Monitor({"chemistry": "alkaline-4aa", "cells": 4})
    assert m.guard_mv == ksb.DEFAULT_BROWNOUT_MV + ksb.DEFAULT_RESERVE_MV
    assert ksb.DEFAULT_CHEMISTRY in chems


@pytest.mark.parametrize("board", sorted(p.stem for p in (ROOT / "boards").glob("*.json")))
def test_every_boards_limits_are_the_monitors(board):
    fw = _firmware()
    part = json.loads((ROOT / "boards" / f"{board}.json").read_text())["battery"]
    m = fw.Monitor(part)
    lim = ksb.board_limits(board)
    assert (lim.critical_mv, lim.guard_mv, lim.default_sag_mv) == (m.critical_mv, m.guard_mv, m.sag)
    # every board's floor is below the guard, so FLOOR never sets the first refusal
    assert m.floor_mv < m.guard_mv
    assert ksb.cutoff_mv(board) == m.critical_mv  # the old function keeps its meaning


def test_the_sim_boards_numbers_by_hand():
    # sim: 4 x alkaline, brown-out 4000 + reserve 200; critical 4 x 1075 = 4300, default sag 4 x 75 = 300
    assert ksb.lock_cutoff("sim", None) == ksb.Cutoff(4500, ksb.LIMIT_SAG, 4300, 4200, 300, False)
    assert ksb.lock_cutoff("sim", 700) == ksb.Cutoff(4900, ksb.LIMIT_SAG, 4300, 4200, 700, True)
    assert ksb.lock_cutoff("sim", 50) == ksb.Cutoff(4300, ksb.LIMIT_CRITICAL, 4300, 4200, 50, True)
    assert ksb.lock_cutoff("sim", 100).limit == ksb.LIMIT_CRITICAL  # a tie: both rules at 4300
    # an unknown board: 4 x alkaline, no brown-out, reserve 200
    assert ksb.lock_cutoff("no-such-board", None) == ksb.Cutoff(4300, ksb.LIMIT_CRITICAL, 4300, 200, 300, False)


def test_the_record_sag_is_lockprotos():
    for field in (0, 1, 37, 255):
        arg = 55 | (4 << 8) | (3 << 16) | (field << 24)
        assert ksb.record_sag_mv(arg) == battery_record(4800, arg)["sag_mv"]


# ---------------------------------------------------------------- the rule, against the real MicroPython

@pytest.fixture(scope="module")
def w():
    with mpyhost.Worker(["battlimit"], paths=[ROOT / "tests" / "mpy"], heapsize="1m") as worker:
        yield worker


boards = st.builds(
    lambda chem, cells, brownout, reserve, floor_below: {
        "chemistry": chem, "cells": cells, "brownout_mv": brownout, "reserve_mv": reserve,
        "floor_mv": max(0, brownout + reserve - 1 - floor_below)},
    st.sampled_from(sorted(ksb.CRITICAL_CELL_MV)), st.integers(1, 8), st.integers(0, 9000),
    st.integers(0, 1000), st.integers(0, 3000))


@pytest.mark.mpy
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(battery=boards, sag_field=st.integers(0, 255))
def test_the_servers_cutoff_is_where_the_firmware_starts_refusing(w, battery, sag_field):
    c = ksb.Limits.of(battery).cutoff(sag_field * 10 or None)
    at, above = w.call("battlimit.unlock_ok", battery, sag_field, [c.mv, c.mv + 1])
    assert (at, above) == (False, True), (battery, sag_field, c)
    # and the label names the rule that binds there
    fw = w.call("battlimit.limits", battery)
    sag = sag_field * 10 or fw["sag"]
    assert c.sag_mv == sag and c.critical_mv == fw["critical"] and c.guard_mv == fw["guard"]
    assert c.limit == (ksb.LIMIT_SAG if fw["guard"] + sag > fw["critical"] else ksb.LIMIT_CRITICAL)


@pytest.mark.mpy
def test_with_a_big_sag_the_lock_refuses_well_above_the_critical_voltage(w):
    """The gap this closes: 4 x alkaline at 4.8 V idle is 500 mV above critical, yet a 700 mV sag refuses."""
    part = json.loads((ROOT / "boards" / "sim.json").read_text())["battery"]
    assert w.call("battlimit.unlock_ok", part, 70, [4800, 4900, 4901]) == [False, False, True]
    assert ksb.lock_cutoff("sim", 700).mv == 4900 and ksb.cutoff_mv("sim") == 4300


@pytest.mark.mpy
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(battery=boards, sag=st.integers(0, 3000))
def test_the_sag_as_recorded_is_the_firmwares_to_10_mv(w, battery, sag):
    """The record carries the measured sag in 10 mV steps rounded up, at least one step (at most 255):
    the server's cutoff is 0 to 9 mV above the lock's own, never below it (the forecast errs early)."""
    arg = w.call("battlimit.record_arg", battery, sag, 6000)
    got = ksb.Limits.of(battery).cutoff(ksb.record_sag_mv(arg))
    lim = ksb.Limits.of(battery)
    true = max(lim.critical_mv, lim.guard_mv + sag)
    assert got.sag_measured  # a measured sag, even 0 mV, never reads as "not measured"
    if sag <= 2550:
        assert 0 <= got.mv - true <= 10 if sag == 0 else 0 <= got.mv - true <= 9
    else:
        assert got.sag_mv == 2550 and got.mv <= true


# ---------------------------------------------------------------- the migration fills the sag of older samples

def test_the_migration_fills_the_sag_of_samples_ingested_before(ks):
    from alembic import command
    from sqlalchemy import text

    from keyserver.db import alembic_config
    from ks_support import build_world
    from test_ks_reports import SimJournal
    from lockproto import Event

    w = build_world(ks, n_locks=1)
    j = SimJournal(w.keys[0])
    sags = [0, 70, 12, 255]
    for i, field in enumerate(sags):
        j.add(1_790_000_000 + i * 86400, Event.BATTERY, arg16=5000 - i, arg=60 | (field << 24))
    j.upload(ks, w.phone_token, w.locks[0])

    def stored():
        with ks.db.tx() as s:
            return [tuple(r) for r in s.execute(text("SELECT mv, sag_mv FROM battery_samples ORDER BY mv DESC"))]

    want = [(5000 - i, f * 10 or None) for i, f in enumerate(sags)]
    assert stored() == want  # as ingested
    cfg = alembic_config()
    with ks.db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0001")
    with ks.db.tx() as s:
        assert "sag_mv" not in [c for c in s.execute(text("SELECT * FROM battery_samples")).keys()]
    ks.db.migrate()
    assert stored() == want  # filled from the journal records
