"""Sold units (equipment with a serial number) and their warranty (三包) terms.

A unit is what an equipment maker sold and now looks after: a forklift, a switchgear
cabinet, a computer. Its warranty runs for some months from acceptance (or from the sale
when there was no acceptance), and for some operating hours when the unit counts them —
whichever ends first [004: forklifts 1 year or 1,500 hours].

Pure domain code: the day and the policies come in as arguments.
"""

from __future__ import annotations

import calendar
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field, ValidationError

from chalicelib.domain.case import Customer, OneLine
from chalicelib.domain.staff import APPROVAL_LADDER, FRONT_LINE, Role


def _not_formula(value: str) -> str:
    """A registry value is data: text that a spreadsheet would run as a formula is refused
    (it came from a cell holding a formula, or was typed to look like one)."""
    if value.lstrip().startswith("="):
        raise ValueError("looks like a spreadsheet formula, not a value")
    return value


RegistryText = Annotated[OneLine, AfterValidator(_not_formula)]


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later (the month's last day when it is shorter)."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


class Retirement(BaseModel):
    """Why a unit left service (scrapped, sold on, returned), who said so, and when. A
    retired unit stays in the registry for its history; it gets no more planned visits."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    at: datetime
    by: str = Field(max_length=100)  # who retired it (staff:<id>, cli:<login>)
    reason: RegistryText = Field(min_length=1, max_length=500)


class Unit(BaseModel):
    """One sold unit in the registry, keyed by its serial number."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    serial_no: RegistryText = Field(max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")
    model: RegistryText = Field(max_length=200)
    product_line: RegistryText = Field(default="default", max_length=64)
    customer_name: RegistryText = Field(max_length=200)
    customer_email: EmailStr = Field(max_length=254)  # every case needs a reachable customer
    customer_phone: RegistryText | None = Field(default=None, max_length=40)
    address: RegistryText | None = Field(default=None, max_length=500)
    region: RegistryText | None = Field(default=None, max_length=100)
    dealer: RegistryText | None = Field(default=None, max_length=64)  # a dealer id (policies)
    sold_on: date
    accepted_on: date | None = None  # 验收: the warranty counts from here when known
    operating_hours: int | None = Field(default=None, ge=0, le=10_000_000)
    hours_read_on: date | None = None
    hours_read_by: str | None = Field(default=None, max_length=100)  # set by the registry
    warranty_months: int | None = Field(default=None, ge=0, le=600)
    warranty_hours: int | None = Field(default=None, ge=0, le=10_000_000)
    maintenance_contract: bool = False  # 合同: serviced under a maintenance contract (B)
    registered_at: datetime | None = None
    retired: Retirement | None = None  # set by retiring the unit, never at registration

    @property
    def warranty_starts_on(self) -> date:
        return self.accepted_on or self.sold_on

    def warranty_ends_on(self, default_months: int) -> date:
        months = self.warranty_months
        if months is None:
            months = default_months if self.warranty_hours is None else 0
        if months == 0 and self.warranty_hours is not None and self.warranty_months is None:
            return date.max  # hours only: the period does not end by date
        return add_months(self.warranty_starts_on, months)


WarrantyReason = Literal[
    "in_period",  # inside the warranty period and hours
    "no_unit",  # the serial number is not in the registry
    "period_ended",  # the warranty months are over
    "hours_exceeded",  # the operating hours are past the warranty hours
    "misuse",  # the technician found misuse
    "not_original_part",  # a part that is not original caused the fault
    "not_sold_yet",  # the day is before the unit's sale (a data error)
    # In the period, but the warranty has an hours limit and no reading is known (none
    # given now, none in the registry): decided by the date alone, the hours not checked.
    "hours_unknown",
]


@dataclass(frozen=True)
class WarrantyStanding:
    """Whether a unit is in its warranty on a day, with every reason it is not (or, when it
    is, ``in_period`` and ``hours_unknown`` if the hours could not be checked)."""

    in_warranty: bool
    reasons: tuple[WarrantyReason, ...]
    ends_on: date | None
    hours_limit: int | None
    hours: int | None = None  # the reading the decision used (given now, else the registry's)

    @property
    def hours_checked(self) -> bool:
        return self.hours_limit is None or self.hours is not None


