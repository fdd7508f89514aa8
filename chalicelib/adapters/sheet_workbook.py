"""The staff's sheet as a local xlsx workbook (openpyxl): what ``make run`` mirrors into
when no Google credentials are set, so a person can open the views in LibreOffice or Excel.

Same interface and same layout as Google Sheets: frozen header, dropdowns on editable
columns, read-only columns locked (sheet protection without a password: a guard against
slips, not a lock), hidden columns, overdue rows highlighted. Text that looks like a formula
is stored as text (never a formula), shown with Excel's quote prefix. Each read and each
write loads or saves the whole file: one "request". The file is replaced atomically, so a
reader never sees half a workbook.

Editable columns are formatted as text ("@"), so a long number typed there (a tracking
number) keeps its digits. A number the file holds that may not be what was typed (more
than 15 significant digits: the program kept a rounded float) is read as inexact and never
taken in. Dropdown values live in a hidden ``lists`` sheet (a validation typed inline is
limited to 255 characters, and a long staff list would be dropped silently).
"""

from __future__ import annotations

import math
import os
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from openpyxl import Workbook, load_workbook
from openpyxl.formatting.rule import FormulaRule
from openpyxl.styles import Font, PatternFill, Protection
from openpyxl.utils import column_index_from_string, get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.worksheet import Worksheet

from chalicelib.domain.sheet_views import VIEWS_BY_NAME
from chalicelib.services.sheets import SheetUnavailable, TabGrid, TabLayout, TabWrite


def pause(seconds: float) -> None:
    """How the service waits on this backend (looked up when called: tests record it)."""
    time.sleep(seconds)


_LOCKS: dict[Path, threading.Lock] = {}
OVERDUE_FILL = PatternFill(start_color="FFFFD9D9", end_color="FFFFD9D9", fill_type="solid")
_EDITABLE = Protection(locked=False)
TEXT_FORMAT = "@"
LISTS = "lists"  # the hidden sheet holding the dropdowns' values
_EXACT_BELOW = 1e15  # spreadsheets keep 15 significant digits


def _text(value: Any) -> tuple[str, bool]:
    """A cell's value as text, and whether that text is surely what was typed (a number of
    more than 15 digits is not: the program that saved the file rounded it)."""
    if value is None:
        return "", True
    if isinstance(value, bool):
        return str(value), True
    if isinstance(value, int):
        return str(value), abs(value) < _EXACT_BELOW
    if isinstance(value, float):
        if not math.isfinite(value) or abs(value) >= _EXACT_BELOW:
            return f"{value:.15g}", False
        text = f"{value:.15g}"
        return text, "e" not in text
    return str(value), True


def _put(sheet: Worksheet, row: int, column: int, value: str, editable: bool) -> None:
    cell = sheet.cell(row=row, column=column)
    cell.value = value or None
    if value.startswith("="):
        cell.data_type = "s"  # text, never a formula
        cell.quotePrefix = True
    if editable:
        cell.protection = _EDITABLE
        cell.number_format = TEXT_FORMAT


