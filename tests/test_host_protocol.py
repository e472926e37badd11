"""Host side (lockproto) properties, in CPython: round trips, robustness, tamper detection."""

from __future__ import annotations

import struct

import pytest
from hypothesis import assume, given, settings, strategies as st

from lockproto import (Bolt, DenyKind, Err, LockKeys, PhoneSession, ProtocolError, StateBlock, Ticket,
                       issue_ticket)
from lockproto.codes import HELLO_LEN, MAX_MESSAGE
from lockproto.crypto import aes_key_unwrap, aes_key_wrap
from lockproto.fragment import FrameDecoder, Reassembler, encode_frame, fragment
from lockproto.issuer import deny_list, journal_ack, rekey_message, time_token, verify_rekey_proof
from lockproto.journal import Record, chain_genesis, make_export_chunk, open_chunk, seal, verify_chain
from lockproto.phone import lock_result
from lockproto.wire import Auth, ErrorFrame, Hello, OpFrame, Result, decode_message

NOW = 1_767_225_600
u32 = st.integers(0, 2**32 - 1)
lock_ids = st.binary(min_size=8, max_size=8)
masters = st.binary(min_size=32, max_size=32)


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


@given(tickets())
def test_ticket_round_trip(t):
    raw = t.encode()
    assert len(raw) == 41 and Ticket.decode(raw) == t


@given(st.binary(max_size=1100))
@settings(max_examples=400)
def test_decoders_raise_only_protocol_errors(data):
    for decode in (decode_message, Ticket.decode, Hello.decode, Auth.decode, OpFrame.decode, Result.decode,
                   ErrorFrame.decode, StateBlock.decode, Record.decode):
        try:
            decode(data)
        except ProtocolError as e:
            assert isinstance(e.code, Err) and e.code != Err.OK


@given(st.sampled_from([1, 2, 3, 4, 5]), st.binary(max_size=200))
def test_typed_random_bodies_raise_only_protocol_errors(kind, body):
    try:
        decode_message(bytes([kind]) + body)
    except ProtocolError:
        pass


def test_too_large_and_unknown_type():
    with pytest.raises(ProtocolError) as e:
        decode_message(b"\x02" * (MAX_MESSAGE + 1))
    assert e.value.code == Err.TOO_LARGE
    with pytest.raises(ProtocolError) as e:
        decode_message(b"\x09hello")
    assert e.value.code == Err.UNKNOWN_TYPE


@given(st.builds(StateBlock, u32, st.integers(0, 255), st.integers(0, 5), st.integers(0, 255),
                 st.integers(0, 65535), u32, u32, u32), lock_ids, u32, st.binary(min_size=16, max_size=16),
       st.binary(max_size=128 - HELLO_LEN))
def test_hello_round_trip(state, lock_id, epoch, nonce, extra):
    h = Hello(lock_id, epoch, nonce, (1, 2, 3), state, extra=extra)
    assert Hello.decode(h.encode()) == h


def _session(keys, t, nonce_l=b"\x11" * 16, nonce_p=b"\x22" * 16):
    raw = t.encode()
    k_t = issue_ticket(keys, **{f: getattr(t, f) for f in (
        "ticket_id", "user_id", "not_before", "not_after", "issued_at", "rights", "win_start", "win_end",
        "win_days", "tz_offset")})[1]
    hello = Hello(keys.lock_id, keys.epoch, nonce_l, (0, 1, 0), StateBlock(NOW)).encode()
    return PhoneSession(raw, k_t, hello, nonce_p), hello


@given(masters, lock_ids, st.data())
@settings(max_examples=50)
def test_any_single_byte_change_of_a_result_is_rejected(master, lock_id, data):
    keys = LockKeys.from_master(master, lock_id, 1)
    ps, _ = _session(keys, data.draw(tickets(lock_id, 1)))
    ps.auth(1)
    good = lock_result(ps.session_key, 0, 1, Err.OK, bytes([Bolt.UNLOCKED]))
    i = data.draw(st.integers(0, len(good) - 1))
    bad = bytearray(good)
    bad[i] ^= data.draw(st.integers(1, 255))
    with pytest.raises(ProtocolError):
        ps.read(bytes(bad))
    assert ps.read(good).payload == bytes([Bolt.UNLOCKED])


