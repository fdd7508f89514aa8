"""An in-memory fake of the Google Sheets v4 HTTP API (and Google's OAuth token endpoint),
served through requests-mock, so tests drive the real gspread / google-auth code paths.

Usage::

    with FakeGoogleSheets() as google:
        sid = google.create_spreadsheet("Service desk")
        client = gspread.service_account_from_dict(google.service_account_info())
        spreadsheet = client.open_by_key(sid)
        ...
        assert google.cell(sid, "Sheet1", "A1") == "hello"

or as a pytest fixture: ``google_sheets = pytest.fixture(fake_google_sheets)``.

What is modelled (see the module's README-style notes at the bottom of this docstring):

* ``POST https://oauth2.googleapis.com/token`` (JWT-bearer grant; the assertion's RS256
  signature is verified against the fake service account's key).
* ``GET https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/{email}/
  allowedLocations``: google-auth >= 2.6x looks up the "Regional Access Boundary" in a
  background thread after a token refresh. Answered with no boundary (``0x0``), recorded in
  ``boundary_lookups`` (not ``requests``: its timing is the thread's), and ``stop()`` joins
  those threads before the Mocker stops, so none can reach the real network.
* ``GET  /v4/spreadsheets/{id}`` (metadata; ``fields`` ignored, ``includeGridData=true``
  is *not* modelled and answers 501).
* ``GET  /v4/spreadsheets/{id}/values/{range}`` and ``.../values:batchGet``.
* ``PUT  /v4/spreadsheets/{id}/values/{range}``, ``POST .../values:batchUpdate``,
  ``POST .../values/{range}:append``, ``POST .../values/{range}:clear``,
  ``POST .../values:batchClear``.
* ``POST /v4/spreadsheets/{id}:batchUpdate`` with the request types listed in
  ``_BatchUpdate.HANDLERS`` (others answer 400, so code cannot rely on something unmodelled).

Anything else on a Google host answers 501 and is recorded in ``unimplemented``; with
``strict=True`` (the default) leaving the context manager then fails the test.

Simplifications, on purpose:

* Formulas are stored, never evaluated: reads show ``formula_value(text)`` (default
  ``"#FORMULA"``; ``"#ERROR!"`` for text that Google would mis-parse as a formula, e.g.
  ``"+49 170 ..."`` or ``"- broken"`` typed with USER_ENTERED).
* USER_ENTERED parsing covers formulas, plain numbers (``"0123"`` becomes 123, like Google),
  TRUE/FALSE, a leading apostrophe and ISO / US dates (stored as a date serial number that
  still displays as typed). Currency, percent, thousands separators and times stay text.
* Number display (FORMATTED_VALUE): integral numbers without ``.0``, otherwise up to 15
  significant digits, large numbers as ``1.23457E+19``; formats do not change the display.
  Text typed by a person (``set_cell``, ``set_values``) into a cell whose format has
  ``numberFormat.type`` TEXT is kept as a string, like Google's "Plain text" format.
* Data validations are kept as (GridRange, rule) entries, later entries win; Google keeps
  them per cell and only exposes them through grid data, which this fake does not serve.
* Row/column inserts and deletes shift cells, formats, notes, validations, protected ranges,
  conditional-format ranges, hidden/sized rows and columns and the frozen counts; formats are
  not inherited by inserted rows.
* ``values:append`` finds the "table" as the contiguous block of non-empty rows starting at
  the range's first row (an empty first row is written to directly).
* Reads of ranges beyond the grid return no values (no error); writes through ``updateCells``
  / ``repeatCell`` / ``setDataValidation`` beyond the grid answer 400 "exceeds grid limits"
  (callers must ``appendDimension`` first), while the values API grows the grid, like Google.
* Metadata omits zero/false/empty fields, like Google's JSON (``frozenRowCount`` appears only
  when non-zero, ``protectedRanges`` / ``conditionalFormats`` only when present).
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import json
import math
import random
import re
import string
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, ClassVar, Literal
from urllib.parse import parse_qs, unquote, urlsplit

import requests_mock
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import exceptions as auth_exceptions
from google.auth import jwt
from requests.structures import CaseInsensitiveDict

SHEETS_BASE = "https://sheets.googleapis.com/v4/spreadsheets"
TOKEN_URI = "https://oauth2.googleapis.com/token"
CLIENT_EMAIL = "desk@fake-project.iam.gserviceaccount.com"
PROJECT_ID = "fake-project"
JWT_GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"

MAX_CELLS = 10_000_000
MAX_CELL_CHARS = 50_000
DEFAULT_ROWS = 1000
DEFAULT_COLUMNS = 26

CellKind = Literal["string", "number", "bool", "formula"]
CellValue = str | float | bool

READ_KINDS = frozenset({"metadata", "values.get", "values.batchGet"})
WRITE_KINDS = frozenset(
    {
        "values.update",
        "values.batchUpdate",
        "values.append",
        "values.clear",
        "values.batchClear",
        "batchUpdate",
    }
)
SHEETS_KINDS = READ_KINDS | WRITE_KINDS
_KIND_GROUPS = {"reads": READ_KINDS, "writes": WRITE_KINDS, "sheets": SHEETS_KINDS}

_WRITE_SCOPES = frozenset(
    {
        "https://www.googleapis.com/auth/spreadsheets",
        "https://www.googleapis.com/auth/drive",
        "https://www.googleapis.com/auth/drive.file",
    }
)
_READ_SCOPES = _WRITE_SCOPES | {
    "https://www.googleapis.com/auth/spreadsheets.readonly",
    "https://www.googleapis.com/auth/drive.readonly",
}

_GOOGLE_URL = re.compile(
    r"^https?://([A-Za-z0-9-]+\.)*(googleapis\.com|google\.com|googleusercontent\.com)"
    r"(:\d+)?(/|$)"
)

_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    408: "DEADLINE_EXCEEDED",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_FAULT_MESSAGES = {
    400: "Invalid request.",
    401: "Request had invalid authentication credentials.",
    403: "The caller does not have permission",
    404: "Requested entity was not found.",
    409: "The operation was aborted.",
    500: "Internal error encountered.",
    503: "The service is currently unavailable.",
    504: "The request timed out. Please try again.",
}
_GFE_HTML = (
    "<!DOCTYPE html>\n<html lang=en><meta charset=utf-8><title>Error {status} (Server Error)!!1"
    "</title><p><b>{status}.</b> <ins>That’s an error.</ins><p>The server encountered a "
    "temporary error and could not complete your request.<p>Please try again in 30 seconds. "
    "<ins>That’s all we know.</ins>"
)

# Google request types that exist but this fake does not model (better error message).
_KNOWN_UNMODELLED = frozenset(
    {
        "updateProtectedRange",
        "updateConditionalFormatRule",
        "updateDimensionGroup",
        "addNamedRange",
        "updateNamedRange",
        "deleteNamedRange",
        "mergeCells",
        "unmergeCells",
        "setBasicFilter",
        "clearBasicFilter",
        "sortRange",
        "findReplace",
        "copyPaste",
        "cutPaste",
        "pasteData",
        "duplicateSheet",
        "moveDimension",
        "addBanding",
        "addChart",
        "addFilterView",
        "deleteRange",
        "insertRange",
        "addDimensionGroup",
        "deleteDimensionGroup",
        "textToColumns",
        "createDeveloperMetadata",
        "deleteDuplicates",
        "trimWhitespace",
        "randomizeRange",
        "autoFill",
        "addSlicer",
        "addTable",
    }
)

_NUMBER_RE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_ISO_DATE_RE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?$")
_US_DATE_RE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")
_CELL_REF_RE = re.compile(r"^\$?([A-Za-z]{0,3})\$?(\d*)$")
_PLAIN_TITLE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LOOKS_LIKE_CELL_RE = re.compile(r"^([A-Za-z]{1,3}\d+|[Rr]\d*[Cc]\d*|true|false)$", re.IGNORECASE)
_DATE_EPOCH = dt.datetime(1899, 12, 30)


# --------------------------------------------------------------------------------------
# Service account key
# --------------------------------------------------------------------------------------


@functools.cache
def _private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@functools.cache
def _private_key_pem() -> str:
    return (
        _private_key()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )


@functools.cache
def _public_key_pem() -> str:
    return (
        _private_key()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


# --------------------------------------------------------------------------------------
# Data model
# --------------------------------------------------------------------------------------


@dataclass
class StoredCell:
    """One cell's user-entered value. Numbers are floats, like Google's ``numberValue``."""

    value: CellValue
    kind: CellKind
    display: str | None = None  # FORMATTED_VALUE override (e.g. a date typed as text)


@dataclass
class DataValidation:
    """``setDataValidation`` as stored: ``rule`` None means "cleared" for that range."""

    range: dict[str, Any]
    rule: dict[str, Any] | None


@dataclass(eq=False)
class Tab:
    """One sheet (tab). Row/column indexes are 0-based, like the API's GridRange."""

    sheet_id: int
    title: str
    index: int = 0
    row_count: int = DEFAULT_ROWS
    column_count: int = DEFAULT_COLUMNS
    frozen_row_count: int = 0
    frozen_column_count: int = 0
    hidden: bool = False
    hide_gridlines: bool = False
    tab_color: dict[str, Any] | None = None
    cells: dict[tuple[int, int], StoredCell] = field(default_factory=dict)
    formats: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)
    notes: dict[tuple[int, int], str] = field(default_factory=dict)
    data_validations: list[DataValidation] = field(default_factory=list)
    protected_ranges: list[dict[str, Any]] = field(default_factory=list)
    conditional_formats: list[dict[str, Any]] = field(default_factory=list)
    hidden_rows: set[int] = field(default_factory=set)
    hidden_columns: set[int] = field(default_factory=set)
    row_pixel_sizes: dict[int, int] = field(default_factory=dict)
    column_pixel_sizes: dict[int, int] = field(default_factory=dict)

    def properties(self) -> dict[str, Any]:
        """``SheetProperties`` as Google's JSON shows them (zero/false fields omitted)."""
        grid: dict[str, Any] = {"rowCount": self.row_count, "columnCount": self.column_count}
        if self.frozen_row_count:
            grid["frozenRowCount"] = self.frozen_row_count
        if self.frozen_column_count:
            grid["frozenColumnCount"] = self.frozen_column_count
        if self.hide_gridlines:
            grid["hideGridlines"] = True
        props: dict[str, Any] = {
            "sheetId": self.sheet_id,
            "title": self.title,
            "index": self.index,
            "sheetType": "GRID",
            "gridProperties": grid,
        }
        if self.hidden:
            props["hidden"] = True
        if self.tab_color is not None:
            props["tabColor"] = copy.deepcopy(self.tab_color)
        return props

    def validation_at(self, a1: str) -> dict[str, Any] | None:
        """The data-validation rule in force at a cell (``"K2"``), or None."""
        row, col = parse_cell(a1)
        for validation in reversed(self.data_validations):
            if _grid_contains(validation.range, row, col):
                return validation.rule
        return None

    def protected_ranges_at(self, a1: str) -> list[dict[str, Any]]:
        row, col = parse_cell(a1)
        return [p for p in self.protected_ranges if _grid_contains(p.get("range", {}), row, col)]

    def conditional_formats_at(self, a1: str) -> list[dict[str, Any]]:
        row, col = parse_cell(a1)
        return [
            rule
            for rule in self.conditional_formats
            if any(_grid_contains(r, row, col) for r in rule.get("ranges", []))
        ]

    def is_column_hidden(self, column: int | str) -> bool:
        """``column`` is a 0-based index or letters (``"K"``)."""
        index = column if isinstance(column, int) else column_index(column)
        return index in self.hidden_columns

    def last_data_row(self) -> int:
        """0-based index of the last row holding a value, -1 if the tab is empty."""
        return max((r for (r, _c), cell in self.cells.items() if not _is_blank(cell)), default=-1)


