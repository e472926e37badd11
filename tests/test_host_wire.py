"""Host side (lockproto.wire): round trips, ticket rules, validity and windows, decoders that only raise ProtocolError."""

from __future__ import annotations

import struct
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings, strategies as st

from lockproto import Err, ProtocolError
from lockproto.codes import HELLO_LEN, MAX_MESSAGE, Bolt, MsgType
from lockproto.journal import Record
from lockproto.wire import (
    HELLO_REQUEST, TICKET_FORMATS, Auth, ErrorFrame, Hello, OpFrame, Result, StateBlock, Ticket, decode_message,
)

NOW = 1_767_225_600  # Thursday 2026-01-01 00:00 UTC
u8 = st.integers(0, 255)
u16 = st.integers(0, 65535)
u32 = st.integers(0, 2**32 - 1)
lock_ids = st.binary(min_size=8, max_size=8)
nonces = st.binary(min_size=16, max_size=16)
macs = st.binary(min_size=16, max_size=16)


@st.composite
def tickets(draw, lock_id=None, epoch=None):
    nb = draw(st.integers(0, 2**32 - 2))
    days = draw(st.integers(0, 0x7F))
    return Ticket(
        lock_id=lock_id if lock_id is not None else draw(lock_ids),
        epoch=epoch if epoch is not None else draw(st.integers(1, 2**32 - 1)),
        ticket_id=draw(st.integers(1, 2**32 - 1)), user_id=draw(st.integers(1, 2**32 - 1)),
        not_before=nb, not_after=draw(st.integers(nb + 1, 2**32 - 1)), issued_at=draw(u32),
        rights=draw(st.integers(0, 0x0F)),
        win_start=draw(st.integers(0, 1439)) if days else 0, win_end=draw(st.integers(1, 1440)) if days else 0,
        win_days=days, tz_offset=draw(st.integers(-1440, 1440)) if days else 0)


states = st.builds(StateBlock, u32, u8, st.integers(0, 5), st.one_of(st.integers(0, 100), st.just(255)), u16,
                   u32, u32, u32)
hellos = st.builds(Hello, lock_ids, u32, nonces, st.tuples(u8, u8, u8), states,
                   st.just(1), st.integers(1, 255), st.binary(max_size=128 - HELLO_LEN))
auths = st.builds(Auth, u8, st.binary(min_size=41, max_size=41), nonces, u8, st.binary(max_size=200), macs)
ops = st.builds(OpFrame, u32, u8, st.binary(max_size=200), macs)
results = st.one_of(st.builds(Result, u32, u8, st.just(0), st.binary(max_size=200), macs),
                    st.builds(Result, u32, u8, st.integers(1, 29), st.just(b""), macs))
errors = st.builds(ErrorFrame, st.integers(1, 29), u32)
records = st.builds(Record, u32, u32, u8, u8, u16, u32, u32, u32, st.binary(min_size=8, max_size=8))


# ---- round trips ----

@given(tickets())
def test_ticket_round_trip(t):
    raw = t.encode()
    assert len(raw) == 41 and Ticket.decode(raw) == t and Ticket.decode(bytearray(raw)) == t


@given(states)
def test_state_block_round_trip(s):
    raw = s.encode()
    assert len(raw) == 21 and StateBlock.decode(raw) == s


@given(hellos)
def test_hello_round_trip(h):
    raw = h.encode()
    assert len(raw) == 55 + len(h.extra) and raw[0] == MsgType.HELLO
    assert Hello.decode(raw) == h and decode_message(raw) == h


@given(st.one_of(auths, ops, results, errors))
def test_message_round_trip(m):
    raw = m.encode()
    assert type(m).decode(raw) == m and decode_message(raw) == m


@given(records)
def test_record_round_trip(r):
    raw = r.encode()
    assert len(raw) == 32 and Record.decode(raw) == r and raw[:24] == r.body()


