"""Host side (lockproto.fragment): BLE fragments (§3.1) and serial frames (§3.2)."""

from __future__ import annotations

import struct
import zlib

import pytest
from hypothesis import given, settings, strategies as st

from lockproto import Err, Flag, ProtocolError
from lockproto.advert import Advert, parse_ad, scan_response
from lockproto.codes import MAX_MESSAGE
from lockproto.fragment import FIRST, LAST, FrameDecoder, Reassembler, encode_frame, fragment

messages = st.binary(min_size=1, max_size=MAX_MESSAGE)


@given(messages, st.integers(5, 517))
@settings(max_examples=300)
def test_fragment_round_trip(msg, mtu):
    frags = fragment(msg, mtu)
    assert all(2 <= len(f) <= mtu - 3 for f in frags)
    assert frags[0][0] & FIRST and frags[-1][0] & LAST
    assert [f[0] & 0x3F for f in frags] == [i % 64 for i in range(len(frags))]
    assert sum(1 for f in frags if f[0] & FIRST) == 1 and sum(1 for f in frags if f[0] & LAST) == 1
    r = Reassembler()
    out = [r.feed(f) for f in frags]
    assert out[-1] == msg and all(o is None for o in out[:-1]) and not r.in_progress


def test_fragment_sizes_at_default_mtu():
    frags = fragment(bytes(1024))
    assert len(frags) == 54 and all(len(f) == 20 for f in frags[:-1])  # 19 bytes each, §10
    assert fragment(b"\x01") == [b"\xc0\x01"]
    assert [f[0] for f in fragment(bytes(39))] == [0x80, 0x01, 0x42]
    with pytest.raises(ProtocolError) as e:
        fragment(bytes(1025))
    assert e.value.code == Err.TOO_LARGE
    with pytest.raises(ProtocolError) as e:
        fragment(b"")
    assert e.value.code == Err.MALFORMED
    with pytest.raises(ValueError):
        fragment(b"x", 4)


def test_index_wraps_mod_64():
    frags = fragment(bytes(range(100)), 5)  # one byte per fragment
    assert [f[0] & 0x3F for f in frags][62:66] == [62, 63, 0, 1]
    r = Reassembler()
    assert [r.feed(f) for f in frags][-1] == bytes(range(100))


def _code(r, frag):
    with pytest.raises(ProtocolError) as e:
        r.feed(frag)
    return e.value.code


def test_reassembler_rules():
    r = Reassembler()
    assert r.feed(b"\x01abc") is None and not r.in_progress  # not FIRST while idle: ignored
    assert r.feed(b"\x41abc") is None  # a stray LAST too
    assert _code(r, b"\x81abc") == Err.FRAGMENT  # FIRST with index 1
    assert _code(r, b"") == Err.FRAGMENT
    assert r.feed(b"\x80ab") is None and r.in_progress
    assert _code(r, b"\x02cd") == Err.FRAGMENT and not r.in_progress  # index 2, expected 1: discarded
    assert r.feed(b"\x41cd") is None  # the rest of the discarded message is ignored
    r.feed(b"\x80ab")
    assert _code(r, b"\x01") == Err.FRAGMENT  # header only
    assert _code(r, b"\xc0") == Err.FRAGMENT
    r.feed(b"\x80ab")
    assert r.feed(b"\xc0new") == b"new"  # FIRST discards the message in progress
    r.feed(b"\x80" + b"x" * 600)
    assert _code(r, b"\x41" + b"y" * 425) == Err.TOO_LARGE and not r.in_progress
    r.feed(b"\x80" + b"x" * 600)
    assert r.feed(b"\x41" + b"y" * 424) == b"x" * 600 + b"y" * 424  # exactly 1024


def test_reassembler_timeout():
    clock = [0.0]
    r = Reassembler(clock=lambda: clock[0])
    r.feed(b"\x80ab")
    clock[0] = 2.0
    assert r.feed(b"\x01cd") is None and r.in_progress  # 2 s is still in time
    clock[0] = 4.5
    assert r.feed(b"\x42ef") is None and not r.in_progress  # stalled: dropped, then ignored


