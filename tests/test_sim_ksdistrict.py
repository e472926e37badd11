"""simulator/ksdistrict.py against a real key server process (SQLite): a scenario's district set
up over the HTTP API, its phones' bundles, a lost phone, an alarm key and a re-key.

The district: three locks, two carers (Anna at the first two homes, Bo at the third). The
keys ``register_lock`` hands back are the ones the server issues under: a ticket from
Anna's bundle opens the first lock running the real firmware session under MicroPython.
"""

from __future__ import annotations

import time

import httpx
import pytest

from lockproto import Op, Ticket

from ks_support import *  # noqa: F401,F403
from ks_support import FirmwareLock, admin_login, phone_op, running_server
from simulator.ksdistrict import KeyServerDistrict, KeyServerError, write_clock

RIGHTS = 1 | 2 | 4


@pytest.fixture
def server(tmp_path, key_file, monkeypatch):
    monkeypatch.delenv("KEYSERVER_CLOCK_FILE", raising=False)
    with running_server("sqlite", tmp_path, key_file) as srv:
        yield srv


def bundle(srv, token, expect=200, **body):
    r = httpx.post(srv.base + "/api/v1/phone/bundle", json=body, headers={"Authorization": f"Bearer {token}"},
                   timeout=30)
    assert r.status_code == expect, r.text
    return r.json()


@pytest.fixture
def district(server):
    d = KeyServerDistrict(server.base, admin_login(server), "Sim Nord")
    d.keys = {name: d.register_lock(name) for name in ("L0001", "L0002", "L0003")}
    d.tokens = {"anna": d.add_carer("anna", ["L0001", "L0002"], RIGHTS),
                "bo": d.add_carer("bo", ["L0003"], RIGHTS)}
    try:
        yield d
    finally:
        d.close()


def lock_ids(b) -> set[str]:
    return {e["lock_id"] for e in b["locks"]}


def test_set_up_and_bundles_hold_exactly_the_carers_homes(server, district, fw):
    d = district
    assert {lid.hex() for lid, _, _ in d.keys.values()} == {lk["lock_id"] for lk in d._call("GET", "/locks")}
    assert all(epoch == 1 and len(master) == 32 for _, epoch, master in d.keys.values())
    homes = {h["id"]: h for h in d._call("GET", "/homes", params={"district_id": d.district_id})}
    assert {h["citizen_ref"] for h in homes.values()} == {"Sim Nord/L0001", "Sim Nord/L0002", "Sim Nord/L0003"}

    a = bundle(server, d.tokens["anna"], hours=8)
    assert lock_ids(a) == {d.keys["L0001"][0].hex(), d.keys["L0002"][0].hex()}
    assert a["staff_id"] == d.staff_id("anna") and a["end"] - a["start"] == 8 * 3600
    b = bundle(server, d.tokens["bo"])
    assert lock_ids(b) == {d.keys["L0003"][0].hex()} and b["staff_id"] == d.staff_id("bo")
    # per-home grants, one ticket per lock, for the protocol user id the runner is told
    entry = next(e for e in a["locks"] if e["lock_id"] == d.keys["L0001"][0].hex())
    (tk,) = entry["tickets"]
    assert Ticket.decode(bytes.fromhex(tk["ticket"])).user_id == d.staff_id("anna") and tk["rights"] == RIGHTS

    # the key register_lock returned is the lock's key: the firmware opens with the server's ticket
    lid, epoch, master = d.keys["L0001"]
    lock = FirmwareLock(fw, master, lid, int(time.time()), epoch=epoch)
    ps, resp = phone_op(lock, tk, Op.UNLOCK)
    assert ps.read(resp).status == 0

    # a second client reuses the district by name
    again = KeyServerDistrict(server.base, d._admin, "Sim Nord")
    assert again.district_id == d.district_id
    again.close()
    # the key never reaches the server's log
    log = server.log.read_text()
    assert all(m.hex() not in log for _, _, m in d.keys.values())


def test_shift_windows_bound_the_grants(server, district):
    d = district
    t = int(time.time())
    more = d.register_locks([f"L{i:04d}" for i in range(4, 12)], workers=4)
    assert sorted(more) == [f"L{i:04d}" for i in range(4, 12)] and len({v[0] for v in more.values()}) == 8
    d.add_carer("cai", {"L0004": (t - 60, t + 3600), "L0005": (t - 60, None)}, RIGHTS)
    b = bundle(server, d.phone_token("cai"))
    assert lock_ids(b) == {more["L0004"][0].hex(), more["L0005"][0].hex()}
    tk = next(e for e in b["locks"] if e["lock_id"] == more["L0004"][0].hex())["tickets"][0]
    assert tk["not_after"] == t + 3600
    b = bundle(server, d.phone_token("cai"), start=t + 7200, hours=1)
    assert lock_ids(b) == {more["L0005"][0].hex()}


