"""Host side (lockproto.phone, lockproto.issuer): phone sessions against a reference lock, tamper
detection of every single-byte change, server statements."""

from __future__ import annotations

import struct

import pytest
from hypothesis import assume, given, settings, strategies as st

from lockproto import (Bolt, DenyKind, Err, LockKeys, Op, PhoneSession, ProtocolError, Right, StateBlock,
                       issue_ticket)
from lockproto.crypto import aes_key_unwrap, mac16
from lockproto.issuer import (deny_list, journal_ack, rekey_message, rekey_pair, rekey_proof, ticket_key,
                              time_token, verify_rekey_proof)
from lockproto.phone import lock_check_auth, lock_check_op, lock_result
from lockproto.wire import Auth, ErrorFrame, Hello, OpFrame, Result, Ticket

NOW = 1_767_225_600
STATE = StateBlock(NOW, bolt=Bolt.LOCKED, battery_pct=90, battery_mv=5800)
SHIFT = dict(ticket_id=7, user_id=3, not_before=NOW - 60, not_after=NOW + 3600, issued_at=NOW - 60,
             rights=Right.UNLOCK | Right.LOCK)
KEYS = LockKeys.from_master(bytes(range(32)), b"LOCK0001", 1)
NL, NP = b"\x11" * 16, b"\x22" * 16
masters = st.binary(min_size=32, max_size=32)
lock_ids = st.binary(min_size=8, max_size=8)


def hello(keys=KEYS, nonce=NL, **kw):
    return Hello(keys.lock_id, keys.epoch, nonce, (0, 1, 0), STATE, **kw).encode()


def connect(keys=KEYS, **fields):
    t, k_t = issue_ticket(keys, **{**SHIFT, **fields})
    h = hello(keys)
    return PhoneSession(t.encode(), k_t, h, NP), h


def test_happy_path_against_the_reference_lock():
    ps, h = connect()
    assert ps.version == 1 and ps.preflight() == Err.OK and not ps.established
    auth = ps.auth(Op.UNLOCK)
    assert len(auth) == 76
    t, a, k_s = lock_check_auth(KEYS, h, auth)
    assert k_s == ps.session_key and a.op == Op.UNLOCK and t.ticket_id == 7
    r = ps.read(lock_result(k_s, 0, Op.UNLOCK, Err.OK, bytes([Bolt.UNLOCKING])))
    assert r.payload == bytes([Bolt.UNLOCKING]) and ps.established and not ps.closed
    for ctr, op in ((1, Op.STATUS), (2, Op.LOCK), (3, Op.NOP)):
        f = lock_check_op(k_s, ctr, ps.op(op))
        assert f.op == op
        payload = {Op.STATUS: STATE.encode(), Op.LOCK: bytes([Bolt.LOCKING]), Op.NOP: b""}[op]
        assert ps.read(lock_result(k_s, ctr, op, Err.OK, payload)).payload == payload


def test_versions():
    t, k_t = issue_ticket(KEYS, **SHIFT)
    assert PhoneSession(t.encode(), k_t, hello(proto_min=1, proto_max=3)).version == 1
    with pytest.raises(ProtocolError) as e:
        PhoneSession(t.encode(), k_t, hello(proto_min=2, proto_max=3))
    assert (e.value.code, e.value.detail) == (Err.UNSUPPORTED_VERSION, 0x0203)
    ps = PhoneSession(t.encode(), k_t, hello(extra=b"\x99" * 10), NP)  # a longer HELLO: extra bytes kept
    assert ps.hello.extra == b"\x99" * 10
    auth = ps.auth(Op.NOP)
    lock_check_auth(KEYS, hello(extra=b"\x99" * 10), auth)
    with pytest.raises(ProtocolError) as e:  # ... and bound into the AUTH MAC
        lock_check_auth(KEYS, hello(), auth)
    assert e.value.code == Err.BAD_MAC
    a2 = Auth(2, t.encode(), NP, Op.NOP).sign(ps.session_key, hello(extra=b"\x99" * 10)).encode()
    with pytest.raises(ProtocolError) as e:
        lock_check_auth(KEYS, hello(extra=b"\x99" * 10), a2)
    assert (e.value.code, e.value.detail) == (Err.UNSUPPORTED_VERSION, 0x0101)


