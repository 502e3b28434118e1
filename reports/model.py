"""What a report is made of: the request, its tables (the same rows go to PDF, CSV and XLSX), the
figures the narrative and the charts read, and the map data."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal

from auth.principal import Principal
from core.i18n import Lang, t
from core.timefmt import SHANGHAI
from geodata.solid import BuildingInput

FORMATS = ("pdf", "csv", "xlsx")
REPORT_ROLES = ("police", "wall", "property", "admin")
Kind = Literal["text", "int", "float", "pct", "date", "time"]


@dataclass(frozen=True)
class ReportRequest:
    """One report: which communities, which local dates (inclusive), in which language, for whom."""

    communities: tuple[str, ...]
    start: dt.date
    end: dt.date
    lang: Lang
    principal: Principal
    city: bool = False  # every community in the requester's scope

    @property
    def days(self) -> int:
        """How many local days the period covers."""
        return (self.end - self.start).days + 1

    @property
    def start_utc(self) -> dt.datetime:
        """The first instant of the period (local midnight of the first day), in UTC."""
        return local_midnight_utc(self.start)

    @property
    def end_utc(self) -> dt.datetime:
        """The first instant after the period (local midnight after the last day), in UTC."""
        return local_midnight_utc(self.end + dt.timedelta(days=1))


def local_midnight_utc(day: dt.date) -> dt.datetime:
    """00:00 Asia/Shanghai of a local date, as an aware UTC datetime."""
    return dt.datetime.combine(day, dt.time(0), tzinfo=SHANGHAI).astimezone(dt.UTC)


@dataclass(frozen=True)
class Column:
    """A column of a report table: its key, its label's i18n key, and how to show its values."""

    key: str
    label: str  # i18n key
    kind: Kind = "text"
    width: float = 1.0  # relative width in the PDF


@dataclass
class Table:
    """A table of the report; ``rows`` hold plain values (numbers stay numbers for CSV/XLSX)."""

    key: str  # file / sheet name
    title: str  # i18n key
    columns: list[Column]
    rows: list[dict[str, Any]] = field(default_factory=list)
    note: str = ""  # i18n key of a note shown under the PDF table

    def labels(self, lang: str) -> list[str]:
        """The column headers in the report's language."""
        return [t(c.label, lang) for c in self.columns]


@dataclass
class MapData:
    """What the map of one community shows (WGS-84)."""

    community: str
    name: str
    boundary: dict[str, Any] | None
    buildings: list[tuple[dict[str, Any], str]]  # (geometry, category class)
    paths: list[dict[str, Any]]
    alerts: list[tuple[float, float, str]]  # (lat, lon, severity)
    checkpoints: list[tuple[float, float, float | None]]  # (lat, lon, on-time share or None)
    # the 3D still (reports/model3d.py): the community's centre, its buildings as the model takes them,
    # and each building with alerts in the period → the most serious one's severity
    center: tuple[float, float] | None = None
    solids: list[BuildingInput] = field(default_factory=list)
    alert_buildings: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Coverage:
    """How far a daily report's data runs: the last instant of its day the worker had processed
    (None: no event of the community processed yet) and whether the whole day was in."""

    until_ms: int | None
    complete: bool


def local_minute(ms: int, lang: str) -> str:
    """12月5日 23:59 / 5 Dec 23:59 (Asia/Shanghai)."""
    local = dt.datetime.fromtimestamp(ms / 1000, tz=SHANGHAI)
    if lang == "zh":
        return f"{local.month}月{local.day}日 {local:%H:%M}"
    return f"{local.day} {local:%b %H:%M}"


def coverage_text(coverage: Coverage, lang: str) -> str:
    """数据截至 12月5日 23:59 — the line the daily PDF and the reports page show."""
    if coverage.until_ms is None:
        return t("report.daily.no_events", lang)
    key = "report.daily.until" if coverage.complete else "report.daily.until_partial"
    return t(key, lang, at=local_minute(coverage.until_ms, lang))


@dataclass
class ReportData:
    """Everything a renderer needs; renderers only lay it out."""

    request: ReportRequest
    generated_ms: int
    names: dict[str, str]  # community id → name in the report's language
    tables: dict[str, Table]
    figures: dict[str, Any]
    charts: dict[str, Any]
    maps: list[MapData]
    narrative: list[str] = field(default_factory=list)
    coverage: Coverage | None = None  # a daily report: how far its data runs (shown on the title page)

    @property
    def lang(self) -> Lang:
        """The report's language."""
        return self.request.lang

    @property
    def title_place(self) -> str:
        """The communities named in the title (or the whole city)."""
        if self.request.city:
            return t("report.city", self.lang)
        return t("report.list_sep", self.lang).join(self.names[c] for c in self.request.communities)
