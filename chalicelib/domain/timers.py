"""Timers: every promise on a case as a deadline the system keeps, and what happens when
one passes.

A case's timers are a function of the case alone (`timers_for`): each deadline the case
holds (a refund to submit, a parcel to reship, a follow-up call to make …) is one timer,
named so that a case has at most one of each. When a case changes, `timer_changes` says
which timers to create or move and which to cancel; the store writes them in the same
transaction as the change, so a timer never outlives the promise it watches.

A timer fires in stages. A missed deadline is e-mailed to the case's owner when it passes
(stage 0), then escalated to the supervisors and the service director (stage 1). A
follow-up call opens on the agents' call list when it falls due, the customer gets the
satisfaction link, and a call still not made at the end of its window is reminded to the
owner. Each stage fires once: `fire` says what to tell whom and when the next stage is.

Pure domain code: time and policies come in as arguments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from chalicelib.domain.case import Case, CaseStatus
from chalicelib.domain.policies import Policies
from chalicelib.domain.projects import project_timers


class TimerKind(StrEnum):
    FIRST_REPLY = "first_reply"  # the first answer to the customer
    RESOLVE = "resolve"  # the case resolved
    PHOTOS = "photos"  # the customer's photos (to check the complaint)
    REFUND_REQUEST = "refund_request"  # 退款申请单 submitted (3 days)
    REFUND_POSTING = "refund_posting"  # finance posts the refund
    RESHIP = "reship"  # 补发/重发 (3 days)
    TRACKING_CHECK = "tracking_check"  # is the parcel's tracking online? (5 days)
    FOLLOW_UP_CALL = "follow_up_call"  # 回访
    CUSTOMER_QUESTION = "customer_question"  # a question from a call, still unanswered
    # Field service (三包, 派工): each party's promises, parts, old parts, fees.
    DISPATCH = "dispatch"  # 派工 within 24 h of the report
    PARTY_REPLY = "party_reply"  # the technician/dealer/supplier replies
    ON_SITE = "on_site"  # a technician on site
    FIXED = "fixed"  # the unit running again (else a loan unit)
    SIGNED_FORM = "signed_form"  # the dealer's/supplier's form signed by the customer
    PARTS_SHIPPING = "parts_shipping"  # approved 三包备件 shipped (2 working days)
    LOCAL_PURCHASE = "local_purchase"  # urgent local purchase: receipt and reimbursement
    OLD_PART = "old_part"  # 三包旧件 back (30 days), else a parts sale to the dealer
    FEES = "fees"  # non-warranty fees collected (30 days)
    # The project kinds (project_actions.project_timers).
    MILESTONE = "milestone"  # a planned installation milestone not ticked by its day
    MANUFACTURER_RETURN = "manufacturer_return"  # 返厂: check progress 12 h before due back


# Deadlines that, when missed, go to the owner and then up the ladder. An old part from a
# dealer not back in time is not reminded: the parts request becomes a parts sale charged
# to the dealer (field_actions.convert_unreturned).
DEADLINES = frozenset(TimerKind) - {TimerKind.FOLLOW_UP_CALL, TimerKind.CUSTOMER_QUESTION}


@dataclass(frozen=True)
class Timer:
    """One promise on one case: ``name`` is unique on the case, ``due_at`` the deadline."""

    name: str
    kind: TimerKind
    due_at: datetime
    call_number: int | None = None  # for follow-up calls
    parts_number: int | None = None  # for parts requests and their old parts
    window_ends_at: datetime | None = None  # for follow-up calls: make the call by then
    # The deadline promised, when the timer fires later than it (a dealer's task is due
    # arranged in 2 h; the clerk is told at 4 h): what reminders and the overdue list say.
    promised_at: datetime | None = None

    @property
    def deadline(self) -> datetime:
        return self.promised_at or self.due_at


def timers_for(case: Case) -> dict[str, Timer]:
    """Every deadline this case holds now, by timer name."""
    timers: list[Timer] = []

    def add(kind: TimerKind, due: datetime | None) -> None:
        if due is not None:
            timers.append(Timer(name=kind.value, kind=kind, due_at=due))

    if case.is_open:
        if case.first_replied_at is None:
            add(TimerKind.FIRST_REPLY, case.first_reply_due_at)
        if case.status is not CaseStatus.RESOLVED:
            add(TimerKind.RESOLVE, case.resolve_due_at)
        if case.status is CaseStatus.AWAITING_PHOTOS:
            add(TimerKind.PHOTOS, case.photos_due_at)
        if case.refund and case.refund.state == "to_request":
            add(TimerKind.REFUND_REQUEST, case.refund.request_due_at)
        if case.refund and case.refund.state == "requested":
            add(TimerKind.REFUND_POSTING, case.refund.post_due_at)
        if case.reship and case.reship.state == "to_ship":
            add(TimerKind.RESHIP, case.reship.due_at)
        if case.status is CaseStatus.WATCHING_TRACKING:
            add(TimerKind.TRACKING_CHECK, case.tracking_check_due_at)
        timers += _field_timers(case)
        timers += [Timer(name, kind, due) for kind, name, due in project_timers(case)]
    if case.status is CaseStatus.CANCELLED:
        # A cancelled case still owes the old parts sent out and the fees agreed.
        timers += [t for t in _parts_timers(case) if t.kind in (TimerKind.OLD_PART,
                                                                 TimerKind.FEES)]
    else:
        timers += _parts_timers(case)
        call = case.follow_up.pending_call if case.follow_up else None
        if call is not None and case.status in (CaseStatus.RESOLVED, CaseStatus.CLOSED):
            timers.append(
                Timer(
                    name=f"{TimerKind.FOLLOW_UP_CALL.value}_{call.number}",
                    kind=TimerKind.FOLLOW_UP_CALL,
                    due_at=call.due_at,
                    call_number=call.number,
                    window_ends_at=call.window_ends_at,
                )
            )
        if case.open_question is not None:
            add(TimerKind.CUSTOMER_QUESTION, case.open_question.report_due_at)
    return {timer.name: timer for timer in timers}


# What makes an open case overdue: its deadlines, its unanswered questions; not the
# follow-up calls (made after the case is resolved) nor the check on a device at the
# manufacturer 12 h before it is due back (its due-back time counts instead).
_NOT_OVERDUE = frozenset({TimerKind.FOLLOW_UP_CALL, TimerKind.MANUFACTURER_RETURN})


def next_deadline(case: Case) -> datetime | None:
    """The earliest promise still to keep on this open case (``Case.next_due_at``): what the
    overdue list, the reports and the staff's case view go by."""
    if not case.is_open:
        return None
    due = [t.deadline for t in timers_for(case).values() if t.kind not in _NOT_OVERDUE]
    sent = case.workshop.manufacturer if case.workshop else None
    if sent is not None and sent.received_at is None:
        due.append(sent.due_at)
    return min(due, default=None)


