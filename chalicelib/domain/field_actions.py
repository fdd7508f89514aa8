"""The field-service and warranty flow [003, 004] as case actions: 三包 check, fee quote
and consent, dispatch to a technician, the region's dealer or the supplier, the service
form and the customer's sign-off, spare parts with approvals by amount and role, old
parts back (or a parts sale charged to the dealer), fees, and escalations.

Every rule refuses with a reason and changes nothing (ActionRefused). Deadlines come from
the ``[field_service]`` policies through ``ctx.promises``; the timers that watch them are
derived from the record (timers.py).

Pure domain code.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from chalicelib.domain.actions import (
    Action,
    ActionRefused,
    Change,
    Context,
    CustomerMessage,
    Effect,
    Money,
    NoParams,
    NoteParams,
    Outcome,
    Short,
    Text,
    _params,
    record_change,
    refuse,
    refused_parameters,
)
from chalicelib.domain.case import FIELD_SERVICE_KINDS as FIELD
from chalicelib.domain.case import OPEN_STATUSES as OPEN
from chalicelib.domain.case import Case, CaseKind, CaseStatus
from chalicelib.domain.field_service import (
    AbnormalReport,
    Approval,
    Dispatch,
    FeeQuote,
    Fees,
    FieldService,
    InspectionFault,
    OldPart,
    PartsLine,
    PartsRequest,
    PartsSale,
    PartUsed,
    Party,
    ServiceClass,
    ServiceForm,
    Signature,
    UnitOnCase,
    UnitReturn,
    WarrantyCheck,
)
from chalicelib.domain.policies import Duration
from chalicelib.domain.staff import FRONT_LINE, Role, StaffMember
from chalicelib.domain.timers import Notice
from chalicelib.domain.units import warranty_standing

S = CaseStatus
Missing = Callable[[Case], str | None]  # what an action needs that the case lacks, or None
FRONT = FRONT_LINE
TECH = FRONT_LINE | {Role.TECHNICIAN}
APPROVERS = frozenset(
    {Role.SERVICE_DIRECTOR, Role.QA_MANAGER, Role.SERVICE_VP, Role.SUPPLY_VP, Role.SALES_VP}
)
WORKING = frozenset({S.NEW, S.VERIFIED, S.IN_PROGRESS})
# Parts and old parts are followed after the case is resolved too (an old part has 30 days).
PARTS_STATUSES = OPEN | {S.CLOSED}
# A part sent out is owed back, and fees agreed are owed, even if the case is cancelled.
OWED_STATUSES = PARTS_STATUSES | {S.CANCELLED}


def _record(case: Case) -> FieldService:
    return case.field_service or FieldService()


def _with(case: Case, **changes: Any) -> dict[str, Any]:
    return {"field_service": _record(case).model_copy(update=changes)}


# -- parameters ---------------------------------------------------------------------------


class WarrantyParams(BaseModel):
    model_config = _params
    serial_no: str | None = Field(default=None, min_length=1, max_length=64)
    operating_hours: int | None = Field(default=None, ge=0, le=10_000_000)
    misuse: bool = False  # the technician found misuse
    original_parts: bool = True  # False: a part that is not original caused the fault
    note: str | None = Field(default=None, max_length=2000)


class QuoteParams(BaseModel):
    model_config = _params
    amount: Decimal = Money
    description: str = Text


class ConsentParams(BaseModel):
    model_config = _params
    signed_by: str = Short


class DispatchParams(BaseModel):
    model_config = _params
    party: Party
    # The technician's staff id, the dealer's or the supplier's id (policies). For a dealer
    # it may be left out: the unit's dealer, else the dealer of the customer's region.
    to: str | None = Field(default=None, min_length=1, max_length=64)
    region: str | None = Field(default=None, max_length=100)


class LoanParams(BaseModel):
    model_config = _params
    description: str = Short


class ServiceFormParams(BaseModel):
    model_config = _params
    work: str = Text
    parts_used: list[PartUsed] = Field(default_factory=list, max_length=50)
    hours: Decimal = Field(gt=0, le=10_000, max_digits=7, decimal_places=2)


class PartsRequestParams(BaseModel):
    model_config = _params
    lines: list[PartsLine] = Field(min_length=1, max_length=50)
    beyond_warranty: bool = False
    urgent_local: bool = False
    note: str | None = Field(default=None, max_length=2000)


class PartsNumberParams(BaseModel):
    model_config = _params
    number: int = Field(ge=1)


class TurnDownParams(PartsNumberParams):
    reason: str = Text


class ShipPartsParams(PartsNumberParams):
    tracking_no: str = Short
    carrier: str | None = Field(default=None, max_length=100)


class SettleParams(PartsNumberParams):
    receipt_ref: str = Short


class InspectOldPartParams(PartsNumberParams):
    accepted: bool
    fault: InspectionFault | None = None
    note: str | None = Field(default=None, max_length=2000)


class FeesParams(BaseModel):
    model_config = _params
    amount: Decimal = Money
    technician: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{1,62}$")
    on_the_spot: bool


class CollectedParams(BaseModel):
    model_config = _params
    reference: str = Short


class FindingParams(BaseModel):
    model_config = _params
    text: str = Text


# -- warranty and quote ---------------------------------------------------------------------


def _check_warranty(case: Case, p: WarrantyParams, ctx: Context) -> Outcome:
    record = _record(case)
    judged = p.misuse or not p.original_parts
    if judged and ctx.actor.role not in (Role.TECHNICIAN, Role.QA_MANAGER):
        raise ActionRefused(
            "misuse and non-original parts are found by the technician on site or by QA; "
            f"a {ctx.actor.role.value} records the warranty check without them", code="role",
        )
    if record.dispatch is not None and record.dispatch.on_site_at is None and judged:
        raise refuse("misuse and parts are judged by the technician on site: record the "
                      "arrival on site first")
    unit = ctx.unit
    serial = p.serial_no or case.serial_no or (record.unit.serial_no if record.unit else None)
    if serial is None:
        raise refuse("which unit? give its serial number", "serial_no", "needed")
    if unit is None or unit.serial_no != serial:
        raise refuse(
            f"the unit {serial} is not in the registry: register it first "
            "(POST /api/staff/units, or `cli units import`)",
            "serial_no", "not a registered unit",
        )
    if unit.retired is not None:
        raise refuse(
            f"the unit {serial} was retired on {unit.retired.at:%Y-%m-%d} "
            f"({unit.retired.reason}): correct the serial number", "serial_no",
        )
    policy = ctx.promises.field_service
    standing = warranty_standing(
        unit,
        on=ctx.promises.local_date(ctx.now),
        operating_hours=p.operating_hours,
        default_months=policy.default_warranty_months,
        misuse=p.misuse,
        original_parts=p.original_parts,
    )
    if standing.in_warranty:
        service_class = ServiceClass.WARRANTY
    elif unit.maintenance_contract and not (p.misuse or not p.original_parts):
        service_class = ServiceClass.CONTRACT
    else:
        service_class = ServiceClass.PAID
    check = WarrantyCheck(
        in_warranty=standing.in_warranty,
        reasons=standing.reasons,
        service_class=service_class,
        operating_hours=p.operating_hours,
        checked_by=ctx.actor.actor,
        checked_at=ctx.now,
        note=p.note,
    )
    on_case = UnitOnCase(
        serial_no=unit.serial_no,
        model=unit.model,
        product_line=unit.product_line,
        dealer=unit.dealer,
        region=unit.region,
        warranty_ends_on=standing.ends_on,
        warranty_hours=standing.hours_limit,
    )
    values = {
        "serial_no": unit.serial_no,
        "in_warranty": "yes" if standing.in_warranty else "",
        "service_class": service_class.value,
        "reasons": ",".join(standing.reasons),
        "warranty_ends_on": standing.ends_on.isoformat() if standing.ends_on else "",
    }
    status = S.VERIFIED if case.status is S.NEW else None
    return Outcome(
        updates={
            **_with(case, warranty=check, unit=on_case),
            "serial_no": unit.serial_no,
            "verification": "true",
        },
        status=status,
        messages=(CustomerMessage("warranty_decision", values),),
    )


def _no_paid_class(case: Case) -> str | None:
    record = case.field_service
    if record is None or record.warranty is None:
        return "the warranty is not checked yet (check_warranty)"
    if record.warranty.service_class is ServiceClass.WARRANTY:
        return "the work is free under the warranty: there are no fees to quote"
    return None


def _quote(case: Case, p: QuoteParams, ctx: Context) -> Outcome:
    quote = FeeQuote(
        amount=p.amount, description=p.description, quoted_by=ctx.actor.actor,
        quoted_at=ctx.now,
    )
    values = {"amount": f"{p.amount:.2f}", "description": p.description}
    return Outcome(
        updates=_with(case, quote=quote),
        messages=(CustomerMessage("fees_quoted", values),),
    )


def _no_quote_to_sign(case: Case) -> str | None:
    record = case.field_service
    if record is None or record.quote is None:
        return "there is no fee quote on this case"
    if record.quote.consent is not None:
        return "the customer has already agreed to the quote"
    return None


def _consent_on_paper(case: Case, p: ConsentParams, ctx: Context) -> Outcome:
    quote = _record(case).quote
    assert quote is not None
    signed = Signature(name=p.signed_by, at=ctx.now, via="paper")
    return Outcome(updates=_with(case, quote=quote.model_copy(update={"consent": signed})))


# -- dispatch and the parties' promises ------------------------------------------------------


def _dispatch(case: Case, p: DispatchParams, ctx: Context) -> Outcome:
    record = _record(case)
    if case.kind is CaseKind.REPAIR_REQUEST and record.warranty is None:
        # 三包 first: who pays decides whether the customer must agree to a quote first.
        raise refuse("check the warranty first (check_warranty): it decides who pays")
    if record.needs_consent:
        raise refuse(
            "the work is paid (service class A): quote the fees and get the customer's "
            "signed consent before sending anyone"
        )
    policy = ctx.promises.field_service
    to, name = p.to, ""
    if p.party is Party.DEALER:
        region = p.region or (record.unit.region if record.unit else None)
        to = to or (record.unit.dealer if record.unit else None) or policy.dealer_for_region(
            region
        )
        if to is None:
            raise refuse(
                "which dealer? the unit has none and no dealer serves the region "
                f"{region or '(unknown)'}", "to", "give the dealer's id",
            )
        if to not in policy.dealers:
            known = ", ".join(sorted(policy.dealers)) or "none configured"
            raise refuse(f"there is no dealer '{to}' (known: {known})", "to",
                          "not a known dealer")
        name = policy.dealers[to].name
    elif p.party is Party.SUPPLIER:
        if to is None or to not in policy.suppliers:
            known = ", ".join(sorted(policy.suppliers)) or "none configured"
            raise refuse(f"there is no supplier '{to or ''}' (known: {known})", "to",
                          "give a known supplier's id")
        name = policy.suppliers[to].name
    else:
        if to is None:
            raise refuse("which technician? give their staff id", "to", "needed")
        name = _technician(to, "to", ctx)
    promise = policy.promise_for(record.unit.product_line if record.unit else None)
    now = ctx.now

    def due(within: Duration | None) -> datetime | None:
        return ctx.promises.deadline(now, within) if within is not None else None

    # Each party's promises: a supplier replies and returns the signed form (it is not
    # sent on site); a dealer arranges the task within 2 h, checked by the clerk at 4 h.
    if p.party is Party.SUPPLIER:
        reply, check, on_site, fixed = policy.supplier_reply_within, None, None, None
        form: Duration | None = policy.supplier_form_within
    elif p.party is Party.DEALER:
        reply, check = policy.dealer_arrange_within, policy.dealer_check_after
        on_site, fixed, form = promise.on_site_within, promise.fixed_within, (
            policy.dealer_form_within
        )
    else:
        reply, check, form = promise.reply_within, None, None
        on_site, fixed = promise.on_site_within, promise.fixed_within
    dispatch = Dispatch(
        party=p.party,
        to=to,
        name=name,
        dispatched_at=now,
        dispatched_by=ctx.actor.actor,
        reply_due_at=due(reply),
        reply_check_at=due(check),
        on_site_due_at=due(on_site),
        fixed_due_at=due(fixed),
        form_due_at=due(form),
    )
    values = {
        "party": p.party.value,
        "party_name": name,
        "to": to,
        "on_site_due_at": dispatch.on_site_due_at.isoformat() if dispatch.on_site_due_at else "",
        "reply_due_at": dispatch.reply_due_at.isoformat() if dispatch.reply_due_at else "",
        "form_due_at": dispatch.form_due_at.isoformat() if dispatch.form_due_at else "",
    }
    return Outcome(
        updates=_with(case, dispatch=dispatch),
        status=S.IN_PROGRESS,
        messages=(CustomerMessage("technician_dispatched", {"party_name": name}),),
        notices=(Notice("party", "work_dispatched", values),),
    )


def _technician(staff_id: str, param: str, ctx: Context) -> str:
    """The name of the technician ``staff_id`` (an active member of staff with the
    technician's role); refused on ``param`` otherwise."""
    member = ctx.staff.get(staff_id)
    if member is None:
        raise refuse(f"there is no member of staff '{staff_id}'", param, "not a member of staff")
    if member.role is not Role.TECHNICIAN:
        raise refuse(f"{member.name} ({staff_id}) is not a technician "
                     f"(role: {member.role.value})", param, "not a technician")
    return member.name


def _not_dispatched(case: Case) -> str | None:
    if case.field_service is None or case.field_service.dispatch is None:
        return "the case is not dispatched yet"
    return None


def _dispatch_update(case: Case, ctx: Context, **changes: Any) -> dict[str, Any]:
    dispatch = _record(case).dispatch
    assert dispatch is not None
    return _with(case, dispatch=dispatch.model_copy(update=changes))


def _replied(case: Case, p: NoParams, ctx: Context) -> Outcome:
    dispatch = _record(case).dispatch
    assert dispatch is not None
    if dispatch.replied_at is not None:
        raise refuse(f"{dispatch.name} already replied")
    return Outcome(updates=_dispatch_update(case, ctx, replied_at=ctx.now))


def _on_site(case: Case, p: NoParams, ctx: Context) -> Outcome:
    dispatch = _record(case).dispatch
    assert dispatch is not None
    if dispatch.on_site_at is not None:
        raise refuse("the arrival on site is already recorded")
    return Outcome(
        updates=_dispatch_update(
            case, ctx, on_site_at=ctx.now, replied_at=dispatch.replied_at or ctx.now
        )
    )


def _running(case: Case, p: NoParams, ctx: Context) -> Outcome:
    dispatch = _record(case).dispatch
    assert dispatch is not None
    if dispatch.fixed_at is not None:
        raise refuse("the unit is already recorded as running again")
    return Outcome(
        updates=_dispatch_update(
            case, ctx, fixed_at=ctx.now, on_site_at=dispatch.on_site_at or ctx.now,
            replied_at=dispatch.replied_at or ctx.now,
        )
    )


def _lend(case: Case, p: LoanParams, ctx: Context) -> Outcome:
    return Outcome(updates=_dispatch_update(case, ctx, loan_unit=p.description))


# -- the service form and the customer's sign-off -------------------------------------------


def _record_form(case: Case, p: ServiceFormParams, ctx: Context) -> Outcome:
    record = _record(case)
    if record.needs_consent:
        raise refuse("the work is paid: the customer's signed consent to the quote comes "
                      "before the work")
    if record.form is not None and record.form.sign_off is not None:
        raise refuse("the service form is already signed by the customer")
    form = ServiceForm(
        work=p.work, parts_used=tuple(p.parts_used), hours=p.hours,
        recorded_by=ctx.actor.actor, recorded_at=ctx.now,
    )
    dispatch = record.dispatch
    assert dispatch is not None
    fixed = dispatch.model_copy(update={
        "fixed_at": dispatch.fixed_at or ctx.now,
        "on_site_at": dispatch.on_site_at or ctx.now,
        "replied_at": dispatch.replied_at or ctx.now,
    })
    return Outcome(
        updates=_with(case, form=form, dispatch=fixed),
        messages=(CustomerMessage("service_form_to_sign", {"work": p.work}),),
    )


def _no_form_to_sign(case: Case) -> str | None:
    record = case.field_service
    if record is None or record.form is None:
        return "there is no service form on this case yet"
    if record.form.sign_off is not None:
        return "the service form is already signed"
    return None


def _signed(case: Case, signature: Signature) -> dict[str, Any]:
    record = _record(case)
    assert record.form is not None
    changes: dict[str, Any] = {"form": record.form.model_copy(update={"sign_off": signature})}
    if record.dispatch is not None and record.dispatch.form_returned_at is None:
        changes["dispatch"] = record.dispatch.model_copy(
            update={"form_returned_at": signature.at}
        )
    return _with(case, **changes)


def _form_signed_on_paper(case: Case, p: ConsentParams, ctx: Context) -> Outcome:
    return Outcome(updates=_signed(case, Signature(name=p.signed_by, at=ctx.now, via="paper")))


class SignParams(BaseModel):
    """What the customer types on the private link: their name as signature."""

    model_config = _params
    name: str = Field(min_length=1, max_length=200)
    comment: str | None = Field(default=None, max_length=2000)


def what_to_sign(case: Case) -> Literal["quote", "form"] | None:
    """What the customer may sign on their private link now, if anything."""
    if not case.is_open:
        return None
    if _no_quote_to_sign(case) is None:
        return "quote"
    if _no_form_to_sign(case) is None:
        return "form"
    return None


def signature_on(case: Case, what: str) -> Signature | None:
    """The customer's signature on the quote or the service form, once given."""
    record = case.field_service
    if record is None:
        return None
    if what == "quote":
        return record.quote.consent if record.quote else None
    return record.form.sign_off if record.form else None


def sign_on_link(case: Case, name: str, comment: str | None, now: datetime) -> Change:
    """The customer signs on their private link: the fee quote (consent before the work)
    or the service form (the work is done), whichever waits for them."""
    try:
        signed = SignParams(name=name, comment=comment or None)
    except ValidationError as error:
        raise refused_parameters(error, "the signature is not right", prefix="") from None
    what = what_to_sign(case)
    if what is None:
        raise ActionRefused("there is nothing to sign on this case now")
    signature = Signature(name=signed.name, at=now, via="link", comment=signed.comment)
    if what == "quote":
        quote = _record(case).quote
        assert quote is not None
        updates = _with(case, quote=quote.model_copy(update={"consent": signature}))
        action = "customer_agreed_to_quote"
    else:
        updates = _signed(case, signature)
        action = "customer_signed_service_form"
    return record_change(
        case, updates, actor=f"customer:{case.customer.email}", action=action, now=now,
        details={"name": signed.name, "comment": signed.comment}, visible=True,
    )


# -- spare parts ------------------------------------------------------------------------------


def _request_parts(case: Case, p: PartsRequestParams, ctx: Context) -> Outcome:
    record = _record(case)
    if case.kind is CaseKind.REPAIR_REQUEST and record.warranty is None:
        raise refuse("check the warranty first (check_warranty): it decides whether the "
                     "parts are warranty parts (三包备件) or paid by the customer")
    paid = record.warranty is not None and record.warranty.service_class is ServiceClass.PAID
    beyond = p.beyond_warranty or paid
    amount = sum((line.amount for line in p.lines), Decimal(0))
    needs = ctx.promises.field_service.approvers_for(amount, beyond)
    request = PartsRequest(
        number=len(record.parts) + 1,
        lines=tuple(p.lines),
        amount=amount,
        beyond_warranty=beyond,
        paid_by_customer=paid,
        urgent_local=p.urgent_local,
        **_parts_going_to(record),
        requested_by=ctx.actor.actor,
        requested_at=ctx.now,
        needs=needs,
    )
    values = {
        "number": str(request.number),
        "amount": f"{amount:.2f}",
        "roles": ",".join(role.value for role in needs),
    }
    return Outcome(
        updates=_with(case, parts=(*record.parts, request)),
        notices=(Notice("approvers", "parts_approval_needed", values),),
    )


def _parts_going_to(record: FieldService) -> dict[str, Any]:
    """Who parts go to: the party the case is dispatched to now (a parts request made
    before the dispatch learns it when the parts are shipped or bought)."""
    dispatch = record.dispatch
    if dispatch is None:
        return {}
    return {"for_party": dispatch.to, "for_party_kind": dispatch.party}


def _parts(case: Case, number: int, what: str, states: tuple[str, ...]) -> PartsRequest:
    request = _record(case).request(number)
    if request is None:
        raise refuse(f"there is no parts request number {number}", "number", "unknown")
    if request.state not in states:
        raise refuse(f"{what} is not possible now (parts request {number} is "
                      f"{request.state.replace('_', ' ')})")
    return request


def _replace(case: Case, request: PartsRequest) -> dict[str, Any]:
    parts = tuple(request if r.number == request.number else r for r in _record(case).parts)
    return _with(case, parts=parts)


def _not_approver_of(request: PartsRequest, actor: StaffMember) -> str | None:
    """Why this person may not approve (or turn down) this waiting request, or None."""
    role, me, n = actor.role, actor.actor, request.number
    if any(approval.by == me for approval in request.approvals):
        return f"you have already approved parts request {n}"
    if request.requested_by == me:
        return f"you requested parts request {n}: someone else approves it"
    if role not in request.needs:
        needed = ", ".join(r.value for r in request.needs)
        return (f"parts request {n} ({request.amount:.2f}) is approved by: {needed}; "
                f"not by a {role.value}")
    done = next((a for a in request.approvals if a.role is role), None)
    if done is not None:
        return f"the {role.value}'s approval of parts request {n} is already in (by {done.by})"
    return None


def _approve_parts(case: Case, p: PartsNumberParams, ctx: Context) -> Outcome:
    request = _parts(case, p.number, "approving", ("awaiting_approval",))
    role, me = ctx.actor.role, ctx.actor.actor
    if why_not := _not_approver_of(request, ctx.actor):
        raise ActionRefused(why_not, code="role")
    approvals = (*request.approvals, Approval(role=role, by=me, at=ctx.now))
    update: dict[str, Any] = {"approvals": approvals}
    if not request.model_copy(update=update).missing_approvals:
        policy = ctx.promises.field_service
        update.update(state="approved", approved_at=ctx.now)
        if request.urgent_local:
            update["settle_due_at"] = ctx.promises.deadline(
                ctx.now, policy.local_purchase_settle_within
            )
        else:
            update["ship_due_at"] = ctx.promises.deadline(ctx.now, policy.parts_ship_within)
    return Outcome(updates=_replace(case, request.model_copy(update=update)))


def _turn_down_parts(case: Case, p: TurnDownParams, ctx: Context) -> Outcome:
    request = _parts(case, p.number, "turning down", ("awaiting_approval",))
    if why_not := _not_approver_of(request, ctx.actor):
        raise ActionRefused(why_not, code="role")
    update = {"state": "turned_down", "turned_down_by": ctx.actor.actor}
    return Outcome(updates=_replace(case, request.model_copy(update=update)))


def _old_part_due(request: PartsRequest, ctx: Context) -> OldPart | None:
    """Every part replaced under the warranty comes back (not parts beyond it, which the
    customer keeps or pays for)."""
    if request.beyond_warranty:
        return None
    policy = ctx.promises.field_service
    return OldPart(due_at=ctx.promises.deadline(ctx.now, policy.old_part_return_within))


def _ship_parts(case: Case, p: ShipPartsParams, ctx: Context) -> Outcome:
    request = _parts(case, p.number, "shipping", ("approved",))
    if request.urgent_local:
        raise refuse(f"parts request {p.number} is a local purchase: settle it instead")
    update = {
        "state": "shipped", "shipped_at": ctx.now, "tracking_no": p.tracking_no,
        "old_part": _old_part_due(request, ctx), **_parts_going_to(_record(case)),
    }
    return Outcome(updates=_replace(case, request.model_copy(update=update)))


def _settle_local(case: Case, p: SettleParams, ctx: Context) -> Outcome:
    request = _parts(case, p.number, "settling", ("approved",))
    if not request.urgent_local:
        raise refuse(f"parts request {p.number} is shipped from stock, not bought locally")
    update = {
        "state": "settled", "settled_at": ctx.now, "receipt_ref": p.receipt_ref,
        "old_part": _old_part_due(request, ctx), **_parts_going_to(_record(case)),
    }
    return Outcome(updates=_replace(case, request.model_copy(update=update)))


def _old_part(case: Case, number: int, what: str) -> tuple[PartsRequest, OldPart]:
    request = _record(case).request(number)
    if request is None:
        raise refuse(f"there is no parts request number {number}", "number", "unknown")
    if request.old_part is None:
        raise refuse(f"no old part is expected for parts request {number}")
    if request.sale is not None:
        raise refuse(f"parts request {number} was already converted into a parts sale")
    return request, request.old_part


def _old_part_received(case: Case, p: PartsNumberParams, ctx: Context) -> Outcome:
    request, old = _old_part(case, p.number, "receiving")
    if old.received_at is not None:
        raise refuse(f"the old part of request {p.number} is already received")
    old = old.model_copy(update={"received_at": ctx.now, "received_by": ctx.actor.actor})
    return Outcome(updates=_replace(case, request.model_copy(update={"old_part": old})))


def _sale(request: PartsRequest, dealer: str, reason: Any, now: datetime) -> PartsSale:
    return PartsSale(amount=request.amount, charged_to=dealer, reason=reason, at=now)


def _sale_notice(request: PartsRequest, sale: PartsSale) -> Notice:
    values = {
        "number": str(request.number),
        "amount": f"{sale.amount:.2f}",
        "reason": sale.reason,
        "charged_to": sale.charged_to,
    }
    return Notice("party", "parts_sale_charged", values)


def _inspect_old_part(case: Case, p: InspectOldPartParams, ctx: Context) -> Outcome:
    request, old = _old_part(case, p.number, "inspecting")
    if old.received_at is None:
        raise refuse(f"the old part of request {p.number} has not arrived yet")
    if old.accepted is not None:
        raise refuse(f"the old part of request {p.number} is already inspected")
    if not p.accepted and p.fault is None:
        raise refuse("say why it is rejected", "fault",
                      "needed when rejected: incomplete, not_warranty or not_original")
    old = old.model_copy(update={
        "accepted": p.accepted, "fault": None if p.accepted else p.fault,
        "inspected_by": ctx.actor.actor, "inspected_at": ctx.now, "note": p.note,
    })
    update: dict[str, Any] = {"old_part": old}
    notices: tuple[Notice, ...] = ()
    dealers = ctx.promises.field_service.dealers
    dealer = _record(case).dealer_to_charge(request, dealers)
    if not p.accepted and dealer is not None:
        # A dealer's old part that fails inspection: no compensation, a parts sale.
        sale = _sale(request, dealer, p.fault, ctx.now)
        update["sale"] = sale
        notices = (_sale_notice(request, sale),)
    return Outcome(updates=_replace(case, request.model_copy(update=update)), notices=notices)


def convert_unreturned(
    case: Case, number: int, dealer: str, now: datetime
) -> tuple[Change, Notice]:
    """三包旧件 not back in time: the warranty parts request becomes a parts sale charged to
    the dealer. Done by the sweep when the old part's timer fires."""
    request = _record(case).request(number)
    assert request is not None and request.old_part is not None
    sale = _sale(request, dealer, "not_returned", now)
    updates = _replace(case, request.model_copy(update={"sale": sale}))
    details = {"number": number, "amount": f"{sale.amount:.2f}", "charged_to": sale.charged_to}
    change = record_change(
        case, updates, actor="system:sweep", action="old_part_not_returned", now=now,
        details=details,
    )
    return change, _sale_notice(request, sale)


# -- fees -------------------------------------------------------------------------------------


def _set_fees(case: Case, p: FeesParams, ctx: Context) -> Outcome:
    record = _record(case)
    if record.fees is not None and record.fees.collected_at is not None:
        raise refuse("the fees are already collected")
    _technician(p.technician, "technician", ctx)
    consent = None
    due = None
    if not p.on_the_spot and ctx.actor.role is Role.SERVICE_DIRECTOR:
        # The director agrees to later payment in the same step.
        consent = ctx.actor.actor
        due = ctx.promises.deadline(ctx.now, ctx.promises.field_service.fees_due_within)
    fees = Fees(
        amount=p.amount, technician=p.technician, on_the_spot=p.on_the_spot,
        consent_by=consent, due_at=due,
    )
    return Outcome(updates=_with(case, fees=fees))


def _no_fees_awaiting_consent(case: Case) -> str | None:
    fees = case.field_service.fees if case.field_service else None
    if fees is None or fees.on_the_spot or fees.consent_by is not None:
        return "there are no fees waiting for the director's consent to later payment"
    return None


def _agree_later_payment(case: Case, p: NoParams, ctx: Context) -> Outcome:
    fees = _record(case).fees
    assert fees is not None
    due = ctx.promises.deadline(ctx.now, ctx.promises.field_service.fees_due_within)
    return Outcome(
        updates=_with(case, fees=fees.model_copy(update={"consent_by": ctx.actor.actor,
                                                         "due_at": due}))
    )


def _no_fees_to_collect(case: Case) -> str | None:
    fees = case.field_service.fees if case.field_service else None
    if fees is None or fees.collected_at is not None:
        return "there are no fees to collect on this case"
    if not fees.on_the_spot and fees.consent_by is None:
        return "later payment needs the service director's consent first"
    return None


def _fees_collected(case: Case, p: CollectedParams, ctx: Context) -> Outcome:
    fees = _record(case).fees
    assert fees is not None
    return Outcome(
        updates=_with(case, fees=fees.model_copy(update={"collected_at": ctx.now,
                                                         "reference": p.reference}))
    )


# -- escalation -------------------------------------------------------------------------------


def _abnormal(case: Case, p: FindingParams, ctx: Context) -> Outcome:
    record = _record(case)
    report = AbnormalReport(
        number=len(record.abnormal_reports) + 1, text=p.text, by=ctx.actor.actor, at=ctx.now
    )
    values = {"number": str(report.number), "text": p.text}
    return Outcome(
        updates=_with(case, abnormal_reports=(*record.abnormal_reports, report)),
        notices=(Notice("rnd_qa", "abnormal_problem", values),),
    )


def _major(case: Case, p: FindingParams, ctx: Context) -> Outcome:
    if _record(case).major_quality_problem is not None:
        raise refuse("this case is already flagged as a major quality problem")
    return Outcome(
        updates=_with(case, major_quality_problem=p.text, major_quality_flagged_at=ctx.now),
        notices=(Notice("management", "major_quality_problem", {"text": p.text}),),
    )


def _register_return(case: Case, p: NoteParams, ctx: Context) -> Outcome:
    if _record(case).unit_return is not None:
        raise refuse("the unit's return is already registered")
    back = UnitReturn(registered_at=ctx.now, registered_by=ctx.actor.actor)
    return Outcome(updates=_with(case, unit_return=back))


def _unit_return(case: Case) -> UnitReturn:
    back = _record(case).unit_return
    if back is None:
        raise refuse("no whole-unit return is registered on this case")
    return back


def _inspect_return(case: Case, p: FindingParams, ctx: Context) -> Outcome:
    back = _unit_return(case)
    if back.inspected_at is not None:
        raise refuse("the returned unit is already inspected")
    back = back.model_copy(update={"inspected_at": ctx.now, "finding": p.text})
    return Outcome(updates=_with(case, unit_return=back))


def _rework(case: Case, p: FindingParams, ctx: Context) -> Outcome:
    back = _unit_return(case)
    if back.inspected_at is None:
        raise refuse("inspect the returned unit before recording its rework")
    if back.reworked_at is not None:
        raise refuse("the rework is already recorded")
    back = back.model_copy(update={"reworked_at": ctx.now, "rework": p.text})
    return Outcome(updates=_with(case, unit_return=back))


# -- what is left ---------------------------------------------------------------------------


def field_work_left(case: Case) -> list[str]:
    """What still stands between a field-service case and 'resolved'. An old part on its
    way back does not hold the case open: it has its own deadline."""
    if case.kind not in FIELD:
        return []
    record = _record(case)
    left = []
    if record.dispatch is None:
        left.append("the dispatch")
    if record.form is None:
        left.append("the service form")
    elif record.form.sign_off is None:
        left.append("the customer's signature on the service form")
    for request in record.parts:
        if request.state in ("awaiting_approval", "approved"):
            left.append(f"parts request {request.number} (at: "
                        f"{request.state.replace('_', ' ')})")
    fees = record.fees
    if fees is not None and fees.collected_at is None and fees.consent_by is None:
        left.append("the fees (collect them, or the director agrees to later payment)")
    back = record.unit_return
    if back is not None and back.reworked_at is None:
        left.append("the returned unit's inspection and rework")
    return left


def _no_parts(what: str, wanted: Callable[[PartsRequest], bool]) -> Missing:
    """A ``missing`` check: the action needs a parts request for which ``wanted`` holds."""

    def missing(case: Case) -> str | None:
        parts = case.field_service.parts if case.field_service else ()
        return None if any(wanted(r) for r in parts) else f"there is no parts request {what}"

    return missing


_awaiting = _no_parts("waiting for approval", lambda r: r.state == "awaiting_approval")
_to_ship = _no_parts("to ship", lambda r: r.state == "approved" and not r.urgent_local)
_to_settle = _no_parts("bought locally to settle", lambda r: r.state == "approved"
                       and r.urgent_local)
_old_due = _no_parts("whose old part is due back", lambda r: r.old_part is not None
                     and r.old_part.received_at is None and r.sale is None)
_old_in = _no_parts("whose old part waits for inspection", lambda r: r.old_part is not None
                    and r.old_part.received_at is not None and r.old_part.accepted is None
                    and r.sale is None)


def _dispatched_to_another(case: Case, actor: StaffMember) -> str | None:
    """A case dispatched to one of our technicians: other technicians do not record its
    work (the front line still may, on the technician's word)."""
    dispatch = case.field_service.dispatch if case.field_service else None
    if (
        actor.role is not Role.TECHNICIAN
        or dispatch is None
        or dispatch.party is not Party.TECHNICIAN
        or dispatch.to == actor.staff_id
    ):
        return None
    return (f"the case is dispatched to {dispatch.name} ({dispatch.to}): they, or the "
            "service desk, record its work")


def _not_awaiting_me(case: Case, actor: StaffMember) -> str | None:
    """Approving (or turning down) is for a role a waiting request still needs, by someone
    who has not approved it yet and did not request it."""
    waiting = [r for r in _record(case).parts if r.state == "awaiting_approval"]
    reasons = [_not_approver_of(request, actor) for request in waiting]
    if not waiting or None in reasons:
        return None  # (nothing waiting is the action's `missing`)
    return "; ".join(reason for reason in reasons if reason)


def _a(
    name: str,
    roles: frozenset[Role],
    statuses: frozenset[CaseStatus],
    params: type[BaseModel],
    effect: Effect,
    customer_visible: bool = False,
    missing: Missing | None = None,
    reads: frozenset[Literal["unit", "staff"]] = frozenset(),
    not_for: Callable[[Case, StaffMember], str | None] | None = None,
) -> Action:
    return Action(name, roles, statuses, FIELD, params, effect, customer_visible,
                  missing=missing, reads=reads, not_for=not_for)



FIELD_ACTIONS: tuple[Action, ...] = (
    _a("check_warranty", TECH | {Role.QA_MANAGER}, WORKING, WarrantyParams, _check_warranty,
       True, reads=frozenset({"unit"}), not_for=_dispatched_to_another),
    _a("quote_fees", TECH, WORKING, QuoteParams, _quote, True, _no_paid_class,
       not_for=_dispatched_to_another),
    _a("record_fee_consent", TECH, WORKING, ConsentParams, _consent_on_paper,
       missing=_no_quote_to_sign, not_for=_dispatched_to_another),
    _a("dispatch", FRONT, WORKING, DispatchParams, _dispatch, True,
       reads=frozenset({"staff"})),
    _a("party_replied", TECH, frozenset({S.IN_PROGRESS}), NoParams, _replied,
       missing=_not_dispatched, not_for=_dispatched_to_another),
    _a("arrived_on_site", TECH, frozenset({S.IN_PROGRESS}), NoParams, _on_site,
       missing=_not_dispatched, not_for=_dispatched_to_another),
    _a("unit_running", TECH, frozenset({S.IN_PROGRESS}), NoParams, _running,
       missing=_not_dispatched, not_for=_dispatched_to_another),
    _a("lend_unit", TECH, frozenset({S.IN_PROGRESS}), LoanParams, _lend,
       missing=_not_dispatched, not_for=_dispatched_to_another),
    _a("record_service_form", TECH, frozenset({S.IN_PROGRESS}), ServiceFormParams,
       _record_form, True, _not_dispatched, not_for=_dispatched_to_another),
    _a("service_form_signed_on_paper", TECH, frozenset({S.IN_PROGRESS}), ConsentParams,
       _form_signed_on_paper, missing=_no_form_to_sign, not_for=_dispatched_to_another),
    _a("request_parts", TECH, frozenset({S.VERIFIED, S.IN_PROGRESS}), PartsRequestParams,
       _request_parts, not_for=_dispatched_to_another),
    _a("approve_parts", APPROVERS, PARTS_STATUSES, PartsNumberParams, _approve_parts,
       missing=_awaiting, not_for=_not_awaiting_me),
    _a("turn_down_parts", APPROVERS, PARTS_STATUSES, TurnDownParams, _turn_down_parts,
       missing=_awaiting, not_for=_not_awaiting_me),
    _a("ship_parts", FRONT | {Role.LOGISTICS}, PARTS_STATUSES, ShipPartsParams, _ship_parts,
       missing=_to_ship),
    _a("settle_local_purchase", frozenset({Role.FINANCE}), PARTS_STATUSES, SettleParams,
       _settle_local, missing=_to_settle),
    _a("old_part_received", FRONT | {Role.LOGISTICS, Role.QA_MANAGER}, OWED_STATUSES,
       PartsNumberParams, _old_part_received, missing=_old_due),
    _a("inspect_old_part", frozenset({Role.QA_MANAGER, Role.SERVICE_DIRECTOR}),
       OWED_STATUSES, InspectOldPartParams, _inspect_old_part, missing=_old_in),
    _a("set_fees", TECH, frozenset({S.IN_PROGRESS}), FeesParams, _set_fees,
       missing=_no_paid_class, reads=frozenset({"staff"}), not_for=_dispatched_to_another),
    _a("agree_later_payment", frozenset({Role.SERVICE_DIRECTOR}),
       frozenset({S.IN_PROGRESS, S.RESOLVED}), NoParams, _agree_later_payment,
       missing=_no_fees_awaiting_consent),
    _a("fees_collected", TECH | {Role.FINANCE}, OWED_STATUSES, CollectedParams,
       _fees_collected, missing=_no_fees_to_collect),
    _a("report_abnormal_problem", TECH | {Role.QA_MANAGER}, OPEN, FindingParams, _abnormal),
    _a("flag_major_quality_problem", TECH | {Role.QA_MANAGER}, OPEN, FindingParams, _major),
    _a("register_unit_return", TECH | {Role.LOGISTICS}, OPEN, NoteParams, _register_return),
    _a("inspect_returned_unit", frozenset({Role.QA_MANAGER, Role.TECHNICIAN}), OPEN,
       FindingParams, _inspect_return),
    _a("record_rework", frozenset({Role.QA_MANAGER, Role.TECHNICIAN}), OPEN, FindingParams,
       _rework),
)
