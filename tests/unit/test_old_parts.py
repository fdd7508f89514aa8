"""An old part (三包旧件) not back in time: a dealer's becomes a parts sale charged to the
dealer; one from our own technician or a supplier is a missed deadline, reminded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from chalicelib.domain.case import Case, CaseKind
from chalicelib.domain.field_service import (
    Dispatch,
    FieldService,
    OldPart,
    PartsLine,
    PartsRequest,
    Party,
    UnitOnCase,
)
from chalicelib.domain.policies import FieldServicePolicy, Partner, Policies
from chalicelib.domain.staff import Role
from chalicelib.domain.timers import DueTimer, fire, timers_for
from tests.unit.test_lifecycle import new_case

NOW = datetime(2026, 7, 1, 2, 0, tzinfo=UTC)
POLICIES = Policies(field_service=FieldServicePolicy(dealers={"east": Partner(name="East")}))


def case_with_old_part(party: Party, to: str, unit_dealer: str | None) -> Case:
    request = PartsRequest(
        number=1, lines=(PartsLine(part_no="P", quantity=2, unit_price=Decimal("240")),),
        amount=Decimal("480"), for_party=to, requested_by="staff:ann", requested_at=NOW,
        needs=(Role.SERVICE_DIRECTOR,), state="shipped",
        old_part=OldPart(due_at=NOW - timedelta(seconds=1)),
    )
    record = FieldService(
        unit=UnitOnCase(serial_no="FL-1", model="CPD30", dealer=unit_dealer),
        dispatch=Dispatch(party=party, to=to, name=to, dispatched_at=NOW,
                          dispatched_by="staff:ann"),
        parts=(request,),
    )
    return new_case(CaseKind.REPAIR_REQUEST).model_copy(update={"field_service": record})


def due(case: Case) -> DueTimer:
    timer = timers_for(case)["old_part_1"]
    return DueTimer(case_id=case.case_id, name=timer.name, stage=0, fire_at=timer.due_at)


@pytest.mark.parametrize("unit_dealer", ["east", None])
def test_a_dealers_part_is_charged_to_the_dealer(unit_dealer: str | None) -> None:
    case = case_with_old_part(Party.DEALER, "east", unit_dealer)
    firing = fire(due(case), case, POLICIES, NOW)
    assert firing is not None
    assert firing.lapsed_parts_request == 1
    assert firing.charge_to == "east"
    assert firing.notices == ()


@pytest.mark.parametrize(
    ("party", "to", "unit_dealer"),
    [(Party.TECHNICIAN, "leo", None), (Party.TECHNICIAN, "leo", "east"),
     (Party.SUPPLIER, "hydraulics", "east")],
)
def test_parts_not_sent_to_a_dealer_are_reminded_not_charged(
    party: Party, to: str, unit_dealer: str | None
) -> None:
    """Our own technician's or a supplier's part: the unit's dealer had no part in it."""
    case = case_with_old_part(party, to, unit_dealer)
    firing = fire(due(case), case, POLICIES, NOW)
    assert firing is not None
    assert firing.lapsed_parts_request is None
    assert [(n.to, n.template) for n in firing.notices] == [("owner", "deadline_missed")]
    assert firing.notices[0].values["parts_number"] == "1"
    assert firing.next_stage_at is not None  # then up the ladder
