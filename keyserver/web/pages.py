"""The web UI's pages: server-rendered HTML for IT and planners, on the API's own domain functions.

Every page reads through the same functions the HTTP API uses (``keyserver.reports``,
``keyserver.revoke``, the API routers' endpoint functions for writes, so every rule and
audit entry is the API's), with the same roles. Any error a person can cause becomes a
4xx page with the reason (:class:`PageRoute`); nothing is changed then.
"""

from __future__ import annotations

import datetime as _dt
import inspect
import json
import secrets
from importlib import resources
from typing import Callable
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from sqlalchemy import func, select, update
from sqlalchemy.exc import DataError

from lockproto import ProtocolError, Right

from .. import reports, revoke
from ..api import access as api_access
from ..api import people as api_people
from ..api import reports as api_reports
from ..api.deps import STAFF, state
from ..api.schemas import GrantIn, HomeIn, MemberIn, NamedIn, PhoneIn, Reason, StaffIn
from ..auth import MIN_PASSWORD, digest
from ..auth import login as auth_login
from ..errors import ApiError, Conflict, Invalid, NotFound, TooManyRequests, Unauthorized
from ..keystore import get_lock, now
from ..models import ROLES, District, Grant, Group, GroupMember, Home, Lock, Phone, Rekey, Staff, Ticket, Token
from ..rekey import describe as describe_rekey
from ..tickets import locks_of_grant
from . import charts
from .session import (LOGIN_COOKIE, PREFIX, SignInRequired, Viewer, check_csrf, check_login_csrf, clear_session_cookie,
                      is_https,
                      set_login_csrf, safe_next, set_session_cookie, viewer)

_HERE = resources.files("keyserver.web")
templates = Jinja2Templates(directory=str(_HERE / "templates"))

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
STATIC = {"app.css": "text/css", "app.js": "text/javascript", "favicon.svg": "image/svg+xml"}
RIGHTS = [("unlock", int(Right.UNLOCK)), ("lock", int(Right.LOCK)), ("journal", int(Right.JOURNAL)),
          ("admin", int(Right.ADMIN))]
DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
NAV = [("dashboard", "Locks", "/"), ("districts", "Districts", "/districts"), ("staff", "Staff", "/staff"),
       ("homes", "Homes", "/homes"), ("access", "Access", "/access"), ("visits", "Visits", "/visits"),
       ("battery", "Batteries", "/battery"), ("keys", "Re-keys & alarm keys", "/keys")]


# ---- rendering and errors ----

def _zone(request: Request):
    return state(request).settings.zone


def _fmt_time(request: Request):
    zone = _zone(request)

    def when(t, fmt="%Y-%m-%d %H:%M"):
        return "" if t is None else _dt.datetime.fromtimestamp(int(t), zone).strftime(fmt)

    return when


def render(request: Request, name: str, v: Viewer | None, *, status: int = 200, active: str = "", **ctx) -> Response:
    ctx.update(status_code=status, v=v, nav=NAV, active=active, prefix=PREFIX, when=_fmt_time(request),
               rights_names=_rights_names, days_names=_days_names, minutes_hhmm=_hhmm)
    resp = templates.TemplateResponse(request, name, ctx, status_code=status)
    resp.headers.update(SECURITY_HEADERS)
    return resp


def error_page(request: Request, status: int, reason: str, message: str, headers: dict | None = None) -> Response:
    try:
        from .session import current

        v = current(request)
    except Exception:  # noqa: BLE001 - the error page must render even when the database is the problem
        v = None
    resp = render(request, "error.html", v, status=status, reason=reason, message=message)
    if headers:
        resp.headers.update(headers)
    return resp


