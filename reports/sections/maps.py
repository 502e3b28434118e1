"""The map section: per community, its boundary and building footprints, paths, the period's alerts
and the patrol checkpoints with their on-time share; over report_map_limit communities, one overview
of their positions and alert counts instead."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select

from geodata.solid import BuildingInput
from registry import queries
from registry.models import Community, Device, PathSegment
from reports.model import MapData
from reports.sections.context import LoadContext, SectionResult, chunks

SEVERITY_RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3}


@dataclass(frozen=True, kw_only=True)
class MapResult(SectionResult):
    """The maps of the communities (none past the limit: then the overview chart)."""

    maps: list[MapData]


def build(ctx: LoadContext, *, checkpoint_share: Mapping[str, float | None]) -> MapResult:
    """Boundary, buildings by category, paths, the period's alerts and checkpoints per community."""
    session = ctx.session
    alerts = ctx.alerts
    if len(ctx.ids) > ctx.settings.report_map_limit:
        per: Counter[str] = Counter(a.record.community_id for a in alerts)
        overview = [
            (ctx.names.get(cid, cid), lat, lon, per[cid])
            for ids in chunks(ctx.ids, 200)
            for cid, lat, lon in session.execute(
                select(Community.id, Community.center_lat, Community.center_lon).where(Community.id.in_(ids))
            )
        ]
        return MapResult(charts={"overview": overview}, maps=[])
    out = []
    checkpoints: dict[str, list[tuple[float, float, float | None]]] = defaultdict(list)
    device_ids = sorted(checkpoint_share)
    for ids in chunks(device_ids):
        for did, cid, lat, lon in session.execute(
            select(Device.id, Device.community_id, Device.lat, Device.lon).where(Device.id.in_(ids))
        ):
            checkpoints[cid].append((lat, lon, checkpoint_share.get(did)))
    points: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
    worst: dict[str, dict[str, str]] = defaultdict(dict)  # community → building → most serious severity
    for a in alerts:
        if a.record.lat is not None and a.record.lon is not None:
            points[a.record.community_id].append((a.record.lat, a.record.lon, a.record.severity))
        building = (a.record.subject or {}).get("building")
        if isinstance(building, str) and building:
            seen = worst[a.record.community_id].get(building)
            if seen is None or SEVERITY_RANK[a.record.severity] < SEVERITY_RANK[seen]:
                worst[a.record.community_id][building] = a.record.severity
    scope = ctx.principal.scope
    for cid in ctx.ids:
        community = session.get(Community, cid)
        if community is None:
            continue
        layer = queries.building_layer(session, scope, cid)
        buildings = [(f["geometry"], str(f["properties"]["category"])) for f in layer["features"]]
        paths = [
            json.loads(g) for g in session.scalars(select(PathSegment.geometry).where(PathSegment.community_id == cid))
        ]
        out.append(
            MapData(
                community=cid,
                name=ctx.names.get(cid, cid),
                boundary=json.loads(community.boundary) if community.boundary else None,
                buildings=buildings,
                paths=paths,
                alerts=points.get(cid, []),
                checkpoints=checkpoints.get(cid, []),
                center=(community.center_lat, community.center_lon),
                solids=[
                    BuildingInput(
                        id=str(f["properties"]["id"]),
                        geometry=f["geometry"],
                        floors=f["properties"].get("floors"),
                        category=str(f["properties"]["category"]),
                        elder=bool(f["properties"].get("elder")),
                    )
                    for f in layer["features"]
                ],
                alert_buildings=dict(worst.get(cid, {})),
            )
        )
    return MapResult(maps=out)
