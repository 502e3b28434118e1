"""The wall screen (态势大屏): the community's sand-table map, live."""

from __future__ import annotations

from typing import Any

import dash
import dash_leaflet as dl
from dash import html
from dash_extensions.javascript import Namespace

from api.web import request_lang
from core.i18n import t
from geodata.layers import bounds, load_geojson, survey_dir
from layouts import ids
from layouts.shell import header

ns = Namespace("sandtable", "map")


def community_map(community: str, lang: str) -> dl.MapContainer:
    """The sand-table map of one community on the offline vector basemap."""
    boundary = load_geojson(survey_dir(community) / "boundary.geojson")
    min_lon, min_lat, max_lon, max_lat = bounds(boundary)
    layers: list[Any] = [
        dl.Pane(name="basemap", style={"zIndex": 200}),
        dl.GeoJSON(
            id=ids.MAP_BASEMAP, url="/geo/basemap.geojson", style=ns("basemapStyle"), interactive=False, pane="basemap"
        ),
        dl.GeoJSON(id=ids.MAP_BOUNDARY, data=boundary, style=ns("boundaryStyle"), interactive=False),
        dl.GeoJSON(
            id=ids.MAP_PATHS,
            data=load_geojson(survey_dir(community) / "paths.geojson"),
            style=ns("pathStyle"),
            interactive=False,
        ),
        dl.GeoJSON(
            id=ids.MAP_BUILDINGS,
            data=load_geojson(survey_dir(community) / "buildings.geojson"),
            style=ns("buildingStyle"),
            hoverStyle=ns("hoverStyle"),
            onEachFeature=ns("buildingTooltip"),
            hideout={"lang": lang},
        ),
        dl.ScaleControl(position="bottomleft", imperial=False),
    ]
    return dl.MapContainer(
        id=ids.MAP,
        center=[(min_lat + max_lat) / 2, (min_lon + max_lon) / 2],
        zoom=17,
        zoomSnap=0.25,
        maxZoom=20,
        attributionControl=False,
        preferCanvas=False,
        className="st-map",
        children=layers,
    )


def layout(community: str = "wanhu", kiosk: str | None = None, **_: Any) -> html.Div:
    """The wall-screen page."""
    lang = request_lang()
    return html.Div(
        className="st-page st-wall" + (" st-kiosk" if kiosk == "1" else ""),
        children=[
            header(lang, subtitle=t("nav.wall", lang)),
            html.Main(className="st-wall-body", children=[community_map(community, lang)]),
        ],
    )


dash.register_page(__name__, path="/", name="wall", title="数字沙盘", layout=layout)
