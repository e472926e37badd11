# The bolt mechanism as a pure state machine (B_* states of lockcodes). Values
# in (time in monotonic ms, bolt switch position, door contact, button press),
# values out (motor direction, journal events, feedback code). It never keeps
# the motor on past motor_timeout_ms, never extends the bolt while the door is
# open, and falls back to LOCKED: after an unlock the door relocks by itself.
from lockcodes import (
    B_UNKNOWN, B_LOCKED, B_UNLOCKING, B_UNLOCKED, B_LOCKING, B_JAMMED, OP_UNLOCK, OP_LOCK,
    E_OK, E_MALFORMED, EV_JAM, EV_AUTO_RELOCK, EV_BUTTON, EV_DOOR_OPEN, EV_DOOR_CLOSED,
    EV_DOOR_LEFT_OPEN,
)

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

# bolt switch positions (as lockhal.Bolt.position())
POS_UNKNOWN = const(0)
POS_LOCKED = const(1)
POS_UNLOCKED = const(2)
# feedback codes (as lockhal SIG_*)
FB_NONE = const(0)
FB_OK = const(2)
FB_DENIED = const(3)
FB_ALARM = const(4)


class Mechanism:
    def __init__(self, relock_delay_s=5, door_alarm_s=120, motor_timeout_ms=1500, settle_ms=100,
                 unopened_relock_s=30):
        self.relock_delay_s = relock_delay_s
        self.door_alarm_s = door_alarm_s
        self.motor_timeout_ms = motor_timeout_ms
        self.settle_ms = settle_ms
        self.unopened_relock_s = unopened_relock_s
        self.state = B_UNKNOWN
        self.motor = 0
        self._started = 0       # ms when the current motion started
        self._reached = None    # ms when the target switch closed (settling)
        self._relock_at = None  # ms after which to relock (when the door is closed)
        self._door = None       # last door_closed value (None before the first update)
        self._open_since = 0
        self._alarmed = False
        self._jam_pos = POS_UNKNOWN
        self._events = []
        self._fb = FB_NONE

    def set_config(self, relock_delay_s=None, door_alarm_s=None):
        if relock_delay_s is not None:
            self.relock_delay_s = relock_delay_s
        if door_alarm_s is not None:
            self.door_alarm_s = door_alarm_s

    def events(self):
        ev = self._events
        self._events = []
        return ev

    def take_feedback(self):
        fb = self._fb
        self._fb = FB_NONE
        return fb

    def _start(self, direction, now):
        self.state = B_UNLOCKING if direction > 0 else B_LOCKING
        self.motor = direction
        self._started = now
        self._reached = None

    def command(self, op, now):
        # -> status; the motion itself progresses in update()
        if op == OP_UNLOCK:
            if self.state not in (B_UNLOCKED, B_UNLOCKING):
                self._start(1, now)
            self._relock_at = now + 1000 * self.unopened_relock_s
            self._fb = FB_OK
            return E_OK
        if op == OP_LOCK:
            if self.state in (B_LOCKED, B_LOCKING):
                return E_OK
            if self._door is False:
                self._relock_at = now  # the door is open: lock as soon as it closes
                return E_OK
            self._start(-1, now)
            return E_OK
        return E_MALFORMED

    def update(self, now, pos, door_closed, button):
        self._door_edge(now, door_closed)
        if button:
            self._events.append((EV_BUTTON, 0, 0))
            if self.state in (B_UNLOCKED, B_UNLOCKING):
                self.command(OP_LOCK, now)
            else:
                self.command(OP_UNLOCK, now)
        if self.state == B_UNLOCKING or self.state == B_LOCKING:
            self._motion(now, pos, door_closed)
        else:
            self._idle(now, pos, door_closed)

    def _door_edge(self, now, closed):
        if self._door is not None and closed != self._door:
            if closed:
                self._events.append((EV_DOOR_CLOSED, 0, 0))
                if self.state in (B_UNLOCKED, B_UNLOCKING):
                    self._relock_at = now + 1000 * self.relock_delay_s
            else:
                self._events.append((EV_DOOR_OPEN, 0, 0))
                self._open_since = now
                self._alarmed = False
        elif self._door is None and not closed:
            self._open_since = now
        self._door = closed
        if not closed and not self._alarmed and now - self._open_since >= 1000 * self.door_alarm_s:
            self._alarmed = True
            self._events.append((EV_DOOR_LEFT_OPEN, 0, (now - self._open_since) // 1000))
            self._fb = FB_ALARM

    def _motion(self, now, pos, door_closed):
        locking = self.state == B_LOCKING
        if locking and not door_closed:
            # never extend the bolt into an open doorway: retract, relock once closed
            self._start(1, now)
            self._relock_at = now
            return
        target = POS_LOCKED if locking else POS_UNLOCKED
        if pos == target:
            if self._reached is None:
                self._reached = now
            if now - self._reached >= self.settle_ms:
                self.motor = 0
                self.state = B_LOCKED if locking else B_UNLOCKED
                if locking:
                    self._relock_at = None
            return
        self._reached = None
        if now - self._started >= self.motor_timeout_ms:
            self.motor = 0
            self._events.append((EV_JAM, B_LOCKING if locking else B_UNLOCKING, 0))
            self.state = B_JAMMED
            self._jam_pos = pos
            self._fb = FB_ALARM

    def _idle(self, now, pos, door_closed):
        self.motor = 0
        st = self.state
        if st == B_JAMMED and pos == self._jam_pos:
            return  # stays JAMMED (motor off) until a command or the bolt moves by hand
        if st == B_UNKNOWN or st == B_JAMMED:
            # boot, or a jam cleared by hand: follow the switches; an unknown
            # bolt is driven home to LOCKED when the door is closed
            if pos == POS_LOCKED:
                self.state = B_LOCKED
            elif pos == POS_UNLOCKED:
                self.state = B_UNLOCKED
                self._relock_at = now + 1000 * self.unopened_relock_s
            elif st == B_UNKNOWN and door_closed:
                self._start(-1, now)
            return
        if st == B_LOCKED and pos == POS_UNLOCKED:
            # turned by hand from inside: unlocked, and relock as after any unlock
            self.state = B_UNLOCKED
            self._relock_at = now + 1000 * self.unopened_relock_s
        elif st == B_UNLOCKED and pos == POS_LOCKED:
            self.state = B_LOCKED
            self._relock_at = None
        elif st == B_UNLOCKED and self._relock_at is not None and now >= self._relock_at and door_closed:
            self._events.append((EV_AUTO_RELOCK, 0, 0))
            self._start(-1, now)
