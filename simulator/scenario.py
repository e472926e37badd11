"""District scenarios: a TOML file describes a district's day; ``run_scenario`` plays it.

The format (docs/simulator.md, "Scenario files", has every key)::

    [district]      name, start (RFC 3339, UTC), hours, seed, procs, storage ("flash"|"files")
    [locks]         count, spacing_m             generated locks L0001..
    [[lock]]        name, battery_mv, drain_mv_h, jam, drift_ppm     per-lock overrides
    [shifts.NAME]   start = "07:00", end = "15:00"
    [staff]         count, shift                 generated carers C001..
    [[carer]]       name, user, shift, online, mtu
    [visits]        per_lock, minutes, travel_minutes   generated routes
    [[visit]]       lock, carer, at = "08:10", minutes
    [[alarm]]       lock, responder, at, minutes (a temporary key for one door)
    [[lost_phone]]  carer, at (revoked then), finder_at, lock (someone tries the found phone)
    [[battery_change]] lock, at, mv
    [[rekey]]       lock, at (the server starts a re-key; the next visiting phone delivers it)
    [[power_cut]]   lock, at, off_minutes

Time is simulated: the fleet's clocks stand still (speed 0) and the runner moves them
from one event to the next, so a district day takes as long as its sessions do, not
as long as the day. Events at the same simulated second run concurrently.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import os
import shutil
import sys
import tempfile
import time
import threading
import tomllib
from concurrent.futures import ThreadPoolExecutor
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import httpx

from lockproto import Err, Op, Right

from provisioning.carer import CarerApp, DoorVisit
from provisioning.gatt import GattTransport, SimRadio
from provisioning.keysource import KeyServerSource

from .fleet import Fleet, FleetError, LockSpec
from .keysource import LocalIssuer, PhoneBundles
from .ksdistrict import KeyServerDistrict, write_clock

CARER_RIGHTS = Right.UNLOCK | Right.LOCK | Right.JOURNAL


class ScenarioError(ValueError):
    """The scenario file is wrong (the message names the key)."""


def _hhmm(value: str, what: str) -> int:
    """Seconds after midnight for "HH:MM"."""
    try:
        h, m = str(value).split(":")
        s = int(h) * 3600 + int(m) * 60
    except ValueError:
        raise ScenarioError(f"{what}: expected HH:MM, got {value!r}") from None
    if not 0 <= s <= 48 * 3600:
        raise ScenarioError(f"{what}: {value!r} out of range")
    return s


@dataclass
class Carer:
    name: str
    user: int
    shift: str
    online: bool = True
    mtu: int = 185


@dataclass
class Scenario:
    name: str
    start: int                 # unix seconds of the district day's 00:00 offset base
    day0: int                  # unix seconds of midnight of the start day
    hours: float
    seed: int
    procs: int
    storage: str
    locks: list[LockSpec]
    overrides: dict[str, dict]
    shifts: dict[str, tuple[int, int]]
    carers: dict[str, Carer]
    visits: list[dict]
    alarms: list[dict]
    lost_phones: list[dict]
    battery_changes: list[dict]
    rekeys: list[dict]
    power_cuts: list[dict]
    radio: dict = field(default_factory=dict)

    def at(self, hhmm: str, what: str) -> int:
        """Seconds from the scenario start for a clock time of the day."""
        s = self.day0 + _hhmm(hhmm, what) - self.start
        if s < 0:
            raise ScenarioError(f"{what}: {hhmm} is before the scenario starts")
        return s


def _table(d: dict, key: str, kind=dict):
    v = d.get(key, kind())
    if not isinstance(v, kind):
        raise ScenarioError(f"{key}: expected a {'table' if kind is dict else 'list of tables'}")
    return v


def load_scenario(path: str | Path) -> Scenario:
    """Parse and check a scenario file; ScenarioError names what is wrong."""
    try:
        with open(path, "rb") as f:
            d = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise ScenarioError(f"{path}: {e}") from None
    return scenario_from_dict(d)


def scenario_from_dict(d: dict) -> Scenario:
    dist = _table(d, "district")
    try:
        start_dt = datetime.fromisoformat(str(dist.get("start", "2026-03-02T07:00:00+00:00")))
    except ValueError:
        raise ScenarioError("district.start: expected an RFC 3339 time") from None
    if start_dt.tzinfo is None:
        start_dt = start_dt.replace(tzinfo=timezone.utc)
    start = int(start_dt.timestamp())
    day0 = int(start_dt.replace(hour=0, minute=0, second=0, microsecond=0).timestamp())
    hours = float(dist.get("hours", 16))
    if not 0 < hours <= 72:
        raise ScenarioError("district.hours: 0 < hours <= 72")
    storage = dist.get("storage", "flash")
    if storage not in ("flash", "files"):
        raise ScenarioError("district.storage: flash or files")

    lk = _table(d, "locks")
    count = int(lk.get("count", 0))
    spacing = float(lk.get("spacing_m", 80.0))
    locks = []
    side = max(1, int(count ** 0.5 + 0.999))
    for i in range(count):
        locks.append(LockSpec(f"L{i + 1:04d}", (i % side) * spacing, (i // side) * spacing))
    overrides = {}
    names = {s.name for s in locks}
    for o in _table(d, "lock", list):
        n = o.get("name")
        if n is None:
            raise ScenarioError("lock: every [[lock]] needs a name")
        if n not in names:
            locks.append(LockSpec(n, float(o.get("x", len(locks) * spacing)), float(o.get("y", -spacing))))
            names.add(n)
        overrides[n] = o
    if not locks:
        raise ScenarioError("locks: a district needs locks (locks.count or [[lock]])")

    shifts = {}
    for n, sh in _table(d, "shifts").items():
        a, b = _hhmm(sh.get("start"), f"shifts.{n}.start"), _hhmm(sh.get("end"), f"shifts.{n}.end")
        if b <= a:
            raise ScenarioError(f"shifts.{n}: end before start")
        shifts[n] = (a, b)
    if not shifts:
        shifts["day"] = (7 * 3600, 15 * 3600)

    carers: dict[str, Carer] = {}
    st = _table(d, "staff")
    for i in range(int(st.get("count", 0))):
        sh = st.get("shift", next(iter(shifts)))
        carers[f"C{i + 1:03d}"] = Carer(f"C{i + 1:03d}", 100 + i, sh)
    for c in _table(d, "carer", list):
        if "name" not in c:
            raise ScenarioError("carer: every [[carer]] needs a name")
        carers[c["name"]] = Carer(c["name"], int(c.get("user", 500 + len(carers))), c.get("shift", next(iter(shifts))),
                                  bool(c.get("online", True)), int(c.get("mtu", 185)))
    for c in carers.values():
        if c.shift not in shifts:
            raise ScenarioError(f"carer {c.name}: no shift {c.shift!r}")
    users = [c.user for c in carers.values()]
    if len(set(users)) != len(users):
        raise ScenarioError("carer: user ids must be unique")

    sc = Scenario(dist.get("name", "district"), start, day0, hours, int(dist.get("seed", 1)),
                  int(dist.get("procs", 2)), storage, locks, overrides, shifts, carers, [], [], [], [], [], [],
                  _table(d, "radio"))

    def need_lock(e, what):
        if e.get("lock") not in names:
            raise ScenarioError(f"{what}: no lock {e.get('lock')!r}")

    def need_carer(e, key, what):
        if e.get(key) not in carers:
            raise ScenarioError(f"{what}: no carer {e.get(key)!r}")

    for v in _table(d, "visit", list):
        need_lock(v, "visit")
        need_carer(v, "carer", "visit")
        sc.visits.append({"lock": v["lock"], "carer": v["carer"], "t": sc.at(v.get("at"), "visit.at"),
                          "minutes": float(v.get("minutes", 15)), "kind": "planned"})
    gen = _table(d, "visits")
    if gen:
        _generate_routes(sc, int(gen.get("per_lock", 1)), float(gen.get("minutes", 15)),
                         float(gen.get("travel_minutes", 5)))
    for a in _table(d, "alarm", list):
        need_lock(a, "alarm")
        need_carer(a, "responder", "alarm")
        sc.alarms.append({"lock": a["lock"], "carer": a["responder"], "t": sc.at(a.get("at"), "alarm.at"),
                          "minutes": float(a.get("minutes", 30)), "kind": "alarm"})
    for lp in _table(d, "lost_phone", list):
        need_carer(lp, "carer", "lost_phone")
        need_lock(lp, "lost_phone")
        sc.lost_phones.append({"carer": lp["carer"], "t": sc.at(lp.get("at"), "lost_phone.at"),
                               "finder_t": sc.at(lp.get("finder_at"), "lost_phone.finder_at"), "lock": lp["lock"]})
    for b in _table(d, "battery_change", list):
        need_lock(b, "battery_change")
        sc.battery_changes.append({"lock": b["lock"], "t": sc.at(b.get("at"), "battery_change.at"),
                                   "mv": int(b.get("mv", 6200))})
    for r in _table(d, "rekey", list):
        need_lock(r, "rekey")
        sc.rekeys.append({"lock": r["lock"], "t": sc.at(r.get("at"), "rekey.at")})
    for p in _table(d, "power_cut", list):
        need_lock(p, "power_cut")
        sc.power_cuts.append({"lock": p["lock"], "t": sc.at(p.get("at"), "power_cut.at"),
                              "off_s": int(float(p.get("off_minutes", 1)) * 60)})
    return sc


def _generate_routes(sc: Scenario, per_lock: int, minutes: float, travel: float) -> None:
    """Routes: each shift's carers share the locks (lock i to carer i mod n) and walk their
    locks in order, visit after visit; a route that does not fit its shift is cut short."""
    by_shift: dict[str, list[Carer]] = {}
    for c in sc.carers.values():
        by_shift.setdefault(c.shift, []).append(c)
    if not by_shift:
        raise ScenarioError("visits: generated visits need carers (staff.count or [[carer]])")
    shifts = sorted(by_shift, key=lambda n: sc.shifts[n][0])
    slots: dict[str, dict[str, float]] = {}
    for k in range(per_lock):
        sh = shifts[k % len(shifts)]
        crew = by_shift[sh]
        a, b = sc.shifts[sh]
        start = sc.day0 + a - sc.start
        end = sc.day0 + b - sc.start
        # a route goes on where the carer's last round ended (10 minutes to get going)
        slot = slots.setdefault(sh, {c.name: start + 600 for c in crew})
        for i, lock in enumerate(sc.locks):
            c = crew[i % len(crew)]
            t = slot[c.name]
            if t + minutes * 60 > end:
                sc.visits.append({"lock": lock.name, "carer": c.name, "t": None, "minutes": minutes,
                                  "kind": "unscheduled"})
                continue
            sc.visits.append({"lock": lock.name, "carer": c.name, "t": int(t), "minutes": minutes,
                              "kind": "route"})
            slot[c.name] = t + (minutes + travel) * 60


@dataclass
class Report:
    data: dict

    def text(self) -> str:
        d = self.data
        v = d["visits"]
        lines = [f"scenario {d['scenario']}: {d['locks']} locks, {d['carers']} carers, "
                 f"{d['simulated_hours']:.1f} h simulated in {d['wall_s']:.1f} s "
                 f"({d['procs']} processes, {d['storage']} storage)",
                 f"visits: {v['done']} done of {v['planned']} planned, {v['unscheduled']} did not fit a shift, "
                 f"{v['refused']} refused, {v['radio_failed']} radio failures"]
        if d["refusals"]:
            lines.append("refusals: " + ", ".join(f"{k} x{n}" for k, n in sorted(d["refusals"].items())))
        if d.get("relays"):
            lines.append("relayed by phones: " + ", ".join(f"{k} x{n}" for k, n in sorted(d["relays"].items())))
        for e in d["events"]:
            lines.append(f"  {e}")
        b = d["battery"]
        lines.append(f"battery: min {b['min_mv']} mV, {b['low']} low, {b['critical']} critical")
        j = d["journal"]
        lines.append(f"journal: {j['ingested']} records ingested, backlog {j['backlog_total']} "
                     f"(max {j['backlog_max']} at one lock), {j['problems']} upload problems")
        h = d["health"]
        lines.append(f"health: {h['unlocked']} unlocked at the end, {h['jammed']} jammed, {h['time_uncertain']} "
                     f"time-uncertain, {h['powered_off']} powered off, {h['rebooted']} rebooted")
        ks = d.get("keyserver")
        if ks:
            lines.append(f"key server {ks['url']}: {ks['visits_reported']} visits in its report, "
                         f"{ks['battery_changes_due']} locks on its battery-change list")
            for what, url in ks["reports"].items():
                lines.append(f"  {what:16} {url}")
        return "\n".join(lines)


class LocalDistrict:
    """The district's key server when none is given: the local issuer, and one
    :class:`~simulator.keysource.PhoneBundles` per phone."""

    def __init__(self, issuer: LocalIssuer, clock) -> None:
        self.issuer = issuer
        self.clock = clock
        self.sources: dict[str, PhoneBundles] = {}

    def register(self, lock: str) -> tuple[bytes, int, bytes]:
        with self.issuer.mutex:
            return self.issuer.register(lock)

    def add_carer(self, carer: Carer, plan: dict[bytes, tuple[int, int]]):
        src = PhoneBundles(self.issuer, carer.user, self.clock)
        for lid, (nb, na) in plan.items():
            src.add_grant(lid, nb, na, CARER_RIGHTS)
        self.sources[carer.name] = src
        return src

    def alarm(self, carer: Carer, lid: bytes, wall: int, minutes: float) -> None:
        # a temporary key for one door, from a minute ago until ten minutes after the visit
        self.sources[carer.name].add_grant(lid, wall - 60, wall + int(minutes * 60) + 600, CARER_RIGHTS)

    def lose_phone(self, carer: Carer, until: int):
        """Revoke the lost phone's user on every lock; a replacement phone under a new identity."""
        old = self.sources[carer.name]
        with self.issuer.mutex:
            self.issuer.revoke_user(old.user_id, until)
        old.revoked = True
        new = PhoneBundles(self.issuer, old.user_id + 10000, self.clock)
        new.grants = {k: list(v) for k, v in old.grants.items()}
        self.sources[carer.name] = new
        return new, f"user {old.user_id} revoked (deny list v{self.issuer.deny_version}); " \
                    f"a replacement phone as user {new.user_id}"

    def start_rekey(self, lid: bytes) -> None:
        with self.issuer.mutex:
            self.issuer.rekey(lid)

    def set_time(self, wall: int) -> None:
        pass

    def extra_report(self, sc: "Scenario") -> dict:
        return {}

    def close(self) -> None:
        self.issuer.save()


