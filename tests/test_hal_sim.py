"""The HAL (firmware/lib/lockhal.py) wired to the simulator twin
(lockhal_sim.py) under the real MicroPython: every board wires, the motor
drives the bolt to the limit switches, jams, battery readings, the button's
IRQ flag and debounce, watchdog, RTC, deep sleep, and the twin's strictness.
Scenarios live in tests/mpy/haltest.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import mpyhost

pytestmark = pytest.mark.mpy

ROOT = Path(__file__).resolve().parent.parent
BOARDS = str(ROOT / "boards")
MPY_DIR = Path(__file__).resolve().parent / "mpy"
NAMES = sorted(p.stem for p in (ROOT / "boards").glob("*.json"))
ESP32_NAMES = [n for n in NAMES if json.loads((ROOT / "boards" / f"{n}.json").read_text())["chip"] == "esp32"]

POS_UNKNOWN, POS_LOCKED, POS_UNLOCKED = 0, 1, 2
RESET_POWER_ON, RESET_HARD, RESET_WDT, RESET_DEEPSLEEP, RESET_SOFT = 1, 2, 3, 4, 5
WOKE_NONE, WOKE_INSIDE, WOKE_OUTSIDE = 0, 1, 2  # lockhal.WOKE_*
EPOCH_2000 = 946684800
SIG_DENIED = 3


@pytest.fixture(scope="module")
def hal():
    worker = mpyhost.Worker(["haltest"], paths=[MPY_DIR], heapsize="1m")
    try:
        yield lambda fn, *a: worker.call("haltest." + fn, BOARDS, *a)
    finally:
        worker.close()


@pytest.mark.parametrize("name", NAMES)
def test_every_board_wires_with_the_sim(hal, name):
    r = hal("wire_board", name)
    assert r["name"] == name
    assert r["position"] == POS_LOCKED and not r["fault"]  # a new world starts locked,
    assert r["closed"] is True                              # door closed,
    assert r["battery_mv"] == 6000                          # fresh cells,
    assert r["time"] == EPOCH_2000                          # RTC at the ESP32's power-on value
    assert r["reset_cause"] == RESET_POWER_ON
    assert r["motor"] == 0 and not r["led"] and not r["buzzer"]
    assert r["pins"] == 11                                  # every wired pin claimed once (the outside pad too)


@pytest.mark.parametrize("name", NAMES)
def test_motor_drives_bolt_to_limit_switches(hal, name):
    up = hal("travel", name, 1, 0)
    assert up["position"] == POS_UNLOCKED
    assert up["bolt"] >= 98 and up["world_motor"] == 0
    assert 1000 <= up["ms"] <= 1300  # about the travel time (1200 ms)
    # between the switches the position is unknown
    middle = [p for ms, bolt, p in up["trace"] if 10 < bolt < 90]
    assert middle and set(middle) == {POS_UNKNOWN}
    down = hal("travel", name, -1, 100)
    assert down["position"] == POS_LOCKED and down["bolt"] <= 2
    # once stopped the bolt stays put
    assert down["after"] == down["bolt"]


def test_motor_stops_when_the_firmware_stops_it(hal):
    r = hal("travel", "sim", 1, 0)
    assert r["motor_ms"] == r["ms"]


def test_reversed_motor_wiring_is_compensated(hal):
    assert hal("reverse", "sim") == [100, POS_UNLOCKED]


def test_jam_stops_the_bolt(hal):
    r = hal("jam", "sim")
    assert r["at"] == r["stuck"] and 5 < r["stuck"] < 95
    assert r["position"] == POS_UNKNOWN
    assert 5200 <= r["stall_mv"] <= 5400  # stalled motor: 700 mV sag
    assert r["freed"] == POS_UNLOCKED     # moves again once the jam is cleared


def test_limit_switch_fault_both_active(hal):
    r = hal("limit_fault", "sim")
    assert r["both"] == [POS_UNKNOWN, True]
    assert r["cleared"] == [POS_LOCKED, False]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("mv", [4000, 5200, 6000, 6400])
def test_battery_through_divider_and_sag(hal, name, mv):
    r = hal("battery", name, mv)
    assert abs(r["idle"] - mv) <= 5          # calibrated: within 5 mV (ADC resolution x divider)
    assert abs(r["running"] - (mv - 300)) <= 5
    assert r["after"] == r["idle"]


def test_battery_fallback_without_read_uv(hal):
    r = hal("battery", "sim", 6000, False)
    assert abs(r["idle"] - 6000) <= 10 and abs(r["running"] - 5700) <= 10


def test_battery_calibration_matters(hal):
    # a unit whose ADC reads 5 % low with a -20 mV offset: the board's default
    # calibration (gain 1, offset 0) is then off by more than 1 %
    r = hal("battery", "sim", 6000, True, 1.05, -20)
    assert abs(r["idle"] - 6000) > 60


@pytest.mark.parametrize("mv, ok", [(7300, True), (7400, False), (400, False), (3000, True)])
def test_adc_refuses_voltages_outside_the_attenuation_range(hal, mv, ok):
    r = hal("battery_range", "sim", mv)
    assert (r[0] == "ok") == ok, r


def test_button_irq_flag_and_debounce(hal):
    r = hal("button", "sim")
    assert r["idle"] is False
    assert r["flag"] is True          # the IRQ set the flag
    assert r["first"] is True and r["again"] is False   # once per press, bounces swallowed
    assert r["released_flag"] is True and r["after_release"] is False  # release bounce ignored
    assert r["second"] is True and r["third"] is True


def test_button_second_press_inside_debounce_window(hal):
    assert hal("button_within_debounce", "sim") == [True, False, False]


def test_watchdog_resets_when_starved(hal):
    r = hal("watchdog", "sim")
    assert r["before_start"] is None               # not started: no reset
    assert r["fed"] == [None] * 10                 # fed every 5 s: no reset
    assert r["starved"] == RESET_WDT and r["cause"] == RESET_WDT
    assert r["motor_after"] == 0                   # the reset let the outputs go
    assert r["stale"][0] == "ValueError" and "outlived a reset" in r["stale"][1]
    assert r["rewired_cause"] == RESET_WDT
    assert r["time"] == 1700000000 + 79            # the RTC survives a watchdog reset
    assert r["after_rewire"] is None               # the watchdog is off after the reset


def test_rtc_survives_resets_but_not_a_power_cut(hal):
    r = hal("rtc", "sim")
    assert r["boot"] == EPOCH_2000
    assert r["later"] == 1700000005
    assert r["after_hard_reset"] == 1700000005 and r["hard_cause"] == RESET_HARD
    assert r["stale"][0] == "ValueError"
    assert r["after_cut"] == EPOCH_2000 and r["cut_cause"] == RESET_POWER_ON


@pytest.mark.parametrize("name", NAMES)
def test_deep_sleep_and_wake(hal, name):
    r = hal("deep_sleep", name)
    assert r["halt"] == ["SimHalted", "deep sleep"] and r["sleeping"] is True
    assert r["stale"][0] == "ValueError"
    assert r["quiet"] is None and r["slept_ms"] == 60000
    assert r["woke"] == RESET_DEEPSLEEP and r["sleeping_after"] is False
    assert r["cause"] == RESET_DEEPSLEEP
    assert r["timer"][0] == "SimHalted" and r["timer_woke"] == RESET_DEEPSLEEP
    assert r["motor_running"][0] == "ValueError"
    assert r["no_wake"][0] == "ValueError"
    if name in ESP32_NAMES:  # GPIO21 is no RTC GPIO (on the C3 every input pin can wake)
        assert r["bad_wake_pin"][0] == "ValueError"


def test_ticks_wrap_like_a_32_bit_port(hal):
    r = hal("ticks", "sim")
    assert r["t1"] < r["t0"]  # the simulated ticks start 10 s before the 2**30 wrap
    assert r["diff"] == 15000 and r["back"] == -15000


def test_indicator_pattern(hal):
    led, buzzer = hal("indicator", "sim", SIG_DENIED)
    assert led == [True, False, True, False, True, False]  # three blips, then off
    assert buzzer == led


@pytest.mark.parametrize("case", [
    "read_output", "drive_input", "both_high", "unwired_pin", "flash_pin", "uart_pin",
    "claimed_twice", "output_on_switch", "adc_on_switch", "wrong_pull", "bad_atten",
    "adc_over_range", "adc_under_range", "pwm_freq", "pwm_duty", "wdt_short", "bad_trigger",
    "motor_direction", "time_backwards",
])
def test_sim_is_strict(hal, case):
    kind, msg = hal("strict", "sim", case)
    assert kind == "ValueError", (case, msg)


def test_correct_use_is_not_refused(hal):
    assert hal("strict", "sim", "fine") == ["ok", ""]


def _board(name):
    return json.loads((ROOT / "boards" / f"{name}.json").read_text())


@pytest.mark.parametrize("change, needle", [
    (lambda b: b["inputs"]["button"].update(pull="down"), "cannot be active"),
    (lambda b: b["inputs"]["door"].update(pull="external"), "ok"),
    (lambda b: b["pins"].update(led=6, buzzer=13), "not usable"),
    (lambda b: b["pins"].update(battery_adc=26, motor_b=13), "not an ADC1 input"),
    (lambda b: b["pins"].update(led=35), "cannot be driven"),
    (lambda b: (b["pins"].update(button=36), b["inputs"]["button"].update(pull="up")), "no internal pull"),
    (lambda b: b["pins"].update(motor_sleep=None), "ok"),
])
def test_sim_refuses_miswired_boards(change, needle):
    b = _board("sim")
    change(b)
    with mpyhost.Worker(["haltest"], paths=[MPY_DIR], heapsize="256k") as w:
        kind, msg = w.call("haltest.custom", b, "x")
    if needle == "ok":
        assert kind == "ok", msg
    else:
        assert kind == "ValueError" and needle in msg, msg


def test_many_locks_in_one_interpreter(hal):
    # each world is its own lock: no module state shared between them
    r = hal("worlds", "sim", 6)
    assert r == [[100, 2], [0, 1], [0, 1], [100, 2], [0, 1], [0, 1]]


@pytest.mark.parametrize("name", NAMES)
def test_the_outside_wake_source_wakes_and_is_told_from_the_button(hal, name):
    r = hal("outside_wake", name)
    assert r["first"] == WOKE_NONE and r["halt"] == ["SimHalted", "deep sleep"]
    assert r["kind"] == ("gpio" if name == "esp32-c3-devkitm" else "touch")
    assert len(r["armed"]) == 2                           # the button and the outside source
    assert r["touch_woke"] == RESET_DEEPSLEEP and r["after_touch"] == WOKE_OUTSIDE
    assert r["reason"] == (7 if name == "esp32-c3-devkitm" else 5)   # GPIO wake / TOUCHPAD_WAKE
    if r["kind"] == "touch":
        read, threshold = r["pad"]
        assert read < threshold                          # a finger on the pad reads below it
    assert r["muted_touch"] is None                      # not armed: no wake
    assert r["press_woke"] == RESET_DEEPSLEEP and r["after_press"] == WOKE_INSIDE
    assert r["timer_woke"] == RESET_DEEPSLEEP and r["after_timer"] == WOKE_NONE
    assert r["rtc_mem_kept"] and r["rtc_mem_power_cut"] == b""   # RTC memory: kept asleep, lost unpowered
    assert r["power_on"] == WOKE_NONE


def test_the_twin_refuses_touch_wakes_without_a_touch_channel(hal):
    r = hal("touch_refusals")
    assert r["pad_on_34"][0] == "ValueError" and "touch" in r["pad_on_34"][1]
    assert r["arm_on_door"][0] == "ValueError" and "no touch channel" in r["arm_on_door"][1]
    assert r["arm_unwired_touch"][0] == "ValueError"      # GPIO33 has a channel but no pad is wired there
    assert r["bad_threshold"][0] == "ValueError"
    assert r["c3_pad"][0] == "ValueError" and "esp32c3" in r["c3_pad"][1]
    assert r["c3_arm_touch"][0] == "ValueError" and "no touch channel" in r["c3_arm_touch"][1]
    assert r["c3_two_levels"][0] == "ValueError" and "one level" in r["c3_two_levels"][1]
    assert r["no_outside"][0] is None and r["no_outside"][1][0] == "ValueError"  # boards without one still wire
