"""Registry reads of interfaces §3 (devices, households, people), the audited unmask, the audit log."""

from __future__ import annotations

import io
from typing import Any

from flask import Blueprint, Response, jsonify, request
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from api.access import audit, deny, require
from api.context import stores
from api.params import query_int
from auth.masking import mask_id_number, mask_phone, name_for
from auth.models import AuditEntry
from auth.policy import can
from auth.principal import Principal, current_principal
from auth.service import flush_anonymous_denials
from core.spreadsheet import csv_writer
from registry import queries
from registry.models import Device, Household, Person, PersonTag, Residency
from store.live import device_status

bp = Blueprint("registry_api", __name__, url_prefix="/api/v1")
UNMASK_REASON_MIN = 4  # characters of the reason an unmask must state (the OpenAPI document says it too)


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
    """Devices in the caller's scope: ``?type=T&community=C``."""
    principal = current_principal()
    wanted = scoped_communities(principal, request.args.get("community"))
    if wanted is None:
        return deny("community outside scope", target=request.full_path)
    query = select(Device).where(Device.community_id.in_(wanted)).order_by(Device.id)
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
            for d in session.scalars(query)
            if principal.scope.allows_grid(d.grid_id)
        ]
    return jsonify(rows)


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
    """Households in the caller's scope: ``?category=rental|group_rental|owner|vacant&community=C``."""
    principal = current_principal()
    wanted = scoped_communities(principal, request.args.get("community"))
    if wanted is None:
        return deny("community outside scope", target=request.full_path)
    show_people = can(principal, "read.people")  # the wall display gets no personal links
    category = request.args.get("category")
    if category and category not in ("rental", "group_rental", "owner", "vacant"):
        return bad_request("category must be rental, group_rental, owner or vacant")
    query = select(Household).where(Household.community_id.in_(wanted)).order_by(Household.id)
    if category:
        query = query.where(Household.category == category)
    with stores().sessions() as session:
        hhs = [h for h in session.scalars(query) if principal.scope.allows_grid(h.grid_id)]
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
    return jsonify(rows)


def person_view(principal: Principal, person: Person, household: str | None) -> dict[str, Any]:
    """A person as the principal may see them: ID number and phone always masked here."""
    return {
        "id": person.id,
        "household": household,
        "tags": person.tag_names,
        "name": name_for(principal, person.name),
        "id_number": mask_id_number(person.id_number),
        "phone": mask_phone(person.phone),
    }


@bp.get("/people")
@require("read.people")
def people() -> ResponseReturnValue:
    """People in the caller's scope, masked: ``?tag=elderly_alone|floating|…&community=C``."""
    principal = current_principal()
    wanted = scoped_communities(principal, request.args.get("community"))
    if wanted is None:
        return deny("community outside scope", target=request.full_path)
    query = (
        select(Person, Residency.household_id, Household.grid_id)
        .outerjoin(Residency, Residency.person_id == Person.id)
        .outerjoin(Household, Household.id == Residency.household_id)
        .where(Person.community_id.in_(wanted))
        .order_by(Person.id)
    )
    if request.args.get("tag"):
        query = query.join(PersonTag, PersonTag.person_id == Person.id).where(PersonTag.tag == request.args["tag"])
    with stores().sessions() as session:
        rows = [
            person_view(principal, p, hid)
            for p, hid, grid in session.execute(query)
            if principal.scope.allows_grid(grid)
        ]
    return jsonify(rows)


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
    """The audit log, newest first (``?format=csv`` to export, ``?limit=N``)."""
    limit = query_int("limit", 1000, low=1, high=100_000)
    flush_anonymous_denials(stores())
    with stores().sessions() as session:
        entries = list(session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)))
        rows = [
            {
                "id": e.id,
                "at": e.at.isoformat(),
                "actor": e.actor,
                "role": e.role,
                "action": e.action,
                "target": e.target,
                "community": e.community_id,
                "reason": e.reason,
                "outcome": e.outcome,
                "ip": e.ip,
            }
            for e in entries
        ]
    if request.args.get("format") == "csv":
        buffer = io.StringIO()
        fields = list(rows[0]) if rows else ["id"]
        writer = csv_writer(buffer)
        writer.writerow(fields)
        writer.writerows([row[f] for f in fields] for row in rows)
        response = Response(buffer.getvalue(), mimetype="text/csv")
        response.headers["Content-Disposition"] = "attachment; filename=audit.csv"
        return response
    return jsonify(rows)
