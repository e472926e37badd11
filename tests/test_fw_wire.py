"""Firmware message layouts, tickets, transports, server statements and journal
records (lockwire, lockticket, lockfrag, lockmsg, lockrecord) under MicroPython."""

from __future__ import annotations

import binascii
import os
import struct
from datetime import datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives import keywrap
from hypothesis import given, settings, strategies as st

import fwref
from fwref import LOCK_ID, MASTER, NOW, u32

pytestmark = pytest.mark.mpy

MALFORMED, UNSUPPORTED, UNKNOWN_TYPE, TOO_LARGE, FRAGMENT = 1, 2, 3, 5, 6
BAD_MAC, STALE, UNWRAP_FAILED, CAPACITY = 9, 19, 20, 21
OK, NOT_YET_VALID, EXPIRED, OUTSIDE, REVOKED = 0, 10, 11, 12, 13


def err(code, detail=0):
    return ["err", code, detail]


# ---- messages (§4) ----

STATE = struct.pack(">IBBBHIII", NOW, 1, 1, 80, 3000, 9, 4, 2)


def test_state_and_hello_layout(fw):
    assert fw.call("lockwire.encode_state", NOW, 1, 1, 80, 3000, 9, 4, 2) == STATE
    assert fw.call("lockwire.decode_state", STATE) == [NOW, 1, 1, 80, 3000, 9, 4, 2]
    nonce = bytes(range(16))
    hello = fw.call("lockwire.encode_hello", LOCK_ID, 3, nonce, [0, 1, 2], STATE)
    assert hello == b"\x01\x01\x01" + LOCK_ID + u32(3) + nonce + b"\x00\x01\x02" + STATE
    assert len(hello) == 55
    want = [1, 1, LOCK_ID, 3, nonce, [0, 1, 2], STATE]
    assert fw.call("lockwire.decode_hello", hello) == want
    # longer HELLOs (later versions) are read, extra bytes ignored, up to 128
    assert fw.call("lockwire.decode_hello", hello + bytes(73)) == want
    for bad in (hello[:54], hello + bytes(74), b"\x01"):
        assert fw.call("fwtest.call", "lockwire.decode_hello", [bad]) == err(MALFORMED)
    assert fw.call("fwtest.call", "lockwire.decode_hello", [hello + bytes(1000)]) == err(TOO_LARGE)


def test_auth_op_result_error_layout(fw):
    t = fwref.ticket()
    body = fw.call("lockwire.encode_auth_body", 1, t, fwref.NONCE_P, 1, b"")
    assert body == b"\x02\x01" + t + fwref.NONCE_P + b"\x01"
    mac = bytes(range(16))
    assert fw.call("lockwire.decode_auth", body + mac) == [1, t, fwref.NONCE_P, 1, b"", mac]
    assert fw.call("lockwire.decode_auth", body + b"xyz" + mac) == [1, t, fwref.NONCE_P, 1, b"xyz", mac]
    assert fw.call("fwtest.call", "lockwire.decode_auth", [(body + mac)[:75]]) == err(MALFORMED)

    op = fw.call("lockwire.encode_op_body", 7, 0x10, b"\x00\x00\x00\x01\x10")
    assert op == b"\x04" + u32(7) + b"\x10" + b"\x00\x00\x00\x01\x10"
    assert fw.call("lockwire.decode_op", op + mac) == [7, 0x10, b"\x00\x00\x00\x01\x10", mac]
    assert fw.call("fwtest.call", "lockwire.decode_op", [(b"\x04" + bytes(5) + mac)[:21]]) == err(MALFORMED)
    assert fw.call("lockwire.decode_op", b"\x04" + bytes(5) + mac) == [0, 0, b"", mac]

    res = fw.call("lockwire.encode_result_body", 3, 1, 0, b"\x03")
    assert res == b"\x03" + u32(3) + b"\x01\x00\x03"
    assert fw.call("lockwire.decode_result", res + mac) == [3, 1, 0, b"\x03", mac]
    # a failure carries no payload, both ways
    assert fw.call("fwtest.call", "lockwire.encode_result_body", [3, 1, 9, b"\x03"])[0] == "exc"
    bad = b"\x03" + u32(3) + b"\x01\x09\x03" + mac
    assert fw.call("fwtest.call", "lockwire.decode_result", [bad]) == err(MALFORMED)

    e = fw.call("lockwire.encode_error", 15, 42)
    assert e == b"\x05\x0f" + u32(42)
    assert fw.call("lockwire.decode_error", e) == [15, 42]
    for bad in (e[:5], e + b"\x00"):
        assert fw.call("fwtest.call", "lockwire.decode_error", [bad]) == err(MALFORMED)


