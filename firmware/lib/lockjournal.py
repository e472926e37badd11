# The event journal's logic (docs/protocol.md §6): sequence numbers, the chain
# MAC, acknowledgement and overflow, over a record store with the interface
# capacity, count(), full(), append(rec, prev_chain), oldest(), drop_oldest(),
# get(i), prev_chain() and clear(): RamRecords here, lockring.FlashRecords on flash
# (power-loss safe, docs/storage.md).
import struct
from lockcrypto import compare_digest
from lockrecord import pack_body, seal, chain_genesis, chain_next

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

# protocol numbers (docs/protocol.md; the same as lockcodes, tests/test_fw_consts.py)
_E_OK = const(0)
_E_NOT_FOUND = const(22)
_E_BAD_MAC = const(9)
_EV_OVERFLOW = const(0x10)
_CHUNK_MAX = const(16)
_RECORD_BODY_LEN = const(24)

_OVERFLOW_EVERY = const(64)  # one OVERFLOW record per this many lost records


def _seq(rec):
    return struct.unpack(">I", rec[:4])[0]


class RamRecords:
    # Records in a list; a stand-in for the flash ring with the same interface.
    def __init__(self, capacity):
        self.capacity = capacity
        self._recs = []

    def count(self):
        return len(self._recs)

    def full(self):
        return len(self._recs) >= self.capacity

    def append(self, rec, prev_chain=None):
        if len(self._recs) >= self.capacity:
            raise ValueError("full")
        self._recs.append(bytes(rec))

    def prev_chain(self):
        return None  # RAM does not outlive a reboot: the journal's own value holds

    def clear(self):
        self._recs = []

    def oldest(self):
        return self._recs[0] if self._recs else None

    def drop_oldest(self):
        self._recs.pop(0)

    def get(self, i):
        return self._recs[i]


_STATE = ">III8sI"  # acked, lost, reported, base_chain, first retained sequence
_BLOB_LEN = const(24)


class Journal:
    # head: newest sequence; acked: newest acknowledged; base_chain: chain value
    # before the oldest retained record. `state` (from state_blob()) carries
    # what the records themselves cannot tell after a reboot; head and chain
    # are recovered from the newest stored record.
    def __init__(self, store, lock_id, jm, state=None):
        self.store = store
        self.lock_id = lock_id
        genesis = chain_genesis(jm, lock_id)
        self.acked, self.lost, self._reported, self.base_chain = 0, 0, 0, genesis
        first = 1
        # a new journal must persist its genesis: after a re-key jm is another key
        self.dirty = True
        if state is not None and len(state) == _BLOB_LEN:
            self.acked, self.lost, self._reported, self.base_chain, first = struct.unpack(_STATE, state)
            self.dirty = False
        n = store.count()
        # does the newest record verify under jm? No: it was written under
        # another key (a power cut fell between a re-key and its REKEYED record)
        self.tail_ok = True
        if n:
            last = store.get(n - 1)
            self.head = _seq(last)
            self.chain = last[_RECORD_BODY_LEN:]
            pc = store.get(n - 2)[_RECORD_BODY_LEN:] if n > 1 else store.prev_chain()
            if pc is None:
                pc = self.base_chain
            self.tail_ok = compare_digest(chain_next(jm, pc, last[:_RECORD_BODY_LEN]), self.chain)
        else:
            self.head = self.acked
            self.chain = self.base_chain
        self.head = max(self.head, self.acked, first - 1)  # a sequence is never reused
        # Boot recovery over a store that outlived the reboot: what was
        # acknowledged or already counted lost goes; what the store lost since
        # the state was saved (overwritten after an overflow) is counted; the
        # chain before the oldest retained record comes from the store itself.
        floor = max(first, self.acked + 1)
        while store.count() and _seq(store.oldest()) < floor:
            store.drop_oldest()
        if store.count():
            pc = store.prev_chain()
            if pc is not None:
                self.base_chain = pc
            f = _seq(store.oldest())
            gone = f - floor
            if gone > 0:
                self.lost += gone
                self.dirty = True
        elif n:
            self.base_chain = self.chain
        self._overflow_seq = 0  # sequence of the newest OVERFLOW record written

    def state_blob(self):
        self.dirty = False
        return struct.pack(_STATE, self.acked, self.lost, self._reported, self.base_chain, self.first_seq())

    def backlog(self):
        return self.head - self.acked

    def append(self, jm, now, event, flags=0, arg16=0, user_id=0, ticket_id=0, arg=0):
        # Seal and store one record under journal-MAC key jm (the current epoch's).
        rec = self._put(jm, now, event, flags, arg16, user_id, ticket_id, arg)
        # Losses are reported by an OVERFLOW record carrying the total lost so
        # far: at the first loss, every _OVERFLOW_EVERY losses, and again
        # whenever the last OVERFLOW record itself was overwritten.
        if self.lost > self._reported and (self.lost - self._reported >= _OVERFLOW_EVERY
                                           or self._overflow_seq < self.first_seq()):
            self._reported = self.lost
            self._put(jm, now, _EV_OVERFLOW, flags, 0, 0, 0, self.lost)
            self._overflow_seq = self.head
        return rec

    def _put(self, jm, now, event, flags, arg16, user_id, ticket_id, arg):
        store = self.store
        while store.full():
            # full of unacknowledged records: the oldest ones are lost
            old = store.oldest()
            self.base_chain = old[_RECORD_BODY_LEN:]
            store.drop_oldest()
            self.lost += 1
            self.dirty = True
        seq = self.head + 1
        rec = seal(jm, self.chain, pack_body(seq, now, event, flags, arg16, user_id, ticket_id, arg))
        store.append(rec, self.chain)
        self.head = seq
        self.chain = rec[_RECORD_BODY_LEN:]
        return rec

    def last_time(self):
        # time of the newest record (0: none): a floor for the clock after power loss
        n = self.store.count()
        return struct.unpack(">I", self.store.get(n - 1)[4:8])[0] if n else 0

    def first_seq(self):
        old = self.store.oldest()
        return _seq(old) if old is not None else self.head + 1

    def read(self, from_seq, max_count):
        # -> (first_seq, records, head_seq, prev_chain) per §6.3
        first = self.first_seq()
        n = self.store.count()
        if from_seq < first:
            from_seq = first
        if from_seq > self.head:
            return self.head + 1, [], self.head, self.chain
        i = from_seq - first
        prev = self.base_chain if i == 0 else self.store.get(i - 1)[_RECORD_BODY_LEN:]
        count = min(max_count, _CHUNK_MAX, n - i)
        return from_seq, [self.store.get(i + k) for k in range(count)], self.head, prev

    def ack(self, seq, chain):
        # -> (status, acked). Frees records <= seq once the chain matches.
        if seq <= self.acked:
            return _E_OK, self.acked
        first = self.first_seq()
        if seq < first or seq > self.head:
            return _E_NOT_FOUND, self.acked
        rec = self.store.get(seq - first)
        if not compare_digest(rec[_RECORD_BODY_LEN:], chain):
            return _E_BAD_MAC, self.acked
        for _ in range(seq - first + 1):
            self.base_chain = self.store.oldest()[_RECORD_BODY_LEN:]
            self.store.drop_oldest()
        self.acked = seq
        self.dirty = True
        return _E_OK, self.acked
