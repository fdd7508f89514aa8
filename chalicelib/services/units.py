"""The registry of sold units (设备档案) and their planned maintenance visits (定期保养).

Staff register a unit through the staff API, or a whole workbook of them (the CLI, or the
API); each unit is written with its planned visits — quarterly in the warranty, then
yearly after it (policies ``[field_service]``) — all or nothing. Every hour the schedule
opens a ``maintenance_visit`` case for each visit whose day has come, for the unit's
customer, as staff would on the phone. The visit leaves the schedule only after its case
is open, and the case's idempotency key is the visit's own, so a run that dies in between,
or two runs at once, still open one case per visit; a visit after the warranty plans the
next one in that same write, for as long as the unit is in service.

Staff correct a unit (its visits re-planned when its dates or terms change) or retire it
(kept for its history, its visits removed); each write names the version it read.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import ValidationError

from chalicelib.domain.units import (
    DATE_COLUMNS,
    FLAG_COLUMNS,
    NUMBER_COLUMNS,
    PlannedVisit,
    Problem,
    Retirement,
    Unit,
    correction_problems,
    correction_refusals,
    moves_visits,
    next_visit_after_warranty,
    not_editable,
    planned_visits,
    registration_problems,
    retirement_refusal,
    with_terms_fixed,
)

if TYPE_CHECKING:
    from chalicelib.domain.policies import Policies
    from chalicelib.domain.staff import Role
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

    def unit_with_version(self, serial_no: str) -> tuple[Unit, int] | None: ...

    def pending_visits(self, serial_no: str) -> list[date]: ...

    def due_visits(
        self, now: datetime, limit: int, after: str | None = None
    ) -> tuple[list[PlannedVisit], str | None]: ...

    def visit_done(
        self, serial_no: str, day: date, next_visit: PlannedVisit | None = None
    ) -> bool: ...

    def replace_unit(
        self,
        unit: Unit,
        version: int,
        now: datetime,
        *,
        drop_visits: Sequence[date] = (),
        add_visits: Sequence[PlannedVisit] = (),
    ) -> bool: ...

    def record_operating_hours(
        self, serial_no: str, hours: int, at: datetime, by: str, *, on: date | None = None
    ) -> bool: ...


class UnitRejected(Exception):
    """The unit cannot be registered; ``problems`` name every bad field."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))
        self.problems = problems


class UnitAlreadyRegistered(Exception):
    def __init__(self, serial_no: str) -> None:
        super().__init__(f"the serial number {serial_no} is registered already")
        self.serial_no = serial_no


class UnitNotFound(Exception):
    def __init__(self, serial_no: str) -> None:
        super().__init__(f"no unit {serial_no} in the registry")
        self.serial_no = serial_no


class UnitRetired(Exception):
    """The unit is retired: it is kept as it was, for its history."""

    def __init__(self, unit: Unit) -> None:
        retired = unit.retired
        when = f" on {retired.at.date().isoformat()} by {retired.by} ({retired.reason})" \
            if retired else ""
        super().__init__(f"the unit {unit.serial_no} was retired{when}; it is kept as it was")
        self.unit = unit


class StaleUnit(Exception):
    """The unit changed since the version the caller read; nothing was written."""

    def __init__(self, serial_no: str, expected: int | None, current: int) -> None:
        since = f"since version {expected}" if expected is not None else "meanwhile"
        super().__init__(f"the unit {serial_no} changed {since} (it is at version "
                         f"{current}): read it again and redo the change")
        self.current_version = current


