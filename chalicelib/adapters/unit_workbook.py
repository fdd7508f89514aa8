"""Registry workbooks (.xlsx): the units staff list in a sheet, and an empty one to fill in.

The first sheet is read; its first row names the columns, in English or Chinese
(``COLUMN_HEADINGS`` in domain/units.py). A column the registry does not know (notes, a
colour) and values under no heading are ignored, and the report says so; a required column
missing refuses the file. Formulas are read as their text (``=…``), not as the value Excel
last computed, so that a formula is reported, never registered.
"""

from __future__ import annotations

import zipfile
from io import BytesIO
from pathlib import Path
from xml.etree.ElementTree import ParseError

from openpyxl import Workbook, load_workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.utils.exceptions import InvalidFileException

from chalicelib.domain.units import (
    COLUMN_FOR_HEADING,
    COLUMN_HEADINGS,
    REQUIRED_COLUMNS,
    heading_key,
)
from chalicelib.services.units import SheetRow, UnitSheet

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

_HELP = {
    "serial_no": "required; letters, digits and . _ / -; format the column as text "
                 "(a number of more than 15 digits is refused: Excel keeps only 15)",
    "model": "required",
    "product_line": "for the response promises; default: default",
    "customer_name": "required",
    "customer_email": "required: the planned visits' cases are e-mailed to it",
    "customer_phone": "",
    "address": "where the unit stands",
    "region": "",
    "dealer": "a dealer id of the policies ([field_service.dealers])",
    "sold_on": "required; a date (or text YYYY-MM-DD, YYYY/MM/DD, YYYY年M月D日), not in "
               "the future",
    "accepted_on": "验收; the warranty counts from here when given",
    "operating_hours": "the last reading of the hour meter",
    "hours_read_on": "when it was read",
    "warranty_months": "empty: the company's default (hours only: 0 or empty with hours)",
    "warranty_hours": "operating hours; the warranty ends at whichever comes first",
    "maintenance_contract": "yes / no (是 / 否)",
}


class WorkbookError(ValueError):
    """The file cannot be read as a registry workbook; the message says why."""


def _known() -> str:
    return "; ".join(" / ".join(headings) for headings in COLUMN_HEADINGS.values())


def _columns(heading_row: tuple[object, ...] | None) -> tuple[list[str | None], list[str]]:
    """The registry column of each position in the sheet (None: no heading, or one the
    registry does not know), and a warning for each unknown heading."""
    columns: list[str | None] = []
    seen: dict[str, str] = {}
    unknown: list[str] = []
    for position, heading in enumerate(heading_row or ()):
        letter = get_column_letter(position + 1)
        if heading is None or (isinstance(heading, str) and not heading.strip()):
            columns.append(None)
            continue
        column = COLUMN_FOR_HEADING.get(heading_key(str(heading)))
        if column is None:
            unknown.append(f"'{heading}' (column {letter})")
            columns.append(None)
            continue
        if column in seen:
            raise WorkbookError(
                f"columns {seen[column]} and {letter} are both {column}: keep one of them"
            )
        seen[column] = letter
        columns.append(column)
    not_ours = f" (the headings {', '.join(unknown)} are not ones the registry knows)" \
        if unknown else ""
    if not seen:
        raise WorkbookError(f"the first row must name the columns{not_ours}; the known "
                            f"headings are: {_known()}")
    missing = [column for column in REQUIRED_COLUMNS if column not in seen]
    if missing:
        names = ", ".join(" / ".join(COLUMN_HEADINGS[column]) for column in missing)
        raise WorkbookError(f"the sheet has no column for: {names}{not_ours}")
    warnings = [
        f"column {name} is not a registry column: ignored (the registry's columns: "
        f"{', '.join(COLUMN_HEADINGS)})"
        for name in unknown
    ]
    return columns, warnings


def read_units(source: bytes | Path, *, max_rows: int | None = None) -> UnitSheet:
    """The rows of a registry workbook with their sheet row numbers (empty rows skipped),
    and what was ignored in it."""
    try:
        workbook = load_workbook(
            BytesIO(source) if isinstance(source, bytes) else source,
            read_only=True, data_only=False,
        )
    except (zipfile.BadZipFile, InvalidFileException, KeyError, ValueError, ParseError) as error:
        raise WorkbookError(f"not an Excel workbook (.xlsx): {error}") from None
    try:
        if not workbook.worksheets:
            raise WorkbookError("the workbook has no sheet")
        cells = workbook.worksheets[0].iter_rows(values_only=True)
        headings = next(cells, None)
        columns, warnings = _columns(headings)
        unknown = {position for position, heading in enumerate(headings or ())
                   if columns[position] is None and heading is not None
                   and not (isinstance(heading, str) and not heading.strip())}
        unheaded: dict[int, int] = {}  # values under no heading: position -> first row
        rows: list[SheetRow] = []
        for number, row in enumerate(cells, start=2):
            values: dict[str, object] = {}
            for position, value in enumerate(row):
                if value is None or (isinstance(value, str) and not value.strip()):
                    continue
                column = columns[position] if position < len(columns) else None
                if column is None:
                    if position not in unknown:
                        unheaded.setdefault(position, number)
                    continue
                values[column] = value
            if not values:
                continue
            if max_rows is not None and len(rows) == max_rows:
                raise WorkbookError(f"more than {max_rows} units: split the workbook, or "
                                    "import it with the command line")
            rows.append(SheetRow(number, values))
        warnings += [
            f"column {get_column_letter(position + 1)} has values but no heading (the first "
            f"in row {first}): ignored"
            for position, first in sorted(unheaded.items())
        ]
        return UnitSheet(rows, warnings)
    finally:
        workbook.close()


def template() -> bytes:
    """An empty registry workbook: the headings, and a sheet explaining each column."""
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "units"
    sheet.append(list(COLUMN_HEADINGS))
    for position, column in enumerate(COLUMN_HEADINGS, start=1):
        cell = sheet.cell(row=1, column=position)
        cell.font = Font(bold=True)
        sheet.column_dimensions[get_column_letter(position)].width = max(14, len(column) + 2)
    sheet.freeze_panes = "A2"
    help_sheet = workbook.create_sheet("help 说明")
    help_sheet.append(["column", "also headed", "what to write"])
    for cell in help_sheet[1]:
        cell.font = Font(bold=True)
    for column, headings in COLUMN_HEADINGS.items():
        others = " / ".join(heading for heading in headings if heading != column)
        help_sheet.append([column, others, _HELP[column]])
    help_sheet.append([])
    help_sheet.append(["", "", "Only the first sheet is read. Formulas are refused: type values."])
    for letter, width in (("A", 22), ("B", 28), ("C", 70)):
        help_sheet.column_dimensions[letter].width = width
    out = BytesIO()
    workbook.save(out)
    return out.getvalue()
