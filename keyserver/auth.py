"""People and machines: argon2id passwords, bearer tokens (sessions, phones, integrations), login limits.

A bearer token is 32 random bytes (URL-safe base64) shown once; the database holds
only its SHA-256. Roles are checked by :func:`keyserver.api.deps.require` on every
endpoint. Failed logins lock the account the way the lock's own rate limiter does
(protocol §7): after ``login_threshold`` failures for ``login_lockout`` seconds, doubling
up to an hour; a per-client-address budget stops spraying across accounts.
"""

from __future__ import annotations

import collections
import hashlib
import secrets
import threading
from dataclasses import dataclass

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select
from sqlalchemy.orm import Session

from .errors import Invalid, TooManyRequests, Unauthorized
from .keystore import audit, now
from .models import ROLES, Phone, Staff, Token
from .settings import Settings

MIN_PASSWORD = 12


def hasher(settings: Settings) -> PasswordHasher:
    return PasswordHasher(time_cost=settings.argon2_time_cost, memory_cost=settings.argon2_memory_kib,
                          parallelism=settings.argon2_parallelism, type=Type.ID)


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise Invalid(f"a password has at least {MIN_PASSWORD} characters")


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(s: Session, kind: str, staff_id: int, *, phone_id: int | None = None,
              lifetime: int | None = None) -> str:
    """Create a bearer token; only its digest is stored. Returns the token (shown once)."""
    token = secrets.token_urlsafe(32)
    t = now()
    s.add(Token(digest=digest(token), kind=kind, staff_id=staff_id, phone_id=phone_id, created_at=t,
                expires_at=t + lifetime if lifetime else None))
    return token


@dataclass(frozen=True)
class Principal:
    """Who is calling: the staff member, the role, the kind of token and (for phones) the phone."""

    staff_id: int
    role: str
    kind: str
    token_id: int
    phone_id: int | None = None


def authenticate(s: Session, token: str) -> Principal:
    """The principal behind a bearer token; Unauthorized when unknown, expired or revoked."""
    row = s.execute(select(Token).where(Token.digest == digest(token))).scalar_one_or_none()
    t = now()
    if row is None or row.revoked_at is not None or (row.expires_at is not None and row.expires_at <= t):
        raise Unauthorized("unknown, expired or revoked token")
    staff = s.get(Staff, row.staff_id)
    if staff is None or not staff.active:
        raise Unauthorized("this account is disabled")
    if row.phone_id is not None:
        phone = s.get(Phone, row.phone_id)
        if phone is None or phone.revoked_at is not None:
            raise Unauthorized("this phone has been revoked")
    return Principal(staff.id, staff.role, row.kind, row.id, row.phone_id)


class AddressLimiter:
    """At most ``per_minute`` login attempts per client address (in memory, per server process)."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._hits: dict[str, collections.deque] = {}
        self._lock = threading.Lock()

    def hit(self, addr: str, t: float) -> None:
        with self._lock:
            q = self._hits.setdefault(addr, collections.deque())
            while q and q[0] <= t - 60:
                q.popleft()
            if len(q) >= self.per_minute:
                raise TooManyRequests("too many login attempts from this address", int(q[0] + 60 - t) + 1)
            q.append(t)


def login(s: Session, settings: Settings, username: str, password: str) -> tuple[str, Staff] | None:
    """Check a password and open a session; None for a wrong password (the failure counter, in the
    account's row, is then updated in this transaction, which the caller commits before answering 401)."""
    t = now()
    staff = s.execute(select(Staff).where(Staff.username == username).with_for_update()).scalar_one_or_none()
    ph = hasher(settings)
    if staff is None or staff.password_hash is None:
        # spend the same time as a real check, so the answer does not reveal who exists
        try:
            ph.verify(_DUMMY.get(settings), password)
        except VerificationError:
            pass
        raise Unauthorized("wrong user name or password")
    if staff.locked_until > t:
        raise TooManyRequests("too many failed logins; this account is locked for a while", staff.locked_until - t)
    try:
        ph.verify(staff.password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        staff.failed_logins += 1
        if staff.failed_logins >= settings.login_threshold:
            staff.locked_until = t + min(3600, settings.login_lockout * 2 ** staff.lockouts)
            staff.lockouts += 1
            staff.failed_logins = 0
            audit(s, "login.lockout", f"staff:{staff.id}", at=t, until=staff.locked_until)
        return None  # the caller commits the counter, then answers 401
    if not staff.active:
        raise Unauthorized("this account is disabled")
    staff.failed_logins = 0
    staff.lockouts = 0
    if ph.check_needs_rehash(staff.password_hash):
        staff.password_hash = ph.hash(password)
    token = new_token(s, "session", staff.id, lifetime=settings.session_lifetime)
    audit(s, "login", f"staff:{staff.id}", actor_id=staff.id, at=t)
    return token, staff


class _Dummy:
    def __init__(self) -> None:
        self._h: dict[tuple, str] = {}

    def get(self, settings: Settings) -> str:
        key = (settings.argon2_time_cost, settings.argon2_memory_kib, settings.argon2_parallelism)
        if key not in self._h:
            self._h[key] = hasher(settings).hash(secrets.token_hex(16))
        return self._h[key]


_DUMMY = _Dummy()


def create_staff(s: Session, settings: Settings, *, username: str, role: str, full_name: str = "",
                 password: str | None = None, district_id: int | None = None,
                 external_ref: str | None = None) -> Staff:
    if role not in ROLES:
        raise Invalid(f"role must be one of {', '.join(ROLES)}")
    if not username or len(username) > 120:
        raise Invalid("a user name is 1 to 120 characters")
    if s.execute(select(Staff.id).where(Staff.username == username)).first():
        from .errors import Conflict
        raise Conflict(f"user name {username!r} is taken")
    pw_hash = None
    if password is not None:
        check_password_rules(password)
        pw_hash = hasher(settings).hash(password)
    staff = Staff(username=username, role=role, full_name=full_name, password_hash=pw_hash,
                  district_id=district_id, external_ref=external_ref, created_at=now(), active=True,
                  failed_logins=0, lockouts=0, locked_until=0)
    s.add(staff)
    s.flush()
    if staff.id > 0xFFFFFFFF:
        raise Invalid("staff ids are u32 on the wire")
    return staff
