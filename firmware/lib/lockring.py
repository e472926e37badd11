# The journal's record store on raw NOR flash (docs/storage.md): a ring of
# erase blocks on a block device (esp32.Partition or its twin, or a Region of
# one). Each block starts with a header, then fixed slots:
#   header (32): "LKJ1" || u32 first_seq || prev_chain(8) || 12 x 0xFF || u32 CRC-32 of bytes 0..27
#   slot (36):   record (32, docs/protocol.md §6.1) || u32 CRC-32 of the record
# Records are appended in sequence; slot i of a block holds first_seq + i.
# A block is erased only when the ring moves into it, and only once none of its
# records is retained any more (the journal drops them first: full()).
# Dropping (ack, overflow) only moves the tail in RAM: the journal's persisted
# state says what was acknowledged; what the ring still holds below the tail
# stays readable until the block is erased, which is what lets prev_chain()
# give the chain before the oldest retained record after any reboot.
# Boot recovery (scan): headers tell which blocks form the log (contiguous
# first_seq, newest = highest); the head block's slots are read up to the first
# slot that is not a whole record with a good CRC and the expected sequence.
# An all-0xFF slot is free; anything else is a torn final record: it is
# discarded and the next record starts a fresh block (NOR cannot rewrite it).
import struct
from array import array
from binascii import crc32

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

_MAGIC = b"LKJ1"
_HDR = const(32)
_SLOT = const(36)
_REC = const(32)
_BLOCK = const(4096)
_FREE = b"\xff" * _SLOT
_FREE256 = b"\xff" * 256


def _crc(b):
    return struct.pack(">I", crc32(b) & 0xFFFFFFFF)


def _header(first_seq, prev_chain):
    h = _MAGIC + struct.pack(">I", first_seq) + bytes(prev_chain) + b"\xff" * 12
    return h + _crc(h)


