"""Where simulated phones get their tickets and server statements.

:class:`KeySource` is the small interface a simulated phone and the scenario runner
need from a key server; :class:`LocalIssuer` implements it in-process on the host
protocol library (``lockproto.issuer``) for test benches without a key server. A
client of the real key server (``keyserver/``) plugs in by implementing the same
methods over HTTP.

The local issuer's state (lock masters, epochs, deny lists, ingested journals) is the
simulated key server's database: it lives in ``STATE/issuer.json`` so a fleet and
its keys survive restarts together. It is a test-bench file: lock keys are stored
there in the clear, which is acceptable only because every lock in it is simulated.
Keys are never printed or logged.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from lockproto import (
    DenyKind, Err, Hello, LockKeys, ProtocolError, deny_list, issue_ticket, journal_ack, open_chunk, rekey_pair,
    time_token, verify_chain, verify_rekey_proof,
)
from provisioning.keysource import SourceError, Upload


@dataclass(frozen=True)
class Grant:
    """One ticket for one lock, as a phone holds it: the ticket bytes and ``K_T``."""

    lock_id: bytes
    ticket_id: int
    user_id: int
    ticket: bytes
    k_t: bytes = field(repr=False)
    not_after: int = 0


@dataclass
class Ingest:
    """What the server made of one exported journal chunk."""

    records: list
    ack: bytes | None        # JOURNAL_ACK args to relay, None if nothing new verified
    problem: str | None = None


class KeySource(Protocol):
    """What phones and the scenario runner need from a key server."""

    def register(self, name: str) -> tuple[bytes, int, bytes]:
        """A new lock's (lock_id, epoch, master) for provisioning over the cable."""

    def grant(self, lock_id: bytes, user_id: int, not_before: int, not_after: int, rights: int,
              issued_at: int) -> Grant:
        """A ticket for ``user_id`` at ``lock_id``."""

    def time_token(self, lock_id: bytes, nonce_l: bytes, now: int) -> bytes:
        """TIME_SET args bound to one HELLO's nonce (the phone must be online)."""

    def deny_update(self, lock_id: bytes) -> tuple[int, bytes | None]:
        """(current deny-list version, DENY_UPDATE args or None when no list exists)."""

    def revoke_user(self, user_id: int, until: int) -> None:
        """Put a user on every lock's deny list until ``until``."""

    def rekey(self, lock_id: bytes) -> bytes:
        """REKEY args for a lock (the server keeps both epochs until the proof)."""

    def rekey_pending(self, lock_id: bytes) -> bytes | None:
        """REKEY args a visiting phone should deliver, or None."""

    def rekey_proved(self, lock_id: bytes, proof: bytes) -> bool:
        """Record a lock's re-key proof; True when it proves the new epoch."""

    def ingest(self, lock_id: bytes, payload: bytes) -> Ingest:
        """Verify and store one JOURNAL_READ chunk; the ack to carry back."""


