"""The test-bench clock (``KEYSERVER_CLOCK_FILE``): a real key server process whose time is the
simulated time in a file, so that its tickets, deny-list expiries and time tokens fit locks
whose clocks run ahead of real time.

- bundles' ``issued_at``, ``start`` and the tickets' ``not_before``/``not_after`` follow the file;
  the "7 days ahead / 5 minutes ago" bounds of a shift are measured on the simulated clock;
- writing a later time moves the server's time; an earlier one is ignored (time never goes back);
- deny entries expire on the simulated clock: moving the file past a revoked ticket's end drops
  its entry from the deny list (checked against the list recomputed from the lock's key);
- time tokens carry the simulated time;
- a missing or unparsable file stops ``serve`` with a message, and at request time answers 503
  ``clock_unavailable`` (never real time); GET /healthz says the clock is simulated;
- unset (the default) the server runs on real time and says so.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from lockproto import LockKeys, deny_list

from ks_support import *  # noqa: F401,F403
from ks_support import ADMIN_PW, CARER_PW, Api, ServerProcess, _argon_env, running_server

DAY = 86400


def set_clock(path: Path, t) -> None:
    """Write the simulated time the way a bench should: a temporary file renamed over the clock file."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(f"{t}\n")
    os.replace(tmp, path)


@pytest.fixture
def clock(tmp_path, monkeypatch):
    path = tmp_path / "sim-clock"
    t0 = int(time.time()) + 30 * DAY  # a simulated day a month ahead of real time
    set_clock(path, t0)
    monkeypatch.setenv("KEYSERVER_CLOCK_FILE", str(path))
    return path, t0


@pytest.fixture
def server(tmp_path, key_file, clock):
    with running_server("sqlite", tmp_path, key_file) as srv:
        yield srv


def world(api):
    """A district with one lock and two carers (a phone each, a district grant each)."""
    admin = api("POST", "/api/v1/auth/login", json={"username": "root", "password": ADMIN_PW}, expect=200).json()["token"]
    d = api("POST", "/api/v1/districts", admin, 201, json={"name": "Vest"}).json()["id"]
    h = api("POST", "/api/v1/homes", admin, 201, json={"citizen_ref": "C-1", "district_id": d}).json()["id"]
    master, lid = bytes([7]) * 32, "00000000c10c0001"
    api("POST", "/api/v1/locks", admin, 201, json={"lock_id": lid, "key": master.hex(), "home_id": h})
    phones = {}
    for name in ("anna", "bo"):
        sid = api("POST", "/api/v1/staff", admin, 201, json={"username": name, "role": "carer",
                                                             "password": CARER_PW}).json()["id"]
        sess = api("POST", "/api/v1/auth/login", json={"username": name, "password": CARER_PW}, expect=200).json()["token"]
        ph = api("POST", "/api/v1/phones", sess, 201, json={"label": name}).json()
        api("POST", "/api/v1/grants", admin, 201, json={"staff_id": sid, "district_id": d, "rights": 3})
        phones[name] = ph
    return admin, lid, LockKeys.from_master(master, bytes.fromhex(lid), 1), phones


