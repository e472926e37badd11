# Runs under MicroPython: harness functions the pytest suite calls through
# mpyhost.Worker (arguments and results are bytes, ints, lists, dicts, None).
import gc
import struct
import lockcodes as C
import lockcrypto
import lockwire
import lockticket
import lockfrag
import locksession
from lockwire import ProtoError
from fakelock import FakeLock

_TICKET_FMT = ">B8sIIIIIIBHHBh"
_FIELDS = ("format", "lock_id", "epoch", "ticket_id", "user_id", "not_before", "not_after",
           "issued_at", "rights", "win_start", "win_end", "win_days", "tz_offset")


def _plain(v):
    # results to JSON-able values
    if isinstance(v, lockticket.Ticket):
        d = {}
        for f in _FIELDS:
            d[f] = getattr(v, f)
        d["raw"] = v.raw
        return d
    if isinstance(v, lockcrypto.LockKeys):
        return keys_dict(v)
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def call(name, args):
    # name "module.function": ["ok", result] | ["err", code, detail] | ["exc", type, text]
    mod, fn = name.split(".")
    f = getattr(__import__(mod), fn)
    try:
        return ["ok", _plain(f(*args))]
    except ProtoError as e:
        return ["err", e.code, e.detail]
    except Exception as e:
        return ["exc", type(e).__name__, str(e)]


def call_many(name, arg_lists):
    return [call(name, a) for a in arg_lists]


def keys_dict(k):
    return {"tk": k.tk, "jm": k.jm, "je": k.je, "wr": k.wr, "sv": k.sv, "lock_id": k.lock_id,
            "epoch": k.epoch, "repr": repr(k)}


def lock_keys(master, lock_id, epoch):
    return keys_dict(lockcrypto.LockKeys(master, lock_id, epoch))


def kw_pyaes(kek, data, unwrap):
    # lockcrypto's RFC 3394 core over the test-only pure-Python AES (AES-192 vectors)
    import pyaes
    a = pyaes.AES(kek)
    try:
        if unwrap:
            return ["ok", lockcrypto._kw_unwrap(a.decrypt_block, data)]
        return ["ok", lockcrypto._kw_wrap(a.encrypt_block, data)]
    except ValueError as e:
        return ["exc", "ValueError", str(e)]


def reassemble(frags, times=None):
    # feed fragments in order (times: now_ms per fragment); per fragment:
    # message bytes, None, or ["err", code]
    r = lockfrag.Reassembler()
    out = []
    for i in range(len(frags)):
        f = frags[i]
        try:
            out.append(r.feed(f, times[i]) if times else r.feed(f))
        except ProtoError as e:
            out.append(["err", e.code])
    return out


def deframe(chunks, size=0):
    # feed chunks (or, with size, one stream cut into pieces of that size) to a
    # FrameDecoder: [messages per feed (flattened when size), bytes left buffered]
    d = lockfrag.FrameDecoder()
    out = []
    if size:
        s = chunks[0]
        for i in range(0, len(s), size):
            out.extend(d.feed(s[i:i + size]))
    else:
        for c in chunks:
            out.append(d.feed(c))
    return [out, len(d._buf)]


# ---- tickets and server statements (what the key server would produce) ----

def make_ticket(lock_id, now, fields=None):
    d = {"format": 1, "lock_id": lock_id, "epoch": 1, "ticket_id": 77, "user_id": 5,
         "not_before": now - 600, "not_after": now + 3600, "issued_at": now - 600,
         "rights": C.R_UNLOCK | C.R_LOCK | C.R_JOURNAL | C.R_ADMIN,
         "win_start": 0, "win_end": 0, "win_days": 0, "tz_offset": 0}
    if fields:
        for k in fields:
            d[k] = fields[k]
    return struct.pack(_TICKET_FMT, *[d[f] for f in _FIELDS])


def _u32(v):
    return struct.pack(">I", v)


def server_time(keys, nonce_l, t):
    return _u32(t) + lockcrypto.mac16(keys.sv, b"LK1/time\x00" + keys.lock_id + _u32(keys.epoch)
                                      + nonce_l + _u32(t))


def server_deny(keys, version, entries, count=None):
    body = _u32(version) + bytes((len(entries) if count is None else count,))
    for kind, ident, exp in entries:
        body += struct.pack(">BII", kind, ident, exp)
    return body + lockcrypto.mac16(keys.sv, b"LK1/deny\x00" + keys.lock_id + _u32(keys.epoch) + body)