def test_layouts_by_hand():
    s = StateBlock(0x01020304, 0x05, 2, 99, 0x0607, 8, 9, 10)
    assert s.encode().hex() == "01020304" "05" "02" "63" "0607" "00000008" "00000009" "0000000a"
    h = Hello(b"L" * 8, 7, bytes(range(16)), (1, 2, 3), s, extra=b"\xee")
    raw = h.encode()
    assert raw[:3] == b"\x01\x01\x01" and raw[3:11] == b"L" * 8 and raw[11:15] == b"\0\0\0\x07"
    assert raw[15:31] == bytes(range(16)) and raw[31:34] == b"\x01\x02\x03" and raw[34:55] == s.encode()
    assert raw[55:] == b"\xee"
    a = Auth(1, bytes(range(41)), b"N" * 16, 0x12, b"args", b"M" * 16).encode()
    assert a == b"\x02\x01" + bytes(range(41)) + b"N" * 16 + b"\x12args" + b"M" * 16 and len(a) == 76 + 4
    assert OpFrame(5, 3, b"", b"M" * 16).encode() == b"\x04\x00\x00\x00\x05\x03" + b"M" * 16
    assert Result(5, 3, 0, b"p", b"M" * 16).encode() == b"\x03\x00\x00\x00\x05\x03\x00p" + b"M" * 16
    assert ErrorFrame(Err.WRONG_EPOCH, 2).encode() == b"\x05\x08\x00\x00\x00\x02"


# ---- decoders raise ProtocolError, nothing else ----

DECODERS = (decode_message, Ticket.decode, Hello.decode, Auth.decode, OpFrame.decode, Result.decode,
            ErrorFrame.decode, StateBlock.decode, Record.decode)


def _only_protocol_errors(data):
    for decode in DECODERS:
        try:
            decode(data)
        except ProtocolError as e:
            assert isinstance(e.code, Err) and e.code != Err.OK
            assert e.code in (Err.MALFORMED, Err.UNKNOWN_TYPE, Err.TOO_LARGE, Err.UNSUPPORTED_VERSION)


@given(st.binary(max_size=1100))
@settings(max_examples=500)
def test_decoders_raise_only_protocol_errors(data):
    _only_protocol_errors(data)


@given(st.integers(0, 6), st.binary(max_size=300))
@settings(max_examples=500)
def test_typed_random_bodies_raise_only_protocol_errors(kind, body):
    _only_protocol_errors(bytes([kind]) + body)


@given(st.one_of(auths, ops, results, errors, hellos.map(lambda h: h)), st.data())
@settings(max_examples=300)
def test_mutated_messages_raise_only_protocol_errors(m, data):
    raw = bytearray(m.encode())
    i = data.draw(st.integers(0, len(raw) - 1))
    raw[i] = data.draw(u8)
    cut = data.draw(st.integers(0, len(raw)))
    _only_protocol_errors(bytes(raw[:cut]))
    _only_protocol_errors(bytes(raw))


@pytest.mark.parametrize("junk", [None, 5, "text", 3.5, [1, 2], {"a": 1}, object()])
def test_non_bytes_are_malformed(junk):
    for decode in DECODERS[:-1]:
        with pytest.raises(ProtocolError) as e:
            decode(junk)
        assert e.value.code == Err.MALFORMED


def test_type_and_size_codes():
    def code(b):
        with pytest.raises(ProtocolError) as e:
            decode_message(b)
        return e.value.code

    assert code(b"") == Err.MALFORMED
    assert code(b"\x02" * (MAX_MESSAGE + 1)) == Err.TOO_LARGE
    assert code(b"\x09" * (MAX_MESSAGE + 1)) == Err.TOO_LARGE  # size first, whatever the type
    assert code(b"\x09hello") == Err.UNKNOWN_TYPE and code(b"\x00") == Err.UNKNOWN_TYPE
    assert code(HELLO_REQUEST) == Err.MALFORMED  # the serial host's request, not a HELLO
    assert code(b"\x02" + bytes(74)) == Err.MALFORMED  # AUTH one byte short
    assert code(b"\x04" + bytes(20)) == Err.MALFORMED
    assert code(b"\x03" + bytes(21)) == Err.MALFORMED
    assert code(b"\x05\x01\0\0\0") == Err.MALFORMED and code(b"\x05\x01\0\0\0\0\0") == Err.MALFORMED
    assert code(b"\x05\x00\0\0\0\0") == Err.MALFORMED  # ERROR OK means nothing
    assert code(b"\x05\x20\0\0\0\0") == Err.MALFORMED  # no code 32
    assert code(b"\x03" + bytes(5) + b"\x20" + bytes(16)) == Err.MALFORMED  # status 32
    assert code(b"\x03" + bytes(5) + b"\x01" + b"x" + bytes(16)) == Err.MALFORMED  # payload on failure
    hello = Hello(b"L" * 8, 1, bytes(16), (0, 1, 0), StateBlock(NOW)).encode()
    assert code(hello + bytes(128 - 55 + 1)) == Err.MALFORMED  # HELLO over 128
    assert code(hello[:54]) == Err.MALFORMED
    assert code(hello[:1] + b"\x02\x01" + hello[3:]) == Err.MALFORMED  # proto_min > proto_max
    for i, bad in ((34 + 5, 6), (34 + 6, 101), (34 + 6, 254)):  # bolt 6, battery 101 %, 254 %
        h = bytearray(hello)
        h[i] = bad
        assert code(bytes(h)) == Err.MALFORMED
    assert Auth.decode(b"\x02" + bytes(74) + b"\x00") is not None
    with pytest.raises(ProtocolError) as e:
        Auth.decode(hello)
    assert e.value.code == Err.MALFORMED  # a known type, not the one asked for


