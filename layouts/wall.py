"""The wall screen (态势大屏): the community's sand-table map with key figures, charts and the
live alert feed. Nothing to click: it refreshes itself and flies to new serious alerts."""

from __future__ import annotations

import json
from typing import Any

import dash
import dash_leaflet as dl
from dash import dcc, html
from dash_extensions.javascript import Namespace

from api.context import request_lang, stores
from auth.principal import current_principal
from core.i18n import t
from layouts import ids
from layouts.attrs import data_attrs
from layouts.gate import gated_interval
from layouts.map import community_map, legend, map_bounds
from layouts.scrubber import scrubber
from layouts.shell import forbidden, header
from layouts.wall_data import SEVERITY_ORDER
from registry import queries

ns = Namespace("sandtable", "map")


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


def kpi_tiles(figures: dict[str, Any] | None, lang: str) -> list[Any]:
    """The key-figure tiles."""
    f = figures or {}

    def tile(label: str, value: Any, sub: str = "", tone: str = "") -> html.Div:
        return html.Div(
            className=f"st-kpi {tone}",
            children=[
                html.Div(label, className="st-kpi-label"),
                html.Div(
                    "—" if value is None else f"{value:,}" if isinstance(value, int) else value,
                    className="st-kpi-value",
                ),
                html.Div(sub, className="st-kpi-sub"),
            ],
        )

    alerts = f.get("open_alerts", {})
    online = f.get("devices_online")
    return [
        tile(t("kpi.residents", lang), f.get("residents")),
        tile(
            t("kpi.rentals", lang),
            f.get("rentals"),
            f"{t('kpi.group_rentals', lang)} {f.get('group_rentals', 0)}",
            "st-blue",
        ),
        tile(t("kpi.elderly", lang), f.get("elderly"), "", "st-amber"),
        tile(
            t("kpi.devices_online", lang),
            None if online is None else f"{online}%",
            t("wall.devices_reported", lang, n=f.get("devices_reported", 0)),
        ),
        tile(t("kpi.guards_on_duty", lang), f.get("guards_on_duty"), f"/ {f.get('guards', 0)}", "st-green"),
        html.Div(
            className="st-kpi st-kpi-alerts",
            children=[
                html.Div(t("kpi.open_alerts", lang), className="st-kpi-label"),
                html.Div(
                    className="st-sev-row",
                    children=[
                        html.Span(
                            [html.B(str(alerts.get(s, 0))), t(f"severity.{s}", lang)], className=f"st-sev st-sev-{s}"
                        )
                        for s in SEVERITY_ORDER
                    ],
                ),
            ],
        ),
    ]


def count_text(item: dict[str, Any], lang: str) -> str:
    """×N for a grouped card, the repeat count of a single alert, or nothing."""
    if item.get("grouped"):
        return f"×{item['count']}"
    return t("wall.count", lang, n=item["count"]) if item["count"] > 1 else ""


def feed_cards(items: list[dict[str, Any]], lang: str) -> list[Any]:
    """The alert feed: one card per alert, severity colours, time since."""
    if not items:
        return [html.Div(t("alert.none", lang), className="st-feed-empty")]
    cards = []
    for item in items:
        pulse = (
            item["open"]
            and item["status"] == "new"
            and item["severity"] in ("high", "critical")
            and not item.get("flapping")
        )  # a flapping alert holds its notifications back
        cards.append(
            html.Div(
                className=f"st-card st-sev-{item['severity']}"
                + (" st-pulse" if pulse else "")
                + ("" if item["open"] else " st-closed"),
                id={"type": "alert-card", "id": item["id"]},
                children=[
                    html.Div(
                        className="st-card-top",
                        children=[
                            html.Span(t(f"severity.{item['severity']}", lang), className="st-card-sev"),
                            html.Span(item["label"], className="st-card-type"),
                            html.Span(count_text(item, lang), className="st-card-count"),
                        ],
                    ),
                    html.Div(
                        className="st-card-bottom",
                        children=[
                            html.Span(item["where"], className="st-card-where"),
                            html.Span(item["status_label"], className=f"st-card-status st-status-{item['status']}"),
                            html.Span("", className="st-since", **data_attrs(since=item["detected_at"], lang=lang)),
                        ],
                    ),
                ],
            )
        )
    return cards


def chart_panel(title: str, graph_id: str) -> html.Div:
    """A titled chart."""
    return html.Div(
        className="st-panel st-chart",
        children=[
            html.Div(title, className="st-panel-title"),
            dcc.Graph(
                id=graph_id,
                config={"displayModeBar": False, "staticPlot": True},
                className="st-graph",
                figure={
                    "data": [],
                    "layout": {
                        "paper_bgcolor": "rgba(0,0,0,0)",
                        "plot_bgcolor": "rgba(0,0,0,0)",
                        "xaxis": {"visible": False},
                        "yaxis": {"visible": False},
                    },
                },
            ),
        ],
    )


