"""BLE transports (protocol §3.1): one GATT core, two radios.

:class:`GattTransport` speaks the protocol over any *GATT link*: an object with an
``mtu``, ``async write(value)`` (one write to the lock's RX characteristic),
``async notification(timeout)`` (the next value the lock notified on TX) and
``async close()``. A lock sends its HELLO as soon as a central connects, so
``hello()`` opens a new connection each time (a fresh nonce) and reads it.

Two links exist: :func:`bleak_link` on a real Bluetooth adapter through bleak
(scanning for the lock id in the advertisement, protocol §3.3), and
:class:`SimRadioLink` on the fleet simulator's radio hub (a phone central inside
the fleet host that holds the lock, so range, loss and drops apply). The transport
is synchronous like the others; it runs its own event loop for the radio.
"""

from __future__ import annotations

import asyncio
from typing import Awaitable, Callable, Protocol

from lockproto import ProtocolError, Reassembler, RX_UUID, TX_UUID, fragment
from lockproto.advert import ADV_FORMAT
from lockproto.codes import ADV_COMPANY_ID as COMPANY_ID

from .transport import TransportError

_SCAN_TRIES = 20       # a scan of about three seconds before a lock counts as out of range
_SCAN_PAUSE_S = 0.15



class GattLink(Protocol):
    mtu: int

    async def write(self, value: bytes) -> None: ...

    async def notification(self, timeout: float) -> bytes: ...

    async def close(self) -> None: ...


