"""Callbacks of the patrol route editor (layouts/routes.py): every one needs ``routes.edit``, and
every read and write goes through gates.routes.RouteEditor with the server-side principal (the
community in the page's store is only a wish: the editor refuses one outside the caller's scope)."""

from __future__ import annotations

from typing import Any

from dash import Input, Output, State, html, no_update
from dash.exceptions import PreventUpdate

from api.context import stores
from auth.callbacks import page_callback
from auth.principal import current_principal
from callbacks.incidents import click_position
from core.errors import SandtableError
from core.i18n import normalize_lang, t
from gates.routes import RouteEditor, RouteRejected, RouteView
from geodata.gcj02 import shift_geojson
from layouts import ids
from layouts.attrs import data_attrs
from layouts.routes import DEFAULTS
from registry import routes as patrol

STOP_FIELDS = ("checkpoint", "seq", "offset_minutes")


def editor() -> RouteEditor:
    """The route editor on this app's stores."""
    return RouteEditor(stores())


def page_state(state: Any) -> tuple[str, str]:
    """The page's community and language (what the page's own store holds; anything else is refused)."""
    if not isinstance(state, dict) or not isinstance(state.get("community"), str):
        raise PreventUpdate
    return state["community"], normalize_lang(state.get("lang") if isinstance(state.get("lang"), str) else None)


def ids_of(value: Any) -> list[str]:
    """The checkpoint ids of the route's dropdown (a list of texts; anything else is none)."""
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def counter(value: Any) -> int:
    """The page's change counter."""
    return value if isinstance(value, int) else 0


def on_tiles(data: dict[str, Any]) -> dict[str, Any]:
    """GeoJSON in the map's coordinates (GCJ-02 when the tiles are)."""
    settings = stores().settings
    shifted: dict[str, Any] = shift_geojson(data) if settings.tile_url and settings.tile_crs == "gcj02" else data
    return shifted


def summary(route: RouteView, names: dict[str, str], lang: str) -> html.Li:
    """One route of the list: its name, schedule and checkpoints in order."""
    schedule = t(
        "routes.schedule",
        lang,
        interval=route.interval,
        start=f"{route.start_hour:02d}:00",
        end=f"{route.end_hour:02d}:00",
        tolerance=route.tolerance,
        n=len(route.checkpoints),
    )
    order = " → ".join(names.get(device, device) for _seq, device, _offset in route.checkpoints)
    return html.Li(
        className="st-rt-route",
        **data_attrs(route=route.id),
        children=[
            html.Div(route.name, className="st-rt-route-name"),
            html.Div(schedule, className="st-rt-route-meta"),
            html.Div(order, className="st-rt-route-meta"),
        ],
    )


@page_callback(
    "routes.edit",
    Output(ids.ROUTES_LIST, "children"),
    Output(ids.ROUTES_PICK, "options"),
    Output(ids.ROUTES_STOPS, "options"),
    Input(ids.ROUTES_VERSION, "data"),
    State(ids.ROUTES_STATE, "data"),
)
def render_lists(_version: int, state: dict[str, Any]) -> tuple[Any, ...]:
    """The routes and checkpoints of the community, read again after every change."""
    community, lang = page_state(state)
    principal = current_principal()
    try:
        checkpoints = editor().checkpoints(principal, community)
        routes = editor().routes(principal, community)
    except SandtableError:
        raise PreventUpdate from None  # another community than the page's: the editor refused and audited it
    names = {c["id"]: c["name"] or c["id"] for c in checkpoints}
    listing: Any = [summary(r, names, lang) for r in routes] or html.Li(t("routes.none", lang), className="st-muted")
    return listing, route_choices(routes, lang), stop_options(checkpoints)


def route_choices(routes: list[RouteView], lang: str) -> list[dict[str, str]]:
    """The routes to pick for editing, after "new route"."""
    return [{"label": t("routes.new", lang), "value": ""}, *({"label": r.name, "value": r.id} for r in routes)]


