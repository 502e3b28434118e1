"""Callbacks of the visitor-approval panel (who may approve: from the server session)."""

from __future__ import annotations

from typing import Any

from dash import ALL, Input, Output, State, ctx, html
from dash.exceptions import PreventUpdate

from api.context import stores
from auth.callbacks import page_callback
from auth.policy import can
from auth.principal import current_principal
from callbacks.util import as_list
from core.errors import SandtableError
from core.i18n import t
from gates.service import PENDING_PAGE_SIZE, Visitors
from layouts import ids
from layouts.visitors import approval_rows, revocable_rows
from registry.queries import household_labels


@page_callback(
    "visitors.approve",
    Output(ids.VISITOR_LIST, "children"),
    Output(ids.VISITOR_PAGE, "data"),
    Output(ids.VISITOR_PAGER, "children"),
    Input(ids.VISITOR_DONE, "data"),
    Input(ids.VISITOR_LANG, "data"),
    Input(ids.VISITOR_ORDER, "value"),
    Input(ids.VISITOR_PREV, "n_clicks"),
    Input(ids.VISITOR_NEXT, "n_clicks"),
    State(ids.VISITOR_PAGE, "data"),
)
def pending(_done: Any, lang: Any, order: Any, _prev: Any, _next: Any, page: Any) -> tuple[Any, int, str]:
    """One page of the passes waiting for a decision, newest or oldest first, and where it is."""
    principal = current_principal()
    if not can(principal, "visitors.approve"):
        raise PreventUpdate
    language = "en" if lang == "en" else "zh"
    wanted = page if isinstance(page, int) and not isinstance(page, bool) and 0 <= page < 100_000 else 0
    if ctx.triggered_id == ids.VISITOR_PREV:
        wanted -= 1
    elif ctx.triggered_id == ids.VISITOR_NEXT:
        wanted += 1
    elif ctx.triggered_id == ids.VISITOR_ORDER:
        wanted = 0
    visitors = Visitors(stores())
    passes, total = visitors.pending(principal, page=max(0, wanted), newest_first=order != "oldest")
    pages = max(1, -(-total // PENDING_PAGE_SIZE))
    shown = max(0, min(wanted, pages - 1))
    with stores().sessions() as session:
        places = household_labels(session, [p.household_id for p in passes], language)
    pager = t("visitor.pager", language, page=shown + 1, pages=pages, total=total)
    return approval_rows(passes, language, places), shown, pager


@page_callback(
    "visitors.approve",
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
    trigger, language, count = _clicked(clicks, lang, done)
    pass_id = str(trigger.get("pass"))
    approve = trigger.get("approve") == 1
    try:
        Visitors(stores()).decide(current_principal(), pass_id, approve=approve, note=_note_of(pass_id))
    except SandtableError as err:
        return html.Div(err.text(language), className="st-msg-error"), count
    label = t("visitor.approve" if approve else "visitor.reject", language)
    return html.Div(t("console.done", language, a=label), className="st-msg-ok"), count


def _clicked(clicks: Any, lang: Any, counter: Any) -> tuple[dict[str, Any], str, int]:
    """The clicked row button's id, the page's language and the panel's counter moved on
    (PreventUpdate when nothing was clicked: a re-render fires the pattern input too)."""
    trigger = ctx.triggered_id
    if not isinstance(trigger, dict) or not any(as_list(clicks)):
        raise PreventUpdate
    return trigger, "en" if lang == "en" else "zh", (counter if isinstance(counter, int) else 0) + 1


def _note_of(pass_id: str) -> str:
    """The text typed in the note field of this pass (the callback's first state)."""
    note = ""
    for item in as_list(ctx.states_list[0] if ctx.states_list else []):
        if isinstance(item, dict) and item.get("id", {}).get("pass") == pass_id and isinstance(item.get("value"), str):
            note = item["value"]
    return note


@page_callback(
    "visitors.approve",
    Output(ids.VISITOR_REVOCABLE, "children"),
    Input(ids.VISITOR_DONE, "data"),
    Input(ids.VISITOR_REVOKED, "data"),
    Input(ids.VISITOR_LANG, "data"),
)
def revocable(_done: Any, _revoked: Any, lang: Any) -> Any:
    """The approved passes that have not ended, each with revoke."""
    principal = current_principal()
    if not can(principal, "visitors.approve"):
        raise PreventUpdate
    language = "en" if lang == "en" else "zh"
    passes = Visitors(stores()).revocable(principal)
    with stores().sessions() as session:
        places = household_labels(session, [p.household_id for p in passes], language)
    return revocable_rows(passes, language, places)


@page_callback(
    "visitors.approve",
    Output(ids.VISITOR_REVOKE_MSG, "children"),
    Output(ids.VISITOR_REVOKED, "data"),
    Input({"type": "visitor-revoke", "pass": ALL}, "n_clicks"),
    State({"type": "visitor-revoke-note", "pass": ALL}, "value"),
    State(ids.VISITOR_LANG, "data"),
    State(ids.VISITOR_REVOKED, "data"),
    prevent_initial_call=True,
)
def revoke(clicks: Any, _notes: Any, lang: Any, revoked: Any) -> tuple[Any, Any]:
    """Revoke one pass (the reason is needed): the gates refuse it at their next decision."""
    trigger, language, count = _clicked(clicks, lang, revoked)
    pass_id = str(trigger.get("pass"))
    try:
        Visitors(stores()).revoke(current_principal(), pass_id, reason=_note_of(pass_id))
    except SandtableError as err:
        return html.Div(err.text(language), className="st-msg-error"), count
    return html.Div(t("visitor.revoked_done", language), className="st-msg-ok"), count
