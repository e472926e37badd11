"""The web UI in a real headless Chromium (Debian's chromium + chromium-driver, driven by Selenium).

The key server runs as a real uvicorn process on SQLite (ks_support.ServerProcess); a
district is set up through the HTTP API the way IT and the phones would (journals are
written with lockproto's encoder, the lock's own format, and uploaded by a carer's
phone). Screenshots of the main pages go to tests/artifacts/web/.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import re
import shutil
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from lockproto import Event

from ks_support import ADMIN_PW, CARER_PW, KS, FirmwareLock, ServerProcess, build_world

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
    pytest.skip("needs Debian's chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver): "
                "apt-get install -y chromium chromium-driver", allow_module_level=True)
webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (pip install -e '.[test]')")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from test_ks_reports import SimJournal, visit  # noqa: E402  (the lock's journal format, from the reports tests)

ARTIFACTS = Path(__file__).resolve().parent / "artifacts" / "web"
ZONE = ZoneInfo("Europe/Copenhagen")
# the visits happened yesterday from 09:00 local time; battery readings lead up to it (all relative to today,
# so the battery forecasts and the 30-day change list mean the same whenever the test runs)
_YESTERDAY = dt.datetime.now(ZONE).date() - dt.timedelta(days=1)
DAY = _YESTERDAY.isoformat()
T0 = int(dt.datetime.combine(_YESTERDAY, dt.time(9, 0), ZONE).timestamp())


class Site:
    pass


@pytest.fixture(scope="module")
def site(tmp_path_factory, fw):
    """A key server process with a small district: three homes with locks, two carers with phones and
    tickets, a day of visits with a plan, battery readings of three weeks, and each lock's HELLO (from
    the firmware's own session code under MicroPython) reported by a phone."""
    tmp = tmp_path_factory.mktemp("web")
    key = tmp / "master.key"
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(os.urandom(32).hex())
    srv = ServerProcess(f"sqlite:///{tmp / 'ks.db'}", key, tmp / "server.log")
    srv.init()
    srv.start()
    client = httpx.Client(base_url=srv.base, timeout=60)
    try:
        k = KS(None, client, None)
        k.admin = k.login("root", ADMIN_PW)
        w = build_world(k, n_locks=3)
        a = k.admin
        bob = k.call("POST", "/api/v1/staff", a, 201, json={"username": "bob", "role": "carer", "full_name": "Bob Berg",
                                                            "password": CARER_PW}).json()["id"]
        bob_session = k.login("bob", CARER_PW)
        bob_phone = k.call("POST", "/api/v1/phones", bob_session, 201, json={"label": "Bob's phone"}).json()
        k.call("POST", "/api/v1/grants", a, 201, json={"staff_id": bob, "district_id": w.district, "rights": 3})
        k.call("POST", "/api/v1/staff", a, 201, json={"username": "pia", "role": "planner", "full_name": "Pia Plan",
                                                      "password": "planner password 1"})
        # both carers pick up their shift's tickets: live tickets on every lock of the district
        k.call("POST", "/api/v1/phone/bundle", w.phone_token, 200, json={})
        k.call("POST", "/api/v1/phone/bundle", bob_phone["token"], 200, json={})
        # journals: three weeks of battery readings, then a day of visits
        js = [SimJournal(keys) for keys in w.keys]
        for d in range(21):  # lock 0: 10 mV a day from 5200 mV; lock 1: 45 mV a day from 5300 mV
            t = T0 - (20 - d) * 86400 - 3 * 3600
            js[0].add(t, Event.BATTERY, arg16=5200 - 10 * d, arg=70)
            js[1].add(t, Event.BATTERY, arg16=5300 - 45 * d, arg=35)
        js[2].add(T0 - 86400, Event.BATTERY, arg16=5900, arg=95)
        visit(js[0], w.carer, T0, 30)                 # Anna at C-0000 09:00, 30 min, on time
        visit(js[1], w.carer, T0 + 3600 + 600, 20)    # Anna at C-0001 10:10, ten minutes late
        visit(js[0], bob, T0 + 3 * 3600, 45)          # Bob at C-0000 12:00, unplanned
        visit(js[2], bob, T0 + 4 * 3600 - 300, 25)    # Bob at C-0002 12:55, five minutes early
        js[1].add(T0 + 2 * 3600, Event.JAM)            # the bolt jammed once at C-0001
        for j, lid in zip(js, w.locks):
            j.upload(k, w.phone_token, lid)
        for i, (master, lid) in enumerate(zip(w.masters, w.locks)):  # a phone met each lock today: HELLO hints
            # lock 2 lost power and has not had a time token since: its HELLO says TIME_UNCERTAIN
            hello = FirmwareLock(fw, master, bytes.fromhex(lid), int(time.time()), deny_version=1,
                                 uncertain=i == 2).connect()
            k.call("POST", "/api/v1/phone/hello", w.phone_token, 200, json={"hello": hello.hex()})
        plan = [{"staff_id": w.carer, "home_id": w.homes[0], "start": T0, "end": T0 + 1800},
                {"staff_id": w.carer, "home_id": w.homes[1], "start": T0 + 3600, "end": T0 + 3600 + 1800},
                {"staff_id": bob, "home_id": w.homes[2], "start": T0 + 4 * 3600, "end": T0 + 4 * 3600 + 1800},
                {"staff_id": bob, "home_id": w.homes[1], "start": T0 + 6 * 3600, "end": T0 + 6 * 3600 + 1800}]
        k.call("POST", "/api/v1/plan", a, 201, json={"visits": plan})
        # the response centre hands Anna an alarm key to C-0002; IT starts a re-key of lock 2
        k.call("POST", "/api/v1/integration/alarm-keys", a, 201, json={
            "username": "anna", "citizen_ref": "C-0002", "minutes": 60, "reason": "alarm call 4711"})
        k.call("POST", f"/api/v1/locks/{w.locks[2]}/rekey", a, 201, json={})
        s = Site()
        s.srv, s.k, s.w, s.bob, s.bob_phone = srv, k, w, bob, bob_phone
        yield s
    finally:
        client.close()
        srv.kill()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never fetch a driver or browser
    profile = tmp_path_factory.mktemp("chromium-profile")
    downloads = tmp_path_factory.mktemp("downloads")
    opts = Options()
    opts.binary_location = CHROMIUM
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1280,900"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    opts.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                           "download.prompt_for_download": False})
    drv = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    drv.set_page_load_timeout(60)
    drv.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    drv.downloads = downloads
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        yield drv
    finally:
        drv.quit()


