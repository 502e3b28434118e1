"""Approved visitor passes where the worker looks at the gates: per community one Redis hash
(``rule_state(C, "passes")``), field ``id:<id hash>`` or ``plate:<plate>``, value the JSON list
of that identity's newest approved passes ``[{pass, household, from, to}, …]`` (epoch ms, oldest
first). SQL is the source: a field is always rewritten whole from the ``visitor_pass`` table, so a
visitor invited for two different days holds both passes, and the hash can be rebuilt at any time.
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

PASSES_KEPT = 20  # newest approved passes kept per ID number or plate


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
                .where(VisitorPass.community_id == community, VisitorPass.status == "approved", column == value)
                .order_by(VisitorPass.valid_from.desc())
                .limit(PASSES_KEPT)
            )
            mapping[f"{field}:{value}"] = json.dumps(sorted((gate_doc(v) for v in rows), key=lambda d: d["from"]))
    if mapping:
        redis.hset(keys.rule_state(community, "passes"), mapping=mapping)


def project_all_passes(redis: RedisClient, keys: Keys, session: Session, community: str) -> None:
    """Rebuild the community's gate fields from every approved pass (a worker starting on it)."""
    found = session.execute(
        select(VisitorPass.id_hash, VisitorPass.plate).where(
            VisitorPass.community_id == community, VisitorPass.status == "approved"
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


def pass_at(passes: list[dict[str, Any]], at_ms: int) -> tuple[dict[str, Any] | None, str]:
    """The pass valid at at_ms, else None and why (``no_pass``, ``not_yet_valid``, ``expired``)."""
    if not passes:
        return None, "no_pass"
    for doc in passes:
        if int(doc["from"]) <= at_ms <= int(doc["to"]):
            return doc, ""
    started = [doc for doc in passes if int(doc["from"]) <= at_ms]
    return None, "expired" if started else "not_yet_valid"


def latest_started(passes: list[dict[str, Any]], at_ms: int) -> dict[str, Any] | None:
    """The newest pass whose window began by at_ms (a visitor leaving after it ended), or None."""
    started = [doc for doc in passes if int(doc["from"]) <= at_ms]
    return max(started, key=lambda d: int(d["from"])) if started else None
