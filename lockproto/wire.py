"""Messages of the protocol (§2.1, §4) as frozen dataclasses with ``encode()`` and ``decode()``.

Every ``decode`` raises :class:`~lockproto.errors.ProtocolError` on bad input, and
nothing else, whatever it is given: ``MALFORMED`` for a bad length or field value,
``TOO_LARGE`` over 1024 bytes, ``UNKNOWN_TYPE`` for an unknown type byte,
``UNSUPPORTED_VERSION`` for an unknown ticket format. Every ``encode`` checks the
same rules first (so nothing invalid is ever put on the wire) and raises the same
errors.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Collection, Union

from .codes import (
    AUTH_MIN, DIR_LOCK, DIR_PHONE, ERROR_LEN, HELLO_LEN, HELLO_MAX, LOCK_ID_LEN, MAC_LEN, MAX_MESSAGE,
    NONCE_LEN, OP_MIN, RESULT_MIN, RIGHTS_RESERVED, SKEW, STATE_LEN, TICKET_FORMAT, TICKET_LEN, Bolt, Err,
    MsgType,
)
from .crypto import compare_digest, fmac, sha256
from .errors import ProtocolError

_TICKET = struct.Struct(">B8sIIIIIIBHHBh")
_STATE = struct.Struct(">IBBBHIII")

#: detail of UNSUPPORTED_VERSION for a ticket: the ticket formats read, ``min << 8 | max``
TICKET_FORMATS = (TICKET_FORMAT << 8) | TICKET_FORMAT
#: the one-byte message a serial host sends to ask the lock for a HELLO (§4.1)
HELLO_REQUEST = bytes([MsgType.HELLO])
_ZERO_MAC = bytes(MAC_LEN)


def _need(cond: bool, code: Err = Err.MALFORMED, detail: int = 0) -> None:
    if not cond:
        raise ProtocolError(code, detail)


def _bytes(b: object) -> bytes:
    """Any bytes-like object as bytes; anything else is MALFORMED."""
    if isinstance(b, bytes):
        return b
    if isinstance(b, (bytearray, memoryview)):
        try:
            return bytes(b)
        except (TypeError, ValueError, BufferError) as e:
            raise ProtocolError(Err.MALFORMED) from e
    raise ProtocolError(Err.MALFORMED)


def _uint(v: object, bits: int) -> bool:
    return isinstance(v, int) and 0 <= v < (1 << bits)


def _blob(v: object, n: int | None = None) -> bool:
    return isinstance(v, (bytes, bytearray)) and (n is None or len(v) == n)


def _type(b: object, want: MsgType, lo: int, hi: int = MAX_MESSAGE) -> bytes:
    """Checks shared by every message decoder, in the firmware's order: empty (MALFORMED),
    over 1024 bytes (TOO_LARGE), unknown type (UNKNOWN_TYPE), another type or a length the
    layout does not allow (MALFORMED)."""
    b = _bytes(b)
    _need(len(b) >= 1)
    _need(len(b) <= MAX_MESSAGE, Err.TOO_LARGE)
    _need(b[0] in MsgType._value2member_map_, Err.UNKNOWN_TYPE)
    _need(b[0] == want and lo <= len(b) <= hi)
    return b


def _sized(msg: bytes) -> bytes:
    _need(len(msg) <= MAX_MESSAGE, Err.TOO_LARGE)
    return msg


# ---- tickets (§2) ----

@dataclass(frozen=True)
class Ticket:
    """The 41-byte ticket record of §2.1. Its authenticity comes from ``K_T`` (§2.2), not from a MAC."""

    lock_id: bytes
    epoch: int
    ticket_id: int
    user_id: int
    not_before: int
    not_after: int
    issued_at: int
    rights: int
    win_start: int = 0
    win_end: int = 0
    win_days: int = 0
    tz_offset: int = 0
    format: int = TICKET_FORMAT

    def validate(self) -> None:
        """Raise ProtocolError unless every rule of §2.1 holds (UNSUPPORTED_VERSION for another format)."""
        _need(self.format == TICKET_FORMAT, Err.UNSUPPORTED_VERSION, TICKET_FORMATS)
        _need(_blob(self.lock_id, LOCK_ID_LEN))
        for v in (self.epoch, self.ticket_id, self.user_id, self.not_before, self.not_after, self.issued_at):
            _need(_uint(v, 32))
        _need(self.ticket_id != 0 and self.user_id != 0)
        _need(self.not_before < self.not_after)
        _need(_uint(self.rights, 8) and not self.rights & RIGHTS_RESERVED)
        _need(_uint(self.win_days, 7))  # bit 7 must be 0
        for v in (self.win_start, self.win_end, self.tz_offset):
            _need(isinstance(v, int))
        if self.win_days:
            _need(0 <= self.win_start <= 1439 and 1 <= self.win_end <= 1440)
            _need(-1440 <= self.tz_offset <= 1440)
        else:
            _need(self.win_start == 0 and self.win_end == 0 and self.tz_offset == 0)

    def encode(self) -> bytes:
        self.validate()
        return _TICKET.pack(self.format, bytes(self.lock_id), self.epoch, self.ticket_id, self.user_id,
                            self.not_before, self.not_after, self.issued_at, self.rights,
                            self.win_start, self.win_end, self.win_days, self.tz_offset)

    @classmethod
    def decode(cls, b: bytes) -> "Ticket":
        """Parse and check a ticket; the format byte is checked before the length (§2.1)."""
        b = _bytes(b)
        _need(len(b) >= 1)
        _need(b[0] == TICKET_FORMAT, Err.UNSUPPORTED_VERSION, TICKET_FORMATS)
        _need(len(b) == TICKET_LEN)
        f = _TICKET.unpack(b)
        t = cls(format=f[0], lock_id=f[1], epoch=f[2], ticket_id=f[3], user_id=f[4], not_before=f[5],
                not_after=f[6], issued_at=f[7], rights=f[8], win_start=f[9], win_end=f[10],
                win_days=f[11], tz_offset=f[12])
        t.validate()
        return t

    @property
    def lifetime(self) -> int:
        """``not_after - not_before`` in seconds (§2.5 compares it with MAX_UNCERTAIN_LIFETIME)."""
        return self.not_after - self.not_before

    def in_window(self, now: int) -> bool:
        """§2.4 step 3: is ``now`` (Unix seconds) inside the daily window? Always, when there is none."""
        if not self.win_days:
            return True
        local = now + 60 * self.tz_offset
        day = (local // 86400 + 3) % 7            # 0 = Monday; 1970-01-01 was a Thursday
        minute = (local % 86400) // 60            # Python's // and % round towards minus infinity
        today = bool(self.win_days >> day & 1)
        if self.win_start < self.win_end:
            return today and self.win_start <= minute < self.win_end
        # wraps past midnight (equal start and end: a whole day from win_start)
        started_yesterday = bool(self.win_days >> ((day + 6) % 7) & 1)
        return (today and minute >= self.win_start) or (started_yesterday and minute < self.win_end)

    def check(self, now: int, denied_tickets: Collection[int] = (), denied_users: Collection[int] = ()) -> Err:
        """§2.4 in order: the code a lock answers for this ticket at time ``now`` (``Err.OK`` if valid)."""
        if not self.not_before <= now + SKEW:
            return Err.NOT_YET_VALID
        if not now < self.not_after:
            return Err.EXPIRED
        if not self.in_window(now):
            return Err.OUTSIDE_WINDOW
        if self.ticket_id in denied_tickets or self.user_id in denied_users:
            return Err.REVOKED
        return Err.OK


# ---- HELLO and the state block (§4.1) ----

@dataclass(frozen=True)
class StateBlock:
    """The lock's state (§4.1): in HELLO and as the STATUS payload. 21 bytes."""

    lock_time: int
    flags: int = 0
    bolt: int = Bolt.UNKNOWN
    battery_pct: int = 255
    battery_mv: int = 0
    journal_head: int = 0
    journal_acked: int = 0
    deny_version: int = 0

    def validate(self) -> None:
        """MALFORMED unless every field is in its range (bolt 0..5, battery 0..100 or 255)."""
        for v in (self.lock_time, self.journal_head, self.journal_acked, self.deny_version):
            _need(_uint(v, 32))
        _need(_uint(self.flags, 8) and _uint(self.battery_mv, 16))
        _need(isinstance(self.bolt, int) and self.bolt in Bolt._value2member_map_)
        _need(isinstance(self.battery_pct, int) and (0 <= self.battery_pct <= 100 or self.battery_pct == 255))

    def encode(self) -> bytes:
        self.validate()
        return _STATE.pack(self.lock_time, self.flags, self.bolt, self.battery_pct, self.battery_mv,
                           self.journal_head, self.journal_acked, self.deny_version)

    @classmethod
    def decode(cls, b: bytes) -> "StateBlock":
        b = _bytes(b)
        _need(len(b) == STATE_LEN)
        s = cls(*_STATE.unpack(b))
        s.validate()
        return s


