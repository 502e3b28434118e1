"""Reading what every section needs, once, before any of them runs: the communities' names and
registry counts, the period's alerts with their steps, and the labels of the places and people
the alerts and the tagged residents name."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts.access import alert_filter
from alerts.models import AlertRecord, AlertStep
from auth.labels import labels
from closedloop.models import outcome_labels
from core.settings import Settings
from core.timefmt import aware
from registry.models import Community, Person, PersonTag, Residency
from registry.queries import household_labels
from registry.stats import community_stats
from reports import calc
from reports.model import ReportRequest
from reports.sections.context import Alert, LoadContext, Progress, Tagged, chunks, masked_name
from store.stores import Stores


def load_context(
    session: Session, stores: Stores, request: ReportRequest, *, now_ms: int, progress: Progress
) -> LoadContext:
    """The frozen context of one report, read through an open session (kept for the sections)."""
    ids = request.communities
    progress(5, "report.progress.registry")
    names = {
        c.id: c.name if request.lang == "zh" else (c.name_en or c.name)
        for c in session.scalars(select(Community).where(Community.id.in_(ids)))
    }
    stats = {c["id"]: c for c in community_stats(session, list(ids))["communities"]}
    progress(15, "report.progress.alerts")
    alerts = load_alerts(session, request, stores.settings)
    places: dict[str, str] = {}
    person_names = label_alert_places(session, request, alerts, places)
    # the elders' and the floating residents' households (a place labelled already keeps its label)
    elders = people_with_tag(session, ids, "elderly_alone")
    label_households(session, request, [h for _, h in elders if h], places)
    floating = people_with_tag(session, ids, "floating")
    label_households(session, request, [h for _, h in floating if h], places)
    return LoadContext(
        stores=stores,
        session=session,
        request=request,
        now_ms=now_ms,
        progress=progress,
        names=names,
        stats=stats,
        alerts=tuple(alerts),
        places=places,
        person_names=person_names,
        elders=tuple(elders),
        floating=tuple(floating),
    )


def load_alerts(session: Session, request: ReportRequest, settings: Settings) -> list[Alert]:
    """The alerts detected in the period, with their steps (the handling to date); never an alert
    type hidden from the requester (no wanted-list hit in a report for the wall); the report's
    communities are checked against the scope already."""
    hidden = alert_filter(request.principal, settings).hidden
    records: dict[str, AlertRecord] = {}
    for ids in chunks(request.communities, 200):
        query = (
            select(AlertRecord)
            .where(
                AlertRecord.community_id.in_(ids),
                AlertRecord.detected_at >= request.start_utc,
                AlertRecord.detected_at < request.end_utc,
            )
            .order_by(AlertRecord.detected_at, AlertRecord.id)
        )
        if hidden:
            query = query.where(AlertRecord.type.not_in(sorted(hidden)))
        for record in session.scalars(query):
            records[record.id] = record
    steps: dict[str, list[calc.Step]] = {key: [] for key in records}
    for ids in chunks(list(records)):
        for step in session.scalars(
            select(AlertStep).where(AlertStep.alert_id.in_(ids)).order_by(AlertStep.alert_id, AlertStep.id)
        ):
            steps[step.alert_id].append(
                calc.Step(aware(step.at), step.action, step.status, step.actor, step.note or "")
            )
    alerts = [Alert(record, tuple(steps[key])) for key, record in records.items()]
    return sorted(alerts, key=lambda a: (a.detected, a.record.id))


def people_with_tag(session: Session, communities: Sequence[str], tag: str) -> list[Tagged]:
    """(person, household) of the communities' people with a tag."""
    out: dict[str, Tagged] = {}
    for ids in chunks(communities, 200):
        query = (
            select(Person, Residency.household_id)
            .join(PersonTag, PersonTag.person_id == Person.id)
            .outerjoin(Residency, Residency.person_id == Person.id)
            .where(PersonTag.tag == tag, Person.community_id.in_(ids))
            .order_by(Person.community_id, Person.id)
        )
        for person, household in session.execute(query):
            out.setdefault(person.id, (person, household))
    return list(out.values())


def label_alert_places(
    session: Session, request: ReportRequest, alerts: list[Alert], places: dict[str, str]
) -> dict[str, str]:
    """Label every id the alerts and their steps name (places, people, guards, accounts: into
    places, by auth.labels, the one labelling of the console and the tasks page); their people's names."""
    people = sorted({str(a.record.subject["person"]) for a in alerts if a.record.subject.get("person")})
    person_names: dict[str, str] = {}
    for ids in chunks(people):
        for pid, name in session.execute(select(Person.id, Person.name).where(Person.id.in_(ids))):
            person_names[pid] = masked_name(request.principal, name)
    named = [a.record.subject for a in alerts] + [[s.actor, s.note] for a in alerts for s in a.steps]
    places.update(outcome_labels(request.lang) | labels(session, request.principal, named, request.lang))
    return person_names


def label_households(
    session: Session, request: ReportRequest, households: Iterable[str], places: dict[str, str]
) -> None:
    """52幢2单元402室 for each household not labelled yet (into places)."""
    places.update(household_labels(session, [h for h in households if h and h not in places], request.lang))