@given(st.lists(st.tuples(messages, st.integers(5, 100)), min_size=1, max_size=4), st.data())
@settings(max_examples=100)
def test_reassembler_recovers_after_garbage(items, data):
    r = Reassembler()
    for msg, mtu in items:
        junk = data.draw(st.binary(max_size=30))
        try:
            r.feed(junk)
        except ProtocolError as e:
            assert e.code in (Err.FRAGMENT, Err.TOO_LARGE)
        out = [r.feed(f) for f in fragment(msg, mtu)]
        assert out[-1] == msg


def test_serial_frame_layout():
    frame = encode_frame(b"\x01")
    assert frame == b"LK\x00\x01\x01" + struct.pack(">I", zlib.crc32(b"\x00\x01\x01"))
    with pytest.raises(ProtocolError):
        encode_frame(b"")
    with pytest.raises(ProtocolError) as e:
        encode_frame(bytes(1025))
    assert e.value.code == Err.TOO_LARGE


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


@given(st.lists(st.binary(min_size=1, max_size=200), min_size=2, max_size=5), st.data())
@settings(max_examples=200)
def test_serial_damaged_frame_dropped_others_kept(msgs, data):
    frames = [bytearray(encode_frame(m)) for m in msgs]
    k = data.draw(st.integers(0, len(frames) - 1))
    i = data.draw(st.integers(2, len(frames[k]) - 1))  # not the "LK": a damaged length, body or CRC
    frames[k][i] ^= data.draw(st.integers(1, 255))
    d = FrameDecoder()
    got = d.feed(b"".join(bytes(f) for f in frames))
    # a damaged length makes the decoder wait for that many bytes before the CRC fails; the
    # frames after it are found once enough bytes have arrived (here: a frame and padding)
    got += d.feed(encode_frame(b"\x01") + bytes(1100))
    assert got == [m for n, m in enumerate(msgs) if n != k] + [b"\x01"]


def test_serial_resync_one_byte_after_the_l():
    good = encode_frame(b"\x02\x03")
    bad = bytearray(encode_frame(b"\x01"))
    bad[-1] ^= 1
    assert FrameDecoder().feed(bytes(bad) + good) == [b"\x02\x03"]
    # a frame hidden inside a bad frame's body is found, because the hunt resumes at "L" + 1
    inner = encode_frame(b"\x05")
    outer = bytearray(encode_frame(b"\x00" + inner))
    outer[-1] ^= 1
    assert FrameDecoder().feed(bytes(outer)) == [b"\x05"]
    assert FrameDecoder().feed(b"LK\x00\x00" + good) == [b"\x02\x03"]  # length 0
    assert FrameDecoder().feed(b"LK\x04\x01" + good) == [b"\x02\x03"]  # length 1025
    d = FrameDecoder()
    assert d.feed(b"xxL") == [] and d.feed(good[1:]) == [b"\x02\x03"]  # "L" at the end of one slice


# ---- advertisement (§3.3) ----

@given(st.binary(min_size=8, max_size=8), st.one_of(st.integers(0, 100), st.just(255)), st.integers(0, 255),
       st.binary(max_size=40))
def test_advert_round_trip_and_robustness(lock_id, pct, flags, noise):
    a = Advert(lock_id, pct, flags)
    raw = a.encode()
    assert len(raw) <= 31 and len(scan_response()) <= 31
    assert Advert.decode(raw) == a and a.flag_set == Flag(flags)
    assert raw[:3] == b"\x02\x01\x06" and raw[5:8] == b"\xff\xff\x01"  # flags AD; company 0xFFFF LE, format 1
    for blob in (noise, raw[:-1], raw + noise):
        try:
            Advert.decode(blob)
            parse_ad(blob)
        except ProtocolError as e:
            assert e.code in (Err.MALFORMED, Err.UNSUPPORTED_VERSION)
