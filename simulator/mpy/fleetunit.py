# Runs under MicroPython (the fleet host, simulator/mpy/fleethost.py): one
# simulated lock of the fleet. The real firmware's DoorUnit on the simulator
# HAL (lockhal.wire(board, lockhal_sim.SimHal(world))) with its durable state
# in a directory of its own, in one of two storage modes:
# - "flash": the unit's own storage (lockapp.boot: littlefs blobs and the
#   journal ring, docs/storage.md) on the board's partition, a NOR flash twin
#   (lockflash_sim.SimFlash) persisted to flash.bin; power cuts land on a
#   chosen program/erase of the twin, torn or whole. Faithful; 512 KB a lock.
# - "files": identity/keys/state blobs through lockkv.FileKV and the journal
#   records in a log file (FileRecords), behind a write gate that cuts the
#   power at a chosen durable write. Light: for fleets of thousands.
# The unit is built in ONE place, build_unit().
#
# Time: the lock's SimWorld runs on simulated milliseconds. The host owns a
# virtual clock; sync(target_ms) catches the world up with the unit's own
# poll() heartbeat: 20 ms steps while the motor runs or an input just changed,
# 250 ms steps while the mechanism has timers pending (unlocked, door open,
# jammed), and one jump for
# a locked, closed, idle unit (its idle polls would change nothing). The
# hardware watchdog is not started: the host's scheduler is the unit's loop.
import os
import json
import lockhal
import lockhal_sim
import lockapp
from lockkv import FileKV
from lockcodes import B_LOCKED, RECORD_LEN
from lockflash_sim import PowerCut

_STEP_MS = 20             # the unit's own poll period (lockapp _POLL_MS)
_STEP_TIMER_MS = 250
_BUSY_MS = 400            # after boot, a button press or a door change: poll every 20 ms
                          # (a press is seen only while the contact is held, debounced)
_RESET_SOFT = 5           # lockhal.RESET_SOFT: the RTC kept its time
_TAG_APPEND = 0x41
_TAG_DROP = 0x44
_TAG_PREV = 0x50          # the chain value before the oldest record (8 bytes)
_CHAIN = 8


class WriteGate:
    # The stand-in for the flash twin's power-cut injection: counts durable
    # writes and, when armed, cuts the power at write number `cut_at` (0: the
    # next one); torn: that write is half done (journal records) before the cut.
    def __init__(self):
        self.writes = 0
        self.cut_at = None
        self.torn = False
        self.dead = False
        self.on_cut = None        # called at the instant the power goes (the host stops the unit)

    def arm(self, after, torn=False):
        self.cut_at = self.writes + after
        self.torn = torn

    def check(self):
        # -> True: write fully; False: write half of it, then raise PowerCut
        if self.dead:
            raise PowerCut()
        if self.cut_at is not None and self.writes >= self.cut_at:
            self.dead = True
            self.cut_at = None
            if self.on_cut is not None:
                self.on_cut()
            if self.torn:
                return False
            raise PowerCut()
        self.writes += 1
        return True


class GatedKV(FileKV):
    # lockkv.FileKV behind the write gate; a save is write-then-rename, so a cut
    # leaves the old blob (torn saves never reach the rename)
    def __init__(self, root, gate):
        FileKV.__init__(self, root)
        self.gate = gate

    def save(self, name, blob):
        if not self.gate.check():
            raise PowerCut()
        FileKV.save(self, name, blob)

    def delete(self, name):
        if not self.gate.check():
            raise PowerCut()
        FileKV.delete(self, name)


