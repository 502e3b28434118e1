"""The 3D sand-table's data (issue 26): a thrown object's path from the window of its floor and column,
bad footprints and floor counts drawn flat and listed by doctor, no names for the wall and the
property office, and the wall's 3D refresh sent as a patch."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, update

from alerts.live import AlertStore
from analytics.worker import Worker
from app import create_app
from auth.principal import Principal
from auth.service import create_token
from callbacks.requests import wall_refresh_request
from callbacks.util import dash_request, prop
from geodata.solid import FLOOR_HEIGHT_M, INVALID_POLYGON, NO_FLOORS, NOT_POLYGON
from ingest.directory import Directory
from ingest.service import IngestService
from layouts import ids
from layouts.drill import load_building
from layouts.drill3d import CELL_D_M, CellLayout, cell_layout, drill_figure, place_throw
from layouts.scene3d import GUARDS, static_scene
from registry.facade import Facade
from registry.models import Building, Community, Device, Household
from registry.queries import Scope
from reports.charts import SEVERITY_COLORS as REPORT_SEVERITY
from reports.model3d import figure as model3d_figure
from reports.service import make_report
from store.stores import Stores
from tests.conftest import DEMO_PASSWORD, run_manage
from tests.test_pipeline import devices_of, drain
from tests.test_reports import pdf_pages, pdf_text, request_for

ORIGIN = {"Origin": "http://localhost"}


def now_ms() -> int:
    return int(time.time() * 1000)


def principal(role: str) -> Principal:
    return Principal(kind="user", id=f"test-{role}", role=role, community="wanhu")


def throw_camera(world: Stores) -> tuple[str, str, int, int]:
    """A demo thrown-object camera: (camera, building, floors, columns) of the façade it faces."""
    with world.sessions() as session:
        camera = session.scalars(
            select(Device).where(Device.community_id == "wanhu", Device.type == "throw_camera").order_by(Device.id)
        ).first()
    assert camera is not None
    calibration = camera.config["calibration"]
    return camera.id, calibration["building"], int(calibration["floors"]), int(calibration["columns"])


def raise_throw(world: Stores, camera: str, building: str, floor: int, column: int) -> dict[str, Any]:
    """The open throw alert after the camera saw an object leave the window at floor and column."""
    event = {
        "type": "camera.throw",
        "device": camera,
        "ts": now_ms(),
        "data": {
            "origin": {"building": building, "floor": floor, "column": column},
            "trajectory": [[0, 400, 100], [100, 402, 140]],
        },
    }
    result = IngestService(world).ingest("wanhu", [event])
    assert not result.rejected, result.rejected
    worker = Worker(world)
    worker.start_community("wanhu", seed_timers=False)
    drain(worker)
    (alert,) = [
        a
        for a in AlertStore(world.redis, world.keys).open_alerts("wanhu")
        if a["type"] == "throw" and a["evidence"]["origin"] == event["data"]["origin"]  # type: ignore[index]
    ]
    return alert


def figure_of(world: Stores, who: Principal, building: str) -> dict[str, Any]:
    """The building's 3D drill-down for this principal, with the community's open alerts."""
    facts = load_building(world, who, building, "zh")
    assert facts is not None
    directory = Directory(world.sessions).facts("wanhu")
    alerts = [
        a for a in AlertStore(world.redis, world.keys).open_alerts("wanhu") if a["subject"].get("building") == building
    ]
    return drill_figure(
        who, facts, "zh", offline=set(), alerts=alerts, facades=directory.facades, landings=directory.landings
    )


def trace(figure: dict[str, Any], meta: str) -> dict[str, Any]:
    return next(tr for tr in figure["data"] if tr.get("meta") == meta)


def address_of(world: Stores, household: str) -> str:
    with world.sessions() as session:
        h = session.get(Household, household)
        assert h is not None
        b = session.get(Building, h.building_id)
        assert b is not None
        return f"{b.name}{h.unit}单元{h.room}室"


@pytest.mark.parametrize(("floor", "column"), [(5, 1), (2, 4), (1, 2)])
def test_a_throw_is_drawn_from_the_window_of_its_floor_and_column_down_to_the_ground(
    world: Stores, floor: int, column: int
) -> None:
    camera, building, floors, columns = throw_camera(world)
    assert floor <= floors and column <= columns
    alert = raise_throw(world, camera, building, floor, column)
    household = alert["subject"]["household"]
    assert household, alert  # the rule found the household behind that window
    figure = figure_of(world, principal("police"), building)

    path = trace(figure, "throw")
    points = [(x, y, z) for x, y, z in zip(path["x"], path["y"], path["z"], strict=True) if x is not None]
    top, ground = points[0], points[-1]
    assert ground[2] == 0.0  # it ends on the ground
    assert all(a[2] >= b[2] for a, b in itertools.pairwise(points))  # falling all the way
    # the other end is the window: on the façade, at the middle of its floor …
    assert top[1] == 0.0
    assert top[2] == pytest.approx((floor - 0.5) * FLOOR_HEIGHT_M)
    # … in front of the cell of the household behind it, which is lit as alerting
    lit = trace(figure, "pulse")
    address = address_of(world, household)
    corners = [
        (x, z) for x, z, text in zip(lit["x"], lit["z"], lit["hovertext"], strict=True) if text.startswith(address)
    ]
    assert corners, f"{address} is not among the alerting cells"
    xs, zs = [c[0] for c in corners], [c[1] for c in corners]
    assert min(xs) < top[0] < max(xs)
    assert min(zs) < top[2] < max(zs)
    window = trace(figure, "window")  # the window itself, bright, on the façade
    assert min(window["x"]) < top[0] < max(window["x"]) and min(window["z"]) < top[2] < max(window["z"])
    # the column counts from the left: the next column's window is further right (or in the next unit)
    if column < columns:
        raise_throw(world, camera, building, floor, column + 1)
        again = figure_of(world, principal("police"), building)
        tops = sorted(x for x, z in zip(trace(again, "throw")["x"], trace(again, "throw")["z"], strict=True) if z)
        assert tops[-1] > top[0]


def test_a_throw_seen_from_the_back_leaves_the_back_facade() -> None:
    layout = CellLayout(
        columns={1: 2, 2: 2},
        offsets={1: 0.0, 2: 9.6},
        places={"a": (1, 3, 0), "b": (1, 3, 1), "c": (2, 3, 0), "d": (2, 3, 1)},
        floors=6,
        width=17.6,
    )
    landings = {("B", 1, 3): ["a", "b"], ("B", 2, 3): ["c", "d"]}
    back = Facade("B", floors=6, columns=4, units=(1, 2), reverse=True)
    placed = place_throw(layout, "B", {"floor": 3, "column": 1}, back, landings)
    assert placed is not None
    assert placed.household == "d"  # column 1 seen from the back is the front's last window
    assert placed.path[0] == layout.window("d", back=True) and placed.path[0][1] == CELL_D_M
    assert placed.path[-1][1] > CELL_D_M and placed.path[-1][2] == 0.0  # out from the back, onto the ground


def test_cells_follow_the_facades_room_order() -> None:
    """Rooms of a landing stand in the natural order of their labels (3-2 before 3-10), as the façade counts."""

    class H:
        def __init__(self, hid: str, unit: int, room: str) -> None:
            self.id, self.unit, self.floor, self.room, self.category = hid, unit, 3, room, "owner"

    facts: Any = type("F", (), {"households": [H("x", 2, "3-10"), H("y", 2, "3-2"), H("z", 1, "301")]})()
    facts.units, facts.floors = 2, 6
    layout = cell_layout(facts)
    assert layout.window("y")[0] < layout.window("x")[0]
    assert layout.window("z")[0] < layout.window("y")[0]


def test_bad_buildings_are_drawn_flat_and_doctor_lists_each_once(world: Stores) -> None:
    bow_tie = {
        "type": "Polygon",
        "coordinates": [[[120.15, 33.39], [120.151, 33.391], [120.151, 33.39], [120.15, 33.391], [120.15, 33.39]]],
    }
    line = {"type": "LineString", "coordinates": [[120.15, 33.39], [120.151, 33.39]]}
    with world.sessions.begin() as session:
        ids_ = list(session.scalars(select(Building.id).where(Building.community_id == "wanhu").order_by(Building.id)))
        no_floors, crossed, not_polygon = ids_[3], ids_[4], ids_[5]
        session.execute(update(Building).where(Building.id == no_floors).values(floors=0))
        session.execute(update(Building).where(Building.id == crossed).values(footprint=json.dumps(bow_tie)))
        session.execute(update(Building).where(Building.id == not_polygon).values(footprint=json.dumps(line)))
        names = {b.id: b.name for b in session.scalars(select(Building).where(Building.id.in_(ids_[3:6])))}
    with world.sessions() as session:
        community = session.get(Community, "wanhu")
        assert community is not None
        scene = static_scene(session, Scope(), community, "zh")
    assert {(f.id, f.reason) for f in scene.flat} == {
        (no_floors, NO_FLOORS),
        (crossed, INVALID_POLYGON),
        (not_polygon, NOT_POLYGON),
    }
    drawn = {d for tr in scene.traces for d in tr.get("customdata") or []}
    assert len(drawn) == 128 - 3 and not drawn & {no_floors, crossed, not_polygon}  # every other one stands
    flat_lines = next(tr for tr in scene.traces if tr.get("name") == "数据不全，按平面轮廓绘制")
    assert {z for z in flat_lines["z"] if z is not None} == {0.4}  # flat, on the ground
    hovers = " ".join(h for h in flat_lines["hovertext"] if h)
    assert names[no_floors] in hovers and "缺少楼层数" in hovers and names[crossed] in hovers

    result = run_manage(world.settings, "doctor", "--json")
    checks = {c["name"]: c for c in json.loads(result.stdout)}
    line_3d = checks["model3d"]
    assert line_3d["ok"] is False and line_3d["required"] is False  # a warning, not a failure
    for building in (no_floors, crossed, not_polygon):
        assert line_3d["detail"].count(building) == 1, line_3d["detail"]
    assert "no floor count" in line_3d["detail"] and "Self-intersection" in line_3d["detail"]


def test_the_wall_and_the_property_office_see_no_names_in_3d(world: Stores) -> None:
    camera, building, _, _ = throw_camera(world)
    raise_throw(world, camera, building, 3, 1)
    facts = load_building(world, principal("police"), building, "zh")
    assert facts is not None
    people = [name for residents in facts.residents.values() for name, _ in residents]
    assert people
    hovers = {
        role: " ".join(
            text
            for tr in figure_of(world, principal(role), building)["data"]
            for text in tr.get("hovertext") or []
            if text
        )
        for role in ("police", "property", "wall")
    }
    assert "52幢" in hovers["wall"] or "幢" in hovers["wall"]  # everyone reads the addresses
    for role, text in hovers.items():
        assert not any(name in text for name in people if len(name) > 1), role  # nobody sees a whole name
    masked = [name[0] + "*" for name in people]
    assert any(m in hovers["police"] for m in masked)  # the police see who lives there, masked
    assert not any(m in hovers["wall"] or m in hovers["property"] for m in masked)


def drill_3d_request(building: str, state: dict[str, Any]) -> dict[str, Any]:
    """The 3D button of the 2D drill-down pressed, as the browser sends it."""
    return dash_request(
        [(ids.DRILL, "children"), (ids.DRILL, "className")],
        [
            prop(ids.MAP_BUILDINGS, "clickData", None),
            prop(ids.SCENE, "clickData", None),
            [prop({"type": "drill-3d", "id": building}, "n_clicks", 1)],
            [prop({"type": "drill-close", "id": building}, "n_clicks", None)],
        ],
        [prop(ids.LIVE_STATE, "data", state), prop(ids.VIEWPORT, "data", 1)],
        json.dumps({"id": building, "type": "drill-3d"}, separators=(",", ":")) + ".n_clicks",
    )


def test_the_wall_display_gets_no_names_from_the_server(world: Stores) -> None:
    """The role comes from the server session: a wall display's kiosk asking for a building in 3D gets
    addresses, never a resident (the hover is built on the server)."""
    camera, building, _, _ = throw_camera(world)
    raise_throw(world, camera, building, 2, 2)
    app = create_app(world)
    with world.sessions.begin() as session:
        _, token = create_token(session, scope="role", role="wall", community="wanhu", name="station")
    kiosk: FlaskClient = app.server.test_client()
    assert kiosk.get(f"/wall?kiosk=1&token={token}").status_code == 302
    police: FlaskClient = app.server.test_client()
    assert (
        police.post("/login", data={"username": "police.wanhu", "password": DEMO_PASSWORD}, headers=ORIGIN).status_code
        == 302
    )
    state = {"community": "wanhu", "lang": "zh"}
    answers = {}
    for who, client in (("wall", kiosk), ("police", police)):
        response = client.post("/_dash-update-component", json=drill_3d_request(building, state), headers=ORIGIN)
        assert response.status_code == 200, response.get_data(as_text=True)[:300]
        answers[who] = json.dumps(response.get_json(), ensure_ascii=False)
    facts = load_building(world, principal("police"), building, "zh")
    assert facts is not None
    masked = {name[0] + "*" for residents in facts.residents.values() for name, _ in residents}
    assert "单元" in answers["wall"] and "室" in answers["wall"]  # the addresses
    assert not any(m in answers["wall"] for m in masked)
    assert any(m in answers["police"] for m in masked)
    assert "大屏不显示个人信息" in answers["wall"]


def test_the_3d_view_is_drawn_whole_once_then_patched(world: Stores) -> None:
    """The first 3D tick sends the whole model; a guard moving afterwards sends a patch of the guards only."""
    wearables = devices_of(world, "wearable", 3)
    t0 = now_ms()
    IngestService(world).ingest(
        "wanhu",
        [
            {
                "type": "guard.position",
                "device": w,
                "ts": t0 - 5_000,
                "data": {"lat": 33.388 + i * 1e-4, "lon": 120.152},
            }
            for i, w in enumerate(wearables)
        ],
    )
    worker = Worker(world)
    worker.start_community("wanhu", seed_timers=False)
    drain(worker)
    app = create_app(world)
    client: FlaskClient = app.server.test_client()
    assert (
        client.post("/login", data={"username": "police.wanhu", "password": DEMO_PASSWORD}, headers=ORIGIN).status_code
        == 302
    )
    state = {"community": "wanhu", "since": 0, "ver": -1, "full_at": 0, "lang": "zh"}
    first = client.post("/_dash-update-component", json=wall_refresh_request(state, view="3d"), headers=ORIGIN)
    answer = first.get_json()["response"]
    figure = answer[ids.SCENE]["figure"]
    buildings = {d for tr in figure["data"] if tr["type"] == "mesh3d" for d in tr.get("customdata") or []}
    assert len(buildings) == 128
    assert sum(x is not None for x in figure["data"][GUARDS]["x"]) == 3  # three guards standing
    assert ids.MAP_GUARDS not in answer  # the hidden 2D map is left alone

    IngestService(world).ingest(
        "wanhu",
        [{"type": "guard.position", "device": wearables[0], "ts": now_ms(), "data": {"lat": 33.3895, "lon": 120.1535}}],
    )
    drain(worker)
    state = answer[ids.LIVE_STATE]["data"]
    state["full_at"] = now_ms()
    second = client.post("/_dash-update-component", json=wall_refresh_request(state, view="3d"), headers=ORIGIN)
    patch = second.get_json()["response"][ids.SCENE]["figure"]
    assert patch.get("__dash_patch_update") == "__dash_patch_update"
    touched = {tuple(op["location"][:3]) for op in patch["operations"]}
    assert touched == {("data", GUARDS, "x"), ("data", GUARDS, "y")}
    assert len(second.get_data()) < len(first.get_data()) / 20


def test_the_situation_report_shows_the_community_in_3d_with_its_alert_building(world: Stores, tmp_path: Path) -> None:
    camera, building, _, _ = throw_camera(world)
    raise_throw(world, camera, building, 3, 1)
    pdf = tmp_path / "report.pdf"
    data = make_report(world, request_for(world), "pdf", pdf)
    text = pdf_text(pdf)
    assert "小区三维态势" in text and "三维图未能生成" not in text
    pdf_pages(pdf, "report3d_wanhu_zh")  # for a person to look at
    # the still's model: every building standing, one column of light over the throw's building
    (community,) = data.maps
    figure = model3d_figure(community)
    standing = {d for tr in figure["data"] if tr["type"] == "mesh3d" for d in tr.get("customdata") or []}
    assert len(standing) == 128
    high = [tr for tr in figure["data"] if tr.get("line", {}).get("color") == REPORT_SEVERITY["high"]]
    (column,) = high
    assert community.alert_buildings[building] == "high"
    roof = [z for z in column["z"] if z is not None]
    assert len(roof) == 2 and roof[1] > roof[0] > 0  # from the roof up
