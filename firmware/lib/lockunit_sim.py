# A simulated unit's life on the MicroPython unix port: the same firmware
# main.py as on an ESP32 (lockapp.main) with the strict simulator twin of the
# hardware instead of machine/esp32. The world runs in real time; a reset of
# the unit (watchdog, factory reset, an error in production) boots it again
# in the same process on the same world and flash, as a real unit restarts.
# Never copied to a unit (flash.py HOST_ONLY).
import asyncio
import time
import lockhal
from lockhal_sim import SimWorld, SimHal, SimHalted

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

_STEP_MS = const(10)


class WorldClock:
    # advances the world by the real time that passed; a link of DoorUnit.run
    def __init__(self, world, step_ms=_STEP_MS):
        self.world = world
        self.step_ms = step_ms
        self._stop = False

    async def run(self):
        last = time.ticks_ms()
        n = 0
        while not self._stop:
            await asyncio.sleep_ms(self.step_ms)
            now = time.ticks_ms()
            cause = self.world.advance(max(0, time.ticks_diff(now, last)))
            last = now
            if cause is not None:
                raise SimHalted("reset")  # the watchdog bit: the unit restarts
            n += 1
            if n % 50 == 0 and _port_gone():
                raise SimHalted("switched off")  # main() sees the port gone and ends

    def stop(self):
        self._stop = True


def _port_gone():
    # the host side of the unit's serial pty was closed for good: the simulated
    # unit is switched off (a real unit's USB console survives a cable pull)
    import select
    import sys
    p = select.poll()
    p.register(sys.stdin, select.POLLIN)
    for _, ev in p.poll(0):
        if ev & (select.POLLHUP | select.POLLERR):
            return True
    return False


def main(board, run_unit, mount, flash_path="lockdata.bin", max_boots=None):
    # run_unit(hw, mount, extra_links, ble) is lockapp's; returns when the unit
    # stops for good (the serial port went away), or after max_boots boots
    world = SimWorld(board)
    world.flash_path = flash_path
    boots = 0
    while max_boots is None or boots < max_boots:
        boots += 1
        hw = lockhal.wire(board, SimHal(world))
        try:
            run_unit(hw, mount, (WorldClock(world),), False)
            return
        except SimHalted:
            if _port_gone():
                return
            # reset: boot again
        except OSError:
            return  # the host closed the serial port