DECODERS = ["lockwire.decode_hello", "lockwire.decode_auth", "lockwire.decode_op",
            "lockwire.decode_result", "lockwire.decode_error", "lockwire.decode_state",
            "lockticket.parse_ticket", "lockrecord.unpack"]


def test_decoder_type_rules(fw):
    names = DECODERS[:5]
    for name in names:
        for t in (0, 6, 0x7F, 0xFF):
            assert fw.call("fwtest.call", name, [bytes([t]) + bytes(80)]) == err(UNKNOWN_TYPE), name
        assert fw.call("fwtest.call", name, [b""]) == err(MALFORMED)
        assert fw.call("fwtest.call", name, [b"\x09" + bytes(1024)]) == err(TOO_LARGE)
    # a known type given to the wrong decoder is MALFORMED
    assert fw.call("fwtest.call", "lockwire.decode_op", [b"\x02" + bytes(80)]) == err(MALFORMED)
    for name in ("lockwire.decode_auth", "lockwire.decode_op", "lockwire.decode_result"):
        t = {"lockwire.decode_auth": 2, "lockwire.decode_op": 4, "lockwire.decode_result": 3}[name]
        assert fw.call("fwtest.call", name, [bytes([t]) + bytes(1023)])[0] == "ok"
        assert fw.call("fwtest.call", name, [bytes([t]) + bytes(1024)]) == err(TOO_LARGE)


@settings(max_examples=60, deadline=None)
@given(blobs=st.lists(st.one_of(
    st.binary(max_size=200),
    st.tuples(st.integers(0, 7), st.binary(max_size=140)).map(lambda t: bytes([t[0]]) + t[1]),
    st.integers(0, 1100).map(lambda n: bytes([2]) + os.urandom(n)),
), min_size=8, max_size=8))
def test_decoders_raise_only_protoerror(fw, blobs):
    for name in DECODERS:
        for r in fw.call("fwtest.call_many", name, [[b] for b in blobs]):
            assert r[0] in ("ok", "err"), (name, r)


# ---- tickets (§2) ----

def parse(fw, raw):
    return fw.call("fwtest.call", "lockticket.parse_ticket", [raw])


def test_parse_ticket_fields(fw):
    raw = fwref.ticket(win_start=1320, win_end=360, win_days=0x7F, tz_offset=-300)
    r = parse(fw, raw)
    assert r[0] == "ok"
    d = r[1]
    assert d["raw"] == raw and d["lock_id"] == LOCK_ID and d["tz_offset"] == -300
    assert (d["ticket_id"], d["user_id"], d["not_before"], d["not_after"]) == (77, 5, NOW - 600, NOW + 3600)
    assert (d["win_start"], d["win_end"], d["win_days"], d["rights"]) == (1320, 360, 0x7F, 0x0F)


@pytest.mark.parametrize("fields", [
    dict(ticket_id=0), dict(user_id=0), dict(not_before=NOW, not_after=NOW),
    dict(not_before=NOW + 1, not_after=NOW), dict(rights=0x10), dict(rights=0x80),
    dict(win_days=0x80 | 1, win_end=10), dict(win_days=0, win_start=1), dict(win_days=0, win_end=1),
    dict(win_days=0, tz_offset=60), dict(win_days=1, win_start=1440, win_end=10),
    dict(win_days=1, win_start=0, win_end=0x7FFF), dict(win_days=1, win_end=1441),
    dict(win_days=1, win_end=0), dict(win_days=1, win_end=10, tz_offset=1441),
    dict(win_days=1, win_end=10, tz_offset=-1441),
])
def test_ticket_rules_malformed(fw, fields):
    assert parse(fw, fwref.ticket(**fields)) == err(MALFORMED)


