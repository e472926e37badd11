"""Attack scenarios against simulated locks running the real firmware, each with its
expected outcome and a verdict: did the lock hold?

A lock *holds* when it answers what the protocol says (the expected refusal), its bolt
never moves for the attacker, and nothing the journal owes the server is lost. Every
attack gets a lock of its own, so the rate limiter tripped by one attack does not
colour the next. ``locksim attack`` runs them all and exits 1 if any lock broke.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import tempfile
from collections import Counter
from pathlib import Path

from lockproto import Err, ErrorFrame, MsgType, Op, PhoneSession, ProtocolError, Right, fragment

from .fleet import Fleet, LockSpec
from .keysource import LocalIssuer
from .phone import CarerPhone, RadioError
from .scenario import scratch_dir

RIGHTS = Right.UNLOCK | Right.LOCK | Right.JOURNAL
_OP_AT = 2 + 41 + 16      # AUTH: type, version, ticket, nonce_P, then the op byte
_TICKET_AT = 2


def _code(msg: bytes | None) -> int | None:
    """The error code of an ERROR frame (None for anything else)."""
    if msg and msg[0] == MsgType.ERROR:
        try:
            return ErrorFrame.decode(msg).code
        except ProtocolError:
            return None
    return None


class Lab:
    """A fleet with one lock per attack, an issuer and a legitimate carer."""

    def __init__(self, state_dir: Path, names: list[str]) -> None:
        self.fleet = Fleet(state_dir, procs=2, heapsize="64m", seed=3, storage="files")
        self.issuer = LocalIssuer()
        self.names = names
        self.ids: dict[str, bytes] = {}

    async def start(self) -> None:
        self.fleet.start()
        await self.fleet.attach()
        await self.fleet.all("time", speed=0)
        await self.fleet.create([LockSpec(n, i * 100.0, 0.0) for i, n in enumerate(self.names)])
        wall = await self.fleet.wall()
        for n in self.names:
            lid, ep, m = self.issuer.register(n)
            self.ids[n] = lid
            await self.fleet.call(n, "provision", lock_id=lid.hex(), epoch=ep, master=m.hex(), now=wall)

    async def grant(self, lock: str, user: int = 7, start: int = -60, life: int = 3600, rights: int = RIGHTS):
        wall = await self.fleet.wall()
        return self.issuer.grant(self.ids[lock], user, wall + start, wall + life, rights, wall + start)

    async def bolt_still(self, lock: str) -> bool:
        """After the motor would have had time to move: locked and never driven."""
        await self.fleet.advance(3000)
        st = await self.fleet.call(lock, "status")
        return st["bolt"] == 0 and st["state"] == 1 and st["powered"]

    async def phone(self, name: str = "eve", user: int = 66) -> CarerPhone:
        return CarerPhone(self.fleet, name, user, None)


async def _hello(phone: CarerPhone, lab: Lab, lock: str):
    await phone.walk_to(lock)
    conn = await phone.connect(lock, lab.ids[lock])
    return conn, await conn.receive()


async def attack_replay(lab: Lab, lock: str) -> dict:
    """Capture a carer's AUTH+UNLOCK off the air, replay it on a new connection."""
    carer = CarerPhone(lab.fleet, "anna", 7, lab.issuer)
    g = await lab.grant(lock)
    conn, hello = await _hello(carer, lab, lock)
    ps = PhoneSession(g.ticket, g.k_t, hello)
    captured = ps.auth(Op.STATUS)
    ps.read(await conn.send(captured))
    await conn.close()
    eve = await lab.phone()
    conn, _ = await _hello(eve, lab, lock)
    answer = await conn.send(captured)
    await conn.close()
    await carer.close()
    await eve.close()
    code = _code(answer)
    still = await lab.bolt_still(lock)
    return {"expected": "BAD_MAC (the AUTH MAC covers the HELLO's fresh nonce)",
            "got": Err(code).name if code is not None else repr(answer[:1]), "held": code == Err.BAD_MAC and still}