class PageRoute(APIRoute):
    """A route whose errors are HTML pages (the API's are JSON): ApiError and validation errors become a
    4xx page naming the reason; a missing session on a GET redirects to the sign-in page."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def run(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired as e:
                return RedirectResponse(e.next_url, status_code=303, headers=SECURITY_HEADERS)
            except ApiError as e:
                headers = {"Retry-After": str(e.retry_after)} if isinstance(e, TooManyRequests) else None
                return error_page(request, e.status, e.reason, e.message, headers)
            except (RequestValidationError, ValidationError) as e:
                return error_page(request, 422, "invalid", _validation_text(e))
            except ProtocolError as e:
                return error_page(request, 422, "protocol", f"{e.code.name}: {e.code.describe()}")
            except (OverflowError, DataError):
                # an id beyond the database's integer range (as the API's handler in app.py), after the rollback
                return error_page(request, 422, "invalid", "a number in the request is out of range")

        return run


def api_roles(endpoint: Callable) -> tuple[str, ...]:
    """The roles the API endpoint's own ``require(...)`` admits, of those who have a web session: a form
    is shown, and its POST accepted, for exactly these (read from the endpoint, so they cannot drift)."""
    dep = inspect.signature(endpoint).parameters["p"].default.dependency
    roles = inspect.getclosurevars(dep).nonlocals["roles"]
    return tuple(r for r in roles if r in STAFF)


def may(v: Viewer, endpoint: Callable) -> bool:
    return v.role in api_roles(endpoint)


def _validation_text(e) -> str:
    parts = []
    for err in e.errors():
        loc = ".".join(str(x) for x in err.get("loc", ()) if x not in ("body", "query", "path"))
        msg = str(err.get("msg", "")).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts) or "invalid request"


router = APIRouter(prefix=PREFIX, route_class=PageRoute, include_in_schema=False)


# ---- small parsers: every bad value is a 422 with the field's name ----

def opt_int(value: str | None, name: str, lo: int | None = None, hi: int | None = None) -> int | None:
    if value is None or str(value).strip() == "":
        return None
    try:
        n = int(str(value).strip())
    except ValueError:
        raise Invalid(f"{name} must be a whole number, not {str(value)[:40]!r}") from None
    if (lo is not None and n < lo) or (hi is not None and n > hi):
        raise Invalid(f"{name} must be between {lo} and {hi}")
    return n


def req_int(value: str | None, name: str, **kw) -> int:
    n = opt_int(value, name, **kw)
    if n is None:
        raise Invalid(f"{name} is required")
    return n


def opt_day(value: str | None, name: str = "day") -> str | None:
    if value is None or value.strip() == "":
        return None
    try:
        return _dt.date.fromisoformat(value.strip()).isoformat()
    except ValueError:
        raise Invalid(f"{name} must be a date YYYY-MM-DD, not {value[:40]!r}") from None


def opt_local_time(value: str | None, name: str, zone) -> int | None:
    """A ``datetime-local`` field (``YYYY-MM-DDTHH:MM``, the municipality's local time) as Unix seconds."""
    if value is None or value.strip() == "":
        return None
    try:
        d = _dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise Invalid(f"{name} must be a date and time YYYY-MM-DDTHH:MM, not {value[:40]!r}") from None
    if d.tzinfo is None:
        d = d.replace(tzinfo=zone)
    return int(d.timestamp())


def opt_hhmm(value: str | None, name: str) -> int | None:
    """A ``time`` field (``HH:MM``) as minutes of the day; ``24:00`` is the end of the day."""
    if value is None or value.strip() == "":
        return None
    try:
        hh, mm = value.strip().split(":")[:2]
        h, m = int(hh), int(mm)
    except ValueError:
        raise Invalid(f"{name} must be a time HH:MM, not {value[:40]!r}") from None
    if not (0 <= h <= 24 and 0 <= m < 60) or h * 60 + m > 1440:
        raise Invalid(f"{name} must be a time between 00:00 and 24:00")
    return h * 60 + m


def _rights_names(r: int) -> str:
    return ", ".join(n for n, bit in RIGHTS if r & bit) or "none"


def _days_names(d: int) -> str:
    return "every day" if d in (0, 0x7F) else ", ".join(n for i, n in enumerate(DAYS) if d & (1 << i))


def _hhmm(m: int) -> str:
    return f"{m // 60:02d}:{m % 60:02d}"


def _today(request: Request) -> str:
    return _dt.datetime.now(_zone(request)).date().isoformat()


def _day_span(request: Request, day: str) -> tuple[int, int]:
    zone = _zone(request)
    d = _dt.date.fromisoformat(day)
    t0 = int(_dt.datetime.combine(d, _dt.time(), zone).timestamp())
    t1 = int(_dt.datetime.combine(d + _dt.timedelta(days=1), _dt.time(), zone).timestamp())
    return t0, t1


def _names(s) -> dict:
    """Lookup tables every page uses: districts, homes, staff, locks (row id -> public lock id)."""
    return {"districts": dict(s.execute(select(District.id, District.name)).all()),
            "homes": {h.id: h for h in s.execute(select(Home).order_by(Home.id)).scalars()},
            "staff": {x.id: x for x in s.execute(select(Staff).order_by(Staff.id)).scalars()},
            "lock_ids": dict(s.execute(select(Lock.id, Lock.lock_id)).all())}


# ---- static files (package data, a fixed list) ----

@router.get("/static/{name}")
def static(name: str):
    if name not in STATIC:
        raise NotFound(f"no static file {name!r}")
    return FileResponse(str(_HERE / "static" / name), media_type=STATIC[name],
                        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "max-age=300"})


# ---- sign-in ----

@router.get("/login")
def login_page(request: Request, next: str = ""):
    from .session import current

    if current(request) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    token = secrets.token_urlsafe(24)
    resp = render(request, "login.html", None, next=safe_next(next), csrf=token)
    set_login_csrf(request, resp, token)
    return resp


