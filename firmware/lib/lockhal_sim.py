# Simulator twin of lockhal_esp32. One SimWorld per simulated lock holds the
# physics (bolt, door, button, battery, RTC, watchdog, deep sleep), wired as
# its board file says; SimHal(world) builds the same primitives as
# lockhal_esp32 on top of it. Time passes only through world.advance(ms).
# Stricter than hardware: misuse a unit would tolerate silently (reading an
# output, driving an input, both H-bridge inputs high, an ADC voltage outside
# the attenuation's range, a pin the board does not wire, a flash pin, using a
# pin object after a reset, ...) raises ValueError here.
from lockhal import (EDGE_FALLING, EDGE_RISING, pull_of, RESET_POWER_ON, RESET_HARD, RESET_WDT,
                     RESET_DEEPSLEEP, WAKE_NONE, WAKE_EXT0, WAKE_EXT1, WAKE_TIMER, WAKE_TOUCH, WAKE_GPIO)
from lockhal_simio import ATTENS, Output, Input, Pwm, Adc, Wdt, Rtc, Touch, SimHal, SimHalted  # noqa: F401

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

_EPOCH_2000 = const(946684800)   # an ESP32 RTC starts at 2000-01-01 after power-on
_TICKS_PERIOD = const(0x40000000)  # ticks_ms wraps at 2**30 on a 32-bit port
_TICKS_MASK = const(0x3FFFFFFF)
_FULL = const(100000)            # bolt travel in thousandths of a percent
_LOCKED_BELOW = const(2000)      # locked switch closes within 2 % of the end
_UNLOCKED_ABOVE = const(98000)
_OUT_ROLES = ("motor_a", "motor_b", "motor_sleep", "buzzer", "led")


def _r(a, b):
    return tuple(range(a, b + 1))


def chip_info(chip):
    # (gpios, forbidden, no_pull_input_only, adc1, wake_capable, linear mV range per atten)
    # forbidden: SPI flash pins and UART0 (the maintenance cable)
    if chip == "esp32":
        return (_r(0, 19) + _r(21, 23) + _r(25, 27) + _r(32, 39), (1, 3) + _r(6, 11), _r(34, 39),
                _r(32, 39), (0, 2, 4) + _r(12, 15) + _r(25, 27) + _r(32, 39),
                ((100, 950), (100, 1250), (150, 1750), (150, 2450)))
    if chip == "esp32c3":
        return (_r(0, 21), _r(11, 17) + (20, 21), (), _r(0, 4), _r(0, 5),
                ((0, 750), (0, 1050), (0, 1300), (0, 2500)))
    raise ValueError("unknown chip " + chip)


def touch_pins(chip):
    # GPIOs with a capacitive touch channel (T0..T9 on the ESP32; the C3 has none)
    if chip == "esp32":
        return (4, 0, 2, 15, 13, 12, 14, 27, 33, 32)
    if chip == "esp32c3":
        return ()
    raise ValueError("unknown chip " + chip)


