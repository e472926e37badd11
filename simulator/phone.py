"""Simulated carer phones: the protocol half on the desktop, the radio half in a fleet host.

Where phones run: a phone's *protocol* (tickets, ``lockproto.PhoneSession``, journal
courier duty, server statements from a :class:`~simulator.keysource.KeySource`) runs
here in CPython; its *radio* is an ``aioble.SimPhone`` central inside the MicroPython
fleet host that holds the lock, on the same radio hub as the lock, driven over the
host's control connection (``phone_*`` requests, docs/simulator.md). So range, latency,
loss and connection drops act on the phone exactly as on a lock, and the bytes the
phone writes are fragmented and reassembled by the host protocol library, not by
firmware code. Requests name their phone, so phones share a bounded pool of
connections per host (``Fleet.pooled``) and many work concurrently.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lockproto import Err, Flag, Hello, Op, PhoneSession, ProtocolError, Reassembler, Ticket, fragment
from lockproto.advert import Advert

from .fleet import Fleet, FleetError, HostClient
from .keysource import Grant, KeySource

RECV_MS = 3000


class RadioError(Exception):
    """The radio failed: lock out of range, connection dropped, no answer in time."""


@dataclass
class OpResult:
    op: int
    status: int            # Err value; OK or the refusal
    payload: bytes = b""

    @property
    def ok(self) -> bool:
        return self.status == Err.OK


@dataclass
class Outcome:
    """What one connection achieved: the HELLO seen and one result per op sent."""

    lock: str
    hello: Hello | None = None
    results: list[OpResult] = field(default_factory=list)
    radio_error: str | None = None
    rekeyed: bool = False

    def status_of(self, op: int) -> int | None:
        for r in self.results:
            if r.op == op:
                return r.status
        return None

    @property
    def refusal(self) -> int | None:
        for r in self.results:
            if not r.ok:
                return r.status
        return None


class Connection:
    """One BLE connection from a phone to a lock, through the fleet host."""

    def __init__(self, client: HostClient, conn: int, mtu: int) -> None:
        self.client = client
        self.conn = conn
        self.mtu = mtu
        self._reasm = Reassembler()
        self._queue: list[bytes] = []

    async def _fragments(self, frags, recv_ms):
        try:
            got = await self.client.call("phone_write", conn=self.conn, frags=[f.hex() for f in frags],
                                         recv_ms=recv_ms)
        except FleetError as e:
            raise RadioError(str(e)) from e
        return [bytes.fromhex(h) for h in got]

    async def receive(self, recv_ms: int = RECV_MS, first: list[bytes] | None = None) -> bytes:
        """The next whole message the lock notifies."""
        pending = list(first or [])
        while True:
            while pending:
                msg = self._reasm.feed(pending.pop(0))
                if msg is not None:
                    self._queue.extend(pending)
                    return msg
            if self._queue:
                pending, self._queue = self._queue, []
                continue
            try:
                got = await self.client.call("phone_recv", conn=self.conn, timeout_ms=recv_ms)
            except FleetError as e:
                raise RadioError(str(e)) from e
            pending = [bytes.fromhex(h) for h in got]

    async def send(self, msg: bytes, recv_ms: int = RECV_MS, expect_answer: bool = True) -> bytes | None:
        """Write one message (fragmented for the MTU); return the lock's answer."""
        first = await self._fragments(fragment(msg, self.mtu), recv_ms if expect_answer else 0)
        if not expect_answer:
            return None
        return await self.receive(recv_ms, first)

    async def send_raw(self, frags: list[bytes], recv_ms: int = RECV_MS) -> bytes:
        """Write fragments as given (for fuzzing); return the next whole answer."""
        first = await self._fragments(frags, recv_ms)
        return await self.receive(recv_ms, first)

    async def close(self) -> None:
        try:
            await self.client.call("phone_disconnect", conn=self.conn)
        except FleetError:
            pass


