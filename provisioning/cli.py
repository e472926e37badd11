"""``lockctl``: talk to one lock directly (IT, test benches, support staff).

Usage (``lockctl --help`` for every option)::

    lockctl --port /dev/ttyUSB0 hello
    lockctl --port /dev/pts/7 --issuer bench/issuer.json provision door-17
    lockctl --port /dev/pts/7 --issuer bench/issuer.json unlock --user 1
    lockctl --port /dev/pts/7 --issuer bench/issuer.json journal --user 1
    lockctl --sim locksim-state:L0001 --issuer locksim-state/issuer.json unlock
    lockctl --ble 4c4b0000000000aa --issuer bench/issuer.json status

Keys and tickets come from a *key source*: ``--issuer FILE`` is the test bench's local
issuer (the simulator's, ``simulator.keysource.LocalIssuer``); secrets go from the key
source straight to the lock and are never printed. Errors print ``lockctl: message``
on stderr and exit 1; a lock's refusal is shown in words with its protocol code.
"""

from __future__ import annotations

import argparse
import sys
import time

from lockproto import Bolt, Err, Flag, Op, Right, factory_reset_statement

from .client import LockClient, LockError, Ticket
from .transport import SerialTransport, TransportError

PROG = "lockctl"


class UserError(Exception):
    """A mistake in how lockctl was called (exit 1 with the message)."""


def _flags(f: int) -> str:
    names = [fl.name.lower().replace("_", "-") for fl in Flag if f & fl]
    return ",".join(names) or "-"


def _issuer(args):
    if not args.issuer:
        raise UserError("this command needs a key source: --issuer FILE")
    from simulator.keysource import LocalIssuer
    return LocalIssuer(args.issuer)


def _ticket(args, issuer, lock_id: bytes, rights: int, hours: float = 1.0, epoch: int | None = None) -> Ticket:
    now = int(time.time())
    try:
        g = issuer.grant(lock_id, args.user, now - 60, now + int(hours * 3600), rights, now - 60, epoch=epoch)
    except KeyError:
        raise UserError(f"the key source does not know lock {lock_id.hex()}") from None
    return Ticket(g.ticket, g.k_t)


def cmd_hello(args, c: LockClient) -> int:
    h = c.hello()
    s = h.state
    print(f"lock      {h.lock_id.hex()}")
    print(f"epoch     {h.epoch}")
    print(f"firmware  {'.'.join(map(str, h.fw))}")
    print(f"time      {s.lock_time}")
    print(f"bolt      {Bolt(s.bolt).name.lower()}")
    print(f"battery   {'unknown' if s.battery_pct == 255 else str(s.battery_pct) + ' %'} ({s.battery_mv} mV)")
    print(f"journal   head {s.journal_head}, acknowledged {s.journal_acked}")
    print(f"deny list version {s.deny_version}")
    print(f"flags     {_flags(s.flags)}")
    return 0


def cmd_provision(args, c: LockClient) -> int:
    issuer = _issuer(args)
    lock_id, epoch, master = issuer.register(args.name)
    h = c.provision(lock_id, epoch, master, int(time.time()))
    master = None
    issuer.save()
    print(f"provisioned {args.name}: lock {h.lock_id.hex()}, epoch {h.epoch}")
    return 0


def _current(c: LockClient):
    h = c.hello()
    if h.state.flags & Flag.FACTORY:
        raise LockError(Err.FACTORY_MODE, 0, "talking to the lock")
    return h


def cmd_status(args, c: LockClient) -> int:
    """Like hello, but read inside an authenticated session: the lock's genuine answer."""
    from lockproto import StateBlock
    h = _current(c)
    s = StateBlock.decode(c.status(_ticket(args, _issuer(args), h.lock_id, Right.UNLOCK, epoch=h.epoch)))
    print(f"lock      {h.lock_id.hex()} (epoch {h.epoch}, authenticated)")
    print(f"time      {s.lock_time}")
    print(f"bolt      {Bolt(s.bolt).name.lower()}")
    print(f"battery   {'unknown' if s.battery_pct == 255 else str(s.battery_pct) + ' %'} ({s.battery_mv} mV)")
    print(f"journal   head {s.journal_head}, acknowledged {s.journal_acked}")
    print(f"deny list version {s.deny_version}")
    print(f"flags     {_flags(s.flags)}")
    return 0


def cmd_unlock(args, c: LockClient) -> int:
    h = _current(c)
    bolt = c.unlock(_ticket(args, _issuer(args), h.lock_id, Right.UNLOCK, epoch=h.epoch))
    print(f"unlocked: bolt {Bolt(bolt).name.lower()}")
    return 0


def cmd_lock(args, c: LockClient) -> int:
    h = _current(c)
    bolt = c.lock(_ticket(args, _issuer(args), h.lock_id, Right.LOCK, epoch=h.epoch))
    print(f"locked: bolt {Bolt(bolt).name.lower()}")
    return 0


def _journal(args, c: LockClient, issuer, lock_id: bytes, epoch: int) -> tuple[int, int]:
    """Pull the journal from what the key source already holds, upload it, relay the ack."""
    t = _ticket(args, issuer, lock_id, Right.JOURNAL, epoch=epoch)
    start = issuer.journal_state(lock_id)["seq"] + 1
    got, acked = 0, 0
    ack = None
    for chunk in c.journal_chunks(t, start):
        ing = issuer.ingest(lock_id, chunk)
        if ing.problem:
            raise LockError(Err.BAD_MAC, 0, f"uploading the journal ({ing.problem})")
        got += len(ing.records)
        ack = ing.ack or ack
    issuer.save()
    if ack is not None:
        acked = int.from_bytes(c.relay(t, Op.JOURNAL_ACK, ack, "acknowledging the journal"), "big")
    return got, acked


