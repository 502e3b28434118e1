"""The police console (警务工作台): the alert queue, an alert's detail and timeline, and the actions of
the closed loop (acknowledge, false alarm, dispatch the nearest force, hand to property, resolve);
the 接警登记 form (layouts/incident_form.py); residents' calls and police notices."""

from __future__ import annotations

from typing import Any

import dash
from dash import dcc, html

from alerts.constants import ALERT_TYPES
from api.context import request_lang, stores
from auth.policy import can
from auth.principal import current_principal
from core.i18n import t
from layouts import ids
from layouts.gate import gated_interval
from layouts.health import drops_panel
from layouts.incident_form import incident_form
from layouts.modes import modes_panel
from layouts.shell import forbidden, header, nav_links
from layouts.visitors import approval_panel
from registry import queries


def layout(community: str | None = None, **_: Any) -> html.Div:
    """The console page."""
    lang = request_lang()
    refused = forbidden(lang, "view.console")
    if refused is not None:
        return refused
    principal = current_principal()
    with stores().sessions() as session:
        visible = queries.communities(session, principal.scope)
        grids = {c.id: [(g.id, g.name) for g in c.grids] for c in visible}
    chosen = next((c for c in visible if c.id == community), visible[0] if visible else None)
    if chosen is None:
        return html.Div(
            className="st-page", children=[header(lang), html.Main(t("wall.no_community", lang), className="st-empty")]
        )
    return html.Div(
        className="st-page st-console",
        children=[
            header(
                lang,
                subtitle=f"{t('nav.console', lang)} · {chosen.name if lang == 'zh' else chosen.name_en}",
                tools=nav_links(lang),
                path=f"/console?community={chosen.id}",
            ),
            html.Main(
                className="st-console-grid",
                children=[
                    html.Section(
                        className="st-panel st-queue",
                        children=[
                            html.A(
                                t("inv.open", lang),
                                href=f"/investigate?community={chosen.id}",
                                className="st-btn st-inv-link",
                            )
                            if can(principal, "investigate")
                            else None,
                            incident_form(chosen, lang, stores().settings) if can(principal, "dispatch") else None,
                            html.Div(t("console.queue", lang), className="st-panel-title"),
                            html.Div(
                                className="st-filters",
                                children=[
                                    dcc.RadioItems(
                                        id=ids.CONSOLE_STATUS,
                                        value="open",
                                        inline=True,
                                        className="st-radio",
                                        options=[
                                            {"label": t("console.filter.open", lang), "value": "open"},
                                            {"label": t("console.filter.all", lang), "value": "all"},
                                        ],
                                    ),
                                    dcc.Dropdown(
                                        id=ids.CONSOLE_TYPE,
                                        clearable=True,
                                        placeholder=t("console.filter.any", lang),
                                        className="st-select",
                                        options=[
                                            {"label": t(f"alert.type.{a}", lang), "value": a} for a in ALERT_TYPES
                                        ],
                                    ),
                                ],
                            ),
                            html.Div(id=ids.CONSOLE_LIST, className="st-queue-list"),
                            html.Div(t("console.reports", lang), className="st-panel-title st-gap"),
                            html.Div(id=ids.CONSOLE_REPORTS, className="st-reports"),
                            approval_panel(lang),
                            modes_panel(stores(), principal, chosen.id, lang) if can(principal, "modes.set") else None,
                            drops_panel(stores(), chosen.id, lang) if can(principal, "system.health") else None,
                            html.Div(t("console.notice", lang), className="st-panel-title st-gap"),
                            html.Div(
                                className="st-form",
                                children=[
                                    dcc.Input(
                                        id=ids.NOTICE_TITLE, placeholder=t("console.notice.title", lang), maxLength=100
                                    ),
                                    dcc.Textarea(
                                        id=ids.NOTICE_BODY, placeholder=t("console.notice.body", lang), maxLength=2000
                                    ),
                                    dcc.Dropdown(
                                        id=ids.NOTICE_GRID,
                                        clearable=False,
                                        value="*",
                                        className="st-select",
                                        options=[
                                            {"label": t("console.notice.all", lang), "value": "*"},
                                            *({"label": name, "value": gid} for gid, name in grids.get(chosen.id, [])),
                                        ],
                                    ),
                                    html.Button(t("console.notice.send", lang), id=ids.NOTICE_SEND, className="st-btn"),
                                    html.Div(id=ids.NOTICE_MSG, className="st-msg"),
                                ],
                            ),
                        ],
                    ),
                    html.Section(
                        className="st-panel st-detail",
                        children=[
                            html.Div(t("console.detail", lang), className="st-panel-title"),
                            html.Div(
                                id=ids.CONSOLE_DETAIL, children=html.Div(t("console.pick", lang), className="st-empty")
                            ),
                            html.Div(id=ids.CONSOLE_MSG, className="st-msg", role="status"),
                        ],
                    ),
                ],
            ),
            dcc.Store(
                id=ids.CONSOLE_SELECTED, data={"community": chosen.id, "alert": None, "status": None, "lang": lang}
            ),
            dcc.Store(id=ids.CONSOLE_DONE, data=0),
            dcc.Store(id=ids.CONSOLE_SEEN),
            *gated_interval(ids.CONSOLE_REFRESH, 5000, refreshes=ids.CONSOLE_REFRESHES),
        ],
    )


dash.register_page(__name__, path="/console", name="console", title="警务工作台", layout=layout)