def _field_timers(case: Case) -> list[Timer]:
    """The field-service promises of an open case: dispatch, then each party's."""
    record = case.field_service
    if record is None:
        return []
    timers: list[Timer] = []

    def add(kind: TimerKind, due: datetime | None, promised: datetime | None = None) -> None:
        if due is not None:
            timers.append(Timer(kind.value, kind, due, promised_at=promised))

    dispatch = record.dispatch
    if dispatch is None:
        add(TimerKind.DISPATCH, record.dispatch_due_at)
        return timers
    if dispatch.replied_at is None:
        # A dealer's task not arranged in time is reported at the clerk's check.
        reply = dispatch.reply_due_at
        add(TimerKind.PARTY_REPLY, dispatch.reply_check_at or reply,
            reply if dispatch.reply_check_at else None)
    if dispatch.on_site_at is None:
        add(TimerKind.ON_SITE, dispatch.on_site_due_at)
    if dispatch.fixed_at is None and dispatch.loan_unit is None:
        add(TimerKind.FIXED, dispatch.fixed_due_at)
    if dispatch.form_returned_at is None:
        add(TimerKind.SIGNED_FORM, dispatch.form_due_at)
    return timers


def _parts_timers(case: Case) -> list[Timer]:
    """Parts, old parts and fees are followed until done, even once the case is resolved:
    an old part has 30 days to come back."""
    record = case.field_service
    if record is None:
        return []
    timers = []
    for request in record.parts:
        n = request.number
        if request.state == "approved" and request.ship_due_at is not None:
            timers.append(Timer(f"parts_shipping_{n}", TimerKind.PARTS_SHIPPING,
                                request.ship_due_at, parts_number=n))
        if request.state == "approved" and request.settle_due_at is not None:
            timers.append(Timer(f"local_purchase_{n}", TimerKind.LOCAL_PURCHASE,
                                request.settle_due_at, parts_number=n))
        old = request.old_part
        if old is not None and old.received_at is None and request.sale is None:
            timers.append(Timer(f"old_part_{n}", TimerKind.OLD_PART, old.due_at,
                                parts_number=n))
    fees = record.fees
    if fees is not None and fees.collected_at is None and fees.due_at is not None:
        timers.append(Timer(TimerKind.FEES.value, TimerKind.FEES, fees.due_at))
    return timers


