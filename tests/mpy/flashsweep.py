# Runs under MicroPython: the exhaustive power-cut sweep (tests/test_power_cut.py).
# A whole door unit (lockapp.boot on the sim board's flash twin) is brought to a
# state; then for every program/erase index k the operation would make, and for
# each tear, the flash is restored, the unit booted, power cut at write k
# (optionally tearing it), the unit booted again, and the invariants checked:
# every record reported durable (its append returned) is present, byte for byte,
# unless acknowledged; the chain verifies across the epochs; the key slot holds
# the old or the new key (the new one if install returned); the deny list is the
# old or the new version (the new one if set_deny returned); the acknowledgement
# is the old or the new one (the new one if journal_ack returned).
import gc
import lockhal
import lockhal_sim
import lockapp
import lockcrypto
import lockrecord
import lockflash_sim as F
from lockcodes import E_OK, EV_DOOR_OPEN, EV_REKEYED, DK_TICKET, DK_USER, CFG_RELOCK_DELAY

try:
    import vfs
except ImportError:
    import os as vfs

_LOCK = b"LK\x00\x00\x00\x00\x00\x42"
_M = (None, bytes(range(32)), bytes(range(32, 64)))
_NOW = 1767225600
_DENY = {3: [(DK_TICKET, 11, _NOW + 10 ** 7)],
         5: [(DK_TICKET, 77, _NOW + 10 ** 7), (DK_USER, 88, _NOW + 10 ** 7)]}


class _Rig:
    def __init__(self, boards, blocks=None, provision=True):
        b = lockhal.load_board("sim", boards)
        if blocks:
            b["storage"]["blocks"] = blocks
        self.board = b
        self.world = lockhal_sim.SimWorld(b)
        self.unit = None
        self.boot()
        if provision:
            self.unit.provision(_LOCK, 1, _M[1], _NOW)
        self.keys = {1: lockcrypto.LockKeys(_M[1], _LOCK, 1), 2: lockcrypto.LockKeys(_M[2], _LOCK, 2)}

    def provision_old(self):
        # the earlier life of a "reprovision" unit: another lock id and key
        self.unit.provision(b"OLD\x00\x00\x00\x00\x01", 7, _M[2], _NOW - 10 ** 6)

    def boot(self, image=None):
        # a (re)boot; image: the flash contents to boot from (a snapshot)
        if getattr(self, "flash", None) is not None:
            try:
                vfs.umount("/sweep")  # also when the last boot died inside its own boot
            except OSError:
                pass
            self.unit = None
            # the dead firmware's leftovers (open littlefs files) are finalised
            # on its dead Port, never into the next boot
            self.flash.power_on()  # the last boot's Port is dead from here on
            gc.collect()
            if image is not None:
                self.flash.restore(image)
            self.world.power_cut()
        hw = lockhal.wire(self.board, lockhal_sim.SimHal(self.world))
        self.unit = lockapp.boot(hw, "/sweep")
        self.flash = self.world.flash

    def fill_to_block_end(self, left):
        # journal until the head block has `left` free slots
        rec = self.unit.journal.store
        while rec.per_block - rec._hn != left:
            self.unit.ctx.log(EV_DOOR_OPEN)

    def state(self):
        u = self.unit
        j = u.journal
        recs = [j.store.get(i) for i in range(j.store.count())]
        k = u.keystore.keys
        return {"records": recs, "prev": j.base_chain, "acked": j.acked, "head": j.head,
                "relock": u.ctx.config_values[CFG_RELOCK_DELAY],
                "epoch": k.epoch if k else 0, "tk": k.tk if k else b"", "deny": u.deny.version,
                "deny_entries": u.deny.entries, "lost": j.lost}


# ---- the operations swept; each appends what it made durable to `done` ----

def _op_append(rig, done):
    for _ in range(3):
        done.append(("rec", rig.unit.ctx.log(EV_DOOR_OPEN, arg=7)))


def _op_ack(rig, done):
    j = rig.unit.journal
    seq = j.head - 2
    rec = j.store.get(seq - j.first_seq())
    done.append(("ack?", seq))
    st, acked = rig.unit.ctx.journal_ack(seq, rec[24:])
    if st == E_OK:
        done.append(("ack", seq))


