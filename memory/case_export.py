"""The export of a case file (interfaces §9): ``timeline.csv``, ``timeline.json``, ``case.pdf`` and
``manifest.json`` (the SHA-256 of each of the other three, the case, who exported it and when, the
query and the counts), so that an export can be shown to be complete and unaltered.

The timeline is the case's query re-run against the archive (``memory.search.rows``, scoped to the
exporter) merged with the pins, which are first-class (marked, and kept even after the archive has
purged what they copy), ordered by time. People read places, devices and people by their names
(registry labels, masked per role), times in Asia/Shanghai; ID numbers and phones are masked.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import math
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fpdf import FPDF
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Polygon as MplPolygon
from shapely import Polygon
from sqlalchemy.orm import Session

from auth.labels import labels
from auth.masking import mask_id_number, mask_phone
from auth.principal import Principal
from core.errors import InvalidInput
from core.i18n import TABLE, t
from core.settings import Settings
from core.timefmt import local_text, parse_rfc3339
from memory.cases import case_for_export
from memory.search import SearchQuery, item_of, rows
from registry import queries
from registry.models import Community
from reports import charts
from reports.fonts import matplotlib_family, report_fonts
from reports.model import Column, Table
from reports.pdf import FONT, INK, MUTED, ReportPDF

FILES = ("timeline.csv", "timeline.json", "case.pdf")  # hashed in the manifest
MANIFEST = "manifest.json"
MAX_ROWS = 20_000  # rows of the re-run query in one export (the manifest says when it was cut)
PDF_ROWS = 600
COLUMNS = ("time", "pinned", "kind", "type", "place", "device", "who", "plate", "detail", "id")
MASKED = {"id_number": mask_id_number, "phone": mask_phone, "contact": mask_phone}
HIDDEN = ("image", "id_hash")
KIND_COLORS = {"event": "#2f6fd6", "alert": "#d4145a"}


@dataclass
class Export:
    """What an export wrote."""

    case: str
    out: Path
    files: dict[str, str]  # name → SHA-256 (hex)
    counts: dict[str, int]
    manifest: dict[str, Any]


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file (hex)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(folder: Path) -> list[str]:
    """The files of an export whose SHA-256 no longer matches its manifest (empty: unaltered)."""
    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    wrong = []
    for name, digest in manifest["files"].items():
        path = folder / name
        if not path.is_file() or sha256_of(path) != digest:
            wrong.append(name)
    return wrong


# --- the query --------------------------------------------------------------------------------
def polygon_of(geojson: Any) -> Polygon | None:
    """The shapely polygon of a stored GeoJSON Polygon (None when there is none)."""
    if not isinstance(geojson, dict) or geojson.get("type") != "Polygon":
        return None
    ring = (geojson.get("coordinates") or [[]])[0]
    shape = Polygon([(float(p[0]), float(p[1])) for p in ring]) if len(ring) >= 4 else None
    return shape if shape is not None and shape.is_valid else None


def search_query(query: dict[str, Any], principal: Principal) -> SearchQuery | None:
    """The archive query of a case's stored search body, scoped to the exporter (None without a window)."""
    try:
        start, end = parse_rfc3339(str(query["from"])), parse_rfc3339(str(query["to"]))
    except (KeyError, ValueError):
        return None

    def text(key: str) -> str | None:
        value = query.get(key)
        return str(value) if value else None

    types = query.get("types") or ()
    grids = frozenset({principal.grid}) if principal.role == "grid_worker" and principal.grid else None
    return SearchQuery(
        community=str(query["community"]),
        start_ms=start,
        end_ms=end,
        polygon=polygon_of(query.get("polygon")),
        building=text("building"),
        household=text("household"),
        device=text("device"),
        types=tuple(str(x) for x in types) if isinstance(types, list) else (),
        plate=text("plate"),
        person=text("person"),
        grids=grids,
        limit=MAX_ROWS,
    )


