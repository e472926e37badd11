# Runs under MicroPython: scenarios for the HAL (firmware/lib/lockhal*.py) on
# the simulator twin, called from tests/test_hal_sim.py through mpyhost.Worker.
# Each returns plain values (ints, strings, lists, dicts) for pytest to check.
import lockhal as L
import lockhal_sim as S


def _make(boards, name, uv=True, **kw):
    b = L.load_board(name, boards)
    w = S.SimWorld(b, **kw)
    hal = S.SimHal(w, adc_uv=uv)
    return b, w, hal, L.wire(b, hal)


def _err(fn):
    try:
        fn()
    except ValueError as e:
        return ["ValueError", str(e)]
    except S.SimHalted as e:
        return ["SimHalted", str(e)]
    return ["ok", ""]


def wire_board(boards, name):
    b, w, hal, hw = _make(boards, name)
    return {"name": hw.name, "chip": b["chip"], "profile": hw.power_profile,
            "position": hw.bolt.position(), "fault": hw.bolt.fault, "closed": hw.door.is_closed(),
            "battery_mv": hw.battery.read_mv(), "time": hw.clock.time(),
            "reset_cause": hw.reset_cause(), "motor": hw.motor.direction,
            "led": w.is_on("led"), "buzzer": w.is_on("buzzer"), "pins": len(w.pins)}


def travel(boards, name, direction, start, step_ms=20, limit_ms=4000):
    # drive until the switch for that direction closes; trace (ms, bolt, position)
    b, w, hal, hw = _make(boards, name, bolt=start)
    want = L.POS_UNLOCKED if direction > 0 else L.POS_LOCKED
    trace = [[0, w.bolt, hw.bolt.position()]]
    hw.motor.drive(direction)
    t = 0
    while hw.bolt.position() != want and t < limit_ms:
        w.advance(step_ms)
        t += step_ms
        trace.append([t, w.bolt, hw.bolt.position()])
    hw.motor.drive(0)
    after = w.bolt
    w.advance(500)
    return {"ms": t, "bolt": w.bolt, "after": after, "position": hw.bolt.position(),
            "trace": trace, "world_motor": w.motor(), "motor_ms": w.motor_ms}


def jam(boards, name):
    b, w, hal, hw = _make(boards, name)
    hw.motor.drive(1)
    w.advance(300)
    w.jam = True
    at = w.bolt
    idle = w.loaded_mv()
    w.advance(2000)
    stuck = w.bolt
    pos = hw.bolt.position()
    stall = hw.battery.read_mv()
    hw.motor.drive(0)
    w.jam = False
    hw.motor.drive(1)
    w.advance(2000)
    return {"at": at, "stuck": stuck, "position": pos, "stall_mv": stall, "loaded": idle,
            "freed": hw.bolt.position()}


def battery(boards, name, mv, uv=True, gain=None, offset=None):
    b, w, hal, hw = _make(boards, name, uv=uv, battery_mv=mv, bolt=50)
    if gain is not None:
        w.adc_gain = gain
        w.adc_offset_mv = offset
    idle = hw.battery.read_mv()
    hw.motor.drive(1)
    w.advance(10)
    running = hw.battery.read_mv()
    hw.motor.drive(0)
    return {"idle": idle, "running": running, "after": hw.battery.read_mv()}


def battery_range(boards, name, mv):
    b, w, hal, hw = _make(boards, name)
    w.battery_mv = mv
    return _err(hw.battery.read_mv)


def button(boards, name):
    b, w, hal, hw = _make(boards, name)
    out = {}
    out["idle"] = hw.button.take()
    w.press(hold_ms=150, bounces=3)
    out["flag"] = hw.button.flag
    w.advance(5)
    out["first"] = hw.button.take()
    out["again"] = hw.button.take()
    w.advance(200)  # released, with bounce
    out["released_flag"] = hw.button.flag
    out["after_release"] = hw.button.take()
    w.advance(500)
    w.press(hold_ms=100, bounces=0)
    w.advance(10)
    out["second"] = hw.button.take()
    w.advance(120)  # released
    w.press(hold_ms=100, bounces=0)
    out["fast_flag"] = hw.button.flag
    w.advance(1)
    out["third"] = hw.button.take()
    return out


