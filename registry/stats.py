"""Registry counts per community (interfaces §5)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry.models import DEVICE_TYPES, Building, Community, Device, Grid, Guard, Household, Person, PersonTag


def _count_by(session: Session, column: Any, *where: Any) -> dict[str, int]:
    rows = session.execute(select(column, func.count()).where(*where).group_by(column)).all()
    return {str(key): int(n) for key, n in rows}


def community_stats(session: Session, community_ids: list[str] | None = None) -> dict[str, Any]:
    """The figures of interfaces §5 for every community (or the given ones)."""
    query = select(Community).order_by(Community.id)
    if community_ids is not None:
        query = query.where(Community.id.in_(community_ids))
    communities = list(session.scalars(query))
    ids = [c.id for c in communities]
    buildings = _count_by(
        session, Building.community_id, Building.community_id.in_(ids), Building.kind == "residential"
    )
    grids = _count_by(session, Grid.community_id, Grid.community_id.in_(ids))
    guards = _count_by(session, Guard.community_id, Guard.community_id.in_(ids))
    residents = _count_by(session, Person.community_id, Person.community_id.in_(ids))
    hh_rows = session.execute(
        select(Household.community_id, Household.category, func.count())
        .where(Household.community_id.in_(ids))
        .group_by(Household.community_id, Household.category)
    ).all()
    households: dict[str, dict[str, int]] = {}
    for cid, category, n in hh_rows:
        households.setdefault(cid, {})[category] = int(n)
    elders = dict(
        session.execute(
            select(Person.community_id, func.count())
            .join(PersonTag, PersonTag.person_id == Person.id)
            .where(PersonTag.tag == "elderly_alone", Person.community_id.in_(ids))
            .group_by(Person.community_id)
        ).all()
    )
    dev_rows = session.execute(
        select(Device.community_id, Device.type, func.count())
        .where(Device.community_id.in_(ids))
        .group_by(Device.community_id, Device.type)
    ).all()
    devices: dict[str, dict[str, int]] = {cid: dict.fromkeys(DEVICE_TYPES, 0) for cid in ids}
    for cid, dtype, n in dev_rows:
        devices[cid][dtype] = int(n)
    out = []
    for c in communities:
        hh = households.get(c.id, {})
        out.append(
            {
                "id": c.id,
                "name": c.name,
                "buildings": buildings.get(c.id, 0),
                "households": sum(hh.values()),
                "residents": residents.get(c.id, 0),
                "rentals": hh.get("rental", 0),
                "group_rentals": hh.get("group_rental", 0),
                "elderly_alone": int(elders.get(c.id, 0)),
                "grids": grids.get(c.id, 0),
                "guards": guards.get(c.id, 0),
                "devices": devices[c.id],
            }
        )
    return {"communities": out}


FIGURES = ("residents", "households", "rentals", "group_rentals", "elderly_alone", "devices", "guards")


def count_figures(row: dict[str, Any]) -> dict[str, int]:
    """The summable figures of one community's stats row (devices in all), as the views add them up."""
    return {name: sum(row[name].values()) if isinstance(row[name], dict) else int(row[name]) for name in FIGURES}
