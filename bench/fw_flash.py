# Runs under MicroPython: the journal's two candidate stores on the flash twin
# (docs/storage.md), measured in one run against the RAM store as baseline:
#   ring: lockring.FlashRecords on the raw partition (what the unit uses);
#   lfs:  segment files on littlefs (vfs.VfsLfs2), each record appended and
#         flushed (lfs_file_sync) before the append returns, 112 records a file.
# Per store: microseconds per journal append (Journal.append: seal + store),
# erases, programs and bytes programmed per record over N appends on a fresh
# 128-block partition; boot recovery (open the store, recover the journal) over
# one bare HMAC-SHA256; then a power-cut sweep over a few appends (cut at every
# program/erase, untorn and torn in half): durable records (append returned)
# lost, torn records visible after the reboot, and the cut points tried.
# usage: micropython fw_flash.py N SWEEP_APPENDS -> one JSON line
import sys
import os
import gc
import json
import struct
import time
from binascii import crc32
import lockcrypto
import lockjournal
import lockring
import lockflash_sim as F

try:
    import vfs
except ImportError:
    import os as vfs

_LOCK = b"LK\x00\x00\x00\x00\x00\x01"
_SEG = 112
_MNT = "/benchlfs"


class SegmentRecords:
    # the record-store interface over littlefs segment files (the alternative measured)
    def __init__(self, root, capacity):
        self.root = root
        self.capacity = capacity
        self.segs = []  # [first_seq, count] per file, oldest first
        self._tail = 0  # records dropped from the oldest segment
        self._f = None
        for name in sorted(os.listdir(root)):
            first = int(name[1:])
            n = os.stat(root + "/" + name)[6] // 36
            self.segs.append([first, n])

    def _name(self, first):
        return "%s/s%010d" % (self.root, first)

    def count(self):
        return sum(s[1] for s in self.segs) - self._tail

    def full(self):
        return self.count() >= self.capacity

    def prev_chain(self):
        return None

    def append(self, rec, prev_chain=None):
        seq = struct.unpack(">I", rec[:4])[0]
        if not self.segs or self.segs[-1][1] >= _SEG:
            if self._f is not None:
                self._f.close()
            self.segs.append([seq, 0])
            self._f = open(self._name(seq), "ab")
        elif self._f is None:
            self._f = open(self._name(self.segs[-1][0]), "ab")
        self._f.write(bytes(rec) + struct.pack(">I", crc32(rec) & 0xFFFFFFFF))
        self._f.flush()  # lfs_file_sync: durable when this returns
        self.segs[-1][1] += 1

    def get(self, i):
        i += self._tail
        for first, n in self.segs:
            if i < n:
                with open(self._name(first), "rb") as f:
                    f.seek(i * 36)
                    b = f.read(36)
                if len(b) != 36 or struct.pack(">I", crc32(b[:32]) & 0xFFFFFFFF) != b[32:]:
                    raise OSError(5)
                return b[:32]
            i -= n
        raise IndexError()

    def oldest(self):
        return self.get(0) if self.count() else None

    def drop_oldest(self):
        self._tail += 1
        if self._tail >= self.segs[0][1] and len(self.segs) > 1:
            os.remove(self._name(self.segs[0][0]))
            self.segs.pop(0)
            self._tail = 0

    def close(self):
        if self._f is not None:
            self._f.close()
            self._f = None


def _open(kind, chip, fresh):
    port = F.Port(chip)
    if kind == "ring":
        return lockring.FlashRecords(port), None
    if fresh:
        vfs.VfsLfs2.mkfs(port)
    vfs.mount(vfs.VfsLfs2(port), _MNT)
    return SegmentRecords(_MNT, 10000), _MNT


def _close(store, mnt):
    if mnt is not None:
        try:
            store.close()
        except BaseException:  # noqa: B036 (a store on a dead chip may fail any way)
            pass
        vfs.umount(mnt)


def throughput(kind, n):
    keys = lockcrypto.LockKeys(bytes(32), _LOCK, 1)
    chip = F.SimFlash(128)
    if kind == "ram":
        store, mnt = lockjournal.RamRecords(n + 1), None
    else:
        store, mnt = _open(kind, chip, True)
    j = lockjournal.Journal(store, _LOCK, keys.jm)
    p0, e0, b0 = chip.programs, chip.erases, chip.bytes_programmed
    t0 = time.ticks_us()
    for i in range(n):
        j.append(keys.jm, 1000 + i, 2, user_id=i)
    us = time.ticks_diff(time.ticks_us(), t0)
    _close(store, mnt)
    reopen = 0
    if kind != "ram":
        # boot recovery: open the store on the flash and recover the journal (mean of 5)
        t0 = time.ticks_us()
        for _ in range(5):
            store, mnt = _open(kind, chip, False)
            lockjournal.Journal(store, _LOCK, keys.jm)
            _close(store, mnt)
        reopen = time.ticks_diff(time.ticks_us(), t0) / 5
    return {"us_per_append": us / n, "reopen_us": reopen, "erases_per_record": (chip.erases - e0) / n,
            "programs_per_record": (chip.programs - p0) / n,
            "bytes_per_record": (chip.bytes_programmed - b0) / n}


def sweep(kind, appends):
    # cut power at every program/erase of `appends` journal appends (untorn, torn in half)
    keys = lockcrypto.LockKeys(bytes(32), _LOCK, 1)
    chip = F.SimFlash(128)
    store, mnt = _open(kind, chip, True)
    j = lockjournal.Journal(store, _LOCK, keys.jm)
    for i in range(5):
        j.append(keys.jm, 900 + i, 2)
    _close(store, mnt)
    image = chip.image()
    chip.power_on()
    store, mnt = _open(kind, chip, False)
    base = chip.ops()
    j = lockjournal.Journal(store, _LOCK, keys.jm)
    for i in range(appends):
        j.append(keys.jm, 1000 + i, 2)
    writes = chip.ops() - base
    _close(store, mnt)
    points = lost = torn = bad = 0
    for k in range(writes):
        for tear in (None, 18):
            chip.power_on()
            chip.restore(image)
            store, mnt = _open(kind, chip, False)
            j = lockjournal.Journal(store, _LOCK, keys.jm)
            durable = [store.get(i) for i in range(store.count())]
            chip.cut(after=k, tear=tear)
            try:
                for i in range(appends):
                    durable.append(j.append(keys.jm, 1000 + i, 2))
            except F.PowerCut:
                pass
            _close(store, mnt)
            chip.power_on()
            gc.collect()
            try:
                store, mnt = _open(kind, chip, False)
                have = {}
                for i in range(store.count()):
                    try:
                        r = store.get(i)
                        have[struct.unpack(">I", r[:4])[0]] = r
                    except OSError:
                        torn += 1
                for r in durable:
                    if have.get(struct.unpack(">I", r[:4])[0]) != r:
                        lost += 1
                _close(store, mnt)
            except OSError:
                bad += 1  # the store would not even open
            points += 1
    return {"writes": writes, "points": points, "durable_lost": lost, "torn_visible": torn,
            "unmountable": bad}


def main():
    n, k = int(sys.argv[1]), int(sys.argv[2])
    t0 = time.ticks_us()
    for _ in range(200):
        lockcrypto.hmac_sha256(bytes(32), bytes(64))
    out = {"hmac_us": time.ticks_diff(time.ticks_us(), t0) / 200}
    for kind in ("ram", "ring", "lfs"):
        out[kind] = throughput(kind, n)
    for kind in ("ring", "lfs"):
        out[kind]["sweep"] = sweep(kind, k)
    print(json.dumps(out))


main()
