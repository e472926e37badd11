# The shared air of the fake aioble: a `Radio` hub that many Stacks (locks) and
# SimPhones (centrals) use in one process, with no module-level state.
#
# Hooks, kept simple: `latency_ms` delays every write, notification and MTU
# exchange one way; `hook(kind, link, data)` sees every "write" and "notify"
# and returns None (deliver), "drop" (lose it silently) or an exception
# instance, which is raised at the sender (e.g. OSError(12) for a controller
# out of buffers).
import asyncio
from time import ticks_ms, ticks_add, ticks_diff
from .core import ATT_DEFAULT_MTU, ATT_MAX_MTU, GattError, DeviceDisconnectedError, wait_event
from .stack import Connection

_ATT_INVALID_HANDLE = 0x01
_ATT_WRITE_NOT_PERMITTED = 0x03
_F_WRITE = 0x0008 | 0x0004
_CONNECT_POLL_MS = 10


class Advert:
    def __init__(self, addr, adv_data, resp_data, connectable):
        self.addr = addr
        self.adv_data = adv_data
        self.resp_data = resp_data
        self.connectable = connectable


class Radio:
    def __init__(self, latency_ms=0, hook=None):
        self.latency_ms = latency_ms
        self.hook = hook
        self._stacks = {}   # address -> Stack
        self._serial = 0
        self.links = 0      # connections made so far

    def new_addr(self):
        self._serial += 1
        return bytes((0xC0, 0, 0, (self._serial >> 16) & 0xFF, (self._serial >> 8) & 0xFF,
                      self._serial & 0xFF))

    def _attach(self, stack, addr):
        addr = self.new_addr() if addr is None else bytes(addr)
        if len(addr) != 6:
            raise ValueError("address")
        if addr in self._stacks:
            raise ValueError("address in use")
        self._stacks[addr] = stack
        return addr

    def scan(self):
        # what an active scan hears right now: one Advert per advertising stack
        out = []
        for addr in self._stacks:
            a = self._stacks[addr]._adv
            if a is not None:
                out.append(Advert(addr, a[0], a[1], a[2]))
        return out

    def _connect(self, phone, addr):
        st = self._stacks.get(addr)
        if st is None or st._adv is None or not st._adv[2]:
            return None
        link = Link(self, st, phone)
        self.links += 1
        st._accept(link.server)
        return link

    def _passes(self, kind, link, data):
        h = self.hook
        r = h(kind, link, data) if h is not None else None
        if r is None:
            return True
        if r == "drop":
            return False
        raise r


class Link:
    # One connection between a Stack (peripheral) and a SimPhone (central).
    def __init__(self, radio, stack, phone):
        self.radio = radio
        self.stack = stack
        self.phone_mtu = phone.mtu
        self.up = True
        self.mtu = None           # None until an MTU exchange
        self.closed_at = None
        self.server = Connection(self, phone.addr)
        self.phone = PhoneConnection(self, stack.addr)

    def att_mtu(self):
        return self.mtu or ATT_DEFAULT_MTU

    async def exchange(self):
        # request and response each take one latency; the result is the smaller preference
        await asyncio.sleep_ms(2 * self.radio.latency_ms)
        if not self.up:
            raise DeviceDisconnectedError
        self.mtu = min(self.stack._mtu, self.phone_mtu)
        self.server.mtu = self.mtu
        self.phone.mtu = self.mtu

    def close(self):
        if not self.up:
            return
        self.up = False
        self.closed_at = ticks_ms()
        self.stack._gone(self.server)
        self.server._down()
        self.phone._down()


