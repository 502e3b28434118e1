"""Importers and exporters of the registry.

Geodata (boundary, grids, buildings, paths, patrol checkpoints) through geopandas, from GeoJSON,
Shapefile or GeoPackage in any CRS (reprojected to WGS-84); tables (households, people, devices,
vehicles, guards, patrol routes) through pandas, from CSV or XLSX. Every row is validated first; an import with any
bad row writes nothing and reports each error with its row, column and reason.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shapely.geometry import Point, shape
from shapely.strtree import STRtree
from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session
from stdnum.cn import ric

from core.errors import InvalidInput
from core.secrets import keyed_hash
from registry import routes as patrol
from registry import validate
from registry.coverage import LIMITS, config_problems
from registry.models import (
    DEVICE_TYPES,
    GUARD_KINDS,
    HOUSEHOLD_CATEGORIES,
    PERSON_TAGS,
    RESIDENCY_ROLES,
    Building,
    Community,
    Device,
    Grid,
    Guard,
    Household,
    PathSegment,
    Person,
    PersonTag,
    Residency,
    Vehicle,
)

GEO_KINDS = ("boundary", "grids", "buildings", "paths", "checkpoints")
TABLE_KINDS = ("households", "people", "devices", "vehicles", "guards", "routes")
TABLE_SUFFIXES = (".csv", ".txt", ".xlsx", ".xlsm")
# device types that only exist inside a flat: the import refuses one without its household
HOUSEHOLD_ONLY_TYPES = ("door_sensor", "smart_lock", "water_meter", "power_meter")

if TYPE_CHECKING:  # pandas, geopandas, pyogrio (0.6 s) load on use: the web app starts without them
    import geopandas as gpd
    import pandas as pd


@dataclass
class RowError:
    """One problem in one row of an import file (rows count from 1, the header not included)."""

    row: int
    column: str
    reason: str

    def __str__(self) -> str:
        return f"row {self.row}, {self.column}: {self.reason}"


@dataclass
class ImportReport:
    """What an import did, or would do (dry run), and every row error."""

    kind: str
    rows: int = 0
    written: int = 0
    errors: list[RowError] = field(default_factory=list)
    dry_run: bool = False
    # people imported with an ID number: (person id, ID-number hash, household or None), for the
    # wanted-list check that follows the commit (closedloop/wanted.py)
    identities: list[tuple[str, str, str | None]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no row had an error."""
        return not self.errors


class ImportRejected(InvalidInput):
    """An import with bad rows; nothing was written."""

    def __init__(self, report: ImportReport) -> None:
        self.report = report
        n = len(report.errors)
        first = f" (first: {report.errors[0]})" if report.errors else ""
        super().__init__(f"{report.kind}: {n} row error{'s' if n != 1 else ''}, nothing imported{first}")


# --- reading files --------------------------------------------------------------------------


def read_geo(path: Path, layer: str | None = None) -> gpd.GeoDataFrame:
    """A GIS file as a GeoDataFrame in WGS-84 (reprojected from its declared CRS)."""
    import geopandas as gpd  # noqa: PLC0415 — loaded on use (see the imports)
    from pyogrio.errors import DataLayerError, DataSourceError  # noqa: PLC0415 — pyogrio loads geopandas

    if not path.exists():
        raise InvalidInput(f"{path}: no such file")
    try:
        frame = gpd.read_file(path, layer=layer) if layer else gpd.read_file(path)
    except (DataSourceError, DataLayerError, ValueError, OSError) as err:
        raise InvalidInput(f"{path}: cannot read as GeoJSON, Shapefile or GeoPackage ({err})") from None
    if frame.crs is None:
        raise InvalidInput(f"{path}: the file declares no coordinate reference system (a Shapefile needs its .prj)")
    if frame.crs.to_epsg() != 4326:
        frame = frame.to_crs(epsg=4326)
    return frame


