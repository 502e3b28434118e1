"""``POST /api/v1/events`` (interfaces §2) and ``GET /api/v1/alerts`` (§3)."""

from __future__ import annotations

import time

from flask import Blueprint, Response, jsonify, request, send_file
from flask.typing import ResponseReturnValue

from alerts.access import alert_filter, visible_to
from alerts.constants import ALERT_TYPES
from alerts.history import history_select, record_view
from alerts.models import AlertRecord
from api.access import audit, deny, require
from api.context import clock, services, stores
from api.paging import Pager, SortKey
from api.params import query_time
from api.registry_api import bad_request, scoped_communities
from auth.principal import current_principal
from closedloop.service import Loop
from core.errors import Forbidden, NotFound
from core.metrics import metrics
from ingest.schema import split_body
from store.events import Backlogged
from store.evidence import EvidenceStore
from store.ratelimit import RateLimited, hit

bp = Blueprint("events_api", __name__, url_prefix="/api/v1")

ALERT_ORDER = SortKey((AlertRecord.detected_at, AlertRecord.id), descending=True)  # newest first


def error(status: int, message: str, retry_after: int | None = None) -> Response:
    """A JSON error with one sentence."""
    response = jsonify({"error": message})
    response.status_code = status
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


@bp.post("/events")
def post_events() -> ResponseReturnValue:
    """Accept events from a device gateway with an ingest token for its community (timed and
    counted by status: ``sandtable_ingest_seconds``, ``sandtable_ingest_requests_total``)."""
    started = time.perf_counter()
    response = _post_events()
    series = metrics()
    series.ingest_seconds.observe(time.perf_counter() - started)
    status = response.status_code if isinstance(response, Response) else 200
    series.ingest_requests.labels(str(status)).inc()
    return response


def _post_events() -> Response:
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
        result = services().ingest.ingest(community, items)
    except Backlogged as err:
        return error(503, str(err), retry_after=5)
    response = jsonify(result.body())
    response.status_code = 202
    return response


@bp.get("/alerts")
@require("read.alerts")
def alerts() -> ResponseReturnValue:
    """Alerts in the caller's scope, newest detected first, paged (api/paging.py):
    ``?status=open|all&type=T&community=C&since=RFC3339&limit=N&cursor=C``."""
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
    settings = stores().settings
    access = alert_filter(principal, settings)
    pager = Pager.from_request(ALERT_ORDER)
    query = history_select(communities=wanted, status=status, alert_type=alert_type, since=since, visible=access)
    with stores().sessions() as session:
        rows = pager.trim(session.scalars(pager.apply(query)).all())
        data = visible_to(principal, (record_view(r) for r in rows), settings)
    return pager.respond(data)


@bp.get("/alerts/<community>/<alert_id>/evidence.jpg")
@require("read.evidence")
def evidence_image(community: str, alert_id: str) -> ResponseReturnValue:
    """The evidence image of an alert (a video detection's frame with the trajectory or the fall drawn):
    only of an alert the caller may see, and only from that alert's community's evidence folder."""
    try:
        doc = Loop(stores(), clock()).visible_alert(current_principal(), community, alert_id)
    except (NotFound, Forbidden):
        return error(404, "no such alert")
    folder = EvidenceStore.of_settings(stores().settings).community(doc["community"])
    path = folder.path((doc.get("evidence") or {}).get("image"))
    if path is None:
        return error(404, "this alert has no evidence image")
    response = send_file(path, mimetype="image/jpeg")
    response.headers["Cache-Control"] = "private, no-store"  # evidence: no shared cache keeps it for others
    return response
