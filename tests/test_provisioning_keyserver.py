"""lockctl against a real key server process (SQLite): provision registers the lock, tickets come
from the phone bundle, the journal goes to the server, and the factory reset needs the server's
consent (audited). The unit is the whole simulated door unit on a pty (tests/mpy/unitpty.py)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

import mpyhost
from ks_support import ADMIN_PW, CARER_PW, ServerProcess
from ptyunit import on_pty

pytestmark = pytest.mark.mpy
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def bench(tmp_path):
    server = ServerProcess(f"sqlite:///{tmp_path / 'ks.db'}", tmp_path / "master.key", tmp_path / "server.log")
    server.init()
    server.start()
    cmd = [mpyhost.micropython_binary(), "-X", "heapsize=2m", str(ROOT / "tests/mpy/unitpty.py"), str(ROOT / "boards")]
    try:
        with on_pty(cmd, env=mpyhost._env([ROOT / "tests" / "mpy"])) as (path, _):
            yield server, path, tmp_path
    finally:
        server.kill()


def test_provision_work_and_factory_reset_through_the_key_server(bench):
    server, port, tmp = bench
    api = httpx.Client(base_url=server.base + "/api/v1", timeout=30)

    def call(method, path, token, **kw):
        r = api.request(method, path, headers={"Authorization": f"Bearer {token}"}, **kw)
        assert r.status_code < 300, (path, r.text)
        return r.json()

    admin = api.post("/auth/login", json={"username": "root", "password": ADMIN_PW}).json()["token"]
    district = call("POST", "/districts", admin, json={"name": "Syd"})["id"]
    home = call("POST", "/homes", admin, json={"citizen_ref": "C-1", "address": "Vej 1", "district_id": district})["id"]
    me = call("GET", "/auth/me", admin)["id"]
    call("POST", "/grants", admin, json={"staff_id": me, "district_id": district, "rights": 15})
    (tmp / "admin").write_text(admin)
    (tmp / "it").write_text(call("POST", "/phones", admin, json={"label": "bench"})["token"])
    carer = call("POST", "/staff", admin, json={"username": "bo", "role": "carer", "password": CARER_PW})["id"]
    call("POST", "/grants", admin, json={"staff_id": carer, "district_id": district, "rights": 3})
    sess = api.post("/auth/login", json={"username": "bo", "password": CARER_PW}).json()["token"]
    (tmp / "bo").write_text(call("POST", "/phones", sess, json={"label": "bo"})["token"])

    def lockctl(*args, token="it", admin_file=True):
        cmd = [sys.executable, "-m", "provisioning", "--port", port, "--keyserver", server.base,
               "--token-file", str(tmp / token)] + (["--admin-token-file", str(tmp / "admin")] if admin_file else [])
        return subprocess.run(cmd + list(map(str, args)), capture_output=True, text=True, timeout=60, cwd=ROOT)

    r = lockctl("provision", "Vej 1", "--board", "sim", "--home", home)
    assert r.returncode == 0, r.stderr
    lock_id = r.stdout.split("lock ")[1].split(",")[0]
    assert [lk["lock_id"] for lk in call("GET", "/locks", admin)] == [lock_id]
    for verb, token in (("unlock", "bo"), ("status", "it"), ("journal", "it"), ("time-sync", "bo")):
        r = lockctl(verb, token=token)
        assert r.returncode == 0, (verb, r.stderr)
    # the carer's phone has no ADMIN ticket, and without an admin token no consent is given
    r = lockctl("factory-reset", token="bo")
    assert r.returncode == 1 and r.stderr.startswith("lockctl: ") and "ADMIN" not in r.stdout
    r = lockctl("factory-reset", admin_file=False)
    assert r.returncode == 1 and "admin session token" in r.stderr
    assert "factory" not in lockctl("hello").stdout
    r = lockctl("factory-reset")
    assert r.returncode == 0, r.stderr
    time.sleep(1.0)
    assert "factory" in lockctl("hello").stdout
    actions = [e["action"] for e in call("GET", "/audit", admin)]
    assert "lock.factory_reset" in actions and "lock.register" in actions