def test_bundles_and_time_tokens_follow_the_clock_file(server, clock):
    path, t0 = clock
    api = Api(server.base)
    h = api("GET", "/healthz", expect=200).json()
    assert h == {"ok": True, "clock": "simulated", "clock_file": str(path), "now": t0}
    assert "SIMULATED CLOCK" in server.log.read_text()  # the start-up warning in the server's log

    admin, lid, keys, phones = world(api)
    tok = phones["anna"]["token"]
    b = api("POST", "/api/v1/phone/bundle", tok, 200, json={}).json()
    assert b["issued_at"] == b["start"] == t0 and b["end"] == t0 + 12 * 3600
    (t,) = b["locks"][0]["tickets"]
    assert (t["not_before"], t["not_after"]) == (t0, t0 + 12 * 3600)

    # an hour of simulated time passes
    set_clock(path, t0 + 3600)
    assert api("GET", "/healthz", expect=200).json()["now"] == t0 + 3600
    b = api("POST", "/api/v1/phone/bundle", tok, 200, json={"hours": 8}).json()
    (t,) = b["locks"][0]["tickets"]
    assert (b["issued_at"], t["not_before"], t["not_after"]) == (t0 + 3600, t0 + 3600, t0 + 3600 + 8 * 3600)
    tt = api("POST", "/api/v1/phone/time-token", tok, 200, json={"lock_id": lid, "epoch": 1,
                                                                  "nonce": "11" * 16}).json()
    assert tt["time"] == t0 + 3600

    # the bounds of a shift's start are on the simulated clock: real time is 30 days in its past
    r = api("POST", "/api/v1/phone/bundle", tok, 422, json={"start": int(time.time())})
    assert "5 minutes ago" in r.json()["detail"]
    later = t0 + 3600 + 6 * DAY
    b = api("POST", "/api/v1/phone/bundle", tok, 200, json={"start": later, "hours": 10}).json()
    assert (b["locks"][0]["tickets"][0]["not_before"], b["end"]) == (later, later + 10 * 3600)
    api("POST", "/api/v1/phone/bundle", tok, 422, json={"start": t0 + 3600 + 7 * DAY + 1})

    # time never goes backwards: an earlier value is ignored
    set_clock(path, t0 - DAY)
    assert api("GET", "/healthz", expect=200).json()["now"] == t0 + 3600
    assert api("POST", "/api/v1/phone/bundle", tok, 200, json={}).json()["issued_at"] == t0 + 3600


def test_deny_entries_expire_on_the_simulated_clock(server, clock):
    path, t0 = clock
    api = Api(server.base)
    admin, lid, keys, phones = world(api)
    b = api("POST", "/api/v1/phone/bundle", phones["anna"]["token"], 200, json={"hours": 2}).json()
    (t,) = b["locks"][0]["tickets"]
    api("POST", f"/api/v1/phones/{phones['anna']['id']}/revoke", admin, 200, json={"reason": "lost"})
    # Bo's bundle carries the deny entry for Anna's ticket, expiring when that ticket ends (simulated time)
    entry = api("POST", "/api/v1/phone/bundle", phones["bo"]["token"], 200, json={}).json()["locks"][0]
    assert entry["deny_lists"]["1"] == deny_list(keys, entry["deny_version"], [(1, t["ticket_id"], t0 + 7200)]).hex()
    # past the ticket's end on the simulated clock the entry is no longer needed, and goes
    set_clock(path, t0 + 7200 + 1)
    entry = api("POST", "/api/v1/phone/bundle", phones["bo"]["token"], 200, json={}).json()["locks"][0]
    assert entry["deny_lists"]["1"] == deny_list(keys, entry["deny_version"], []).hex()


def test_a_bad_clock_file_is_a_503_at_request_time(server, clock):
    path, t0 = clock
    api = Api(server.base)
    admin, lid, keys, phones = world(api)
    tok = phones["anna"]["token"]
    for bad, says in (("soon\n", "does not hold a Unix time"), ("", "does not hold a Unix time"),
                      ("-5", "does not hold a Unix time"), ("99999999999", "does not hold a Unix time")):
        set_clock(path, bad)
        for method, url, tk in (("POST", "/api/v1/phone/bundle", tok), ("GET", "/healthz", None),
                                ("GET", "/api/v1/locks", admin)):
            r = api(method, url, tk, 503, **({"json": {}} if method == "POST" else {}))
            assert r.json()["error"] == "clock_unavailable" and says in r.json()["detail"], r.text
    path.unlink()
    r = api("POST", "/api/v1/phone/bundle", tok, 503, json={})
    assert "No such file" in r.json()["detail"]
    # a good file again: served on the simulated clock, never on real time meanwhile
    set_clock(path, t0 + 60)
    assert api("POST", "/api/v1/phone/bundle", tok, 200, json={}).json()["issued_at"] == t0 + 60


def _serve(url, key_file, *args, env_clock=None):
    env = {**os.environ, **_argon_env()}
    env.pop("KEYSERVER_CLOCK_FILE", None)
    if env_clock is not None:
        env["KEYSERVER_CLOCK_FILE"] = env_clock
    return subprocess.run([sys.executable, "-m", "keyserver", "--database-url", url, "--master-key-file",
                           str(key_file), "serve", "--port", "1", *args], capture_output=True, text=True, env=env,
                          timeout=120)


