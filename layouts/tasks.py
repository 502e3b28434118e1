"""My tasks (我的任务): the grid worker's, guard's or property office's view, phone-sized first."""

from __future__ import annotations

from typing import Any

import dash
from dash import dcc, html

from api.context import request_lang
from auth.policy import can
from auth.principal import current_principal
from closedloop.duty import DutyState
from closedloop.models import OUTCOMES, Task
from core.i18n import t
from core.timefmt import local_text, utc_to_ms
from layouts import ids
from layouts.gate import gated_interval
from layouts.mymap import my_map
from layouts.shell import forbidden, header, nav_links
from layouts.visitors import approval_panel


def task_cards(tasks: list[Task], lang: str, places: dict[str, str]) -> list[Any]:
    """One card per task with the actions its state allows."""
    if not tasks:
        return [html.Div(t("tasks.none", lang), className="st-empty")]
    cards = []
    for task in tasks:
        tid = task.id
        label = t(f"alert.type.{task.title}", lang) if task.title else t(f"task.{task.kind}", lang)
        buttons: list[Any] = []
        form: list[Any] = []
        if task.status == "offered":
            buttons = [
                html.Button(
                    t("tasks.accept", lang),
                    id={"type": "task-act", "task": tid, "action": "accept"},
                    className="st-btn",
                ),
                html.Button(
                    t("tasks.decline", lang),
                    id={"type": "task-act", "task": tid, "action": "decline"},
                    className="st-btn st-btn-ghost",
                ),
            ]
        elif task.status in ("accepted", "on_scene"):
            if task.status == "accepted":
                buttons.append(
                    html.Button(
                        t("tasks.arrive", lang),
                        id={"type": "task-act", "task": tid, "action": "arrive"},
                        className="st-btn",
                    )
                )
            form = [
                dcc.Dropdown(
                    id={"type": "task-outcome", "task": tid},
                    className="st-select",
                    clearable=False,
                    placeholder=t("tasks.outcome", lang),
                    options=[{"label": t(f"outcome.{o}", lang), "value": o} for o in OUTCOMES],
                ),
                dcc.Textarea(
                    id={"type": "task-notes", "task": tid},
                    placeholder=t("tasks.notes", lang),
                    maxLength=4000,
                    className="st-notes",
                ),
                html.Button(
                    t("tasks.close", lang), id={"type": "task-act", "task": tid, "action": "close"}, className="st-btn"
                ),
            ]
            if task.kind == "register":
                form += [
                    html.Div(t("tasks.register", lang), className="st-sub-title"),
                    dcc.Input(id={"type": "reg-name", "task": tid}, placeholder=t("tasks.name", lang), maxLength=64),
                    dcc.Input(id={"type": "reg-id", "task": tid}, placeholder=t("tasks.id_number", lang), maxLength=18),
                    dcc.Input(id={"type": "reg-phone", "task": tid}, placeholder=t("tasks.phone", lang), maxLength=20),
                    html.Button(
                        t("tasks.register", lang),
                        id={"type": "task-act", "task": tid, "action": "register"},
                        className="st-btn",
                    ),
                ]
        cards.append(
            html.Div(
                className=f"st-task st-task-{task.status}",
                id=f"task-{tid}",
                children=[
                    html.Div(
                        className="st-task-head",
                        children=[
                            html.Span(label, className="st-task-title"),
                            html.Span(t(f"task.status.{task.status}", lang), className="st-task-status"),
                        ],
                    ),
                    html.Div(places.get(task.id, ""), className="st-task-where"),
                    html.Div(
                        t("tasks.eta", lang, m=task.eta_minutes) if task.eta_minutes else "", className="st-muted"
                    ),
                    html.Div(buttons, className="st-actions"),
                    html.Div(form, className="st-form"),
                ],
            )
        )
    return cards


def duty_panel() -> list[Any]:
    """Check-in / check-out, for an account linked to a guard (filled by callbacks.tasks.duty)."""
    if current_principal().guard is None:
        return []
    return [
        html.Section(id=ids.DUTY_PANEL, className="st-duty"),
        html.Div(id=ids.DUTY_MSG, className="st-msg", role="status"),
        dcc.Store(id=ids.DUTY_DONE, data=0),
    ]


def duty_card(state: DutyState, handovers: list[dict[str, Any]], lang: str) -> list[Any]:
    """The guard's duty now, the button that changes it, and (on duty) the last handover notes."""
    until = local_text(utc_to_ms(state.until), "%m-%d %H:%M") if state.until else ""
    line = t({"shift": "duty.on_shift", "checkin": "duty.on_checkin"}.get(state.how, "duty.off"), lang, until=until)
    out: list[Any] = [html.Div(line, className=f"st-duty-state st-duty-{state.how or 'off'}")]
    if not state.on:
        out.append(html.Button(t("duty.check_in", lang), id={"type": "duty-act", "action": "in"}, className="st-btn"))
        return out
    out += [
        dcc.Textarea(
            id={"type": "duty-note", "action": "out"},
            placeholder=t("duty.handover", lang),
            maxLength=2000,
            className="st-notes",
        ),
        html.Button(
            t("duty.check_out", lang), id={"type": "duty-act", "action": "out"}, className="st-btn st-btn-ghost"
        ),
        html.Div(t("duty.handovers", lang), className="st-sub-title"),
    ]
    out += [
        html.Div(
            className="st-handover",
            children=[
                html.Span(
                    f"{local_text(utc_to_ms(h['at']), '%m-%d %H:%M')} {t('guard.' + h['kind'], lang)} {h['name']}："
                ),
                html.Span(h["note"]),
            ],
        )
        for h in handovers
    ] or [html.Div(t("duty.no_handovers", lang), className="st-muted")]
    return out


def layout(**_: Any) -> html.Div:
    """The tasks page."""
    lang = request_lang()
    refused = forbidden(lang, "view.tasks")
    if refused is not None:
        return refused
    return html.Div(
        className="st-page st-tasks-page",
        children=[
            header(lang, subtitle=t("tasks.title", lang), tools=nav_links(lang), path="/tasks"),
            html.Main(
                className="st-tasks-main",
                children=[
                    *duty_panel(),
                    html.Div(id=ids.TASKS_MSG, className="st-msg", role="status"),
                    my_map(lang),  # the grid worker's map (layouts/mymap.py)
                    html.Div(id=ids.TASKS_LIST, className="st-tasks"),
                    approval_panel(lang) if can(current_principal(), "visitors.approve") else None,
                    html.Div(t("tasks.notices", lang), className="st-panel-title st-gap"),
                    html.Div(id=ids.TASKS_NOTICES, className="st-notices"),
                ],
            ),
            dcc.Store(id=ids.TASKS_VERSIONS, data={"lang": lang}),
            dcc.Store(id=ids.TASKS_DONE, data=0),
            *gated_interval(ids.TASKS_REFRESH, 5000, refreshes=ids.TASKS_REFRESHES),
        ],
    )


dash.register_page(__name__, path="/tasks", name="tasks", title="我的任务", layout=layout)
