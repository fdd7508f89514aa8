"""Follow-up calls (回访) after a resolution, as the agents and the customer notice them.

The first call is due 3 days after the product was handed back (the resolution; a
workshop repair's device collected) and appears on the agents' call list then; the
customer gets a satisfaction link once. What the agent records moves the call: nobody
answered -> again at 09:00 (Shanghai) on the next working day, up to 3 tries, inside the
call's window; satisfied -> the second call 7 days later, then no more; not satisfied ->
the case is open again; a question -> the supervisors hear of it after 2 days unless it is
answered. A call still not made at the end of its window (the close of the 3rd working day
after it fell due) is reminded to the case's owner.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from chalicelib import bootstrap
from tests.integration.support import FORM, path_of, token_of
from tests.integration.test_staff_api import body, call
from tests.integration.test_timers import (
    EMAILS,
    OWNER,
    QUESTION_UNANSWERED,
    SECOND,
    SUPERVISOR,
    Desk,
    Opened,
    ann,
    at,
    sh,
)

# Monday 1 June 2026, 10:02 in Shanghai: the case is resolved; the first call falls due
# on Thursday 4 June at the same time, its window ends at the close of Tuesday 9 June
# (Friday, Monday, Tuesday).
RESOLVED_AT = sh(2026, 6, 1, 10, 2)
FIRST_CALL_DUE = sh(2026, 6, 4, 10, 2)
FIRST_CALL_WINDOW_ENDS = sh(2026, 6, 9, 17, 30)
SURVEY = "How did we do?"
CALL_OVERDUE = "次回访未完成"  # "follow-up call N not made" (staff e-mails are in Chinese)
DESCRIPTION = "Please send it to my office address instead."


@pytest.fixture
def desk(client: Any, aws: Path) -> Desk:
    return Desk(client, aws)


def resolved_case(desk: Desk, resolved_at: datetime = RESOLVED_AT, **complaint: Any) -> Opened:
    """An order change resolved at ``resolved_at``, owned by the agent."""
    case = desk.report(resolved_at - timedelta(minutes=2),
                       **ann(kind="order_change", description=DESCRIPTION, **complaint))
    desk.do(case, resolved_at - timedelta(minutes=1), "assign_owner", {"owner": OWNER})
    changed = desk.do(case, resolved_at, "change_address", {"address": "1 Office Park"})
    assert changed["status"] == "resolved"
    return case


def call_list(desk: Desk, when: datetime) -> list[dict[str, Any]]:
    with desk.moment(when):
        response = call(desk.client, "get", "/api/staff/follow-up-calls", desk.tokens[OWNER])
    assert response.status_code == 200, response.body
    calls: list[dict[str, Any]] = body(response)["calls"]
    return calls


def listed(desk: Desk, case: Opened, when: datetime) -> list[dict[str, Any]]:
    """The calls of this case on the list at ``when``."""
    return [c for c in call_list(desk, when) if c["case_id"] == case.case_id]


def record(desk: Desk, case: Opened, when: datetime, outcome: str, **params: Any) -> Any:
    return desk.do(case, when, "record_follow_up_call", {"outcome": outcome, **params})


def calls_of(desk: Desk, case: Opened) -> list[dict[str, Any]]:
    follow_up = desk.read(case)["case"]["follow_up"]
    return list(follow_up["calls"]) if follow_up else []


def surveys(desk: Desk, case: Opened) -> list[Any]:
    return [m for m in desk.inbox() if m.case_id == case.case_id and SURVEY in m.subject]


def test_the_first_call_is_listed_from_3_days_after_and_the_customer_rates_once(
    desk: Desk,
) -> None:
    case = resolved_case(desk)

    assert listed(desk, case, FIRST_CALL_DUE - SECOND) == []
    desk.sweep_and_send(FIRST_CALL_DUE - SECOND)
    assert surveys(desk, case) == []
    [entry] = listed(desk, case, FIRST_CALL_DUE)
    assert entry["case_number"] == case.case_number
    assert entry["call_number"] == 1
    assert entry["customer"]["phone"] == "+86 138 0013 8000"
    assert entry["customer"]["name"] == "Ann Lee"
    assert entry["language"] == "en"
    assert entry["summary"] == DESCRIPTION
    assert at(entry["due_at"]) == FIRST_CALL_DUE

    # The sweep sends the customer the satisfaction link, once.
    desk.sweep_and_send(FIRST_CALL_DUE)
    desk.sweep_and_send(FIRST_CALL_DUE + timedelta(minutes=5))
    [survey] = surveys(desk, case)
    assert survey.to == "ann.lee@example.com"
    token = token_of(case.status_url)
    link = f"https://help.example.com/status/{token}/satisfaction"
    assert link in survey.text
    assert Counter(e["template"] for e in desk.read(case)["emails"])["satisfaction_survey"] == 1

    # Opening the link (a mail scanner would) records nothing.
    before = desk.read(case)
    with desk.moment(FIRST_CALL_DUE + timedelta(hours=1)):
        opened = desk.client.http.get(path_of(link))
    assert opened.status_code == 200
    after = desk.read(case)
    assert after["case"]["version"] == before["case"]["version"]
    assert after["case"]["satisfaction"] is None
    assert after["history"] == before["history"]

    with desk.moment(FIRST_CALL_DUE + timedelta(hours=2)):
        posted = desk.client.http.post(path_of(link), headers=FORM,
                                       body=b"rating=4&comment=Quick+and+kind")
        assert posted.status_code == 303
        thanks = desk.client.http.get(
            f"/status/{token}/{posted.headers['Location']}"
        )
    assert thanks.status_code == 200
    assert "Thank you for your rating." in thanks.body.decode()
    rated = desk.read(case)
    assert rated["case"]["satisfaction"]["rating"] == 4
    assert rated["case"]["satisfaction"]["comment"] == "Quick and kind"
    assert rated["case"]["version"] == before["case"]["version"] + 1
    assert rated["history"][0]["action"] == "customer_rated"
    # Still one survey e-mail, however often the sweep runs.
    desk.sweep_and_send(FIRST_CALL_DUE + timedelta(days=1))
    assert len(surveys(desk, case)) == 1


def test_no_answer_calls_again_at_9_on_the_next_working_day_three_times_then_gives_up(
    desk: Desk,
) -> None:
    case = resolved_case(desk)
    desk.sweep_and_send(FIRST_CALL_DUE)

    # Friday 5 June, 15:00: nobody answers. Back on the list on Monday 8 June at 09:00.
    record(desk, case, sh(2026, 6, 5, 15, 0), "no_answer", note="rang 10 times")
    monday = sh(2026, 6, 8, 9, 0)
    assert listed(desk, case, sh(2026, 6, 5, 15, 1)) == []
    assert listed(desk, case, monday - SECOND) == []
    [again] = listed(desk, case, monday)
    assert (again["call_number"], again["attempts"], at(again["due_at"])) == (1, 1, monday)
    desk.sweep_and_send(monday)

    # Monday 10:00, no answer: Tuesday 09:00.
    record(desk, case, sh(2026, 6, 8, 10, 0), "no_answer")
    tuesday = sh(2026, 6, 9, 9, 0)
    assert listed(desk, case, tuesday - SECOND) == []
    [again] = listed(desk, case, tuesday)
    assert (again["call_number"], again["attempts"]) == (1, 2)
    desk.sweep_and_send(tuesday)

    # Tuesday 10:00, the third try: call 1 is given up; call 2 is due 7 days later.
    third = sh(2026, 6, 9, 10, 0)
    record(desk, case, third, "no_answer")
    first, second = calls_of(desk, case)
    assert (first["number"], first["outcome"], first["attempts"]) == (1, "no_answer", 3)
    assert (second["number"], second["outcome"]) == (2, None)
    assert at(second["due_at"]) == third + timedelta(days=7)
    # The customer was sent the satisfaction link once for call 1, not once per try.
    desk.sweep_and_send(third + timedelta(days=7) - SECOND)
    assert len(surveys(desk, case)) == 1
    assert listed(desk, case, third + timedelta(days=7) - SECOND) == []
    [next_call] = listed(desk, case, third + timedelta(days=7))
    assert (next_call["call_number"], next_call["attempts"]) == (2, 0)


def test_satisfied_on_call_1_schedules_call_2_and_satisfied_on_call_2_ends_the_calls(
    desk: Desk,
) -> None:
    case = resolved_case(desk)
    made = FIRST_CALL_DUE + timedelta(hours=1)
    record(desk, case, made, "satisfied", note="all good")

    assert listed(desk, case, made + timedelta(minutes=1)) == []
    second_due = made + timedelta(days=7)
    assert listed(desk, case, second_due - SECOND) == []
    [entry] = listed(desk, case, second_due)
    assert entry["call_number"] == 2

    record(desk, case, second_due + timedelta(hours=1), "satisfied")

    assert [c["outcome"] for c in calls_of(desk, case)] == ["satisfied", "satisfied"]
    assert listed(desk, case, second_due + timedelta(days=30)) == []
    assert [t for t in desk.read(case)["timers"] if t["kind"] == "follow_up_call"] == []
    read = desk.read(case)
    assert read["case"]["status"] == "resolved"
    assert "record_follow_up_call" not in read["available_actions"]


def test_not_satisfied_opens_the_case_again_and_takes_it_off_the_call_list(
    desk: Desk,
) -> None:
    case = resolved_case(desk)
    made = FIRST_CALL_DUE + timedelta(hours=1)
    record(desk, case, made, "not_satisfied", note="the parcel went to the old address")

    read = desk.read(case)
    assert read["case"]["status"] in ("new", "verified", "in_progress")
    assert "resolve_due_at" in read["case"] and read["case"]["resolve_due_at"] is not None
    assert listed(desk, case, made + timedelta(minutes=1)) == []
    assert listed(desk, case, made + timedelta(days=30)) == []
    assert [t for t in read["timers"] if t["kind"] == "follow_up_call"] == []


@pytest.mark.parametrize("answered", [False, True], ids=["unanswered", "answered"])
def test_a_question_from_a_call_goes_to_the_supervisors_after_2_days_unless_answered(
    desk: Desk, answered: bool
) -> None:
    case = resolved_case(desk)
    made = FIRST_CALL_DUE + timedelta(hours=1)
    record(desk, case, made, "question", question="Can I get the invoice as a PDF?")
    reported = made + timedelta(days=2)
    if answered:
        desk.do(case, reported - timedelta(hours=1), "answer_question",
                {"text": "Yes: it is attached."})

    desk.sweep_and_send(reported - SECOND)
    assert desk.received(case, QUESTION_UNANSWERED) == Counter()
    desk.sweep_and_send(reported)
    desk.sweep_and_send(reported + timedelta(days=1))

    if answered:
        assert desk.received(case, QUESTION_UNANSWERED) == Counter()
        assert desk.read(case)["case"]["open_question"] is None
        return
    # Supervisors only (the service director is not a supervisor), once.
    assert desk.received(case, QUESTION_UNANSWERED) == Counter({EMAILS[SUPERVISOR]: 1})
    [mail] = [m for m in desk.inbox()
              if m.case_id == case.case_id and QUESTION_UNANSWERED in m.subject]
    assert "Can I get the invoice as a PDF?" in mail.text


def test_a_call_not_made_in_its_window_is_reminded_to_the_owner_once(desk: Desk) -> None:
    case = resolved_case(desk)
    window_ends = FIRST_CALL_WINDOW_ENDS
    [entry] = listed(desk, case, FIRST_CALL_DUE)
    assert at(entry["window_ends_at"]) == window_ends
    desk.sweep_and_send(FIRST_CALL_DUE)

    desk.sweep_and_send(window_ends - SECOND)
    assert desk.received(case, CALL_OVERDUE) == Counter()
    desk.sweep_and_send(window_ends)
    desk.sweep_and_send(window_ends + timedelta(minutes=5))
    desk.sweep_and_send(window_ends + timedelta(days=2))

    assert desk.received(case, CALL_OVERDUE) == Counter({EMAILS[OWNER]: 1})
    [reminder] = [m for m in desk.inbox()
                  if m.case_id == case.case_id and CALL_OVERDUE in m.subject]
    assert f"第 1 {CALL_OVERDUE}" in reminder.subject
    # The call is still to be made: it stays on the list.
    assert [c["call_number"] for c in listed(desk, case, window_ends + timedelta(days=2))] == [1]


def test_a_call_due_over_national_day_is_not_reminded_while_the_office_is_closed(
    desk: Desk,
) -> None:
    # Resolved Monday 28 September 2026: the call falls due on Thursday 1 October, the
    # first day of National Day (1-7 October). Counted in calendar days, its window would
    # have ended on Monday 5 October, the office closed; it ends at the close of the third
    # working day: Thursday 8, Friday 9, Saturday 10 October (a make-up working day, 调休).
    case = resolved_case(desk, sh(2026, 9, 28, 10, 0))
    due, window_ends = sh(2026, 10, 1, 10, 0), sh(2026, 10, 10, 17, 30)
    [entry] = listed(desk, case, due)
    assert (at(entry["due_at"]), at(entry["window_ends_at"])) == (due, window_ends)

    for when in (due, sh(2026, 10, 5, 10, 0), sh(2026, 10, 7, 23, 59), sh(2026, 10, 8, 9, 0),
                 window_ends - SECOND):
        desk.sweep_and_send(when)
    assert desk.received(case, CALL_OVERDUE) == Counter()
    assert len(surveys(desk, case)) == 1  # the customer's link went out when it fell due

    desk.sweep_and_send(window_ends)
    desk.sweep_and_send(window_ends + timedelta(minutes=5))
    desk.sweep_and_send(sh(2026, 10, 12, 10, 0))
    assert desk.received(case, CALL_OVERDUE) == Counter({EMAILS[OWNER]: 1})


def test_the_tries_of_a_call_share_its_window_and_end_with_it(desk: Desk) -> None:
    case = resolved_case(desk)
    desk.sweep_and_send(FIRST_CALL_DUE)

    # Monday 8 June 16:00, no answer: again on Tuesday at 09:00, still by Tuesday's close.
    record(desk, case, sh(2026, 6, 8, 16, 0), "no_answer")
    tuesday = sh(2026, 6, 9, 9, 0)
    [again] = listed(desk, case, tuesday)
    assert (again["attempts"], at(again["due_at"])) == (1, tuesday)
    assert at(again["window_ends_at"]) == FIRST_CALL_WINDOW_ENDS
    desk.sweep_and_send(tuesday)

    # Tuesday 11:00, no answer: Wednesday is after the window, so call 1 ends unanswered
    # after 2 tries, and call 2 is due 7 days later.
    record(desk, case, sh(2026, 6, 9, 11, 0), "no_answer")
    first, second = calls_of(desk, case)
    assert (first["outcome"], first["attempts"]) == ("no_answer", 2)
    assert (second["number"], at(second["due_at"])) == (2, sh(2026, 6, 16, 11, 0))
    # Its window: Wednesday 17, Thursday 18 and, past the Dragon Boat Festival (Friday
    # 19 June), Monday 22 June.
    assert at(second["window_ends_at"]) == sh(2026, 6, 22, 17, 30)
    # A call tried in its window is not reminded to the owner as one not made.
    desk.sweep_and_send(FIRST_CALL_WINDOW_ENDS)
    desk.sweep_and_send(sh(2026, 6, 11, 10, 0))
    assert desk.received(case, CALL_OVERDUE) == Counter()
    assert listed(desk, case, sh(2026, 6, 11, 10, 0)) == []


def workshop_repair_collected(desk: Desk, collected_at: datetime) -> Opened:
    """A laptop repaired in the shop and collected by its owner at ``collected_at``; its
    repair (quoted 300.00) not yet settled."""
    start = collected_at - timedelta(days=3)
    with desk.moment(start):
        response = call(desk.client, "post", "/api/staff/cases", desk.tokens[OWNER], {
            "kind": "workshop_repair", "product": "ThinkPad X1 Carbon",
            "description": "Does not switch on.", "language": "en",
            "customer": {"name": "Ann Lee", "email": "ann.lee@example.com",
                         "phone": "+86 138 0013 8000"},
        })
    assert response.status_code == 201, response.body
    receipt = body(response)
    case = Opened(receipt["case_id"], receipt["case_number"], receipt["status_url"])
    steps: list[tuple[str, str, dict[str, Any] | None]] = [
        (OWNER, "assign_owner", {"owner": OWNER}),
        (OWNER, "receive_device", {"visible_damage": "none", "signed_by": "Ann Lee"}),
        (SUPERVISOR, "quote_repair", {"amount": "300", "description": "Power board."}),
        (OWNER, "quote_approved", None),
        (SUPERVISOR, "repair_in_house", {"text": "Power board replaced."}),
        (SUPERVISOR, "full_check", {"passed": True, "note": "all checks passed"}),
        (OWNER, "ready_for_pickup", None),
    ]
    for n, (staff_id, action, params) in enumerate(steps):
        desk.do(case, start + timedelta(minutes=n + 1), action, params, staff_id=staff_id)
    desk.do(case, collected_at, "device_collected", {"signed_by": "Ann Lee"})
    return case


@pytest.mark.parametrize("settled_days_later", [1, 8], ids=["settled_next_day",
                                                             "settled_a_week_later"])
def test_a_workshop_repair_is_followed_up_from_when_the_device_was_collected(
    desk: Desk, settled_days_later: int
) -> None:
    collected = sh(2026, 6, 1, 10, 0)  # Monday
    case = workshop_repair_collected(desk, collected)
    resolved_at = collected + timedelta(days=settled_days_later, hours=1)
    desk.do(case, resolved_at - timedelta(minutes=1), "settle_repair",
            {"amount": "300.00", "reference": "POS-1"})
    desk.do(case, resolved_at, "resolve")

    # 3 days after the customer took the device home (Thursday 4 June 10:00), not after
    # the resolution; a repair settled later than that is called from its resolution.
    due = max(sh(2026, 6, 4, 10, 0), resolved_at)
    if due > resolved_at:
        assert listed(desk, case, due - SECOND) == []
    [entry] = listed(desk, case, due)
    assert at(entry["due_at"]) == due
    desk.sweep_and_send(due)
    assert len(surveys(desk, case)) == 1


def test_the_call_list_holds_every_call_due_however_many_pages_it_takes(desk: Desk) -> None:
    cases = [resolved_case(desk, RESOLVED_AT + timedelta(minutes=5 * n), order_ref=f"SO-{n}")
             for n in range(5)]
    now = FIRST_CALL_DUE + timedelta(hours=1)
    store = bootstrap.case_store()

    with desk.moment(now):
        paged = store.follow_up_calls(now, page_size=2)

    assert [c["case_id"] for c in paged] == [case.case_id for case in cases]
    assert paged == call_list(desk, now)


def test_the_satisfaction_link_is_right_even_when_the_timers_copy_of_the_case_lacks_it(
    desk: Desk,
) -> None:
    case = resolved_case(desk)
    # The call's timer carries the case without its status link (as a copy made before
    # the case had one would): the sweep reads the case for the link instead.
    store = bootstrap.case_store()
    store.client.update_item(
        TableName=store.table_name,
        Key={"PK": {"S": f"CASE#{case.case_id}"}, "SK": {"S": "TIMER#follow_up_call_1"}},
        UpdateExpression="REMOVE case_snapshot.status_token",
    )

    swept = desk.sweep_and_send(FIRST_CALL_DUE)

    assert swept.cases_read == 1 and swept.stale_snapshots == 0
    [survey] = surveys(desk, case)
    token = token_of(case.status_url)
    assert f"https://help.example.com/status/{token}/satisfaction" in survey.text


def test_a_call_recorded_before_it_is_due_is_refused_and_changes_nothing(desk: Desk) -> None:
    case = resolved_case(desk)
    before = desk.read(case)

    response = desk.act(case, FIRST_CALL_DUE - timedelta(hours=1), "record_follow_up_call",
                        {"outcome": "satisfied"})

    assert response.status_code == 422, response.body
    # When to call, as the agent reads the clock on the wall.
    assert body(response)["errors"][0]["message"] == (
        "the follow-up call is not due yet: record it from Thursday 2026-06-04 10:02 "
        "(Asia/Shanghai)"
    )
    after = desk.read(case)
    assert after["case"] == before["case"]
    assert after["history"] == before["history"]
    assert after["timers"] == before["timers"]
    assert listed(desk, case, FIRST_CALL_DUE) != []


def test_an_oversized_rating_is_refused_with_413(client: Any) -> None:
    response = client.http.post(
        "/status/anything/satisfaction",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        body=b"rating=5&comment=" + b"x" * (70 * 1024),
    )
    assert response.status_code == 413
