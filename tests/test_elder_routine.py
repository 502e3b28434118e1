"""elder.routine: the learned profile, the allowed gap by time of day, and the rule through the worker."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import replace

import pytest

from alerts.live import AlertStore
from analytics.rules.elder_routine import (
    BINS,
    RoutineParams,
    RoutineProfile,
    allowed_gap_ms,
    learn,
    local_hour,
    overdue_gap_ms,
    pass_gate,
    routine_deadline,
)
from analytics.worker import Worker
from core.clock import ManualClock
from core.settings import Settings
from core.timefmt import SHANGHAI, utc_to_ms
from ingest.directory import Directory
from ingest.service import IngestService
from store.stores import Stores
from tests.test_pipeline import drain

MIN = 60_000
HOUR = 3_600_000
DAY = 24 * HOUR
DAY0 = utc_to_ms(dt.datetime(2026, 9, 1, tzinfo=SHANGHAI))  # local midnight in Asia/Shanghai
# a regular elder: up at 06:30, in and out of the bedroom through the day, in bed at 21:30
ROUTINE = (6 * 60 + 30, 8 * 60, 9 * 60 + 30, 11 * 60 + 30, 13 * 60, 14 * 60 + 30, 16 * 60, 17 * 60 + 30, 19 * 60)
BED = 21 * 60 + 30
PARAMS = RoutineParams.from_settings(Settings())


def at(day: int, minute: float) -> int:
    """Epoch ms of a local time (minutes after midnight) on a day after DAY0."""
    return DAY0 + day * DAY + int(minute * MIN)


def door_uses(day: int, rng: random.Random, *, until: float = 24 * 60) -> list[int]:
    """The day's door events (an open, then a close a minute later), each use jittered by up to 15 min."""
    out = []
    for minute in (*ROUTINE, BED):
        if minute <= until:
            ts = at(day, minute + rng.uniform(-15, 15))
            out += [ts, ts + MIN]
    return out


def learned(days: int, seed: int = 1) -> RoutineProfile:
    """The profile after that many regular days."""
    rng = random.Random(seed)
    profile = None
    for day in range(days):
        for ts in door_uses(day, rng):
            profile = learn(profile, ts, PARAMS)
    assert profile is not None
    return profile


def test_local_hours_are_asia_shanghai() -> None:
    assert local_hour(at(0, 0)) == 0
    assert local_hour(at(0, 23 * 60 + 59)) == 23
    assert local_hour(utc_to_ms(dt.datetime(2026, 9, 1, 1, 30, tzinfo=dt.UTC))) == 9


def test_an_open_and_its_close_are_one_use_and_the_gap_goes_to_the_hour_it_started_in() -> None:
    profile = learn(None, at(0, 8 * 60), PARAMS)
    profile = learn(profile, at(0, 8 * 60 + 1), PARAMS)  # the close
    assert all(g == () for g in profile.gaps)
    profile = learn(profile, at(0, 10 * 60 + 31), PARAMS)
    assert profile.gaps[8] == (150,)
    assert profile.last_ms == at(0, 10 * 60 + 31)
    assert sum(len(g) for g in profile.gaps) == 1


def test_older_events_teach_nothing_and_each_hour_keeps_a_bounded_window() -> None:
    profile = learned(3)
    assert learn(profile, profile.last_ms - HOUR, PARAMS) is profile
    long = learned(PARAMS.window + 15)
    assert max(len(g) for g in long.gaps) == PARAMS.window
    assert len(long.gaps) == BINS
    assert RoutineProfile.from_json(long.to_json()) == long
    assert RoutineProfile.from_json({"v": 99}) is None


def test_no_alert_before_enough_history() -> None:
    short = learned(int(PARAMS.min_history_days) - 1)
    assert allowed_gap_ms(short, 9, 12.0, PARAMS) is None
    assert routine_deadline(short, 12.0, PARAMS) is None
    assert allowed_gap_ms(learned(14), 9, 12.0, PARAMS) is not None


