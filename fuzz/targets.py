"""Fuzz targets: one function per parser surface, each taking the fuzzer's bytes.

A target *fails* (raises something other than its protocol's typed error, or an
AssertionError for a broken invariant) when:

- a firmware decoder raises anything but ``lockwire.ProtoError``, or a host decoder
  anything but ``lockproto.ProtocolError``;
- the lock's session answers anything but a RESULT or an ERROR, answers INTERNAL (an
  unexpected exception caught by its last-resort handler), or *actuates*: the session
  targets' tickets carry no UNLOCK/LOCK/ADMIN right, so no input may move the bolt or
  change the configuration;
- a MAC-protected statement or answer made of fuzzer bytes is accepted (a forgery).

The firmware modules are the unit's own files (firmware/lib), imported under CPython
(``lockcompat`` stands in for ``cryptolib``); the session runs against the in-memory
lock context of the MicroPython tests (tests/mpy/fakelock.py), which records every
actuation. ``SEEDS`` gives each target valid inputs to start from.
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for _p in (ROOT / "firmware" / "lib", ROOT / "tests" / "mpy"):
    if str(_p) not in sys.path:
        sys.path.append(str(_p))   # appended: their module names (lock*, fakelock) shadow nothing

import lockcodes as C  # noqa: E402  (firmware modules, CPython import)
import lockfrag  # noqa: E402
import lockmsg  # noqa: E402
import lockrecord  # noqa: E402
import lockticket  # noqa: E402
import lockwire  # noqa: E402
from fakelock import FakeLock  # noqa: E402
from lockcrypto import LockKeys as FwKeys  # noqa: E402
from locksession import LockSession  # noqa: E402

import lockproto as P  # noqa: E402
from lockproto.advert import Advert, parse_ad  # noqa: E402
from lockproto.fragment import Reassembler as HostReassembler  # noqa: E402

LOCK_ID = bytes.fromhex("a1a2a3a4a5a6a7a8")
MASTER = bytes(range(7, 39))
NOW = 1_700_000_000
NONCE_L = bytes(range(16))
HOST_KEYS = P.LockKeys.from_master(MASTER, LOCK_ID, 1)
FW_KEYS = FwKeys(MASTER, LOCK_ID, 1)
# a journal-reader's ticket: a valid session, but no right to move the bolt or configure
READER_RIGHTS = P.Right.JOURNAL


def _grant(rights=READER_RIGHTS, not_before=NOW - 60, not_after=NOW + 3600):
    t, k_t = P.issue_ticket(HOST_KEYS, ticket_id=42, user_id=9, not_before=not_before, not_after=not_after,
                            issued_at=not_before, rights=int(rights))
    return t.encode(), k_t


TICKET, K_T = _grant()


class Stream:
    """The fuzzer's bytes as a sequence of choices and length-prefixed chunks."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.i = 0

    def more(self) -> bool:
        return self.i < len(self.data)

    def byte(self) -> int:
        if self.i >= len(self.data):
            return 0
        self.i += 1
        return self.data[self.i - 1]

    def chunk(self, big: bool = False) -> bytes:
        n = self.byte() << 8 | self.byte() if big else self.byte()
        out = self.data[self.i:self.i + n]
        self.i += n
        return out

    def rest(self) -> bytes:
        out = self.data[self.i:]
        self.i = len(self.data)
        return out


def _fw_only(fn, *args):
    """Run a firmware decoder: its own ProtoError is the one allowed failure."""
    try:
        return fn(*args)
    except lockwire.ProtoError as e:
        assert isinstance(e.code, int) and 1 <= e.code <= 31, e.code
        return None


def _host_only(fn, *args):
    try:
        return fn(*args)
    except P.ProtocolError as e:
        assert isinstance(e.code, P.Err), e.code
        return None


# ---------------------------------------------------------------- firmware ----

_FW_DECODERS = (lockwire.decode_hello, lockwire.decode_auth, lockwire.decode_op, lockwire.decode_result,
                lockwire.decode_error, lockwire.decode_state, lockticket.parse_ticket)


