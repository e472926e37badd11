"""``locksim``: start a simulated lock fleet, drive it, play scenarios.

    locksim start --state DIR --locks 20 [--procs 2] [--pty] [--blank N] [--factory] [--storage files]
    locksim status [LOCK] --state DIR [--json]
    locksim door LOCK open|close          locksim press LOCK          locksim touch LOCK
    locksim battery LOCK [--mv MV] [--drain MV_PER_H]
    locksim jam LOCK on|off
    locksim power LOCK cut|restore [--at-write N] [--torn]
    locksim clock LOCK [--jump S] [--drift PPM]
    locksim advance MS                    locksim radio [--latency MS] [--loss P] [--drop P] [--range M]
    locksim unlock LOCK [--user N]        (a carer phone with a fresh ticket unlocks it)
    locksim stop
    locksim run SCENARIO.toml [--report FILE] [--state DIR]
    locksim attack [--report FILE]

``start`` runs in the foreground until interrupted (Ctrl-C or SIGTERM), then saves every
lock's state; the other verbs talk to the running fleet through the ports recorded in
``DIR/fleet.json`` (docs/simulator.md). Errors print ``locksim: message`` on stderr and
exit 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from pathlib import Path

from lockproto import Err, Op, Right

from .fleet import Fleet, FleetError, FleetState, LockSpec, running_fleet
from .keysource import LocalIssuer

PROG = "locksim"
DEFAULT_STATE = os.environ.get("LOCKSIM_STATE", "locksim-state")


class UsageError(Exception):
    pass


def _tty() -> bool:
    return sys.stderr.isatty()


async def provision_all(fleet: Fleet, issuer: LocalIssuer) -> int:
    """Provision every factory-fresh lock with identity and keys from the issuer."""
    wall = await fleet.wall()
    n = 0
    for s in await fleet.status():
        if s.get("provisioned") or not s.get("powered"):
            continue
        lock_id, epoch, master = issuer.register(s["lock"])
        r = await fleet.call(s["lock"], "provision", lock_id=lock_id.hex(), epoch=epoch, master=master.hex(),
                             now=wall)
        if r["status"] != Err.OK:
            raise FleetError(f"{s['lock']}: provisioning refused ({Err(r['status']).name})")
        n += 1
    issuer.save()
    return n


def grid(n: int, start: int, spacing: float = 80.0) -> list[LockSpec]:
    """``n`` locks named L0001.. on a square grid, ``spacing`` metres apart (beyond radio range)."""
    side = max(1, int((start + n) ** 0.5 + 0.999))
    out = []
    for i in range(start, start + n):
        out.append(LockSpec(f"L{i + 1:04d}", (i % side) * spacing, (i // side) * spacing))
    return out


async def cmd_start(a) -> int:
    fleet = Fleet(a.state, procs=a.procs, seed=a.seed, storage=a.storage)
    fleet.start()
    ports = []
    try:
        await fleet.attach()
        have = len(fleet.state.locks)
        if a.locks > have:
            await fleet.create(grid(a.locks - have, have))
        issuer = LocalIssuer(Path(a.state) / "issuer.json")
        if not a.factory:
            await provision_all(fleet, issuer)
        if a.pty:
            from .ptyport import PtyPort
            for name in sorted(fleet.state.locks):
                p = PtyPort(name, fleet.port_of(name))
                await p.start()
                ports.append(p)
        if a.blank:
            from .ptyport import BlankPort
            for i in range(a.blank):
                name = f"B{i + 1:04d}"
                ports.append(BlankPort(name, Path(a.state) / "blank" / name / "fs"))
        if ports:
            (Path(a.state) / "ptys.json").write_text(json.dumps({p.lock: p.path for p in ports}, indent=1))
        fleet.state.supervisor = os.getpid()
        fleet.state.save(fleet.file)
        print(f"{len(fleet.state.locks)} locks on {fleet.state.procs} processes, state in {a.state}; "
              f"host ports {[h['port'] for h in fleet.state.hosts]}", flush=True)
        for p in ports[:20]:
            kind = "serial" if hasattr(p, "host_port") else "blank unit (raw REPL)"
            print(f"{p.lock} {kind} {p.path}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        waiter = asyncio.create_task(stop.wait())
        dead = asyncio.create_task(_watch(fleet))
        await asyncio.wait({waiter, dead}, return_when=asyncio.FIRST_COMPLETED)
        if dead.done() and not waiter.done() and any(p.returncode for p in fleet.procs):
            raise FleetError("a fleet host failed (see host*.log in the state directory)")
    finally:
        for p in ports:
            await p.close()
        await fleet.stop()
    return 0


async def _watch(fleet: Fleet) -> None:
    while all(p.poll() is None for p in fleet.procs):
        await asyncio.sleep(0.5)


def _lock_call(op: str, **extra):
    async def run(a) -> int:
        f = running_fleet(a.state)
        r = await f.call(a.lock, op, **{k: v(a) if callable(v) else v for k, v in extra.items()})
        print(json.dumps(r))
        return 0
    return run


async def cmd_status(a) -> int:
    f = running_fleet(a.state)
    rows = [await f.call(a.lock, "status")] if a.lock else await f.status()
    if a.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(f"{'lock':8} {'pwr':3} {'bolt':>4} {'state':>5} {'door':6} {'mV':>5} {'backlog':>7} {'time':>10} flags")
    for s in rows:
        print(f"{s['lock']:8} {'on' if s['powered'] else 'off':3} {s['bolt']:>4} {s.get('state', '-'):>5} "
              f"{'closed' if s['door_closed'] else 'open':6} {s['battery_mv']:>5} {s.get('backlog', '-'):>7} "
              f"{s.get('time', '-'):>10} {s.get('flags', '-')}")
    return 0


async def cmd_power(a) -> int:
    f = running_fleet(a.state)
    args = {"action": a.action}
    if a.at_write is not None:
        if a.action != "cut":
            raise UsageError("--at-write goes with cut")
        args["at_write"] = a.at_write
        args["torn"] = a.torn
    print(json.dumps(await f.call(a.lock, "power", **args)))
    return 0


def _given(a, **names) -> dict:
    """The options the user gave, under their control-request names (``option="request_key"``)."""
    return {key: getattr(a, opt) for opt, key in names.items() if getattr(a, opt) is not None}


async def cmd_battery(a) -> int:
    f = running_fleet(a.state)
    print(json.dumps(await f.call(a.lock, "battery", **_given(a, mv="mv", drain="drain_mv_h"))))
    return 0


async def cmd_clock(a) -> int:
    f = running_fleet(a.state)
    print(json.dumps(await f.call(a.lock, "clock", **_given(a, jump="jump_s", drift="drift_ppm"))))
    return 0


async def cmd_advance(a) -> int:
    if a.ms < 0:
        raise UsageError("time only moves forward")
    f = running_fleet(a.state)
    await f.advance(a.ms)
    print(json.dumps({"now_ms": await f.now_ms(), "wall": await f.wall()}))
    return 0


async def cmd_radio(a) -> int:
    f = running_fleet(a.state)
    args = _given(a, latency="latency_ms", loss="loss", drop="drop", range="range_m")
    for k in ("loss", "drop"):
        if k in args and not 0 <= args[k] <= 1:
            raise UsageError(f"--{k} is a probability (0..1)")
    print(json.dumps(await f.all("radio", **args)))
    return 0


async def cmd_unlock(a) -> int:
    from .phone import CarerPhone
    f = running_fleet(a.state)
    issuer = LocalIssuer(Path(a.state) / "issuer.json")
    name = a.lock
    if name not in f.state.locks:
        raise FleetError(f"no such lock: {name}")
    lock_id, _, _ = issuer.register(name)
    wall = await f.wall()
    g = issuer.grant(lock_id, a.user, wall - 60, wall + 3600, Right.UNLOCK | Right.LOCK | Right.JOURNAL, wall - 60)
    issuer.save()
    phone = CarerPhone(f, "cli", a.user, issuer)
    await phone.walk_to(name)
    out = await phone.session(name, g, [(Op.UNLOCK, b"")])
    await phone.close()
    if out.radio_error:
        raise FleetError(f"{name}: {out.radio_error}")
    st = out.status_of(Op.UNLOCK)
    print(json.dumps({"lock": name, "unlock": Err(st).name if st is not None else None,
                      "results": [(Op(r.op).name, Err(r.status).name) for r in out.results]}))
    return 0 if st == Err.OK else 1


async def cmd_stop(a) -> int:
    f = running_fleet(a.state)
    pids = [h["pid"] for h in f.state.hosts]
    sup = f.state.supervisor
    if sup:
        try:
            os.kill(sup, signal.SIGTERM)  # `locksim start` saves and stops its hosts
            for _ in range(300):
                os.kill(sup, 0)
                if FleetState.load(f.file).supervisor != sup:  # it saved and let go
                    raise ProcessLookupError
                await asyncio.sleep(0.1)
            raise FleetError(f"locksim start (pid {sup}) did not stop")
        except ProcessLookupError:
            print(json.dumps({"stopped": [sup] + pids}))
            return 0
    for c in f.clients:
        try:
            await c.call("shutdown")
        except (FleetError, OSError):
            pass
        await c.close()
    print(json.dumps({"stopped": pids}))
    return 0


def _read_secret(path: str, what: str) -> str:
    """A token from a file (never from argv, which other users can read in ``ps``)."""
    try:
        token = Path(path).read_text().strip()
    except OSError as e:
        raise UsageError(f"{what}: {e.strerror}: {path}") from None
    if not token:
        raise UsageError(f"{what}: {path} is empty")
    return token


async def cmd_run(a) -> int:
    from .scenario import load_scenario, run_scenario
    sc = load_scenario(a.scenario)
    token = None
    if a.keyserver:
        if not a.admin_token_file or not a.clock_file:
            raise UsageError("--keyserver needs --admin-token-file and --clock-file (the server's "
                             "KEYSERVER_CLOCK_FILE)")
        token = _read_secret(a.admin_token_file, "--admin-token-file")
    elif a.admin_token_file or a.clock_file:
        raise UsageError("--admin-token-file and --clock-file go with --keyserver")
    from .ksdistrict import KeyServerError
    try:
        report = await run_scenario(sc, state_dir=a.state, procs=a.procs, progress=_tty(), keyserver=a.keyserver,
                                    admin_token=token, clock_file=a.clock_file)
    except KeyServerError as e:
        raise UsageError(str(e)) from None
    text = report.text()
    if a.report:
        Path(a.report).write_text(json.dumps(report.data, indent=1))
    print(text)
    return 0


async def cmd_battery_life(a) -> int:
    from .energy import run
    return await asyncio.to_thread(run, a, f"{PROG} battery-life")


async def cmd_attack(a) -> int:
    from .attacks import run_attacks
    report = await run_attacks(state_dir=a.state, progress=_tty())
    if a.report:
        Path(a.report).write_text(json.dumps(report, indent=1))
    for r in report["attacks"]:
        print(f"{'HELD' if r['held'] else 'BROKEN':6} {r['name']}: {r['detail']}")
    return 0 if all(r["held"] for r in report["attacks"]) else 1


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--state", default=argparse.SUPPRESS,
                        help=f"fleet state directory (default: $LOCKSIM_STATE or {DEFAULT_STATE}; "
                             "run and attack: a fresh temporary one)")
    p = argparse.ArgumentParser(prog=PROG, description="a digital twin of a lock fleet", parents=[common])
    sub = p.add_subparsers(dest="cmd", required=True)
    _add = sub.add_parser

    def add_parser(name, **kw):
        return _add(name, parents=[common], **kw)
    sub.add_parser = add_parser

    s = sub.add_parser("start", help="start the fleet (foreground)")
    s.add_argument("--locks", type=int, default=0, help="grow the fleet to this many locks")
    s.add_argument("--procs", type=int, default=None, help="MicroPython processes (default 2)")
    s.add_argument("--pty", action="store_true", help="a pty serial port per lock")
    s.add_argument("--blank", type=int, default=0, metavar="N",
                   help="N blank (unflashed) units B0001.. offering a raw REPL on a pty (for mpremote)")
    s.add_argument("--factory", action="store_true", help="leave new locks unprovisioned")
    s.add_argument("--seed", type=int, default=None, help="seed of the radio's randomness")
    s.add_argument("--storage", choices=["flash", "files"], default=None,
                   help="units on the flash twin (default) or on light files (big fleets)")
    s.set_defaults(fn=cmd_start)

    s = sub.add_parser("status")
    s.add_argument("lock", nargs="?")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_status)

    s = sub.add_parser("door")
    s.add_argument("lock")
    s.add_argument("how", choices=["open", "close"])
    s.set_defaults(fn=_lock_call("door", open=lambda a: a.how == "open"))

    s = sub.add_parser("press", help="press the inside button")
    s.add_argument("lock")
    s.set_defaults(fn=_lock_call("press"))

    s = sub.add_parser("touch", help="touch the outside wake pad")
    s.add_argument("lock")
    s.set_defaults(fn=_lock_call("touch"))

    s = sub.add_parser("jam")
    s.add_argument("lock")
    s.add_argument("how", choices=["on", "off"])
    s.set_defaults(fn=_lock_call("jam", on=lambda a: a.how == "on"))

    s = sub.add_parser("battery")
    s.add_argument("lock")
    s.add_argument("--mv", type=int)
    s.add_argument("--drain", type=int, help="drain in mV per simulated hour")
    s.set_defaults(fn=cmd_battery)

    s = sub.add_parser("power")
    s.add_argument("lock")
    s.add_argument("action", choices=["cut", "restore"])
    s.add_argument("--at-write", type=int, help="cut at the N-th next durable write (0: the next)")
    s.add_argument("--torn", action="store_true", help="that write is half done")
    s.set_defaults(fn=cmd_power)

    s = sub.add_parser("clock")
    s.add_argument("lock")
    s.add_argument("--jump", type=int, help="move the lock's RTC by this many seconds")
    s.add_argument("--drift", type=int, help="RTC drift in ppm from now on")
    s.set_defaults(fn=cmd_clock)

    s = sub.add_parser("advance", help="move the fleet's clock forward")
    s.add_argument("ms", type=int)
    s.set_defaults(fn=cmd_advance)

    s = sub.add_parser("radio")
    s.add_argument("--latency", type=int)
    s.add_argument("--loss", type=float)
    s.add_argument("--drop", type=float)
    s.add_argument("--range", type=float)
    s.set_defaults(fn=cmd_radio)

    s = sub.add_parser("unlock", help="a carer phone unlocks a lock over the radio")
    s.add_argument("lock")
    s.add_argument("--user", type=int, default=1)
    s.set_defaults(fn=cmd_unlock)

    s = sub.add_parser("stop")
    s.set_defaults(fn=cmd_stop)

    s = sub.add_parser("run", help="play a scenario file")
    s.add_argument("scenario")
    s.add_argument("--report", help="write the report as JSON here")
    s.add_argument("--procs", type=int, default=2)
    s.add_argument("--keyserver", metavar="URL", help="play the district on this key server (default: the local "
                                                      "issuer in STATE/issuer.json)")
    s.add_argument("--admin-token-file", metavar="F", help="an admin session token for --keyserver")
    s.add_argument("--clock-file", metavar="F", help="the key server's KEYSERVER_CLOCK_FILE: the run writes the "
                                                     "simulated time there")
    s.set_defaults(fn=cmd_run)

    s = sub.add_parser("battery-life", help="predict battery life per board and power profile (docs/power.md)")
    from .energy import add_arguments
    add_arguments(s)
    s.set_defaults(fn=cmd_battery_life)

    s = sub.add_parser("attack", help="run the attack scenarios")
    s.add_argument("--report")
    s.set_defaults(fn=cmd_attack)
    return p


def main(argv=None) -> int:
    p = _parser()
    a = p.parse_args(argv)
    if not hasattr(a, "state"):
        a.state = None if a.cmd in ("run", "attack") else DEFAULT_STATE
    try:
        return asyncio.run(a.fn(a))
    except (FleetError, UsageError, OSError, ValueError, KeyError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"{PROG}: {msg}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
