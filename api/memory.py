"""``POST /api/v1/events/search`` (interfaces §9): the event archive searched by place and time.

Role and scope come from the server-side principal (a session, or a bearer token like every read
route): police, admins and grid workers (``investigate``); a grid worker's query is limited to
their grid, and a polygon reaching beyond it is clipped and the answer says so. The checks, the
query and the signed cursor are in memory/search.py. Every search is audited with its query.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request
from flask.typing import ResponseReturnValue

from api.access import audit, deny, require
from api.context import clock, request_lang, stores
from auth.principal import current_principal
from core.errors import Forbidden, InvalidInput
from core.i18n import t
from core.secrets import derive_key
from memory.search import answer, check_search

bp = Blueprint("memory_api", __name__, url_prefix="/api/v1")
TARGET = "/api/v1/events/search"


def cursor_key() -> bytes:
    """The key that signs search cursors (derived from the installation secret)."""
    return derive_key(stores().secret, "search-cursor")


def refused(err: InvalidInput) -> Response:
    """A 400 naming the field; a refused window also gives the earliest time that can be searched."""
    body = {"error": err.text(request_lang()), "field": err.values.get("field")}
    if "earliest_iso" in err.values:
        body["earliest"] = err.values["earliest_iso"]
    response = jsonify(body)
    response.status_code = 400
    return response


@bp.post("/events/search")
@require("investigate")
def search_events() -> ResponseReturnValue:
    """Archived events of one community in a window, by place and kind: 200 with a page and the
    next page's cursor; 400 naming the field; 403 outside the role or scope."""
    principal = current_principal()
    s = stores()
    key = cursor_key()
    body = request.get_json(silent=True)
    try:
        with s.sessions() as session:
            checked = check_search(
                session,
                principal,
                body,
                now_ms=clock().now_ms(),
                retain_days=s.settings.retain_events_days,
                key=key,
            )
            result = answer(session, checked, key)
    except Forbidden as err:
        return deny(str(err), target=TARGET)
    except InvalidInput as err:
        audit("search", target=TARGET, reason=f"{err} {str(body)[:1500]}", outcome="invalid")
        return refused(err)
    audit("search", target=TARGET, reason=checked.canonical, community=checked.query.community)
    if checked.clipped:
        result["clipped"] = True
        result["note"] = t("search.clipped", request_lang())
    return jsonify(result)
