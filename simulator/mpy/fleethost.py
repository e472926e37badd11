# Runs under MicroPython (the unix port): the fleet host. One process hosts
# many simulated locks (fleetunit.SimLock: the real DoorUnit on the sim HAL),
# one radio hub (hubradio.HubRadio) they all advertise on, the phones' radio
# halves (aioble.SimPhone) driven by desktop phones, and the serial ports.
#
#   micropython fleethost.py STATE_DIR PORT BOARDS_DIR [SEED|-] [flash|files]
#
# Listens on 127.0.0.1:PORT and prints "READY PORT" when it does. Every TCP
# connection speaks JSON lines (docs/simulator.md, "Host control API"): one
# request object per line, one answer per line ({"ok": ...} or {"err": text}),
# in order. A connection whose first line is "SERIAL <lock>" becomes that
# lock's serial port instead (raw bytes both ways: the framed maintenance link
# of lockserial). Bytes travel as hex strings.
import sys
import json
import asyncio
import binascii
import gc
from time import ticks_ms, ticks_us, ticks_diff
import lockhal
import lockble
import lockserial
import bluetooth
import aioble
from hubradio import HubRadio
from fleetunit import SimLock
from lockflash_sim import PowerCut

_SWEEP_MS = 20
_GC_THRESHOLD = 8 * 1024 * 1024
_ADV_MS = 60000
_BUSY_MS = 100            # poll an input change at the unit's own 20 ms pace this long (the
                          # contacts' 50 ms debounce; a button press: while it is held)
_ADV_YIELDS = 8           # let a lock's link get back to advertising before a phone connects
_SAVE_MS = 30000


def _hex(b):
    return binascii.hexlify(bytes(b)).decode()


def _unhex(s):
    return binascii.unhexlify(s)


class HostError(Exception):
    pass


class SockStream:
    # lockserial's stream (read, write, drain) over an asyncio TCP stream pair
    def __init__(self, reader, writer):
        self.r = reader
        self.w = writer

    async def read(self, n):
        return await self.r.read(n)

    def write(self, b):
        self.w.write(b)

    async def drain(self):
        await self.w.drain()


