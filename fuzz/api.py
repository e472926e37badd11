"""``python -m fuzz.api``: fuzz the key server's HTTP API from its own OpenAPI description
with schemathesis, against a real ``keyserver serve`` process on a fresh SQLite database.

The server is given a small world first (a district, a home, a lock, a carer with a phone
and a grant), then schemathesis runs every operation with generated valid and invalid
requests under each kind of caller (an admin session, a carer session, a phone token, no
token), with the checks ``not_a_server_error`` (never a 5xx) and
``status_code_conformance`` (every status is one the description documents). Exit 1 and
schemathesis's report when any check fails. docs/security.md §Fuzzing.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

CHECKS = "not_a_server_error,status_code_conformance"


def _world(base: str, admin_pw: str) -> dict[str, str]:
    """Populate the server through its API; returns the callers' bearer tokens."""
    import httpx

    from ks_support import CARER_PW

    c = httpx.Client(base_url=base, timeout=30)

    def call(method, path, token, **kw):
        r = c.request(method, path, headers={"Authorization": f"Bearer {token}"}, **kw)
        r.raise_for_status()
        return r.json()

    admin = c.post("/api/v1/auth/login", json={"username": "root", "password": admin_pw}).json()["token"]
    district = call("POST", "/api/v1/districts", admin, json={"name": "Nord"})["id"]
    home = call("POST", "/api/v1/homes", admin, json={"citizen_ref": "C-0001", "address": "Gade 1",
                                                       "district_id": district})["id"]
    call("POST", "/api/v1/locks", admin, json={"lock_id": "a1b2c3d4e5f60708", "key": secrets.token_hex(32),
                                                "home_id": home})
    carer = call("POST", "/api/v1/staff", admin, json={"username": "anna", "role": "carer", "full_name": "Anna",
                                                        "password": CARER_PW})["id"]
    call("POST", "/api/v1/grants", admin, json={"staff_id": carer, "district_id": district, "rights": 3})
    carer_session = c.post("/api/v1/auth/login", json={"username": "anna", "password": CARER_PW}).json()["token"]
    phone = call("POST", "/api/v1/phones", carer_session, json={"label": "Anna's phone"})["token"]
    return {"admin": admin, "carer": carer_session, "phone": phone, "none": ""}


def run(examples: int, workdir: Path, seed: int | None = None, callers=("admin", "carer", "phone", "none"),
        max_time: int | None = None, phases: str | None = None) -> list[dict]:
    """Start a server, fuzz it as each caller; returns one result per caller."""
    from ks_support import ADMIN_PW, ServerProcess

    key = workdir / "master.key"
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32))
    srv = ServerProcess(f"sqlite:///{workdir / 'keyserver.db'}", key, workdir / "server.log")
    srv.init()
    srv.start()
    results = []
    try:
        tokens = _world(srv.base, ADMIN_PW)
        for who in callers:
            cmd = [str(Path(sys.executable).with_name("schemathesis")), "run", f"{srv.base}/openapi.json",
                   "--checks", CHECKS, "--max-examples", str(examples), "--workers", "1",
                   "--exclude-path", "/api/v1/auth/logout", "--exclude-path", "/api/v1/auth/password",
                   "--request-timeout", "30", "--suppress-health-check", "all", "--no-color"]
            if seed is not None:
                cmd += ["--seed", str(seed)]
            if max_time:
                cmd += ["--max-time", str(max_time)]
            if phases:
                cmd += ["--phases", phases]
            if tokens[who]:
                cmd += ["--header", f"Authorization: Bearer {tokens[who]}"]
            p = subprocess.run(cmd, capture_output=True, text=True, cwd=workdir,
                               env={**os.environ, "SCHEMATHESIS_HOOKS": ""})
            out = p.stdout + p.stderr
            n = re.findall(r"(\d+) generated", out)
            results.append({"caller": who, "ok": p.returncode == 0, "requests": int(n[-1]) if n else 0,
                            "output": out})
        results.append({"caller": "server log", "ok": "Traceback" not in srv.log.read_text(errors="replace"),
                        "requests": 0, "output": srv.log.read_text(errors="replace")[-4000:]})
    finally:
        srv.kill()
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="fuzz.api", description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=300, help="examples per operation and caller (default 300)")
    ap.add_argument("--seed", type=int)
    ap.add_argument("--max-time", type=int, help="seconds per caller")
    ap.add_argument("--phases", help="schemathesis phases (default all: examples,coverage,fuzzing,stateful)")
    ap.add_argument("--callers", default="admin,carer,phone,none", help="comma-separated (default all four)")
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="fuzz-api-") as tmp:
        results = run(a.examples, Path(tmp), a.seed, callers=a.callers.split(","), max_time=a.max_time,
                      phases=a.phases)
    for r in results:
        if r["caller"] != "server log":
            print(f"{r['caller']:<8} {r['requests']:>8} generated test cases  {'ok' if r['ok'] else 'FAILED'}")
    bad = [r for r in results if not r["ok"]]
    for r in bad:
        print(f"fuzz.api: {r['caller']} failed:\n{r['output'][-6000:]}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
