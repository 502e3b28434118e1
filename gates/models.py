"""The outer ring: visitor passes, gate traffic, unknown-vehicle captures, patrol rounds."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Date, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from store.sql import Base, UTCDateTime, utcnow

# revoked: approved (or pending), then withdrawn by property or police before it ended (gates/service.py)
PASS_STATUSES = ("pending", "approved", "rejected", "cancelled", "revoked")


class VisitorPass(Base):
    """A visitor invited by a resident (or applying), approved or rejected by property or police.

    The visitor's ID number is kept only as a keyed hash (to match the face gate's resolved
    identity) and in masked form (to show); the phone is masked when shown."""

    __tablename__ = "visitor_pass"
    __table_args__ = (Index("ix_visitor_pass_community_status", "community_id", "status"),)

    id: Mapped[str] = mapped_column(String(24), primary_key=True)
    community_id: Mapped[str] = mapped_column(String(32))
    household_id: Mapped[str] = mapped_column(String(48), index=True)
    visitor_name: Mapped[str] = mapped_column(String(64))
    id_hash: Mapped[str] = mapped_column(String(64), index=True)
    id_masked: Mapped[str] = mapped_column(String(18))
    phone: Mapped[str] = mapped_column(String(20))
    plate: Mapped[str | None] = mapped_column(String(12), index=True)
    valid_from: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    valid_to: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    reason: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(12), default="pending")
    requested_by: Mapped[str] = mapped_column(String(64), default="resident")
    decided_by: Mapped[str] = mapped_column(String(64), default="")
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    decision_note: Mapped[str] = mapped_column(Text, default="")
    entered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    left_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class GateHourly(Base):
    """Entries and exits per hour (local time), per kind and category, for charts and reports."""

    __tablename__ = "gate_hourly"
    __table_args__ = (UniqueConstraint("community_id", "day", "hour", "kind", "direction", "category"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    community_id: Mapped[str] = mapped_column(String(32))
    day: Mapped[dt.date] = mapped_column(Date, index=True)
    hour: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(8))  # face / vehicle
    direction: Mapped[str] = mapped_column(String(4))  # in / out
    category: Mapped[str] = mapped_column(String(12))  # resident / visitor / unknown / blacklisted
    count: Mapped[int] = mapped_column(Integer, default=0)


class GateCapture(Base):
    """A vehicle the barrier did not know (or a blacklisted one): the capture record."""

    __tablename__ = "gate_capture"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    community_id: Mapped[str] = mapped_column(String(32), index=True)
    device_id: Mapped[str] = mapped_column(String(48))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    plate: Mapped[str] = mapped_column(String(12), index=True)
    direction: Mapped[str] = mapped_column(String(4))
    category: Mapped[str] = mapped_column(String(12))
    image: Mapped[str] = mapped_column(String(200), default="")


class PatrolRound(Base):
    """One scheduled round of a patrol route and how it went."""

    __tablename__ = "patrol_round"
    __table_args__ = (UniqueConstraint("route_id", "round_start"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    community_id: Mapped[str] = mapped_column(String(32), index=True)
    route_id: Mapped[str] = mapped_column(String(40))
    round_start: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    expected: Mapped[int] = mapped_column(Integer)
    on_time: Mapped[int] = mapped_column(Integer, default=0)
    late: Mapped[list[Any]] = mapped_column(JSON, default=list)
    missed: Mapped[list[Any]] = mapped_column(JSON, default=list)
    guard_id: Mapped[str | None] = mapped_column(String(40))
