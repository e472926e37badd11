"""Battery telemetry on the lock: the ADC-to-charge chain and the monitor's thresholds.

Everything on the lock side runs under the real MicroPython (tests/mpy/batttest.py):
cells in the simulated world -> the board's divider and ADC (lockhal.Battery) -> the
monitor (lockbattery) -> mV, percent, level and flags. Expected values are worked out
by hand from the curves and thresholds documented in docs/power.md.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import mpyhost
from lockproto.codes import BatteryReason, Err, Event, Flag, battery_record

pytestmark = pytest.mark.mpy
ROOT = Path(__file__).resolve().parent.parent
BOARDS = str(ROOT / "boards")
UNKNOWN, OK, LOW, CRITICAL, FLOOR = range(5)
# sim / devkitc: 4 x alkaline; low 4 x 1150, critical 4 x 1075, hysteresis 4 x 25,
# brown-out 4000 + reserve 200, floor 4100, default sag 4 x 75
ALK = ("alkaline-4aa", 4, 4000, 4100, 200)
LI = ("lithium-4aa", 4, 3600, 3700, 200)


@pytest.fixture(scope="module")
def w():
    with mpyhost.Worker(["batttest"], paths=[ROOT / "tests" / "mpy"], heapsize="2m") as worker:
        yield worker


# ---------------------------------------------------------------- the conversion chain

@pytest.mark.parametrize("board,mv,pct", [
    # alkaline curve points (cell mV, %): 1500 90, 1400 75, 1300 55, 1200 35, 1150 20
    ("sim", 6000, 90), ("sim", 5600, 75), ("sim", 5200, 55), ("esp32-devkitc", 4800, 35),
    ("esp32-devkitc", 6000, 90), ("esp32-devkitc", 5400, 65),  # 1350: halfway 55..75
    # lithium: 1800 100, 1600 75, 1500 35, 1450 15
    ("esp32-c3-devkitm", 7200, 100), ("esp32-c3-devkitm", 6400, 75), ("esp32-c3-devkitm", 6000, 35),
    ("esp32-c3-devkitm", 5800, 15),
])
def test_known_voltages_give_known_charge(w, board, mv, pct):
    r = w.call("batttest.chain", BOARDS, board, mv)
    assert all(abs(x - mv) <= 6 for x in r["reads"])   # divider x ADC resolution
    assert abs(r["mv"] - mv) <= 6
    assert abs(r["pct"] - pct) <= 1                    # a few mV off a curve point


def test_levels_at_known_voltages(w):
    got = {mv: w.call("batttest.chain", BOARDS, "sim", mv)["level"] for mv in (6000, 4700, 4590, 4500, 4300, 4090)}
    # 4700: above low (4600); 4590: low; 4500: idle - default sag 300 = 4200 = brown-out + reserve
    assert got == {6000: OK, 4700: OK, 4590: LOW, 4500: CRITICAL, 4300: CRITICAL, 4090: FLOOR}


def test_calibration_corrects_a_unit_adc_error(w):
    """A unit whose ADC reads 4 % high with a -30 mV offset, with and without its calibration."""
    cal = w.call("batttest.chain", BOARDS, "sim", 5200, 1.04, -30, True)
    raw = w.call("batttest.chain", BOARDS, "sim", 5200, 1.04, -30, False)
    assert abs(cal["mv"] - 5200) <= 6
    assert abs(raw["mv"] - 5200) > 100 and raw["pct"] != cal["pct"]


def test_without_read_uv_the_u16_fallback_is_close(w):
    r = w.call("batttest.chain", BOARDS, "sim", 6000, None, None, True, False)
    assert abs(r["mv"] - 6000) <= 12


def test_thresholds_come_from_chemistry_and_board(w):
    assert w.call("batttest.thresholds", *ALK) == {"low": 4600, "critical": 4300, "hyst": 100, "guard": 4200,
                                                   "floor": 4100, "sag": 300}
    assert w.call("batttest.thresholds", *LI) == {"low": 5800, "critical": 5400, "hyst": 80, "guard": 3800,
                                                  "floor": 3700, "sag": 100}


def test_curve_is_monotonic_and_bounded(w):
    for chem, lo, hi in (("alkaline-4aa", 800, 1700), ("lithium-4aa", 800, 1900)):
        pcts = [w.call("batttest.percent", chem, mv) for mv in range(lo, hi, 5)]
        assert pcts[0] == 0 and pcts[-1] == 100
        assert all(a <= b for a, b in zip(pcts, pcts[1:]))


# ---------------------------------------------------------------- sag

def test_sag_under_motor_load_can_make_a_battery_critical(w):
    """Idle 4850 mV is above LOW, but a run that sagged to 4150 predicts a brown-out."""
    steps = [[4850, False]] * 4 + [[4400, True], [4150, True], [4300, True], None]
    r = w.call("batttest.feed", *ALK, steps)
    assert r["levels"][3] == OK and r["levels"][-1] == CRITICAL
    assert r["sag"] == 700 and not r["unlock_ok"] and r["journal_ok"]
    assert r["flags"] == Flag.BATTERY_LOW | Flag.BATTERY_CRITICAL
    assert r["events"] == [BatteryReason.BOOT, BatteryReason.CRITICAL]


def test_loaded_samples_do_not_move_the_idle_average(w):
    r = w.call("batttest.feed", *ALK, [[6000, False], [5000, True], [4800, True]])
    assert r["mv"] == 6000 and r["levels"][-1] == OK


def test_record_arg_decodes_on_the_host(w):
    steps = [[5000, False], [4500, True], None]  # sag 500
    r = w.call("batttest.feed", *ALK, steps)
    rec = battery_record(r["mv"], r["arg"])
    assert rec == {"mv": 5000, "pct": 45, "flags": Flag(0), "reason": BatteryReason.DAILY, "sag_mv": 500}
    # 1250 mV a cell: halfway between 1200 (35 %) and 1300 (55 %)


# ---------------------------------------------------------------- hysteresis

def _monotonic(levels):
    seq = [lv for i, lv in enumerate(levels) if lv != UNKNOWN and (i == 0 or lv != levels[i - 1])]
    return all(a < b for a, b in zip(seq, seq[1:])) or all(a > b for a, b in zip(seq, seq[1:]))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(center=st.integers(3900, 6500), noise=st.lists(st.integers(-49, 49), min_size=2, max_size=120))
def test_noise_inside_the_band_never_chatters(w, center, noise):
    """Samples within +-49 mV (< half the 100 mV band) of any voltage: each level is entered at most once."""
    r = w.call("batttest.feed", *ALK, [[center + n, False] for n in noise])
    assert _monotonic(r["levels"])
    assert len(r["events"]) == len(set(r["events"])) <= 4


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(center=st.integers(4300, 7300), noise=st.lists(st.integers(-39, 39), min_size=2, max_size=120))
def test_noise_inside_the_lithium_band_never_chatters(w, center, noise):
    r = w.call("batttest.feed", *LI, [[center + n, False] for n in noise])
    assert _monotonic(r["levels"])


def test_swings_wider_than_the_band_do_toggle(w):
    """The control: 4560/4800 for long stretches crosses LOW both ways, every time."""
    steps = ([[4560, False]] * 40 + [[4800, False]] * 40) * 3
    r = w.call("batttest.feed", *ALK, steps)
    R = BatteryReason
    assert r["events"] == [R.BOOT, R.OK, R.LOW, R.OK, R.LOW, R.OK]  # booted LOW, then every swing


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(noise=st.lists(st.integers(-45, 45), min_size=300, max_size=300))
def test_a_draining_battery_passes_each_level_once_in_order(w, noise):
    steps = [[6400 - 8 * i + noise[i], False] for i in range(300)]  # 6400 -> 4008 mV
    r = w.call("batttest.feed", *ALK, steps)
    assert r["events"] == [BatteryReason.BOOT, BatteryReason.LOW, BatteryReason.CRITICAL, BatteryReason.FLOOR]
    assert not r["journal_ok"] and not r["unlock_ok"]


# ---------------------------------------------------------------- one code table

def _firmware_codes():
    spec = importlib.util.spec_from_file_location("fw_lockcodes", ROOT / "firmware" / "lib" / "lockcodes.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("prefix,enum", [("EV_", Event), ("E_", Err), ("F_", Flag), ("BR_", BatteryReason)])
def test_firmware_and_host_code_tables_agree(prefix, enum):
    fw = _firmware_codes()
    names = {k[len(prefix):]: v for k, v in vars(fw).items() if k.startswith(prefix)}
    host = {m.name: m.value for m in enum}
    for name, value in host.items():
        assert names.get(name) == value, name
    if prefix in ("EV_", "BR_"):
        assert names == host


def test_protocol_doc_lists_the_battery_codes():
    text = (ROOT / "docs" / "protocol.md").read_text()
    assert "`JOURNAL_PAUSED`" in text and "`BATTERY_CRITICAL`" in text
    for r in BatteryReason:
        assert f"`{r.name}`" in text, r.name


# ---------------------------------------------------------------- against a reference model

class RefMonitor:
    """docs/power.md's rules written again, independently, in plain Python."""

    def __init__(self, low, crit, hyst, guard, floor, sag):
        self.low, self.crit, self.h, self.guard, self.floor = low, crit, hyst, guard, floor
        self.sag, self.measured = sag, False
        self.m16 = 0
        self.run_min = None
        self.level = UNKNOWN

    def idle(self, mv):
        self.m16 = mv * 16 if self.m16 == 0 else self.m16 + ((mv * 16 - self.m16) >> 3)
        self._levels()

    def loaded(self, mv):
        self.run_min = mv if self.run_min is None else min(self.run_min, mv)

    def end(self):
        if self.run_min is not None and self.m16:
            s = max(0, self.m16 // 16 - self.run_min)
            self.sag = (self.sag + s) // 2 if self.measured else s
            self.measured = True
            self._levels()
        self.run_min = None

    def _levels(self):
        m, lv, h = self.m16 // 16, self.level, self.h
        p = m - self.sag
        if m <= self.floor or (lv == FLOOR and m < self.floor + h):
            self.level = FLOOR
        elif m <= self.crit or p <= self.guard or (lv >= CRITICAL and (m < self.crit + h or p < self.guard + h)):
            self.level = CRITICAL
        elif m <= self.low or (lv >= LOW and m < self.low + h):
            self.level = LOW
        else:
            self.level = OK


_step = st.one_of(
    st.tuples(st.just("idle"), st.integers(3900, 6600)),
    st.tuples(st.just("loaded"), st.integers(3000, 6600)),
    st.just(("end", 0)),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(_step, min_size=1, max_size=80))
def test_monitor_matches_the_documented_rules(w, steps):
    ref = RefMonitor(4600, 4300, 100, 4200, 4100, 300)
    want = []
    fw_steps = []
    for kind, mv in steps:
        if kind == "idle":
            ref.idle(mv)
            fw_steps.append([mv, False])
        elif kind == "loaded":
            ref.loaded(mv)
            fw_steps.append([mv, True])
        else:
            ref.end()
            fw_steps.append(None)
        want.append(ref.level)
    r = w.call("batttest.feed", *ALK, fw_steps)
    assert r["levels"] == want
    assert r["sag"] == ref.sag and r["mv"] == ref.m16 // 16
    lv = want[-1]
    assert r["unlock_ok"] == (lv < CRITICAL) and r["journal_ok"] == (lv != FLOOR)
    assert r["flags"] == {UNKNOWN: 0, OK: 0, LOW: Flag.BATTERY_LOW}.get(lv, Flag.BATTERY_LOW | Flag.BATTERY_CRITICAL)
