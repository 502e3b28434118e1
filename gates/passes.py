"""Approved visitor passes where the worker and the gates look: per community one Redis hash
(``rule_state(C, "passes")``), field ``id:<id hash>`` or ``plate:<plate>``, value the JSON list
of that identity's newest approved or revoked passes ``[{pass, household, from, to, status}, …]``
(epoch ms, oldest first). A revoked pass stays there with its status, so that a gate is told
``revoked`` rather than ``unknown``; it lets no one through. SQL is the source: a field is always
rewritten whole from the ``visitor_pass`` table, so a visitor invited for two different days holds
both passes, and the hash can be rebuilt at any time.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gates.models import VisitorPass
from store.keys import Keys
from store.redis_server import RedisClient

PASSES_KEPT = 20  # newest approved or revoked passes kept per ID number or plate
AT_GATES = ("approved", "revoked")  # the statuses a gate is told about


def _ms(value: dt.datetime) -> int:
    aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
    return int(aware.timestamp() * 1000)


def gate_doc(visitor: VisitorPass) -> dict[str, Any]:
    """What the gate rules need of a pass."""
    return {
        "pass": visitor.id,
        "household": visitor.household_id,
        "from": _ms(visitor.valid_from),
        "to": _ms(visitor.valid_to),
        "status": visitor.status,
    }


def project_passes(
    redis: RedisClient,
    keys: Keys,
    session: Session,
    community: str,
    *,
    id_hashes: Iterable[str] = (),
    plates: Iterable[str] = (),
) -> None:
    """Rewrite the gate fields of these ID numbers (hashes) and plates from SQL."""
    mapping: dict[str, str] = {}
    for field, column, values in (("id", VisitorPass.id_hash, id_hashes), ("plate", VisitorPass.plate, plates)):
        for value in {v for v in values if v}:
            rows = session.scalars(
                select(VisitorPass)
                .where(VisitorPass.community_id == community, VisitorPass.status.in_(AT_GATES), column == value)
                .order_by(VisitorPass.valid_from.desc())
                .limit(PASSES_KEPT)
            )
            mapping[f"{field}:{value}"] = json.dumps(sorted((gate_doc(v) for v in rows), key=lambda d: d["from"]))
    if mapping:
        redis.hset(keys.rule_state(community, "passes"), mapping=mapping)


def project_all_passes(redis: RedisClient, keys: Keys, session: Session, community: str) -> None:
    """Rebuild the community's gate fields from every approved or revoked pass (a worker starting on it)."""
    found = session.execute(
        select(VisitorPass.id_hash, VisitorPass.plate).where(
            VisitorPass.community_id == community, VisitorPass.status.in_(AT_GATES)
        )
    ).all()
    project_passes(
        redis,
        keys,
        session,
        community,
        id_hashes=[row.id_hash for row in found],
        plates=[row.plate for row in found if row.plate],
    )


def held_passes(raw: str | bytes | None) -> list[dict[str, Any]]:
    """The passes of a gate field (an older single-pass value is read as a list of one)."""
    if not raw:
        return []
    value = json.loads(raw)
    return [value] if isinstance(value, dict) else list(value)


def revoked(doc: dict[str, Any]) -> bool:
    """True for a pass revoked after its approval (a field written before revoking existed has no status)."""
    return doc.get("status", "approved") == "revoked"


def pass_at(passes: list[dict[str, Any]], at_ms: int) -> tuple[dict[str, Any] | None, str]:
    """The approved pass valid at at_ms, else None and why: ``no_pass``; ``revoked`` (a revoked pass
    whose window has not ended); ``not_yet_valid``; ``expired``."""
    if not passes:
        return None, "no_pass"
    for doc in passes:
        if not revoked(doc) and int(doc["from"]) <= at_ms <= int(doc["to"]):
            return doc, ""
    if any(revoked(doc) and at_ms <= int(doc["to"]) for doc in passes):
        return None, "revoked"
    started = [doc for doc in passes if int(doc["from"]) <= at_ms]
    return None, "expired" if started else "not_yet_valid"


def latest_started(passes: list[dict[str, Any]], at_ms: int) -> dict[str, Any] | None:
    """The newest pass whose window began by at_ms (a visitor leaving after it ended), or None."""
    started = [doc for doc in passes if int(doc["from"]) <= at_ms]
    return max(started, key=lambda d: int(d["from"])) if started else None
