"""A live page's interval whose ticks wait for the refresh they started (callbacks/gate.py).

The page holds three components for it: the interval, the gated tick its refresh listens to, and
the flag Dash sets while the refresh's request is out."""

from __future__ import annotations

from typing import Any

from dash import dcc


def tick_id(interval: str) -> str:
    """The Store the gate writes a tick to (the refresh's Input)."""
    return f"{interval}-gated"


def busy_id(interval: str) -> str:
    """The Store Dash sets true while the refresh's request is out (its ``running=``)."""
    return f"{interval}-busy"


def gated_interval(interval: str, interval_ms: int) -> list[Any]:
    """The interval and the gate's two Stores, for a page's layout."""
    return [
        dcc.Interval(id=interval, interval=interval_ms),
        dcc.Store(id=tick_id(interval)),
        dcc.Store(id=busy_id(interval), data=False),
    ]
