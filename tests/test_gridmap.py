"""Issue #18, the grid worker's part: each role lands on its own page, the grid worker's map (their
grid, their tasks, the walk there, their position; scoped on the server) and people-readable
labels in the console, the tasks page and the reports."""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from sqlalchemy import select

from alerts.live import AlertStore
from auth.labels import labels
from auth.masking import mask_name
from auth.policy import landing_page
from auth.principal import Principal
from callbacks.console import evidence_rows
from callbacks.mymap import area, my_map
from callbacks.requests import TICK
from callbacks.util import dash_request, prop
from closedloop.service import Loop
from geodata.network import Network, metres, path_graph
from layouts import ids
from layouts.gate import tick_id
from registry.models import Building, Device, Guard, Person
from reports.request import build_request
from reports.service import make_report
from store.stores import Stores
from tests.browser import browser_login, settled, text_of, wait_for
from tests.conftest import LiveServer, http_login, new_browser, save_screenshot
from tests.test_closed_loop import on_duty
from tests.test_wall import feed, now_ms

POLICE = Principal(kind="user", id="police.wanhu", role="police", community="wanhu", name="万户新村社区民警")
RAW_ID = re.compile(r"wanhu-(B\d|GD\d|G\d|P\d)|police\.wanhu|grid\.wanhu|\bproperty\b")


def at(origin: tuple[float, float], east_m: float, north_m: float) -> tuple[float, float]:
    """(lat, lon) east/north of origin."""
    lat0, lon0 = origin
    return lat0 + north_m / 111_320, lon0 + east_m / (111_320 * math.cos(math.radians(lat0)))


# --- route geometry -------------------------------------------------------------------------------


def test_the_walk_follows_the_paths_round_a_corner() -> None:
    """An L-shaped path: the walk goes to the corner and on, never across the lawn."""
    origin = (33.39, 120.155)
    corner, end = at(origin, 200, 0), at(origin, 200, 150)
    line = {"type": "LineString", "coordinates": [[p[1], p[0]] for p in (origin, corner, end)]}
    network = Network(path_graph([line]))

    walk = network.route(at(origin, 0, 5), at(end, 5, 0))  # both a few metres off the path

    assert walk.points[0] == at(origin, 0, 5) and walk.points[-1] == at(end, 5, 0)
    assert (round(corner[0], 7), round(corner[1], 7)) in walk.points  # round the corner
    assert 355 <= walk.metres <= 365  # 5 + 200 + 150 + 5 over the paths
    assert walk.straight_m < 260  # the lawn would have been shorter
    assert walk.geojson()["coordinates"][0] == [walk.points[0][1], walk.points[0][0]]


def test_without_a_network_the_walk_is_a_straight_line() -> None:
    a, b = (33.39, 120.155), (33.391, 120.156)
    walk = Network(path_graph([])).route(a, b)
    assert walk.points == [a, b] and walk.metres == pytest.approx(metres(*a, *b))


# --- landing ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "page"),
    [
        ("admin", "/"),
        ("police", "/"),
        ("wall", "/"),
        ("grid_worker", "/tasks"),
        ("property", "/tasks"),
        ("guard", "/tasks"),
    ],
)
def test_each_role_has_a_landing_page(role: str, page: str) -> None:
    assert landing_page(Principal(kind="user", id="u", role=role, community="wanhu")) == page


def test_the_city_command_centre_lands_on_the_city() -> None:
    assert landing_page(Principal(kind="user", id="u", role="police", community=None)) == "/city"
    assert landing_page(Principal(kind="user", id="u", role="wall", community=None)) == "/city"
    assert landing_page(Principal(kind="user", id="u", role="admin", community=None)) == "/"


@pytest.mark.parametrize(
    ("username", "lands_on"),
    [
        ("admin", None),
        ("police.wanhu", None),
        ("wall.wanhu", None),
        ("grid.wanhu-G1", "/tasks"),
        ("property.wanhu", "/tasks"),
    ],
)
def test_opening_the_root_takes_each_role_to_its_page(
    demo_server: LiveServer, username: str, lands_on: str | None
) -> None:
    session = http_login(demo_server.url, username)
    response = session.get(demo_server.url + "/", allow_redirects=False, timeout=30)
    if lands_on is None:
        assert response.status_code == 200
    else:
        assert response.status_code == 302 and response.headers["Location"].endswith(lands_on)
        page = session.get(demo_server.url + lands_on, timeout=30)
        assert page.status_code == 200


