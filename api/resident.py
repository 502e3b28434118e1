"""The residents' page: call the property or the police from a phone, and read police notices.

Residents have no accounts: each household gets a link carrying a keyed signature of its id
(printed on the door card, sent by the property office: ``manage.py resident-link HOUSEHOLD``).
The page is server-rendered (escaped template), works on any phone browser.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from typing import Any

from flask import Blueprint, Response, jsonify, make_response, render_template_string, request
from flask.typing import ResponseReturnValue
from sqlalchemy import or_, select

from api.access import client_ip
from api.context import request_lang, services, stores
from closedloop.incidents import Incidents
from closedloop.models import Notice, ResidentReport, Task
from core.i18n import t
from core.timefmt import SHANGHAI, aware, local_text
from gates.service import SELF_APPLIED, FieldErrors, PassRequest, Visitors
from registry.models import Building, Household
from store.ratelimit import RateLimited, hit
from store.stores import Stores

bp = Blueprint("resident", __name__)


def household_key(stores_: Stores, household: str) -> str:
    """The signature that lets a household's link in (and only that household's)."""
    digest = hmac.new(stores_.secret, f"resident|{household}".encode(), hashlib.sha256).hexdigest()
    return digest[:24]


def resident_link(stores_: Stores, household: str, base_url: str) -> str:
    """The household's page."""
    return f"{base_url.rstrip('/')}/resident?h={household}&k={household_key(stores_, household)}"


PAGE = """<!doctype html>
<html lang="{{ 'zh-CN' if lang == 'zh' else 'en' }}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title><link rel="stylesheet" href="/assets/css/theme.css"></head>
<body class="st-resident"><main>
<h1>{{ title }}</h1>
<p class="st-muted">{{ where }}</p>
{% if message %}<p class="st-msg-ok" role="status">{{ message }}</p>{% endif %}
{% if error %}<p class="st-msg-error" role="alert">{{ error }}</p>{% endif %}
<form method="post" action="/resident/report" class="st-form">
<input type="hidden" name="h" value="{{ household }}"><input type="hidden" name="k" value="{{ key }}">
<label>{{ t_text }}<textarea name="text" maxlength="500" required></textarea></label>
<label>{{ t_contact }}<input name="contact" maxlength="20" inputmode="tel"></label>
<div class="st-actions">
<button class="st-btn" name="to" value="property">{{ t_property }}</button>
<button class="st-btn st-btn-danger" name="to" value="police">{{ t_police }}</button>
</div>
</form>
<section id="st-calls" data-src="/resident/calls?h={{ household }}&amp;k={{ key }}"
 {% if not calls %}hidden{% endif %}>
<h2>{{ t_calls }}</h2>
<div id="st-call-list">{% for c in calls %}<div class="st-notice st-call st-call-{{ c.stage }}" data-call="{{ c.id }}">
<div class="st-muted">{{ c.when }}</div><div class="st-call-text">{{ c.text }}</div>
<b class="st-call-stage">{{ c.label }}</b>
{% if c.feedback %}<div class="st-call-feedback">{{ c.feedback }}</div>{% endif %}
</div>{% endfor %}</div>
</section>
<h2>{{ t_invite }}</h2>
<form method="post" action="/resident/invite" class="st-form" id="invite">
<input type="hidden" name="h" value="{{ household }}"><input type="hidden" name="k" value="{{ key }}">
{% for f in fields %}<label>{{ f.label }}<input name="{{ f.name }}" type="{{ f.type }}" value="{{ f.value }}"
 {% if f.required %}required{% endif %} maxlength="{{ f.max }}">{% if f.error %}<span class="st-field-error"
 role="alert">{{ f.error }}</span>{% endif %}</label>{% endfor %}
<button class="st-btn" name="send" value="1">{{ t_send_invite }}</button>
</form>
{% if passes %}<h2>{{ t_passes }}</h2>
{% for p in passes %}<div class="st-notice st-pass-{{ p.status }}"><b>{{ p.visitor_name }}</b> · {{ p.window }}
 · <span class="st-pass-status">{{ p.status_label }}</span>{% if p.note %} · {{ p.note }}{% endif %}
{% if p.self_applied %}<div class="st-muted">{{ p.self_applied }}</div>{% endif %}</div>{% endfor %}
{% endif %}
<h2>{{ t_notices }}</h2>
{% for n in notices %}<div class="st-notice"><b>{{ n.title }}</b><div>{{ n.body }}</div></div>{% else %}
<p class="st-muted">{{ t_none }}</p>{% endfor %}
<p class="st-login-lang"><a href="/lang/{{ other }}?next={{ back }}">{{ t_lang }}</a></p>
</main><script src="/assets/js/resident.js"></script></body></html>"""


