"""The console's 接警登记 form: a call to 110, a phone call, a walk-in or a patrol's report, placed by
address search (building or household) or by a click on a small map of the community."""

from __future__ import annotations

from typing import Any

import dash_leaflet as dl
from dash import dcc, html

from alerts.constants import INCIDENT_SOURCES, SEVERITIES
from core.i18n import t
from core.settings import Settings
from layouts import ids
from layouts.map import base_layer, map_bounds, map_center, ns
from registry.models import Community

ERROR_FIELDS = ("source", "summary", "severity", "caller-name", "caller-phone", "place")


def error_id(name: str) -> str:
    """The id of the error line under a field of the form."""
    return f"{ids.INCIDENT_ERROR}-{name}"


def _field(label: str, control: Any, error: str) -> html.Label:
    return html.Label(
        className="st-field",
        children=[html.Span(label), control, html.Div(id=error_id(error), className="st-field-error", role="alert")],
    )


def incident_form(community: Community, lang: str, settings: Settings) -> html.Details:
    """The form, folded until opened (the queue stays in view)."""
    base = f"/api/v1/map/{community.id}"
    picker = dl.MapContainer(
        id=ids.INCIDENT_MAP,
        center=map_center(community, settings),
        zoom=16,
        viewport={"bounds": map_bounds(community, settings), "options": {"padding": [8, 8]}},
        zoomSnap=0.25,
        maxZoom=20,
        minZoom=12,
        attributionControl=bool(settings.tile_url),
        className="st-incident-map",
        children=[
            dl.Pane(name="basemap", style={"zIndex": 150}),
            base_layer(settings, named=False),
            dl.GeoJSON(url=f"{base}/boundary.geojson", style=ns("boundaryStyle"), interactive=False),
            dl.GeoJSON(url=f"{base}/buildings.geojson", style=ns("buildingStyle"), interactive=False),
            dl.LayerGroup(id=ids.INCIDENT_PIN),
        ],
    )
    return html.Details(
        className="st-incident",
        children=[
            html.Summary(t("incident.title", lang), className="st-panel-title st-gap"),
            html.Div(
                className="st-form st-incident-form",
                children=[
                    _field(
                        t("incident.source", lang),
                        dcc.Dropdown(
                            id=ids.INCIDENT_SOURCE,
                            value="110",
                            clearable=False,
                            className="st-select",
                            options=[{"label": t(f"value.{s}", lang), "value": s} for s in INCIDENT_SOURCES],
                        ),
                        "source",
                    ),
                    _field(
                        t("incident.summary", lang),
                        dcc.Textarea(id=ids.INCIDENT_SUMMARY, maxLength=1000),
                        "summary",
                    ),
                    _field(
                        t("incident.severity", lang),
                        dcc.Dropdown(
                            id=ids.INCIDENT_SEVERITY,
                            value="high",
                            clearable=False,
                            className="st-select",
                            options=[{"label": t(f"severity.{s}", lang), "value": s} for s in SEVERITIES],
                        ),
                        "severity",
                    ),
                    _field(
                        t("incident.caller_name", lang),
                        dcc.Input(id=ids.INCIDENT_CALLER_NAME, maxLength=64),
                        "caller-name",
                    ),
                    _field(
                        t("incident.caller_phone", lang),
                        dcc.Input(id=ids.INCIDENT_CALLER_PHONE, maxLength=20, inputMode="tel"),
                        "caller-phone",
                    ),
                    _field(
                        t("incident.place", lang),
                        html.Div(
                            children=[
                                dcc.Input(
                                    id=ids.INCIDENT_ADDRESS,
                                    placeholder=t("incident.place_hint", lang),
                                    debounce=True,
                                    maxLength=40,
                                ),
                                dcc.RadioItems(id=ids.INCIDENT_PLACE, options=[], className="st-radio st-places"),
                                picker,
                            ]
                        ),
                        "place",
                    ),
                    html.Button(t("incident.submit", lang), id=ids.INCIDENT_SUBMIT, className="st-btn st-btn-danger"),
                    html.Div(id=ids.INCIDENT_MSG, className="st-msg", role="status"),
                ],
            ),
        ],
    )
