"""Case files (案件, issue #19): save an investigation (its query), pin what it found, write notes,
close it, export it (memory/export.py).

Every function takes the caller's principal and checks permission and scope here, in the data
layer: ``investigate`` is needed; police and admin see every case of their communities; a grid
worker sees only the cases they created in their grid. A case out of scope is reported as not found
(its existence is not disclosed). Opening a case is audited (``case.open``), as are export
(``case.export``) and denials; the audit rows are written in the caller's transaction when the
action succeeds, in their own when it is refused.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from auth.models import AuditEntry
from auth.policy import can
from auth.principal import Principal
from auth.service import Auditor
from core.errors import Forbidden, InvalidInput, NotFound
from core.timefmt import parse_rfc3339
from memory.case_models import PIN_KINDS, Case, CaseNote, CasePin
from store.evidence import evidence_id
from store.sql import utcnow

PERMISSION = "investigate"
NAME_MAX = 120
NOTE_MAX = 4000


def audit(session: Session, principal: Principal, action: str, case: Case, reason: str = "") -> None:
    """An audit row for a case, in the caller's transaction (it commits with the action)."""
    session.add(
        AuditEntry(
            actor=principal.id or "anonymous",
            role=principal.role or principal.kind,
            action=action,
            target=f"case {case.id}",
            reason=reason[:2000],
            outcome="ok",
            community_id=case.community_id,
        )
    )


def _refuse(session: Session, principal: Principal, action: str, target: str, reason: str) -> Forbidden:
    """Audit a refusal in its own transaction (the caller's is rolled back) and return the error."""
    Auditor(sessionmaker(bind=session.get_bind())).record(
        principal, action, target=target, reason=reason, outcome="denied"
    )
    return Forbidden(key="case.error.forbidden")


def _require(session: Session, principal: Principal, action: str, target: str) -> None:
    if not can(principal, PERMISSION):
        raise _refuse(session, principal, action, target, f"role lacks {PERMISSION}")


def _in_community(principal: Principal, community: str) -> bool:
    allowed = principal.scope.communities
    return allowed is None or community in allowed


def _visible(principal: Principal, case: Case) -> bool:
    if not _in_community(principal, case.community_id):
        return False
    if principal.role == "grid_worker" and principal.kind != "system":
        return case.created_by == principal.id and case.grid_id == principal.grid
    return True


def _case(session: Session, principal: Principal, case_id: str, action: str) -> Case:
    _require(session, principal, action, f"case {case_id}")
    case = session.get(Case, case_id)
    if case is None or not _visible(principal, case):
        raise NotFound(key="case.error.not_found", case=case_id)
    return case


def _open_case(session: Session, principal: Principal, case_id: str, action: str) -> Case:
    case = _case(session, principal, case_id, action)
    if case.status != "open":
        raise InvalidInput(key="case.error.closed", case=case_id)
    return case


def _new_id(now: dt.datetime) -> str:
    return f"C{now:%Y%m%d}-{secrets.token_hex(3)}"


def create_case(session: Session, principal: Principal, *, community: str, name: str, query: dict[str, Any]) -> str:
    """A new open case of ``community``, with the investigation's query (the §9 search body)."""
    _require(session, principal, "case.create", f"community {community}")
    if not _in_community(principal, community):
        raise _refuse(session, principal, "case.create", f"community {community}", "community out of scope")
    clean = (name or "").strip()
    if not clean:
        raise InvalidInput(key="case.error.name")
    if len(clean) > NAME_MAX:
        raise InvalidInput(key="case.error.name_long", n=NAME_MAX)
    if not isinstance(query, dict):
        raise InvalidInput(key="case.error.query")
    now = utcnow()
    case = Case(
        id=_new_id(now),
        community_id=community,
        grid_id=principal.grid if principal.role == "grid_worker" else None,
        name=clean,
        status="open",
        created_by=principal.id,
        created_by_name=principal.name or principal.id,
        created_at=now,
        query={**query, "community": community},
    )
    session.add(case)
    session.flush()
    return case.id


def _pin_time(item: dict[str, Any], kind: str) -> int:
    if kind == "event":
        ts = item.get("ts")
        if isinstance(ts, int) and not isinstance(ts, bool):
            return ts
        raise InvalidInput(key="case.error.item")
    for field in ("detected_at", "opened_at"):
        value = item.get(field)
        if isinstance(value, str):
            try:
                return parse_rfc3339(value)
            except ValueError:
                break
    raise InvalidInput(key="case.error.item")


def _evidence_of(item: dict[str, Any], kind: str) -> str | None:
    holder = item.get("data") if kind == "event" else item.get("evidence")
    return evidence_id(holder.get("image")) if isinstance(holder, dict) else None


