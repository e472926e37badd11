"""Login sessions, staff, districts, groups, phones and tokens."""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy import select, update

from .. import auth, revoke
from ..errors import Conflict, Forbidden, Invalid, NotFound, TooManyRequests, Unauthorized
from ..keystore import audit, now
from ..models import District, Group, GroupMember, Phone, Staff, Token
from .deps import ALL, STAFF, require, state
from .schemas import Login, MemberIn, NamedIn, PasswordChange, PhoneIn, Reason, StaffIn

router = APIRouter(prefix="/api/v1")


def staff_out(st: Staff) -> dict:
    return {"id": st.id, "username": st.username, "full_name": st.full_name, "role": st.role,
            "district_id": st.district_id, "external_ref": st.external_ref, "active": st.active,
            "revoked_at": st.revoked_at, "has_password": st.password_hash is not None}


@router.post("/auth/login", tags=["auth"], summary="Open a session with a user name and password")
def login(body: Login, request: Request):
    st = state(request)
    st.limiter.hit(request.client.host if request.client else "?", now())
    with st.db.tx() as s:
        staff = s.execute(select(Staff).where(Staff.username == body.username)).scalar_one_or_none()
        if staff is not None and staff.locked_until > now():
            raise TooManyRequests("too many failed logins; this account is locked for a while",
                                  staff.locked_until - now())
        res = auth.login(s, st.settings, body.username, body.password)
    if res is None:
        raise Unauthorized("wrong user name or password")
    token, staff = res
    return {"token": token, "expires_in": st.settings.session_lifetime, "staff_id": staff.id, "role": staff.role}


@router.post("/auth/logout", tags=["auth"], summary="End this session")
def logout(request: Request, p=require(*ALL)):
    with state(request).db.tx() as s:
        s.execute(update(Token).where(Token.id == p.token_id).values(revoked_at=now()))
    return {"ok": True}


@router.get("/auth/me", tags=["auth"], summary="Who this token belongs to")
def me(request: Request, p=require(*ALL, kinds=("session", "phone", "integration"))):
    with state(request).db.tx() as s:
        out = staff_out(s.get(Staff, p.staff_id))
    out.update(token_kind=p.kind, phone_id=p.phone_id)
    return out


@router.post("/auth/password", tags=["auth"], summary="Change one's own password (ends other sessions)")
def change_password(body: PasswordChange, request: Request, p=require(*ALL)):
    st = state(request)
    auth.check_password_rules(body.new_password)
    ph = auth.hasher(st.settings)
    with st.db.tx() as s:
        staff = s.get(Staff, p.staff_id)
        try:
            ph.verify(staff.password_hash or "", body.old_password)
        except Exception:
            raise Forbidden("the old password is wrong") from None
        staff.password_hash = ph.hash(body.new_password)
        s.execute(update(Token).where(Token.staff_id == staff.id, Token.kind == "session", Token.id != p.token_id,
                                      Token.revoked_at.is_(None)).values(revoked_at=now()))
        audit(s, "password.change", f"staff:{staff.id}", actor_id=staff.id)
    return {"ok": True}


@router.post("/districts", tags=["domain"], status_code=201, summary="Create a district")
def create_district(body: NamedIn, request: Request, p=require("admin")):
    with state(request).db.tx() as s:
        if s.execute(select(District.id).where(District.name == body.name)).first():
            raise Conflict(f"district {body.name!r} exists")
        d = District(name=body.name)
        s.add(d)
        s.flush()
        audit(s, "district.create", f"district:{d.id}", actor_id=p.staff_id, name=body.name)
        return {"id": d.id, "name": d.name}


@router.get("/districts", tags=["domain"])
def list_districts(request: Request, p=require(*STAFF)):
    with state(request).db.tx() as s:
        return [{"id": d.id, "name": d.name} for d in s.execute(select(District).order_by(District.id)).scalars()]


@router.post("/groups", tags=["domain"], status_code=201, summary="Create a group of staff (a team)")
def create_group(body: NamedIn, request: Request, p=require(*STAFF)):
    with state(request).db.tx() as s:
        if body.district_id is not None and s.get(District, body.district_id) is None:
            raise NotFound(f"no district {body.district_id}")
        if s.execute(select(Group.id).where(Group.name == body.name)).first():
            raise Conflict(f"group {body.name!r} exists")
        g = Group(name=body.name, district_id=body.district_id)
        s.add(g)
        s.flush()
        audit(s, "group.create", f"group:{g.id}", actor_id=p.staff_id, name=body.name)
        return {"id": g.id, "name": g.name, "district_id": g.district_id}


@router.get("/groups", tags=["domain"])
def list_groups(request: Request, p=require(*STAFF)):
    with state(request).db.tx() as s:
        members: dict[int, list[int]] = {}
        for gid, sid in s.execute(select(GroupMember.group_id, GroupMember.staff_id)).all():
            members.setdefault(gid, []).append(sid)
        return [{"id": g.id, "name": g.name, "district_id": g.district_id, "members": sorted(members.get(g.id, []))}
                for g in s.execute(select(Group).order_by(Group.id)).scalars()]


@router.post("/groups/{group_id}/members", tags=["domain"], status_code=201)
def add_member(group_id: int, body: MemberIn, request: Request, p=require(*STAFF)):
    with state(request).db.tx() as s:
        if s.get(Group, group_id) is None:
            raise NotFound(f"no group {group_id}")
        if s.get(Staff, body.staff_id) is None:
            raise NotFound(f"no staff member {body.staff_id}")
        if s.get(GroupMember, (group_id, body.staff_id)) is None:
            s.add(GroupMember(group_id=group_id, staff_id=body.staff_id))
            audit(s, "group.add", f"group:{group_id}", actor_id=p.staff_id, staff=body.staff_id)
    return {"ok": True}