# --- the grid worker's map -----------------------------------------------------------------------


@dataclass
class Scene:
    """Two smoke alarms dispatched: one to the grid worker of G1 (walking towards it), one to G2's."""

    world: Stores
    worker: Principal
    mine: str  # the task of the grid worker of G1
    theirs: str  # the task of the grid worker of G2
    alert: dict[str, Any]


def smoke_in(world: Stores, grid: str) -> dict[str, Any]:
    """A smoke alarm from a detector in a grid, as the pipeline raises it."""
    with world.sessions() as session:
        detector = session.scalars(
            select(Device.id).where(Device.type == "smoke_detector", Device.grid_id == grid).order_by(Device.id)
        ).first()
    feed(world, [{"type": "smoke.alarm", "device": detector, "ts": now_ms(), "data": {"level": "alarm"}}])
    alerts = AlertStore(world.redis, world.keys).open_alerts("wanhu")
    return next(a for a in alerts if a["type"] == "smoke" and a["subject"].get("device") == detector)


@pytest.fixture
def scene(world: Stores) -> Scene:
    loop = Loop(world)
    mine_alert, their_alert = smoke_in(world, "wanhu-G1"), smoke_in(world, "wanhu-G2")
    with world.sessions() as session:
        g1, g2 = (session.get(Guard, g) for g in ("wanhu-GD10", "wanhu-GD11"))
        assert g1 is not None and g2 is not None and g1.device_id
        wearable = g1.device_id
        far = session.scalars(
            select(Building).where(Building.grid_id == "wanhu-G1").order_by(Building.id.desc())
        ).first()
        assert far is not None
        lat, lon = far.lat, far.lon  # at another building of the grid
    feed(world, [{"type": "guard.position", "device": wearable, "ts": now_ms(), "data": {"lat": lat, "lon": lon}}])
    on_duty(world, "wanhu-GD10", "wanhu-GD11")
    mine = loop.dispatch(POLICE, "wanhu", mine_alert["id"], "wanhu-GD10", expected=None, note="请速去")
    theirs = loop.dispatch(POLICE, "wanhu", their_alert["id"], "wanhu-GD11", expected=None)
    worker = Principal(
        kind="user",
        id="grid.wanhu-G1",
        role="grid_worker",
        community="wanhu",
        grid="wanhu-G1",
        name="黎萍婷",
        guard="wanhu-GD10",
    )
    return Scene(world, worker, mine.id, theirs.id, mine_alert)


def test_the_map_shows_my_grid_my_task_and_the_walk_from_where_i_am(scene: Scene) -> None:
    view = my_map(scene.world, Loop(scene.world), scene.worker, "zh")
    assert view.selected == scene.mine
    assert [f["properties"]["id"] for f in view.targets["features"]] == [scene.mine]
    assert view.targets["features"][0]["properties"]["label"].startswith("烟感报警 · ")
    assert "幢" in view.targets["features"][0]["properties"]["label"]
    (me,) = view.me["features"]
    (walk,) = view.route["features"]
    line = walk["geometry"]["coordinates"]
    assert line[0] == me["geometry"]["coordinates"]  # from where I am …
    assert line[-1] == [scene.alert["location"]["lon"], scene.alert["location"]["lat"]]  # … to the target
    assert len(line) > 2 and view.metres is not None and view.metres >= walk["properties"]["metres"] - 1
    layers = area(scene.world, scene.worker)
    assert {f["properties"]["id"] for f in layers["grid"]["features"]} == {"wanhu-G1"}
    with scene.world.sessions() as session:
        in_grid = set(session.scalars(select(Building.id).where(Building.grid_id == "wanhu-G1")))
    assert {f["properties"]["id"] for f in layers["buildings"]["features"]} == in_grid
    assert all("households" not in f["properties"] for f in layers["buildings"]["features"])


