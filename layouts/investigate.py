"""The Investigate page (研判): what happened at one place between two times.

The user draws a polygon or a rectangle on the map (or picks buildings, gates and households and
draws a rectangle around them), picks a window, and reads one merged timeline from the event
archive (memory.search) and the alert history, every entry also on the map. A plate or a person
is followed across the whole community; the investigation is saved as a case (memory.cases).
The work is done by callbacks/investigate.py, with role and scope from the server session.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import dash
import dash_leaflet as dl
from dash import dcc, html
from sqlalchemy import select

from api.context import clock, request_lang, stores
from auth.principal import current_principal
from core.i18n import t
from core.timefmt import SHANGHAI, ms_to_utc
from layouts import ids
from layouts.map import community_map
from layouts.shell import forbidden, header, nav_links
from registry import queries
from registry.models import Building, Device, Household

KINDS = ("door", "lock", "face", "vehicle", "patrol", "guard", "alert")
PRESETS = ("last_night", "last_24h", "custom")


MAX_HOUSEHOLD_OPTIONS = 30


def place_options(
    session: Any, community: str, grid: str | None, lang: str, *, search: str = "", keep: frozenset[str] = frozenset()
) -> list[dict[str, str]]:
    """The picker's places: gates (face gates and barriers), buildings, and the households whose
    address holds ``search`` or that are picked already (``keep``; thousands of households would
    make the page heavy); a grid worker's buildings and households are those of their grid. Labelled
    as people read them."""
    gates = list(
        session.scalars(
            select(Device.id)
            .where(Device.community_id == community, Device.type.in_(("face_gate", "vehicle_gate")))
            .where(Device.building_id.is_(None))
            .order_by(Device.id)
        )
    )
    buildings = select(Building.id).where(Building.community_id == community).order_by(Building.id)
    households = select(Household.id).where(Household.community_id == community).order_by(Household.id)
    if grid is not None:
        buildings = buildings.where(Building.grid_id == grid)
        households = households.where(Household.grid_id == grid)
    building_ids = list(session.scalars(buildings))
    household_ids = list(session.scalars(households)) if search or keep else []
    found = queries.entity_labels(session, gates + building_ids + household_ids, lang)
    needle = search.strip()
    household_ids = [h for h in household_ids if f"h:{h}" in keep or (needle and needle in found.get(h, ""))]
    household_ids = household_ids[: MAX_HOUSEHOLD_OPTIONS + len(keep)]
    return [
        *({"label": found.get(g, g), "value": f"d:{g}"} for g in gates),
        *({"label": found.get(b, b), "value": f"b:{b}"} for b in building_ids),
        *({"label": found.get(h, h), "value": f"h:{h}"} for h in household_ids),
    ]


def window_defaults(now_ms: int) -> dict[str, str]:
    """The custom window's first values: the last 24 hours, in Asia/Shanghai."""
    now = ms_to_utc(now_ms).astimezone(SHANGHAI)
    start = now - dt.timedelta(days=1)
    return {
        "from_date": start.strftime("%Y-%m-%d"),
        "from_time": start.strftime("%H:%M"),
        "to_date": now.strftime("%Y-%m-%d"),
        "to_time": now.strftime("%H:%M"),
    }


def controls(lang: str, options: list[dict[str, str]], defaults: dict[str, str]) -> html.Section:
    """The left panel: place, window, kinds, search, and saving as a case."""
    return html.Section(
        className="st-panel st-inv-controls",
        children=[
            html.Div(t("inv.place", lang), className="st-panel-title"),
            dcc.Dropdown(
                id=ids.INV_PLACE,
                options=options,
                multi=True,
                placeholder=t("inv.place.pick", lang),
                className="st-select",
            ),
            html.Div(
                className="st-inv-row",
                children=[
                    html.Button(t("inv.place.box", lang), id=ids.INV_BOX, className="st-btn"),
                    html.Button(t("inv.place.clear", lang), id=ids.INV_CLEAR, className="st-btn st-btn-ghost"),
                ],
            ),
            html.Div(t("inv.place.hint", lang), id=ids.INV_AREA_TEXT, className="st-inv-hint"),
            html.Div(t("inv.window", lang), className="st-panel-title st-gap"),
            dcc.RadioItems(
                id=ids.INV_PRESET,
                value="last_24h",
                className="st-radio st-inv-presets",
                options=[{"label": t(f"inv.window.{p}", lang), "value": p} for p in PRESETS],
            ),
            html.Div(
                className="st-inv-when",
                children=[
                    html.Label(t("inv.window.from", lang)),
                    dcc.Input(id=ids.INV_FROM_DATE, value=defaults["from_date"], maxLength=10, size="10"),
                    dcc.Input(id=ids.INV_FROM_TIME, value=defaults["from_time"], maxLength=5, size="5"),
                    html.Label(t("inv.window.to", lang)),
                    dcc.Input(id=ids.INV_TO_DATE, value=defaults["to_date"], maxLength=10, size="10"),
                    dcc.Input(id=ids.INV_TO_TIME, value=defaults["to_time"], maxLength=5, size="5"),
                ],
            ),
            html.Div(t("inv.kinds", lang), className="st-panel-title st-gap"),
            dcc.Checklist(
                id=ids.INV_KINDS,
                value=list(KINDS),
                inline=True,
                className="st-inv-kinds",
                options=[{"label": t(f"inv.kind.{k}", lang), "value": k} for k in KINDS],
            ),
            html.Button(t("inv.search", lang), id=ids.INV_SEARCH, className="st-btn st-btn-primary st-inv-go"),
            html.Div(id=ids.INV_MSG, className="st-msg", role="status"),
            html.Div(t("inv.save", lang), className="st-panel-title st-gap"),
            html.Div(
                className="st-inv-row",
                children=[
                    dcc.Input(id=ids.INV_CASE_NAME, placeholder=t("inv.case_name", lang), maxLength=100),
                    html.Button(t("inv.save", lang), id=ids.INV_SAVE, className="st-btn"),
                ],
            ),
            html.Div(id=ids.INV_CASE_MSG, className="st-msg", role="status"),
        ],
    )