class FlashRecords:
    def __init__(self, dev, block_size=_BLOCK):
        self.dev = dev
        self.nblocks = dev.ioctl(4, 0)
        self.block_size = block_size
        if dev.ioctl(5, 0) != block_size or self.nblocks < 3:
            raise OSError(22)  # EINVAL: not a ring device
        self.per_block = (block_size - _HDR) // _SLOT
        # guaranteed: one block may be the next to erase (up to nblocks * per_block are kept)
        self.capacity = (self.nblocks - 1) * self.per_block
        self._buf = bytearray(_SLOT)
        self.damaged = 0  # retained records read back with a bad CRC
        self._scan()

    # ---- the record-store interface of lockjournal ----

    def count(self):
        return 0 if self._head < self._tail else self._head - self._tail + 1

    def oldest(self):
        return self.get(0) if self.count() else None

    def drop_oldest(self):
        if not self.count():
            raise IndexError()
        self._tail += 1
        nb = (self._tb + 1) % self.nblocks
        if self._tb != self._hb and self._tail >= self._first[nb]:
            self._tb = nb

    def get(self, i):
        if not 0 <= i < self.count():
            raise IndexError()
        b, k = self._where(self._tail + i)
        return self._read_slot(b, k)

    def full(self):
        # the next append would have to erase a block that still holds retained
        # records: the journal drops them (all of that block) first, so what RAM
        # holds is always what the flash holds and a reboot recovers it exactly
        if self._hb < 0 or not self.count() or (self._closed and self._hn == 0):
            return False  # (a head block holding only a torn slot is erased and reused)
        return (self._hn >= self.per_block or self._closed) and (self._hb + 1) % self.nblocks == self._tb

    def prev_chain(self):
        # the chain value before the oldest retained record (None: nothing retained)
        if not self.count():
            return None
        b, k = self._where(self._tail)
        if k:
            return self._read_slot(b, k - 1)[24:]
        return self._read_header(b)[1]

    def append(self, rec, prev_chain):
        # prev_chain: the chain before rec (goes into a new block's header)
        if len(rec) != _REC:
            raise ValueError("record")
        seq = struct.unpack(">I", rec[:4])[0]
        if seq != self._head + 1:
            if self.count() or seq <= self._head:
                raise ValueError("sequence")
            self._closed = True  # an empty ring taking up a later sequence: a block of its own
        if self._hb < 0 or self._hn >= self.per_block or self._closed:
            nb = 0 if self._hb < 0 else (self._hb + 1) % self.nblocks
            if self._hb >= 0 and self._closed and self._hn == 0:
                # a head block with nothing but a torn record is erased and reused:
                # two blocks must never claim the same first sequence
                nb = self._hb
            if self.count() and nb == self._tb:
                raise OSError(28)  # ENOSPC: the journal must drop first
            self.dev.ioctl(6, nb)
            self.dev.writeblocks(nb, _header(seq, prev_chain), 0)
            if not self.count():
                self._tb = nb
                self._tail = seq
            self._hb, self._hn, self._closed = nb, 0, False
            self._first[nb] = seq
        self.dev.writeblocks(self._hb, bytes(rec) + _crc(rec), _HDR + self._hn * _SLOT)
        self._hn += 1
        self._head = seq

    def clear(self):
        # erase every block holding anything (provisioning, factory reset): no
        # record of an earlier life survives, and the ring starts over
        buf = bytearray(256)
        for b in range(self.nblocks):
            for off in range(0, self.block_size, 256):
                self.dev.readblocks(b, buf, off)
                if buf != _FREE256:
                    self.dev.ioctl(6, b)
                    break
        self._scan()

    # ---- internals ----

    def _read_header(self, b):
        # -> (first_seq, prev_chain) or None
        h = bytearray(_HDR)
        self.dev.readblocks(b, h, 0)
        if h[:4] != _MAGIC or h[28:] != _crc(h[:28]):
            return None
        return struct.unpack(">I", h[4:8])[0], bytes(h[8:16])

    def _read_slot(self, b, k):
        # a retained record whose CRC fails (bit rot, never a torn write: those
        # are found at boot) is still handed out as stored: the server's chain
        # check shows the damage, and the rest of the journal stays readable
        buf = self._buf
        self.dev.readblocks(b, buf, _HDR + k * _SLOT)
        if buf[32:] != _crc(buf[:32]):
            self.damaged += 1
        return bytes(buf[:32])

    def _where(self, seq):
        # -> (block, slot) of a retained or still-readable sequence
        b = self._hb
        for _ in range(self.nblocks):
            if self._first[b] and self._first[b] <= seq:
                return b, seq - self._first[b]
            b = (b - 1) % self.nblocks
        raise IndexError()

    def _scan(self):
        n = self.nblocks
        first = array("I", bytes(4 * n))  # first sequence per block (0: none)
        hb = -1
        for b in range(n):
            h = self._read_header(b)
            if h is not None and h[0] > 0:
                first[b] = h[0]
                if hb < 0 or h[0] > first[hb]:
                    hb = b
        self._first = array("I", bytes(4 * n))
        self._hb, self._hn, self._closed = hb, 0, False
        self._head, self._tail, self._tb = 0, 1, hb
        if hb < 0:
            return
        # the head block: its slots up to the first free one; only the last of
        # them can be torn (written last, power cut): discarded if it is not a
        # whole record with a good CRC and its sequence. A bad one before it is
        # bit rot in a record that was durable: kept (see _read_slot).
        buf = self._buf
        f = first[hb]
        k = 0
        while k < self.per_block:
            self.dev.readblocks(hb, buf, _HDR + k * _SLOT)
            if buf == _FREE:
                break
            k += 1
        if k:
            self.dev.readblocks(hb, buf, _HDR + (k - 1) * _SLOT)
        if k and (buf[32:] != _crc(buf[:32]) or struct.unpack(">I", buf[:4])[0] != f + k - 1):
            k -= 1
            self._closed = True  # torn: never written over
        self._hn = k
        self._head = f + k - 1
        self._first[hb] = f
        # older blocks while their sequences run on into the next one (and the
        # slot before the next block's first sequence was written: no phantoms)
        tb, nxt = hb, f
        for _ in range(n - 1):
            b = (tb - 1) % n
            if not first[b] or first[b] >= nxt or nxt - first[b] > self.per_block:
                break
            self.dev.readblocks(b, buf, _HDR + (nxt - first[b] - 1) * _SLOT)
            if buf == _FREE:
                break
            self._first[b] = first[b]
            tb, nxt = b, first[b]
        self._tb = tb
        self._tail = first[tb]
        if self._head < self._tail:
            self._tail = self._head + 1  # nothing but an empty head block
            self._tb = hb
