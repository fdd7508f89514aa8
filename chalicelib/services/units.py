"""The registry of sold units (设备档案) and their planned maintenance visits (定期保养).

Staff register a unit through the staff API, or a whole workbook of them (the CLI, or the
API); each unit is written with its planned visits — quarterly in the warranty, then
yearly after it (policies ``[field_service]``) — all or nothing. Every hour the schedule
opens a ``maintenance_visit`` case for each visit whose day has come, for the unit's
customer, as staff would on the phone. The visit leaves the schedule only after its case
is open, and the case's idempotency key is the visit's own, so a run that dies in between,
or two runs at once, still open one case per visit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import ValidationError

from chalicelib.domain.units import (
    DATE_COLUMNS,
    FLAG_COLUMNS,
    NUMBER_COLUMNS,
    PlannedVisit,
    Problem,
    Unit,
    planned_visits,
    registration_problems,
    with_terms_fixed,
)

if TYPE_CHECKING:
    from chalicelib.domain.policies import Policies
    from chalicelib.services.ports import CaseStore
    from chalicelib.settings import Settings

logger = logging.getLogger(__name__)

SYSTEM_ACTOR = "system:planned-visits"


class UnitStore(Protocol):
    max_visits_per_unit: int

    def add_units(
        self,
        units: Sequence[Unit],
        visits_by_serial: Mapping[str, Sequence[PlannedVisit]],
        now: datetime,
    ) -> set[str]: ...

    def registered(self, serials: Sequence[str]) -> set[str]: ...

    def get_unit(self, serial_no: str) -> Unit | None: ...

    def pending_visits(self, serial_no: str) -> list[date]: ...

    def due_visits(
        self, now: datetime, limit: int, after: str | None = None
    ) -> tuple[list[PlannedVisit], str | None]: ...

    def visit_done(self, serial_no: str, day: date) -> bool: ...


class UnitRejected(Exception):
    """The unit cannot be registered; ``problems`` name every bad field."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))
        self.problems = problems


class UnitAlreadyRegistered(Exception):
    def __init__(self, serial_no: str) -> None:
        super().__init__(f"the serial number {serial_no} is registered already")
        self.serial_no = serial_no


@dataclass(frozen=True)
class RegisteredUnit:
    """A unit as the registry holds it, with the end of its warranty (None: it ends by
    operating hours only) and the planned visits still to come."""

    unit: Unit
    warranty_ends_on: date | None
    planned_visits: list[date]

    def as_dict(self) -> dict[str, Any]:
        return {
            "unit": self.unit.model_dump(mode="json"),
            "warranty_ends_on": self.warranty_ends_on.isoformat()
            if self.warranty_ends_on else None,
            "planned_visits": [day.isoformat() for day in self.planned_visits],
        }


def company_today(policies: Policies, now: datetime) -> date:
    """The day it is at the company (its calendar's time zone)."""
    return policies.calendar_for().local(now).date()


def _warranty_end(unit: Unit, policies: Policies) -> date | None:
    ends = unit.warranty_ends_on(policies.field_service.default_warranty_months)
    return None if ends == date.max else ends


def _plan(unit: Unit, policies: Policies, today: date) -> list[PlannedVisit]:
    """The unit's visits from today on (a unit registered years after its sale gets no
    cases for the visits it had before), each due at the opening of business that day."""
    terms = policies.field_service
    days = planned_visits(
        unit,
        default_months=terms.default_warranty_months,
        every_in_warranty=terms.visit_every_months_in_warranty,
        every_after=terms.visit_every_months_after_warranty,
        visits_after=terms.visits_after_warranty,
    )
    calendar = policies.calendar_for()
    return [PlannedVisit(unit.serial_no, day, calendar.opening(day)) for day in days
            if day >= today]


def _prepared(
    store: UnitStore, policies: Policies, unit: Unit, now: datetime, today: date
) -> tuple[Unit, list[PlannedVisit], list[Problem]]:
    problems = registration_problems(unit, today=today, dealers=policies.field_service.dealers)
    fixed = with_terms_fixed(
        unit, default_months=policies.field_service.default_warranty_months, registered_at=now
    )
    visits = _plan(fixed, policies, today)
    if len(visits) > store.max_visits_per_unit:
        problems.append(Problem(
            "warranty_months",
            f"plans {len(visits)} maintenance visits; at most {store.max_visits_per_unit} "
            "can be registered with a unit",
        ))
    return fixed, visits, problems


def register_unit(
    store: UnitStore, policies: Policies, unit: Unit, now: datetime
) -> RegisteredUnit:
    """Register one unit with its planned visits. Raises UnitRejected (every problem) or
    UnitAlreadyRegistered; either way nothing is written."""
    fixed, visits, problems = _prepared(store, policies, unit, now, company_today(policies, now))
    if problems:
        raise UnitRejected(problems)
    if store.add_units([fixed], {fixed.serial_no: visits}, now):
        raise UnitAlreadyRegistered(fixed.serial_no)
    return RegisteredUnit(fixed, _warranty_end(fixed, policies), [v.day for v in visits])


