"""Journal ingestion and the re-key state machine, end to end with the firmware under MicroPython.

The journal chunks come from the firmware's own JOURNAL_READ (export encryption, chain
MAC); acknowledgements go back to it; re-key messages are applied by it and its proof
completes the re-key on the server.
"""

from __future__ import annotations

import struct
import time
from dataclasses import replace

import pytest
from sqlalchemy import text

from lockproto import Event, LockKeys, Op, PhoneSession, ProtocolError, Record, journal_ack
from lockproto.codes import Err
from lockproto.journal import chain_genesis, make_export_chunk, seal

from ks_support import *  # noqa: F401,F403
from ks_support import FirmwareLock, build_world, phone_op

pytestmark = pytest.mark.mpy


def bundle(ks, token):
    return ks.call("POST", "/api/v1/phone/bundle", token, 200, json={}).json()


def read_journal(lock, ticket, from_seq=1, n=16, nonce=b"\x33" * 16):
    ps, resp = phone_op(lock, ticket, Op.JOURNAL_READ, struct.pack(">IB", from_seq, n), nonce_p=nonce)
    return ps, ps.read(resp).payload


def upload(ks, token, lock_id, chunk, expect=200):
    return ks.call("POST", "/api/v1/phone/journal", token, expect, json={"lock_id": lock_id, "chunk": chunk.hex()}).json()


def test_firmware_journal_is_ingested_once_and_acknowledged(ks, fw):
    w = build_world(ks, rights=7)
    tk = bundle(ks, w.phone_token)["locks"][0]["tickets"][0]
    now = int(time.time())
    lock = FirmwareLock(fw, w.masters[0], bytes.fromhex(w.locks[0]), now)
    ps, resp = phone_op(lock, tk, Op.UNLOCK)
    assert ps.read(resp).status == 0
    lock.step(do="advance", s=20)
    lock.step(do="append", event=int(Event.DOOR_OPEN))
    lock.step(do="advance", s=5)
    lock.step(do="append", event=int(Event.DOOR_CLOSED))
    lock.step(do="advance", s=900)
    lock.step(do="append", event=int(Event.DOOR_OPEN))
    lock.step(do="advance", s=10)
    lock.step(do="append", event=int(Event.DOOR_CLOSED))
    lock.step(do="append", event=int(Event.BATTERY), arg16=5900, arg=88)
    ps, chunk = read_journal(lock, tk)
    head = lock.state()["head"]
    r = upload(ks, w.phone_token, w.locks[0], chunk)
    assert r["stored"] == head and r["duplicates"] == 0 and r["gap"] is None and r["journal_seq"] == head
    # the lock accepts the server's acknowledgement and may erase
    res = ps.read(lock.send(ps.op(Op.JOURNAL_ACK, bytes.fromhex(r["ack"]))))
    assert res.status == 0 and lock.state()["acked"] == head
    # the same chunk again: nothing new, the same acknowledgement
    again = upload(ks, w.phone_token, w.locks[0], chunk)
    assert again["stored"] == 0 and again["duplicates"] == head and again["ack"] == r["ack"]
    with ks.db.tx() as s:
        assert s.execute(text("SELECT count(*) FROM journal_records")).scalar_one() == head
    # the bundle carries the acknowledgement for any phone to relay
    assert bundle(ks, w.phone_token)["locks"][0]["journal_ack"] == r["ack"]
    # the visit: Anna unlocked, the door closed behind her and again when she left
    day = time.strftime("%Y-%m-%d", time.localtime(now))
    vs = ks.call("GET", f"/api/v1/reports/visits?start={now - 60}&end={now + 3600}", ks.admin, 200).json()
    assert len(vs) == 1 and vs[0]["staff_id"] == w.carer and vs[0]["start"] == now
    assert vs[0]["duration_s"] == 20 + 5 + 900 + 10 and day  # ends at the last door close
    battery = ks.call("GET", f"/api/v1/reports/battery/{w.locks[0]}", ks.admin, 200).json()
    assert battery["last_mv"] == 5900 and battery["history"][0]["source"] == "journal"


def _records(keys, n, start=1, t0=1_800_000_000, prev=None):
    prev = prev or chain_genesis(keys.jm, keys.lock_id)
    out = []
    for i in range(n):
        r = seal(keys.jm, prev, Record(seq=start + i, time=t0 + 60 * i, event=int(Event.BUTTON)))
        out.append(r)
        prev = r.chain
    return out


