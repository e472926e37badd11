# Hardware abstraction: board files (boards/*.json), the primitive interface a
# HAL provides, and wire(board, hal) which builds one lock's Hardware from them.
# hal is the lockhal_esp32 module on a unit, or lockhal_sim.SimHal(world) in the
# simulator. Both provide the same primitive constructors and functions:
#   output(n, value=0)        -> .value(v) .on() .off()
#   input(n, pull=PULL_NONE)  -> .value() .irq(handler, trigger)  handler(pin) only sets a flag
#   pwm(n, freq, duty_u16=0)  -> .freq([f]) .duty_u16([d]) .deinit()
#   adc(n, atten)             -> .read_uv() .read_u16()     atten: "0db" "2.5db" "6db" "11db"
#   wdt(timeout_ms)           -> .feed()
#   rtc()                     -> .time() .set_time(t)       unix seconds
#   reset_cause() -> RESET_*; ticks_ms(); ticks_diff(a, b)
#   touch(n, threshold)       -> .read()   a capacitive touch pad (ESP32 only)
#   deepsleep(ms, wake, level, pull, outside=None) and reset(): never return;
#     outside: ("touch", n, threshold) or ("gpio", n, level, pull), a second wake source
#   wake_reason() -> WAKE_*: what ended the last deep sleep
#   console_locked(): production mode, Ctrl-C on the USB console switched off
# Nothing here touches hardware at import time and nothing is module state.
import json

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

# Bolt position from the two limit switches (Bolt.position)
POS_UNKNOWN = const(0)   # between the switches, or both active (a fault)
POS_LOCKED = const(1)
POS_UNLOCKED = const(2)

# Pulls and IRQ edges of the primitive interface
PULL_NONE = const(0)
PULL_UP = const(1)
PULL_DOWN = const(2)
EDGE_FALLING = const(1)
EDGE_RISING = const(2)

# Reset causes (journaled as BOOT arg16); the values match machine's constants
RESET_UNKNOWN = const(0)
RESET_POWER_ON = const(1)
RESET_HARD = const(2)
RESET_WDT = const(3)
RESET_DEEPSLEEP = const(4)
RESET_SOFT = const(5)

# hal.wake_reason(): ESP-IDF's esp_sleep_source_t, as machine.wake_reason() returns it
WAKE_NONE = const(0)
WAKE_EXT0 = const(2)
WAKE_EXT1 = const(3)
WAKE_TIMER = const(4)
WAKE_TOUCH = const(5)
WAKE_GPIO = const(7)
# Hardware.wake_source(): who woke the unit
WOKE_NONE = const(0)      # not a deep-sleep wake, or the sleep's timer
WOKE_INSIDE = const(1)    # the inside button (board "wake")
WOKE_OUTSIDE = const(2)   # the outside pad or contact (board "wake_outside")

# Indicator signals (buzzer and LED)
SIG_OFF = const(0)
SIG_ON = const(1)
SIG_OK = const(2)
SIG_DENIED = const(3)
SIG_ALARM = const(4)
SIG_LOW_BATTERY = const(5)

_TICK_UNIT_MS = const(10)
_PWM_ON = const(32768)       # 50 % duty for a passive piezo
_U16_FULL = const(65535)
_GAIN_SCALE = const(10000)   # calibration gain in 1/10000
_RATIO_SCALE = const(1000)   # divider ratio in 1/1000

# Per signal code: durations in 10 ms units, alternately on and off, starting on
_PATTERNS = (b"", b"", b"\x0f", b"\x08\x08\x08\x08\x08", b"\x64", b"\x05\x14\x05")

INPUTS = ("bolt_locked", "bolt_unlocked", "door", "button")
OUTPUTS = ("motor_a", "motor_b", "buzzer", "led")
PINS = INPUTS + OUTPUTS + ("battery_adc",)


def load_board(name, boards_dir="/boards"):
    # name "esp32-devkitc" (or a file name) -> the board dict, minus its notes
    # and description (text for people; about a kilobyte of heap on a unit)
    if not name.endswith(".json"):
        name += ".json"
    with open(boards_dir + "/" + name) as f:
        b = json.load(f)
    b.pop("notes", None)
    b.pop("description", None)
    return b


def pull_of(board, role):
    # the pull the MCU must enable for an input role: "up", "down" or "external"
    p = board["inputs"][role]["pull"]
    if p == "up":
        return PULL_UP
    if p == "down":
        return PULL_DOWN
    if p == "external":
        return PULL_NONE
    raise ValueError("bad pull for " + role)


class Switch:
    # a contact on an input pin; active() is True while it is closed. The door's
    # reed contact is one too: closed contact (magnet near) = door closed.
    def __init__(self, pin, active):
        self.pin = pin
        self._act = active

    def active(self):
        return self.pin.value() == self._act

    is_closed = active