def warranty_standing(
    unit: Unit | None,
    *,
    on: date,
    operating_hours: int | None,
    default_months: int,
    misuse: bool = False,
    original_parts: bool = True,
) -> WarrantyStanding:
    """三包 or not: in the period and under the hours (whichever ends first), not misused,
    and only original parts. ``operating_hours`` is what the technician read now; without
    it the registry's last reading counts. When the warranty has an hours limit and neither
    is known, the date alone decides and the reasons say ``hours_unknown`` (staff see the
    hours were not checked; the customer is told only the decision)."""
    reasons: list[WarrantyReason] = []
    ends_on: date | None = None
    hours_limit: int | None = None
    hours: int | None = None
    if unit is None:
        reasons.append("no_unit")
    else:
        ends_on = unit.warranty_ends_on(default_months)
        hours_limit = unit.warranty_hours
        hours = operating_hours if operating_hours is not None else unit.operating_hours
        if on < unit.sold_on:
            reasons.append("not_sold_yet")
        elif on > ends_on:
            reasons.append("period_ended")
        if hours_limit is not None and hours is not None and hours > hours_limit:
            reasons.append("hours_exceeded")
    if misuse:
        reasons.append("misuse")
    if not original_parts:
        reasons.append("not_original_part")
    if reasons:
        return WarrantyStanding(False, tuple(reasons), ends_on, hours_limit, hours)
    if hours_limit is not None and hours is None:
        return WarrantyStanding(True, ("in_period", "hours_unknown"), ends_on, hours_limit)
    return WarrantyStanding(True, ("in_period",), ends_on, hours_limit, hours)


def _after_warranty(ends: date, every_after: int, n: int) -> date:
    """The n-th visit after the warranty (n >= 1): every ``every_after`` months from its end."""
    return add_months(ends, every_after * n)


def planned_visits(
    unit: Unit,
    *,
    default_months: int,
    every_in_warranty: int,
    every_after: int,
    visits_after: int,
    from_day: date | None = None,
) -> list[date]:
    """The planned maintenance visits of a unit (定期保养) from ``from_day`` on (None: all):
    every ``every_in_warranty`` months from the warranty's start while it runs, then every
    ``every_after`` months after its end, of which the next ``visits_after`` are planned
    ahead (each one opened plans the next: ``next_visit_after_warranty``). A warranty of
    hours only has no end by date, so no visits are planned for it."""
    start, ends = unit.warranty_starts_on, unit.warranty_ends_on(default_months)
    if ends == date.max:
        return []
    first = from_day or date.min
    visits: list[date] = []
    n = 1
    while (day := add_months(start, every_in_warranty * n)) <= ends:
        if day >= first:
            visits.append(day)
        n += 1
    planned_after, n = 0, 1
    while planned_after < visits_after:
        day = _after_warranty(ends, every_after, n)
        n += 1
        if day >= first:
            visits.append(day)
            planned_after += 1
    return visits


def next_visit_after_warranty(
    unit: Unit,
    opened: date,
    *,
    default_months: int,
    every_after: int,
    visits_after: int,
) -> date | None:
    """The visit to plan when the visit of ``opened`` becomes a case: after the warranty a
    visit comes every ``every_after`` months for as long as the unit is in service, with
    ``visits_after`` of them planned ahead, so each one opened plans the one ``visits_after``
    steps later. None: the visit was in the warranty (those are all planned already), the
    company plans no visits after it (0), the warranty is of hours only, or the unit is
    retired."""
    ends = unit.warranty_ends_on(default_months)
    if unit.retired is not None or ends == date.max or visits_after == 0 or opened <= ends:
        return None
    done = 0  # how many of the visits after the warranty are on or before this one
    while _after_warranty(ends, every_after, done + 1) <= opened:
        done += 1
    return _after_warranty(ends, every_after, done + visits_after)


# --- registering units (the registry sheet and the staff API) ----------------------------

