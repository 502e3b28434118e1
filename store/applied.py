"""Events and timers whose SQL side effects were written (exactly-once effects of the worker)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from store.sql import Base, UTCDateTime, utcnow


class AppliedToken(Base):
    """An event (stream entry id) or timer whose SQL side effects were written: a batch redelivered
    after a crash, or a timer fired again, writes its gate counts, captures and patrol rounds once."""

    __tablename__ = "applied_token"

    community_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    token: Mapped[str] = mapped_column(String(160), primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
