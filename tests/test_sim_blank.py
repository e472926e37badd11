"""A blank simulated unit (simulator/ptyport.BlankPort): MicroPython's raw REPL on a pty,
driven by the real mpremote as flash.py drives a board."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from simulator.ptyport import BlankPort

pytestmark = pytest.mark.mpy

MPREMOTE = Path(sys.executable).parent / "mpremote"


@pytest.mark.skipif(not MPREMOTE.exists(), reason="mpremote is not installed in this environment")
def test_mpremote_drives_a_blank_unit(tmp_path):
    port = BlankPort("B0001", tmp_path / "fs")
    try:
        def mpr(*args):
            return subprocess.run([str(MPREMOTE), "connect", port.path, "resume", *args], capture_output=True,
                                  text=True, timeout=60)
        r = mpr("exec", "import sys; print(sys.implementation.name, 6 * 7)")
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == "micropython 42"
        # copy a module onto the unit's filesystem and import it there
        src = tmp_path / "hello.py"
        src.write_text("def answer():\n    return 'from the unit'\n")
        r = mpr("fs", "cp", str(src), ":hello.py")
        assert r.returncode == 0, r.stderr
        assert (tmp_path / "fs" / "hello.py").read_text() == src.read_text()
        r = mpr("exec", "import hello; print(hello.answer())")
        assert r.returncode == 0 and r.stdout.strip() == "from the unit"
        # an error on the unit comes back as mpremote's failure, and the REPL lives on
        r = mpr("exec", "raise ValueError('boom')")
        assert r.returncode != 0 and "ValueError: boom" in (r.stdout + r.stderr)
        assert mpr("exec", "print('alive')").stdout.strip() == "alive"
    finally:
        asyncio.run(port.close())
