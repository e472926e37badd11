"""The serial maintenance transport (firmware/lib/lockserial.py, protocol §3.2, §4.1, §9)
under the real MicroPython: in-memory streams (tests/mpy/transporttest.py) and a real pty
with pyserial on the host side (tests/mpy/serialpty.py)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

import mpyhost
from fwref import LOCK_ID, MASTER, NOW
from lockproto import LockKeys, Op, PhoneSession, Right, issue_ticket
from lockproto.fragment import FrameDecoder, encode_frame

pytestmark = pytest.mark.mpy

ROOT = Path(__file__).resolve().parent.parent
PATHS = [ROOT / "tests" / "mpy", ROOT / "simulator" / "sim_aioble"]
NONCES = [b"\xa5" * 16, b"\x5a" * 16, b"\x3c" * 16]
HELLO_REQ = encode_frame(b"\x01")
T_HELLO, T_RESULT, T_ERROR = 1, 3, 5
NO_SESSION, TIMEOUT, UNKNOWN_TYPE = 17, 26, 3
B_UNLOCKED = 3


@pytest.fixture(scope="module")
def mpy():
    w = mpyhost.Worker(["transporttest"], paths=PATHS, heapsize="2m")
    try:
        yield w
    finally:
        w.close()


def cfg(**link):
    return {"master": MASTER, "lock_id": LOCK_ID, "now": NOW, "nonces": list(NONCES), "link": link}


def ticket(rights=Right.UNLOCK):
    keys = LockKeys.from_master(MASTER, LOCK_ID, 1)
    t, k_t = issue_ticket(keys, ticket_id=9, user_id=3, not_before=NOW - 60, not_after=NOW + 3600,
                          issued_at=NOW - 60, rights=rights)
    return t.encode(), k_t


def run(mpy, steps, c=None):
    out = mpy.call("transporttest.serial", c or cfg(), steps)
    assert out["stopped"]
    return out["steps"], out["lock"]


def only_frames(raw, msgs):
    # everything the lock wrote is exactly these frames, back to back
    assert raw == b"".join(encode_frame(m) for m in msgs)


def test_framed_auth_gets_framed_result(mpy):
    c = cfg()
    hello = mpy.call("transporttest.hello_of", c)
    raw_ticket, k_t = ticket()
    ps = PhoneSession(raw_ticket, k_t, hello)
    auth = ps.auth(Op.UNLOCK)
    steps, lock = run(mpy, [{"tx": HELLO_REQ}, {"rx": 200}, {"tx": encode_frame(auth)}, {"rx": 200}], c)
    assert steps[1] == [hello]
    (result,) = steps[3]
    assert ps.read(result).payload == bytes([B_UNLOCKED])
    assert lock["actuations"] == [[Op.UNLOCK, 9]]
    only_frames(lock["raw"], [hello, result])


def test_auth_in_pieces_and_garbage_between_frames(mpy):
    c = cfg()
    hello = mpy.call("transporttest.hello_of", c)
    raw_ticket, k_t = ticket()
    ps = PhoneSession(raw_ticket, k_t, hello)
    frame = encode_frame(ps.auth(Op.UNLOCK))
    bad_crc = bytearray(encode_frame(b"\x04" + bytes(30)))
    bad_crc[-1] ^= 1
    steps, lock = run(mpy, [
        {"tx": b"\x00garbage LK\xff\xffL"}, {"tx": HELLO_REQ + b"\r\n>>> "}, {"rx": 200},
        {"tx": bytes(bad_crc)}, {"tx": b"LK\x00\x00"}, {"rx": 100},      # dropped, no answer
        {"tx": b"noise" + frame[:10]}, {"tx": frame[10:40]}, {"tx": frame[40:] + b"LL"}, {"rx": 200},
    ], c)
    assert steps[2] == [hello]
    assert steps[5] == []
    (result,) = steps[9]
    assert ps.read(result).payload == bytes([B_UNLOCKED])
    only_frames(lock["raw"], [hello, result])


def test_run_until_stopped(mpy):
    c = cfg()
    c["run"] = True
    steps, lock = run(mpy, [{"tx": HELLO_REQ}, {"rx": 100}], c)
    assert [m[0] for m in steps[1]] == [T_HELLO]


def test_hello_request_starts_a_fresh_session_each_time(mpy):
    steps, lock = run(mpy, [{"tx": HELLO_REQ}, {"rx": 100}, {"tx": HELLO_REQ + HELLO_REQ}, {"rx": 100}])
    hellos = steps[1] + steps[3]
    assert [h[0] for h in hellos] == [T_HELLO] * 3
    assert [h[15:31] for h in hellos] == NONCES
    assert lock["log"] == ["new", "close"] + ["new", "hello", "close"] * 3


def test_messages_without_hello(mpy):
    raw_ticket, k_t = ticket()
    fake_hello = bytes([1, 1, 1]) + LOCK_ID + bytes(4 + 16 + 3 + 21)
    auth = PhoneSession(raw_ticket, k_t, fake_hello).auth(Op.UNLOCK)
    steps, lock = run(mpy, [{"tx": encode_frame(auth)}, {"rx": 100},
                            {"tx": encode_frame(b"\x01\x00")}, {"rx": 100}])
    assert steps[1] == [bytes([T_ERROR, NO_SESSION, 0, 0, 0, 0])]
    assert steps[3] == [bytes([T_ERROR, UNKNOWN_TYPE, 0, 0, 0, 0])]  # a HELLO sent to the lock
    assert lock["actuations"] == []


def test_session_timeout_after_hello(mpy):
    c = cfg(hello_ms=150)
    hello = mpy.call("transporttest.hello_of", c)
    raw_ticket, k_t = ticket()
    auth = PhoneSession(raw_ticket, k_t, hello).auth(Op.UNLOCK)
    steps, lock = run(mpy, [{"tx": HELLO_REQ}, {"rx": 400}, {"tx": encode_frame(auth)}, {"rx": 100}], c)
    assert steps[1] == [hello, bytes([T_ERROR, TIMEOUT, 0, 0, 0, 0])]
    assert steps[3] == [bytes([T_ERROR, NO_SESSION, 0, 0, 0, 0])]  # too late: the session is gone
    assert lock["actuations"] == []


def test_stalled_frame_is_dropped(mpy):
    c = cfg(frag_ms=100)
    frame = HELLO_REQ
    steps, lock = run(mpy, [{"tx": frame[:4]}, {"sleep": 250}, {"tx": frame[4:]}, {"rx": 100},
                            {"tx": frame}, {"rx": 100}], c)
    assert steps[3] == []
    assert [m[0] for m in steps[5]] == [T_HELLO]


# ---- a real pty, pyserial on the host side ----

def test_over_a_pty_with_pyserial():
    serial = pytest.importorskip("serial")
    master, slave = os.openpty()
    path = os.ttyname(slave)
    env = mpyhost._env(PATHS)
    proc = subprocess.Popen(
        [mpyhost.micropython_binary(), "-X", "heapsize=512k", str(ROOT / "tests" / "mpy" / "serialpty.py"),
         MASTER.hex(), LOCK_ID.hex(), str(NOW)],
        stdin=master, stdout=master, stderr=subprocess.PIPE, env=env)
    os.close(master)
    port = None
    try:
        port = serial.Serial(path, 115200, timeout=0.2)
        os.close(slave)
        slave = None
        dec = FrameDecoder()

        def receive(n=1, within=5.0):
            got, end = [], time.monotonic() + within
            while len(got) < n and time.monotonic() < end:
                got += dec.feed(port.read(256))
            return got

        port.write(b"junk" + HELLO_REQ)
        (hello,) = receive()
        assert hello[0] == T_HELLO and hello[3:11] == LOCK_ID
        raw_ticket, k_t = ticket()
        ps = PhoneSession(raw_ticket, k_t, hello)   # built live from the HELLO just read
        port.write(encode_frame(ps.auth(Op.UNLOCK)))
        (result,) = receive()
        assert ps.read(result).payload == bytes([B_UNLOCKED])
        port.write(HELLO_REQ)
        (hello2,) = receive()
        assert hello2[15:31] != hello[15:31]
        port.reset_input_buffer()
        assert port.read(64) == b""   # nothing but frames, and nothing unasked
    finally:
        if port is not None:
            port.close()
        if slave is not None:
            os.close(slave)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        err = proc.stderr.read().decode()
        proc.stderr.close()
    assert err == ""
