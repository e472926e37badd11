"""Deterministic protocol test vectors made by the host side (``make vectors``).

``python -m lockproto.vectors tests/vectors`` (or the ``lockproto-vectors`` console
script) writes ``tests/vectors/protocol.json``. Every input is fixed (masters,
lock ids, nonces, times), so running it twice gives identical bytes; the test
suite checks that the committed file is current. The firmware checks the file byte
for byte under the real MicroPython interpreter (tests/test_xcheck.py).

All bytes are lowercase hex strings. Each ``sessions`` case is one connection with
one AUTH and the exact answer a lock in the stated state must give (``response``),
and whether the motor runs (``actuate``). ``ops`` cases are longer connections
(``messages`` = AUTH then OPs, ``responses``, ``actuate`` per message). The lock of
a case reports the fixed ``state_block`` (in HELLO and for STATUS), and reports the
bolt as ``UNLOCKING`` (``LOCKING``) right after it accepts an UNLOCK (LOCK): the motor
has started.
"""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

from .advert import Advert, scan_response
from .codes import MAX_MESSAGE, Bolt, ConfigKey, DenyKind, Err, Event, Flag, Op, Right
from .crypto import LABELS, LockKeys, aes_key_wrap, derive, mac16, sha256, u32
from .errors import ProtocolError
from .fragment import encode_frame, fragment
from .issuer import deny_list, issue_ticket, journal_ack, rekey_message, rekey_proof, time_token
from .journal import Record, chain_genesis, make_export_chunk, seal
from .phone import PhoneSession, lock_result
from .wire import TICKET_FORMATS, Auth, ErrorFrame, Hello, OpFrame, StateBlock, Ticket

__all__ = ["generate", "render", "main"]

MASTER = bytes(range(32))
MASTER_B = bytes(range(0x40, 0x60))
MASTER_2 = bytes(range(0x80, 0xA0))
LOCK_ID = bytes.fromhex("4c4b000000000001")
LOCK_B = bytes.fromhex("4c4b000000000002")
NOW = 1_767_225_600  # 2026-01-01 00:00:00 UTC, a Thursday
NONCE_L = bytes.fromhex("a0a1a2a3a4a5a6a7a8a9aaabacadaeaf")
NONCE_P = bytes.fromhex("b0b1b2b3b4b5b6b7b8b9babbbcbdbebf")
FW = (0, 1, 0)
STATE = StateBlock(lock_time=NOW, flags=0, bolt=Bolt.LOCKED, battery_pct=80, battery_mv=5600,
                   journal_head=12, journal_acked=4, deny_version=3)
SHIFT = dict(ticket_id=1001, user_id=501, not_before=NOW - 3600, not_after=NOW + 7 * 3600,
             issued_at=NOW - 3600, rights=Right.UNLOCK | Right.LOCK)
ALL_RIGHTS = Right.UNLOCK | Right.LOCK | Right.JOURNAL | Right.ADMIN
HOUR = 3600
DAY = 86400


def h(b: bytes) -> str:
    return bytes(b).hex()


def _u8(v: int) -> bytes:
    return bytes([v])


def _ticket_fields(t: Ticket) -> dict:
    return {"format": t.format, "lock_id": h(t.lock_id), "epoch": t.epoch, "ticket_id": t.ticket_id,
            "user_id": t.user_id, "not_before": t.not_before, "not_after": t.not_after,
            "issued_at": t.issued_at, "rights": int(t.rights), "win_start": t.win_start, "win_end": t.win_end,
            "win_days": t.win_days, "tz_offset": t.tz_offset}


# ---- keys and tickets ----

def derive_vectors() -> list[dict]:
    out = []
    for master, lock_id, epoch in ((MASTER, LOCK_ID, 1), (MASTER, LOCK_ID, 2), (MASTER_B, LOCK_B, 7),
                                   (MASTER_2, LOCK_ID, 0xFFFFFFFF)):
        out.append({"master": h(master), "lock_id": h(lock_id), "epoch": epoch,
                    "keys": {v: h(derive(master, v, lock_id, epoch)) for v in LABELS.values()}})
    return out


def ticket_vectors() -> list[dict]:
    keys = LockKeys.from_master(MASTER, LOCK_ID, 1)
    cases = [
        SHIFT,
        dict(SHIFT, ticket_id=1002, rights=ALL_RIGHTS),
        # a window ticket: weekdays 07:00-15:00 at UTC+1
        dict(SHIFT, ticket_id=1003, win_start=7 * 60, win_end=15 * 60, win_days=0x1F, tz_offset=60),
        # a night window wrapping past midnight at a negative offset (UTC-5)
        dict(SHIFT, ticket_id=1004, win_start=22 * 60, win_end=6 * 60, win_days=0x7F, tz_offset=-300),
        dict(SHIFT, ticket_id=1005, win_start=0, win_end=1440, win_days=0x41, tz_offset=-1440, rights=Right.LOCK),
        dict(SHIFT, ticket_id=0xFFFFFFFF, user_id=0xFFFFFFFF, not_before=0, not_after=0xFFFFFFFF,
             issued_at=0xFFFFFFFF, rights=0x0F),
    ]
    out = []
    for fields in cases:
        t, k_t = issue_ticket(keys, **fields)
        out.append({"master": h(MASTER), "lock_id": h(LOCK_ID), "epoch": 1, "fields": _ticket_fields(t),
                    "ticket": h(t.encode()), "k_t": h(k_t)})
    return out


_TICKET = struct.Struct(">B8sIIIIIIBHHBh")


