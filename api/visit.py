"""Visitors apply for a pass themselves (智能访客): a public, phone-sized page.

``GET /visit?c=COMMUNITY`` is the form (a QR code at the entrance points to it); ``POST /visit``
creates a pending pass for property or police to approve and answers with a status link,
``GET /visit/status?p=PASS&k=KEY``, whose key is a keyed signature of the pass id: only who
applied can read the decision, and the page shows nothing but the status and its reason.

Visitors have no accounts. The household they visit is typed as an address (building, unit,
room) and resolved on the server; the page never lists households or shows resident data.
Every POST counts against a per-address rate limit, so the form cannot flood the approval queue.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, make_response, render_template_string, request
from flask.typing import ResponseReturnValue

from api.access import client_ip
from api.context import request_lang, stores
from api.resident import parse_local
from core.i18n import normalize_lang, t
from core.timefmt import SHANGHAI
from gates.models import VisitorPass
from gates.service import SELF_APPLIED, FieldErrors, PassRequest, Visitors
from registry.address import find_households
from registry.models import Community
from registry.validate import normalise_text
from store.ratelimit import RateLimited, hit
from store.sql import utcnow
from store.stores import Stores

log = logging.getLogger(__name__)
bp = Blueprint("visit", __name__)

FIELDS = (
    "visitor_name",
    "id_number",
    "phone",
    "plate",
    "building",
    "unit",
    "room",
    "valid_from",
    "valid_to",
    "reason",
)
HOST_FIELDS = ("building", "unit", "room")


def pass_key(stores_: Stores, pass_id: str) -> str:
    """The signature that lets a status link read its pass (and only that pass)."""
    digest = hmac.new(stores_.secret, f"visit|{pass_id}".encode(), hashlib.sha256).hexdigest()
    return digest[:24]


def status_path(stores_: Stores, pass_id: str, lang: str | None = None) -> str:
    """The path of a pass's status page."""
    query = {"p": pass_id, "k": pass_key(stores_, pass_id)} | ({"lang": lang} if lang else {})
    return f"/visit/status?{urlencode(query)}"


PAGE = """<!doctype html>
<html lang="{{ 'zh-CN' if lang == 'zh' else 'en' }}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
{% if refresh %}<meta http-equiv="refresh" content="60{% if link %}; url={{ link }}{% endif %}">{% endif %}
<title>{{ title }}</title><link rel="stylesheet" href="/assets/css/theme.css"></head>
<body class="st-resident st-visit"><main>
<h1>{{ title }}</h1>
{% if where %}<p class="st-muted">{{ where }}</p>{% endif %}
{% if message %}<p class="st-msg-ok" role="status">{{ message }}</p>{% endif %}
{% if error %}<p class="st-msg-error" role="alert">{{ error }}</p>{% endif %}
{% macro field(f) %}<label>{{ f.label }}<input name="{{ f.name }}" type="{{ f.type }}" value="{{ f.value }}"
 maxlength="{{ f.max }}"{% if f.required %} required{% endif %}{% if f.hint %} placeholder="{{ f.hint }}"{% endif %}
 {% if f.mode %} inputmode="{{ f.mode }}"{% endif %} autocomplete="{{ f.auto }}"
 {% if f.invalid %} aria-invalid="true" class="st-invalid" aria-describedby="error-{{ f.error_of }}"{% endif %}>
{%- if f.error %}<span class="st-field-error"
 id="error-{{ f.name }}" role="alert">{{ f.error }}</span>{% endif %}</label>{% endmacro %}
{% if form %}
<p class="st-muted">{{ intro }}</p>
<form method="post" action="/visit" class="st-form" id="visit">
<input type="hidden" name="c" value="{{ community }}"><input type="hidden" name="lang" value="{{ lang }}">
{% for f in form.person %}{{ field(f) }}{% endfor %}
<fieldset class="st-host"><legend>{{ form.host_label }}</legend>
<div class="st-host-row">{% for f in form.host %}{{ field(f) }}{% endfor %}</div>
{% if form.host_error %}<span class="st-field-error" id="error-host" role="alert">{{ form.host_error }}</span>
{% endif %}
</fieldset>
{% for f in form.visit %}{{ field(f) }}{% endfor %}
<button class="st-btn" type="submit">{{ submit }}</button>
</form>
{% endif %}
{% if status %}
<div class="st-notice st-pass-{{ status.code }}" id="visit-status">{{ status.label_title }}:
 <span class="st-pass-status">{{ status.label }}</span>
{% if status.note %}<div>{{ status.note_title }}: {{ status.note }}</div>{% endif %}</div>
{% endif %}
{% if link %}<p>{{ keep_link }}<br><a class="st-visit-link" href="{{ link }}">{{ link_text }}</a></p>{% endif %}
<p class="st-login-lang"><a href="{{ switch }}">{{ t_lang }}</a></p>
</main></body></html>"""


