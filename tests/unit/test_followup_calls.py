"""Follow-up calls (回访) on the working-day calendar: when a call falls due, how long the
agents have to make it, and what a call nobody answers does (processes.md, "After every
case"). Pure domain: time is an argument; the CN calendar of 2026 (Labour Day 1-5 May,
Saturday 9 May worked; National Day 1-7 October, Sunday 20 September and Saturday
10 October worked; Dragon Boat Festival Friday 19 June)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from chalicelib.domain.case import Case, CaseKind, CaseStatus, Channel, Customer, Language
from chalicelib.domain.followup import FollowUpCall
from chalicelib.domain.lifecycle import ActionRefused, PolicyPromises, apply_action
from chalicelib.domain.policies import Policies
from chalicelib.domain.projects import WorkshopIntake, WorkshopJob, WorkshopStage
from chalicelib.domain.staff import Role, StaffMember

SHANGHAI = ZoneInfo("Asia/Shanghai")
POLICIES = Policies()
PROMISES = PolicyPromises(POLICIES)
CALENDAR = POLICIES.calendar_for()
ANN = StaffMember(staff_id="ann", name="Ann", role=Role.AGENT)


def sh(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=SHANGHAI)


def new_case(kind: CaseKind, at: datetime, **fields: Any) -> Case:
    return Case(
        case_id="c-1", case_number="AS000001", kind=kind, status=CaseStatus.NEW,
        customer=Customer(name="Wang Fang", email="wang.fang@example.com"),
        order_ref="SO-1042", description="Please change the address.",
        language=Language.EN, channel=Channel.WEB_FORM, created_at=at, updated_at=at,
        version=1, **fields,
    )


def act(case: Case, action: str, at: datetime, **params: Any) -> Case:
    return apply_action(case, action, params, actor=ANN, now=at, promises=PROMISES).case


def resolved(at: datetime) -> Case:
    """An address change, resolved at ``at``."""
    case = new_case(CaseKind.ORDER_CHANGE, at - timedelta(minutes=2))
    return act(case, "change_address", at, address="1 Office Park")


def pending(case: Case) -> FollowUpCall:
    assert case.follow_up is not None and case.follow_up.pending_call is not None
    return case.follow_up.pending_call


# -- when a call falls due and when its window ends -------------------------------------------


def test_a_call_due_on_national_day_can_be_made_until_the_third_working_day_after_it() -> None:
    # Resolved Monday 28 September: due Thursday 1 October, the first day of the holiday.
    # In calendar days its window would end on Monday 5 October, with the office closed.
    due, window_ends = PROMISES.first_call(sh(9, 28, 10), sh(9, 28, 10))

    assert due == sh(10, 1, 10)
    # Thursday 8, Friday 9 and Saturday 10 October (调休), at the close.
    assert window_ends == sh(10, 10, 17, 30)


def test_every_window_of_2026_ends_at_a_close_three_working_days_after_its_due_day() -> None:
    for day in (date(2026, 1, 1) + timedelta(days=n) for n in range(365)):
        resolved_at = datetime.combine(day, time(10), tzinfo=SHANGHAI)

        due, window_ends = PROMISES.first_call(resolved_at, resolved_at)

        local_end = window_ends.astimezone(SHANGHAI)
        assert CALENDAR.is_working_day(local_end.date()), day
        assert local_end.time() == time(17, 30), day
        due_day = due.astimezone(SHANGHAI).date()
        working_days_after = [
            d for d in (due_day + timedelta(days=n) for n in range(1, 40))
            if d <= local_end.date() and CALENDAR.is_working_day(d)
        ]
        assert len(working_days_after) == 3, day


def test_the_first_call_counts_from_the_hand_back_but_is_never_due_before_the_resolution(
) -> None:
    collected, settled = sh(6, 1, 10), sh(6, 2, 15)
    assert PROMISES.first_call(collected, settled)[0] == sh(6, 4, 10)
    # Settled (and resolved) a week after the customer took the device home: call now.
    late = sh(6, 8, 11)
    due, window_ends = PROMISES.first_call(collected, late)
    assert due == late
    assert window_ends == sh(6, 11, 17, 30)  # Tuesday, Wednesday, Thursday


def collected_device(collected_at: datetime) -> Case:
    """A workshop repair whose device the customer collected at ``collected_at``."""
    intake = WorkshopIntake(accessories=(), visible_damage="none", signed_by="Wang Fang",
                            received_by="staff:ann", received_at=sh(5, 25, 10))
    job = WorkshopJob(stage=WorkshopStage.COLLECTED, intake=intake,
                      collected_by="Wang Fang", collected_at=collected_at)
    return new_case(CaseKind.WORKSHOP_REPAIR, sh(5, 25, 9)).model_copy(
        update={"status": CaseStatus.IN_PROGRESS, "workshop": job}
    )


def test_a_workshop_repair_s_first_call_counts_from_the_device_collected() -> None:
    case = act(collected_device(sh(6, 1, 10)), "resolve", sh(6, 2, 16))

    assert pending(case).due_at == sh(6, 4, 10)


def test_a_workshop_repair_reopened_by_a_call_can_be_resolved_again() -> None:
    case = act(collected_device(sh(6, 1, 10)), "resolve", sh(6, 2, 16))
    case = act(case, "record_follow_up_call", sh(6, 4, 11), outcome="not_satisfied")
    assert case.status is CaseStatus.IN_PROGRESS  # back to work, not to 'new'

    case = act(case, "resolve", sh(6, 10, 16))

    # The calls then count from the new resolution, not from the old hand-back.
    assert pending(case).due_at == sh(6, 13, 16)


# -- the tries of a call share its window ---------------------------------------------------


def test_a_call_nobody_answers_is_tried_again_inside_its_window_then_ends() -> None:
    case = resolved(sh(6, 1, 10, 2))
    first = pending(case)
    assert (first.due_at, first.window_ends_at) == (sh(6, 4, 10, 2), sh(6, 9, 17, 30))

    # Monday 8 June: no answer; again Tuesday at the opening, in the same window.
    case = act(case, "record_follow_up_call", sh(6, 8, 16), outcome="no_answer")
    again = pending(case)
    assert (again.number, again.attempts) == (1, 1)
    assert (again.due_at, again.window_ends_at) == (sh(6, 9, 9), sh(6, 9, 17, 30))

    # Tuesday: no answer again. Wednesday is after the window: the call ends unanswered
    # (2 tries of 3) and the second call is due 7 days later.
    case = act(case, "record_follow_up_call", sh(6, 9, 11), outcome="no_answer")
    assert case.follow_up is not None
    ended, second = case.follow_up.calls
    assert (ended.outcome, ended.attempts, ended.recorded_at) == ("no_answer", 2, sh(6, 9, 11))
    assert (second.number, second.due_at) == (2, sh(6, 16, 11))
    # Its window: Wednesday 17, Thursday 18 and (Friday 19 is the Dragon Boat Festival)
    # Monday 22 June.
    assert second.window_ends_at == sh(6, 22, 17, 30)


def test_a_call_made_after_its_window_with_no_answer_is_not_tried_again() -> None:
    case = resolved(sh(6, 1, 10, 2))

    case = act(case, "record_follow_up_call", sh(6, 10, 9), outcome="no_answer")

    assert case.follow_up is not None
    assert [(c.number, c.outcome, c.attempts) for c in case.follow_up.calls] == [
        (1, "no_answer", 1), (2, None, 0)
    ]


def test_no_answer_over_labour_day_is_tried_again_on_the_first_working_day() -> None:
    # Resolved Monday 27 April: due Thursday 30 April; the window is Wednesday 6,
    # Thursday 7 and Friday 8 May.
    case = resolved(sh(4, 27, 10))
    assert pending(case).window_ends_at == sh(5, 8, 17, 30)

    case = act(case, "record_follow_up_call", sh(4, 30, 16), outcome="no_answer")

    assert pending(case).due_at == sh(5, 6, 9)


# -- a call recorded too early --------------------------------------------------------------


def test_a_call_recorded_before_it_is_due_names_the_local_due_time() -> None:
    case = resolved(sh(6, 1, 10, 2))

    with pytest.raises(ActionRefused) as refused:
        act(case, "record_follow_up_call", sh(6, 4, 9), outcome="satisfied")

    assert refused.value.reason == (
        "the follow-up call is not due yet: record it from Thursday 2026-06-04 10:02 "
        "(Asia/Shanghai)"
    )
