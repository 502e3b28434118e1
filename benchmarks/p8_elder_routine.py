"""P8 — elder early warning: the fused elder rules (elder.routine beside elder.inactive, both on
every sign of life: door, water and power meters, face gates) against the door-only fixed 12 h rule
on the same simulated cohort, side by side (issue 23; the door-only figures are printed too).

Meters (issue 23): each flat's water and power follow the elder's day (``simulator/meters.py``,
drawn from their own random stream so the door events stay as they were); a reading every 15 min
is a sign of life when it has water or its mean power is above ``elder_power_active_watts``. A
collapse stops the water and every appliance not already on; a television left on runs to its
4 h auto-off.

The cohort (assumptions; see docs/rules.md): 240 elders living alone with a bedroom door sensor,
60 days each. 60 % homebodies, 25 % with a weekly long outing at a fixed weekday and time (family
lunch, clinic), 15 % with irregular habits. Each day: wake and bed time with personal jitter
(weekends later), 3–6 habitual door uses at personal times (each kept on 88–98 % of days; 50–80 %
and much looser for the irregular), 1–3 random uses (more at weekends), a nap for 45 %, night
trips; every use is an open and a close. Absences (no door use; one use just before leaving, one
soon after coming home): short outings of 0.5–3 h on 10–50 % of days, random long outings of
5–10 h (0–0.6 % of days, 1–3 % for the irregular, twice that at weekends), nights away with family
of 1–3 nights (0–0.5 % of days, 0–1 % for the irregular). Half of the elders collapse once, after
day 14, at home: three in four while up and about, one in four in the night; the door stays silent
until they are found (after the fixed rule's alert) and come back from hospital 3–10 days later.
Face gates: a long outing, a weekly outing or a night away leaves the community through a face
gate; a short outing does so 60 % of the time (else it is the courtyard or a neighbour's flat);
the gate recognises the elder at each passage 90 % of the time (its own random stream, so the door
events do not depend on it). The routine rule sees the recognised passages; the fixed rule does not
use them.

Both rules are run by replaying each elder's door events through the production rule's pure
decision functions (``learn``, ``routine_deadline``, ``overdue_gap_ms``) with the production
settings (``load_settings()``: ``SANDTABLE_ROUTINE_*`` variables change them) and the worker's
timer semantics (ZADD GT, cancel, one alert per silence, cleared by the next door use).

Counted: detection delay (collapse → first alert) per episode, and false alarms per 100 elder-days
after the warm-up (an alert outside an episode; an absence that looks like incapacitation counts
as a false alarm for both rules). The routine rule runs beside the fixed rule, so its delay is the
earlier of the two alerts. Deterministic (fixed seed); a few seconds.

Last line: {"bench": "P8", "ratio": routine median delay / fixed median delay,
            "false_per_100_days": …, …}
"""

from __future__ import annotations

import datetime as dt
import random
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analytics.rules.base import HOUR_MS
from analytics.rules.elder_inactive import deadline as fixed_deadline
from analytics.rules.elder_routine import (
    DAY_MS,
    MINUTE_MS,
    RoutineParams,
    RoutineProfile,
    learn,
    overdue_gap_ms,
    pass_gate,
    routine_deadline,
)
from benchmarks.common import report
from core.settings import load_settings
from core.timefmt import SHANGHAI, utc_to_ms
from simulator.generate import poisson
from simulator.meters import FRIDGE_CYCLE_MS, READING_MS, collapsed, home_day, mean_watts_between

SEED = 20260302
ELDERS = 240
DAYS = 60
EPISODE_SHARE = 0.5  # half of the elders collapse once
FIRST_EPISODE_DAY = 14  # after the warm-up (the routine rule needs 7 days of history)
TRADE_OFF = ((1.1, 30.0), (1.3, 60.0), (1.7, 120.0))  # other (margin, slack) points printed for context
SHORT_OUTING_VIA_GATE = 0.6  # other short outings stay inside the community
GATE_RECOGNISES = 0.9  # a passage through a face gate recognised as the elder
START_MS = utc_to_ms(dt.datetime(2026, 3, 2, tzinfo=SHANGHAI))  # a Monday, local midnight
END_MS = START_MS + DAYS * DAY_MS


