"""Transports (§3): BLE fragmentation and serial framing, host side."""

from __future__ import annotations

import struct
import time
import zlib

from .codes import DEFAULT_MTU, MAX_MESSAGE, Err
from .errors import ProtocolError

FIRST = 0x80
LAST = 0x40
INDEX = 0x3F
FRAGMENT_TIMEOUT = 2.0
MAGIC = b"LK"


def _check(msg: bytes) -> None:
    if not msg:
        raise ProtocolError(Err.MALFORMED)
    if len(msg) > MAX_MESSAGE:
        raise ProtocolError(Err.TOO_LARGE)


def fragment(msg: bytes, mtu: int = DEFAULT_MTU) -> list[bytes]:
    """Split one message into characteristic values of at most ``mtu - 3`` bytes."""
    _check(msg)
    size = mtu - 4
    if size < 1:
        raise ValueError("ATT MTU must be at least 5")
    chunks = [msg[i:i + size] for i in range(0, len(msg), size)]
    out = []
    for i, chunk in enumerate(chunks):
        h = i & INDEX
        if i == 0:
            h |= FIRST
        if i == len(chunks) - 1:
            h |= LAST
        out.append(bytes([h]) + chunk)
    return out


class Reassembler:
    """Receiver of §3.1: ``feed`` returns a whole message or None, or raises ProtocolError."""

    def __init__(self, timeout: float = FRAGMENT_TIMEOUT, clock=time.monotonic):
        self.timeout = timeout
        self.clock = clock
        self.reset()

    def reset(self) -> None:
        self._buf: bytearray | None = None
        self._next = 0
        self._last = 0.0

    def _fail(self, code: Err):
        self.reset()
        raise ProtocolError(code)

    def feed(self, frag: bytes) -> bytes | None:
        now = self.clock()
        if self._buf is not None and now - self._last > self.timeout:
            self.reset()
        if not frag:
            self._fail(Err.FRAGMENT)
        h = frag[0]
        if h & FIRST:
            self.reset()
            self._buf = bytearray()
        elif self._buf is None:
            return None
        if (h & INDEX) != self._next or len(frag) < 2:
            self._fail(Err.FRAGMENT)
        if len(self._buf) + len(frag) - 1 > MAX_MESSAGE:
            self._fail(Err.TOO_LARGE)
        self._buf += frag[1:]
        self._next = (self._next + 1) & INDEX
        self._last = now
        if h & LAST:
            msg = bytes(self._buf)
            self.reset()
            return msg
        return None


def encode_frame(msg: bytes) -> bytes:
    """Serial frame of §3.2."""
    _check(msg)
    head = struct.pack(">H", len(msg)) + bytes(msg)
    return MAGIC + head + struct.pack(">I", zlib.crc32(head))


class FrameDecoder:
    """Serial receiver of §3.2: hunts for "LK", checks length and CRC, resyncs after bad frames."""

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, data: bytes) -> list[bytes]:
        buf = self._buf + bytes(data)
        out = []
        while True:
            i = buf.find(MAGIC)
            if i < 0:
                buf = buf[-1:] if buf.endswith(b"L") else b""
                break
            buf = buf[i:]
            if len(buf) < 4:
                break
            n = struct.unpack(">H", buf[2:4])[0]
            if not 1 <= n <= MAX_MESSAGE:
                buf = buf[1:]
                continue
            if len(buf) < n + 8:
                break
            if struct.unpack(">I", buf[4 + n:8 + n])[0] != zlib.crc32(buf[2:4 + n]):
                buf = buf[1:]
                continue
            out.append(buf[4:4 + n])
            buf = buf[8 + n:]
        self._buf = buf
        return out
