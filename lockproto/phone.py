"""The phone's half of a session (§4): HELLO in, AUTH and OPs out, RESULTs verified."""

from __future__ import annotations

import secrets

from .codes import DIR_LOCK, DIR_PHONE, NONCE_LEN, PROTO_MAX, PROTO_MIN, Err, MsgType
from .crypto import compare_digest, fmac, session_key, sha256
from .errors import ProtocolError
from .wire import Auth, ErrorFrame, Hello, OpFrame, Result


def lock_result(k_s: bytes, ctr: int, op: int, status: int, payload: bytes = b"") -> bytes:
    """A RESULT as the lock sends it (tests, vectors, simulated locks)."""
    body = Result(ctr, op, status, payload if status == Err.OK else b"").body()
    return body + fmac(k_s, DIR_LOCK, ctr, body)


class PhoneSession:
    """One connection to one lock with one ticket.

    ``auth(op)`` opens the session with its first operation; ``op(op)`` sends
    further ones; ``read(msg)`` checks the lock's answer and returns the OK
    :class:`~lockproto.wire.Result`, or raises :class:`ProtocolError` carrying the
    lock's code (ERROR frames, failing RESULTs) or BAD_MAC/BAD_COUNTER/MALFORMED
    when the answer is not genuine.
    """

    def __init__(self, ticket: bytes, k_t: bytes, hello: bytes, nonce_p: bytes | None = None):
        self.hello = Hello.decode(hello)
        version = min(PROTO_MAX, self.hello.proto_max)
        if version < max(PROTO_MIN, self.hello.proto_min):
            raise ProtocolError(Err.UNSUPPORTED_VERSION, (self.hello.proto_min << 8) | self.hello.proto_max)
        self.version = version
        self.ticket = bytes(ticket)
        self.nonce_p = nonce_p if nonce_p is not None else secrets.token_bytes(NONCE_LEN)
        self._hh = sha256(bytes(hello))
        self._ks = session_key(k_t, self.hello.nonce, self.nonce_p)
        self._ctr = 0
        self._pending: tuple[int, int] | None = None

    @property
    def session_key(self) -> bytes:
        return self._ks

    def auth(self, op: int, args: bytes = b"") -> bytes:
        a = Auth(self.version, self.ticket, self.nonce_p, int(op), bytes(args))
        self._pending = (0, int(op))
        return a.body() + fmac(self._ks, DIR_PHONE, 0, self._hh + a.body())

    def op(self, op: int, args: bytes = b"") -> bytes:
        self._ctr += 1
        f = OpFrame(self._ctr, int(op), bytes(args))
        self._pending = (self._ctr, int(op))
        return f.body() + fmac(self._ks, DIR_PHONE, self._ctr, f.body())

    def read(self, msg: bytes) -> Result:
        if msg[:1] == bytes([MsgType.ERROR]):
            e = ErrorFrame.decode(msg)
            raise ProtocolError(e.code, e.detail)
        r = Result.decode(msg)
        if self._pending is None:
            raise ProtocolError(Err.NO_SESSION)
        ctr, op = self._pending
        if not compare_digest(fmac(self._ks, DIR_LOCK, r.ctr, msg[:-16]), r.mac):
            raise ProtocolError(Err.BAD_MAC)
        if r.ctr != ctr:
            raise ProtocolError(Err.BAD_COUNTER)
        if r.op != op:
            raise ProtocolError(Err.MALFORMED)
        self._pending = None
        if r.status != Err.OK:
            raise ProtocolError(r.status)
        return r