@dataclass
class Habits:
    """One elder's traits (minutes after local midnight unless noted)."""

    kind: str  # homebody | weekly | irregular
    wake: float
    bed: float
    wake_sd: float
    bed_sd: float
    weekend_shift: float
    anchors: list[float]
    anchor_p: float
    anchor_sd: float
    extras: float  # random door uses per day (Poisson mean)
    nap: float | None
    night_trips: float  # per night (Poisson mean)
    short_outing_p: float
    long_outing_rate: float  # per day, random
    weekly_outing: tuple[int, float, float] | None  # a habitual long outing: weekday, start (min), hours
    night_away_rate: float  # per day


@dataclass
class Away:
    """The elder is out of the flat: no door use in [start, end)."""

    start: int
    end: int
    kind: str  # short outing | long outing | night away


@dataclass
class Episode:
    """An incapacitation: the elder collapses, is found, and comes home from hospital."""

    collapse: int
    found: int
    home: int


@dataclass
class ElderRun:
    """One simulated elder: door events, absences, an optional episode."""

    habits: Habits
    events: list[int]
    aways: list[Away]
    episode: Episode | None = None
    gates: list[tuple[int, str]] = field(default_factory=list)  # recognised face-gate passages
    meters: list[int] = field(default_factory=list)  # meter readings that are signs of life
    routine_alerts: list[int] = field(default_factory=list)
    fixed_alerts: list[int] = field(default_factory=list)  # the door-only fixed rule (the baseline)
    fused_alerts: list[int] = field(default_factory=list)  # the fixed rule on every sign of life


def draw_habits(rng: random.Random) -> Habits:
    """A random elder: 60 % homebodies, 25 % with a weekly long outing, 15 % irregular."""
    roll = rng.random()
    kind = "homebody" if roll < 0.60 else "weekly" if roll < 0.85 else "irregular"
    irregular = kind == "irregular"
    bed = min(max(rng.gauss(1305, 45), 1200), 1410)
    wake = bed + min(max(rng.gauss(510, 36), 420), 600) - 1440  # 7–10 h in bed
    n_anchors = rng.randint(3, 6)
    span = (bed - 60) - (wake + 90)
    anchors = [wake + 90 + span * (i + 0.5) / n_anchors + rng.uniform(-40, 40) for i in range(n_anchors)]
    return Habits(
        kind=kind,
        wake=wake,
        bed=bed,
        wake_sd=rng.uniform(40, 90) if irregular else rng.uniform(10, 25),
        bed_sd=rng.uniform(45, 100) if irregular else rng.uniform(15, 35),
        weekend_shift=rng.uniform(0, 60),
        anchors=anchors,
        anchor_p=rng.uniform(0.5, 0.8) if irregular else rng.uniform(0.88, 0.98),
        anchor_sd=rng.uniform(60, 120) if irregular else rng.uniform(10, 30),
        extras=rng.uniform(1, 4) if irregular else rng.uniform(1, 3),
        nap=rng.gauss(780, 20) if rng.random() < 0.45 else None,
        night_trips=rng.uniform(0, 0.9),
        short_outing_p=rng.uniform(0.1, 0.5),
        long_outing_rate=rng.uniform(0.01, 0.03) if irregular else rng.uniform(0, 0.006),
        weekly_outing=(rng.randrange(7), rng.uniform(510, 840), rng.uniform(5, 9)) if kind == "weekly" else None,
        night_away_rate=rng.uniform(0, 0.01) if irregular else rng.uniform(0, 0.005),
    )


