"""The report's pictures, drawn with matplotlib's object API (no pyplot: safe in a web worker's
threads): the map of a community's alerts and patrol coverage, and the charts. Each returns PNG bytes."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

import matplotlib
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, PathPatch
from matplotlib.path import Path as MplPath
from matplotlib.ticker import MaxNLocator
from PIL import Image

from core.i18n import t
from reports import calc
from reports.model import MapData

SEVERITY_COLORS = {"low": "#4fa3d9", "medium": "#f0a020", "high": "#f05a36", "critical": "#d4145a"}
BUILDING_COLORS = {
    "owner": "#d5dde8",
    "rental": "#5b8def",
    "group_rental": "#1f3fa8",
    "vacant": "#eeeeee",
    "public": "#e6dccb",
}
CHECKPOINT_COLORS = {"good": "#2e9d5b", "fair": "#e3a008", "poor": "#d64545", "none": "#9aa5b1"}
INK = "#1d2b3a"
GRID = "#dde3ea"
ACCENT = "#2f6fd6"
DPI = 200
MM = 1 / 25.4


def _figure(width_mm: float, height_mm: float) -> Figure:
    fig = Figure(figsize=(width_mm * MM, height_mm * MM), dpi=DPI)
    fig.set_facecolor("white")
    return fig


def _png(fig: Figure, *, tight: bool = False) -> bytes:
    """The figure as an opaque RGB PNG (an alpha channel would become a soft mask in the PDF)."""
    buffer = io.BytesIO()
    extra: dict[str, Any] = {"bbox_inches": "tight", "pad_inches": 0.04} if tight else {}
    fig.savefig(buffer, format="png", dpi=DPI, facecolor="white", **extra)
    buffer.seek(0)
    with Image.open(buffer) as img:
        out = io.BytesIO()
        img.convert("RGB").save(out, format="PNG", optimize=True)
    return out.getvalue()


def use_family(family: str) -> None:
    """Draw every text in the report's CJK face, falling back to DejaVu Sans for other glyphs.

    Set once per process and never restored: every report draws with the same face, so threads
    rendering at the same time agree (an rc_context restored by one would pull it from another)."""
    wanted = [family, "DejaVu Sans"]
    if matplotlib.rcParams["font.sans-serif"][:2] != wanted:
        matplotlib.rcParams["font.sans-serif"] = wanted
        matplotlib.rcParams["font.family"] = ["sans-serif"]
        matplotlib.rcParams["axes.unicode_minus"] = False


def _style(ax: Any, family: str) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.spines[["left", "bottom"]].set_color("#9aa5b1")
    ax.tick_params(colors=INK, labelsize=7)


def _empty(ax: Any, family: str, lang: str) -> None:
    ax.set_axis_off()
    ax.text(0.5, 0.5, t("report.no_data", lang), ha="center", va="center", color="#7b8794", fontsize=9, family=family)


# --- map ------------------------------------------------------------------------------------------
def _rings(geometry: dict[str, Any] | None) -> list[list[list[float]]]:
    """The rings of a Polygon or MultiPolygon (exterior and holes)."""
    if not geometry:
        return []
    if geometry.get("type") == "Polygon":
        return list(geometry.get("coordinates") or [])
    if geometry.get("type") == "MultiPolygon":
        return [ring for polygon in geometry.get("coordinates") or [] for ring in polygon]
    return []


def _lines(geometry: dict[str, Any]) -> list[list[list[float]]]:
    if geometry.get("type") == "LineString":
        return [geometry.get("coordinates") or []]
    if geometry.get("type") == "MultiLineString":
        return list(geometry.get("coordinates") or [])
    return []


def checkpoint_class(on_time_pct: float | None) -> str:
    """good (≥ 90 % on time), fair (≥ 70 %), poor, or none (no round in the period)."""
    if on_time_pct is None:
        return "none"
    if on_time_pct >= 90:
        return "good"
    if on_time_pct >= 70:
        return "fair"
    return "poor"


def community_map(m: MapData, family: str, lang: str, width_mm: float = 180, height_mm: float = 128) -> bytes:
    """The community's boundary and buildings (rentals in blue), the period's alerts by severity and
    the patrol checkpoints coloured by how often they were checked on time."""
    fig = _figure(width_mm, height_mm)
    ax = fig.add_axes((0.01, 0.01, 0.70, 0.98))
    ax.set_axis_off()
    lats = [p[1] for ring in _rings(m.boundary) for p in ring] or [a[0] for a in m.alerts] or [0.0]
    lat0 = sum(lats) / len(lats)
    kx = math.cos(math.radians(lat0))

    def patch(rings: list[list[list[float]]], **style: Any) -> None:
        vertices: list[tuple[float, float]] = []
        codes: list[Any] = []
        for ring in rings:
            if len(ring) < 3:
                continue
            vertices += [(p[0] * kx, p[1]) for p in ring] + [(ring[0][0] * kx, ring[0][1])]
            codes += [MplPath.MOVETO] + [MplPath.LINETO] * (len(ring) - 1) + [MplPath.CLOSEPOLY]
        if vertices:
            ax.add_patch(PathPatch(MplPath(vertices, codes), **style))

    patch(_rings(m.boundary), facecolor="#f6f8fb", edgecolor=ACCENT, linewidth=1.2, zorder=1)
    for geometry in m.paths:
        for line in _lines(geometry):
            ax.plot([p[0] * kx for p in line], [p[1] for p in line], color="#c3ccd6", linewidth=0.6, zorder=2)
    for geometry, category in m.buildings:
        patch(
            _rings(geometry),
            facecolor=BUILDING_COLORS.get(category, BUILDING_COLORS["owner"]),
            edgecolor="#8795a8",
            linewidth=0.3,
            zorder=3,
        )
    for severity in reversed(calc.SEVERITY_RANK):  # critical drawn last, on top
        points = [(lon * kx, lat) for lat, lon, sev in m.alerts if sev == severity]
        if points:
            ax.scatter(
                [p[0] for p in points],
                [p[1] for p in points],
                s=22,
                c=SEVERITY_COLORS[severity],
                edgecolors="white",
                linewidths=0.5,
                zorder=6,
            )
    for cls in ("none", "poor", "fair", "good"):
        points = [(lon * kx, lat) for lat, lon, share in m.checkpoints if checkpoint_class(share) == cls]
        if points:
            ax.scatter(
                [p[0] for p in points],
                [p[1] for p in points],
                s=26,
                marker="D",
                c=CHECKPOINT_COLORS[cls],
                edgecolors=INK,
                linewidths=0.5,
                zorder=5,
            )
    ax.set_aspect("equal")
    ax.autoscale_view()
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    pad_x, pad_y = (x1 - x0) * 0.03, (y1 - y0) * 0.03
    ax.set_xlim(x0 - pad_x, x1 + pad_x)
    ax.set_ylim(y0 - pad_y * 3, y1 + pad_y)
    _scale_bar(ax, family, lang)
    # legend on the right: alerts (with counts), checkpoints, buildings
    counts = {s: sum(1 for a in m.alerts if a[2] == s) for s in SEVERITY_COLORS}
    handles: list[Any] = [Line2D([], [], linestyle="none", label=t("report.map.alerts", lang))]
    for severity in ("critical", "high", "medium", "low"):
        handles.append(
            Line2D(
                [],
                [],
                marker="o",
                linestyle="none",
                markersize=5,
                markerfacecolor=SEVERITY_COLORS[severity],
                markeredgecolor="white",
                label=f"{t(f'severity.{severity}', lang)}  {counts[severity]}",
            )
        )
    handles.append(Line2D([], [], linestyle="none", label=t("report.map.checkpoints", lang)))
    for cls in ("good", "fair", "poor", "none"):
        handles.append(
            Line2D(
                [],
                [],
                marker="D",
                linestyle="none",
                markersize=5,
                markerfacecolor=CHECKPOINT_COLORS[cls],
                markeredgecolor=INK,
                label=t(f"report.map.cp.{cls}", lang),
            )
        )
    handles.append(Line2D([], [], linestyle="none", label=t("layer.buildings", lang)))
    for category in ("owner", "rental", "group_rental", "vacant", "public"):
        handles.append(
            Patch(
                facecolor=BUILDING_COLORS[category],
                edgecolor="#8795a8",
                linewidth=0.4,
                label=t(f"legend.{category}", lang),
            )
        )
    legend = fig.legend(
        handles=handles,
        loc="center left",
        bbox_to_anchor=(0.72, 0.5),
        frameon=False,
        prop={"family": family, "size": 7},
        handlelength=1.2,
        labelspacing=0.55,
    )
    for text in legend.get_texts():
        if text.get_text() in (
            t("report.map.alerts", lang),
            t("report.map.checkpoints", lang),
            t("layer.buildings", lang),
        ):
            text.set_fontweight("bold")
            text.set_color(ACCENT)
    return _png(fig, tight=True)


def _scale_bar(ax: Any, family: str, lang: str) -> None:
    """A 100 m (or 200 m) scale bar and a north arrow in the lower left corner."""
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    metres_per_degree = 111_320.0
    width_m = (y1 - y0) * metres_per_degree  # x is scaled by cos(lat): the same metres per unit as y
    length_m = 100 if width_m < 1500 else 200 if width_m < 3000 else 500
    length = length_m / metres_per_degree
    bx, by = x0 + (x1 - x0) * 0.04, y0 + (y1 - y0) * 0.04
    ax.plot([bx, bx + length], [by, by], color=INK, linewidth=2, solid_capstyle="butt", zorder=7)
    ax.text(bx + length / 2, by + (y1 - y0) * 0.012, f"{length_m} m", ha="center", va="bottom", fontsize=6, color=INK)
    nx, ny = bx + length + (x1 - x0) * 0.04, by
    ax.annotate(
        t("report.map.north", lang),
        xy=(nx, ny + (y1 - y0) * 0.07),
        xytext=(nx, ny),
        ha="center",
        va="top",
        fontsize=7,
        family=family,
        color=INK,
        arrowprops={"arrowstyle": "-|>", "color": INK, "linewidth": 0.8},
        zorder=7,
    )


def overview_map(points: Sequence[tuple[str, float, float, int]], family: str, lang: str) -> bytes:
    """Many communities: their centres, sized by the period's alerts."""
    fig = _figure(180, 120)
    ax = fig.add_axes((0.04, 0.06, 0.92, 0.9))
    if not points:
        _empty(ax, family, lang)
        return _png(fig)
    lat0 = sum(p[1] for p in points) / len(points)
    kx = math.cos(math.radians(lat0))
    biggest = max(p[3] for p in points) or 1
    ax.scatter(
        [p[2] * kx for p in points],
        [p[1] for p in points],
        s=[8 + 160 * p[3] / biggest for p in points],
        c=[SEVERITY_COLORS["high"] if p[3] else "#9aa5b1" for p in points],
        alpha=0.7,
        edgecolors="white",
        linewidths=0.4,
    )
    ax.set_aspect("equal")
    ax.set_axis_off()
    return _png(fig)


