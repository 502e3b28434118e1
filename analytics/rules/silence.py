"""sensor.silent and device.offline — a device that sends nothing at all for too long.

A door sensor silent for longer than its silence threshold (2 h by default; the simulator
heartbeats every 30 min) means the elder is unmonitored: ``sensor.silent``, not
``elder.inactive``. Any other device that heartbeats and goes quiet for the offline threshold
(1 h) is ``device.offline``. The next event from the device clears the alert."""

from __future__ import annotations

from analytics.context import RuleContext
from analytics.rules.base import HOUR_MS, Rule, location_of
from core.timefmt import iso_utc
from ingest.schema import DeviceInfo, Event

ALL_EVENTS = frozenset(
    {
        "door.contact",
        "device.heartbeat",
        "lock.open",
        "gate.face",
        "gate.vehicle",
        "guard.position",
        "patrol.checkin",
        "smoke.alarm",
        "camera.throw",
        "camera.fall",
    }
)


class SensorSilent(Rule):
    """A door sensor that has gone quiet."""

    name = "sensor.silent"
    events = ALL_EVENTS
    timers = ("silent",)

    def hours(self, ctx: RuleContext, device: str) -> float:
        """The device's silence threshold."""
        return ctx.facts.silent_hours.get(device) or self.settings.sensor_silent_hours

    def on_event(self, ctx: RuleContext, event: Event, device: DeviceInfo) -> None:
        if device.type != "door_sensor":
            return
        due = event.ts + int(self.hours(ctx, device.id) * HOUR_MS)
        ctx.schedule("silent", device.id, due, only_later=True)
        ctx.clear(
            self.name,
            {"device": device.id},
            note=lambda: f"heard from at {iso_utc(event.ts)}",
            fact_ms=event.ts,
            since_field="silent_since",
        )

    def on_timer(self, ctx: RuleContext, timer: str, key: str, due_ms: int) -> None:
        device = ctx.facts.devices.get(key)
        if device is None:
            return
        elder = ctx.facts.elder_sensors.get(key)
        ctx.alert(
            self.name,
            severity="medium",
            subject={
                "device": device.id,
                "household": device.household,
                "building": device.building,
                "person": elder[0] if elder else None,
            },
            identity={"device": device.id},
            location=location_of(device),
            grid=device.grid,
            evidence={
                "silent_since": iso_utc(due_ms - int(self.hours(ctx, key) * HOUR_MS)),
                "threshold_hours": self.hours(ctx, key),
                "elder_unmonitored": elder is not None,
            },
        )

    def on_start(self, ctx: RuleContext) -> None:
        """An elder's sensor that has never reported is unmonitored: start its silence clock."""
        now = ctx.now()
        for sensor in ctx.facts.elder_sensors:
            if (
                ctx.scheduled("silent", sensor) is None
                and ctx.redis.zscore(ctx.keys.device_seen(ctx.community), sensor) is None
            ):
                ctx.schedule("silent", sensor, now + int(self.hours(ctx, sensor) * HOUR_MS))


class DeviceOffline(Rule):
    """A heartbeating device (other than a door sensor) that has gone quiet."""

    name = "device.offline"
    events = ALL_EVENTS
    timers = ("offline",)

    def on_event(self, ctx: RuleContext, event: Event, device: DeviceInfo) -> None:
        if device.type == "door_sensor":
            return
        due = event.ts + int(self.settings.device_offline_hours * HOUR_MS)
        # only devices that heartbeat are watched: other events only postpone an existing timer
        ctx.schedule("offline", device.id, due, only_later=True, only_existing=event.type != "device.heartbeat")
        ctx.clear(
            self.name,
            {"device": device.id},
            note=lambda: f"heard from at {iso_utc(event.ts)}",
            fact_ms=event.ts,
            since_field="offline_since",
        )

    def on_timer(self, ctx: RuleContext, timer: str, key: str, due_ms: int) -> None:
        device = ctx.facts.devices.get(key)
        if device is None:
            return
        ctx.alert(
            self.name,
            severity="low",
            subject={"device": device.id, "building": device.building, "household": device.household},
            identity={"device": device.id},
            location=location_of(device),
            grid=device.grid,
            evidence={
                "device_type": device.type,
                "offline_since": iso_utc(due_ms - int(self.settings.device_offline_hours * HOUR_MS)),
            },
        )
