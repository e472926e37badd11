# Runs under MicroPython (simulator/sim_aioble on the path): a whole door unit
# (DoorUnit on the simulator HAL) advertising over the fake radio through
# lockble; a simulated phone scans, connects, unlocks with a valid ticket, and
# the simulated bolt opens. The phone's half is built from the firmware's own
# protocol modules here; tests/test_xcheck.py shows they agree with lockproto.
import asyncio
import struct
import lockhal
import lockhal_sim
import lockapp
import lockble
import lockcrypto
import lockfrag
import lockwire
import lockadv
import aioble
import bluetooth
from lockkeys import RamKV
from lockjournal import RamRecords

_NOW = 1767225600
_LOCK_ID = b"LK\x00\x00\x00\x00\x00\x42"
_MASTER = bytes(range(7, 39))


async def message(conn, ms=3000):
    # the next whole message the unit notifies on TX
    r = lockfrag.Reassembler()
    while True:
        msg = r.feed(await conn.notified(bluetooth.UUID(lockble.TX_UUID), ms))
        if msg is not None:
            return msg


async def auth(conn, tk, lock_id, rights, now=_NOW, op=1):
    # the phone's half of a connection: read the HELLO, send AUTH with op under a
    # ticket (id 9, user 77) the unit's ticket key tk makes; -> (answer, K_S)
    hello = await message(conn)
    ticket = struct.pack(">B8sIIIIIIBHHBh", 1, lock_id, 1, 9, 77, now - 60, now + 3600, now - 60,
                         rights, 0, 0, 0, 0)
    nonce_p = b"\x33" * 16
    ks = lockcrypto.session_key(lockcrypto.ticket_key(tk, ticket), hello[15:31], nonce_p)
    body = lockwire.encode_auth_body(1, ticket, nonce_p, op)
    frame = body + lockcrypto.fmac(ks, 0x50, 0, lockcrypto.sha256(hello) + body)
    for f in lockfrag.fragment(frame, conn.mtu or 23):
        await conn.write(bluetooth.UUID(lockble.RX_UUID), f)
    return await message(conn), ks


def run(boards, rights, mtu):
    board = lockhal.load_board("sim", boards)
    world = lockhal_sim.SimWorld(board)
    unit = lockapp.DoorUnit(lockhal.wire(board, lockhal_sim.SimHal(world)), RamKV(), RamRecords(256))
    unit.provision(_LOCK_ID, 1, _MASTER, _NOW)
    radio = aioble.Radio()
    link = lockble.BleLink(aioble.bind(radio), unit.session, unit.advert, uuid=bluetooth.UUID, adv_ms=200)
    out = {}

    async def world_clock():
        while True:
            world.advance(10)
            await asyncio.sleep_ms(10)

    async def phone():
        p = aioble.SimPhone(radio, mtu=mtu)
        await asyncio.sleep_ms(100)
        ads = p.scan()
        out["advertised"] = [a.adv_data == lockadv.advertisement(_LOCK_ID, unit.batt.pct(), unit.ctx.flags())
                             for a in ads]
        out["adv_pct"] = ads[0].adv_data[-2] if ads else None
        conn = await p.connect(ads[0].addr, 2000)
        resp, ks = await auth(conn, unit.keystore.keys.tk, _LOCK_ID, rights)
        out["result_mac_ok"] = resp[-16:] == lockcrypto.fmac(ks, 0x4C, 0, resp[:-16])
        out["status"] = resp[6] if resp[0] == 3 else -resp[1]
        await asyncio.sleep_ms(2000)
        out["bolt"] = world.bolt
        out["state"] = unit.mech.state
        await conn.disconnect()

    async def main():
        clock = asyncio.create_task(world_clock())
        runner = asyncio.create_task(unit.run([link]))
        await phone()
        link.stop()
        runner.cancel()
        clock.cancel()
        await asyncio.sleep_ms(50)

    asyncio.run(main())
    out["motor"] = world.motor()
    out["motor_ms"] = world.motor_ms
    return out
