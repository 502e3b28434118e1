"""Read API of the registry for views and the HTTP API (map layers, lists).

Every function takes the caller's scope (from the server session or the token, never from the
browser) and returns only what lies inside it.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.i18n import t
from core.timefmt import iso_utc, ms_to_utc, utc_to_ms
from geodata.solid import Projection, flat_reason, footprint
from registry.models import (
    Building,
    Community,
    Device,
    Grid,
    Guard,
    Household,
    PathSegment,
    PatrolRoute,
    Person,
    PersonTag,
    Residency,
)
from registry.modes import MAINTENANCE, ModePeriod
from store.sql import utcnow


@dataclass(frozen=True)
class Scope:
    """What a caller may see: communities (None = all) and, for a grid worker, one grid."""

    communities: frozenset[str] | None = None
    grid: str | None = None

    def allows_community(self, community: str) -> bool:
        """True when the community is inside the scope."""
        return self.communities is None or community in self.communities

    def allows_grid(self, grid: str | None) -> bool:
        """True when the grid is inside the scope (a grid worker sees only their own)."""
        return self.grid is None or grid == self.grid


EVERYTHING = Scope()


def feature(geometry: dict[str, Any], **properties: Any) -> dict[str, Any]:
    """A GeoJSON Feature."""
    return {"type": "Feature", "geometry": geometry, "properties": properties}


def collection(features: list[dict[str, Any]]) -> dict[str, Any]:
    """A GeoJSON FeatureCollection."""
    return {"type": "FeatureCollection", "features": features}


def communities(session: Session, scope: Scope) -> list[Community]:
    """The communities inside the scope, by name."""
    query = select(Community).order_by(Community.id)
    if scope.communities is not None:
        query = query.where(Community.id.in_(sorted(scope.communities)))
    return list(session.scalars(query))


def community(session: Session, scope: Scope, community_id: str) -> Community | None:
    """One community, or None when unknown or outside the scope."""
    if not scope.allows_community(community_id):
        return None
    return session.get(Community, community_id)


def boundary_layer(c: Community) -> dict[str, Any]:
    """The community boundary."""
    return collection([feature(json.loads(c.boundary), id=c.id, name=c.name, name_en=c.name_en)])


def grid_layer(session: Session, scope: Scope, community_id: str) -> dict[str, Any]:
    """The community's grids (a grid worker sees their own grid only)."""
    grids = session.scalars(select(Grid).where(Grid.community_id == community_id).order_by(Grid.id))
    return collection(
        [
            feature(json.loads(g.polygon), id=g.id, name=g.name, name_en=g.name_en, color=g.color)
            for g in grids
            if scope.allows_grid(g.id)
        ]
    )


def path_layer(session: Session, community_id: str) -> dict[str, Any]:
    """Roads and paths (not personal data: everyone in the community may see them)."""
    segments = session.scalars(select(PathSegment).where(PathSegment.community_id == community_id))
    return collection([feature(json.loads(p.geometry), kind=p.kind, name=p.name) for p in segments])


def path_geometries(session: Session, community_id: str) -> list[dict[str, Any]]:
    """The GeoJSON geometries of the community's roads and paths (its walkable network)."""
    segments = session.scalars(select(PathSegment).where(PathSegment.community_id == community_id))
    return [json.loads(p.geometry) for p in segments]


def building_category(counts: dict[str, int]) -> str:
    """The colour class of a building from its households' categories."""
    total = sum(counts.values()) or 1
    if counts.get("group_rental", 0) > 0:
        return "group_rental"
    if counts.get("rental", 0) / total >= 0.25:
        return "rental"
    if counts.get("vacant", 0) / total >= 0.5:
        return "vacant"
    return "owner"