def test_encoders_refuse_what_decoders_refuse():
    for bad in (StateBlock(NOW, bolt=6), StateBlock(NOW, battery_pct=101), StateBlock(-1),
                Hello(b"L" * 7, 1, bytes(16), (0, 1, 0), StateBlock(NOW)),
                Hello(b"L" * 8, 1, bytes(16), (0, 1, 0), StateBlock(NOW), extra=bytes(74)),
                Hello(b"L" * 8, 1, bytes(16), (0, 1, 0), StateBlock(NOW), proto_min=2, proto_max=1),
                Auth(1, bytes(40), bytes(16), 1), OpFrame(2**32, 1), Result(0, 1, 1, b"x"), Result(0, 1, 32),
                ErrorFrame(0), ErrorFrame(1, 2**32)):
        with pytest.raises(ProtocolError) as e:
            bad.encode()
        assert e.value.code == Err.MALFORMED, bad
    with pytest.raises(ProtocolError) as e:
        Auth(1, bytes(41), bytes(16), 1, bytes(MAX_MESSAGE - 76 + 1)).encode()
    assert e.value.code == Err.TOO_LARGE
    assert len(Auth(1, bytes(41), bytes(16), 1, bytes(MAX_MESSAGE - 76)).encode()) == MAX_MESSAGE


# ---- ticket rules (§2.1) ----

GOOD = dict(lock_id=b"L" * 8, epoch=1, ticket_id=1, user_id=1, not_before=NOW, not_after=NOW + 60, issued_at=NOW,
            rights=1)
WINDOW = dict(win_days=1, win_start=0, win_end=60)


@pytest.mark.parametrize("over,code", [
    (dict(format=2), Err.UNSUPPORTED_VERSION), (dict(format=0), Err.UNSUPPORTED_VERSION),
    (dict(not_before=NOW + 60), Err.MALFORMED), (dict(not_before=NOW + 61), Err.MALFORMED),
    (dict(ticket_id=0), Err.MALFORMED), (dict(user_id=0), Err.MALFORMED),
    *[(dict(rights=1 | bit), Err.MALFORMED) for bit in (0x10, 0x20, 0x40, 0x80)],
    (dict(WINDOW, win_start=1440, win_end=1440), Err.MALFORMED), (dict(WINDOW, win_end=0), Err.MALFORMED),
    (dict(WINDOW, win_end=1441), Err.MALFORMED), (dict(WINDOW, win_days=0x81), Err.MALFORMED),
    (dict(win_start=1), Err.MALFORMED), (dict(win_end=1), Err.MALFORMED), (dict(tz_offset=-1), Err.MALFORMED),
    (dict(WINDOW, tz_offset=1441), Err.MALFORMED), (dict(WINDOW, tz_offset=-1441), Err.MALFORMED),
])
def test_ticket_rules(over, code):
    t = Ticket(**{**GOOD, **over})
    with pytest.raises(ProtocolError) as e:
        t.encode()
    assert e.value.code == code
    if code == Err.UNSUPPORTED_VERSION:
        assert e.value.detail == TICKET_FORMATS == 0x0101
    raw = struct.pack(">B8sIIIIIIBHHBh", t.format, t.lock_id, t.epoch, t.ticket_id, t.user_id, t.not_before,
                      t.not_after, t.issued_at, t.rights, t.win_start, t.win_end, t.win_days, t.tz_offset)
    with pytest.raises(ProtocolError) as e:
        Ticket.decode(raw)
    assert e.value.code == code


