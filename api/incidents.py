"""``POST /api/v1/incidents`` (interfaces §8): an incident entered by hand (接警登记) becomes an alert
of type ``incident.reported``; the checks and the raising are in closedloop/incidents.py."""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue

from api.access import deny, require
from api.context import services
from auth.principal import current_principal
from closedloop.incidents import Incidents
from core.errors import Forbidden, InvalidInput

bp = Blueprint("incidents_api", __name__, url_prefix="/api/v1")


@bp.post("/incidents")
@require("dispatch")
def post_incident() -> ResponseReturnValue:
    """Register an incident: 201 with the alert (§3), 400 naming the field, 403 outside the role or scope."""
    body = request.get_json(silent=True)
    try:
        alert = Incidents(services().loop).report(current_principal(), body)
    except Forbidden as err:
        return deny(str(err), target="/api/v1/incidents")
    except InvalidInput as err:
        response = jsonify({"error": str(err), "field": err.values.get("field")})
        response.status_code = 400
        return response
    response = jsonify(alert)
    response.status_code = 201
    return response
