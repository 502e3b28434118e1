"""Callbacks of the city view: the live refresh (only the communities whose alerts changed) and the
drill-down into a community's sand-table.

The scope comes from the server session; the browser's Store only says when it last refreshed.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any

from dash import Input, Output, Patch, State, clientside_callback
from dash.exceptions import PreventUpdate

from api.context import clock, stores
from auth.callbacks import page_callback
from auth.policy import can
from auth.principal import current_principal
from callbacks.gate import gated
from callbacks.requests import CITY_REFRESH_OUTPUTS
from callbacks.util import time_ms
from callbacks.wall import chart_layout
from core.i18n import t
from layouts import ids
from layouts.city import kpi_tiles
from layouts.city_data import (
    SEVERITIES,
    SEVERITY_COLORS,
    CityCommunity,
    by_district,
    by_type,
    changed_since,
    city_layer,
    communities,
    community_feature,
    key_figures,
    open_counts,
    registry_figures,
    top_communities,
)
from registry.queries import Scope

FULL_EVERY_MS = 60_000
LIST_TTL_S = 60.0
_lists: dict[Any, tuple[float, list[CityCommunity]]] = {}
_lists_lock = threading.Lock()
# the city view's tick reaches the refresh only once the previous refresh has answered (callbacks/gate.py)
CITY_TICK, (CITY_BUSY,) = gated(ids.CITY_REFRESH)

# A click on a community (not on a cluster: that zooms) opens its sand-table.
clientside_callback(
    """function(feature){
        if(!feature || !feature.properties || feature.properties.cluster || !feature.properties.id){
            return window.dash_clientside.no_update;
        }
        var params = new URLSearchParams(window.location.search);
        var next = new URLSearchParams();
        next.set("community", feature.properties.id);
        if(params.get("kiosk")){next.set("kiosk", params.get("kiosk"));}
        return "/?" + next.toString();
    }""",
    Output(ids.URL, "href", allow_duplicate=True),
    Input(ids.CITY_POINTS, "clickData"),
    prevent_initial_call=True,
)


def scoped_communities(scope: Scope) -> list[CityCommunity]:
    """The communities of a scope, cached for a minute in this process (a read-only registry list:
    no state that another web worker would need to share)."""
    key = (stores().settings.effective_database_url, scope.communities)
    now = time.monotonic()
    found = _lists.get(key)
    if found is None or now - found[0] > LIST_TTL_S:
        with _lists_lock:
            found = _lists.get(key)
            if found is None or now - found[0] > LIST_TTL_S:
                found = (now, communities(stores(), scope))
                _lists[key] = found
    return found[1]


def chart_districts(comms: list[CityCommunity], counts: dict[str, dict[str, int]], lang: str) -> dict[str, Any]:
    """Stacked bars: open alerts per district by severity."""
    order, per = by_district(comms, counts)
    data = [
        {
            "type": "bar",
            "orientation": "h",
            "name": t(f"severity.{s}", lang),
            "y": order[::-1],
            "x": per[s][::-1],
            "marker": {"color": SEVERITY_COLORS[s]},
        }
        for s in SEVERITIES
    ]
    totals = [sum(per[s][i] for s in SEVERITIES) for i in range(len(order))]
    empty = not any(totals)
    layout = _layout(t("city.no_alerts", lang) if empty else None, left=110, stack=True, most=max(totals, default=0))
    return {"data": data, "layout": layout}


def chart_top(comms: list[CityCommunity], counts: dict[str, dict[str, int]], lang: str) -> dict[str, Any]:
    """Stacked bars: the communities with the most serious open alerts."""
    top = top_communities(comms, counts)[::-1]
    data = [
        {
            "type": "bar",
            "orientation": "h",
            "name": t(f"severity.{s}", lang),
            "y": [c.label(lang) for c, _ in top],
            "x": [sev[s] for _, sev in top],
            "marker": {"color": SEVERITY_COLORS[s]},
        }
        for s in SEVERITIES
    ]
    most = max((sum(sev.values()) for _, sev in top), default=0)
    return {
        "data": data,
        "layout": _layout(t("city.no_alerts", lang) if not top else None, left=130, stack=True, most=most),
    }


def chart_types(comms: list[CityCommunity], counts: dict[str, dict[str, int]], lang: str) -> dict[str, Any]:
    """Horizontal bars: open alerts per type over the city."""
    items = sorted(by_type(comms, counts).items(), key=lambda kv: kv[1])
    data = [
        {
            "type": "bar",
            "orientation": "h",
            "x": [v for _, v in items],
            "y": [t(f"alert.type.{k}", lang) for k, _ in items],
            "marker": {"color": "#38e1ff"},
            "text": [f"{v:,}" for _, v in items],
            "textposition": "outside",
            "cliponaxis": False,
        }
    ]
    most = max((v for _, v in items), default=0)
    return {"data": data, "layout": _layout(t("city.no_alerts", lang) if not items else None, left=150, most=most)}


def _layout(empty: str | None, *, left: int, stack: bool = False, most: int = 0) -> dict[str, Any]:
    layout = chart_layout(empty, left=left)
    layout["bargap"] = 0.35
    if not empty:  # counts: whole-number ticks
        layout["xaxis"] = {**layout["xaxis"], "dtick": max(1, math.ceil(most / 4)), "rangemode": "tozero"}
    if stack and not empty:
        layout["barmode"] = "stack"
        layout["showlegend"] = True
        layout["legend"] = {"orientation": "h", "y": -0.12, "font": {"size": 11}}
        layout["margin"] = {**layout["margin"], "b": 40}
    return layout


@page_callback(
    "view.city",
    *(Output(i, p) for i, p in CITY_REFRESH_OUTPUTS),
    CITY_TICK,
    State(ids.CITY_STATE, "data"),
    **CITY_BUSY,
)
def refresh(_tick: Any, state: dict[str, Any] | None) -> tuple[Any, ...]:
    """One tick of the city view: nothing when no community's alerts changed; else patches of the
    changed communities' points, with the figures and charts recomputed from the counters."""
    principal = current_principal()
    if not can(principal, "view.city") or not principal.city_wide or not isinstance(state, dict):
        raise PreventUpdate
    s = stores()
    lang = "en" if state.get("lang") == "en" else "zh"
    now = clock().now_ms()
    since = time_ms(state, "since")
    full = since == 0 or now - time_ms(state, "full_at") > FULL_EVERY_MS
    comms = scoped_communities(principal.scope)
    changed: list[str] = []
    if not full:
        in_scope = principal.scope
        changed = [c for c in changed_since(s, since) if in_scope.allows_community(c)]
        if not changed:
            raise PreventUpdate  # nothing changed: a 204, no bytes
    new_state = {**state, "since": now - 1000}  # a second of overlap: no change falls between
    counts = open_counts(s, [c.id for c in comms], principal)
    points: Any
    if full:
        points = city_layer(comms, counts, lang, s.settings)
        new_state["full_at"] = now
    else:
        index = {c.id: i for i, c in enumerate(comms)}
        points = Patch()
        for cid in changed:
            i = index.get(cid)
            if i is not None:
                points["features"][i] = community_feature(comms[i], counts.get(cid, {}), lang, s.settings)
    figures = key_figures(comms, counts, registry_figures(s))
    return (
        points,
        kpi_tiles(figures, lang),
        chart_districts(comms, counts, lang),
        chart_top(comms, counts, lang),
        chart_types(comms, counts, lang),
        new_state,
    )
