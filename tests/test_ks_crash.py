"""The key server as a real process (uvicorn): concurrent revoke versus issue, and SIGKILL mid-work.

- A revocation that committed is never followed by a ticket issued to the revoked person:
  every ticket in the database is covered by the deny lists, and every bundle request sent
  after the revocation's answer arrived is refused.
- Killing the server process (SIGKILL) while bundles, revocations and journal uploads are
  in flight loses nothing that was acknowledged: after a restart on the same database each
  acknowledged ticket is in the audit, each acknowledged revocation is in force with its
  deny entries, each acknowledged journal upload is stored; and a revocation is all or
  nothing.
"""

from __future__ import annotations

import random
import threading
import time

import httpx
import pytest

from lockproto import LockKeys
from lockproto.journal import Record, chain_genesis, make_export_chunk, seal

from ks_support import *  # noqa: F401,F403
from ks_support import ADMIN_PW, Api, running_server


@pytest.fixture(params=["sqlite", "postgres"])
def server(request, tmp_path, key_file):
    with running_server(request.param, tmp_path, key_file) as srv:
        yield srv


def setup_world(api, n_locks=3, carers=("anna",), phones=1):
    admin = api("POST", "/api/v1/auth/login", json={"username": "root", "password": ADMIN_PW}, expect=200).json()["token"]
    d = api("POST", "/api/v1/districts", admin, 201, json={"name": "Syd"}).json()["id"]
    locks, keys = [], []
    for i in range(n_locks):
        h = api("POST", "/api/v1/homes", admin, 201, json={"citizen_ref": f"H{i}", "district_id": d}).json()["id"]
        master = bytes([i + 1]) * 32
        lid = f"{0xC0FFEE00 + i:016x}"
        api("POST", "/api/v1/locks", admin, 201, json={"lock_id": lid, "key": master.hex(), "home_id": h})
        locks.append(lid)
        keys.append(LockKeys.from_master(master, bytes.fromhex(lid), 1))
    people = {}
    for name in carers:
        sid = api("POST", "/api/v1/staff", admin, 201, json={"username": name, "role": "carer"}).json()["id"]
        api("POST", "/api/v1/grants", admin, 201, json={"staff_id": sid, "district_id": d})
        n = phones.get(name, 1) if isinstance(phones, dict) else phones
        toks = [api("POST", "/api/v1/phones", admin, 201, json={"staff_id": sid}).json() for _ in range(n)]
        people[name] = (sid, toks)
    return admin, locks, keys, people


def _wait(cond, limit=120.0):
    deadline = time.monotonic() + limit
    while not cond():
        assert time.monotonic() < deadline, "the workload did not make progress"
        time.sleep(0.02)


def test_revoke_never_races_an_issue(server, tmp_path):
    api = Api(server.base)
    admin, locks, _, people = setup_world(api, n_locks=3, carers=("anna",), phones=6)
    sid, phones = people["anna"]
    results = []  # (sent, received, status, ticket ids)
    stop = threading.Event()
    revoked_at = {}

    def issuer(tok):
        c = Api(server.base)
        while not stop.is_set():
            sent = time.monotonic()
            r = c("POST", "/api/v1/phone/bundle", tok, json={})
            got = time.monotonic()
            ids = [t["ticket_id"] for e in r.json().get("locks", []) for t in e["tickets"]] if r.status_code == 200 else []
            results.append((sent, got, r.status_code, ids))
            if r.status_code != 200 and "at" in revoked_at and sent > revoked_at["at"] + 0.5:
                break

    threads = [threading.Thread(target=issuer, args=(p["token"],)) for p in phones]
    for t in threads:
        t.start()
    _wait(lambda: sum(1 for r in results if r[2] == 200) >= 6)
    api("POST", f"/api/v1/staff/{sid}/revoke", admin, 200, json={"reason": "race"})
    revoked_at["at"] = time.monotonic()
    _wait(lambda: sum(1 for r in results if r[0] > revoked_at["at"]) >= 1)
    time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join(timeout=60)
    ok = [r for r in results if r[2] == 200]
    assert len(ok) >= 6, "the issuers must have raced the revocation"
    late = [r for r in results if r[0] > revoked_at["at"]]
    assert late and all(r[2] in (401, 403) for r in late)
    # every ticket ever issued to her is in the database and covered by her deny entry at its lock
    issued = {i for r in ok for i in r[3]}
    tickets = api("GET", f"/api/v1/tickets?staff_id={sid}&limit=10000", admin, 200).json()
    assert issued == {t["ticket_id"] for t in tickets}
    audit = [a for a in api("GET", "/api/v1/audit?action=revoke.staff", admin, 200).json()]
    assert len(audit) == 1 and set(audit[0]["detail"]["tickets"]) == {t["ticket_id"] for t in tickets
                                                                    if t["not_after"] > 0}
    assert set(audit[0]["detail"]["deny_versions"]) == set(locks)


