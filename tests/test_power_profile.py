"""The deep-sleep power profile on a whole unit (lockapp + locksleep) under MicroPython.

A unit in the profile powers down once it is locked, at rest, with the door closed, 3 s
after the last change and 35 s after the last phone session began, or 3 s after the
session closed (the phone hung up); the inside button (its board's wake pin) boots it
again, and that press counts as the press; the RTC keeps the time across the sleep.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import mpyhost
from lockproto import Bolt, Err, Event, Op
from test_app_unit import Unit, uid

pytestmark = pytest.mark.mpy
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def w():
    with mpyhost.Worker(["batttest"], paths=[ROOT / "tests" / "mpy"], heapsize="4m") as worker:
        worker.call("batttest.sleep_bench", str(ROOT / "boards"))
        yield worker


def sleep(u):
    return u.call("sleep_status")


def test_an_idle_locked_unit_sleeps_and_the_button_wakes_it_open(w):
    u = Unit(w, uid())
    u.run(4_000)
    s = sleep(u)
    assert s["asleep"] and s["sleeps"] == 1   # 3 s after provisioning (the last change)
    u.run(60_000)
    assert sleep(u)["asleep"] and u.status["motor_ms"] == 0
    before = sleep(u)
    u.call("press")                          # the carer leaves: the press wakes the unit
    u.run(2000)
    s = sleep(u)
    assert not s["asleep"] and s["boots"] == before["boots"] + 1
    assert u.status["state"] == Bolt.UNLOCKED  # the waking press was the press
    assert not s["uncertain"] and s["now"] == s["world_time"]  # the RTC kept the time
    recs = u.journal()
    boots = [r for r in recs if r.event == Event.BOOT]
    assert boots[-1].arg16 == 4 and Event.BUTTON in [r.event for r in recs]  # RESET_DEEPSLEEP
    assert not any(r.event == Event.BATTERY for r in recs)  # a wake is no new cells: no record
    # unlocked: no sleep; the unopened door relocks after 30 s, then 3 s of quiet
    u.run(25_000)
    assert not sleep(u)["asleep"] and u.status["state"] == Bolt.UNLOCKED
    u.run(15_000)
    assert sleep(u)["asleep"] and u.status["bolt"] == 0 and u.status["motor"] == 0


def test_no_sleep_with_the_door_open_or_during_a_session(w):
    u = Unit(w, uid())
    u.call("door", False)
    u.run(60_000)
    assert not sleep(u)["asleep"]
    u.call("door", True)
    u.run(1_000)
    res = u.connect(u.ticket(), [(Op.STATUS, b"")])  # a phone at the door
    assert res[0].status == Err.OK
    u.run(30_000)
    assert not sleep(u)["asleep"]  # the session holds the unit awake for 35 s
    u.run(6_000)
    assert sleep(u)["asleep"]


def test_a_factory_unit_stays_awake_for_its_cable(w):
    u = Unit(w, uid(), provision=False)
    u.run(60_000)
    assert not sleep(u)["asleep"]


def test_a_closed_session_ends_the_hold(w):
    u = Unit(w, uid())
    u.run(1_000)
    res = u.connect(u.ticket(), [(Op.STATUS, b"")])
    assert res[0].status == Err.OK
    u.run(10_000)
    assert not sleep(u)["asleep"]   # the phone may still send: held
    u.call("close_session")         # it hung up
    u.run(2_000)
    assert not sleep(u)["asleep"]
    u.run(2_000)
    assert sleep(u)["asleep"]       # 3 s after the close, not 35 s after the start


@pytest.fixture(scope="module")
def ble():
    paths = [ROOT / "tests" / "mpy", ROOT / "simulator" / "sim_aioble"]
    with mpyhost.Worker(["sleepble"], paths=paths, heapsize="4m") as worker:
        yield worker


def test_over_ble_the_unit_sleeps_when_the_phone_hangs_up(ble):
    """lockble closes the session when the phone disconnects: asleep a settle after the relock."""
    out = ble.call("sleepble.run", str(ROOT / "boards"), True)
    assert out["status"] == Err.OK and out["asleep"] and out["bolt"] == 0
    # unlock 1.3 s, relock after 1 s, 1.3 s, 3 s settle
    assert 4_000 <= out["slept_at"] - out["unlocked_at"] <= 8_000


def test_over_ble_a_phone_that_stays_connected_holds_the_unit_awake(ble):
    out = ble.call("sleepble.run", str(ROOT / "boards"), False, 8000)
    assert out["status"] == Err.OK and not out["asleep"] and out["bolt"] == 0


@pytest.fixture(scope="module")
def c3():
    with mpyhost.Worker(["batttest"], paths=[ROOT / "tests" / "mpy"], heapsize="4m") as worker:
        worker.call("batttest.sleep_bench", str(ROOT / "boards"), "esp32-c3-devkitm")
        yield worker


def test_c3_lithium_unit_reports_and_sleeps(c3):
    """The ESP32-C3 board as its file says: lithium cells, deep sleep by default."""
    u = Unit(c3, uid())
    u.call("battery", 7300)
    b = u.call("sample_now", 80)  # the average settles from the 6000 mV it booted on
    assert b["pct"] == 100 and b["level"] == 1 and abs(b["mv"] - 7300) <= 6
    u.run(4_000)
    assert sleep(u)["asleep"]


def test_a_sleeping_unit_on_a_critical_battery_refuses_the_waking_press(c3):
    """The waking press would unlock; at CRITICAL it is refused, journaled, and the unit sleeps again."""
    u = Unit(c3, uid())
    u.call("battery", 5300)            # lithium: CRITICAL below 4 x 1350 mV
    assert u.call("sample_now")["level"] == 3
    u.run(4_000)
    assert sleep(u)["asleep"]
    u.call("press")
    u.run(1_000)
    assert not sleep(u)["asleep"] and u.status["state"] == Bolt.LOCKED
    denied = [r for r in u.journal() if r.event == Event.DENIED]
    assert denied and denied[-1].arg16 == Err.BATTERY_CRITICAL and denied[-1].arg == 2
    u.run(4_000)
    s = sleep(u)
    assert s["asleep"] and u.status["motor_ms"] == 0