@router.post("/login")
def login_submit(request: Request, username: str = Form(""), password: str = Form(""), csrf: str = Form(""),
                 next: str = Form("")):
    check_login_csrf(request, csrf)
    st = state(request)
    if not username or not password:
        raise Invalid("enter your user name and your password")
    if len(username) > 120 or len(password) > 1024:
        raise Invalid("the user name or the password is too long")
    st.limiter.hit(request.client.host if request.client else "?", now())
    with st.db.tx() as s:
        staff = s.execute(select(Staff).where(Staff.username == username)).scalar_one_or_none()
        if staff is not None and staff.locked_until > now():
            raise TooManyRequests("too many failed sign-ins; this account is locked for a while",
                                  staff.locked_until - now())
        res = auth_login(s, st.settings, username, password)
    if res is None:
        raise Unauthorized("wrong user name or password")
    token, staff = res
    if staff.role not in STAFF:
        with st.db.tx() as s:  # a carer or integration account gets no web session: end the one just opened
            s.execute(update(Token).where(Token.digest == digest(token)).values(revoked_at=now()))
        raise Unauthorized("the web UI is for admins and planners; carers use the phone app")
    resp = RedirectResponse(safe_next(next), status_code=303, headers=SECURITY_HEADERS)
    set_session_cookie(request, resp, token, st.settings.session_lifetime)
    resp.delete_cookie(LOGIN_COOKIE, path=PREFIX, httponly=True, samesite="strict", secure=is_https(request))
    return resp


@router.post("/logout")
def logout(request: Request, csrf: str = Form("")):
    v = viewer(request)
    check_csrf(request, v, csrf)
    with state(request).db.tx() as s:
        s.get(Token, v.p.token_id).revoked_at = now()
    resp = RedirectResponse(f"{PREFIX}/login", status_code=303, headers=SECURITY_HEADERS)
    clear_session_cookie(request, resp)
    return resp


# ---- dashboard: locks and their health ----

@router.get("/")
def dashboard(request: Request, district_id: str = "", only_problems: str = ""):
    v = viewer(request)
    did = opt_int(district_id, "district_id")
    rows = api_reports.health(request, district_id=did, only_problems=bool(only_problems), p=v.p)
    with state(request).db.tx() as s:
        n = _names(s)
        if did is not None and did not in n["districts"]:
            raise NotFound(f"no district {did}")
        batt = {}
        for lk in s.execute(select(Lock).where(Lock.lock_id.in_([r["lock_id"] for r in rows]))).unique().scalars():
            batt[lk.lock_id] = reports.battery_report(s, lk)
    counts = {"locks": len(rows), "problems": sum(bool(r["problems"]) for r in rows),
              "deny": sum(r["deny_behind"] or r["deny_stale"] for r in rows),
              "time": sum(r["time_uncertain"] for r in rows),
              "backlog": sum("journal backlog" in r["problems"] for r in rows),
              "jams": sum(r["jams_30d"] > 0 for r in rows),
              "battery": sum(b["predicted_at"] is not None and b["predicted_at"] <= now() + 30 * 86400
                             for b in batt.values())}
    return render(request, "dashboard.html", v, active="dashboard", rows=rows, n=n, batt=batt, counts=counts,
                  district_id=did, only_problems=bool(only_problems))


@router.get("/locks/{lock_id}")
def lock_page(request: Request, lock_id: str):
    v = viewer(request)
    with state(request).db.tx() as s:
        lk = get_lock(s, lock_id)
        h = reports.lock_health(s, lk)
        b = reports.battery_report(s, lk)
        n = _names(s)
        rk = [describe_rekey(r, lk) for r in s.execute(select(Rekey).where(Rekey.lock_pk == lk.id)
                                                       .order_by(Rekey.id.desc())).scalars()]
        from ..models import DenyEntry

        deny = [{"kind": {1: "ticket", 2: "person"}.get(d.kind, str(d.kind)), "ident": d.ident, "expires": d.expires,
                 "version": d.version} for d in s.execute(select(DenyEntry).where(
                     DenyEntry.lock_pk == lk.id, DenyEntry.expires > now()).order_by(DenyEntry.id)).scalars()]
        lock = api_access.lock_out(lk)
    return render(request, "lock.html", v, active="dashboard", lock=lock, h=h, b=b, n=n, rekeys=rk, deny=deny)


# ---- districts, staff, homes ----

@router.get("/districts")
def districts(request: Request):
    v = viewer(request)
    with state(request).db.tx() as s:
        homes = dict(s.execute(select(Home.district_id, func.count()).group_by(Home.district_id)).all())
        locks = dict(s.execute(select(Home.district_id, func.count()).select_from(Lock)
                               .join(Home, Lock.home_id == Home.id).group_by(Home.district_id)).all())
        staff = dict(s.execute(select(Staff.district_id, func.count()).where(Staff.active.is_(True))
                               .group_by(Staff.district_id)).all())
        rows = [{"id": d.id, "name": d.name, "homes": homes.get(d.id, 0), "locks": locks.get(d.id, 0),
                 "staff": staff.get(d.id, 0)} for d in s.execute(select(District).order_by(District.name)).scalars()]
    return render(request, "districts.html", v, active="districts", rows=rows,
                  can_create=may(v, api_people.create_district))


@router.post("/districts")
def district_create(request: Request, name: str = Form(""), csrf: str = Form("")):
    v = viewer(request, api_roles(api_people.create_district))
    check_csrf(request, v, csrf)
    d = api_people.create_district(NamedIn(name=name.strip()), request, p=v.p)
    return RedirectResponse(f"{PREFIX}/districts?created={d['id']}", status_code=303)


