# Rate limiting of failed AUTHs (docs/protocol.md §7), as in Matter's
# WrongCodeEntryLimit / UserCodeTemporaryDisableTime. Pure: time comes in.
try:
    from micropython import const
except ImportError:
    def const(x):
        return x

_CAP_S = const(3600)


class Guard:
    def __init__(self, threshold=5, first_s=60, cap_s=_CAP_S):
        self.threshold = threshold
        self.first_s = first_s
        self.cap_s = cap_s
        self.count = 0      # consecutive failures since the last lockout or success
        self.until = 0      # lock time when the current lockout ends
        self.next_s = 0     # length of the next lockout (0: first_s)

    def remaining(self, now):
        return self.until - now if self.until > now else 0

    def failed(self, now):
        # -> seconds of the lockout this failure starts, else 0
        self.count += 1
        if self.count < self.threshold:
            return 0
        length = min(self.next_s or self.first_s, self.cap_s)
        self.until = now + length
        self.next_s = min(length * 2, self.cap_s)
        self.count = 0
        return length

    def succeeded(self):
        self.count = 0
        self.next_s = 0

    # persisted so that a reboot neither ends a lockout nor resets the doubling
    def state(self):
        return (self.count, self.until, self.next_s)

    def restore(self, state):
        self.count, self.until, self.next_s = state
