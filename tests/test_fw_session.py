"""The lock's session state machine (firmware/lib/locksession.py) under the real
MicroPython, driven through tests/mpy/fwtest.scenario with an in-memory lock
(tests/mpy/fakelock.py). Phones' messages are built inside MicroPython; the
lock's answers are re-checked here with an independent CPython reference."""

from __future__ import annotations

import hashlib
import struct

import pytest
from hypothesis import given, settings, strategies as st

import fwref
from fwref import LOCK_ID, MASTER, MASTER2, NONCE_L, NONCE_P, NOW, u32

pytestmark = pytest.mark.mpy

# codes (§4.7)
OK, MALFORMED, UNSUPPORTED, UNKNOWN_TYPE, UNKNOWN_OP, TOO_LARGE = 0, 1, 2, 3, 4, 5
WRONG_LOCK, WRONG_EPOCH, BAD_MAC, NOT_YET_VALID, EXPIRED, OUTSIDE, REVOKED = 7, 8, 9, 10, 11, 12, 13
NO_RIGHT, LOCKED_OUT, BAD_COUNTER, NO_SESSION, TIME_UNCERTAIN, STALE = 14, 15, 16, 17, 18, 19
CAPACITY, NOT_FOUND, MECHANISM, INTERNAL = 21, 22, 23, 29
# ops
NOP, UNLOCK, LOCK, STATUS = 0, 1, 2, 3
J_READ, J_ACK, TIME_SET, DENY, REKEY, CONFIG = 0x10, 0x11, 0x12, 0x13, 0x14, 0x15
# bolt
B_LOCKED, B_UNLOCKED, B_JAMMED = 1, 3, 5

NONCES = [bytes([0xA0 + i]) * 16 for i in range(8)]
NONCES[0] = NONCE_L
K1 = fwref.keys(MASTER, LOCK_ID, 1)


def run(fw, steps, **cfg):
    c = {"master": MASTER, "lock_id": LOCK_ID, "now": NOW, "nonces": NONCES, "ticket_now": NOW}
    c.update(cfg)
    out = fw.call("fwtest.scenario", c, steps)
    return out["steps"], out["state"]


def hello():
    return {"do": "hello"}


def auth(op=NOP, args=b"", **kw):
    d = {"do": "auth", "op": op, "args": args}
    d.update(kw)
    return d


def op(o, args=b"", **kw):
    d = {"do": "op", "op": o, "args": args}
    d.update(kw)
    return d


def is_result(r, status, ctr=None):
    assert r["type"] == 3, r
    assert r["mac_ok"] is True, r
    assert r["status"] == status, r
    if ctr is not None:
        assert r["ctr"] == ctr
    return True


def is_error(r, code, detail=None):
    assert r["type"] == 5, r
    assert len(r["resp"]) == 6
    assert r["code"] == code, r
    if detail is not None:
        assert r["detail"] == detail, r
    return True


def no_actuation(state):
    assert state["actuations"] == []
    assert state["bolt"] == B_LOCKED


# ---- the good path ----

def test_unlock_actuates_once_and_bytes_match_reference(fw):
    steps, st = run(fw, [hello(), auth(UNLOCK)])
    h, r = steps[0]["hello"], steps[1]
    # HELLO layout (§4.1): state block shows the clock, bolt locked, journal head 1 (PROVISIONED)
    state = struct.pack(">IBBBHIII", NOW, 0, B_LOCKED, 80, 3000, 1, 0, 0)
    assert h == b"\x01\x01\x01" + LOCK_ID + u32(1) + NONCE_L + b"\x00\x01\x00" + state
    is_result(r, OK, ctr=0)
    assert r["op"] == UNLOCK and r["payload"] == bytes([B_UNLOCKED])
    # the RESULT, byte for byte, from the CPython reference
    ks = fwref.session_key(K1["tk"], fwref.ticket(), NONCE_L, NONCE_P)
    body = b"\x03" + u32(0) + b"\x01\x00\x03"
    assert r["resp"] == body + fwref.fmac(ks, 0x4C, 0, body)
    assert st["actuations"] == [[UNLOCK, 77]] and st["bolt"] == B_UNLOCKED
    assert st["established"] is True and st["closed"] is False
    assert st["failures"] == [] and st["oks"] == [77]


