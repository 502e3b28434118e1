"""Downloads of situation reports: a report made on the /reports page (its owner only) and the daily
PDFs (police and admins of the community).

``app.create_app`` registers the blueprint under ``/api/v1/reports`` with the other API blueprints."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, Response, jsonify, request, send_file
from flask.typing import ResponseReturnValue

from api.access import audit, require
from api.context import request_lang, services, stores
from auth.policy import can
from auth.principal import current_principal
from core.i18n import t
from reports.scheduler import daily_path

bp = Blueprint("reports_api", __name__, url_prefix="/api/v1/reports")

MIMETYPES = {
    "pdf": "application/pdf",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "application/zip",
}


def not_found(reason: str) -> Response:
    """An audited 404: someone else's report looks exactly like no report."""
    audit("denied", target=request.path, reason=reason, outcome="denied")
    response = jsonify({"error": t("error.not_found", request_lang())})
    response.status_code = 404
    return response


@bp.get("/<job_id>")
@require("view.reports")
def download(job_id: str) -> ResponseReturnValue:
    """The file of a finished report, to the user who made it (anyone else: 404, audited)."""
    principal = current_principal()
    jobs = services().reports
    job = jobs.owned(job_id, principal)
    path = jobs.file_of(job) if job is not None else None
    if job is None or path is None:
        return not_found("report not found, not finished or not the caller's")
    audit("report.download", target=f"report:{job_id}", reason=job.filename)
    return send_file(path, mimetype=MIMETYPES.get(job.fmt), as_attachment=True, download_name=job.filename)


@bp.get("/daily/<community>/<day>")
@require("view.reports")
def daily(community: str, day: str) -> ResponseReturnValue:
    """A daily PDF of a community in the caller's scope."""
    principal = current_principal()
    try:
        date = dt.date.fromisoformat(day)
        path = daily_path(stores().settings, community, date)
    except ValueError:
        return not_found("not a daily report")
    if not principal.scope.allows_community(community) or not can(principal, "view.reports") or not path.is_file():
        return not_found("daily report not found or outside the scope")
    audit("report.download", target=f"daily:{community}:{day}", community=community)
    return send_file(path, mimetype="application/pdf", as_attachment=True, download_name=f"daily-{community}-{day}.pdf")
