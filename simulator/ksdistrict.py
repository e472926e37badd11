"""A scenario's district on a real key server: set it up and drive it over the HTTP API.

:class:`KeyServerDistrict` is what ``locksim run SCENARIO --keyserver URL`` uses instead of
the local issuer: it creates the district, one home per simulated lock (and registers the
lock through :class:`provisioning.keysource.KeyServerSource`, the path ``lockctl`` takes),
carers with a phone each and per-home grants, and during the day hands out alarm keys,
revokes lost phones and starts over-the-air re-keys, all with an admin session token (and
an integration token for alarm keys, as a response centre would).

The key server has no batch endpoints, so creation is one request per object (a home, a
lock, a carer, a phone, a grant); every method is thread-safe, so a caller may run them on
a pool of threads. Lock keys go only to the caller (for provisioning the simulated unit)
and to the key server, never to a log.

When the key server runs on a simulated clock (``KEYSERVER_CLOCK_FILE``, docs/keyserver.md),
:meth:`KeyServerDistrict.set_time` (or :func:`write_clock`) moves it. Write the scenario's
start time before the server starts (the clock never goes back, and grants without a window
start at the server's now), and start the server with ``KEYSERVER_SESSION_LIFETIME`` longer
than the simulated span: the admin session expires on the simulated clock like everything else.

Phones: the server issues a bundle for ``[now, now + hours)`` with ``hours`` at most
``KEYSERVER_TICKET_LIFETIME`` (12 h at most); a shift start may be given up to 7 days ahead
and no more than 5 minutes back, all on the server's clock.
"""

from __future__ import annotations

import math
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from provisioning.keysource import KeyServerSource, SourceError

API = "/api/v1"


class KeyServerError(Exception):
    """The key server refused or could not be reached: ``status`` (None: no answer), the server's
    ``reason`` word and its message."""

    def __init__(self, message: str, status: int | None = None, reason: str | None = None) -> None:
        super().__init__(message)
        self.status, self.reason = status, reason


