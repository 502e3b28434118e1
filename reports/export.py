"""Every table of a report as CSV (one file per table, in a folder or a zip) or as XLSX (one sheet per
table, after a summary sheet). The rows are the ones the PDF shows, unshortened."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

from core.i18n import t
from core.spreadsheet import append_row, csv_writer, safe_cell, set_cell
from core.timefmt import local_text
from reports.model import ReportData, Table

SHEET_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")


def summary_lines(data: ReportData) -> list[str]:
    """Title, period, generation time, masking and the narrative."""
    lang = data.lang
    req = data.request
    return [
        f"{t('report.title', lang)} · {data.title_place}",
        t("report.meta.period", lang, start=req.start.isoformat(), end=req.end.isoformat(), days=req.days),
        t("report.meta.generated", lang, at=local_text(data.generated_ms, "%Y-%m-%d %H:%M")),
        t(f"report.mask.{req.principal.role}", lang),
        "",
        *data.narrative,
    ]


def table_csv(table: Table, lang: str) -> str:
    """One table as CSV text (the header in the report's language)."""
    buffer = io.StringIO()
    writer = csv_writer(buffer, lineterminator="\r\n")
    writer.writerow(table.labels(lang))
    for row in table.rows:
        writer.writerow([row.get(c.key) for c in table.columns])
    return buffer.getvalue()


def write_csv(data: ReportData, out: Path) -> Path:
    """CSV files, UTF-8 with a byte-order mark (so that Excel reads Chinese right): into a zip when
    out ends with .zip, else into the folder out (created)."""
    files = {f"{key}.csv": "\ufeff" + table_csv(table, data.lang) for key, table in data.tables.items()}
    files["summary.txt"] = "\n".join(summary_lines(data)) + "\n"
    if out.suffix.lower() == ".zip":
        out.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, text in files.items():
                archive.writestr(name, text.encode("utf-8"))
        return out
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (out / name).write_text(text, encoding="utf-8")
    return out


def sheet_name(title: str, taken: set[str]) -> str:
    """A valid, unique worksheet name (at most 31 characters, none of []:*?/\\)."""
    base = SHEET_FORBIDDEN.sub(" ", title).strip()[:31] or "Sheet"
    name, n = base, 2
    while name.lower() in taken:
        suffix = f" ({n})"
        name, n = base[: 31 - len(suffix)] + suffix, n + 1
    taken.add(name.lower())
    return name


def display_width(text: str) -> int:
    """Columns a text needs in a spreadsheet (a Chinese character takes two)."""
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)


def write_xlsx(data: ReportData, out: Path) -> Path:
    """A workbook: the summary, then one sheet per table."""
    from openpyxl import Workbook  # noqa: PLC0415 — heavy, one export format only
    from openpyxl.styles import Alignment, Font, PatternFill  # noqa: PLC0415 — heavy, one export format only
    from openpyxl.utils import get_column_letter  # noqa: PLC0415 — heavy, one export format only

    lang = data.lang
    book = Workbook()
    summary = book.active
    assert summary is not None
    taken: set[str] = set()
    summary.title = sheet_name(t("report.section.summary", lang), taken)
    for i, line in enumerate(summary_lines(data), start=1):
        cell = set_cell(summary, i, 1, line)
        cell.alignment = Alignment(wrap_text=True, vertical="top")
        if i == 1:
            cell.font = Font(bold=True, size=14)
    summary.column_dimensions["A"].width = 110
    head_font = Font(bold=True, color="FFFFFF")
    head_fill = PatternFill("solid", fgColor="24406B")
    for table in data.tables.values():
        sheet = book.create_sheet(sheet_name(t(table.title, lang), taken))
        labels = table.labels(lang)
        append_row(sheet, labels)
        for cell in sheet[1]:
            cell.font, cell.fill = head_font, head_fill
            cell.alignment = Alignment(wrap_text=True, vertical="center")
        for row in table.rows:
            append_row(sheet, [row.get(c.key) for c in table.columns])
            if row.get("_total"):
                for cell in sheet[sheet.max_row]:
                    cell.font = Font(bold=True)
        for index, column in enumerate(table.columns, start=1):
            values = [labels[index - 1], *(str(safe_cell(r.get(column.key))) for r in table.rows[:500])]
            longest = max(display_width(line) for v in values for line in (v.split("\n") or [""]))
            sheet.column_dimensions[get_column_letter(index)].width = min(60, max(8, longest + 2))
            if column.key in ("timeline", "note"):
                for cell in sheet[get_column_letter(index)][1:]:
                    cell.alignment = Alignment(wrap_text=True, vertical="top")
        sheet.freeze_panes = "A2"
        if table.rows:
            sheet.auto_filter.ref = sheet.dimensions
    out.parent.mkdir(parents=True, exist_ok=True)
    book.save(out)
    return out