async def attack_relay(lab: Lab, lock: str) -> dict:
    """A relay between the carer and the door adds 1.5 s and turns her STATUS into an UNLOCK."""
    carer = CarerPhone(lab.fleet, "anna", 7, lab.issuer)
    g = await lab.grant(lock)
    conn, hello = await _hello(carer, lab, lock)
    ps = PhoneSession(g.ticket, g.k_t, hello)
    msg = bytearray(ps.auth(Op.STATUS))
    await asyncio.sleep(1.5)        # the relay's delay (the lock's HELLO timeout is 30 s)
    msg[_OP_AT] = Op.UNLOCK
    answer = await conn.send(bytes(msg))
    await conn.close()
    await carer.close()
    code = _code(answer)
    still = await lab.bolt_still(lock)
    return {"expected": "BAD_MAC: the op is inside the MAC; delay alone is no defence and none is claimed",
            "got": Err(code).name if code is not None else repr(answer[:1]), "held": code == Err.BAD_MAC and still}


async def attack_mutated_tickets(lab: Lab, lock: str) -> dict:
    """Every byte of a valid ticket changed in turn, the AUTH re-signed with the old K_T."""
    g = await lab.grant(lock)
    eve = await lab.phone()
    codes = {}
    ok = True
    for i in range(0, 41, 4):
        conn, hello = await _hello(eve, lab, lock)
        t = bytearray(g.ticket)
        t[i] ^= 0x01
        try:
            ps = PhoneSession(bytes(t), g.k_t, hello)
            answer = await conn.send(ps.auth(Op.UNLOCK))
        except RadioError:
            answer = None
        await conn.close()
        code = _code(answer)
        codes[i] = Err(code).name if code is not None else "no error frame"
        ok = ok and code is not None
        await lab.fleet.advance(61000)  # let the rate limiter's window pass between tries
    await eve.close()
    still = await lab.bolt_still(lock)
    return {"expected": "every mutation refused with an ERROR (BAD_MAC, WRONG_LOCK, MALFORMED...)",
            "got": codes, "held": ok and still}


async def _refusal(lab: Lab, lock: str, g, op=Op.UNLOCK, courier_source=None) -> int | None:
    phone = CarerPhone(lab.fleet, "eve", g.user_id, courier_source)
    await phone.walk_to(lock)
    out = await phone.session(lock, g, [(op, b"")], courier=courier_source is not None)
    await phone.close()
    return out.status_of(op) if out.status_of(op) is not None else out.refusal


async def attack_expired(lab: Lab, lock: str) -> dict:
    g = await lab.grant(lock, start=-7200, life=-60)
    st = await _refusal(lab, lock, g)
    return {"expected": "EXPIRED", "got": Err(st).name if st is not None else None,
            "held": st == Err.EXPIRED and await lab.bolt_still(lock)}


async def attack_not_yet_valid(lab: Lab, lock: str) -> dict:
    g = await lab.grant(lock, start=3600, life=7200)
    st = await _refusal(lab, lock, g)
    return {"expected": "NOT_YET_VALID", "got": Err(st).name if st is not None else None,
            "held": st == Err.NOT_YET_VALID and await lab.bolt_still(lock)}


async def attack_revoked(lab: Lab, lock: str) -> dict:
    """A revoked carer's still-valid ticket, after a colleague's phone carried the deny list."""
    g = await lab.grant(lock, user=99)
    wall = await lab.fleet.wall()
    lab.issuer.revoke_user(99, wall + 86400)
    colleague = CarerPhone(lab.fleet, "bo", 8, lab.issuer)
    await colleague.walk_to(lock)
    out = await colleague.session(lock, await lab.grant(lock, user=8), [(Op.STATUS, b"")])
    await colleague.close()
    carried = out.status_of(Op.DENY_UPDATE) == Err.OK
    st = await _refusal(lab, lock, g)
    return {"expected": "REVOKED", "got": Err(st).name if st is not None else None,
            "held": carried and st == Err.REVOKED and await lab.bolt_still(lock)}


async def attack_clock_rollback(lab: Lab, lock: str) -> dict:
    """The lock's RTC is wound back two hours; a ticket that expired an hour ago is tried."""
    g = await lab.grant(lock, start=-7200, life=-3600)
    await lab.fleet.call(lock, "clock", jump_s=-7200)
    st = await _refusal(lab, lock, g)
    status = await lab.fleet.call(lock, "status")
    return {"expected": "refused (the clock never goes back past its high-water mark)",
            "got": f"{Err(st).name if st is not None else None}, lock time uncertain={status.get('uncertain')}",
            "held": st is not None and st != Err.OK and await lab.bolt_still(lock)}


