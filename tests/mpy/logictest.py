# Runs under MicroPython: harness for the door unit's pure logic (lockmech,
# lockguard, lockclock, lockdeny), driven from tests/test_logic_*.py. Objects
# live here by name, so one interpreter hosts many of them (as one process
# hosts many locks in the simulator).
import gc
import lockmech
import lockguard
import lockclock
import lockdeny

_objs = {}


class FakeRtc:
    # an RTC the test moves by hand: time() / set_time(t) in Unix seconds
    def __init__(self, t):
        self.t = t
        self.sets = []

    def time(self):
        return self.t

    def set_time(self, t):
        self.t = t
        self.sets.append(t)


def new(name, kind, kw=None):
    kw = dict(kw or {})
    if kind == "mech":
        o = lockmech.Mechanism(**kw)
    elif kind == "guard":
        o = lockguard.Guard(**kw)
    elif kind == "deny":
        o = lockdeny.DenyList(**kw)
    elif kind == "rtc":
        o = FakeRtc(kw["t"])
    elif kind == "clock":
        src = _objs[kw.pop("source")]
        o = lockclock.Clock(src, **kw)
    else:
        raise ValueError(kind)
    _objs[name] = o
    return name


def drop(name):
    _objs.pop(name, None)


def call(name, method, *args):
    return getattr(_objs[name], method)(*args)


def get(name, attr):
    v = getattr(_objs[name], attr)
    return v


def put(name, attr, value):
    setattr(_objs[name], attr, value)


def consts():
    m = lockmech
    return {"POS_UNKNOWN": m.POS_UNKNOWN, "POS_LOCKED": m.POS_LOCKED, "POS_UNLOCKED": m.POS_UNLOCKED,
            "FB_NONE": m.FB_NONE, "FB_OK": m.FB_OK, "FB_DENIED": m.FB_DENIED, "FB_ALARM": m.FB_ALARM,
            "FB_JAM": m.FB_JAM, "EPOCH_2000": lockclock.EPOCH_2000,
            "DEVICE_EPOCH_YEAR": lockclock.DEVICE_EPOCH_YEAR}


# ---- mechanism: one call per poll, everything observable back ----

def _mech_out(m):
    return [m.state, m.motor, m.events(), m.take_feedback()]


def mech_update(name, now, pos, door_closed, button):
    m = _objs[name]
    m.update(now, pos, door_closed, button)
    return _mech_out(m)


def mech_command(name, op, now):
    m = _objs[name]
    return [m.command(op, now)] + _mech_out(m)


def mech_hold(name, now, until, step, pos, door_closed):
    # polls with the inputs unchanged from now to until (inclusive) while the
    # motor stays off and nothing happens; stops at the first poll that starts
    # the motor or yields an event -> [t, state, motor, events, feedback]
    m = _objs[name]
    t = now
    while True:
        m.update(t, pos, door_closed, False)
        ev = m.events()
        if m.motor or ev or t >= until:
            return [t, m.state, m.motor, ev, m.take_feedback()]
        t = t + step if t + step < until else until


# ---- clock ----

def clock_read(name):
    c = _objs[name]
    return [c.now(), c.time_uncertain()]


def epoch(fn, t, year):
    return getattr(lockclock, fn)(t, year)


# ---- deny list ----

def deny_state(name):
    d = _objs[name]
    return [d.version, d.updated_at, [list(e) for e in d.entries]]


def deny_decode(blob):
    try:
        d = lockdeny.DenyList.decode(blob)
    except ValueError as e:
        return ["ValueError", str(e)]
    return ["ok", d.version, d.updated_at, [list(e) for e in d.entries]]


def deny_decode_all_flips(blob):
    # every single-byte change of blob (each position, each xor mask 1..255)
    # -> how many decoded without ValueError (must be 0), and the first such
    n = 0
    first = None
    buf = bytearray(blob)
    for i in range(len(buf)):
        orig = buf[i]
        for x in range(1, 256):
            buf[i] = orig ^ x
            try:
                lockdeny.DenyList.decode(buf)
                n += 1
                if first is None:
                    first = [i, x]
            except ValueError:
                pass
        buf[i] = orig
    return [n, first]


# ---- memory ----

def _full_deny():
    d = lockdeny.DenyList()
    d.replace(1, [(1, i, 2000000000) for i in range(64)], 1700000000, True)
    return d


_MAKERS = (
    ("mech", lambda: lockmech.Mechanism()),
    ("guard", lambda: lockguard.Guard()),
    ("clock", lambda: lockclock.Clock(FakeRtc(1700000000), 1700000000)),
    ("deny64", _full_deny),
)


def footprint():
    # bytes of heap each object holds once built (a full deny list included)
    out = {}
    keep = []
    for name, make in _MAKERS:
        gc.collect()
        before = gc.mem_alloc()
        keep.append(make())
        gc.collect()
        out[name] = gc.mem_alloc() - before
    return out
