# The simulator's pin, PWM, ADC, watchdog and RTC objects (lockhal_sim): each
# is bound to one SimWorld and mirrors a class of lockhal_esp32 method for
# method. Misuse raises ValueError; physics and pin rules live in the world.
from lockhal import PULL_NONE, EDGE_FALLING, EDGE_RISING, RESET_SOFT, pull_of

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

ATTENS = ("0db", "2.5db", "6db", "11db")
_TICKS_MASK = const(0x3FFFFFFF)
_TICKS_HALF = const(0x20000000)


class SimHalted(Exception):
    # raised by deepsleep() and reset(): the simulated CPU stopped; rebuild the
    # firmware on the same world (wire() again) once world.advance() wakes it
    pass


class Output:
    def __init__(self, world, n, value=0):
        self._v = 0
        world._claim(n, self, "out")
        self.value(value)

    def value(self, v=None):
        self._w._live(self)
        if v is None:
            raise ValueError("GPIO%d is an output: reading it back is not supported" % self._n)
        v = 1 if v else 0
        self._w._drive(self._n, v)
        self._v = v

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)


class Input:
    def __init__(self, world, n, pull=PULL_NONE):
        self._h = None
        self._trig = 0
        role = world._claim(n, self, "in")
        if pull != pull_of(world.board, role):
            del world.pins[n]
            raise ValueError("GPIO%d (%s): pull does not match the board" % (n, role))
        if pull != PULL_NONE and n in world.chip[2]:
            del world.pins[n]
            raise ValueError("GPIO%d has no internal pull resistors" % n)
        self._last = world._level(n)

    def value(self, v=None):
        self._w._live(self)
        if v is not None:
            raise ValueError("GPIO%d is an input: it cannot be driven" % self._n)
        return self._w._level(self._n)

    def irq(self, handler=None, trigger=EDGE_FALLING):
        self._w._live(self)
        if trigger not in (EDGE_FALLING, EDGE_RISING, EDGE_FALLING | EDGE_RISING):
            raise ValueError("bad trigger")
        self._h = handler
        self._trig = trigger
        self._last = self._w._level(self._n)


class Pwm:
    def __init__(self, world, n, freq, duty_u16=0):
        self._d = 0
        world._claim(n, self, "out")
        self.freq(freq)
        self.duty_u16(duty_u16)

    def freq(self, f=None):
        self._w._live(self)
        if f is None:
            return self._f
        if not 1 <= f <= 40000000:
            raise ValueError("PWM frequency %s out of range" % f)
        self._f = f

    def duty_u16(self, d=None):
        self._w._live(self)
        if d is None:
            return self._d
        if not 0 <= d <= 65535:
            raise ValueError("PWM duty %s out of range" % d)
        self._d = d

    def deinit(self):
        self._w._live(self)
        del self._w.pins[self._n]
        self._gen = -1


class Adc:
    def __init__(self, world, n, atten):
        if atten not in ATTENS:
            raise ValueError("bad attenuation %s" % atten)
        self._a = ATTENS.index(atten)
        world._claim(n, self, "adc")

    def read_uv(self):
        self._w._live(self)
        return self._w._adc_mv(self._a) * 1000

    def read_u16(self):
        self._w._live(self)
        fs = self._w.board["adc"].get("full_scale_mv", 3100)
        return min(65535, (self._w._adc_mv(self._a) * 65535 + fs // 2) // fs)


class AdcU16:
    # an ADC without read_uv (ports before it existed): exercises the fallback
    def __init__(self, adc):
        self.read_u16 = adc.read_u16


class Touch:
    # a capacitive pad: read() is high untouched and falls below the threshold
    # while a finger is on it (as machine.TouchPad on an ESP32)
    def __init__(self, world, n, threshold):
        if not 0 < threshold < 65536:
            raise ValueError("touch threshold %s out of range" % threshold)
        self._th = threshold
        world._claim(n, self, "touch")

    def read(self):
        self._w._live(self)
        return self._th // 3 if self._w._finger else self._th * 2


class Wdt:
    def __init__(self, world, timeout_ms):
        if not 1000 <= timeout_ms <= 3600000:
            raise ValueError("watchdog timeout %s ms out of range" % timeout_ms)
        self._w = world
        self._n = "wdt"
        self._gen = world.gen
        world._wdt = timeout_ms
        world._fed = world.ms

    def feed(self):
        self._w._live(self)
        self._w._fed = self._w.ms


class Rtc:
    def __init__(self, world):
        self._w = world
        self._n = "rtc"
        self._gen = world.gen

    def time(self):
        self._w._live(self)
        return self._w.time()

    def set_time(self, t):
        self._w._live(self)
        self._w.set_time(t)

    def memory(self, data=None):
        # RTC slow memory (machine.RTC().memory()): at most 2048 bytes
        self._w._live(self)
        if data is None:
            return self._w.rtc_mem
        if len(data) > 2048:
            raise ValueError("RTC memory holds 2048 bytes")
        self._w.rtc_mem = bytes(data)


class SimHal:
    # the primitive constructors of lockhal_esp32, on a SimWorld
    def __init__(self, world, adc_uv=True):
        self.world = world
        self._uv = adc_uv

    def output(self, n, value=0):
        return Output(self.world, n, value)

    def input(self, n, pull=PULL_NONE):
        return Input(self.world, n, pull)

    def pwm(self, n, freq, duty_u16=0):
        return Pwm(self.world, n, freq, duty_u16)

    def adc(self, n, atten):
        a = Adc(self.world, n, atten)
        return a if self._uv else AdcU16(a)

    def wdt(self, timeout_ms):
        return Wdt(self.world, timeout_ms)

    def touch(self, n, threshold):
        return Touch(self.world, n, threshold)

    def wake_reason(self):
        return self.world.wake_reason

    def rtc(self):
        return Rtc(self.world)

    def partition(self, label, blocks):
        # the board's data partition: a NOR flash twin (lockflash_sim) that belongs
        # to the world, so it outlives reboots; world.flash_path persists it to a
        # file. Each call is one boot's Port on that chip.
        from lockflash_sim import SimFlash, Port
        if not label:
            raise ValueError("partition label")
        w = self.world
        fl = getattr(w, "flash", None)
        if fl is None:
            fl = SimFlash(blocks, getattr(w, "flash_path", None))
            w.flash = fl
        elif fl.blocks < blocks:
            raise OSError(28)
        return Port(fl)

    def reset_cause(self):
        return self.world.reset_cause

    def ticks_ms(self):
        return self.world.ticks()

    def ticks_diff(self, a, b):
        return ((a - b + _TICKS_HALF) & _TICKS_MASK) - _TICKS_HALF

    def deepsleep(self, ms=0, wake=None, level=0, pull=PULL_NONE, outside=None):
        self.world.deep_sleep(ms, wake, level, pull, outside)
        raise SimHalted("deep sleep")

    def reset(self):
        self.world._reset(RESET_SOFT)
        raise SimHalted("reset")

    def console_locked(self):
        # production mode (the device switches Ctrl-C off); the twin records it
        self.world.console_locked = True
