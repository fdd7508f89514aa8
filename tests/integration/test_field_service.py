"""Field service and warranty (三包, 派工) through the HTTP API, as the people in it notice it
(processes.md, "Field service and warranty flow"; issue 4): the customer's e-mails and
signature, the technician's, dealer's and supplier's service orders, the approvers, QA, R&D
and management, the case as staff read it, and the reminders the sweep sends.

Units are registered through ``POST /api/staff/units``; the dealers and the supplier come
from a policies file written for the test. The clock only moves when told (time_machine);
the sweep and the outbox sender are called as their schedules call them. Times are local
Shanghai times (``sh``); deadlines are counted on the CN calendar (09:00-17:30).
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from chalicelib.domain.timers import TimerKind
from tests.integration.support import (
    ABNORMAL,
    DISPATCHED,
    EAST,
    FIELD_MAIL,
    HYDRAULICS,
    LEO,
    MAJOR,
    NORTH,
    PARTS_SALE,
    PARTS_TO_APPROVE,
    QIAN,
    RITA,
    SAM,
    TOM,
    VERA,
    FieldDeskMixin,
    customer_mail,
    local,
    use_field_policies,
)
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

MAIL = {**EMAILS, **FIELD_MAIL}


class FieldDesk(FieldDeskMixin, Desk):
    """The desk of test_timers, with the field-service staff and a unit registry."""


@pytest.fixture
def desk(client: Any, aws: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FieldDesk:
    use_field_policies(tmp_path, monkeypatch)
    return FieldDesk(client, aws)


# -- a warranty repair by our own technician -------------------------------------------------


def test_a_warranty_repair_by_our_technician_from_report_to_closed(desk: FieldDesk) -> None:
    desk.register_unit(sh(2026, 5, 25, 9), serial_no="FL-2025-0001", region="Shanghai")
    # Monday 1 June 2026: the repair is to be dispatched within 24 hours.
    case = desk.report_repair(sh(2026, 6, 1, 10, 0), "FL-2025-0001")
    assert desk.timers(case)["dispatch"] == sh(2026, 6, 2, 10, 0)

    checked = desk.do(case, sh(2026, 6, 1, 10, 5), "check_warranty", {"operating_hours": 620})

    assert checked["status"] == "verified"
    assert checked["field_service"]["warranty"]["service_class"] == "C"
    assert checked["field_service"]["unit"]["warranty_ends_on"] == "2026-09-10"
    decision = customer_mail(desk, case, "Warranty check")
    assert "It is under warranty: the repair is free (warranty until 2026-09-10)." in (
        decision.text)

    sent = desk.do(case, sh(2026, 6, 1, 10, 30), "dispatch", {"party": "technician", "to": TOM})

    assert sent["status"] == "in_progress"
    assert sent["field_service"]["dispatch"]["name"] == "Tom"
    # The default promise: a reply in 12 hours, on site and running again in 24.
    timers = desk.timers(case)
    assert "dispatch" not in timers
    assert timers["party_reply"] == sh(2026, 6, 1, 22, 30)
    assert timers["on_site"] == timers["fixed"] == sh(2026, 6, 2, 10, 30)
    [order] = desk.mails_to(MAIL[TOM], case, DISPATCHED)
    assert case.case_number in order.subject
    assert local(sh(2026, 6, 1, 22, 30)) in order.text
    assert local(sh(2026, 6, 2, 10, 30)) in order.text
    assert "Tom will take care of your repair" in customer_mail(
        desk, case, "Your repair is arranged").text

    desk.do(case, sh(2026, 6, 1, 15, 0), "arrived_on_site", staff_id=TOM)
    assert {"party_reply", "on_site"}.isdisjoint(desk.timers(case))

    desk.do(case, sh(2026, 6, 1, 17, 0), "record_service_form", {
        "work": "Replaced the lift cylinder seal kit; tested with 2.5 t.",
        "parts_used": [{"part_no": "SEAL-KIT-3", "description": "lift cylinder seals",
                        "quantity": 1}],
        "hours": "2.5",
    }, staff_id=TOM)

    assert "fixed" not in desk.timers(case)
    to_sign = customer_mail(desk, case, "Please confirm the repair")
    assert "Replaced the lift cylinder seal kit" in to_sign.text
    assert f"{case.status_url}/sign" in to_sign.text
    # Not resolved before the customer signs.
    code, message = desk.refused(case, sh(2026, 6, 1, 17, 5), "resolve")
    assert code == 422
    assert "the customer's signature on the service form" in message

    desk.sign(case, sh(2026, 6, 1, 18, 0), "form", "Li Wei")

    form = desk.record(case)["form"]
    assert form["hours"] == "2.5"
    assert form["parts_used"][0]["part_no"] == "SEAL-KIT-3"
    assert (form["sign_off"]["name"], form["sign_off"]["via"]) == ("Li Wei", "link")
    assert desk.read(case)["history"][0]["action"] == "customer_signed_service_form"  # newest first

    assert desk.do(case, sh(2026, 6, 2, 9, 0), "resolve")["status"] == "resolved"
    assert desk.do(case, sh(2026, 6, 2, 9, 5), "close")["status"] == "closed"
    field_timers = {"dispatch", "party_reply", "on_site", "fixed", "signed_form"}
    assert field_timers.isdisjoint(desk.timers(case))


# -- a dealer's repair, its spare parts and the old part -------------------------------------


def dealer_repair(desk: FieldDesk, serial_no: str = "FL-2025-0002") -> Opened:
    """A warranty repair sent to the unit's dealer (Monday 1 June, 10:10)."""
    desk.register_unit(sh(2026, 5, 25, 9), serial_no=serial_no, dealer="east",
                       region="Zhejiang")
    case = desk.report_repair(sh(2026, 6, 1, 10, 0), serial_no)
    desk.do(case, sh(2026, 6, 1, 10, 1), "assign_owner", {"owner": OWNER})
    desk.do(case, sh(2026, 6, 1, 10, 5), "check_warranty", {"operating_hours": 700})
    desk.do(case, sh(2026, 6, 1, 10, 10), "dispatch", {"party": "dealer"})
    return case