def test_the_map_ignores_a_task_of_someone_else_that_the_browser_asks_for(scene: Scene) -> None:
    """A hand-made callback request naming G2's task gets the grid worker's own task and grid only."""
    server = LiveServer(scene.world.settings)
    try:
        phone = http_login(server.url, "grid.wanhu-G1")
        body = dash_request(
            [
                (ids.MYMAP_TARGETS, "data"),
                (ids.MYMAP_ROUTE, "data"),
                (ids.MYMAP_ME, "data"),
                (ids.MYMAP_INFO, "children"),
                (ids.MYMAP_PICK, "children"),
                (ids.MYMAP, "viewport"),
            ],
            [prop(tick_id(ids.MYMAP_REFRESH), "data", TICK), prop(ids.MYMAP_SELECTED, "data", {"task": scene.theirs})],
            [],
            f"{ids.MYMAP_SELECTED}.data",
        )
        answer = phone.post(server.url + "/_dash-update-component", json=body, timeout=30)
        assert answer.status_code == 200, answer.text[:300]
        shown = answer.json()["response"]
        targets = [f["properties"]["id"] for f in shown[ids.MYMAP_TARGETS]["data"]["features"]]
        assert targets == [scene.mine]
        assert scene.theirs not in answer.text
        assert "步行约" in json.dumps(shown[ids.MYMAP_INFO], ensure_ascii=False)

        area_body = dash_request(
            [(ids.MYMAP_GRID, "data"), (ids.MYMAP_BUILDINGS, "data"), (ids.MYMAP_PATHS, "data")],
            [prop(ids.MYMAP, "id", ids.MYMAP)],
            [],
            f"{ids.MYMAP}.id",
        )
        layers = phone.post(server.url + "/_dash-update-component", json=area_body, timeout=30).json()["response"]
        grids = {f["properties"]["id"] for f in layers[ids.MYMAP_GRID]["data"]["features"]}
        buildings = {f["properties"]["id"] for f in layers[ids.MYMAP_BUILDINGS]["data"]["features"]}
        with scene.world.sessions() as session:
            in_grid = set(session.scalars(select(Building.id).where(Building.grid_id == "wanhu-G1")))
        assert grids == {"wanhu-G1"} and buildings == in_grid
    finally:
        server.stop()


# --- labels ---------------------------------------------------------------------------------------


def shown_text(component: Any) -> str:
    """What a person reads in a Dash component tree (its children's texts, not its ids or classes)."""
    if isinstance(component, str):
        return component
    if isinstance(component, list):
        return " ".join(shown_text(c) for c in component)
    if isinstance(component, dict):
        props = component.get("props", component)
        return shown_text(props.get("children")) if isinstance(props, dict) else ""
    return ""


def raw_ids(text: str) -> list[str]:
    """The raw ids a person should not have to read in this text."""
    return [m.group(0) for m in RAW_ID.finditer(text)]


def test_console_tasks_and_report_show_addresses_and_names_not_ids(scene: Scene, tmp_path: Path) -> None:
    alert_id = scene.alert["id"]
    Loop(scene.world).task_action(scene.worker, scene.mine, "accept", version=1)
    server = LiveServer(scene.world.settings)
    try:
        police = http_login(server.url, "police.wanhu")
        selected = {"community": "wanhu", "alert": alert_id, "lang": "zh"}
        detail = dash_request(
            [(ids.CONSOLE_DETAIL, "children"), (ids.CONSOLE_SEEN, "data")],
            [
                prop(ids.CONSOLE_SELECTED, "data", selected),
                prop(ids.CONSOLE_DONE, "data", 0),
                prop(tick_id(ids.CONSOLE_REFRESH), "data", TICK),
            ],
            [prop(ids.CONSOLE_SEEN, "data", None)],
            f"{ids.CONSOLE_SELECTED}.data",
        )
        shown = police.post(server.url + "/_dash-update-component", json=detail, timeout=30)
        text = shown_text(shown.json()["response"][ids.CONSOLE_DETAIL]["children"])
        assert "幢" in text and "单元" in text  # the subject's household and building, as addresses
        assert "网格员 黎萍婷" in text  # the task's guard in the timeline
        assert "万户新村社区民警" in text  # the acting officer, by the account's name
        assert raw_ids(text) == []

        queue = dash_request(
            [(ids.CONSOLE_LIST, "children")],
            [
                prop(tick_id(ids.CONSOLE_REFRESH), "data", TICK),
                prop(ids.CONSOLE_STATUS, "value", "open"),
                prop(ids.CONSOLE_TYPE, "value", None),
                prop(ids.CONSOLE_DONE, "data", 0),
            ],
            [prop(ids.CONSOLE_SELECTED, "data", selected)],
            f"{tick_id(ids.CONSOLE_REFRESH)}.data",
        )
        rows = shown_text(
            police.post(server.url + "/_dash-update-component", json=queue, timeout=30).json()["response"][
                ids.CONSOLE_LIST
            ]["children"]
        )
        assert "智能" in rows or "烟感" in rows
        assert "幢" in rows and raw_ids(rows) == []

        phone = http_login(server.url, "grid.wanhu-G1")
        tasks = dash_request(
            [(ids.TASKS_LIST, "children"), (ids.TASKS_VERSIONS, "data")],
            [prop(tick_id(ids.TASKS_REFRESH), "data", TICK), prop(ids.TASKS_DONE, "data", 0)],
            [prop(ids.TASKS_VERSIONS, "data", {"lang": "zh"})],
            f"{ids.TASKS_DONE}.data",
        )
        cards = phone.post(server.url + "/_dash-update-component", json=tasks, timeout=30).json()["response"]
        card_text = shown_text(cards[ids.TASKS_LIST]["children"])
        assert "幢" in card_text and raw_ids(card_text) == []
    finally:
        server.stop()

    with scene.world.sessions() as session:
        request = build_request(session, POLICE, scene.world.settings, communities="wanhu", start=today(), end=today())
    make_report(scene.world, request, "csv", tmp_path / "csv")
    for table in ("alerts", "alert_steps"):
        content = (tmp_path / "csv" / f"{table}.csv").read_text(encoding="utf-8-sig")
        assert alert_id in content
        assert raw_ids(content) == [], table
    steps = (tmp_path / "csv" / "alert_steps.csv").read_text(encoding="utf-8-sig")
    assert "网格员 黎萍婷" in steps and "万户新村社区民警" in steps


