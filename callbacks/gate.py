"""A live page's refresh that is never asked again before it has answered.

dash-renderer drops a server callback that is still executing when the same callback is requested
again (``eDuplicates`` in its requestedCallbacks observer), and the late answer is thrown away. A
refresh driven straight by an interval shorter than its answer time (a slow PC, a slow link, a
loaded server) therefore never landed, and the wall froze with no error (found under load, issue 21).

So the interval does not drive the refresh. A clientside gate passes a tick on to a Store the
refreshes listen to only when every one of them has answered (a page may hang several refreshes on
one interval: the console's queue, detail, residents' calls and modes): Dash's ``running=`` holds a busy
flag from the request to its answer (a 204 and an error status included). A request lost on the
network leaves the flag set (dash-renderer clears ``running`` only on an answer), so after
``STALE_MS`` the gate lets a tick through anyway, waiting twice as long each time in a row.
"""

from __future__ import annotations

from typing import Any

from dash import Input, Output, State, clientside_callback

from layouts.gate import busy_id, tick_id

STALE_MS = 30_000  # a refresh out for longer than this is taken as lost: the next tick asks again ...
STALE_MAX_MS = 480_000  # ... and each time that happens in a row the wait doubles, up to this

# ``last`` carries the wait before a refresh still out is taken as lost. A server so loaded that its
# answers take longer than STALE_MS would otherwise be asked again every STALE_MS, and every answer
# dropped (the likely cause of a 3D wall frozen for 4 minutes under load 10, stop 36): doubling the
# wait lets the next answer land.
GATE_JS = f"""function(n, last){{
    var busy = Array.prototype.slice.call(arguments, 2).some(Boolean);
    var now = Date.now();
    var wait = (last && last.wait) || {STALE_MS};
    if(busy && last && now - last.at < wait){{ return window.dash_clientside.no_update; }}
    return {{n: n || 0, at: now, wait: busy && last ? Math.min(2 * wait, {STALE_MAX_MS}) : {STALE_MS}}};
}}"""


def gated(interval: str, refreshes: int = 1) -> tuple[Input, list[dict[str, Any]]]:
    """Register the gate of ``interval``: its tick passes only when none of the ``refreshes``
    callbacks listening to it has a request out. Returns the refreshes' Input (the gated tick) and,
    per refresh, the keyword arguments its callback takes (``running=``: its own busy flag)."""
    clientside_callback(
        GATE_JS,
        Output(tick_id(interval), "data"),
        Input(interval, "n_intervals"),
        State(tick_id(interval), "data"),
        *(State(busy_id(interval, k), "data") for k in range(refreshes)),
    )
    flags = [{"running": [(Output(busy_id(interval, k), "data"), True, False)]} for k in range(refreshes)]
    return Input(tick_id(interval), "data"), flags
