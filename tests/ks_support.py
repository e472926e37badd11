"""Key server test support: per-test temporary databases (SQLite and a real PostgreSQL), an in-process
client through the real ASGI stack, a real uvicorn server in a subprocess, and a populated world.

Test modules do ``from ks_support import *`` to get the fixtures. PostgreSQL tests use
127.0.0.1:5432 (trust auth, user postgres), create a fresh database per test and drop
it; they are skipped, saying why, when no server answers there.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from lockproto import LockKeys

ROOT = Path(__file__).resolve().parent.parent
PG_HOST = os.environ.get("KEYSERVER_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432")
ADMIN_PW = "correct horse battery staple"
CARER_PW = "carer password 123"
FAST_ARGON = {"argon2_time_cost": 1, "argon2_memory_kib": 8192, "argon2_parallelism": 1}

_pg_state: dict = {}


def pg_unreachable() -> str | None:
    """None when PostgreSQL answers at 127.0.0.1:5432, else the reason (cached)."""
    if "reason" not in _pg_state:
        try:
            import psycopg

            with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres", connect_timeout=3):
                _pg_state["reason"] = None
        except Exception as e:  # noqa: BLE001 - any failure means: no PostgreSQL to test against
            _pg_state["reason"] = f"no PostgreSQL at 127.0.0.1:5432 (trust auth, user postgres): {e}".strip()
    return _pg_state["reason"]


@contextlib.contextmanager
def temp_database(kind: str, tmp_path: Path):
    """A fresh, empty database URL of ``kind`` (sqlite or postgres); the PostgreSQL one is dropped after."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'keyserver.db'}"
        return
    reason = pg_unreachable()
    if reason:
        pytest.skip(reason)
    import psycopg

    name = "ks_test_" + secrets.token_hex(6)
    with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_HOST}/{name}"
    finally:
        with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request, tmp_path):
    with temp_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def key_file(tmp_path):
    p = tmp_path / "master.key"
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32))
    return p


def make_settings(db_url, key_file, **kw):
    from keyserver.settings import load_settings

    return load_settings(database_url=db_url, master_key_file=key_file, **{**FAST_ARGON, **kw})


class KS:
    """A key server in this process, reached through the real ASGI stack (Starlette's TestClient on httpx)."""

    def __init__(self, settings, client, db):
        self.settings, self.client, self.db = settings, client, db
        self.admin = None

    def h(self, token):
        return {"Authorization": f"Bearer {token}"}

    def call(self, method, path, token=None, expect=None, **kw):
        r = self.client.request(method, path, headers=self.h(token) if token else None, **kw)
        if expect is not None:
            assert r.status_code == expect, (r.status_code, r.text)
        return r

    def login(self, username, password, expect=200):
        r = self.call("POST", "/api/v1/auth/login", json={"username": username, "password": password}, expect=expect)
        return r.json().get("token") if expect == 200 else r


@pytest.fixture
def ks(db_url, key_file):
    from fastapi.testclient import TestClient

    from keyserver.app import create_app
    from keyserver.db import Database

    settings = make_settings(db_url, key_file)
    db = Database(settings.database_url)
    db.migrate()
    # the admin as `keyserver create-admin` makes it (that command itself runs in test_ks_api and test_ks_crash)
    from keyserver import auth

    with db.tx() as s:
        auth.create_staff(s, settings, username="root", role="admin", password=ADMIN_PW)
    app = create_app(settings, database=db)
    with TestClient(app) as client:
        k = KS(settings, client, db)
        k.admin = k.login("root", ADMIN_PW)
        yield k
    db.dispose()


def _argon_env():
    return {"KEYSERVER_" + k.upper(): str(v) for k, v in FAST_ARGON.items()}


# ---- a small world: a district, a home with a lock, a carer with a phone and a grant ----

LOCK_MASTER = bytes(range(32))
LOCK_ID = bytes.fromhex("a1b2c3d4e5f60708")


class World:
    pass


def build_world(k: KS, *, n_locks=1, grant=True, rights=3, lock_master=LOCK_MASTER) -> World:
    w = World()
    a = k.admin
    w.district = k.call("POST", "/api/v1/districts", a, 201, json={"name": "Nord"}).json()["id"]
    w.homes, w.locks, w.keys = [], [], []
    for i in range(n_locks):
        home = k.call("POST", "/api/v1/homes", a, 201, json={"citizen_ref": f"C-{i:04d}", "address": f"Gade {i}",
                                                             "district_id": w.district}).json()["id"]
        lid = (LOCK_ID[:6] + i.to_bytes(2, "big")).hex()
        master = bytes((b + i) % 256 for b in lock_master)
        k.call("POST", "/api/v1/locks", a, 201, json={"lock_id": lid, "key": master.hex(), "home_id": home})
        w.homes.append(home)
        w.locks.append(lid)
        w.keys.append(LockKeys.from_master(master, bytes.fromhex(lid), 1))
    w.masters = [bytes((b + i) % 256 for b in lock_master) for i in range(n_locks)]
    w.carer = k.call("POST", "/api/v1/staff", a, 201, json={"username": "anna", "role": "carer", "full_name": "Anna",
                                                            "password": CARER_PW}).json()["id"]
    sess = k.login("anna", CARER_PW)
    ph = k.call("POST", "/api/v1/phones", sess, 201, json={"label": "Anna's phone"}).json()
    w.phone, w.phone_token = ph["id"], ph["token"]
    if grant:
        w.grant = k.call("POST", "/api/v1/grants", a, 201, json={"staff_id": w.carer, "district_id": w.district,
                                                                 "rights": rights}).json()["id"]
    return w