def fw_wire(data: bytes) -> None:
    """Every firmware message decoder, the ticket parser and the validity check."""
    s = Stream(data)
    which = s.byte()
    body = s.rest()
    if which % 8 < 7:
        _fw_only(_FW_DECODERS[which % 8], body)
    else:
        t = _fw_only(lockticket.parse_ticket, body[5:])
        if t is not None:
            now = struct.unpack(">I", (body[:4] + bytes(4))[:4])[0]
            code = lockticket.check_validity(t, now, lambda tid, uid: body[4:5] == b"\x01")
            assert code in (C.E_OK, C.E_NOT_YET_VALID, C.E_EXPIRED, C.E_OUTSIDE_WINDOW, C.E_REVOKED), code


def fw_transport(data: bytes) -> None:
    """BLE reassembly and serial framing fed arbitrary fragments, chunks and stalls."""
    s = Stream(data)
    r = lockfrag.Reassembler()
    d = lockfrag.FrameDecoder()
    now = 0
    while s.more():
        kind = s.byte()
        piece = s.chunk()
        now += (kind & 0x0F) * 300
        if kind & 0x80:
            for m in d.feed(piece):
                assert 1 <= len(m) <= C.MAX_MESSAGE
        else:
            m = _fw_only(r.feed, piece, now)
            if m is not None:
                assert 1 <= len(m) <= C.MAX_MESSAGE


def fw_statements(data: bytes) -> None:
    """Server statements made of fuzzer bytes: refused with a typed error, never accepted."""
    s = Stream(data)
    which = s.byte() % 6
    args = s.rest()
    fns = [lambda: lockmsg.verify_time_token(FW_KEYS, NONCE_L, args),
           lambda: lockmsg.verify_deny(FW_KEYS, args),
           lambda: lockmsg.open_rekey(FW_KEYS, args),
           lambda: lockmsg.verify_ack(FW_KEYS, args),
           lambda: lockmsg.verify_factory_reset(FW_KEYS, NONCE_L, args),
           lambda: lockrecord.unpack(args[:32]) if len(args) >= 32 else None]
    try:
        out = fns[which]()
    except lockwire.ProtoError:
        return
    assert which == 5, "a statement made of fuzzer bytes was accepted"
    assert out is None or len(out) >= 8


def _check_session(lock: FakeLock, sess: LockSession, resp: bytes) -> None:
    assert isinstance(resp, bytes) and resp[:1] in (b"\x03", b"\x05"), resp[:1]
    if resp[0] == C.T_ERROR:
        assert len(resp) == 6 and resp[1] != C.E_INTERNAL, "ERROR INTERNAL: an unexpected exception"
    else:
        assert len(resp) >= 23 and resp[6] != C.E_INTERNAL, "RESULT INTERNAL"
    assert lock.actuations == [], "the session actuated"
    assert lock.config_values[C.CFG_LOCKOUT_THRESHOLD] == 5, "config changed without ADMIN"


def fw_session_raw(data: bytes) -> None:
    """Raw messages at the lock's session: connections, AUTHs, OPs, anything."""
    lock = FakeLock(MASTER, LOCK_ID, now=NOW)
    lock.lockout_threshold = 10_000
    sess = LockSession(lock)
    s = Stream(data)
    sess.hello()
    while s.more():
        ctl = s.byte()
        if ctl & 0x80:
            sess.hello()
        msg = s.chunk(big=bool(ctl & 0x40))
        _check_session(lock, sess, sess.handle(msg))


def _server_statement(kind: int, s: Stream, nonce_l: bytes) -> bytes:
    """A statement the server really signed, with fuzzer-chosen contents."""
    if kind == 0:
        return P.time_token(HOST_KEYS, nonce_l, struct.unpack(">I", (s.chunk() + bytes(4))[:4])[0])
    if kind == 1:
        raw = s.chunk()
        entries = [(1 + (raw[i] & 1), raw[i + 1], NOW + raw[i + 2] * 60) for i in range(0, len(raw) - 2, 3)]
        return P.deny_list(HOST_KEYS, 1 + s.byte(), entries[:64])
    if kind == 2:
        return P.rekey_message(HOST_KEYS, bytes([s.byte()]) * 32, 2 + s.byte())
    if kind == 3:
        return P.journal_ack(HOST_KEYS, s.byte(), s.chunk()[:8].ljust(8, b"\0"))
    return s.chunk(big=True)


