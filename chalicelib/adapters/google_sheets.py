"""The staff's sheet on Google Sheets, through gspread (a service account).

One read request per sync (``values:batchGet`` of every tab asked for), one write request
per sync (a ``spreadsheets:batchUpdate`` carrying every tab's changes, split only to keep
each request under Google's recommended 2 MB). Values are sent as typed cells
(``userEnteredValue.stringValue``): Google stores them as given and never parses them, the
same as ``valueInputOption=RAW``, so a customer's ``=IMPORTDATA("…")`` or ``+1 (555)`` stays
text. Rows are deleted bottom-up in the same request, new rows appended after the last row
with data, and the tab's layout (frozen header, dropdowns, protected read-only columns,
hidden columns, overdue rows highlighted) is laid in that same request.

Google allows about 60 write requests a minute per user. Reads are retried on 429, 5xx
and dropped connections with exponential backoff and jitter (tenacity). A write is
retried as it is only when it certainly was not applied: a 429 (rate limit: refused before
anything is done), a token that could not be had, a connection that was never made. A 5xx
answer or a connection dropped after sending says nothing about whether the batch was
applied, and the batch addresses rows by position: resending it could delete or duplicate
a row. The caller gets SheetWriteUncertain and reads the sheet again before writing. When
the retries run out the caller gets SheetUnavailable and nothing is lost (rows stay dirty).

Free-text editable columns are formatted as text (``numberFormat`` TEXT) by the layout and
again on the rows each write appends, so a long number typed there keeps its digits. A
read cell that Google shows in scientific notation (a number typed before the column was
text) is marked inexact: its digits are lost, the edit is refused with a note.
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import gspread
import requests
from google.auth.exceptions import GoogleAuthError
from gspread.exceptions import APIError
from gspread.http_client import HTTPClient
from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from chalicelib.services.sheets import (
    SheetUnavailable,
    SheetWriteUncertain,
    TabGrid,
    TabLayout,
    TabWrite,
)

logger = logging.getLogger(__name__)

MAX_PAYLOAD_BYTES = 2_000_000  # Google's recommended maximum request size
PROTECTION_TAG = "service desk: read-only columns"
OVERDUE_COLOUR = {"red": 1.0, "green": 0.85, "blue": 0.85}


def pause(seconds: float) -> None:
    """How the retries wait (looked up when called, so tests can record the waits)."""
    time.sleep(seconds)


def _retryable(error: BaseException) -> bool:
    """A read may be sent again after any passing trouble."""
    if isinstance(error, APIError):
        code = error.response.status_code
        return code == 429 or code >= 500
    return isinstance(error, requests.ConnectionError | requests.Timeout | GoogleAuthError)


def _not_applied(error: BaseException) -> bool:
    """A write may be sent again only when it certainly was not applied."""
    if isinstance(error, APIError):
        return bool(error.response.status_code == 429)
    return isinstance(error, requests.ConnectTimeout | GoogleAuthError)


def _uncertain(error: BaseException) -> bool:
    """A failed write that may have been applied."""
    if isinstance(error, APIError):
        return bool(error.response.status_code >= 500)
    return isinstance(error, requests.ConnectionError | requests.Timeout)


# How Google shows a number too long for 15 digits: 2.02611E+21 (the digits are lost).
_SCIENTIFIC = re.compile(r"^[+-]?\d(\.\d+)?E[+-]\d+$")
_TEXT_FORMAT = {"numberFormat": {"type": "TEXT"}}


def quoted(title: str) -> str:
    """A tab name as A1 notation wants it: 'Follow-ups'!A1."""
    return "'" + title.replace("'", "''") + "'"


def _cell(value: str) -> dict[str, Any]:
    return {"userEnteredValue": {"stringValue": value}} if value else {}


def _rows(values: Sequence[Sequence[str]]) -> list[dict[str, Any]]:
    return [{"values": [_cell(value) for value in row]} for row in values]


class GoogleSheet:
    """A spreadsheet on Google Sheets (SheetBackend)."""

    def __init__(
        self,
        spreadsheet_id: str,
        service_account: Mapping[str, Any],
        *,
        attempts: int = 6,
        max_wait: float = 32.0,
        sleep: Callable[[float], None] | None = None,
        max_payload: int = MAX_PAYLOAD_BYTES,
    ) -> None:
        self.spreadsheet_id = spreadsheet_id
        self._account = dict(service_account)
        self._http: HTTPClient | None = None
        self._attempts = attempts
        self._max_wait = max_wait
        self._sleep = sleep  # default: ``pause``, looked up when called
        self._max_payload = max_payload
        self._metadata: dict[str, Any] | None = None
        self.requests = 0

    @property
    def account_email(self) -> str:
        return str(self._account.get("client_email", ""))

    # -- talking to Google ---------------------------------------------------------------

    def _client(self) -> HTTPClient:
        if self._http is None:
            self._http = gspread.service_account_from_dict(self._account).http_client
        return self._http

    def _call(self, what: str, call: Callable[[HTTPClient], Any],
              retry: Callable[[BaseException], bool] = _retryable) -> Any:
        """One API call, retried with backoff when ``retry`` says so (a read: on 429, 5xx
        and dropped connections)."""

        def attempt() -> Any:
            self.requests += 1
            return call(self._client())

        retrying = Retrying(
            retry=retry_if_exception(retry),
            stop=stop_after_attempt(self._attempts),
            wait=wait_exponential_jitter(initial=1, max=self._max_wait),
            sleep=self.pause,
            reraise=False,
            before_sleep=lambda state: logger.warning(
                "Google Sheets %s: %s; trying again", what, state.outcome.exception()
                if state.outcome else "?"),
        )
        try:
            return retrying(attempt)
        except RetryError as gave_up:
            error = gave_up.last_attempt.exception()
            raise SheetUnavailable(f"{what}: {error}") from error
        except (APIError, requests.ConnectionError, requests.Timeout) as error:
            if retry is not _retryable and _uncertain(error):
                raise SheetWriteUncertain(f"{what}: {error}") from error
            raise SheetUnavailable(f"{what}: {error}") from error
        except GoogleAuthError as error:
            raise SheetUnavailable(f"{what}: {error}") from error

    def pause(self, seconds: float) -> None:
        """Wait as the retries wait (the ``sleep`` given, else ``pause``)."""
        (self._sleep or pause)(seconds)

    def _sheets(self, refresh: bool = False) -> dict[str, dict[str, Any]]:
        """The tabs by title, with their id, size, protections and formats (cached)."""
        if self._metadata is None or refresh:
            self._metadata = self._call(
                "reading the spreadsheet's tabs",
                lambda http: http.fetch_sheet_metadata(self.spreadsheet_id),
            )
        assert self._metadata is not None
        return {sheet["properties"]["title"]: sheet for sheet in self._metadata.get("sheets", [])}

    # -- reading ---------------------------------------------------------------------------

    def read(self, titles: Sequence[str]) -> dict[str, TabGrid | None]:
        tabs = self._sheets()
        if any(title not in tabs for title in titles) and self._metadata is not None:
            tabs = self._sheets(refresh=True)  # someone may have added or renamed a tab
        present = [title for title in titles if title in tabs]
        found: dict[str, TabGrid | None] = {title: None for title in titles}
        if not present:
            return found
        answer = self._call("reading the views", lambda http: http.values_batch_get(
            self.spreadsheet_id, [quoted(title) for title in present],
            params={"majorDimension": "ROWS", "valueRenderOption": "FORMATTED_VALUE"},
        ))
        for title, value_range in zip(present, answer.get("valueRanges", []), strict=False):
            values = [[str(v) for v in row] for row in value_range.get("values", [])]
            header = values[0] if values else []
            grid = TabGrid(title, header, {
                number: row for number, row in enumerate(values[1:], start=2) if row
            })
            _mark_inexact(grid)
            found[title] = grid
        return found

    def read_rows(self, title: str, rows: Sequence[int]) -> TabGrid:
        ranges = [f"{quoted(title)}!1:1"] + [f"{quoted(title)}!{n}:{n}" for n in rows]
        answer = self._call("reading edited rows", lambda http: http.values_batch_get(
            self.spreadsheet_id, ranges,
            params={"majorDimension": "ROWS", "valueRenderOption": "FORMATTED_VALUE"},
        ))
        ranges_found = answer.get("valueRanges", [])
        header_values = ranges_found[0].get("values", [[]]) if ranges_found else [[]]
        grid = TabGrid(title, [str(v) for v in header_values[0]] if header_values else [])
        for number, value_range in zip(rows, ranges_found[1:], strict=False):
            values = value_range.get("values", [])
            if values:
                grid.rows[number] = [str(v) for v in values[0]]
        _mark_inexact(grid)
        return grid

    # -- writing ---------------------------------------------------------------------------

    def write(self, writes: Sequence[TabWrite]) -> None:
        tabs = self._sheets(refresh=any(write.layout for write in writes))
        ids = {title: sheet["properties"]["sheetId"] for title, sheet in tabs.items()}
        requests_: list[dict[str, Any]] = []
        for write in writes:
            if write.layout is not None:
                requests_ += self._layout(write.layout, tabs.get(write.title), ids)
            elif write.dropdowns is not None and write.title in ids:
                requests_ += _validations(write.dropdowns, ids[write.title])
        for write in writes:
            sheet_id = ids[write.title]
            for number, values in sorted(write.updates.items()):
                requests_.append({"updateCells": {
                    "start": {"sheetId": sheet_id, "rowIndex": number - 1, "columnIndex": 0},
                    "rows": _rows([values]),
                    "fields": "userEnteredValue",
                }})
            for start, end in reversed(_spans(write.deletes)):  # bottom-up
                requests_.append({"deleteDimension": {"range": {
                    "sheetId": sheet_id, "dimension": "ROWS",
                    "startIndex": start - 1, "endIndex": end,
                }}})
            if write.appends:
                requests_.append({"appendCells": {
                    "sheetId": sheet_id, "rows": _rows(write.appends),
                    "fields": "userEnteredValue",
                }})
                # New rows past the grid laid out have no format yet: text columns again.
                requests_ += _text_format(sheet_id, write.text_columns)
        for body in self._batches(requests_):
            answer = self._send(body)
            # New tabs are known from the answer: the next sync needs no metadata read.
            # (Protections and formats are read afresh before the next layout.)
            for reply in (answer or {}).get("replies", []):
                added = (reply or {}).get("addSheet")
                if added and self._metadata is not None:
                    self._metadata.setdefault("sheets", []).append(
                        {"properties": added["properties"]})

    def _send(self, body: dict[str, Any]) -> Any:
        """One batch write: sent again only if it certainly was not applied."""
        return self._call("writing the views",
                          lambda http: http.batch_update(self.spreadsheet_id, body),
                          retry=_not_applied)

    def _batches(self, requests_: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """One batch, or several when one would pass the payload limit."""
        # The body is {"requests": [r1, r2, …]} as json.dumps writes it: the envelope, and
        # ", " between requests (counted generously: a body over the limit is refused).
        envelope, separator = 64, 2
        batches: list[list[dict[str, Any]]] = [[]]
        size = envelope
        for request in requests_:
            # A single append larger than the limit is split into several appends.
            for part in self._split(request):
                length = len(json.dumps(part).encode()) + separator
                if batches[-1] and size + length > self._max_payload:
                    batches.append([])
                    size = envelope
                batches[-1].append(part)
                size += length
        return [{"requests": batch} for batch in batches if batch]

    def _split(self, request: dict[str, Any]) -> list[dict[str, Any]]:
        append = request.get("appendCells")
        if append is None:
            return [request]
        rows = append["rows"]
        length = len(json.dumps(rows).encode())
        if length <= self._max_payload // 2 or len(rows) < 2:
            return [request]
        half = len(rows) // 2
        first = {"appendCells": {**append, "rows": rows[:half]}}
        second = {"appendCells": {**append, "rows": rows[half:]}}
        return self._split(first) + self._split(second)

    def _layout(self, layout: TabLayout, sheet: Mapping[str, Any] | None,
                ids: dict[str, int]) -> list[dict[str, Any]]:
        width = len(layout.headers)
        out: list[dict[str, Any]] = []
        if sheet is None:
            sheet_id = random.randrange(1, 2**31 - 1)
            while sheet_id in ids.values():
                sheet_id = random.randrange(1, 2**31 - 1)
            ids[layout.title] = sheet_id
            out.append({"addSheet": {"properties": {
                "sheetId": sheet_id, "title": layout.title,
                "gridProperties": {"rowCount": 1000, "columnCount": width,
                                   "frozenRowCount": 1},
            }}})
        else:
            sheet_id = sheet["properties"]["sheetId"]
            grid = sheet["properties"].get("gridProperties", {})
            if grid.get("columnCount", 26) < width:
                out.append({"appendDimension": {"sheetId": sheet_id, "dimension": "COLUMNS",
                                                "length": width - grid.get("columnCount", 26)}})
            out.append({"updateSheetProperties": {
                "properties": {"sheetId": sheet_id, "gridProperties": {"frozenRowCount": 1}},
                "fields": "gridProperties.frozenRowCount",
            }})
            for protected in sheet.get("protectedRanges", []):
                if protected.get("description") == PROTECTION_TAG:
                    out.append({"deleteProtectedRange": {
                        "protectedRangeId": protected["protectedRangeId"]}})
            for index in reversed(range(len(sheet.get("conditionalFormats", [])))):
                out.append({"deleteConditionalFormatRule": {"sheetId": sheet_id,
                                                            "index": index}})
            if layout.clear:
                out.append({"updateCells": {"range": {"sheetId": sheet_id, "startRowIndex": 1},
                                            "fields": "userEnteredValue"}})
        out.append({"updateCells": {
            "start": {"sheetId": sheet_id, "rowIndex": 0, "columnIndex": 0},
            "rows": _rows([layout.headers]), "fields": "userEnteredValue",
        }})
        out += _validations(layout, sheet_id)
        out += _text_format(sheet_id, layout.text_columns)
        read_only = [i for i in range(width) if i not in layout.editable]
        for start, end in _spans(read_only):
            out.append({"addProtectedRange": {"protectedRange": {
                "range": {"sheetId": sheet_id, "startColumnIndex": start,
                          "endColumnIndex": end + 1},
                "description": PROTECTION_TAG,
                "warningOnly": False,
                "editors": {"users": [self.account_email]},
            }}})
        out.append({"updateDimensionProperties": {
            "range": {"sheetId": sheet_id, "dimension": "COLUMNS", "startIndex": 0,
                      "endIndex": width},
            "properties": {"hiddenByUser": False}, "fields": "hiddenByUser",
        }})
        for start, end in _spans(list(layout.hidden)):
            out.append({"updateDimensionProperties": {
                "range": {"sheetId": sheet_id, "dimension": "COLUMNS", "startIndex": start,
                          "endIndex": end + 1},
                "properties": {"hiddenByUser": True}, "fields": "hiddenByUser",
            }})
        if layout.highlight is not None:
            column = _letter(layout.highlight)
            out.append({"addConditionalFormatRule": {"index": 0, "rule": {
                "ranges": [{"sheetId": sheet_id, "startRowIndex": 1, "startColumnIndex": 0,
                            "endColumnIndex": width}],
                "booleanRule": {
                    "condition": {"type": "CUSTOM_FORMULA",
                                  "values": [{"userEnteredValue": f'=${column}2<>""'}]},
                    "format": {"backgroundColor": OVERDUE_COLOUR},
                },
            }}})
        return out


def _validations(layout: TabLayout, sheet_id: int) -> list[dict[str, Any]]:
    """The dropdowns of every column (a column without one has its rule cleared)."""
    out: list[dict[str, Any]] = []
    for index in range(len(layout.headers)):
        rule: dict[str, Any] | None = None
        if index in layout.choices:
            rule = {
                "condition": {"type": "ONE_OF_LIST", "values": [
                    {"userEnteredValue": choice} for choice in layout.choices[index]]},
                "strict": index in layout.strict_choices, "showCustomUi": True,
            }
        out.append({"setDataValidation": {"range": {
            "sheetId": sheet_id, "startRowIndex": 1,
            "startColumnIndex": index, "endColumnIndex": index + 1,
        }, **({"rule": rule} if rule else {})}})
    return out


def _text_format(sheet_id: int, columns: Sequence[int]) -> list[dict[str, Any]]:
    """Format these columns (below the header) as text: what is typed stays as typed."""
    return [{"repeatCell": {
        "range": {"sheetId": sheet_id, "startRowIndex": 1, "startColumnIndex": start,
                  "endColumnIndex": end + 1},
        "cell": {"userEnteredFormat": _TEXT_FORMAT},
        "fields": "userEnteredFormat.numberFormat",
    }} for start, end in _spans(list(columns))]


def _mark_inexact(grid: TabGrid) -> None:
    for number, row in grid.rows.items():
        odd = {index for index, value in enumerate(row) if _SCIENTIFIC.match(value.strip())}
        if odd:
            grid.inexact[number] = odd


def _spans(numbers: Sequence[int]) -> list[tuple[int, int]]:
    """Runs of consecutive numbers as (low, high), lowest first."""
    spans: list[tuple[int, int]] = []
    for number in sorted(set(numbers)):
        if spans and number == spans[-1][1] + 1:
            spans[-1] = (spans[-1][0], number)
        else:
            spans.append((number, number))
    return spans


def _letter(index: int) -> str:
    """0 → A, 25 → Z, 26 → AA."""
    letters = ""
    index += 1
    while index:
        index, remainder = divmod(index - 1, 26)
        letters = chr(65 + remainder) + letters
    return letters