@router.get("/staff")
def staff_list(request: Request, role: str = "", district_id: str = "", show: str = "active"):
    v = viewer(request)
    did = opt_int(district_id, "district_id")
    if role and role not in ("admin", "planner", "carer", "integration"):
        raise Invalid(f"role must be admin, planner, carer or integration, not {role[:20]!r}")
    if show not in ("active", "all", "revoked"):
        raise Invalid("show is active, all or revoked")
    rows = api_people.list_staff(request, p=v.p)
    rows = [r for r in rows if (not role or r["role"] == role) and (did is None or r["district_id"] == did)
            and (show == "all" or (show == "active") == r["active"])]
    with state(request).db.tx() as s:
        n = _names(s)
        phones = dict(s.execute(select(Phone.staff_id, func.count()).where(Phone.revoked_at.is_(None))
                                .group_by(Phone.staff_id)).all())
    return render(request, "staff.html", v, active="staff", rows=rows, n=n, phones=phones, role=role,
                  district_id=did, show=show, roles=ROLES, can_create=may(v, api_people.create_staff),
                  min_password=MIN_PASSWORD)


@router.post("/staff")
def staff_create(request: Request, username: str = Form(""), full_name: str = Form(""), role: str = Form(""),
                 district_id: str = Form(""), external_ref: str = Form(""), password: str = Form(""),
                 csrf: str = Form("")):
    """A new person through ``POST /api/v1/staff`` (admins only, as the API). The password is the API's
    rule: optional for every role (empty: no password; the account cannot sign in with one), at least
    the API's minimum when given. It is hashed by the API and never shown, logged or sent back."""
    v = viewer(request, api_roles(api_people.create_staff))
    check_csrf(request, v, csrf)
    if role not in ROLES:
        raise Invalid(f"choose a role: {', '.join(ROLES)}")
    body = StaffIn(username=username.strip(), full_name=full_name.strip(), role=role,
                   district_id=opt_int(district_id, "district"), external_ref=external_ref.strip() or None,
                   password=password or None)
    x = api_people.create_staff(body, request, p=v.p)
    return RedirectResponse(f"{PREFIX}/staff/{x['id']}?created=1", status_code=303, headers=SECURITY_HEADERS)


def _person(request: Request, v: Viewer, staff_id: int) -> dict:
    staff = api_people.get_staff(staff_id, request, p=v.p)
    phones = api_people.list_phones(request, staff_id=staff_id, p=v.p)
    with state(request).db.tx() as s:
        n = _names(s)
        gids = set(s.execute(select(GroupMember.group_id).where(GroupMember.staff_id == staff_id)).scalars())
        groups = [g for g in s.execute(select(Group).order_by(Group.name)).scalars() if g.id in gids]
        grants = [api_access.grant_out(g, n["lock_ids"]) for g in s.execute(
            select(Grant).where((Grant.staff_id == staff_id) | Grant.group_id.in_(gids)).order_by(Grant.id)).scalars()]
        t = now()
        live = s.execute(select(Ticket.lock_pk, func.count(), func.max(Ticket.not_after)).where(
            Ticket.staff_id == staff_id, Ticket.not_after > t, Ticket.revoked_at.is_(None))
            .group_by(Ticket.lock_pk)).all()
        live = [{"lock_id": n["lock_ids"][pk], "count": c, "until": until} for pk, c, until in live]
    return {"staff": staff, "phones": phones, "groups": groups, "grants": grants, "live": live, "n": n}


@router.get("/staff/{staff_id}")
def person(request: Request, staff_id: int, created: str = ""):
    v = viewer(request)
    return render(request, "person.html", v, active="staff", created=bool(created),
                  can_phone=may(v, api_people.register_phone), can_token=may(v, api_people.integration_token),
                  **_person(request, v, staff_id))


@router.post("/staff/{staff_id}/phones")
def phone_register(request: Request, staff_id: int, label: str = Form(""), csrf: str = Form("")):
    """Register a phone for this person (``POST /api/v1/phones`` with ``staff_id``); its bearer token is
    shown once on the page this POST answers (no redirect, never in a URL, ``no-store``)."""
    v = viewer(request, api_roles(api_people.register_phone))
    check_csrf(request, v, csrf)
    ph = api_people.register_phone(PhoneIn(label=label.strip(), staff_id=staff_id), request, p=v.p)
    return _token_page(request, v, staff_id, ph.pop("token"), "phone", phone=ph)


@router.post("/staff/{staff_id}/tokens")
def integration_token(request: Request, staff_id: int, csrf: str = Form("")):
    """A bearer token for an integration account (``POST /api/v1/staff/{id}/tokens``, admins), shown once."""
    v = viewer(request, api_roles(api_people.integration_token))
    check_csrf(request, v, csrf)
    token = api_people.integration_token(staff_id, request, p=v.p)["token"]
    return _token_page(request, v, staff_id, token, "integration")


def _token_page(request: Request, v: Viewer, staff_id: int, token: str, kind: str, **ctx) -> Response:
    staff = api_people.get_staff(staff_id, request, p=v.p)
    resp = render(request, "token.html", v, active="staff", staff=staff, token=token, kind=kind, **ctx)
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Pragma"] = "no-cache"
    return resp


