"""Battery-life predictor: a real journal of a simulated day -> life per board and power profile.

The day is lived by the real firmware (``lockapp.DoorUnit`` on the simulator HAL under
MicroPython, ``simulator/mpy/energyday.py``): carers unlock with their phones (lockproto), walk
in, the door relocks, they leave with the inside button. Its journal says what happened and
when; the simulated world says how long the motor ran. The energy model (docs/power.md,
"Energy model") turns that into charge per day for each power profile, with every current
taken from a cited datasheet or published measurement (``FIGURES``; the few timings nobody has
published for MicroPython are marked as assumptions), and divides the usable capacity of the
board's cells by it.

    python -m simulator.energy                      # simulate a day (10 openings), predict every board
    python -m simulator.energy --save day.json      # ... and keep the journal
    locksim-battery-life day.json --board esp32-c3-devkitm

Life is ``capacity x usable / charge per day``: capacity from the cells' datasheet at the
profile's average current, usable = the charge above the firmware's CRITICAL threshold for
this board (the unit refuses unlocks below it), computed with the firmware's own curves.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BOARDS = ROOT / "boards"
DAY_S = 86400
PROG = "locksim-battery-life"

# ---------------------------------------------------------------- cited figures

SOURCES = {
    "esp32-ds": "Espressif, ESP32 Series Datasheet, table 'Power Consumption by Power Modes' "
                "(deep sleep, RTC timer + RTC memory: 10 uA; modem sleep 80 MHz: 20-31 mA)",
    "wroom-ds": "Espressif, ESP-WROOM-32 datasheet, Table 5 'Power Consumption by Power Modes' "
                "(Wi-Fi/BT Tx 0 dBm: 120 mA; Rx and listening: 80-90 mA)",
    "idf-753": "espressif/esp-idf issue #753 'BLE power consumption' (measured, ESP32 at 80 MHz: "
               "BLE on, advertising every 20 ms: 115 mA; every 10 s: 110 mA; BLE off: 30 mA)",
    "mpy-6396": "micropython/micropython issue #6396 (BLE does not work with machine.lightsleep(); "
                "no automatic light sleep with BLE on MicroPython)",
    "lucidar": "lucidar.me, 'Power consumption of ESP32-DevKitC V4' (measured: awake 43 mA, "
               "deep sleep 3.8 mA for the whole dev board)",
    "c3-rob": "robdobson.com, 'Investigating ESP32-C3 power management' (2023, measured: 160 MHz, "
              "radio off, empty loop 26.8 mA average)",
    "c3-devkitm": "forum.esp32.com t=22622 'ESP32-C3 power consumption doesn't match to the datasheet' "
                  "(measured on ESP32-C3-DevKitM-1 in deep sleep: 600 uA; 300 uA with the module isolated)",
    "c3-ds": "Espressif, ESP32-C3 Series Datasheet, low-power modes (deep sleep, RTC timer + RTC memory: 5 uA)",
    "c3-wake": "esp32.com t=46435 'Minimizing energy consumption in advertising BLE' (measured on "
               "ESP32-C3: about 200 ms of high current to re-initialise after each deep-sleep wake; "
               "4 s sleep + 100 ms advertising averaged 2.5 mA)",
    "esp-touch": "Espressif esp-iot-solution, 'Current Consumption Test for ESP32 in Deep sleep' "
                 "(documents/low_power_solution/deep-sleep_current_test_en.md, measured: EXT0 wake 6.4 uA, "
                 "touch pad wake 35.6-37.3 uA, pad 9 = GPIO32: 36.3 uA)",
    "mcp1700": "Microchip MCP1700 LDO datasheet (quiescent current 1.6 uA typ.)",
    "drv8833": "TI DRV8833 datasheet (sleep-mode VM current 1.6 uA typ., 2.5 uA max)",
    "board": "the board file (boards/*.json: divider note, motor run_ma / stall_ma)",
    "e91": "Energizer E91 (AA alkaline) datasheet; the capacities to 0.8 V as read off its constant-"
           "current curves and summarised at kurokatta.org/grumble/2019/01/lithium-aa-batteries: "
           "about 3000 mAh at 25 mA, 2600 mAh at 100 mA, 1600 mAh at 500 mA, 1000 mAh at 1 A",
    "l91": "Energizer L91 (AA lithium/FeS2) datasheet: 3500 mAh rated at 25 mA; about 3000 mAh at 1 A",
    "firmware": "this repository's firmware (locksleep: asleep 3 s after the last change, and 3 s after "
                "the phone hung up or 35 s after its session began if it stays connected)",
    "assumed": "ASSUMPTION (no published MicroPython figure found): to be measured on a unit",
}


@dataclass(frozen=True)
class Figure:
    value: float
    source: str

    def __post_init__(self):
        if self.source not in SOURCES:
            raise ValueError(f"unknown source {self.source}")


#: Currents in mA and times in s, per chip / board, each with its source.
FIGURES = {
    "esp32": {
        "ble_ma": Figure(110.0, "idf-753"),        # BLE stack on, advertising/listening, no sleep (mpy-6396)
        "conn_ma": Figure(120.0, "wroom-ds"),      # a connection: TX/RX at 0 dBm
        "awake_ma": Figure(43.0, "lucidar"),       # CPU on, radio off (boot, motor runs)
        "chip_sleep_ma": Figure(0.010, "esp32-ds"),
        "devkit_sleep_ma": Figure(3.8, "lucidar"),
        "touch_wake_ma": Figure(0.0299, "esp-touch"),  # the outside touch pad armed: 36.3 - 6.4 uA
    },
    "esp32c3": {
        "ble_ma": Figure(110.0, "assumed"),        # taken equal to the ESP32's (idf-753): unmeasured on a C3
        "conn_ma": Figure(120.0, "assumed"),
        "awake_ma": Figure(26.8, "c3-rob"),
        "chip_sleep_ma": Figure(0.005, "c3-ds"),
        "devkit_sleep_ma": Figure(0.6, "c3-devkitm"),
        "touch_wake_ma": Figure(0.0, "board"),     # an outside contact: no current until pressed
    },
    "pcb": {  # what a lock PCB adds to the module in deep sleep
        "ldo_ma": Figure(0.0016, "mcp1700"),
        "divider_ma": Figure(0.002, "board"),      # 6 V over 3 MOhm
        "driver_ma": Figure(0.0025, "drv8833"),
    },
    "timing": {
        "boot_s": Figure(1.0, "assumed"),          # deep-sleep wake to advertising (IDF part ~0.2 s: c3-wake)
        "adv_wait_s": Figure(1.0, "assumed"),      # advertising until the phone connects
        "session_s": Figure(0.5, "assumed"),       # HELLO, AUTH+UNLOCK, RESULT
        "settle_s": Figure(3.0, "firmware"),       # after the relock, before sleeping again
        "session_hold_s": Figure(35.0, "firmware"),  # awake at least this long after a session began
        "duty_period_s": Figure(4.0, "c3-wake"),   # timer-wake advertising: sleep 4 s ...
        "duty_adv_s": Figure(0.1, "c3-wake"),      # ... advertise 100 ms
        # the sleeping profiles: a carer wakes the unit at the outside pad, then her phone connects
        "touch_connect_s": Figure(5.0, "assumed"),  # from the touch to the phone's connection
        "window_s": Figure(30.0, "firmware"),      # an outside wake nobody uses: awake this long
        "stray_touches": Figure(2.0, "assumed"),   # such wakes a day (passers-by, a child)
    },
}

#: (average mA, mAh) points of one cell, to the end voltage of the datasheet curves.
CAPACITY = {
    "alkaline-4aa": ([(25, 3000), (100, 2600), (500, 1600), (1000, 1000)], "e91"),
    "lithium-4aa": ([(25, 3500), (1000, 3000)], "l91"),
}

SETTLE_MS = 100  # lockmech's default settle: the last part of each motion pushes against the end stop


def fig(group: str, name: str) -> float:
    return FIGURES[group][name].value


def capacity_mah(chemistry: str, avg_ma: float) -> float:
    """One cell's capacity at a steady average current: log-linear between the datasheet points."""
    pts, _ = CAPACITY[chemistry]
    if avg_ma <= pts[0][0]:
        return float(pts[0][1])
    for (i0, c0), (i1, c1) in itertools.pairwise(pts):
        if avg_ma <= i1:
            f = (math.log(avg_ma) - math.log(i0)) / (math.log(i1) - math.log(i0))
            return c0 + (c1 - c0) * f
    return float(pts[-1][1])


