"""Case files (案件, issue #19): an investigation saved with its query, pinned entries and notes.

A pin keeps a copy of what it pins (an archived event's item, or an alert in its §3 form) so that
the case outlives the archive's retention; its evidence image id (if any) keeps that image from the
purge while the case is open, or closed within its own retention (memory/retention.py).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from store.sql import Base, UTCDateTime, utcnow

CASE_STATUSES = ("open", "closed")
PIN_KINDS = ("event", "alert")


class Case(Base):
    """One case file of a community (a grid worker's case belongs to their grid)."""

    __tablename__ = "case_file"
    __table_args__ = (Index("ix_case_file_community", "community_id", "status"),)

    id: Mapped[str] = mapped_column(String(24), primary_key=True)
    community_id: Mapped[str] = mapped_column(String(40))
    grid_id: Mapped[str | None] = mapped_column(String(40))  # the creator's grid, for a grid worker
    name: Mapped[str] = mapped_column(String(120))
    status: Mapped[str] = mapped_column(String(8), default="open")
    created_by: Mapped[str] = mapped_column(String(64))
    created_by_name: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), index=True)
    query: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # the §9 search body


class CasePin(Base):
    """A copy of an archived event or an alert, pinned to a case."""

    __tablename__ = "case_pin"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("case_file.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(8))  # event / alert
    ref: Mapped[str] = mapped_column(String(80))  # the event's id (or entry) / the alert's id
    ts: Mapped[int] = mapped_column(BigInteger)  # when it happened, epoch ms (UTC)
    item: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    evidence: Mapped[str | None] = mapped_column(String(32), index=True)  # an evidence image id
    pinned_by: Mapped[str] = mapped_column(String(64))
    pinned_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class CaseNote(Base):
    """A note written on a case."""

    __tablename__ = "case_note"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("case_file.id", ondelete="CASCADE"), index=True)
    text: Mapped[str] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(64))
    author_name: Mapped[str] = mapped_column(String(64), default="")
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AuditPurgeFloor(Base):
    """While the purge deletes old audit rows, the time below which the audit log's delete trigger lets
    rows go (one row, inside the purge's transaction only; migration 0012)."""

    __tablename__ = "audit_purge_floor"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    before: Mapped[dt.datetime] = mapped_column(UTCDateTime())


__all__ = ["CASE_STATUSES", "PIN_KINDS", "AuditPurgeFloor", "Case", "CaseNote", "CasePin"]
