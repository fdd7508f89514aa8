"""Spare parts under the warranty (三包备件) and beyond it (非正常备件): who approves a parts
request, by its amount [004], at and around every threshold; what the last approval starts
(shipping within 2 working days, or a local purchase settled within 30 days). Pure domain:
the case goes through ``apply_action``, time is an argument, no AWS."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from chalicelib.domain.case import Case, CaseKind, CaseStatus, Channel, Customer, Language
from chalicelib.domain.field_service import (
    Dispatch,
    FieldService,
    Party,
    ServiceClass,
    WarrantyCheck,
)
from chalicelib.domain.lifecycle import ActionRefused, PolicyPromises, apply_action
from chalicelib.domain.policies import ApprovalTier, FieldServicePolicy, Policies
from chalicelib.domain.staff import Role, StaffMember
from chalicelib.domain.timers import timers_for

SHANGHAI = ZoneInfo("Asia/Shanghai")
# Wednesday 3 June 2026, 10:00 in Shanghai.
START = datetime(2026, 6, 3, 10, 0, tzinfo=SHANGHAI)
PROMISES = PolicyPromises(Policies())

ANN = StaffMember(staff_id="ann", name="Ann", role=Role.AGENT)
TIM = StaffMember(staff_id="tim", name="Tim", role=Role.TECHNICIAN)
# One person per approving role, and a second one for some roles.
APPROVER = {
    Role.SERVICE_DIRECTOR: StaffMember(staff_id="dan", name="Dan", role=Role.SERVICE_DIRECTOR),
    Role.QA_MANAGER: StaffMember(staff_id="qian", name="Qian", role=Role.QA_MANAGER),
    Role.SERVICE_VP: StaffMember(staff_id="vera", name="Vera", role=Role.SERVICE_VP),
    Role.SUPPLY_VP: StaffMember(staff_id="sam", name="Sam", role=Role.SUPPLY_VP),
    Role.SALES_VP: StaffMember(staff_id="sal", name="Sal", role=Role.SALES_VP),
}
VINCE = StaffMember(staff_id="vince", name="Vince", role=Role.SERVICE_VP)
DIRECTOR, QA, SERVICE_VP, SUPPLY_VP, SALES_VP = (
    Role.SERVICE_DIRECTOR, Role.QA_MANAGER, Role.SERVICE_VP, Role.SUPPLY_VP, Role.SALES_VP,
)


def dispatched_case() -> Case:
    """A warranty repair sent to the dealer 'east', the technician on site."""
    record = FieldService(
        warranty=WarrantyCheck(
            in_warranty=True, reasons=("in_period",), service_class=ServiceClass.WARRANTY,
            checked_by="staff:ann", checked_at=START,
        ),
        dispatch=Dispatch(
            party=Party.DEALER, to="east", name="East Forklift Service",
            dispatched_at=START, dispatched_by="staff:ann", on_site_at=START,
        ),
    )
    return Case(
        case_id="c-1", case_number="AS000001", kind=CaseKind.REPAIR_REQUEST,
        status=CaseStatus.IN_PROGRESS,
        customer=Customer(name="Ningbo Port Machinery", email="service@ningbo-port.example"),
        serial_no="FL-1001", description="The mast does not lift.", language=Language.ZH,
        channel=Channel.PHONE, created_at=START, updated_at=START, version=1,
        field_service=record,
    )


class Parts:
    """One parts request on one case, and everyone acting on it in turn."""

    def __init__(self, amount: str | None = None, *, lines: list[dict[str, Any]] | None = None,
                 beyond_warranty: bool = False, urgent_local: bool = False,
                 policies: Policies | None = None) -> None:
        self.promises = PolicyPromises(policies) if policies else PROMISES
        self.now = START
        self.case = dispatched_case()
        if lines is None:
            lines = [{"part_no": "HYD-PUMP-7", "quantity": 1, "unit_price": amount}]
        change = self.apply("request_parts", {"lines": lines, "beyond_warranty": beyond_warranty,
                                              "urgent_local": urgent_local}, TIM)
        self.case = change.case

    def apply(self, action: str, params: dict[str, Any], by: StaffMember) -> Any:
        self.now += timedelta(minutes=10)
        return apply_action(self.case, action, params, actor=by, now=self.now,
                            promises=self.promises)

    @property
    def request(self) -> Any:
        assert self.case.field_service is not None
        return self.case.field_service.parts[0]

    def approve(self, by: StaffMember) -> None:
        self.case = self.apply("approve_parts", {"number": 1}, by).case

    def refused(self, by: StaffMember, action: str = "approve_parts") -> ActionRefused:
        before = self.case
        with pytest.raises(ActionRefused) as refused:
            self.apply(action, {"number": 1}, by)
        assert self.case is before  # nothing changed
        return refused.value


# (amount, beyond the warranty, every role that must approve)
TIERS = [
    ("499.99", False, (DIRECTOR,)),
    ("500", False, (DIRECTOR,)),
    ("500.01", False, (QA,)),
    ("1999.99", False, (QA,)),
    ("2000", False, (QA,)),
    ("2000.01", False, (SERVICE_VP, SUPPLY_VP)),
    ("999.99", True, (DIRECTOR, QA, SERVICE_VP)),
    ("1000", True, (DIRECTOR, QA, SERVICE_VP)),
    ("1000.01", True, (DIRECTOR, QA, SERVICE_VP, SALES_VP, SUPPLY_VP)),
]


@pytest.mark.parametrize(("amount", "beyond", "needs"), TIERS,
                         ids=[f"{a}{'-beyond' if b else ''}" for a, b, _ in TIERS])
def test_the_amount_says_who_approves_and_every_one_of_them_must(
    amount: str, beyond: bool, needs: tuple[Role, ...]
) -> None:
    parts = Parts(amount, beyond_warranty=beyond)
    assert parts.request.amount == Decimal(amount)
    assert set(parts.request.needs) == set(needs)
    assert parts.request.state == "awaiting_approval"

    # Nobody else may approve it, nor turn it down.
    for role, person in APPROVER.items():
        if role not in needs:
            assert parts.refused(person).code == "role"
    assert parts.refused(ANN).code == "role"

    for n, role in enumerate(needs, start=1):
        parts.approve(APPROVER[role])
        if n < len(needs):
            assert parts.request.state == "awaiting_approval"
            assert parts.request.ship_due_at is None
    assert parts.request.state == "approved"
    assert [a.role for a in parts.request.approvals] == list(needs)
    assert parts.request.approved_at == parts.now


def test_only_an_approver_of_the_request_may_turn_it_down() -> None:
    parts = Parts("480")

    with pytest.raises(ActionRefused) as refused:
        parts.apply("turn_down_parts", {"number": 1, "reason": "no budget"},
                    APPROVER[QA])
    assert refused.value.code == "role"

    parts.case = parts.apply("turn_down_parts", {"number": 1, "reason": "use the old pump"},
                             APPROVER[DIRECTOR]).case
    assert parts.request.state == "turned_down"
    assert parts.refused(APPROVER[DIRECTOR]).code == "not_now"  # nothing waits any more


def test_a_person_may_not_approve_twice() -> None:
    parts = Parts("2500")
    parts.approve(APPROVER[SERVICE_VP])

    refused = parts.refused(APPROVER[SERVICE_VP])

    assert refused.code == "role"
    assert "already approved" in refused.reason
    assert parts.request.state == "awaiting_approval"
    assert len(parts.request.approvals) == 1


def test_a_second_person_of_a_role_already_in_is_refused() -> None:
    parts = Parts("2500")
    parts.approve(APPROVER[SERVICE_VP])

    refused = parts.refused(VINCE)

    assert refused.code == "role"
    assert "vera" in refused.reason
    assert [a.by for a in parts.request.approvals] == ["staff:vera"]
    parts.approve(APPROVER[SUPPLY_VP])
    assert parts.request.state == "approved"


def test_a_role_outside_the_tier_is_refused_and_named_in_the_reason() -> None:
    parts = Parts("480")

    refused = parts.refused(APPROVER[SERVICE_VP])

    assert refused.code == "role"
    assert "service_director" in refused.reason
    assert parts.request.approvals == ()


def test_the_amount_is_the_sum_of_quantity_times_unit_price_over_the_lines() -> None:
    lines = [
        {"part_no": "SEAL-3", "quantity": 4, "unit_price": "25.00"},  # 100.00
        {"part_no": "HOSE-12", "quantity": 2, "unit_price": "200.00"},  # 400.00
    ]
    at_500 = Parts(lines=lines)
    assert at_500.request.amount == Decimal("500.00")
    assert at_500.request.needs == (DIRECTOR,)

    one_cent_more = Parts(lines=[*lines, {"part_no": "CLIP", "quantity": 1,
                                          "unit_price": "0.01"}])
    assert one_cent_more.request.amount == Decimal("500.01")
    assert one_cent_more.request.needs == (QA,)


def test_the_tiers_come_from_the_policies() -> None:
    policies = Policies(field_service=FieldServicePolicy(parts_approvals=(
        ApprovalTier(up_to=Decimal(100), roles=(DIRECTOR,)),
        ApprovalTier(roles=(QA, SUPPLY_VP)),
    )))

    parts = Parts("480", policies=policies)

    assert parts.request.needs == (QA, SUPPLY_VP)
    assert parts.refused(APPROVER[DIRECTOR]).code == "role"
    assert Parts("100", policies=policies).request.needs == (DIRECTOR,)


def test_the_parts_ship_within_2_working_days_of_the_last_approval() -> None:
    parts = Parts("2500")
    parts.approve(APPROVER[SERVICE_VP])  # Wednesday
    parts.now = datetime(2026, 6, 5, 9, 50, tzinfo=SHANGHAI)  # Friday
    parts.approve(APPROVER[SUPPLY_VP])  # at 10:00

    # Not Saturday or Sunday: Monday 8 and Tuesday 9 June, due at the close of business.
    due = datetime(2026, 6, 9, 17, 30, tzinfo=SHANGHAI)
    assert parts.request.ship_due_at == due
    assert parts.request.settle_due_at is None
    timer = timers_for(parts.case)["parts_shipping_1"]
    assert (timer.due_at, timer.parts_number) == (due, 1)

    parts.case = parts.apply("ship_parts", {"number": 1, "tracking_no": "SF1234"}, ANN).case
    assert "parts_shipping_1" not in timers_for(parts.case)
    # The old part comes back within 30 days of the shipping.
    assert parts.request.old_part.due_at == parts.now + timedelta(days=30)
    assert "old_part_1" in timers_for(parts.case)


def test_an_urgent_local_purchase_is_settled_within_30_days_of_the_last_approval() -> None:
    parts = Parts("2500", urgent_local=True)
    parts.approve(APPROVER[SERVICE_VP])
    parts.now += timedelta(days=1)
    parts.approve(APPROVER[SUPPLY_VP])
    last_approval = parts.now

    assert parts.request.settle_due_at == last_approval + timedelta(days=30)
    assert parts.request.ship_due_at is None
    assert timers_for(parts.case)["local_purchase_1"].due_at == last_approval + timedelta(
        days=30
    )
    # Bought locally: nothing to ship, finance settles it.
    with pytest.raises(ActionRefused):
        parts.apply("ship_parts", {"number": 1, "tracking_no": "SF1"}, ANN)
    fay = StaffMember(staff_id="fay", name="Fay", role=Role.FINANCE)
    parts.case = parts.apply("settle_local_purchase", {"number": 1, "receipt_ref": "R-77"},
                             fay).case
    assert parts.request.state == "settled"
    assert "local_purchase_1" not in timers_for(parts.case)


def test_approved_midweek_the_parts_ship_by_the_close_of_the_second_working_day() -> None:
    parts = Parts("480")
    parts.approve(APPROVER[DIRECTOR])  # Wednesday 3 June 10:20: Thursday and Friday
    assert parts.request.ship_due_at == datetime(2026, 6, 5, 9, 30, tzinfo=UTC)
