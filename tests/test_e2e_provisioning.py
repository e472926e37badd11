"""The whole path of a lock, as the people who run it do it (issue: provisioning and flashing).

A blank simulated unit (MicroPython's REPL on a pty) -> ``flash.py`` -> the flashed firmware
boots -> ``lockctl provision`` registers it with a real key server process (SQLite) -> the
unit is mounted in a simulated district (the fleet simulator adopts its flash) -> the key
server issues the carer a ticket bundle -> the carer's simulated phone unlocks over the
radio hub -> the visit happens -> the phone collects the journal and uploads it -> the
visit is in the key server's visit report. Then the lock is re-keyed over the air and
the carer's old ticket (the old epoch) is refused by the lock.
"""

from __future__ import annotations

import glob
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

import mpyhost
from ks_support import ADMIN_PW, CARER_PW, ServerProcess
from ptyunit import on_pty
from lockproto import Err, Op, PhoneSession, ProtocolError
from provisioning.gatt import GattTransport, sim_radio_link

pytestmark = pytest.mark.mpy
ROOT = Path(__file__).resolve().parent.parent
AIOBLE = ROOT / "simulator" / "sim_aioble" / "package.json"


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, cwd=ROOT, **kw)


def lockctl(*args):
    r = run([sys.executable, "-m", "provisioning", *map(str, args)])
    assert r.returncode == 0, (args, r.stderr)
    return r.stdout


def locksim(state, *args):
    r = run([sys.executable, "-m", "simulator.cli", "--state", str(state), *map(str, args)])
    assert r.returncode == 0, (args, r.stderr)
    return r.stdout


