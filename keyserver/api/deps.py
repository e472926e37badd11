"""Dependencies shared by the routers: the server state, the caller, role checks."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..auth import AddressLimiter, Principal, authenticate
from ..db import Database
from ..errors import Forbidden, Unauthorized
from ..settings import Settings
from ..vault import Vault

_bearer = HTTPBearer(auto_error=False, description="a session, phone or integration token")

ALL = ("admin", "planner", "carer", "integration")
STAFF = ("admin", "planner")


@dataclass
class State:
    settings: Settings
    db: Database
    vault: Vault
    limiter: AddressLimiter


def state(request: Request) -> State:
    return request.app.state.ks


def require(*roles: str, kinds: tuple[str, ...] = ("session",)):
    """A dependency giving the :class:`Principal`; 401 without a valid token, 403 for the wrong role or kind."""

    def dep(request: Request, cred: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> Principal:
        if cred is None or cred.scheme.lower() != "bearer" or not cred.credentials:
            raise Unauthorized("this endpoint needs 'Authorization: Bearer <token>'")
        st = state(request)
        with st.db.tx() as s:
            p = authenticate(s, cred.credentials)
        if p.kind not in kinds:
            raise Forbidden(f"this endpoint takes a {' or '.join(kinds)} token, not a {p.kind} token")
        if p.role not in roles:
            raise Forbidden(f"the {p.role} role may not do this")
        return p

    return Depends(dep)


def phone_principal():
    return require("carer", "admin", "planner", kinds=("phone",))
