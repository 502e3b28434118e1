"""Incidents by hand (接警登记) and residents' calls: a call to 110, a phone call to the station, a
walk-in, a patrol's report or a resident's call to the police becomes an alert in the same store and
history as the rules' alerts, so it follows the same loop (acknowledge, nearest guard, SLA stages,
feedback, close, report).

The route (``POST /api/v1/incidents``), the console's form and the residents' page all call this
module; role and scope come from the server-side principal. Each incident is its own alert: its
dedup identity is its own id, so two calls about the same building are never merged.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from shapely.geometry import Point, shape
from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts.access import alert_for
from alerts.constants import INCIDENT_SOURCES, INCIDENT_TYPE, RESIDENT_CALL_TYPE, SEVERITIES
from alerts.lifecycle import CLOSED_STATUSES
from alerts.live import RaiseRequest
from alerts.models import AlertRecord, AlertStep
from auth.policy import can
from auth.principal import Principal
from closedloop.models import ResidentReport, Task
from closedloop.service import Loop
from core.errors import Forbidden, InvalidInput
from core.i18n import t
from registry import validate
from registry.models import Building, Community, Grid, Household
from registry.queries import household_labels

SUMMARY_MAX = 1000
NAME_MAX = 64
DEFAULT_SEVERITY = {INCIDENT_TYPE: "high", RESIDENT_CALL_TYPE: "high"}
# what a resident reads about their call: received, someone on the way, done
CALL_STAGES = {
    "new": "received",
    "acknowledged": "received",
    "dispatched": "coming",
    "on_scene": "coming",
    "resolved": "done",
    "false_alarm": "done",
}


@dataclass(frozen=True)
class Place:
    """Where an incident is: the alert's subject, location and grid."""

    subject: dict[str, Any]
    location: dict[str, float]
    grid: str | None


@dataclass(frozen=True)
class PlaceMatch:
    """An address search hit: a building or a household, with its label as people read it."""

    kind: str  # building / household
    id: str
    label: str


@dataclass
class Incident:
    """A checked incident, ready to be raised."""

    community: str
    source: str
    summary: str
    severity: str
    place: Place
    caller: dict[str, str] = field(default_factory=dict)


def _refuse(key: str, field_name: str, **values: Any) -> InvalidInput:
    """A refusal that names the field (``err.values["field"]``: the API's JSON names it too)."""
    return InvalidInput(key=key, field=field_name, **values)


def check_incident(session: Session, principal: Principal, body: Any) -> Incident:
    """Validate an incident report (the body of ``POST /api/v1/incidents``) for this principal."""
    if not isinstance(body, dict):
        raise _refuse("incident.error.body", "body")
    community_id = body.get("community")
    if not isinstance(community_id, str) or not community_id.strip():
        raise _refuse("incident.error.community", "community")
    if not principal.scope.allows_community(community_id):
        raise Forbidden(key="incident.error.community_scope", community=community_id)
    community = session.get(Community, community_id)
    if community is None:
        raise _refuse("incident.error.community_unknown", "community", community=community_id)
    source = body.get("source")
    if source not in INCIDENT_SOURCES:
        raise _refuse("incident.error.source", "source", sources=", ".join(INCIDENT_SOURCES))
    summary = validate.normalise_text(body.get("summary") or "") if isinstance(body.get("summary", ""), str) else ""
    if not summary:
        raise _refuse("incident.error.summary", "summary")
    if len(summary) > SUMMARY_MAX:
        raise _refuse("incident.error.summary_long", "summary", n=SUMMARY_MAX)
    severity = body.get("severity") or DEFAULT_SEVERITY[INCIDENT_TYPE]
    if severity not in SEVERITIES:
        raise _refuse("incident.error.severity", "severity", severities=", ".join(SEVERITIES))
    place = resolve_place(session, community, body.get("place"))
    return Incident(
        community=community_id,
        source=str(source),
        summary=summary,
        severity=str(severity),
        place=place,
        caller=check_caller(body.get("caller")),
    )


def check_caller(caller: Any) -> dict[str, str]:
    """The caller's name and phone (both optional; a phone given must be one)."""
    if caller is None or caller == {}:
        return {}
    if not isinstance(caller, dict):
        raise _refuse("incident.error.caller", "caller")
    out: dict[str, str] = {}
    name = caller.get("name")
    if name not in (None, ""):
        text = validate.normalise_text(str(name))
        if len(text) > NAME_MAX:
            raise _refuse("incident.error.caller_name", "caller.name", n=NAME_MAX)
        if text:
            out["name"] = text
    phone = caller.get("phone")
    if phone not in (None, ""):
        try:
            out["phone"] = validate.phone(phone)
        except InvalidInput:
            raise _refuse("incident.error.caller_phone", "caller.phone") from None
    return out


