"""The registry of 人、房、车、场、网: communities, grids, buildings, households, people, devices…

Geometry is stored as GeoJSON text in WGS-84 (EPSG:4326), with centroids in plain columns so
that maps and spatial filters need no spatial extension in SQLite or PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, Date, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from store.sql import Base, UTCDateTime, utcnow

HOUSEHOLD_CATEGORIES = ("owner", "rental", "group_rental", "vacant")
RESIDENCY_ROLES = ("owner", "tenant", "family")
PERSON_TAGS = ("elderly_alone", "floating", "key_person", "disabled", "minor_alone")
DEVICE_TYPES = (
    "face_gate",
    "vehicle_gate",
    "camera",
    "throw_camera",
    "door_sensor",
    "smart_lock",
    "smoke_detector",
    "wearable",
    "checkpoint",
    "intercom",
    "water_meter",
    "power_meter",
)
GUARD_KINDS = ("police", "auxiliary", "grid_worker", "volunteer", "security")


class Community(Base):
    """A residential community (小区) with its boundary."""

    __tablename__ = "community"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100), default="")
    district: Mapped[str] = mapped_column(String(100), default="")
    address: Mapped[str] = mapped_column(String(200), default="")
    kind: Mapped[str] = mapped_column(String(16), default="open")  # open / gated
    built_year: Mapped[int | None] = mapped_column(Integer)
    boundary: Mapped[str] = mapped_column(Text)  # GeoJSON Polygon/MultiPolygon
    center_lat: Mapped[float] = mapped_column(Float)
    center_lon: Mapped[float] = mapped_column(Float)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

    grids: Mapped[list[Grid]] = relationship(back_populates="community", cascade="all, delete-orphan")
    buildings: Mapped[list[Building]] = relationship(back_populates="community", cascade="all, delete-orphan")


class Grid(Base):
    """A grid (网格): the area a grid worker is responsible for."""

    __tablename__ = "grid"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    community_id: Mapped[str] = mapped_column(ForeignKey("community.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100), default="")
    polygon: Mapped[str] = mapped_column(Text)
    color: Mapped[str] = mapped_column(String(16), default="#5b8def")

    community: Mapped[Community] = relationship(back_populates="grids")


class Building(Base):
    """A building with its footprint."""

    __tablename__ = "building"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    community_id: Mapped[str] = mapped_column(ForeignKey("community.id", ondelete="CASCADE"), index=True)
    grid_id: Mapped[str | None] = mapped_column(ForeignKey("grid.id", ondelete="SET NULL"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100), default="")
    address: Mapped[str] = mapped_column(String(200), default="")
    floors: Mapped[int] = mapped_column(Integer)
    units: Mapped[int] = mapped_column(Integer, default=1)
    kind: Mapped[str] = mapped_column(String(16), default="residential")
    footprint: Mapped[str] = mapped_column(Text)
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)

    community: Mapped[Community] = relationship(back_populates="buildings")
    households: Mapped[list[Household]] = relationship(back_populates="building", cascade="all, delete-orphan")


class Household(Base):
    """A dwelling (户/房屋) in a building."""

    __tablename__ = "household"
    __table_args__ = (UniqueConstraint("building_id", "unit", "floor", "room"),)

    id: Mapped[str] = mapped_column(String(48), primary_key=True)
    community_id: Mapped[str] = mapped_column(ForeignKey("community.id", ondelete="CASCADE"), index=True)
    building_id: Mapped[str] = mapped_column(ForeignKey("building.id", ondelete="CASCADE"), index=True)
    grid_id: Mapped[str | None] = mapped_column(ForeignKey("grid.id", ondelete="SET NULL"), index=True)
    unit: Mapped[int] = mapped_column(Integer)
    floor: Mapped[int] = mapped_column(Integer)
    room: Mapped[str] = mapped_column(String(16))
    category: Mapped[str] = mapped_column(String(16), index=True)
    area_m2: Mapped[float | None] = mapped_column(Float)

    building: Mapped[Building] = relationship(back_populates="households")
    residents: Mapped[list[Residency]] = relationship(back_populates="household", cascade="all, delete-orphan")


class Person(Base):
    """A person in the registry. ``id_number`` is shown masked unless a police officer unmasks it."""

    __tablename__ = "person"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    community_id: Mapped[str] = mapped_column(ForeignKey("community.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    id_number: Mapped[str | None] = mapped_column(String(18))
    id_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    phone: Mapped[str | None] = mapped_column(String(20))
    gender: Mapped[str | None] = mapped_column(String(1))
    birth_date: Mapped[dt.date | None] = mapped_column(Date)
    face_id: Mapped[str | None] = mapped_column(String(64), index=True)
    floating_registered_on: Mapped[dt.date | None] = mapped_column(Date)
    floating_expires_on: Mapped[dt.date | None] = mapped_column(Date)
    elder_inactive_hours: Mapped[float | None] = mapped_column(Float)  # per-person override
    notes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

    tags: Mapped[list[PersonTag]] = relationship(cascade="all, delete-orphan", lazy="selectin")
    residencies: Mapped[list[Residency]] = relationship(back_populates="person", cascade="all, delete-orphan")

    @property
    def tag_names(self) -> list[str]:
        """The person's tags, sorted."""
        return sorted(t.tag for t in self.tags)


