"""The case lifecycle: what staff may do to a case, by kind, status and role.

This is the web-shop complaint flow of processes.md as a state machine. Every action is
declared once in ACTIONS with who may take it, in which statuses, for which kinds, and its
parameters; `apply_action` checks all of that and returns the changed case, the one event
that records the change, and the messages the customer is to hear. A refused action raises
ActionRefused with the reason and changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from chalicelib.domain.actions import (
    Action,
    Change,
    Context,
    CustomerMessage,
    Money,
    NoParams,
    NoteParams,
    Outcome,
    ShopPromises,
    Short,
    Text,
    _params,
    record_change,
    refuse,
    refused_parameters,
)
from chalicelib.domain.actions import (
    ActionRefused as ActionRefused,
)
from chalicelib.domain.case import FIELD_SERVICE_KINDS, Case, CaseKind, CaseStatus
from chalicelib.domain.case import OPEN_STATUSES as OPEN
from chalicelib.domain.followup import CallOutcome, FollowUp, FollowUpCall, OpenQuestion
from chalicelib.domain.policies import Duration, FieldServicePolicy, Policies
from chalicelib.domain.remedies import (
    EXTRAS,
    REFUND_REMEDIES,
    SHIPPING_REMEDIES,
    Department,
    DepartmentFeedback,
    PaymentMethod,
    PendingResolution,
    RefundTrack,
    Remedy,
    RepairFee,
    ReshipTrack,
    ResolutionItem,
    ReturnTrack,
)
from chalicelib.domain.staff import FRONT_LINE, Role, StaffMember, may_approve
from chalicelib.domain.units import Unit

S = CaseStatus
K = CaseKind

ALL_KINDS = frozenset(CaseKind)
# The web-shop flow's kinds; the field-service kinds and the project kinds have their own
# actions (field_actions.py, project_actions.py) and share the general ones (notes,
# messages, owner, resolve, close, cancel, reopen).
SHOP_KINDS = ALL_KINDS - FIELD_SERVICE_KINDS - {K.INSTALLATION_PROJECT, K.WORKSHOP_REPAIR}
# A complaint about the goods is checked (photos of product and package) before a remedy.
NEEDS_VERIFICATION = frozenset(
    {K.NOT_AS_DESCRIBED, K.WRONG_ITEM, K.MISSING_ITEM, K.QUALITY_PROBLEM}
)
VERIFIABLE = NEEDS_VERIFICATION | {K.RETURN_REQUEST}
REMEDIES_BY_KIND = {
    K.ORDER_CANCEL: {"full_refund"},
    K.ORDER_CHANGE: {"exchange", "refund_difference"},
    K.NOT_AS_DESCRIBED: {
        "refund_difference", "partial_refund", "full_refund", "return_item", "exchange",
        "reship", "coupon", "gift",
    },
    K.WRONG_ITEM: {"return_item", "keep_wrong_item", "reship", "gift", "coupon", "full_refund"},
    K.MISSING_ITEM: {"reship_missing_part", "gift", "coupon", "partial_refund"},
    K.NOT_RECEIVED: {"full_refund", "reship"},
    K.QUALITY_PROBLEM: {
        "return_item", "exchange", "reship", "partial_refund", "full_refund", "coupon", "gift",
    },
    K.RETURN_REQUEST: {
        "return_item", "full_refund", "partial_refund", "refund_difference", "exchange",
    },
    K.SERVICE_COMPLAINT: {"coupon", "gift", "partial_refund"},
}
EVERYONE = frozenset(Role)


# -- parameters of the actions --------------------------------------------------------

class AssignParams(BaseModel):
    model_config = _params
    owner: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{1,62}$")


class ExplainParams(BaseModel):
    model_config = _params
    reason: Literal["misreading", "photo_lighting", "other"]
    text: str = Text
    offer: Literal["none", "discount", "gift"] = "none"
    offer_detail: str | None = Field(default=None, max_length=200)


class FeedbackParams(BaseModel):
    model_config = _params
    department: Department
    root_cause: str = Text


class ListingCorrectedParams(BaseModel):
    model_config = _params
    feedback_number: int = Field(ge=1)


class DecideParams(BaseModel):
    model_config = _params
    items: list[ResolutionItem] = Field(min_length=1, max_length=10)


class TrackingParams(BaseModel):
    model_config = _params
    tracking_no: str = Short
    carrier: str | None = Field(default=None, max_length=100)


class ReceivedParams(BaseModel):
    model_config = _params
    signed_by: str = Short


class InspectedParams(BaseModel):
    model_config = _params
    ok: bool
    note: str | None = Field(default=None, max_length=2000)


class RefundRequestParams(BaseModel):
    model_config = _params
    method: PaymentMethod


class PostRefundParams(BaseModel):
    model_config = _params
    amount: Decimal = Money
    method: PaymentMethod
    reference: str = Short


class CheckTrackingParams(BaseModel):
    model_config = _params
    online: bool
    note: str | None = Field(default=None, max_length=2000)


class RepairFeeParams(BaseModel):
    model_config = _params
    amount: Decimal = Money
    repairer: str = Short


class PayRepairFeeParams(BaseModel):
    model_config = _params
    reference: str = Short


class AddressParams(BaseModel):
    model_config = _params
    address: str = Field(min_length=1, max_length=1000)


class FollowUpCallParams(BaseModel):
    model_config = _params
    outcome: CallOutcome
    note: str | None = Field(default=None, max_length=2000)
    question: str | None = Field(default=None, min_length=1, max_length=2000)


class WholesaleParams(BaseModel):
    model_config = _params
    account: str = Short
    coupon_code: str = Short


# -- the actions ----------------------------------------------------------------------

def _note(case: Case, p: NoteParams, ctx: Context) -> Outcome:
    return Outcome()


def _message(case: Case, p: NoteParams, ctx: Context) -> Outcome:
    return Outcome(messages=(CustomerMessage("staff_message", {"text": p.text}),))


def _assign(case: Case, p: AssignParams, ctx: Context) -> Outcome:
    if ctx.actor.role is Role.AGENT and p.owner != ctx.actor.staff_id:
        raise ActionRefused(
            "an agent may take a case for themselves; a supervisor assigns others", code="role"
        )
    return Outcome(updates={"owner": p.owner})


def _request_photos(case: Case, p: NoParams, ctx: Context) -> Outcome:
    return Outcome(
        updates={"photos_due_at": ctx.promises.photos_due(ctx.now)},
        status=S.AWAITING_PHOTOS,
        messages=(CustomerMessage("photos_requested"),),
    )


def _mark_true(case: Case, p: NoParams, ctx: Context) -> Outcome:
    return Outcome(updates={"verification": "true"}, status=S.VERIFIED)


def _mark_not_true(case: Case, p: NoteParams, ctx: Context) -> Outcome:
    return Outcome(updates={"verification": "not_true"}, status=S.NOT_TRUE)


def _explain(case: Case, p: ExplainParams, ctx: Context) -> Outcome:
    if p.offer != "none" and not p.offer_detail:
        raise ActionRefused(
            "say what the discount or gift is",
            [{"field": "params.offer_detail", "message": "needed when an offer is made"}],
        )
    values = {"text": p.text, "offer": p.offer, "offer_detail": p.offer_detail or ""}
    return Outcome(status=S.RESOLVED, messages=(CustomerMessage("explanation", values),))


def _feedback(case: Case, p: FeedbackParams, ctx: Context) -> Outcome:
    entry = DepartmentFeedback(
        number=len(case.feedback) + 1,
        department=p.department,
        root_cause=p.root_cause,
        given_by=ctx.actor.actor,
        at=ctx.now,
    )
    return Outcome(updates={"feedback": (*case.feedback, entry)})


def _listing_corrected(case: Case, p: ListingCorrectedParams, ctx: Context) -> Outcome:
    matching = [f for f in case.feedback if f.number == p.feedback_number]
    if not matching or matching[0].department is not Department.OPERATIONS:
        raise refuse(f"there is no feedback number {p.feedback_number} to operations")
    if matching[0].listing_corrected_at is not None:
        raise refuse("this listing was already corrected")
    feedback = tuple(
        f.model_copy(update={"listing_corrected_at": ctx.now}) if f.number == p.feedback_number
        else f
        for f in case.feedback
    )
    return Outcome(updates={"feedback": feedback})


def _tracks_for(items: tuple[ResolutionItem, ...], ctx: Context) -> dict[str, Any]:
    """A decision sets up what must follow it, each with its promised deadline."""
    refund_amount = sum(
        (item.amount or Decimal(0) for item in items if item.remedy in REFUND_REMEDIES),
        Decimal(0),
    )
    shipping = [item for item in items if item.remedy in SHIPPING_REMEDIES]
    return {
        "resolution": items,
        "pending_resolution": None,
        "refund": RefundTrack(
            amount=refund_amount, request_due_at=ctx.promises.refund_request_due(ctx.now)
        )
        if refund_amount
        else None,
        "reship": ReshipTrack(
            due_at=ctx.promises.reship_due(
                ctx.now, exchange=any(i.remedy == "exchange" for i in shipping)
            ),
            extras=tuple(item.remedy for item in items if item.remedy in EXTRAS),
        )
        if shipping
        else None,
        "item_return": ReturnTrack() if any(i.remedy == "return_item" for i in items) else None,
        "repair_fee": None,
    }


def _resolution_message(items: tuple[ResolutionItem, ...]) -> CustomerMessage:
    remedies = ",".join(item.remedy.value for item in items)
    amounts = ",".join(f"{item.amount:.2f}" if item.amount else "" for item in items)
    values = {"remedies": remedies, "amounts": amounts}
    if any(item.note for item in items):  # what the gift is, what the coupon is worth
        values["notes"] = json.dumps([item.note or "" for item in items], ensure_ascii=False)
    return CustomerMessage("resolution_decided", values)


def _decide(case: Case, p: DecideParams, ctx: Context) -> Outcome:
    items = tuple(p.items)
    allowed = REMEDIES_BY_KIND.get(case.kind, set())
    errors = [
        {"field": f"params.items.{n}.remedy", "message": f"not a remedy for {case.kind.value}"}
        for n, item in enumerate(items)
        if item.remedy.value not in allowed
    ]
    errors += [
        {"field": f"params.items.{n}.amount", "message": "a refund needs its amount"}
        for n, item in enumerate(items)
        if item.remedy in REFUND_REMEDIES and item.amount is None
    ]
    if errors:
        raise ActionRefused("the resolution does not fit this case", errors)
    # No splitting under a limit: a remedy is judged on its total, and every refund on
    # the refunds of the whole case (this decision, and what was refunded before it).
    totals: dict[Remedy, Decimal] = {}
    for item in items:
        if item.amount is not None:
            totals[item.remedy] = totals.get(item.remedy, Decimal(0)) + item.amount
    refunds = sum((t for r, t in totals.items() if r in REFUND_REMEDIES), case.refunded_total)
    totals = {r: refunds if r in REFUND_REMEDIES else t for r, t in totals.items()}
    needs = [
        role
        for remedy, total in totals.items()
        if (role := ctx.promises.approval_needed(
            ResolutionItem.model_construct(remedy=remedy, amount=total)
        ))
    ]
    missing = [role for role in needs if not may_approve(ctx.actor.role, role)]
    if missing:
        # One approval for the whole decision: the role that may approve every item.
        needed = next(
            (role for role in missing if all(may_approve(role, other) for other in missing)),
            missing[0],
        )
        pending = PendingResolution(
            items=items, decided_by=ctx.actor.actor, needs=needed.value
        )
        return Outcome(updates={"pending_resolution": pending}, status=S.AWAITING_APPROVAL)
    return Outcome(
        updates=_tracks_for(items, ctx),
        status=S.IN_PROGRESS,
        messages=(_resolution_message(items),),
    )


def _approve(case: Case, p: NoParams, ctx: Context) -> Outcome:
    pending = case.pending_resolution
    assert pending is not None
    if not may_approve(ctx.actor.role, Role(pending.needs)):
        raise ActionRefused(
            f"this resolution needs the approval of a {pending.needs}", code="role"
        )
    return Outcome(
        updates=_tracks_for(pending.items, ctx),
        status=S.IN_PROGRESS,
        messages=(_resolution_message(pending.items),),
    )


def _reject(case: Case, p: NoteParams, ctx: Context) -> Outcome:
    pending = case.pending_resolution
    assert pending is not None
    if not may_approve(ctx.actor.role, Role(pending.needs)):
        raise ActionRefused(f"only a {pending.needs} may turn this resolution down", code="role")
    back = S.VERIFIED if case.verification == "true" else S.NEW
    return Outcome(updates={"pending_resolution": None}, status=back)


def _track(case: Case, name: str, state: str | tuple[str, ...], what: str) -> Any:
    track = getattr(case, name)
    states = (state,) if isinstance(state, str) else state
    if track is None or track.state not in states:
        now = "nothing" if track is None else track.state.replace("_", " ")
        raise refuse(f"{what} is not possible now (the {name.replace('_', ' ')} is at: {now})")
    return track


def _return_tracking(case: Case, p: TrackingParams, ctx: Context) -> Outcome:
    track = _track(case, "item_return", "awaiting_tracking", "recording the return's tracking")
    updated = track.model_copy(update={"state": "in_transit", "tracking_no": p.tracking_no})
    return Outcome(updates={"item_return": updated})


def _return_received(case: Case, p: ReceivedParams, ctx: Context) -> Outcome:
    track = _track(case, "item_return", "in_transit", "receiving the return")
    return Outcome(
        updates={"item_return": track.model_copy(update={"state": "received",
                                                          "signed_by": p.signed_by})}
    )


def _return_inspected(case: Case, p: InspectedParams, ctx: Context) -> Outcome:
    track = _track(case, "item_return", "received", "inspecting the return")
    updated = track.model_copy(
        update={"state": "inspected", "inspection_ok": p.ok, "inspection_note": p.note}
    )
    return Outcome(updates={"item_return": updated})


def _back_in_stock(case: Case, p: NoParams, ctx: Context) -> Outcome:
    track = _track(case, "item_return", "inspected", "putting the item back in stock")
    if not track.inspection_ok:
        raise refuse("an item that failed inspection does not go back into stock")
    return Outcome(updates={"item_return": track.model_copy(update={"state": "back_in_stock"})})


def _submit_refund(case: Case, p: RefundRequestParams, ctx: Context) -> Outcome:
    track = _track(case, "refund", "to_request", "submitting the refund request")
    return Outcome(
        updates={
            "refund": track.model_copy(
                update={
                    "state": "requested",
                    "method": p.method,
                    "post_due_at": ctx.promises.refund_posting_due(ctx.now),
                }
            )
        }
    )


def _post_refund(case: Case, p: PostRefundParams, ctx: Context) -> Outcome:
    track = _track(case, "refund", "requested", "posting the refund")
    if p.amount != track.amount:
        raise ActionRefused(
            f"the refund decided is {track.amount}; finance posts that amount, not {p.amount}",
            [{"field": "params.amount", "message": f"must be the decided {track.amount}"}],
        )
    updated = track.model_copy(
        update={
            "state": "posted",
            "amount": p.amount,
            "method": p.method,
            "reference": p.reference,
            "posted_at": ctx.now,
        }
    )
    low, high = ctx.promises.card_refund_working_days
    template = "refund_posted_card" if p.method is PaymentMethod.CREDIT_CARD else (
        "refund_posted_paypal" if p.method is PaymentMethod.PAYPAL else "refund_posted"
    )
    values = {"amount": f"{p.amount:.2f}", "days_from": str(low), "days_to": str(high)}
    return Outcome(
        updates={"refund": updated, "refunded_total": case.refunded_total + p.amount},
        messages=(CustomerMessage(template, values),),
    )


def _tell_refunded(case: Case, p: NoParams, ctx: Context) -> Outcome:
    track = _track(case, "refund", "posted", "telling the customer of the refund")
    return Outcome(
        updates={"refund": track.model_copy(update={"state": "customer_told"})},
        messages=(CustomerMessage("refunded_apology", {"amount": f"{track.amount:.2f}"}),),
    )


def _reship(case: Case, p: TrackingParams, ctx: Context) -> Outcome:
    track = _track(case, "reship", "to_ship", "reshipping")
    updated = track.model_copy(
        update={
            "state": "shipped",
            "carrier": p.carrier,
            "tracking_no": p.tracking_no,
            "shipped_at": ctx.now,
        }
    )
    extras = ",".join(extra.value for extra in track.extras)
    values = {"tracking_no": p.tracking_no, "carrier": p.carrier or "", "extras": extras}
    return Outcome(updates={"reship": updated}, messages=(CustomerMessage("reshipped", values),))


def _explain_tracking(case: Case, p: NoParams, ctx: Context) -> Outcome:
    return Outcome(
        updates={"tracking_check_due_at": ctx.promises.tracking_check_due(ctx.now)},
        status=S.WATCHING_TRACKING,
        messages=(CustomerMessage("tracking_explained"),),
    )


def _check_tracking(case: Case, p: CheckTrackingParams, ctx: Context) -> Outcome:
    if p.online:
        return Outcome(
            updates={"tracking_check_due_at": None},
            status=S.RESOLVED,
            messages=(CustomerMessage("parcel_on_its_way"),),
        )
    # Still not online: the customer chooses a refund or a reshipment (decide_resolution).
    return Outcome(
        updates={"tracking_check_due_at": None},
        status=S.VERIFIED,
        messages=(CustomerMessage("tracking_not_online"),),
    )


def _request_repair_fee(case: Case, p: RepairFeeParams, ctx: Context) -> Outcome:
    fee = RepairFee(amount=p.amount, repairer=p.repairer)
    return Outcome(updates={"repair_fee": fee}, status=S.IN_PROGRESS)


def _pay_repair_fee(case: Case, p: PayRepairFeeParams, ctx: Context) -> Outcome:
    fee = _track(case, "repair_fee", "requested", "paying the repair fee")
    return Outcome(
        updates={"repair_fee": fee.model_copy(update={"state": "paid", "reference": p.reference})},
        messages=(CustomerMessage("repair_fee_paid", {"repairer": fee.repairer}),),
    )


def _answer(case: Case, p: NoteParams, ctx: Context) -> Outcome:
    return Outcome(status=S.RESOLVED, messages=(CustomerMessage("answer", {"text": p.text}),))


def _change_address(case: Case, p: AddressParams, ctx: Context) -> Outcome:
    return Outcome(
        status=S.RESOLVED,
        messages=(CustomerMessage("address_changed", {"address": p.address}),),
    )


def _wholesale(case: Case, p: WholesaleParams, ctx: Context) -> Outcome:
    values = {"account": p.account, "coupon_code": p.coupon_code}
    return Outcome(status=S.RESOLVED, messages=(CustomerMessage("wholesale_account", values),))


def _apologise(case: Case, p: NoteParams, ctx: Context) -> Outcome:
    return Outcome(status=S.RESOLVED, messages=(CustomerMessage("apology", {"text": p.text}),))


def _call(number: int, due: tuple[datetime, datetime]) -> FollowUpCall:
    return FollowUpCall(number=number, due_at=due[0], window_ends_at=due[1])


def _no_call(case: Case) -> str | None:
    if case.follow_up is None or case.follow_up.pending_call is None:
        return "there is no follow-up call to make on this case"
    return None


def _no_question(case: Case) -> str | None:
    if case.open_question is None:
        return "there is no open question from a follow-up call on this case"
    return None


_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _readable(moment: datetime) -> str:
    """A local time as staff read it: "Thursday 2026-06-04 10:02 (Asia/Shanghai)"."""
    return f"{_WEEKDAYS[moment.weekday()]} {moment:%Y-%m-%d %H:%M} ({moment.tzinfo})"


def _record_call(case: Case, p: FollowUpCallParams, ctx: Context) -> Outcome:
    call = case.follow_up.pending_call if case.follow_up else None
    assert case.follow_up is not None and call is not None
    if call.due_at > ctx.now:
        due = _readable(ctx.promises.local_time(call.due_at))
        raise refuse(f"the follow-up call is not due yet: record it from {due}")
    if p.outcome == "question" and not p.question:
        raise ActionRefused(
            "say what the customer asked",
            [{"field": "params.question", "message": "needed when the outcome is a question"}],
        )
    calls = list(case.follow_up.calls[:-1])
    updates: dict[str, Any] = {}
    status: CaseStatus | None = None
    tried = call.attempts + 1
    # Nobody answered: the same call again on the next working day, inside its window.
    again = (
        ctx.promises.call_again(ctx.now, call.window_ends_at)
        if p.outcome == "no_answer" and tried < ctx.promises.call_attempts else None
    )
    if again is not None:
        calls.append(call.model_copy(update={"attempts": tried, "due_at": again,
                                             "note": p.note}))
    else:
        # Answered, or given up: out of tries, or no working day left in the window.
        calls.append(call.model_copy(update={
            "attempts": tried if p.outcome == "no_answer" else call.attempts,
            "outcome": p.outcome, "recorded_at": ctx.now, "by": ctx.actor.actor, "note": p.note,
        }))
        if p.outcome == "not_satisfied":
            # Keep talking until it is solved: the case is open again.
            status = _reopened_status(case)
        elif call.number == 1:
            calls.append(_call(2, ctx.promises.second_call(ctx.now)))
        if p.outcome == "question":
            assert p.question is not None
            updates["open_question"] = OpenQuestion(
                text=p.question,
                asked_at=ctx.now,
                report_due_at=ctx.promises.question_report_due(ctx.now),
                taken_by=ctx.actor.actor,
            )
    updates["follow_up"] = case.follow_up.model_copy(update={"calls": tuple(calls)})
    return Outcome(updates=updates, status=status)


def _answer_question(case: Case, p: NoteParams, ctx: Context) -> Outcome:
    return Outcome(
        updates={"open_question": None},
        messages=(CustomerMessage("answer", {"text": p.text}),),
    )


def unfinished_work(case: Case) -> list[str]:
    """What still stands between this case and 'resolved'."""
    from chalicelib.domain.field_actions import field_work_left
    from chalicelib.domain.project_actions import project_work_left

    left = field_work_left(case) + project_work_left(case)
    if case.refund and case.refund.state != "customer_told":
        left.append(f"the refund (at: {case.refund.state.replace('_', ' ')})")
    if case.reship and case.reship.state != "shipped":
        left.append("the reshipment")
    if case.item_return and case.item_return.state not in {"inspected", "back_in_stock"}:
        left.append(f"the return (at: {case.item_return.state.replace('_', ' ')})")
    if case.repair_fee and case.repair_fee.state != "paid":
        left.append("the repair fee")
    return left


def _resolve(case: Case, p: NoParams, ctx: Context) -> Outcome:
    if left := unfinished_work(case):
        raise refuse("not yet resolved: still open is " + ", ".join(left))
    return Outcome(status=S.RESOLVED, messages=(CustomerMessage("resolved"),))


def _close(case: Case, p: NoParams, ctx: Context) -> Outcome:
    return Outcome(status=S.CLOSED)


def _reopened_status(case: Case) -> CaseStatus:
    """Back to work: in progress when work was under way (a workshop job, an installation,
    a dispatch: their actions and `resolve` need it), else checked or new as before."""
    dispatched = case.field_service is not None and case.field_service.dispatch is not None
    if unfinished_work(case) or dispatched or case.workshop or case.installation:
        return S.IN_PROGRESS
    return S.VERIFIED if case.verification == "true" else S.NEW


def _reopen(case: Case, p: NoteParams, ctx: Context) -> Outcome:
    return Outcome(status=_reopened_status(case))


def _cancel(case: Case, p: NoteParams, ctx: Context) -> Outcome:
    return Outcome(status=S.CANCELLED)


def _actions() -> dict[str, Action]:
    front = FRONT_LINE
    decidable = frozenset(REMEDIES_BY_KIND)
    return {
        a.name: a
        for a in (
            Action("add_note", EVERYONE, OPEN, ALL_KINDS, NoteParams, _note),
            Action("message_customer", front, OPEN, ALL_KINDS, NoteParams, _message, True),
            Action("assign_owner", front, OPEN, ALL_KINDS, AssignParams, _assign),
            Action("request_photos", front, frozenset({S.NEW}), VERIFIABLE, NoParams,
                   _request_photos, True),
            Action("mark_complaint_true", front, frozenset({S.NEW, S.AWAITING_PHOTOS}),
                   VERIFIABLE, NoParams, _mark_true),
            Action("mark_complaint_not_true", front, frozenset({S.NEW, S.AWAITING_PHOTOS}),
                   VERIFIABLE, NoteParams, _mark_not_true),
            Action("explain", front,
                   frozenset({S.NEW, S.AWAITING_PHOTOS, S.VERIFIED, S.NOT_TRUE}),
                   frozenset({K.NOT_AS_DESCRIBED, K.QUALITY_PROBLEM, K.SERVICE_COMPLAINT,
                              K.WRONG_ITEM, K.MISSING_ITEM}),
                   ExplainParams, _explain, True),
            Action("feedback_to_department", front | {Role.QA_MANAGER}, OPEN, SHOP_KINDS,
                   FeedbackParams, _feedback),
            Action("listing_corrected", frozenset({Role.OPERATIONS}), OPEN, SHOP_KINDS,
                   ListingCorrectedParams, _listing_corrected),
            Action("decide_resolution", front, frozenset({S.NEW, S.VERIFIED}), decidable,
                   DecideParams, _decide, True,
                   statuses_for={kind: frozenset({S.VERIFIED}) for kind in NEEDS_VERIFICATION}),
            Action("approve_resolution", frozenset({Role.SUPERVISOR, Role.SERVICE_DIRECTOR,
                                                    Role.SERVICE_VP}),
                   frozenset({S.AWAITING_APPROVAL}), decidable, NoParams, _approve, True),
            Action("reject_resolution", frozenset({Role.SUPERVISOR, Role.SERVICE_DIRECTOR,
                                                   Role.SERVICE_VP}),
                   frozenset({S.AWAITING_APPROVAL}), decidable, NoteParams, _reject),
            Action("return_tracking_given", front | {Role.LOGISTICS},
                   frozenset({S.IN_PROGRESS}), decidable, TrackingParams, _return_tracking),
            Action("return_received", frozenset({Role.LOGISTICS}), frozenset({S.IN_PROGRESS}),
                   decidable, ReceivedParams, _return_received),
            Action("return_inspected", frozenset({Role.LOGISTICS, Role.QA_MANAGER}),
                   frozenset({S.IN_PROGRESS}), decidable, InspectedParams, _return_inspected),
            Action("return_back_in_stock", frozenset({Role.LOGISTICS}),
                   frozenset({S.IN_PROGRESS}), decidable, NoParams, _back_in_stock),
            Action("submit_refund_request", front, frozenset({S.IN_PROGRESS}), decidable,
                   RefundRequestParams, _submit_refund),
            Action("post_refund", frozenset({Role.FINANCE}), frozenset({S.IN_PROGRESS}),
                   decidable, PostRefundParams, _post_refund, True),
            Action("tell_customer_refunded", front, frozenset({S.IN_PROGRESS}), decidable,
                   NoParams, _tell_refunded, True),
            Action("reship", front | {Role.LOGISTICS}, frozenset({S.IN_PROGRESS}), decidable,
                   TrackingParams, _reship, True),
            Action("explain_tracking", front, frozenset({S.NEW}),
                   frozenset({K.NOT_RECEIVED}), NoParams, _explain_tracking, True),
            Action("check_tracking", front, frozenset({S.WATCHING_TRACKING}),
                   frozenset({K.NOT_RECEIVED}), CheckTrackingParams, _check_tracking, True),
            Action("request_repair_fee", front, frozenset({S.VERIFIED}),
                   frozenset({K.QUALITY_PROBLEM}), RepairFeeParams, _request_repair_fee),
            Action("pay_repair_fee", frozenset({Role.FINANCE}), frozenset({S.IN_PROGRESS}),
                   frozenset({K.QUALITY_PROBLEM}), PayRepairFeeParams, _pay_repair_fee, True),
            Action("answer_enquiry", front, frozenset({S.NEW}), frozenset({K.ENQUIRY}),
                   NoteParams, _answer, True),
            Action("change_address", front, frozenset({S.NEW}), frozenset({K.ORDER_CHANGE}),
                   AddressParams, _change_address, True),
            Action("register_wholesale_account", front, frozenset({S.NEW}),
                   frozenset({K.WHOLESALE_REGISTRATION}), WholesaleParams, _wholesale, True),
            Action("apologise", front, frozenset({S.NEW, S.VERIFIED}),
                   frozenset({K.SERVICE_COMPLAINT}), NoteParams, _apologise, True),
            Action("resolve", front, frozenset({S.IN_PROGRESS}), ALL_KINDS, NoParams, _resolve,
                   True),
            Action("close", front, frozenset({S.RESOLVED}), ALL_KINDS, NoParams, _close),
            Action("reopen", front, frozenset({S.RESOLVED, S.CLOSED, S.CANCELLED}), ALL_KINDS,
                   NoteParams, _reopen),
            Action("cancel", front, OPEN, ALL_KINDS, NoteParams, _cancel),
            Action("record_follow_up_call", front, frozenset({S.RESOLVED, S.CLOSED}),
                   ALL_KINDS, FollowUpCallParams, _record_call, missing=_no_call),
            Action("answer_question", front, OPEN | {S.CLOSED}, ALL_KINDS, NoteParams,
                   _answer_question, True, missing=_no_question),
        )
    }


def _all_actions() -> dict[str, Action]:
    """The web-shop flow's actions, the field-service flow's and the project kinds'."""
    from chalicelib.domain.field_actions import FIELD_ACTIONS
    from chalicelib.domain.project_actions import PROJECT_ACTIONS

    actions = _actions()
    for action in (*FIELD_ACTIONS, *PROJECT_ACTIONS):
        if action.name in actions:
            raise AssertionError(f"two actions are named {action.name}")
        actions[action.name] = action
    return actions