@dataclass(frozen=True)
class DayPlan:
    """One local day of an elder: when they woke, went to bed, and got up in the night (epoch ms)."""

    midnight: int
    wake: int
    bed: int
    night_trips: tuple[int, ...]


def door_uses(h: Habits, rng: random.Random, plans: list[DayPlan] | None = None) -> list[int]:
    """When the elder passes the bedroom door over the whole period, as if never away (``plans``
    gets each day's wake, bed and night trips, for the meters)."""
    uses: list[float] = []
    for d in range(DAYS + 1):
        midnight = START_MS + d * DAY_MS
        weekend = d % 7 >= 5
        shift = h.weekend_shift if weekend else 0.0
        wake = h.wake + shift + rng.gauss(0, h.wake_sd)
        bed = h.bed + shift * 0.6 + rng.gauss(0, h.bed_sd)
        day = [wake, bed]
        for anchor in h.anchors:
            if rng.random() < h.anchor_p:
                day.append(min(max(anchor + shift + rng.gauss(0, h.anchor_sd), wake + 10), bed - 10))
        day += [rng.uniform(wake, bed) for _ in range(poisson(rng, h.extras * (1.5 if weekend else 1.0)))]
        if h.nap is not None and rng.random() < 0.85:
            start = h.nap + rng.gauss(0, 20)
            day += [start, start + rng.uniform(45, 100)]
        next_wake = h.wake + 1440 - 30
        trips = []
        for _ in range(poisson(rng, h.night_trips)):
            t = rng.uniform(bed + 60, max(bed + 61, next_wake))
            day += [t, t + rng.uniform(2, 8)]
            trips.append(midnight + int(t * MINUTE_MS))
        uses += [midnight + m * MINUTE_MS for m in day]
        if plans is not None:
            plans.append(
                DayPlan(midnight, midnight + int(wake * MINUTE_MS), midnight + int(bed * MINUTE_MS), tuple(trips))
            )
    return sorted(int(u) for u in uses)


def draw_aways(h: Habits, rng: random.Random) -> list[Away]:
    """Nights away, long day outings (random and weekly), short outings; never overlapping."""
    aways: list[Away] = []

    def free(start: int, end: int) -> bool:
        return all(end <= a.start or start >= a.end for a in aways)

    for d in range(DAYS):
        midnight = START_MS + d * DAY_MS
        if rng.random() < h.night_away_rate:
            nights = rng.choices((1, 2, 3), weights=(70, 20, 10))[0]
            start = midnight + int(rng.uniform(13, 19) * HOUR_MS)
            end = midnight + nights * DAY_MS + int(rng.uniform(9, 18) * HOUR_MS)
            if free(start, end):
                aways.append(Away(start, end, "night away"))
    for d in range(DAYS):
        midnight = START_MS + d * DAY_MS
        if h.weekly_outing is not None and h.weekly_outing[0] == d % 7 and rng.random() < 0.8:
            _, start_min, hours = h.weekly_outing
            start = midnight + int((start_min + rng.gauss(0, 20)) * MINUTE_MS)
            end = start + int((hours + rng.gauss(0, 0.5)) * HOUR_MS)
            if free(start, end):
                aways.append(Away(start, end, "weekly outing"))
        elif rng.random() < h.long_outing_rate * (2.0 if d % 7 >= 5 else 1.0):
            start = midnight + int(rng.uniform(8.5, 14) * HOUR_MS)
            end = start + int(rng.uniform(5, 10) * HOUR_MS)
            if free(start, end):
                aways.append(Away(start, end, "long outing"))
        if rng.random() < h.short_outing_p:
            start = midnight + int((h.wake + 60) * MINUTE_MS + rng.uniform(0, 10) * HOUR_MS)
            end = start + int(rng.uniform(0.5, 3) * HOUR_MS)
            if free(start, end):
                aways.append(Away(start, end, "short outing"))
    return sorted(aways, key=lambda a: a.start)


