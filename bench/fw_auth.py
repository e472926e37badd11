# Runs under MicroPython: lock-side cost of one AUTH+UNLOCK versus one bare HMAC.
# usage: micropython fw_auth.py time N | alloc | once
import sys
import gc
import time
import struct
from fakelock import FakeLock  # first: a compact heap (imports compile source)
import lockcrypto
import locksession

_MASTER = bytes(range(32))
_LOCK_ID = b"\x10\x11\x12\x13\x14\x15\x16\x17"
_NOW = 1700000000
_NONCE_L = b"\xa5" * 16
_NONCE_P = b"\x5a" * 16


def _ticket():
    # format, lock, epoch, ticket, user, nb, na, iat, rights, window, tz
    return struct.pack(">B8sIIIIIIBHHBh", 1, _LOCK_ID, 1, 77, 5, _NOW - 600, _NOW + 3600,
                       _NOW - 600, 3, 0, 0, 0, 0)


def _auth(lock, hello):
    # the phone's work, done outside the timed part
    ticket = _ticket()
    k_t = lockcrypto.hmac_sha256(lock.keys.tk, ticket)
    k_s = lockcrypto.hmac_sha256(k_t, b"LK1/session\x00" + _NONCE_L + _NONCE_P)
    body = b"\x02\x01" + ticket + _NONCE_P + b"\x01"
    return body + lockcrypto.mac16(k_s, b"P" + struct.pack(">I", 0) + lockcrypto.sha256(hello) + body)


def _prepare(lock):
    # The AUTH covers the HELLO, whose state block changes with every unlock: peek
    # at the next HELLO (same nonce, same state) to build the matching AUTH.
    return _auth(lock, locksession.LockSession(lock).hello())


def _unlock(lock, auth):
    s = locksession.LockSession(lock)
    s.hello()
    resp = s.handle(auth)
    if resp[0] != 3 or resp[6] != 0:
        raise SystemExit("unlock refused: %s" % resp)
    return resp


def main():
    mode = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    lock = FakeLock(_MASTER, _LOCK_ID, 1, now=_NOW, nonces=[_NONCE_L] * (2 * n + 2))
    if mode == "once":
        _unlock(lock, _prepare(lock))
        print("OK")
    elif mode == "alloc":
        auth = _prepare(lock)
        gc.collect()
        gc.disable()
        before = gc.mem_alloc()
        _unlock(lock, auth)
        print(gc.mem_alloc() - before)
    elif mode == "time":
        key = _MASTER
        msg = bytes(range(64))
        t0 = time.ticks_us()
        for _ in range(n):
            lockcrypto.hmac_sha256(key, msg)
        t_hmac = time.ticks_diff(time.ticks_us(), t0)
        t_auth = 0
        for _ in range(n):
            auth = _prepare(lock)
            t0 = time.ticks_us()
            _unlock(lock, auth)
            t_auth += time.ticks_diff(time.ticks_us(), t0)
        print("%d %d %d" % (n, t_hmac, t_auth))


main()