@given(masters, masters, lock_ids, lock_ids, st.data())
@settings(max_examples=50)
def test_ticket_key_for_lock_a_never_fits_lock_b(ma, mb, la, lb, data):
    assume(ma != mb)
    t = data.draw(tickets(la, 1))
    fields = {f: getattr(t, f) for f in ("ticket_id", "user_id", "not_before", "not_after", "issued_at", "rights",
                                          "win_start", "win_end", "win_days", "tz_offset")}
    _, k_a = issue_ticket(LockKeys.from_master(ma, la, 1), **fields)
    _, k_b = issue_ticket(LockKeys.from_master(mb, lb, 1), **fields)
    assert k_a != k_b
    # same master, next epoch: a new ticket key too
    _, k_a2 = issue_ticket(LockKeys.from_master(ma, la, 2), **fields)
    assert k_a2 != k_a


def test_old_epoch_keys_change_after_rekey():
    old = LockKeys.from_master(bytes(32), b"L" * 8, 1)
    msg, new = rekey_message(old, bytes(range(32)))
    assert new.epoch == 2 and struct.unpack(">I", msg[:4])[0] == 2
    assert aes_key_unwrap(old.wr, msg[4:44]) == bytes(range(32))
    assert all(getattr(old, k) != getattr(new, k) for k in ("tk", "jm", "je", "wr", "sv"))
    with pytest.raises(ProtocolError) as e:
        aes_key_unwrap(new.wr, msg[4:44])
    assert e.value.code == Err.UNWRAP_FAILED
    with pytest.raises(ValueError):
        rekey_message(new, bytes(32), new_epoch=2)
    assert not verify_rekey_proof(old, b"\x00" * 20)


@given(st.binary(min_size=1, max_size=MAX_MESSAGE), st.integers(5, 517))
@settings(max_examples=200)
def test_fragment_round_trip(msg, mtu):
    frags = fragment(msg, mtu)
    assert all(len(f) <= mtu - 3 for f in frags)
    r = Reassembler()
    out = [r.feed(f) for f in frags]
    assert out[-1] == msg and all(o is None for o in out[:-1])


def test_reassembler_rules():
    r = Reassembler()
    assert r.feed(b"\x01abc") is None  # not FIRST while idle: ignored
    with pytest.raises(ProtocolError) as e:
        r.feed(b"\x81abc")  # FIRST with index 1
    assert e.value.code == Err.FRAGMENT
    r.feed(b"\x80ab")
    with pytest.raises(ProtocolError):
        r.feed(b"\x42cd")  # index 2, expected 1
    too_long = [b"\x80" + b"x" * 600, b"\x41" + b"y" * 600]
    r.feed(too_long[0])
    with pytest.raises(ProtocolError) as e:
        r.feed(too_long[1])
    assert e.value.code == Err.TOO_LARGE
    clock = [0.0]
    r = Reassembler(clock=lambda: clock[0])
    r.feed(b"\x80ab")
    clock[0] = 2.5
    assert r.feed(b"\x41cd") is None  # the stalled message was dropped


@given(st.lists(st.binary(min_size=1, max_size=300), min_size=1, max_size=5), st.binary(max_size=40),
       st.integers(1, 64))
@settings(max_examples=200)
def test_serial_frames_resync_after_noise(msgs, noise, step):
    stream = noise + b"".join(encode_frame(m) for m in msgs)
    d = FrameDecoder()
    got = []
    for i in range(0, len(stream), step):
        got += d.feed(stream[i:i + step])
    assert got[-len(msgs):] == msgs


def test_serial_frame_with_bad_crc_is_dropped():
    good, bad = encode_frame(b"\x01"), bytearray(encode_frame(b"\x02\x03"))
    bad[-1] ^= 1
    assert FrameDecoder().feed(bytes(bad) + good) == [b"\x01"]


@given(masters, lock_ids, st.lists(st.tuples(st.integers(1, 0x13), u32, u32, u32), min_size=1, max_size=16),
       st.data())