# ---------------------------------------------------------------- the firmware's own curves

def _firmware_battery():
    """lockbattery from firmware/lib under CPython (pure logic, the same curves the lock uses)."""
    lib = str(ROOT / "firmware" / "lib")
    sys.path.insert(0, lib)
    try:
        spec = importlib.util.spec_from_file_location("_fw_lockbattery", ROOT / "firmware" / "lib" / "lockbattery.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod
    finally:
        sys.path.remove(lib)


def usable_fraction(board: dict, sag_mv: int | None = None) -> tuple[float, int]:
    """(fraction of the charge above CRITICAL, the idle mV where CRITICAL starts) for a board's cells."""
    lb = _firmware_battery()
    bat = board["battery"]
    mon = lb.Monitor(bat)
    sag = mon.sag if sag_mv is None else sag_mv
    crit_idle = max(mon.critical_mv, mon.guard_mv + sag)
    curve = lb.chemistry(bat["chemistry"])[0]
    left = lb.percent(curve, crit_idle // bat["cells"])
    return (100 - left) / 100, crit_idle


# ---------------------------------------------------------------- the journal of a day

EV = {"UNLOCK": 0x02, "LOCK": 0x03, "AUTO_RELOCK": 0x07, "BUTTON": 0x08, "JAM": 0x09, "BATTERY": 0x0B,
      "DENIED": 0x04}


@dataclass
class DayStats:
    seconds: int          # lock time the journal covers (a day)
    motions: int          # motor runs
    motor_ms: int         # measured by the simulated world
    episodes: list        # (start, end, by_phone) lock seconds: wake (phone or button) to relock
    sessions: int         # phone connections
    sag_mv: int | None    # the unit's own sag measurement, from its BATTERY records


def day_stats(day: dict) -> DayStats:
    """What the energy model needs from a day's journal (lockproto.Record layout, §6.1)."""
    from lockproto import Record
    from lockproto.codes import battery_record

    recs = [Record.decode(bytes.fromhex(h)) for h in day["records"]]
    motions, sessions, sag = 0, 0, None
    episodes, start, phone = [], None, False
    for r in recs:
        e = r.event
        by_phone = e in (EV["UNLOCK"], EV["LOCK"]) and r.user_id
        if by_phone or e in (EV["AUTO_RELOCK"], EV["BUTTON"], EV["JAM"]):
            motions += 1
        if by_phone or e == EV["DENIED"]:
            sessions += 1
        if (by_phone and e == EV["UNLOCK"]) or (e == EV["BUTTON"] and start is None):
            if start is None:
                start, phone = r.time, bool(by_phone)
        if e in (EV["AUTO_RELOCK"], EV["LOCK"]) and start is not None:
            episodes.append((start, r.time, phone))
            start = None
        if e == EV["BATTERY"]:
            s = battery_record(r.arg16, r.arg)["sag_mv"]
            sag = s if s is not None else sag
    return DayStats(day.get("seconds", DAY_S), motions, day["motor_ms"], episodes, sessions, sag)


# ---------------------------------------------------------------- the model

@dataclass
class Prediction:
    board: str
    variant: str
    profile: str
    mah_per_day: float
    avg_ma: float
    capacity_mah: float
    usable: float
    days: float

    @property
    def months(self) -> float:
        return self.days / (365.25 / 12)


def motor_mas(board: dict, st: DayStats) -> float:
    """Motor charge per day (mA*s): running current, the settle at the end stop at stall current."""
    m = board["motor"]
    stall_s = st.motions * SETTLE_MS / 1000
    run_s = max(0.0, st.motor_ms / 1000 - stall_s)
    return run_s * m["run_ma"] + stall_s * m["stall_ma"]


def profile_mas(chip: str, variant: str, profile: str, board: dict, st: DayStats) -> float:
    """Charge per day in mA*s for one profile (docs/power.md, 'Energy model')."""
    ble, conn, awake = fig(chip, "ble_ma"), fig(chip, "conn_ma"), fig(chip, "awake_ma")
    if variant == "devkit":
        sleep = fig(chip, "devkit_sleep_ma")
    else:
        sleep = fig(chip, "chip_sleep_ma") + sum(f.value for f in FIGURES["pcb"].values())
    t = FIGURES["timing"]
    session = st.sessions * t["session_s"].value
    motor = motor_mas(board, st)
    if profile == "always_listening":
        return ble * DAY_S + (conn - ble) * session + motor
    # one wake per episode: boot, advertise for the phone (the button needs none), the session,
    # awake with BLE on until the relock and the settle (and, if the phone stays connected, at
    # least the session hold, as locksleep does); asleep the rest of the day
    wakes = len(st.episodes)
    settle, hold = t["settle_s"].value, t["session_hold_s"].value
    if profile in ("deep_sleep", "deep_sleep_lingering") and board.get("wake_outside", {}).get("kind") == "touch":
        sleep += fig(chip, "touch_wake_ma")  # the ESP32's touch sensor keeps measuring in deep sleep
    if profile == "deep_sleep":
        hold = 0.0  # the phone hangs up after its RESULT: the link closes the session, the hold ends
    awake_s = sum(max(max(0, b - a) + settle, hold if by_phone else 0) for a, b, by_phone in st.episodes)
    boot_s = wakes * t["boot_s"].value
    adv_s = st.sessions * t["adv_wait_s"].value
    q = boot_s * awake + adv_s * ble + session * conn + awake_s * ble + motor
    up = boot_s + adv_s + session + awake_s
    if profile in ("deep_sleep", "deep_sleep_lingering"):
        # every phone visit starts with a touch on the outside pad: advertising until the phone
        # connects; stray touches: a boot and the whole advertising window, then the settle
        extra = st.sessions * max(0.0, t["touch_connect_s"].value - t["adv_wait_s"].value)
        stray = t["stray_touches"].value
        stray_s = stray * (t["window_s"].value + settle)
        q += extra * ble + stray * t["boot_s"].value * awake + stray_s * ble
        up += extra + stray * t["boot_s"].value + stray_s
        return q + sleep * max(0.0, DAY_S - up)
    if profile == "duty_cycle":
        # timer wakes to advertise for a moment, so a phone can connect without a touch
        cycles = DAY_S / (t["duty_period_s"].value + t["duty_adv_s"].value)
        cyc_s = t["boot_s"].value + t["duty_adv_s"].value
        q += cycles * (t["boot_s"].value * awake + t["duty_adv_s"].value * ble)
        return q + sleep * max(0.0, DAY_S - up - cycles * cyc_s)
    raise ValueError(f"unknown profile {profile}")


PROFILES = ("always_listening", "deep_sleep", "deep_sleep_lingering", "duty_cycle")
VARIANTS = ("devkit", "module")


def predict(day: dict, board_name: str, variant: str = "module", profile: str = "deep_sleep",
            boards_dir: Path = BOARDS) -> Prediction:
    board = json.loads((Path(boards_dir) / f"{board_name}.json").read_text())
    st = day_stats(day)
    mas = profile_mas(board["chip"], variant, profile, board, st)
    per_day = mas / 3600 * DAY_S / st.seconds
    avg = per_day / 24
    cap = capacity_mah(board["battery"]["chemistry"], avg)
    usable, _ = usable_fraction(board, st.sag_mv)
    return Prediction(board_name, variant, profile, per_day, avg, cap, usable, cap * usable / per_day)


# ---------------------------------------------------------------- a simulated day

def simulate_day(board: str = "sim", openings: int = 10, battery_mv: int | None = None) -> dict:
    """One day of a real unit: openings/2 visits, each a phone unlock in and a button unlock out."""
    import mpyhost
    from lockproto import LockKeys, Op, PhoneSession, Right, issue_ticket

    lock_id = bytes.fromhex("4c4b00000000e001")
    master = bytes(range(7, 39))
    now0 = 1_767_225_600  # 2026-01-01 00:00 UTC
    keys = LockKeys.from_master(master, lock_id, 1)
    visits = max(1, openings // 2)
    starts = [int(6.5 * 3600 + i * (15 * 3600) / max(1, visits - 1)) for i in range(visits)] if visits > 1 \
        else [12 * 3600]
    with mpyhost.Worker(["energyday"], paths=[ROOT / "simulator" / "mpy"], heapsize="2m") as w:
        w.call("energyday.start", str(BOARDS), board, battery_mv or 0, 1024)
        if w.call("energyday.provision", lock_id.hex(), 1, master.hex(), now0) != 0:
            raise RuntimeError("provisioning the simulated unit failed")
        w.call("energyday.run", 200)
        for i, at in enumerate(starts):
            now = w.call("energyday.status")["now"]
            if now0 + at > now:
                w.call("energyday.skip", (now0 + at - now) * 1000)
            now = w.call("energyday.status")["now"]
            t, k = issue_ticket(keys, ticket_id=100 + i, user_id=40 + i, not_before=now - 60,
                                not_after=now + 8 * 3600, issued_at=now - 60, rights=Right.UNLOCK | Right.LOCK)
            ps = PhoneSession(t.encode(), k, bytes.fromhex(w.call("energyday.hello")))
            ps.read(bytes.fromhex(w.call("energyday.handle", ps.auth(Op.UNLOCK, b"").hex())))
            w.call("energyday.run", 2000)
            w.call("energyday.door", False)   # in
            w.call("energyday.run", 4000)
            w.call("energyday.door", True)
            w.call("energyday.run", 8000)      # relock after 5 s
            w.call("energyday.skip", 20 * 60 * 1000)  # the visit
            w.call("energyday.press")          # out, with the inside button
            w.call("energyday.run", 2000)
            w.call("energyday.door", False)
            w.call("energyday.run", 4000)
            w.call("energyday.door", True)
            w.call("energyday.run", 8000)
        now = w.call("energyday.status")["now"]
        if now0 + DAY_S > now:
            w.call("energyday.skip", (now0 + DAY_S - now) * 1000)
        st = w.call("energyday.status")
        records = w.call("energyday.journal")
    return {"board": board, "openings": 2 * visits, "seconds": DAY_S, "motor_ms": st["motor_ms"],
            "resets": st["resets"], "records": records}


# ---------------------------------------------------------------- CLI

def _table(preds: list[Prediction]) -> str:
    lines = [f"{'board':18} {'variant':7} {'profile':21} {'mAh/day':>9} {'avg mA':>8} {'cap mAh':>8} "
             f"{'usable':>6} {'life':>12}  12 months?"]
    for p in preds:
        life = f"{p.days:.1f} d" if p.days < 60 else f"{p.months:.1f} mo"
        verdict = "yes" if p.days >= 365 else f"no ({p.days / 365 * 100:.1f} %)"
        lines.append(f"{p.board:18} {p.variant:7} {p.profile:21} {p.mah_per_day:9.2f} {p.avg_ma:8.3f} "
                     f"{p.capacity_mah:8.0f} {p.usable * 100:5.0f}% {life:>12}  {verdict}")
    return "\n".join(lines)


DESCRIPTION = "Predict battery life from a simulated day's journal."


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """The options of ``locksim battery-life`` (and of the ``locksim-battery-life`` script)."""
    ap.add_argument("day", nargs="?", help="a day file (JSON from --save); default: simulate one now")
    ap.add_argument("--board", action="append", help="board file name (repeatable; default: the real boards)")
    ap.add_argument("--openings", type=int, default=10, help="door openings a day when simulating (default 10)")
    ap.add_argument("--save", help="write the simulated day (its journal) to this file")
    ap.add_argument("--json", action="store_true", help="print the predictions as JSON")


def main(argv: list[str] | None = None, prog: str = PROG) -> int:
    ap = argparse.ArgumentParser(prog=prog, description=DESCRIPTION)
    add_arguments(ap)
    return run(ap.parse_args(argv), prog)


def run(args: argparse.Namespace, prog: str = PROG) -> int:
    try:
        if args.day:
            try:
                day = json.loads(Path(args.day).read_text())
                day["records"], day["motor_ms"]  # noqa: B018 (shape check)
            except (OSError, ValueError, KeyError, TypeError) as e:
                raise SystemExit(f"{prog}: {args.day}: not a day file ({e})")
        else:
            if args.openings < 1 or args.openings > 200:
                raise SystemExit(f"{prog}: --openings must be 1..200")
            day = simulate_day(openings=args.openings)
            if args.save:
                Path(args.save).write_text(json.dumps(day))
        boards = args.board or ["esp32-devkitc", "esp32-c3-devkitm"]
        for b in boards:
            if not (BOARDS / f"{b}.json").is_file():
                raise SystemExit(f"{prog}: no board file boards/{b}.json")
        preds = [predict(day, b, v, p) for b in boards for v in VARIANTS for p in PROFILES]
    except SystemExit as e:
        print(e.code, file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps([p.__dict__ | {"months": p.months} for p in preds], indent=1))
    else:
        st = day_stats(day)
        print(f"day: {len(day['records'])} journal records, {st.motions} motor runs ({st.motor_ms} ms), "
              f"{len(st.episodes)} wakes, {st.sessions} phone sessions, measured sag "
              f"{st.sag_mv if st.sag_mv is not None else '-'} mV")
        print(_table(preds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
