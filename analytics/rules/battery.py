"""device.battery_low — a device whose heartbeat reports its battery at or below
``SANDTABLE_BATTERY_LOW_PERCENT`` (default 20 %). One open alert per device (later low heartbeats
count as repeats); a heartbeat well above the threshold (a new battery) resolves it."""

from __future__ import annotations

from analytics.context import RuleContext
from analytics.rules.base import Rule, location_of
from core.timefmt import iso_utc
from ingest.schema import DeviceInfo, Event

RECHARGED_MARGIN = 10.0  # points above the threshold before a low alert resolves (no flapping at 20/21 %)


def battery_state(battery: float, threshold: float) -> str:
    """low / ok / unsure (between the threshold and the recharged margin: leave the alert as it is)."""
    if battery <= threshold:
        return "low"
    if battery > threshold + RECHARGED_MARGIN:
        return "ok"
    return "unsure"


class BatteryLow(Rule):
    """A heartbeat with a low battery."""

    name = "device.battery_low"
    events = frozenset({"device.heartbeat"})

    def on_event(self, ctx: RuleContext, event: Event, device: DeviceInfo) -> None:
        battery = event.data.get("battery")
        if not isinstance(battery, int | float) or isinstance(battery, bool):
            return
        threshold = self.settings.battery_low_percent
        state = battery_state(float(battery), threshold)
        if state == "low":
            ctx.alert(
                self.name,
                severity="low",
                subject={"device": device.id, "building": device.building, "household": device.household},
                identity={"device": device.id},
                location=location_of(device),
                grid=device.grid,
                evidence={
                    "device_type": device.type,
                    "battery": battery,
                    "threshold_percent": threshold,
                    "seen_at": iso_utc(event.ts),
                },
            )
        elif state == "ok":
            ctx.clear(self.name, {"device": device.id}, note=lambda: f"battery {battery:g}% at {iso_utc(event.ts)}")
