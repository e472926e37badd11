"""Cryptographic primitives of the protocol (§1, conventions), on `cryptography` and hashlib."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import struct
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import keywrap
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from .codes import Err
from .errors import ProtocolError

LABELS = {"tk": "ticket", "jm": "journal-mac", "je": "journal-enc", "wr": "wrap", "sv": "server"}


def u32(v: int) -> bytes:
    return struct.pack(">I", v)


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def hmac_sha256(key: bytes, msg: bytes) -> bytes:
    return hmac.new(key, msg, hashlib.sha256).digest()


def mac16(key: bytes, msg: bytes) -> bytes:
    return hmac_sha256(key, msg)[:16]


def mac8(key: bytes, msg: bytes) -> bytes:
    return hmac_sha256(key, msg)[:8]


def compare_digest(a: bytes, b: bytes) -> bool:
    """Constant-time comparison."""
    return hmac.compare_digest(bytes(a), bytes(b))


def derive(master: bytes, label: str, lock_id: bytes, epoch: int) -> bytes:
    """Purpose key of §1.1."""
    return hmac_sha256(master, b"LK1/" + label.encode() + b"\x00" + lock_id + u32(epoch))


def new_master() -> bytes:
    """A fresh random 32-byte lock master key."""
    return secrets.token_bytes(32)


@dataclass(frozen=True)
class LockKeys:
    """The purpose keys of one lock for one epoch. Its repr never shows key bytes."""

    lock_id: bytes
    epoch: int
    tk: bytes = field(repr=False)
    jm: bytes = field(repr=False)
    je: bytes = field(repr=False)
    wr: bytes = field(repr=False)
    sv: bytes = field(repr=False)

    @classmethod
    def from_master(cls, master: bytes, lock_id: bytes, epoch: int) -> "LockKeys":
        if len(master) != 32 or len(lock_id) != 8 or not 0 < epoch < 2**32:
            raise ValueError("need a 32-byte master, an 8-byte lock id and an epoch 1..2^32-1")
        return cls(lock_id, epoch, **{k: derive(master, v, lock_id, epoch) for k, v in LABELS.items()})

    def __repr__(self) -> str:
        return f"LockKeys(lock_id={self.lock_id.hex()}, epoch={self.epoch})"


def aes_key_wrap(kek: bytes, key: bytes) -> bytes:
    """RFC 3394 key wrap with the default IV."""
    return keywrap.aes_key_wrap(kek, key)


def aes_key_unwrap(kek: bytes, wrapped: bytes) -> bytes:
    """RFC 3394 key unwrap; raises ProtocolError(UNWRAP_FAILED) on integrity failure."""
    try:
        return keywrap.aes_key_unwrap(kek, wrapped)
    except (keywrap.InvalidUnwrap, ValueError) as e:
        raise ProtocolError(Err.UNWRAP_FAILED) from e


def aes_ctr(key: bytes, prefix12: bytes, data: bytes) -> bytes:
    """AES-256-CTR with counter blocks ``prefix12 || u32(j)``, j = 0, 1, ... (§6.3)."""
    if len(prefix12) != 12:
        raise ValueError("counter prefix must be 12 bytes")
    nblocks = (len(data) + 15) // 16
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    stream = enc.update(b"".join(prefix12 + u32(j) for j in range(nblocks)))
    return bytes(a ^ b for a, b in zip(data, stream))


def ticket_key(keys: LockKeys, ticket: bytes) -> bytes:
    """K_T of §2.2."""
    return hmac_sha256(keys.tk, ticket)


def session_key(k_t: bytes, nonce_l: bytes, nonce_p: bytes) -> bytes:
    """K_S of §4.2."""
    return hmac_sha256(k_t, b"LK1/session\x00" + nonce_l + nonce_p)


def fmac(k_s: bytes, direction: int, ctr: int, body: bytes) -> bytes:
    """Frame MAC of §4.2."""
    return mac16(k_s, bytes([direction]) + u32(ctr) + body)
