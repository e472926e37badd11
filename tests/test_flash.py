"""flash.py against a simulated blank unit: MicroPython's REPL on a real pty, driven by
mpremote exactly as a real ESP32's USB serial (only the esptool step has no twin)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

import mpyhost
from ptyunit import on_pty

pytestmark = pytest.mark.mpy
ROOT = Path(__file__).resolve().parent.parent
AIOBLE = ROOT / "simulator" / "sim_aioble" / "package.json"


@pytest.fixture
def blank(tmp_path):
    """A blank unit: the MicroPython REPL on a pty, its filesystem a fresh directory."""
    fs = tmp_path / "flash"
    fs.mkdir()
    with on_pty([mpyhost.micropython_binary(), "-i"], cwd=fs, stderr=None) as (path, proc):
        time.sleep(0.3)
        try:
            yield path, fs
        finally:
            proc.kill()


def flash(*args):
    return subprocess.run([sys.executable, str(ROOT / "flash.py"), *args], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)


def test_flash_a_blank_simulated_unit_then_it_runs_the_copied_firmware(blank):
    port, fs = blank
    r = flash("--port", port, "--board", "sim", "--skip-esptool", "--aioble-from", str(AIOBLE))
    assert r.returncode == 0, r.stderr
    assert "esptool skipped" in r.stdout and "factory mode" in r.stdout
    lib = fs / "lib"
    mods = {p.stem for p in lib.glob("*.mpy")}
    assert {"lockapp", "locksession", "lockcrypto", "lockble", "lockserial", "lockhal_esp32"} <= mods
    assert not mods & {"lockcompat", "lockhal_sim", "lockhal_simio"}   # host-only modules stay home
    assert (fs / "boot.py").read_bytes() == (ROOT / "firmware" / "boot.py").read_bytes()
    board = json.loads((fs / "board.json").read_text())
    assert board["name"] == "sim" and "notes" not in board
    assert (lib / "aioble" / "core.py").read_bytes() == (ROOT / "simulator/sim_aioble/aioble/core.py").read_bytes()
    assert not (fs / "lock").exists()   # factory mode: no key slot
    # the copied bytecode is what runs: a sim unit built from the flashed lib/ unlocks
    code = (f"import sys\nsys.path.insert(0, {str(lib)!r})\n"
            "import lockapp, locksession\n"
            "assert lockapp.__file__.endswith('.mpy') and locksession.__file__.endswith('.mpy'), lockapp.__file__\n"
            + (ROOT / "tests" / "mpy" / "unitheap.py").read_text().replace(
                'lockhal.load_board("sim", BOARDS)', f'lockhal.load_board("board", {str(fs)!r})'))
    res = mpyhost.run(code=code, heapsize="1m", paths=[ROOT / "firmware" / "lib"])
    assert res.ok and res.stdout.strip() == "UNLOCKED", res.stderr


def test_flash_refuses_a_provisioned_unit(blank):
    port, fs = blank
    # a unit flashed before and provisioned since: boot.py's test finds a key slot on its
    # data partition (the unit's esp32 and storage modules, reduced to that answer)
    (fs / "esp32.py").write_text("class Partition:\n    TYPE_DATA = 1\n\n"
                                 "    @staticmethod\n    def find(kind, label=None):\n        return [label]\n")
    (fs / "lockhal.py").write_text("def load_board(name, d):\n    return {'storage': {'partition': 'lock'}}\n")
    (fs / "lockstore.py").write_text("def provisioned(part):\n    return part == 'lock'\n")
    r = flash("--port", port, "--board", "sim", "--skip-esptool", "--aioble-from", str(AIOBLE))
    assert r.returncode == 1 and r.stderr.startswith("flash.py: the unit is provisioned")
    assert not (fs / "lib").exists()


def test_clear_errors():
    r = flash("--board", "no-such-board", "--port", "/dev/null", "--skip-esptool")
    assert r.returncode == 1 and "unknown board 'no-such-board'" in r.stderr and "esp32-devkitc" in r.stderr
    r = flash("--board", "esp32-devkitc", "--port", "/dev/null", "--firmware", "/nonexistent.bin")
    assert r.returncode == 1 and r.stderr == "flash.py: firmware image /nonexistent.bin not found\n"
    r = flash("--board", "esp32-devkitc", "--port", "/dev/does-not-exist", "--skip-esptool",
              "--aioble-from", str(AIOBLE))
    assert r.returncode == 1 and r.stderr.startswith("flash.py: talking to the unit failed")
    assert "Traceback" not in r.stderr


def test_dry_run_prints_every_step_and_touches_nothing(tmp_path):
    image = tmp_path / "ESP32_GENERIC-v1.29.0.bin"
    image.write_bytes(b"\xe9" + bytes(100))
    r = flash("--board", "esp32-devkitc", "--port", "/dev/ttyUSB9", "--firmware", str(image), "--dry-run")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "esptool --chip esp32 --port /dev/ttyUSB9 erase-flash" in out
    assert f"write-flash 0x1000 {image}" in out
    assert "mip install --target lib aioble" in out and "[7/7] verify every copied file by SHA-256" in out
    r = flash("--board", "esp32-c3-devkitm", "--port", "/dev/ttyUSB9", "--firmware", str(image), "--dry-run")
    assert "--chip esp32c3" in r.stdout and "write-flash 0x0 " in r.stdout


def test_version_mismatch_is_caught_before_anything_is_copied(tmp_path):
    sys.path.insert(0, str(ROOT))
    try:
        import flash as flashmod
    finally:
        sys.path.pop(0)
    args = flashmod.parser().parse_args(["--board", "sim", "--port", "/dev/null", "--skip-esptool"])
    f = flashmod.Flasher(args)
    try:
        f.device_mpy = 5   # a unit with an older MicroPython (.mpy v5)
        with pytest.raises(flashmod.FlashError, match="version mismatch"):
            f._compile()
        assert hashlib.sha256(b"").hexdigest()  # nothing was sent: files are only gathered locally
    finally:
        f.cleanup()


def test_flashed_sim_unit_boots_its_main_py_unchanged_and_is_provisioned(blank, tmp_path):
    """After flash.py the simulated unit restarts into the copied boot.py and main.py (the
    firmware's own entry point, unchanged) on the simulator twin, and lockctl provisions it."""
    port, fs = blank
    r = flash("--port", port, "--board", "sim", "--skip-esptool", "--aioble-from", str(AIOBLE))
    assert r.returncode == 0, r.stderr
    # power-cycle: now served by the flashed firmware (host-only sim modules come from the
    # repository, as a real unit's come from its MicroPython image)
    run = ("import sys\nsys.path[:0] = ['lib', %r]\n"
           "exec(open('boot.py').read())\nexec(open('main.py').read())\n" % str(ROOT / "firmware" / "lib"))
    with on_pty([mpyhost.micropython_binary(), "-X", "heapsize=2m", "-c", run], cwd=fs) as (path, _):
        issuer = tmp_path / "issuer.json"
        ctl = [sys.executable, "-m", "provisioning", "--port", path, "--issuer", str(issuer)]
        r = subprocess.run(ctl + ["hello"], capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert r.returncode == 0 and "factory" in r.stdout, r.stderr
        r = subprocess.run(ctl + ["provision", "door-9"], capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert r.returncode == 0, r.stderr
        r = subprocess.run(ctl + ["unlock"], capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert r.returncode == 0 and "unlocked" in r.stdout, r.stderr
        assert (fs / "lockdata.bin").stat().st_size > 0   # the unit's flash partition twin
