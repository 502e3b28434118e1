"""The event archive (issue #19): every accepted event, with its place, kept for search by place
and time, for the sand-table at a past moment and for case files.

One row per stream entry. Times are epoch milliseconds (UTC). On PostgreSQL the table is
partitioned by ``ts`` (event time, a week per partition, created ahead by the archiver and dropped
whole by ``purge``); on SQLite it is one table. The primary key (community, entry, ts) makes a
redelivered entry a no-op (``INSERT … ON CONFLICT DO NOTHING``): a crash never writes an event twice.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Float, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from store.sql import Base

# The archive's spatial cell: 0.0005° of latitude (≈ 55 m) by 0.0005° of longitude (≈ 48 m at 31° N).
# A polygon's search reads the cells under its bounding box from an index, then keeps the points inside.
CELL_DEG = 0.0005
_LON_CELLS = 1_000_000  # > 360 / CELL_DEG


def cell_of(lat: float, lon: float) -> int:
    """The archive cell of a WGS-84 point."""
    return int((lat + 90.0) // CELL_DEG) * _LON_CELLS + int((lon + 180.0) // CELL_DEG)


def cells_of_box(min_lat: float, min_lon: float, max_lat: float, max_lon: float) -> list[int]:
    """Every cell that a bounding box touches (row by row)."""
    lat0, lat1 = int((min_lat + 90.0) // CELL_DEG), int((max_lat + 90.0) // CELL_DEG)
    lon0, lon1 = int((min_lon + 180.0) // CELL_DEG), int((max_lon + 180.0) // CELL_DEG)
    return [a * _LON_CELLS + b for a in range(lat0, lat1 + 1) for b in range(lon0, lon1 + 1)]


def _present(column: str) -> dict[str, Any]:
    """A partial index's condition: only the rows that have the column (issue 24). A search by a
    building, a household, a plate or a person (``column = value``) implies it, so SQLite and
    PostgreSQL use the index as before; the many rows without one (a guard's position, a shared
    device's heartbeat, every event but a vehicle's for the plate) cost their insert nothing there."""
    condition = text(f"{column} IS NOT NULL")
    return {"sqlite_where": condition, "postgresql_where": condition}


class ArchivedEvent(Base):
    """An accepted event as archived: the event (PII hashed as in the stream) and where it happened."""

    __tablename__ = "event_archive"
    __table_args__ = (
        Index("ix_event_archive_time", "community_id", "ts"),
        # covering: a polygon's first pass (keys and positions, by kind and grid) reads this index alone
        Index("ix_event_archive_cell", "community_id", "cell", "ts", "entry", "lat", "lon", "type", "grid_id"),
        Index("ix_event_archive_building", "community_id", "building_id", "ts", **_present("building_id")),
        Index("ix_event_archive_household", "community_id", "household_id", "ts", **_present("household_id")),
        Index("ix_event_archive_device", "community_id", "device_id", "ts"),
        Index("ix_event_archive_plate", "community_id", "plate", "ts", **_present("plate")),
        Index("ix_event_archive_person", "community_id", "person", "ts", **_present("person")),
    )

    community_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    entry: Mapped[str] = mapped_column(String(24), primary_key=True)  # the stream entry id
    ts: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # event time, epoch ms (UTC)
    received: Mapped[int] = mapped_column(BigInteger)  # when ingest accepted it, epoch ms
    event_id: Mapped[str | None] = mapped_column(String(64))  # the producer's id, when it sent one
    type: Mapped[str] = mapped_column(String(24))
    device_id: Mapped[str] = mapped_column(String(48))
    building_id: Mapped[str | None] = mapped_column(String(40))
    household_id: Mapped[str | None] = mapped_column(String(48))
    grid_id: Mapped[str | None] = mapped_column(String(40))
    lat: Mapped[float | None] = mapped_column(Float)  # a guard's own position, else its device's
    lon: Mapped[float | None] = mapped_column(Float)
    cell: Mapped[int | None] = mapped_column(BigInteger)  # cell_of(lat, lon)
    guard_id: Mapped[str | None] = mapped_column(String(40))  # guard.position's wearer, patrol.checkin's guard
    plate: Mapped[str | None] = mapped_column(String(16))
    # who: a registry person id (sent, or resolved from a registered face or an ID hash), else
    # "face:<face id>" (an unregistered face) or "id:<hash>" (an ID number unknown to the registry)
    person: Mapped[str | None] = mapped_column(String(80))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