class NotYourRole(Exception):
    """The role may not make this change (403); ``problems`` name what and why."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))
        self.problems = problems


@dataclass(frozen=True)
class RegisteredUnit:
    """A unit as the registry holds it, with the end of its warranty (None: it ends by
    operating hours only), the planned visits still to come (none once it is retired) and
    its version (what a correction names)."""

    unit: Unit
    warranty_ends_on: date | None
    planned_visits: list[date]
    version: int = 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "unit": self.unit.model_dump(mode="json"),
            "warranty_ends_on": self.warranty_ends_on.isoformat()
            if self.warranty_ends_on else None,
            "planned_visits": [day.isoformat() for day in self.planned_visits],
            "version": self.version,
        }


def company_today(policies: Policies, now: datetime) -> date:
    """The day it is at the company (its calendar's time zone)."""
    return policies.calendar_for().local(now).date()


def _warranty_end(unit: Unit, policies: Policies) -> date | None:
    ends = unit.warranty_ends_on(policies.field_service.default_warranty_months)
    return None if ends == date.max else ends


def _plan(unit: Unit, policies: Policies, first_day: date) -> list[PlannedVisit]:
    """The unit's visits from ``first_day`` on (a unit registered years after its sale gets
    no cases for the visits it had before, only the yearly ones to come), each due at the
    opening of business that day."""
    terms = policies.field_service
    days = planned_visits(
        unit,
        default_months=terms.default_warranty_months,
        every_in_warranty=terms.visit_every_months_in_warranty,
        every_after=terms.visit_every_months_after_warranty,
        visits_after=terms.visits_after_warranty,
        from_day=first_day,
    )
    calendar = policies.calendar_for()
    return [PlannedVisit(unit.serial_no, day, calendar.opening(day)) for day in days]


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
    found = store.unit_with_version(serial_no)
    if found is None:
        return None
    return _view(store, policies, *found)


def _view(store: UnitStore, policies: Policies, unit: Unit, version: int) -> RegisteredUnit:
    visits = [] if unit.retired else store.pending_visits(unit.serial_no)
    return RegisteredUnit(unit, _warranty_end(unit, policies), visits, version)


# -- correcting and retiring a unit ----------------------------------------------------------

WRITE_ATTEMPTS = 3


def _current(
    store: UnitStore, serial_no: str, expected_version: int | None
) -> tuple[Unit, int]:
    found = store.unit_with_version(serial_no)
    if found is None:
        raise UnitNotFound(serial_no)
    unit, version = found
    if unit.retired is not None:
        raise UnitRetired(unit)
    if expected_version is not None and version != expected_version:
        raise StaleUnit(serial_no, expected_version, version)
    return unit, version


def _lost_race(store: UnitStore, serial_no: str, expected_version: int | None) -> None:
    """After a write refused for its version: a caller who named a version hears the unit
    changed (409); one who did not has the change applied to the unit as it is now."""
    found = store.unit_with_version(serial_no)
    if found is None:
        raise UnitNotFound(serial_no)
    if found[0].retired is not None:
        raise UnitRetired(found[0])
    if expected_version is not None:
        raise StaleUnit(serial_no, expected_version, found[1])


def update_unit(
    store: UnitStore,
    policies: Policies,
    serial_no: str,
    changes: Mapping[str, object],
    now: datetime,
    *,
    role: Role | None,
    expected_version: int | None = None,
) -> RegisteredUnit:
    """Correct a registered unit: ``changes`` maps fields (EDITABLE_FIELDS) to their new
    values (None clears an optional one), validated as at registration. When its dates or
    warranty terms change, its visits still to come (after today) are planned afresh in the
    same write; visits due today or earlier and not opened yet stay. ``role`` None: the
    command line (whoever runs it has the table). Raises NotYourRole, UnitNotFound,
    UnitRetired, StaleUnit (the unit is no longer at ``expected_version``) or UnitRejected
    (every problem); in each case nothing is written."""
    if not changes:
        raise UnitRejected([Problem("body", "name at least one field to correct")])
    refused = not_editable(changes)
    if refused:
        raise UnitRejected(refused)
    if role is not None and (problems := correction_refusals(role, changes)):
        raise NotYourRole(problems)
    today = company_today(policies, now)
    terms = policies.field_service
    for _ in range(WRITE_ATTEMPTS):
        unit, version = _current(store, serial_no, expected_version)
        try:
            corrected = Unit.model_validate({**unit.model_dump(), **changes})
        except ValidationError as error:
            raise UnitRejected(unit_problems(error)) from None
        problems = correction_problems(unit, corrected, today=today, dealers=terms.dealers)
        if problems:
            raise UnitRejected(problems)
        if corrected == unit:
            return _view(store, policies, unit, version)
        drop: list[date] = []
        add: list[PlannedVisit] = []
        if moves_visits(unit, corrected):
            # Visits due today or before stay as they are (one may be opening now).
            to_come = {day for day in store.pending_visits(serial_no) if day > today}
            plan = {v.day: v for v in _plan(corrected, policies, today + timedelta(days=1))}
            drop = sorted(to_come - plan.keys())
            add = [plan[day] for day in sorted(plan.keys() - to_come)]
            if 1 + len(drop) + len(add) > store.max_visits_per_unit + 1:
                raise UnitRejected([Problem(
                    "warranty_months", f"moves {len(drop) + len(add)} planned visits; at "
                    f"most {store.max_visits_per_unit} can move in one correction")])
        if store.replace_unit(corrected, version, now, drop_visits=drop, add_visits=add):
            return _view(store, policies, corrected, version + 1)
        _lost_race(store, serial_no, expected_version)
    found = store.unit_with_version(serial_no)
    raise StaleUnit(serial_no, expected_version, found[1] if found else 0)


def retire_unit(
    store: UnitStore,
    policies: Policies,
    serial_no: str,
    *,
    reason: str,
    by: str,
    now: datetime,
    role: Role | None,
    expected_version: int | None = None,
) -> RegisteredUnit:
    """Retire a unit (scrapped, sold on, returned): it stays in the registry for its history,
    marked retired with who, when and why; its planned visits not opened yet are removed in
    the same write, and it opens no more. Raises as update_unit; nothing is written then."""
    if role is not None and (refusal := retirement_refusal(role)):
        raise NotYourRole([refusal])
    try:
        retirement = Retirement(at=now, by=by, reason=reason.strip())
    except ValidationError as error:
        raise UnitRejected([
            Problem("reason", "say why the unit is retired (one line, at most 500 "
                    "characters)" if detail["type"] in {"string_too_short", "string_too_long"}
                    else _readable(detail))
            for detail in error.errors(include_url=False)
        ]) from None
    for _ in range(WRITE_ATTEMPTS):
        unit, version = _current(store, serial_no, expected_version)
        retired = unit.model_copy(update={"retired": retirement})
        visits = store.pending_visits(serial_no)
        if store.replace_unit(retired, version, now, drop_visits=visits):
            return _view(store, policies, retired, version + 1)
        _lost_race(store, serial_no, expected_version)
    found = store.unit_with_version(serial_no)
    raise StaleUnit(serial_no, expected_version, found[1] if found else 0)


def record_operating_hours(
    store: UnitStore, policies: Policies, serial_no: str, hours: int, now: datetime, by: str
) -> bool:
    """An hour-meter reading taken now (the company's day), recorded if it is higher than
    the last one (see the store's record_operating_hours)."""
    return store.record_operating_hours(
        serial_no, hours, now, by, on=company_today(policies, now)
    )


# -- a workbook of units -------------------------------------------------------------------


@dataclass(frozen=True)
class SheetRow:
    """One row of a registry workbook: its number in the sheet and its cells by column
    (serial_no, model, …; see COLUMN_HEADINGS), as the workbook gave them."""

    number: int
    values: Mapping[str, object]


@dataclass(frozen=True)
class UnitSheet:
    """A registry workbook as read: its rows, and what was ignored in it (a column the
    registry does not know, values under no heading), for the report."""

    rows: list[SheetRow]
    warnings: list[str] = field(default_factory=list)


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
    warnings: list[str] = field(default_factory=list)  # what of the sheet was ignored

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "registered": len(self.registered),
            "serial_nos": self.registered,
            "visits_planned": self.visits_planned,
            "rejected": [row.as_dict() for row in self.rejected],
            "dry_run": self.dry_run,
            "warnings": self.warnings,
        }


