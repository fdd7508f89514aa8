"""What the sheet sync must never do, on both backends: send back a stale copy of a row as
if it were an edit, resend a positional write whose answer was lost, leave a read-only cell
as someone changed it, round a long number typed by staff, offer a stale staff dropdown."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from chalicelib import bootstrap
from chalicelib.adapters import google_sheets
from chalicelib.domain.staff import Role
from chalicelib.services import sheets
from tests.fakes.google_sheets import FakeGoogleSheets
from tests.integration.test_sheet_google import (
    by_case,
    column_of,
    desk,
    row_of,
)
from tests.integration.test_sheet_workbook import add, reconcile, sync, tab, type_into
from tests.integration.test_staff_api import act, report


def owners(case_id: str) -> list[tuple[str, str]]:
    """The case's owner changes, newest first: (who, owner)."""
    history = bootstrap.case_store().case_history(case_id)
    return [(e.actor, (e.details or {}).get("owner", "")) for e in history
            if e.action == "assign_owner"]


def version_of(case_id: str) -> int:
    case = bootstrap.case_store().get_case(case_id)
    assert case is not None
    return case.version


@pytest.fixture
def workbook(aws: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The local workbook, edits in it made as staff member "desk" (as make run sets it)."""
    path = tmp_path / "sheets" / "service-desk.xlsx"
    monkeypatch.setenv("SERVICE_DESK_SHEETS_WORKBOOK", str(path))
    monkeypatch.setenv("SERVICE_DESK_SHEETS_DEFAULT_EDITOR", "desk")
    bootstrap.reset()
    return path


# -- 1. an edit on a stale copy is compared with what that copy showed ---------------------


def test_a_stale_google_row_saved_unchanged_sends_nothing_back_and_a_note_on_it_goes_in(
    client: Any, google: tuple[FakeGoogleSheets, str]
) -> None:
    fake, sheet_id = google
    sue = add("sue", Role.SUPERVISOR, "sue@example.com")
    add("bob", Role.AGENT, "bob@example.com")
    add("cat", Role.AGENT, "cat@example.com")
    receipt = report(client)
    case_id = receipt["case_id"]
    assert act(client, sue, case_id, "assign_owner", 1, {"owner": "bob"}).status_code == 200
    sheets.sync(desk())
    number = row_of(fake, sheet_id, "Cases", receipt["case_number"])
    stale = fake.row_values(sheet_id, "Cases", number)  # a person's copy: owner bob, v2
    assert act(client, sue, case_id, "assign_owner", 2, {"owner": "cat"}).status_code == 200
    sheets.sync(desk())
    assert by_case(fake, sheet_id, "Cases")[receipt["case_number"]]["owner"] == "cat"
    # The stale copy comes back unchanged (a paste, an undo, an offline copy synced).
    edited_by = column_of(fake, sheet_id, "Cases", "edited by")
    fake.set_values(sheet_id, "Cases", f"A{number}", [stale])
    fake.set_cell(sheet_id, "Cases", f"{edited_by}{number}", "sue@example.com")
    result = sheets.reconcile(desk())
    assert (result.edits_applied, result.edits_refused) == (0, 0)
    assert owners(case_id)[0] == ("staff:sue", "cat")  # "bob" was not applied again
    shown = by_case(fake, sheet_id, "Cases")[receipt["case_number"]]
    assert shown["owner"] == "cat" and shown["sync note"] == ""
    # The same stale copy with a note typed in another column: the note goes in, the
    # owner stays as the API set it.
    note = column_of(fake, sheet_id, "Cases", "add_note")
    fake.set_values(sheet_id, "Cases", f"A{number}", [stale])
    fake.set_cell(sheet_id, "Cases", f"{note}{number}", "customer called back")
    fake.set_cell(sheet_id, "Cases", f"{edited_by}{number}", "sue@example.com")
    result = sheets.reconcile(desk())
    assert result.edits_applied == 1 and result.edits_refused == 0
    history = bootstrap.case_store().case_history(case_id)
    assert history[0].action == "add_note" and history[0].actor == "staff:sue"
    assert history[0].details == {"text": "customer called back"}
    assert owners(case_id)[0] == ("staff:sue", "cat")
    shown = by_case(fake, sheet_id, "Cases")[receipt["case_number"]]
    assert shown["owner"] == "cat" and shown["add_note"] == ""
    assert shown["version"] == str(version_of(case_id))


def test_a_stale_workbook_copy_saved_over_the_sync_sends_nothing_back_but_its_note(
    client: Any, workbook: Path, tmp_path: Path
) -> None:
    sue = add("sue", Role.SUPERVISOR, "sue@example.com")
    add("desk", Role.SUPERVISOR, "desk@example.com")
    add("bob", Role.AGENT, "bob@example.com")
    add("cat", Role.AGENT, "cat@example.com")
    receipt = report(client)
    case_id = receipt["case_id"]
    assert act(client, sue, case_id, "assign_owner", 1, {"owner": "bob"}).status_code == 200
    sync()
    opened = tmp_path / "opened.xlsx"
    shutil.copy(workbook, opened)  # a person opens the file (owner bob)
    assert act(client, sue, case_id, "assign_owner", 2, {"owner": "cat"}).status_code == 200
    sync()
    # They save their copy without changing anything: it overwrites what the sync wrote.
    shutil.copy(opened, workbook)
    result = reconcile()
    assert (result.edits_applied, result.edits_refused) == (0, 0)
    assert owners(case_id)[0] == ("staff:sue", "cat")
    row = tab(workbook, "Cases")[0]
    assert row["负责人"] == "cat" and row["version"] == str(version_of(case_id))
    # Again, with a note typed in their copy: the note goes in, the owner stays cat.
    shutil.copy(opened, workbook)
    type_into(workbook, "Cases", receipt["case_number"], "添加备注", "parcel photos asked for")
    result = reconcile()
    assert (result.edits_applied, result.edits_refused) == (1, 0)
    history = bootstrap.case_store().case_history(case_id)
    assert history[0].action == "add_note" and history[0].actor == "staff:desk"
    assert owners(case_id)[0] == ("staff:sue", "cat")
    row = tab(workbook, "Cases")[0]
    assert row["负责人"] == "cat" and row["添加备注"] == "" and row["sync note"] == ""


def test_a_stale_copy_that_changes_a_column_changed_meanwhile_is_put_back_with_who_did_it(
    client: Any, workbook: Path, tmp_path: Path
) -> None:
    sue = add("sue", Role.SUPERVISOR, "sue@example.com")
    add("desk", Role.SUPERVISOR, "desk@example.com", "en")
    add("bob", Role.AGENT, "bob@example.com")
    add("cat", Role.AGENT, "cat@example.com")
    receipt = report(client)
    sync()
    opened = tmp_path / "opened.xlsx"
    shutil.copy(workbook, opened)
    assert act(client, sue, receipt["case_id"], "assign_owner", 1,
               {"owner": "cat"}).status_code == 200
    sync()
    shutil.copy(opened, workbook)
    type_into(workbook, "Cases", receipt["case_number"], "负责人", "bob")
    result = reconcile()
    assert result.edits_refused == 1
    assert owners(receipt["case_id"]) == [("staff:sue", "cat")]
    row = tab(workbook, "Cases")[0]
    assert row["负责人"] == "cat"
    assert "changed meanwhile by sue" in row["sync note"] and "version 1" in row["sync note"]


def test_a_row_older_than_the_versions_remembered_is_put_back_with_a_note(
    client: Any, workbook: Path, tmp_path: Path
) -> None:
    sue = add("sue", Role.SUPERVISOR, "sue@example.com")
    add("desk", Role.SUPERVISOR, "desk@example.com", "en")
    receipt = report(client)
    sync()
    opened = tmp_path / "opened.xlsx"
    shutil.copy(workbook, opened)
    for n in range(sheets.RING + 1):  # more versions than the mirror remembers
        assert act(client, sue, receipt["case_id"], "add_note", n + 1,
                   {"text": f"note {n}"}).status_code == 200
        sync()
    shutil.copy(opened, workbook)
    type_into(workbook, "Cases", receipt["case_number"], "负责人", "sue")
    result = reconcile()
    assert result.edits_refused == 1
    case = bootstrap.case_store().get_case(receipt["case_id"])
    assert case is not None and case.owner is None
    row = tab(workbook, "Cases")[0]
    assert row["负责人"] == "" and "type your edit again" in row["sync note"]


# -- 2. a write whose answer was lost is never resent as it was ---------------------------


def test_a_write_applied_but_answered_503_is_planned_again_from_a_fresh_read(
    client: Any, google: tuple[FakeGoogleSheets, str]
) -> None:
    fake, sheet_id = google
    sue = add("sue", Role.SUPERVISOR, "sue@example.com")
    receipts = [report(client, customer={"name": f"C{n}", "email": f"c{n}@example.com"})
                for n in range(4)]
    sheets.sync(desk())
    # One case leaves (a row deleted), one changes (a row updated), one is new (appended).
    assert act(client, sue, receipts[1]["case_id"], "cancel", 1,
               {"text": "duplicate"}).status_code == 200
    assert act(client, sue, receipts[2]["case_id"], "assign_owner", 1,
               {"owner": "sue"}).status_code == 200
    new = report(client, customer={"name": "New", "email": "new@example.com"})
    fake.clear_log()
    fake.fail_next(1, 503, "writes", apply=True)  # applied, then the answer is lost
    result = sheets.sync(desk())
    assert not result.unavailable and result.replans == 1
    kinds = [r.kind for r in fake.requests if r.kind != "token"]
    # Written once; then read again, which shows the write went through: nothing resent.
    assert kinds.count("batchUpdate") == 1 and kinds[-1] == "values.batchGet", kinds
    shown = [row[0] for row in fake.tab_values(sheet_id, "Cases")[1:] if row]
    assert sorted(shown) == sorted(r["case_number"] for r in (*receipts, new)
                                   if r is not receipts[1])
    assert by_case(fake, sheet_id, "Cases")[receipts[2]["case_number"]]["owner"] == "sue"
    all_ids = [r["case_id"] for r in (*receipts, new)]
    assert sheets.check(desk(), all_ids) == []


def test_a_write_lost_before_it_was_applied_is_planned_again_and_written_once(
    client: Any, google: tuple[FakeGoogleSheets, str]
) -> None:
    fake, sheet_id = google
    sue = add("sue", Role.SUPERVISOR, "sue@example.com")
    receipts = [report(client, customer={"name": f"C{n}", "email": f"c{n}@example.com"})
                for n in range(3)]
    sheets.sync(desk())
    assert act(client, sue, receipts[0]["case_id"], "cancel", 1,
               {"text": "duplicate"}).status_code == 200
    new = report(client, customer={"name": "New", "email": "new@example.com"})
    fake.fail_next(2, 500, "writes")  # not applied, twice
    result = sheets.sync(desk())
    assert not result.unavailable and result.replans == 2
    shown = [row[0] for row in fake.tab_values(sheet_id, "Cases")[1:] if row]
    assert sorted(shown) == sorted(r["case_number"] for r in (receipts[1], receipts[2], new))
    # Failing every time: given up after three plans, nothing lost, the next sync catches up.
    later = report(client, customer={"name": "Later", "email": "later@example.com"})
    fake.fail_next(3, 503, "writes")
    result = sheets.sync(desk())
    assert result.unavailable and result.replans == 3
    assert later["case_number"] not in by_case(fake, sheet_id, "Cases")
    sheets.sync(desk())
    ids = [r["case_id"] for r in (*receipts, new, later)]
    assert sheets.check(desk(), ids) == []


def test_a_write_answered_5xx_is_planned_again_only_after_a_growing_wait(
    client: Any, google: tuple[FakeGoogleSheets, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Google answering 5xx is Google in trouble: re-reading and re-writing at once would
    only add to it. Each re-plan waits (1 s, then 2 s, plus jitter) before reading again."""
    fake, sheet_id = google
    receipts = [report(client, customer={"name": f"C{n}", "email": f"c{n}@example.com"})
                for n in range(2)]
    sheets.sync(desk())
    new = report(client, customer={"name": "New", "email": "new@example.com"})
    waits: list[tuple[float, int]] = []  # (seconds, requests made before the wait)
    monkeypatch.setattr(google_sheets, "pause",
                        lambda seconds: waits.append((seconds, len(fake.requests))))
    fake.clear_log()
    fake.fail_next(2, 500, "writes")  # not applied, twice
    result = sheets.sync(desk())
    assert not result.unavailable and result.replans == 2
    assert len(waits) == 2
    assert 1 <= waits[0][0] <= 2 and 2 <= waits[1][0] <= 3
    kinds = [r.kind for r in fake.requests if r.kind != "token"]
    assert kinds == ["values.batchGet", "batchUpdate"] * 3, kinds
    for _, before in waits:  # each wait came after a failed write, before the next read
        assert fake.requests[before - 1].kind == "batchUpdate"
        assert fake.requests[before].kind == "values.batchGet"
    assert new["case_number"] in by_case(fake, sheet_id, "Cases")
    assert sheets.check(desk(), [r["case_id"] for r in (*receipts, new)]) == []


def test_a_sort_between_read_and_write_is_repaired_by_the_next_reconcile(
    client: Any, google: tuple[FakeGoogleSheets, str]
) -> None:
    """What sorting still costs: the sync writes where its read found the rows; a sort in
    between puts its values on other rows (and its delete on another row). The store is
    never touched by that, and the next reconcile puts every row right; an edit typed in
    a row overwritten that way, and not yet taken in, is lost."""
    fake, sheet_id = google
    sue = add("sue", Role.SUPERVISOR, "sue@example.com")
    receipts = [report(client, customer={"name": f"C{n}", "email": f"c{n}@example.com"})
                for n in range(5)]
    sheets.sync(desk())
    assert act(client, sue, receipts[1]["case_id"], "assign_owner", 1,
               {"owner": "sue"}).status_code == 200
    assert act(client, sue, receipts[4]["case_id"], "cancel", 1,
               {"text": "duplicate"}).status_code == 200
    fake.on_next_request(lambda: fake.sort_rows(sheet_id, "Cases", 0, descending=True),
                         kinds="writes")
    sheets.sync(desk())
    ids = [r["case_id"] for r in receipts]
    assert sheets.check(desk(), ids) != []  # rows written over others, a wrong row deleted
    versions = {r["case_id"]: version_of(r["case_id"]) for r in receipts}
    sheets.reconcile(desk())
    assert {r["case_id"]: version_of(r["case_id"]) for r in receipts} == versions
    shown = [row[0] for row in fake.tab_values(sheet_id, "Cases")[1:] if row]
    assert sorted(shown) == sorted(r["case_number"] for i, r in enumerate(receipts) if i != 4)
    assert by_case(fake, sheet_id, "Cases")[receipts[1]["case_number"]]["owner"] == "sue"
    assert sheets.check(desk(), ids) == []


# -- 3. read-only cells changed by hand are put back ----------------------------------------


def test_read_only_cells_changed_in_the_workbook_are_put_back(
    client: Any, workbook: Path
) -> None:
    receipt = report(client, customer={"name": "Ann Lee", "email": "ann@example.com"})
    sync()
    status = tab(workbook, "Cases")[0]["状态"]
    book = load_workbook(workbook)
    sheet = book["Cases"]
    headers = [cell.value for cell in sheet[1]]
    sheet.cell(row=2, column=headers.index("状态") + 1).value = "closed"
    sheet.cell(row=2, column=headers.index("客户") + 1).value = "=HYPERLINK(\"http://x\")"
    book.save(workbook)
    reconcile()
    sync()
    row = tab(workbook, "Cases")[0]
    assert row["状态"] == status != "closed" and row["客户"] == "Ann Lee"
    cell = load_workbook(workbook)["Cases"].cell(row=2, column=headers.index("客户") + 1)
    assert cell.data_type == "s"  # text again, not a formula
    case = bootstrap.case_store().get_case(receipt["case_id"])
    assert case is not None and case.status.value == "new"
    assert sheets.check(bootstrap.sheet_desk(), [receipt["case_id"]]) == []  # type: ignore[arg-type]


def test_a_hidden_version_cell_changed_in_google_is_put_back(
    client: Any, google: tuple[FakeGoogleSheets, str]
) -> None:
    fake, sheet_id = google
    receipt = report(client)
    sheets.sync(desk())
    number = row_of(fake, sheet_id, "Cases", receipt["case_number"])
    status = by_case(fake, sheet_id, "Cases")[receipt["case_number"]]["status"]
    fake.set_cell(sheet_id, "Cases", f"{column_of(fake, sheet_id, 'Cases', 'version')}{number}",
                  "99")
    fake.set_cell(sheet_id, "Cases", f"{column_of(fake, sheet_id, 'Cases', 'status')}{number}",
                  "closed")
    result = sheets.reconcile(desk())
    assert (result.edits_applied, result.edits_refused) == (0, 0)
    shown = by_case(fake, sheet_id, "Cases")[receipt["case_number"]]
    assert shown["version"] == "1" and shown["status"] == status != "closed"


# -- 4. long numbers typed by staff keep their digits ------------------------------------------

LONG = "2026112322001412345678"


def test_a_long_number_typed_in_a_google_text_column_keeps_its_digits(
    client: Any, google: tuple[FakeGoogleSheets, str]
) -> None:
    fake, sheet_id = google
    add("sue", Role.SUPERVISOR, "sue@example.com")
    receipt = report(client)
    sheets.sync(desk())
    number = row_of(fake, sheet_id, "Cases", receipt["case_number"])
    note = column_of(fake, sheet_id, "Cases", "add_note")
    assert fake.cell_format(sheet_id, "Cases", f"{note}{number}") == {
        "numberFormat": {"type": "TEXT"}}
    assert fake.cell_format(sheet_id, "Cases", "A2") is None  # only the free-text columns
    fake.set_cell(sheet_id, "Cases", f"{note}{number}", LONG)
    fake.set_cell(sheet_id, "Cases", f"{column_of(fake, sheet_id, 'Cases', 'edited by')}{number}",
                  "sue@example.com")
    assert sheets.reconcile(desk()).edits_applied == 1
    history = bootstrap.case_store().case_history(receipt["case_id"])
    assert history[0].details == {"text": LONG}


def test_a_number_google_shows_rounded_is_refused_not_taken_in(
    client: Any, google: tuple[FakeGoogleSheets, str]
) -> None:
    fake, sheet_id = google
    add("sue", Role.SUPERVISOR, "sue@example.com")
    receipt = report(client)
    sheets.sync(desk())
    number = row_of(fake, sheet_id, "Cases", receipt["case_number"])
    note = column_of(fake, sheet_id, "Cases", "add_note")
    fake.tab(sheet_id, "Cases").formats.clear()  # someone pasted over the format
    fake.set_cell(sheet_id, "Cases", f"{note}{number}", LONG)
    assert fake.cell(sheet_id, "Cases", f"{note}{number}") == "2.02611E+21"
    fake.set_cell(sheet_id, "Cases", f"{column_of(fake, sheet_id, 'Cases', 'edited by')}{number}",
                  "sue@example.com")
    result = sheets.reconcile(desk())
    assert (result.edits_applied, result.edits_refused) == (0, 1)
    assert not [e for e in bootstrap.case_store().case_history(receipt["case_id"])
                if e.action == "add_note"]
    shown = by_case(fake, sheet_id, "Cases")[receipt["case_number"]]
    assert shown["add_note"] == "" and "丢失" in shown["sync note"]


def test_long_numbers_in_the_workbook_are_typed_as_text_and_a_rounded_one_is_refused(
    client: Any, workbook: Path
) -> None:
    add("desk", Role.SUPERVISOR, "desk@example.com", "en")
    receipt = report(client)
    sync()
    sheet = load_workbook(workbook)["Cases"]
    headers = [cell.value for cell in sheet[1]]
    column = headers.index("添加备注") + 1
    assert sheet.cell(row=2, column=column).number_format == "@"
    letter = sheet.cell(row=1, column=column).column_letter
    assert sheet.column_dimensions[letter].number_format == "@"
    # Typed into the text cell: kept as typed.
    type_into(workbook, "Cases", receipt["case_number"], "添加备注", LONG)
    assert reconcile().edits_applied == 1
    assert bootstrap.case_store().case_history(receipt["case_id"])[0].details == {"text": LONG}
    # Typed where the program took it for a number: the file holds a rounded float.
    book = load_workbook(workbook)
    book["Cases"].cell(row=2, column=column).value = float(LONG)
    book.save(workbook)
    result = reconcile()
    assert (result.edits_applied, result.edits_refused) == (0, 1)
    assert bootstrap.case_store().case_history(receipt["case_id"])[0].details == {"text": LONG}
    row = tab(workbook, "Cases")[0]
    assert row["添加备注"] == "" and "lost digits" in row["sync note"]


# -- 5. the owner dropdown follows the staff list ------------------------------------------------


def test_the_owner_dropdown_is_laid_again_when_staff_are_added(
    client: Any, google: tuple[FakeGoogleSheets, str]
) -> None:
    fake, sheet_id = google
    add("ann", Role.AGENT, "ann@example.com")
    report(client)
    sheets.sync(desk())
    owner = column_of(fake, sheet_id, "Cases", "owner")

    def offered() -> list[str]:
        rule = fake.tab(sheet_id, "Cases").validation_at(f"{owner}2")
        assert rule is not None
        return [v["userEnteredValue"] for v in rule["condition"]["values"]]

    assert offered() == ["ann"]
    add("zoe", Role.AGENT, "zoe@example.com")
    fake.clear_log()
    result = sheets.sync(desk())  # nothing dirty: the dropdown alone is written
    assert offered() == ["ann", "zoe"]
    assert [r.kind for r in fake.requests if r.kind != "token"] == [
        "values.batchGet", "batchUpdate"]
    assert result.rows_written == 0
    fake.clear_log()
    sheets.sync(desk())  # laid for this staff list: nothing to do
    assert [r.kind for r in fake.requests if r.kind != "token"] == []


def test_a_long_staff_list_stays_a_dropdown_in_the_workbook(
    client: Any, workbook: Path
) -> None:
    report(client)
    sync()
    for n in range(40):  # far more than 255 characters of staff ids
        add(f"colleague-{n:02}", Role.AGENT, f"c{n}@example.com")
    sync()
    book = load_workbook(workbook)
    assert book["lists"].sheet_state == "hidden"
    sheet = book["Cases"]
    headers = [cell.value for cell in sheet[1]]
    letter = sheet.cell(row=1, column=headers.index("负责人") + 1).column_letter
    rules = [dv for dv in sheet.data_validations.dataValidation
             if f"{letter}2" in str(dv.sqref).split(":")[0]]
    assert len(rules) == 1
    source = rules[0].formula1
    assert source.startswith("'lists'!")
    cells = book["lists"][source.split("!", 1)[1].replace("$", "")]
    listed = [row[0].value for row in cells]
    assert len(listed) == 40 and "colleague-39" in listed
    assert [s for s in book.sheetnames if s != "lists"] == [
        "Cases", "Follow-ups", "Parts", "Refunds", "Overdue"]


def test_the_webhook_answers_503_and_marks_the_case_when_its_write_may_be_lost(
    client: Any, google: tuple[FakeGoogleSheets, str]
) -> None:
    from tests.integration.test_sheet_google import post_edit

    fake, sheet_id = google
    add("sue", Role.SUPERVISOR, "sue@example.com")
    receipt = report(client)
    sheets.sync(desk())
    number = row_of(fake, sheet_id, "Cases", receipt["case_number"])
    fake.set_cell(sheet_id, "Cases", f"{column_of(fake, sheet_id, 'Cases', 'owner')}{number}",
                  "sue")
    fake.fail_next(1, 503, "writes")
    answer = post_edit(client, sheet_id, "Cases", number, "sue@example.com")
    assert answer.status_code == 503, answer.body
    assert json.loads(answer.body)["errors"]
    case = bootstrap.case_store().get_case(receipt["case_id"])
    assert case is not None and case.owner == "sue"  # applied; the row follows
    sheets.sync(desk())
    assert by_case(fake, sheet_id, "Cases")[receipt["case_number"]]["version"] == str(
        case.version)


# -- 6. the make run workbook: edits are someone's ----------------------------------------------


def test_the_local_stack_makes_the_workbook_editor_so_edits_go_in(
    client: Any, workbook: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from local import stack

    monkeypatch.setenv("SERVICE_DESK_SHEETS_DEFAULT_EDITOR", stack.LOCAL_EDITOR)
    bootstrap.reset()
    stack.ensure_sheet_editor(stack.LOCAL_EDITOR)
    stack.ensure_sheet_editor(stack.LOCAL_EDITOR)  # a restart keeps the one made
    receipt = report(client)
    sync()
    type_into(workbook, "Cases", receipt["case_number"], "负责人", stack.LOCAL_EDITOR)
    assert reconcile().edits_applied == 1
    assert owners(receipt["case_id"]) == [(f"staff:{stack.LOCAL_EDITOR}", stack.LOCAL_EDITOR)]


def test_an_edit_nobody_can_be_found_for_says_what_to_do(
    client: Any, workbook: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SERVICE_DESK_SHEETS_DEFAULT_EDITOR", "nobody-here")
    bootstrap.reset()
    add("bob", Role.AGENT, "bob@example.com")
    receipt = report(client)
    sync()
    type_into(workbook, "Cases", receipt["case_number"], "负责人", "bob")
    assert reconcile().edits_refused == 1
    note = tab(workbook, "Cases")[0]["sync note"]
    assert "SERVICE_DESK_SHEETS_DEFAULT_EDITOR" in note and "重新输入" not in note


# -- 7. a refusal's note is in the editor's language, with the desk's detail after it ----------


def test_a_refused_action_is_explained_in_chinese_before_the_detail(
    client: Any, workbook: Path
) -> None:
    add("desk", Role.AGENT, "desk@example.com", "zh")
    add("ann", Role.AGENT, "ann@example.com")
    receipt = report(client)
    sync()
    type_into(workbook, "Cases", receipt["case_number"], "负责人", "ann")  # not for an agent
    assert reconcile().edits_refused == 1
    note = tab(workbook, "Cases")[0]["sync note"]
    assert note.startswith("未保存") and "您的角色不能执行此操作：" in note
    type_into(workbook, "Cases", receipt["case_number"], "操作", "resolve")
    assert reconcile().edits_refused == 1
    note = tab(workbook, "Cases")[0]["sync note"]
    # The status as staff call it, never its identifier.
    assert "案件当前状态（新建）不允许此操作" in note and "（new）" not in note


# -- 8. rebuilding one tab takes pending edits in first ----------------------------------------


def test_rebuild_of_one_tab_takes_pending_edits_in_first_and_leaves_the_others(
    client: Any, workbook: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from chalicelib import cli

    add("desk", Role.SUPERVISOR, "desk@example.com")
    receipt = report(client)
    sync()
    type_into(workbook, "Cases", receipt["case_number"], "负责人", "desk")
    book = load_workbook(workbook)
    book["Overdue"]["A5"] = "left alone"  # a mark in another tab: not rebuilt, kept
    book.save(workbook)
    assert cli.main(["sheets", "rebuild", "Cases"]) == 0
    assert "1 edit(s) applied" in capsys.readouterr().out
    assert owners(receipt["case_id"]) == [("staff:desk", "desk")]
    rows = tab(workbook, "Cases")
    assert len(rows) == 1 and rows[0]["负责人"] == "desk"
    assert load_workbook(workbook)["Overdue"]["A5"].value == "left alone"
    assert cli.main(["sheets", "rebuild"]) == 0
    assert load_workbook(workbook)["Overdue"]["A5"].value is None
    assert sheets.check(bootstrap.sheet_desk(), [receipt["case_id"]]) == []  # type: ignore[arg-type]
