"""What staff read in the sheet's views: follow-up calls from the day they are due and their
outcomes afterwards, parts requests through to their old part's verdict, refunds, and every
breached deadline with whom it is reminded to — in the company's language, local time."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from chalicelib.domain.case import Case, CaseKind, CaseStatus, Language
from chalicelib.domain.field_service import (
    Approval,
    FieldService,
    OldPart,
    PartsLine,
    PartsRequest,
    PartsSale,
    Party,
)
from chalicelib.domain.followup import FollowUp, FollowUpCall, OpenQuestion
from chalicelib.domain.lifecycle import apply_action
from chalicelib.domain.remedies import RefundTrack
from chalicelib.domain.sheet_views import (
    VIEWS,
    VIEWS_BY_NAME,
    EditPending,
    EditRefused,
    Row,
    SheetAction,
    next_change_at,
    note_text,
    rows_for,
)
from chalicelib.domain.staff import Role
from tests.unit.test_lifecycle import ANN, PROMISES, new_case

SHANGHAI = ZoneInfo("Asia/Shanghai")
START = datetime(2025, 11, 3, 9, 0, tzinfo=SHANGHAI)  # a Monday
HOUR, DAY = timedelta(hours=1), timedelta(days=1)


def rows(case: Case, view: str, at: datetime, language: Language = Language.ZH
         ) -> dict[str, Row]:
    """The case's rows in one view, by row key."""
    return {row.key: row for row in rows_for(case, at, SHANGHAI, language).values()
            if row.view == view}


def edit(case: Case, view: str, key: str, **typed: str) -> list[SheetAction]:
    """Staff typing into a row: what the desk would be asked to do."""
    shown = rows(case, view, START + 30 * DAY)
    cells = {**(shown[key].cells if key in shown else {}), **typed}
    edits = VIEWS_BY_NAME[view].edits
    assert edits is not None
    return edits(case, key, typed, cells)


# -- Follow-ups ------------------------------------------------------------------------------


def resolved_with_call(due: datetime, owner: str | None = "ann") -> Case:
    call = FollowUpCall(number=1, due_at=due, window_ends_at=due + 3 * DAY)
    return new_case(CaseKind.WRONG_ITEM, START).model_copy(update={
        "status": CaseStatus.RESOLVED, "owner": owner, "resolved_at": START,
        "first_replied_at": START, "follow_up": FollowUp(resolved_at=START, calls=(call,)),
    })


def record(case: Case, at: datetime, outcome: str, note: str | None = None) -> Case:
    params = {"outcome": outcome, "note": note}
    if outcome == "question":
        params["question"] = note
    return apply_action(case, "record_follow_up_call", params, actor=ANN, now=at,
                        promises=PROMISES).case


def test_a_follow_up_call_shows_from_the_moment_it_falls_due_without_a_case_change() -> None:
    due = START + 3 * DAY
    case = resolved_with_call(due)
    assert rows(case, "Follow-ups", due - HOUR) == {}
    # The sync is told to come back then, so the row appears on time.
    assert next_change_at(case, due - HOUR) == due
    row = rows(case, "Follow-ups", due)["call1"]
    assert row.cells["due"] == "2025-11-06 09:00"
    assert row.cells["language"] == "英文" and row.cells["result"] == ""
    assert not row.overdue
    # Past its window: highlighted, and on the Overdue tab as the owner's reminder.
    late = rows(case, "Follow-ups", due + 4 * DAY)["call1"]
    assert late.overdue and late.cells["overdue"] == "是"
    overdue = rows(case, "Overdue", due + 4 * DAY)["follow_up_call_1"]
    assert overdue.cells["deadline"] == "回访电话（第 1 次）"
    assert overdue.cells["due"] == "2025-11-09 09:00"
    assert overdue.cells["reminded"] == "ann"


