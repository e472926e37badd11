"""Journal records, their chain and encrypted export chunks (§6), as the server reads them.

The host side also encodes chunks (:func:`make_export_chunk`) the way a lock does,
for tests, vectors and simulated locks.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field, replace
from typing import Callable, Mapping, Sequence, Union

from .codes import CHAIN_LEN, CHUNK_HEAD_LEN, CHUNK_MAX, LOCK_ID_LEN, MAC_LEN, RECORD_BODY_LEN, RECORD_LEN, Err, Event
from .crypto import LockKeys, aes_ctr, compare_digest, mac8, mac16, u32
from .errors import ProtocolError

_BODY = struct.Struct(">IIBBHIII")   # seq, time, event, flags, arg16, user_id, ticket_id, arg
_HEAD = struct.Struct(">IIBI8s")     # epoch, first_seq, count, head_seq, prev_chain

#: an epoch -> that epoch's keys, as a mapping or a callable (raising KeyError/LookupError when unknown)
KeysFor = Union[Callable[[int], LockKeys], Mapping[int, LockKeys]]


def _keys(keys_for: KeysFor, epoch: int) -> LockKeys:
    """Keys of ``epoch``; ProtocolError(WRONG_EPOCH, epoch) when the caller has none."""
    try:
        keys = keys_for[epoch] if isinstance(keys_for, Mapping) else keys_for(epoch)
    except LookupError as e:
        raise ProtocolError(Err.WRONG_EPOCH, epoch) from e
    if keys is None or keys.epoch != epoch:
        raise ProtocolError(Err.WRONG_EPOCH, epoch)
    return keys


@dataclass(frozen=True)
class Record:
    """One 32-byte journal record (§6.1): a 24-byte body and its 8-byte chain value."""

    seq: int
    time: int
    event: int
    flags: int = 0
    arg16: int = 0
    user_id: int = 0
    ticket_id: int = 0
    arg: int = 0
    chain: bytes = field(default=bytes(CHAIN_LEN), repr=False)

    def body(self) -> bytes:
        """``record[0:24]``, what the chain MACs. ValueError for a field out of range."""
        try:
            return _BODY.pack(self.seq, self.time, self.event, self.flags, self.arg16, self.user_id,
                              self.ticket_id, self.arg)
        except struct.error as e:
            raise ValueError(f"record field out of range: {e}") from e

    def encode(self) -> bytes:
        if not isinstance(self.chain, (bytes, bytearray)) or len(self.chain) != CHAIN_LEN:
            raise ValueError("a chain value is 8 bytes")
        return self.body() + bytes(self.chain)

    @classmethod
    def decode(cls, b: bytes) -> "Record":
        if not isinstance(b, (bytes, bytearray, memoryview)) or len(b) != RECORD_LEN:
            raise ProtocolError(Err.MALFORMED)
        b = bytes(b)
        return cls(*_BODY.unpack(b[:RECORD_BODY_LEN]), chain=b[RECORD_BODY_LEN:])

    @property
    def event_name(self) -> str:
        try:
            return Event(self.event).name
        except ValueError:
            return f"EVENT_{self.event:#04x}"  # new events are stored raw (§8)


def chain_genesis(jm: bytes, lock_id: bytes) -> bytes:
    """``chain_0 = MAC8(K_jm(epoch at provisioning), "LK1/chain" || 0x00 || lock_id)``."""
    if len(lock_id) != LOCK_ID_LEN:
        raise ValueError("lock_id is 8 bytes")
    return mac8(jm, b"LK1/chain\x00" + bytes(lock_id))


def chain_next(jm: bytes, prev: bytes, body24: bytes) -> bytes:
    """``chain_n = MAC8(K_jm(e_n), chain_(n-1) || record_n[0:24])``."""
    if len(prev) != CHAIN_LEN or len(body24) != RECORD_BODY_LEN:
        raise ValueError("chain input lengths are 8 and 24 bytes")
    return mac8(jm, bytes(prev) + bytes(body24))


def seal(jm: bytes, prev: bytes, rec: Record) -> Record:
    """``rec`` with its chain value after ``prev`` under ``jm`` (the K_jm of the epoch in force)."""
    return replace(rec, chain=chain_next(jm, prev, rec.body()))


def _prefix(lock_id: bytes, seq: int) -> bytes:
    """The first 12 bytes of the counter blocks of record ``seq``: ``lock_id || u32(seq)``."""
    return bytes(lock_id) + u32(seq)


def _emac(keys: LockKeys, head: bytes, ct: bytes) -> bytes:
    return mac16(keys.jm, b"LK1/export\x00" + keys.lock_id + head + ct)


@dataclass(frozen=True)
class ExportChunk:
    """A MAC-verified, decrypted JOURNAL_READ payload (§6.3)."""

    epoch: int
    first_seq: int
    head_seq: int
    prev_chain: bytes
    records: list[Record]

    @property
    def count(self) -> int:
        return len(self.records)


def make_export_chunk(keys: LockKeys, first_seq: int, records: Sequence[Record], head_seq: int,
                      prev_chain: bytes) -> bytes:
    """Encode a chunk as a lock does, under ``keys`` (the lock's current epoch).

    ``records`` must be the sealed records ``first_seq, first_seq + 1, …`` (at most 16).
    """
    if len(records) > CHUNK_MAX:
        raise ValueError(f"at most {CHUNK_MAX} records per chunk")
    if len(prev_chain) != CHAIN_LEN:
        raise ValueError("a chain value is 8 bytes")
    for i, r in enumerate(records):
        if r.seq != first_seq + i:
            raise ValueError("records must be consecutive from first_seq")
    ct = b"".join(aes_ctr(keys.je, _prefix(keys.lock_id, r.seq), r.encode()) for r in records)
    head = _HEAD.pack(keys.epoch, first_seq, len(records), head_seq, bytes(prev_chain))
    return head + ct + _emac(keys, head, ct)


def open_chunk(keys_for: KeysFor, payload: bytes) -> ExportChunk:
    """Verify a chunk's ``emac`` and decrypt its records.

    ``keys_for`` maps the chunk's epoch to that epoch's :class:`LockKeys` (a dict or a
    callable). Raises ProtocolError MALFORMED (layout, sequence numbers), WRONG_EPOCH
    (no keys for the chunk's epoch; detail = that epoch) or BAD_MAC. Nothing in the
    header is used before the MAC verifies, apart from the lengths and the epoch.
    """
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise ProtocolError(Err.MALFORMED)
    payload = bytes(payload)
    if len(payload) < CHUNK_HEAD_LEN + MAC_LEN:
        raise ProtocolError(Err.MALFORMED)
    head = payload[:CHUNK_HEAD_LEN]
    epoch, first, count, head_seq, prev = _HEAD.unpack(head)
    if count > CHUNK_MAX or len(payload) != CHUNK_HEAD_LEN + RECORD_LEN * count + MAC_LEN:
        raise ProtocolError(Err.MALFORMED)
    keys = _keys(keys_for, epoch)
    ct = payload[CHUNK_HEAD_LEN:-MAC_LEN]
    if not compare_digest(_emac(keys, head, ct), payload[-MAC_LEN:]):
        raise ProtocolError(Err.BAD_MAC)
    # §6.3: count = 0 means nothing at or after from_seq, and then first_seq = head_seq + 1;
    # otherwise the chunk's records exist, so they are at most head_seq
    if first == 0 or (count == 0 and first != head_seq + 1) or (count and first + count - 1 > head_seq):
        raise ProtocolError(Err.MALFORMED)
    records = []
    for i in range(count):
        seq = first + i
        rec = Record.decode(aes_ctr(keys.je, _prefix(keys.lock_id, seq), ct[RECORD_LEN * i:RECORD_LEN * (i + 1)]))
        if rec.seq != seq:
            raise ProtocolError(Err.MALFORMED, seq)
        records.append(rec)
    return ExportChunk(epoch, first, head_seq, prev, records)


def verify_chain(keys_for: KeysFor, prev_chain: bytes, records: Sequence[Record], start_epoch: int) -> int:
    """Check each record's chain value, starting after ``prev_chain``.

    ``start_epoch`` is the epoch in force before the first record (for a journal read
    from ``seq`` 1, the epoch at provisioning). A ``REKEYED`` record is the first one
    under the epoch in its ``arg`` (§6.2), which must be greater than the one in force.
    Raises ProtocolError(BAD_MAC, seq) naming the first record that does not verify
    (an edited, dropped, inserted or reordered record, or one under an epoch
    ``keys_for`` has no keys for); returns the epoch in force after the last record.
    """
    if len(prev_chain) != CHAIN_LEN:
        raise ValueError("a chain value is 8 bytes")
    prev = bytes(prev_chain)
    epoch = start_epoch
    for rec in records:
        if rec.event == Event.REKEYED:
            if rec.arg <= epoch:
                raise ProtocolError(Err.BAD_MAC, rec.seq)
            epoch = rec.arg
        try:
            want = chain_next(_keys(keys_for, epoch).jm, prev, rec.body())
        except (ProtocolError, ValueError) as e:  # no keys for the claimed epoch, or a field out of range
            raise ProtocolError(Err.BAD_MAC, rec.seq) from e
        if not compare_digest(want, rec.chain):
            raise ProtocolError(Err.BAD_MAC, rec.seq)
        prev = bytes(rec.chain)
    return epoch