def _op_rekey(rig, done):
    if rig.unit.ctx.rekey(2, _M[2]) == E_OK:
        done.append(("epoch", 2))


def _op_deny(rig, done):
    if rig.unit.ctx.set_deny(5, _DENY[5]) == E_OK:
        done.append(("deny", 5))


def _op_overflow(rig, done):
    # the append that makes the ring drop its oldest block
    done.append(("rec", rig.unit.ctx.log(EV_DOOR_OPEN, arg=9)))


def _op_config(rig, done):
    class _Admin:
        user_id = 4242
    done.append(("cfg?", 90))
    st, v = rig.unit.ctx.config(CFG_RELOCK_DELAY, 90, _Admin())
    if st == E_OK:
        done.append(("cfg", 90))


def _op_boot(rig, done):
    # the boot itself (BOOT and TIME_UNCERTAIN records, clock mark, journal state)
    rig.unit.storage.close()
    rig.unit = None
    rig.world.power_cut()
    rig.unit = lockapp.boot(lockhal.wire(rig.board, lockhal_sim.SimHal(rig.world)), "/sweep")
    done.append(("booted", 1))


def _op_provision(rig, done):
    if rig.unit.provision(_LOCK, 1, _M[1], _NOW) == E_OK:
        done.append(("provisioned", 1))


def _setup(rig, name):
    if name == "provision":
        return  # a blank unit in factory mode
    if name == "reprovision":
        # a unit that lived under another key (another home), acknowledged and reset
        import lockprov
        u = rig.unit
        for i in range(30):
            u.ctx.log(EV_DOOR_OPEN, arg=i)
        j = u.journal
        u.ctx.journal_ack(j.head, j.store.get(j.store.count() - 1)[24:])
        assert lockprov.wipe(u) == E_OK
        return
    ctx = rig.unit.ctx
    for i in range(5):
        ctx.log(EV_DOOR_OPEN, arg=i)
    assert ctx.set_deny(3, _DENY[3]) == E_OK
    if name == "ack":
        ctx.journal_ack(2, rig.unit.journal.store.get(1)[24:])


def _position(rig, name, boot_recs):
    # leave the ring so that, after the records a boot writes, the operation
    # crosses into a fresh block (append) or must drop the oldest block (overflow)
    ctx = rig.unit.ctx
    rec = rig.unit.journal.store
    if name == "append":
        while rec.per_block - rec._hn != 1 + boot_recs:
            ctx.log(EV_DOOR_OPEN)
    elif name == "overflow":
        while not (rec._hn == rec.per_block - boot_recs and (rec._hb + 1) % rec.nblocks == rec._tb
                   and rec.count()):
            ctx.log(EV_DOOR_OPEN)


_OPS = {"append": _op_append, "ack": _op_ack, "rekey": _op_rekey, "deny": _op_deny,
        "overflow": _op_overflow, "provision": _op_provision, "reprovision": _op_provision,
        "config": _op_config, "boot": _op_boot}


def _verify_chain(rig, st):
    # -> None or the first sequence whose chain does not verify (epoch switches at REKEYED)
    prev = st["prev"]
    epoch = 1
    for r in st["records"]:
        if r[8] == EV_REKEYED:
            epoch = int.from_bytes(r[20:24], "big")
        keys = rig.keys.get(epoch)
        if keys is None or lockrecord.chain_next(keys.jm, prev, r[:24]) != r[24:]:
            return int.from_bytes(r[:4], "big")
        prev = r[24:]
    return None


def _check_provision(rig, after, done):
    # factory mode still, or provisioned whole: identity, key, a journal from chain_0
    errs = []
    if after["epoch"] == 0:
        if ("provisioned", 1) in done:
            errs.append("provision returned OK but the unit is in factory mode")
        if after["records"]:
            errs.append("a factory unit holds records")
        return errs
    if after["epoch"] != 1 or after["tk"] != rig.keys[1].tk or rig.unit.lock_id != _LOCK:
        errs.append("provisioned with a wrong key or identity")
    recs = after["records"]
    if recs and (int.from_bytes(recs[0][:4], "big") != 1
                 or after["prev"] != lockrecord.chain_genesis(rig.keys[1].jm, _LOCK)):
        errs.append("the journal does not start at 1 from chain_0")
    bad = _verify_chain(rig, after)
    if bad is not None:
        errs.append("chain breaks at %d" % bad)
    return errs


