# Runs under MicroPython: Mechanism instances driven from tests/test_logic_mech.py.
import lockmech

_m = {}


def new(key, relock_s, alarm_s, timeout_ms):
    _m[key] = lockmech.Mechanism(relock_delay_s=relock_s, door_alarm_s=alarm_s, motor_timeout_ms=timeout_ms,
                                 settle_ms=40, unopened_relock_s=30)


def update(key, now, pos, door_closed, button):
    m = _m[key]
    m.update(now, pos, door_closed, button)
    return [m.state, m.motor, [list(e) for e in m.events()], m.take_feedback()]


def command(key, op, now):
    m = _m[key]
    return [m.command(op, now), m.state, m.motor]


def drop(key):
    _m.pop(key, None)