def fw_session_authed(data: bytes) -> None:
    """A genuine session of a journal reader's ticket; the fuzzer picks ops, arguments
    (raw, or real server statements with fuzzed contents), counters and MACs. The
    ticket has no UNLOCK, LOCK or ADMIN right: nothing may actuate or configure."""
    lock = FakeLock(MASTER, LOCK_ID, now=NOW, nonces=[NONCE_L])
    lock.lockout_threshold = 10_000
    sess = LockSession(lock)
    s = Stream(data)
    hello = sess.hello()
    ps = P.PhoneSession(TICKET, K_T, hello, nonce_p=bytes(16))
    first = True
    while s.more():
        ctl = s.byte()
        op = s.byte()
        args = _server_statement(ctl & 7, s, NONCE_L) if ctl & 8 else s.chunk()
        if first:
            msg = bytearray(ps.auth(op, args))
            first = False
        else:
            try:
                msg = bytearray(ps.op(op, args))
            except P.ProtocolError:
                return  # the phone knows the lock ended the session
        if ctl & 0x10 and msg:
            msg[s.byte() % len(msg)] ^= 1 + s.byte() % 255
        resp = sess.handle(bytes(msg))
        _check_session(lock, sess, resp)
        if not ctl & 0x10:
            try:
                ps.read(resp)
            except P.ProtocolError as e:
                # the phone never calls the genuine lock's answer forged: a BAD_MAC or
                # BAD_COUNTER here is the lock's own ERROR, or its RESULT's status (a relayed
                # statement the lock refused, e.g. an ack whose chain is not the lock's)
                if e.code in (P.Err.BAD_COUNTER, P.Err.BAD_MAC):
                    assert resp[0] == C.T_ERROR or resp[6] == e.code, e
        else:
            return


# -------------------------------------------------------------------- host ----

def host_wire(data: bytes) -> None:
    """lockproto's message, ticket, HELLO, state-block, record and advert decoders."""
    s = Stream(data)
    which = s.byte() % 8
    b = s.rest()
    fns = (P.decode_message, P.Ticket.decode, P.Hello.decode, P.StateBlock.decode, P.Record.decode,
           Advert.decode, parse_ad, P.ErrorFrame.decode)
    out = _host_only(fns[which], b)
    if out is not None and which == 1:
        out.check(struct.unpack(">I", (b[:4] + bytes(4))[:4])[0])


def host_transport(data: bytes) -> None:
    s = Stream(data)
    t = [0.0]
    r = HostReassembler(clock=lambda: t[0])
    d = P.FrameDecoder()
    while s.more():
        kind = s.byte()
        piece = s.chunk()
        t[0] += (kind & 0x0F) * 0.3
        if kind & 0x80:
            for m in d.feed(piece):
                assert 1 <= len(m) <= P.MAX_MESSAGE
        else:
            m = _host_only(r.feed, piece)
            if m is not None:
                assert 1 <= len(m) <= P.MAX_MESSAGE


def host_phone(data: bytes) -> None:
    """A hostile lock (or an injector) answers the phone: never believed unless genuine."""
    lock = FakeLock(MASTER, LOCK_ID, now=NOW, nonces=[NONCE_L])
    hello = LockSession(lock).hello()
    s = Stream(data)
    ps = P.PhoneSession(TICKET, K_T, hello, nonce_p=bytes(16))
    ps.auth(s.byte(), s.chunk())
    try:
        ps.read(s.rest())
    except P.ProtocolError:
        return
    raise AssertionError("the phone believed an answer made of fuzzer bytes")


def _keys_for(epoch: int):
    if epoch != 1:
        raise P.ProtocolError(P.Err.WRONG_EPOCH, epoch)
    return HOST_KEYS