def test_a_bad_clock_file_stops_serve(tmp_path, key_file):
    url = f"sqlite:///{tmp_path / 'ks.db'}"
    srv = ServerProcess(url, key_file, tmp_path / "log")
    srv.init()
    missing = tmp_path / "no-such-clock"
    r = _serve(url, key_file, "--clock-file", str(missing))
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1] == (f"keyserver: KEYSERVER_CLOCK_FILE: simulated clock file {missing}: "
                                                 "No such file or directory")
    garbage = tmp_path / "clock"
    garbage.write_text("tomorrow\n")
    r = _serve(url, key_file, env_clock=str(garbage))
    assert r.returncode == 1 and "does not hold a Unix time as decimal text" in r.stderr
    assert "Traceback" not in r.stderr


def test_the_file_clock_parses_and_caches(tmp_path):
    from keyserver.keystore import ClockUnavailable, FileClock

    p = tmp_path / "clock"
    c = FileClock(p)
    for text, want in (("1767250800", 1767250800), (" 1767250801.75\n", 1767250801), ("1767250805.", 1767250805)):
        set_clock(p, text)
        assert c.read() == want
    set_clock(p, "1767250000")  # earlier: ignored
    assert c.read() == 1767250805
    for bad in ("1e9", "0x10", "1767250900 1", "", "0", str(1 << 32)):
        set_clock(p, bad)
        with pytest.raises(ClockUnavailable):
            c.read()
    p.write_bytes(b"\xff\xfe")
    with pytest.raises(ClockUnavailable, match="does not hold"):
        c.read()


def test_unset_means_real_time(ks):
    from keyserver import keystore

    h = ks.call("GET", "/healthz", expect=200).json()
    assert h == {"ok": True, "clock": "real"}
    assert keystore._clock is None and abs(keystore.now() - time.time()) < 5


def test_an_app_with_a_clock_file_and_one_without(tmp_path, key_file):
    """The in-process clock is the app's: a later app without the setting is back on real time."""
    from fastapi.testclient import TestClient

    from keyserver import keystore
    from keyserver.app import create_app
    from keyserver.db import Database
    from keyserver.settings import ConfigError

    url = f"sqlite:///{tmp_path / 'ks.db'}"
    db = Database(url)
    db.migrate()
    p = tmp_path / "clock"
    set_clock(p, 2_000_000_000)
    try:
        with TestClient(create_app(make_settings(url, key_file, clock_file=p), database=db)) as c:
            assert c.get("/healthz").json()["now"] == 2_000_000_000
            assert keystore.now() == 2_000_000_000
        with pytest.raises(ConfigError, match="KEYSERVER_CLOCK_FILE"):
            create_app(make_settings(url, key_file, clock_file=tmp_path / "none"), database=db)
        with TestClient(create_app(make_settings(url, key_file, clock_file=""), database=db)) as c:
            assert c.get("/healthz").json() == {"ok": True, "clock": "real"}
            assert abs(keystore.now() - time.time()) < 5
    finally:
        keystore.use_clock(None)
        db.dispose()


def test_healthz_names_the_clock_file_absolute(tmp_path, key_file, monkeypatch):
    """A relative KEYSERVER_CLOCK_FILE is shown as the absolute path the server reads."""
    from fastapi.testclient import TestClient

    from keyserver import keystore
    from keyserver.app import create_app
    from keyserver.db import Database

    url = f"sqlite:///{tmp_path / 'ks.db'}"
    db = Database(url)
    db.migrate()
    set_clock(tmp_path / "clock", 2_000_000_000)
    monkeypatch.chdir(tmp_path)
    try:
        with TestClient(create_app(make_settings(url, key_file, clock_file="clock"), database=db)) as c:
            shown = c.get("/healthz").json()["clock_file"]
            assert Path(shown).is_absolute() and Path(shown).resolve() == (tmp_path / "clock").resolve()
    finally:
        keystore.use_clock(None)
        db.dispose()
