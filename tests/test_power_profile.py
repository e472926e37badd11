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


# ---- the outside wake source (docs/power.md, "Waking from outside") ----

def _records(u):
    return [(r.event, r.arg16, r.arg) for r in u.journal()]


def test_an_outside_touch_wakes_the_unit_for_a_phone_that_unlocks(w):
    u = Unit(w, uid())
    u.run(4_000)
    s = sleep(u)
    assert s["asleep"] and s["outside_armed"]          # the button and the pad both armed
    before = _records(u)
    u.call("touch")                                    # the carer at the door
    u.run(1_000)
    s = sleep(u)
    assert not s["asleep"] and s["woke"] == 2 and s["boots"] == 2  # WOKE_OUTSIDE: booted again
    assert u.status["state"] == Bolt.LOCKED and u.status["motor_ms"] == 0  # the touch moved nothing
    assert _records(u) == before                       # no BOOT, no BUTTON record for a touch
    res = u.connect(u.ticket(), [(Op.UNLOCK, b"")])    # her phone within the window
    assert res[0].status == Err.OK
    u.run(2_000)
    assert u.status["state"] == Bolt.UNLOCKED
    u.call("close_session")
    u.run(40_000)                                      # unopened: relocks after 30 s, then sleeps
    s = sleep(u)
    assert s["asleep"] and s["outside_armed"] and u.status["bolt"] == 0
    new = [e for e, _, _ in _records(u)[len(before):]]
    assert Event.UNLOCK in new and Event.BOOT not in new and Event.BUTTON not in new


def test_an_outside_touch_without_a_phone_sleeps_again_after_the_window(w):
    u = Unit(w, uid())
    u.run(4_000)
    before = _records(u)
    for _ in range(3):
        u.call("touch")
        u.run(25_000)
        assert not sleep(u)["asleep"]                  # advertising for 30 s
        u.run(8_000)
        s = sleep(u)
        assert s["asleep"] and s["outside_armed"]      # 30 s + the 3 s settle
    assert u.status["motor_ms"] == 0 and u.status["bolt"] == 0
    assert _records(u) == before                       # three wakes, not one journal record
    assert sleep(u)["boots"] == 4


def _touch_and_wait(u, n):
    for _ in range(n):
        u.call("touch")
        u.call("run", 34_000, 100)


def test_repeated_outside_wakes_without_a_session_mute_the_pad_journaled_once(w):
    u = Unit(w, uid())
    u.run(4_000)
    before = _records(u)
    _touch_and_wait(u, 4)                              # a child at the pad
    s = sleep(u)
    assert s["asleep"] and s["outside_armed"] and _records(u) == before
    _touch_and_wait(u, 1)                              # the 5th within 10 minutes
    s = sleep(u)
    assert s["asleep"] and not s["outside_armed"] and s["timer"]  # the button only, and a timer
    muted = [r for r in _records(u)[len(before):]]
    assert muted == [(Event.WAKE_MUTED, 5, 1800)]      # once: 5 wakes, 30 minutes
    boots = s["boots"]
    _touch_and_wait(u, 3)                              # muted: the pad wakes nothing
    assert sleep(u)["boots"] == boots and sleep(u)["asleep"]
    u.call("skip", 30 * 60_000)                        # the mute ends: the timer wakes the unit ...
    u.run(4_000)
    s = sleep(u)
    assert s["boots"] == boots + 1 and s["asleep"] and s["outside_armed"] and not s["timer"]  # ... armed again
    assert [r for r in _records(u)[len(before):]] == muted   # no BOOT for the timer wake either
    u.call("touch")                                    # and the pad wakes it again
    u.run(1_000)
    assert not sleep(u)["asleep"] and sleep(u)["woke"] == 2
    assert u.status["state"] == Bolt.LOCKED and u.status["motor_ms"] == 0


def test_a_further_mute_without_a_session_lasts_twice_as_long(w):
    """Rain on the pad, or a child all afternoon: each mute with no session since doubles (to 8 h)."""
    u = Unit(w, uid())
    u.run(4_000)
    before = len(_records(u))
    _touch_and_wait(u, 5)
    u.call("skip", 30 * 60_000)
    u.run(4_000)
    _touch_and_wait(u, 5)
    assert _records(u)[before:] == [(Event.WAKE_MUTED, 5, 1800), (Event.WAKE_MUTED, 5, 3600)]
    u.call("skip", 30 * 60_000)
    assert sleep(u)["asleep"] and not sleep(u)["outside_armed"]   # still muted after 30 min
    u.call("skip", 31 * 60_000)
    u.run(4_000)
    assert sleep(u)["asleep"] and sleep(u)["outside_armed"]


def test_a_session_clears_the_count_of_unused_outside_wakes(w):
    u = Unit(w, uid())
    u.run(4_000)
    _touch_and_wait(u, 4)
    u.call("touch")
    u.run(1_000)
    res = u.connect(u.ticket(), [(Op.STATUS, b"")])    # a real visit: the wakes were wanted
    assert res[0].status == Err.OK
    u.call("close_session")
    u.call("run", 10_000, 100)
    assert sleep(u)["asleep"] and sleep(u)["outside_armed"]
    _touch_and_wait(u, 4)                              # counting starts again: no mute
    s = sleep(u)
    assert s["asleep"] and s["outside_armed"]
    assert Event.WAKE_MUTED not in [e for e, _, _ in _records(u)]


def test_the_inside_button_still_wakes_and_unlocks_a_muted_unit(w):
    u = Unit(w, uid())
    u.run(4_000)
    _touch_and_wait(u, 5)
    assert not sleep(u)["outside_armed"]
    u.call("press")
    u.run(2_000)
    s = sleep(u)
    assert not s["asleep"] and s["woke"] == 1 and u.status["state"] == Bolt.UNLOCKED  # today's semantics
    assert Event.BUTTON in [e for e, _, _ in _records(u)]


def test_c3_outside_contact_wakes_without_moving_the_bolt(c3):
    """The C3 has no touch peripheral: a contact on GPIO1 shares the GPIO wake with the button."""
    u = Unit(c3, uid())
    u.call("battery", 7300)
    u.run(4_000)
    s = sleep(u)
    assert s["asleep"] and s["outside_armed"]
    before = _records(u)
    u.call("touch")                                    # the outside contact
    u.run(1_000)
    s = sleep(u)
    assert not s["asleep"] and s["woke"] == 2 and u.status["state"] == Bolt.LOCKED
    assert _records(u) == before
    u.run(35_000)
    assert sleep(u)["asleep"] and u.status["motor_ms"] == 0
    u.call("press")                                    # the inside button: held at boot, so it is the button
    u.run(2_000)
    s = sleep(u)
    assert s["woke"] == 1 and u.status["state"] == Bolt.UNLOCKED


def test_over_ble_a_touch_wakes_a_sleeping_unit_and_the_phone_unlocks(ble):
    """Asleep; a touch on the outside pad boots it; it advertises; the phone unlocks with a valid
    ticket over the fake BLE stack, hangs up; the unit relocks and sleeps again."""
    out = ble.call("sleepble.run", str(ROOT / "boards"), True, 12000, True)
    assert out["slept_first"] and out["woke"] == 4 and out["source"] == 2   # RESET_DEEPSLEEP, WOKE_OUTSIDE
    assert out["no_record"] and out["bolt_after_touch"] == 0                # the touch moved nothing
    assert out["status"] == Err.OK and out["journal_grew"]                  # the phone's UNLOCK
    assert out["asleep"] and out["bolt"] == 0                               # relocked, asleep again
