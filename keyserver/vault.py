"""Lock keys at rest: AES-256-GCM under the server's master key, bound to lock, epoch and purpose.

The master key lives outside the database (a file or the environment, see
:mod:`keyserver.settings`). Each sealed blob is ``nonce (12) || ciphertext || tag (16)``;
the associated data names the lock, the epoch and what the key is for, so a blob
copied to another row does not open.
"""

from __future__ import annotations

import secrets
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


class VaultError(Exception):
    """A sealed key did not open: wrong master key, or the row was tampered with."""


class Vault:
    """Seals and opens lock keys. Its repr never shows the master key."""

    def __init__(self, master: bytes) -> None:
        if len(master) != 32:
            raise ValueError("the master key is 32 bytes")
        self._aead = AESGCM(bytes(master))

    def __repr__(self) -> str:
        return "Vault(<master key hidden>)"

    @staticmethod
    def _aad(lock_id: bytes, epoch: int, purpose: str) -> bytes:
        return b"openlock-keyserver/v1\x00" + purpose.encode() + b"\x00" + bytes(lock_id) + struct.pack(">I", epoch)

    def seal(self, key: bytes, lock_id: bytes, epoch: int, purpose: str) -> bytes:
        nonce = secrets.token_bytes(12)
        return nonce + self._aead.encrypt(nonce, bytes(key), self._aad(lock_id, epoch, purpose))

    def open(self, blob: bytes, lock_id: bytes, epoch: int, purpose: str) -> bytes:
        blob = bytes(blob)
        try:
            return self._aead.decrypt(blob[:12], blob[12:], self._aad(lock_id, epoch, purpose))
        except (InvalidTag, ValueError):
            raise VaultError(f"the {purpose} key of lock {bytes(lock_id).hex()} epoch {epoch} does not open "
                             "under this master key") from None