def shot(drv, name: str) -> Path:
    """A full-page PNG of what the browser shows now."""
    height = drv.execute_script("return Math.max(document.body.scrollHeight, document.documentElement.scrollHeight)")
    width = drv.get_window_size()["width"]
    drv.set_window_size(width, min(max(900, height + 140), 4000))
    p = ARTIFACTS / f"{name}.png"
    assert drv.save_screenshot(str(p)), f"no screenshot {p}"
    drv.set_window_size(width, 900)
    return p


def wait_h1(drv, text: str):
    WebDriverWait(drv, 20).until(EC.text_to_be_present_in_element((By.TAG_NAME, "h1"), text))


def sign_in(drv, site, username="root", password=ADMIN_PW):
    drv.delete_all_cookies()
    drv.get(site.srv.base + "/ui/login")
    drv.find_element(By.ID, "username").send_keys(username)
    drv.find_element(By.ID, "password").send_keys(password)
    drv.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()


def local(t: int, fmt: str) -> str:
    return dt.datetime.fromtimestamp(t, ZONE).strftime(fmt)


def test_sign_in_refuses_a_wrong_password_then_signs_in_by_keyboard(browser, site):
    drv = browser
    drv.delete_all_cookies()
    drv.get(site.srv.base + "/ui/")  # no session: sent to the sign-in page, coming back here after
    wait_h1(drv, "Sign in")
    assert "/ui/login?next=" in drv.current_url
    shot(drv, "01-sign-in")
    sign_in(drv, site, password="not the password at all")
    wait_h1(drv, "Not signed in")
    assert "wrong user name or password" in drv.find_element(By.CSS_SELECTOR, ".reason").text
    assert drv.get_cookie("ks_session") is None
    shot(drv, "02-wrong-password")
    # keyboard only: the user name field has focus, Tab to the password, Enter submits
    drv.delete_all_cookies()
    drv.get(site.srv.base + "/ui/login?next=%2Fui%2Fbattery")
    active = drv.switch_to.active_element
    assert active.get_attribute("id") == "username"
    active.send_keys("root", Keys.TAB)
    drv.switch_to.active_element.send_keys(ADMIN_PW, Keys.ENTER)
    wait_h1(drv, "Batteries")
    cookie = drv.get_cookie("ks_session")
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict" and cookie["path"] == "/ui"
    assert drv.execute_script("return document.cookie").find("ks_session") == -1  # not readable by script
    # the skip link is the first stop of Tab and moves focus to the main content
    drv.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
    first = drv.switch_to.active_element
    assert first.text == "Skip to content"
    first.send_keys(Keys.ENTER)
    assert drv.switch_to.active_element.get_attribute("id") == "main"
    # a carer has no web session
    sign_in(drv, site, "anna", CARER_PW)
    wait_h1(drv, "Not signed in")
    assert "carers use the phone app" in drv.find_element(By.CSS_SELECTOR, ".reason").text