def resolve_place(session: Session, community: Community, place: Any) -> Place:
    """A place given as {"lat","lon"}, {"building"} or {"household"}, checked to be in the community."""
    if not isinstance(place, dict) or not place:
        raise _refuse("incident.error.place", "place")
    if place.get("household") not in (None, ""):
        household = session.get(Household, str(place["household"]))
        if household is None or household.community_id != community.id:
            raise _refuse("incident.error.household", "place.household", household=str(place["household"])[:48])
        building = session.get(Building, household.building_id)
        assert building is not None
        return Place(
            subject={"household": household.id, "building": building.id},
            location={"lat": building.lat, "lon": building.lon},
            grid=household.grid_id or building.grid_id,
        )
    if place.get("building") not in (None, ""):
        found = session.get(Building, str(place["building"]))
        if found is None or found.community_id != community.id:
            raise _refuse("incident.error.building", "place.building", building=str(place["building"])[:40])
        return Place(subject={"building": found.id}, location={"lat": found.lat, "lon": found.lon}, grid=found.grid_id)
    if "lat" in place or "lon" in place:
        try:
            lat, lon = validate.lat_lon(place.get("lat"), place.get("lon"))
        except InvalidInput:
            raise _refuse("incident.error.lat_lon", "place.lat") from None
        point = Point(lon, lat)
        if not shape(json.loads(community.boundary)).covers(point):
            raise _refuse("incident.error.outside", "place.lat", community=community.name)
        return Place(
            subject=_subject_at(session, community.id, point),
            location={"lat": lat, "lon": lon},
            grid=_grid_at(session, community.id, point),
        )
    raise _refuse("incident.error.place", "place")


def _subject_at(session: Session, community: str, point: Point) -> dict[str, Any]:
    """The building whose footprint holds the point (a click on a building), else nothing."""
    for building_id, footprint in session.execute(
        select(Building.id, Building.footprint).where(Building.community_id == community)
    ):
        try:
            if footprint and shape(json.loads(footprint)).covers(point):
                return {"building": building_id}
        except (ValueError, TypeError, AttributeError):
            continue
    return {}


def _grid_at(session: Session, community: str, point: Point) -> str | None:
    for grid_id, polygon in session.execute(select(Grid.id, Grid.polygon).where(Grid.community_id == community)):
        try:
            if polygon and shape(json.loads(polygon)).covers(point):
                return str(grid_id)
        except (ValueError, TypeError, AttributeError):
            continue
    return None


_NUMBERS = re.compile(r"\d+")


def find_places(session: Session, community: str, text: str, lang: str, limit: int = 10) -> list[PlaceMatch]:
    """Buildings and households matching an address as people type it: "52幢", "52幢2单元402室",
    "52-2-402", "Bldg 52 402"."""
    query = validate.normalise_text(text or "")
    numbers = _NUMBERS.findall(query)
    if not numbers:
        return []
    buildings = [
        b
        for b in session.scalars(select(Building).where(Building.community_id == community).order_by(Building.id))
        if _NUMBERS.findall(b.name)[:1] == numbers[:1] or query.startswith(b.name)
    ]
    if not buildings:
        return []
    rest = numbers[1:]
    if not rest:
        return [PlaceMatch("building", b.id, b.name if lang == "zh" else (b.name_en or b.name)) for b in buildings][
            :limit
        ]
    households = select(Household).where(Household.building_id.in_([b.id for b in buildings]))
    if len(rest) >= 2:
        households = households.where(Household.unit == int(rest[0]), Household.room == rest[1])
    else:
        households = households.where(Household.room == rest[0])
    found = list(session.scalars(households.order_by(Household.id).limit(limit)))
    labels = household_labels(session, [h.id for h in found], lang)
    return [PlaceMatch("household", h.id, labels.get(h.id, h.id)) for h in found]


