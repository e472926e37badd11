# A stand-in for MicroPython's `bluetooth` module on the unix port, for the
# simulator's fake aioble: only what aioble users touch (UUID, a few flags).
# Stateless: the radio lives in aioble.Radio objects, never here.

FLAG_READ = 0x0002
FLAG_WRITE_NO_RESPONSE = 0x0004
FLAG_WRITE = 0x0008
FLAG_NOTIFY = 0x0010
FLAG_INDICATE = 0x0020

_HEX = "0123456789abcdef"


class UUID:
    # UUID(0x180F) (16-bit), UUID("65b3434c-caee-4cff-b110-b8094531587c") (128-bit),
    # or UUID(bytes) of 2 or 16 bytes, little-endian as on air (like the real one).
    def __init__(self, value):
        if isinstance(value, UUID):
            self._le = value._le
        elif isinstance(value, int):
            if not 0 <= value <= 0xFFFF:
                raise ValueError("invalid UUID")
            self._le = bytes((value & 0xFF, value >> 8))
        elif isinstance(value, str):
            h = value.replace("-", "").lower()
            if len(h) != 32 or any(c not in _HEX for c in h):
                raise ValueError("invalid UUID")
            self._le = bytes(reversed(bytes(int(h[i:i + 2], 16) for i in range(0, 32, 2))))
        elif isinstance(value, (bytes, bytearray)) and len(value) in (2, 16):
            self._le = bytes(value)
        else:
            raise ValueError("invalid UUID")

    def le(self):
        # the on-air bytes (the real UUID offers them through the buffer protocol)
        return self._le

    def __eq__(self, other):
        return isinstance(other, UUID) and other._le == self._le

    def __ne__(self, other):
        return not self.__eq__(other)

    def __hash__(self):
        return hash(self._le)

    def __str__(self):
        b = bytes(reversed(self._le))
        if len(b) == 2:
            return "0x%02x%02x" % (b[0], b[1])
        h = "".join("%02x" % x for x in b)
        return "%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:])

    def __repr__(self):
        return "UUID(%s)" % self
