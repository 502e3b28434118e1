"""The city view: open-alert counts per community, the scoped refresh with deltas, the drill-down,
and the synthetic city of `demo --city`."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from shapely.geometry import shape
from sqlalchemy import func, select

from alerts.live import AlertStore
from analytics.worker import Worker
from app import create_app
from auth.principal import SYSTEM
from callbacks.requests import city_refresh_request
from ingest.service import IngestService
from layouts.city_data import key_figures as city_figures
from layouts.city_data import registry_figures
from layouts.wall_data import key_figures as wall_figures
from registry import validate
from registry.models import Community, Device, Household, Person
from reports.collect import collect
from reports.request import build_request
from store.stores import Stores
from tests.browser import browser_login, dispatch_click, settled, text_of, until, wait_for
from tests.conftest import DEMO_PASSWORD, LiveServer, run_manage, save_screenshot
from tests.test_map_page import severe_errors
from tests.test_pipeline import devices_of, drain

pytestmark = pytest.mark.also_on_pg  # the tests using settings or world run on PostgreSQL too

ORIGIN = {"Origin": "http://localhost"}


def now_ms() -> int:
    return int(time.time() * 1000)


def smoke_in_wanhu(world: Stores) -> None:
    """A smoke alarm in Wanhu Xincun, ingested and processed as the running system would."""
    detector = devices_of(world, "smoke_detector", 1)[0]
    IngestService(world).ingest(
        "wanhu", [{"type": "smoke.alarm", "device": detector, "ts": now_ms() - 1000, "data": {"level": "alarm"}}]
    )
    worker = Worker(world)
    worker.start_community("wanhu", seed_timers=False)
    drain(worker)


def client_as(app: Any, username: str) -> Any:
    client = app.server.test_client()
    response = client.post("/login", data={"username": username, "password": DEMO_PASSWORD}, headers=ORIGIN)
    assert response.status_code == 302
    client.get("/_dash-layout")
    return client


def city_tick(client: Any, state: dict[str, Any]) -> Any:
    return client.post("/_dash-update-component", json=city_refresh_request(state), headers=ORIGIN)


@pytest.mark.also_on_cluster
def test_open_alert_counts_follow_alerts_and_survive_a_restart(world: Stores) -> None:
    smoke_in_wanhu(world)
    alerts = AlertStore(world.redis, world.keys)
    assert alerts.open_counts(["wanhu", "xingbang"]) == {
        "wanhu": {"sev:critical": 1, "type:smoke": 1},
        "xingbang": {},
    }
    # counts lost (e.g. a Redis restored from an older snapshot): a starting worker recounts them
    world.redis.delete(world.keys.alert_counts("wanhu"))
    Worker(world).start_community("wanhu", seed_timers=False)
    assert alerts.open_counts(["wanhu"])["wanhu"] == {"sev:critical": 1, "type:smoke": 1}
    # closing the alert takes it off the counts
    alert = alerts.open_alerts("wanhu")[0]
    alerts.transition("wanhu", alert["id"], "false_alarm", actor="test", at_ms=now_ms())
    assert alerts.open_counts(["wanhu"])["wanhu"] == {}


@pytest.mark.also_on_cluster
def test_the_city_refresh_is_scoped_and_sends_only_what_changed(world: Stores) -> None:
    smoke_in_wanhu(world)
    time.sleep(1.1)  # out of the next tick's second of overlap
    app = create_app(world)  # one app per process: Dash wires its callbacks into the first one
    city = client_as(app, "police.city")
    response = city_tick(city, {"since": 0, "full_at": 0, "lang": "zh"})
    assert response.status_code == 200
    out = response.get_json()["response"]
    points = {f["properties"]["id"]: f["properties"] for f in out["city-points"]["data"]["features"]}
    assert points["wanhu"]["worst"] == "critical" and points["wanhu"]["open"] == 1
    assert points["xingbang"]["worst"] == "none" and points["xingbang"]["open"] == 0
    kpis = json.dumps(out["city-kpis"]["children"], ensure_ascii=False)
    assert "智慧安防小区" in kpis and "17,5" in kpis  # two communities, ~17,500 residents
    assert "万户新村" in json.dumps(out["city-chart-top"]["figure"], ensure_ascii=False)
    state = out["city-state"]["data"]

    # nothing changed since (beyond the second of overlap): no bytes
    time.sleep(1.2)
    assert city_tick(city, state).status_code == 204

    # the alert is closed: the next tick patches Wanhu's point only
    alerts = AlertStore(world.redis, world.keys)
    alert = alerts.open_alerts("wanhu")[0]
    alerts.transition("wanhu", alert["id"], "false_alarm", actor="test", at_ms=now_ms())
    response = city_tick(city, state)
    assert response.status_code == 200
    patch = json.dumps(response.get_json()["response"]["city-points"]["data"], ensure_ascii=False)
    assert '"worst": "none"' in patch and "wanhu" in patch and "xingbang" not in patch

    # a community's officer sees one community: no city view, no data from the callback, no link
    local = client_as(app, "police.wanhu")
    assert city_tick(local, {"since": 0, "full_at": 0, "lang": "zh"}).status_code == 204
    assert 'href="/city"' not in local.get("/").get_data(as_text=True)
    # the city command centre is sent to the city by the server (one navigation, no page redirect)
    centre = client_as(app, "police.city")
    assert centre.get("/").headers["Location"].endswith("/city")
    assert centre.get("/wall?kiosk=1").headers["Location"].endswith("/city?kiosk=1")
    assert centre.get("/?community=wanhu").status_code == 200  # a community's wall, from the city
    grid = client_as(app, "grid.wanhu-G1")  # no city page at all: the access layer refuses its callback
    assert city_tick(grid, {"since": 0, "full_at": 0, "lang": "zh"}).status_code == 403


@pytest.mark.browser
def test_the_city_command_centre_lands_on_the_city_and_drills_into_a_community(world: Stores, browser) -> None:
    smoke_in_wanhu(world)
    server = LiveServer(world.settings)
    try:
        browser_login(browser, server.url, "police.city")
        browser.get(server.url + "/")
        points = wait_for(browser, "path.st-city-point", minimum=2)
        assert "/city" in browser.current_url
        assert len(browser.find_elements(By.CSS_SELECTOR, "path.st-city-critical")) == 1
        assert "有高危警情的小区" in text_of(browser, "#city-kpis")
        wait_for(browser, "#city-chart-top .barlayer")
        settled(browser)
        save_screenshot(browser, "city_two_communities_zh")
        dispatch_click(browser, "path.st-city-critical")
        until(lambda: "community=wanhu" in browser.current_url, "Wanhu's sand-table to open")
        wait_for(browser, "path.st-bld", minimum=128)  # Wanhu Xincun's sand-table
        assert len(points) == 2
        assert severe_errors(browser) == []
    finally:
        server.stop()


def test_demo_city_builds_a_valid_city(stores: Stores) -> None:
    result = run_manage(stores.settings, "demo", "--city", "--city-size", "8", "--json", timeout=600)
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["communities"] == 8
    with stores.sessions() as session:
        synthetic = list(session.scalars(select(Community).where(Community.id.like("yc%"))))
        assert len(synthetic) == 6
        boundaries = [shape(json.loads(c.boundary)) for c in synthetic]
        for i, a in enumerate(boundaries):
            assert a.is_valid
            assert not any(a.intersects(b) for b in boundaries[i + 1 :]), "communities overlap"
        for c, boundary in zip(synthetic, boundaries, strict=True):
            residents = session.scalar(select(func.count()).where(Person.community_id == c.id))
            devices = session.scalar(select(func.count()).where(Device.community_id == c.id))
            households = session.scalar(select(func.count()).where(Household.community_id == c.id))
            assert 400 <= (residents or 0) <= 4000 and 300 <= (devices or 0) <= 2500 and (households or 0) >= 160
            lats_lons = session.execute(select(Device.lat, Device.lon).where(Device.community_id == c.id)).all()
            assert all(
                boundary.buffer(0.0005).contains(shape({"type": "Point", "coordinates": [lon, lat]}))
                for lat, lon in lats_lons
            )
        numbers = list(session.scalars(select(Person.id_number).where(Person.community_id.like("yc%"))))
        assert len(numbers) == len(set(numbers)) and all(validate.id_number(n) == n for n in numbers)
    # the command centre's accounts exist and see the whole city
    city = client_as(create_app(stores), "police.city")
    response = city_tick(city, {"since": 0, "full_at": 0, "lang": "en"})
    assert len(response.get_json()["response"]["city-points"]["data"]["features"]) == 8


def test_the_city_the_wall_and_the_report_count_rentals_the_same_way(world: Stores) -> None:
    """出租房 is one figure: the city view's tile, the wall's tile and a report's key figures agree."""
    with world.sessions() as session:
        rentals = session.scalar(
            select(func.count()).where(Household.community_id == "wanhu", Household.category == "rental")
        )
        group = session.scalar(
            select(func.count()).where(Household.community_id == "wanhu", Household.category == "group_rental")
        )
    assert rentals and group  # the demo has both kinds
    wall = wall_figures(world, SYSTEM, "wanhu", int(time.time() * 1000))
    city = registry_figures(world)["wanhu"]
    city_tile = city_figures([SimpleNamespace(id="wanhu")], {}, registry_figures(world))  # type: ignore[list-item]
    today = time.strftime("%Y-%m-%d")
    with world.sessions() as session:
        request = build_request(session, SYSTEM, world.settings, communities=["wanhu"], start=today, end=today)
    report = collect(world, request, now_ms=int(time.time() * 1000))
    (row,) = report.tables["key_figures"].rows
    assert wall["rentals"] == city["rentals"] == city_tile["rentals"] == row["rentals"] == rentals
    assert wall["group_rentals"] == city["group_rentals"] == row["group_rentals"] == group
