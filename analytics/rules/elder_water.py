"""elder.no_water — the water companies' rule for an elder living alone: less than 0.01 m³ (10 L)
of water through the flat's meter in 12 h. For communities (or flats) with smart water meters and
no bedroom door sensor: an elder who has a door sensor is watched by ``elder.inactive``, which
counts the water among its signs of life, and gets no second alert for the same silence.

State per water meter (the rule's Redis hash, field = meter id): ``{"from": ms, "draws": [[ts,
litres], …]}``, the start of the watch and the readings with water within the last window. The
timer (member: the meter) waits at the moment the water of the trailing window falls below the
litres: when the oldest draws leave the window, or ``from`` + the window when there is too little
to begin with. After an alert (or an away period) the watch starts again at the next reading with
water (or the period's end). The decisions are pure functions (``add_draw``, ``dry_at``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from analytics.context import RuleContext
from analytics.rules.base import HOUR_MS, Rule, location_of
from core.timefmt import iso_utc
from ingest.schema import DeviceInfo, Event
from registry.modes import AWAY, AWAY_RESUME_TIMERS

TIMER = "water"
RESUME = AWAY_RESUME_TIMERS[2]  # member: a person whose away period ends (registry/modes.py)


@dataclass(frozen=True)
class WaterWatch:
    """One meter's watch: since when, and the draws (ts, litres) within the window."""

    from_ms: int
    draws: tuple[tuple[int, float], ...]

    def to_json(self) -> dict[str, Any]:
        """The JSON value kept in the rule's state."""
        return {"from": self.from_ms, "draws": [list(d) for d in self.draws]}

    @classmethod
    def from_json(cls, value: Any) -> WaterWatch | None:
        """A stored watch, or None."""
        if not isinstance(value, dict) or "from" not in value:
            return None
        return cls(int(value["from"]), tuple((int(t), float(v)) for t, v in value.get("draws", [])))


def add_draw(watch: WaterWatch | None, ts: int, litres: float, window_ms: int) -> WaterWatch:
    """The watch after a reading with water (a new watch starts at it); draws older than the
    window before the newest one are forgotten."""
    if watch is None:
        return WaterWatch(ts, ((ts, litres),))
    draws = sorted({*watch.draws, (ts, litres)})
    newest = draws[-1][0]
    return WaterWatch(watch.from_ms, tuple(d for d in draws if d[0] > newest - window_ms))


def dry_at(watch: WaterWatch, litres: float, window_ms: int) -> int:
    """When the water of the trailing window (t − window, t] first falls below ``litres``, if no
    more water flows: the oldest draws leave the window one by one."""
    total = sum(v for _, v in watch.draws)
    if total < litres:
        return watch.from_ms + window_ms
    for ts, value in watch.draws:
        total -= value
        if total < litres:
            return max(ts + window_ms, watch.from_ms + window_ms)
    return watch.from_ms + window_ms  # unreachable: the loop empties the window


class ElderNoWater(Rule):
    """Less than 10 L of water in 12 h at the flat of an elder living alone (water meter only)."""

    name = "elder.no_water"
    events = frozenset({"meter.water"})
    timers = (TIMER, RESUME)

    @property
    def window_ms(self) -> int:
        """The window, in ms."""
        return int(self.settings.elder_no_water_hours * HOUR_MS)

    def watched(self, ctx: RuleContext, meter: str) -> str | None:
        """The elder whose water this meter watches (None when the elder has a door sensor)."""
        elder = ctx.facts.elder_water_meters.get(meter)
        if elder is None or elder[0] in ctx.facts.elder_sensor_of:
            return None
        return elder[0]

    def before_batch(self, ctx: RuleContext, events: list[Event]) -> None:
        """Read the watches of the batch's meters at once."""
        ctx.prefetch(self.name, {e.device for e in events if e.type == "meter.water" and self.watched(ctx, e.device)})

    def on_event(self, ctx: RuleContext, event: Event, device: DeviceInfo) -> None:
        person = self.watched(ctx, device.id)
        litres = event.data.get("litres")
        if person is None or not isinstance(litres, (int, float)):
            return
        stored = WaterWatch.from_json(ctx.state_get(self.name, device.id))
        if stored is None:
            # the first reading starts the watch, with or without water
            stored = WaterWatch(event.ts, ())
        if litres <= 0:
            if not ctx.state_get(self.name, device.id):
                ctx.state_set(self.name, device.id, stored.to_json())
                ctx.schedule(TIMER, device.id, dry_at(stored, self.settings.elder_no_water_litres, self.window_ms))
            return
        if event.ts <= stored.from_ms and stored.draws:
            return  # older than the watch: a late reading changes nothing
        watch = add_draw(stored, event.ts, float(litres), self.window_ms)
        ctx.state_set(self.name, device.id, watch.to_json())
        ctx.schedule(TIMER, device.id, dry_at(watch, self.settings.elder_no_water_litres, self.window_ms))
        ctx.clear(
            self.name,
            {"person": person},
            note=lambda: f"{litres:g} L of water at {iso_utc(event.ts)}",
            fact_ms=event.ts,
            since_field="watched_since",
        )

    def on_timer(self, ctx: RuleContext, timer: str, key: str, due_ms: int) -> None:
        if timer == RESUME:
            self._resume(ctx, key, due_ms)
            return
        person = self.watched(ctx, key)
        device = ctx.facts.devices.get(key)
        watch = WaterWatch.from_json(ctx.state_get(self.name, key))
        if person is None or device is None or watch is None:
            return
        window = self.window_ms
        if dry_at(watch, self.settings.elder_no_water_litres, window) > due_ms:
            return  # water since: the timer was moved on
        ctx.alert(
            self.name,
            severity="high",
            subject={"person": person, "household": device.household, "building": device.building, "device": key},
            identity={"person": person},
            location=location_of(device),
            grid=device.grid,
            evidence={
                "watched_since": iso_utc(due_ms - window),
                "litres_in_window": round(sum(v for t, v in watch.draws if t > due_ms - window), 1),
                "threshold_litres": self.settings.elder_no_water_litres,
                "window_hours": self.settings.elder_no_water_hours,
            },
        )
        # the next water starts a new watch (one alert per dry spell, cleared by that water)
        ctx.state_set(self.name, key, WaterWatch(due_ms, ()).to_json())

    def _resume(self, ctx: RuleContext, person: str, end_ms: int) -> None:
        """An elder's away period ended: the watch starts again at its end."""
        meter = ctx.facts.elder_water_meter_of.get(person)
        if meter is None or self.watched(ctx, meter) is None or ctx.mode(AWAY, person) is not None:
            return
        ctx.state_set(self.name, meter, WaterWatch(end_ms, ()).to_json())
        ctx.schedule(TIMER, meter, end_ms + self.window_ms)
