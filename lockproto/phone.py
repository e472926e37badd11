"""The phone's half of a session (§4): HELLO in, AUTH and OPs out, RESULTs verified.

Also the lock's RESULT encoder (:func:`lock_result`), used only by tests, vectors
and simulated locks.
"""

from __future__ import annotations

import secrets

from .codes import (
    CHUNK_HEAD_LEN, CHUNK_MAX, MAC_LEN, NONCE_LEN, PROTO_MAX, PROTO_MIN, RECORD_LEN, REKEY_PROOF_LEN,
    STATE_LEN, TICKET_LEN, Bolt, Err, MsgType, Op,
)
from .crypto import LockKeys, session_key, ticket_key
from .errors import ProtocolError
from .wire import Auth, ErrorFrame, Hello, OpFrame, Result, StateBlock, Ticket

__all__ = ["PhoneSession", "lock_result", "lock_check_auth", "lock_check_op", "session_key", "VALIDITY_CODES"]

#: statuses of §2.4 checks: at AUTH the session is not established, on an OP it ends (§4.2, §4.3)
VALIDITY_CODES = frozenset({Err.NOT_YET_VALID, Err.EXPIRED, Err.OUTSIDE_WINDOW, Err.REVOKED})

#: payload length of an OK RESULT per op (§4.6); JOURNAL_READ is checked separately
_PAYLOAD_LEN = {Op.NOP: 0, Op.UNLOCK: 1, Op.LOCK: 1, Op.STATUS: STATE_LEN, Op.JOURNAL_ACK: 4,
                Op.TIME_SET: 4, Op.DENY_UPDATE: 4, Op.REKEY: REKEY_PROOF_LEN, Op.CONFIG: 5,
                Op.FACTORY_RESET: 0}


def lock_result(k_s: bytes, ctr: int, op: int, status: int, payload: bytes = b"") -> bytes:
    """A RESULT as the lock sends it: ``ctr``/``op`` of the request, MAC ``fmac(0x4C, ctr, RESULT[:-16])``."""
    if status != Err.OK and payload:
        raise ValueError("a RESULT carries a payload only with status OK")
    return Result(ctr, int(op), int(status), bytes(payload)).sign(k_s).encode()


def lock_check_auth(keys: LockKeys, hello: bytes, msg: bytes) -> tuple[Ticket, Auth, bytes]:
    """The lock's checks 2-7 of §4.2 on an AUTH, in order, for the connection whose exact HELLO
    was ``hello``: returns the ticket, the AUTH and ``K_S``, or raises ProtocolError with the
    ERROR the lock answers (MALFORMED, UNSUPPORTED_VERSION, WRONG_LOCK, WRONG_EPOCH, BAD_MAC).

    A reference for tests and simulated locks; rate limiting (check 1), validity (check 8)
    and the first op are the caller's.
    """
    a = Auth.decode(msg)                                                         # 2
    if not PROTO_MIN <= a.version <= PROTO_MAX:                                  # 3
        raise ProtocolError(Err.UNSUPPORTED_VERSION, (PROTO_MIN << 8) | PROTO_MAX)
    t = Ticket.decode(a.ticket)                                                  # 4
    if t.lock_id != keys.lock_id:                                                # 5
        raise ProtocolError(Err.WRONG_LOCK)
    if t.epoch != keys.epoch:                                                    # 6
        raise ProtocolError(Err.WRONG_EPOCH, keys.epoch)
    hello = bytes(hello)
    k_s = session_key(ticket_key(keys, a.ticket), Hello.decode(hello).nonce, a.nonce_p)
    if not a.verify(k_s, hello):                                                 # 7
        raise ProtocolError(Err.BAD_MAC)
    return t, a, k_s


def lock_check_op(k_s: bytes, expected_ctr: int, msg: bytes) -> OpFrame:
    """The lock's checks of §4.3 on an OP: layout (MALFORMED), counter (BAD_COUNTER, before
    the MAC), MAC (BAD_MAC). A reference for tests and simulated locks."""
    f = OpFrame.decode(msg)
    if f.ctr != expected_ctr:
        raise ProtocolError(Err.BAD_COUNTER)
    if not f.verify(k_s):
        raise ProtocolError(Err.BAD_MAC)
    return f


def _payload_ok(op: int, args: bytes, payload: bytes) -> bool:
    """Is ``payload`` the shape §4.6 defines for an OK answer to ``op``? (Unknown ops: anything.)"""
    if op == Op.JOURNAL_READ:
        n = len(payload)
        if n < CHUNK_HEAD_LEN + MAC_LEN:
            return False
        count = payload[8]
        max_count = args[4] if len(args) == 5 else CHUNK_MAX
        return count <= min(max_count, CHUNK_MAX) and n == CHUNK_HEAD_LEN + RECORD_LEN * count + MAC_LEN
    want = _PAYLOAD_LEN.get(op)
    if want is None:
        return True
    if len(payload) != want:
        return False
    if op in (Op.UNLOCK, Op.LOCK):
        return payload[0] in Bolt._value2member_map_
    if op == Op.STATUS:
        try:
            StateBlock.decode(payload)
        except ProtocolError:
            return False
    return True  # a REKEY proof is checked with the new keys by issuer.verify_rekey_proof