def test_ticket_format_and_length(fw):
    assert parse(fw, fwref.ticket(format=2)) == err(UNSUPPORTED, 0x0101)
    assert parse(fw, fwref.ticket(format=0)) == err(UNSUPPORTED, 0x0101)
    raw = fwref.ticket()
    for bad in (raw[:40], raw + b"\x00", b""):
        assert parse(fw, bad) == err(MALFORMED)
    for ok in (dict(win_days=1, win_start=1439, win_end=1440, tz_offset=1440),
               dict(win_days=0x7F, win_start=0, win_end=1, tz_offset=-1440),
               dict(rights=0), dict(win_days=1, win_start=600, win_end=600)):
        assert parse(fw, fwref.ticket(**ok))[0] == "ok", ok


def ref_in_window(ws, we, days, tz, now):
    # independent of the spec's div/mod formulation: calendar arithmetic
    local = datetime.fromtimestamp(now, timezone.utc) + timedelta(minutes=tz)
    day, minute = local.weekday(), local.hour * 60 + local.minute
    if days == 0:
        return True
    if ws < we:
        return bool(days >> day & 1) and ws <= minute < we
    return (bool(days >> day & 1) and minute >= ws) or (bool(days >> ((day + 6) % 7) & 1) and minute < we)


def window_ticket(ws, we, days, tz):
    return fwref.ticket(not_before=0, not_after=0xFFFFFFFF, issued_at=0, win_start=ws, win_end=we,
                        win_days=days, tz_offset=tz)


def test_window_examples(fw):
    # NOW is Tuesday 22:13 UTC; 22:00-06:00 on Tuesdays only
    raw = window_ticket(1320, 360, 0b0000010, 0)
    wed_3am = NOW + (4 * 3600 + 47 * 60)
    wed_2230 = NOW + 86400 + 17 * 60
    tue_3am = NOW - 19 * 3600 - 13 * 60
    r = fw.call("fwtest.ticket_check", raw, [NOW, wed_3am, wed_2230, tue_3am, NOW - 14 * 60], None)
    assert [x[0] for x in r[:-1]] == [True, True, False, False, False]
    assert [x[1] for x in r[:-1]] == [OK, OK, OUTSIDE, OUTSIDE, OUTSIDE]
    # the same window with Monday set opens Tuesday 03:00 (started Monday night)
    r = fw.call("fwtest.ticket_check", window_ticket(1320, 360, 0b0000011, 0), [tue_3am], None)
    assert r[0][0] is True
    # UTC-5: NOW is 17:13 local on Tuesday
    r = fw.call("fwtest.ticket_check", window_ticket(17 * 60, 17 * 60 + 14, 0b10, -300),
                [NOW, NOW + 60], None)
    assert [x[0] for x in r[:-1]] == [True, False]
    # equal start and end: a whole day from the start minute (Tue 02:00 to Wed 02:00)
    r = fw.call("fwtest.ticket_check", window_ticket(120, 120, 0b10, 0),
                [NOW, NOW + 13599, NOW + 13600, NOW - 80000 + 7199, NOW - 80000 + 7200], None)
    assert [x[0] for x in r[:-1]] == [True, True, False, False, True]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1439), st.integers(1, 1440), st.integers(1, 127),
                          st.integers(-1440, 1440), st.integers(0, 0xFFFFFFFF)),
                min_size=10, max_size=10))
def test_window_matches_calendar(fw, cases):
    for ws, we, days, tz, now in cases:
        r = fw.call("fwtest.ticket_check", window_ticket(ws, we, days, tz), [now], None)
        assert r[0][0] is ref_in_window(ws, we, days, tz, now), (ws, we, days, tz, now)


