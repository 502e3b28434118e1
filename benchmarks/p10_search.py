"""P10 — place-and-time search of the event archive against a full scan of it.

The world: the demo registry (SQLite) and an archive of one community (Wanhu Xincun) at the
simulator's rate, about 218,000 events a day (115k guard.position, 95k device.heartbeat, 3k
lock.open, 2.5k door.contact, 1.5k gate.face, 0.5k gate.vehicle, 60 patrol.checkin), written as the
archiver writes them (rows shaped like ``memory.archive.archive_row``'s, on the registry's real
devices and positions; guards walk among the buildings). Rows are bulk-inserted in one
transaction with the secondary indexes dropped, then the indexes are built: that is how a month
is made in a few minutes, not a smaller month.

Each query: a random building's footprint as the polygon, a random 8 h window inside the archive,
through ``memory.search.search`` (one page, 200 items). The baseline is the same predicate read
with no index usable (SQLite ``NOT INDEXED``: a full scan of the archive table), the polygon's
points then kept the same way. Both are timed on the same 50 queries; the search is timed at 10
days of archive and again at the full length (the growth), the scan at the full length.

Last line: {"bench": "P10", "ratio": scan p95 / search p95, "growth": search p95 at DAYS / at 10
days, …}; ``--repeat N`` runs the queries N times on the same archive and prints the min, median
and max of the ratio.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shapely import Point, prepare
from shapely.geometry import shape
from sqlalchemy import select, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.schema import CreateIndex

from benchmarks.common import bench_world, report
from ingest.directory import Directory
from ingest.schema import DeviceInfo
from memory.models import ArchivedEvent, cell_of
from memory.search import SearchQuery, search, statement
from registry.models import Building
from store.stores import Stores

COMMUNITY = "wanhu"
DAY_MS = 86_400_000
HOUR_MS = 3_600_000
WINDOW_MS = 8 * HOUR_MS
PER_DAY = {
    "guard.position": 115_000,
    "device.heartbeat": 95_000,
    "lock.open": 3_000,
    "door.contact": 2_500,
    "gate.face": 1_500,
    "gate.vehicle": 500,
    "patrol.checkin": 60,
}
COLUMNS = (
    "community_id, entry, ts, received, event_id, type, device_id, building_id, household_id, grid_id, "
    "lat, lon, cell, guard_id, plate, person, data"
)
INSERT = f"INSERT INTO event_archive ({COLUMNS}) VALUES ({', '.join('?' * 17)})"
CHUNK = 50_000
DEVICE_OF = {
    "lock.open": "smart_lock",
    "door.contact": "door_sensor",
    "gate.face": "face_gate",
    "gate.vehicle": "vehicle_gate",
    "patrol.checkin": "checkpoint",
}


@dataclass
class Registry:
    """The community's devices and what the generated events name."""

    by_type: dict[str, list[DeviceInfo]]
    devices: list[DeviceInfo]
    wearables: list[tuple[str, str, str | None]]  # (device, guard, the wearable's grid)
    guards: list[str]
    people: list[str]
    faces: list[str]
    plates: list[str]
    spots: list[tuple[float, float]]  # buildings' positions: where the guards walk


def load_registry(stores: Stores) -> Registry:
    """The demo community as the archiver sees it."""
    facts = Directory(stores.sessions).facts(COMMUNITY)
    by_type: dict[str, list[DeviceInfo]] = {}
    for device in facts.devices.values():
        by_type.setdefault(device.type, []).append(device)
    with stores.sessions() as session:
        spots = [(b.lat, b.lon) for b in session.scalars(select(Building).where(Building.community_id == COMMUNITY))]
    people = sorted({p for occupants in facts.occupants.values() for p in occupants})
    return Registry(
        by_type=by_type,
        devices=list(facts.devices.values()),
        wearables=[
            (d, g, facts.devices[d].grid if d in facts.devices else None) for d, g in sorted(facts.wearables.items())
        ],
        guards=sorted(facts.guards) or ["guard"],
        people=people,
        faces=sorted(facts.face_ids),
        plates=sorted(facts.vehicles) or ["苏J00001"],
        spots=spots,
    )


