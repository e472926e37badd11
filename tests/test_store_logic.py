"""Journal logic (sequence, chain, ack, overflow) and key slots, under MicroPython."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

import mpyhost
from lockproto import Err, Event, LockKeys
from lockproto.journal import Record, chain_genesis, verify_chain

pytestmark = pytest.mark.mpy
MPY = Path(__file__).resolve().parent / "mpy"
LOCK = b"LK\x00\x00\x00\x00\x00\x07"
KEYS = LockKeys.from_master(bytes(range(32)), LOCK, 1)


@pytest.fixture(scope="module")
def st_w():
    with mpyhost.Worker(["storetest"], paths=[MPY], heapsize="1m") as w:
        yield w


def records(hexes):
    return [Record.decode(bytes.fromhex(h)) for h in hexes]


def test_append_read_chain_and_ack(st_w):
    ops = [["a", Event.BOOT]] + [["a", Event.UNLOCK]] * 5 + [["r", 1, 16], ["k", 3, None], ["r", 1, 16],
                                                            ["k", 2, None], ["k", 9, None], ["r", 7, 4]]
    out = st_w.call("storetest.journal_run", 8, ops)
    first, recs, head, prev = out[6]
    assert (first, head, len(recs)) == (1, 6, 6)
    assert bytes.fromhex(prev) == chain_genesis(KEYS.jm, LOCK)
    verify_chain({1: KEYS}, bytes.fromhex(prev), records(recs), 1)
    assert out[7] == [Err.OK, 3, 3]
    first, recs2, _, prev2 = out[8]
    assert first == 4 and bytes.fromhex(prev2) == records(recs)[2].chain
    assert out[9] == [Err.OK, 3, 3]  # an old ack changes nothing
    assert out[10][0] == Err.NOT_FOUND
    assert out[11][0] == 7 and out[11][1] == []


def test_ack_with_wrong_chain_frees_nothing(st_w):
    out = st_w.call("storetest.journal_run", 8, [["a", 1], ["a", 2], ["k", 2, "00" * 8]])
    assert out[-1] == [Err.BAD_MAC, 0, 2]


@given(st.integers(4, 20), st.integers(1, 80))
@settings(max_examples=25, deadline=None)
def test_overflow_keeps_newest_and_says_how_many_were_lost(st_w, capacity, n):
    out = st_w.call("storetest.journal_run", capacity, [["a", Event.DOOR_OPEN]] * n + [["r", 1, 16]])
    first, recs, head, prev = out[-1]
    recs = records(recs)
    total_lost = out[-2][2]
    # everything that is not retained was counted as lost, and the chain of what is retained verifies
    assert first == head - min(head, capacity) + 1
    assert total_lost == head - capacity if head > capacity else total_lost == 0
    assert [r.seq for r in recs] == list(range(first, first + len(recs)))
    if recs:
        verify_chain({1: KEYS}, bytes.fromhex(prev), recs, 1)
    overflow = [r for r in recs if r.event == Event.OVERFLOW]
    if total_lost and head - first < 16:
        # the newest OVERFLOW record counts every loss before it
        assert overflow and overflow[-1].arg <= total_lost


def test_key_slots(st_w):
    out = st_w.call("storetest.keys_run", [
        ["load"], ["provision", 1, 1], ["load"], ["install", 2, 2], ["load"], ["install", 2, 3],
        ["corrupt", "keyB", 5], ["load"], ["install", 3, 3], ["load"]])
    none, first, ok, second, stale, after_corrupt, ok3, third = out
    assert none is None
    assert first == [1, LockKeys.from_master(bytes([1]) * 32, LOCK, 1).tk.hex()]
    assert ok == Err.OK and second[0] == 2 and stale == Err.STALE
    # a damaged new slot falls back to the old key, never to nothing or a mix
    assert after_corrupt == first
    assert ok3 == Err.OK and third[0] == 3