def button_within_debounce(boards, name):
    # two presses 30 ms apart (a bounce too slow for the contact model): one press
    b, w, hal, hw = _make(boards, name)
    w.press(hold_ms=10, bounces=0)
    first = hw.button.take()
    w.advance(30)
    w.press(hold_ms=50, bounces=0)
    second = hw.button.take()
    w.advance(100)
    return [first, second, hw.button.take()]


def watchdog(boards, name):
    b, w, hal, hw = _make(boards, name)
    hw.clock.set_time(1700000000)
    out = {"before_start": w.advance(20000)}
    hw.wdt.feed()  # not started: a no-op
    hw.wdt.start()
    fed = []
    for _ in range(10):
        fed.append(w.advance(5000))
        hw.wdt.feed()
    out["fed"] = fed
    hw.motor.drive(1)
    out["starved"] = w.advance(9000)
    out["at_ms"] = w.ms
    out["cause"] = w.reset_cause
    out["motor_after"] = w.motor()
    out["stale"] = _err(lambda: hw.motor.drive(0))
    hw2 = L.wire(b, hal)
    out["rewired_cause"] = hw2.reset_cause()
    out["time"] = hw2.clock.time()
    out["after_rewire"] = w.advance(20000)
    return out


def rtc(boards, name):
    b, w, hal, hw = _make(boards, name)
    out = {"boot": hw.clock.time()}
    hw.clock.set_time(1700000000)
    w.advance(5500)
    out["later"] = hw.clock.time()
    w.hard_reset()
    hw = L.wire(b, hal)
    out["after_hard_reset"] = hw.clock.time()
    out["hard_cause"] = hw.reset_cause()
    w.power_cut()
    out["stale"] = _err(hw.clock.time)
    hw = L.wire(b, hal)
    out["after_cut"] = hw.clock.time()
    out["cut_cause"] = hw.reset_cause()
    return out


def deep_sleep(boards, name):
    b, w, hal, hw = _make(boards, name)
    out = {"halt": _err(lambda: hw.sleep())}
    out["sleeping"] = w.sleeping
    out["stale"] = _err(hw.door.is_closed)
    out["quiet"] = w.advance(60000)
    out["slept_ms"] = w.sleep_ms
    out["woke"] = w.press(hold_ms=100)
    out["sleeping_after"] = w.sleeping
    hw = L.wire(b, hal)
    out["cause"] = hw.reset_cause()
    w.advance(500)
    out["timer"] = _err(lambda: hw.sleep(2000))
    out["timer_woke"] = w.advance(2500)
    hw = L.wire(b, hal)
    hw.motor.drive(1)
    out["motor_running"] = _err(lambda: hal.deepsleep(1000))
    hw.motor.drive(0)
    out["no_wake"] = _err(lambda: hal.deepsleep(0))
    out["bad_wake_pin"] = _err(lambda: hal.deepsleep(0, b["pins"]["door"], 0, L.PULL_UP))
    return out


def limit_fault(boards, name):
    b, w, hal, hw = _make(boards, name)
    w.stick("bolt_unlocked", True)
    both = [hw.bolt.position(), hw.bolt.fault]
    w.stick("bolt_unlocked", None)
    return {"both": both, "cleared": [hw.bolt.position(), hw.bolt.fault]}


def ticks(boards, name):
    b, w, hal, hw = _make(boards, name)
    t0 = hw.ticks_ms()
    w.advance(15000)
    t1 = hw.ticks_ms()
    return {"t0": t0, "t1": t1, "diff": hw.ticks_diff(t1, t0), "back": hw.ticks_diff(t0, t1)}


