"""Registry reads of interfaces §3 (devices, households, people), the audited unmask, the audit log."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, jsonify, request, stream_with_context
from flask.typing import ResponseReturnValue
from sqlalchemy import Select, select
from sqlalchemy.orm import InstrumentedAttribute

from api.access import audit, deny, require
from api.context import stores
from api.paging import Pager, Q, SortKey
from auth.masking import mask_id_number, mask_phone, name_for
from auth.models import AuditEntry
from auth.policy import can
from auth.principal import Principal, current_principal
from auth.service import audit_csv_rows, audit_row, flush_anonymous_denials
from core.spreadsheet import csv_writer
from registry import queries
from registry.models import Device, Household, Person, PersonTag, Residency
from store.live import device_status

bp = Blueprint("registry_api", __name__, url_prefix="/api/v1")
UNMASK_REASON_MIN = 4  # characters of the reason an unmask must state (the OpenAPI document says it too)

DEVICE_ORDER = SortKey((Device.id,))
HOUSEHOLD_ORDER = SortKey((Household.id,))
PERSON_ORDER = SortKey((Person.id,))
AUDIT_ORDER = SortKey((AuditEntry.id,), descending=True)  # newest first


def scoped_communities(principal: Principal, requested: str | None) -> list[str] | None:
    """The communities to read: the requested one when in scope; None when it is outside the scope."""
    scope = principal.scope
    with stores().sessions() as session:
        visible = [c.id for c in queries.communities(session, scope)]
    if requested:
        return [requested] if requested in visible else None
    return visible


def bad_request(message: str) -> Response:
    """A 400 with one sentence."""
    response = jsonify({"error": message})
    response.status_code = 400
    return response


@bp.get("/devices")
@require("read.registry")
def devices() -> ResponseReturnValue:
    """Devices in the caller's scope by id, paged: ``?type=T&community=C&limit=N&cursor=C``."""
    principal = current_principal()
    wanted = scoped_communities(principal, request.args.get("community"))
    if wanted is None:
        return deny("community outside scope", target=request.full_path)
    pager = Pager.from_request(DEVICE_ORDER)
    query = in_grid(select(Device).where(Device.community_id.in_(wanted)), principal, Device.grid_id)
    if request.args.get("type"):
        query = query.where(Device.type == request.args["type"])
    state = live_device_status(wanted)
    with stores().sessions() as session:
        rows = [
            {
                "id": d.id,
                "type": d.type,
                "community": d.community_id,
                "building": d.building_id,
                "household": d.household_id,
                "lat": d.lat,
                "lon": d.lon,
                "status": state.get(d.id, "unknown"),
            }
            for d in pager.trim(session.scalars(pager.apply(query)).all())
        ]
    return pager.respond(rows)


def live_device_status(communities: list[str]) -> dict[str, str]:
    """online / offline per device from the live projections (empty before the pipeline runs)."""
    out: dict[str, str] = {}
    with stores().sessions() as session:
        doors = {community: queries.door_sensor_ids(session, community) for community in communities}
    for community in communities:
        out.update(device_status(stores(), community, door_sensors=doors[community]))
    return out


@bp.get("/households")
@require("read.registry")
def households() -> ResponseReturnValue:
    """Households in the caller's scope by id, paged:
    ``?category=rental|group_rental|owner|vacant&community=C&limit=N&cursor=C``."""
    principal = current_principal()
    wanted = scoped_communities(principal, request.args.get("community"))
    if wanted is None:
        return deny("community outside scope", target=request.full_path)
    show_people = can(principal, "read.people")  # the wall display gets no personal links
    category = request.args.get("category")
    if category and category not in ("rental", "group_rental", "owner", "vacant"):
        return bad_request("category must be rental, group_rental, owner or vacant")
    pager = Pager.from_request(HOUSEHOLD_ORDER)
    query = in_grid(select(Household).where(Household.community_id.in_(wanted)), principal, Household.grid_id)
    if category:
        query = query.where(Household.category == category)
    with stores().sessions() as session:
        hhs = pager.trim(session.scalars(pager.apply(query)).all())
        ids = [h.id for h in hhs]
        occupants: dict[str, list[str]] = {}
        devices_of: dict[str, list[str]] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            for pid, hid in session.execute(
                select(Residency.person_id, Residency.household_id).where(Residency.household_id.in_(chunk))
            ):
                occupants.setdefault(hid, []).append(pid)
            for did, dev_hid in session.execute(
                select(Device.id, Device.household_id).where(Device.household_id.in_(chunk))
            ):
                if dev_hid is not None:
                    devices_of.setdefault(dev_hid, []).append(did)
        rows = [
            {
                "id": h.id,
                "building": h.building_id,
                "unit": h.unit,
                "floor": h.floor,
                "room": h.room,
                "category": h.category,
                "occupants": sorted(occupants.get(h.id, [])) if show_people else [],
                "devices": sorted(devices_of.get(h.id, [])),
            }
            for h in hhs
        ]
    return pager.respond(rows)


