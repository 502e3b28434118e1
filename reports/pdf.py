"""The PDF of a report (fpdf2): A4 portrait, Noto Sans CJK SC embedded as a subset, Chinese line
breaking by the usual rules, tables that repeat their header on every page, PDF bookmarks."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from fpdf import FPDF
from PIL import Image

from core.i18n import t
from core.timefmt import local_text
from reports import charts, model3d
from reports.fonts import ReportFonts, matplotlib_family
from reports.model import Column, ReportData, Table, coverage_text
from reports.narrative import is_empty, pct
from reports.typeset import tokens, wrap

FONT = "cjk"
INK = (29, 43, 58)
MUTED = (110, 122, 138)
ACCENT = (47, 111, 214)
HEAD_FILL = (36, 64, 107)
ZEBRA = (243, 246, 250)
RULE = (205, 213, 223)
PT = 0.3528  # mm per point


def cell_text(value: Any, column: Column) -> str:
    """A value as the PDF shows it."""
    if value is None:
        return "—"
    if column.kind == "pct" and isinstance(value, int | float):
        return pct(float(value))
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.1f}"
    return str(value)


class ReportPDF(FPDF):
    """An fpdf2 document with the report's fonts, running header and page numbers."""

    def __init__(self, data: ReportData, fonts: ReportFonts) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.data = data
        self.set_up(fonts, data.lang, f"{t('report.title', data.lang)} · {data.title_place}")
        self.set_subject(f"{data.request.start.isoformat()} – {data.request.end.isoformat()}")

    def set_up(self, fonts: ReportFonts, lang: str, title: str) -> None:
        """Fonts, margins, language and metadata of a Sandtable PDF (reports and case files)."""
        self.lang = lang
        self.add_font(FONT, "", str(fonts.regular.path), collection_font_number=fonts.regular.index)
        self.add_font(FONT, "B", str(fonts.bold.path), collection_font_number=fonts.bold.index)
        self.set_margins(15, 17, 15)
        self.set_auto_page_break(True, margin=16)
        self.set_lang("zh-CN" if lang == "zh" else "en")
        self.set_title(title)
        self.set_creator(t("app.title", lang))
        self.set_author(t("app.title", lang))
        self.set_text_color(*INK)
        self.running_title = title

    # --- page furniture -----------------------------------------------------------------------
    def header(self) -> None:
        """A thin running head from the second page on."""
        if self.page_no() == 1:
            return
        self.set_font(FONT, "", 7.5)
        self.set_text_color(*MUTED)
        period = f"{self.data.request.start.isoformat()} — {self.data.request.end.isoformat()}"
        self.set_xy(self.l_margin, 8)
        self.cell(self.epw / 2, 4, self.fit(self.running_title, self.epw / 2))
        self.cell(self.epw / 2, 4, period, align="R")
        self.set_draw_color(*RULE)
        self.line(self.l_margin, 13, self.w - self.r_margin, 13)
        self.set_text_color(*INK)
        self.set_y(17)

    def footer(self) -> None:
        """Page n of N and the handling mark."""
        self.set_y(-11)
        self.set_font(FONT, "", 7.5)
        self.set_text_color(*MUTED)
        self.cell(self.epw / 2, 4, t(self.handling_mark(), self.lang))
        self.cell(self.epw / 2, 4, t("report.page", self.lang, n=self.page_no(), total="{nb}"), align="R")
        self.set_text_color(*INK)

    def handling_mark(self) -> str:
        """The i18n key of the footer's handling mark."""
        return "report.classification.wall" if self.data.request.principal.role == "wall" else "report.classification"

    def fit(self, text: str, width: float) -> str:
        """Text cut with an ellipsis to fit width at the current font."""
        if self.get_string_width(text) <= width:
            return text
        while text and self.get_string_width(text + "…") > width:
            text = text[:-1]
        return text + "…"

    def room_for(self, height: float) -> None:
        """Start a new page unless height mm still fit on this one."""
        if self.get_y() + height > self.page_break_trigger:
            self.add_page()

    # --- text ---------------------------------------------------------------------------------
    def heading(self, text: str, level: int = 0, keep: float | None = None) -> None:
        """A section heading (level 0) or sub-heading (level 1), with a bookmark; kept on one page with
        the keep mm that follow it."""
        size = 14 if level == 0 else 10.5
        # a section heading keeps its first sub-heading and table rows with it
        self.room_for(size * PT * 2 + (keep if keep is not None else 48 if level == 0 else 24))
        if level == 0 and self.get_y() > 30:
            self.ln(3)
        self.start_section(text, level=level)
        self.set_font(FONT, "B", size)
        y = self.get_y()
        if level == 0:
            self.set_fill_color(*ACCENT)
            self.rect(self.l_margin, y + 1.2, 1.4, size * PT * 1.1, style="F")
            self.set_x(self.l_margin + 3.5)
        self.set_text_color(*(ACCENT if level == 1 else INK))
        self.cell(0, size * PT * 1.6, text, new_x="LMARGIN", new_y="NEXT")
        self.set_text_color(*INK)
        self.ln(1 if level else 2)

    def paragraph(self, text: str, size: float = 9.5, color: tuple[int, int, int] = INK, indent: float = 0) -> None:
        """Wrapped text (Chinese line-breaking rules) at the left margin."""
        self.set_font(FONT, "", size)
        self.set_text_color(*color)
        line_h = size * PT * 1.65
        width = self.epw - indent
        for line in wrap(text, width, self.get_string_width):
            self.room_for(line_h)
            self.set_x(self.l_margin + indent)
            self.cell(width, line_h, line, new_x="LMARGIN", new_y="NEXT")
        self.set_text_color(*INK)

    def note(self, text: str) -> None:
        """A small grey note."""
        self.ln(0.8)
        self.paragraph(text, size=7.5, color=MUTED)

    def callout(self, text: str) -> None:
        """A framed sentence that must not be missed (an empty period)."""
        self.set_font(FONT, "B", 10)
        lines = wrap(text, self.epw - 8, self.get_string_width)
        height = len(lines) * 10 * PT * 1.6 + 5
        self.room_for(height)
        y = self.get_y()
        self.set_fill_color(255, 244, 229)
        self.set_draw_color(240, 160, 32)
        self.rect(self.l_margin, y, self.epw, height, style="DF")
        self.set_xy(self.l_margin + 4, y + 2.5)
        for line in lines:
            self.cell(self.epw - 8, 10 * PT * 1.6, line, new_x="LEFT", new_y="NEXT")
        self.set_y(y + height + 3)

    # --- figures ------------------------------------------------------------------------------
    def kpis(self, items: Sequence[tuple[str, str]], per_row: int = 4) -> None:
        """Key figures as cards."""
        gap = 2.5
        width = (self.epw - gap * (per_row - 1)) / per_row
        height = 15.0
        for start in range(0, len(items), per_row):
            self.room_for(height + gap)
            y = self.get_y()
            for i, (label, value) in enumerate(items[start : start + per_row]):
                x = self.l_margin + i * (width + gap)
                self.set_fill_color(*ZEBRA)
                self.set_draw_color(*RULE)
                self.rect(x, y, width, height, style="DF", round_corners=True, corner_radius=1.5)
                self.set_xy(x + 2.5, y + 1.8)
                self.set_font(FONT, "", 7.5)
                self.set_text_color(*MUTED)
                self.cell(width - 5, 4, self.fit(label, width - 5))
                self.set_xy(x + 2.5, y + 6.3)
                self.set_font(FONT, "B", 13)
                self.set_text_color(*INK)
                self.cell(width - 5, 7, value)
            self.set_y(y + height + gap)

    @staticmethod
    def height_of(png: bytes, width: float) -> float:
        """The height (mm) an image takes at width mm."""
        with Image.open(io.BytesIO(png)) as img:
            w_px, h_px = img.size
        return width * h_px / w_px

    def picture(self, png: bytes, width: float, x: float | None = None) -> float:
        """An image at the current line (new page when it does not fit); returns its height."""
        height = self.height_of(png, width)
        if x is None:
            self.room_for(height + 2)
        y = self.get_y()
        self.image(io.BytesIO(png), x=x if x is not None else self.l_margin, y=y, w=width, h=height)
        if x is None:
            self.set_y(y + height)
        return height

    def pictures(self, *pngs: bytes) -> None:
        """Two images side by side."""
        gap = 4.0
        width = (self.epw - gap) / 2
        heights = [self.height_of(png, width) for png in pngs]
        self.room_for(max(heights) + 2)
        y = self.get_y()
        for i, png in enumerate(pngs):
            self.set_y(y)
            self.picture(png, width, x=self.l_margin + i * (width + gap))
        self.set_y(y + max(heights) + 3)

    # --- tables -------------------------------------------------------------------------------
    def column_widths(
        self, columns: Sequence[Column], header: Sequence[str], rows: Sequence[Sequence[str]], size: float, pad: float
    ) -> list[float]:
        """Widths by content, as a browser lays out an automatic table: every column at least as wide
        as its longest unbreakable piece (a word, a number), the rest shared by how much each column
        would need to stay on one line; the column weights only break ties."""
        lows: list[float] = []
        highs: list[float] = []
        for i, column in enumerate(columns):
            values = [r[i] for r in rows]
            self.set_font(FONT, "B", size)
            low = max((self.get_string_width(piece) for piece in tokens(header[i]) if not piece.isspace()), default=0)
            high = max((self.get_string_width(line) for line in header[i].split("\n")), default=0)
            self.set_font(FONT, "", size)
            for value in values:
                for line in value.split("\n"):
                    high = max(high, self.get_string_width(line))
                    for piece in tokens(line):
                        if not piece.isspace():
                            low = max(low, self.get_string_width(piece))
            lows.append(min(low, self.epw * 0.4) + 2 * pad + 0.3)
            highs.append(max(high + 2 * pad + 0.3, lows[-1]) * (1 + 0.001 * column.width))
        room = self.epw
        if sum(highs) <= room:
            spare = room - sum(highs)
            weights = sum(c.width for c in columns)
            return [h + spare * c.width / weights for h, c in zip(highs, columns, strict=True)]
        if sum(lows) <= room:
            # water-filling: share the spare room by need × weight; a column that has all it needs
            # hands the rest back to the others
            widths = list(lows)
            spare = room - sum(lows)
            active = {i for i in range(len(columns)) if highs[i] > lows[i]}
            while spare > 0.01 and active:
                total = sum((highs[i] - lows[i]) * columns[i].width for i in active)
                share = {i: spare * (highs[i] - lows[i]) * columns[i].width / total for i in active}
                spare = 0.0
                for i, extra in share.items():
                    widths[i] += extra
                    if widths[i] >= highs[i]:
                        spare += widths[i] - highs[i]
                        widths[i] = highs[i]
                        active.discard(i)
            return widths
        return [lo * room / sum(lows) for lo in lows]

    def data_table(
        self,
        table: Table,
        *,
        rows: Sequence[dict[str, Any]] | None = None,
        max_rows: int | None = None,
        size: float = 7.5,
        title: bool = True,
    ) -> None:
        """A table with wrapped cells; the header repeats on every page; long tables are cut; a short
        table that does not fit the rest of the page starts on the next one, with its title."""
        lang = self.lang
        shown = list(table.rows if rows is None else rows)
        cut = 0
        if max_rows is not None and len(shown) > max_rows:
            cut = len(shown) - max_rows
            shown = shown[:max_rows]
        if not shown:
            if title:
                self.heading(t(table.title, lang), level=1)
            self.paragraph(t("report.no_data", lang), size=8.5, color=MUTED)
            self.ln(2)
            return
        pad, line_h = 1.2, size * PT * 1.45
        header = table.labels(lang)
        texts = [[cell_text(row.get(c.key), c) for c in table.columns] for row in shown]
        widths = self.column_widths(table.columns, header, texts, size, pad)

        def lines_of(texts: Sequence[str], bold: bool) -> list[list[str]]:
            self.set_font(FONT, "B" if bold else "", size)
            return [wrap(text, w - 2 * pad, self.get_string_width) for text, w in zip(texts, widths, strict=True)]

        if len(shown) <= 20:
            rows_h = [max(len(c) for c in lines_of(cells, False)) * line_h + 2 * pad for cells in [header, *texts]]
            whole = sum(rows_h) + (10.5 * PT * 2.6 if title else 0)
            if whole < (self.page_break_trigger - self.t_margin) * 0.6:
                self.room_for(whole)
        if title:
            self.heading(t(table.title, lang), level=1)

        def draw(
            cells: list[list[str]], *, head: bool = False, bold: bool = False, fill: tuple[int, int, int] | None = None
        ) -> None:
            max_lines = int((self.page_break_trigger - 30) / line_h)
            cells = [c[:max_lines] for c in cells]
            height = max(len(c) for c in cells) * line_h + 2 * pad
            if self.get_y() + height > self.page_break_trigger:
                self.add_page()
                if not head:
                    draw(lines_of(header, True), head=True)
            y = self.get_y()
            x = self.l_margin
            self.set_font(FONT, "B" if head or bold else "", size)
            for column, width, cell in zip(table.columns, widths, cells, strict=True):
                if head:
                    self.set_fill_color(*HEAD_FILL)
                    self.rect(x, y, width, height, style="F")
                    self.set_text_color(255, 255, 255)
                elif fill is not None:
                    self.set_fill_color(*fill)
                    self.rect(x, y, width, height, style="F")
                align = "R" if column.kind in ("int", "float", "pct") else "L"
                for i, line in enumerate(cell):
                    self.set_xy(x + pad, y + pad + i * line_h)
                    self.cell(width - 2 * pad, line_h, line, align=align)
                self.set_text_color(*INK)
                x += width
            self.set_draw_color(*RULE)
            self.line(self.l_margin, y + height, self.l_margin + self.epw, y + height)
            self.set_y(y + height)

        self.room_for(line_h * 3 + 4 * pad)
        draw(lines_of(header, True), head=True)
        for i, (row, cells) in enumerate(zip(shown, texts, strict=True)):
            bold = bool(row.get("_total"))
            draw(lines_of(cells, bold), bold=bold, fill=ZEBRA if i % 2 else None)
        if cut:
            self.note(t("report.cut", lang, shown=len(shown), total=len(shown) + cut))
        if table.note:
            self.note(t(table.note, lang))
        self.ln(3)