def _raw_ticket(**over: int) -> bytes:
    """A ticket packed without any check (a hostile or buggy issuer)."""
    d = dict(format=1, lock_id=LOCK_ID, epoch=1, ticket_id=1, user_id=1, not_before=NOW, not_after=NOW + 60,
             issued_at=NOW, rights=1, win_start=0, win_end=0, win_days=0, tz_offset=0)
    d.update(over)
    return _TICKET.pack(*d.values())


def bad_ticket_vectors() -> list[dict]:
    """Each rule of §2.1 broken once, with the code the lock answers."""
    window = dict(win_days=1, win_start=0, win_end=60)
    cases = [
        ("format 2", _raw_ticket(format=2), Err.UNSUPPORTED_VERSION),
        ("format 0", _raw_ticket(format=0), Err.UNSUPPORTED_VERSION),
        ("format 2, short (format before length)", _raw_ticket(format=2)[:10], Err.UNSUPPORTED_VERSION),
        ("short", _raw_ticket()[:40], Err.MALFORMED),
        ("long", _raw_ticket() + b"\x00", Err.MALFORMED),
        ("empty", b"", Err.MALFORMED),
        ("not_before = not_after", _raw_ticket(not_before=NOW + 60), Err.MALFORMED),
        ("not_before > not_after", _raw_ticket(not_before=NOW + 61), Err.MALFORMED),
        ("ticket_id 0", _raw_ticket(ticket_id=0), Err.MALFORMED),
        ("user_id 0", _raw_ticket(user_id=0), Err.MALFORMED),
        ("reserved right 0x10", _raw_ticket(rights=0x11), Err.MALFORMED),
        ("reserved right 0x80", _raw_ticket(rights=0x80), Err.MALFORMED),
        ("win_start 1440", _raw_ticket(**{**window, "win_start": 1440, "win_end": 1440}), Err.MALFORMED),
        ("win_end 0 with days", _raw_ticket(**{**window, "win_end": 0}), Err.MALFORMED),
        ("win_end 1441", _raw_ticket(**{**window, "win_end": 1441}), Err.MALFORMED),
        ("days bit 7", _raw_ticket(**{**window, "win_days": 0x81}), Err.MALFORMED),
        ("win_start without days", _raw_ticket(win_start=60), Err.MALFORMED),
        ("win_end without days", _raw_ticket(win_end=60), Err.MALFORMED),
        ("tz_offset without days", _raw_ticket(tz_offset=60), Err.MALFORMED),
        ("tz_offset 1441", _raw_ticket(**window, tz_offset=1441), Err.MALFORMED),
        ("tz_offset -1441", _raw_ticket(**window, tz_offset=-1441), Err.MALFORMED),
    ]
    out = []
    for name, raw, code in cases:  # the host decoder must agree with what is written down
        try:
            Ticket.decode(raw)
            raise AssertionError(f"host accepted bad ticket {name}")
        except ProtocolError as e:
            assert e.code == code, (name, e.code, code)
            assert e.detail == (TICKET_FORMATS if code == Err.UNSUPPORTED_VERSION else 0)
        out.append({"name": name, "ticket": h(raw), "code": int(code)})
    return out


def window_vectors() -> list[dict]:
    """§2.4 step 3 at chosen instants (NOW is Thursday 2026-01-01 00:00 UTC)."""
    windows = [
        (7 * 60, 15 * 60, 0x1F, 60),       # weekdays 07-15 at UTC+1
        (22 * 60, 6 * 60, 0x01, 0),        # Monday night 22-06 (ends Tuesday morning)
        (22 * 60, 6 * 60, 0x08, 0),        # Thursday night only
        (22 * 60, 6 * 60, 0x04, 0),        # Wednesday night only (ends Thursday 06:00)
        (22 * 60, 6 * 60, 0x40, -300),     # Sunday night at UTC-5
        (8 * 60, 8 * 60, 0x08, 0),         # equal: Thursday 08:00 to Friday 08:00
        (0, 1440, 0x7F, 1440),             # every day, whole day, UTC+24h
        (0, 1, 0x10, -1440),               # Friday 00:00-00:01 at UTC-24h
        (1439, 1440, 0x08, 120),           # Thursday 23:59-24:00 at UTC+2
        (9 * 60, 17 * 60, 0x60, -480),     # weekend 09-17 at UTC-8
        (23 * 60, 60, 0x08, 330),          # Thursday 23:00-01:00 at UTC+5:30
    ]
    offsets = [0, 59, 60, 6 * HOUR - 61, 6 * HOUR - 1, 6 * HOUR, 7 * HOUR, 8 * HOUR, 14 * HOUR + 3599,
               22 * HOUR - 1, 22 * HOUR, 23 * HOUR + 59 * 60, DAY - 1, -1, -HOUR, -2 * HOUR - 1, -DAY + 5,
               DAY + 6 * HOUR - 1, 3 * DAY + 23 * HOUR + 59 * 60, 4 * DAY, 5 * DAY + 2 * HOUR, -4 * DAY + 23 * HOUR]
    nows = [NOW + d for d in offsets] + [0, 59, 86399, 0xFFFFFFFF]
    out = []
    for ws, we, days, tz in windows:
        t = Ticket(LOCK_ID, 1, 1, 1, 0, 0xFFFFFFFF, 0, 1, ws, we, days, tz)
        t.validate()
        for now in nows:
            out.append({"win_start": ws, "win_end": we, "win_days": days, "tz_offset": tz, "now": now,
                        "inside": t.in_window(now)})
    return out


# ---- sessions ----

