"""The wall screen (态势大屏): the community's sand-table map, live."""

from __future__ import annotations

from typing import Any

import dash
from dash import dcc, html

from api.web import request_lang, stores
from auth.principal import current_principal
from core.i18n import t
from layouts import ids
from layouts.map import community_map, legend
from layouts.shell import forbidden, header
from registry import queries


def community_switcher(options: list[tuple[str, str]], current: str, lang: str) -> dcc.Dropdown:
    """The community switcher (only the communities in the caller's scope)."""
    return dcc.Dropdown(
        id=ids.COMMUNITY_SELECT,
        options=[{"label": name, "value": cid} for cid, name in options],
        value=current,
        clearable=False,
        searchable=False,
        className="st-community-select",
        placeholder=t("community.label", lang),
    )


def layout(community: str | None = None, kiosk: str | None = None, **_: Any) -> html.Div:
    """The wall-screen page."""
    lang = request_lang()
    refused = forbidden(lang, "view.wall")
    if refused is not None:
        return refused
    principal = current_principal()
    s = stores()
    with s.sessions() as session:
        visible = queries.communities(session, principal.scope)
        chosen = next((c for c in visible if c.id == community), visible[0] if visible else None)
    if chosen is None:
        return html.Div(
            className="st-page st-wall",
            children=[
                header(lang, subtitle=t("nav.wall", lang)),
                html.Main(className="st-empty", children=t("wall.no_community", lang)),
            ],
        )
    name = chosen.name if lang == "zh" else (chosen.name_en or chosen.name)
    return html.Div(
        className="st-page st-wall" + (" st-kiosk" if kiosk == "1" else ""),
        children=[
            header(
                lang,
                subtitle=f"{t('nav.wall', lang)} · {name}",
                tools=[
                    community_switcher(
                        [(c.id, c.name if lang == "zh" else c.name_en or c.name) for c in visible], chosen.id, lang
                    )
                ],
            ),
            html.Main(
                className="st-wall-body",
                children=[
                    html.Div(
                        className="st-map-wrap",
                        children=[
                            community_map(chosen, lang, s.settings),
                            legend(lang),
                        ],
                    ),
                ],
            ),
        ],
    )


dash.register_page(__name__, path="/", name="wall", title="数字沙盘", layout=layout)
