# The lock's deny list (docs/protocol.md §5.2): revoked tickets and users,
# versioned, with a compact persistent form that carries its own CRC.
import struct
import binascii
from lockcodes import E_OK, E_STALE, E_CAPACITY, DK_TICKET, DK_USER, DENY_CAPACITY

_HEAD = ">IIB"   # version, updated_at, count
_ENTRY = ">BII"  # kind, id, expires


class DenyList:
    def __init__(self, capacity=DENY_CAPACITY, version=0, entries=None, updated_at=0):
        self.capacity = capacity
        self.version = version
        self.entries = entries or []
        self.updated_at = updated_at

    def is_denied(self, ticket_id, user_id, now, certain):
        for kind, ident, expires in self.entries:
            if certain and expires <= now:
                continue  # no ticket it covered is valid any more
            if (kind == DK_TICKET and ident == ticket_id) or (kind == DK_USER and ident == user_id):
                return True
        return False

    def replace(self, version, entries, now, certain):
        if version <= self.version:
            return E_STALE
        if len(entries) > self.capacity:
            return E_CAPACITY
        self.version = version
        self.entries = [tuple(e) for e in entries if not certain or e[2] > now]
        self.updated_at = now
        return E_OK

    def age_s(self, now):
        return now - self.updated_at if self.version and now > self.updated_at else 0

    def encode(self):
        body = struct.pack(_HEAD, self.version, self.updated_at, len(self.entries))
        body += b"".join(struct.pack(_ENTRY, k, i, e) for k, i, e in self.entries)
        return body + struct.pack(">I", binascii.crc32(body) & 0xFFFFFFFF)

    @classmethod
    def decode(cls, blob, capacity=DENY_CAPACITY):
        blob = bytes(blob)
        if len(blob) < 13 or struct.unpack(">I", blob[-4:])[0] != binascii.crc32(blob[:-4]) & 0xFFFFFFFF:
            raise ValueError("deny list damaged")
        version, updated_at, count = struct.unpack(_HEAD, blob[:9])
        if len(blob) != 13 + 9 * count or count > capacity:
            raise ValueError("deny list damaged")
        entries = [struct.unpack(_ENTRY, blob[9 + 9 * i:18 + 9 * i]) for i in range(count)]
        return cls(capacity, version, entries, updated_at)
