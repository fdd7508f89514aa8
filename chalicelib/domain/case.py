"""Cases: what a customer reports, and the record the service centre keeps of it.

Pure domain code: no AWS, no web framework. Time comes in as an argument.
"""

from __future__ import annotations

import unicodedata
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)

from chalicelib.domain.field_service import FieldService
from chalicelib.domain.followup import FollowUp, OpenQuestion, Satisfaction
from chalicelib.domain.projects import InstallationProject, WorkshopJob
from chalicelib.domain.remedies import (
    DepartmentFeedback,
    PendingResolution,
    RefundTrack,
    RepairFee,
    ReshipTrack,
    ResolutionItem,
    ReturnTrack,
)


class CaseKind(StrEnum):
    """What a case is about. Customers report the kinds in FORM_KINDS; staff open others."""

    ENQUIRY = "enquiry"
    ORDER_CANCEL = "order_cancel"
    ORDER_CHANGE = "order_change"
    NOT_AS_DESCRIBED = "not_as_described"
    WRONG_ITEM = "wrong_item"
    MISSING_ITEM = "missing_item"
    NOT_RECEIVED = "not_received"
    QUALITY_PROBLEM = "quality_problem"
    RETURN_REQUEST = "return_request"
    REPAIR_REQUEST = "repair_request"
    SERVICE_COMPLAINT = "service_complaint"
    WHOLESALE_REGISTRATION = "wholesale_registration"  # 售前: a wholesale account + coupon
    MAINTENANCE_VISIT = "maintenance_visit"  # 定期保养: a planned visit to a unit
    INSTALLATION_PROJECT = "installation_project"  # 安装项目: the 15 milestones
    WORKSHOP_REPAIR = "workshop_repair"  # 送修: a device repaired in the shop


# Kinds staff open themselves (or the system, for planned visits); customers report every
# other kind on the form.
STAFF_ONLY_KINDS = frozenset(
    {
        CaseKind.WHOLESALE_REGISTRATION,
        CaseKind.MAINTENANCE_VISIT,
        CaseKind.INSTALLATION_PROJECT,
        CaseKind.WORKSHOP_REPAIR,
    }
)
NO_FIRST_REPLY_KINDS = frozenset({CaseKind.MAINTENANCE_VISIT, CaseKind.INSTALLATION_PROJECT})
# Kinds worked through the field-service flow (unit, warranty, dispatch, service form).
FIELD_SERVICE_KINDS = frozenset({CaseKind.REPAIR_REQUEST, CaseKind.MAINTENANCE_VISIT})
FORM_KINDS = tuple(kind for kind in CaseKind if kind not in STAFF_ONLY_KINDS)


# Web-shop complaints about an order cannot be checked without the order number.
KINDS_NEEDING_AN_ORDER = frozenset(
    {
        CaseKind.ORDER_CANCEL,
        CaseKind.ORDER_CHANGE,
        CaseKind.NOT_AS_DESCRIBED,
        CaseKind.WRONG_ITEM,
        CaseKind.MISSING_ITEM,
        CaseKind.NOT_RECEIVED,
        CaseKind.RETURN_REQUEST,
    }
)


class CaseStatus(StrEnum):
    NEW = "new"
    AWAITING_PHOTOS = "awaiting_photos"
    VERIFIED = "verified"
    NOT_TRUE = "not_true"
    WATCHING_TRACKING = "watching_tracking"
    AWAITING_APPROVAL = "awaiting_approval"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    CLOSED = "closed"
    CANCELLED = "cancelled"


OPEN_STATUSES = frozenset(CaseStatus) - {CaseStatus.CLOSED, CaseStatus.CANCELLED}


class Language(StrEnum):
    ZH = "zh"
    EN = "en"


class Channel(StrEnum):
    WEB_FORM = "web_form"
    API = "api"
    PHONE = "phone"  # opened by staff on the customer's behalf


def _plain_text(value: str, *, multiline: bool) -> str:
    """Customer text is kept exactly as typed, but must be storable, printable text.

    Lone surrogates cannot be stored as UTF-8; control characters in a one-line field
    (a name ends up in an e-mail header) are never typed by a person.
    """
    allowed = {"\n", "\r", "\t"} if multiline else set()
    for ch in value:
        category = unicodedata.category(ch)
        if category == "Cs":
            raise ValueError("contains an invalid character (unpaired surrogate)")
        if category == "Cc" and ch not in allowed:
            raise ValueError(f"contains a control character (U+{ord(ch):04X})")
    if not value.strip():
        raise ValueError("must not be blank")
    return value