class SimWorld:
    # bolt: start position, 0 locked .. 100 unlocked; ticks_start: ticks_ms() at
    # world ms 0 (default 10 s before the 2**30 wrap, to catch ticks arithmetic
    # done without ticks_diff); physics defaults come from the board's "sim" part
    def __init__(self, board, battery_mv=None, travel_ms=None, bolt=0, door_closed=True,
                 ticks_start=None, drain_nv_per_ms=0, motor_drain_nv_per_ms=0, brownout_mv=None):
        sim = board.get("sim", {})
        cal = board["adc"]["calibration"]
        self.board = board
        self.chip = chip_info(board["chip"])
        self.touch_pins = touch_pins(board["chip"])
        self.inputs = tuple(board["inputs"])  # the four INPUTS, and an outside contact
        self._pin = board["pins"]
        self._roles = {}
        for role, n in self._pin.items():
            if n is None:
                continue
            if n in self._roles:
                raise ValueError("GPIO%d wired twice" % n)
            self._roles[n] = role
        for role in self.inputs:
            spec = board["inputs"][role]
            if spec["pull"] != "external" and spec["active"] != (spec["pull"] == "down"):
                raise ValueError("%s: a contact pulled %s cannot be active at %d"
                                 % (role, spec["pull"], spec["active"]))
        self.ms = 0
        self.ticks_start = _TICKS_PERIOD - 10000 if ticks_start is None else ticks_start
        self.travel_ms = travel_ms or sim.get("travel_ms", 1200)
        self._pos = bolt * 1000
        self.jam = False
        self.door_closed = door_closed
        self.battery_mv = battery_mv or sim.get("battery_mv", 6000)
        self.run_sag_mv = sim.get("run_sag_mv", 300)
        self.stall_sag_mv = sim.get("stall_sag_mv", 700)
        # a draining battery (docs/power.md): nV lost per ms awake and per ms of
        # motor run; below brownout_mv (loaded, while the CPU runs) the unit resets
        self.drain_nv_per_ms = drain_nv_per_ms
        self.motor_drain_nv_per_ms = motor_drain_nv_per_ms
        self.brownout_mv = brownout_mv
        self.brownouts = 0
        self._drain_nv = 0
        # the unit's real ADC error; the board's calibration undoes it exactly by default
        self.adc_gain = sim.get("adc_gain", cal["gain"])
        self.adc_offset_mv = sim.get("adc_offset_mv", cal["offset_mv"])
        self.stuck = {}
        self.pins = {}
        self.gen = 0
        self._btn = False
        self._finger = False        # on the outside pad (or pressing its contact)
        self._finger_off = None
        self.touches = 0
        self._release_at = None
        self._bounces = 0
        self._wdt = 0
        self._fed = 0
        self.sleeping = False
        self._wake = ()
        self._wake_touch = None
        self._wake_at = None
        self.wake_reason = WAKE_NONE
        self.rtc_mem = b""          # RTC slow memory: survives deep sleep, not the power
        self.reset_cause = RESET_POWER_ON
        self.resets = 0
        self.console_locked = False  # Ctrl-C switched off (production mode); lost at a reset
        self.motor_ms = 0
        self.sleep_ms = 0
        self._rtc = _EPOCH_2000
        self._rtc_ms = 0

    # ---- physics ----

    @property
    def bolt(self):
        return self._pos // 1000

    def _out(self, role):
        # an output's level; None while nobody drives it (the driver's pull-downs win)
        p = self.pins.get(self._pin.get(role))
        if p is None:
            return None
        if isinstance(p, Pwm):
            return 1 if p._d else 0
        return p._v

    def motor(self):
        # what the H-bridge does now: +1 toward unlocked, -1 toward locked, 0
        if self._pin.get("motor_sleep") is not None:
            if self._out("motor_sleep") != self.board["outputs"]["motor_sleep"]["active"]:
                return 0
        d = (self._out("motor_a") or 0) - (self._out("motor_b") or 0)
        return -d if self.board["motor"].get("reverse") else d

    def is_on(self, role):
        # an output role at its active level (a PWM buzzer: duty > 0)
        p = self.pins.get(self._pin[role])
        if isinstance(p, Pwm):
            return p._d > 0
        return p is not None and p._v == self.board["outputs"].get(role, {}).get("active", 1)

    def loaded_mv(self):
        v = self.battery_mv
        d = self.motor()
        if d:
            stalled = self.jam or (d < 0 and self._pos == 0) or (d > 0 and self._pos == _FULL)
            v -= self.stall_sag_mv if stalled else self.run_sag_mv
        return max(v, 0)

    def _active(self, role):
        if role in self.stuck:
            return self.stuck[role]
        if role == "bolt_locked":
            return self._pos <= _LOCKED_BELOW
        if role == "bolt_unlocked":
            return self._pos >= _UNLOCKED_ABOVE
        if role == "door":
            return self.door_closed
        if role == "outside":
            return self._finger
        return self._btn

    def _level(self, n):
        act = self.board["inputs"][self._roles[n]]["active"]
        return act if self._active(self._roles[n]) else 1 - act

    def _move(self, dt):
        if self.sleeping:
            self.sleep_ms += dt
        d = self.motor()
        if self.drain_nv_per_ms or self.motor_drain_nv_per_ms:
            self._drain_nv += dt * (self.motor_drain_nv_per_ms if d else 0)
            self._drain_nv += 0 if self.sleeping else dt * self.drain_nv_per_ms
            self.battery_mv = max(0, self.battery_mv - self._drain_nv // 1000000)
            self._drain_nv %= 1000000
        if d:
            self.motor_ms += dt
            if not self.jam:
                self._pos = min(_FULL, max(0, self._pos + d * dt * _FULL // self.travel_ms))

    def _settle(self):
        # input edges -> IRQ handlers; a sleeping unit checks its wake pin
        for p in list(self.pins.values()):
            if isinstance(p, Input) and p._h is not None:
                lv = self._level(p._n)
                if lv != p._last:
                    p._last = lv
                    if p._trig & (EDGE_RISING if lv else EDGE_FALLING):
                        p._h(p)
        if not self.sleeping:
            return
        for n, lv, why in self._wake:
            if self._level(n) == lv:
                return self._reset(RESET_DEEPSLEEP, why)
        if self._wake_touch is not None and self._finger:
            self._reset(RESET_DEEPSLEEP, WAKE_TOUCH)

    def advance(self, ms):
        # let ms pass; returns the reset cause if the unit reset meanwhile, else None
        if ms < 0:
            raise ValueError("time runs forward")
        end = self.ms + ms
        before = self.resets
        while True:
            t = end
            rel = self._release_at
            if rel is not None and rel < t:
                t = rel
            off = self._finger_off
            if off is not None and off < t:
                t = off
            if self._wdt and self._fed + self._wdt < t:
                t = self._fed + self._wdt
            if self._wake_at is not None and self._wake_at < t:
                t = self._wake_at
            if t > self.ms:
                self._move(t - self.ms)
                self.ms = t
            if rel is not None and self.ms >= rel:
                self._release_at = None
                self._bounce(False)
            if off is not None and self.ms >= off:
                self._finger_off = None
                self._finger = False
            if self._wdt and self.ms >= self._fed + self._wdt:
                self._reset(RESET_WDT)
            if self.brownout_mv is not None and self.pins and self.loaded_mv() < self.brownout_mv:
                self.brown_out()
            if self._wake_at is not None and self.ms >= self._wake_at:
                self._reset(RESET_DEEPSLEEP, WAKE_TIMER)
            self._settle()
            if self.ms >= end:
                break
        return self.reset_cause if self.resets != before else None

    # ---- what people do to the lock ----

    def _bounce(self, down):
        for _ in range(self._bounces):
            self._btn = down
            self._settle()
            self._btn = not down
            self._settle()
        self._btn = down
        self._settle()

    def press(self, hold_ms=150, bounces=2):
        # press the inside button (contact bounce included); released after hold_ms
        if self._btn:
            raise ValueError("button already held")
        before = self.resets
        self._bounces = bounces
        self._bounce(True)
        self._release_at = self.ms + hold_ms
        return self.reset_cause if self.resets != before else None

    def touch(self, hold_ms=200):
        # a finger on the outside pad (or on its contact) for hold_ms
        if "outside" not in self._pin:
            raise ValueError("board %s has no outside wake source" % self.board["name"])
        if self._finger:
            raise ValueError("pad already touched")
        before = self.resets
        self.touches += 1
        self._finger = True
        self._finger_off = self.ms + hold_ms
        self._settle()
        return self.reset_cause if self.resets != before else None

    def set_door(self, closed):
        before = self.resets
        self.door_closed = closed
        self._settle()
        return self.reset_cause if self.resets != before else None

    def stick(self, role, active):
        # force an input role's contact (a broken switch); None releases it
        if active is None:
            self.stuck.pop(role, None)
        else:
            self.stuck[role] = active
        self._settle()

    # ---- power, resets, clock ----

    def _halt(self):
        # the CPU stops: every pin object dies, outputs float, the watchdog stops
        self.gen += 1
        self.pins = {}
        self._wdt = 0

    def _reset(self, cause, why=WAKE_NONE):
        self._halt()
        self.sleeping = False
        self._wake = ()
        self._wake_touch = None
        self._wake_at = None
        self.wake_reason = why
        if cause == RESET_POWER_ON or cause == RESET_HARD:
            self.rtc_mem = b""
        self.reset_cause = cause
        self.console_locked = False
        self.resets += 1

    def power_cut(self):
        # batteries out and back in: power-on reset, the RTC forgets the time
        self._reset(RESET_POWER_ON)
        self._rtc = _EPOCH_2000
        self._rtc_ms = self.ms

    def brown_out(self):
        # the supply sagged below the brown-out detector: a reset that loses the
        # RTC like a power cut (reported as a power-on reset); cells stay in
        self.brownouts += 1
        self._reset(RESET_POWER_ON)
        self._rtc = _EPOCH_2000
        self._rtc_ms = self.ms

    def hard_reset(self):
        self._reset(RESET_HARD)

    def time(self):
        return self._rtc + (self.ms - self._rtc_ms) // 1000

    def set_time(self, t):
        self._rtc = int(t)
        self._rtc_ms = self.ms

    def ticks(self):
        return (self.ms + self.ticks_start) & _TICKS_MASK

    def _wake_pin(self, n, pull):
        role = self._roles.get(n)
        if n not in self.chip[4] or role not in self.inputs:
            raise ValueError("GPIO%s cannot wake this chip from deep sleep" % n)
        if pull != pull_of(self.board, role):
            raise ValueError("wake pin pull does not match the board")

    def deep_sleep(self, ms, wake, level, pull, outside=None):
        # wake: the button's pin (EXT0 on the ESP32, GPIO wake on the C3);
        # outside: ("touch", n, threshold) or ("gpio", n, level, pull)
        if self.motor():
            raise ValueError("deep sleep with the motor driven")
        if wake is None and not ms and outside is None:
            raise ValueError("deep sleep with no wake source")
        c3 = self.board["chip"] == "esp32c3"
        pins = []
        if wake is not None:
            self._wake_pin(wake, pull)
            pins.append((wake, level, WAKE_GPIO if c3 else WAKE_EXT0))
        tp = None
        if outside is not None:
            n = outside[1]
            if outside[0] == "touch":
                if n not in self.touch_pins:
                    raise ValueError("GPIO%s has no touch channel on %s: no touch wake" % (n, self.board["chip"]))
                if self._roles.get(n) != "outside" or not 0 < outside[2] < 65536:
                    raise ValueError("touch wake: GPIO%s is no outside pad with a threshold" % n)
                tp = n
            elif outside[0] == "gpio":
                self._wake_pin(n, outside[3])
                if c3 and wake is not None and outside[2] != level:
                    raise ValueError("the C3 wakes on one level for all its wake pins")
                pins.append((n, outside[2], WAKE_GPIO if c3 else WAKE_EXT1))
            else:
                raise ValueError("bad outside wake kind")
        self._halt()
        self.sleeping = True
        self._wake = tuple(pins)
        self._wake_touch = tp
        self._wake_at = self.ms + ms if ms else None
        self._settle()

    # ---- pins ----

    def _claim(self, n, obj, kind):
        role = self._roles.get(n)
        if n not in self.chip[0] or n in self.chip[1]:
            raise ValueError("GPIO%s is not usable on %s" % (n, self.board["chip"]))
        if role is None:
            raise ValueError("GPIO%d is not wired on board %s" % (n, self.board["name"]))
        if n in self.pins:
            raise ValueError("GPIO%d is already in use" % n)
        if kind == "out" and (role not in _OUT_ROLES or n in self.chip[2]):
            raise ValueError("GPIO%d (%s) cannot be driven" % (n, role))
        if kind == "touch" and (role != "outside" or n not in self.touch_pins):
            raise ValueError("GPIO%d (%s) has no touch channel on %s" % (n, role, self.board["chip"]))
        if kind == "in" and role not in self.inputs:
            raise ValueError("GPIO%d (%s) is not a digital input" % (n, role))
        if kind == "adc" and (role != "battery_adc" or n not in self.chip[3]):
            raise ValueError("GPIO%d (%s) is not an ADC1 input" % (n, role))
        self.pins[n] = obj
        obj._w = self
        obj._n = n
        obj._gen = self.gen
        return role

    def _live(self, obj):
        if obj._gen != self.gen:
            what = ("GPIO%d" % obj._n) if isinstance(obj._n, int) else obj._n
            raise ValueError(what + " object outlived a reset")

    def _drive(self, n, v):
        role = self._roles[n]
        if v and role in ("motor_a", "motor_b"):
            other = "motor_b" if role == "motor_a" else "motor_a"
            if self._out(other):
                raise ValueError("both H-bridge inputs high")

    def _adc_mv(self, atten):
        lo, hi = self.chip[5][atten]
        pin_mv = self.loaded_mv() / self.board["adc"]["divider"]
        if not lo <= pin_mv <= hi:
            raise ValueError("ADC input %d mV outside the %s range %d..%d mV"
                             % (int(pin_mv), ATTENS[atten], lo, hi))
        return int((pin_mv - self.adc_offset_mv) / self.adc_gain + 0.5)
