# Runs under MicroPython: the flash twin (lockflash_sim), littlefs on it, the
# journal ring (lockring) and the unit's storage (lockstore), called from
# tests/test_flash_twin.py and tests/test_store_flash.py through mpyhost.Worker.
import struct
import lockflash_sim as F
import lockstore
import lockring
import lockjournal
import lockcrypto

try:
    import vfs
except ImportError:
    import os as vfs

_LOCK = b"LK\x00\x00\x00\x00\x00\x07"


def _try(fn):
    # -> "ok", "FlashError", "PowerCut", "OSError" or the exception's type name
    try:
        fn()
    except F.FlashError:
        return "FlashError"
    except F.PowerCut:
        return "PowerCut"
    except OSError:
        return "OSError"
    except Exception as e:  # noqa: BLE001 (reported to the host by name)
        return type(e).__name__
    return "ok"


def nor(blocks=4):
    fl = F.SimFlash(blocks)
    out = {}
    buf = bytearray(8)
    fl.readblocks(1, buf, 100)
    out["erased"] = bytes(buf)
    out["prog"] = _try(lambda: fl.writeblocks(1, b"\xf0\x0f\x55\xaa", 100))
    fl.readblocks(1, buf, 100)
    out["after_prog"] = bytes(buf)
    out["same_again"] = _try(lambda: fl.writeblocks(1, b"\xf0\x0f\x55\xaa", 100))
    out["clear_more"] = _try(lambda: fl.writeblocks(1, b"\x00\x0f\x54\xaa", 100))
    out["one_over_zero"] = _try(lambda: fl.writeblocks(1, b"\xff", 100))
    fl.readblocks(1, buf, 100)
    out["kept"] = bytes(buf)
    out["erase"] = fl.ioctl(6, 1)
    fl.readblocks(1, buf, 100)
    out["after_erase"] = bytes(buf)
    # writeblocks without offset erases the blocks first, whole blocks only
    fl.writeblocks(2, b"\x00" * 16, 0)
    out["whole_block"] = _try(lambda: fl.writeblocks(2, b"\x11" * 4096))
    big = bytearray(16)
    fl.readblocks(2, big)
    out["whole_block_data"] = bytes(big)
    out["part_block"] = _try(lambda: fl.writeblocks(2, b"\x11" * 100))
    # bounds
    out["read_past_end"] = _try(lambda: fl.readblocks(blocks - 1, bytearray(8), 4090))
    out["read_block_past_end"] = _try(lambda: fl.readblocks(blocks, bytearray(1)))
    out["read_negative"] = _try(lambda: fl.readblocks(-1, bytearray(1)))
    out["write_past_end"] = _try(lambda: fl.writeblocks(blocks - 1, b"\x00" * 8, 4092))
    out["erase_past_end"] = _try(lambda: fl.ioctl(6, blocks))
    out["read_across_blocks"] = _try(lambda: fl.readblocks(0, bytearray(8), 4092))
    out["ioctl"] = [fl.ioctl(i, 0) for i in (1, 2, 3, 4, 5)] + [fl.ioctl(7, 0)]
    out["counts"] = [fl.programs, fl.erases, fl.bytes_programmed]
    return out


def cuts(tear):
    # power dies at the 3rd operation from the arming, torn after `tear` bytes
    fl = F.SimFlash(4)
    fl.writeblocks(0, b"\x00" * 8, 0)
    fl.cut(after=2, tear=tear)
    dead_read = bytearray(8)
    r = [_try(lambda: fl.writeblocks(0, b"\x01" * 8, 8)),
         _try(lambda: fl.ioctl(6, 1)),
         _try(lambda: fl.writeblocks(0, b"\x02" * 8, 16)),
         _try(lambda: fl.readblocks(0, dead_read)),
         _try(lambda: fl.ioctl(6, 0))]
    dead = fl.dead
    fl.power_on()
    buf = bytearray(24)
    fl.readblocks(0, buf)
    return {"results": r, "dead": dead, "data": bytes(buf), "ops": fl.ops(), "dead_read": bytes(dead_read)}