class LocalIssuer:
    """An in-process key server on ``lockproto.issuer`` (see the module docstring)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else None
        self.locks: dict[str, dict] = {}     # lock_id hex -> {"name", "epoch", "master", "pending"}
        self.deny_version = 0
        self.deny_entries: list[tuple[int, int, int]] = []
        self.journal: dict[str, dict] = {}   # lock_id hex -> {"seq", "chain", "epoch", "records"}
        self._ticket_id = 1000
        self._by_name: dict[str, str] = {}
        self.mutex = threading.RLock()       # phones on many threads share one issuer
        self._deny_msgs: dict[tuple[str, int, int], bytes] = {}
        if self.path and self.path.exists():
            d = json.loads(self.path.read_text())
            self.locks = d["locks"]
            self.deny_version = d["deny_version"]
            self.deny_entries = [tuple(e) for e in d["deny_entries"]]
            self.journal = d["journal"]
            self._ticket_id = d["ticket_id"]

    def save(self) -> None:
        if self.path is None:
            return
        d = {"locks": self.locks, "deny_version": self.deny_version, "deny_entries": self.deny_entries,
             "journal": self.journal, "ticket_id": self._ticket_id}
        tmp = self.path.with_suffix(".new")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(d, f)
        tmp.replace(self.path)

    # ---- keys ----

    def keys(self, lock_id: bytes, epoch: int | None = None) -> LockKeys:
        e = self.locks.get(lock_id.hex())
        if e is None:
            raise KeyError(f"unknown lock {lock_id.hex()}")
        if epoch is None or epoch == e["epoch"]:
            return LockKeys.from_master(bytes.fromhex(e["master"]), lock_id, e["epoch"])
        p = e.get("pending")
        if p and p["epoch"] == epoch:
            return LockKeys.from_master(bytes.fromhex(p["master"]), lock_id, epoch)
        old = e.get("old", {}).get(str(epoch))
        if old:
            return LockKeys.from_master(bytes.fromhex(old), lock_id, epoch)
        raise ProtocolError(Err.WRONG_EPOCH, epoch)

    def name_of(self, lock_id: bytes) -> str:
        return self.locks[lock_id.hex()]["name"]

    def register(self, name: str) -> tuple[bytes, int, bytes]:
        lid = self._by_name.get(name)
        if lid is None:
            for k, e in self.locks.items():
                self._by_name.setdefault(e["name"], k)
            lid = self._by_name.get(name)
        if lid is not None:
            e = self.locks[lid]
            return bytes.fromhex(lid), e["epoch"], bytes.fromhex(e["master"])
        lock_id = b"LK" + secrets.token_bytes(6)
        master = secrets.token_bytes(32)
        self.locks[lock_id.hex()] = {"name": name, "epoch": 1, "master": master.hex()}
        self._by_name[name] = lock_id.hex()
        return lock_id, 1, master

    # ---- tickets and statements ----

    def grant(self, lock_id: bytes, user_id: int, not_before: int, not_after: int, rights: int,
              issued_at: int, epoch: int | None = None) -> Grant:
        self._ticket_id += 1
        t, k_t = issue_ticket(self.keys(lock_id, epoch), ticket_id=self._ticket_id, user_id=user_id,
                              not_before=not_before, not_after=not_after, issued_at=issued_at, rights=rights)
        return Grant(lock_id, self._ticket_id, user_id, t.encode(), k_t, not_after)

    def time_token(self, lock_id: bytes, nonce_l: bytes, now: int) -> bytes:
        return time_token(self.keys(lock_id), nonce_l, now)

    def deny_update(self, lock_id: bytes) -> tuple[int, bytes | None]:
        if not self.deny_version:
            return 0, None
        return self.deny_version, deny_list(self.keys(lock_id), self.deny_version, self.deny_entries)

    def deny_message(self, lock_id: bytes, epoch: int) -> bytes | None:
        """The current deny list MACed under ``epoch`` (DENY_UPDATE args), None when no list exists."""
        if not self.deny_version:
            return None
        key = (lock_id.hex(), epoch, self.deny_version)
        m = self._deny_msgs.get(key)
        if m is None:
            m = self._deny_msgs[key] = deny_list(self.keys(lock_id, epoch), self.deny_version, self.deny_entries)
        return m

    def revoke_user(self, user_id: int, until: int) -> None:
        self.deny_entries.append((int(DenyKind.USER), user_id, until))
        self.deny_version += 1

    def revoke_ticket(self, ticket_id: int, until: int) -> None:
        self.deny_entries.append((int(DenyKind.TICKET), ticket_id, until))
        self.deny_version += 1

    def rekey(self, lock_id: bytes) -> bytes:
        e = self.locks[lock_id.hex()]
        p = e.get("pending")
        if p is None:
            p = {"epoch": e["epoch"] + 1, "master": secrets.token_bytes(32).hex()}
            e["pending"] = p
        msg, _ = rekey_pair(self.keys(lock_id), bytes.fromhex(p["master"]), p["epoch"])
        return msg

    def rekey_pending(self, lock_id: bytes) -> bytes | None:
        return self.rekey(lock_id) if self.locks[lock_id.hex()].get("pending") else None

    def rekey_proved(self, lock_id: bytes, proof: bytes) -> bool:
        e = self.locks[lock_id.hex()]
        p = e.get("pending")
        if p is None:
            return False
        if not verify_rekey_proof(self.keys(lock_id, p["epoch"]), proof):
            return False
        e.setdefault("old", {})[str(e["epoch"])] = e["master"]
        e["epoch"], e["master"] = p["epoch"], p["master"]
        del e["pending"]
        return True

    # ---- journals ----

    def journal_state(self, lock_id: bytes) -> dict:
        e = self.locks[lock_id.hex()]
        return self.journal.setdefault(lock_id.hex(), {"seq": 0, "chain": None, "epoch": 1, "records": [],
                                                       "first_epoch": 1, "gaps": 0})

    def ingest(self, lock_id: bytes, payload: bytes) -> Ingest:
        j = self.journal_state(lock_id)
        try:
            chunk = open_chunk(lambda ep: self.keys(lock_id, ep), payload)
        except ProtocolError as e:
            return Ingest([], None, f"chunk refused: {e.code.name}")
        recs = [r for r in chunk.records if r.seq > j["seq"]]
        if not recs:
            return Ingest([], None)
        first = recs[0].seq
        if j["chain"] is not None and first == j["seq"] + 1:
            prev = bytes.fromhex(j["chain"])
        elif first == chunk.first_seq:
            prev = chunk.prev_chain
            if j["chain"] is not None or first != 1:
                j["gaps"] += 1  # records the lock overwrote before anyone collected them
        else:
            prev = bytes(chunk.records[first - chunk.first_seq - 1].chain)
        try:
            epoch = verify_chain(lambda ep: self.keys(lock_id, ep), prev, recs, j["epoch"])
        except ProtocolError as e:
            return Ingest([], None, f"chain broken at seq {e.detail}")
        last = recs[-1]
        j["seq"], j["chain"], j["epoch"] = last.seq, bytes(last.chain).hex(), epoch
        j["records"].extend([r.seq, r.time, r.event, r.user_id, r.arg] for r in recs)
        return Ingest(recs, journal_ack(self.keys(lock_id, epoch), last.seq, bytes(last.chain)))


class PhoneBundles:
    """One carer's phone on the local issuer, shaped like the phone side of
    :class:`provisioning.keysource.KeyServerSource` (what :class:`provisioning.carer.CarerApp`
    calls): ticket bundles in the key server's format (``POST /api/v1/phone/bundle``,
    docs/keyserver.md), HELLO reports, time tokens, journal uploads and re-key proofs.

    The grants (lock, validity, rights) are what the scenario's planner gave the carer;
    each bundle carries a ticket per grant for the lock's epoch, and for the new epoch
    too while an over-the-air re-key is pending, with the lock's deny list under each
    epoch. ``online`` False is a phone without network; ``revoked`` is a lost phone the
    server now refuses. Both still hold their last bundle (:attr:`held_bundle`).
    ``clock`` gives the simulated wall time for time tokens. Many phones share one issuer
    from many threads: every call holds the issuer's mutex.
    """

    def __init__(self, issuer: LocalIssuer, user_id: int, clock) -> None:
        self.issuer = issuer
        self.user_id = user_id
        self.clock = clock
        self.online = True
        self.revoked = False
        self.grants: dict[str, list[tuple[int, int, int]]] = {}   # lock id hex -> [(not_before, not_after, rights)]
        self._tickets: dict[tuple, dict] = {}
        self._bundle: dict | None = None

    def add_grant(self, lock_id: bytes, not_before: int, not_after: int, rights: int) -> None:
        with self.issuer.mutex:
            g = (int(not_before), int(not_after), int(rights))
            if g not in self.grants.setdefault(lock_id.hex(), []):
                self.grants[lock_id.hex()].append(g)

    def _reach(self, what: str) -> None:
        if not self.online:
            raise SourceError(f"no network: cannot reach the key server for {what}")
        if self.revoked:
            raise SourceError(f"key server refused {what} (403): this phone has been revoked")

    def _ticket(self, lock_id: bytes, epoch: int, g: tuple[int, int, int]) -> dict:
        key = (lock_id, epoch, g)
        t = self._tickets.get(key)
        if t is None:
            nb, na, rights = g
            gr = self.issuer.grant(lock_id, self.user_id, nb, na, rights, nb, epoch=epoch)
            t = self._tickets[key] = {"ticket_id": gr.ticket_id, "epoch": epoch, "ticket": gr.ticket.hex(),
                                      "k_t": gr.k_t.hex(), "not_before": nb, "not_after": na, "rights": rights}
        return t

    def bundle(self, fresh: bool = False) -> dict:
        if self._bundle is not None and not fresh:
            return self._bundle
        self._reach("the ticket bundle")
        with self.issuer.mutex:
            out = []
            for lid_hex, grants in self.grants.items():
                lid = bytes.fromhex(lid_hex)
                e = self.issuer.locks[lid_hex]
                p = e.get("pending")
                epochs = [e["epoch"]] + ([p["epoch"]] if p else [])
                out.append({
                    "lock_id": lid_hex, "epochs": epochs,
                    "tickets": [self._ticket(lid, ep, g) for ep in epochs for g in grants],
                    "deny_version": self.issuer.deny_version,
                    "deny_lists": {str(ep): m.hex() for ep in epochs
                                   if (m := self.issuer.deny_message(lid, ep)) is not None},
                    "rekey": ({"old_epoch": e["epoch"], "new_epoch": p["epoch"],
                               "message": self.issuer.rekey(lid).hex()} if p else None),
                    "journal_from_seq": self.issuer.journal_state(lid)["seq"] + 1})
            self._bundle = {"locks": out}
        return self._bundle

    @property
    def held_bundle(self) -> dict | None:
        return self._bundle

    def hello(self, hello: bytes) -> dict:
        self._reach("the HELLO report")
        with self.issuer.mutex:
            e = self.issuer.locks.get(Hello.decode(hello).lock_id.hex())
            return {"rekey": bool(e and e.get("pending"))}

    def time_token(self, lock_id: bytes, epoch: int, nonce_l: bytes) -> bytes:
        self._reach("a time token")
        with self.issuer.mutex:
            return time_token(self.issuer.keys(lock_id, epoch), nonce_l, int(self.clock()))

    def upload(self, lock_id: bytes, chunk: bytes):
        self._reach("the journal upload")
        with self.issuer.mutex:
            ing = self.issuer.ingest(lock_id, chunk)
        return Upload(len(ing.records), ing.ack, ing.problem)

    def rekey_proof(self, lock_id: bytes, proof: bytes) -> bool:
        self._reach("the re-key proof")
        with self.issuer.mutex:
            done = self.issuer.rekey_proved(lock_id, proof)
        self._bundle = None
        return done