# --- charts ---------------------------------------------------------------------------------------
def bars_by_type(items: Sequence[tuple[str, int]], family: str, lang: str) -> bytes:
    """Alerts by type, most frequent on top."""
    height = 18 + 7 * max(1, len(items))
    fig = _figure(88, min(110, max(48, height)))
    ax = fig.add_subplot()
    if not items:
        _empty(ax, family, lang)
        return _png(fig)
    labels = [label for label, _ in items][::-1]
    values = [n for _, n in items][::-1]
    ax.barh(labels, values, color=ACCENT, height=0.6)
    for y, value in enumerate(values):
        ax.text(value, y, f" {value}", va="center", fontsize=7, color=INK)
    ax.set_xlim(0, max(values) * 1.18)
    ax.xaxis.set_major_locator(_int_locator())
    _style(ax, family)
    fig.tight_layout(pad=0.4)
    return _png(fig)


def _int_locator() -> Any:
    return MaxNLocator(integer=True, nbins=5)


def bars_by_hour(hours: Sequence[int], family: str, lang: str) -> bytes:
    """Alerts by local hour of the day."""
    fig = _figure(88, 52)
    ax = fig.add_subplot()
    if not any(hours):
        _empty(ax, family, lang)
        return _png(fig)
    ax.bar(range(24), hours, color=ACCENT, width=0.75)
    ax.set_xticks(range(0, 24, 3))
    ax.set_xlim(-0.7, 23.7)
    ax.yaxis.set_major_locator(_int_locator())
    ax.set_xlabel(t("report.col.hour", lang), fontsize=7, family=family, color=INK)
    ax.grid(axis="y", color=GRID, linewidth=0.5)
    ax.set_axisbelow(True)
    _style(ax, family)
    fig.tight_layout(pad=0.4)
    return _png(fig)


