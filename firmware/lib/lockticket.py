# Tickets (docs/protocol.md §2): the 41-byte record, its rules and validity at the lock.
import struct
from lockwire import ProtoError

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

# protocol numbers (docs/protocol.md; the same as lockcodes, tests/test_fw_consts.py)
_TICKET_FORMAT = const(1)
_TICKET_LEN = const(41)
_R_RESERVED = const(0xF0)
_SKEW = const(60)
_E_OK = const(0)
_E_MALFORMED = const(1)
_E_UNSUPPORTED_VERSION = const(2)
_E_NOT_YET_VALID = const(10)
_E_EXPIRED = const(11)
_E_OUTSIDE_WINDOW = const(12)
_E_REVOKED = const(13)

_FMT = ">B8sIIIIIIBHHBh"
_DAY = 86400
# detail of UNSUPPORTED_VERSION for a ticket: the formats spoken, min << 8 | max
_FORMATS = (_TICKET_FORMAT << 8) | _TICKET_FORMAT


class Ticket:
    # Parsed fields; `raw` is the exact 41 bytes (K_T is computed over them).
    def __init__(self, raw):
        (self.format, self.lock_id, self.epoch, self.ticket_id, self.user_id,
         self.not_before, self.not_after, self.issued_at, self.rights,
         self.win_start, self.win_end, self.win_days, self.tz_offset) = struct.unpack(_FMT, raw)
        self.raw = raw

    def __repr__(self):
        return "<Ticket %d user %d>" % (self.ticket_id, self.user_id)


def parse_ticket(b):
    # §2.1: every rule, else ProtoError MALFORMED (UNSUPPORTED_VERSION for another format).
    try:
        b = bytes(memoryview(b))
    except Exception:
        raise ProtoError(_E_MALFORMED)
    if not b:
        raise ProtoError(_E_MALFORMED)
    if b[0] != _TICKET_FORMAT:
        raise ProtoError(_E_UNSUPPORTED_VERSION, _FORMATS)
    if len(b) != _TICKET_LEN:
        raise ProtoError(_E_MALFORMED)
    t = Ticket(b)
    ok = (t.ticket_id != 0 and t.user_id != 0 and t.not_before < t.not_after
          and not (t.rights & _R_RESERVED) and not (t.win_days & 0x80))
    if t.win_days == 0:
        ok = ok and t.win_start == 0 and t.win_end == 0 and t.tz_offset == 0
    else:
        ok = (ok and t.win_start <= 1439 and 1 <= t.win_end <= 1440
              and -1440 <= t.tz_offset <= 1440)
    if not ok:
        raise ProtoError(_E_MALFORMED)
    return t


def lifetime(t):
    return t.not_after - t.not_before


def in_window(t, now):
    # §2.4 step 3. Python's // and % round towards minus infinity, as the spec's div/mod.
    if t.win_days == 0:
        return True
    local = now + 60 * t.tz_offset
    day = ((local // _DAY) + 3) % 7
    minute = (local % _DAY) // 60
    days = t.win_days
    if t.win_start < t.win_end:
        return bool(days & (1 << day)) and t.win_start <= minute < t.win_end
    # wraps past midnight (equal: a whole day from win_start)
    if days & (1 << day) and minute >= t.win_start:
        return True
    return bool(days & (1 << ((day + 6) % 7))) and minute < t.win_end


def check_validity(t, now, is_denied):
    # §2.4 steps 1-4 in order; returns _E_OK or the first failing code.
    if not t.not_before <= now + _SKEW:
        return _E_NOT_YET_VALID
    if not now < t.not_after:
        return _E_EXPIRED
    if not in_window(t, now):
        return _E_OUTSIDE_WINDOW
    if is_denied(t.ticket_id, t.user_id):
        return _E_REVOKED
    return _E_OK
