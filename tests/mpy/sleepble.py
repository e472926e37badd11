# Runs under MicroPython (simulator/sim_aioble on the path): a door unit in the
# deep-sleep profile behind lockble; a simulated phone unlocks and hangs up. The
# link closes the session when the phone disconnects, so the unit powers down a
# settle after the relock, not the 35 s a session may otherwise last.
import asyncio
import lockhal
import lockhal_sim
import lockapp
import lockble
import aioble
import bluetooth
from lockkeys import RamKV
from lockjournal import RamRecords
from e2eunit import auth  # the phone's half of HELLO -> AUTH

_NOW = 1767225600
_LOCK_ID = b"LK\x00\x00\x00\x00\x00\x43"
_MASTER = bytes(range(9, 41))


def _unit(board, world, kv, records):
    unit = lockapp.DoorUnit(lockhal.wire(board, lockhal_sim.SimHal(world)), kv, records)
    unit.mech.set_config(unopened_relock_s=1)  # relock soon: the test runs in real time
    return unit


def run(boards, hang_up, wait_ms=12000, touch=False):
    # touch: the unit is asleep first, and the carer's touch on the outside pad wakes it
    board = lockhal.load_board("sim", boards)
    board["power_profile"] = "deep_sleep"
    world = lockhal_sim.SimWorld(board)
    kv, records = RamKV(), RamRecords(256)
    unit = _unit(board, world, kv, records)
    unit.provision(_LOCK_ID, 1, _MASTER, _NOW)
    out = {"slept_at": None}
    if touch:
        try:
            for _ in range(1000):
                world.advance(20)
                unit.poll()
        except lockhal_sim.SimHalted:
            pass
        out["slept_first"] = world.sleeping
        head = unit.journal.head
        out["woke"] = world.touch()
        unit = _unit(board, world, kv, records)
        out["source"] = unit.hw.wake_source()
        out["no_record"] = unit.journal.head == head
        out["bolt_after_touch"] = world.bolt
    radio = aioble.Radio()
    link = lockble.BleLink(aioble.bind(radio), unit.session, unit.advert, uuid=bluetooth.UUID, adv_ms=200)

    async def world_clock():
        while not world.sleeping:
            world.advance(10)
            await asyncio.sleep_ms(10)
        out["slept_at"] = world.ms

    head0 = unit.journal.head

    async def phone():
        p = aioble.SimPhone(radio, mtu=185)
        await asyncio.sleep_ms(100)
        ads = p.scan()
        conn = await p.connect(ads[0].addr, 2000)
        resp, _ = await auth(conn, unit.keystore.keys.tk, _LOCK_ID, 1)
        out["status"] = resp[6] if resp[0] == 3 else -resp[1]
        out["unlocked_at"] = world.ms
        out["journal_grew"] = unit.journal.head != head0
        if hang_up:
            await conn.disconnect()
        t = 0
        while not world.sleeping and t < wait_ms:
            await asyncio.sleep_ms(100)
            t += 100

    async def main():
        clock = asyncio.create_task(world_clock())
        runner = asyncio.create_task(unit.run([link]))
        await phone()
        link.stop()
        runner.cancel()
        clock.cancel()
        await asyncio.sleep_ms(50)

    asyncio.run(main())
    out["asleep"] = world.sleeping
    out["bolt"] = world.bolt
    return out
