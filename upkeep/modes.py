"""Maintenance mode of a device, away mode of a person: set, end, list — with the caller's role and
scope, the audit log, and the projection the worker reads (registry/modes.py).

A period runs from the moment it is set until ``until`` (at most ``MAX_DAYS`` ahead), or until it
is ended early. Setting a new period on a subject that has one ends the old one (the history keeps
both rows). Maintenance silences the device's alerts; away pauses an elder's watch, which resumes
from the period's end (the elder rules' resume timers, planned here at each change).
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from auth.masking import name_for
from auth.policy import can
from auth.principal import Principal
from auth.service import Auditor
from core.clock import Clock, WallClock
from core.errors import Forbidden, InvalidInput, NotFound
from core.timefmt import SHANGHAI, iso_utc, ms_to_utc, utc_to_ms
from registry.models import Device, Person, PersonTag, Residency
from registry.modes import AWAY, AWAY_RESUME_TIMERS, KINDS, MAINTENANCE, ModePeriod, live_periods, project_period
from registry.queries import entity_labels, household_labels
from store.stores import Stores

MAX_DAYS = 90  # the furthest end a period may have
PERMISSION = "modes.set"
# the audit actions of setting and ending a period, per kind
ACTIONS = {MAINTENANCE: ("device.maintenance", "device.maintenance_end"), AWAY: ("person.away", "person.away_end")}
LOCAL_FORMATS = ("%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S")


def parse_until(text: str) -> int:
    """An end time as epoch ms: RFC 3339 with an offset, or a local time 'YYYY-MM-DD HH:MM' in
    Asia/Shanghai; InvalidInput naming the field ``until`` otherwise."""
    value = (text or "").strip()
    for fmt in LOCAL_FORMATS:
        try:
            return utc_to_ms(dt.datetime.strptime(value, fmt).replace(tzinfo=SHANGHAI))
        except ValueError:
            continue
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidInput(key="modes.error.until_format") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=SHANGHAI)
    return utc_to_ms(parsed)


def check_until(until_ms: int, now_ms: int) -> None:
    """An end must lie ahead, and at most MAX_DAYS ahead."""
    if until_ms <= now_ms:
        raise InvalidInput(key="modes.error.until_past")
    if until_ms > now_ms + MAX_DAYS * 86_400_000:
        raise InvalidInput(key="modes.error.until_far", days=MAX_DAYS)


@dataclass(frozen=True)
class Subject:
    """A device or a person a period is set on, as found in the caller's scope."""

    kind: str
    id: str
    community: str
    watched: bool  # a device: always; a person: an elder living alone whose door is watched