class _Case:
    """One connection to a lock whose state is fixed by the case; records messages and exact answers."""

    def __init__(self, name: str, ticket: tuple[Ticket | bytes, bytes], *, master: bytes = MASTER,
                 lock_id: bytes = LOCK_ID, epoch: int = 1, now: int = NOW, uncertain: bool = False,
                 deny: tuple = (), deny_version: int = 3, lockout: int = 0) -> None:
        self.name = name
        self.keys = LockKeys.from_master(master, lock_id, epoch)
        self.cfg = {"name": name, "master": h(master), "lock_id": h(lock_id), "epoch": epoch, "now": now,
                    "time_uncertain": uncertain, "deny": [[int(k), i, e] for k, i, e in deny],
                    "deny_version": deny_version, "lockout_remaining": lockout, "fw": list(FW)}
        state = StateBlock(**{**STATE.__dict__, "lock_time": now,
                              "flags": Flag.TIME_UNCERTAIN if uncertain else 0, "deny_version": deny_version})
        self.state = state.encode()
        self.hello = Hello(lock_id, epoch, NONCE_L, FW, state).encode()
        raw, self.k_t = ticket
        self.ticket = raw.encode() if isinstance(raw, Ticket) else bytes(raw)
        self.phone = PhoneSession(self.ticket, self.k_t, self.hello, NONCE_P)
        self.ticket_id = struct.unpack(">I", self.ticket[13:17])[0]
        self.messages: list[bytes] = []
        self.responses: list[bytes] = []
        self.actuate: list[bool] = []

    @property
    def k_s(self) -> bytes:
        return self.phone.session_key

    def _add(self, msg: bytes, resp: bytes, actuate: bool) -> "_Case":
        self.messages.append(msg)
        self.responses.append(resp)
        self.actuate.append(actuate)
        return self

    def result(self, msg: bytes, status: Err = Err.OK, payload: bytes = b"", actuate: bool = False) -> "_Case":
        """The phone's message ``msg`` answered with a RESULT; the host phone must read it as meant."""
        ctr, op, _ = self.phone._pending
        resp = lock_result(self.k_s, ctr, op, status, payload)
        try:
            got = self.phone.read(resp)
            assert status == Err.OK and got.payload == payload, (self.name, status)
        except ProtocolError as e:
            assert e.code == status, (self.name, e.code, status)
        return self._add(msg, resp, actuate)

    def result_for(self, msg: bytes, ctr: int, op: int, status: Err = Err.OK, payload: bytes = b"") -> "_Case":
        """A hand-made message (not from the host phone) answered with a RESULT."""
        return self._add(msg, lock_result(self.k_s, ctr, op, status, payload), False)

    def error(self, msg: bytes, code: Err, detail: int = 0) -> "_Case":
        return self._add(msg, ErrorFrame(code, detail).encode(), False)

    def common(self) -> dict:
        return {**self.cfg, "state_block": h(self.state), "nonce_l": h(NONCE_L), "hello": h(self.hello),
                "ticket": h(self.ticket), "k_t": h(self.k_t), "nonce_p": h(NONCE_P), "k_s": h(self.k_s)}

    def session(self) -> dict:
        assert len(self.messages) == 1, self.name
        return {**self.common(), "auth": h(self.messages[0]), "response": h(self.responses[0]),
                "actuate": self.actuate[0]}

    def ops(self) -> dict:
        assert len(self.messages) > 1, self.name
        return {**self.common(), "messages": [h(m) for m in self.messages],
                "responses": [h(r) for r in self.responses], "actuate": self.actuate}


def _keys1() -> LockKeys:
    return LockKeys.from_master(MASTER, LOCK_ID, 1)


def _manual_auth(c: _Case, *, version: int = 1, op: int = Op.UNLOCK, args: bytes = b"") -> bytes:
    return Auth(version, c.ticket, NONCE_P, op, args).sign(c.k_s, c.hello).encode()


def _signed_deny(keys: LockKeys, version: int, count: int, entries: bytes) -> bytes:
    """A deny list with a genuine server MAC but any count/entries (testing the lock's order of checks)."""
    body = u32(version) + _u8(count) + entries
    return body + mac16(keys.sv, b"LK1/deny\x00" + keys.lock_id + u32(keys.epoch) + body)


def _signed_rekey(keys: LockKeys, new_epoch: int, wrapped: bytes) -> bytes:
    body = u32(new_epoch) + wrapped
    return body + mac16(keys.sv, b"LK1/rekey\x00" + keys.lock_id + u32(keys.epoch) + body)