def parts_shipped(desk: FieldDesk) -> Opened:
    """The dealer's parts request of 480.00, approved by the director, shipped on Tuesday
    2 June 10:00: the old part is due back 30 days later, Thursday 2 July 10:00."""
    case = dealer_repair(desk)
    desk.do(case, sh(2026, 6, 1, 11, 0), "request_parts",
            {"lines": [{"part_no": "HYD-PUMP-7", "description": "lift pump", "quantity": 2,
                        "unit_price": "240.00"}]})
    desk.do(case, sh(2026, 6, 1, 11, 30), "approve_parts", {"number": 1}, staff_id=DIRECTOR)
    desk.do(case, sh(2026, 6, 2, 10, 0), "ship_parts",
            {"number": 1, "tracking_no": "SF7788", "carrier": "SF Express"}, staff_id=LEO)
    return case


OLD_PART_DUE = sh(2026, 7, 2, 10, 0)


def test_the_unit_s_dealer_gets_the_service_order_with_the_form_due_in_7_days(
    desk: FieldDesk,
) -> None:
    case = dealer_repair(desk)

    dispatch = desk.record(case)["dispatch"]
    assert (dispatch["party"], dispatch["to"], dispatch["name"]) == (
        "dealer", "east", "East Forklift Service")
    due = sh(2026, 6, 8, 10, 10)
    assert at(dispatch["form_due_at"]) == due
    assert desk.timers(case)["signed_form"] == due
    [order] = desk.mails_to(EAST, case, DISPATCHED)
    assert "East Forklift Service" in order.subject
    assert local(due) in order.text
    assert desk.mails_to(NORTH, case, DISPATCHED) == []

    # The dealer brings the form signed on paper: the promise is kept.
    desk.do(case, sh(2026, 6, 1, 16, 0), "record_service_form",
            {"work": "Pump replaced", "hours": "3"})
    desk.do(case, sh(2026, 6, 5, 11, 0), "service_form_signed_on_paper",
            {"signed_by": "Li Wei"})
    assert "signed_form" not in desk.timers(case)


