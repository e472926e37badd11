# Transports (docs/protocol.md §3): BLE fragmentation (§3.1) and serial framing (§3.2).
import struct
import binascii
from lockwire import ProtoError

try:
    from time import ticks_diff as _ticks_diff
except ImportError:  # CPython
    def _ticks_diff(a, b):
        return a - b

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

# protocol numbers (docs/protocol.md; the same as lockcodes, tests/test_fw_consts.py)
_MAX_MESSAGE = const(1024)
_DEFAULT_MTU = const(23)
_FRAG_FIRST = const(0x80)
_FRAG_LAST = const(0x40)
_FRAG_INDEX = const(0x3F)
_E_MALFORMED = const(1)
_E_TOO_LARGE = const(5)
_E_FRAGMENT = const(6)

_FRAG_TIMEOUT_MS = const(2000)
_MAGIC = b"LK"
_FRAME_MAX = const(1032)  # "LK" + u16 + 1024 + u32


def _check_msg(msg):
    if not msg:
        raise ProtoError(_E_MALFORMED)
    if len(msg) > _MAX_MESSAGE:
        raise ProtoError(_E_TOO_LARGE)


# ---- BLE fragments (§3.1) ----

def fragment(msg, mtu=_DEFAULT_MTU):
    # One message -> list of characteristic values (header + up to mtu - 4 bytes).
    _check_msg(msg)
    size = mtu - 4
    if size < 1:
        raise ValueError("mtu")
    out = []
    mv = memoryview(msg)
    n = (len(msg) + size - 1) // size
    for i in range(n):
        h = i & _FRAG_INDEX
        if i == 0:
            h |= _FRAG_FIRST
        if i == n - 1:
            h |= _FRAG_LAST
        out.append(bytes((h,)) + mv[i * size:(i + 1) * size])
    return out


class Reassembler:
    # Receiver side of §3.1. feed() returns a whole message, None, or raises
    # ProtoError(FRAGMENT / TOO_LARGE) after discarding the message in progress.
    def __init__(self, timeout_ms=_FRAG_TIMEOUT_MS):
        self.timeout_ms = timeout_ms
        self.reset()

    def reset(self):
        self._buf = None  # None: no message in progress
        self._next = 0
        self._last_ms = None

    def _fail(self, code):
        self.reset()
        raise ProtoError(code)

    def feed(self, frag, now_ms=None):
        # now_ms (time.ticks_ms()) enables the 2 s drop of a stalled message.
        if (self._buf is not None and now_ms is not None and self._last_ms is not None
                and _ticks_diff(now_ms, self._last_ms) > self.timeout_ms):
            self.reset()
        if not frag:
            self._fail(_E_FRAGMENT)
        h = frag[0]
        if h & _FRAG_FIRST:
            self.reset()
            self._buf = bytearray()
        elif self._buf is None:
            return None  # not FIRST while idle: ignored
        if (h & _FRAG_INDEX) != self._next or len(frag) < 2:
            self._fail(_E_FRAGMENT)
        if len(self._buf) + len(frag) - 1 > _MAX_MESSAGE:
            self._fail(_E_TOO_LARGE)
        self._buf.extend(frag[1:])
        self._next = (self._next + 1) & _FRAG_INDEX
        self._last_ms = now_ms
        if h & _FRAG_LAST:
            msg = bytes(self._buf)
            self.reset()
            return msg
        return None


# ---- serial frames (§3.2) ----

def _crc(data):
    return binascii.crc32(data) & 0xFFFFFFFF


def encode_frame(msg):
    _check_msg(msg)
    head = struct.pack(">H", len(msg)) + bytes(msg)
    return _MAGIC + head + struct.pack(">I", _crc(head))


class FrameDecoder:
    # Hunts for "LK", drops frames with a bad length or CRC and resumes one byte
    # after the "L". Buffer holds at most one frame plus one input slice.
    def __init__(self):
        self._buf = b""

    def reset(self):
        self._buf = b""

    def feed(self, data):
        out = []
        data = bytes(data)
        for off in range(0, len(data), _FRAME_MAX):
            self._buf += data[off:off + _FRAME_MAX]
            self._scan(out)
        return out

    def _scan(self, out):
        buf = self._buf
        while True:
            i = buf.find(_MAGIC)
            if i < 0:
                # keep a trailing "L": it may start the next frame
                buf = buf[-1:] if buf[-1:] == b"L" else b""
                break
            buf = buf[i:]
            if len(buf) < 4:
                break
            n = (buf[2] << 8) | buf[3]
            if n < 1 or n > _MAX_MESSAGE:
                buf = buf[1:]
                continue
            if len(buf) < n + 8:
                break
            if struct.unpack(">I", buf[4 + n:8 + n])[0] != _crc(buf[2:4 + n]):
                buf = buf[1:]
                continue
            out.append(buf[4:4 + n])
            buf = buf[8 + n:]
        self._buf = buf
