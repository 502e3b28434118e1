"""Maintenance mode of a device and away mode of a person (hospital, travel): the SQL history and
its projection to Redis, where the worker looks without a query.

One table, ``mode_period``: a row per period (kind ``maintenance`` of a device, ``away`` of a
person), with who set it, when, why, until when, and when and by whom it was ended early. The
live periods are projected to the community's Redis hash ``modes`` (``store/keys.py``), field
``<kind>:<subject>`` → ``{"id", "from", "until"}`` (epoch ms), written at each change and rebuilt
whole from SQL when a worker starts on the community. Expiry needs no writer: a period holds at
a time ``from ≤ t < until`` (``holds``), compared with the event's or the timer's time.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.timefmt import utc_to_ms
from store.keys import Keys
from store.redis_server import RedisClient
from store.sql import Base, UTCDateTime, utcnow

MAINTENANCE = "maintenance"
AWAY = "away"
KINDS = (MAINTENANCE, AWAY)
# alerts an away elder does not get, and the timers (member: the person) that resume the watch at
# the away period's end: each elder rule owns one (analytics/rules/elder_*.py)
AWAY_ALERTS = frozenset({"elder.inactive", "elder.routine", "elder.no_water"})
AWAY_RESUME_TIMERS = ("elder-resume", "routine-resume", "water-resume")
# alerts a device in maintenance still raises: a wanted person at a lock or gate is not a device fault
NEVER_SILENCED = frozenset({"watchlist.match"})


class ModePeriod(Base):
    """One maintenance period of a device, or one away period of a person."""

    __tablename__ = "mode_period"
    __table_args__ = (Index("ix_mode_period_live", "community_id", "kind", "ended_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    community_id: Mapped[str] = mapped_column(ForeignKey("community.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(12))
    subject: Mapped[str] = mapped_column(String(48), index=True)  # a device id or a person id
    starts_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    until: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    reason: Mapped[str] = mapped_column(String(200), default="")
    set_by: Mapped[str] = mapped_column(String(64), default="")
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    ended_by: Mapped[str] = mapped_column(String(64), default="")
    suppressed: Mapped[int] = mapped_column(Integer, default=0)  # alerts not raised because of it

    def end_ms(self) -> int:
        """When the period ends (or ended): its until, or the earlier moment it was ended."""
        return utc_to_ms(self.ended_at if self.ended_at is not None else self.until)

    def live_doc(self) -> dict[str, int]:
        """What the worker needs of it."""
        return {"id": self.id, "from": utc_to_ms(self.starts_at), "until": self.end_ms()}


def mode_field(kind: str, subject: str) -> str:
    """The hash field of a subject's period."""
    return f"{kind}:{subject}"


def holds(raw: str | bytes | None, at_ms: int) -> dict[str, Any] | None:
    """The period of a hash value if it holds at at_ms (``from ≤ at < until``), else None."""
    if not raw:
        return None
    doc: dict[str, Any] = json.loads(raw)
    return doc if int(doc["from"]) <= at_ms < int(doc["until"]) else None


def live_periods(session: Session, community: str, kind: str, now: dt.datetime) -> list[ModePeriod]:
    """The periods of a kind not ended and not expired at now, soonest end first."""
    return list(
        session.scalars(
            select(ModePeriod)
            .where(
                ModePeriod.community_id == community,
                ModePeriod.kind == kind,
                ModePeriod.ended_at.is_(None),
                ModePeriod.until > now,
            )
            .order_by(ModePeriod.until, ModePeriod.id)
        )
    )


def count_suppressed(session: Session, period_id: int) -> None:
    """Add one to the alerts a period kept from being raised (the worker, after its batch)."""
    session.execute(update(ModePeriod).where(ModePeriod.id == period_id).values(suppressed=ModePeriod.suppressed + 1))


def project_period(redis: RedisClient, keys: Keys, period: ModePeriod) -> None:
    """Write one period's field (a period ended early keeps its field, with its end: nothing is stale)."""
    redis.hset(keys.modes(period.community_id), mode_field(period.kind, period.subject), json.dumps(period.live_doc()))


def project_all_modes(redis: RedisClient, keys: Keys, session: Session, community: str, now: dt.datetime) -> None:
    """Rebuild the community's hash from SQL (a worker starting on it): the live periods only."""
    periods = [p for kind in KINDS for p in live_periods(session, community, kind, now)]
    mapping = {mode_field(p.kind, p.subject): json.dumps(p.live_doc()) for p in periods}
    pipe = redis.pipeline(transaction=False)
    pipe.delete(keys.modes(community))
    if mapping:
        pipe.hset(keys.modes(community), mapping=mapping)
    pipe.execute()
