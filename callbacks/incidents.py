"""Callbacks of the console's 接警登记 form: finding the place (address search or a click on the map)
and registering the incident through closedloop/incidents.py, as the API does. Role and scope come
from the server session; the browser only says what was typed and which community the console shows."""

from __future__ import annotations

from typing import Any

import dash_leaflet as dl
from dash import Input, Output, State, ctx, html, no_update
from dash.exceptions import PreventUpdate

from api.context import services, stores
from auth.callbacks import page_callback
from auth.principal import current_principal
from callbacks.console import community_of, lang_of
from closedloop.incidents import Incidents, PlaceMatch, find_places
from core.errors import InvalidInput, SandtableError
from core.i18n import t
from geodata.gcj02 import from_display, latlng_for_display
from layouts import ids
from layouts.incident_form import ERROR_FIELDS, error_id
from registry.models import Building
from registry.queries import household_labels

POINT = "point"
KEEP = (no_update,) * 5  # the selection, the queue and what was typed stay as they are


def click_position(click: Any) -> tuple[float, float] | None:
    """(lat, lon) in WGS-84 of a click on the picker map (the map is in GCJ-02 when its tiles are)."""
    latlng = click.get("latlng") if isinstance(click, dict) else None
    if isinstance(latlng, dict):
        lat, lon = latlng.get("lat"), latlng.get("lng")
    elif isinstance(latlng, list | tuple) and len(latlng) == 2:
        lat, lon = latlng
    else:
        return None
    if not isinstance(lat, int | float) or not isinstance(lon, int | float):
        return None
    lat, lon = from_display(stores().settings, float(lat), float(lon))
    return round(float(lat), 6), round(float(lon), 6)


def option(match: PlaceMatch) -> dict[str, str]:
    """A place as a choice of the form (the value says what kind of place it is)."""
    return {"label": match.label, "value": f"{match.kind}|{match.id}"}


def chosen_match(community: str, value: Any, lang: str) -> PlaceMatch | None:
    """The place chosen before (kept among the choices while the address is retyped)."""
    if not isinstance(value, str) or "|" not in value:
        return None
    kind, key = value.split("|", 1)
    if kind == POINT:
        lat, _, lon = key.partition(",")
        return PlaceMatch(POINT, key, t("incident.place_point", lang, lat=lat, lon=lon))
    with stores().sessions() as session:
        if kind == "household":
            label = household_labels(session, [key], lang).get(key)
        elif kind == "building":
            building = session.get(Building, key)
            ok = building is not None and building.community_id == community
            label = (building.name if lang == "zh" else building.name_en or building.name) if ok else None  # type: ignore[union-attr]
        else:
            label = None
    return PlaceMatch(kind, key, label) if label else None


@page_callback(
    "view.console",
    Output(ids.INCIDENT_PLACE, "options"),
    Output(ids.INCIDENT_PLACE, "value"),
    Output(ids.INCIDENT_PIN, "children"),
    Input(ids.INCIDENT_ADDRESS, "value"),
    Input(ids.INCIDENT_MAP, "clickData"),
    State(ids.INCIDENT_PLACE, "value"),
    State(ids.CONSOLE_SELECTED, "data"),
    prevent_initial_call=True,
)
def places(address: Any, click: Any, current: Any, selected: Any) -> tuple[Any, Any, Any]:
    """The places matching the typed address, or the point clicked on the map (chosen at once)."""
    community = community_of(current_principal(), selected)
    lang = lang_of(selected)
    if ctx.triggered_id == ids.INCIDENT_MAP:
        position = click_position(click)
        if position is None:
            raise PreventUpdate
        point = PlaceMatch(POINT, f"{position[0]},{position[1]}", "")
        found = chosen_match(community, f"{POINT}|{point.id}", lang)
        assert found is not None
        return (
            [option(found)],
            f"{POINT}|{point.id}",
            [dl.CircleMarker(center=latlng_for_display(stores().settings, list(position)), radius=9)],
        )
    text = address.strip() if isinstance(address, str) else ""
    with stores().sessions() as session:
        matches = find_places(session, community, text, lang) if text else []
    kept = chosen_match(community, current, lang)
    options = [option(m) for m in matches]
    if not matches:
        empty = [{"label": t("incident.place_none", lang), "value": "", "disabled": True}] if text else []
        return ([option(kept)] if kept else []) + empty, current if kept else None, no_update
    return options, options[0]["value"], []