def server_rekey(keys, new_epoch, new_master):
    wrapped = lockcrypto.aes_key_wrap(keys.wr, new_master)
    return (_u32(new_epoch) + wrapped
            + lockcrypto.mac16(keys.sv, b"LK1/rekey\x00" + keys.lock_id + _u32(keys.epoch)
                               + _u32(new_epoch) + wrapped))


def server_ack(keys, seq, chain):
    return (_u32(seq) + chain + lockcrypto.mac16(keys.sv, b"LK1/ack\x00" + keys.lock_id
                                                  + _u32(keys.epoch) + _u32(seq) + chain))


def _stmt(lock, hello_nonce, spec):
    # args given as {"stmt": kind, ...}: built with the lock's current keys, or with
    # {"master", "epoch"} of another key set (forgeries, other epochs)
    keys = lock.keys
    if "master" in spec:
        keys = lockcrypto.LockKeys(spec["master"], lock.lock_id, spec.get("epoch", keys.epoch))
    kind = spec["stmt"]
    if kind == "time":
        return server_time(keys, spec.get("nonce", hello_nonce), spec["time"])
    if kind == "deny":
        return server_deny(keys, spec["version"], spec.get("entries", []), spec.get("count"))
    if kind == "rekey":
        return server_rekey(keys, spec["new_epoch"], spec["new_master"])
    if kind == "ack":
        seq = spec["seq"]
        chain = spec.get("chain")
        if chain is None:
            for rec in lock.journal:
                if struct.unpack(">I", rec[:4])[0] == seq:
                    chain = rec[24:]
        return server_ack(keys, seq, chain)
    raise ValueError("stmt")


def _mutate(msg, step):
    if "flip" in step:
        b = bytearray(msg)
        b[step["flip"]] ^= step.get("xor", 1)
        msg = bytes(b)
    if "truncate" in step:
        msg = msg[:step["truncate"]]
    if "extend" in step:
        msg = msg + step["extend"]
    return msg


def _describe(resp, ks, ctr):
    out = {"resp": resp, "type": resp[0] if resp else None}
    if resp and resp[0] == C.T_RESULT:
        r_ctr, op, status, payload, mac = lockwire.decode_result(resp)
        out.update({"ctr": r_ctr, "op": op, "status": status, "payload": payload,
                    "mac_ok": ks is not None and lockcrypto.compare_digest(
                        lockcrypto.fmac(ks, C.DIR_LOCK, r_ctr, resp[:-16]), mac)})
    elif resp and resp[0] == C.T_ERROR:
        code, detail = lockwire.decode_error(resp)
        out.update({"code": code, "detail": detail})
    return out


def _args(lock, phone, step):
    a = step.get("args", b"")
    if isinstance(a, dict):
        a = _stmt(lock, phone.get("nonce_l"), a)
    return a


