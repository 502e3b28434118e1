"""Access: login, sessions, tokens, masking, the audited unmask, append-only audit, Origin check."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from dataclasses import replace

import pytest
import requests
from sqlalchemy import select, text, update
from sqlalchemy.exc import DatabaseError

from auth.models import AuditEntry, WebSession
from auth.service import create_token, revoke_token
from registry.importers import import_geo
from store.stores import Stores
from tests.conftest import DEMO_PASSWORD, LiveServer, http_login, run_manage
from tests.test_importers import WANHU

pytestmark = pytest.mark.also_on_pg  # the tests using settings or world run on PostgreSQL too

ID_RE = re.compile(r"(?<![0-9])[0-9]{17}[0-9X](?![0-9])")
PHONE_RE = re.compile(r"(?<![0-9])1[3-9][0-9]{9}(?![0-9])")


def audit_rows(stores: Stores, action: str) -> list[AuditEntry]:
    with stores.sessions() as session:
        return list(session.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))


def login_attempt(server: LiveServer, username: str, password: str) -> requests.Response:
    return requests.post(
        f"{server.url}/login",
        data={"username": username, "password": password},
        headers={"Origin": server.url},
        allow_redirects=False,
        timeout=30,
    )


def test_pages_need_a_login(demo_server: LiveServer) -> None:
    response = requests.get(demo_server.url + "/", allow_redirects=False, timeout=30)
    assert response.status_code == 302 and response.headers["Location"].startswith("/login?next=")
    api = requests.get(demo_server.url + "/api/v1/people", timeout=30)
    assert api.status_code == 401


def test_wrong_password_gets_a_generic_message_and_counts_toward_a_lockout(
    demo_server: LiveServer, demo_stores: Stores
) -> None:
    unknown = login_attempt(demo_server, "nobody", "whatever1234")
    wrong = login_attempt(demo_server, "property.xingbang", "whatever1234")
    assert unknown.status_code == wrong.status_code == 401
    assert "用户名或密码错误" in unknown.text and "用户名或密码错误" in wrong.text
    for _ in range(3):
        login_attempt(demo_server, "property.xingbang", "whatever1234")
    locked = login_attempt(demo_server, "property.xingbang", "whatever1234")
    assert "登录失败次数过多" in locked.text
    still_locked = login_attempt(demo_server, "property.xingbang", DEMO_PASSWORD)
    assert still_locked.status_code == 401
    denied = [e for e in audit_rows(demo_stores, "login") if e.target == "property.xingbang"]
    assert len(denied) >= 6 and all(e.outcome == "denied" for e in denied)


def test_logout_ends_the_session_on_the_server(demo_server: LiveServer) -> None:
    session = http_login(demo_server.url, "police.wanhu")
    cookie = session.cookies.get("st_session")
    assert session.get(demo_server.url + "/api/v1/people?tag=elderly_alone", timeout=30).status_code == 200
    session.get(demo_server.url + "/logout", timeout=30)
    replay = requests.get(demo_server.url + "/api/v1/people", cookies={"st_session": cookie}, timeout=30)
    assert replay.status_code == 401


def test_an_expired_session_is_refused(demo_server: LiveServer, demo_stores: Stores) -> None:
    session = http_login(demo_server.url, "police.wanhu")
    with demo_stores.sessions.begin() as db:
        db.execute(
            update(WebSession)
            .values(expires_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
            .where(WebSession.revoked_at.is_(None))
        )
    assert session.get(demo_server.url + "/api/v1/people", timeout=30).status_code == 401


def test_forged_revoked_and_out_of_scope_tokens(demo_server: LiveServer, demo_stores: Stores) -> None:
    with demo_stores.sessions.begin() as db:
        record, good = create_token(db, scope="ingest", community="wanhu")
        _, wall = create_token(db, scope="role", role="wall", community="wanhu")
    forged = good[:-4] + "AAAA"
    assert (
        requests.get(
            demo_server.url + "/api/v1/devices", headers={"Authorization": f"Bearer {forged}"}, timeout=30
        ).status_code
        == 401
    )
    # an ingest token may post events, not read the registry
    assert (
        requests.get(
            demo_server.url + "/api/v1/devices", headers={"Authorization": f"Bearer {good}"}, timeout=30
        ).status_code
        == 403
    )
    wall_devices = requests.get(
        demo_server.url + "/api/v1/devices?community=xingbang", headers={"Authorization": f"Bearer {wall}"}, timeout=30
    )
    assert wall_devices.status_code == 403
    assert (
        requests.get(
            demo_server.url + "/api/v1/people", headers={"Authorization": f"Bearer {wall}"}, timeout=30
        ).status_code
        == 403
    )
    with demo_stores.sessions.begin() as db:
        assert revoke_token(db, record.id)
    assert (
        requests.get(
            demo_server.url + "/api/v1/devices", headers={"Authorization": f"Bearer {good}"}, timeout=30
        ).status_code
        == 401
    )


def test_kiosk_token_opens_the_wall_without_login_and_revoking_closes_it(
    demo_server: LiveServer, demo_stores: Stores
) -> None:
    with demo_stores.sessions.begin() as db:
        record, token = create_token(db, scope="role", role="wall", community="wanhu", name="station wall")
    browser = requests.Session()
    first = browser.get(f"{demo_server.url}/wall?kiosk=1&token={token}", allow_redirects=False, timeout=30)
    assert first.status_code == 302 and "token" not in first.headers["Location"]
    page = browser.get(demo_server.url + first.headers["Location"], timeout=30)
    assert page.status_code == 200
    assert browser.get(demo_server.url + "/api/v1/map/wanhu/buildings.geojson", timeout=30).status_code == 200
    assert browser.get(demo_server.url + "/api/v1/people", timeout=30).status_code == 403  # no personal data
    with demo_stores.sessions.begin() as db:
        revoke_token(db, record.id)
    closed = browser.get(demo_server.url + "/wall?kiosk=1", allow_redirects=False, timeout=30)
    assert closed.status_code == 302 and closed.headers["Location"].startswith("/login")


def test_people_are_masked_per_role(demo_server: LiveServer) -> None:
    police = (
        http_login(demo_server.url, "police.wanhu")
        .get(demo_server.url + "/api/v1/people?tag=elderly_alone", timeout=30)
        .json()
    )
    assert len(police) == 200
    assert all(re.fullmatch(r"\d{6}\*{8}\d{3}[\dX]", p["id_number"]) for p in police)
    assert all(p["phone"] is None or re.fullmatch(r"1\d\d\*{4}\d{4}", p["phone"]) for p in police)
    assert all("*" not in p["name"] for p in police)
    prop = (
        http_login(demo_server.url, "property.wanhu")
        .get(demo_server.url + "/api/v1/people?tag=elderly_alone", timeout=30)
        .json()
    )
    assert all("*" in p["name"] for p in prop)
    grid = (
        http_login(demo_server.url, "grid.wanhu-G1")
        .get(demo_server.url + "/api/v1/people?tag=elderly_alone", timeout=30)
        .json()
    )
    assert 0 < len(grid) < len(police)
    households = (
        http_login(demo_server.url, "grid.wanhu-G1").get(demo_server.url + "/api/v1/households", timeout=30).json()
    )
    assert {h["building"] for h in households} and all(h["id"].startswith("wanhu-") for h in households)


def test_unmask_needs_a_reason_and_is_audited(demo_server: LiveServer, demo_stores: Stores) -> None:
    police = http_login(demo_server.url, "police.wanhu")
    person = police.get(demo_server.url + "/api/v1/people?tag=floating", timeout=30).json()[0]
    url = f"{demo_server.url}/api/v1/people/{person['id']}/unmask"
    assert police.post(url, json={}, timeout=30).status_code == 400
    shown = police.post(url, json={"reason": "核查流动人口登记"}, timeout=30).json()
    assert ID_RE.fullmatch(shown["id_number"]) and shown["id_number"][-4:] == person["id_number"][-4:]
    entry = audit_rows(demo_stores, "unmask")[-1]
    assert (entry.actor, entry.target, entry.reason) == ("police.wanhu", f"person:{person['id']}", "核查流动人口登记")
    grid = http_login(demo_server.url, "grid.wanhu-G1")
    assert grid.post(url, json={"reason": "just curious"}, timeout=30).status_code == 403
    other = http_login(demo_server.url, "police.xingbang")
    assert other.post(url, json={"reason": "not my community"}, timeout=30).status_code == 403
    assert audit_rows(demo_stores, "denied")[-1].actor == "police.xingbang"


def test_the_audit_log_is_append_only(demo_stores: Stores) -> None:
    with demo_stores.engine.connect() as conn, pytest.raises(DatabaseError, match="append-only"):
        conn.execute(text("UPDATE audit_log SET reason = 'edited'"))
    with demo_stores.engine.connect() as conn, pytest.raises(DatabaseError, match="append-only"):
        conn.execute(text("DELETE FROM audit_log"))


def test_admins_read_and_export_the_audit_log(demo_server: LiveServer) -> None:
    admin = http_login(demo_server.url, "admin")
    csv_text = admin.get(demo_server.url + "/api/v1/audit?format=csv", timeout=30).text
    assert next(csv.reader(io.StringIO(csv_text)))[:5] == ["id", "at", "actor", "role", "action"]
    assert (
        http_login(demo_server.url, "police.wanhu").get(demo_server.url + "/api/v1/audit", timeout=30).status_code
        == 403
    )


def test_a_cross_origin_post_with_a_session_cookie_is_refused(demo_server: LiveServer) -> None:
    session = http_login(demo_server.url, "police.wanhu")
    session.headers["Origin"] = "http://evil.example"
    response = session.post(demo_server.url + "/_dash-update-component", json={}, timeout=30)
    assert response.status_code == 403


def test_security_headers(demo_server: LiveServer) -> None:
    response = requests.get(demo_server.url + "/login", timeout=30)
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"


def test_token_create_prints_the_token_alone_on_its_last_line(stores: Stores) -> None:
    with stores.sessions.begin() as session:
        import_geo(session, "boundary", WANHU / "boundary.geojson", "wanhu")
    result = run_manage(stores.settings, "token", "create", "--scope", "ingest", "--community", "wanhu")
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"st_[0-9a-f]{12}_[A-Za-z0-9_-]{32,64}", result.stdout.strip().splitlines()[-1])
    bad = run_manage(stores.settings, "token", "create", "--role", "grid_worker", "--community", "wanhu")
    assert bad.returncode == 1 and bad.stderr.strip() == "error: a grid_worker needs --grid"


def test_logins_are_rate_limited_per_address(stores: Stores) -> None:
    limited = replace(stores, settings=stores.settings.model_copy(update={"login_rate_per_minute": 3}))
    server = LiveServer(limited.settings)
    try:
        codes = [login_attempt(server, "nobody", "whatever1234").status_code for _ in range(5)]
    finally:
        server.stop()
    assert codes[:3] == [401, 401, 401]
    assert codes[3:] == [429, 429]