class GattTransport:
    """Whole protocol messages over a GATT link made by ``connect()`` for each connection."""

    def __init__(self, connect: Callable[[], Awaitable[GattLink]], timeout: float = 10.0,
                 loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._connect = connect
        self.timeout = timeout
        # a loop given by the caller (a phone's radio, shared by its transports) stays open
        self._own_loop = loop is None
        self._loop = loop or asyncio.new_event_loop()
        self._link: GattLink | None = None

    def _run(self, coro):
        try:
            return self._loop.run_until_complete(asyncio.wait_for(coro, self.timeout))
        except asyncio.TimeoutError:
            raise TransportError(f"the lock did not answer within {self.timeout:g} s") from None

    async def _receive(self) -> bytes:
        r = Reassembler()
        while True:
            try:
                msg = r.feed(await self._link.notification(self.timeout))
            except ProtocolError as e:
                raise TransportError(f"broken fragments from the lock ({e.code.name})") from None
            if msg is not None:
                return msg

    async def _hello(self) -> bytes:
        if self._link is not None:
            await self._link.close()
            self._link = None
        self._link = await self._connect()
        return await self._receive()

    async def _request(self, msg: bytes) -> bytes:
        if self._link is None:
            raise TransportError("not connected: ask for a HELLO first")
        for value in fragment(msg, self._link.mtu):
            await self._link.write(value)
        return await self._receive()

    def hello(self) -> bytes:
        return self._run(self._hello())

    def request(self, msg: bytes) -> bytes:
        return self._run(self._request(msg))

    def close(self) -> None:
        try:
            if self._link is not None:
                self._loop.run_until_complete(asyncio.wait_for(self._link.close(), self.timeout))
        except (asyncio.TimeoutError, OSError, TransportError):
            pass
        finally:
            self._link = None
            if self._own_loop:
                self._loop.close()


def advert_lock_id(manufacturer_data: dict[int, bytes]) -> bytes | None:
    """The lock id in an advertisement's manufacturer data (bleak's form: company id ->
    the bytes after it), or None if it is not a lock's (protocol §3.3)."""
    data = manufacturer_data.get(COMPANY_ID)
    if data is None or len(data) != 11 or data[0] != ADV_FORMAT:
        return None
    return bytes(data[1:9])


# ---- a real adapter: bleak ----

class _BleakLink:
    def __init__(self, client, queue: asyncio.Queue) -> None:
        self._client = client
        self._queue = queue
        self.mtu = getattr(client, "mtu_size", 23) or 23

    async def write(self, value: bytes) -> None:
        await self._client.write_gatt_char(RX_UUID, value, response=True)

    async def notification(self, timeout: float) -> bytes:
        return await asyncio.wait_for(self._queue.get(), timeout)

    async def close(self) -> None:
        await self._client.disconnect()


def bleak_link(lock_id: bytes | None = None, address: str | None = None, timeout: float = 10.0):
    """A ``connect()`` for :class:`GattTransport` on this machine's Bluetooth adapter."""
    if lock_id is None and address is None:
        raise ValueError("give the lock id or the device address")

    async def connect() -> GattLink:
        try:
            from bleak import BleakClient, BleakScanner
            from bleak.exc import BleakError
        except ImportError:
            raise TransportError("BLE needs bleak: pip install bleak") from None
        try:
            target = address
            if target is None:
                dev = await BleakScanner.find_device_by_filter(
                    lambda d, ad: advert_lock_id(ad.manufacturer_data) == lock_id, timeout=timeout)
                if dev is None:
                    raise TransportError(f"lock {lock_id.hex()} is not advertising nearby")
                target = dev
            client = BleakClient(target, timeout=timeout)
            await client.connect()
            queue: asyncio.Queue = asyncio.Queue()
            await client.start_notify(TX_UUID, lambda _ch, data: queue.put_nowait(bytes(data)))
            return _BleakLink(client, queue)
        except (BleakError, OSError) as e:
            raise TransportError(f"Bluetooth: {e}") from None

    return connect


# ---- the fleet simulator's radio hub ----

class SimRadioLink:
    """One connection of a phone central in a fleet host (simulator/, docs/simulator.md)."""

    def __init__(self, client, conn: int, mtu: int) -> None:
        self._client = client
        self._conn = conn
        self.mtu = mtu
        self._pending: list[bytes] = []

    async def write(self, value: bytes) -> None:
        got = await self._call("phone_write", conn=self._conn, frags=[value.hex()], recv_ms=0)
        self._pending += [bytes.fromhex(h) for h in got]

    async def notification(self, timeout: float) -> bytes:
        while not self._pending:
            got = await self._call("phone_recv", conn=self._conn, timeout_ms=int(timeout * 1000))
            if not got:
                raise TransportError("the lock sent nothing")
            self._pending += [bytes.fromhex(h) for h in got]
        return self._pending.pop(0)

    async def close(self) -> None:
        try:
            await self._client.call("phone_disconnect", conn=self._conn)
        except Exception:  # the connection may be gone already (a drop)
            pass

    async def _call(self, op: str, **args):
        from simulator.fleet import FleetError
        try:
            return await self._client.call(op, **args)
        except FleetError as e:
            raise TransportError(f"simulated radio: {e}") from None


class SimRadio:
    """A phone's radio in a running fleet: one central per fleet host, on one event loop.

    ``fleet`` is a :class:`simulator.fleet.Fleet` (its recorded hosts and lock positions).
    :meth:`link` makes a ``connect()`` for :class:`GattTransport` that walks the phone to
    ``distance`` metres from the lock, scans for it and connects. A radio belongs to one
    thread: its host connections live on the loop of the transports that use it
    (``GattTransport(..., loop=radio.loop)``), so many transports share them.
    """

    def __init__(self, fleet, mtu: int = 185, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.fleet = fleet
        self.mtu = mtu
        self.loop = loop or asyncio.new_event_loop()
        self._centrals: dict[int, tuple] = {}    # fleet host -> (HostClient, phone id)

    async def _central(self, host: int, x: float, y: float):
        from simulator.fleet import HostClient
        r = self._centrals.get(host)
        if r is None:
            c = await HostClient(self.fleet.state.hosts[host]["port"]).open()
            pid = (await c.call("phone_new", mtu=self.mtu, x=x, y=y))["phone"]
            r = self._centrals[host] = (c, pid)
        else:
            await r[0].call("phone_move", phone=r[1], x=x, y=y)
        return r

    def link(self, lock: str, distance: float = 2.0):
        """A ``connect()`` for :class:`GattTransport`: this phone at ``lock``'s door."""
        async def connect() -> GattLink:
            from simulator.fleet import FleetError
            try:
                spec = self.fleet.state.locks.get(lock)
                if spec is None:
                    raise TransportError(f"no lock {lock!r} in the fleet in {self.fleet.dir}")
                c, pid = await self._central(self.fleet.host_of(lock), spec.x + distance, spec.y)
                for _ in range(_SCAN_TRIES):
                    # like a phone's scan: a lock that just ended a connection advertises again shortly
                    for ad in await c.call("phone_scan", phone=pid):
                        if ad.get("lock") != lock:
                            continue  # another lock within range
                        r = await c.call("phone_connect", phone=pid, addr=ad["addr"], timeout_ms=2000)
                        return SimRadioLink(c, r["conn"], r["mtu"])
                    await asyncio.sleep(_SCAN_PAUSE_S)
                raise TransportError(f"lock {lock!r} is not in range")
            except FleetError as e:
                raise TransportError(f"simulated radio: {e}") from None
        return connect

    def close(self) -> None:
        """Forget the phone's centrals and close the host connections (and the loop)."""
        async def forget():
            for c, pid in self._centrals.values():
                try:
                    await c.call("phone_forget", phone=pid)
                except Exception:  # the host may be gone already
                    pass
                await c.close()
        try:
            self.loop.run_until_complete(forget())
        finally:
            self._centrals = {}
            self.loop.close()


def sim_radio_link(state_dir: str, lock: str, mtu: int = 185, distance: float = 2.0):
    """A ``connect()`` for :class:`GattTransport`: a phone standing ``distance`` metres from
    ``lock`` in the running fleet in ``state_dir`` (``locksim start``)."""
    state: dict = {}

    async def connect() -> GattLink:
        if not state:
            from simulator.fleet import FleetError, running_fleet
            try:
                fleet = running_fleet(state_dir)
            except FleetError as e:
                raise TransportError(f"simulated radio: {e}") from None
            state["radio"] = SimRadio(fleet, mtu, asyncio.get_running_loop())
        return await state["radio"].link(lock, distance)()

    return connect
