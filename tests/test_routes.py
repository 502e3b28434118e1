"""Patrol routes and checkpoints: imported from files (all or nothing, every bad row named), exported,
checked by the same rules as the editor's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from shapely.geometry import Point, mapping
from sqlalchemy import select

from registry import importers
from registry.models import Device, PatrolRoute
from store.stores import Stores
from tests.conftest import run_manage
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
