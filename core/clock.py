"""One clock abstraction: wall time in production, event time in replay, a hand-moved clock in tests."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """Tells the time in epoch milliseconds (UTC)."""

    def now_ms(self) -> int:
        """Now, in epoch milliseconds."""
        ...


class WallClock:
    """The machine's clock."""

    def now_ms(self) -> int:
        """Now, in epoch milliseconds."""
        return time.time_ns() // 1_000_000


class ManualClock:
    """A clock moved by hand (tests) or by the events' own time (replay)."""

    def __init__(self, start_ms: int = 0) -> None:
        self._now = start_ms

    def now_ms(self) -> int:
        """The clock's current time."""
        return self._now

    def set(self, ms: int) -> None:
        """Move the clock to ms (never backwards)."""
        self._now = max(self._now, ms)

    def advance(self, ms: int) -> None:
        """Move the clock forward by ms."""
        self._now += ms
