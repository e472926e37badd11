# BLE transport (docs/protocol.md §3.1, §3.3, §9): a thin asyncio adapter between
# aioble and the pure LockSession. The only firmware module that touches aioble.
#
#   BleLink(aioble, session_factory, adv_source, mtu=185, uuid=None, ...)
#     aioble          the aioble module on a unit (installed by mip), or a stack
#                     bound to a simulated radio (simulator/sim_aioble: aioble.bind(radio))
#     session_factory () -> a fresh LockSession-like object (hello, handle, close, closed)
#     adv_source      () -> (lock_id, battery_pct, flags), read anew every advertising cycle
#     mtu             ATT MTU the lock asks for (23..517); fragments follow the negotiated one
#     uuid            the UUID class (default: bluetooth.UUID, imported on first use)
#     timeouts (ms)   hello_ms (HELLO -> AUTH), msg_ms (between messages), session_ms
#                     (whole connection), frag_ms (between fragments), adv_ms (advertising
#                     cycle), linger_ms (grace for the phone to hang up after the last answer)
#     interval_us     advertising interval
#
# One connection at a time: advertise, accept, exchange MTU, notify HELLO, then per
# phone message: reassemble the written fragments, session.handle(), notify the
# answer. An ERROR answer, a closed session, a timeout (answered ERROR TIMEOUT) or a
# fragment error (answered ERROR FRAGMENT / TOO_LARGE) ends the connection; the
# session is always closed and the phone disconnected. Nothing here ever prints.
# `run()` serves forever; end it with `stop()` (a bare task.cancel() can be
# absorbed by asyncio.wait_for and aioble's timeout guards at unlucky moments).
import asyncio
from time import ticks_ms, ticks_add, ticks_diff
from lockwire import ProtoError, encode_error
from lockfrag import fragment, Reassembler
from lockadv import advertisement, scan_response
from locklink import Link

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

# protocol numbers (docs/protocol.md; the same as lockcodes, tests/test_fw_consts.py)
_T_ERROR = const(5)
_E_TIMEOUT = const(26)
_DEFAULT_MTU = const(23)
_FRAG_FIRST = const(0x80)

SERVICE_UUID = "65b3434c-caee-4cff-b110-b8094531587c"
RX_UUID = "f86ee927-fee6-483e-bfba-e499943801d3"   # phone writes (with response)
TX_UUID = "5258490e-a0ff-4057-af7b-871965383e93"   # lock notifies

_ADV_INTERVAL_US = const(250000)
_ADV_MS = const(10000)
_HELLO_MS = const(30000)
_MSG_MS = const(30000)
_SESSION_MS = const(120000)
_FRAG_MS = const(2000)
_MTU_MS = const(1000)
_LINGER_MS = const(500)
_DISCONNECT_MS = const(2000)
_NOTIFY_RETRIES = const(20)     # OSError (controller out of buffers): wait and retry
_NOTIFY_RETRY_MS = const(20)


