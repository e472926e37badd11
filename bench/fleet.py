"""Fleet-scale benchmark of the simulator (``locksim``): locks hosted per GB and the wall
time of a district day, each against a baseline measured in the same run.

- memory: the resident set (VmRSS) of the fleet hosts holding N locks, minus that of
  the same hosts holding none (the baseline: interpreter, firmware modules, radio hub),
  per lock; reported as locks per GiB and as the ratio of one lock to the empty host;
- time: the wall time of a district day (N locks, two shifts, two visits per lock, each
  visit a CarerApp phone unlocking, door, button, locking and carrying the journal
  through the radio hub), over the
  wall time of the same single visit on a one-lock fleet times the number of visits.

``python bench/fleet.py [LOCKS] [STORAGE]`` (default 1000, files); ``bench/run.py`` calls
:func:`measure` with ``LOCKSIM_BENCH_LOCKS`` (default 1000).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from simulator.fleet import Fleet, LockSpec  # noqa: E402
from simulator.keysource import LocalIssuer  # noqa: E402
from simulator.scenario import Runner, run_scenario, scenario_from_dict, scratch_dir  # noqa: E402


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def district(n: int, storage: str) -> dict:
    """A district day for ``n`` locks: 1 day carer per 17 homes, 1 evening carer per 14."""
    return {"district": {"name": f"bench-{n}", "hours": 16, "procs": 2, "storage": storage, "seed": 1},
            "locks": {"count": n},
            "shifts": {"day": {"start": "07:00", "end": "15:00"}, "evening": {"start": "15:00", "end": "22:00"}},
            "carer": [{"name": f"D{i:04d}", "user": 1000 + i, "shift": "day"} for i in range(max(1, n // 17))]
            + [{"name": f"E{i:04d}", "user": 100000 + i, "shift": "evening"} for i in range(max(1, n // 14))],
            "visits": {"per_lock": 2, "minutes": 20, "travel_minutes": 5}}


async def memory(n: int, storage: str, heapsize: str = "512m") -> dict:
    with tempfile.TemporaryDirectory(dir=scratch_dir()) as tmp:
        f = Fleet(Path(tmp) / "st", procs=2, heapsize=heapsize, storage=storage)
        f.start()
        try:
            await f.attach()
            await asyncio.sleep(0.5)
            base = sum(rss_kib(p.pid) for p in f.procs)
            t = time.monotonic()
            await f.create([LockSpec(f"L{i:05d}", (i % 100) * 80.0, (i // 100) * 80.0) for i in range(n)])
            boot_s = time.monotonic() - t
            await f.all("stats")
            full = sum(rss_kib(p.pid) for p in f.procs)
        finally:
            await f.stop()
    per_lock = (full - base) / n
    return {"locks": n, "storage": storage, "empty_hosts_kib": base, "hosts_kib": full,
            "per_lock_kib": round(per_lock, 1), "locks_per_gib": int(1024 * 1024 / per_lock),
            "lock_over_empty_host": round(per_lock / (base / 2), 4), "boot_s": round(boot_s, 2)}


async def day(n: int, storage: str) -> dict:
    # baseline: the same visit, alone, on a one-lock fleet (only the playing is timed)
    one = scenario_from_dict(district(1, storage))
    one.visits = one.visits[:1]
    with tempfile.TemporaryDirectory(dir=scratch_dir()) as tmp:
        f = Fleet(Path(tmp) / "st", procs=2, heapsize="64m", storage=storage)
        runner = Runner(one, f, LocalIssuer())
        try:
            await runner.setup()
            t = time.monotonic()
            await runner.play()
            visit_s = time.monotonic() - t
            await runner.close()
        finally:
            await f.stop()
    t = time.monotonic()
    rep = await run_scenario(scenario_from_dict(district(n, storage)), heapsize="512m", progress=sys.stderr.isatty())
    wall = time.monotonic() - t
    v = rep.data["visits"]
    return {"locks": n, "storage": storage, "wall_s": round(wall, 1), "visits_done": v["done"],
            "visits_planned": v["planned"], "refused": v["refused"], "radio_failed": v["radio_failed"],
            "one_visit_s": round(visit_s, 4), "day_over_serial_visits": round(wall / (visit_s * max(1, v["planned"])), 3),
            "simulated_over_wall": round(16 * 3600 / wall, 1), "journal_ingested": rep.data["journal"]["ingested"],
            "unlocked_at_end": rep.data["health"]["unlocked"]}


async def measure(n: int, storage: str = "files") -> dict:
    mem = await memory(n, storage)
    mem_flash = await memory(min(n, 200), "flash")
    d = await day(n, storage)
    return {"memory": mem, "memory_flash": mem_flash, "day": d}


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    storage = sys.argv[2] if len(sys.argv) > 2 else "files"
    r = asyncio.run(measure(n, storage))
    import json
    print(json.dumps(r, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
