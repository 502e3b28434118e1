"""Arrival by geofence: a dispatched guard whose position enters the task's radius is on scene."""

from __future__ import annotations

from analytics.context import RuleContext
from analytics.rules.base import Rule
from ingest.schema import DeviceInfo, Event


class GeofenceArrival(Rule):
    """Records arrival for the closed loop (no alert of its own)."""

    name = "arrival"
    events = frozenset({"guard.position"})

    def on_event(self, ctx: RuleContext, event: Event, device: DeviceInfo) -> None:
        guard = ctx.facts.wearables.get(device.id)
        if guard is None or ctx.loop is None or not ctx.active_tasks().get(guard):
            return
        ctx.loop.arrived_if_inside(ctx.community, guard, float(event.data["lat"]), float(event.data["lon"]))
