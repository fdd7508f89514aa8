"""An edit typed in the sheet goes in once, whatever becomes of the write that follows it
(applied, refused by a quota storm, lost by a 5xx); typed input waiting for the rest of
its row survives other changes to the case; a workbook saved by a person keeps every
editable column open on rows added later; what a row's record keeps is capped."""

from __future__ import annotations

import re
import shutil
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from chalicelib import bootstrap
from chalicelib.domain.sheet_views import VIEWS_BY_NAME
from chalicelib.domain.staff import Role
from chalicelib.services import sheets
from tests.fakes.google_sheets import FakeGoogleSheets
from tests.integration.test_follow_up_calls import FIRST_CALL_DUE, calls_of, resolved_case
from tests.integration.test_sheet_google import (
    add,
    by_case,
    column_of,
    desk,
    post_edit,
    row_of,
)
from tests.integration.test_sheet_workbook import reconcile, sync, tab, type_into
from tests.integration.test_staff_api import report
from tests.integration.test_timers import OWNER, Desk

NOTE = "called him, he will send the receipt"


def notes_saying(case_id: str, text: str) -> int:
    """How many times the case's history took in this note."""
    return sum(1 for e in bootstrap.case_store().case_history(case_id)
               if e.action == "add_note" and (e.details or {}).get("text") == text)


def type_note(fake: FakeGoogleSheets, sheet_id: str, case_number: str, text: str,
              editor: str = "sue@example.com") -> int:
    number = row_of(fake, sheet_id, "Cases", case_number)
    fake.set_cell(sheet_id, "Cases", f"{column_of(fake, sheet_id, 'Cases', 'add_note')}{number}",
                  text)
    fake.set_cell(sheet_id, "Cases",
                  f"{column_of(fake, sheet_id, 'Cases', 'edited by')}{number}", editor)
    return number


# -- 1. an edit goes in once, whatever the write's fate ----------------------------------------


def test_a_note_taken_in_before_a_429_storm_is_not_taken_in_again_by_the_next_reconcile(
    client: Any, google: tuple[FakeGoogleSheets, str]
) -> None:
    fake, sheet_id = google
    add("sue", Role.SUPERVISOR, "sue@example.com")
    receipt = report(client)
    sheets.sync(desk())
    type_note(fake, sheet_id, receipt["case_number"], NOTE)
    with fake.outage(429, kinds="writes"):  # every retry of the write refused: not applied
        result = sheets.reconcile(desk())
    assert result.unavailable and result.edits_applied == 1
    assert by_case(fake, sheet_id, "Cases")[receipt["case_number"]]["add_note"] == NOTE
    result = sheets.reconcile(desk())  # Google answers again
    assert not result.unavailable and result.edits_applied == 0
    assert notes_saying(receipt["case_id"], NOTE) == 1
    shown = by_case(fake, sheet_id, "Cases")[receipt["case_number"]]
    assert shown["add_note"] == "" and shown["sync note"] == ""
    assert sheets.check(desk(), [receipt["case_id"]]) == []


def test_a_note_taken_in_before_a_503_not_applied_is_not_taken_in_again_by_the_replan(
    client: Any, google: tuple[FakeGoogleSheets, str]
) -> None:
    fake, sheet_id = google
    add("sue", Role.SUPERVISOR, "sue@example.com")
    receipt = report(client)
    sheets.sync(desk())
    type_note(fake, sheet_id, receipt["case_number"], NOTE)
    fake.fail_next(1, 503, "writes")  # not applied; the sync cannot know it
    result = sheets.reconcile(desk())
    assert result.replans == 1 and not result.unavailable
    assert notes_saying(receipt["case_id"], NOTE) == 1
    sheets.reconcile(desk())
    assert notes_saying(receipt["case_id"], NOTE) == 1
    assert by_case(fake, sheet_id, "Cases")[receipt["case_number"]]["add_note"] == ""
    assert sheets.check(desk(), [receipt["case_id"]]) == []


def test_a_note_the_webhook_took_in_before_answering_503_is_not_taken_in_again(
    client: Any, google: tuple[FakeGoogleSheets, str]
) -> None:
    fake, sheet_id = google
    add("sue", Role.SUPERVISOR, "sue@example.com")
    receipt = report(client)
    sheets.sync(desk())
    number = type_note(fake, sheet_id, receipt["case_number"], NOTE)
    fake.fail_next(1, 503, "writes")
    answer = post_edit(client, sheet_id, "Cases", number, "sue@example.com")
    assert answer.status_code == 503, answer.body
    assert notes_saying(receipt["case_id"], NOTE) == 1
    sheets.sync(desk())
    sheets.reconcile(desk())
    assert notes_saying(receipt["case_id"], NOTE) == 1
    assert by_case(fake, sheet_id, "Cases")[receipt["case_number"]]["add_note"] == ""
    assert sheets.check(desk(), [receipt["case_id"]]) == []


# -- 2. a comment typed before the call's outcome survives other changes -------------------