def indicator(boards, name, code):
    b, w, hal, hw = _make(boards, name)
    trace = []
    for ind, role in ((hw.led, "led"), (hw.buzzer, "buzzer")):
        ind.signal(code)
        seq = [w.is_on(role)]
        for _ in range(150):
            w.advance(10)
            ind.poll()
            if w.is_on(role) != seq[-1]:
                seq.append(w.is_on(role))
        trace.append(seq)
    return trace


def strict(boards, name, case):
    b, w, hal, hw = _make(boards, name)
    p = b["pins"]
    cases = {
        "read_output": lambda: hal.world.pins[p["led"]].value(),
        "drive_input": lambda: hal.world.pins[p["door"]].value(1),
        "both_high": lambda: (hw.motor._a.value(1), hw.motor._b.value(1)),
        "unwired_pin": lambda: hal.output(13),
        "flash_pin": lambda: hal.output(6),
        "uart_pin": lambda: hal.output(1),
        "claimed_twice": lambda: hal.output(p["led"]),
        "output_on_switch": lambda: (hal.world.pins.pop(p["door"]), hal.output(p["door"])),
        "adc_on_switch": lambda: (hal.world.pins.pop(p["door"]), hal.adc(p["door"], "11db")),
        "wrong_pull": lambda: (hal.world.pins.pop(p["door"]), hal.input(p["door"], L.PULL_DOWN)),
        "bad_atten": lambda: (hal.world.pins.pop(p["battery_adc"]), hal.adc(p["battery_adc"], "12db")),
        "adc_over_range": lambda: (setattr(w, "battery_mv", 7600), hw.battery.read_mv()),
        "adc_under_range": lambda: (setattr(w, "battery_mv", 300), hw.battery.read_mv()),
        "pwm_freq": lambda: hal.world.pins[p["buzzer"]].freq(0),
        "pwm_duty": lambda: hal.world.pins[p["buzzer"]].duty_u16(70000),
        "wdt_short": lambda: hal.wdt(500),
        "bad_trigger": lambda: hal.world.pins[p["button"]].irq(None, 7),
        "motor_direction": lambda: hw.motor.drive(2),
        "time_backwards": lambda: w.advance(-1),
        "fine": lambda: (hw.motor.drive(1), hw.motor.drive(-1), hw.motor.drive(0)),
    }
    return _err(cases[case])


def custom(board, case):
    # a board dict from the host with a deliberate wiring error
    return _err(lambda: L.wire(board, S.SimHal(S.SimWorld(board))))


def reverse(boards, name):
    b = L.load_board(name, boards)
    b["motor"]["reverse"] = True
    w = S.SimWorld(b)
    hw = L.wire(b, S.SimHal(w))
    hw.motor.drive(1)
    w.advance(3000)
    return [w.bolt, hw.bolt.position()]


def worlds(boards, name, count):
    # many locks in one interpreter, each with its own world (no shared state)
    locks = []
    for i in range(count):
        b, w, hal, hw = _make(boards, name, bolt=0 if i % 2 else 100)
        locks.append((w, hw))
    for i, (w, hw) in enumerate(locks):
        hw.motor.drive(1 if i % 3 == 0 else -1)
    for w, hw in locks:
        w.advance(2000)
    return [[w.bolt, hw.bolt.position()] for w, hw in locks]


def _public(names):
    return sorted(n for n in names if not n.startswith("_"))


def surface():
    # the API of lockhal_esp32 and the simulator's, by introspection
    import lockhal_esp32 as E
    import lockhal_simio as IO
    out = {"esp32_funcs": [], "sim_funcs": _public(dir(S.SimHal)), "classes": {}}
    for n in _public(dir(E)):
        v = getattr(E, n)
        if callable(v) and type(v) is not type:
            out["esp32_funcs"].append(n)
    out["sim_funcs"] = [n for n in out["sim_funcs"] if callable(getattr(S.SimHal, n))]
    for cls in ("Output", "Input", "Pwm", "Adc", "Wdt", "Rtc", "Touch"):
        out["classes"][cls] = [_public(dir(getattr(E, cls))), _public(dir(getattr(IO, cls)))]
    return out


