"""Sold units: their warranty (三包), their planned maintenance visits (定期保养), and the
rules a registry row must pass. No AWS: the registry is a fake in memory."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

import pytest

from chalicelib.domain.policies import FieldServicePolicy, Partner, Policies
from chalicelib.domain.staff import Role
from chalicelib.domain.units import (
    COLUMN_FOR_HEADING,
    EDITABLE_FIELDS,
    PlannedVisit,
    Retirement,
    Unit,
    add_months,
    correction_refusals,
    heading_key,
    next_visit_after_warranty,
    planned_visits,
    registration_problems,
    retirement_refusal,
    warranty_standing,
)
from chalicelib.services.units import (
    SheetRow,
    UnitAlreadyRegistered,
    UnitRejected,
    import_units,
    register_unit,
    unit_from_row,
)

NOW = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
TODAY = date(2026, 6, 1)


def unit(**overrides: Any) -> Unit:
    data: dict[str, Any] = {
        "serial_no": "FL-1001",
        "model": "CPD30 forklift",
        "customer_name": "宁波港机械",
        "customer_email": "service@ningbo-port.example.com",
        "sold_on": date(2026, 1, 10),
    }
    data.update(overrides)
    return Unit.model_validate(data)


def standing(u: Unit | None, on: date, hours: int | None = None, **kwargs: Any) -> Any:
    return warranty_standing(u, on=on, operating_hours=hours, default_months=24, **kwargs)


# -- the warranty --------------------------------------------------------------------------


def test_the_warranty_runs_its_months_from_the_sale_to_the_same_day() -> None:
    sold = unit(warranty_months=12)

    assert standing(sold, date(2027, 1, 10)).in_warranty
    late = standing(sold, date(2027, 1, 11))
    assert not late.in_warranty
    assert late.reasons == ("period_ended",)
    assert late.ends_on == date(2027, 1, 10)


def test_without_terms_of_its_own_a_unit_has_the_default_warranty() -> None:
    assert standing(unit(), date(2028, 1, 10)).in_warranty
    assert standing(unit(), date(2028, 1, 11)).reasons == ("period_ended",)


def test_the_warranty_counts_from_acceptance_when_the_unit_was_accepted() -> None:
    accepted = unit(warranty_months=12, accepted_on=date(2026, 3, 1))

    assert standing(accepted, date(2027, 2, 28)).in_warranty
    assert standing(accepted, date(2027, 3, 2)).reasons == ("period_ended",)


def test_months_or_hours_whichever_ends_first() -> None:
    forklift = unit(warranty_months=12, warranty_hours=1500)

    assert standing(forklift, date(2026, 6, 1), hours=1499).in_warranty
    worn = standing(forklift, date(2026, 6, 1), hours=1501)
    assert not worn.in_warranty
    assert worn.reasons == ("hours_exceeded",)
    both = standing(forklift, date(2027, 6, 1), hours=1501)
    assert both.reasons == ("period_ended", "hours_exceeded")


def test_the_registrys_last_reading_counts_when_the_technician_read_none() -> None:
    forklift = unit(warranty_months=12, warranty_hours=1500, operating_hours=1600)

    assert standing(forklift, date(2026, 6, 1)).reasons == ("hours_exceeded",)
    assert standing(forklift, date(2026, 6, 1), hours=900).in_warranty


def test_without_any_reading_the_date_decides_and_says_the_hours_were_not_checked() -> None:
    forklift = unit(warranty_months=12, warranty_hours=1500)

    unread = standing(forklift, date(2026, 6, 1))
    assert unread.in_warranty
    assert unread.reasons == ("in_period", "hours_unknown")
    assert not unread.hours_checked
    # A reading now, or the registry's last one, and the hours are checked.
    assert standing(forklift, date(2026, 6, 1), hours=10).reasons == ("in_period",)
    read = standing(unit(warranty_months=12, warranty_hours=1500, operating_hours=700),
                    date(2026, 6, 1))
    assert read.reasons == ("in_period",) and read.hours == 700 and read.hours_checked
    # Out of the warranty anyway: the hours would not change it, nothing more to say.
    assert standing(forklift, date(2027, 6, 1)).reasons == ("period_ended",)
    assert standing(forklift, date(2026, 6, 1), misuse=True).reasons == ("misuse",)
    # No hours limit: nothing to check.
    assert standing(unit(warranty_months=12), date(2026, 6, 1)).reasons == ("in_period",)


def test_a_warranty_of_hours_only_never_ends_by_date() -> None:
    by_hours = unit(warranty_hours=2000)

    far = standing(by_hours, date(2046, 1, 1), hours=1999)
    assert far.in_warranty
    assert standing(by_hours, date(2026, 6, 1), hours=2001).reasons == ("hours_exceeded",)


def test_misuse_a_foreign_part_and_an_unknown_unit_are_each_a_reason() -> None:
    result = standing(unit(), date(2026, 6, 1), misuse=True, original_parts=False)

    assert result.reasons == ("misuse", "not_original_part")
    assert standing(None, date(2026, 6, 1)).reasons == ("no_unit",)
    assert standing(unit(), date(2025, 12, 1)).reasons == ("not_sold_yet",)


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (date(2026, 1, 31), 1, date(2026, 2, 28)),
        (date(2028, 1, 31), 1, date(2028, 2, 29)),
        (date(2026, 8, 31), 6, date(2027, 2, 28)),
        (date(2026, 3, 31), 3, date(2026, 6, 30)),
        (date(2026, 11, 15), 3, date(2027, 2, 15)),
        (date(2026, 5, 20), 0, date(2026, 5, 20)),
    ],
)
def test_months_are_added_to_the_same_day_or_the_months_last(
    day: date, months: int, expected: date
) -> None:
    assert add_months(day, months) == expected


# -- planned visits ------------------------------------------------------------------------


def visits(u: Unit, **terms: int) -> list[date]:
    every = {"default_months": 24, "every_in_warranty": 3, "every_after": 12, "visits_after": 1}
    return planned_visits(u, **{**every, **terms})


def test_a_visit_every_quarter_of_the_warranty_and_one_a_year_after() -> None:
    forklift = unit(warranty_months=12, accepted_on=date(2026, 1, 15))

    assert visits(forklift) == [
        date(2026, 4, 15), date(2026, 7, 15), date(2026, 10, 15), date(2027, 1, 15),
        date(2028, 1, 15),
    ]
    assert visits(forklift, visits_after=3)[-3:] == [
        date(2028, 1, 15), date(2029, 1, 15), date(2030, 1, 15)
    ]


def test_a_unit_registered_long_after_its_warranty_gets_the_yearly_visits_to_come() -> None:
    old = unit(sold_on=date(2019, 5, 10), warranty_months=12)

    assert visits(old, from_day=date(2026, 6, 1)) == [date(2027, 5, 10)]
    assert visits(old, from_day=date(2026, 6, 1), visits_after=2) == [
        date(2027, 5, 10), date(2028, 5, 10)]
    assert visits(old, from_day=date(2027, 5, 10)) == [date(2027, 5, 10)]
    assert visits(old, from_day=date(2026, 6, 1), visits_after=0) == []


def next_after(u: Unit, opened: date, visits_after: int = 1) -> date | None:
    return next_visit_after_warranty(u, opened, default_months=24, every_after=12,
                                     visits_after=visits_after)


def test_each_visit_after_the_warranty_plans_the_next_for_as_long_as_the_unit_serves() -> None:
    forklift = unit(warranty_months=12, accepted_on=date(2026, 1, 15))  # ends 2027-01-15

    assert next_after(forklift, date(2026, 10, 15)) is None  # in the warranty: planned
    assert next_after(forklift, date(2027, 1, 15)) is None  # its last day: still in it
    assert next_after(forklift, date(2028, 1, 15)) == date(2029, 1, 15)
    assert next_after(forklift, date(2035, 1, 15)) == date(2036, 1, 15)
    # Three planned ahead: the one opened plans the one three years on.
    assert next_after(forklift, date(2028, 1, 15), visits_after=3) == date(2031, 1, 15)
    assert next_after(forklift, date(2028, 1, 15), visits_after=0) is None
    assert next_after(unit(warranty_hours=2000), date(2040, 1, 1)) is None
    retired = forklift.model_copy(update={"retired": Retirement(
        at=NOW, by="staff:boss", reason="scrapped")})
    assert next_after(retired, date(2028, 1, 15)) is None


def test_a_unit_warranted_by_hours_only_has_no_planned_visits() -> None:
    assert visits(unit(warranty_hours=2000)) == []


def test_month_end_visits_stay_at_the_months_end() -> None:
    cabinet = unit(sold_on=date(2026, 8, 31), warranty_months=6)

    assert visits(cabinet, visits_after=0) == [date(2026, 11, 30), date(2027, 2, 28)]


# -- the registry's columns and rows -------------------------------------------------------


@pytest.mark.parametrize(
    ("heading", "column"),
    [("serial_no", "serial_no"), ("Serial No", "serial_no"), ("序列号", "serial_no"),
     ("机号", "serial_no"), ("客户名称", "customer_name"), ("经销商", "dealer"),
     ("Warranty-Months", "warranty_months"), ("保养合同", "maintenance_contract")],
)
def test_columns_are_known_by_their_english_or_chinese_heading(heading: str, column: str) -> None:
    assert COLUMN_FOR_HEADING[heading_key(heading)] == column


def row(**values: object) -> dict[str, object]:
    cells: dict[str, object] = {
        "serial_no": "FL-1001",
        "model": "CPD30 forklift",
        "customer_name": "宁波港机械",
        "customer_email": "service@ningbo-port.example.com",
        "sold_on": datetime(2026, 1, 10),
    }
    cells.update(values)
    return {column: value for column, value in cells.items() if value is not None}


def test_a_row_of_excel_cells_becomes_a_unit() -> None:
    found, problems = unit_from_row(row(
        serial_no=20260001, customer_phone=13800138000, operating_hours=350.0,
        accepted_on="2026-01-20", maintenance_contract="是", warranty_hours="1500",
        region="  华东  ",
    ))

    assert problems == []
    assert found is not None
    assert found.serial_no == "20260001"
    assert found.customer_phone == "13800138000"
    assert found.sold_on == date(2026, 1, 10)
    assert found.accepted_on == date(2026, 1, 20)
    assert found.operating_hours == 350
    assert found.warranty_hours == 1500
    assert found.maintenance_contract is True
    assert found.region == "华东"


def test_every_problem_of_a_row_is_named_by_its_column() -> None:
    found, problems = unit_from_row(row(
        serial_no=None, customer_email="not-an-address", sold_on="10/01/2026",
        warranty_months="twelve", maintenance_contract="maybe",
    ))

    assert found is None
    by_field = {p.field: p.message for p in problems}
    assert by_field["serial_no"] == "is missing"
    assert "email" in by_field["customer_email"]
    assert by_field["sold_on"] == (
        "not a date: use a date cell, or write it as YYYY-MM-DD (or YYYY/MM/DD, YYYY年M月D日)")
    assert by_field["warranty_months"] == "must be a whole number"
    assert by_field["maintenance_contract"] == "write yes or no (是 / 否)"


@pytest.mark.parametrize(
    ("typed", "day"),
    [("2026/01/20", date(2026, 1, 20)), ("2026-1-5", date(2026, 1, 5)),
     ("2026年1月20日", date(2026, 1, 20)), ("2026.1.20", date(2026, 1, 20)),
     (" 2026-01-20 ", date(2026, 1, 20))],
)
def test_dates_typed_as_text_the_usual_ways_are_dates(typed: str, day: date) -> None:
    found, problems = unit_from_row(row(accepted_on=typed))

    assert problems == []
    assert found is not None and found.accepted_on == day


@pytest.mark.parametrize("serial", [123456789012345678, 1.2345678901234568e17, 1.5, 1e16])
def test_a_serial_number_excel_cannot_hold_as_a_number_is_refused(serial: object) -> None:
    found, problems = unit_from_row(row(serial_no=serial))

    assert found is None
    assert [p.field for p in problems] == ["serial_no"]
    assert "format the column as text" in problems[0].message


def test_a_serial_number_of_up_to_15_digits_may_be_a_number() -> None:
    found, _ = unit_from_row(row(serial_no=999999999999999))
    assert found is not None and found.serial_no == "999999999999999"


def test_who_corrects_and_retires_units() -> None:
    contact = {"dealer", "region", "customer_phone", "model"}
    terms = {"warranty_months", "sold_on", "operating_hours"}
    for role in (Role.SUPERVISOR, Role.SERVICE_DIRECTOR, Role.SERVICE_VP):
        assert correction_refusals(role, contact | terms) == []
        assert retirement_refusal(role) is None
    assert correction_refusals(Role.AGENT, contact) == []
    assert {p.field for p in correction_refusals(Role.AGENT, contact | terms)} == terms
    assert retirement_refusal(Role.AGENT) is not None
    for role in (Role.TECHNICIAN, Role.FINANCE, Role.LOGISTICS, Role.SALES_VP, Role.RND):
        assert [p.field for p in correction_refusals(role, contact)] == ["role"]
        assert retirement_refusal(role) is not None
    assert set(EDITABLE_FIELDS) < set(Unit.model_fields)


def test_a_formula_is_never_taken_as_a_value() -> None:
    found, problems = unit_from_row(row(
        customer_name='=HYPERLINK("http://evil.example","Click")', sold_on="=TODAY()",
    ))

    assert found is None
    assert {p.field for p in problems} == {"customer_name", "sold_on"}
    assert all("formula" in p.message for p in problems)


def test_registration_refuses_days_to_come_acceptance_before_sale_and_unknown_dealers() -> None:
    dealers = {"east", "south"}
    problems = registration_problems(
        unit(sold_on=date(2026, 6, 2), accepted_on=date(2026, 6, 1), dealer="north",
             hours_read_on=date(2026, 7, 1), customer_phone="call the office"),
        today=TODAY, dealers=dealers,
    )

    assert {(p.field, p.message) for p in problems} == {
        ("sold_on", "cannot be in the future"),
        ("hours_read_on", "cannot be in the future"),
        ("accepted_on", "cannot be before the sale (sold_on)"),
        ("dealer", "unknown dealer 'north' (known: east, south)"),
        ("customer_phone", "digits, spaces and + ( ) . / - only"),
    }
    assert registration_problems(unit(dealer="north"), today=TODAY, dealers=()) == []


# -- registering, with a registry in memory ------------------------------------------------


class MemoryUnits:
    max_visits_per_unit = 99

    def __init__(self) -> None:
        self.units: dict[str, Unit] = {}
        self.visits: dict[str, list[PlannedVisit]] = {}

    def add_units(
        self, units: Sequence[Unit], visits_by_serial: Mapping[str, Sequence[PlannedVisit]],
        now: datetime,
    ) -> set[str]:
        refused = {u.serial_no for u in units if u.serial_no in self.units}
        for u in units:
            if u.serial_no not in refused:
                self.units[u.serial_no] = u
                self.visits[u.serial_no] = list(visits_by_serial.get(u.serial_no, ()))
        return refused

    def registered(self, serials: Sequence[str]) -> set[str]:
        return set(serials) & set(self.units)

    def get_unit(self, serial_no: str) -> Unit | None:
        return self.units.get(serial_no)

    def pending_visits(self, serial_no: str) -> list[date]:
        return [v.day for v in self.visits.get(serial_no, [])]

    def due_visits(
        self, now: datetime, limit: int, after: str | None = None
    ) -> tuple[list[PlannedVisit], str | None]:
        raise NotImplementedError

    def visit_done(
        self, serial_no: str, day: date, next_visit: PlannedVisit | None = None
    ) -> bool:
        raise NotImplementedError


def with_dealers(*ids: str) -> Policies:
    return Policies(field_service=FieldServicePolicy(
        dealers={dealer: Partner(name=dealer.title()) for dealer in ids}
    ))


def test_a_registered_unit_keeps_the_default_warranty_of_its_day_and_plans_visits_to_come() -> None:
    store = MemoryUnits()

    registered = register_unit(store, Policies(), unit(sold_on=date(2025, 6, 10)), NOW)

    assert registered.unit.warranty_months == 24
    assert registered.unit.registered_at == NOW
    assert registered.warranty_ends_on == date(2027, 6, 10)
    # The visits before the registration day are history, not cases to open now.
    assert registered.planned_visits == [
        date(2026, 6, 10), date(2026, 9, 10), date(2026, 12, 10), date(2027, 3, 10),
        date(2027, 6, 10), date(2028, 6, 10),
    ]
    first = store.visits["FL-1001"][0]
    assert first.due_at == datetime(2026, 6, 10, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai


def test_a_unit_is_registered_once() -> None:
    store = MemoryUnits()
    register_unit(store, Policies(), unit(), NOW)

    with pytest.raises(UnitAlreadyRegistered):
        register_unit(store, Policies(), unit(model="another"), NOW)
    assert store.units["FL-1001"].model == "CPD30 forklift"


def test_a_unit_with_problems_is_not_registered() -> None:
    store = MemoryUnits()

    with pytest.raises(UnitRejected) as rejected:
        register_unit(store, with_dealers("east"), unit(dealer="west"), NOW)
    assert [p.field for p in rejected.value.problems] == ["dealer"]
    assert store.units == {}


def test_an_import_registers_the_good_rows_and_reports_every_bad_one() -> None:
    store = MemoryUnits()
    register_unit(store, Policies(), unit(serial_no="OLD-1"), NOW)
    rows = [
        SheetRow(2, row(serial_no="A-1", dealer="east")),
        SheetRow(3, row(serial_no=None)),
        SheetRow(4, row(serial_no="A-1", model="copy")),
        SheetRow(5, row(serial_no="OLD-1")),
        SheetRow(6, row(serial_no="A-2", sold_on=datetime(2026, 6, 2), dealer="nowhere")),
        SheetRow(7, row(serial_no="A-3", accepted_on=date(2026, 1, 1))),
        SheetRow(8, row(serial_no="A-4")),
    ]
    ticks: list[int] = []

    report = import_units(store, with_dealers("east"), rows, NOW, TODAY, progress=ticks.append)

    assert report.registered == ["A-1", "A-4"]
    assert sum(ticks) == len(rows)
    reasons = {r.row: (r.serial_no, [p.message for p in r.problems]) for r in report.rejected}
    assert reasons == {
        3: (None, ["is missing"]),
        4: ("A-1", ["duplicate: row 2 has this serial number (each unit is registered once)"]),
        5: ("OLD-1", ["registered already"]),
        6: ("A-2", ["cannot be in the future", "unknown dealer 'nowhere' (known: east)"]),
        7: ("A-3", ["cannot be before the sale (sold_on)"]),
    }
    assert set(store.units) == {"OLD-1", "A-1", "A-4"}
    assert store.units["A-1"].model == "CPD30 forklift"


def test_a_dry_run_reports_the_same_and_registers_nothing() -> None:
    store = MemoryUnits()
    rows = [SheetRow(2, row(serial_no="A-1")), SheetRow(3, row(serial_no="A-1"))]

    report = import_units(store, Policies(), rows, NOW, TODAY, dry_run=True)

    assert report.registered == ["A-1"]
    assert [r.row for r in report.rejected] == [3]
    assert store.units == {}
