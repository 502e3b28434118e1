"""The patrol route editor (巡更路线, ``/routes``): the community's map with its checkpoints; click the
map to place a new checkpoint, click checkpoints (or pick them in the list) to put a route in order,
set its schedule and save. Police, admin and the property office (``routes.edit``); the work is done
by callbacks/routes.py through gates.routes.RouteEditor, with role and scope from the server session.
"""

from __future__ import annotations

from typing import Any

import dash
import dash_leaflet as dl
from dash import dcc, html
from dash_extensions.javascript import Namespace

from api.context import request_lang, stores
from auth.principal import current_principal
from core.i18n import t
from layouts import ids
from layouts.map import community_map
from layouts.shell import forbidden, header, nav_links
from registry import queries

rt = Namespace("sandtable", "routes")

DEFAULTS = {"interval": 120, "start": 20, "end": 6, "tolerance": 15}  # a night patrol every two hours


def number_input(component_id: str, value: int, low: int, high: int) -> dcc.Input:
    """A whole-number field of the schedule."""
    return dcc.Input(id=component_id, type="number", value=value, min=low, max=high, step=1, debounce=True)


def controls(lang: str) -> html.Section:
    """The left panel: the routes, a new checkpoint, the route being edited."""
    return html.Section(
        className="st-panel st-rt-controls",
        children=[
            html.Div(t("routes.title", lang), className="st-panel-title"),
            html.Ul(id=ids.ROUTES_LIST, className="st-rt-list"),
            html.Div(t("routes.checkpoint.new", lang), className="st-panel-title st-gap"),
            html.Div(t("routes.checkpoint.hint", lang), className="st-rt-hint"),
            html.Div(
                className="st-rt-row",
                children=[
                    dcc.Input(id=ids.ROUTES_CP_NAME, placeholder=t("routes.checkpoint.name", lang), maxLength=100),
                    html.Button(t("routes.checkpoint.add", lang), id=ids.ROUTES_CP_ADD, className="st-btn"),
                ],
            ),
            html.Div(id=ids.ROUTES_CP_MSG, className="st-msg", role="status"),
            html.Div(t("routes.edit", lang), className="st-panel-title st-gap"),
            dcc.Dropdown(id=ids.ROUTES_PICK, value="", clearable=False, className="st-select"),
            html.Div(
                className="st-rt-form",
                children=[
                    html.Label(t("routes.name", lang), htmlFor=ids.ROUTES_NAME),
                    dcc.Input(id=ids.ROUTES_NAME, maxLength=100, placeholder=t("routes.name.hint", lang)),
                    html.Label(t("routes.stops", lang)),
                    dcc.Dropdown(
                        id=ids.ROUTES_STOPS,
                        multi=True,
                        value=[],
                        placeholder=t("routes.stops.hint", lang),
                        className="st-select",
                    ),
                    html.Label(t("routes.interval", lang), htmlFor=ids.ROUTES_INTERVAL),
                    number_input(ids.ROUTES_INTERVAL, DEFAULTS["interval"], 10, 1440),
                    html.Label(t("routes.start", lang), htmlFor=ids.ROUTES_START),
                    number_input(ids.ROUTES_START, DEFAULTS["start"], 0, 23),
                    html.Label(t("routes.end", lang), htmlFor=ids.ROUTES_END),
                    number_input(ids.ROUTES_END, DEFAULTS["end"], 0, 23),
                    html.Label(t("routes.tolerance", lang), htmlFor=ids.ROUTES_TOLERANCE),
                    number_input(ids.ROUTES_TOLERANCE, DEFAULTS["tolerance"], 1, 240),
                    html.Label(t("routes.offsets", lang), htmlFor=ids.ROUTES_OFFSETS),
                    dcc.Input(id=ids.ROUTES_OFFSETS, placeholder=t("routes.offsets.hint", lang), debounce=True),
                ],
            ),
            html.Div(
                className="st-rt-row",
                children=[
                    html.Button(
                        t("routes.save", lang), id=ids.ROUTES_SAVE, className="st-btn st-btn-primary st-rt-save"
                    ),
                    html.Button(
                        t("routes.delete", lang), id=ids.ROUTES_DELETE, className="st-btn st-btn-ghost", disabled=True
                    ),
                ],
            ),
            html.Div(id=ids.ROUTES_MSG, className="st-msg", role="status"),
        ],
    )


def layout(community: str | None = None, **_: Any) -> html.Div:
    """The patrol route editor."""
    lang = request_lang()
    refused = forbidden(lang, "routes.edit")
    if refused is not None:
        return refused
    principal = current_principal()
    with stores().sessions() as session:
        visible = queries.communities(session, principal.scope)
    chosen = next((c for c in visible if c.id == community), visible[0] if visible else None)
    if chosen is None:
        return html.Div(
            className="st-page",
            children=[header(lang), html.Main(t("wall.no_community", lang), className="st-empty")],
        )
    the_map = community_map(
        chosen,
        lang,
        stores().settings,
        extra=[
            dl.GeoJSON(id=ids.ROUTES_LINE, style=rt("lineStyle"), interactive=False),
            dl.GeoJSON(id=ids.ROUTES_PLACE_MARK, pointToLayer=rt("placePoint"), interactive=False),
            dl.GeoJSON(id=ids.ROUTES_CHECKPOINTS, pointToLayer=rt("checkpointPoint")),
        ],
    )
    name = chosen.name if lang == "zh" else (chosen.name_en or chosen.name)
    return html.Div(
        className="st-page st-routes",
        children=[
            header(
                lang,
                subtitle=f"{t('nav.routes', lang)} · {name}",
                tools=nav_links(lang),
                path=f"/routes?community={chosen.id}",
            ),
            html.Main(
                className="st-rt-grid",
                children=[controls(lang), html.Section(className="st-panel st-rt-map", children=[the_map])],
            ),
            dcc.Store(id=ids.ROUTES_STATE, data={"community": chosen.id, "lang": lang}),
            dcc.Store(id=ids.ROUTES_VERSION, data=0),
            dcc.Store(id=ids.ROUTES_PLACE),
        ],
    )


dash.register_page(__name__, path="/routes", name="routes", title="巡更路线", layout=layout)
