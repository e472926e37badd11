"""What the key server computes for a lock (§2, §5, §6.4): pure functions over :class:`LockKeys`.

Nothing here reads a clock or a random source except where stated; the caller
(the key server) supplies times, ids and fresh master keys. Arguments that would
produce something the protocol forbids raise ValueError (a programming error on
the server side), except ticket rules, which raise the ProtocolError the lock
would answer.
"""

from __future__ import annotations

import struct
from typing import Iterable

from .codes import (
    CHAIN_LEN, DENY_CAPACITY, KEY_LEN, NONCE_LEN, REKEY_PROOF_LEN, DenyKind,
)
from .crypto import LockKeys, aes_key_wrap, compare_digest, mac16, ticket_key, u32
from .wire import Ticket

__all__ = ["issue_ticket", "ticket_key", "time_token", "deny_list", "rekey_message", "rekey_pair", "rekey_proof",
           "verify_rekey_proof", "journal_ack"]


def issue_ticket(keys: LockKeys, *, ticket_id: int, user_id: int, not_before: int, not_after: int,
                 issued_at: int, rights: int, win_start: int = 0, win_end: int = 0, win_days: int = 0,
                 tz_offset: int = 0) -> tuple[Ticket, bytes]:
    """A ticket for ``keys``' lock and epoch, and its key ``K_T`` (sent to the phone over TLS only).

    Raises ProtocolError(MALFORMED) when a field breaks a rule of §2.1.
    """
    t = Ticket(lock_id=keys.lock_id, epoch=keys.epoch, ticket_id=ticket_id, user_id=user_id,
               not_before=not_before, not_after=not_after, issued_at=issued_at, rights=int(rights),
               win_start=win_start, win_end=win_end, win_days=win_days, tz_offset=tz_offset)
    return t, ticket_key(keys, t.encode())


def _head(keys: LockKeys, label: bytes) -> bytes:
    """``"LK1/" || label || 0x00 || lock_id || u32(epoch)``: the prefix of server-statement MACs."""
    return b"LK1/" + label + b"\x00" + keys.lock_id + u32(keys.epoch)


def time_token(keys: LockKeys, nonce_l: bytes, time: int) -> bytes:
    """TIME_SET args (§5.1, 20 bytes), bound to the ``nonce_L`` of one connection's HELLO."""
    if len(nonce_l) != NONCE_LEN:
        raise ValueError("nonce_L is 16 bytes")
    return u32(time) + mac16(keys.sv, _head(keys, b"time") + bytes(nonce_l) + u32(time))


def deny_list(keys: LockKeys, version: int, entries: Iterable[tuple[int, int, int]]) -> bytes:
    """DENY_UPDATE args (§5.2): a complete, versioned list of ``(kind, id, expires)``.

    ValueError for more than DENY_CAPACITY (64) entries, an unknown kind, or version 0
    (a lock holding no list reports version 0, so version 0 would always be STALE).
    """
    entries = list(entries)
    if len(entries) > DENY_CAPACITY:
        raise ValueError(f"a lock holds at most {DENY_CAPACITY} deny-list entries, got {len(entries)}")
    if version == 0:
        raise ValueError("deny-list versions start at 1")
    body = struct.pack(">B", len(entries))
    for kind, ident, expires in entries:
        if kind not in DenyKind._value2member_map_:
            raise ValueError(f"unknown deny-list kind {kind!r}")
        body += bytes([kind]) + u32(ident) + u32(expires)
    body = u32(version) + body
    return body + mac16(keys.sv, _head(keys, b"deny") + body)


def rekey_message(old_keys: LockKeys, new_master: bytes, new_epoch: int | None = None) -> bytes:
    """REKEY args (§5.3, 60 bytes): ``u32 new_epoch || AES-KW(K_wr(old), K_L(new)) || mac``.

    ``new_epoch`` defaults to the old epoch + 1 and must be greater than it. The new
    epoch's keys are ``LockKeys.from_master(new_master, old_keys.lock_id, new_epoch)``.
    """
    new_epoch = old_keys.epoch + 1 if new_epoch is None else new_epoch
    if not isinstance(new_epoch, int) or not old_keys.epoch < new_epoch <= 0xFFFFFFFF:
        raise ValueError("the new epoch must be greater than the old one and fit in a u32")
    if not isinstance(new_master, (bytes, bytearray)) or len(new_master) != KEY_LEN:
        raise ValueError("a lock master key is 32 bytes")
    wrapped = aes_key_wrap(old_keys.wr, bytes(new_master))
    mac = mac16(old_keys.sv, _head(old_keys, b"rekey") + u32(new_epoch) + wrapped)
    return u32(new_epoch) + wrapped + mac


def rekey_pair(old_keys: LockKeys, new_master: bytes, new_epoch: int | None = None) -> tuple[bytes, LockKeys]:
    """:func:`rekey_message` and the new epoch's :class:`LockKeys` (what the server stores next)."""
    msg = rekey_message(old_keys, new_master, new_epoch)
    return msg, LockKeys.from_master(bytes(new_master), old_keys.lock_id, struct.unpack(">I", msg[:4])[0])


def rekey_proof(new_keys: LockKeys) -> bytes:
    """The proof a re-keyed lock answers (§5.3): ``u32 new_epoch || MAC16(K_sv(new), "LK1/rekey-proof" ...)``."""
    return u32(new_keys.epoch) + mac16(new_keys.sv, _head(new_keys, b"rekey-proof"))


def verify_rekey_proof(new_keys: LockKeys, payload: bytes) -> bool:
    """True when ``payload`` (the REKEY RESULT payload) proves the lock holds ``new_keys`` (constant time)."""
    payload = bytes(payload)
    return len(payload) == REKEY_PROOF_LEN and compare_digest(payload, rekey_proof(new_keys))


def journal_ack(keys: LockKeys, seq: int, chain: bytes) -> bytes:
    """JOURNAL_ACK args (§6.4, 28 bytes): the server stored and verified records up to ``seq``,
    whose chain value is ``chain``."""
    if len(chain) != CHAIN_LEN:
        raise ValueError("a chain value is 8 bytes")
    return u32(seq) + bytes(chain) + mac16(keys.sv, _head(keys, b"ack") + u32(seq) + bytes(chain))
