# The lock's key slots (docs/protocol.md §5.3): two slots A/B, each an epoch and
# a 32-byte master with a CRC; the current slot is the one with the higher
# epoch whose CRC holds. A re-key writes the spare slot, then the pointer flips
# by the epoch itself, so a power cut leaves either the old or the new key.
# Persistence goes through a key-value store `kv` (load(name) / save(name, b)),
# atomic per name; RamKV below keeps it in memory.
import struct
import binascii
from lockcrypto import LockKeys

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

# protocol numbers (docs/protocol.md; the same as lockcodes, tests/test_fw_consts.py)
_E_OK = const(0)
_E_STALE = const(19)
_E_STORAGE = const(25)

_SLOT = ">I32sI"  # epoch, master, crc32(epoch || master)
_NAMES = (b"keyA", b"keyB")


class RamKV:
    def __init__(self):
        self._d = {}

    def load(self, name):
        return self._d.get(name)

    def save(self, name, blob):
        self._d[name] = bytes(blob)

    def delete(self, name):
        self._d.pop(name, None)


def _pack(epoch, master):
    body = struct.pack(">I32s", epoch, master)
    return body + struct.pack(">I", binascii.crc32(body) & 0xFFFFFFFF)


def _unpack(blob):
    # -> (epoch, master) or None when absent or damaged
    if blob is None or len(blob) != 40:
        return None
    epoch, master, crc = struct.unpack(_SLOT, blob)
    if crc != binascii.crc32(blob[:36]) & 0xFFFFFFFF or epoch == 0:
        return None
    return epoch, master


class KeyStore:
    def __init__(self, kv, lock_id):
        self.kv = kv
        self.lock_id = lock_id
        self.keys = None  # LockKeys of the current epoch; None: factory mode
        self._slot = 0
        best = None
        for i in (0, 1):
            s = _unpack(kv.load(_NAMES[i]))
            if s is not None and (best is None or s[0] > best[0]):
                best = s
                self._slot = i
        if best is not None:
            self.keys = LockKeys(best[1], lock_id, best[0])

    def provision(self, epoch, master):
        # factory mode only: the first key
        self.kv.save(_NAMES[0], _pack(epoch, master))
        self._slot = 0
        self.keys = LockKeys(master, self.lock_id, epoch)

    def install(self, epoch, master):
        # re-key: write the spare slot; the higher valid epoch wins on reload
        if self.keys is not None and epoch <= self.keys.epoch:
            return _E_STALE
        spare = 1 - self._slot
        blob = _pack(epoch, master)
        try:
            self.kv.save(_NAMES[spare], blob)
        except OSError:
            return _E_STORAGE
        if self.kv.load(_NAMES[spare]) != blob:
            return _E_STORAGE
        self._slot = spare
        self.keys = LockKeys(master, self.lock_id, epoch)
        return _E_OK
