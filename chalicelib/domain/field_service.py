"""The field-service record of a case (售后服务处理单 and what hangs on it): the unit, the
warranty (三包) decision, the fee quote and the customer's consent, the dispatch to a
technician, dealer or supplier with each party's promises, the service form and the
customer's sign-off, spare-parts requests with their approvals and old parts, fees, and
escalations.

Pure data: the actions that change it are in field_actions.py.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from chalicelib.domain.staff import Role

_frozen = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class ServiceClass(StrEnum):
    """How the work is paid for [003]."""

    PAID = "A"  # 有费: the customer pays
    CONTRACT = "B"  # 合同: under a maintenance contract
    WARRANTY = "C"  # 免费: free under the warranty (三包)


class UnitOnCase(BaseModel):
    """The registered unit as it was when the case was linked to it."""

    model_config = _frozen
    serial_no: str
    model: str
    product_line: str = "default"
    dealer: str | None = None
    region: str | None = None
    warranty_ends_on: date | None = None
    warranty_hours: int | None = None


class WarrantyCheck(BaseModel):
    model_config = _frozen
    in_warranty: bool
    reasons: tuple[str, ...]
    service_class: ServiceClass
    operating_hours: int | None = None
    checked_by: str
    checked_at: datetime
    note: str | None = None


class Signature(BaseModel):
    """A name typed (or written on paper) as a signature, and when."""

    model_config = _frozen
    name: str
    at: datetime
    via: Literal["link", "paper"]
    comment: str | None = None


class FeeQuote(BaseModel):
    """The quoted fees for work outside the warranty: signed by the customer before work."""

    model_config = _frozen
    amount: Decimal
    description: str
    quoted_by: str
    quoted_at: datetime
    consent: Signature | None = None


class Party(StrEnum):
    TECHNICIAN = "technician"  # the company's own technician
    DEALER = "dealer"  # 代理商 of the region
    SUPPLIER = "supplier"  # 供应商 whose part failed


class Dispatch(BaseModel):
    """派工: who does the work, and every promise they made, each with when it was kept."""

    model_config = _frozen
    party: Party
    to: str  # staff id, dealer id or supplier id
    name: str  # how people call them
    dispatched_at: datetime
    dispatched_by: str
    reply_due_at: datetime | None = None
    # A dealer's task not arranged (its reply) by then is reported to the case's owner.
    reply_check_at: datetime | None = None
    replied_at: datetime | None = None
    on_site_due_at: datetime | None = None
    on_site_at: datetime | None = None
    fixed_due_at: datetime | None = None
    fixed_at: datetime | None = None
    # Dealers and suppliers return the service form signed by the customer.
    form_due_at: datetime | None = None
    form_returned_at: datetime | None = None
    loan_unit: str | None = None  # what was lent while the unit is down


class PartUsed(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)
    part_no: str = Field(min_length=1, max_length=64)
    description: str | None = Field(default=None, max_length=200)
    quantity: int = Field(default=1, ge=1, le=10_000)


class ServiceForm(BaseModel):
    """售后服务处理单: what was done, with which parts, in how many hours."""

    model_config = _frozen
    work: str
    parts_used: tuple[PartUsed, ...] = ()
    hours: Decimal
    recorded_by: str
    recorded_at: datetime
    sign_off: Signature | None = None


class PartsLine(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)
    part_no: str = Field(min_length=1, max_length=64)
    description: str | None = Field(default=None, max_length=200)
    quantity: int = Field(ge=1, le=10_000)
    unit_price: Decimal = Field(ge=0, max_digits=12, decimal_places=2)

    @property
    def amount(self) -> Decimal:
        return self.unit_price * self.quantity


class Approval(BaseModel):
    model_config = _frozen
    role: Role
    by: str
    at: datetime


InspectionFault = Literal["incomplete", "not_warranty", "not_original"]


class OldPart(BaseModel):
    """三包旧件: the replaced part, expected back by ``due_at`` and inspected by QA."""

    model_config = _frozen
    due_at: datetime
    received_at: datetime | None = None
    received_by: str | None = None
    accepted: bool | None = None  # None: not inspected yet
    fault: InspectionFault | None = None
    inspected_by: str | None = None
    inspected_at: datetime | None = None
    note: str | None = None


class PartsSale(BaseModel):
    """A warranty parts request converted into a sale: the dealer pays for the parts."""

    model_config = _frozen
    amount: Decimal
    charged_to: str  # the dealer id (or the party that got the parts)
    reason: Literal["not_returned", "incomplete", "not_warranty", "not_original"]
    at: datetime


PartsState = Literal[
    "awaiting_approval",  # approvals still missing
    "approved",  # every approval in: to ship (or, for a local purchase, to settle)
    "shipped",  # parts on their way
    "settled",  # urgent local purchase: receipt in and reimbursed
    "turned_down",  # an approver refused
]


class PartsRequest(BaseModel):
    """三包备件: a spare-parts request, the approvals it needs and has, its shipping, and the
    old part that must come back."""

    model_config = _frozen
    number: int
    lines: tuple[PartsLine, ...]
    amount: Decimal
    beyond_warranty: bool = False  # 非正常备件
    urgent_local: bool = False  # bought locally on a phoned approval
    for_party: str | None = None  # the dealer/supplier/technician the parts go to
    for_party_kind: Party | None = None  # … and which of the three (set when they go)
    # Paid work (service class A): the customer pays for the parts, so they are parts
    # beyond the warranty promise and no old part is owed.
    paid_by_customer: bool = False
    requested_by: str
    requested_at: datetime
    needs: tuple[Role, ...]
    approvals: tuple[Approval, ...] = ()
    state: PartsState = "awaiting_approval"
    approved_at: datetime | None = None
    ship_due_at: datetime | None = None
    shipped_at: datetime | None = None
    tracking_no: str | None = None
    settle_due_at: datetime | None = None
    settled_at: datetime | None = None
    receipt_ref: str | None = None
    turned_down_by: str | None = None
    old_part: OldPart | None = None
    sale: PartsSale | None = None

    @property
    def missing_approvals(self) -> tuple[Role, ...]:
        given = {approval.role for approval in self.approvals}
        return tuple(role for role in self.needs if role not in given)


class Fees(BaseModel):
    """Fees for non-warranty work: collected on the spot, or later within the due time with
    the service director's consent. ``technician`` is responsible for collecting."""

    model_config = _frozen
    amount: Decimal
    technician: str
    on_the_spot: bool
    due_at: datetime | None = None
    consent_by: str | None = None  # the service director who agreed to later payment
    collected_at: datetime | None = None
    reference: str | None = None


