"""`make demo` keeps working: the district demo and the protocol demo run to the end with the expected outcomes."""

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


def test_district_demo_runs(tmp_path):
    """The front door: key server, a simulated district provisioned through it, a carer's day."""
    res = subprocess.run([sys.executable, str(ROOT / "demo" / "district_demo.py"), "--dir", str(tmp_path / "d")],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    out = res.stdout
    assert "finder at Skolegade 1    REFUSED: REVOKED" in out
    assert "(relayed: re-key to epoch 2)" in out and "re-key state at the key server: done" in out
    assert "Bo    at Åvænget 22     opened" in out          # the alarm key
    assert "Anna  at Bakkevej 9     REFUSED: BATTERY_CRITICAL" in out   # explicit, never silent
    assert "Bakkevej 9" in out.split("Battery change list")[1]
    assert "!! expected" not in out
    pw = (tmp_path / "d" / "admin-password").read_text().strip()
    assert pw and pw not in out                              # no credential is printed
