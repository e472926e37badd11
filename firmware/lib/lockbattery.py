# The battery monitor as a pure state machine (docs/power.md, "On the lock").
# Values in: sample(mv, loaded) with the pack voltage from lockhal.Battery,
# loaded=True while the motor runs; run_end() when a motor run stops.
# Values out: mv() smoothed idle pack mV, sag the measured drop under motor
# load, pct() state of charge by the chemistry curve (below), level (LV_*),
# flags() for HELLO and the advertisement, `ev` (BR_* reasons, drained by the
# owner) for EV_BATTERY records, unlock_ok() / journal_ok() for the rules.
#
# Rules:
# - Idle samples are smoothed by an exponential average (1/8 per sample,
#   fixed point in 1/16 mV); the first sample sets it.
# - Sag = smoothed idle mV minus the lowest loaded sample of the last run,
#   itself averaged (1/2 per run). Before any run: the chemistry's default.
# - Levels with hysteresis: LOW below low_mv, CRITICAL below critical_mv or
#   when idle - sag (the next run's predicted minimum) is within reserve_mv of
#   the board's brown-out voltage, FLOOR below floor_mv (no flash writes but
#   the final record). A level is left only hyst_mv above where it was
#   entered, so noise smaller than the band never produces two events.

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

# protocol numbers (docs/protocol.md; the same as lockcodes, tests/test_fw_consts.py)
_F_BATTERY_LOW = const(2)
_F_BATTERY_CRITICAL = const(4)
_BR_BOOT = const(1)
_BR_LOW = const(2)
_BR_CRITICAL = const(3)
_BR_OK = const(4)
_BR_FLOOR = const(5)

_LV_UNKNOWN = const(0)
_LV_OK = const(1)
_LV_LOW = const(2)
_LV_CRITICAL = const(3)
_LV_FLOOR = const(4)

_FP = const(4)          # fixed point: 1/16 mV
_IDLE_SHIFT = const(3)  # idle average weight 1/8
_MAX_EVENTS = const(8)

# Chemistries as data (sources and how the points were read: docs/power.md,
# "Chemistry curves"). Curve: bytes of (cell mV / 10, percent) pairs, mV
# descending from full to empty, for the idle (low-drain) voltage of a resting
# lock. chemistry() -> (curve, low_mv, critical_mv, hysteresis_mv,
# default_sag_mv), all per cell; the default sag stands in until a motor run
# has been measured. (One module with the monitor: a second module costs heap.)
# alkaline: 1580 100, 1500 90, 1400 75, 1300 55, 1200 35, 1150 20, 1100 12, 1050 6, 1000 3, 900 0
_ALKALINE = b"\x9e\x64\x96\x5a\x8c\x4b\x82\x37\x78\x23\x73\x14\x6e\x0c\x69\x06\x64\x03\x5a\x00"
# lithium: 1800 100, 1700 97, 1650 90, 1600 75, 1550 55, 1500 35, 1450 15, 1400 8, 1300 3, 1200 1, 900 0
_LITHIUM = b"\xb4\x64\xaa\x61\xa5\x5a\xa0\x4b\x9b\x37\x96\x23\x91\x0f\x8c\x08\x82\x03\x78\x01\x5a\x00"


def chemistry(name):
    # -> (curve, low_mv, critical_mv, hysteresis_mv, default_sag_mv) per cell
    if name == "alkaline-4aa":
        return _ALKALINE, 1150, 1075, 25, 75
    if name == "lithium-4aa":
        return _LITHIUM, 1450, 1350, 20, 25
    raise ValueError("unknown chemistry " + str(name))


def percent(curve, cell_mv):
    # piecewise-linear state of charge (0..100) for one cell's idle mV on a curve
    if cell_mv >= curve[0] * 10:
        return curve[1]
    for i in range(2, len(curve), 2):
        mv = curve[i] * 10
        if cell_mv >= mv:
            lo = curve[i + 1]
            return lo + (curve[i - 1] - lo) * (cell_mv - mv) // (curve[i - 2] * 10 - mv)
    return curve[-1]


