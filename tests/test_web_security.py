"""The web UI's security and error rules over HTTP, on SQLite and PostgreSQL: the session cookie's
flags, CSRF on every form POST (and on the sign-in form), roles, the revocation preview
changing nothing, and a 4xx page with a reason for every bad input."""

from __future__ import annotations

import html
import re

import pytest
from fastapi.testclient import TestClient

from ks_support import *  # noqa: F401,F403
from ks_support import ADMIN_PW, CARER_PW, build_world

PLANNER_PW = "planner password 1"


def reason(r) -> str:
    m = re.search(r'class="reason" data-reason="([^"]*)">([^<]*)<', r.text)
    assert m, r.text[:2000]
    return m.group(1) + ": " + html.unescape(m.group(2))


def browser(ks, https=False) -> TestClient:
    return TestClient(ks.client.app, base_url="https://testserver" if https else "http://testserver")


def form_token(c: TestClient, path: str) -> str:
    r = c.get(path)
    assert r.status_code == 200, (path, r.status_code, r.text[:500])
    return re.search(r'name="csrf" value="([^"]+)"', r.text).group(1)


def sign_in(c: TestClient, username: str, password: str, expect=303, next_url=""):
    token = form_token(c, "/ui/login")
    r = c.post("/ui/login", data={"username": username, "password": password, "csrf": token, "next": next_url},
               follow_redirects=False)
    assert r.status_code == expect, (r.status_code, r.text[:1000])
    return r


@pytest.fixture
def world(ks):
    w = build_world(ks, n_locks=2)
    ks.call("POST", "/api/v1/phone/bundle", w.phone_token, 200, json={})
    ks.call("POST", "/api/v1/staff", ks.admin, 201, json={"username": "pia", "role": "planner",
                                                          "password": PLANNER_PW})
    return w


