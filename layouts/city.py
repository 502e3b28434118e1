"""The city view (全市态势): every community on one map, clustered where dense and coloured by its
most serious open alert, with the city's key figures and charts. A click on a community opens
its sand-table; a click on a cluster zooms into it. Nothing to click on a wall display."""

from __future__ import annotations

from typing import Any

import dash
import dash_leaflet as dl
from dash import dcc, html
from dash_extensions.javascript import Namespace

from api.context import request_lang, stores
from auth.principal import current_principal
from core.i18n import t
from geodata.gcj02 import for_display, latlng_for_display
from layouts import ids
from layouts.city_data import SEVERITIES, CityCommunity, communities
from layouts.gate import gated_interval
from layouts.map import base_layer
from layouts.shell import forbidden, header
from layouts.wall import chart_panel

ns = Namespace("sandtable", "map")

# The city's extent when there is nothing to fit yet (Yancheng).
DEFAULT_BOUNDS = [[32.8, 119.5], [34.3, 120.6]]


def kpi_tiles(figures: dict[str, Any] | None, lang: str) -> list[Any]:
    """The city's key-figure tiles."""
    f = figures or {}

    def tile(label: str, value: Any, sub: str = "", tone: str = "") -> html.Div:
        return html.Div(
            className=f"st-kpi {tone}",
            children=[
                html.Div(label, className="st-kpi-label"),
                html.Div("—" if value is None else f"{value:,}", className="st-kpi-value"),
                html.Div(sub, className="st-kpi-sub"),
            ],
        )

    alerts = f.get("open_alerts", {})
    return [
        tile(t("city.communities", lang), f.get("communities")),
        tile(t("kpi.residents", lang), f.get("residents"), t("city.households", lang, n=f"{f.get('households', 0):,}")),
        tile(
            t("kpi.rentals", lang),
            f.get("rentals"),
            f"{t('kpi.group_rentals', lang)} {f.get('group_rentals', 0):,}",  # as on the wall: one definition
            "st-blue",
        ),
        tile(t("kpi.elderly", lang), f.get("elderly_alone"), "", "st-amber"),
        tile(
            t("city.devices", lang), f.get("devices"), t("city.guards", lang, n=f"{f.get('guards', 0):,}"), "st-green"
        ),
        tile(t("city.serious_communities", lang), f.get("serious_communities"), "", "st-red"),
        html.Div(
            className="st-kpi st-kpi-alerts",
            children=[
                html.Div(t("kpi.open_alerts", lang), className="st-kpi-label"),
                html.Div(
                    className="st-sev-row",
                    children=[
                        html.Span(
                            [html.B(f"{alerts.get(s, 0):,}"), t(f"severity.{s}", lang)], className=f"st-sev st-sev-{s}"
                        )
                        for s in SEVERITIES
                    ],
                ),
            ],
        ),
    ]


def city_legend(lang: str) -> html.Div:
    """What the colours of the points mean."""
    rows: list[Any] = [html.Div(t("city.legend", lang), className="st-legend-title")]
    for sev in (*SEVERITIES, "none"):
        rows.append(
            html.Div(
                className="st-legend-row",
                children=[html.Span(className=f"st-dot st-city-dot st-city-{sev}"), t(f"city.worst.{sev}", lang)],
            )
        )
    rows.append(html.Div(t("city.legend_cluster", lang), className="st-legend-note"))
    return html.Div(className="st-legend st-city-legend", children=rows)


def district_labels(comms: list[CityCommunity]) -> dict[str, Any]:
    """A label at the middle of each district's communities (the map has no tiles to name places)."""
    spots: dict[str, list[tuple[float, float]]] = {}
    for c in comms:
        if c.district:
            spots.setdefault(c.district, []).append((c.lat, c.lon))
    features = []
    for district, points in sorted(spots.items()):
        lat = sum(p[0] for p in points) / len(points)
        lon = sum(p[1] for p in points) / len(points)
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [round(lon, 5), round(lat, 5)]},
                "properties": {"name": district, "n": len(points)},
            }
        )
    return {"type": "FeatureCollection", "features": features}


