"""Patrol routes and checkpoints: imported from files (all or nothing, every bad row named), exported,
checked by the same rules as the editor's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from shapely.geometry import Point, mapping
from sqlalchemy import select

from analytics.rules.gates import round_starts
from auth.models import AuditEntry
from auth.principal import Principal
from core.errors import Forbidden, NotFound
from core.timefmt import SHANGHAI, ms_to_utc
from gates.routes import RouteEditor, RouteRejected
from registry import importers
from registry import routes as patrol
from registry.models import Community, Device, PatrolRoute
from store.stores import Stores
from tests.conftest import run_manage
from tests.test_rules import T0, M, Scenario
from tests.test_throw_households import LAT, LON, hillside, write_csv, write_geojson

pytestmark = pytest.mark.also_on_pg

__all__ = ["hillside"]  # the imported community of the throw tests, a fixture here too

C = "hillside"
HEADER = ["route", "name", "interval_minutes", "start_hour", "end_hour", "tolerance_minutes", "seq", "checkpoint"]


def checkpoints_file(tmp_path: Path) -> Path:
    """Three checkpoints around 北楼, as GeoJSON points."""
    return write_geojson(
        tmp_path / "checkpoints.geojson",
        [
            ({"id": f"XP-{i}", "name": f"北楼巡更点{i}"}, mapping(Point(LON + 0.0004 * i, LAT + 0.0005)))
            for i in (1, 2, 3)
        ],
    )


def routes_of(stores: Stores) -> dict[str, list[tuple[int, str, int]]]:
    with stores.sessions() as session:
        return {
            r.id: [(c.seq, c.device_id, c.offset_minutes) for c in r.checkpoints]
            for r in session.scalars(select(PatrolRoute).where(PatrolRoute.community_id == C))
        }


def test_checkpoints_and_routes_are_imported_and_round_trip(hillside: Stores, tmp_path: Path) -> None:
    with hillside.sessions.begin() as session:
        importers.import_geo(session, "checkpoints", checkpoints_file(tmp_path), C)
    routes = write_csv(
        tmp_path / "routes.csv",
        [
            [*HEADER, "offset_minutes"],
            ["R-night", "夜间巡更", 120, 20, 6, 15, "", "XP-1", ""],  # the schedule once, offsets spread evenly
            ["R-night", "", "", "", "", "", "", "XP-3", ""],
            ["R-night", "", "", "", "", "", "", "XP-2", ""],
            ["R-day", "白天巡更", 60, 8, 18, 10, 2, "XP-2", 25],  # seq given out of order
            ["R-day", "白天巡更", 60, 8, 18, 10, 1, "XP-1", 5],
        ],
    )
    dry = run_manage(hillside.settings, "import", "routes", str(routes), "--community", C, "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout) | {"errors": []} == {
        "kind": "routes",
        "rows": 5,
        "written": 0,
        "dry_run": True,
        "errors": [],
    }
    assert routes_of(hillside) == {}
    with hillside.sessions.begin() as session:
        importers.import_table(session, "routes", routes, C, id_hash_key=b"")
    expected = {
        "R-night": [(1, "XP-1", 0), (2, "XP-3", 40), (3, "XP-2", 80)],
        "R-day": [(1, "XP-1", 5), (2, "XP-2", 25)],
    }
    assert routes_of(hillside) == expected
    with hillside.sessions() as session:
        assert importers.export_routes(session, C, tmp_path / "out.csv") == 5
        assert importers.export_geo(session, "checkpoints", C, tmp_path / "out.geojson") == 3
        session.query(PatrolRoute).delete()
        session.commit()
    with hillside.sessions.begin() as session:
        importers.import_table(session, "routes", tmp_path / "out.csv", C, id_hash_key=b"")
        importers.import_geo(session, "checkpoints", tmp_path / "out.geojson", C)
    assert routes_of(hillside) == expected


def test_a_routes_file_with_bad_rows_writes_nothing_and_names_each_row(hillside: Stores, tmp_path: Path) -> None:
    with hillside.sessions.begin() as session:
        importers.import_geo(session, "checkpoints", checkpoints_file(tmp_path), C)
    routes = write_csv(
        tmp_path / "routes.csv",
        [
            [*HEADER, "offset_minutes"],
            ["R-a", "甲", 120, 25, 6, 15, 1, "XP-1", 0],  # a bad hour
            ["R-a", "", "", "", "", "", 2, "XP-9", 10],  # an unknown checkpoint
            ["R-a", "", "", "", "", "", 2, "XP-2", 20],  # seq 2 twice
            ["R-b", "乙", 120, 20, 6, 15, 1, "XP-1", 30],
            ["R-b", "", "", "", "", "", 2, "XP-2", 30],  # offsets not increasing
            ["R-b", "", "", "", "", "", 3, "TC-front", 50],  # a camera, not a checkpoint
        ],
    )
    done = run_manage(hillside.settings, "import", "routes", str(routes), "--community", C, "--json")
    assert done.returncode == 1
    errors = [(e["row"], e["column"], e["reason"]) for e in json.loads(done.stdout)["errors"]]
    assert errors == [
        (1, "start_hour", "must be between 0 and 23"),
        (2, "checkpoint", "unknown checkpoint XP-9"),
        (3, "seq", "seq 2 appears twice in the route"),
        (5, "offset_minutes", "must be greater than the previous checkpoint's 30 (is 30)"),
        (6, "checkpoint", "TC-front is a throw_camera, not a checkpoint"),
    ]
    assert routes_of(hillside) == {}


def test_a_checkpoint_that_is_not_a_point_is_refused(hillside: Stores, tmp_path: Path) -> None:
    line = {"type": "LineString", "coordinates": [[LON, LAT], [LON + 0.001, LAT]]}
    path = write_geojson(tmp_path / "bad.geojson", [({"id": "XP-1", "name": "甲"}, line)])
    with hillside.sessions() as session, pytest.raises(importers.ImportRejected) as refused:
        importers.import_geo(session, "checkpoints", path, C)
    assert [str(e) for e in refused.value.report.errors] == [
        "row 1, geometry: must be a point (the checkpoint's position)"
    ]
    with hillside.sessions() as session:
        assert session.scalars(select(Device).where(Device.type == "checkpoint")).all() == []


# --- the editor's service: gates.routes.RouteEditor ------------------------------------------------

POLICE = Principal(kind="user", id="police.wanhu", role="police", community="wanhu")


def two_checkpoints(world: Stores) -> list[str]:
    """Two checkpoints placed near the centre of Wanhu Xincun, as the editor's map clicks do."""
    with world.sessions() as session:
        centre = session.get(Community, "wanhu")
        assert centre is not None
        lat, lon = centre.center_lat, centre.center_lon
    editor = RouteEditor(world)
    return [editor.add_checkpoint(POLICE, "wanhu", f"测试点{i}", lat + 0.0002 * i, lon) for i in (1, 2)]