def person_view(principal: Principal, person: Person, households: list[str]) -> dict[str, Any]:
    """A person as the principal may see them, once, with the households of theirs in the principal's
    scope (``household``: the first by id, or None): ID number and phone always masked here."""
    return {
        "id": person.id,
        "household": households[0] if households else None,
        "households": households,
        "tags": person.tag_names,
        "name": name_for(principal, person.name),
        "id_number": mask_id_number(person.id_number),
        "phone": mask_phone(person.phone),
    }


@bp.get("/people")
@require("read.people")
def people() -> ResponseReturnValue:
    """People in the caller's scope by id, one row each, masked and paged:
    ``?tag=elderly_alone|floating|…&community=C&limit=N&cursor=C``."""
    principal = current_principal()
    wanted = scoped_communities(principal, request.args.get("community"))
    if wanted is None:
        return deny("community outside scope", target=request.full_path)
    pager = Pager.from_request(PERSON_ORDER)
    query = select(Person).where(Person.community_id.in_(wanted))
    if principal.scope.grid is not None:  # someone living in the grid worker's grid
        query = query.where(Person.id.in_(residencies(principal).with_only_columns(Residency.person_id)))
    if request.args.get("tag"):
        query = query.where(Person.id.in_(select(PersonTag.person_id).where(PersonTag.tag == request.args["tag"])))
    with stores().sessions() as session:
        persons = pager.trim(session.scalars(pager.apply(query)).all())
        homes: dict[str, list[str]] = {}
        page_ids = [p.id for p in persons]
        for pid, hid in session.execute(
            residencies(principal).where(Residency.person_id.in_(page_ids)).order_by(Residency.household_id)
        ):
            homes.setdefault(pid, []).append(hid)
        rows = [person_view(principal, p, homes.get(p.id, [])) for p in persons]
    return pager.respond(rows)


def residencies(principal: Principal) -> Select[str, str]:
    """(person, household) of the residencies in the principal's grid (every one without a grid)."""
    query = select(Residency.person_id, Residency.household_id)
    if principal.scope.grid is None:
        return query
    home = Household.id == Residency.household_id
    return query.join(Household, home).where(Household.grid_id == principal.scope.grid)


def in_grid(query: Q, principal: Principal, grid: InstrumentedAttribute[str | None]) -> Q:
    """The query narrowed to the principal's grid (a grid worker's), in SQL: before the page's limit."""
    return query if principal.scope.grid is None else query.where(grid == principal.scope.grid)


@bp.post("/people/<person_id>/unmask")
@require("unmask")
def unmask(person_id: str) -> ResponseReturnValue:
    """One record's ID number and phone, for a police officer who states a reason (audited)."""
    principal = current_principal()
    body = request.get_json(silent=True) or {}
    reason = str(body.get("reason", "")).strip()
    if len(reason) < UNMASK_REASON_MIN:
        return bad_request("state the reason for unmasking (at least 4 characters)")
    with stores().sessions() as session:
        row = session.execute(
            select(Person, Household.grid_id)
            .outerjoin(Residency, Residency.person_id == Person.id)
            .outerjoin(Household, Household.id == Residency.household_id)
            .where(Person.id == person_id)
        ).first()
        if (
            row is None
            or not principal.scope.allows_community(row[0].community_id)
            or not principal.scope.allows_grid(row[1])
        ):
            return deny("person outside scope or unknown", target=f"person:{person_id}")
        person = row[0]
        data = {"id": person.id, "name": person.name, "id_number": person.id_number, "phone": person.phone}
        community = person.community_id
    audit("unmask", target=f"person:{person_id}", reason=reason, community=community)
    return jsonify(data)


@bp.get("/audit")
@require("audit.read")
def audit_log() -> ResponseReturnValue:
    """The audit log, newest first, paged (``?limit=N&cursor=C``); ``?format=csv`` exports the whole
    log, newest first, streamed without a cap (``limit`` and ``cursor`` do not apply to it)."""
    flush_anonymous_denials(stores())
    if request.args.get("format") == "csv":
        return audit_csv()
    pager = Pager.from_request(AUDIT_ORDER)
    with stores().sessions() as session:
        rows = [audit_row(e) for e in pager.trim(session.scalars(pager.apply(select(AuditEntry))).all())]
    return pager.respond(rows)


def audit_csv() -> Response:
    """The whole audit log as a streamed CSV attachment."""
    sessions = stores().sessions

    def lines() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv_writer(buffer)
        with sessions() as session:
            for row in audit_csv_rows(session, newest_first=True):
                writer.writerow(row)
                if buffer.tell() > 64_000:
                    yield buffer.getvalue()
                    buffer.seek(0)
                    buffer.truncate()
        yield buffer.getvalue()

    response = Response(stream_with_context(lines()), mimetype="text/csv")
    response.headers["Content-Disposition"] = "attachment; filename=audit.csv"
    return response
