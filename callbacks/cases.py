"""Callbacks of the cases page. Permission and scope come from the server session (memory.cases checks
them again for the case the browser names); the browser says only which case, which pin, and the
note's text."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from dash import ALL, Input, Output, State, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate

from api.context import stores
from auth.callbacks import page_callback
from auth.principal import current_principal
from callbacks.util import as_dict
from core.errors import SandtableError
from core.i18n import t
from layouts import cases as page
from memory import cases


def _page(data: Any) -> tuple[str, str]:
    found = as_dict(data)
    lang = "en" if found.get("lang") == "en" else "zh"
    case = found.get("case")
    if not isinstance(case, str) or not case:
        raise PreventUpdate
    return lang, case


@page_callback(
    page.PERMISSION,
    Output(page.BODY, "children"),
    Output(page.LIST, "children"),
    Output(page.MESSAGE, "children"),
    Output(page.NOTE, "value"),
    Output(page.NOTE, "disabled"),
    Output(page.ADD_NOTE, "disabled"),
    Output(page.CLOSE, "disabled"),
    Input(page.ADD_NOTE, "n_clicks"),
    Input(page.CLOSE_CONFIRM, "submit_n_clicks"),
    Input({"type": page.UNPIN, "pin": ALL}, "n_clicks"),
    State(page.NOTE, "value"),
    State(page.PAGE, "data"),
    prevent_initial_call=True,
)
def act(_add: Any, _close: Any, _unpins: Any, note: Any, data: Any) -> Any:
    """Add a note, remove a pin or close the case; then show the case (and the list's counts) again."""
    lang, case_id = _page(data)
    principal = current_principal()
    trigger = ctx.triggered_id
    if not ctx.triggered or not ctx.triggered[0].get("value"):
        raise PreventUpdate  # a pin's button appeared (re-render), nobody clicked it
    try:
        with stores().sessions.begin() as session:
            if trigger == page.ADD_NOTE:
                cases.add_note(session, principal, case_id, note if isinstance(note, str) else "")
            elif trigger == page.CLOSE_CONFIRM:
                cases.close_case(session, principal, case_id)
            elif isinstance(trigger, dict) and trigger.get("type") == page.UNPIN:
                pin = trigger.get("pin")
                if not isinstance(pin, int):
                    raise PreventUpdate
                cases.unpin(session, principal, case_id, pin)
            else:
                raise PreventUpdate
        with stores().sessions() as session:
            doc = cases.read_case(session, principal, case_id)
            body = page.case_view(session, principal, doc, lang)
            listed = page.case_list(cases.list_cases(session, principal), lang, case_id)
    except SandtableError as err:
        return (
            no_update,
            no_update,
            html.Span(err.text(lang), className="st-msg-error"),
            no_update,
            no_update,
            no_update,
            no_update,
        )
    closed = doc["status"] != "open"
    done = t("case.page.closed" if trigger == page.CLOSE_CONFIRM else "case.page.saved", lang)
    return (
        body,
        listed,
        html.Span(done, className="st-msg-ok"),
        "" if trigger == page.ADD_NOTE else no_update,
        closed,
        closed,
        closed,
    )


@page_callback(
    page.PERMISSION,
    Output(page.DOWNLOAD, "data"),
    Output(page.EXPORT_MESSAGE, "children"),
    Input(page.EXPORT_PDF, "n_clicks"),
    Input(page.EXPORT_ZIP, "n_clicks"),
    State(page.PAGE, "data"),
    prevent_initial_call=True,
)
def export(_pdf: Any, _zip: Any, data: Any) -> Any:
    """Export the case (audited) and download its PDF, or a ZIP of the four files."""
    from memory.case_export import export_case, zip_of  # noqa: PLC0415 — fpdf and matplotlib (2 s) load on use

    lang, case_id = _page(data)
    if not ctx.triggered or not ctx.triggered[0].get("value"):
        raise PreventUpdate
    principal = current_principal()
    try:
        with tempfile.TemporaryDirectory(prefix="case-") as tmp, stores().sessions.begin() as session:
            folder = Path(tmp)
            export_case(session, stores().settings, principal, case_id, folder, lang)
            if ctx.triggered_id == page.EXPORT_PDF:
                sent = dcc.send_bytes((folder / "case.pdf").read_bytes(), f"{case_id}.pdf")
            else:
                sent = dcc.send_bytes(zip_of(folder), f"{case_id}.zip")
    except SandtableError as err:
        return no_update, html.Span(err.text(lang), className="st-msg-error")
    return sent, html.Span(t("case.page.exported", lang), className="st-msg-ok")
