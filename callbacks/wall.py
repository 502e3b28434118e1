"""Callbacks of the wall screen."""

from __future__ import annotations

from dash import Input, Output, clientside_callback

from layouts import ids

# The clock ticks in the browser: no server round trip per second.
clientside_callback(
    "function(n){return window.sandtable.clockText();}",
    Output(ids.CLOCK, "children"),
    Input(ids.CLOCK_TICK, "n_intervals"),
)

# Switching community reloads the page for that community (keeping kiosk mode and language).
clientside_callback(
    """function(value){
        if(!value){return window.dash_clientside.no_update;}
        var params = new URLSearchParams(window.location.search);
        if(params.get("community") === value){return window.dash_clientside.no_update;}
        params.set("community", value);
        return window.location.pathname + "?" + params.toString();
    }""",
    Output(ids.URL, "href"),
    Input(ids.COMMUNITY_SELECT, "value"),
    prevent_initial_call=True,
)
