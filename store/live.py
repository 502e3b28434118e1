"""Read API of the live state in Redis (projections written by the analytics workers).

Views and routes call these functions; none of them knows a Redis key.
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from store.stores import Stores

HOUR_MS = 3_600_000


def version(stores: Stores, community: str) -> int:
    """The community's change counter (cheap to poll)."""
    return int(stores.redis.get(stores.keys.version(community)) or 0)


def _cutoffs(stores: Stores, now_ms: int) -> tuple[int, int]:
    """(last-seen cutoff of most devices, of door sensors): older than that is offline."""
    s = stores.settings
    return now_ms - int(s.device_offline_hours * HOUR_MS), now_ms - int(s.sensor_silent_hours * HOUR_MS)


def offline_devices(stores: Stores, community: str, now_ms: int, door_sensors: Collection[str]) -> set[str]:
    """Devices heard from before, but not within their type's threshold: ``device_offline_hours``,
    door sensors ``sensor_silent_hours`` (the thresholds of ``device.offline`` and ``sensor.silent``).
    ``door_sensors``: the community's door sensors (``registry.queries.door_sensor_ids``)."""
    fast, slow = _cutoffs(stores, now_ms)
    candidates = stores.redis.zrangebyscore(
        stores.keys.device_seen(community), "-inf", max(fast, slow), withscores=True
    )
    return {device for device, seen in candidates if seen <= (slow if device in door_sensors else fast)}


def device_status(
    stores: Stores, community: str, now_ms: int | None = None, *, door_sensors: Collection[str]
) -> dict[str, str]:
    """online / offline per device that has reported at least once."""
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    seen = stores.redis.zrange(stores.keys.device_seen(community), 0, -1)
    offline = offline_devices(stores, community, now, door_sensors)
    return {device: ("offline" if device in offline else "online") for device in seen}


def device_counts(stores: Stores, community: str, now_ms: int, door_sensors: Collection[str]) -> tuple[int, int]:
    """(devices heard from within their type's threshold, devices ever heard from)."""
    total = int(stores.redis.zcard(stores.keys.device_seen(community)))
    return total - len(offline_devices(stores, community, now_ms, door_sensors)), total


def last_seen(stores: Stores, community: str) -> dict[str, int]:
    """device → time (ms) of the newest event heard from it."""
    return {d: int(ts) for d, ts in stores.redis.zrange(stores.keys.device_seen(community), 0, -1, withscores=True)}


def device_states(stores: Stores, community: str) -> dict[str, dict[str, Any]]:
    """device → its last reported state (``{"battery", "ts"}`` of its last heartbeat with a battery)."""
    return {d: json.loads(v) for d, v in stores.redis.hgetall(stores.keys.device_state(community)).items()}


def batteries(stores: Stores, community: str, devices: Collection[str] | None = None) -> dict[str, tuple[float, int]]:
    """device → (battery %, time in ms) of its last heartbeat that reported one (of ``devices`` only
    when given: one HMGET instead of the whole hash)."""
    if devices is None:
        states = device_states(stores, community)
    else:
        wanted = list(devices)
        values = stores.redis.hmget(stores.keys.device_state(community), wanted) if wanted else []
        states = {d: json.loads(v) for d, v in zip(wanted, values, strict=True) if v is not None}
    out = {}
    for device, state in states.items():
        level, ts = state.get("battery"), state.get("ts")
        if isinstance(level, int | float) and not isinstance(level, bool) and isinstance(ts, int):
            out[device] = (float(level), ts)
    return out


def door_activity(stores: Stores, community: str) -> dict[str, int]:
    """door sensor → time (ms) of its last door contact."""
    return {d: int(ts) for d, ts in stores.redis.zrange(stores.keys.door_last(community), 0, -1, withscores=True)}


@dataclass
class GuardPosition:
    """A guard's live position."""

    guard: str
    lat: float
    lon: float
    ts: int
    trail: list[tuple[float, float]]


def guard_positions(
    stores: Stores, community: str, guards: list[str] | None = None, *, trail: bool = True, trail_points: int = 10
) -> list[GuardPosition]:
    """The last known position (and short trail) of the community's guards (or the given ones)."""
    key = stores.keys.guard_state(community)
    raw = stores.redis.hmget(key, guards) if guards is not None else None
    items = (
        zip(guards, raw, strict=True) if guards is not None and raw is not None else stores.redis.hgetall(key).items()
    )
    found = [(g, json.loads(v)) for g, v in items if v]
    trails: list[Any] = []
    if trail and found:
        pipe = stores.redis.pipeline(transaction=False)
        for guard, _ in found:
            pipe.lrange(stores.keys.guard_trail(community, guard), 0, trail_points - 1)
        trails = pipe.execute()
    out = []
    for i, (guard, state) in enumerate(found):
        points = [(p[0], p[1]) for p in (json.loads(x) for x in trails[i])] if trails else []
        out.append(GuardPosition(guard, float(state["lat"]), float(state["lon"]), int(state["ts"]), points))
    return out


def guards_near(stores: Stores, community: str, lat: float, lon: float, radius_m: float) -> list[tuple[str, float]]:
    """Guards within radius_m of a point, nearest first: (guard, metres)."""
    rows = stores.redis.geosearch(
        stores.keys.guards_geo(community),
        longitude=lon,
        latitude=lat,
        radius=radius_m,
        unit="m",
        sort="ASC",
        withdist=True,
    )
    return [(str(name), float(dist)) for name, dist in rows]


def changes_since(stores: Stores, community: str, since_ms: int) -> dict[str, list[str]]:
    """Features changed after since_ms, by kind (device, guard, alert)."""
    members = stores.redis.zrangebyscore(stores.keys.changes(community), f"({since_ms}", "+inf")
    out: dict[str, list[str]] = {"device": [], "guard": [], "alert": []}
    for member in members:
        kind, _, ident = member.partition(":")
        out.setdefault(kind, []).append(ident)
    return out


def forget_changes(stores: Stores, community: str, before_ms: int) -> None:
    """Drop change marks older than before_ms (they only serve recent deltas)."""
    stores.redis.zremrangebyscore(stores.keys.changes(community), "-inf", before_ms)


def household_log(stores: Stores, community: str, household: str, limit: int = 20) -> list[dict[str, Any]]:
    """A household's recent lock and gate events, newest first."""
    return [json.loads(x) for x in stores.redis.lrange(stores.keys.household_log(community, household), 0, limit - 1)]


def checkpoint_visits(stores: Stores, community: str) -> dict[str, int]:
    """checkpoint device → time (ms) of its latest patrol check-in."""
    raw = stores.redis.hgetall(stores.keys.rule_state(community, "patrol"))
    out = {}
    for key, value in raw.items():
        if key.startswith("cp:"):
            times = json.loads(value)
            if times:
                out[key[3:]] = int(max(times))
    return out
