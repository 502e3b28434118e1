"""The in-app notifications' callbacks: the server lists what the signed-in user must know (their
audiences come from their role, grid and username on the server, never from the browser); the
browser rings for a critical one (assets/js/notify.js)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from dash import Input, Output, State, clientside_callback, html, no_update

from api.context import request_lang, stores
from auth.callbacks import page_callback
from auth.policy import can
from auth.principal import current_principal
from core.i18n import t
from core.timefmt import local_text
from layouts import ids
from notify.inbox import notices_for
from notify.targets import dead_deliveries, dead_lines

RECENT = dt.timedelta(hours=1)  # a notification older than this is no longer news


@page_callback(
    "read.notifications",
    Output(ids.NOTIFY_LIST, "children"),
    Output(ids.NOTIFY_PANEL, "className"),
    Output(ids.NOTIFY_LATEST, "data"),
    Output(ids.NOTIFY_ALARM, "data"),
    Input(ids.NOTIFY_TICK, "n_intervals"),
    Input(ids.NOTIFY_SEEN, "data"),
    State(ids.URL, "pathname"),
)
def refresh_notifications(_tick: int | None, seen: int | None, path: str | None) -> tuple[Any, ...]:
    """The new notifications for the signed-in user; on the console, the dead deliveries too."""
    principal = current_principal()
    lang = request_lang()
    opened = stores()
    since = dt.datetime.now(dt.UTC) - RECENT
    after = seen if isinstance(seen, int) and not isinstance(seen, bool) else None  # browser input: checked
    on_console = isinstance(path, str) and path.startswith("/console")
    with opened.sessions() as session:
        notices = notices_for(session, opened.settings, principal, lang, after=after, since=since)
        dead: list[Any] = []
        if on_console and can(principal, "dispatch"):
            count, rows = dead_deliveries(session, principal.scope.communities, limit=5)
            if count:
                dead = [
                    html.Div(t("notify.dead", lang, n=count), className="st-notify-dead-title"),
                    *(
                        html.Div(
                            t("notify.dead_row", lang, target=line.target, alert=line.alert, at=local_text(line.at_ms)),
                            className="st-notify-dead",
                        )
                        for line in dead_lines(session, rows, lang)
                    ),
                ]
    items = [
        html.Div(
            className=f"st-notice st-sev-{n.severity}",
            children=[html.Span(local_text(n.at_ms, "%H:%M:%S"), className="st-notice-at"), html.Span(n.text)],
        )
        for n in notices
    ]
    open_class = "st-notify st-notify-open" if items or dead else "st-notify"
    latest = max((n.id for n in notices), default=None)
    critical = max((n.id for n in notices if n.critical), default=None)
    return [*items, *dead], open_class, latest if latest is not None else no_update, critical or no_update


@page_callback(
    "read.notifications",
    Output(ids.NOTIFY_SEEN, "data"),
    Input(ids.NOTIFY_DISMISS, "n_clicks"),
    State(ids.NOTIFY_LATEST, "data"),
    prevent_initial_call=True,
)
def dismiss_notifications(_clicks: int | None, latest: int | None) -> Any:
    """Hide what is listed now (remembered in the browser)."""
    return latest if isinstance(latest, int) and not isinstance(latest, bool) else no_update


# a critical notification rings once (WebAudio, generated in the browser: no sound file, no network)
clientside_callback(
    "function(id){return window.sandtable.notifyAlarm(id);}",
    Output(ids.NOTIFY_SOUNDED, "data"),
    Input(ids.NOTIFY_ALARM, "data"),
    prevent_initial_call=True,
)
