"""The re-key state machine of a lock (protocol §5.3).

::

    (none) --start--> pending --proof (REKEY RESULT, or a REKEYED journal record)--> done
                         |                                                           old K_L destroyed
                         +--cancel--> cancelled (the new key stays sealed: if a phone had already
                                      delivered it, a later proof or REKEYED record still completes it)

While pending, bundles carry tickets for both epochs and the REKEY message (unless the
re-key is *on site*: then the message goes only to the serial tool, never through a
phone). On completion the old epoch's master key is destroyed at once; its journal-MAC
key alone is kept, sealed, until the journal has been read past the REKEYED record,
because the old records' chain can only be checked with it, and then it is destroyed too.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lockproto import new_master, rekey_message, verify_rekey_proof

from .errors import Conflict, Invalid
from .keystore import KeyRing, audit, get_lock, now, store_key
from .models import Lock, LockKey, Rekey
from .vault import Vault


def pending_rekey(s: Session, lock: Lock, states=("pending",)) -> Rekey | None:
    return s.execute(select(Rekey).where(Rekey.lock_pk == lock.id, Rekey.state.in_(states))
                     .order_by(Rekey.id.desc())).scalars().first()


def describe(r: Rekey, lock: Lock) -> dict:
    return {"id": r.id, "lock_id": lock.lock_id, "old_epoch": r.old_epoch, "new_epoch": r.new_epoch,
            "state": r.state, "onsite": r.onsite, "message": r.message, "created_at": r.created_at,
            "finished_at": r.finished_at}


def start(s: Session, vault: Vault, lock_id: str, actor_id: int | None, onsite: bool = False) -> dict:
    t = now()
    lock = get_lock(s, lock_id, for_update=True)
    if pending_rekey(s, lock):
        raise Conflict(f"lock {lock_id} already has a re-key pending")
    ring = KeyRing(s, vault, lock)
    old = ring.active()
    highest = s.execute(select(func.max(LockKey.epoch)).where(LockKey.lock_pk == lock.id)).scalar_one()
    new_epoch = max(highest, lock.epoch) + 1
    if new_epoch > 0xFFFFFFFF:
        raise Conflict("the lock's epoch counter is exhausted; re-provision it on site")
    master = new_master()
    msg = rekey_message(old, master, new_epoch)
    store_key(s, vault, lock, new_epoch, master, "pending", t)
    r = Rekey(lock_pk=lock.id, old_epoch=lock.epoch, new_epoch=new_epoch, state="pending", onsite=onsite,
              message=msg.hex(), created_at=t, created_by=actor_id)
    s.add(r)
    s.flush()
    audit(s, "rekey.start", f"lock:{lock.lock_id}", actor_id=actor_id, at=t, new_epoch=new_epoch, onsite=onsite)
    return describe(r, lock)


def _finish(s: Session, lock: Lock, r: Rekey, how: str, actor_id: int | None, t: int) -> None:
    r.state = "done"
    r.finished_at = t
    rows = {k.epoch: k for k in s.execute(select(LockKey).where(LockKey.lock_pk == lock.id)).scalars()}
    for epoch, row in rows.items():
        if epoch < r.new_epoch and row.sealed_master is not None:
            row.sealed_master = None  # destroyed: no ticket, statement or wrap of that epoch can be made again
            row.state = "retired"
            row.destroyed_at = t
    rows[r.new_epoch].state = "active"
    lock.epoch = r.new_epoch
    drop_spent_journal_keys(s, lock, t)
    audit(s, "rekey.done", f"lock:{lock.lock_id}", actor_id=actor_id, at=t, new_epoch=r.new_epoch, via=how)


def drop_spent_journal_keys(s: Session, lock: Lock, t: int) -> None:
    """Destroy the journal-MAC keys of retired epochs once the journal was read past them."""
    for row in s.execute(select(LockKey).where(LockKey.lock_pk == lock.id, LockKey.state == "retired",
                                               LockKey.sealed_jm.is_not(None))).scalars():
        if row.epoch < lock.journal_epoch:
            row.sealed_jm = None
            row.destroyed_at = row.destroyed_at or t


def prove(s: Session, vault: Vault, lock_id: str, proof: bytes, actor_id: int | None) -> dict:
    """A REKEY RESULT payload relayed by a phone or the serial tool: verify and complete."""
    t = now()
    lock = get_lock(s, lock_id, for_update=True)
    r = pending_rekey(s, lock, ("pending", "cancelled"))
    if r is None:
        done = pending_rekey(s, lock, ("done",))
        if done is not None and verify_rekey_proof(KeyRing(s, vault, lock).full(done.new_epoch), proof):
            return describe(done, lock)  # the same proof again: idempotent
        raise Conflict(f"lock {lock_id} has no re-key pending")
    ring = KeyRing(s, vault, lock)
    if not verify_rekey_proof(ring.full(r.new_epoch), proof):
        raise Invalid("the re-key proof does not verify for this lock and epoch")
    _finish(s, lock, r, "proof", actor_id, t)
    return describe(r, lock)


def complete_from_journal(s: Session, lock: Lock, new_epoch: int, t: int) -> bool:
    """A verified REKEYED record under ``new_epoch`` proves the lock holds that key."""
    if new_epoch <= lock.epoch:
        return False
    r = s.execute(select(Rekey).where(Rekey.lock_pk == lock.id, Rekey.new_epoch == new_epoch,
                                      Rekey.state.in_(("pending", "cancelled")))).scalar_one_or_none()
    if r is None:
        return False
    _finish(s, lock, r, "journal", None, t)
    return True


def cancel(s: Session, lock_id: str, actor_id: int | None) -> dict:
    t = now()
    lock = get_lock(s, lock_id, for_update=True)
    r = pending_rekey(s, lock)
    if r is None:
        raise Conflict(f"lock {lock_id} has no re-key pending")
    r.state = "cancelled"
    r.finished_at = t
    audit(s, "rekey.cancel", f"lock:{lock.lock_id}", actor_id=actor_id, at=t, new_epoch=r.new_epoch)
    return describe(r, lock)
