"""Homes, locks, grants, the issued-ticket audit, re-keying, alarm keys and the visit plan."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from sqlalchemy import or_, select

from .. import rekey, revoke
from ..errors import Conflict, Invalid, NotFound
from ..keystore import audit, get_lock, lock_id_bytes, now, store_key
from ..models import AuditEntry, District, Grant, Group, Home, Lock, PlannedVisit, Staff, Ticket
from ..tickets import alarm_grant_window, validate_grant_fields
from .deps import STAFF, require, state
from .schemas import AlarmIn, FactoryResetIn, GrantIn, HomeIn, LockIn, LockPatch, PlanIn, ProofIn, Reason, RekeyIn

router = APIRouter(prefix="/api/v1")


def home_out(h: Home) -> dict:
    return {"id": h.id, "citizen_ref": h.citizen_ref, "address": h.address, "district_id": h.district_id}


def lock_out(lk: Lock) -> dict:
    """A lock as the API shows it: identity, epochs, journal position and health hints. Never a key."""
    return {"lock_id": lk.lock_id, "home_id": lk.home_id, "board": lk.board, "epoch": lk.epoch,
            "deny_version": lk.deny_version, "journal_seq": lk.journal_seq, "seen_at": lk.seen_at,
            "seen_flags": lk.seen_flags, "seen_battery_pct": lk.seen_battery_pct, "created_at": lk.created_at}


@router.post("/homes", tags=["domain"], status_code=201, summary="Create a citizen's home")
def create_home(body: HomeIn, request: Request, p=require(*STAFF)):
    with state(request).db.tx() as s:
        if s.get(District, body.district_id) is None:
            raise NotFound(f"no district {body.district_id}")
        if s.execute(select(Home.id).where(Home.citizen_ref == body.citizen_ref)).first():
            raise Conflict(f"a home for citizen {body.citizen_ref!r} exists")
        h = Home(**body.model_dump())
        s.add(h)
        s.flush()
        audit(s, "home.create", f"home:{h.id}", actor_id=p.staff_id)
        return home_out(h)


@router.get("/homes", tags=["domain"])
def list_homes(request: Request, district_id: int | None = None, p=require(*STAFF)):
    with state(request).db.tx() as s:
        q = select(Home).order_by(Home.id)
        if district_id is not None:
            q = q.where(Home.district_id == district_id)
        return [home_out(h) for h in s.execute(q).scalars()]


def register_lock(s, vault, body: LockIn, actor_id: int | None) -> Lock:
    if s.execute(select(Lock.id).where(Lock.lock_id == body.lock_id)).first():
        raise Conflict(f"lock {body.lock_id} is already registered")
    if body.home_id is not None and s.get(Home, body.home_id) is None:
        raise NotFound(f"no home {body.home_id}")
    t = now()
    lk = Lock(lock_id=body.lock_id, home_id=body.home_id, board=body.board, epoch=body.epoch,
              genesis_epoch=body.epoch, journal_epoch=body.epoch, deny_version=1,
              journal_seq=0, created_at=t)
    s.add(lk)
    s.flush()
    store_key(s, vault, lk, body.epoch, bytes.fromhex(body.key), "active", t)
    audit(s, "lock.register", f"lock:{lk.lock_id}", actor_id=actor_id, at=t, epoch=body.epoch, home=body.home_id)
    return lk


@router.post("/locks", tags=["locks"], status_code=201,
             summary="Register a provisioned lock with its master key (stored encrypted, never returned)")
def create_lock(body: LockIn, request: Request, p=require("admin")):
    st = state(request)
    with st.db.tx() as s:
        return lock_out(register_lock(s, st.vault, body, p.staff_id))


@router.get("/locks", tags=["locks"])
def list_locks(request: Request, home_id: int | None = None, p=require(*STAFF)):
    with state(request).db.tx() as s:
        q = select(Lock).order_by(Lock.id)
        if home_id is not None:
            q = q.where(Lock.home_id == home_id)
        return [lock_out(x) for x in s.execute(q).unique().scalars()]


@router.get("/locks/{lock_id}", tags=["locks"])
def get_lock_ep(lock_id: str, request: Request, p=require(*STAFF)):
    with state(request).db.tx() as s:
        return lock_out(get_lock(s, lock_id))


@router.patch("/locks/{lock_id}", tags=["locks"], summary="Move a lock to a home or change its board")
def patch_lock(lock_id: str, body: LockPatch, request: Request, p=require("admin")):
    with state(request).db.tx() as s:
        lk = get_lock(s, lock_id, for_update=True)
        if body.home_id is not None:
            if s.get(Home, body.home_id) is None:
                raise NotFound(f"no home {body.home_id}")
            lk.home_id = body.home_id
        if body.board is not None:
            lk.board = body.board
        audit(s, "lock.update", f"lock:{lk.lock_id}", actor_id=p.staff_id, **body.model_dump(exclude_none=True))
        return lock_out(lk)


def grant_out(g: Grant, lock_ids: dict[int, str]) -> dict:
    return {"id": g.id, "staff_id": g.staff_id, "group_id": g.group_id, "lock_id": lock_ids.get(g.lock_pk),
            "home_id": g.home_id, "district_id": g.district_id, "rights": g.rights, "valid_from": g.valid_from,
            "valid_until": g.valid_until, "win_start": g.win_start, "win_end": g.win_end, "win_days": g.win_days,
            "kind": g.kind, "reason": g.reason, "created_at": g.created_at, "revoked_at": g.revoked_at}


@router.post("/grants", tags=["access"], status_code=201,
             summary="Grant a person or group access to a lock, home or district, with validity and windows")
def create_grant(body: GrantIn, request: Request, p=require(*STAFF)):
    if (body.staff_id is None) == (body.group_id is None):
        raise Invalid("a grant names exactly one of staff_id or group_id")
    if sum(x is not None for x in (body.lock_id, body.home_id, body.district_id)) != 1:
        raise Invalid("a grant names exactly one of lock_id, home_id or district_id")
    validate_grant_fields(body.rights, body.win_start, body.win_end, body.win_days)
    t = now()
    valid_from = t if body.valid_from is None else body.valid_from
    if body.valid_until is not None and body.valid_until <= valid_from:
        raise Invalid("valid_until must be after valid_from")
    with state(request).db.tx() as s:
        if body.staff_id is not None and s.get(Staff, body.staff_id) is None:
            raise NotFound(f"no staff member {body.staff_id}")
        if body.group_id is not None and s.get(Group, body.group_id) is None:
            raise NotFound(f"no group {body.group_id}")
        lock_pk = get_lock(s, body.lock_id).id if body.lock_id else None
        if body.home_id is not None and s.get(Home, body.home_id) is None:
            raise NotFound(f"no home {body.home_id}")
        if body.district_id is not None and s.get(District, body.district_id) is None:
            raise NotFound(f"no district {body.district_id}")
        g = Grant(staff_id=body.staff_id, group_id=body.group_id, lock_pk=lock_pk, home_id=body.home_id,
                  district_id=body.district_id, rights=body.rights, valid_from=valid_from,
                  valid_until=body.valid_until, win_start=body.win_start, win_end=body.win_end,
                  win_days=body.win_days, kind="regular", reason=body.reason, created_by=p.staff_id, created_at=t)
        s.add(g)
        s.flush()
        audit(s, "grant.create", f"grant:{g.id}", actor_id=p.staff_id, at=t)
        return grant_out(g, {lock_pk: body.lock_id} if lock_pk else {})


@router.get("/grants", tags=["access"])
def list_grants(request: Request, staff_id: int | None = None, include_revoked: bool = False, p=require(*STAFF)):
    with state(request).db.tx() as s:
        q = select(Grant).order_by(Grant.id)
        if staff_id is not None:
            q = q.where(Grant.staff_id == staff_id)
        if not include_revoked:
            q = q.where(Grant.revoked_at.is_(None))
        ids = dict(s.execute(select(Lock.id, Lock.lock_id)).all())
        return [grant_out(g, ids) for g in s.execute(q).scalars()]


@router.post("/grants/{grant_id}/revoke", tags=["revocation"],
             summary="End a grant now and deny the live tickets issued under it")
def revoke_grant(grant_id: int, body: Reason, request: Request, p=require(*STAFF)):
    return state(request).db.run(lambda s: revoke.revoke_grant(s, grant_id, p.staff_id, body.reason))


def ticket_out(t: Ticket, ids: dict[int, str]) -> dict:
    return {"ticket_id": t.id, "lock_id": ids.get(t.lock_pk), "epoch": t.epoch, "staff_id": t.staff_id,
            "phone_id": t.phone_id, "grant_id": t.grant_id, "not_before": t.not_before, "not_after": t.not_after,
            "issued_at": t.issued_at, "rights": t.rights, "revoked_at": t.revoked_at, "ticket": t.record}


@router.get("/tickets", tags=["audit"], summary="Issued tickets (the audit of keys handed out; never K_T)")
def list_tickets(request: Request, staff_id: int | None = None, lock_id: str | None = None,
                 since: int | None = None, limit: int = 1000, p=require(*STAFF)):
    if not 1 <= limit <= 10000:
        raise Invalid("limit is 1..10000")
    with state(request).db.tx() as s:
        q = select(Ticket).order_by(Ticket.id.desc()).limit(limit)
        if staff_id is not None:
            q = q.where(Ticket.staff_id == staff_id)
        if lock_id is not None:
            q = q.where(Ticket.lock_pk == get_lock(s, lock_id).id)
        if since is not None:
            q = q.where(Ticket.issued_at >= since)
        ids = dict(s.execute(select(Lock.id, Lock.lock_id)).all())
        return [ticket_out(t, ids) for t in s.execute(q).scalars()]


@router.post("/tickets/{ticket_id}/revoke", tags=["revocation"], summary="Revoke one ticket")
def revoke_ticket(ticket_id: int, body: Reason, request: Request, p=require(*STAFF)):
    return state(request).db.run(lambda s: revoke.revoke_ticket(s, ticket_id, p.staff_id, body.reason))


@router.post("/locks/{lock_id}/rekey", tags=["rekey"], status_code=201,
             summary="Start a re-key: a new key is generated; phones relay the wrapped message (or the serial tool)")
def start_rekey(lock_id: str, body: RekeyIn, request: Request, p=require("admin")):
    st = state(request)
    lock_id_bytes(lock_id)
    return st.db.run(lambda s: rekey.start(s, st.vault, lock_id.lower(), p.staff_id, body.onsite))


@router.get("/locks/{lock_id}/rekey", tags=["rekey"], summary="The latest re-key of a lock and its state")
def get_rekey(lock_id: str, request: Request, p=require("admin")):
    with state(request).db.tx() as s:
        lk = get_lock(s, lock_id)
        r = rekey.pending_rekey(s, lk, ("pending", "done", "cancelled"))
        if r is None:
            raise NotFound(f"lock {lock_id} was never re-keyed")
        return rekey.describe(r, lk)


@router.post("/locks/{lock_id}/rekey/cancel", tags=["rekey"])
def cancel_rekey(lock_id: str, request: Request, p=require("admin")):
    return state(request).db.run(lambda s: rekey.cancel(s, lock_id, p.staff_id))


@router.post("/locks/{lock_id}/rekey/proof", tags=["rekey"],
             summary="The re-key proof read from the lock over the serial cable (on-site path)")
def onsite_proof(lock_id: str, body: ProofIn, request: Request, p=require("admin")):
    if body.lock_id != lock_id.lower():
        raise Invalid("lock_id in the path and the body differ")
    st = state(request)
    return st.db.run(lambda s: rekey.prove(s, st.vault, lock_id.lower(), bytes.fromhex(body.proof), p.staff_id))


@router.post("/locks/{lock_id}/factory-reset", tags=["locks"],
             summary="The server's consent to a factory reset (FACTORY_RESET args), bound to one HELLO; audited")
def factory_reset(lock_id: str, body: FactoryResetIn, request: Request, p=require("admin")):
    from lockproto.provision import factory_reset_statement

    from ..keystore import KeyRing

    st = state(request)
    with st.db.tx() as s:
        lk = get_lock(s, lock_id)
        ring = KeyRing(s, st.vault, lk)
        if body.epoch < lk.epoch or ring.state(body.epoch) not in ("active", "pending", "cancelled"):
            raise Invalid(f"lock {lk.lock_id} is not at epoch {body.epoch} as far as the server knows")
        statement = factory_reset_statement(ring.full(body.epoch), bytes.fromhex(body.nonce))
        audit(s, "lock.factory_reset", f"lock:{lk.lock_id}", actor_id=p.staff_id, epoch=body.epoch)
    return {"lock_id": lk.lock_id, "epoch": body.epoch, "statement": statement.hex()}


@router.post("/integration/alarm-keys", tags=["integration"], status_code=201,
             summary="Temporary alarm key: carer X may open the door of home Y for N minutes (audited)")
def alarm_key(body: AlarmIn, request: Request, p=require("integration", "admin", kinds=("integration", "session"))):
    st = state(request)
    start, end = alarm_grant_window(body.minutes, st.settings)
    with st.db.tx() as s:
        if (body.staff_id is None) == (body.username is None):
            raise Invalid("name the carer by exactly one of staff_id or username")
        carer = (s.get(Staff, body.staff_id) if body.staff_id is not None else
                 s.execute(select(Staff).where(Staff.username == body.username)).scalar_one_or_none())
        if carer is None:
            raise NotFound("no such carer")
        if not carer.active or carer.role != "carer":
            raise Conflict("alarm keys go to active carers only")
        if (body.home_id is None) == (body.citizen_ref is None):
            raise Invalid("name the home by exactly one of home_id or citizen_ref")
        home = (s.get(Home, body.home_id) if body.home_id is not None else
                s.execute(select(Home).where(Home.citizen_ref == body.citizen_ref)).scalar_one_or_none())
        if home is None:
            raise NotFound("no such home")
        if not s.execute(select(Lock.id).where(Lock.home_id == home.id)).first():
            raise Conflict("this home has no lock registered")
        g = Grant(staff_id=carer.id, home_id=home.id, rights=3, valid_from=start, valid_until=end, kind="alarm",
                  reason=body.reason, created_by=p.staff_id, created_at=start)
        s.add(g)
        s.flush()
        audit(s, "alarm.grant", f"grant:{g.id}", actor_id=p.staff_id, at=start, carer=carer.id, home=home.id,
              minutes=body.minutes, reason=body.reason)
        return {"grant_id": g.id, "staff_id": carer.id, "home_id": home.id, "valid_from": start, "valid_until": end,
                "note": "the carer's phone fetches the ticket with its next bundle (POST /api/v1/phone/bundle)"}


@router.post("/plan", tags=["reports"], status_code=201, summary="Import planned visits (replaces overlapping ones)")
def import_plan(body: PlanIn, request: Request, p=require(*STAFF)):
    with state(request).db.tx() as s:
        return {"imported": store_plan(s, [v.model_dump() for v in body.visits], p.staff_id)}


def store_plan(s, visits: list[dict], actor_id: int | None) -> int:
    staff = set(s.execute(select(Staff.id)).scalars())
    homes = set(s.execute(select(Home.id)).scalars())
    for i, v in enumerate(visits):
        if v["staff_id"] not in staff or v["home_id"] not in homes:
            raise Invalid(f"visit {i + 1}: unknown staff_id or home_id")
        if v["end"] <= v["start"]:
            raise Invalid(f"visit {i + 1}: end must be after start")
    if visits:
        lo, hi = min(v["start"] for v in visits), max(v["start"] for v in visits)
        for old in s.execute(select(PlannedVisit).where(PlannedVisit.start >= lo, PlannedVisit.start <= hi)).scalars():
            s.delete(old)
    for v in visits:
        s.add(PlannedVisit(**v))
    audit(s, "plan.import", "plan", actor_id=actor_id, visits=len(visits))
    return len(visits)


@router.get("/audit", tags=["audit"], summary="The audit log, newest first")
def audit_log(request: Request, action: str | None = None, subject: str | None = None, limit: int = 200,
              p=require("admin")):
    if not 1 <= limit <= 10000:
        raise Invalid("limit is 1..10000")
    with state(request).db.tx() as s:
        q = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
        if action:
            q = q.where(or_(AuditEntry.action == action, AuditEntry.action.startswith(action + ".")))
        if subject:
            q = q.where(AuditEntry.subject == subject)
        return [{"id": a.id, "at": a.at, "actor_id": a.actor_id, "action": a.action, "subject": a.subject,
                 "detail": json.loads(a.detail)} for a in s.execute(q).scalars()]