def _one_line(value: str) -> str:
    return _plain_text(value, multiline=False)


def _multi_line(value: str) -> str:
    return _plain_text(value, multiline=True)


def _reportable(kind: CaseKind) -> CaseKind:
    if kind not in FORM_KINDS:
        raise ValueError(f"'{kind.value}' is opened by staff, not reported on the form")
    return kind


OneLine = Annotated[str, AfterValidator(_one_line)]
MultiLine = Annotated[str, AfterValidator(_multi_line)]


# Models are built on first use (defer_build), not at import: each Lambda function builds
# only the ones it needs, which keeps cold starts short.


def _deliverable(value: str) -> str:
    """Amazon SES delivers only to addresses whose part before the @ is ASCII (a non-ASCII
    domain is sent as punycode); anything else would never get its confirmation."""
    if not value.rpartition("@")[0].isascii():
        raise ValueError("the part before the @ must use Latin letters, digits or . _ + -")
    return value


class Customer(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    name: OneLine = Field(min_length=1, max_length=200)
    email: Annotated[EmailStr, AfterValidator(_deliverable)] = Field(max_length=254)
    phone: OneLine | None = Field(
        default=None, max_length=40, pattern=r"^\+?[0-9 ()./-]{3,40}$"
    )


class Complaint(BaseModel):
    """What a customer submits: the body of ``POST /api/cases`` and the web form."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        defer_build=True,
        json_schema_extra={
            "example": {
                "kind": "wrong_item",
                "customer": {"name": "王芳", "email": "wang.fang@example.com"},
                "order_ref": "SO-2026-1042",
                "description": "收到的是蓝色，订的是红色。",
                "language": "zh",
            }
        },
    )

    kind: Annotated[
        CaseKind,
        AfterValidator(_reportable),
        WithJsonSchema({"type": "string", "enum": [kind.value for kind in FORM_KINDS]}),
    ]
    customer: Customer
    order_ref: OneLine | None = Field(default=None, max_length=64, validate_default=True)
    product: OneLine | None = Field(default=None, max_length=200)
    serial_no: OneLine | None = Field(default=None, max_length=64)
    purchase_date: date | None = None
    description: MultiLine = Field(min_length=1, max_length=5000)
    language: Language | None = None
    website: str | None = Field(
        default=None,
        max_length=500,
        description="Honeypot: leave it out. A submission that fills it is dropped.",
    )

    @field_validator("purchase_date")
    @classmethod
    def _not_in_the_future(cls, value: date | None, info: ValidationInfo) -> date | None:
        today = (info.context or {}).get("today")
        if value is not None and today is not None and value > today:
            raise ValueError("cannot be in the future")
        return value

    @field_validator("order_ref")
    @classmethod
    def _order_kinds_need_an_order(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and info.data.get("kind") in KINDS_NEEDING_AN_ORDER:
            raise ValueError("an order number is needed for this kind of problem")
        return value

    @property
    def is_from_a_bot(self) -> bool:
        return bool(self.website)

    def fingerprint_fields(self) -> dict[str, Any]:
        """What makes two submissions 'the same request' for idempotency."""
        return self.model_dump(mode="json", exclude={"website"})


class PhoneComplaint(Complaint):
    """A report taken by staff on the customer's behalf: any kind, staff-only ones too."""

    kind: CaseKind
    website: None = Field(default=None, description="Not for staff: leave it out.")


class Case(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)

    case_id: str
    case_number: str
    kind: CaseKind
    status: CaseStatus
    customer: Customer
    order_ref: str | None = None
    product: str | None = None
    serial_no: str | None = None
    purchase_date: date | None = None
    description: str
    language: Language
    channel: Channel
    created_at: datetime
    updated_at: datetime
    version: int = Field(ge=1)
    # The work on the case (see lifecycle.py for how each action changes it).
    owner: str | None = None
    verification: Literal["true", "not_true"] | None = None
    resolution: tuple[ResolutionItem, ...] = ()
    pending_resolution: PendingResolution | None = None
    refund: RefundTrack | None = None
    reship: ReshipTrack | None = None
    item_return: ReturnTrack | None = None
    repair_fee: RepairFee | None = None
    refunded_total: Decimal = Decimal(0)  # every refund posted on this case, for approvals
    feedback: tuple[DepartmentFeedback, ...] = ()
    tracking_check_due_at: datetime | None = None
    photos_due_at: datetime | None = None
    # Service levels: the first reply to the customer and the resolution, each with its
    # target (set when the case is opened) and when it happened.
    first_reply_due_at: datetime | None = None
    first_replied_at: datetime | None = None
    resolve_due_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    # Field service (repair requests, maintenance visits) and the project kinds.
    field_service: FieldService | None = None
    installation: InstallationProject | None = None
    workshop: WorkshopJob | None = None
    # After the resolution: the follow-up calls, a question left open, the customer's rating.
    follow_up: FollowUp | None = None
    open_question: OpenQuestion | None = None
    satisfaction: Satisfaction | None = None
    # The customer's private link token: kept with the case for the links in e-mails,
    # never shown in a case's data or history.
    status_token: str | None = Field(default=None, exclude=True, repr=False)
    # Where the customer reached us (for links in e-mails sent later by the schedules).
    links_base: str | None = Field(default=None, exclude=True, repr=False)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def rating_this_resolution(self) -> Satisfaction | None:
        """The customer's rating given since the case was last resolved, if any."""
        rated, follow_up = self.satisfaction, self.follow_up
        if rated is None or follow_up is None or rated.at < follow_up.resolved_at:
            return None
        return rated

    @property
    def next_due_at(self) -> datetime | None:
        """The earliest promise still to keep on this open case, if any: the first of its
        deadlines (domain/timers.py), shop, field service and projects alike."""
        from chalicelib.domain.timers import next_deadline  # timers.py builds on this module

        return next_deadline(self)


class CaseEvent(BaseModel):
    """One line of a case's history: who did what, when, and what changed."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    case_id: str
    at: datetime
    actor: str
    action: str
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    details: dict[str, Any] | None = None  # the action's parameters
    visible_to_customer: bool = False
    version: int | None = None  # the case version this event produced
    # What the customer was told by this change: [{"template": …, "values": {…}}].
    told_customer: tuple[dict[str, Any], ...] = ()


def format_case_number(sequence: int, prefix: str) -> str:
    """Short, human, unique and increasing: 'AS000042' is read out as 'A S forty-two'.

    Zero-padding to six digits keeps text order and number order the same up to a
    million cases; past that the number simply grows a digit.
    """
    if sequence < 1:
        raise ValueError("case numbers start at 1")
    return f"{prefix}{sequence:06d}"


def open_case(
    complaint: Complaint,
    *,
    case_id: str,
    case_number: str,
    language: Language,
    channel: Channel,
    now: datetime,
    actor: str | None = None,
    first_reply_due_at: datetime | None = None,
    resolve_due_at: datetime | None = None,
    dispatch_due_at: datetime | None = None,
) -> tuple[Case, CaseEvent]:
    """A new case and the first line of its history (by the customer, unless staff took
    the report)."""
    case = Case(
        case_id=case_id,
        case_number=case_number,
        kind=complaint.kind,
        status=CaseStatus.NEW,
        customer=complaint.customer,
        order_ref=complaint.order_ref,
        product=complaint.product,
        serial_no=complaint.serial_no,
        purchase_date=complaint.purchase_date,
        description=complaint.description,
        language=language,
        channel=channel,
        created_at=now,
        updated_at=now,
        version=1,
        # A planned visit and an installation project are the company's own initiative:
        # no first reply is owed; a project runs for months, not to a 5-day target.
        first_reply_due_at=None if complaint.kind in NO_FIRST_REPLY_KINDS else first_reply_due_at,
        resolve_due_at=None if complaint.kind is CaseKind.INSTALLATION_PROJECT
        else resolve_due_at,
        # A repair or a planned visit is dispatched within the promised time.
        field_service=FieldService(dispatch_due_at=dispatch_due_at)
        if complaint.kind in FIELD_SERVICE_KINDS
        else None,
    )
    event = CaseEvent(
        case_id=case_id,
        at=now,
        actor=actor or f"customer:{complaint.customer.email}",
        action="case_received",
        before=None,
        after={"status": case.status.value, "kind": case.kind.value},
        visible_to_customer=True,
        version=case.version,
    )
    return case, event


def choose_language(
    explicit: Language | str | None, accept_language: str | None, default: Language
) -> Language:
    """The language the customer asked for, else the browser's first choice we speak."""
    if explicit:
        try:
            return Language(explicit)
        except ValueError:
            pass
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if quality <= 0:  # q=0: "not this language" (RFC 9110)
            continue
        ranked.append((-quality, position, tag.strip().lower()))
    for _, _, tag in sorted(ranked):
        primary = tag.split("-")[0]
        if primary in Language._value2member_map_:
            return Language(primary)
    return default
