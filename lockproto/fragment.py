"""Transports (§3), host side: BLE fragmentation (§3.1) and serial framing (§3.2)."""

from __future__ import annotations

import struct
import time
import zlib
from typing import Callable

from .codes import DEFAULT_MTU, FRAGMENT_TIMEOUT, MAX_MESSAGE, Err
from .errors import ProtocolError

FIRST = 0x80
LAST = 0x40
INDEX = 0x3F
MAGIC = b"LK"
MIN_MTU = 5  # one header byte and one message byte


def _message(msg: bytes) -> bytes:
    if not isinstance(msg, (bytes, bytearray, memoryview)):
        raise ProtocolError(Err.MALFORMED)
    msg = bytes(msg)
    if not msg:
        raise ProtocolError(Err.MALFORMED)
    if len(msg) > MAX_MESSAGE:
        raise ProtocolError(Err.TOO_LARGE)
    return msg


# ---- BLE (§3.1) ----

def fragment(msg: bytes, mtu: int = DEFAULT_MTU) -> list[bytes]:
    """Split one message into characteristic values: a header byte and at most ``mtu - 4`` message bytes.

    Header: bit 7 FIRST, bit 6 LAST, bits 0..5 the fragment's index mod 64.
    Raises ProtocolError MALFORMED (empty) / TOO_LARGE (over 1024 bytes), ValueError for an MTU below 5.
    """
    msg = _message(msg)
    if not isinstance(mtu, int) or mtu < MIN_MTU:
        raise ValueError(f"ATT MTU must be at least {MIN_MTU}")
    size = mtu - 4
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
    """The receiver of §3.1, one per direction and connection.

    :meth:`feed` takes one written or notified value and returns the whole message on
    ``LAST``, None while one is incomplete (or for a stray non-FIRST fragment while
    idle, which is ignored), or raises ProtocolError FRAGMENT / TOO_LARGE after
    discarding the message in progress. A message in progress is dropped after
    ``timeout`` seconds (2 s) without a fragment; ``clock`` is injectable for tests.
    """

    def __init__(self, timeout: float = FRAGMENT_TIMEOUT, clock: Callable[[], float] = time.monotonic) -> None:
        self.timeout = timeout
        self.clock = clock
        self.reset()

    def reset(self) -> None:
        """Discard any message in progress."""
        self._buf: bytearray | None = None
        self._next = 0
        self._last = 0.0

    @property
    def in_progress(self) -> bool:
        return self._buf is not None

    def _fail(self, code: Err) -> None:
        self.reset()
        raise ProtocolError(code)

    def feed(self, frag: bytes) -> bytes | None:
        now = self.clock()
        if self._buf is not None and now - self._last > self.timeout:
            self.reset()
        if not isinstance(frag, (bytes, bytearray, memoryview)) or not len(frag):
            self._fail(Err.FRAGMENT)  # no header at all
        frag = bytes(frag)
        h = frag[0]
        if h & FIRST:
            self.reset()
            self._buf = bytearray()
        elif self._buf is None:
            return None
        if (h & INDEX) != self._next or len(frag) < 2:
            self._fail(Err.FRAGMENT)
        assert self._buf is not None
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


# ---- serial (§3.2) ----

def encode_frame(msg: bytes) -> bytes:
    """``"LK" || u16(len) || message || u32(crc32(u16(len) || message))``."""
    msg = _message(msg)
    head = struct.pack(">H", len(msg)) + msg
    return MAGIC + head + struct.pack(">I", zlib.crc32(head))


class FrameDecoder:
    """The serial receiver of §3.2.

    Hunts for ``"LK"``, reads the length, and drops a frame whose length is out of
    1..1024 or whose CRC is wrong, resuming the hunt one byte after its ``"L"``.
    :meth:`feed` takes any slice of the byte stream and returns the messages completed by it.
    """

    def __init__(self) -> None:
        self._buf = b""

    def reset(self) -> None:
        self._buf = b""

    def feed(self, data: bytes) -> list[bytes]:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError("FrameDecoder.feed takes bytes")
        buf = self._buf + bytes(data)
        out: list[bytes] = []
        while True:
            i = buf.find(MAGIC)
            if i < 0:
                buf = buf[-1:] if buf.endswith(b"L") else b""  # a trailing "L" may start a frame
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