def test_validity_boundaries_and_deny(fw):
    raw = fwref.ticket(not_before=NOW, not_after=NOW + 100)
    nows = [NOW - 61, NOW - 60, NOW + 99, NOW + 100]
    r = fw.call("fwtest.ticket_check", raw, nows, None)
    assert [x[1] for x in r[:-1]] == [NOT_YET_VALID, OK, OK, EXPIRED]
    assert r[-1] == 100
    assert fw.call("fwtest.ticket_check", raw, [NOW], [[1, 77]])[0][1] == REVOKED
    assert fw.call("fwtest.ticket_check", raw, [NOW], [[2, 5]])[0][1] == REVOKED
    assert fw.call("fwtest.ticket_check", raw, [NOW], [[2, 77], [1, 5]])[0][1] == OK


# ---- BLE fragments and serial frames (§3) ----

def test_fragment_layout(fw):
    msg = bytes(range(40))
    frags = fw.call("lockfrag.fragment", msg, 23)
    assert frags == [b"\x80" + msg[:19], b"\x01" + msg[19:38], b"\x42" + msg[38:]]
    assert fw.call("lockfrag.fragment", b"\x01", 23) == [b"\xc0\x01"]
    big = os.urandom(1024)
    frags = fw.call("lockfrag.fragment", big, 23)
    assert len(frags) == 54 and all(len(f) <= 20 for f in frags)
    assert fw.call("fwtest.reassemble", frags)[-1] == big
    # 1-byte payloads: the index wraps mod 64
    # small payloads: the index wraps mod 64
    n, heads, longest, same, partial = fw.call("fwtest.frag_roundtrip", big[:200], 5)
    assert (n, longest, same, partial) == (200, 2, True, True)
    assert heads == b"\x80" + bytes(range(1, 64)) + bytes(range(64)) * 2 + bytes(range(7)) + b"\x47"
    n, heads, longest, same, partial = fw.call("fwtest.frag_roundtrip", big, 12)
    assert (n, longest, same, partial) == (128, 9, True, True)
    n, heads, longest, same, partial = fw.call("fwtest.frag_roundtrip", big, 247)
    assert (n, longest, same, partial) == (5, 244, True, True)
    assert heads == b"\x80\x01\x02\x03\x44"
    assert fw.call("fwtest.call", "lockfrag.fragment", [bytes(1025), 23]) == err(TOO_LARGE)


def test_reassembler_rules(fw):
    a = [b"\x80abc", b"\x01def", b"\x42ghi"]
    assert fw.call("fwtest.reassemble", a) == [None, None, b"abcdefghi"]
    # without FIRST while idle: ignored
    assert fw.call("fwtest.reassemble", [b"\x01zz", b"\x42zz"] + a)[:2] == [None, None]
    # out of order, then a fresh FIRST works
    assert fw.call("fwtest.reassemble", [a[0], a[2], a[1]] + a) == \
        [None, ["err", FRAGMENT], None, None, None, b"abcdefghi"]
    # FIRST with index != 0
    assert fw.call("fwtest.reassemble", [b"\x81abc"]) == [["err", FRAGMENT]]
    # empty fragments
    assert fw.call("fwtest.reassemble", [b""]) == [["err", FRAGMENT]]
    assert fw.call("fwtest.reassemble", [a[0], b"\x01"]) == [None, ["err", FRAGMENT]]
    assert fw.call("fwtest.reassemble", [b"\x80"]) == [["err", FRAGMENT]]
    # FIRST in the middle restarts
    assert fw.call("fwtest.reassemble", [a[0], b"\xc0xy"]) == [None, b"xy"]
    # over 1024 bytes
    frags = [b"\x80" + bytes(1000), b"\x01" + bytes(24), b"\x42" + b"x"]
    assert fw.call("fwtest.reassemble", frags) == [None, None, ["err", TOO_LARGE]]
    frags = [b"\x80" + bytes(1000), b"\x41" + bytes(24)]
    assert fw.call("fwtest.reassemble", frags) == [None, bytes(1024)]