def test_turns_and_session_end():
    ps, _ = connect()
    with pytest.raises(ProtocolError) as e:
        ps.op(Op.NOP)
    assert e.value.code == Err.NO_SESSION  # no OP before AUTH
    with pytest.raises(ProtocolError) as e:
        ps.read(lock_result(ps.session_key, 0, Op.NOP, Err.OK))
    assert e.value.code == Err.NO_SESSION  # nothing asked
    ps.auth(Op.NOP)
    with pytest.raises(ProtocolError) as e:
        ps.auth(Op.NOP)
    assert e.value.code == Err.NO_SESSION  # one AUTH per HELLO
    with pytest.raises(ProtocolError) as e:
        ps.read(ErrorFrame(Err.LOCKED_OUT, 30).encode())
    assert (e.value.code, e.value.detail) == (Err.LOCKED_OUT, 30) and ps.closed
    with pytest.raises(ProtocolError) as e:
        ps.op(Op.NOP)
    assert e.value.code == Err.NO_SESSION


@pytest.mark.parametrize("status,established,closed", [
    (Err.EXPIRED, False, True), (Err.NOT_YET_VALID, False, True), (Err.OUTSIDE_WINDOW, False, True),
    (Err.REVOKED, False, True), (Err.NO_RIGHT, True, False), (Err.TIME_UNCERTAIN, True, False),
    (Err.UNKNOWN_OP, True, False), (Err.MALFORMED, True, False),
])
def test_failing_results(status, established, closed):
    ps, _ = connect()
    ps.auth(Op.UNLOCK)
    with pytest.raises(ProtocolError) as e:
        ps.read(lock_result(ps.session_key, 0, Op.UNLOCK, status))
    assert e.value.code == status and ps.established is established and ps.closed is closed
    if not closed:
        ps.op(Op.LOCK)
        with pytest.raises(ProtocolError) as e:
            ps.read(lock_result(ps.session_key, 1, Op.LOCK, Err.REVOKED))  # revoked mid-session
        assert e.value.code == Err.REVOKED and ps.closed


def test_rekey_result_ends_the_session():
    ps, _ = connect()
    ps.auth(Op.NOP)
    ps.read(lock_result(ps.session_key, 0, Op.NOP, Err.OK))
    msg, new = rekey_pair(KEYS, bytes(range(100, 132)))
    ps.op(Op.REKEY, msg)
    r = ps.read(lock_result(ps.session_key, 1, Op.REKEY, Err.OK, rekey_proof(new)))
    assert verify_rekey_proof(new, r.payload) and ps.closed


def test_forged_answers_are_refused_and_the_genuine_one_still_accepted():
    ps, _ = connect()
    ps.auth(Op.UNLOCK)
    k_s = ps.session_key
    good = lock_result(k_s, 0, Op.UNLOCK, Err.OK, bytes([Bolt.UNLOCKING]))
    for bad, code in ((lock_result(k_s, 1, Op.UNLOCK, Err.OK, b"\x02"), Err.BAD_COUNTER),
                      (lock_result(bytes(32), 0, Op.UNLOCK, Err.OK, b"\x02"), Err.BAD_MAC),
                      (lock_result(k_s, 0, Op.LOCK, Err.OK, b"\x02"), Err.MALFORMED),
                      (Result(0, Op.UNLOCK, 0, b"\x02").body() + bytes(16), Err.BAD_MAC),
                      (OpFrame(0, Op.UNLOCK).sign(k_s).encode(), Err.MALFORMED),  # a reflected phone frame
                      (b"\x09\x00", Err.UNKNOWN_TYPE), (b"", Err.MALFORMED)):
        with pytest.raises(ProtocolError) as e:
            ps.read(bad)
        assert e.value.code == code
    assert ps.read(good).payload == b"\x02" and ps.established