def city_map(bounds: list[list[float]], lang: str, comms: list[CityCommunity]) -> dl.MapContainer:
    """The clustered map of the communities (data filled by the refresh callback)."""
    s = stores()
    return dl.MapContainer(
        id=ids.CITY_MAP,
        center=[(bounds[0][0] + bounds[1][0]) / 2, (bounds[0][1] + bounds[1][1]) / 2],
        zoom=10,
        viewport={"bounds": bounds, "options": {"padding": [24, 24]}},
        zoomSnap=0.25,
        maxZoom=18,
        minZoom=7,
        attributionControl=bool(s.settings.tile_url),
        className="st-map st-city-map",
        children=[
            dl.Pane(name="basemap", style={"zIndex": 150}),
            base_layer(s.settings),
            dl.Pane(name="labels", style={"zIndex": 420, "pointerEvents": "none"}),
            dl.GeoJSON(
                data=for_display(s.settings, district_labels(comms)),
                pointToLayer=ns("districtLabel"),
                interactive=False,
                pane="labels",
            ),
            dl.GeoJSON(
                id=ids.CITY_POINTS,
                data={"type": "FeatureCollection", "features": []},
                cluster=True,
                zoomToBoundsOnClick=True,
                superClusterOptions={"radius": 60, "maxZoom": 14},
                pointToLayer=ns("communityPoint"),
                clusterToLayer=ns("communityCluster"),
                hideout={"lang": lang},
            ),
            dl.ScaleControl(position="bottomleft", imperial=False),
        ],
    )


def layout(kiosk: str | None = None, **_: Any) -> html.Div:
    """The city-view page."""
    lang = request_lang()
    refused = forbidden(lang, "view.city")
    if refused is not None:
        return refused
    principal = current_principal()
    if not principal.city_wide:
        return html.Div([dcc.Location(id="city-to-wall", href="/", refresh=True)])
    comms = communities(stores(), principal.scope)
    if comms:
        lats = [c.lat for c in comms]
        lons = [c.lon for c in comms]
        bounds = [[min(lats), min(lons)], [max(lats), max(lons)]]
    else:
        bounds = DEFAULT_BOUNDS
    bounds = latlng_for_display(stores().settings, bounds)
    refresh_ms = int(stores().settings.refresh_seconds * 1000)
    return html.Div(
        className="st-page st-wall st-city" + (" st-kiosk" if kiosk == "1" else ""),
        children=[
            header(
                lang,
                path="/city" + ("?kiosk=1" if kiosk == "1" else ""),
                subtitle=t("nav.city", lang),
            ),
            html.Main(
                className="st-wall-grid",
                children=[
                    html.Aside(
                        className="st-side st-left",
                        children=[
                            html.Div(
                                className="st-panel",
                                children=[
                                    html.Div(t("wall.kpis", lang), className="st-panel-title"),
                                    html.Div(id=ids.CITY_KPIS, className="st-kpis", children=kpi_tiles(None, lang)),
                                ],
                            ),
                            chart_panel(t("city.by_district", lang), ids.CITY_CHART_DISTRICTS),
                        ],
                    ),
                    html.Div(
                        className="st-map-wrap",
                        children=[city_map(bounds, lang, comms), city_legend(lang)],
                    ),
                    html.Aside(
                        className="st-side st-right",
                        children=[
                            chart_panel(t("city.top", lang), ids.CITY_CHART_TOP),
                            chart_panel(t("city.by_type", lang), ids.CITY_CHART_TYPES),
                        ],
                    ),
                ],
            ),
            *gated_interval(ids.CITY_REFRESH, max(refresh_ms, 5000)),
            dcc.Store(id=ids.CITY_STATE, data={"since": 0, "full_at": 0, "lang": lang}),
        ],
    )


dash.register_page(__name__, path="/city", name="city", title="全市态势 · 数字沙盘", layout=layout)