ACTIONS = _all_actions()


def rating_open(case: Case) -> bool:
    """The customer may rate the service from the resolution on (a reopened or cancelled
    case waits for its next resolution)."""
    return case.follow_up is not None and case.status in (S.RESOLVED, S.CLOSED)


def rate_service(case: Case, rating: int, comment: str | None, now: datetime) -> Change:
    """The customer's rating through the satisfaction link (a later one replaces it)."""
    from chalicelib.domain.followup import Satisfaction

    if not rating_open(case):
        raise ActionRefused("there is nothing to rate on this case now")
    satisfaction = Satisfaction(rating=rating, comment=comment or None, at=now)
    return record_change(
        case, {"satisfaction": satisfaction}, actor=f"customer:{case.customer.email}",
        action="customer_rated", now=now,
    )


def _handed_back_at(case: Case, resolved_at: datetime) -> datetime:
    """When the customer took the product back, which the first follow-up call counts
    from: a workshop repair's device when it was collected (before the resolution, which
    waits for it, and often for the settlement too); otherwise the resolution. A case
    resolved again after a reopening counts from the new resolution."""
    job = case.workshop
    if job is not None and job.collected_at is not None and case.follow_up is None:
        return job.collected_at
    return resolved_at


def _service_level_updates(
    case: Case,
    follow_up: FollowUp | None,
    status: CaseStatus,
    now: datetime,
    promises: ShopPromises,
) -> dict[str, Any]:
    """What a change of status does to the service levels and the follow-up: resolving
    schedules the first follow-up call; reopening drops calls not yet made and sets a new
    resolution target; closing and cancelling are dated."""
    if status == case.status:
        return {}
    updates: dict[str, Any] = {}
    if status is S.RESOLVED:
        updates["resolved_at"] = now
        if promises.follows_up(case.kind):
            first = _call(1, promises.first_call(_handed_back_at(case, now), now))
            updates["follow_up"] = FollowUp(resolved_at=now, calls=(first,))
    elif status is S.CLOSED:
        updates["closed_at"] = now
    else:
        # Back to work (reopened, or not satisfied) or cancelled: calls not made are dropped.
        if follow_up is not None and follow_up.pending_call is not None:
            updates["follow_up"] = follow_up.model_copy(update={"calls": follow_up.calls[:-1]})
        if case.status in (S.RESOLVED, S.CLOSED, S.CANCELLED) and status is not S.CANCELLED:
            updates.update(
                resolved_at=None, closed_at=None, resolve_due_at=promises.resolve_due(now)
            )
    return updates


