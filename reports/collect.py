"""Reading a report's figures from the stores: the registry, the alert history with every step, the
closed loop's tasks, visitor passes, gate traffic, patrol rounds and (when reachable) the live
device status. Everything is aggregated here; the renderers only lay it out."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from auth.masking import NAMED_ROLES, name_for
from closedloop.models import Task
from core.errors import StoreUnavailable
from core.i18n import t
from core.timefmt import SHANGHAI, aware, local_text, ms_to_utc, utc_to_ms
from gates.models import PASS_STATUSES, GateHourly, PatrolRound, VisitorPass
from registry import queries
from registry.models import (
    DEVICE_TYPES,
    Building,
    Community,
    Device,
    Household,
    PathSegment,
    PatrolRoute,
    Person,
    PersonTag,
    Residency,
)
from registry.stats import community_stats
from reports import calc
from reports.model import Column, MapData, ReportData, ReportRequest, Table
from reports.narrative import narrative
from store.alert_models import ALERT_TYPES, OPEN_STATUSES, SEVERITIES, AlertRecord, AlertStep
from store.redis_server import STORE_ERRORS
from store.stores import Stores

log = logging.getLogger(__name__)

Progress = Callable[[int, str], None]
T = TypeVar("T")
CHUNK = 500
ELDER_TYPES = ("elder.inactive", "elder.routine", "sensor.silent")
OFFLINE_TYPES = ("device.offline", "sensor.silent")
ID_NUMBER_RE = re.compile(r"(?<![0-9A-Za-z])([0-9]{6})[0-9]{8}([0-9]{3}[0-9Xx])(?![0-9A-Za-z])")
MOBILE_RE = re.compile(r"(?<![0-9])(1[3-9][0-9])[0-9]{4}([0-9]{4})(?![0-9])")
# the closed loop's stage names in escalation notes → the report's stages
ESCALATION_STAGES = {"acknowledge": "acknowledged", "dispatch": "dispatched", "arrive": "on_scene", "close": "resolved"}
NEXT_STAGE = {"new": "acknowledged", "acknowledged": "dispatched", "dispatched": "on_scene", "on_scene": "resolved"}


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    """Slices of at most size items (bounded IN lists)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def scrub(text: str) -> str:
    """Free text with any ID number or mobile number in it masked (notes typed by people)."""
    text = ID_NUMBER_RE.sub(lambda m: m.group(1) + "********" + m.group(2), text)
    return MOBILE_RE.sub(lambda m: m.group(1) + "****" + m.group(2), text)


@dataclass
class Alert:
    """An alert of the period with its steps."""

    record: AlertRecord
    steps: list[calc.Step] = field(default_factory=list)

    @property
    def detected(self) -> dt.datetime:
        """When the rule fired (aware UTC)."""
        return aware(self.record.detected_at)

    @property
    def human(self) -> bool:
        """True when a person took any step."""
        return any(calc.is_human(s) for s in self.steps)

    @property
    def kind(self) -> str:
        """How it ended: handled / auto / false_alarm / open."""
        return calc.handling_kind([self.record.status], self.human)