def test_dashboard_and_main_pages(browser, site):
    drv, w = browser, site.w
    sign_in(drv, site)
    wait_h1(drv, "Locks and their health")
    rows = drv.find_elements(By.CSS_SELECTOR, "#locks tbody tr")
    assert sorted(r.get_attribute("data-lock") for r in rows) == sorted(w.locks)
    # a phone reported each lock's HELLO today: seen, deny list in step (v1 / v1), no problem flagged
    for r in rows:
        assert "never" not in r.text and "not seen" not in r.text
        assert r.find_element(By.CSS_SELECTOR, "td.deny-version").text.startswith("v1 / v1")
        assert not r.find_elements(By.CSS_SELECTOR, "td.deny-version .badge")
    problems = {r.get_attribute("data-lock"): r.find_element(By.CSS_SELECTOR, "td:last-child").text for r in rows}
    assert problems == {w.locks[0]: "none", w.locks[1]: "1 jams in 30 days", w.locks[2]: "time uncertain"}
    tiles = drv.find_element(By.CSS_SELECTOR, "ul.tiles").text
    assert "2\nwith problems" in tiles and "1\ntime uncertain" in tiles and "1\njammed (30 days)" in tiles
    assert "1\nbatteries due in 30 days" in tiles
    shot(drv, "03-dashboard")
    for path, h1, name in [("/ui/districts", "Districts", "04-districts"), ("/ui/staff", "Staff", "05-staff"),
                           ("/ui/homes", "Homes", "06-homes"), ("/ui/access", "Access", "07-access"),
                           (f"/ui/staff/{w.carer}", "Anna", "08-person"),
                           (f"/ui/locks/{w.locks[0]}", "Lock", "09-lock"),
                           ("/ui/keys", "Re-keys", "10-keys")]:
        drv.get(site.srv.base + path)
        wait_h1(drv, h1)
        assert drv.find_elements(By.CSS_SELECTOR, "main table"), path
        shot(drv, name)
    drv.get(site.srv.base + "/ui/keys")
    rekeys = drv.find_elements(By.CSS_SELECTOR, "#rekeys tbody tr")
    assert len(rekeys) == 1 and w.locks[2] in rekeys[0].text and "1 → 2" in rekeys[0].text
    assert "pending" in rekeys[0].text and "over the air" in rekeys[0].text
    alarms = drv.find_elements(By.CSS_SELECTOR, "#alarms tbody tr")
    assert len(alarms) == 1 and "alarm call 4711" in alarms[0].text and "Anna" in alarms[0].text
    assert "C-0002" in alarms[0].text and "active" in alarms[0].text
    # filtered by person and action: only Bob's tickets; the audit log only re-key entries
    from selenium.webdriver.support.ui import Select

    Select(drv.find_element(By.ID, "f-staff")).select_by_visible_text("Bob Berg")
    drv.find_element(By.ID, "f-action").send_keys("rekey")
    drv.find_element(By.CSS_SELECTOR, "form.filters button[type=submit]").click()
    WebDriverWait(drv, 20).until(EC.url_contains("action=rekey"))
    assert {r.find_elements(By.TAG_NAME, "td")[0].text
            for r in drv.find_elements(By.CSS_SELECTOR, "#tickets tbody tr")} == {"Bob Berg"}
    assert not drv.find_elements(By.CSS_SELECTOR, "#alarms tbody tr td a")  # Anna's alarm key is filtered out
    drv.get(site.srv.base + "/ui/keys?action=rekey")
    assert [r.find_elements(By.TAG_NAME, "td")[2].text
            for r in drv.find_elements(By.CSS_SELECTOR, "#audit tbody tr")] == ["rekey.start"]
    drv.get(site.srv.base + "/ui/keys")
    issued = drv.find_elements(By.CSS_SELECTOR, "#tickets tbody tr")
    api = site.k.call("GET", "/api/v1/tickets", site.k.admin, 200).json()
    assert len(issued) == len(api) == 6  # two carers x three locks
    # a tablet in portrait: the navigation wraps, nothing needs a mouse
    drv.set_window_size(768, 1024)
    drv.get(site.srv.base + "/ui/")
    wait_h1(drv, "Locks")
    assert drv.execute_script("return document.documentElement.scrollWidth") <= 768
    drv.save_screenshot(str(ARTIFACTS / "11-dashboard-tablet.png"))
    drv.set_window_size(1280, 900)