# ---- a real server process ----

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """``python -m keyserver serve`` in a subprocess (uvicorn), killable with SIGKILL."""

    def __init__(self, db_url: str, key_file: Path, log: Path):
        self.db_url, self.key_file, self.log = db_url, key_file, log
        self.port = free_port()
        self.proc = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self, *args, stdin=None):
        env = {**os.environ, **_argon_env()}
        env.pop("KEYSERVER_MASTER_KEY", None)
        return subprocess.run([sys.executable, "-m", "keyserver", "--database-url", self.db_url,
                               "--master-key-file", str(self.key_file), *args], input=stdin, capture_output=True,
                              text=True, env=env, timeout=120)

    def init(self, admin_pw=ADMIN_PW):
        r = self._run("init")
        assert r.returncode == 0, r.stderr
        r = self._run("create-admin", "root", stdin=admin_pw + "\n")
        assert r.returncode == 0, r.stderr

    def start(self):
        env = {**os.environ, **_argon_env()}
        self._logf = open(self.log, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "keyserver", "--database-url", self.db_url,
                                      "--master-key-file", str(self.key_file), "serve", "--port", str(self.port),
                                      "--log-level", "warning"], stdout=self._logf, stderr=self._logf, env=env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(self.base + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("server did not come up")

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)
        if getattr(self, "_logf", None):
            self._logf.close()

    stop = kill


@contextlib.contextmanager
def running_server(kind: str, tmp_path: Path, key_file: Path):
    """A key server process on a fresh ``kind`` database ("sqlite" or "postgres"), initialised with
    the admin ``root`` (ADMIN_PW) and killed afterwards. Settings come from the environment."""
    with temp_database(kind, tmp_path) as url:
        srv = ServerProcess(url, key_file, tmp_path / "server.log")
        srv.init()
        srv.start()
        try:
            yield srv
        finally:
            srv.kill()


def admin_login(srv: ServerProcess) -> str:
    """A session token of the server's admin ``root``."""
    import httpx
    r = httpx.post(srv.base + "/api/v1/auth/login", json={"username": "root", "password": ADMIN_PW}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["token"]


class Api:
    """A client of a server process: ``api(method, path, token, expect=status, json=...)``."""

    def __init__(self, base):
        import httpx
        self.c = httpx.Client(base_url=base, timeout=30)

    def __call__(self, method, path, token=None, expect=None, **kw):
        r = self.c.request(method, path, headers={"Authorization": f"Bearer {token}"} if token else None, **kw)
        if expect is not None:
            assert r.status_code == expect, (path, r.status_code, r.text)
        return r


__all__ = ["db_url", "key_file", "ks", "KS", "World", "build_world", "ServerProcess", "temp_database",
           "running_server", "admin_login", "Api",
           "make_settings", "ADMIN_PW", "CARER_PW", "LOCK_MASTER", "LOCK_ID", "pg_unreachable", "FAST_ARGON"]


# ---- a lock running the real firmware session under MicroPython (tests/mpy/fwtest.py) ----

class FirmwareLock:
    """The firmware's LockSession over the in-memory lock context, under the real MicroPython.

    The harness runs whole scenarios, so this replays the steps so far plus the new one on
    every call (deterministic: fixed nonces, a clock that moves only by ``advance``).
    """

    def __init__(self, fw, master: bytes, lock_id: bytes, now: int, epoch: int = 1, **cfg):
        self.fw = fw
        self.cfg = {"master": master, "lock_id": lock_id, "now": now, "epoch": epoch, "threshold": 10_000,
                    "nonces": [bytes([i]) * 16 for i in range(1, 60)], **cfg}
        self.steps: list[dict] = []

    def _run(self, steps):
        return self.fw.call("fwtest.scenario", self.cfg, steps)

    def connect(self) -> bytes:
        """A new connection: returns the HELLO."""
        self.steps += ([{"do": "close"}] if self.steps else []) + [{"do": "hello"}]
        return self._run(self.steps)["steps"][-1]["hello"]

    def send(self, msg: bytes) -> bytes:
        self.steps.append({"do": "raw", "msg": msg})
        return self._run(self.steps)["steps"][-1]["resp"]

    def step(self, **step) -> None:
        self.steps.append(step)

    def state(self) -> dict:
        return self._run(self.steps)["state"]


def phone_op(lock: FirmwareLock, ticket: dict, op: int, args: bytes = b"", nonce_p: bytes = b"\x5a" * 16):
    """Connect, AUTH with ``ticket`` (a bundle entry) and ``op``: returns (PhoneSession, raw response)."""
    from lockproto import PhoneSession

    hello = lock.connect()
    ps = PhoneSession(bytes.fromhex(ticket["ticket"]), bytes.fromhex(ticket["k_t"]), hello, nonce_p=nonce_p)
    return ps, lock.send(ps.auth(op, args))


__all__ += ["FirmwareLock", "phone_op"]
