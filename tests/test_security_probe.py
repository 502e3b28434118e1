"""Regression tests of the defects a probe of the running system found (issue #16): each fails on
the code before its fix. The callbacks' page permissions, the kiosk, exact public paths, the
audit log under a flood of anonymous requests, paged approvals, and inputs that used to crash."""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from api.access import client_ip
from api.resident import household_key
from app import create_app
from auth.callbacks import DASH_PAGE_ROUTER, callback_permission
from auth.models import AuditEntry
from auth.service import ANON_DENIAL_WINDOW_S, create_token, flush_anonymous_denials
from callbacks.requests import TICK, city_refresh_request, wall_refresh_request
from callbacks.util import dash_request, prop
from core.timefmt import SHANGHAI
from gates.service import PassRequest, Visitors
from layouts import ids
from layouts.gate import tick_id
from store.stores import Stores
from tests.conftest import DEMO_PASSWORD
from tests.test_closed_loop import POLICE, smoke_alert

ORIGIN = {"Origin": "http://localhost"}
HOUSEHOLD = "wanhu-B002-1-101"
DETAIL = ((ids.CONSOLE_DETAIL, "children"), (ids.CONSOLE_SEEN, "data"))


@pytest.fixture
def app(world: Stores) -> Iterator[Any]:
    dash_app = create_app(world)
    dash_app.server.config["PROPAGATE_EXCEPTIONS"] = False
    yield dash_app


def signed_in(app: Any, username: str) -> FlaskClient:
    client: FlaskClient = app.server.test_client()
    response = client.post("/login", data={"username": username, "password": DEMO_PASSWORD}, headers=ORIGIN)
    assert response.status_code == 302, username
    return client


def role_token(stores: Stores, role: str, community: str = "wanhu") -> str:
    with stores.sessions.begin() as session:
        _, token = create_token(session, scope="role", role=role, community=community, name=f"{role} display")
    return token


def detail_request(alert_id: str) -> dict[str, Any]:
    selected = {"community": "wanhu", "alert": alert_id, "lang": "zh"}
    return dash_request(
        DETAIL,
        [
            prop(ids.CONSOLE_SELECTED, "data", selected),
            prop(ids.CONSOLE_DONE, "data", 0),
            prop(tick_id(ids.CONSOLE_REFRESH), "data", TICK),
        ],
        [prop(ids.CONSOLE_SEEN, "data", None)],
        f"{ids.CONSOLE_SELECTED}.data",
    )


def audit_count(stores: Stores) -> int:
    with stores.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(AuditEntry)) or 0)


# --- 1. every callback checks the permission of its page -------------------------------------


def test_the_wall_display_cannot_read_an_alerts_detail_through_the_console_callback(app: Any, world: Stores) -> None:
    alert = smoke_alert(world)
    wall = role_token(world, "wall")
    client: FlaskClient = app.server.test_client()
    client.get("/_dash-layout", headers={"Authorization": f"Bearer {wall}"})
    refused = client.post(
        "/_dash-update-component", json=detail_request(alert["id"]), headers={"Authorization": f"Bearer {wall}"}
    )
    assert refused.status_code == 403
    assert "evidence" not in refused.get_data(as_text=True) and alert["id"] not in refused.get_data(as_text=True)
    kiosk: FlaskClient = app.server.test_client()
    assert kiosk.get(f"/wall?kiosk=1&token={wall}").status_code == 302
    assert kiosk.post("/_dash-update-component", json=detail_request(alert["id"]), headers=ORIGIN).status_code == 403
    police = signed_in(app, "police.wanhu")
    shown = police.post("/_dash-update-component", json=detail_request(alert["id"]), headers=ORIGIN)
    assert shown.status_code == 200 and "烟" in json.dumps(shown.get_json(), ensure_ascii=False)


def test_every_server_callback_declares_the_permission_of_its_page(app: Any) -> None:
    server_callbacks = [output for output, spec in app.callback_map.items() if "callback" in spec]
    assert len(server_callbacks) > 10
    undeclared = [o for o in server_callbacks if callback_permission(o) is None]
    assert undeclared == []
    assert callback_permission(DASH_PAGE_ROUTER) is not None


# --- 2. only a wall display's token opens a kiosk, and never over a signed-in session --------


