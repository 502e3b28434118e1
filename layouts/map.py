"""The sand-table map of a community, shared by the wall screen, the console and the grid view."""

from __future__ import annotations

import json
from typing import Any

import dash_leaflet as dl
from dash import html
from dash_extensions.javascript import Namespace
from shapely.geometry import shape

from core.i18n import t
from core.settings import Settings
from geodata.gcj02 import latlng_for_display
from layouts import ids
from registry.models import Community

ns = Namespace("sandtable", "map")

DEVICE_COLORS = {
    "face_gate": "#38e1ff",
    "vehicle_gate": "#00d1b2",
    "camera": "#9b8cff",
    "throw_camera": "#ff7ae0",
    "door_sensor": "#ffb020",
    "smart_lock": "#2f7bff",
    "smoke_detector": "#ff5a36",
    "wearable": "#35d07f",
    "checkpoint": "#e6edf7",
    "intercom": "#8da2c0",
    "water_meter": "#4fc3f7",
    "power_meter": "#ffe066",
}
LEGEND_CATEGORIES = (
    ("owner", "#8a94a6"),
    ("rental", "#2f7bff"),
    ("group_rental", "#00c8ff"),
    ("vacant", "#4a5263"),
    ("public", "#d9b45a"),
)


def base_layer(settings: Settings, *, named: bool = True) -> Any:
    """An intranet XYZ tile layer when configured, else the offline vector basemap (``named=False``: without
    the page map's ids, for a second, small map such as the console's place picker)."""
    if settings.tile_url:
        tile_id = {"id": ids.MAP_TILES} if named else {}
        return dl.TileLayer(url=settings.tile_url, attribution=settings.tile_attribution, maxZoom=20, **tile_id)
    basemap_id = {"id": ids.MAP_BASEMAP} if named else {}
    return dl.GeoJSON(
        url="/geo/basemap.geojson", style=ns("basemapStyle"), interactive=False, pane="basemap", **basemap_id
    )


def legend(lang: str) -> html.Div:
    """The map legend: building categories, elder marks, device types."""
    rows: list[Any] = [html.Div(t("legend.title", lang), className="st-legend-title")]
    for key, color in LEGEND_CATEGORIES:
        rows.append(
            html.Div(
                className="st-legend-row",
                children=[html.Span(className="st-swatch", style={"background": color}), t(f"legend.{key}", lang)],
            )
        )
    rows.append(
        html.Div(
            className="st-legend-row",
            children=[html.Span(className="st-swatch st-swatch-elder"), t("legend.elder", lang)],
        )
    )
    for dtype in (
        "face_gate",
        "vehicle_gate",
        "camera",
        "throw_camera",
        "door_sensor",
        "smart_lock",
        "smoke_detector",
        "water_meter",
        "power_meter",
        "checkpoint",
    ):
        rows.append(
            html.Div(
                className="st-legend-row",
                children=[
                    html.Span(className="st-dot", style={"background": DEVICE_COLORS[dtype]}),
                    t(f"device.{dtype}", lang),
                ],
            )
        )
    return html.Div(className="st-legend", children=rows)


def map_bounds(community: Community, settings: Settings) -> list[list[float]]:
    """[[south, west], [north, east]] of the community's boundary, as the map draws it."""
    min_lon, min_lat, max_lon, max_lat = shape(json.loads(community.boundary)).bounds
    return latlng_for_display(settings, [[min_lat, min_lon], [max_lat, max_lon]])


def map_center(community: Community, settings: Settings) -> list[float]:
    """The community's centre, as the map draws it."""
    return latlng_for_display(settings, [community.center_lat, community.center_lon])


def community_map(
    community: Community, lang: str, settings: Settings, *, extra: list[Any] | None = None
) -> dl.MapContainer:
    """The map of one community with its layers, a layer switcher, a legend and a scale."""
    base = f"/api/v1/map/{community.id}"
    overlays = [
        dl.Overlay(  # cameras' fields of view, off until asked for
            name=t("layer.coverage", lang),
            checked=False,
            children=dl.GeoJSON(
                id=ids.MAP_COVERAGE,
                url=f"{base}/coverage.geojson",
                style=ns("coverageStyle"),
                interactive=False,
                hideout={"colors": DEVICE_COLORS},
            ),
        ),
        dl.Overlay(
            name=t("layer.grids", lang),
            checked=True,
            children=dl.GeoJSON(
                id=ids.MAP_GRIDS,
                url=f"{base}/grids.geojson",
                style=ns("gridStyle"),
                onEachFeature=ns("gridLabel"),
                hideout={"lang": lang},
            ),
        ),
        dl.Overlay(
            name=t("layer.paths", lang),
            checked=True,
            children=dl.GeoJSON(
                id=ids.MAP_PATHS, url=f"{base}/paths.geojson", style=ns("pathStyle"), interactive=False
            ),
        ),
        dl.Overlay(
            name=t("layer.buildings", lang),
            checked=True,
            children=dl.GeoJSON(
                id=ids.MAP_BUILDINGS,
                url=f"{base}/buildings.geojson",
                pane="buildings",
                style=ns("buildingStyle"),
                hoverStyle=ns("hoverStyle"),
                onEachFeature=ns("buildingTooltip"),
                hideout={"lang": lang},
            ),
        ),
        dl.Overlay(
            name=t("layer.household_devices", lang),
            checked=True,
            children=dl.GeoJSON(
                id=ids.MAP_HOUSEHOLD_DEVICES,
                pane="devices",
                url=f"{base}/devices.geojson?group=household",
                pointToLayer=ns("devicePoint"),
                hideout={"colors": DEVICE_COLORS, "lang": lang},
            ),
        ),
        dl.Overlay(
            name=t("layer.devices", lang),
            checked=True,
            children=dl.GeoJSON(
                id=ids.MAP_DEVICES,
                pane="devices",
                url=f"{base}/devices.geojson?group=frontend",
                pointToLayer=ns("devicePoint"),
                hideout={"colors": DEVICE_COLORS, "lang": lang},
            ),
        ),
    ]
    children: list[Any] = [
        dl.Pane(name="basemap", style={"zIndex": 150}),
        # the layers arrive in whatever order their data does: panes keep the devices above the
        # buildings, and both above the grids, paths and camera fields of the overlay pane (400),
        # so a marker is always the thing under the pointer, never a polygon drawn after it
        dl.Pane(name="buildings", style={"zIndex": 410}),
        dl.Pane(name="devices", style={"zIndex": 420}),
        base_layer(settings),
        dl.GeoJSON(id=ids.MAP_BOUNDARY, url=f"{base}/boundary.geojson", style=ns("boundaryStyle"), interactive=False),
        dl.LayersControl(id=ids.MAP_LAYERS, children=overlays, position="topright", collapsed=False),
        dl.ScaleControl(position="bottomleft", imperial=False),
        *(extra or []),
    ]
    return dl.MapContainer(
        id=ids.MAP,
        center=map_center(community, settings),
        zoom=17,
        viewport={"bounds": map_bounds(community, settings), "options": {"padding": [24, 24]}},
        zoomSnap=0.25,
        maxZoom=20,
        minZoom=12,
        attributionControl=bool(settings.tile_url),
        className="st-map",
        children=children,
    )