@router.delete("/groups/{group_id}/members/{staff_id}", tags=["domain"],
               summary="Remove a member; tickets already issued through the group stay valid until they expire "
                       "unless the grant or person is revoked")
def remove_member(group_id: int, staff_id: int, request: Request, p=require(*STAFF)):
    with state(request).db.tx() as s:
        m = s.get(GroupMember, (group_id, staff_id))
        if m is None:
            raise NotFound(f"staff member {staff_id} is not in group {group_id}")
        s.delete(m)
        audit(s, "group.remove", f"group:{group_id}", actor_id=p.staff_id, staff=staff_id)
    return {"ok": True}


@router.post("/staff", tags=["domain"], status_code=201, summary="Create a staff member or integration account")
def create_staff(body: StaffIn, request: Request, p=require("admin")):
    st = state(request)
    with st.db.tx() as s:
        if body.district_id is not None and s.get(District, body.district_id) is None:
            raise NotFound(f"no district {body.district_id}")
        staff = auth.create_staff(s, st.settings, **body.model_dump())
        audit(s, "staff.create", f"staff:{staff.id}", actor_id=p.staff_id, role=staff.role)
        return staff_out(staff)


@router.get("/staff", tags=["domain"])
def list_staff(request: Request, p=require(*STAFF)):
    with state(request).db.tx() as s:
        return [staff_out(x) for x in s.execute(select(Staff).order_by(Staff.id)).scalars()]


@router.get("/staff/{staff_id}", tags=["domain"])
def get_staff(staff_id: int, request: Request, p=require(*STAFF)):
    with state(request).db.tx() as s:
        x = s.get(Staff, staff_id)
        if x is None:
            raise NotFound(f"no staff member {staff_id}")
        return staff_out(x)


@router.post("/staff/{staff_id}/revoke", tags=["revocation"],
             summary="Revoke a person at once: phones, tokens, and every live ticket through the deny lists")
def revoke_staff(staff_id: int, body: Reason, request: Request, p=require(*STAFF)):
    if staff_id == p.staff_id:
        raise Conflict("you cannot revoke yourself")
    return state(request).db.run(lambda s: revoke.revoke_staff(s, staff_id, p.staff_id, body.reason))


@router.post("/staff/{staff_id}/tokens", tags=["auth"], status_code=201,
             summary="A bearer token for an integration account (shown once)")
def integration_token(staff_id: int, request: Request, p=require("admin")):
    with state(request).db.tx() as s:
        x = s.get(Staff, staff_id)
        if x is None:
            raise NotFound(f"no staff member {staff_id}")
        if x.role != "integration":
            raise Invalid("integration tokens are for accounts with the integration role")
        token = auth.new_token(s, "integration", x.id)
        audit(s, "token.create", f"staff:{x.id}", actor_id=p.staff_id, kind="integration")
    return {"token": token}


def phone_out(ph: Phone) -> dict:
    return {"id": ph.id, "staff_id": ph.staff_id, "label": ph.label, "revoked_at": ph.revoked_at,
            "created_at": ph.created_at, "last_seen_at": ph.last_seen_at}


@router.post("/phones", tags=["phones"], status_code=201,
             summary="Register a phone; returns its bearer token once (carers register their own)")
def register_phone(body: PhoneIn, request: Request, p=require(*ALL)):
    staff_id = body.staff_id if body.staff_id is not None else p.staff_id
    if staff_id != p.staff_id and p.role not in STAFF:
        raise Forbidden("only admins and planners register phones for someone else")
    with state(request).db.tx() as s:
        owner = s.get(Staff, staff_id)
        if owner is None:
            raise NotFound(f"no staff member {staff_id}")
        if not owner.active:
            raise Conflict("this person's access has been revoked")
        ph = Phone(staff_id=staff_id, label=body.label, created_at=now())
        s.add(ph)
        s.flush()
        token = auth.new_token(s, "phone", staff_id, phone_id=ph.id)
        audit(s, "phone.register", f"phone:{ph.id}", actor_id=p.staff_id, staff=staff_id)
        out = phone_out(ph)
    out["token"] = token
    return out


@router.get("/phones", tags=["phones"])
def list_phones(request: Request, staff_id: int | None = None, p=require(*ALL)):
    with state(request).db.tx() as s:
        q = select(Phone).order_by(Phone.id)
        if p.role not in STAFF:
            q = q.where(Phone.staff_id == p.staff_id)
        elif staff_id is not None:
            q = q.where(Phone.staff_id == staff_id)
        return [phone_out(x) for x in s.execute(q).scalars()]


@router.post("/phones/{phone_id}/revoke", tags=["revocation"],
             summary="Revoke a lost phone: its token and every live ticket it holds")
def revoke_phone(phone_id: int, body: Reason, request: Request, p=require(*ALL)):
    st = state(request)
    if p.role not in STAFF:
        with st.db.tx() as s:
            ph = s.get(Phone, phone_id)
            if ph is None or ph.staff_id != p.staff_id:
                raise NotFound(f"no phone {phone_id} of yours")
    return st.db.run(lambda s: revoke.revoke_phone(s, phone_id, p.staff_id, body.reason))
