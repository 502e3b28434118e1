"""A gate asking whether to open (``POST /api/v1/gates/D/decide``): the answer from live state in
Redis only — who may pass (gates/identities.py), the passes (gates/passes.py), the wanted list
(registry/watchlist.py) — in two pipelined round trips, never SQL.

Face gates decide persons, registered faces and ID numbers; barriers decide plates. Order:
a registered identity → ``resident`` (a blacklisted plate → ``blacklist``, denied); an approved pass
valid now → ``pass``; a revoked pass not yet ended → ``revoked``; a pass outside its window →
``not_yet_valid`` / ``expired``; anyone else → ``unknown``; nothing to go by → ``no_identity``.
A wanted identity gets the same answer as anyone else (no tip-off) and ``watchlist.match`` is
raised before the answer leaves (closedloop/wanted.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from closedloop.incidents import Place
from closedloop.service import Loop
from closedloop.wanted import raise_wanted
from core.errors import InvalidInput
from core.secrets import keyed_hash
from core.timefmt import SHANGHAI, ms_to_utc
from gates.passes import held_passes, pass_at
from ingest.schema import DeviceInfo
from registry import validate
from store.keys import Keys
from store.redis_server import RedisClient

GATE_TYPES = ("face_gate", "vehicle_gate")
# the identities each kind of gate decides, as the request names them
ASKS = {"face_gate": ("person", "face_id", "id_number"), "vehicle_gate": ("plate",)}
IDENTITIES = ("person", "face_id", "id_number", "plate")
REASONS = ("resident", "pass", "blacklist", "unknown", "revoked", "expired", "not_yet_valid", "no_identity")
DECISIONS_KEPT_S = 8 * 86_400  # the per-day decision counts live a week and a day


@dataclass(frozen=True)
class GateAsk:
    """A checked request: the direction and the identity (``id_hash`` for an ID number), if any."""

    direction: str
    kind: str | None = None  # person / face_id / id_hash / plate
    value: str = ""


@dataclass(frozen=True)
class Decision:
    """The answer, and the ID hash the identity resolved to (for the wanted list; never sent)."""

    allow: bool
    reason: str
    pass_id: str | None = None
    id_hash: str = ""

    def body(self) -> dict[str, Any]:
        """The JSON answer of the route."""
        return {"allow": self.allow, "reason": self.reason, "pass": self.pass_id}


def parse_ask(body: Any, device_type: str, hash_key: bytes) -> GateAsk:
    """The request body checked for this kind of gate; InvalidInput names the field (``field``)."""
    if not isinstance(body, dict):
        raise InvalidInput(key="gate.err.body", field="body")
    direction = body.get("direction")
    if direction not in ("in", "out"):
        raise InvalidInput(key="gate.err.direction", field="direction")
    present = [name for name in IDENTITIES if body.get(name) not in (None, "")]
    if len(present) > 1:
        raise InvalidInput(key="gate.err.identities", field=present[1], names=", ".join(present))
    if not present:
        return GateAsk(direction)
    name = present[0]
    raw = body[name]
    if name not in ASKS[device_type]:
        raise InvalidInput(key=f"gate.err.not_for_{device_type}", field=name)
    if not isinstance(raw, str) or not 0 < len(raw) <= 64:
        raise InvalidInput(key="gate.err.value", field=name)
    if name == "id_number":
        try:
            number = validate.id_number(raw)
        except InvalidInput as err:
            raise InvalidInput(key="gate.err.id_number", field=name, reason=str(err)) from None
        return GateAsk(direction, "id_hash", keyed_hash(hash_key, number))
    if name == "plate":
        try:
            return GateAsk(direction, "plate", validate.plate(raw))
        except InvalidInput as err:
            raise InvalidInput(key="gate.err.plate", field=name, reason=str(err)) from None
    return GateAsk(direction, name, raw)


def judge_pass(raw_passes: str | None, at_ms: int) -> Decision:
    """The answer of the passes held for an ID number or a plate."""
    found, why = pass_at(held_passes(raw_passes), at_ms)
    if found is not None:
        return Decision(True, "pass", str(found["pass"]))
    return Decision(False, "unknown" if why == "no_pass" else why)


def decide(redis: RedisClient, keys: Keys, device: DeviceInfo, ask: GateAsk, at_ms: int) -> tuple[Decision, bool]:
    """The answer for this gate at at_ms, and whether the identity is on the wanted list (read in the
    same round trip; an entry's expiry is judged when the alert is raised)."""
    community = device.community
    who, passes = keys.gate_identities(community), keys.rule_state(community, "passes")
    pipe = redis.pipeline(transaction=False)
    if ask.kind == "plate":
        pipe.hget(who, f"v:{ask.value}")
        pipe.hget(passes, f"plate:{ask.value}")
    elif ask.kind == "id_hash":
        pipe.hget(who, f"h:{ask.value}")
        pipe.hget(passes, f"id:{ask.value}")
        pipe.hexists(keys.watchlist, ask.value)
    elif ask.kind is not None:
        pipe.hget(who, f"{'p' if ask.kind == 'person' else 'f'}:{ask.value}")
    found = pipe.execute() if ask.kind is not None else []
    listed = False
    if ask.kind is None:
        decision = Decision(False, "no_identity")
    elif ask.kind == "plate":
        vehicle = json.loads(found[0]) if found[0] is not None else None
        if vehicle is not None:
            decision = Decision(not vehicle["blacklisted"], "blacklist" if vehicle["blacklisted"] else "resident")
        else:
            decision = judge_pass(found[1], at_ms)
    elif ask.kind == "id_hash":
        listed = bool(found[2])
        judged = Decision(True, "resident") if found[0] is not None else judge_pass(found[1], at_ms)
        decision = Decision(judged.allow, judged.reason, judged.pass_id, ask.value)
    else:
        person_hash = found[0]
        decision = (
            Decision(True, "resident", id_hash=person_hash) if person_hash is not None else Decision(False, "unknown")
        )
    pipe = redis.pipeline(transaction=False)
    if ask.kind in ("person", "face_id") and decision.id_hash:
        pipe.hexists(keys.watchlist, decision.id_hash)
    counts = keys.gate_decisions(community, ms_to_utc(at_ms).astimezone(SHANGHAI).date().isoformat())
    pipe.hincrby(counts, f"{device.id}|{decision.reason}", 1)
    pipe.expire(counts, DECISIONS_KEPT_S)
    after = pipe.execute()
    if ask.kind in ("person", "face_id") and decision.id_hash:
        listed = bool(after[0])
    return decision, listed


def gate_place(device: DeviceInfo) -> Place:
    """Where a gate's wanted-list match is placed: the gate, its building and household, its grid."""
    subject = {"device": device.id, "building": device.building, "household": device.household}
    return Place(
        subject={k: v for k, v in subject.items() if v},
        location={"lat": device.lat, "lon": device.lon},
        grid=device.grid,
    )


def decide_and_alert(loop: Loop, device: DeviceInfo, ask: GateAsk, at_ms: int) -> Decision:
    """Decide, and raise ``watchlist.match`` at once for a wanted identity (the answer is the same)."""
    decision, listed = decide(loop.stores.redis, loop.stores.keys, device, ask, at_ms)
    if listed:
        raise_wanted(
            loop,
            device.community,
            [decision.id_hash],
            gate_place(device),
            source="gate_decision",
            at_ms=at_ms,
            extra={"device": device.id, "direction": ask.direction, "decision": decision.reason},
        )
    return decision
