"""Ticket bundles, alarm keys and revocation, checked by the real firmware under MicroPython.

The server's tickets, K_T and deny lists are handed to the firmware's LockSession
(tests/mpy/fwtest.py) exactly as a phone would relay them.
"""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text

from lockproto import Op, ProtocolError, Ticket
from lockproto.codes import Err

from ks_support import *  # noqa: F401,F403
from ks_support import CARER_PW, FirmwareLock, build_world, phone_op

pytestmark = pytest.mark.mpy


def bundle(ks, w, token=None, **body):
    return ks.call("POST", "/api/v1/phone/bundle", token or w.phone_token, 200, json=body).json()


def test_bundle_ticket_opens_the_firmware_lock(ks, fw):
    w = build_world(ks, n_locks=2)
    b = bundle(ks, w)
    assert [e["lock_id"] for e in b["locks"]] == w.locks
    entry = b["locks"][0]
    assert entry["epochs"] == [1] and entry["rekey"] is None and entry["journal_ack"] is None
    tk = entry["tickets"][0]
    t = Ticket.decode(bytes.fromhex(tk["ticket"]))
    assert t.lock_id.hex() == w.locks[0] and t.user_id == w.carer and t.ticket_id == tk["ticket_id"]
    assert t.not_after - t.not_before == ks.settings.ticket_lifetime and t.rights == 3
    lock = FirmwareLock(fw, w.masters[0], bytes.fromhex(w.locks[0]), int(time.time()))
    ps, resp = phone_op(lock, tk, Op.UNLOCK)
    assert ps.read(resp).status == 0
    assert lock.state()["actuations"] == [[Op.UNLOCK, tk["ticket_id"]]]
    # the other lock's ticket does not open this one
    other = b["locks"][1]["tickets"][0]
    ps, resp = phone_op(lock, other, Op.UNLOCK)
    with pytest.raises(ProtocolError) as e:
        ps.read(resp)
    assert e.value.code == Err.WRONG_LOCK
    assert len(lock.state()["actuations"]) == 1


def test_every_issued_ticket_is_in_the_audit(ks):
    w = build_world(ks, n_locks=3)
    b = bundle(ks, w)
    ids = sorted(t["ticket_id"] for e in b["locks"] for t in e["tickets"])
    listed = ks.call("GET", f"/api/v1/tickets?staff_id={w.carer}", ks.admin, 200).json()
    assert sorted(t["ticket_id"] for t in listed) == ids
    assert all("k_t" not in t for t in listed)
    audit = ks.call("GET", "/api/v1/audit?action=bundle", ks.admin, 200).json()
    assert audit[0]["detail"]["tickets"] == ids and audit[0]["subject"] == f"phone:{w.phone}"


def test_no_grant_no_ticket_and_grant_windows(ks):
    w = build_world(ks, grant=False)
    assert bundle(ks, w)["locks"] == []
    # weekdays Monday-Friday 07:00-15:00 local time
    ks.call("POST", "/api/v1/grants", ks.admin, 201, json={"staff_id": w.carer, "lock_id": w.locks[0], "rights": 1,
                                                           "win_days": 0x1F, "win_start": 420, "win_end": 900})
    tk = bundle(ks, w)["locks"][0]["tickets"][0]
    t = Ticket.decode(bytes.fromhex(tk["ticket"]))
    assert (t.win_days, t.win_start, t.win_end, t.rights) == (0x1F, 420, 900, 1)
    assert t.tz_offset in (60, 120)  # Europe/Copenhagen, winter or summer time
    # a grant that ended yields nothing; one that starts later in the shift is cut to it
    now = int(time.time())
    ks.call("POST", "/api/v1/grants", ks.admin, 201, json={"staff_id": w.carer, "lock_id": w.locks[0],
                                                           "valid_from": now + 3600, "valid_until": now + 7200})
    tks = bundle(ks, w)["locks"][0]["tickets"]
    late = [x for x in tks if x["not_before"] >= now + 3600]
    assert len(tks) == 2 and late[0]["not_after"] == now + 7200


def test_shift_bounds_are_checked(ks):
    w = build_world(ks)
    r = ks.call("POST", "/api/v1/phone/bundle", w.phone_token, 422, json={"hours": 13})
    assert "hours" in r.json()["detail"]
    r = ks.call("POST", "/api/v1/phone/bundle", w.phone_token, 422, json={"start": int(time.time()) + 30 * 86400})
    assert "7 days" in r.json()["detail"]