def torn_erase(tear):
    fl = F.SimFlash(2)
    fl.writeblocks(1, b"\x00" * 64, 0)
    fl.cut(after=0, tear=tear)
    r = _try(lambda: fl.ioctl(6, 1))
    fl.power_on()
    buf = bytearray(64)
    fl.readblocks(1, buf)
    return [r, bytes(buf)]


def persist(path, stage):
    if stage == 0:
        fl = F.SimFlash(4, path)
        fl.writeblocks(3, b"\x12\x34", 4094)
        fl.ioctl(6, 0)
        fl.writeblocks(0, b"\xab", 0)
        fl.close()
        return None
    fl = F.SimFlash(4, path)
    a, b = bytearray(2), bytearray(1)
    fl.readblocks(3, a, 4094)
    fl.readblocks(0, b)
    return [bytes(a), bytes(b)]


def littlefs(blocks, rounds, region=False):
    # real littlefs on the twin (strict NOR: a 1 over a 0 would raise) and on a Region of it
    fl = F.SimFlash(blocks + (3 if region else 0))
    dev = lockstore.Region(fl, 3, blocks) if region else fl
    vfs.VfsLfs2.mkfs(dev)
    vfs.mount(vfs.VfsLfs2(dev), "/lfstest")
    for i in range(rounds):
        with open("/lfstest/f%d" % (i % 5), "wb") as f:
            f.write(bytes([i & 0xFF]) * (50 + i * 7 % 300))
        import os
        os.rename("/lfstest/f%d" % (i % 5), "/lfstest/g%d" % (i % 5))
    vfs.umount("/lfstest")
    vfs.mount(vfs.VfsLfs2(dev), "/lfstest")
    import os
    names = sorted(os.listdir("/lfstest"))
    sizes = [os.stat("/lfstest/" + n)[6] for n in names]
    with open("/lfstest/g0", "rb") as f:
        first = f.read(1)
    vfs.umount("/lfstest")
    if region:
        # the blocks outside the region were never touched
        buf = bytearray(4096 * 3)
        fl.readblocks(0, buf)
        outside = sum(1 for x in buf if x == 0xFF)
    else:
        outside = None
    return {"names": names, "sizes": sizes, "first": first, "ops": [fl.programs, fl.erases],
            "outside_erased": outside}


# ---- the journal ring ----

class _Ring:
    # one lock's journal on a flash twin; reboot() rebuilds everything from the flash
    def __init__(self, blocks, kv_blocks=0):
        self.fl = F.SimFlash(blocks)
        self.keys = lockcrypto.LockKeys(bytes(range(32)), _LOCK, 1)
        self.state = None
        self.t = 1000
        self.boot()

    def boot(self):
        self.rec = lockring.FlashRecords(self.fl)
        self.j = lockjournal.Journal(self.rec, _LOCK, self.keys.jm, self.state)

    def save(self):
        if self.j.dirty:
            self.state = self.j.state_blob()


def ring_info(blocks):
    fl = F.SimFlash(blocks)
    st = lockstore.Storage(fl, "/ringinfo")
    try:
        return {"capacity": st.records.capacity, "per_block": st.records.per_block,
                "ring_blocks": st.records.nblocks}
    finally:
        st.close()