def test_grant_revoke_never_races_an_issue(server):
    # bundles of different carers for the same locks share the lock rows; the grant revocation must still
    # wait for every one in flight and cover its tickets
    api = Api(server.base)
    admin, locks, _, _ = setup_world(api, n_locks=4, carers=())
    d = api("GET", "/api/v1/districts", admin, 200).json()[0]["id"]
    g = api("POST", "/api/v1/groups", admin, 201, json={"name": "night", "district_id": d}).json()["id"]
    grant = api("POST", "/api/v1/grants", admin, 201, json={"group_id": g, "district_id": d}).json()["id"]
    phones = []
    for i in range(3):
        sid = api("POST", "/api/v1/staff", admin, 201, json={"username": f"n{i}", "role": "carer"}).json()["id"]
        api("POST", f"/api/v1/groups/{g}/members", admin, 201, json={"staff_id": sid})
        phones += [api("POST", "/api/v1/phones", admin, 201, json={"staff_id": sid}).json()["token"] for _ in range(2)]
    results, stop, marks = [], threading.Event(), {}

    def issuer(tok):
        c = Api(server.base)
        while not stop.is_set():
            sent = time.monotonic()
            r = c("POST", "/api/v1/phone/bundle", tok, 200, json={})
            results.append((sent, [t["grant_id"] for e in r.json()["locks"] for t in e["tickets"]]))

    threads = [threading.Thread(target=issuer, args=(p,)) for p in phones]
    for t in threads:
        t.start()
    _wait(lambda: sum(1 for x in results if x[1]) >= 6)  # bundles are flowing (however loaded the machine is)
    r = api("POST", f"/api/v1/grants/{grant}/revoke", admin, 200, json={}).json()
    marks["at"] = time.monotonic()
    _wait(lambda: sum(1 for x in results if x[0] > marks["at"]) >= len(phones))
    stop.set()
    for t in threads:
        t.join(timeout=60)
    before = [x for x in results if x[0] < marks["at"] and x[1]]
    after = [x for x in results if x[0] > marks["at"]]
    assert len(before) >= 6 and after
    assert all(grant not in ids for _, ids in after)
    tickets = api("GET", "/api/v1/tickets?limit=10000", admin, 200).json()
    of_grant = {t["ticket_id"] for t in tickets if t["grant_id"] == grant}
    audit = api("GET", "/api/v1/audit?action=revoke.grant", admin, 200).json()[0]
    assert set(audit["detail"]["tickets"]) == of_grant and r["tickets"] == len(of_grant)
    assert set(audit["detail"]["deny_versions"]) == set(locks)


def _journal_chunks(keys, n_chunks, per=8):
    prev = chain_genesis(keys.jm, keys.lock_id)
    seq, out = 1, []
    for _ in range(n_chunks):
        recs = []
        first, first_prev = seq, prev
        for _ in range(per):
            r = seal(keys.jm, prev, Record(seq=seq, time=1_800_000_000 + seq, event=5 + seq % 2))
            recs.append(r)
            prev, seq = r.chain, seq + 1
        out.append((recs[-1].seq, make_export_chunk(keys, first, recs, n_chunks * per, first_prev)))
    return out


