"""The bolt mechanism (firmware/lib/lockmech.py) under the real MicroPython.

A host-side rig simulates the door: a bolt that travels between retracted (0) and
extended (100) while the motor runs, unless stuck; limit switches near each end; a
door contact; the inside button; a thumb-turn. The Mechanism lives in MicroPython
(tests/mpy/logictest.py) and is polled like the unit's loop. Every poll checks the
safety invariants; the example tests pin down each rule, and a hypothesis state
machine drives random days at the door.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule, run_state_machine_as_test

import mpyhost

sys.path.insert(0, str(mpyhost.FIRMWARE_LIB))
import lockcodes as C  # noqa: E402  (CPython import of the firmware's number table)

pytestmark = pytest.mark.mpy
MPY = Path(__file__).resolve().parent / "mpy"

POS_UNKNOWN, POS_LOCKED, POS_UNLOCKED = 0, 1, 2
FB_NONE, FB_OK, FB_DENIED, FB_ALARM = 0, 2, 3, 4
LOCKED_AT, UNLOCKED_AT = 97.0, 3.0     # the switches close this close to each end
FRAME = 10.0                            # a bolt out further than this holds the door / hits the frame
TRAVEL_MS = 800                         # full travel at motor speed
POS_LOST_MS = 2000                      # lockmech._POS_LOST_MS
CLOSE_SETTLE_MS = 1000                  # lockmech._CLOSE_SETTLE_MS

_ids = itertools.count(1)


@pytest.fixture(scope="module")
def w():
    with mpyhost.Worker(["logictest"], paths=[MPY], heapsize="1m") as worker:
        yield worker


class Violation(AssertionError):
    pass


class Rig:
    """One door: physics on the host, the Mechanism in MicroPython, invariants on every poll."""

    def __init__(self, w, bolt=100.0, door_closed=True, t=0, **kw):
        self.w = w
        self.name = f"m{next(_ids)}"
        self.kw = dict(relock_delay_s=5, door_alarm_s=120, motor_timeout_ms=1500, settle_ms=100,
                       unopened_relock_s=30, jam_retries=1, door_debounce_ms=50)
        self.kw.update(kw)
        w.call("logictest.new", self.name, "mech", self.kw)
        self.fb_jam = w.call("logictest.consts")["FB_JAM"]
        self.t = t
        self.bolt = float(bolt)
        self.door = door_closed
        self.door_t = t              # when the door last changed physically
        self.stuck = False
        self.state = C.B_UNKNOWN
        self.motor = 0
        self.run_dir, self.run_t0 = 0, None
        self.log = []                # (t, event, arg16, arg)
        self.fbs = []                # (t, feedback)
        self.moves = []              # (t, motor) whenever the motor output changes
        self.unlock_ok = self.bolt < LOCKED_AT   # something legitimately asked for UNLOCKED
        self.door_ev = None          # last door event seen (EV_DOOR_OPEN / EV_DOOR_CLOSED)
        self.db_closed = door_closed # the door as the Mechanism sees it (debounced), from its events
        self.open_ref = t            # when the door opened, as the Mechanism counts (blips don't close it)
        self.alarmed = False         # EV_DOOR_LEFT_OPEN seen for the current opening
        self.update()

    # ---- sensors and physics ----

    def pos(self):
        if self.bolt >= LOCKED_AT:
            return POS_LOCKED
        if self.bolt <= UNLOCKED_AT:
            return POS_UNLOCKED
        return POS_UNKNOWN

    def _physics(self, dt):
        if self.motor and not self.stuck:
            self.bolt = min(100.0, max(0.0, self.bolt - self.motor * dt * 100.0 / TRAVEL_MS))

    # ---- talking to the Mechanism ----

    def _observe(self, state, motor, events, fb):
        t = self.t
        self.state = state
        if motor != self.motor:
            self.moves.append((t, motor))
        self.motor = motor
        for ev in events:
            self.log.append((t, *ev))
        if fb:
            self.fbs.append((t, fb))
        self._check(events)

    def update(self, button=False):
        self._observe(*self.w.call("logictest.mech_update", self.name, self.t, self.pos(), self.door, button))

    def command(self, op):
        status, *out = self.w.call("logictest.mech_command", self.name, op, self.t)
        if op == C.OP_UNLOCK and status == C.E_OK:
            self.unlock_ok = True
        self._observe(*out)
        return status

    def press(self):
        # the button's rule: unlocked (or on the way) -> lock; locked (or on the way) -> unlock;
        # jammed / unknown: lock a bolt whose switch says unlocked, else unlock (egress)
        st = self.state
        if st in (C.B_UNLOCKED, C.B_UNLOCKING):
            unlock = False
        elif st in (C.B_LOCKED, C.B_LOCKING):
            unlock = True
        else:
            unlock = self.pos() != POS_UNLOCKED
        if unlock:
            self.unlock_ok = True
        n = len(self.log)
        self.update(button=True)
        pressed = [e for e in self.log[n:] if e[1] == C.EV_BUTTON]
        assert [e[2] for e in pressed] == [C.B_UNLOCKED if unlock else C.B_LOCKED]

    def set_door(self, closed):
        if closed != self.door:
            assert self.bolt <= FRAME, "the rig never moves a door past a bolt"
            self.door = closed
            self.door_t = self.t
            if not closed and self.db_closed:
                self.open_ref = self.t
                self.alarmed = False
        self.update()

    def turn(self, bolt):
        # the thumb-turn, by hand
        if bolt < LOCKED_AT:
            self.unlock_ok = True
        self.bolt = float(bolt)
        self.update()

    def set_config(self, **kw):
        self.w.call("logictest.call", self.name, "set_config", *[kw.get(k) for k in
                                                                 ("relock_delay_s", "door_alarm_s")])
        self.kw.update(kw)

    def run(self, ms, step=10, idle_step=100):
        end = self.t + ms
        while self.t < end:
            if self.motor == 0:
                first = min(self.t + idle_step, end)
                self.t = first
                t, state, motor, events, fb = self.w.call("logictest.mech_hold", self.name, first, end, idle_step,
                                                          self.pos(), self.door)
                self.t = t
                self._observe(state, motor, events, fb)
            else:
                dt = min(step, end - self.t)
                self._physics(dt)
                self.t += dt
                self.update()

    def close(self):
        self.w.call("logictest.drop", self.name)

    # ---- queries ----

    def events(self, *kinds, since=None):
        return [e for e in self.log if (not kinds or e[1] in kinds) and (since is None or e[0] >= since)]

    # ---- invariants, after every call ----

    def _check(self, events):
        t, kw = self.t, self.kw
        if self.motor not in (-1, 0, 1):
            raise Violation(f"motor {self.motor}")
        if (self.motor != 0) != (self.state in (C.B_LOCKING, C.B_UNLOCKING)):
            raise Violation(f"motor {self.motor} in state {self.state}")
        if not self.door and self.motor == -1:
            raise Violation("driving the bolt out with the door open")
        if self.motor != self.run_dir:
            self.run_dir, self.run_t0 = self.motor, t
        if self.motor and t - self.run_t0 >= kw["motor_timeout_ms"]:
            raise Violation(f"motor on for {t - self.run_t0} ms")
        if self.state == C.B_LOCKED:
            self.unlock_ok = False
        if (self.state in (C.B_UNLOCKING, C.B_UNLOCKED) or self.motor == 1) and not self.unlock_ok:
            raise Violation(f"state {self.state} motor {self.motor} with nothing asking to unlock")
        if self.state == C.B_LOCKED and self.pos() == POS_UNLOCKED:
            raise Violation("LOCKED while the switch says unlocked")
        if self.state == C.B_UNLOCKED and self.pos() == POS_LOCKED:
            raise Violation("UNLOCKED while the switch says locked")
        for ev, arg16, arg in events:
            if ev in (C.EV_DOOR_OPEN, C.EV_DOOR_CLOSED):
                want = C.EV_DOOR_CLOSED if self.door else C.EV_DOOR_OPEN
                if ev != want or self.door_ev == ev or t - self.door_t < kw["door_debounce_ms"]:
                    raise Violation(f"door event {ev} at {t} (door {self.door} since {self.door_t})")
                self.door_ev = ev
                self.db_closed = ev == C.EV_DOOR_CLOSED
            elif ev == C.EV_DOOR_LEFT_OPEN:
                if self.door or self.db_closed or self.alarmed or t - self.open_ref < 1000 * kw["door_alarm_s"]:
                    raise Violation("door-left-open alarm out of turn")
                if not 1000 * kw["door_alarm_s"] <= 1000 * arg <= t - self.open_ref:
                    raise Violation(f"door-left-open seconds {arg}")
                self.alarmed = True
            elif ev == C.EV_JAM:
                if self.state != C.B_JAMMED or arg16 not in (C.B_LOCKING, C.B_UNLOCKING) or arg != self.pos():
                    raise Violation(f"jam event {arg16, arg} in state {self.state}")
            elif ev == C.EV_AUTO_RELOCK:
                if not self.door or self.motor != -1:
                    raise Violation("auto relock with the door open")
        if any(ev[0] == C.EV_JAM for ev in events) and (t, self.fb_jam) not in self.fbs:
            raise Violation("a jam without the jam signal")
        # liveness of the door observations
        if t - self.door_t >= kw["door_debounce_ms"] and self.db_closed != self.door:
            raise Violation("door change not reported")
        if not self.door and not self.db_closed and not self.alarmed \
                and t - self.open_ref >= 1000 * kw["door_alarm_s"]:
            raise Violation("door left open without the alarm")


# ---------------------------------------------------------------- boot

def test_consts_are_the_hal_and_codes_values(w):
    c = w.call("logictest.consts")
    assert (c["POS_UNKNOWN"], c["POS_LOCKED"], c["POS_UNLOCKED"]) == (POS_UNKNOWN, POS_LOCKED, POS_UNLOCKED)
    # the buzzer/LED codes are lockhal's SIG_* (the owner passes them straight to Indicator.signal)
    import lockhal
    assert (c["FB_NONE"], c["FB_OK"], c["FB_DENIED"], c["FB_ALARM"]) == (
        lockhal.SIG_OFF, lockhal.SIG_OK, lockhal.SIG_DENIED, lockhal.SIG_ALARM)
    assert c["FB_JAM"] in (lockhal.SIG_ALARM, 6)


@pytest.mark.parametrize("bolt, want", [(100, C.B_LOCKED), (0, C.B_UNLOCKED), (50, C.B_UNKNOWN)])
def test_boot_takes_the_switches(w, bolt, want):
    r = Rig(w, bolt=bolt)
    assert r.state == want and r.motor == 0 and r.log == []


def test_boot_unknown_stays_unknown_with_the_door_open(w):
    r = Rig(w, bolt=5, door_closed=False)  # 5: between the switches, short of the frame
    r.run(120_000)
    assert r.state == C.B_UNKNOWN and r.moves == []


def test_boot_unknown_behind_a_closed_door_locks_after_the_unopened_delay(w):
    r = Rig(w, bolt=50)
    r.run(29_900)
    assert r.state == C.B_UNKNOWN and r.moves == []
    r.run(3000)
    assert r.state == C.B_LOCKED and r.bolt == 100
    assert [e[1] for e in r.log] == [C.EV_AUTO_RELOCK] and 30_000 <= r.log[0][0] <= 30_100


def test_boot_unlocked_relocks_like_an_unopened_door(w):
    r = Rig(w, bolt=0)
    r.run(29_900)
    assert r.state == C.B_UNLOCKED
    r.run(3000)
    assert r.state == C.B_LOCKED


# ---------------------------------------------------------------- commands and motion

def test_unlock_runs_until_the_switch_then_settles(w):
    r = Rig(w, settle_ms=100)
    assert r.command(C.OP_UNLOCK) == C.E_OK
    assert (r.state, r.motor) == (C.B_UNLOCKING, 1)
    r.run(2000, step=5)
    # the switch closes at 97 % of 800 ms = 776 ms; the motor stops settle_ms later
    (t_on, m_on), (t_off, m_off) = r.moves
    assert (t_on, m_on, m_off) == (0, 1, 0)
    assert 776 + 100 <= t_off <= 776 + 100 + 5
    assert r.state == C.B_UNLOCKED and r.bolt == 0.0
    assert (t_off, FB_OK) in r.fbs


def test_lock_runs_until_the_switch(w):
    r = Rig(w, bolt=0)
    assert r.command(C.OP_LOCK) == C.E_OK
    assert (r.state, r.motor) == (C.B_LOCKING, -1)
    r.run(1500)
    assert r.state == C.B_LOCKED and r.bolt == 100 and r.motor == 0
    assert r.events() == []  # a phone's lock is journaled by the lock context, not here


def test_settle_never_outlasts_the_motor_timeout(w):
    # a slow bolt reaches its switch just before the timeout: done at the timeout, not a jam
    r = Rig(w, motor_timeout_ms=800, settle_ms=100)
    r.command(C.OP_UNLOCK)
    r.run(3000, step=5)
    assert r.state == C.B_UNLOCKED and r.events(C.EV_JAM) == []
    assert r.moves[-1] == (800, 0)


def test_commands_that_change_nothing(w):
    r = Rig(w)
    assert r.command(C.OP_LOCK) == C.E_OK and r.motor == 0 and r.state == C.B_LOCKED
    r.command(C.OP_UNLOCK)
    assert r.command(C.OP_UNLOCK) == C.E_OK and r.motor == 1   # same direction: fine
    r.run(1500)
    assert r.command(C.OP_UNLOCK) == C.E_OK and r.motor == 0 and r.state == C.B_UNLOCKED
    assert r.command(C.OP_STATUS) == C.E_UNKNOWN_OP and r.motor == 0
    assert r.fbs[-1][1] == FB_DENIED


def test_opposite_command_during_a_motion_is_busy(w):
    r = Rig(w)
    r.command(C.OP_UNLOCK)
    r.run(200)
    assert r.command(C.OP_LOCK) == C.E_BUSY
    assert (r.state, r.motor) == (C.B_UNLOCKING, 1) and r.fbs[-1][1] == FB_DENIED
    r.run(1500)
    assert r.state == C.B_UNLOCKED
    r.command(C.OP_LOCK)
    r.run(200)
    assert r.command(C.OP_UNLOCK) == C.E_BUSY and r.motor == -1
    r.run(1500)
    assert r.state == C.B_LOCKED


# ---------------------------------------------------------------- jams

def test_jam_during_unlock_stops_the_motor_at_the_timeout(w):
    r = Rig(w, motor_timeout_ms=1500)
    r.stuck = True
    assert r.command(C.OP_UNLOCK) == C.E_OK
    r.run(3000, step=10)
    assert r.moves == [(0, 1), (1500, 0)]
    assert r.state == C.B_JAMMED and r.bolt == 100
    assert r.events(C.EV_JAM) == [(1500, C.EV_JAM, C.B_UNLOCKING, POS_LOCKED)]
    assert (1500, r.fb_jam) in r.fbs


def test_unlock_after_a_jam_gets_one_retry_then_mechanism_but_lock_always_runs(w):
    r = Rig(w, jam_retries=1, relock_delay_s=60)
    r.stuck = True
    r.command(C.OP_UNLOCK)
    r.run(2000)
    assert r.state == C.B_JAMMED
    assert r.command(C.OP_UNLOCK) == C.E_OK and r.motor == 1       # the one retry
    r.run(2000)
    assert r.state == C.B_JAMMED and len(r.events(C.EV_JAM)) == 2
    assert r.command(C.OP_UNLOCK) == C.E_MECHANISM and r.motor == 0
    assert r.fbs[-1][1] == FB_DENIED
    assert r.command(C.OP_LOCK) == C.E_OK and r.motor == -1        # locking is always tried
    r.run(2000)
    assert r.state == C.B_LOCKED and r.bolt == 100                  # already out: seats at once
    assert r.command(C.OP_UNLOCK) == C.E_OK                         # a completed motion clears it
    r.stuck = False
    r.run(2000)
    assert r.state == C.B_UNLOCKED


def test_jam_during_unlock_falls_back_to_locked(w):
    # the bolt never left the strike: relock_delay_s later the lock seats it and says LOCKED again
    r = Rig(w, relock_delay_s=5)
    r.stuck = True
    r.command(C.OP_UNLOCK)
    r.run(1500 + 4900)
    assert r.state == C.B_JAMMED
    r.run(1000)
    assert r.state == C.B_LOCKED and r.events(C.EV_AUTO_RELOCK)


def test_jam_during_lock_leaves_jammed_never_unlocked(w):
    r = Rig(w, bolt=0, relock_delay_s=5, jam_retries=1)
    r.command(C.OP_LOCK)
    r.run(300)
    r.stuck = True
    r.run(2000)
    assert r.state == C.B_JAMMED and r.motor == 0 and 0 < r.bolt < 100
    assert r.events(C.EV_JAM)[0][2:] == (C.B_LOCKING, POS_UNKNOWN)
    # one automatic retry relock_delay_s after the jam, then it gives up: no motor for good
    r.run(60_000)
    assert [e[1] for e in r.events(C.EV_JAM, C.EV_AUTO_RELOCK)] == [C.EV_JAM, C.EV_AUTO_RELOCK, C.EV_JAM]
    assert r.state == C.B_JAMMED and r.moves[-1][1] == 0
    assert r.events(C.EV_AUTO_RELOCK)[0][0] == r.events(C.EV_JAM)[0][0] + 5000
    r.stuck = False
    assert r.command(C.OP_LOCK) == C.E_OK
    r.run(2000)
    assert r.state == C.B_LOCKED


def test_moving_the_bolt_by_hand_clears_a_jam(w):
    r = Rig(w, bolt=0, jam_retries=0)
    r.command(C.OP_LOCK)
    r.run(300)
    r.stuck = True
    r.run(2000)
    assert r.state == C.B_JAMMED and r.command(C.OP_UNLOCK) == C.E_MECHANISM
    r.stuck = False
    r.turn(100)
    assert r.state == C.B_LOCKED
    assert r.command(C.OP_UNLOCK) == C.E_OK


# ---------------------------------------------------------------- auto relock and the door

def test_relock_after_the_door_was_opened_and_closed(w):
    r = Rig(w, relock_delay_s=5)
    r.command(C.OP_UNLOCK)
    r.run(2000)
    r.set_door(False)
    r.run(60_000)
    assert r.state == C.B_UNLOCKED and r.motor == 0       # never locks into an open doorway
    r.set_door(True)
    closed_at = r.t
    r.run(4800)
    assert r.state == C.B_UNLOCKED
    r.run(2000)
    assert r.state == C.B_LOCKED
    kinds = [e[1] for e in r.log]
    assert kinds == [C.EV_DOOR_OPEN, C.EV_DOOR_CLOSED, C.EV_AUTO_RELOCK]
    assert closed_at + 5000 <= r.events(C.EV_AUTO_RELOCK)[0][0] <= closed_at + 5000 + 100


def test_unopened_door_relocks_after_its_own_delay(w):
    r = Rig(w, unopened_relock_s=30)
    r.command(C.OP_UNLOCK)
    r.run(29_900)
    assert r.state == C.B_UNLOCKED
    r.run(2000)
    assert r.state == C.B_LOCKED and r.events(C.EV_AUTO_RELOCK)[0][0] in range(30_000, 30_101)


def test_unlock_again_rearms_the_unopened_delay(w):
    r = Rig(w, unopened_relock_s=30)
    r.command(C.OP_UNLOCK)
    r.run(20_000)
    r.command(C.OP_UNLOCK)
    r.run(29_000)
    assert r.state == C.B_UNLOCKED
    r.run(2000)
    assert r.state == C.B_LOCKED


def test_lock_with_the_door_open_waits_for_it_to_close(w):
    r = Rig(w, relock_delay_s=20)
    r.command(C.OP_UNLOCK)
    r.run(2000)
    r.set_door(False)
    assert r.command(C.OP_LOCK) == C.E_OK
    assert r.motor == 0 and r.state == C.B_UNLOCKED
    r.run(10_000)
    assert r.motor == 0
    r.set_door(True)
    closed = r.t
    r.run(3000)
    assert r.state == C.B_LOCKED
    # an explicit lock goes soon after the door closes, not after the relock delay
    t = r.events(C.EV_AUTO_RELOCK)[0][0]
    assert closed + CLOSE_SETTLE_MS <= t <= closed + CLOSE_SETTLE_MS + 100


def test_door_opening_during_locking_pulls_the_bolt_back(w):
    r = Rig(w, relock_delay_s=5)
    r.command(C.OP_UNLOCK)
    r.run(2000)
    r.command(C.OP_LOCK)
    r.run(50)                 # 6 % out: the door still moves past the bolt
    assert r.motor == -1
    r.set_door(False)
    assert (r.state, r.motor) == (C.B_UNLOCKING, 1)   # reversed at that very poll
    r.run(2000)
    assert r.state == C.B_UNLOCKED and r.bolt == 0
    r.set_door(True)
    r.run(7000)
    assert r.state == C.B_LOCKED


def test_a_contact_glitch_never_leaves_the_door_unlocked(w):
    # an UNLOCK during a blip of the door contact (shorter than the debounce): no door edge ever
    # follows, and a relock is still armed once the door reads closed again
    r = Rig(w, bolt=0, door_debounce_ms=50, unopened_relock_s=30)
    r.set_door(False)
    assert r.command(C.OP_UNLOCK) == C.E_OK
    r.t += 20
    r.set_door(True)
    assert r.events(C.EV_DOOR_OPEN, C.EV_DOOR_CLOSED) == []
    r.run(31_000)
    assert r.state == C.B_LOCKED and r.events(C.EV_AUTO_RELOCK)


def test_door_bounce_is_debounced(w):
    r = Rig(w, bolt=0, door_debounce_ms=50)
    r.door = False
    r.door_t = r.t
    r.update()
    r.t += 20
    r.door = True
    r.update()
    assert r.events(C.EV_DOOR_OPEN, C.EV_DOOR_CLOSED) == []
    r.set_door(False)
    r.run(40, idle_step=10)
    assert r.events(C.EV_DOOR_OPEN) == []
    r.run(20, idle_step=10)
    assert [e[:2] for e in r.events(C.EV_DOOR_OPEN)] == [(r.door_t + 50, C.EV_DOOR_OPEN)]


def test_door_left_open_alarms_once_per_opening(w):
    r = Rig(w, bolt=0, door_alarm_s=120)
    r.set_door(False)
    opened = r.t
    r.run(119_000)
    assert r.events(C.EV_DOOR_LEFT_OPEN) == []
    r.run(600_000)
    alarms = r.events(C.EV_DOOR_LEFT_OPEN)
    assert len(alarms) == 1
    t, _, _, seconds = alarms[0]
    assert opened + 120_000 <= t <= opened + 120_100 and seconds == 120
    assert (t, FB_ALARM) in r.fbs
    r.set_door(True)
    r.run(1000)
    r.set_door(False)
    r.run(121_000)
    assert len(r.events(C.EV_DOOR_LEFT_OPEN)) == 2


def test_set_config_changes_the_delays(w):
    r = Rig(w, relock_delay_s=5, door_alarm_s=120)
    r.set_config(relock_delay_s=10, door_alarm_s=30)
    r.command(C.OP_UNLOCK)
    r.run(2000)
    r.set_door(False)
    r.run(31_000)
    assert len(r.events(C.EV_DOOR_LEFT_OPEN)) == 1
    r.set_door(True)
    r.run(9_800)
    assert r.state == C.B_UNLOCKED
    r.run(2000)
    assert r.state == C.B_LOCKED


# ---------------------------------------------------------------- the inside button

def test_button_toggles(w):
    r = Rig(w)
    r.press()
    assert (r.state, r.motor) == (C.B_UNLOCKING, 1)
    r.run(1500)
    assert r.state == C.B_UNLOCKED
    r.press()
    assert (r.state, r.motor) == (C.B_LOCKING, -1)
    r.run(1500)
    assert r.state == C.B_LOCKED
    assert [e[1:3] for e in r.events(C.EV_BUTTON)] == [(C.EV_BUTTON, C.B_UNLOCKED), (C.EV_BUTTON, C.B_LOCKED)]


def test_button_reverses_a_motion(w):
    r = Rig(w)
    r.command(C.OP_UNLOCK)
    r.run(300)
    r.press()
    assert (r.state, r.motor) == (C.B_LOCKING, -1)
    r.run(1500)
    assert r.state == C.B_LOCKED


def test_button_with_the_door_open_locks_once_it_closes(w):
    r = Rig(w, relock_delay_s=30)
    r.press()
    r.run(1500)
    r.set_door(False)
    r.press()
    assert r.motor == 0 and r.state == C.B_UNLOCKED
    r.set_door(True)
    r.run(CLOSE_SETTLE_MS + 1500)
    assert r.state == C.B_LOCKED


def test_button_works_when_commands_are_refused(w):
    r = Rig(w, jam_retries=0)
    r.stuck = True
    r.command(C.OP_UNLOCK)
    r.run(2000)
    assert r.command(C.OP_UNLOCK) == C.E_MECHANISM
    r.stuck = False
    r.press()                       # inside the home: always works; the switch says LOCKED -> unlock
    assert r.motor == 1
    r.run(1500)
    assert r.state == C.B_UNLOCKED


def test_button_from_jammed_locks_a_bolt_that_reads_unlocked(w):
    r = Rig(w, bolt=0, jam_retries=0)
    r.stuck = True
    r.command(C.OP_LOCK)
    r.run(2000)
    assert r.state == C.B_JAMMED and r.pos() == POS_UNLOCKED
    r.stuck = False
    r.press()
    assert r.motor == -1
    r.run(1500)
    assert r.state == C.B_LOCKED


# ---------------------------------------------------------------- the switches disagree while idle

def test_thumb_turn_unlock_is_adopted_journaled_and_relocked(w):
    r = Rig(w, unopened_relock_s=30)
    r.turn(0)
    assert r.state == C.B_UNLOCKED
    assert r.events() == [(0, C.EV_UNLOCK, 0, 0)]
    r.run(29_000)
    assert r.state == C.B_UNLOCKED
    r.run(2000)
    assert r.state == C.B_LOCKED


def test_thumb_turn_lock_is_adopted_and_journaled(w):
    r = Rig(w)
    r.command(C.OP_UNLOCK)
    r.run(1500)
    r.turn(100)
    assert r.state == C.B_LOCKED and r.events(C.EV_LOCK) == [(r.t, C.EV_LOCK, 0, 0)]
    r.run(60_000)
    assert r.moves[-1][1] == 0 and len(r.moves) == 2   # nothing to relock


def test_switches_lost_while_idle_become_unknown_after_a_while(w):
    r = Rig(w, unopened_relock_s=30)
    r.turn(60)
    lost = r.t
    r.run(POS_LOST_MS - 100)
    assert r.state == C.B_LOCKED
    r.run(200)
    assert r.state == C.B_UNKNOWN
    r.turn(100)                    # back where it was: no journal record for that
    assert r.state == C.B_LOCKED and r.events(C.EV_LOCK, C.EV_UNLOCK) == []
    r.turn(60)
    r.run(POS_LOST_MS + 30_000 + 1500)
    assert r.state == C.B_LOCKED and r.events(C.EV_AUTO_RELOCK)   # an unknown bolt is driven home
    assert lost < r.events(C.EV_AUTO_RELOCK)[0][0]


def test_events_and_feedback_are_taken_once(w):
    name = Rig(w).name
    w.call("logictest.mech_command", name, C.OP_UNLOCK, 0)
    w.call("logictest.mech_update", name, 10, POS_LOCKED, True, True)   # a press reverses
    assert w.call("logictest.call", name, "events") == []
    assert w.call("logictest.call", name, "take_feedback") == FB_NONE


# ---------------------------------------------------------------- random days at the door

class DoorDay(RuleBasedStateMachine):
    """Random commands, presses, doors, jams, thumb-turns and waits; invariants on every poll (Rig._check)."""

    w = None

    @initialize(bolt=st.sampled_from([0.0, 5.0, 50.0, 100.0]), door_open=st.booleans(),
                relock=st.integers(1, 4), unopened=st.integers(2, 8), alarm=st.integers(3, 12),
                retries=st.integers(0, 2), debounce=st.sampled_from([0, 50]))
    def boot(self, bolt, door_open, relock, unopened, alarm, retries, debounce):
        self.r = Rig(self.w, bolt=bolt, door_closed=not (door_open and bolt <= FRAME), relock_delay_s=relock,
                     unopened_relock_s=unopened, door_alarm_s=alarm, jam_retries=retries,
                     door_debounce_ms=debounce)

    @rule(op=st.sampled_from([C.OP_UNLOCK, C.OP_LOCK]))
    def command(self, op):
        r = self.r
        before, jams = r.state, self.jams()
        status = r.command(op)
        if op == C.OP_UNLOCK:
            if before == C.B_LOCKING:
                assert status == C.E_BUSY
            elif before == C.B_JAMMED and jams > r.kw["jam_retries"]:
                assert status == C.E_MECHANISM
            else:
                assert status == C.E_OK
        else:
            assert status == (C.E_BUSY if before == C.B_UNLOCKING else C.E_OK)

    def jams(self):
        return w_jams(self.r)

    @rule()
    def press(self):
        self.r.press()

    @precondition(lambda self: self.r.bolt <= FRAME)
    @rule()
    def toggle_door(self):
        self.r.set_door(not self.r.door)

    @rule(on=st.booleans())
    def stick(self, on):
        self.r.stuck = on

    @precondition(lambda self: self.r.motor == 0 and self.r.door)
    @rule(bolt=st.sampled_from([0.0, 50.0, 100.0]))
    def thumb_turn(self, bolt):
        self.r.turn(bolt)

    @rule(ms=st.one_of(st.integers(1, 400), st.integers(400, 4000), st.integers(4000, 20_000)))
    def wait(self, ms):
        self.r.run(ms)

    @rule(relock=st.integers(1, 4))
    def configure(self, relock):
        self.r.set_config(relock_delay_s=relock)

    @precondition(lambda self: self.r.door or self.r.bolt <= FRAME)
    @rule()
    def close_and_leave(self):
        """Door closed, nobody around: the lock ends LOCKED (or JAMMED, reported), never open."""
        r = self.r
        if not r.door:
            r.set_door(True)
        stuck, jams, moving = r.stuck, w_jams(r), r.motor != 0
        kw = r.kw
        horizon = (max(kw["relock_delay_s"], kw["unopened_relock_s"]) * 1000 + POS_LOST_MS
                   + (kw["jam_retries"] + 2) * (kw["motor_timeout_ms"] + 1000 * kw["relock_delay_s"]) + 5000)
        r.run(horizon)
        assert r.state in (C.B_LOCKED, C.B_JAMMED), r.state
        assert r.motor == 0
        if r.state == C.B_LOCKED:
            assert r.bolt >= LOCKED_AT
        elif not stuck:
            # a free bolt jams only in a motion that lost time while stuck before the wait; JAMMED
            # at the end means the lock gave up (more jams in a row than retries)
            assert w_jams(r) > kw["jam_retries"], "a free bolt left JAMMED although retries were left"
            if not moving:
                assert w_jams(r) == jams, "a free bolt jammed"


    def teardown(self):
        if hasattr(self, "r"):
            self.r.close()


def w_jams(r):
    return r.w.call("logictest.get", r.name, "jams")


def test_random_days_at_the_door(w):
    DoorDay.w = w
    run_state_machine_as_test(DoorDay, settings=settings(
        max_examples=60, stateful_step_count=30, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))


def test_same_module_runs_under_cpython():
    # the logic modules are plain Python too (hypothesis-from-CPython stays possible)
    import lockmech
    m = lockmech.Mechanism(settle_ms=0)
    m.update(0, POS_LOCKED, True, False)
    assert m.command(C.OP_UNLOCK, 0) == C.E_OK and m.motor == 1
    m.update(500, POS_UNLOCKED, True, False)
    assert (m.state, m.motor, m.take_feedback()) == (C.B_UNLOCKED, 0, FB_OK)