def test_revoked_phone_is_denied_at_the_lock(ks, fw):
    w = build_world(ks)
    tk = bundle(ks, w)["locks"][0]["tickets"][0]
    sess = ks.login("anna", CARER_PW)
    spare = ks.call("POST", "/api/v1/phones", sess, 201, json={"label": "spare"}).json()
    r = ks.call("POST", f"/api/v1/phones/{w.phone}/revoke", ks.admin, 200, json={"reason": "lost"}).json()
    assert r["tickets"] == 1 and r["deny_versions"] == {w.locks[0]: 2}
    # the lost phone's token is dead
    assert ks.call("POST", "/api/v1/phone/bundle", w.phone_token, json={}).status_code == 401
    # the carer's other phone carries the new deny list to the lock
    entry = bundle(ks, w, spare["token"])["locks"][0]
    assert entry["deny_version"] == 2
    deny = bytes.fromhex(entry["deny_lists"]["1"])
    lock = FirmwareLock(fw, w.masters[0], bytes.fromhex(w.locks[0]), int(time.time()))
    ps, resp = phone_op(lock, entry["tickets"][0], Op.DENY_UPDATE, deny, nonce_p=b"\x01" * 16)
    assert ps.read(resp).status == 0
    assert lock.state()["deny_version"] == 2
    ps, resp = phone_op(lock, tk, Op.UNLOCK)
    with pytest.raises(ProtocolError) as e:
        ps.read(resp)
    assert e.value.code == Err.REVOKED
    assert lock.state()["actuations"] == []


def test_revoked_person_gets_no_bundle_and_is_denied_by_user_id(ks, fw):
    w = build_world(ks)
    tk = bundle(ks, w)["locks"][0]["tickets"][0]
    r = ks.call("POST", f"/api/v1/staff/{w.carer}/revoke", ks.admin, 200, json={"reason": "left"}).json()
    assert r["deny_versions"] == {w.locks[0]: 2}
    assert ks.call("POST", "/api/v1/phone/bundle", w.phone_token, json={}).status_code == 401
    ks.login("anna", CARER_PW, expect=401)
    with ks.db.tx() as s:
        rows = s.execute(text("SELECT kind, ident, expires FROM deny_entries")).all()
    assert [(k, i) for k, i, _ in rows] == [(2, w.carer)] and rows[0][2] == tk["not_after"]
    # another carer relays the list
    bob = ks.call("POST", "/api/v1/staff", ks.admin, 201, json={"username": "bob", "role": "carer"}).json()["id"]
    ks.call("POST", "/api/v1/grants", ks.admin, 201, json={"staff_id": bob, "lock_id": w.locks[0]})
    bob_phone = ks.call("POST", "/api/v1/phones", ks.admin, 201, json={"staff_id": bob}).json()["token"]
    entry = bundle(ks, w, bob_phone)["locks"][0]
    lock = FirmwareLock(fw, w.masters[0], bytes.fromhex(w.locks[0]), int(time.time()))
    ps, resp = phone_op(lock, entry["tickets"][0], Op.DENY_UPDATE, bytes.fromhex(entry["deny_lists"]["1"]),
                        nonce_p=b"\x02" * 16)
    assert ps.read(resp).status == 0
    ps, resp = phone_op(lock, tk, Op.UNLOCK)
    with pytest.raises(ProtocolError) as e:
        ps.read(resp)
    assert e.value.code == Err.REVOKED


def test_revoke_ticket_and_grant(ks):
    w = build_world(ks, n_locks=2)
    b = bundle(ks, w)
    t0 = b["locks"][0]["tickets"][0]["ticket_id"]
    ks.call("POST", f"/api/v1/tickets/{t0}/revoke", ks.admin, 200, json={})
    r = ks.call("POST", f"/api/v1/grants/{w.grant}/revoke", ks.admin, 200, json={}).json()
    assert r["tickets"] == 2 and set(r["deny_versions"]) == set(w.locks)
    assert bundle(ks, w)["locks"] == []
    ks.call("POST", f"/api/v1/grants/{w.grant}/revoke", ks.admin, 409, json={})
    with ks.db.tx() as s:
        rows = s.execute(text("SELECT kind, ident FROM deny_entries ORDER BY id")).all()
    ids = sorted(t["ticket_id"] for e in b["locks"] for t in e["tickets"])
    assert sorted(i for k, i in rows if k == 1) == ids


