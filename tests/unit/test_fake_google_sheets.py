"""The Google Sheets fake, exercised through gspread and google-auth (never by mocking them),
so the URLs, parameters and bodies they really send are the ones the fake implements."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import gspread
import pytest
import requests
import requests_mock
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth.exceptions import RefreshError

from tests.fakes.google_sheets import SHEETS_BASE, FakeGoogleSheets


@pytest.fixture
def google() -> Iterator[FakeGoogleSheets]:
    with FakeGoogleSheets() as fake:
        yield fake


@pytest.fixture
def sid(google: FakeGoogleSheets) -> str:
    return google.create_spreadsheet("Service desk")


@pytest.fixture
def client(google: FakeGoogleSheets) -> gspread.Client:
    return gspread.service_account_from_dict(google.service_account_info())


@pytest.fixture
def spreadsheet(client: gspread.Client, sid: str) -> gspread.Spreadsheet:
    return client.open_by_key(sid)


def add_tab(spreadsheet: gspread.Spreadsheet, title: str, rows: int = 20, cols: int = 11) -> int:
    reply = spreadsheet.batch_update(
        {
            "requests": [
                {
                    "addSheet": {
                        "properties": {
                            "title": title,
                            "gridProperties": {"rowCount": rows, "columnCount": cols},
                        }
                    }
                }
            ]
        }
    )
    return int(reply["replies"][0]["addSheet"]["properties"]["sheetId"])


def string_cell(text: str) -> dict[str, Any]:
    return {"userEnteredValue": {"stringValue": text}}


def grid(sheet_id: int, **bounds: int) -> dict[str, int]:
    """A GridRange: grid(5, startRowIndex=1) - missing bounds are unbounded."""
    return {"sheetId": sheet_id, **bounds}


def dimension(sheet_id: int, kind: str, start: int, end: int) -> dict[str, Any]:
    return {"sheetId": sheet_id, "dimension": kind, "startIndex": start, "endIndex": end}


def api_error(exc: pytest.ExceptionInfo[gspread.exceptions.APIError]) -> dict[str, Any]:
    return dict(exc.value.error)


# -- auth ---------------------------------------------------------------------------------


def test_open_by_key_signs_a_real_jwt_then_reads_metadata(
    google: FakeGoogleSheets, spreadsheet: gspread.Spreadsheet
) -> None:
    assert spreadsheet.title == "Service desk"
    assert [r.kind for r in google.requests] == ["token", "metadata"]
    token, metadata = google.requests
    assert token.body["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    assert token.body["assertion"].count(".") == 2  # verified by the fake with the public key
    assert google.token_requests == 1
    assert metadata.query == {"includeGridData": ["false"]}
    assert metadata.headers["Authorization"] == "Bearer fake-token-1"
    sheet = spreadsheet.fetch_sheet_metadata()["sheets"][0]
    assert sheet == {
        "properties": {
            "sheetId": 0,
            "title": "Sheet1",
            "index": 0,
            "sheetType": "GRID",
            "gridProperties": {"rowCount": 1000, "columnCount": 26},
        }
    }
    assert google.count() == 2  # token requests are not counted


def test_a_key_google_does_not_know_gets_no_token(google: FakeGoogleSheets, sid: str) -> None:
    info = google.service_account_info()
    other = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    info["private_key"] = other.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    with pytest.raises(RefreshError, match="invalid_grant"):
        gspread.service_account_from_dict(info).open_by_key(sid)
    assert google.logged("token")[0].status == 400
    assert google.count("metadata") == 0


def test_sheets_requests_need_a_bearer_token(google: FakeGoogleSheets, sid: str) -> None:
    missing = requests.get(f"{SHEETS_BASE}/{sid}", timeout=5)
    wrong = requests.get(
        f"{SHEETS_BASE}/{sid}", headers={"Authorization": "Bearer stolen"}, timeout=5
    )
    assert (missing.status_code, wrong.status_code) == (401, 401)
    assert missing.json()["error"]["status"] == "UNAUTHENTICATED"


def test_an_invalidated_token_is_refreshed_by_google_auth(
    google: FakeGoogleSheets, spreadsheet: gspread.Spreadsheet
) -> None:
    google.invalidate_tokens()
    assert spreadsheet.fetch_sheet_metadata()["properties"]["title"] == "Service desk"
    assert google.token_requests == 2
    assert [r.status for r in google.logged("metadata")] == [200, 401, 200]
    assert google.last("metadata").headers["Authorization"] == "Bearer fake-token-2"


def test_a_read_only_scope_cannot_write(google: FakeGoogleSheets, sid: str) -> None:
    client = gspread.service_account_from_dict(
        google.service_account_info(), scopes=gspread.auth.READONLY_SCOPES
    )
    spreadsheet = client.open_by_key(sid)
    with pytest.raises(gspread.exceptions.APIError) as exc:
        spreadsheet.values_batch_update(
            {"valueInputOption": "RAW", "data": [{"range": "A1", "values": [["x"]]}]}
        )
    assert exc.value.code == 403
    assert google.cell(sid, "Sheet1", "A1") is None


def test_unknown_and_unshared_spreadsheets(
    google: FakeGoogleSheets, client: gspread.Client
) -> None:
    with pytest.raises(gspread.exceptions.SpreadsheetNotFound):
        client.open_by_key("no-such-spreadsheet")
    private = google.create_spreadsheet("Private", shared=False)
    with pytest.raises(PermissionError):
        client.open_by_key(private)


# -- sheets and cells ---------------------------------------------------------------------


def test_add_sheet_replies_with_its_properties(
    google: FakeGoogleSheets, sid: str, spreadsheet: gspread.Spreadsheet
) -> None:
    sheet_id = add_tab(spreadsheet, "Follow-ups", rows=50, cols=11)
    worksheet = spreadsheet.add_worksheet("Cases", rows=100, cols=26)
    titles = [s["properties"]["title"] for s in spreadsheet.fetch_sheet_metadata()["sheets"]]
    assert titles == ["Sheet1", "Follow-ups", "Cases"]
    assert sheet_id != 0 and worksheet.id not in (0, sheet_id)  # Google ids are not 1, 2, 3
    assert spreadsheet.worksheet("Follow-ups").row_count == 50
    assert google.tab(sid, "Cases").index == 2
    with pytest.raises(gspread.exceptions.APIError) as exc:
        add_tab(spreadsheet, "cases")  # titles are unique case-insensitively
    assert exc.value.code == 400 and "already exists" in exc.value.error["message"]
    assert len(google.spreadsheet(sid).tabs) == 3


def test_a_formula_sent_as_string_value_stays_text(
    google: FakeGoogleSheets, sid: str, spreadsheet: gspread.Spreadsheet
) -> None:
    sheet_id = add_tab(spreadsheet, "Cases")
    spreadsheet.batch_update(
        {
            "requests": [
                {
                    "updateCells": {
                        "start": {"sheetId": sheet_id, "rowIndex": 0, "columnIndex": 0},
                        "rows": [
                            {
                                "values": [
                                    string_cell('=IMPORTDATA("x")'),
                                    {"userEnteredValue": {"formulaValue": "=A1"}},
                                ]
                            }
                        ],
                        "fields": "userEnteredValue",
                    }
                }
            ]
        }
    )
    shown = spreadsheet.values_batch_get(["Cases!A1:B1"])["valueRanges"][0]
    formulas = spreadsheet.values_batch_get(
        ["Cases!A1:B1"], params={"valueRenderOption": "FORMULA"}
    )["valueRanges"][0]
    assert shown["values"] == [['=IMPORTDATA("x")', "#FORMULA"]]
    assert formulas["values"] == [['=IMPORTDATA("x")', "=A1"]]
    assert google.cell_kind(sid, "Cases", "A1") == "string"
    assert google.cell_kind(sid, "Cases", "B1") == "formula"
    assert google.formula(sid, "Cases", "B1") == "=A1"


def test_user_entered_parses_like_google_raw_stores_text(
    google: FakeGoogleSheets, sid: str, spreadsheet: gspread.Spreadsheet
) -> None:
    typed = ["=1+2", "0123", "TRUE", "+49 170 1234567", "2024-05-01", "'007", "3.50", "text"]
    for option, row in (("RAW", 1), ("USER_ENTERED", 2)):
        spreadsheet.values_batch_update(
            {"valueInputOption": option, "data": [{"range": f"A{row}", "values": [typed]}]}
        )
    assert google.row_values(sid, "Sheet1", 1) == typed
    assert google.row_values(sid, "Sheet1", 2) == [
        "#FORMULA", "123", "TRUE", "#ERROR!", "2024-05-01", "007", "3.5", "text"
    ]  # fmt: skip
    kinds = [google.cell_kind(sid, "Sheet1", f"{col}2") for col in "ABCDEFGH"]
    assert kinds == [
        "formula", "number", "bool", "formula", "number", "string", "number", "string"
    ]  # fmt: skip
    assert {google.cell_kind(sid, "Sheet1", f"{col}1") for col in "ABCDEFGH"} == {"string"}
    options = [r.value_input_option for r in google.logged("values.batchUpdate")]
    assert options == ["RAW", "USER_ENTERED"]
    unformatted = spreadsheet.values_batch_get(
        ["B2:C2", "E2"], params={"valueRenderOption": "UNFORMATTED_VALUE"}
    )["valueRanges"]
    assert unformatted[0]["values"] == [[123, True]]
    assert unformatted[1]["values"] == [[45413]]  # a date is a serial number


def test_worksheet_update_is_a_put_with_raw_by_default(
    google: FakeGoogleSheets, sid: str, spreadsheet: gspread.Spreadsheet
) -> None:
    spreadsheet.sheet1.update([["=1+1", 3, 2.5]], "B2")
    put = google.last("values.update")
    assert put.method == "PUT"
    assert put.range == "'Sheet1'!B2"
    assert put.query["valueInputOption"] == ["RAW"]
    assert spreadsheet.sheet1.get_all_values() == [["", "", "", ""], ["", "=1+1", "3", "2.5"]]
    with pytest.raises(gspread.exceptions.APIError, match="tried writing to column"):
        spreadsheet.sheet1.update([["a", "b"]], "A1:A10")  # one column wide


def test_batch_get_understands_the_range_forms_and_trims_like_google(
    google: FakeGoogleSheets, sid: str, spreadsheet: gspread.Spreadsheet
) -> None:
    google.add_tab(sid, "Cases", rows=10, cols=5)
    google.add_tab(sid, "Follow-ups", rows=10, cols=11)
    google.add_tab(sid, "It's", rows=5, cols=5)
    google.set_values(sid, "Cases", "A1", [["id", "status", "n"], ["C-1", "open", 3]])
    google.set_values(sid, "Cases", "A5", [["C-5", "", 2.5, "", ""]])
    google.set_values(sid, "Follow-ups", "A2", [["F-1", "", "", "", "", "", "", "", "", "", "x"]])
    google.set_cell(sid, "It's", "A1", "quoted")
    ranges = ["Cases!A:C", "'Follow-ups'!A2:K", "Cases!A5:Z5", "Cases!5:5", "Cases", "'It''s'!A1"]
    got = spreadsheet.values_batch_get(ranges, params={"majorDimension": "ROWS"})
    assert google.last("values.batchGet").query["ranges"] == ranges
    assert [(v["range"], v.get("values")) for v in got["valueRanges"]] == [
        ("Cases!A1:C10", [["id", "status", "n"], ["C-1", "open", "3"], [], [], ["C-5", "", "2.5"]]),
        ("'Follow-ups'!A2:K10", [["F-1", "", "", "", "", "", "", "", "", "", "x"]]),
        ("Cases!A5:E5", [["C-5", "", "2.5"]]),
        ("Cases!A5:E5", [["C-5", "", "2.5"]]),
        ("Cases!A1:E10", [["id", "status", "n"], ["C-1", "open", "3"], [], [], ["C-5", "", "2.5"]]),
        ("'It''s'!A1", [["quoted"]]),
    ]
    columns = spreadsheet.values_batch_get(["Cases!A1:B2"], params={"majorDimension": "COLUMNS"})
    assert columns["valueRanges"][0]["values"] == [["id", "C-1"], ["status", "open"]]
    empty = spreadsheet.values_batch_get(["Cases!D1:E3"])["valueRanges"][0]
    assert "values" not in empty  # Google leaves the key out
    with pytest.raises(gspread.exceptions.APIError, match="Unable to parse range: Nope!A1"):
        spreadsheet.values_batch_get(["Nope!A1"])


def test_delete_dimension_shifts_cells_and_ranges(
    google: FakeGoogleSheets, sid: str, spreadsheet: gspread.Spreadsheet
) -> None:
    sheet_id = add_tab(spreadsheet, "Cases", rows=10, cols=11)
    google.set_values(sid, "Cases", "A1", [["id"], ["C-1"], ["C-2"], ["C-3"], ["C-4"]])
    rule = {"condition": {"type": "ONE_OF_LIST", "values": [{"userEnteredValue": "open"}]}}
    freeze = {
        "properties": {"sheetId": sheet_id, "gridProperties": {"frozenRowCount": 1}},
        "fields": "gridProperties.frozenRowCount",
    }
    protect = {"range": grid(sheet_id, startRowIndex=3, endRowIndex=5), "description": "C-3, C-4"}
    status_column = grid(sheet_id, startRowIndex=1, startColumnIndex=1, endColumnIndex=2)
    spreadsheet.batch_update(
        {
            "requests": [
                {"updateSheetProperties": freeze},
                {"setDataValidation": {"range": status_column, "rule": rule}},
                {"addProtectedRange": {"protectedRange": protect}},
                {"deleteDimension": {"range": dimension(sheet_id, "ROWS", 1, 3)}},
            ]
        }
    )
    tab = google.tab(sid, "Cases")
    assert google.tab_values(sid, "Cases") == [["id"], ["C-3"], ["C-4"]]
    assert tab.row_count == 8 and tab.frozen_row_count == 1
    assert tab.validation_at("B2") == rule and tab.validation_at("B1") is None
    protected = tab.protected_ranges[0]["range"]
    assert (protected["startRowIndex"], protected["endRowIndex"]) == (1, 3)
    insert = {"range": dimension(sheet_id, "ROWS", 1, 2), "inheritFromBefore": False}
    spreadsheet.batch_update({"requests": [{"insertDimension": insert}]})
    assert google.tab_values(sid, "Cases") == [["id"], [], ["C-3"], ["C-4"]]
    assert tab.protected_ranges_at("A3") and not tab.protected_ranges_at("A2")
    with pytest.raises(gspread.exceptions.APIError, match="all non-frozen rows"):
        spreadsheet.worksheet("Cases").delete_rows(2, 9)


def test_update_cells_beyond_the_grid_needs_append_dimension_first(
    google: FakeGoogleSheets, sid: str, spreadsheet: gspread.Spreadsheet
) -> None:
    sheet_id = add_tab(spreadsheet, "Cases", rows=2, cols=3)
    write = {
        "updateCells": {
            "start": {"sheetId": sheet_id, "rowIndex": 2, "columnIndex": 0},
            "rows": [{"values": [string_cell("C-3")]}],
            "fields": "userEnteredValue",
        }
    }
    with pytest.raises(gspread.exceptions.APIError, match="exceeds grid limits") as exc:
        spreadsheet.batch_update({"requests": [write]})
    assert exc.value.code == 400
    grow = {"appendDimension": {"sheetId": sheet_id, "dimension": "ROWS", "length": 1}}
    spreadsheet.batch_update({"requests": [grow, write]})
    assert google.cell(sid, "Cases", "A3") == "C-3"
    # appendCells goes under the last row with data and grows the grid itself.
    spreadsheet.batch_update(
        {
            "requests": [
                {
                    "appendCells": {
                        "sheetId": sheet_id,
                        "rows": [{"values": [string_cell("C-4")]}],
                        "fields": "userEnteredValue",
                    }
                }
            ]
        }
    )
    assert google.tab(sid, "Cases").row_count == 4
    assert google.row_values(sid, "Cases", 4) == ["C-4"]
    # A cell object without userEnteredValue clears the cell.
    spreadsheet.batch_update(
        {
            "requests": [
                {
                    "updateCells": {
                        "range": {"sheetId": sheet_id, "startRowIndex": 2, "endRowIndex": 3},
                        "rows": [{"values": [{}]}],
                        "fields": "userEnteredValue",
                    }
                }
            ]
        }
    )
    assert google.cell(sid, "Cases", "A3") is None


def test_validations_protections_formats_and_hidden_columns_are_stored(
    google: FakeGoogleSheets, sid: str, spreadsheet: gspread.Spreadsheet
) -> None:
    sheet_id = add_tab(spreadsheet, "Follow-ups", rows=10, cols=11)
    condition = {"type": "CUSTOM_FORMULA", "values": [{"userEnteredValue": '=$K2<>""'}]}
    protect = {
        "range": grid(sheet_id, startColumnIndex=0, endColumnIndex=2),
        "description": "system columns",
        "warningOnly": True,
    }
    highlight = {
        "ranges": [grid(sheet_id, startRowIndex=1)],
        "booleanRule": {
            "condition": condition,
            "format": {"backgroundColor": {"red": 1, "green": 0.9}},
        },
    }
    hide = {
        "range": dimension(sheet_id, "COLUMNS", 10, 11),
        "properties": {"hiddenByUser": True},
        "fields": "hiddenByUser",
    }
    resize = {"dimensions": {"sheetId": sheet_id, "dimension": "COLUMNS"}}
    reply = spreadsheet.batch_update(
        {
            "requests": [
                {"addProtectedRange": {"protectedRange": protect}},
                {"addConditionalFormatRule": {"rule": highlight, "index": 0}},
                {"updateDimensionProperties": hide},
                {"autoResizeDimensions": resize},
            ]
        }
    )
    replies = reply["replies"]
    assert replies[1:] == [{}, {}, {}]
    protected_id = replies[0]["addProtectedRange"]["protectedRange"]["protectedRangeId"]
    sheet = spreadsheet.fetch_sheet_metadata()["sheets"][1]
    assert sheet["protectedRanges"][0]["description"] == "system columns"
    assert sheet["conditionalFormats"][0]["booleanRule"]["condition"] == condition
    tab = google.tab(sid, "Follow-ups")
    assert tab.is_column_hidden("K") and not tab.is_column_hidden("J")
    assert tab.conditional_formats_at("K2") and not tab.conditional_formats_at("K1")
    spreadsheet.batch_update(
        {
            "requests": [
                {"deleteProtectedRange": {"protectedRangeId": protected_id}},
                {"deleteConditionalFormatRule": {"sheetId": sheet_id, "index": 0}},
            ]
        }
    )
    sheet = spreadsheet.fetch_sheet_metadata()["sheets"][1]
    assert "protectedRanges" not in sheet and "conditionalFormats" not in sheet


def test_a_protected_range_lists_the_service_account_as_editor(
    spreadsheet: gspread.Spreadsheet,
) -> None:
    reply = spreadsheet.batch_update(
        {"requests": [{"addProtectedRange": {"protectedRange": {"range": {"sheetId": 0}}}}]}
    )
    protected = reply["replies"][0]["addProtectedRange"]["protectedRange"]
    assert protected["editors"]["users"] == ["desk@fake-project.iam.gserviceaccount.com"]


def test_an_unknown_request_type_fails_the_whole_batch(
    google: FakeGoogleSheets, sid: str, spreadsheet: gspread.Spreadsheet
) -> None:
    google.set_cell(sid, "Sheet1", "A1", "before")
    with pytest.raises(gspread.exceptions.APIError) as exc:
        spreadsheet.batch_update(
            {
                "requests": [
                    {"addSheet": {"properties": {"title": "New"}}},
                    {
                        "updateCells": {
                            "start": {"sheetId": 0, "rowIndex": 0, "columnIndex": 0},
                            "rows": [{"values": [string_cell("after")]}],
                            "fields": "userEnteredValue",
                        }
                    },
                    {"sortRange": {"range": {"sheetId": 0}}},
                ]
            }
        )
    assert exc.value.code == 400
    assert "requests[2]" in api_error(exc)["message"]
    assert "not model" in api_error(exc)["message"]
    assert [t.title for t in google.spreadsheet(sid).tabs] == ["Sheet1"]
    assert google.cell(sid, "Sheet1", "A1") == "before"
    assert google.last("batchUpdate").request_types == ["addSheet", "updateCells", "sortRange"]


# -- faults -------------------------------------------------------------------------------


def test_an_injected_429_reaches_gspread_and_is_not_retried(
    google: FakeGoogleSheets, sid: str, spreadsheet: gspread.Spreadsheet
) -> None:
    google.fail_next(1, status=429, kinds="writes")
    body = {"valueInputOption": "RAW", "data": [{"range": "A1", "values": [["x"]]}]}
    with pytest.raises(gspread.exceptions.APIError) as exc:
        spreadsheet.values_batch_update(body)
    assert exc.value.code == 429
    assert api_error(exc)["status"] == "RESOURCE_EXHAUSTED"
    assert "Write requests per minute" in api_error(exc)["message"]
    assert google.cell(sid, "Sheet1", "A1") is None
    assert google.count("values.batchUpdate") == 1  # gspread's default HTTPClient: no retry
    assert google.last("values.batchUpdate").injected
    spreadsheet.values_batch_update(body)
    assert google.cell(sid, "Sheet1", "A1") == "x"


def test_gspreads_backoff_client_does_retry_a_429(
    google: FakeGoogleSheets, sid: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    waits: list[float] = []
    monkeypatch.setattr(gspread.http_client, "time", SimpleNamespace(sleep=waits.append))
    client = gspread.service_account_from_dict(
        google.service_account_info(), http_client=gspread.http_client.BackOffHTTPClient
    )
    spreadsheet = client.open_by_key(sid)
    google.fail_next(1, status=429, kinds="writes")
    spreadsheet.values_batch_update(
        {"valueInputOption": "RAW", "data": [{"range": "A1", "values": [["x"]]}]}
    )
    assert waits == [2]
    assert [r.status for r in google.logged("values.batchUpdate")] == [429, 200]
    assert google.cell(sid, "Sheet1", "A1") == "x"


def test_a_lost_answer_after_commit(
    google: FakeGoogleSheets, sid: str, spreadsheet: gspread.Spreadsheet
) -> None:
    google.fail_next(1, status=503, kinds=["values.batchUpdate"], apply=True)
    with pytest.raises(gspread.exceptions.APIError) as exc:
        spreadsheet.values_batch_update(
            {"valueInputOption": "RAW", "data": [{"range": "A1", "values": [["x"]]}]}
        )
    assert (exc.value.code, api_error(exc)["status"]) == (503, "UNAVAILABLE")
    assert google.cell(sid, "Sheet1", "A1") == "x"


def test_outage_and_the_front_end_html_502(
    google: FakeGoogleSheets, spreadsheet: gspread.Spreadsheet
) -> None:
    with google.outage(status=503):
        for _ in range(2):
            with pytest.raises(gspread.exceptions.APIError) as exc:
                spreadsheet.fetch_sheet_metadata()
            assert exc.value.code == 503
    assert spreadsheet.fetch_sheet_metadata()["properties"]["title"] == "Service desk"
    google.fail_next(status=502)
    with pytest.raises(gspread.exceptions.APIError) as exc:
        spreadsheet.values_batch_get(["A1"])
    assert exc.value.code == -1  # gspread cannot parse Google's HTML error page
    assert exc.value.response.status_code == 502


def test_write_quota_per_simulated_minute(google: FakeGoogleSheets, sid: str) -> None:
    now = [1000.0]
    google.clock = lambda: now[0]
    google.quota_per_minute = 2
    spreadsheet = gspread.service_account_from_dict(google.service_account_info()).open_by_key(sid)
    body = {"valueInputOption": "RAW", "data": [{"range": "A1", "values": [["x"]]}]}
    spreadsheet.values_batch_update(body)
    spreadsheet.values_batch_update(body)
    with pytest.raises(gspread.exceptions.APIError) as exc:
        spreadsheet.values_batch_update(body)
    assert exc.value.code == 429
    spreadsheet.fetch_sheet_metadata()  # reads have their own (unset) quota
    now[0] += 60
    spreadsheet.values_batch_update(body)


# -- the log and the edges of the fake ----------------------------------------------------


def test_the_request_log(google: FakeGoogleSheets, spreadsheet: gspread.Spreadsheet) -> None:
    google.clear_log()
    spreadsheet.values_batch_get(["A1", "B2"], params={"valueRenderOption": "FORMULA"})
    spreadsheet.values_batch_update(
        {"valueInputOption": "RAW", "data": [{"range": "A1", "values": [["x"]]}]}
    )
    spreadsheet.batch_update({"requests": [{"addSheet": {"properties": {"title": "Cases"}}}]})
    assert google.count() == 3 and google.token_requests == 0
    assert [r.kind for r in google.reads()] == ["values.batchGet"]
    assert [r.kind for r in google.writes()] == ["values.batchUpdate", "batchUpdate"]
    read = google.reads()[0]
    assert read.query == {"valueRenderOption": ["FORMULA"], "ranges": ["A1", "B2"]}
    assert read.body is None and read.body_size == 0
    assert google.writes()[0].body_size == len(
        b'{"valueInputOption": "RAW", "data": [{"range": "A1", "values": [["x"]]}]}'
    )
    assert google.batch_request_types() == ["addSheet"]


def test_an_unimplemented_google_url_fails_loudly(
    google: FakeGoogleSheets, spreadsheet: gspread.Spreadsheet
) -> None:
    with pytest.raises(gspread.exceptions.APIError) as exc:
        spreadsheet.get_lastUpdateTime()  # the Drive API
    assert exc.value.code == 501
    assert google.unimplemented[0].url.startswith("https://www.googleapis.com/drive/v3/files/")
    with pytest.raises(AssertionError, match="drive/v3/files"):
        google.assert_all_implemented()
    google.clear_log()  # or leaving the fake fails the test


def test_nothing_reaches_the_network(google: FakeGoogleSheets) -> None:
    with pytest.raises(requests_mock.exceptions.NoMockAddress):
        requests.get("https://example.com/", timeout=5)


def test_it_can_share_a_mocker_with_other_fakes() -> None:
    with requests_mock.Mocker(real_http=False) as mocker:
        mocker.get("https://example.com/", text="other fake")
        google = FakeGoogleSheets(mocker)
        sid = google.create_spreadsheet()
        client = gspread.service_account_from_dict(google.service_account_info())
        assert client.open_by_key(sid).title == "Service desk"
        assert requests.get("https://example.com/", timeout=5).text == "other fake"
        google.stop()
        assert requests.get("https://example.com/", timeout=5).text == "other fake"


def test_gspread_worksheet_helpers(
    google: FakeGoogleSheets, sid: str, spreadsheet: gspread.Spreadsheet
) -> None:
    worksheet = spreadsheet.sheet1
    worksheet.append_row(["C-1", "open"])
    worksheet.append_row(["C-3", "closed"])
    worksheet.insert_rows([["C-2", "waiting"]], row=2)
    assert worksheet.get_all_values() == [["C-1", "open"], ["C-2", "waiting"], ["C-3", "closed"]]
    assert google.last("values.append").query["valueInputOption"] == ["RAW"]
    worksheet.delete_rows(1)
    worksheet.batch_clear(["B1:B2"])
    assert google.tab_values(sid, "Sheet1") == [["C-2"], ["C-3"]]
    # +1 inserted, -1 deleted; OVERWRITE appends only add rows at the end of the grid.
    assert google.tab(sid, "Sheet1").row_count == 1000


def test_staff_edits_in_the_browser(google: FakeGoogleSheets, sid: str) -> None:
    google.add_tab(sid, "Cases", rows=10, cols=3)
    google.set_values(sid, "Cases", "A1", [["id", "n"], ["C-2", 2], ["C-10", 10], ["C-1", "x"]])
    google.set_cell(sid, "Cases", "C2", "=B2*2")
    google.sort_rows(sid, "Cases", key_column_index=1)
    assert google.tab_values(sid, "Cases") == [
        ["id", "n"], ["C-2", "2", "#FORMULA"], ["C-10", "10"], ["C-1", "x"]
    ]  # fmt: skip
    google.sort_rows(sid, "Cases", key_column_index=1, descending=True)
    assert [row[0] for row in google.tab_values(sid, "Cases")] == ["id", "C-1", "C-10", "C-2"]
    google.insert_row(sid, "Cases", 2, ["new"])
    google.delete_row(sid, "Cases", 3)
    assert google.row_values(sid, "Cases", 2) == ["new"]
    assert google.cell(sid, "Cases", "A3") == "C-10"
    assert google.cell_kind(sid, "Cases", "B3") == "number"
    google.rename_tab(sid, "Cases", "Open cases")
    assert google.tab(sid, "Open cases").row_count == 10


def test_a_staff_edit_between_a_read_and_a_write(
    google: FakeGoogleSheets, sid: str, spreadsheet: gspread.Spreadsheet
) -> None:
    google.set_values(sid, "Sheet1", "A1", [["C-1"], ["C-2"]])
    google.on_next_request(lambda: google.insert_row(sid, "Sheet1", 1, ["typed"]), "writes")
    rows = spreadsheet.values_batch_get(["A:A"])["valueRanges"][0]["values"]
    assert rows == [["C-1"], ["C-2"]]
    spreadsheet.values_batch_update(
        {"valueInputOption": "RAW", "data": [{"range": "B2", "values": [["done"]]}]}
    )
    assert google.tab_values(sid, "Sheet1") == [["typed"], ["C-1", "done"], ["C-2"]]


def test_an_optional_request_size_limit(google: FakeGoogleSheets, sid: str) -> None:
    google.max_request_bytes = 1000
    spreadsheet = gspread.service_account_from_dict(google.service_account_info()).open_by_key(sid)
    with pytest.raises(gspread.exceptions.APIError, match="payload size exceeds") as exc:
        spreadsheet.values_batch_update(
            {"valueInputOption": "RAW", "data": [{"range": "A1", "values": [["x" * 1000]]}]}
        )
    assert exc.value.code == 400
    assert google.last("values.batchUpdate").body_size > 1000


def test_append_with_insert_rows_pushes_the_rows_below_down(
    google: FakeGoogleSheets, sid: str, spreadsheet: gspread.Spreadsheet
) -> None:
    google.set_values(sid, "Sheet1", "A1", [["id", "status"], ["C-1", "open"], [], ["notes"]])
    answer = spreadsheet.values_append(
        "Sheet1!A1",
        {"valueInputOption": "RAW", "insertDataOption": "INSERT_ROWS"},
        {"values": [["C-2", "new"]]},
    )
    assert answer["tableRange"] == "Sheet1!A1:B2"
    assert answer["updates"]["updatedRange"] == "Sheet1!A3:B3"
    assert google.tab_values(sid, "Sheet1") == [
        ["id", "status"], ["C-1", "open"], ["C-2", "new"], [], ["notes"]
    ]  # fmt: skip
    assert google.tab(sid, "Sheet1").row_count == 1001


def test_a_cell_holds_at_most_50000_characters(
    google: FakeGoogleSheets, spreadsheet: gspread.Spreadsheet
) -> None:
    with pytest.raises(gspread.exceptions.APIError, match="50000 characters"):
        spreadsheet.values_batch_update(
            {"valueInputOption": "RAW", "data": [{"range": "A1", "values": [["x" * 50_001]]}]}
        )