@pytest.fixture
def workbook_desk(client: Any, aws: Path, tmp_path: Path,
                  monkeypatch: pytest.MonkeyPatch) -> tuple[Desk, Path]:
    """The clock-moving desk of the follow-up tests, with the local workbook; edits in it
    made by the case's owner."""
    path = tmp_path / "sheets" / "service-desk.xlsx"
    monkeypatch.setenv("SERVICE_DESK_SHEETS_WORKBOOK", str(path))
    monkeypatch.setenv("SERVICE_DESK_SHEETS_DEFAULT_EDITOR", OWNER)
    bootstrap.reset()
    return Desk(client, aws), path



def test_a_comment_typed_before_the_outcome_survives_a_change_to_the_case(
    workbook_desk: tuple[Desk, Path]
) -> None:
    desk_, path = workbook_desk
    case = resolved_case(desk_)
    when = FIRST_CALL_DUE + timedelta(hours=1)
    with desk_.moment(when):
        sync()
        type_into(path, "Follow-ups", case.case_number, "备注/问题", "asked about the warranty")
        assert reconcile().edits_pending == 1
    desk_.do(case, when + timedelta(minutes=5), "close")  # the case changes meanwhile
    with desk_.moment(when + timedelta(minutes=10)):
        sync()
        row = tab(path, "Follow-ups")[0]
        assert row["备注/问题"] == "asked about the warranty"
        type_into(path, "Follow-ups", case.case_number, "结果", "satisfied")
        assert reconcile().edits_applied == 1
    call = calls_of(desk_, case)[0]
    assert call["outcome"] == "satisfied" and call["note"] == "asked about the warranty"


def test_a_comment_waiting_for_a_call_recorded_through_the_api_is_dropped_with_a_note(
    workbook_desk: tuple[Desk, Path]
) -> None:
    desk_, path = workbook_desk
    case = resolved_case(desk_)
    when = FIRST_CALL_DUE + timedelta(hours=1)
    with desk_.moment(when):
        sync()
        type_into(path, "Follow-ups", case.case_number, "备注/问题", "asked about the warranty")
        assert reconcile().edits_pending == 1
        assert tab(path, "Follow-ups")[0]["sync note"] == "等待填写回访结果"
    # Meanwhile a colleague records the call through the API (not from the sheet).
    desk_.do(case, when + timedelta(minutes=5), "record_follow_up_call",
             {"outcome": "satisfied"})
    with desk_.moment(when + timedelta(minutes=10)):
        sync()
        row = tab(path, "Follow-ups")[0]
        assert row["回访结果"] != "" and row["备注/问题"] == ""  # the comment is gone
        assert "等待填写回访结果" not in row["sync note"]
        assert "此次回访已在别处记录" in row["sync note"]
        assert "asked about the warranty" in row["sync note"]  # quoted, to add by hand
        mirror = bootstrap.sheet_store().sheet_mirrors([case.case_id])[case.case_id]
        assert all(not entry.held for entry in mirror.entries.values())
        # The next runs leave the row as it is: nothing is taken in or refused.
        result = reconcile()
        assert (result.edits_applied, result.edits_refused, result.edits_pending) == (0, 0, 0)
        assert "asked about the warranty" in tab(path, "Follow-ups")[0]["sync note"]
    call = calls_of(desk_, case)[0]
    assert call["outcome"] == "satisfied" and not call.get("note")


def test_a_comment_too_long_to_keep_is_refused_with_a_note_and_nothing_kept(
    workbook_desk: tuple[Desk, Path]
) -> None:
    desk_, path = workbook_desk
    case = resolved_case(desk_)
    with desk_.moment(FIRST_CALL_DUE + timedelta(hours=1)):
        sync()
        type_into(path, "Follow-ups", case.case_number, "备注/问题", "x" * (sheets.CELL_CAP + 1))
        assert reconcile().edits_refused == 1
        row = tab(path, "Follow-ups")[0]
        assert row["备注/问题"] == "" and "2,000" in row["sync note"]
        mirror = bootstrap.sheet_store().sheet_mirrors([case.case_id])[case.case_id]
        assert all(not entry.held for entry in mirror.entries.values())


# -- 3. a workbook saved by LibreOffice or Excel ---------------------------------------------


