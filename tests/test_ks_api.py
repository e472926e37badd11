"""Key server platform: migrations, settings, keys at rest, authentication, roles, bad input.

Every test runs through the real ASGI stack against a real SQLite file and a real
PostgreSQL database (see ks_support).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlalchemy import text

from ks_support import *  # noqa: F401,F403
from ks_support import ADMIN_PW, CARER_PW, build_world, make_settings


def test_migrations_match_the_models(ks):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from keyserver.models import Base

    with ks.db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == []
    # and init is idempotent (a second upgrade is a no-op)
    ks.db.migrate()


def test_no_default_credentials(db_url, key_file):
    from fastapi.testclient import TestClient

    from keyserver.app import create_app
    from keyserver.db import Database

    db = Database(db_url)
    db.migrate()
    with db.tx() as s:
        assert s.execute(text("SELECT count(*) FROM staff")).scalar_one() == 0
    with TestClient(create_app(make_settings(db_url, key_file), database=db)) as c:
        for user, pw in (("admin", "admin"), ("root", ""), ("admin", "password")):
            r = c.post("/api/v1/auth/login", json={"username": user, "password": pw or "x"})
            assert r.status_code == 401 and r.json()["error"] == "unauthorized"
    db.dispose()


def test_lock_keys_are_encrypted_at_rest_and_never_returned(ks):
    w = build_world(ks)
    master = w.masters[0]
    with ks.db.tx() as s:
        blobs = [bytes(b) for (b,) in s.execute(text("SELECT sealed_master FROM lock_keys"))]
        dump = []
        for table in ("locks", "lock_keys", "tickets", "audit_log"):
            for row in s.execute(text(f"SELECT * FROM {table}")):
                dump.extend(row)
    assert len(blobs) == 1 and master not in blobs[0] and len(blobs[0]) == 12 + 32 + 16
    flat = b"".join(v if isinstance(v, bytes) else str(v).encode() for v in dump)
    for needle in (master, master.hex().encode(), w.keys[0].tk, w.keys[0].tk.hex().encode()):
        assert needle not in flat
    if ks.db.is_sqlite:
        raw = open(ks.db.url.split("///", 1)[1], "rb").read()
        assert master not in raw and master.hex().encode() not in raw
    body = ks.call("GET", f"/api/v1/locks/{w.locks[0]}", ks.admin, 200).text
    assert master.hex() not in body and "key" not in body.lower().replace("keys", "")
    spec = ks.call("GET", "/openapi.json").text
    assert master.hex() not in spec


def test_wrong_master_key_is_refused_by_init(db_url, key_file, tmp_path):
    from keyserver.cli import main

    assert main(["--database-url", db_url, "--master-key-file", str(key_file), "init"]) == 0
    env_key = os.environ.pop("KEYSERVER_MASTER_KEY", None)
    try:
        from fastapi.testclient import TestClient

        from keyserver.app import create_app
        from keyserver.db import Database

        db = Database(db_url)
        with TestClient(create_app(make_settings(db_url, key_file), database=db)) as c:
            pass
        from keyserver.api.access import register_lock
        from keyserver.api.schemas import LockIn
        from keyserver.settings import load_settings
        from keyserver.vault import Vault

        with db.tx() as s:
            register_lock(s, Vault(load_settings(database_url=db_url, master_key_file=key_file).load_master_key()),
                          LockIn(lock_id="00" * 8, key="11" * 32), None)
        db.dispose()
        other = tmp_path / "other.key"
        other.write_text("22" * 32)
        other.chmod(0o600)
        r = subprocess.run([sys.executable, "-m", "keyserver", "--database-url", db_url, "--master-key-file",
                            str(other), "init"], capture_output=True, text=True, timeout=60)
        assert r.returncode == 1
        assert r.stderr.startswith("keyserver: ") and "does not open" in r.stderr
    finally:
        if env_key is not None:
            os.environ["KEYSERVER_MASTER_KEY"] = env_key
        del c, main


@pytest.mark.parametrize("kw,needle", [
    ({}, "KEYSERVER_DATABASE_URL"),
    ({"database_url": "mysql://x"}, "only sqlite"),
    ({"database_url": "sqlite:///x.db"}, "exactly one of"),
    ({"database_url": "sqlite:///x.db", "master_key": "00" * 32, "ticket_lifetime": 86400}, "TICKET_LIFETIME"),
    ({"database_url": "sqlite:///x.db", "master_key": "00" * 32, "timezone": "Mars/Olympus"}, "unknown time zone"),
])
def test_settings_fail_loudly(monkeypatch, kw, needle):
    from keyserver.settings import ConfigError, load_settings

    for k in list(os.environ):
        if k.startswith("KEYSERVER_"):
            monkeypatch.delenv(k)
    with pytest.raises(ConfigError, match=needle):
        load_settings(**kw)


def test_master_key_file_rules(tmp_path):
    from keyserver.settings import ConfigError, load_settings

    p = tmp_path / "k"
    p.write_text("00" * 32)
    p.chmod(0o644)
    s = load_settings(database_url="sqlite:///x.db", master_key_file=p)
    with pytest.raises(ConfigError, match="readable by others"):
        s.load_master_key()
    p.chmod(0o600)
    assert s.load_master_key() == bytes(32)
    p.write_text("abc")
    with pytest.raises(ConfigError, match="32 bytes"):
        s.load_master_key()
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(database_url="sqlite:///x.db", master_key_file=tmp_path / "missing").load_master_key()


def test_cli_errors_are_one_line_and_exit_1(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYSERVER_")}
    r = subprocess.run([sys.executable, "-m", "keyserver", "serve"], capture_output=True, text=True, env=env,
                       timeout=60)
    assert r.returncode == 1 and r.stderr.startswith("keyserver: ") and "DATABASE_URL" in r.stderr
    r = subprocess.run([sys.executable, "-m", "keyserver", "--database-url", f"sqlite:///{tmp_path}/a.db",
                        "--master-key-file", str(tmp_path / "mk"), "serve"], capture_output=True, text=True,
                       env=env, timeout=60)
    assert r.returncode == 1 and "cannot read master key file" in r.stderr


def test_create_admin_rejects_short_password(db_url, key_file):
    from keyserver.cli import main

    assert main(["--database-url", db_url, "--master-key-file", str(key_file), "init"]) == 0
    r = subprocess.run([sys.executable, "-m", "keyserver", "--database-url", db_url, "--master-key-file",
                        str(key_file), "create-admin", "boss"], input="short\n", capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 1 and "at least 12 characters" in r.stderr


def test_password_hashes_are_argon2id(ks):
    with ks.db.tx() as s:
        h = s.execute(text("SELECT password_hash FROM staff WHERE username = 'root'")).scalar_one()
    assert h.startswith("$argon2id$") and ADMIN_PW not in h


def test_login_rate_limiting_locks_the_account(ks):
    build_world(ks)
    for _ in range(ks.settings.login_threshold - 1):
        assert ks.login("anna", "wrong password!", expect=401).json()["error"] == "unauthorized"
    r = ks.login("anna", "wrong password!", expect=401)
    # locked now: even the right password is refused, with Retry-After
    r = ks.login("anna", CARER_PW, expect=429)
    assert int(r.headers["Retry-After"]) >= 1 and r.json()["error"] == "too_many_requests"
    audit = ks.call("GET", "/api/v1/audit?action=login", ks.admin, 200).json()
    assert any(a["action"] == "login.lockout" for a in audit)


def test_sessions_end_at_logout(ks):
    tok = ks.login("root", ADMIN_PW)
    ks.call("GET", "/api/v1/auth/me", tok, 200)
    ks.call("POST", "/api/v1/auth/logout", tok, 200)
    assert ks.call("GET", "/api/v1/auth/me", tok, 401).json()["error"] == "unauthorized"


def _endpoints(ks):
    spec = ks.call("GET", "/openapi.json", expect=200).json()
    for path, ops in spec["paths"].items():
        for method in ops:
            yield method.upper(), path.replace("{", "").replace("}", "").replace("lock_id", "a1b2c3d4e5f60700")


def test_every_endpoint_checks_authentication_and_role(ks):
    w = build_world(ks)
    carer_session = ks.login("anna", CARER_PW)
    admin_only = {"/api/v1/districts", "/api/v1/staff", "/api/v1/locks", "/api/v1/audit"}
    n = 0
    for method, path in _endpoints(ks):
        if path in ("/api/v1/auth/login", "/healthz"):
            continue
        path = path.replace("staff_id", str(w.carer)).replace("phone_id", str(w.phone)).replace(
            "group_id", "1").replace("grant_id", str(w.grant)).replace("ticket_id", "1")
        r = ks.call(method, path, json={})
        assert r.status_code == 401, (method, path, r.text)
        r = ks.call(method, path, "not-a-token", json={})
        assert r.status_code == 401, (method, path)
        n += 1
        if path == "/api/v1/auth/me":
            assert ks.call(method, path, w.phone_token).json()["token_kind"] == "phone"
        elif not path.startswith("/api/v1/phone/"):
            # a phone token only opens the phone API
            assert ks.call(method, path, w.phone_token, json={}).status_code in (403,), (method, path)
        else:
            # and sessions do not open it
            assert ks.call(method, path, ks.admin, json={}).status_code == 403, (method, path)
        if method != "GET" and path in admin_only:
            assert ks.call(method, path, carer_session, json={}).status_code == 403, (method, path)
    assert n >= 30


@pytest.mark.parametrize("method,path,body,status,needle", [
    ("POST", "/api/v1/locks", {"lock_id": "zz", "key": "00" * 32}, 422, "lock_id"),
    ("POST", "/api/v1/locks", {"lock_id": "00" * 8, "key": "00" * 31}, 422, "32 bytes"),
    ("POST", "/api/v1/locks", {"lock_id": "00" * 8, "key": "00" * 32, "extra": 1}, 422, "extra"),
    ("POST", "/api/v1/locks", {"lock_id": "00" * 8, "key": "00" * 32, "home_id": 999}, 404, "no home"),
    ("POST", "/api/v1/grants", {"staff_id": 1, "rights": 3}, 422, "exactly one of lock_id"),
    ("POST", "/api/v1/grants", {"staff_id": 1, "district_id": 1, "rights": 16}, 422, "rights"),
    ("POST", "/api/v1/grants", {"staff_id": 1, "district_id": 1, "win_start": 60, "win_end": 120}, 422, "weekdays"),
    ("POST", "/api/v1/homes", {"citizen_ref": "x", "district_id": 42}, 404, "no district"),
    ("GET", "/api/v1/locks/nothex", None, 422, "16 hex digits"),
    ("GET", "/api/v1/locks/0000000000000000", None, 404, "no lock"),
    ("GET", "/api/v1/reports/visits", None, 422, "day=YYYY-MM-DD"),
    ("GET", "/api/v1/reports/visits?day=2026-13-01", None, 422, "YYYY-MM-DD"),
    ("POST", "/api/v1/staff", {"username": "x", "role": "king"}, 422, "role"),
    ("GET", "/api/v1/nowhere", None, 404, "Not Found"),
])
def test_malformed_requests_get_a_4xx_with_a_reason(ks, method, path, body, status, needle):
    r = ks.call(method, path, ks.admin, json=body)
    assert r.status_code == status, r.text
    j = r.json()
    assert set(j) == {"error", "detail"} and needle in j["detail"]


def test_not_json_is_a_422(ks):
    r = ks.client.post("/api/v1/districts", content=b"{not json", headers={**ks.h(ks.admin),
                                                                            "Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["error"] == "invalid"


def test_openapi_documents_the_phone_api(ks):
    spec = ks.call("GET", "/openapi.json", expect=200).json()
    for p in ("/api/v1/phone/bundle", "/api/v1/phone/journal", "/api/v1/phone/time-token",
              "/api/v1/phone/rekey-proof", "/api/v1/phone/hello", "/api/v1/integration/alarm-keys"):
        assert p in spec["paths"]
    assert "HTTPBearer" in spec["components"]["securitySchemes"]