def test_grant_with_a_time_window_from_the_form(browser, site):
    drv, w, k = browser, site.w, site.k
    sign_in(drv, site)
    wait_h1(drv, "Locks")
    grants = len(k.call("GET", f"/api/v1/grants?staff_id={w.carer}", k.admin, 200).json())
    drv.get(site.srv.base + f"/ui/access?staff_id={w.carer}#new-grant")
    wait_h1(drv, "Access")
    from selenium.webdriver.support.ui import Select

    Select(drv.find_element(By.ID, "g-target")).select_by_value(f"home:{w.homes[2]}")
    # time fields take the keyboard in the locale's own format (AM/PM or 24 h): set their values directly
    drv.execute_script("arguments[0].value = '08:00'; arguments[1].value = '15:30'",
                       drv.find_element(By.ID, "g-ws"), drv.find_element(By.ID, "g-we"))
    for d in ("Mon", "Wed"):
        drv.find_element(By.CSS_SELECTOR, f"input[name=days][value={d}]").click()
    drv.find_element(By.ID, "g-reason").send_keys("weekday mornings")
    drv.find_element(By.CSS_SELECTOR, "#new-grant button[type=submit]").click()
    WebDriverWait(drv, 20).until(EC.url_contains("created="))
    made = [g for g in k.call("GET", f"/api/v1/grants?staff_id={w.carer}", k.admin, 200).json()
            if g["reason"] == "weekday mornings"]
    assert len(made) == 1
    g = made[0]
    assert (g["home_id"], g["win_start"], g["win_end"], g["win_days"], g["rights"]) == \
        (w.homes[2], 8 * 60, 15 * 60 + 30, 0b101, 3)
    assert "08:00–15:30, Mon, Wed" in drv.find_element(By.CSS_SELECTOR, "#grants").text
    # a window with only one end is refused with the reason, and nothing is created
    drv.get(site.srv.base + f"/ui/access?staff_id={w.carer}")
    Select(drv.find_element(By.ID, "g-target")).select_by_value(f"home:{w.homes[2]}")
    drv.execute_script("arguments[0].value = '08:00'", drv.find_element(By.ID, "g-ws"))
    drv.find_element(By.CSS_SELECTOR, "#new-grant button[type=submit]").click()
    wait_h1(drv, "Invalid input")
    assert "both ends of the daily window" in drv.find_element(By.CSS_SELECTOR, ".reason").text
    assert len(k.call("GET", f"/api/v1/grants?staff_id={w.carer}", k.admin, 200).json()) == grants + 1