@settings(max_examples=50)
def test_journal_chain_detects_edit_drop_reorder(master, lock_id, events, data):
    keys = LockKeys.from_master(master, lock_id, 1)
    events = [(e if e != 0x0F else 0x0E, a, b, c) for e, a, b, c in events]  # no re-key here
    prev = genesis = chain_genesis(keys.jm, lock_id)
    recs = []
    for i, (ev, user, ticket, arg) in enumerate(events):
        r = seal(keys.jm, prev, Record(i + 1, NOW + i, ev, 0, 0, user, ticket, arg))
        recs.append(r)
        prev = r.chain
    chunk = open_chunk({1: keys}, make_export_chunk(keys, 1, recs, len(recs), genesis))
    assert chunk.records == recs
    verify_chain({1: keys}, genesis, recs, 1)
    i = data.draw(st.integers(0, len(recs) - 1))
    tampered = [recs[:i] + [Record(**{**recs[i].__dict__, "arg": recs[i].arg ^ 1})] + recs[i + 1:]]  # edit
    if i < len(recs) - 1:
        # drop (dropping the newest records is caught by head_seq, MACed in every export chunk)
        tampered.append(recs[:i] + recs[i + 1:])
    if len(recs) > 1:
        j = (i + 1) % len(recs)
        swapped = list(recs)
        swapped[i], swapped[j] = swapped[j], swapped[i]
        tampered.append(swapped)
    for bad in tampered:
        if bad == recs or not bad:
            continue
        with pytest.raises(ProtocolError):
            verify_chain({1: keys}, genesis, bad, 1)


def test_export_chunk_mac_and_epoch():
    keys = LockKeys.from_master(bytes(32), b"L" * 8, 1)
    g = chain_genesis(keys.jm, keys.lock_id)
    rec = seal(keys.jm, g, Record(1, NOW, 2, user_id=5, ticket_id=6))
    payload = bytearray(make_export_chunk(keys, 1, [rec], 1, g))
    assert open_chunk({1: keys}, bytes(payload)).records == [rec]
    with pytest.raises(ProtocolError) as e:
        open_chunk({2: keys}, bytes(payload))
    assert e.value.code == Err.WRONG_EPOCH
    for i in range(len(payload)):
        bad = bytearray(payload)
        bad[i] ^= 0x80
        with pytest.raises(ProtocolError):
            open_chunk({1: keys}, bytes(bad))


def test_server_statement_layouts():
    keys = LockKeys.from_master(bytes(32), b"L" * 8, 1)
    assert len(time_token(keys, b"\x00" * 16, NOW)) == 20
    assert len(deny_list(keys, 1, [(DenyKind.USER, 1, NOW)] * 64)) == 5 + 9 * 64 + 16
    with pytest.raises(ValueError):
        deny_list(keys, 1, [(DenyKind.USER, 1, NOW)] * 65)
    assert len(journal_ack(keys, 1, b"\x00" * 8)) == 28
    assert len(rekey_message(keys, bytes(32))[0]) == 60


@given(st.binary(min_size=16, max_size=32).filter(lambda k: len(k) in (16, 24, 32)),
       st.binary(min_size=16, max_size=64).filter(lambda k: len(k) % 8 == 0))
def test_key_wrap_round_trip(kek, key):
    assert aes_key_unwrap(kek, aes_key_wrap(kek, key)) == key


def test_error_words_cover_every_code():
    for code in Err:
        assert code.describe() and str(ProtocolError(code)).startswith(code.name)


def test_lock_keys_repr_hides_keys():
    keys = LockKeys.from_master(bytes(range(32)), b"L" * 8, 1)
    text = repr(keys)
    assert keys.tk.hex() not in text and "tk" not in text and "4c4c4c4c4c4c4c4c" in text


@given(lock_ids, st.integers(0, 255), st.integers(0, 255), st.binary(max_size=10))
def test_advert_round_trip_and_robustness(lock_id, pct, flags, noise):
    from lockproto.advert import Advert, scan_response

    a = Advert(lock_id, pct, flags)
    assert len(a.encode()) <= 31 and len(scan_response()) <= 31
    assert Advert.decode(a.encode()) == a
    try:
        Advert.decode(noise)
    except ProtocolError:
        pass
