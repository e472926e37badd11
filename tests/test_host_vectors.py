"""tests/vectors/protocol.json: reproducible, and every entry consistent with the host side read
independently of the generator (the firmware checks the same file in tests/test_xcheck.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from lockproto import Err, LockKeys, Op, ProtocolError, vectors
from lockproto.codes import MsgType
from lockproto.crypto import derive, session_key, sha256
from lockproto.fragment import FrameDecoder, Reassembler
from lockproto.issuer import deny_list, journal_ack, rekey_message, rekey_proof, ticket_key, time_token
from lockproto.journal import Record, chain_genesis, open_chunk, verify_chain
from lockproto.phone import VALIDITY_CODES, lock_check_auth, lock_check_op
from lockproto.wire import Auth, ErrorFrame, Hello, Result, StateBlock, Ticket, decode_message

ROOT = Path(__file__).resolve().parent.parent
FILE = ROOT / "tests" / "vectors" / "protocol.json"
V = json.loads(FILE.read_text())
b = bytes.fromhex


def test_regenerating_gives_the_committed_bytes(tmp_path):
    assert vectors.main([str(tmp_path / "a")]) == 0
    first = (tmp_path / "a" / "protocol.json").read_bytes()
    assert first == FILE.read_bytes(), "run `make vectors` after a deliberate protocol change"
    res = subprocess.run([sys.executable, "-m", "lockproto.vectors", str(tmp_path / "b")], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    assert "protocol.json" in res.stdout
    assert (tmp_path / "b" / "protocol.json").read_bytes() == first


def test_sections():
    assert {"derive", "tickets", "bad_tickets", "windows", "sessions", "ops", "server", "journal", "fragments",
            "serial", "hello", "errors"} <= set(V)
    names = [s["name"] for s in V["sessions"]] + [s["name"] for s in V["ops"]]
    assert len(names) == len(set(names))
    for want in ("unlock", "status", "wrong lock", "wrong epoch", "bad mac", "expired", "not yet valid",
                 "outside window", "revoked ticket", "revoked user", "no right", "unsupported version",
                 "locked out", "time uncertain, 24h ticket unlock", "time uncertain, short ticket unlock"):
        assert want in names
    assert any("counter" in s["name"] and b(s["responses"][1])[1] == Err.BAD_COUNTER for s in V["ops"])


def test_derive():
    for v in V["derive"]:
        for label, key in v["keys"].items():
            assert derive(b(v["master"]), label, b(v["lock_id"]), v["epoch"]).hex() == key
        assert set(v["keys"]) == {"ticket", "journal-mac", "journal-enc", "wrap", "server"}


def test_tickets():
    tz = set()
    for v in V["tickets"]:
        keys = LockKeys.from_master(b(v["master"]), b(v["lock_id"]), v["epoch"])
        t = Ticket.decode(b(v["ticket"]))
        assert {**t.__dict__, "lock_id": t.lock_id.hex()} == v["fields"]
        assert ticket_key(keys, b(v["ticket"])).hex() == v["k_t"]
        tz.add((t.win_days != 0, t.tz_offset < 0))
    assert (True, True) in tz and (True, False) in tz  # a window ticket, a negative-tz ticket


def test_bad_tickets():
    for v in V["bad_tickets"]:
        with pytest.raises(ProtocolError) as e:
            Ticket.decode(b(v["ticket"]))
        assert e.value.code == v["code"], v["name"]


def test_windows_against_the_calendar():
    kinds = set()
    for w in V["windows"]:
        local = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=w["now"] + 60 * w["tz_offset"])
        day, minute = local.weekday(), local.hour * 60 + local.minute
        days, ws, we = w["win_days"], w["win_start"], w["win_end"]
        if ws < we:
            inside = bool(days >> day & 1) and ws <= minute < we
        else:
            inside = (bool(days >> day & 1) and minute >= ws) or (bool(days >> ((day + 6) % 7) & 1) and minute < we)
        assert w["inside"] is inside, w
        kinds.add((ws < we, ws == we, w["tz_offset"] < 0, w["tz_offset"] > 0, inside))
    assert any(k[0] is False and k[4] for k in kinds) and any(k[1] for k in kinds)


def _keys(v):
    return LockKeys.from_master(b(v["master"]), b(v["lock_id"]), v["epoch"])


def _check_connection(v, messages, responses):
    """What the host can check of a recorded connection without a lock: HELLO, keys, the AUTH
    checks 2-7, every RESULT's MAC, counter and op, and that ERRORs carry a known code."""
    keys = _keys(v)
    hello = Hello.decode(b(v["hello"]))
    assert hello.nonce.hex() == v["nonce_l"] and hello.state.encode().hex() == v["state_block"]
    assert hello.lock_id == keys.lock_id and hello.epoch == keys.epoch and list(hello.fw) == v["fw"]
    assert bool(hello.state.flags & 1) == v["time_uncertain"]
    k_s = session_key(b(v["k_t"]), hello.nonce, b(v["nonce_p"]))
    assert k_s.hex() == v["k_s"]
    expected_ctr = 1
    for i, (m, r) in enumerate(zip(messages, responses)):
        m, r = b(m), b(r)
        if r[0] == MsgType.ERROR:
            e = ErrorFrame.decode(r)
            if i == 0 and m[0] == MsgType.AUTH and e.code not in (Err.LOCKED_OUT, Err.NO_SESSION):
                with pytest.raises(ProtocolError) as got:
                    lock_check_auth(keys, b(v["hello"]), m)
                assert (got.value.code, got.value.detail) == (e.code, e.detail), v["name"]
            if i and m[0] == MsgType.OP and e.code in (Err.BAD_COUNTER, Err.BAD_MAC):
                with pytest.raises(ProtocolError) as got:
                    lock_check_op(k_s, expected_ctr, m)
                assert got.value.code == e.code, v["name"]
            continue
        res = Result.decode(r)
        assert res.verify(k_s), v["name"]
        if i == 0:
            t, a, ks = lock_check_auth(keys, b(v["hello"]), m)
            assert ks == k_s and (res.ctr, res.op) == (0, a.op)
            assert t.encode().hex() == v["ticket"] and ticket_key(keys, t.encode()).hex() == v["k_t"]
        else:
            f = lock_check_op(k_s, expected_ctr, m)
            assert (res.ctr, res.op) == (f.ctr, f.op)
            expected_ctr += 1
        assert res.status == Err.OK or not res.payload