# The registry's columns, and the headings staff give them in a workbook (English or
# Chinese). A heading is matched without regard to case, spaces or hyphens.
COLUMN_HEADINGS: dict[str, tuple[str, ...]] = {
    "serial_no": ("serial_no", "serial", "序列号", "机号"),
    "model": ("model", "型号"),
    "product_line": ("product_line", "产品线"),
    "customer_name": ("customer_name", "customer", "客户", "客户名称"),
    "customer_email": ("customer_email", "email", "邮箱"),
    "customer_phone": ("customer_phone", "phone", "电话"),
    "address": ("address", "地址"),
    "region": ("region", "区域", "地区"),
    "dealer": ("dealer", "代理商", "经销商"),
    "sold_on": ("sold_on", "销售日期"),
    "accepted_on": ("accepted_on", "验收日期"),
    "operating_hours": ("operating_hours", "工作小时", "小时数"),
    "hours_read_on": ("hours_read_on", "读数日期"),
    "warranty_months": ("warranty_months", "保修月数"),
    "warranty_hours": ("warranty_hours", "保修小时"),
    "maintenance_contract": ("maintenance_contract", "保养合同"),
}
REQUIRED_COLUMNS = ("serial_no", "model", "customer_name", "customer_email", "sold_on")
DATE_COLUMNS = frozenset({"sold_on", "accepted_on", "hours_read_on"})
NUMBER_COLUMNS = frozenset({"operating_hours", "warranty_months", "warranty_hours"})
FLAG_COLUMNS = frozenset({"maintenance_contract"})


def heading_key(text: str) -> str:
    return "_".join(text.replace("-", " ").split()).casefold()


COLUMN_FOR_HEADING = {
    heading_key(heading): column
    for column, headings in COLUMN_HEADINGS.items()
    for heading in headings
}


@dataclass(frozen=True)
class Problem:
    """Why a unit cannot be registered: the field and what is wrong with it."""

    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


def registration_problems(unit: Unit, *, today: date, dealers: Collection[str]) -> list[Problem]:
    """What the model alone cannot know: dates still to come (``today`` is the company's
    day), acceptance before the sale, a dealer the company does not have (checked only when
    the policies name dealers), and a customer a case could not be opened for (each planned
    visit becomes a case for them)."""
    problems = [
        Problem(name, "cannot be in the future")
        for name in ("sold_on", "accepted_on", "hours_read_on")
        if (day := getattr(unit, name)) is not None and day > today
    ]
    if unit.accepted_on is not None and unit.accepted_on < unit.sold_on:
        problems.append(Problem("accepted_on", "cannot be before the sale (sold_on)"))
    if unit.retired is not None:
        problems.append(Problem("retired", "a unit is registered in service; it is retired "
                                "later (DELETE /api/staff/units/{serial_no})"))
    if unit.dealer is not None and dealers and unit.dealer not in dealers:
        known = ", ".join(sorted(dealers))
        problems.append(Problem("dealer", f"unknown dealer '{unit.dealer}' (known: {known})"))
    try:
        Customer(name=unit.customer_name, email=unit.customer_email, phone=unit.customer_phone)
    except ValidationError as error:
        for detail in error.errors(include_url=False):
            field = f"customer_{detail['loc'][0]}"
            message = detail["msg"].removeprefix("Value error, ")
            if detail["type"] == "string_pattern_mismatch":
                message = "digits, spaces and + ( ) . / - only"
            problems.append(Problem(field, message))
    return problems


def with_terms_fixed(unit: Unit, *, default_months: int, registered_at: datetime) -> Unit:
    """The unit as registered: a unit sold without its own terms keeps the default warranty
    of the day it was registered, whatever the policies say later."""
    update: dict[str, object] = {"registered_at": registered_at}
    if unit.warranty_months is None and unit.warranty_hours is None:
        update["warranty_months"] = default_months
    return unit.model_copy(update=update)


@dataclass(frozen=True)
class PlannedVisit:
    """A planned maintenance visit (定期保养) of a unit: its case is opened at ``due_at``,
    the opening of business on ``day``."""

    serial_no: str
    day: date
    due_at: datetime


# --- correcting and retiring units -------------------------------------------------------

