"""A flat's water and power use over a day, derived from the occupant's activity (issue 23).

The simulator (``simulator/generate.py``) and the P8 benchmark (``benchmarks/p8_elder_routine.py``)
both draw an elder's day here, so that the meters they produce follow the same model:

- **water** comes in draws (litres at an instant): a toilet flush (6 L) on waking, after most
  night trips and every 2–3 hours while up; a kettle filled (1.5 L) with breakfast and in the
  afternoon; washing up (8–15 L) after the meals cooked at home; hand washing (1–2 L); a shower
  (40–60 L) on about half of the evenings;
- **power** is a sum of loads: the fridge's compressor (90 W, on 12 min in every 36 min, day and
  night) and 10 W of standby always; the kettle (1,800 W, 3–4 min, with its water); a rice cooker
  (700 W, 30–40 min) before the meals cooked at home; the television (120 W) in the evening until
  bedtime and on some afternoons; lights (30 W) from dusk to bedtime.

A meter reports every ``READING_MS`` (15 min): the water meter the litres since its last reading,
the power meter the mean watts since it. With nobody moving, the fridge and standby never take a
reading above 100 W, lights included 130 W: the rules' ``elder_power_active_watts`` (150 W) lies
above that and below a kettle, a rice cooker, or the television with the lights on.

Nothing here draws a random number itself: the caller passes its own ``random.Random``, so each
stays deterministic from its seed.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

MIN_MS = 60_000
HOUR_MS = 60 * MIN_MS
READING_MS = 15 * MIN_MS
STANDBY_W = 10.0
FRIDGE_W = 90.0
FRIDGE_ON_MS = 12 * MIN_MS
FRIDGE_CYCLE_MS = 36 * MIN_MS
KETTLE_W = 1800.0
COOKER_W = 700.0
TV_W = 120.0
LIGHTS_W = 30.0
TV_AUTO_OFF_MS = 4 * HOUR_MS  # a television nobody touches goes to standby after 4 h
DUSK_MIN = 18 * 60


@dataclass(frozen=True)
class Load:
    """An appliance drawing ``watts`` from ``start`` to ``end`` (epoch ms); ``held`` when it keeps
    running if its user collapses (a television, lights), rather than switching itself off."""

    start: int
    end: int
    watts: float
    kind: str
    held: bool = False


@dataclass(frozen=True)
class HomeDay:
    """One day of a flat's use: water draws (ts, litres) and appliance loads."""

    water: tuple[tuple[int, float], ...]
    loads: tuple[Load, ...]


