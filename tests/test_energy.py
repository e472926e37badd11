"""The energy model and battery-life predictor (simulator/energy.py) on hand-computable cases,
and on a real simulated day (the firmware under MicroPython)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from simulator import energy
from simulator.energy import DayStats

ROOT = Path(__file__).resolve().parent.parent
SIM = json.loads((ROOT / "boards" / "sim.json").read_text())
PCB_SLEEP = 0.010 + 0.0016 + 0.002 + 0.0025  # ESP32 deep sleep + LDO + divider + DRV8833 (mA)
TOUCH = 0.0299                               # the outside touch pad armed in deep sleep [esp-touch]
SLEEP = PCB_SLEEP + TOUCH                    # the sim board (the DevKitC wiring) in the sleeping profiles
# two stray touches a day on the outside pad: a boot (1 s x 43 mA) and the 30 s advertising
# window + the 3 s settle with BLE on (110 mA), each; 68 s awake in all
STRAY, STRAY_S = 2 * (43 + 33 * 110), 68
TOUCH_WAIT = 4 * 110  # a phone visit: 5 s from the touch to the connection, 1 s of it counted before


def quiet(**kw) -> DayStats:
    base = dict(seconds=86400, motions=0, motor_ms=0, episodes=[], sessions=0, sag_mv=None)
    base.update(kw)
    return DayStats(**base)


def test_capacity_follows_the_datasheet_points():
    assert energy.capacity_mah("alkaline-4aa", 10) == 3000      # below the first point
    assert energy.capacity_mah("alkaline-4aa", 25) == 3000
    assert energy.capacity_mah("alkaline-4aa", 100) == pytest.approx(2600)
    assert energy.capacity_mah("alkaline-4aa", 50) == pytest.approx(2800)  # halfway on a log scale
    assert energy.capacity_mah("alkaline-4aa", 5000) == 1000
    assert energy.capacity_mah("lithium-4aa", 1) == 3500


def test_always_listening_is_the_ble_current_all_day():
    mas = energy.profile_mas("esp32", "module", "always_listening", SIM, quiet())
    assert mas / 3600 == pytest.approx(110 * 24)  # 2640 mAh a day


def test_a_quiet_day_in_deep_sleep_is_the_sleep_floor_and_the_stray_touches():
    mas = energy.profile_mas("esp32", "module", "deep_sleep", SIM, quiet())
    assert mas == pytest.approx(SLEEP * (86400 - STRAY_S) + STRAY)
    dev = energy.profile_mas("esp32", "devkit", "deep_sleep", SIM, quiet())
    assert dev == pytest.approx((3.8 + TOUCH) * (86400 - STRAY_S) + STRAY)  # the dev board's own floor


def test_the_c3_outside_contact_draws_nothing_asleep():
    c3 = json.loads((ROOT / "boards" / "esp32-c3-devkitm.json").read_text())
    mas = energy.profile_mas("esp32c3", "module", "deep_sleep", c3, quiet())
    sleep = 0.005 + 0.0016 + 0.002 + 0.0025
    assert mas == pytest.approx(sleep * (86400 - STRAY_S) + 2 * (26.8 + 33 * 110))


def test_one_opening_with_a_lingering_phone_by_hand():
    """One phone wake of 10 s to the relock, two motions of 1.3 s each; the phone stays connected."""
    st = quiet(motions=2, motor_ms=2600, episodes=[(1000, 1010, True)], sessions=1)
    # boot 1 s x 43 + advertise 1 s x 110 + session 0.5 s x 120 + awake 35 s x 110 (the session
    # hold outlasts 10 s + 3 s settle) + motor: 2 x 0.1 s at 900 (the end stop) + 2.4 s at 250;
    # asleep the other 86400 - 37.5 s
    # (+ the touch before the phone connects, the stray touches and the pad's sleep current)
    want = 43 + 110 + 60 + 3850 + 180 + 600 + TOUCH_WAIT + STRAY + (86400 - 37.5 - 4 - STRAY_S) * SLEEP
    assert energy.profile_mas("esp32", "module", "deep_sleep_lingering", SIM, st) == pytest.approx(want)


def test_one_opening_in_deep_sleep_by_hand():
    st = quiet(motions=2, motor_ms=2600, episodes=[(1000, 1010, True)], sessions=1)
    # the phone hangs up: awake only 10 s + 3 s settle after the wake
    want = 43 + 110 + 60 + 1430 + 780 + TOUCH_WAIT + STRAY + (86400 - 15.5 - 4 - STRAY_S) * SLEEP
    assert energy.profile_mas("esp32", "module", "deep_sleep", SIM, st) == pytest.approx(want)


def test_a_button_wake_has_no_session_hold():
    st = quiet(motions=2, motor_ms=2600, episodes=[(1000, 1010, False)], sessions=0)
    # boot 1 s x 43 + (10 s + 3 s settle) x 110 + motor 780; asleep the other 86400 - 14 s
    want = 43 + 1430 + 780 + STRAY + (86400 - 14 - STRAY_S) * SLEEP
    assert energy.profile_mas("esp32", "module", "deep_sleep", SIM, st) == pytest.approx(want)


def test_motor_charge_by_hand():
    st = quiet(motions=4, motor_ms=5200)
    assert energy.motor_mas(SIM, st) == pytest.approx(0.4 * 900 + 4.8 * 250)


def test_usable_fraction_uses_the_firmware_thresholds():
    # sag 700: CRITICAL from 4200 + 700 = 4900 mV idle, 1225 mV a cell: 40 % left unused
    frac, crit = energy.usable_fraction(SIM, 700)
    assert crit == 4900 and frac == pytest.approx(0.60)
    # no sag: the chemistry's own CRITICAL (4 x 1075 mV): 9 % left
    frac, crit = energy.usable_fraction(SIM, 0)
    assert crit == 4300 and frac == pytest.approx(0.91)


def test_prediction_divides_usable_capacity_by_the_daily_charge():
    day = {"records": [], "motor_ms": 0, "seconds": 86400}
    p = energy.predict(day, "esp32-devkitc", "module", "deep_sleep")
    per_day = (SLEEP * (86400 - STRAY_S) + STRAY) / 3600
    frac, _ = energy.usable_fraction(json.loads((ROOT / "boards" / "esp32-devkitc.json").read_text()))
    assert p.mah_per_day == pytest.approx(per_day)
    assert p.days == pytest.approx(3000 * frac / per_day)


def test_every_figure_is_cited_in_docs():
    text = (ROOT / "docs" / "power.md").read_text()
    for key in energy.SOURCES:
        assert f"[{key}]" in text, key
    for group in energy.FIGURES.values():
        for f in group.values():
            assert f.source in energy.SOURCES
    with pytest.raises(ValueError):
        energy.Figure(1.0, "hearsay")


@pytest.fixture(scope="module")
def day():
    return energy.simulate_day(openings=10)


@pytest.mark.mpy
def test_a_simulated_day_journal(day):
    st = energy.day_stats(day)
    assert day["resets"] == 0 and day["openings"] == 10
    assert st.motions == 20 and len(st.episodes) == 10 and st.sessions == 5
    # each motion: 1200 ms travel + the settle, polled in 20 ms steps
    assert 20 * 1250 <= st.motor_ms <= 20 * 1400
    assert all(5 <= b - a <= 30 for a, b, _ in st.episodes)  # unlock -> door -> relock 5 s after closing
    assert sum(p for _, _, p in st.episodes) == 5            # half by phone, half by the button
    assert st.sag_mv is not None and 600 <= st.sag_mv <= 720  # the unit measured its own sag


@pytest.mark.mpy
def test_more_openings_shorten_life(day):
    busy = energy.simulate_day(openings=20)
    a = energy.predict(day, "esp32-c3-devkitm", "module", "deep_sleep")
    b = energy.predict(busy, "esp32-c3-devkitm", "module", "deep_sleep")
    assert b.days < a.days
    st_a, st_b = energy.day_stats(day), energy.day_stats(busy)
    assert st_b.motions == 2 * st_a.motions


@pytest.mark.mpy
def test_cli_prints_every_board_and_profile(day, tmp_path, capsys):
    f = tmp_path / "day.json"
    f.write_text(json.dumps(day))
    assert energy.main([str(f)]) == 0
    out = capsys.readouterr().out
    for b in ("esp32-devkitc", "esp32-c3-devkitm"):
        for p in energy.PROFILES:
            assert any(b in line and p in line for line in out.splitlines())
    assert energy.main([str(f), "--json"]) == 0
    preds = json.loads(capsys.readouterr().out)
    assert len(preds) == 2 * len(energy.VARIANTS) * len(energy.PROFILES)
    assert all(p["days"] > 0 and math.isfinite(p["days"]) for p in preds)


def test_cli_errors_are_one_line_and_exit_1(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert energy.main([str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("locksim-battery-life: ") and err.count("\n") == 1
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"records": [], "motor_ms": 0}))
    assert energy.main([str(good), "--board", "nosuch"]) == 1
    assert "no board file" in capsys.readouterr().err
    assert energy.main([str(tmp_path / "missing.json")]) == 1
    assert energy.main(["--openings", "0"]) == 1


@pytest.mark.mpy
def test_locksim_battery_life_subcommand(day, tmp_path):
    """`locksim battery-life` is the same predictor as the script, errors named by the subcommand."""
    import subprocess
    import sys
    f = tmp_path / "day.json"
    f.write_text(json.dumps(day))
    r = subprocess.run([sys.executable, "-m", "simulator.cli", "battery-life", str(f), "--json"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    preds = json.loads(r.stdout)
    assert len(preds) == 2 * len(energy.VARIANTS) * len(energy.PROFILES)
    best = max(preds, key=lambda p: p["days"])
    assert best["board"] == "esp32-c3-devkitm" and best["profile"] == "deep_sleep"
    r = subprocess.run([sys.executable, "-m", "simulator.cli", "battery-life", str(f), "--board", "nosuch"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and r.stderr.startswith("locksim battery-life: no board file"), r.stderr
    assert r.stdout == ""
