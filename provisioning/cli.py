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
import os
import sys
import time
from pathlib import Path

from lockproto import Bolt, Err, Flag, Op, Right, StateBlock

from .carer import journal_courier
from .client import LockClient, LockError
from .keysource import KeyServerSource, KeySource, LocalSource, SourceError
from .transport import SerialTransport, TransportError

PROG = "lockctl"


class UserError(Exception):
    """A mistake in how lockctl was called (exit 1 with the message)."""


def _flags(f: int) -> str:
    names = [fl.name.lower().replace("_", "-") for fl in Flag if f & fl]
    return ",".join(names) or "-"


def _read_token(path: str | None, env: str) -> str | None:
    if path:
        try:
            return Path(path).read_text().strip() or None
        except OSError as e:
            raise UserError(f"cannot read {path}: {e.strerror}") from None
    return os.environ.get(env) or None


def source(args) -> KeySource:
    """The key source the options name."""
    if args.keyserver:
        return KeyServerSource(args.keyserver, _read_token(args.token_file, "LOCKCTL_TOKEN"),
                               _read_token(args.admin_token_file, "LOCKCTL_ADMIN_TOKEN"))
    if args.issuer:
        return LocalSource(args.issuer, args.user)
    raise UserError("this command needs a key source: --keyserver URL or --issuer FILE")


def _print_state(s, head: str) -> None:
    print(head)
    print(f"time      {s.lock_time}")
    print(f"bolt      {Bolt(s.bolt).name.lower()}")
    print(f"battery   {'unknown' if s.battery_pct == 255 else str(s.battery_pct) + ' %'} ({s.battery_mv} mV)")
    print(f"journal   head {s.journal_head}, acknowledged {s.journal_acked}")
    print(f"deny list version {s.deny_version}")
    print(f"flags     {_flags(s.flags)}")


def cmd_hello(args, c: LockClient, src) -> int:
    h = c.hello()
    _print_state(h.state, f"lock      {h.lock_id.hex()}\nepoch     {h.epoch}\nfirmware  {'.'.join(map(str, h.fw))}")
    return 0


def _current(c: LockClient):
    h = c.hello()
    if h.state.flags & Flag.FACTORY:
        raise LockError(Err.FACTORY_MODE, 0, "talking to the lock")
    return h


def cmd_provision(args, c: LockClient, src) -> int:
    if not isinstance(c.transport, SerialTransport):
        raise UserError("provisioning works over the serial cable only (--port)")
    h = c.hello()
    if not h.state.flags & Flag.FACTORY:
        raise LockError(Err.PROVISIONED, 0, "provisioning")
    lock_id, epoch, master = src().register(args.name, args.board, args.home)   # stored by the key source first
    h = c.provision(lock_id, epoch, master, int(time.time()))
    master = None
    print(f"provisioned {args.name}: lock {h.lock_id.hex()}, epoch {h.epoch}")
    return 0


def cmd_status(args, c: LockClient, src) -> int:
    """Like hello, but read inside an authenticated session: the lock's genuine answer."""
    h = _current(c)
    s = StateBlock.decode(c.status(src().ticket(h.lock_id, h.epoch, Right.UNLOCK)))
    _print_state(s, f"lock      {h.lock_id.hex()} (epoch {h.epoch}, authenticated)")
    return 0


def cmd_unlock(args, c: LockClient, src) -> int:
    h = _current(c)
    bolt = c.unlock(src().ticket(h.lock_id, h.epoch, Right.UNLOCK))
    print(f"unlocked: bolt {Bolt(bolt).name.lower()}")
    return 0


def cmd_lock(args, c: LockClient, src) -> int:
    h = _current(c)
    bolt = c.lock(src().ticket(h.lock_id, h.epoch, Right.LOCK))
    print(f"locked: bolt {Bolt(bolt).name.lower()}")
    return 0


