"""The journal on flash (firmware/lib/lockring.py, lockstore.py) under the real
MicroPython: capacity, boot recovery (head, tail, torn final record, losses since
the last saved state), acknowledgement, checked on the host side with lockproto."""

from __future__ import annotations

from pathlib import Path

import pytest

import mpyhost
from lockproto import Event, LockKeys, ProtocolError
from lockproto.journal import Record, chain_genesis, verify_chain

pytestmark = pytest.mark.mpy
MPY = Path(__file__).resolve().parent / "mpy"
LOCK = b"LK\x00\x00\x00\x00\x00\x07"
KEYS = LockKeys.from_master(bytes(range(32)), LOCK, 1)
PER_BLOCK = (4096 - 32) // 36


@pytest.fixture(scope="module")
def ring():
    with mpyhost.Worker(["flashtest"], paths=[MPY], heapsize="2m") as w:
        yield w


def _verified(dump):
    recs = [Record.decode(r) for r in dump["records"]]
    assert [r.seq for r in recs] == list(range(dump["first"], dump["first"] + len(recs)))
    if recs:
        verify_chain({1: KEYS}, dump["prev"], recs, 1)
        assert recs[-1].seq == dump["head"]
    return recs


def test_default_partition_holds_more_than_10000_events(ring):
    info = ring.call("flashtest.ring_info", 128)
    assert info["per_block"] == PER_BLOCK == 112
    assert info["ring_blocks"] == 128 - 16
    assert info["capacity"] == (info["ring_blocks"] - 1) * PER_BLOCK >= 10_000


def test_records_survive_a_reboot_identically(ring):
    before = ring.call("flashtest.ring_dump", 4, [["a", 150]])
    after = ring.call("flashtest.ring_dump", 4, [["a", 150], ["b"]])
    assert after["records"] == before["records"] and after["prev"] == before["prev"]
    recs = _verified(after)
    assert after["prev"] == chain_genesis(KEYS.jm, LOCK) and len(recs) == 150
    # a raw ring: one erase per block of records, one program per record (and per block header)
    assert before["erases"] == 2 and before["programs"] == 150 + 2


def test_overflow_keeps_the_newest_and_reboot_recovers_tail_chain_and_losses(ring):
    n = 4 * PER_BLOCK + 40
    live, rebooted = ring.call("flashtest.ring_run", 4, [["a", n], ["b"]])
    assert live == rebooted
    head, acked, first, count, lost = live
    # the oldest block went whole when the ring needed it: RAM and flash agree
    assert first == PER_BLOCK + 1 and count == head - PER_BLOCK and acked == 0
    assert 3 * PER_BLOCK <= count <= 4 * PER_BLOCK
    assert lost == first - 1  # everything not retained was lost, and counted
    dump = _verified(ring.call("flashtest.ring_dump", 4, [["a", n], ["b"]]))
    overflow = [r for r in dump if r.event == Event.OVERFLOW]
    assert overflow and overflow[-1].arg == lost


def test_losses_since_the_last_saved_state_are_counted_from_the_ring(ring):
    # the journal state reaches the key-value store once (early), then never again
    dump = ring.call("flashtest.ring_dump", 4, [["a", 10], ["x", 6 * PER_BLOCK]])
    recs = _verified(dump)
    assert 3 * PER_BLOCK <= len(recs) <= 4 * PER_BLOCK and dump["first"] > 1
    assert dump["lost"] == dump["first"] - 1  # no acks: every record before the tail was lost


def test_ack_frees_records_and_persists(ring):
    out = ring.call("flashtest.ring_run", 4, [["a", 30], ["k", 12], ["b"], ["k", 5], ["k", 31], ["a", 1]])
    assert out[1] == [30, 12, 13, 18, 0]
    assert out[2] == out[1]  # after the reboot: acked, first, count as before
    assert out[3] == out[1]  # an old ack changes nothing
    assert out[4] == out[1]  # a sequence the lock does not hold frees nothing
    assert out[5] == [31, 12, 13, 19, 0]
    dump = _verified(ring.call("flashtest.ring_dump", 4, [["a", 30], ["k", 12], ["b"], ["a", 1]]))
    assert dump[0].seq == 13


def test_acked_everything_then_reboot_continues_the_sequence_and_chain(ring):
    out = ring.call("flashtest.ring_run", 4, [["a", 20], ["k", 20], ["b"], ["a", 2], ["b"]])
    assert out[2] == [20, 20, 21, 0, 0]
    assert out[4] == [22, 20, 21, 2, 0]
    dump = _verified(ring.call("flashtest.ring_dump", 4, [["a", 20], ["k", 20], ["b"], ["a", 2], ["b"]]))
    assert [r.seq for r in dump] == [21, 22]


