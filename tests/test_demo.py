"""`make demo` keeps working: the protocol demo runs to the end with the expected outcomes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.mpy

ROOT = Path(__file__).resolve().parent.parent


def test_protocol_demo_runs():
    res = subprocess.run([sys.executable, str(ROOT / "demo" / "protocol_demo.py")], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert "replayed AUTH          UNLOCK       -> refused: BAD_MAC" in out
    assert "Anna's lost phone      UNLOCK       -> refused: REVOKED" in out
    assert "Bo, old-epoch key      UNLOCK       -> refused: WRONG_EPOCH" in out
    assert "the lock's proof of the new key verifies: True" in out
    assert "12 records, chain verified by the server" in out
    assert "The door is LOCKED." in out