@dataclass(eq=False)
class FakeSpreadsheet:
    spreadsheet_id: str
    title: str
    locale: str = "en_US"
    time_zone: str = "Etc/GMT"
    shared: bool = True
    tabs: list[Tab] = field(default_factory=list)

    def tab(self, title: str) -> Tab:
        for tab in self.tabs:
            if tab.title == title:
                return tab
        raise KeyError(f"no tab {title!r} in spreadsheet {self.spreadsheet_id}")

    def tab_by_id(self, sheet_id: int) -> Tab | None:
        return next((t for t in self.tabs if t.sheet_id == sheet_id), None)

    def reindex(self) -> None:
        for i, tab in enumerate(self.tabs):
            tab.index = i


@dataclass
class RecordedRequest:
    """One HTTP request that reached the fake (token requests included)."""

    method: str
    url: str
    path: str
    query: dict[str, list[str]]
    body: Any
    body_size: int
    kind: str
    spreadsheet_id: str | None = None
    range: str | None = None
    headers: CaseInsensitiveDict[str] = field(default_factory=CaseInsensitiveDict)
    status: int = 0
    injected: bool = False  # answered by fail_next / outage / quota

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def request_types(self) -> list[str]:
        """For a batchUpdate: the request type of each entry, in order."""
        if self.kind != "batchUpdate" or not isinstance(self.body, dict):
            return []
        return [next(iter(r), "") for r in self.body.get("requests", []) if isinstance(r, dict)]

    @property
    def value_input_option(self) -> str | None:
        if isinstance(self.body, dict) and "valueInputOption" in self.body:
            return str(self.body["valueInputOption"])
        return self.query.get("valueInputOption", [None])[0]


@dataclass
class _Fault:
    remaining: int
    status: int
    kinds: frozenset[str] | None
    apply: bool
    message: str | None


class _ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        payload: dict[str, Any] | None = None,
        html: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.payload = payload
        self.html = html

    def render(self) -> tuple[str, str]:
        if self.html:
            return _GFE_HTML.format(status=self.status), "text/html; charset=UTF-8"
        payload = self.payload or {
            "error": {
                "code": self.status,
                "message": self.message,
                "status": _STATUS_NAMES.get(self.status, "UNKNOWN"),
            }
        }
        return json.dumps(payload), "application/json; charset=UTF-8"


def _bad(message: str) -> _ApiError:
    return _ApiError(400, message)


# --------------------------------------------------------------------------------------
# A1 notation
# --------------------------------------------------------------------------------------


def column_letter(index: int) -> str:
    """0 -> "A", 25 -> "Z", 26 -> "AA"."""
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = string.ascii_uppercase[rem] + letters
    return letters


def column_index(letters: str) -> int:
    """Letters to a 0-based index: "A" -> 0, "AA" -> 26."""
    value = 0
    for ch in letters.upper():
        value = value * 26 + (ord(ch) - ord("A") + 1)
    return value - 1


def parse_cell(a1: str) -> tuple[int, int]:
    """``"B3"`` -> (2, 1) as (row, column), 0-based."""
    m = _CELL_REF_RE.match(a1.strip())
    if not m or not m.group(1) or not m.group(2) or int(m.group(2)) < 1:
        raise ValueError(f"not a single-cell A1 reference: {a1!r}")
    return int(m.group(2)) - 1, column_index(m.group(1))


def quote_title(title: str) -> str:
    """A tab title as Google writes it in a range: quoted when it needs to be."""
    if _PLAIN_TITLE_RE.match(title) and not _LOOKS_LIKE_CELL_RE.match(title):
        return title
    return "'" + title.replace("'", "''") + "'"


def _split_range(text: str) -> tuple[str | None, str | None]:
    """-> (sheet title or None, cell part or None)."""
    text = text.strip()
    if text.startswith("'"):
        name: list[str] = []
        i = 1
        while i < len(text):
            ch = text[i]
            if ch == "'":
                if i + 1 < len(text) and text[i + 1] == "'":
                    name.append("'")
                    i += 2
                    continue
                break
            name.append(ch)
            i += 1
        else:
            raise ValueError("unterminated quote")
        rest = text[i + 1 :]
        if rest == "":
            return "".join(name), None
        if not rest.startswith("!") or len(rest) == 1:
            raise ValueError("expected ! after the sheet name")
        return "".join(name), rest[1:]
    if "!" in text:
        sheet, _, cells = text.rpartition("!")
        if not sheet or not cells:
            raise ValueError("empty sheet or cell part")
        return sheet, cells
    return None, text


def _parse_ref(ref: str) -> tuple[int | None, int | None]:
    m = _CELL_REF_RE.match(ref)
    if not m or (not m.group(1) and not m.group(2)):
        raise ValueError(f"bad reference {ref!r}")
    col = column_index(m.group(1)) if m.group(1) else None
    if m.group(2):
        if int(m.group(2)) < 1:
            raise ValueError("row 0")
        return col, int(m.group(2)) - 1
    return col, None


@dataclass(frozen=True)
class _Area:
    """A resolved A1 range. ``None`` ends are unbounded (to the grid's edge)."""

    tab: Tab
    start_row: int
    end_row: int | None
    start_col: int
    end_col: int | None
    single_cell: bool = False

    def clipped(self) -> tuple[int, int, int, int]:
        er = self.tab.row_count if self.end_row is None else min(self.end_row, self.tab.row_count)
        ec = (
            self.tab.column_count
            if self.end_col is None
            else min(self.end_col, self.tab.column_count)
        )
        return self.start_row, max(er, self.start_row), self.start_col, max(ec, self.start_col)


def _parse_cells(cells: str) -> tuple[int, int | None, int, int | None, bool]:
    cells = cells.strip()
    if ":" not in cells:
        col, row = _parse_ref(cells)
        if col is None or row is None:
            raise ValueError("a single reference needs a column and a row")
        return row, row + 1, col, col + 1, True
    first, _, second = cells.partition(":")
    c1, r1 = _parse_ref(first)
    c2, r2 = _parse_ref(second)
    if (c1 is None and r2 is None) or (r1 is None and c2 is None):
        raise ValueError("mixed row/column range")  # e.g. "5:C"
    sr = r1 if r1 is not None else 0
    er = r2 + 1 if r2 is not None else None
    sc = c1 if c1 is not None else 0
    ec = c2 + 1 if c2 is not None else None
    if er is not None and er <= sr:
        sr, er = er - 1, sr + 1
    if ec is not None and ec <= sc:
        sc, ec = ec - 1, sc + 1
    return sr, er, sc, ec, False


def _resolve(state: FakeSpreadsheet, text: str) -> _Area:
    try:
        sheet, cells = _split_range(text)
        if sheet is None:
            assert cells is not None
            try:
                return _Area(state.tab(cells), 0, None, 0, None)
            except KeyError:
                tab = state.tabs[0]
        else:
            tab = state.tab(sheet)
        if cells is None:
            return _Area(tab, 0, None, 0, None)
        sr, er, sc, ec, single = _parse_cells(cells)
        return _Area(tab, sr, er, sc, ec, single)
    except (ValueError, KeyError, AssertionError, IndexError):
        raise _bad(f"Unable to parse range: {text}") from None


def _range_name(tab: Tab, sr: int, er: int, sc: int, ec: int) -> str:
    start = f"{column_letter(sc)}{sr + 1}"
    if er - sr <= 1 and ec - sc <= 1:
        return f"{quote_title(tab.title)}!{start}"
    return f"{quote_title(tab.title)}!{start}:{column_letter(max(ec - 1, sc))}{max(er, sr + 1)}"


def _grid_contains(gr: dict[str, Any], row: int, col: int) -> bool:
    return (
        int(gr.get("startRowIndex", 0)) <= row
        and (gr.get("endRowIndex") is None or row < int(gr["endRowIndex"]))
        and int(gr.get("startColumnIndex", 0)) <= col
        and (gr.get("endColumnIndex") is None or col < int(gr["endColumnIndex"]))
    )


# --------------------------------------------------------------------------------------
# Values: typing and rendering
# --------------------------------------------------------------------------------------


def _is_blank(cell: StoredCell | None) -> bool:
    return cell is None or (cell.kind == "string" and cell.value == "")


def _check_length(text: str) -> None:
    if len(text) > MAX_CELL_CHARS:
        raise _bad(
            f"Your input contains more than the maximum of {MAX_CELL_CHARS} characters "
            "in a single cell."
        )


def _date_serial(when: dt.datetime) -> float:
    delta = when - _DATE_EPOCH
    return delta.days + delta.seconds / 86400


def _typed(text: str) -> StoredCell | None:
    """What Google stores for text typed in the UI or sent with USER_ENTERED."""
    _check_length(text)
    if text == "":
        return None
    if text.startswith("'"):
        return StoredCell(text[1:], "string")
    if text.startswith("=") and len(text) > 1:
        return StoredCell(text, "formula")
    stripped = text.strip()
    if _NUMBER_RE.match(stripped):
        number = float(stripped)
        if math.isfinite(number):
            return StoredCell(number, "number")
    if stripped.upper() in ("TRUE", "FALSE"):
        return StoredCell(stripped.upper() == "TRUE", "bool")
    when: dt.datetime | None = None
    try:
        if m := _ISO_DATE_RE.match(stripped):
            y, mo, d, hh, mm, ss = m.groups()
            when = dt.datetime(int(y), int(mo), int(d), int(hh or 0), int(mm or 0), int(ss or 0))
        elif m := _US_DATE_RE.match(stripped):
            when = dt.datetime(int(m.group(3)), int(m.group(1)), int(m.group(2)))
    except ValueError:
        when = None
    if when is not None:
        return StoredCell(_date_serial(when), "number", display=stripped)
    if len(stripped) > 1 and stripped[0] in "+-":
        # Google parses "+49 170 1234567" or "- broken" as a formula (and shows #ERROR!).
        return StoredCell(text, "formula")
    return StoredCell(text, "string")


def _format_number(value: float) -> str:
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    text = f"{value:.15g}"
    if "e" in text:
        mantissa, exponent = f"{value:.5E}".split("E")
        mantissa = mantissa.rstrip("0").rstrip(".")
        return f"{mantissa}E{exponent}"
    return text


def _json_number(value: float) -> int | float:
    if value == int(value) and abs(value) < 2**53:
        return int(value)
    return value


def default_formula_value(formula: str) -> CellValue:
    """Stand-in for a computed formula: formulas are stored, never evaluated."""
    return "#ERROR!" if formula[:1] in "+-" else "#FORMULA"


# --------------------------------------------------------------------------------------
# Row / column shifting
# --------------------------------------------------------------------------------------


def _remap_keys(mapping: dict[Any, Any], fn: Callable[[Any], Any]) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for key, value in mapping.items():
        new = fn(key)
        if new is not None:
            out[new] = value
    return out


def _shift(
    tab: Tab,
    dimension: str,
    index_fn: Callable[[int], int | None],
    start_fn: Callable[[int], int],
    end_fn: Callable[[int], int],
) -> None:
    rows = dimension == "ROWS"

    def cell_key(key: tuple[int, int]) -> tuple[int, int] | None:
        r, c = key
        moved = index_fn(r if rows else c)
        if moved is None:
            return None
        return (moved, c) if rows else (r, moved)

    tab.cells = _remap_keys(tab.cells, cell_key)
    tab.formats = _remap_keys(tab.formats, cell_key)
    tab.notes = _remap_keys(tab.notes, cell_key)
    if rows:
        s_key, e_key = "startRowIndex", "endRowIndex"
    else:
        s_key, e_key = "startColumnIndex", "endColumnIndex"

    def keep(gr: dict[str, Any]) -> bool:
        start = start_fn(int(gr.get(s_key, 0)))
        end = end_fn(int(gr[e_key])) if gr.get(e_key) is not None else None
        if end is not None and end <= start:
            return False
        if s_key in gr or start:
            gr[s_key] = start
        if end is not None:
            gr[e_key] = end
        return True

    tab.data_validations = [v for v in tab.data_validations if keep(v.range)]
    kept_protections = []
    for protected in tab.protected_ranges:
        if "range" in protected and not keep(protected["range"]):
            continue
        protected["unprotectedRanges"] = [
            r for r in protected.get("unprotectedRanges", []) if keep(r)
        ]
        if not protected["unprotectedRanges"]:
            del protected["unprotectedRanges"]
        kept_protections.append(protected)
    tab.protected_ranges = kept_protections
    kept_rules = []
    for rule in tab.conditional_formats:
        rule["ranges"] = [r for r in rule.get("ranges", []) if keep(r)]
        if rule["ranges"]:
            kept_rules.append(rule)
    tab.conditional_formats = kept_rules
    if rows:
        tab.hidden_rows = {n for i in tab.hidden_rows if (n := index_fn(i)) is not None}
        tab.row_pixel_sizes = _remap_keys(tab.row_pixel_sizes, index_fn)
    else:
        tab.hidden_columns = {n for i in tab.hidden_columns if (n := index_fn(i)) is not None}
        tab.column_pixel_sizes = _remap_keys(tab.column_pixel_sizes, index_fn)


