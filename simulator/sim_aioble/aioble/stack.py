# The peripheral/server half of the fake aioble: one `Stack` per simulated
# lock, bound to a shared `Radio` (radio.py). A Stack offers the names an aioble
# user touches (Service, Characteristic, BufferedCharacteristic,
# register_services, advertise, config, GattError, DeviceDisconnectedError), so
# code written as `aioble.X` runs unchanged against `aioble.bind(radio)`.
#
# Stricter than the real stack where that is cheap, so bugs show up here and not
# on a door: advertising or scan-response data over 31 bytes or with broken AD
# structures raises; a notification longer than ATT_MTU - 3 raises (the real
# stack truncates); a notification on a dropped connection raises; a phone
# write longer than the characteristic's buffer raises at the phone (the real
# stack silently truncates to max_len, 20 bytes unless BufferedCharacteristic);
# registering services while advertising or connected raises; a second
# concurrent advertise() raises; each side may exchange the MTU once.
# Faithful where the real behaviour is a trap for callers: connection.mtu is
# None until an exchange; a cancelled advertise() swallows the cancellation and
# returns None; a disconnect cancels only the `with connection.timeout()` waits
# already running; written() is not tied to any connection and can return a
# write queued by an earlier one.
import asyncio
from collections import deque
from .core import (
    ADDR_PUBLIC, ADDR_RANDOM, ATT_DEFAULT_MTU, ATT_MAX_MTU, GattError, DeviceDisconnectedError,
    Device, DeviceTimeout, wait_event,
)

_ADV_MAX = 31
_CAPTURE_QUEUE = 10       # aioble's write-capture queue; overflow drops the oldest
_DEFAULT_BUFFER = 20      # bluetooth's default characteristic buffer
_INTERVAL_MIN_US = 20000
_INTERVAL_MAX_US = 10240000

_F_READ = 0x0002
_F_WRITE_NR = 0x0004
_F_WRITE = 0x0008
_F_NOTIFY = 0x0010
_F_INDICATE = 0x0020
_F_CAPTURE = 0x10000


def _check_ad(data, what):
    if data is None:
        return b""
    data = bytes(data)
    if len(data) > _ADV_MAX:
        raise ValueError(what + " longer than 31 bytes")
    i = 0
    while i < len(data):
        n = data[i]
        if n == 0 or i + 1 + n > len(data):
            raise ValueError(what + ": malformed AD structure")
        i += 1 + n
    return data


class Service:
    def __init__(self, uuid):
        self.uuid = uuid
        self.characteristics = []


class Characteristic:
    def __init__(self, service, uuid, read=False, write=False, write_no_response=False,
                 notify=False, indicate=False, initial=None, capture=False):
        service.characteristics.append(self)
        self.uuid = uuid
        f = 0
        if read:
            f |= _F_READ
        if write:
            f |= _F_WRITE
        if write_no_response:
            f |= _F_WRITE_NR
        if capture and (write or write_no_response):
            f |= _F_CAPTURE
        if notify:
            f |= _F_NOTIFY
        if indicate:
            f |= _F_INDICATE
        self.flags = f
        self.max_len = _DEFAULT_BUFFER
        self._value = bytes(initial) if initial else b""
        self._stack = None
        self._q = deque((), _CAPTURE_QUEUE)
        self._ev = asyncio.Event()

    def read(self):
        return self._value

    def write(self, data, send_update=False):
        if send_update:
            raise NotImplementedError("send_update: use notify()")
        self._value = bytes(data)

    async def written(self, timeout_ms=None):
        # capture=True: (connection, data) per write, in order; else the connection
        if not self.flags & (_F_WRITE | _F_WRITE_NR):
            return None
        while not len(self._q):
            self._ev.clear()
            await wait_event(self._ev, timeout_ms)
        conn, data = self._q.popleft()
        return (conn, data) if self.flags & _F_CAPTURE else conn

    def notify(self, connection, data=None):
        if not self.flags & _F_NOTIFY:
            raise ValueError("Not supported")
        st = self._stack
        if st is None:
            raise ValueError("characteristic not registered")
        if connection is None or not connection.is_connected():
            raise ValueError("Not connected")
        link = connection._link
        if link.stack is not st:
            raise ValueError("connection belongs to another stack")
        data = self._value if data is None else bytes(data)
        if len(data) > link.att_mtu() - 3:
            raise ValueError("notification longer than ATT_MTU - 3")
        if link.radio._passes("notify", link, data):
            link.phone._notified(self.uuid, data)

    async def indicate(self, connection, data=None, timeout_ms=1000):
        raise NotImplementedError("indicate")

    def on_read(self, connection):
        return 0

    # ---- radio side ----

    def _remote_write(self, conn, data):
        self._value = data
        if self.flags & _F_CAPTURE:
            if len(self._q) == _CAPTURE_QUEUE:
                self._stack.dropped += 1
            self._q.append((conn, data))
        else:
            while len(self._q):
                self._q.popleft()
            self._q.append((conn, None))
        self._ev.set()


