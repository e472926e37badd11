"""The BLE transport (firmware/lib/lockble.py, protocol §3.1, §3.3, §9) under the real
MicroPython, over the fake aioble radio (simulator/sim_aioble), with in-memory locks
(tests/mpy/fakelock.py) and scripted phones (tests/mpy/transporttest.py).

Phones' AUTH and OP messages are built here with lockproto.PhoneSession from the
HELLO the lock will send (deterministic given the lock's nonces) and checked
against the HELLO the phone actually received over the radio."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

import mpyhost
from fwref import LOCK_ID, MASTER, MASTER2, NOW
from lockproto import LockKeys, Op, PhoneSession, ProtocolError, Right, issue_ticket
from lockproto.advert import Advert, scan_response

pytestmark = pytest.mark.mpy

ROOT = Path(__file__).resolve().parent.parent
PATHS = [ROOT / "tests" / "mpy", ROOT / "simulator" / "sim_aioble"]

FRAGMENT, TOO_LARGE, WRONG_LOCK, TIMEOUT = 6, 5, 7, 26
T_ERROR = 5
B_LOCKED, B_UNLOCKED = 1, 3
LOCK_ID2 = bytes.fromhex("2021222324252627")
NONCE_A = b"\xa5" * 16
NONCE_B = b"\xb6" * 16


@pytest.fixture(scope="module")
def mpy():
    w = mpyhost.Worker(["transporttest"], paths=PATHS, heapsize="2m")
    try:
        yield w
    finally:
        w.close()


def lock_cfg(lock_id=LOCK_ID, master=MASTER, nonce=NONCE_A, **link):
    return {"master": master, "lock_id": lock_id, "now": NOW, "nonces": [nonce, other(nonce)],
            "link": link}


def other(nonce):
    return bytes(b ^ 0xFF for b in nonce)


def phone_for(mpy, cfg, rights=Right.UNLOCK | Right.LOCK, ticket_id=9, keys_of=None):
    # a PhoneSession for the first HELLO of the lock built from cfg (ticket for keys_of's lock)
    src = keys_of or cfg
    keys = LockKeys.from_master(src["master"], src["lock_id"], 1)
    ticket, k_t = issue_ticket(keys, ticket_id=ticket_id, user_id=3, not_before=NOW - 60,
                               not_after=NOW + 3600, issued_at=NOW - 60, rights=rights)
    hello = mpy.call("transporttest.hello_of", cfg)
    return PhoneSession(ticket.encode(), k_t, hello, nonce_p=b"\x5a" * 16), hello


def run(mpy, locks, *phones, **cfg):
    c = {"locks": locks}
    c.update(cfg)
    out = mpy.call("transporttest.ble", c, list(phones))
    assert out["stopped"]  # BleLink.stop() ends run(), whatever it was doing
    return out["phones"], out["locks"]


def error_code(msg):
    assert msg[0] == T_ERROR and len(msg) == 6, msg
    return msg[1]


# ---- a whole session over the radio ----

@pytest.mark.parametrize("phone_mtu, lock_mtu, frag_max", [(23, 185, 20), (185, 185, 182), (185, 23, 20),
                                                           (100, 247, 97)])
def test_auth_unlock_then_op(mpy, phone_mtu, lock_mtu, frag_max):
    cfg = lock_cfg(mtu=lock_mtu)
    ps, hello = phone_for(mpy, cfg)
    auth = ps.auth(Op.UNLOCK)
    later = copy.copy(ps)   # the same session one message on: its OP has counter 1
    op = later.op(Op.LOCK)
    phones, locks = run(mpy, [cfg], {"mtu": phone_mtu, "steps": [
        {"do": "connect"}, {"do": "recv"}, {"do": "send", "msg": auth}, {"do": "recv"},
        {"do": "send", "msg": op}, {"do": "recv"}, {"do": "disconnect"}]})
    conn, got_hello, _, result, _, result2, _ = phones[0]
    assert conn["mtu"] == (None if phone_mtu == 23 else min(phone_mtu, lock_mtu))
    assert got_hello["msg"] == hello
    sizes = got_hello["sizes"] + result["sizes"] + result2["sizes"]
    assert max(sizes) <= frag_max
    assert got_hello["sizes"][0] == min(frag_max, len(hello) + 1)
    assert ps.read(result["msg"]).payload == bytes([B_UNLOCKED])
    assert later.read(result2["msg"]).payload == bytes([B_LOCKED])
    lock = locks[0]
    assert lock["actuations"] == [[Op.UNLOCK, 9], [Op.LOCK, 9]]
    assert lock["log"] == ["new", "hello", "handle", "handle", "close"]
    assert lock["peak"] == 1 and lock["connected"] == 0 and lock["dropped"] == 0


def test_lock_asks_for_mtu_when_phone_does_not(mpy):
    cfg = lock_cfg(mtu=185)
    phones, _ = run(mpy, [cfg], {"mtu": 185, "steps": [
        {"do": "connect", "exchange": False}, {"do": "recv"}, {"do": "disconnect"}]})
    assert phones[0][1]["sizes"] == [56]  # HELLO in one 185-MTU fragment: the lock exchanged


def test_many_fragments_at_mtu_23(mpy):
    # a 1024-byte message is 54 fragments at the default MTU; it must arrive whole
    # (the session refuses it as an AUTH of version 0: it was reassembled)
    cfg = lock_cfg()
    big = bytes([2]) + bytes(1023)
    phones, locks = run(mpy, [cfg], {"mtu": 23, "steps": [
        {"do": "connect"}, {"do": "recv"}, {"do": "send", "msg": big}, {"do": "recv"},
        {"do": "wait_down", "ms": 2000}]})
    assert phones[0][2] == 54
    assert error_code(phones[0][3]["msg"]) == 2  # UNSUPPORTED_VERSION (0), from the session
    assert locks[0]["dropped"] == 0 and locks[0]["actuations"] == []


# ---- fragment errors, timeouts ----

def test_fragment_out_of_order_gives_error_and_disconnect(mpy):
    cfg = lock_cfg()
    ps, _ = phone_for(mpy, cfg)
    auth = ps.auth(Op.UNLOCK)
    frags = [bytes([0x80]) + auth[:19], bytes([0x02]) + auth[19:38]]  # index 1 skipped
    phones, locks = run(mpy, [cfg], {"mtu": 23, "steps": [
        {"do": "connect"}, {"do": "recv"}, {"do": "frags", "frags": frags}, {"do": "recv"},
        {"do": "wait_down", "ms": 2000}]})
    assert error_code(phones[0][3]["msg"]) == FRAGMENT
    assert phones[0][4] is not None  # the lock hung up
    assert locks[0]["actuations"] == [] and locks[0]["bolt"] == B_LOCKED
    assert locks[0]["log"] == ["new", "hello", "close"]


def test_empty_write_gives_error_fragment(mpy):
    phones, locks = run(mpy, [lock_cfg()], {"steps": [
        {"do": "connect"}, {"do": "recv"}, {"do": "frags", "frags": [b""]}, {"do": "recv"},
        {"do": "wait_down", "ms": 2000}]})
    assert error_code(phones[0][3]["msg"]) == FRAGMENT
    assert phones[0][4] is not None


def test_oversized_message_gives_too_large(mpy):
    cfg = lock_cfg()
    frags = [bytes([0x80 | 0])] + [bytes([i]) for i in range(1, 6)]
    frags = [f + bytes(181) for f in frags]  # 6 x 181 bytes > 1024
    phones, locks = run(mpy, [cfg], {"steps": [
        {"do": "connect"}, {"do": "recv"}, {"do": "frags", "frags": frags}, {"do": "recv"},
        {"do": "wait_down", "ms": 2000}]})
    assert error_code(phones[0][3]["msg"]) == TOO_LARGE
    assert phones[0][4] is not None


def test_stalled_phone_after_hello_is_dropped(mpy):
    cfg = lock_cfg(hello_ms=300, linger_ms=100)
    phones, locks = run(mpy, [cfg], {"steps": [
        {"do": "connect"}, {"do": "recv"}, {"do": "recv", "ms": 2000}, {"do": "wait_down", "ms": 2000}]})
    assert error_code(phones[0][2]["msg"]) == TIMEOUT
    assert phones[0][3] is not None and phones[0][3] < 1000
    assert locks[0]["log"] == ["new", "hello", "close"]


def test_stall_between_fragments_uses_fragment_timeout(mpy):
    cfg = lock_cfg(hello_ms=5000, frag_ms=200, linger_ms=50)
    ps, _ = phone_for(mpy, cfg)
    auth = ps.auth(Op.UNLOCK)
    phones, locks = run(mpy, [cfg], {"mtu": 23, "steps": [
        {"do": "connect"}, {"do": "recv"}, {"do": "frags", "frags": [bytes([0x80]) + auth[:19]]},
        {"do": "recv", "ms": 2000}, {"do": "wait_down", "ms": 2000}]})
    assert error_code(phones[0][3]["msg"]) == TIMEOUT
    assert phones[0][4] is not None
    assert locks[0]["actuations"] == []


def test_whole_session_limit(mpy):
    # every OP comes well within msg_ms, but the connection ends after session_ms
    cfg = lock_cfg(hello_ms=1000, msg_ms=1000, session_ms=500, linger_ms=50)
    ps, _ = phone_for(mpy, cfg)
    steps = [{"do": "connect"}, {"do": "recv"}, {"do": "send", "msg": ps.auth(Op.NOP)}, {"do": "recv"}]
    later = copy.copy(ps)
    for _ in range(5):
        steps += [{"do": "sleep", "ms": 150}, {"do": "send", "msg": later.op(Op.NOP)},
                  {"do": "recv", "ms": 1000}]
    phones, locks = run(mpy, [cfg], {"steps": steps})
    got = [r["msg"] for r in phones[0][3::3] if "msg" in r]
    assert [m[0] for m in got[:3]] == [3, 3, 3]        # AUTH and two OPs answered
    assert error_code(got[-1]) == TIMEOUT
    assert locks[0]["log"][-1] == "close"
    assert 3 <= locks[0]["log"].count("handle") <= 4


def test_phone_hanging_up_frees_the_lock_at_once(mpy):
    # default 30 s timeouts: the lock must notice the disconnect, not wait them out
    cfg = lock_cfg()
    phones, locks = run(mpy, [cfg],
                        {"steps": [{"do": "connect"}, {"do": "recv"}, {"do": "disconnect"}]},
                        {"start_ms": 50, "steps": [{"do": "connect", "ms": 1500}, {"do": "recv"},
                                                   {"do": "disconnect"}]})
    assert phones[1][1]["msg"][15:31] == other(NONCE_A)  # the second connection's fresh HELLO
    assert locks[0]["log"] == ["new", "hello", "close", "new", "hello", "close"]


def test_write_left_over_from_an_earlier_connection_is_ignored(mpy):
    # aioble's written() is not tied to a connection: a write that arrived just before
    # a disconnect is still queued when the next phone connects
    cfg = lock_cfg(hello_ms=300, linger_ms=50)
    phones, locks = run(mpy, [cfg],
                        {"steps": [{"do": "connect"}, {"do": "recv"},
                                   {"do": "write_and_drop", "frag": bytes([0xC0, 0x09])}]},
                        {"start_ms": 50, "steps": [{"do": "connect", "ms": 1500}, {"do": "recv"},
                                                   {"do": "recv", "ms": 1000}]})
    assert phones[1][1]["msg"][0] == 1
    assert error_code(phones[1][2]["msg"]) == TIMEOUT   # not UNKNOWN_TYPE for the stale write
    assert locks[0]["log"] == ["new", "hello", "close", "new", "hello", "close"]


def test_one_connection_at_a_time(mpy):
    cfg = lock_cfg(hello_ms=600, linger_ms=50)
    phones, locks = run(mpy, [cfg],
                        {"steps": [{"do": "connect"}, {"do": "recv"}, {"do": "sleep", "ms": 300},
                                   {"do": "disconnect"}]},
                        {"start_ms": 50, "steps": [{"do": "connect", "ms": 150},
                                                   {"do": "connect", "ms": 2000}, {"do": "recv"}]})
    assert phones[1][0]["exc"] == "TimeoutError"   # busy: not advertising
    assert phones[1][2]["msg"][0] == 1               # served after the first one left
    assert locks[0]["peak"] == 1


def test_notify_retried_when_controller_is_out_of_buffers(mpy):
    cfg = lock_cfg()
    phones, _ = run(mpy, [cfg], {"mtu": 23, "steps": [{"do": "connect"}, {"do": "recv"},
                                                      {"do": "disconnect"}]}, notify_fail=3)
    assert phones[0][1]["msg"][0] == 1 and len(phones[0][1]["msg"]) == 55


@pytest.mark.parametrize("linger, delivered", [(300, True), (0, False)])
def test_last_answer_survives_the_hang_up(mpy, linger, delivered):
    # with radio latency, an ERROR notified just before the disconnect is still on air:
    # the lock lingers so the phone gets it (the fake loses it otherwise, as a real link may)
    cfg = lock_cfg(linger_ms=linger)
    phones, _ = run(mpy, [cfg], {"mtu": 23, "steps": [
        {"do": "connect"}, {"do": "recv"}, {"do": "frags", "frags": [bytes([0x81, 0])]},
        {"do": "recv", "ms": 1000}]}, latency_ms=30)
    got = phones[0][3]
    if delivered:
        assert error_code(got["msg"]) == FRAGMENT
    else:
        assert got.get("err") == "disconnected"


# ---- advertisement ----

def test_advertisement_carries_id_battery_flags_and_is_refreshed(mpy):
    cfg = lock_cfg(adv_ms=100)
    cfg["adv"] = [[87, 0x01], [55, 0x03]]
    phones, locks = run(mpy, [cfg], {"steps": [
        {"do": "sleep", "ms": 20}, {"do": "scan"}, {"do": "sleep", "ms": 200}, {"do": "scan"}]})
    first, later = phones[0][1], phones[0][3]
    assert len(first) == 1 and len(later) == 1
    a = Advert.decode(first[0][1])
    assert (a.lock_id, a.battery_pct, a.flags) == (LOCK_ID, 87, 0x01)
    b = Advert.decode(later[0][1])
    assert (b.lock_id, b.battery_pct, b.flags) == (LOCK_ID, 55, 0x03)
    assert first[0][2] == scan_response()
    assert len(first[0][1]) <= 31 and len(first[0][2]) <= 31
    assert locks[0]["adverts"] >= 2


# ---- two locks, one radio ----

def test_two_locks_do_not_cross_talk(mpy):
    a = lock_cfg(LOCK_ID, MASTER, NONCE_A)
    b = lock_cfg(LOCK_ID2, MASTER2, NONCE_B)
    pa, ha = phone_for(mpy, a, ticket_id=11)
    pb, hb = phone_for(mpy, b, ticket_id=22)
    # a third phone holds a ticket for lock A but talks to lock B
    px, _ = phone_for(mpy, b, ticket_id=33, keys_of=a)
    phones, locks = run(
        mpy, [a, b],
        {"mtu": 23, "steps": [{"do": "connect", "lock": 0}, {"do": "recv"},
                              {"do": "send", "msg": pa.auth(Op.UNLOCK), "gap_ms": 3},
                              {"do": "recv"}, {"do": "disconnect"}]},
        {"mtu": 185, "steps": [{"do": "connect", "lock": 1}, {"do": "recv"},
                               {"do": "send", "msg": pb.auth(Op.UNLOCK)}, {"do": "recv"},
                               {"do": "disconnect"}]},
        {"start_ms": 100, "steps": [{"do": "connect", "lock": 1, "ms": 3000}, {"do": "recv"},
                                    {"do": "send", "msg": px.auth(Op.UNLOCK)}, {"do": "recv"}]},
    )
    assert phones[0][1]["msg"] == ha and phones[1][1]["msg"] == hb
    assert pa.read(phones[0][3]["msg"]).payload == bytes([B_UNLOCKED])
    assert pb.read(phones[1][3]["msg"]).payload == bytes([B_UNLOCKED])
    assert error_code(phones[2][3]["msg"]) == WRONG_LOCK
    assert locks[0]["actuations"] == [[Op.UNLOCK, 11]]
    assert locks[1]["actuations"] == [[Op.UNLOCK, 22]]
    assert locks[0]["peak"] == 1 and locks[1]["peak"] == 1
    with pytest.raises(ProtocolError):
        pa.read(phones[1][3]["msg"])  # B's answer means nothing to A's phone


# ---- the fake is stricter than the real stack ----

@pytest.mark.parametrize("case, exc", [
    ("adv_long", "ValueError"), ("adv_malformed", "ValueError"), ("adv_kwargs", "NotImplementedError"),
    ("notify_long", "ValueError"), ("write_buffer", "ValueError"), ("write_mtu", "ValueError"),
    ("notify_down", "ValueError"), ("register_connected", "ValueError"),
])
def test_fake_stack_refuses(mpy, case, exc):
    assert mpy.call("transporttest.strict", case) == ["exc", exc]


def test_fake_stack_ok_path(mpy):
    assert mpy.call("transporttest.strict", "ok") == ["ok", True]