def render_pdf(
    data: ReportData,
    fonts: ReportFonts,
    out: Path,
    *,
    max_rows: int = 400,
    progress: Callable[[int, str], None] | None = None,
) -> Path:
    """Lay the report out and write it to out."""
    step = progress or (lambda _pct, _what: None)
    lang = data.lang
    family = matplotlib_family(fonts)
    charts.use_family(family)
    pdf = ReportPDF(data, fonts)
    pdf.add_page()
    title_page(pdf, data)
    step(50, "report.progress.maps")
    section_map(pdf, data, family)
    step(65, "report.progress.charts")
    section_alerts(pdf, data, family)
    section_response(pdf, data, family)
    step(75, "report.progress.tables")
    section_elders(pdf, data, max_rows)
    section_rentals(pdf, data, max_rows)
    section_visitors(pdf, data, family, max_rows)
    section_patrol(pdf, data, family, max_rows)
    section_devices(pdf, data, family)
    step(85, "report.progress.alerts_table")
    pdf.add_page(orientation="L")  # the widest table: landscape
    pdf.heading(t("report.section.alert_list", lang))
    pdf.data_table(data.tables["alerts"], max_rows=max_rows, size=7, title=False)
    step(95, "report.progress.writing")
    out.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(out))
    return out


def title_page(pdf: ReportPDF, data: ReportData) -> None:
    """Title, period, who it is for, the summary and the key figures."""
    lang = data.lang
    req = data.request
    pdf.set_font(FONT, "B", 22)
    pdf.set_text_color(*ACCENT)
    pdf.cell(0, 12, t("report.title", lang), new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(*INK)
    pdf.set_font(FONT, "B", 15)
    for line in wrap(data.title_place, pdf.epw, pdf.get_string_width):
        pdf.cell(0, 8, line, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(1)
    meta = [
        t("report.meta.period", lang, start=req.start.isoformat(), end=req.end.isoformat(), days=req.days),
        t("report.meta.generated", lang, at=local_text(data.generated_ms, "%Y-%m-%d %H:%M")),
        t(f"report.mask.{req.principal.role}", lang),
    ]
    if data.coverage is not None:
        meta.insert(2, coverage_text(data.coverage, lang))
    for line in meta:
        pdf.paragraph(line, size=8.5, color=MUTED)
    pdf.set_draw_color(*RULE)
    pdf.line(pdf.l_margin, pdf.get_y() + 2, pdf.l_margin + pdf.epw, pdf.get_y() + 2)
    pdf.ln(5)
    pdf.heading(t("report.section.summary", lang))
    if is_empty(data.figures):
        pdf.callout(t("report.say.empty", lang))
    for sentence in data.narrative:
        if sentence != t("report.say.empty", lang):
            pdf.paragraph(sentence, size=9.5)
            pdf.ln(0.8)
    pdf.ln(2)
    pdf.heading(t("report.section.figures", lang))
    total = data.tables["key_figures"].rows[-1]
    columns = {c.key: c for c in data.tables["key_figures"].columns}
    keys = [
        "residents",
        "households",
        "rentals",
        "group_rentals",
        "elderly_alone",
        "floating_registered",
        "floating_expired",
        "guards",
        "devices",
        "availability",
        "alerts",
    ]
    pdf.kpis([(t(columns[k].label, lang), cell_text(total.get(k), columns[k])) for k in keys])
    if len(data.request.communities) > 1:
        pdf.data_table(data.tables["key_figures"], size=7)


def section_map(pdf: ReportPDF, data: ReportData, family: str) -> None:
    """One map per community (or an overview of many)."""
    lang = data.lang
    pdf.add_page()
    pdf.heading(t("report.section.map", lang))
    pdf.paragraph(t("report.map.caption", lang), size=8, color=MUTED)
    pdf.ln(1)
    if not data.maps:
        pdf.picture(charts.overview_map(data.charts.get("overview", []), family, lang), pdf.epw)
        pdf.note(t("report.map.overview", lang, limit=len(data.request.communities)))
        return
    solids = model3d.stills(data.maps)
    for m in data.maps:
        png = charts.community_map(m, family, lang)
        if len(data.maps) > 1:
            pdf.heading(m.name, level=1, keep=pdf.height_of(png, pdf.epw))
        pdf.picture(png, pdf.epw)
        pdf.ln(3)
        still = solids.get(m.community)
        if isinstance(still, bytes):
            pdf.heading(t("report.section.model3d", lang), level=1, keep=pdf.height_of(still, pdf.epw))
            pdf.paragraph(t("report.model3d.caption", lang), size=8, color=MUTED)
            pdf.picture(still, pdf.epw)
            pdf.ln(3)
        elif still:
            pdf.note(t("report.model3d.unavailable", lang, reason=still))


def section_alerts(pdf: ReportPDF, data: ReportData, family: str) -> None:
    """Alerts by type and by hour of day."""
    lang = data.lang
    if not data.charts["by_type"]:
        pdf.heading(t("report.section.alerts", lang))
        pdf.paragraph(t("report.say.no_alerts", lang), size=9)
        pdf.ln(2)
        return
    pngs = (
        charts.bars_by_type(data.charts["by_type"], family, lang),
        charts.bars_by_hour(data.charts["by_hour"], family, lang),
    )
    pdf.heading(t("report.section.alerts", lang), keep=max(pdf.height_of(p, pdf.epw / 2) for p in pngs))
    pdf.pictures(*pngs)
    pdf.data_table(data.tables["alerts_by_type"])


def section_response(pdf: ReportPDF, data: ReportData, family: str) -> None:
    """Minutes per stage and SLA compliance."""
    lang = data.lang
    measured = any(data.charts["stage_minutes"].values()) or any(v is not None for v in data.charts["sla"].values())
    if measured:
        pngs = (
            charts.stage_boxes(data.charts["stage_minutes"], data.charts["sla_targets"], family, lang),
            charts.sla_bars(data.charts["sla"], family, lang),
        )
        pdf.heading(t("report.section.response", lang), keep=max(pdf.height_of(p, pdf.epw / 2) for p in pngs))
        pdf.pictures(*pngs)
    else:
        pdf.heading(t("report.section.response", lang))
    pdf.data_table(data.tables["response_times"])
    pdf.data_table(data.tables["sla"])


def section_elders(pdf: ReportPDF, data: ReportData, max_rows: int) -> None:
    """Elders living alone: the ones with care alerts (all of them are in the CSV/XLSX)."""
    lang = data.lang
    pdf.heading(t("report.section.elders", lang))
    table = data.tables["elders"]
    alerted = [r for r in table.rows if r["inactive"] + r["routine"] + r["silent"]]
    pdf.data_table(table, rows=alerted, max_rows=max_rows)
    quiet = len(table.rows) - len(alerted)
    if quiet:
        pdf.note(t("report.elders.quiet", lang, n=quiet))


def section_rentals(pdf: ReportPDF, data: ReportData, max_rows: int) -> None:
    """Rental households and the floating residents whose registration needs action."""
    lang = data.lang
    pdf.heading(t("report.section.rentals", lang))
    pdf.data_table(data.tables["rentals"], size=7)
    table = data.tables["floating"]
    listed = {t("report.floating.expired", lang), t("report.floating.unregistered", lang)}
    action = [r for r in table.rows if r["status"] in listed]
    pdf.data_table(table, rows=action, max_rows=max_rows)
    if len(action) < len(table.rows):
        pdf.note(t("report.floating.valid_not_listed", lang, n=len(table.rows) - len(action)))


def section_visitors(pdf: ReportPDF, data: ReportData, family: str, max_rows: int) -> None:
    """Visitor passes, and gate traffic by hour and by day."""
    lang = data.lang
    pdf.heading(t("report.section.visitors", lang))
    pdf.data_table(data.tables["visitor_passes"])
    gate = data.charts["gate_hours"]
    if any(gate["in"]) or any(gate["out"]):
        png = charts.gate_hours(gate, family, lang)
        pdf.heading(t("report.chart.gate_hours", lang), level=1, keep=pdf.height_of(png, pdf.epw / 2))
        pdf.picture(png, pdf.epw / 2)
        pdf.ln(2)
    pdf.data_table(data.tables["gate_daily"], max_rows=max_rows)


def section_patrol(pdf: ReportPDF, data: ReportData, family: str, max_rows: int) -> None:
    """Patrol rounds per route and per checkpoint."""
    lang = data.lang
    if data.charts["patrol"]:
        png = charts.patrol_bars(data.charts["patrol"], family, lang)
        pdf.heading(t("report.section.patrol", lang), keep=pdf.height_of(png, pdf.epw / 2))
        pdf.picture(png, pdf.epw / 2)
        pdf.ln(2)
    else:
        pdf.heading(t("report.section.patrol", lang))
    pdf.data_table(data.tables["patrol_routes"])
    pdf.data_table(data.tables["patrol_checkpoints"], max_rows=max_rows)


def section_devices(pdf: ReportPDF, data: ReportData, family: str) -> None:
    """Device availability per type."""
    lang = data.lang
    if data.tables["devices"].rows:
        png = charts.availability_bars(data.charts["devices"], family, lang)
        pdf.heading(t("report.section.devices", lang), keep=pdf.height_of(png, pdf.epw / 2))
        pdf.picture(png, pdf.epw / 2)
        pdf.ln(2)
    else:
        pdf.heading(t("report.section.devices", lang))
    pdf.data_table(data.tables["devices"])
    if data.tables["device_upkeep"].rows:
        pdf.data_table(data.tables["device_upkeep"], max_rows=60)
