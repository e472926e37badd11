# The lock's clock (docs/protocol.md §2.5, §5.1). The RTC comes in as `source`
# (time() / set_time(t) in Unix seconds: the HAL's Rtc is the one place that
# converts the ESP32's 2000 epoch). The clock never moves backwards: it never
# reads below the persisted high-water mark or below an earlier reading. After
# a power loss (or an RTC found below the mark) it is "time uncertain" and
# counts on from the mark until a server time token arrives.
try:
    from micropython import const
except ImportError:
    def const(x):
        return x

_PERSIST_EVERY_S = const(600)


class Clock:
    def __init__(self, source, hwm=0, power_lost=True, persist_every_s=_PERSIST_EVERY_S):
        self.source = source
        self.persist_every_s = persist_every_s
        raw = source.time()
        self.uncertain = power_lost or raw < hwm
        if raw < hwm:
            source.set_time(hwm)  # count on from the last time we knew
        self._last = max(raw, hwm)
        self._saved = hwm
        self._dirty = False

    def now(self):
        t = self.source.time()
        if t < self._last:
            t = self._last  # the RTC jumped back: hold until it catches up
        self._last = t
        return t

    def time_uncertain(self):
        return self.uncertain

    def raise_to(self, t):
        # a verified lower bound of true time (a ticket's issued_at); stays uncertain
        if t > self.now():
            self.source.set_time(t)
            self._last = t
            self._dirty = True

    def set_time(self, t):
        # a server time token: forward only, and the time is known again
        prev = self.now()
        if t > prev:
            self.source.set_time(t)
            self._last = t
        self.uncertain = False
        self._dirty = True
        return prev

    def hwm_due(self, now):
        # should the owner persist the high-water mark now? (bounded flash writes)
        return self._dirty or now - self._saved >= self.persist_every_s

    def take_hwm(self):
        t = self.now()
        self._saved = t
        self._dirty = False
        return t
