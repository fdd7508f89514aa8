"""A company's policies: the deadlines, amounts and promises of its service processes.

Every number in ``docs/processes.md`` is a default a company must be able to change. The
defaults live here (the model) and in ``chalicelib/policies/default.toml`` (the same values,
commented, for a company to copy and edit); a test keeps the two equal.

Reading a company's file (``load_policies``):

- **Partial files are allowed.** A company's file only needs the settings it changes; every
  setting it leaves out keeps its default. Tables merge key by key with the defaults, the
  ``[approvals]`` table too: ``full_refund = { above = 1000 }`` changes that amount and keeps
  the default role, a remedy not named keeps its default rule, and a remedy added needs both
  ``above`` and ``role``.
- Any key the model does not know is an error (a typo must not silently keep a default).
- Every problem is reported at once, each as ``<file>: <key>: <problem>``.

Pure domain code: no I/O except reading the file handed to ``load_policies``.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from datetime import datetime, time
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)

from chalicelib.domain.calendar import WorkingCalendar, check_country, check_timezone
from chalicelib.domain.remedies import Remedy
from chalicelib.domain.staff import APPROVAL_LADDER, Role

_strict = ConfigDict(frozen=True, extra="forbid", defer_build=True)


# --- durations ----------------------------------------------------------------------------


class TimeUnit(StrEnum):
    HOURS = "hours"  # elapsed hours, round the clock
    DAYS = "days"  # calendar days, weekends and holidays included
    WORKING_DAYS = "working days"  # 工作日: weekends and public holidays skipped, 调休 counted
    BUSINESS_HOURS = "business hours"  # hours within business hours of working days


_UNIT_NAMES: dict[str, TimeUnit] = {
    "hour": TimeUnit.HOURS,
    "hours": TimeUnit.HOURS,
    "day": TimeUnit.DAYS,
    "days": TimeUnit.DAYS,
    "working day": TimeUnit.WORKING_DAYS,
    "working days": TimeUnit.WORKING_DAYS,
    "business day": TimeUnit.WORKING_DAYS,
    "business days": TimeUnit.WORKING_DAYS,
    "business hour": TimeUnit.BUSINESS_HOURS,
    "business hours": TimeUnit.BUSINESS_HOURS,
}
_WHOLE_UNITS = frozenset({TimeUnit.DAYS, TimeUnit.WORKING_DAYS})
_UNIT_HELP = ", ".join(unit.value for unit in TimeUnit)
_NUMBER = r"[+-]?\d+(?:\.\d+)?"
_DURATION = re.compile(rf"^\s*(?P<amount>{_NUMBER})\s*(?P<unit>\D.*?)?\s*$")
_RANGE = re.compile(
    rf"^\s*(?P<min>{_NUMBER})\s*(?:-|–|—|~|to)\s*(?P<max>{_NUMBER})\s*(?P<unit>\D.*?)?\s*$"
)


def _unit(text: object) -> TimeUnit:
    if isinstance(text, TimeUnit):
        return text
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"a unit is needed (use {_UNIT_HELP})")
    unit = _UNIT_NAMES.get(" ".join(text.lower().split()))
    if unit is None:
        raise ValueError(f"unknown unit {text.strip()!r} (use {_UNIT_HELP})")
    return unit


def _number(amount: Decimal) -> str:
    return format(amount.normalize(), "f")


def _unit_text(unit: TimeUnit, amount: Decimal) -> str:
    return unit.value.removesuffix("s") if amount == 1 else unit.value


# Far beyond any promise to a customer; stops a slip of the keyboard from overflowing dates.
_LONGEST = 10_000


def _check_amount(amount: Decimal, unit: TimeUnit, shown: str) -> None:
    if amount < 0:
        raise ValueError(f"must not be negative (got {shown})")
    if amount > _LONGEST:
        raise ValueError(f"must be at most {_LONGEST} {unit.value} (got {shown})")
    if unit in _WHOLE_UNITS and amount != amount.to_integral_value():
        raise ValueError(f"{unit.value} must be a whole number (got {shown})")


class Duration(BaseModel):
    """How long a promise runs: "3 days", "24 hours", "5 working days", "2 business hours"
    (singular forms too, e.g. "1 working day"), or a table ``{amount = 3, unit = "days"}``.
    Written back as its text."""

    model_config = _strict

    amount: Decimal
    unit: TimeUnit

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, value: Any) -> Any:
        if isinstance(value, str):
            if _RANGE.match(value):
                raise ValueError(f"expected one duration, not a range (got {value!r})")
            match = _DURATION.match(value)
            if match is None:
                raise ValueError(
                    "expected an amount and a unit, e.g. '3 days', '24 hours', "
                    f"'5 working days' or '2 business hours' (got {value!r})"
                )
            return {"amount": match["amount"], "unit": _unit(match["unit"])}
        if isinstance(value, Mapping):
            if "unit" in value:
                return {**value, "unit": _unit(value["unit"])}
            return value
        if isinstance(value, Duration):
            return value
        raise ValueError(
            "expected a text such as '3 days' or a table {amount = 3, unit = \"days\"} "
            f"(got {value!r})"
        )

    @model_validator(mode="after")
    def _sensible(self) -> Self:
        _check_amount(self.amount, self.unit, str(self))
        return self

    @model_serializer
    def _as_text(self) -> str:
        return str(self)

    def __str__(self) -> str:
        return f"{_number(self.amount)} {_unit_text(self.unit, self.amount)}"


class DurationRange(BaseModel):
    """A span such as "20-30 working days" (also "20–30", "20 to 30"), or a table
    ``{min = 20, max = 30, unit = "working days"}``. One duration ("25 working days") is a
    range of one value. Written back as its text."""

    model_config = _strict

    min: Decimal
    max: Decimal
    unit: TimeUnit

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, value: Any) -> Any:
        if isinstance(value, str):
            match = _RANGE.match(value)
            if match is not None:
                return {"min": match["min"], "max": match["max"], "unit": _unit(match["unit"])}
            single = _DURATION.match(value)
            if single is not None:
                amount, unit = single["amount"], _unit(single["unit"])
                return {"min": amount, "max": amount, "unit": unit}
            raise ValueError(
                f"expected a range with a unit, e.g. '20-30 working days' (got {value!r})"
            )
        if isinstance(value, Mapping):
            if "unit" in value:
                return {**value, "unit": _unit(value["unit"])}
            return value
        if isinstance(value, DurationRange):
            return value
        raise ValueError(
            "expected a text such as '20-30 working days' or a table "
            f'{{min = 20, max = 30, unit = "working days"}} (got {value!r})'
        )

    @model_validator(mode="after")
    def _sensible(self) -> Self:
        _check_amount(self.min, self.unit, str(self))
        _check_amount(self.max, self.unit, str(self))
        if self.min > self.max:
            raise ValueError(f"the shortest is longer than the longest (got {self})")
        return self

    @model_serializer
    def _as_text(self) -> str:
        return str(self)

    def __str__(self) -> str:
        if self.min == self.max:
            return f"{_number(self.min)} {_unit_text(self.unit, self.min)}"
        return f"{_number(self.min)}-{_number(self.max)} {self.unit.value}"

    @property
    def shortest(self) -> Duration:
        return Duration(amount=self.min, unit=self.unit)

    @property
    def longest(self) -> Duration:
        return Duration(amount=self.max, unit=self.unit)


# --- sections -----------------------------------------------------------------------------


class BusinessHours(BaseModel):
    """Opening hours on working days, local time (the day shift of [001])."""

    model_config = _strict

    start: time = time(9, 0)
    end: time = time(17, 30)

    @field_validator("start", "end", mode="before")
    @classmethod
    def _clock(cls, value: Any) -> Any:
        """Accept "9:00" as well as "09:00" (and TOML's local times)."""
        if isinstance(value, str) and re.fullmatch(r"\s*\d:\d\d(:\d\d)?\s*", value):
            return "0" + value.strip()
        return value

    @model_validator(mode="after")
    def _in_order(self) -> Self:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("business hours are local times, without a time zone")
        if not self.start < self.end:
            raise ValueError(f"start must be before end (got {self.start:%H:%M}-{self.end:%H:%M})")
        return self


class CalendarPolicy(BaseModel):
    """Which working-day calendar deadlines are counted in."""

    model_config = _strict

    country: str = "CN"
    subdivision: str | None = None
    timezone: str = "Asia/Shanghai"
    business_hours: BusinessHours = Field(default_factory=BusinessHours)

    @field_validator("country")
    @classmethod
    def _known_country(cls, value: str) -> str:
        check_country(value)
        return value

    @field_validator("subdivision")
    @classmethod
    def _known_subdivision(cls, value: str | None, info: ValidationInfo) -> str | None:
        country = info.data.get("country")
        if value is not None and country is not None:
            check_country(country, value)
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        check_timezone(value)
        return value


def _duration(text: str) -> Any:
    return Field(default_factory=lambda: Duration.model_validate(text))


class ShopPolicy(BaseModel):
    """The web-shop complaint flow [000, 001]: promises to the customer and internal deadlines.
    Each one counts from the moment its step starts (the decision, the request, ...)."""

    model_config = _strict

    # 退款申请单: the refund request is submitted within 3 days of the decision.
    refund_request_within: Duration = _duration("3 days")
    # Finance (财务) posts a submitted refund. NOT from the documents: our default.
    refund_posting_within: Duration = _duration("2 working days")
    # 补发/重发: reship a wrong item, a missing part, or a lost parcel within 3 days.
    reship_within: Duration = _duration("3 days")
    # 物流: check within 5 days that the parcel's tracking is online.
    tracking_check_within: Duration = _duration("5 days")
    # 换货 (in-sale): ship the changed order within 3 working days.
    exchange_ship_within: Duration = _duration("3 working days")
    # Credit-card refunds: what staff tell the customer about when the money arrives.
    credit_card_refund_arrival: DurationRange = Field(
        default_factory=lambda: DurationRange.model_validate("20-30 working days")
    )
    # How long the customer has to send the photos of product and package before the case
    # is followed up. NOT from the documents: our default.
    photos_requested_reply_within: Duration = _duration("3 days")


class ServiceLevels(BaseModel):
    """Targets every case is held to, and what happens when one is missed."""

    model_config = _strict

    # First reply to the customer ([000]: "reply in 1 h"; counted in business hours here, so
    # a report on a Sunday night is due on Monday morning).
    first_reply_within: Duration = _duration("1 business hour")
    # The case resolved. NOT from the documents: our default.
    resolve_within: Duration = _duration("5 working days")
    # A missed deadline is e-mailed to the case's owner at once, and escalated to the
    # supervisors and the service director this long after. NOT from the documents.
    escalate_after: Duration = _duration("4 business hours")


class FollowUpPolicy(BaseModel):
    """回访: the follow-up calls after a case is resolved [003, 004]."""

    model_config = _strict

    # The first call: from this long after the product was handed back (the resolution; a
    # workshop repair's device collected), never before the resolution …
    first_call_after: Duration = _duration("3 days")
    # … and made within this long of falling due ("3 days to 1 week" [003, 004]); a call
    # still not made then is reminded to the case's owner. Working days, so the window ends
    # at the close of a working day and a holiday (National Day) lengthens it: a call due
    # when the office is closed still has its days to be made, and nobody is reminded while
    # the office is closed. 3 working days after a call due on a Thursday end on Tuesday
    # evening, about a week after the resolution.
    call_window: Duration = _duration("3 working days")
    # The second call, this long after the first.
    second_call_after: Duration = _duration("7 days")
    # Nobody answered: try again at the opening of the next working day, at most this many
    # tries per call, and only inside the call's window (the tries share it: a try that
    # would fall after it ends the call unanswered).
    call_attempts: int = Field(default=3, ge=1, le=10)
    # A question the call could not answer is reported to the supervisor after this.
    unanswered_question_within: Duration = _duration("2 days")
    # Case kinds without follow-up calls (questions and pre-sale registrations).
    skip_kinds: tuple[str, ...] = ("enquiry", "wholesale_registration")

    @field_validator("skip_kinds")
    @classmethod
    def _known_kinds(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        from chalicelib.domain.case import CaseKind

        unknown = [kind for kind in value if kind not in CaseKind._value2member_map_]
        if unknown:
            known = ", ".join(kind.value for kind in CaseKind)
            raise ValueError(f"unknown case kind {', '.join(unknown)} (use {known})")
        return value


class ApprovalRule(BaseModel):
    """A remedy worth more than ``above`` (the shop's currency) waits for ``role``."""

    model_config = _strict

    above: Decimal = Field(ge=0, max_digits=12, decimal_places=2)
    role: Role

    @field_validator("role")
    @classmethod
    def _can_approve(cls, role: Role) -> Role:
        if role not in APPROVAL_LADDER:
            ladder = ", ".join(r.value for r in APPROVAL_LADDER)
            raise ValueError(f"{role.value} cannot approve resolutions (use one of: {ladder})")
        return role


def _default_approvals() -> dict[Remedy, ApprovalRule]:
    # NOT from the documents: the web-shop flow gives no amounts; these are our defaults.
    supervisor = ApprovalRule(above=Decimal(500), role=Role.SUPERVISOR)
    return {
        Remedy.FULL_REFUND: supervisor,
        Remedy.PARTIAL_REFUND: supervisor,
        Remedy.REFUND_DIFFERENCE: supervisor,
    }


class ResponsePromise(BaseModel):
    """What a product line promises once a repair is reported: a reply, a technician on
    site, the unit running again (else a loan unit). Each counts from the dispatch."""

    model_config = _strict
    reply_within: Duration = _duration("12 hours")
    on_site_within: Duration = _duration("24 hours")
    fixed_within: Duration = _duration("24 hours")


class ApprovalTier(BaseModel):
    """Parts requests worth up to ``up_to`` (the last tier: any amount) need every one of
    ``roles`` to approve."""

    model_config = _strict
    up_to: Decimal | None = Field(default=None, ge=0, max_digits=12, decimal_places=2)
    roles: tuple[Role, ...] = Field(min_length=1)


def _tiers(*tiers: tuple[int | None, tuple[Role, ...]]) -> Any:
    return Field(
        default_factory=lambda: tuple(
            ApprovalTier(up_to=None if up_to is None else Decimal(up_to), roles=roles)
            for up_to, roles in tiers
        )
    )


def _check_tiers(tiers: tuple[ApprovalTier, ...]) -> tuple[ApprovalTier, ...]:
    if not tiers:
        raise ValueError("at least one tier is needed")
    if tiers[-1].up_to is not None:
        raise ValueError("the last tier is for any amount above the others: leave out up_to")
    limits = [tier.up_to for tier in tiers[:-1]]
    if any(limit is None for limit in limits):
        raise ValueError("only the last tier may leave out up_to")
    if limits != sorted(limits) or len(set(limits)) != len(limits):  # type: ignore[type-var]
        raise ValueError("the up_to amounts must increase from tier to tier")
    return tiers


class Partner(BaseModel):
    """A dealer (代理商/经销商) or a supplier (供应商): who they are and where forms go."""

    model_config = _strict
    name: str = Field(min_length=1, max_length=200)
    email: str | None = Field(default=None, max_length=254)
    # Dealers: the regions they serve for the company.
    regions: tuple[str, ...] = ()


_S, _D, _Q = Role.SERVICE_DIRECTOR, Role.SUPPLY_VP, Role.QA_MANAGER


class FieldServicePolicy(BaseModel):
    """The field-service and warranty flow [003, 004]: dispatch, the parties' promises,
    spare parts, old parts and fees."""

    model_config = _strict
    # 派工: a repair request is dispatched within this time of being reported.
    dispatch_within: Duration = _duration("24 hours")
    # The dealer returns the service form signed by the customer within this time.
    dealer_form_within: Duration = _duration("7 days")
    # A dealer arranges the task within this time of the dispatch (its reply) …
    dealer_arrange_within: Duration = _duration("2 hours")
    # … and the case's owner (the service clerk) is told after this time if it has not.
    dealer_check_after: Duration = _duration("4 hours")
    # The supplier whose part failed replies within this time …
    supplier_reply_within: Duration = _duration("24 hours")
    # … and returns the signed service form within this time.
    supplier_form_within: Duration = _duration("5 working days")
    # 三包备件: an approved parts request is shipped within this time of the last approval.
    parts_ship_within: Duration = _duration("2 working days")
    # 三包旧件: the replaced part is back within this time of the new part's shipping.
    old_part_return_within: Duration = _duration("30 days")
    # Urgent local purchase: receipt and reimbursement within this time of the approval.
    local_purchase_settle_within: Duration = _duration("30 days")
    # Non-warranty fees not collected on the spot are due within this time (the service
    # director's consent needed).
    fees_due_within: Duration = _duration("30 days")
    # Warranty for a unit registered without its own terms: months from acceptance (or sale).
    default_warranty_months: int = Field(default=24, ge=0, le=600)
    # Response promises by product line; "default" for lines not named.
    response: Mapping[str, ResponsePromise] = Field(
        default_factory=lambda: {"default": ResponsePromise()}
    )
    # Who approves a warranty parts request (三包备件), by amount …
    parts_approvals: tuple[ApprovalTier, ...] = _tiers(
        (500, (_S,)), (2000, (_Q,)), (None, (Role.SERVICE_VP, _D))
    )
    # … and parts beyond the warranty promise (非正常备件).
    extra_parts_approvals: tuple[ApprovalTier, ...] = _tiers(
        (1000, (_S, _Q, Role.SERVICE_VP)),
        (None, (_S, _Q, Role.SERVICE_VP, Role.SALES_VP, _D)),
    )
    # Planned maintenance: a visit every this many months during the warranty, and after it.
    visit_every_months_in_warranty: int = Field(default=3, ge=1, le=120)
    visit_every_months_after_warranty: int = Field(default=12, ge=1, le=120)
    # After the warranty, yearly visits go on while the unit is in service: this many are
    # kept planned ahead, each one opened plans the next (0: no visits after the warranty).
    visits_after_warranty: int = Field(default=1, ge=0, le=50)
    dealers: Mapping[str, Partner] = Field(default_factory=dict)
    suppliers: Mapping[str, Partner] = Field(default_factory=dict)

    @field_validator("parts_approvals", "extra_parts_approvals")
    @classmethod
    def _ordered(cls, tiers: tuple[ApprovalTier, ...]) -> tuple[ApprovalTier, ...]:
        return _check_tiers(tiers)

    @field_validator("response")
    @classmethod
    def _has_default(cls, value: Mapping[str, ResponsePromise]) -> Mapping[str, ResponsePromise]:
        if "default" not in value:
            raise ValueError("a 'default' product line is needed")
        return value

    def promise_for(self, product_line: str | None) -> ResponsePromise:
        return self.response.get(product_line or "default", self.response["default"])

    def approvers_for(self, amount: Decimal, beyond_warranty: bool) -> tuple[Role, ...]:
        """Every role that must approve a parts request of this amount."""
        tiers = self.extra_parts_approvals if beyond_warranty else self.parts_approvals
        for tier in tiers:
            if tier.up_to is None or amount <= tier.up_to:
                return tier.roles
        raise AssertionError("the last tier takes any amount")

    def dealer_for_region(self, region: str | None) -> str | None:
        if not region:
            return None
        wanted = region.casefold()
        for dealer_id, dealer in sorted(self.dealers.items()):
            if any(r.casefold() == wanted for r in dealer.regions):
                return dealer_id
        return None


class Policies(BaseModel):
    """Everything a company may change. ``Policies()`` is the defaults."""

    model_config = _strict

    calendar: CalendarPolicy = Field(default_factory=CalendarPolicy)
    shop: ShopPolicy = Field(default_factory=ShopPolicy)
    service_levels: ServiceLevels = Field(default_factory=ServiceLevels)
    follow_up: FollowUpPolicy = Field(default_factory=FollowUpPolicy)
    # Which remedies need an approval, above which amount, by whom (主管 = supervisor).
    approvals: Mapping[Remedy, ApprovalRule] = Field(default_factory=_default_approvals)
    field_service: FieldServicePolicy = Field(default_factory=FieldServicePolicy)

    def calendar_for(self) -> WorkingCalendar:
        """The working calendar of these policies (built once per calendar section)."""
        return _working_calendar(self.calendar)

    def deadline(self, start: datetime, duration: Duration) -> datetime:
        """When a promise of ``duration`` made at ``start`` is due, in UTC."""
        return self.calendar_for().deadline(start, duration)

    def first_reply_due(self, opened_at: datetime) -> datetime:
        return self.deadline(opened_at, self.service_levels.first_reply_within)

    def resolve_due(self, at: datetime) -> datetime:
        return self.deadline(at, self.service_levels.resolve_within)

    def dispatch_due(self, reported_at: datetime) -> datetime:
        return self.deadline(reported_at, self.field_service.dispatch_within)

    def approver_for(self, remedy: Remedy, amount: Decimal | None) -> Role | None:
        """The role that must approve this remedy for this amount, or None if nobody
        must. A remedy without an amount needs no approval."""
        rule = self.approvals.get(remedy)
        if rule is None or amount is None or amount <= rule.above:
            return None
        return rule.role


@lru_cache(maxsize=8)
def _working_calendar(section: CalendarPolicy) -> WorkingCalendar:
    return WorkingCalendar(
        country=section.country,
        subdivision=section.subdivision,
        timezone=section.timezone,
        day_start=section.business_hours.start,
        day_end=section.business_hours.end,
    )


# --- reading a company's file -------------------------------------------------------------


class PoliciesError(ValueError):
    """A policies file that cannot be used. The message names the file, and every bad key
    with its problem, one per line."""

    def __init__(self, path: Path, problems: list[tuple[str, str]]) -> None:
        self.path = path
        self.problems = problems
        lines = [
            f"{path}: {key}: {problem}" if key else f"{path}: {problem}"
            for key, problem in problems
        ]
        super().__init__("\n".join(lines))


def _merged(defaults: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``overrides`` over ``defaults``: tables merge key by key, anything else replaces."""
    result = dict(defaults)
    for key, value in overrides.items():
        default = result.get(key)
        if isinstance(default, dict) and isinstance(value, dict):
            result[key] = _merged(default, value)
        else:
            result[key] = value
    return result


def _problem(error: Any) -> tuple[str, str]:
    loc = [str(part) for part in error["loc"]]
    is_key = bool(loc) and loc[-1] == "[key]"
    key = ".".join(part for part in loc if part != "[key]")
    kind = error["type"]
    if kind == "extra_forbidden":
        return key, "unknown setting (is it misspelt? default.toml lists every setting)"
    if is_key and loc[0] == "approvals":
        return key, f"unknown remedy (use {', '.join(remedy.value for remedy in Remedy)})"
    if kind == "missing":
        return key, "missing"
    if kind == "value_error":
        return key, str(error["ctx"]["error"])
    message = error["msg"]
    return key, f"{message[:1].lower()}{message[1:]} (got {error['input']!r})"


def parse_policies(data: dict[str, Any], path: Path) -> Policies:
    """Policies from a file's parsed content over the defaults; ``path`` names it in errors."""
    defaults = Policies().model_dump(mode="json", exclude_none=True)
    try:
        return Policies.model_validate(_merged(defaults, data))
    except ValidationError as invalid:
        raise PoliciesError(path, [_problem(error) for error in invalid.errors()]) from None


def load_policies(path: Path) -> Policies:
    """Read a company's policies file (TOML). Settings it leaves out keep their defaults.

    Raises PoliciesError naming the file: missing or unreadable, not valid TOML (with the
    line), or invalid values (every bad key with its problem).
    """
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise PoliciesError(path, [("", "no such file")]) from None
    except OSError as unreadable:
        raise PoliciesError(path, [("", f"cannot be read ({unreadable.strerror})")]) from None
    except UnicodeDecodeError as undecodable:
        raise PoliciesError(path, [("", f"not UTF-8 text (byte {undecodable.start})")]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as bad:
        raise PoliciesError(path, [("", f"not valid TOML: {bad}")]) from None
    return parse_policies(data, path)
