"""The wall screen's data, scoped to the caller: key figures, charts, live layers, the alert feed.

Pure assembly over the read APIs (registry queries, store.live, the alert history); the
callbacks decide what to send, these functions decide what it contains.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, or_, select

from alerts.access import alert_filter, visible_to
from alerts.lifecycle import is_open
from alerts.live import AlertStore
from alerts.models import AlertRecord, AlertStep
from analytics.rules.battery import battery_state
from auth.masking import name_for
from auth.principal import Principal
from core.i18n import t
from core.settings import Settings
from core.timefmt import aware, local_text
from geodata.gcj02 import for_display
from registry import queries
from registry.models import Building, Guard
from registry.stats import community_stats
from store import live
from store.stores import Stores

SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3}
GUARD_ON_DUTY_MS = 10 * 60_000
GROUP_ABOVE = 3  # more open minor alerts of one type than this become one card
TRAIL_POINTS = 8
GUARD_COLORS = {
    "police": "#2f7bff",
    "auxiliary": "#38e1ff",
    "grid_worker": "#35d07f",
    "volunteer": "#ffb020",
    "security": "#c061f0",
}


def key_figures(stores: Stores, principal: Principal, community: str, now: int) -> dict[str, Any]:
    """Residents, rentals, elders, devices online, guards on duty, open alerts by severity."""
    with stores.sessions() as session:
        stats = community_stats(session, [community])["communities"]
        doors = queries.door_sensor_ids(session, community)
    registry = stats[0] if stats else {}
    online, reported = live.device_counts(stores, community, now, doors)
    positions = live.guard_positions(stores, community, trail=False)
    on_duty = sum(1 for p in positions if now - p.ts < GUARD_ON_DUTY_MS)
    alerts = visible_alerts(stores, AlertStore(stores.redis, stores.keys).open_alerts(community), principal)
    by_severity = dict.fromkeys(SEVERITY_ORDER, 0)
    for alert in alerts:
        by_severity[alert["severity"]] = by_severity.get(alert["severity"], 0) + 1
    return {
        "residents": registry.get("residents", 0),
        "households": registry.get("households", 0),
        "rentals": registry.get("rentals", 0),
        "group_rentals": registry.get("group_rentals", 0),
        "elderly": registry.get("elderly_alone", 0),
        "buildings": registry.get("buildings", 0),
        "devices_online": round(100 * online / reported) if reported else None,
        "devices_reported": reported,
        "guards_on_duty": on_duty,
        "guards": registry.get("guards", 0),
        "open_alerts": by_severity,
    }


def visible_alerts(stores: Stores, alerts: list[dict[str, Any]], principal: Principal) -> list[dict[str, Any]]:
    """The alerts the principal may see, as they may see them (alerts/access.py)."""
    return visible_to(principal, alerts, stores.settings)


def building_names(stores: Stores, community: str, lang: str) -> dict[str, str]:
    """building id → display name."""
    with stores.sessions() as session:
        rows = session.execute(
            select(Building.id, Building.name, Building.name_en).where(Building.community_id == community)
        ).all()
    return {bid: (name_en or name) if lang == "en" else name for bid, name, name_en in rows}


def feed_items(
    stores: Stores, principal: Principal, community: str, lang: str, limit: int = 30
) -> list[dict[str, Any]]:
    """The live alert feed: every open alert (most severe first, then newest), then a few recently
    closed ones. Many minor alerts of one type (a network outage takes many devices offline at
    once) become one grouped card, so that the feed never turns into spam."""
    alerts = visible_alerts(stores, AlertStore(stores.redis, stores.keys).open_alerts(community), principal)
    closed = [
        a
        for a in visible_alerts(stores, AlertStore(stores.redis, stores.keys).feed(community, 15), principal)
        if not is_open(a["status"])
    ][:5]
    names = building_names(stores, community, lang)
    minor: dict[str, list[dict[str, Any]]] = {}
    items = []
    for a in alerts:
        if a["severity"] in ("low", "medium"):
            minor.setdefault(a["type"], []).append(a)
    grouped = {k for k, v in minor.items() if len(v) > GROUP_ABOVE}
    for a in alerts + closed:
        if a["type"] in grouped and is_open(a["status"]) and a["severity"] in ("low", "medium"):
            continue
        items.append(feed_item(a, names, lang))
    for alert_type in grouped:
        group = minor[alert_type]
        newest = max(group, key=lambda a: a.get("updated_at", a["detected_at"]))
        item = feed_item(newest, names, lang)
        item.update(
            id=f"group:{alert_type}",
            count=len(group),
            grouped=True,
            where=t("wall.grouped", lang, n=len(group)),
            location={},
        )
        items.append(item)
    items.sort(key=lambda i: (not i["open"], SEVERITY_ORDER.get(i["severity"], 9), _neg_iso(i["updated_at"])))
    return items[:limit]


def feed_item(a: dict[str, Any], names: dict[str, str], lang: str) -> dict[str, Any]:
    """One alert as a card of the feed (and a point of the alert layer)."""
    subject = a.get("subject", {})
    where = names.get(subject.get("building", ""), "")
    if subject.get("household"):
        where = f"{where} {subject['household'].rsplit('-', 2)[-2]}-{subject['household'].rsplit('-', 1)[-1]}"
    return {
        "id": a["id"],
        "type": a["type"],
        "label": t(f"alert.type.{a['type']}", lang),
        "severity": a["severity"],
        "status": a["status"],
        "status_label": t(f"status.{a['status']}", lang),
        "where": where.strip(),
        "detected_at": a["detected_at"],
        "updated_at": a.get("updated_at", a["detected_at"]),
        "count": a.get("count", 1),
        "location": a.get("location") or {},
        "grouped": False,
        "flapping": bool(a.get("flapping")),
        "open": is_open(a["status"]),
    }


def _neg_iso(text: str) -> float:
    return -dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def alert_layer(items: list[dict[str, Any]], settings: Settings) -> dict[str, Any]:
    """Open alerts as points for the map (pulsing markers), as the map draws them."""
    features = [
        queries.feature(
            {"type": "Point", "coordinates": [i["location"]["lon"], i["location"]["lat"]]},
            id=i["id"],
            severity=i["severity"],
            label=i["label"],
            status=i["status"],
        )
        for i in items
        if i["open"] and i["location"].get("lat") is not None
    ]
    return for_display(settings, queries.collection(features))


def low_batteries(readings: dict[str, tuple[float, int | None]], threshold: float) -> dict[str, list[Any]]:
    """device → [battery %, when it was reported in Beijing time] of each device at or below the
    threshold of device.battery_low: the map's low-battery marks (a device layer's ``hideout``)."""
    return {
        device: [round(level), local_text(ts, "%m-%d %H:%M") if ts is not None else ""]
        for device, (level, ts) in readings.items()
        if battery_state(level, threshold) == "low"
    }


def guard_roster(stores: Stores, principal: Principal, community: str, lang: str) -> list[dict[str, Any]]:
    """The community's guards in a stable order (the map layer's feature indexes)."""
    with stores.sessions() as session:
        guards = queries.guards(session, principal.scope, community)
        return [
            {
                "id": g.id,
                "kind": g.kind,
                "kind_label": t(f"guard.{g.kind}", lang),
                "name": name_for(principal, g.name) or t(f"guard.{g.kind}", lang),
            }
            for g in guards
        ]


def guard_layer(
    stores: Stores,
    roster: list[dict[str, Any]],
    community: str,
    center: tuple[float, float],
    now: int,
    positions: dict[str, live.GuardPosition] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Guards as points and their short trails as lines, both indexed in roster order (so that a
    refresh can patch one guard by its index), as the map draws them. ``positions``: given (the
    replay's, at a past moment), else the live ones."""
    if positions is None:
        positions = {
            p.guard: p
            for p in live.guard_positions(stores, community, [g["id"] for g in roster], trail_points=TRAIL_POINTS)
        }
    points, trails = [], []
    for g in roster:
        p = positions.get(g["id"])
        active = p is not None and now - p.ts < GUARD_ON_DUTY_MS
        lat, lon = (p.lat, p.lon) if p is not None else center
        color = GUARD_COLORS.get(g["kind"], "#ffffff")
        points.append(
            queries.feature(
                {"type": "Point", "coordinates": [lon, lat]},
                id=g["id"],
                kind=g["kind"],
                name=g["name"],
                label=g["kind_label"],
                active=active,
                color=color,
            )
        )
        path = [[x[1], x[0]] for x in reversed(p.trail)] if p is not None and active else []
        path = path if len(path) > 1 else [[lon, lat], [lon, lat]]
        trails.append(
            queries.feature({"type": "LineString", "coordinates": path}, id=g["id"], color=color, active=active)
        )
    settings = stores.settings
    return for_display(settings, queries.collection(points)), for_display(settings, queries.collection(trails))


