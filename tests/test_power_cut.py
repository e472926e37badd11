"""Exhaustive power-cut sweep under the real MicroPython (tests/mpy/flashsweep.py).

A whole door unit on the sim board's flash twin; for every program/erase index of a
journal append (across a block boundary), an acknowledgement, a re-key, a deny-list
update, an append that overwrites the oldest block and the provisioning of a blank
unit and of one reset after an earlier life, a settings change and the boot itself,
and for each tear (none, the
first byte, word, half a slot, the record but not its CRC, all but the CRC's last byte,
the whole write, and two bit-by-bit tears: a write that cleared only some of its bits,
an erase that left the block half erased), power is cut there, the unit
reboots and the invariants are checked: every record reported durable is present and
verifies in the chain; the key slot holds the old or the new key; the deny list is the
old or the new version, a setting the old or the new value; an operation that returned
is never undone; a unit being
provisioned is either still in factory mode or provisioned whole (identity, key, a
journal from chain_0).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import mpyhost

pytestmark = pytest.mark.mpy
ROOT = Path(__file__).resolve().parent.parent
MPY = ROOT / "tests" / "mpy"
# bytes of the cut write that land (None: none); negative: that many, the rest bit by bit
TEARS = [None, 1, 4, 18, 32, 35, 4000, -1, -18]


SCRIPT = """
import json
import flashsweep
r = flashsweep.sweep(BOARDS, NAME, TEARS, BLOCKS)
print("RESULT " + json.dumps(r))
"""


def _sweep(name, blocks):
    # a process per operation: a dead boot's littlefs files may be finalised by the GC
    # later (on a dead flash Port, which drops everything) and print their errors on stdout
    code = SCRIPT.replace("BOARDS", repr(str(ROOT / "boards"))).replace("NAME", repr(name)) \
        .replace("TEARS", repr(TEARS)).replace("BLOCKS", repr(blocks))
    res = mpyhost.run(code=code, paths=[MPY], heapsize="4m", timeout=600)
    assert res.ok, res.stderr + res.stdout[-2000:]
    last = res.stdout.strip().splitlines()[-1]
    assert last.startswith("RESULT ")
    return json.loads(last[len("RESULT "):])


@pytest.mark.parametrize("name,blocks", [("append", None), ("ack", None), ("rekey", None), ("deny", None),
                                         ("overflow", 16 + 3), ("provision", None), ("reprovision", None),
                                         ("config", None), ("boot", None)])
def test_every_cut_point_keeps_the_invariants(name, blocks):
    r = _sweep(name, blocks)
    assert r["writes"] >= {"append": 5, "overflow": 3, "provision": 6, "reprovision": 6}.get(name, 2)  # it really writes that much
    assert r["points"] == r["writes"] * len(TEARS) + 1
    assert r["completed"] >= 1  # the uncut run completes
    assert r["nerrors"] == 0, r["errors"]
    print(f"{name}: {r['writes']} writes, {r['points']} cut points")
