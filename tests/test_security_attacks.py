"""Attacks on the whole door unit (lockapp.DoorUnit on the simulator HAL, under the real
MicroPython) that docs/security.md lists and no other test covers: deny-list rollback with
a genuine older list, re-key replay and rollback across power cuts, a carer's ticket used
for the admin operations, and keys that must be random per lock."""

from __future__ import annotations

import secrets

import pytest

import mpyhost
from lockproto import DenyKind, Err, Op, PhoneSession, ProtocolError, Right
from lockproto.crypto import aes_key_unwrap
from lockproto.issuer import deny_list, rekey_pair
from lockproto.provision import factory_reset_statement
from test_app_unit import KEYS, MASTER, ROOT, Unit, uid

pytestmark = pytest.mark.mpy

CARER = Right.UNLOCK | Right.LOCK | Right.JOURNAL


@pytest.fixture(scope="module")
def w():
    with mpyhost.Worker(["apptest"], paths=[ROOT / "tests" / "mpy"], heapsize="4m") as worker:
        worker.call("apptest.bench", str(ROOT / "boards"))
        yield worker


def test_a_genuine_older_deny_list_cannot_roll_back_a_revocation(w):
    """A hostile phone kept yesterday's server-signed list (v6, without the revocation) and
    relays it after v7 revoked user 42, also after a power cut: STALE, still revoked."""
    u = Unit(w, uid())
    now = u.status["now"]
    old = deny_list(KEYS, 6, [])
    new = deny_list(KEYS, 7, [(DenyKind.USER, 42, now + 86400)])
    other = u.ticket(user_id=43)
    assert u.connect(other, [(Op.DENY_UPDATE, old)])[0].status == Err.OK
    assert u.connect(other, [(Op.DENY_UPDATE, new)])[0].status == Err.OK
    for cut in (False, True):
        if cut:
            u.call("power_cut", 0)
        assert u.connect(other, [(Op.DENY_UPDATE, old)]) == [Err.STALE]
        assert u.connect(other, [(Op.DENY_UPDATE, new)]) == [Err.STALE]   # the same version again
        assert u.status["deny"] == 7
        assert u.connect(u.ticket(), [(Op.UNLOCK, b"")]) == [Err.REVOKED]
    assert u.status["motor_ms"] == 0


def test_rekey_replay_and_rollback_are_refused_across_power_cuts(w):
    u = Unit(w, uid())
    to2, keys2 = rekey_pair(KEYS, bytes(range(1, 33)))
    to3_old, _ = rekey_pair(KEYS, bytes(range(2, 34)), 3)   # a genuine epoch-1 statement for epoch 3
    assert u.connect(u.ticket(), [(Op.REKEY, to2)])[0].payload[:4] == (2).to_bytes(4, "big")
    u.call("power_cut", 0)
    u.keys = keys2
    t2 = u.ticket()
    assert u.connect(t2, [(Op.REKEY, to2)]) == [Err.STALE]          # replayed: the epoch is not newer
    assert u.connect(t2, [(Op.REKEY, to3_old)]) == [Err.BAD_MAC]    # MACed under the old epoch's K_sv
    u.call("power_cut", 0)
    assert u.status["epoch"] == 2
    u.keys = KEYS
    assert u.connect(u.ticket(), [(Op.UNLOCK, b"")]) == [Err.WRONG_EPOCH]   # no way back to epoch 1
    u.keys = keys2
    assert u.connect(u.ticket(), [(Op.UNLOCK, b"")])[0].status == Err.OK


def test_a_carers_ticket_cannot_configure_or_factory_reset(w):
    """Scope confusion: a genuine carer ticket (UNLOCK, LOCK, JOURNAL) asks for the ADMIN
    operations, even with the server's genuine factory-reset consent for this connection."""
    u = Unit(w, uid())
    raw, k_t = u.ticket(rights=CARER)
    ps = PhoneSession(raw, k_t, u.call("hello"))
    consent = factory_reset_statement(KEYS, ps.hello.nonce)
    out = []
    for i, (op, args) in enumerate([(Op.CONFIG, bytes([3])), (Op.CONFIG, bytes([3]) + (1000).to_bytes(4, "big")),
                                    (Op.FACTORY_RESET, consent), (Op.NOP, b"")]):
        msg = ps.auth(op, args) if i == 0 else ps.op(op, args)
        try:
            out.append(ps.read(u.call("handle", msg)).status)
        except ProtocolError as e:
            out.append(e.code)
    assert out == [Err.NO_RIGHT, Err.NO_RIGHT, Err.NO_RIGHT, Err.OK]
    st = u.status
    assert st["provisioned"] and st["epoch"] == 1 and st["motor_ms"] == 0
    # the carer's SET did not happen: an admin ticket reads the setting unchanged
    res = u.connect(u.ticket(rights=Right.ADMIN), [(Op.CONFIG, bytes([3]))])[0]
    assert res.status == Err.OK and res.payload != bytes([3]) + (1000).to_bytes(4, "big")


def test_lock_keys_are_random_per_lock_never_derived_from_public_data():
    """Every place that makes a K_L draws it from the OS's random source: the same lock id
    registered twice gets two keys, no two locks share one, and a re-key's new key (opened
    here with the old epoch's wrap key) is fresh too."""
    from provisioning import keysource as prov_ks
    from simulator.keysource import LocalIssuer

    iss = LocalIssuer()
    masters = [iss.register(f"L{i}")[2] for i in range(50)]
    assert len(set(masters)) == 50
    iss2 = LocalIssuer()
    assert iss2.register("L0")[2] != masters[0]                # a name, or a lock id, does not fix the key
    # the key server's re-key key and the CLI's registration key come from the OS's randomness
    seen = set()
    for _ in range(20):
        msg, new = rekey_pair(KEYS, secrets.token_bytes(32))
        k = aes_key_unwrap(KEYS.wr, msg[4:44])
        assert k not in seen and k != MASTER
        seen.add(k)
    import inspect
    src = inspect.getsource(prov_ks.KeyServerSource.register if hasattr(prov_ks, "KeyServerSource") else prov_ks)
    assert "secrets.token_bytes(32)" in src
