# The one time helper and the lock's clock (docs/protocol.md §2.5, §5.1).
#
# Epochs: MicroPython on the ESP32 counts time.time() from 2000-01-01, the unix
# port (and CPython) from 1970; nothing on the wire uses the 2000 epoch.
# unix_from_device / device_from_unix convert, for this port (DEVICE_EPOCH_YEAR,
# read once at import) or for the epoch_year given.
#
# Clock(source, hwm, power_lost, persist_every_s): `source` is the RTC with
# time() / set_time(t) in Unix seconds (the HAL converts with the helpers
# below). The clock never moves backwards: now() is never below the persisted
# high-water mark `hwm` nor below an earlier reading; a source that jumps back
# is set forward again and the time becomes uncertain (it is only a lower
# bound now). Boot:
#   source < hwm (an ESP32 RTC restarts at 2000-01-01 on power-on) -> resume
#     at hwm (the RTC is set there), uncertain;
#   source >= hwm -> keep the RTC's count (it is then the better lower bound);
#     uncertain if power_lost (power-on, brown-out, hard reset: the RTC may
#     have been reset) or if `uncertain` (the clock was uncertain before the
#     reset: persist the flag with the mark, or a watchdog reset would turn a
#     guessed time into a certain one).
# raise_to(t) raises the lower bound (a verified ticket's issued_at) and stays
# uncertain; set_time(t) (a server time token) moves to max(now, t) and clears
# it. hwm_due(now) / take_hwm() tell the owner when to persist the mark: after
# every raise/set and every persist_every_s, never on every call.
import time

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

EPOCH_2000 = const(946684800)   # 2000-01-01T00:00:00Z in Unix seconds
DEVICE_EPOCH_YEAR = time.gmtime(0)[0]  # a constant of the port, not state
_PERSIST_EVERY_S = const(600)


def _offset(epoch_year):
    if epoch_year is None:
        epoch_year = DEVICE_EPOCH_YEAR
    if epoch_year == 2000:
        return EPOCH_2000
    if epoch_year == 1970:
        return 0
    raise ValueError("epoch")


def unix_from_device(t, epoch_year=None):
    # device seconds (time.time() of the port) -> Unix seconds
    return t + _offset(epoch_year)


def device_from_unix(t, epoch_year=None):
    # Unix seconds -> device seconds (for time.gmtime / machine.RTC on the port)
    return t - _offset(epoch_year)


def unix_time():
    return unix_from_device(int(time.time()))


class Clock:
    def __init__(self, source, hwm=0, power_lost=True, persist_every_s=_PERSIST_EVERY_S,
                 uncertain=False):
        self.source = source
        self.persist_every_s = persist_every_s
        raw = source.time()
        self.uncertain = bool(power_lost or uncertain or raw < hwm)
        if raw < hwm:
            raw = hwm
            source.set_time(hwm)  # count on from the last time known
        self._last = raw          # highest time handed out: never goes back
        self.hwm = hwm            # the mark as last persisted
        self._dirty = raw > hwm   # a mark above the persisted one is worth saving

    def now(self):
        t = self.source.time()
        if t < self._last:
            # the RTC went back: keep counting from where we were, as a lower bound
            t = self._last
            self.source.set_time(t)
            self.uncertain = True
            self._dirty = True
        self._last = t
        return t

    def time_uncertain(self):
        return self.uncertain

    def raise_to(self, t):
        # a verified lower bound of true time; the flag stays as it is
        if t > self.now():
            self.source.set_time(t)
            self._last = t
            self._dirty = True

    def set_time(self, t):
        # a server time token: forward only, and the time is known again -> previous now
        prev = self.now()
        if t > prev:
            self.source.set_time(t)
            self._last = t
        self.uncertain = False
        self._dirty = True
        return prev

    def hwm_due(self, now=None):
        # should the owner persist take_hwm() now?
        if now is None:
            now = self.now()
        return self._dirty or now - self.hwm >= self.persist_every_s

    def take_hwm(self):
        # -> the mark to persist (the owner writes it, with `uncertain`, right away)
        t = self.now()
        self.hwm = t
        self._dirty = False
        return t