def test_ticket_edges_accepted():
    for over in (dict(WINDOW, win_start=1439, win_end=1440, tz_offset=1440), dict(WINDOW, win_end=1, tz_offset=-1440),
                 dict(WINDOW, win_days=0x7F, win_start=600, win_end=600), dict(rights=0x0F),
                 dict(not_before=0, not_after=1), dict(rights=0)):
        t = Ticket(**{**GOOD, **over})
        assert Ticket.decode(t.encode()) == t


def test_ticket_format_checked_before_length():
    for raw in (b"\x02", b"\x02" + bytes(100), b"\x00" + bytes(40)):
        with pytest.raises(ProtocolError) as e:
            Ticket.decode(raw)
        assert e.value.code == Err.UNSUPPORTED_VERSION and e.value.detail == 0x0101
    for raw in (b"", b"\x01", b"\x01" + bytes(39), b"\x01" + bytes(41)):
        with pytest.raises(ProtocolError) as e:
            Ticket.decode(raw)
        assert e.value.code == Err.MALFORMED


# ---- validity (§2.4) ----

def test_validity_order_and_bounds():
    t = Ticket(**{**GOOD, "not_before": NOW, "not_after": NOW + 3600})
    assert t.check(NOW - 61) == Err.NOT_YET_VALID
    assert t.check(NOW - 60) == Err.OK  # SKEW
    assert t.check(NOW + 3599) == Err.OK
    assert t.check(NOW + 3600) == Err.EXPIRED  # not_after is the first second of invalidity
    assert t.check(NOW, denied_tickets={1}) == Err.REVOKED
    assert t.check(NOW, denied_users=[1]) == Err.REVOKED
    assert t.check(NOW, denied_tickets={2}, denied_users={2}) == Err.OK
    assert t.check(NOW + 3600, denied_tickets={1}) == Err.EXPIRED  # expiry before the deny list
    w = Ticket(**{**GOOD, "not_before": NOW, "not_after": NOW + 7 * 86400, "win_days": 0x7F, "win_start": 600,
                  "win_end": 660})
    assert w.check(NOW, denied_users={1}) == Err.OUTSIDE_WINDOW  # window before the deny list
    assert w.check(NOW + 630 * 60, denied_users={1}) == Err.REVOKED
    assert t.lifetime == 3600


def _in_window_by_calendar(ws, we, days, tz, now):
    """§2.4 step 3 computed with datetime (an independent reference)."""
    local = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=now + 60 * tz)
    day, minute = local.weekday(), local.hour * 60 + local.minute
    if ws < we:
        return bool(days >> day & 1) and ws <= minute < we
    return (bool(days >> day & 1) and minute >= ws) or (bool(days >> ((day + 6) % 7) & 1) and minute < we)


@given(st.integers(0, 1439), st.integers(1, 1440), st.integers(1, 0x7F), st.integers(-1440, 1440),
       st.integers(0, 2**32 - 1))
@settings(max_examples=1000)
def test_window_matches_calendar(ws, we, days, tz, now):
    t = Ticket(**{**GOOD, "not_before": 0, "not_after": 2**32 - 1, "win_start": ws, "win_end": we, "win_days": days,
                  "tz_offset": tz})
    assert t.in_window(now) == _in_window_by_calendar(ws, we, days, tz, now)


MON, TUE, WED, THU, FRI, SAT, SUN = (1 << i for i in range(7))


