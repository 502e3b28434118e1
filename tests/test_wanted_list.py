"""The wanted list is a tip-off risk: its hits and notes reach police and admins only (or the roles
``SANDTABLE_WATCHLIST_VISIBLE_TO`` names), through every way alerts leave the system."""

from __future__ import annotations

import datetime as dt
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from alerts.live import AlertStore
from app import create_app
from auth.models import User
from auth.principal import ROLES, Principal
from auth.service import create_token
from callbacks.requests import city_refresh_request
from closedloop.models import Task
from closedloop.service import Loop
from core.errors import ConfigError, InvalidInput
from core.i18n import t
from core.settings import ROLE_NAMES, load_settings
from core.timefmt import SHANGHAI
from layouts import wall_data
from registry.demo import WANTED_ID, WANTED_NOTE
from registry.models import Device, Household, Vehicle
from reports.request import build_request
from reports.service import make_report
from store.stores import Stores
from tests.conftest import DEMO_PASSWORD
from tests.test_closed_loop import on_duty
from tests.test_wall import feed, now_ms

pytestmark = pytest.mark.also_on_pg  # the tests using settings or world run on PostgreSQL too

ORIGIN = {"Origin": "http://localhost"}
POLICE = Principal(kind="user", id="police.wanhu", role="police", community="wanhu")
WALL = Principal(kind="token", id="wall", role="wall", community="wanhu", token_scope="role")
WANTED_LABEL = t("alert.type.watchlist.match", "zh")


@dataclass
class Hits:
    """A wanted man at a rental's smart lock in grid wanhu-G1, and a blacklisted car at a barrier."""

    plate: str
    plate_note: str
    grid_guard: str  # the guard of the grid worker account grid.wanhu-G1


def wanted_hits(world: Stores) -> Hits:
    with world.sessions() as session:
        lock = session.scalars(
            select(Device.id)
            .join(Household, Household.id == Device.household_id)
            .where(
                Device.type == "smart_lock",
                Device.grid_id == "wanhu-G1",
                Household.category.in_(("rental", "group_rental")),
            )
            .order_by(Device.id)
        ).first()
        barrier = session.scalars(
            select(Device.id)
            .where(Device.type == "vehicle_gate", Device.community_id == "wanhu")
            .order_by(Device.grid_id == "wanhu-G1", Device.id)
        ).first()
        plate, note = session.execute(
            select(Vehicle.plate, Vehicle.note)
            .where(Vehicle.blacklisted.is_(True), Vehicle.community_id == "wanhu")
            .order_by(Vehicle.plate)
        ).first() or ("", "")
        guard = session.scalar(select(User.guard_id).where(User.username == "grid.wanhu-G1"))
    assert lock and barrier and guard and plate and note
    ts = now_ms() - 5_000
    feed(
        world,
        [
            {"type": "lock.open", "device": lock, "ts": ts, "data": {"method": "card", "id_number": WANTED_ID}},
            {"type": "gate.vehicle", "device": barrier, "ts": ts, "data": {"direction": "in", "plate": plate}},
        ],
    )
    types = {a["type"] for a in AlertStore(world.redis, world.keys).open_alerts("wanhu")}
    assert {"watchlist.match", "gate.blacklist", "lock.unregistered"} <= types
    return Hits(plate=plate, plate_note=note, grid_guard=guard)


def signed_in(app: Any, username: str) -> Any:
    client = app.server.test_client()
    response = client.post("/login", data={"username": username, "password": DEMO_PASSWORD}, headers=ORIGIN)
    assert response.status_code == 302
    return client


def wall_client(app: Any, world: Stores) -> Any:
    with world.sessions.begin() as session:
        _, token = create_token(session, scope="role", role="wall", community="wanhu")
    client = app.server.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return client


def alerts_of(client: Any) -> tuple[list[dict[str, Any]], str]:
    response = client.get("/api/v1/alerts?status=all")
    assert response.status_code == 200
    return response.get_json(), response.get_data(as_text=True)


def assert_nothing_of_the_wanted_list(alerts: list[dict[str, Any]], body: str, hits: Hits) -> None:
    assert "watchlist.match" not in {a["type"] for a in alerts}
    assert "watchlist_note" not in body and WANTED_NOTE not in body
    assert hits.plate_note not in body
    # an ID number's hash is how the wanted list is keyed: no opener hash either
    assert all(a["evidence"].get("opener_kind") != "id_hash" or "opener" not in a["evidence"] for a in alerts)


def with_settings(world: Stores, **overrides: Any) -> Stores:
    """The same stores under other settings (validated like the environment's)."""
    settings = load_settings(**{**world.settings.model_dump(), **overrides})
    return Stores(settings=settings, engine=world.engine, keys=world.keys)


def test_the_wall_gets_no_wanted_list_hit_nor_note_police_do(world: Stores) -> None:
    hits = wanted_hits(world)
    app = create_app(world)
    alerts, body = alerts_of(wall_client(app, world))
    assert_nothing_of_the_wanted_list(alerts, body, hits)
    # the blacklisted car is still a matter for the wall, without its note or its plate
    (car,) = [a for a in alerts if a["type"] == "gate.blacklist"]
    assert "note" not in car["evidence"] and hits.plate not in body
    # police see everything: the hit with the wanted list's note, the car with its plate and note
    alerts, _ = alerts_of(signed_in(app, "police.wanhu"))
    (wanted,) = [a for a in alerts if a["type"] == "watchlist.match"]
    assert wanted["evidence"]["watchlist_note"] == WANTED_NOTE
    (car,) = [a for a in alerts if a["type"] == "gate.blacklist"]
    assert car["evidence"]["note"] == hits.plate_note and car["subject"]["plate"] == hits.plate


