"""The report's arithmetic, as small pure functions: handling stages, SLA targets, availability,
patrol compliance, registration status."""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from alerts.lifecycle import CLOSED_STATUSES
from core.settings import Settings

# detected → acknowledged → dispatched → on_scene → resolved (closed: resolved or false alarm)
STAGES = ("acknowledged", "dispatched", "on_scene", "resolved")
SEVERITY_RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3}


@dataclass(frozen=True)
class Step:
    """One row of an alert's timeline, as the report reads it."""

    at: dt.datetime
    action: str
    status: str
    actor: str
    note: str = ""


def is_human(step: Step) -> bool:
    """A step a person took. The geofence records a guard's arrival as ``system``: that arrival is a
    person on the spot, so it counts (everything else the system writes — detection, repeats,
    re-dispatch, escalation, clearing when the condition ended — does not)."""
    if step.actor != "system":
        return True
    return step.status == "on_scene" and step.note.strip() == "geofence"


def stage_reached(steps: Iterable[Step]) -> dict[str, dt.datetime]:
    """When each stage was first reached by a person (closing as resolved or false alarm = resolved).

    The first response of any kind (a direct dispatch, closing a false alarm) also acknowledges."""
    reached: dict[str, dt.datetime] = {}
    for step in steps:
        if not is_human(step) or step.action == "escalated":
            continue
        stage = "resolved" if step.status in CLOSED_STATUSES else step.status
        if stage in STAGES and (stage not in reached or step.at < reached[stage]):
            reached[stage] = step.at
    if reached:
        reached["acknowledged"] = min(reached.values())
    return reached


def stage_minutes(detected: dt.datetime, steps: Iterable[Step]) -> dict[str, float]:
    """Minutes each reached stage took, from the previous stage reached (or the detection).

    The same way the closed loop sets its SLA deadlines: acknowledge from detection, dispatch from
    the acknowledgement, arrival from the dispatch, closing from the arrival; a stage skipped (an
    alert closed without a dispatch) is simply absent."""
    reached = stage_reached(steps)
    out: dict[str, float] = {}
    previous = detected
    for stage in STAGES:
        at = reached.get(stage)
        if at is None:
            continue
        out[stage] = max(0.0, (at - previous).total_seconds() / 60)
        previous = max(previous, at)
    return out


def sla_minutes(stage: str, severity: str, settings: Settings) -> float:
    """The target of a stage (the acknowledgement's depends on the severity)."""
    if stage == "acknowledged":
        return float(settings.sla_ack_minutes.get(severity, 15))
    if stage == "dispatched":
        return settings.sla_dispatch_minutes
    if stage == "on_scene":
        return settings.sla_arrive_minutes
    return settings.sla_close_minutes


def summary(values: Sequence[float]) -> dict[str, float | None]:
    """n, median, 90th percentile, mean and maximum of minutes (None when there are none)."""
    if not values:
        return {"n": 0, "median": None, "p90": None, "mean": None, "max": None}
    ordered = sorted(values)
    p90 = ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]  # nearest rank
    return {
        "n": len(ordered),
        "median": round(statistics.median(ordered), 1),
        "p90": round(p90, 1),
        "mean": round(statistics.fmean(ordered), 1),
        "max": round(ordered[-1], 1),
    }


def share(part: float, whole: float) -> float | None:
    """part / whole as a percentage with one decimal, or None when whole is 0."""
    if not whole:
        return None
    return round(100.0 * part / whole, 1)


def availability(down_ms: int, devices: int, span_ms: int) -> float | None:
    """The share of device time up, as a percentage (None when there is no device or no time)."""
    if not devices or span_ms <= 0:
        return None
    return round(100.0 * max(0.0, 1 - down_ms / (devices * span_ms)), 1)


def overlap_ms(begin: dt.datetime, end: dt.datetime, window_start: dt.datetime, window_end: dt.datetime) -> int:
    """How much of [begin, end) lies inside [window_start, window_end), in ms."""
    lo, hi = max(begin, window_start), min(end, window_end)
    return max(0, int((hi - lo).total_seconds() * 1000))


def floating_status(registered_on: dt.date | None, expires_on: dt.date | None, ref: dt.date) -> str:
    """valid / expiring (within 30 days) / expired / unregistered, as of the reference date."""
    if registered_on is None:
        return "unregistered"
    if expires_on is None:
        return "valid"
    if expires_on < ref:
        return "expired"
    if expires_on < ref + dt.timedelta(days=30):
        return "expiring"
    return "valid"


def checkpoint_of(entry: Any, by_seq: dict[int, str], known: set[str]) -> str | None:
    """The checkpoint device named by one entry of a round's ``late``/``missed`` list.

    Accepted: a checkpoint device id, a sequence number of the route, or an object with
    ``device``/``checkpoint``/``seq``. Anything else is counted in the totals only."""
    if isinstance(entry, dict):
        for key in ("device", "checkpoint", "device_id"):
            if isinstance(entry.get(key), str) and entry[key] in known:
                return str(entry[key])
        entry = entry.get("seq")
    if isinstance(entry, bool):
        return None
    if isinstance(entry, int):
        return by_seq.get(entry)
    if isinstance(entry, str):
        if entry in known:
            return entry
        if entry.isdigit():
            return by_seq.get(int(entry))
    return None


def handling_kind(statuses: Sequence[str], human: bool) -> str:
    """How an alert ended: open, handled by people, a false alarm, or cleared by the system."""
    final = statuses[-1] if statuses else "new"
    if final == "false_alarm":
        return "false_alarm"
    if final == "resolved":
        return "handled" if human else "auto"
    return "open"