def _lang() -> str:
    """``?lang=`` (or the form's) first, else the language cookie (Chinese by default)."""
    asked = request.values.get("lang")
    return normalize_lang(asked) if asked in ("zh", "en") else request_lang()


def _community(community_id: str) -> Community | None:
    if not community_id:
        return None
    with stores().sessions() as session:
        return session.get(Community, community_id[:32])


def _default_window() -> dict[str, str]:
    """From the next quarter hour, for two hours, in local time (what datetime-local inputs hold)."""
    now = dt.datetime.now(SHANGHAI).replace(second=0, microsecond=0)
    start = now + dt.timedelta(minutes=15 - now.minute % 15)
    return {
        "valid_from": start.strftime("%Y-%m-%dT%H:%M"),
        "valid_to": (start + dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"),
    }


def _form(lang: str, values: dict[str, str], errors: dict[str, str]) -> dict[str, Any]:
    def spec(
        name: str, kind: str, size: int, *, required: bool = True, mode: str = "", auto: str = "off"
    ) -> dict[str, Any]:
        hint = t(f"visit.{name}_hint", lang) if name in HOST_FIELDS else ""
        return {
            "name": name,
            "type": kind,
            "max": size,
            "required": required,
            "mode": mode,
            "auto": auto,
            "hint": hint,
            "label": t(f"visit.{name}", lang),
            "value": values.get(name, ""),
            "error": errors.get(name, ""),
            # the three parts of the address share one message
            "invalid": bool(errors.get(name)) or (name in HOST_FIELDS and "host" in errors),
            "error_of": "host" if name in HOST_FIELDS else name,
        }

    return {
        "person": [
            spec("visitor_name", "text", 64, auto="name"),
            spec("id_number", "text", 18),
            spec("phone", "tel", 20, mode="tel", auto="tel"),
            spec("plate", "text", 10, required=False),
        ],
        "host_label": t("visit.host", lang),
        "host": [
            spec("building", "text", 20),
            spec("unit", "text", 8, required=False, mode="numeric"),
            spec("room", "text", 16),
        ],
        "host_error": errors.get("host", ""),
        "visit": [
            spec("valid_from", "datetime-local", 16),
            spec("valid_to", "datetime-local", 16),
            spec("reason", "text", 200),
        ],
    }


def _render(
    lang: str,
    *,
    title_key: str = "visit.title",
    community: Community | None = None,
    form: dict[str, Any] | None = None,
    status: dict[str, str] | None = None,
    link: str = "",
    message: str = "",
    error: str = "",
    switch: str = "",
    code: int = 200,
) -> Response:
    where = ""
    if community is not None:
        where = community.name_en or community.name if lang == "en" else community.name
    html = render_template_string(
        PAGE,
        lang=lang,
        title=t(title_key, lang),
        where=where,
        intro=t("visit.intro", lang),
        community=community.id if community is not None else "",
        form=form,
        status=status,
        # a pending decision is looked at again each minute (a POST's confirmation moves to its status link)
        refresh=status is not None and status["code"] == "pending",
        link=link,
        link_text=request.host_url.rstrip("/") + link if link else "",
        keep_link=t("visit.keep_link", lang),
        message=message,
        error=error,
        submit=t("visit.submit", lang),
        switch=switch or f"/visit?{urlencode({'lang': 'en' if lang == 'zh' else 'zh'})}",
        t_lang=t("lang.switch", lang),
    )
    response = make_response(html, code)
    response.headers["Cache-Control"] = "no-store"  # a status page is personal; a form holds what was typed
    return response


def _switch(lang: str, **query: str) -> str:
    return "?" + urlencode(query | {"lang": "en" if lang == "zh" else "zh"})


def _status(visitor: VisitorPass, lang: str) -> dict[str, str]:
    return {
        "code": visitor.status,
        "label_title": t("visit.status", lang),
        "label": t(f"visitor.status.{visitor.status}", lang),
        "note_title": t("visit.note", lang),
        "note": visitor.decision_note if visitor.status in ("rejected", "approved", "revoked") else "",
    }


@bp.get("/visit")
def form_page() -> ResponseReturnValue:
    """The empty form of a community."""
    lang = _lang()
    community = _community(request.args.get("c", ""))
    if community is None:
        return _render(lang, error=t("visit.no_community", lang), code=404)
    return _render(
        lang,
        community=community,
        form=_form(lang, _default_window(), {}),
        switch="/visit" + _switch(lang, c=community.id),
    )


@bp.post("/visit")
def apply() -> ResponseReturnValue:
    """A visitor's application: a pending pass, or the form again with each error at its field."""
    lang = _lang()
    community = _community(request.form.get("c", ""))
    if community is None:
        return _render(lang, error=t("visit.no_community", lang), code=404)
    values = {k: request.form.get(k, "").strip()[:200] for k in FIELDS}
    switch = "/visit" + _switch(lang, c=community.id)

    def again(code: int, error: str, errors: dict[str, str]) -> Response:
        return _render(
            lang, community=community, form=_form(lang, values, errors), error=error, switch=switch, code=code
        )

    s = stores()
    try:
        hit(s.redis, s.keys.prefix, f"visit:{client_ip()}", limit=s.settings.visit_rate_per_hour, window_s=3600)
    except RateLimited as err:
        response = again(429, t("visit.too_many", lang), {})
        response.headers["Retry-After"] = str(err.retry_after)
        return response
    errors, req = _check(s, community.id, values, lang)
    if errors:
        return again(400, t("visitor.fix", lang), errors)
    try:
        created = Visitors(s).request(req, requested_by=SELF_APPLIED)
    except FieldErrors as err:  # a pass created meanwhile (a double submit) overlaps
        return again(400, t("visitor.fix", lang), _messages(err, lang))
    log.info("visitor application %s for community %s", created.id, community.id)
    return _render(
        lang,
        community=community,
        message=t("visit.sent", lang),
        status=_status(created, lang),
        link=status_path(s, created.id, lang),  # the decision is read in the language of the application
        switch=status_path(s, created.id, "en" if lang == "zh" else "zh"),
    )


def _check(s: Stores, community: str, values: dict[str, str], lang: str) -> tuple[dict[str, str], PassRequest]:
    """Every error of the form by field (host: the household address), and the request to make."""
    errors: dict[str, str] = {}
    now = utcnow()
    times: dict[str, dt.datetime] = {}
    for name in ("valid_from", "valid_to"):
        try:
            times[name] = parse_local(values[name])
        except ValueError:
            errors[name] = t("visitor.bad_time", lang)
    with s.sessions() as session:
        found = find_households(session, community, values["building"], values["unit"], values["room"])
    req = PassRequest(
        household=found[0].id if len(found) == 1 else "",
        visitor_name=values["visitor_name"],
        id_number=values["id_number"],
        phone=values["phone"],
        plate=values["plate"],
        valid_from=times.get("valid_from", now),
        valid_to=times.get("valid_to", now),
        reason=values["reason"],
    )
    try:
        Visitors(s).check(req, now=now)
    except FieldErrors as err:
        for name, message in _messages(err, lang).items():
            errors.setdefault(name, message)  # an unreadable time keeps its own message
    if len(found) > 1:
        errors["host"] = t("visitor.err.unit", lang)
    if len(normalise_text(values["reason"])) < 2:
        errors["reason"] = t("visitor.err.reason", lang)
    return errors, req


def _messages(err: FieldErrors, lang: str) -> dict[str, str]:
    """The service's field errors, translated, on the page's fields."""
    return {"host" if name == "household" else name: text for name, text in err.texts(lang).items()}


@bp.get("/visit/status")
def status_page() -> ResponseReturnValue:
    """A pass's decision, for who holds its link: the status and the reason, nothing else."""
    lang = _lang()
    pass_id = request.args.get("p", "")[:24]
    key = request.args.get("k", "")
    visitor = None
    if pass_id and hmac.compare_digest(key.encode(), pass_key(stores(), pass_id).encode()):
        with stores().sessions() as session:
            visitor = session.get(VisitorPass, pass_id)
    if visitor is None:
        return _render(lang, title_key="visit.status_title", error=t("visit.bad_link", lang), code=404)
    return _render(
        lang,
        title_key="visit.status_title",
        status=_status(visitor, lang),
        switch="/visit/status" + _switch(lang, p=pass_id, k=key),
    )
