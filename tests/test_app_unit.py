"""The whole door unit (lockapp.DoorUnit) on the simulator HAL, under the real MicroPython.

A phone's messages are made on the host with lockproto; the unit runs firmware/lib
with the strict simulator twin of the hardware; simulated time is stepped like the
unit's asyncio loop. Every refusal is checked to have never run the motor.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import mpyhost
from lockproto import (Bolt, DenyKind, Err, Event, Flag, LockKeys, Op, PhoneSession, ProtocolError, Record,
                       Right, issue_ticket)
from lockproto.issuer import deny_list, rekey_pair, time_token
from lockproto.journal import verify_chain

pytestmark = pytest.mark.mpy

ROOT = Path(__file__).resolve().parent.parent
NOW = 1_767_225_600
LOCK_ID = bytes.fromhex("4c4b0000000000aa")
MASTER = bytes(range(100, 132))
KEYS = LockKeys.from_master(MASTER, LOCK_ID, 1)
_ids = itertools.count(1)


class Unit:
    def __init__(self, w, uid, provision=True, **kw):
        self.w, self.uid = w, uid
        self.keys = KEYS
        self.call("new", **kw) if not kw else w.call("apptest.call", "new", uid, kw.get("bolt", 0),
                                                     kw.get("door_closed", True))
        if provision:
            assert self.call("provision", LOCK_ID, 1, MASTER, NOW) == 0
            self.run(200)

    def call(self, name, *args):
        return self.w.call("apptest.call", name, self.uid, *args)

    def run(self, ms):
        self.call("run", ms)

    @property
    def status(self):
        return self.call("status")

    def ticket(self, hours=8.0, rights=Right.UNLOCK | Right.LOCK, keys=None, **over):
        now = self.status["now"]
        fields = dict(ticket_id=next(_ids), user_id=42, not_before=now - 60, not_after=now + int(hours * 3600),
                      issued_at=now - 60, rights=rights)
        fields.update(over)
        t, k = issue_ticket(keys or self.keys, **fields)
        return t.encode(), k

    def connect(self, ticket, ops):
        """One connection: AUTH with the first op, then OPs. Returns the results or the error."""
        raw, k_t = ticket
        ps = PhoneSession(raw, k_t, self.call("hello"))
        out = []
        for i, (op, args) in enumerate(ops):
            msg = ps.auth(op, args) if i == 0 else ps.op(op, args)
            try:
                out.append(ps.read(self.call("handle", msg)))
            except ProtocolError as e:
                out.append(e.code)
                break
        return out

    def journal(self):
        first, base, recs = self.call("journal")
        return [Record.decode(bytes.fromhex(r)) for r in recs]


@pytest.fixture(scope="module")
def w():
    with mpyhost.Worker(["apptest"], paths=[ROOT / "tests" / "mpy"], heapsize="4m") as worker:
        worker.call("apptest.bench", str(ROOT / "boards"))
        yield worker


def uid():
    return f"u{next(_ids)}"


def test_factory_unit_refuses_everything_and_boots_locked(w):
    u = Unit(w, uid(), provision=False)
    st = u.status
    assert not st["provisioned"] and st["flags"] & Flag.FACTORY and st["state"] == Bolt.LOCKED
    res = u.connect(u.ticket(), [(Op.UNLOCK, b"")])
    assert res == [Err.FACTORY_MODE] and u.status["motor_ms"] == 0


def test_provisioning_switches_to_production_mode_at_once(w):
    """No REPL from the moment the unit holds a key: Ctrl-C is off before the answer goes out."""
    from lockproto import provision_message
    u = Unit(w, uid(), provision=False)
    resp, locked = u.call("provision_msg", provision_message(LOCK_ID, 1, MASTER, NOW))
    assert resp[0] == 0x07 and resp[1:9] == LOCK_ID and locked
    assert u.status["provisioned"]
    resp, locked = u.call("provision_msg", provision_message(LOCK_ID, 2, MASTER, NOW))
    assert resp[:2] == bytes([5, Err.PROVISIONED])


def test_unlock_then_auto_relock_after_the_door_closes(w):
    u = Unit(w, uid())
    res = u.connect(u.ticket(), [(Op.UNLOCK, b"")])
    assert res[0].payload == bytes([Bolt.UNLOCKING])
    u.run(2000)
    assert u.status["state"] == Bolt.UNLOCKED and u.status["bolt"] == 100
    u.call("door", False)
    u.run(3000)
    assert u.status["state"] == Bolt.UNLOCKED  # never locks into an open doorway
    u.call("door", True)
    u.run(4000)
    assert u.status["state"] == Bolt.UNLOCKED  # relock delay (5 s) not over yet
    u.run(3500)
    st = u.status
    assert st["state"] == Bolt.LOCKED and st["bolt"] == 0 and st["motor"] == 0
    events = [r.event for r in u.journal()]
    for e in (Event.UNLOCK, Event.DOOR_OPEN, Event.DOOR_CLOSED, Event.AUTO_RELOCK):
        assert e in events


def test_unopened_door_relocks_by_itself(w):
    u = Unit(w, uid())
    u.connect(u.ticket(), [(Op.UNLOCK, b"")])
    u.run(29_000)
    assert u.status["state"] == Bolt.UNLOCKED
    u.run(4000)
    assert u.status["state"] == Bolt.LOCKED


def test_inside_button_toggles(w):
    u = Unit(w, uid())
    u.call("press")
    u.run(2000)
    assert u.status["state"] == Bolt.UNLOCKED
    u.call("press")
    u.run(2000)
    assert u.status["state"] == Bolt.LOCKED
    assert [r.event for r in u.journal()].count(Event.BUTTON) == 2


def test_jam_stops_the_motor_and_is_journaled(w):
    u = Unit(w, uid())
    u.call("jam", True)
    u.connect(u.ticket(), [(Op.UNLOCK, b"")])
    u.run(4000)
    st = u.status
    assert st["state"] == Bolt.JAMMED and st["motor"] == 0 and st["bolt"] == 0
    assert 2500 <= st["motor_ms"] <= 2540  # the board's motor timeout_ms, plus at most one poll step
    jams = [r for r in u.journal() if r.event == Event.JAM]
    assert len(jams) == 1


@pytest.mark.parametrize("case", ["expired", "not yet", "foreign lock", "wrong key", "revoked", "no right"])
def test_refused_tickets_never_run_the_motor(w, case):
    u = Unit(w, uid())
    now = u.status["now"]
    if case == "revoked":
        t = u.ticket()
        admin = u.ticket()
        u.connect(admin, [(Op.DENY_UPDATE, deny_list(KEYS, 1, [(DenyKind.USER, 42, now + 86400)]))])
        ticket, want = t, Err.REVOKED
    elif case == "expired":
        ticket, want = u.ticket(not_before=now - 7200, not_after=now - 10), Err.EXPIRED
    elif case == "not yet":
        ticket, want = u.ticket(not_before=now + 3600, not_after=now + 7200), Err.NOT_YET_VALID
    elif case == "foreign lock":
        ticket, want = u.ticket(keys=LockKeys.from_master(MASTER, b"X" * 8, 1)), Err.WRONG_LOCK
    elif case == "wrong key":
        ticket, want = u.ticket(keys=LockKeys.from_master(bytes(32), LOCK_ID, 1)), Err.BAD_MAC
    else:
        ticket, want = u.ticket(rights=Right.LOCK), Err.NO_RIGHT
    assert u.connect(ticket, [(Op.UNLOCK, b"")]) == [want]
    u.run(2000)
    st = u.status
    assert st["motor_ms"] == 0 and st["state"] == Bolt.LOCKED
    denied = [r for r in u.journal() if r.event == Event.DENIED]
    assert (denied[-1].arg16 if denied else None) == (None if case == "no right" else want)


def test_lockout_after_repeated_failures_survives_a_reboot(w):
    u = Unit(w, uid())
    bad = u.ticket(keys=LockKeys.from_master(bytes(32), LOCK_ID, 1))
    for _ in range(5):
        assert u.connect(bad, [(Op.UNLOCK, b"")]) == [Err.BAD_MAC]
    good = u.ticket()
    assert u.connect(good, [(Op.UNLOCK, b"")]) == [Err.LOCKED_OUT]
    u.call("power_cut", 0)
    u.connect(u.ticket(), [(Op.TIME_SET, b"")])  # anything: still locked out after the reboot
    assert u.connect(good, [(Op.UNLOCK, b"")]) == [Err.LOCKED_OUT]
    assert Event.LOCKOUT in [r.event for r in u.journal()]
    assert u.status["motor_ms"] == 0


def test_power_cut_makes_time_uncertain_until_a_time_token(w):
    u = Unit(w, uid())
    u.run(5000)
    u.connect(u.ticket(), [(Op.LOCK, b"")])  # journaled: a floor for the clock after the cut
    before = u.status["now"]
    u.call("power_cut", 60_000)
    st = u.status
    assert st["uncertain"] and st["flags"] & Flag.TIME_UNCERTAIN and st["now"] >= before
    week = u.ticket(hours=7 * 24)
    assert u.connect(week, [(Op.UNLOCK, b"")])[0] == Err.TIME_UNCERTAIN
    shift = u.ticket(hours=8)
    raw, k_t = shift
    hello = u.call("hello")
    ps = PhoneSession(raw, k_t, hello)
    nonce = hello[15:31]
    token = time_token(KEYS, nonce, before + 3600)
    r = ps.read(u.call("handle", ps.auth(Op.TIME_SET, token)))
    assert int.from_bytes(r.payload, "big") == before + 3600
    assert not u.status["uncertain"]
    assert u.connect(week, [(Op.UNLOCK, b"")])[0].payload == bytes([Bolt.UNLOCKING])


def test_uncertain_time_stays_uncertain_across_a_soft_reset(w):
    """A reset that keeps the RTC must not turn a guessed time into a certain one."""
    u = Unit(w, uid())
    u.call("power_cut", 1000)
    assert u.status["uncertain"]
    u.run(200)  # the unit persists its clock mark (with the flag) in its heartbeat
    u.call("soft_reset")
    assert u.status["uncertain"]
    week = u.ticket(hours=7 * 24)
    assert u.connect(week, [(Op.UNLOCK, b"")])[0] == Err.TIME_UNCERTAIN


def test_rekey_survives_reboot_and_refuses_the_old_epoch(w):
    u = Unit(w, uid())
    msg, new = rekey_pair(KEYS, bytes(range(1, 33)))
    assert u.connect(u.ticket(), [(Op.NOP, b""), (Op.REKEY, msg)])[1].payload[:4] == (2).to_bytes(4, "big")
    u.call("power_cut", 0)
    assert u.status["epoch"] == 2
    assert u.connect(u.ticket(), [(Op.UNLOCK, b"")]) == [Err.WRONG_EPOCH]
    u.keys = new
    assert u.connect(u.ticket(), [(Op.UNLOCK, b"")])[0].status == Err.OK
    recs = u.journal()
    verify_chain({1: KEYS, 2: new}, bytes.fromhex(u.call("journal")[1]), recs, 1)


def test_deny_list_survives_reboot(w):
    u = Unit(w, uid())
    now = u.status["now"]
    u.connect(u.ticket(), [(Op.DENY_UPDATE, deny_list(KEYS, 7, [(DenyKind.USER, 42, now + 86400)]))])
    u.call("power_cut", 0)
    assert u.status["deny"] == 7
    assert u.connect(u.ticket(), [(Op.UNLOCK, b"")]) == [Err.REVOKED]


@given(st.lists(st.one_of(
    st.tuples(st.just("msg"), st.binary(max_size=120)),
    st.tuples(st.just("door"), st.booleans()),
    st.tuples(st.just("run"), st.integers(0, 3000)),
    st.tuples(st.just("jam"), st.booleans()),
), max_size=12))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_no_error_path_unlocks(w, steps):
    """Garbage from the radio, door and jam events: the bolt never leaves LOCKED without a valid unlock."""
    u = Unit(w, uid())
    for kind, v in steps:
        if kind == "msg":
            u.call("hello")
            resp = u.call("handle", bytes([2]) + v if v[:1] != b"\x04" else v)
            assert resp[0] in (3, 5)
        elif kind == "door":
            u.call("door", v)
        elif kind == "jam":
            u.call("jam", v)
        else:
            u.run(v)
    st = u.status
    assert st["bolt"] == 0 and st["state"] in (Bolt.LOCKED, Bolt.LOCKING, Bolt.JAMMED)