def insert_dimension(tab: Tab, dimension: str, start: int, count: int) -> None:
    """Insert ``count`` empty rows/columns before 0-based ``start``; everything shifts."""
    _shift(
        tab,
        dimension,
        lambda i: i + count if i >= start else i,
        lambda a: a + count if a >= start else a,
        lambda b: b + count if b > start else b,
    )
    if dimension == "ROWS":
        tab.row_count += count
        if start < tab.frozen_row_count:
            tab.frozen_row_count += count
    else:
        tab.column_count += count
        if start < tab.frozen_column_count:
            tab.frozen_column_count += count


def delete_dimension(tab: Tab, dimension: str, start: int, end: int) -> None:
    """Delete rows/columns [start, end) (0-based); later ones move up/left."""
    n = end - start

    def bound(x: int) -> int:
        if x <= start:
            return x
        return start if x <= end else x - n

    _shift(
        tab,
        dimension,
        lambda i: i if i < start else (None if i < end else i - n),
        bound,
        bound,
    )
    if dimension == "ROWS":
        tab.row_count -= n
        tab.frozen_row_count -= max(0, min(end, tab.frozen_row_count) - start)
    else:
        tab.column_count -= n
        tab.frozen_column_count -= max(0, min(end, tab.frozen_column_count) - start)


# --------------------------------------------------------------------------------------
# Field masks
# --------------------------------------------------------------------------------------


def _field_paths(mask: str) -> list[str]:
    """Expand a field mask: "a,b(c,d.e)" -> ["a", "b.c", "b.d.e"]; "/" works as "."."""
    mask = mask.replace("/", ".").replace(" ", "")
    paths: list[str] = []

    def parse(text: str, prefix: str) -> None:
        depth = 0
        part = ""
        parts: list[str] = []
        for ch in text:
            if ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
            if ch == "," and depth == 0:
                parts.append(part)
                part = ""
            else:
                part += ch
        parts.append(part)
        for item in parts:
            if not item:
                continue
            if "(" in item and item.endswith(")"):
                head, _, inner = item.partition("(")
                parse(inner[:-1], prefix + head + ".")
            else:
                paths.append(prefix + item)

    parse(mask, "")
    return paths


def _get_path(obj: Any, path: list[str]) -> tuple[bool, Any]:
    for part in path:
        if not isinstance(obj, dict) or part not in obj:
            return False, None
        obj = obj[part]
    return True, obj


def _set_path(target: dict[str, Any], path: list[str], present: bool, value: Any) -> None:
    for part in path[:-1]:
        target = target.setdefault(part, {})
    if present:
        target[path[-1]] = copy.deepcopy(value)
    else:
        target.pop(path[-1], None)


# --------------------------------------------------------------------------------------
# spreadsheets.batchUpdate
# --------------------------------------------------------------------------------------

_CONDITION_TYPES = frozenset(
    {
        "NUMBER_GREATER", "NUMBER_GREATER_THAN_EQ", "NUMBER_LESS", "NUMBER_LESS_THAN_EQ",
        "NUMBER_EQ", "NUMBER_NOT_EQ", "NUMBER_BETWEEN", "NUMBER_NOT_BETWEEN",
        "TEXT_CONTAINS", "TEXT_NOT_CONTAINS", "TEXT_STARTS_WITH", "TEXT_ENDS_WITH",
        "TEXT_EQ", "TEXT_IS_EMAIL", "TEXT_IS_URL", "DATE_EQ", "DATE_BEFORE", "DATE_AFTER",
        "DATE_ON_OR_BEFORE", "DATE_ON_OR_AFTER", "DATE_BETWEEN", "DATE_NOT_BETWEEN",
        "DATE_IS_VALID", "ONE_OF_RANGE", "ONE_OF_LIST", "BLANK", "NOT_BLANK",
        "CUSTOM_FORMULA", "BOOLEAN", "TEXT_NOT_EQ", "DATE_NOT_EQ", "FILTER_EXPRESSION",
    }
)  # fmt: skip
_CELL_FIELDS = frozenset({"userEnteredValue", "userEnteredFormat", "note", "dataValidation"})