def test_visits_page_chart_and_csv_export(browser, site):
    drv, k = browser, site.k
    sign_in(drv, site)
    wait_h1(drv, "Locks")
    drv.get(site.srv.base + f"/ui/visits?day={DAY}")
    wait_h1(drv, f"Visits on {DAY}")
    rows = [r.text for r in drv.find_elements(By.CSS_SELECTOR, "#visits tbody tr")]
    assert [r.split()[0] for r in rows] == ["09:00", "10:10", "12:00", "12:55"]
    plan = drv.find_element(By.ID, "plan").text
    assert "done" in plan and "missed" in plan
    assert "4 planned: 3 done, 1 missed; 1 unplanned" in drv.find_element(By.TAG_NAME, "main").text
    # the duration chart has one bar per visit; punctuality one per planned visit done, late in red
    assert len(drv.find_elements(By.CSS_SELECTOR, "svg.durations rect.bar")) == 4
    assert len(drv.find_elements(By.CSS_SELECTOR, "svg.punctuality rect.late")) == 1
    assert len(drv.find_elements(By.CSS_SELECTOR, "svg.punctuality rect.early")) == 1
    shot(drv, "12-visits")
    drv.find_element(By.ID, "csv").click()
    target = drv.downloads / f"visits-{DAY}.csv"
    deadline = time.monotonic() + 20
    while not target.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert target.exists(), list(drv.downloads.iterdir())
    got = list(csv.DictReader(io.StringIO(target.read_text())))
    api = list(csv.DictReader(io.StringIO(k.call("GET", f"/api/v1/reports/visits?day={DAY}&format=csv",
                                                 k.admin, 200).text)))
    assert got == api and len(got) == 4
    assert [(r["staff_name"], r["citizen_ref"], r["duration_min"]) for r in got] == [
        ("Anna", "C-0000", "30.0"), ("Anna", "C-0001", "20.0"), ("Bob Berg", "C-0000", "45.0"),
        ("Bob Berg", "C-0002", "25.0")]
    # filtered by carer: the export follows the filter
    drv.get(site.srv.base + f"/ui/visits?day={DAY}&staff_id={site.bob}&group_by=home")
    assert len(drv.find_elements(By.CSS_SELECTOR, "#visits tbody tr")) == 2
    assert f"staff_id={site.bob}" in drv.find_element(By.ID, "csv").get_attribute("href")
    assert len(drv.find_elements(By.CSS_SELECTOR, "#summary tbody tr")) == 2
    # a bad day is a 422 page naming the field
    drv.get(site.srv.base + "/ui/visits?day=30.11.2026")
    wait_h1(drv, "Invalid input")
    assert "day must be a date" in drv.find_element(By.CSS_SELECTOR, ".reason").text
    target.unlink()


