"""Firmware-made vectors (tests/vectors/firmware.json) checked by the host side.

tests/mpy/fwvectors.py runs under the real MicroPython and records what the
firmware computes and answers; here lockproto (CPython, `cryptography`) must
verify every MAC, unwrap every key, decrypt every journal chunk and accept every
genuine RESULT, and must reject altered ones.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import keywrap

import mpyhost
from lockproto import Err, Event, LockKeys, PhoneSession, ProtocolError, StateBlock
from lockproto.crypto import aes_ctr, derive, hmac_sha256
from lockproto.issuer import ticket_key, verify_rekey_proof
from lockproto.journal import chain_genesis, open_chunk, verify_chain
from lockproto.wire import Auth, OpFrame

pytestmark = pytest.mark.mpy

TESTS = Path(__file__).resolve().parent
FILE = TESTS / "vectors" / "firmware.json"


def render(raw: str) -> str:
    return json.dumps(json.loads(raw), indent=1, sort_keys=True) + "\n"


def generate() -> str:
    res = mpyhost.run(TESTS / "mpy" / "fwvectors.py", paths=[TESTS / "mpy"], heapsize="1m")
    assert res.ok, res.stderr
    return render(res.stdout)


@pytest.fixture(scope="module")
def fv():
    return json.loads(FILE.read_text())


def test_committed_firmware_vectors_are_current():
    """The firmware still produces exactly the committed vectors."""
    assert generate() == FILE.read_text(), "regenerate with: python tests/test_fw_vectors.py"


def test_primitives(fv):
    p = fv["primitives"]
    for k, m, mac in p["hmac"]:
        assert hmac_sha256(bytes.fromhex(k), bytes.fromhex(m)).hex() == mac
    for kek, key, wrapped in p["wrap"]:
        assert keywrap.aes_key_unwrap(bytes.fromhex(kek), bytes.fromhex(wrapped)) == bytes.fromhex(key)
    for key, pre, data, out in p["ctr"]:
        assert aes_ctr(bytes.fromhex(key), bytes.fromhex(pre), bytes.fromhex(data)).hex() == out
    d = p["derive"]
    for label, value in d["keys"].items():
        assert derive(bytes.fromhex(d["master"]), label, bytes.fromhex(d["lock_id"]), d["epoch"]).hex() == value


def _keys(s):
    lock_id = bytes.fromhex(s["lock_id"])
    return {1: LockKeys.from_master(bytes.fromhex(s["master"]), lock_id, 1),
            2: LockKeys.from_master(bytes.fromhex(s["master_2"]), lock_id, 2)}


def _replay(keys, conn):
    """Rebuild the phone's messages with lockproto and read the firmware's answers."""
    k = keys[conn["epoch"]]
    ticket = bytes.fromhex(conn["ticket"])
    ps = PhoneSession(ticket, ticket_key(k, ticket), bytes.fromhex(conn["hello"]), bytes.fromhex(conn["nonce_p"]))
    out = []
    for i, (m, r) in enumerate(zip(conn["messages"], conn["responses"])):
        m = bytes.fromhex(m)
        f = Auth.decode(m) if i == 0 else OpFrame.decode(m)
        assert (ps.auth(f.op, f.args) if i == 0 else ps.op(f.op, f.args)) == m
        try:
            out.append(ps.read(bytes.fromhex(r)))
        except ProtocolError as e:
            out.append(e)
    return out


def test_sessions_verify_on_host(fv):
    s = fv["sessions"]
    keys = _keys(s)
    c = [_replay(keys, conn) for conn in s["connections"]]
    codes = [[r.code if isinstance(r, ProtocolError) else Err.OK for r in conn] for conn in c]
    assert codes == [[Err.OK] * 3, [Err.NO_RIGHT], [Err.EXPIRED], [Err.OK, Err.OK], [Err.OK, Err.OK],
                     [Err.WRONG_EPOCH], [Err.OK, Err.OK]]
    assert c[0][0].payload == b"\x03"  # UNLOCKED
    assert StateBlock.decode(c[0][1].payload).bolt == 3
    assert c[3][0].payload == b"\x01\x00\x00\x00\x0a"
    assert c[5][0].detail == 2
    # the re-key proof verifies only against the new epoch's keys
    proof = c[4][1].payload
    assert verify_rekey_proof(keys[2], proof)
    assert not verify_rekey_proof(keys[1], proof)


def test_journal_exports_decrypt_and_chain(fv):
    s = fv["sessions"]
    keys = _keys(s)
    conns = s["connections"]
    before = open_chunk(keys, _replay(keys, conns[3])[1].payload)
    assert before.epoch == 1 and before.first_seq == 1
    assert before.prev_chain == chain_genesis(keys[1].jm, keys[1].lock_id)
    assert verify_chain(keys, before.prev_chain, before.records, 1) == 1
    after = _replay(keys, conns[6])
    first, second = (open_chunk(keys, r.payload) for r in after)
    assert first.epoch == 2 and first.first_seq == 1 and len(first.records) == 4
    assert second.first_seq == 5 and second.prev_chain == first.records[-1].chain
    records = first.records + second.records
    assert [r.seq for r in records] == list(range(1, first.head_seq + 1))
    assert verify_chain(keys, first.prev_chain, records, 1) == 2
    events = [(r.event_name, r.user_id, r.ticket_id) for r in records]
    assert events[0] == ("PROVISIONED", 0, 0)
    assert ("UNLOCK", 511, 11) in events and ("LOCK", 511, 11) in events
    assert ("DENIED", 513, 13) in events  # the expired ticket, with the claimed user
    assert [r.arg for r in records if r.event == Event.REKEYED] == [2]
    # the records before the export in epoch 1 are the same records
    assert records[:len(before.records)] == before.records
    # a single changed record breaks the chain at that record
    bad = list(records)
    bad[4] = type(bad[4])(**{**bad[4].__dict__, "user_id": bad[4].user_id ^ 1})
    with pytest.raises(ProtocolError) as e:
        verify_chain(keys, first.prev_chain, bad, 1)
    assert e.value.code == Err.BAD_MAC and e.value.detail == 5


def test_altered_firmware_answers_rejected(fv):
    s = fv["sessions"]
    keys = _keys(s)
    conn = dict(s["connections"][0])
    resp = bytearray.fromhex(conn["responses"][0])
    for i in range(len(resp)):
        altered = bytearray(resp)
        altered[i] ^= 0x01
        conn["responses"] = [altered.hex()] + s["connections"][0]["responses"][1:]
        r = _replay(keys, conn)[0]
        assert isinstance(r, ProtocolError), i


if __name__ == "__main__":
    FILE.write_text(generate())
    print(f"wrote {FILE}")
