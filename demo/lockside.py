# Runs under MicroPython: doors for the protocol demo. Each door is the
# firmware's session (firmware/lib) over the in-memory lock context of the tests
# (tests/mpy/fakelock.py); the real door unit's context comes with the HAL.
import locksession
from fakelock import FakeLock


class Doors:
    def __init__(self):
        self.locks = {}
        self.sessions = {}

    def create(self, name, master, lock_id, now):
        self.locks[name] = FakeLock(master, lock_id, 1, now=now)
        self.sessions[name] = locksession.LockSession(self.locks[name])

    def hello(self, name):
        return self.sessions[name].hello()

    def handle(self, name, msg):
        return self.sessions[name].handle(msg)

    def advance(self, name, seconds):
        self.locks[name].advance(seconds)

    def bolt(self, name):
        return self.locks[name].bolt


_doors = Doors()


def create(name, master, lock_id, now):
    _doors.create(name, master, lock_id, now)


def hello(name):
    return _doors.hello(name)


def handle(name, msg):
    return _doors.handle(name, msg)


def advance(name, seconds):
    _doors.advance(name, seconds)


def bolt(name):
    return _doors.bolt(name)
