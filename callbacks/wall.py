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