def scenario(cfg, steps):
    # cfg: FakeLock constructor arguments (+ "threshold"); steps: list of dicts with "do".
    gc.collect()
    kw = {}
    for k in ("epoch", "now", "uncertain", "nonces", "deny_version", "deny", "lockout"):
        if k in cfg:
            kw[k] = cfg[k]
    lock = FakeLock(cfg["master"], cfg["lock_id"], **kw)
    if "threshold" in cfg:
        lock.lockout_threshold = cfg["threshold"]
    # default ticket times are relative to "ticket_now" (else the lock's initial clock)
    tnow = cfg.get("ticket_now", lock.clock)
    s = locksession.LockSession(lock)
    phone = {}
    results = []
    for step in steps:
        do = step["do"]
        if do == "hello":
            h = s.hello()
            phone = {"hello": h, "nonce_l": h[15:31], "ctr": 0, "last": phone.get("last")}
            results.append({"hello": h})
        elif do == "auth":
            ticket = step.get("raw_ticket") or make_ticket(lock.lock_id, tnow, step.get("ticket"))
            tk = lock.keys.tk
            if "tk_master" in step:
                tk = lockcrypto.LockKeys(step["tk_master"], lock.lock_id, step.get("tk_epoch", 1)).tk
            nonce_p = step.get("nonce_p", b"\x5a" * 16)
            k_t = lockcrypto.ticket_key(tk, ticket)
            ks = lockcrypto.session_key(k_t, phone.get("nonce_l", bytes(16)), nonce_p)
            body = lockwire.encode_auth_body(step.get("version", 1), ticket, nonce_p,
                                             step.get("op", C.OP_NOP), _args(lock, phone, step))
            hello = step.get("mac_hello", phone.get("hello", b""))
            msg = body + lockcrypto.fmac(ks, C.DIR_PHONE, 0, lockcrypto.sha256(hello) + body)
            msg = _mutate(msg, step)
            phone["ks"] = ks
            phone["ctr"] = 0
            phone["last"] = msg
            results.append(_describe(s.handle(msg), ks, 0))
        elif do == "op":
            ctr = step.get("ctr", phone.get("ctr", 0) + 1)
            phone["ctr"] = ctr
            body = lockwire.encode_op_body(ctr, step.get("op", C.OP_NOP), _args(lock, phone, step))
            ks = step.get("ks", phone.get("ks", bytes(32)))
            msg = body + lockcrypto.fmac(ks, C.DIR_PHONE, ctr, body)
            msg = _mutate(msg, step)
            phone["last"] = msg
            results.append(_describe(s.handle(msg), phone.get("ks"), ctr))
        elif do == "raw":
            results.append(_describe(s.handle(step["msg"]), phone.get("ks"), 0))
        elif do == "replay":
            results.append(_describe(s.handle(phone["last"]), phone.get("ks"), 0))
        elif do == "advance":
            lock.advance(step["s"])
            results.append(None)
        elif do == "set":
            for k in step["attrs"]:
                setattr(lock, k, step["attrs"][k])
            results.append(None)
        elif do == "append":
            lock.append(step["event"], step.get("user_id", 0), step.get("ticket_id", 0),
                        step.get("arg16", 0), step.get("arg", 0))
            results.append(None)
        elif do == "close":
            s.close()
            results.append(None)
        elif do == "state":
            results.append(_state(lock, s))
        else:
            raise ValueError("step " + do)
    return {"steps": results, "state": _state(lock, s)}


def exchange(cfg, msgs):
    # hello(), then each raw message through one LockSession: for cross-checks
    # with phones built elsewhere (the HELLO is deterministic given cfg "nonces").
    out = scenario(cfg, [{"do": "hello"}] + [{"do": "raw", "msg": m} for m in msgs])
    return {"hello": out["steps"][0]["hello"], "responses": [r["resp"] for r in out["steps"][1:]],
            "state": out["state"]}


def _state(lock, s):
    return {"bolt": lock.bolt, "actuations": lock.actuations, "failures": lock.failures,
            "oks": lock.oks, "established": s.established, "closed": s.closed,
            "clock": lock.clock, "uncertain": lock.uncertain, "raised": lock.raised,
            "deny_version": lock.dversion, "deny": lock.deny, "epoch": lock.keys.epoch,
            "head": lock.head, "acked": lock.acked, "journal": lock.journal,
            "lockout": lock.lockout_remaining(), "time_sets": lock.time_sets,
            "config": lock.config_values}


# ---- single-module helpers ----

def ticket_check(raw, nows, denied=None):
    # parse raw, then per now: [in_window, check_validity code]; denied: [[kind, id], ...]
    t = lockticket.parse_ticket(raw)
    deny = [tuple(d) for d in (denied or [])]

    def is_denied(tid, uid):
        return (C.DK_TICKET, tid) in deny or (C.DK_USER, uid) in deny

    return [[lockticket.in_window(t, n), lockticket.check_validity(t, n, is_denied)] for n in nows] + \
        [lockticket.lifetime(t)]


def stmt_call(fn, master, lock_id, epoch, args):
    # lockmsg.<fn>(LockKeys(master, lock_id, epoch), *args) as call() reports it
    keys = lockcrypto.LockKeys(master, lock_id, epoch)
    return call("lockmsg." + fn, [keys] + list(args))


def export(master, lock_id, epoch, first_seq, records, head_seq, prev_chain):
    keys = lockcrypto.LockKeys(master, lock_id, epoch)
    return call("lockrecord.export_chunk", [keys, first_seq, records, head_seq, prev_chain])


def frag_roundtrip(msg, mtu):
    # fragment and reassemble inside MicroPython: [count, headers, max length, equal]
    frags = lockfrag.fragment(msg, mtu)
    out = reassemble(frags)
    return [len(frags), bytes([f[0] for f in frags]), max(len(f) for f in frags), out[-1] == msg,
            out[:-1] == [None] * (len(frags) - 1)]
