"""Properties of the firmware's session under MicroPython, driven by hypothesis from the host side.

Each example builds tickets and frames with lockproto (CPython) and sends them to
firmware/lib running in the real `micropython` interpreter (tests/mpy/xcheck.py).
"""

from __future__ import annotations

import struct
from dataclasses import replace

from hypothesis import HealthCheck, assume, given, settings, strategies as st

import pytest

from lockproto import Bolt, Err, LockKeys, Op, PhoneSession, Right, StateBlock, issue_ticket
from lockproto.issuer import rekey_pair, verify_rekey_proof
from lockproto.wire import ErrorFrame, Hello, Result

pytestmark = pytest.mark.mpy

NOW = 1_767_225_600
STATE = StateBlock(NOW, bolt=Bolt.LOCKED, battery_pct=90, battery_mv=5800)
FW = (0, 1, 0)
SHIFT = dict(ticket_id=7, user_id=3, not_before=NOW - 60, not_after=NOW + 3600, issued_at=NOW - 60,
             rights=Right.UNLOCK | Right.LOCK)
masters = st.binary(min_size=32, max_size=32)
lock_ids = st.binary(min_size=8, max_size=8)
nonces = st.binary(min_size=16, max_size=16)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def lock_cfg(master, lock_id, epoch=1):
    return {"master": master.hex(), "lock_id": lock_id.hex(), "epoch": epoch, "now": NOW,
            "state_block": STATE.encode().hex()}


def hello(lock_id, epoch, nonce):
    return Hello(lock_id, epoch, nonce, FW, STATE).encode()


def outcome(resp_hex: str):
    resp = bytes.fromhex(resp_hex)
    if resp[0] == 5:
        return ErrorFrame.decode(resp).code
    return Result.decode(resp).status


@given(masters, masters, lock_ids, lock_ids, nonces, nonces)
@SETTINGS
def test_ticket_for_lock_a_never_opens_lock_b(fw, ma, mb, la, lb, nl, np_):
    assume(ma != mb)
    t, k_t = issue_ticket(LockKeys.from_master(ma, la, 1), **SHIFT)
    auth = PhoneSession(t.encode(), k_t, hello(lb, 1, nl), np_).auth(Op.UNLOCK)
    got = fw.call("xcheck.connections", lock_cfg(mb, lb), [[nl.hex(), [auth.hex()]]])
    assert got["actuations"] == []
    assert outcome(got["responses"][0][0]) == (Err.WRONG_LOCK if la != lb else Err.BAD_MAC)


FIELDS = ["lock_id", "epoch", "ticket_id", "user_id", "not_before", "not_after", "issued_at", "rights",
          "win_start", "win_end", "win_days", "tz_offset"]


@given(masters, lock_ids, nonces, st.sampled_from(FIELDS), st.integers(1, 2**16), st.booleans())
@SETTINGS
def test_any_changed_ticket_field_is_refused(fw, master, lock_id, nl, field, delta, first_op_unlock):
    keys = LockKeys.from_master(master, lock_id, 1)
    t, k_t = issue_ticket(keys, **SHIFT)
    if field == "lock_id":
        changed = replace(t, lock_id=bytes([lock_id[0] ^ (delta & 0xFF or 1)]) + lock_id[1:])
    elif field in ("win_start", "win_end", "win_days", "tz_offset"):
        changed = replace(t, win_days=0x7F, win_start=0, win_end=1440)  # widen to always
    elif field == "rights":
        changed = replace(t, rights=0x0F)
    else:
        changed = replace(t, **{field: (getattr(t, field) + delta) % 2**32})
    # packed without validation: a hostile phone sends anything
    body = struct.pack(">B8sIIIIIIBHHBh", 1, changed.lock_id, changed.epoch, changed.ticket_id,
                       changed.user_id, changed.not_before, changed.not_after, changed.issued_at,
                       changed.rights, changed.win_start, changed.win_end, changed.win_days, changed.tz_offset)
    assume(body != t.encode())
    op = Op.UNLOCK if first_op_unlock else Op.NOP
    msgs = [PhoneSession(body, k_t, hello(lock_id, 1, nl), b"\x5a" * 16).auth(op).hex()]
    got = fw.call("xcheck.connections", lock_cfg(master, lock_id), [[nl.hex(), msgs]])
    assert got["actuations"] == []
    assert outcome(got["responses"][0][0]) in (Err.BAD_MAC, Err.WRONG_LOCK, Err.WRONG_EPOCH, Err.MALFORMED)


@given(masters, masters, lock_ids, st.lists(nonces, min_size=4, max_size=4, unique=True))
@SETTINGS
def test_old_epoch_ticket_refused_after_rekey(fw, m1, m2, lock_id, ns):
    assume(m1 != m2)
    k1 = LockKeys.from_master(m1, lock_id, 1)
    old = issue_ticket(k1, **SHIFT)
    msg, k2 = rekey_pair(k1, m2)
    new = issue_ticket(k2, **SHIFT)
    ps = PhoneSession(old[0].encode(), old[1], hello(lock_id, 1, ns[0]), b"\x01" * 16)
    conn1 = [ps.auth(Op.NOP).hex(), ps.op(Op.REKEY, msg).hex()]
    replay = [PhoneSession(old[0].encode(), old[1], hello(lock_id, 2, ns[1]), b"\x02" * 16).auth(Op.UNLOCK).hex()]
    again = [PhoneSession(old[0].encode(), old[1], hello(lock_id, 2, ns[2]), b"\x03" * 16).auth(Op.REKEY, msg).hex()]
    fresh = [PhoneSession(new[0].encode(), new[1], hello(lock_id, 2, ns[3]), b"\x04" * 16).auth(Op.UNLOCK).hex()]
    got = fw.call("xcheck.connections", lock_cfg(m1, lock_id),
                  [[ns[0].hex(), conn1], [ns[1].hex(), replay], [ns[2].hex(), again], [ns[3].hex(), fresh]])
    (nop, rk), (old_unlock,), (old_rekey,), (new_unlock,) = got["responses"]
    assert outcome(rk) == Err.OK and verify_rekey_proof(k2, Result.decode(bytes.fromhex(rk)).payload)
    assert outcome(old_unlock) == Err.WRONG_EPOCH
    assert outcome(old_rekey) == Err.WRONG_EPOCH
    assert outcome(new_unlock) == Err.OK
    assert got["actuations"] == [[Op.UNLOCK, SHIFT["ticket_id"]]] and got["epoch"] == 2