def stage_boxes(minutes: dict[str, list[float]], targets: dict[str, float | None], family: str, lang: str) -> bytes:
    """The distribution of minutes per handling stage, with the SLA target as a red tick."""
    fig = _figure(88, 58)
    ax = fig.add_subplot()
    stages = list(calc.STAGES)
    if not any(minutes.get(s) for s in stages):
        _empty(ax, family, lang)
        return _png(fig)
    data = [minutes.get(s) or [math.nan] for s in stages]
    ax.boxplot(
        data,
        widths=0.5,
        showfliers=True,
        patch_artist=True,
        boxprops={"facecolor": "#dbe7fb", "edgecolor": ACCENT, "linewidth": 0.8},
        medianprops={"color": INK, "linewidth": 1.0},
        whiskerprops={"color": ACCENT, "linewidth": 0.7},
        capprops={"color": ACCENT, "linewidth": 0.7},
        flierprops={"marker": "o", "markersize": 2.5, "markerfacecolor": ACCENT, "markeredgecolor": "none"},
    )
    for i, stage in enumerate(stages, start=1):
        target = targets.get(stage)
        if target is not None:
            ax.plot([i - 0.32, i + 0.32], [target, target], color="#d64545", linewidth=1.1, linestyle="--")
    ax.set_xticks(
        range(1, len(stages) + 1), [f"{t(f'stage.{s}', lang)}\nn={len(minutes.get(s) or [])}" for s in stages]
    )
    ax.text(0, 1.02, t("report.minutes", lang), transform=ax.transAxes, fontsize=7, color=INK, va="bottom")
    ax.set_ylim(bottom=0)
    ax.grid(axis="y", color=GRID, linewidth=0.5)
    ax.set_axisbelow(True)
    _style(ax, family)
    fig.tight_layout(pad=0.4)
    return _png(fig)


