"""`make demo`: a carer's day in a simulated district, end to end.

Starts the key server on SQLite, a district of simulated locks running the real
firmware (the fleet simulator), provisions every lock over its serial pty with
``lockctl``'s library against the key server, and plays a day: carers unlock with the
tickets of their bundles over the simulated radio, the response centre hands out an
alarm key, a lost phone is revoked (and its finder is refused), a lock is re-keyed over
the air, a battery runs low. Journals travel with the phones to the key server, which
turns them into the visit and battery reports this script prints and points to.

    python demo/district_demo.py [--dir DIR] [--locks N] [--serve]

``--serve`` keeps the key server running afterwards so the reports can be browsed.
Nothing here uses a default credential: the admin password is generated and written
to DIR/admin-password (mode 0600).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from provisioning import LockClient, SerialTransport  # noqa: E402
from provisioning.carer import CarerApp  # noqa: E402
from provisioning.gatt import GattTransport, sim_radio_link  # noqa: E402
from provisioning.keysource import KeyServerSource  # noqa: E402
from simulator.fleet import running_fleet  # noqa: E402

RIGHTS_CARER = 1 | 2 | 4          # unlock, lock, journal
CITIZENS = [("C-1001", "Lillegade 3"), ("C-1002", "Nørregade 12"), ("C-1003", "Kirkevej 7"),
            ("C-1004", "Skolegade 1"), ("C-1005", "Åvænget 22"), ("C-1006", "Bakkevej 9")]


def say(msg: str = "") -> None:
    print(msg, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Demo:
    def __init__(self, work: Path, n_locks: int) -> None:
        self.work = work
        self.n = n_locks
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.db = f"sqlite:///{work / 'keyserver.db'}"
        self.key = work / "master.key"
        self.procs: list[subprocess.Popen] = []
        self.fleet_dir = work / "district"
        self.failures: list[str] = []

    # ---- processes ----

    def ks(self, *args, stdin=None):
        env = {**os.environ, "KEYSERVER_ARGON2_TIME_COST": "2", "KEYSERVER_ARGON2_MEMORY_KIB": "19456"}
        r = subprocess.run([sys.executable, "-m", "keyserver", "--database-url", self.db, "--master-key-file",
                            str(self.key), *args], input=stdin, capture_output=True, text=True, env=env, timeout=120)
        if r.returncode != 0:
            raise SystemExit(f"demo: keyserver {args[0]} failed: {r.stderr.strip()}")
        return r.stdout

    def start_server(self) -> None:
        self.ks("init")
        self.password = secrets.token_urlsafe(12)
        pw = self.work / "admin-password"
        pw.write_text(self.password + "\n")
        pw.chmod(0o600)
        self.ks("create-admin", "admin", stdin=self.password + "\n")
        log = open(self.work / "keyserver.log", "ab")
        env = {**os.environ, "KEYSERVER_ARGON2_TIME_COST": "2", "KEYSERVER_ARGON2_MEMORY_KIB": "19456"}
        p = subprocess.Popen([sys.executable, "-m", "keyserver", "--database-url", self.db, "--master-key-file",
                              str(self.key), "serve", "--port", str(self.port), "--log-level", "warning"],
                             stdout=log, stderr=log, env=env)
        self.procs.append(p)
        end = time.monotonic() + 60
        while time.monotonic() < end:
            try:
                if httpx.get(self.base + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise SystemExit("demo: the key server did not start (see keyserver.log)")

    def start_fleet(self) -> None:
        log = open(self.work / "locksim.log", "ab")
        p = subprocess.Popen([sys.executable, "-m", "simulator.cli", "--state", str(self.fleet_dir), "start",
                              "--locks", str(self.n), "--pty", "--factory"], stdout=log, stderr=log, cwd=ROOT)
        self.procs.append(p)
        end = time.monotonic() + 120
        def ready():
            f = self.fleet_dir / "fleet.json"
            return (self.fleet_dir / "ptys.json").exists() and f.exists() and \
                json.loads(f.read_text()).get("supervisor") == p.pid
        while not ready():
            if p.poll() is not None or time.monotonic() > end:
                raise SystemExit("demo: the fleet did not start (see locksim.log)")
            time.sleep(0.2)
        self.ptys = json.loads((self.fleet_dir / "ptys.json").read_text())
        self.fleet = running_fleet(self.fleet_dir)

    def stop(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()

    # ---- helpers ----

    def api(self, method, path, token, expect=None, **kw):
        r = httpx.request(method, self.base + "/api/v1" + path, headers={"Authorization": f"Bearer {token}"},
                          timeout=60, **kw)
        if r.status_code >= 300 and expect is None:
            raise SystemExit(f"demo: {method} {path}: {r.status_code} {r.text}")
        return r.json() if r.headers.get("content-type", "").startswith("application/json") else r.text

    def sim(self, lock, op, **args):
        async def go():
            f = running_fleet(self.fleet_dir)
            try:
                return await f.call(lock, op, **args)
            finally:
                for c in f.clients:
                    await c.close()
        return asyncio.run(go())

    def advance(self, ms):
        async def go():
            f = running_fleet(self.fleet_dir)
            try:
                await f.advance(ms)
            finally:
                for c in f.clients:
                    await c.close()
        asyncio.run(go())

    def phone(self, name: str, token: str) -> CarerApp:
        ks = KeyServerSource(self.base, token, shift_hours=8)   # a shift
        return CarerApp(name, ks, lambda lock: GattTransport(sim_radio_link(str(self.fleet_dir), lock), timeout=15))

    def expect(self, ok: bool, what: str) -> None:
        # the story's outcomes are the product's promises: a broken one fails the demo
        if not ok:
            self.failures.append(what)
            say(f"  !! expected: {what}")

    def visit(self, app: CarerApp, lock: str, minutes: int, who: str):
        v = app.open_door(lock, journal=False)
        extra = f" (relayed: {', '.join(v.relayed)})" if v.relayed else ""
        if not v.opened:
            say(f"  {who:5} at {self.address[lock]:14} REFUSED: {v.refusal}{extra}")
            return v
        say(f"  {who:5} at {self.address[lock]:14} opened{extra}; visit of {minutes} min")
        self.advance(3000)
        self.sim(lock, "door", open=True)
        self.advance(minutes * 60_000)
        self.sim(lock, "door", open=False)
        self.advance(20_000)          # the unit relocks by itself after the door closes
        n = app.collect_journal(lock)
        say(f"        journal: {n} records carried to the key server" if n else
            "        journal: stays on the lock for the next carer (this key has no journal right)")
        return v

    # ---- the story ----

    def run(self) -> None:
        say(f"openlock demo — working directory {self.work}")
        say("1. key server on SQLite " + self.base)
        self.start_server()
        a = httpx.post(self.base + "/api/v1/auth/login", json={"username": "admin", "password": self.password},
                       timeout=30).json()["token"]
        self.admin = a
        district = self.api("POST", "/districts", a, json={"name": "Holstebro Nord"})["id"]
        self.district = district
        homes = [self.api("POST", "/homes", a, json={"citizen_ref": ref, "address": addr,
                                                     "district_id": district})["id"]
                 for ref, addr in CITIZENS[:self.n]]

        say(f"2. a district of {self.n} simulated locks on the real firmware (locksim), factory-fresh")
        self.start_fleet()
        names = sorted(self.ptys)
        self.address = {}
        (self.work / "tokens").mkdir(mode=0o700, exist_ok=True)
        ks_admin = KeyServerSource(self.base, None, a)
        for name, home, (_, addr) in zip(names, homes, CITIZENS):
            c = LockClient(SerialTransport(self.ptys[name], timeout=10))
            try:
                lock_id, epoch, master = ks_admin.register(name, "sim", home)
                c.provision(lock_id, epoch, master, int(time.time()))
            finally:
                c.close()
            self.address[name] = addr
            say(f"   provisioned {name} over its serial port: lock {lock_id.hex()} at {addr}")
        self.lock_of = {lk["home_id"]: lk["lock_id"] for lk in self.api("GET", "/locks", a)}

        say("3. staff and phones")
        staff = {}
        for user, full in (("anna", "Anna Holm"), ("bo", "Bo Jensen")):
            pw = secrets.token_urlsafe(12)
            staff[user] = self.api("POST", "/staff", a, json={"username": user, "role": "carer",
                                                              "full_name": full, "password": pw})["id"]
            sess = httpx.post(self.base + "/api/v1/auth/login", json={"username": user, "password": pw},
                              timeout=30).json()["token"]
            ph = self.api("POST", "/phones", sess, json={"label": f"{full}'s phone"})
            staff[user + "_phone"] = ph["id"]
            staff[user + "_token"] = ph["token"]
        self.api("POST", "/grants", a, json={"staff_id": staff["anna"], "district_id": district,
                                              "rights": RIGHTS_CARER})
        self.api("POST", "/grants", a, json={"staff_id": staff["bo"], "home_id": homes[3], "rights": RIGHTS_CARER})
        centre = self.api("POST", "/staff", a, json={"username": "alarmcentral", "role": "integration",
                                                     "full_name": "Response centre"})["id"]
        centre_token = self.api("POST", f"/staff/{centre}/tokens", a, json={"label": "alarm integration"})["token"]
        say("   Anna: the whole district; Bo: one home; the response centre: an integration token")
        anna = self.phone("Anna", staff["anna_token"])
        bo = self.phone("Bo", staff["bo_token"])

        say("4. the batteries of " + self.address[names[-1]] + " are running down")
        self.sim(names[-1], "battery", mv=4450, drain_mv_h=20)
        for _ in range(24):
            # the unit samples its cells once a minute and smooths them; a touch makes the
            # fleet host run it up to now
            self.advance(61_000)
            self.sim(names[-1], "battery")
        h = anna.pass_by(names[-1])
        say(f"   Anna passes by: its HELLO says {h.state.battery_mv} mV, {h.state.battery_pct} %, "
            f"flags {h.state.flags:#04x}; reported to the key server")

        say("5. an alarm: the response centre gives Bo 30 minutes at " + CITIZENS[4][1])
        self.api("POST", "/integration/alarm-keys", centre_token,
                 json={"username": "bo", "home_id": homes[4], "minutes": 30, "reason": "fall alarm"})
        self.expect(self.visit(bo, names[4], 20, "Bo").opened, "the alarm key opens the door")

        say("6. the morning round")
        for name, minutes in zip(names[:3], (25, 40, 15)):
            self.expect(self.visit(anna, name, minutes, "Anna").opened, "Anna's ticket opens " + name)
        self.expect(self.visit(bo, names[3], 30, "Bo").opened, "Bo's ticket opens his citizen's door")
        h = anna.pass_by(names[-1])
        say(f"   Anna passes {self.address[names[-1]]} again: {h.state.battery_mv} mV, {h.state.battery_pct} %, "
            f"flags {h.state.flags:#04x}")

        say("7. Bo loses his phone; IT revokes it at once")
        self.api("POST", f"/phones/{staff['bo_phone']}/revoke", a, json={"reason": "lost on the bus"})
        say("   Anna's next visit carries the new deny list to the lock")
        v = self.visit(anna, names[3], 10, "Anna")
        self.expect(v.opened and any("deny list" in r for r in v.relayed), "Anna's phone relays the new deny list")
        say("   whoever found Bo's phone tries the door with the tickets still on it:")
        self.expect(self.visit(bo, names[3], 0, "finder").refusal == "REVOKED", "the lost phone is refused (REVOKED)")

        say("8. routine re-key of " + self.address[names[0]] + " over the air")
        lid0 = self.lock_of[homes[0]]
        self.api("POST", f"/locks/{lid0}/rekey", a, json={"onsite": False})
        self.visit(anna, names[0], 10, "Anna")
        rk = self.api("GET", f"/locks/{lid0}/rekey", a)
        say(f"   re-key state at the key server: {rk['state']} (epoch {rk['old_epoch']} -> {rk['new_epoch']})")
        self.expect(rk["state"] == "done", "the re-key completes with the lock's proof")

        say("9. the afternoon visit at " + self.address[names[-1]])
        v = self.visit(anna, names[-1], 15, "Anna")
        if v.refusal == "BATTERY_CRITICAL":
            say("   the lock will not start a motor run its cells cannot finish, and says so (MACed);")
            say("   the door stays locked, the thumb-turn inside still works, and the planner sees it below")
        self.expect(v.opened or v.refusal == "BATTERY_CRITICAL", "a weak battery is explicit, never silent")
        self.battery_lock = self.lock_of[homes[-1]]

        self.report()

    def report(self) -> None:
        a = self.admin
        now = int(time.time())
        span = {"start": now - 86400, "end": now + 86400}
        say("")
        say("Visits (key server report):")
        names = {s["id"]: s["full_name"] or s["username"] for s in self.api("GET", "/staff", a)}
        homes = {h["id"]: h["address"] for h in self.api("GET", "/homes", a)}
        visits = self.api("GET", "/reports/visits", a, params=span)
        self.expect(len(visits) >= 6, "the carers' visits are in the report")
        for v in visits:
            dur = v.get("duration_s") or v.get("duration") or 0
            say(f"  {names.get(v.get('staff_id'), v.get('staff_id'))!s:10} {homes.get(v.get('home_id'), '?'):14} "
                f"{time.strftime('%H:%M', time.localtime(v['start']))}-"
                f"{time.strftime('%H:%M', time.localtime(v['end'])) if v.get('end') else '?':5} "
                f"{int(dur) // 60:3d} min")
        (self.work / "visits.csv").write_text(self.api("GET", "/reports/visits", a, params={**span, "format": "csv"}))
        say("")
        b = self.api("GET", f"/reports/battery/{self.battery_lock}", a)
        say(f"Battery of {self.address[sorted(self.ptys)[-1]]}: {b['last_mv']} mV, {b['last_pct']} % "
            f"({b['samples']} journal readings); {b['reason'] or 'trend ' + str(b['slope_mv_per_day']) + ' mV/day'}")
        say("Battery change list for the district (next 365 days):")
        rows = self.api("GET", "/reports/battery-changes", a, params={"district_id": self.district, "days": 365})
        for row in rows:
            when = time.strftime("%Y-%m-%d", time.localtime(row["predicted_at"]))
            say(f"  {row['address']:14} {row['last_mv']} mV {row['last_pct']:3d} %  change by {when}")
        if not rows:
            say("  (none due)")
        self.expect(any(r["lock_id"] == self.battery_lock for r in rows), "the low battery is on the change list")
        say("")
        say("Where to look:")
        say(f"  visits        {self.base}/api/v1/reports/visits?start={span['start']}&end={span['end']}"
            f"  (CSV: {self.work / 'visits.csv'})")
        say(f"  batteries     {self.base}/api/v1/reports/battery-changes?district_id={self.district}&days=365")
        say(f"  lock health   {self.base}/api/v1/reports/health")
        say(f"  audit log     {self.base}/api/v1/audit")
        say(f"  API docs      {self.base}/docs")
        say(f"  sign in as 'admin' with the password in {self.work / 'admin-password'}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="demo", description=__doc__.splitlines()[0])
    p.add_argument("--dir", help="working directory (default: a fresh temporary one)")
    p.add_argument("--locks", type=int, default=6, choices=range(5, len(CITIZENS) + 1))
    p.add_argument("--serve", action="store_true", help="keep the key server running until Ctrl-C")
    a = p.parse_args(argv)
    work = Path(a.dir) if a.dir else Path(tempfile.mkdtemp(prefix="openlock-demo-"))
    if a.dir and work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    d = Demo(work, a.locks)
    try:
        d.run()
        if d.failures:
            say(f"\ndemo: {len(d.failures)} expected outcome(s) did not happen: " + "; ".join(d.failures))
            return 1
        if a.serve:
            say("\nthe key server keeps running; Ctrl-C stops it")
            signal.sigwait({signal.SIGINT, signal.SIGTERM})
    except KeyboardInterrupt:
        pass
    finally:
        d.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