def day_rows(reg: Registry, day_start: int, rng: random.Random) -> list[tuple[Any, ...]]:
    """One day of archive rows, in time order."""
    rows: list[tuple[Any, ...]] = []
    for kind, count in PER_DAY.items():
        for _ in range(count):
            ts = day_start + rng.randrange(DAY_MS)
            rows.append(_row(reg, kind, ts, rng))
    rows.sort(key=lambda r: r[2])
    return [(COMMUNITY, f"{r[2]}-{i}", *r[2:]) for i, r in enumerate(rows)]


def _row(reg: Registry, kind: str, ts: int, rng: random.Random) -> tuple[Any, ...]:
    """One archive row (its community and entry filled in by ``day_rows``)."""
    guard = plate = person = building = household = None
    if kind == "guard.position":  # where the guard was: near a building, somewhere
        device_id, guard, grid = rng.choice(reg.wearables)
        lat, lon = rng.choice(reg.spots)
        lat, lon = lat + rng.uniform(-0.0004, 0.0004), lon + rng.uniform(-0.0004, 0.0004)
        data: dict[str, Any] = {"lat": lat, "lon": lon, "accuracy_m": 5}
    else:  # at the device
        device = rng.choice(reg.devices if kind == "device.heartbeat" else reg.by_type[DEVICE_OF[kind]])
        device_id, building, household, grid, lat, lon = (
            device.id,
            device.building,
            device.household,
            device.grid,
            device.lat,
            device.lon,
        )
        if kind == "device.heartbeat":
            data = {"battery": rng.randint(20, 100)}
        elif kind == "lock.open":
            person = rng.choice(reg.people)
            data = {"method": "face", "person": person}
        elif kind == "door.contact":
            data = {"state": rng.choice(("open", "closed"))}
        elif kind == "gate.face":
            face = rng.choice(reg.faces) if reg.faces else "F0"
            person = f"face:{face}"
            data = {"direction": rng.choice(("in", "out")), "face_id": face, "score": 0.93}
        elif kind == "gate.vehicle":
            plate = rng.choice(reg.plates)
            data = {"direction": rng.choice(("in", "out")), "plate": plate}
        else:  # patrol.checkin
            guard = rng.choice(reg.guards)
            data = {"guard": guard}
    cell = cell_of(lat, lon)
    received = ts + 800
    return (None, None, ts, received, None, kind, device_id, building, household, grid, lat, lon, cell, guard, plate,
            person, json.dumps(data))  # fmt: skip


def fill(stores: Stores, reg: Registry, first_day: int, days: int, seed: int) -> int:
    """Write ``days`` days from ``first_day`` (epoch ms) into the archive; returns the rows written."""
    indexes = list(ArchivedEvent.__table__.indexes)  # type: ignore[attr-defined]
    raw = stores.engine.raw_connection()
    written = 0
    try:
        cursor = raw.cursor()
        for pragma in ("synchronous = OFF", "cache_size = -1000000", "temp_store = MEMORY"):
            cursor.execute(f"PRAGMA {pragma}")
        for index in indexes:
            cursor.execute(f"DROP INDEX IF EXISTS {index.name}")
        for day in range(days):
            rows = day_rows(reg, first_day + day * DAY_MS, random.Random(seed * 1000 + day))
            for start in range(0, len(rows), CHUNK):
                cursor.executemany(INSERT, rows[start : start + CHUNK])
            written += len(rows)
        raw.commit()
        for index in indexes:  # as the migrations made them (a partial index's WHERE included)
            cursor.execute(str(CreateIndex(index).compile(dialect=stores.engine.dialect)))
        raw.commit()
    finally:
        raw.close()
    return written


def queries(stores: Stores, first: int, end: int, n: int, seed: int) -> list[SearchQuery]:
    """n random (building footprint, 8 h window) queries inside [first, end)."""
    rng = random.Random(seed)
    with stores.sessions() as session:
        footprints = [
            shape(json.loads(b.footprint))
            for b in session.scalars(select(Building).where(Building.community_id == COMMUNITY).order_by(Building.id))
        ]
    out = []
    for _ in range(n):
        start = rng.randrange(first, end - WINDOW_MS)
        out.append(SearchQuery(COMMUNITY, start, start + WINDOW_MS, polygon=rng.choice(footprints)))
    return out


