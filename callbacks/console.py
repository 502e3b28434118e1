"""Callbacks of the police console. Role and scope come from the server session; the browser only
says which alert it looks at and which status it saw there (for the concurrency check)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from dash import ALL, Input, Output, State, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate
from sqlalchemy import select

from alerts.access import alert_filter, visible_to
from alerts.history import history_query, record_view
from alerts.lifecycle import is_open, step_key
from alerts.models import AlertRecord
from api.context import services, stores
from auth.callbacks import page_callback
from auth.labels import labels, relabel, subject_place
from auth.masking import mask_id_number, name_for
from auth.policy import PROPERTY_ALERT_TYPES, can
from auth.principal import Principal, current_principal
from callbacks.gate import gated
from callbacks.util import as_list
from closedloop.models import Notice, ResidentReport, outcome_labels
from core.errors import Forbidden, InvalidInput, NotFound, SandtableError
from core.i18n import t
from core.timefmt import aware, local_text, utc_to_ms
from layouts import ids
from layouts.gate import tick_id
from registry.models import Grid, Person

# the interval's refreshes (ids.CONSOLE_REFRESHES): the queue, the detail, the residents' calls and the modes
# (callbacks/modes.py), each with its busy flag; the tick passes when none has a request out (callbacks/gate.py)
CONSOLE_TICK, CONSOLE_FLAGS = gated(ids.CONSOLE_REFRESH, ids.CONSOLE_REFRESHES)


def lang_of(selected: Any) -> str:
    """The page's language (only used to choose texts)."""
    return "en" if isinstance(selected, dict) and selected.get("lang") == "en" else "zh"


def community_of(principal: Principal, selected: Any) -> str:
    """The community the console shows, checked against the caller's scope."""
    community = str(selected.get("community", "")) if isinstance(selected, dict) else ""
    if not principal.scope.allows_community(community):
        raise PreventUpdate
    return community


def when(iso: str) -> str:
    """A UTC timestamp shown in Asia/Shanghai."""
    return local_text(utc_to_ms(dt.datetime.fromisoformat(iso.replace("Z", "+00:00"))), "%m-%d %H:%M:%S")


NO_LABELS: Mapping[str, str] = {}
ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|\+00:00)$")


def field_label(key: str, lang: str) -> str:
    """A subject or evidence field's name in lang (an unknown field shows its own name)."""
    label = t(f"field.{key}", lang)
    return key if label == f"field.{key}" else label