class Fleet:
    def __init__(self, state: Path):
        self.state = state
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen([sys.executable, "-m", "simulator.cli", "--state", str(self.state), "start",
                                      "--locks", "1", "--procs", "1", "--factory"], cwd=ROOT,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        end = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("fleet failed: " + self.proc.stderr.read())
            f = self.state / "fleet.json"
            if f.exists() and json.loads(f.read_text()).get("supervisor") == self.proc.pid:
                return
            if time.monotonic() > end:
                raise RuntimeError("fleet did not start")
            time.sleep(0.2)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def test_blank_unit_to_a_visit_in_the_report_then_rekeyed(tmp_path):
    # ---- the municipality's key server ----
    key = tmp_path / "master.key"
    server = ServerProcess(f"sqlite:///{tmp_path / 'ks.db'}", key, tmp_path / "server.log")
    server.init()
    server.start()
    fleet = Fleet(tmp_path / "district")
    try:
        api = httpx.Client(base_url=server.base, timeout=30)

        def call(method, path, token, **kw):
            r = api.request(method, "/api/v1" + path, headers={"Authorization": f"Bearer {token}"}, **kw)
            assert r.status_code < 300, (path, r.status_code, r.text)
            return r.json()

        admin = api.post("/api/v1/auth/login", json={"username": "root", "password": ADMIN_PW}).json()["token"]
        district = call("POST", "/districts", admin, json={"name": "Holstebro Nord"})["id"]
        home = call("POST", "/homes", admin, json={"citizen_ref": "C-0017", "address": "Lillegade 3",
                                                   "district_id": district})["id"]
        anna = call("POST", "/staff", admin, json={"username": "anna", "role": "carer", "full_name": "Anna",
                                                  "password": CARER_PW})["id"]
        call("POST", "/grants", admin, json={"staff_id": anna, "district_id": district, "rights": 1 | 2 | 4})
        anna_sess = api.post("/api/v1/auth/login", json={"username": "anna", "password": CARER_PW}).json()["token"]
        anna_phone = call("POST", "/phones", anna_sess, json={"label": "Anna's phone"})["token"]
        # IT's own tool: the admin's phone token for tickets with ADMIN, a session token to register and re-key
        root_id = call("GET", "/auth/me", admin)["id"]
        call("POST", "/grants", admin, json={"staff_id": root_id, "district_id": district, "rights": 15})
        it_phone = call("POST", "/phones", admin, json={"label": "IT bench"})["token"]
        tokens = tmp_path / "tokens"
        tokens.mkdir(mode=0o700)
        (tokens / "admin").write_text(admin)
        (tokens / "it").write_text(it_phone)
        (tokens / "anna").write_text(anna_phone)

        # ---- the locksmith: a blank unit, flashed ----
        fs = tmp_path / "unit"
        fs.mkdir()
        with on_pty([mpyhost.micropython_binary(), "-i"], cwd=fs, stderr=None) as (port, repl):
            time.sleep(0.3)
            try:
                r = run([sys.executable, "flash.py", "--port", port, "--board", "sim", "--skip-esptool",
                         "--aioble-from", str(AIOBLE)])
                assert r.returncode == 0, r.stderr
            finally:
                repl.kill()

        # ---- IT: the flashed firmware boots; lockctl provisions it against the key server ----
        boot = ("import sys\nsys.path[:0] = ['lib', %r]\nexec(open('boot.py').read())\nexec(open('main.py').read())\n"
                % str(ROOT / "firmware" / "lib"))
        ks = ["--keyserver", server.base, "--admin-token-file", tokens / "admin", "--token-file", tokens / "it"]
        with on_pty([mpyhost.micropython_binary(), "-X", "heapsize=2m", "-c", boot], cwd=fs) as (port, _):
            assert "factory" in lockctl("--port", port, "hello")
            out = lockctl("--port", port, *ks, "provision", "Lillegade 3", "--board", "sim", "--home", home)
            lock_id = out.split("lock ")[1].split(",")[0]
            assert call("GET", f"/locks/{lock_id}", admin)["home_id"] == home
            assert key.read_bytes() not in out.encode() and admin not in out
        # the cable is unplugged: the bench unit stops

        # ---- mounted in the district: the simulator adopts the unit's flash ----
        fleet.start()
        fleet.stop()
        (flash,) = glob.glob(str(fleet.state / "**" / "flash.bin"), recursive=True)
        shutil.copyfile(fs / "lockdata.bin", flash)
        fleet.start()
        name = json.loads(locksim(fleet.state, "status", "--json"))[0]["lock"]
        radio = f"{fleet.state}:{name}"

        # ---- the carer's day: unlock over the radio with the bundle's ticket, the visit ----
        bundle = call("POST", "/phone/bundle", anna_phone, json={"hours": 2})
        (entry,) = [e for e in bundle["locks"] if e["lock_id"] == lock_id]
        old_ticket = entry["tickets"][0]
        assert "unlocked" in lockctl("--sim", radio, "--keyserver", server.base, "--token-file", tokens / "anna",
                                     "unlock")
        locksim(fleet.state, "advance", 2000)
        locksim(fleet.state, "door", name, "open")
        locksim(fleet.state, "advance", 60_000)
        locksim(fleet.state, "door", name, "close")
        locksim(fleet.state, "advance", 30_000)   # the unit relocks by itself
        out = lockctl("--sim", radio, "--keyserver", server.base, "--token-file", tokens / "anna", "journal")
        assert "new records uploaded" in out
        now = int(time.time())
        visits = call("GET", "/reports/visits", admin, params={"home_id": home, "start": now - 86400, "end": now + 86400})
        assert any(v["staff_id"] == anna for v in visits), visits

        # ---- re-key over the air; the old epoch's ticket is refused by the lock ----
        assert "re-keyed: epoch 2" in lockctl("--sim", radio, *ks, "rekey")
        t = GattTransport(sim_radio_link(str(fleet.state), name), timeout=10)
        try:
            ps = PhoneSession(bytes.fromhex(old_ticket["ticket"]), bytes.fromhex(old_ticket["k_t"]), t.hello())
            with pytest.raises(ProtocolError) as e:
                ps.read(t.request(ps.auth(Op.UNLOCK)))
            assert e.value.code == Err.WRONG_EPOCH
        finally:
            t.close()
        # and the fresh bundle's epoch-2 ticket opens it
        assert "unlocked" in lockctl("--sim", radio, "--keyserver", server.base, "--token-file", tokens / "anna",
                                     "unlock")
    finally:
        fleet.stop()
        server.kill()