@dataclass(frozen=True)
class TimerChanges:
    """What a case change does to its timers: (re)start these, cancel those."""

    start: tuple[Timer, ...] = ()
    cancel: tuple[str, ...] = ()


def timer_changes(before: Case | None, after: Case) -> TimerChanges:
    """A timer whose deadline did not change is left alone (it keeps the stages it already
    fired); a new or moved deadline starts afresh; a promise kept or dropped is cancelled."""
    old = timers_for(before) if before is not None else {}
    new = timers_for(after)
    start = tuple(timer for name, timer in sorted(new.items()) if old.get(name) != timer)
    cancel = tuple(sorted(name for name in old if name not in new))
    return TimerChanges(start=start, cancel=cancel)


# -- firing ------------------------------------------------------------------------------

Audience = Literal[
    "owner",  # the case's owner (the service centre when nobody owns it)
    "managers",  # supervisors and service directors
    "supervisors",
    "customer",
    "party",  # the dispatched technician, dealer or supplier
    "approvers",  # the roles a parts request waits for (values["roles"])
    "rnd_qa",  # R&D and QA (abnormal-problem reports)
    "management",  # the service director and the VPs (a major quality problem)
]


@dataclass(frozen=True)
class Notice:
    """Someone to tell: the case owner (or the service centre when nobody owns the case),
    the managers (supervisors and service directors), the supervisors, or the customer."""

    to: Audience
    template: str
    values: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Firing:
    notices: tuple[Notice, ...]
    next_stage_at: datetime | None  # None: this timer is done
    # An old part not back in time: this parts request becomes a parts sale (a change to
    # the case, made by the sweep through field_actions.convert_unreturned).
    lapsed_parts_request: int | None = None
    charge_to: str | None = None  # … charged to this dealer


@dataclass(frozen=True)
class DueTimer:
    """A timer as the sweep finds it: which case, which timer, which stage, since when.

    ``snapshot`` is the case as it stood when the timer was last written (the store keeps
    a copy on the timer), or None when there is none. It may be out of date: whoever fires
    the timer with it must make sure the case is still at ``snapshot.version``."""

    case_id: str
    name: str
    stage: int
    fire_at: datetime
    snapshot: Case | None = field(default=None, compare=False, repr=False)


# A timer fired this long after its time counts as late (the sweep was down).
LATE_AFTER = timedelta(minutes=15)


def is_late(due: DueTimer, now: datetime) -> bool:
    return now - due.fire_at > LATE_AFTER


def fire(due: DueTimer, case: Case, policies: Policies, now: datetime) -> Firing | None:
    """What firing this stage of this timer does, or None when the case no longer holds
    the timer (it was kept or moved meanwhile: nothing to tell anyone)."""
    timer = timers_for(case).get(due.name)
    if timer is None:
        return None
    values = {
        "timer": timer.kind.value,
        "due_at": timer.deadline.isoformat(),
        "late": "yes" if is_late(due, now) else "",
    }
    if timer.kind is TimerKind.FOLLOW_UP_CALL:
        if due.stage == 0:
            call = case.follow_up.pending_call if case.follow_up else None
            first_try = call is not None and call.attempts == 0
            # The satisfaction link once per resolution: not again for the second call,
            # nor to a customer who already rated.
            ask = first_try and case.rating_this_resolution is None
            notices = (Notice("customer", "satisfaction_survey"),) if ask else ()
            return Firing(notices, next_stage_at=timer.window_ends_at)
        values["call_number"] = str(timer.call_number)
        return Firing((Notice("owner", "follow_up_call_overdue", values),), None)
    if timer.kind is TimerKind.OLD_PART and due.stage == 0:
        record = case.field_service
        request = record.request(timer.parts_number or 0) if record else None
        dealer = (
            record.dealer_to_charge(request, policies.field_service.dealers)
            if record is not None and request is not None else None
        )
        if dealer is not None:
            return Firing((), None, lapsed_parts_request=timer.parts_number, charge_to=dealer)
        # No dealer to charge (our own technician, a supplier): a missed deadline like any.
    if timer.parts_number is not None:
        values["parts_number"] = str(timer.parts_number)
    if timer.kind is TimerKind.CUSTOMER_QUESTION:
        assert case.open_question is not None
        values["question"] = case.open_question.text
        return Firing((Notice("supervisors", "question_unanswered", values),), None)
    if due.stage == 0:
        # After an outage the owner still gets the full time before it goes up the ladder.
        start = now if is_late(due, now) else timer.due_at
        escalate_at = policies.deadline(start, policies.service_levels.escalate_after)
        return Firing((Notice("owner", "deadline_missed", values),), escalate_at)
    return Firing((Notice("managers", "deadline_escalated", values),), None)