# What staff may correct on a registered unit. The serial number is the unit itself (a wrong
# one: retire the unit and register the right one); registered_at, hours_read_by and
# retired are the registry's own record.
EDITABLE_FIELDS = (
    "model", "product_line", "customer_name", "customer_email", "customer_phone", "address",
    "region", "dealer", "sold_on", "accepted_on", "operating_hours", "hours_read_on",
    "warranty_months", "warranty_hours", "maintenance_contract",
)
# What decides the warranty (三包: what is repaired free) and the planned visits: the days it
# counts from, its terms, the contract, and the hour meter (a correction may lower it).
TERMS_FIELDS = frozenset({
    "sold_on", "accepted_on", "warranty_months", "warranty_hours", "maintenance_contract",
    "operating_hours", "hours_read_on",
})
# The fields whose change moves the planned visits.
VISIT_FIELDS = ("sold_on", "accepted_on", "warranty_months", "warranty_hours")
_NOT_EDITABLE = {
    "serial_no": "cannot be changed: retire this unit and register the right serial number",
    "registered_at": "kept by the registry",
    "hours_read_by": "kept by the registry",
    "retired": "a unit is retired with DELETE /api/staff/units/{serial_no}",
}

# Who corrects the registry: the front line, who register units and take the customers'
# calls (contact details, dealer, region, model), and the managers above them. What decides
# the warranty is a manager's correction — as approvals climb (domain/staff.py): supervisor,
# service director, service VP — and so is retiring a unit.
UNIT_EDITORS = FRONT_LINE | set(APPROVAL_LADDER)
TERMS_EDITORS = frozenset(APPROVAL_LADDER)
UNIT_RETIRERS = frozenset(APPROVAL_LADDER)


def _roles_text(roles: Collection[Role]) -> str:
    return ", ".join(sorted(role.value for role in roles))


def correction_refusals(role: Role, fields: Collection[str]) -> list[Problem]:
    """The fields this role may not correct (each a 403 problem); empty: allowed."""
    if role not in UNIT_EDITORS:
        return [Problem("role", f"a {role.value} does not correct the registry (roles that "
                        f"do: {_roles_text(UNIT_EDITORS)})")]
    if role in TERMS_EDITORS:
        return []
    return [
        Problem(name, f"decides the warranty: corrected by {_roles_text(TERMS_EDITORS)} only")
        for name in EDITABLE_FIELDS if name in fields and name in TERMS_FIELDS
    ]


def retirement_refusal(role: Role) -> Problem | None:
    if role in UNIT_RETIRERS:
        return None
    return Problem("role", f"a {role.value} does not retire units (roles that do: "
                   f"{_roles_text(UNIT_RETIRERS)})")


def not_editable(fields: Collection[str]) -> list[Problem]:
    """Fields a correction names that are not the registry's to correct."""
    known = set(Unit.model_fields)
    return [
        Problem(name, _NOT_EDITABLE.get(name) or (
            "unknown field" if name not in known else "cannot be corrected"))
        for name in fields if name not in EDITABLE_FIELDS
    ]


def moves_visits(before: Unit, after: Unit) -> bool:
    """Whether a correction changes the days the unit's visits fall on."""
    return any(getattr(before, name) != getattr(after, name) for name in VISIT_FIELDS)


def correction_problems(
    before: Unit, after: Unit, *, today: date, dealers: Collection[str]
) -> list[Problem]:
    """What a correction may not bring in: what registration refuses, and a unit left
    without warranty terms (it keeps the ones it was registered with, or new ones)."""
    problems = new_problems(
        registration_problems(before, today=today, dealers=dealers),
        registration_problems(after, today=today, dealers=dealers),
    )
    if after.warranty_months is None and after.warranty_hours is None:
        problems.append(Problem("warranty_months", "a unit keeps warranty terms: give "
                                "warranty_months or warranty_hours"))
    return problems


def new_problems(before: list[Problem], after: list[Problem]) -> list[Problem]:
    """The problems a correction brings in (an old unit's standing problems, such as a
    dealer since removed from the policies, do not block correcting something else)."""
    had = {(p.field, p.message) for p in before}
    return [p for p in after if (p.field, p.message) not in had]