def _household() -> tuple[Household, Building] | None:
    household_id = request.values.get("h", "")[:48]
    key = request.values.get("k", "")
    # bytes: compare_digest refuses a str with non-ASCII characters (a TypeError, not a refusal)
    if not household_id or not hmac.compare_digest(key.encode(), household_key(stores(), household_id).encode()):
        return None
    with stores().sessions() as session:
        household = session.get(Household, household_id)
        building = session.get(Building, household.building_id) if household else None
    if household is None or building is None:
        return None
    return household, building


def visitor_fields(lang: str, values: dict[str, str], errors: dict[str, str]) -> list[dict[str, Any]]:
    """The visitor form's fields, with what was typed and the error of each."""
    spec = [
        ("visitor_name", "text", 64, True),
        ("id_number", "text", 18, True),
        ("phone", "tel", 20, True),
        ("plate", "text", 10, False),
        ("valid_from", "datetime-local", 16, True),
        ("valid_to", "datetime-local", 16, True),
        ("reason", "text", 200, False),
    ]
    return [
        {
            "name": n,
            "type": kind,
            "max": size,
            "required": req,
            "label": t(f"visitor.{n}", lang),
            "value": values.get(n, ""),
            "error": errors.get(n, ""),
        }
        for n, kind, size, req in spec
    ]