class PhoneConnection:
    # The central's view of one connection: write the lock's characteristics,
    # receive its notifications.
    def __init__(self, link, peer_addr):
        self._link = link
        self.addr = peer_addr
        self.mtu = None
        self._inbox = []          # (uuid, data, due_ms)
        self._ev = asyncio.Event()
        self._exchanged = False

    def is_connected(self):
        return self._link.up

    async def exchange_mtu(self, timeout_ms=1000):
        if not self._link.up:
            raise ValueError("Not connected")
        if self._exchanged:
            raise ValueError("MTU already exchanged by this side")
        self._exchanged = True
        await asyncio.wait_for_ms(self._link.exchange(), timeout_ms)
        return self.mtu

    async def write(self, uuid, data, response=True):
        link = self._link
        if not link.up:
            raise DeviceDisconnectedError
        data = bytes(data)
        if len(data) > link.att_mtu() - 3:
            raise ValueError("write of %d bytes with ATT_MTU %d" % (len(data), link.att_mtu()))
        ch = link.stack._chars.get(uuid)
        if ch is None:
            raise GattError(_ATT_INVALID_HANDLE)
        if not ch.flags & _F_WRITE:
            raise GattError(_ATT_WRITE_NOT_PERMITTED)
        if len(data) > ch.max_len:
            raise ValueError("write of %d bytes into a %d-byte characteristic buffer"
                             % (len(data), ch.max_len))
        deliver = link.radio._passes("write", link, data)
        await asyncio.sleep_ms(link.radio.latency_ms)
        if not link.up:
            raise DeviceDisconnectedError
        if deliver:
            ch._remote_write(link.server, data)
        if response:
            await asyncio.sleep_ms(link.radio.latency_ms)

    async def notified(self, uuid=None, timeout_ms=1000):
        # next notification (from characteristic `uuid` if given); queued ones
        # that were on air before a disconnect still arrive
        link = self._link
        end = ticks_add(ticks_ms(), timeout_ms) if timeout_ms else None
        while True:
            if self._inbox:
                u, data, due = self._inbox[0]
                if link.closed_at is not None and ticks_diff(due, link.closed_at) > 0:
                    self._inbox = []  # still in flight when the link dropped: lost
                    continue
                wait = ticks_diff(due, ticks_ms())
                if wait > 0:
                    await asyncio.sleep_ms(wait)
                    continue
                self._inbox.pop(0)
                if uuid is None or u == uuid:
                    return data
                continue
            if not link.up:
                raise DeviceDisconnectedError
            left = None
            if end is not None:
                left = ticks_diff(end, ticks_ms())
                if left <= 0:
                    raise asyncio.TimeoutError
            self._ev.clear()
            await wait_event(self._ev, left)

    def ready(self):
        # a notification is due now (notified() returns it without waiting)
        if not self._inbox:
            return False
        due = self._inbox[0][2]
        closed = self._link.closed_at
        return ticks_diff(due, ticks_ms()) <= 0 and (closed is None or ticks_diff(due, closed) <= 0)

    async def disconnect(self):
        self._link.close()

    def _notified(self, uuid, data):
        self._inbox.append((uuid, data, ticks_add(ticks_ms(), self._link.radio.latency_ms)))
        self._ev.set()

    def _down(self):
        self._ev.set()


class SimPhone:
    # A simulated central: scan, connect (retrying until the lock advertises), then
    # use the returned PhoneConnection.
    def __init__(self, radio, mtu=185, addr=None):
        if not ATT_DEFAULT_MTU <= mtu <= ATT_MAX_MTU:
            raise ValueError("mtu")
        self.radio = radio
        self.mtu = mtu
        self.addr = radio.new_addr() if addr is None else bytes(addr)

    def scan(self):
        return self.radio.scan()

    async def connect(self, addr, timeout_ms=2000, exchange_mtu=True):
        end = ticks_add(ticks_ms(), timeout_ms)
        while True:
            link = self.radio._connect(self, bytes(addr))
            if link is not None:
                break
            if ticks_diff(end, ticks_ms()) <= 0:
                raise asyncio.TimeoutError
            await asyncio.sleep_ms(_CONNECT_POLL_MS)
        await asyncio.sleep_ms(self.radio.latency_ms)
        c = link.phone
        if exchange_mtu and self.mtu > ATT_DEFAULT_MTU and link.up:
            await c.exchange_mtu()
        return c