@pytest.mark.parametrize("op,args,payload", [
    (Op.UNLOCK, b"", b""), (Op.UNLOCK, b"", b"\x02\x02"), (Op.UNLOCK, b"", b"\x06"), (Op.STATUS, b"", bytes(20)),
    (Op.STATUS, b"", STATE.encode()[:5] + b"\x09" + STATE.encode()[6:]), (Op.TIME_SET, b"", bytes(5)),
    (Op.REKEY, b"", bytes(19)), (Op.CONFIG, b"\x01", bytes(4)), (Op.NOP, b"", b"\x00"),
    (Op.JOURNAL_READ, struct.pack(">IB", 1, 1), bytes(37 + 64)),  # 2 records, 1 asked
    (Op.JOURNAL_READ, struct.pack(">IB", 1, 16), bytes(36)),
])
def test_genuine_answer_of_the_wrong_shape_is_malformed(op, args, payload):
    ps, _ = connect()
    ps.auth(op, args)
    if op == Op.JOURNAL_READ and len(payload) > 36:
        payload = payload[:8] + b"\x02" + payload[9:]
    with pytest.raises(ProtocolError) as e:
        ps.read(lock_result(ps.session_key, 0, op, Err.OK, payload))
    assert e.value.code == Err.MALFORMED and ps.closed


def test_preflight():
    t, k_t = issue_ticket(KEYS, **SHIFT)
    other = LockKeys.from_master(bytes(range(32)), b"LOCK0002", 1)
    assert PhoneSession(t.encode(), k_t, hello(other)).preflight() == Err.WRONG_LOCK
    assert PhoneSession(t.encode(), k_t, hello(LockKeys.from_master(bytes(32), b"LOCK0001", 2))).preflight() == \
        Err.WRONG_EPOCH
    assert PhoneSession(b"\x02" + t.encode()[1:], k_t, hello()).preflight() == Err.UNSUPPORTED_VERSION
    with pytest.raises(ProtocolError):
        PhoneSession(t.encode()[:40], k_t, hello())


# ---- every single-byte change is detected ----

@given(masters, lock_ids, st.data())
@settings(max_examples=60)
def test_any_single_byte_change_of_an_auth_is_refused(master, lock_id, data):
    keys = LockKeys.from_master(master, lock_id, 1)
    t, k_t = issue_ticket(keys, **SHIFT)
    h = hello(keys)
    ps = PhoneSession(t.encode(), k_t, h, NP)
    op = data.draw(st.sampled_from([Op.UNLOCK, Op.TIME_SET]))
    args = time_token(keys, NL, NOW) if op == Op.TIME_SET else b""
    good = ps.auth(op, args)
    lock_check_auth(keys, h, good)
    i = data.draw(st.integers(0, len(good) - 1))  # bytes 2..42 are the ticket
    bad = bytearray(good)
    bad[i] ^= data.draw(st.integers(1, 255))
    with pytest.raises(ProtocolError) as e:
        lock_check_auth(keys, h, bytes(bad))
    assert e.value.code in (Err.BAD_MAC, Err.MALFORMED, Err.UNSUPPORTED_VERSION, Err.WRONG_LOCK, Err.WRONG_EPOCH,
                            Err.UNKNOWN_TYPE)


@given(st.data())
@settings(max_examples=100)
def test_any_single_byte_change_of_a_ticket_is_refused(data):
    """The phone changes its own ticket (rights, validity, user, ...) and keeps its K_T."""
    t, k_t = issue_ticket(KEYS, **SHIFT)
    raw = bytearray(t.encode())
    raw[data.draw(st.integers(0, 40))] ^= data.draw(st.integers(1, 255))
    ps = PhoneSession(bytes(raw), k_t, hello(), NP)
    with pytest.raises(ProtocolError) as e:
        lock_check_auth(KEYS, hello(), ps.auth(Op.UNLOCK))
    assert e.value.code in (Err.BAD_MAC, Err.MALFORMED, Err.UNSUPPORTED_VERSION, Err.WRONG_LOCK, Err.WRONG_EPOCH)


@given(st.data())
@settings(max_examples=100)
def test_any_single_byte_change_of_an_op_is_refused(data):
    ps, h = connect()
    _, _, k_s = lock_check_auth(KEYS, h, ps.auth(Op.NOP))
    ps.read(lock_result(k_s, 0, Op.NOP, Err.OK))
    good = ps.op(Op.DENY_UPDATE, deny_list(KEYS, 9, [(DenyKind.USER, 5, NOW)]))
    assert lock_check_op(k_s, 1, good).ctr == 1
    bad = bytearray(good)
    bad[data.draw(st.integers(0, len(good) - 1))] ^= data.draw(st.integers(1, 255))
    with pytest.raises(ProtocolError) as e:
        lock_check_op(k_s, 1, bytes(bad))
    assert e.value.code in (Err.BAD_MAC, Err.BAD_COUNTER, Err.MALFORMED, Err.UNKNOWN_TYPE)