@router.get("/homes")
def homes(request: Request, district_id: str = "", created: str = ""):
    v = viewer(request)
    did = opt_int(district_id, "district_id")
    rows = api_access.list_homes(request, district_id=did, p=v.p)
    with state(request).db.tx() as s:
        n = _names(s)
        locks: dict[int, list] = {}
        for lk in s.execute(select(Lock).order_by(Lock.lock_id)).unique().scalars():
            if lk.home_id is not None:
                locks.setdefault(lk.home_id, []).append(lk)
    return render(request, "homes.html", v, active="homes", rows=rows, n=n, locks=locks, district_id=did,
                  can_create=may(v, api_access.create_home), created=opt_int(created, "created"))


@router.post("/homes")
def home_create(request: Request, citizen_ref: str = Form(""), address: str = Form(""), district_id: str = Form(""),
                csrf: str = Form("")):
    v = viewer(request, api_roles(api_access.create_home))
    check_csrf(request, v, csrf)
    body = HomeIn(citizen_ref=citizen_ref.strip(), address=address.strip(),
                  district_id=req_int(district_id, "district"))
    h = api_access.create_home(body, request, p=v.p)
    return RedirectResponse(f"{PREFIX}/homes?created={h['id']}#home-{h['id']}", status_code=303,
                            headers=SECURITY_HEADERS)


# ---- revocation: one action, confirmed on a page that lists the locks it affects ----

class _DryRun(Exception):
    pass


def dry_run(request: Request, fn: Callable) -> dict:
    """Run a revocation in a transaction that is rolled back: exactly what it would do, and nothing done."""
    box: dict = {}

    def go(s):
        box["result"] = fn(s)
        raise _DryRun

    try:
        with state(request).db.tx() as s:
            go(s)
    except _DryRun:
        pass
    return box["result"]


def _affected(request: Request, deny_versions: dict[str, int]) -> list[dict]:
    with state(request).db.tx() as s:
        n = _names(s)
        out = []
        for lk in s.execute(select(Lock).where(Lock.lock_id.in_(list(deny_versions))).order_by(Lock.lock_id)) \
                .unique().scalars():
            home = n["homes"].get(lk.home_id)
            out.append({"lock_id": lk.lock_id, "home": home, "district": n["districts"].get(home.district_id)
                        if home else None, "deny_version": lk.deny_version, "new_version": deny_versions[lk.lock_id]})
    return out


@router.get("/staff/{staff_id}/revoke")
def revoke_person_confirm(request: Request, staff_id: int):
    v = viewer(request)
    if staff_id == v.p.staff_id:
        raise Conflict("you cannot revoke yourself")
    ctx = _person(request, v, staff_id)
    if not ctx["staff"]["active"]:
        raise Conflict(f"{ctx['staff']['username']} was already revoked")
    preview = dry_run(request, lambda s: revoke.revoke_staff(s, staff_id, v.p.staff_id, ""))
    with state(request).db.tx() as s:
        covered = set()
        for g in s.execute(select(Grant).where(Grant.id.in_([g["id"] for g in ctx["grants"]
                                                             if g["revoked_at"] is None]))).scalars():
            if g.staff_id == staff_id:
                covered.update(locks_of_grant(s, g))
        covered_ids = sorted(ctx["n"]["lock_ids"][pk] for pk in covered)
    return _confirm(request, v, preview, covered_ids, f"{PREFIX}/staff/{staff_id}/revoke",
                    f"{PREFIX}/staff/{staff_id}", active="staff", what="person", ctx=ctx)


@router.post("/staff/{staff_id}/revoke")
def revoke_person(request: Request, staff_id: int, reason: str = Form(""), csrf: str = Form("")):
    return _revoke(request, csrf, "person", f"{PREFIX}/staff/{staff_id}",
                   lambda p: api_people.revoke_staff(staff_id, Reason(reason=reason.strip()), request, p=p))


def _live_phone(request: Request, phone_id: int) -> dict:
    """The phone (as the API shows it), or NotFound / Conflict when it is unknown or revoked already."""
    with state(request).db.tx() as s:
        ph = s.get(Phone, phone_id)
        if ph is None:
            raise NotFound(f"no phone {phone_id}")
        if ph.revoked_at is not None:
            raise Conflict(f"phone {phone_id} was already revoked")
        return api_people.phone_out(ph)


@router.get("/phones/{phone_id}/revoke")
def revoke_phone_confirm(request: Request, phone_id: int):
    v = viewer(request)
    phone = _live_phone(request, phone_id)
    ctx = _person(request, v, phone["staff_id"])
    preview = dry_run(request, lambda s: revoke.revoke_phone(s, phone_id, v.p.staff_id, ""))
    return _confirm(request, v, preview, [], f"{PREFIX}/phones/{phone_id}/revoke",
                    f"{PREFIX}/staff/{phone['staff_id']}", active="staff", what="phone", ctx=ctx, phone=phone)


@router.post("/phones/{phone_id}/revoke")
def revoke_phone(request: Request, phone_id: int, reason: str = Form(""), csrf: str = Form("")):
    return _revoke(request, csrf, "phone", lambda: f"{PREFIX}/staff/{_live_phone(request, phone_id)['staff_id']}",
                   lambda p: api_people.revoke_phone(phone_id, Reason(reason=reason.strip()), request, p=p))