def test_a_police_token_cannot_open_a_kiosk(app: Any, world: Stores) -> None:
    police_token = role_token(world, "police")
    client: FlaskClient = app.server.test_client()
    for path in ("/console", "/wall?kiosk=1", "/city?kiosk=1"):
        response = client.get(f"{path}{'&' if '?' in path else '?'}token={police_token}")
        assert response.status_code in (401, 403), path
        assert "st_kiosk" not in response.headers.get("Set-Cookie", ""), path
    person = app.server.test_client().get("/api/v1/people").status_code
    assert person == 401
    wall_token = role_token(world, "wall")
    assert client.get(f"/console?token={wall_token}").status_code == 403  # a kiosk is /wall or /city only
    assert client.get(f"/wall?kiosk=1&token={wall_token}").status_code == 302


def test_a_kiosk_cookie_never_outranks_a_signed_in_officer(app: Any, world: Stores) -> None:
    police = signed_in(app, "police.wanhu")
    assert police.get(f"/wall?kiosk=1&token={role_token(world, 'wall')}").status_code == 302
    assert police.get("/api/v1/people?tag=elderly_alone").status_code == 200  # still the officer, not the wall


# --- 13. public pages are exact paths ---------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/residents"),
        ("GET", "/residentXYZ"),
        ("GET", "/resident/report"),
        ("GET", "/resident/invite"),
        ("GET", "/loginX"),
        ("GET", "/healthzX"),
        ("GET", "/visitors"),
    ],
)
def test_public_pages_are_exact_paths(app: Any, method: str, path: str) -> None:
    response = app.server.test_client().open(path, method=method)
    assert response.status_code == 302 and response.headers["Location"].startswith("/login"), path


# --- 6. a flood of anonymous requests does not flood the append-only audit log ---------------


def test_anonymous_denials_are_audited_once_per_address_and_window(app: Any, world: Stores) -> None:
    client: FlaskClient = app.server.test_client()
    before = audit_count(world)
    for _ in range(60):
        assert client.get("/api/v1/people").status_code == 401
    assert audit_count(world) - before == 1  # the first one; the rest are counted
    other = app.server.test_client()
    other.get("/api/v1/people", environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert audit_count(world) - before == 2  # another address has its own first row
    later = dt.datetime.now(dt.UTC).timestamp() + 2 * ANON_DENIAL_WINDOW_S
    assert flush_anonymous_denials(world, now=later) == 1
    with world.sessions() as session:
        summary = session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())).first()
    assert summary is not None and summary.reason.startswith("59 more anonymous requests") and summary.ip == "127.0.0.1"
    assert flush_anonymous_denials(world, now=later) == 0  # written once


# --- 4. invitations are rate-limited; the approval list is paged, newest first ----------------