def test_auth_reference_bytes_accepted(fw):
    # an AUTH built entirely by the CPython reference opens the lock
    t = fwref.ticket()
    steps, _ = run(fw, [hello()])
    h = steps[0]["hello"]
    ks = fwref.session_key(K1["tk"], t, NONCE_L, NONCE_P)
    body = b"\x02\x01" + t + NONCE_P + b"\x01"
    msg = body + fwref.fmac(ks, 0x50, 0, hashlib.sha256(h).digest() + body)
    out = fw.call("fwtest.exchange", {"master": MASTER, "lock_id": LOCK_ID, "now": NOW,
                                      "nonces": [NONCE_L]}, [msg])
    assert out["hello"] == h
    body = b"\x03" + u32(0) + b"\x01\x00\x03"
    assert out["responses"] == [body + fwref.fmac(ks, 0x4C, 0, body)]
    assert out["state"]["actuations"] == [[UNLOCK, 77]]


# ---- ticket refusals (§2.4, §4.2) ----

MON, TUE, WED = 1, 2, 4  # NOW is Tuesday 22:13 UTC


@pytest.mark.parametrize("fields,answer,code", [
    (dict(not_before=NOW - 7200, not_after=NOW), "result", EXPIRED),
    (dict(not_before=NOW - 7200, not_after=NOW - 1), "result", EXPIRED),
    (dict(not_before=NOW + 61, not_after=NOW + 3600), "result", NOT_YET_VALID),
    (dict(win_days=WED, win_start=0, win_end=1440), "result", OUTSIDE),
    (dict(win_days=TUE, win_start=8 * 60, win_end=22 * 60), "result", OUTSIDE),
    (dict(win_days=MON, win_start=22 * 60, win_end=6 * 60), "result", OUTSIDE),   # Mon 22:00-Tue 06:00
    (dict(win_days=TUE, win_start=22 * 60 + 14, win_end=6 * 60), "result", OUTSIDE),
    (dict(lock_id=b"\x99" * 8), "error", WRONG_LOCK),
    (dict(user_id=0), "error", MALFORMED),
    (dict(rights=0x10), "error", MALFORMED),
    (dict(format=2), "error", UNSUPPORTED),
])
def test_ticket_refused_without_actuation(fw, fields, answer, code):
    steps, st = run(fw, [hello(), auth(UNLOCK, ticket=fields), op(UNLOCK)])
    r = steps[1]
    if answer == "result":
        is_result(r, code, ctr=0)
        assert r["payload"] == b"" and r["op"] == UNLOCK
    else:
        is_error(r, code)
    is_error(steps[2], NO_SESSION)   # the connection's protocol state has ended
    no_actuation(st)
    assert st["established"] is False and st["closed"] is True
    assert [f[0] for f in st["failures"]] == [code]


@pytest.mark.parametrize("fields", [
    dict(not_before=NOW + 60, not_after=NOW + 3600),                     # within SKEW
    dict(not_before=NOW - 10, not_after=NOW + 1),
    dict(win_days=TUE, win_start=22 * 60, win_end=6 * 60),               # wraps midnight
    dict(win_days=TUE, win_start=22 * 60 + 13, win_end=22 * 60 + 14),
    dict(win_days=TUE, win_start=600, win_end=600),                      # whole day from 10:00
    dict(win_days=WED, win_start=0, win_end=1440, tz_offset=120),        # Wed 00:13 at UTC+2
    dict(win_days=TUE, win_start=17 * 60, win_end=18 * 60, tz_offset=-300),
])
def test_ticket_accepted(fw, fields):
    steps, st = run(fw, [hello(), auth(UNLOCK, ticket=fields)])
    is_result(steps[1], OK)
    assert st["actuations"] == [[UNLOCK, 77]]


def test_midnight_window_next_morning(fw):
    # Tue 22:00-06:00 with only Tuesday set: still open at Wed 03:00, closed Wed 07:00
    w = dict(win_days=TUE, win_start=22 * 60, win_end=6 * 60,
             not_before=NOW - 600, not_after=NOW + 86400)
    at3 = 4 * 3600 + 47 * 60
    steps, st = run(fw, [{"do": "advance", "s": at3}, hello(), auth(UNLOCK, ticket=w),
                         {"do": "advance", "s": 4 * 3600}, hello(), auth(UNLOCK, ticket=w)], threshold=99)
    is_result(steps[2], OK)
    is_result(steps[5], OUTSIDE)
    assert len(st["actuations"]) == 1


