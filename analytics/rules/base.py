"""The shape of a rule: pure decisions, the events it needs, the timers it owns."""

from __future__ import annotations

from typing import ClassVar

from analytics.context import RuleContext
from core.settings import Settings
from ingest.schema import DeviceInfo, Event

HOUR_MS = 3_600_000


class Rule:
    """A rule reacts to events of the types it declares and to its own timers."""

    name: ClassVar[str] = ""
    events: ClassVar[frozenset[str]] = frozenset()
    timers: ClassVar[tuple[str, ...]] = ()

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def on_event(self, ctx: RuleContext, event: Event, device: DeviceInfo) -> None:
        """React to one event (only types in ``events`` arrive here)."""

    def on_timer(self, ctx: RuleContext, timer: str, key: str, due_ms: int) -> None:
        """React to one of this rule's timers falling due."""

    def before_batch(self, ctx: RuleContext, events: list[Event]) -> None:
        """Prefetch the state the batch will need (one round trip instead of one per event)."""

    def on_start(self, ctx: RuleContext) -> None:
        """Seed timers for subjects that have never sent anything (once per worker and community)."""

    def on_sweep(self, ctx: RuleContext) -> None:
        """Schedule upcoming timers from the registry (before every sweep; must be idempotent)."""


def location_of(device: DeviceInfo) -> dict[str, float]:
    """The alert location of a device."""
    return {"lat": device.lat, "lon": device.lon}
