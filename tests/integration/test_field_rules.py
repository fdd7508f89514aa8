"""The field-service rules of commit e3eeaba through the HTTP API, as the people in the flow
notice them (processes.md, "Field service and warranty flow"; issue 4): who may be sent and
who may then record the work, each party's promises and the reminders they bring, who is
offered and who may give a parts approval (at and around every amount tier), paid work's
parts, whom parts are charged to, what a cancelled case still owes, who judges misuse, and
what makes a case overdue.

A refused action changes nothing: the case read again over HTTP has the same version, the
same history and the same field-service record (parts included). The clock only moves when
told (time_machine); the sweep, the outbox sender and the schedules are called as their
schedules call them. Times are local Shanghai times (``sh``), deadlines counted on the CN
calendar (09:00-17:30). Monday 1 June 2026 is the usual first day.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from chalicelib.domain.staff import Role
from chalicelib.domain.timers import TimerKind
from tests.integration.support import (
    CUSTOMER,
    DISPATCHED,
    EAST,
    FIELD_MAIL,
    HYDRAULICS,
    LEO,
    PARTS_SALE,
    QIAN,
    SAM,
    TOM,
    VERA,
    FieldDeskMixin,
    customer_mail,
    local,
    use_field_policies,
)
from tests.integration.test_staff_api import body, call
from tests.integration.test_status_and_mail import scheduled_event
from tests.integration.test_timers import (
    DIRECTOR,
    EMAILS,
    OWNER,
    SECOND,
    SUPERVISOR,
    Desk,
    Opened,
    at,
    escalated,
    missed,
    sh,
)

# Besides the field staff of support.py: a second technician, a second service director,
# the sales VP (beyond-warranty parts above 1,000) and someone in finance.
TED, DORA, SALLY, FIONA = "ted", "dora", "sally", "fiona"
MORE_STAFF = {
    TED: (Role.TECHNICIAN, "ted@desk.example.com"),
    DORA: (Role.SERVICE_DIRECTOR, "dora@desk.example.com"),
    SALLY: (Role.SALES_VP, "sally@desk.example.com"),
    FIONA: (Role.FINANCE, "fiona@desk.example.com"),
}
MAIL = {**EMAILS, **FIELD_MAIL, **{sid: email for sid, (_, email) in MORE_STAFF.items()}}
ROLE_OF = {
    OWNER: "agent", SUPERVISOR: "supervisor", DIRECTOR: "service_director", TOM: "technician",
    QIAN: "qa_manager", VERA: "service_vp", SAM: "supply_vp", LEO: "logistics",
    **{sid: role.value for sid, (role, _) in MORE_STAFF.items()},
}

# The steps of a case dispatched to one of our technicians that only they (or the front
# line) record, with parameters that are right for each.
TECHNICIAN_STEPS: dict[str, dict[str, Any] | None] = {
    "party_replied": None,
    "arrived_on_site": None,
    "unit_running": None,
    "lend_unit": {"description": "CPD25 loan forklift"},
    "record_service_form": {"work": "Seal kit replaced", "hours": "2"},
    "service_form_signed_on_paper": {"signed_by": "Li Wei"},
    "request_parts": {"lines": [{"part_no": "SEAL-KIT-3", "quantity": 1,
                                 "unit_price": "120.00"}]},
    "set_fees": {"amount": "300.00", "technician": TOM, "on_the_spot": True},
    "check_warranty": {"operating_hours": 2100},
    "quote_fees": {"amount": "300.00", "description": "Seal kit and 2 hours"},
    "record_fee_consent": {"signed_by": "Li Wei"},
}
APPROVALS = {"approve_parts", "turn_down_parts"}


class FieldDesk(FieldDeskMixin, Desk):
    """test_timers' desk with the field staff, the unit registry and a few more people."""