def unit_view(store: UnitStore, policies: Policies, serial_no: str) -> RegisteredUnit | None:
    unit = store.get_unit(serial_no)
    if unit is None:
        return None
    return RegisteredUnit(unit, _warranty_end(unit, policies), store.pending_visits(serial_no))


# -- a workbook of units -------------------------------------------------------------------


@dataclass(frozen=True)
class SheetRow:
    """One row of a registry workbook: its number in the sheet and its cells by column
    (serial_no, model, …; see COLUMN_HEADINGS), as the workbook gave them."""

    number: int
    values: Mapping[str, object]


@dataclass(frozen=True)
class RejectedRow:
    row: int
    serial_no: str | None
    problems: list[Problem]

    def as_dict(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "serial_no": self.serial_no,
            "problems": [problem.as_dict() for problem in self.problems],
        }


@dataclass
class ImportReport:
    rows: int = 0
    registered: list[str] = field(default_factory=list)
    visits_planned: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "registered": len(self.registered),
            "serial_nos": self.registered,
            "visits_planned": self.visits_planned,
            "rejected": [row.as_dict() for row in self.rejected],
            "dry_run": self.dry_run,
        }


_YES = {"yes", "y", "true", "1", "是", "有", "√"}
_NO = {"no", "n", "false", "0", "否", "无", "没有"}


def _cell(column: str, value: object) -> object:
    """A cell as the Unit model takes it: text trimmed, an empty cell left out, Excel dates
    as dates, numbers typed into text columns (serial numbers, phones) as their digits."""
    if isinstance(value, str):
        value = value.strip()
        if not value:
            return None
        if column in FLAG_COLUMNS and value.casefold() in _YES | _NO:
            return value.casefold() in _YES
        return value
    if isinstance(value, datetime):
        return value.date() if column in DATE_COLUMNS else value.isoformat()
    if isinstance(value, bool | date) or column in NUMBER_COLUMNS | FLAG_COLUMNS:
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float):
        return str(value)
    return value


def _readable(detail: Mapping[str, Any]) -> str:
    kind, column = detail["type"], str(detail["loc"][0]) if detail["loc"] else ""
    if kind == "missing":
        return "is missing"
    if kind.startswith("date"):
        return "not a date: use a date cell, or write it as YYYY-MM-DD"
    if kind.startswith("int"):
        return "must be a whole number"
    if kind.startswith("bool"):
        return "write yes or no (是 / 否)"
    if kind == "string_pattern_mismatch" and column == "serial_no":
        return "letters, digits and . _ / - only, beginning with a letter or digit"
    message: str = detail["msg"]
    return message.removeprefix("Value error, ")


def unit_problems(error: ValidationError, *, skip: Iterable[str] = ()) -> list[Problem]:
    """A Unit's validation errors as one readable problem per field."""
    skipped = set(skip)
    problems = []
    for detail in error.errors(include_url=False):
        column = ".".join(str(part) for part in detail["loc"]) or "body"
        if column not in skipped:
            problems.append(Problem(column, _readable(detail)))
    return problems


def unit_from_row(values: Mapping[str, object]) -> tuple[Unit | None, list[Problem]]:
    """The unit a row describes, or every problem with it. A formula (a cell holding
    ``=…``, as the workbook is read with formulas, not their results) is never a value."""
    problems = [
        Problem(column, f"a formula ({value[:40]}), not a value: type the value itself")
        for column, value in values.items()
        if isinstance(value, str) and value.lstrip().startswith("=")
    ]
    formulas = {problem.field for problem in problems}
    data = {
        column: cell
        for column, value in values.items()
        if column not in formulas and (cell := _cell(column, value)) is not None
    }
    try:
        unit = Unit.model_validate(data)
    except ValidationError as error:
        return None, problems + unit_problems(error, skip=formulas)
    return (None, problems) if problems else (unit, [])


def _serial_text(values: Mapping[str, object]) -> str | None:
    serial = _cell("serial_no", values.get("serial_no"))
    return serial if isinstance(serial, str) else None