def test_the_wall_screen_shows_no_wanted_list_hit(world: Stores) -> None:
    hits = wanted_hits(world)
    now = now_ms()
    items = wall_data.feed_items(world, WALL, "wanhu", "zh")
    assert items and all(i["type"] != "watchlist.match" for i in items)
    assert WANTED_LABEL not in json.dumps(items, ensure_ascii=False)
    figures = wall_data.key_figures(world, WALL, "wanhu", now)
    police = wall_data.key_figures(world, POLICE, "wanhu", now)
    assert figures["open_alerts"]["critical"] == police["open_alerts"]["critical"] - 1
    assert "watchlist.match" not in wall_data.alerts_by_type_24h(world, WALL, "wanhu", now)
    assert "watchlist.match" in wall_data.alerts_by_type_24h(world, POLICE, "wanhu", now)
    assert hits.plate_note not in json.dumps(items, ensure_ascii=False)


def test_the_city_wall_counts_no_wanted_list_hit(world: Stores) -> None:
    wanted_hits(world)
    app = create_app(world)

    def city(username: str) -> tuple[dict[str, Any], str]:
        client = signed_in(app, username)
        client.get("/_dash-layout")
        response = client.post(
            "/_dash-update-component",
            json=city_refresh_request({"since": 0, "full_at": 0, "lang": "zh"}),
            headers=ORIGIN,
        )
        assert response.status_code == 200
        out = response.get_json()["response"]
        points = {f["properties"]["id"]: f["properties"] for f in out["city-points"]["data"]["features"]}
        return points["wanhu"], json.dumps(out["city-chart-types"], ensure_ascii=False)

    wall_point, wall_types = city("wall.city")
    police_point, police_types = city("police.city")
    assert WANTED_LABEL in police_types and WANTED_LABEL not in wall_types
    assert wall_point["open"] == police_point["open"] - 1
    assert wall_point.get("c", 0) == police_point["c"] - 1


def test_a_grid_worker_sees_no_wanted_list_hit_in_the_alerts_api(world: Stores) -> None:
    hits = wanted_hits(world)
    app = create_app(world)
    alerts, body = alerts_of(signed_in(app, "grid.wanhu-G1"))
    assert alerts  # the grid's other matters are there (the unregistered opener of the rental)
    assert "lock.unregistered" in {a["type"] for a in alerts}
    assert_nothing_of_the_wanted_list(alerts, body, hits)


def test_a_wanted_list_hit_is_never_a_grid_workers_task(world: Stores) -> None:
    hits = wanted_hits(world)
    (wanted,) = [a for a in AlertStore(world.redis, world.keys).open_alerts("wanhu") if a["type"] == "watchlist.match"]
    grid_worker = Principal(
        kind="user", id="grid.wanhu-G1", role="grid_worker", community="wanhu", grid="wanhu-G1", guard=hits.grid_guard
    )
    on_duty(world, hits.grid_guard)
    # police cannot send the grid worker to it …
    with pytest.raises(InvalidInput, match="wanted list"):
        Loop(world).dispatch(POLICE, "wanhu", wanted["id"], hits.grid_guard, expected="new")
    # … and a task offered while the setting allowed it leaves their list once it no longer does
    wider = with_settings(world, watchlist_visible_to="police,grid_worker")
    Loop(wider).dispatch(POLICE, "wanhu", wanted["id"], hits.grid_guard, expected="new")
    assert [t.title for t in Loop(wider).my_tasks(grid_worker)] == ["watchlist.match"]
    assert Loop(world).my_tasks(grid_worker) == []
    with world.sessions() as session:
        assert session.scalars(select(Task.title)).all() == ["watchlist.match"]


def test_the_setting_widens_who_sees_the_wanted_list(world: Stores) -> None:
    hits = wanted_hits(world)
    wider = with_settings(world, watchlist_visible_to="police,grid_worker")
    app = create_app(wider)
    alerts, _ = alerts_of(signed_in(app, "grid.wanhu-G1"))
    (wanted,) = [a for a in alerts if a["type"] == "watchlist.match"]
    assert wanted["evidence"]["watchlist_note"] == WANTED_NOTE
    # the roles it does not name still see nothing of it
    wall_alerts, wall_body = alerts_of(wall_client(app, wider))
    assert_nothing_of_the_wanted_list(wall_alerts, wall_body, hits)


def test_the_setting_names_roles_and_refuses_an_unknown_one() -> None:
    assert load_settings(watchlist_visible_to="police, grid_worker").watchlist_roles == {"police", "grid_worker"}
    assert load_settings(watchlist_visible_to="").watchlist_roles == frozenset()  # admins only
    with pytest.raises(ConfigError, match="SANDTABLE_WATCHLIST_VISIBLE_TO"):
        load_settings(watchlist_visible_to="police,polise")


def test_a_report_for_the_wall_counts_no_wanted_list_hit(world: Stores, tmp_path: Path) -> None:
    wanted_hits(world)
    today = dt.datetime.now(SHANGHAI).date()

    def report_text(role: str) -> str:
        operator = Principal(kind="system", id="manage.py", role=role)
        with world.sessions() as session:
            request = build_request(session, operator, world.settings, communities="wanhu", start=today, end=today)
        out = tmp_path / f"{role}.zip"
        make_report(world, request, "csv", out)
        with zipfile.ZipFile(out) as archive:
            return "".join(archive.read(n).decode("utf-8-sig") for n in archive.namelist())

    assert "watchlist.match" in report_text("police")
    wall = report_text("wall")
    assert "watchlist.match" not in wall and WANTED_LABEL not in wall
    assert "gate.blacklist" in wall  # the rest of the period is there


def test_the_setting_knows_every_role() -> None:
    assert set(ROLE_NAMES) == set(ROLES)