def stop_options(checkpoints: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The checkpoints as choices of the route's order (labelled by name)."""
    return [{"label": c["name"] or c["id"], "value": c["id"]} for c in checkpoints]


@page_callback(
    "routes.edit",
    Output(ids.ROUTES_NAME, "value"),
    Output(ids.ROUTES_STOPS, "value"),
    Output(ids.ROUTES_INTERVAL, "value"),
    Output(ids.ROUTES_START, "value"),
    Output(ids.ROUTES_END, "value"),
    Output(ids.ROUTES_TOLERANCE, "value"),
    Output(ids.ROUTES_OFFSETS, "value"),
    Input(ids.ROUTES_PICK, "value"),
    State(ids.ROUTES_STATE, "data"),
    prevent_initial_call=True,
)
def load_route(route_id: str, state: dict[str, Any]) -> tuple[Any, ...]:
    """The picked route in the form (a new route: empty, with a night schedule)."""
    if not route_id:
        return "", [], DEFAULTS["interval"], DEFAULTS["start"], DEFAULTS["end"], DEFAULTS["tolerance"], ""
    community, _lang = page_state(state)
    try:
        routes = editor().routes(current_principal(), community)
    except SandtableError:
        raise PreventUpdate from None
    found = next((r for r in routes if r.id == route_id), None)
    if found is None:
        raise PreventUpdate
    devices = [device for _seq, device, _offset in found.checkpoints]
    offsets = [offset for _seq, _device, offset in found.checkpoints]
    spread = offsets == patrol.spread_offsets(found.interval, len(offsets))
    text = "" if spread else ", ".join(str(o) for o in offsets)
    return found.name, devices, found.interval, found.start_hour, found.end_hour, found.tolerance, text


@page_callback(
    "routes.edit",
    Output(ids.ROUTES_STOPS, "value", allow_duplicate=True),
    Input(ids.ROUTES_CHECKPOINTS, "clickData"),
    State(ids.ROUTES_STOPS, "value"),
    prevent_initial_call=True,
)
def toggle_stop(click: Any, stops: list[str] | None) -> list[str]:
    """A click on a checkpoint adds it to the end of the route, or takes it out."""
    properties = click.get("properties") if isinstance(click, dict) else None
    device = properties.get("id") if isinstance(properties, dict) else None
    if not isinstance(device, str):
        raise PreventUpdate
    current = ids_of(stops)
    return [d for d in current if d != device] if device in current else [*current, device]


@page_callback(
    "routes.edit",
    Output(ids.ROUTES_CHECKPOINTS, "data"),
    Output(ids.ROUTES_LINE, "data"),
    Input(ids.ROUTES_STOPS, "value"),
    Input(ids.ROUTES_VERSION, "data"),
    State(ids.ROUTES_STATE, "data"),
)
def draw(stops: list[str] | None, _version: int, state: dict[str, Any]) -> tuple[Any, Any]:
    """The checkpoints, numbered in the route's order, and the route drawn through them."""
    community, _lang = page_state(state)
    try:
        checkpoints = {c["id"]: c for c in editor().checkpoints(current_principal(), community)}
    except SandtableError:
        raise PreventUpdate from None
    order = {device: i + 1 for i, device in enumerate(ids_of(stops))}
    points = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [c["lon"], c["lat"]]},
                "properties": {"id": c["id"], "name": c["name"], "order": order.get(c["id"])},
            }
            for c in checkpoints.values()
        ],
    }
    path = [[checkpoints[d]["lon"], checkpoints[d]["lat"]] for d in ids_of(stops) if d in checkpoints]
    line = {
        "type": "FeatureCollection",
        "features": [{"type": "Feature", "geometry": {"type": "LineString", "coordinates": path}, "properties": {}}]
        if len(path) > 1
        else [],
    }
    return on_tiles(points), on_tiles(line)