def live_layers() -> list[Any]:
    """Guards, their trails and the open alerts, refreshed by the wall's callback."""
    empty = {"type": "FeatureCollection", "features": []}
    return [
        dl.Pane(name="live", style={"zIndex": 650}),
        dl.GeoJSON(id=ids.MAP_TRAILS, data=empty, style=ns("trailStyle"), interactive=False, pane="live"),
        dl.GeoJSON(id=ids.MAP_GUARDS, data=empty, pointToLayer=ns("guardPoint"), pane="live"),
        dl.GeoJSON(id=ids.MAP_ALERTS, data=empty, pointToLayer=ns("alertPoint"), pane="live"),
    ]


def view_toggle(view: str, lang: str) -> html.Div:
    """The 2D/3D switch of the wall's map area."""
    return html.Div(
        className="st-view-toggle",
        children=dcc.RadioItems(
            id=ids.WALL_VIEW,
            options=[{"label": t(f"wall.view.{v}", lang), "value": v} for v in ("2d", "3d")],
            value=view,
            inline=True,
            className="st-view-options",
        ),
    )


def scene_panel() -> html.Div:
    """The community in 3D (filled by the wall's refresh when the 3D view shows)."""
    return html.Div(
        className="st-scene",
        children=dcc.Graph(
            id=ids.SCENE,
            responsive=True,
            className="st-scene-graph",
            config={"displayModeBar": False, "displaylogo": False, "scrollZoom": True},
            figure={"data": [], "layout": {"paper_bgcolor": "#070d18", "plot_bgcolor": "#070d18"}},
        ),
    )


def layout(community: str | None = None, kiosk: str | None = None, view: str | None = None, **_: Any) -> html.Div:
    """The wall-screen page."""
    lang = request_lang()
    refused = forbidden(lang, "view.wall")
    if refused is not None:
        return refused
    principal = current_principal()
    if community is None and principal.role != "admin" and principal.community is None and principal.city_wide:
        # the city command centre lands on the city view (the access layer redirects / and /wall there;
        # this covers a navigation inside the app); a click there opens a community here
        return html.Div(dcc.Location(id="wall-to-city", href="/city" + ("?kiosk=1" if kiosk == "1" else "")))
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
    shown = view if view in ("2d", "3d") else s.settings.wall_view
    refresh_ms = int(s.settings.refresh_seconds * 1000)
    return html.Div(
        className="st-page st-wall" + (" st-kiosk" if kiosk == "1" else ""),
        children=[
            header(
                lang,
                path=f"/?community={chosen.id}" + ("&kiosk=1" if kiosk == "1" else ""),
                subtitle=f"{t('nav.wall', lang)} · {name}",
                tools=[
                    community_switcher(
                        [(c.id, c.name if lang == "zh" else c.name_en or c.name) for c in visible], chosen.id, lang
                    )
                ],
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
                                    html.Div(id=ids.KPIS, className="st-kpis", children=kpi_tiles(None, lang)),
                                ],
                            ),
                            chart_panel(t("wall.alerts_24h", lang), ids.CHART_ALERT_TYPES),
                            chart_panel(t("wall.response", lang), ids.CHART_RESPONSE),
                        ],
                    ),
                    html.Div(
                        id=ids.MAP_WRAP,
                        className="st-map-wrap" + (" st-view-3d" if shown == "3d" else ""),
                        **data_attrs(
                            bounds=json.dumps(map_bounds(chosen, s.settings)),
                            # the kiosk turns the 3D model slowly (assets/js/scene3d.js); 0 = still
                            turn=str(s.settings.wall_3d_turn_seconds if kiosk == "1" else 0),
                        ),
                        children=[
                            community_map(chosen, lang, s.settings, extra=live_layers()),
                            scene_panel(),
                            view_toggle(shown, lang),
                            legend(lang),
                            html.Div(id=ids.DRILL, className="st-drill st-hidden"),
                            scrubber(chosen.id, lang),
                        ],
                    ),
                    html.Aside(
                        className="st-side st-right",
                        children=[
                            html.Div(
                                className="st-panel st-feed-panel",
                                children=[
                                    html.Div(
                                        [t("alert.feed", lang), html.Span(id="feed-count", className="st-feed-count")],
                                        className="st-panel-title",
                                    ),
                                    html.Div(id=ids.ALERT_FEED, className="st-feed"),
                                ],
                            ),
                        ],
                    ),
                ],
            ),
            *gated_interval(ids.REFRESH, refresh_ms),
            dcc.Store(
                id=ids.LIVE_STATE, data={"community": chosen.id, "since": 0, "ver": -1, "full_at": 0, "lang": lang}
            ),
            dcc.Store(id=ids.COMMUNITY_SHOWN, data=chosen.id),
            dcc.Store(id=ids.ALERT_STATE, data=[]),
            dcc.Store(id=ids.MAP_VIEW),
            dcc.Store(id=ids.VIEWPORT, data=1),
            dcc.Store(id=ids.SCENE_FLY),
        ],
    )


dash.register_page(__name__, path="/", name="wall", title="数字沙盘", layout=layout)
dash.register_page("wall_alias", path="/wall", name="wall-kiosk", title="数字沙盘", layout=layout)
