"""Callbacks of the console's maintenance and away panel (role and scope from the server session)."""

from __future__ import annotations

from typing import Any

from dash import ALL, Input, Output, State, ctx, html, no_update
from dash.exceptions import PreventUpdate

from api.context import clock, stores
from auth.callbacks import page_callback
from auth.policy import can
from auth.principal import current_principal
from callbacks.console import CONSOLE_FLAGS, CONSOLE_TICK
from callbacks.util import as_dict, as_list
from core.errors import InvalidInput, SandtableError
from core.i18n import t
from layouts import ids
from layouts.modes import mode_rows
from registry.modes import AWAY, MAINTENANCE
from upkeep.modes import PERMISSION, Modes, matching_devices


def _context(value: Any) -> tuple[str, str]:
    found = as_dict(value)
    return str(found.get("community") or ""), "en" if found.get("lang") == "en" else "zh"


@page_callback(
    PERMISSION,
    Output(ids.MODES_LIST, "children"),
    Input(ids.MODES_DONE, "data"),
    CONSOLE_TICK,
    State(ids.MODES_CONTEXT, "data"),
    **CONSOLE_FLAGS[3],
)
def live_modes(_done: Any, _tick: Any, context: Any) -> list[Any]:
    """The community's devices in maintenance and elders away, soonest end first."""
    community, lang = _context(context)
    return mode_rows(Modes(stores(), clock()).live(current_principal(), community, lang), lang)


@page_callback(
    PERMISSION,
    Output(ids.MODES_DEVICE, "options"),
    Input(ids.MODES_DEVICE, "search_value"),
    State(ids.MODES_DEVICE, "value"),
    State(ids.MODES_CONTEXT, "data"),
    prevent_initial_call=True,
)
def device_search(search: Any, chosen: Any, context: Any) -> list[dict[str, str]]:
    """The device picker's options for what was typed, by name and place (the chosen one kept)."""
    if not isinstance(search, str) or not search.strip():
        raise PreventUpdate  # nothing typed (the picker closing clears the search): keep the options
    community, lang = _context(context)
    principal = current_principal()
    if not can(principal, PERMISSION) or not principal.scope.allows_community(community):
        raise PreventUpdate  # the community comes from the page: only the caller's own is searched
    return matching_devices(stores(), community, lang, search, chosen if isinstance(chosen, str) else None)


@page_callback(
    PERMISSION,
    Output(ids.MODES_MSG, "children"),
    Output(ids.MODES_DONE, "data"),
    Output(ids.MODES_REASON, "value"),
    Input(ids.MODES_SET_MAINTENANCE, "n_clicks"),
    Input(ids.MODES_SET_AWAY, "n_clicks"),
    Input({"type": ids.MODES_END, "kind": ALL, "subject": ALL}, "n_clicks"),
    State(ids.MODES_DEVICE, "value"),
    State(ids.MODES_PERSON, "value"),
    State(ids.MODES_UNTIL, "value"),
    State(ids.MODES_REASON, "value"),
    State(ids.MODES_CONTEXT, "data"),
    State(ids.MODES_DONE, "data"),
    prevent_initial_call=True,
)
def act(
    _maint: Any, _away: Any, ends: Any, device: Any, person: Any, until: Any, reason: Any, context: Any, done: Any
) -> tuple[Any, int, Any]:
    """Set a device in maintenance, an elder away, or end a period now (a success clears the reason)."""
    trigger = ctx.triggered_id
    _, lang = _context(context)
    count = (done if isinstance(done, int) else 0) + 1
    modes = Modes(stores(), clock())
    principal = current_principal()
    try:
        if isinstance(trigger, dict):
            if not any(as_list(ends)):
                raise PreventUpdate  # the list was redrawn: no click
            view = modes.end(principal, str(trigger.get("kind")), str(trigger.get("subject")), lang)
            return _ok("modes.done.end", view, lang), count, no_update
        kind = MAINTENANCE if trigger == ids.MODES_SET_MAINTENANCE else AWAY
        subject = device if kind == MAINTENANCE else person
        if not isinstance(subject, str) or not subject:
            raise InvalidInput(key="modes.error.pick_device" if kind == MAINTENANCE else "modes.error.pick_person")
        view = modes.start(principal, kind, subject, str(until or ""), str(reason or ""), lang)
        return _ok(f"modes.done.{kind}", view, lang), count, ""
    except SandtableError as err:
        return html.Div(err.text(lang), className="st-msg-error"), done if isinstance(done, int) else 0, no_update


def _ok(key: str, view: dict[str, Any], lang: str) -> html.Div:
    return html.Div(t(key, lang, label=view.get("label") or view["subject"]), className="st-msg-ok")