def alerts_by_type_24h(stores: Stores, principal: Principal, community: str, now: int) -> dict[str, int]:
    """How many alerts of each type were detected in the last 24 hours (history)."""
    since = dt.datetime.fromtimestamp((now - 86_400_000) / 1000, tz=dt.UTC)
    query = (
        select(AlertRecord.type, func.count())
        .where(AlertRecord.community_id == community, AlertRecord.detected_at >= since)
        .group_by(AlertRecord.type)
    )
    with stores.sessions() as session:
        return {str(k): int(v) for k, v in session.execute(alert_filter(principal, stores.settings).narrow(query))}


def response_minutes(stores: Stores, principal: Principal, community: str, now: int) -> dict[str, list[float]]:
    """Minutes from detection to each handling stage, over the last 7 days."""
    since = dt.datetime.fromtimestamp((now - 7 * 86_400_000) / 1000, tz=dt.UTC)
    query = (
        select(AlertRecord.detected_at, AlertStep.status, func.min(AlertStep.at))
        .join(AlertStep, AlertStep.alert_id == AlertRecord.id)
        .where(
            AlertRecord.community_id == community,
            AlertRecord.detected_at >= since,
            AlertStep.status.in_(["acknowledged", "dispatched", "on_scene", "resolved"]),
            # the system's own steps (escalations, re-offers) are no response; an arrival the geofence saw is
            or_(AlertStep.actor != "system", AlertStep.action == "task_arrive"),
        )
        .group_by(AlertRecord.id, AlertRecord.detected_at, AlertStep.status)
    )
    query = alert_filter(principal, stores.settings).narrow(query)
    out: dict[str, list[float]] = {"acknowledged": [], "dispatched": [], "on_scene": [], "resolved": []}
    with stores.sessions() as session:
        for detected, status, first in session.execute(query):
            out[status].append(max(0.0, (aware(first) - aware(detected)).total_seconds() / 60))
    return out


def guard_kinds(stores: Stores, community: str) -> dict[str, str]:
    """guard id → kind."""
    with stores.sessions() as session:
        return dict(session.execute(select(Guard.id, Guard.kind).where(Guard.community_id == community)).all())