def test_recorded_calls_stay_with_their_outcome_until_a_week_after_the_last_call() -> None:
    due = START + 3 * DAY
    case = resolved_with_call(due)
    first_at = due + 2 * HOUR
    case = record(case, first_at, "no_answer", "voicemail")
    # Not answered: the same call again from the next try, with the try counted.
    again = case.follow_up.calls[-1] if case.follow_up else None
    assert again is not None and again.pending
    assert rows(case, "Follow-ups", first_at) == {}
    assert next_change_at(case, first_at) == again.due_at
    retry = rows(case, "Follow-ups", again.due_at)["call1"]
    assert retry.cells["attempts"] == "1" and retry.cells["said"] == "voicemail"
    done_at = again.due_at + HOUR
    case = record(case, done_at, "satisfied", "happy with the exchange")
    shown = rows(case, "Follow-ups", done_at)
    assert set(shown) == {"call1"}  # the second call is not due yet
    first = shown["call1"].cells
    assert first["result"] == "满意" and first["said"] == "happy with the exchange"
    assert first["recorded"] == f"{done_at.astimezone(SHANGHAI):%Y-%m-%d %H:%M}"
    assert first["recorded_by"] == "ann"
    assert first["outcome"] == "" and first["comment"] == ""
    # A recorded call cannot be recorded again from the sheet.
    with pytest.raises(EditRefused) as refused:
        edit(case, "Follow-ups", "call1", outcome="not_satisfied")
    assert refused.value.note == "call_recorded"
    assert "已记录" in note_text(Language.ZH, refused.value.note)
    # The second call: from its day, next to the first one's outcome; typed in, recorded.
    second = case.follow_up.calls[-1] if case.follow_up else None
    assert second is not None and second.number == 2
    both = rows(case, "Follow-ups", second.due_at)
    assert set(both) == {"call1", "call2"}
    assert edit(case, "Follow-ups", "call2", outcome="question", comment="spare strap?") == [
        SheetAction("record_follow_up_call", {"outcome": "question", "note": "spare strap?",
                                              "question": "spare strap?"})]
    with pytest.raises(EditPending):
        edit(case, "Follow-ups", "call2", comment="waiting for the outcome")
    last_at = second.due_at + HOUR
    case = record(case, last_at, "satisfied")
    # The last call done: both stay a week, then leave; the sync is told when.
    assert set(rows(case, "Follow-ups", last_at + 7 * DAY - HOUR)) == {"call1", "call2"}
    assert next_change_at(case, last_at) == last_at + 7 * DAY
    assert rows(case, "Follow-ups", last_at + 7 * DAY) == {}


# -- Overdue ---------------------------------------------------------------------------------


def test_every_breached_deadline_is_listed_with_whom_it_is_reminded_to() -> None:
    case = new_case(CaseKind.WRONG_ITEM, START).model_copy(update={
        "first_reply_due_at": START + 4 * HOUR, "resolve_due_at": START + 5 * DAY,
    })
    at = START + 5 * HOUR
    # Nobody owns a new case: the reminder goes to the service centre.
    overdue = rows(case, "Overdue", at)
    assert set(overdue) == {"first_reply"}
    cells = overdue["first_reply"].cells
    assert cells["deadline"] == "首次回复客户" and cells["due"] == "2025-11-03 13:00"
    assert cells["owner"] == "客服中心" and cells["reminded"] == "客服中心"
    assert cells["status"] == "新建" and cells["kind"] == "发错产品"
    english = rows(case, "Overdue", at, Language.EN)["first_reply"].cells
    assert english["deadline"] == "first reply to the customer"
    assert english["owner"] == english["reminded"] == "service centre"
    assert rows(case, "Cases", at)[""].cells["overdue"] == "是"
    assert rows(case, "Cases", at)[""].cells["next_due"] == "2025-11-03 13:00 首次回复客户"
    # A customer's question from a follow-up call, unanswered: to the supervisors.
    asked = resolved_with_call(START + 3 * DAY).model_copy(update={
        "open_question": OpenQuestion(text="spare strap?", asked_at=START + 3 * DAY,
                                      report_due_at=START + 4 * DAY, taken_by="staff:ann"),
    })
    question = rows(asked, "Overdue", START + 5 * DAY)["customer_question"].cells
    assert question["deadline"] == "回访中客户提出的问题"
    assert question["owner"] == "ann" and question["reminded"] == "主管"
    assert next_change_at(asked, START + 3 * DAY + HOUR) == START + 4 * DAY


