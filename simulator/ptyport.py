"""A pty per simulated lock that behaves like the unit's USB serial port.

The desktop owns the pty pair: the slave side (``/dev/pts/N``) is what pyserial,
mpremote or the provisioning tool opens; the master side is bridged byte for byte to
the lock's serial port in its fleet host (a loopback TCP connection opened with
``SERIAL <lock>``), where the firmware's ``lockserial.SerialLink`` speaks the framed
maintenance link. The slave is put in raw mode (no echo, no line discipline), as a USB
CDC port is; the bridge keeps one slave descriptor open itself so the port survives
clients opening and closing it.
"""

from __future__ import annotations

import asyncio
import os
import tty


class PtyPort:
    """One lock's pty, bridged to its fleet host's serial endpoint on ``port``."""

    def __init__(self, lock: str, port: int) -> None:
        self.lock = lock
        self.host_port = port
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.path = os.ttyname(self._slave)
        os.set_blocking(self.master, False)
        self._task: asyncio.Task | None = None
        self.bytes_in = 0
        self.bytes_out = 0

    async def start(self) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.host_port)
        writer.write(f"SERIAL {self.lock}\n".encode())
        await writer.drain()
        self._writer = writer
        loop = asyncio.get_running_loop()
        loop.add_reader(self.master, self._from_pty)
        self._task = asyncio.create_task(self._to_pty(reader))

    def _from_pty(self) -> None:
        try:
            data = os.read(self.master, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return
        if data:
            self.bytes_in += len(data)
            self._writer.write(data)

    async def _to_pty(self, reader: asyncio.StreamReader) -> None:
        while True:
            data = await reader.read(4096)
            if not data:
                break
            self.bytes_out += len(data)
            view = memoryview(data)
            while view:
                try:
                    n = os.write(self.master, view)
                    view = view[n:]
                except BlockingIOError:
                    await asyncio.sleep(0.005)

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        loop.remove_reader(self.master)
        if self._task is not None:
            self._task.cancel()
        self._writer.close()
        os.close(self.master)
        os.close(self._slave)


class BlankPort:
    """A blank (unflashed) unit's USB serial: MicroPython's REPL, raw REPL included, on a pty.

    What a freshly flashed ESP32 offers before any lock firmware is copied to it. The unix
    port's interpreter runs with the pty master as its console and the unit's filesystem
    directory ``fs_dir`` as its working directory, so ``mpremote connect /dev/pts/N resume
    exec ...`` and ``mpremote ... fs cp file :file`` drive it like a board (the esptool step
    has no twin). ``heapsize`` caps its heap like the chip's RAM does.
    """

    def __init__(self, name: str, fs_dir: str | os.PathLike, heapsize: str = "256k") -> None:
        import subprocess

        import mpyhost

        self.lock = name
        self.fs_dir = os.fspath(fs_dir)
        os.makedirs(self.fs_dir, exist_ok=True)
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.path = os.ttyname(self._slave)
        env = dict(os.environ)
        env.pop("MICROPYPATH", None)  # a blank board has only what is copied onto it
        self.proc = subprocess.Popen([mpyhost.micropython_binary(), "-X", f"heapsize={heapsize}"], stdin=self.master,
                                     stdout=self.master, stderr=self.master, cwd=self.fs_dir, env=env)

    async def start(self) -> None:
        """Nothing to bridge: the interpreter owns the master side."""

    async def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except Exception:
                self.proc.kill()
                self.proc.wait()
        os.close(self.master)
        os.close(self._slave)
