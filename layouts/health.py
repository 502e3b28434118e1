"""The console's data-integrity panel (admin): what the system had to drop for a community, and why
(issue #22: drops are shown, never hidden; ``EventLog.drops``, also ``manage.py doctor``)."""

from __future__ import annotations

from dash import html

from core.i18n import t
from store.events import EventLog
from store.redis_server import STORE_ERRORS
from store.stores import Stores

REASONS = ("lost_on_restart", "dead_letters_over_cap", "dead_letters_truncated")


def drops_panel(stores: Stores, community: str, lang: str) -> html.Div:
    """The drops of one community, each with its reason; one line saying so when there are none."""
    try:
        drops = EventLog(stores.redis, stores.keys).drops(community)
    except STORE_ERRORS:
        rows = [html.Li(t("health.unavailable", lang), className="st-health-row st-warn")]
    else:
        rows = [
            html.Li(t(f"health.{reason}", lang).format(n=f"{drops[reason]:,}"), className="st-health-row st-warn")
            for reason in REASONS
            if drops[reason]
        ] or [html.Li(t("health.none", lang), className="st-health-row st-ok")]
    return html.Div(
        className="st-health",
        children=[
            html.Div(t("health.title", lang), className="st-panel-title st-gap"),
            html.Ul(rows, id="health-drops", className="st-health-list"),
        ],
    )
