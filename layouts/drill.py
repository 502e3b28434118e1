"""Building drill-down: floors and households of a building (who lives where, rental and elder
marks, devices), masked per role."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dash import html
from sqlalchemy import select
from sqlalchemy.orm import Session

from auth.masking import NAMED_ROLES, name_for
from auth.principal import Principal
from core.i18n import t
from core.timefmt import local_text, utc_to_ms
from registry.models import Building, Device, Household, Person, PersonTag, Residency
from registry.modes import AWAY, ModePeriod
from store.sql import utcnow
from store.stores import Stores


@dataclass(frozen=True)
class BuildingFacts:
    """A building's households with their residents (name, tags) and in-home devices (id, type)."""

    id: str
    community: str
    title: str
    name: str  # the building's name as addresses read (52幢), in the page's language
    floors: int
    units: int
    households: list[Household]
    residents: dict[str, list[tuple[str, set[str]]]]
    devices: dict[str, list[tuple[str, str]]]
    counts: dict[str, int]
    away: dict[str, str]


def load_building(stores: Stores, principal: Principal, building_id: str, lang: str) -> BuildingFacts | None:
    """A building's facts, or None when the building is unknown or outside the caller's scope."""
    scope = principal.scope
    with stores.sessions() as session:
        building = session.get(Building, building_id)
        if (
            building is None
            or not scope.allows_community(building.community_id)
            or not scope.allows_grid(building.grid_id)
        ):
            return None
        households = list(session.scalars(select(Household).where(Household.building_id == building_id)))
        residents: dict[str, list[tuple[str, set[str]]]] = defaultdict(list)
        tags: dict[str, set[str]] = defaultdict(set)
        rows = session.execute(
            select(Residency.household_id, Person.id, Person.name)
            .join(Person, Person.id == Residency.person_id)
            .where(Residency.household_id.in_([h.id for h in households]))
        ).all()
        for pid, tag in session.execute(
            select(PersonTag.person_id, PersonTag.tag).where(PersonTag.person_id.in_([r[1] for r in rows]))
        ):
            tags[pid].add(tag)
        for household, pid, name in rows:
            residents[household].append((name, tags[pid]))
        away = away_notes(session, rows, lang, with_reason=principal.role in NAMED_ROLES)
        devices: dict[str, list[tuple[str, str]]] = defaultdict(list)
        counts: dict[str, int] = defaultdict(int)
        for device, dtype, device_household in session.execute(
            select(Device.id, Device.type, Device.household_id).where(Device.building_id == building_id)
        ):
            counts[dtype] += 1
            if device_household:
                devices[device_household].append((device, dtype))
        name = building.name_en or building.name if lang == "en" else building.name
        for h in households:
            session.expunge(h)
        return BuildingFacts(
            building.id,
            building.community_id,
            name,
            building.name,
            building.floors,
            building.units,
            households,
            dict(residents),
            dict(devices),
            dict(counts),
            away,
        )


def building_detail(stores: Stores, principal: Principal, building_id: str, lang: str) -> html.Div | None:
    """The drill-down panel, or None when the building is unknown or outside the caller's scope."""
    facts = load_building(stores, principal, building_id, lang)
    if facts is None:
        return None
    households, residents, away, counts = facts.households, facts.residents, facts.away, facts.counts
    devices = {h: [dtype for _, dtype in found] for h, found in facts.devices.items()}
    title, floors, units = facts.title, facts.floors, facts.units
    by_cell: dict[tuple[int, int], list[Household]] = defaultdict(list)
    for h in households:
        by_cell[(h.floor, h.unit)].append(h)
    show_people = principal.role in ("admin", "police", "grid_worker", "property")
    header = html.Tr([html.Th("")] + [html.Th(t("wall.unit", lang, n=u)) for u in range(1, units + 1)])
    body = []
    for floor in range(floors, 0, -1):
        cells: list[Any] = [html.Th(t("wall.floor", lang, n=floor))]
        for unit in range(1, units + 1):
            rooms = []
            for h in sorted(by_cell.get((floor, unit), []), key=lambda x: x.room):
                people = residents.get(h.id, [])
                elder = any("elderly_alone" in tg for _, tg in people)
                marks = ("★" if elder else "") + ("▣" if "smart_lock" in devices.get(h.id, []) else "")
                names = ", ".join(filter(None, (name_for(principal, n) for n, _ in people))) if show_people else ""
                gone = away.get(h.id, "") if show_people else ""
                rooms.append(
                    html.Div(
                        className=f"st-room st-cat-{h.category}"
                        + (" st-room-elder" if elder else "")
                        + (" st-room-gone" if gone else ""),
                        title=" · ".join(filter(None, (t(f"category.{h.category}", lang), gone))),
                        children=[
                            html.B(h.room),
                            html.Span(marks, className="st-room-marks"),
                            html.Div(names, className="st-room-names") if names else None,
                            html.Div(gone, className="st-room-away") if gone else None,
                        ],
                    )
                )
            cells.append(html.Td(rooms))
        body.append(html.Tr(cells))
    device_line = " · ".join(f"{t(f'device.{k}', lang)} {v}" for k, v in sorted(counts.items()))
    return html.Div(
        children=[
            html.Div(
                className="st-drill-head",
                children=[
                    html.Span(f"{t('wall.drill.title', lang)} · {title}"),
                    html.Button(
                        t("model3d.drill.open", lang),
                        id={"type": "drill-3d", "id": building_id},
                        className="st-drill-close st-drill-3d-open",
                    ),
                    html.Button(
                        t("wall.drill.close", lang),
                        id={"type": "drill-close", "id": building_id},
                        className="st-drill-close",
                    ),
                ],
            ),
            html.Div(f"{t('wall.drill.devices', lang)}: {device_line}", className="st-drill-devices"),
            html.Div(t("wall.drill.hidden", lang), className="st-drill-note") if not show_people else None,
            html.Table(className="st-drill-table", children=[html.Thead(header), html.Tbody(body)]),
        ]
    )


def away_notes(session: Session, residents: Sequence[Any], lang: str, *, with_reason: bool) -> dict[str, str]:
    """household id → 外出 至 12-20 18:00 (· the reason, for the roles that work with named people),
    for the households whose residents (rows of household, person, name) are away now."""
    people = {pid: household for household, pid, _ in residents}
    if not people:
        return {}
    now = utcnow()
    notes: dict[str, str] = {}
    for period in session.scalars(
        select(ModePeriod)
        .where(
            ModePeriod.kind == AWAY,
            ModePeriod.subject.in_(sorted(people)),
            ModePeriod.ended_at.is_(None),
            ModePeriod.starts_at <= now,
            ModePeriod.until > now,
        )
        .order_by(ModePeriod.id)
    ):
        text = t("drill.away", lang, until=local_text(utc_to_ms(period.until), "%m-%d %H:%M"))
        notes[people[period.subject]] = f"{text} · {period.reason}" if with_reason and period.reason else text
    return notes