class Monitor:
    # battery: a board file's "battery" part (boards/README.md)
    def __init__(self, battery):
        n = battery["cells"]
        curve, low, crit, hyst, sag = chemistry(battery["chemistry"])
        self._curve = curve
        self._cells = n
        self.low_mv = low * n
        self.critical_mv = crit * n
        self.hyst_mv = hyst * n
        # the next run's minimum must stay above brown-out + reserve
        self.guard_mv = battery.get("brownout_mv", 0) + battery.get("reserve_mv", 200)
        self.floor_mv = battery.get("floor_mv", 0)
        self.sag = sag * n
        self.sag_measured = False
        self._m = 0             # smoothed idle, 1/16 mV; 0 = no sample yet
        self._run_min = 0       # lowest loaded sample of the current run (0: none)
        self.level = _LV_UNKNOWN
        self.ev = []
        self.boot_record = True  # the first level is journaled as _BR_BOOT
        self.dropped = 0        # journal records not written below the floor
        self.refused = 0        # motor runs refused for the battery (for feedback)

    def sample(self, mv, loaded=False):
        if loaded:
            if self._run_min == 0 or mv < self._run_min:
                self._run_min = mv
            return
        m = self._m
        self._m = (mv << _FP) if m == 0 else m + (((mv << _FP) - m) >> _IDLE_SHIFT)
        self._update()

    def run_end(self):
        # a motor run stopped: its lowest sample against the idle level is the sag
        lo = self._run_min
        self._run_min = 0
        if lo and self._m:
            s = max(0, self.mv() - lo)
            self.sag = (self.sag + s) >> 1 if self.sag_measured else s
            self.sag_measured = True
            self._update()

    def mv(self):
        return self._m >> _FP

    def pct(self):
        return percent(self._curve, self.mv() // self._cells) if self._m else 255

    def flags(self):
        lv = self.level
        if lv >= _LV_CRITICAL:
            return _F_BATTERY_LOW | _F_BATTERY_CRITICAL
        return _F_BATTERY_LOW if lv == _LV_LOW else 0

    def unlock_ok(self):
        # a motor run that opens the door only while its relock is still safe
        return self.level < _LV_CRITICAL

    def journal_ok(self):
        return self.level != _LV_FLOOR

    def record_arg(self, reason):
        # EV_BATTERY arg: pct | flags << 8 | reason << 16 | sag in 10 mV << 24;
        # rounded up (a server forecasting from it errs early) and at least 1
        # once measured (0 means not measured yet)
        sag = max(1, min(255, (self.sag + 9) // 10)) if self.sag_measured else 0
        return self.pct() | (self.flags() << 8) | (reason << 16) | (sag << 24)

    def _update(self):
        m = self.mv()
        lv = self.level
        h = self.hyst_mv
        p = m - self.sag
        g = self.guard_mv
        # each level is entered at its threshold and left hyst above it
        if m <= self.floor_mv or (lv == _LV_FLOOR and m < self.floor_mv + h):
            new, why = _LV_FLOOR, _BR_FLOOR
        elif (m <= self.critical_mv or p <= g
              or (lv >= _LV_CRITICAL and (m < self.critical_mv + h or p < g + h))):
            new, why = _LV_CRITICAL, _BR_CRITICAL
        elif m <= self.low_mv or (lv >= _LV_LOW and m < self.low_mv + h):
            new, why = _LV_LOW, _BR_LOW
        else:
            new, why = _LV_OK, _BR_OK
        if new != lv:
            self.level = new
            if lv == _LV_UNKNOWN:
                # the first reading: one _BR_BOOT record (its flags carry the level)
                if not self.boot_record:
                    return
                why = _BR_BOOT
            if len(self.ev) < _MAX_EVENTS:
                self.ev.append(why)