def field_value(value: Any, lang: str, found: Mapping[str, str] = NO_LABELS) -> str:
    """An evidence value for people: times in Asia/Shanghai, yes/no, known codes translated, ids
    as people read them (``found``: auth.labels.labels of the alert)."""
    if isinstance(value, bool):
        return t(f"value.{str(value).lower()}", lang)
    if isinstance(value, str):
        if value in found:
            return found[value]
        if ISO_UTC.match(value):
            return when(value)
        known = t(f"value.{value}", lang)
        return value if known == f"value.{value}" else known
    if isinstance(value, dict):
        return " · ".join(f"{field_label(str(k), lang)} {field_value(v, lang, found)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(field_value(v, lang, found) for v in value)
    return "—" if value is None else str(value)


def evidence_rows(evidence: dict[str, Any], lang: str, found: Mapping[str, str] = NO_LABELS) -> list[tuple[str, str]]:
    """The evidence as (label, value) rows (the trajectory and the image are shown otherwise)."""
    return [
        (field_label(k, lang), field_value(v, lang, found))
        for k, v in evidence.items()
        if k not in ("trajectory", "image", "_") and v not in (None, "")
    ]


@page_callback(
    "view.console",
    Output(ids.CONSOLE_LIST, "children"),
    CONSOLE_TICK,
    Input(ids.CONSOLE_STATUS, "value"),
    Input(ids.CONSOLE_TYPE, "value"),
    Input(ids.CONSOLE_DONE, "data"),
    State(ids.CONSOLE_SELECTED, "data"),
    **CONSOLE_FLAGS[0],
)
def queue(_tick: Any, status: Any, alert_type: Any, _done: Any, selected: Any) -> list[Any]:
    """The alert queue, newest first, filtered."""
    principal = current_principal()
    if not can(principal, "view.console"):
        raise PreventUpdate
    community = community_of(principal, selected)
    lang = lang_of(selected)
    access = alert_filter(principal, stores().settings)
    with stores().sessions() as session:
        rows = history_query(
            session,
            communities=[community],
            status="all" if status == "all" else "open",
            alert_type=alert_type if isinstance(alert_type, str) else None,
            visible=access,
            limit=200,
            most_serious_first=True,
        )
        alerts = visible_to(principal, (record_view(r) for r in rows), stores().settings)
        found = labels(session, principal, [subject_place(a.get("subject")) for a in alerts], lang)
    if not alerts:
        return [html.Div(t("alert.none", lang), className="st-empty")]
    return [
        html.Button(
            id={"type": "console-alert", "id": a["id"]},
            className=f"st-row st-sev-{a['severity']}",
            n_clicks=0,
            children=[
                html.Span(t(f"severity.{a['severity']}", lang), className="st-card-sev"),
                html.Span(t(f"alert.type.{a['type']}", lang), className="st-row-type"),
                html.Span(t(f"status.{a['status']}", lang), className=f"st-status-{a['status']}"),
                html.Span(found.get(subject_place(a.get("subject")), ""), className="st-row-where"),
                html.Span(when(a["detected_at"]), className="st-row-when"),
            ],
        )
        for a in alerts
    ]


@page_callback(
    "view.console",
    Output(ids.CONSOLE_SELECTED, "data"),
    Input({"type": "console-alert", "id": ALL}, "n_clicks"),
    Input({"type": "console-call", "id": ALL}, "n_clicks"),
    State(ids.CONSOLE_SELECTED, "data"),
    prevent_initial_call=True,
)
def choose_alert(clicks: list[Any], calls: list[Any], selected: Any) -> Any:
    """Remember which alert is open in the detail panel (picked in the queue or in the residents' calls)."""
    trigger = ctx.triggered_id
    if not isinstance(trigger, dict) or not any(as_list(clicks) + as_list(calls)) or not isinstance(selected, dict):
        raise PreventUpdate
    if not ctx.triggered or not ctx.triggered[0].get("value"):  # a list redrawn, not a click
        raise PreventUpdate
    return {**selected, "alert": str(trigger.get("id", ""))}


@page_callback(
    "view.console",
    Output(ids.CONSOLE_DETAIL, "children"),
    Output(ids.CONSOLE_SEEN, "data"),
    Input(ids.CONSOLE_SELECTED, "data"),
    Input(ids.CONSOLE_DONE, "data"),
    CONSOLE_TICK,
    State(ids.CONSOLE_SEEN, "data"),
    **CONSOLE_FLAGS[1],
)
def detail(selected: Any, _done: Any, _tick: Any, seen: Any) -> tuple[Any, Any]:
    """The selected alert: subject, evidence, timeline, actions, dispatch suggestions."""
    principal = current_principal()
    if not isinstance(selected, dict) or not selected.get("alert"):
        raise PreventUpdate
    community = community_of(principal, selected)
    lang = lang_of(selected)
    alert_id = str(selected["alert"])
    try:
        doc = services().loop.visible_alert(principal, community, alert_id)
    except (NotFound, Forbidden):
        return html.Div(t("error.not_found", lang), className="st-empty"), None
    fingerprint = {"alert": alert_id, "status": doc["status"], "steps": len(services().loop.timeline(alert_id))}
    if ctx.triggered_id == tick_id(ids.CONSOLE_REFRESH) and seen == fingerprint:
        raise PreventUpdate  # nothing new: keep the note being typed
    return render_detail(principal, community, doc, lang), fingerprint


# the greyed guards, those nearest to being available first
GREYED_ORDER = ("busy", "no_position", "asked", "wanted_list", "off_duty", "no_account", "retired")


def dispatch_list(principal: Principal, community: str, alert_id: str, lang: str) -> list[Any]:
    """The guards who may go, nearest (by walking) first, each with a dispatch button; then the
    others greyed, each with the reason they are not offered the task."""
    ranked, others = services().loop.dispatch_list(principal, community, alert_id)

    def who(kind: str, name: str) -> str:
        return f"{t(f'guard.{kind}', lang)} {name_for(principal, name) or ''}"

    rows: list[Any] = [html.Div(t("console.suggest", lang), className="st-sub-title")]
    rows += [
        html.Div(
            className="st-suggest",
            children=[
                html.Span(who(s.kind, s.name), className="st-suggest-who"),
                html.Span(t("console.eta", lang, m=s.eta_minutes, d=s.walking_m), className="st-suggest-eta"),
                html.Button(
                    t("console.dispatch", lang),
                    id={"type": "console-dispatch", "guard": s.guard},
                    className="st-btn st-btn-small",
                ),
            ],
        )
        for s in ranked[:6]
    ] or [html.Div(t("console.no_guards", lang), className="st-muted")]
    if others:
        rows.append(
            html.Details(
                open=True,
                className="st-unavailable",
                children=[
                    html.Summary(f"{t('console.unavailable', lang)} ({len(others)})"),
                    *(
                        html.Div(
                            className=f"st-suggest-off st-off-{u.reason}",  # not .st-suggest: those can be dispatched
                            children=[
                                html.Span(who(u.kind, u.name), className="st-suggest-who"),
                                html.Span(t(f"reason.{u.reason}", lang), className="st-suggest-reason"),
                            ],
                        )
                        for u in sorted(others, key=lambda u: (GREYED_ORDER.index(u.reason), u.guard))
                    ),
                ],
            )
        )
    return rows


def render_detail(principal: Principal, community: str, doc: dict[str, Any], lang: str) -> html.Div:
    """The detail panel of one alert."""
    subject = doc.get("subject", {})
    timeline = services().loop.timeline(doc["id"])
    rows: list[Any] = []
    with stores().sessions() as session:
        found = outcome_labels(lang) | labels(
            session,
            principal,
            [subject, doc.get("evidence"), *(s["actor"] for s in timeline), *(s["note"] for s in timeline)],
            lang,
        )
    if subject.get("person"):
        with stores().sessions() as session:
            person = session.get(Person, subject["person"])
        if person is not None:
            rows.append(
                (
                    t("wall.drill.residents", lang),
                    f"{name_for(principal, person.name) or '—'} · {mask_id_number(person.id_number) or ''}",
                )
            )
    for key in ("household", "building", "device", "plate", "pass", "route", "checkpoint"):
        if subject.get(key):
            rows.append((field_label(key, lang), found.get(str(subject[key]), str(subject[key]))))
    evidence = evidence_rows(doc.get("evidence") or {}, lang, found)
    has_image = bool((doc.get("evidence") or {}).get("image"))
    still_open = is_open(doc["status"])
    actions: list[Any] = []
    if can(principal, "act.alerts") and still_open:
        actions = [
            dcc.Input(id=ids.CONSOLE_NOTE, placeholder=t("console.reason", lang), maxLength=500, className="st-note"),
            html.Div(
                className="st-actions",
                children=[
                    html.Button(
                        t("console.ack", lang),
                        id={"type": "console-act", "action": "acknowledge"},
                        className="st-btn",
                        disabled=doc["status"] != "new",
                    ),
                    html.Button(
                        t("console.false", lang),
                        id={"type": "console-act", "action": "false_alarm"},
                        className="st-btn st-btn-ghost",
                    ),
                    html.Button(
                        t("console.resolve", lang),
                        id={"type": "console-act", "action": "resolve"},
                        className="st-btn st-btn-ghost",
                    ),
                    html.Button(
                        t("console.to_property", lang),
                        id={"type": "console-act", "action": "to_property"},
                        className="st-btn st-btn-ghost",
                        disabled=doc["type"] not in PROPERTY_ALERT_TYPES,
                    ),
                ],
            ),
        ]
    suggestions: list[Any] = []
    if can(principal, "dispatch") and still_open:
        suggestions = dispatch_list(principal, community, doc["id"], lang)
    return html.Div(
        className="st-detail-body",
        children=[
            html.Div(
                className=f"st-detail-head st-sev-{doc['severity']}",
                children=[
                    html.Span(t(f"severity.{doc['severity']}", lang), className="st-card-sev"),
                    html.Span(t(f"alert.type.{doc['type']}", lang), className="st-detail-type"),
                    html.Span(
                        t(f"status.{doc['status']}", lang),
                        className=f"st-status st-status-{doc['status']}",
                        id="console-status-label",
                    ),
                ],
            ),
            html.Div(f"{when(doc['detected_at'])} · ×{doc.get('count', 1)}", className="st-muted"),
            html.Div(t("console.subject", lang), className="st-sub-title"),
            html.Table(className="st-kv", children=[html.Tr([html.Th(k), html.Td(v)]) for k, v in rows]),
            html.Div(t("console.evidence", lang), className="st-sub-title"),
            html.Table(
                className="st-kv st-evidence",
                children=[html.Tr([html.Th(k), html.Td(v)]) for k, v in evidence],
            ),
            html.Img(
                src=f"/api/v1/alerts/{community}/{doc['id']}/evidence.jpg",
                className="st-evidence-image",
                alt=t("console.evidence", lang),
            )
            if has_image
            else None,
            *actions,
            *suggestions,
            html.Div(t("console.timeline", lang), className="st-sub-title"),
            html.Ol(
                className="st-timeline",
                children=[
                    html.Li(
                        [
                            html.Span(when(s["at"]), className="st-tl-when"),
                            html.Span(t(step_key(s["action"], s["actor"]), lang), className="st-tl-what"),
                            html.Span(found.get(s["actor"], s["actor"]), className="st-tl-who"),
                            html.Span(relabel(s["note"], found), className="st-tl-note"),
                        ]
                    )
                    for s in timeline
                ],
            ),
        ],
    )


@page_callback(
    "view.console",
    Output(ids.CONSOLE_MSG, "children"),
    Output(ids.CONSOLE_DONE, "data"),
    Input({"type": "console-act", "action": ALL}, "n_clicks"),
    Input({"type": "console-dispatch", "guard": ALL}, "n_clicks"),
    State(ids.CONSOLE_NOTE, "value"),
    State(ids.CONSOLE_SELECTED, "data"),
    State(ids.CONSOLE_SEEN, "data"),
    State(ids.CONSOLE_DONE, "data"),
    prevent_initial_call=True,
)
def act(acts: list[Any], dispatches: list[Any], note: Any, selected: Any, seen: Any, done: Any) -> tuple[Any, Any]:
    """Run one action of the closed loop on the selected alert."""
    trigger = ctx.triggered_id
    if not isinstance(trigger, dict) or not any(as_list(acts) + as_list(dispatches)):
        raise PreventUpdate
    principal = current_principal()
    if not isinstance(selected, dict) or not selected.get("alert"):
        raise PreventUpdate
    community = community_of(principal, selected)
    lang = lang_of(selected)
    alert_id = str(selected["alert"])
    expected = str(seen["status"]) if isinstance(seen, dict) and seen.get("alert") == selected["alert"] else None
    text = note.strip() if isinstance(note, str) else ""
    try:
        if trigger.get("type") == "console-dispatch":
            services().loop.dispatch(
                principal, community, alert_id, str(trigger.get("guard")), expected=expected, note=text
            )
            label = t("console.dispatch", lang)
        elif trigger.get("action") == "to_property":
            services().loop.hand_to_property(principal, community, alert_id, expected=expected, note=text)
            label = t("console.to_property", lang)
        else:
            action = str(trigger.get("action"))
            services().loop.act(principal, community, alert_id, action, expected=expected, note=text)
            label = {
                "acknowledge": t("console.ack", lang),
                "false_alarm": t("console.false", lang),
                "resolve": t("console.resolve", lang),
            }.get(action, action)
    except InvalidInput as err:  # a conflict too: the panel re-reads the alert
        return html.Div(err.text(lang), className="st-msg-error"), (done if isinstance(done, int) else 0) + 1
    except SandtableError as err:
        return html.Div(err.text(lang), className="st-msg-error"), no_update
    return html.Div(t("console.done", lang, a=label), className="st-msg-ok"), (done if isinstance(done, int) else 0) + 1


@page_callback(
    "view.console",
    Output(ids.CONSOLE_REPORTS, "children"),
    CONSOLE_TICK,
    State(ids.CONSOLE_SELECTED, "data"),
    **CONSOLE_FLAGS[2],
)
def reports(_tick: Any, selected: Any) -> list[Any]:
    """Residents' calls to the police (newest first): each is a ``resident.call`` alert in the queue
    too; this list shows the address and the call's stage, and a click opens its alert."""
    principal = current_principal()
    if not can(principal, "view.console"):
        raise PreventUpdate
    community = community_of(principal, selected)
    lang = lang_of(selected)
    with stores().sessions() as session:
        rows = list(
            session.scalars(
                select(ResidentReport)
                .where(ResidentReport.community_id == community, ResidentReport.to == "police")
                .order_by(ResidentReport.created_at.desc())
                .limit(20)
            )
        )
        where = labels(session, principal, [r.household_id for r in rows], lang)
        statuses = {
            r.id: str(r.status)
            for r in session.scalars(
                select(AlertRecord).where(AlertRecord.id.in_([row.alert_id for row in rows if row.alert_id]))
            )
        }
    if not rows:
        return [html.Div(t("wall.no_data", lang), className="st-muted")]
    return [html.Div(t("console.reports_in_queue", lang), className="st-muted")] + [
        html.Button(
            id={"type": "console-call", "id": r.alert_id or r.id},
            n_clicks=0,
            disabled=r.alert_id is None,
            className="st-report st-row",
            children=[
                html.Span(
                    local_text(int(aware(r.created_at).timestamp() * 1000), "%m-%d %H:%M"), className="st-row-when"
                ),
                html.Span(where.get(r.household_id, r.household_id), className="st-report-where"),
                html.Span(r.text, className="st-report-text"),
                html.Span(
                    t(f"status.{statuses[r.alert_id]}", lang) if r.alert_id in statuses else "",
                    className="st-report-status",
                ),
            ],
        )
        for r in rows
    ]


@page_callback(
    "view.console",
    Output(ids.NOTICE_MSG, "children"),
    Input(ids.NOTICE_SEND, "n_clicks"),
    State(ids.NOTICE_TITLE, "value"),
    State(ids.NOTICE_BODY, "value"),
    State(ids.NOTICE_GRID, "value"),
    State(ids.CONSOLE_SELECTED, "data"),
    prevent_initial_call=True,
)
def publish(_n: Any, title: Any, body: Any, grid: Any, selected: Any) -> Any:
    """Publish a police notice to a grid or the whole community."""
    principal = current_principal()
    lang = lang_of(selected)
    if not can(principal, "notices"):
        raise PreventUpdate
    community = community_of(principal, selected)
    title_text = title.strip() if isinstance(title, str) else ""
    body_text = body.strip() if isinstance(body, str) else ""
    if not title_text or not body_text:
        return html.Div(
            f"{t('console.notice.title', lang)} / {t('console.notice.body', lang)}?", className="st-msg-error"
        )
    with stores().sessions.begin() as session:
        grid_id = None
        if isinstance(grid, str) and grid != "*":
            found = session.get(Grid, grid)
            if found is None or found.community_id != community:
                raise PreventUpdate
            grid_id = grid
        session.add(
            Notice(
                community_id=community,
                grid_id=grid_id,
                title=title_text[:100],
                body=body_text[:2000],
                created_by=principal.id,
            )
        )
    return html.Div(t("console.notice.sent", lang), className="st-msg-ok")