def test_no_view_shows_a_raw_identifier_to_people() -> None:
    case = with_parts(shipped_with_old_part(received=True, verdict=(False, "incomplete")),
                      awaiting()).model_copy(update={
        "status": CaseStatus.IN_PROGRESS, "first_reply_due_at": START + HOUR,
        "refund": RefundTrack(amount=Decimal("50"), request_due_at=START + DAY),
    })
    at = START + 2 * DAY
    raw = {"first_reply", "in_progress", "repair_request", "to_request", "awaiting_approval",
           "service_director", "not_returned", "dealer", "refund_request"}
    for view in VIEWS:
        editable = {column.key for column in view.columns if column.editable}
        for row in rows(case, view.name, at).values():
            shown = {key: value for key, value in row.cells.items() if key not in editable}
            assert not raw & set(shown.values()), (view.name, shown)


# -- Parts -------------------------------------------------------------------------------------


def with_parts(*requests: PartsRequest) -> Case:
    return new_case(CaseKind.REPAIR_REQUEST, START).model_copy(update={
        "status": CaseStatus.IN_PROGRESS, "owner": "tim",
        "field_service": FieldService(parts=requests),
    })


LINE = PartsLine(part_no="P-7", quantity=2, unit_price=Decimal("240"))


def awaiting() -> PartsRequest:
    return PartsRequest(
        number=2, lines=(LINE,), amount=Decimal("480"), requested_by="staff:tim",
        requested_at=START, needs=(Role.SUPERVISOR, Role.SERVICE_DIRECTOR),
        approvals=(Approval(role=Role.SUPERVISOR, by="staff:sue", at=START + HOUR),),
    )


def shipped_with_old_part(received: bool = False,
                          verdict: tuple[bool, str | None] | None = None) -> PartsRequest:
    old = OldPart(due_at=START + 30 * DAY)
    if received:
        old = old.model_copy(update={"received_at": START + 10 * DAY,
                                     "received_by": "staff:leo"})
    if verdict is not None:
        old = old.model_copy(update={"accepted": verdict[0], "fault": verdict[1],
                                     "inspected_at": START + 11 * DAY,
                                     "inspected_by": "staff:qian"})
    sale = None
    if verdict is not None and not verdict[0]:
        sale = PartsSale(amount=Decimal("480"), charged_to="east", reason="incomplete",
                         at=START + 11 * DAY)
    return PartsRequest(
        number=1, lines=(LINE,), amount=Decimal("480"), requested_by="staff:tim",
        requested_at=START, needs=(Role.SERVICE_DIRECTOR,), state="shipped",
        approvals=(Approval(role=Role.SERVICE_DIRECTOR, by="staff:dan", at=START),),
        approved_at=START, shipped_at=START + DAY, tracking_no="SF123",
        for_party="east", for_party_kind=Party.DEALER, old_part=old, sale=sale,
    )


def test_a_parts_request_shows_its_approvals_given_and_missing() -> None:
    cells = rows(with_parts(awaiting()), "Parts", START + 2 * HOUR)["parts2"].cells
    assert cells["approved_by"] == "主管 sue 2025-11-03 10:00"
    assert cells["waiting_for"] == "售服中心主任"
    assert cells["state"] == "待审批" and cells["type"] == "三包"
    english = rows(with_parts(awaiting()), "Parts", START + 2 * HOUR, Language.EN)
    assert english["parts2"].cells["waiting_for"] == "service director"