@dataclass(frozen=True)
class Hello:
    """HELLO (§4.1), 55 bytes in v1; a longer one (up to 128) keeps its ``extra`` bytes,
    which a v1 reader ignores but which stay in the transcript hash of AUTH."""

    lock_id: bytes
    epoch: int
    nonce: bytes
    fw: tuple[int, int, int]
    state: StateBlock
    proto_min: int = 1
    proto_max: int = 1
    extra: bytes = b""

    @property
    def nonce_l(self) -> bytes:
        """The lock's nonce ``nonce_L`` (alias of ``nonce``)."""
        return self.nonce

    def validate(self) -> None:
        _need(_blob(self.lock_id, LOCK_ID_LEN) and _uint(self.epoch, 32) and _blob(self.nonce, NONCE_LEN))
        _need(isinstance(self.fw, (tuple, list)) and len(self.fw) == 3 and all(_uint(v, 8) for v in self.fw))
        _need(isinstance(self.state, StateBlock))
        self.state.validate()
        _need(_uint(self.proto_min, 8) and _uint(self.proto_max, 8) and self.proto_min <= self.proto_max)
        _need(_blob(self.extra) and HELLO_LEN + len(self.extra) <= HELLO_MAX)

    def encode(self) -> bytes:
        self.validate()
        return (bytes([MsgType.HELLO, self.proto_min, self.proto_max]) + bytes(self.lock_id)
                + struct.pack(">I", self.epoch) + bytes(self.nonce) + bytes(self.fw) + self.state.encode()
                + bytes(self.extra))

    @classmethod
    def decode(cls, b: bytes) -> "Hello":
        b = _type(b, MsgType.HELLO, HELLO_LEN, HELLO_MAX)
        _need(b[1] <= b[2])
        return cls(proto_min=b[1], proto_max=b[2], lock_id=b[3:11], epoch=struct.unpack(">I", b[11:15])[0],
                   nonce=b[15:31], fw=(b[31], b[32], b[33]), state=StateBlock.decode(b[34:55]), extra=b[55:])


