# Runs under MicroPython: vectors produced by the firmware, for the host side to
# check (tests/test_fw_vectors.py). Deterministic: fixed keys, nonces and clock.
# usage: micropython fwvectors.py  -> JSON on stdout
import sys
import json
import struct
from binascii import hexlify
import lockcodes as C
import lockcrypto
import locksession
import lockwire
from fakelock import FakeLock

_NOW = 1767225600
_LOCK_ID = b"LK\xf0\x00\x00\x00\x00\x01"
_MASTER = bytes(range(1, 33))
_MASTER_2 = bytes(range(33, 65))
_TICKET = ">B8sIIIIIIBHHBh"


def _h(b):
    return hexlify(bytes(b)).decode()


def _det(seed, n):
    # deterministic bytes: SHA-256 in counter mode over a seed
    out = b""
    i = 0
    while len(out) < n:
        out += lockcrypto.sha256(seed + struct.pack(">I", i))
        i += 1
    return out[:n]


def _nonce(i):
    return _det(b"nonce", 16 * (i + 1))[16 * i:]


def primitives():
    hm = []
    for klen, mlen in ((0, 0), (1, 3), (32, 64), (64, 55), (65, 56), (131, 200), (200, 1)):
        k, m = _det(b"k%d" % klen, klen), _det(b"m%d" % mlen, mlen)
        hm.append([_h(k), _h(m), _h(lockcrypto.hmac_sha256(k, m))])
    wraps = []
    for klen, plen in ((16, 16), (16, 32), (32, 16), (32, 32), (32, 64)):
        kek, key = _det(b"kek%d" % klen, klen), _det(b"key%d" % plen, plen)
        wraps.append([_h(kek), _h(key), _h(lockcrypto.aes_key_wrap(kek, key))])
    ctr = []
    for n in (0, 1, 16, 17, 32, 100):
        key, pre, data = _det(b"ck", 32), _det(b"cp%d" % n, 12), _det(b"cd%d" % n, n)
        ctr.append([_h(key), _h(pre), _h(data), _h(lockcrypto.aes_ctr(key, pre, data))])
    keys = lockcrypto.LockKeys(_MASTER, _LOCK_ID, 3)
    derived = {"master": _h(_MASTER), "lock_id": _h(_LOCK_ID), "epoch": 3,
               "keys": {"ticket": _h(keys.tk), "journal-mac": _h(keys.jm), "journal-enc": _h(keys.je),
                        "wrap": _h(keys.wr), "server": _h(keys.sv)}}
    return {"hmac": hm, "wrap": wraps, "ctr": ctr, "derive": derived}


class _Phone:
    # The phone's half, from the firmware modules (the host checks it independently).
    def __init__(self, keys, ticket, hello, nonce_p):
        self.ticket = ticket
        self.nonce_p = nonce_p
        self.hh = lockcrypto.sha256(hello)
        k_t = lockcrypto.ticket_key(keys.tk, ticket)
        self.ks = lockcrypto.session_key(k_t, hello[15:31], nonce_p)
        self.ctr = 0

    def auth(self, op, args=b""):
        body = lockwire.encode_auth_body(1, self.ticket, self.nonce_p, op, args)
        return body + lockcrypto.fmac(self.ks, C.DIR_PHONE, 0, self.hh + body)

    def op(self, op, args=b""):
        self.ctr += 1
        body = lockwire.encode_op_body(self.ctr, op, args)
        return body + lockcrypto.fmac(self.ks, C.DIR_PHONE, self.ctr, body)


def _ticket(tid, rights, nb=_NOW - 600, na=_NOW + 3600, epoch=1):
    return struct.pack(_TICKET, 1, _LOCK_ID, epoch, tid, 500 + tid, nb, na, nb, rights, 0, 0, 0, 0)


def sessions():
    # One lock lives through a day: unlock, lock, refusals, a deny update, a
    # journal export, a re-key, and the old epoch refused afterwards.
    lock = FakeLock(_MASTER, _LOCK_ID, 1, now=_NOW, nonces=[_nonce(i) for i in range(40)])
    conns = []
    step = [0]

    def connect(ticket, ops, keys=None):
        s = locksession.LockSession(lock)
        k = keys or lock.keys
        hello = s.hello()
        nonce_p = _det(b"np%d" % step[0], 16)
        step[0] += 1
        ph = _Phone(k, ticket, hello, nonce_p)
        msgs, resps = [], []
        for i, (op, args) in enumerate(ops):
            m = ph.auth(op, args) if i == 0 else ph.op(op, args)
            msgs.append(m)
            resps.append(s.handle(m))
        conns.append({"epoch": k.epoch, "ticket": _h(ticket), "nonce_p": _h(nonce_p), "hello": _h(hello),
                      "messages": [_h(m) for m in msgs], "responses": [_h(r) for r in resps]})
        lock.advance(60)

    carer = _ticket(11, C.R_UNLOCK | C.R_LOCK)
    office = _ticket(12, C.R_UNLOCK | C.R_LOCK | C.R_JOURNAL | C.R_ADMIN)
    connect(carer, [(C.OP_UNLOCK, b""), (C.OP_STATUS, b""), (C.OP_LOCK, b"")])
    connect(carer, [(C.OP_CONFIG, b"\x01")])                               # NO_RIGHT
    connect(_ticket(13, C.R_UNLOCK, nb=_NOW - 7200, na=_NOW - 3600), [(C.OP_UNLOCK, b"")])  # EXPIRED
    connect(office, [(C.OP_CONFIG, b"\x01\x00\x00\x00\x0a"), (C.OP_JOURNAL_READ, struct.pack(">IB", 1, 16))])
    conns_before_rekey = len(conns)
    keys1 = lock.keys
    # the server's re-key message is made by the host side; here the firmware
    # only answers it: wrap under the old wrap key, MAC under the old server key
    wrapped = lockcrypto.aes_key_wrap(keys1.wr, _MASTER_2)
    mac = lockcrypto.mac16(keys1.sv, b"LK1/rekey\x00" + _LOCK_ID + struct.pack(">II", 1, 2) + wrapped)
    connect(office, [(C.OP_NOP, b""), (C.OP_REKEY, struct.pack(">I", 2) + wrapped + mac)])
    connect(carer, [(C.OP_UNLOCK, b"")], keys=keys1)                       # WRONG_EPOCH
    office2 = _ticket(14, C.R_UNLOCK | C.R_LOCK | C.R_JOURNAL, epoch=2)
    connect(office2, [(C.OP_JOURNAL_READ, struct.pack(">IB", 1, 4)),
                      (C.OP_JOURNAL_READ, struct.pack(">IB", 5, 16))])
    return {"master": _h(_MASTER), "master_2": _h(_MASTER_2), "lock_id": _h(_LOCK_ID),
            "rekey_at": conns_before_rekey, "connections": conns}


print(json.dumps({"about": "generated by tests/mpy/fwvectors.py under MicroPython; do not edit by hand",
                  "primitives": primitives(), "sessions": sessions()}))