class BufferedCharacteristic(Characteristic):
    def __init__(self, *args, max_len=20, append=False, **kwargs):
        super().__init__(*args, **kwargs)
        if append:
            raise NotImplementedError("append")
        self.max_len = max_len


class Connection:
    # The peripheral's view of one connection (aioble's DeviceConnection).
    def __init__(self, link, peer_addr):
        self._link = link
        self.device = Device(ADDR_RANDOM, peer_addr)
        self.mtu = None           # None until an MTU exchange, as in aioble
        self._waiters = []        # DeviceTimeout guards to cancel on disconnect
        self._gone = asyncio.Event()
        self._exchanged = False

    def is_connected(self):
        return self._link.up

    def timeout(self, timeout_ms):
        return DeviceTimeout(self, timeout_ms)

    async def exchange_mtu(self, mtu=None, timeout_ms=1000):
        if not self.is_connected():
            raise ValueError("Not connected")
        if self._exchanged:
            raise ValueError("MTU already exchanged by this side")
        self._exchanged = True
        if mtu:
            self._link.stack.config(mtu=mtu)
        with self.timeout(timeout_ms):
            await self._link.exchange()
        return self.mtu

    async def disconnect(self, timeout_ms=2000):
        await self.disconnected(timeout_ms, disconnect=True)

    async def disconnected(self, timeout_ms=60000, disconnect=False):
        if not self.is_connected():
            return
        if disconnect:
            self._link.close()
            return
        await wait_event(self._gone, timeout_ms)

    def _down(self):
        self._gone.set()
        me = asyncio.current_task()
        for w in list(self._waiters):
            if w._task is not me:
                w._task.cancel()


class Stack:
    # One simulated BLE controller + aioble, bound to a Radio.
    Service = Service
    Characteristic = Characteristic
    BufferedCharacteristic = BufferedCharacteristic
    GattError = GattError
    DeviceDisconnectedError = DeviceDisconnectedError
    Device = Device
    ADDR_PUBLIC = ADDR_PUBLIC
    ADDR_RANDOM = ADDR_RANDOM

    def __init__(self, radio, addr=None):
        self.radio = radio
        self.addr = radio._attach(self, addr)
        self._mtu = ATT_DEFAULT_MTU      # preferred ATT MTU (config(mtu=...))
        self._chars = {}                 # uuid -> registered characteristic
        self._adv = None                 # (adv_data, resp_data, connectable) while advertising
        self._incoming = None
        self._connect_ev = asyncio.Event()
        self.connections = []            # live Connections
        self.peak = 0                    # most simultaneous connections seen
        self.dropped = 0                 # writes lost to a full capture queue
        self.adverts = 0                 # advertise() calls that started advertising

    def config(self, *args, **kwargs):
        if kwargs:
            for k in kwargs:
                v = kwargs[k]
                if k == "mtu":
                    if not ATT_DEFAULT_MTU <= v <= ATT_MAX_MTU:
                        raise ValueError("mtu")
                    self._mtu = v
                elif k != "gap_name":
                    raise ValueError("unknown config param")
            return None
        if len(args) != 1:
            raise TypeError("config")
        if args[0] == "mtu":
            return self._mtu
        if args[0] == "mac":
            return (ADDR_PUBLIC, self.addr)
        raise ValueError("unknown config param")

    def stop(self):
        for c in list(self.connections):
            c._link.close()

    def register_services(self, *services):
        if self._adv is not None or self.connections:
            raise ValueError("stop advertising and disconnect before registering services")
        for c in self._chars.values():
            c._stack = None
        self._chars = {}
        for s in services:
            for c in s.characteristics:
                if c._stack is not None:
                    raise ValueError("characteristic registered twice")
                c._stack = self
                self._chars[c.uuid] = c

    async def advertise(self, interval_us, adv_data=None, resp_data=None, connectable=True,
                        timeout_ms=None, **kwargs):
        if adv_data is None or kwargs:
            raise NotImplementedError("the fake takes raw adv_data/resp_data only")
        if not _INTERVAL_MIN_US <= interval_us <= _INTERVAL_MAX_US:
            raise ValueError("advertising interval")
        adv = _check_ad(adv_data, "adv_data")
        resp = _check_ad(resp_data, "resp_data")
        if self._adv is not None:
            raise ValueError("already advertising")
        self._adv = (adv, resp, bool(connectable))
        self._incoming = None
        self._connect_ev.clear()
        self.adverts += 1
        try:
            await wait_event(self._connect_ev, timeout_ms)
            conn = self._incoming
            self._incoming = None
            return conn
        except asyncio.CancelledError:
            return None  # as aioble does: a cancelled advertise() stops and returns None
        finally:
            self._adv = None
            if self._incoming is not None:  # cancelled after a phone connected
                self._incoming._link.close()
                self._incoming = None

    # ---- radio side ----

    def _accept(self, conn):
        self._adv = None  # the controller stops advertising on connect
        self._incoming = conn
        self.connections.append(conn)
        self.peak = max(self.peak, len(self.connections))
        self._connect_ev.set()

    def _gone(self, conn):
        if conn in self.connections:
            self.connections.remove(conn)
