"""Guards' duty: the shifts of a roster, and check-in / check-out on the tasks page with a handover note."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from store.sql import Base, UTCDateTime, utcnow

CHECK_KINDS = ("in", "out")


class DutyShift(Base):
    """A guard's shift (排班): on duty from start to end (UTC)."""

    __tablename__ = "duty_shift"
    __table_args__ = (
        Index("ix_duty_shift_community_end", "community_id", "end_at"),
        Index("ix_duty_shift_guard_start", "guard_id", "start_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    community_id: Mapped[str] = mapped_column(ForeignKey("community.id", ondelete="CASCADE"))
    guard_id: Mapped[str] = mapped_column(ForeignKey("guard.id", ondelete="CASCADE"))
    start_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    end_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    note: Mapped[str] = mapped_column(String(200), default="")
    source: Mapped[str] = mapped_column(String(16), default="import")  # import / demo
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class DutyCheck(Base):
    """A guard checking in (签到) or out (签退) on the tasks page; a check-out carries the handover note."""

    __tablename__ = "duty_check"
    __table_args__ = (
        Index("ix_duty_check_guard_at", "guard_id", "at"),
        Index("ix_duty_check_community_at", "community_id", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    community_id: Mapped[str] = mapped_column(ForeignKey("community.id", ondelete="CASCADE"))
    guard_id: Mapped[str] = mapped_column(ForeignKey("guard.id", ondelete="CASCADE"))
    grid_id: Mapped[str | None] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(8))  # in / out
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(64), default="")
    note: Mapped[str] = mapped_column(Text, default="")
