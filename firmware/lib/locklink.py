# Run/stop plumbing shared by the transports (lockble, lockserial): run()
# serves until stop(), pausing after errors; stop() is final and sets a flag,
# which catches a cancellation that asyncio's wait_for or an aioble timeout
# absorbed (the connection in hand still ends cleanly).
import asyncio

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

_BACKOFF_MS = const(1000)


class Link:
    # subclasses define `async def _cycle(self)`; _pause_always: pause after
    # every cycle, not only after an error (a serial port that ended)
    _pause_always = False

    def __init__(self):
        self._task = None
        self._stopped = False

    async def run(self):
        self._task = asyncio.current_task()
        try:
            while not self._stopped:
                pause = self._pause_always
                try:
                    await self._cycle()
                except Exception:
                    pause = True
                if pause and not self._stopped:
                    await asyncio.sleep_ms(_BACKOFF_MS)
        finally:
            self._task = None

    def stop(self):
        self._stopped = True
        t = self._task
        if t is not None and t is not asyncio.current_task():
            t.cancel()