@pytest.mark.parametrize("deny,code", [
    ([[1, 77, NOW + 999]], REVOKED),
    ([[2, 5, NOW + 999]], REVOKED),
    ([[1, 5, NOW + 999], [2, 77, NOW + 999]], OK),   # kinds are not interchangeable
    ([[1, 77, NOW]], OK),                            # expired entry, clock certain
])
def test_deny_list_at_auth(fw, deny, code):
    steps, st = run(fw, [hello(), auth(UNLOCK)], deny=deny, deny_version=3)
    is_result(steps[1], code)
    assert len(st["actuations"]) == (1 if code == OK else 0)


def test_wrong_epoch_and_bad_mac(fw):
    steps, st = run(fw, [
        hello(), auth(UNLOCK, ticket={"epoch": 2}, tk_master=MASTER, tk_epoch=2),
        hello(), auth(UNLOCK, tk_master=MASTER2),                       # ticket key of another lock
        hello(), auth(UNLOCK, version=2),
        hello(), auth(UNLOCK, version=0),
        hello(), auth(UNLOCK, mac_hello=b"\x01" * 55),                 # MAC over another HELLO
        hello(), auth(UNLOCK, truncate=75),
        hello(), auth(UNLOCK, extend=b"\x00"),
    ], threshold=99)
    is_error(steps[1], WRONG_EPOCH, 1)
    is_error(steps[3], BAD_MAC)
    is_error(steps[5], UNSUPPORTED, 0x0101)
    is_error(steps[7], UNSUPPORTED, 0x0101)
    is_error(steps[9], BAD_MAC)
    is_error(steps[11], MALFORMED)
    is_error(steps[13], BAD_MAC)
    no_actuation(st)
    assert [f[0] for f in st["failures"]] == [WRONG_EPOCH, BAD_MAC, UNSUPPORTED, UNSUPPORTED, BAD_MAC,
                                              MALFORMED, BAD_MAC]


def expected_flip_codes(i):
    if i == 0:
        return {UNKNOWN_TYPE, NO_SESSION, MALFORMED}
    if i == 1:
        return {UNSUPPORTED}
    if i == 2:
        return {UNSUPPORTED}
    if 3 <= i < 11:
        return {WRONG_LOCK}
    if 11 <= i < 15:
        return {WRONG_EPOCH}
    if 15 <= i < 43:
        return {MALFORMED, BAD_MAC}   # field rules, else K_T changes
    return {BAD_MAC}                  # nonce_P, op, mac


@pytest.mark.parametrize("xor", [0x01, 0x80, 0xFF])
def test_every_single_byte_flip_of_auth_is_refused(fw, xor):
    for lo in range(0, 76, 19):
        steps = []
        for i in range(lo, lo + 19):
            steps += [hello(), auth(UNLOCK, flip=i, xor=xor)]
        steps += [hello(), auth(UNLOCK)]   # control: the unflipped AUTH works
        out, st = run(fw, steps, threshold=10_000)
        for i in range(lo, lo + 19):
            r = out[2 * (i - lo) + 1]
            assert r["type"] == 5, (i, r)
            assert r["code"] in expected_flip_codes(i), (i, r)
        is_result(out[-1], OK)
        assert st["actuations"] == [[UNLOCK, 77]]


def test_every_single_byte_flip_of_op_is_refused(fw):
    steps = []
    for i in range(22):
        steps += [hello(), auth(NOP), op(UNLOCK, flip=i, xor=0x04)]
    out, st = run(fw, steps, threshold=10_000)
    for i in range(22):
        r = out[3 * i + 2]
        assert r["type"] == 5, (i, r)
        want = {0: {UNKNOWN_TYPE, NO_SESSION, MALFORMED}}.get(i, {BAD_COUNTER} if 1 <= i < 5 else {BAD_MAC})
        assert r["code"] in want, (i, r)
    no_actuation(st)


# ---- replay, counters, session state (§4.2, §4.3) ----

def test_replayed_auth_fails_on_new_connection(fw):
    steps, st = run(fw, [hello(), auth(UNLOCK), hello(), {"do": "replay"}])
    is_result(steps[1], OK)
    assert steps[0]["hello"][15:31] != steps[2]["hello"][15:31]
    is_error(steps[3], BAD_MAC)
    assert st["actuations"] == [[UNLOCK, 77]]


