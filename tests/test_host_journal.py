"""Host side (lockproto.journal): records, chain, export chunks across a re-key."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings, strategies as st

from lockproto import Err, Event, LockKeys, ProtocolError
from lockproto.codes import CHUNK_MAX
from lockproto.crypto import aes_ctr, mac8, mac16
from lockproto.journal import Record, chain_genesis, chain_next, make_export_chunk, open_chunk, seal, verify_chain

NOW = 1_767_225_600
u32 = st.integers(0, 2**32 - 1)
K1 = LockKeys.from_master(bytes(range(32)), b"L" * 8, 1)
K2 = LockKeys.from_master(bytes(range(32, 64)), b"L" * 8, 2)


def journal(keys, events, prev=None, first=1):
    """Sealed records; a REKEYED event switches to the K2 chain key."""
    prev = prev if prev is not None else chain_genesis(keys.jm, keys.lock_id)
    out, k = [], keys
    for i, (ev, user, ticket, arg) in enumerate(events):
        if ev == Event.REKEYED:
            k, arg = K2, 2
        r = seal(k.jm, prev, Record(first + i, NOW + i, ev, 0, i & 0xFFFF, user, ticket, arg))
        out.append(r)
        prev = r.chain
    return out


def test_chain_formulas():
    g = chain_genesis(K1.jm, K1.lock_id)
    assert g == mac8(K1.jm, b"LK1/chain\x00" + b"L" * 8)
    r = Record(1, NOW, Event.PROVISIONED)
    assert seal(K1.jm, g, r).chain == mac8(K1.jm, g + r.body()) == chain_next(K1.jm, g, r.body())
    with pytest.raises(ValueError):
        chain_next(K1.jm, g[:7], r.body())


events = st.lists(st.tuples(st.integers(1, 0x13).filter(lambda e: e != Event.REKEYED), u32, u32, u32),
                  min_size=1, max_size=16)


@given(events, st.data())
@settings(max_examples=100)
def test_chain_detects_edit_drop_reorder_insert(evs, data):
    recs = journal(K1, evs)
    genesis = chain_genesis(K1.jm, K1.lock_id)
    assert verify_chain({1: K1}, genesis, recs, 1) == 1
    i = data.draw(st.integers(0, len(recs) - 1))
    field = data.draw(st.sampled_from(["seq", "time", "event", "flags", "arg16", "user_id", "ticket_id", "arg"]))
    bound = 0xFF if field in ("event", "flags") else 0xFFFF if field == "arg16" else 0xFFFFFFFF
    edited = list(recs)
    edited[i] = replace(recs[i], **{field: getattr(recs[i], field) ^ data.draw(st.integers(1, bound))})
    cases = [edited]
    if i < len(recs) - 1:  # dropping the newest records is caught by head_seq in every chunk
        cases.append(recs[:i] + recs[i + 1:])
    if len(recs) > 1:
        j = data.draw(st.integers(0, len(recs) - 1).filter(lambda j: j != i))
        swapped = list(recs)
        swapped[i], swapped[j] = swapped[j], swapped[i]
        cases.append(swapped)
    forged = seal(K2.jm, recs[i].chain, Record(recs[i].seq + 1, NOW, Event.UNLOCK, user_id=1))  # wrong key
    cases.append(recs[:i + 1] + [forged] + recs[i + 1:])
    for bad in cases:
        k = next(k for k in range(len(bad)) if k >= len(recs) or bad[k] != recs[k])
        first_bad = bad[k].seq  # the detail names the first bad record's seq as the record shows it
        with pytest.raises(ProtocolError) as e:
            verify_chain({1: K1}, genesis, bad, 1)
        assert e.value.code == Err.BAD_MAC and e.value.detail == first_bad


def test_chain_across_a_rekey():
    evs = [(Event.PROVISIONED, 0, 0, 0), (Event.UNLOCK, 5, 6, 0), (Event.REKEYED, 0, 0, 2), (Event.LOCK, 5, 6, 0)]
    recs = journal(K1, evs)
    keys = {1: K1, 2: K2}
    genesis = chain_genesis(K1.jm, K1.lock_id)
    assert verify_chain(keys, genesis, recs, 1) == 2
    assert verify_chain(keys.get, genesis, recs, 1) == 2  # a callable works too
    assert verify_chain(keys, recs[1].chain, recs[2:], 1) == 2  # a later start
    assert verify_chain(keys, recs[2].chain, recs[3:], 2) == 2
    with pytest.raises(ProtocolError) as e:
        verify_chain(keys, recs[2].chain, recs[3:], 1)  # wrong start epoch
    assert (e.value.code, e.value.detail) == (Err.BAD_MAC, 4)
    with pytest.raises(ProtocolError) as e:
        verify_chain({1: K1}, genesis, recs, 1)  # no keys for epoch 2
    assert (e.value.code, e.value.detail) == (Err.BAD_MAC, 3)
    # a REKEYED record naming an older epoch breaks the chain, whatever its MAC
    back = seal(K1.jm, recs[1].chain, replace(recs[2], arg=1))
    with pytest.raises(ProtocolError) as e:
        verify_chain(keys, genesis, recs[:2] + [back], 1)
    assert (e.value.code, e.value.detail) == (Err.BAD_MAC, 3)
    # the REKEYED record itself is under the new key: the same record sealed under the old key fails
    old = seal(K1.jm, recs[1].chain, recs[2])
    with pytest.raises(ProtocolError):
        verify_chain(keys, genesis, recs[:2] + [old], 1)


def test_export_chunk_layout_and_tamper():
    recs = journal(K1, [(Event.PROVISIONED, 0, 0, 0), (Event.UNLOCK, 5, 6, 0), (Event.LOCK, 5, 6, 0)])
    g = chain_genesis(K1.jm, K1.lock_id)
    payload = make_export_chunk(K1, 2, recs[1:], 3, recs[0].chain)
    assert len(payload) == 37 + 32 * 2
    assert payload[:21] == b"\0\0\0\x01" + b"\0\0\0\x02" + b"\x02" + b"\0\0\0\x03" + recs[0].chain
    ct = payload[21:-16]
    assert ct[:32] == aes_ctr(K1.je, b"L" * 8 + b"\0\0\0\x02", recs[1].encode())
    assert ct[32:] == aes_ctr(K1.je, b"L" * 8 + b"\0\0\0\x03", recs[2].encode())
    assert payload[-16:] == mac16(K1.jm, b"LK1/export\x00" + b"L" * 8 + payload[:-16])
    chunk = open_chunk({1: K1}, payload)
    assert (chunk.epoch, chunk.first_seq, chunk.head_seq, chunk.prev_chain, chunk.records, chunk.count) == \
        (1, 2, 3, recs[0].chain, recs[1:], 2)
    verify_chain({1: K1}, chunk.prev_chain, chunk.records, 1)
    for i in range(len(payload)):
        for x in (0x01, 0x80):
            bad = bytearray(payload)
            bad[i] ^= x
            with pytest.raises(ProtocolError) as e:
                open_chunk({1: K1}, bytes(bad))
            assert e.value.code in (Err.BAD_MAC, Err.MALFORMED, Err.WRONG_EPOCH)
    with pytest.raises(ProtocolError) as e:
        open_chunk({2: K2}, payload)
    assert (e.value.code, e.value.detail) == (Err.WRONG_EPOCH, 1)
    with pytest.raises(ProtocolError) as e:
        open_chunk({1: LockKeys.from_master(bytes(32), b"L" * 8, 1)}, payload)
    assert e.value.code == Err.BAD_MAC
    empty = make_export_chunk(K1, 4, [], 3, recs[2].chain)
    assert len(empty) == 37 and open_chunk({1: K1}, empty).records == []
    assert g != recs[0].chain


def test_export_chunk_consistency_checked_after_the_mac():
    recs = journal(K1, [(Event.PROVISIONED, 0, 0, 0)])
    for first, records, head in ((5, [], 3), (1, recs, 0), (0, [], 2**32 - 1)):
        payload = make_export_chunk(K1, first, records, head, bytes(8))
        with pytest.raises(ProtocolError) as e:
            open_chunk({1: K1}, payload)
        assert e.value.code == Err.MALFORMED


def test_export_chunk_encoder_refuses_bad_input():
    recs = journal(K1, [(Event.BOOT, 0, 0, 0)] * (CHUNK_MAX + 1))
    with pytest.raises(ValueError):
        make_export_chunk(K1, 1, recs, 17, bytes(8))
    with pytest.raises(ValueError):
        make_export_chunk(K1, 2, recs[:2], 17, bytes(8))  # sequence numbers do not match first_seq


@given(st.binary(max_size=600))
@settings(max_examples=300)
def test_open_chunk_raises_only_protocol_errors(data):
    for blob in (data, (b"\0\0\0\x01" + data)):
        try:
            open_chunk({1: K1}, blob)
        except ProtocolError as e:
            assert e.code in (Err.MALFORMED, Err.BAD_MAC, Err.WRONG_EPOCH)


def test_record_decode_and_names():
    r = Record(1, NOW, 0x7F)
    assert r.event_name == "EVENT_0x7f" and Record(1, NOW, Event.JAM).event_name == "JAM"
    with pytest.raises(ProtocolError):
        Record.decode(bytes(31))
    with pytest.raises(ValueError):
        Record(2**32, 0, 1).encode()
