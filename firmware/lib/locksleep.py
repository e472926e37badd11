# The deep-sleep power profile (docs/power.md, "Power profiles"): when a
# battery unit may power down. A pure state machine fed the unit's state on
# every poll; imported only by units in that profile (no heap otherwise).
# due() is True once the bolt is LOCKED and at rest, the motor off, the door
# closed, and quiet: settle_ms since the last change (bolt state, door,
# journal head) and session_ms since the last session started (a phone may
# send its next message up to 30 s later), unless every session that started
# has closed since (the transport closes it when the phone disconnects):
# then settle_ms after the last close. The owner then saves what must
# survive and calls hw.sleep(); the board's wake pin boots the unit again.

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

# protocol numbers (docs/protocol.md; the same as lockcodes, tests/test_fw_consts.py)
_B_LOCKED = const(1)

_SETTLE_MS = const(3000)
_SESSION_MS = const(35000)  # longer than the protocol's 30 s between a session's messages


class Sleeper:
    def __init__(self, settle_ms=_SETTLE_MS, session_ms=_SESSION_MS):
        self.settle_ms = settle_ms
        self.session_ms = session_ms
        self._until = 0
        self._state = -1
        self._door = None
        self._head = -1
        self._open = 0

    def _hold(self, until):
        if until > self._until:
            self._until = until

    def opened(self, now):
        # a session started
        self._open += 1
        self._hold(now + self.session_ms)

    def closed(self, now):
        # a session ended: once none is open, the hold shrinks to the settle
        self._open -= 1
        if self._open <= 0:
            self._open = 0
            self._until = now + self.settle_ms

    def due(self, now, state, motor, door_closed, head):
        if state != self._state or door_closed != self._door or head != self._head:
            self._state = state
            self._door = door_closed
            self._head = head
            self._hold(now + self.settle_ms)
            return False
        return state == _B_LOCKED and not motor and door_closed and now >= self._until
