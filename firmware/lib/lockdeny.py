# The lock's deny list (docs/protocol.md §5.2): revoked tickets (kind 1) and
# users (kind 2), versioned, replaced whole by a newer server list.
# Entries are kept packed as on the wire (9 bytes each: u8 kind, u32 id,
# u32 expires), 576 bytes for a full list instead of 64 tuples.
#
# Persistent form (encode / decode), for the storage layer to write atomically:
#   u8 format (1) || u32 version || u32 updated_at || u8 count
#   || count x (u8 kind || u32 id || u32 expires) || u32 CRC-32 of all before
# decode raises ValueError for any damage (every single-byte change is caught
# by the CRC; lengths, format, kinds and the capacity are checked as well).
#
# updated_at is the lock time of the last accepted list, for DENY_STALE
# (age_s); a lock that never received a list has updated_at 0, so it reads as
# stale and phones push the current list.
import struct
from binascii import crc32

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

# protocol numbers (docs/protocol.md; the same as lockcodes, tests/test_fw_consts.py)
_E_OK = const(0)
_E_STALE = const(19)
_E_CAPACITY = const(21)
_E_MALFORMED = const(1)
_DK_TICKET = const(1)
_DK_USER = const(2)
_DENY_CAPACITY = const(64)

_FORMAT = const(1)
_HEAD = ">BIIB"     # format, version, updated_at, count
_HEAD_LEN = const(10)
_ENTRY = ">BII"     # kind, id, expires
_ENTRY_LEN = const(9)
_CRC_LEN = const(4)
_U32 = const(0xFFFFFFFF)


def _pack(entries):
    out = bytearray(_ENTRY_LEN * len(entries))
    for i in range(len(entries)):
        kind, ident, expires = entries[i]
        struct.pack_into(_ENTRY, out, _ENTRY_LEN * i, kind, ident, expires)
    return bytes(out)


class DenyList:
    def __init__(self, capacity=_DENY_CAPACITY):
        self.capacity = capacity
        self.version = 0
        self.updated_at = 0
        self._blob = b""   # the entries, packed

    def __len__(self):
        return len(self._blob) // _ENTRY_LEN

    @property
    def entries(self):
        # -> [(kind, id, expires)], built on demand
        b = self._blob
        return [struct.unpack_from(_ENTRY, b, i) for i in range(0, len(b), _ENTRY_LEN)]

    def is_denied(self, ticket_id, user_id, now, certain):
        # expired entries are ignored only while the time is certain (§2.5)
        b = self._blob
        for i in range(0, len(b), _ENTRY_LEN):
            kind, ident, expires = struct.unpack_from(_ENTRY, b, i)
            if certain and expires <= now:
                continue
            if (kind == _DK_TICKET and ident == ticket_id) or (kind == _DK_USER and ident == user_id):
                return True
        return False

    def replace(self, version, entries, now, certain):
        # a complete new list -> status; checks in the order of §5.2 (after the MAC)
        if len(entries) > self.capacity:
            return _E_CAPACITY
        for e in entries:
            if e[0] != _DK_TICKET and e[0] != _DK_USER:
                return _E_MALFORMED
        if version <= self.version:
            return _E_STALE
        if certain:
            entries = [e for e in entries if e[2] > now]
        self._blob = _pack(entries)
        self.version = version
        self.updated_at = now
        return _E_OK

    def age_s(self, now):
        # seconds of lock time since the last accepted list (DENY_STALE)
        return now - self.updated_at if now > self.updated_at else 0

    def encode(self):
        body = struct.pack(_HEAD, _FORMAT, self.version, self.updated_at, len(self)) + self._blob
        return body + struct.pack(">I", crc32(body) & _U32)

    @classmethod
    def decode(cls, blob, capacity=_DENY_CAPACITY):
        blob = bytes(blob)
        n = len(blob)
        if n < _HEAD_LEN + _CRC_LEN or struct.unpack_from(">I", blob, n - _CRC_LEN)[0] != crc32(blob[:-_CRC_LEN]) & _U32:
            raise ValueError("deny list damaged")
        fmt, version, updated_at, count = struct.unpack_from(_HEAD, blob, 0)
        if fmt != _FORMAT or count > capacity or n != _HEAD_LEN + _ENTRY_LEN * count + _CRC_LEN:
            raise ValueError("deny list damaged")
        body = blob[_HEAD_LEN:n - _CRC_LEN]
        for i in range(0, len(body), _ENTRY_LEN):
            if body[i] != _DK_TICKET and body[i] != _DK_USER:
                raise ValueError("deny list damaged")
        d = cls(capacity)
        d.version = version
        d.updated_at = updated_at
        d._blob = body
        return d
