"""Importers: GIS files in any CRS, tables with per-row errors, all or nothing."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from shapely.geometry import shape
from sqlalchemy import func, select

from geodata.layers import survey_dir
from registry import importers
from registry.models import Building, Household, Person
from store.stores import Stores
from tests.conftest import run_manage

pytestmark = pytest.mark.also_on_pg  # the tests using settings or world run on PostgreSQL too

WANHU = survey_dir("wanhu")


@pytest.fixture
def community(stores: Stores) -> Stores:
    """Wanhu Xincun's boundary, grids and buildings imported from geodata/."""
    with stores.sessions.begin() as session:
        for kind in ("boundary", "grids", "buildings"):
            importers.import_geo(session, kind, WANHU / f"{kind}.geojson", "wanhu", community_name="万户新村")
    return stores


def buildings_by_id(stores: Stores) -> dict[str, Building]:
    with stores.sessions() as session:
        return {b.id: b for b in session.scalars(select(Building))}


@pytest.mark.parametrize("suffix", [".geojson", ".gpkg", ".shp"])
def test_buildings_round_trip_through_each_format(community: Stores, tmp_path: Path, suffix: str) -> None:
    before = buildings_by_id(community)
    out = tmp_path / f"buildings{suffix}"
    with community.sessions() as session:
        assert importers.export_geo(session, "buildings", "wanhu", out) == 128
    with community.sessions.begin() as session:
        for b in session.scalars(select(Building)):
            b.floors = 1
            b.footprint = json.dumps({"type": "Polygon", "coordinates": [[[0, 0], [0, 1], [1, 1], [0, 0]]]})
    with community.sessions.begin() as session:
        report = importers.import_geo(session, "buildings", out, "wanhu")
    assert report.written == 128
    after = buildings_by_id(community)
    for bid, b in before.items():
        assert after[bid].floors == b.floors and after[bid].units == b.units and after[bid].grid_id == b.grid_id
        old, new = shape(json.loads(b.footprint)).normalize(), shape(json.loads(after[bid].footprint)).normalize()
        assert new.equals_exact(old, 1e-7)


@pytest.mark.parametrize("epsg", [3857, 4549, 32651])
def test_a_projected_file_is_reprojected_to_wgs84(community: Stores, tmp_path: Path, epsg: int) -> None:
    before = buildings_by_id(community)
    frame = gpd.read_file(WANHU / "buildings.geojson").to_crs(epsg=epsg)
    path = tmp_path / "projected.gpkg"
    frame.to_file(path, driver="GPKG")
    with community.sessions.begin() as session:
        importers.import_geo(session, "buildings", path, "wanhu")
    after = buildings_by_id(community)
    for bid, b in before.items():
        assert after[bid].lat == pytest.approx(b.lat, abs=1e-6)
        assert after[bid].lon == pytest.approx(b.lon, abs=1e-6)


def test_a_shapefile_without_prj_is_refused(community: Stores, tmp_path: Path) -> None:
    path = tmp_path / "noprj.shp"
    gpd.read_file(WANHU / "grids.geojson").to_file(path)
    path.with_suffix(".prj").unlink()
    with community.sessions() as session, pytest.raises(importers.InvalidInput, match=r"\.prj"):
        importers.import_geo(session, "grids", path, "wanhu")


def test_bad_geometry_rows_are_reported_and_nothing_changes(community: Stores, tmp_path: Path) -> None:
    data = json.loads((WANHU / "buildings.geojson").read_text())
    ring = data["features"][3]["geometry"]["coordinates"][0]
    ring[1], ring[2] = ring[2], ring[1]  # a bowtie
    data["features"][7]["properties"]["floors"] = "many"
    path = tmp_path / "bad.geojson"
    path.write_text(json.dumps(data))
    with community.sessions() as session:
        with pytest.raises(importers.ImportRejected) as caught:
            importers.import_geo(session, "buildings", path, "wanhu")
        session.rollback()
    errors = {(e.row, e.column) for e in caught.value.report.errors}
    assert errors == {(4, "geometry"), (8, "floors")}
    assert {b.floors for b in buildings_by_id(community).values()} <= {3, 5, 6}


def households_csv(path: Path, rows: list[dict[str, object]]) -> Path:
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def count(stores: Stores, model: type) -> int:
    with stores.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_one_bad_row_rejects_the_whole_table(community: Stores, tmp_path: Path) -> None:
    rows: list[dict[str, object]] = [
        {"id": f"h{i}", "building": "wanhu-B001", "unit": 1, "floor": 1 + i % 5, "room": f"{i}", "category": "owner"}
        for i in range(10)
    ]
    rows.append({"id": "bad", "building": "wanhu-B999", "unit": 1, "floor": 9, "room": "1", "category": "hotel"})
    path = households_csv(tmp_path / "hh.csv", rows)
    with community.sessions() as session:
        with pytest.raises(importers.ImportRejected) as caught:
            importers.import_table(session, "households", path, "wanhu", id_hash_key=community.id_hash_key)
        session.rollback()
    reasons = {(e.row, e.column): e.reason for e in caught.value.report.errors}
    assert reasons[(11, "building")] == "unknown building wanhu-B999"
    assert reasons[(11, "category")].startswith("must be one of owner, rental")
    assert count(community, Household) == 0


