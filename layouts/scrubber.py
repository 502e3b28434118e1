"""The time scrubber (回放, issue #19): on a map page, pick a past moment T (a slider over the last
days, or a typed date and time), play from T at 1×, 10× or 60×, and go back to live. While not live
a banner says so ("回放 2026-12-05 01:12"); the callbacks (callbacks/scrubber.py) draw the map as it
was at T from memory.state, and hold the page's live polling."""

from __future__ import annotations

import datetime as dt
from typing import Any

from dash import dcc, html
from dash.exceptions import PreventUpdate

from core.errors import InvalidInput
from core.i18n import t
from core.timefmt import SHANGHAI

SCRUB_OPEN = "scrub-open"
SCRUB_PANEL = "scrub-panel"
SCRUB_SLIDER = "scrub-slider"
SCRUB_TIME = "scrub-time"
SCRUB_GO = "scrub-go"
SCRUB_PLAY = "scrub-play"
SCRUB_SPEED = "scrub-speed"
SCRUB_LIVE = "scrub-live"
SCRUB_BANNER = "scrub-banner"
SCRUB_MSG = "scrub-msg"
SCRUB_STATE = "scrub-state"
SCRUB_TICK = "scrub-tick"

DAYS = 7  # the slider's reach back
SPEEDS = (1, 10, 60)
TICK_MS = 1000
MINUTE = 60_000


def scrubber(community: str, lang: str) -> html.Div:
    """The control (a 回放 button that opens the panel) and its banner, for a map's wrapper."""
    marks = {-d * 1440: t("scrubber.days_ago", lang, n=d) for d in range(DAYS, 0, -1)}
    marks[0] = t("scrubber.now", lang)
    return html.Div(
        className="st-scrubber",
        children=[
            html.Div(id=SCRUB_BANNER, className="st-replay-banner st-hidden", role="status"),
            html.Button(t("scrubber.open", lang), id=SCRUB_OPEN, className="st-btn st-scrub-open"),
            html.Div(
                id=SCRUB_PANEL,
                className="st-scrub-panel st-hidden",
                children=[
                    dcc.Slider(
                        id=SCRUB_SLIDER,
                        min=-DAYS * 1440,
                        max=0,
                        step=1,
                        value=-60,
                        marks=marks,
                        included=False,
                        updatemode="mouseup",
                        allow_direct_input=False,
                        className="st-scrub-slider",
                    ),
                    html.Div(
                        className="st-scrub-row",
                        children=[
                            dcc.Input(
                                id=SCRUB_TIME,
                                type="text",
                                placeholder="2026-12-05 01:12",
                                debounce=True,
                                className="st-scrub-time",
                            ),
                            html.Button(t("scrubber.go", lang), id=SCRUB_GO, className="st-btn"),
                            html.Button(t("scrubber.play", lang), id=SCRUB_PLAY, className="st-btn"),
                            dcc.RadioItems(
                                id=SCRUB_SPEED,
                                options=[{"label": f"{x}×", "value": x} for x in SPEEDS],
                                value=1,
                                inline=True,
                                className="st-scrub-speed",
                            ),
                            html.Button(t("scrubber.live", lang), id=SCRUB_LIVE, className="st-btn st-scrub-live"),
                            html.Span(id=SCRUB_MSG, className="st-msg"),
                        ],
                    ),
                ],
            ),
            dcc.Store(id=SCRUB_STATE, data=initial_state(community, lang)),
            dcc.Interval(id=SCRUB_TICK, interval=TICK_MS, disabled=True),
        ],
    )


def initial_state(community: str, lang: str) -> dict[str, Any]:
    """Live: no replay time, not playing."""
    return {"community": community, "lang": lang, "at": None, "playing": False, "speed": 1, "open": False}


def parse_local(text: str) -> int:
    """A typed local time (Asia/Shanghai) ``2026-12-05 01:12`` as epoch ms; InvalidInput otherwise."""
    try:
        value = dt.datetime.strptime(text.strip(), "%Y-%m-%d %H:%M")
    except ValueError as err:
        raise InvalidInput(key="scrubber.bad_time", field="at") from err
    return int(value.replace(tzinfo=SHANGHAI).timestamp() * 1000)


def whole(value: Any) -> int | None:
    """An integer the browser sent, or None for anything else."""
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) and abs(value) < 1e15 else None


def next_state(state: dict[str, Any], trigger: Any, values: dict[str, Any], now: int) -> dict[str, Any]:
    """The scrubber's state after one user action or tick (raises InvalidInput for a bad time)."""
    out = dict(state)
    at = out["at"] = whole(out.get("at"))
    minutes = min(0, whole(values["slider"]) or 0)
    if trigger == SCRUB_OPEN:
        out.update(open=True, playing=False, at=at if at is not None else now + minutes * MINUTE)
    elif trigger == SCRUB_SLIDER:
        out.update(at=now + minutes * MINUTE, playing=False)
    elif trigger in (SCRUB_GO, SCRUB_TIME):
        if not values["time"] or not isinstance(values["time"], str):
            raise PreventUpdate
        out.update(at=parse_local(values["time"]), playing=False)
    elif trigger == SCRUB_PLAY and at is not None:
        out["playing"] = not out.get("playing")
    elif trigger == SCRUB_SPEED:
        out["speed"] = values["speed"] if values["speed"] in SPEEDS else 1
    elif trigger == SCRUB_TICK and at is not None and out.get("playing"):
        out["at"] = at + (out["speed"] if out.get("speed") in SPEEDS else 1) * TICK_MS
        if out["at"] >= now:  # caught up with the present: live again
            out.update(at=None, playing=False, open=False)
    elif trigger == SCRUB_LIVE:
        out.update(at=None, playing=False, open=False)
    return out
