"""The in-app notifications a signed-in user reads: the notices of their audiences (the routing
policy, from their role, grid and username on the server), within their scope, of alerts they may
see (alerts/access.py), in their language with addresses, not ids."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts.access import alert_for
from alerts.history import record_view
from alerts.models import AlertRecord
from auth.principal import Principal
from core.settings import Settings
from core.timefmt import utc_to_ms
from notify.labels import alert_sentence
from notify.models import NotifyNotice
from notify.policy import audiences_of


@dataclass(frozen=True)
class Notice:
    """One notification as the user reads it."""

    id: int
    at_ms: int
    event: str
    severity: str
    text: str

    @property
    def critical(self) -> bool:
        """True for the ones the app rings for."""
        return self.severity == "critical"


def notices_for(
    session: Session,
    settings: Settings,
    principal: Principal,
    lang: str,
    *,
    after: int | None,
    since: dt.datetime,
    limit: int = 6,
) -> list[Notice]:
    """The newest notices for the principal after the one they dismissed last (and not before ``since``)."""
    audiences = audiences_of(principal, settings.supervisors)
    if not audiences:
        return []
    query = (
        select(NotifyNotice, AlertRecord)
        .join(AlertRecord, AlertRecord.id == NotifyNotice.alert_id)
        .where(NotifyNotice.audience.in_(audiences), NotifyNotice.at >= since)
    )
    communities = principal.scope.communities
    if communities is not None:
        query = query.where(NotifyNotice.community_id.in_(sorted(communities)))
    if after is not None:
        query = query.where(NotifyNotice.id > after)
    out: list[Notice] = []
    seen: set[tuple[str, str]] = set()
    for notice, record in session.execute(query.order_by(NotifyNotice.id.desc()).limit(limit * 4)).tuples():
        view = alert_for(principal, record_view(record), settings)
        if view is None or (notice.alert_id, notice.event) in seen:
            continue
        seen.add((notice.alert_id, notice.event))
        text = alert_sentence(session, view, notice.event, lang)
        out.append(Notice(notice.id, utc_to_ms(notice.at), notice.event, notice.severity, text))
        if len(out) == limit:
            break
    return out


def newest_notice_id(session: Session) -> int:
    """The id of the newest notice of all (0 when there is none)."""
    return session.scalar(select(NotifyNotice.id).order_by(NotifyNotice.id.desc()).limit(1)) or 0