def night_draft(route: str, stops: list[str], start_hour: int) -> patrol.RouteDraft:
    return patrol.RouteDraft(
        id=route,
        name="测试路线",
        interval=60,
        start_hour=start_hour,
        end_hour=(start_hour + 1) % 24,
        tolerance=10,
        stops=[patrol.Stop(d) for d in stops],
    )


def test_a_route_saved_in_the_editor_is_planned_and_judged_by_the_worker(world: Stores) -> None:
    stops = two_checkpoints(world)
    start_hour = (ms_to_utc(T0).astimezone(SHANGHAI).hour + 2) % 24
    editor = RouteEditor(world)
    route = editor.save(POLICE, "wanhu", night_draft(editor.new_route_id("wanhu"), stops, start_hour))
    assert route == "wanhu-R2"  # the demo's route is R1
    saved = {r.id: r for r in editor.routes(POLICE, "wanhu")}[route]
    assert saved.checkpoints == [(1, stops[0], 0), (2, stops[1], 30)]  # offsets spread evenly
    with world.sessions() as session:
        audited = session.scalars(select(AuditEntry).where(AuditEntry.action == "route.save")).all()
    assert [(a.actor, a.target) for a in audited] == [("police.wanhu", f"route:{route}")]

    s = Scenario(world)  # a worker whose registry cache is loaded after the save
    start = next(t for t in round_starts(s.directory.facts("wanhu").routes[route], T0) if t > T0)
    s.at(start - T0 + 45 * M)  # nobody checked in: both checkpoints of the round are missed
    missed = {a["subject"]["device"] for a in s.open("patrol.missed") if a["evidence"]["route"] == route}
    assert missed == set(stops)


