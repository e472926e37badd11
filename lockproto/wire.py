"""Messages of the protocol (§2.1, §4) as dataclasses with ``encode()`` and ``decode()``.

Every ``decode`` raises :class:`~lockproto.errors.ProtocolError` on bad input and
nothing else, whatever bytes it is given.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from .codes import (
    HELLO_LEN, HELLO_MAX, MAC_LEN, MAX_MESSAGE, NONCE_LEN, RIGHTS_RESERVED, SKEW, STATE_LEN,
    TICKET_FORMAT, TICKET_LEN, DenyKind, Err, MsgType,
)
from .errors import ProtocolError

_TICKET = struct.Struct(">B8sIIIIIIBHHBh")
_STATE = struct.Struct(">IBBBHIII")


def _need(cond: bool, code: Err = Err.MALFORMED, detail: int = 0) -> None:
    if not cond:
        raise ProtocolError(code, detail)


def _type(b: bytes, want: MsgType, lo: int, hi: int = MAX_MESSAGE) -> bytes:
    b = bytes(b)
    _need(len(b) >= 1)
    _need(len(b) <= MAX_MESSAGE, Err.TOO_LARGE)
    _need(b[0] == want, Err.UNKNOWN_TYPE if b[0] not in MsgType._value2member_map_ else Err.MALFORMED)
    _need(lo <= len(b) <= hi)
    return b


@dataclass(frozen=True)
class Ticket:
    """The 41-byte ticket record of §2.1."""

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

    def encode(self) -> bytes:
        self.validate()
        return _TICKET.pack(self.format, self.lock_id, self.epoch, self.ticket_id, self.user_id,
                            self.not_before, self.not_after, self.issued_at, self.rights,
                            self.win_start, self.win_end, self.win_days, self.tz_offset)

    def validate(self) -> None:
        """Raise ProtocolError unless every rule of §2.1 holds."""
        _need(self.format == TICKET_FORMAT, Err.UNSUPPORTED_VERSION, (TICKET_FORMAT << 8) | TICKET_FORMAT)
        _need(isinstance(self.lock_id, bytes) and len(self.lock_id) == 8)
        for v in (self.epoch, self.ticket_id, self.user_id, self.not_before, self.not_after, self.issued_at):
            _need(0 <= v < 2**32)
        _need(self.ticket_id != 0 and self.user_id != 0)
        _need(self.not_before < self.not_after)
        _need(0 <= self.rights <= 0xFF and not self.rights & RIGHTS_RESERVED)
        _need(0 <= self.win_days <= 0x7F)
        if self.win_days:
            _need(0 <= self.win_start <= 1439 and 1 <= self.win_end <= 1440)
            _need(-1440 <= self.tz_offset <= 1440)
        else:
            _need(self.win_start == 0 and self.win_end == 0 and self.tz_offset == 0)

    @classmethod
    def decode(cls, b: bytes) -> "Ticket":
        b = bytes(b)
        _need(len(b) >= 1)
        _need(b[0] == TICKET_FORMAT, Err.UNSUPPORTED_VERSION, (TICKET_FORMAT << 8) | TICKET_FORMAT)
        _need(len(b) == TICKET_LEN)
        f = _TICKET.unpack(b)
        t = cls(format=f[0], lock_id=f[1], epoch=f[2], ticket_id=f[3], user_id=f[4], not_before=f[5],
                not_after=f[6], issued_at=f[7], rights=f[8], win_start=f[9], win_end=f[10],
                win_days=f[11], tz_offset=f[12])
        t.validate()
        return t

    @property
    def lifetime(self) -> int:
        return self.not_after - self.not_before

    def in_window(self, now: int) -> bool:
        """§2.4 step 3: is ``now`` inside the daily window (always, when there is none)?"""
        if not self.win_days:
            return True
        local = now + 60 * self.tz_offset
        day = (local // 86400 + 3) % 7
        minute = (local % 86400) // 60
        today = bool(self.win_days >> day & 1)
        if self.win_start < self.win_end:
            return today and self.win_start <= minute < self.win_end
        yesterday = bool(self.win_days >> ((day + 6) % 7) & 1)
        return (today and minute >= self.win_start) or (yesterday and minute < self.win_end)

    def check(self, now: int, denied_tickets=(), denied_users=()) -> Err:
        """§2.4: the code the lock answers for this ticket at time ``now``."""
        if self.not_before > now + SKEW:
            return Err.NOT_YET_VALID
        if now >= self.not_after:
            return Err.EXPIRED
        if not self.in_window(now):
            return Err.OUTSIDE_WINDOW
        if self.ticket_id in denied_tickets or self.user_id in denied_users:
            return Err.REVOKED
        return Err.OK


@dataclass(frozen=True)
class StateBlock:
    """The lock's state (§4.1), in HELLO and as the STATUS payload."""

    lock_time: int
    flags: int = 0
    bolt: int = 0
    battery_pct: int = 255
    battery_mv: int = 0
    journal_head: int = 0
    journal_acked: int = 0
    deny_version: int = 0

    def encode(self) -> bytes:
        return _STATE.pack(self.lock_time, self.flags, self.bolt, self.battery_pct, self.battery_mv,
                           self.journal_head, self.journal_acked, self.deny_version)

    @classmethod
    def decode(cls, b: bytes) -> "StateBlock":
        _need(len(b) == STATE_LEN)
        return cls(*_STATE.unpack(bytes(b)))