def session_vectors() -> list[dict]:
    keys = _keys1()
    shift = issue_ticket(keys, **SHIFT)
    admin = issue_ticket(keys, **{**SHIFT, "ticket_id": 1002, "rights": ALL_RIGHTS})
    day_ticket = issue_ticket(keys, **{**SHIFT, "ticket_id": 1010, "not_after": NOW + 23 * HOUR,
                                       "rights": ALL_RIGHTS})  # lifetime 24 h
    t = shift[0]
    unlocking, locking = _u8(Bolt.UNLOCKING), _u8(Bolt.LOCKING)
    cases: list[_Case] = []

    c = _Case("unlock", shift)
    cases.append(c.result(c.phone.auth(Op.UNLOCK), Err.OK, unlocking, actuate=True))
    c = _Case("lock", shift)
    cases.append(c.result(c.phone.auth(Op.LOCK), Err.OK, locking, actuate=True))
    c = _Case("status", shift)
    cases.append(c.result(c.phone.auth(Op.STATUS), Err.OK, c.state))
    c = _Case("nop", shift)
    cases.append(c.result(c.phone.auth(Op.NOP), Err.OK))

    c = _Case("wrong lock", issue_ticket(LockKeys.from_master(MASTER_B, LOCK_B, 1), **SHIFT))
    cases.append(c.error(c.phone.auth(Op.UNLOCK), Err.WRONG_LOCK))
    # a ticket naming this lock but keyed with another master: the MAC fails
    forged = (t.encode(), issue_ticket(LockKeys.from_master(MASTER_B, LOCK_ID, 1), **SHIFT)[1])
    c = _Case("ticket keyed by another lock", forged)
    cases.append(c.error(c.phone.auth(Op.UNLOCK), Err.BAD_MAC))
    c = _Case("wrong epoch", shift, epoch=2)
    cases.append(c.error(c.phone.auth(Op.UNLOCK), Err.WRONG_EPOCH, 2))
    c = _Case("bad mac", shift)
    a = bytearray(c.phone.auth(Op.UNLOCK))
    a[-1] ^= 1
    cases.append(c.error(bytes(a), Err.BAD_MAC))
    # the phone raised its own rights: K_T no longer fits the ticket
    raised = (Ticket(**{**t.__dict__, "rights": ALL_RIGHTS}), shift[1])
    c = _Case("ticket rights changed by the phone", raised)
    cases.append(c.error(c.phone.auth(Op.UNLOCK), Err.BAD_MAC))
    c = _Case("malformed ticket", (_raw_ticket(ticket_id=0), shift[1]))
    cases.append(c.error(c.phone.auth(Op.UNLOCK), Err.MALFORMED))
    c = _Case("ticket format 2", (_raw_ticket(format=2), shift[1]))
    cases.append(c.error(c.phone.auth(Op.UNLOCK), Err.UNSUPPORTED_VERSION, TICKET_FORMATS))
    c = _Case("unsupported version", shift)
    cases.append(c.error(_manual_auth(c, version=2), Err.UNSUPPORTED_VERSION, 0x0101))
    c = _Case("version 0", shift)
    cases.append(c.error(_manual_auth(c, version=0), Err.UNSUPPORTED_VERSION, 0x0101))
    c = _Case("locked out", shift, lockout=45)
    cases.append(c.error(c.phone.auth(Op.UNLOCK), Err.LOCKED_OUT, 45))

    for name, fields, code in (
        ("expired", dict(not_before=NOW - 7200, not_after=NOW), Err.EXPIRED),
        ("not yet valid", dict(not_before=NOW + 61, not_after=NOW + 3600), Err.NOT_YET_VALID),
        ("skew tolerated", dict(not_before=NOW + 60, not_after=NOW + 3600), Err.OK),
        ("last second", dict(not_before=NOW - 3600, not_after=NOW + 1), Err.OK),
        ("outside window", dict(win_start=8 * 60, win_end=16 * 60, win_days=0x7F), Err.OUTSIDE_WINDOW),
        ("inside window, negative tz", dict(win_start=18 * 60, win_end=20 * 60, win_days=0x04, tz_offset=-300),
         Err.OK),
        ("inside wrapping window", dict(win_start=23 * 60, win_end=60, win_days=0x04), Err.OK),
        ("wrapping window, wrong start day", dict(win_start=23 * 60, win_end=60, win_days=0x08),
         Err.OUTSIDE_WINDOW),
    ):
        tk = issue_ticket(keys, **{**SHIFT, **fields})
        assert tk[0].check(NOW) == code, (name, tk[0].check(NOW))  # the host agrees with the vector
        c = _Case(name, tk)
        if code == Err.OK:
            cases.append(c.result(c.phone.auth(Op.UNLOCK), code, unlocking, actuate=True))
        else:
            cases.append(c.result(c.phone.auth(Op.UNLOCK), code))

    c = _Case("revoked ticket", shift, deny=((DenyKind.TICKET, t.ticket_id, NOW + DAY),))
    cases.append(c.result(c.phone.auth(Op.UNLOCK), Err.REVOKED))
    c = _Case("revoked user", shift, deny=((DenyKind.USER, t.user_id, NOW + DAY),))
    cases.append(c.result(c.phone.auth(Op.UNLOCK), Err.REVOKED))
    c = _Case("revoked user, status only", shift, deny=((DenyKind.USER, t.user_id, NOW + DAY),))
    cases.append(c.result(c.phone.auth(Op.STATUS), Err.REVOKED))
    c = _Case("deny entries of others", shift,
              deny=((DenyKind.USER, t.ticket_id, NOW + DAY), (DenyKind.TICKET, t.user_id, NOW + DAY)))
    cases.append(c.result(c.phone.auth(Op.UNLOCK), Err.OK, unlocking, actuate=True))
    c = _Case("deny entry expired, time uncertain", shift, uncertain=True,
              deny=((DenyKind.TICKET, t.ticket_id, NOW),))
    cases.append(c.result(c.phone.auth(Op.UNLOCK), Err.REVOKED))

    c = _Case("no right", issue_ticket(keys, **{**SHIFT, "rights": Right.LOCK}))
    cases.append(c.result(c.phone.auth(Op.UNLOCK), Err.NO_RIGHT))
    c = _Case("no right, journal", shift)
    cases.append(c.result(c.phone.auth(Op.JOURNAL_READ, u32(1) + b"\x10"), Err.NO_RIGHT))
    c = _Case("no right, config", shift)
    cases.append(c.result(c.phone.auth(Op.CONFIG, _u8(ConfigKey.RELOCK_DELAY)), Err.NO_RIGHT))
    c = _Case("unknown op", shift)
    cases.append(c.result(c.phone.auth(0x7E), Err.UNKNOWN_OP))
    c = _Case("args on unlock", shift)
    cases.append(c.result(c.phone.auth(Op.UNLOCK, b"\x00"), Err.MALFORMED))
    c = _Case("args length before right", shift)  # no JOURNAL right, but the length is checked first
    cases.append(c.result(c.phone.auth(Op.JOURNAL_READ, u32(1)), Err.MALFORMED))
    c = _Case("journal read of 0 records", admin)
    cases.append(c.result(c.phone.auth(Op.JOURNAL_READ, u32(1) + b"\x00"), Err.MALFORMED))
    c = _Case("config unknown key", admin)
    cases.append(c.result(c.phone.auth(Op.CONFIG, b"\x7f"), Err.NOT_FOUND))
    c = _Case("config args length", admin)
    cases.append(c.result(c.phone.auth(Op.CONFIG, b"\x01\x00\x00"), Err.MALFORMED))

    # §2.5: time-uncertain locks
    c = _Case("time uncertain, 24h ticket unlock", day_ticket, uncertain=True)
    cases.append(c.result(c.phone.auth(Op.UNLOCK), Err.TIME_UNCERTAIN))
    c = _Case("time uncertain, short ticket unlock", shift, uncertain=True)
    cases.append(c.result(c.phone.auth(Op.UNLOCK), Err.OK, unlocking, actuate=True))
    for life, code in ((43200, Err.OK), (43201, Err.TIME_UNCERTAIN)):
        tk = issue_ticket(keys, **{**SHIFT, "not_before": NOW - 60, "not_after": NOW - 60 + life})
        c = _Case(f"time uncertain, lifetime {life}", tk, uncertain=True)
        cases.append(c.result(c.phone.auth(Op.UNLOCK), code, unlocking if code == Err.OK else b"",
                              actuate=code == Err.OK))
    c = _Case("time uncertain, 24h ticket lock", day_ticket, uncertain=True)
    cases.append(c.result(c.phone.auth(Op.LOCK), Err.OK, locking, actuate=True))
    c = _Case("time uncertain, 24h ticket journal read", day_ticket, uncertain=True)
    cases.append(c.result(c.phone.auth(Op.JOURNAL_READ, u32(1) + b"\x10"), Err.TIME_UNCERTAIN))
    c = _Case("time uncertain, config", admin, uncertain=True)
    cases.append(c.result(c.phone.auth(Op.CONFIG, _u8(ConfigKey.RELOCK_DELAY)), Err.TIME_UNCERTAIN))
    # issued after the lock's last known time: the lock's clock is raised to issued_at
    fresh = issue_ticket(keys, **{**SHIFT, "not_before": NOW + 7200, "not_after": NOW + 9000,
                                  "issued_at": NOW + 7200})
    c = _Case("time uncertain, fresh ticket raises the clock", fresh, uncertain=True)
    cases.append(c.result(c.phone.auth(Op.UNLOCK), Err.OK, unlocking, actuate=True))
    c = _Case("time certain, fresh ticket does not raise the clock", fresh)
    cases.append(c.result(c.phone.auth(Op.UNLOCK), Err.NOT_YET_VALID))

    # server statements as the first op
    c = _Case("time token", shift, uncertain=True)
    cases.append(c.result(c.phone.auth(Op.TIME_SET, time_token(keys, NONCE_L, NOW + 500)), Err.OK, u32(NOW + 500)))
    c = _Case("time token older than the clock", shift)
    cases.append(c.result(c.phone.auth(Op.TIME_SET, time_token(keys, NONCE_L, NOW - 500)), Err.OK, u32(NOW)))
    c = _Case("time token for another connection", shift, uncertain=True)
    cases.append(c.result(c.phone.auth(Op.TIME_SET, time_token(keys, NONCE_P, NOW + 500)), Err.BAD_MAC))
    c = _Case("time token length", shift)
    cases.append(c.result(c.phone.auth(Op.TIME_SET, time_token(keys, NONCE_L, NOW)[:19]), Err.MALFORMED))
    c = _Case("deny update", shift)
    cases.append(c.result(c.phone.auth(Op.DENY_UPDATE, deny_list(keys, 4, [(DenyKind.USER, 99, NOW + HOUR)])),
                          Err.OK, u32(4)))
    c = _Case("deny update stale", shift)
    cases.append(c.result(c.phone.auth(Op.DENY_UPDATE, deny_list(keys, 3, [])), Err.STALE))
    c = _Case("deny update for another epoch", shift)
    other = LockKeys.from_master(MASTER, LOCK_ID, 2)
    cases.append(c.result(c.phone.auth(Op.DENY_UPDATE, deny_list(other, 9, [])), Err.BAD_MAC))
    c = _Case("deny update length", shift)
    cases.append(c.result(c.phone.auth(Op.DENY_UPDATE, _signed_deny(keys, 9, 2, bytes(9))), Err.MALFORMED))
    c = _Case("deny update over capacity", shift)
    big = b"".join(_u8(DenyKind.USER) + u32(i + 1) + u32(NOW + DAY) for i in range(65))
    cases.append(c.result(c.phone.auth(Op.DENY_UPDATE, _signed_deny(keys, 9, 65, big)), Err.CAPACITY))
    c = _Case("deny update unknown kind", shift)
    cases.append(c.result(c.phone.auth(Op.DENY_UPDATE, _signed_deny(keys, 9, 1, b"\x03" + u32(5) + u32(NOW + DAY))),
                          Err.MALFORMED))
    c = _Case("deny update unknown kind before stale", shift)
    cases.append(c.result(c.phone.auth(Op.DENY_UPDATE, _signed_deny(keys, 1, 1, b"\x00" + u32(5) + u32(NOW + DAY))),
                          Err.MALFORMED))
    c = _Case("rekey", shift)
    new_keys = LockKeys.from_master(MASTER_2, LOCK_ID, 2)
    cases.append(c.result(c.phone.auth(Op.REKEY, rekey_message(keys, MASTER_2)), Err.OK, rekey_proof(new_keys)))
    c = _Case("rekey stale", shift)
    stale = _signed_rekey(keys, 1, aes_key_wrap(keys.wr, MASTER_2))
    cases.append(c.result(c.phone.auth(Op.REKEY, stale), Err.STALE))
    c = _Case("rekey stale before mac", shift)
    cases.append(c.result(c.phone.auth(Op.REKEY, u32(1) + bytes(56)), Err.STALE))
    c = _Case("rekey bad mac", shift)
    forged_rk = bytearray(rekey_message(keys, MASTER_2))
    forged_rk[10] ^= 1
    cases.append(c.result(c.phone.auth(Op.REKEY, bytes(forged_rk)), Err.BAD_MAC))
    c = _Case("rekey unwrap failed", shift)
    bad_wrap = _signed_rekey(keys, 2, aes_key_wrap(other.wr, MASTER_2))  # wrapped under another KEK
    cases.append(c.result(c.phone.auth(Op.REKEY, bad_wrap), Err.UNWRAP_FAILED))
    c = _Case("rekey length", shift)
    cases.append(c.result(c.phone.auth(Op.REKEY, rekey_message(keys, MASTER_2)[:59]), Err.MALFORMED))
    c = _Case("journal ack bad mac", shift)
    cases.append(c.result(c.phone.auth(Op.JOURNAL_ACK, journal_ack(other, 1, bytes(8))), Err.BAD_MAC))
    c = _Case("journal ack of a record the lock never wrote", shift)
    cases.append(c.result(c.phone.auth(Op.JOURNAL_ACK, journal_ack(keys, 0x7FFFFFFF, bytes(8))), Err.NOT_FOUND))
    return [c.session() for c in cases]