def place_of(value: Any) -> dict[str, Any] | None:
    """The API's place object of a chosen place."""
    if not isinstance(value, str) or "|" not in value:
        return None
    kind, key = value.split("|", 1)
    if kind == POINT:
        lat, _, lon = key.partition(",")
        return {"lat": lat, "lon": lon}
    return {kind: key} if kind in ("building", "household") else None


def error_slot(field: str) -> str:
    """The form's error line that shows a refusal of this field."""
    if field.startswith("place"):
        return "place"
    return field.replace(".", "-") if field.replace(".", "-") in ERROR_FIELDS else ""


@page_callback(
    "view.console",
    [Output(error_id(name), "children") for name in ERROR_FIELDS],
    Output(ids.INCIDENT_MSG, "children"),
    Output(ids.CONSOLE_SELECTED, "data", allow_duplicate=True),
    Output(ids.CONSOLE_DONE, "data", allow_duplicate=True),
    Output(ids.INCIDENT_SUMMARY, "value"),
    Output(ids.INCIDENT_CALLER_NAME, "value"),
    Output(ids.INCIDENT_CALLER_PHONE, "value"),
    Input(ids.INCIDENT_SUBMIT, "n_clicks"),
    State(ids.INCIDENT_SOURCE, "value"),
    State(ids.INCIDENT_SUMMARY, "value"),
    State(ids.INCIDENT_SEVERITY, "value"),
    State(ids.INCIDENT_CALLER_NAME, "value"),
    State(ids.INCIDENT_CALLER_PHONE, "value"),
    State(ids.INCIDENT_PLACE, "value"),
    State(ids.CONSOLE_SELECTED, "data"),
    State(ids.CONSOLE_DONE, "data"),
    prevent_initial_call=True,
)
def register(
    clicks: Any,
    source: Any,
    summary: Any,
    severity: Any,
    caller_name: Any,
    caller_phone: Any,
    place: Any,
    selected: Any,
    done: Any,
) -> tuple[Any, ...]:
    """Register the incident; the new alert is then selected in the queue and the form is emptied for
    the next call (on a refusal everything typed stays)."""
    if not clicks:
        raise PreventUpdate
    principal = current_principal()
    community = community_of(principal, selected)
    lang = lang_of(selected)
    body = {
        "community": community,
        "source": source,
        "summary": summary if isinstance(summary, str) else "",
        "severity": severity,
        "place": place_of(place),
        "caller": {"name": caller_name or "", "phone": caller_phone or ""},
    }
    errors = dict.fromkeys(ERROR_FIELDS, "")
    try:
        alert = Incidents(services().loop).report(principal, body)
    except InvalidInput as err:
        slot = error_slot(str(err.values.get("field", "")))
        if slot:
            errors[slot] = err.text(lang)
            return *errors.values(), "", *KEEP
        return *errors.values(), html.Div(err.text(lang), className="st-msg-error"), *KEEP
    except SandtableError as err:
        return *errors.values(), html.Div(err.text(lang), className="st-msg-error"), *KEEP
    label = t(f"alert.type.{alert['type']}", lang)
    message = html.Div(t("incident.done", lang, label=label), className="st-msg-ok")
    count = (done if isinstance(done, int) else 0) + 1
    return *errors.values(), message, {**selected, "alert": alert["id"]}, count, "", "", ""