class Host:
    def __init__(self, root, boards, seed=None, storage="flash"):
        self.root = root
        self.storage = storage
        self.board = lockhal.load_board("sim", boards)
        self.locks = {}
        self.by_addr = {}
        self.stacks = {}
        self.links = {}
        self.tasks = {}
        self.active = set()
        self.serial = {}
        self.radio = HubRadio(seed=seed, on_connect=self._on_connect)
        self.phones = {}
        self.conns = {}
        self._next = 1
        self._base = ticks_ms()
        self._offset = 0
        self.speed = 1
        self.stopping = False
        self.uuid_rx = bluetooth.UUID(lockble.RX_UUID)
        self.uuid_tx = bluetooth.UUID(lockble.TX_UUID)
        # the advertising cycle (lockble re-reads battery and flags each cycle and after
        # every connection): a unit's 10 s, stretched so that thousands of idle locks do
        # not keep the host's loop busy re-advertising
        self.adv_ms = _ADV_MS
        self.polls = 0
        self.dirty = set()        # locks touched since the last periodic save
        self.prof = {}            # op -> [requests, microseconds handling them]
        self.sweep_us = 0

    # ---- the host's virtual clock (ms) ----

    def now(self):
        return self._offset + self.speed * ticks_diff(ticks_ms(), self._base)

    def advance(self, ms):
        self._offset += int(ms)

    def set_speed(self, speed):
        t = self.now()
        self._base = ticks_ms()
        self._offset = t
        self.speed = speed

    # ---- locks ----

    def lock(self, name):
        lk = self.locks.get(name)
        if lk is None:
            raise HostError("no such lock: %s" % name)
        return lk

    def add(self, name, x=0.0, y=0.0):
        if name in self.locks:
            return False
        lk = SimLock(name, self.root, self.board, self.now(), x, y, storage=self.storage)
        self.locks[name] = lk
        st = aioble.bind(self.radio)
        self.stacks[name] = st
        self.by_addr[st.addr] = lk
        self.radio.place(st.addr, lk.x, lk.y)
        lk.boot(lambda: self._power_cut(lk))
        self._start_link(lk)
        return True

    def _start_link(self, lk):
        st = self.stacks[lk.name]
        link = lockble.BleLink(st, lambda: lk.unit.session(), lambda: lk.unit.advert(),
                               uuid=bluetooth.UUID, adv_ms=self.adv_ms)
        self.links[lk.name] = link
        self.tasks[lk.name] = asyncio.create_task(self._radio_task(lk, link))

    async def _radio_task(self, lk, link):
        try:
            await link.run()
        except PowerCut:
            self._power_cut(lk)
        except Exception:
            if lk.powered:
                raise
            # the power went while this task ran: whatever the dead unit raised last

    def _stop_link(self, lk):
        link = self.links.pop(lk.name, None)
        if link is not None:
            link.stop()
        self.tasks.pop(lk.name, None)
        self.stacks[lk.name].stop()

    def _power_cut(self, lk):
        # the CPU stops: no more radio, the world loses power
        if not lk.powered or lk.unit is None:
            return
        self._stop_link(lk)
        lk.cut()
        self.active.discard(lk.name)

    def restore(self, lk):
        if lk.powered:
            return False
        lk.sync(self.now())
        lk.boot(lambda: self._power_cut(lk))
        self._start_link(lk)
        self.active.add(lk.name)
        return True

    def touch(self, lk):
        # bring a lock to the host's time before anything acts on it
        self.dirty.add(lk.name)
        try:
            lk.sync(self.now())
        except PowerCut:
            self._power_cut(lk)
        if lk.powered:
            self.active.add(lk.name)

    def _on_connect(self, addr):
        lk = self.by_addr.get(addr)
        if lk is not None:
            self.touch(lk)

    async def sweep(self):
        # the heartbeat of every lock that is doing something
        last_save = ticks_ms()
        while not self.stopping:
            t0 = ticks_us()
            now = self.now()
            for name in list(self.active):
                lk = self.locks[name]
                try:
                    lk.sync(now)
                except PowerCut:
                    self._power_cut(lk)
                    continue
                self.polls += 1
                if self.stacks[name].connections or name in self.serial:
                    continue
                if self.speed == 0 or lk.quiescent():
                    # nothing observes it until it is touched again, and every touch
                    # catches it up first: with the clock standing still, or idle, it rests
                    self.active.discard(name)
            if ticks_diff(ticks_ms(), last_save) > _SAVE_MS:
                self.save(self.dirty)
                self.dirty = set()
                last_save = ticks_ms()
            self.sweep_us += ticks_diff(ticks_us(), t0)
            await asyncio.sleep_ms(_SWEEP_MS)

    def save(self, names=None):
        # every lock's world (or those named) to its world.json
        now = self.now()
        for lk in (self.locks.values() if names is None else [self.locks[n] for n in names]):
            try:
                lk.sync(now)
            except PowerCut:
                self._power_cut(lk)
            lk.save_world()

    # ---- requests ----

    async def request(self, req):
        op = req.get("op")
        fn = getattr(self, "op_" + str(op), None)
        if fn is None:
            raise HostError("unknown op: %s" % op)
        t = ticks_us()
        r = fn(req)
        if hasattr(r, "send"):  # a coroutine (the phone's radio operations)
            r = await r
        c = self.prof.get(op)
        if c is None:
            c = self.prof[op] = [0, 0]
        c[0] += 1
        c[1] += ticks_diff(ticks_us(), t)
        return r

    def op_hello(self, req):
        return {"locks": len(self.locks), "now": self.now(), "speed": self.speed}

    def op_add(self, req):
        added = 0
        for spec in req["locks"]:
            if self.add(spec["name"], spec.get("x", 0.0), spec.get("y", 0.0)):
                added += 1
        return {"added": added, "locks": len(self.locks)}

    def op_list(self, req):
        return sorted(self.locks)

    def op_time(self, req):
        if "advance_ms" in req:
            self.advance(req["advance_ms"])
        if "speed" in req:
            self.set_speed(req["speed"])
        return {"now": self.now(), "speed": self.speed}

    def op_provision(self, req):
        lk = self.lock(req["lock"])
        self.touch(lk)
        if not lk.powered:
            raise HostError("lock is powered off")
        st = lk.unit.provision(_unhex(req["lock_id"]), req["epoch"], _unhex(req["master"]), req["now"])
        lk.save_world()
        # advertise the new identity now, not at the next advertising cycle
        self._stop_link(lk)
        self._start_link(lk)
        return {"status": st}

    def op_status(self, req):
        if "lock" not in req:
            return self.op_summary(req)
        lk = self.lock(req["lock"])
        self.touch(lk)
        return lk.status()

    def op_summary(self, req):
        # every lock's status (brought to the host's time first)
        out = []
        for name in sorted(self.locks):
            lk = self.locks[name]
            self.touch(lk)
            out.append(lk.status())
        return out

    def op_door(self, req):
        lk = self.lock(req["lock"])
        self.touch(lk)
        lk.world.set_door(not req["open"])
        lk.busy_until = lk.world.ms + _BUSY_MS
        return {"door_closed": lk.world.door_closed}

    def op_press(self, req):
        lk = self.lock(req["lock"])
        self.touch(lk)
        hold = int(req.get("hold_ms", 150))
        lk.world.press(hold)
        lk.busy_until = lk.world.ms + hold
        return {}

    def op_touch(self, req):
        # a finger on the outside wake pad (board wake_outside); an awake unit
        # ignores it (it only wakes a sleeping one, docs/power.md)
        lk = self.lock(req["lock"])
        self.touch(lk)
        hold = int(req.get("hold_ms", 200))
        lk.world.touch(hold)
        lk.busy_until = lk.world.ms + hold
        return {"touches": lk.world.touches}

    def op_battery(self, req):
        lk = self.lock(req["lock"])
        self.touch(lk)
        if "mv" in req:
            lk.world.battery_mv = int(req["mv"])
        if "drain_mv_h" in req:
            lk.drain_mv_h = int(req["drain_mv_h"])
        return {"battery_mv": lk.world.battery_mv, "drain_mv_h": lk.drain_mv_h}

    def op_jam(self, req):
        lk = self.lock(req["lock"])
        self.touch(lk)
        lk.world.jam = bool(req["on"])
        return {"jam": lk.world.jam}

    def op_power(self, req):
        # {"action": "cut"} now; {"action": "cut", "at_write": n, "torn": b} arms a
        # cut at the n-th next durable write; {"action": "restore"}
        lk = self.lock(req["lock"])
        self.touch(lk)
        act = req["action"]
        if act == "cut":
            if "at_write" in req:
                if not lk.powered:
                    raise HostError("lock is powered off")
                at = lk.arm_cut(int(req["at_write"]), bool(req.get("torn", False)))
                return {"armed": at, "writes": lk.writes()}
            self._power_cut(lk)
            return {"powered": False}
        if act == "restore":
            return {"restored": self.restore(lk)}
        raise HostError("power action: cut or restore")

    def op_clock(self, req):
        lk = self.lock(req["lock"])
        self.touch(lk)
        if "jump_s" in req:
            lk.world.set_time(lk.world.time() + int(req["jump_s"]))
        if "drift_ppm" in req:
            lk.drift_ppm = int(req["drift_ppm"])
        return {"rtc": lk.world.time(), "drift_ppm": lk.drift_ppm}

    def op_move(self, req):
        lk = self.lock(req["lock"])
        lk.x, lk.y = float(req["x"]), float(req["y"])
        self.radio.place(self.stacks[lk.name].addr, lk.x, lk.y)
        return {}

    def op_radio(self, req):
        r = self.radio
        for k in ("latency_ms", "loss", "drop", "range_m"):
            if k in req:
                setattr(r, k, req[k])
        return {"latency_ms": r.latency_ms, "loss": r.loss, "drop": r.drop, "range_m": r.range_m,
                "lost": r.lost, "dropped_links": r.dropped_links, "links": r.links}

    def op_save(self, req):
        self.save()
        return {}

    def op_stats(self, req):
        gc.collect()
        return {"locks": len(self.locks), "active": len(self.active), "polls": self.polls,
                "mem_free": gc.mem_free(), "mem_alloc": gc.mem_alloc(), "sweep_us": self.sweep_us,
                "requests": self.prof}

    def op_shutdown(self, req):
        self.save()
        self.stopping = True
        return {}

    # ---- the phones' radio halves ----

    def _id(self):
        self._next += 1
        return self._next

    def op_phone_new(self, req):
        p = aioble.SimPhone(self.radio, mtu=req.get("mtu", 185))
        p.x = float(req.get("x", 0.0))
        p.y = float(req.get("y", 0.0))
        pid = self._id()
        self.phones[pid] = p
        return {"phone": pid}

    def _phone(self, req):
        p = self.phones.get(req["phone"])
        if p is None:
            raise HostError("no such phone")
        return p

    def op_phone_move(self, req):
        p = self._phone(req)
        p.x, p.y = float(req["x"]), float(req["y"])
        for cid in list(self.conns):
            c, owner, addr = self.conns[cid]
            if owner is p and not self.radio.near(p, addr):
                c._link.close()  # walked out of range
        return {}

    def op_phone_scan(self, req):
        p = self._phone(req)
        out = []
        for a in self.radio.scan_for(p):
            lk = self.by_addr.get(a.addr)
            out.append({"addr": _hex(a.addr), "adv": _hex(a.adv_data), "resp": _hex(a.resp_data),
                        "m": self.radio.distance(p, a.addr), "lock": lk.name if lk else None})
        return out

    def op_phone_forget(self, req):
        p = self.phones.pop(req["phone"], None)
        for cid in list(self.conns):
            if self.conns[cid][1] is p:
                self.conns.pop(cid)[0]._link.close()
        return {}

    async def op_phone_connect(self, req):
        p = self._phone(req)
        addr = _unhex(req["addr"])
        lk = self.by_addr.get(addr)
        if lk is not None:
            st = self.stacks[lk.name]
            for _ in range(_ADV_YIELDS):
                if st._adv is not None:
                    break
                await asyncio.sleep_ms(0)  # a connection that just ended: the link re-advertises
        try:
            c = await p.connect(addr, req.get("timeout_ms", 2000))
        except asyncio.TimeoutError:
            raise HostError("timeout: lock not reachable")
        cid = self._id()
        self.conns[cid] = (c, p, addr)
        return {"conn": cid, "mtu": c.mtu or 23}

    def _conn(self, req):
        c = self.conns.get(req["conn"])
        if c is None:
            raise HostError("no such connection")
        return c[0]

    async def op_phone_write(self, req):
        # write each fragment (with response), then optionally wait for notifications
        c = self._conn(req)
        try:
            for f in req["frags"]:
                await c.write(self.uuid_rx, _unhex(f))
        except aioble.DeviceDisconnectedError:
            raise HostError("disconnected")
        if req.get("recv_ms"):
            return await self._recv(c, req["recv_ms"])
        return []

    async def _recv(self, c, ms):
        # every notification due now, waiting up to ms for the first
        try:
            out = [_hex(await c.notified(self.uuid_tx, ms))]
            while c.ready():
                out.append(_hex(await c.notified(self.uuid_tx, ms)))
            return out
        except asyncio.TimeoutError:
            raise HostError("timeout")
        except aioble.DeviceDisconnectedError:
            raise HostError("disconnected")

    async def op_phone_recv(self, req):
        return await self._recv(self._conn(req), req.get("timeout_ms", 1000))

    async def op_phone_disconnect(self, req):
        c = self.conns.pop(req["conn"], None)
        if c is not None:
            await c[0].disconnect()
        return {}

    # ---- connections ----

    async def client(self, reader, writer):
        try:
            first = await reader.readline()
            if first.startswith(b"SERIAL "):
                await self._serial(first[7:].strip().decode(), reader, writer)
                return
            line = first
            while line:
                try:
                    req = json.loads(line)
                    out = {"ok": await self.request(req)}
                except HostError as e:
                    out = {"err": str(e)}
                except (KeyError, ValueError, TypeError) as e:
                    out = {"err": "bad request: %s %s" % (type(e).__name__, e)}
                except Exception as e:
                    out = {"err": "internal: %s %s" % (type(e).__name__, e)}
                writer.write(json.dumps(out).encode() + b"\n")
                await writer.drain()
                if self.stopping:
                    break
                line = await reader.readline()
        except OSError:
            pass
        finally:
            try:
                writer.close()
                await writer.wait_closed()
            except OSError:
                pass

    async def _serial(self, name, reader, writer):
        lk = self.locks.get(name)
        if lk is None or name in self.serial:
            writer.write(b"ERR no such lock or port busy\n")
            await writer.drain()
            return
        # as on a unit: PROVISION is accepted on the cable (protocol §3.4)
        link = lockserial.SerialLink(SockStream(reader, writer), lambda: lk.unit.session(),
                                     provision=lambda nonce, msg: lk.unit.provision_request(nonce, msg))
        self.serial[name] = link
        self.touch(lk)
        try:
            await link.serve()
        except PowerCut:
            self._power_cut(lk)
        except OSError:
            pass
        finally:
            self.serial.pop(name, None)


async def _main(root, port, boards, seed, storage):
    # collect early: RSS then follows the live fleet, not the heap's high-water mark
    gc.threshold(_GC_THRESHOLD)
    host = Host(root, boards, seed, storage)
    server = await asyncio.start_server(host.client, "127.0.0.1", port)
    sys.stdout.write("READY %d\n" % port)
    sys.stdout.flush()
    await host.sweep()
    server.close()
    await asyncio.sleep_ms(50)


def main():
    a = sys.argv
    seed = int(a[4]) if len(a) > 4 and a[4] != "-" else None
    storage = a[5] if len(a) > 5 else "flash"
    asyncio.run(_main(a[1], int(a[2]), a[3], seed, storage))


if __name__ == "__main__":
    main()