def _apply(r, op):
    # one step of a ring scenario; -> None, or the outcome of a cut append
    if op[0] == "a":
        for _ in range(op[1]):
            r.t += 1
            r.j.append(r.keys.jm, r.t, 2, user_id=r.t)
            r.save()
    elif op[0] == "k":
        j = r.j
        first = j.first_seq()
        chain = j.store.get(op[1] - first)[24:] if first <= op[1] <= j.head else b"\x00" * 8
        j.ack(op[1], chain)
        r.save()
    elif op[0] == "b":
        r.boot()
    elif op[0] == "x":
        # appends whose journal state never reaches the key-value store, then a reboot
        for _ in range(op[1]):
            r.t += 1
            r.j.append(r.keys.jm, r.t, 2, user_id=r.t)
        r.boot()
    elif op[0] == "c":
        # provisioning: the ring is cleared, a journal starts over under a new key
        r.rec.clear()
        r.keys = lockcrypto.LockKeys(bytes(range(1, 33)), _LOCK, 1)
        r.state = None
        r.j = lockjournal.Journal(r.rec, _LOCK, r.keys.jm)
        r.save()
    elif op[0] == "j":
        # the saved journal state is ahead of the ring (it says op[1] was acknowledged)
        import struct
        r.state = struct.pack(">III8sI", op[1], 0, 0, b"\x00" * 8, op[1] + 1)
        r.boot()
    elif op[0] == "d":
        # bit rot: one bit of record op[1]'s user_id drops to 0 (what NOR can do by itself)
        b, k = r.rec._where(op[1])
        buf = bytearray(1)
        r.fl.readblocks(b, buf, 32 + k * 36 + 15)
        r.fl.writeblocks(b, bytes([buf[0] & 0xFE]), 32 + k * 36 + 15)
    elif op[0] == "t":
        # the next append's record write (not an erase or header) is torn after op[1] bytes
        need = r.rec._hb < 0 or r.rec._hn >= r.rec.per_block or r.rec._closed
        r.fl.cut(after=2 if need else 0, tear=op[1])
        r.t += 1
        res = _try(lambda: r.j.append(r.keys.jm, r.t, 2, user_id=r.t))
        r.fl.power_on()
        r.boot()
        return res
    return None


def ring_run(blocks, ops):
    # ops: ["a", n] append n, ["k", seq] ack seq, ["b"] reboot, ["x", n] append n without
    # saving the journal state and reboot, ["t", tear] a torn append and reboot;
    # -> per op [head, acked, first, count, lost] (the cut's outcome for "t")
    r = _Ring(blocks)
    out = []
    for op in ops:
        res = _apply(r, op)
        if res is not None:
            out.append(res)
            continue
        j = r.j
        out.append([j.head, j.acked, j.first_seq(), j.store.count(), j.lost])
    return out


def ring_dump(blocks, ops):
    # ring_run, then every retained record and the chain before the first
    r = _Ring(blocks)
    for op in ops:
        _apply(r, op)
    j = r.j
    recs = [j.store.get(i) for i in range(j.store.count())]
    return {"first": j.first_seq(), "head": j.head, "prev": j.base_chain, "records": recs,
            "lost": j.lost, "programs": r.fl.programs, "erases": r.fl.erases, "damaged": r.rec.damaged,
            "used_blocks": r.fl.used_blocks()}


def port_after_power_on():
    # a boot's Port is dead once the next boot powered on: its writes vanish
    fl = F.SimFlash(2)
    old = F.Port(fl)
    old.writeblocks(0, b"\x01", 0)
    fl.power_on()
    new = F.Port(fl)
    old.writeblocks(0, b"\x00" * 4, 4)
    old.ioctl(6, 0)
    buf = bytearray(8)
    old.readblocks(0, buf)
    dead_read = bytes(buf)
    new.readblocks(0, buf)
    return [dead_read, bytes(buf), old.ioctl(4, 0), new.ioctl(5, 0)]


def bitwise_tears():
    fl = F.SimFlash(2)
    fl.cut(after=0, tear=-3)
    _try(lambda: fl.writeblocks(0, b"\x00" * 8, 0))
    fl.power_on()
    a = bytearray(8)
    fl.readblocks(0, a)
    fl.writeblocks(1, b"\x00" * 8, 0)
    fl.cut(after=0, tear=-2)
    _try(lambda: fl.ioctl(6, 1))
    fl.power_on()
    b = bytearray(8)
    fl.readblocks(1, b)
    return [bytes(a), bytes(b)]