def read_table(path: Path, sheet: str | None = None) -> pd.DataFrame:
    """A CSV or XLSX file as text columns (nothing guessed: validation converts)."""
    import pandas as pd  # noqa: PLC0415 — loaded on use (see the imports)

    if not path.exists():
        raise InvalidInput(f"{path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix in (".xlsx", ".xlsm"):
            frame = pd.read_excel(path, sheet_name=sheet or 0, dtype=str, keep_default_na=False)
        elif suffix in (".csv", ".txt"):
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
        else:
            raise InvalidInput(f"{path}: tables are imported from .csv or .xlsx, not {suffix or 'no extension'}")
    except (ValueError, OSError, UnicodeDecodeError) as err:
        raise InvalidInput(f"{path}: cannot read ({err})") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


# --- cell helpers ---------------------------------------------------------------------------


def _blank(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return str(value).strip() == ""


def _text(value: Any) -> str:
    return "" if _blank(value) else validate.normalise_text(str(value))


def _int(value: Any, low: int, high: int) -> int:
    try:
        number = float(str(value).strip())
    except ValueError:
        raise InvalidInput("must be a whole number") from None
    if not number.is_integer():
        raise InvalidInput("must be a whole number")
    if not low <= number <= high:
        raise InvalidInput(f"must be between {low} and {high}")
    return int(number)


def _hours(value: Any) -> float:
    try:
        number = float(str(value).strip())
    except ValueError:
        raise InvalidInput("must be a number of hours, e.g. 8 or 8.5") from None
    if not 1 <= number <= 72:
        raise InvalidInput("must be between 1 and 72 hours")
    return number


def _date(value: Any) -> dt.date | None:
    if _blank(value):
        return None
    try:
        return dt.date.fromisoformat(str(value).strip()[:10])
    except ValueError:
        raise InvalidInput("must be a date like 2024-03-01") from None


def _choice(value: Any, allowed: Iterable[str]) -> str:
    text = _text(value)
    options = tuple(allowed)
    if text not in options:
        raise InvalidInput(f"must be one of {', '.join(options)}")
    return text


class RowChecker:
    """Collects the errors of one row; ``take`` runs a converter on one cell."""

    def __init__(self, report: ImportReport, row: int, record: dict[str, Any]) -> None:
        self.report = report
        self.row = row
        self.record = record
        self.failed = False

    def take(self, column: str, convert: Callable[[Any], Any], *, required: bool = True) -> Any:
        """The converted cell, or None after recording why it is wrong."""
        value = self.record.get(column)
        if _blank(value):
            if required:
                self.fail(column, "is required")
            return None
        try:
            return convert(value)
        except InvalidInput as err:
            self.fail(column, str(err))
            return None

    def fail(self, column: str, reason: str) -> None:
        """Record an error of this row."""
        self.failed = True
        self.report.errors.append(RowError(self.row, column, reason))


def _require_columns(report: ImportReport, columns: Iterable[str], required: Iterable[str]) -> None:
    present = set(columns)
    for name in required:
        if name not in present:
            report.errors.append(RowError(0, name, "column is missing from the file"))
    if report.errors:
        raise ImportRejected(report)


def _community(session: Session, community: str) -> Community:
    found = session.get(Community, community)
    if found is None:
        raise InvalidInput(f"unknown community {community!r} (import its boundary first)")
    return found


def _finish(report: ImportReport) -> ImportReport:
    if report.errors:
        raise ImportRejected(report)
    return report


# --- geodata --------------------------------------------------------------------------------


def _centroid(geojson: dict[str, Any]) -> tuple[float, float]:
    point = shape(geojson).representative_point()
    return round(point.y, 7), round(point.x, 7)


class GridLocator:
    """Finds the grid whose polygon holds a point."""

    def __init__(self, grids: list[Grid]) -> None:
        self._ids = [g.id for g in grids]
        self._shapes = [shape(json.loads(g.polygon)) for g in grids]
        self._tree = STRtree(self._shapes) if self._shapes else None

    def locate(self, lat: float, lon: float) -> str | None:
        """The grid id at the position, or None."""
        if self._tree is None:
            return None

        point = Point(lon, lat)
        for index in self._tree.query(point):
            if self._shapes[int(index)].covers(point):
                return self._ids[int(index)]
        return None


def import_geo(
    session: Session,
    kind: str,
    path: Path,
    community: str,
    *,
    dry_run: bool = False,
    layer: str | None = None,
    community_name: str | None = None,
) -> ImportReport:
    """Import one geodata layer of a community from a GIS file (all or nothing)."""
    if kind not in GEO_KINDS:
        raise InvalidInput(f"unknown geodata kind {kind!r}; one of {', '.join(GEO_KINDS)}")
    if kind == "checkpoints" and path.suffix.lower() in TABLE_SUFFIXES:  # CSV/XLSX with lat and lon columns
        records = read_table(path, layer).to_dict("records")
        return import_records(session, kind, records, community, id_hash_key=b"", dry_run=dry_run)
    frame = read_geo(path, layer)
    return import_geo_frame(session, kind, frame, community, dry_run=dry_run, community_name=community_name)


def import_geo_frame(
    session: Session,
    kind: str,
    frame: gpd.GeoDataFrame,
    community: str,
    *,
    dry_run: bool = False,
    community_name: str | None = None,
) -> ImportReport:
    """Import one geodata layer from a GeoDataFrame in WGS-84."""
    report = ImportReport(kind=kind, rows=len(frame), dry_run=dry_run)
    records = [
        {**{k: v for k, v in row.items() if k != "geometry"}, "geometry": row["geometry"]}
        for row in frame.to_dict("records")
    ]
    handler = {
        "boundary": _geo_boundary,
        "grids": _geo_grids,
        "buildings": _geo_buildings,
        "paths": _geo_paths,
        "checkpoints": _geo_checkpoints,
    }[kind]
    handler(session, report, records, community, community_name)
    _finish(report)
    if dry_run:
        session.rollback()
    else:
        session.flush()
    return report


def _geometry_checked(check: RowChecker, convert: Callable[[Any], dict[str, Any]]) -> dict[str, Any] | None:
    geom = check.record.get("geometry")
    if geom is None or getattr(geom, "is_empty", True):
        check.fail("geometry", "is empty")
        return None
    try:
        return convert(geom)
    except InvalidInput as err:
        check.fail("geometry", str(err))
        return None


def _geo_boundary(
    session: Session, report: ImportReport, records: list[dict[str, Any]], community: str, name: str | None
) -> None:
    if len(records) != 1:
        report.errors.append(RowError(0, "geometry", f"a boundary file holds one feature, not {len(records)}"))
        return
    check = RowChecker(report, 1, records[0])
    geom = _geometry_checked(check, validate.polygon)
    if geom is None:
        return
    lat, lon = _centroid(geom)
    title = name or _text(records[0].get("name")) or community
    name_en = _text(records[0].get("name_en"))
    if not _fits(check, Community, {"id": community, "name": title, "name_en": name_en}):
        return
    existing = session.get(Community, community)
    if existing is None:
        existing = Community(id=community, name=title, boundary="", center_lat=lat, center_lon=lon)
        session.add(existing)
    existing.name_en = name_en or existing.name_en
    existing.boundary = json.dumps(geom)
    existing.center_lat, existing.center_lon = lat, lon
    report.written = 1


def _geo_grids(
    session: Session, report: ImportReport, records: list[dict[str, Any]], community: str, _name: str | None
) -> None:
    _require_columns(report, records[0].keys() if records else [], ["id", "name"])
    _community(session, community)
    for i, record in enumerate(records, start=1):
        check = RowChecker(report, i, record)
        grid_id = check.take("id", _text)
        name = check.take("name", _text)
        geom = _geometry_checked(check, validate.polygon)
        texts = {"id": grid_id, "name": name, "name_en": _text(record.get("name_en"))}
        texts["color"] = _text(record.get("color")) or "#5b8def"
        if check.failed or not _fits(check, Grid, texts):
            continue
        grid = session.get(Grid, grid_id) or Grid(id=grid_id, community_id=community)
        if grid.community_id != community:
            check.fail("id", f"grid {grid_id} belongs to community {grid.community_id}")
            continue
        grid.name, grid.name_en, grid.color = texts["name"], texts["name_en"], texts["color"]
        grid.polygon = json.dumps(geom)
        session.add(grid)
        report.written += 1


def _geo_buildings(
    session: Session, report: ImportReport, records: list[dict[str, Any]], community: str, _name: str | None
) -> None:
    _require_columns(report, records[0].keys() if records else [], ["id", "name", "floors"])
    _community(session, community)
    session.flush()
    locator = GridLocator(list(session.scalars(select(Grid).where(Grid.community_id == community))))
    for i, record in enumerate(records, start=1):
        check = RowChecker(report, i, record)
        building_id = check.take("id", _text)
        name = check.take("name", _text)
        floors = check.take("floors", lambda v: _int(v, 1, 150))
        units = check.take("units", lambda v: _int(v, 1, 50), required=False) or 1
        geom = _geometry_checked(check, validate.polygon)
        texts = {"id": building_id, "name": name, "name_en": _text(record.get("name_en"))}
        texts |= {"address": _text(record.get("address")), "kind": _text(record.get("kind")) or "residential"}
        if check.failed or geom is None or not _fits(check, Building, texts):
            continue
        lat, lon = _centroid(geom)
        building = session.get(Building, building_id) or Building(id=building_id, community_id=community)
        if building.community_id != community:
            check.fail("id", f"building {building_id} belongs to community {building.community_id}")
            continue
        building.name, building.name_en = texts["name"], texts["name_en"]
        building.floors = floors
        building.units = units
        building.address, building.kind = texts["address"], texts["kind"]
        building.footprint = json.dumps(geom)
        building.lat, building.lon = lat, lon
        building.grid_id = _text(record.get("grid")) or locator.locate(lat, lon)
        session.add(building)
        report.written += 1


def _geo_paths(
    session: Session, report: ImportReport, records: list[dict[str, Any]], community: str, _name: str | None
) -> None:
    _community(session, community)
    segments: list[PathSegment] = []
    for i, record in enumerate(records, start=1):
        check = RowChecker(report, i, record)
        geom_obj = record.get("geometry")
        parts = list(getattr(geom_obj, "geoms", [geom_obj])) if geom_obj is not None else [None]
        for part in parts:
            check.record = {**record, "geometry": part}
            geom = _geometry_checked(check, validate.linestring)
            if geom is None:
                continue
            kind = _text(record.get("kind")) or "path"
            if kind not in ("road", "path", "gate"):
                check.fail("kind", "must be one of road, path, gate")
                continue
            if not _fits(check, PathSegment, {"name": _text(record.get("name"))}):
                continue
            segments.append(
                PathSegment(
                    community_id=community, kind=kind, name=_text(record.get("name")), geometry=json.dumps(geom)
                )
            )
    if report.errors:
        return
    session.execute(delete(PathSegment).where(PathSegment.community_id == community))
    session.add_all(segments)
    report.written = len(segments)


def _geo_checkpoints(
    session: Session, report: ImportReport, records: list[dict[str, Any]], community: str, _name: Any
) -> None:
    """Patrol checkpoints from points (a GIS file) or ``lat``/``lon`` columns (a table): each a
    ``checkpoint`` device (id, name, grid), checked and written by the devices' rules."""
    _require_columns(report, records[0].keys() if records else [], ["id", "name"])
    types = patrol.checkpoint_devices(session, community)
    devices: list[dict[str, Any]] = []
    for i, record in enumerate(records, start=1):
        check = RowChecker(report, i, record)
        lat, lon = record.get("lat"), record.get("lon")
        if "geometry" in record:
            geom = record["geometry"]
            if geom is None or geom.is_empty or geom.geom_type != "Point":
                check.fail("geometry", "must be a point (the checkpoint's position)")
            else:
                lat, lon = round(geom.y, 7), round(geom.x, 7)
        did = _text(record.get("id"))
        if types.get(did, "checkpoint") != "checkpoint":
            check.fail("id", f"{did} is a {types[did]}, not a checkpoint")
        values = {"id": record.get("id"), "type": "checkpoint", "name": record.get("name"), "grid": record.get("grid")}
        devices.append(values | {"lat": lat, "lon": lon})
    _devices(session, report, devices, community, b"")
    report.errors.sort(key=lambda e: e.row)


def export_geo(session: Session, kind: str, community: str, path: Path) -> int:
    """Write one geodata layer of a community to a GIS file (format from the extension)."""
    frame = geo_frame(session, kind, community)
    driver = {".geojson": "GeoJSON", ".json": "GeoJSON", ".gpkg": "GPKG", ".shp": "ESRI Shapefile"}.get(
        path.suffix.lower()
    )
    if driver is None:
        raise InvalidInput(f"{path}: export to .geojson, .gpkg or .shp")
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_file(path, driver=driver, layer=kind if driver == "GPKG" else None)
    return len(frame)


def geo_frame(session: Session, kind: str, community: str) -> gpd.GeoDataFrame:
    """A geodata layer of a community as a GeoDataFrame (WGS-84)."""
    import geopandas as gpd  # noqa: PLC0415 — loaded on use (see the imports)

    rows: list[dict[str, Any]] = []
    if kind == "boundary":
        c = _community(session, community)
        rows = [{"name": c.name, "name_en": c.name_en, "geometry": shape(json.loads(c.boundary))}]
    elif kind == "grids":
        for g in session.scalars(select(Grid).where(Grid.community_id == community).order_by(Grid.id)):
            rows.append(
                {
                    "id": g.id,
                    "name": g.name,
                    "name_en": g.name_en,
                    "color": g.color,
                    "geometry": shape(json.loads(g.polygon)),
                }
            )
    elif kind == "buildings":
        for b in session.scalars(select(Building).where(Building.community_id == community).order_by(Building.id)):
            rows.append(
                {
                    "id": b.id,
                    "name": b.name,
                    "name_en": b.name_en,
                    "floors": b.floors,
                    "units": b.units,
                    "address": b.address,
                    "kind": b.kind,
                    "grid": b.grid_id or "",
                    "geometry": shape(json.loads(b.footprint)),
                }
            )
    elif kind == "checkpoints":
        for d in session.scalars(
            select(Device).where(Device.community_id == community, Device.type == "checkpoint").order_by(Device.id)
        ):
            rows.append({"id": d.id, "name": d.name, "grid": d.grid_id or "", "geometry": Point(d.lon, d.lat)})
    elif kind == "paths":
        for p in session.scalars(
            select(PathSegment).where(PathSegment.community_id == community).order_by(PathSegment.id)
        ):
            rows.append({"kind": p.kind, "name": p.name, "geometry": shape(json.loads(p.geometry))})
    else:
        raise InvalidInput(f"unknown geodata kind {kind!r}; one of {', '.join(GEO_KINDS)}")
    return gpd.GeoDataFrame(rows, geometry="geometry", crs="EPSG:4326")


# --- tables ---------------------------------------------------------------------------------


def import_table(
    session: Session,
    kind: str,
    path: Path,
    community: str,
    *,
    id_hash_key: bytes,
    dry_run: bool = False,
    sheet: str | None = None,
) -> ImportReport:
    """Import one table of a community from CSV or XLSX (all or nothing)."""
    if kind not in TABLE_KINDS:
        raise InvalidInput(f"unknown table kind {kind!r}; one of {', '.join(TABLE_KINDS)}")
    return import_records(
        session, kind, read_table(path, sheet).to_dict("records"), community, id_hash_key=id_hash_key, dry_run=dry_run
    )


def import_records(
    session: Session,
    kind: str,
    records: list[dict[str, Any]],
    community: str,
    *,
    id_hash_key: bytes,
    dry_run: bool = False,
) -> ImportReport:
    """Import rows (dicts of column → value) of one table kind (all or nothing)."""
    report = ImportReport(kind=kind, rows=len(records), dry_run=dry_run)
    _community(session, community)
    handlers: dict[str, Callable[..., None]] = {
        "households": _households,
        "people": _people,
        "devices": _devices,
        "vehicles": _vehicles,
        "guards": _guards,
        "routes": _routes,
        "checkpoints": _geo_checkpoints,
    }
    handlers[kind](session, report, records, community, id_hash_key)
    _finish(report)
    if dry_run:
        session.rollback()
    else:
        session.flush()
    return report


def _ids_of(session: Session, model: Any, community: str) -> set[str]:
    return set(session.scalars(select(model.id).where(model.community_id == community)))


def _households(
    session: Session, report: ImportReport, records: list[dict[str, Any]], community: str, _key: bytes
) -> None:
    _require_columns(
        report, records[0].keys() if records else [], ["id", "building", "unit", "floor", "room", "category"]
    )
    buildings = {b.id: b for b in session.scalars(select(Building).where(Building.community_id == community))}
    seen: set[str] = set()
    rows: list[dict[str, Any]] = []
    for i, record in enumerate(records, start=1):
        check = RowChecker(report, i, record)
        hid = check.take("id", _text)
        building_id = check.take("building", _text)
        building = buildings.get(building_id) if building_id else None
        if building_id and building is None:
            check.fail("building", f"unknown building {building_id}")
        unit = check.take("unit", lambda v: _int(v, 1, 50))
        floor = check.take("floor", lambda v: _int(v, -5, 150))
        room = check.take("room", _text)
        category = check.take("category", lambda v: _choice(v, HOUSEHOLD_CATEGORIES))
        if building is not None and floor is not None and floor > building.floors:
            check.fail("floor", f"building {building.id} has {building.floors} floors")
        if building is not None and unit is not None and unit > building.units:
            check.fail("unit", f"building {building.id} has {building.units} units")
        if hid in seen:
            check.fail("id", f"{hid} appears twice in the file")
        seen.add(hid)
        if check.failed or building is None:
            continue
        row = {
            "id": hid,
            "community_id": community,
            "building_id": building.id,
            "grid_id": building.grid_id,
            "unit": unit,
            "floor": floor,
            "room": room,
            "category": category,
        }
        if _fits(check, Household, row):
            rows.append(row)
    if not report.errors:
        _upsert(session, Household, rows)
        report.written = len(rows)


def _people(
    session: Session, report: ImportReport, records: list[dict[str, Any]], community: str, id_hash_key: bytes
) -> None:
    _require_columns(report, records[0].keys() if records else [], ["id", "name"])
    households = _ids_of(session, Household, community)
    # a file without the column keeps the per-person thresholds set before; with it, a blank clears one
    has_threshold = bool(records) and "elder_inactive_hours" in records[0]
    kept: dict[str, float | None] = {}
    if not has_threshold:
        ids_in_file = [_text(r.get("id")) for r in records]
        for chunk in _chunks(ids_in_file, 500):
            rows = session.execute(
                select(Person.id, Person.elder_inactive_hours).where(
                    Person.id.in_(chunk), Person.elder_inactive_hours.is_not(None)
                )
            )
            kept.update((pid, hours) for pid, hours in rows)
    seen: set[str] = set()
    people: list[dict[str, Any]] = []
    tags: list[dict[str, Any]] = []
    residencies: list[dict[str, Any]] = []
    for i, record in enumerate(records, start=1):
        check = RowChecker(report, i, record)
        pid = check.take("id", _text)
        name = check.take("name", _text)
        if name and len(name) > 64:
            check.fail("name", "is longer than 64 characters")
        id_number = check.take("id_number", validate.id_number, required=False)
        phone = check.take("phone", validate.phone, required=False)
        household = check.take("household", _text, required=False)
        role = check.take("role", lambda v: _choice(v, RESIDENCY_ROLES), required=household is not None)
        if household and household not in households:
            check.fail("household", f"unknown household {household}")
        tag_list: list[str] = []
        raw_tags = _text(record.get("tags"))
        for tag in filter(None, (t.strip() for t in raw_tags.replace("|", ",").replace(";", ",").split(","))):
            if tag not in PERSON_TAGS:
                check.fail("tags", f"unknown tag {tag!r}; tags are {', '.join(PERSON_TAGS)}")
            else:
                tag_list.append(tag)
        threshold = check.take("elder_inactive_hours", _hours, required=False) if has_threshold else None
        registered = check.take("floating_registered_on", _date, required=False)
        expires = check.take("floating_expires_on", _date, required=False)
        if registered and expires and expires < registered:
            check.fail("floating_expires_on", "is before floating_registered_on")
        gender = _text(record.get("gender")) or None
        if gender not in (None, "M", "F"):
            check.fail("gender", "must be M or F")
        if pid in seen:
            check.fail("id", f"{pid} appears twice in the file")
        seen.add(pid)
        if check.failed:
            continue
        birth = None
        if id_number:
            birth = ric.get_birth_date(id_number)
            gender = gender or ("M" if int(id_number[16]) % 2 else "F")
        row = {
            "id": pid,
            "community_id": community,
            "name": name,
            "id_number": id_number,
            "id_hash": keyed_hash(id_hash_key, id_number) if id_number else None,
            "phone": phone,
            "gender": gender,
            "birth_date": birth,
            "face_id": _text(record.get("face_id")) or None,
            "floating_registered_on": registered,
            "floating_expires_on": expires,
            "elder_inactive_hours": threshold if has_threshold else kept.get(pid),
            "notes": _text(record.get("notes")),
        }
        if _fits(check, Person, row):
            people.append(row)
        tags.extend({"person_id": pid, "tag": tag} for tag in sorted(set(tag_list)))
        if household:
            residencies.append(
                {"person_id": pid, "household_id": household, "role": role, "since": _date(record.get("since"))}
            )
    if report.errors:
        return
    ids = [p["id"] for p in people]
    for chunk in _chunks(ids, 500):
        session.execute(delete(PersonTag).where(PersonTag.person_id.in_(chunk)))
        session.execute(delete(Residency).where(Residency.person_id.in_(chunk)))
    _upsert(session, Person, people)
    if tags:
        session.execute(insert(PersonTag), tags)
    if residencies:
        session.execute(insert(Residency), residencies)
    report.written = len(people)
    lives_in = {r["person_id"]: r["household_id"] for r in residencies}
    report.identities = [(p["id"], p["id_hash"], lives_in.get(p["id"])) for p in people if p["id_hash"]]


def _devices(
    session: Session, report: ImportReport, records: list[dict[str, Any]], community: str, _key: bytes
) -> None:
    _require_columns(report, records[0].keys() if records else [], ["id", "type"])
    buildings = {b.id: b for b in session.scalars(select(Building).where(Building.community_id == community))}
    households = {h.id: h for h in session.scalars(select(Household).where(Household.community_id == community))}
    grids = list(session.scalars(select(Grid).where(Grid.community_id == community)))
    locator = GridLocator(grids)
    grid_ids = {g.id for g in grids}
    seen: set[str] = set()
    rows: list[dict[str, Any]] = []
    for i, record in enumerate(records, start=1):
        check = RowChecker(report, i, record)
        did = check.take("id", _text)
        dtype = check.take("type", lambda v: _choice(v, DEVICE_TYPES))
        household_id = check.take("household", _text, required=False)
        household = households.get(household_id) if household_id else None
        if household_id and household is None:
            check.fail("household", f"unknown household {household_id}")
        building_id = check.take("building", _text, required=False) or (household.building_id if household else None)
        building = buildings.get(building_id) if building_id else None
        if building_id and building is None:
            check.fail("building", f"unknown building {building_id}")
        if dtype in HOUSEHOLD_ONLY_TYPES and household_id is None:
            check.fail("household", f"a {dtype} belongs to a household")
        lat, lon = None, None
        if not _blank(record.get("lat")) or not _blank(record.get("lon")):
            try:
                lat, lon = validate.lat_lon(record.get("lat"), record.get("lon"))
            except InvalidInput as err:
                check.fail("lat/lon", str(err))
        elif building is not None:
            lat, lon = building.lat, building.lon
        else:
            check.fail("lat/lon", "a device needs a position or a building")
        grid = _text(record.get("grid")) or None
        if grid and grid not in grid_ids:
            check.fail("grid", f"unknown grid {grid}")
        floor = check.take("floor", lambda v: _int(v, -5, 150), required=False)
        install = check.take("install_date", _date, required=False)
        silent = check.take("silent_hours", lambda v: float(_int(v, 1, 720)), required=False)
        if did in seen:
            check.fail("id", f"{did} appears twice in the file")
        seen.add(did)
        if check.failed or lat is None or lon is None:
            continue
        raw_config = record.get("config")
        try:
            config = raw_config if isinstance(raw_config, dict) else json.loads(_text(raw_config) or "{}")
        except json.JSONDecodeError:
            config = None
        if not isinstance(config, dict):
            check.fail("config", "must be a JSON object")
            continue
        config = with_view_columns(check, config)
        for key, reason in config_problems(config):
            check.fail(key, reason)
        if check.failed:
            continue
        row = {
            "id": did,
            "community_id": community,
            "type": dtype,
            "name": _text(record.get("name")),
            "building_id": building.id if building else None,
            "household_id": household_id,
            "grid_id": grid or (building.grid_id if building else None) or locator.locate(lat, lon),
            "floor": floor if floor is not None else (household.floor if household else None),
            "lat": lat,
            "lon": lon,
            "install_date": install,
            "silent_hours": silent,
            "config": config,
        }
        if _fits(check, Device, row):
            rows.append(row)
    if not report.errors:
        _upsert(session, Device, rows)
        report.written = len(rows)


def with_view_columns(check: RowChecker, config: dict[str, Any]) -> dict[str, Any]:
    """The device's config with a camera's field of view given as columns (heading, fov, range_m)
    taken into it; a cell that is not a number is recorded as the row's error."""
    out = dict(config)
    for key in LIMITS:
        cell = check.record.get(key)
        if _blank(cell):
            continue
        try:
            out[key] = float(str(cell))
        except (TypeError, ValueError):
            check.fail(key, "must be a number")
    return out


def _vehicles(
    session: Session, report: ImportReport, records: list[dict[str, Any]], community: str, _key: bytes
) -> None:
    _require_columns(report, records[0].keys() if records else [], ["plate"])
    people = _ids_of(session, Person, community)
    seen: set[str] = set()
    rows: list[dict[str, Any]] = []
    for i, record in enumerate(records, start=1):
        check = RowChecker(report, i, record)
        plate = check.take("plate", validate.plate)
        owner = check.take("owner", _text, required=False)
        if owner and owner not in people:
            check.fail("owner", f"unknown person {owner}")
        flag = _text(record.get("blacklisted")).lower()
        if flag not in ("", "0", "1", "true", "false", "yes", "no"):
            check.fail("blacklisted", "must be true or false")
        if plate in seen:
            check.fail("plate", f"{plate} appears twice in the file")
        seen.add(plate)
        if check.failed:
            continue
        row = {
            "plate": plate,
            "community_id": community,
            "owner_id": owner,
            "blacklisted": flag in ("1", "true", "yes"),
            "note": _text(record.get("note")),
        }
        if _fits(check, Vehicle, row):
            rows.append(row)
    if not report.errors:
        _upsert(session, Vehicle, rows, key="plate")
        report.written = len(rows)


def _guards(session: Session, report: ImportReport, records: list[dict[str, Any]], community: str, _key: bytes) -> None:
    _require_columns(report, records[0].keys() if records else [], ["id", "name", "kind"])
    grids = _ids_of(session, Grid, community)
    wearables = set(
        session.scalars(select(Device.id).where(Device.community_id == community, Device.type == "wearable"))
    )
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, record in enumerate(records, start=1):
        check = RowChecker(report, i, record)
        gid = check.take("id", _text)
        name = check.take("name", _text)
        kind = check.take("kind", lambda v: _choice(v, GUARD_KINDS))
        phone = check.take("phone", validate.phone, required=False)
        grid = check.take("grid", _text, required=False)
        if grid and grid not in grids:
            check.fail("grid", f"unknown grid {grid}")
        device = check.take("device", _text, required=False)
        if device and device not in wearables:
            check.fail("device", f"{device} is not a wearable of this community")
        if gid in seen:
            check.fail("id", f"{gid} appears twice in the file")
        seen.add(gid)
        if check.failed:
            continue
        row = {
            "id": gid,
            "community_id": community,
            "name": name,
            "kind": kind,
            "phone": phone,
            "grid_id": grid,
            "device_id": device,
            "on_duty": True,
        }
        if _fits(check, Guard, row):
            rows.append(row)
    if not report.errors:
        _upsert(session, Guard, rows)
        report.written = len(rows)


ROUTE_DEFAULTS = {"interval": 120, "start_hour": 20, "end_hour": 6, "tolerance": 15}  # the table's defaults
ROUTE_ATTRS = {
    "name": "name",
    "interval_minutes": "interval",
    "start_hour": "start_hour",
    "end_hour": "end_hour",
    "tolerance_minutes": "tolerance",
}


def _whole(value: Any) -> int:
    return _int(value, -1_000_000, 1_000_000)


def _routes(session: Session, report: ImportReport, records: list[dict[str, Any]], community: str, _key: bytes) -> None:
    """Patrol routes, one row per checkpoint in order; a route's own columns on any of its rows (blank:
    the same as its other rows, or the default schedule); checked by registry.routes.route_problems."""
    _require_columns(report, records[0].keys() if records else [], ["route", "checkpoint"])
    drafts: dict[str, patrol.RouteDraft] = {}
    for i, record in enumerate(records, start=1):
        check = RowChecker(report, i, record)
        route_id = check.take("route", _text)
        numbers = {
            name: check.take(name, _whole, required=False)
            for name in ("interval_minutes", "start_hour", "end_hour", "tolerance_minutes", "seq", "offset_minutes")
        }
        if route_id is None:
            continue
        fresh = patrol.RouteDraft(route_id, None, None, None, None, None, rows={"route": i})
        draft = drafts.setdefault(route_id, fresh)
        for column, attr in ROUTE_ATTRS.items():
            value = _text(record.get("name")) or None if column == "name" else numbers[column]
            current = getattr(draft, attr)
            if value is None:
                continue
            if current is None:
                setattr(draft, attr, value)
                draft.rows[column] = i
            elif current != value:
                check.fail(column, f"differs from row {draft.rows[column]} of route {route_id} ({current})")
        device = _text(record.get("checkpoint")) or None
        draft.stops.append(patrol.Stop(device, numbers["seq"], numbers["offset_minutes"], row=i))
    devices = patrol.checkpoint_devices(session, community)
    for draft in drafts.values():
        for attr, default in ROUTE_DEFAULTS.items():
            if getattr(draft, attr) is None:
                setattr(draft, attr, default)
        owner = patrol.route_owner(session, draft.id)
        for problem in patrol.route_problems(draft, devices, owner=owner, community=community):
            report.errors.append(RowError(problem.row, problem.field, problem.text("en")))
    report.errors.sort(key=lambda e: e.row)
    if report.errors:
        return
    for draft in drafts.values():
        patrol.write_route(session, community, draft)
    report.written = len(records)


def export_routes(session: Session, community: str, path: Path) -> int:
    """Write a community's patrol routes as a routes file (.csv or .xlsx): one row per checkpoint."""
    import pandas as pd  # noqa: PLC0415 — loaded on use (see the imports)

    frame = pd.DataFrame(patrol.route_rows(session, community), columns=list(patrol.COLUMNS))
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".xlsx":
        frame.to_excel(path, index=False)
    elif path.suffix.lower() == ".csv":
        frame.to_csv(path, index=False, encoding="utf-8")
    else:
        raise InvalidInput(f"{path}: export routes to .csv or .xlsx")
    return len(frame)


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# columns whose file heading differs from the table's (errors name what the user wrote)
FILE_COLUMNS = {"building_id": "building", "household_id": "household", "grid_id": "grid", "owner_id": "owner"}


def _fits(check: RowChecker, model: Any, values: dict[str, Any]) -> bool:
    """True when every text value fits its column, else the row fails with the column named.

    PostgreSQL refuses a value longer than VARCHAR(n) (and the whole import with it); SQLite would
    keep it: the check makes both answer with the same row error.
    """
    columns = model.__table__.c
    for key, value in values.items():
        length = getattr(columns[key].type, "length", None) if key in columns else None
        if isinstance(value, str) and length is not None and len(value) > length:
            check.fail(FILE_COLUMNS.get(key, key), f"is longer than {length} characters")
    return not check.failed


def _upsert(session: Session, model: Any, rows: list[dict[str, Any]], key: str = "id") -> None:
    """Insert rows, replacing the ones whose key exists (portable across SQLite and PostgreSQL)."""
    if not rows:
        return
    column = getattr(model, key)
    keys = [r[key] for r in rows]
    existing: set[Any] = set()
    for chunk in _chunks(keys, 500):
        existing.update(session.scalars(select(column).where(column.in_(chunk))))
    fresh = [r for r in rows if r[key] not in existing]
    stale = [r for r in rows if r[key] in existing]
    if fresh:
        session.execute(insert(model), fresh)
    for row in stale:
        session.execute(update(model).where(column == row[key]).values(**row))
