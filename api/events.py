"""``POST /api/v1/events`` (interfaces §2) and ``GET /api/v1/alerts`` (§3)."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request
from flask.typing import ResponseReturnValue

from api.access import audit, deny, require
from api.params import query_time
from api.registry_api import bad_request, scoped_communities
from api.web import stores
from auth.policy import PROPERTY_ALERT_TYPES
from auth.principal import current_principal
from ingest.schema import split_body
from ingest.service import IngestService
from store.alert_models import ALERT_TYPES
from store.alerts import history_query, record_view
from store.events import Backlogged
from store.ratelimit import RateLimited, hit

bp = Blueprint("events_api", __name__, url_prefix="/api/v1")


def ingest_service() -> IngestService:
    """The process's ingest service (one per app: it caches the registry)."""
    service: IngestService | None = current_app.extensions.get("sandtable.ingest")
    if service is None:
        service = IngestService(stores())
        current_app.extensions["sandtable.ingest"] = service
    return service


def error(status: int, message: str, retry_after: int | None = None) -> ResponseReturnValue:
    """A JSON error with one sentence."""
    response = jsonify({"error": message})
    response.status_code = status
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


@bp.post("/events")
def post_events() -> ResponseReturnValue:
    """Accept events from a device gateway with an ingest token for its community."""
    principal = current_principal()
    if principal.token_scope != "ingest" or not principal.community:
        audit("denied", target="/api/v1/events", reason="not an ingest token", outcome="denied")
        return error(403, "this token may not post events (use a token with scope ingest)")
    community = principal.community
    s = stores()
    limit = s.settings.ingest_max_bytes
    if request.content_length is not None and request.content_length > limit:
        return error(413, f"the body is larger than {limit} bytes")
    body = request.get_data(cache=False)
    if len(body) > limit:
        return error(413, f"the body is larger than {limit} bytes")
    try:
        hit(s.redis, s.keys.prefix, f"ingest:{principal.id}", limit=s.settings.ingest_rate_per_minute, window_s=60)
    except RateLimited as err:
        return error(429, "too many requests for this token; slow down", retry_after=err.retry_after)
    try:
        items = split_body(body, request.content_type or "", s.settings.ingest_max_batch)
    except ValueError as err:
        return error(400, str(err))
    wanted = request.args.get("community")
    if wanted and wanted != community:
        return error(403, f"this token is for community {community}, not {wanted}")
    try:
        result = ingest_service().ingest(community, items)
    except Backlogged as err:
        return error(503, str(err), retry_after=5)
    response = jsonify(result.body())
    response.status_code = 202
    return response


@bp.get("/alerts")
@require("read.alerts")
def alerts() -> ResponseReturnValue:
    """Alerts in the caller's scope: ``?status=open|all&type=T&community=C&since=RFC3339``."""
    principal = current_principal()
    status = request.args.get("status", "open")
    if status not in ("open", "all"):
        return bad_request("status must be open or all")
    alert_type = request.args.get("type")
    if alert_type and alert_type not in ALERT_TYPES:
        return bad_request(f"unknown alert type {alert_type!r}")
    since = query_time("since")
    wanted = scoped_communities(principal, request.args.get("community"))
    if wanted is None:
        return deny("community outside scope", target=request.full_path)
    types = PROPERTY_ALERT_TYPES if principal.role == "property" else None
    with stores().sessions() as session:
        rows = history_query(
            session,
            communities=wanted,
            status=status,
            alert_type=alert_type,
            since=since,
            grid=principal.scope.grid,
            types=types,
            limit=5000,
        )
        data = [record_view(r) for r in rows]
    if principal.role in ("wall", "property"):
        for row in data:
            row["subject"].pop("person", None)
    return jsonify(data)


@bp.get("/alerts/<community>/<alert_id>/evidence.jpg")
@require("read.alerts")
def evidence_image(community: str, alert_id: str) -> ResponseReturnValue:
    """The evidence image of an alert (a video detection's frame with the trajectory or the fall drawn)."""
    from pathlib import Path

    from flask import send_file

    from closedloop.service import Loop
    from core.errors import Forbidden, NotFound

    try:
        doc = Loop(stores()).visible_alert(current_principal(), community, alert_id)
    except (NotFound, Forbidden):
        return error(404, "no such alert")
    image = str((doc.get("evidence") or {}).get("image") or "")
    folder = (stores().settings.var_dir / "evidence").resolve()
    path = Path(image).resolve() if image else None
    if path is None or folder not in path.parents or not path.is_file():
        return error(404, "this alert has no evidence image")
    return send_file(path, mimetype="image/jpeg", max_age=3600)