def chip_table(chip):
    g, forbidden, input_only, adc1, wake, ranges = S.chip_info(chip)
    return {"gpio": list(g), "forbidden": list(forbidden), "input_only": list(input_only),
            "adc1": list(adc1), "wake": list(wake), "range": [list(r) for r in ranges],
            "touch": list(S.touch_pins(chip))}


def outside_wake(boards, name):
    # the outside wake source on the twin: armed with the button, it wakes the
    # sleeping unit and the rebuilt hardware tells which source it was
    b, w, hal, hw = _make(boards, name)
    out = {"kind": b["wake_outside"]["kind"], "first": hw.wake_source()}
    out["halt"] = _err(lambda: hw.sleep())
    out["armed"] = [list(x) for x in w._wake] + ([w._wake_touch] if w._wake_touch is not None else [])
    out["touch_woke"] = w.touch(200)
    hw = L.wire(b, hal)
    out["reason"] = w.wake_reason
    out["after_touch"] = hw.wake_source()
    if hw.outside is not None and hasattr(hw.outside, "read"):
        out["pad"] = [hw.outside.read(), b["wake_outside"]["threshold"]]
    w.advance(500)
    _err(lambda: hw.sleep(0, False))    # muted: the button only
    out["muted_touch"] = w.touch(200)    # no wake
    w.advance(500)
    out["press_woke"] = w.press()
    hw = L.wire(b, hal)
    out["after_press"] = hw.wake_source()
    w.advance(500)
    _err(lambda: hw.sleep(1000, False))
    out["timer_woke"] = w.advance(1500)
    hw = L.wire(b, hal)
    out["after_timer"] = hw.wake_source()
    hw.clock.memory(b"LW" + bytes(10))
    w.advance(100)
    _err(lambda: hw.sleep(1000))
    w.advance(1500)
    out["rtc_mem_kept"] = w.rtc_mem == b"LW" + bytes(10)
    w.power_cut()
    out["rtc_mem_power_cut"] = w.rtc_mem
    out["power_on"] = L.wire(b, hal).wake_source()
    return out


def touch_refusals(boards):
    # stricter than hardware: no touch wake or pad on a pin without a touch channel
    out = {}
    b = L.load_board("sim", boards)
    b["pins"]["outside"] = 35              # input only: no touch channel
    out["pad_on_34"] = _err(lambda: L.wire(b, S.SimHal(S.SimWorld(b))))
    b, w, hal, hw = _make(boards, "sim")
    out["arm_on_door"] = _err(lambda: hal.deepsleep(0, b["pins"]["button"], 0, L.PULL_UP, ("touch", 21, 300)))
    out["arm_unwired_touch"] = _err(lambda: hal.deepsleep(0, b["pins"]["button"], 0, L.PULL_UP, ("touch", 33, 300)))
    out["bad_threshold"] = _err(lambda: hal.touch(33, 0))
    c = L.load_board("esp32-c3-devkitm", boards)
    c["wake_outside"] = {"pin": "outside", "kind": "touch", "threshold": 300}
    out["c3_pad"] = _err(lambda: L.wire(c, S.SimHal(S.SimWorld(c))))
    c = L.load_board("esp32-c3-devkitm", boards)
    b, w, hal, hw = _make(boards, "esp32-c3-devkitm")
    out["c3_arm_touch"] = _err(lambda: hal.deepsleep(0, c["pins"]["button"], 0, L.PULL_UP, ("touch", 1, 300)))
    out["c3_two_levels"] = _err(lambda: hal.deepsleep(0, c["pins"]["button"], 0, L.PULL_UP, ("gpio", 1, 1, L.PULL_UP)))
    b = L.load_board("esp32-devkitc", boards)
    b.pop("wake_outside")
    b["pins"].pop("outside")
    w = S.SimWorld(b)
    hw = L.wire(b, S.SimHal(w))
    out["no_outside"] = [hw.outside, _err(lambda: w.touch())]
    return out
