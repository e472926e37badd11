# Runs under MicroPython with a pty master as stdin and stdout (the simulator's
# arrangement: the host opens the pty's slave side with pyserial): one in-memory
# lock served by lockserial.SerialLink until the port goes away.
# argv: master key hex, lock id hex, lock time.
import sys
import select
import asyncio
import binascii
import locksession
import lockserial
from fakelock import FakeLock


class StdioStream:
    # asyncio stream over fd 0 / fd 1. A blocking tty read(n) waits for all n bytes,
    # so read one byte when poll says so, then whatever else is already there.
    def __init__(self):
        self._in = sys.stdin.buffer
        self._out = sys.stdout.buffer
        self._reader = asyncio.StreamReader(self._in)
        self._poll = select.poll()
        self._poll.register(self._in, select.POLLIN)

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


def main():
    lock = FakeLock(binascii.unhexlify(sys.argv[1]), binascii.unhexlify(sys.argv[2]), now=int(sys.argv[3]))
    link = lockserial.SerialLink(StdioStream(), lambda: locksession.LockSession(lock))
    try:
        asyncio.run(link.serve())
    except OSError:
        pass  # the host closed the port


main()