@dataclass(frozen=True)
class Hello:
    lock_id: bytes
    epoch: int
    nonce: bytes
    fw: tuple[int, int, int]
    state: StateBlock
    proto_min: int = 1
    proto_max: int = 1
    extra: bytes = b""

    def encode(self) -> bytes:
        return (bytes([MsgType.HELLO, self.proto_min, self.proto_max]) + self.lock_id + struct.pack(">I", self.epoch)
                + self.nonce + bytes(self.fw) + self.state.encode() + self.extra)

    @classmethod
    def decode(cls, b: bytes) -> "Hello":
        b = _type(b, MsgType.HELLO, HELLO_LEN, HELLO_MAX)
        _need(1 <= b[1] <= b[2])
        return cls(proto_min=b[1], proto_max=b[2], lock_id=b[3:11], epoch=struct.unpack(">I", b[11:15])[0],
                   nonce=b[15:31], fw=tuple(b[31:34]), state=StateBlock.decode(b[34:55]), extra=b[55:])


@dataclass(frozen=True)
class Auth:
    version: int
    ticket: bytes
    nonce_p: bytes
    op: int
    args: bytes = b""
    mac: bytes = field(default=b"\x00" * MAC_LEN, repr=False)

    def body(self) -> bytes:
        return bytes([MsgType.AUTH, self.version]) + self.ticket + self.nonce_p + bytes([self.op]) + self.args

    def encode(self) -> bytes:
        return self.body() + self.mac

    @classmethod
    def decode(cls, b: bytes) -> "Auth":
        b = _type(b, MsgType.AUTH, 2 + TICKET_LEN + NONCE_LEN + 1 + MAC_LEN)
        return cls(version=b[1], ticket=b[2:43], nonce_p=b[43:59], op=b[59], args=b[60:-16], mac=b[-16:])


@dataclass(frozen=True)
class OpFrame:
    ctr: int
    op: int
    args: bytes = b""
    mac: bytes = field(default=b"\x00" * MAC_LEN, repr=False)

    def body(self) -> bytes:
        return bytes([MsgType.OP]) + struct.pack(">IB", self.ctr, self.op) + self.args

    def encode(self) -> bytes:
        return self.body() + self.mac

    @classmethod
    def decode(cls, b: bytes) -> "OpFrame":
        b = _type(b, MsgType.OP, 6 + MAC_LEN)
        ctr, op = struct.unpack(">IB", b[1:6])
        return cls(ctr=ctr, op=op, args=b[6:-16], mac=b[-16:])


@dataclass(frozen=True)
class Result:
    ctr: int
    op: int
    status: int
    payload: bytes = b""
    mac: bytes = field(default=b"\x00" * MAC_LEN, repr=False)

    def body(self) -> bytes:
        return bytes([MsgType.RESULT]) + struct.pack(">IBB", self.ctr, self.op, self.status) + self.payload

    def encode(self) -> bytes:
        return self.body() + self.mac

    @classmethod
    def decode(cls, b: bytes) -> "Result":
        b = _type(b, MsgType.RESULT, 7 + MAC_LEN)
        ctr, op, status = struct.unpack(">IBB", b[1:7])
        _need(status in Err._value2member_map_)
        _need(status == Err.OK or len(b) == 7 + MAC_LEN)
        return cls(ctr=ctr, op=op, status=status, payload=b[7:-16], mac=b[-16:])


@dataclass(frozen=True)
class ErrorFrame:
    code: int
    detail: int = 0

    def encode(self) -> bytes:
        return bytes([MsgType.ERROR, self.code]) + struct.pack(">I", self.detail)

    @classmethod
    def decode(cls, b: bytes) -> "ErrorFrame":
        b = _type(b, MsgType.ERROR, 6, 6)
        _need(b[1] in Err._value2member_map_ and b[1] != Err.OK)
        return cls(code=b[1], detail=struct.unpack(">I", b[2:6])[0])


_DECODERS = {MsgType.HELLO: Hello, MsgType.AUTH: Auth, MsgType.RESULT: Result, MsgType.OP: OpFrame,
             MsgType.ERROR: ErrorFrame}


def decode_message(b: bytes):
    """Decode any message by its type byte."""
    _need(len(b) >= 1)
    _need(len(b) <= MAX_MESSAGE, Err.TOO_LARGE)
    cls = _DECODERS.get(b[0])
    _need(cls is not None, Err.UNKNOWN_TYPE)
    return cls.decode(b)


def decode_deny_entries(count: int, body: bytes) -> list[tuple[int, int, int]]:
    """Entries of a deny list body (kind, id, expires); MALFORMED on an unknown kind."""
    out = []
    for i in range(count):
        kind, ident, expires = struct.unpack(">BII", body[9 * i:9 * i + 9])
        _need(kind in DenyKind._value2member_map_)
        out.append((kind, ident, expires))
    return out