class KeyServerBackedDistrict:
    """The district on the municipality's key server (``locksim run --keyserver URL``): locks,
    homes, carers, phones and grants created through :class:`~simulator.ksdistrict.KeyServerDistrict`,
    each phone a :class:`provisioning.keysource.KeyServerSource` on its own phone token.

    The scenario plays faster than real time, so the server must follow the simulated
    clock: it runs with ``KEYSERVER_CLOCK_FILE`` (docs/keyserver.md) and the runner writes
    the simulated time into that file before every step.
    """

    def __init__(self, url: str, admin_token: str, sc: "Scenario", clock_file: str | Path,
                 shift_hours: float = 12.0) -> None:
        self.url = url.rstrip("/")
        self.clock_file = Path(clock_file)
        self.shift_hours = shift_hours
        self._wrote = 0
        self.set_time(sc.start)
        try:
            health = httpx.get(self.url + "/healthz", timeout=30).json()
        except (httpx.HTTPError, ValueError) as e:
            raise ScenarioError(f"key server {self.url} unreachable: {e}") from None
        if health.get("clock") != "simulated" or Path(health.get("clock_file", "")).resolve() != \
                self.clock_file.resolve():
            raise ScenarioError(f"the key server at {self.url} does not follow {self.clock_file}: a scenario "
                                f"plays faster than real time, so start the server with "
                                f"KEYSERVER_CLOCK_FILE={self.clock_file} (docs/keyserver.md)")
        if health.get("now") != sc.start:
            # the server's clock never goes back: one that has seen a later time cannot play this day
            raise ScenarioError(f"the key server's clock is at {health.get('now')}, past the scenario's start "
                                f"{sc.start}: start the server afresh with the clock file at the start")
        self.ksd = KeyServerDistrict(self.url, admin_token, sc.name, clock_file=self.clock_file)
        self.names: dict[bytes, str] = {}

    def register(self, lock: str) -> tuple[bytes, int, bytes]:
        lid, ep, m = self.ksd.register_lock(lock, "sim")
        self.names[lid] = lock
        return lid, ep, m

    def _source(self, token: str):
        return KeyServerSource(self.url, token, shift_hours=self.shift_hours, clock=self.sim_now)

    def add_carer(self, carer: "Carer", plan: dict[bytes, tuple[int, int]]):
        token = self.ksd.add_carer(carer.name, {self.names[lid]: w for lid, w in plan.items()}, int(CARER_RIGHTS))
        return self._source(token)

    def alarm(self, carer: "Carer", lid: bytes, wall: int, minutes: float) -> None:
        # the call's length and ten minutes more, within what the server allows (4 h by default)
        self.ksd.alarm_key(carer.name, lid, min(minutes + 10, 240), "alarm (scenario)")

    def lose_phone(self, carer: "Carer", until: int):
        token = self.ksd.lose_phone(carer.name)
        return self._source(token), (f"phone revoked at the key server (staff {self.ksd.staff_id(carer.name)}); "
                                     f"a replacement phone")

    def start_rekey(self, lid: bytes) -> None:
        self.ksd.start_rekey(lid)

    def sim_now(self) -> int:
        """The simulated wall time (what the phones' clocks say)."""
        return self._wrote

    def set_time(self, wall: int) -> None:
        # the server's clock never goes back, so neither does the file
        if wall > self._wrote:
            write_clock(self.clock_file, wall)
            self._wrote = wall

    def extra_report(self, sc: "Scenario") -> dict:
        start, end = sc.start, sc.start + int(sc.hours * 3600)
        visits = self.ksd.visits(start, end)
        return {"keyserver": {"url": self.url, "reports": self.ksd.report_urls(start, end),
                              "visits_reported": len(visits),
                              "battery_changes_due": len(self.ksd.battery_changes())}}

    def close(self) -> None:
        self.ksd.close()