class Collector:
    """Reads one report's data; ``run`` returns the ReportData."""

    def __init__(self, stores: Stores, request: ReportRequest, now_ms: int, progress: Progress | None = None) -> None:
        self.stores = stores
        self.settings = stores.settings
        self.request = request
        self.lang = request.lang
        self.principal = request.principal
        self.ids = list(request.communities)
        self.now = ms_to_utc(now_ms)
        self.now_ms = now_ms
        self.start, self.end = request.start_utc, request.end_utc
        # time does not run beyond now: availability of a period still going is measured up to now
        self.cutoff = max(self.start, min(self.end, self.now))
        self.ref_date = min(request.end, self.now.astimezone(SHANGHAI).date())
        self.progress = progress or (lambda _pct, _what: None)
        self.multi = len(self.ids) > 1
        self.names: dict[str, str] = {}
        self.places: dict[str, str] = {}  # household / building / device id → label
        self.person_names: dict[str, str] = {}  # person id → name as the requester may see it
        self.floating_status: dict[str, Counter[str]] = defaultdict(Counter)  # community → status counts
        self.offline: dict[tuple[str, str], int] = defaultdict(int)  # (community, device type) → offline ms
        self.span_ms = 0
        self.tables: dict[str, Table] = {}
        self.figures: dict[str, Any] = {}
        self.charts: dict[str, Any] = {}

    # --- helpers --------------------------------------------------------------------------------
    def tr(self, key: str, **values: object) -> str:
        """A text in the report's language."""
        return t(key, self.lang, **values)

    def person_name(self, name: str | None) -> str:
        """A person's name as the requester's role may see it."""
        return name_for(self.principal, name) or "—"

    def note(self, text: str) -> str:
        """A note typed by staff: shown (scrubbed) to police and admins only; it may name people."""
        if self.principal.role not in NAMED_ROLES or not text:
            return ""
        return scrub(text.strip())[:120]

    def when(self, value: dt.datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
        """A stored UTC time shown in Asia/Shanghai."""
        return local_text(utc_to_ms(aware(value)), fmt) if value is not None else ""

    def community_col(self) -> list[Column]:
        """The community column, when the report covers several."""
        return [Column("community", "report.col.community", width=1.3)] if self.multi else []

    def with_community(self, community: str, row: dict[str, Any]) -> dict[str, Any]:
        """A row with its community's name first (several communities only)."""
        return {"community": self.names.get(community, community), **row} if self.multi else row

    # --- the whole report ------------------------------------------------------------------------
    def run(self) -> ReportData:
        """Read and aggregate everything."""
        with self.stores.sessions() as session:
            self.progress(5, "report.progress.registry")
            stats = self.load_communities(session)
            self.progress(15, "report.progress.alerts")
            alerts = self.load_alerts(session)
            self.load_places(session, alerts)
            self.progress(30, "report.progress.figures")
            self.alert_tables(alerts)
            self.response_tables(alerts)
            self.elder_table(session, alerts)
            self.floating_tables(session, alerts)
            self.visitor_tables(session)
            checkpoint_share = self.patrol_tables(session)
            self.device_table(session, alerts)
            self.key_figures(stats, alerts)
            self.progress(40, "report.progress.maps")
            maps = self.map_data(session, alerts, checkpoint_share)
        order = [
            "key_figures",
            "alerts_by_type",
            "alerts_by_hour",
            "response_times",
            "sla",
            "elders",
            "rentals",
            "floating",
            "visitor_passes",
            "gate_daily",
            "patrol_routes",
            "patrol_checkpoints",
            "devices",
            "alerts",
            "alert_steps",
        ]
        data = ReportData(
            request=self.request,
            generated_ms=self.now_ms,
            names=self.names,
            tables={k: self.tables[k] for k in order},
            figures=self.figures,
            charts=self.charts,
            maps=maps,
        )
        data.narrative = narrative(data)
        return data

    # --- registry -----------------------------------------------------------------------------
    def load_communities(self, session: Session) -> dict[str, dict[str, Any]]:
        """Names and the registry's counts per community."""
        for c in session.scalars(select(Community).where(Community.id.in_(self.ids))):
            self.names[c.id] = c.name if self.lang == "zh" else (c.name_en or c.name)
        stats = {c["id"]: c for c in community_stats(session, self.ids)["communities"]}
        return stats

    def load_alerts(self, session: Session) -> list[Alert]:
        """The alerts detected in the period, with their steps (the handling to date)."""
        alerts: dict[str, Alert] = {}
        for ids in chunks(self.ids, 200):
            query = (
                select(AlertRecord)
                .where(
                    AlertRecord.community_id.in_(ids),
                    AlertRecord.detected_at >= self.start,
                    AlertRecord.detected_at < self.end,
                )
                .order_by(AlertRecord.detected_at, AlertRecord.id)
            )
            for record in session.scalars(query):
                alerts[record.id] = Alert(record)
        keys = list(alerts)
        for ids in chunks(keys):
            for step in session.scalars(
                select(AlertStep).where(AlertStep.alert_id.in_(ids)).order_by(AlertStep.alert_id, AlertStep.id)
            ):
                alerts[step.alert_id].steps.append(
                    calc.Step(aware(step.at), step.action, step.status, step.actor, step.note or "")
                )
        return sorted(alerts.values(), key=lambda a: (a.detected, a.record.id))

    def load_places(self, session: Session, alerts: list[Alert]) -> None:
        """Labels of the buildings, households and devices the alerts name."""
        buildings = {a.record.subject.get("building") for a in alerts} - {None}
        households = {a.record.subject.get("household") for a in alerts} - {None}
        devices = {a.record.subject.get("device") for a in alerts} - {None}
        people = sorted({str(a.record.subject["person"]) for a in alerts if a.record.subject.get("person")})
        for ids in chunks(people):
            for pid, name in session.execute(select(Person.id, Person.name).where(Person.id.in_(ids))):
                self.person_names[pid] = self.person_name(name)
        self.label_households(session, [str(h) for h in households])
        for ids in chunks(sorted(str(b) for b in buildings if str(b) not in self.places)):
            for b in session.scalars(select(Building).where(Building.id.in_(ids))):
                self.places[b.id] = b.name if self.lang == "zh" else (b.name_en or b.name)
        for ids in chunks(sorted(str(d) for d in devices)):
            for did, name, dtype in session.execute(
                select(Device.id, Device.name, Device.type).where(Device.id.in_(ids))
            ):
                self.places[did] = (name if self.lang == "zh" else "") or self.tr(f"device.{dtype}") + " " + did

    def label_households(self, session: Session, households: Iterable[str]) -> None:
        """'3号楼 2单元 502' for each household not labelled yet."""
        wanted = sorted({h for h in households if h and h not in self.places})
        for ids in chunks(wanted):
            for hid, unit, room, name, name_en in session.execute(
                select(Household.id, Household.unit, Household.room, Building.name, Building.name_en)
                .join(Building, Building.id == Household.building_id)
                .where(Household.id.in_(ids))
            ):
                building = name if self.lang == "zh" else (name_en or name)
                self.places[hid] = self.tr("report.room", building=building, unit=unit, room=room)

    def place_of(self, subject: dict[str, Any]) -> str:
        """Where an alert happened, as a person reads it."""
        for key in ("household", "building", "device"):
            value = subject.get(key)
            if value and value in self.places:
                return self.places[value]
        return str(subject.get("household") or subject.get("building") or subject.get("device") or "—")

    # --- alerts -----------------------------------------------------------------------------
    def alert_tables(self, alerts: list[Alert]) -> None:
        """Alerts by type, by hour of day, and each alert with its timeline."""
        by_type: dict[str, Counter[str]] = defaultdict(Counter)
        hours = [0] * 24
        severities: Counter[str] = Counter()
        for a in alerts:
            by_type[a.record.type]["total"] += 1
            by_type[a.record.type][a.kind] += 1
            hours[a.detected.astimezone(SHANGHAI).hour] += 1
            severities[a.record.severity] += 1
        known = {name: i for i, name in enumerate(ALERT_TYPES)}
        ordered = sorted(by_type, key=lambda k: (-by_type[k]["total"], known.get(k, 99), k))
        self.tables["alerts_by_type"] = Table(
            "alerts_by_type",
            "report.table.alerts_by_type",
            [
                Column("type", "report.col.type_code", width=1.2),
                Column("label", "report.col.type", width=1.8),
                Column("total", "report.col.alerts", "int"),
                Column("handled", "report.col.handled", "int"),
                Column("auto", "report.col.auto", "int"),
                Column("false_alarm", "report.col.false_alarm", "int"),
                Column("open", "report.col.open", "int"),
            ],
            [
                {
                    "type": k,
                    "label": self.tr(f"alert.type.{k}"),
                    "total": by_type[k]["total"],
                    "handled": by_type[k]["handled"],
                    "auto": by_type[k]["auto"],
                    "false_alarm": by_type[k]["false_alarm"],
                    "open": by_type[k]["open"],
                }
                for k in ordered
            ],
        )
        self.tables["alerts_by_hour"] = Table(
            "alerts_by_hour",
            "report.table.alerts_by_hour",
            [Column("hour", "report.col.hour", "int"), Column("alerts", "report.col.alerts", "int")],
            [{"hour": h, "alerts": n} for h, n in enumerate(hours)],
        )
        self.charts["by_type"] = [(self.tr(f"alert.type.{k}"), by_type[k]["total"]) for k in ordered]
        self.charts["by_hour"] = hours
        kinds = Counter(a.kind for a in alerts)
        self.figures.update(
            alerts=len(alerts),
            severities={s: severities.get(s, 0) for s in SEVERITIES},
            handled=kinds["handled"],
            auto=kinds["auto"],
            false_alarms=kinds["false_alarm"],
            open=kinds["open"],
            top_type=ordered[0] if ordered else None,
            top_type_n=by_type[ordered[0]]["total"] if ordered else 0,
        )
        rows, steps = [], []
        for a in alerts:
            r = a.record
            person = ""
            if r.subject.get("person"):
                person = self.person_names.get(str(r.subject["person"]), "")
            timeline = []
            day = local_text(utc_to_ms(a.detected), "%m-%d")
            for s in a.steps:
                when = local_text(utc_to_ms(s.at), "%m-%d %H:%M").removeprefix(day + " ")  # the day once
                actor = s.actor if s.actor != "system" else self.tr("report.system")
                note = self.note(s.note)[:40]
                timeline.append(f"{when} {self.tr(f'step.{s.action}')} · {actor}" + (f" · {note}" if note else ""))
                steps.append(
                    {
                        "alert": r.id,
                        "at": local_text(utc_to_ms(s.at), "%Y-%m-%d %H:%M:%S"),
                        "action": self.tr(f"step.{s.action}"),
                        "status": self.tr(f"status.{s.status}"),
                        "actor": actor,
                        "note": self.note(s.note),
                    }
                )
            minutes = None
            if r.closed_at is not None:
                minutes = round((aware(r.closed_at) - a.detected).total_seconds() / 60, 1)
            rows.append(
                self.with_community(
                    r.community_id,
                    {
                        "id": r.id,
                        "detected": self.when(r.detected_at),
                        "type": self.tr(f"alert.type.{r.type}"),
                        "severity": self.tr(f"severity.{r.severity}"),
                        "place": self.place_of(r.subject),
                        "person": person or "—",
                        "status": self.tr(f"status.{r.status}"),
                        "handling": self.tr(f"report.kind.{a.kind}"),
                        "minutes": minutes,
                        "count": r.count,
                        "timeline": "\n".join(timeline),
                    },
                )
            )
        self.tables["alerts"] = Table(
            "alerts",
            "report.table.alerts",
            [
                *self.community_col(),
                Column("id", "report.col.alert_id", width=1.0),
                Column("detected", "report.col.detected", "time", width=1.0),
                Column("type", "report.col.type", width=1.3),
                Column("severity", "report.col.severity", width=0.5),
                Column("place", "report.col.place", width=1.25),
                Column("person", "report.col.person", width=0.65),
                Column("status", "report.col.status", width=0.65),
                Column("handling", "report.col.handling", width=0.7),
                Column("minutes", "report.col.minutes_to_close", "float", width=0.65),
                Column("count", "report.col.count", "int", width=0.45),
                Column("timeline", "report.col.timeline", width=2.9),
            ],
            rows,
        )
        self.tables["alert_steps"] = Table(
            "alert_steps",
            "report.table.alert_steps",
            [
                Column("alert", "report.col.alert_id"),
                Column("at", "report.col.at", "time"),
                Column("action", "report.col.action"),
                Column("status", "report.col.status"),
                Column("actor", "report.col.actor"),
                Column("note", "report.col.note", width=2.0),
            ],
            steps,
        )

    def response_tables(self, alerts: list[Alert]) -> None:
        """Minutes per handling stage (people's steps only) and SLA compliance."""
        minutes: dict[str, list[float]] = {s: [] for s in calc.STAGES}
        met: Counter[str] = Counter()
        missed: Counter[str] = Counter()
        escalations: Counter[str] = Counter()
        for a in alerts:
            severity = a.record.severity
            took = calc.stage_minutes(a.detected, a.steps)
            for stage, value in took.items():
                minutes[stage].append(value)
                target = calc.sla_minutes(stage, severity, self.settings)
                (met if value <= target else missed)[stage] += 1
            for s in a.steps:
                if s.action == "escalated":
                    escalated = ESCALATION_STAGES.get(s.note.split(":", 1)[0].strip())
                    if escalated:
                        escalations[escalated] += 1
            # nobody responded: still waiting past the target now, or cleared by the system after it
            if "acknowledged" not in took:
                target_ms = calc.sla_minutes("acknowledged", severity, self.settings) * 60_000
                waited_until = self.now if a.record.status in OPEN_STATUSES else aware(a.record.closed_at or self.now)
                if (waited_until - a.detected).total_seconds() * 1000 > target_ms:
                    missed["acknowledged"] += 1
            elif a.record.status in OPEN_STATUSES and a.record.status != "new":
                # stuck in its current stage past the next stage's target (as the loop's SLA timer)
                stage = NEXT_STAGE[a.record.status]
                if stage not in took:
                    since = max((s.at for s in a.steps if calc.is_human(s)), default=a.detected)
                    target = calc.sla_minutes(stage, severity, self.settings)
                    if (self.now - since).total_seconds() / 60 > target:
                        missed[stage] += 1
        ack_targets = "/".join(f"{self.settings.sla_ack_minutes.get(s, 15):g}" for s in reversed(SEVERITIES))
        rows, sla_rows = [], []
        for stage in calc.STAGES:
            figures = calc.summary(minutes[stage])
            rows.append({"stage": self.tr(f"stage.{stage}"), **figures})
            target_text = (
                self.tr("report.sla.ack_target", targets=ack_targets)
                if stage == "acknowledged"
                else f"{calc.sla_minutes(stage, 'high', self.settings):g}"
            )
            judged = met[stage] + missed[stage]
            sla_rows.append(
                {
                    "stage": self.tr(f"stage.{stage}"),
                    "target": target_text,
                    "judged": judged,
                    "met": met[stage],
                    "missed": missed[stage],
                    "compliance": calc.share(met[stage], judged),
                    "escalated": escalations[stage],
                }
            )
        self.tables["response_times"] = Table(
            "response_times",
            "report.table.response_times",
            [
                Column("stage", "report.col.stage"),
                Column("n", "report.col.n", "int"),
                Column("median", "report.col.median", "float"),
                Column("p90", "report.col.p90", "float"),
                Column("mean", "report.col.mean", "float"),
                Column("max", "report.col.max", "float"),
            ],
            rows,
            note="report.note.stages",
        )
        self.tables["sla"] = Table(
            "sla",
            "report.table.sla",
            [
                Column("stage", "report.col.stage"),
                Column("target", "report.col.target", width=1.6),
                Column("judged", "report.col.judged", "int"),
                Column("met", "report.col.met", "int"),
                Column("missed", "report.col.missed", "int"),
                Column("compliance", "report.col.compliance", "pct"),
                Column("escalated", "report.col.escalated", "int"),
            ],
            sla_rows,
            note="report.note.sla",
        )
        self.charts["stage_minutes"] = minutes
        self.charts["sla_targets"] = {
            stage: None if stage == "acknowledged" else calc.sla_minutes(stage, "high", self.settings)
            for stage in calc.STAGES
        }
        self.charts["sla"] = {stage: row["compliance"] for stage, row in zip(calc.STAGES, sla_rows, strict=True)}
        self.figures["sla"] = dict(zip(calc.STAGES, sla_rows, strict=True))
        self.figures["response"] = dict(zip(calc.STAGES, rows, strict=True))

    # --- elders ---------------------------------------------------------------------------------
    def people_with_tag(self, session: Session, tag: str) -> list[tuple[Person, str | None]]:
        """(person, household) of the communities' people with a tag."""
        out: dict[str, tuple[Person, str | None]] = {}
        for ids in chunks(self.ids, 200):
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

    def elder_table(self, session: Session, alerts: list[Alert]) -> None:
        """Every elder living alone with the period's care alerts and how they were handled."""
        elders = self.people_with_tag(session, "elderly_alone")
        self.label_households(session, [h for _, h in elders if h])
        by_household = {h: p.id for p, h in elders if h}
        mine: dict[str, list[Alert]] = defaultdict(list)
        for a in alerts:
            if a.record.type not in ELDER_TYPES:
                continue
            person = a.record.subject.get("person") or by_household.get(str(a.record.subject.get("household")))
            if person:
                mine[str(person)].append(a)
        rows = []
        for person, household in elders:
            found = mine.get(person.id, [])
            kinds = Counter(a.kind for a in found)
            types = Counter(a.record.type for a in found)
            responses = [calc.stage_minutes(a.detected, a.steps).get("acknowledged") for a in found]
            first = [m for m in responses if m is not None]
            rows.append(
                self.with_community(
                    person.community_id,
                    {
                        "name": self.person_name(person.name),
                        "place": self.places.get(household or "", household or "—"),
                        "inactive": types["elder.inactive"],
                        "routine": types["elder.routine"],
                        "silent": types["sensor.silent"],
                        "last": self.when(found[-1].record.detected_at) if found else "",
                        "handled": kinds["handled"] + kinds["false_alarm"],
                        "auto": kinds["auto"],
                        "open": kinds["open"],
                        "response": calc.summary(first)["median"],
                    },
                )
            )
        rows.sort(key=lambda r: -(r["inactive"] + r["routine"] + r["silent"]))
        self.tables["elders"] = Table(
            "elders",
            "report.table.elders",
            [
                *self.community_col(),
                Column("name", "report.col.person", width=0.8),
                Column("place", "report.col.place", width=1.6),
                Column("inactive", "report.col.elder_inactive", "int"),
                Column("routine", "report.col.elder_routine", "int"),
                Column("silent", "report.col.sensor_silent", "int"),
                Column("last", "report.col.last_alert", "time", width=1.6),
                Column("handled", "report.col.handled", "int"),
                Column("auto", "report.col.auto", "int"),
                Column("open", "report.col.open", "int"),
                Column("response", "report.col.first_response", "float"),
            ],
            rows,
            note="report.note.elders",
        )
        alerted = [r for r in rows if r["inactive"] + r["routine"] + r["silent"]]
        elder_alerts = [a for a in alerts if a.record.type in ELDER_TYPES]
        self.figures["elders"] = {
            "total": len(elders),
            "alerted": len(alerted),
            "alerts": len(elder_alerts),
            "open": sum(1 for a in elder_alerts if a.kind == "open"),
            "handled": sum(1 for a in elder_alerts if a.kind in ("handled", "false_alarm")),
            "auto": sum(1 for a in elder_alerts if a.kind == "auto"),
        }

    # --- rentals and floating population -----------------------------------------------------------
    def floating_tables(self, session: Session, alerts: list[Alert]) -> None:
        """Rental households per community, and each floating resident's registration status."""
        floating = self.people_with_tag(session, "floating")
        self.label_households(session, [h for _, h in floating if h])
        rows = []
        status_by_community = self.floating_status
        for person, household in floating:
            status = calc.floating_status(person.floating_registered_on, person.floating_expires_on, self.ref_date)
            status_by_community[person.community_id][status] += 1
            rows.append(
                self.with_community(
                    person.community_id,
                    {
                        "name": self.person_name(person.name),
                        "place": self.places.get(household or "", household or "—"),
                        "registered": person.floating_registered_on.isoformat()
                        if person.floating_registered_on
                        else "",
                        "expires": person.floating_expires_on.isoformat() if person.floating_expires_on else "",
                        "status": self.tr(f"report.floating.{status}"),
                        "_status": status,
                    },
                )
            )
        urgency = {"unregistered": 0, "expired": 1, "expiring": 2, "valid": 3}
        rows.sort(key=lambda r: (urgency[r["_status"]], r.get("expires") or ""))
        for row in rows:
            row.pop("_status")
        self.tables["floating"] = Table(
            "floating",
            "report.table.floating",
            [
                *self.community_col(),
                Column("name", "report.col.person", width=0.8),
                Column("place", "report.col.place", width=1.6),
                Column("registered", "report.col.registered_on", "date"),
                Column("expires", "report.col.expires_on", "date"),
                Column("status", "report.col.registration", width=0.8),
            ],
            rows,
            note="report.note.floating",
        )
        # rentals: households, tenants, the period's tenant/lock alerts and registrations from tasks
        categories: dict[str, Counter[str]] = defaultdict(Counter)
        tenants: Counter[str] = Counter()
        for ids in chunks(self.ids, 200):
            for cid, category, n in session.execute(
                select(Household.community_id, Household.category, func.count())
                .where(Household.community_id.in_(ids))
                .group_by(Household.community_id, Household.category)
            ):
                categories[cid][category] = int(n)
            for cid, n in session.execute(
                select(Household.community_id, func.count(func.distinct(Residency.person_id)))
                .join(Residency, Residency.household_id == Household.id)
                .where(
                    Household.community_id.in_(ids),
                    Household.category.in_(("rental", "group_rental")),
                    Residency.role == "tenant",
                )
                .group_by(Household.community_id)
            ):
                tenants[cid] = int(n)
        tenant_alerts: dict[str, Counter[str]] = defaultdict(Counter)
        tenant_ids = [a.record.id for a in alerts if a.record.type == "tenant.unregistered"]
        for a in alerts:
            if a.record.type in ("tenant.unregistered", "lock.unregistered"):
                tenant_alerts[a.record.community_id][a.record.type] += 1
        registered: Counter[str] = Counter()
        for ids in chunks(tenant_ids):
            for cid, n in session.execute(
                select(Task.community_id, func.count())
                .where(Task.alert_id.in_(ids), Task.outcome == "registered")
                .group_by(Task.community_id)
            ):
                registered[cid] = int(n)
        rental_rows = []
        for cid in self.ids:
            counts = status_by_community.get(cid, Counter())
            rental_rows.append(
                {
                    "community": self.names.get(cid, cid),
                    "rentals": categories[cid]["rental"],
                    "group_rentals": categories[cid]["group_rental"],
                    "tenants": tenants[cid],
                    "floating": sum(counts.values()),
                    "valid": counts["valid"],
                    "expiring": counts["expiring"],
                    "expired": counts["expired"],
                    "unregistered": counts["unregistered"],
                    "tenant_alerts": tenant_alerts[cid]["tenant.unregistered"],
                    "lock_alerts": tenant_alerts[cid]["lock.unregistered"],
                    "registered": registered[cid],
                }
            )
        self.tables["rentals"] = Table(
            "rentals",
            "report.table.rentals",
            [
                Column("community", "report.col.community", width=1.3),
                Column("rentals", "kpi.rentals", "int"),
                Column("group_rentals", "kpi.group_rentals", "int"),
                Column("tenants", "report.col.tenants", "int"),
                Column("floating", "tag.floating", "int"),
                Column("valid", "report.floating.valid", "int"),
                Column("expiring", "report.floating.expiring", "int"),
                Column("expired", "report.floating.expired", "int"),
                Column("unregistered", "report.floating.unregistered", "int"),
                Column("tenant_alerts", "alert.type.tenant.unregistered", "int"),
                Column("lock_alerts", "alert.type.lock.unregistered", "int"),
                Column("registered", "report.col.registered_from_task", "int"),
            ],
            rental_rows,
        )
        totals: Counter[str] = Counter()
        for row in rental_rows:
            totals.update({k: v for k, v in row.items() if isinstance(v, int)})
        self.figures["floating"] = dict(totals)

    # --- visitors and gates ---------------------------------------------------------------------
    def visitor_tables(self, session: Session) -> None:
        """Visitor passes applied for in the period by status; gate entries and exits per day."""
        passes: dict[str, Counter[str]] = defaultdict(Counter)
        entered: Counter[str] = Counter()
        gate: dict[tuple[str, dt.date], Counter[str]] = defaultdict(Counter)
        hours_in, hours_out = [0] * 24, [0] * 24
        for ids in chunks(self.ids, 200):
            for cid, status, n, came in session.execute(
                select(VisitorPass.community_id, VisitorPass.status, func.count(), func.count(VisitorPass.entered_at))
                .where(
                    VisitorPass.community_id.in_(ids),
                    VisitorPass.created_at >= self.start,
                    VisitorPass.created_at < self.end,
                )
                .group_by(VisitorPass.community_id, VisitorPass.status)
            ):
                passes[cid][status] += int(n)
                entered[cid] += int(came)
            for cid, day, hour, kind, direction, category, summed in session.execute(
                select(
                    GateHourly.community_id,
                    GateHourly.day,
                    GateHourly.hour,
                    GateHourly.kind,
                    GateHourly.direction,
                    GateHourly.category,
                    func.sum(GateHourly.count),
                )
                .where(
                    GateHourly.community_id.in_(ids),
                    GateHourly.day >= self.request.start,
                    GateHourly.day <= self.request.end,
                )
                .group_by(
                    GateHourly.community_id,
                    GateHourly.day,
                    GateHourly.hour,
                    GateHourly.kind,
                    GateHourly.direction,
                    GateHourly.category,
                )
            ):
                n = int(summed or 0)
                counter = gate[(cid, day)]
                counter[f"{kind}_{direction}"] += n
                if direction == "in" and category in ("visitor", "unknown", "blacklisted"):
                    counter[f"{category}_in"] += n
                if 0 <= int(hour) < 24:
                    (hours_in if direction == "in" else hours_out)[int(hour)] += n
        pass_rows = []
        for cid in self.ids:
            counts = passes.get(cid, Counter())
            pass_rows.append(
                {
                    "community": self.names.get(cid, cid),
                    **{status: counts[status] for status in PASS_STATUSES},
                    "total": sum(counts.values()),
                    "entered": entered[cid],
                }
            )
        self.tables["visitor_passes"] = Table(
            "visitor_passes",
            "report.table.visitor_passes",
            [
                Column("community", "report.col.community", width=1.3),
                *(Column(status, f"report.pass.{status}", "int") for status in PASS_STATUSES),
                Column("total", "report.col.total", "int"),
                Column("entered", "report.col.entered", "int"),
            ],
            pass_rows,
        )
        gate_keys = ("face_in", "face_out", "vehicle_in", "vehicle_out", "visitor_in", "unknown_in", "blacklisted_in")
        gate_rows = []
        for (cid, day), counter in sorted(gate.items(), key=lambda item: (item[0][1], item[0][0])):
            gate_rows.append(self.with_community(cid, {"day": day.isoformat(), **{k: counter[k] for k in gate_keys}}))
        if gate_rows:
            total = {k: sum(int(r[k]) for r in gate_rows) for k in gate_keys}
            gate_rows.append({**({"community": ""} if self.multi else {}), "day": self.tr("report.total"), **total})
            gate_rows[-1]["_total"] = True
        self.tables["gate_daily"] = Table(
            "gate_daily",
            "report.table.gate_daily",
            [
                *self.community_col(),
                Column("day", "report.col.date", "date"),
                *(Column(k, f"report.gate.{k}", "int") for k in gate_keys),
            ],
            gate_rows,
        )
        self.charts["gate_hours"] = {"in": hours_in, "out": hours_out}
        all_passes: Counter[str] = Counter()
        for counts in passes.values():
            all_passes.update(counts)
        self.figures["visitors"] = {
            "passes": sum(all_passes.values()),
            "approved": all_passes["approved"],
            "pending": all_passes["pending"],
            "rejected": all_passes["rejected"],
            "entered": sum(entered.values()),
            "entries": sum(hours_in),
            "exits": sum(hours_out),
        }

    # --- patrol -------------------------------------------------------------------------------
    def patrol_tables(self, session: Session) -> dict[str, float | None]:
        """Rounds per route (on time / late / missed) and each checkpoint's on-time share."""
        routes: dict[str, PatrolRoute] = {}
        for ids in chunks(self.ids, 200):
            for route in session.scalars(select(PatrolRoute).where(PatrolRoute.community_id.in_(ids))):
                routes[route.id] = route
        checkpoint_names: dict[str, str] = {}
        device_ids = sorted({cp.device_id for r in routes.values() for cp in r.checkpoints})
        for ids in chunks(device_ids):
            for did, name in session.execute(select(Device.id, Device.name).where(Device.id.in_(ids))):
                checkpoint_names[did] = name or did
        per_route: dict[str, Counter[str]] = defaultdict(Counter)
        per_checkpoint: dict[str, Counter[str]] = defaultdict(Counter)
        route_community: dict[str, str] = {rid: r.community_id for rid, r in routes.items()}
        for ids in chunks(self.ids, 200):
            for rnd in session.scalars(
                select(PatrolRound).where(
                    PatrolRound.community_id.in_(ids),
                    PatrolRound.round_start >= self.start,
                    PatrolRound.round_start < self.end,
                )
            ):
                route_community.setdefault(rnd.route_id, rnd.community_id)
                late = list(rnd.late or [])
                missed = list(rnd.missed or [])
                counter = per_route[rnd.route_id]
                counter["rounds"] += 1
                counter["expected"] += int(rnd.expected or 0)
                counter["on_time"] += int(rnd.on_time or 0)
                counter["late"] += len(late)
                counter["missed"] += len(missed)
                planned = routes.get(rnd.route_id)
                if planned is None:
                    continue
                by_seq = {cp.seq: cp.device_id for cp in planned.checkpoints}
                known = set(by_seq.values())
                for cp in planned.checkpoints:
                    per_checkpoint[cp.device_id]["rounds"] += 1
                for outcome, entries in (("late", late), ("missed", missed)):
                    for entry in entries:
                        device = calc.checkpoint_of(entry, by_seq, known)
                        if device is not None:
                            per_checkpoint[device][outcome] += 1
        route_rows = []
        for rid in sorted(per_route, key=lambda r: (route_community.get(r, ""), r)):
            c = per_route[rid]
            known_route = routes.get(rid)
            route_rows.append(
                self.with_community(
                    route_community.get(rid, ""),
                    {
                        "route": known_route.name if known_route else rid,
                        "rounds": c["rounds"],
                        "expected": c["expected"],
                        "on_time": c["on_time"],
                        "late": c["late"],
                        "missed": c["missed"],
                        "on_time_pct": calc.share(c["on_time"], c["expected"]),
                        "done_pct": calc.share(c["on_time"] + c["late"], c["expected"]),
                    },
                )
            )
        self.tables["patrol_routes"] = Table(
            "patrol_routes",
            "report.table.patrol_routes",
            [
                *self.community_col(),
                Column("route", "report.col.route", width=1.6),
                Column("rounds", "report.col.rounds", "int"),
                Column("expected", "report.col.expected", "int"),
                Column("on_time", "report.col.on_time", "int"),
                Column("late", "report.col.late", "int"),
                Column("missed", "report.col.missed_points", "int"),
                Column("on_time_pct", "report.col.on_time_pct", "pct"),
                Column("done_pct", "report.col.done_pct", "pct"),
            ],
            route_rows,
        )
        share: dict[str, float | None] = {}
        cp_rows = []
        for _, route in sorted(routes.items(), key=lambda item: (item[1].community_id, item[0])):
            for cp in route.checkpoints:
                c = per_checkpoint.get(cp.device_id, Counter())
                on_time = max(0, c["rounds"] - c["late"] - c["missed"])
                share[cp.device_id] = calc.share(on_time, c["rounds"])
                if not c["rounds"]:
                    continue
                cp_rows.append(
                    self.with_community(
                        route.community_id,
                        {
                            "route": route.name,
                            "seq": cp.seq,
                            "checkpoint": checkpoint_names.get(cp.device_id, cp.device_id),
                            "rounds": c["rounds"],
                            "on_time": on_time,
                            "late": c["late"],
                            "missed": c["missed"],
                            "on_time_pct": share[cp.device_id],
                        },
                    )
                )
        self.tables["patrol_checkpoints"] = Table(
            "patrol_checkpoints",
            "report.table.patrol_checkpoints",
            [
                *self.community_col(),
                Column("route", "report.col.route", width=1.4),
                Column("seq", "report.col.seq", "int", width=0.5),
                Column("checkpoint", "report.col.checkpoint", width=1.2),
                Column("rounds", "report.col.rounds", "int"),
                Column("on_time", "report.col.on_time", "int"),
                Column("late", "report.col.late", "int"),
                Column("missed", "report.col.missed_points", "int"),
                Column("on_time_pct", "report.col.on_time_pct", "pct"),
            ],
            cp_rows,
        )
        totals: Counter[str] = Counter()
        for c in per_route.values():
            totals.update(c)
        self.charts["patrol"] = [(r["route"], r["on_time"], r["late"], r["missed"]) for r in route_rows]
        self.figures["patrol"] = {
            **{k: totals[k] for k in ("rounds", "expected", "on_time", "late", "missed")},
            "on_time_pct": calc.share(totals["on_time"], totals["expected"]),
        }
        return share

    # --- devices --------------------------------------------------------------------------------
    def live_status(self) -> dict[str, dict[str, str]] | None:
        """online/offline per device from the live store, or None when Redis cannot be reached."""
        from store.live import device_status

        try:
            with self.stores.sessions() as session:
                doors = {c: queries.door_sensor_ids(session, c) for c in self.ids}
            return {c: device_status(self.stores, c, self.now_ms, door_sensors=doors[c]) for c in self.ids}
        except (*STORE_ERRORS, StoreUnavailable, OSError) as err:
            # expected from the command line when the embedded Redis is not running: no live column
            log.info("live device status unavailable for the report: %s", err)
            return None

    def offline_window(self, record: AlertRecord) -> tuple[dt.datetime, dt.datetime]:
        """When a device was down: from the silence the rule saw to the alert's closing (or now)."""
        began = aware(record.detected_at)
        since_text = record.evidence.get("offline_since") or record.evidence.get("silent_since")
        if isinstance(since_text, str):
            try:
                began = aware(dt.datetime.fromisoformat(since_text.replace("Z", "+00:00")))
            except ValueError:
                began = aware(record.detected_at)
        ended = aware(record.closed_at) if record.closed_at is not None else self.cutoff
        return began, ended

    def device_table(self, session: Session, alerts: list[Alert]) -> None:
        """Per device type: how many, the period's offline alerts and hours, availability, live status."""
        registered: Counter[str] = Counter()
        device_type: dict[str, str] = {}
        for ids in chunks(self.ids, 200):
            for did, dtype in session.execute(select(Device.id, Device.type).where(Device.community_id.in_(ids))):
                registered[dtype] += 1
                device_type[did] = dtype
        offline_alerts: Counter[str] = Counter(
            device_type.get(str(a.record.subject.get("device") or ""), "")
            for a in alerts
            if a.record.type in OFFLINE_TYPES
        )
        # downtime inside the period: the period's offline alerts, and those still open from before it
        records = [a.record for a in alerts if a.record.type in OFFLINE_TYPES]
        for ids in chunks(self.ids, 200):
            records += session.scalars(
                select(AlertRecord).where(
                    AlertRecord.community_id.in_(ids),
                    AlertRecord.type.in_(OFFLINE_TYPES),
                    AlertRecord.detected_at < self.start,
                    (AlertRecord.closed_at.is_(None)) | (AlertRecord.closed_at > self.start),
                )
            ).all()
        for record in records:
            kind = device_type.get(str(record.subject.get("device") or ""))
            if kind:
                began, ended = self.offline_window(record)
                self.offline[(record.community_id, kind)] += calc.overlap_ms(began, ended, self.start, self.cutoff)
        self.span_ms = max(0, int((self.cutoff - self.start).total_seconds() * 1000))
        down: Counter[str] = Counter()
        for (_, dtype), ms in self.offline.items():
            down[dtype] += ms
        live = self.live_status()
        online: Counter[str] = Counter()
        offline_now: Counter[str] = Counter()
        for states in (live or {}).values():
            for did, state in states.items():
                if did in device_type:
                    (online if state == "online" else offline_now)[device_type[did]] += 1
        rows = [
            {
                "type": self.tr(f"device.{dtype}"),
                "registered": registered[dtype],
                "offline_alerts": offline_alerts[dtype],
                "offline_hours": round(down[dtype] / 3_600_000, 1),
                "availability": calc.availability(down[dtype], registered[dtype], self.span_ms),
                "online_now": online[dtype] if live is not None else None,
                "offline_now": offline_now[dtype] if live is not None else None,
            }
            for dtype in DEVICE_TYPES
            if registered[dtype]
        ]
        self.tables["devices"] = Table(
            "devices",
            "report.table.devices",
            [
                Column("type", "report.col.device_type", width=1.3),
                Column("registered", "report.col.registered", "int"),
                Column("offline_alerts", "report.col.offline_alerts", "int"),
                Column("offline_hours", "report.col.offline_hours", "float"),
                Column("availability", "report.col.availability", "pct"),
                Column("online_now", "report.col.online_now", "int"),
                Column("offline_now", "report.col.offline_now", "int"),
            ],
            rows,
            note="report.note.devices",
        )
        total = sum(registered.values())
        self.figures["devices"] = {
            "registered": total,
            "offline_alerts": sum(offline_alerts[d] for d in registered),
            "availability": calc.availability(sum(down.values()), total, self.span_ms),
            "online_now": sum(online.values()) if live is not None else None,
            "reporting": sum(online.values()) + sum(offline_now.values()) if live is not None else None,
        }
        self.charts["devices"] = [(r["type"], r["availability"]) for r in rows]

    # --- key figures ------------------------------------------------------------------------------
    def key_figures(self, stats: dict[str, dict[str, Any]], alerts: list[Alert]) -> None:
        """One row per community (and a total row when there are several)."""
        alerts_by: Counter[str] = Counter(a.record.community_id for a in alerts)
        rows: list[dict[str, Any]] = []
        for cid in self.ids:
            s = stats.get(cid, {})
            status = self.floating_status[cid]
            devices = int(sum((s.get("devices") or {}).values()))
            down = sum(ms for (community, _), ms in self.offline.items() if community == cid)
            availability = calc.availability(down, devices, self.span_ms)
            rows.append(
                {
                    "community": self.names.get(cid, cid),
                    "residents": int(s.get("residents", 0)),
                    "households": int(s.get("households", 0)),
                    "rentals": int(s.get("rentals", 0)),
                    "group_rentals": int(s.get("group_rentals", 0)),
                    "elderly_alone": int(s.get("elderly_alone", 0)),
                    "floating_registered": status["valid"] + status["expiring"],
                    "floating_expired": status["expired"],
                    "devices": devices,
                    "availability": availability,
                    "guards": int(s.get("guards", 0)),
                    "alerts": alerts_by[cid],
                }
            )
        if len(rows) > 1:
            total: dict[str, Any] = {"community": self.tr("report.total"), "_total": True}
            for key in rows[0]:
                if key not in ("community", "availability"):
                    total[key] = sum(int(r[key] or 0) for r in rows)
            total["availability"] = self.figures["devices"]["availability"]
            rows.append(total)
        self.tables["key_figures"] = Table(
            "key_figures",
            "report.table.key_figures",
            [
                Column("community", "report.col.community", width=1.5),
                Column("residents", "kpi.residents", "int"),
                Column("households", "kpi.households", "int"),
                Column("rentals", "kpi.rentals", "int"),
                Column("group_rentals", "kpi.group_rentals", "int"),
                Column("elderly_alone", "kpi.elderly", "int"),
                Column("floating_registered", "report.col.floating_registered", "int"),
                Column("floating_expired", "report.col.floating_expired", "int"),
                Column("devices", "report.col.devices", "int"),
                Column("availability", "report.col.availability", "pct"),
                Column("guards", "report.col.guards", "int"),
                Column("alerts", "report.col.alerts", "int"),
            ],
            rows,
        )
        self.figures["registry"] = rows[-1]

    # --- maps -----------------------------------------------------------------------------------
    def map_data(
        self, session: Session, alerts: list[Alert], checkpoint_share: dict[str, float | None]
    ) -> list[MapData]:
        """Boundary, buildings by category, paths, the period's alerts and checkpoints per community."""
        if len(self.ids) > self.settings.report_map_limit:
            per: Counter[str] = Counter(a.record.community_id for a in alerts)
            self.charts["overview"] = [
                (self.names.get(cid, cid), lat, lon, per[cid])
                for ids in chunks(self.ids, 200)
                for cid, lat, lon in session.execute(
                    select(Community.id, Community.center_lat, Community.center_lon).where(Community.id.in_(ids))
                )
            ]
            return []
        out = []
        checkpoints: dict[str, list[tuple[float, float, float | None]]] = defaultdict(list)
        device_ids = sorted(checkpoint_share)
        for ids in chunks(device_ids):
            for did, cid, lat, lon in session.execute(
                select(Device.id, Device.community_id, Device.lat, Device.lon).where(Device.id.in_(ids))
            ):
                checkpoints[cid].append((lat, lon, checkpoint_share.get(did)))
        points: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
        for a in alerts:
            if a.record.lat is not None and a.record.lon is not None:
                points[a.record.community_id].append((a.record.lat, a.record.lon, a.record.severity))
        scope = self.principal.scope
        for cid in self.ids:
            community = session.get(Community, cid)
            if community is None:
                continue
            layer = queries.building_layer(session, scope, cid)
            buildings = [(f["geometry"], str(f["properties"]["category"])) for f in layer["features"]]
            paths = [
                json.loads(g)
                for g in session.scalars(select(PathSegment.geometry).where(PathSegment.community_id == cid))
            ]
            out.append(
                MapData(
                    community=cid,
                    name=self.names.get(cid, cid),
                    boundary=json.loads(community.boundary) if community.boundary else None,
                    buildings=buildings,
                    paths=paths,
                    alerts=points.get(cid, []),
                    checkpoints=checkpoints.get(cid, []),
                )
            )
        return out


def collect(stores: Stores, request: ReportRequest, *, now_ms: int, progress: Progress | None = None) -> ReportData:
    """Read and aggregate a report's data."""
    return Collector(stores, request, now_ms, progress).run()