class Motor:
    # H-bridge (DRV8833/TB6612 style): +1 drives toward unlocked, -1 toward locked
    def __init__(self, a, b, enable=None, enable_active=1, reverse=False):
        self._a, self._b = (b, a) if reverse else (a, b)
        self._en = enable
        self._en_on = enable_active
        self.direction = 0

    def drive(self, direction):
        if direction not in (-1, 0, 1):
            raise ValueError("direction")
        # break before make: both inputs low first, so they are never both high
        self._a.value(0)
        self._b.value(0)
        if self._en is not None:
            self._en.value(self._en_on if direction else 1 - self._en_on)
        if direction > 0:
            self._a.value(1)
        elif direction < 0:
            self._b.value(1)
        self.direction = direction


class Bolt:
    # the two limit switches; fault is set while both report at once
    def __init__(self, locked, unlocked):
        self._l = locked
        self._u = unlocked
        self.fault = False

    def position(self):
        lk = self._l.active()
        un = self._u.active()
        self.fault = lk and un
        if lk and not un:
            return POS_LOCKED
        if un and not lk:
            return POS_UNLOCKED
        return POS_UNKNOWN


class Button:
    # The IRQ only sets a flag; take() debounces by time and returns True once
    # per press. Poll take() every few tens of ms (a press lasts >= 80 ms).
    def __init__(self, switch, debounce_ms, ticks_ms, ticks_diff):
        self._s = switch
        self._db = debounce_ms
        self._ticks = ticks_ms
        self._diff = ticks_diff
        self._last = None
        self.flag = False
        trig = EDGE_FALLING if switch._act == 0 else EDGE_RISING
        switch.pin.irq(self._irq, trig)

    def _irq(self, pin):
        self.flag = True

    def take(self):
        if not self.flag:
            return False
        self.flag = False
        if not self._s.active():  # release bounce or a glitch
            return False
        now = self._ticks()
        if self._last is not None and self._diff(now, self._last) < self._db:
            return False
        self._last = now
        return True


class Indicator:
    # buzzer or LED: signal(SIG_*) starts a pattern, poll() plays it on; out is an
    # output pin, or with pwm a passive piezo on PWM (on: 50 % duty)
    def __init__(self, out, active, ticks_ms, ticks_diff, pwm=False):
        self._out = out
        self._on = active
        self._pwm = pwm
        self._ticks = ticks_ms
        self._diff = ticks_diff
        self._pat = b""
        self._i = 0
        self._t = 0
        self.lit = False
        self._set(False)

    def _set(self, on):
        self.lit = on
        if self._pwm:
            self._out.duty_u16(_PWM_ON if on else 0)
        else:
            self._out.value(self._on if on else 1 - self._on)

    def signal(self, code):
        self._pat = _PATTERNS[code]
        self._i = 0
        self._t = self._ticks()
        self._set(code == SIG_ON or len(self._pat) > 0)

    def poll(self):
        # advance the pattern; True while it is still playing
        pat = self._pat
        if self._i >= len(pat):
            return False
        now = self._ticks()
        if self._diff(now, self._t) >= pat[self._i] * _TICK_UNIT_MS:
            self._i += 1
            self._t = now
            self._set(self._i < len(pat) and not self._i & 1)
        return self._i < len(pat)