def draw_control() -> dl.EditControl:
    """The drawing tools (polygon, rectangle). Added a moment after the page (``INV_DRAW_TIMER``):
    when its script loads together with the map's layers and the picker, the first visit of a
    browser sometimes never finishes loading any of them (dash-leaflet 1.1.3's lazy loading)."""
    return dl.EditControl(
        id={"type": ids.INV_DRAW, "index": 0},  # matched as a pattern: callbacks.investigate.INV_DRAW_ANY
        position="topleft",
        draw={
            "polygon": True,
            "rectangle": True,
            "polyline": False,
            "circle": False,
            "marker": False,
            "circlemarker": False,
        },
    )


def layout(community: str | None = None, **_: Any) -> html.Div:
    """The Investigate page."""
    lang = request_lang()
    refused = forbidden(lang, "investigate")
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
        options = place_options(session, chosen.id, principal.scope.grid, lang)
        the_map = community_map(
            chosen,
            lang,
            stores().settings,
            extra=[
                dl.FeatureGroup(id=ids.INV_DRAW_SLOT),
                dl.LayerGroup(id=ids.INV_AREA_LAYER),
                dl.LayerGroup(id=ids.INV_FOLLOW_MARKERS),
                dl.LayerGroup(id=ids.INV_MARKERS),
            ],
        )
        name = chosen.name if lang == "zh" else chosen.name_en
    return html.Div(
        className="st-page st-investigate",
        children=[
            header(
                lang,
                subtitle=f"{t('nav.investigate', lang)} · {name}",
                tools=nav_links(lang),
                path=f"/investigate?community={chosen.id}",
            ),
            html.Main(
                className="st-inv-grid",
                children=[
                    controls(lang, options, window_defaults(clock().now_ms())),
                    html.Section(className="st-panel st-inv-map", children=[the_map]),
                    html.Section(
                        className="st-panel st-inv-results",
                        children=[
                            html.Div(t("inv.timeline", lang), className="st-panel-title"),
                            html.Div(id=ids.INV_TIMELINE, className="st-inv-timeline"),
                            html.Div(t("inv.plates", lang), className="st-panel-title st-gap"),
                            html.Div(id=ids.INV_PLATES, className="st-inv-plates"),
                            html.Div(
                                className="st-inv-span",
                                children=[
                                    html.Span(t("inv.follow.span", lang)),
                                    dcc.RadioItems(
                                        id=ids.INV_FOLLOW_SPAN,
                                        value="window",
                                        inline=True,
                                        className="st-radio",
                                        options=[
                                            {"label": t(f"inv.follow.{s}", lang), "value": s}
                                            for s in ("window", "week")
                                        ],
                                    ),
                                ],
                            ),
                            html.Div(id=ids.INV_FOLLOW_PANEL, className="st-inv-follow"),
                        ],
                    ),
                ],
            ),
            dcc.Store(id=ids.INV_STATE, data={"community": chosen.id, "lang": lang}),
            dcc.Store(id=ids.INV_AREA),
            dcc.Store(id=ids.INV_RESULTS),
            dcc.Store(id=ids.INV_SELECTED),
            dcc.Store(id=ids.INV_FOLLOW),
            dcc.Store(id=ids.INV_CASE),
            dcc.Interval(id=ids.INV_DRAW_TIMER, interval=1500, max_intervals=1),
        ],
    )


dash.register_page(__name__, path="/investigate", name="investigate", title="研判", layout=layout)
