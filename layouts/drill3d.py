"""The building drill-down in 3D: the building alone, floors × units × rooms as cells, each cell a
household coloured by what matters (an open alert, a device offline, an elder living alone, rental,
group rental, vacant), a thrown object's path from the window it came from down to the ground.

Hover gives the household's address (52幢2单元402室) and, to the roles that work with named people,
its residents with masked names; the wall display and the property office see no names. That is
decided here, from the principal of the server session, never by the browser.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from auth.masking import NAMED_ROLES, mask_name
from auth.principal import Principal
from core.i18n import t
from geodata.solid import FLOOR_HEIGHT_M, Lines, Mesh, r1
from layouts.drill import BuildingFacts
from layouts.scene3d import BACKGROUND, CATEGORY_COLORS, ELDER_COLOR, OFFLINE_COLOR, SEVERITY_COLORS
from registry.facade import Facade, household_behind, natural_key

CELL_W_M = 4.0  # a household's width on the façade
CELL_D_M = 10.0  # its depth
UNIT_GAP_M = 1.6  # the stairwell between two units
GAP_M = 0.35  # between two cells: the floors and party walls show
THROW_OUT_M = 7.0  # how far from the façade a thrown object lands (drawn, not measured)
THROW_POINTS = 16

# what a cell shows, most important first: a cell takes the first that holds
STATUSES = ("alert", "offline", "elder", "group_rental", "rental", "vacant", "owner")
STATUS_COLORS = {
    "alert": SEVERITY_COLORS["critical"],
    "offline": OFFLINE_COLOR,
    "elder": ELDER_COLOR,
    "group_rental": CATEGORY_COLORS["group_rental"],
    "rental": CATEGORY_COLORS["rental"],
    "vacant": "#2a3142",
    "owner": CATEGORY_COLORS["owner"],
}
WINDOW_COLOR = "#fff6b0"


@dataclass(frozen=True)
class CellLayout:
    """Where each household's cell stands: units left to right as seen from the front, the rooms of a
    landing in the natural order of their labels (as registry/facade.py counts the columns)."""

    columns: dict[int, int]  # unit → its columns (the most rooms on one of its landings, at least 1)
    offsets: dict[int, float]  # unit → x of its first column
    places: dict[str, tuple[int, int, int]]  # household → (unit, floor, position on the landing)
    floors: int
    width: float

    def cell(self, household: str) -> tuple[float, float, float, float]:
        """x0, x1, z0, z1 of a household's cell (without the gaps)."""
        unit, floor, position = self.places[household]
        x0 = self.offsets[unit] + position * CELL_W_M
        return x0, x0 + CELL_W_M, (floor - 1) * FLOOR_HEIGHT_M, floor * FLOOR_HEIGHT_M

    def window(self, household: str, *, back: bool = False) -> tuple[float, float, float]:
        """The centre of the household's window on the front façade (the back one when ``back``)."""
        x0, x1, z0, z1 = self.cell(household)
        return r1((x0 + x1) / 2), (CELL_D_M if back else 0.0), r1((z0 + z1) / 2)


def cell_layout(facts: BuildingFacts) -> CellLayout:
    """The cells of a building's households."""
    landings: dict[tuple[int, int], list[tuple[str, str]]] = defaultdict(list)
    for h in facts.households:
        landings[(h.unit, h.floor)].append((h.room, h.id))
    units = list(range(1, max([facts.units, 1, *(u for u, _ in landings)]) + 1))
    columns = {u: max([len(v) for (uu, _), v in landings.items() if uu == u] or [1]) for u in units}
    offsets: dict[int, float] = {}
    x = 0.0
    for u in units:
        offsets[u] = x
        x += columns[u] * CELL_W_M + UNIT_GAP_M
    places: dict[str, tuple[int, int, int]] = {}
    for (unit, floor), rooms in landings.items():
        for position, (_room, hid) in enumerate(sorted(rooms, key=lambda r: natural_key(r[0]))):
            places[hid] = (unit, floor, position)
    top = max([facts.floors, *(f for _, f in landings)])
    return CellLayout(columns, offsets, places, max(1, top), max(CELL_W_M, x - UNIT_GAP_M))


def throw_path(
    layout: CellLayout, window: tuple[float, float, float], *, back: bool = False
) -> list[tuple[float, float, float]]:
    """A thrown object's path: from the window, out from the façade and down to the ground."""
    x, y, z = window
    out = 1.0 if back else -1.0
    return [
        (x, r1(y + out * THROW_OUT_M * s), r1(z * (1 - s * s)))
        for s in (k / (THROW_POINTS - 1) for k in range(THROW_POINTS))
    ]


