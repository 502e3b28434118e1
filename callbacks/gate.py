"""A live page's refresh that is never asked again before it has answered.

dash-renderer drops a server callback that is still executing when the same callback is requested
again (``eDuplicates`` in its requestedCallbacks observer), and the late answer is thrown away. A
refresh driven straight by an interval shorter than its answer time (a slow PC, a slow link, a
loaded server) therefore never landed, and the wall froze with no error (found under load, issue 21).

So the interval does not drive the refresh. A clientside gate passes a tick on to a Store the
refresh listens to only when the previous refresh has answered: Dash's ``running=`` holds a busy
flag from the request to its answer (a 204 and an error status included). A request lost on the
network leaves the flag set (dash-renderer clears ``running`` only on an answer), so after
``STALE_MS`` the gate lets a tick through anyway.
"""

from __future__ import annotations

from typing import Any

from dash import Input, Output, State, clientside_callback

from layouts.gate import busy_id, tick_id

STALE_MS = 30_000  # a refresh out for longer than this is taken as lost: the next tick asks again

GATE_JS = f"""function(n, last, busy){{
    var now = Date.now();
    if(busy && last && now - last.at < {STALE_MS}){{ return window.dash_clientside.no_update; }}
    return {{n: n || 0, at: now}};
}}"""


def gated(interval: str) -> tuple[Input, dict[str, Any]]:
    """Register the gate of ``interval``; returns the refresh's Input (the gated tick) and the
    keyword arguments its callback takes (``running=``: the busy flag)."""
    clientside_callback(
        GATE_JS,
        Output(tick_id(interval), "data"),
        Input(interval, "n_intervals"),
        State(tick_id(interval), "data"),
        State(busy_id(interval), "data"),
    )
    return Input(tick_id(interval), "data"), {"running": [(Output(busy_id(interval), "data"), True, False)]}