def _confirm(request: Request, v, preview: dict, covered: list[str], action: str, back: str, **page) -> Response:
    """A revocation's confirmation page from its dry run: the locks that get a new deny list, the
    tickets it ends, and the locks the grants covered that need nothing (no live ticket there)."""
    return render(request, "revoke_confirm.html", v, affected=_affected(request, preview["deny_versions"]),
                  tickets=preview["tickets"], covered=[c for c in covered if c not in preview["deny_versions"]],
                  action=action, back=back, **page)


def _revoke(request: Request, csrf: str, what: str, back, do) -> Response:
    """A revocation's POST: CSRF checked first, then ``back`` (a URL, or a function making it, which
    may refuse), then ``do(principal)`` through the API's endpoint function, then the result page."""
    v = viewer(request)
    check_csrf(request, v, csrf)
    back = back() if callable(back) else back
    before = _names_of_locks(request)
    return _revoked(request, v, what, do(v.p), before, back)


def _names_of_locks(request: Request) -> dict[str, int]:
    with state(request).db.tx() as s:
        return dict(s.execute(select(Lock.lock_id, Lock.deny_version)).all())


def _revoked(request, v, what, res, before, back) -> Response:
    rows = _affected(request, res["deny_versions"])
    for r in rows:
        r["old_version"] = before.get(r["lock_id"])
    return render(request, "revoked.html", v, active="staff", what=what, res=res, rows=rows, back=back)


# ---- access: groups and grants ----

@router.get("/access")
def access_page(request: Request, staff_id: str = ""):
    v = viewer(request)
    sid = opt_int(staff_id, "staff_id")
    groups = api_people.list_groups(request, p=v.p)
    grants = api_access.list_grants(request, staff_id=sid, include_revoked=False, p=v.p)
    with state(request).db.tx() as s:
        n = _names(s)
        locks = [lk.lock_id for lk in s.execute(select(Lock).order_by(Lock.lock_id)).unique().scalars()]
    return render(request, "access.html", v, active="access", groups=groups, grants=grants, n=n, locks=locks,
                  staff_id=sid, rights=RIGHTS, days=DAYS)


@router.post("/groups")
def group_create(request: Request, name: str = Form(""), district_id: str = Form(""), csrf: str = Form("")):
    v = viewer(request)
    check_csrf(request, v, csrf)
    api_people.create_group(NamedIn(name=name.strip(), district_id=opt_int(district_id, "district")), request, p=v.p)
    return RedirectResponse(f"{PREFIX}/access#groups", status_code=303)


@router.post("/groups/{group_id}/members")
def member_add(request: Request, group_id: int, staff_id: str = Form(""), csrf: str = Form("")):
    v = viewer(request)
    check_csrf(request, v, csrf)
    api_people.add_member(group_id, MemberIn(staff_id=req_int(staff_id, "person")), request, p=v.p)
    return RedirectResponse(f"{PREFIX}/access#group-{group_id}", status_code=303)


@router.post("/groups/{group_id}/members/{staff_id}/remove")
def member_remove(request: Request, group_id: int, staff_id: int, csrf: str = Form("")):
    v = viewer(request)
    check_csrf(request, v, csrf)
    api_people.remove_member(group_id, staff_id, request, p=v.p)
    return RedirectResponse(f"{PREFIX}/access#group-{group_id}", status_code=303)


@router.post("/grants")
async def grant_create(request: Request):
    # async only to read repeated checkbox fields (rights, days); the work runs in the thread pool
    from starlette.concurrency import run_in_threadpool

    form = await request.form()
    v = await run_in_threadpool(viewer, request)
    check_csrf(request, v, str(form.get("csrf", "")))
    zone = _zone(request)
    who, target = str(form.get("who", "")), str(form.get("target", ""))
    fields: dict = {"reason": str(form.get("reason", "")).strip()}
    if who.startswith("staff:"):
        fields["staff_id"] = req_int(who[6:], "person or group")
    elif who.startswith("group:"):
        fields["group_id"] = req_int(who[6:], "person or group")
    else:
        raise Invalid("choose the person or group the grant is for")
    kind, _, ident = target.partition(":")
    if kind == "lock" and ident:
        fields["lock_id"] = ident
    elif kind in ("home", "district"):
        fields[f"{kind}_id"] = req_int(ident, "door, home or district")
    else:
        raise Invalid("choose the lock, home or district the grant opens")
    rights = 0
    for r in form.getlist("rights"):
        bit = dict(RIGHTS).get(str(r))
        if bit is None:
            raise Invalid(f"unknown right {str(r)[:20]!r}")
        rights |= bit
    if not rights:
        raise Invalid("tick at least one right (unlock, lock, ...)")
    fields["rights"] = rights
    days = 0
    for d in form.getlist("days"):
        if str(d) not in DAYS:
            raise Invalid(f"unknown weekday {str(d)[:10]!r}")
        days |= 1 << DAYS.index(str(d))
    fields["win_days"] = 0 if days == 0x7F else days
    ws, we = opt_hhmm(str(form.get("win_start", "")), "from time"), opt_hhmm(str(form.get("win_end", "")), "to time")
    if (ws is None) != (we is None):
        raise Invalid("give both ends of the daily window, or neither")
    fields["win_start"], fields["win_end"] = (ws or 0), (we or 0)
    vf = opt_local_time(str(form.get("valid_from", "")), "valid from", zone)
    vu = opt_local_time(str(form.get("valid_until", "")), "valid until", zone)
    if vf is not None:
        fields["valid_from"] = vf
    if vu is not None:
        fields["valid_until"] = vu
    body = GrantIn(**fields)
    g = await run_in_threadpool(api_access.create_grant, body, request, p=v.p)
    return RedirectResponse(f"{PREFIX}/access?created={g['id']}#grants", status_code=303)