def test_second_auth_on_same_connection_refused(fw):
    steps, st = run(fw, [hello(), auth(UNLOCK), {"do": "replay"}, op(NOP, ctr=1)])
    is_result(steps[1], OK)
    is_error(steps[2], NO_SESSION)
    is_error(steps[3], NO_SESSION)
    assert st["actuations"] == [[UNLOCK, 77]] and st["closed"] is True


def test_op_counters(fw):
    steps, st = run(fw, [hello(), auth(NOP), op(STATUS), op(LOCK), op(UNLOCK), {"do": "replay"},
                         op(NOP, ctr=5)])
    is_result(steps[1], OK, ctr=0)
    is_result(steps[2], OK, ctr=1)
    assert len(steps[2]["payload"]) == 21 and steps[2]["payload"][:4] == u32(NOW)
    is_result(steps[3], OK, ctr=2)
    is_result(steps[4], OK, ctr=3)
    is_error(steps[5], BAD_COUNTER)       # replayed OP
    is_error(steps[6], NO_SESSION)        # session ended
    assert st["actuations"] == [[LOCK, 77], [UNLOCK, 77]]


@pytest.mark.parametrize("bad", [dict(ctr=2), dict(ctr=0), dict(ctr=0xFFFFFFFF), dict(ks=b"\x00" * 32),
                                 dict(flip=21)])
def test_bad_op_ends_session(fw, bad):
    steps, st = run(fw, [hello(), auth(NOP), op(UNLOCK, **bad), op(UNLOCK, ctr=1)])
    is_error(steps[2], BAD_COUNTER if "ctr" in bad else BAD_MAC)
    is_error(steps[3], NO_SESSION)
    no_actuation(st)
    assert st["closed"] is True and st["established"] is False


def test_no_session_paths(fw):
    steps, st = run(fw, [op(UNLOCK, ctr=1), hello(), op(UNLOCK, ctr=1), auth(UNLOCK)])
    is_error(steps[0], NO_SESSION)
    is_error(steps[2], NO_SESSION)
    is_error(steps[3], NO_SESSION)   # an ERROR ends the connection: a new HELLO is needed
    no_actuation(st)
    steps, st = run(fw, [auth(UNLOCK)])
    is_error(steps[0], NO_SESSION)
    no_actuation(st)


@pytest.mark.parametrize("msg,code", [
    (b"", MALFORMED), (b"\x01", UNKNOWN_TYPE), (b"\x03" + bytes(30), UNKNOWN_TYPE),
    (b"\x05" + bytes(5), UNKNOWN_TYPE), (b"\x00", UNKNOWN_TYPE), (b"\xff" * 40, UNKNOWN_TYPE),
    (b"\x02" + bytes(1024), TOO_LARGE), (b"\x02" + bytes(74), MALFORMED),
    (b"\x09" + bytes(1024), TOO_LARGE), (b"\x04" + bytes(1024), NO_SESSION),
])
def test_odd_messages(fw, msg, code):
    steps, st = run(fw, [hello(), {"do": "raw", "msg": msg}])
    is_error(steps[1], code)
    no_actuation(st)
    assert st["closed"] is True


def test_unknown_op_and_bad_args_keep_session(fw):
    steps, st = run(fw, [hello(), auth(0x7F), op(0x04), op(NOP, b"\x00"), op(UNLOCK, b"\x00"),
                         op(STATUS, b"x"), op(J_READ, b"\x00" * 4), op(CONFIG, b"\x01\x00"), op(UNLOCK)])
    is_result(steps[1], UNKNOWN_OP, 0)
    assert st["oks"] == [77]
    is_result(steps[2], UNKNOWN_OP, 1)
    for i in range(3, 8):
        is_result(steps[i], MALFORMED, i - 1)
    is_result(steps[8], OK, 7)
    assert st["actuations"] == [[UNLOCK, 77]]


# ---- rights (§2.3) ----

