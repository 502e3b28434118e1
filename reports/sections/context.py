"""What the report's sections share: the frozen load context they read (the request, its
communities, the period's alerts with their steps, labels of places and people, the stores, now),
the result a section returns, and the helpers several sections use."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from alerts.models import AlertRecord
from auth.labels import relabel, subject_place
from auth.masking import NAMED_ROLES, name_for
from auth.principal import Principal
from core.i18n import Lang, t
from core.settings import Settings
from core.timefmt import SHANGHAI, aware, local_text, ms_to_utc, utc_to_ms
from registry.models import Person
from reports import calc
from reports.model import Column, ReportRequest, Table
from store.stores import Stores

Progress = Callable[[int, str], None]
T = TypeVar("T")
CHUNK = 500
ID_NUMBER_RE = re.compile(r"(?<![0-9A-Za-z])([0-9]{6})[0-9]{8}([0-9]{3}[0-9Xx])(?![0-9A-Za-z])")
MOBILE_RE = re.compile(r"(?<![0-9])(1[3-9][0-9])[0-9]{4}([0-9]{4})(?![0-9])")
COMMUNITY_COLUMN = Column("community", "report.col.community", width=1.3)


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    """Slices of at most size items (bounded IN lists)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def scrub(text: str) -> str:
    """Free text with any ID number or mobile number in it masked (notes typed by people)."""
    text = ID_NUMBER_RE.sub(lambda m: m.group(1) + "********" + m.group(2), text)
    return MOBILE_RE.sub(lambda m: m.group(1) + "****" + m.group(2), text)


def when(value: dt.datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A stored UTC time shown in Asia/Shanghai."""
    return local_text(utc_to_ms(aware(value)), fmt) if value is not None else ""


def masked_name(principal: Principal, name: str | None) -> str:
    """A person's name as the principal's role may see it."""
    return name_for(principal, name) or "—"


@dataclass(frozen=True)
class Alert:
    """An alert of the period with its steps."""

    record: AlertRecord
    steps: tuple[calc.Step, ...] = ()

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


Tagged = tuple[Person, str | None]  # a person with a tag, and their household


@dataclass(frozen=True)
class LoadContext:
    """Everything read before the sections run (``sections.load.load_context``); sections only read it."""

    stores: Stores
    session: Session  # open while the sections run: they read the rest through it
    request: ReportRequest
    now_ms: int
    progress: Progress
    names: Mapping[str, str]  # community id → name in the report's language
    stats: Mapping[str, dict[str, Any]]  # community id → the registry's counts
    alerts: tuple[Alert, ...]  # detected in the period, with their steps to date
    places: Mapping[str, str]  # every id the alerts name (place, person, guard, account) → label
    person_names: Mapping[str, str]  # person id → name as the requester may see it
    elders: tuple[Tagged, ...]  # elders living alone
    floating: tuple[Tagged, ...]  # the floating population

    @property
    def settings(self) -> Settings:
        """The settings (SLA targets, the map limit)."""
        return self.stores.settings

    @property
    def lang(self) -> Lang:
        """The report's language."""
        return self.request.lang

    @property
    def principal(self) -> Principal:
        """Who asked: decides the masking."""
        return self.request.principal

    @property
    def ids(self) -> tuple[str, ...]:
        """The communities, in the request's order."""
        return self.request.communities

    @property
    def multi(self) -> bool:
        """True when the report covers several communities."""
        return len(self.ids) > 1

    @property
    def now(self) -> dt.datetime:
        """Now (aware UTC)."""
        return ms_to_utc(self.now_ms)

    @property
    def start(self) -> dt.datetime:
        """The first instant of the period (UTC)."""
        return self.request.start_utc

    @property
    def end(self) -> dt.datetime:
        """The first instant after the period (UTC)."""
        return self.request.end_utc

    @property
    def cutoff(self) -> dt.datetime:
        """The end of the period, or now when the period is still going: time does not run beyond now."""
        return max(self.start, min(self.end, self.now))

    @property
    def span_ms(self) -> int:
        """How long the period has run, up to now (ms): the time availability is measured over."""
        return max(0, int((self.cutoff - self.start).total_seconds() * 1000))

    @property
    def ref_date(self) -> dt.date:
        """The day registrations are judged on: the period's last day, or today."""
        return min(self.request.end, self.now.astimezone(SHANGHAI).date())

    def tr(self, key: str, **values: object) -> str:
        """A text in the report's language."""
        return t(key, self.lang, **values)

    def person_name(self, name: str | None) -> str:
        """A person's name as the requester's role may see it."""
        return masked_name(self.principal, name)

    def note(self, text: str) -> str:
        """A note typed by staff: shown (scrubbed) to police and admins only; it may name people."""
        if self.principal.role not in NAMED_ROLES or not text:
            return ""
        return scrub(text.strip())[:120]

    def place_of(self, subject: dict[str, Any]) -> str:
        """Where an alert happened, as a person reads it."""
        place = subject_place(subject)
        return self.places.get(place, place) or "—"

    def label(self, text: str) -> str:
        """A text (an actor, a note) with the ids in it as people read them."""
        return relabel(text, self.places)

    def community_col(self) -> list[Column]:
        """The community column, when the report covers several."""
        return [COMMUNITY_COLUMN] if self.multi else []

    def with_community(self, community: str, row: dict[str, Any]) -> dict[str, Any]:
        """A row with its community's name first (several communities only)."""
        return {"community": self.names.get(community, community), **row} if self.multi else row


@dataclass(frozen=True)
class SectionResult:
    """What a section adds to the report: its tables by key, figures and chart data."""

    tables: Mapping[str, Table] = field(default_factory=dict)
    figures: Mapping[str, Any] = field(default_factory=dict)
    charts: Mapping[str, Any] = field(default_factory=dict)
