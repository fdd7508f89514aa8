"""The warranty check (三包) of a repair request: free under the warranty (class C), under a
maintenance contract (B), or paid (A) with every reason, as the customer is told. Through
``apply_action`` with the registered unit, as the staff desk calls it. Pure domain."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from chalicelib.domain.case import Case, CaseKind, CaseStatus, Channel, Customer, Language
from chalicelib.domain.field_service import Dispatch, FieldService, Party, ServiceClass
from chalicelib.domain.lifecycle import ActionRefused, Change, PolicyPromises, apply_action
from chalicelib.domain.policies import FieldServicePolicy, Policies
from chalicelib.domain.staff import Role, StaffMember
from chalicelib.domain.units import Unit

SHANGHAI = ZoneInfo("Asia/Shanghai")
PROMISES = PolicyPromises(Policies())
TIM = StaffMember(staff_id="tim", name="Tim", role=Role.TECHNICIAN)
SERIAL = "FL-1001"

# A forklift accepted on 15 January 2025: 12 months or 1,500 hours, whichever first.
FORKLIFT: dict[str, Any] = {
    "serial_no": SERIAL, "model": "CPD30 forklift", "product_line": "forklift",
    "customer_name": "Ningbo Port Machinery", "customer_email": "service@ningbo-port.example",
    "region": "Zhejiang", "dealer": "east",
    "sold_on": date(2025, 1, 10), "accepted_on": date(2025, 1, 15),
    "warranty_months": 12, "warranty_hours": 1500,
}


def unit(**overrides: Any) -> Unit:
    return Unit.model_validate({**FORKLIFT, **overrides})


def at(year: int, month: int, day: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


def repair(reported: datetime, *, serial_no: str | None = SERIAL,
           record: FieldService | None = None, status: CaseStatus = CaseStatus.NEW) -> Case:
    return Case(
        case_id="c-1", case_number="AS000001", kind=CaseKind.REPAIR_REQUEST, status=status,
        customer=Customer(name="Ningbo Port Machinery", email="service@ningbo-port.example"),
        serial_no=serial_no, description="The mast does not lift.", language=Language.EN,
        channel=Channel.PHONE, created_at=reported, updated_at=reported, version=1,
        field_service=record or FieldService(),
    )


def check(when: datetime, the_unit: Unit | None, params: dict[str, Any] | None = None,
          case: Case | None = None, promises: PolicyPromises = PROMISES) -> Change:
    return apply_action(case or repair(when), "check_warranty", params, actor=TIM, now=when,
                        promises=promises, unit=the_unit)


def decision(change: Change) -> tuple[ServiceClass, tuple[str, ...]]:
    record = change.case.field_service
    assert record is not None and record.warranty is not None
    return record.warranty.service_class, record.warranty.reasons


def told(change: Change) -> dict[str, str]:
    [message] = change.messages
    assert message.template == "warranty_decision"
    return message.values


def test_in_the_period_and_under_the_hours_the_repair_is_free() -> None:
    change = check(at(2025, 6, 2), unit(), {"operating_hours": 800})

    assert decision(change) == (ServiceClass.WARRANTY, ("in_period",))
    assert change.case.status is CaseStatus.VERIFIED
    assert told(change)["in_warranty"] == "yes"
    assert told(change)["warranty_ends_on"] == "2026-01-15"
    record = change.case.field_service
    assert record is not None and record.unit is not None
    assert (record.unit.dealer, record.unit.region, record.unit.warranty_hours) == (
        "east", "Zhejiang", 1500)
    assert record.warranty is not None and record.warranty.operating_hours == 800


def test_the_last_day_of_the_period_counts_in_the_company_s_time_zone() -> None:
    # 23:30 on 15 January in Shanghai is still the warranty's last day (15:30 UTC) …
    assert decision(check(at(2026, 1, 15, 23, 30), unit()))[0] is ServiceClass.WARRANTY
    # … and half past midnight is the next day, though still 15 January in UTC.
    ended = check(at(2026, 1, 16, 0, 30), unit())
    assert decision(ended) == (ServiceClass.PAID, ("period_ended",))
    assert told(ended)["in_warranty"] == ""
    assert told(ended)["reasons"] == "period_ended"


@pytest.mark.parametrize(("hours", "free"), [(1499, True), (1500, True), (1501, False)])
def test_past_the_warranty_hours_the_repair_is_paid(hours: int, free: bool) -> None:
    change = check(at(2025, 6, 2), unit(), {"operating_hours": hours})

    if free:
        assert decision(change)[0] is ServiceClass.WARRANTY
    else:
        assert decision(change) == (ServiceClass.PAID, ("hours_exceeded",))


def test_months_or_hours_whichever_ends_first() -> None:
    # Hours well under the limit, but the period is over.
    assert decision(check(at(2026, 2, 1), unit(), {"operating_hours": 300})) == (
        ServiceClass.PAID, ("period_ended",))
    # In the period, but the hours are over.
    assert decision(check(at(2025, 4, 1), unit(), {"operating_hours": 1600})) == (
        ServiceClass.PAID, ("hours_exceeded",))
    # Both: the customer is told both.
    both = check(at(2026, 2, 1), unit(), {"operating_hours": 1600})
    assert decision(both) == (ServiceClass.PAID, ("period_ended", "hours_exceeded"))


def test_without_a_reading_the_registry_s_last_reading_counts() -> None:
    read = unit(operating_hours=1700, hours_read_on=date(2025, 5, 1))

    assert decision(check(at(2025, 6, 2), read)) == (ServiceClass.PAID, ("hours_exceeded",))
    # What the technician reads now counts over the registry.
    assert decision(check(at(2025, 6, 2), read, {"operating_hours": 900}))[0] is (
        ServiceClass.WARRANTY)


def test_misuse_makes_it_paid_even_in_the_period() -> None:
    change = check(at(2025, 6, 2), unit(), {"misuse": True, "note": "overloaded: 5 t on 3 t"})

    assert decision(change) == (ServiceClass.PAID, ("misuse",))
    assert told(change)["service_class"] == "A"


def test_a_part_that_is_not_original_makes_it_paid() -> None:
    change = check(at(2025, 6, 2), unit(), {"original_parts": False})

    assert decision(change) == (ServiceClass.PAID, ("not_original_part",))


def test_out_of_warranty_a_maintenance_contract_covers_the_work() -> None:
    contract = unit(maintenance_contract=True)

    change = check(at(2026, 3, 2), contract)

    assert decision(change) == (ServiceClass.CONTRACT, ("period_ended",))
    assert told(change)["service_class"] == "B"
    # In the warranty the work is free all the same …
    assert decision(check(at(2025, 6, 2), contract))[0] is ServiceClass.WARRANTY
    # … and misuse is paid, contract or not.
    assert decision(check(at(2026, 3, 2), contract, {"misuse": True}))[0] is ServiceClass.PAID


def test_a_unit_without_terms_of_its_own_has_the_policies_default_warranty() -> None:
    plain = unit(warranty_months=None, warranty_hours=None)
    six_months = PolicyPromises(Policies(field_service=FieldServicePolicy(
        default_warranty_months=6)))

    assert decision(check(at(2025, 7, 15), plain))[0] is ServiceClass.WARRANTY  # 24 months
    assert decision(check(at(2025, 7, 16), plain, promises=six_months))[0] is ServiceClass.PAID


def test_a_serial_number_not_in_the_registry_is_refused_on_that_field() -> None:
    with pytest.raises(ActionRefused) as refused:
        check(at(2025, 6, 2), None, {"serial_no": "FL-9999"})

    assert refused.value.errors == [
        {"field": "params.serial_no", "message": "not a registered unit"}
    ]
    assert "FL-9999" in refused.value.reason


def test_the_unit_looked_up_must_be_the_one_named() -> None:
    with pytest.raises(ActionRefused) as refused:
        check(at(2025, 6, 2), unit(), {"serial_no": "FL-2002"})

    assert refused.value.errors[0]["field"] == "params.serial_no"


def test_without_any_serial_number_the_check_asks_for_one() -> None:
    with pytest.raises(ActionRefused) as refused:
        check(at(2025, 6, 2), None, case=repair(at(2025, 6, 2), serial_no=None))

    assert refused.value.errors == [{"field": "params.serial_no", "message": "needed"}]


def test_misuse_is_judged_on_site_once_someone_is_sent() -> None:
    sent = FieldService(dispatch=Dispatch(
        party=Party.TECHNICIAN, to="tim", name="Tim", dispatched_at=at(2025, 6, 2),
        dispatched_by="staff:ann",
    ))
    case = repair(at(2025, 6, 2), record=sent, status=CaseStatus.IN_PROGRESS)

    with pytest.raises(ActionRefused) as refused:
        check(at(2025, 6, 2, 11), unit(), {"misuse": True}, case=case)
    assert "on site" in refused.value.reason

    on_site = sent.model_copy(update={"dispatch": sent.dispatch.model_copy(  # type: ignore[union-attr]
        update={"on_site_at": at(2025, 6, 2, 12)})})
    change = check(at(2025, 6, 2, 13), unit(), {"misuse": True},
                   case=repair(at(2025, 6, 2), record=on_site, status=CaseStatus.IN_PROGRESS))
    assert decision(change)[0] is ServiceClass.PAID
    assert change.case.status is CaseStatus.IN_PROGRESS  # the work goes on, now paid
