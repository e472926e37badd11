"""``keyserver`` command: init, serve, create-admin, import, export, rekey.

Settings come from ``KEYSERVER_*`` environment variables; ``--database-url`` and
``--master-key-file`` override them. User errors print ``keyserver: message`` on stderr
and exit 1.
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import getpass
import os
import secrets
import sys
from pathlib import Path

from sqlalchemy import select

PROG = "keyserver"


class UserError(Exception):
    pass


def _settings(args):
    from .settings import ConfigError, load_settings

    over = {}
    if args.database_url:
        over["database_url"] = args.database_url
    if args.master_key_file:
        over["master_key_file"] = Path(args.master_key_file)
        if "KEYSERVER_MASTER_KEY" in os.environ:
            raise UserError("--master-key-file given while KEYSERVER_MASTER_KEY is set; unset one")
    if getattr(args, "clock_file", None):
        over["clock_file"] = Path(args.clock_file)
    try:
        return load_settings(**over)
    except ConfigError as e:
        raise UserError(str(e)) from None


def _open(args):
    from .db import Database
    from .settings import ConfigError
    from .vault import Vault

    from .keystore import use_clock

    settings = _settings(args)
    try:
        vault = Vault(settings.load_master_key())
        use_clock(settings.clock_file)  # a test bench's simulated clock (KEYSERVER_CLOCK_FILE), else real time
    except ConfigError as e:
        raise UserError(str(e)) from None
    return settings, Database(settings.database_url), vault


def cmd_init(args) -> int:
    settings = _settings(args)
    if settings.master_key_file is not None and not settings.master_key_file.exists():
        path = settings.master_key_file
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32) + "\n")
        print(f"{PROG}: created master key {path} (keep a backup: lock keys cannot be opened without it)",
              file=sys.stderr)
    from .settings import ConfigError

    try:
        settings.load_master_key()
    except ConfigError as e:
        raise UserError(str(e)) from None
    from .db import Database

    db = Database(settings.database_url)
    try:
        db.migrate()
        _check_master_key(db, settings)
    finally:
        db.dispose()
    print(f"{PROG}: database ready", file=sys.stderr)
    return 0


def _check_master_key(db, settings) -> None:
    """Refuse a master key that does not open the keys already stored (a wrong file is caught at once)."""
    from .models import Lock, LockKey
    from .vault import Vault, VaultError

    vault = Vault(settings.load_master_key())
    with db.tx() as s:
        row = s.execute(select(LockKey, Lock.lock_id).join(Lock, Lock.id == LockKey.lock_pk)
                        .where(LockKey.sealed_master.is_not(None)).limit(1)).first()
        if row is not None:
            try:
                vault.open(row[0].sealed_master, bytes.fromhex(row[1]), row[0].epoch, "master")
            except VaultError as e:
                raise UserError(str(e)) from None


def cmd_serve(args) -> int:
    import uvicorn

    from .app import create_app

    settings, db, _ = _open(args)
    from sqlalchemy import inspect

    if "alembic_version" not in inspect(db.engine).get_table_names():
        raise UserError("the database is not initialised; run `keyserver init` first")
    kw = {}
    if args.ssl_certfile:
        kw.update(ssl_certfile=args.ssl_certfile, ssl_keyfile=args.ssl_keyfile)
    if args.workers > 1:
        # worker processes build the app from the environment (create_app() with no arguments)
        db.dispose()
        os.environ["KEYSERVER_DATABASE_URL"] = settings.database_url
        if settings.master_key_file is not None:
            os.environ["KEYSERVER_MASTER_KEY_FILE"] = str(settings.master_key_file)
        if settings.clock_file is not None:
            os.environ["KEYSERVER_CLOCK_FILE"] = str(settings.clock_file)
        uvicorn.run("keyserver.app:create_app", factory=True, workers=args.workers, host=args.host,
                    port=args.port, log_level=args.log_level, **kw)
        return 0
    uvicorn.run(create_app(settings, database=db), host=args.host, port=args.port, log_level=args.log_level, **kw)
    return 0


def _read_password(args) -> str:
    if args.password_stdin or not sys.stdin.isatty():
        pw = sys.stdin.readline().rstrip("\n")
    else:
        pw = getpass.getpass("new password: ")
        if getpass.getpass("again: ") != pw:
            raise UserError("the passwords differ")
    return pw


def cmd_create_admin(args) -> int:
    from . import auth
    from .errors import ApiError

    settings, db, _ = _open(args)
    pw = _read_password(args)
    try:
        with db.tx() as s:
            st = auth.create_staff(s, settings, username=args.username, role="admin", full_name=args.full_name or "",
                                   password=pw)
            from .keystore import audit
            audit(s, "staff.create", f"staff:{st.id}", role="admin", via="cli")
            sid = st.id
    except ApiError as e:
        raise UserError(e.message) from None
    print(f"{PROG}: admin {args.username} created (id {sid})", file=sys.stderr)
    return 0


# ---- CSV import / export ----

IMPORT_COLUMNS = {
    "staff": ["username", "full_name", "role", "district", "groups", "external_ref"],
    "homes": ["citizen_ref", "address", "district"],
    "locks": ["lock_id", "key", "epoch", "citizen_ref", "board"],
    "plan": ["username", "citizen_ref", "start", "end"],
}


def _rows(path: Path, kind: str) -> list[dict]:
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            need = {c for c in IMPORT_COLUMNS[kind] if c not in ("full_name", "groups", "external_ref", "district",
                                                                 "epoch", "citizen_ref", "board", "address")}
            missing = need - set(reader.fieldnames or [])
            if missing:
                raise UserError(f"{path}: missing column(s) {', '.join(sorted(missing))} "
                                f"(expected {','.join(IMPORT_COLUMNS[kind])})")
            unknown = set(reader.fieldnames or []) - set(IMPORT_COLUMNS[kind])
            if unknown:
                raise UserError(f"{path}: unknown column(s) {', '.join(sorted(unknown))}")
            return [{k: (v or "").strip() for k, v in r.items()} for r in reader]
    except OSError as e:
        raise UserError(f"{path}: {e.strerror}") from None
    except (UnicodeDecodeError, csv.Error) as e:
        raise UserError(f"{path}: not a UTF-8 CSV file ({e})") from None


def _district(s, name: str):
    from .models import District

    d = s.execute(select(District).where(District.name == name)).scalar_one_or_none()
    if d is None:
        d = District(name=name)
        s.add(d)
        s.flush()
    return d


def _time(value: str, zone, where: str) -> int:
    try:
        dt = _dt.datetime.fromisoformat(value)
    except ValueError:
        raise UserError(f"{where}: {value!r} is not an ISO 8601 time") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=zone)
    return int(dt.timestamp())


def cmd_import(args) -> int:
    from . import auth
    from .api.access import register_lock, store_plan
    from .api.schemas import LockIn
    from .errors import ApiError
    from .models import Group, GroupMember, Home, Staff

    settings, db, vault = _open(args)
    path = Path(args.file)
    rows = _rows(path, args.kind)
    n = 0
    try:
        with db.tx() as s:
            plan = []
            for i, r in enumerate(rows, start=2):
                where = f"{path}:{i}"
                try:
                    if args.kind == "staff":
                        d = _district(s, r["district"]) if r.get("district") else None
                        st = auth.create_staff(s, settings, username=r["username"], role=r["role"],
                                               full_name=r.get("full_name", ""), district_id=d.id if d else None,
                                               external_ref=r.get("external_ref") or None)
                        for gname in filter(None, (g.strip() for g in r.get("groups", "").split(";"))):
                            g = s.execute(select(Group).where(Group.name == gname)).scalar_one_or_none()
                            if g is None:
                                g = Group(name=gname, district_id=d.id if d else None)
                                s.add(g)
                                s.flush()
                            s.add(GroupMember(group_id=g.id, staff_id=st.id))
                    elif args.kind == "homes":
                        if not r.get("district"):
                            raise UserError(f"{where}: district is required")
                        if s.execute(select(Home.id).where(Home.citizen_ref == r["citizen_ref"])).first():
                            raise UserError(f"{where}: home {r['citizen_ref']!r} exists")
                        s.add(Home(citizen_ref=r["citizen_ref"], address=r.get("address", ""),
                                   district_id=_district(s, r["district"]).id))
                        s.flush()
                    elif args.kind == "locks":
                        home_id = None
                        if r.get("citizen_ref"):
                            home_id = s.execute(select(Home.id).where(Home.citizen_ref == r["citizen_ref"])).scalar()
                            if home_id is None:
                                raise UserError(f"{where}: no home {r['citizen_ref']!r}")
                        try:
                            body = LockIn(lock_id=r["lock_id"], key=r["key"], epoch=int(r.get("epoch") or 1),
                                          home_id=home_id, board=r.get("board") or "esp32-devkitc")
                        except ValueError as e:
                            msg = str(e).splitlines()
                            raise UserError(f"{where}: {'; '.join(m for m in msg[1:] if m.strip())}") from None
                        register_lock(s, vault, body, None)
                    else:
                        sid = s.execute(select(Staff.id).where(Staff.username == r["username"])).scalar()
                        hid = s.execute(select(Home.id).where(Home.citizen_ref == r["citizen_ref"])).scalar()
                        if sid is None or hid is None:
                            raise UserError(f"{where}: unknown username or citizen_ref")
                        plan.append({"staff_id": sid, "home_id": hid, "start": _time(r["start"], settings.zone, where),
                                     "end": _time(r["end"], settings.zone, where)})
                except ApiError as e:
                    raise UserError(f"{where}: {e.message}") from None
                n += 1
            if args.kind == "plan":
                try:
                    store_plan(s, plan, None)
                except ApiError as e:
                    raise UserError(f"{path}: {e.message}") from None
            from .keystore import audit
            audit(s, "import", args.kind, rows=n, file=path.name)
    finally:
        db.dispose()
    print(f"{PROG}: imported {n} {args.kind} rows", file=sys.stderr)
    return 0


def cmd_export(args) -> int:
    """Write staff, homes, locks, grants, tickets and visits as CSV files (never keys or password hashes)."""
    from . import reports
    from .models import District, Grant, Home, Lock, Staff, Ticket

    settings, db, _ = _open(args)
    out = Path(args.dir)
    out.mkdir(parents=True, exist_ok=True)
    tables = {
        "staff.csv": (Staff, ["id", "username", "full_name", "role", "district_id", "external_ref", "active",
                              "revoked_at"]),
        "districts.csv": (District, ["id", "name"]),
        "homes.csv": (Home, ["id", "citizen_ref", "address", "district_id"]),
        "locks.csv": (Lock, ["lock_id", "home_id", "board", "epoch", "deny_version", "journal_seq", "seen_at"]),
        "grants.csv": (Grant, ["id", "staff_id", "group_id", "lock_pk", "home_id", "district_id", "rights",
                               "valid_from", "valid_until", "win_start", "win_end", "win_days", "kind", "reason",
                               "revoked_at"]),
        "tickets.csv": (Ticket, ["id", "lock_pk", "epoch", "staff_id", "phone_id", "grant_id", "not_before",
                                 "not_after", "issued_at", "rights", "revoked_at"]),
    }
    with db.tx() as s:
        for name, (model, cols) in tables.items():
            with (out / name).open("w", newline="", encoding="utf-8") as f:
                w = csv.writer(f)
                w.writerow(cols)
                for row in s.execute(select(model)).unique().scalars():
                    w.writerow(["" if getattr(row, c) is None else getattr(row, c) for c in cols])
        now = int(_dt.datetime.now().timestamp())
        vs = reports.visits(s, settings, start=now - args.days * 86400, end=now + 1)
        (out / "visits.csv").write_text(reports.visits_csv(vs, settings), encoding="utf-8")
    db.dispose()
    print(f"{PROG}: exported {len(tables) + 1} files to {out}", file=sys.stderr)
    return 0


def cmd_rekey(args) -> int:
    """The on-site path: start a re-key whose message goes to the serial tool only, and record its proof."""
    from . import rekey
    from .errors import ApiError

    settings, db, vault = _open(args)
    try:
        if args.action == "start":
            r = db.run(lambda s: rekey.start(s, vault, args.lock_id.lower(), None, onsite=True))
            print(r["message"])
        else:
            if not args.proof:
                raise UserError("rekey proof needs the proof (hex) the lock answered")
            try:
                proof = bytes.fromhex(args.proof)
            except ValueError:
                raise UserError("the proof is hex") from None
            r = db.run(lambda s: rekey.prove(s, vault, args.lock_id.lower(), proof, None))
            print(f"{PROG}: lock {r['lock_id']} is at epoch {r['new_epoch']}; the old key is destroyed",
                  file=sys.stderr)
    except ApiError as e:
        raise UserError(e.message) from None
    finally:
        db.dispose()
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="The municipality's key server for openlock door units.")
    p.add_argument("--database-url", help="overrides KEYSERVER_DATABASE_URL")
    p.add_argument("--master-key-file", help="overrides KEYSERVER_MASTER_KEY_FILE")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("init", help="create or migrate the database; create the master key file if missing")
    sv = sub.add_parser("serve", help="run the HTTP API (uvicorn)")
    sv.add_argument("--host", default="127.0.0.1")
    sv.add_argument("--port", type=int, default=8080)
    sv.add_argument("--log-level", default="info")
    sv.add_argument("--workers", type=int, default=1,
                    help="worker processes (PostgreSQL; the login address limit is then per worker)")
    sv.add_argument("--ssl-certfile")
    sv.add_argument("--ssl-keyfile")
    sv.add_argument("--clock-file", help="TEST BENCHES ONLY: follow the simulated Unix time in this file instead of "
                                         "real time (overrides KEYSERVER_CLOCK_FILE; docs/keyserver.md)")
    ca = sub.add_parser("create-admin", help="create an administrator (password from a prompt, or one line on stdin)")
    ca.add_argument("username")
    ca.add_argument("--full-name")
    ca.add_argument("--password-stdin", action="store_true")
    im = sub.add_parser("import", help="import staff, homes, locks or a visit plan from CSV (one transaction)")
    im.add_argument("kind", choices=sorted(IMPORT_COLUMNS))
    im.add_argument("file")
    ex = sub.add_parser("export", help="export the register and the visits as CSV files (no keys)")
    ex.add_argument("dir")
    ex.add_argument("--days", type=int, default=31, help="visits of the last N days")
    rk = sub.add_parser("rekey", help="on-site re-key over the serial cable: start (prints REKEY args) or proof")
    rk.add_argument("action", choices=["start", "proof"])
    rk.add_argument("lock_id")
    rk.add_argument("proof", nargs="?")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    fn = {"init": cmd_init, "serve": cmd_serve, "create-admin": cmd_create_admin, "import": cmd_import,
          "export": cmd_export, "rekey": cmd_rekey}[args.cmd]
    try:
        return fn(args)
    except UserError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
