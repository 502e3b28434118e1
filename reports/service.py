"""Making a report: check the font (for a PDF) first, read the data, render the chosen format,
write the file atomically."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from reports.collect import collect
from reports.export import write_csv, write_xlsx
from reports.fonts import report_fonts
from reports.model import Coverage, ReportData, ReportRequest
from reports.request import check_format
from store.stores import Stores

Progress = Callable[[int, str], None]
EXTENSIONS = {"pdf": "pdf", "xlsx": "xlsx", "csv": "zip"}


def default_filename(request: ReportRequest, fmt: str) -> str:
    """report-wanhu-2026-11-01-2026-11-07.pdf (ASCII: safe in every download header and file system)."""
    if request.city:
        place = "city"
    elif len(request.communities) <= 3:
        place = "+".join(request.communities)
    else:
        place = "+".join(request.communities[:3]) + f"+{len(request.communities) - 3}"
    return f"report-{place}-{request.start.isoformat()}-{request.end.isoformat()}.{EXTENSIONS[fmt]}"


def make_report(
    stores: Stores,
    request: ReportRequest,
    fmt: str,
    out: Path,
    *,
    now_ms: int | None = None,
    progress: Progress | None = None,
    coverage: Coverage | None = None,
) -> ReportData:
    """Render the report to out (a PDF or XLSX file; for CSV a folder, or a zip when out ends in .zip);
    coverage (a daily report) says on the title page how far its data runs."""
    check_format(fmt)
    step = progress or (lambda _pct, _what: None)
    fonts = report_fonts(stores.settings) if fmt == "pdf" else None  # a missing font fails before the work
    now = now_ms if now_ms is not None else time.time_ns() // 1_000_000
    data = collect(stores, request, now_ms=now, progress=step)
    data.coverage = coverage
    out = Path(out)
    if fmt == "csv" and out.suffix.lower() != ".zip":
        write_csv(data, out)
        step(100, "report.progress.done")
        return data
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.stem}.{os.getpid()}.partial{out.suffix}")
    try:
        if fmt == "pdf":
            from reports.pdf import render_pdf  # noqa: PLC0415 — heavy, one export format only

            assert fonts is not None
            render_pdf(data, fonts, partial, max_rows=stores.settings.report_pdf_max_rows, progress=step)
        elif fmt == "xlsx":
            write_xlsx(data, partial)
        else:
            write_csv(data, partial)
        os.replace(partial, out)  # readers never see half a file
    finally:
        partial.unlink(missing_ok=True)
    step(100, "report.progress.done")
    return data