# --- the timeline -----------------------------------------------------------------------------
def pin_items(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """A case's pins as timeline items (the pinned copy, marked with its pin id)."""
    return [{**pin["item"], "_kind": pin["kind"], "_pin": pin["id"], "_ts": pin["ts"]} for pin in doc["pins"]]


def timeline_items(session: Session, principal: Principal, doc: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
    """The merged timeline's items (pins marked with ``_pin``), by time; and whether the query's
    rows were cut at MAX_ROWS."""
    items = {(pin["kind"], pin["ref"]): pin_item for pin, pin_item in zip(doc["pins"], pin_items(doc), strict=True)}
    cut = False
    query = search_query(doc["query"], principal)
    if query is not None:
        for n, row in enumerate(rows(session, query)):
            if n >= MAX_ROWS:
                cut = True
                break
            item = item_of(row)
            key = ("event", str(item["id"]))
            if key not in items:
                items[key] = {**item, "_kind": "event", "_pin": None, "_ts": item["ts"]}
    return sorted(items.values(), key=lambda i: (i["_ts"], str(i.get("id")))), cut


def colon(lang: str) -> str:
    """The colon after a label: full width in Chinese."""
    return "：" if lang == "zh" else ": "


def _who(item: dict[str, Any], found: dict[str, str], lang: str) -> str:
    if item["_kind"] == "alert":
        subject = item.get("subject") or {}
        return found.get(str(subject.get("person") or ""), "")
    person = str(item.get("person") or "")
    if person.startswith("face:"):
        return t("case.who.face", lang)
    if person.startswith("id:"):
        return t("case.who.id", lang)
    return found.get(str(item.get("guard") or ""), "") or found.get(person, "")


def _detail(item: dict[str, Any], lang: str) -> str:
    if item["_kind"] == "alert":
        status = item.get("status")
        severity = item.get("severity")
        return f"{t(f'severity.{severity}', lang)} · {t(f'status.{status}', lang)}" if status else ""
    parts = []
    for key, value in sorted((item.get("data") or {}).items()):
        if key in HIDDEN or key in ("plate",) or isinstance(value, dict | list):
            continue
        shown = MASKED[key](str(value)) if key in MASKED else value
        name = t(f"field.{key}", lang) if f"field.{key}" in TABLE else key
        word = next(
            (t(k, lang) for k in (f"case.value.{key}.{shown}", f"value.{str(shown).lower()}") if k in TABLE), shown
        )
        parts.append(f"{name}{colon(lang)}{word}")
    return "，".join(parts) if lang == "zh" else ", ".join(parts)


def timeline(
    session: Session, principal: Principal, doc: dict[str, Any], lang: str
) -> tuple[list[dict[str, Any]], bool]:
    """The timeline's rows as people read them (COLUMNS), and whether the query's rows were cut."""
    items, cut = timeline_items(session, principal, doc)
    return readable(session, principal, items, lang), cut


def readable(session: Session, principal: Principal, items: list[dict[str, Any]], lang: str) -> list[dict[str, Any]]:
    """Timeline items as people read them: places, devices and people by name, local times."""
    wanted: list[Any] = []
    for item in items:
        subject = item.get("subject") or {}
        wanted += [item.get(k) for k in ("household", "building", "device", "guard", "person")]
        wanted += [subject.get(k) for k in ("household", "building", "device", "person")]
    found = labels(session, principal, [w for w in wanted if isinstance(w, str)], lang)
    out = []
    for item in items:
        subject = item.get("subject") or {}
        alert = item["_kind"] == "alert"
        place_id = next(
            (
                str(v)
                for v in (
                    item.get("household"),
                    subject.get("household"),
                    item.get("building"),
                    subject.get("building"),
                )
                if v
            ),
            "",
        )
        device_id = str(item.get("device") or subject.get("device") or "")
        kind_type = str(item.get("type") or "")
        out.append(
            {
                "time": local_text(int(item["_ts"])),
                "ts": int(item["_ts"]),
                "pinned": item["_pin"] is not None,
                "pin": item["_pin"],
                "kind": item["_kind"],
                "type": t(f"alert.type.{kind_type}", lang) if alert else t(f"case.etype.{kind_type}", lang),
                "place": found.get(place_id, place_id),
                "device": found.get(device_id, device_id),
                "who": _who(item, found, lang),
                "plate": item.get("plate") or (item.get("data") or {}).get("plate") or "",
                "detail": _detail(item, lang),
                "id": str(item.get("id") or ""),
                "location": item.get("location"),
            }
        )
    return out


# --- the files --------------------------------------------------------------------------------
def _header(lang: str) -> list[str]:
    return [t(f"case.col.{c}", lang) for c in COLUMNS]


def _cell(row: dict[str, Any], column: str, lang: str) -> str:
    value = row[column]
    if column == "pinned":
        return t("case.pinned", lang) if value else ""
    if column == "kind":
        return t(f"case.kind.{value}", lang)
    return "" if value is None else str(value)


def write_csv(path: Path, rows_: Sequence[dict[str, Any]], lang: str) -> None:
    """timeline.csv: UTF-8 with a byte-order mark (Excel opens Chinese correctly), one row per entry."""
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(_header(lang))
        for row in rows_:
            writer.writerow([_cell(row, c, lang) for c in COLUMNS])


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value


def facts(doc: dict[str, Any]) -> dict[str, Any]:
    """A case's facts for the JSON and the manifest (times RFC 3339 UTC)."""
    keys = ("id", "name", "community", "status", "created_by", "created_by_name", "created_at", "closed_at")
    return {k: _jsonable(doc[k]) for k in keys}


def write_json(path: Path, doc: dict[str, Any], rows_: Sequence[dict[str, Any]]) -> None:
    """timeline.json: the case's facts, its query, notes and the timeline rows."""
    body = {
        "case": facts(doc),
        "query": doc["query"],
        "notes": [{**{k: _jsonable(v) for k, v in n.items()}} for n in doc["notes"]],
        "timeline": list(rows_),
    }
    path.write_text(json.dumps(body, ensure_ascii=False, indent=1, default=_jsonable), encoding="utf-8")


class CasePDF(ReportPDF):
    """The case's PDF: the reports' fonts, line breaking and tables, with the case's own page furniture."""

    def __init__(self, settings: Settings, title: str, lang: str) -> None:
        FPDF.__init__(self, orientation="P", unit="mm", format="A4")  # no ReportData: the case's own facts
        self.case_fonts = report_fonts(settings)
        self.set_up(self.case_fonts, lang, title)

    def header(self) -> None:
        """The case's name from the second page on."""
        if self.page_no() == 1:
            return
        self.set_font(FONT, "", 7.5)
        self.set_text_color(*MUTED)
        self.set_xy(self.l_margin, 8)
        self.cell(self.epw, 4, self.fit(self.running_title, self.epw))
        self.set_text_color(*INK)
        self.set_y(17)

    def handling_mark(self) -> str:
        """A case file is internal and confidential."""
        return "case.pdf.classification"


def case_map(
    session: Session, doc: dict[str, Any], rows_: Sequence[dict[str, Any]], at_ms: int, family: str, lang: str
) -> bytes:
    """The community (boundary, buildings), the query's area and the timeline's entries up to the
    chosen time (pins as stars)."""
    community = session.get(Community, doc["community"])
    fig = Figure(figsize=(180 / 25.4, 120 / 25.4), dpi=charts.DPI)
    ax = fig.add_axes((0.01, 0.01, 0.74, 0.98))
    ax.set_axis_off()
    boundary = json.loads(community.boundary) if community is not None and community.boundary else None
    lat0 = community.center_lat if community is not None else 31.0
    kx = math.cos(math.radians(lat0))

    def draw(ring: Sequence[Sequence[float]], **style: Any) -> None:
        if len(ring) >= 3:
            ax.add_patch(MplPolygon([(p[0] * kx, p[1]) for p in ring], closed=True, **style))

    outline = boundary or {}
    polygons = (
        outline.get("coordinates", []) if outline.get("type") == "MultiPolygon" else [outline.get("coordinates", [])]
    )
    for polygon in polygons:
        for ring in polygon[:1]:
            draw(ring, facecolor="#f6f8fb", edgecolor=charts.ACCENT, linewidth=1.2, zorder=1)
    for feature in queries.building_layer(session, queries.EVERYTHING, doc["community"])["features"]:
        for ring in feature["geometry"].get("coordinates", [])[:1]:
            draw(ring, facecolor="#d5dde8", edgecolor="#8795a8", linewidth=0.3, zorder=2)
    area = polygon_of(doc["query"].get("polygon"))
    if area is not None:
        draw(
            list(area.exterior.coords),
            facecolor="#f05a3622",
            edgecolor="#f05a36",
            linewidth=1.2,
            linestyle="--",
            zorder=3,
        )
    shown = [r for r in rows_ if r["location"] and r["location"].get("lat") is not None and r["ts"] <= at_ms]
    for pinned, marker, size in ((False, "o", 14), (True, "*", 70)):
        for kind, color in KIND_COLORS.items():
            pts = [r["location"] for r in shown if r["pinned"] is pinned and r["kind"] == kind]
            if pts:
                ax.scatter(
                    [p["lon"] * kx for p in pts],
                    [p["lat"] for p in pts],
                    s=size,
                    marker=marker,
                    c=color,
                    edgecolors="white",
                    linewidths=0.4,
                    zorder=5 if pinned else 4,
                )
    ax.set_aspect("equal")
    ax.autoscale_view()

    def dot(marker: str, size: float, color: str, label: str) -> Line2D:
        return Line2D(
            [], [], marker=marker, linestyle="none", markersize=size, markerfacecolor=color,
            markeredgecolor="white", label=t(label, lang),
        )  # fmt: skip

    handles = [
        dot("o", 5, KIND_COLORS["event"], "case.kind.event"),
        dot("o", 5, KIND_COLORS["alert"], "case.kind.alert"),
        dot("*", 9, "#555555", "case.map.pinned"),
        Line2D([], [], color="#f05a36", linestyle="--", label=t("case.map.area", lang)),
    ]
    fig.legend(
        handles=handles,
        loc="center left",
        bbox_to_anchor=(0.76, 0.5),
        frameon=False,
        prop={"family": family, "size": 7},
    )
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=charts.DPI, facecolor="white", bbox_inches="tight", pad_inches=0.04)
    return buffer.getvalue()


def query_lines(query: dict[str, Any], found: dict[str, str], lang: str) -> list[str]:
    """The search body as people read it, a line per condition (``found``: labels of its ids)."""
    lines: list[tuple[str, Any]] = []
    for key in ("from", "to"):
        if query.get(key):
            try:
                lines.append((key, local_text(parse_rfc3339(str(query[key])), "%Y-%m-%d %H:%M")))
            except ValueError:
                lines.append((key, query[key]))
    for key in ("building", "household", "device", "plate", "person"):
        if query.get(key):
            lines.append((key, found.get(str(query[key]), query[key])))
    if query.get("types"):
        names = [t(f"case.etype.{x}", lang) for x in query["types"]]
        lines.append(("types", ("、" if lang == "zh" else ", ").join(names)))
    out = [f"{t(f'case.q.{key}', lang)}{colon(lang)}{value}" for key, value in lines]
    return out + ([t("case.q.polygon", lang)] if query.get("polygon") else [])


def write_pdf(
    path: Path,
    session: Session,
    settings: Settings,
    principal: Principal,
    doc: dict[str, Any],
    rows_: Sequence[dict[str, Any]],
    hashes: dict[str, str],
    lang: str,
) -> None:
    """case.pdf: title and facts, the query, the map at the chosen time, the timeline, the notes and
    the hashes of the CSV and the JSON."""
    title = f"{t('case.pdf.title', lang)} · {doc['name']}"
    pdf = CasePDF(settings, title, lang)
    family = matplotlib_family(pdf.case_fonts)
    charts.use_family(family)
    pdf.add_page()
    pdf.set_font(FONT, "B", 18)
    pdf.multi_cell(0, 10, title, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    found = labels(
        session, principal, [doc["community"], *(str(v) for v in doc["query"].values() if isinstance(v, str))], lang
    )
    community = session.get(Community, doc["community"])
    closed = doc["closed_at"]
    pairs = [
        (t("case.fact.id", lang), doc["id"]),
        (t("case.fact.community", lang), community_name(community, lang) if community else doc["community"]),
        (t("case.fact.status", lang), t(f"case.status.{doc['status']}", lang)),
        (
            t("case.fact.created", lang),
            f"{_minute(doc['created_at'])} · {doc['created_by_name']}",
        ),
        (t("case.fact.closed", lang), _minute(closed) if closed else "—"),
        (
            t("case.fact.exported", lang),
            f"{_minute(dt.datetime.now(dt.UTC))} · {principal.name or principal.id}",
        ),
        (
            t("case.fact.counts", lang),
            t("case.fact.counts_value", lang, rows=len(rows_), pins=len(doc["pins"]), notes=len(doc["notes"])),
        ),
    ]
    for label, value in pairs:
        pdf.paragraph(f"{label}{colon(lang)}{value}", size=9.5)
    pdf.heading(t("case.pdf.query", lang), level=1, keep=20)
    for line in query_lines(doc["query"], found, lang) or [t("case.q.none", lang)]:
        pdf.paragraph(line, size=9)
    at_ms = _chosen_time(doc["query"], rows_)
    pdf.heading(t("case.pdf.map", lang, at=local_text(at_ms, "%Y-%m-%d %H:%M")), level=1, keep=110)
    pdf.picture(case_map(session, doc, rows_, at_ms, family, lang), pdf.epw)
    pdf.add_page(orientation="L")
    pdf.heading(t("case.pdf.timeline", lang))
    table = Table(
        key="timeline",
        title="case.pdf.timeline",
        columns=[
            Column(c, f"case.col.{c}", width=w)
            for c, w in zip(COLUMNS[:-1], (1.3, 0.6, 0.6, 1, 1.6, 1.6, 1.2, 0.9, 2.2), strict=True)
        ],
        rows=[{c: _cell(r, c, lang) for c in COLUMNS[:-1]} for r in rows_],
    )
    pdf.data_table(table, max_rows=PDF_ROWS, size=7, title=False)
    pdf.add_page(orientation="P")
    pdf.heading(t("case.pdf.notes", lang), keep=20)
    for note in doc["notes"] or []:
        when = _minute(note["at"])
        pdf.paragraph(f"{when} · {note['author_name']}", size=8.5, color=MUTED)
        pdf.paragraph(note["text"], size=9.5, indent=3)
    if not doc["notes"]:
        pdf.paragraph(t("case.pdf.no_notes", lang), size=9, color=MUTED)
    pdf.heading(t("case.pdf.hashes", lang), level=1, keep=20)
    pdf.paragraph(t("case.pdf.hashes_note", lang), size=8.5, color=MUTED)
    for name, digest in hashes.items():
        pdf.paragraph(f"{name}  SHA-256  {digest}", size=8)
    pdf.output(str(path))


def community_name(community: Community, lang: str) -> str:
    """A community's name in the language of the export."""
    return community.name if lang == "zh" else (community.name_en or community.name)


def _minute(moment: dt.datetime) -> str:
    return local_text(int(moment.timestamp() * 1000), "%Y-%m-%d %H:%M")


def _chosen_time(query: dict[str, Any], rows_: Sequence[dict[str, Any]]) -> int:
    """The map's moment: the query's ``at``, else the end of its window, else the last entry."""
    for key in ("at", "to"):
        if query.get(key):
            try:
                return parse_rfc3339(str(query[key]))
            except ValueError:
                continue
    return max((r["ts"] for r in rows_), default=int(dt.datetime.now(dt.UTC).timestamp() * 1000))


def export_case(
    session: Session, settings: Settings, principal: Principal, case_id: str, out: Path, lang: str = "zh"
) -> Export:
    """Write the four files of a case's export into out (audited as ``case.export``)."""
    doc = case_for_export(session, principal, case_id)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError:
        raise InvalidInput(key="case.error.out", out=str(out)) from None
    rows_, cut = timeline(session, principal, doc, lang)
    write_csv(out / "timeline.csv", rows_, lang)
    write_json(out / "timeline.json", doc, rows_)
    hashes = {name: sha256_of(out / name) for name in FILES[:2]}
    write_pdf(out / "case.pdf", session, settings, principal, doc, rows_, hashes, lang)
    hashes["case.pdf"] = sha256_of(out / "case.pdf")
    counts = {
        "timeline": len(rows_),
        "pins": len(doc["pins"]),
        "pinned_in_timeline": sum(1 for r in rows_ if r["pinned"]),
        "events": sum(1 for r in rows_ if r["kind"] == "event"),
        "alerts": sum(1 for r in rows_ if r["kind"] == "alert"),
        "notes": len(doc["notes"]),
    }
    manifest = {
        "case": doc["id"],
        "name": doc["name"],
        "community": doc["community"],
        "exported_by": principal.id,
        "exported_by_name": principal.name or principal.id,
        "exported_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "query": doc["query"],
        "counts": counts,
        "cut": cut,
        "files": hashes,
        "algorithm": "SHA-256",
    }
    (out / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
    return Export(case=doc["id"], out=out, files=hashes, counts=counts, manifest=manifest)


def zip_of(folder: Path) -> bytes:
    """The four files of an export as one ZIP."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in (*FILES, MANIFEST):
            archive.write(folder / name, name)
    return buffer.getvalue()
