"""Board definitions (boards/*.json) against a host-side table of each chip's
GPIOs, written from the Espressif datasheets independently of the simulator's
own table (firmware/lib/lockhal_sim.py), plus the schema README's promises."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import pytest

import mpyhost

ROOT = Path(__file__).resolve().parent.parent
BOARDS = ROOT / "boards"
BOARD_FILES = sorted(BOARDS.glob("*.json"))


def _r(a, b):
    return set(range(a, b + 1))


# Per chip: GPIOs that exist, forbidden ones (flash, UART0 = the maintenance
# cable), input-only pins without pulls, ADC1 channels, strapping and other
# pins that deserve a warning, deep-sleep wake-capable pins, and the ADC's
# linear range (mV) per attenuation.
CHIPS = {
    "esp32": {
        "gpio": _r(0, 19) | _r(21, 23) | _r(25, 27) | _r(32, 39),
        "forbidden": _r(6, 11) | {1, 3},
        "input_only": _r(34, 39),
        "adc1": _r(32, 39),
        "warn": {0, 2, 5, 12, 15, 16, 17},
        "wake": {0, 2, 4} | _r(12, 15) | _r(25, 27) | _r(32, 39),
        "touch": {0, 2, 4, 12, 13, 14, 15, 27, 32, 33},
        "range": {"0db": (100, 950), "2.5db": (100, 1250), "6db": (150, 1750), "11db": (150, 2450)},
    },
    "esp32c3": {
        "gpio": _r(0, 21),
        "forbidden": _r(11, 17) | {20, 21},
        "input_only": set(),
        "adc1": _r(0, 4),
        "warn": {2, 8, 9, 18, 19},
        "wake": _r(0, 5),
        "touch": set(),  # no touch peripheral: an outside contact instead
        "range": {"0db": (0, 750), "2.5db": (0, 1050), "6db": (0, 1300), "11db": (0, 2500)},
    },
}
# volts per cell: fresh (open circuit) and exhausted
CHEMISTRY = {"alkaline-4aa": (1.65, 0.9), "lithium-4aa": (1.83, 0.9)}

INPUTS = ("bolt_locked", "bolt_unlocked", "door", "button")
OUTPUTS = ("motor_a", "motor_b", "motor_sleep", "buzzer", "led")
ROLES = INPUTS + OUTPUTS + ("battery_adc", "outside")
TOP = {"name", "chip", "description", "pins", "inputs", "outputs", "motor", "adc", "battery",
       "power_profile", "wake", "watchdog_ms", "debounce_ms", "storage", "notes"}


class BoardWarning(UserWarning):
    pass


def check_board(b: dict) -> list[str]:
    """Errors in a board definition (empty when valid); warns about strapping pins."""
    errs = []
    missing = TOP - set(b)
    if missing:
        return [f"missing fields {sorted(missing)}"]
    chip = CHIPS.get(b["chip"])
    if chip is None:
        return [f"unknown chip {b['chip']}"]
    pins = b["pins"]
    used = {}
    for role in ROLES:
        n = pins.get(role)
        if n is None:
            if role not in ("motor_sleep", "outside"):
                errs.append(f"{role}: no pin")
            continue
        if n in used:
            errs.append(f"GPIO{n} used by {used[n]} and {role}")
        used[n] = role
        if n not in chip["gpio"]:
            errs.append(f"{role}: GPIO{n} does not exist on {b['chip']}")
        elif n in chip["forbidden"]:
            errs.append(f"{role}: GPIO{n} is a flash/UART0 pin")
        elif n in chip["warn"] and n not in b.get("pins_accepted", ()):
            warnings.warn(f"{b['name']}: {role} on strapping/USB pin GPIO{n}", BoardWarning)
        if role in OUTPUTS and n in chip["input_only"]:
            errs.append(f"{role}: GPIO{n} is input-only")
    for n in b.get("pins_accepted", ()):
        if n not in chip["warn"] or n not in used or not any(f"GPIO{n}" in t for t in b["notes"]):
            errs.append(f"pins_accepted: GPIO{n} is not a used, warned and explained pin")
    if set(pins) - set(ROLES):
        errs.append(f"unknown pin roles {sorted(set(pins) - set(ROLES))}")
    for role in INPUTS:
        spec = b["inputs"].get(role, {})
        if spec.get("active") not in (0, 1) or spec.get("pull") not in ("up", "down", "external"):
            errs.append(f"{role}: bad input spec {spec}")
        elif spec["pull"] != "external" and pins.get(role) in chip["input_only"]:
            errs.append(f"{role}: GPIO{pins[role]} has no internal pull")
        elif spec["pull"] == "up" and spec["active"] != 0 or spec["pull"] == "down" and spec["active"] != 1:
            errs.append(f"{role}: a contact pulled {spec['pull']} cannot be active at {spec['active']}")
    for role in ("led", "buzzer") + (("motor_sleep",) if pins.get("motor_sleep") is not None else ()):
        if b["outputs"].get(role, {}).get("active") not in (0, 1):
            errs.append(f"{role}: no active level")
    if pins.get("battery_adc") not in chip["adc1"]:
        errs.append(f"battery_adc: GPIO{pins.get('battery_adc')} is not ADC1")
    adc = b["adc"]
    rng = chip["range"].get(adc["atten"])
    chem = CHEMISTRY.get(b["battery"]["chemistry"])
    if rng is None or chem is None:
        errs.append("bad atten or chemistry")
    else:
        cells = b["battery"]["cells"]
        hi = chem[0] * cells * 1000 / adc["divider"]
        lo = chem[1] * cells * 1000 / adc["divider"]
        if hi > rng[1] or lo < rng[0]:
            errs.append(f"battery {lo:.0f}..{hi:.0f} mV at the pin outside {rng}")
    cal = adc["calibration"]
    if not (0.8 <= cal["gain"] <= 1.2 and abs(cal["offset_mv"]) <= 200):
        errs.append("implausible ADC calibration")
    if b["power_profile"] not in ("always_listening", "deep_sleep"):
        errs.append("bad power_profile")
    wake = b["wake"]
    if wake["pin"] not in INPUTS:
        errs.append("wake pin must be an input role")
    elif pins[wake["pin"]] not in chip["wake"]:
        errs.append(f"wake: GPIO{pins[wake['pin']]} cannot wake {b['chip']} from deep sleep")
    elif wake["level"] != b["inputs"][wake["pin"]]["active"]:
        errs.append("wake level is not the pin's active level")
    errs.extend(check_outside(b, chip))
    st = b["storage"]
    # lockstore: 16 blocks of littlefs, then a ring of 112-record blocks with one spare
    if st["block_size"] != 4096 or not st["partition"] or (st["blocks"] - 16 - 1) * 112 < 10000:
        errs.append("storage: 4096-byte blocks, a partition label and >= 107 blocks (10,000 records)")
    if b["watchdog_ms"] < 1000 or not 0 < b["motor"]["timeout_ms"] <= 10000:
        errs.append("watchdog/motor timeout out of range")
    return errs


def check_outside(b: dict, chip: dict) -> list[str]:
    """The optional outside wake source: a touch pad on a touch channel, or a wake-capable contact."""
    wo = b.get("wake_outside")
    pins = b["pins"]
    if wo is None:
        return ["an outside pin without wake_outside"] if "outside" in pins else []
    if wo.get("pin") != "outside" or pins.get("outside") is None:
        return ["wake_outside: pin must be the outside role, wired in pins"]
    n = pins["outside"]
    if wo.get("kind") == "touch":
        if n not in chip["touch"]:
            return [f"wake_outside: GPIO{n} has no touch channel on {b['chip']}"]
        if not isinstance(wo.get("threshold"), int) or not 0 < wo["threshold"] < 65536:
            return ["wake_outside: a touch pad needs a threshold"]
        return []
    if wo.get("kind") == "gpio":
        spec = b["inputs"].get("outside")
        if spec is None:
            return ["wake_outside: a contact needs an inputs entry"]
        if n not in chip["wake"]:
            return [f"wake_outside: GPIO{n} cannot wake {b['chip']} from deep sleep"]
        if wo.get("level") != spec["active"]:
            return ["wake_outside: level is not the contact's active level"]
        if b["chip"] == "esp32c3" and wo["level"] != b["wake"]["level"]:
            return ["wake_outside: the C3 wakes on one level for all its wake pins"]
        return []
    return [f"wake_outside: bad kind {wo.get('kind')}"]


@pytest.fixture(params=BOARD_FILES, ids=lambda p: p.stem)
def board(request):
    return json.loads(request.param.read_text())


def test_the_three_boards_exist():
    assert {"esp32-devkitc", "esp32-c3-devkitm", "sim"} <= {p.stem for p in BOARD_FILES}


def test_name_matches_file():
    for p in BOARD_FILES:
        assert json.loads(p.read_text())["name"] == p.stem


def test_board_is_valid(board):
    with warnings.catch_warnings():
        warnings.simplefilter("error", BoardWarning)  # our boards avoid strapping pins altogether
        assert check_board(board) == []


def test_chips_covered():
    assert {json.loads(p.read_text())["chip"] for p in BOARD_FILES} == set(CHIPS)


def _bad(base, **pins):
    b = json.loads(json.dumps(base))
    b["pins"].update(pins)
    return b


@pytest.fixture
def devkitc():
    return json.loads((BOARDS / "esp32-devkitc.json").read_text())


@pytest.fixture
def c3():
    return json.loads((BOARDS / "esp32-c3-devkitm.json").read_text())


@pytest.mark.parametrize("pins, needle", [
    ({"led": 6}, "flash"),
    ({"led": 1}, "flash/UART0"),
    ({"led": 20}, "does not exist"),
    ({"led": 35}, "input-only"),
    ({"battery_adc": 26}, "not ADC1"),        # ADC2: unusable with the radio on
    ({"led": 26}, "used by"),
    ({"button": 36}, "no internal pull"),
    ({"button": 23, "buzzer": 4}, "cannot wake"),
])
def test_checker_catches_esp32_mistakes(devkitc, pins, needle):
    assert any(needle in e for e in check_board(_bad(devkitc, **pins)))


@pytest.mark.parametrize("pins, needle", [
    ({"led": 12}, "flash"),
    ({"led": 21}, "flash/UART0"),
    ({"led": 22}, "does not exist"),
    ({"battery_adc": 5}, "not ADC1"),
    ({"button": 10, "motor_sleep": 5}, "cannot wake"),
])
def test_checker_catches_c3_mistakes(c3, pins, needle):
    assert any(needle in e for e in check_board(_bad(c3, **pins)))


def test_checker_warns_on_strapping_pins(devkitc):
    with pytest.warns(BoardWarning, match="GPIO12"):
        check_board(_bad(devkitc, led=12))


def test_checker_catches_divider_too_small(devkitc):
    devkitc["adc"]["divider"] = 2.0  # 6.6 V -> 3.3 V at the pin: beyond 11 dB's linear range
    assert any("outside" in e for e in check_board(devkitc))


def test_readme_documents_every_field():
    text = (BOARDS / "README.md").read_text()
    first = text.splitlines()[0]
    assert first and not first.startswith("#")  # opens with one line of purpose
    for p in BOARD_FILES:
        b = json.loads(p.read_text())
        for key in b:
            assert f"`{key}`" in text, key
        for role in b["pins"]:
            assert f"`{role}`" in text, role
        assert f"`{p.name}`" in text


@pytest.mark.mpy
def test_readme_snippet_runs():
    text = (BOARDS / "README.md").read_text()
    code = re.search(r'micropython -c "\n(.*?)\n"', text, re.S).group(1)
    res = mpyhost.run(code=code, cwd=ROOT)
    assert res.ok, res.stderr
    assert res.stdout.strip() == "sim bolt 2 battery 6000 mV"


@pytest.mark.mpy
@pytest.mark.parametrize("chip", sorted(CHIPS))
def test_simulator_chip_rules_agree_with_this_table(chip):
    """Two tables written apart (this one and lockhal_sim.chip_info) must agree."""
    with mpyhost.Worker(["haltest"], paths=[Path(__file__).resolve().parent / "mpy"]) as w:
        sim = w.call("haltest.chip_table", chip)
    c = CHIPS[chip]
    for key in ("gpio", "forbidden", "input_only", "adc1", "wake", "touch"):
        assert set(sim[key]) == c[key], key
    assert [tuple(r) for r in sim["range"]] == [c["range"][a] for a in ("0db", "2.5db", "6db", "11db")]


@pytest.mark.parametrize("chip_board, change, needle", [
    ("devkitc", {"pins": {"outside": 34}}, "no touch channel"),     # ADC1 only, no touch
    ("devkitc", {"wake_outside": {"pin": "outside", "kind": "touch"}}, "threshold"),
    ("devkitc", {"wake_outside": {"pin": "outside", "kind": "slide"}}, "bad kind"),
    ("c3", {"wake_outside": {"pin": "outside", "kind": "touch", "threshold": 300}}, "no touch channel"),
    ("c3", {"pins": {"outside": 9, "bolt_unlocked": 1}}, "cannot wake"),
    ("c3", {"wake_outside": {"pin": "outside", "kind": "gpio", "level": 1}}, "active level"),
    ("c3", {"wake_outside": {"pin": "button", "kind": "gpio", "level": 0}}, "outside role"),
])
def test_checker_catches_outside_wake_mistakes(devkitc, c3, chip_board, change, needle):
    b = json.loads(json.dumps(devkitc if chip_board == "devkitc" else c3))
    b["pins"].update(change.get("pins", {}))
    if "wake_outside" in change:
        b["wake_outside"] = change["wake_outside"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoardWarning)
        assert any(needle in e for e in check_board(b))


def test_every_board_has_an_outside_wake_source():
    for p in BOARD_FILES:
        b = json.loads(p.read_text())
        assert b["wake_outside"]["pin"] == "outside", p.name
        assert b["wake_outside"]["kind"] == ("gpio" if b["chip"] == "esp32c3" else "touch"), p.name
