"""Host-made vectors (tests/vectors/protocol.json) checked by the firmware under MicroPython.

Every expected byte here was produced by lockproto (CPython); every actual byte by
firmware/lib running in the real `micropython` interpreter.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lockproto import vectors

pytestmark = pytest.mark.mpy

VECTORS = Path(__file__).resolve().parent / "vectors" / "protocol.json"
V = json.loads(VECTORS.read_text())


def test_committed_vectors_are_current():
    """Regenerating gives the committed bytes: the host side has not drifted from them."""
    assert vectors.render() == VECTORS.read_text(), "run `make vectors` after a deliberate protocol change"


@pytest.mark.parametrize("v", V["derive"], ids=lambda v: f"epoch{v['epoch']}")
def test_derive(fw, v):
    assert fw.call("xcheck.derive", v["master"], v["lock_id"], v["epoch"], list(v["keys"])) == v["keys"]


@pytest.mark.parametrize("v", V["tickets"], ids=lambda v: str(v["fields"]["ticket_id"]))
def test_ticket_and_ticket_key(fw, v):
    keys = next(d["keys"] for d in V["derive"] if d["master"] == v["master"] and d["epoch"] == v["epoch"])
    code, k_t, fields = fw.call("xcheck.ticket", v["ticket"], keys["ticket"])
    f = v["fields"]
    assert code == 0
    assert k_t == v["k_t"]
    assert fields == [f["format"], f["lock_id"], f["epoch"], f["ticket_id"], f["user_id"], f["not_before"],
                      f["not_after"], f["issued_at"], f["rights"], f["win_start"], f["win_end"],
                      f["win_days"], f["tz_offset"]]


@pytest.mark.parametrize("v", V["bad_tickets"], ids=lambda v: v["ticket"][:12] or "empty")
def test_bad_tickets(fw, v):
    assert fw.call("xcheck.ticket", v["ticket"])[0] == v["code"]


def test_windows(fw):
    cases = [[w["win_start"], w["win_end"], w["win_days"], w["tz_offset"], w["now"]] for w in V["windows"]]
    assert fw.call("xcheck.windows", cases) == [w["inside"] for w in V["windows"]]


def _actuations(v, messages, actuate):
    """[[op, ticket_id], ...] the lock must have run, from the vector's per-message flags."""
    ticket_id = int(v["ticket"][26:34], 16)
    ops = [bytes.fromhex(m)[59 if i == 0 else 5] for i, m in enumerate(messages)]
    return [[op, ticket_id] for op, a in zip(ops, actuate) if a]


@pytest.mark.parametrize("v", V["sessions"], ids=lambda v: v["name"])
def test_session(fw, v):
    got = fw.call("xcheck.session", v)
    assert got["hello"] == v["hello"]
    assert got["responses"] == [v["response"]]
    assert got["actuations"] == _actuations(v, [v["auth"]], [v["actuate"]])


@pytest.mark.parametrize("v", V["ops"], ids=lambda v: v["name"])
def test_ops(fw, v):
    got = fw.call("xcheck.session", v)
    assert got["hello"] == v["hello"]
    assert got["responses"] == v["responses"]
    assert got["actuations"] == _actuations(v, v["messages"], v["actuate"])


def test_server_statements(fw):
    s = V["server"]
    got = fw.call("xcheck.server", s)
    assert got["time"] == s["time_token"]["time"]
    assert got["deny"] == [s["deny"]["version"], s["deny"]["entries"]]
    assert got["deny_empty"] == [s["deny_empty"]["version"], []]
    assert got["rekey"] == [s["rekey"]["new_epoch"], s["rekey"]["new_master"], s["rekey"]["proof"]]
    assert got["ack"] == [s["ack"]["seq"], s["ack"]["chain"]]


def test_journal(fw):
    j = V["journal"]
    got = fw.call("xcheck.journal", j)
    assert got["genesis"] == j["genesis"]
    assert got["sealed"] == [r["sealed"] for r in j["records"]]
    assert got["chunk"] == j["chunk"]["payload"]
    assert got["empty_chunk"] == j["empty_chunk"]["payload"]


def test_transport(fw):
    frags, serial = fw.call("xcheck.transport", V["fragments"], V["serial"])
    for v, (mine, reassembled) in zip(V["fragments"], frags):
        assert mine == v["fragments"]
        assert reassembled == v["message"]
    for v, (frame, decoded) in zip(V["serial"], serial):
        assert frame == v["frame"]
        assert decoded == [v["message"]]


@pytest.mark.parametrize("v", V["hello"], ids=lambda v: v["nonce"][:4])
def test_hello(fw, v):
    assert fw.call("xcheck.hello", v) == [v["state_block"], v["hello"], v["hello_hash"]]


@pytest.mark.parametrize("v", V["errors"], ids=lambda v: str(v["code"]))
def test_error_frames(fw, v):
    assert fw.call("xcheck.error", v["code"], v["detail"]) == v["frame"]


def test_advertising(fw):
    a = V["advertising"]
    adverts, scan = fw.call("xcheck.advertising", a["adverts"])
    assert adverts == [x["payload"] for x in a["adverts"]]
    assert scan == a["scan_response"]