def test_people_rows_with_bad_identity_data_say_which_cell(community: Stores, tmp_path: Path) -> None:
    households_csv(
        tmp_path / "hh.csv",
        [{"id": "h1", "building": "wanhu-B001", "unit": 1, "floor": 1, "room": "101", "category": "rental"}],
    )
    with community.sessions.begin() as session:
        importers.import_table(session, "households", tmp_path / "hh.csv", "wanhu", id_hash_key=b"k")
    people = pd.DataFrame(
        [
            {
                "id": "p1",
                "name": "张三",
                "id_number": "11010519491231002X",
                "phone": "13812345678",
                "household": "h1",
                "role": "tenant",
                "tags": "floating",
            },
            {
                "id": "p2",
                "name": "李四",
                "id_number": "110105194912310021",
                "phone": "12345",
                "household": "h1",
                "role": "lodger",
                "tags": "vip",
            },
        ]
    )
    path = tmp_path / "people.xlsx"
    people.to_excel(path, index=False)
    with community.sessions() as session:
        with pytest.raises(importers.ImportRejected) as caught:
            importers.import_table(session, "people", path, "wanhu", id_hash_key=b"k")
        session.rollback()
    columns = sorted(e.column for e in caught.value.report.errors)
    assert columns == ["id_number", "phone", "role", "tags"]
    assert all(e.row == 2 for e in caught.value.report.errors)
    assert count(community, Person) == 0


def test_an_elders_own_threshold_is_imported_and_survives_a_reimport_without_the_column(
    community: Stores, tmp_path: Path
) -> None:
    households_csv(
        tmp_path / "hh.csv",
        [{"id": "h1", "building": "wanhu-B001", "unit": 1, "floor": 1, "room": "101", "category": "owner"}],
    )
    with community.sessions.begin() as session:
        importers.import_table(session, "households", tmp_path / "hh.csv", "wanhu", id_hash_key=b"k")
    elder = {"id": "p1", "name": "王奶奶", "household": "h1", "role": "owner", "tags": "elderly_alone"}

    def import_people(rows: list[dict[str, object]]) -> None:
        path = households_csv(tmp_path / "people.csv", rows)
        with community.sessions.begin() as session:
            importers.import_table(session, "people", path, "wanhu", id_hash_key=b"k")

    def threshold() -> float | None:
        with community.sessions() as session:
            person = session.get(Person, "p1")
            assert person is not None
            return person.elder_inactive_hours

    import_people([{**elder, "elder_inactive_hours": 8.5}])
    assert threshold() == 8.5
    import_people([{**elder, "notes": "女儿每周来"}])  # a file without the column keeps it
    assert threshold() == 8.5
    import_people([{**elder, "elder_inactive_hours": ""}])  # a blank clears it (the setting applies)
    assert threshold() is None
    path = households_csv(tmp_path / "bad.csv", [{**elder, "elder_inactive_hours": 100}])
    with community.sessions() as session:
        with pytest.raises(importers.ImportRejected) as caught:
            importers.import_table(session, "people", path, "wanhu", id_hash_key=b"k")
        session.rollback()
    (error,) = caught.value.report.errors
    assert (error.row, error.column, error.reason) == (1, "elder_inactive_hours", "must be between 1 and 72 hours")


def test_dry_run_lists_every_row_error_on_the_command_line(community: Stores, tmp_path: Path) -> None:

    path = households_csv(
        tmp_path / "hh.csv",
        [
            {"id": "h1", "building": "wanhu-B001", "unit": 1, "floor": 99, "room": "1", "category": "owner"},
            {"id": "h2", "building": "wanhu-B001", "unit": "one", "floor": 1, "room": "2", "category": "owner"},
        ],
    )
    result = run_manage(community.settings, "import", "households", str(path), "--community", "wanhu", "--dry-run")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert "row 1, column floor: building wanhu-B001 has" in lines[0]
    assert lines[1] == "row 2, column unit: must be a whole number"
    assert lines[-1] == "error: households: 2 row errors in 2 rows; nothing imported"
    assert "Traceback" not in result.stderr


def test_a_good_dry_run_writes_nothing(community: Stores, tmp_path: Path) -> None:
    path = households_csv(
        tmp_path / "hh.csv",
        [{"id": "h1", "building": "wanhu-B001", "unit": 1, "floor": 2, "room": "201", "category": "rental"}],
    )
    result = run_manage(community.settings, "import", "households", str(path), "--community", "wanhu", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "1 rows are valid (dry run: nothing written)" in result.stdout
    assert count(community, Household) == 0
    result = run_manage(community.settings, "import", "households", str(path), "--community", "wanhu")
    assert result.returncode == 0 and count(community, Household) == 1


def test_unknown_community_is_a_clear_error(stores: Stores) -> None:
    with stores.sessions() as session, pytest.raises(importers.InvalidInput, match="unknown community 'nowhere'"):
        importers.import_geo(session, "grids", WANHU / "grids.geojson", "nowhere")
