# Serial maintenance transport (docs/protocol.md §3.2, §4.1, §9): framed messages
# over an asyncio stream, a thin adapter around the pure LockSession.
#
#   SerialLink(stream, session_factory, hello_ms=30000, msg_ms=30000,
#              session_ms=120000, frag_ms=2000, read_size=256)
#     stream          asyncio stream: `await read(n)` (b"" at end of stream),
#                     `write(b)`, `await drain()`; on a unit
#                     asyncio.StreamReader(machine.UART(..., timeout=0)), which is both
#     session_factory () -> a fresh LockSession-like object
#     provision       (nonce_L or None, msg) -> response, for PROVISION messages
#                     (§3.4: serial only); None: PROVISION goes to the session,
#                     which answers UNKNOWN_TYPE
#
# The one-byte message 0x01 asks for a HELLO and starts a new connection (a
# fresh session each time); every other message goes to the current session.
# Frames with a bad length or CRC are dropped without an answer (FrameDecoder);
# a frame stalled for frag_ms is dropped when the next bytes arrive. A session
# that times out (HELLO -> AUTH, between messages, whole session) is closed and
# announced with a framed ERROR TIMEOUT. Only frames are ever written to the port.
# `serve()` runs until the stream ends; `run()` until `stop()`.
import asyncio
from time import ticks_ms, ticks_add, ticks_diff
from lockwire import encode_error
from lockfrag import FrameDecoder, encode_frame
from locklink import Link

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

# protocol numbers (docs/protocol.md; the same as lockcodes, tests/test_fw_consts.py)
_E_TIMEOUT = const(26)
_T_PROVISION = const(6)

_HELLO_MS = const(30000)
_MSG_MS = const(30000)
_SESSION_MS = const(120000)
_FRAG_MS = const(2000)
_WRITE_MS = const(2000)
_HELLO_REQUEST = b"\x01"


class SerialLink(Link):
    def __init__(self, stream, session_factory, hello_ms=_HELLO_MS, msg_ms=_MSG_MS,
                 session_ms=_SESSION_MS, frag_ms=_FRAG_MS, read_size=256, provision=None):
        self._stream = stream
        self._factory = session_factory
        self._provision = provision
        self.hello_ms = hello_ms
        self.msg_ms = msg_ms
        self.session_ms = session_ms
        self.frag_ms = frag_ms
        self._n = read_size
        Link.__init__(self)

    _pause_always = True  # a port that ends or fails is read again a little later

    async def _cycle(self):
        await self.serve()

    async def serve(self):
        # until the stream ends (read returns b"")
        dec = FrameDecoder()
        session = self._factory()   # no HELLO yet: AUTH/OP get ERROR NO_SESSION
        start = due = None          # session start and the next deadline (ticks), or None
        last = None                 # ticks of the last bytes received
        try:
            while True:
                data = None
                if due is None:
                    data = await self._stream.read(self._n)
                else:
                    now = ticks_ms()
                    left = min(ticks_diff(due, now), ticks_diff(ticks_add(start, self.session_ms), now))
                    if left > 0:
                        try:
                            data = await asyncio.wait_for_ms(self._stream.read(self._n), left)
                        except asyncio.TimeoutError:
                            pass
                    if data is None:
                        session.close()
                        due = None
                        await self._write(encode_error(_E_TIMEOUT))
                        continue
                if not data:
                    return
                now = ticks_ms()
                if last is not None and ticks_diff(now, last) > self.frag_ms:
                    dec.reset()  # a frame stalled between bytes: drop it
                last = now
                for msg in dec.feed(data):
                    if msg == _HELLO_REQUEST:
                        session.close()
                        session = self._factory()
                        resp = session.hello()
                        start = now
                        due = ticks_add(now, self.hello_ms)
                    elif msg[0] == _T_PROVISION and self._provision is not None:
                        resp = self._provision(session.take_nonce(), msg)
                        due = None
                    else:
                        resp = session.handle(msg)
                        due = None if session.closed else ticks_add(ticks_ms(), self.msg_ms)
                    await self._write(resp)
        finally:
            session.close()

    async def _write(self, msg):
        self._stream.write(encode_frame(msg))
        try:
            await asyncio.wait_for_ms(self._stream.drain(), _WRITE_MS)
        except asyncio.TimeoutError:
            pass


class StdioStream:
    # The unit's USB serial console as the link's stream: stdin/stdout are
    # sys.stdin.buffer / sys.stdout.buffer, passed in by the caller (boot.py has
    # switched Ctrl-C off on a provisioned unit, so frame bytes never interrupt).
    # A blocking tty read(n) would wait for all n bytes: read one byte when
    # asyncio says so, then whatever poll says is already there.
    def __init__(self, stdin, stdout):
        import select
        self._in = stdin
        self._out = stdout
        self._reader = asyncio.StreamReader(stdin)
        self._poll = select.poll()
        self._poll.register(stdin, select.POLLIN)

    async def read(self, n):
        b = await self._reader.read(1)
        while b and len(b) < n and self._poll.poll(0):
            c = self._in.read(1)
            if not c:
                break
            b += c
        return b

    def write(self, b):
        self._out.write(b)

    async def drain(self):
        pass