@pytest.mark.parametrize("v", V["sessions"], ids=lambda v: v["name"])
def test_session_vectors(v):
    _check_connection(v, [v["auth"]], [v["response"]])
    r = b(v["response"])
    a = Auth.decode(b(v["auth"]))
    ok = r[0] == MsgType.RESULT and Result.decode(r).status == Err.OK
    assert v["actuate"] == (ok and a.op in (Op.UNLOCK, Op.LOCK))
    if r[0] == MsgType.RESULT:  # the ticket passed §2.4 exactly when the status is not a validity code
        t = Ticket.decode(a.ticket)
        now = max(v["now"], t.issued_at) if v["time_uncertain"] else v["now"]
        denied = {k: {i for kind, i, exp in v["deny"] if kind == k and (v["time_uncertain"] or exp > now)}
                  for k in (1, 2)}
        code = t.check(now, denied[1], denied[2])
        status = Result.decode(r).status
        assert code == (status if status in VALIDITY_CODES else Err.OK), v["name"]
        if status == Err.TIME_UNCERTAIN:
            assert v["time_uncertain"] and (t.lifetime > 43200 or a.op == Op.CONFIG)
        if ok and a.op == Op.STATUS:
            assert Result.decode(r).payload.hex() == v["state_block"]
    if v["lockout_remaining"]:
        assert ErrorFrame.decode(r) == ErrorFrame(Err.LOCKED_OUT, v["lockout_remaining"])