def test_rights(fw):
    steps, st = run(fw, [hello(), auth(UNLOCK, ticket={"rights": 2}), op(LOCK), op(J_READ, u32(1) + b"\x01"),
                         op(CONFIG, b"\x01"), op(STATUS), op(NOP)])
    is_result(steps[1], NO_RIGHT)
    assert st["established"] is True
    is_result(steps[2], OK)
    is_result(steps[3], NO_RIGHT)
    is_result(steps[4], NO_RIGHT)
    is_result(steps[5], OK)
    is_result(steps[6], OK)
    assert st["actuations"] == [[LOCK, 77]]
    steps, st = run(fw, [hello(), auth(LOCK, ticket={"rights": 1}), op(UNLOCK)])
    is_result(steps[1], NO_RIGHT)
    is_result(steps[2], OK)
    assert st["actuations"] == [[UNLOCK, 77]]
    steps, st = run(fw, [hello(), auth(UNLOCK, ticket={"rights": 0}), op(LOCK)])
    is_result(steps[1], NO_RIGHT)
    is_result(steps[2], NO_RIGHT)
    no_actuation(st)


# ---- rate limiting (§7) ----

def test_lockout(fw):
    steps, st = run(fw, [hello(), auth(UNLOCK), hello(), {"do": "raw", "msg": b"\x02"},
                         {"do": "advance", "s": 30}, hello(), auth(UNLOCK)], lockout=30)
    is_error(steps[1], LOCKED_OUT, 30)
    is_error(steps[3], LOCKED_OUT, 30)   # check 1 precedes the length check
    is_result(steps[6], OK)
    assert st["failures"] == [] and st["actuations"] == [[UNLOCK, 77]]


def test_failures_lock_out(fw):
    bad = [hello(), auth(UNLOCK, tk_master=MASTER2)] * 5
    steps, st = run(fw, bad + [hello(), auth(UNLOCK), {"do": "advance", "s": 60}, hello(), auth(UNLOCK)])
    for i in range(5):
        is_error(steps[2 * i + 1], BAD_MAC)
    is_error(steps[11], LOCKED_OUT, 60)
    is_result(steps[14], OK)
    assert len(st["failures"]) == 5 and st["actuations"] == [[UNLOCK, 77]]


# ---- time-uncertain locks (§2.5) ----

LONG = dict(not_before=NOW - 86400, not_after=NOW + 86400, issued_at=NOW - 86400)


def test_uncertain_raises_clock_and_short_ticket_unlocks(fw):
    steps, st = run(fw, [hello(), auth(UNLOCK)], uncertain=True, now=NOW - 5000)
    h = steps[0]["hello"]
    assert h[34:38] == u32(NOW - 5000) and h[38] & 1   # flag TIME_UNCERTAIN
    is_result(steps[1], OK)
    assert st["raised"] == [NOW - 600] and st["clock"] == NOW - 600 and st["uncertain"] is True
    assert st["actuations"] == [[UNLOCK, 77]]


def test_uncertain_lock_never_moves_clock_back(fw):
    steps, st = run(fw, [hello(), auth(UNLOCK, ticket={"issued_at": NOW - 9000})], uncertain=True)
    is_result(steps[1], OK)
    assert st["clock"] == NOW and st["raised"] == [NOW - 9000]


def test_certain_lock_ignores_issued_at(fw):
    steps, st = run(fw, [hello(), auth(UNLOCK, ticket={"issued_at": NOW + 500})])
    is_result(steps[1], OK)
    assert st["raised"] == [] and st["clock"] == NOW


def test_uncertain_long_ticket(fw):
    tok = {"stmt": "time", "time": NOW + 5}
    steps, st = run(fw, [hello(), auth(UNLOCK, ticket=LONG), op(J_READ, u32(1) + b"\x01"),
                         op(CONFIG, b"\x01"), op(LOCK), op(NOP), op(TIME_SET, tok), op(UNLOCK),
                         op(CONFIG, b"\x01")], uncertain=True, now=NOW - 100)
    is_result(steps[1], TIME_UNCERTAIN)
    assert st["established"] is True
    is_result(steps[2], TIME_UNCERTAIN)
    is_result(steps[3], TIME_UNCERTAIN)
    is_result(steps[4], OK)                    # LOCK is always allowed
    is_result(steps[5], OK)
    is_result(steps[6], OK)
    assert steps[6]["payload"] == u32(NOW + 5)
    is_result(steps[7], OK)                    # certain now
    is_result(steps[8], OK)
    assert st["actuations"] == [[LOCK, 77], [UNLOCK, 77]] and st["uncertain"] is False