def ops_vectors() -> list[dict]:
    keys = _keys1()
    shift = issue_ticket(keys, **SHIFT)
    t = shift[0]
    unlocking, locking = _u8(Bolt.UNLOCKING), _u8(Bolt.LOCKING)
    cases: list[_Case] = []

    c = _Case("status, lock, nop", shift)
    c.result(c.phone.auth(Op.STATUS), Err.OK, c.state)
    c.result(c.phone.op(Op.LOCK), Err.OK, locking, actuate=True)
    cases.append(c.result(c.phone.op(Op.NOP), Err.OK))

    c = _Case("no right keeps the session", issue_ticket(keys, **{**SHIFT, "rights": Right.LOCK}))
    c.result(c.phone.auth(Op.UNLOCK), Err.NO_RIGHT)
    c.result(c.phone.op(Op.CONFIG, b"\x01"), Err.NO_RIGHT)
    cases.append(c.result(c.phone.op(Op.LOCK), Err.OK, locking, actuate=True))

    long_ticket = issue_ticket(keys, **{**SHIFT, "not_after": NOW + 23 * HOUR})
    c = _Case("time uncertain, long ticket may lock", long_ticket, uncertain=True)
    c.result(c.phone.auth(Op.UNLOCK), Err.TIME_UNCERTAIN)
    cases.append(c.result(c.phone.op(Op.LOCK), Err.OK, locking, actuate=True))

    c = _Case("time token, then a long ticket unlocks", long_ticket, uncertain=True)
    c.result(c.phone.auth(Op.TIME_SET, time_token(keys, NONCE_L, NOW + 30)), Err.OK, u32(NOW + 30))
    cases.append(c.result(c.phone.op(Op.UNLOCK), Err.OK, unlocking, actuate=True))

    c = _Case("time token moves the clock past the ticket", shift, uncertain=True)
    c.result(c.phone.auth(Op.TIME_SET, time_token(keys, NONCE_L, NOW + 8 * HOUR)), Err.OK, u32(NOW + 8 * HOUR))
    c.result(c.phone.op(Op.UNLOCK), Err.EXPIRED)
    cases.append(c.error(OpFrame(2, Op.NOP).sign(c.k_s).encode(), Err.NO_SESSION))

    c = _Case("deny update revokes the session's own ticket", shift)
    c.result(c.phone.auth(Op.DENY_UPDATE, deny_list(keys, 3, [])), Err.STALE)
    c.result(c.phone.op(Op.DENY_UPDATE, deny_list(keys, 4, [(DenyKind.USER, 99, NOW + HOUR)])), Err.OK, u32(4))
    c.result(c.phone.op(Op.DENY_UPDATE, deny_list(keys, 5, [(DenyKind.TICKET, t.ticket_id, NOW + HOUR)])),
             Err.OK, u32(5))
    c.result(c.phone.op(Op.UNLOCK), Err.REVOKED)
    cases.append(c.error(OpFrame(4, Op.NOP).sign(c.k_s).encode(), Err.NO_SESSION))

    c = _Case("op counter skipped", shift)
    c.result(c.phone.auth(Op.NOP), Err.OK)
    c.error(OpFrame(2, Op.UNLOCK).sign(c.k_s).encode(), Err.BAD_COUNTER)  # the lock expects 1
    cases.append(c.error(OpFrame(1, Op.UNLOCK).sign(c.k_s).encode(), Err.NO_SESSION))

    c = _Case("op replayed", shift)
    c.result(c.phone.auth(Op.NOP), Err.OK)
    op1 = c.phone.op(Op.UNLOCK)
    c.result(op1, Err.OK, unlocking, actuate=True)
    c.error(op1, Err.BAD_COUNTER)  # expects 2
    cases.append(c.error(OpFrame(2, Op.UNLOCK).sign(c.k_s).encode(), Err.NO_SESSION))

    c = _Case("op counter 0", shift)
    c.result(c.phone.auth(Op.NOP), Err.OK)
    cases.append(c.error(OpFrame(0, Op.UNLOCK).sign(c.k_s).encode(), Err.BAD_COUNTER))

    c = _Case("op bad mac ends the session", shift)
    c.result(c.phone.auth(Op.NOP), Err.OK)
    bad = bytearray(OpFrame(1, Op.UNLOCK).sign(c.k_s).encode())
    bad[-16] ^= 0x80
    c.error(bytes(bad), Err.BAD_MAC)
    cases.append(c.error(OpFrame(1, Op.UNLOCK).sign(c.k_s).encode(), Err.NO_SESSION))

    c = _Case("op with the lock's direction", shift)
    c.result(c.phone.auth(Op.NOP), Err.OK)
    body = OpFrame(1, Op.UNLOCK).body()
    reflected = body + mac16(c.k_s, b"L" + u32(1) + body)
    cases.append(c.error(reflected, Err.BAD_MAC))

    c = _Case("unknown op keeps the session", shift)
    c.result(c.phone.auth(0x7E), Err.UNKNOWN_OP)
    c.result(c.phone.op(Op.UNLOCK, b"\x00"), Err.MALFORMED)
    cases.append(c.result(c.phone.op(Op.UNLOCK), Err.OK, unlocking, actuate=True))

    c = _Case("second auth", shift)
    c.result(c.phone.auth(Op.NOP), Err.OK)
    cases.append(c.error(_manual_auth(c), Err.NO_SESSION))

    c = _Case("failed validity ends the connection", issue_ticket(keys, **{**SHIFT, "not_after": NOW}))
    c.result(c.phone.auth(Op.NOP), Err.EXPIRED)
    cases.append(c.error(OpFrame(1, Op.UNLOCK).sign(c.k_s).encode(), Err.NO_SESSION))

    c = _Case("auth error ends the connection", shift)
    a = bytearray(c.phone.auth(Op.NOP))
    a[-1] ^= 1
    c.error(bytes(a), Err.BAD_MAC)
    cases.append(c.error(OpFrame(1, Op.NOP).sign(c.k_s).encode(), Err.NO_SESSION))

    c = _Case("rekey ends the session", shift)
    c.result(c.phone.auth(Op.NOP), Err.OK)
    c.result(c.phone.op(Op.REKEY, rekey_message(keys, MASTER_2)), Err.OK,
             rekey_proof(LockKeys.from_master(MASTER_2, LOCK_ID, 2)))
    cases.append(c.error(OpFrame(2, Op.NOP).sign(c.k_s).encode(), Err.NO_SESSION))

    c = _Case("hello sent to the lock", shift)
    c.result(c.phone.auth(Op.NOP), Err.OK)
    c.error(c.hello, Err.UNKNOWN_TYPE)
    cases.append(c.error(OpFrame(1, Op.NOP).sign(c.k_s).encode(), Err.NO_SESSION))

    c = _Case("unknown type", shift)
    c.result(c.phone.auth(Op.NOP), Err.OK)
    cases.append(c.error(b"\x09" + bytes(30), Err.UNKNOWN_TYPE))

    c = _Case("op too large", shift)
    c.result(c.phone.auth(Op.NOP), Err.OK)
    cases.append(c.error(b"\x04" + u32(1) + b"\x00" + bytes(MAX_MESSAGE - 6 + 1), Err.TOO_LARGE))

    c = _Case("op too short", shift)
    c.result(c.phone.auth(Op.NOP), Err.OK)
    cases.append(c.error(OpFrame(1, Op.NOP).sign(c.k_s).encode()[:-1], Err.MALFORMED))
    return [c.ops() for c in cases]