def _page(
    household: Household,
    building: Building,
    *,
    message: str = "",
    error: str = "",
    status: int = 200,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> Response:
    lang = request_lang()
    with stores().sessions() as session:
        notices = list(
            session.scalars(
                select(Notice)
                .where(
                    Notice.community_id == household.community_id,
                    or_(Notice.grid_id.is_(None), Notice.grid_id == household.grid_id),
                )
                .order_by(Notice.created_at.desc())
                .limit(10)
            )
        )
    where = f"{building.name_en or building.name if lang == 'en' else building.name} {household.unit}-{household.room}"
    back = f"/resident?h={household.id}%26k={household_key(stores(), household.id)}"
    html = render_template_string(
        PAGE,
        lang=lang,
        title=t("resident.title", lang),
        where=where,
        message=message,
        error=error,
        household=household.id,
        key=household_key(stores(), household.id),
        notices=notices,
        t_text=t("resident.text", lang),
        t_contact=t("resident.contact", lang),
        t_property=t("resident.call_property", lang),
        t_police=t("resident.call_police", lang),
        t_notices=t("tasks.notices", lang),
        t_none=t("wall.no_data", lang),
        other="en" if lang == "zh" else "zh",
        back=back,
        t_lang=t("lang.switch", lang),
        t_invite=t("visitor.invite", lang),
        t_send_invite=t("visitor.send", lang),
        t_passes=t("visitor.mine", lang),
        fields=visitor_fields(lang, values or {}, errors or {}),
        passes=_passes_view(household.id, lang),
        t_calls=t("resident.calls", lang),
        calls=_calls_view(household.id, lang),
    )
    return make_response(html, status)


def _calls_view(household: str, lang: str) -> list[dict[str, str]]:
    """The household's calls to the police with their stage and feedback (the page and its poll)."""
    return [
        {
            "id": c["id"],
            "when": _local(c["at"]),
            "text": c["text"],
            "stage": c["stage"],
            "label": c["label"],
            "feedback": t("resident.feedback", lang, text=c["feedback"]) if c["feedback"] else "",
        }
        for c in Incidents(services().loop).calls_of_household(household, lang)
    ]


def _passes_view(household: str, lang: str) -> list[dict[str, str]]:
    out = []
    for p in Visitors(stores()).of_household(household):
        window = f"{_local(p.valid_from)} – {_local(p.valid_to)}"
        out.append(
            {
                "visitor_name": p.visitor_name,
                "window": window,
                "status": p.status,
                "status_label": t(f"visitor.status.{p.status}", lang),
                "note": p.decision_note,
                "self_applied": t("visitor.self_applied", lang) if p.requested_by == SELF_APPLIED else "",
            }
        )
    return out


def _local(value: dt.datetime) -> str:
    return local_text(int(aware(value).timestamp() * 1000), "%m-%d %H:%M")


def parse_local(text: str) -> dt.datetime:
    """A datetime-local form value (Asia/Shanghai) as an aware datetime."""
    value = dt.datetime.fromisoformat(text.strip())
    value = value.replace(tzinfo=SHANGHAI) if value.tzinfo is None else value
    try:
        return value.astimezone(dt.UTC)  # year 1 in Shanghai, or year 9999 at UTC-10, has no UTC time
    except OverflowError as err:
        raise ValueError("the time is out of range") from err


@bp.post("/resident/invite")
def invite() -> ResponseReturnValue:
    """A resident invites a visitor: a pending pass for property or police to approve."""
    lang = request_lang()
    found = _household()
    if found is None:
        return make_response(t("resident.bad_link", lang), 404)
    household, building = found
    s = stores()
    try:  # per household (a leaked link) and per address (one client walking many links)
        hit(s.redis, s.keys.prefix, f"invite:{household.id}", limit=s.settings.invite_rate_per_hour, window_s=3600)
        hit(s.redis, s.keys.prefix, f"invite-ip:{client_ip()}", limit=s.settings.visit_rate_per_hour, window_s=3600)
    except RateLimited as err:
        response = _page(household, building, error=t("visitor.too_many", lang), status=429)
        response.headers["Retry-After"] = str(err.retry_after)
        return response
    values = {
        k: request.form.get(k, "").strip()[:200]
        for k in ("visitor_name", "id_number", "phone", "plate", "valid_from", "valid_to", "reason")
    }
    errors: dict[str, str] = {}
    times = {}
    for field in ("valid_from", "valid_to"):
        try:
            times[field] = parse_local(values[field])
        except ValueError:
            errors[field] = t("visitor.bad_time", lang)
    if not errors:
        try:
            Visitors(s).request(
                PassRequest(
                    household=household.id,
                    visitor_name=values["visitor_name"],
                    id_number=values["id_number"],
                    phone=values["phone"],
                    plate=values["plate"],
                    valid_from=times["valid_from"],
                    valid_to=times["valid_to"],
                    reason=values["reason"],
                ),
                requested_by="resident",
            )
        except FieldErrors as err:
            errors = err.texts(lang)
    if errors:
        return _page(household, building, error=t("visitor.fix", lang), status=400, values=values, errors=errors)
    return _page(household, building, message=t("visitor.sent", lang))


@bp.get("/resident")
def page() -> ResponseReturnValue:
    """The household's page."""
    found = _household()
    if found is None:
        return make_response(t("resident.bad_link", request_lang()), 404)
    return _page(*found)


@bp.post("/resident/report")
def report() -> ResponseReturnValue:
    """A call to the property (a task for them) or to the police (a ``resident.call`` alert)."""
    lang = request_lang()
    found = _household()
    if found is None:
        return make_response(t("resident.bad_link", lang), 404)
    household, building = found
    to = request.form.get("to", "")
    text = request.form.get("text", "").strip()[:500]
    contact = request.form.get("contact", "").strip()[:20]
    if to not in ("property", "police") or not text:
        return _page(household, building, error=t("resident.need_text", lang), status=400)
    s = stores()
    try:  # a flood of calls from one household (a stuck button, a leaked link)
        hit(s.redis, s.keys.prefix, f"resident:{household.id}", limit=s.settings.resident_calls_per_hour, window_s=3600)
    except RateLimited as err:
        response = _page(household, building, error=t("resident.too_many", lang), status=429)
        response.headers["Retry-After"] = str(err.retry_after)
        return response
    with s.sessions.begin() as session:
        report_id = secrets.token_hex(8)
        session.add(
            ResidentReport(
                id=report_id,
                community_id=household.community_id,
                household_id=household.id,
                grid_id=household.grid_id,
                to=to,
                text=text,
                contact=contact,
            )
        )
        if to == "property":
            session.add(
                Task(
                    id=secrets.token_hex(8),
                    community_id=household.community_id,
                    report_id=report_id,
                    kind="report",
                    assignee="property",
                    grid_id=household.grid_id,
                    status="offered",
                    title="",
                    lat=building.lat,
                    lon=building.lon,
                    prefill={"household": household.id},
                    notes=text,
                    created_by="resident",
                )
            )
    if to == "police":  # the call is an alert in the console's queue, in the closed loop
        Incidents(services().loop).resident_call(report_id, household.id, text, contact)
    s.redis.incr(s.keys.version(household.community_id))
    return _page(household, building, message=t(f"resident.sent_{to}", lang))


@bp.get("/resident/calls")
def calls() -> ResponseReturnValue:
    """The household's calls to the police and their status (polled by the page: assets/js/resident.js)."""
    found = _household()
    if found is None:
        return make_response(t("resident.bad_link", request_lang()), 404)
    response = jsonify(_calls_view(found[0].id, request_lang()))
    response.headers["Cache-Control"] = "no-store"
    return response
