"""The lock client: what a tool or a simulated phone does with one lock over a transport.

:class:`LockClient` speaks the protocol through :mod:`lockproto` and never holds a
lock key longer than one call: provisioning relays the key from its source straight
into the PROVISION message, and sessions use only the ticket and its ``K_T``. Errors
the lock answers are raised as :class:`LockError` carrying the protocol code
(:class:`lockproto.Err`); words for people come from ``Err.describe`` at the CLI.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Callable

from lockproto import (
    Err, Flag, Hello, LockKeys, Op, PhoneSession, ProtocolError, provision_message, read_provisioned,
)
from lockproto.codes import CHUNK_MAX

from .transport import Transport


class LockError(Exception):
    """The lock (or the protocol check of its answer) refused: ``code`` is a lockproto Err."""

    def __init__(self, code: int, detail: int = 0, doing: str = "", origin: str = "local") -> None:
        self.code = Err(code) if code in Err._value2member_map_ else Err.MALFORMED
        self.detail = detail
        self.doing = doing
        self.origin = origin   # ProtocolError.origin: "lock", "claim" or "local"
        why = ""
        if origin == "local" and self.code in (Err.BAD_MAC, Err.BAD_COUNTER, Err.MALFORMED):
            why = " (the answer failed this side's check: forged, corrupted or not the lock's)"
        super().__init__(f"{doing + ': ' if doing else ''}{self.code.describe()} ({self.code.name}){why}")


@dataclass
class Ticket:
    """A ticket as a phone holds it: the 41 ticket bytes and its key ``K_T`` (never printed)."""

    ticket: bytes
    k_t: bytes

    def __repr__(self) -> str:
        return f"Ticket({self.ticket[:0]!r}..., k_t=<hidden>)"


def _protocol(doing: str):
    def wrap(fn):
        def inner(*a, **kw):
            try:
                return fn(*a, **kw)
            except ProtocolError as e:
                raise LockError(e.code, e.detail, doing, e.origin) from None
        inner.__name__ = fn.__name__
        inner.__doc__ = fn.__doc__
        return inner
    return wrap


class Session:
    """One authenticated connection: AUTH with the first operation, then OPs."""

    def __init__(self, transport: Transport, ticket: Ticket, hello: bytes) -> None:
        self._t = transport
        self.hello = Hello.decode(hello)
        self._ps = PhoneSession(ticket.ticket, ticket.k_t, hello)
        pre = self._ps.preflight()
        if pre != Err.OK:
            # refused locally: a wrong-lock AUTH would count against the lock's rate limit
            raise ProtocolError(pre, self.hello.epoch if pre == Err.WRONG_EPOCH else 0)

    def call(self, op: int, args: bytes = b"") -> bytes:
        """Run one operation; its OK payload, or ProtocolError with the lock's code."""
        msg = self._ps.op(op, args) if self._ps.established else self._ps.auth(op, args)
        return self._ps.read(self._t.request(msg)).payload

    @property
    def nonce_l(self) -> bytes:
        return self.hello.nonce


class LockClient:
    """A lock behind one transport."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    def close(self) -> None:
        self.transport.close()

    @_protocol("reading the lock's greeting")
    def hello(self) -> Hello:
        """A fresh connection's HELLO, decoded (lock id, epoch, flags, battery, journal head)."""
        return Hello.decode(self.transport.hello())

    @_protocol("provisioning")
    def provision(self, lock_id: bytes, epoch: int, master: bytes, time: int) -> Hello:
        """Put a factory unit into service with its identity and first master key.

        ``master`` goes from the caller (the key server's answer) straight into the
        PROVISION message and is not kept. The unit answers with a proof that it holds
        the key, bound to this connection; it is checked here (ProtocolError BAD_MAC
        otherwise). Returns the HELLO read afterwards, which shows the new identity.
        """
        keys = LockKeys.from_master(master, lock_id, epoch)
        hello = Hello.decode(self.transport.hello())
        if not hello.state.flags & Flag.FACTORY:
            raise ProtocolError(Err.PROVISIONED)
        read_provisioned(keys, hello.nonce, self.transport.request(provision_message(lock_id, epoch, master, time)))
        return Hello.decode(self.transport.hello())

    @_protocol("opening a session")
    def session(self, ticket: Ticket, hello: bytes | None = None) -> Session:
        """A session with ``ticket`` (its AUTH goes with the first :meth:`Session.call`): on a
        new connection, or on the current one when ``hello`` is the HELLO just read on it and
        nothing has been sent since (one connection for the whole door visit)."""
        return Session(self.transport, ticket, hello if hello is not None else self.transport.hello())

    # ---- one-call operations, each on its own connection ----

    def _one(self, ticket: Ticket, op: int, args: bytes = b"", doing: str = "") -> bytes:
        try:
            return self.session(ticket).call(op, args)
        except ProtocolError as e:
            raise LockError(e.code, e.detail, doing, e.origin) from None

    def unlock(self, ticket: Ticket) -> int:
        """Unlock; the bolt state right after (UNLOCKING while the motor runs)."""
        return self._one(ticket, Op.UNLOCK, doing="unlocking")[0]

    def lock(self, ticket: Ticket) -> int:
        return self._one(ticket, Op.LOCK, doing="locking")[0]

    def status(self, ticket: Ticket) -> bytes:
        return self._one(ticket, Op.STATUS, doing="reading the status")

    def journal_chunks(self, ticket: Ticket, from_seq: int = 1, session: Session | None = None) -> list[bytes]:
        """Every export chunk from ``from_seq`` to the head, in one session (encrypted, MACed):
        a new one, or ``session`` when its ticket carries the journal right."""
        chunks = []
        try:
            s = session or self.session(ticket)
            seq = from_seq
            while True:
                payload = s.call(Op.JOURNAL_READ, struct.pack(">IB", seq, CHUNK_MAX))
                count, head = payload[8], struct.unpack(">I", payload[9:13])[0]
                chunks.append(payload)
                first = struct.unpack(">I", payload[4:8])[0]
                if count == 0 or first + count > head:
                    return chunks
                seq = first + count
        except ProtocolError as e:
            raise LockError(e.code, e.detail, "reading the journal", e.origin) from None

    def with_statement(self, ticket: Ticket, op: int, make: Callable[[bytes], bytes], doing: str) -> bytes:
        """An op whose args the server binds to this connection's ``nonce_L`` (TIME_SET,
        FACTORY_RESET): ``make(nonce_l)`` asks the server for them."""
        try:
            s = self.session(ticket)
            return s.call(op, make(s.nonce_l))
        except ProtocolError as e:
            raise LockError(e.code, e.detail, doing, e.origin) from None

    def relay(self, ticket: Ticket, op: int, args: bytes, doing: str) -> bytes:
        """An op carrying a server statement that is not connection-bound (DENY_UPDATE,
        JOURNAL_ACK, REKEY)."""
        return self._one(ticket, op, args, doing)