def test_session_cookie_flags_and_sign_out(ks, world):
    c = browser(ks)
    r = sign_in(c, "root", ADMIN_PW)
    cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith("ks_session="))
    flags = {f.strip().lower() for f in cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/ui"} <= flags and "secure" not in flags
    assert r.headers["location"] == "/ui/"
    page = c.get("/ui/")
    assert page.status_code == 200 and "Locks and their health" in page.text
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp and "form-action 'self'" in csp
    assert page.headers["x-frame-options"] == "DENY" and page.headers["cache-control"] == "no-store"
    # the cookie holds an API session token: signing out revokes it for the API too
    session = c.cookies.get("ks_session")
    ks.call("GET", "/api/v1/auth/me", session, 200)
    csrf = form_token(c, "/ui/")
    r = c.post("/ui/logout", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/ui/login"
    ks.call("GET", "/api/v1/auth/me", session, 401)
    c.cookies.set("ks_session", session, path="/ui")
    r = c.get("/ui/staff", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/ui/login?next=%2Fui%2Fstaff"
    # over https the cookie is Secure
    s = browser(ks, https=True)
    r = sign_in(s, "root", ADMIN_PW)
    cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith("ks_session="))
    assert "secure" in {f.strip().lower() for f in cookie.split(";")[1:]}


def test_sign_in_needs_its_form_token_and_counts_failures(ks, world):
    c = browser(ks)
    r = c.post("/ui/login", data={"username": "root", "password": ADMIN_PW, "csrf": "x"}, follow_redirects=False)
    assert r.status_code == 403 and reason(r).startswith("csrf:") and "ks_session" not in c.cookies
    c.get("/ui/login")
    r = c.post("/ui/login", data={"username": "root", "password": ADMIN_PW, "csrf": "forged"},
               follow_redirects=False)
    assert r.status_code == 403 and "ks_session" not in c.cookies
    r = sign_in(c, "root", "wrong wrong wrong", expect=401)
    assert reason(r) == "unauthorized: wrong user name or password"
    r = sign_in(c, "nobody", "wrong wrong wrong", expect=401)
    assert reason(r) == "unauthorized: wrong user name or password"  # the same answer for an unknown name
    for _ in range(4):  # threshold 5: the account locks, the page says so with Retry-After
        sign_in(c, "root", "wrong wrong wrong", expect=401)
    r = sign_in(c, "root", ADMIN_PW, expect=429)
    assert int(r.headers["retry-after"]) >= 1 and "locked" in reason(r)


def test_open_redirects_are_not_followed(ks, world):
    for target, where in [("https://evil.example/", "/ui/"), ("//evil.example/ui/", "/ui/"),
                          ("/api/v1/staff", "/ui/"), ("/ui/battery?days=7", "/ui/battery?days=7")]:
        r = sign_in(browser(ks), "root", ADMIN_PW, next_url=target)
        assert r.headers["location"] == where, target


def test_every_form_post_checks_the_csrf_token(ks, world):
    from keyserver.web import router

    c = browser(ks)
    sign_in(c, "root", ADMIN_PW)
    good = form_token(c, "/ui/")
    staff_before = ks.call("GET", "/api/v1/staff", ks.admin, 200).json()
    locks_before = ks.call("GET", "/api/v1/locks", ks.admin, 200).json()
    audit_before = len(ks.call("GET", "/api/v1/audit?limit=10000", ks.admin, 200).json())
    ids = {"staff_id": world.carer, "phone_id": world.phone, "grant_id": world.grant, "group_id": 1}
    posts = [r for r in router.routes if "POST" in r.methods and r.path not in ("/ui/login", "/ui/{rest:path}")]
    # logout, district, group, member add/remove, grant, revoke person/phone/grant; person, home, phone,
    # integration token
    assert len(posts) == 13
    homes_before = ks.call("GET", "/api/v1/homes", ks.admin, 200).json()
    phones_before = ks.call("GET", "/api/v1/phones", ks.admin, 200).json()
    for route in posts:
        path = re.sub(r"\{(\w+)\}", lambda m: str(ids[m.group(1)]), route.path)
        for token in (None, "", good[:-1] + ("0" if good[-1] != "0" else "1"), good.upper()):
            # fields a good request would carry: only the token is wrong
            data = {"name": "X", "reason": "r", "staff_id": str(world.carer), "who": f"staff:{world.carer}",
                    "target": f"district:{world.district}", "rights": "unlock", "username": "xavier",
                    "role": "carer", "password": "a long enough password", "citizen_ref": "C-X",
                    "district_id": str(world.district), "label": "forged"}
            if token is not None:
                data["csrf"] = token
            r = c.post(path, data=data, follow_redirects=False)
            assert r.status_code == 403 and reason(r).startswith("csrf:"), (path, token, r.status_code)
    # nothing happened
    assert ks.call("GET", "/api/v1/staff", ks.admin, 200).json() == staff_before
    assert ks.call("GET", "/api/v1/locks", ks.admin, 200).json() == locks_before
    assert ks.call("GET", "/api/v1/homes", ks.admin, 200).json() == homes_before
    assert ks.call("GET", "/api/v1/phones", ks.admin, 200).json() == phones_before
    assert len(ks.call("GET", "/api/v1/audit?limit=10000", ks.admin, 200).json()) == audit_before
    # without a session a POST is 401 (and a GET goes to the sign-in page)
    anon = browser(ks)
    r = anon.post(f"/ui/staff/{world.carer}/revoke", data={"csrf": good}, follow_redirects=False)
    assert r.status_code == 401 and reason(r).startswith("unauthorized:")
    # a session of someone else does not carry this session's token
    other = browser(ks)
    sign_in(other, "pia", PLANNER_PW)
    r = other.post(f"/ui/staff/{world.carer}/revoke", data={"csrf": good}, follow_redirects=False)
    assert r.status_code == 403 and reason(r).startswith("csrf:")
    assert ks.call("GET", f"/api/v1/staff/{world.carer}", ks.admin, 200).json()["active"] is True


def test_roles_as_in_the_api(ks, world):
    carer = browser(ks)
    r = sign_in(carer, "anna", CARER_PW, expect=401)
    assert "carers use the phone app" in reason(r) and "ks_session" not in carer.cookies
    # a phone's token in the cookie is not a web session
    phone = browser(ks)
    phone.cookies.set("ks_session", world.phone_token, path="/ui")
    assert phone.get("/ui/", follow_redirects=False).status_code == 303
    pia = browser(ks)
    sign_in(pia, "pia", PLANNER_PW)
    csrf = form_token(pia, "/ui/")
    r = pia.post("/ui/districts", data={"name": "Syd", "csrf": csrf})
    assert r.status_code == 403 and "for admins" in reason(r)
    keys = pia.get("/ui/keys")
    assert keys.status_code == 200 and 'id="audit"' not in keys.text and 'id="rekeys"' not in keys.text
    assert 'id="tickets"' in keys.text  # the ticket audit is for planners too, as GET /api/v1/tickets
    admin = browser(ks)
    sign_in(admin, "root", ADMIN_PW)
    keys = admin.get("/ui/keys?action=revoke")
    assert 'id="audit"' in keys.text and 'id="rekeys"' in keys.text
    # planners revoke people as the API lets them, but never themselves
    me = ks.call("GET", "/api/v1/staff", ks.admin, 200).json()
    pia_id = next(x["id"] for x in me if x["username"] == "pia")
    r = pia.get(f"/ui/staff/{pia_id}/revoke")
    assert r.status_code == 409 and "cannot revoke yourself" in reason(r)
    r = pia.post(f"/ui/staff/{pia_id}/revoke", data={"csrf": csrf})
    assert r.status_code == 409
    assert ks.call("GET", f"/api/v1/staff/{pia_id}", ks.admin, 200).json()["active"] is True


def test_the_revocation_preview_changes_nothing_and_the_action_matches_it(ks, world):
    c = browser(ks)
    sign_in(c, "root", ADMIN_PW)
    versions = {x["lock_id"]: x["deny_version"] for x in ks.call("GET", "/api/v1/locks", ks.admin, 200).json()}
    audit = ks.call("GET", "/api/v1/audit?limit=10000", ks.admin, 200).json()
    page = c.get(f"/ui/staff/{world.carer}/revoke")
    assert page.status_code == 200
    listed = re.findall(r'<th scope="row"><code>([0-9a-f]{16})</code></th>', page.text)
    assert sorted(listed) == sorted(world.locks)
    assert ks.call("GET", "/api/v1/audit?limit=10000", ks.admin, 200).json() == audit
    assert {x["lock_id"]: x["deny_version"] for x in ks.call("GET", "/api/v1/locks", ks.admin, 200).json()} == versions
    assert ks.call("GET", f"/api/v1/staff/{world.carer}", ks.admin, 200).json()["active"] is True
    ks.call("POST", "/api/v1/phone/bundle", world.phone_token, 200, json={})  # the phone still works
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    done = c.post(f"/ui/staff/{world.carer}/revoke", data={"csrf": csrf, "reason": "test"})
    assert done.status_code == 200 and "Person revoked" in done.text
    after = {x["lock_id"]: x["deny_version"] for x in ks.call("GET", "/api/v1/locks", ks.admin, 200).json()}
    assert after == {lid: v + 1 for lid, v in versions.items()}
    entry = ks.call("GET", "/api/v1/audit?action=revoke", ks.admin, 200).json()[0]
    assert entry["detail"]["deny_versions"] == after and entry["actor_id"] is not None
    ks.call("POST", "/api/v1/phone/bundle", world.phone_token, 401, json={})


BAD_PAGES = [
    ("/ui/visits?day=2026-13-01", 422, "day must be a date"),
    ("/ui/visits?home_id=abc", 422, "home must be a whole number"),
    ("/ui/visits?group_by=color", 422, "group by home, staff, district or day"),
    ("/ui/battery?days=0", 422, "days must be between 1 and 365"),
    ("/ui/battery?district_id=999", 404, "no district 999"),
    ("/ui/battery/zz", 422, "is not 16 hex digits"),
    ("/ui/battery/0000000000000000", 404, "no lock 0000000000000000"),
    ("/ui/locks/00", 422, "is not 16 hex digits"),
    ("/ui/staff/999", 404, "no staff member 999"),
    ("/ui/staff/abc", 422, "staff_id"),
    ("/ui/staff/99999999999999999999", 422, "a number in the request is out of range"),
    ("/ui/staff?role=king", 422, "role must be"),
    ("/ui/?district_id=x", 422, "district_id must be a whole number"),
    ("/ui/?district_id=999", 404, "no district 999"),
    ("/ui/phones/999/revoke", 404, "no phone 999"),
    ("/ui/grants/999/revoke", 404, "no grant 999"),
    ("/ui/keys?lock_id=nothex", 422, "is not 16 hex digits"),
    ("/ui/keys?limit=0", 422, "limit must be between 1 and 10000"),
    ("/ui/keys?since=yesterday", 422, "since must be a date"),
    ("/ui/static/../app.py", 404, ""),
    ("/ui/no/such/page", 404, "there is no page"),
]


def test_bad_input_is_a_4xx_page_with_the_reason(ks, world):
    c = browser(ks)
    sign_in(c, "root", ADMIN_PW)
    for path, status, words in BAD_PAGES:
        r = c.get(path)
        assert r.status_code == status, (path, r.status_code, r.text[:300])
        assert r.headers["content-type"].startswith("text/html")
        if words:
            assert words in reason(r), (path, reason(r))


BAD_GRANTS = [
    ({}, "choose the person or group"),
    ({"who": "staff:x"}, "person or group must be a whole number"),
    ({"who": "staff:999", "target": "district:1", "rights": "unlock"}, "no staff member 999"),
    ({"who": "staff:{carer}"}, "choose the lock, home or district"),
    ({"who": "staff:{carer}", "target": "lock:12", "rights": "unlock"}, "lock_id must be 8 bytes"),
    ({"who": "staff:{carer}", "target": "district:{district}"}, "tick at least one right"),
    ({"who": "staff:{carer}", "target": "district:{district}", "rights": "fly"}, "unknown right"),
    ({"who": "staff:{carer}", "target": "district:{district}", "rights": "unlock", "days": "Funday"},
     "unknown weekday"),
    ({"who": "staff:{carer}", "target": "district:{district}", "rights": "unlock", "win_start": "25:00",
      "win_end": "26:00"}, "between 00:00 and 24:00"),
    ({"who": "staff:{carer}", "target": "district:{district}", "rights": "unlock", "valid_from": "tomorrow"},
     "valid from must be a date and time"),
    ({"who": "staff:{carer}", "target": "district:{district}", "rights": "unlock",
      "valid_from": "2030-01-02T10:00", "valid_until": "2030-01-01T10:00"}, "valid_until must be after valid_from"),
]


def test_a_bad_grant_form_is_refused_with_the_reason_and_nothing_is_made(ks, world):
    c = browser(ks)
    sign_in(c, "root", ADMIN_PW)
    csrf = form_token(c, "/ui/access")
    before = ks.call("GET", "/api/v1/grants?include_revoked=true", ks.admin, 200).json()
    for fields, words in BAD_GRANTS:
        data = {k: v.format(carer=world.carer, district=world.district) for k, v in fields.items()}
        r = c.post("/ui/grants", data={**data, "csrf": csrf}, follow_redirects=False)
        assert 400 <= r.status_code < 500 and words in reason(r), (fields, r.status_code, reason(r))
    assert ks.call("GET", "/api/v1/grants?include_revoked=true", ks.admin, 200).json() == before
    # and a good one is made, with the window and weekdays the form says
    r = c.post("/ui/grants", data={"who": f"staff:{world.carer}", "target": f"home:{world.homes[1]}",
                                   "rights": ["unlock", "journal"], "days": ["Sat", "Sun"], "win_start": "07:30",
                                   "win_end": "24:00", "valid_until": "2030-01-01T00:00", "csrf": csrf},
               follow_redirects=False)
    assert r.status_code == 303
    g = ks.call("GET", "/api/v1/grants", ks.admin, 200).json()[-1]
    import datetime as dt
    from zoneinfo import ZoneInfo

    until = int(dt.datetime(2030, 1, 1, tzinfo=ZoneInfo("Europe/Copenhagen")).timestamp())
    assert (g["home_id"], g["rights"], g["win_days"], g["win_start"], g["win_end"], g["valid_until"]) == \
        (world.homes[1], 1 | 4, 0b1100000, 450, 1440, until)


def test_groups_and_members_through_the_forms(ks, world):
    c = browser(ks)
    sign_in(c, "root", ADMIN_PW)
    csrf = form_token(c, "/ui/access")
    r = c.post("/ui/groups", data={"name": "Team Nord", "district_id": str(world.district), "csrf": csrf},
               follow_redirects=False)
    assert r.status_code == 303
    g = ks.call("GET", "/api/v1/groups", ks.admin, 200).json()[0]
    assert g["name"] == "Team Nord" and g["district_id"] == world.district
    assert c.post("/ui/groups", data={"name": "Team Nord", "csrf": csrf}).status_code == 409
    c.post(f"/ui/groups/{g['id']}/members", data={"staff_id": str(world.carer), "csrf": csrf})
    assert ks.call("GET", "/api/v1/groups", ks.admin, 200).json()[0]["members"] == [world.carer]
    assert "Anna" in c.get("/ui/access").text.split('id="group-')[1]
    r = c.post(f"/ui/groups/{g['id']}/members", data={"staff_id": "999", "csrf": csrf})
    assert r.status_code == 404 and "no staff member 999" in reason(r)
    c.post(f"/ui/groups/{g['id']}/members/{world.carer}/remove", data={"csrf": csrf})
    assert ks.call("GET", "/api/v1/groups", ks.admin, 200).json()[0]["members"] == []
    r = c.post(f"/ui/groups/{g['id']}/members/{world.carer}/remove", data={"csrf": csrf})
    assert r.status_code == 404


def test_revoke_a_grant_from_its_confirmation_page(ks, world):
    c = browser(ks)
    sign_in(c, "pia", PLANNER_PW)
    versions = {x["lock_id"]: x["deny_version"] for x in ks.call("GET", "/api/v1/locks", ks.admin, 200).json()}
    page = c.get(f"/ui/grants/{world.grant}/revoke")
    assert page.status_code == 200 and f"Revoke grant #{world.grant}?" in page.text
    assert sorted(re.findall(r'<th scope="row"><code>([0-9a-f]{16})</code></th>', page.text)) == sorted(world.locks)
    assert ks.call("GET", "/api/v1/grants", ks.admin, 200).json()[0]["revoked_at"] is None
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    done = c.post(f"/ui/grants/{world.grant}/revoke", data={"csrf": csrf, "reason": "moved team"})
    assert done.status_code == 200 and "Grant revoked" in done.text
    assert ks.call("GET", "/api/v1/grants", ks.admin, 200).json() == []
    after = {x["lock_id"]: x["deny_version"] for x in ks.call("GET", "/api/v1/locks", ks.admin, 200).json()}
    assert after == {lid: v + 1 for lid, v in versions.items()}
    again = c.post(f"/ui/grants/{world.grant}/revoke", data={"csrf": csrf})
    assert again.status_code == 409 and "already revoked" in reason(again)
    # the person keeps their account; a new bundle has no ticket any more
    assert ks.call("POST", "/api/v1/phone/bundle", world.phone_token, 200, json={}).json()["locks"] == []


def test_csv_export_is_the_apis_csv(ks, world):
    c = browser(ks)
    sign_in(c, "pia", PLANNER_PW)
    r = c.get(f"/ui/visits.csv?day=2026-11-30&district_id={world.district}")
    api = ks.call("GET", f"/api/v1/reports/visits?day=2026-11-30&district_id={world.district}&format=csv",
                  ks.admin, 200)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"] == 'attachment; filename="visits-2026-11-30.csv"'
    assert r.text == api.text and r.text.startswith("day,district_id,home_id")
    assert c.get("/ui/visits.csv?day=2026-11-31").status_code == 422
    assert browser(ks).get("/ui/visits.csv", follow_redirects=False).status_code == 303


# ---- creating people, homes, phones and integration tokens from the pages ----

def staff_by_name(ks, username):
    return next((x for x in ks.call("GET", "/api/v1/staff", ks.admin, 200).json() if x["username"] == username), None)


def everything(ks) -> tuple:
    """What the forms could change, as the API shows it."""
    return tuple(ks.call("GET", path, ks.admin, 200).json() for path in
                 ("/api/v1/staff", "/api/v1/homes", "/api/v1/phones", "/api/v1/audit?limit=10000"))


@pytest.fixture
def server_log(caplog):
    """Every log record of the server (every logger, DEBUG and up, SQL statements included)."""
    import logging

    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")  # every statement and its parameters
    return caplog


NEW_PW = "berit's first password"

BAD_PEOPLE = [
    ({"username": "", "role": "carer"}, 422, "username: String should have at least 1 character"),
    ({"username": "x" * 121, "role": "carer"}, 422, "username: String should have at most 120 characters"),
    ({"username": "berit"}, 422, "choose a role: admin, planner, carer, integration"),
    ({"username": "berit", "role": "king"}, 422, "choose a role"),
    ({"username": "berit", "role": "carer", "password": "short"}, 422, "a password has at least 12 characters"),
    ({"username": "berit", "role": "carer", "password": "p" * 1025}, 422, "password: String should have at most"),
    ({"username": "berit", "role": "carer", "district_id": "north"}, 422, "district must be a whole number"),
    ({"username": "berit", "role": "carer", "district_id": "999"}, 404, "no district 999"),
    ({"username": "berit", "role": "carer", "district_id": "9" * 20}, 422, "a number in the request is out of range"),
    ({"username": "anna", "role": "carer"}, 409, "user name 'anna' is taken"),
]


def test_a_new_person_from_the_staff_page(ks, world, server_log):
    c = browser(ks)
    sign_in(c, "root", ADMIN_PW)
    page = c.get("/ui/staff")
    assert 'id="new-person"' in page.text and 'name="password" type="password"' in page.text
    csrf = form_token(c, "/ui/staff")
    before = everything(ks)
    for fields, status, words in BAD_PEOPLE:
        r = c.post("/ui/staff", data={**fields, "csrf": csrf}, follow_redirects=False)
        assert r.status_code == status and words in reason(r), (fields, r.status_code, reason(r))
        assert r.headers["content-type"].startswith("text/html")
        if "password" in fields:  # a refused password is not echoed back
            assert fields["password"] not in r.text
    assert everything(ks) == before  # nothing was made
    r = c.post("/ui/staff", data={"username": " berit ", "full_name": "Berit Bak", "role": "carer",
                                  "district_id": str(world.district), "external_ref": "rota-17", "password": NEW_PW,
                                  "csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303
    made = staff_by_name(ks, "berit")
    assert r.headers["location"] == f"/ui/staff/{made['id']}?created=1"
    assert (made["full_name"], made["role"], made["district_id"], made["external_ref"], made["has_password"],
            made["active"]) == ("Berit Bak", "carer", world.district, "rota-17", True, True)
    page = c.get(r.headers["location"])
    assert page.status_code == 200 and "Berit Bak was created as a carer with an initial password" in page.text
    assert 'id="register-phone"' in page.text and 'id="integration-token"' not in page.text
    ks.login("berit", NEW_PW)  # the password is the one the form set
    audit = ks.call("GET", "/api/v1/audit?action=staff.create", ks.admin, 200).json()[0]
    assert audit["subject"] == f"staff:{made['id']}" and audit["detail"] == {"role": "carer"}
    # an integration account without a password; an admin (admins may make admins)
    for username, role in (("rota", "integration"), ("ivar", "admin")):
        r = c.post("/ui/staff", data={"username": username, "role": role, "csrf": csrf}, follow_redirects=False)
        assert r.status_code == 303
        x = staff_by_name(ks, username)
        assert (x["role"], x["has_password"], x["district_id"]) == (role, False, None)
    page = c.get(f"/ui/staff/{staff_by_name(ks, 'rota')['id']}?created=1")
    assert "created as an integration without a password" in page.text and 'id="integration-token"' in page.text
    # the passwords never reach a page or the log
    assert NEW_PW not in server_log.text and "a long enough password" not in server_log.text
    assert "p" * 1025 not in server_log.text


def test_a_new_home_from_the_homes_page(ks, world):
    c = browser(ks)
    sign_in(c, "pia", PLANNER_PW)  # homes are for planners too, as POST /api/v1/homes
    page = c.get("/ui/homes")
    assert 'id="new-home"' in page.text
    csrf = form_token(c, "/ui/homes")
    before = everything(ks)
    for fields, status, words in [
            ({"citizen_ref": "C-0000", "district_id": str(world.district)}, 409, "a home for citizen 'C-0000' exists"),
            ({"citizen_ref": "C-9000"}, 422, "district is required"),
            ({"citizen_ref": "C-9000", "district_id": "x"}, 422, "district must be a whole number"),
            ({"citizen_ref": "C-9000", "district_id": "999"}, 404, "no district 999"),
            ({"citizen_ref": "C-9000", "district_id": "9" * 20}, 422, "a number in the request is out of range"),
            ({"citizen_ref": "", "district_id": str(world.district)}, 422, "citizen_ref: String should have at least"),
            ({"citizen_ref": "C-9000", "address": "a" * 301, "district_id": str(world.district)}, 422,
             "address: String should have at most 300 characters")]:
        r = c.post("/ui/homes", data={**fields, "csrf": csrf}, follow_redirects=False)
        assert r.status_code == status and words in reason(r), (fields, r.status_code, reason(r))
    assert everything(ks) == before
    r = c.post("/ui/homes", data={"citizen_ref": "C-9000", "address": "Søndergade 9",
                                  "district_id": str(world.district), "csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303
    h = ks.call("GET", "/api/v1/homes", ks.admin, 200).json()[-1]
    assert (h["citizen_ref"], h["address"], h["district_id"]) == ("C-9000", "Søndergade 9", world.district)
    assert r.headers["location"] == f"/ui/homes?created={h['id']}#home-{h['id']}"
    page = c.get(r.headers["location"])
    assert f'id="home-{h["id"]}"' in page.text and "Home <strong>C-9000</strong> created" in page.text


def test_role_rules_for_the_new_forms(ks, world):
    pia = browser(ks)
    sign_in(pia, "pia", PLANNER_PW)
    csrf = form_token(pia, "/ui/staff")
    # a planner gets no new-person form (POST /api/v1/staff is for admins), and a forged one is refused
    assert 'id="new-person"' not in pia.get("/ui/staff").text
    before = everything(ks)
    for role in ("admin", "planner", "carer"):
        r = pia.post("/ui/staff", data={"username": "mallory", "role": role, "password": "a long enough password",
                                        "csrf": csrf}, follow_redirects=False)
        assert r.status_code == 403 and reason(r) == \
            "forbidden: this page is for admins; you are signed in as a planner", role
    # a planner registers a phone for a carer (as the API allows) but makes no integration tokens
    ks.call("POST", "/api/v1/staff", ks.admin, 201, json={"username": "rota", "role": "integration"})
    rota = staff_by_name(ks, "rota")["id"]
    page = pia.get(f"/ui/staff/{rota}")
    assert 'id="integration-token"' not in page.text and 'id="register-phone"' not in page.text
    r = pia.post(f"/ui/staff/{rota}/tokens", data={"csrf": csrf})
    assert r.status_code == 403 and "for admins" in reason(r)
    assert everything(ks)[2:3] == before[2:3] and staff_by_name(ks, "mallory") is None
    assert 'id="register-phone"' in pia.get(f"/ui/staff/{world.carer}").text
    # a carer has no web session; even her API session token forced into the cookie (with its CSRF token)
    # creates nothing
    from keyserver.web.session import csrf_for

    carer_session = ks.login("anna", CARER_PW)
    anna = browser(ks)
    anna.cookies.set("ks_session", carer_session, path="/ui")
    before = everything(ks)
    for path, data in (("/ui/staff", {"username": "mallory", "role": "admin"}),
                       ("/ui/homes", {"citizen_ref": "C-M", "district_id": str(world.district)}),
                       (f"/ui/staff/{world.carer}/phones", {"label": "x"}), (f"/ui/staff/{rota}/tokens", {})):
        r = anna.post(path, data={**data, "csrf": csrf_for(carer_session)}, follow_redirects=False)
        assert r.status_code == 403 and "you are signed in as a carer" in reason(r), path
    assert everything(ks) == before


def test_register_a_phone_shows_its_token_once_and_never_keeps_it(ks, world, server_log):
    c = browser(ks)
    sign_in(c, "root", ADMIN_PW)
    csrf = form_token(c, f"/ui/staff/{world.carer}")
    r = c.post(f"/ui/staff/{world.carer}/phones", data={"label": "work phone 12", "csrf": csrf},
               follow_redirects=False)
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    assert "location" not in r.headers
    assert "This token is shown once: copy it into the phone app now (on “work phone 12”)." in r.text
    token = re.search(r'<code id="token">([^<]+)</code>', r.text).group(1)
    assert len(token) >= 40 and r.text.count(token) == 1
    assert not any(token in v for _, v in r.headers.items())
    phone = ks.call("GET", f"/api/v1/phones?staff_id={world.carer}", ks.admin, 200).json()[-1]
    assert (phone["label"], phone["revoked_at"]) == ("work phone 12", None)
    assert f"Phone #{phone['id']} registered for Anna" in r.text
    # the token is the phone's: the phone API takes it
    me = ks.call("GET", "/api/v1/auth/me", token, 200).json()
    assert (me["id"], me["token_kind"], me["phone_id"]) == (world.carer, "phone", phone["id"])
    ks.call("POST", "/api/v1/phone/bundle", token, 200, json={})
    # nowhere else: not on the person page, not in the audit log, not in the server's log
    page = c.get(f"/ui/staff/{world.carer}")
    assert token not in page.text and "work phone 12" in page.text
    assert token not in ks.call("GET", "/api/v1/audit?limit=10000", ks.admin, 200).text
    assert "INSERT INTO phones" in server_log.text  # the log has every statement of the request ...
    assert token not in server_log.text  # ... and not the token
    # bad cases: an unknown person, a revoked one, a label too long
    before = everything(ks)
    r = c.post("/ui/staff/999/phones", data={"label": "x", "csrf": csrf})
    assert r.status_code == 404 and "no staff member 999" in reason(r)
    r = c.post(f"/ui/staff/{'9' * 20}/phones", data={"label": "x", "csrf": csrf})
    assert r.status_code == 422 and "out of range" in reason(r)
    r = c.post(f"/ui/staff/{world.carer}/phones", data={"label": "x" * 121, "csrf": csrf})
    assert r.status_code == 422 and "label: String should have at most 120 characters" in reason(r)
    ks.call("POST", f"/api/v1/staff/{world.carer}/revoke", ks.admin, 200, json={})
    assert 'id="register-phone"' not in c.get(f"/ui/staff/{world.carer}").text
    before = everything(ks)
    r = c.post(f"/ui/staff/{world.carer}/phones", data={"label": "x", "csrf": csrf})
    assert r.status_code == 409 and "access has been revoked" in reason(r)
    assert everything(ks) == before


def test_an_integration_token_from_the_person_page(ks, world, server_log):
    c = browser(ks)
    sign_in(c, "root", ADMIN_PW)
    csrf = form_token(c, "/ui/staff")
    c.post("/ui/staff", data={"username": "rota", "role": "integration", "csrf": csrf})
    rota = staff_by_name(ks, "rota")["id"]
    r = c.post(f"/ui/staff/{rota}/tokens", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store" and "shown once" in r.text
    token = re.search(r'<code id="token">([^<]+)</code>', r.text).group(1)
    assert r.text.count(token) == 1 and token not in server_log.text
    me = ks.call("GET", "/api/v1/auth/me", token, 200).json()
    assert (me["id"], me["token_kind"]) == (rota, "integration")
    # only integration accounts get one, as the API says
    before = everything(ks)
    r = c.post(f"/ui/staff/{world.carer}/tokens", data={"csrf": csrf})
    assert r.status_code == 422 and "integration tokens are for accounts with the integration role" in reason(r)
    assert 'id="integration-token"' not in c.get(f"/ui/staff/{world.carer}").text
    assert everything(ks) == before


def test_the_web_forms_take_the_apis_roles():
    from keyserver.api import access, people
    from keyserver.web.pages import api_roles

    assert api_roles(people.create_staff) == ("admin",)
    assert api_roles(people.integration_token) == ("admin",)
    assert api_roles(access.create_home) == ("admin", "planner")
    assert api_roles(people.register_phone) == ("admin", "planner")  # carers register their own in the app