def test_a_shipped_request_stays_through_its_old_part_and_verdict_then_a_few_days() -> None:
    at = START + 2 * DAY
    cells = rows(with_parts(shipped_with_old_part()), "Parts", at)["parts1"].cells
    assert cells["state"] == "已发货，旧件待返回"
    assert cells["shipped"] == "2025-11-04 09:00" and cells["tracking_no"] == "SF123"
    assert cells["for"] == "east (代理商)" and cells["old_part_due"] == "2025-12-03 09:00"
    received = rows(with_parts(shipped_with_old_part(received=True)), "Parts", at)
    assert received["parts1"].cells["old_part"] == "received"
    assert received["parts1"].cells["state"] == "旧件已收到，待检验"
    accepted = with_parts(shipped_with_old_part(received=True, verdict=(True, None)))
    cells = rows(accepted, "Parts", START + 12 * DAY)["parts1"].cells
    assert cells["old_part_check"] == "accepted" and cells["state"] == "旧件检验合格"
    assert cells["inspected"] == "2025-11-14 09:00 qian"
    # Done when inspected: kept 3 days, and the sync is told when it leaves.
    assert next_change_at(accepted, START + 12 * DAY) == START + 14 * DAY
    assert rows(accepted, "Parts", START + 14 * DAY) == {}
    # Inspected and cleared in the sheet: refused, the verdict stays.
    with pytest.raises(EditRefused):
        edit(accepted, "Parts", "parts1", old_part_check="")


def test_a_rejected_old_part_shows_the_fault_and_the_sale_charged_to_the_dealer() -> None:
    case = with_parts(shipped_with_old_part(received=True, verdict=(False, "incomplete")))
    cells = rows(case, "Parts", START + 12 * DAY)["parts1"].cells
    assert cells["old_part_check"] == "rejected: incomplete"
    assert cells["state"] == "已转为配件销售"
    assert cells["sale"] == "480.00 向 east 收取（不完整），2025-11-14 09:00"
    english = rows(case, "Parts", START + 12 * DAY, Language.EN)["parts1"].cells
    assert english["sale"] == "480.00 charged to east (incomplete), 2025-11-14 09:00"


def test_parts_shipped_with_no_old_part_owed_stay_three_days_after_shipping() -> None:
    paid = shipped_with_old_part().model_copy(update={
        "old_part": None, "paid_by_customer": True, "beyond_warranty": True})
    case = with_parts(paid)
    shown = rows(case, "Parts", START + 3 * DAY)["parts1"].cells
    assert shown["state"] == "已发货" and shown["type"] == "客户付费"
    assert rows(case, "Parts", START + 4 * DAY) == {}


def test_a_cancelled_case_still_shows_the_old_part_it_owes() -> None:
    case = with_parts(shipped_with_old_part(), awaiting()).model_copy(
        update={"status": CaseStatus.CANCELLED})
    assert set(rows(case, "Parts", START + 2 * DAY)) == {"parts1"}
    late = rows(case, "Parts", START + 31 * DAY)["parts1"]
    assert late.overdue
    assert rows(case, "Overdue", START + 31 * DAY)["old_part_1"].cells["deadline"] == (
        "三包旧件返回（申请 1）")


# -- Refunds and headers -------------------------------------------------------------------


def test_a_refund_shows_its_state_and_promises_in_the_companys_language() -> None:
    case = new_case(CaseKind.WRONG_ITEM, START).model_copy(update={
        "status": CaseStatus.IN_PROGRESS,
        "refund": RefundTrack(amount=Decimal("50"), request_due_at=START + DAY),
    })
    cells = rows(case, "Refunds", START)[""].cells
    assert cells["state"] == "待提交退款申请" and cells["request_by"] == "2025-11-04 09:00"
    assert cells["amount"] == "50.00" and cells["method"] == ""
    assert rows(case, "Refunds", START, Language.EN)[""].cells["state"] == (
        "to request from finance")


def test_every_column_has_a_header_in_both_languages_that_finds_it_again() -> None:
    for view in VIEWS:
        for language in Language:
            headers = view.headers(language)
            assert all(headers) and len(set(headers)) == len(headers), view.name
            assert [view.key_of_header(text) for text in headers] == list(view.keys)
