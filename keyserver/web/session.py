"""Sign-in for people in a browser: the API's password check and session tokens, carried in a cookie.

- The session is the API's own: :func:`keyserver.auth.login` checks the argon2id hash,
  counts failures and opens a ``session`` token; :func:`keyserver.auth.authenticate`
  checks it on every request (expired, revoked, disabled account: signed out). The
  cookie carries that token: ``HttpOnly``, ``SameSite=Strict``, ``Path=/ui``, and
  ``Secure`` whenever the page was served over https (directly or behind a proxy that
  uvicorn trusts for ``X-Forwarded-Proto``).
- CSRF: every form POST carries a hidden ``csrf`` field, HMAC-SHA256 of a fixed label
  under the session token (one per session, nothing stored), compared in constant time.
  The sign-in form, before there is a session, uses a double-submit token: a random
  value in a short-lived ``SameSite=Strict`` cookie and in the form, compared in
  constant time.
- Roles: the web UI is for ``admin`` and ``planner`` (the API's ``STAFF``); each page
  and action checks the same roles as the API endpoint it stands for.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import Response

from ..api.deps import STAFF, state
from ..auth import Principal, authenticate
from ..errors import ApiError, Forbidden, Unauthorized

COOKIE = "ks_session"
LOGIN_COOKIE = "ks_login_csrf"
PREFIX = "/ui"
_CSRF_LABEL = b"openlock web ui csrf v1"


class SignInRequired(Exception):
    """A page asked for without a (valid) session: the browser is sent to the sign-in page."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


def csrf_for(session_token: str) -> str:
    return hmac.new(session_token.encode(), _CSRF_LABEL, hashlib.sha256).hexdigest()


def is_https(request: Request) -> bool:
    return request.url.scheme == "https"


def set_session_cookie(request: Request, response: Response, token: str, max_age: int) -> None:
    response.set_cookie(COOKIE, token, max_age=max_age, path=PREFIX, httponly=True, samesite="strict",
                        secure=is_https(request))


def clear_session_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(COOKIE, path=PREFIX, httponly=True, samesite="strict", secure=is_https(request))


def set_login_csrf(request: Request, response: Response, value: str) -> None:
    """The sign-in form's double-submit token, before there is a session (30 minutes)."""
    response.set_cookie(LOGIN_COOKIE, value, max_age=1800, path=PREFIX, httponly=True, samesite="strict",
                        secure=is_https(request))


def check_login_csrf(request: Request, sent: str) -> None:
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not sent or not hmac.compare_digest(expected.encode(), sent.encode()):
        raise Forbidden("the sign-in form has expired or did not come from this site; reload it and try again",
                        reason="csrf")


class Viewer:
    """The signed-in person: the API's :class:`Principal`, their name, and this session's CSRF token."""

    def __init__(self, p: Principal, username: str, full_name: str, csrf: str) -> None:
        self.p, self.username, self.full_name, self.csrf = p, username, full_name, csrf

    @property
    def role(self) -> str:
        return self.p.role

    @property
    def is_admin(self) -> bool:
        return self.p.role == "admin"


def current(request: Request) -> Viewer | None:
    """The viewer behind the session cookie, or None when there is none or it is no longer valid."""
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    from ..models import Staff

    st = state(request)
    try:
        with st.db.tx() as s:
            p = authenticate(s, token)
            staff = s.get(Staff, p.staff_id)
            name, full = staff.username, staff.full_name
    except Unauthorized:
        return None
    if p.kind != "session":
        return None
    return Viewer(p, name, full, csrf_for(token))


def viewer(request: Request, roles: tuple[str, ...] = STAFF) -> Viewer:
    """The signed-in viewer with one of ``roles``: a GET without a session goes to the sign-in page,
    a POST without one is 401; the wrong role is 403."""
    v = current(request)
    if v is None:
        if request.method == "GET":
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise SignInRequired(f"{PREFIX}/login?next={quote(target, safe='')}")
        raise Unauthorized("you are not signed in (or the session ended); sign in again")
    if v.role not in roles:
        who = "admins" if roles == ("admin",) else " and ".join(f"{r}s" for r in roles)
        raise Forbidden(f"this page is for {who}; you are signed in as a {v.role}")
    return v


def check_csrf(request: Request, v: Viewer, sent: str) -> None:
    """Refuse a form POST whose ``csrf`` field is not this session's token (constant-time compare)."""
    if not sent or not hmac.compare_digest(v.csrf.encode(), sent.encode()):
        raise Forbidden("the form did not carry this session's CSRF token; reload the page and try again",
                        reason="csrf")


def safe_next(url: str | None) -> str:
    """Only a path inside the web UI is a place to go after sign-in (no open redirect)."""
    if url and url.startswith(PREFIX + "/") and not url.startswith("//") and "\\" not in url and "://" not in url:
        return url
    return PREFIX + "/"


__all__ = ["ApiError", "COOKIE", "SignInRequired", "Viewer", "check_csrf", "check_login_csrf", "current",
           "csrf_for", "set_login_csrf", "safe_next", "set_session_cookie", "clear_session_cookie", "viewer"]
