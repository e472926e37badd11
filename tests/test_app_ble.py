"""End to end on one simulated unit: boot, advertise over the fake radio, unlock by a phone, bolt opens."""

from __future__ import annotations

from pathlib import Path

import pytest

import mpyhost
from lockproto import Bolt, Err, Right

pytestmark = pytest.mark.mpy
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def w():
    paths = [ROOT / "simulator" / "sim_aioble", ROOT / "tests" / "mpy"]
    with mpyhost.Worker(["e2eunit"], paths=paths, heapsize="4m") as worker:
        yield worker


@pytest.mark.parametrize("mtu", [23, 185])
def test_phone_unlocks_a_booted_unit_over_ble(w, mtu):
    out = w.call("e2eunit.run", str(ROOT / "boards"), int(Right.UNLOCK | Right.LOCK), mtu)
    assert out["advertised"] == [True]
    assert out["adv_pct"] == 90  # the sim's 6000 mV: 1500 mV a cell, 90 % on the alkaline curve
    assert out["result_mac_ok"] and out["status"] == Err.OK
    assert out["bolt"] == 100 and out["state"] == Bolt.UNLOCKED


def test_ticket_without_unlock_right_never_moves_the_bolt(w):
    out = w.call("e2eunit.run", str(ROOT / "boards"), int(Right.LOCK), 185)
    assert out["result_mac_ok"] and out["status"] == Err.NO_RIGHT
    assert out["bolt"] == 0 and out["state"] == Bolt.LOCKED and out["motor_ms"] == 0 and out["motor"] == 0