class PersonTag(Base):
    """One tag of a person (独居老人, 流动人口, 重点人员 …)."""

    __tablename__ = "person_tag"

    person_id: Mapped[str] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(24), primary_key=True, index=True)


class Residency(Base):
    """A person living in a household, as owner, tenant or family."""

    __tablename__ = "residency"

    person_id: Mapped[str] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), primary_key=True)
    household_id: Mapped[str] = mapped_column(
        ForeignKey("household.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(String(8))
    since: Mapped[dt.date | None] = mapped_column(Date)

    person: Mapped[Person] = relationship(back_populates="residencies")
    household: Mapped[Household] = relationship(back_populates="residents")


class Vehicle(Base):
    """A registered vehicle."""

    __tablename__ = "vehicle"

    plate: Mapped[str] = mapped_column(String(12), primary_key=True)
    community_id: Mapped[str] = mapped_column(ForeignKey("community.id", ondelete="CASCADE"), index=True)
    owner_id: Mapped[str | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"), index=True)
    blacklisted: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str] = mapped_column(String(200), default="")


class Device(Base):
    """A front-end device: gate, camera, sensor, lock, wearable, checkpoint …"""

    __tablename__ = "device"
    __table_args__ = (Index("ix_device_community_type", "community_id", "type"),)

    id: Mapped[str] = mapped_column(String(48), primary_key=True)
    community_id: Mapped[str] = mapped_column(ForeignKey("community.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(100), default="")
    building_id: Mapped[str | None] = mapped_column(ForeignKey("building.id", ondelete="SET NULL"), index=True)
    household_id: Mapped[str | None] = mapped_column(ForeignKey("household.id", ondelete="SET NULL"), index=True)
    grid_id: Mapped[str | None] = mapped_column(ForeignKey("grid.id", ondelete="SET NULL"), index=True)
    floor: Mapped[int | None] = mapped_column(Integer)
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    install_date: Mapped[dt.date | None] = mapped_column(Date)
    silent_hours: Mapped[float | None] = mapped_column(Float)  # per-device override
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Guard(Base):
    """A member of the 万家卫士 team: police, auxiliary police, grid worker, volunteer, security."""

    __tablename__ = "guard"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    community_id: Mapped[str] = mapped_column(ForeignKey("community.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    phone: Mapped[str | None] = mapped_column(String(20))
    grid_id: Mapped[str | None] = mapped_column(ForeignKey("grid.id", ondelete="SET NULL"), index=True)
    device_id: Mapped[str | None] = mapped_column(ForeignKey("device.id", ondelete="SET NULL"))
    on_duty: Mapped[bool] = mapped_column(Boolean, default=True)


class PatrolRoute(Base):
    """A patrol route (电子巡更) with its schedule."""

    __tablename__ = "patrol_route"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    community_id: Mapped[str] = mapped_column(ForeignKey("community.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    interval_minutes: Mapped[int] = mapped_column(Integer, default=120)
    start_hour: Mapped[int] = mapped_column(Integer, default=20)
    end_hour: Mapped[int] = mapped_column(Integer, default=6)
    tolerance_minutes: Mapped[int] = mapped_column(Integer, default=15)

    checkpoints: Mapped[list[PatrolCheckpoint]] = relationship(
        cascade="all, delete-orphan", order_by="PatrolCheckpoint.seq", lazy="selectin"
    )


class PatrolCheckpoint(Base):
    """A checkpoint of a route, in order; ``offset_minutes`` from the round's start."""

    __tablename__ = "patrol_checkpoint"

    route_id: Mapped[str] = mapped_column(ForeignKey("patrol_route.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("device.id", ondelete="CASCADE"))
    offset_minutes: Mapped[int] = mapped_column(Integer, default=0)


class PathSegment(Base):
    """A walkable road or path of a community (the dispatch network), as a GeoJSON LineString."""

    __tablename__ = "path_segment"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    community_id: Mapped[str] = mapped_column(ForeignKey("community.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16), default="path")  # road / path / gate
    name: Mapped[str] = mapped_column(String(100), default="")
    geometry: Mapped[str] = mapped_column(Text)


class WatchlistEntry(Base):
    """A wanted identity, held only as a keyed hash of the ID number."""

    __tablename__ = "watchlist"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    note: Mapped[str] = mapped_column(String(200), default="")
    added_by: Mapped[str] = mapped_column(String(64), default="")
    added_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # the last day (Asia/Shanghai) the entry holds; None: until removed
    expires_on: Mapped[dt.date | None] = mapped_column(Date)