# ---- AUTH, OP, RESULT, ERROR (§4.2 - §4.5) ----

@dataclass(frozen=True)
class Auth:
    """AUTH with the first operation (§4.2). ``ticket`` is the raw 41 bytes (the lock parses it)."""

    version: int
    ticket: bytes
    nonce_p: bytes
    op: int
    args: bytes = b""
    mac: bytes = field(default=_ZERO_MAC, repr=False)

    def validate(self) -> None:
        _need(_uint(self.version, 8) and _blob(self.ticket, TICKET_LEN) and _blob(self.nonce_p, NONCE_LEN))
        _need(_uint(self.op, 8) and _blob(self.args) and _blob(self.mac, MAC_LEN))
        _need(AUTH_MIN + len(self.args) <= MAX_MESSAGE, Err.TOO_LARGE)

    def body(self) -> bytes:
        """``AUTH[:-16]``."""
        self.validate()
        return (bytes([MsgType.AUTH, self.version]) + bytes(self.ticket) + bytes(self.nonce_p)
                + bytes([self.op]) + bytes(self.args))

    def expected_mac(self, k_s: bytes, hello: bytes) -> bytes:
        """``fmac(0x50, 0, SHA256(HELLO) || AUTH[:-16])`` with the exact HELLO bytes of the connection."""
        return fmac(k_s, DIR_PHONE, 0, sha256(bytes(hello)) + self.body())

    def sign(self, k_s: bytes, hello: bytes) -> "Auth":
        return Auth(self.version, self.ticket, self.nonce_p, self.op, self.args, self.expected_mac(k_s, hello))

    def verify(self, k_s: bytes, hello: bytes) -> bool:
        """Constant-time check of ``mac``."""
        return compare_digest(self.expected_mac(k_s, hello), self.mac)

    def encode(self) -> bytes:
        return _sized(self.body() + bytes(self.mac))

    @classmethod
    def decode(cls, b: bytes) -> "Auth":
        b = _type(b, MsgType.AUTH, AUTH_MIN)
        return cls(version=b[1], ticket=b[2:43], nonce_p=b[43:59], op=b[59], args=b[60:-MAC_LEN],
                   mac=b[-MAC_LEN:])


