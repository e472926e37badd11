# Runs under MicroPython: the battery path (lockhal.Battery -> lockbattery.Monitor)
# and whole door units on a draining simulated battery, driven from
# tests/test_battery*.py and the energy model's day run (simulator/energy.py).
import lockhal
import lockhal_sim
import lockbattery
import apptest
import lockapp
from lockhal_simio import SimHalted
from lockkeys import RamKV
from lockjournal import RamRecords
from binascii import hexlify


def chain(boards, name, mv, gain=None, offset=None, calibrated=True, uv=True, n=16):
    # cells at mv through the board's divider and ADC into a monitor: what it
    # reports. gain/offset: this unit's ADC error (pin mV = ADC mV x gain +
    # offset); calibrated: the board file carries the matching calibration
    board = lockhal.load_board(name, boards)
    if gain is not None:
        board["sim"] = dict(board.get("sim", {}), adc_gain=gain, adc_offset_mv=offset)
        if calibrated:
            board["adc"]["calibration"] = {"gain": gain, "offset_mv": offset}
    world = lockhal_sim.SimWorld(board, battery_mv=mv)
    hw = lockhal.wire(board, lockhal_sim.SimHal(world, adc_uv=uv))
    mon = lockbattery.Monitor(board["battery"])
    reads = []
    for _ in range(n):
        r = hw.battery.read_mv()
        reads.append(r)
        mon.sample(r)
    return {"reads": reads, "mv": mon.mv(), "pct": mon.pct(), "level": mon.level, "flags": mon.flags()}


def percent(chem, cell_mv):
    return lockbattery.percent(lockbattery.chemistry(chem)[0], cell_mv)


def _monitor(chem, cells, brownout, floor, reserve):
    return lockbattery.Monitor({"chemistry": chem, "cells": cells, "brownout_mv": brownout, "floor_mv": floor,
                                "reserve_mv": reserve})


def thresholds(chem, cells, brownout, floor, reserve):
    m = _monitor(chem, cells, brownout, floor, reserve)
    return {"low": m.low_mv, "critical": m.critical_mv, "hyst": m.hyst_mv, "guard": m.guard_mv,
            "floor": m.floor_mv, "sag": m.sag}


def feed(chem, cells, brownout, floor, reserve, steps):
    # steps: [mv, loaded] samples, or None = end of a motor run. Returns the
    # level after every step, every event (reason) and the final values
    m = _monitor(chem, cells, brownout, floor, reserve)
    levels = []
    events = []
    for s in steps:
        if s is None:
            m.run_end()
        else:
            m.sample(s[0], s[1])
        levels.append(m.level)
        events.extend(m.ev)
        m.ev = []
    return {"levels": levels, "events": events, "mv": m.mv(), "sag": m.sag, "pct": m.pct(),
            "flags": m.flags(), "unlock_ok": m.unlock_ok(), "journal_ok": m.journal_ok(),
            "arg": m.record_arg(0)}


class BattBench(apptest.Bench):
    # apptest's bench with the battery knobs of the simulated world
    def battery(self, u, mv=None, drain_nv_per_ms=None, motor_drain_nv_per_ms=None, brownout_mv=-1,
                run_sag_mv=None, stall_sag_mv=None):
        w = self.units[u]["world"]
        if mv is not None:
            w.battery_mv = mv
        if drain_nv_per_ms is not None:
            w.drain_nv_per_ms = drain_nv_per_ms
        if motor_drain_nv_per_ms is not None:
            w.motor_drain_nv_per_ms = motor_drain_nv_per_ms
        if brownout_mv != -1:
            w.brownout_mv = brownout_mv
        if run_sag_mv is not None:
            w.run_sag_mv = run_sag_mv
        if stall_sag_mv is not None:
            w.stall_sag_mv = stall_sag_mv
        return self.batt(u)

    def batt(self, u):
        d = self.units[u]
        b = d["unit"].batt
        w = d["world"]
        return {"mv": b.mv(), "pct": b.pct(), "level": b.level, "flags": b.flags(), "sag": b.sag,
                "world_mv": w.battery_mv, "brownouts": w.brownouts, "resets": w.resets,
                "dropped": b.dropped, "advert": list(d["unit"].advert()[1:]),
                "led": hexlify(d["hw"].led._pat).decode(), "state_block": d["unit"].ctx.state_block().hex()}

    def sample_now(self, u, n=40):
        # n polls that each take an idle sample (instead of one a minute):
        # the average settles on the cells' voltage
        for _ in range(n):
            self.units[u]["unit"]._batt_next = 0
            self.units[u]["unit"].poll()
        return self.batt(u)

    def skip(self, u, ms):
        # let ms pass in one step (a quiet stretch of the day), then one poll
        d = self.units[u]
        cause = d["world"].advance(ms)
        if cause is not None:
            self._boot(u)
        d["unit"].poll()

    def motor_ms(self, u):
        return self.units[u]["world"].motor_ms