@given(masters, lock_ids, st.data())
@settings(max_examples=60)
def test_any_single_byte_change_of_a_result_is_refused(master, lock_id, data):
    keys = LockKeys.from_master(master, lock_id, 1)
    ps, _ = connect(keys)
    ps.auth(Op.STATUS)
    good = lock_result(ps.session_key, 0, Op.STATUS, Err.OK, STATE.encode())
    bad = bytearray(good)
    bad[data.draw(st.integers(0, len(good) - 1))] ^= data.draw(st.integers(1, 255))
    with pytest.raises(ProtocolError):
        ps.read(bytes(bad))
    assert ps.read(good).payload == STATE.encode()


@given(masters, masters, lock_ids, lock_ids)
@settings(max_examples=60)
def test_a_ticket_for_lock_a_never_authenticates_at_lock_b(ma, mb, la, lb):
    assume((ma, la) != (mb, lb))
    ka, kb = LockKeys.from_master(ma, la, 1), LockKeys.from_master(mb, lb, 1)
    t, k_t = issue_ticket(ka, **SHIFT)
    h = hello(kb)
    auth = PhoneSession(t.encode(), k_t, h, NP).auth(Op.UNLOCK)
    with pytest.raises(ProtocolError) as e:
        lock_check_auth(kb, h, auth)
    assert e.value.code == (Err.WRONG_LOCK if la != lb else Err.BAD_MAC)
    # even a ticket rewritten to name lock B, with lock A's key
    renamed = Ticket(**{**t.__dict__, "lock_id": lb}).encode()
    with pytest.raises(ProtocolError) as e:
        lock_check_auth(kb, h, PhoneSession(renamed, k_t, h, NP).auth(Op.UNLOCK))
    assert e.value.code == Err.BAD_MAC


def test_replayed_auth_fails_on_a_new_connection():
    ps, h = connect()
    auth = ps.auth(Op.UNLOCK)
    lock_check_auth(KEYS, h, auth)
    with pytest.raises(ProtocolError) as e:
        lock_check_auth(KEYS, hello(nonce=b"\x33" * 16), auth)
    assert e.value.code == Err.BAD_MAC


# ---- server statements ----

def _head(keys, label):
    return b"LK1/" + label + b"\x00" + keys.lock_id + struct.pack(">I", keys.epoch)


def test_time_token():
    tok = time_token(KEYS, NL, NOW)
    assert tok == struct.pack(">I", NOW) + mac16(KEYS.sv, _head(KEYS, b"time") + NL + struct.pack(">I", NOW))
    assert time_token(KEYS, b"\x12" * 16, NOW) != tok
    with pytest.raises(ValueError):
        time_token(KEYS, NL[:15], NOW)


def test_deny_list():
    entries = [(DenyKind.TICKET, 1001, NOW), (DenyKind.USER, 501, NOW + 1)]
    msg = deny_list(KEYS, 9, entries)
    body = b"\0\0\0\x09\x02" + b"\x01" + struct.pack(">II", 1001, NOW) + b"\x02" + struct.pack(">II", 501, NOW + 1)
    assert msg == body + mac16(KEYS.sv, _head(KEYS, b"deny") + body)
    assert len(deny_list(KEYS, 1, [(DenyKind.USER, 1, NOW)] * 64)) == 5 + 9 * 64 + 16
    for bad in ([(DenyKind.USER, 1, NOW)] * 65, [(3, 1, NOW)], [(0, 1, NOW)]):
        with pytest.raises(ValueError):
            deny_list(KEYS, 1, bad)
    with pytest.raises(ValueError):
        deny_list(KEYS, 0, [])


