# Runs under MicroPython: whole door units (lockapp.DoorUnit) on the simulator
# HAL, driven step by step from tests/test_app_*.py. Each unit keeps its state
# on its own flash twin (lockflash_sim, in the world: littlefs for the
# key-value blobs, the journal ring), which outlives reboots and power cuts.
import lockhal
import lockhal_sim
import lockapp
from binascii import hexlify


_benches = [0]  # mount points must differ between benches in one interpreter


class Bench:
    def __init__(self, boards, capacity=512):
        self.boards = boards
        self.units = {}
        _benches[0] += 1
        self.serial = _benches[0]

    def new(self, uid, bolt=0, door_closed=True):
        board = lockhal.load_board("sim", self.boards)
        world = lockhal_sim.SimWorld(board, bolt=bolt, door_closed=door_closed)
        self.units[uid] = {"board": board, "world": world, "session": None, "unit": None}
        self._boot(uid)

    def _boot(self, u):
        d = self.units[u]
        hw = lockhal.wire(d["board"], lockhal_sim.SimHal(d["world"]))
        d["hw"] = hw
        if d["unit"] is not None:
            d["unit"].storage.close()  # the old firmware's mount goes with its RAM
        d["unit"] = lockapp.boot(hw, "/unit%d_%s" % (self.serial, u))
        d["session"] = None
        d["unit"].poll()

    def provision(self, u, lock_id, epoch, master, now):
        return self.units[u]["unit"].provision(lock_id, epoch, master, now)

    def provision_msg(self, u, msg):
        # a PROVISION over the cable: HELLO first, then the message (lockserial does this)
        d = self.units[u]
        s = d["unit"].session()
        s.hello()
        resp = d["unit"].provision_request(s.take_nonce(), msg)
        return [resp, d["world"].console_locked]

    def hello(self, u):
        d = self.units[u]
        d["session"] = d["unit"].session()
        return d["session"].hello()

    def handle(self, u, msg):
        d = self.units[u]
        resp = d["session"].handle(msg)
        d["unit"].poll()
        return resp

    def run(self, u, ms, step=20):
        # let ms of simulated time pass, polling the unit like its asyncio loop
        d = self.units[u]
        t = 0
        while t < ms:
            cause = d["world"].advance(step)
            if cause is not None:
                self._boot(u)
            d["unit"].poll()
            t += step

    def door(self, u, closed):
        self.units[u]["world"].set_door(closed)

    def press(self, u):
        self.units[u]["world"].press()

    def jam(self, u, on):
        self.units[u]["world"].jam = on

    def power_cut(self, u, off_ms=0):
        d = self.units[u]
        d["world"].power_cut()
        d["world"].advance(off_ms)
        self._boot(u)

    def soft_reset(self, u):
        # machine.reset(): the RTC keeps counting, RAM is lost
        d = self.units[u]
        try:
            d["hw"].reset()
        except lockhal_sim.SimHalted:
            pass
        self._boot(u)

    def status(self, u):
        d = self.units[u]
        unit = d["unit"]
        w = d["world"]
        return {"state": unit.mech.state, "motor": w.motor(), "bolt": w.bolt, "motor_ms": w.motor_ms,
                "now": unit.clock.now(), "uncertain": unit.clock.time_uncertain(),
                "head": unit.journal.head, "flags": unit.ctx.flags(),
                "epoch": unit.keystore.keys.epoch if unit.keystore.keys else 0,
                "deny": unit.deny.version, "provisioned": unit.provisioned}

    def journal(self, u):
        j = self.units[u]["unit"].journal
        out = []
        first = j.first_seq()
        for i in range(j.store.count()):
            out.append(hexlify(j.store.get(i)).decode())
        return [first, hexlify(j.base_chain).decode(), out]


_bench = None


def bench(boards):
    global _bench
    _bench = Bench(boards)


def call(name, *args):
    return getattr(_bench, name)(*args)


class _Boom:
    async def run(self):
        raise RuntimeError("a transport failed")


def serve_failure(boards, provisioned):
    # lockapp.serve() with a link that fails: production resets, factory re-raises
    import lockapp as A
    b = Bench(boards)
    b.new("x")
    d = b.units["x"]
    unit = d["unit"]
    if provisioned:
        unit.provision(b"LK\x00\x00\x00\x00\x00\x09", 1, bytes(32), 1767225600)
    unit.hw.motor.drive(1)
    resets = []
    try:
        A.serve(unit, [_Boom()], lambda: resets.append(1))
        raised = False
    except RuntimeError:
        raised = True
    return {"resets": len(resets), "raised": raised, "motor": d["world"].motor()}