def available_actions(case: Case, actor: StaffMember) -> list[str]:
    """The actions this person could take on this case now (parameters permitting)."""
    return [
        a.name for a in ACTIONS.values()
        if actor.active
        and actor.role in a.roles
        and case.kind in a.kinds
        and case.status in a.statuses_of(case.kind)
        and (a.missing is None or a.missing(case) is None)
        and (a.not_for is None or a.not_for(case, actor) is None)
    ]


def apply_action(
    case: Case,
    action_name: str,
    params: dict[str, Any] | None,
    *,
    actor: StaffMember,
    now: datetime,
    promises: ShopPromises,
    unit: Unit | None = None,
    staff: Sequence[StaffMember] | None = None,
) -> Change:
    """Apply one action. ``unit`` is the registered unit the case (or the parameters) name,
    ``staff`` the active staff: the caller looks them up for the actions that use them
    (warranty check; dispatch to a technician, fees)."""
    action = ACTIONS.get(action_name)
    if action is None:
        raise ActionRefused(
            f"there is no action '{action_name}'",
            [{"field": "action", "message": "unknown action"}],
        )
    if not actor.active:
        raise ActionRefused(f"{actor.name}'s access has been revoked", code="role")
    if case.kind not in action.kinds:
        raise ActionRefused(f"'{action_name}' is not part of a {case.kind.value} case")
    if actor.role not in action.roles:
        allowed = ", ".join(sorted(role.value for role in action.roles))
        raise ActionRefused(
            f"a {actor.role.value} may not {action_name.replace('_', ' ')} (allowed: {allowed})",
            code="role",
        )
    statuses = action.statuses_of(case.kind)
    if case.status not in statuses:
        allowed = ", ".join(sorted(status.value for status in statuses))
        raise ActionRefused(
            f"'{action_name}' is not possible while the case is {case.status.value} "
            f"(possible when: {allowed})"
        )
    if action.missing is not None and (why_not := action.missing(case)):
        raise ActionRefused(why_not)
    if action.not_for is not None and (why_not := action.not_for(case, actor)):
        raise ActionRefused(why_not, code="role")
    try:
        checked = action.params.model_validate(params or {})
    except ValidationError as error:
        raise refused_parameters(error, "the parameters are not right") from None
    context = Context(
        actor=actor, now=now, promises=promises, unit=unit,
        staff={member.staff_id: member for member in staff or () if member.active},
    )
    outcome = action.effect(case, checked, context)
    updates = dict(outcome.updates)
    if outcome.status is not None:
        updates["status"] = outcome.status
        follow_up = updates.get("follow_up", case.follow_up)
        updates.update(_service_level_updates(case, follow_up, outcome.status, now, promises))
    if outcome.messages and case.first_replied_at is None:
        updates["first_replied_at"] = now
    return record_change(
        case,
        updates,
        actor=actor.actor,
        action=action_name,
        now=now,
        details=checked.model_dump(mode="json"),
        # A step the customer hears of (a decision still waiting for approval is not one).
        visible=action.customer_visible and bool(outcome.messages),
        messages=outcome.messages,
        notices=outcome.notices,
    )


