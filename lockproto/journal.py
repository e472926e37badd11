"""Journal records, chain, encrypted export chunks (§6), as the server reads them."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Callable, Mapping

from .codes import CHUNK_MAX, RECORD_LEN, Err, Event
from .crypto import LockKeys, aes_ctr, compare_digest, mac8, mac16, u32
from .errors import ProtocolError

_BODY = struct.Struct(">IIBBHIII")
_HEAD = struct.Struct(">IIBI8s")  # epoch, first_seq, count, head_seq, prev_chain

KeysFor = Callable[[int], LockKeys] | Mapping[int, LockKeys]


def _keys(keys_for: KeysFor, epoch: int) -> LockKeys:
    try:
        return keys_for[epoch] if isinstance(keys_for, Mapping) else keys_for(epoch)
    except (KeyError, LookupError) as e:
        raise ProtocolError(Err.WRONG_EPOCH, epoch) from e


@dataclass(frozen=True)
class Record:
    """One 32-byte journal record (§6.1)."""

    seq: int
    time: int
    event: int
    flags: int = 0
    arg16: int = 0
    user_id: int = 0
    ticket_id: int = 0
    arg: int = 0
    chain: bytes = field(default=b"\x00" * 8, repr=False)

    def body(self) -> bytes:
        return _BODY.pack(self.seq, self.time, self.event, self.flags, self.arg16, self.user_id,
                          self.ticket_id, self.arg)

    def encode(self) -> bytes:
        return self.body() + self.chain

    @classmethod
    def decode(cls, b: bytes) -> "Record":
        if len(b) != RECORD_LEN:
            raise ProtocolError(Err.MALFORMED)
        return cls(*_BODY.unpack(b[:24]), chain=bytes(b[24:]))

    @property
    def event_name(self) -> str:
        try:
            return Event(self.event).name
        except ValueError:
            return f"EVENT_{self.event:#04x}"


def chain_genesis(jm: bytes, lock_id: bytes) -> bytes:
    return mac8(jm, b"LK1/chain\x00" + lock_id)


def chain_next(jm: bytes, prev: bytes, body: bytes) -> bytes:
    return mac8(jm, prev + body)


def seal(jm: bytes, prev: bytes, rec: Record) -> Record:
    """``rec`` with its chain value after ``prev``."""
    return Record(**{**rec.__dict__, "chain": chain_next(jm, prev, rec.body())})


def _prefix(lock_id: bytes, seq: int) -> bytes:
    return lock_id + u32(seq)


@dataclass(frozen=True)
class ExportChunk:
    """A decrypted, MAC-verified JOURNAL_READ payload (§6.3)."""

    epoch: int
    first_seq: int
    head_seq: int
    prev_chain: bytes
    records: list[Record]


def make_export_chunk(keys: LockKeys, first_seq: int, records: list[Record], head_seq: int,
                      prev_chain: bytes) -> bytes:
    """Encode a chunk as the lock does (tests, vectors, simulated locks)."""
    if len(records) > CHUNK_MAX:
        raise ValueError("at most 16 records per chunk")
    ct = b"".join(aes_ctr(keys.je, _prefix(keys.lock_id, first_seq + i), r.encode())
                  for i, r in enumerate(records))
    head = _HEAD.pack(keys.epoch, first_seq, len(records), head_seq, prev_chain)
    return head + ct + mac16(keys.jm, b"LK1/export\x00" + keys.lock_id + head + ct)


def open_chunk(keys_for: KeysFor, payload: bytes) -> ExportChunk:
    """Verify the export MAC and decrypt. ``keys_for`` maps an epoch to that epoch's LockKeys."""
    payload = bytes(payload)
    if len(payload) < _HEAD.size + 16:
        raise ProtocolError(Err.MALFORMED)
    epoch, first, count, head_seq, prev = _HEAD.unpack(payload[:_HEAD.size])
    if count > CHUNK_MAX or len(payload) != _HEAD.size + RECORD_LEN * count + 16:
        raise ProtocolError(Err.MALFORMED)
    keys = _keys(keys_for, epoch)
    ct = payload[_HEAD.size:-16]
    want = mac16(keys.jm, b"LK1/export\x00" + keys.lock_id + payload[:_HEAD.size] + ct)
    if not compare_digest(want, payload[-16:]):
        raise ProtocolError(Err.BAD_MAC)
    records = []
    for i in range(count):
        rec = Record.decode(aes_ctr(keys.je, _prefix(keys.lock_id, first + i),
                                    ct[RECORD_LEN * i:RECORD_LEN * (i + 1)]))
        if rec.seq != first + i:
            raise ProtocolError(Err.MALFORMED, first + i)
        records.append(rec)
    return ExportChunk(epoch, first, head_seq, prev, records)


def verify_chain(keys_for: KeysFor, prev_chain: bytes, records: list[Record], epoch: int) -> int:
    """Check each record's chain value after ``prev_chain``; ``epoch`` is the one in force before
    the first record. A REKEYED record switches to its ``arg`` epoch (§6.2). Returns the epoch in
    force after the last record; raises ProtocolError(BAD_MAC, seq) at the first bad record."""
    prev = prev_chain
    for rec in records:
        if rec.event == Event.REKEYED:
            epoch = rec.arg
        want = chain_next(_keys(keys_for, epoch).jm, prev, rec.body())
        if not compare_digest(want, rec.chain):
            raise ProtocolError(Err.BAD_MAC, rec.seq)
        prev = rec.chain
    return epoch
