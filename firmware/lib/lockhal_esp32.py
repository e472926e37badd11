# Device HAL for MicroPython on ESP32 and ESP32-C3: thin wrappers over machine
# and esp32 with the interface documented in lockhal.py, method for method the
# same as the simulator's (lockhal_sim). Pass the module itself as the hal:
#   hw = lockhal.wire(lockhal.load_board("esp32-devkitc"), lockhal_esp32)
# machine and esp32 are imported inside the functions, so this module imports
# anywhere (tests compare its API with the simulator's on a desktop).
import time
from lockhal import (PULL_UP, PULL_DOWN, EDGE_FALLING, EDGE_RISING, RESET_UNKNOWN, RESET_POWER_ON,
                     RESET_HARD, RESET_WDT, RESET_DEEPSLEEP, RESET_SOFT, WAKE_NONE, WAKE_EXT0, WAKE_EXT1,
                     WAKE_TIMER, WAKE_TOUCH, WAKE_GPIO)

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

_EPOCH_2000 = const(946684800)
_ATTENS = ("0db", "2.5db", "6db", "11db")
_ATTEN_NAMES = ("ATTN_0DB", "ATTN_2_5DB", "ATTN_6DB", "ATTN_11DB")


def _pull(Pin, pull):
    if pull == PULL_UP:
        return Pin.PULL_UP
    if pull == PULL_DOWN:
        return Pin.PULL_DOWN
    return None


class Output:
    def __init__(self, n, value=0):
        from machine import Pin
        self._p = Pin(n, Pin.OUT, value=value)

    def value(self, v=None):
        if v is None:
            return self._p.value()
        self._p.value(v)

    def on(self):
        self._p.value(1)

    def off(self):
        self._p.value(0)


class Input:
    def __init__(self, n, pull=0):
        from machine import Pin
        self._p = Pin(n, Pin.IN, _pull(Pin, pull))

    def value(self, v=None):
        if v is not None:
            raise ValueError("input pin")
        return self._p.value()

    def irq(self, handler=None, trigger=EDGE_FALLING):
        # handler(pin) runs as a scheduled (soft) IRQ; it must only set a flag
        from machine import Pin
        t = 0
        if trigger & EDGE_FALLING:
            t |= Pin.IRQ_FALLING
        if trigger & EDGE_RISING:
            t |= Pin.IRQ_RISING
        self._p.irq(handler=handler, trigger=t)


class Pwm:
    def __init__(self, n, freq, duty_u16=0):
        from machine import Pin, PWM
        self._p = PWM(Pin(n), freq=freq, duty_u16=duty_u16)

    def freq(self, f=None):
        if f is None:
            return self._p.freq()
        self._p.freq(f)

    def duty_u16(self, d=None):
        if d is None:
            return self._p.duty_u16()
        self._p.duty_u16(d)

    def deinit(self):
        self._p.deinit()


class Adc:
    def __init__(self, n, atten):
        from machine import Pin, ADC
        name = _ATTEN_NAMES[_ATTENS.index(atten)]
        # IDF 5 renamed 11 dB to 12 dB; either name is the top range
        a = getattr(ADC, name, None)
        if a is None:
            a = getattr(ADC, "ATTN_12DB")
        self._a = ADC(Pin(n), atten=a)

    def read_uv(self):
        # calibrated by the chip's eFuse values, millivolt resolution
        return self._a.read_uv()

    def read_u16(self):
        return self._a.read_u16()


class Touch:
    # machine.TouchPad (ESP32 only: the C3 has no touch peripheral); config()
    # sets the threshold below which a reading counts as a touch, and wakes
    # the chip once esp32.wake_on_touch(True) is set
    def __init__(self, n, threshold):
        from machine import Pin, TouchPad
        self._t = TouchPad(Pin(n))
        self._t.config(threshold)

    def read(self):
        return self._t.read()


class Wdt:
    def __init__(self, timeout_ms):
        from machine import WDT
        self._w = WDT(timeout=timeout_ms)

    def feed(self):
        self._w.feed()


class Rtc:
    # unix seconds whatever the port's epoch (2000 on ESP32 builds so far)
    def __init__(self):
        self._off = _EPOCH_2000 if time.gmtime(0)[0] == 2000 else 0

    def time(self):
        return time.time() + self._off

    def set_time(self, t):
        from machine import RTC
        tm = time.gmtime(int(t) - self._off)
        RTC().datetime((tm[0], tm[1], tm[2], tm[6], tm[3], tm[4], tm[5], 0))

    def memory(self, data=None):
        # RTC slow memory: survives deep sleep, lost with the power
        from machine import RTC
        if data is None:
            return RTC().memory()
        RTC().memory(data)


