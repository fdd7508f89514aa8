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
    warranty_months: int | None = Field(default=None, ge=0, le=600)
    warranty_hours: int | None = Field(default=None, ge=0, le=10_000_000)
    maintenance_contract: bool = False  # 合同: serviced under a maintenance contract (B)
    registered_at: datetime | None = None

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
]


@dataclass(frozen=True)
class WarrantyStanding:
    """Whether a unit is in its warranty on a day, with every reason it is not."""

    in_warranty: bool
    reasons: tuple[WarrantyReason, ...]
    ends_on: date | None
    hours_limit: int | None


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
    and only original parts. ``operating_hours`` is what the technician read now (else the
    registry's last reading)."""
    reasons: list[WarrantyReason] = []
    ends_on: date | None = None
    hours_limit: int | None = None
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
        return WarrantyStanding(False, tuple(reasons), ends_on, hours_limit)
    return WarrantyStanding(True, ("in_period",), ends_on, hours_limit)


def planned_visits(
    unit: Unit,
    *,
    default_months: int,
    every_in_warranty: int,
    every_after: int,
    visits_after: int,
) -> list[date]:
    """The planned maintenance visits of a unit (定期保养): every ``every_in_warranty``
    months from the warranty's start while it runs, then ``visits_after`` more every
    ``every_after`` months after it."""
    start, ends = unit.warranty_starts_on, unit.warranty_ends_on(default_months)
    visits: list[date] = []
    n = 1
    while ends != date.max and (day := add_months(start, every_in_warranty * n)) <= ends:
        visits.append(day)
        n += 1
    if ends != date.max:
        visits += [add_months(ends, every_after * k) for k in range(1, visits_after + 1)]
    return visits


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