class PolicyPromises:
    """The shop's promises as its policies file states them, counted on its calendar."""

    def __init__(self, policies: Policies) -> None:
        self.policies = policies

    def refund_request_due(self, decided_at: datetime) -> datetime:
        return self.policies.deadline(decided_at, self.policies.shop.refund_request_within)

    def refund_posting_due(self, requested_at: datetime) -> datetime:
        return self.policies.deadline(requested_at, self.policies.shop.refund_posting_within)

    def photos_due(self, requested_at: datetime) -> datetime:
        shop = self.policies.shop
        return self.policies.deadline(requested_at, shop.photos_requested_reply_within)

    def reship_due(self, decided_at: datetime, exchange: bool) -> datetime:
        shop = self.policies.shop
        within = shop.exchange_ship_within if exchange else shop.reship_within
        return self.policies.deadline(decided_at, within)

    def tracking_check_due(self, at: datetime) -> datetime:
        return self.policies.deadline(at, self.policies.shop.tracking_check_within)

    def approval_needed(self, item: ResolutionItem) -> Role | None:
        return self.policies.approver_for(item.remedy, item.amount)

    @property
    def card_refund_working_days(self) -> tuple[int, int]:
        arrival = self.policies.shop.credit_card_refund_arrival
        return int(arrival.shortest.amount), int(arrival.longest.amount)

    def resolve_due(self, at: datetime) -> datetime:
        return self.policies.resolve_due(at)

    def follows_up(self, kind: CaseKind) -> bool:
        return kind.value not in self.policies.follow_up.skip_kinds

    def _call_window(self, due: datetime) -> tuple[datetime, datetime]:
        """A call due at ``due``, and the end of its window (the owner hears then)."""
        return due, self.policies.deadline(due, self.policies.follow_up.call_window)

    def first_call(
        self, handed_back_at: datetime, resolved_at: datetime
    ) -> tuple[datetime, datetime]:
        """Counted from the hand-back, but never due before the resolution (a device
        collected long before its repair was settled is called at once)."""
        follow_up = self.policies.follow_up
        due = self.policies.deadline(handed_back_at, follow_up.first_call_after)
        return self._call_window(max(due, resolved_at))

    def second_call(self, first_call_at: datetime) -> tuple[datetime, datetime]:
        follow_up = self.policies.follow_up
        return self._call_window(
            self.policies.deadline(first_call_at, follow_up.second_call_after)
        )

    def call_again(self, at: datetime, window_ends_at: datetime | None) -> datetime | None:
        """The opening of the next working day, if that is still inside the call's window
        (the tries of a call share its window); None if it is not."""
        calendar = self.policies.calendar_for()
        again = calendar.opening(calendar.next_working_day(calendar.local(at).date()))
        if window_ends_at is not None and again >= window_ends_at:
            return None
        return again

    @property
    def call_attempts(self) -> int:
        return self.policies.follow_up.call_attempts

    def question_report_due(self, asked_at: datetime) -> datetime:
        within = self.policies.follow_up.unanswered_question_within
        return self.policies.deadline(asked_at, within)

    def deadline(self, start: datetime, duration: Duration) -> datetime:
        return self.policies.deadline(start, duration)

    def local_date(self, at: datetime) -> date:
        return self.policies.calendar_for().local(at).date()

    def local_time(self, at: datetime) -> datetime:
        return self.policies.calendar_for().local(at)

    @property
    def field_service(self) -> FieldServicePolicy:
        return self.policies.field_service