def sla_bars(compliance: dict[str, float | None], family: str, lang: str) -> bytes:
    """SLA compliance per stage (%)."""
    fig = _figure(88, 58)
    ax = fig.add_subplot()
    stages = list(calc.STAGES)
    if all(compliance.get(s) is None for s in stages):
        _empty(ax, family, lang)
        return _png(fig)
    values = [compliance.get(s) for s in stages]
    colors = [
        "#cfd6de" if v is None else ("#2e9d5b" if v >= 90 else "#e3a008" if v >= 70 else "#d64545") for v in values
    ]
    ax.bar(range(len(stages)), [v or 0 for v in values], color=colors, width=0.55)
    for i, v in enumerate(values):
        ax.text(i, (v or 0) + 2, "—" if v is None else f"{v:g}%", ha="center", fontsize=7, color=INK)
    ax.set_xticks(range(len(stages)), [t(f"stage.{s}", lang) for s in stages])
    ax.set_ylim(0, 112)
    ax.axhline(90, color="#9aa5b1", linewidth=0.6, linestyle=":")
    ax.text(0, 1.02, "%", transform=ax.transAxes, fontsize=7, color=INK, va="bottom")
    _style(ax, family)
    fig.tight_layout(pad=0.4)
    return _png(fig)


def gate_hours(series: dict[str, list[int]], family: str, lang: str) -> bytes:
    """Entries and exits by local hour of the day."""
    fig = _figure(88, 52)
    ax = fig.add_subplot()
    entries, exits = series.get("in", [0] * 24), series.get("out", [0] * 24)
    if not any(entries) and not any(exits):
        _empty(ax, family, lang)
        return _png(fig)
    ax.plot(range(24), entries, color=ACCENT, linewidth=1.2, marker="o", markersize=2, label=t("report.gate.in", lang))
    ax.plot(
        range(24), exits, color="#f0a020", linewidth=1.2, marker="o", markersize=2, label=t("report.gate.out", lang)
    )
    ax.set_xticks(range(0, 24, 3))
    ax.set_xlabel(t("report.col.hour", lang), fontsize=7, family=family, color=INK)
    ax.legend(prop={"family": family, "size": 7}, frameon=False)
    ax.grid(axis="y", color=GRID, linewidth=0.5)
    ax.set_ylim(bottom=0)
    _style(ax, family)
    fig.tight_layout(pad=0.4)
    return _png(fig)