@pytest.mark.parametrize("life,ok", [(43200, True), (43201, False)])
def test_uncertain_lifetime_limit(fw, life, ok):
    t = dict(not_before=NOW - 600, not_after=NOW - 600 + life)
    steps, st = run(fw, [hello(), auth(UNLOCK, ticket=t)], uncertain=True)
    is_result(steps[1], OK if ok else TIME_UNCERTAIN)
    assert len(st["actuations"]) == (1 if ok else 0)


def test_expired_ticket_caught_once_time_is_known(fw):
    # the documented risk of §2.5: an uncertain lock believes a short ticket that
    # really expired; a relayed time token ends that within the same session
    t = dict(not_before=NOW - 7200, not_after=NOW - 60, issued_at=NOW - 7200)
    tok = {"stmt": "time", "time": NOW}
    steps, st = run(fw, [hello(), auth(TIME_SET, tok, ticket=t), op(UNLOCK), op(NOP)],
                    uncertain=True, now=NOW - 3600)
    is_result(steps[1], OK)
    is_result(steps[2], EXPIRED)
    is_error(steps[3], NO_SESSION)
    no_actuation(st)


def test_time_token_bound_to_connection(fw):
    other = {"stmt": "time", "time": NOW + 50, "nonce": NONCES[3]}
    steps, st = run(fw, [hello(), auth(NOP), op(TIME_SET, other),
                         op(TIME_SET, {"stmt": "time", "time": NOW + 50, "master": MASTER2}),
                         op(TIME_SET, {"stmt": "time", "time": NOW + 50}), {"do": "replay"},
                         hello(), auth(NOP), {"do": "raw", "msg": b""}], uncertain=True, now=NOW)
    is_result(steps[2], BAD_MAC)
    is_result(steps[3], BAD_MAC)
    is_result(steps[4], OK)
    assert st["time_sets"] == [NOW + 50] and st["uncertain"] is False
    is_error(steps[5], BAD_COUNTER)


def test_time_token_replayed_on_new_connection(fw):
    tok_first = {"stmt": "time", "time": NOW + 50, "nonce": NONCES[0]}
    steps, st = run(fw, [hello(), auth(NOP), hello(), auth(TIME_SET, tok_first)], uncertain=True)
    is_result(steps[3], BAD_MAC)
    assert st["uncertain"] is True and st["time_sets"] == []


def test_time_token_never_moves_clock_back(fw):
    steps, st = run(fw, [hello(), auth(TIME_SET, {"stmt": "time", "time": NOW - 1000})], uncertain=True)
    is_result(steps[1], OK)
    assert steps[1]["payload"] == u32(NOW) and st["clock"] == NOW and st["uncertain"] is False


# ---- deny list (§5.2) ----

def test_deny_update(fw):
    d6 = {"stmt": "deny", "version": 6, "entries": [[1, 999, NOW + 100], [2, 1234, NOW + 100]]}
    steps, st = run(fw, [
        hello(), auth(DENY, d6), op(DENY, d6),
        op(DENY, {"stmt": "deny", "version": 4, "entries": []}),
        op(DENY, {"stmt": "deny", "version": 7, "entries": [], "master": MASTER2}),
        op(DENY, {"stmt": "deny", "version": 7, "entries": [], "epoch": 2, "master": MASTER}),
        op(DENY, {"stmt": "deny", "version": 7, "entries": [[1, i + 1, NOW + 9] for i in range(65)]}),
        op(DENY, {"stmt": "deny", "version": 7, "entries": [[3, 1, NOW + 9]]}),
        op(DENY, b"\x00" * 20),
        op(UNLOCK),
    ], deny_version=5)
    is_result(steps[1], OK)
    assert steps[1]["payload"] == u32(6)
    is_result(steps[2], STALE)     # equal version
    is_result(steps[3], STALE)     # older
    is_result(steps[4], BAD_MAC)
    is_result(steps[5], BAD_MAC)   # another epoch's K_sv
    is_result(steps[6], CAPACITY)
    is_result(steps[7], MALFORMED)
    is_result(steps[8], MALFORMED)
    is_result(steps[9], OK)
    assert st["deny_version"] == 6 and st["deny"] == [[1, 999, NOW + 100], [2, 1234, NOW + 100]]


def test_deny_update_revokes_running_session(fw):
    d = {"stmt": "deny", "version": 1, "entries": [[2, 5, NOW + 100]]}
    steps, st = run(fw, [hello(), auth(DENY, d), op(UNLOCK), op(NOP), hello(), auth(UNLOCK)])
    is_result(steps[1], OK)
    is_result(steps[2], REVOKED)
    is_error(steps[3], NO_SESSION)
    is_result(steps[5], REVOKED)
    no_actuation(st)