class WorkbookSheet:
    """A spreadsheet in a local .xlsx file (SheetBackend)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.requests = 0
        self._lock = _LOCKS.setdefault(self.path.resolve(), threading.Lock())

    def _load(self) -> Workbook | None:
        self.requests += 1
        if not self.path.exists():
            return None
        try:
            return load_workbook(self.path)
        except (OSError, KeyError, ValueError) as error:  # being saved by a person, say
            raise SheetUnavailable(f"cannot read {self.path}: {error}") from error

    def read(self, titles: Sequence[str]) -> dict[str, TabGrid | None]:
        with self._lock:
            book = self._load()
        found: dict[str, TabGrid | None] = {title: None for title in titles}
        if book is None:
            return found
        for title in titles:
            if title in book.sheetnames:
                found[title] = self._grid(book[title], None)
        return found

    def read_rows(self, title: str, rows: Sequence[int]) -> TabGrid:
        with self._lock:
            book = self._load()
        if book is None or title not in book.sheetnames:
            return TabGrid(title, [])
        return self._grid(book[title], set(rows))

    @staticmethod
    def _grid(sheet: Worksheet, only: set[int] | None) -> TabGrid:
        read = [[_text(v) for v in row] for row in sheet.iter_rows(values_only=True)]
        values = [[text for text, _ in row] for row in read]
        header = values[0] if values else []
        while header and not header[-1]:
            header.pop()
        grid = TabGrid(sheet.title, header)
        for number, row in enumerate(values[1:], start=2):
            if (only is None or number in only) and any(row):
                grid.rows[number] = row
                odd = {i for i, (_, exact) in enumerate(read[number - 1]) if not exact}
                if odd:
                    grid.inexact[number] = odd
        return grid

    def pause(self, seconds: float) -> None:
        pause(seconds)

    def write(self, writes: Sequence[TabWrite]) -> None:
        with self._lock:
            book = self._load()
            if book is None:
                book = Workbook()
                if book.active is not None:
                    book.remove(book.active)
            editable: dict[str, set[int]] = {}
            for write in writes:
                if write.layout is not None:
                    self._lay_out(book, write.layout)
                elif write.dropdowns is not None and write.title in book.sheetnames:
                    _dropdowns(book, book[write.title], write.dropdowns)
            if LISTS in book.sheetnames:  # kept last, out of the way
                lists = book[LISTS]
                book.move_sheet(lists, len(book.sheetnames) - 1 - book.index(lists))
            for write in writes:
                sheet = book[write.title]
                columns = editable.setdefault(write.title, _editable_columns(sheet))
                for number, values in write.updates.items():
                    for index, value in enumerate(values, start=1):
                        _put(sheet, number, index, value, index in columns)
                for number in sorted(set(write.deletes), reverse=True):
                    sheet.delete_rows(number)
                last = sheet.max_row
                while last > 1 and not any(
                    sheet.cell(row=last, column=c).value for c in range(1, sheet.max_column + 1)
                ):
                    last -= 1
                for offset, values in enumerate(write.appends, start=1):
                    for index, value in enumerate(values, start=1):
                        _put(sheet, last + offset, index, value, index in columns)
            self._save(book)

    def _save(self, book: Workbook) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, suffix=".xlsx")
        os.close(handle)
        try:
            book.save(temporary)
            os.replace(temporary, self.path)
        except OSError as error:
            Path(temporary).unlink(missing_ok=True)
            raise SheetUnavailable(f"cannot write {self.path}: {error}") from error

    @staticmethod
    def _lay_out(book: Workbook, layout: TabLayout) -> None:
        if layout.title in book.sheetnames:
            sheet = book[layout.title]
            if layout.clear and sheet.max_row > 1:
                sheet.delete_rows(2, sheet.max_row)
            sheet.data_validations.dataValidation = []
            sheet.conditional_formatting = type(sheet.conditional_formatting)()
        else:
            sheet = book.create_sheet(layout.title)
        width = len(layout.headers)
        for index, text in enumerate(layout.headers, start=1):
            cell = sheet.cell(row=1, column=index, value=text)
            cell.font = Font(bold=True)
        sheet.freeze_panes = "A2"
        last = get_column_letter(width)
        _dropdowns(book, sheet, layout)
        for index in range(width):
            letter = get_column_letter(index + 1)
            dimension = sheet.column_dimensions[letter]
            dimension.hidden = index in layout.hidden
            if index in layout.editable:
                dimension.protection = _EDITABLE
            if index in layout.text_columns:
                dimension.number_format = TEXT_FORMAT
        sheet.protection.sheet = True
        sheet.protection.sort = False
        sheet.protection.autoFilter = False
        sheet.protection.formatColumns = False
        if layout.highlight is not None:
            column = get_column_letter(layout.highlight + 1)
            sheet.conditional_formatting.add(
                f"A2:{last}1048576",
                FormulaRule(formula=[f'${column}2<>""'], fill=OVERDUE_FILL),  # type: ignore[no-untyped-call]
            )
        sheet.column_dimensions["A"].width = 12


def _dropdowns(book: Workbook, sheet: Worksheet, layout: TabLayout) -> None:
    """Lay the tab's dropdowns afresh, each a list kept in the hidden ``lists`` sheet (one
    column per tab and column, headed "<tab>:<column>")."""
    sheet.data_validations.dataValidation = []
    for index, choices in layout.choices.items():
        letter = get_column_letter(index + 1)
        rule = DataValidation(type="list", formula1=_list_range(book, layout.title, index,
                                                                choices),
                              allow_blank=True,
                              showErrorMessage=index in layout.strict_choices)
        rule.add(f"{letter}2:{letter}1048576")
        sheet.add_data_validation(rule)


def _list_range(book: Workbook, title: str, index: int, choices: Sequence[str]) -> str:
    if LISTS in book.sheetnames:
        lists = book[LISTS]
    else:
        lists = book.create_sheet(LISTS)
        lists.sheet_state = "hidden"
        lists.protection.sheet = True
    name = f"{title}:{index}"
    headers = [lists.cell(row=1, column=c).value for c in range(1, lists.max_column + 1)]
    free = len(headers) + 1 if any(headers) else 1
    column = headers.index(name) + 1 if name in headers else free
    for row in range(1, max(lists.max_row, len(choices) + 1) + 1):
        lists.cell(row=row, column=column).value = None
    _put(lists, 1, column, name, False)
    for row, choice in enumerate(choices, start=2):
        _put(lists, row, column, choice, False)
    letter = get_column_letter(column)
    return f"'{LISTS}'!${letter}$2:${letter}${len(choices) + 1}"


def _editable_columns(sheet: Worksheet) -> set[int]:
    """The 1-based columns people may edit: found by their header text (in either
    language) among the view's declared columns. A program that saved the file may have
    merged the column settings of adjacent columns into one range (LibreOffice and Excel
    write ``<col min="11" max="13">``), so those are not a reliable guide; for a tab that
    is not a view, the columns unlocked by those settings, every column of each range."""
    view = VIEWS_BY_NAME.get(sheet.title)
    if view is not None:
        editable = {column.key for column in view.editable}
        found: set[int] = set()
        for cell in sheet[1]:
            key = view.key_of_header(str(cell.value)) if cell.value is not None else None
            if key in editable and isinstance(cell.column, int):
                found.add(cell.column)
        return found
    columns: set[int] = set()
    for letter, dimension in sheet.column_dimensions.items():
        if dimension.protection is not None and not dimension.protection.locked:
            first = dimension.min or column_index_from_string(letter)
            columns.update(range(first, max(dimension.max or first, first) + 1))
    return columns
