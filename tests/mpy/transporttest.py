# Runs under MicroPython (with simulator/sim_aioble on the path): the transports
# (lockble over the fake aioble radio, lockserial over in-memory streams) around
# in-memory locks (fakelock.FakeLock), driven by scripted phones and hosts.
# Messages that need keys (AUTH, OP) are built on the host with lockproto and
# passed in as bytes: each lock's HELLO is deterministic given its cfg "nonces"
# (hello_of), so the host can compute the AUTH before the run.
import asyncio
import gc
import lockfrag
import locksession
from lockwire import ProtoError
from fakelock import FakeLock
import lockble
import lockserial
import aioble
import bluetooth

RX = bluetooth.UUID(lockble.RX_UUID)
TX = bluetooth.UUID(lockble.TX_UUID)
_LINK_KEYS = ("hello_ms", "msg_ms", "session_ms", "frag_ms", "adv_ms", "linger_ms", "mtu")


def _lock(cfg):
    kw = {}
    for k in ("epoch", "now", "uncertain", "nonces", "deny_version", "deny", "lockout"):
        if k in cfg:
            kw[k] = cfg[k]
    return FakeLock(cfg["master"], cfg["lock_id"], **kw)


def _state(lock):
    return {"bolt": lock.bolt, "actuations": lock.actuations, "failures": lock.failures,
            "oks": lock.oks, "head": lock.head}


def hello_of(cfg):
    # the first HELLO a lock built from cfg sends
    return locksession.LockSession(_lock(cfg)).hello()


class _Session(locksession.LockSession):
    # records the life cycle the transport drives
    def __init__(self, ctx, log):
        super().__init__(ctx)
        self._log = log
        log.append("new")

    def hello(self):
        self._log.append("hello")
        return super().hello()

    def handle(self, msg):
        self._log.append("handle")
        return super().handle(msg)

    def close(self):
        if not self.closed:
            self._log.append("close")
        super().close()


def _factory(lock, log):
    return lambda: _Session(lock, log)


# ---- BLE ----

async def _recv(conn, ms):
    # one whole message from TX notifications: [message, fragment sizes] or an error word
    r = lockfrag.Reassembler()
    sizes = []
    try:
        while True:
            frag = await conn.notified(TX, ms)
            sizes.append(len(frag))
            msg = r.feed(frag)
            if msg is not None:
                return {"msg": msg, "sizes": sizes}
    except asyncio.TimeoutError:
        return {"err": "timeout", "sizes": sizes}
    except aioble.DeviceDisconnectedError:
        return {"err": "disconnected", "sizes": sizes}


async def _phone(radio, stacks, spec, out):
    phone = aioble.SimPhone(radio, mtu=spec.get("mtu", 185))
    conn = None
    for step in spec["steps"]:
        do = step["do"]
        res = None
        try:
            if do == "scan":
                res = [[a.addr, a.adv_data, a.resp_data] for a in phone.scan()]
            elif do == "connect":
                conn = await phone.connect(stacks[step.get("lock", 0)].addr, step.get("ms", 3000),
                                           step.get("exchange", True))
                res = {"mtu": conn.mtu}
            elif do == "recv":
                res = await _recv(conn, step.get("ms", 3000))
            elif do == "send":
                mtu = step.get("mtu", conn.mtu or 23)
                frags = lockfrag.fragment(step["msg"], mtu)
                for f in frags:
                    await conn.write(RX, f)
                    if step.get("gap_ms"):
                        await asyncio.sleep_ms(step["gap_ms"])
                res = len(frags)
            elif do == "frags":
                for f in step["frags"]:
                    await conn.write(RX, f)
                res = len(step["frags"])
            elif do == "write_and_drop":
                # write without response and hang up before the lock can read it
                await conn.write(RX, step["frag"], False)
                await conn.disconnect()
            elif do == "sleep":
                await asyncio.sleep_ms(step["ms"])
            elif do == "wait_down":
                # ms until the lock hangs up, or None
                t0 = asyncio.ticks()
                while conn.is_connected():
                    if asyncio.ticks_diff(asyncio.ticks(), t0) > step["ms"]:
                        break
                    await asyncio.sleep_ms(5)
                res = None if conn.is_connected() else asyncio.ticks_diff(asyncio.ticks(), t0)
            elif do == "disconnect":
                await conn.disconnect()
            else:
                raise ValueError("step " + do)
        except ProtoError as e:
            res = {"err": "proto", "code": e.code}
        except Exception as e:
            res = {"exc": type(e).__name__, "text": str(e)}
        out.append(res)


