"""elder.routine — early warning for an elder living alone: no sign of life (analytics/rules/life.py:
the bedroom door, water, power above the fridge, the flat's lock) for longer than this elder's own
routine allows at this time of day, hours before the fixed ``elder.inactive`` threshold.

Each elder (with a bedroom door sensor, whose id keys the profile and the timer) has a profile
learned from their own history of signs of life: for every local hour (Asia/Shanghai) the recent
gaps from a sign in that hour to the next one. The allowed gap after a sign is a high quantile of
the gaps that started around that hour, times a margin, plus a slack, kept between a floor and the
elder's fixed threshold. Evenings learn the long night gaps, so a night's sleep is normal. The
profile lives in the rule's Redis state and is updated on every sign; a timer per sensor waits at
"last sign + allowed gap" ("door use" below reads "sign of life").

The elder's passages at the community's face gates (``gate.face`` resolved to the person) say
when they are out: while out, nothing is overdue; the silence of an outing is not learned as a
gap of the routine (so outings do not widen the allowances); back in, the allowance runs from the
return. A passage the gate did not recognise simply leaves the rule as if it had no gates. See
docs/rules.md.

The decisions are pure functions (``learn``, ``allowed_gap_ms``, ``routine_deadline``,
``overdue_gap_ms``) so that tests and the P8 benchmark run exactly what production runs.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from analytics.context import RuleContext
from analytics.rules.base import HOUR_MS, Rule, location_of
from analytics.rules.life import LIFE_EVENTS, sign_of_life
from core.settings import Settings
from core.timefmt import SHANGHAI, iso_utc
from ingest.schema import DeviceInfo, Event
from registry.modes import AWAY, AWAY_RESUME_TIMERS

TIMER = "routine"
RESUME = AWAY_RESUME_TIMERS[1]  # member: a person whose away period ends (registry/modes.py)
BINS = 24
MINUTE_MS = 60_000
DAY_MS = 24 * HOUR_MS
WEEK_MS = 7 * DAY_MS
WEEKS = 4  # how far back the weekly habits are looked for
METER_SIGNS = frozenset({"water", "power"})
GAP_CAP_MIN = 48 * 60  # longer silences are stored as 48 h: beyond any threshold, and bounded


@dataclass(frozen=True)
class RoutineParams:
    """The rule's tunables (``routine_*`` in Settings; see docs/rules.md)."""

    min_history_days: float
    quantile: float
    margin: float
    slack_minutes: float
    floor_hours: float
    window: int
    pool_hours: int
    min_samples: int
    merge_minutes: float
    long_hours: float = 3.0
    weekly_min: int = 2

    @classmethod
    def from_settings(cls, settings: Settings) -> RoutineParams:
        """The parameters configured in settings."""
        return cls(
            min_history_days=settings.routine_min_history_days,
            quantile=settings.routine_quantile,
            margin=settings.routine_margin,
            slack_minutes=settings.routine_slack_minutes,
            floor_hours=settings.routine_floor_hours,
            window=settings.routine_window,
            pool_hours=settings.routine_pool_hours,
            min_samples=settings.routine_min_samples,
            merge_minutes=settings.routine_merge_minutes,
            long_hours=settings.routine_long_hours,
            weekly_min=settings.routine_weekly_min,
        )