def _as_int(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise _bad(f"Invalid value at '{what}' ({value!r}), expected an integer")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise _bad(f"Invalid value at '{what}' ({value!r}), expected an integer") from None


class _BatchUpdate:
    """Applies the requests of one spreadsheets.batchUpdate, in order, to ``state``."""

    HANDLERS: ClassVar[dict[str, str]] = {
        "addSheet": "_add_sheet",
        "deleteSheet": "_delete_sheet",
        "updateSheetProperties": "_update_sheet_properties",
        "updateSpreadsheetProperties": "_update_spreadsheet_properties",
        "insertDimension": "_insert_dimension",
        "appendDimension": "_append_dimension",
        "deleteDimension": "_delete_dimension",
        "updateDimensionProperties": "_update_dimension_properties",
        "updateCells": "_update_cells",
        "appendCells": "_append_cells",
        "repeatCell": "_repeat_cell",
        "setDataValidation": "_set_data_validation",
        "addProtectedRange": "_add_protected_range",
        "deleteProtectedRange": "_delete_protected_range",
        "addConditionalFormatRule": "_add_conditional_format_rule",
        "deleteConditionalFormatRule": "_delete_conditional_format_rule",
        "updateBorders": "_ignored",
        "autoResizeDimensions": "_ignored",
    }

    def __init__(self, state: FakeSpreadsheet, rng: random.Random) -> None:
        self.state = state
        self.rng = rng
        self.where = ""

    def apply(self, index: int, request: Any) -> dict[str, Any]:
        if not isinstance(request, dict) or not request:
            raise _bad(f"Invalid requests[{index}]: No request set.")
        if len(request) > 1:
            raise _bad(
                f"Invalid requests[{index}]: oneof field 'kind' is already set. "
                f"Cannot set '{list(request)[1]}'"
            )
        name, body = next(iter(request.items()))
        self.where = f"requests[{index}].{name}"
        if name not in self.HANDLERS:
            hint = (
                " (a real Google request type that FakeGoogleSheets does not model)"
                if name in _KNOWN_UNMODELLED
                else ""
            )
            raise _bad(f"Invalid requests[{index}]: unknown request {name!r}{hint}")
        if not isinstance(body, dict):
            raise self.bad("expected an object")
        result: dict[str, Any] = getattr(self, self.HANDLERS[name])(body)
        return result

    # -- helpers -----------------------------------------------------------------------

    def bad(self, message: str) -> _ApiError:
        return _bad(f"Invalid {self.where}: {message}")

    def tab(self, sheet_id: Any) -> Tab:
        sid = _as_int(sheet_id if sheet_id is not None else 0, f"{self.where}.sheetId")
        tab = self.state.tab_by_id(sid)
        if tab is None:
            raise self.bad(f"No grid with id: {sid}")
        return tab

    def grid(self, gr: Any, *, within_grid: bool = True) -> tuple[Tab, int, int, int, int]:
        if not isinstance(gr, dict):
            raise self.bad("range must be a GridRange object")
        tab = self.tab(gr.get("sheetId", 0))
        sr = _as_int(gr.get("startRowIndex", 0), "startRowIndex")
        sc = _as_int(gr.get("startColumnIndex", 0), "startColumnIndex")
        er_raw, ec_raw = gr.get("endRowIndex"), gr.get("endColumnIndex")
        er = tab.row_count if er_raw is None else _as_int(er_raw, "endRowIndex")
        ec = tab.column_count if ec_raw is None else _as_int(ec_raw, "endColumnIndex")
        if sr < 0 or sc < 0 or er < sr or ec < sc:
            raise self.bad("Invalid range: start index must be <= end index and >= 0")
        if within_grid and (er > tab.row_count or ec > tab.column_count):
            raise self.exceeds(tab, sr, er, sc, ec)
        return tab, sr, er, sc, ec

    def exceeds(self, tab: Tab, sr: int, er: int, sc: int, ec: int) -> _ApiError:
        return self.bad(
            f"Range ({_range_name(tab, sr, er, sc, ec)}) exceeds grid limits. "
            f"Max rows: {tab.row_count}, max columns: {tab.column_count}"
        )

    def normalized(self, gr: dict[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(gr)
        out["sheetId"] = self.tab(gr.get("sheetId", 0)).sheet_id
        return out

    def dimension_range(self, dr: Any, *, for_insert: bool = False) -> tuple[Tab, str, int, int]:
        if not isinstance(dr, dict):
            raise self.bad("range must be a DimensionRange object")
        tab = self.tab(dr.get("sheetId", 0))
        dimension = dr.get("dimension")
        if dimension not in ("ROWS", "COLUMNS"):
            raise self.bad("range.dimension must be ROWS or COLUMNS")
        count = tab.row_count if dimension == "ROWS" else tab.column_count
        start = _as_int(dr.get("startIndex", 0), "startIndex")
        end_raw = dr.get("endIndex")
        end = count if end_raw is None else _as_int(end_raw, "endIndex")
        if start < 0 or end <= start:
            raise self.bad("Invalid dimension range: startIndex must be less than endIndex")
        if for_insert:
            if start > count:
                raise self.bad(
                    f"Cannot insert {dimension.lower()} at index {start}: the sheet has "
                    f"only {count}"
                )
        elif end > count:
            raise self.bad(
                f"Cannot operate on {dimension.lower()} {start}-{end}: the sheet has only {count}"
            )
        return tab, dimension, start, end

    def mask(self, body: dict[str, Any]) -> list[str]:
        fields = body.get("fields")
        if not isinstance(fields, str) or not fields.strip():
            raise self.bad("At least one field must be updated, but 'fields' is empty.")
        return _field_paths(fields)

    def check_cells(self) -> None:
        total = sum(t.row_count * t.column_count for t in self.state.tabs)
        if total > MAX_CELLS:
            raise self.bad(
                "This action would increase the number of cells in the workbook above the "
                f"limit of {MAX_CELLS} cells."
            )

    def unique_title(self, title: str, tab: Tab | None = None) -> None:
        if not title:
            raise self.bad("Sheet title must not be empty")
        for other in self.state.tabs:
            if other is not tab and other.title.casefold() == title.casefold():
                raise self.bad(
                    f'A sheet with the name "{title}" already exists. Please enter another name.'
                )

    def new_id(self) -> int:
        return self.rng.randrange(100_000_000, 2_147_483_647)

    def check_cell_paths(self, paths: list[str]) -> None:
        for path in paths:
            top = path.split(".")[0]
            if top != "*" and top not in _CELL_FIELDS:
                raise self.bad(
                    f"field mask {path!r} is not modelled by FakeGoogleSheets "
                    f"(modelled: {', '.join(sorted(_CELL_FIELDS))})"
                )

    def clear_area(self, tab: Tab, sr: int, er: int, sc: int, ec: int, paths: list[str]) -> None:
        """What writing ``{}`` to every cell of the area does, without visiting each cell."""
        self.check_cell_paths(paths)
        everything = "*" in paths

        def inside(key: tuple[int, int]) -> bool:
            return sr <= key[0] < er and sc <= key[1] < ec

        if everything or "userEnteredValue" in paths:
            tab.cells = {k: v for k, v in tab.cells.items() if not inside(k)}
        if everything or "userEnteredFormat" in paths:
            tab.formats = {k: v for k, v in tab.formats.items() if not inside(k)}
        else:
            for path in paths:
                parts = path.split(".")
                if parts[0] != "userEnteredFormat" or len(parts) == 1:
                    continue
                for key in [k for k in tab.formats if inside(k)]:
                    _set_path(tab.formats[key], parts[1:], False, None)
                    if not tab.formats[key]:
                        del tab.formats[key]
        if everything or "note" in paths:
            tab.notes = {k: v for k, v in tab.notes.items() if not inside(k)}
        if everything or "dataValidation" in paths:
            area = {
                "sheetId": tab.sheet_id,
                "startRowIndex": sr,
                "endRowIndex": er,
                "startColumnIndex": sc,
                "endColumnIndex": ec,
            }
            tab.data_validations.append(DataValidation(area, None))

    def write_cell(self, tab: Tab, row: int, col: int, data: Any, paths: list[str]) -> None:
        if not isinstance(data, dict):
            raise self.bad("a cell must be a CellData object")
        key = (row, col)
        everything = "*" in paths
        self.check_cell_paths(paths)
        if everything or "userEnteredValue" in paths:
            value = self.extended_value(data.get("userEnteredValue"))
            if value is None:
                tab.cells.pop(key, None)
            else:
                tab.cells[key] = value
        if everything or "userEnteredFormat" in paths:
            fmt = data.get("userEnteredFormat")
            if fmt:
                tab.formats[key] = copy.deepcopy(fmt)
            else:
                tab.formats.pop(key, None)
        else:
            for path in paths:
                parts = path.split(".")
                if parts[0] != "userEnteredFormat" or len(parts) == 1:
                    continue
                present, value = _get_path(data, parts)
                fmt = tab.formats.setdefault(key, {})
                _set_path(fmt, parts[1:], present, value)
                if not fmt:
                    del tab.formats[key]
        if everything or "note" in paths:
            note = data.get("note")
            if note:
                tab.notes[key] = str(note)
            else:
                tab.notes.pop(key, None)
        if everything or "dataValidation" in paths:
            rule = data.get("dataValidation")
            self.check_rule(rule, allow_none=True)
            tab.data_validations.append(
                DataValidation(
                    {
                        "sheetId": tab.sheet_id,
                        "startRowIndex": row,
                        "endRowIndex": row + 1,
                        "startColumnIndex": col,
                        "endColumnIndex": col + 1,
                    },
                    copy.deepcopy(rule) if rule else None,
                )
            )

    def extended_value(self, value: Any) -> StoredCell | None:
        if value is None or value == {}:
            return None
        if not isinstance(value, dict):
            raise self.bad("userEnteredValue must be an ExtendedValue object")
        if len(value) > 1:
            raise self.bad("oneof field 'value' is already set")
        kind, raw = next(iter(value.items()))
        if kind == "stringValue":
            text = str(raw)
            _check_length(text)
            return StoredCell(text, "string")
        if kind == "numberValue":
            if isinstance(raw, bool) or not isinstance(raw, int | float):
                raise self.bad(f"Invalid numberValue {raw!r}")
            return StoredCell(float(raw), "number")
        if kind == "boolValue":
            if not isinstance(raw, bool):
                raise self.bad(f"Invalid boolValue {raw!r}")
            return StoredCell(raw, "bool")
        if kind == "formulaValue":
            text = str(raw)
            if not text.startswith("="):
                raise self.bad(f"Formula must begin with '=': {text!r}")
            _check_length(text)
            return StoredCell(text, "formula")
        raise self.bad(f"Unknown or unwritable ExtendedValue field {kind!r}")

    def check_rule(self, rule: Any, *, allow_none: bool = False) -> None:
        if rule is None and allow_none:
            return
        if not isinstance(rule, dict) or not isinstance(rule.get("condition"), dict):
            raise self.bad("rule.condition is required")
        self.check_condition(rule["condition"])

    def check_condition(self, condition: dict[str, Any]) -> None:
        ctype = condition.get("type")
        if ctype not in _CONDITION_TYPES:
            raise self.bad(f"Invalid condition type {ctype!r}")
        values = condition.get("values", [])
        if not isinstance(values, list) or not all(isinstance(v, dict) for v in values):
            raise self.bad("condition.values must be a list of ConditionValue objects")
        if ctype in ("ONE_OF_LIST", "ONE_OF_RANGE", "CUSTOM_FORMULA") and not values:
            raise self.bad(f"{ctype} condition requires at least one value")
        if ctype == "ONE_OF_RANGE" or ctype == "CUSTOM_FORMULA":
            formula = str(values[0].get("userEnteredValue", ""))
            if not formula.startswith("="):
                raise self.bad(f"{ctype} value must be a formula starting with '='")

    # -- sheets ------------------------------------------------------------------------

    def _add_sheet(self, body: dict[str, Any]) -> dict[str, Any]:
        props = body.get("properties", {})
        if not isinstance(props, dict):
            raise self.bad("properties must be an object")
        sheet_type = props.get("sheetType", "GRID")
        if sheet_type != "GRID":
            raise self.bad(f"sheetType {sheet_type!r} is not modelled by FakeGoogleSheets")
        if "sheetId" in props:
            sheet_id = _as_int(props["sheetId"], "sheetId")
            if sheet_id < 0 or self.state.tab_by_id(sheet_id) is not None:
                raise self.bad(f"A sheet with id {sheet_id} already exists or is invalid")
        else:
            sheet_id = self.new_id()
        title = props.get("title")
        if title is None:
            n = len(self.state.tabs) + 1
            titles = {t.title for t in self.state.tabs}
            while f"Sheet{n}" in titles:
                n += 1
            title = f"Sheet{n}"
        self.unique_title(str(title))
        grid = props.get("gridProperties", {}) or {}
        tab = Tab(
            sheet_id=sheet_id,
            title=str(title),
            row_count=_as_int(grid.get("rowCount", DEFAULT_ROWS), "rowCount"),
            column_count=_as_int(grid.get("columnCount", DEFAULT_COLUMNS), "columnCount"),
            frozen_row_count=_as_int(grid.get("frozenRowCount", 0), "frozenRowCount"),
            frozen_column_count=_as_int(grid.get("frozenColumnCount", 0), "frozenColumnCount"),
            hidden=bool(props.get("hidden", False)),
            tab_color=copy.deepcopy(props.get("tabColor")),
        )
        if tab.row_count < 1 or tab.column_count < 1:
            raise self.bad("rowCount and columnCount must be positive")
        index = _as_int(props.get("index", len(self.state.tabs)), "index")
        if not 0 <= index <= len(self.state.tabs):
            raise self.bad(f"Invalid index {index}")
        self.state.tabs.insert(index, tab)
        self.state.reindex()
        self.check_cells()
        return {"addSheet": {"properties": tab.properties()}}

    def _delete_sheet(self, body: dict[str, Any]) -> dict[str, Any]:
        tab = self.tab(body.get("sheetId", 0))
        if len(self.state.tabs) == 1:
            raise self.bad("You can't remove all the sheets in a document.")
        self.state.tabs.remove(tab)
        self.state.reindex()
        return {}

    def _update_sheet_properties(self, body: dict[str, Any]) -> dict[str, Any]:
        props = body.get("properties")
        if not isinstance(props, dict):
            raise self.bad("properties is required")
        tab = self.tab(props.get("sheetId", 0))
        paths = self.mask(body)
        if "*" in paths:
            paths = [p for p in ("title", "index", "hidden", "tabColor") if p in props] + [
                f"gridProperties.{k}" for k in props.get("gridProperties", {})
            ]
        expanded: list[str] = []
        for path in paths:
            if path == "gridProperties":
                expanded += [f"gridProperties.{k}" for k in props.get("gridProperties", {})]
            else:
                expanded.append(path)
        grid = props.get("gridProperties", {}) or {}
        for path in expanded:
            if path == "title":
                self.unique_title(str(props.get("title", "")), tab)
                tab.title = str(props["title"])
            elif path == "index":
                self.move(tab, _as_int(props.get("index", 0), "index"))
            elif path == "hidden":
                hidden = bool(props.get("hidden", False))
                if hidden and all(t.hidden or t is tab for t in self.state.tabs):
                    raise self.bad("You can't hide all sheets in a document.")
                tab.hidden = hidden
            elif path in ("tabColor", "tabColorStyle"):
                tab.tab_color = copy.deepcopy(props.get(path))
            elif path == "gridProperties.rowCount":
                self.resize(tab, "ROWS", _as_int(grid.get("rowCount", 0), "rowCount"))
            elif path == "gridProperties.columnCount":
                self.resize(tab, "COLUMNS", _as_int(grid.get("columnCount", 0), "columnCount"))
            elif path == "gridProperties.frozenRowCount":
                tab.frozen_row_count = _as_int(grid.get("frozenRowCount", 0), "frozenRowCount")
            elif path == "gridProperties.frozenColumnCount":
                tab.frozen_column_count = _as_int(
                    grid.get("frozenColumnCount", 0), "frozenColumnCount"
                )
            elif path == "gridProperties.hideGridlines":
                tab.hide_gridlines = bool(grid.get("hideGridlines", False))
            else:
                raise self.bad(f"field {path!r} is not modelled by FakeGoogleSheets")
        if tab.frozen_row_count < 0 or tab.frozen_row_count >= tab.row_count:
            raise self.bad("You can't freeze all visible rows on the sheet.")
        if tab.frozen_column_count < 0 or tab.frozen_column_count >= tab.column_count:
            raise self.bad("You can't freeze all visible columns on the sheet.")
        return {}

    def move(self, tab: Tab, index: int) -> None:
        if not 0 <= index <= len(self.state.tabs):
            raise self.bad(f"Invalid index {index}")
        old = self.state.tabs.index(tab)
        self.state.tabs.remove(tab)
        # Google counts the new index "before the move".
        self.state.tabs.insert(index if index <= old else index - 1, tab)
        self.state.reindex()

    def resize(self, tab: Tab, dimension: str, count: int) -> None:
        current = tab.row_count if dimension == "ROWS" else tab.column_count
        if count < 1:
            raise self.bad(f"{dimension.lower()} count must be positive")
        if count > current:
            if dimension == "ROWS":
                tab.row_count = count
            else:
                tab.column_count = count
            self.check_cells()
        elif count < current:
            delete_dimension(tab, dimension, count, current)

    def _update_spreadsheet_properties(self, body: dict[str, Any]) -> dict[str, Any]:
        props = body.get("properties")
        if not isinstance(props, dict):
            raise self.bad("properties is required")
        paths = self.mask(body)
        if "*" in paths:
            paths = [p for p in ("title", "locale", "timeZone") if p in props]
        for path in paths:
            if path == "title":
                self.state.title = str(props.get("title", ""))
            elif path == "locale":
                self.state.locale = str(props.get("locale", ""))
            elif path == "timeZone":
                self.state.time_zone = str(props.get("timeZone", ""))
            else:
                raise self.bad(f"field {path!r} is not modelled by FakeGoogleSheets")
        return {}

    # -- dimensions --------------------------------------------------------------------

    def _insert_dimension(self, body: dict[str, Any]) -> dict[str, Any]:
        tab, dimension, start, end = self.dimension_range(body.get("range"), for_insert=True)
        if body.get("inheritFromBefore") and start == 0:
            raise self.bad("Cannot inherit from before when inserting at index 0.")
        insert_dimension(tab, dimension, start, end - start)
        self.check_cells()
        return {}

    def _append_dimension(self, body: dict[str, Any]) -> dict[str, Any]:
        tab = self.tab(body.get("sheetId", 0))
        dimension = body.get("dimension")
        if dimension not in ("ROWS", "COLUMNS"):
            raise self.bad("dimension must be ROWS or COLUMNS")
        length = _as_int(body.get("length", 0), "length")
        if length < 1:
            raise self.bad("length must be greater than 0")
        if dimension == "ROWS":
            tab.row_count += length
        else:
            tab.column_count += length
        self.check_cells()
        return {}

    def _delete_dimension(self, body: dict[str, Any]) -> dict[str, Any]:
        tab, dimension, start, end = self.dimension_range(body.get("range"))
        rows = dimension == "ROWS"
        count = tab.row_count if rows else tab.column_count
        frozen = tab.frozen_row_count if rows else tab.frozen_column_count
        remaining = count - (end - start)
        frozen_after = frozen - max(0, min(end, frozen) - start)
        noun = "rows" if rows else "columns"
        if remaining < 1:
            raise self.bad(f"You can't delete all the {noun} on the sheet.")
        if remaining <= frozen_after:
            raise self.bad(f"Sorry, it is not possible to delete all non-frozen {noun}.")
        delete_dimension(tab, dimension, start, end)
        return {}

    def _update_dimension_properties(self, body: dict[str, Any]) -> dict[str, Any]:
        if "dataSourceSheetRange" in body:
            raise self.bad("dataSourceSheetRange is not modelled by FakeGoogleSheets")
        tab, dimension, start, end = self.dimension_range(body.get("range"))
        props = body.get("properties", {}) or {}
        paths = self.mask(body)
        if "*" in paths:
            paths = ["hiddenByUser", "pixelSize"]
        hidden = tab.hidden_rows if dimension == "ROWS" else tab.hidden_columns
        sizes = tab.row_pixel_sizes if dimension == "ROWS" else tab.column_pixel_sizes
        for path in paths:
            if path == "hiddenByUser":
                for i in range(start, end):
                    if props.get("hiddenByUser", False):
                        hidden.add(i)
                    else:
                        hidden.discard(i)
            elif path == "pixelSize":
                size = _as_int(props.get("pixelSize", 0), "pixelSize")
                for i in range(start, end):
                    sizes[i] = size
            elif path == "developerMetadata":
                continue
            else:
                raise self.bad(f"field {path!r} is not modelled by FakeGoogleSheets")
        return {}

    # -- cells -------------------------------------------------------------------------

    def rows_of(self, body: dict[str, Any]) -> list[list[Any]]:
        rows = body.get("rows", [])
        if not isinstance(rows, list):
            raise self.bad("rows must be a list of RowData")
        out: list[list[Any]] = []
        for row in rows:
            if not isinstance(row, dict):
                raise self.bad("each row must be a RowData object")
            values = row.get("values", [])
            if not isinstance(values, list):
                raise self.bad("RowData.values must be a list")
            out.append(values)
        return out

    def _update_cells(self, body: dict[str, Any]) -> dict[str, Any]:
        paths = self.mask(body)
        rows = self.rows_of(body)
        if ("start" in body) == ("range" in body):
            raise self.bad("Exactly one of 'start' or 'range' must be set.")
        if "start" in body:
            start = body["start"]
            if not isinstance(start, dict):
                raise self.bad("start must be a GridCoordinate")
            tab = self.tab(start.get("sheetId", 0))
            sr = _as_int(start.get("rowIndex", 0), "rowIndex")
            sc = _as_int(start.get("columnIndex", 0), "columnIndex")
            width = max((len(r) for r in rows), default=0)
            er, ec = sr + len(rows), sc + width
            if sr < 0 or sc < 0:
                raise self.bad("start must not be negative")
            if er > tab.row_count or ec > tab.column_count or sr >= tab.row_count:
                raise self.exceeds(tab, sr, max(er, sr + 1), sc, max(ec, sc + 1))
            for i, values in enumerate(rows):
                for j, data in enumerate(values):
                    self.write_cell(tab, sr + i, sc + j, data, paths)
            return {}
        tab, sr, er, sc, ec = self.grid(body["range"])
        if len(rows) > er - sr or any(len(r) > ec - sc for r in rows):
            raise self.bad("The rows do not fit inside the given range.")
        # Fields in the mask are cleared wherever ``rows`` do not reach, so: clear, then write.
        self.clear_area(tab, sr, er, sc, ec, paths)
        for i, values in enumerate(rows):
            for j, data in enumerate(values):
                self.write_cell(tab, sr + i, sc + j, data, paths)
        return {}

    def _append_cells(self, body: dict[str, Any]) -> dict[str, Any]:
        if "tableId" in body:
            raise self.bad("tableId is not modelled by FakeGoogleSheets")
        tab = self.tab(body.get("sheetId", 0))
        paths = self.mask(body)
        rows = self.rows_of(body)
        start = tab.last_data_row() + 1
        width = max((len(r) for r in rows), default=0)
        if width > tab.column_count:
            raise self.exceeds(tab, start, start + len(rows), 0, width)
        if start + len(rows) > tab.row_count:
            tab.row_count = start + len(rows)
            self.check_cells()
        for i, values in enumerate(rows):
            for j, data in enumerate(values):
                self.write_cell(tab, start + i, j, data, paths)
        return {}

    def _repeat_cell(self, body: dict[str, Any]) -> dict[str, Any]:
        paths = self.mask(body)
        tab, sr, er, sc, ec = self.grid(body.get("range"))
        data = body.get("cell", {})
        if data == {}:
            self.clear_area(tab, sr, er, sc, ec, paths)
            return {}
        for r in range(sr, er):
            for c in range(sc, ec):
                self.write_cell(tab, r, c, data, paths)
        return {}

    def _set_data_validation(self, body: dict[str, Any]) -> dict[str, Any]:
        tab, *_ = self.grid(body.get("range"))
        rule = body.get("rule")
        self.check_rule(rule, allow_none=True)
        tab.data_validations.append(
            DataValidation(self.normalized(body["range"]), copy.deepcopy(rule) if rule else None)
        )
        return {}

    def _add_protected_range(self, body: dict[str, Any]) -> dict[str, Any]:
        protected = copy.deepcopy(body.get("protectedRange"))
        if not isinstance(protected, dict):
            raise self.bad("protectedRange is required")
        if "namedRangeId" in protected or "tableId" in protected:
            raise self.bad("namedRangeId/tableId are not modelled by FakeGoogleSheets")
        if "range" not in protected:
            raise self.bad("protectedRange.range is required")
        tab, *_ = self.grid(protected["range"])
        protected["range"] = self.normalized(protected["range"])
        for unprotected in protected.get("unprotectedRanges", []):
            self.grid(unprotected)
        if "protectedRangeId" in protected:
            pid = _as_int(protected["protectedRangeId"], "protectedRangeId")
            if any(
                p["protectedRangeId"] == pid for t in self.state.tabs for p in t.protected_ranges
            ):
                raise self.bad(f"A protected range with id {pid} already exists.")
        else:
            pid = self.new_id()
        protected["protectedRangeId"] = pid
        if protected.get("warningOnly"):
            if protected.get("editors"):
                raise self.bad("Cannot set editors on a protected range that is warningOnly.")
        else:
            editors = protected.setdefault("editors", {})
            users = editors.setdefault("users", [])
            if CLIENT_EMAIL not in users:
                users.insert(0, CLIENT_EMAIL)
        protected["requestingUserCanEdit"] = True
        tab.protected_ranges.append(protected)
        return {"addProtectedRange": {"protectedRange": copy.deepcopy(protected)}}

    def _delete_protected_range(self, body: dict[str, Any]) -> dict[str, Any]:
        pid = _as_int(body.get("protectedRangeId"), "protectedRangeId")
        for tab in self.state.tabs:
            for protected in tab.protected_ranges:
                if protected["protectedRangeId"] == pid:
                    tab.protected_ranges.remove(protected)
                    return {}
        raise self.bad(f"No protected range with id: {pid}")

    def _add_conditional_format_rule(self, body: dict[str, Any]) -> dict[str, Any]:
        rule = copy.deepcopy(body.get("rule"))
        if not isinstance(rule, dict):
            raise self.bad("rule is required")
        ranges = rule.get("ranges")
        if not isinstance(ranges, list) or not ranges:
            raise self.bad("rule.ranges must contain at least one range")
        tabs = {self.grid(r)[0].sheet_id for r in ranges}
        if len(tabs) != 1:
            raise self.bad("All ranges of a conditional format rule must be on the same sheet.")
        rule["ranges"] = [self.normalized(r) for r in ranges]
        if ("booleanRule" in rule) == ("gradientRule" in rule):
            raise self.bad("Exactly one of booleanRule or gradientRule must be set.")
        if "booleanRule" in rule:
            condition = rule["booleanRule"].get("condition")
            if not isinstance(condition, dict):
                raise self.bad("booleanRule.condition is required")
            self.check_condition(condition)
        tab = self.tab(tabs.pop())
        index = _as_int(body.get("index", 0), "index")
        if not 0 <= index <= len(tab.conditional_formats):
            raise self.bad(f"Invalid index {index}")
        tab.conditional_formats.insert(index, rule)
        return {}

    def _delete_conditional_format_rule(self, body: dict[str, Any]) -> dict[str, Any]:
        tab = self.tab(body.get("sheetId", 0))
        index = _as_int(body.get("index", 0), "index")
        if not 0 <= index < len(tab.conditional_formats):
            raise self.bad(f"No conditional format on sheet {tab.sheet_id} at index {index}")
        removed = tab.conditional_formats.pop(index)
        return {"deleteConditionalFormatRule": {"rule": removed}}

    def _ignored(self, body: dict[str, Any]) -> dict[str, Any]:
        for key in ("range", "dimensions"):
            if isinstance(body.get(key), dict):
                self.tab(body[key].get("sheetId", 0))
        return {}


@contextmanager
def _transaction(state: FakeSpreadsheet) -> Iterator[None]:
    """Apply in place, put everything back on error (Tab objects keep their identity)."""
    tabs_before = list(state.tabs)
    snapshot = copy.deepcopy(state)
    try:
        yield
    except BaseException:
        for original, saved in zip(tabs_before, snapshot.tabs, strict=True):
            original.__dict__.update(saved.__dict__)
        state.__dict__.update(snapshot.__dict__)
        state.tabs = tabs_before
        raise


# --------------------------------------------------------------------------------------
# The fake
# --------------------------------------------------------------------------------------


class FakeGoogleSheets:
    """Google Sheets v4 + OAuth token endpoint, in memory, behind requests-mock."""

    def __init__(
        self,
        mocker: requests_mock.Mocker | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        quota_per_minute: int | None = None,
        read_quota_per_minute: int | None = None,
        strict: bool = True,
        seed: int = 0,
        max_request_bytes: int | None = None,
    ) -> None:
        self.clock = clock
        self.max_request_bytes = max_request_bytes
        self.quota_per_minute = quota_per_minute
        self.read_quota_per_minute = read_quota_per_minute
        self.strict = strict
        self.formula_value: Callable[[str], CellValue] = default_formula_value
        self.spreadsheets: dict[str, FakeSpreadsheet] = {}
        self.requests: list[RecordedRequest] = []
        self.unimplemented: list[RecordedRequest] = []
        # google-auth's background Regional Access Boundary lookups (IAM allowedLocations);
        # their timing is up to a thread, so they stay out of ``requests``.
        self.boundary_lookups: list[RecordedRequest] = []
        self._lock = threading.RLock()
        self._rng = random.Random(seed)
        self._tokens: dict[str, frozenset[str]] = {}
        self._token_counter = 0
        self._faults: list[_Fault] = []
        self._down: tuple[int, frozenset[str] | None] | None = None
        self._write_times: deque[float] = deque()
        self._read_times: deque[float] = deque()
        self._hooks: list[tuple[frozenset[str] | None, Callable[[], None]]] = []
        self._owns_mocker = mocker is None
        self._mocker = mocker if mocker is not None else requests_mock.Mocker(real_http=False)
        if self._owns_mocker:
            self._mocker.start()
        self._running = True
        self._mocker.register_uri(requests_mock.ANY, _GOOGLE_URL, text=self._respond)

    # -- lifecycle ---------------------------------------------------------------------

    def __enter__(self) -> FakeGoogleSheets:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop(check=exc_type is None)

    def stop(self, *, check: bool = True) -> None:
        """Stop the Mocker this fake started. With ``strict``, fail if any request hit an
        unimplemented Google URL (``check=False`` skips that)."""
        if self._running:
            self.join_auth_threads()
        if self._running and self._owns_mocker:
            self._mocker.stop()
        self._running = False
        if check:
            self.assert_all_implemented()

    @staticmethod
    def join_auth_threads(timeout: float = 5.0) -> None:
        """Wait for google-auth's background Regional Access Boundary lookups (started after a
        token refresh) so none outlives the mock and reaches the network."""
        for thread in threading.enumerate():
            if (
                type(thread).__name__ == "_RegionalAccessBoundaryRefreshThread"
                and thread is not threading.current_thread()
            ):
                thread.join(timeout)

    def assert_all_implemented(self) -> None:
        if self.strict and self.unimplemented:
            listed = ", ".join(f"{r.method} {r.url}" for r in self.unimplemented)
            raise AssertionError(f"requests to Google URLs FakeGoogleSheets lacks: {listed}")

    # -- setup -------------------------------------------------------------------------

    def service_account_info(self) -> dict[str, str]:
        """A service-account JSON whose key is real (RSA 2048, generated once per process)."""
        return {
            "type": "service_account",
            "project_id": PROJECT_ID,
            "private_key_id": "0123456789abcdef0123456789abcdef01234567",
            "private_key": _private_key_pem(),
            "client_email": CLIENT_EMAIL,
            "client_id": "100000000000000000001",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": TOKEN_URI,
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": (
                "https://www.googleapis.com/robot/v1/metadata/x509/"
                "desk%40fake-project.iam.gserviceaccount.com"
            ),
            "universe_domain": "googleapis.com",
        }

    def create_spreadsheet(
        self,
        title: str = "Service desk",
        *,
        locale: str = "en_US",
        time_zone: str = "Etc/GMT",
        shared: bool = True,
    ) -> str:
        """A new spreadsheet with one 1000x26 tab "Sheet1" (sheetId 0). ``shared=False``:
        the service account has no access (403)."""
        with self._lock:
            alphabet = string.ascii_letters + string.digits + "-_"
            sid = "1" + "".join(self._rng.choice(alphabet) for _ in range(43))
            self.spreadsheets[sid] = FakeSpreadsheet(
                sid, title, locale, time_zone, shared, [Tab(sheet_id=0, title="Sheet1")]
            )
            return sid

    def share(self, spreadsheet_id: str, shared: bool = True) -> None:
        self.spreadsheet(spreadsheet_id).shared = shared

    def invalidate_tokens(self) -> None:
        """Every issued access token stops working (next Sheets call gets 401)."""
        with self._lock:
            self._tokens.clear()

    # -- request log -------------------------------------------------------------------

    @property
    def token_requests(self) -> int:
        return sum(1 for r in self.requests if r.kind == "token")

    def count(self, kind: str | None = None) -> int:
        """Sheets API requests (token requests excluded) of ``kind`` (or all)."""
        return len(self.logged(kind))

    def logged(self, kind: str | None = None) -> list[RecordedRequest]:
        with self._lock:
            if kind is None:
                return [r for r in self.requests if r.kind != "token"]
            return [r for r in self.requests if r.kind == kind]

    def reads(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.kind in READ_KINDS]

    def writes(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.kind in WRITE_KINDS]

    def last(self, kind: str | None = None) -> RecordedRequest:
        found = self.logged(kind)
        if not found:
            raise AssertionError(f"no {kind or 'Sheets'} request was made")
        return found[-1]

    def batch_request_types(self) -> list[str]:
        """Every batchUpdate request type sent so far, in order."""
        return [t for r in self.logged("batchUpdate") for t in r.request_types]

    def clear_log(self) -> None:
        with self._lock:
            self.requests.clear()
            self.unimplemented.clear()

    # -- faults ------------------------------------------------------------------------

    def fail_next(
        self,
        n: int = 1,
        status: int = 429,
        kinds: Iterable[str] | str | None = None,
        *,
        apply: bool = False,
        message: str | None = None,
    ) -> None:
        """The next ``n`` requests of ``kinds`` (None: every Sheets kind; also "reads",
        "writes", "token") answer ``status`` with Google's error JSON. ``apply=True``: the
        change is made first and only the answer is lost (a timeout after commit). 502 answers
        with Google's HTML error page, like the front end does."""
        with self._lock:
            self._faults.append(_Fault(n, status, _expand_kinds(kinds), apply, message))

    def clear_faults(self) -> None:
        """Forget the failures ``fail_next`` still had queued (the storm blows over)."""
        with self._lock:
            self._faults.clear()

    def set_down(
        self, down: bool = True, status: int = 503, kinds: Iterable[str] | str | None = None
    ) -> None:
        with self._lock:
            self._down = (status, _expand_kinds(kinds)) if down else None

    @contextmanager
    def outage(self, status: int = 503, kinds: Iterable[str] | str | None = None) -> Iterator[None]:
        self.set_down(True, status, kinds)
        try:
            yield
        finally:
            self.set_down(False)

    def on_next_request(
        self, action: Callable[[], None], kinds: Iterable[str] | str | None = None
    ) -> None:
        """Run ``action`` (e.g. a staff edit) once, just before the next request of ``kinds``
        is applied - to simulate someone editing the sheet in the middle of a sync."""
        with self._lock:
            self._hooks.append((_expand_kinds(kinds), action))

    # -- staff side (the browser; not logged, no faults, no quota) ---------------------

    def spreadsheet(self, spreadsheet_id: str) -> FakeSpreadsheet:
        return self.spreadsheets[spreadsheet_id]

    def tab(self, spreadsheet_id: str, title: str) -> Tab:
        return self.spreadsheet(spreadsheet_id).tab(title)

    def add_tab(
        self,
        spreadsheet_id: str,
        title: str,
        rows: int = DEFAULT_ROWS,
        cols: int = DEFAULT_COLUMNS,
    ) -> int:
        with self._lock:
            state = self.spreadsheet(spreadsheet_id)
            batch = _BatchUpdate(state, self._rng)
            reply = batch.apply(
                0,
                {
                    "addSheet": {
                        "properties": {
                            "title": title,
                            "gridProperties": {"rowCount": rows, "columnCount": cols},
                        }
                    }
                },
            )
            return int(reply["addSheet"]["properties"]["sheetId"])

    def rename_tab(self, spreadsheet_id: str, old: str, new: str) -> None:
        with self._lock:
            self.tab(spreadsheet_id, old).title = new

    def cell(self, spreadsheet_id: str, tab: str, a1: str) -> str | None:
        """What a person sees in the cell (FORMATTED_VALUE), None when empty."""
        with self._lock:
            stored = self.stored_cell(spreadsheet_id, tab, a1)
            return None if _is_blank(stored) else str(self._render(stored, "FORMATTED_VALUE"))

    def formula(self, spreadsheet_id: str, tab: str, a1: str) -> str | None:
        stored = self.stored_cell(spreadsheet_id, tab, a1)
        return str(stored.value) if stored is not None and stored.kind == "formula" else None

    def stored_cell(self, spreadsheet_id: str, tab: str, a1: str) -> StoredCell | None:
        return self.tab(spreadsheet_id, tab).cells.get(parse_cell(a1))

    def cell_kind(self, spreadsheet_id: str, tab: str, a1: str) -> CellKind | None:
        stored = self.stored_cell(spreadsheet_id, tab, a1)
        return None if stored is None else stored.kind

    def cell_format(self, spreadsheet_id: str, tab: str, a1: str) -> dict[str, Any] | None:
        return self.tab(spreadsheet_id, tab).formats.get(parse_cell(a1))

    def set_cell(self, spreadsheet_id: str, tab: str, a1: str, value: Any) -> None:
        """Type into a cell like a person: "=..." is a formula, "12" a number, None clears."""
        with self._lock:
            sheet = self.tab(spreadsheet_id, tab)
            row, col = parse_cell(a1)
            if row >= sheet.row_count or col >= sheet.column_count:
                raise IndexError(f"{a1} is outside the grid of {tab!r}")
            self._type(sheet, row, col, value)

    def set_values(self, spreadsheet_id: str, tab: str, a1: str, rows: list[list[Any]]) -> None:
        """Type a block of values starting at ``a1`` (grows the grid if needed)."""
        with self._lock:
            sheet = self.tab(spreadsheet_id, tab)
            row, col = parse_cell(a1)
            sheet.row_count = max(sheet.row_count, row + len(rows))
            sheet.column_count = max(sheet.column_count, col + max(map(len, rows), default=0))
            for i, values in enumerate(rows):
                for j, value in enumerate(values):
                    self._type(sheet, row + i, col + j, value)

    def append_row(self, spreadsheet_id: str, tab: str, values: list[Any]) -> int:
        """Type a row under the last row with data; returns its 1-based row number."""
        with self._lock:
            sheet = self.tab(spreadsheet_id, tab)
            row = sheet.last_data_row() + 1
            self.set_values(spreadsheet_id, tab, f"A{row + 1}", [values])
            return row + 1

    def row_values(self, spreadsheet_id: str, tab: str, row_number: int) -> list[str]:
        with self._lock:
            sheet = self.tab(spreadsheet_id, tab)
            rows = self._matrix(
                sheet, row_number - 1, row_number, 0, sheet.column_count, "FORMATTED_VALUE"
            )
            return [str(v) for v in rows[0]] if rows else []

    def tab_values(self, spreadsheet_id: str, tab: str) -> list[list[str]]:
        """The whole tab as batchGet would return it (trimmed, formatted)."""
        with self._lock:
            sheet = self.tab(spreadsheet_id, tab)
            rows = self._matrix(sheet, 0, sheet.row_count, 0, sheet.column_count, "FORMATTED_VALUE")
            return [[str(v) for v in row] for row in rows]

    def insert_row(
        self,
        spreadsheet_id: str,
        tab: str,
        row_number: int,
        values: list[Any] | None = None,
    ) -> None:
        """Insert a row so that it becomes row ``row_number`` (1-based)."""
        with self._lock:
            sheet = self.tab(spreadsheet_id, tab)
            insert_dimension(sheet, "ROWS", row_number - 1, 1)
            for j, value in enumerate(values or []):
                self._type(sheet, row_number - 1, j, value)

    def delete_row(self, spreadsheet_id: str, tab: str, row_number: int) -> None:
        with self._lock:
            delete_dimension(self.tab(spreadsheet_id, tab), "ROWS", row_number - 1, row_number)

    def sort_rows(
        self,
        spreadsheet_id: str,
        tab: str,
        key_column_index: int,
        start_row: int = 2,
        *,
        descending: bool = False,
    ) -> None:
        """Sort rows ``start_row``.. (1-based) down to the last row with data by the 0-based
        key column, like Data > Sort range: numbers, then text (case-insensitive), then
        booleans; empty keys always last. Values, formats and notes move with their row."""
        with self._lock:
            sheet = self.tab(spreadsheet_id, tab)
            first = start_row - 1
            last = sheet.last_data_row()
            if last < first:
                return
            order = list(range(first, last + 1))

            def key(row: int) -> tuple[int, Any]:
                stored = sheet.cells.get((row, key_column_index))
                if _is_blank(stored):
                    return (3, "")
                assert stored is not None
                value = self._render(stored, "UNFORMATTED_VALUE")
                if isinstance(value, bool):
                    return (2, value)
                if isinstance(value, int | float):
                    return (0, value)
                return (1, str(value).casefold())

            filled = sorted((r for r in order if key(r)[0] != 3), key=key, reverse=descending)
            new_order = filled + [r for r in order if key(r)[0] == 3]
            mapping = {old: first + i for i, old in enumerate(new_order)}
            for attr in ("cells", "formats", "notes"):
                data = getattr(sheet, attr)
                setattr(
                    sheet,
                    attr,
                    {(mapping.get(r, r), c): v for (r, c), v in data.items()},
                )

    # -- request handling --------------------------------------------------------------

    def _respond(self, request: Any, context: Any) -> str:
        with self._lock:
            split = urlsplit(request.url)
            raw = request.body or b""
            raw_bytes = raw.encode() if isinstance(raw, str) else bytes(raw)
            query = parse_qs(split.query, keep_blank_values=True)
            method = request.method.upper()
            kind, sid, range_text = _route(method, split.netloc.lower(), split.path, query)
            body: Any = None
            body_error: str | None = None
            if raw_bytes:
                text = raw_bytes.decode("utf-8", errors="replace")
                if kind == "token":
                    body = {k: v[0] for k, v in parse_qs(text).items()}
                else:
                    try:
                        body = json.loads(text)
                    except ValueError as exc:
                        body_error = f"Invalid JSON payload received. {exc}"
                        body = text
            record = RecordedRequest(
                method=method,
                url=request.url,
                path=split.path,
                query=query,
                body=body,
                body_size=len(raw_bytes),
                kind=kind,
                spreadsheet_id=sid,
                range=range_text,
                headers=CaseInsensitiveDict({str(k): str(v) for k, v in request.headers.items()}),
            )
            if kind == "allowedLocations":
                self.boundary_lookups.append(record)  # background thread: kept out of the log
            else:
                self.requests.append(record)
            try:
                payload = self._serve(record, request.headers, body_error)
                status = 200
                text, content_type = json.dumps(payload), "application/json; charset=UTF-8"
            except _ApiError as err:
                status = err.status
                text, content_type = err.render()
            record.status = status
            context.status_code = status
            context.headers["Content-Type"] = content_type
            return text

    def _serve(self, record: RecordedRequest, headers: Any, body_error: str | None) -> Any:
        kind = record.kind
        if kind == "unimplemented":
            self.unimplemented.append(record)
            raise _ApiError(
                501,
                f"FakeGoogleSheets does not implement {record.method} {record.url}",
            )
        fault = self._take_fault(kind)
        if fault is not None and not fault.apply:
            record.injected = True
            raise self._fault_error(fault, kind)
        if kind == "token":
            return self._token(record.body)
        self._authorize(headers, kind)
        if self.max_request_bytes is not None and record.body_size > self.max_request_bytes:
            raise _bad(f"Request payload size exceeds the limit: {self.max_request_bytes} bytes.")
        if kind == "allowedLocations":
            if record.spreadsheet_id != CLIENT_EMAIL:
                raise _ApiError(404, f"Service account {record.spreadsheet_id} not found.")
            # No Regional Access Boundary ("0x0"): google-auth then sends
            # x-allowed-locations: 0x0 on later requests and does not look up again for hours.
            return {"locations": [], "encodedLocations": "0x0"}
        if body_error is not None:
            raise _bad(body_error)
        self._check_quota(kind, record)
        for hook in [h for h in self._hooks if _matches(h[0], kind)]:
            self._hooks.remove(hook)
            hook[1]()
        result = self._dispatch(record)
        if fault is not None:
            record.injected = True
            raise self._fault_error(fault, kind)
        return result

    def _take_fault(self, kind: str) -> _Fault | None:
        if self._down is not None and _matches(self._down[1], kind):
            return _Fault(1, self._down[0], self._down[1], False, None)
        for fault in self._faults:
            if fault.remaining > 0 and _matches(fault.kinds, kind):
                fault.remaining -= 1
                if fault.remaining == 0:
                    self._faults.remove(fault)
                return fault
        return None

    def _fault_error(self, fault: _Fault, kind: str) -> _ApiError:
        if fault.status == 502:
            return _ApiError(502, "Bad Gateway", html=True)
        if kind == "token":
            # google-auth retries (with real sleeps) 5xx/408/429 and "internal_failure";
            # 4xx answers are final and raise google.auth.exceptions.RefreshError at once.
            error = "internal_failure" if fault.status >= 500 else "invalid_grant"
            return _ApiError(
                fault.status,
                "token endpoint failure",
                payload={"error": error, "error_description": "Injected failure"},
            )
        if fault.message is not None:
            message = fault.message
        elif fault.status == 429:
            message = _quota_message(kind)
        else:
            message = _FAULT_MESSAGES.get(fault.status, f"Injected error {fault.status}.")
        return _ApiError(fault.status, message)

    def _token(self, form: Any) -> dict[str, Any]:
        def oauth_error(error: str, description: str) -> _ApiError:
            return _ApiError(
                400, description, payload={"error": error, "error_description": description}
            )

        if not isinstance(form, dict) or form.get("grant_type") != JWT_GRANT_TYPE:
            raise oauth_error("unsupported_grant_type", "Invalid grant_type.")
        try:
            claims = jwt.decode(
                form.get("assertion", ""),
                certs=_public_key_pem(),
                audience=TOKEN_URI,
                clock_skew_in_seconds=300,
            )
        except (ValueError, auth_exceptions.GoogleAuthError):
            raise oauth_error("invalid_grant", "Invalid JWT Signature.") from None
        if claims.get("iss") != CLIENT_EMAIL:
            raise oauth_error("invalid_grant", "Invalid grant: account not found")
        self._token_counter += 1
        token = f"fake-token-{self._token_counter}"
        self._tokens[token] = frozenset(str(claims.get("scope", "")).split())
        return {"access_token": token, "expires_in": 3600, "token_type": "Bearer"}

    def _authorize(self, headers: Any, kind: str) -> None:
        auth = str(headers.get("Authorization", "") or "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise _ApiError(
                401,
                "Request is missing required authentication credential. Expected OAuth 2 "
                "access token, login cookie or other valid authentication credential.",
            )
        scopes = self._tokens.get(token)
        if scopes is None:
            raise _ApiError(
                401,
                "Request had invalid authentication credentials. Expected OAuth 2 access "
                "token, login cookie or other valid authentication credential.",
            )
        allowed = _WRITE_SCOPES if kind in WRITE_KINDS else _READ_SCOPES
        if kind in SHEETS_KINDS and not scopes & allowed:
            raise _ApiError(403, "Request had insufficient authentication scopes.")

    def _check_quota(self, kind: str, record: RecordedRequest) -> None:
        writes = kind in WRITE_KINDS
        limit = self.quota_per_minute if writes else self.read_quota_per_minute
        if limit is None:
            return
        times = self._write_times if writes else self._read_times
        now = self.clock()
        while times and now - times[0] >= 60:
            times.popleft()
        if len(times) >= limit:
            record.injected = True
            raise _ApiError(429, _quota_message(kind))
        times.append(now)

    def _state(self, spreadsheet_id: str | None) -> FakeSpreadsheet:
        state = self.spreadsheets.get(spreadsheet_id or "")
        if state is None:
            raise _ApiError(404, "Requested entity was not found.")
        if not state.shared:
            raise _ApiError(403, "The caller does not have permission")
        return state

    def _dispatch(self, record: RecordedRequest) -> Any:
        state = self._state(record.spreadsheet_id)
        query = record.query
        # Google reads a JSON null field as "not set" (nulls inside value lists still count).
        body = _drop_nulls(record.body) if isinstance(record.body, dict) else {}
        if record.body is not None and not isinstance(record.body, dict):
            raise _bad("Invalid JSON payload received. Expected an object.")
        if record.kind == "metadata":
            return self._metadata(state)
        if record.kind == "values.get":
            return self._read(
                state,
                record.range or "",
                _one(query, "majorDimension", "ROWS"),
                _one(query, "valueRenderOption", "FORMATTED_VALUE"),
            )
        if record.kind == "values.batchGet":
            major = _one(query, "majorDimension", "ROWS")
            render = _one(query, "valueRenderOption", "FORMATTED_VALUE")
            ranges = query.get("ranges", [])
            return {
                "spreadsheetId": state.spreadsheet_id,
                "valueRanges": [self._read(state, r, major, render) for r in ranges],
            }
        with _transaction(state):
            if record.kind == "batchUpdate":
                return self._batch_update(state, body)
            if record.kind == "values.update":
                option = _input_option(_one(query, "valueInputOption", ""))
                result = self._write(state, record.range or "", body, option)
                if _one(query, "includeValuesInResponse", "false").lower() == "true":
                    result["updatedData"] = self._read(
                        state, result["updatedRange"], "ROWS", "FORMATTED_VALUE"
                    )
                return result
            if record.kind == "values.batchUpdate":
                return self._values_batch_update(state, body)
            if record.kind == "values.append":
                return self._append(state, record.range or "", body, query)
            if record.kind == "values.clear":
                return {
                    "spreadsheetId": state.spreadsheet_id,
                    "clearedRange": self._clear(state, record.range or ""),
                }
            if record.kind == "values.batchClear":
                ranges = body.get("ranges", [])
                return {
                    "spreadsheetId": state.spreadsheet_id,
                    "clearedRanges": [self._clear(state, r) for r in ranges],
                }
        raise AssertionError(f"unrouted kind {record.kind}")

    # -- endpoints ---------------------------------------------------------------------

    def _metadata(self, state: FakeSpreadsheet) -> dict[str, Any]:
        sheets = []
        for tab in state.tabs:
            sheet: dict[str, Any] = {"properties": tab.properties()}
            if tab.protected_ranges:
                sheet["protectedRanges"] = copy.deepcopy(tab.protected_ranges)
            if tab.conditional_formats:
                sheet["conditionalFormats"] = copy.deepcopy(tab.conditional_formats)
            sheets.append(sheet)
        return {
            "spreadsheetId": state.spreadsheet_id,
            "properties": {
                "title": state.title,
                "locale": state.locale,
                "autoRecalc": "ON_CHANGE",
                "timeZone": state.time_zone,
            },
            "sheets": sheets,
            "spreadsheetUrl": f"https://docs.google.com/spreadsheets/d/{state.spreadsheet_id}/edit",
        }

    def _read(self, state: FakeSpreadsheet, text: str, major: str, render: str) -> dict[str, Any]:
        if major == "DIMENSION_UNSPECIFIED":
            major = "ROWS"
        if major not in ("ROWS", "COLUMNS"):
            raise _bad(f"Invalid majorDimension: {major}")
        if render not in ("FORMATTED_VALUE", "UNFORMATTED_VALUE", "FORMULA"):
            raise _bad(f"Invalid valueRenderOption: {render}")
        area = _resolve(state, text)
        sr, er, sc, ec = area.clipped()
        if er > sr and ec > sc:
            name = _range_name(area.tab, sr, er, sc, ec)
        else:
            name = _range_name(area.tab, sr, area.end_row or sr + 1, sc, area.end_col or sc + 1)
        out: dict[str, Any] = {"range": name, "majorDimension": major}
        rows = self._matrix(area.tab, sr, er, sc, ec, render, columns=major == "COLUMNS")
        if rows:
            out["values"] = rows
        return out

    def _render(self, cell: StoredCell, render: str) -> Any:
        if cell.kind == "formula":
            if render == "FORMULA":
                return cell.value
            computed = self.formula_value(str(cell.value))
            if render == "FORMATTED_VALUE":
                if isinstance(computed, bool):
                    return "TRUE" if computed else "FALSE"
                if isinstance(computed, int | float):
                    return _format_number(float(computed))
            return computed
        if cell.kind == "bool":
            if render == "FORMATTED_VALUE":
                return "TRUE" if cell.value else "FALSE"
            return bool(cell.value)
        if cell.kind == "number":
            assert isinstance(cell.value, int | float)
            if render == "FORMATTED_VALUE":
                return cell.display or _format_number(float(cell.value))
            return _json_number(float(cell.value))
        return cell.value

    def _matrix(
        self,
        tab: Tab,
        sr: int,
        er: int,
        sc: int,
        ec: int,
        render: str,
        *,
        columns: bool = False,
    ) -> list[list[Any]]:
        present = [
            (r, c)
            for (r, c), cell in tab.cells.items()
            if sr <= r < er and sc <= c < ec and not _is_blank(cell)
        ]
        if not present:
            return []
        last_r = max(r for r, _ in present)
        last_c = max(c for _, c in present)
        grid: list[list[Any]] = []
        outer = range(sc, last_c + 1) if columns else range(sr, last_r + 1)
        inner = range(sr, last_r + 1) if columns else range(sc, last_c + 1)
        for a in outer:
            line: list[Any] = []
            for b in inner:
                cell = tab.cells.get((b, a) if columns else (a, b))
                line.append("" if cell is None or _is_blank(cell) else self._render(cell, render))
            while line and line[-1] == "":
                line.pop()
            grid.append(line)
        while grid and not grid[-1]:
            grid.pop()
        return grid

    def _type(self, tab: Tab, row: int, col: int, value: Any) -> None:
        if value is None:
            tab.cells.pop((row, col), None)
            return
        number_format = tab.formats.get((row, col), {}).get("numberFormat", {})
        if isinstance(value, str) and value and number_format.get("type") == "TEXT":
            # A cell formatted as plain text keeps what is typed, digits and all.
            _check_length(value)
            tab.cells[(row, col)] = StoredCell(value, "string")
            return
        stored = _input_value(value, "USER_ENTERED", f"[{row}][{col}]")
        if stored is None:
            tab.cells.pop((row, col), None)
        else:
            tab.cells[(row, col)] = stored

    def _write(
        self, state: FakeSpreadsheet, text: str, body: dict[str, Any], option: str
    ) -> dict[str, Any]:
        area = _resolve(state, text)
        values = body.get("values", [])
        if not isinstance(values, list) or not all(isinstance(r, list) for r in values):
            raise _bad("Invalid value at 'data.values': expected a list of lists")
        major = body.get("majorDimension", "ROWS")
        if major == "COLUMNS":
            width = max(map(len, values), default=0)
            values = [[col[i] if i < len(col) else None for col in values] for i in range(width)]
        elif major not in ("ROWS", "DIMENSION_UNSPECIFIED"):
            raise _bad(f"Invalid majorDimension: {major}")
        return self._write_block(state, area, text, values, option)

    def _write_block(
        self,
        state: FakeSpreadsheet,
        area: _Area,
        text: str,
        values: list[list[Any]],
        option: str,
    ) -> dict[str, Any]:
        tab = area.tab
        sr, sc = area.start_row, area.start_col
        n_rows = len(values)
        n_cols = max(map(len, values), default=0)
        if not area.single_cell:
            if area.end_row is not None and sr + n_rows > area.end_row:
                raise _bad(
                    f"Requested writing within range [{text}], but tried writing to row "
                    f"[{sr + n_rows}]"
                )
            if area.end_col is not None and sc + n_cols > area.end_col:
                raise _bad(
                    f"Requested writing within range [{text}], but tried writing to column "
                    f"[{column_letter(sc + n_cols - 1)}]"
                )
        tab.row_count = max(tab.row_count, sr + n_rows)
        tab.column_count = max(tab.column_count, sc + n_cols)
        cells = 0
        touched_rows: set[int] = set()
        touched_cols: set[int] = set()
        for i, row in enumerate(values):
            for j, value in enumerate(row):
                if value is None:
                    continue
                stored = _input_value(value, option, f"[{i}][{j}]")
                if stored is None:
                    tab.cells.pop((sr + i, sc + j), None)
                else:
                    tab.cells[(sr + i, sc + j)] = stored
                cells += 1
                touched_rows.add(i)
                touched_cols.add(j)
        if sum(t.row_count * t.column_count for t in state.tabs) > MAX_CELLS:
            raise _bad(
                "This action would increase the number of cells in the workbook above the "
                f"limit of {MAX_CELLS} cells."
            )
        end_r = sr + max(n_rows, 1)
        end_c = sc + max(n_cols, 1)
        result: dict[str, Any] = {
            "spreadsheetId": state.spreadsheet_id,
            "updatedRange": _range_name(tab, sr, end_r, sc, end_c),
        }
        if cells:
            result.update(
                updatedRows=len(touched_rows),
                updatedColumns=len(touched_cols),
                updatedCells=cells,
            )
        return result

    def _values_batch_update(self, state: FakeSpreadsheet, body: dict[str, Any]) -> dict[str, Any]:
        option = _input_option(str(body.get("valueInputOption", "")))
        data = body.get("data", [])
        if not isinstance(data, list):
            raise _bad("Invalid value at 'data': expected a list")
        responses = []
        for item in data:
            if not isinstance(item, dict) or "range" not in item:
                raise _bad("Invalid data[]: each ValueRange needs a range")
            result = self._write(state, str(item["range"]), item, option)
            if body.get("includeValuesInResponse"):
                result["updatedData"] = self._read(
                    state, result["updatedRange"], "ROWS", "FORMATTED_VALUE"
                )
            responses.append(result)
        out: dict[str, Any] = {"spreadsheetId": state.spreadsheet_id}
        touched = [r for r in responses if r.get("updatedCells")]
        if touched:
            out.update(
                totalUpdatedRows=sum(r["updatedRows"] for r in touched),
                totalUpdatedColumns=sum(r["updatedColumns"] for r in touched),
                totalUpdatedCells=sum(r["updatedCells"] for r in touched),
                totalUpdatedSheets=len({r["updatedRange"].rsplit("!", 1)[0] for r in touched}),
            )
        if responses:
            out["responses"] = responses
        return out

    def _append(
        self,
        state: FakeSpreadsheet,
        text: str,
        body: dict[str, Any],
        query: dict[str, list[str]],
    ) -> dict[str, Any]:
        option = _input_option(_one(query, "valueInputOption", ""))
        insert = _one(query, "insertDataOption", "OVERWRITE")
        if insert not in ("OVERWRITE", "INSERT_ROWS"):
            raise _bad(f"Invalid insertDataOption: {insert}")
        area = _resolve(state, text)
        tab = area.tab
        sr, _er, sc, ec = area.clipped()
        # A single cell is only the table's top-left corner: the table may extend right.
        end_col = tab.column_count if area.single_cell or area.end_col is None else ec

        def data_columns(row: int) -> list[int]:
            return [
                c for c in range(sc, max(end_col, sc + 1)) if not _is_blank(tab.cells.get((row, c)))
            ]

        target = sr
        width = 0
        while target < tab.row_count and (used := data_columns(target)):
            width = max(width, used[-1] - sc + 1)
            target += 1
        table_range = _range_name(tab, sr, target, sc, sc + width) if target > sr else None
        values = body.get("values", [])
        if body.get("majorDimension") == "COLUMNS":
            width = max(map(len, values), default=0)
            values = [[c[i] if i < len(c) else None for c in values] for i in range(width)]
        if insert == "INSERT_ROWS" and values:
            insert_dimension(tab, "ROWS", min(target, tab.row_count), len(values))
        anchor = _Area(tab, target, None, sc, None, single_cell=True)
        updates = self._write_block(state, anchor, text, values, option)
        if _one(query, "includeValuesInResponse", "false").lower() == "true":
            updates["updatedData"] = self._read(
                state, updates["updatedRange"], "ROWS", "FORMATTED_VALUE"
            )
        out: dict[str, Any] = {"spreadsheetId": state.spreadsheet_id, "updates": updates}
        if table_range:
            out["tableRange"] = table_range
        return out

    def _clear(self, state: FakeSpreadsheet, text: str) -> str:
        area = _resolve(state, str(text))
        sr, er, sc, ec = area.clipped()
        area.tab.cells = {
            (r, c): v for (r, c), v in area.tab.cells.items() if not (sr <= r < er and sc <= c < ec)
        }
        return _range_name(area.tab, sr, er, sc, ec)

    def _batch_update(self, state: FakeSpreadsheet, body: dict[str, Any]) -> dict[str, Any]:
        requests = body.get("requests")
        if not isinstance(requests, list) or not requests:
            raise _bad("Must specify at least one request.")
        batch = _BatchUpdate(state, self._rng)
        replies = [batch.apply(i, request) for i, request in enumerate(requests)]
        out: dict[str, Any] = {"spreadsheetId": state.spreadsheet_id, "replies": replies}
        if body.get("includeSpreadsheetInResponse"):
            out["updatedSpreadsheet"] = self._metadata(state)
        return out


# --------------------------------------------------------------------------------------
# Module helpers
# --------------------------------------------------------------------------------------


def _route(
    method: str, host: str, path: str, query: dict[str, list[str]]
) -> tuple[str, str | None, str | None]:
    """-> (kind, spreadsheet id, A1 range) for a request to a Google host."""
    host = host.split(":")[0]
    if host == "oauth2.googleapis.com" and path == "/token" and method == "POST":
        return "token", None, None
    if host == "iamcredentials.googleapis.com" and method == "GET":
        m = re.fullmatch(r"/v1/projects/-/serviceAccounts/([^/]+)/allowedLocations", path)
        if m:
            return "allowedLocations", unquote(m.group(1)), None
    if host != "sheets.googleapis.com" or not path.startswith("/v4/spreadsheets/"):
        return "unimplemented", None, None
    rest = path[len("/v4/spreadsheets/") :].split("/")
    first = rest[0]
    if len(rest) == 1:
        if first.endswith(":batchUpdate") and method == "POST":
            return "batchUpdate", unquote(first[: -len(":batchUpdate")]), None
        if ":" not in first and method == "GET":
            if _one(query, "includeGridData", "false").lower() == "true":
                return "unimplemented", unquote(first), None
            return "metadata", unquote(first), None
        return "unimplemented", None, None
    sid = unquote(first)
    if len(rest) == 2:
        kind = {
            ("GET", "values:batchGet"): "values.batchGet",
            ("POST", "values:batchUpdate"): "values.batchUpdate",
            ("POST", "values:batchClear"): "values.batchClear",
        }.get((method, rest[1]))
        return (kind, sid, None) if kind else ("unimplemented", sid, None)
    if len(rest) == 3 and rest[1] == "values":
        raw = rest[2]
        for suffix, kind in ((":append", "values.append"), (":clear", "values.clear")):
            if raw.endswith(suffix) and method == "POST":
                return kind, sid, unquote(raw[: -len(suffix)])
        if method == "GET":
            return "values.get", sid, unquote(raw)
        if method == "PUT":
            return "values.update", sid, unquote(raw)
    return "unimplemented", sid, None


def _drop_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def _one(query: dict[str, list[str]], name: str, default: str) -> str:
    values = query.get(name)
    return values[0] if values else default


def _input_option(option: str) -> str:
    if not option:
        raise _bad("'valueInputOption' is required but not specified")
    if option not in ("RAW", "USER_ENTERED"):
        raise _bad(f"Invalid valueInputOption: {option}")
    return option


def _input_value(value: Any, option: str, where: str) -> StoredCell | None:
    """A value sent through the values API (never None here); None result = clear."""
    if isinstance(value, bool):
        return StoredCell(value, "bool")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise _bad(f"Invalid values{where}: not a finite number")
        return StoredCell(float(value), "number")
    if isinstance(value, str):
        if value == "":
            return None
        if option == "RAW":
            _check_length(value)
            return StoredCell(value, "string")
        return _typed(value)
    raise _bad(f"Invalid values{where}: {type(value).__name__} is not a string, number or bool")


def _expand_kinds(kinds: Iterable[str] | str | None) -> frozenset[str] | None:
    if kinds is None:
        return None
    names = [kinds] if isinstance(kinds, str) else list(kinds)
    out: set[str] = set()
    for name in names:
        out |= _KIND_GROUPS.get(name, frozenset({name}))
    return frozenset(out)


def _matches(kinds: frozenset[str] | None, kind: str) -> bool:
    return kind in SHEETS_KINDS if kinds is None else kind in kinds


def _quota_message(kind: str) -> str:
    metric = "Write" if kind in WRITE_KINDS else "Read"
    return (
        f"Quota exceeded for quota metric '{metric} requests' and limit '{metric} requests "
        "per minute per user' of service 'sheets.googleapis.com' for consumer "
        "'project_number:123456789012'."
    )


def fake_google_sheets() -> Iterator[FakeGoogleSheets]:
    """Generator for a pytest fixture: ``google_sheets = pytest.fixture(fake_google_sheets)``."""
    with FakeGoogleSheets() as fake:
        yield fake


__all__ = [
    "CLIENT_EMAIL",
    "SHEETS_BASE",
    "TOKEN_URI",
    "DataValidation",
    "FakeGoogleSheets",
    "FakeSpreadsheet",
    "RecordedRequest",
    "StoredCell",
    "Tab",
    "column_index",
    "column_letter",
    "delete_dimension",
    "fake_google_sheets",
    "insert_dimension",
    "parse_cell",
    "quote_title",
]
