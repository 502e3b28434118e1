"""Paging of the list endpoints (api/paging.py): every row once and in order across pages, a cursor
that survives inserts, a bad cursor named, a grid worker's pages full of their grid only; and
``/api/v1/people`` with one row per person."""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from alerts.models import AlertRecord
from api.paging import SortKey, decode_cursor, encode_cursor
from api.params import BadParameter
from app import create_app
from auth.models import AuditEntry
from registry.models import Household, Person, Residency
from store.stores import Stores
from tests.conftest import LiveServer, http_login
from tests.test_wanted_list import signed_in

pytestmark = pytest.mark.also_on_pg  # the tests using world run on PostgreSQL too

T0 = dt.datetime(2026, 11, 20, 8, 0, tzinfo=dt.UTC)


def add_alerts(world: Stores, n: int, *, prefix: str = "pg", at: dt.datetime = T0, grid: str | None = None) -> None:
    """n open smoke alerts of wanhu; two by two they share a detection time (the id breaks the tie)."""
    with world.sessions.begin() as session:
        for i in range(n):
            detected = at - dt.timedelta(minutes=i // 2)
            session.add(
                AlertRecord(
                    id=f"{prefix}{i:03d}",
                    community_id="wanhu",
                    type="smoke",
                    severity="high",
                    status="new",
                    dedup_key=f"smoke|{prefix}{i}",
                    subject={"device": f"dev{i}"},
                    grid_id=grid,
                    opened_at=detected,
                    detected_at=detected,
                    updated_at=detected,
                )
            )


def walk(client: FlaskClient, url: str) -> tuple[list[dict[str, Any]], list[int]]:
    """Every row of a route, following X-Next-Cursor (and checking Link says the same); the page sizes."""
    rows: list[dict[str, Any]] = []
    sizes: list[int] = []
    while True:
        response = client.get(url)
        assert response.status_code == 200, response.get_data(as_text=True)
        page = response.get_json()
        rows += page
        sizes.append(len(page))
        cursor = response.headers.get("X-Next-Cursor")
        if cursor is None:
            assert "Link" not in response.headers
            return rows, sizes
        link = response.headers["Link"]
        assert link.startswith("<http") and link.endswith('>; rel="next"') and f"cursor={cursor}" in link
        url = link[1 : link.index(">")].removeprefix("http://localhost")
        assert len(sizes) < 100


def whole(client: FlaskClient, url: str) -> list[dict[str, Any]]:
    """The route's rows in pages of the largest size."""
    return walk(client, url + ("&" if "?" in url else "?") + "limit=1000")[0]


@pytest.fixture
def admin(world: Stores) -> FlaskClient:
    return signed_in(create_app(world), "admin")


@pytest.mark.parametrize(
    ("url", "order"),
    [
        ("/api/v1/alerts?status=all", "detected_at desc"),
        ("/api/v1/devices?community=wanhu&type=smoke_detector", "id"),
        ("/api/v1/households?community=wanhu&category=rental", "id"),
        ("/api/v1/people?community=wanhu&tag=elderly_alone", "id"),
        ("/api/v1/audit", "id desc"),
    ],
)
def test_walking_the_pages_of_a_list_gives_every_row_once_and_in_order(
    world: Stores, admin: FlaskClient, url: str, order: str
) -> None:
    add_alerts(world, 7)
    with world.sessions.begin() as session:
        session.add_all(AuditEntry(actor="test", action="probe", target=f"t{i}") for i in range(7))
    expected = whole(admin, url)
    assert len(expected) >= 5
    limit = max(2, len(expected) // 3)
    rows, sizes = walk(admin, f"{url}&limit={limit}" if "?" in url else f"{url}?limit={limit}")
    ids = [r["id"] for r in rows]
    assert ids == [r["id"] for r in expected] and len(set(ids)) == len(ids)
    assert len(sizes) >= 3 and all(size == limit for size in sizes[:-1])
    if order == "id":
        assert ids == sorted(ids)
    elif order == "id desc":
        assert ids == sorted(ids, reverse=True)
    else:
        keys = [(r["detected_at"], r["id"]) for r in rows]
        assert keys == sorted(keys, reverse=True)


def test_a_cursor_stays_valid_when_rows_are_inserted_between_pages(world: Stores, admin: FlaskClient) -> None:
    add_alerts(world, 6)
    first = admin.get("/api/v1/alerts?status=all&limit=3")
    seen = [a["id"] for a in first.get_json()]
    # a newer alert (before the cursor) and an older one (after it) arrive between the two pages
    add_alerts(world, 1, prefix="new", at=T0 + dt.timedelta(hours=1))
    add_alerts(world, 1, prefix="old", at=T0 - dt.timedelta(days=1))
    rest, _ = walk(admin, f"/api/v1/alerts?status=all&limit=3&cursor={first.headers['X-Next-Cursor']}")
    ids = seen + [a["id"] for a in rest]
    assert ids == ["pg001", "pg000", "pg003", "pg002", "pg005", "pg004", "old000"]  # ties: the greater id first


def test_an_unusable_cursor_is_a_400_naming_cursor(admin: FlaskClient, world: Stores) -> None:
    add_alerts(world, 4)
    cursor = admin.get("/api/v1/alerts?status=all&limit=2").headers["X-Next-Cursor"]
    for url in [
        "/api/v1/alerts?status=all&cursor=not-a-cursor!",
        "/api/v1/alerts?status=all&cursor=" + "A" * 600,
        f"/api/v1/alerts?status=open&cursor={cursor}",  # another filter set
        f"/api/v1/devices?cursor={cursor}",  # another route
        "/api/v1/people?cursor=WyJ4Il0",  # base64url of ["x"]
    ]:
        response = admin.get(url)
        assert response.status_code == 400, url
        assert response.get_json()["field"] == "cursor" and "cursor" in response.get_json()["error"]
    assert admin.get("/api/v1/devices?limit=x").get_json()["field"] == "limit"


def test_a_grid_workers_pages_hold_only_their_grid_and_are_full(world: Stores) -> None:
    with world.sessions() as session:
        grid = session.scalars(select(Household.grid_id).where(Household.community_id == "wanhu")).first()
    assert grid is not None
    add_alerts(world, 5, grid=grid)
    add_alerts(world, 5, prefix="other", grid="elsewhere")
    worker = signed_in(create_app(world), f"grid.{grid}")
    with world.sessions() as session:
        mine = sorted(session.scalars(select(Household.id).where(Household.grid_id == grid)))
    limit = len(mine) // 3 + 1
    rows, sizes = walk(worker, f"/api/v1/households?limit={limit}")
    assert [h["id"] for h in rows] == mine
    assert len(sizes) == 3 and all(size == limit for size in sizes[:-1])
    alerts, sizes = walk(worker, "/api/v1/alerts?status=all&limit=2")
    assert [a["grid"] for a in alerts] == [grid] * 5 and sizes == [2, 2, 1]


def test_people_lists_a_person_of_two_households_once_with_the_households_in_scope(world: Stores) -> None:
    with world.sessions.begin() as session:
        homes = list(session.scalars(select(Household).where(Household.community_id == "wanhu").order_by(Household.id)))
        here = homes[0]
        there = next(h for h in homes if h.grid_id != here.grid_id)
        session.add(Person(id="wanhu-P-TWOHOMES", community_id="wanhu", name="付宇宇", id_number="320902199001011234"))
        session.add_all(Residency(person_id="wanhu-P-TWOHOMES", household_id=h.id, role="owner") for h in (there, here))
    admin = signed_in(create_app(world), "admin")
    rows = [p for p in whole(admin, "/api/v1/people?community=wanhu") if p["id"] == "wanhu-P-TWOHOMES"]
    assert len(rows) == 1
    first = min(here.id, there.id)
    assert rows[0]["household"] == first and rows[0]["households"] == sorted([here.id, there.id])
    assert rows[0]["id_number"] != "320902199001011234"  # masked as before
    everyone = whole(admin, "/api/v1/people?community=wanhu")
    assert len({p["id"] for p in everyone}) == len(everyone)
    worker = signed_in(create_app(world), f"grid.{here.grid_id}")
    seen = [p for p in whole(worker, "/api/v1/people") if p["id"] == "wanhu-P-TWOHOMES"]
    assert len(seen) == 1 and seen[0]["households"] == [here.id] and seen[0]["household"] == here.id


@pytest.mark.parametrize(
    "key",
    [[2**70], ["12"], [{"t": "0001-01-01T00:00:00+14:00"}], [{"t": "yesterday"}], [1, 2], []],
)
def test_a_forged_cursor_with_the_right_fingerprint_is_still_refused(key: list[Any]) -> None:
    raw = json.dumps(["fp", *key]).encode()
    with pytest.raises(BadParameter) as refused:
        decode_cursor(base64.urlsafe_b64encode(raw).decode().rstrip("="), "fp", SortKey((AuditEntry.id,)))
    assert refused.value.values == {"field": "cursor"}
    alerts = SortKey((AlertRecord.detected_at, AlertRecord.id))
    with pytest.raises(BadParameter):
        decode_cursor(encode_cursor("fp", (T0, "x"))[:-3] + "!!!", "fp", alerts)
    assert decode_cursor(encode_cursor("fp", (T0, "x")), "fp", alerts) == (T0, "x")


def test_a_client_follows_the_link_header_over_http(demo_server: LiveServer) -> None:
    police = http_login(demo_server.url, "police.wanhu")
    url = f"{demo_server.url}/api/v1/devices?community=wanhu&type=smoke_detector"
    everything = police.get(url + "&limit=1000", timeout=30).json()
    limit = len(everything) // 2 + 1
    rows: list[dict[str, Any]] = []
    response = police.get(f"{url}&limit={limit}", timeout=30)
    while True:
        assert response.status_code == 200
        rows += response.json()
        if "next" not in response.links:
            break
        response = police.get(response.links["next"]["url"], timeout=30)  # requests parses RFC 8288
    assert [d["id"] for d in rows] == [d["id"] for d in everything] and len(everything) > limit  # (status is live)