class BleLink(Link):
    def __init__(self, aioble, session_factory, adv_source, mtu=185, uuid=None,
                 hello_ms=_HELLO_MS, msg_ms=_MSG_MS, session_ms=_SESSION_MS, frag_ms=_FRAG_MS,
                 adv_ms=_ADV_MS, linger_ms=_LINGER_MS, interval_us=_ADV_INTERVAL_US):
        if not _DEFAULT_MTU <= mtu <= 517:
            raise ValueError("mtu")
        self._ble = aioble
        self._factory = session_factory
        self._adv_source = adv_source
        self.mtu = mtu
        self._uuid = uuid
        self.hello_ms = hello_ms
        self.msg_ms = msg_ms
        self.session_ms = session_ms
        self.frag_ms = frag_ms
        self.adv_ms = adv_ms
        self.linger_ms = linger_ms
        self.interval_us = interval_us
        self._rx = None
        self._tx = None
        Link.__init__(self)

    def register(self):
        # the GATT service of §3.1; once, before the first advertisement
        if self._rx is not None:
            return
        ble = self._ble
        uuid = self._uuid
        if uuid is None:
            from bluetooth import UUID as uuid
        svc = ble.Service(uuid(SERVICE_UUID))
        # one fragment per write: header + up to mtu - 4 bytes = mtu - 3, beyond
        # the 20-byte default buffer, hence a BufferedCharacteristic
        rx = ble.BufferedCharacteristic(svc, uuid(RX_UUID), write=True, capture=True,
                                        max_len=self.mtu - 3)
        tx = ble.Characteristic(svc, uuid(TX_UUID), notify=True)
        ble.register_services(svc)
        try:
            ble.config(mtu=self.mtu)  # so a phone's own MTU request gets our size
        except Exception:
            pass
        self._rx = rx
        self._tx = tx

    async def _cycle(self):
        # serves phones until stop() (locklink.Link.run); radio trouble never ends it
        await self.serve_one()

    async def serve_one(self):
        # one advertising cycle; False if nobody connected, else serves the connection
        self.register()
        lock_id, pct, flags = self._adv_source()
        try:
            conn = await self._ble.advertise(
                self.interval_us, adv_data=advertisement(lock_id, pct, flags),
                resp_data=scan_response(), timeout_ms=self.adv_ms)
        except asyncio.TimeoutError:
            return False
        if conn is None:
            # aioble's advertise() swallows a cancellation and returns None: pass it on
            raise asyncio.CancelledError()
        await self._serve(conn)
        return True

    async def _serve(self, conn):
        session = None
        try:
            await self._exchange_mtu(conn)
            session = self._factory()
            if not await self._send(conn, session.hello()):
                return
            start = ticks_ms()
            wait = self.hello_ms
            reasm = Reassembler(self.frag_ms)
            while True:
                try:
                    msg = await self._receive(conn, reasm, start, wait)
                except ProtoError as e:
                    await self._send(conn, encode_error(e.code, e.detail))
                    return
                if msg is None:
                    await self._send(conn, encode_error(_E_TIMEOUT))
                    return
                resp = session.handle(msg)
                if not await self._send(conn, resp) or resp[0] == _T_ERROR or session.closed:
                    return
                wait = self.msg_ms
        except Exception:
            pass  # disconnected, or the radio failed: the connection ends either way
        finally:
            if session is not None:
                session.close()
            await self._hang_up(conn)

    async def _exchange_mtu(self, conn):
        if self.mtu > _DEFAULT_MTU and not conn.mtu:
            try:
                await conn.exchange_mtu(self.mtu, timeout_ms=_MTU_MS)
            except Exception:
                pass  # stay at what the phone agreed, or 23

    async def _receive(self, conn, reasm, start, wait_ms):
        # the next whole message; None on a timeout; raises ProtoError (fragments)
        # or the stack's DeviceDisconnectedError
        end = ticks_add(ticks_ms(), wait_ms)
        limit = ticks_add(start, self.session_ms)
        busy = False  # a message is in progress: fragments must keep coming
        rx = self._rx
        while True:
            if not conn.is_connected():
                # gone before this wait began: aioble cancels only waits already running
                raise self._ble.DeviceDisconnectedError()
            now = ticks_ms()
            t = self.frag_ms if busy else ticks_diff(end, now)
            t = min(t, ticks_diff(limit, now))
            if t <= 0:
                return None
            try:
                with conn.timeout(t):
                    c, data = await rx.written()
            except asyncio.TimeoutError:
                return None
            if c is not conn:
                continue  # queued from an earlier connection
            msg = reasm.feed(data, ticks_ms())
            if msg is not None:
                return msg
            if data[0] & _FRAG_FIRST:
                busy = True

    async def _send(self, conn, msg):
        # notify msg fragmented for the connection's MTU; False if it could not go out
        try:
            for frag in fragment(msg, conn.mtu or _DEFAULT_MTU):
                tries = 0
                while True:
                    try:
                        self._tx.notify(conn, frag)
                        break
                    except OSError:
                        tries += 1
                        if tries > _NOTIFY_RETRIES or not conn.is_connected():
                            return False
                        await asyncio.sleep_ms(_NOTIFY_RETRY_MS)
                await asyncio.sleep_ms(0)
            return True
        except Exception:
            return False

    async def _hang_up(self, conn):
        # give the phone a moment to read the last answer and hang up, then drop it
        try:
            if conn.is_connected() and self.linger_ms > 0:  # (aioble: 0 would wait forever)
                try:
                    await conn.disconnected(timeout_ms=self.linger_ms)
                except asyncio.TimeoutError:
                    pass
            if conn.is_connected():
                await conn.disconnect(timeout_ms=_DISCONNECT_MS)
        except Exception:
            pass