@dataclass(frozen=True)
class Throw:
    """A thrown-object alert placed on the building: its window, its household, its path."""

    household: str | None
    window: tuple[float, float, float]
    path: list[tuple[float, float, float]]
    back: bool


def place_throw(
    layout: CellLayout,
    building: str,
    origin: dict[str, Any],
    facade: Facade | None,
    landings: dict[tuple[str, int, int], list[str]],
) -> Throw | None:
    """Where a throw alert's origin (floor, column) lies on the model: the window of the household
    behind it (the same façade rule as the alert, registry/facade.py), or, with no household known,
    the column's share of the façade's width at that floor."""
    try:
        floor, column = int(origin["floor"]), int(origin["column"])
    except (KeyError, TypeError, ValueError):
        return None
    back = bool(facade and facade.reverse)
    household, _why = household_behind(facade, landings, building, floor, column)
    if household is not None and household in layout.places:
        window = layout.window(household, back=back)
    else:
        columns = facade.columns if facade is not None else max(1, sum(layout.columns.values()))
        share = (column - 0.5) / columns if not back else 1 - (column - 0.5) / columns
        z = (min(max(floor, 1), layout.floors) - 0.5) * FLOOR_HEIGHT_M
        window = (r1(layout.width * min(max(share, 0.0), 1.0)), CELL_D_M if back else 0.0, r1(z))
        household = None
    return Throw(household, window, throw_path(layout, window, back=back), back)


def cell_status(
    household: Any,
    people: Sequence[tuple[str, set[str]]],
    devices: Iterable[tuple[str, str]],
    offline: set[str],
    alerting: set[str],
) -> str:
    """What a household's cell shows (the first of ``STATUSES`` that holds)."""
    if household.id in alerting:
        return "alert"
    if any(d in offline for d, _ in devices):
        return "offline"
    if any("elderly_alone" in tags for _, tags in people):
        return "elder"
    return str(household.category) if household.category in STATUSES else "owner"


def hover_text(principal: Principal, facts: BuildingFacts, household: Any, status: str, lang: str) -> str:
    """A cell's hover: the address, what it shows and, for roles that work with named people, the
    residents' masked names (the wall and the property office get no names)."""
    address = t("report.room", lang, building=facts.name, unit=household.unit, room=household.room)
    lines = [address, t(f"model3d.status.{status}", lang)]
    if status not in ("owner", "vacant", "rental", "group_rental"):
        lines[-1] += f" · {t(f'category.{household.category}', lang)}"
    if principal.role in NAMED_ROLES:
        names = [mask_name(name) for name, _ in facts.residents.get(household.id, [])]
        if names:
            lines.append("、".join(n for n in names if n))
    away = facts.away.get(household.id)
    if away:
        lines.append(away.split(" · ")[0] if principal.role not in NAMED_ROLES else away)
    return "<br>".join(lines)