def test_without_a_dealer_of_its_own_the_unit_goes_to_the_dealer_of_its_region(
    desk: FieldDesk,
) -> None:
    desk.register_unit(sh(2026, 5, 25, 9), serial_no="FL-2025-0003", region="Jiangsu")
    desk.register_unit(sh(2026, 5, 25, 9), serial_no="FL-2025-0004", region="Tibet")
    in_jiangsu = desk.report_repair(sh(2026, 6, 1, 10, 0), "FL-2025-0003")
    desk.do(in_jiangsu, sh(2026, 6, 1, 10, 5), "check_warranty")

    desk.do(in_jiangsu, sh(2026, 6, 1, 10, 10), "dispatch", {"party": "dealer"})

    assert desk.record(in_jiangsu)["dispatch"]["to"] == "east"
    assert len(desk.mails_to(EAST, in_jiangsu, DISPATCHED)) == 1

    nowhere = desk.report_repair(sh(2026, 6, 1, 11, 0), "FL-2025-0004")
    desk.do(nowhere, sh(2026, 6, 1, 11, 5), "check_warranty")
    code, message = desk.refused(nowhere, sh(2026, 6, 1, 11, 10), "dispatch",
                                 {"party": "dealer"})
    assert (code, message) == (400, "params.to: give the dealer's id")
    # The customer's region, as staff took it on the phone.
    desk.do(nowhere, sh(2026, 6, 1, 11, 15), "dispatch", {"party": "dealer", "region": "Beijing"})
    assert desk.record(nowhere)["dispatch"]["to"] == "north"
    assert len(desk.mails_to(NORTH, nowhere, DISPATCHED)) == 1


def test_only_the_service_director_approves_parts_of_480(desk: FieldDesk) -> None:
    case = dealer_repair(desk)
    desk.do(case, sh(2026, 6, 1, 11, 0), "request_parts",
            {"lines": [{"part_no": "HYD-PUMP-7", "quantity": 2, "unit_price": "240.00"}]})

    [request] = desk.record(case)["parts"]
    assert (request["amount"], request["needs"], request["state"]) == (
        "480.00", ["service_director"], "awaiting_approval")
    assert len(desk.mails_to(MAIL[DIRECTOR], case, PARTS_TO_APPROVE)) == 1
    assert desk.mails_to(MAIL[QIAN], case, PARTS_TO_APPROVE) == []
    for staff_id in (OWNER, QIAN):
        code, _ = desk.refused(case, sh(2026, 6, 1, 11, 10), "approve_parts", {"number": 1},
                               staff_id=staff_id)
        assert code == 403
    assert desk.record(case)["parts"][0]["approvals"] == []

    desk.do(case, sh(2026, 6, 1, 11, 30), "approve_parts", {"number": 1}, staff_id=DIRECTOR)

    [request] = desk.record(case)["parts"]
    assert request["state"] == "approved"
    # Shipped within 2 working days: Tuesday and Wednesday.
    assert desk.timers(case)["parts_shipping_1"] == sh(2026, 6, 3, 17, 30)


def test_an_old_part_back_in_time_and_accepted_costs_the_dealer_nothing(
    desk: FieldDesk,
) -> None:
    case = parts_shipped(desk)
    assert "parts_shipping_1" not in desk.timers(case)
    assert desk.timers(case)["old_part_1"] == OLD_PART_DUE

    desk.do(case, sh(2026, 6, 22, 10, 0), "old_part_received", {"number": 1}, staff_id=LEO)
    assert "old_part_1" not in desk.timers(case)
    desk.do(case, sh(2026, 6, 23, 10, 0), "inspect_old_part",
            {"number": 1, "accepted": True, "note": "worn bearing, original part"},
            staff_id=QIAN)

    version = desk.case(case)["version"]
    desk.sweep_and_send(sh(2026, 7, 3, 10, 0))  # day 31

    [request] = desk.record(case)["parts"]
    assert request["old_part"]["accepted"] is True
    assert request["sale"] is None
    assert desk.case(case)["version"] == version
    assert desk.mails_to(EAST, case, PARTS_SALE) == []