def test_reassembler_drops_stalled_message(fw):
    a = [b"\x80abc", b"\x01def", b"\x42ghi"]
    assert fw.call("fwtest.reassemble", a, [0, 1500, 3000]) == [None, None, b"abcdefghi"]
    # more than 2 s since the last fragment: the message in progress is dropped,
    # so the continuation is ignored like any fragment without FIRST
    assert fw.call("fwtest.reassemble", a, [0, 2001, 2002]) == [None, None, None]
    assert fw.call("fwtest.reassemble", a + a, [0, 2001, 2002, 3000, 3001, 3002])[-1] == b"abcdefghi"


@settings(max_examples=30, deadline=None)
@given(st.lists(st.binary(max_size=30), max_size=40))
def test_reassembler_random_input(fw, frags):
    for r in fw.call("fwtest.reassemble", frags):
        assert r is None or isinstance(r, bytes) or r[0] == "err"


def frame(msg):
    head = struct.pack(">H", len(msg)) + msg
    return b"LK" + head + struct.pack(">I", binascii.crc32(head))


def test_frames(fw):
    m1, m2 = b"\x01", os.urandom(1024)
    assert fw.call("lockfrag.encode_frame", m1) == frame(m1)
    assert fw.call("lockfrag.encode_frame", m2) == frame(m2)
    stream = b"noiseL" + frame(m1) + b"LKLK" + frame(m2) + frame(b"\x04LK" + bytes(30))
    out, left = fw.call("fwtest.deframe", [stream])
    assert out == [[m1, m2, b"\x04LK" + bytes(30)]] and left == 0
    # byte by byte
    for size in (1, 2, 3, 7, 100):
        out, left = fw.call("fwtest.deframe", [stream], size)
        assert out == [m1, m2, b"\x04LK" + bytes(30)] and left == 0
    # bad CRC: dropped, hunting resumes after the "L" and finds the frame inside
    bad = bytearray(frame(b"LK" + frame(b"\x05abc")))
    bad[-1] ^= 1
    out, _ = fw.call("fwtest.deframe", [bytes(bad)])
    assert out == [[b"\x05abc"]]
    # out-of-range lengths
    out, _ = fw.call("fwtest.deframe", [b"LK\x00\x00" + frame(m1) + b"LK\x04\x01" + frame(m1)])
    assert out == [[m1, m1]]
    assert fw.call("fwtest.call", "lockfrag.encode_frame", [b""]) == err(MALFORMED)
    assert fw.call("fwtest.call", "lockfrag.encode_frame", [bytes(1025)]) == err(TOO_LARGE)


def test_frame_buffer_bounded(fw):
    garbage = b"L" + os.urandom(5000).replace(b"L", b"x")
    out, left = fw.call("fwtest.deframe", [garbage])
    assert out == [[]] and left <= 1
    # a frame header promising 1024 bytes that never come: buffer stays one frame long
    out, left = fw.call("fwtest.deframe", [b"LK\x04\x00" + bytes(900)])
    assert out == [[]] and left == 904   # waiting for the rest of the frame
    out, left = fw.call("fwtest.deframe", [b"LK\x04\x00" + bytes(900), bytes(5000)])
    assert out == [[], []] and left <= 1032


# ---- server statements (§5, §6.4) ----

K1 = fwref.keys(MASTER, LOCK_ID, 1)
K2 = fwref.keys(MASTER, LOCK_ID, 2)


def stmt(fw, fn, args, epoch=1, master=MASTER):
    return fw.call("fwtest.stmt_call", fn, master, LOCK_ID, epoch, args)