@dataclass(frozen=True)
class OpFrame:
    """OP: a further operation in an established session (§4.3)."""

    ctr: int
    op: int
    args: bytes = b""
    mac: bytes = field(default=_ZERO_MAC, repr=False)

    def validate(self) -> None:
        _need(_uint(self.ctr, 32) and _uint(self.op, 8) and _blob(self.args) and _blob(self.mac, MAC_LEN))
        _need(OP_MIN + len(self.args) <= MAX_MESSAGE, Err.TOO_LARGE)

    def body(self) -> bytes:
        self.validate()
        return struct.pack(">BIB", MsgType.OP, self.ctr, self.op) + bytes(self.args)

    def expected_mac(self, k_s: bytes) -> bytes:
        return fmac(k_s, DIR_PHONE, self.ctr, self.body())

    def sign(self, k_s: bytes) -> "OpFrame":
        return OpFrame(self.ctr, self.op, self.args, self.expected_mac(k_s))

    def verify(self, k_s: bytes) -> bool:
        return compare_digest(self.expected_mac(k_s), self.mac)

    def encode(self) -> bytes:
        return _sized(self.body() + bytes(self.mac))

    @classmethod
    def decode(cls, b: bytes) -> "OpFrame":
        b = _type(b, MsgType.OP, OP_MIN)
        ctr, op = struct.unpack(">IB", b[1:6])
        return cls(ctr=ctr, op=op, args=b[6:-MAC_LEN], mac=b[-MAC_LEN:])


@dataclass(frozen=True)
class Result:
    """RESULT (§4.4). ``status`` is a code of §4.7; the payload is empty unless status is OK."""

    ctr: int
    op: int
    status: int
    payload: bytes = b""
    mac: bytes = field(default=_ZERO_MAC, repr=False)

    def validate(self) -> None:
        _need(_uint(self.ctr, 32) and _uint(self.op, 8) and _blob(self.payload) and _blob(self.mac, MAC_LEN))
        _need(isinstance(self.status, int) and self.status in Err._value2member_map_)
        _need(self.status == Err.OK or not self.payload)
        _need(RESULT_MIN + len(self.payload) <= MAX_MESSAGE, Err.TOO_LARGE)

    def body(self) -> bytes:
        self.validate()
        return struct.pack(">BIBB", MsgType.RESULT, self.ctr, self.op, self.status) + bytes(self.payload)

    def expected_mac(self, k_s: bytes) -> bytes:
        return fmac(k_s, DIR_LOCK, self.ctr, self.body())

    def sign(self, k_s: bytes) -> "Result":
        return Result(self.ctr, self.op, self.status, self.payload, self.expected_mac(k_s))

    def verify(self, k_s: bytes) -> bool:
        return compare_digest(self.expected_mac(k_s), self.mac)

    def encode(self) -> bytes:
        return _sized(self.body() + bytes(self.mac))

    @classmethod
    def decode(cls, b: bytes) -> "Result":
        b = _type(b, MsgType.RESULT, RESULT_MIN)
        ctr, op, status = struct.unpack(">IBB", b[1:7])
        r = cls(ctr=ctr, op=op, status=status, payload=b[7:-MAC_LEN], mac=b[-MAC_LEN:])
        r.validate()
        return r


@dataclass(frozen=True)
class ErrorFrame:
    """ERROR (§4.5): not authenticated; a phone shows it as the lock's claim, not as proof."""

    code: int
    detail: int = 0

    def validate(self) -> None:
        _need(isinstance(self.code, int) and self.code in Err._value2member_map_ and self.code != Err.OK)
        _need(_uint(self.detail, 32))

    def encode(self) -> bytes:
        self.validate()
        return struct.pack(">BBI", MsgType.ERROR, self.code, self.detail)

    @classmethod
    def decode(cls, b: bytes) -> "ErrorFrame":
        b = _type(b, MsgType.ERROR, ERROR_LEN, ERROR_LEN)
        e = cls(code=b[1], detail=struct.unpack(">I", b[2:6])[0])
        e.validate()
        return e

    def error(self) -> ProtocolError:
        """This frame as the exception a caller raises (origin ``"claim"``: an ERROR has no MAC)."""
        return ProtocolError(self.code, self.detail, "claim")


Message = Union[Hello, Auth, Result, OpFrame, ErrorFrame]

_DECODERS: dict[int, type] = {MsgType.HELLO: Hello, MsgType.AUTH: Auth, MsgType.RESULT: Result,
                              MsgType.OP: OpFrame, MsgType.ERROR: ErrorFrame}


def decode_message(b: bytes) -> Message:
    """Decode any message by its type byte (UNKNOWN_TYPE for another type)."""
    b = _bytes(b)
    _need(len(b) >= 1)
    _need(len(b) <= MAX_MESSAGE, Err.TOO_LARGE)
    cls = _DECODERS.get(b[0])
    _need(cls is not None, Err.UNKNOWN_TYPE)
    return cls.decode(b)
