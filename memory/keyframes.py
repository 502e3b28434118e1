"""Keyframes of the sand-table at any moment (issue #19): a compact, compressed snapshot of a
community's event-derived state (devices' last seen, battery and door; guards' last positions) at
every ``SANDTABLE_KEYFRAME_MINUTES`` boundary. ``memory/state.py`` builds them and reads them; a late
archived event deletes the keyframes at and after its time (``memory/archive.py``)."""

from __future__ import annotations

from sqlalchemy import BigInteger, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from store.sql import Base


class Keyframe(Base):
    """The state after every archived event with ``ts <= at`` (zlib-compressed columnar JSON)."""

    __tablename__ = "state_keyframe"

    community_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    at: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # a keyframe boundary, epoch ms (UTC)
    built: Mapped[int] = mapped_column(BigInteger)  # when it was built (wall clock, epoch ms)
    data: Mapped[bytes] = mapped_column(LargeBinary)