def test_tampering_gaps_and_forks(ks):
    w = build_world(ks)
    keys = w.keys[0]
    recs = _records(keys, 12)
    genesis = chain_genesis(keys.jm, keys.lock_id)
    c1 = make_export_chunk(keys, 1, recs[:5], 12, genesis)
    bad = bytearray(c1)
    bad[30] ^= 1
    r = upload(ks, w.phone_token, w.locks[0], bytes(bad), 422)
    assert "export MAC" in r["detail"]
    # a chain broken inside a correctly sealed export (what a lock with a corrupted record would send)
    broken = list(recs[:5])
    broken[2] = replace(broken[2], time=broken[2].time + 1)
    r = upload(ks, w.phone_token, w.locks[0], make_export_chunk(keys, 1, broken, 12, genesis), 422)
    assert "record 3" in r["detail"]
    with ks.db.tx() as s:
        assert s.execute(text("SELECT count(*) FROM journal_records")).scalar_one() == 0
    assert upload(ks, w.phone_token, w.locks[0], c1)["stored"] == 5
    # records 6..8 lost to an overflow; the lock's OVERFLOW record comes with 9..
    t9 = recs[7].time + 60
    tail = [seal(keys.jm, recs[7].chain, Record(seq=9, time=t9, event=int(Event.OVERFLOW), arg=3))]
    tail.append(seal(keys.jm, tail[0].chain, Record(seq=10, time=t9 + 1, event=int(Event.BUTTON))))
    r = upload(ks, w.phone_token, w.locks[0], make_export_chunk(keys, 9, tail, 10, recs[7].chain))
    assert r["gap"] == {"from_seq": 6, "to_seq": 8, "kind": "overflow"} and r["journal_seq"] == 10
    assert r["acked_seq"] == 10
    # an upload that rewrites stored history is refused
    forked = [replace(recs[3], chain=bytes(8))]
    r = upload(ks, w.phone_token, w.locks[0], make_export_chunk(keys, 4, forked, 12, recs[2].chain), 409)
    assert "forked" in r["detail"]
    health = ks.call("GET", "/api/v1/reports/health", ks.admin, 200).json()[0]
    assert health["journal_gaps"] == 1 and health["journal_seq"] == 10
    # a chunk for an unknown epoch
    other = LockKeys.from_master(w.masters[0], keys.lock_id, 9)
    r = upload(ks, w.phone_token, w.locks[0], make_export_chunk(other, 11, [], 10, tail[1].chain), 422)
    assert "epoch 9" in r["detail"]


def test_an_unexplained_gap_is_stored_but_not_acknowledged_past(ks):
    # a phone that skipped records 4..6 (say it asked from a later sequence): the lock still holds them,
    # so the server must not let it erase them; the later records are stored and reported all the same
    w = build_world(ks)
    keys = w.keys[0]
    recs = _records(keys, 12)
    genesis = chain_genesis(keys.jm, keys.lock_id)
    r = upload(ks, w.phone_token, w.locks[0], make_export_chunk(keys, 1, recs[:3], 12, genesis))
    assert r["acked_seq"] == 3
    r = upload(ks, w.phone_token, w.locks[0], make_export_chunk(keys, 7, recs[6:9], 12, recs[5].chain))
    assert r["gap"] == {"from_seq": 4, "to_seq": 6, "kind": "gap"} and r["journal_seq"] == 9
    assert r["acked_seq"] == 3 and r["ack"] == journal_ack(keys, 3, recs[2].chain).hex()
    assert bundle(ks, w.phone_token)["locks"][0]["journal_ack"] == r["ack"]
    # later the lock reports losses that cover the gap: from then on the server acknowledges past it
    t = recs[8].time + 60
    tail = [seal(keys.jm, recs[8].chain, Record(seq=10, time=t, event=int(Event.OVERFLOW), arg=3))]
    r = upload(ks, w.phone_token, w.locks[0], make_export_chunk(keys, 10, tail, 10, recs[8].chain))
    assert r["acked_seq"] == 10 and r["gap"] is None
    with ks.db.tx() as s:
        assert s.execute(text("SELECT kind FROM journal_gaps")).scalar_one() == "overflow"