def test_sigkill_mid_work_loses_nothing_acknowledged(server, tmp_path):
    api = Api(server.base)
    admin, locks, keys, people = setup_world(api, n_locks=3, carers=("anna", "bob", "cem"),
                                            phones={"anna": 3, "bob": 12, "cem": 2})
    # bob's phones get tickets, then are revoked one by one during the run
    _, bob_phones = people["bob"]
    for p in bob_phones:
        api("POST", "/api/v1/phone/bundle", p["token"], 200, json={})
    acked_bundles, acked_revokes, acked_journal = [], [], []
    stop = threading.Event()

    def issuer(tok):
        c = Api(server.base)
        while not stop.is_set():
            try:
                r = c("POST", "/api/v1/phone/bundle", tok, json={})
            except httpx.HTTPError:
                return
            if r.status_code == 200:
                acked_bundles.append([t["ticket_id"] for e in r.json()["locks"] for t in e["tickets"]])

    def revoker():
        c = Api(server.base)
        for i, p in enumerate(bob_phones):
            seen = len(acked_bundles)
            deadline = time.monotonic() + 5
            # paced by the bundles and the journal uploads, so revocations are still under way at
            # the kill (unpaced, a slow journal let all twelve finish first)
            while (len(acked_bundles) == seen or len(acked_journal) < i) and time.monotonic() < deadline \
                    and not stop.is_set():
                time.sleep(0.01)
            if stop.is_set():
                return
            try:
                r = c("POST", f"/api/v1/phones/{p['id']}/revoke", admin, json={"reason": "crash test"})
            except httpx.HTTPError:
                return
            if r.status_code == 200:
                acked_revokes.append(p["id"])

    def journaler():
        c = Api(server.base)
        tok = people["cem"][1][0]["token"]
        for upto, chunk in _journal_chunks(keys[0], 100):
            if stop.is_set():
                return
            try:
                r = c("POST", "/api/v1/phone/journal", tok, json={"lock_id": locks[0], "chunk": chunk.hex()})
            except httpx.HTTPError:
                return
            if r.status_code == 200:
                acked_journal.append(r.json()["journal_seq"])
            time.sleep(0.02)

    threads = [threading.Thread(target=issuer, args=(p["token"],)) for n in ("anna", "cem") for p in people[n][1]]
    threads += [threading.Thread(target=revoker), threading.Thread(target=journaler)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 120
    k = random.Random().randint(3, 9)
    # kill while all three kinds of work are under way
    while (len(acked_bundles) < 10 or len(acked_revokes) < k or len(acked_journal) < 5) \
            and time.monotonic() < deadline:
        time.sleep(0.005)
    server.kill()  # SIGKILL: no shutdown hooks, transactions in flight die with the process
    stop.set()
    for t in threads:
        t.join(timeout=60)
    assert len(acked_bundles) >= 10 and 3 <= len(acked_revokes) < len(bob_phones), acked_revokes
    assert acked_journal

    server.start()  # the same database, a new process
    api = Api(server.base)
    admin = api("POST", "/api/v1/auth/login", json={"username": "root", "password": ADMIN_PW}, expect=200).json()["token"]
    tickets = {t["ticket_id"]: t for t in api("GET", "/api/v1/tickets?limit=10000", admin, 200).json()}
    for ids in acked_bundles:
        assert set(ids) <= set(tickets)
    audit_ids = {i for a in api("GET", "/api/v1/audit?action=bundle.issue&limit=10000", admin, 200).json()
                 for i in a["detail"]["tickets"]}
    assert {i for ids in acked_bundles for i in ids} <= audit_ids
    phones = {p["id"]: p for p in api("GET", "/api/v1/phones", admin, 200).json()}
    revokes = {a["subject"]: a for a in api("GET", "/api/v1/audit?action=revoke.phone&limit=10000", admin, 200).json()}
    for pid in acked_revokes:
        assert phones[pid]["revoked_at"] is not None
    # all or nothing: every phone the database shows revoked has its audit entry and its tickets denied
    for pid, p in phones.items():
        if p["revoked_at"] is None:
            continue
        entry = revokes[f"phone:{pid}"]
        theirs = {t for t, row in tickets.items() if row["phone_id"] == pid}
        assert set(entry["detail"]["tickets"]) == theirs and theirs
        assert all(tickets[t]["revoked_at"] is not None for t in theirs)
    lock_rows = {lk["lock_id"]: lk for lk in api("GET", "/api/v1/locks", admin, 200).json()}
    if acked_journal:
        assert lock_rows[locks[0]]["journal_seq"] >= max(acked_journal)
    # deny versions: one bump per committed revocation that covered the lock
    n_revoked = sum(1 for p in phones.values() if p["revoked_at"] is not None)
    for lid in locks:
        assert lock_rows[lid]["deny_version"] == 1 + n_revoked
    # and the server works on: a revoked phone stays out, a live one gets a bundle with the deny list
    for pid in acked_revokes:
        tok = next(p["token"] for p in bob_phones if p["id"] == pid)
        assert api("POST", "/api/v1/phone/bundle", tok, json={}).status_code == 401
    entry = api("POST", "/api/v1/phone/bundle", people["anna"][1][0]["token"], 200, json={}).json()["locks"][0]
    assert entry["deny_version"] == 1 + n_revoked