def test_battery_pages(browser, site):
    drv, w, k = browser, site.w, site.k
    sign_in(drv, site)
    wait_h1(drv, "Locks")
    drv.get(site.srv.base + "/ui/battery")
    wait_h1(drv, "Batteries")
    api = {lid: k.call("GET", f"/api/v1/reports/battery/{lid}", k.admin, 200).json() for lid in w.locks}
    assert api[w.locks[0]]["predicted_at"] and api[w.locks[1]]["predicted_at"] and not api[w.locks[2]]["predicted_at"]
    table = {r.find_element(By.CSS_SELECTOR, "th").text: r.text
             for r in drv.find_elements(By.CSS_SELECTOR, "#battery tbody tr")}
    for lid in w.locks[:2]:
        assert local(api[lid]["predicted_at"], "%Y-%m-%d") in table[lid]
    # the change list of the district within 30 days is exactly what the API says, soonest first
    due = k.call("GET", f"/api/v1/reports/battery-changes?district_id={w.district}&days=30", k.admin, 200).json()
    shown = [r.find_element(By.CSS_SELECTOR, "code").text
             for r in drv.find_elements(By.CSS_SELECTOR, f"#changes-{w.district} tbody tr") if r.find_elements(
                 By.CSS_SELECTOR, "code")]
    assert shown == [d["lock_id"] for d in due] and w.locks[1] in shown and w.locks[0] not in shown
    shot(drv, "13-battery")
    drv.find_element(By.LINK_TEXT, w.locks[0]).click()
    wait_h1(drv, "Battery of lock")
    dots = drv.find_elements(By.CSS_SELECTOR, "svg.battery-trend circle.dot")
    # the plot shows what the forecast used: the authenticated journal readings, not the HELLO hint
    hist = api[w.locks[0]]["history"]
    assert len(dots) == sum(h["source"] == "journal" for h in hist) == 21 and len(hist) == 22
    assert drv.find_elements(By.CSS_SELECTOR, "svg.battery-trend line.fit")
    assert drv.find_element(By.ID, "predicted").text == local(api[w.locks[0]]["predicted_at"], "%Y-%m-%d")
    shot(drv, "14-battery-lock")


def test_revoke_a_person_shows_the_locks_and_bumps_their_deny_lists(browser, site):
    drv, w, k = browser, site.w, site.k
    before = {lid: k.call("GET", f"/api/v1/locks/{lid}", k.admin, 200).json()["deny_version"] for lid in w.locks}
    sign_in(drv, site)
    wait_h1(drv, "Locks")
    drv.get(site.srv.base + f"/ui/staff/{site.bob}")
    wait_h1(drv, "Bob Berg")
    drv.find_element(By.PARTIAL_LINK_TEXT, "Revoke Bob Berg").click()
    wait_h1(drv, "Revoke Bob Berg?")
    affected = {r.find_element(By.CSS_SELECTOR, "th").text: r.text
                for r in drv.find_elements(By.CSS_SELECTOR, "#affected tbody tr")}
    assert set(affected) == set(w.locks)  # Bob holds a live ticket for every lock of the district
    for lid in w.locks:
        assert f"v{before[lid]} → v{before[lid] + 1}" in affected[lid]
    shot(drv, "15-revoke-confirm")
    # the confirmation page changed nothing
    assert {lid: k.call("GET", f"/api/v1/locks/{lid}", k.admin, 200).json()["deny_version"]
            for lid in w.locks} == before
    assert k.call("GET", f"/api/v1/staff/{site.bob}", k.admin, 200).json()["active"] is True
    drv.find_element(By.ID, "reason").send_keys("left the municipality")
    drv.find_element(By.ID, "confirm").click()
    wait_h1(drv, "Person revoked")
    shown = {r.find_element(By.CSS_SELECTOR, "th").text: r.text
             for r in drv.find_elements(By.CSS_SELECTOR, "#revoked tbody tr")}
    assert set(shown) == set(w.locks)
    shot(drv, "16-revoked")
    after = {lid: k.call("GET", f"/api/v1/locks/{lid}", k.admin, 200).json()["deny_version"] for lid in w.locks}
    assert after == {lid: v + 1 for lid, v in before.items()}
    # the dashboard shows the new versions
    drv.get(site.srv.base + "/ui/")
    wait_h1(drv, "Locks")
    for lid in w.locks:
        cell = drv.find_element(By.CSS_SELECTOR, f'tr[data-lock="{lid}"] td.deny-version')
        assert cell.find_element(By.CSS_SELECTOR, ".num").text == f"v{after[lid]}"
        # the lock still announces the old list until a phone relays the new one
        assert "behind" in cell.find_element(By.CSS_SELECTOR, ".badge").text
        assert "deny list behind" in drv.find_element(By.CSS_SELECTOR, f'tr[data-lock="{lid}"]').text
    shot(drv, "17-dashboard-after-revoke")
    # Bob's phone gets nothing any more, and the audit log says who did it and why
    k.call("POST", "/api/v1/phone/bundle", site.bob_phone["token"], 401, json={})
    log = k.call("GET", "/api/v1/audit?action=revoke", k.admin, 200).json()
    assert log[0]["subject"] == f"staff:{site.bob}" and log[0]["detail"]["reason"] == "left the municipality"
    # revoking again: the person page offers no button, and the action itself is refused with a reason
    drv.get(site.srv.base + f"/ui/staff/{site.bob}")
    assert not drv.find_elements(By.PARTIAL_LINK_TEXT, "Revoke Bob Berg")
    drv.get(site.srv.base + f"/ui/staff/{site.bob}/revoke")
    wait_h1(drv, "Conflict")
    assert "bob was already revoked" in drv.find_element(By.CSS_SELECTOR, ".reason").text
    drv.get(site.srv.base + f"/ui/staff/{k.call('GET', '/api/v1/auth/me', k.admin, 200).json()['id']}/revoke")
    wait_h1(drv, "Conflict")
    assert "cannot revoke yourself" in drv.find_element(By.CSS_SELECTOR, ".reason").text