def invitation(n: int) -> dict[str, str]:
    start = dt.datetime.now(SHANGHAI) + dt.timedelta(hours=1, minutes=n)
    return {
        "h": HOUSEHOLD,
        "visitor_name": f"访客{n:03d}",
        "id_number": "11010519491231002X",
        "phone": "13912345678",
        "valid_from": start.strftime("%Y-%m-%dT%H:%M"),
        "valid_to": (start + dt.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M"),
        "reason": "探亲",
    }


def test_a_households_invitations_are_rate_limited(app: Any, world: Stores) -> None:
    key = household_key(world, HOUSEHOLD)
    client: FlaskClient = app.server.test_client()
    answers = [client.post("/resident/invite", data={**invitation(n), "k": key}).status_code for n in range(15)]
    limit = world.settings.invite_rate_per_hour
    assert answers[:limit] == [200] * limit
    assert set(answers[limit:]) == {429}


def test_the_approval_list_is_paged_and_shows_the_newest_first(world: Stores) -> None:
    visitors = Visitors(world)
    now = dt.datetime.now(dt.UTC)
    for n in range(45):
        start = now + dt.timedelta(hours=1, minutes=n)
        visitors.request(
            PassRequest(
                household=HOUSEHOLD,
                visitor_name=f"访客{n:03d}",
                id_number="11010519491231002X",
                phone="13912345678",
                plate="",
                valid_from=start,
                valid_to=start + dt.timedelta(seconds=30),
                reason="探亲",
            ),
            requested_by="resident",
        )
    property_staff = POLICE.__class__(kind="user", id="property.wanhu", role="property", community="wanhu")
    newest, total = visitors.pending(property_staff, newest_first=True)
    assert total == 45 and newest[0].visitor_name == "访客044" and len(newest) == 20
    last, _ = visitors.pending(property_staff, page=2, newest_first=False)
    assert [p.visitor_name for p in last] == [f"访客{n:03d}" for n in range(40, 45)]


# --- 7. inputs that used to crash with a traceback get a 400 with a reason --------------------


def visit_form(**changes: str) -> dict[str, str]:
    start = dt.datetime.now(SHANGHAI) + dt.timedelta(hours=1)
    form = {
        "c": "wanhu",
        "visitor_name": "访客甲",
        "id_number": "11010519491231002X",
        "phone": "13912345678",
        "building": "2幢",
        "unit": "1",
        "room": "101",
        "valid_from": start.strftime("%Y-%m-%dT%H:%M"),
        "valid_to": (start + dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"),
        "reason": "探亲访友",
    }
    return {**form, **changes}


@pytest.mark.parametrize(
    "changes",
    [{"unit": "᧚"}, {"valid_from": "0001-01-01T00:00"}, {"valid_to": "9999-12-31T23:59-10:00"}],
    ids=["unicode-digit", "year-1", "year-9999"],
)
def test_odd_visit_forms_get_a_400(app: Any, changes: dict[str, str]) -> None:
    response = app.server.test_client().post("/visit", data=visit_form(**changes))
    assert response.status_code == 400
    assert "st-field-error" in response.get_data(as_text=True)


def test_a_non_ascii_household_key_is_a_bad_link(app: Any) -> None:
    client: FlaskClient = app.server.test_client()
    assert client.get(f"/resident?h={HOUSEHOLD}&k=%C3%A9").status_code == 404
    assert (
        client.post("/resident/report", data={"h": HOUSEHOLD, "k": "é", "to": "police", "text": "x"}).status_code == 404
    )


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/alerts?since=0001-01-01T00:00:00%2B14:00",
        "/api/v1/alerts?since=yesterday",
        "/api/v1/audit?limit=abc",
        "/api/v1/audit?limit=%EF%BC%91",
    ],
)
def test_bad_query_parameters_get_a_400_that_names_them(app: Any, url: str) -> None:
    admin = signed_in(app, "admin")
    response = admin.get(url)
    assert response.status_code == 400
    name = url.split("?")[1].split("=", maxsplit=1)[0]
    assert name in response.get_json()["error"]


ODD_TIMES: list[Any] = ["abc", "x", [1], 1e400, -5, None, {"a": 1}, True, "1e400"]


@pytest.mark.parametrize("odd", ODD_TIMES, ids=[repr(v) for v in ODD_TIMES])
def test_the_wall_and_city_refresh_survive_any_state(app: Any, odd: Any) -> None:
    police = signed_in(app, "police.wanhu")
    police.get("/_dash-layout")
    wall = wall_refresh_request({"community": "wanhu", "since": odd, "full_at": odd, "ver": odd, "lang": "zh"})
    city_police = signed_in(app, "police.city")
    city_police.get("/_dash-layout")
    city = city_refresh_request({"since": odd, "full_at": odd, "lang": "zh"})
    for client, body in ((police, wall), (city_police, city)):
        raw = json.dumps(body).replace("Infinity", "1e400")
        response = client.post(
            "/_dash-update-component", data=raw, headers={**ORIGIN, "Content-Type": "application/json"}
        )
        assert response.status_code in (200, 204), f"{odd!r}: {response.status_code}"


@pytest.mark.parametrize(
    "mangle",
    [
        lambda b: {**b, "inputs": [1, 2, 3]},
        lambda b: {**b, "inputs": b["inputs"][:1]},
        lambda b: {**b, "state": "x"},
        lambda b: {**b, "outputs": b["outputs"][:1]},
        lambda b: {**b, "outputs": {"id": "x"}},
        lambda b: {**b, "inputs": [{"id": ["x"], "property": 1}] * len(b["inputs"])},
    ],
    ids=["numbers", "too-few", "state-text", "outputs-short", "outputs-not-list", "bad-items"],
)
def test_callback_requests_that_do_not_match_their_declaration_get_a_400(app: Any, mangle: Any) -> None:
    police = signed_in(app, "police.wanhu")
    police.get("/_dash-layout")
    body = mangle(detail_request("0123456789abcdef"))
    response = police.post("/_dash-update-component", json=body, headers=ORIGIN)
    assert response.status_code == 400
    assert "Traceback" not in response.get_data(as_text=True)


