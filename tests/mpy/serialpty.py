# Runs under MicroPython with a pty master as stdin and stdout (the simulator's
# arrangement: the host opens the pty's slave side with pyserial): one in-memory
# lock served by lockserial.SerialLink until the port goes away.
# argv: master key hex, lock id hex, lock time.
import sys
import asyncio
import binascii
import locksession
import lockserial
from fakelock import FakeLock


def main():
    lock = FakeLock(binascii.unhexlify(sys.argv[1]), binascii.unhexlify(sys.argv[2]), now=int(sys.argv[3]))
    stream = lockserial.StdioStream(sys.stdin.buffer, sys.stdout.buffer)
    link = lockserial.SerialLink(stream, lambda: locksession.LockSession(lock))
    try:
        asyncio.run(link.serve())
    except OSError:
        pass  # the host closed the port


main()
