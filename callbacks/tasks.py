"""Callbacks of the tasks page. Which tasks and which actions: decided by the closed-loop service
from the server session (the assignee is the signed-in user's guard, or the property office)."""

from __future__ import annotations

from typing import Any

from dash import ALL, Input, Output, State, ctx, html
from dash.exceptions import PreventUpdate
from sqlalchemy import or_, select

from api.context import services, stores
from auth.callbacks import page_callback
from auth.policy import can
from auth.principal import current_principal
from callbacks.gate import gated
from callbacks.util import as_list, task_places
from closedloop.models import Notice
from core.errors import SandtableError
from core.i18n import t
from layouts import ids
from layouts.gate import tick_id
from layouts.tasks import duty_card, task_cards

# the list and the notices each with a busy flag; the tick passes when neither has a request out (callbacks/gate.py)
TASKS_TICK, TASKS_FLAGS = gated(ids.TASKS_REFRESH, ids.TASKS_REFRESHES)


def lang_of(versions: Any) -> str:
    """The page's language, as the layout put it in the versions store (only used to choose texts)."""
    return "en" if isinstance(versions, dict) and versions.get("lang") == "en" else "zh"


@page_callback(
    "view.tasks",
    Output(ids.TASKS_LIST, "children"),
    Output(ids.TASKS_VERSIONS, "data"),
    TASKS_TICK,
    Input(ids.TASKS_DONE, "data"),
    State(ids.TASKS_VERSIONS, "data"),
    **TASKS_FLAGS[0],
)
def tasks(_tick: Any, _done: Any, versions: Any) -> tuple[Any, Any]:
    """My open tasks (refreshed), and the version of each as it was shown."""
    principal = current_principal()
    if not can(principal, "view.tasks"):
        raise PreventUpdate
    lang = lang_of(versions)
    mine = services().loop.my_tasks(principal)
    shown = {task.id: task.version for task in mine}
    if ctx.triggered_id == tick_id(ids.TASKS_REFRESH) and isinstance(versions, dict) and versions.get("tasks") == shown:
        raise PreventUpdate  # nothing changed: keep what the user is typing
    with stores().sessions() as session:
        places = task_places(session, principal, mine, lang)
    return task_cards(mine, lang, places), {"lang": lang, "tasks": shown}


@page_callback(
    "view.tasks",
    Output(ids.TASKS_MSG, "children"),
    Output(ids.TASKS_DONE, "data"),
    Input({"type": "task-act", "task": ALL, "action": ALL}, "n_clicks"),
    State({"type": "task-outcome", "task": ALL}, "value"),
    State({"type": "task-notes", "task": ALL}, "value"),
    State({"type": "reg-name", "task": ALL}, "value"),
    State({"type": "reg-id", "task": ALL}, "value"),
    State({"type": "reg-phone", "task": ALL}, "value"),
    State(ids.TASKS_VERSIONS, "data"),
    State(ids.TASKS_DONE, "data"),
    prevent_initial_call=True,
)
def act(clicks: list[Any], *_forms: Any) -> tuple[Any, Any]:
    """Accept, decline, arrive, close (with feedback) or register from a task."""
    trigger = ctx.triggered_id
    if not isinstance(trigger, dict) or not any(as_list(clicks)):
        raise PreventUpdate
    versions, done = _forms[-2], _forms[-1]
    lang = lang_of(versions)
    task_id, action = str(trigger.get("task")), str(trigger.get("action"))
    version = (versions or {}).get("tasks", {}).get(task_id) if isinstance(versions, dict) else None
    if not isinstance(version, int):
        raise PreventUpdate

    def field(kind: str) -> str:
        for state in ctx.states_list:
            for item in state if isinstance(state, list) else []:
                if item["id"].get("type") == kind and item["id"].get("task") == task_id:
                    value = item.get("value")
                    return value.strip() if isinstance(value, str) else ""
        return ""

    principal = current_principal()
    try:
        if action == "register":
            services().loop.register_floating(
                principal,
                task_id,
                version=version,
                name=field("reg-name"),
                id_number=field("reg-id"),
                phone=field("reg-phone"),
            )
        else:
            services().loop.task_action(
                principal, task_id, action, version=version, outcome=field("task-outcome"), notes=field("task-notes")
            )
    except SandtableError as err:  # a conflict too: the list re-reads the tasks
        return html.Div(err.text(lang), className="st-msg-error"), (done if isinstance(done, int) else 0) + 1
    return html.Div(t("console.done", lang, a=t(f"tasks.{action}", lang)), className="st-msg-ok"), (
        done if isinstance(done, int) else 0
    ) + 1


@page_callback(
    "view.tasks",
    Output(ids.TASKS_NOTICES, "children"),
    TASKS_TICK,
    **TASKS_FLAGS[1],
)
def notices(_tick: Any) -> list[Any]:
    """Police notices for my grid and my community."""
    principal = current_principal()
    if not can(principal, "view.tasks") or principal.community is None:
        raise PreventUpdate
    with stores().sessions() as session:
        query = select(Notice).where(Notice.community_id == principal.community)
        if principal.grid:
            query = query.where(or_(Notice.grid_id.is_(None), Notice.grid_id == principal.grid))
        rows = list(session.scalars(query.order_by(Notice.created_at.desc()).limit(10)))
    return [html.Div(className="st-notice", children=[html.B(n.title), html.Div(n.body)]) for n in rows]


@page_callback(
    "view.tasks",
    Output(ids.DUTY_PANEL, "children"),
    Input(ids.DUTY_DONE, "data"),
    State(ids.TASKS_VERSIONS, "data"),
)
def duty(_done: Any, versions: Any) -> list[Any]:
    """The signed-in guard's duty: check in, or check out with a handover note (and the last
    handover notes of their grid or community while on duty)."""
    principal = current_principal()
    if principal.guard is None:
        raise PreventUpdate
    lang = lang_of(versions)
    loop = services().loop
    state = loop.duty.state(principal)
    return duty_card(state, loop.duty.handovers(principal) if state.on else [], lang)


@page_callback(
    "view.tasks",
    Output(ids.DUTY_MSG, "children"),
    Output(ids.DUTY_DONE, "data"),
    Input({"type": "duty-act", "action": ALL}, "n_clicks"),
    State({"type": "duty-note", "action": ALL}, "value"),
    State(ids.TASKS_VERSIONS, "data"),
    State(ids.DUTY_DONE, "data"),
    prevent_initial_call=True,
)
def check(clicks: list[Any], notes: list[Any], versions: Any, done: Any) -> tuple[Any, Any]:
    """Check in, or check out with the handover note (audited by the service)."""
    trigger = ctx.triggered_id
    if not isinstance(trigger, dict) or not any(as_list(clicks)):
        raise PreventUpdate
    lang = lang_of(versions)
    kind = str(trigger.get("action"))
    note = next((n for n in as_list(notes) if isinstance(n, str)), "")
    count = (done if isinstance(done, int) else 0) + 1
    try:
        services().loop.duty.check(current_principal(), kind, note)
    except SandtableError as err:
        return html.Div(err.text(lang), className="st-msg-error"), count
    return html.Div(t(f"duty.checked_{kind}", lang), className="st-msg-ok"), count