def drill_figure(
    principal: Principal,
    facts: BuildingFacts,
    lang: str,
    *,
    offline: set[str],
    alerts: Sequence[dict[str, Any]],
    facades: dict[str, Facade],
    landings: dict[tuple[str, int, int], list[str]],
    scale: int = 1,
) -> dict[str, Any]:
    """The building's 3D figure. ``alerts``: the open alerts of the building the principal may see."""
    layout = cell_layout(facts)
    alerting = {str(a["subject"]["household"]) for a in alerts if (a.get("subject") or {}).get("household")}
    throws = []
    for a in alerts:
        origin = (a.get("evidence") or {}).get("origin")
        if a.get("type") == "throw" and isinstance(origin, dict):
            device = str((a.get("subject") or {}).get("device", ""))
            placed = place_throw(layout, facts.id, origin, facades.get(device), landings)
            if placed is not None:
                throws.append(placed)
                if placed.household:
                    alerting.add(placed.household)
    meshes = {s: Mesh() for s in STATUSES}
    for h in facts.households:
        if h.id not in layout.places:
            continue
        status = cell_status(h, facts.residents.get(h.id, []), facts.devices.get(h.id, []), offline, alerting)
        x0, x1, z0, z1 = layout.cell(h.id)
        text = hover_text(principal, facts, h, status, lang)
        meshes[status].box(x0 + GAP_M / 2, x1 - GAP_M / 2, 0.0, CELL_D_M, z0 + GAP_M / 2, z1 - GAP_M / 2, text=text)
    data: list[dict[str, Any]] = []
    for status in STATUSES:
        mesh = meshes[status]
        data.append(
            mesh.trace(
                color=STATUS_COLORS[status],
                opacity=1.0 if status != "vacant" else 0.55,
                flatshading=True,
                lighting={"ambient": 0.6, "diffuse": 0.8, "specular": 0.1},
                lightposition={"x": -200, "y": -400, "z": 300},
                hoverinfo="text",
                name=t(f"model3d.status.{status}", lang),
                showlegend=bool(mesh.x),
                meta="pulse" if status == "alert" else status,  # the alert cells pulse (assets/js/scene3d.js)
            )
        )
    paths, windows = Lines(), Mesh()
    for throw in throws:
        paths.add3d(throw.path)
        x, y, z = throw.window
        face = y - 0.15 if not throw.back else y + 0.15
        windows.box(x - 1.2, x + 1.2, face - 0.1, face + 0.1, z - 0.9, z + 0.9, text=t("model3d.throw.window", lang))
    data.append(
        paths.trace(
            line={"color": SEVERITY_COLORS["high"], "width": 8},
            name=t("model3d.throw.path", lang),
            showlegend=bool(throws),
            hoverinfo="name",
            meta="throw",
        )
    )
    data.append(
        windows.trace(color=WINDOW_COLOR, opacity=1.0, flatshading=True, lighting={"ambient": 1.0}, meta="window")
    )
    data.append(_floor_labels(layout, lang))
    data.append(_unit_labels(layout, lang))
    height = layout.floors * FLOOR_HEIGHT_M
    span = max(layout.width, CELL_D_M + THROW_OUT_M * 2, height)
    axis = {"visible": False, "showspikes": False, "showbackground": False}
    return {
        "data": data,
        "layout": {
            "paper_bgcolor": BACKGROUND,
            "margin": {"l": 0, "r": 0, "t": 0, "b": 0},
            "font": {"color": "#e6edf7", "size": 12 * scale},
            "showlegend": True,
            "legend": {"orientation": "h", "x": 0.01, "y": 0.01, "bgcolor": "rgba(13,24,42,0.8)"},
            "uirevision": facts.id,
            "hoverlabel": {"font": {"size": 13 * scale}},
            "scene": {
                "xaxis": {**axis, "range": [-4.0, layout.width + 2.0]},
                "yaxis": {**axis, "range": [-THROW_OUT_M - 2.0, CELL_D_M + THROW_OUT_M + 2.0]},
                "zaxis": {**axis, "range": [0.0, height + 1.0]},
                "aspectmode": "manual",
                "aspectratio": {
                    "x": round((layout.width + 6.0) / span, 3),
                    "y": round((CELL_D_M + 2 * THROW_OUT_M + 4.0) / span, 3),
                    "z": round((height + 1.0) / span, 3),
                },
                "camera": {"eye": {"x": -0.55, "y": -1.45, "z": 0.55}, "center": {"x": 0, "y": 0, "z": -0.05}},
                "bgcolor": BACKGROUND,
            },
        },
    }


def _floor_labels(layout: CellLayout, lang: str) -> dict[str, Any]:
    """1层, 2层, … beside the building's left edge."""
    floors = range(1, layout.floors + 1)
    return {
        "type": "scatter3d",
        "mode": "text",
        "x": [-2.0] * len(floors),
        "y": [0.0] * len(floors),
        "z": [r1((f - 0.5) * FLOOR_HEIGHT_M) for f in floors],
        "text": [t("wall.floor", lang, n=f) for f in floors],
        "textfont": {"color": "#8da2c0"},
        "hoverinfo": "skip",
        "showlegend": False,
    }


def _unit_labels(layout: CellLayout, lang: str) -> dict[str, Any]:
    """1单元, 2单元, … on the ground in front of each unit."""
    units = sorted(layout.offsets)
    return {
        "type": "scatter3d",
        "mode": "text",
        "x": [r1(layout.offsets[u] + layout.columns[u] * CELL_W_M / 2) for u in units],
        "y": [-1.5] * len(units),
        "z": [0.0] * len(units),
        "text": [t("wall.unit", lang, n=u) for u in units],
        "textfont": {"color": "#8da2c0"},
        "hoverinfo": "skip",
        "showlegend": False,
    }
