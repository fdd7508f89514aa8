"""One writer at a time: a sync, a reconcile, a rebuild and the webhook each hold the
sheet's lease while they read and write rows by position; a run that finds it held does
nothing (a schedule) or answers 503 (the webhook), and a lease whose holder died runs out."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib import bootstrap
from chalicelib.adapters import google_sheets
from chalicelib.domain.staff import Role
from chalicelib.services import sheets
from tests.fakes.google_sheets import FakeGoogleSheets
from tests.integration.test_sheet_google import (
    add,
    by_case,
    column_of,
    desk,
    post_edit,
    row_of,
)
from tests.integration.test_staff_api import act, report


def lease_item() -> dict[str, Any] | None:
    store = desk().store
    found: dict[str, Any] | None = store.client.get_item(  # type: ignore[attr-defined]
        TableName=store.table_name,  # type: ignore[attr-defined]
        Key={"PK": {"S": "SHEETS"}, "SK": {"S": "LEASE"}}, ConsistentRead=True,
    ).get("Item")
    return found


def test_a_sync_started_while_another_writes_does_nothing_and_no_row_is_lost(
    client: Any, google: tuple[FakeGoogleSheets, str]
) -> None:
    fake, sheet_id = google
    sue = add("sue", Role.SUPERVISOR, "sue@example.com")
    receipts = [report(client, customer={"name": f"C{n}", "email": f"c{n}@example.com"})
                for n in range(3)]
    sheets.sync(desk())
    first, second, third = receipts
    assert row_of(fake, sheet_id, "Cases", first["case_number"]) == 2
    # The first case is cancelled: its row (row 2) leaves the tab at the next sync.
    assert act(client, sue, first["case_id"], "cancel", 1,
               {"text": "duplicate"}).status_code == 200
    overlapping: list[sheets.SyncReport] = []

    def next_minute() -> None:  # the next minute's sync, while the first is still writing
        assert act(client, sue, third["case_id"], "assign_owner", 1,
                    {"owner": "sue"}).status_code == 200
        fake.clear_log()
        overlapping.append(sheets.sync(desk()))
        assert fake.requests == []  # it did not even read the sheet

    fake.on_next_request(next_minute, kinds="writes")
    done = sheets.sync(desk())
    assert done.rows_removed == 1 and not done.busy
    assert overlapping[0].busy and overlapping[0].requests == 0
    assert overlapping[0].as_dict()["busy"] is True
    shown = by_case(fake, sheet_id, "Cases")
    # Row 2 was deleted once: the other cases' rows are all there.
    assert sorted(shown) == sorted([second["case_number"], third["case_number"]])
    # The change made meanwhile stays marked; the next sync writes it.
    assert shown[third["case_number"]]["owner"] == ""
    assert lease_item() is None  # released
    sheets.sync(desk())
    assert by_case(fake, sheet_id, "Cases")[third["case_number"]]["owner"] == "sue"
    assert sheets.check(desk(), [r["case_id"] for r in receipts]) == []


def test_a_lease_held_stops_the_schedules_and_one_whose_holder_died_is_taken_over(
    client: Any, google: tuple[FakeGoogleSheets, str]
) -> None:
    fake, sheet_id = google
    receipt = report(client)
    now = datetime.now(UTC)
    store = desk().store
    assert store.take_sheet_lease("a running sync", now, now + timedelta(seconds=150))
    fake.clear_log()
    for run in (sheets.sync, sheets.reconcile):
        result = run(desk())
        assert result.busy and not result.unavailable and result.requests == 0
    with pytest.raises(sheets.SheetBusy):
        sheets.rebuild(desk(), [receipt["case_id"]])
    assert fake.requests == []
    assert not store.take_sheet_lease("another", now, now + timedelta(seconds=150))
    # The holder crashed: its lease ran out, the next sync takes it over and writes.
    store.release_sheet_lease("another")  # not the holder: changes nothing
    assert lease_item() is not None
    later = now + timedelta(seconds=151)
    crashed = replace(desk(), now=later)
    result = sheets.sync(crashed)
    assert not result.busy and result.rows_added == 1
    assert receipt["case_number"] in by_case(fake, sheet_id, "Cases")
    assert lease_item() is None


def test_the_webhook_while_a_sync_holds_the_sheet_waits_then_answers_503(
    client: Any, google: tuple[FakeGoogleSheets, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, sheet_id = google
    add("sue", Role.SUPERVISOR, "sue@example.com")
    add("bob", Role.AGENT, "bob@example.com")
    receipt = report(client)
    sheets.sync(desk())
    waits: list[float] = []
    monkeypatch.setattr(google_sheets, "pause", waits.append)
    row = row_of(fake, sheet_id, "Cases", receipt["case_number"])
    fake.set_cell(sheet_id, "Cases", f"{column_of(fake, sheet_id, 'Cases', 'owner')}{row}",
                  "bob")
    fake.set_cell(sheet_id, "Cases",  # as the Apps Script records who edited
                  f"{column_of(fake, sheet_id, 'Cases', 'edited by')}{row}", "sue@example.com")
    now = datetime.now(UTC)
    assert desk().store.take_sheet_lease("a sync", now, now + timedelta(seconds=150))
    fake.clear_log()
    answer = post_edit(client, sheet_id, "Cases", row, "sue@example.com")
    assert answer.status_code == 503
    assert "another sync is writing the sheet" in json.dumps(json.loads(answer.body))
    assert waits == list(sheets.EDIT_LEASE_WAITS)  # it waited a little for the sync
    assert fake.requests == []  # nothing read, nothing written
    case = bootstrap.case_store().get_case(receipt["case_id"])
    assert case is not None and case.owner is None
    # Once the sync is done, the reconcile takes the edit in.
    desk().store.release_sheet_lease("a sync")
    assert sheets.reconcile(desk()).edits_applied == 1
    case = bootstrap.case_store().get_case(receipt["case_id"])
    assert case is not None and case.owner == "bob"
    assert by_case(fake, sheet_id, "Cases")[receipt["case_number"]]["owner"] == "bob"
