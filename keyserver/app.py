"""The application factory: ``create_app(settings)`` wires settings, database, vault and routers.

Errors are mapped in one place (:func:`install_error_handlers`): every failure a client
can cause is a JSON ``{"error": reason, "detail": message}`` with a 4xx status; anything
else is a 500 with no internals (logged server-side without request bodies, which may
carry keys).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from lockproto import ProtocolError

from .auth import AddressLimiter
from .db import Database
from .errors import ERROR_RESPONSES, ApiError, TooManyRequests
from .settings import Settings, load_settings
from .vault import Vault, VaultError

log = logging.getLogger("keyserver")


def _json(status: int, reason: str, detail: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": reason, "detail": detail}, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api(request: Request, exc: ApiError):
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, TooManyRequests) else None
        return _json(exc.status, exc.reason, exc.message, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        parts = []
        for e in exc.errors():
            loc = ".".join(str(x) for x in e.get("loc", ()) if x != "body")
            parts.append(f"{loc}: {e.get('msg')}" if loc else str(e.get("msg")))
        return _json(422, "invalid", "; ".join(parts) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        reason = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _json(exc.status_code, reason, str(exc.detail))

    @app.exception_handler(ProtocolError)
    async def _proto(request: Request, exc: ProtocolError):
        return _json(422, "protocol", f"{exc.code.name}: {exc.code.describe()}")

    @app.exception_handler(OverflowError)
    @app.exception_handler(DataError)
    async def _range(request: Request, exc: Exception):
        # an id or number beyond the database's integer range (SQLite: OverflowError at bind
        # time; PostgreSQL: NumericValueOutOfRange as a DataError): the client's mistake
        return _json(422, "invalid", "a number in the request is out of range")

    @app.exception_handler(VaultError)
    async def _vault(request: Request, exc: VaultError):
        log.error("vault: %s", exc)
        return _json(500, "vault", "a stored key does not open under the configured master key")

    @app.exception_handler(Exception)
    async def _other(request: Request, exc: Exception):
        # the type and first line only: a request body (which may carry a lock key) is never logged
        log.error("unhandled %s on %s %s: %s", type(exc).__name__, request.method, request.url.path,
                  str(exc).splitlines()[0][:200] if str(exc) else "")
        return _json(500, "internal", "internal error; nothing was changed")


def create_app(settings: Settings | None = None, *, database: Database | None = None) -> FastAPI:
    """Build the HTTP application. The database must have been initialised (``keyserver init``)."""
    settings = settings or load_settings()
    db = database or Database(settings.database_url)
    vault = Vault(settings.load_master_key())
    from .keystore import now, use_clock

    clock = use_clock(settings.clock_file)  # real time unless a test bench set KEYSERVER_CLOCK_FILE
    if clock is not None:
        import time

        log.warning("SIMULATED CLOCK: the server's time is read from %s (now %d, real time %d); "
                    "for test benches only, never in production", clock.path, clock.read(), int(time.time()))
    app = FastAPI(title="openlock key server", version="1",
                  description="Access, tickets, revocation, re-keying, journals and reports for the municipality's "
                              "door locks. See docs/keyserver.md.")
    from .api import access, people, phone, reports
    from .api.deps import State

    app.state.ks = State(settings=settings, db=db, vault=vault, limiter=AddressLimiter(settings.login_per_minute))
    install_error_handlers(app)
    for r in (people.router, access.router, phone.router, reports.router):
        app.include_router(r, responses=ERROR_RESPONSES)
    from .web import router as web_router  # the web UI for IT and planners, under /ui (docs/webui.md)

    app.include_router(web_router)

    @app.get("/healthz", tags=["ops"], summary="Liveness, database reachability and which clock the server runs on")
    def healthz():
        from sqlalchemy import text

        with db.tx() as s:
            s.execute(text("SELECT 1"))
        if clock is None:
            return {"ok": True, "clock": "real"}
        # a test bench's simulated clock: said loudly, so no one runs production on it by accident
        return {"ok": True, "clock": "simulated", "clock_file": str(clock.path), "now": now()}

    return app