@dataclass(frozen=True)
class RoutineProfile:
    """One elder's learned rhythm: the recent gaps (minutes) that started in each local hour;
    and the elder's last passages at a face gate since the last door use (0 when none)."""

    first_ms: int
    last_ms: int
    gaps: tuple[tuple[int, ...], ...]
    out_ms: int = 0  # seen leaving through a face gate after the last door use
    in_ms: int = 0  # seen coming back after that
    # the long silences (outings included) of the last WEEKS weeks: (start ms, minutes), oldest first
    long: tuple[tuple[int, int], ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The JSON value kept in the rule's state."""
        return {
            "v": 1,
            "first": self.first_ms,
            "last": self.last_ms,
            "gaps": [list(g) for g in self.gaps],
            "out": self.out_ms,
            "in": self.in_ms,
            "long": [list(x) for x in self.long],
        }

    @property
    def away(self) -> bool:
        """Seen leaving after the last door use and not seen coming back."""
        return self.out_ms > self.last_ms and self.in_ms < self.out_ms

    @property
    def anchor_ms(self) -> int:
        """Where the allowed silence runs from: the last door use, or a later return through a gate."""
        return max(self.last_ms, self.in_ms)

    @property
    def went_out(self) -> bool:
        """Seen at a gate since the last door use: the silence was (at least partly) an outing."""
        return max(self.out_ms, self.in_ms) > self.last_ms

    @classmethod
    def from_json(cls, value: Any) -> RoutineProfile | None:
        """A stored profile, or None when there is none (or it is of an unknown shape)."""
        if not isinstance(value, dict) or value.get("v") != 1:
            return None
        gaps = value.get("gaps")
        if not isinstance(gaps, list) or len(gaps) != BINS:
            return None
        return cls(
            int(value["first"]),
            int(value["last"]),
            tuple(tuple(int(m) for m in g) for g in gaps),
            int(value.get("out", 0)),
            int(value.get("in", 0)),
            tuple((int(x[0]), int(x[1])) for x in value.get("long") or ()),
        )


def local_hour(ms: int) -> int:
    """The hour of the day (0–23) in Asia/Shanghai."""
    return dt.datetime.fromtimestamp(ms / 1000, SHANGHAI).hour


def learn(
    profile: RoutineProfile | None, ts_ms: int, params: RoutineParams, *, since_ms: int | None = None
) -> RoutineProfile:
    """The profile after a sign of life at ts_ms (signs older than the newest one teach nothing).

    Signs within ``merge_minutes`` of the previous one are the same door use (open, then close):
    they move the last-use time but add no gap. A gap during which the elder was seen leaving is an
    outing, not the routine: it moves the last-use time and teaches nothing. Each bin keeps its
    ``window`` newest gaps.

    ``since_ms`` is the earliest moment a sign may stand for: a meter's reading at ts_ms sums what
    flowed since its previous reading. While the elder is out, a reading whose interval began before
    they left may be the water or power they used before leaving: it says nothing of their being
    back, and changes nothing."""
    if profile is None:
        return RoutineProfile(ts_ms, ts_ms, tuple(() for _ in range(BINS)))
    if ts_ms <= profile.last_ms:
        return profile
    if since_ms is not None and profile.away and since_ms < profile.out_ms:
        return profile
    gap_ms = ts_ms - profile.last_ms
    long = profile.long
    if gap_ms >= params.long_hours * HOUR_MS:  # remembered for the weekly habits, outings included
        long = (*(x for x in long if x[0] > ts_ms - WEEKS * WEEK_MS - DAY_MS), (profile.last_ms, gap_ms // MINUTE_MS))
    if gap_ms < params.merge_minutes * MINUTE_MS or profile.went_out:
        return RoutineProfile(profile.first_ms, ts_ms, profile.gaps, long=long)
    hour = local_hour(profile.last_ms)
    kept = (*profile.gaps[hour], min(gap_ms // MINUTE_MS, GAP_CAP_MIN))[-params.window :]
    gaps = (*profile.gaps[:hour], kept, *profile.gaps[hour + 1 :])
    return RoutineProfile(profile.first_ms, ts_ms, gaps, long=long)


def pass_gate(profile: RoutineProfile, ts_ms: int, direction: str) -> RoutineProfile:
    """The profile after the elder was seen at a face gate (``out`` leaving, ``in`` coming back);
    passages older than the last door use (or the last passage) change nothing."""
    if ts_ms <= max(profile.last_ms, profile.out_ms, profile.in_ms):
        return profile
    if direction == "out":
        return replace(profile, out_ms=ts_ms, in_ms=0)
    return replace(profile, in_ms=ts_ms)  # back (even from an outing whose start the gate missed)


def history_days(profile: RoutineProfile) -> float:
    """How many days of door history the profile has seen."""
    return (profile.last_ms - profile.first_ms) / DAY_MS


def quantile(values: Sequence[float], q: float) -> float:
    """The q-quantile of values (linear interpolation between order statistics)."""
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def pooled_gaps(profile: RoutineProfile, hour: int, pool_hours: int) -> list[int]:
    """The gaps (minutes) that started within pool_hours of the hour (wrapping round midnight)."""
    out: list[int] = []
    for offset in range(-pool_hours, pool_hours + 1):
        out.extend(profile.gaps[(hour + offset) % BINS])
    return out


def allowed_gap_ms(profile: RoutineProfile, hour: int, threshold_hours: float, params: RoutineParams) -> int | None:
    """How long the door may stay unused after a use in this local hour; None when the routine
    rule has nothing to say (too little history here, or the allowance reaches the fixed threshold)."""
    if history_days(profile) < params.min_history_days:
        return None
    samples = pooled_gaps(profile, hour, params.pool_hours)
    if len(samples) < params.min_samples:
        return None
    minutes = quantile(samples, params.quantile) * params.margin + params.slack_minutes
    allowed = max(int(minutes * MINUTE_MS), int(params.floor_hours * HOUR_MS))
    if allowed >= threshold_hours * HOUR_MS:
        return None  # the fixed rule (elder.inactive) covers it
    return allowed


def weekly_gap_ms(profile: RoutineProfile, anchor_ms: int, params: RoutineParams) -> int | None:
    """A weekly habit at this moment: the longest of the long silences that began within
    ``pool_hours`` (at least an hour) of this time of day on this weekday, when they did so in at least ``weekly_min``
    of the last WEEKS weeks (a family lunch every Sunday, a clinic every Tuesday morning, whether
    the gates saw the elder leave or not); else None."""
    if params.weekly_min <= 0:
        return None
    pool = max(params.pool_hours, 1) * HOUR_MS
    longest, weeks = 0, 0
    for week in range(1, WEEKS + 1):
        then = anchor_ms - week * WEEK_MS
        found = [minutes for start, minutes in profile.long if abs(start - then) <= pool]
        if found:
            weeks += 1
            longest = max(longest, *found)
    return longest * MINUTE_MS if weeks >= params.weekly_min else None


def routine_deadline(profile: RoutineProfile, threshold_hours: float, params: RoutineParams) -> int | None:
    """When the silence since the profile's last door use (or a later return) becomes overdue, or
    None (also while the elder is out)."""
    if profile.away:
        return None
    anchor = profile.anchor_ms
    allowed = allowed_gap_ms(profile, local_hour(anchor), threshold_hours, params)
    if allowed is None:
        return None
    habit = weekly_gap_ms(profile, anchor, params)
    if habit is not None:
        allowed = max(allowed, habit + int(params.slack_minutes * MINUTE_MS))
        if allowed >= threshold_hours * HOUR_MS:
            return None  # the fixed rule (elder.inactive) covers it
    return anchor + allowed


def overdue_gap_ms(profile: RoutineProfile, due_ms: int, threshold_hours: float, params: RoutineParams) -> int | None:
    """At a timer due at due_ms: the allowed gap that has been exceeded, or None when the stored
    profile says no alert is due (a newer door use moved the deadline past due_ms, or cancelled it)."""
    deadline = routine_deadline(profile, threshold_hours, params)
    if deadline is None or deadline > due_ms:
        return None
    return deadline - profile.anchor_ms


class ElderRoutine(Rule):
    """Overdue against the elder's own learned routine."""

    name = "elder.routine"
    events = LIFE_EVENTS
    timers = (TIMER, RESUME)

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.params = RoutineParams.from_settings(settings)
        self.reading_ms = int(settings.meter_reading_minutes * MINUTE_MS)

    def threshold(self, override: float | None) -> float:
        """The person's fixed threshold in hours (the ceiling of the allowed gap)."""
        return override or self.settings.elder_inactive_hours

    def before_batch(self, ctx: RuleContext, events: list[Event]) -> None:
        """Read the profiles of the batch's watched elders at once."""
        facts = ctx.facts
        sensors = {e.device for e in events if e.device in facts.elder_sensors}
        sensors |= {
            facts.elder_sensor_of[facts.elder_devices[e.device]]
            for e in events
            if e.device in facts.elder_devices and facts.elder_devices[e.device] in facts.elder_sensor_of
        }
        ctx.prefetch(self.name, sensors)

    def on_event(self, ctx: RuleContext, event: Event, device: DeviceInfo) -> None:
        sign = sign_of_life(ctx.facts, event, device, self.settings)
        if sign is None:
            return
        if sign.kind == "gate":
            self._at_gate(ctx, event, sign.person)
            return
        sensor = ctx.facts.elder_sensor_of.get(sign.person)
        if sensor is None:
            return  # an elder without a door sensor: elder.no_water watches them
        # a meter's reading stands for what flowed since the one before
        since = event.ts - self.reading_ms if sign.kind in METER_SIGNS else None
        # an out-of-order (older) sign teaches nothing and leaves the deadline (learn says so)
        self._seen(
            ctx,
            sign.person,
            sensor,
            ctx.facts.elder_sensors[sensor][1],
            f"{sign.kind} at {iso_utc(event.ts)}",
            event.ts,
            lambda stored: learn(stored, event.ts, self.params, since_ms=since),
        )

    def _at_gate(self, ctx: RuleContext, event: Event, person: str) -> None:
        """An elder living alone recognised at a face gate: out (nothing is overdue while out) or
        back (the allowance runs from the return); either way they are up and about."""
        sensor = ctx.facts.elder_sensor_of.get(person)
        if sensor is None:
            return
        _, override = ctx.facts.elder_sensors[sensor]
        direction = str(event.data.get("direction", "in"))
        self._seen(
            ctx,
            person,
            sensor,
            override,
            f"seen at a face gate ({direction}) at {iso_utc(event.ts)}",
            event.ts,
            # nothing learned yet: the door history starts the profile
            lambda stored: None if stored is None else pass_gate(stored, event.ts, direction),
        )

    def _resume(self, ctx: RuleContext, person: str, end_ms: int) -> None:
        """An elder's away period ended: like a return through a gate, the allowed silence runs from
        its end, and the away time teaches the routine nothing."""
        sensor = ctx.facts.elder_sensor_of.get(person)
        if sensor is None or ctx.mode(AWAY, person) is not None:
            return  # no door sensor to watch, or still away (the period was extended)
        stored = RoutineProfile.from_json(ctx.state_get(self.name, sensor))
        if stored is None:
            return
        self._plan(ctx, sensor, ctx.facts.elder_sensors[sensor][1], stored, pass_gate(stored, end_ms, "in"))

    def _seen(
        self,
        ctx: RuleContext,
        person: str,
        sensor: str,
        override: float | None,
        note: str,
        ts: int,
        update: Callable[[RoutineProfile | None], RoutineProfile | None],
    ) -> None:
        """The elder gave a sign of life: resolve the open alert; when the profile changes, store it
        and move the timer to its new deadline (or cancel it)."""
        ctx.clear(self.name, {"person": person}, note=note, fact_ms=ts, since_field="last_sign_at")
        stored = ctx.state_view(self.name, sensor, RoutineProfile.from_json)  # decoded once per batch
        self._plan(ctx, sensor, override, stored, update(stored))

    def _plan(
        self,
        ctx: RuleContext,
        sensor: str,
        override: float | None,
        stored: RoutineProfile | None,
        profile: RoutineProfile | None,
    ) -> None:
        """When the profile changed: store it and move the timer to its new deadline (or cancel it)."""
        if profile is None or profile is stored:
            return
        ctx.state_set(self.name, sensor, profile.to_json(), view=profile)
        deadline = routine_deadline(profile, self.threshold(override), self.params)
        if deadline is None:
            ctx.cancel(TIMER, sensor)  # away, or nothing unusual can happen before the fixed threshold
        else:
            ctx.schedule(TIMER, sensor, deadline, only_later=True)

    def on_timer(self, ctx: RuleContext, timer: str, key: str, due_ms: int) -> None:
        if timer == RESUME:
            self._resume(ctx, key, due_ms)
            return
        elder = ctx.facts.elder_sensors.get(key)
        device = ctx.facts.devices.get(key)
        profile = RoutineProfile.from_json(ctx.state_get(self.name, key))
        if elder is None or device is None or profile is None:
            return
        person, override = elder
        allowed = overdue_gap_ms(profile, due_ms, self.threshold(override), self.params)
        if allowed is None:
            return
        ctx.alert(
            self.name,
            severity="medium",
            subject={"person": person, "household": device.household, "building": device.building, "device": device.id},
            identity={"person": person},
            location=location_of(device),
            grid=device.grid,
            evidence={
                "last_sign_at": iso_utc(profile.last_ms),
                **({"back_through_gate_at": iso_utc(profile.in_ms)} if profile.anchor_ms != profile.last_ms else {}),
                "expected_gap_hours": round(allowed / HOUR_MS, 2),
                "actual_gap_hours": round((max(ctx.now(), due_ms) - profile.anchor_ms) / HOUR_MS, 2),
                "history_days": round(history_days(profile), 1),
                "local_hour": local_hour(profile.anchor_ms),
            },
        )
