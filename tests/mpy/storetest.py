# Runs under MicroPython: harness for the journal logic and key slots.
import lockjournal
import lockkeys
import lockcrypto
from binascii import hexlify

_LOCK = b"LK\x00\x00\x00\x00\x00\x07"


def _h(b):
    return hexlify(bytes(b)).decode()


def journal_run(capacity, ops, master=bytes(range(32))):
    # ops: ["a", event] append, ["r", from, n] read, ["k", seq, chain_hex or None] ack
    keys = lockcrypto.LockKeys(master, _LOCK, 1)
    j = lockjournal.Journal(lockjournal.RamRecords(capacity), _LOCK, keys.jm)
    out = []
    t = 1000
    for op in ops:
        if op[0] == "a":
            t += 1
            j.append(keys.jm, t, op[1], arg=op[2] if len(op) > 2 else 0)
            out.append([j.head, j.store.count(), j.lost])
        elif op[0] == "r":
            first, recs, head, prev = j.read(op[1], op[2])
            out.append([first, [_h(r) for r in recs], head, _h(prev)])
        elif op[0] == "k":
            chain = op[2]
            if chain is None:
                first = j.first_seq()
                chain = _h(j.store.get(op[1] - first)[24:]) if first <= op[1] <= j.head else "00" * 8
            from binascii import unhexlify
            st, acked = j.ack(op[1], unhexlify(chain))
            out.append([st, acked, j.store.count()])
    return out


def keys_run(steps):
    kv = lockkeys.RamKV()
    out = []
    for s in steps:
        if s[0] == "provision":
            lockkeys.KeyStore(kv, _LOCK).provision(s[1], bytes([s[2]]) * 32)
        elif s[0] == "install":
            ks = lockkeys.KeyStore(kv, _LOCK)
            out.append(ks.install(s[1], bytes([s[2]]) * 32))
        elif s[0] == "corrupt":
            blob = bytearray(kv.load(s[1].encode()))
            blob[s[2]] ^= 1
            kv.save(s[1].encode(), blob)
        elif s[0] == "load":
            ks = lockkeys.KeyStore(kv, _LOCK)
            out.append(None if ks.keys is None else [ks.keys.epoch, _h(ks.keys.tk)])
    return out