def fuzz_values(rng: random.Random) -> Iterator[Any]:
    """Odd values of every kind a hand-made request may carry."""
    pool: list[Any] = [
        "",
        "᧚",
        "é",
        "\x00",
        "0001-01-01T00:00",
        "9999-12-31T23:59:59-23:59",
        "1e400",
        "-1",
        "99999999999999999999999",
        "[" * 2000,
        "=HYPERLINK(1)",
        "'; DROP TABLE person; --",
        "<script>alert(1)</script>",
        "%",
        "xingbang",
        "../../etc/passwd",
        "\u202e",
        "😀" * 50,
        "a" * 5000,
    ]
    while True:
        yield rng.choice(pool) if rng.random() < 0.8 else "".join(rng.choice(pool) for _ in range(3))[:3000]


def test_fuzzing_the_public_forms_and_query_parameters_never_crashes(app: Any, world: Stores) -> None:
    rng = random.Random(20261206)
    values = fuzz_values(rng)
    anonymous: FlaskClient = app.server.test_client()
    admin = signed_in(app, "admin")
    key = household_key(world, HOUSEHOLD)
    for n in range(200):  # 50 of each entry point: about 20 s
        field = rng.choice(["unit", "room", "building", "valid_from", "valid_to", "c", "phone", "id_number", "plate"])
        value = next(values)
        if n % 4 == 0:
            response = anonymous.post(
                "/visit", data=visit_form(**{field: value}), environ_base={"REMOTE_ADDR": f"10.1.{n // 250}.{n % 250}"}
            )
        elif n % 4 == 1:
            form = {k: v for k, v in invitation(n).items() if k != "h"}
            form[field if field in form else "valid_from"] = value
            response = anonymous.post(
                "/resident/invite", data={**form, "h": rng.choice([HOUSEHOLD, value]), "k": rng.choice([key, value])}
            )
        elif n % 4 == 2:
            param = rng.choice(["since", "status", "type", "community", "tag", "limit", "format", "category"])
            path = rng.choice(
                ["/api/v1/alerts", "/api/v1/audit", "/api/v1/people", "/api/v1/devices", "/api/v1/households"]
            )
            response = admin.get(path, query_string={param: value})
        else:
            response = anonymous.get("/resident", query_string={"h": rng.choice([HOUSEHOLD, value]), "k": value})
        assert response.status_code < 500, f"request {n}: {field}={value[:40]!r} → {response.status_code}"


# --- 12. the client address behind a reverse proxy ------------------------------------------


@pytest.mark.parametrize(
    ("trusted", "peer", "forwarded", "expected"),
    [
        ("", "10.9.9.9", "1.2.3.4", "10.9.9.9"),  # no proxy configured: the header is ignored
        ("10.9.9.9", "10.9.9.9", "1.2.3.4", "1.2.3.4"),
        ("10.9.9.9", "10.9.9.9", "6.6.6.6, 1.2.3.4", "1.2.3.4"),  # what a client prepended is not trusted
        ("10.9.0.0/16", "10.9.9.9", "1.2.3.4, 10.9.1.1", "1.2.3.4"),  # two proxies of ours
        ("10.9.9.9", "5.5.5.5", "1.2.3.4", "5.5.5.5"),  # not from our proxy: the header is a client's
        ("10.9.9.9", "10.9.9.9", "not-an-address", "10.9.9.9"),
    ],
)
def test_the_client_address_is_taken_from_a_trusted_proxy_only(
    world: Stores, trusted: str, peer: str, forwarded: str, expected: str
) -> None:
    proxied = replace(world, settings=world.settings.model_copy(update={"trusted_proxies": trusted}))
    server = create_app(proxied).server
    with server.test_request_context(
        "/login", environ_base={"REMOTE_ADDR": peer}, headers={"X-Forwarded-For": forwarded}
    ):
        assert client_ip() == expected