class Battery:
    # battery mV through the divider, with the board's ADC calibration
    # (pin_mv = adc_mv * gain + offset_mv); integer maths, no floats per read
    def __init__(self, adc, adc_cfg):
        self._adc = adc
        self._uv = hasattr(adc, "read_uv")
        cal = adc_cfg["calibration"]
        self._div = int(adc_cfg["divider"] * _RATIO_SCALE + 0.5)
        self._gain = int(cal["gain"] * _GAIN_SCALE + 0.5)
        self._off = int(cal["offset_mv"])
        self._fs = int(adc_cfg.get("full_scale_mv", 3100))
        self._n = int(adc_cfg.get("samples", 4))

    def read_mv(self):
        total = 0
        for _ in range(self._n):
            if self._uv:
                total += self._adc.read_uv() // 1000  # uV -> mV
            else:
                total += self._adc.read_u16() * self._fs // _U16_FULL
        mv = (total // self._n) * self._gain // _GAIN_SCALE + self._off
        return mv * self._div // _RATIO_SCALE


class Watchdog:
    # started once by the firmware when it is ready; feed() before that is a no-op
    def __init__(self, hal, timeout_ms):
        self._hal = hal
        self.timeout_ms = timeout_ms
        self._w = None

    def start(self):
        if self._w is None:
            self._w = self._hal.wdt(self.timeout_ms)

    def started(self):
        return self._w is not None

    def feed(self):
        if self._w is not None:
            self._w.feed()


class Hardware:
    # one lock's hardware, built by wire(); attributes are the parts above
    def __init__(self, board, hal):
        pins = board["pins"]
        for role in PINS:
            if pins.get(role) is None:
                raise ValueError("board lacks pin " + role)
        self.board = board
        self.name = board["name"]
        self.power_profile = board["power_profile"]
        self.motor_timeout_ms = board["motor"]["timeout_ms"]
        self._hal = hal
        self.ticks_ms = hal.ticks_ms
        self.ticks_diff = hal.ticks_diff
        outs = board["outputs"]
        sw = {}
        for role in INPUTS:
            sw[role] = Switch(hal.input(pins[role], pull_of(board, role)), board["inputs"][role]["active"])
        en = None
        en_on = 1
        if pins.get("motor_sleep") is not None:
            en_on = outs["motor_sleep"]["active"]
            en = hal.output(pins["motor_sleep"], 1 - en_on)
        self.motor = Motor(hal.output(pins["motor_a"]), hal.output(pins["motor_b"]), en, en_on,
                           board["motor"].get("reverse", False))
        self.bolt = Bolt(sw["bolt_locked"], sw["bolt_unlocked"])
        self.door = sw["door"]  # is_closed()
        self.button = Button(sw["button"], board.get("debounce_ms", 50), hal.ticks_ms, hal.ticks_diff)
        self.led = Indicator(hal.output(pins["led"], 1 - outs["led"]["active"]), outs["led"]["active"],
                             hal.ticks_ms, hal.ticks_diff)
        bz = outs["buzzer"]
        pwm = bool(bz.get("pwm_hz"))
        if pwm:
            out = hal.pwm(pins["buzzer"], bz["pwm_hz"], 0)
            bz_on = 1
        else:
            bz_on = bz["active"]
            out = hal.output(pins["buzzer"], 1 - bz_on)
        self.buzzer = Indicator(out, bz_on, hal.ticks_ms, hal.ticks_diff, pwm)
        adc = board["adc"]
        self.battery = Battery(hal.adc(pins["battery_adc"], adc["atten"]), adc)
        self.wdt = Watchdog(hal, board.get("watchdog_ms", 8000))
        self.clock = hal.rtc()
        # the outside wake source (board "wake_outside"): a touch pad, or a contact
        # read at boot to tell it from the button (the C3 only reports "a GPIO")
        self.outside = None
        wo = board.get("wake_outside")
        if wo:
            n = pins[wo["pin"]]
            if wo["kind"] == "touch":
                self.outside = hal.touch(n, wo["threshold"])
            elif wo["kind"] == "gpio":
                self.outside = Switch(hal.input(n, pull_of(board, wo["pin"])), wo["level"])
            else:
                raise ValueError("bad wake_outside kind")
        self._woke = self._wake_source(sw["button"])

    def _wake_source(self, button):
        if self._hal.reset_cause() != RESET_DEEPSLEEP:
            return WOKE_NONE
        r = self._hal.wake_reason()
        if r == WAKE_TOUCH or r == WAKE_EXT1:
            return WOKE_OUTSIDE
        if r == WAKE_EXT0:
            return WOKE_INSIDE
        if r == WAKE_GPIO:
            # both wake pins share the C3's GPIO wake: the button held is the button
            if self.outside is None or button.active():
                return WOKE_INSIDE
            return WOKE_OUTSIDE
        return WOKE_NONE

    def wake_source(self):
        # WOKE_*: what booted the unit (read once, when it was wired)
        return self._woke

    def partition(self):
        # the board's flash data partition (boards/README.md "storage", docs/storage.md)
        st = self.board["storage"]
        return self._hal.partition(st["partition"], st["blocks"])

    def reset_cause(self):
        return self._hal.reset_cause()

    def sleep(self, ms=0, outside=True):
        # deep sleep until the board's wake pin, the outside source (unless
        # outside is False) or ms; never returns
        self.motor.drive(0)
        b = self.board
        wo = b.get("wake_outside") if outside else None
        out = None
        if wo:
            n = b["pins"][wo["pin"]]
            if wo["kind"] == "touch":
                out = ("touch", n, wo["threshold"])
            else:
                out = ("gpio", n, wo["level"], pull_of(b, wo["pin"]))
        wake = b.get("wake")
        if wake:
            role = wake["pin"]
            self._hal.deepsleep(ms, b["pins"][role], wake["level"], pull_of(b, role), out)
        else:
            self._hal.deepsleep(ms, None, 0, PULL_NONE, out)

    def reset(self):
        self.motor.drive(0)
        self._hal.reset()

    def production(self):
        # a provisioned unit: no REPL from here on (boot.py does the same at boot)
        self._hal.console_locked()


def wire(board, hal):
    return Hardware(board, hal)
