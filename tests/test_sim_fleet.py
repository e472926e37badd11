"""The fleet simulator (simulator/): real DoorUnits in MicroPython fleet hosts, the radio hub,
phones on lockproto, power cuts, persistence across restarts, the pty serial port, the CLI."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lockproto import Bolt, Err, Event, FrameDecoder, Hello, Op, Right, encode_frame
from simulator.fleet import Fleet, FleetError, LockSpec
from simulator.keysource import LocalIssuer
from simulator.phone import CarerPhone

pytestmark = pytest.mark.mpy

RIGHTS = Right.UNLOCK | Right.LOCK | Right.JOURNAL


class Bench:
    """A small fleet, its issuer and helpers, inside one event loop."""

    def __init__(self, tmp: Path, n: int = 3, procs: int = 2, storage: str = "flash") -> None:
        self.fleet = Fleet(tmp / "fleet", procs=procs, heapsize="32m", seed=7, storage=storage)
        self.n = n
        self.issuer = LocalIssuer()
        self.ids: dict[str, bytes] = {}

    async def __aenter__(self):
        self.fleet.start()
        await self.fleet.attach()
        if not self.fleet.state.locks:
            await self.fleet.create([LockSpec(f"L{i}", i * 100.0, 0.0) for i in range(self.n)])
        wall = await self.fleet.wall()
        for name in sorted(self.fleet.state.locks):
            lid, ep, m = self.issuer.register(name)
            self.ids[name] = lid
            st = await self.fleet.call(name, "status")
            if not st["provisioned"]:
                r = await self.fleet.call(name, "provision", lock_id=lid.hex(), epoch=ep, master=m.hex(), now=wall)
                assert r["status"] == Err.OK
        return self

    async def __aexit__(self, *exc):
        await self.fleet.stop()

    async def grant(self, name, user=7, rights=RIGHTS, life=3600):
        wall = await self.fleet.wall()
        return self.issuer.grant(self.ids[name], user, wall - 60, wall + life, rights, wall - 60)

    async def status(self, name):
        return await self.fleet.call(name, "status")


def run(coro):
    return asyncio.run(coro)


def test_phone_unlocks_through_the_radio_hub_only_when_near(tmp_path):
    async def go():
        async with Bench(tmp_path) as b:
            phone = CarerPhone(b.fleet, "anna", 7, b.issuer)
            g = await b.grant("L1")
            far = await phone.session("L1", g, [(Op.UNLOCK, b"")])
            assert far.radio_error == "lock not in range" and not far.results
            assert (await b.status("L1"))["bolt"] == 0
            await phone.walk_to("L1")
            out = await phone.session("L1", g, [(Op.UNLOCK, b"")])
            assert out.radio_error is None and out.status_of(Op.UNLOCK) == Err.OK
            assert out.hello.lock_id == b.ids["L1"]
            await b.fleet.advance(2000)
            st = await b.status("L1")
            assert st["bolt"] == 100 and st["state"] == Bolt.UNLOCKED
            # the door is never opened: the unit relocks by itself (simulated time)
            await b.fleet.advance(60000)
            assert (await b.status("L1"))["state"] == Bolt.LOCKED
            # a neighbour's lock did not move, and a ticket for L1 does not open L0
            await phone.walk_to("L0")
            wrong = await phone.session("L0", g, [(Op.UNLOCK, b"")])
            assert wrong.radio_error == "lock not in range"  # the phone looks for L1's id
            assert (await b.status("L0"))["bolt"] == 0
            await phone.close()
    run(go())


def test_ticket_without_the_right_and_expired_ticket_are_refused(tmp_path):
    async def go():
        async with Bench(tmp_path, n=1, procs=1) as b:
            phone = CarerPhone(b.fleet, "bo", 8, b.issuer)
            await phone.walk_to("L0")
            out = await phone.session("L0", await b.grant("L0", rights=Right.LOCK), [(Op.UNLOCK, b"")])
            assert out.status_of(Op.UNLOCK) == Err.NO_RIGHT
            short = await b.grant("L0", life=120)
            await b.fleet.advance(300_000)
            out = await phone.session("L0", short, [(Op.UNLOCK, b"")])
            assert out.status_of(Op.UNLOCK) == Err.EXPIRED
            await b.fleet.advance(3000)
            assert (await b.status("L0"))["bolt"] == 0
            await phone.close()
    run(go())


def test_journal_upload_is_verified_and_acknowledged(tmp_path):
    async def go():
        async with Bench(tmp_path, n=1, procs=1) as b:
            phone = CarerPhone(b.fleet, "anna", 7, b.issuer)
            await phone.walk_to("L0")
            g = await b.grant("L0")
            assert (await phone.session("L0", g, [(Op.UNLOCK, b"")])).status_of(Op.UNLOCK) == Err.OK
            await b.fleet.advance(40000)
            before = await b.status("L0")
            assert before["backlog"] >= 3
            n, problem = await phone.upload_journal("L0", g)
            assert problem is None and n == before["head"]
            after = await b.status("L0")
            assert after["acked"] == before["head"] and after["stored"] == 0
            events = [r[2] for r in b.issuer.journal[b.ids["L0"].hex()]["records"]]
            assert Event.UNLOCK in events and Event.AUTO_RELOCK in events
            await phone.close()
    run(go())


@pytest.mark.parametrize("storage", ["flash", "files"])
@pytest.mark.parametrize("torn", [False, True])
def test_power_cut_mid_journal_write_recovers(tmp_path, torn, storage):
    # the cut lands on the first durable write of the unlock (its journal record):
    # the phone gets no answer, the bolt stays locked, and after power returns the
    # journal's chain still verifies end to end and nothing acknowledged is lost
    async def go():
        async with Bench(tmp_path, n=1, procs=1, storage=storage) as b:
            phone = CarerPhone(b.fleet, "anna", 7, b.issuer)
            await phone.walk_to("L0")
            g = await b.grant("L0")
            head0 = (await b.status("L0"))["head"]
            armed = await b.fleet.call("L0", "power", action="cut", at_write=0, torn=torn)
            assert armed["armed"] == armed["writes"]
            out = await phone.session("L0", g, [(Op.UNLOCK, b"")])
            assert out.status_of(Op.UNLOCK) is None and out.radio_error
            st = await b.status("L0")
            assert st["powered"] is False and st["bolt"] == 0 and st["cuts"] == 1
            await b.fleet.call("L0", "power", action="restore")
            st = await b.status("L0")
            assert st["powered"] and st["boots"] == 2 and st["uncertain"]
            assert st["head"] >= head0 + 1  # the boot record (the torn record was discarded)
            # the time-uncertain lock still serves a fresh visit (the phone relays a time token)
            out = await phone.session("L0", g, [(Op.UNLOCK, b"")])
            assert out.status_of(Op.TIME_SET) == Err.OK and out.status_of(Op.UNLOCK) == Err.OK
            n, problem = await phone.upload_journal("L0", g)
            assert problem is None
            recs = b.issuer.journal[b.ids["L0"].hex()]["records"]
            assert [r[0] for r in recs] == list(range(1, len(recs) + 1))
            assert Event.TIME_UNCERTAIN in [r[2] for r in recs]
            await phone.close()
    run(go())


def test_fleet_survives_a_restart(tmp_path):
    async def first():
        async with Bench(tmp_path, n=2) as b:
            phone = CarerPhone(b.fleet, "anna", 7, b.issuer)
            await phone.walk_to("L1")
            assert (await phone.session("L1", await b.grant("L1"), [(Op.UNLOCK, b"")])).status_of(Op.UNLOCK) == 0
            await b.fleet.call("L1", "door", open=True)
            await b.fleet.call("L0", "battery", mv=5100)
            await b.fleet.advance(5000)
            await phone.close()
            return b.issuer, await b.status("L1")

    issuer, before = run(first())

    async def second():
        b = Bench(tmp_path, n=2)
        b.issuer = issuer
        async with b:
            st = await b.status("L1")
            assert st["lock_id"] == before["lock_id"] and st["epoch"] == 1
            assert st["bolt"] == 100 and st["door_closed"] is False
            assert st["head"] == before["head"] + 1  # + the boot record, nothing lost
            assert st["uncertain"] is False and st["time"] >= before["time"]
            assert (await b.status("L0"))["battery_mv"] == 5100
            phone = CarerPhone(b.fleet, "anna", 7, b.issuer)
            await phone.walk_to("L1")
            n, problem = await phone.upload_journal("L1", await b.grant("L1"))
            assert problem is None and n == st["head"]
            await phone.close()
    run(second())


def test_pty_serial_port_speaks_the_maintenance_link(tmp_path):
    serial = pytest.importorskip("serial")
    from simulator.ptyport import PtyPort

    async def go():
        async with Bench(tmp_path, n=1, procs=1) as b:
            port = PtyPort("L0", b.fleet.port_of("L0"))
            await port.start()
            try:
                def talk():
                    s = serial.Serial(port.path, 115200, timeout=0.2)
                    try:
                        s.write(b"\x00garbage" + encode_frame(b"\x01"))
                        dec, msgs, end = FrameDecoder(), [], time.monotonic() + 5
                        while not msgs and time.monotonic() < end:
                            msgs += dec.feed(s.read(128))
                        return msgs
                    finally:
                        s.close()
                msgs = await asyncio.to_thread(talk)
                assert len(msgs) == 1
                h = Hello.decode(msgs[0])
                assert h.lock_id == b.ids["L0"] and h.epoch == 1
            finally:
                await port.close()
    run(go())


def test_control_api_refuses_bad_requests_clearly(tmp_path):
    async def go():
        async with Bench(tmp_path, n=1, procs=1) as b:
            c = b.fleet.clients[0]
            with pytest.raises(FleetError, match="no such lock: nope"):
                await c.call("door", lock="nope", open=True)
            with pytest.raises(FleetError, match="unknown op"):
                await c.call("fly")
            with pytest.raises(FleetError, match="bad request"):
                await c.call("door", lock="L0")
            with pytest.raises(FleetError, match="power action"):
                await c.call("power", lock="L0", action="zap")
            assert (await b.status("L0"))["powered"]
    run(go())


def test_cli_drives_a_running_fleet(tmp_path):
    state = tmp_path / "st"
    exe = [sys.executable, "-m", "simulator.cli", "--state", str(state)]
    sup = subprocess.Popen(exe + ["start", "--locks", "2", "--procs", "1"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        line = sup.stdout.readline()
        assert "2 locks on 1 processes" in line

        def cli(*args):
            return subprocess.run(exe + list(args), capture_output=True, text=True, timeout=60)

        r = cli("unlock", "L0002")
        assert r.returncode == 0 and json.loads(r.stdout)["unlock"] == "OK"
        assert cli("jam", "L0001", "on").returncode == 0
        assert json.loads(cli("status", "L0001", "--json").stdout)[0]["jam"] is True
        r = cli("door", "L0009", "open")
        assert r.returncode == 1 and r.stderr.strip() == "locksim: no such lock: L0009"
        r = cli("advance", "--", "-5")
        assert r.returncode == 1 and r.stderr.startswith("locksim: ")
        r = cli("radio", "--loss", "2")
        assert r.returncode == 1 and "probability" in r.stderr
        # options the user gave go to the control request under its names; the others stay as they were
        assert json.loads(cli("battery", "L0001", "--mv", "4300", "--drain", "20").stdout) == \
            {"battery_mv": 4300, "drain_mv_h": 20}
        assert json.loads(cli("battery", "L0001", "--drain", "0").stdout) == {"battery_mv": 4300, "drain_mv_h": 0}
        got = json.loads(cli("clock", "L0001", "--drift", "100").stdout)
        assert got["drift_ppm"] == 100
        assert json.loads(cli("clock", "L0001", "--jump", "-60").stdout)["rtc"] <= got["rtc"] - 59
        assert json.loads(cli("radio", "--latency", "5").stdout)[0]["latency_ms"] == 5
        assert cli("stop").returncode == 0
        assert sup.wait(timeout=30) == 0
    finally:
        if sup.poll() is None:
            sup.kill()
            sup.wait()
        sup.stdout.close()
        sup.stderr.close()


def test_inside_button_jam_and_battery_through_the_control_api(tmp_path):
    async def go():
        async with Bench(tmp_path, n=1, procs=1) as b:
            await b.fleet.all("time", speed=0)
            await b.fleet.call("L0", "press")
            await b.fleet.advance(2000)
            st = await b.status("L0")
            assert st["state"] == Bolt.UNLOCKED and st["bolt"] == 100  # egress from inside
            await b.fleet.advance(40000)
            assert (await b.status("L0"))["state"] == Bolt.LOCKED      # unopened: relocks
            assert await b.fleet.call("L0", "touch") == {"touches": 1}  # the outside pad ...
            await b.fleet.advance(2000)
            assert (await b.status("L0"))["state"] == Bolt.LOCKED      # ... never moves the bolt
            await b.fleet.call("L0", "jam", on=True)
            await b.fleet.call("L0", "press")
            await b.fleet.advance(4000)
            st = await b.status("L0")
            assert st["state"] == Bolt.JAMMED and st["bolt"] == 0
            await b.fleet.call("L0", "battery", mv=5000, drain_mv_h=100)
            await b.fleet.advance(3600_000)
            assert (await b.status("L0"))["battery_mv"] == 4900
            r = await b.fleet.call("L0", "clock", jump_s=600)
            assert r["rtc"] >= (await b.fleet.wall()) + 600
    run(go())