def test_rekey():
    new_master = bytes(range(100, 132))
    msg = rekey_message(KEYS, new_master)
    assert isinstance(msg, bytes) and len(msg) == 60 and msg[:4] == b"\0\0\0\x02"
    assert aes_key_unwrap(KEYS.wr, msg[4:44]) == new_master
    assert msg[44:] == mac16(KEYS.sv, _head(KEYS, b"rekey") + msg[:44])
    assert rekey_message(KEYS, new_master, 9)[:4] == b"\0\0\0\x09"
    same, new = rekey_pair(KEYS, new_master)
    assert same == msg and new == LockKeys.from_master(new_master, KEYS.lock_id, 2)
    assert all(getattr(KEYS, k) != getattr(new, k) for k in ("tk", "jm", "je", "wr", "sv"))
    with pytest.raises(ProtocolError) as e:
        aes_key_unwrap(new.wr, msg[4:44])
    assert e.value.code == Err.UNWRAP_FAILED
    for epoch in (1, 0, 2**32):
        with pytest.raises(ValueError):
            rekey_message(KEYS, new_master, epoch)
    with pytest.raises(ValueError):
        rekey_message(KEYS, new_master[:16])
    proof = rekey_proof(new)
    assert proof == b"\0\0\0\x02" + mac16(new.sv, b"LK1/rekey-proof\x00" + KEYS.lock_id + b"\0\0\0\x02")
    assert verify_rekey_proof(new, proof) and not verify_rekey_proof(KEYS, proof)
    assert not verify_rekey_proof(new, proof[:19]) and not verify_rekey_proof(new, b"\0\0\0\x03" + proof[4:])


def test_journal_ack():
    chain = bytes(range(8))
    ack = journal_ack(KEYS, 12, chain)
    assert ack == b"\0\0\0\x0c" + chain + mac16(KEYS.sv, _head(KEYS, b"ack") + b"\0\0\0\x0c" + chain)
    assert len(ack) == 28
    with pytest.raises(ValueError):
        journal_ack(KEYS, 12, chain[:7])


def test_issue_ticket():
    t, k_t = issue_ticket(KEYS, **SHIFT)
    assert t.lock_id == KEYS.lock_id and t.epoch == KEYS.epoch and k_t == ticket_key(KEYS, t.encode())
    with pytest.raises(ProtocolError) as e:
        issue_ticket(KEYS, **{**SHIFT, "rights": 0x10})
    assert e.value.code == Err.MALFORMED


def test_a_refusal_says_whether_the_lock_said_it():
    """ProtocolError.origin: a MACed status is the lock's ("lock"), an answer failing the
    phone's check is "local" (forged or corrupted), an ERROR frame is an unauthenticated "claim"."""
    # the lock's own BAD_MAC status (e.g. a server statement it could not verify), MACed
    ps, _ = connect()
    ps.auth(Op.STATUS)
    with pytest.raises(ProtocolError) as e:
        ps.read(lock_result(ps.session_key, 0, Op.STATUS, Err.BAD_MAC))
    assert e.value.code == Err.BAD_MAC and e.value.origin == "lock"
    # the same code from a forged answer: its MAC fails here
    ps, _ = connect()
    ps.auth(Op.STATUS)
    forged = bytearray(lock_result(ps.session_key, 0, Op.STATUS, Err.OK, STATE.encode()))
    forged[-1] ^= 1
    with pytest.raises(ProtocolError) as e:
        ps.read(bytes(forged))
    assert e.value.code == Err.BAD_MAC and e.value.origin == "local"
    # a genuine-looking answer under another lock's session key is local too
    other, _ = connect(LockKeys.from_master(b"\x01" * 32, b"LOCK0002", 1))
    other.auth(Op.STATUS)
    with pytest.raises(ProtocolError) as e:
        ps.read(lock_result(other.session_key, 0, Op.STATUS, Err.OK, STATE.encode()))
    assert e.value.code == Err.BAD_MAC and e.value.origin == "local"
    # an ERROR frame: whoever sent it, it carries no MAC
    ps, _ = connect()
    ps.auth(Op.STATUS)
    with pytest.raises(ProtocolError) as e:
        ps.read(ErrorFrame(Err.EXPIRED, 0).encode())
    assert e.value.code == Err.EXPIRED and e.value.origin == "claim" and ps.closed
