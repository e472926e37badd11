"""The desktop half of the fleet: start MicroPython fleet hosts and talk to them.

A fleet lives in a state directory::

    STATE/fleet.json          which locks exist, where they stand, which host owns each,
                              the running hosts' ports and pids, the scenario wall clock
    STATE/locks/<name>/       one lock's durable state (written by the MicroPython host):
                              kv/ (identity, key slots, clock mark, deny list, journal state),
                              journal.log (journal records), world.json (bolt, door, cells, RTC)

:class:`Fleet` spawns ``procs`` MicroPython processes (``simulator/mpy/fleethost.py``),
spreads the locks over them (lock *i* on host *i mod procs*, stable across restarts)
and hands out :class:`HostClient` connections. Every lock keeps its state directory, so
``Fleet(state).start()`` after a stop brings back the same fleet.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import mpyhost

HERE = Path(__file__).resolve().parent
MPY_DIR = HERE / "mpy"
AIOBLE_DIR = HERE / "sim_aioble"
BOARDS_DIR = HERE.parent / "boards"
HOST_SCRIPT = MPY_DIR / "fleethost.py"
DEFAULT_HEAP = "512m"


def _die_with_parent() -> None:
    """In the child before exec: end this host when the process that started it dies
    (Linux PR_SET_PDEATHSIG), so a crashed desktop leaves no orphan hosts behind."""
    try:
        import ctypes
        import signal
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGTERM))
    except (OSError, AttributeError):
        pass


class FleetError(RuntimeError):
    """A user-facing fleet problem (no such lock, no fleet running, a host refused)."""


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def host_env() -> dict:
    """The environment a fleet host runs in: firmware, fake aioble and the host on MICROPYPATH."""
    env = dict(os.environ)
    env["MICROPYPATH"] = os.pathsep.join([str(MPY_DIR), str(AIOBLE_DIR), str(mpyhost.FIRMWARE_LIB), ".frozen"])
    return env


class HostClient:
    """One JSON-lines connection to a fleet host (asyncio). Requests run in order."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._r: asyncio.StreamReader | None = None
        self._w: asyncio.StreamWriter | None = None
        self._lock = asyncio.Lock()

    async def open(self) -> "HostClient":
        self._r, self._w = await asyncio.open_connection("127.0.0.1", self.port, limit=1 << 24)
        return self

    async def call(self, op: str, **args):
        """Send one request; return its ``ok`` value or raise FleetError with the host's reason."""
        if self._w is None:
            try:
                await self.open()
            except OSError as e:
                raise FleetError(f"no fleet host on port {self.port}: {e}") from e
        async with self._lock:
            try:
                self._w.write(json.dumps({"op": op, **args}).encode() + b"\n")
                await self._w.drain()
                line = await self._r.readline()
            except OSError as e:
                raise FleetError(f"fleet host on port {self.port}: {e}") from e
        if not line:
            raise FleetError(f"fleet host on port {self.port} closed the connection")
        reply = json.loads(line)
        if "err" in reply:
            raise FleetError(reply["err"])
        return reply["ok"]

    async def close(self) -> None:
        if self._w is not None:
            self._w.close()
            try:
                await self._w.wait_closed()
            except OSError:
                pass
            self._w = None


@dataclass
class LockSpec:
    name: str
    x: float = 0.0
    y: float = 0.0
    host: int = 0


@dataclass
class FleetState:
    procs: int = 2
    wall0: int = 1772434800  # 2026-03-02 07:00 UTC: scenario wall time at host time 0
    locks: dict[str, LockSpec] = field(default_factory=dict)
    hosts: list[dict] = field(default_factory=list)  # {"port", "pid"} of running hosts
    supervisor: int = 0  # pid of the `locksim start` that owns the hosts (0: none)
    storage: str = "flash"  # "flash" (the unit's flash twin) or "files" (light, for big fleets)

    @classmethod
    def load(cls, path: Path) -> "FleetState":
        d = json.loads(path.read_text())
        locks = {n: LockSpec(n, **v) for n, v in d.get("locks", {}).items()}
        return cls(d.get("procs", 2), d.get("wall0", cls.wall0), locks, d.get("hosts", []), d.get("supervisor", 0),
                   d.get("storage", "flash"))

    def save(self, path: Path) -> None:
        d = {"procs": self.procs, "wall0": self.wall0, "hosts": self.hosts, "supervisor": self.supervisor,
             "storage": self.storage,
             "locks": {n: {"x": s.x, "y": s.y, "host": s.host} for n, s in self.locks.items()}}
        tmp = path.with_suffix(".new")
        tmp.write_text(json.dumps(d, indent=1))
        tmp.replace(path)


