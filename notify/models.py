"""The SQL tables of notifications: the targets, the outbox of deliveries, the in-app notices."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from store.sql import Base, UTCDateTime, utcnow


class NotifyTarget(Base):
    """Where an alert's events are sent outside the app: a webhook or an SMS gateway."""

    __tablename__ = "notify_target"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    community_id: Mapped[str] = mapped_column(String(32), index=True)
    channel: Mapped[str] = mapped_column(String(8))  # webhook / sms
    url: Mapped[str] = mapped_column(String(500))
    secret: Mapped[str] = mapped_column(String(128), default="")
    name: Mapped[str] = mapped_column(String(64), default="")  # how people call it: 110平台
    recipients: Mapped[list[str]] = mapped_column(JSON, default=list)  # sms: the phones the gateway texts
    types: Mapped[list[str]] = mapped_column(JSON, default=list)  # empty: every alert type
    events: Mapped[list[str]] = mapped_column(JSON, default=list)  # empty: every event
    min_severity: Mapped[str] = mapped_column(String(8), default="low")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class NotifyDelivery(Base):
    """One event of one alert for one target: the durable outbox, delivered at least once, in
    order per (target, alert)."""

    __tablename__ = "notify_delivery"
    __table_args__ = (
        Index("ix_notify_delivery_due", "state", "next_at"),
        Index("ix_notify_delivery_queue", "target_id", "alert_id", "state", "seq"),
    )

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(32), unique=True)  # the delivery id receivers deduplicate by
    target_id: Mapped[str] = mapped_column(ForeignKey("notify_target.id", ondelete="CASCADE"))
    alert_id: Mapped[str] = mapped_column(String(32), index=True)
    community_id: Mapped[str] = mapped_column(String(32))
    event: Mapped[str] = mapped_column(String(24))
    body: Mapped[str] = mapped_column(Text)  # the exact bytes sent (and signed), fixed when written
    state: Mapped[str] = mapped_column(String(10), default="pending")  # pending / delivered / dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    next_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    leased_by: Mapped[str] = mapped_column(String(40), default="")
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str] = mapped_column(String(300), default="")


class NotifyNotice(Base):
    """A notification shown in the app to everyone of an audience (``police``, ``property``,
    ``grid:G``, ``supervisor``) of a community."""

    __tablename__ = "notify_notice"
    __table_args__ = (Index("ix_notify_notice_community_id", "community_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    community_id: Mapped[str] = mapped_column(String(32))
    audience: Mapped[str] = mapped_column(String(48))
    alert_id: Mapped[str] = mapped_column(String(32))
    event: Mapped[str] = mapped_column(String(24))
    alert_type: Mapped[str] = mapped_column(String(24))
    severity: Mapped[str] = mapped_column(String(8))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
