"""Ticket bundles: everything one phone needs for the coming shift (protocol §2, §5, §6.4).

A bundle holds, per lock the carer may open in ``[start, start + lifetime)``: one
ticket and its ``K_T`` per applicable grant and per epoch the lock may hold (both
while a re-key is pending), the lock's current deny list MACed for each such epoch,
the pending REKEY message (over-the-air re-keys only) and the newest journal
acknowledgement. Every ticket is written to the ``tickets`` table (the audit of keys
issued) in the same transaction that produces it.

Ordering against revocation (see :mod:`keyserver.db`): the staff row and the phone
row are locked for update, then every lock row involved is locked shared, before the
grants are read the final time. A revocation locks the same rows for update, so it
either commits first (and this bundle sees it) or waits for this bundle and then
covers its tickets; bundles of different carers for the same locks do not wait for
each other.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from lockproto import Right, deny_list, issue_ticket

from .errors import Forbidden, Invalid
from .ingest import ack_for
from .keystore import KeyRing, audit, now
from .models import DenyEntry, Grant, GroupMember, Home, Lock, LockKey, Phone, Rekey, Staff, Ticket
from .settings import Settings
from .vault import Vault

ALL_RIGHTS = int(Right.UNLOCK | Right.LOCK | Right.JOURNAL | Right.ADMIN)


def grants_for(s: Session, staff_id: int, start: int, end: int) -> list[Grant]:
    """Unrevoked grants of a person (directly or through a group) overlapping ``[start, end)``."""
    groups = select(GroupMember.group_id).where(GroupMember.staff_id == staff_id)
    q = select(Grant).where(
        Grant.revoked_at.is_(None),
        or_(Grant.staff_id == staff_id, Grant.group_id.in_(groups)),
        Grant.valid_from < end,
        or_(Grant.valid_until.is_(None), Grant.valid_until > start),
    ).order_by(Grant.id)
    return list(s.execute(q).scalars())


def locks_of_grant(s: Session, g: Grant) -> list[int]:
    """Lock row ids a grant covers (a lock, every lock of a home, or every lock of a district)."""
    if g.lock_pk is not None:
        return [g.lock_pk]
    if g.home_id is not None:
        return list(s.execute(select(Lock.id).where(Lock.home_id == g.home_id)).scalars())
    if g.district_id is not None:
        return list(s.execute(select(Lock.id).join(Home, Lock.home_id == Home.id)
                              .where(Home.district_id == g.district_id)).scalars())
    return []


def tz_offset_minutes(settings: Settings, at: int) -> int:
    """Minutes east of UTC of the municipality's zone at ``at`` (daylight saving included)."""
    off = _dt.datetime.fromtimestamp(at, settings.zone).utcoffset()
    return int(off.total_seconds() // 60) if off else 0


def current_deny(s: Session, lock: Lock, t: int) -> list[tuple[int, int, int]]:
    """The deny entries a lock still needs at ``t`` (entries past their expiry are dropped)."""
    rows = s.execute(select(DenyEntry).where(DenyEntry.lock_pk == lock.id, DenyEntry.expires > t)
                     .order_by(DenyEntry.expires.desc(), DenyEntry.id)).scalars()
    return [(r.kind, r.ident, r.expires) for r in rows]


def signed_deny_list(s: Session, ring: KeyRing, epoch: int, t: int,
                     entries: list[tuple[int, int, int]] | None = None) -> str:
    """The lock's deny list at its current version, MACed under ``epoch`` (hex).

    More than 64 live entries cannot be carried (protocol §5.2): the 64 with the latest
    expiry go out and lock health reports the overflow to IT; a re-key ends the exposure,
    since every older ticket then fails with WRONG_EPOCH.
    """
    entries = current_deny(s, ring.lock, t) if entries is None else entries
    if len(entries) > 64:
        entries = entries[:64]
    return deny_list(ring.full(epoch), ring.lock.deny_version, entries).hex()


@dataclass
class BundleRequest:
    start: int | None = None
    hours: float | None = None


def issue_bundle(s: Session, vault: Vault, settings: Settings, staff_id: int, phone_id: int,
                 req: BundleRequest) -> dict:
    """Issue the bundle for one phone (inside the caller's transaction)."""
    t = now()
    start = t if req.start is None else int(req.start)
    if not t - 300 <= start <= t + 7 * 86400:
        raise Invalid("a shift starts between 5 minutes ago and 7 days ahead")
    lifetime = settings.ticket_lifetime if req.hours is None else int(req.hours * 3600)
    if not 60 <= lifetime <= settings.ticket_lifetime:
        raise Invalid(f"a shift lasts between 1 minute and {settings.ticket_lifetime // 3600} hours")
    end = start + lifetime

    staff = s.execute(select(Staff).where(Staff.id == staff_id).with_for_update()).scalar_one()
    phone = s.execute(select(Phone).where(Phone.id == phone_id).with_for_update()).scalar_one()
    if not staff.active or staff.revoked_at is not None:
        raise Forbidden("this person's access has been revoked")
    if phone.revoked_at is not None or phone.staff_id != staff.id:
        raise Forbidden("this phone has been revoked")
    phone.last_seen_at = t

    wanted = sorted({pk for g in grants_for(s, staff.id, start, end) for pk in locks_of_grant(s, g)})
    # shared row locks: bundles for the same locks run side by side, a revocation (FOR UPDATE) waits for them
    locks = list(s.execute(select(Lock).where(Lock.id.in_(wanted)).order_by(Lock.id).with_for_update(read=True))
                 .unique().scalars()) if wanted else []
    # re-read under the row locks: a grant revoked meanwhile is gone now
    grants = grants_for(s, staff.id, start, end)
    by_lock: dict[int, list[Grant]] = {}
    for g in grants:
        for pk in locks_of_grant(s, g):
            by_lock.setdefault(pk, []).append(g)

    ids = [lk.id for lk in locks]
    key_rows: dict[int, list[LockKey]] = {}
    pendings: dict[int, Rekey] = {}
    deny: dict[int, list[tuple[int, int, int]]] = {}
    if ids:  # three queries for all locks, not three per lock
        for row in s.execute(select(LockKey).where(LockKey.lock_pk.in_(ids))).scalars():
            key_rows.setdefault(row.lock_pk, []).append(row)
        for r in s.execute(select(Rekey).where(Rekey.lock_pk.in_(ids), Rekey.state == "pending")).scalars():
            pendings[r.lock_pk] = r
        for d in s.execute(select(DenyEntry).where(DenyEntry.lock_pk.in_(ids), DenyEntry.expires > t)
                           .order_by(DenyEntry.expires.desc(), DenyEntry.id)).scalars():
            deny.setdefault(d.lock_pk, []).append((d.kind, d.ident, d.expires))

    # first every ticket row (one INSERT round for all: the ids are the protocol's ticket ids) ...
    plan = []
    for lock in locks:
        pending = pendings.get(lock.id)
        epochs = [lock.epoch] + ([pending.new_epoch] if pending is not None and not pending.onsite else [])
        for epoch in epochs:
            for g in by_lock.get(lock.id, []):
                nb, na = max(start, g.valid_from), min(end, g.valid_until or end)
                if nb >= na:
                    continue
                win = (g.win_start, g.win_end, g.win_days, tz_offset_minutes(settings, nb)) if g.win_days else (0, 0, 0, 0)
                row = Ticket(lock_pk=lock.id, epoch=epoch, staff_id=staff.id, phone_id=phone.id, grant_id=g.id,
                             not_before=nb, not_after=na, issued_at=t, rights=g.rights)
                plan.append((lock, epoch, g, win, row))
    s.add_all([p[4] for p in plan])
    s.flush()

    # ... then the ticket records and K_T, the deny lists and what else each lock needs relayed
    out: dict[int, dict] = {}
    rings: dict[int, KeyRing] = {}
    issued = []
    for lock, epoch, g, win, row in plan:
        ring = rings.get(lock.id) or rings.setdefault(lock.id, KeyRing(None, vault, lock, key_rows.get(lock.id, [])))
        ticket, k_t = issue_ticket(ring.full(epoch), ticket_id=row.id, user_id=staff.id, not_before=row.not_before,
                                   not_after=row.not_after, issued_at=t, rights=g.rights, win_start=win[0],
                                   win_end=win[1], win_days=win[2], tz_offset=win[3])
        row.record = ticket.encode().hex()
        issued.append(row.id)
        entry = out.get(lock.id)
        if entry is None:
            pending = pendings.get(lock.id)
            epochs = [lock.epoch] + ([pending.new_epoch] if pending is not None and not pending.onsite else [])
            entry = out[lock.id] = {
                "lock_id": lock.lock_id, "home_id": lock.home_id, "epochs": epochs, "tickets": [],
                "deny_version": lock.deny_version,
                "deny_lists": {str(e): signed_deny_list(s, ring, e, t, deny.get(lock.id, [])) for e in epochs},
                "rekey": ({"old_epoch": pending.old_epoch, "new_epoch": pending.new_epoch, "message": pending.message}
                          if len(epochs) > 1 else None),
                "journal_ack": ack_for(s, ring, lock.epoch)[1] if lock.journal_seq else None,
                "journal_from_seq": lock.journal_seq + 1}
        entry["tickets"].append({
            "ticket_id": row.id, "epoch": epoch, "ticket": row.record, "k_t": k_t.hex(),
            "not_before": row.not_before, "not_after": row.not_after, "rights": g.rights, "grant_id": g.id,
            "kind": g.kind, "win_start": win[0], "win_end": win[1], "win_days": win[2], "tz_offset": win[3]})
    out = [out[lk.id] for lk in locks if lk.id in out]
    audit(s, "bundle.issue", f"phone:{phone.id}", actor_id=staff.id, at=t, staff=staff.id, tickets=issued,
          start=start, end=end)
    return {"staff_id": staff.id, "phone_id": phone.id, "issued_at": t, "start": start, "end": end,
            "locks": out}


def validate_grant_fields(rights: int, win_start: int, win_end: int, win_days: int) -> None:
    if not 0 < rights <= ALL_RIGHTS or rights & ~ALL_RIGHTS:
        raise Invalid("rights is a non-empty mask of UNLOCK=1, LOCK=2, JOURNAL=4, ADMIN=8")
    if win_days:
        if not (0 < win_days < 0x80 and 0 <= win_start <= 1439 and 1 <= win_end <= 1440):
            raise Invalid("window: days is a mask of bits 0 (Monday) .. 6 (Sunday); start 0..1439 and end "
                          "1..1440 minutes of the local day")
    elif win_start or win_end:
        raise Invalid("a daily window needs its weekdays (win_days)")


def alarm_grant_window(minutes: int, settings: Settings) -> tuple[int, int]:
    if not 1 <= minutes <= settings.alarm_max_minutes:
        raise Invalid(f"an alarm key lasts 1 to {settings.alarm_max_minutes} minutes")
    t = now()
    return t, t + minutes * 60


__all__ = ["issue_bundle", "BundleRequest", "grants_for", "locks_of_grant", "current_deny", "signed_deny_list",
           "validate_grant_fields", "alarm_grant_window"]