# ---- server statements, journal ----

def server_vectors() -> dict:
    keys = _keys1()
    entries = [(DenyKind.TICKET, 1001, NOW + 3600), (DenyKind.USER, 501, NOW + 86400)]
    new_keys = LockKeys.from_master(MASTER_2, LOCK_ID, 2)
    chain = bytes.fromhex("0102030405060708")
    base = {"master": h(MASTER), "lock_id": h(LOCK_ID), "epoch": 1}
    return {
        "time_token": {**base, "nonce_l": h(NONCE_L), "time": NOW + 42,
                       "token": h(time_token(keys, NONCE_L, NOW + 42))},
        "deny": {**base, "version": 9, "entries": [[int(k), i, e] for k, i, e in entries],
                 "message": h(deny_list(keys, 9, entries))},
        "deny_empty": {**base, "version": 10, "entries": [], "message": h(deny_list(keys, 10, []))},
        "rekey": {"old_master": h(MASTER), "lock_id": h(LOCK_ID), "old_epoch": 1, "new_master": h(MASTER_2),
                  "new_epoch": 2, "message": h(rekey_message(keys, MASTER_2)), "proof": h(rekey_proof(new_keys))},
        "ack": {**base, "seq": 12, "chain": h(chain), "message": h(journal_ack(keys, 12, chain))},
    }