def host_server_side(data: bytes) -> None:
    """What the server and provisioning tool read from locks: export chunks, PROVISIONED,
    AUTHs checked by the reference lock. Fuzzer bytes are never accepted."""
    s = Stream(data)
    which = s.byte() % 3
    b = s.rest()
    if which == 0:
        out = _host_only(P.open_chunk, _keys_for, b)
    elif which == 1:
        out = _host_only(P.read_provisioned, HOST_KEYS, NONCE_L, b)
        out = out if out is None else "accepted"
    else:
        lock = FakeLock(MASTER, LOCK_ID, now=NOW, nonces=[bytes(range(16, 32))])  # not the seeds' nonce
        out = _host_only(P.lock_check_auth, HOST_KEYS, LockSession(lock).hello(), b)
    assert out is None, "fuzzer bytes accepted as genuine"


TARGETS = {
    "fw_wire": fw_wire,
    "fw_transport": fw_transport,
    "fw_statements": fw_statements,
    "fw_session_raw": fw_session_raw,
    "fw_session_authed": fw_session_authed,
    "host_wire": host_wire,
    "host_transport": host_transport,
    "host_phone": host_phone,
    "host_server_side": host_server_side,
}
_ORDER = list(TARGETS)


def every(data: bytes) -> None:
    """All targets in one process (the test suite's short run): the first byte picks one."""
    if data:
        TARGETS[_ORDER[data[0] % len(_ORDER)]](data[1:])


def target_of(data: bytes) -> str:
    """Which target an input of ``every`` runs (for per-target corpus counts)."""
    return _ORDER[data[0] % len(_ORDER)] if data else "none"


def seeds(name: str) -> list[bytes]:
    """Valid inputs for each target, so the fuzzer starts inside the protocol."""
    lock = FakeLock(MASTER, LOCK_ID, now=NOW, nonces=[NONCE_L])
    hello = LockSession(lock).hello()
    ps = P.PhoneSession(TICKET, K_T, hello, nonce_p=bytes(16))
    auth = ps.auth(P.Op.STATUS)
    op = ps.op(P.Op.NOP)
    err = bytes([5, 9, 0, 0, 0, 0])
    frames = [P.encode_frame(auth)] + P.fragment(auth)
    if name in ("fw_wire", "host_wire"):
        return [bytes([i]) + m for i, m in enumerate((hello, auth, op, err, hello[34:55], TICKET, err))] + [
            bytes([7]) + struct.pack(">I", NOW) + b"\0" + TICKET]
    if name in ("fw_transport", "host_transport"):
        return [b"".join(bytes([0x81 if i == 0 else 1, len(f)]) + f for i, f in enumerate(frames))]
    if name == "fw_statements":
        # well-formed statements, signed with another lock's keys: the target's MAC is out of reach
        other = P.LockKeys.from_master(bytes(32), LOCK_ID, 1)
        return [bytes([0]) + P.time_token(other, NONCE_L, NOW), bytes([1]) + P.deny_list(other, 3, [(1, 5, NOW + 9)]),
                bytes([2]) + P.rekey_message(other, bytes(32), 2), bytes([3]) + P.journal_ack(other, 1, bytes(8)),
                bytes([5]) + bytes(32)]
    if name == "fw_session_raw":
        return [bytes([0x40, 0, len(auth)]) + auth + bytes([0x00, len(op)]) + op, bytes([0x80, 1, 1])]
    if name == "fw_session_authed":
        return [bytes([0, P.Op.STATUS, 0, 0, P.Op.JOURNAL_READ, 5]) + struct.pack(">IB", 1, 4)
                + bytes([8 | 1, P.Op.DENY_UPDATE, 3, 1, 9, 3, 7]),
                bytes([8 | 2, P.Op.REKEY, 1, 1]), bytes([8, P.Op.TIME_SET, 4, 0x70, 0, 0, 0])]
    if name == "host_phone":
        return [bytes([P.Op.STATUS, 0]) + err]
    if name == "host_server_side":
        return [bytes([2]) + auth, bytes([1]) + bytes(29)]
    if name == "every":
        return [bytes([i]) + s for i, n in enumerate(_ORDER) for s in seeds(n)]
    return []
