"""The grid worker's map (我的网格地图) on the tasks page: their grid, their tasks' targets, the walk
to the selected one over the community's paths, and their own live position. Phone-sized first.

Everything on it comes from ``callbacks/mymap.py``, computed from the server-side principal; the
layout holds only empty layers and the local basemap (no tile server, no internet).
"""

from __future__ import annotations

import json

import dash_leaflet as dl
from dash import dcc, html
from dash_extensions.javascript import Namespace
from shapely.geometry import shape

from api.context import stores
from auth.principal import current_principal
from core.i18n import t
from geodata.gcj02 import latlng_for_display
from layouts import ids
from layouts.gate import gated_interval
from layouts.map import base_layer, map_bounds, map_center, ns
from registry import queries
from registry.models import Grid

mine = Namespace("sandtable", "mymap")


def grid_bounds(grid: Grid) -> list[list[float]]:
    """[[south, west], [north, east]] of a grid."""
    min_lon, min_lat, max_lon, max_lat = shape(json.loads(grid.polygon)).bounds
    return [[min_lat, min_lon], [max_lat, max_lon]]


def my_map(lang: str) -> html.Section | None:
    """The map panel for the signed-in user's community (None for an account without one)."""
    principal = current_principal()
    if principal.community is None:
        return None
    s = stores()
    with s.sessions() as session:
        community = queries.community(session, principal.scope, principal.community)
        if community is None:
            return None
        grid = session.get(Grid, principal.grid) if principal.grid else None
        if grid is not None and grid.community_id == community.id:
            bounds = latlng_for_display(s.settings, grid_bounds(grid))
        else:
            bounds = map_bounds(community, s.settings)
        center = map_center(community, s.settings)
    return html.Section(
        className="st-mymap",
        children=[
            html.Div(t("mymap.title", lang), className="st-panel-title"),
            html.Div(id=ids.MYMAP_PICK, className="st-mymap-pick"),
            html.Div(id=ids.MYMAP_INFO, className="st-mymap-info", role="status"),
            dl.MapContainer(
                id=ids.MYMAP,
                center=center,
                zoom=17,
                viewport={"bounds": bounds, "options": {"padding": [12, 12]}},
                zoomSnap=0.25,
                maxZoom=20,
                minZoom=14,
                attributionControl=bool(s.settings.tile_url),
                className="st-map st-mymap-map",
                children=[
                    dl.Pane(name="basemap", style={"zIndex": 150}),
                    base_layer(s.settings),
                    dl.GeoJSON(id=ids.MYMAP_GRID, style=ns("gridStyle"), interactive=False),
                    dl.GeoJSON(id=ids.MYMAP_PATHS, style=ns("pathStyle"), interactive=False),
                    dl.GeoJSON(
                        id=ids.MYMAP_BUILDINGS,
                        style=ns("buildingStyle"),
                        onEachFeature=ns("buildingTooltip"),
                        hideout={"lang": lang},
                    ),
                    dl.GeoJSON(id=ids.MYMAP_ROUTE, style=mine("routeStyle"), interactive=False),
                    dl.GeoJSON(id=ids.MYMAP_TARGETS, pointToLayer=mine("targetPoint")),
                    dl.GeoJSON(id=ids.MYMAP_ME, pointToLayer=mine("mePoint")),
                    dl.ScaleControl(position="bottomleft", imperial=False),
                ],
            ),
            dcc.Store(id=ids.MYMAP_SELECTED, data={"lang": lang, "task": None}),
            *gated_interval(ids.MYMAP_REFRESH, 5000),
        ],
    )