def bench(boards):
    apptest._bench = BattBench(boards)


class SleepBench(BattBench):
    # units in the deep-sleep profile: poll() may end in hw.sleep() (SimHalted);
    # the world then sleeps until its wake pin (the inside button) resets it
    board_name = "sim"

    def new(self, uid, bolt=0, door_closed=True):
        board = lockhal.load_board(self.board_name, self.boards)
        board["power_profile"] = "deep_sleep"
        world = lockhal_sim.SimWorld(board, bolt=bolt, door_closed=door_closed)
        self.units[uid] = {"board": board, "world": world, "kv": RamKV(), "records": RamRecords(512),
                           "session": None, "sleeps": 0, "boots": 0}
        self._boot(uid)

    def _boot(self, u):
        d = self.units[u]
        d["boots"] = d.get("boots", 0) + 1
        hw = lockhal.wire(d["board"], lockhal_sim.SimHal(d["world"]))
        d["hw"] = hw
        d["unit"] = lockapp.DoorUnit(hw, d["kv"], d["records"])
        d["session"] = None
        self._poll(u)

    def _poll(self, u):
        d = self.units[u]
        if d["world"].sleeping:
            return
        try:
            d["unit"].poll()
        except SimHalted:
            d["sleeps"] += 1

    def run(self, u, ms, step=20):
        d = self.units[u]
        t = 0
        while t < ms:
            if d["world"].advance(step) is not None:
                self._boot(u)
            else:
                self._poll(u)
            t += step

    def skip(self, u, ms):
        d = self.units[u]
        if d["world"].advance(ms) is not None:
            self._boot(u)
        else:
            self._poll(u)

    def press(self, u):
        if self.units[u]["world"].press() is not None:
            self._boot(u)

    def touch(self, u, hold_ms=200):
        # a finger on the outside pad (or the C3's outside contact)
        if self.units[u]["world"].touch(hold_ms) is not None:
            self._boot(u)

    def handle(self, u, msg):
        d = self.units[u]
        resp = d["session"].handle(msg)
        self._poll(u)
        return resp

    def close_session(self, u):
        # the transport ends the connection (the phone hung up): lockble and
        # lockserial call close() when a connection ends
        self.units[u]["session"].close()
        self.units[u]["session"].close()  # twice: counted once

    def sleep_status(self, u):
        # while asleep the unit's objects are dead (the strict twin): the world only
        d = self.units[u]
        w = d["world"]
        up = not w.sleeping
        return {"asleep": w.sleeping, "sleeps": d["sleeps"], "boots": d["boots"], "sleep_ms": w.sleep_ms,
                "cause": w.reset_cause, "uncertain": d["unit"].clock.time_uncertain() if up else None,
                "now": d["unit"].clock.now() if up else None, "world_time": w.time(),
                "outside_armed": len(w._wake) > 1 or w._wake_touch is not None, "timer": w._wake_at is not None,
                "woke": d["hw"].wake_source() if up else None, "touches": w.touches}

    def status(self, u):
        w = self.units[u]["world"]
        if w.sleeping:
            return {"state": None, "motor": w.motor(), "bolt": w.bolt, "motor_ms": w.motor_ms}
        return BattBench.status(self, u)


def sleep_bench(boards, board="sim"):
    apptest._bench = SleepBench(boards)
    apptest._bench.board_name = board