def live(uses: list[int], aways: list[Away], rng: random.Random) -> list[int]:
    """The door uses that happen: none while away; one just before leaving and soon after coming home."""
    kept = [u for u in uses if not any(a.start <= u < a.end for a in aways)]
    for a in aways:
        kept.append(a.start - int(rng.uniform(5, 30) * MINUTE_MS))
        if a.kind != "short outing" or rng.random() < 0.7:
            kept.append(a.end + int(rng.uniform(5, 60) * MINUTE_MS))
    return sorted(kept)


def door_events(uses: list[int], rng: random.Random) -> list[int]:
    """Each use is an open and, a little later, a close."""
    out = []
    for u in uses:
        out += [u, u + int(rng.uniform(20_000, 120_000))]
    return sorted(t for t in out if START_MS <= t < END_MS)


def inject_episode(run: ElderRun, rng: random.Random, threshold_h: float) -> None:
    """A collapse at home at a random time: three in four while up and about (between the usual wake
    and bed times), one in four in the night; the door is silent until the elder is back home."""
    h = run.habits
    for _ in range(100):
        midnight = START_MS + rng.randrange(FIRST_EPISODE_DAY, DAYS - 5) * DAY_MS
        minute = rng.uniform(h.wake, h.bed) if rng.random() < 0.75 else rng.uniform(h.bed, h.wake + 1440)
        collapse = midnight + int(minute * MINUTE_MS)
        if not any(a.start <= collapse < a.end for a in run.aways):
            break
    before = [t for t in run.events if t < collapse]
    fixed_alert = fixed_deadline(before[-1], threshold_h)
    found = (fixed_alert if fixed_alert >= collapse else collapse + DAY_MS) + int(rng.uniform(0.5, 2) * HOUR_MS)
    home = found + int(rng.uniform(3, 10) * DAY_MS)
    run.episode = Episode(collapse, found, home)
    run.aways = [a for a in run.aways if a.end <= collapse or a.start >= home]
    run.events = [t for t in run.events if t < collapse or t >= home]


def gate_passages(aways: list[Away], rng: random.Random) -> list[tuple[int, str]]:
    """The face-gate passages that recognised the elder: out a few minutes after leaving the flat,
    in a few minutes before coming back to it."""
    out: list[tuple[int, str]] = []
    for a in aways:
        if a.kind == "short outing" and rng.random() >= SHORT_OUTING_VIA_GATE:
            continue
        leave = a.start + int(rng.uniform(1, 5) * MINUTE_MS)
        back = a.end - int(rng.uniform(1, 5) * MINUTE_MS)
        if rng.random() < GATE_RECOGNISES:
            out.append((leave, "out"))
        if rng.random() < GATE_RECOGNISES:
            out.append((back, "in"))
    return sorted(t for t in out if START_MS <= t[0] < END_MS)


def cohort(threshold_h: float) -> list[ElderRun]:
    """The simulated cohort (deterministic)."""
    rng = random.Random(SEED)
    gate_rng = random.Random(SEED + 1)
    meter_rng = random.Random(SEED + 2)  # the meters' own stream: the door cohort stays as it was
    active_watts = load_settings().elder_power_active_watts
    runs = []
    for _ in range(ELDERS):
        h = draw_habits(rng)
        aways = draw_aways(h, rng)
        plans: list[DayPlan] = []
        events = door_events(live(door_uses(h, rng, plans), aways, rng), rng)
        run = ElderRun(h, events, aways)
        if rng.random() < EPISODE_SHARE:
            inject_episode(run, rng, threshold_h)
        run.gates = gate_passages(run.aways, gate_rng)
        run.meters = meter_signs(plans, run.aways, run.episode, meter_rng, active_watts)
        runs.append(run)
    return runs


