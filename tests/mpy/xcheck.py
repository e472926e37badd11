# Runs under MicroPython: the firmware's answers to the host's test vectors
# (tests/vectors/protocol.json), and vectors the firmware produces for the host
# to check (tests/vectors/firmware.json). Hex strings in, hex strings out.
import struct
from binascii import hexlify, unhexlify
import lockcrypto
import lockticket
import lockwire
import lockfrag
import lockmsg
import lockrecord
import locksession
from lockwire import ProtoError
from fakelock import FakeLock

_TICKET = ">B8sIIIIIIBHHBh"


def _h(b):
    return hexlify(bytes(b)).decode()


def _b(s):
    return unhexlify(s)


def _keys(v, master="master", epoch="epoch"):
    return lockcrypto.LockKeys(_b(v[master]), _b(v["lock_id"]), v[epoch])


def derive(master, lock_id, epoch, labels):
    return {lab: _h(lockcrypto.derive(_b(master), lab.encode(), _b(lock_id), epoch)) for lab in labels}


def ticket(raw, tk=None):
    # -> [code, k_t, fields]
    try:
        t = lockticket.parse_ticket(_b(raw))
    except ProtoError as e:
        return [e.code, None, None]
    fields = [t.format, _h(t.lock_id), t.epoch, t.ticket_id, t.user_id, t.not_before, t.not_after,
              t.issued_at, t.rights, t.win_start, t.win_end, t.win_days, t.tz_offset]
    return [0, _h(lockcrypto.hmac_sha256(_b(tk), _b(raw))) if tk else None, fields]


def windows(cases):
    out = []
    for ws, we, days, tz, now in cases:
        raw = struct.pack(_TICKET, 1, b"\x00" * 8, 1, 1, 1, 0, 0xFFFFFFFF, 0, 1, ws, we, days, tz)
        out.append(lockticket.in_window(lockticket.parse_ticket(raw), now))
    return out


class _FixedLock(FakeLock):
    # The vector's lock: its state block is the vector's, whatever happens.
    def __init__(self, state, **kw):
        FakeLock.__init__(self, **kw)
        self._state = state

    def state_block(self):
        return self._state


class _MotorLock(_FixedLock):
    # The session vectors' lock reports the bolt as moving right after it accepts
    # UNLOCK or LOCK (the motor has started), as the real mechanism does.
    def actuate(self, op, ticket):
        status, bolt = FakeLock.actuate(self, op, ticket)
        if status == 0:
            bolt = 2 if op == 1 else 4  # B_UNLOCKING / B_LOCKING
        return status, bolt


def session(v):
    # a "sessions" case (one AUTH) or an "ops" case (AUTH then OPs)
    lock = _MotorLock(_b(v["state_block"]), master=_b(v["master"]), lock_id=_b(v["lock_id"]),
                      epoch=v["epoch"], now=v["now"], uncertain=v["time_uncertain"], nonces=[_b(v["nonce_l"])],
                      deny_version=v["deny_version"], deny=[tuple(e) for e in v["deny"]],
                      lockout=v["lockout_remaining"])
    lock.fw = tuple(v["fw"])
    s = locksession.LockSession(lock)
    hello = s.hello()
    messages = v["messages"] if "messages" in v else [v["auth"]]
    responses = [_h(s.handle(_b(m))) for m in messages]
    return {"hello": _h(hello), "responses": responses,
            "actuations": [[op, tid] for op, tid in lock.actuations]}


def _try(fn, *args):
    try:
        return [0, fn(*args)]
    except ProtoError as e:
        return [e.code, None]


