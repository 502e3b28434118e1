"""People-readable words for a notification: the community, the place (52幢2单元402室, 东门人脸门禁)
and the alert's name — never a bare id."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from auth.labels import subject_place
from core.i18n import t
from registry.models import Community
from registry.queries import entity_labels


def community_name(session: Session, community_id: str, lang: str) -> str:
    """The community's name (its id when unknown)."""
    row = session.execute(select(Community.name, Community.name_en).where(Community.id == community_id)).first()
    if row is None:
        return community_id
    return str(row[0] if lang == "zh" else (row[1] or row[0]))


def place_label(session: Session, subject: dict[str, Any], lang: str) -> str:
    """Where the alert is, as people read it (the household's address, else the building, else the
    device: the registry's one labelling, registry.queries.entity_labels); no name of a person."""
    place = subject_place(subject)
    return entity_labels(session, [place], lang).get(place, "") if place else ""


def alert_name(alert_type: str, lang: str) -> str:
    """The alert type's name (the type itself when the table has no name for it)."""
    key = f"alert.type.{alert_type}"
    text = t(key, lang)
    return alert_type if text == key else text


def alert_sentence(session: Session, doc: dict[str, Any], event: str, lang: str) -> str:
    """万户新村 52幢2单元402室 独居老人门磁超时未开关 (高) — with the event when it is not a new alert."""
    parts = [
        community_name(session, str(doc.get("community", "")), lang),
        place_label(session, doc.get("subject") or {}, lang),
        alert_name(str(doc.get("type", "")), lang),
    ]
    text = " ".join(p for p in parts if p) + t(
        "notify.severity", lang, severity=t(f"severity.{doc.get('severity')}", lang)
    )
    if event != "alert.raised":
        text = t(f"notify.event.{event}", lang) + " " + text
    return text