_YES = {"yes", "y", "true", "1", "是", "有", "√"}
_NO = {"no", "n", "false", "0", "否", "无", "没有"}
# Dates as staff type them as text: 2026-01-15 and 2026-1-5, 2026/01/15, 2026.1.15,
# 2026年1月15日.
_DATE_TEXT = (
    re.compile(r"(\d{4})([-/.])(\d{1,2})\2(\d{1,2})"),
    re.compile(r"(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日?"),
)
# Excel keeps 15 significant digits of a number: a longer serial typed as a number is
# already changed when the workbook is saved (123456789012345678 becomes …345000).
EXACT_DIGITS = 15


def _date_text(text: str) -> object:
    """A date typed as text in one of the usual ways, or the text as it is (the model then
    says it is not a date)."""
    for pattern in _DATE_TEXT:
        if match := pattern.fullmatch(text):
            year, month, day = (int(part) for part in match.groups() if part.isdigit())
            try:
                return date(year, month, day)
            except ValueError:
                return text
    return text


def numeric_serial_problem(value: object) -> str | None:
    """Why a serial number given as a number cannot be trusted: a fraction, or more digits
    than Excel keeps. None: it is text, or a number that is exactly its digits."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not value.is_integer():
        return (f"the number {value} is not a serial number: format the column as text "
                "(Format Cells → Text) and type the serial numbers as written")
    digits = len(str(abs(int(value))))
    if digits > EXACT_DIGITS:
        return (f"a number of {digits} digits: Excel keeps only {EXACT_DIGITS}, so it may "
                "no longer be the serial number typed — format the column as text (Format "
                "Cells → Text) and type the serial numbers again")
    return None


def _cell(column: str, value: object) -> object:
    """A cell as the Unit model takes it: text trimmed, an empty cell left out, Excel dates
    (and dates typed as text) as dates, numbers typed into text columns (serial numbers,
    phones) as their digits."""
    if isinstance(value, str):
        value = value.strip()
        if not value:
            return None
        if column in FLAG_COLUMNS and value.casefold() in _YES | _NO:
            return value.casefold() in _YES
        if column in DATE_COLUMNS:
            return _date_text(value)
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


def typed_value(column: str, text: str) -> object:
    """A value typed on the command line as the Unit model takes it, as a workbook cell
    would be (yes / no / 是 / 否, dates as YYYY-MM-DD, YYYY/MM/DD, YYYY年M月D日); an empty
    text is None (clears an optional field)."""
    return _cell(column, text)


def _readable(detail: Mapping[str, Any]) -> str:
    kind, column = detail["type"], str(detail["loc"][0]) if detail["loc"] else ""
    if kind == "missing":
        return "is missing"
    if kind.startswith("date"):
        return "not a date: use a date cell, or write it as YYYY-MM-DD (or YYYY/MM/DD, " \
            "YYYY年M月D日)"
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
    if serial := numeric_serial_problem(values.get("serial_no")):
        problems.insert(0, Problem("serial_no", serial))
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
    if numeric_serial_problem(values.get("serial_no")):
        return None
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
    warnings: Sequence[str] = (),
) -> ImportReport:
    """Register every good row with its planned visits; report every bad row with all its
    reasons. Each unit is written whole or not at all, so a rejected row leaves nothing.
    ``progress`` is told how many more rows are done, as they are; ``warnings`` (what the
    workbook reader ignored) go into the report as they are."""
    report = ImportReport(rows=len(rows), dry_run=dry_run, warnings=list(warnings))
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
    retired: int = 0  # the unit was retired: the visit taken off, no case opened

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
    terms, calendar = policies.field_service, policies.calendar_for()
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
            if unit.retired is not None:  # retired meanwhile: no case, and no next visit
                unit_store.visit_done(visit.serial_no, visit.day)
                report.retired += 1
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
            # After the warranty a visit comes yearly for as long as the unit is in service:
            # the next one is planned as this one leaves the schedule, in the same write.
            next_day = next_visit_after_warranty(
                unit, visit.day, default_months=terms.default_warranty_months,
                every_after=terms.visit_every_months_after_warranty,
                visits_after=terms.visits_after_warranty,
            )
            next_visit = None if next_day is None else PlannedVisit(
                unit.serial_no, next_day, calendar.opening(next_day))
            if unit_store.visit_done(visit.serial_no, visit.day, next_visit):
                report.opened += 1
            else:
                report.lost_races += 1
        if after is None or (time_left is not None and time_left() < 5.0):
            break
    return report