@pytest.mark.parametrize("hour", [8, 9, 11, 13, 14, 16])
def test_after_a_daytime_use_the_door_may_rest_only_a_few_hours(hour: int) -> None:
    allowed = allowed_gap_ms(learned(21), hour, 12.0, PARAMS)
    assert allowed is not None
    assert PARAMS.floor_hours * HOUR <= allowed <= 6 * HOUR


def test_a_nights_sleep_is_not_overdue() -> None:
    profile = learned(21)
    rng = random.Random(99)
    for ts in door_uses(21, rng):
        profile = learn(profile, ts, PARAMS)
    assert local_hour(profile.last_ms) == 21  # the last use is going to bed
    deadline = routine_deadline(profile, 12.0, PARAMS)
    # nothing before the fixed threshold: the usual 9 h night is never an early warning
    assert deadline is None or deadline > at(22, 6 * 60 + 30) + 2 * HOUR


def test_the_allowance_stays_under_the_persons_fixed_threshold() -> None:
    profile = learned(21)
    allowed = allowed_gap_ms(profile, 9, 12.0, PARAMS)
    assert allowed is not None
    # with a (per-person) threshold at or below the learned allowance the routine rule stays silent
    assert allowed_gap_ms(profile, 9, allowed / HOUR, PARAMS) is None
    # a very busy door is still allowed the floor
    assert allowed_gap_ms(profile, 9, 12.0, replace(PARAMS, margin=1.0, slack_minutes=0, floor_hours=5)) == 5 * HOUR


def morning_of_day_21() -> RoutineProfile:
    """Three regular weeks, then day 21's door uses up to 09:45."""
    profile = learned(21)
    for ts in door_uses(21, random.Random(5), until=9 * 60 + 45):
        profile = learn(profile, ts, PARAMS)
    return profile


def test_a_timer_fires_only_when_the_newest_use_is_overdue() -> None:
    profile = morning_of_day_21()
    deadline = routine_deadline(profile, 12.0, PARAMS)
    assert deadline is not None
    assert overdue_gap_ms(profile, deadline, 12.0, PARAMS) == deadline - profile.last_ms
    newer = learn(profile, deadline - HOUR, PARAMS)  # the door was used before the timer fired
    assert overdue_gap_ms(newer, deadline, 12.0, PARAMS) is None


def test_an_elder_seen_leaving_is_never_overdue_and_the_outing_teaches_nothing() -> None:
    profile = morning_of_day_21()
    before = routine_deadline(profile, 12.0, PARAMS)
    assert before is not None
    # out through a face gate at 10:00: nothing is overdue while out, however long the outing
    out = pass_gate(profile, at(21, 10 * 60), "out")
    assert out.away and routine_deadline(out, 12.0, PARAMS) is None
    assert overdue_gap_ms(out, before, 12.0, PARAMS) is None
    # a passage older than the last door use changes nothing
    assert pass_gate(profile, profile.last_ms - MIN, "out") is profile
    # back at 17:00: the allowance runs from the return, by the hour of the return
    back = pass_gate(out, at(21, 17 * 60), "in")
    deadline = routine_deadline(back, 12.0, PARAMS)
    allowed = allowed_gap_ms(back, 17, 12.0, PARAMS)
    assert not back.away and deadline is not None and allowed is not None
    assert deadline == at(21, 17 * 60) + allowed
    # the 7-hour silence of the outing is not learned as a gap of the routine
    home = learn(back, at(21, 17 * 60 + 10), PARAMS)
    assert home.gaps == profile.gaps and home.last_ms == at(21, 17 * 60 + 10)
    assert RoutineProfile.from_json(back.to_json()) == back
    # a return the gate saw without the leaving (missed): still an outing, still not learned
    missed = learn(pass_gate(profile, at(21, 16 * 60), "in"), at(21, 16 * 60 + 5), PARAMS)
    assert missed.gaps == profile.gaps


