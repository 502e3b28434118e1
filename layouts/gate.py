"""A live page's interval whose ticks wait for the refreshes they started (callbacks/gate.py).

The page holds the interval, the gated tick its refreshes listen to, and one flag per refresh that
Dash sets while that refresh's request is out."""

from __future__ import annotations

from typing import Any

from dash import dcc


def tick_id(interval: str) -> str:
    """The Store the gate writes a tick to (the refresh's Input)."""
    return f"{interval}-gated"


def busy_id(interval: str, k: int = 0) -> str:
    """The Store Dash sets true while the interval's ``k``-th refresh has its request out (its ``running=``)."""
    return f"{interval}-busy" if k == 0 else f"{interval}-busy-{k}"


def gated_interval(interval: str, interval_ms: int, refreshes: int = 1) -> list[Any]:
    """The interval, its gated tick and a busy flag per refresh listening to it, for a page's layout."""
    return [
        dcc.Interval(id=interval, interval=interval_ms),
        dcc.Store(id=tick_id(interval)),
        *(dcc.Store(id=busy_id(interval, k), data=False) for k in range(refreshes)),
    ]