class Fleet:
    """A fleet of simulated locks in ``state_dir``, hosted by ``procs`` MicroPython processes."""

    def __init__(self, state_dir: str | Path, procs: int | None = None, heapsize: str = DEFAULT_HEAP,
                 seed: int | None = None, storage: str | None = None) -> None:
        self.dir = Path(state_dir)
        self.file = self.dir / "fleet.json"
        self.state = FleetState.load(self.file) if self.file.exists() else FleetState()
        if storage is not None:
            if storage not in ("flash", "files"):
                raise FleetError("storage is flash or files")
            if self.state.locks and storage != self.state.storage:
                raise FleetError(f"this fleet's locks keep their state in {self.state.storage}")
            self.state.storage = storage
        if procs is not None:
            if procs < 1:
                raise FleetError("procs must be at least 1")
            if self.state.locks and procs != self.state.procs:
                raise FleetError(f"this fleet runs on {self.state.procs} processes")
            self.state.procs = procs
        self.heapsize = heapsize
        self.seed = seed
        self.procs: list[subprocess.Popen] = []
        self.clients: list[HostClient] = []
        self._pools: dict[int, list[HostClient]] = {}
        self._turn = 0

    # ---- processes ----

    def start(self) -> None:
        """Spawn the hosts (each loads its locks from their state directories)."""
        if self.procs:
            raise FleetError("fleet already started")
        (self.dir / "locks").mkdir(parents=True, exist_ok=True)
        hosts = []
        for i in range(self.state.procs):
            port = free_port()
            args = [mpyhost.micropython_binary(), "-X", f"heapsize={self.heapsize}", str(HOST_SCRIPT),
                    str(self.dir / "locks"), str(port), str(BOARDS_DIR)]
            args += [str(self.seed + i) if self.seed is not None else "-", self.state.storage]
            log = open(self.dir / f"host{i}.log", "a")
            p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log,
                                 env=host_env(), text=True, preexec_fn=_die_with_parent)
            log.close()
            self.procs.append(p)
            hosts.append({"port": port, "pid": p.pid})
        for p in self.procs:
            line = p.stdout.readline()
            if not line.startswith("READY"):
                self.kill()
                raise FleetError(f"fleet host did not start (see {self.dir}/host*.log): {line!r}")
        self.state.hosts = hosts
        self.clients = [HostClient(h["port"]) for h in hosts]
        self.state.save(self.file)

    async def attach(self) -> None:
        """Load every known lock into its host (after start())."""
        by_host: dict[int, list] = {}
        for s in self.state.locks.values():
            by_host.setdefault(s.host, []).append({"name": s.name, "x": s.x, "y": s.y})
        await asyncio.gather(*(self._add(h, specs) for h, specs in by_host.items()))

    async def _add(self, host: int, specs: list) -> None:
        for i in range(0, len(specs), 200):
            await self.clients[host].call("add", locks=specs[i:i + 200])

    async def create(self, specs: list[LockSpec]) -> list[LockSpec]:
        """Add new locks (names must be new); spread round-robin by creation order."""
        made = []
        n = len(self.state.locks)
        for s in specs:
            if s.name in self.state.locks:
                raise FleetError(f"lock {s.name} exists")
            s.host = n % self.state.procs
            n += 1
            self.state.locks[s.name] = s
            made.append(s)
        self.state.save(self.file)
        by_host: dict[int, list] = {}
        for s in made:
            by_host.setdefault(s.host, []).append({"name": s.name, "x": s.x, "y": s.y})
        await asyncio.gather(*(self._add(h, v) for h, v in by_host.items()))
        return made

    async def stop(self) -> None:
        """Persist every lock's world and end the hosts."""
        await self.close_pools()
        for c in self.clients:
            try:
                await c.call("shutdown")
            except (FleetError, OSError):
                pass
            await c.close()
        for p in self.procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self._close_pipes()
        self.procs = []
        self.clients = []
        self.state.hosts = []
        self.state.supervisor = 0
        self.state.save(self.file)

    def kill(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        self._close_pipes()
        self.procs = []

    def _close_pipes(self) -> None:
        for p in self.procs:
            if p.stdout is not None:
                p.stdout.close()

    # ---- addressing ----

    def host_of(self, lock: str) -> int:
        s = self.state.locks.get(lock)
        if s is None:
            raise FleetError(f"no such lock: {lock}")
        return s.host

    def client(self, lock: str) -> HostClient:
        return self.clients[self.host_of(lock)]

    def pooled(self, host: int, size: int = 24) -> HostClient:
        """One of ``size`` shared connections to ``host`` (phones' radio requests name their
        phone, so any connection carries any phone; a host hears a bounded number)."""
        pool = self._pools.setdefault(host, [])
        self._turn += 1
        if len(pool) < size:
            pool.append(HostClient(self.state.hosts[host]["port"]))
            return pool[-1]
        return pool[self._turn % size]

    async def close_pools(self) -> None:
        for pool in self._pools.values():
            for c in pool:
                await c.close()
        self._pools = {}

    def port_of(self, lock: str) -> int:
        return self.state.hosts[self.host_of(lock)]["port"]

    async def call(self, lock: str, op: str, **args):
        return await self.client(lock).call(op, lock=lock, **args)

    async def all(self, op: str, **args) -> list:
        return await asyncio.gather(*(c.call(op, **args) for c in self.clients))

    async def advance(self, ms: int) -> None:
        """Move every host's clock forward by ``ms`` simulated milliseconds."""
        await self.all("time", advance_ms=int(ms))

    async def now_ms(self) -> int:
        return max(r["now"] for r in await self.all("time"))

    async def wall(self) -> int:
        """The scenario's wall clock (unix seconds) now."""
        return self.state.wall0 + (await self.now_ms()) // 1000

    async def status(self) -> list[dict]:
        out = []
        for r in await self.all("summary"):
            out.extend(r)
        return sorted(out, key=lambda s: s["lock"])


def running_fleet(state_dir: str | Path) -> Fleet:
    """A Fleet object for hosts another process started (``locksim start``): no processes
    of its own, clients to the ports recorded in fleet.json."""
    f = Fleet(state_dir)
    if not f.file.exists():
        raise FleetError(f"no fleet in {state_dir} (run `locksim start` first)")
    if not f.state.hosts:
        raise FleetError(f"the fleet in {state_dir} is not running (run `locksim start`)")
    f.clients = [HostClient(h["port"]) for h in f.state.hosts]
    return f


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise FleetError(f"nothing listens on port {port}")