@router.get("/grants/{grant_id}/revoke")
def grant_revoke_confirm(request: Request, grant_id: int):
    v = viewer(request)
    with state(request).db.tx() as s:
        g = s.get(Grant, grant_id)
        if g is None:
            raise NotFound(f"no grant {grant_id}")
        if g.revoked_at is not None:
            raise Conflict(f"grant {grant_id} was already revoked")
        n = _names(s)
        grant = api_access.grant_out(g, n["lock_ids"])
        covered = sorted(n["lock_ids"][pk] for pk in locks_of_grant(s, g))
    preview = dry_run(request, lambda s: revoke.revoke_grant(s, grant_id, v.p.staff_id, ""))
    return _confirm(request, v, preview, covered, f"{PREFIX}/grants/{grant_id}/revoke", f"{PREFIX}/access#grants",
                    active="access", what="grant", grant=grant, ctx={"n": n})


@router.post("/grants/{grant_id}/revoke")
def grant_revoke(request: Request, grant_id: int, reason: str = Form(""), csrf: str = Form("")):
    return _revoke(request, csrf, "grant", f"{PREFIX}/access#grants",
                   lambda p: api_access.revoke_grant(grant_id, Reason(reason=reason.strip()), request, p=p))


# ---- visits ----

def _visit_filters(request, day, home_id, staff_id, district_id):
    return {"day": opt_day(day) or _today(request), "home_id": opt_int(home_id, "home"),
            "staff_id": opt_int(staff_id, "carer"), "district_id": opt_int(district_id, "district")}


@router.get("/visits")
def visits(request: Request, day: str = "", home_id: str = "", staff_id: str = "", district_id: str = "",
           group_by: str = ""):
    v = viewer(request)
    f = _visit_filters(request, day, home_id, staff_id, district_id)
    if group_by not in ("", "home", "staff", "district", "day"):
        raise Invalid("group by home, staff, district or day")
    st = state(request)
    t0, t1 = _day_span(request, f["day"])
    with st.db.tx() as s:
        n = _names(s)
        vs = reports.visits(s, st.settings, start=t0, end=t1, home_id=f["home_id"], staff_id=f["staff_id"],
                            district_id=f["district_id"])
        plan = reports.plan_vs_actual(s, st.settings, start=t0, end=t1, district_id=f["district_id"])
    plan["planned"] = [r for r in plan["planned"] if (f["home_id"] is None or r["home_id"] == f["home_id"])
                       and (f["staff_id"] is None or r["staff_id"] == f["staff_id"])]
    summary = reports.visits_summary(vs, group_by) if group_by else None

    when = _fmt_time(request)

    def who(sid):
        x = n["staff"].get(sid)
        return (x.full_name or x.username) if x else str(sid)

    def label(x):
        home = n["homes"].get(x.home_id)
        return f"{when(x.start, '%H:%M')} {who(x.staff_id)} @ {home.citizen_ref if home else x.lock_id}"

    dur_chart = charts.hbars([(label(x), None if x.duration_s is None else round(x.duration_s / 60, 1))
                              for x in vs], title="Visit durations", unit="minutes", cls="durations")
    punct = [r for r in plan["planned"] if r["status"] == "done"]
    punct_chart = charts.hbars(
        [(f"{when(r['planned_start'], '%H:%M')} {who(r['staff_id'])} @ {r['citizen_ref']}", r["start_delta_min"])
         for r in punct],
        title="Punctuality: actual start minus planned start", unit="minutes late (negative: early)",
        cls="punctuality", diverging=True)
    query = urlencode({k: val for k, val in f.items() if val is not None})
    return render(request, "visits.html", v, active="visits", f=f, vs=vs, plan=plan, summary=summary,
                  group_by=group_by, n=n, dur_chart=dur_chart, punct_chart=punct_chart, punct=punct, query=query)


@router.get("/visits.csv")
def visits_csv(request: Request, day: str = "", home_id: str = "", staff_id: str = "", district_id: str = ""):
    v = viewer(request)
    f = _visit_filters(request, day, home_id, staff_id, district_id)
    resp = api_reports.visits(request, day=f["day"], home_id=f["home_id"], staff_id=f["staff_id"],
                              district_id=f["district_id"], format="csv", p=v.p)
    resp.headers["Content-Disposition"] = f'attachment; filename="visits-{f["day"]}.csv"'
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp


