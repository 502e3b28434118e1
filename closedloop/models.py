"""The closed loop's records: tasks handed to guards, grid workers or property staff; residents'
reports; police notices."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.i18n import t
from store.sql import Base, UTCDateTime, utcnow

TASK_STATUSES = ("offered", "accepted", "on_scene", "closed", "declined", "expired", "cancelled")
ACTIVE_TASK_STATUSES = ("offered", "accepted", "on_scene")
TASK_KINDS = ("dispatch", "property", "register", "report")
OUTCOMES = ("handled", "no_problem_found", "referred", "false_alarm", "registered", "unreachable")


class Task(Base):
    """A piece of work with an owner: go there, handle it, report back."""

    __tablename__ = "task"
    __table_args__ = (
        Index("ix_task_assignee_status", "assignee", "status"),
        Index("ix_task_community_status", "community_id", "status"),
    )

    id: Mapped[str] = mapped_column(String(24), primary_key=True)
    community_id: Mapped[str] = mapped_column(String(32))
    alert_id: Mapped[str | None] = mapped_column(String(32), index=True)
    report_id: Mapped[str | None] = mapped_column(String(24), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    assignee: Mapped[str] = mapped_column(String(64))  # a guard id, or "property" for the property office
    grid_id: Mapped[str | None] = mapped_column(String(40), index=True)
    status: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(200), default="")
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    geofence_m: Mapped[float] = mapped_column(Float, default=30.0)
    eta_minutes: Mapped[float | None] = mapped_column(Float)
    prefill: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    outcome: Mapped[str] = mapped_column(String(24), default="")
    notes: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    accepted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    arrived_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012  (optimistic locking: concurrent edits conflict)


class ResidentReport(Base):
    """A resident's call from their phone: to the property, or to the police."""

    __tablename__ = "resident_report"

    id: Mapped[str] = mapped_column(String(24), primary_key=True)
    community_id: Mapped[str] = mapped_column(String(32), index=True)
    household_id: Mapped[str] = mapped_column(String(48))
    grid_id: Mapped[str | None] = mapped_column(String(40))
    to: Mapped[str] = mapped_column(String(16))  # property / police
    text: Mapped[str] = mapped_column(Text)
    contact: Mapped[str] = mapped_column(String(20), default="")
    status: Mapped[str] = mapped_column(String(16), default="new")  # new / handled
    alert_id: Mapped[str | None] = mapped_column(String(32), index=True)  # a call to the police: its alert
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Notice(Base):
    """A police notice (e.g. an anti-fraud reminder) to a grid or a whole community."""

    __tablename__ = "notice"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    community_id: Mapped[str] = mapped_column(String(32), index=True)
    grid_id: Mapped[str | None] = mapped_column(String(40))
    title: Mapped[str] = mapped_column(String(100))
    body: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


def outcome_labels(lang: str) -> dict[str, str]:
    """outcome code → its name, for the notes that begin with one (a closed task's feedback)."""
    return {outcome: t(f"outcome.{outcome}", lang) for outcome in OUTCOMES}