def test_a_meter_reading_that_may_be_from_before_the_leaving_does_not_bring_the_elder_back() -> None:
    profile = morning_of_day_21()
    out = pass_gate(profile, at(21, 10 * 60), "out")
    # the water meter's 10:05 reading sums 09:50–10:05: the kettle before leaving, not a return
    kettle = learn(out, at(21, 10 * 60 + 5), PARAMS, since_ms=at(21, 9 * 60 + 50))
    assert kettle.away and routine_deadline(kettle, 12.0, PARAMS) is None
    # a reading wholly after the leaving is the elder at home again (the gate missed the return)
    back = learn(kettle, at(21, 12 * 60 + 15), PARAMS, since_ms=at(21, 12 * 60))
    assert not back.away and routine_deadline(back, 12.0, PARAMS) is not None
    assert back.gaps == profile.gaps  # the outing is still not learned as routine


def test_a_weekly_outing_is_a_habit_even_when_the_gate_misses_the_leaving() -> None:
    """Out every seventh day from about 09:40 to 16:00 (a family lunch), the face gate seeing the
    return and missing the leaving: on that weekday the silence after the morning's use is allowed
    the outing's length; on the other days it is not (the outing is not learned as routine)."""
    rng = random.Random(3)
    profile: RoutineProfile | None = None
    mornings: dict[int, RoutineProfile] = {}
    for day in range(35):
        for ts in door_uses(day, rng):
            if day % 7 == 6 and at(day, 9 * 60 + 50) < ts < at(day, 15 * 60 + 30):
                continue  # out: no sign of life, and no face gate saw the leaving
            if day % 7 == 6 and ts > at(day, 15 * 60 + 30) and profile is not None and not profile.went_out:
                profile = pass_gate(profile, at(day, 15 * 60 + 25), "in")  # the gate saw the return
            profile = learn(profile, ts, PARAMS)
            if day in (33, 34) and at(day, 10 * 60) > ts and day not in mornings and ts > at(day, 9 * 60):
                mornings[day] = profile
    assert profile is not None and len(profile.long) >= 4  # the outings (and nights) are remembered
    lunch_day, other_day = mornings[34], mornings[33]
    allowed_lunch = routine_deadline(lunch_day, 12.0, PARAMS)
    allowed_other = routine_deadline(other_day, 12.0, PARAMS)
    assert allowed_lunch is not None and allowed_other is not None
    assert allowed_lunch - lunch_day.last_ms >= 7 * HOUR  # the outing's ≈ 6.5 h and the slack
    assert allowed_other - other_day.last_ms <= 6 * HOUR
    # without the weekly habits the lunch day is as short as any other
    plain = routine_deadline(lunch_day, 12.0, replace(PARAMS, weekly_min=0))
    assert plain is not None and plain - lunch_day.last_ms <= 6 * HOUR
    assert RoutineProfile.from_json(lunch_day.to_json()) == lunch_day


def routine_alert(stores: Stores, person: str) -> dict[str, object] | None:

    return AlertStore(stores.redis, stores.keys).open_doc("wanhu", "elder.routine", {"person": person})


def inactive_alert(stores: Stores, person: str) -> dict[str, object] | None:
    return AlertStore(stores.redis, stores.keys).open_doc("wanhu", "elder.inactive", {"person": person})