def write_clock(path: str | os.PathLike, t: int) -> None:
    """Write the simulated Unix time ``t`` for a key server on ``KEYSERVER_CLOCK_FILE`` (atomically:
    a temporary file renamed over it, so the server never reads half a number)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(f"{int(t)}\n", encoding="ascii")
    os.replace(tmp, path)


@dataclass
class _Lock:
    name: str
    home_id: int
    lock_id: bytes


@dataclass
class _Carer:
    name: str
    staff_id: int
    phone_id: int
    token: str
    grants: list[int] = field(default_factory=list)
    lost: list[int] = field(default_factory=list)


class KeyServerDistrict:
    """One district of a scenario on a key server (see the module docstring).

    ``admin_token`` is an admin's session token (the runner reads it from a file). Homes get
    the citizen reference ``"<district>/<lock name>"`` and carers the user name
    ``"<district>/<carer name>"``, so several districts share one server; running the same
    district twice on one database fails at the first home or carer that exists (409).
    """

    def __init__(self, url: str, admin_token: str, district_name: str, timeout: float = 30.0,
                 clock_file: str | os.PathLike | None = None, transport=None) -> None:
        if not admin_token:
            raise KeyServerError("an admin session token is needed")
        self.url = url.rstrip("/")
        self.name = district_name
        self.clock_file = Path(clock_file) if clock_file is not None else None
        self._admin = admin_token
        self._c = httpx.Client(base_url=self.url, timeout=timeout, transport=transport,
                               limits=httpx.Limits(max_connections=64, max_keepalive_connections=64))
        self._source = KeyServerSource(self.url, None, admin_token, timeout=timeout, transport=transport)
        self._mutex = threading.Lock()
        self._locks: dict[str, _Lock] = {}
        self._by_id: dict[bytes, _Lock] = {}
        self._carers: dict[str, _Carer] = {}
        self._integration: str | None = None
        try:
            found = [d for d in self._call("GET", "/districts") if d["name"] == district_name]
            self.district_id = found[0]["id"] if found else \
                self._call("POST", "/districts", {"name": district_name})["id"]
        except BaseException:
            self.close()
            raise

    # ---- HTTP ----

    def _call(self, method: str, path: str, json: dict | None = None, token: str | None = None,
              params: dict | None = None):
        try:
            r = self._c.request(method, API + path, json=json, params=params,
                                headers={"Authorization": f"Bearer {token or self._admin}"})
        except httpx.HTTPError as e:
            raise KeyServerError(f"key server {self.url} unreachable ({method} {path}): {e}") from None
        if r.status_code >= 400:
            try:
                body = r.json()
                reason, detail = body.get("error"), body.get("detail") or r.text
            except ValueError:
                reason, detail = None, r.text[:200]
            raise KeyServerError(f"key server refused {method} {path} ({r.status_code} {reason}): {detail}",
                                 r.status_code, reason)
        return r.json()

    def _lock(self, lock: str | bytes) -> _Lock:
        lk = self._by_id.get(lock) if isinstance(lock, bytes) else self._locks.get(lock)
        if lk is None:
            raise KeyServerError(f"no lock {lock.hex() if isinstance(lock, bytes) else lock!r} in district "
                                 f"{self.name!r} (register_lock first)")
        return lk

    def _carer(self, name: str) -> _Carer:
        c = self._carers.get(name)
        if c is None:
            raise KeyServerError(f"no carer {name!r} in district {self.name!r} (add_carer first)")
        return c

    # ---- set-up ----

    def register_lock(self, lock_name: str, board: str = "sim") -> tuple[bytes, int, bytes]:
        """Create a home for the lock (citizen reference and address from the lock's name) and
        register the lock with a fresh random key through :class:`KeyServerSource`; returns
        ``(lock_id, epoch, master)`` for provisioning the simulated unit. The key is never logged."""
        if lock_name in self._locks:
            raise KeyServerError(f"lock {lock_name!r} is registered already")
        home = self._call("POST", "/homes", {"citizen_ref": f"{self.name}/{lock_name}",
                                             "address": f"{lock_name}, {self.name}",
                                             "district_id": self.district_id})["id"]
        try:
            lock_id, epoch, master = self._source.register(lock_name, board, home)
        except SourceError as e:
            m = re.search(r"\((\d{3})\)", str(e))
            raise KeyServerError(str(e), int(m.group(1)) if m else None) from None
        lk = _Lock(lock_name, home, lock_id)
        with self._mutex:
            self._locks[lock_name] = lk
            self._by_id[lock_id] = lk
        return lock_id, epoch, master

    def register_locks(self, lock_names: list[str], board: str = "sim",
                       workers: int = 8) -> dict[str, tuple[bytes, int, bytes]]:
        """:meth:`register_lock` for many locks on ``workers`` threads (the server has no batch
        endpoint; a few requests in flight hide the round trips): lock name to ``(lock_id, epoch, master)``."""
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max(1, workers), thread_name_prefix="ks-register") as ex:
            return dict(zip(lock_names, ex.map(lambda n: self.register_lock(n, board), lock_names)))

    def add_carer(self, name: str, homes: list[str] | dict[str, tuple[int | None, int | None]], rights: int,
                  full_name: str = "") -> str:
        """Create a carer (role carer) with a phone, and grant ``rights`` at each named lock's home.

        ``homes`` are lock names, or a dict of lock name to ``(valid_from, valid_until)`` (Unix
        seconds on the server's clock, None for open) to bound each grant to a shift. Grants are
        per home, so a bundle holds only the carer's own doors (small at 5,000 locks). The phone
        is registered by the admin for the carer, so no password is set and no login is needed
        (a login costs an argon2id hash and the server allows 30 per client address a minute).
        Returns the phone token (build ``KeyServerSource(url, token, shift_hours=...)`` on it)."""
        if name in self._carers:
            raise KeyServerError(f"carer {name!r} exists already")
        windows = homes if isinstance(homes, dict) else {h: (None, None) for h in homes}
        # everything checked before anything is created, so a mistake leaves no half-made carer
        locks = [(self._lock(h), w) for h, w in windows.items()]
        if not 0 < rights <= 0xF:
            raise KeyServerError(f"rights {rights!r} is not a non-empty mask of UNLOCK=1, LOCK=2, JOURNAL=4, ADMIN=8")
        for h, (nb, na) in windows.items():
            if nb is not None and na is not None and na <= nb:
                raise KeyServerError(f"carer {name!r} at {h}: valid_until {na} is not after valid_from {nb}")
        sid = self._call("POST", "/staff", {"username": f"{self.name}/{name}", "role": "carer",
                                            "full_name": full_name or name, "district_id": self.district_id})["id"]
        ph = self._call("POST", "/phones", {"staff_id": sid, "label": f"{name}'s phone"})
        c = _Carer(name, sid, ph["id"], ph["token"])
        for lk, (nb, na) in locks:
            body = {"staff_id": sid, "home_id": lk.home_id, "rights": rights}
            if nb is not None:
                body["valid_from"] = int(nb)
            if na is not None:
                body["valid_until"] = int(na)
            try:
                c.grants.append(self._call("POST", "/grants", body)["id"])
            except KeyServerError as e:
                raise KeyServerError(f"carer {name!r} (staff {sid}) was created with {len(c.grants)} of "
                                     f"{len(locks)} grants: {e}", e.status, e.reason) from None
        with self._mutex:
            self._carers[name] = c
        return c.token

    def staff_id(self, name: str) -> int:
        """The carer's protocol user id (the key server's staff id; tickets carry it)."""
        return self._carer(name).staff_id

    def phone_token(self, name: str) -> str:
        """The carer's current phone token."""
        return self._carer(name).token

    def lock_id(self, lock_name: str) -> bytes:
        return self._lock(lock_name).lock_id

    def home_id(self, lock_name: str) -> int:
        return self._lock(lock_name).home_id

    # ---- the day ----

    def set_time(self, t: int) -> None:
        """Move the key server's simulated clock to ``t`` (needs ``clock_file``, the server's
        ``KEYSERVER_CLOCK_FILE``); without a clock file the server runs on real time."""
        if self.clock_file is None:
            raise KeyServerError("this district was given no clock_file; the key server runs on its own clock")
        write_clock(self.clock_file, t)

    def alarm_key(self, carer: str, lock: str | bytes, minutes: float, reason: str) -> None:
        """A temporary key for one door (the lock's home) from now for ``minutes`` (rounded up),
        given the way a response centre does: through an integration account's token."""
        c, lk = self._carer(carer), self._lock(lock)
        self._call("POST", "/integration/alarm-keys", {"staff_id": c.staff_id, "home_id": lk.home_id,
                                                       "minutes": max(1, math.ceil(minutes)), "reason": reason},
                   token=self._integration_token())

    def _integration_token(self) -> str:
        with self._mutex:
            if self._integration is None:
                sid = self._call("POST", "/staff", {"username": f"{self.name}/response-centre",
                                                    "role": "integration", "full_name": "Response centre",
                                                    "district_id": self.district_id})["id"]
                self._integration = self._call("POST", f"/staff/{sid}/tokens", {})["token"]
            return self._integration

    def lose_phone(self, carer: str) -> str:
        """Revoke the carer's current phone (reason ``lost``: its token and every live ticket it
        holds go on the deny lists) and give the carer a new phone; returns the new token."""
        c = self._carer(carer)
        self._call("POST", f"/phones/{c.phone_id}/revoke", {"reason": "lost"})
        ph = self._call("POST", "/phones", {"staff_id": c.staff_id, "label": f"{carer}'s phone #{len(c.lost) + 2}"})
        with self._mutex:
            c.lost.append(c.phone_id)
            c.phone_id, c.token = ph["id"], ph["token"]
        return c.token

    def start_rekey(self, lock: str | bytes) -> None:
        """Start an over-the-air re-key (``onsite`` false): the next phone visiting relays it."""
        self._call("POST", f"/locks/{self._lock(lock).lock_id.hex()}/rekey", {"onsite": False})

    def rekey_state(self, lock: str | bytes) -> dict:
        """The lock's latest re-key as the server describes it (``state`` pending, done or cancelled)."""
        return self._call("GET", f"/locks/{self._lock(lock).lock_id.hex()}/rekey")

    # ---- reports ----

    def report_urls(self, start: int, end: int) -> dict[str, str]:
        """Where the server's reports of this district are (an admin or planner token reads them)."""
        base, d = self.url + API, self.district_id
        return {"visits": f"{base}/reports/visits?start={start}&end={end}&district_id={d}",
                "visits_csv": f"{base}/reports/visits?start={start}&end={end}&district_id={d}&format=csv",
                "battery_changes": f"{base}/reports/battery-changes?district_id={d}&days=365",
                "health": f"{base}/reports/health?district_id={d}",
                "audit": f"{base}/audit", "web_ui": f"{self.url}/ui"}

    def visits(self, start: int, end: int) -> list[dict]:
        """The server's visits of this district in ``[start, end)`` (from the journals phones uploaded)."""
        return self._call("GET", "/reports/visits", params={"start": start, "end": end,
                                                             "district_id": self.district_id})

    def battery_changes(self, days: int = 365) -> list[dict]:
        """Locks of this district due for new batteries within ``days``, soonest first."""
        return self._call("GET", "/reports/battery-changes", params={"district_id": self.district_id, "days": days})

    def health(self, only_problems: bool = False) -> list[dict]:
        """Lock health of this district (deny-list staleness, time uncertain, journal backlog, jams)."""
        return self._call("GET", "/reports/health", params={"district_id": self.district_id,
                                                             "only_problems": only_problems})

    def close(self) -> None:
        self._c.close()
        self._source.close()

    def __enter__(self) -> "KeyServerDistrict":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


__all__ = ["KeyServerDistrict", "KeyServerError", "write_clock"]