def building_layer(session: Session, scope: Scope, community_id: str) -> dict[str, Any]:
    """Buildings with their category class, household counts and elder marks."""
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    for building_id, category, n in session.execute(
        select(Household.building_id, Household.category, func.count())
        .where(Household.community_id == community_id)
        .group_by(Household.building_id, Household.category)
    ):
        counts[building_id][category] = int(n)
    elders: dict[str, int] = {
        str(b): int(n)
        for b, n in session.execute(
            select(Household.building_id, func.count(func.distinct(Household.id)))
            .join(Residency, Residency.household_id == Household.id)
            .join(PersonTag, PersonTag.person_id == Residency.person_id)
            .where(Household.community_id == community_id, PersonTag.tag == "elderly_alone")
            .group_by(Household.building_id)
        )
    }
    features = []
    for b in session.scalars(select(Building).where(Building.community_id == community_id).order_by(Building.id)):
        if not scope.allows_grid(b.grid_id):
            continue
        c = counts.get(b.id, {})
        features.append(
            feature(
                json.loads(b.footprint),
                id=b.id,
                name=b.name,
                name_en=b.name_en,
                floors=b.floors,
                units=b.units,
                kind=b.kind,
                grid=b.grid_id,
                category="public" if b.kind != "residential" else building_category(c),
                households=sum(c.values()),
                rentals=c.get("rental", 0),
                group_rentals=c.get("group_rental", 0),
                elder=elders.get(b.id, 0),
            )
        )
    return collection(features)


HOUSEHOLD_DEVICE_TYPES = ("door_sensor", "smart_lock", "smoke_detector", "intercom", "water_meter", "power_meter")


def device_layer(
    session: Session, scope: Scope, community_id: str, group: str | None = None, *, now_ms: int | None = None
) -> dict[str, Any]:
    """Devices as points (no personal data); group "household" (in-home) or "frontend" (the rest). A
    device in maintenance at now_ms carries ``maintenance_until`` (RFC 3339, UTC)."""
    maintained = maintenance_ends(session, community_id, now_ms)
    query = (
        select(Device.id, Device.type, Device.name, Device.lat, Device.lon, Device.grid_id, Device.building_id)
        .where(Device.community_id == community_id, Device.type != "wearable")
        .order_by(Device.id)
    )
    if group == "household":
        query = query.where(Device.type.in_(HOUSEHOLD_DEVICE_TYPES))
    elif group == "frontend":
        query = query.where(Device.type.not_in(HOUSEHOLD_DEVICE_TYPES))
    return collection(
        [
            feature(
                {"type": "Point", "coordinates": [lon, lat]},
                id=did,
                type=dtype,
                name=name,
                grid=grid,
                building=building,
                **({"maintenance_until": maintained[did]} if did in maintained else {}),
            )
            for did, dtype, name, lat, lon, grid, building in session.execute(query)
            if scope.allows_grid(grid)
        ]
    )


def maintenance_ends(session: Session, community_id: str, now_ms: int | None = None) -> dict[str, str]:
    """device id → the end (RFC 3339, UTC) of its maintenance holding at now_ms (default: now)."""
    now = ms_to_utc(now_ms) if now_ms is not None else utcnow()
    rows = session.execute(
        select(ModePeriod.subject, ModePeriod.until).where(
            ModePeriod.community_id == community_id,
            ModePeriod.kind == MAINTENANCE,
            ModePeriod.ended_at.is_(None),
            ModePeriod.starts_at <= now,
            ModePeriod.until > now,
        )
    )
    return {device: iso_utc(utc_to_ms(until)) for device, until in rows}


def door_sensor_ids(session: Session, community_id: str) -> set[str]:
    """The community's door sensors (their silence threshold is sensor_silent_hours)."""
    return set(
        session.scalars(select(Device.id).where(Device.community_id == community_id, Device.type == "door_sensor"))
    )


def guards(session: Session, scope: Scope, community_id: str) -> list[Guard]:
    """The community's guards (a grid worker sees their own grid's and the unassigned ones)."""
    rows = session.scalars(select(Guard).where(Guard.community_id == community_id).order_by(Guard.id))
    return [g for g in rows if scope.grid is None or g.grid_id in (None, scope.grid)]