# ---- re-key (§5.3) ----

def test_rekey(fw):
    rk = {"stmt": "rekey", "new_epoch": 2, "new_master": MASTER2}
    new_ticket = dict(epoch=2)
    steps, st = run(fw, [
        hello(), auth(NOP), op(REKEY, rk), op(NOP),
        hello(), auth(UNLOCK),                                                       # old epoch
        hello(), auth(UNLOCK, ticket=new_ticket, tk_master=MASTER2, tk_epoch=2),
        op(REKEY, fwref.rekey_args(K1, 1, 2, MASTER2)),                             # replayed
        op(REKEY, {"stmt": "rekey", "new_epoch": 2, "new_master": MASTER}),
        op(REKEY, {"stmt": "rekey", "new_epoch": 3, "new_master": MASTER, "master": MASTER, "epoch": 2}),
    ], threshold=99)
    is_result(steps[2], OK, ctr=1)
    assert steps[2]["payload"] == fwref.rekey_proof(MASTER2, 2)
    is_error(steps[3], NO_SESSION)   # the session ended with the old key
    assert steps[4]["hello"][11:15] == u32(2)
    is_error(steps[5], WRONG_EPOCH, 2)
    is_result(steps[7], OK)
    is_result(steps[8], STALE)
    is_result(steps[9], STALE)
    is_result(steps[10], BAD_MAC)    # MACed under another master's K_sv(2)
    assert st["epoch"] == 2 and st["actuations"] == [[UNLOCK, 77]]


def test_rekey_refusals_keep_epoch(fw):
    good = fwref.rekey_args(K1, 1, 2, MASTER2)
    bad_mac = good[:-1] + bytes([good[-1] ^ 1])
    steps, st = run(fw, [hello(), auth(REKEY, bad_mac), op(REKEY, good[:59]),
                         op(REKEY, {"stmt": "rekey", "new_epoch": 1, "new_master": MASTER2}), op(NOP)])
    is_result(steps[1], BAD_MAC)
    is_result(steps[2], MALFORMED)
    is_result(steps[3], STALE)
    is_result(steps[4], OK)
    assert st["epoch"] == 1


# ---- journal (§6) ----

def test_journal_read_and_ack(fw):
    steps, st = run(fw, [
        hello(), auth(UNLOCK), {"do": "append", "event": 0x08},
        op(J_READ, u32(1) + b"\x10"),                                  # 3
        op(J_ACK, {"stmt": "ack", "seq": 2}),
        op(J_READ, u32(1) + b"\x10"),                                  # 5
        op(J_ACK, {"stmt": "ack", "seq": 1, "chain": b"\x00" * 8}),     # at or below acked: OK
        op(J_ACK, {"stmt": "ack", "seq": 99, "chain": b"\x00" * 8}),
        op(J_ACK, {"stmt": "ack", "seq": 3, "chain": b"\x00" * 8}),
        op(J_ACK, {"stmt": "ack", "seq": 3, "master": MASTER2}),
        op(J_READ, u32(1) + b"\x00"), op(J_READ, u32(1) + b"\x11"),    # 10, 11
        op(J_READ, u32(50) + b"\x01"),                                 # 12
        op(J_ACK, b"\x00" * 27),
    ])
    is_result(steps[3], OK)
    epoch, first, head, prev, recs = fwref.open_chunk(K1, steps[3]["payload"])
    assert (epoch, first, head, prev) == (1, 1, 3, fwref.chain_genesis(K1["jm"]))
    assert fwref.verify_chain(lambda s: K1["jm"], prev, recs)
    assert [r[8] for r in recs] == [0x13, 0x02, 0x08]                  # PROVISIONED, UNLOCK, BUTTON
    assert struct.unpack(">II", recs[1][12:20]) == (5, 77)
    is_result(steps[4], OK)
    assert steps[4]["payload"] == u32(2)
    # acknowledged records are gone; the chunk starts after them with the right prev_chain
    epoch, first, head, prev, recs2 = fwref.open_chunk(K1, steps[5]["payload"])
    assert (first, head, prev, recs2) == (3, 3, recs[1][24:], recs[2:])
    is_result(steps[6], OK)
    assert steps[6]["payload"] == u32(2)
    is_result(steps[7], NOT_FOUND)
    is_result(steps[8], BAD_MAC)     # chain differs from the stored record's
    is_result(steps[9], BAD_MAC)     # statement MAC
    is_result(steps[10], MALFORMED)
    is_result(steps[11], MALFORMED)
    epoch, first, head, prev, recs3 = fwref.open_chunk(K1, steps[12]["payload"])
    assert recs3 == [] and first == head + 1 == 4 and prev == recs[2][24:]
    is_result(steps[13], MALFORMED)
    assert st["acked"] == 2