def test_rekey_over_the_air_with_the_firmware(ks, fw):
    w = build_world(ks, rights=7)
    lid = w.locks[0]
    now = int(time.time())
    lock = FirmwareLock(fw, w.masters[0], bytes.fromhex(lid), now)
    r = ks.call("POST", f"/api/v1/locks/{lid}/rekey", ks.admin, 201, json={}).json()
    assert (r["state"], r["old_epoch"], r["new_epoch"]) == ("pending", 1, 2)
    ks.call("POST", f"/api/v1/locks/{lid}/rekey", ks.admin, 409, json={})
    entry = bundle(ks, w.phone_token)["locks"][0]
    assert entry["epochs"] == [1, 2] and entry["rekey"]["message"] == r["message"]
    assert {t["epoch"] for t in entry["tickets"]} == {1, 2} and set(entry["deny_lists"]) == {"1", "2"}
    old_t = [t for t in entry["tickets"] if t["epoch"] == 1][0]
    new_t = [t for t in entry["tickets"] if t["epoch"] == 2][0]
    # before the re-key, the new-epoch ticket is refused and the old one opens
    ps, resp = phone_op(lock, new_t, Op.UNLOCK)
    with pytest.raises(ProtocolError) as e:
        ps.read(resp)
    assert e.value.code == Err.WRONG_EPOCH
    ps, resp = phone_op(lock, old_t, Op.REKEY, bytes.fromhex(entry["rekey"]["message"]), nonce_p=b"\x44" * 16)
    proof = ps.read(resp).payload
    assert lock.state()["epoch"] == 2
    # a forged proof is refused; the real one completes the re-key
    ks.call("POST", "/api/v1/phone/rekey-proof", w.phone_token, 422,
            json={"lock_id": lid, "proof": (proof[:4] + bytes(16)).hex()})
    done = ks.call("POST", "/api/v1/phone/rekey-proof", w.phone_token, 200,
                   json={"lock_id": lid, "proof": proof.hex()}).json()
    assert done["state"] == "done"
    ks.call("POST", "/api/v1/phone/rekey-proof", w.phone_token, 200, json={"lock_id": lid, "proof": proof.hex()})
    with ks.db.tx() as s:
        rows = s.execute(text("SELECT epoch, state, sealed_master IS NULL, sealed_jm IS NULL FROM lock_keys "
                              "ORDER BY epoch")).all()
    # old master destroyed; its journal-MAC key kept until the journal is read past the REKEYED record
    assert [tuple(x) for x in rows] == [(1, "retired", True, False), (2, "active", False, False)]
    entry = bundle(ks, w.phone_token)["locks"][0]
    assert entry["epochs"] == [2] and entry["rekey"] is None
    tk = entry["tickets"][0]
    ps, resp = phone_op(lock, tk, Op.UNLOCK, nonce_p=b"\x55" * 16)
    assert ps.read(resp).status == 0
    ps, resp = phone_op(lock, old_t, Op.UNLOCK)
    with pytest.raises(ProtocolError):
        ps.read(resp)
    # the journal spans both epochs and verifies; then the old journal key goes too
    ps, chunk = read_journal(lock, tk, nonce=b"\x66" * 16)
    up = upload(ks, w.phone_token, lid, chunk)
    assert up["stored"] == lock.state()["head"]
    with ks.db.tx() as s:
        assert s.execute(text("SELECT sealed_jm IS NULL FROM lock_keys WHERE epoch = 1")).scalar_one()
        events = s.execute(text("SELECT event, epoch FROM journal_records ORDER BY seq")).all()
    assert (int(Event.REKEYED), 2) in [tuple(e) for e in events]
    assert ps.read(lock.send(ps.op(Op.JOURNAL_ACK, bytes.fromhex(up["ack"])))).status == 0


def test_rekey_completed_by_the_journal_when_the_proof_is_lost(ks, fw):
    w = build_world(ks, rights=7)
    lid = w.locks[0]
    lock = FirmwareLock(fw, w.masters[0], bytes.fromhex(lid), int(time.time()))
    ks.call("POST", f"/api/v1/locks/{lid}/rekey", ks.admin, 201, json={})
    entry = bundle(ks, w.phone_token)["locks"][0]
    old_t = [t for t in entry["tickets"] if t["epoch"] == 1][0]
    new_t = [t for t in entry["tickets"] if t["epoch"] == 2][0]
    phone_op(lock, old_t, Op.REKEY, bytes.fromhex(entry["rekey"]["message"]), nonce_p=b"\x44" * 16)
    # the phone died before relaying the proof; even a cancel does not lose the new key
    ks.call("POST", f"/api/v1/locks/{lid}/rekey/cancel", ks.admin, 200)
    ps, chunk = read_journal(lock, new_t)
    up = upload(ks, w.phone_token, lid, chunk)
    assert up["stored"] == lock.state()["head"]
    state = ks.call("GET", f"/api/v1/locks/{lid}/rekey", ks.admin, 200).json()
    assert state["state"] == "done" and ks.call("GET", f"/api/v1/locks/{lid}", ks.admin, 200).json()["epoch"] == 2


def test_onsite_rekey_stays_off_the_phones(ks, fw, tmp_path):
    import subprocess
    import sys

    w = build_world(ks)
    lid = w.locks[0]
    args = [sys.executable, "-m", "keyserver", "--database-url", ks.settings.database_url,
            "--master-key-file", str(ks.settings.master_key_file), "rekey"]
    r = subprocess.run(args + ["start", lid], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    message = bytes.fromhex(r.stdout.strip())
    entry = bundle(ks, w.phone_token)["locks"][0]
    assert entry["rekey"] is None and entry["epochs"] == [1]
    lock = FirmwareLock(fw, w.masters[0], bytes.fromhex(lid), int(time.time()))
    ps, resp = phone_op(lock, entry["tickets"][0], Op.REKEY, message)
    proof = ps.read(resp).payload
    bad = subprocess.run(args + ["proof", lid, "00" * 20], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and bad.stderr.startswith("keyserver: ") and "does not verify" in bad.stderr
    r = subprocess.run(args + ["proof", lid, proof.hex()], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert ks.call("GET", f"/api/v1/locks/{lid}", ks.admin, 200).json()["epoch"] == 2
