# The simulator's twin of a flash data partition (esp32.Partition on the unit):
# the same block-device protocol (readblocks/writeblocks with and without
# offset, ioctl 1..6), NOR semantics and power cuts. Stricter than hardware:
# - erased is 0xFF; programming only clears bits. Programming a 1 over a 0
#   raises FlashError (real NOR silently keeps the 0: always a bug in our code);
# - every access outside the partition raises FlashError (OSError, like the
#   ESP-IDF's ESP_ERR_INVALID_ARG / _SIZE from check_esp_err);
# - writeblocks(block, buf) without offset erases the blocks it covers first,
#   as esp32.Partition does, and needs a whole number of blocks;
# - cut(after=n, tear=k): the n+1-th program or erase from now on is where
#   power dies: its first k bytes take effect (k=None: none) and it raises
#   PowerCut. A torn erase leaves the rest of the block as it was. A negative
#   k tears bit by bit, as NOR really can: the first -k bytes take effect and
#   the rest only partly (a program clears only the 0 bits of each byte's low
#   nibble; an erase sets only the low nibble's bits: half erased). The ring
#   trusts a block only through its CRC-checked header and a record only
#   through its CRC; littlefs has CRCs of its own.
# - after the cut, until power_on(), the chip is dead: whatever the dying
#   firmware still does (cleanup code, a littlefs file finalised later by the
#   GC) reads and writes a scratch copy that power_on() throws away, so it
#   never reaches the next boot, and littlefs sees a consistent device
#   meanwhile instead of printing errors from finalisers.
# Contents are kept per 256-byte chunk of a block, and only for chunks holding
# something (an erased block costs no RAM, a block holding a few records one
# chunk: a simulator hosts many units, and a unit's small heap never needs a
# contiguous 4 KiB), written through to a file when given one, so a unit's
# flash outlives the process.
import os

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

_BLOCK = const(4096)
_CHUNK = const(256)  # the twin keeps a block in chunks of this size (the code assumes 256)
_PER_BLOCK = const(16)
_FF = b"\xff" * 256  # erased bytes, a chunk at a time
_IOCTL_INIT = const(1)
_IOCTL_DEINIT = const(2)
_IOCTL_SYNC = const(3)
_IOCTL_BLOCK_COUNT = const(4)
_IOCTL_BLOCK_SIZE = const(5)
_IOCTL_BLOCK_ERASE = const(6)


class FlashError(OSError):
    pass


class PowerCut(BaseException):
    # not an Exception: no firmware handler may swallow a power cut
    pass