def pin(session: Session, principal: Principal, case_id: str, item: dict[str, Any], *, kind: str = "event") -> int:
    """Pin a copy of an archived event's item (``memory.search.item_of``) or of an alert (§3 form)."""
    case = _open_case(session, principal, case_id, "case.pin")
    if kind not in PIN_KINDS:
        raise InvalidInput(key="case.error.kind", kind=kind)
    if not isinstance(item, dict) or not item.get("id"):
        raise InvalidInput(key="case.error.item")
    ts = _pin_time(item, kind)
    ref = str(item["id"])[:80]
    found = session.scalar(select(CasePin).where(CasePin.case_id == case.id, CasePin.kind == kind, CasePin.ref == ref))
    if found is not None:
        return found.id  # pinning twice keeps one pin
    row = CasePin(
        case_id=case.id,
        kind=kind,
        ref=ref,
        ts=ts,
        item=dict(item),
        evidence=_evidence_of(item, kind),
        pinned_by=principal.id,
        pinned_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return row.id


def unpin(session: Session, principal: Principal, case_id: str, pin_id: int) -> None:
    """Remove a pin from an open case."""
    case = _open_case(session, principal, case_id, "case.unpin")
    row = session.get(CasePin, pin_id)
    if row is None or row.case_id != case.id:
        raise NotFound(key="case.error.no_pin", pin=pin_id)
    session.delete(row)
    session.flush()


def add_note(session: Session, principal: Principal, case_id: str, text: str) -> int:
    """Write a note on an open case; the note's id."""
    case = _open_case(session, principal, case_id, "case.note")
    clean = (text or "").strip()
    if not clean:
        raise InvalidInput(key="case.error.note")
    if len(clean) > NOTE_MAX:
        raise InvalidInput(key="case.error.note_long", n=NOTE_MAX)
    note = CaseNote(
        case_id=case.id, text=clean, author=principal.id, author_name=principal.name or principal.id, at=utcnow()
    )
    session.add(note)
    session.flush()
    return note.id


def summary(case: Case) -> dict[str, Any]:
    """A case's facts (no pins, no notes)."""
    return {
        "id": case.id,
        "community": case.community_id,
        "grid": case.grid_id,
        "name": case.name,
        "status": case.status,
        "created_by": case.created_by,
        "created_by_name": case.created_by_name,
        "created_at": case.created_at,
        "closed_at": case.closed_at,
        "query": case.query,
    }


def list_cases(session: Session, principal: Principal, community: str | None = None) -> list[dict[str, Any]]:
    """The cases the principal may see (of one community, or of all theirs), newest first; each with
    its counts of pins and notes."""
    _require(session, principal, "case.list", f"community {community or '*'}")
    stmt = select(Case).order_by(Case.created_at.desc(), Case.id)
    if community is not None:
        stmt = stmt.where(Case.community_id == community)
    allowed = principal.scope.communities
    if allowed is not None:
        stmt = stmt.where(Case.community_id.in_(sorted(allowed)))
    if principal.role == "grid_worker" and principal.kind != "system":
        stmt = stmt.where(Case.created_by == principal.id, Case.grid_id == principal.grid)
    cases = list(session.scalars(stmt))
    ids = [c.id for c in cases]
    pins: dict[str, int] = dict.fromkeys(ids, 0)
    notes: dict[str, int] = dict.fromkeys(ids, 0)
    for chunk in (ids[i : i + 500] for i in range(0, len(ids), 500)):
        for (cid,) in session.execute(select(CasePin.case_id).where(CasePin.case_id.in_(chunk))):
            pins[cid] += 1
        for (cid,) in session.execute(select(CaseNote.case_id).where(CaseNote.case_id.in_(chunk))):
            notes[cid] += 1
    return [{**summary(c), "pins": pins[c.id], "notes": notes[c.id]} for c in cases]


def case_doc(session: Session, case: Case) -> dict[str, Any]:
    """A case with its pins (by time) and notes (by writing order)."""
    pins = session.scalars(select(CasePin).where(CasePin.case_id == case.id).order_by(CasePin.ts, CasePin.id))
    notes = session.scalars(select(CaseNote).where(CaseNote.case_id == case.id).order_by(CaseNote.at, CaseNote.id))
    return {
        **summary(case),
        "pins": [
            {
                "id": p.id,
                "kind": p.kind,
                "ref": p.ref,
                "ts": p.ts,
                "item": p.item,
                "evidence": p.evidence,
                "pinned_by": p.pinned_by,
                "pinned_at": p.pinned_at,
            }
            for p in pins
        ],
        "notes": [
            {"id": n.id, "text": n.text, "author": n.author, "author_name": n.author_name, "at": n.at} for n in notes
        ],
    }


def get_case(session: Session, principal: Principal, case_id: str) -> dict[str, Any]:
    """Open a case (audited): its facts, pins and notes."""
    case = _case(session, principal, case_id, "case.open")
    audit(session, principal, "case.open", case)
    return case_doc(session, case)


def read_case(session: Session, principal: Principal, case_id: str) -> dict[str, Any]:
    """A case shown again on a page that opened it already (after a note, a pin removed): checked,
    not audited again."""
    return case_doc(session, _case(session, principal, case_id, "case.open"))


def close_case(session: Session, principal: Principal, case_id: str) -> None:
    """Close an open case: no more pins or notes; its retention period starts now."""
    case = _open_case(session, principal, case_id, "case.close")
    case.status = "closed"
    case.closed_at = utcnow()
    audit(session, principal, "case.close", case)
    session.flush()


def case_for_export(session: Session, principal: Principal, case_id: str) -> dict[str, Any]:
    """A case as ``get_case`` gives it, checked and audited as an export (``case.export``)."""
    case = _case(session, principal, case_id, "case.export")
    audit(session, principal, "case.export", case)
    return case_doc(session, case)
