"""My tasks (我的任务): the grid worker's, guard's or property office's view, phone-sized first."""

from __future__ import annotations

from typing import Any

import dash
from dash import dcc, html

from api.context import request_lang
from auth.policy import can
from auth.principal import current_principal
from closedloop.models import OUTCOMES, Task
from core.i18n import t
from layouts import ids
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
            dcc.Interval(id=ids.TASKS_REFRESH, interval=5000),
        ],
    )


dash.register_page(__name__, path="/tasks", name="tasks", title="我的任务", layout=layout)
