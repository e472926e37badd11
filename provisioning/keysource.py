"""Where lockctl gets tickets and server statements: a key server, or a test bench's local issuer.

Both sources offer the same calls (:class:`KeySource`). :class:`KeyServerSource` speaks the
key server's HTTP API (docs/keyserver.md): a *phone* token for what a carer's phone may
ask (ticket bundles, time tokens, journal uploads, re-key proofs) and, for registering
locks and starting re-keys, an *admin* session token. Tokens come from files or the
environment, never from the command line (which other users can read in ``ps``).

Provisioning: the tool draws the new master key from the operating system's random
source, registers it with the key server (stored there encrypted; no endpoint ever
returns a key), and only then hands it to the unit in the PROVISION message; the key is
never printed, logged or written to disk by the tool.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Protocol

from lockproto import Right, factory_reset_statement

from .client import Ticket


class SourceError(Exception):
    """The key source refused or failed (shown as ``lockctl: message``)."""


@dataclass
class Upload:
    stored: int
    ack: bytes | None
    problem: str | None = None


def bundle_entry(bundle: dict | None, lock_id: bytes) -> dict | None:
    """The entry of a phone bundle (``POST /api/v1/phone/bundle``) for one lock, or None."""
    for e in (bundle or {}).get("locks", ()):
        if e["lock_id"] == lock_id.hex():
            return e
    return None


def bundle_ticket(entry: dict, epoch: int, rights: int, valid_until: float = 0) -> Ticket | None:
    """A ticket of a bundle entry for ``epoch`` carrying every right in ``rights`` and valid
    past ``valid_until`` (Unix seconds), or None."""
    for t in entry["tickets"]:
        if t["epoch"] == epoch and t["rights"] & rights == rights and t["not_after"] > valid_until:
            return Ticket(bytes.fromhex(t["ticket"]), bytes.fromhex(t["k_t"]))
    return None


class KeySource(Protocol):
    def register(self, name: str, board: str, home: int | None = None) -> tuple[bytes, int, bytes]: ...

    def ticket(self, lock_id: bytes, epoch: int, rights: int) -> Ticket: ...

    def journal_from(self, lock_id: bytes) -> int: ...

    def upload(self, lock_id: bytes, chunk: bytes) -> Upload: ...

    def time_token(self, lock_id: bytes, epoch: int, nonce_l: bytes) -> bytes: ...

    def deny_list(self, lock_id: bytes, epoch: int) -> tuple[int, bytes | None]: ...

    def rekey(self, lock_id: bytes, onsite: bool) -> bytes: ...

    def rekey_proof(self, lock_id: bytes, proof: bytes) -> bool: ...

    def factory_reset(self, lock_id: bytes, epoch: int, nonce_l: bytes) -> bytes: ...

    def close(self) -> None: ...


class LocalSource:
    """The test bench's issuer (``simulator.keysource.LocalIssuer``), saved after every change."""

    def __init__(self, path: str, user: int = 1) -> None:
        from simulator.keysource import LocalIssuer
        self.issuer = LocalIssuer(path)
        self.user = user

    def _known(self, lock_id: bytes) -> None:
        if lock_id.hex() not in self.issuer.locks:
            raise SourceError(f"the key source does not know lock {lock_id.hex()}")

    def register(self, name: str, board: str, home: int | None = None) -> tuple[bytes, int, bytes]:
        out = self.issuer.register(name)
        self.issuer.save()
        return out

    def ticket(self, lock_id: bytes, epoch: int, rights: int) -> Ticket:
        self._known(lock_id)
        now = int(time.time())
        g = self.issuer.grant(lock_id, self.user, now - 60, now + 3600, rights, now - 60, epoch=epoch)
        self.issuer.save()
        return Ticket(g.ticket, g.k_t)

    def journal_from(self, lock_id: bytes) -> int:
        self._known(lock_id)
        return self.issuer.journal_state(lock_id)["seq"] + 1

    def upload(self, lock_id: bytes, chunk: bytes) -> Upload:
        ing = self.issuer.ingest(lock_id, chunk)
        self.issuer.save()
        return Upload(len(ing.records), ing.ack, ing.problem)

    def time_token(self, lock_id: bytes, epoch: int, nonce_l: bytes) -> bytes:
        return self.issuer.time_token(lock_id, nonce_l, int(time.time()))

    def deny_list(self, lock_id: bytes, epoch: int) -> tuple[int, bytes | None]:
        return self.issuer.deny_update(lock_id)

    def rekey(self, lock_id: bytes, onsite: bool) -> bytes:
        self._known(lock_id)
        msg = self.issuer.rekey(lock_id)
        self.issuer.save()  # the pending key must survive a crash before the proof
        return msg

    def rekey_proof(self, lock_id: bytes, proof: bytes) -> bool:
        ok = self.issuer.rekey_proved(lock_id, proof)
        self.issuer.save()
        return ok

    def factory_reset(self, lock_id: bytes, epoch: int, nonce_l: bytes) -> bytes:
        self._known(lock_id)
        return factory_reset_statement(self.issuer.keys(lock_id, epoch), nonce_l)

    def close(self) -> None:
        self.issuer.save()


