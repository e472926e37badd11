"""Protocol demo (``make demo``): a carer's phone talks to a lock running the real firmware.

The lock side is firmware/lib running in the MicroPython unix port; the key
server's and the phone's sides are lockproto. Everything travels as the bytes of
docs/protocol.md. Until the simulator and the key server exist, this is the demo.
"""

from __future__ import annotations

import secrets
import sys
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import mpyhost  # noqa: E402
from lockproto import (Bolt, DenyKind, Err, LockKeys, Op, PhoneSession, ProtocolError, Right,  # noqa: E402
                       issue_ticket, open_chunk, verify_chain)
from lockproto.fragment import fragment  # noqa: E402
from lockproto.issuer import deny_list, rekey_pair, verify_rekey_proof  # noqa: E402
from lockproto.journal import chain_genesis  # noqa: E402

DAY = int(datetime(2026, 11, 23, 6, 0, tzinfo=timezone.utc).timestamp())  # 07:00 in Denmark
DOOR = "Storegade 4"


def when(t: int) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%H:%M UTC")


class Demo:
    def __init__(self, worker):
        self.w = worker
        self.now = DAY
        self.master = secrets.token_bytes(32)
        self.lock_id = secrets.token_bytes(8)
        self.keys = LockKeys.from_master(self.master, self.lock_id, 1)
        self.w.call("lockside.create", DOOR, self.master, self.lock_id, self.now)
        self.next_ticket = 1000

    def ticket(self, user_id, hours, rights=Right.UNLOCK | Right.LOCK, keys=None):
        self.next_ticket += 1
        return issue_ticket(keys or self.keys, ticket_id=self.next_ticket, user_id=user_id,
                            not_before=self.now - 300, not_after=self.now + int(hours * 3600),
                            issued_at=self.now - 300, rights=rights)

    def visit(self, who, ticket, ops, keep_auth=False):
        """One phone connection: HELLO, AUTH with the first op, then further ops."""
        t, k_t = ticket
        phone = PhoneSession(t.encode(), k_t, self.w.call("lockside.hello", DOOR))
        results = []
        for i, (op, args) in enumerate(ops):
            msg = phone.auth(op, args) if i == 0 else phone.op(op, args)
            if keep_auth and i == 0:
                self.last_auth = msg
            try:
                results.append(phone.read(self.w.call("lockside.handle", DOOR, msg)))
                line = "ok"
            except ProtocolError as e:
                results.append(e)
                line = f"refused: {e.code.name} ({e.code.describe()})"
            print(f"  {who:<22} {Op(op).name:<12} -> {line}")
            if isinstance(results[-1], ProtocolError):
                break
        return results

    def pass_time(self, minutes):
        self.now += minutes * 60
        self.w.call("lockside.advance", DOOR, minutes * 60)


def main() -> int:
    print(f"{DOOR}: one door unit running firmware/lib under MicroPython {mpyhost.micropython_binary()}")
    with mpyhost.Worker(["lockside"], paths=[ROOT / "demo", ROOT / "tests" / "mpy"], heapsize="512k") as w:
        d = Demo(w)
        print(f"\n{when(d.now)}  Anna (carer 501) starts her shift with an 8-hour ticket")
        anna = d.ticket(501, 8)
        d.visit("Anna", anna, [(Op.UNLOCK, b"")], keep_auth=True)
        auth = d.last_auth
        print(f"  (her AUTH was {len(auth)} bytes: {len(fragment(auth))} BLE fragments at the default MTU)")
        d.pass_time(25)
        d.visit("Anna", anna, [(Op.LOCK, b"")])

        print(f"\n{when(d.now)}  Someone recorded Anna's radio traffic and replays her AUTH")
        phone_hello = w.call("lockside.hello", DOOR)
        err = w.call("lockside.handle", DOOR, auth)
        print(f"  {'replayed AUTH':<22} {'UNLOCK':<12} -> refused: {Err(err[1]).name} (new nonce {phone_hello[15:19].hex()}…)")

        d.pass_time(95)
        print(f"\n{when(d.now)}  The response centre gives Bo (carer 502) a 30-minute alarm key")
        bo_alarm = d.ticket(502, 0.5)
        d.visit("Bo (alarm key)", bo_alarm, [(Op.UNLOCK, b""), (Op.LOCK, b"")])

        print(f"\n{when(d.now)}  Anna reports her phone lost; the key server revokes her ticket")
        deny = deny_list(d.keys, 1, [(DenyKind.TICKET, anna[0].ticket_id, anna[0].not_after)])
        print("  Bo's next connection carries the new deny list to the door:")
        d.visit("Bo (alarm key)", bo_alarm, [(Op.DENY_UPDATE, deny)])
        d.visit("Anna's lost phone", anna, [(Op.UNLOCK, b"")])

        print(f"\n{when(d.now)}  IT re-keys the lock over the air; Bo's phone is the courier")
        msg, new_keys = rekey_pair(d.keys, secrets.token_bytes(32))
        res = d.visit("Bo (alarm key)", bo_alarm, [(Op.NOP, b""), (Op.REKEY, msg)])
        print(f"  the lock's proof of the new key verifies: {verify_rekey_proof(new_keys, res[-1].payload)}")
        d.visit("Bo, old-epoch key", bo_alarm, [(Op.UNLOCK, b"")])
        old_keys, d.keys = d.keys, new_keys
        d.visit("Bo, new-epoch key", d.ticket(502, 0.5), [(Op.UNLOCK, b""), (Op.LOCK, b"")])

        print(f"\n{when(d.now)}  The office collects the journal (encrypted end to end; the phone only carries it)")
        office = d.ticket(900, 1, rights=Right.JOURNAL)
        chunks = d.visit("office phone", office, [(Op.JOURNAL_READ, (1).to_bytes(4, "big") + b"\x10")])
        keys_for = {1: old_keys, 2: new_keys}
        chunk = open_chunk(keys_for, chunks[0].payload)
        verify_chain(keys_for, chain_genesis(old_keys.jm, d.lock_id), chunk.records, 1)
        print(f"  {len(chunk.records)} records, chain verified by the server:")
        for r in chunk.records:
            who = f"user {r.user_id}, ticket {r.ticket_id}" if r.user_id else ""
            extra = f" ({Err(r.arg16).name})" if r.event_name == "DENIED" else ""
            print(f"    #{r.seq:<3} {when(r.time)}  {r.event_name:<12}{extra:<14} {who}")
        bolt = Bolt(w.call("lockside.bolt", DOOR)).name
        print(f"\nThe door is {bolt}. Next: the simulator (a district of locks) and the key server's reports.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
