"""Hypothesis state machine: appends, torn appends, acknowledgements, exports and reboots of the
journal on the flash twin (ring + littlefs journal state, tests/mpy/journalsm.py,
under the real MicroPython) against a model of what the lock must hold.

The model keeps its own picture of the ring (112 records a block, RING blocks; the oldest
block goes whole when the ring needs it; a torn record closes its block), so it predicts
the first retained sequence, the losses and the OVERFLOW records exactly, also across
torn appends; every export is opened and
chain-verified with lockproto, as the key server does."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import mpyhost
from lockproto import Err, Event, LockKeys
from lockproto.journal import Record, chain_genesis, open_chunk, verify_chain

pytestmark = pytest.mark.mpy
MPY = Path(__file__).resolve().parent / "mpy"
LOCK = b"LK\x00\x00\x00\x00\x00\x33"
KEYS = LockKeys.from_master(bytes(range(64, 96)), LOCK, 1)
PER_BLOCK = 112
RING = 3
KV = 16


@pytest.fixture(scope="module")
def worker():
    with mpyhost.Worker(["journalsm"], paths=[MPY], heapsize="2m") as w:
        yield w


def machine(worker):
    class JournalMachine(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            self.w = worker
            assert self.w.call("journalsm.new", KV + RING) == [0, 0, 1, 0, 0]
            self.recs: dict[int, bytes] = {}
            self.head = 0
            self.acked = 0
            self.gone = 0      # records up to this sequence were overwritten
            self.lost = 0
            # the ring as the model sees it: per block position [first_seq, count] or None
            self.blocks: list[list[int] | None] = [None] * RING
            self.hb = -1
            self.closed = False

        def first(self):
            return max(self.acked, self.gone) + 1

        def _new_block(self, seq):
            if self.hb >= 0 and self.closed and self.blocks[self.hb][1] == 0:
                nb = self.hb  # a block with only a torn slot is erased and reused
            else:
                nb = (self.hb + 1) % RING
                old = self.blocks[nb]
                if old is not None and old[1]:
                    last = old[0] + old[1] - 1
                    if last >= self.first():  # it still holds retained records: overwritten
                        self.lost += last - self.first() + 1
                    self.gone = max(self.gone, last)
            self.blocks[nb] = [seq, 0]
            self.hb, self.closed = nb, False

        def _place(self, seq):
            b = self.blocks[self.hb] if self.hb >= 0 else None
            if b is None or b[1] >= PER_BLOCK or self.closed:
                self._new_block(seq)

        def _take(self, rec: bytes):
            r = Record.decode(rec)
            assert r.seq == self.head + 1
            self._place(r.seq)
            self.blocks[self.hb][1] += 1
            self.recs[r.seq] = rec
            self.head = r.seq
            return r

        @rule(n=st.integers(1, 120), event=st.sampled_from([Event.UNLOCK, Event.LOCK, Event.DOOR_OPEN]),
              user=st.integers(0, 2**32 - 1))
        def append(self, n, event, user):
            h, made = self.w.call("journalsm.append", n, int(event), user)
            assert h == self.head
            mine = 0
            for rec in made:
                lost_before = self.lost
                r = self._take(rec)
                if r.event == Event.OVERFLOW:
                    assert r.arg == lost_before and lost_before > 0
                else:
                    assert (r.event, r.user_id) == (event, user)
                    mine += 1
            assert mine == n

        @rule(data=st.data())
        @precondition(lambda self: self.head > 0)
        def ack_good(self, data):
            seq = data.draw(st.integers(self.first(), self.head)) if self.first() <= self.head else self.head
            if seq < self.first():
                return
            st_, acked = self.w.call("journalsm.ack", seq, self.recs[seq][24:])
            assert st_ == Err.OK and acked == seq
            self.acked = seq

        @rule(data=st.data())
        @precondition(lambda self: self.head > 0)
        def ack_bad(self, data):
            kind = data.draw(st.sampled_from(["chain", "ahead", "gone"]))
            if kind == "chain" and self.first() <= self.head:
                seq = data.draw(st.integers(self.first(), self.head))
                wrong = bytes(b ^ 1 for b in self.recs[seq][24:])
                assert self.w.call("journalsm.ack", seq, wrong) == [Err.BAD_MAC, self.acked]
            elif kind == "ahead":
                assert self.w.call("journalsm.ack", self.head + 1, b"\0" * 8) == [Err.NOT_FOUND, self.acked]
            elif self.gone > self.acked:
                seq = data.draw(st.integers(self.acked + 1, self.gone))
                assert self.w.call("journalsm.ack", seq, self.recs[seq][24:])[0] == Err.NOT_FOUND

        @rule(data=st.data(), n=st.integers(1, 16))  # JOURNAL_READ max_count is 1..16
        def export(self, data, n):
            frm = data.draw(st.integers(1, self.head + 2))
            chunk = open_chunk({1: KEYS}, self.w.call("journalsm.export", frm, n))
            first = max(frm, self.first())
            want = list(range(first, min(self.head, first + n - 1) + 1)) if first <= self.head else []
            assert chunk.head_seq == self.head
            assert chunk.first_seq == (first if want else self.head + 1)
            assert [r.encode() for r in chunk.records] == [self.recs[s] for s in want]
            prev = chain_genesis(KEYS.jm, LOCK) if chunk.first_seq == 1 else \
                Record.decode(self.recs[chunk.first_seq - 1]).chain
            assert chunk.prev_chain == prev
            if chunk.records:
                verify_chain({1: KEYS}, chunk.prev_chain, chunk.records, 1)

        @rule(tear=st.integers(1, 35))
        def torn_append(self, tear):
            got = self.w.call("journalsm.torn_append", tear)
            # the torn record is discarded; its block is closed (its space is lost until
            # the ring comes round), whatever the ring had to give up for it is gone
            self._place(self.head + 1)
            self.closed = True
            assert got == self.status()

        @rule()
        def reboot(self):
            assert self.w.call("journalsm.reboot") == self.status()

        def status(self):
            count = self.head - self.first() + 1 if self.first() <= self.head else 0
            return [self.head, self.acked, self.first(), count, self.lost]

        @invariant()
        def agrees(self):
            assert self.w.call("journalsm.status") == self.status()

    return JournalMachine


def test_journal_on_flash_against_a_model(worker):
    m = machine(worker)
    m.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None,
                                   suppress_health_check=[HealthCheck.too_slow])
    m.TestCase().runTest()


def test_wear_is_spread_and_an_erase_serves_a_block_of_records(worker):
    worker.call("journalsm.new", KV + RING)
    worker.call("journalsm.append", 10 * PER_BLOCK, int(Event.DOOR_OPEN), 1)
    erases, programs, most = worker.call("journalsm.wear")
    # 10 blocks of records through a 3-block ring: about one erase per block of records,
    # and no block erased much more than its share
    assert 10 <= erases <= 14
    assert most <= 5