def test_an_old_part_not_back_in_30_days_is_charged_to_the_dealer_once(
    desk: FieldDesk,
) -> None:
    case = parts_shipped(desk)
    version = desk.case(case)["version"]

    desk.sweep_and_send(OLD_PART_DUE - SECOND)

    assert desk.record(case)["parts"][0]["sale"] is None
    assert desk.case(case)["version"] == version
    assert desk.mails_to(EAST, case, PARTS_SALE) == []

    desk.sweep_and_send(OLD_PART_DUE)

    sale = desk.record(case)["parts"][0]["sale"]
    assert (sale["amount"], sale["charged_to"], sale["reason"]) == (
        "480.00", "east", "not_returned")
    assert at(sale["at"]) == OLD_PART_DUE
    event = desk.read(case)["history"][0]
    assert (event["action"], event["actor"]) == ("old_part_not_returned", "system:sweep")
    [charged] = desk.mails_to(EAST, case, PARTS_SALE)
    assert "480.00" in charged.subject
    assert "三包旧件未按时返回" in charged.text
    assert "old_part_1" not in desk.timers(case)

    version = desk.case(case)["version"]
    swept = desk.sweep_and_send(OLD_PART_DUE + timedelta(hours=1))

    assert (swept.fired, swept.emails) == (0, 0)
    assert desk.case(case)["version"] == version
    assert len(desk.mails_to(EAST, case, PARTS_SALE)) == 1
    # Too late now: the part is paid for.
    code, message = desk.refused(case, OLD_PART_DUE + timedelta(days=1), "old_part_received",
                                 {"number": 1}, staff_id=LEO)
    assert (code, message) == (
        422, "action: there is no parts request whose old part is due back")


def test_an_old_part_qa_rejects_is_charged_to_the_dealer_with_the_reason(
    desk: FieldDesk,
) -> None:
    case = parts_shipped(desk)
    desk.do(case, sh(2026, 6, 12, 10, 0), "old_part_received", {"number": 1}, staff_id=LEO)
    code, message = desk.refused(case, sh(2026, 6, 15, 10, 0), "inspect_old_part",
                                 {"number": 1, "accepted": False}, staff_id=QIAN)
    assert (code, message.split(":")[0]) == (400, "params.fault")

    desk.do(case, sh(2026, 6, 15, 10, 5), "inspect_old_part",
            {"number": 1, "accepted": False, "fault": "not_original",
             "note": "an aftermarket pump"}, staff_id=QIAN)

    [request] = desk.record(case)["parts"]
    assert request["old_part"]["fault"] == "not_original"
    assert (request["sale"]["charged_to"], request["sale"]["reason"]) == ("east",
                                                                          "not_original")
    [charged] = desk.mails_to(EAST, case, PARTS_SALE)
    assert "返回的旧件非原厂配件" in charged.text
    # The deadline passing later changes nothing.
    desk.sweep_and_send(OLD_PART_DUE + timedelta(days=1))
    assert len(desk.mails_to(EAST, case, PARTS_SALE)) == 1


# -- a fault caused by a supplier's part -----------------------------------------------------