def meter_signs(
    plans: list[DayPlan], aways: list[Away], episode: Episode | None, rng: random.Random, active_watts: float
) -> list[int]:
    """The meters' readings (every 15 min) that are signs of life: water, or power above
    ``active_watts``. The flat's day follows the door's (simulator/meters.py); nothing new after a
    collapse (the television left on runs to its auto-off), nothing in hospital."""
    out = [(a.start, a.end) for a in aways] + ([(episode.found, episode.home)] if episode else [])
    phase = rng.randrange(READING_MS)
    fridge = rng.randrange(FRIDGE_CYCLE_MS)
    days = []
    for plan in plans:
        day = home_day(rng, plan.midnight, plan.wake, plan.bed, plan.night_trips, out)
        if episode is not None and plan.midnight < episode.home and plan.midnight + DAY_MS > episode.collapse:
            day = collapsed(day, episode.collapse)
        days.append(day)

    def reading_after(ts: int) -> int:  # the reading whose interval (r − 15 min, r] holds ts
        return ts + (phase - ts) % READING_MS

    signs = {reading_after(ts) for day in days for ts, _ in day.water}
    loads = [ld for day in days for ld in day.loads if ld.kind != "lights"]  # lights alone never reach it
    for ld in loads:
        for r in range(reading_after(ld.start), min(ld.end, END_MS) + READING_MS, READING_MS):
            if r in signs:
                continue
            i = (r - START_MS) // DAY_MS
            near = days[max(0, i - 1) : i + 2]
            if mean_watts_between(near, r - READING_MS, r, fridge) > active_watts:
                signs.add(r)
    return sorted(t for t in signs if START_MS <= t < END_MS)


def replay(run: ElderRun, params: RoutineParams, threshold_h: float, *, fused: bool = True) -> None:
    """The rules over one elder's signs of life, with the worker's timer semantics: the door-only
    fixed rule (the baseline, ``fixed_alerts``); the routine rule on the door, the meters when
    ``fused``, and the recognised gate passages (``routine_alerts``); the fixed rule on every sign
    (``fused_alerts``, the production elder.inactive)."""
    profile: RoutineProfile | None = None
    routine_due: int | None = None
    fixed_due: int | None = None
    fused_due: int | None = None
    meters = [(ts, "meter") for ts in run.meters] if fused else []
    timeline = sorted([(ts, "door") for ts in run.events] + meters + run.gates)
    for ts, what in [*timeline, (END_MS, "end")]:
        if routine_due is not None and routine_due <= ts:
            assert profile is not None
            if overdue_gap_ms(profile, routine_due, threshold_h, params) is not None:
                run.routine_alerts.append(routine_due)
            routine_due = None  # fired: nothing until the next sign of life
        if fixed_due is not None and fixed_due <= ts:
            run.fixed_alerts.append(fixed_due)
            fixed_due = None
        if fused_due is not None and fused_due <= ts:
            run.fused_alerts.append(fused_due)
            fused_due = None
        if what == "end":
            break
        fused_due = fixed_deadline(ts, threshold_h)
        if what in ("in", "out"):  # a face-gate passage
            if profile is not None:
                profile = pass_gate(profile, ts, what)
                due = routine_deadline(profile, threshold_h, params)
                routine_due = None if due is None else max(due, routine_due or due)
            continue
        profile = learn(profile, ts, params, since_ms=ts - READING_MS if what == "meter" else None)
        due = routine_deadline(profile, threshold_h, params)
        # as the rule does: ctx.cancel when there is no deadline, else ZADD GT (never earlier)
        routine_due = None if due is None else max(due, routine_due or due)
        if what == "door":
            fixed_due = fixed_deadline(ts, threshold_h)


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (linear interpolation)."""
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def cause(run: ElderRun, alert: int, last_use: int) -> str:
    """Why a false alarm happened: the absence within the silence that led to it, else routine variation."""
    for a in run.aways:
        if a.start < alert and a.end > last_use:
            return a.kind
    return "routine variation"


@dataclass
class Outcome:
    """Both rules' figures on the cohort."""

    elder_days: float = 0.0
    fixed_delays: list[float] = field(default_factory=list)
    routine_delays: list[float] = field(default_factory=list)
    fixed_false: Counter[str] = field(default_factory=Counter)
    routine_false: Counter[str] = field(default_factory=Counter)
    beside_false: Counter[str] = field(default_factory=Counter)  # the fixed rule running beside the routine
    routine_first: int = 0
    by_kind: dict[str, tuple[list[float], list[float], int]] = field(default_factory=dict)

    def per_100_days(self, false: Counter[str]) -> float:
        """False alarms per 100 elder-days."""
        return 100 * sum(false.values()) / self.elder_days