@page_callback(
    "routes.edit",
    Output(ids.ROUTES_PLACE, "data"),
    Output(ids.ROUTES_PLACE_MARK, "data"),
    Input(ids.MAP, "clickData"),
    prevent_initial_call=True,
)
def place(click: Any) -> tuple[Any, Any]:
    """Where a new checkpoint goes: the last click on the map (kept in WGS-84)."""
    position = click_position(click)
    if position is None:
        raise PreventUpdate
    lat, lon = position
    mark = {
        "type": "FeatureCollection",
        "features": [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]}, "properties": {}}],
    }
    return {"lat": lat, "lon": lon}, on_tiles(mark)


def message(text: str, *, ok: bool) -> html.Div:
    """A one-line outcome under a button."""
    return html.Div(text, className="st-msg-ok" if ok else "st-msg-error")


@page_callback(
    "routes.edit",
    Output(ids.ROUTES_CP_MSG, "children"),
    Output(ids.ROUTES_VERSION, "data", allow_duplicate=True),
    Output(ids.ROUTES_STOPS, "value", allow_duplicate=True),
    Output(ids.ROUTES_STOPS, "options", allow_duplicate=True),
    Output(ids.ROUTES_PLACE_MARK, "data", allow_duplicate=True),
    Output(ids.ROUTES_CP_NAME, "value"),
    Input(ids.ROUTES_CP_ADD, "n_clicks"),
    State(ids.ROUTES_CP_NAME, "value"),
    State(ids.ROUTES_PLACE, "data"),
    State(ids.ROUTES_STOPS, "value"),
    State(ids.ROUTES_VERSION, "data"),
    State(ids.ROUTES_STATE, "data"),
    prevent_initial_call=True,
)
def add_checkpoint(
    _clicks: int, name: str | None, where: dict[str, float] | None, stops: list[str] | None, version: int, state: Any
) -> tuple[Any, ...]:
    """Create a checkpoint device where the map was clicked, and add it to the route being edited."""
    community, lang = page_state(state)
    unchanged = (no_update,) * 5
    if not isinstance(where, dict) or not all(isinstance(where.get(k), int | float) for k in ("lat", "lon")):
        return message(t("routes.checkpoint.click_first", lang), ok=False), *unchanged
    edit, principal = editor(), current_principal()
    try:
        label = name if isinstance(name, str) else ""
        device = edit.add_checkpoint(principal, community, label, float(where["lat"]), float(where["lon"]))
    except SandtableError as err:
        return message(err.text(lang), ok=False), *unchanged
    done = message(t("routes.checkpoint.added", lang, name=label.strip()), ok=True)
    # the options come with the value: a dropdown drops a value it has no option for
    options = stop_options(edit.checkpoints(principal, community))
    return done, counter(version) + 1, [*ids_of(stops), device], options, None, ""


def offsets_of(text: Any, count: int) -> tuple[list[int] | None, list[patrol.Problem]]:
    """The offsets typed as ``0, 10, 20`` (None: blank, spread evenly), and what is wrong with them."""
    parts = [p for p in str(text or "").replace("，", ",").replace(" ", ",").split(",") if p]
    if not parts:
        return None, []
    try:
        offsets = [int(p) for p in parts]
    except ValueError:
        return None, [patrol.Problem("offset_minutes", "route.error.offsets_text", {})]
    if len(offsets) != count:
        return None, [patrol.Problem("offset_minutes", "route.error.offsets_count", {"n": count})]
    return offsets, []


def problem_line(problem: patrol.Problem, lang: str) -> html.Li:
    """One problem of the route, with the field (and the checkpoint's place in the route) it is about."""
    where = t(f"routes.field.{problem.field}", lang)
    if problem.field in STOP_FIELDS and problem.row:
        where = t("routes.field.stop", lang, n=problem.row, field=where)
    return html.Li(f"{where}: {problem.text(lang)}")


