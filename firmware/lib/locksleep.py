# The deep-sleep power profile (docs/power.md, "Power profiles"): when a
# battery unit may power down. A pure state machine fed the unit's state on
# every poll; imported only by units in that profile (no heap otherwise).
# due() is True once the bolt is LOCKED and at rest, the motor off, the door
# closed, and quiet: settle_ms since the last change (bolt state, door,
# journal head) and session_ms since the last session started (a phone may
# send its next message up to 30 s later), unless every session that started
# has closed since (the transport closes it when the phone disconnects):
# then settle_ms after the last close. The owner then saves what must
# survive and calls sleep(hw): the board's wake pin (the inside button) and
# its outside wake source (board "wake_outside") boot the unit again.
# An outside wake (docs/power.md, "Waking from outside") holds the unit awake
# for window_ms so a phone can connect; it never moves the bolt. Outside wakes
# without a session are counted in RTC memory (it survives deep sleep; no flash
# write per wake): idle_wakes of them within idle_s mute the outside source for
# mute_s, doubling up to 8 h while no session comes between (rain on the pad,
# a child all afternoon); the unit sleeps on the button and a timer, then arms it again;
# count(), just before the unit sleeps, says so once, for one journal record.
# A session clears both.
import struct

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

# protocol numbers (docs/protocol.md; the same as lockcodes, tests/test_fw_consts.py)
_B_LOCKED = const(1)

_SETTLE_MS = const(3000)
_SESSION_MS = const(35000)  # longer than the protocol's 30 s between a session's messages
_WINDOW_MS = const(30000)   # an outside wake: awake (advertising) this long for a phone
_IDLE_WAKES = const(5)      # outside wakes without a session ...
_IDLE_S = const(600)        # ... within 10 minutes ...
_MUTE_S = const(1800)       # ... mute the outside source for 30 minutes, doubled for each
_MUTE_MAX_S = const(28800)  # further mute without a session in between, up to 8 hours
_MEM_TAG = b"LW"            # RTC memory: tag, u16 wakes, u32 first wake, u32 muted until, u8 strikes


class Sleeper:
    def __init__(self, settle_ms=_SETTLE_MS, session_ms=_SESSION_MS, rtc=None, window_ms=_WINDOW_MS,
                 idle_wakes=_IDLE_WAKES, idle_s=_IDLE_S, mute_s=_MUTE_S):
        self.settle_ms = settle_ms
        self.session_ms = session_ms
        self.window_ms = window_ms
        self.idle_wakes = idle_wakes
        self.idle_s = idle_s
        self.mute_s = mute_s
        self._rtc = rtc
        self.sessions = 0
        self.outside = False  # this boot was an outside wake
        self.wakes = 0     # outside wakes without a session in this count
        self._first = 0    # RTC second of the first of them
        self.muted = 0     # RTC second the outside source is muted until
        self.strikes = 0   # mutes since the last session
        m = rtc.memory() if rtc is not None else b""
        if len(m) == 13 and m[:2] == _MEM_TAG:
            self.wakes, self._first, self.muted, self.strikes = struct.unpack(">2xHIIB", m)
        self._until = 0
        self._state = -1
        self._door = None
        self._head = -1
        self._open = 0

    def _hold(self, until):
        if until > self._until:
            self._until = until

    def _save(self):
        if self._rtc is not None:
            self._rtc.memory(struct.pack(">2sHIIB", _MEM_TAG, self.wakes, self._first, self.muted, self.strikes))

    def woke_outside(self, now):
        # the outside source woke the unit (now: ms since boot): hold the
        # advertising window for a phone
        self.outside = True
        self._hold(now + self.window_ms)

    def count(self, t):
        # before sleeping (t: RTC seconds): an outside wake that saw no session
        # counts; returns the wakes counted when this one mutes the outside
        # source (journal it once), else 0
        if not self.outside or self.sessions:
            return 0
        self.outside = False
        if self.wakes == 0 or not 0 <= t - self._first < self.idle_s:
            self.wakes = 0
            self._first = t
        self.wakes += 1
        n = 0
        if self.wakes >= self.idle_wakes:
            n = self.wakes
            self.wakes = 0
            self.muted = t + min(self.mute_s << self.strikes, _MUTE_MAX_S)
            self.strikes = min(self.strikes + 1, 8)
        self._save()
        return n

    def mute_left(self, t):
        # seconds the outside source stays muted (0: armed); a clock set back ends it
        left = self.muted - t
        return left if 0 < left <= _MUTE_MAX_S else 0

    def opened(self, now):
        # a session started: the outside wakes were wanted
        self._open += 1
        self.sessions += 1
        self._hold(now + self.session_ms)
        if self.wakes or self.muted or self.strikes:
            self.wakes = 0
            self.muted = 0
            self.strikes = 0
            self._save()

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

    def sleep(self, hw, t):
        # deep sleep (never returns): the button always wakes; the outside source
        # unless muted, then a timer wakes the unit when the mute ends
        left = self.mute_left(t)
        hw.sleep(left * 1000, not left)
