"""The city view's data (全市态势): every community in the caller's scope as one point, coloured by
its open alerts; the city's key figures and charts.

Cheap at 1,537 communities: the open-alert counts are kept per community by the alert scripts
(`alerts.live`, one small hash each, read in one pipeline); registry figures are computed once
per few minutes and shared by every web worker through Redis; a refresh re-reads only the
communities whose counts changed since the last one (`city_changes`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from alerts.access import counts_for
from alerts.live import AlertStore
from auth.principal import Principal
from core.i18n import t
from core.settings import Settings
from geodata.gcj02 import for_display
from registry.models import Community
from registry.queries import Scope
from registry.stats import community_stats, count_figures
from store.stores import Stores

SEVERITIES = ("critical", "high", "medium", "low")
REGISTRY_TTL_S = 300
TOP_COMMUNITIES = 10
SEVERITY_COLORS = {"critical": "#ff1f5a", "high": "#ff5a36", "medium": "#ffb020", "low": "#4fc3f7"}  # theme.css


@dataclass(frozen=True)
class CityCommunity:
    """One community of the city view."""

    id: str
    name: str
    name_en: str
    district: str
    lat: float
    lon: float

    def label(self, lang: str) -> str:
        return self.name_en or self.name if lang == "en" else self.name


def communities(stores: Stores, scope: Scope) -> list[CityCommunity]:
    """The communities in scope, ordered by id."""
    query = select(
        Community.id, Community.name, Community.name_en, Community.district, Community.center_lat, Community.center_lon
    ).order_by(Community.id)
    if scope.communities is not None:
        query = query.where(Community.id.in_(sorted(scope.communities)))
    with stores.sessions() as session:
        return [CityCommunity(*row) for row in session.execute(query)]


def open_counts(stores: Stores, ids: list[str], principal: Principal) -> dict[str, dict[str, int]]:
    """community → its open-alert counts (``sev:S``, ``type:T``) of the alerts the principal may see."""
    counts = AlertStore(stores.redis, stores.keys).open_counts(ids)
    return {c: counts_for(principal, n, stores.settings) for c, n in counts.items()}


def changed_since(stores: Stores, since_ms: int) -> list[str]:
    """Communities whose open-alert counts changed at or after since_ms."""
    return list(stores.redis.zrangebyscore(stores.keys.city_changes, since_ms, "+inf"))


def registry_figures(stores: Stores) -> dict[str, dict[str, int]]:
    """community → its registry figures (``registry/stats.py``, the same the wall, the reports and
    ``manage.py stats`` show: 出租房 means one thing everywhere); shared through Redis for a few
    minutes (the registry changes by imports, not by the second)."""
    key = stores.keys.city_registry
    cached = stores.redis.get(key)
    if cached:
        figures: dict[str, dict[str, int]] = json.loads(cached)
        return figures
    with stores.sessions() as session:
        out = {row["id"]: count_figures(row) for row in community_stats(session)["communities"]}
    stores.redis.set(key, json.dumps(out), ex=REGISTRY_TTL_S)
    return out


def severity_counts(counts: dict[str, int]) -> dict[str, int]:
    """{critical: n, high: n, medium: n, low: n} of one community's counts."""
    return {s: counts.get(f"sev:{s}", 0) for s in SEVERITIES}


def worst(counts: dict[str, int]) -> str:
    """The most serious open severity, or "none"."""
    return next((s for s in SEVERITIES if counts.get(f"sev:{s}", 0) > 0), "none")


def community_feature(c: CityCommunity, counts: dict[str, int], lang: str, settings: Settings) -> dict[str, Any]:
    """The community's point on the city map, as the map draws it."""
    sev = severity_counts(counts)
    return for_display(
        settings,
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [round(c.lon, 6), round(c.lat, 6)]},
            "properties": {
                "id": c.id,
                "name": c.label(lang),
                "district": c.district,
                "worst": worst(counts),
                "open": sum(sev.values()),
                **{s[0]: n for s, n in sev.items() if n},
            },
        },
    )


def city_layer(
    comms: list[CityCommunity], counts: dict[str, dict[str, int]], lang: str, settings: Settings
) -> dict[str, Any]:
    """Every community as a point (the browser clusters them)."""
    return {
        "type": "FeatureCollection",
        "features": [community_feature(c, counts.get(c.id, {}), lang, settings) for c in comms],
    }


def key_figures(
    comms: list[CityCommunity], counts: dict[str, dict[str, int]], registry: dict[str, dict[str, int]]
) -> dict[str, Any]:
    """The city's key figures: communities, residents, rentals, elders, devices; open alerts by
    severity and how many communities have a serious one."""
    totals: dict[str, int] = {}
    for c in comms:
        for name, n in registry.get(c.id, {}).items():
            totals[name] = totals.get(name, 0) + n
    by_severity = dict.fromkeys(SEVERITIES, 0)
    serious = 0
    for c in comms:
        sev = severity_counts(counts.get(c.id, {}))
        for s, n in sev.items():
            by_severity[s] += n
        if sev["critical"] or sev["high"]:
            serious += 1
    return {"communities": len(comms), **totals, "open_alerts": by_severity, "serious_communities": serious}


def by_district(
    comms: list[CityCommunity], counts: dict[str, dict[str, int]]
) -> tuple[list[str], dict[str, list[int]]]:
    """Districts (most open alerts first) and their open alerts per severity."""
    per: dict[str, dict[str, int]] = {}
    for c in comms:
        row = per.setdefault(c.district or "—", dict.fromkeys(SEVERITIES, 0))
        for s, n in severity_counts(counts.get(c.id, {})).items():
            row[s] += n
    order = sorted(per, key=lambda d: (-sum(per[d].values()), d))
    return order, {s: [per[d][s] for d in order] for s in SEVERITIES}


def top_communities(
    comms: list[CityCommunity], counts: dict[str, dict[str, int]], n: int = TOP_COMMUNITIES
) -> list[tuple[CityCommunity, dict[str, int]]]:
    """The communities with the most serious open alerts (critical, then high, then all)."""
    ranked = []
    for c in comms:
        sev = severity_counts(counts.get(c.id, {}))
        if sum(sev.values()):
            ranked.append((c, sev))
    ranked.sort(key=lambda cs: (-cs[1]["critical"], -cs[1]["high"], -sum(cs[1].values()), cs[0].id))
    return ranked[:n]


def by_type(comms: list[CityCommunity], counts: dict[str, dict[str, int]]) -> dict[str, int]:
    """Open alerts per type over the city."""
    out: dict[str, int] = {}
    for c in comms:
        for key, n in counts.get(c.id, {}).items():
            if key.startswith("type:"):
                out[key[5:]] = out.get(key[5:], 0) + n
    return out


def severity_label(severity: str, lang: str) -> str:
    """The translated severity name."""
    return t(f"severity.{severity}", lang)
