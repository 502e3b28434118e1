"""``GET /api/v1/state?community=C&at=RFC3339`` (interfaces §9): the sand-table at a past moment —
devices, guards and the alerts open then, scoped and masked for the caller (memory/state.py)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request
from flask.typing import ResponseReturnValue

from api.access import deny, require
from api.context import clock, stores
from auth.policy import can
from auth.principal import current_principal
from core.errors import InvalidInput
from core.i18n import normalize_lang
from core.timefmt import parse_rfc3339
from memory.state import state_at
from registry import queries

bp = Blueprint("state_api", __name__, url_prefix="/api/v1")


def _bad(err: InvalidInput) -> Response:
    lang = normalize_lang(request.args.get("lang"), "en")
    response = jsonify({"error": err.text(lang), "field": err.values.get("field")})
    response.status_code = 400
    return response


@bp.get("/state")
@require("read.alerts")
def state() -> ResponseReturnValue:
    """The community at ``at``: 400 naming ``at`` or ``community`` when they cannot be used, 403
    outside the caller's role or scope."""
    principal = current_principal()
    if not can(principal, "read.registry"):
        return deny("read.registry", target=request.full_path)
    community = request.args.get("community", "")
    with stores().sessions() as session:
        found = queries.community(session, principal.scope, community) if community else None
    if found is None:
        return _bad(InvalidInput(key="state.error.community", field="community"))
    try:
        at = parse_rfc3339(request.args.get("at", ""))
    except (ValueError, OverflowError):
        return _bad(InvalidInput(key="state.error.at", field="at"))
    try:
        return jsonify(state_at(stores(), principal, community, at, now_ms=clock().now_ms()))
    except InvalidInput as err:
        return _bad(err)