def test_alarm_key_for_an_integration(ks, fw):
    w = build_world(ks, n_locks=2, grant=False)
    integ = ks.call("POST", "/api/v1/staff", ks.admin, 201, json={"username": "alarmcentral",
                                                                   "role": "integration"}).json()["id"]
    token = ks.call("POST", f"/api/v1/staff/{integ}/tokens", ks.admin, 201).json()["token"]
    body = {"staff_id": w.carer, "home_id": w.homes[1], "minutes": 20, "reason": "fall alarm 4711"}
    ks.call("POST", "/api/v1/integration/alarm-keys", w.phone_token, 403, json=body)
    r = ks.call("POST", "/api/v1/integration/alarm-keys", token, 201, json=body).json()
    assert r["valid_until"] - r["valid_from"] == 1200
    b = bundle(ks, w)
    assert [e["lock_id"] for e in b["locks"]] == [w.locks[1]]
    tk = b["locks"][0]["tickets"][0]
    assert tk["kind"] == "alarm" and tk["not_after"] - tk["not_before"] <= 1200
    lock = FirmwareLock(fw, w.masters[1], bytes.fromhex(w.locks[1]), int(time.time()))
    ps, resp = phone_op(lock, tk, Op.UNLOCK)
    assert ps.read(resp).status == 0
    audit = ks.call("GET", "/api/v1/audit?action=alarm", ks.admin, 200).json()
    assert audit[0]["actor_id"] == integ and audit[0]["detail"]["reason"] == "fall alarm 4711"
    for bad, why in (({**body, "minutes": 10_000}, "minutes"), ({**body, "home_id": None}, "exactly one"),
                     ({**body, "staff_id": integ}, "active carers")):
        r = ks.call("POST", "/api/v1/integration/alarm-keys", token, json=bad)
        assert 400 <= r.status_code < 500 and why in r.json()["detail"], r.text


def test_time_token_is_bound_to_the_hello_nonce(ks, fw):
    w = build_world(ks)
    tk = bundle(ks, w)["locks"][0]["tickets"][0]
    lock = FirmwareLock(fw, w.masters[0], bytes.fromhex(w.locks[0]), int(time.time()) - 5000, uncertain=True)
    hello = lock.connect()
    from lockproto import PhoneSession
    from lockproto.wire import Hello

    h = Hello.decode(hello)
    r = ks.call("POST", "/api/v1/phone/time-token", w.phone_token, 200,
                json={"lock_id": w.locks[0], "epoch": h.epoch, "nonce": h.nonce.hex()}).json()
    ps = PhoneSession(bytes.fromhex(tk["ticket"]), bytes.fromhex(tk["k_t"]), hello, nonce_p=b"\x07" * 16)
    res = ps.read(lock.send(ps.auth(Op.TIME_SET, bytes.fromhex(r["token"]))))
    assert res.status == 0 and lock.state()["uncertain"] is False
    ks.call("POST", "/api/v1/phone/time-token", w.phone_token, 422,
            json={"lock_id": w.locks[0], "epoch": 7, "nonce": h.nonce.hex()})


def test_hello_hints_update_lock_health(ks, fw):
    w = build_world(ks)
    ks.call("POST", f"/api/v1/phones/{w.phone}/revoke", ks.admin, 200, json={})
    sess = ks.login("anna", CARER_PW)
    token = ks.call("POST", "/api/v1/phones", sess, 201, json={}).json()["token"]
    lock = FirmwareLock(fw, w.masters[0], bytes.fromhex(w.locks[0]), int(time.time()), uncertain=True)
    hello = lock.connect()
    r = ks.call("POST", "/api/v1/phone/hello", token, 200, json={"hello": hello.hex()}).json()
    assert r["time_token"] is True and r["rekey"] is False
    ks.call("POST", "/api/v1/phone/hello", token, 422, json={"hello": "0102"})
    health = ks.call("GET", "/api/v1/reports/health", ks.admin, 200).json()[0]
    assert health["time_uncertain"] is True and health["seen_at"] is not None


def test_factory_reset_consent_is_admin_only_and_audited(ks):
    from lockproto.provision import factory_reset_statement

    w = build_world(ks)
    nonce = bytes(range(16))
    body = {"epoch": 1, "nonce": nonce.hex()}
    carer = ks.login("anna", CARER_PW)
    ks.call("POST", f"/api/v1/locks/{w.locks[0]}/factory-reset", carer, 403, json=body)
    r = ks.call("POST", f"/api/v1/locks/{w.locks[0]}/factory-reset", ks.admin, 200, json=body).json()
    assert bytes.fromhex(r["statement"]) == factory_reset_statement(w.keys[0], nonce)
    ks.call("POST", f"/api/v1/locks/{w.locks[0]}/factory-reset", ks.admin, 422, json={**body, "epoch": 2})
    assert ks.call("GET", "/api/v1/audit?action=lock.factory_reset", ks.admin, 200).json()[0]["detail"]["epoch"] == 1
