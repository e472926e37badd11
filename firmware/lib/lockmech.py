# The bolt mechanism as a pure state machine (bolt states B_* of lockcodes).
# Values in: update(now_ms, bolt_pos, door_closed, button) with monotonic
# milliseconds, the limit switches (POS_*), the raw door contact and one
# debounced press of the inside button; command(op, now_ms) for a phone's
# UNLOCK / LOCK. Values out: `motor` (-1 toward locked, 0 off, +1 toward
# unlocked), `state`, events() for the journal, `feedback` (FB_*) for the
# buzzer/LED. No I/O here.
#
# Rules (docs/architecture.md, "The mechanism"):
# - A motion runs until its switch closes, settle_ms more to seat the bolt,
#   but never past motor_timeout_ms: no switch by then is a jam (JAMMED,
#   _EV_JAM with the motion state and the switch reading, motor off).
# - The bolt is never driven out while the door is open: a lock waits for
#   the door to close (raw contact and debounced state both closed), and a
#   door opening during LOCKING retracts the bolt and relocks after closing.
# - Auto relock: every way into UNLOCKED (phone, button, thumb-turn) arms a
#   relock; the door opening disarms it, closing re-arms it for relock_delay_s;
#   an unlocked door that is never opened relocks after unopened_relock_s.
#   UNKNOWN (boot with the bolt between the switches, or the switches lost
#   while idle) relocks the same way: a lock falls back to LOCKED.
# - JAMMED: LOCK is always attempted; UNLOCK is attempted while the jams in a
#   row are at most jam_retries, then _E_MECHANISM. A jam also arms a relock
#   attempt (relock_delay_s, door closed) while jams <= jam_retries. Any
#   completed motion or a new switch reading (someone moved the bolt) clears it.
# - An opposite command during a motion is _E_BUSY; the inside button always
#   works, reversing a motion if need be (it is inside the home). From JAMMED or
#   UNKNOWN the button locks a bolt that reads UNLOCKED, else unlocks (egress).
# - Idle disagreement with the switches (thumb-turn): the switch wins, journaled
#   as _EV_UNLOCK / _EV_LOCK with no user; a relock is armed as after any unlock.
#   Neither switch for _POS_LOST_MS while idle: UNKNOWN.

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

# protocol numbers (docs/protocol.md; the same as lockcodes, tests/test_fw_consts.py)
_B_UNKNOWN = const(0)
_B_LOCKED = const(1)
_B_UNLOCKING = const(2)
_B_UNLOCKED = const(3)
_B_LOCKING = const(4)
_B_JAMMED = const(5)
_OP_UNLOCK = const(1)
_OP_LOCK = const(2)
_E_OK = const(0)
_E_BUSY = const(28)
_E_MECHANISM = const(23)
_E_UNKNOWN_OP = const(4)
_EV_JAM = const(0x09)
_EV_AUTO_RELOCK = const(0x07)
_EV_BUTTON = const(0x08)
_EV_DOOR_OPEN = const(0x05)
_EV_DOOR_CLOSED = const(0x06)
_EV_DOOR_LEFT_OPEN = const(0x12)
_EV_UNLOCK = const(0x02)
_EV_LOCK = const(0x03)

# bolt switch reading (the values of lockhal.Bolt.position())
POS_UNKNOWN = const(0)
POS_LOCKED = const(1)
POS_UNLOCKED = const(2)
# feedback for the buzzer/LED: the values of lockhal SIG_*, so the owner can
# pass them to Indicator.signal(); a jam sounds the alarm until the HAL has a
# pattern of its own for it (then FB_JAM takes that code)
FB_NONE = const(0)
FB_OK = const(2)
FB_DENIED = const(3)
FB_ALARM = const(4)
FB_JAM = const(4)

_POS_LOST_MS = const(2000)     # idle without either switch this long: UNKNOWN
_CLOSE_SETTLE_MS = const(1000) # a LOCK that waited for the door: this long after it closes
_MAX_EVENTS = const(16)        # the owner drains events() every poll; a bound, not a queue
_RANK = b"\x00\x00\x01\x02\x03\x00\x04"  # feedback priority by code: jam, alarm > denied > ok


