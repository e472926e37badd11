"""Revocation of a person, a phone, a ticket or a grant: deny-list entries in the same transaction.

Each revocation finds the unexpired tickets it covers, locks their lock rows (in id
order), adds deny entries (kind 2 = the user for a person, kind 1 = ticket ids
otherwise; ``expires`` = the end of the last covered ticket) and bumps each affected
lock's ``deny_version`` once. All of it, and the audit entry, commit together or not
at all: an acknowledged revocation is on disk (SQLite ``synchronous=FULL``, PostgreSQL
WAL) before the HTTP answer is sent.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from lockproto import DenyKind

from .errors import Conflict, NotFound
from .keystore import audit, now
from .models import DenyEntry, Grant, Lock, Phone, Staff, Ticket, Token
from .tickets import locks_of_grant


def _deny(s: Session, t: int, per_lock: dict[int, list[tuple[int, int, int]]], extra_locks=()) -> dict[str, int]:
    """Add ``(kind, ident, expires)`` entries per lock row id, bump versions; returns lock_id -> version."""
    pks = sorted(set(per_lock) | set(extra_locks))
    if not pks:
        return {}
    locks = list(s.execute(select(Lock).where(Lock.id.in_(pks)).order_by(Lock.id).with_for_update()).unique().scalars())
    out = {}
    for lock in locks:
        entries = per_lock.get(lock.id, [])
        if not entries:
            continue
        lock.deny_version += 1
        for kind, ident, expires in entries:
            row = s.execute(select(DenyEntry).where(DenyEntry.lock_pk == lock.id, DenyEntry.kind == kind,
                                                    DenyEntry.ident == ident)).scalar_one_or_none()
            if row is None:
                s.add(DenyEntry(lock_pk=lock.id, kind=kind, ident=ident, expires=expires, created_at=t,
                                version=lock.deny_version))
            elif row.expires < expires:
                row.expires = expires
        out[lock.lock_id] = lock.deny_version
    return out


def _live_tickets(s: Session, t: int, *where) -> list[Ticket]:
    return list(s.execute(select(Ticket).where(Ticket.not_after > t, *where).order_by(Ticket.id)).scalars())


def revoke_staff(s: Session, staff_id: int, actor_id: int | None, reason: str = "") -> dict:
    """Revoke a person: every phone and token, every live ticket (deny list by user id) at once."""
    t = now()
    staff = s.execute(select(Staff).where(Staff.id == staff_id).with_for_update()).scalar_one_or_none()
    if staff is None:
        raise NotFound(f"no staff member {staff_id}")
    staff.active = False
    staff.revoked_at = staff.revoked_at or t
    s.execute(update(Phone).where(Phone.staff_id == staff_id, Phone.revoked_at.is_(None)).values(revoked_at=t))
    s.execute(update(Token).where(Token.staff_id == staff_id, Token.revoked_at.is_(None)).values(revoked_at=t))
    tickets = _live_tickets(s, t, Ticket.staff_id == staff_id)
    per_lock: dict[int, list] = {}
    for tk in tickets:
        tk.revoked_at = tk.revoked_at or t
        end = max([e for _, _, e in per_lock.get(tk.lock_pk, [])] + [tk.not_after])
        per_lock[tk.lock_pk] = [(int(DenyKind.USER), staff_id, end)]
    versions = _deny(s, t, per_lock)
    audit(s, "revoke.staff", f"staff:{staff_id}", actor_id=actor_id, at=t, reason=reason,
          tickets=[tk.id for tk in tickets], deny_versions=versions)
    return {"staff_id": staff_id, "revoked_at": staff.revoked_at, "tickets": len(tickets), "deny_versions": versions}


def _revoke_tickets(s: Session, t: int, tickets: list[Ticket]) -> dict[str, int]:
    per_lock: dict[int, list] = {}
    for tk in tickets:
        tk.revoked_at = tk.revoked_at or t
        per_lock.setdefault(tk.lock_pk, []).append((int(DenyKind.TICKET), tk.id, tk.not_after))
    return _deny(s, t, per_lock)


def revoke_phone(s: Session, phone_id: int, actor_id: int | None, reason: str = "") -> dict:
    """Revoke a phone (lost or stolen): its tokens and every live ticket it was given."""
    t = now()
    phone = s.execute(select(Phone).where(Phone.id == phone_id).with_for_update()).scalar_one_or_none()
    if phone is None:
        raise NotFound(f"no phone {phone_id}")
    phone.revoked_at = phone.revoked_at or t
    s.execute(update(Token).where(Token.phone_id == phone_id, Token.revoked_at.is_(None)).values(revoked_at=t))
    tickets = _live_tickets(s, t, Ticket.phone_id == phone_id)
    versions = _revoke_tickets(s, t, tickets)
    audit(s, "revoke.phone", f"phone:{phone_id}", actor_id=actor_id, at=t, reason=reason,
          tickets=[tk.id for tk in tickets], deny_versions=versions)
    return {"phone_id": phone_id, "revoked_at": phone.revoked_at, "tickets": len(tickets), "deny_versions": versions}


def revoke_ticket(s: Session, ticket_id: int, actor_id: int | None, reason: str = "") -> dict:
    t = now()
    tk = s.get(Ticket, ticket_id)
    if tk is None:
        raise NotFound(f"no ticket {ticket_id}")
    versions = _revoke_tickets(s, t, [tk] if tk.not_after > t else [])
    tk.revoked_at = tk.revoked_at or t
    audit(s, "revoke.ticket", f"ticket:{ticket_id}", actor_id=actor_id, at=t, reason=reason, deny_versions=versions)
    return {"ticket_id": ticket_id, "revoked_at": tk.revoked_at, "deny_versions": versions}


def revoke_grant(s: Session, grant_id: int, actor_id: int | None, reason: str = "") -> dict:
    """End a grant now, and deny the live tickets issued under it."""
    t = now()
    g = s.get(Grant, grant_id)
    if g is None:
        raise NotFound(f"no grant {grant_id}")
    if g.revoked_at is not None:
        raise Conflict(f"grant {grant_id} was already revoked")
    # lock every lock row the grant covers first, so an issue in flight either finished or sees the revocation
    covered = sorted(locks_of_grant(s, g))
    if covered:
        s.execute(select(Lock.id).where(Lock.id.in_(covered)).order_by(Lock.id).with_for_update()).all()
    g.revoked_at = t
    tickets = _live_tickets(s, t, Ticket.grant_id == grant_id)
    versions = _revoke_tickets(s, t, tickets)
    audit(s, "revoke.grant", f"grant:{grant_id}", actor_id=actor_id, at=t, reason=reason,
          tickets=[tk.id for tk in tickets], deny_versions=versions)
    return {"grant_id": grant_id, "revoked_at": t, "tickets": len(tickets), "deny_versions": versions}