def journal_vectors() -> dict:
    """Seven records across a re-key (records 6 and 7 under epoch 2), and export chunks under epoch 2."""
    k1 = _keys1()
    k2 = LockKeys.from_master(MASTER_2, LOCK_ID, 2)
    genesis = chain_genesis(k1.jm, LOCK_ID)
    events = [
        Record(1, NOW, Event.PROVISIONED),
        Record(2, NOW + 10, Event.BOOT, arg16=1, arg=0x000100),
        Record(3, NOW + 600, Event.UNLOCK, user_id=501, ticket_id=1001),
        Record(4, NOW + 620, Event.DOOR_OPEN),
        Record(5, NOW + 660, Event.DENIED, arg16=Err.REVOKED, user_id=502, ticket_id=1002, arg=1),
        Record(6, NOW + 700, Event.REKEYED, arg=2),
        Record(7, NOW + 1800, Event.LOCK, user_id=501, ticket_id=1001, flags=1),
    ]
    sealed, prev, epoch = [], genesis, 1
    for r in events:
        if r.event == Event.REKEYED:
            epoch = r.arg
        r = seal((k1, k2)[epoch - 1].jm, prev, r)
        sealed.append(r)
        prev = r.chain
    chunk = make_export_chunk(k2, 3, sealed[2:7], 7, sealed[1].chain)
    empty = make_export_chunk(k2, 8, [], 7, sealed[6].chain)

    def fields(r: Record) -> dict:
        return {"seq": r.seq, "time": r.time, "event": int(r.event), "flags": r.flags, "arg16": int(r.arg16),
                "user_id": r.user_id, "ticket_id": r.ticket_id, "arg": r.arg}

    return {"master": h(MASTER), "lock_id": h(LOCK_ID), "epoch": 1, "new_master": h(MASTER_2), "new_epoch": 2,
            "genesis": h(genesis),
            "records": [{**fields(r), "body": h(r.body()), "chain": h(r.chain), "sealed": h(r.encode())}
                        for r in sealed],
            "chunk": {"from": 3, "max_count": 16, "epoch": 2, "first_seq": 3, "head_seq": 7,
                      "prev_chain": h(sealed[1].chain), "payload": h(chunk)},
            "empty_chunk": {"from": 8, "max_count": 16, "epoch": 2, "first_seq": 8, "head_seq": 7,
                            "prev_chain": h(sealed[6].chain), "payload": h(empty)}}