def test_revoke_a_phone_from_the_person_page(browser, site):
    drv, w, k = browser, site.w, site.k
    before = {lid: k.call("GET", f"/api/v1/locks/{lid}", k.admin, 200).json()["deny_version"] for lid in w.locks}
    sign_in(drv, site)
    wait_h1(drv, "Locks")
    drv.get(site.srv.base + f"/ui/staff/{w.carer}")
    drv.find_element(By.LINK_TEXT, "Revoke this phone…").click()
    wait_h1(drv, "Revoke phone")
    assert {r.find_element(By.CSS_SELECTOR, "th").text
            for r in drv.find_elements(By.CSS_SELECTOR, "#affected tbody tr")} == set(w.locks)
    drv.find_element(By.ID, "confirm").click()
    wait_h1(drv, "Phone revoked")
    after = {lid: k.call("GET", f"/api/v1/locks/{lid}", k.admin, 200).json()["deny_version"] for lid in w.locks}
    assert after == {lid: v + 1 for lid, v in before.items()}
    k.call("POST", "/api/v1/phone/bundle", w.phone_token, 401, json={})
    assert k.call("GET", f"/api/v1/staff/{w.carer}", k.admin, 200).json()["active"] is True  # the person stays


@pytest.fixture(scope="module", autouse=True)
def _keep_server_log(site, request):
    yield
    if request.session.testsfailed:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(site.srv.log, ARTIFACTS / "server.log")