@pytest.fixture
def desk(client: Any, aws: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FieldDesk:
    use_field_policies(tmp_path, monkeypatch)
    desk = FieldDesk(client, aws)
    for staff_id, (role, email) in MORE_STAFF.items():
        desk.add_staff(staff_id, role, email)
    return desk


# -- helpers ---------------------------------------------------------------------------------


def state(desk: FieldDesk, case: Opened) -> tuple[Any, ...]:
    """What a refused action must leave as it was, read over HTTP: the version, the length
    of the history, the status and the whole field-service record (parts included)."""
    read = desk.read(case)
    return (read["case"]["version"], len(read["history"]), read["case"]["status"],
            read["case"]["field_service"])


def refused(desk: FieldDesk, case: Opened, when: datetime, action: str,
            params: dict[str, Any] | None = None, staff_id: str = OWNER) -> tuple[int, str]:
    """The action is refused and nothing changes: its status code and message."""
    before = state(desk, case)
    response = desk.act(case, when, action, params, staff_id)
    assert response.status_code != 200, (action, staff_id, response.body)
    assert state(desk, case) == before, (action, staff_id)
    errors = body(response)["errors"]
    return response.status_code, " | ".join(f"{e['field']}: {e['message']}" for e in errors)


def offered(desk: FieldDesk, case: Opened, staff_id: str) -> set[str]:
    return set(desk.read(case, staff_id)["available_actions"])


def line(amount: str, part_no: str = "HYD-PUMP-7") -> dict[str, Any]:
    return {"part_no": part_no, "description": "lift pump", "quantity": 1,
            "unit_price": amount}


def warranty_repair(desk: FieldDesk, serial_no: str, *, dealer: str | None = None,
                    contract: bool = False, out_of_warranty: bool = False) -> Opened:
    """A repair of a registered unit reported on Monday 1 June 10:00, owned by Ann, its
    warranty checked at 10:05 (in warranty unless told otherwise)."""
    unit: dict[str, Any] = {"serial_no": serial_no, "region": "Zhejiang"}
    if dealer:
        unit["dealer"] = dealer
    if contract:
        unit["maintenance_contract"] = True
    if out_of_warranty or contract:
        unit.update(sold_on="2023-03-01", accepted_on="2023-03-01")
    desk.register_unit(sh(2026, 5, 25, 9), **unit)
    case = desk.report_repair(sh(2026, 6, 1, 10, 0), serial_no)
    desk.do(case, sh(2026, 6, 1, 10, 1), "assign_owner", {"owner": OWNER})
    desk.do(case, sh(2026, 6, 1, 10, 5), "check_warranty", {"operating_hours": 700})
    return case


def parts(desk: FieldDesk, case: Opened) -> list[dict[str, Any]]:
    requests: list[dict[str, Any]] = desk.record(case)["parts"]
    return requests


def overdue_numbers(desk: FieldDesk, when: datetime) -> set[str]:
    with desk.moment(when):
        response = call(desk.client, "get", "/api/staff/cases?overdue=true",
                        desk.tokens[OWNER])
    assert response.status_code == 200, response.body
    return {case["case_number"] for case in body(response)["cases"]}


# -- who may be sent -------------------------------------------------------------------------


def test_work_is_dispatched_only_to_a_member_of_staff_who_is_a_technician(
    desk: FieldDesk,
) -> None:
    case = warranty_repair(desk, "FL-2025-0101")

    for to, why in ((QIAN, "not a technician"), (OWNER, "not a technician"),
                    (DIRECTOR, "not a technician"), ("nobody", "not a member of staff")):
        code, message = refused(desk, case, sh(2026, 6, 1, 10, 10), "dispatch",
                                {"party": "technician", "to": to})
        assert (code, message) == (400, f"params.to: {why}"), to
    assert desk.mails_to(MAIL[QIAN], case, DISPATCHED) == []

    sent = desk.do(case, sh(2026, 6, 1, 10, 15), "dispatch", {"party": "technician", "to": TED})

    assert (sent["field_service"]["dispatch"]["to"], sent["status"]) == (TED, "in_progress")
    assert len(desk.mails_to(MAIL[TED], case, DISPATCHED)) == 1


def test_the_fees_name_a_technician_as_the_one_responsible(desk: FieldDesk) -> None:
    # Serviced under a maintenance contract (class B): fees without a quote to sign first.
    case = warranty_repair(desk, "FL-2023-0102", contract=True)
    assert desk.record(case)["warranty"]["service_class"] == "B"
    desk.do(case, sh(2026, 6, 1, 10, 30), "dispatch", {"party": "technician", "to": TOM})

    for technician, why in ((QIAN, "not a technician"), (OWNER, "not a technician"),
                            ("nobody", "not a member of staff")):
        code, message = refused(desk, case, sh(2026, 6, 1, 16, 0), "set_fees",
                                {"amount": "300.00", "technician": technician,
                                 "on_the_spot": True})
        assert (code, message) == (400, f"params.technician: {why}"), technician

    fees = desk.do(case, sh(2026, 6, 1, 16, 5), "set_fees",
                   {"amount": "300.00", "technician": TOM, "on_the_spot": True})

    assert fees["field_service"]["fees"]["technician"] == TOM


# -- a case dispatched to one of our technicians ---------------------------------------------


def test_another_technician_may_not_record_the_work_of_a_case_sent_to_a_colleague(
    desk: FieldDesk,
) -> None:
    case = warranty_repair(desk, "FL-2023-0103", contract=True)
    desk.do(case, sh(2026, 6, 1, 10, 30), "dispatch", {"party": "technician", "to": TOM})
    desk.do(case, sh(2026, 6, 1, 10, 40), "quote_fees",
            {"amount": "300.00", "description": "Seal kit and 2 hours"})
    desk.do(case, sh(2026, 6, 1, 15, 0), "record_service_form",
            {"work": "Seal kit replaced", "hours": "2"}, staff_id=TOM)
    # Every step is open on the case now: to Tom and to the front line ...
    assert set(TECHNICIAN_STEPS) <= offered(desk, case, TOM)
    assert set(TECHNICIAN_STEPS) <= offered(desk, case, OWNER)
    # ... but not to Ted, another technician.
    assert offered(desk, case, TED).isdisjoint(TECHNICIAN_STEPS)

    for action, params in TECHNICIAN_STEPS.items():
        code, message = refused(desk, case, sh(2026, 6, 1, 15, 30), action, params,
                                staff_id=TED)
        assert code == 403, (action, code, message)
        assert "dispatched to Tom (tom)" in message, (action, message)

    # The front line records the work on Tom's word; Tom his own.
    desk.do(case, sh(2026, 6, 1, 16, 0), "service_form_signed_on_paper",
            {"signed_by": "Li Wei"})
    fees = desk.do(case, sh(2026, 6, 1, 16, 5), "set_fees",
                   {"amount": "300.00", "technician": TOM, "on_the_spot": True}, staff_id=TOM)
    assert fees["field_service"]["fees"]["technician"] == TOM
    assert fees["field_service"]["form"]["sign_off"]["name"] == "Li Wei"


def test_a_case_sent_to_a_dealer_may_be_worked_by_any_technician(desk: FieldDesk) -> None:
    case = warranty_repair(desk, "FL-2025-0104", dealer="east")
    desk.do(case, sh(2026, 6, 1, 10, 10), "dispatch", {"party": "dealer"})

    assert {"arrived_on_site", "record_service_form"} <= offered(desk, case, TED)
    arrived = desk.do(case, sh(2026, 6, 1, 11, 0), "arrived_on_site", staff_id=TED)
    assert at(arrived["field_service"]["dispatch"]["on_site_at"]) == sh(2026, 6, 1, 11, 0)


# -- the supplier's and the dealer's promises -------------------------------------------------


@pytest.mark.parametrize("signed", ["on_paper", "on_the_link"])
def test_a_supplier_replies_and_returns_the_signed_form_and_is_never_sent_on_site(
    desk: FieldDesk, signed: str,
) -> None:
    case = warranty_repair(desk, "FL-2025-0105")

    sent = desk.do(case, sh(2026, 6, 1, 10, 30), "dispatch",
                   {"party": "supplier", "to": "hydraulics"})

    dispatch = sent["field_service"]["dispatch"]
    assert (dispatch["on_site_due_at"], dispatch["fixed_due_at"]) == (None, None)
    # A reply in 24 hours; the form by the end of the 5th working day (Tuesday to Monday).
    reply_due, form_due = sh(2026, 6, 2, 10, 30), sh(2026, 6, 8, 17, 30)
    timers = desk.timers(case)
    assert (timers["party_reply"], timers["signed_form"]) == (reply_due, form_due)
    assert {"on_site", "fixed"}.isdisjoint(timers)
    [order] = desk.mails_to(HYDRAULICS, case, DISPATCHED)
    assert local(reply_due) in order.text and local(form_due) in order.text
    assert "到达现场" not in order.text  # no on-site line for a supplier
    assert at(sent["next_due_at"]) == reply_due

    desk.do(case, sh(2026, 6, 1, 14, 0), "party_replied")
    # A day after the dispatch, when our own technician would have had to be on site and
    # the unit running again: nobody is reminded of anything.
    desk.sweep_and_send(sh(2026, 6, 2, 10, 31))
    desk.sweep_and_send(sh(2026, 6, 2, 15, 0))
    desk.do(case, sh(2026, 6, 3, 11, 0), "record_service_form",
            {"work": "Pump replaced by the supplier", "hours": "4"})
    if signed == "on_paper":
        desk.do(case, sh(2026, 6, 5, 10, 0), "service_form_signed_on_paper",
                {"signed_by": "Li Wei"})
    else:
        assert f"{case.status_url}/sign" in customer_mail(
            desk, case, "Please confirm the repair").text
        desk.sign(case, sh(2026, 6, 5, 10, 0), "form", "Li Wei")

    assert "signed_form" not in desk.timers(case)
    assert desk.do(case, sh(2026, 6, 5, 11, 0), "resolve")["status"] == "resolved"
    desk.sweep_and_send(sh(2026, 6, 9, 10, 0))
    for kind in (TimerKind.ON_SITE, TimerKind.FIXED, TimerKind.SIGNED_FORM,
                 TimerKind.PARTY_REPLY):
        assert desk.received(case, missed(kind)) == Counter(), kind
        assert desk.received(case, escalated(kind)) == Counter(), kind


def test_a_dealer_arranges_within_2_hours_and_the_owner_is_told_at_4(desk: FieldDesk) -> None:
    case = warranty_repair(desk, "FL-2025-0106", dealer="east")

    sent = desk.do(case, sh(2026, 6, 1, 10, 10), "dispatch", {"party": "dealer"})

    dispatch = sent["field_service"]["dispatch"]
    arrange_by, told_at = sh(2026, 6, 1, 12, 10), sh(2026, 6, 1, 14, 10)
    assert at(dispatch["reply_due_at"]) == arrange_by
    assert desk.timers(case)["party_reply"] == told_at
    [order] = desk.mails_to(EAST, case, DISPATCHED)
    assert local(arrange_by) in order.text
    assert f"{local(sh(2026, 6, 2, 10, 10))} 前到达现场" in order.text  # still sent on site

    desk.sweep_and_send(told_at - SECOND)
    assert desk.received(case, missed(TimerKind.PARTY_REPLY)) == Counter()

    desk.sweep_and_send(told_at)

    assert desk.received(case, missed(TimerKind.PARTY_REPLY)) == Counter({MAIL[OWNER]: 1})
    desk.sweep_and_send(told_at + timedelta(minutes=30))
    assert desk.received(case, missed(TimerKind.PARTY_REPLY)) == Counter({MAIL[OWNER]: 1})
    assert desk.received(case, escalated(TimerKind.PARTY_REPLY)) == Counter()


def test_the_owner_s_reminder_names_the_dealer_s_2_hour_deadline(desk: FieldDesk) -> None:
    case = warranty_repair(desk, "FL-2025-0120", dealer="east")
    desk.do(case, sh(2026, 6, 1, 10, 10), "dispatch", {"party": "dealer"})

    desk.sweep_and_send(sh(2026, 6, 1, 14, 10))

    [told] = desk.mails_to(MAIL[OWNER], case, missed(TimerKind.PARTY_REPLY))
    assert f"已于 {local(sh(2026, 6, 1, 12, 10))} 到期" in told.text


def test_a_dealer_not_arranging_within_2_hours_makes_the_case_overdue(
    desk: FieldDesk,
) -> None:
    case = warranty_repair(desk, "FL-2025-0121", dealer="east")
    desk.do(case, sh(2026, 6, 1, 10, 10), "dispatch", {"party": "dealer"})
    arrange_by = sh(2026, 6, 1, 12, 10)

    assert case.case_number not in overdue_numbers(desk, arrange_by - SECOND)
    assert case.case_number in overdue_numbers(desk, arrange_by + SECOND)
    assert at(desk.case(case)["next_due_at"]) == arrange_by


def test_a_dealer_arranging_late_but_before_the_check_is_not_reminded(
    desk: FieldDesk,
) -> None:
    case = warranty_repair(desk, "FL-2025-0107", dealer="east")
    desk.do(case, sh(2026, 6, 1, 10, 10), "dispatch", {"party": "dealer"})

    desk.do(case, sh(2026, 6, 1, 13, 0), "party_replied")

    assert "party_reply" not in desk.timers(case)
    desk.sweep_and_send(sh(2026, 6, 1, 14, 10))
    assert desk.received(case, missed(TimerKind.PARTY_REPLY)) == Counter()


# -- parts approvals: who is offered them, who may give them ----------------------------------


def test_approvals_are_offered_only_to_a_role_the_request_still_waits_for(
    desk: FieldDesk,
) -> None:
    case = warranty_repair(desk, "FL-2025-0108")
    desk.do(case, sh(2026, 6, 1, 10, 30), "dispatch", {"party": "technician", "to": TOM})
    desk.do(case, sh(2026, 6, 1, 11, 0), "request_parts", {"lines": [line("2500.00")]},
            staff_id=TOM)
    assert parts(desk, case)[0]["needs"] == ["service_vp", "supply_vp"]

    for staff_id in (VERA, SAM):
        assert offered(desk, case, staff_id) >= APPROVALS, staff_id
    for staff_id in (DIRECTOR, QIAN, SALLY, TOM, OWNER):
        assert offered(desk, case, staff_id).isdisjoint(APPROVALS), staff_id

    desk.do(case, sh(2026, 6, 1, 11, 30), "approve_parts", {"number": 1}, staff_id=VERA)

    assert offered(desk, case, VERA).isdisjoint(APPROVALS)
    assert offered(desk, case, SAM) >= APPROVALS
    for action, params in (("approve_parts", {"number": 1}),
                           ("turn_down_parts", {"number": 1, "reason": "too dear"})):
        code, message = refused(desk, case, sh(2026, 6, 1, 11, 35), action, params,
                                staff_id=VERA)
        assert (code, message) == (
            403, "action: you have already approved parts request 1"), action

    approved = desk.do(case, sh(2026, 6, 1, 12, 0), "approve_parts", {"number": 1},
                       staff_id=SAM)

    assert approved["field_service"]["parts"][0]["state"] == "approved"
    for staff_id in (VERA, SAM, DIRECTOR):
        assert offered(desk, case, staff_id).isdisjoint(APPROVALS), staff_id


def test_whoever_requests_parts_does_not_approve_them(desk: FieldDesk) -> None:
    case = warranty_repair(desk, "FL-2025-0109")
    # The director, on the front line, requests the parts; his role approves up to 500.
    desk.do(case, sh(2026, 6, 1, 11, 0), "request_parts", {"lines": [line("480.00")]},
            staff_id=DIRECTOR)

    assert offered(desk, case, DIRECTOR).isdisjoint(APPROVALS)
    assert offered(desk, case, DORA) >= APPROVALS
    for action, params in (("approve_parts", {"number": 1}),
                           ("turn_down_parts", {"number": 1, "reason": "not needed"})):
        code, message = refused(desk, case, sh(2026, 6, 1, 11, 5), action, params,
                                staff_id=DIRECTOR)
        assert code == 403, action
        assert "you requested parts request 1" in message, message

    approved = desk.do(case, sh(2026, 6, 1, 11, 10), "approve_parts", {"number": 1},
                       staff_id=DORA)
    assert approved["field_service"]["parts"][0]["approvals"][0]["by"] == f"staff:{DORA}"
    assert approved["field_service"]["parts"][0]["state"] == "approved"


def test_a_role_whose_approval_is_in_cannot_turn_the_request_down(desk: FieldDesk) -> None:
    case = warranty_repair(desk, "FL-2025-0110")
    desk.do(case, sh(2026, 6, 1, 11, 0), "request_parts",
            {"lines": [line("900.00")], "beyond_warranty": True})
    assert parts(desk, case)[0]["needs"] == ["service_director", "qa_manager", "service_vp"]
    desk.do(case, sh(2026, 6, 1, 11, 10), "approve_parts", {"number": 1}, staff_id=DIRECTOR)

    # Neither the director who approved nor another director may now turn it down.
    assert offered(desk, case, DORA).isdisjoint(APPROVALS)
    for staff_id in (DIRECTOR, DORA):
        code, message = refused(desk, case, sh(2026, 6, 1, 11, 20), "turn_down_parts",
                                {"number": 1, "reason": "too dear"}, staff_id=staff_id)
        assert code == 403, (staff_id, message)
    code, message = refused(desk, case, sh(2026, 6, 1, 11, 21), "approve_parts",
                            {"number": 1}, staff_id=DORA)
    assert (code, message) == (403, "action: the service_director's approval of parts "
                                    "request 1 is already in (by staff:dan)")

    down = desk.do(case, sh(2026, 6, 1, 11, 30), "turn_down_parts",
                   {"number": 1, "reason": "repair the pump instead"}, staff_id=QIAN)

    assert down["field_service"]["parts"][0]["state"] == "turned_down"


# -- approval tiers, at and around every boundary ---------------------------------------------

# (amount, the roles that must approve, one role that may not).
WARRANTY_TIERS = [
    ("499.99", ["service_director"], QIAN),
    ("500.00", ["service_director"], QIAN),
    ("500.01", ["qa_manager"], DIRECTOR),
    ("1999.99", ["qa_manager"], DIRECTOR),
    ("2000.00", ["qa_manager"], VERA),
    ("2000.01", ["service_vp", "supply_vp"], QIAN),
]
BEYOND_TIERS = [
    ("999.99", ["service_director", "qa_manager", "service_vp"], SAM),
    ("1000.00", ["service_director", "qa_manager", "service_vp"], SALLY),
    ("1000.01", ["service_director", "qa_manager", "service_vp", "sales_vp", "supply_vp"],
     FIONA),
]
APPROVER_OF = {"service_director": DIRECTOR, "qa_manager": QIAN, "service_vp": VERA,
               "supply_vp": SAM, "sales_vp": SALLY}


@pytest.mark.parametrize(("beyond", "tiers"), [(False, WARRANTY_TIERS), (True, BEYOND_TIERS)],
                         ids=["warranty_parts", "beyond_warranty"])
def test_each_amount_is_approved_by_exactly_the_roles_of_its_tier(
    desk: FieldDesk, beyond: bool, tiers: list[tuple[str, list[str], str]],
) -> None:
    case = warranty_repair(desk, f"FL-2025-02{int(beyond)}1")
    when = sh(2026, 6, 1, 11, 0)
    for amount, _, _ in tiers:
        desk.do(case, when, "request_parts",
                {"lines": [line(amount)], "beyond_warranty": beyond})
        when += timedelta(minutes=1)

    for number, (amount, needs, wrong) in enumerate(tiers, start=1):
        request = parts(desk, case)[number - 1]
        assert (request["amount"], request["needs"]) == (amount, needs)
        assert request["beyond_warranty"] is beyond
        # A role outside the tier: refused, nothing changes.
        code, message = refused(desk, case, when, "approve_parts", {"number": number},
                                staff_id=wrong)
        assert code == 403, (amount, wrong)
        why = (f"parts request {number} ({amount}) is approved by: {', '.join(needs)}; "
               f"not by a {ROLE_OF[wrong]}")
        if wrong == FIONA:  # no approver at all
            why = "a finance may not approve parts"
        assert why in message, (amount, message)
        # Every role of the tier approves; the request waits until the last one.
        for i, role in enumerate(needs):
            approved = desk.do(case, when, "approve_parts", {"number": number},
                               staff_id=APPROVER_OF[role])
            request = approved["field_service"]["parts"][number - 1]
            last = i == len(needs) - 1
            assert request["state"] == ("approved" if last else "awaiting_approval"), (
                amount, role)
            when += timedelta(minutes=1)
    assert [r["state"] for r in parts(desk, case)] == ["approved"] * len(tiers)


# -- paid work's parts --------------------------------------------------------------------------


def test_paid_work_s_parts_are_beyond_the_warranty_and_owe_no_old_part(
    desk: FieldDesk,
) -> None:
    case = warranty_repair(desk, "FL-2023-0111", out_of_warranty=True)
    assert desk.record(case)["warranty"]["service_class"] == "A"
    desk.do(case, sh(2026, 6, 1, 10, 30), "quote_fees",
            {"amount": "1200.00", "description": "Lift pump and 3 hours"})
    desk.sign(case, sh(2026, 6, 1, 11, 0), "quote", "Li Wei")
    desk.do(case, sh(2026, 6, 1, 11, 30), "dispatch", {"party": "technician", "to": TOM})

    desk.do(case, sh(2026, 6, 1, 14, 0), "request_parts", {"lines": [line("800.00")]},
            staff_id=TOM)

    [request] = parts(desk, case)
    assert (request["beyond_warranty"], request["paid_by_customer"]) == (True, True)
    # 800 of warranty parts would be QA's alone; beyond the warranty it takes three.
    assert request["needs"] == ["service_director", "qa_manager", "service_vp"]
    for staff_id in (DIRECTOR, QIAN, VERA):
        desk.do(case, sh(2026, 6, 1, 15, 0), "approve_parts", {"number": 1},
                staff_id=staff_id)
    shipped = desk.do(case, sh(2026, 6, 2, 10, 0), "ship_parts",
                      {"number": 1, "tracking_no": "SF9911"}, staff_id=LEO)

    assert shipped["field_service"]["parts"][0]["old_part"] is None
    assert not any(name.startswith("old_part") for name in desk.timers(case))
    desk.sweep_and_send(sh(2026, 7, 3, 10, 0))
    assert desk.received(case, missed(TimerKind.OLD_PART)) == Counter()
    assert desk.mails_to(EAST, case, PARTS_SALE) == []


def test_no_parts_are_requested_for_a_repair_before_its_warranty_check(
    desk: FieldDesk,
) -> None:
    desk.register_unit(sh(2026, 5, 25, 9), serial_no="FL-2025-0112", region="Shanghai")
    case = desk.report_repair(sh(2026, 6, 1, 10, 0), "FL-2025-0112")

    assert "request_parts" not in offered(desk, case, OWNER)
    code, _ = refused(desk, case, sh(2026, 6, 1, 10, 5), "request_parts",
                      {"lines": [line("100.00")]})
    assert code == 422

    desk.do(case, sh(2026, 6, 1, 10, 10), "check_warranty")
    assert "request_parts" in offered(desk, case, OWNER)


# -- whom the parts are charged to -------------------------------------------------------------


@pytest.mark.parametrize("party", ["technician", "dealer"])
def test_parts_requested_before_the_dispatch_go_to_whoever_is_dispatched_when_shipped(
    desk: FieldDesk, party: str,
) -> None:
    # The unit has a dealer of its own; the parts are asked for before anyone is sent.
    case = warranty_repair(desk, "FL-2025-0113", dealer="east")
    desk.do(case, sh(2026, 6, 1, 10, 20), "request_parts", {"lines": [line("300.00")]})
    desk.do(case, sh(2026, 6, 1, 10, 30), "approve_parts", {"number": 1}, staff_id=DIRECTOR)
    to = {"party": "technician", "to": TOM} if party == "technician" else {"party": "dealer"}
    desk.do(case, sh(2026, 6, 1, 11, 0), "dispatch", to)
    desk.do(case, sh(2026, 6, 2, 10, 0), "ship_parts",
            {"number": 1, "tracking_no": "SF7001"}, staff_id=LEO)
    [request] = parts(desk, case)
    assert (request["for_party"], request["for_party_kind"]) == (
        (TOM, "technician") if party == "technician" else ("east", "dealer"))
    due = sh(2026, 7, 2, 10, 0)
    assert desk.timers(case)["old_part_1"] == due

    desk.sweep_and_send(due - SECOND)
    assert desk.received(case, missed(TimerKind.OLD_PART)) == Counter()
    assert parts(desk, case)[0]["sale"] is None

    desk.sweep_and_send(due)

    sale = parts(desk, case)[0]["sale"]
    if party == "technician":
        # Our own technician's old part is not sold to the unit's dealer: Ann is reminded.
        assert sale is None
        assert desk.mails_to(EAST, case, PARTS_SALE) == []
        assert desk.received(case, missed(TimerKind.OLD_PART)) == Counter({MAIL[OWNER]: 1})
    else:
        assert (sale["charged_to"], sale["amount"], sale["reason"]) == (
            "east", "300.00", "not_returned")
        assert len(desk.mails_to(EAST, case, PARTS_SALE)) == 1
        assert desk.received(case, missed(TimerKind.OLD_PART)) == Counter()


# -- what a cancelled case still owes ----------------------------------------------------------


def test_a_cancelled_case_s_part_out_to_a_dealer_still_becomes_a_parts_sale(
    desk: FieldDesk,
) -> None:
    case = warranty_repair(desk, "FL-2025-0114", dealer="east")
    desk.do(case, sh(2026, 6, 1, 10, 10), "dispatch", {"party": "dealer"})
    desk.do(case, sh(2026, 6, 1, 11, 0), "request_parts", {"lines": [line("480.00")]})
    desk.do(case, sh(2026, 6, 1, 11, 30), "approve_parts", {"number": 1}, staff_id=DIRECTOR)
    desk.do(case, sh(2026, 6, 2, 10, 0), "ship_parts",
            {"number": 1, "tracking_no": "SF7788"}, staff_id=LEO)

    cancelled = desk.do(case, sh(2026, 6, 3, 9, 0), "cancel",
                        {"text": "The customer sold the forklift."})

    assert cancelled["status"] == "cancelled"
    due = sh(2026, 7, 2, 10, 0)
    assert desk.timers(case) == {"old_part_1": due}
    desk.sweep_and_send(due - SECOND)
    assert desk.mails_to(EAST, case, PARTS_SALE) == []

    desk.sweep_and_send(due)

    sale = parts(desk, case)[0]["sale"]
    assert (sale["charged_to"], sale["amount"], sale["reason"]) == (
        "east", "480.00", "not_returned")
    [charged] = desk.mails_to(EAST, case, PARTS_SALE)
    assert "480.00" in charged.subject
    assert desk.case(case)["status"] == "cancelled"
    assert desk.timers(case) == {}


def test_a_cancelled_case_s_old_part_and_later_fees_are_still_taken_in(
    desk: FieldDesk,
) -> None:
    case = warranty_repair(desk, "FL-2023-0115", contract=True)
    desk.do(case, sh(2026, 6, 1, 10, 30), "dispatch", {"party": "technician", "to": TOM})
    desk.do(case, sh(2026, 6, 1, 11, 0), "request_parts", {"lines": [line("300.00")]},
            staff_id=TOM)
    desk.do(case, sh(2026, 6, 1, 11, 30), "approve_parts", {"number": 1}, staff_id=DIRECTOR)
    desk.do(case, sh(2026, 6, 2, 10, 0), "ship_parts",
            {"number": 1, "tracking_no": "SF7002"}, staff_id=LEO)
    # The director sets the fees and agrees to later payment in one step: due in 30 days.
    desk.do(case, sh(2026, 6, 2, 11, 0), "set_fees",
            {"amount": "300.00", "technician": TOM, "on_the_spot": False}, staff_id=DIRECTOR)

    desk.do(case, sh(2026, 6, 3, 9, 0), "cancel", {"text": "The customer withdrew."})

    assert desk.timers(case) == {"old_part_1": sh(2026, 7, 2, 10, 0),
                                 "fees": sh(2026, 7, 2, 11, 0)}
    assert {"old_part_received", "fees_collected"} <= offered(desk, case, OWNER)
    desk.do(case, sh(2026, 6, 10, 10, 0), "old_part_received", {"number": 1}, staff_id=LEO)
    desk.do(case, sh(2026, 6, 11, 10, 0), "inspect_old_part",
            {"number": 1, "accepted": True}, staff_id=QIAN)
    collected = desk.do(case, sh(2026, 6, 12, 10, 0), "fees_collected",
                        {"reference": "Receipt 2026-0612"}, staff_id=FIONA)

    assert collected["status"] == "cancelled"
    assert collected["field_service"]["parts"][0]["old_part"]["accepted"] is True
    assert at(collected["field_service"]["fees"]["collected_at"]) == sh(2026, 6, 12, 10, 0)
    assert desk.timers(case) == {}
    desk.sweep_and_send(sh(2026, 7, 3, 10, 0))
    assert desk.received(case, missed(TimerKind.OLD_PART)) == Counter()
    assert desk.received(case, missed(TimerKind.FEES)) == Counter()


# -- who judges misuse -------------------------------------------------------------------------


def test_misuse_and_non_original_parts_are_judged_by_a_technician_or_qa(
    desk: FieldDesk,
) -> None:
    desk.register_unit(sh(2026, 5, 25, 9), serial_no="FL-2025-0116", region="Shanghai")
    case = desk.report_repair(sh(2026, 6, 1, 10, 0), "FL-2025-0116")
    for staff_id in (OWNER, SUPERVISOR, DIRECTOR):
        for params in ({"misuse": True}, {"original_parts": False}):
            code, message = refused(desk, case, sh(2026, 6, 1, 10, 5), "check_warranty",
                                    params, staff_id=staff_id)
            assert code == 403, (staff_id, params)
            assert "found by the technician on site or by QA" in message

    judged = desk.do(case, sh(2026, 6, 1, 10, 10), "check_warranty", {"misuse": True},
                     staff_id=QIAN)
    assert judged["field_service"]["warranty"]["service_class"] == "A"
    assert "misuse" in judged["field_service"]["warranty"]["reasons"]
    judged = desk.do(case, sh(2026, 6, 1, 10, 20), "check_warranty",
                     {"original_parts": False}, staff_id=TOM)
    assert judged["field_service"]["warranty"]["in_warranty"] is False
    # Without a finding, the front line records the check as before.
    cleared = desk.do(case, sh(2026, 6, 1, 10, 30), "check_warranty")
    assert cleared["field_service"]["warranty"]["service_class"] == "C"


# -- what makes a case overdue ------------------------------------------------------------------


def test_a_missed_party_reply_makes_the_case_overdue(desk: FieldDesk) -> None:
    case = warranty_repair(desk, "FL-2025-0117")
    desk.do(case, sh(2026, 6, 1, 10, 30), "dispatch", {"party": "technician", "to": TOM})
    reply_due = sh(2026, 6, 1, 22, 30)  # before the resolution (5 working days)

    assert at(desk.case(case)["next_due_at"]) == reply_due
    assert case.case_number not in overdue_numbers(desk, reply_due - SECOND)
    assert case.case_number in overdue_numbers(desk, reply_due + SECOND)


def test_parts_not_shipped_in_time_make_the_case_overdue_and_the_daily_summary_counts_it(
    desk: FieldDesk,
) -> None:
    case = warranty_repair(desk, "FL-2025-0118")
    desk.do(case, sh(2026, 6, 1, 10, 30), "dispatch", {"party": "technician", "to": TOM})
    desk.do(case, sh(2026, 6, 1, 15, 0), "record_service_form",
            {"work": "Pump to be replaced", "hours": "1"}, staff_id=TOM)
    desk.sign(case, sh(2026, 6, 1, 16, 0), "form", "Li Wei")
    desk.do(case, sh(2026, 6, 1, 16, 10), "request_parts", {"lines": [line("300.00")]},
            staff_id=TOM)
    desk.do(case, sh(2026, 6, 1, 16, 30), "approve_parts", {"number": 1}, staff_id=DIRECTOR)
    ship_by = sh(2026, 6, 3, 17, 30)  # by the end of the 2nd working day

    assert at(desk.case(case)["next_due_at"]) == ship_by
    assert case.case_number not in overdue_numbers(desk, ship_by - SECOND)
    assert case.case_number in overdue_numbers(desk, ship_by + SECOND)

    # The next morning's summary to the service centre counts it among the overdue.
    with desk.moment(sh(2026, 6, 4, 8, 30)):
        sent = desk.client.lambda_.invoke("daily_summary", scheduled_event(desk.client))
    assert sent.payload["sent"] == 1
    desk.drain()
    summaries = [m for m in desk.inbox() if "2026-06-03" in m.subject]
    assert summaries
    assert "逾期未处理：1" in summaries[0].text
    assert f"- {case.case_number}（{OWNER}，应于 2026-06-03 17:30 前处理）" in summaries[0].text


def test_a_planned_project_milestone_makes_the_case_overdue(desk: FieldDesk) -> None:
    with desk.moment(sh(2026, 6, 1, 10, 0)):
        response = call(desk.client, "post", "/api/staff/cases", desk.tokens[OWNER], {
            "kind": "installation_project",
            "customer": {"name": "Zhou Min", "email": "zhou.min@example.com"},
            "product": "Busbar trunking 2500 A",
            "description": "Plant 3 extension: busbar to hall B.", "language": "en",
        })
    assert response.status_code == 201, response.body
    opened = body(response)
    case = Opened(opened["case_id"], opened["case_number"], opened["status_url"])
    desk.do(case, sh(2026, 6, 1, 10, 5), "assign_owner", {"owner": OWNER})
    planned = desk.do(case, sh(2026, 6, 1, 10, 10), "plan_milestone",
                      {"milestone": "site_measured", "due_on": "2026-06-01"})
    end_of_day = sh(2026, 6, 2, 0, 0)

    assert at(planned["next_due_at"]) == end_of_day
    assert case.case_number not in overdue_numbers(desk, end_of_day - SECOND)
    assert case.case_number in overdue_numbers(desk, end_of_day + SECOND)


# -- a planned maintenance visit ------------------------------------------------------------------


def test_a_maintenance_visit_is_dispatched_recorded_and_signed_off_by_the_customer(
    desk: FieldDesk,
) -> None:
    desk.register_unit(sh(2026, 5, 25, 9), serial_no="FL-2025-0119", region="Shanghai")
    # Accepted 10 September 2025, 12 months' warranty: a visit every 3 months, the next on
    # Wednesday 10 June 2026, opened at 09:00 that day by the hourly schedule.
    with desk.moment(sh(2026, 6, 10, 9, 0)):
        ran = desk.client.lambda_.invoke("open_planned_visits", scheduled_event(desk.client))
    assert ran.payload["opened"] == 1
    with desk.moment(sh(2026, 6, 10, 9, 1)):
        listed = body(call(desk.client, "get", "/api/staff/cases?kind=maintenance_visit",
                           desk.tokens[OWNER]))["cases"]
    [found] = listed
    assert (found["serial_no"], found["customer"]["email"]) == ("FL-2025-0119", CUSTOMER)
    case = Opened(found["case_id"], found["case_number"], found["status_url"])

    desk.do(case, sh(2026, 6, 10, 9, 30), "assign_owner", {"owner": OWNER})
    sent = desk.do(case, sh(2026, 6, 10, 9, 35), "dispatch",
                   {"party": "technician", "to": TOM})
    assert sent["status"] == "in_progress"
    assert len(desk.mails_to(MAIL[TOM], case, DISPATCHED)) == 1
    # Ted may not record Tom's visit.
    code, _ = refused(desk, case, sh(2026, 6, 10, 14, 0), "record_service_form",
                      {"work": "Quarterly service", "hours": "2"}, staff_id=TED)
    assert code == 403

    desk.do(case, sh(2026, 6, 10, 15, 0), "record_service_form", {
        "work": "Quarterly service: oil and filters changed, chains lubricated.",
        "parts_used": [{"part_no": "FILTER-OIL-1", "description": "oil filter",
                        "quantity": 1}],
        "hours": "2",
    }, staff_id=TOM)
    code, message = refused(desk, case, sh(2026, 6, 10, 15, 5), "resolve")
    assert code == 422 and "the customer's signature on the service form" in message
    # One e-mail asks the customer to sign (matched by content: mail files have no order).
    to_sign = [m for m in desk.mails_to(CUSTOMER, case, "") if f"{case.status_url}/sign" in m.text]
    assert len(to_sign) == 1

    desk.sign(case, sh(2026, 6, 10, 16, 0), "form", "Li Wei")

    sign_off = desk.record(case)["form"]["sign_off"]
    assert (sign_off["name"], sign_off["via"]) == ("Li Wei", "link")
    assert desk.do(case, sh(2026, 6, 10, 16, 30), "resolve")["status"] == "resolved"