def p95(values: list[float]) -> float:
    """The 95th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[max(0, -(-len(ordered) * 95 // 100) - 1)]


def time_search(stores: Stores, batch: list[SearchQuery]) -> tuple[list[float], list[list[str]]]:
    """Milliseconds per query through memory.search, and the entries each found."""
    times, found = [], []
    with stores.sessions() as session:
        for query in batch:
            began = time.perf_counter()
            page = search(session, query)
            times.append((time.perf_counter() - began) * 1000)
            found.append([item["entry"] for item in page.items])
            session.expunge_all()
    return times, found


def scan_sql(query: SearchQuery) -> str:
    """The search's own predicate, read with no index usable (a full scan of the table)."""
    compiled = statement(query).compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True})
    return str(compiled).replace("FROM event_archive", "FROM event_archive NOT INDEXED", 1)


def time_scan(stores: Stores, batch: list[SearchQuery]) -> tuple[list[float], list[list[str]]]:
    """Milliseconds per query as a full scan (the first page kept as the search keeps it)."""
    times, found = [], []
    with stores.engine.connect() as connection:
        for query in batch:
            began = time.perf_counter()
            shape_ = query.polygon
            assert shape_ is not None
            prepare(shape_)
            page = []
            for row in connection.execute(text(scan_sql(query))).mappings():
                if row["lat"] is not None and shape_.covers(Point(row["lon"], row["lat"])):
                    page.append(row["entry"])
                    if len(page) == query.limit:
                        break
            times.append((time.perf_counter() - began) * 1000)
            found.append(page)
    return times, found


def main() -> None:
    """Run P10."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30, help="days of archive (the growth is from 10 days)")
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=1, help="run the queries N times: min/median/max ratio")
    parser.add_argument("--seed", type=int, default=10)
    args = parser.parse_args()
    base_days = min(10, args.days)
    with bench_world() as bench:
        stores = bench.stores
        reg = load_registry(stores)
        end = (int(time.time() * 1000) // HOUR_MS) * HOUR_MS
        began = time.perf_counter()
        rows = fill(stores, reg, end - base_days * DAY_MS, base_days, args.seed)
        build_s = time.perf_counter() - began
        small = queries(stores, end - base_days * DAY_MS, end, args.queries, args.seed)
        time_search(stores, small[:5])  # warm the connection and the page cache
        search_small = [p95(time_search(stores, small)[0]) for _ in range(args.repeat)]
        print(f"{base_days} days, {rows:,} rows in {build_s:.0f} s: search p95 {min(search_small):.2f} ms", flush=True)
        if args.days > base_days:
            began = time.perf_counter()
            rows += fill(stores, reg, end - args.days * DAY_MS, args.days - base_days, args.seed + 1)
            build_s += time.perf_counter() - began
        batch = queries(stores, end - args.days * DAY_MS, end, args.queries, args.seed + 7)
        time_search(stores, batch[:5])
        ratios, search_full, scan_full, hits = [], [], [], 0
        for run in range(args.repeat):
            search_ms, search_found = time_search(stores, batch)
            scan_ms, scan_found = time_scan(stores, batch)
            assert search_found == scan_found, "the search and the scan disagree"
            hits = sum(len(f) for f in search_found)
            search_full.append(p95(search_ms))
            scan_full.append(p95(scan_ms))
            ratios.append(scan_full[-1] / search_full[-1])
            print(
                f"run {run + 1}: {args.days} days, {rows:,} rows: search p95 {search_full[-1]:.2f} ms "
                f"(median {statistics.median(search_ms):.2f}), scan p95 {scan_full[-1]:.0f} ms, "
                f"ratio {ratios[-1]:.0f}",
                flush=True,
            )
        growth = statistics.median(search_full) / statistics.median(search_small)
        figures: dict[str, Any] = {
            "bench": "P10",
            "ratio": round(statistics.median(ratios), 1),
            "search_p95_ms": round(statistics.median(search_full), 3),
            "scan_p95_ms": round(statistics.median(scan_full), 1),
            "growth": round(growth, 3),
            f"search_p95_ms_{base_days}d": round(statistics.median(search_small), 3),
            "days": args.days,
            "rows": rows,
            "rows_per_day": rows // args.days,
            "queries": args.queries,
            "items_found": hits,
            "build_s": round(build_s, 1),
            "target": {"ratio": 50, "growth": 1.3},
        }
        if args.repeat > 1:
            figures["ratio_min"] = round(min(ratios), 1)
            figures["ratio_median"] = round(statistics.median(ratios), 1)
            figures["ratio_max"] = round(max(ratios), 1)
        report(figures)


if __name__ == "__main__":
    main()