def server(v):
    tt, dn, de, rk, ack = v["time_token"], v["deny"], v["deny_empty"], v["rekey"], v["ack"]
    keys = _keys(tt)
    out = {"time": _try(lockmsg.verify_time_token, keys, _b(tt["nonce_l"]), _b(tt["token"]))[1]}
    r = _try(lockmsg.verify_deny, keys, _b(dn["message"]))
    out["deny"] = [r[1][0], [list(e) for e in r[1][1]]] if r[0] == 0 else r
    r = _try(lockmsg.verify_deny, keys, _b(de["message"]))
    out["deny_empty"] = [r[1][0], [list(e) for e in r[1][1]]] if r[0] == 0 else r
    r = _try(lockmsg.open_rekey, keys, _b(rk["message"]))
    if r[0] == 0:
        new_epoch, master = r[1]
        out["rekey"] = [new_epoch, _h(master),
                        _h(lockmsg.rekey_proof(lockcrypto.LockKeys(master, keys.lock_id, new_epoch)))]
    else:
        out["rekey"] = r
    r = _try(lockmsg.verify_ack, keys, _b(ack["message"]))
    out["ack"] = [r[1][0], _h(r[1][1])] if r[0] == 0 else r
    return out


def journal(v):
    lock_id = _b(v["lock_id"])
    k1 = lockcrypto.LockKeys(_b(v["master"]), lock_id, 1)
    k2 = lockcrypto.LockKeys(_b(v["new_master"]), lock_id, 2)
    prev = lockrecord.chain_genesis(k1.jm, lock_id)
    out = {"genesis": _h(prev), "sealed": []}
    sealed = []
    epoch = 1
    for r in v["records"]:
        if r["event"] == 0x0F:
            epoch = r["arg"]
        keys = k2 if epoch == 2 else k1
        body = lockrecord.pack_body(r["seq"], r["time"], r["event"], r["flags"], r["arg16"], r["user_id"],
                                    r["ticket_id"], r["arg"])
        rec = lockrecord.seal(keys.jm, prev, body)
        sealed.append(rec)
        prev = rec[24:]
        out["sealed"].append(_h(rec))
    c = v["chunk"]
    out["chunk"] = _h(lockrecord.export_chunk(k2, c["first_seq"], sealed[2:7], c["head_seq"],
                                              _b(c["prev_chain"])))
    e = v["empty_chunk"]
    out["empty_chunk"] = _h(lockrecord.export_chunk(k2, e["first_seq"], [], e["head_seq"], _b(e["prev_chain"])))
    return out


def transport(frags, serial):
    out_f = []
    for f in frags:
        msg = _b(f["message"])
        mine = [_h(x) for x in lockfrag.fragment(msg, f["mtu"])]
        r = lockfrag.Reassembler()
        got = None
        for x in f["fragments"]:
            got = r.feed(_b(x))
        out_f.append([mine, _h(got) if got is not None else None])
    out_s = []
    for s in serial:
        d = lockfrag.FrameDecoder()
        got = d.feed(b"\x00L" + _b(s["frame"]) + b"LK\x00")
        out_s.append([_h(lockfrag.encode_frame(_b(s["message"]))), [_h(m) for m in got]])
    return [out_f, out_s]


def hello(v):
    st = v["state"]
    state = lockwire.encode_state(st["lock_time"], st["flags"], st["bolt"], st["battery_pct"],
                                  st["battery_mv"], st["journal_head"], st["journal_acked"], st["deny_version"])
    msg = lockwire.encode_hello(_b(v["lock_id"]), v["epoch"], _b(v["nonce"]), tuple(v["fw"]), state)
    return [_h(state), _h(msg), _h(lockcrypto.sha256(msg))]


def error(code, detail):
    return _h(lockwire.encode_error(code, detail))


def connections(v, conns):
    # One lock, several connections: conns = [[nonce_l, [messages...]], ...].
    # -> {"responses": [[...], ...], "actuations": [...], "epoch": final epoch}
    lock = _FixedLock(_b(v["state_block"]), master=_b(v["master"]), lock_id=_b(v["lock_id"]),
                      epoch=v["epoch"], now=v["now"], nonces=[_b(c[0]) for c in conns])
    out = []
    for nonce, msgs in conns:
        s = locksession.LockSession(lock)
        s.hello()
        out.append([_h(s.handle(_b(m))) for m in msgs])
    return {"responses": out, "actuations": [[op, tid] for op, tid in lock.actuations],
            "epoch": lock.keys.epoch}


def advertising(ads):
    import lockadv
    return [[_h(lockadv.advertisement(_b(a["lock_id"]), a["battery_pct"], a["flags"])) for a in ads],
            _h(lockadv.scan_response())]