@pytest.mark.parametrize("tear", [0, 1, 20, 35])
def test_a_torn_final_record_is_discarded_and_the_next_starts_a_fresh_block(ring, tear):
    out = ring.call("flashtest.ring_run", 4, [["a", 5], ["t", tear], ["a", 3], ["b"]])
    assert out[1] == "PowerCut"
    assert out[2] == [8, 0, 1, 8, 0]  # seq 6 was never durable: it is written again
    assert out[3] == out[2]
    dump = _verified(ring.call("flashtest.ring_dump", 4, [["a", 5], ["t", tear], ["a", 3], ["b"]]))
    assert [r.seq for r in dump] == list(range(1, 9))


def test_a_record_whose_write_completed_before_the_cut_stays(ring):
    out = ring.call("flashtest.ring_run", 4, [["a", 5], ["t", 36], ["a", 1]])
    assert out[1] == "PowerCut"  # power died right after the whole slot was programmed
    assert out[2] == [7, 0, 1, 7, 0]


def test_a_torn_record_at_a_block_boundary(ring):
    out = ring.call("flashtest.ring_run", 4, [["a", PER_BLOCK], ["t", 10], ["a", 2], ["b"]])
    assert out[1] == "PowerCut"
    assert out[2] == [PER_BLOCK + 2, 0, 1, PER_BLOCK + 2, 0]
    assert out[3] == out[2]


def test_a_damaged_record_stays_readable_and_the_server_sees_the_damage(ring):
    dump = ring.call("flashtest.ring_dump", 4, [["a", 8], ["d", 5], ["b"]])
    assert dump["damaged"] >= 1 and len(dump["records"]) == 8  # the journal is still exported whole
    recs = [Record.decode(r) for r in dump["records"]]
    with pytest.raises(ProtocolError) as e:
        verify_chain({1: KEYS}, dump["prev"], recs, 1)
    assert e.value.detail == 5  # the chain names the damaged record


def test_clearing_the_ring_leaves_no_record_of_an_earlier_life(ring):
    # provisioning after a factory reset: the old records (another key, maybe another home)
    # are erased on the flash, not only forgotten in RAM, and the new journal starts at 1
    dump = ring.call("flashtest.ring_dump", 4, [["a", 150], ["k", 150], ["c"], ["b"]])
    assert dump["records"] == [] and dump["head"] == 0 and dump["first"] == 1 and dump["used_blocks"] == 0
    out = ring.call("flashtest.ring_run", 4, [["a", 150], ["c"], ["a", 3], ["b"]])
    assert out[2] == out[3] == [3, 0, 1, 3, 0]
    new = LockKeys.from_master(bytes(range(1, 33)), LOCK, 1)
    dump = ring.call("flashtest.ring_dump", 4, [["a", 150], ["c"], ["a", 3], ["b"]])
    recs = [Record.decode(r) for r in dump["records"]]
    assert [r.seq for r in recs] == [1, 2, 3] and dump["prev"] == chain_genesis(new.jm, LOCK)
    verify_chain({1: new}, dump["prev"], recs, 1)


def test_a_torn_record_in_a_full_ring_costs_no_extra_block(ring):
    # the ring is full; the append that took the oldest block is torn; after the reboot
    # the next append reuses that block instead of dropping another block of records
    n = 4 * PER_BLOCK
    out = ring.call("flashtest.ring_run", 4, [["a", n], ["t", 10], ["a", 1], ["b"]])
    assert out[1] == "PowerCut"
    head, acked, first, count, lost = out[2]
    # the append and the OVERFLOW record that reports the one block lost
    assert head == n + 2 and lost == PER_BLOCK and first == PER_BLOCK + 1
    assert out[3] == out[2]


def test_a_journal_state_ahead_of_the_ring_never_reuses_a_sequence(ring):
    # blank ring, state says 50 was acknowledged: the journal goes on at 51
    out = ring.call("flashtest.ring_run", 4, [["j", 50], ["a", 3], ["b"]])
    assert out[1] == out[2] == [53, 50, 51, 3, 0]
    # the ring holds 1..5, all acknowledged, and the state jumps to 50: the new records
    # start a block of their own; the old block is never read as holding 1..50
    out = ring.call("flashtest.ring_run", 4, [["a", 5], ["k", 5], ["j", 50], ["a", 2], ["b"]])
    assert out[3] == out[4] == [52, 50, 51, 2, 0]
    dump = ring.call("flashtest.ring_dump", 4, [["a", 5], ["k", 5], ["j", 50], ["a", 2], ["b"]])
    assert [Record.decode(r).seq for r in dump["records"]] == [51, 52]