@page_callback(
    "routes.edit",
    Output(ids.ROUTES_MSG, "children"),
    Output(ids.ROUTES_VERSION, "data", allow_duplicate=True),
    Output(ids.ROUTES_PICK, "value"),
    Output(ids.ROUTES_PICK, "options", allow_duplicate=True),
    Input(ids.ROUTES_SAVE, "n_clicks"),
    State(ids.ROUTES_PICK, "value"),
    State(ids.ROUTES_NAME, "value"),
    State(ids.ROUTES_STOPS, "value"),
    State(ids.ROUTES_INTERVAL, "value"),
    State(ids.ROUTES_START, "value"),
    State(ids.ROUTES_END, "value"),
    State(ids.ROUTES_TOLERANCE, "value"),
    State(ids.ROUTES_OFFSETS, "value"),
    State(ids.ROUTES_VERSION, "data"),
    State(ids.ROUTES_STATE, "data"),
    prevent_initial_call=True,
)
def save(
    _clicks: int,
    route_id: str | None,
    name: str | None,
    stops: list[str] | None,
    interval: int | None,
    start: int | None,
    end: int | None,
    tolerance: int | None,
    offsets_text: str | None,
    version: int,
    state: dict[str, Any],
) -> tuple[Any, ...]:
    """Check and save the route: every problem listed, or the route saved and listed."""
    community, lang = page_state(state)
    edit = editor()
    try:
        devices = ids_of(stops)
        offsets, typed = offsets_of(offsets_text, len(devices))
        draft = patrol.RouteDraft(
            id=route_id if isinstance(route_id, str) and route_id else None,  # None: a new route
            name=name if isinstance(name, str) else None,
            interval=_whole(interval),
            start_hour=_whole(start),
            end_hour=_whole(end),
            tolerance=_whole(tolerance),
            stops=[
                patrol.Stop(device, offset=offsets[i] if offsets else None, row=i + 1)
                for i, device in enumerate(devices)
            ],
        )
        if typed:  # the offsets as typed, with the rest of the route's problems
            raise RouteRejected(problems=typed + edit.problems(current_principal(), community, draft))
        saved = edit.save(current_principal(), community, draft)
    except RouteRejected as err:
        lines = [problem_line(p, lang) for p in err.problems]
        return (
            html.Div(
                className="st-msg-error",
                children=[t("routes.rejected", lang), html.Ul(lines, className="st-rt-problems")],
            ),
            no_update,
            no_update,
            no_update,
        )
    except SandtableError as err:
        return message(err.text(lang), ok=False), no_update, no_update, no_update
    done = message(t("routes.saved", lang, name=str(name or "").strip()), ok=True)
    # the picker's options come with its value (a dropdown drops a value it has no option for)
    return done, counter(version) + 1, saved, route_choices(edit.routes(current_principal(), community), lang)


def _whole(value: Any) -> int | None:
    """A number field's value as a whole number (None when blank; a fraction is kept out by its check)."""
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return -1  # not a number: its range check names the field
    return int(number) if number.is_integer() else -1


@page_callback(
    "routes.edit",
    Output(ids.ROUTES_DELETE, "disabled"),
    Input(ids.ROUTES_PICK, "value"),
)
def deletable(route_id: Any) -> bool:
    """Only a saved route can be deleted."""
    return not (isinstance(route_id, str) and route_id)


@page_callback(
    "routes.edit",
    Output(ids.ROUTES_MSG, "children", allow_duplicate=True),
    Output(ids.ROUTES_VERSION, "data", allow_duplicate=True),
    Output(ids.ROUTES_PICK, "value", allow_duplicate=True),
    Input(ids.ROUTES_DELETE, "n_clicks"),
    State(ids.ROUTES_PICK, "value"),
    State(ids.ROUTES_NAME, "value"),
    State(ids.ROUTES_VERSION, "data"),
    State(ids.ROUTES_STATE, "data"),
    prevent_initial_call=True,
)
def delete(_clicks: int, route_id: Any, name: Any, version: Any, state: Any) -> tuple[Any, ...]:
    """Delete the route being edited; the form goes back to a new route."""
    community, lang = page_state(state)
    if not (isinstance(route_id, str) and route_id):
        raise PreventUpdate
    try:
        editor().delete(current_principal(), community, route_id)
    except SandtableError as err:
        return message(err.text(lang), ok=False), no_update, no_update
    return message(t("routes.deleted", lang, name=str(name or route_id)), ok=True), counter(version) + 1, ""
