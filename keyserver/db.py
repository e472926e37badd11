"""The one module that owns the database: engine, sessions, transactions, migrations.

Every request runs in one transaction (:meth:`Database.tx`). Concurrency rules that
make revocation and issuing safe on both back ends:

- **SQLite**: every transaction starts with ``BEGIN IMMEDIATE``, so writers are
  serialised by the database file lock (WAL mode, ``synchronous=FULL``: a committed
  transaction survives a killed process and a power cut).
- **PostgreSQL**: READ COMMITTED plus explicit row locks (``SELECT … FOR UPDATE``)
  taken in one global order: staff row, phone row, then lock rows by id
  (see :mod:`keyserver.tickets` and :mod:`keyserver.revoke`). Deadlocks and
  serialisation failures are retried by :meth:`Database.run`.
"""

from __future__ import annotations

import contextlib
import threading
import time
from importlib import resources
from typing import Callable, Iterator, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

T = TypeVar("T")

_RETRY_SQLSTATES = {"40001", "40P01"}  # serialization_failure, deadlock_detected


def _make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        # one connection per worker thread (uvicorn runs sync endpoints on a pool of 40)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=20,
                               max_overflow=30, pool_timeout=60)

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn, _rec):  # pragma: no cover - exercised by every sqlite test
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_size=10, max_overflow=40, pool_timeout=60, pool_pre_ping=True)


class Database:
    """Engine and session factory for one database URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = _make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        # SQLite serialises every transaction (BEGIN IMMEDIATE); inside one process a lock queues the
        # threads instead of letting them poll the database file (busy_timeout still covers other processes)
        self._local = threading.Lock() if self.is_sqlite else contextlib.nullcontext()

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextlib.contextmanager
    def tx(self) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back on any exception."""
        with self._local, self._sessions() as s, s.begin():
            yield s

    def run(self, fn: Callable[[Session], T], attempts: int = 6) -> T:
        """``fn(session)`` in one transaction, retried on a deadlock or serialisation failure."""
        for i in range(attempts):
            try:
                with self.tx() as s:
                    return fn(s)
            except (OperationalError, DBAPIError) as e:
                code = getattr(getattr(e, "orig", None), "sqlstate", None)
                locked = "database is locked" in str(e)
                if i + 1 == attempts or not (code in _RETRY_SQLSTATES or locked):
                    raise
                time.sleep(0.01 * (2 ** i))
        raise AssertionError("unreachable")

    def migrate(self, revision: str = "head") -> None:
        """Bring the schema to ``revision`` with Alembic (run programmatically, no alembic.ini)."""
        from alembic import command

        with self.engine.begin() as conn:
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)

    def dispose(self) -> None:
        self.engine.dispose()


def alembic_config():
    """An Alembic Config pointing at the packaged migrations."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("keyserver") / "migrations"))
    return cfg