class Modes:
    """The modes service: every method takes the principal first and checks role and scope itself."""

    def __init__(self, stores: Stores, clock: Clock | None = None) -> None:
        self.stores = stores
        self.clock = clock or WallClock()
        self.auditor = Auditor(stores.sessions)

    # --- set and end -------------------------------------------------------------------------
    def start(
        self, principal: Principal, kind: str, subject_id: str, until: str | int, reason: str = "", lang: str = "zh"
    ) -> dict[str, Any]:
        """Put a device in maintenance (kind ``maintenance``) or a person away (``away``) until then."""
        self._allowed(principal, kind, subject_id)
        now = self.clock.now_ms()
        until_ms = parse_until(until) if isinstance(until, str) else int(until)
        check_until(until_ms, now)
        text = (reason or "").strip()
        if len(text) > 200:
            raise InvalidInput(key="modes.error.reason")
        with self.stores.sessions.begin() as session:
            subject = self._subject(session, principal, kind, subject_id)
            for old in self._live(session, subject, now):
                old.ended_at, old.ended_by = ms_to_utc(now), principal.id
            period = ModePeriod(
                community_id=subject.community,
                kind=kind,
                subject=subject.id,
                starts_at=ms_to_utc(now),
                until=ms_to_utc(until_ms),
                reason=text,
                set_by=principal.id,
                ended_by="",
                suppressed=0,
            )
            session.add(period)
            session.flush()
            view = {**self._view(period, subject), "label": self._label(session, principal, subject, lang)}
            project_period(self.stores.redis, self.stores.keys, period)
        self._changed(principal, subject, ACTIONS[kind][0], view, f"until {iso_utc(until_ms)}; {text}".rstrip("; "))
        return view

    def end(self, principal: Principal, kind: str, subject_id: str, lang: str = "zh") -> dict[str, Any]:
        """End a subject's live period now."""
        self._allowed(principal, kind, subject_id)
        now = self.clock.now_ms()
        with self.stores.sessions.begin() as session:
            subject = self._subject(session, principal, kind, subject_id)
            live = self._live(session, subject, now)
            if not live:
                raise NotFound(key=f"modes.error.not_{kind}", subject=subject_id)
            for period in live:
                period.ended_at, period.ended_by = ms_to_utc(now), principal.id
            view = {**self._view(live[-1], subject), "label": self._label(session, principal, subject, lang)}
            project_period(self.stores.redis, self.stores.keys, live[-1])
        self._changed(principal, subject, ACTIONS[kind][1], view, f"ended at {iso_utc(now)}")
        return view

    # --- reading -------------------------------------------------------------------------------
    def live(self, principal: Principal, community: str, lang: str) -> list[dict[str, Any]]:
        """The community's live periods (maintenance first, then away; soonest end first), labelled
        for people (a device by its name and place, a person by household address and masked name)."""
        if not can(principal, PERMISSION) or not principal.scope.allows_community(community):
            return []
        now = ms_to_utc(self.clock.now_ms())
        with self.stores.sessions() as session:
            periods = [p for kind in KINDS for p in live_periods(session, community, kind, now)]
            names = person_labels(session, principal, [p.subject for p in periods if p.kind == AWAY], lang)
            devices = entity_labels(session, [p.subject for p in periods if p.kind == MAINTENANCE], lang)
            return [
                {**self._view(p, None), "label": (names if p.kind == AWAY else devices).get(p.subject, p.subject)}
                for p in periods
            ]

    # --- helpers -------------------------------------------------------------------------------
    def _allowed(self, principal: Principal, kind: str, subject_id: str) -> None:
        if kind not in KINDS:
            raise InvalidInput(key="modes.error.kind")
        if not can(principal, PERMISSION):
            self.auditor.record(
                principal, "denied", target=f"{kind}:{subject_id}", reason=f"needs {PERMISSION}", outcome="denied"
            )
            raise Forbidden(key="modes.error.forbidden")

    def _subject(self, session: Session, principal: Principal, kind: str, subject_id: str) -> Subject:
        scope = principal.scope
        if kind == MAINTENANCE:
            device = session.get(Device, subject_id)
            found = device is not None and scope.allows_community(device.community_id)
            if device is None or not found or not scope.allows_grid(device.grid_id):
                raise NotFound(key="modes.error.no_device", device=subject_id)
            return Subject(kind, device.id, device.community_id, True)
        person = session.get(Person, subject_id)
        if person is None or not scope.allows_community(person.community_id):
            raise NotFound(key="modes.error.no_person", person=subject_id)
        elder = any(tag.tag == "elderly_alone" for tag in person.tags)
        return Subject(kind, person.id, person.community_id, elder)

    def _live(self, session: Session, subject: Subject, now_ms: int) -> list[ModePeriod]:
        return list(
            session.scalars(
                select(ModePeriod)
                .where(
                    ModePeriod.kind == subject.kind,
                    ModePeriod.subject == subject.id,
                    ModePeriod.ended_at.is_(None),
                    ModePeriod.until > ms_to_utc(now_ms),
                )
                .order_by(ModePeriod.id)
            )
        )

    @staticmethod
    def _label(session: Session, principal: Principal, subject: Subject, lang: str) -> str:
        """What people read for the subject: a device's name and place, a person's address and name."""
        if subject.kind == MAINTENANCE:
            return entity_labels(session, [subject.id], lang).get(subject.id, subject.id)
        return person_labels(session, principal, [subject.id], lang).get(subject.id, subject.id)

    @staticmethod
    def _view(period: ModePeriod, subject: Subject | None) -> dict[str, Any]:
        view = {
            "id": period.id,
            "kind": period.kind,
            "subject": period.subject,
            "community": period.community_id,
            "from": iso_utc(utc_to_ms(period.starts_at)),
            "until": iso_utc(utc_to_ms(period.until)),
            "ended_at": iso_utc(utc_to_ms(period.ended_at)) if period.ended_at is not None else None,
            "reason": period.reason,
            "set_by": period.set_by,
            "suppressed": period.suppressed or 0,
        }
        if subject is not None:
            view["watched"] = subject.watched
        return view

    def _changed(self, principal: Principal, subject: Subject, action: str, view: dict[str, Any], note: str) -> None:
        """After a change: plan the away elder's resume, audit it, and tell the views."""
        if subject.kind == AWAY:
            end = utc_to_ms(dt.datetime.fromisoformat(view["ended_at"] or view["until"]))
            pipe = self.stores.redis.pipeline(transaction=False)
            for timer in AWAY_RESUME_TIMERS:
                pipe.zadd(self.stores.keys.timer(subject.community, timer), {subject.id: end})
            pipe.execute()
        self.auditor.record(
            principal,
            action,
            target=f"{'device' if subject.kind == MAINTENANCE else 'person'}:{subject.id}",
            reason=note,
            community=subject.community,
        )
        self.stores.redis.incr(self.stores.keys.version(subject.community))