def test_checks_planned_before_a_route_was_edited_follow_its_new_schedule(world: Stores) -> None:
    stops = two_checkpoints(world)
    start_hour = (ms_to_utc(T0).astimezone(SHANGHAI).hour + 2) % 24
    editor = RouteEditor(world)
    editor.save(POLICE, "wanhu", night_draft("wanhu-R9", stops, start_hour))
    s = Scenario(world)
    start = next(t for t in round_starts(s.directory.facts("wanhu").routes["wanhu-R9"], T0) if t > T0)
    s.at(0)  # the sweep plans the round's checks
    editor.save(POLICE, "wanhu", night_draft("wanhu-R9", stops, (start_hour + 12) % 24))  # moved to 12 hours later
    s.directory.invalidate()  # what the cache's time-to-live does in a running worker
    s.at(start - T0 + 45 * M)
    assert [a for a in s.open("patrol.missed") if a["evidence"]["route"] == "wanhu-R9"] == []


def test_the_editor_refuses_a_bad_route_with_the_imports_reasons_and_other_roles(world: Stores) -> None:
    stops = two_checkpoints(world)
    editor = RouteEditor(world)
    draft = night_draft("wanhu-R3", stops, 20)
    draft.stops = [patrol.Stop(stops[0], offset=20, row=1), patrol.Stop(stops[1], offset=10, row=2)]
    with pytest.raises(RouteRejected) as refused:
        editor.save(POLICE, "wanhu", draft)
    assert [(p.field, p.row, p.text("en")) for p in refused.value.problems] == [
        ("offset_minutes", 2, "must be greater than the previous checkpoint's 20 (is 10)")
    ]
    assert refused.value.problems[0].text("zh") == "应大于上一个巡更点的20分钟（当前10）"
    grid = Principal(kind="user", id="grid.wanhu-G1", role="grid_worker", community="wanhu", grid="wanhu-G1")
    other = Principal(kind="user", id="police.xingbang", role="police", community="xingbang")
    for principal in (grid, other):
        with pytest.raises(Forbidden):
            editor.save(principal, "wanhu", night_draft("wanhu-R3", stops, 20))
    assert "wanhu-R3" not in {r.id for r in editor.routes(POLICE, "wanhu")}


def test_checkpoints_from_a_table_take_their_position_from_lat_and_lon(hillside: Stores, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "checkpoints.csv",
        [["id", "name", "lat", "lon"], ["XP-1", "东门岗亭", LAT, LON + 0.001], ["XP-2", "西门岗亭", "", ""]],
    )
    with hillside.sessions() as session, pytest.raises(importers.ImportRejected) as refused:
        importers.import_geo(session, "checkpoints", path, C)
    assert [str(e) for e in refused.value.report.errors] == ["row 2, lat/lon: a device needs a position or a building"]
    write_csv(path, [["id", "name", "lat", "lon"], ["XP-1", "东门岗亭", LAT, LON + 0.001]])
    with hillside.sessions.begin() as session:
        assert importers.import_geo(session, "checkpoints", path, C).written == 1
    with hillside.sessions() as session:
        found = session.get(Device, "XP-1")
        assert found is not None and (found.type, found.name) == ("checkpoint", "东门岗亭")


def test_a_route_deleted_in_the_editor_is_gone_and_audited(world: Stores) -> None:
    editor = RouteEditor(world)
    with pytest.raises(Forbidden):
        editor.delete(
            Principal(kind="user", id="police.xingbang", role="police", community="xingbang"), "wanhu", "wanhu-R1"
        )
    with pytest.raises(NotFound):
        editor.delete(POLICE, "wanhu", "xingbang-R1")  # another community's route is not found here
    editor.delete(POLICE, "wanhu", "wanhu-R1")
    assert editor.routes(POLICE, "wanhu") == []
    with world.sessions() as session:
        device = session.get(Device, "CP-wanhu-01")
        audited = session.scalars(select(AuditEntry.target).where(AuditEntry.action == "route.delete")).all()
    assert device is not None  # the checkpoints stay
    assert audited == ["route:wanhu-R1"]
