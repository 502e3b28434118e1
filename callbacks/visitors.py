"""Callbacks of the visitor-approval panel (who may approve: from the server session)."""

from __future__ import annotations

from typing import Any

from dash import ALL, Input, Output, State, callback, ctx, html
from dash.exceptions import PreventUpdate

from api.web import stores
from auth.policy import can
from auth.principal import current_principal
from callbacks.util import as_list
from core.errors import SandtableError
from core.i18n import t
from gates.service import Visitors
from layouts import ids
from layouts.visitors import approval_rows


@callback(
    Output(ids.VISITOR_LIST, "children"),
    Input(ids.VISITOR_DONE, "data"),
    Input(ids.VISITOR_LANG, "data"),
)
def pending(_done: Any, lang: Any) -> list[Any]:
    """Passes waiting for a decision."""
    principal = current_principal()
    if not can(principal, "visitors.approve"):
        raise PreventUpdate
    return approval_rows(Visitors(stores()).pending(principal), "en" if lang == "en" else "zh")


@callback(
    Output(ids.VISITOR_MSG, "children"),
    Output(ids.VISITOR_DONE, "data"),
    Input({"type": "visitor-act", "pass": ALL, "approve": ALL}, "n_clicks"),
    State({"type": "visitor-note", "pass": ALL}, "value"),
    State(ids.VISITOR_LANG, "data"),
    State(ids.VISITOR_DONE, "data"),
    prevent_initial_call=True,
)
def decide(clicks: Any, notes: Any, lang: Any, done: Any) -> tuple[Any, Any]:
    """Approve or reject one pass."""
    trigger = ctx.triggered_id
    if not isinstance(trigger, dict) or not any(as_list(clicks)):
        raise PreventUpdate
    language = "en" if lang == "en" else "zh"
    pass_id = str(trigger.get("pass"))
    note = ""
    for item in as_list(ctx.states_list[0] if ctx.states_list else []):
        if isinstance(item, dict) and item.get("id", {}).get("pass") == pass_id and isinstance(item.get("value"), str):
            note = item["value"]
    approve = trigger.get("approve") == 1
    count = (done if isinstance(done, int) else 0) + 1
    try:
        Visitors(stores()).decide(current_principal(), pass_id, approve=approve, note=note)
    except SandtableError as err:
        return html.Div(str(err), className="st-msg-error"), count
    label = t("visitor.approve" if approve else "visitor.reject", language)
    return html.Div(t("console.done", language, a=label), className="st-msg-ok"), count
