"""Provisioning, sessions and factory reset over the maintenance cable (protocol §3.4).

A whole simulated door unit (tests/mpy/unitpty.py: DoorUnit on the sim HAL under the
real MicroPython, its serial link wired as on a unit) sits behind a real pty; the
provisioning library talks to it through pyserial.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

import mpyhost
from lockproto import (Bolt, Err, Flag, LockKeys, Op, Right, factory_reset_statement, issue_ticket, journal_ack,
                       open_chunk, provision_message, verify_chain)
from provisioning import LockClient, LockError, SerialTransport
from provisioning.client import Ticket
from ptyunit import on_pty

pytestmark = pytest.mark.mpy
serial = pytest.importorskip("serial")

ROOT = Path(__file__).resolve().parent.parent
LOCK_ID = bytes.fromhex("4c4b00000000c0de")
MASTER = bytes(range(40, 72))
NOW = int(time.time())
KEYS = LockKeys.from_master(MASTER, LOCK_ID, 1)


@pytest.fixture
def unit():
    """A factory-fresh simulated unit on a pty; yields the slave path."""
    cmd = [mpyhost.micropython_binary(), "-X", "heapsize=2m", str(ROOT / "tests" / "mpy" / "unitpty.py"),
           str(ROOT / "boards")]
    with on_pty(cmd, env=mpyhost._env([ROOT / "tests" / "mpy"])) as (path, _):
        yield path


def client(path) -> LockClient:
    return LockClient(SerialTransport(path, timeout=5.0))


def ticket(rights=Right.UNLOCK | Right.LOCK, keys=KEYS, **over) -> Ticket:
    f = dict(ticket_id=11, user_id=7, not_before=NOW - 60, not_after=NOW + 3600, issued_at=NOW - 60, rights=rights)
    f.update(over)
    t, k = issue_ticket(keys, **f)
    return Ticket(t.encode(), k)


def raw_exchange(c: LockClient, msg: bytes, hello_first=True) -> bytes:
    if hello_first:
        c.transport.hello()
    return c.transport.request(msg)


def test_factory_unit_is_provisioned_over_the_cable_and_then_unlocks(unit):
    c = client(unit)
    try:
        h = c.hello()
        assert h.state.flags & Flag.FACTORY and h.epoch == 0 and h.lock_id == bytes(8)
        h = c.provision(LOCK_ID, 1, MASTER, NOW)
        assert h.lock_id == LOCK_ID and h.epoch == 1 and not h.state.flags & Flag.FACTORY
        assert not h.state.flags & Flag.TIME_UNCERTAIN  # the server's time came with the key
        assert c.unlock(ticket()) == Bolt.UNLOCKING
        # a second PROVISION is refused: the key cannot be replaced over the cable
        with pytest.raises(LockError) as e:
            c.provision(LOCK_ID, 2, bytes(32), NOW)
        assert e.value.code == Err.PROVISIONED
        resp = raw_exchange(c, provision_message(LOCK_ID, 2, bytes(32), NOW))
        assert resp[0] == 5 and resp[1] == Err.PROVISIONED
        assert c.hello().epoch == 1
    finally:
        c.close()


@pytest.mark.parametrize("mutate,code", [
    (lambda m: m[:-1], Err.MALFORMED),                         # one byte short
    (lambda m: m[:1] + b"\x02" + m[2:], Err.UNSUPPORTED_VERSION),  # format 2
    (lambda m: m[:2] + bytes(8) + m[10:], Err.MALFORMED),      # all-zero lock id
    (lambda m: m[:10] + bytes(4) + m[14:], Err.MALFORMED),     # epoch 0
])
def test_bad_provision_messages_are_refused_and_change_nothing(unit, mutate, code):
    c = client(unit)
    try:
        resp = raw_exchange(c, mutate(provision_message(LOCK_ID, 1, MASTER, NOW)))
        assert resp[0] == 5 and resp[1] == code
        assert c.hello().state.flags & Flag.FACTORY
    finally:
        c.close()


def test_provision_needs_a_hello_on_the_connection(unit):
    c = client(unit)
    try:
        c.hello()
        c.transport.request(b"\x00")           # any message ends the HELLO's connection state
        resp = c.transport.request(provision_message(LOCK_ID, 1, MASTER, NOW))
        assert resp[0] == 5 and resp[1] == Err.NO_SESSION
        assert c.hello().state.flags & Flag.FACTORY
    finally:
        c.close()


def _pull_and_ack(c: LockClient, t: Ticket) -> None:
    chunks = [open_chunk({1: KEYS}, p) for p in c.journal_chunks(t)]
    records = [r for ch in chunks for r in ch.records]
    assert verify_chain({1: KEYS}, chunks[0].prev_chain, records, 1) == 1
    last = records[-1]
    c.relay(t, Op.JOURNAL_ACK, journal_ack(KEYS, last.seq, last.chain), "acknowledging")


def test_factory_reset_needs_admin_the_server_and_an_empty_backlog(unit):
    c = client(unit)
    try:
        c.provision(LOCK_ID, 1, MASTER, NOW)
        c.unlock(ticket())
        admin = ticket(rights=Right.ADMIN | Right.JOURNAL, ticket_id=12)
        make = lambda nonce: factory_reset_statement(KEYS, nonce)  # noqa: E731
        with pytest.raises(LockError) as e:  # no ADMIN right
            c.with_statement(ticket(ticket_id=13), Op.FACTORY_RESET, make, "resetting")
        assert e.value.code == Err.NO_RIGHT
        with pytest.raises(LockError) as e:  # a statement for another connection
            c.with_statement(admin, Op.FACTORY_RESET, lambda n: factory_reset_statement(KEYS, bytes(16)), "resetting")
        assert e.value.code == Err.BAD_MAC
        with pytest.raises(LockError) as e:  # the journal is not acknowledged yet
            c.with_statement(admin, Op.FACTORY_RESET, make, "resetting")
        assert e.value.code == Err.BACKLOG
        assert c.hello().epoch == 1
        _pull_and_ack(c, admin)
        assert c.with_statement(admin, Op.FACTORY_RESET, make, "resetting") == b""
        time.sleep(1.0)  # the unit restarts into factory mode
        h = c.hello()
        assert h.state.flags & Flag.FACTORY and h.epoch == 0 and h.state.journal_head == 0
        with pytest.raises(LockError) as e:
            c.unlock(ticket())
        assert e.value.code in (Err.WRONG_LOCK, Err.FACTORY_MODE)
        # and it can be provisioned again, with a new identity and key
        keys2 = bytes(range(1, 33))
        h = c.provision(bytes.fromhex("4c4b00000000beef"), 1, keys2, NOW)
        assert h.lock_id == bytes.fromhex("4c4b00000000beef")
    finally:
        c.close()


# ---- the lockctl command line, against the same unit ----

def lockctl(*args, issuer=None):
    import sys
    cmd = [sys.executable, "-m", "provisioning"] + list(args[:1]) + (["--issuer", str(issuer)] if issuer else []) \
        + list(args[1:])
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=60)


def test_lockctl_day_of_a_lock(unit, tmp_path):
    issuer = tmp_path / "issuer.json"
    port = f"--port={unit}"
    r = lockctl(port, "hello")
    assert r.returncode == 0 and "factory" in r.stdout, r.stderr
    r = lockctl(port, "unlock", issuer=issuer)
    assert r.returncode == 1 and r.stderr.startswith("lockctl: ") and "FACTORY_MODE" in r.stderr
    r = lockctl(port, "provision", "door-1", issuer=issuer)
    assert r.returncode == 0, r.stderr
    state = issuer.read_text()
    master_hex = __import__("json").loads(state)["locks"]
    (entry,) = master_hex.values()
    for verb in ("hello", "unlock", "journal", "rekey", "unlock", "time-sync", "journal"):
        r = lockctl(port, verb, issuer=issuer)
        assert r.returncode == 0, (verb, r.stderr)
        assert entry["master"] not in r.stdout + r.stderr  # no key is ever printed
    r = lockctl(port, "hello")
    assert "epoch     2" in r.stdout
    r = lockctl(port, "factory-reset", issuer=issuer)
    assert r.returncode == 0, r.stderr
    time.sleep(1.0)
    r = lockctl(port, "hello")
    assert "factory" in r.stdout


def test_lockctl_user_errors_exit_1_with_a_message(tmp_path):
    r = lockctl("--port=/dev/does-not-exist", "hello")
    assert r.returncode == 1 and r.stderr.startswith("lockctl: cannot open /dev/does-not-exist")
    assert "Traceback" not in r.stderr


def test_lockctl_deny_push_revokes_a_user_at_the_lock(unit, tmp_path):
    from simulator.keysource import LocalIssuer
    issuer = tmp_path / "issuer.json"
    port = f"--port={unit}"
    assert lockctl(port, "provision", "door-2", issuer=issuer).returncode == 0
    assert lockctl(port, "--user", "7", "unlock", issuer=issuer).returncode == 0
    r = lockctl(port, "deny-push", issuer=issuer)
    assert r.returncode == 0 and "has none" in r.stdout
    li = LocalIssuer(issuer)
    li.revoke_user(7, int(time.time()) + 86400)
    li.save()
    r = lockctl(port, "deny-push", issuer=issuer)
    assert r.returncode == 0 and "deny list: version 1" in r.stdout, r.stderr
    assert "already holds version 1" in lockctl(port, "deny-push", issuer=issuer).stdout
    r = lockctl(port, "--user", "7", "unlock", issuer=issuer)
    assert r.returncode == 1 and "REVOKED" in r.stderr
    assert lockctl(port, "--user", "8", "unlock", issuer=issuer).returncode == 0
