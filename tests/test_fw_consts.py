"""One code table: the firmware modules' private protocol consts are lockcodes' numbers.

The device modules carry the protocol numbers they use as ``_NAME = const(n)``
(folded into the bytecode by the compiler: no module globals, no qstrs, no heap on
the unit); ``firmware/lib/lockcodes.py`` stays the firmware's one table, checked
against lockproto by ``tests/test_host_codes.py``. This test checks every private
const named after a lockcodes entry against it, so the two cannot drift apart.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

LIB = Path(__file__).resolve().parent.parent / "firmware" / "lib"


def _table() -> dict[str, object]:
    ns: dict[str, object] = {}
    exec(compile((LIB / "lockcodes.py").read_text(), "lockcodes.py", "exec"), ns)
    return {k: v for k, v in ns.items() if k.isupper() and not k.startswith("_")}


def _module_values(path: Path) -> dict[str, object]:
    """Top-level ``_NAME = const(literal)`` and ``_NAME = literal`` of one module."""
    out: dict[str, object] = {}
    for node in ast.parse(path.read_text()).body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            continue
        name, value = node.targets[0].id, node.value
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "const":
            value = value.args[0]
        try:
            out[name] = ast.literal_eval(value)
        except ValueError:
            continue
    return out


MODULES = sorted(p for p in LIB.glob("*.py") if p.name != "lockcodes.py")


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.stem)
def test_private_protocol_consts_match_lockcodes(path):
    table = _table()
    vals = _module_values(path)
    wrong = {n: (v, table[n[1:]]) for n, v in vals.items() if n.startswith("_") and n[1:] in table
             and v != table[n[1:]]}
    assert wrong == {}, f"{path.name}: (module value, lockcodes value) {wrong}"


def test_the_consts_are_checked_at_all():
    """The parse finds the numbers the unlock path uses (a broken parse would pass vacuously)."""
    found = {n for p in MODULES for n in _module_values(p) if n.startswith("_") and n[1:] in _table()}
    assert {"_E_OK", "_E_BAD_MAC", "_T_AUTH", "_OP_UNLOCK", "_EV_UNLOCK", "_B_UNLOCKED", "_FW_VERSION"} <= found


def test_a_wrong_private_const_is_caught(tmp_path):
    bad = tmp_path / "lockbad.py"
    bad.write_text("from micropython import const\n_E_BAD_MAC = const(10)\n")
    vals = _module_values(bad)
    assert vals["_E_BAD_MAC"] != _table()["E_BAD_MAC"]


def test_no_device_module_loads_the_table():
    """lockcodes is the source of truth for people and tests; the unit never imports it."""
    importers = [p.name for p in MODULES if "import lockcodes" in p.read_text() or "from lockcodes" in p.read_text()]
    assert importers == []
