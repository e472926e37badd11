"""Key server benchmarks (run by bench/run.py, or alone: ``python bench/ks_bench.py [sqlite|postgres]``).

Against a real server process (``keyserver serve``, uvicorn) on a fresh database:

- ticket bundles: 100 phones ask for their shift bundle at once (each carer may open
  ``LOCKS`` locks, so a bundle is ``LOCKS`` tickets with K_T, deny lists and the audit
  rows), ``ROUNDS`` times each; p50 and p99 latency;
- journal ingestion: export chunks of 16 records for ``LOCKS`` locks uploaded by
  ``LOCKS`` phones at once; events (records) stored per second.

Baselines from the same run and the same database: one-row INSERT + COMMIT
transactions per second (for the bundle, which is one transaction), and rows per
second inserted 16 to a transaction (for ingestion, which stores 16 records per chunk).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

PHONES = 100
ROUNDS = 3
LOCKS = 10
CHUNKS = 30


@contextlib.contextmanager
def _database(kind: str, tmp: Path):
    if kind == "sqlite":
        yield f"sqlite:///{tmp / 'bench.db'}"
        return
    import psycopg

    name = "ks_bench_" + secrets.token_hex(4)
    with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def baseline(url: str, n_tx: int = 400, n_batch: int = 200) -> tuple[float, float]:
    """(one-row insert+commit transactions per second, rows per second at 16 rows per transaction)."""
    from sqlalchemy import text

    from keyserver.db import Database

    db = Database(url)
    with db.tx() as s:
        s.execute(text("CREATE TABLE bench_raw (id INTEGER PRIMARY KEY, a BIGINT, b BIGINT, c VARCHAR(16))"))
    t = time.perf_counter()
    for i in range(n_tx):
        with db.tx() as s:
            s.execute(text("INSERT INTO bench_raw (id, a, b, c) VALUES (:i, :i, :i, 'x')"), {"i": i + 1})
    tx_rate = n_tx / (time.perf_counter() - t)
    t = time.perf_counter()
    base = n_tx + 1
    for j in range(n_batch):
        with db.tx() as s:
            s.execute(text("INSERT INTO bench_raw (id, a, b, c) VALUES (:i, :i, :i, 'x')"),
                      [{"i": base + j * 16 + k} for k in range(16)])
    row_rate = n_batch * 16 / (time.perf_counter() - t)
    with db.tx() as s:
        s.execute(text("DROP TABLE bench_raw"))
    db.dispose()
    return tx_rate, row_rate


async def _setup(base: str, admin_pw: str):
    import httpx

    from lockproto import LockKeys

    async with httpx.AsyncClient(base_url=base, timeout=60) as c:
        admin = (await c.post("/api/v1/auth/login", json={"username": "root", "password": admin_pw})).json()["token"]
        h = {"Authorization": f"Bearer {admin}"}
        d = (await c.post("/api/v1/districts", headers=h, json={"name": "Bench"})).json()["id"]
        keys = []
        for i in range(LOCKS):
            home = (await c.post("/api/v1/homes", headers=h, json={"citizen_ref": f"B{i}", "district_id": d})).json()
            master = secrets.token_bytes(32)
            lid = secrets.token_bytes(8)
            r = await c.post("/api/v1/locks", headers=h, json={"lock_id": lid.hex(), "key": master.hex(),
                                                                "home_id": home["id"]})
            assert r.status_code == 201, r.text
            keys.append(LockKeys.from_master(master, lid, 1))
        group = (await c.post("/api/v1/groups", headers=h, json={"name": "all", "district_id": d})).json()["id"]
        await c.post("/api/v1/grants", headers=h, json={"group_id": group, "district_id": d})
        phones = []
        for i in range(PHONES):
            sid = (await c.post("/api/v1/staff", headers=h, json={"username": f"c{i}", "role": "carer"})).json()["id"]
            await c.post(f"/api/v1/groups/{group}/members", headers=h, json={"staff_id": sid})
            phones.append((await c.post("/api/v1/phones", headers=h, json={"staff_id": sid})).json()["token"])
    return phones, keys


async def _bundles(base: str, phones: list[str]) -> list[float]:
    import httpx

    lat: list[float] = []
    limits = httpx.Limits(max_connections=PHONES, max_keepalive_connections=PHONES)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as c:
        async def one(tok):
            for _ in range(ROUNDS):
                t = time.perf_counter()
                r = await c.post("/api/v1/phone/bundle", headers={"Authorization": f"Bearer {tok}"}, json={})
                lat.append(time.perf_counter() - t)
                assert r.status_code == 200 and len(r.json()["locks"]) == LOCKS, r.text

        await asyncio.gather(*(one(p) for p in phones))
    return lat


async def _ingest(base: str, phone: str, keys) -> tuple[int, float]:
    import httpx

    from lockproto.journal import Record, chain_genesis, make_export_chunk, seal

    per_lock = []
    for k in keys:
        prev = chain_genesis(k.jm, k.lock_id)
        chunks, seq = [], 1
        for _ in range(CHUNKS):
            recs, first, first_prev = [], seq, prev
            for _ in range(16):
                r = seal(k.jm, prev, Record(seq=seq, time=1_800_000_000 + 60 * seq, event=5 + seq % 2))
                recs.append(r)
                prev, seq = r.chain, seq + 1
            chunks.append(make_export_chunk(k, first, recs, CHUNKS * 16, first_prev).hex())
        per_lock.append((k.lock_id.hex(), chunks))
    async with httpx.AsyncClient(base_url=base, timeout=120) as c:
        async def lock_uploads(lid, chunks):
            for ch in chunks:
                r = await c.post("/api/v1/phone/journal", headers={"Authorization": f"Bearer {phone}"},
                                 json={"lock_id": lid, "chunk": ch})
                assert r.status_code == 200 and r.json()["stored"] == 16, r.text

        t = time.perf_counter()
        await asyncio.gather(*(lock_uploads(lid, ch) for lid, ch in per_lock))
        wall = time.perf_counter() - t
    return len(keys) * CHUNKS * 16, wall


def run(kind: str = "sqlite") -> dict:
    from ks_support import ADMIN_PW, ServerProcess

    with tempfile.TemporaryDirectory() as tmp, _database(kind, Path(tmp)) as url:
        tmp = Path(tmp)
        key = tmp / "master.key"
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
        srv = ServerProcess(url, key, tmp / "server.log")
        srv.init()
        tx_rate, row_rate = baseline(url)
        srv.start()
        try:
            phones, keys = asyncio.run(_setup(srv.base, ADMIN_PW))
            t_b = time.perf_counter()
            lat = asyncio.run(_bundles(srv.base, phones))
            wall_b = time.perf_counter() - t_b
            events, wall = asyncio.run(_ingest(srv.base, phones[0], keys))
        finally:
            srv.kill()
            log = (tmp / "server.log").read_text(errors="replace")
            if "Traceback" in log or "unhandled" in log:
                print(log[-3000:], file=sys.stderr)
    lat.sort()
    p50 = statistics.median(lat)
    p99 = lat[min(len(lat) - 1, int(round(0.99 * len(lat))) - 1)]
    commit_s = 1 / tx_rate
    ev_rate = events / wall
    return {
        "backend": kind, "phones": PHONES, "bundle_requests": len(lat), "tickets_per_bundle": LOCKS,
        "raw_insert_commit_per_s": round(tx_rate, 1), "raw_rows_per_s_16_per_tx": round(row_rate, 1),
        "bundle_p50_ms": round(p50 * 1000, 1), "bundle_p99_ms": round(p99 * 1000, 1),
        "bundle_p50_over_commit": round(p50 / commit_s, 1), "bundle_p99_over_commit": round(p99 / commit_s, 1),
        "bundles_per_s": round(len(lat) / wall_b, 1),
        "bundles_per_s_over_commits_per_s": round(len(lat) / wall_b / tx_rate, 3),
        "ingest_events_per_s": round(ev_rate, 1), "ingest_over_raw_rows": round(ev_rate / row_rate, 3),
    }


def report(r: dict) -> None:
    print(f"key server on {r['backend']} (real uvicorn process; baselines on the same database in the same run)")
    print(f"  raw INSERT+COMMIT (baseline)      {r['raw_insert_commit_per_s']:9.1f} tx/s"
          f"   = {1000 / r['raw_insert_commit_per_s']:.2f} ms each")
    print(f"  ticket bundle, {r['phones']} phones at once, {r['tickets_per_bundle']} tickets each:")
    print(f"    p50 {r['bundle_p50_ms']:8.1f} ms = {r['bundle_p50_over_commit']:.1f} x one raw commit")
    print(f"    p99 {r['bundle_p99_ms']:8.1f} ms = {r['bundle_p99_over_commit']:.1f} x one raw commit")
    print(f"    throughput {r['bundles_per_s']:.1f} bundles/s = {r['bundles_per_s_over_commits_per_s']:.3f} x raw commits/s")
    print(f"  raw rows, 16 per transaction (baseline) {r['raw_rows_per_s_16_per_tx']:9.1f} rows/s")
    print(f"  journal ingest (verify + store)   {r['ingest_events_per_s']:9.1f} events/s"
          f" = {r['ingest_over_raw_rows']:.3f} x raw rows")


def main(argv=None) -> list[dict]:
    kinds = (argv or sys.argv[1:]) or ["sqlite", "postgres"]
    out = []
    for kind in kinds:
        if kind == "postgres":
            try:
                import psycopg

                psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres", connect_timeout=3).close()
            except Exception as e:  # noqa: BLE001
                print(f"key server on postgres: skipped (no PostgreSQL at 127.0.0.1:5432: {e})")
                continue
        r = run(kind)
        report(r)
        out.append(r)
    return out


if __name__ == "__main__":
    main()
