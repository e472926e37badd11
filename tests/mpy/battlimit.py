# Runs under MicroPython: lockbattery's CRITICAL rule evaluated directly, for
# tests/test_battery_limit.py (the key server's forecast limit against it).
import lockbattery


def _monitor(battery, sag_field):
    # a fresh monitor whose sag is what a BATTERY record's sag field says:
    # 0 = none measured (the chemistry default stays), else field x 10 mV
    m = lockbattery.Monitor(battery)
    if sag_field:
        m.sag = sag_field * 10
        m.sag_measured = True
    return m


def unlock_ok(battery, sag_field, mvs):
    # for each idle mV: would a fresh monitor at that level still run the motor?
    # (the first sample sets the average exactly; no earlier level: no hysteresis)
    out = []
    for mv in mvs:
        m = _monitor(battery, sag_field)
        m.sample(mv)
        out.append(m.unlock_ok())
    return out


def limits(battery):
    m = lockbattery.Monitor(battery)
    return {"critical": m.critical_mv, "guard": m.guard_mv, "sag": m.sag, "floor": m.floor_mv}


def record_arg(battery, sag, mv):
    # the BATTERY record arg of a monitor at idle mv whose measured sag is sag
    m = lockbattery.Monitor(battery)
    m.sag = sag
    m.sag_measured = True
    m.sample(mv)
    return m.record_arg(0)
