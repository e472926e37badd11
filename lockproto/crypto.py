"""Cryptographic primitives of the protocol (§1 and the conventions), on hashlib and `cryptography`."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import struct
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import keywrap
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from .codes import KEY_LEN, LOCK_ID_LEN, Err
from .errors import ProtocolError

#: LockKeys field -> derivation label of §1.1
LABELS: dict[str, str] = {"tk": "ticket", "jm": "journal-mac", "je": "journal-enc", "wr": "wrap", "sv": "server"}


def u32(v: int) -> bytes:
    """Big-endian u32; ValueError outside 0..2^32-1."""
    if not isinstance(v, int) or not 0 <= v <= 0xFFFFFFFF:
        raise ValueError(f"not a u32: {v!r}")
    return struct.pack(">I", v)


def sha256(data: bytes) -> bytes:
    """SHA-256 digest (32 bytes)."""
    return hashlib.sha256(data).digest()


def hmac_sha256(key: bytes, msg: bytes) -> bytes:
    """HMAC-SHA256 (RFC 2104), 32 bytes."""
    return hmac.new(bytes(key), bytes(msg), hashlib.sha256).digest()


def mac16(key: bytes, msg: bytes) -> bytes:
    """``HMAC(key, msg)[0:16]``."""
    return hmac_sha256(key, msg)[:16]


def mac8(key: bytes, msg: bytes) -> bytes:
    """``HMAC(key, msg)[0:8]``."""
    return hmac_sha256(key, msg)[:8]


def compare_digest(a: bytes, b: bytes) -> bool:
    """Constant-time comparison (:func:`hmac.compare_digest`)."""
    return hmac.compare_digest(bytes(a), bytes(b))


def _check_identity(lock_id: bytes, epoch: int) -> None:
    if not isinstance(lock_id, (bytes, bytearray)) or len(lock_id) != LOCK_ID_LEN:
        raise ValueError("lock_id must be 8 bytes")
    if not isinstance(epoch, int) or not 0 <= epoch <= 0xFFFFFFFF:
        raise ValueError("epoch must be a u32")


def derive(master: bytes, label: str, lock_id: bytes, epoch: int) -> bytes:
    """Purpose key of §1.1: ``HMAC(K_L, "LK1/" || label || 0x00 || lock_id || u32(epoch))``."""
    if not isinstance(master, (bytes, bytearray)) or len(master) != KEY_LEN:
        raise ValueError("a lock master key is 32 bytes")
    _check_identity(lock_id, epoch)
    return hmac_sha256(master, b"LK1/" + label.encode("ascii") + b"\x00" + bytes(lock_id) + u32(epoch))


def new_master() -> bytes:
    """A fresh random 32-byte lock master key ``K_L`` (never derived from public data)."""
    return secrets.token_bytes(KEY_LEN)


@dataclass(frozen=True)
class LockKeys:
    """The purpose keys of one lock for one epoch (§1.1). Its repr never shows key bytes."""

    lock_id: bytes
    epoch: int
    tk: bytes = field(repr=False)
    jm: bytes = field(repr=False)
    je: bytes = field(repr=False)
    wr: bytes = field(repr=False)
    sv: bytes = field(repr=False)

    @classmethod
    def from_master(cls, master: bytes, lock_id: bytes, epoch: int) -> "LockKeys":
        """Derive every purpose key from the epoch's master key ``K_L`` (the epoch starts at 1)."""
        if not isinstance(epoch, int) or epoch < 1:
            raise ValueError("epochs start at 1")
        lock_id = bytes(lock_id)
        return cls(lock_id, epoch, **{k: derive(master, v, lock_id, epoch) for k, v in LABELS.items()})

    def __repr__(self) -> str:
        return f"LockKeys(lock_id={self.lock_id.hex()}, epoch={self.epoch})"


def aes_key_wrap(kek: bytes, key: bytes) -> bytes:
    """AES key wrap (RFC 3394, default IV ``A6A6A6A6A6A6A6A6``)."""
    return keywrap.aes_key_wrap(bytes(kek), bytes(key))


def aes_key_unwrap(kek: bytes, wrapped: bytes) -> bytes:
    """AES key unwrap (RFC 3394); raises ``ProtocolError(UNWRAP_FAILED)`` when the integrity check fails."""
    try:
        return keywrap.aes_key_unwrap(bytes(kek), bytes(wrapped))
    except (keywrap.InvalidUnwrap, ValueError) as e:
        raise ProtocolError(Err.UNWRAP_FAILED) from e


def aes_ctr(key: bytes, prefix12: bytes, data: bytes) -> bytes:
    """AES-CTR of the conventions with the explicit counter blocks ``prefix12 || u32(j)``, j = 0, 1, …

    Built as AES-ECB over the explicit blocks (so the 32-bit ``j`` can never carry
    into the prefix, as a 128-bit counter increment could); the last keystream
    block is truncated to the length of ``data``. Encryption and decryption are
    the same function. The protocol uses AES-256 (32-byte keys).
    """
    if len(prefix12) != 12:
        raise ValueError("the counter prefix is 12 bytes")
    data = bytes(data)
    nblocks = (len(data) + 15) // 16
    if nblocks > 1 << 32:
        raise ValueError("data too long for a 32-bit block counter")
    enc = Cipher(algorithms.AES(bytes(key)), modes.ECB()).encryptor()
    stream = enc.update(b"".join(bytes(prefix12) + struct.pack(">I", j) for j in range(nblocks)))
    n = len(data)
    if not n:
        return b""
    return (int.from_bytes(data, "big") ^ int.from_bytes(stream[:n], "big")).to_bytes(n, "big")


def ticket_key(keys: LockKeys, ticket: bytes) -> bytes:
    """``K_T = HMAC(K_tk, ticket)`` (§2.2), over the exact 41 ticket bytes."""
    return hmac_sha256(keys.tk, bytes(ticket))


def session_key(k_t: bytes, nonce_l: bytes, nonce_p: bytes) -> bytes:
    """``K_S = HMAC(K_T, "LK1/session" || 0x00 || nonce_L || nonce_P)`` (§4.2)."""
    if len(nonce_l) != 16 or len(nonce_p) != 16:
        raise ValueError("nonces are 16 bytes")
    return hmac_sha256(k_t, b"LK1/session\x00" + bytes(nonce_l) + bytes(nonce_p))


def fmac(k_s: bytes, direction: int, ctr: int, body: bytes) -> bytes:
    """Frame MAC of §4.2: ``MAC16(K_S, dir || u32(ctr) || body)``."""
    return mac16(k_s, bytes([direction]) + u32(ctr) + bytes(body))
