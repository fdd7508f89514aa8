"""The project kinds (processes.md, "Installation projects" [002] and "Workshop repair"
[004]) through `apply_action`: every step, what is refused and why, who may do what, and
the deadlines the records hold. Pure domain: time is an argument, no AWS, no app."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import event as note_event
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from chalicelib.domain.case import Case, CaseKind, CaseStatus, Language
from chalicelib.domain.lifecycle import (
    ActionRefused,
    apply_action,
    available_actions,
    unfinished_work,
)
from chalicelib.domain.messages import CASE_MESSAGES, message_text
from chalicelib.domain.project_actions import (
    PREREQUISITES,
    PROJECT_ACTIONS,
    TICKED_BY,
    project_work_left,
)
from chalicelib.domain.projects import MILESTONE_LABELS, Milestone, WorkshopStage
from chalicelib.domain.staff import Role, StaffMember
from chalicelib.domain.staff_messages import TIMER_LABELS
from chalicelib.domain.timers import DEADLINES, TimerKind, timers_for
from tests.unit.test_lifecycle import PROMISES, Walk, fields, new_case

K = CaseKind
S = CaseStatus
M = Milestone
W = WorkshopStage
SHANGHAI = ZoneInfo("Asia/Shanghai")
# Monday 1 June 2026, 10:00 in Shanghai.
MONDAY = datetime(2026, 6, 1, 10, 0, tzinfo=SHANGHAI)

ANN = StaffMember(staff_id="ann", name="Ann", role=Role.AGENT)
SUE = StaffMember(staff_id="sue", name="Sue", role=Role.SUPERVISOR)
DAN = StaffMember(staff_id="dan", name="Dan", role=Role.SERVICE_DIRECTOR)
FAY = StaffMember(staff_id="fay", name="Fay", role=Role.FINANCE)
TIM = StaffMember(staff_id="tim", name="Tim", role=Role.TECHNICIAN)
LEO = StaffMember(staff_id="leo", name="Leo", role=Role.LOGISTICS)
QIAN = StaffMember(staff_id="qian", name="Qian", role=Role.QA_MANAGER)

# Who ticks each milestone in the walks below (anyone TICKED_BY allows would do).
TICKER = {
    M.PREPAYMENT_RECEIVED: FAY,
    M.FINAL_SETTLEMENT: FAY,
    M.SITE_MEASURED: TIM,
    M.DRAWINGS_APPROVED: TIM,
    M.DELIVERY_NOTE_CHECKED: LEO,
    M.ON_SITE: TIM,
    M.GOODS_ACCEPTED: TIM,
    M.INSTALLATION_SUPERVISED: TIM,
    M.PROJECT_ACCEPTED: TIM,
}


def project(start: datetime = MONDAY) -> Walk:
    return Walk(K.INSTALLATION_PROJECT, start)


def tick(walk: Walk, milestone: Milestone, **params: Any) -> None:
    walk.do("tick_milestone", {"milestone": milestone.value, **params},
            by=TICKER.get(milestone, ANN), status=S.IN_PROGRESS, told=[])


def ticked(walk: Walk, *milestones: Milestone) -> Walk:
    for milestone in milestones:
        tick(walk, milestone)
    return walk


def done_on(case: Case, milestone: Milestone) -> date | None:
    assert case.installation is not None
    done = case.installation.record(milestone).done
    return done.done_on if done else None


# -- installation projects: the checklist ---------------------------------------------------


def test_the_checklist_is_the_15_milestones_of_the_seed_in_order_with_both_labels() -> None:
    assert [m.value for m in Milestone] == [
        "contract_filed", "contract_read", "site_measured", "prepayment_received",
        "production_progress", "drawings_approved", "delivery_note_checked",
        "shipment_confirmed", "on_site", "goods_accepted", "installation_supervised",
        "project_accepted", "final_settlement", "user_details_confirmed", "feedback_form",
    ]
    for language in Language:
        labels = MILESTONE_LABELS[language]
        assert set(labels) == set(Milestone)
        assert all(label.strip() for label in labels.values())
        assert len(set(labels.values())) == len(Milestone)
    assert MILESTONE_LABELS[Language.ZH][M.PROJECT_ACCEPTED] == "工程验收"
    assert set(TICKED_BY) == set(Milestone)


def test_a_project_is_ticked_through_all_15_milestones_and_resolved() -> None:
    walk = project()
    assert walk.case.installation is None and walk.case.status is S.NEW
    assert project_work_left(walk.case) == [f"the milestone {m.value}" for m in Milestone]
    assert "tick_milestone" in available_actions(walk.case, ANN)
    assert "untick_milestone" not in available_actions(walk.case, SUE)  # nothing ticked

    first = walk.do("tick_milestone", {"milestone": "contract_filed", "note": "copy in binder 7"},
                    status=S.IN_PROGRESS, told=[])
    # The first tick starts the project: the whole checklist, one line ticked.
    assert first.event.before is not None
    assert first.event.before["status"] == "new" and first.event.before["installation"] is None
    assert first.event.details == {
        "milestone": "contract_filed", "note": "copy in binder 7", "done_on": None,
    }
    project_ = walk.case.installation
    assert project_ is not None and len(project_.milestones) == 15
    record = project_.record(M.CONTRACT_FILED)
    assert record.done is not None
    assert (record.done.done_on, record.done.by, record.done.at, record.done.note) == (
        date(2026, 6, 1), "staff:ann", walk.now, "copy in binder 7",
    )
    walk.refuse("resolve")

    for milestone in list(Milestone)[1:]:
        tick(walk, milestone)
        assert milestone.value not in " ".join(project_work_left(walk.case))

    assert project_work_left(walk.case) == [] and unfinished_work(walk.case) == []
    assert "tick_milestone" not in available_actions(walk.case, ANN)
    walk.do("resolve", status=S.RESOLVED, told=["resolved"])
    money = [e.actor for e in walk.events
             if (e.details or {}).get("milestone") in ("prepayment_received", "final_settlement")]
    assert money == ["staff:fay", "staff:fay"]


def test_resolving_names_the_milestones_left() -> None:
    walk = ticked(project(), M.CONTRACT_FILED, M.CONTRACT_READ)
    refusal = walk.refuse("resolve")
    assert refusal.reason.startswith("not yet resolved: still open is the milestone site_measured")
    assert "the milestone feedback_form" in refusal.reason
    assert "contract_read" not in refusal.reason


@pytest.mark.parametrize(
    ("milestone", "may", "may_not"),
    [
        (M.CONTRACT_FILED, [ANN, SUE, DAN], [TIM, FAY, LEO, QIAN]),
        (M.SITE_MEASURED, [ANN, TIM], [FAY, LEO]),
        (M.PREPAYMENT_RECEIVED, [FAY], [ANN, SUE, DAN, TIM]),
        (M.FINAL_SETTLEMENT, [FAY], [ANN, SUE, DAN, TIM]),
        (M.DELIVERY_NOTE_CHECKED, [ANN, LEO], [TIM, FAY]),
        (M.ON_SITE, [ANN, TIM, LEO], [FAY]),
    ],
)
def test_who_ticks_which_milestone(
    milestone: Milestone, may: list[StaffMember], may_not: list[StaffMember]
) -> None:
    # Everything this milestone waits for is done, so only the role decides.
    def waits_for(m: Milestone) -> set[Milestone]:
        return {m} | {w for before in PREREQUISITES.get(m, ()) for w in waits_for(before)}

    walk = ticked(project(), *sorted(waits_for(milestone) - {milestone},
                                     key=list(Milestone).index))
    for someone in may:
        change = apply_action(walk.case, "tick_milestone", {"milestone": milestone.value},
                              actor=someone, now=walk.now, promises=PROMISES)
        assert change.case.installation is not None
        assert change.case.installation.record(milestone).done is not None
    for someone in may_not:
        refusal = walk.refuse("tick_milestone", {"milestone": milestone.value}, by=someone)
        assert refusal.code == "role"
        assert refusal.reason.startswith(f"a {someone.role.value} may not tick ")


def test_a_qa_manager_takes_no_project_step() -> None:
    assert available_actions(project().case, QIAN) == ["add_note"]


def test_milestones_are_ticked_in_any_order_but_the_steps_that_wait_for_others() -> None:
    # The customer's details and feedback, production followed before anything else.
    walk = ticked(project(), M.USER_DETAILS_CONFIRMED, M.PRODUCTION_PROGRESS, M.FEEDBACK_FORM)
    assert walk.case.status is S.IN_PROGRESS

    refusal = walk.refuse("tick_milestone", {"milestone": "final_settlement"}, by=FAY)
    assert refusal.reason == (
        "'final settlement and payment' comes after 'project accepted': tick that first"
    )
    refusal = walk.refuse("tick_milestone", {"milestone": "shipment_confirmed"})
    assert "comes after 'factory delivery note checked'" in refusal.reason
    ticked(walk, M.DELIVERY_NOTE_CHECKED, M.SHIPMENT_CONFIRMED, M.ON_SITE, M.GOODS_ACCEPTED)
    refusal = walk.refuse("tick_milestone", {"milestone": "installation_supervised"}, by=TIM)
    assert refusal.reason == (
        "'installation supervised' comes after 'installation drawings approved': "
        "tick that first"
    )


def test_a_step_is_not_dated_before_the_step_it_waits_for() -> None:
    walk = project()
    tick(walk, M.DELIVERY_NOTE_CHECKED, done_on="2026-05-28")
    refusal = walk.refuse("tick_milestone",
                          {"milestone": "shipment_confirmed", "done_on": "2026-05-27"})
    assert fields(refusal) == {"params.done_on"}
    assert "cannot be done before 'factory delivery note checked' (done on 2026-05-28)" in (
        refusal.reason
    )
    tick(walk, M.SHIPMENT_CONFIRMED, done_on="2026-05-28")  # the same day is fine
    assert done_on(walk.case, M.SHIPMENT_CONFIRMED) == date(2026, 5, 28)


def test_the_day_done_is_the_company_s_today_and_never_a_day_to_come() -> None:
    # 07:00 on Tuesday in Shanghai is still Monday in UTC: the tick is dated Tuesday.
    walk = project(datetime(2026, 6, 2, 7, 0, tzinfo=SHANGHAI) - timedelta(hours=1))
    assert walk.now.astimezone(UTC).date() == date(2026, 6, 1)
    tick(walk, M.CONTRACT_FILED)
    assert done_on(walk.case, M.CONTRACT_FILED) == date(2026, 6, 2)
    refusal = walk.refuse("tick_milestone", {"milestone": "contract_read",
                                             "done_on": "2026-06-03"})
    assert fields(refusal) == {"params.done_on"}
    assert refusal.errors[0]["message"] == "cannot be in the future"
    tick(walk, M.CONTRACT_READ, done_on="2026-05-20")  # recorded late: an earlier day
    assert done_on(walk.case, M.CONTRACT_READ) == date(2026, 5, 20)


def test_a_milestone_is_ticked_once_and_a_mistake_unticked_by_a_supervisor() -> None:
    walk = ticked(project(), M.CONTRACT_FILED)
    refusal = walk.refuse("tick_milestone", {"milestone": "contract_filed"})
    assert refusal.reason == (
        "'contract and hand-over sheet filed' was already ticked (done on 2026-06-01); "
        "a supervisor unticks a mistake"
    )
    assert walk.refuse("untick_milestone", {"milestone": "contract_filed", "reason": "x"},
                       by=ANN).code == "role"
    assert walk.refuse("untick_milestone", {"milestone": "contract_filed"},
                       by=SUE).errors == [{"field": "params.reason", "message": "Field required"}]
    refusal = walk.refuse("untick_milestone", {"milestone": "contract_read", "reason": "x"},
                          by=SUE)
    assert refusal.reason == "'contract read' is not ticked"

    change = walk.do("untick_milestone",
                     {"milestone": "contract_filed", "reason": "ticked the wrong project"},
                     by=DAN, status=S.IN_PROGRESS)
    # The history keeps what was undone, and why.
    assert change.event.before is not None and change.event.after is not None
    was = change.event.before["installation"]["milestones"][0]
    assert was["milestone"] == "contract_filed" and was["done"]["by"] == "staff:ann"
    assert change.event.after["installation"]["milestones"][0]["done"] is None
    assert change.event.details == {"milestone": "contract_filed",
                                    "reason": "ticked the wrong project"}
    assert done_on(walk.case, M.CONTRACT_FILED) is None
    assert "the milestone contract_filed" in project_work_left(walk.case)
    tick(walk, M.CONTRACT_FILED)  # ticked again, rightly


def test_a_step_others_wait_for_is_unticked_after_them() -> None:
    walk = ticked(project(), M.DELIVERY_NOTE_CHECKED, M.SHIPMENT_CONFIRMED)
    refusal = walk.refuse("untick_milestone",
                          {"milestone": "delivery_note_checked", "reason": "wrong note"}, by=SUE)
    assert refusal.reason == (
        "'shipment confirmed with the customer' came after 'factory delivery note checked': "
        "untick that first"
    )
    walk.do("untick_milestone", {"milestone": "shipment_confirmed", "reason": "too early"},
            by=SUE)
    walk.do("untick_milestone", {"milestone": "delivery_note_checked", "reason": "wrong note"},
            by=SUE)
    assert walk.case.installation is not None
    assert walk.case.installation.left == tuple(Milestone)


def test_an_unknown_milestone_is_a_parameter_error() -> None:
    refusal = project().refuse("tick_milestone", {"milestone": "party_time"})
    assert fields(refusal) == {"params.milestone"}


# -- installation projects: planned dates -----------------------------------------------------


def test_a_planned_milestone_is_due_when_its_day_ends_and_kept_by_its_tick() -> None:
    walk = project()
    change = walk.do("plan_milestone", {"milestone": "site_measured", "due_on": "2026-06-05"},
                     status=S.NEW)  # planning starts no work
    assert change.event.details == {"milestone": "site_measured", "due_on": "2026-06-05"}
    assert walk.case.installation is not None
    record = walk.case.installation.record(M.SITE_MEASURED)
    # Midnight at the end of Friday 5 June in Shanghai.
    end_of_friday = datetime(2026, 6, 6, 0, 0, tzinfo=SHANGHAI)
    assert (record.due_on, record.due_at) == (date(2026, 6, 5), end_of_friday)
    timer = timers_for(walk.case)["milestone_site_measured"]
    assert (timer.kind, timer.due_at) == (TimerKind.MILESTONE, end_of_friday)

    # Planned again: the timer moves; another plan is a timer of its own.
    walk.do("plan_milestone", {"milestone": "site_measured", "due_on": "2026-06-08"})
    walk.do("plan_milestone", {"milestone": "contract_read", "due_on": "2026-06-02"})
    timers = timers_for(walk.case)
    assert timers["milestone_site_measured"].due_at == datetime(2026, 6, 9, tzinfo=SHANGHAI)
    assert timers["milestone_contract_read"].due_at == datetime(2026, 6, 3, tzinfo=SHANGHAI)

    tick(walk, M.SITE_MEASURED)
    assert "milestone_site_measured" not in timers_for(walk.case)
    assert "milestone_contract_read" in timers_for(walk.case)
    # A cancelled project owes nothing.
    walk.do("cancel", {"text": "contract withdrawn"}, status=S.CANCELLED)
    assert not [n for n in timers_for(walk.case) if n.startswith("milestone")]


def test_a_plan_is_for_a_day_to_come_and_a_milestone_not_yet_done() -> None:
    walk = project()
    refusal = walk.refuse("plan_milestone", {"milestone": "contract_read",
                                             "due_on": "2026-05-31"})
    assert fields(refusal) == {"params.due_on"}
    walk.do("plan_milestone", {"milestone": "contract_read", "due_on": "2026-06-01"})  # today
    tick(walk, M.CONTRACT_READ)
    refusal = walk.refuse("plan_milestone", {"milestone": "contract_read",
                                             "due_on": "2026-06-09"})
    assert refusal.reason == "'contract read' was done on 2026-06-01"
    assert walk.refuse("plan_milestone", {"milestone": "on_site", "due_on": "2026-07-01"},
                       by=TIM).code == "role"


def test_the_project_timer_kinds_are_deadlines_with_labels_in_both_languages() -> None:
    assert {TimerKind.MILESTONE, TimerKind.MANUFACTURER_RETURN} <= DEADLINES
    for language in Language:
        assert TIMER_LABELS[language][TimerKind.MILESTONE]
        assert TIMER_LABELS[language][TimerKind.MANUFACTURER_RETURN]


# -- workshop repairs ---------------------------------------------------------------------

INTAKE = {
    "accessories": ["charger", "laptop bag"],
    "visible_damage": "scratch on the lid, left hinge loose",
    "signed_by": "Wang Fang",
}
QUOTE = {"amount": "680.00", "description": "The mainboard's power circuit failed."}
DUE_BACK = datetime(2026, 6, 10, 18, 0, tzinfo=SHANGHAI)


def workshop(start: datetime = MONDAY) -> Walk:
    return Walk(K.WORKSHOP_REPAIR, start)


def stage(walk: Walk) -> WorkshopStage:
    assert walk.case.workshop is not None
    return walk.case.workshop.stage


def quoted(amount: str = "680.00") -> Walk:
    walk = workshop()
    walk.do("receive_device", INTAKE, status=S.IN_PROGRESS, told=[])
    walk.do("quote_repair", {**QUOTE, "amount": amount}, by=TIM, told=["workshop_quote"])
    return walk


def offered(walk: Walk, someone: StaffMember = ANN) -> list[str]:
    """The workshop steps this person may take now (the general actions left out)."""
    ours = {a.name for a in PROJECT_ACTIONS}
    return [name for name in available_actions(walk.case, someone) if name in ours]


def test_a_device_is_received_quoted_sent_out_checked_twice_collected_and_settled() -> None:
    walk = workshop()
    assert project_work_left(walk.case) == ["receiving the device"]
    assert offered(walk) == ["receive_device"]

    walk.do("receive_device", INTAKE, status=S.IN_PROGRESS, told=[])
    job = walk.case.workshop
    assert job is not None and job.stage is W.RECEIVED
    assert job.intake.accessories == ("charger", "laptop bag")
    assert job.intake.visible_damage == "scratch on the lid, left hinge loose"
    assert (job.intake.signed_by, job.intake.received_by) == ("Wang Fang", "staff:ann")
    assert offered(walk, TIM) == ["quote_repair"]

    change = walk.do("quote_repair", QUOTE, by=TIM, told=["workshop_quote"])
    assert change.messages[0].values == {
        "amount": "680.00", "description": "The mainboard's power circuit failed.",
    }
    assert walk.case.first_replied_at == walk.now  # the quote is the first word to them
    assert offered(walk) == ["quote_approved", "quote_declined"]
    walk.do("quote_approved", {"note": "on the phone"})
    assert walk.case.workshop is not None and walk.case.workshop.quote is not None
    assert walk.case.workshop.quote.approved is True
    assert offered(walk, TIM) == ["repair_in_house", "send_to_manufacturer"]

    walk.do("send_to_manufacturer", {"manufacturer": "Lenovo repair station",
                                     "due_at": DUE_BACK.isoformat(), "reference": "RMA-88"},
            by=LEO)
    assert stage(walk) is W.AT_MANUFACTURER
    # Staff ask how it is going 12 hours before it is due back.
    timer = timers_for(walk.case)["manufacturer_return"]
    assert (timer.kind, timer.due_at) == (TimerKind.MANUFACTURER_RETURN,
                                          DUE_BACK - timedelta(hours=12))
    walk.do("check_manufacturer_progress", {"note": "on schedule"}, by=LEO,
            at=DUE_BACK - timedelta(hours=11))
    assert "manufacturer_return" not in timers_for(walk.case)
    walk.do("back_from_manufacturer", {"note": "mainboard replaced"}, by=LEO,
            at=DUE_BACK - timedelta(hours=2))
    assert stage(walk) is W.REPAIRED
    assert walk.case.workshop is not None and walk.case.workshop.manufacturer is not None
    assert walk.case.workshop.manufacturer.return_note == "mainboard replaced"

    # The full check fails: back to repair, this time in house.
    walk.do("full_check", {"passed": False, "note": "Wi-Fi drops"}, by=TIM)
    assert stage(walk) is W.APPROVED
    walk.do("repair_in_house", {"text": "Wi-Fi antenna cable reseated"}, by=TIM)
    walk.do("full_check", {"passed": True, "note": "39 checks passed"}, by=TIM)
    assert stage(walk) is W.CHECKED
    assert walk.case.workshop is not None
    assert [c.passed for c in walk.case.workshop.checks] == [False, True]

    change = walk.do("ready_for_pickup", told=["workshop_ready_for_pickup"])
    assert change.messages[0].values == {"amount": "680.00"}
    assert change.event.visible_to_customer
    assert offered(walk) == ["device_collected", "settle_repair"]
    walk.do("device_collected", {"signed_by": "Wang Fang"})
    assert project_work_left(walk.case) == ["the settlement"]
    refusal = walk.refuse("resolve")
    assert refusal.reason == "not yet resolved: still open is the settlement"
    walk.do("settle_repair", {"amount": "680.00", "reference": "POS-2026-0611"}, by=FAY)
    assert walk.case.workshop is not None and walk.case.workshop.settlement is not None
    assert walk.case.workshop.settlement.amount == Decimal("680.00")
    assert project_work_left(walk.case) == []
    walk.do("resolve", status=S.RESOLVED, told=["resolved"])


def test_a_declined_quote_returns_the_device_unrepaired_without_a_settlement() -> None:
    walk = quoted()
    walk.do("quote_declined", {"note": "too expensive"})
    assert stage(walk) is W.DECLINED
    assert offered(walk, TIM) == ["ready_for_pickup"]
    assert project_work_left(walk.case) == ["the device (at: declined)"]
    walk.do("ready_for_pickup", told=["workshop_return_unrepaired"])
    walk.do("device_collected", {"signed_by": "Wang Fang"})
    assert project_work_left(walk.case) == []
    walk.do("resolve", status=S.RESOLVED)


def test_a_free_repair_needs_no_settlement() -> None:
    walk = quoted("0")
    walk.do("quote_approved")
    walk.do("repair_in_house", {"text": "loose cable"}, by=TIM)
    walk.do("full_check", {"passed": True, "note": "fine"}, by=TIM)
    walk.do("ready_for_pickup")
    walk.do("device_collected", {"signed_by": "Wang Fang"})
    assert project_work_left(walk.case) == []


def test_a_new_quote_replaces_one_not_yet_answered() -> None:
    walk = quoted()
    walk.do("quote_repair", {"amount": "450", "description": "Only the charger port."},
            by=SUE, told=["workshop_quote"])
    assert walk.case.workshop is not None and walk.case.workshop.quote is not None
    assert walk.case.workshop.quote.amount == Decimal(450)


@pytest.mark.parametrize(
    ("action", "params", "reason"),
    [
        ("quote_repair", QUOTE,
         "quoting is not possible before the device is received"),
        ("ready_for_pickup", None,
         "calling the customer to collect is not possible before the device is received"),
        ("settle_repair", {"amount": "1", "reference": "x"},
         "settling the repair is not possible before the device is received"),
    ],
)
def test_nothing_happens_to_a_device_not_received(
    action: str, params: dict[str, Any] | None, reason: str
) -> None:
    assert workshop().refuse(action, params, by=SUE).reason == reason


def test_steps_out_of_order_are_refused_naming_where_the_device_is() -> None:
    walk = quoted()
    refusals: dict[str, tuple[dict[str, Any] | None, str]] = {
        "receive_device": (INTAKE, "the device was already received"),
        "repair_in_house": ({"text": "x"}, "repairing is not possible now "
                            "(the device is at: quoted)"),
        "send_to_manufacturer": ({"manufacturer": "X", "due_at": DUE_BACK.isoformat()},
                                 "sending the device to the manufacturer is not possible now "
                                 "(the device is at: quoted)"),
        "full_check": ({"passed": True, "note": "x"},
                       "the full check is not possible now (the device is at: quoted)"),
        "ready_for_pickup": (None, "calling the customer to collect is not possible now "
                             "(the device is at: quoted)"),
        "device_collected": ({"signed_by": "x"}, "handing the device back is not possible "
                             "now (the device is at: quoted)"),
        "back_from_manufacturer": (None, "receiving the device back is not possible now "
                                   "(the device is at: quoted)"),
    }
    for action, (params, reason) in refusals.items():
        assert walk.refuse(action, params, by=SUE).reason == reason, action
    walk.do("quote_approved")
    walk.do("repair_in_house", {"text": "new fan"}, by=TIM)
    assert walk.refuse("ready_for_pickup").reason == (
        "calling the customer to collect is not possible now (the device is at: repaired)"
    )
    assert walk.refuse("quote_approved").reason == (
        "recording the customer's answer is not possible now (the device is at: repaired)"
    )
    walk.do("full_check", {"passed": True, "note": "ok"}, by=TIM)
    walk.do("ready_for_pickup")
    walk.do("settle_repair", {"amount": "680", "reference": "POS-1"})  # at the counter first
    assert walk.refuse("settle_repair", {"amount": "680", "reference": "POS-1"}).reason == (
        "the repair was already settled"
    )
    walk.do("device_collected", {"signed_by": "Wang Fang"})
    assert offered(walk) == []
    walk.do("resolve", status=S.RESOLVED)


@pytest.mark.parametrize(
    ("action", "someone"),
    [
        ("quote_repair", ANN),  # a diagnosis is a technician's
        ("full_check", ANN),
        ("repair_in_house", LEO),
        ("receive_device", FAY),
        ("settle_repair", TIM),
        ("send_to_manufacturer", FAY),
        ("quote_approved", QIAN),
    ],
)
def test_who_may_not_take_a_workshop_step(action: str, someone: StaffMember) -> None:
    refusal = workshop().refuse(action, {}, by=someone)
    assert refusal.code == "role"
    assert refusal.reason.startswith(f"a {someone.role.value} may not ")


def test_intake_parameters_are_checked() -> None:
    walk = workshop()
    refusal = walk.refuse("receive_device", {"accessories": ["charger", ""],
                                             "visible_damage": " ", "signed_by": ""})
    assert fields(refusal) == {
        "params.accessories.1", "params.visible_damage", "params.signed_by",
    }
    # No accessories is a valid intake; the damage is always written down ("none").
    walk.do("receive_device", {"visible_damage": "none", "signed_by": "Wang Fang"})
    assert walk.case.workshop is not None and walk.case.workshop.intake.accessories == ()
    refusal = walk.refuse("quote_repair", {"amount": "-1", "description": "x"}, by=TIM)
    assert fields(refusal) == {"params.amount"}


def test_the_manufacturer_s_date_is_a_time_to_come_with_its_time_zone() -> None:
    walk = quoted()
    walk.do("quote_approved")
    send = {"manufacturer": "Dell depot"}
    refusal = walk.refuse("send_to_manufacturer", {**send, "due_at": "2026-06-10T18:00:00"})
    assert fields(refusal) == {"params.due_at"}  # no time zone: which 18:00?
    refusal = walk.refuse("send_to_manufacturer",
                          {**send, "due_at": (walk.now - timedelta(hours=1)).isoformat()})
    assert refusal.errors == [{"field": "params.due_at", "message": "must be later than now"}]


def test_a_new_date_from_the_manufacturer_moves_the_check_and_an_early_call_does_not_count() -> (
    None
):
    walk = quoted()
    walk.do("quote_approved")
    walk.do("send_to_manufacturer", {"manufacturer": "Dell depot",
                                     "due_at": DUE_BACK.isoformat()})
    # Asked two days early: still to ask again 12 hours before.
    walk.do("check_manufacturer_progress", {"note": "parts ordered"},
            at=DUE_BACK - timedelta(days=2))
    assert timers_for(walk.case)["manufacturer_return"].due_at == DUE_BACK - timedelta(hours=12)
    # 12 hours before, the manufacturer needs two days more: the next check moves.
    later = DUE_BACK + timedelta(days=2)
    walk.do("check_manufacturer_progress", {"note": "waiting for a part",
                                            "due_at": later.isoformat()},
            at=DUE_BACK - timedelta(hours=11))
    assert walk.case.workshop is not None and walk.case.workshop.manufacturer is not None
    assert walk.case.workshop.manufacturer.due_at == later
    assert timers_for(walk.case)["manufacturer_return"].due_at == later - timedelta(hours=12)
    walk.do("back_from_manufacturer")
    assert "manufacturer_return" not in timers_for(walk.case)


@pytest.mark.parametrize("template", ["workshop_quote", "workshop_ready_for_pickup",
                                      "workshop_return_unrepaired"])
def test_workshop_messages_are_in_both_languages(template: str) -> None:
    values = {"amount": "680.00", "description": "The mainboard failed."}
    for language in Language:
        assert template in CASE_MESSAGES[language]
        text = message_text(template, values, language)
        assert "{" not in text
        if template != "workshop_return_unrepaired":
            assert "680.00" in text


# -- random walks: whatever staff try, the rules hold ---------------------------------------

words = st.sampled_from(["ok", "王芳", "  padded  ", "", "x" * 3000])
days = st.dates(min_value=date(2026, 5, 1), max_value=date(2026, 8, 1)).map(str)
moments = st.datetimes(min_value=datetime(2026, 5, 1), max_value=datetime(2026, 9, 1),
                       timezones=st.just(UTC)).map(lambda d: d.isoformat())
money = st.sampled_from(["0", "50", "680.00", "-1", "1.234"])
milestone = st.sampled_from([m.value for m in Milestone] + ["nope"])


def _fixed(
    required: dict[str, Any], optional: dict[str, Any] | None = None
) -> Callable[[Case], st.SearchStrategy[dict[str, Any]]]:
    strategy = st.fixed_dictionaries(required, optional=optional or {})
    return lambda case: strategy


# Parameters for every project action, in the shape of the PARAMS of
# tests/unit/test_lifecycle_properties.py (which takes them with PARAMS.update).
PROJECT_PARAMS: dict[str, Callable[[Case], st.SearchStrategy[dict[str, Any]]]] = {
    "plan_milestone": _fixed({"milestone": milestone, "due_on": days}),
    "tick_milestone": _fixed({"milestone": milestone}, {"note": words, "done_on": days}),
    "untick_milestone": _fixed({"milestone": milestone, "reason": words}),
    "receive_device": _fixed({"visible_damage": words, "signed_by": words},
                             {"accessories": st.lists(words, max_size=3)}),
    "quote_repair": _fixed({"amount": money, "description": words}),
    "quote_approved": _fixed({}, {"note": words}),
    "quote_declined": _fixed({}, {"note": words}),
    "repair_in_house": _fixed({"text": words}),
    "send_to_manufacturer": _fixed({"manufacturer": words, "due_at": moments},
                                   {"reference": words}),
    "check_manufacturer_progress": _fixed({"note": words}, {"due_at": moments}),
    "back_from_manufacturer": _fixed({}, {"note": words}),
    "full_check": _fixed({"passed": st.booleans(), "note": words}),
    "ready_for_pickup": _fixed({}),
    "device_collected": _fixed({"signed_by": words}),
    "settle_repair": _fixed({"amount": money, "reference": words}),
}
GENERAL = {"resolve": _fixed({}), "cancel": _fixed({"text": words}),
           "reopen": _fixed({"text": words}), "add_note": _fixed({"text": words})}
STRATEGIES = {**PROJECT_PARAMS, **GENERAL}
PROBE = {"__probe__": 1}


def test_every_project_action_has_a_params_strategy() -> None:
    assert set(PROJECT_PARAMS) == {a.name for a in PROJECT_ACTIONS}


class ProjectWalks(RuleBasedStateMachine):
    case: Case
    now: datetime

    @initialize(kind=st.sampled_from([K.INSTALLATION_PROJECT, K.WORKSHOP_REPAIR]))
    def open_a_project(self, kind: CaseKind) -> None:
        self.case = new_case(kind, at=MONDAY)
        self.now = MONDAY

    @rule(name=st.sampled_from(sorted(STRATEGIES)), role=st.sampled_from(list(Role)),
          hours=st.integers(0, 72), data=st.data())
    def someone_tries_something(
        self, name: str, role: Role, hours: int, data: st.DataObject
    ) -> None:
        self.attempt(name, role, hours, data.draw(STRATEGIES[name](self.case), label="params"))

    @rule(data=st.data())
    def the_work_moves_on(self, data: st.DataObject) -> None:
        """A step the case is ready for, by someone who may take it: what takes random
        projects through to the end."""
        who = {
            name: role for role in Role
            for name in available_actions(self.case, StaffMember(
                staff_id="someone", name="Someone", role=role))
            if name in STRATEGIES and name not in ("cancel", "add_note")
        }
        if who:
            name = data.draw(st.sampled_from(sorted(who)), label="action")
            params = data.draw(STRATEGIES[name](self.case), label="params")
            self.attempt(name, who[name], data.draw(st.integers(0, 30), label="hours"), params)

    def attempt(self, name: str, role: Role, hours: int, params: dict[str, Any]) -> None:
        self.now += timedelta(hours=hours)
        actor = StaffMember(staff_id="someone", name="Someone", role=role)
        before = self.case.model_dump()
        offered = name in available_actions(self.case, actor)
        try:
            change = apply_action(self.case, name, params, actor=actor, now=self.now,
                                  promises=PROMISES)
        except ActionRefused as refusal:
            assert refusal.reason.strip()
            assert self.case.model_dump() == before
            return
        assert offered
        if name == "resolve":
            assert project_work_left(self.case) == []
        self.case = change.case
        note_event(f"did {name}")

    @invariant()
    def offered_actions_are_those_past_role_status_kind_and_record(self) -> None:
        for role in (Role.AGENT, Role.TECHNICIAN, Role.FINANCE, Role.SUPERVISOR):
            actor = StaffMember(staff_id="someone", name="Someone", role=role)
            offered = set(available_actions(self.case, actor))
            for action in PROJECT_ACTIONS:
                try:
                    apply_action(self.case, action.name, PROBE, actor=actor, now=self.now,
                                 promises=PROMISES)
                except ActionRefused as refusal:
                    passed = refusal.reason == "the parameters are not right"
                    assert passed == (action.name in offered), (action.name, refusal.reason)
                else:
                    raise AssertionError(f"{action.name} accepted {PROBE}")

    @invariant()
    def the_record_fits_the_kind(self) -> None:
        if self.case.kind is K.INSTALLATION_PROJECT:
            assert self.case.workshop is None
        else:
            assert self.case.installation is None
        if self.case.status is S.RESOLVED:
            assert project_work_left(self.case) == []


ProjectWalks.TestCase.settings = settings(
    max_examples=100, stateful_step_count=40, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestProjectWalks = ProjectWalks.TestCase