class PhoneSession:
    """One connection to one lock with one ticket.

    Built from the ticket bytes, its key ``K_T`` and the exact HELLO the lock sent on
    this connection (``nonce_p`` defaults to 16 fresh random bytes). The constructor
    picks the highest protocol version both sides speak (§8) and raises
    ProtocolError(UNSUPPORTED_VERSION, lock's ``min << 8 | max``) when there is none.

    :meth:`auth` opens the session with its first operation (once per connection);
    :meth:`op` sends further ones with counters 1, 2, …; :meth:`read` checks each
    answer (type, counter, MAC, op) and returns the OK :class:`Result`, or raises
    ProtocolError: the lock's code for an ERROR frame or a RESULT with a non-zero
    status; BAD_COUNTER, BAD_MAC or MALFORMED when the answer is not the genuine
    answer to the request in flight (which then stays in flight: a forged frame
    cannot end or steer the session, and the genuine answer is still accepted).

    The phone tracks the lock's session state: after an ERROR, a failed validity
    check (§4.2 check 8, or §4.3 on an OP) or a successful REKEY the lock has ended
    the session, and :meth:`op` raises ProtocolError(NO_SESSION) locally.
    """

    def __init__(self, ticket: bytes, k_t: bytes, hello: bytes, nonce_p: bytes | None = None) -> None:
        self.hello_bytes = bytes(hello)
        self.hello = Hello.decode(self.hello_bytes)
        lo, hi = max(PROTO_MIN, self.hello.proto_min), min(PROTO_MAX, self.hello.proto_max)
        if lo > hi:
            raise ProtocolError(Err.UNSUPPORTED_VERSION, (self.hello.proto_min << 8) | self.hello.proto_max)
        self.version = hi
        self.ticket = bytes(ticket)
        if len(self.ticket) != TICKET_LEN:
            raise ProtocolError(Err.MALFORMED)
        if len(k_t) != 32:
            raise ValueError("K_T is 32 bytes")
        self.nonce_p = bytes(nonce_p) if nonce_p is not None else secrets.token_bytes(NONCE_LEN)
        if len(self.nonce_p) != NONCE_LEN:
            raise ValueError("nonce_P is 16 bytes")
        self._ks = session_key(k_t, self.hello.nonce, self.nonce_p)
        self._ctr = 0
        self._auth_sent = False
        self._pending: tuple[int, int, bytes] | None = None  # (ctr, op, args) in flight
        self.established = False  # the lock accepted the AUTH (its RESULT verified)
        self.closed = False       # the lock has ended the session

    @property
    def session_key(self) -> bytes:
        """``K_S`` of this connection (for tests)."""
        return self._ks

    def preflight(self) -> Err:
        """What the lock would answer before the MAC, checked locally: the ticket's
        structure, lock id and epoch against the HELLO. A phone should not send an AUTH
        that fails here: failures count towards the lock's rate limiting (§7)."""
        try:
            t = Ticket.decode(self.ticket)
        except ProtocolError as e:
            return e.code
        if t.lock_id != self.hello.lock_id:
            return Err.WRONG_LOCK
        if t.epoch != self.hello.epoch:
            return Err.WRONG_EPOCH
        return Err.OK

    def auth(self, op: int, args: bytes = b"") -> bytes:
        """The AUTH message carrying the first operation (once per connection)."""
        if self._auth_sent:
            raise ProtocolError(Err.NO_SESSION)  # one AUTH per HELLO (§4.2)
        a = Auth(self.version, self.ticket, self.nonce_p, int(op), bytes(args)).sign(self._ks, self.hello_bytes)
        msg = a.encode()
        self._auth_sent = True
        self._pending = (0, int(op), bytes(args))
        return msg

    def op(self, op: int, args: bytes = b"") -> bytes:
        """An OP message with the next counter (1 for the first OP after AUTH)."""
        if not self._auth_sent or self.closed:
            raise ProtocolError(Err.NO_SESSION)
        msg = OpFrame(self._ctr + 1, int(op), bytes(args)).sign(self._ks).encode()
        self._ctr += 1
        self._pending = (self._ctr, int(op), bytes(args))
        return msg

    def _end(self) -> None:
        self.closed = True
        self._pending = None

    def read(self, msg: bytes) -> Result:
        """Check the lock's answer to the request in flight; return it when its status is OK.

        Otherwise raise ProtocolError; its ``origin`` tells a genuine refusal by the lock
        (``"lock"``, a MACed status) from an answer that failed this check (``"local"``:
        forged, corrupted, replayed or for another request) and from an unauthenticated
        ERROR frame (``"claim"``)."""
        if self._pending is None:
            raise ProtocolError(Err.NO_SESSION)
        if isinstance(msg, (bytes, bytearray, memoryview)) and bytes(msg[:1]) == bytes([MsgType.ERROR]):
            e = ErrorFrame.decode(msg)  # the lock's claim; every ERROR ends its session state
            self._end()
            raise e.error()
        r = Result.decode(msg)
        ctr, op, args = self._pending
        if r.ctr != ctr:
            raise ProtocolError(Err.BAD_COUNTER)
        if not r.verify(self._ks):
            raise ProtocolError(Err.BAD_MAC)
        if r.op != op:
            raise ProtocolError(Err.MALFORMED)
        # genuine from here on
        self._pending = None
        if r.status in VALIDITY_CODES:
            self._end()  # never established (AUTH) or ended (OP)
            raise ProtocolError(r.status, origin="lock")
        if ctr == 0:
            self.established = True
        if r.status != Err.OK:
            raise ProtocolError(r.status, origin="lock")
        if not _payload_ok(op, args, r.payload):
            self._end()
            raise ProtocolError(Err.MALFORMED)
        if op in (Op.REKEY, Op.FACTORY_RESET):
            self._end()  # the lock's key changed or is gone: it ended the session (§4.6, §3.4)
        return r