def test_the_supplier_replies_in_24_hours_and_returns_the_form_in_5_working_days(
    desk: FieldDesk,
) -> None:
    desk.register_unit(sh(2026, 4, 20, 9), serial_no="FL-2025-0005", region="Shanghai")
    # Thursday 30 April 2026, the eve of Labour Day (1-5 May; Saturday 9 May is worked).
    case = desk.report_repair(sh(2026, 4, 30, 9, 0), "FL-2025-0005")
    desk.do(case, sh(2026, 4, 30, 9, 1), "assign_owner", {"owner": OWNER})
    desk.do(case, sh(2026, 4, 30, 9, 30), "check_warranty")
    code, message = desk.refused(case, sh(2026, 4, 30, 9, 40), "dispatch",
                                 {"party": "supplier", "to": "pneumatics"})
    assert code == 400 and message.startswith("params.to")

    desk.do(case, sh(2026, 4, 30, 10, 0), "dispatch", {"party": "supplier", "to": "hydraulics"})

    reply_due = sh(2026, 5, 1, 10, 0)
    # 5 working days: Wednesday 6, Thursday 7, Friday 8, Saturday 9 (调休), Monday 11 May.
    form_due = sh(2026, 5, 11, 17, 30)
    timers = desk.timers(case)
    assert (timers["party_reply"], timers["signed_form"]) == (reply_due, form_due)
    [order] = desk.mails_to(HYDRAULICS, case, DISPATCHED)
    assert local(reply_due) in order.text
    assert local(form_due) in order.text

    desk.sweep_and_send(reply_due - SECOND)
    assert desk.received(case, missed(TimerKind.PARTY_REPLY)) == Counter()

    desk.sweep_and_send(reply_due)

    assert desk.received(case, missed(TimerKind.PARTY_REPLY)) == Counter({MAIL[OWNER]: 1})
    desk.sweep_and_send(reply_due + timedelta(minutes=5))
    assert desk.received(case, missed(TimerKind.PARTY_REPLY)) == Counter({MAIL[OWNER]: 1})
    # The supplier answers at last: nothing goes up to the managers.
    desk.do(case, reply_due + timedelta(hours=1), "party_replied")
    assert "party_reply" not in desk.timers(case)
    desk.sweep_and_send(sh(2026, 5, 6, 14, 0))
    assert desk.received(case, escalated(TimerKind.PARTY_REPLY)) == Counter()


# -- paid work outside the warranty, fees collected later -----------------------------------