def test_lose_phone(server, district):
    d = district
    old = d.tokens["anna"]
    before = bundle(server, old)
    new = d.lose_phone("anna")
    assert new != old and d.phone_token("anna") == new
    r = bundle(server, old, expect=401)
    assert r["error"] == "unauthorized" and "revoked" in r["detail"]
    after = bundle(server, new)
    assert lock_ids(after) == lock_ids(before) and after["phone_id"] != before["phone_id"]
    # the lost phone's tickets are on the new deny lists
    v0 = {e["lock_id"]: e["deny_version"] for e in before["locks"]}
    assert all(e["deny_version"] == v0[e["lock_id"]] + 1 for e in after["locks"])
    phones = d._call("GET", "/phones", params={"staff_id": d.staff_id("anna")})
    assert [(p["id"] == before["phone_id"], p["revoked_at"] is not None) for p in phones] == [(True, True),
                                                                                               (False, False)]
    assert bundle(server, d.tokens["bo"])["locks"]  # Bo is untouched


def test_alarm_key_reaches_the_carers_bundle(server, district):
    d = district
    lid1 = d.keys["L0001"][0].hex()
    assert lid1 not in lock_ids(bundle(server, d.tokens["bo"]))
    d.alarm_key("bo", "L0001", 30, "fall alarm")
    b = bundle(server, d.tokens["bo"])
    entry = next(e for e in b["locks"] if e["lock_id"] == lid1)
    (tk,) = entry["tickets"]
    assert tk["kind"] == "alarm" and tk["not_after"] - b["issued_at"] <= 30 * 60
    # a second alarm reuses the integration account; by lock id as well as by name
    d.alarm_key("bo", d.keys["L0002"][0], 0.5, "door alarm")
    assert d.keys["L0002"][0].hex() in lock_ids(bundle(server, d.tokens["bo"]))
    centre = [s for s in d._call("GET", "/staff") if s["role"] == "integration"]
    assert [s["username"] for s in centre] == ["Sim Nord/response-centre"]


def test_start_rekey_shows_in_the_bundle(server, district):
    d = district
    d.start_rekey("L0003")
    (entry,) = bundle(server, d.tokens["bo"])["locks"]
    assert entry["epochs"] == [1, 2]
    assert entry["rekey"]["old_epoch"] == 1 and entry["rekey"]["new_epoch"] == 2 and entry["rekey"]["message"]
    assert {t["epoch"] for t in entry["tickets"]} == {1, 2}
    assert d.rekey_state("L0003")["state"] == "pending"
    with pytest.raises(KeyServerError) as e:
        d.start_rekey("L0003")
    assert e.value.status == 409 and "already has a re-key pending" in str(e.value)


def test_reports(server, district):
    d = district
    t = int(time.time())
    urls = d.report_urls(t - 3600, t + 3600)
    h = {"Authorization": f"Bearer {d._admin}"}
    for name in ("visits", "battery_changes", "health"):
        assert httpx.get(urls[name], headers=h, timeout=30).status_code == 200, name
    assert d.visits(t - 3600, t + 3600) == []
    assert d.battery_changes() == []
    assert {x["lock_id"] for x in d.health()} == {lid.hex() for lid, _, _ in d.keys.values()}


def test_errors_are_clear(server, district, tmp_path):
    d = district
    with pytest.raises(KeyServerError, match="no carer 'eve'"):
        d.lose_phone("eve")
    with pytest.raises(KeyServerError, match="no lock 'L0099'"):
        d.add_carer("dan", ["L0001", "L0099"], RIGHTS)
    assert "dan" not in [s["username"].split("/")[-1] for s in d._call("GET", "/staff")]  # nothing half made
    for rights, homes in ((0, ["L0001"]), (16, ["L0001"]), (RIGHTS, {"L0001": (100, 50)})):
        with pytest.raises(KeyServerError, match="rights|not after"):
            d.add_carer("dan", homes, rights)
    assert "dan" not in [s["username"].split("/")[-1] for s in d._call("GET", "/staff")]
    # what only the server knows: a grant beyond its range, the carer named in the error
    with pytest.raises(KeyServerError) as e:
        d.add_carer("dan", {"L0001": (None, 1 << 33)}, RIGHTS)
    assert e.value.status == 422 and "'dan'" in str(e.value) and "0 of 1 grants" in str(e.value)
    with pytest.raises(KeyServerError) as e:
        d.alarm_key("bo", "L0001", 10_000, "too long")
    assert e.value.status == 422
    with pytest.raises(KeyServerError) as e:
        KeyServerDistrict(server.base, "not-a-token", "X")
    assert e.value.status == 401
    with pytest.raises(KeyServerError) as e:
        KeyServerDistrict("http://127.0.0.1:1", "t", "X", timeout=2)
    assert e.value.status is None and "unreachable" in str(e.value)
    # the same district twice on one database: the existing home is a clear conflict
    again = KeyServerDistrict(server.base, d._admin, "Sim Nord")
    with pytest.raises(KeyServerError) as e:
        again.register_lock("L0001")
    assert e.value.status == 409 and "exists" in str(e.value)
    again.close()
    with pytest.raises(KeyServerError, match="no clock_file"):
        d.set_time(1)
    clock = tmp_path / "clock"
    write_clock(clock, 1_800_000_000)
    assert clock.read_text() == "1800000000\n" and list(tmp_path.glob(".clock*")) == []
