"""elder.inactive — an elder living alone with a bedroom door sensor who gives no sign of life for
longer than the threshold (12 h by default, per-person override): no door.contact, and none of the
other signs of ``analytics/rules/life.py`` (water, power above the fridge, the flat's lock, a face
gate). One alert per episode; the next sign of life clears it. The timer (member: the door sensor)
lives in Redis (AOF), so it survives restarts."""

from __future__ import annotations

from analytics.context import RuleContext
from analytics.rules.base import HOUR_MS, Rule, location_of
from analytics.rules.life import LIFE_EVENTS, sign_of_life
from core.timefmt import iso_utc
from ingest.schema import DeviceInfo, Event
from registry.modes import AWAY, AWAY_RESUME_TIMERS

TIMER = "elder"
RESUME = AWAY_RESUME_TIMERS[0]  # member: a person whose away period ends (registry/modes.py)


def deadline(last_sign_ms: int, threshold_hours: float) -> int:
    """When inactivity since last_sign_ms becomes an alert."""
    return last_sign_ms + int(threshold_hours * HOUR_MS)


class ElderInactive(Rule):
    """The article's 12-hour rule, on every sign of life."""

    name = "elder.inactive"
    events = LIFE_EVENTS
    timers = (TIMER, RESUME)

    def threshold(self, override: float | None) -> float:
        """The person's threshold in hours."""
        return override or self.settings.elder_inactive_hours

    def on_event(self, ctx: RuleContext, event: Event, device: DeviceInfo) -> None:
        sign = sign_of_life(ctx.facts, event, device, self.settings)
        sensor = None if sign is None else ctx.facts.elder_sensor_of.get(sign.person)
        if sign is None or sensor is None:
            return  # not an elder's sign of life, or an elder without a door sensor (elder.no_water)
        override = ctx.facts.elder_sensors[sensor][1]
        # GT: an out-of-order (older) event never moves the deadline back
        ctx.schedule(TIMER, sensor, deadline(event.ts, self.threshold(override)), only_later=True)
        ctx.clear(
            self.name,
            {"person": sign.person},
            note=lambda: f"{sign.kind} at {iso_utc(event.ts)}",
            fact_ms=event.ts,
            since_field="last_sign_at",
        )

    def on_timer(self, ctx: RuleContext, timer: str, key: str, due_ms: int) -> None:
        if timer == RESUME:
            self._resume(ctx, key, due_ms)
            return
        elder = ctx.facts.elder_sensors.get(key)
        device = ctx.facts.devices.get(key)
        if elder is None or device is None:
            return
        person, override = elder
        hours = self.threshold(override)
        ctx.alert(
            self.name,
            severity="high",
            subject={"person": person, "household": device.household, "building": device.building, "device": device.id},
            identity={"person": person},
            location=location_of(device),
            grid=device.grid,
            evidence={"last_sign_at": iso_utc(due_ms - int(hours * HOUR_MS)), "threshold_hours": hours},
        )

    def _resume(self, ctx: RuleContext, person: str, end_ms: int) -> None:
        """An elder's away period ended: the silence is counted from its end (or from a later sign of life)."""
        sensor = ctx.facts.elder_sensor_of.get(person)
        if sensor is None or ctx.mode(AWAY, person) is not None:
            return  # no door sensor to watch, or still away (the period was extended)
        override = ctx.facts.elder_sensors[sensor][1]
        ctx.schedule(TIMER, sensor, deadline(end_ms, self.threshold(override)), only_later=True)
