"""The console's panel of maintenance and away modes: put a device in maintenance or an elder away
until a time, and the live periods with their end, the alerts they kept back and an "end now" button."""

from __future__ import annotations

from typing import Any

from dash import dcc, html

from auth.principal import Principal
from core.i18n import t
from core.timefmt import local_text, parse_rfc3339
from layouts import ids
from registry.modes import MAINTENANCE
from store.stores import Stores
from upkeep.modes import elder_options


def modes_panel(stores: Stores, principal: Principal, community: str, lang: str) -> html.Div:
    """The panel: a device picked by its name and place, an elder by address and masked name."""
    with stores.sessions() as session:
        elders = elder_options(session, principal, community, lang)
    return html.Div(
        className="st-modes",
        children=[
            html.Div(t("modes.panel", lang), className="st-panel-title st-gap"),
            html.Div(
                className="st-form",
                children=[
                    # thousands of devices: the options follow what is typed (callbacks/modes.py device_search)
                    dcc.Dropdown(
                        id=ids.MODES_DEVICE, options=[], placeholder=t("modes.device", lang), className="st-select"
                    ),
                    dcc.Dropdown(
                        id=ids.MODES_PERSON, options=elders, placeholder=t("modes.person", lang), className="st-select"
                    ),
                    dcc.Input(id=ids.MODES_UNTIL, placeholder=t("modes.until", lang), maxLength=40, debounce=False),
                    dcc.Input(id=ids.MODES_REASON, placeholder=t("modes.reason", lang), maxLength=200),
                    html.Div(
                        className="st-actions",
                        children=[
                            html.Button(
                                t("modes.set_maintenance", lang),
                                id=ids.MODES_SET_MAINTENANCE,
                                className="st-btn st-btn-small",
                                n_clicks=0,
                            ),
                            html.Button(
                                t("modes.set_away", lang),
                                id=ids.MODES_SET_AWAY,
                                className="st-btn st-btn-small",
                                n_clicks=0,
                            ),
                        ],
                    ),
                    html.Div(id=ids.MODES_MSG, className="st-msg", role="status"),
                ],
            ),
            html.Div(id=ids.MODES_LIST),
            dcc.Store(id=ids.MODES_DONE, data=0),
            dcc.Store(id=ids.MODES_CONTEXT, data={"community": community, "lang": lang}),
        ],
    )


def mode_rows(periods: list[dict[str, Any]], lang: str) -> list[Any]:
    """One row per live period: who or what, until when, why, what it kept back, and "end now"."""
    if not periods:
        return [html.Div(t("modes.none", lang), className="st-muted")]
    rows = []
    for p in periods:
        until = local_text(parse_rfc3339(p["until"]), "%m-%d %H:%M")
        state = t("modes.maintenance_until" if p["kind"] == MAINTENANCE else "modes.away_until", lang, until=until)
        details = " · ".join(filter(None, (p["reason"], t("modes.suppressed", lang, n=p["suppressed"]))))
        rows.append(
            html.Div(
                className="st-mode-row",
                id=f"mode-{p['kind']}-{p['subject']}",
                children=[
                    html.Div(
                        [
                            html.B(p["label"]),
                            html.Div(state, className="st-mode-kind"),
                            html.Div(details, className="st-muted"),
                        ]
                    ),
                    html.Button(
                        t("modes.end", lang),
                        id={"type": ids.MODES_END, "kind": p["kind"], "subject": p["subject"]},
                        className="st-btn st-btn-small st-btn-ghost",
                    ),
                ],
            )
        )
    return rows