class Mechanism:
    def __init__(self, relock_delay_s=5, door_alarm_s=120, motor_timeout_ms=1500, settle_ms=100,
                 unopened_relock_s=30, jam_retries=1, door_debounce_ms=50):
        self.relock_delay_s = relock_delay_s
        self.door_alarm_s = door_alarm_s
        self.motor_timeout_ms = motor_timeout_ms
        self.settle_ms = settle_ms
        self.unopened_relock_s = unopened_relock_s
        self.jam_retries = jam_retries
        self.door_debounce_ms = door_debounce_ms
        self.state = _B_UNKNOWN
        self.motor = 0
        self.feedback = FB_NONE
        self.door_closed = None  # debounced door contact; None before the first update
        self.jams = 0            # jams in a row since the last completed motion
        self._raw = None         # last raw door reading
        self._diff_t = None      # since when the raw reading differs from door_closed
        self._open_t = 0         # when the door opened (left-open alarm)
        self._alarmed = False
        self._t0 = 0             # start of the current motion
        self._hit = None         # when the target switch closed (settling)
        self._relock = None      # ms deadline of the automatic lock, None: not armed
        self._quick = False      # a LOCK waits for the door: lock soon after it closes
        self._lost = None        # idle, neither switch since then
        self._jam_pos = POS_UNKNOWN  # switch reading while JAMMED
        self._known = None       # last definite state (_B_LOCKED / _B_UNLOCKED), None at boot
        self._ev = []

    def set_config(self, relock_delay_s=None, door_alarm_s=None, unopened_relock_s=None):
        if relock_delay_s is not None:
            self.relock_delay_s = relock_delay_s
        if door_alarm_s is not None:
            self.door_alarm_s = door_alarm_s
        if unopened_relock_s is not None:
            self.unopened_relock_s = unopened_relock_s

    # ---- outputs ----

    def events(self):
        # -> [(event, arg16, arg)] since the last call
        ev = self._ev
        self._ev = []
        return ev

    def take_feedback(self):
        fb = self.feedback
        self.feedback = FB_NONE
        return fb

    def _event(self, event, arg16=0, arg=0):
        if len(self._ev) < _MAX_EVENTS:
            self._ev.append((event, arg16, arg))

    def _signal(self, fb):
        if _RANK[fb] > _RANK[self.feedback]:
            self.feedback = fb

    # ---- inputs ----

    def command(self, op, now):
        # a phone's _OP_UNLOCK / _OP_LOCK -> status; _E_OK once the motion runs (or
        # the bolt is there already, or a LOCK waits for the door to close)
        status = self._go(op, now, False)
        if status != _E_OK:
            self._signal(FB_DENIED)
        return status

    def update(self, now, pos, door_closed, button):
        door_closed = bool(door_closed)
        self._door(now, door_closed)
        if button:
            st = self.state
            if st == _B_UNLOCKED or st == _B_UNLOCKING:
                op = _OP_LOCK
            elif st == _B_LOCKED or st == _B_LOCKING:
                op = _OP_UNLOCK
            else:
                op = _OP_LOCK if pos == POS_UNLOCKED else _OP_UNLOCK
            self._event(_EV_BUTTON, _B_LOCKED if op == _OP_LOCK else _B_UNLOCKED)
            self._go(op, now, True)
        if self.state == _B_LOCKING or self.state == _B_UNLOCKING:
            self._motion(now, pos)
        else:
            self._idle(now, pos)

    # ---- the machine ----

    def _closed(self):
        # the door is closed by both the raw contact and its debounced state
        return self._raw is True and self.door_closed is True

    def _arm(self, now, delay_ms):
        self._relock = now + delay_ms if self._closed() else None

    def _go(self, op, now, button):
        st = self.state
        if op == _OP_UNLOCK:
            if not button:
                if st == _B_LOCKING:
                    return _E_BUSY
                if st == _B_JAMMED and self.jams > self.jam_retries:
                    return _E_MECHANISM
            self._quick = False
            self._arm(now, 1000 * self.unopened_relock_s)
            if st != _B_UNLOCKED and st != _B_UNLOCKING:
                self._start(1, now)
            return _E_OK
        if op == _OP_LOCK:
            if st == _B_UNLOCKING and not button:
                return _E_BUSY
            if st == _B_LOCKED or st == _B_LOCKING:
                return _E_OK
            if not self._closed():
                self._quick = True  # locks once the door has closed
                return _E_OK
            self._start(-1, now)
            return _E_OK
        return _E_UNKNOWN_OP

    def _start(self, direction, now):
        self.state = _B_UNLOCKING if direction > 0 else _B_LOCKING
        self.motor = direction
        self._t0 = now
        self._hit = None
        self._lost = None

    def _door(self, now, raw):
        self._raw = raw
        if self.door_closed is None:
            # first reading: taken as it is (no event); an unknown bolt behind a
            # closed door relocks like an unopened unlocked one
            self.door_closed = raw
            self._open_t = now
            self._arm(now, 1000 * self.unopened_relock_s)
        elif raw == self.door_closed:
            self._diff_t = None
        else:
            if self._diff_t is None:
                self._diff_t = now
            if now - self._diff_t >= self.door_debounce_ms:
                self.door_closed = raw
                if raw:
                    self._event(_EV_DOOR_CLOSED)
                    if self.state != _B_LOCKED and self.state != _B_LOCKING:
                        delay = 1000 * self.relock_delay_s
                        if self._quick and delay > _CLOSE_SETTLE_MS:
                            delay = _CLOSE_SETTLE_MS
                        self._relock = now + delay
                    self._quick = False
                else:
                    self._event(_EV_DOOR_OPEN)
                    self._open_t = self._diff_t
                    self._alarmed = False
                    self._relock = None
                self._diff_t = None
        if self.door_closed is False and not self._alarmed and now - self._open_t >= 1000 * self.door_alarm_s:
            self._alarmed = True
            self._event(_EV_DOOR_LEFT_OPEN, 0, (now - self._open_t) // 1000)
            self._signal(FB_ALARM)

    def _motion(self, now, pos):
        locking = self.state == _B_LOCKING
        if locking and not self._closed():
            # the door opened under a moving bolt: pull it back in; the door
            # closing re-arms the relock (a contact glitch: relock_delay_s)
            self._start(1, now)
            self._relock = now + 1000 * self.relock_delay_s if self.door_closed else None
            return
        if pos == (POS_LOCKED if locking else POS_UNLOCKED):
            if self._hit is None:
                self._hit = now
            if now - self._hit >= self.settle_ms or now - self._t0 >= self.motor_timeout_ms:
                self._done(now, _B_LOCKED if locking else _B_UNLOCKED)
            return
        self._hit = None
        if now - self._t0 >= self.motor_timeout_ms:
            self.motor = 0
            self._event(_EV_JAM, self.state, pos)
            self.state = _B_JAMMED
            self.jams += 1
            self._jam_pos = pos
            self._signal(FB_JAM)
            if self.jams <= self.jam_retries:
                self._arm(now, 1000 * self.relock_delay_s)
            else:
                self._relock = None  # given up: a command, the button or the door re-arms

    def _done(self, now, st):
        self.motor = 0
        self._settle(now, st)
        self._signal(FB_OK)

    def _settle(self, now, st):
        # the bolt is known at st (_B_LOCKED / _B_UNLOCKED)
        self.state = st
        self._known = st
        self.jams = 0
        self._lost = None
        if st == _B_LOCKED:
            self._relock = None
            self._quick = False
        elif self._relock is None:
            self._arm(now, 1000 * self.unopened_relock_s)

    def _idle(self, now, pos):
        self.motor = 0
        st = self.state
        if pos != POS_UNKNOWN:
            self._lost = None
            want = _B_LOCKED if pos == POS_LOCKED else _B_UNLOCKED
            if st != want and not (st == _B_JAMMED and pos == self._jam_pos):
                if self._known is not None and want != self._known:
                    # moved by hand (thumb-turn): no user
                    self._event(_EV_LOCK if want == _B_LOCKED else _EV_UNLOCK)
                if want == _B_UNLOCKED:
                    self._arm(now, 1000 * self.unopened_relock_s)
                self._settle(now, want)
        elif st == _B_LOCKED or st == _B_UNLOCKED:
            if self._lost is None:
                self._lost = now
            elif now - self._lost >= _POS_LOST_MS:
                self.state = _B_UNKNOWN
                self._lost = None
                if self._relock is None:
                    self._arm(now, 1000 * self.unopened_relock_s)
        st = self.state
        if st == _B_JAMMED:
            self._jam_pos = pos
        elif st != _B_LOCKED and self._closed():
            # the door is closed but no closing was seen (a contact glitch shorter
            # than the debounce): a LOCK waiting for it goes now, and a relock is
            # always armed behind a closed door
            if self._quick:
                self._quick = False
                if self._relock is None or self._relock > now + _CLOSE_SETTLE_MS:
                    self._relock = now + _CLOSE_SETTLE_MS
            elif self._relock is None:
                self._arm(now, 1000 * self.unopened_relock_s)
        if (st != _B_LOCKED and self._relock is not None and now >= self._relock and self._closed()):
            self._event(_EV_AUTO_RELOCK)
            self._start(-1, now)
