"""The bolt mechanism state machine (firmware/lib/lockmech.py) under MicroPython, against a physical model.

A hypothesis rule-based machine plays door, button, commands, jams and time on a
simulated bolt (host side) and checks the safety invariants after every step.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

import mpyhost
from lockproto import Bolt, Err, Event, Op

pytestmark = pytest.mark.mpy
MPY = Path(__file__).resolve().parent / "mpy"
TRAVEL_MS, TIMEOUT_MS, STEP_MS, RELOCK_S = 600, 1000, 20, 2
_keys = itertools.count()
_worker = None


def worker():
    global _worker
    if _worker is None:
        _worker = mpyhost.Worker(["mechtest"], paths=[MPY], heapsize="1m")
    return _worker


@pytest.fixture(scope="module", autouse=True)
def _close_worker():
    yield
    global _worker
    if _worker is not None:
        _worker.close()
        _worker = None


class MechanismMachine(RuleBasedStateMachine):
    @initialize(start=st.sampled_from([0, TRAVEL_MS]), door=st.booleans())
    def boot(self, start, door):
        self.key = f"m{next(_keys)}"
        worker().call("mechtest.new", self.key, RELOCK_S, 60, TIMEOUT_MS)
        self.now = 0
        self.bolt = start          # 0 locked .. TRAVEL_MS unlocked
        self.door_closed = door
        self.jammed = False
        self.motor = 0
        self.motor_on_since = None
        self.state = Bolt.UNKNOWN
        self.unlock_allowed = False  # an UNLOCK command or button press asked for it
        self.quiet_ms = 0            # time since the last unlock request, door closed, no jam
        self.events = []
        self._step(False)

    def _pos(self):
        return 1 if self.bolt <= 0 else 2 if self.bolt >= TRAVEL_MS else 0

    def _step(self, button):
        state, motor, events, _ = worker().call("mechtest.update", self.key, self.now, self._pos(),
                                               self.door_closed, button)
        if motor and motor != self.motor:
            self.motor_on_since = self.now
        if not motor:
            self.motor_on_since = None
        if motor > 0 and self.motor <= 0 and not self.unlock_allowed:
            # retracting is allowed only to clear an open doorway during locking
            assert not self.door_closed, "motor drove toward unlocked without a request"
        self.state, self.motor = state, motor
        self.events += [e[0] for e in events]

    def _advance(self, ms):
        for _ in range(ms // STEP_MS):
            self.now += STEP_MS
            if self.motor and not self.jammed:
                self.bolt = min(TRAVEL_MS, max(0, self.bolt + self.motor * STEP_MS))
            self._step(False)
            if self.door_closed and not self.jammed and not self.unlock_allowed:
                self.quiet_ms += STEP_MS

    @rule(ms=st.integers(STEP_MS, 5000).map(lambda v: v - v % STEP_MS))
    def wait(self, ms):
        self._advance(ms)

    @rule(closed=st.booleans())
    def door(self, closed):
        self.door_closed = closed
        self.quiet_ms = 0
        self._step(False)

    @rule()
    def button(self):
        self.unlock_allowed = self.state not in (Bolt.UNLOCKED, Bolt.UNLOCKING)
        self.quiet_ms = 0
        self._step(True)

    @rule(op=st.sampled_from([Op.UNLOCK, Op.LOCK]))
    def command(self, op):
        prev = self.state
        status, state, motor = worker().call("mechtest.command", self.key, op, self.now)
        if status == Err.BUSY:
            # a phone cannot reverse a running motion (only the inside button can)
            busy = Bolt.LOCKING if op == Op.UNLOCK else Bolt.UNLOCKING
            assert prev == busy and (state, motor) == (prev, self.motor)
            return
        if status == Err.MECHANISM:
            # the jam retries are used up: an unlock is refused outright, the motor stays off
            assert op == Op.UNLOCK and prev == Bolt.JAMMED and motor == 0
            return
        assert status == Err.OK
        if op == Op.UNLOCK:
            self.unlock_allowed = True
        self.quiet_ms = 0
        self.state, self.motor = state, motor
        if motor:
            self.motor_on_since = self.now

    @rule(on=st.booleans())
    def jam(self, on):
        self.jammed = on
        self.quiet_ms = 0

    @rule()
    def settle_unlock_request(self):
        # a phone's unlock is a single request: once the bolt is out, no further unlock is asked for
        if self.state == Bolt.UNLOCKED:
            self.unlock_allowed = False

    @invariant()
    def motor_never_runs_past_its_timeout(self):
        if self.motor_on_since is not None:
            assert self.now - self.motor_on_since <= TIMEOUT_MS + 3 * STEP_MS

    @invariant()
    def bolt_never_extends_into_an_open_doorway(self):
        if not self.door_closed:
            assert self.motor >= 0

    @invariant()
    def falls_back_to_locked(self):
        # closed door, nothing asked, no jam, long enough: locked (or jammed by an earlier jam)
        if self.quiet_ms > (30 + RELOCK_S) * 1000 + 2 * TIMEOUT_MS:
            assert self.state in (Bolt.LOCKED, Bolt.JAMMED)

    def teardown(self):
        if hasattr(self, "key"):
            worker().call("mechtest.drop", self.key)


TestMechanism = MechanismMachine.TestCase
TestMechanism.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)


def test_jam_during_unlock_stops_motor_and_reports():
    w = worker()
    w.call("mechtest.new", "j", RELOCK_S, 60, TIMEOUT_MS)
    assert w.call("mechtest.update", "j", 0, 1, True, False)[0] == Bolt.LOCKED
    assert w.call("mechtest.command", "j", Op.UNLOCK, 0) == [Err.OK, Bolt.UNLOCKING, 1]
    t, out = 0, None
    while t <= TIMEOUT_MS + 100:
        t += STEP_MS
        out = w.call("mechtest.update", "j", t, 1, True, False)  # bolt never leaves LOCKED
        if out[0] == Bolt.JAMMED:
            break
    state, motor, events, fb = out
    assert state == Bolt.JAMMED and motor == 0 and [Event.JAM, Bolt.UNLOCKING, 1] in events  # the motion, the switch read (LOCKED) and fb == 4
    assert t >= TIMEOUT_MS


def test_door_left_open_alarm_once():
    w = worker()
    w.call("mechtest.new", "d", RELOCK_S, 10, TIMEOUT_MS)
    w.call("mechtest.update", "d", 0, 1, True, False)
    w.call("mechtest.update", "d", 100, 1, False, False)
    alarms = []
    for t in range(200, 30_000, 500):
        alarms += [e for e in w.call("mechtest.update", "d", t, 1, False, False)[2] if e[0] == Event.DOOR_LEFT_OPEN]
    assert len(alarms) == 1 and alarms[0][2] == 10