def _adv_source(lock, seq):
    # (lock id, battery %, flags) per advertising cycle: the next pair of seq, then the last
    seq = list(seq)

    def source():
        pct, flags = seq.pop(0) if len(seq) > 1 else seq[0]
        return lock.lock_id, pct, flags
    return source


def _hook(cfg):
    # "notify_fail": n -> the first n notifications fail with OSError(ENOMEM)
    left = [cfg.get("notify_fail", 0)]

    def hook(kind, link, data):
        if kind == "notify" and left[0] > 0:
            left[0] -= 1
            return OSError(12)
        return None
    return hook


def ble(cfg, phones):
    # cfg: {"locks": [lock cfg + "link": {BleLink kwargs}, "adv": [[pct, flags], ...]],
    #       "latency_ms", "notify_fail", "settle_ms"};
    # phones: [{"mtu", "start_ms", "steps": [...]}], run concurrently.
    # -> {"phones": [[step results]], "locks": [state + "log" + stack counters],
    #     "stopped": every BleLink.run() ended after stop()}
    gc.collect()
    radio = aioble.Radio(latency_ms=cfg.get("latency_ms", 0), hook=_hook(cfg))
    locks, stacks, links, logs = [], [], [], []
    for lc in cfg["locks"]:
        lock = _lock(lc)
        st = aioble.bind(radio)
        log = []
        kw = {}
        lk = lc.get("link", {})
        for k in _LINK_KEYS:
            if k in lk:
                kw[k] = lk[k]
        link = lockble.BleLink(st, _factory(lock, log), _adv_source(lock, lc.get("adv", [[80, 0]])),
                               uuid=bluetooth.UUID, **kw)
        locks.append(lock)
        stacks.append(st)
        links.append(link)
        logs.append(log)
    results = [[] for _ in phones]
    stopped = []

    async def phone_task(i):
        await asyncio.sleep_ms(phones[i].get("start_ms", 0))
        await _phone(radio, stacks, phones[i], results[i])

    async def main():
        tasks = [asyncio.create_task(l.run()) for l in links]
        await asyncio.gather(*[phone_task(i) for i in range(len(phones))])
        await asyncio.sleep_ms(cfg.get("settle_ms", 50))
        for l in links:
            l.stop()
        for _ in range(50):
            await asyncio.sleep_ms(10)
            if all(t.done() for t in tasks):
                break
        stopped.append(all(t.done() for t in tasks))

    asyncio.run(main())
    out = []
    for i in range(len(locks)):
        s = _state(locks[i])
        s["log"] = logs[i]
        s["peak"] = stacks[i].peak
        s["dropped"] = stacks[i].dropped
        s["adverts"] = stacks[i].adverts
        s["connected"] = len(stacks[i].connections)
        out.append(s)
    return {"phones": results, "locks": out, "stopped": stopped[0]}