def test_time_token(fw):
    nonce = fwref.NONCE_L
    tok = fwref.time_token(K1, NOW + 5, nonce)
    assert stmt(fw, "verify_time_token", [nonce, tok]) == ["ok", NOW + 5]
    assert stmt(fw, "verify_time_token", [b"\x00" * 16, tok]) == err(BAD_MAC)     # other connection
    assert stmt(fw, "verify_time_token", [nonce, tok], epoch=2) == err(BAD_MAC)   # other epoch
    assert stmt(fw, "verify_time_token", [nonce, tok[:19]]) == err(MALFORMED)
    assert stmt(fw, "verify_time_token", [nonce, tok + b"\x00"]) == err(MALFORMED)
    forged = u32(NOW + 6) + tok[4:]
    assert stmt(fw, "verify_time_token", [nonce, forged]) == err(BAD_MAC)


def test_deny_list(fw):
    entries = [(1, 77, NOW + 10), (2, 5, NOW + 20)]
    d = fwref.deny_list(K1, 9, entries)
    assert len(d) == 5 + 18 + 16
    assert stmt(fw, "verify_deny", [d]) == ["ok", [9, [list(e) for e in entries]]]
    assert stmt(fw, "verify_deny", [fwref.deny_list(K1, 1, [])]) == ["ok", [1, []]]
    assert stmt(fw, "verify_deny", [d], epoch=2) == err(BAD_MAC)
    bad = bytearray(d)
    bad[7] ^= 1
    assert stmt(fw, "verify_deny", [bytes(bad)]) == err(BAD_MAC)
    assert stmt(fw, "verify_deny", [fwref.deny_list(K1, 9, [(3, 1, 1)])]) == err(MALFORMED)
    assert stmt(fw, "verify_deny", [fwref.deny_list(K1, 9, [(0, 1, 1)])]) == err(MALFORMED)
    assert stmt(fw, "verify_deny", [fwref.deny_list(K1, 9, entries, count=3)]) == err(MALFORMED)
    assert stmt(fw, "verify_deny", [fwref.deny_list(K1, 9, entries, count=1)]) == err(MALFORMED)
    assert stmt(fw, "verify_deny", [d[:20]]) == err(MALFORMED)
    full = [(1, i + 1, NOW + 99) for i in range(64)]
    r = stmt(fw, "verify_deny", [fwref.deny_list(K1, 9, full)])
    assert r[0] == "ok" and len(r[1][1]) == 64
    assert stmt(fw, "verify_deny", [fwref.deny_list(K1, 9, full + [(2, 1, 1)])]) == err(CAPACITY)
    # an unauthenticated over-capacity list is a bad MAC, not a capacity claim
    over = bytearray(fwref.deny_list(K1, 9, full + [(2, 1, 1)]))
    over[-1] ^= 1
    assert stmt(fw, "verify_deny", [bytes(over)]) == err(BAD_MAC)


def test_rekey_statement(fw):
    new = os.urandom(32)
    msg = fwref.rekey_args(K1, 1, 2, new)
    assert len(msg) == 60
    assert stmt(fw, "open_rekey", [msg]) == ["ok", [2, new]]
    assert stmt(fw, "open_rekey", [msg], epoch=2) == err(STALE)
    assert stmt(fw, "open_rekey", [fwref.rekey_args(K1, 1, 1, new)]) == err(STALE)
    assert stmt(fw, "open_rekey", [msg[:59]]) == err(MALFORMED)
    bad = bytearray(msg)
    bad[10] ^= 1  # inside the wrapped key: the MAC fails first
    assert stmt(fw, "open_rekey", [bytes(bad)]) == err(BAD_MAC)
    # a correctly MACed blob that is not a wrap under K_wr: unwrap integrity fails
    garbage = os.urandom(40)
    mac = fwref.hm(K1["sv"], b"LK1/rekey\x00" + LOCK_ID + u32(1) + u32(2) + garbage)[:16]
    assert stmt(fw, "open_rekey", [u32(2) + garbage + mac]) == err(UNWRAP_FAILED)
    wrong_kek = keywrap.aes_key_wrap(K1["sv"], new)
    mac = fwref.hm(K1["sv"], b"LK1/rekey\x00" + LOCK_ID + u32(1) + u32(2) + wrong_kek)[:16]
    assert stmt(fw, "open_rekey", [u32(2) + wrong_kek + mac]) == err(UNWRAP_FAILED)
    assert stmt(fw, "rekey_proof", [], epoch=2, master=new) == ["ok", fwref.rekey_proof(new, 2)]


