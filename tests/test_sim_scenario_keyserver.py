"""`locksim run --keyserver`: a district day on a real key server process (SQLite).

The scenario's phones are the provisioning library's CarerApp on phone tokens of the
server: every bundle, time token, journal upload and re-key proof goes through the
server's HTTP API, and the server's clock follows the simulation through its
KEYSERVER_CLOCK_FILE."""

from __future__ import annotations

import asyncio
import copy
import subprocess
import sys

import httpx
import pytest

from ks_support import *  # noqa: F401,F403
from ks_support import admin_login, running_server
from simulator.ksdistrict import write_clock
from simulator.scenario import ScenarioError, run_scenario, scenario_from_dict
from test_sim_scenario import SMALL

pytestmark = pytest.mark.mpy


@pytest.fixture
def server(tmp_path, key_file, monkeypatch):
    """A key server on a simulated clock; sessions outlive the simulated day."""
    sc = scenario_from_dict(copy.deepcopy(SMALL))
    clock = tmp_path / "clock"
    write_clock(clock, sc.start)
    monkeypatch.setenv("KEYSERVER_CLOCK_FILE", str(clock))
    monkeypatch.setenv("KEYSERVER_SESSION_LIFETIME", str(3 * 86400))
    with running_server("sqlite", tmp_path, key_file) as srv:
        srv.clock = clock
        yield srv


def test_district_day_on_the_key_server(server, tmp_path):
    day = copy.deepcopy(SMALL)
    # ann comes by L0003 after its cells were changed: her phone relays the server's time token
    day["visit"] = [{"lock": "L0003", "carer": "ann", "at": "10:30", "minutes": 10}]
    sc = scenario_from_dict(day)
    token = admin_login(server)
    report = asyncio.run(run_scenario(sc, state_dir=tmp_path / "st", keyserver=server.base, admin_token=token,
                                      clock_file=server.clock))
    d = report.data
    # the same day as on the local issuer: L0003's critical cells refuse one visit, the rest open
    assert d["visits"]["planned"] == 9 and d["visits"]["done"] == 8, d["visit_log"]
    assert d["refusals"] == {"BATTERY_CRITICAL": 1}, d["visit_log"]
    assert d["visits"]["relocked_by_phone"] == 8
    # the courier duties: the server's re-key, its deny list (after bob's loss) and a time token
    assert d["relays"]["re-key"] == 1 and d["relays"]["time token"] >= 1 and d["relays"]["deny list"] >= 1, \
        d["relays"]
    # the server's re-key went to L0001 with ann's phone, and the server saw the proof
    assert "L0001: re-key to epoch 2 delivered by ann's phone" in d["events"], d["events"]
    st = {s["lock"]: s for s in d["lock_status"]}
    assert st["L0001"]["epoch"] == 2
    assert st["L0003"]["boots"] == 2 and not st["L0003"]["uncertain"]
    # bob's lost phone: revoked at the server; a colleague's phone carried the deny list to
    # L0002 before the finder came, and bob's replacement phone kept working
    assert any("finder" in e and "REVOKED (lock held)" in e for e in d["events"]), d["events"]
    assert st["L0002"]["deny"] >= 1
    assert all(v["result"] == "ok" for v in d["visit_log"] if v["carer"] == "bob")
    # the journals reached the server: its visit report has the day's visits
    assert d["journal"]["problems"] == 0 and d["journal"]["ingested"] > 8 * 4
    ks = d["keyserver"]
    assert ks["visits_reported"] >= 8
    h = {"Authorization": f"Bearer {token}"}
    rk = httpx.get(ks["reports"]["visits"], headers=h, timeout=30)
    assert rk.status_code == 200 and len(rk.json()) == ks["visits_reported"]
    locks = httpx.get(server.base + "/api/v1/locks", headers=h, timeout=30).json()
    assert len(locks) == 4 and all(lk["epoch"] >= 1 for lk in locks)
    assert sorted(lk["epoch"] for lk in locks) == [1, 1, 1, 2]
    # the server's clock followed the simulation to the end of the day
    now = httpx.get(server.base + "/healthz", timeout=30).json()["now"]
    assert now == sc.start + int(sc.hours * 3600)
    assert "key server http://127.0.0.1:" in report.text()


def test_a_key_server_on_real_time_is_refused(tmp_path, key_file, monkeypatch):
    monkeypatch.delenv("KEYSERVER_CLOCK_FILE", raising=False)
    sc = scenario_from_dict(copy.deepcopy(SMALL))
    with running_server("sqlite", tmp_path, key_file) as srv:
        with pytest.raises(ScenarioError, match="KEYSERVER_CLOCK_FILE"):
            asyncio.run(run_scenario(sc, state_dir=tmp_path / "st", keyserver=srv.base,
                                     admin_token=admin_login(srv), clock_file=tmp_path / "clock"))


def test_cli_key_server_options_are_checked(tmp_path):
    f = tmp_path / "s.toml"
    f.write_text('[district]\nname = "x"\n[locks]\ncount = 1\n')

    def run(*args):
        return subprocess.run([sys.executable, "-m", "simulator.cli", "run", str(f), *args],
                              capture_output=True, text=True, timeout=60)
    r = run("--keyserver", "http://127.0.0.1:9")
    assert r.returncode == 1 and r.stderr.startswith("locksim: --keyserver needs --admin-token-file"), r.stderr
    r = run("--clock-file", str(tmp_path / "c"))
    assert r.returncode == 1 and "go with --keyserver" in r.stderr
    empty = tmp_path / "token"
    empty.write_text("\n")
    r = run("--keyserver", "http://127.0.0.1:9", "--admin-token-file", str(empty), "--clock-file", str(tmp_path / "c"))
    assert r.returncode == 1 and "is empty" in r.stderr
    r = run("--keyserver", "http://127.0.0.1:9", "--admin-token-file", str(tmp_path / "nope"),
            "--clock-file", str(tmp_path / "c"))
    assert r.returncode == 1 and "No such file" in r.stderr


def test_a_phone_on_the_simulated_clock_finds_its_tickets(server):
    """KeyServerSource.ticket checks a ticket's end against the phone's clock: on a test bench
    whose day lies in the past that must be the simulated clock, not the machine's."""
    from provisioning.keysource import KeyServerSource, SourceError
    from simulator.ksdistrict import KeyServerDistrict
    sc = scenario_from_dict(copy.deepcopy(SMALL))
    d = KeyServerDistrict(server.base, admin_login(server), "Clock Test", clock_file=server.clock)
    try:
        lid, epoch, _ = d.register_lock("L0001")
        token = d.add_carer("ann", ["L0001"], 1 | 2 | 4)
    finally:
        d.close()
    real = KeyServerSource(server.base, token, shift_hours=8)
    with pytest.raises(SourceError, match="no ticket"):
        real.ticket(lid, epoch, 1)   # the machine's clock is months past the simulated day
    sim = KeyServerSource(server.base, token, shift_hours=8, clock=lambda: sc.start)
    t = sim.ticket(lid, epoch, 1)
    assert len(t.ticket) == 41
    real.close()
    sim.close()
