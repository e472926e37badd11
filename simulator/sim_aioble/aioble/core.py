# Shared pieces of the fake aioble: exceptions, device addresses, and the
# timeout/disconnect guard that aioble's `with connection.timeout(ms):` offers.
import asyncio

ADDR_PUBLIC = 0
ADDR_RANDOM = 1
ATT_DEFAULT_MTU = 23
ATT_MAX_MTU = 517


class GattError(Exception):
    def __init__(self, status):
        super().__init__(status)
        self._status = status


class DeviceDisconnectedError(Exception):
    pass


async def wait_event(ev, timeout_ms):
    # aioble convention: timeout_ms None or 0 waits forever; expiry raises asyncio.TimeoutError
    if timeout_ms:
        await asyncio.wait_for_ms(ev.wait(), timeout_ms)
    else:
        await ev.wait()


class Device:
    def __init__(self, addr_type, addr):
        self.addr_type = addr_type
        self.addr = bytes(addr)

    def addr_hex(self):
        return ":".join("%02x" % b for b in self.addr)

    def __eq__(self, other):
        return isinstance(other, Device) and self.addr == other.addr and self.addr_type == other.addr_type

    def __hash__(self):
        return hash(self.addr)

    def __str__(self):
        return "Device(%s)" % self.addr_hex()


class DeviceTimeout:
    # `with connection.timeout(ms):` around an await. On expiry the waiting task is
    # cancelled and asyncio.TimeoutError comes out; if the connection drops,
    # DeviceDisconnectedError; any other cancellation passes through.
    def __init__(self, connection, timeout_ms):
        self._conn = connection
        self._ms = timeout_ms
        self._task = None
        self._sleeper = None
        self._fired = False

    async def _sleep(self):
        try:
            await asyncio.sleep_ms(self._ms)
        except asyncio.CancelledError:
            return
        self._fired = True
        self._task.cancel()

    def __enter__(self):
        self._task = asyncio.current_task()
        if self._ms:
            self._sleeper = asyncio.create_task(self._sleep())
        if self._conn is not None:
            self._conn._waiters.append(self)
        return self

    def __exit__(self, exc_type, exc, tb):
        if self._conn is not None and self in self._conn._waiters:
            self._conn._waiters.remove(self)
        if self._sleeper is not None and not self._fired:
            self._sleeper.cancel()
        if exc_type is asyncio.CancelledError:
            if self._fired:
                raise asyncio.TimeoutError
            if self._conn is not None and not self._conn.is_connected():
                raise DeviceDisconnectedError
        return False