def test_ack_statement(fw):
    chain = os.urandom(8)
    a = fwref.ack(K1, 12, chain)
    assert stmt(fw, "verify_ack", [a]) == ["ok", [12, chain]]
    assert stmt(fw, "verify_ack", [a], epoch=2) == err(BAD_MAC)
    assert stmt(fw, "verify_ack", [a[:27]]) == err(MALFORMED)
    bad = bytearray(a)
    bad[5] ^= 1
    assert stmt(fw, "verify_ack", [bytes(bad)]) == err(BAD_MAC)


# ---- journal records (§6) ----

def test_record_layout_and_chain(fw):
    body = fw.call("lockrecord.pack_body", 1, NOW, 0x02, 1, 0xBEEF, 5, 77, 0xDEADBEEF)
    assert body == struct.pack(">IIBBHIII", 1, NOW, 2, 1, 0xBEEF, 5, 77, 0xDEADBEEF)
    g = fw.call("lockrecord.chain_genesis", K1["jm"], LOCK_ID)
    assert g == fwref.chain_genesis(K1["jm"])
    rec = fw.call("lockrecord.seal", K1["jm"], g, body)
    assert rec == body + fwref.hm(K1["jm"], g + body)[:8]
    assert fw.call("lockrecord.chain_next", K1["jm"], g, body) == rec[24:]
    assert fw.call("lockrecord.unpack", rec) == [1, NOW, 2, 1, 0xBEEF, 5, 77, 0xDEADBEEF, rec[24:]]
    assert fw.call("fwtest.call", "lockrecord.unpack", [rec[:31]]) == err(MALFORMED)


def test_export_chunk(fw):
    prev = g = fwref.chain_genesis(K1["jm"])
    recs = []
    for seq in range(1, 21):
        body = struct.pack(">IIBBHIII", seq, NOW + seq, 2, 0, 0, 5, 77, seq)
        prev = body + fwref.hm(K1["jm"], prev[-8:] + body)[:8]
        recs.append(prev)
    r = fw.call("fwtest.export", MASTER, LOCK_ID, 1, 3, recs[2:18], 20, recs[1][24:])
    assert r[0] == "ok"
    chunk = r[1]
    assert len(chunk) == 37 + 32 * 16
    epoch, first, head, pc, got = fwref.open_chunk(K1, chunk)
    assert (epoch, first, head, pc) == (1, 3, 20, recs[1][24:]) and got == recs[2:18]
    assert fwref.verify_chain(lambda s: K1["jm"], pc, got)
    # empty chunk
    r = fw.call("fwtest.export", MASTER, LOCK_ID, 1, 21, [], 20, recs[-1][24:])
    assert r[0] == "ok" and fwref.open_chunk(K1, r[1])[:4] == (1, 21, 20, recs[-1][24:])
    assert len(r[1]) == 37
    # records must carry the sequence numbers they claim
    assert fw.call("fwtest.export", MASTER, LOCK_ID, 1, 4, recs[2:4], 20, g)[0] == "exc"
    assert fw.call("fwtest.export", MASTER, LOCK_ID, 1, 1, recs[:17], 20, g)[0] == "exc"


@settings(max_examples=40, deadline=None)
@given(blobs=st.lists(st.one_of(st.binary(max_size=120), st.binary(min_size=60, max_size=60),
                                st.binary(min_size=20, max_size=20), st.binary(min_size=28, max_size=28)),
                      min_size=4, max_size=4))
def test_statement_checks_raise_only_protoerror(fw, blobs):
    for b in blobs:
        for fn, args in (("verify_time_token", [fwref.NONCE_L, b]), ("verify_deny", [b]),
                         ("open_rekey", [b]), ("verify_ack", [b])):
            r = stmt(fw, fn, args)
            assert r[0] == "err", (fn, b, r)