def home_day(
    rng: random.Random,
    midnight: int,
    wake: int,
    bed: int,
    night_trips: Sequence[int],
    away: Sequence[tuple[int, int]],
) -> HomeDay:
    """The water draws and loads of one local day (``midnight`` its start), from the occupant's
    wake and bed times, their night trips (toilet) and the periods they were out of the flat."""
    water: list[tuple[int, float]] = [(wake + rng.randint(1, 10) * MIN_MS, 6.0)]
    loads: list[Load] = []
    water += [(t + rng.randint(1, 4) * MIN_MS, 6.0) for t in night_trips if rng.random() < 0.8]
    t = wake + rng.randint(90, 180) * MIN_MS
    while t < bed:
        water.append((t, 6.0 if rng.random() < 0.7 else round(rng.uniform(1, 2), 1)))
        t += rng.randint(100, 180) * MIN_MS
    for kettle in (wake + rng.randint(15, 40) * MIN_MS, midnight + rng.randint(14 * 60, 16 * 60) * MIN_MS):
        if rng.random() < 0.85 and wake < kettle < bed:
            water.append((kettle, 1.5))
            loads.append(Load(kettle, kettle + rng.randint(180, 240) * 1000, KETTLE_W, "kettle"))
    for meal_min in (11 * 60 + 15, 17 * 60 + 30):
        cook = midnight + (meal_min + rng.randint(-30, 30)) * MIN_MS
        if rng.random() < 0.8 and wake < cook < bed:
            loads.append(Load(cook, cook + rng.randint(30, 40) * MIN_MS, COOKER_W, "rice cooker"))
            water.append((cook + rng.randint(50, 90) * MIN_MS, round(rng.uniform(8, 15), 1)))
    if rng.random() < 0.5:
        shower = bed - rng.randint(40, 120) * MIN_MS
        if shower > wake:
            water.append((shower, round(rng.uniform(40, 60), 1)))
    tv_on = max(midnight + (19 * 60 + rng.randint(-30, 30)) * MIN_MS, wake)
    if tv_on < bed - 20 * MIN_MS:
        loads.append(Load(tv_on, bed - rng.randint(5, 20) * MIN_MS, TV_W, "television", held=True))
    if rng.random() < 0.4:
        afternoon = midnight + rng.randint(14 * 60, 16 * 60) * MIN_MS
        loads.append(Load(afternoon, afternoon + rng.randint(40, 120) * MIN_MS, TV_W, "television", held=True))
    dusk = max(midnight + DUSK_MIN * MIN_MS, wake)
    if dusk < bed:
        loads.append(Load(dusk, bed, LIGHTS_W, "lights", held=True))
    outside = [(a, b) for a, b in away if b > midnight and a < bed + 2 * HOUR_MS]
    water = [(ts, litres) for ts, litres in water if not any(a <= ts < b for a, b in outside)]
    loads = [ld for ld in loads if not any(a <= ld.start < b for a, b in outside)]
    loads = [_cut_at_leaving(ld, outside) for ld in loads]
    return HomeDay(tuple(sorted(water)), tuple(loads))


def _cut_at_leaving(load: Load, away: Sequence[tuple[int, int]]) -> Load:
    """A load switched off when its user leaves the flat."""
    for a, _b in away:
        if load.start < a < load.end:
            return Load(load.start, a, load.watts, load.kind, load.held)
    return load


def collapsed(day: HomeDay, at: int) -> HomeDay:
    """The day as it goes when its occupant collapses at ``at``: no water after it, no appliance
    switched on after it; what was running either stops by itself (kettle, rice cooker) or keeps
    running: the television until its auto-off, the lights on."""
    loads = []
    for ld in day.loads:
        if ld.start >= at:
            continue
        if ld.held and ld.end > at:
            end = ld.start + TV_AUTO_OFF_MS if ld.kind == "television" else ld.end + 365 * 24 * HOUR_MS
            loads.append(Load(ld.start, max(end, at), ld.watts, ld.kind, ld.held))
        else:
            loads.append(ld)
    return HomeDay(tuple(w for w in day.water if w[0] < at), tuple(loads))


def litres_between(days: Sequence[HomeDay], t0: int, t1: int) -> float:
    """The water drawn in (t0, t1]."""
    return round(sum(litres for day in days for ts, litres in day.water if t0 < ts <= t1), 1)


def fridge_on_ms(t0: int, t1: int, phase: int) -> int:
    """How long the fridge's compressor ran in (t0, t1] (on FRIDGE_ON_MS from phase + k·cycle)."""
    on = 0
    k = (t0 - phase) // FRIDGE_CYCLE_MS
    while phase + k * FRIDGE_CYCLE_MS < t1:
        begin = phase + k * FRIDGE_CYCLE_MS
        on += max(0, min(t1, begin + FRIDGE_ON_MS) - max(t0, begin))
        k += 1
    return on


def mean_watts_between(days: Sequence[HomeDay], t0: int, t1: int, fridge_phase: int) -> float:
    """The mean power in (t0, t1]: standby, the fridge's cycle and every appliance's overlap."""
    span = t1 - t0
    energy = STANDBY_W * span + FRIDGE_W * fridge_on_ms(t0, t1, fridge_phase)
    for day in days:
        for ld in day.loads:
            energy += ld.watts * max(0, min(t1, ld.end) - max(t0, ld.start))
    return round(energy / span, 1)
