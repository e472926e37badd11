"""lockctl over the fleet simulator: provisioned on a unit's pty (the cable), then driven over
the simulated radio (the BLE transport's GATT core on the radio hub), the real firmware behind."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lockproto import Err, provision_message
from provisioning import LockClient
from provisioning.gatt import GattTransport, advert_lock_id, sim_radio_link

pytestmark = pytest.mark.mpy
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def fleet(tmp_path):
    state = tmp_path / "fleet"
    proc = subprocess.Popen([sys.executable, "-m", "simulator.cli", "--state", str(state), "start", "--locks", "2",
                             "--procs", "1", "--pty", "--factory"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        end = time.monotonic() + 60
        def ready():
            f = state / "fleet.json"
            return (state / "ptys.json").exists() and f.exists() and \
                json.loads(f.read_text()).get("supervisor") == proc.pid
        while not ready():   # the ports are open and the fleet's control ports are recorded
            if proc.poll() is not None or time.monotonic() > end:
                raise RuntimeError("fleet did not start: " + proc.stderr.read())
            time.sleep(0.2)
        yield state, json.loads((state / "ptys.json").read_text())
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def lockctl(*args):
    return subprocess.run([sys.executable, "-m", "provisioning", *args], capture_output=True, text=True,
                          timeout=90, cwd=ROOT)


def test_provision_on_the_cable_then_work_over_the_radio(fleet):
    state, ptys = fleet
    issuer = str(state / "issuer.json")
    name = sorted(ptys)[0]
    r = lockctl("--port", ptys[name], "--issuer", issuer, "provision", name)
    assert r.returncode == 0, r.stderr
    radio = ["--sim", f"{state}:{name}", "--issuer", issuer]
    r = lockctl(*radio, "hello")
    assert r.returncode == 0 and "epoch     1" in r.stdout and "factory" not in r.stdout, r.stderr
    for verb in ("unlock", "status", "journal", "rekey", "unlock"):
        r = lockctl(*radio, verb)
        assert r.returncode == 0, (verb, r.stderr)
    assert "epoch     2" in lockctl(*radio, "hello").stdout
    # the other lock is still in factory mode and refuses a session
    other = sorted(ptys)[1]
    r = lockctl("--sim", f"{state}:{other}", "--issuer", issuer, "unlock")
    assert r.returncode == 1 and "FACTORY_MODE" in r.stderr


def test_provision_is_refused_over_the_radio(fleet):
    state, ptys = fleet
    name = sorted(ptys)[1]
    t = GattTransport(sim_radio_link(str(state), name), timeout=10)
    try:
        t.hello()
        resp = t.request(provision_message(b"LK\x00\x00\x00\x00\x00\x07", 1, bytes(32), int(time.time())))
        assert resp[0] == 5 and resp[1] == Err.UNKNOWN_TYPE   # the key never crosses the radio
        h = LockClient(t).hello()
        assert h.epoch == 0
    finally:
        t.close()


def test_a_lock_out_of_range_is_a_clear_error(fleet):
    state, ptys = fleet
    r = lockctl("--sim", f"{state}:NOPE", "hello")
    assert r.returncode == 1 and r.stderr.startswith("lockctl: no lock 'NOPE' in the fleet")


def test_advertisement_filter():
    assert advert_lock_id({0xFFFF: bytes([1]) + b"LKLKLKLK" + bytes([90, 0])}) == b"LKLKLKLK"
    assert advert_lock_id({0xFFFF: bytes([2]) + b"LKLKLKLK" + bytes([90, 0])}) is None   # unknown format
    assert advert_lock_id({0x004C: bytes(11)}) is None                                    # someone else's
