# The unit's durable state on its flash data partition (docs/storage.md):
#   blocks [0, kv_blocks)   littlefs (vfs.VfsLfs2) for the named blobs of
#                           lockkv.FileKV: identity, key slots, deny list,
#                           settings, clock mark, journal state (write-then-rename)
#   blocks [kv_blocks, end) the journal's raw record ring (lockring.FlashRecords)
# `dev` is esp32.Partition on a unit, lockflash_sim.SimFlash in the simulator;
# both speak the same block-device protocol, so this module cannot tell them apart.
from lockkv import FileKV
from lockring import FlashRecords

try:
    import vfs
except ImportError:  # MicroPython before 1.23
    import os as vfs

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

_KV_BLOCKS = const(16)  # 64 KiB of littlefs for a few hundred bytes of blobs, wear spread by littlefs


class Region:
    # blocks [start, start + count) of a block device, as a block device of its own
    def __init__(self, dev, start, count):
        self.dev = dev
        self.start = start
        self.count = count
        self.bs = dev.ioctl(5, 0)
        if start < 0 or count < 1 or start + count > dev.ioctl(4, 0):
            raise OSError(22)

    def _check(self, block, offset, n):
        if block < 0 or offset < 0 or block * self.bs + offset + n > self.count * self.bs:
            raise OSError(22)

    def readblocks(self, block, buf, offset=0):
        self._check(block, offset, len(buf))
        self.dev.readblocks(self.start + block, buf, offset)

    def writeblocks(self, block, buf, offset=None):
        if offset is None:
            self._check(block, 0, len(buf))
            self.dev.writeblocks(self.start + block, buf)
        else:
            self._check(block, offset, len(buf))
            self.dev.writeblocks(self.start + block, buf, offset)

    def ioctl(self, op, arg):
        if op == 4:
            return self.count
        if op == 6:
            self._check(arg, 0, self.bs)
            return self.dev.ioctl(6, self.start + arg)
        return self.dev.ioctl(op, arg)


def _header_blank(dev):
    # no block of the journal ring has ever been written (first 32 bytes erased)
    buf = bytearray(32)
    for b in range(dev.ioctl(4, 0)):
        dev.readblocks(b, buf, 0)
        for x in buf:
            if x != 0xFF:
                return False
    return True


class Storage:
    # the mounted key-value store and the journal ring of one unit
    def __init__(self, dev, mount="/lock", kv_blocks=_KV_BLOCKS):
        total = dev.ioctl(4, 0)
        if total < kv_blocks + 3:
            raise OSError(28)
        self.mount = mount
        self.kvdev = Region(dev, 0, kv_blocks)
        self.ringdev = Region(dev, kv_blocks, total - kv_blocks)
        try:
            fs = vfs.VfsLfs2(self.kvdev)
        except OSError:
            # format only a unit that never journaled: a provisioned unit's
            # journal is never thrown away by a boot that cannot read its blobs
            if not _header_blank(self.ringdev):
                raise
            vfs.VfsLfs2.mkfs(self.kvdev)
            fs = vfs.VfsLfs2(self.kvdev)
        vfs.mount(fs, mount)
        self.fs = fs
        self.kv = FileKV(mount)
        self.records = FlashRecords(self.ringdev)

    def close(self):
        try:
            vfs.umount(self.mount)
        except OSError:
            pass


def provisioned(dev, mount="/lock", kv_blocks=_KV_BLOCKS):
    # boot.py: does the partition hold a key slot? Mounts the key-value store
    # read-only for the look and unmounts it again; never formats or writes.
    try:
        fs = vfs.VfsLfs2(Region(dev, 0, kv_blocks))
    except OSError:
        return False
    vfs.mount(fs, mount, readonly=True)
    try:
        kv = FileKV(mount)
        return kv.load(b"keyA") is not None or kv.load(b"keyB") is not None
    finally:
        vfs.umount(mount)