class AbnormalReport(BaseModel):
    """售服异常问题反馈单: a hard problem reported to R&D and QA."""

    model_config = _frozen
    number: int
    text: str
    by: str
    at: datetime


class UnitReturn(BaseModel):
    """整机返厂: the whole unit back at the factory: registered, inspected, reworked."""

    model_config = _frozen
    registered_at: datetime
    registered_by: str
    inspected_at: datetime | None = None
    finding: str | None = None
    reworked_at: datetime | None = None
    rework: str | None = None


class FieldService(BaseModel):
    """Everything the field-service flow records on a case."""

    model_config = _frozen
    dispatch_due_at: datetime | None = None  # set when the repair is reported
    unit: UnitOnCase | None = None
    warranty: WarrantyCheck | None = None
    quote: FeeQuote | None = None
    dispatch: Dispatch | None = None
    form: ServiceForm | None = None
    parts: tuple[PartsRequest, ...] = ()
    fees: Fees | None = None
    abnormal_reports: tuple[AbnormalReport, ...] = ()
    major_quality_problem: str | None = None  # the note, once flagged
    major_quality_flagged_at: datetime | None = None
    unit_return: UnitReturn | None = None

    @property
    def service_class(self) -> ServiceClass | None:
        return self.warranty.service_class if self.warranty else None

    @property
    def needs_consent(self) -> bool:
        """Paid work waits for the customer's signed consent to the quote."""
        return self.service_class is ServiceClass.PAID and (
            self.quote is None or self.quote.consent is None
        )

    def request(self, number: int) -> PartsRequest | None:
        return next((r for r in self.parts if r.number == number), None)

    def dealer_to_charge(self, request: PartsRequest, dealers: Collection[str]) -> str | None:
        """The dealer a warranty parts request becomes a parts sale to (the dealer the parts
        went to), or None: processes.md charges only dealers, so parts that went to our own
        technician or to a supplier, or to nobody dispatched, are reminded instead."""
        who, kind = request.for_party, request.for_party_kind
        if who is None or (kind is not None and kind is not Party.DEALER):
            return None
        return who if who in dealers else None