def today() -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(time.time() + 8 * 3600))


# --- the phone ------------------------------------------------------------------------------------


@pytest.mark.browser
def test_a_grid_worker_signs_in_and_lands_on_their_map_on_a_phone(scene: Scene) -> None:
    server = LiveServer(scene.world.settings)
    phone = new_browser(390, 844, mobile=True)
    try:
        browser_login(phone, server.url, "grid.wanhu-G1")
        wait_for(phone, ".st-mymap-me")
        assert phone.current_url.endswith("/tasks")
        assert "无权访问" not in phone.find_element(By.TAG_NAME, "body").text
        wait_for(phone, ".st-mymap-target-selected")
        wait_for(phone, "path.st-mymap-route")
        wait_for(phone, "path.st-bld", minimum=3)
        text_of(phone, f"#{ids.MYMAP_INFO}", text="步行约")
        choice = text_of(phone, ".st-mymap-chosen")
        assert "烟感报警" in choice and "幢" in choice
        body = phone.find_element(By.TAG_NAME, "body").text
        assert raw_ids(body) == []
        settled(phone)
        save_screenshot(phone, "gridmap_phone_390x844")
        phone.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": 1366, "height": 768, "deviceScaleFactor": 1, "mobile": False},
        )
        phone.get(server.url + "/")  # a laptop, the app's own link to the start page
        wait_for(phone, "path.st-mymap-route")
        assert phone.current_url.endswith("/tasks")
        settled(phone)
        save_screenshot(phone, "gridmap_laptop_1366x768")
        assert [e for e in phone.get_log("browser") if e["level"] == "SEVERE"] == []
    finally:
        phone.quit()
        server.stop()


def test_evidence_names_people_and_places_masked_for_the_reader(demo_stores: Stores) -> None:
    """A lock opened by a registered person at a building's door: police read the name, property staff
    a masked one; the building and the guard by their names."""
    evidence = {"opener": "wanhu-P00001", "origin": {"building": "wanhu-B052", "floor": 3}, "checked_by": "wanhu-GD10"}
    property_staff = Principal(kind="user", id="property.wanhu", role="property", community="wanhu")
    with demo_stores.sessions() as session:
        name = session.scalars(select(Person.name).where(Person.id == "wanhu-P00001")).one()
        for reader, shown in ((POLICE, name), (property_staff, mask_name(name))):
            rows = dict(evidence_rows(evidence, "zh", labels(session, reader, [evidence], "zh")))
            assert rows["开锁人"] == shown
            assert rows["抛物起点"] == "楼栋 52幢 · 楼层 3"
            assert rows["checked_by"].startswith("网格员 ")
            assert raw_ids(" ".join(rows.values())) == []