class CarerPhone:
    """A carer's phone: a bundle of grants, a position, and the courier duties of §5/§6.

    ``online``: whether the phone reaches the key server right now (time tokens and
    fresh statements need it); an offline phone still unlocks with the grants it holds.
    """

    def __init__(self, fleet: Fleet, name: str, user_id: int, source: KeySource | None, mtu: int = 185,
                 online: bool = True) -> None:
        self.fleet = fleet
        self.name = name
        self.user_id = user_id
        self.source = source
        self.mtu = mtu
        self.online = online
        self.grants: dict[bytes, Grant] = {}
        self._radios: dict[int, tuple[HostClient, int]] = {}
        self.where: tuple[float, float] = (0.0, 0.0)

    async def _radio(self, lock: str) -> tuple[HostClient, int]:
        h = self.fleet.host_of(lock)
        r = self._radios.get(h)
        if r is None:
            c = self.fleet.pooled(h)
            pid = (await c.call("phone_new", mtu=self.mtu, x=self.where[0], y=self.where[1]))["phone"]
            r = self._radios[h] = (c, pid)
        return r

    async def close(self) -> None:
        for c, pid in self._radios.values():
            try:
                await c.call("phone_forget", phone=pid)
            except FleetError:
                pass
        self._radios = {}

    async def walk_to(self, lock: str, offset: float = 2.0) -> None:
        """Stand ``offset`` metres from a lock's door."""
        s = self.fleet.state.locks[lock]
        await self.move(s.x + offset, s.y)

    async def move(self, x: float, y: float) -> None:
        self.where = (x, y)
        for c, pid in self._radios.values():
            await c.call("phone_move", phone=pid, x=x, y=y)

    async def scan(self, lock: str) -> list[dict]:
        """What this phone hears on the radio of the host holding ``lock``."""
        c, pid = await self._radio(lock)
        await c.call("phone_move", phone=pid, x=self.where[0], y=self.where[1])
        return await c.call("phone_scan", phone=pid)

    async def connect(self, lock: str, lock_id: bytes, timeout_ms: int = 2000) -> Connection:
        """Find the lock by the lock id in its advertisement and connect."""
        c, pid = await self._radio(lock)
        for ad in await self.scan(lock):
            try:
                if Advert.decode(bytes.fromhex(ad["adv"])).lock_id != lock_id:
                    continue
            except ProtocolError:
                continue
            try:
                r = await c.call("phone_connect", phone=pid, addr=ad["addr"], timeout_ms=timeout_ms)
            except FleetError as e:
                raise RadioError(str(e)) from e
            return Connection(c, r["conn"], r["mtu"])
        raise RadioError("lock not in range")

    async def session(self, lock: str, grant: Grant, ops: list[tuple[int, bytes]],
                      courier: bool = True) -> Outcome:
        """Connect, authenticate with ``grant`` and run ``ops``. With ``courier``, first relay
        a time token (lock time uncertain, phone online) and a newer deny list."""
        out = Outcome(lock)
        try:
            conn = await self.connect(lock, grant.lock_id)
        except (RadioError, FleetError) as e:
            out.radio_error = str(e)
            return out
        try:
            hello_b = await conn.receive()
            out.hello = hello = Hello.decode(hello_b)
            plan = list(ops)
            if courier and self.online and self.source is not None:
                pre = []
                if hello.state.flags & Flag.TIME_UNCERTAIN:
                    wall = await self.fleet.wall()
                    pre.append((Op.TIME_SET, self.source.time_token(grant.lock_id, hello.nonce, wall)))
                ver, args = self.source.deny_update(grant.lock_id)
                if args is not None and ver > hello.state.deny_version:
                    pre.append((Op.DENY_UPDATE, args))
                plan = pre + plan
                rk = self.source.rekey_pending(grant.lock_id)
                if rk is not None and hello.epoch == Ticket.decode(grant.ticket).epoch:
                    plan.append((Op.REKEY, rk))  # last: a re-key ends the session
            ps = PhoneSession(grant.ticket, grant.k_t, hello_b)
            for i, (op, args) in enumerate(plan):
                msg = ps.auth(op, args) if i == 0 else ps.op(op, args)
                answer = await conn.send(msg)
                try:
                    r = ps.read(answer)
                    out.results.append(OpResult(int(op), Err.OK, bytes(r.payload)))
                    if op == Op.REKEY:
                        out.rekeyed = self.source.rekey_proved(grant.lock_id, bytes(r.payload))
                except ProtocolError as e:
                    out.results.append(OpResult(int(op), int(e.code)))
                    if ps.closed or not ps.established:
                        break
        except RadioError as e:
            out.radio_error = str(e)
        except ProtocolError as e:
            out.radio_error = f"protocol: {e.code.name}"
        finally:
            await conn.close()
        return out

    async def upload_journal(self, lock: str, grant: Grant, max_chunks: int = 8) -> tuple[int, str | None]:
        """Read the lock's unacknowledged journal, hand it to the key source, carry the ack
        back. Returns (records delivered, problem or None)."""
        if self.source is None or not self.online:
            return 0, "offline"
        try:
            conn = await self.connect(lock, grant.lock_id)
        except (RadioError, FleetError) as e:
            return 0, str(e)
        delivered = 0
        try:
            hello_b = await conn.receive()
            hello = Hello.decode(hello_b)
            ps = PhoneSession(grant.ticket, grant.k_t, hello_b)
            seq = hello.state.journal_acked + 1
            first = True
            ack = None
            for _ in range(max_chunks):
                args = seq.to_bytes(4, "big") + bytes([16])
                msg = ps.auth(Op.JOURNAL_READ, args) if first else ps.op(Op.JOURNAL_READ, args)
                first = False
                r = ps.read(await conn.send(msg))
                ing = self.source.ingest(grant.lock_id, bytes(r.payload))
                if ing.problem:
                    return delivered, ing.problem
                if ing.ack is not None:
                    ack = ing.ack
                    delivered += len(ing.records)
                count = r.payload[8]
                if count == 0 or seq + count > hello.state.journal_head:
                    break
                seq += count
            if ack is not None:
                ps.read(await conn.send(ps.op(Op.JOURNAL_ACK, ack)))
            return delivered, None
        except ProtocolError as e:
            return delivered, f"refused: {e.code.name}"
        except RadioError as e:
            return delivered, str(e)
        finally:
            await conn.close()
