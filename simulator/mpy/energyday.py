# Runs under MicroPython (simulator/energy.py drives it over mpyhost.Worker):
# one real DoorUnit on the simulator HAL living through a scripted day, so the
# energy model reads a real journal. The host makes the phone's messages
# (lockproto); this side only steps the unit: 20 ms polls while something
# happens, one jump (and one poll) for the quiet hours between visits.
import lockhal
import lockhal_sim
import lockapp
from lockkeys import RamKV
from lockjournal import RamRecords
from binascii import hexlify, unhexlify

_STEP_MS = 20


class Day:
    def __init__(self, boards, board, battery_mv, capacity):
        self.board = lockhal.load_board(board, boards)
        self.world = lockhal_sim.SimWorld(self.board, battery_mv=battery_mv)
        self.kv = RamKV()
        self.records = RamRecords(capacity)
        self.session = None
        self.resets = 0
        self._boot()

    def _boot(self):
        hw = lockhal.wire(self.board, lockhal_sim.SimHal(self.world))
        self.hw = hw
        self.unit = lockapp.DoorUnit(hw, self.kv, self.records)
        self.unit.poll()

    def _step(self, ms):
        if self.world.advance(ms) is not None:
            self.resets += 1
            self._boot()
        self.unit.poll()

    def run(self, ms):
        t = 0
        while t < ms:
            self._step(_STEP_MS)
            t += _STEP_MS

    def skip(self, ms):
        # a quiet stretch: one jump, then one poll (an idle locked unit's polls change nothing)
        self._step(ms)


_day = None


def start(boards, board, battery_mv, capacity):
    global _day
    _day = Day(boards, board, battery_mv, capacity)
    return status()


def provision(lock_id_hex, epoch, master_hex, now):
    return _day.unit.provision(unhexlify(lock_id_hex), epoch, unhexlify(master_hex), now)


def hello():
    _day.session = _day.unit.session()
    return hexlify(_day.session.hello()).decode()


def handle(msg_hex):
    resp = _day.session.handle(unhexlify(msg_hex))
    _day.unit.poll()
    return hexlify(resp).decode()


def run(ms):
    _day.run(ms)
    return status()


def skip(ms):
    _day.skip(ms)
    return status()


def door(closed):
    _day.world.set_door(closed)


def press():
    _day.world.press()


def status():
    u = _day.unit
    w = _day.world
    return {"state": u.mech.state, "bolt": w.bolt, "now": u.clock.now(), "motor_ms": w.motor_ms,
            "ms": w.ms, "battery_mv": u.batt.mv(), "pct": u.batt.pct(), "head": u.journal.head,
            "resets": _day.resets}


def journal():
    # the plaintext records (the lock's store; an export would carry the same, encrypted)
    j = _day.unit.journal
    return [hexlify(j.store.get(i)).decode() for i in range(j.store.count())]