def import_units(
    store: UnitStore,
    policies: Policies,
    rows: Sequence[SheetRow],
    now: datetime,
    today: date,
    progress: Callable[[int], object] | None = None,
    *,
    dry_run: bool = False,
    batch: int = 25,
) -> ImportReport:
    """Register every good row with its planned visits; report every bad row with all its
    reasons. Each unit is written whole or not at all, so a rejected row leaves nothing.
    ``progress`` is told how many more rows are done, as they are."""
    report = ImportReport(rows=len(rows), dry_run=dry_run)
    advance = progress or (lambda count: None)
    serials = {
        s for row in rows
        if (s := _serial_text(row.values)) and len(s) <= 64 and not s.startswith("=")
    }
    taken = store.registered(sorted(serials)) if serials else set()
    first_row: dict[str, int] = {}
    good: list[tuple[SheetRow, Unit, list[PlannedVisit]]] = []
    for row in rows:
        serial = _serial_text(row.values)
        unit, problems = unit_from_row(row.values)
        if serial is not None and serial in first_row:
            problems.insert(0, Problem(
                "serial_no", f"duplicate: row {first_row[serial]} has this serial number "
                "(each unit is registered once)",
            ))
        elif serial is not None:
            first_row[serial] = row.number
        if serial in taken:
            problems.insert(0, Problem("serial_no", "registered already"))
        visits: list[PlannedVisit] = []
        if unit is not None:
            unit, visits, more = _prepared(store, policies, unit, now, today)
            problems += more
        if problems or unit is None:
            report.rejected.append(RejectedRow(row.number, serial, problems))
            advance(1)
        else:
            good.append((row, unit, visits))
    for start in range(0, len(good), batch):
        chunk = good[start:start + batch]
        refused = set() if dry_run else store.add_units(
            [unit for _, unit, _ in chunk], {unit.serial_no: v for _, unit, v in chunk}, now
        )
        for row, unit, visits in chunk:
            if unit.serial_no in refused:  # registered by someone else since the check
                report.rejected.append(RejectedRow(
                    row.number, unit.serial_no, [Problem("serial_no", "registered already")]
                ))
            else:
                report.registered.append(unit.serial_no)
                report.visits_planned += len(visits)
        advance(len(chunk))
    report.rejected.sort(key=lambda rejected: rejected.row)
    return report


# -- the planned visits schedule -----------------------------------------------------------


@dataclass
class VisitsReport:
    due: int = 0
    opened: int = 0  # cases opened (or found opened) and the visit taken off the schedule
    lost_races: int = 0  # another run took the visit off first
    failed: int = 0  # left on the schedule: the next run tries again

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def visit_key(visit: PlannedVisit) -> str:
    """The idempotency key of the visit's case: one visit, one case."""
    return f"planned-visit:{visit.serial_no}:{visit.day.isoformat()}"


def visit_description(unit: Unit, day: date) -> str:
    lines = [f"Planned maintenance visit {day.isoformat()} (定期保养)",
             f"Model / 型号: {unit.model}, serial / 序列号: {unit.serial_no}"]
    if unit.address:
        lines.append(f"Address / 地址: {unit.address}")
    if unit.dealer:
        lines.append(f"Dealer / 代理商: {unit.dealer}")
    return "\n".join(lines)


def open_planned_visits(
    unit_store: UnitStore,
    case_store: CaseStore,
    settings: Settings,
    policies: Policies,
    now: datetime,
    *,
    page_size: int = 100,
    time_left: Callable[[], float] | None = None,
) -> VisitsReport:
    """Open a maintenance_visit case for every planned visit due at ``now``, once."""
    from chalicelib.domain.case import CaseKind, Channel, PhoneComplaint
    from chalicelib.services.intake import IdempotencyKeyReused, submit_complaint

    report = VisitsReport()
    after: str | None = None
    while True:
        page, after = unit_store.due_visits(now, page_size, after)
        for visit in page:
            report.due += 1
            unit = unit_store.get_unit(visit.serial_no)
            if unit is None:  # not possible while units are never deleted; do not loop on it
                logger.error("planned visit %s %s: no such unit", visit.serial_no, visit.day)
                unit_store.visit_done(visit.serial_no, visit.day)
                report.failed += 1
                continue
            try:
                complaint = PhoneComplaint.model_validate({
                    "kind": CaseKind.MAINTENANCE_VISIT,
                    "customer": {"name": unit.customer_name, "email": unit.customer_email,
                                 "phone": unit.customer_phone},
                    "product": unit.model,
                    "serial_no": unit.serial_no,
                    "purchase_date": unit.sold_on,
                    "description": visit_description(unit, visit.day),
                })
                submit_complaint(
                    case_store, settings, complaint, now=now,
                    base_url=str(settings.public_base_url or ""), channel=Channel.PHONE,
                    idempotency_key=visit_key(visit), taken_by=SYSTEM_ACTOR, policies=policies,
                )
            except IdempotencyKeyReused:
                pass  # its case was opened before, from the unit as it was then
            except ValidationError as error:
                logger.error("planned visit %s %s: cannot open a case: %s",
                             visit.serial_no, visit.day, error)
                report.failed += 1
                continue
            if unit_store.visit_done(visit.serial_no, visit.day):
                report.opened += 1
            else:
                report.lost_races += 1
        if after is None or (time_left is not None and time_left() < 5.0):
            break
    return report