def person_labels(session: Session, reader: Principal, people: list[str], lang: str) -> dict[str, str]:
    """person id → household address and the name as the reader may see it (52幢2单元402室 张**)."""
    wanted = sorted(set(people))
    if not wanted:
        return {}
    rows = session.execute(
        select(Person.id, Person.name, Residency.household_id)
        .outerjoin(Residency, Residency.person_id == Person.id)
        .where(Person.id.in_(wanted))
    ).all()
    places = household_labels(session, [r.household_id for r in rows if r.household_id], lang)
    out: dict[str, str] = {}
    for pid, name, household in rows:
        out.setdefault(pid, " ".join(filter(None, (places.get(household or ""), name_for(reader, name)))) or pid)
    return out


def elder_options(session: Session, reader: Principal, community: str, lang: str) -> list[dict[str, str]]:
    """The community's elders living alone as dropdown options (address + masked name), by address."""
    people = list(
        session.scalars(
            select(PersonTag.person_id)
            .join(Person, Person.id == PersonTag.person_id)
            .where(Person.community_id == community, PersonTag.tag == "elderly_alone")
        )
    )
    labels = person_labels(session, reader, people, lang)
    return sorted(({"label": labels[p], "value": p} for p in labels), key=lambda o: o["label"])


def device_options(session: Session, community: str, lang: str) -> list[dict[str, str]]:
    """The community's devices (but wearables) as dropdown options, by name and place."""
    ids = list(
        session.scalars(
            select(Device.id).where(Device.community_id == community, Device.type != "wearable").order_by(Device.id)
        )
    )
    labels = entity_labels(session, ids, lang)
    return sorted(({"label": labels.get(d, d), "value": d} for d in ids), key=lambda o: o["label"])


DEVICE_CHOICES_TTL_S = 60.0  # a device registered a moment ago is found within a minute
DEVICE_CHOICES_SHOWN = 30  # a community has thousands of devices: the picker shows the first matches
_device_choices: dict[tuple[str, str], tuple[float, list[dict[str, str]]]] = {}


def matching_devices(
    stores: Stores, community: str, lang: str, search: str, chosen: str | None
) -> list[dict[str, str]]:
    """The picker's options for what was typed: the first devices whose name and place contain it
    (the chosen one kept, so that the picker still shows it). The labelled list is built once a
    minute per community and language in this process, not on every console load."""
    key = (community, lang)
    found = _device_choices.get(key)
    if found is None or time.monotonic() - found[0] > DEVICE_CHOICES_TTL_S:
        with stores.sessions() as session:
            found = (time.monotonic(), device_options(session, community, lang))
        _device_choices[key] = found
    term = search.strip().lower()
    hits = [o for o in found[1] if term and term in o["label"].lower()][:DEVICE_CHOICES_SHOWN]
    if chosen and all(o["value"] != chosen for o in hits):
        hits += [o for o in found[1] if o["value"] == chosen]
    return hits