async def attack_hostile_journal(lab: Lab, lock: str) -> dict:
    """A phone with a journal right forges an ack, and edits, drops and reorders exported records."""
    carer = CarerPhone(lab.fleet, "anna", 7, lab.issuer)
    await carer.walk_to(lock)
    g = await lab.grant(lock)
    for _ in range(2):
        await carer.session(lock, g, [(Op.UNLOCK, b"")])
        await lab.fleet.advance(40000)
    before = await lab.fleet.call(lock, "status")
    verdicts = {}
    conn, hello = await _hello(carer, lab, lock)
    ps = PhoneSession(g.ticket, g.k_t, hello)
    r = ps.read(await conn.send(ps.auth(Op.JOURNAL_READ, (1).to_bytes(4, "big") + bytes([16]))))
    chunk = bytes(r.payload)
    # 1. a forged acknowledgement of everything
    fake_ack = before["head"].to_bytes(4, "big") + bytes(8) + bytes(16)
    try:
        ps.read(await conn.send(ps.op(Op.JOURNAL_ACK, fake_ack)))
        verdicts["forged ack"] = "ACCEPTED"
    except ProtocolError as e:
        verdicts["forged ack"] = e.code.name
    await conn.close()
    # 2. the courier tampers with the chunk on its way to the server
    head, body, mac = chunk[:37], chunk[37:-16], chunk[-16:]
    recs = [body[i:i + 32] for i in range(0, len(body), 32)]
    edited = head + bytes([body[0] ^ 1]) + body[1:] + mac
    swapped = head + b"".join([recs[1], recs[0]] + recs[2:]) + mac
    dropped = head[:8] + bytes([head[8] - 1]) + head[9:] + b"".join(recs[1:]) + mac
    for name, bad in (("edited record", edited), ("reordered records", swapped), ("dropped record", dropped)):
        ing = lab.issuer.ingest(lab.ids[lock], bad)
        verdicts[name] = ing.problem or "ACCEPTED"
    after = await lab.fleet.call(lock, "status")
    await carer.close()
    kept = after["acked"] == before["acked"] and after["stored"] >= before["stored"]
    held = kept and verdicts["forged ack"] != "ACCEPTED" and all(
        v != "ACCEPTED" for k, v in verdicts.items() if k != "forged ack")
    return {"expected": "ack BAD_MAC; every altered chunk refused by the server; the lock keeps its records",
            "got": verdicts, "held": held}


async def attack_fuzz(lab: Lab, lock: str, cases: int = 60, seed: int = 5) -> dict:
    """Random fragments and random messages at the lock's RX characteristic."""
    rnd = random.Random(seed)
    eve = await lab.phone()
    answered = Counter()
    for i in range(cases):
        conn, hello = await _hello(eve, lab, lock)
        if i % 2:
            frags = [bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, conn.mtu - 3)))]
        else:
            msg = bytes([rnd.choice([2, 4, 1, 3, 5, 9, 0x7F])]) + bytes(
                rnd.getrandbits(8) for _ in range(rnd.randint(0, 200)))
            frags = fragment(msg, conn.mtu)
        try:
            answer = await conn.send_raw(frags, recv_ms=400)
            code = _code(answer)
            answered[Err(code).name if code is not None else f"type {answer[0]}"] += 1
        except RadioError:
            answered["no answer"] += 1
        await conn.close()
        if i % 10 == 9:
            await lab.fleet.advance(61000)
    await eve.close()
    still = await lab.bolt_still(lock)
    # the lock still serves its carer afterwards
    await lab.fleet.advance(600_000)
    carer = CarerPhone(lab.fleet, "anna", 7, lab.issuer)
    await carer.walk_to(lock)
    out = await carer.session(lock, await lab.grant(lock), [(Op.UNLOCK, b"")])
    await carer.close()
    alive = out.status_of(Op.UNLOCK) == Err.OK
    return {"expected": "ERRORs or silence, never an actuation; the carer unlocks afterwards",
            "got": dict(answered) | {"carer unlock after": "OK" if alive else str(out.results or out.radio_error)},
            "held": still and alive and "type 3" not in answered}

async def _statuses(conn, ps: PhoneSession, ops) -> list[str]:
    """Run ``ops`` in one session; the status name of each (a refusal ends the list)."""
    out = []
    for i, (op, args) in enumerate(ops):
        try:
            ps.read(await conn.send(ps.auth(op, args) if i == 0 else ps.op(op, args)))
            out.append("OK")
        except ProtocolError as e:
            out.append(e.code.name)
            if ps.closed:
                break
    return out