def strict(case):
    # the fake refuses what the real stack would mangle: -> exception name or None
    radio = aioble.Radio()
    st = aioble.bind(radio)
    svc = st.Service(bluetooth.UUID(lockble.SERVICE_UUID))
    rx = st.Characteristic(svc, RX, write=True, capture=True)  # 20-byte default buffer
    tx = st.Characteristic(svc, TX, notify=True)
    st.register_services(svc)
    st.config(mtu=185)

    async def main():
        if case == "adv_long":
            await st.advertise(250000, adv_data=bytes(32), timeout_ms=10)
        if case == "adv_malformed":
            await st.advertise(250000, adv_data=b"\x05\x01\x06", timeout_ms=10)
        if case == "adv_kwargs":
            await st.advertise(250000, name="x", timeout_ms=10)
        phone = aioble.SimPhone(radio, mtu=185)
        lock_side = asyncio.create_task(st.advertise(250000, adv_data=b"\x02\x01\x06", timeout_ms=500))
        await asyncio.sleep_ms(0)
        pc = await phone.connect(st.addr, exchange_mtu=case != "notify_long")
        conn = await lock_side
        if case == "notify_long":   # no exchange: ATT_MTU 23 allows 20 bytes
            tx.notify(conn, bytes(21))
        if case == "write_buffer":  # 182 bytes fit the MTU but not a 20-byte buffer
            await pc.write(RX, bytes(182))
        if case == "write_mtu":
            await pc.write(RX, bytes(183))
        if case == "notify_down":
            await pc.disconnect()
            tx.notify(conn, b"x")
        if case == "register_connected":
            st.register_services(svc)
        if case == "ok":
            tx.notify(conn, bytes(182))
            await pc.write(RX, bytes(20))
            return (await rx.written(100))[1] == bytes(20) and await pc.notified(TX) == bytes(182)

    try:
        return ["ok", asyncio.run(main())]
    except Exception as e:
        return ["exc", type(e).__name__]


# ---- serial ----

class MemStream:
    # one end of an in-memory byte pipe with the asyncio stream methods SerialLink uses
    def __init__(self, rx, tx):
        self._rx = rx
        self._tx = tx

    async def read(self, n):
        return await self._rx.get(n)

    def write(self, b):
        self._tx.put(bytes(b))

    async def drain(self):
        pass


class _Pipe:
    def __init__(self):
        self._buf = b""
        self._ev = asyncio.Event()
        self.closed = False

    def put(self, b):
        self._buf += b
        self._ev.set()

    def close(self):
        self.closed = True
        self._ev.set()

    async def get(self, n):
        while not self._buf and not self.closed:
            self._ev.clear()
            await self._ev.wait()
        b = self._buf[:n]
        self._buf = self._buf[n:]
        return b


def serial(cfg, steps):
    # cfg: lock cfg + "link": {SerialLink kwargs} + "run": use run()/stop() instead of serve()
    # steps: {"tx": bytes} (raw bytes to the lock), {"sleep": ms},
    # {"rx": ms} (collect frames until ms of quiet) -> per step: decoded messages or None
    gc.collect()
    lock = _lock(cfg)
    log = []
    to_lock, from_lock = _Pipe(), _Pipe()
    kw = {}
    for k in ("hello_ms", "msg_ms", "session_ms", "frag_ms"):
        if k in cfg.get("link", {}):
            kw[k] = cfg["link"][k]
    link = lockserial.SerialLink(MemStream(to_lock, from_lock), _factory(lock, log), **kw)
    dec = lockfrag.FrameDecoder()
    out = []
    raw = []
    stopped = []

    async def main():
        task = asyncio.create_task(link.run() if cfg.get("run") else link.serve())
        for step in steps:
            if "tx" in step:
                to_lock.put(step["tx"])
                await asyncio.sleep_ms(0)
                out.append(None)
            elif "sleep" in step:
                await asyncio.sleep_ms(step["sleep"])
                out.append(None)
            elif "rx" in step:
                got = []
                while True:
                    try:
                        b = await asyncio.wait_for_ms(from_lock.get(2048), step["rx"])
                    except asyncio.TimeoutError:
                        break
                    raw.append(b)
                    got.extend(dec.feed(b))
                out.append(got)
        to_lock.close()   # end of stream: serve() returns; run() would read again
        if cfg.get("run"):
            link.stop()
        for _ in range(100):
            if task.done():
                break
            await asyncio.sleep_ms(10)
        stopped.append(task.done())

    asyncio.run(main())
    s = _state(lock)
    s["log"] = log
    s["raw"] = b"".join(raw)
    return {"steps": out, "lock": s, "stopped": stopped[0]}