def _check(rig, before, after, done, completed):
    if rig.op is _op_provision:
        return _check_provision(rig, after, done)
    errs = []
    have = {}
    for r in after["records"]:
        have[int.from_bytes(r[:4], "big")] = r
    acked = after["acked"]
    if acked not in (before["acked"],) + tuple(v for k, v in done if k == "ack?"):
        errs.append("acked %d" % acked)
    for k, v in done:
        if k == "ack" and acked != v:
            errs.append("ack %d returned but acked is %d" % (v, acked))
    durable = before["records"] + [v for k, v in done if k == "rec"]
    first = min(have) if have else after["head"] + 1
    overwritten = 0
    for r in durable:
        s = int.from_bytes(r[:4], "big")
        if s <= acked:
            continue
        if s < first:
            overwritten += 1  # the ring was full: overwritten, and it must be counted
        elif have.get(s) != r:
            errs.append("durable record %d lost or changed" % s)
    if after["lost"] - before["lost"] < overwritten:
        errs.append("%d records overwritten but lost went %d -> %d" % (overwritten, before["lost"], after["lost"]))
    seqs = sorted(have)
    if seqs and seqs != list(range(seqs[0], seqs[0] + len(seqs))):
        errs.append("sequence gap")
    bad = _verify_chain(rig, after)
    if bad is not None:
        errs.append("chain breaks at %d" % bad)
    if after["epoch"] not in (1, 2) or after["tk"] != rig.keys[after["epoch"]].tk:
        errs.append("key slot epoch %d holds a wrong key" % after["epoch"])
    if ("epoch", 2) in done and after["epoch"] != 2:
        errs.append("re-key returned OK but the old key is back")
    if after["deny"] not in (3, 5) or after["deny_entries"] != _DENY.get(after["deny"]):
        errs.append("deny list version %d with other entries" % after["deny"])
    if ("deny", 5) in done and after["deny"] != 5:
        errs.append("deny update returned OK but the old list is back")
    if after["head"] < before["head"]:
        errs.append("head went back")
    if after["relock"] not in (before["relock"],) + tuple(v for k, v in done if k == "cfg?"):
        errs.append("relock delay %d is neither the old nor the new value" % after["relock"])
    if ("cfg", 90) in done and after["relock"] != 90:
        errs.append("config returned OK but the old value is back")
    return errs


def sweep(boards, name, tears, blocks=None):
    # -> {"writes": program/erase operations the operation makes, "points": cuts tested,
    #     "completed": trials where the op returned, "errors": [...]}
    rig = _Rig(boards, blocks, name not in ("provision", "reprovision"))
    if name == "reprovision":
        rig.provision_old()
    rig.op = _OPS[name]
    try:
        return _sweep(rig, name, tears)
    finally:
        rig.unit.storage.close()


def _sweep(rig, name, tears):
    _setup(rig, name)
    h = rig.unit.journal.head
    rig.boot()
    _position(rig, name, rig.unit.journal.head - h)
    image = rig.flash.image()
    op = _OPS[name]
    # a clean run counts the writes
    rig.boot(image)
    base = rig.flash.ops()
    op(rig, [])
    writes = rig.flash.ops() - base
    points = 0
    completed_n = 0
    errors = []
    for k in range(writes + 1):
        for tear in (tears if k < writes else (None,)):
            rig.boot(image)
            before = rig.state()
            rig.flash.cut(after=k, tear=tear)
            done = []
            try:
                op(rig, done)
                completed = True
            except F.PowerCut:
                completed = False
            rig.boot()
            after = rig.state()
            points += 1
            if completed:
                completed_n += 1
            for e in _check(rig, before, after, done, completed):
                errors.append("%s cut %d tear %s: %s" % (name, k, tear, e))
            # and the unit goes on journaling after the cut
            rig.unit.ctx.log(EV_DOOR_OPEN, arg=99)
            again = rig.state()
            bad = _verify_chain(rig, again)
            if bad is not None:
                errors.append("%s cut %d tear %s: chain breaks at %d after recovery" % (name, k, tear, bad))
    return {"writes": writes, "points": points, "completed": completed_n, "errors": errors[:20],
            "nerrors": len(errors)}
