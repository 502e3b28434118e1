"""Cells of every CSV and XLSX export, neutralised in one place against formula injection.

A spreadsheet program runs a cell that begins with ``=``, ``+``, ``-`` or ``@`` (and, in some
programs, a tab or a carriage return) as a formula: a name, a note or a username typed by anyone
would become ``=HYPERLINK(…)`` or worse in an officer's spreadsheet. Following OWASP's advice on
CSV injection, such text gets a leading ``'`` (shown as text, never run), and every text field of a
CSV is quoted, so that a ``;`` or a tab inside it cannot start a new cell in a spreadsheet set to
that separator. Numbers stay numbers: ``-3`` is a number, only text is prefixed.

Every writer of CSV goes through ``csv_writer``; every XLSX cell through ``append_row`` or ``set_cell``.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from openpyxl.cell.cell import Cell
    from openpyxl.worksheet.worksheet import Worksheet

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
PLAIN_TYPES = (int, float, Decimal, dt.date, dt.time, dt.timedelta)  # bool is an int; datetime a date


class TextSink(Protocol):
    """Where CSV text goes (an open text file, a StringIO)."""

    def write(self, text: str, /) -> Any: ...


def safe_cell(value: object) -> object:
    """A value as a spreadsheet cell: None is empty, numbers and dates stay as they are, text that a
    spreadsheet would run as a formula gets a leading ' so that it is shown as text."""
    if value is None:
        return ""
    if isinstance(value, PLAIN_TYPES):
        return value
    text = value if isinstance(value, str) else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


class SafeCsvWriter:
    """A csv.writer whose every cell has passed safe_cell, text fields quoted."""

    def __init__(self, out: TextSink, **fmt: Any) -> None:
        self._writer = csv.writer(out, quoting=csv.QUOTE_NONNUMERIC, **fmt)

    def writerow(self, row: Iterable[object]) -> None:
        """Write one row."""
        self._writer.writerow([safe_cell(v) for v in row])

    def writerows(self, rows: Iterable[Iterable[object]]) -> None:
        """Write rows."""
        for row in rows:
            self.writerow(row)


def csv_writer(out: TextSink, **fmt: Any) -> SafeCsvWriter:
    """The CSV writer of every export (``fmt``: csv dialect options such as ``lineterminator``)."""
    return SafeCsvWriter(out, **fmt)


def append_row(sheet: Worksheet, row: Iterable[object]) -> None:
    """Append one row to a worksheet, every text cell stored as text (openpyxl would store a text
    beginning with '=' as a formula, and one like '#N/A' as an error)."""
    sheet.append([safe_cell(v) for v in row])
    for cell in sheet[sheet.max_row]:
        if isinstance(cell.value, str):
            cell.data_type = "s"


def set_cell(sheet: Worksheet, row: int, column: int, value: object) -> Cell:
    """Write one worksheet cell (text stored as text, as in append_row)."""
    cell = sheet.cell(row=row, column=column, value=safe_cell(value))
    if isinstance(cell.value, str):
        cell.data_type = "s"
    return cell