class KeyServerSource:
    """The municipality's key server over HTTP(S)."""

    def __init__(self, url: str, phone_token: str | None, admin_token: str | None = None,
                 timeout: float = 15.0, transport=None, shift_hours: float = 1.0, clock=time.time) -> None:
        import httpx
        self._httpx = httpx
        self.url = url.rstrip("/")
        self._phone = phone_token
        self._admin = admin_token
        self._c = httpx.Client(base_url=self.url, timeout=timeout, transport=transport)
        self._bundle: dict | None = None
        self.shift_hours = shift_hours   # the lifetime of the bundle's tickets
        self.online = True               # False: the phone has no network (the held bundle still works)
        self.clock = clock               # the phone's wall clock (a test bench's simulated one)

    def _call(self, method: str, path: str, token: str, what: str, json: dict | None = None) -> dict:
        if not self.online:
            raise SourceError(f"no network: cannot reach the key server for {what}")
        try:
            r = self._c.request(method, path, json=json, headers={"Authorization": f"Bearer {token}"})
        except self._httpx.HTTPError as e:
            raise SourceError(f"key server {self.url} unreachable: {e}") from None
        if r.status_code >= 400:
            try:
                detail = r.json().get("detail") or r.text
            except ValueError:
                detail = r.text
            raise SourceError(f"key server refused {what} ({r.status_code}): {detail}")
        return r.json()

    def _need_phone(self, what: str) -> str:
        if not self._phone:
            raise SourceError(f"{what} needs a phone token (--token-file or LOCKCTL_TOKEN)")
        return self._phone

    def _need_admin(self, what: str) -> str:
        if not self._admin:
            raise SourceError(f"{what} needs an admin session token (--admin-token-file or LOCKCTL_ADMIN_TOKEN)")
        return self._admin

    def bundle(self, fresh: bool = False) -> dict:
        if self._bundle is None or fresh:
            self._bundle = self._call("POST", "/api/v1/phone/bundle", self._need_phone("a ticket bundle"),
                                      "the ticket bundle", {"hours": self.shift_hours})
        return self._bundle

    @property
    def held_bundle(self) -> dict | None:
        """The bundle fetched last (what an offline phone still works from), or None."""
        return self._bundle

    def _entry(self, lock_id: bytes, fresh: bool = False) -> dict:
        e = bundle_entry(self.bundle(fresh), lock_id)
        if e is not None:
            return e
        raise SourceError(f"the key server grants this phone's user nothing at lock {lock_id.hex()}")

    def register(self, name: str, board: str, home: int | None = None) -> tuple[bytes, int, bytes]:
        lock_id = b"LK" + secrets.token_bytes(6)
        master = secrets.token_bytes(32)
        body = {"lock_id": lock_id.hex(), "key": master.hex(), "epoch": 1, "board": board}
        if home is not None:
            body["home_id"] = home
        self._call("POST", "/api/v1/locks", self._need_admin("registering a lock"), "registering the lock", body)
        return lock_id, 1, master

    def ticket(self, lock_id: bytes, epoch: int, rights: int) -> Ticket:
        for fresh in (False, True):
            t = bundle_ticket(self._entry(lock_id, fresh), epoch, rights, self.clock() + 30)
            if t is not None:
                return t
        names = "+".join(r.name.lower() for r in Right if rights & r)
        raise SourceError(f"the key server gives no ticket with {names} for lock {lock_id.hex()} at epoch {epoch}")

    def journal_from(self, lock_id: bytes) -> int:
        return self._entry(lock_id, True)["journal_from_seq"]

    def upload(self, lock_id: bytes, chunk: bytes) -> Upload:
        r = self._call("POST", "/api/v1/phone/journal", self._need_phone("uploading a journal"),
                       "the journal upload", {"lock_id": lock_id.hex(), "chunk": chunk.hex()})
        return Upload(r.get("stored", 0), bytes.fromhex(r["ack"]) if r.get("ack") else None)

    def time_token(self, lock_id: bytes, epoch: int, nonce_l: bytes) -> bytes:
        r = self._call("POST", "/api/v1/phone/time-token", self._need_phone("a time token"), "the time token",
                       {"lock_id": lock_id.hex(), "epoch": epoch, "nonce": nonce_l.hex()})
        return bytes.fromhex(r["token"])

    def deny_list(self, lock_id: bytes, epoch: int) -> tuple[int, bytes | None]:
        e = self._entry(lock_id, True)
        msg = e["deny_lists"].get(str(epoch))
        return e["deny_version"], bytes.fromhex(msg) if msg else None

    def rekey(self, lock_id: bytes, onsite: bool) -> bytes:
        r = self._call("POST", f"/api/v1/locks/{lock_id.hex()}/rekey", self._need_admin("a re-key"),
                       "starting the re-key", {"onsite": onsite})
        return bytes.fromhex(r["message"])

    def rekey_proof(self, lock_id: bytes, proof: bytes) -> bool:
        body = {"lock_id": lock_id.hex(), "proof": proof.hex()}
        if self._admin:
            r = self._call("POST", f"/api/v1/locks/{lock_id.hex()}/rekey/proof", self._admin, "the re-key proof", body)
        else:
            r = self._call("POST", "/api/v1/phone/rekey-proof", self._need_phone("a re-key proof"),
                           "the re-key proof", body)
        self._bundle = None
        return r.get("state") == "done"

    def hello(self, hello: bytes) -> dict:
        """Report a lock's HELLO (battery and health hints); the server says what to relay."""
        return self._call("POST", "/api/v1/phone/hello", self._need_phone("reporting a HELLO"), "the HELLO report",
                          {"hello": bytes(hello).hex()})

    def factory_reset(self, lock_id: bytes, epoch: int, nonce_l: bytes) -> bytes:
        r = self._call("POST", f"/api/v1/locks/{lock_id.hex()}/factory-reset", self._need_admin("a factory reset"),
                       "the factory reset", {"epoch": epoch, "nonce": nonce_l.hex()})
        return bytes.fromhex(r["statement"])

    def close(self) -> None:
        self._c.close()