async def attack_scope_confusion(lab: Lab, lock: str) -> dict:
    """A carer's genuine ticket (unlock, lock, journal) asks for the admin operations: a
    CONFIG write, and a FACTORY_RESET carrying the server's genuine consent for this very
    connection (as a stolen consent would be)."""
    from lockproto import ConfigKey, factory_reset_statement

    carer = CarerPhone(lab.fleet, "anna", 7, lab.issuer)
    g = await lab.grant(lock)
    conn, hello = await _hello(carer, lab, lock)
    ps = PhoneSession(g.ticket, g.k_t, hello)
    consent = factory_reset_statement(lab.issuer.keys(lab.ids[lock]), ps.hello.nonce)
    got = await _statuses(conn, ps, [(Op.CONFIG, bytes([ConfigKey.LOCKOUT_THRESHOLD]) + (1000).to_bytes(4, "big")),
                                     (Op.FACTORY_RESET, consent), (Op.NOP, b"")])
    await conn.close()
    await carer.close()
    st = await lab.fleet.call(lock, "status")
    kept = st["provisioned"] and st["epoch"] == 1
    return {"expected": "NO_RIGHT for both, the session goes on, the unit stays provisioned",
            "got": got, "held": got == ["NO_RIGHT", "NO_RIGHT", "OK"] and kept and await lab.bolt_still(lock)}


async def attack_deny_rollback(lab: Lab, lock: str) -> dict:
    """A hostile phone kept an older, genuinely signed deny list and relays it after the
    newer one that revoked a carer reached the lock."""
    wall = await lab.fleet.wall()
    lid = lab.ids[lock]
    lab.issuer.revoke_ticket(0x7FFF0000, wall + 86400)       # some earlier, unrelated revocation
    _, old = lab.issuer.deny_update(lid)
    victim = await lab.grant(lock, user=98)
    lab.issuer.revoke_user(98, wall + 86400)
    colleague = CarerPhone(lab.fleet, "bo", 8, lab.issuer)
    await colleague.walk_to(lock)
    out = await colleague.session(lock, await lab.grant(lock, user=8), [(Op.STATUS, b"")])
    await colleague.close()
    carried = out.status_of(Op.DENY_UPDATE) == Err.OK
    eve = await lab.phone()
    conn, hello = await _hello(eve, lab, lock)
    g = await lab.grant(lock, user=66)
    got = await _statuses(conn, PhoneSession(g.ticket, g.k_t, hello), [(Op.DENY_UPDATE, old)])
    await conn.close()
    await eve.close()
    st = await _refusal(lab, lock, victim)
    return {"expected": "STALE; the revoked carer stays REVOKED",
            "got": {"old list": got[0], "revoked carer": Err(st).name if st is not None else None},
            "held": carried and got == ["STALE"] and st == Err.REVOKED and await lab.bolt_still(lock)}


ATTACKS = [
    ("replay of a captured session", attack_replay),
    ("relay with delay and a changed op", attack_relay),
    ("mutated tickets", attack_mutated_tickets),
    ("expired ticket", attack_expired),
    ("ticket not yet valid", attack_not_yet_valid),
    ("revoked carer", attack_revoked),
    ("clock rollback", attack_clock_rollback),
    ("hostile phone: forged ack, edited/reordered/dropped journal", attack_hostile_journal),
    ("fuzzed frames", attack_fuzz),
    ("carer ticket used for admin operations", attack_scope_confusion),
    ("deny-list rollback with a genuine older list", attack_deny_rollback),
]


async def run_attacks(state_dir: str | Path | None = None, progress: bool = False, only=None) -> dict:
    """Run the attacks (all, or the names in ``only``); return {"attacks": [...]}."""
    chosen = [(n, f) for n, f in ATTACKS if only is None or n in only]
    tmp = None
    if state_dir is None:
        tmp = tempfile.mkdtemp(prefix="locksim-attack-", dir=scratch_dir())
        state_dir = tmp
    names = [f"A{i + 1:02d}" for i in range(len(chosen))]
    lab = Lab(Path(state_dir), names)
    results = []
    try:
        await lab.start()
        for (name, fn), lock in zip(chosen, names):
            try:
                r = await fn(lab, lock)
            except (RadioError, ProtocolError) as e:
                r = {"expected": "", "got": f"attack could not run: {e}", "held": False}
            detail = f"expected {r['expected']}; got {r['got']}"
            results.append({"name": name, "lock": lock, "held": bool(r["held"]), "detail": detail,
                            "got": r["got"]})
    finally:
        await lab.fleet.stop()
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    return {"attacks": results}
