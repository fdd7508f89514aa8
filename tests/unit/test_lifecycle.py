"""The case lifecycle of the web-shop complaint flow (processes.md, "Web-shop complaint flow"):
one scenario per row of its table, walked from new to closed, then the approvals and every
forbidden thing. Pure domain: time is an argument, no AWS, no app."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from chalicelib.domain.case import Case, CaseKind, CaseStatus, Channel, Customer, Language
from chalicelib.domain.lifecycle import (
    ACTIONS,
    ActionRefused,
    Change,
    PolicyPromises,
    apply_action,
    available_actions,
    unfinished_work,
)
from chalicelib.domain.policies import ApprovalRule, Policies
from chalicelib.domain.remedies import Remedy
from chalicelib.domain.staff import Role, StaffMember

K = CaseKind
S = CaseStatus
SHANGHAI = ZoneInfo("Asia/Shanghai")
# A Friday just before the 2025 National Day holidays (1-8 October; Sunday 28 September and
# Saturday 11 October are make-up working days, 调休).
FRIDAY = datetime(2025, 9, 26, 10, 0, tzinfo=SHANGHAI)
PROMISES = PolicyPromises(Policies())

ANN = StaffMember(staff_id="ann", name="Ann", role=Role.AGENT)
SUE = StaffMember(staff_id="sue", name="Sue", role=Role.SUPERVISOR)
FAY = StaffMember(staff_id="fay", name="Fay", role=Role.FINANCE)
OLGA = StaffMember(staff_id="olga", name="Olga", role=Role.OPERATIONS)
LEO = StaffMember(staff_id="leo", name="Leo", role=Role.LOGISTICS)
TIM = StaffMember(staff_id="tim", name="Tim", role=Role.TECHNICIAN)
QIAN = StaffMember(staff_id="qian", name="Qian", role=Role.QA_MANAGER)
VERA = StaffMember(staff_id="vera", name="Vera", role=Role.SERVICE_VP)


def new_case(kind: CaseKind, at: datetime = FRIDAY) -> Case:
    return Case(
        case_id="c-1",
        case_number="AS000001",
        kind=kind,
        status=S.NEW,
        customer=Customer(name="Wang Fang", email="wang.fang@example.com"),
        order_ref="SO-2025-1042",
        description="Something is wrong with my order.",
        language=Language.EN,
        channel=Channel.WEB_FORM,
        created_at=at,
        updated_at=at,
        version=1,
    )


def snapshot(case: Case) -> dict[str, Any]:
    return case.model_dump(mode="json", exclude={"version", "updated_at"})


class Walk:
    """A case walked through the flow. Every change is checked: one event for it, by its
    actor, at its time, naming exactly the fields that changed, and the version one up."""

    def __init__(self, kind: CaseKind, start: datetime = FRIDAY) -> None:
        self.case = new_case(kind, start)
        self.now = start
        self.events: list[Any] = []
        self.told: list[str] = []

    def do(
        self,
        action: str,
        params: dict[str, Any] | None = None,
        *,
        by: StaffMember = ANN,
        at: datetime | None = None,
        status: CaseStatus | None = None,
        told: Iterable[str] | None = None,
    ) -> Change:
        self.now = at or self.now + timedelta(hours=1)
        before = self.case
        change = apply_action(before, action, params, actor=by, now=self.now, promises=PROMISES)
        after = change.case
        event = change.event
        assert after.version == before.version + 1
        assert event.version == after.version
        assert (event.case_id, event.actor, event.action, event.at) == (
            before.case_id, by.actor, action, self.now,
        )
        assert after.updated_at == self.now
        assert after.created_at == before.created_at
        was, now = snapshot(before), snapshot(after)
        changed = {key for key in now if now[key] != was[key]}
        assert event.before == {key: was[key] for key in changed}
        assert event.after == {key: now[key] for key in changed}
        # The customer's history shows the steps they were told of, nothing else.
        assert event.visible_to_customer is (
            ACTIONS[action].customer_visible and bool(change.messages)
        )
        assert before.version == after.version - 1 and snapshot(before) == was  # untouched
        if status is not None:
            assert after.status is status
        if told is not None:
            assert [m.template for m in change.messages] == list(told)
        self.case = after
        self.events.append(event)
        self.told.extend(m.template for m in change.messages)
        return change

    def refuse(
        self, action: str, params: dict[str, Any] | None = None, *, by: StaffMember = ANN
    ) -> ActionRefused:
        return refused(self.case, action, params, by=by, at=self.now + timedelta(minutes=1))

    def close(self) -> None:
        self.do("close", status=S.CLOSED)
        assert not self.case.is_open
        assert self.case.next_due_at is None
        assert [event.version for event in self.events] == list(
            range(2, 2 + len(self.events))
        )


def refused(
    case: Case,
    action: str,
    params: dict[str, Any] | None = None,
    *,
    by: StaffMember = ANN,
    at: datetime = FRIDAY,
) -> ActionRefused:
    """The action is refused with a reason, and the case is exactly as it was."""
    was = case.model_dump()
    with pytest.raises(ActionRefused) as caught:
        apply_action(case, action, params, actor=by, now=at, promises=PROMISES)
    assert caught.value.reason
    assert str(caught.value) == caught.value.reason
    assert case.model_dump() == was
    return caught.value


def fields(refusal: ActionRefused) -> set[str]:
    return {error["field"] for error in refusal.errors}


def verified(kind: CaseKind) -> Walk:
    """Photos asked for and the complaint found true."""
    walk = Walk(kind)
    change = walk.do("request_photos", status=S.AWAITING_PHOTOS, told=["photos_requested"])
    # Asking for photos is also the first reply to the customer.
    assert change.event.before == {
        "first_replied_at": None, "photos_due_at": None, "status": "new"
    }
    assert walk.case.first_replied_at == walk.now
    # The photos are expected within 3 days (plain days by default).
    assert walk.case.photos_due_at == walk.now + timedelta(days=3)
    assert walk.case.next_due_at == walk.case.photos_due_at
    assert change.event.after["status"] == "awaiting_photos"
    walk.do("mark_complaint_true", status=S.VERIFIED)
    assert walk.case.verification == "true"
    return walk


def refund_in_full(walk: Walk, method: str, amount: str, template: str) -> None:
    """Request, post, tell the customer; resolve waits for the customer to be told."""
    decided = walk.case.refund
    assert decided is not None and decided.amount == Decimal(amount)
    walk.do("submit_refund_request", {"method": method})
    assert walk.case.refund is not None and walk.case.refund.state == "requested"
    walk.refuse("resolve")
    posted = walk.do(
        "post_refund",
        {"amount": amount, "method": method, "reference": "TX-778"},
        by=FAY,
        told=[template],
    )
    assert posted.messages[0].values["amount"] == f"{Decimal(amount):.2f}"  # money: 2 places
    assert walk.case.refund.state == "posted"
    assert walk.case.refund.reference == "TX-778"
    assert walk.case.refund.posted_at == walk.now
    refusal = walk.refuse("resolve")
    assert "refund" in refusal.reason and "posted" in refusal.reason
    told = walk.do("tell_customer_refunded", told=["refunded_apology"])
    assert told.messages[0].values == {"amount": f"{Decimal(amount):.2f}"}
    assert walk.case.refund.state == "customer_told"


# -- not as described (描述不一致) ------------------------------------------------------


def test_not_as_described_customer_misread_is_explained_with_a_discount_then_closed() -> None:
    walk = verified(K.NOT_AS_DESCRIBED)
    change = walk.do(
        "explain",
        {
            "reason": "misreading",
            "text": "The size in the listing is in centimetres, not inches. Sorry for the trouble.",
            "offer": "discount",
            "offer_detail": "10% off your next order",
        },
        status=S.RESOLVED,
        told=["explanation"],
    )
    assert change.messages[0].values == {
        "text": "The size in the listing is in centimetres, not inches. Sorry for the trouble.",
        "offer": "discount",
        "offer_detail": "10% off your next order",
    }
    assert change.event.visible_to_customer
    assert walk.case.is_open and walk.case.next_due_at is None
    walk.close()
    assert walk.told == ["photos_requested", "explanation"]
    assert [event.action for event in walk.events] == [
        "request_photos", "mark_complaint_true", "explain", "close",
    ]
    assert walk.events[-1].before == {"closed_at": None, "status": "resolved"}
    assert walk.events[-1].after == {"closed_at": walk.now.isoformat().replace("+00:00", "Z"),
                                     "status": "closed"}


def test_not_as_described_photo_lighting_is_explained_without_an_offer() -> None:
    walk = Walk(K.NOT_AS_DESCRIBED)
    walk.do("request_photos", status=S.AWAITING_PHOTOS, told=["photos_requested"])
    change = walk.do(
        "explain",
        {"reason": "photo_lighting", "text": "The studio light makes the red look orange."},
        status=S.RESOLVED,
        told=["explanation"],
    )
    assert change.messages[0].values["offer"] == "none"
    walk.close()


def test_not_as_described_wrong_listing_goes_to_operations_and_ends_in_a_partial_refund() -> None:
    walk = verified(K.NOT_AS_DESCRIBED)
    walk.do(
        "feedback_to_department",
        {"department": "operations", "root_cause": "The listing says 100% cotton; it is 60%."},
    )
    walk.do(
        "feedback_to_department",
        {"department": "purchasing", "root_cause": "The supplier changed the fabric."},
    )
    first, second = walk.case.feedback
    assert (first.number, first.department, first.given_by) == (1, "operations", "staff:ann")
    assert (second.number, second.department) == (2, "purchasing")
    assert first.listing_corrected_at is None

    # Only operations corrects the listing, and only a listing it was told about.
    assert "may not" in walk.refuse("listing_corrected", {"feedback_number": 1}).reason
    reason = walk.refuse("listing_corrected", {"feedback_number": 2}, by=OLGA).reason
    assert "no feedback number 2 to operations" in reason
    corrected = walk.do("listing_corrected", {"feedback_number": 1}, by=OLGA)
    assert corrected.event.actor == "staff:olga"
    assert list(corrected.event.after) == ["feedback"]
    assert walk.case.feedback[0].listing_corrected_at == walk.now
    assert walk.case.feedback[1].listing_corrected_at is None
    assert "already corrected" in walk.refuse(
        "listing_corrected", {"feedback_number": 1}, by=OLGA
    ).reason

    decision = walk.do(
        "decide_resolution",
        {"items": [{"remedy": "partial_refund", "amount": "30"}]},
        status=S.IN_PROGRESS,
        told=["resolution_decided"],
    )
    decided_at = walk.now
    assert decision.messages[0].values == {"remedies": "partial_refund", "amounts": "30.00"}
    assert walk.case.refund is not None
    assert walk.case.refund.request_due_at == decided_at + timedelta(days=3)
    assert walk.case.next_due_at == decided_at + timedelta(days=3)
    assert set(decision.event.after) == {"status", "resolution", "refund"}
    refund_in_full(walk, "credit_card", "30", "refund_posted_card")
    walk.do("resolve", status=S.RESOLVED, told=["resolved"])
    walk.close()


def test_a_credit_card_refund_tells_the_customer_20_to_30_working_days() -> None:
    walk = verified(K.NOT_AS_DESCRIBED)
    walk.do("decide_resolution", {"items": [{"remedy": "refund_difference", "amount": "12.50"}]})
    walk.do("submit_refund_request", {"method": "credit_card"})
    posted = walk.do(
        "post_refund",
        {"amount": "12.50", "method": "credit_card", "reference": "CC-1"},
        by=FAY,
        told=["refund_posted_card"],
    )
    assert posted.messages[0].values == {"amount": "12.50", "days_from": "20", "days_to": "30"}


# -- wrong item (发错产品) ----------------------------------------------------------------


def test_wrong_item_of_high_value_comes_back_and_the_right_one_is_reshipped_with_a_gift() -> None:
    walk = verified(K.WRONG_ITEM)
    walk.do(
        "feedback_to_department",
        {"department": "logistics", "root_cause": "Picked from the wrong shelf."},
    )
    decision = walk.do(
        "decide_resolution",
        {"items": [{"remedy": "return_item"}, {"remedy": "reship"}, {"remedy": "gift"}]},
        status=S.IN_PROGRESS,
        told=["resolution_decided"],
    )
    decided_at = walk.now
    assert decision.messages[0].values["remedies"] == "return_item,reship,gift"
    case = walk.case
    assert case.refund is None
    assert case.item_return is not None and case.item_return.state == "awaiting_tracking"
    assert case.reship is not None and case.reship.state == "to_ship"
    assert case.reship.due_at == decided_at + timedelta(days=3)  # "reship within 3 days"
    assert case.reship.extras == (Remedy.GIFT,)
    assert case.next_due_at == case.reship.due_at

    reason = walk.refuse("resolve").reason
    assert "the reshipment" in reason and "the return (at: awaiting tracking)" in reason

    walk.do("return_tracking_given", {"tracking_no": "YT123456789CN", "carrier": "YunExpress"})
    assert walk.case.item_return.state == "in_transit"
    assert walk.case.item_return.tracking_no == "YT123456789CN"
    assert "may not" in walk.refuse("return_received", {"signed_by": "Ann"}).reason
    walk.do("return_received", {"signed_by": "Leo (warehouse)"}, by=LEO)
    assert walk.case.item_return.signed_by == "Leo (warehouse)"
    walk.do("return_inspected", {"ok": True, "note": "Unused, original box."}, by=QIAN)
    assert walk.case.item_return.inspection_ok is True
    walk.do("return_back_in_stock", by=LEO)
    assert walk.case.item_return.state == "back_in_stock"
    assert walk.case.next_due_at == walk.case.reship.due_at

    shipped = walk.do(
        "reship",
        {"tracking_no": "SF1234567890", "carrier": "SF Express"},
        by=LEO,
        told=["reshipped"],
    )
    assert shipped.messages[0].values == {
        "tracking_no": "SF1234567890", "carrier": "SF Express", "extras": "gift",
    }
    assert walk.case.reship.state == "shipped" and walk.case.reship.shipped_at == walk.now
    assert walk.case.next_due_at is None
    assert unfinished_work(walk.case) == []
    walk.do("resolve", status=S.RESOLVED, told=["resolved"])
    walk.close()
    assert walk.told == ["photos_requested", "resolution_decided", "reshipped", "resolved"]


def test_wrong_item_of_low_value_is_kept_by_the_customer_and_the_right_one_reshipped() -> None:
    walk = verified(K.WRONG_ITEM)
    walk.do(
        "decide_resolution",
        {"items": [{"remedy": "keep_wrong_item"}, {"remedy": "reship"}, {"remedy": "coupon"}]},
        status=S.IN_PROGRESS,
        told=["resolution_decided"],
    )
    assert walk.case.item_return is None
    assert walk.case.reship is not None and walk.case.reship.extras == (Remedy.COUPON,)
    assert walk.refuse("return_tracking_given", {"tracking_no": "X1"}).reason.startswith(
        "recording the return's tracking is not possible now"
    )
    shipped = walk.do("reship", {"tracking_no": "SF555"}, told=["reshipped"])
    assert shipped.messages[0].values == {"tracking_no": "SF555", "carrier": "", "extras": "coupon"}
    walk.do("resolve", status=S.RESOLVED, told=["resolved"])
    walk.close()


def test_a_returned_item_that_fails_inspection_does_not_go_back_into_stock() -> None:
    walk = verified(K.WRONG_ITEM)
    walk.do("decide_resolution", {"items": [{"remedy": "return_item"}, {"remedy": "reship"}]})
    walk.do("return_tracking_given", {"tracking_no": "YT1"}, by=LEO)
    walk.do("return_received", {"signed_by": "Leo"}, by=LEO)
    walk.do("return_inspected", {"ok": False, "note": "Used and scratched."}, by=LEO)
    assert "failed inspection" in walk.refuse("return_back_in_stock", by=LEO).reason
    walk.do("reship", {"tracking_no": "SF9"}, told=["reshipped"])
    walk.do("resolve", status=S.RESOLVED, told=["resolved"])


# -- short shipment / missing accessory (少发/漏发配件) -------------------------------------


def test_missing_part_is_reshipped_within_3_days_with_a_small_gift() -> None:
    walk = verified(K.MISSING_ITEM)
    for department in ("purchasing", "logistics"):
        walk.do(
            "feedback_to_department",
            {"department": department, "root_cause": "The charger was not packed."},
        )
    walk.do(
        "decide_resolution",
        {"items": [{"remedy": "reship_missing_part"}, {"remedy": "gift"}]},
        status=S.IN_PROGRESS,
        told=["resolution_decided"],
    )
    assert walk.case.reship is not None
    assert walk.case.reship.due_at == walk.now + timedelta(days=3)
    assert walk.case.reship.extras == (Remedy.GIFT,)
    shipped = walk.do("reship", {"tracking_no": "EMS-77", "carrier": "EMS"}, told=["reshipped"])
    assert shipped.messages[0].values["extras"] == "gift"
    assert shipped.messages[0].values["tracking_no"] == "EMS-77"
    walk.do("resolve", status=S.RESOLVED, told=["resolved"])
    walk.close()


# -- parcel not arriving (物流) -----------------------------------------------------------


def test_parcel_not_arriving_tracking_is_explained_and_found_online_within_5_days() -> None:
    walk = Walk(K.NOT_RECEIVED)
    explained = walk.do("explain_tracking", status=S.WATCHING_TRACKING, told=["tracking_explained"])
    due = walk.now + timedelta(days=5)
    assert walk.case.tracking_check_due_at == due
    assert walk.case.next_due_at == due
    assert explained.event.visible_to_customer
    walk.do(
        "check_tracking",
        {"online": True, "note": "Arrived in Hamburg."},
        at=walk.now + timedelta(days=4),
        status=S.RESOLVED,
        told=["parcel_on_its_way"],
    )
    assert walk.case.tracking_check_due_at is None
    walk.close()


def test_parcel_not_arriving_still_not_online_is_refunded_through_paypal() -> None:
    walk = Walk(K.NOT_RECEIVED)
    walk.do("explain_tracking", status=S.WATCHING_TRACKING, told=["tracking_explained"])
    walk.do(
        "check_tracking", {"online": False}, at=walk.now + timedelta(days=5), status=S.VERIFIED,
        told=["tracking_not_online"],  # asked: a refund, or send it again?
    )
    assert walk.case.tracking_check_due_at is None and walk.case.next_due_at is None
    walk.do(
        "decide_resolution",
        {"items": [{"remedy": "full_refund", "amount": "120"}]},
        status=S.IN_PROGRESS,
        told=["resolution_decided"],
    )
    assert walk.case.refund is not None
    assert walk.case.refund.request_due_at == walk.now + timedelta(days=3)
    assert "may not" in walk.refuse(
        "post_refund", {"amount": "120", "method": "paypal", "reference": "PP-1"}
    ).reason
    refund_in_full(walk, "paypal", "120", "refund_posted_paypal")
    walk.do("resolve", status=S.RESOLVED, told=["resolved"])
    walk.close()
    assert walk.told == [
        "tracking_explained", "tracking_not_online", "resolution_decided",
        "refund_posted_paypal", "refunded_apology", "resolved",
    ]


def test_parcel_not_arriving_and_not_online_can_be_reshipped_within_3_days() -> None:
    walk = Walk(K.NOT_RECEIVED)
    walk.do("explain_tracking", told=["tracking_explained"])
    walk.do("check_tracking", {"online": False}, at=walk.now + timedelta(days=5))
    walk.do("decide_resolution", {"items": [{"remedy": "reship"}]}, told=["resolution_decided"])
    assert walk.case.reship is not None
    assert walk.case.reship.due_at == walk.now + timedelta(days=3)
    assert walk.case.reship.extras == ()
    walk.do("reship", {"tracking_no": "DHL-42", "carrier": "DHL"}, told=["reshipped"])
    walk.do("resolve", status=S.RESOLVED, told=["resolved"])
    walk.close()


# -- quality problem (质量问题) -----------------------------------------------------------


def test_quality_problem_repaired_locally_finance_pays_the_repair_fee() -> None:
    walk = verified(K.QUALITY_PROBLEM)
    walk.do(
        "request_repair_fee",
        {"amount": "80", "repairer": "Hamburg Repair Shop"},
        status=S.IN_PROGRESS,
    )
    assert walk.case.repair_fee is not None and walk.case.repair_fee.state == "requested"
    assert "the repair fee" in walk.refuse("resolve").reason
    assert "may not" in walk.refuse("pay_repair_fee", {"reference": "PAY-9"}).reason
    paid = walk.do("pay_repair_fee", {"reference": "PAY-9"}, by=FAY, told=["repair_fee_paid"])
    assert paid.messages[0].values == {"repairer": "Hamburg Repair Shop"}
    assert walk.case.repair_fee.state == "paid" and walk.case.repair_fee.reference == "PAY-9"
    walk.do("resolve", status=S.RESOLVED, told=["resolved"])
    walk.close()


def test_quality_problem_not_repairable_locally_comes_back_for_repair() -> None:
    walk = verified(K.QUALITY_PROBLEM)
    walk.do(
        "decide_resolution",
        {"items": [{"remedy": "return_item"}, {"remedy": "reship", "note": "after repair"}]},
        told=["resolution_decided"],
    )
    walk.do("return_tracking_given", {"tracking_no": "YT77"})
    walk.do("return_received", {"signed_by": "Workshop"}, by=LEO)
    walk.do("return_inspected", {"ok": True, "note": "Motor replaced."}, by=QIAN)
    walk.do("reship", {"tracking_no": "SF-R1"}, by=LEO, told=["reshipped"])
    walk.do("resolve", status=S.RESOLVED, told=["resolved"])
    walk.close()


# -- in-sale: cancel, change (售中) -------------------------------------------------------


def test_order_cancelled_is_refunded_in_full() -> None:
    walk = Walk(K.ORDER_CANCEL)
    walk.do(
        "decide_resolution",
        {"items": [{"remedy": "full_refund", "amount": "199.00"}]},
        status=S.IN_PROGRESS,
        told=["resolution_decided"],
    )
    refund_in_full(walk, "credit_card", "199.00", "refund_posted_card")
    walk.do("resolve", status=S.RESOLVED, told=["resolved"])
    walk.close()


def test_order_change_of_address_is_done_at_once() -> None:
    walk = Walk(K.ORDER_CHANGE)
    changed = walk.do(
        "change_address",
        {"address": "  Hauptstr. 1, 20095 Hamburg  "},
        status=S.RESOLVED,
        told=["address_changed"],
    )
    assert changed.messages[0].values == {"address": "Hauptstr. 1, 20095 Hamburg"}
    walk.close()


def test_order_exchange_ships_within_3_working_days_across_national_day() -> None:
    walk = Walk(K.ORDER_CHANGE)
    tuesday = datetime(2025, 9, 30, 10, 0, tzinfo=SHANGHAI)
    walk.do(
        "decide_resolution",
        {"items": [{"remedy": "exchange"}, {"remedy": "refund_difference", "amount": "15"}]},
        at=tuesday,
        status=S.IN_PROGRESS,
        told=["resolution_decided"],
    )
    # 1-8 October are holidays; 9, 10 and the make-up Saturday 11 October are the 3 days.
    assert walk.case.reship is not None
    assert walk.case.reship.due_at == datetime(2025, 10, 11, 17, 30, tzinfo=SHANGHAI)
    # The refund request is promised in plain days: holidays count.
    assert walk.case.refund is not None
    assert walk.case.refund.request_due_at == datetime(2025, 10, 3, 10, 0, tzinfo=SHANGHAI)
    assert walk.case.next_due_at == walk.case.refund.request_due_at
    walk.do("reship", {"tracking_no": "SF-EX1"}, by=LEO, told=["reshipped"])
    refund_in_full(walk, "paypal", "15", "refund_posted_paypal")
    walk.do("resolve", status=S.RESOLVED, told=["resolved"])
    walk.close()


def test_an_exchange_decided_on_friday_counts_the_make_up_sunday() -> None:
    walk = Walk(K.ORDER_CHANGE)
    walk.do("decide_resolution", {"items": [{"remedy": "exchange"}]}, at=FRIDAY)
    # Sunday 28, Monday 29 and Tuesday 30 September: due at the close of Tuesday.
    assert walk.case.reship is not None
    assert walk.case.reship.due_at == datetime(2025, 9, 30, 17, 30, tzinfo=SHANGHAI)


# -- pre-sale (售前) ----------------------------------------------------------------------


def test_enquiry_is_answered() -> None:
    walk = Walk(K.ENQUIRY)
    answered = walk.do(
        "answer_enquiry",
        {"text": "Yes, it fits the 2024 model."},
        status=S.RESOLVED,
        told=["answer"],
    )
    assert answered.messages[0].values == {"text": "Yes, it fits the 2024 model."}
    walk.close()


def test_wholesale_registration_gets_an_account_and_a_coupon_code() -> None:
    walk = Walk(K.WHOLESALE_REGISTRATION)
    registered = walk.do(
        "register_wholesale_account",
        {"account": "wholesale-0042", "coupon_code": "WS-10OFF"},
        status=S.RESOLVED,
        told=["wholesale_account"],
    )
    assert registered.messages[0].values == {"account": "wholesale-0042", "coupon_code": "WS-10OFF"}
    walk.close()


# -- returns and service complaints ------------------------------------------------------


def test_return_request_item_comes_back_and_is_refunded() -> None:
    walk = Walk(K.RETURN_REQUEST)
    walk.do(
        "decide_resolution",
        {"items": [{"remedy": "return_item"}, {"remedy": "full_refund", "amount": "60"}]},
        status=S.IN_PROGRESS,
        told=["resolution_decided"],
    )
    walk.do("return_tracking_given", {"tracking_no": "YT-RR"})
    walk.do("return_received", {"signed_by": "Warehouse"}, by=LEO)
    walk.do("return_inspected", {"ok": True}, by=LEO)
    walk.do("return_back_in_stock", by=LEO)
    refund_in_full(walk, "bank_transfer", "60", "refund_posted")
    walk.do("resolve", status=S.RESOLVED, told=["resolved"])
    walk.close()


def test_service_complaint_is_apologised_for_and_fed_back_to_the_department() -> None:
    walk = Walk(K.SERVICE_COMPLAINT)
    walk.do(
        "feedback_to_department",
        {"department": "warehouse", "root_cause": "The parcel sat for a week unpacked."},
    )
    apology = walk.do(
        "apologise",
        {"text": "We are sorry for the wait."},
        status=S.RESOLVED,
        told=["apology"],
    )
    assert apology.messages[0].values == {"text": "We are sorry for the wait."}
    walk.close()


def test_a_resolved_case_can_be_reopened_and_closed_again() -> None:
    walk = Walk(K.ENQUIRY)
    walk.do("answer_enquiry", {"text": "Yes."})
    walk.close()
    walk.do("reopen", {"text": "The customer asks again."}, status=S.NEW)
    walk.do("answer_enquiry", {"text": "Still yes."}, status=S.RESOLVED)
    walk.close()


# -- approvals ---------------------------------------------------------------------------


def awaiting_approval(amount: str = "800") -> Walk:
    walk = Walk(K.ORDER_CANCEL)
    change = walk.do(
        "decide_resolution",
        {"items": [{"remedy": "full_refund", "amount": amount}]},
        status=S.AWAITING_APPROVAL,
    )
    assert change.messages == ()
    return walk


def test_an_agent_deciding_a_full_refund_of_800_waits_for_a_supervisor() -> None:
    walk = awaiting_approval("800")
    pending = walk.case.pending_resolution
    assert pending is not None
    assert (pending.needs, pending.decided_by) == ("supervisor", "staff:ann")
    assert walk.case.refund is None and walk.case.resolution == ()
    assert walk.case.next_due_at is None
    assert "approve_resolution" not in available_actions(walk.case, ANN)
    assert "approve_resolution" in available_actions(walk.case, SUE)

    reason = walk.refuse("approve_resolution").reason
    assert "agent may not approve resolution" in reason and "supervisor" in reason

    approved = walk.do(
        "approve_resolution", by=SUE, status=S.IN_PROGRESS, told=["resolution_decided"]
    )
    assert approved.event.actor == "staff:sue"
    assert approved.messages[0].values == {"remedies": "full_refund", "amounts": "800.00"}
    assert walk.case.pending_resolution is None
    assert walk.case.refund is not None and walk.case.refund.amount == Decimal(800)
    # The refund request is due 3 days after the decision became final.
    assert walk.case.refund.request_due_at == walk.now + timedelta(days=3)
    refund_in_full(walk, "paypal", "800", "refund_posted_paypal")
    walk.do("resolve", status=S.RESOLVED)
    walk.close()


def test_a_supervisor_may_turn_a_resolution_down() -> None:
    walk = awaiting_approval("800")
    walk.do("reject_resolution", {"text": "Offer a coupon first."}, by=SUE, status=S.NEW)
    assert walk.case.pending_resolution is None
    walk.do("decide_resolution", {"items": [{"remedy": "full_refund", "amount": "100"}]},
            status=S.IN_PROGRESS)


def test_refunds_up_to_500_need_no_approval() -> None:
    for amount in ("300", "500"):
        walk = Walk(K.ORDER_CANCEL)
        walk.do(
            "decide_resolution",
            {"items": [{"remedy": "full_refund", "amount": amount}]},
            status=S.IN_PROGRESS,
            told=["resolution_decided"],
        )
        assert walk.case.pending_resolution is None


def test_a_supervisor_deciding_800_needs_nobody_else() -> None:
    walk = Walk(K.ORDER_CANCEL)
    walk.do(
        "decide_resolution",
        {"items": [{"remedy": "full_refund", "amount": "800"}]},
        by=SUE,
        status=S.IN_PROGRESS,
    )


def test_a_refund_split_into_small_items_still_needs_its_approval() -> None:
    walk = verified(K.NOT_AS_DESCRIBED)
    walk.do(
        "decide_resolution",
        {"items": [{"remedy": "partial_refund", "amount": "300"},
                   {"remedy": "partial_refund", "amount": "300"}]},
        status=S.AWAITING_APPROVAL,
    )
    assert walk.case.pending_resolution is not None
    assert walk.case.pending_resolution.needs == "supervisor"


def test_a_decision_waits_for_the_highest_approval_any_of_its_items_needs() -> None:
    policies = Policies(
        approvals={
            Remedy.FULL_REFUND: ApprovalRule(above=Decimal(500), role=Role.SUPERVISOR),
            Remedy.REFUND_DIFFERENCE: ApprovalRule(above=Decimal(100), role=Role.SERVICE_VP),
        }
    )
    promises = PolicyPromises(policies)
    case = verified(K.RETURN_REQUEST).case
    items = [
        {"remedy": "full_refund", "amount": "600"},
        {"remedy": "refund_difference", "amount": "200"},
    ]
    decided = apply_action(
        case, "decide_resolution", {"items": items}, actor=ANN, now=FRIDAY, promises=promises
    ).case
    assert decided.status is S.AWAITING_APPROVAL
    assert decided.pending_resolution is not None
    assert decided.pending_resolution.needs == "service_vp"
    with pytest.raises(ActionRefused, match="needs the approval of a service_vp"):
        apply_action(decided, "approve_resolution", None, actor=SUE, now=FRIDAY,
                     promises=promises)
    approved = apply_action(
        decided, "approve_resolution", None, actor=VERA, now=FRIDAY, promises=promises
    ).case
    assert approved.status is S.IN_PROGRESS
    assert approved.refund is not None and approved.refund.amount == Decimal(800)


# -- forbidden things --------------------------------------------------------------------


def in_progress_refund() -> Walk:
    walk = Walk(K.ORDER_CANCEL)
    walk.do("decide_resolution", {"items": [{"remedy": "full_refund", "amount": "50"}]})
    walk.do("submit_refund_request", {"method": "paypal"})
    return walk


def test_a_technician_cannot_post_a_refund() -> None:
    walk = in_progress_refund()
    refusal = walk.refuse(
        "post_refund", {"amount": "50", "method": "paypal", "reference": "PP-1"}, by=TIM
    )
    assert refusal.reason == "a technician may not post refund (allowed: finance)"
    assert "post_refund" not in available_actions(walk.case, TIM)
    assert "post_refund" in available_actions(walk.case, FAY)


def test_finance_cannot_decide_a_resolution() -> None:
    case = new_case(K.ORDER_CANCEL)
    refusal = refused(
        case, "decide_resolution", {"items": [{"remedy": "full_refund", "amount": "50"}]}, by=FAY
    )
    assert refusal.reason.startswith("a finance may not decide resolution (allowed: agent")


def test_an_action_of_another_kind_is_refused() -> None:
    refusal = refused(new_case(K.WRONG_ITEM), "answer_enquiry", {"text": "Yes."})
    assert refusal.reason == "'answer_enquiry' is not part of a wrong_item case"
    assert "answer_enquiry" not in available_actions(new_case(K.WRONG_ITEM), ANN)


def test_an_unknown_action_is_refused() -> None:
    refusal = refused(new_case(K.ENQUIRY), "refund_everything")
    assert refusal.reason == "there is no action 'refund_everything'"
    assert fields(refusal) == {"action"}


def test_resolve_waits_until_the_customer_is_told_of_the_refund() -> None:
    walk = in_progress_refund()
    walk.do("post_refund", {"amount": "50", "method": "paypal", "reference": "PP-1"}, by=FAY)
    refusal = walk.refuse("resolve")
    assert refusal.reason == "not yet resolved: still open is the refund (at: posted)"


def test_finance_cannot_post_another_amount_than_the_decided_refund() -> None:
    walk = in_progress_refund()
    refusal = walk.refuse(
        "post_refund", {"amount": "800", "method": "paypal", "reference": "PP-1"}, by=FAY
    )
    assert "50" in refusal.reason
    assert fields(refusal) == {"params.amount"}


@pytest.mark.parametrize(
    ("kind", "action", "params", "bad"),
    [
        (K.ORDER_CANCEL, "decide_resolution", {"items": []}, {"params.items"}),
        (K.ORDER_CANCEL, "decide_resolution", {}, {"params.items"}),
        (K.ORDER_CANCEL, "decide_resolution", {"items": [{"remedy": "free_car"}]},
         {"params.items.0.remedy"}),
        (K.ORDER_CANCEL, "decide_resolution",
         {"items": [{"remedy": "full_refund", "amount": "-5"}]}, {"params.items.0.amount"}),
        (K.ORDER_CANCEL, "decide_resolution", {"items": [{"remedy": "reship"}]},
         {"params.items.0.remedy"}),
        (K.ORDER_CANCEL, "decide_resolution", {"items": [{"remedy": "full_refund"}]},
         {"params.items.0.amount"}),
        (K.ENQUIRY, "answer_enquiry", {"text": "   "}, {"params.text"}),
        (K.ENQUIRY, "answer_enquiry", {"text": "Yes.", "cc": "boss"}, {"params.cc"}),
        (K.ENQUIRY, "assign_owner", {"owner": "Not An Id!"}, {"params.owner"}),
        (K.NOT_AS_DESCRIBED, "explain", {"reason": "misreading", "text": "x",
                                         "offer": "gift"}, {"params.offer_detail"}),
        (K.NOT_AS_DESCRIBED, "explain", {"reason": "moon", "text": "x"}, {"params.reason"}),
        (K.NOT_AS_DESCRIBED, "feedback_to_department",
         {"department": "marketing", "root_cause": "x"}, {"params.department"}),
        (K.WHOLESALE_REGISTRATION, "register_wholesale_account", {"account": "a"},
         {"params.coupon_code"}),
    ],
)
def test_bad_parameters_are_refused_with_field_errors(
    kind: CaseKind, action: str, params: dict[str, Any], bad: set[str]
) -> None:
    refusal = refused(new_case(kind), action, params)
    assert fields(refusal) == bad
    assert all(error["message"] for error in refusal.errors)


def test_bad_refund_parameters_are_refused_with_field_errors() -> None:
    walk = in_progress_refund()
    refusal = walk.refuse(
        "post_refund", {"amount": "0", "method": "cash", "reference": ""}, by=FAY
    )
    assert refusal.reason == "the parameters are not right"
    assert fields(refusal) == {"params.amount", "params.method", "params.reference"}


def test_an_inactive_staff_member_is_refused() -> None:
    gone = ANN.model_copy(update={"active": False})
    case = new_case(K.ENQUIRY)
    assert refused(case, "answer_enquiry", {"text": "Yes."}, by=gone).reason == (
        "Ann's access has been revoked"
    )
    assert available_actions(case, gone) == []


def test_an_agent_takes_a_case_but_only_a_supervisor_assigns_it_to_others() -> None:
    walk = Walk(K.ENQUIRY)
    assert "supervisor assigns others" in walk.refuse("assign_owner", {"owner": "bob"}).reason
    walk.do("assign_owner", {"owner": "ann"})
    walk.do("assign_owner", {"owner": "bob"}, by=SUE)
    assert walk.case.owner == "bob"


def test_a_goods_complaint_is_verified_before_a_remedy_is_decided() -> None:
    for kind in (K.NOT_AS_DESCRIBED, K.WRONG_ITEM, K.MISSING_ITEM, K.QUALITY_PROBLEM):
        case = new_case(kind)
        assert "decide_resolution" not in available_actions(case, ANN)
        refusal = refused(case, "decide_resolution", {"items": [{"remedy": "gift"}]})
        assert "while the case is new" in refusal.reason and "verified" in refusal.reason
    # Not a complaint about the goods: decided at once.
    assert "decide_resolution" in available_actions(new_case(K.RETURN_REQUEST), ANN)
    assert "decide_resolution" in available_actions(new_case(K.ORDER_CANCEL), ANN)


def test_close_only_from_resolved() -> None:
    walk = in_progress_refund()
    refusal = walk.refuse("close")
    assert refusal.reason == (
        "'close' is not possible while the case is in_progress (possible when: resolved)"
    )
    assert "close" not in available_actions(walk.case, ANN)


def closed_case() -> Case:
    walk = verified(K.WRONG_ITEM)
    walk.do("explain", {"reason": "other", "text": "It is the same model, new label."})
    walk.close()
    return walk.case


# After closing: reopen, and the follow-up (the call, a question raised on it).
AFTER_CLOSING = {"reopen", "record_follow_up_call", "answer_question"}


@pytest.mark.parametrize("action", sorted(set(ACTIONS) - AFTER_CLOSING))
def test_a_closed_case_accepts_only_reopen_and_its_follow_up(action: str) -> None:
    case = closed_case()
    for role in ACTIONS[action].roles:
        staff = StaffMember(staff_id="someone", name="Someone", role=role)
        refusal = refused(case, action, {}, by=staff)
        assert (
            "while the case is closed" in refusal.reason
            or "is not part of a wrong_item case" in refusal.reason
        )


def test_a_closed_case_is_reopened_where_it_stood() -> None:
    case = closed_case()
    for role in Role:
        staff = StaffMember(staff_id="someone", name="Someone", role=role)
        assert set(available_actions(case, staff)) <= AFTER_CLOSING
    # The follow-up call after the resolution is still to make.
    assert available_actions(case, ANN) == ["reopen", "record_follow_up_call"]
    reopened = apply_action(
        case, "reopen", {"text": "The customer writes again."}, actor=ANN,
        now=FRIDAY + timedelta(days=9), promises=PROMISES,
    )
    assert reopened.case.status is S.VERIFIED  # the complaint was found true before
    assert reopened.case.version == case.version + 1
    assert set(reopened.event.before) == {
        "status", "closed_at", "resolved_at", "resolve_due_at", "follow_up"
    }
    # Back to work: no call while the case is open again, and a new resolution target.
    assert reopened.case.follow_up is not None and reopened.case.follow_up.calls == ()
    assert reopened.case.resolved_at is None and reopened.case.closed_at is None
    assert reopened.case.resolve_due_at is not None
    assert reopened.case.resolve_due_at > FRIDAY + timedelta(days=9)


def test_a_cancelled_case_reopens_with_its_unfinished_work() -> None:
    walk = verified(K.QUALITY_PROBLEM)
    walk.do("request_repair_fee", {"amount": "80", "repairer": "Local shop"}, status=S.IN_PROGRESS)
    walk.do("cancel", {"text": "The customer went quiet."}, status=S.CANCELLED)
    assert not walk.case.is_open and walk.case.next_due_at is None
    assert available_actions(walk.case, ANN) == ["reopen"]
    walk.do("reopen", {"text": "The customer is back."}, status=S.IN_PROGRESS)
    walk.do("pay_repair_fee", {"reference": "PAY-1"}, by=FAY, told=["repair_fee_paid"])
    walk.do("resolve", status=S.RESOLVED)


def test_a_cancelled_refund_reopens_in_progress_with_its_refund() -> None:
    walk = in_progress_refund()
    walk.do("cancel", {"text": "Duplicate."}, status=S.CANCELLED)
    walk.do("reopen", {"text": "Not a duplicate."}, status=S.IN_PROGRESS)
    assert walk.case.refund is not None and walk.case.refund.state == "requested"


def test_a_refused_action_leaves_the_original_case_unchanged() -> None:
    walk = in_progress_refund()
    case = walk.case
    for action, params, by in [
        ("post_refund", {"amount": "50", "method": "paypal", "reference": "R"}, TIM),
        ("decide_resolution", {"items": [{"remedy": "full_refund", "amount": "5"}]}, ANN),
        ("resolve", None, ANN),
        ("close", None, ANN),
        ("answer_enquiry", {"text": "x"}, ANN),
    ]:
        refused(case, action, params, by=by)
        assert walk.case is case and case.version == 3


def test_the_customer_status_link_survives_every_change() -> None:
    if "status_token" not in Case.model_fields:
        pytest.skip("cases carry no status token")
    case = new_case(K.ENQUIRY).model_copy(update={"status_token": "tok-123"})
    change = apply_action(
        case, "answer_enquiry", {"text": "Yes."}, actor=ANN, now=FRIDAY, promises=PROMISES
    )
    assert change.case.status_token == "tok-123"
    assert "status_token" not in (change.event.after or {})


def test_available_actions_for_a_new_wrong_item_complaint() -> None:
    case = new_case(K.WRONG_ITEM)
    assert available_actions(case, ANN) == [
        "add_note", "message_customer", "assign_owner", "request_photos",
        "mark_complaint_true", "mark_complaint_not_true", "explain",
        "feedback_to_department", "cancel",
    ]
    assert available_actions(case, FAY) == ["add_note"]
    assert available_actions(case, QIAN) == ["add_note", "feedback_to_department"]


def test_refunds_of_different_kinds_are_added_up_for_the_approval() -> None:
    walk = Walk(K.RETURN_REQUEST)
    walk.do(
        "decide_resolution",
        {"items": [{"remedy": "partial_refund", "amount": "400"},
                   {"remedy": "refund_difference", "amount": "400"}]},
        status=S.AWAITING_APPROVAL,
    )


def test_a_reopened_case_counts_what_was_already_refunded() -> None:
    walk = Walk(K.ORDER_CANCEL)
    walk.do("decide_resolution", {"items": [{"remedy": "full_refund", "amount": "400"}]},
            status=S.IN_PROGRESS, told=["resolution_decided"])
    refund_in_full(walk, "paypal", "400", "refund_posted_paypal")
    assert walk.case.refunded_total == Decimal(400)
    walk.do("resolve", status=S.RESOLVED)
    walk.close()
    walk.do("reopen", {"text": "Customer asks for more."}, status=S.NEW)

    walk.do("decide_resolution", {"items": [{"remedy": "full_refund", "amount": "300"}]},
            status=S.AWAITING_APPROVAL)


def test_the_customer_is_told_what_the_gift_is() -> None:
    from chalicelib.domain.messages import message_text

    walk = verified(K.WRONG_ITEM)
    change = walk.do(
        "decide_resolution",
        {"items": [{"remedy": "keep_wrong_item"}, {"remedy": "reship"},
                   {"remedy": "gift", "note": "a phone strap"}]},
        status=S.IN_PROGRESS,
        told=["resolution_decided"],
    )
    [message] = change.messages

    text = message_text(message.template, message.values, Language.EN)
    assert "a small gift (a phone strap)" in text
    assert "a new shipment" in text