class Runner:
    """Plays one scenario against a fleet (see the module docstring).

    Each carer's phone is a :class:`provisioning.carer.CarerApp` on the provisioning
    library, reaching the locks over the fleet's radio (:class:`provisioning.gatt.SimRadio`)
    and its key server through ``district``: a :class:`LocalDistrict` (the local issuer)
    or a :class:`KeyServerDistrict` adapter. The library is synchronous, so phone work runs
    on a pool of ``concurrency`` threads, each with its own radio and event loop.
    """

    def __init__(self, sc: Scenario, fleet: Fleet, issuer: LocalIssuer | None = None, concurrency: int = 64,
                 progress: bool = False, district=None) -> None:
        self.sc = sc
        self.fleet = fleet
        self.district = district or LocalDistrict(issuer or LocalIssuer(), self.wall)
        self.ids: dict[str, bytes] = {}
        self.apps: dict[str, CarerApp] = {}
        self.lost_apps: dict[str, CarerApp] = {}
        self.sem = asyncio.Semaphore(concurrency)
        self.pool = ThreadPoolExecutor(concurrency, thread_name_prefix="phone")
        self._local = threading.local()
        self._radios: list[SimRadio] = []
        self._radios_lock = threading.Lock()
        self.queue: list = []
        self._seq = itertools.count()
        self.now_s = 0
        self.visits: list[dict] = []
        self.refusals: Counter = Counter()
        self.relays: Counter = Counter()     # what the phones carried to the locks, by kind
        self.events: list[str] = []
        self.uploads = {"records": 0, "problems": 0}
        self.progress = progress

    def wall(self) -> int:
        """The simulated wall clock (Unix seconds)."""
        return self.sc.start + self.now_s

    def at(self, t: int, fn, *args) -> None:
        heapq.heappush(self.queue, (t, next(self._seq), fn, args))

    # ---- phones ----

    def _transport(self, lock: str, mtu: int) -> GattTransport:
        # runs on a phone thread: that thread's radio (one central per fleet host)
        radios = getattr(self._local, "radios", None)
        if radios is None:
            radios = self._local.radios = {}
        r = radios.get(mtu)
        if r is None:
            r = radios[mtu] = SimRadio(self.fleet, mtu)
            with self._radios_lock:
                self._radios.append(r)
        return GattTransport(r.link(lock), timeout=10, loop=r.loop)

    def _app(self, c: Carer, source) -> CarerApp:
        return CarerApp(c.name, source, lambda lock, mtu=c.mtu: self._transport(lock, mtu))

    async def _phone(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    async def setup(self) -> None:
        sc = self.sc
        self.fleet.state.wall0 = sc.start
        self.district.set_time(self.wall())
        self.fleet.start()
        await self.fleet.attach()
        await self.fleet.all("time", speed=0)
        new = [s for s in sc.locks if s.name not in self.fleet.state.locks]
        if new:
            await self.fleet.create(new)
        if sc.radio:
            await self.fleet.all("radio", **sc.radio)
        wall = await self.fleet.wall()
        keys = {}
        for s in sc.locks:
            keys[s.name] = await self._phone(self.district.register, s.name)
            self.ids[s.name] = keys[s.name][0]

        async def provision(names):
            for name in names:
                lid, ep, m = keys[name]
                r = await self.fleet.call(name, "provision", lock_id=lid.hex(), epoch=ep, master=m.hex(), now=wall)
                if r["status"] != Err.OK:
                    raise FleetError(f"{name}: provisioning refused")
        todo: dict[int, list[str]] = {}
        for st in await self.fleet.status():
            if not st.get("provisioned"):
                todo.setdefault(self.fleet.host_of(st["lock"]), []).append(st["lock"])
        await asyncio.gather(*(provision(v) for v in todo.values()))  # the hosts in parallel
        for name, o in sc.overrides.items():
            if "battery_mv" in o or "drain_mv_h" in o:
                args = {k: int(o[k]) for k in ("battery_mv", "drain_mv_h") if k in o}
                await self.fleet.call(name, "battery", **{("mv" if k == "battery_mv" else k): v
                                                          for k, v in args.items()})
            if o.get("jam"):
                await self.fleet.call(name, "jam", on=True)
            if "drift_ppm" in o:
                await self.fleet.call(name, "clock", drift_ppm=int(o["drift_ppm"]))
        # the planner's grants: each carer's route doors for the shift (half an hour before
        # it starts to an hour after it ends)
        plans: dict[str, dict[bytes, tuple[int, int]]] = {c: {} for c in sc.carers}
        for v in sc.visits + [lp | {"kind": "lost"} for lp in sc.lost_phones]:
            if v.get("kind") in ("route", "planned", "lost"):
                a, b = sc.shifts[sc.carers[v["carer"]].shift]
                plans[v["carer"]][self.ids[v["lock"]]] = (sc.day0 + a - 1800, sc.day0 + b + 3600)
        for c in sc.carers.values():
            src = await self._phone(self.district.add_carer, c, plans[c.name])
            self.apps[c.name] = self._app(c, src)
            if not c.online:   # it fetched its shift's bundle before going out of coverage
                await self._phone(src.bundle)
                src.online = False
        for v in sc.visits + sc.alarms:
            if v["t"] is None:
                self.visits.append({**v, "result": "unscheduled"})
                continue
            self.at(v["t"], self.arrive, v)
        for lp in sc.lost_phones:
            self.at(lp["t"], self.lose_phone, lp)
            self.at(lp["finder_t"], self.finder_tries, lp)
        for b in sc.battery_changes:
            self.at(b["t"], self.change_battery, b)
        for r in sc.rekeys:
            self.at(r["t"], self.start_rekey, r)
        for p in sc.power_cuts:
            self.at(p["t"], self.cut_power, p)

    # ---- events ----

    async def arrive(self, v: dict) -> None:
        carer = self.sc.carers[v["carer"]]
        rec = {**v, "result": None}
        self.visits.append(rec)
        if v["kind"] == "alarm":
            await self._phone(self.district.alarm, carer, self.ids[v["lock"]], self.wall(), v["minutes"])
        dv = await self._phone(self.apps[carer.name].open_door, v["lock"], False)
        self._note(rec, dv)
        if rec["result"] != "ok":
            return
        t = v["t"]
        self.at(t + 4, self.door, v["lock"], True)
        self.at(t + 7, self.door, v["lock"], False)
        leave = t + int(v["minutes"] * 60)
        self.at(leave, self.press, v["lock"])
        self.at(leave + 3, self.door, v["lock"], True)
        self.at(leave + 6, self.door, v["lock"], False)
        self.at(leave + 8, self.leave, rec)

    async def leave(self, rec: dict) -> None:
        """Outside again: the phone locks the door and carries the journal to the server."""
        dv = await self._phone(self.apps[rec["carer"]].lock_door, rec["lock"], True)
        self._relayed(rec, dv)
        rec["lock_result"] = "ok" if dv.locked else self._why(dv)
        self.uploads["records"] += dv.journal_records
        if dv.locked and dv.refusal:
            self.uploads["problems"] += 1
            rec["upload_problem"] = dv.refusal

    @staticmethod
    def _why(dv: DoorVisit) -> str:
        return dv.refusal if dv.code is not None else f"radio: {dv.refusal}"

    def _relayed(self, rec: dict, dv: DoorVisit) -> None:
        for r in dv.relayed:
            # "time token", "deny list v3", "re-key to epoch 2": counted by kind
            self.relays[" ".join(r.split()[:2]) if not r.startswith("re-key") else "re-key"] += 1
            if r.startswith("re-key"):
                self.events.append(f"{rec['lock']}: {r} delivered by {rec['carer']}'s phone")

    def _note(self, rec: dict, dv: DoorVisit) -> None:
        self._relayed(rec, dv)
        if dv.opened:
            rec["result"] = "ok"
        elif dv.code is not None:
            rec["result"] = dv.refusal
            self.refusals[dv.refusal] += 1
        elif dv.refusal and dv.refusal.startswith("no ") and "ticket" in dv.refusal:
            rec["result"] = "NO_TICKET"
            self.refusals["NO_TICKET"] += 1
        else:
            rec["result"] = f"radio: {dv.refusal}"

    async def door(self, lock: str, open_: bool) -> None:
        await self.fleet.call(lock, "door", open=open_)

    async def press(self, lock: str) -> None:
        await self.fleet.call(lock, "press")

    async def lose_phone(self, lp: dict) -> None:
        c = self.sc.carers[lp["carer"]]
        a, b = self.sc.shifts[c.shift]
        src, what = await self._phone(self.district.lose_phone, c, self.sc.day0 + b + 86400)
        self.events.append(f"{c.name}'s phone lost: {what}")
        # the lost phone keeps the bundle it held; the carer goes on with the replacement
        self.lost_apps[c.name] = self.apps[c.name]
        self.apps[c.name] = self._app(c, src)

    async def finder_tries(self, lp: dict) -> None:
        c = self.sc.carers[lp["carer"]]
        lost = self.lost_apps.get(c.name)
        if lost is None:
            self.events.append(f"finder at {lp['lock']}: {c.name}'s phone was not lost yet")
            return
        dv = await self._phone(lost.open_door, lp["lock"], False)
        self.events.append(f"finder with {c.name}'s phone at {lp['lock']}: {dv.refusal or 'OK'} "
                           f"({'OPENED: the deny list had not reached this lock' if dv.opened else 'lock held'})")
        if dv.opened:
            await self.fleet.call(lp["lock"], "door", open=False)

    async def change_battery(self, b: dict) -> None:
        await self.fleet.call(b["lock"], "power", action="cut")
        await self.fleet.call(b["lock"], "battery", mv=b["mv"])
        await self.fleet.call(b["lock"], "power", action="restore")
        self.events.append(f"{b['lock']}: cells changed ({b['mv']} mV); time uncertain until a phone relays a token")

    async def start_rekey(self, r: dict) -> None:
        await self._phone(self.district.start_rekey, self.ids[r["lock"]])
        self.events.append(f"{r['lock']}: re-key started on the server")

    async def cut_power(self, p: dict) -> None:
        await self.fleet.call(p["lock"], "power", action="cut")
        self.at(p["t"] + p["off_s"], self.restore_power, p)

    async def restore_power(self, p: dict) -> None:
        await self.fleet.call(p["lock"], "power", action="restore")
        self.events.append(f"{p['lock']}: power cut for {p['off_s']} s")

    # ---- the loop ----

    async def _one(self, fn, args) -> None:
        async with self.sem:
            await fn(*args)

    async def _advance(self, t: int) -> None:
        await self.fleet.advance((t - self.now_s) * 1000)
        self.now_s = t
        self.district.set_time(self.wall())

    async def play(self) -> None:
        end = int(self.sc.hours * 3600)
        done = 0
        last = time.monotonic()
        while self.queue and self.queue[0][0] <= end:
            t = self.queue[0][0]
            batch = []
            while self.queue and self.queue[0][0] == t:
                _, _, fn, args = heapq.heappop(self.queue)
                batch.append((fn, args))
            if t > self.now_s:
                await self._advance(t)
            await asyncio.gather(*(self._one(fn, a) for fn, a in batch))
            done += len(batch)
            if self.progress and time.monotonic() - last > 1:
                last = time.monotonic()
                print(f"\r{self.sc.name}: {t / 3600:5.2f} h, {done} events", end="", file=sys.stderr, flush=True)
        if end > self.now_s:
            await self._advance(end)
        if self.progress:
            print(file=sys.stderr)

    async def report(self, wall_s: float) -> Report:
        hosts = await self.fleet.all("stats")
        status = await self.fleet.status()
        planned = [v for v in self.visits if v["kind"] != "unscheduled"]
        done = [v for v in planned if v["result"] == "ok"]
        radio = [v for v in planned if str(v["result"]).startswith("radio")]
        refused = [v for v in planned if v["result"] not in ("ok", None) and not str(v["result"]).startswith("radio")]
        mvs = [s["battery_mv"] for s in status]
        flags = [s.get("flags", 0) for s in status]
        data = {
            "scenario": self.sc.name, "locks": len(status), "carers": len(self.sc.carers), "procs": self.sc.procs,
            "storage": self.sc.storage, "simulated_hours": self.now_s / 3600, "wall_s": wall_s,
            "visits": {"planned": len(planned), "done": len(done), "refused": len(refused),
                       "radio_failed": len(radio),
                       "unscheduled": sum(1 for v in self.visits if v["kind"] == "unscheduled"),
                       "relocked_by_phone": sum(1 for v in done if v.get("lock_result") == "ok")},
            "refusals": dict(self.refusals),
            "relays": dict(self.relays),
            "events": self.events,
            "battery": {"min_mv": min(mvs), "low": sum(1 for f in flags if f & 0x02),
                        "critical": sum(1 for f in flags if f & 0x04),
                        "per_lock": {s["lock"]: {"mv": s["battery_mv"], "pct": s.get("battery_pct")} for s in status}},
            "journal": {"ingested": self.uploads["records"], "problems": self.uploads["problems"],
                        "backlog_total": sum(s.get("backlog", 0) for s in status),
                        "backlog_max": max(s.get("backlog", 0) for s in status),
                        "lost": sum(s.get("lost", 0) for s in status)},
            "health": {"unlocked": sum(1 for s in status if s.get("state") != 1),
                       "jammed": sum(1 for s in status if s.get("state") == 5),
                       "time_uncertain": sum(1 for s in status if s.get("uncertain")),
                       "powered_off": sum(1 for s in status if not s["powered"]),
                       "rebooted": sum(1 for s in status if s.get("boots", 1) > 1)},
            "visit_log": [{k: v[k] for k in ("lock", "carer", "t", "kind", "result") if k in v}
                          | ({"lock_result": v["lock_result"]} if "lock_result" in v else {}) for v in self.visits],
            "lock_status": status,
            "hosts": hosts,
        }
        data.update(await self._phone(self.district.extra_report, self.sc))
        return Report(data)

    async def close(self) -> None:
        self.pool.shutdown(wait=True)
        loop = asyncio.get_running_loop()
        for r in self._radios:
            await loop.run_in_executor(None, r.close)
        self._radios = []
        for app in list(self.apps.values()) + list(self.lost_apps.values()):
            close = getattr(app.ks, "close", None)   # a key-server phone's HTTP client
            if close is not None:
                close()
        await loop.run_in_executor(None, self.district.close)


def scratch_dir() -> str | None:
    """Where a throw-away fleet lives: tmpfs when there is one (a lock's boot makes a
    dozen small file operations, which cost milliseconds each on a virtual disk)."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


async def run_scenario(sc: Scenario, state_dir: str | Path | None = None, procs: int | None = None,
                       progress: bool = False, heapsize: str | None = None, keyserver: str | None = None,
                       admin_token: str | None = None, clock_file: str | Path | None = None) -> Report:
    """Start a fleet for ``sc`` (in ``state_dir``, else a temporary directory), play it, report.

    With ``keyserver`` (its URL), ``admin_token`` and ``clock_file`` (the server's
    ``KEYSERVER_CLOCK_FILE``) the district lives on that key server; else on the local
    issuer in ``STATE/issuer.json``."""
    tmp = None
    if state_dir is None:
        tmp = tempfile.mkdtemp(prefix="locksim-", dir=scratch_dir())
        state_dir = tmp
    if procs:
        sc.procs = procs
    kw = {"heapsize": heapsize} if heapsize else {}
    district = None
    try:
        if keyserver:
            if not admin_token or not clock_file:
                raise ScenarioError("a key server run needs an admin token and the server's clock file")
            district = await asyncio.to_thread(KeyServerBackedDistrict, keyserver, admin_token, sc, clock_file)
        fleet = Fleet(state_dir, procs=sc.procs, seed=sc.seed, storage=sc.storage, **kw)
        issuer = LocalIssuer(Path(state_dir) / "issuer.json") if district is None else None
        runner = Runner(sc, fleet, issuer, progress=progress, district=district)
        t0 = time.monotonic()
        try:
            await runner.setup()
            await runner.play()
            report = await runner.report(time.monotonic() - t0)
        finally:
            await runner.close()
            if fleet.procs:
                await fleet.stop()
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return report