class Incidents:
    """Raising incidents and residents' calls into the closed loop, and reading a call's status."""

    def __init__(self, loop: Loop) -> None:
        self.loop = loop
        self.stores = loop.stores

    def report(self, principal: Principal, body: Any) -> dict[str, Any]:
        """Register an incident (接警登记): the new alert as the principal may see it."""
        if not can(principal, "dispatch"):
            self.loop.auditor.record(
                principal, "denied", target="incident", reason="incidents need dispatch", outcome="denied"
            )
            raise Forbidden(key="error.forbidden")
        with self.stores.sessions() as session:
            incident = check_incident(session, principal, body)
        evidence: dict[str, Any] = {"source": incident.source, "summary": incident.summary}
        if incident.caller:
            evidence["caller"] = incident.caller
        doc = self._raise(
            INCIDENT_TYPE, incident.community, incident.severity, incident.place, evidence, actor=principal.id
        )
        self.loop.auditor.record(
            principal,
            "incident.report",
            target=f"alert:{doc['id']}",
            reason=f"{incident.source}: {incident.summary}"[:500],
            community=incident.community,
        )
        seen = alert_for(principal, doc, self.stores.settings)
        assert seen is not None  # the reporter may see what they raised (dispatch implies read.alerts)
        return seen

    def resident_call(self, report_id: str, household: str, text: str, contact: str) -> dict[str, Any]:
        """A resident's call to the police (its ``ResidentReport`` row written): a ``resident.call``
        alert at their household (location: the building), its id kept on the call's row."""
        with self.stores.sessions() as session:
            found = session.get(Household, household)
            community = session.get(Community, found.community_id) if found is not None else None
            if found is None or community is None:
                raise _refuse("incident.error.household", "place.household", household=household[:48])
            place = resolve_place(session, community, {"household": household})
        evidence: dict[str, Any] = {"source": "resident", "summary": text}
        if contact:
            evidence["caller"] = {"phone": contact}
        doc = self._raise(
            RESIDENT_CALL_TYPE,
            community.id,
            DEFAULT_SEVERITY[RESIDENT_CALL_TYPE],
            place,
            evidence,
            actor="resident",
            identity={"call": report_id},
        )
        with self.stores.sessions.begin() as session:
            row = session.get(ResidentReport, report_id)
            if row is not None:
                row.alert_id = doc["id"]
        return doc

    def _raise(
        self,
        alert_type: str,
        community: str,
        severity: str,
        place: Place,
        evidence: dict[str, Any],
        *,
        actor: str,
        identity: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        incident_id = secrets.token_hex(8)
        now = self.loop.clock.now_ms()
        request = RaiseRequest(
            alert_type=alert_type,
            severity=severity,
            subject=place.subject,
            identity=identity or {"incident": incident_id},  # its own alert: never merged by dedup
            location=place.location,
            evidence=evidence,
            grid=place.grid,
            at_ms=now,
            tokens=[f"incident:{incident_id}"],
        )
        changes = self.loop.alerts.raise_many(community, [request])
        for change in changes:
            change.actor = actor
        self.loop.history.write(changes)
        return changes[0].doc

    def calls_of_household(self, household: str, lang: str, limit: int = 20) -> list[dict[str, Any]]:
        """The household's calls to the police, newest first, each with its stage as a resident reads it
        (received / someone on the way / done) and, once done, the feedback text."""
        with self.stores.sessions() as session:
            rows = list(
                session.scalars(
                    select(ResidentReport)
                    .where(ResidentReport.household_id == household, ResidentReport.to == "police")
                    .order_by(ResidentReport.created_at.desc())
                    .limit(limit)
                )
            )
            out = []
            for row in rows:
                status = self._status_of(session, row)
                stage = CALL_STAGES.get(status, "received")
                out.append(
                    {
                        "id": row.id,
                        "text": row.text,
                        "at": row.created_at,
                        "stage": stage,
                        "label": t(f"resident.stage.{stage}", lang),
                        "feedback": self._feedback(session, row.alert_id, lang) if stage == "done" else "",
                    }
                )
        return out

    def _status_of(self, session: Session, row: ResidentReport) -> str:
        if row.alert_id is None:
            return "new"
        doc = self.loop.alerts.get(row.community_id, row.alert_id)
        if doc is not None:
            return str(doc["status"])
        record = session.get(AlertRecord, row.alert_id)  # the live store forgets closed alerts after a while
        return record.status if record is not None else "new"

    def _feedback(self, session: Session, alert_id: str | None, lang: str) -> str:
        """The task's closing outcome and notes, else the note that resolved the alert."""
        if alert_id is None:
            return ""
        task = session.scalars(
            select(Task)
            .where(Task.alert_id == alert_id, Task.status == "closed")
            .order_by(Task.closed_at.desc())
            .limit(1)
        ).first()
        if task is not None:
            outcome = t(f"outcome.{task.outcome}", lang) if task.outcome else ""
            return " · ".join(p for p in (outcome, task.notes.strip()) if p)
        step = session.scalars(
            select(AlertStep)
            .where(AlertStep.alert_id == alert_id, AlertStep.status.in_(sorted(CLOSED_STATUSES)))
            .order_by(AlertStep.id.desc())
            .limit(1)
        ).first()
        if step is None:
            return ""
        return step.note.strip() or t(f"status.{step.status}", lang)
