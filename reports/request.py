"""Checking what a user asked for: communities in their scope, a period of local dates, a format."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy.orm import Session

from auth.principal import Principal
from core.errors import InvalidInput
from core.i18n import Lang
from core.settings import Settings
from registry import queries
from reports.model import FORMATS, REPORT_ROLES, ReportRequest

CITY_WORDS = ("all", "city", "*")


class ReportInputError(InvalidInput):
    """A bad report request: one English sentence for the CLI and logs, and an i18n key for the page."""

    def __init__(self, key: str, message: str, **values: object) -> None:
        super().__init__(message, key=key, **values)  # the CLI's sentence names its options


def split_communities(values: Iterable[str] | str | None) -> list[str]:
    """Community ids from repeated options and/or comma-separated lists, in order, without repeats."""
    items = [values] if isinstance(values, str) else list(values or [])
    out: list[str] = []
    for item in items:
        for part in str(item).split(","):
            name = part.strip()
            if name and name not in out:
                out.append(name)
    return out


def parse_date(value: object, option: str) -> dt.date:
    """A local date written YYYY-MM-DD."""
    text = str(value or "").strip()
    try:
        return dt.date.fromisoformat(text[:10])
    except ValueError:
        key = "report.error.date_from" if option == "--from" else "report.error.date_to"
        raise ReportInputError(key, f"{option} must be a date written YYYY-MM-DD, not {text!r}") from None


def check_period(start: dt.date, end: dt.date, settings: Settings) -> None:
    """A period that runs forward and is not longer than the allowed maximum."""
    if end < start:
        raise ReportInputError(
            "report.error.reversed",
            f"the period is reversed: --from {start} is after --to {end}",
            start=start.isoformat(),
            end=end.isoformat(),
        )
    days = (end - start).days + 1
    if days > settings.report_max_days:
        raise ReportInputError(
            "report.error.too_long",
            f"the period has {days} days; at most {settings.report_max_days} are allowed (SANDTABLE_REPORT_MAX_DAYS)",
            days=days,
            max=settings.report_max_days,
        )


def build_request(
    session: Session,
    principal: Principal,
    settings: Settings,
    *,
    communities: Iterable[str] | str | None,
    start: object,
    end: object,
    lang: str = "zh",
    city: bool = False,
) -> ReportRequest:
    """A checked request: every community known and inside the principal's scope, a valid period."""
    visible = [c.id for c in queries.communities(session, principal.scope)]
    wanted = split_communities(communities)
    if city or any(w.lower() in CITY_WORDS for w in wanted):
        city, wanted = True, visible
    elif not wanted:
        raise ReportInputError("report.error.no_community", "name a community (--community C, or --city for all)")
    else:
        unknown = [w for w in wanted if w not in visible]
        if unknown:
            # outside the scope looks the same as absent
            raise ReportInputError(
                "report.error.community", f"unknown community: {', '.join(unknown)}", community=", ".join(unknown)
            )
    if not wanted:
        raise ReportInputError("report.error.no_community", "there is no community to report on")
    first, last = parse_date(start, "--from"), parse_date(end, "--to")
    check_period(first, last, settings)
    chosen: Lang = "en" if lang == "en" else "zh"
    return ReportRequest(tuple(wanted), first, last, chosen, principal, city=city)


def check_format(value: str) -> str:
    """pdf, csv or xlsx."""
    if value not in FORMATS:
        raise ReportInputError("report.error.format", f"--format must be pdf, csv or xlsx, not {value!r}", value=value)
    return value


def check_role(value: str) -> str:
    """The role the report's personal data is masked for."""
    if value not in REPORT_ROLES:
        raise ReportInputError(
            "report.error.role", f"--role must be one of {', '.join(REPORT_ROLES)}, not {value!r}", value=value
        )
    return value