def merge_columns(path: Path, title: str, first: int, last: int) -> None:
    """Save the workbook as LibreOffice or Excel may: the settings of columns ``first`` to
    ``last`` (1-based) written as one ``<col min=".." max="..">``, the first one's."""
    book = load_workbook(path)
    member = f"xl/worksheets/sheet{book.sheetnames.index(title) + 1}.xml"
    copy = path.with_suffix(".tmp")
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(copy, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == member:
                data = _merged(data.decode(), first, last).encode()
            target.writestr(item, data)
    shutil.move(copy, path)


def _merged(xml: str, first: int, last: int) -> str:
    cols = re.search(r"<cols>(.*?)</cols>", xml, re.S)
    assert cols is not None
    kept = []
    merged = ""
    for attributes in re.findall(r"<col ([^>]*?)/>", cols.group(1)):
        low = int(re.search(r'min="(\d+)"', attributes).group(1))  # type: ignore[union-attr]
        if not first <= low <= last:
            kept.append(f"<col {attributes}/>")
        elif low == first:
            rest = re.sub(r'\s*(min|max)="\d+"', "", attributes).strip()
            merged = f'<col min="{first}" max="{last}" {rest}/>'
            kept.append(merged)
    assert merged
    return xml[:cols.start(1)] + "".join(kept) + xml[cols.end(1):]


def test_rows_added_after_a_person_saved_the_workbook_are_open_in_every_editable_column(
    client: Any, aws: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "sheets" / "service-desk.xlsx"
    monkeypatch.setenv("SERVICE_DESK_SHEETS_WORKBOOK", str(path))
    bootstrap.reset()
    report(client)
    sync()
    headers = [cell.value for cell in load_workbook(path)["Cases"][1]]
    language = bootstrap.get_settings().default_language
    editable = [headers.index(column.header(language)) + 1
                for column in VIEWS_BY_NAME["Cases"].editable]
    assert len(editable) >= 3 and editable == list(range(editable[0], editable[-1] + 1))
    merge_columns(path, "Cases", editable[0], editable[-1])  # <col min="11" max="13">
    dimensions = load_workbook(path)["Cases"].column_dimensions.values()
    assert any((d.min, d.max) == (editable[0], editable[-1]) for d in dimensions)
    for n in range(2):
        report(client, customer={"name": f"Later {n}", "email": f"l{n}@example.com"})
    sync()
    sheet = load_workbook(path)["Cases"]
    for row in (3, 4):
        for column in editable:
            cell = sheet.cell(row=row, column=column)
            assert not cell.protection.locked, (row, column)
            assert cell.number_format == "@", (row, column)
        assert sheet.cell(row=row, column=1).protection.locked


# -- 4. what a row's record keeps is capped ---------------------------------------------------


def test_a_long_note_is_taken_in_once_and_its_record_is_capped(
    client: Any, google: tuple[FakeGoogleSheets, str]
) -> None:
    fake, sheet_id = google
    add("sue", Role.SUPERVISOR, "sue@example.com")
    receipt = report(client)
    sheets.sync(desk())
    long_note = "the customer explained at length: " + "x" * 4000
    type_note(fake, sheet_id, receipt["case_number"], long_note)
    with fake.outage(429, kinds="writes"):
        assert sheets.reconcile(desk()).edits_applied == 1
    mirror = bootstrap.sheet_store().sheet_mirrors([receipt["case_id"]])[receipt["case_id"]]
    kept = [value for entry in mirror.entries.values()
            for cells in (entry.cells, entry.held, *entry.seen.values())
            for value in cells.values()]
    assert kept and max(len(value) for value in kept) <= sheets.CELL_CAP
    assert sheets.reconcile(desk()).edits_applied == 0  # the long note reads as taken in
    assert notes_saying(receipt["case_id"], long_note) == 1
    assert by_case(fake, sheet_id, "Cases")[receipt["case_number"]]["add_note"] == ""


# -- a tab laid out again takes in what was typed in it first -------------------------------


def test_a_note_typed_in_a_tab_whose_header_lost_a_column_goes_in_before_it_is_laid_again(
    client: Any, google: tuple[FakeGoogleSheets, str]
) -> None:
    fake, sheet_id = google
    add("sue", Role.SUPERVISOR, "sue@example.com")
    first, second = report(client), report(client)
    sheets.sync(desk())
    type_note(fake, sheet_id, second["case_number"], NOTE)  # and no webhook came
    # Someone renames a read-only column's header: the tab must be laid out again.
    customer = column_of(fake, sheet_id, "Cases", "customer")
    fake.set_cell(sheet_id, "Cases", f"{customer}1", "who is this")

    result = sheets.reconcile(desk())

    assert result.edits_applied == 1
    assert notes_saying(second["case_id"], NOTE) == 1
    shown = by_case(fake, sheet_id, "Cases")
    assert set(shown) >= {first["case_number"], second["case_number"]}
    assert shown[second["case_number"]]["add_note"] == ""
    sheets.sync(desk())
    assert sheets.check(desk(), [first["case_id"], second["case_id"]]) == []
    assert notes_saying(second["case_id"], NOTE) == 1


def test_a_tab_that_lost_an_editable_column_is_laid_again_without_guessing_edits(
    client: Any, google: tuple[FakeGoogleSheets, str]
) -> None:
    fake, sheet_id = google
    sue = add("sue", Role.SUPERVISOR, "sue@example.com")
    receipt = report(client)
    from tests.integration.test_staff_api import act

    assert act(client, sue, receipt["case_id"], "assign_owner", 1,
               {"owner": "sue"}).status_code == 200
    sheets.sync(desk())
    owner = column_of(fake, sheet_id, "Cases", "owner")
    fake.set_cell(sheet_id, "Cases", f"{owner}1", "")  # the owner column's header is gone

    result = sheets.reconcile(desk())

    assert (result.edits_applied, result.edits_refused) == (0, 0)  # no owner "cleared"
    case = bootstrap.case_store().get_case(receipt["case_id"])
    assert case is not None and case.owner == "sue"
    sheets.sync(desk())
    assert by_case(fake, sheet_id, "Cases")[receipt["case_number"]]["owner"] == "sue"