def test_journal_paging_across_rekey(fw):
    steps = [{"do": "append", "event": 0x08, "arg": i} for i in range(40)]
    steps += [hello(), auth(NOP), op(REKEY, {"stmt": "rekey", "new_epoch": 2, "new_master": MASTER2}),
              hello(), auth(NOP, ticket={"epoch": 2}, tk_master=MASTER2, tk_epoch=2)]
    for start in (1, 17, 33, 49):
        steps.append(op(J_READ, u32(start) + b"\x10"))
    out, st = run(fw, steps)
    k2 = fwref.keys(MASTER2, LOCK_ID, 2)
    prev = fwref.chain_genesis(K1["jm"])
    all_recs = []
    for r in out[-4:]:
        is_result(r, OK)
        epoch, first, head, p, recs = fwref.open_chunk(k2, r["payload"])   # current epoch's keys
        assert epoch == 2 and p == prev and first == len(all_recs) + 1
        all_recs += recs
        if recs:
            prev = recs[-1][24:]
    assert len(all_recs) == st["head"]
    rekeyed = [struct.unpack(">I", r[:4])[0] for r in all_recs if r[8] == 0x0F][0]
    assert struct.unpack(">I", all_recs[rekeyed - 1][20:24])[0] == 2
    # chain: epoch 1 keys up to the REKEYED record, which is the first under epoch 2
    assert fwref.verify_chain(lambda s: K1["jm"] if s < rekeyed else k2["jm"],
                              fwref.chain_genesis(K1["jm"]), all_recs)


# ---- config, mechanism, internal errors ----

def test_config(fw):
    steps, st = run(fw, [hello(), auth(CONFIG, b"\x01"), op(CONFIG, b"\x01" + u32(10)),
                         op(CONFIG, b"\x09"), op(CONFIG, b"\x01")])
    is_result(steps[1], OK)
    assert steps[1]["payload"] == b"\x01" + u32(5)
    assert steps[2]["payload"] == b"\x01" + u32(10)
    is_result(steps[3], NOT_FOUND)
    assert steps[3]["payload"] == b""
    assert steps[4]["payload"] == b"\x01" + u32(10)


def test_jam(fw):
    steps, st = run(fw, [{"do": "set", "attrs": {"jam": True}}, hello(), auth(UNLOCK)])
    is_result(steps[2], MECHANISM)
    assert steps[2]["payload"] == b"" and st["bolt"] == B_JAMMED


@pytest.mark.parametrize("where,first_op", [("is_denied", UNLOCK), ("state_block", STATUS),
                                            ("journal_read", J_READ), ("now", UNLOCK)])
def test_internal_error_closes_without_actuation(fw, where, first_op):
    args = u32(1) + b"\x01" if first_op == J_READ else b""
    steps, st = run(fw, [hello(), {"do": "set", "attrs": {"boom": [where]}}, auth(first_op, args),
                         op(UNLOCK)])
    is_error(steps[2], INTERNAL)
    is_error(steps[3], NO_SESSION)
    no_actuation(st)
    assert st["closed"] is True


# ---- anything at all ----

@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(
    st.binary(max_size=120),
    st.tuples(st.sampled_from([2, 4]), st.binary(min_size=20, max_size=140)).map(lambda t: bytes([t[0]]) + t[1]),
), min_size=1, max_size=6))
def test_random_messages_never_actuate(fw, msgs):
    out = fw.call("fwtest.exchange", {"master": MASTER, "lock_id": LOCK_ID, "now": NOW, "nonces": NONCES,
                                      "threshold": 10_000}, msgs)
    for r in out["responses"]:
        assert r[0] in (3, 5)
        if r[0] == 5:
            assert len(r) == 6
    assert out["state"]["actuations"] == []
