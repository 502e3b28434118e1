"""``POST /api/v1/gates/DEVICE/decide`` (interfaces §10): a face gate or a barrier asks whether this
person, face, ID number or plate may pass, and gets allow or deny with the reason (gates/decide.py).

Auth: an ingest token of the device's community, as for events. The device is found in this
process's registry cache (ingest/directory.py, the one ingest uses: reloaded each minute, and at
once — at most every 5 s — for an unknown id); only a device missing from the token's community is
looked up in SQL, to tell another community's device (403) from an unknown one (404).
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request
from flask.typing import ResponseReturnValue

from api.access import audit
from api.context import clock, services, stores
from auth.principal import current_principal
from core.errors import Conflict, Forbidden, InvalidInput, NotFound, SandtableError
from gates.decide import GATE_TYPES, decide_and_alert, parse_ask
from registry.models import Device

bp = Blueprint("gates_api", __name__, url_prefix="/api/v1")


def refusal(status: int, err: SandtableError) -> Response:
    """``{"error", "field"?}`` with the error's sentence."""
    body = {"error": str(err)}
    if err.values.get("field"):
        body["field"] = str(err.values["field"])
    response = jsonify(body)
    response.status_code = status
    return response


@bp.post("/gates/<device>/decide")
def decide(device: str) -> ResponseReturnValue:
    """Allow or deny one passage at a gate: 200 ``{"allow", "reason", "pass"}``."""
    principal = current_principal()
    target = f"/api/v1/gates/{device[:64]}/decide"
    if principal.token_scope != "ingest" or not principal.community:
        audit("denied", target=target, reason="not an ingest token", outcome="denied")
        return refusal(403, Forbidden(key="gate.err.token", field="token"))
    community = principal.community
    found = services().directory.device(community, device)
    if found is None:
        with stores().sessions() as session:
            elsewhere = session.get(Device, device) if len(device) <= 64 else None
        if elsewhere is None:
            return refusal(404, NotFound(key="gate.err.no_device", field="device", device=device[:64]))
        audit("denied", target=target, reason=f"device of {elsewhere.community_id}", outcome="denied")
        return refusal(403, Forbidden(key="gate.err.community", field="device", community=community))
    if found.type not in GATE_TYPES:
        return refusal(409, Conflict(key="gate.err.not_a_gate", field="device", type=found.type))
    try:
        ask = parse_ask(request.get_json(silent=True, force=True), found.type, stores().id_hash_key)
    except InvalidInput as err:
        return refusal(400, err)
    decision = decide_and_alert(services().loop, found, ask, clock().now_ms())
    return jsonify(decision.body())
