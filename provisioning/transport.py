"""Transports: one request/response exchange of whole protocol messages with one lock.

Every transport offers the same three calls, so the client and the CLI do not care
whether the lock is on a cable, on the air or in the simulator:

* ``hello()`` starts a new connection and returns the lock's HELLO;
* ``request(msg)`` sends one message and returns the lock's one answer;
* ``close()`` ends the connection (always called, in ``finally``).

Every wait has a timeout; a lock that stays silent raises :class:`TransportError`.
"""

from __future__ import annotations

import time
from typing import Protocol

from lockproto.fragment import FrameDecoder, encode_frame

HELLO_REQUEST = b"\x01"


class TransportError(Exception):
    """The lock could not be reached or stopped answering (no protocol code: nothing was said)."""


class Transport(Protocol):
    def hello(self) -> bytes: ...

    def request(self, msg: bytes) -> bytes: ...

    def close(self) -> None: ...


class SerialTransport:
    """The maintenance cable (protocol §3.2): framed messages over a serial port.

    ``port`` is a device path (``/dev/ttyUSB0``, or a simulated unit's ``/dev/pts/N``)
    or an already open pyserial object (anything with ``read``, ``write`` and ``close``).
    """

    def __init__(self, port, baudrate: int = 115200, timeout: float = 5.0) -> None:
        if isinstance(port, str):
            import serial  # pyserial
            try:
                port = serial.Serial(port, baudrate, timeout=0.1)
            except (serial.SerialException, OSError) as e:
                raise TransportError(f"cannot open {port}: {e}") from None
        self._port = port
        self.timeout = timeout
        self._dec = FrameDecoder()

    def _send(self, msg: bytes) -> None:
        try:
            self._port.write(encode_frame(msg))
        except OSError as e:
            raise TransportError(f"write failed: {e}") from None

    def _receive(self) -> bytes:
        end = time.monotonic() + self.timeout
        while time.monotonic() < end:
            try:
                data = self._port.read(256)
            except OSError as e:
                raise TransportError(f"read failed: {e}") from None
            for msg in self._dec.feed(data):
                return msg
        raise TransportError(f"the lock did not answer within {self.timeout:g} s")

    def hello(self) -> bytes:
        self._dec.reset()
        reset = getattr(self._port, "reset_input_buffer", None)
        if reset is not None:
            reset()
        self._send(HELLO_REQUEST)
        return self._receive()

    def request(self, msg: bytes) -> bytes:
        self._send(msg)
        return self._receive()

    def close(self) -> None:
        try:
            self._port.close()
        except OSError:
            pass