def evaluate(cohort_runs: list[ElderRun], params: RoutineParams, threshold_h: float, *, fused: bool = True) -> Outcome:
    """Replay the rules over every elder and score them (false alarms counted after the warm-up). The
    "routine" figures are those of the routine rule beside the fixed rule as production runs them:
    both on every sign of life when ``fused``, else both on the door alone (issue 14's P8)."""
    out = Outcome()
    counted_from = START_MS + int(params.min_history_days * DAY_MS)
    for base in cohort_runs:
        run = ElderRun(base.habits, base.events, base.aways, base.episode, base.gates, base.meters)
        replay(run, params, threshold_h, fused=fused)
        beside = run.fused_alerts if fused else run.fixed_alerts
        ep = run.episode
        out.elder_days += (END_MS - counted_from - ((ep.home - ep.collapse) if ep else 0)) / DAY_MS
        signs = sorted(run.events + (run.meters if fused else []))

        def in_episode(t: int, ep: Episode | None = ep) -> bool:
            return ep is not None and ep.collapse <= t < ep.home

        for alerts, false, is_routine in (
            (run.routine_alerts, out.routine_false, True),
            (run.fixed_alerts, out.fixed_false, False),
            (beside, out.beside_false, False),
        ):
            for t in alerts:
                if t >= counted_from and not in_episode(t):
                    last_use = max(e for e in (signs if alerts is not run.fixed_alerts else run.events) if e < t)
                    false[cause(run, t, last_use)] += 1
                    if is_routine:
                        kind = out.by_kind.setdefault(run.habits.kind, ([], [], 0))
                        out.by_kind[run.habits.kind] = (kind[0], kind[1], kind[2] + 1)
        if ep is not None:
            # the elder is found after the door-only fixed rule's alert (or a day later if it had already fired)
            fixed = min((t for t in run.fixed_alerts if in_episode(t)), default=ep.collapse + DAY_MS)
            first_beside = min((t for t in beside if in_episode(t)), default=fixed)
            routine = min((t for t in run.routine_alerts if in_episode(t)), default=first_beside)
            out.routine_first += routine < first_beside
            out.fixed_delays.append((fixed - ep.collapse) / HOUR_MS)
            out.routine_delays.append((min(routine, first_beside) - ep.collapse) / HOUR_MS)
            kind = out.by_kind.setdefault(run.habits.kind, ([], [], 0))
            kind[0].append(out.fixed_delays[-1])
            kind[1].append(out.routine_delays[-1])
    return out


