"""What the key server signs for a lock (§2, §5, §6.4): pure functions over LockKeys."""

from __future__ import annotations

import struct

from .codes import DENY_CAPACITY, Err
from .crypto import LockKeys, aes_key_wrap, compare_digest, hmac_sha256, mac16, u32
from .errors import ProtocolError
from .wire import Ticket


def ticket_key(keys: LockKeys, ticket: bytes) -> bytes:
    """K_T = HMAC(K_tk, ticket) (§2.2)."""
    return hmac_sha256(keys.tk, ticket)


def issue_ticket(keys: LockKeys, *, ticket_id: int, user_id: int, not_before: int, not_after: int,
                 issued_at: int, rights: int, win_start: int = 0, win_end: int = 0, win_days: int = 0,
                 tz_offset: int = 0) -> tuple[Ticket, bytes]:
    """A ticket for ``keys``' lock and epoch, and its key K_T (sent to the phone over TLS only)."""
    t = Ticket(lock_id=keys.lock_id, epoch=keys.epoch, ticket_id=ticket_id, user_id=user_id,
               not_before=not_before, not_after=not_after, issued_at=issued_at, rights=int(rights),
               win_start=win_start, win_end=win_end, win_days=win_days, tz_offset=tz_offset)
    raw = t.encode()
    return t, ticket_key(keys, raw)


def _head(keys: LockKeys, label: bytes) -> bytes:
    return b"LK1/" + label + b"\x00" + keys.lock_id + u32(keys.epoch)


def time_token(keys: LockKeys, nonce_l: bytes, time: int) -> bytes:
    """TIME_SET args bound to one connection's HELLO nonce (§5.1)."""
    return u32(time) + mac16(keys.sv, _head(keys, b"time") + nonce_l + u32(time))


def deny_list(keys: LockKeys, version: int, entries) -> bytes:
    """DENY_UPDATE args (§5.2): a complete, versioned list of (kind, id, expires)."""
    entries = list(entries)
    if len(entries) > DENY_CAPACITY:
        raise ValueError(f"a lock holds at most {DENY_CAPACITY} deny-list entries, got {len(entries)}")
    body = struct.pack(">IB", version, len(entries)) + b"".join(
        struct.pack(">BII", int(k), i, e) for k, i, e in entries)
    return body + mac16(keys.sv, _head(keys, b"deny") + body)


def rekey_message(old: LockKeys, new_master: bytes, new_epoch: int | None = None) -> tuple[bytes, LockKeys]:
    """REKEY args (§5.3) moving the lock to ``new_master``; returns them and the new epoch's keys."""
    new_epoch = old.epoch + 1 if new_epoch is None else new_epoch
    if new_epoch <= old.epoch:
        raise ValueError("the new epoch must be greater than the old one")
    wrapped = aes_key_wrap(old.wr, new_master)
    mac = mac16(old.sv, _head(old, b"rekey") + u32(new_epoch) + wrapped)
    return u32(new_epoch) + wrapped + mac, LockKeys.from_master(new_master, old.lock_id, new_epoch)


def rekey_proof(new: LockKeys) -> bytes:
    """The proof a re-keyed lock returns (§5.3)."""
    return u32(new.epoch) + mac16(new.sv, b"LK1/rekey-proof\x00" + new.lock_id + u32(new.epoch))


def verify_rekey_proof(new: LockKeys, payload: bytes) -> bool:
    """True when ``payload`` proves the lock holds ``new`` (constant-time compare)."""
    return len(payload) == 20 and compare_digest(payload, rekey_proof(new))


def journal_ack(keys: LockKeys, seq: int, chain: bytes) -> bytes:
    """JOURNAL_ACK args (§6.4): the server stored and verified records up to ``seq``."""
    if len(chain) != 8:
        raise ProtocolError(Err.MALFORMED)
    return u32(seq) + chain + mac16(keys.sv, _head(keys, b"ack") + u32(seq) + chain)