def test_no_page_loads_anything_from_elsewhere(browser, site):
    drv = browser
    sign_in(drv, site)
    wait_h1(drv, "Locks")
    drv.get_log("browser")  # drop what earlier tests logged (their deliberate 4xx pages)
    for path in ("/ui/", "/ui/visits?day=" + DAY, "/ui/battery", f"/ui/battery/{site.w.locks[0]}", "/ui/access",
                 "/ui/keys", "/ui/staff", "/ui/homes", f"/ui/staff/{site.w.carer}"):
        drv.get(site.srv.base + path)
        srcs = drv.execute_script(
            "return Array.from(document.querySelectorAll('[src],[href]')).map(e => e.src || e.href)")
        outside = [u for u in srcs if u and not u.startswith(site.srv.base) and not re.match(r"^(#|javascript:)", u)]
        assert outside == [], outside
        # and nothing on it breaks the Content-Security-Policy (no inline script or style) or fails to load
        problems = [e["message"] for e in drv.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
        assert problems == [], problems


def test_a_new_home_and_carer_and_her_phone_from_the_pages(browser, site):
    """IT without the HTTP API: a home, a carer with a password, her phone registered on her page; the token
    read off the page (shown once) is the phone's key to the phone API."""
    from selenium.webdriver.support.ui import Select

    drv, w, k = browser, site.w, site.k
    password = "Cecilie's first password"
    sign_in(drv, site)
    wait_h1(drv, "Locks")
    drv.get_log("browser")
    drv.get(site.srv.base + "/ui/homes")
    wait_h1(drv, "Homes")
    drv.find_element(By.ID, "nh-ref").send_keys("C-0100")
    drv.find_element(By.ID, "nh-address").send_keys("Skovvej 4")
    Select(drv.find_element(By.ID, "nh-district")).select_by_value(str(w.district))
    drv.find_element(By.CSS_SELECTOR, "#new-home button[type=submit]").click()
    WebDriverWait(drv, 20).until(EC.url_contains("created="))
    assert "Home C-0100 created in Nord" in drv.find_element(By.CSS_SELECTOR, "p.notice").text
    home = next(h for h in k.call("GET", "/api/v1/homes", k.admin, 200).json() if h["citizen_ref"] == "C-0100")
    assert (home["address"], home["district_id"]) == ("Skovvej 4", w.district)
    # the same citizen again: the API's 409, as a page
    drv.find_element(By.ID, "nh-ref").send_keys("C-0100")
    Select(drv.find_element(By.ID, "nh-district")).select_by_value(str(w.district))
    drv.find_element(By.CSS_SELECTOR, "#new-home button[type=submit]").click()
    wait_h1(drv, "Conflict")
    assert "a home for citizen 'C-0100' exists" in drv.find_element(By.CSS_SELECTOR, ".reason").text
    drv.get_log("browser")  # drop the deliberate 409's console line
    # a carer with an initial password
    drv.get(site.srv.base + "/ui/staff")
    wait_h1(drv, "Staff")
    drv.find_element(By.ID, "np-username").send_keys("cecilie")
    drv.find_element(By.ID, "np-name").send_keys("Cecilie Holm")
    Select(drv.find_element(By.ID, "np-role")).select_by_value("carer")
    Select(drv.find_element(By.ID, "np-district")).select_by_value(str(w.district))
    drv.find_element(By.ID, "np-password").send_keys(password)
    shot(drv, "18-new-person")
    drv.find_element(By.CSS_SELECTOR, "#new-person button[type=submit]").click()
    wait_h1(drv, "Cecilie Holm")
    assert "created=1" in drv.current_url
    assert "created as a carer with an initial password" in drv.find_element(By.CSS_SELECTOR, "p.notice").text
    assert password not in drv.page_source
    cecilie = next(x for x in k.call("GET", "/api/v1/staff", k.admin, 200).json() if x["username"] == "cecilie")
    assert (cecilie["role"], cecilie["district_id"], cecilie["has_password"]) == ("carer", w.district, True)
    k.login("cecilie", password)  # the password the form set opens an API session
    # her phone, registered on her page: the token is on the result page once, and nowhere in its URL
    drv.find_element(By.ID, "ph-label").send_keys("Cecilie's work phone")
    drv.find_element(By.CSS_SELECTOR, "#register-phone button[type=submit]").click()
    wait_h1(drv, "registered for Cecilie Holm")
    token = drv.find_element(By.ID, "token").text.strip()
    assert len(token) >= 40 and drv.page_source.count(token) == 1 and token not in drv.current_url
    assert "shown once: copy it into the phone app now" in drv.find_element(By.CSS_SELECTOR, ".once").text
    shot(drv, "19-phone-token")
    assert [e["message"] for e in drv.get_log("browser") if e["level"] in ("SEVERE", "WARNING")] == []
    r = k.client.post("/api/v1/phone/bundle", headers={"Authorization": f"Bearer {token}"}, json={})
    assert r.status_code == 200 and r.json()["locks"] == []  # no grant yet: a valid bundle with no tickets
    phones = k.call("GET", f"/api/v1/phones?staff_id={cecilie['id']}", k.admin, 200).json()
    assert [p["label"] for p in phones] == ["Cecilie's work phone"]
    # back on her page the phone is listed and the token is gone for good
    drv.find_element(By.PARTIAL_LINK_TEXT, "Done: back to").click()
    wait_h1(drv, "Cecilie Holm")
    assert "Cecilie's work phone" in drv.find_element(By.ID, "phones").text and token not in drv.page_source
    # the server's log has neither the password nor the token
    log = site.srv.log.read_text(errors="replace")
    assert token not in log and password not in log