def main() -> None:
    """Run P8."""
    settings = load_settings()
    params = RoutineParams.from_settings(settings)
    threshold_h = settings.elder_inactive_hours
    began = time.perf_counter()
    runs = cohort(threshold_h)
    built = time.perf_counter() - began
    result = evaluate(runs, params, threshold_h)
    elapsed = time.perf_counter() - began

    kinds = Counter(r.habits.kind for r in runs)
    aways = Counter(a.kind for r in runs for a in r.aways)
    uses_per_day = sum(len(r.events) for r in runs) / 2 / (len(runs) * DAYS)
    episodes = len(result.fixed_delays)
    print(f"cohort: {len(runs)} elders × {DAYS} days {dict(kinds)}, {uses_per_day:.1f} door uses a day")
    print(f"absences: {dict(aways)}; built in {built:.1f} s")
    warmup = params.min_history_days
    print(f"episodes: {episodes}; elder-days counted after the {warmup:g}-day warm-up: {result.elder_days:.0f}")
    print(f"settings: {params}")
    signs_per_day = sum(len(r.meters) for r in runs) / (len(runs) * DAYS)
    print(
        f"meters: {signs_per_day:.1f} readings a day are signs of life "
        f"(water, power > {settings.elder_power_active_watts:g} W)"
    )
    for name, delays, false in (
        ("fixed 12 h", result.fixed_delays, result.fixed_false),
        ("fused", result.routine_delays, result.routine_false),
    ):
        print(
            f"{name:>10}: delay median {statistics.median(delays):5.2f} h, p90 {percentile(delays, 0.9):5.2f} h; "
            f"false alarms {sum(false.values()):4d} = {result.per_100_days(false):.2f} per 100 elder-days "
            f"{dict(false.most_common())}"
        )
    print(
        f"the fused fixed rule (beside it): {sum(result.beside_false.values())} false alarms = "
        f"{result.per_100_days(result.beside_false):.2f} per 100 elder-days {dict(result.beside_false.most_common())}"
    )
    print(f"the routine rule alerted before the fused fixed rule in {result.routine_first} of {episodes} episodes")
    door_only = evaluate(runs, params, threshold_h, fused=False)
    print(
        f"door only (issue 14's P8), same cohort: ratio "
        f"{statistics.median(door_only.routine_delays) / statistics.median(door_only.fixed_delays):.3f}, "
        f"false alarms {door_only.per_100_days(door_only.routine_false):.2f} per 100 elder-days"
    )
    for kind, (fixed, routine, false_alarms) in sorted(result.by_kind.items()):
        if fixed:
            print(
                f"  {kind:>9}: {len(fixed):3d} episodes, median delay fixed {statistics.median(fixed):5.2f} h, "
                f"routine {statistics.median(routine):5.2f} h; routine false alarms {false_alarms}"
            )
    print("trade-off (same cohort, other margins):")
    for margin, slack in TRADE_OFF:
        other = evaluate(runs, replace(params, margin=margin, slack_minutes=slack), threshold_h)
        print(
            f"  margin {margin:.2f}, slack {slack:3.0f} min: ratio "
            f"{statistics.median(other.routine_delays) / statistics.median(other.fixed_delays):.3f}, "
            f"false alarms {other.per_100_days(other.routine_false):.2f} per 100 elder-days"
        )
    print(f"replayed in {elapsed:.1f} s")
    fixed_median = statistics.median(result.fixed_delays)
    routine_median = statistics.median(result.routine_delays)
    report(
        {
            "bench": "P8",
            "ratio": round(routine_median / fixed_median, 3),
            "false_per_100_days": round(result.per_100_days(result.routine_false), 3),
            "routine_median_delay_h": round(routine_median, 2),
            "routine_p90_delay_h": round(percentile(result.routine_delays, 0.9), 2),
            "fixed_median_delay_h": round(fixed_median, 2),
            "fixed_p90_delay_h": round(percentile(result.fixed_delays, 0.9), 2),
            "fixed_false_per_100_days": round(result.per_100_days(result.fixed_false), 3),
            "fused_fixed_false_per_100_days": round(result.per_100_days(result.beside_false), 3),
            "meter_signs_per_day": round(sum(len(r.meters) for r in runs) / (len(runs) * DAYS), 1),
            "elders": len(runs),
            "days": DAYS,
            "elder_days": round(result.elder_days),
            "episodes": episodes,
            "routine_first": result.routine_first,
        }
    )


if __name__ == "__main__":
    main()