def output(n, value=0):
    return Output(n, value)


def input(n, pull=0):  # noqa: A001 (the interface's name)
    return Input(n, pull)


def pwm(n, freq, duty_u16=0):
    return Pwm(n, freq, duty_u16)


def adc(n, atten):
    return Adc(n, atten)


def touch(n, threshold):
    return Touch(n, threshold)


def wdt(timeout_ms):
    return Wdt(timeout_ms)


def rtc():
    return Rtc()


def partition(label, blocks):
    # the board's flash data partition: esp32.Partition speaks the block-device
    # protocol (readblocks/writeblocks/ioctl) lockstore uses (docs/storage.md)
    import esp32
    found = esp32.Partition.find(esp32.Partition.TYPE_DATA, label=label)
    if not found:
        raise OSError(19)  # ENODEV: the partition table lacks the label
    p = found[0]
    if p.ioctl(4, 0) < blocks:
        raise OSError(28)  # smaller than the board says
    return p


def reset_cause():
    import machine
    c = machine.reset_cause()
    if c == machine.PWRON_RESET:
        return RESET_POWER_ON
    if c == machine.HARD_RESET:
        return RESET_HARD
    if c == machine.WDT_RESET:
        return RESET_WDT
    if c == machine.DEEPSLEEP_RESET:
        return RESET_DEEPSLEEP
    if c == machine.SOFT_RESET:
        return RESET_SOFT
    return RESET_UNKNOWN


def ticks_ms():
    return time.ticks_ms()


def ticks_diff(a, b):
    return time.ticks_diff(a, b)


def deepsleep(ms=0, wake=None, level=0, pull=0, outside=None):
    # ESP32: the button on EXT0 (an RTC GPIO), an outside touch pad by
    # esp32.wake_on_touch (its TouchPad configured with the threshold), an
    # outside contact on EXT1; ESP32-C3: one esp32.wake_on_gpio call for the
    # button and the outside contact (GPIO0..5, one level). Never returns.
    import machine
    import esp32
    Pin = machine.Pin
    gpio = []
    if wake is not None:
        p = Pin(wake, Pin.IN, _pull(Pin, pull))
        lv = esp32.WAKEUP_ANY_HIGH if level else esp32.WAKEUP_ALL_LOW
        if hasattr(esp32, "wake_on_ext0"):
            esp32.wake_on_ext0(p, lv)
        elif hasattr(esp32, "wake_on_gpio"):
            gpio.append(p)
        else:
            raise OSError("no GPIO wake-up on this port")
    if outside is not None:
        if outside[0] == "touch":
            if not hasattr(esp32, "wake_on_touch"):
                raise OSError("no touch wake-up on this chip")
            machine.TouchPad(Pin(outside[1])).config(outside[2])
            esp32.wake_on_touch(True)
        else:
            p = Pin(outside[1], Pin.IN, _pull(Pin, outside[3]))
            lv2 = esp32.WAKEUP_ANY_HIGH if outside[2] else esp32.WAKEUP_ALL_LOW
            if hasattr(esp32, "wake_on_ext0"):
                esp32.wake_on_ext1((p,), lv2)
            elif gpio and lv2 != lv:
                raise OSError("both wake pins must wake at one level")
            else:
                gpio.append(p)
                lv = lv2
    if gpio:
        esp32.wake_on_gpio(tuple(gpio), lv)
    if ms:
        machine.deepsleep(ms)
    else:
        machine.deepsleep()


def wake_reason():
    # machine.wake_reason() is ESP-IDF's wake-up cause; the C3's GPIO wake has no
    # name in machine (7, ESP_SLEEP_WAKEUP_GPIO)
    import machine
    r = machine.wake_reason()
    for name, v in (("EXT0_WAKE", WAKE_EXT0), ("EXT1_WAKE", WAKE_EXT1), ("TIMER_WAKE", WAKE_TIMER),
                    ("TOUCHPAD_WAKE", WAKE_TOUCH)):
        if r == getattr(machine, name, -1):
            return v
    return WAKE_GPIO if r == WAKE_GPIO else WAKE_NONE


def reset():
    import machine
    machine.reset()


def console_locked():
    # production mode: Ctrl-C on the USB console no longer interrupts the firmware
    import micropython
    micropython.kbd_intr(-1)