def elder_people_count(session: Session, community_id: str) -> int:
    """How many elders living alone the community has."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(Person)
            .join(PersonTag, PersonTag.person_id == Person.id)
            .where(Person.community_id == community_id, PersonTag.tag == "elderly_alone")
        )
        or 0
    )


def household_labels(session: Session, households: list[str], lang: str) -> dict[str, str]:
    """household id → its address as people read it (52幢2单元402室), for pages that list households."""
    out: dict[str, str] = {}
    wanted = sorted({h for h in households if h})
    for chunk in _batches(wanted):
        for hid, unit, room, name, name_en in session.execute(
            select(Household.id, Household.unit, Household.room, Building.name, Building.name_en)
            .join(Building, Building.id == Household.building_id)
            .where(Household.id.in_(chunk))
        ):
            building = name if lang == "zh" else (name_en or name)
            out[hid] = t("report.room", lang, building=building, unit=unit, room=room)
    return out


def _batches(values: list[str], size: int = 500) -> list[list[str]]:
    """The values in chunks a SQL ``IN`` takes on every database."""
    return [values[start : start + size] for start in range(0, len(values), size)]


def entity_labels(
    session: Session, values: list[str], lang: str, *, person_name: Callable[[str], str | None] = lambda n: n
) -> dict[str, str]:
    """id → what people read for each registry id among ``values`` (households 52幢2单元402室,
    buildings, devices 东门人脸门禁1, guards 志愿者 付宇宇, people, grids, patrol routes, and the
    assignee ``property``); one query per kind, whatever the number of ids. ``person_name``: how
    the reader may see a person's or guard's name (masking); None hides it. Unknown ids are left out."""
    wanted = sorted({v for v in values if isinstance(v, str) and v})
    if not wanted:
        return {}
    out = {v: t(f"actor.{v}", lang) for v in wanted if v in ("property", "system")}
    rest = [v for v in wanted if v not in out]
    out.update(household_labels(session, rest, lang))

    def pick(name: str, name_en: str | None) -> str:
        return name if lang == "zh" else (name_en or name)

    for chunk in _batches([v for v in rest if v not in out]):
        for bid, name, name_en in session.execute(
            select(Building.id, Building.name, Building.name_en).where(Building.id.in_(chunk))
        ):
            out[bid] = pick(name, name_en)
        for gid, name, name_en in session.execute(select(Grid.id, Grid.name, Grid.name_en).where(Grid.id.in_(chunk))):
            out[gid] = pick(name, name_en)
        for rid, name in session.execute(select(PatrolRoute.id, PatrolRoute.name).where(PatrolRoute.id.in_(chunk))):
            out[rid] = name
        for gid, name, kind in session.execute(select(Guard.id, Guard.name, Guard.kind).where(Guard.id.in_(chunk))):
            out[gid] = f"{t(f'guard.{kind}', lang)} {person_name(name) or ''}".strip()
        for pid, name in session.execute(select(Person.id, Person.name).where(Person.id.in_(chunk))):
            out[pid] = person_name(name) or t("label.person", lang)
        devices = list(
            session.execute(
                select(Device.id, Device.type, Device.name, Device.household_id, Device.building_id).where(
                    Device.id.in_(chunk)
                )
            )
        )
        places = household_labels(session, [d.household_id for d in devices if d.household_id], lang)
        buildings = {
            bid: pick(name, name_en)
            for bid, name, name_en in session.execute(
                select(Building.id, Building.name, Building.name_en).where(
                    Building.id.in_(sorted({d.building_id for d in devices if d.building_id}))
                )
            )
        }
        for did, dtype, name, household, building in devices:
            where = places.get(household or "") or buildings.get(building or "", "")
            if lang == "en" or not name:  # device names are Chinese: English names the type at the place
                out[did] = (
                    f"{where or name} · {t(f'device.{dtype}', lang)}" if where or name else t(f"device.{dtype}", lang)
                )
            else:
                out[did] = f"{where} {name}" if where and where not in name else name
    return out


def flat_buildings(session: Session, community_id: str | None = None) -> list[dict[str, str]]:
    """The buildings the 3D model draws as a flat outline (no floor count, a footprint that is not a
    valid polygon), each once: community, id, name, reason (geodata.solid), detail."""
    query = select(
        Building.community_id,
        Building.id,
        Building.name,
        Building.floors,
        Building.footprint,
        Building.lat,
        Building.lon,
    ).order_by(Building.community_id, Building.id)
    if community_id is not None:
        query = query.where(Building.community_id == community_id)
    out = []
    for community, bid, name, floors, text, lat, lon in session.execute(query):
        fp = footprint(text, Projection(lat or 0.0, lon or 0.0))
        reason = flat_reason(floors, fp)
        if reason is not None:
            out.append({"community": community, "id": bid, "name": name, "reason": reason, "detail": fp.detail})
    return out