# ---- batteries ----

@router.get("/battery")
def battery(request: Request, district_id: str = "", days: str = "30"):
    v = viewer(request)
    did = opt_int(district_id, "district")
    horizon = req_int(days or "30", "days", lo=1, hi=365)
    with state(request).db.tx() as s:
        n = _names(s)
        rows = []
        for lk in s.execute(select(Lock).order_by(Lock.lock_id)).unique().scalars():
            home = n["homes"].get(lk.home_id)
            if did is not None and (home is None or home.district_id != did):
                continue
            rows.append({**reports.battery_report(s, lk), "pct": lk.seen_battery_pct, "home": home})
    changes = {}
    for d_id in ([did] if did is not None else sorted(n["districts"])):
        if d_id not in n["districts"]:
            raise NotFound(f"no district {d_id}")
        changes[d_id] = api_reports.battery_changes(request, district_id=d_id, days=horizon, p=v.p)
    rows.sort(key=lambda r: (r["predicted_at"] is None, r["predicted_at"] or 0, r["lock_id"]))
    return render(request, "battery.html", v, active="battery", rows=rows, changes=changes, n=n, district_id=did,
                  days=horizon, t=now())


@router.get("/battery/{lock_id}")
def battery_lock(request: Request, lock_id: str):
    v = viewer(request)
    rep = api_reports.battery(lock_id, request, p=v.p)
    with state(request).db.tx() as s:
        n = _names(s)
    hist = rep["history"]
    pts = [(h["at"], h["mv"]) for h in hist if h["mv"] > 0 and
           (rep["source"] != "journal" or h["source"] == "journal")]
    line = None
    if rep["slope_mv_per_day"] is not None and rep["predicted_at"] is not None and pts:
        # the fitted line through (predicted_at, cutoff) with the forecast's slope, drawn from the window's start
        m = rep["slope_mv_per_day"] / 86400
        t_start = max(pts[0][0], (rep["last_at"] or pts[-1][0]) - 30 * 86400)
        line = ((t_start, rep["cutoff_mv"] + m * (t_start - rep["predicted_at"])),
                (rep["predicted_at"], rep["cutoff_mv"]))
    marker = (rep["predicted_at"], "replace by " + _fmt_time(request)(rep["predicted_at"], "%d %b")) \
        if rep["predicted_at"] else None
    plot = charts.timeplot(pts, title=f"Battery of lock {rep['lock_id']}", unit="mV", cls="battery-trend",
                           zone=_zone(request), line=line, hline=(rep["cutoff_mv"], "motor sag limit" if rep.get("limit", "").startswith("motor")
                                                  else "critical"), marker=marker)
    return render(request, "battery_lock.html", v, active="battery", rep=rep, hist=hist, plot=plot, n=n)


# ---- re-keys and alarm keys, the audit of tickets ----

@router.get("/keys")
def keys(request: Request, staff_id: str = "", lock_id: str = "", since: str = "", action: str = "",
         limit: str = "200"):
    v = viewer(request)
    sid = opt_int(staff_id, "carer")
    lim = req_int(limit or "200", "limit", lo=1, hi=10000)
    since_day = opt_day(since, "since")
    since_t = _day_span(request, since_day)[0] if since_day else None
    lid = lock_id.strip().lower() or None
    tickets = api_access.list_tickets(request, staff_id=sid, lock_id=lid, since=since_t, limit=lim, p=v.p)
    alarms = [g for g in api_access.list_grants(request, staff_id=sid, include_revoked=True, p=v.p)
              if g["kind"] == "alarm" and (since_t is None or g["created_at"] >= since_t)]
    rekeys, log = None, None
    with state(request).db.tx() as s:
        n = _names(s)
        if lid is not None:
            get_lock(s, lid)  # 404 for an unknown lock, 422 for a malformed id
            alarms = [g for g in alarms if g["home_id"] is not None and any(
                lk.home_id == g["home_id"] for lk in s.execute(select(Lock).where(Lock.lock_id == lid)).unique()
                .scalars())]
        if v.is_admin:
            rekeys = []
            for r, lk in s.execute(select(Rekey, Lock).join(Lock, Rekey.lock_pk == Lock.id)
                                   .order_by(Rekey.state != "pending", Rekey.id.desc()).limit(200)).unique().all():
                rekeys.append(describe_rekey(r, lk))
    if v.is_admin:
        log = api_access.audit_log(request, action=action.strip() or None, subject=None, limit=lim, p=v.p)
        if sid is not None:
            log = [a for a in log if a["actor_id"] == sid or a["subject"] == f"staff:{sid}"]
        if since_t is not None:
            log = [a for a in log if a["at"] >= since_t]
    return render(request, "keys.html", v, active="keys", tickets=tickets, alarms=alarms, rekeys=rekeys, log=log,
                  n=n, f={"staff_id": sid, "lock_id": lid or "", "since": since_day or "", "action": action,
                          "limit": lim}, json=json, t=now())


@router.api_route("/{rest:path}", methods=["GET", "POST"])
def not_found(request: Request, rest: str):
    raise NotFound(f"there is no page {PREFIX}/{rest[:80]}")