def test_through_the_worker_an_ordinary_day_is_quiet_and_a_stopped_routine_alerts_hours_before_12_h(
    world: Stores,
) -> None:
    directory = Directory(world.sessions)
    facts = directory.facts("wanhu")
    sensor, (person, _) = next((s, e) for s, e in facts.elder_sensors.items() if e[1] is None)
    rng = random.Random(7)
    history_days = 21
    history = [ts for day in range(history_days) for ts in door_uses(day, rng)]
    clock = ManualClock(history[-1])
    ingest = IngestService(world, directory=directory)
    ingest.clock = clock

    def door(ts: int) -> dict[str, object]:
        return {"type": "door.contact", "device": sensor, "ts": ts, "data": {"state": "open"}}

    ingest.ingest("wanhu", [door(ts) for ts in history])
    worker = Worker(world, consumer="routine", clock=clock, directory=directory)
    worker.start_community("wanhu", seed_timers=False)
    drain(worker)

    def live_until(end: int, uses: list[int], passages: tuple[dict[str, object], ...] = ()) -> int | None:
        """Move the clock in 15-minute steps, sending the door uses (and face-gate passages) as they
        happen; when the alert came."""
        pending = sorted([door(ts) for ts in uses] + list(passages), key=lambda e: int(str(e["ts"])))
        while clock.now_ms() < end:
            clock.set(min(end, clock.now_ms() + 15 * MIN))
            due = [e for e in pending if int(str(e["ts"])) <= clock.now_ms()]
            pending = pending[len(due) :]
            if due:
                ingest.ingest("wanhu", due)
                drain(worker)
            worker.sweep("wanhu")
            if routine_alert(world, person) is not None:
                return clock.now_ms()
        return None

    # an ordinary day: no early warning
    assert live_until(at(history_days, BED + 30), door_uses(history_days, rng)) is None
    # the next day the elder is up as usual, uses the door until 09:30, then nothing
    last_day = history_days + 1
    stopped = [ts for ts in door_uses(last_day, rng) if ts < at(last_day, 10 * 60)]
    raised = live_until(at(last_day, 22 * 60), stopped)
    assert raised is not None
    last_use = max(stopped)
    assert raised - last_use <= 6 * HOUR  # hours before the fixed 12 h
    assert inactive_alert(world, person) is None
    alert = routine_alert(world, person)
    assert alert is not None and alert["severity"] == "medium"
    evidence = alert["evidence"]
    assert isinstance(evidence, dict)
    assert evidence["history_days"] >= history_days
    assert evidence["expected_gap_hours"] < evidence["actual_gap_hours"] < 12
    # the next door use clears it; the rest of the day is ordinary
    ingest.ingest("wanhu", [door(clock.now_ms())])
    drain(worker)
    assert routine_alert(world, person) is None
    evening = [ts for ts in door_uses(last_day, random.Random(11)) if ts > clock.now_ms() + 30 * MIN]
    assert live_until(at(last_day, BED + 30), evening) is None
    face_gate = next(d.id for d in facts.devices.values() if d.type == "face_gate")

    def passage(ts: int, direction: str) -> dict[str, object]:
        return {"type": "gate.face", "device": face_gate, "ts": ts, "data": {"direction": direction, "person": person}}

    # a day out: up as usual, out through the gate at 08:20, back at 15:00: nothing while out
    # (longer than any allowance), then the allowance runs from the return
    out_day = last_day + 1
    morning = [ts for ts in door_uses(out_day, rng) if ts < at(out_day, 8 * 60 + 15)]
    back = at(out_day, 15 * 60)
    trip = (passage(at(out_day, 8 * 60 + 20), "out"), passage(back, "in"))
    assert live_until(back, morning, trip) is None
    raised = live_until(at(out_day, 23 * 60), [])
    assert raised is not None and raised > back
    alert = routine_alert(world, person)
    assert alert is not None and isinstance(alert["evidence"], dict)
    assert alert["evidence"]["back_through_gate_at"] > alert["evidence"]["last_sign_at"]
    assert raised - back <= alert["evidence"]["expected_gap_hours"] * HOUR + 31 * MIN
    # the elder seen at a face gate is up and about: that clears it too
    ingest.ingest("wanhu", [passage(clock.now_ms(), "out")])
    drain(worker)
    assert routine_alert(world, person) is None