def test_paid_work_waits_for_consent_and_later_fees_for_the_director(desk: FieldDesk) -> None:
    desk.register_unit(sh(2026, 5, 25, 9), serial_no="FL-2023-0009", region="Shanghai",
                       sold_on="2023-03-01", accepted_on="2023-03-01")
    case = desk.report_repair(sh(2026, 6, 1, 10, 0), "FL-2023-0009")
    desk.do(case, sh(2026, 6, 1, 10, 1), "assign_owner", {"owner": OWNER})

    checked = desk.do(case, sh(2026, 6, 1, 10, 5), "check_warranty", {"operating_hours": 900})

    assert checked["field_service"]["warranty"]["service_class"] == "A"
    assert checked["field_service"]["warranty"]["reasons"] == ["period_ended"]
    decision = customer_mail(desk, case, "Warranty check")
    assert "not under warranty (the warranty period ended on 2024-03-01)" in decision.text
    assert "quote" in decision.text

    code, message = desk.refused(case, sh(2026, 6, 1, 10, 10), "dispatch",
                                 {"party": "technician", "to": TOM})
    assert code == 422
    assert "quote the fees and get the customer's signed consent" in message
    code, message = desk.refused(case, sh(2026, 6, 1, 10, 15), "record_fee_consent",
                                 {"signed_by": "Li Wei"})
    assert (code, message) == (422, "action: there is no fee quote on this case")

    desk.do(case, sh(2026, 6, 1, 10, 30), "quote_fees",
            {"amount": "1200.00", "description": "New lift chain, 3 hours of work"})

    quote = customer_mail(desk, case, "Quote for the repair")
    assert "1200.00" in quote.text and f"{case.status_url}/sign" in quote.text
    code, _ = desk.refused(case, sh(2026, 6, 1, 10, 35), "dispatch",
                           {"party": "technician", "to": TOM})
    assert code == 422

    desk.sign(case, sh(2026, 6, 1, 11, 0), "quote", "Li Wei")

    assert desk.record(case)["quote"]["consent"]["name"] == "Li Wei"
    desk.do(case, sh(2026, 6, 1, 11, 30), "dispatch", {"party": "technician", "to": TOM})
    desk.do(case, sh(2026, 6, 1, 15, 0), "arrived_on_site", staff_id=TOM)
    desk.do(case, sh(2026, 6, 1, 17, 0), "record_service_form",
            {"work": "Lift chain replaced", "hours": "3"}, staff_id=TOM)
    desk.do(case, sh(2026, 6, 1, 17, 10), "service_form_signed_on_paper",
            {"signed_by": "Li Wei"}, staff_id=TOM)

    desk.do(case, sh(2026, 6, 1, 17, 20), "set_fees",
            {"amount": "1200.00", "technician": TOM, "on_the_spot": False})

    fees = desk.record(case)["fees"]
    assert (fees["consent_by"], fees["due_at"]) == (None, None)
    code, message = desk.refused(case, sh(2026, 6, 1, 17, 25), "resolve")
    assert code == 422
    assert "the director agrees to later payment" in message
    code, _ = desk.refused(case, sh(2026, 6, 1, 17, 26), "agree_later_payment")
    assert code == 403

    desk.do(case, sh(2026, 6, 2, 10, 0), "agree_later_payment", staff_id=DIRECTOR)

    fees_due = sh(2026, 7, 2, 10, 0)
    assert desk.record(case)["fees"]["consent_by"] == f"staff:{DIRECTOR}"
    assert desk.timers(case)["fees"] == fees_due
    assert desk.do(case, sh(2026, 6, 2, 10, 30), "resolve")["status"] == "resolved"

    desk.sweep_and_send(fees_due - SECOND)
    assert desk.received(case, missed(TimerKind.FEES)) == Counter()
    desk.sweep_and_send(fees_due)
    assert desk.received(case, missed(TimerKind.FEES)) == Counter({MAIL[OWNER]: 1})
    # Escalated 4 business hours later to the supervisor and the director.
    desk.sweep_and_send(sh(2026, 7, 2, 14, 0))
    assert desk.received(case, escalated(TimerKind.FEES)) == Counter(
        {MAIL[SUPERVISOR]: 1, MAIL[DIRECTOR]: 1})

    collected = desk.do(case, sh(2026, 7, 12, 10, 0), "fees_collected",
                        {"reference": "Receipt 2026-0712"}, staff_id=TOM)

    assert collected["status"] == "resolved"
    assert at(collected["field_service"]["fees"]["collected_at"]) == sh(2026, 7, 12, 10, 0)
    assert "fees" not in desk.timers(case)
    desk.sweep_and_send(sh(2026, 7, 13, 10, 0))
    assert desk.received(case, missed(TimerKind.FEES)) == Counter({MAIL[OWNER]: 1})


# -- hard problems, major quality problems and whole-unit returns ----------------------------