class SimFlash:
    def __init__(self, blocks=128, path=None, block_size=_BLOCK):
        self.blocks = blocks
        self.block_size = block_size
        self.size = blocks * block_size
        self.path = path
        self._f = None
        # block -> a list of its chunks, each None (erased) or a bytearray(_CHUNK);
        # an erased block has no entry
        self._blk = {}
        if block_size != _BLOCK:
            raise ValueError("block size")
        if path is not None:
            try:
                ok = os.stat(path)[6] == self.size
            except OSError:
                ok = False
            if ok:
                chunk = bytearray(_CHUNK)
                with open(path, "rb") as f:
                    for b in range(blocks):
                        for c in range(_PER_BLOCK):
                            f.readinto(chunk)
                            if chunk != _FF:
                                self._chunk(b, c)[:] = chunk
            else:
                with open(path, "wb") as f:
                    for _ in range(self.size // _CHUNK):
                        f.write(_FF)
            self._f = open(path, "r+b")
        self.gen = 0         # boots since power_on() was first called (see Port)
        self.reads = 0
        self.programs = 0    # program operations (writeblocks calls, minus their erases)
        self.erases = 0      # block erases
        self.bytes_programmed = 0
        self.wear = bytearray(blocks)  # erases per block, saturating at 255
        self._left = -1      # operations left before the cut; -1: no cut armed
        self._tear = None
        self.dead = False
        self._saved = None

    # ---- power ----

    def cut(self, after=0, tear=None):
        # power dies at the (after+1)-th program/erase from now
        self._left = after
        self._tear = tear
        self.dead = False

    def power_on(self):
        # power back: a new boot; the Ports handed to the boot before are dead for good
        self.gen += 1
        if self._saved is not None:
            self.restore(self._saved)  # what the chip held when power died
            self._saved = None
        self._left = -1
        self._tear = None
        self.dead = False

    def ops(self):
        return self.programs + self.erases

    def image(self):
        # a snapshot: per block None (erased) or its chunks (None: erased)
        blk = self._blk
        return tuple(tuple(None if c is None else bytes(c) for c in blk[b]) if b in blk else None
                     for b in range(self.blocks))

    def restore(self, image):
        for i in range(self.blocks):
            b = image[i]
            if b is None:
                self._blk.pop(i, None)
            else:
                self._blk[i] = [None if c is None else bytearray(c) for c in b]
            self._sync(i * self.block_size, self.block_size)

    def used_blocks(self):
        return len(self._blk)

    def close(self):
        if self._f is not None:
            self._f.close()
            self._f = None

    # ---- the block-device protocol of esp32.Partition ----

    def readblocks(self, block, buf, offset=0):
        self._get(self._addr(block, offset, len(buf)), buf)
        self.reads += 1

    def writeblocks(self, block, buf, offset=None):
        n = len(buf)
        if offset is None:
            if n % self.block_size:
                raise FlashError(22)  # erase_range needs whole blocks
            a = self._addr(block, 0, n)
            for b in range(n // self.block_size):
                self._erase(block + b)
            offset = 0
        a = self._addr(block, offset, n)
        self._program(a, buf)

    def ioctl(self, op, arg):
        if op in (_IOCTL_INIT, _IOCTL_DEINIT, _IOCTL_SYNC):
            return 0
        if op == _IOCTL_BLOCK_COUNT:
            return self.blocks
        if op == _IOCTL_BLOCK_SIZE:
            return self.block_size
        if op == _IOCTL_BLOCK_ERASE:
            self._addr(arg, 0, self.block_size)
            self._erase(arg)
            return 0
        return None

    # ---- internals ----

    def _addr(self, block, offset, n):
        a = block * self.block_size + offset
        if block < 0 or offset < 0 or n < 0 or a + n > self.size:
            raise FlashError(22)
        return a

    def _step(self):
        # -> bytes of this operation to apply (None: all; dead: all, on the scratch copy)
        if self._left < 0 or self.dead:
            return None
        if self._left == 0:
            return self._tear if self._tear is not None else 0
        self._left -= 1
        return None

    def _die(self):
        self._saved = self.image()
        self.dead = True
        raise PowerCut()

    def _chunk(self, b, c):
        # chunk c of block b, made (erased) if it holds nothing yet
        blk = self._blk.get(b)
        if blk is None:
            blk = self._blk[b] = [None] * _PER_BLOCK
        d = blk[c]
        if d is None:
            d = blk[c] = bytearray(_FF)
        return d

    def _get(self, a, buf):
        # buf[:] = the bytes from address a on
        n = len(buf)
        blk = self._blk
        i = 0
        while i < n:
            o = (a + i) % _BLOCK
            c = blk.get((a + i) // _BLOCK)
            c = None if c is None else c[o // _CHUNK]
            o %= _CHUNK
            k = min(n - i, _CHUNK - o)
            buf[i:i + k] = _FF[o:o + k] if c is None else c[o:o + k]
            i += k

    def _erase(self, block):
        a = block * self.block_size
        k = self._step()
        bs = self.block_size
        n = bs if k is None else min(abs(k), bs)
        blk = self._blk.get(block)
        if n == bs and (k is None or k >= 0):
            self._blk.pop(block, None)
        elif blk is not None:
            for c in range(_PER_BLOCK):
                d = blk[c]
                lo = c * _CHUNK
                if d is None or lo >= n and (k is None or k >= 0):
                    continue
                m = min(_CHUNK, max(0, n - lo))  # bytes of this chunk the erase reached
                d[:m] = _FF[:m]
                if k is not None and k < 0:
                    for i in range(m, _CHUNK):
                        d[i] |= 0x0F  # the rest half erased: some bits came back, some did not
                if d == _FF:
                    blk[c] = None
            if k is not None and k < 0:
                n = bs
            if blk.count(None) == _PER_BLOCK:
                del self._blk[block]
        self._sync(a, n)
        if k is not None:
            self._die()
        if self.dead:
            return
        self.erases += 1
        if self.wear[block] < 255:
            self.wear[block] += 1

    def _program(self, a, buf):
        mv = memoryview(buf)
        i = 0
        while i < len(buf):
            # one chunk's part at a time
            b, o = divmod(a + i, _BLOCK)
            c, o = divmod(o, _CHUNK)
            j = min(len(buf), i + _CHUNK - o)
            d = self._blk.get(b)
            d = None if d is None else d[c]
            if d is not None:
                for x in range(i, j):
                    if mv[x] & ~d[o + x - i] & 0xFF:
                        raise FlashError(5)  # a 1 over a 0: NOR cannot, the code is wrong
            i = j
        k = self._step()
        n = len(buf) if k is None else min(abs(k), len(buf))
        end = len(buf) if k is not None and k < 0 else n
        i = 0
        while i < end:
            b, o = divmod(a + i, _BLOCK)
            c, o = divmod(o, _CHUNK)
            j = min(end, i + _CHUNK - o)
            d = self._chunk(b, c)
            for x in range(i, j):
                # a negative tear: bytes past -k got only some of their 0 bits
                d[o + x - i] &= mv[x] if x < n else mv[x] | 0xF0
            i = j
        if k is not None and k < 0:
            n = len(buf)
        self._sync(a, n)
        if k is not None:
            self._die()
        if self.dead:
            return
        self.programs += 1
        self.bytes_programmed += n

    def _sync(self, a, n):
        f = self._f
        if f is not None and n:
            buf = bytearray(min(n, _CHUNK))
            f.seek(a)
            while n:
                k = min(n, _CHUNK)
                mv = memoryview(buf)[:k]
                self._get(a, mv)
                f.write(mv)
                a += k
                n -= k
            f.flush()


class Port:
    # One boot's handle on the chip (what SimHal.partition() hands the firmware).
    # After power_on() starts the next boot it is dead for good: the last boot's
    # leftovers (a littlefs file finalised by a late GC) can never write into the
    # next boot's flash. Dead, it allocates nothing (a GC finaliser runs with the
    # heap locked): reads give 0xFF, writes vanish.
    def __init__(self, chip):
        self.chip = chip
        self.gen = chip.gen

    def readblocks(self, block, buf, offset=0):
        c = self.chip
        if c.gen != self.gen:
            for i in range(len(buf)):
                buf[i] = 0xFF
            return
        c.readblocks(block, buf, offset)

    def writeblocks(self, block, buf, offset=None):
        c = self.chip
        if c.gen == self.gen:
            c.writeblocks(block, buf, offset)

    def ioctl(self, op, arg):
        c = self.chip
        if c.gen == self.gen or op == _IOCTL_BLOCK_COUNT or op == _IOCTL_BLOCK_SIZE:
            return c.ioctl(op, arg)
        return 0
