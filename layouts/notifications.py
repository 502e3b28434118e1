"""The in-app notifications (issue #18): one component, mounted once by the page shell, on every
page — the console, the tasks page, the wall (kiosk too). It lists the new notifications meant for
the signed-in user (callbacks/notifications.py asks the server, which applies the routing policy
and the user's scope) and rings for critical ones (WebAudio in assets/js/notify.js)."""

from __future__ import annotations

from dash import dcc, html

from core.i18n import t
from layouts import ids


def notification_area(lang: str, refresh_ms: int) -> html.Div:
    """The panel (hidden while empty), its refresh and its browser-side state."""
    return html.Div(
        children=[
            dcc.Interval(id=ids.NOTIFY_TICK, interval=refresh_ms),
            dcc.Store(id=ids.NOTIFY_SEEN, storage_type="local"),
            dcc.Store(id=ids.NOTIFY_LATEST),
            dcc.Store(id=ids.NOTIFY_ALARM),
            dcc.Store(id=ids.NOTIFY_SOUNDED),
            html.Aside(
                id=ids.NOTIFY_PANEL,
                className="st-notify",
                role="alert",  # read out when it changes
                children=[
                    html.Div(t("notify.panel", lang), className="st-notify-title"),
                    html.Div(id=ids.NOTIFY_LIST),
                    html.Button(t("notify.dismiss", lang), id=ids.NOTIFY_DISMISS, className="st-notify-dismiss"),
                ],
            ),
        ]
    )