def test_problems_go_to_r_and_d_and_qa_and_major_ones_to_management_at_once(
    desk: FieldDesk,
) -> None:
    desk.register_unit(sh(2026, 5, 25, 9), serial_no="FL-2025-0006", region="Shanghai")
    case = desk.report_repair(sh(2026, 6, 1, 10, 0), "FL-2025-0006")
    desk.do(case, sh(2026, 6, 1, 10, 5), "check_warranty")
    desk.do(case, sh(2026, 6, 1, 10, 10), "dispatch", {"party": "technician", "to": TOM})

    desk.do(case, sh(2026, 6, 1, 15, 0), "report_abnormal_problem",
            {"text": "Mast chain wears through in 300 hours.\nThird unit this month."},
            staff_id=TOM)

    for staff_id in (RITA, QIAN):
        [report] = desk.mails_to(MAIL[staff_id], case, ABNORMAL)
        assert "    Mast chain wears through in 300 hours." in report.text
        assert "    Third unit this month." in report.text
    assert desk.mails_to(MAIL[VERA], case, ABNORMAL) == []
    assert desk.record(case)["abnormal_reports"][0]["number"] == 1

    desk.do(case, sh(2026, 6, 1, 16, 0), "flag_major_quality_problem",
            {"text": "Chain batch 2026-04 is out of tolerance."}, staff_id=QIAN)

    for staff_id in (DIRECTOR, VERA, SAM, QIAN):
        [major] = desk.mails_to(MAIL[staff_id], case, MAJOR)
        assert "Chain batch 2026-04 is out of tolerance." in major.text
    assert desk.mails_to(MAIL[RITA], case, MAJOR) == []
    code, _ = desk.refused(case, sh(2026, 6, 1, 16, 5), "flag_major_quality_problem",
                           {"text": "again"}, staff_id=QIAN)
    assert code == 422


def test_a_whole_unit_return_is_registered_inspected_and_reworked(desk: FieldDesk) -> None:
    desk.register_unit(sh(2026, 5, 25, 9), serial_no="FL-2025-0007", region="Shanghai")
    case = desk.report_repair(sh(2026, 6, 1, 10, 0), "FL-2025-0007")
    desk.do(case, sh(2026, 6, 1, 10, 5), "check_warranty")
    desk.do(case, sh(2026, 6, 1, 10, 10), "dispatch", {"party": "technician", "to": TOM})
    desk.do(case, sh(2026, 6, 1, 15, 0), "record_service_form",
            {"work": "Unit taken back to the factory", "hours": "1"}, staff_id=TOM)
    desk.sign(case, sh(2026, 6, 1, 16, 0), "form", "Li Wei")

    desk.do(case, sh(2026, 6, 3, 9, 0), "register_unit_return",
            {"text": "arrived by truck"}, staff_id=LEO)
    code, message = desk.refused(case, sh(2026, 6, 3, 9, 5), "record_rework",
                                 {"text": "frame welded"}, staff_id=TOM)
    assert code == 422 and "inspect the returned unit" in message
    code, message = desk.refused(case, sh(2026, 6, 3, 9, 10), "resolve")
    assert code == 422 and "the returned unit's inspection and rework" in message

    desk.do(case, sh(2026, 6, 3, 14, 0), "inspect_returned_unit",
            {"text": "crack in the mast frame weld"}, staff_id=QIAN)
    desk.do(case, sh(2026, 6, 5, 14, 0), "record_rework",
            {"text": "frame welded again and load-tested"}, staff_id=TOM)

    back = desk.record(case)["unit_return"]
    assert back["registered_by"] == "staff:leo"
    assert (back["finding"], back["rework"]) == (
        "crack in the mast frame weld", "frame welded again and load-tested")
    assert at(back["reworked_at"]) == sh(2026, 6, 5, 14, 0)
    assert desk.do(case, sh(2026, 6, 5, 15, 0), "resolve")["status"] == "resolved"


def test_after_a_parts_sale_a_new_dispatch_goes_to_the_new_party(desk: FieldDesk) -> None:
    case = parts_shipped(desk)
    desk.do(case, sh(2026, 6, 12, 10, 0), "old_part_received", {"number": 1}, staff_id=LEO)
    desk.do(case, sh(2026, 6, 12, 11, 0), "inspect_old_part",
            {"number": 1, "accepted": False, "fault": "incomplete"}, staff_id=QIAN)
    assert len(desk.mails_to(EAST, case, PARTS_SALE)) == 1

    # The dealer cannot finish the job: our own technician takes it over.
    desk.do(case, sh(2026, 6, 12, 14, 0), "dispatch", {"party": "technician", "to": TOM})

    assert len(desk.mails_to(MAIL[TOM], case, DISPATCHED)) == 1
    assert len(desk.mails_to(EAST, case, DISPATCHED)) == 1  # the first order only