def patrol_bars(routes: Sequence[tuple[str, int, int, int]], family: str, lang: str) -> bytes:
    """Checkpoint visits per route: on time, late, missed (stacked)."""
    height = 26 + 9 * max(1, len(routes))
    fig = _figure(88, min(110, height))
    ax = fig.add_subplot()
    if not routes:
        _empty(ax, family, lang)
        return _png(fig)
    names = [r[0] for r in routes][::-1]
    on_time = [r[1] for r in routes][::-1]
    late = [r[2] for r in routes][::-1]
    missed = [r[3] for r in routes][::-1]
    ax.barh(names, on_time, color=CHECKPOINT_COLORS["good"], height=0.55, label=t("report.col.on_time", lang))
    ax.barh(names, late, left=on_time, color=CHECKPOINT_COLORS["fair"], height=0.55, label=t("report.col.late", lang))
    ax.barh(
        names,
        missed,
        left=[a + b for a, b in zip(on_time, late, strict=True)],
        color=CHECKPOINT_COLORS["poor"],
        height=0.55,
        label=t("report.col.missed_points", lang),
    )
    ax.legend(
        prop={"family": family, "size": 6.5}, frameon=False, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=3
    )
    ax.set_ylim(-0.6, len(routes) - 0.4)
    ax.xaxis.set_major_locator(_int_locator())
    _style(ax, family)
    fig.tight_layout(pad=0.4)
    return _png(fig)


def availability_bars(items: Sequence[tuple[str, float | None]], family: str, lang: str) -> bytes:
    """Availability per device type over the period (%)."""
    height = 18 + 7 * max(1, len(items))
    fig = _figure(88, min(100, max(48, height)))
    ax = fig.add_subplot()
    if not items:
        _empty(ax, family, lang)
        return _png(fig)
    labels = [label for label, _ in items][::-1]
    values = [v if v is not None else 0 for _, v in items][::-1]
    low = min(values)
    ax.barh(labels, values, color=[("#2e9d5b" if v >= 99 else "#e3a008" if v >= 95 else "#d64545") for v in values])
    for y, (_, v) in enumerate(list(items)[::-1]):
        ax.text(values[y], y, " —" if v is None else f" {v:g}%", va="center", fontsize=6.5, color=INK, clip_on=False)
    ax.set_xlim(max(0, math.floor(min(low, 90) / 10) * 10), 100)
    _style(ax, family)
    fig.tight_layout(pad=0.4)
    fig.subplots_adjust(right=0.86)  # room for the labels past 100 %
    return _png(fig)