def _journal(c: LockClient, ks, h) -> tuple[int, int]:
    """Pull the journal from the first record the key source lacks, upload it, relay the ack."""
    got, acked = journal_courier(c, ks, h.lock_id, ks.ticket(h.lock_id, h.epoch, Right.JOURNAL),
                                 ks.journal_from(h.lock_id))
    return got, h.state.journal_acked if acked is None else acked


def cmd_journal(args, c: LockClient, src) -> int:
    got, acked = _journal(c, src(), _current(c))
    print(f"journal: {got} new records uploaded, lock acknowledged up to {acked}")
    return 0


def cmd_time_sync(args, c: LockClient, src) -> int:
    h = _current(c)
    ks = src()
    t = ks.ticket(h.lock_id, h.epoch, Right.UNLOCK)
    payload = c.with_statement(t, Op.TIME_SET, lambda n: ks.time_token(h.lock_id, h.epoch, n), "setting the clock")
    print(f"clock set: lock time {int.from_bytes(payload, 'big')}")
    return 0


def cmd_deny_push(args, c: LockClient, src) -> int:
    h = _current(c)
    ks = src()
    version, msg = ks.deny_list(h.lock_id, h.epoch)
    if msg is None:
        print("deny list: the key source has none")
        return 0
    if version <= h.state.deny_version:
        print(f"deny list: the lock already holds version {h.state.deny_version}")
        return 0
    got = c.relay(ks.ticket(h.lock_id, h.epoch, Right.UNLOCK), Op.DENY_UPDATE, msg, "pushing the deny list")
    print(f"deny list: version {int.from_bytes(got, 'big')}")
    return 0


def cmd_rekey(args, c: LockClient, src) -> int:
    h = _current(c)
    ks = src()
    onsite = isinstance(c.transport, SerialTransport)
    msg = ks.rekey(h.lock_id, onsite)
    proof = c.relay(ks.ticket(h.lock_id, h.epoch, Right.ADMIN), Op.REKEY, msg, "re-keying")
    if not ks.rekey_proof(h.lock_id, proof):
        raise LockError(Err.BAD_MAC, 0, "checking the re-key proof")
    print(f"re-keyed: epoch {c.hello().epoch}")
    return 0


def cmd_factory_reset(args, c: LockClient, src) -> int:
    h = _current(c)
    ks = src()
    got, _ = _journal(c, ks, h)  # nothing may be lost
    t = ks.ticket(h.lock_id, h.epoch, Right.ADMIN)
    c.with_statement(t, Op.FACTORY_RESET, lambda n: ks.factory_reset(h.lock_id, h.epoch, n), "resetting the lock")
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
    p.add_argument("--keyserver", metavar="URL", help="the key server (tokens from --token-file / --admin-token-file "
                                                      "or LOCKCTL_TOKEN / LOCKCTL_ADMIN_TOKEN)")
    p.add_argument("--token-file", help="file holding the phone token lockctl uses for tickets and uploads")
    p.add_argument("--admin-token-file", help="file holding an admin session token (provision, rekey, factory-reset)")
    p.add_argument("--issuer", help="instead of a key server: the test bench's local key source (a JSON state file)")
    p.add_argument("--user", type=int, default=1, help="with --issuer: the staff user id tickets are issued to")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for each answer")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (_, help_) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_)
        if name == "provision":
            sp.add_argument("name", help="the lock's name at the key source (e.g. its door)")
            sp.add_argument("--board", default="esp32-devkitc", help="the unit's board (boards/), recorded by the server")
            sp.add_argument("--home", type=int, help="the key server's id of the home where the lock is mounted")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    client = None
    ks: list = []

    def src():
        # the key source, opened on first use (hello needs none)
        if not ks:
            ks.append(source(args))
        return ks[0]

    try:
        client = LockClient(transport(args))
        return COMMANDS[args.command][0](args, client, src)
    except (LockError, TransportError, UserError, SourceError) as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 1
    finally:
        if client is not None:
            client.close()
        for k in ks:
            k.close()


if __name__ == "__main__":
    sys.exit(main())