@pytest.mark.parametrize("ws,we,days,tz,at,inside", [
    # NOW is Thursday 00:00 UTC
    (7 * 60, 15 * 60, THU, 0, NOW + 7 * 3600, True),
    (7 * 60, 15 * 60, THU, 0, NOW + 7 * 3600 - 1, False),
    (7 * 60, 15 * 60, THU, 0, NOW + 15 * 3600 - 1, True),
    (7 * 60, 15 * 60, THU, 0, NOW + 15 * 3600, False),  # end is exclusive
    (7 * 60, 15 * 60, FRI, 0, NOW + 8 * 3600, False),   # wrong weekday
    (7 * 60, 15 * 60, THU, 60, NOW + 6 * 3600, True),   # 06:00 UTC is 07:00 at UTC+1
    (7 * 60, 15 * 60, THU, -60, NOW + 7 * 3600, False),  # 07:00 UTC is 06:00 at UTC-1
    (7 * 60, 15 * 60, WED, -60, NOW + 3600 * 13, False),  # Thursday 12:00 at UTC-1 is still Thursday
    (20 * 60, 24 * 60, WED, -60, NOW - 1, True),         # Thursday 00:00 UTC - 1 s is Wednesday 22:59 at UTC-1
    (22 * 60, 6 * 60, WED, 0, NOW + 5 * 3600, True),     # wrapping: Wednesday's night, Thursday 05:00
    (22 * 60, 6 * 60, WED, 0, NOW + 6 * 3600, False),
    (22 * 60, 6 * 60, WED, 0, NOW - 3600, True),         # Wednesday 23:00
    (22 * 60, 6 * 60, THU, 0, NOW + 5 * 3600, False),    # Thursday's night starts at 22:00 Thursday
    (22 * 60, 6 * 60, THU, 0, NOW + 22 * 3600, True),
    (22 * 60, 6 * 60, THU, 0, NOW + 24 * 3600 + 3600, True),  # Friday 01:00, started Thursday
    (22 * 60, 6 * 60, SUN, 0, NOW + 4 * 86400 + 3600, True),  # Monday 01:00, started Sunday (day 6 -> 0)
    (22 * 60, 6 * 60, MON, 0, NOW - 3 * 86400 + 3600, False),  # Monday 01:00: Monday's night not begun
    (8 * 60, 8 * 60, THU, 0, NOW + 8 * 3600, True),      # equal: Thursday 08:00 ...
    (8 * 60, 8 * 60, THU, 0, NOW + 32 * 3600 - 1, True),  # ... to Friday 07:59:59
    (8 * 60, 8 * 60, THU, 0, NOW + 32 * 3600, False),
    (8 * 60, 8 * 60, THU, 0, NOW + 8 * 3600 - 1, False),
    (0, 1440, SAT | SUN, 0, NOW + 2 * 86400, True),      # Saturday
    (0, 1440, SAT | SUN, 0, NOW + 2 * 86400 - 1, False),  # Friday 23:59:59
    (0, 1440, SAT, 1440, NOW + 86400, True),             # Friday UTC is Saturday at UTC+24h
    (0, 1, FRI, -1440, NOW + 2 * 86400, True),           # Saturday 00:00 UTC is Friday 00:00 at UTC-24h
    (0, 1440, THU, 0, 0, True),                          # 1970-01-01 was a Thursday
    (0, 1440, WED, -1, 0, True),                         # negative local time, floor division
    (23 * 60 + 59, 1440, WED, -1, 0, True),
])
def test_windows_by_hand(ws, we, days, tz, at, inside):
    t = Ticket(**{**GOOD, "not_before": 0, "not_after": 2**32 - 1, "win_start": ws, "win_end": we, "win_days": days,
                  "tz_offset": tz})
    assert t.in_window(at) is inside
    assert (t.check(at) == Err.OK) is inside


def test_no_window_is_always_inside():
    t = Ticket(**GOOD)
    assert all(t.in_window(x) for x in (0, NOW, 2**32 - 1))


# ---- sign and verify helpers ----

def test_frame_macs_bind_direction_and_counter():
    k = bytes(range(32))
    hello = Hello(b"L" * 8, 1, bytes(16), (0, 1, 0), StateBlock(NOW)).encode()
    a = Auth(1, bytes(41), bytes(16), 1).sign(k, hello)
    assert a.verify(k, hello) and not a.verify(k, hello + b"\x00") and not a.verify(bytes(32), hello)
    o = OpFrame(3, 1).sign(k)
    assert o.verify(k) and not OpFrame(4, 1, mac=o.mac).verify(k)
    r = Result(3, 1, 0, bytes([Bolt.UNLOCKING])).sign(k)
    assert r.verify(k) and o.mac != Result(3, 1, 0).sign(k).mac
    # the same body bytes signed in the two directions give different MACs
    assert OpFrame(3, 1).expected_mac(k) != Result(3, 1, 0).expected_mac(k)