@pytest.mark.parametrize("v", V["ops"], ids=lambda v: v["name"])
def test_ops_vectors(v):
    assert len(v["messages"]) == len(v["responses"]) == len(v["actuate"]) >= 2
    _check_connection(v, v["messages"], v["responses"])


def test_server_statements():
    s = V["server"]
    keys = _keys(s["time_token"])
    tt = s["time_token"]
    assert time_token(keys, b(tt["nonce_l"]), tt["time"]).hex() == tt["token"]
    for d in (s["deny"], s["deny_empty"]):
        assert deny_list(keys, d["version"], [tuple(e) for e in d["entries"]]).hex() == d["message"]
    rk = s["rekey"]
    old = LockKeys.from_master(b(rk["old_master"]), b(rk["lock_id"]), rk["old_epoch"])
    new = LockKeys.from_master(b(rk["new_master"]), b(rk["lock_id"]), rk["new_epoch"])
    assert rekey_message(old, b(rk["new_master"]), rk["new_epoch"]).hex() == rk["message"]
    assert rekey_proof(new).hex() == rk["proof"]
    ack = s["ack"]
    assert journal_ack(keys, ack["seq"], b(ack["chain"])).hex() == ack["message"]


def test_journal():
    j = V["journal"]
    lock_id = b(j["lock_id"])
    keys = {j["epoch"]: LockKeys.from_master(b(j["master"]), lock_id, j["epoch"]),
            j["new_epoch"]: LockKeys.from_master(b(j["new_master"]), lock_id, j["new_epoch"])}
    assert chain_genesis(keys[1].jm, lock_id).hex() == j["genesis"]
    records = [Record.decode(b(r["sealed"])) for r in j["records"]]
    for r, v in zip(records, j["records"]):
        assert r.body().hex() == v["body"] and r.chain.hex() == v["chain"]
        assert (r.seq, r.time, r.event, r.flags, r.arg16, r.user_id, r.ticket_id, r.arg) == \
            (v["seq"], v["time"], v["event"], v["flags"], v["arg16"], v["user_id"], v["ticket_id"], v["arg"])
    assert verify_chain(keys, b(j["genesis"]), records, 1) == 2
    c = j["chunk"]
    chunk = open_chunk(keys, b(c["payload"]))
    assert (chunk.epoch, chunk.first_seq, chunk.head_seq, chunk.prev_chain.hex()) == \
        (c["epoch"], c["first_seq"], c["head_seq"], c["prev_chain"])
    assert chunk.records == [r for r in records if r.seq >= c["from"]][:c["max_count"]]
    assert verify_chain(keys, chunk.prev_chain, chunk.records, 1) == 2
    e = j["empty_chunk"]
    empty = open_chunk(keys, b(e["payload"]))
    assert empty.records == [] and empty.first_seq == empty.head_seq + 1 == e["first_seq"]


def test_transport_and_frames():
    for f in V["fragments"]:
        r = Reassembler()
        out = [r.feed(b(x)) for x in f["fragments"]]
        assert out[-1].hex() == f["message"] and all(len(b(x)) <= f["mtu"] - 3 for x in f["fragments"])
    for s in V["serial"]:
        assert FrameDecoder().feed(b"\x00L" + b(s["frame"]) + b"LK") == [b(s["message"])]
    for e in V["errors"]:
        assert ErrorFrame.decode(b(e["frame"])) == ErrorFrame(e["code"], e["detail"])
    assert {e["code"] for e in V["errors"]} == set(range(1, 32))


def test_hello():
    for h in V["hello"] + V["hello_long"]:
        hello = Hello.decode(b(h["hello"]))
        assert hello.extra.hex() == h["extra"] and StateBlock(**h["state"]) == hello.state
        assert (hello.lock_id.hex(), hello.epoch, hello.nonce.hex(), list(hello.fw)) == \
            (h["lock_id"], h["epoch"], h["nonce"], h["fw"])
        assert sha256(b(h["hello"])).hex() == h["hello_hash"] and decode_message(b(h["hello"])) == hello
    assert any(len(b(h["hello"])) == 128 for h in V["hello_long"])