def cmd_journal(args, c: LockClient) -> int:
    h = _current(c)
    got, acked = _journal(args, c, _issuer(args), h.lock_id, h.epoch)
    print(f"journal: {got} new records uploaded, lock acknowledged up to {acked}")
    return 0


def cmd_time_sync(args, c: LockClient) -> int:
    h = _current(c)
    issuer = _issuer(args)
    t = _ticket(args, issuer, h.lock_id, Right.UNLOCK, epoch=h.epoch)
    payload = c.with_statement(t, Op.TIME_SET, lambda n: issuer.time_token(h.lock_id, n, int(time.time())),
                               "setting the clock")
    print(f"clock set: lock time {int.from_bytes(payload, 'big')}")
    return 0


def cmd_deny_push(args, c: LockClient) -> int:
    h = _current(c)
    issuer = _issuer(args)
    version, msg = issuer.deny_update(h.lock_id)
    if msg is None:
        print("deny list: the key source has none")
        return 0
    if version <= h.state.deny_version:
        print(f"deny list: the lock already holds version {h.state.deny_version}")
        return 0
    t = _ticket(args, issuer, h.lock_id, Right.UNLOCK, epoch=h.epoch)
    got = c.relay(t, Op.DENY_UPDATE, msg, "pushing the deny list")
    print(f"deny list: version {int.from_bytes(got, 'big')}")
    return 0


def cmd_rekey(args, c: LockClient) -> int:
    h = _current(c)
    issuer = _issuer(args)
    msg = issuer.rekey(h.lock_id)
    issuer.save()  # the pending key must survive a crash between here and the proof
    t = _ticket(args, issuer, h.lock_id, Right.ADMIN, epoch=h.epoch)
    proof = c.relay(t, Op.REKEY, msg, "re-keying")
    if not issuer.rekey_proved(h.lock_id, proof):
        raise LockError(Err.BAD_MAC, 0, "checking the re-key proof")
    issuer.save()
    print(f"re-keyed: epoch {c.hello().epoch}")
    return 0


def cmd_factory_reset(args, c: LockClient) -> int:
    h = _current(c)
    issuer = _issuer(args)
    got, _ = _journal(args, c, issuer, h.lock_id, h.epoch)  # nothing may be lost
    keys = issuer.keys(h.lock_id, h.epoch)
    t = _ticket(args, issuer, h.lock_id, Right.ADMIN, epoch=h.epoch)
    c.with_statement(t, Op.FACTORY_RESET, lambda n: factory_reset_statement(keys, n), "resetting the lock")
    print(f"factory reset: {got} journal records uploaded first; the unit restarts in factory mode")
    return 0


COMMANDS = {
    "hello": (cmd_hello, "show what the lock announces (no key needed)"),
    "provision": (cmd_provision, "put a factory unit into service (serial only)"),
    "status": (cmd_status, "the lock's state read inside an authenticated session"),
    "unlock": (cmd_unlock, "unlock with a ticket from the key source"),
    "lock": (cmd_lock, "lock with a ticket from the key source"),
    "journal": (cmd_journal, "pull the journal, upload it to the key source and relay the acknowledgement"),
    "time-sync": (cmd_time_sync, "set the lock's clock from the key source"),
    "deny-push": (cmd_deny_push, "push the key source's current deny list"),
    "rekey": (cmd_rekey, "replace the lock's key (on site over the cable, or over the air)"),
    "factory-reset": (cmd_factory_reset, "upload the journal, then reset the unit to factory mode"),
}


def transport(args):
    """The transport the options name: the cable, Bluetooth or the simulator's radio."""
    if args.port:
        return SerialTransport(args.port, timeout=args.timeout)
    from .gatt import GattTransport, bleak_link, sim_radio_link
    if args.sim:
        state, sep, lock = args.sim.rpartition(":")
        if not sep or not state or not lock:
            raise UserError("--sim takes DIR:LOCK, e.g. locksim-state:L0001")
        return GattTransport(sim_radio_link(state, lock), timeout=args.timeout)
    if args.ble:
        try:
            lock_id = bytes.fromhex(args.ble)
        except ValueError:
            lock_id = b""
        if len(lock_id) != 8:
            raise UserError("--ble takes the lock id as 16 hex digits")
        return GattTransport(bleak_link(lock_id=lock_id, timeout=args.timeout), timeout=args.timeout)
    return GattTransport(bleak_link(address=args.ble_address, timeout=args.timeout), timeout=args.timeout)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Talk to one lock directly.")
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--port", help="serial port of the lock (a simulated unit's /dev/pts/N too)")
    how.add_argument("--ble", metavar="LOCK_ID", help="the lock over Bluetooth, found by the lock id it advertises (hex)")
    how.add_argument("--ble-address", metavar="ADDR", help="the lock over Bluetooth at this device address")
    how.add_argument("--sim", metavar="DIR:LOCK", help="a lock of the running fleet simulator in DIR, over its radio")
    p.add_argument("--issuer", help="the test bench's local key source (a JSON state file)")
    p.add_argument("--user", type=int, default=1, help="staff user id the tickets are issued to (default 1)")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for each answer")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (_, help_) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_)
        if name == "provision":
            sp.add_argument("name", help="the lock's name at the key source (e.g. its door)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    client = None
    try:
        client = LockClient(transport(args))
        return COMMANDS[args.command][0](args, client)
    except LockError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 1
    except (TransportError, UserError) as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 1
    finally:
        if client is not None:
            client.close()


if __name__ == "__main__":
    sys.exit(main())
