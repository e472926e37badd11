"""A carer's phone app, on the provisioning library: what the phone does at a door.

:class:`CarerApp` holds one carer's key-server client (phone token) and a way to reach
a lock (any transport: the simulator's radio, Bluetooth, the cable). At a door it
reports the lock's HELLO to the server (battery and health hints), relays what the
lock needs (a pending re-key, a newer deny list, a time token for a lock that lost
track of time), opens the door with the bundle's ticket, and afterwards carries the
lock's journal to the server and the server's acknowledgement back. The phone is only
a courier: it cannot read the journal, and every statement it relays is MACed by the
server for this lock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from lockproto import Flag, Hello, Op, ProtocolError, Right

from .client import LockClient, LockError, Session, Ticket
from .keysource import KeyServerSource, SourceError, bundle_entry, bundle_ticket
from .transport import Transport, TransportError


@dataclass
class DoorVisit:
    """What happened at one door."""

    lock_id: str
    opened: bool = False
    locked: bool = False
    refusal: str | None = None           # the protocol code's name, or what failed
    code: int | None = None              # the lockproto Err of a refusal by the lock (None: radio, server)
    relayed: list[str] = field(default_factory=list)
    journal_records: int = 0
    battery_pct: int | None = None


def journal_courier(c: LockClient, ks, lock_id: bytes, ticket: Ticket, from_seq: int,
                    session: Session | None = None) -> tuple[int, int | None]:
    """Read the journal from ``from_seq``, upload every chunk, relay the server's ack (on
    ``session`` when given: its ticket must carry the journal right).

    Returns (records the server stored, the lock's acknowledged sequence or None)."""
    stored, ack = 0, None
    for chunk in c.journal_chunks(ticket, from_seq, session):
        up = ks.upload(lock_id, chunk)
        if up.problem:
            raise SourceError(f"the key server refused the journal: {up.problem}")
        stored += up.stored
        ack = up.ack or ack
    if ack is None:
        return stored, None
    if session is not None:
        acked = session.call(Op.JOURNAL_ACK, ack)
    else:
        acked = c.relay(ticket, Op.JOURNAL_ACK, ack, "acknowledging the journal")
    return stored, int.from_bytes(acked, "big")


class CarerApp:
    def __init__(self, name: str, ks: KeyServerSource, transport_for: Callable[[str], Transport]) -> None:
        self.name = name
        self.ks = ks
        self.transport_for = transport_for

    def _report(self, hello: bytes) -> dict:
        # the HELLO goes to the server as a hint; a phone without a connection (or a
        # revoked one) still works from the bundle it holds
        try:
            return self.ks.hello(hello)
        except SourceError:
            return {}

    def _entry(self, lock_id: bytes) -> dict | None:
        # a fresh bundle at every door while online (new deny lists, re-keys, alarm
        # keys travel with it); the bundle held from before when the server is out of reach
        try:
            bundle = self.ks.bundle(fresh=True)
        except SourceError:
            bundle = self.ks.held_bundle
        return bundle_entry(bundle, lock_id)

    def pass_by(self, where: str) -> Hello | None:
        """Walking past a door: read its HELLO and report battery and health to the server."""
        c = LockClient(self.transport_for(where))
        try:
            raw = c.transport.hello()
            self._report(raw)
            return Hello.decode(raw)
        except (TransportError, ProtocolError):
            return None
        finally:
            c.close()

    def open_door(self, where: str, journal: bool = True) -> DoorVisit:
        """At the door ``where`` (what ``transport_for`` understands): relay, unlock, carry the journal."""
        return self._door(where, Op.UNLOCK, Right.UNLOCK, journal)

    def lock_door(self, where: str, journal: bool = True) -> DoorVisit:
        """Leaving: relay what the lock needs, lock it, carry the journal."""
        return self._door(where, Op.LOCK, Right.LOCK, journal)

    def _door(self, where: str, op: int, right: int, journal: bool) -> DoorVisit:
        c = LockClient(self.transport_for(where))
        v = DoorVisit(lock_id="?")
        try:
            raw = c.transport.hello()
            h = Hello.decode(raw)
            v.lock_id = h.lock_id.hex()
            v.battery_pct = None if h.state.battery_pct == 255 else h.state.battery_pct
            hint = self._report(raw)
            entry = self._entry(h.lock_id)
            if entry is None:
                v.refusal = "no ticket for this door"
                return v
            rk = entry.get("rekey")
            if hint.get("rekey") and rk and h.epoch == rk["old_epoch"]:
                t = bundle_ticket(entry, h.epoch, 0)
                if t is not None:
                    proof = c.session(t, raw).call(Op.REKEY, bytes.fromhex(rk["message"]))
                    self.ks.rekey_proof(h.lock_id, proof)
                    v.relayed.append(f"re-key to epoch {rk['new_epoch']}")
                    raw = c.transport.hello()
                    h = Hello.decode(raw)
                    entry = self._entry(h.lock_id) or entry
            # one ticket for the door and the journal when the bundle has one, else two
            t = bundle_ticket(entry, h.epoch, right | Right.JOURNAL) if journal else None
            t = t or bundle_ticket(entry, h.epoch, right)
            if t is None:
                v.refusal = f"no {'unlock' if op == Op.UNLOCK else 'lock'} ticket for epoch {h.epoch}"
                return v
            s = c.session(t, raw)   # on the connection whose HELLO was just read
            if h.state.flags & Flag.TIME_UNCERTAIN:
                try:
                    s.call(Op.TIME_SET, self.ks.time_token(h.lock_id, h.epoch, s.nonce_l))
                    v.relayed.append("time token")
                except SourceError:
                    pass   # offline: the lock takes the ticket by its own (uncertain) rule
            msg = entry["deny_lists"].get(str(h.epoch))
            if msg and entry["deny_version"] > h.state.deny_version:
                s.call(Op.DENY_UPDATE, bytes.fromhex(msg))
                v.relayed.append(f"deny list v{entry['deny_version']}")
            s.call(op)
            v.opened, v.locked = op == Op.UNLOCK, op == Op.LOCK
            if journal:
                jt = bundle_ticket(entry, h.epoch, Right.JOURNAL)
                if jt is not None:
                    v.journal_records, _ = journal_courier(c, self.ks, h.lock_id, jt, entry["journal_from_seq"],
                                                           s if jt.ticket == t.ticket else None)
        except (ProtocolError, LockError) as e:
            v.refusal, v.code = e.code.name, int(e.code)
        except (TransportError, SourceError) as e:
            v.refusal = str(e)
        finally:
            c.close()
        return v

    def collect_journal(self, where: str) -> int:
        """Carry a lock's journal to the server (after the visit, when the door is locked again)."""
        c = LockClient(self.transport_for(where))
        try:
            raw = c.transport.hello()
            h = Hello.decode(raw)
            entry = self._entry(h.lock_id)
            t = bundle_ticket(entry, h.epoch, Right.JOURNAL) if entry else None
            if t is None:
                return 0
            # on the connection whose HELLO was just read, as at the door
            n, _ = journal_courier(c, self.ks, h.lock_id, t, entry["journal_from_seq"], c.session(t, raw))
            return n
        except (SourceError, LockError, TransportError, ProtocolError):
            return 0   # the journal stays on the lock until a phone gets it through
        finally:
            c.close()