# ---- transports, HELLO, ERROR, advertising ----

def transport_vectors() -> dict:
    msgs = [b"\x01", bytes(range(19)), bytes(range(20)), bytes(range(38)), bytes(range(256)) * 4]
    frags = [{"mtu": mtu, "message": h(m), "fragments": [h(f) for f in fragment(m, mtu)]}
             for m in msgs for mtu in (23, 64, 247)]
    frags.append({"mtu": 5, "message": h(bytes(range(70))), "fragments": [h(f) for f in fragment(bytes(range(70)), 5)]})
    serial = [{"message": h(m), "frame": h(encode_frame(m))} for m in msgs]
    return {"fragments": frags, "serial": serial}


def _hello_entry(hello: Hello) -> dict:
    raw = hello.encode()
    return {"lock_id": h(hello.lock_id), "epoch": hello.epoch, "nonce": h(hello.nonce), "fw": list(hello.fw),
            "proto_min": hello.proto_min, "proto_max": hello.proto_max,
            "state": {k: int(v) for k, v in hello.state.__dict__.items()},
            "state_block": h(hello.state.encode()), "extra": h(hello.extra), "hello": h(raw),
            "hello_hash": h(sha256(raw))}


def hello_vectors() -> list[dict]:
    return [_hello_entry(Hello(LOCK_ID, 1, NONCE_L, FW, STATE)),
            _hello_entry(Hello(LOCK_ID, 1, NONCE_P, FW, StateBlock(0xFFFFFFFF, 0xFF, Bolt.JAMMED, 255, 0, 0, 0, 0)))]


def hello_long_vectors() -> list[dict]:
    """HELLOs longer than 55 bytes (a later version's lock): a v1 phone reads them and keeps the extra bytes."""
    return [_hello_entry(Hello(LOCK_ID, 3, NONCE_L, (1, 4, 2), STATE, proto_min=1, proto_max=2, extra=b"\xee" * 9)),
            _hello_entry(Hello(LOCK_B, 1, NONCE_P, FW, STATE, extra=bytes(range(73))))]


def advert_vectors() -> dict:
    ads = [Advert(LOCK_ID, 80, 0), Advert(LOCK_B, 255, Flag.TIME_UNCERTAIN | Flag.BATTERY_LOW | Flag.DENY_STALE)]
    for a in ads:
        assert len(a.encode()) <= 31
    return {"adverts": [{"lock_id": h(a.lock_id), "battery_pct": a.battery_pct, "flags": int(a.flags),
                         "payload": h(a.encode())} for a in ads],
            "scan_response": h(scan_response())}


def error_vectors() -> list[dict]:
    details = {Err.UNSUPPORTED_VERSION: 0x0101, Err.WRONG_EPOCH: 2, Err.LOCKED_OUT: 3600}
    return [{"code": int(c), "detail": details.get(c, 0), "frame": h(ErrorFrame(c, details.get(c, 0)).encode())}
            for c in Err if c != Err.OK] + [{"code": int(Err.INTERNAL), "detail": 0xFFFFFFFF,
                                             "frame": h(ErrorFrame(Err.INTERNAL, 0xFFFFFFFF).encode())}]


def generate() -> dict:
    return {
        "about": "generated by lockproto.vectors from docs/protocol.md v1; do not edit by hand",
        "derive": derive_vectors(),
        "tickets": ticket_vectors(),
        "bad_tickets": bad_ticket_vectors(),
        "windows": window_vectors(),
        "hello": hello_vectors(),
        "hello_long": hello_long_vectors(),
        "errors": error_vectors(),
        "advertising": advert_vectors(),
        "sessions": session_vectors(),
        "ops": ops_vectors(),
        "server": server_vectors(),
        "journal": journal_vectors(),
        **transport_vectors(),
    }


def render() -> str:
    """The vectors as the exact text of protocol.json (sorted keys, one space indent, final newline)."""
    return json.dumps(generate(), indent=1, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    """``lockproto-vectors [DIR]``: write DIR/protocol.json (default tests/vectors)."""
    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0] if argv else "tests/vectors")
    out.mkdir(parents=True, exist_ok=True)
    path = out / "protocol.json"
    path.write_bytes(render().encode("utf-8"))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