class FileRecords:
    # The journal record store (lockjournal's interface: capacity, count(),
    # full(), append(rec, prev_chain), oldest(), drop_oldest(), get(i),
    # prev_chain(), clear()) as an append-only log file: b"A" + record appends, b"D"
    # drops the oldest, b"P" + chain sets the chain before the oldest (written
    # when a record goes into an empty store). Reloading replays the log;
    # a torn tail (a cut mid-append) is ignored. Compacted by write-then-rename.
    # An interim store until the flash journal twin lands (docs/simulator.md).
    def __init__(self, path, capacity, gate):
        self.path = path
        self.capacity = capacity
        self.gate = gate
        self._recs = []
        self._prev = None
        self._ops = 0
        self.torn_tail = 0
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            data = b""
        i = 0
        n = len(data)
        while i < n:
            t = data[i]
            if t == _TAG_DROP:
                if self._recs:
                    self._prev = self._recs.pop(0)[-_CHAIN:]
                i += 1
            elif t == _TAG_PREV and i + 1 + _CHAIN <= n:
                self._prev = data[i + 1:i + 1 + _CHAIN]
                i += 1 + _CHAIN
            elif t == _TAG_APPEND and i + 1 + RECORD_LEN <= n:
                self._recs.append(data[i + 1:i + 1 + RECORD_LEN])
                i += 1 + RECORD_LEN
            else:
                self.torn_tail = n - i
                break
            self._ops += 1
        if self.torn_tail:
            self._compact()

    def _compact(self):
        tmp = self.path + ".new"
        with open(tmp, "wb") as f:
            if self._prev is not None:
                f.write(bytes((_TAG_PREV,)) + self._prev)
            for r in self._recs:
                f.write(bytes((_TAG_APPEND,)) + r)
        os.rename(tmp, self.path)
        self._ops = len(self._recs)

    def _log(self, entry):
        whole = self.gate.check()
        with open(self.path, "ab") as f:
            f.write(entry if whole else entry[:len(entry) // 2])
        if not whole:
            raise PowerCut()
        self._ops += 1

    def count(self):
        return len(self._recs)

    def full(self):
        return len(self._recs) >= self.capacity

    def prev_chain(self):
        return self._prev

    def append(self, rec, prev_chain=None):
        if len(self._recs) >= self.capacity:
            raise ValueError("full")
        rec = bytes(rec)
        entry = bytes((_TAG_APPEND,)) + rec
        if not self._recs and prev_chain is not None:
            entry = bytes((_TAG_PREV,)) + bytes(prev_chain) + entry
        self._log(entry)
        if not self._recs and prev_chain is not None:
            self._prev = bytes(prev_chain)
        self._recs.append(rec)

    def oldest(self):
        return self._recs[0] if self._recs else None

    def drop_oldest(self):
        self._log(bytes((_TAG_DROP,)))
        self._prev = self._recs.pop(0)[-_CHAIN:]
        if self._ops > 4 * self.capacity:
            self._compact()

    def get(self, i):
        return self._recs[i]

    def clear(self):
        # provisioning, factory reset: no record of an earlier life survives
        if not self.gate.check():
            raise PowerCut()
        self._recs = []
        self._prev = None
        self._compact()


def build_unit(hw, kv=None, records=None, mount=None):
    # THE place a simulated unit is constructed (see the header): on the
    # board's flash partition at `mount`, or over the given kv and records
    if mount is not None:
        return lockapp.boot(hw, mount)
    return lockapp.DoorUnit(hw, kv, records)


def _mkdirs(path):
    p = ""
    for part in path.split("/"):
        p = p + "/" + part if p or path.startswith("/") else part
        if part:
            try:
                os.mkdir(p)
            except OSError:
                pass


class SimLock:
    # One lock of the fleet: world (physics), durable state, unit, radio link.
    def __init__(self, name, root, board, t0, x=0.0, y=0.0, capacity=512, storage="flash"):
        if storage not in ("flash", "files"):
            raise ValueError("storage: flash or files")
        self.storage = storage
        self.name = name
        self.dir = root + "/" + name
        _mkdirs(self.dir)
        self.board = board
        self.capacity = capacity
        self.t0 = t0              # host virtual ms at which this world's ms was 0
        self.x = x
        self.y = y
        self.drift_ppm = 0
        self.drain_mv_h = 0
        self._drift_acc = 0       # ppm * ms not yet applied to the RTC
        self._drain_acc = 0
        self.busy_until = 0
        self.powered = True
        self.boots = 0
        self.cuts = 0
        self.gate = None
        self.unit = None
        self.hw = None
        self.world = None
        st = self._load_world()
        w = lockhal_sim.SimWorld(board, bolt=st.get("bolt", 0), door_closed=st.get("door", True),
                                 battery_mv=st.get("mv"))
        if "rtc" in st:
            # the simulator was stopped: the unit resumes with its RTC (a soft reset)
            w.set_time(st["rtc"])
            w.reset_cause = _RESET_SOFT
        if storage == "flash":
            w.flash_path = self.dir + "/flash.bin"
        self.world = w
        self.drift_ppm = st.get("ppm", 0)
        self.drain_mv_h = st.get("drain", 0)
        self.x = st.get("x", x)
        self.y = st.get("y", y)

    def _load_world(self):
        try:
            with open(self.dir + "/world.json") as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    def save_world(self):
        w = self.world
        st = {"bolt": w.bolt, "door": w.door_closed, "mv": w.battery_mv, "ppm": self.drift_ppm,
              "drain": self.drain_mv_h, "x": self.x, "y": self.y}
        if self.powered and self.unit is not None and self.unit.provisioned:
            st["rtc"] = w.time()
        tmp = self.dir + "/world.json.new"
        with open(tmp, "w") as f:
            json.dump(st, f)
        os.rename(tmp, self.dir + "/world.json")

    def boot(self, on_cut=None):
        # (re)build the unit from what reached its durable state
        self.gate = WriteGate()
        self.gate.on_cut = on_cut
        self.hw = lockhal.wire(self.board, lockhal_sim.SimHal(self.world))
        if self.storage == "flash":
            fl = self.world.flash if hasattr(self.world, "flash") else None
            if fl is not None:
                fl.power_on()
            self.unit = build_unit(self.hw, mount="/sim_%s_%d" % (self.name, self.boots))
        else:
            self.kv = GatedKV(self.dir + "/kv", self.gate)
            self.records = FileRecords(self.dir + "/journal.log", self.capacity, self.gate)
            self.unit = build_unit(self.hw, self.kv, self.records)
        self.powered = True
        self.boots += 1
        self.unit.poll()
        self.busy_until = self.world.ms + _BUSY_MS

    def arm_cut(self, after, torn=False):
        # power dies at the after+1-th durable write (files) or flash program/erase
        # (flash) from now; torn: that write half happens
        if self.storage == "flash":
            fl = self.world.flash
            fl.cut(after, 8 if torn else None)  # a torn write: its first 8 bytes land
            return fl.ops() + after
        self.gate.arm(after, torn)
        return self.gate.cut_at

    def writes(self):
        if self.storage == "flash":
            fl = getattr(self.world, "flash", None)
            return fl.ops() if fl is not None else 0
        return self.gate.writes if self.gate else 0

    def dead(self):
        # the power went at a write (the flash twin or the gate)
        if self.storage == "flash":
            fl = getattr(self.world, "flash", None)
            return fl is not None and fl.dead
        return self.gate is not None and self.gate.dead

    def cut(self):
        # the batteries come out: the CPU stops where it is, the RTC forgets
        u = self.unit
        if u is not None and getattr(u, "storage", None) is not None:
            try:
                u.storage.close()  # the mount goes with the CPU
            except BaseException:
                pass
        self.world.power_cut()
        self.powered = False
        self.cuts += 1
        self.unit = None
        self.hw = None

    def quiescent(self):
        u = self.unit
        if u is None:
            return True
        m = u.mech
        return (m.state == B_LOCKED and m.motor == 0 and self.world.motor() == 0 and m.door_closed
                and self.world.door_closed and self.world.ms >= self.busy_until)

    def _age(self, dt):
        # battery drain and RTC drift over dt simulated ms
        if self.drain_mv_h:
            self._drain_acc += self.drain_mv_h * dt
            mv = self._drain_acc // 3600000
            if mv:
                self._drain_acc -= mv * 3600000
                self.world.battery_mv = max(0, self.world.battery_mv - mv)
        if self.drift_ppm and self.powered:
            self._drift_acc += self.drift_ppm * dt
            s = int(self._drift_acc / 1000000000)
            if s:
                self._drift_acc -= s * 1000000000
                self.world.set_time(self.world.time() + s)

    def sync(self, vnow):
        # catch the world up to host time vnow, polling like the unit's loop
        w = self.world
        target = vnow - self.t0
        while w.ms < target:
            left = target - w.ms
            if not self.powered:
                w.advance(left)
                self._age(left)
                break
            if self.dead():
                raise PowerCut()
            if self.quiescent():
                step = left
            elif w.motor() or self.unit.mech.motor or w.ms < self.busy_until:
                step = min(left, _STEP_MS)
            else:
                step = min(left, _STEP_TIMER_MS)
            w.advance(step)
            self._age(step)
            self.unit.poll()

    def status(self):
        w = self.world
        out = {"lock": self.name, "powered": self.powered, "bolt": w.bolt, "motor": w.motor(),
               "door_closed": w.door_closed, "battery_mv": w.battery_mv, "jam": w.jam,
               "boots": self.boots, "cuts": self.cuts, "writes": self.writes(), "storage": self.storage,
               "x": self.x, "y": self.y, "drift_ppm": self.drift_ppm, "drain_mv_h": self.drain_mv_h}
        u = self.unit
        if u is not None:
            j = u.journal
            out.update({"state": u.mech.state, "lock_id": "".join("%02x" % b for b in u.lock_id),
                        "provisioned": u.provisioned, "time": u.clock.now(), "rtc": w.time(),
                        "uncertain": bool(u.clock.time_uncertain()), "head": j.head, "acked": j.acked,
                        "backlog": j.backlog(), "lost": j.lost, "stored": j.store.count(),
                        "flags": u.ctx.flags(), "deny": u.deny.version,
                        "epoch": u.keystore.keys.epoch if u.keystore.keys else 0})
            b = getattr(u, "batt", None)
            if b is not None:
                out["battery_pct"] = b.pct()
                out["battery_unit_mv"] = b.mv()
            try:
                out["battery_adc_mv"] = self.hw.battery.read_mv()
            except ValueError:
                out["battery_adc_mv"] = None  # outside the ADC's range: a flat or absent battery
        return out
