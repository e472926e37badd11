# Rate limiting of failed AUTHs (docs/protocol.md §7), as Matter's door lock
# WrongCodeEntryLimit / UserCodeTemporaryDisableTime. Pure: lock time comes in.
#
# `threshold` failures in a row start a lockout of first_s; when it ends the
# count starts again from zero and the next lockout is twice as long, up to
# cap_s; a success resets both. Failures while locked out are not counted (the
# session refuses those AUTHs before looking at them).
#
# Persistence: state() is (count, until, length) of u32s: failures in a row,
# lock time the current lockout ends, and the length of the last lockout (0:
# none since the last success; the next one is then first_s, else twice it).
# Save it whenever failed() or succeeded() changed it, so a reboot neither ends
# a lockout nor resets the doubling. A clock that resumed from an older
# high-water mark after a power cut could make `until` look further away than
# it was: remaining() never exceeds the lockout's length.
try:
    from micropython import const
except ImportError:
    def const(x):
        return x

_CAP_S = const(3600)
_U32 = const(0xFFFFFFFF)


class Guard:
    def __init__(self, threshold=5, first_s=60, cap_s=_CAP_S):
        self.threshold = threshold
        self.first_s = first_s
        self.cap_s = cap_s
        self.count = 0     # failures in a row since the last lockout or success
        self.until = 0     # lock time when the current lockout ends
        self.length = 0    # length of the last lockout, 0: none since the last success

    def remaining(self, now):
        # -> seconds of lockout left, 0 if none
        left = self.until - now
        if left <= 0:
            return 0
        return left if left < self.length else self.length

    def failed(self, now):
        # counts a failed AUTH -> the lockout length in seconds if this one starts a lockout, else 0
        if self.remaining(now):
            return 0
        self.count += 1
        if self.count < self.threshold:
            return 0
        length = self.first_s if not self.length else self.length * 2
        if length > self.cap_s:
            length = self.cap_s
        self.length = length
        self.until = now + length
        self.count = 0
        return length

    def succeeded(self):
        self.count = 0
        self.length = 0
        self.until = 0

    def state(self):
        return (self.count, self.until, self.length)

    def restore(self, state):
        count, until, length = state
        for v in state:
            if not isinstance(v, int) or not 0 <= v <= _U32:
                raise ValueError("guard state")
        self.count = count
        self.until = until
        self.length = length if length < self.cap_s else self.cap_s
