"""Lock keys in and out of the vault, the audit log, and small shared helpers of the domain layer."""

from __future__ import annotations

import json
import time as _time

from sqlalchemy import select
from sqlalchemy.orm import Session

from lockproto import LockKeys
from lockproto.crypto import LABELS, derive

from .errors import Conflict, NotFound
from .models import AuditEntry, Lock, LockKey
from .vault import Vault


def now() -> int:
    """The server clock, Unix seconds (one place, so tests and the bench can reason about it)."""
    return int(_time.time())


def audit(s: Session, action: str, subject: str = "", actor_id: int | None = None, at: int | None = None,
          **detail) -> None:
    """Append to the audit log in the caller's transaction (so it commits or vanishes with the change)."""
    s.add(AuditEntry(at=at or now(), actor_id=actor_id, action=action, subject=subject,
                     detail=json.dumps(detail, sort_keys=True, default=str)))


def lock_id_bytes(lock_id: str) -> bytes:
    from .errors import Invalid

    try:
        b = bytes.fromhex(lock_id)
    except ValueError:
        b = b""
    if len(b) != 8:
        raise Invalid(f"lock id {lock_id!r} is not 16 hex digits")
    return b


def get_lock(s: Session, lock_id: str, for_update: bool = False) -> Lock:
    lock_id_bytes(lock_id)
    q = select(Lock).where(Lock.lock_id == lock_id.lower())
    if for_update:
        q = q.with_for_update()
    lock = s.execute(q).unique().scalar_one_or_none()
    if lock is None:
        raise NotFound(f"no lock {lock_id}")
    return lock


def store_key(s: Session, vault: Vault, lock: Lock, epoch: int, master: bytes, state: str, at: int) -> LockKey:
    """Seal ``master`` (and its journal-MAC key, kept longer) for ``lock``/``epoch``."""
    lid = bytes.fromhex(lock.lock_id)
    jm = derive(master, LABELS["jm"], lid, epoch)
    row = LockKey(lock_pk=lock.id, epoch=epoch, state=state, created_at=at,
                  sealed_master=vault.seal(master, lid, epoch, "master"),
                  sealed_jm=vault.seal(jm, lid, epoch, "journal-mac"))
    s.add(row)
    return row


class KeyRing:
    """The keys of one lock the server still holds, by epoch, opened from the vault on demand."""

    def __init__(self, s: Session | None, vault: Vault, lock: Lock, rows: list[LockKey] | None = None) -> None:
        self.lock = lock
        self.lid = bytes.fromhex(lock.lock_id)
        if rows is None:
            rows = list(s.execute(select(LockKey).where(LockKey.lock_pk == lock.id)).scalars())
        self.rows = {r.epoch: r for r in rows}
        self._vault = vault
        self._cache: dict[int, LockKeys] = {}

    def full(self, epoch: int) -> LockKeys:
        """Every purpose key of ``epoch``; KeyError when the master key of that epoch is gone or unknown."""
        if epoch not in self._cache:
            row = self.rows.get(epoch)
            if row is None or row.sealed_master is None:
                raise KeyError(epoch)
            self._cache[epoch] = LockKeys.from_master(
                self._vault.open(row.sealed_master, self.lid, epoch, "master"), self.lid, epoch)
        return self._cache[epoch]

    def journal(self, epoch: int) -> LockKeys:
        """Keys good enough to verify the journal chain of ``epoch`` (only ``jm`` once the master is destroyed)."""
        try:
            return self.full(epoch)
        except KeyError:
            row = self.rows.get(epoch)
            if row is None or row.sealed_jm is None:
                raise
            jm = self._vault.open(row.sealed_jm, self.lid, epoch, "journal-mac")
            return LockKeys(self.lid, epoch, tk=b"", jm=jm, je=b"", wr=b"", sv=b"")

    def state(self, epoch: int) -> str | None:
        row = self.rows.get(epoch)
        return row.state if row else None

    def active(self) -> LockKeys:
        try:
            return self.full(self.lock.epoch)
        except KeyError:
            raise Conflict(f"lock {self.lock.lock_id} has no usable key for epoch {self.lock.epoch}") from None
