# Runs under MicroPython with a pty as stdin and stdout: one whole simulated door
# unit (DoorUnit on the simulator HAL, factory mode) whose serial maintenance link
# is wired exactly as on a unit (lockserial.StdioStream, PROVISION accepted), until
# the host closes the port. The simulated world runs in real time; a restart of
# the unit (after a factory reset) boots it again on the same state.
# argv: boards dir
import sys
import asyncio
import lockhal
import lockhal_sim
import lockapp
import lockserial
from lockkeys import RamKV
from lockjournal import RamRecords


def main():
    board = lockhal.load_board("sim", sys.argv[1])
    world = lockhal_sim.SimWorld(board)
    kv, records = RamKV(), RamRecords(512)
    stream = lockserial.StdioStream(sys.stdin.buffer, sys.stdout.buffer)

    async def serve(link):
        try:
            await link.serve()
        except OSError:
            pass  # the host closed the port

    async def life():
        while True:
            unit = lockapp.DoorUnit(lockhal.wire(board, lockhal_sim.SimHal(world)), kv, records)
            link = lockserial.SerialLink(stream, unit.session, provision=unit.provision_request)
            serial = asyncio.create_task(serve(link))
            try:
                while not serial.done():
                    world.advance(20)
                    unit.poll()
                    await asyncio.sleep_ms(20)
                return  # the host closed the port
            except lockhal_sim.SimHalted:
                serial.cancel()   # the unit restarted: boot it again
                await asyncio.sleep_ms(0)

    try:
        asyncio.run(life())
    except OSError:
        pass


main()
