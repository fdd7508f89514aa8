"""Scenario tests: every row of the web-shop complaint flow of processes.md, walked from the
customer's report (or the phone call) to `closed` through the HTTP API.

Each scenario reads the case before every action and acts on the version it read, as staff
do; then drains the outbox and checks three things: the case history (every action, who
took it, versions 1..N without a gap), the e-mails the customer got (subjects in their
language, and what the process says they must hear), and the customer's status page (the
same messages, never an internal note or the feedback given to a department).

The whole file runs on a fixed clock (time_machine, tick=False), so deadlines are exact
and nothing depends on today's date.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import time_machine
from markupsafe import escape

from chalicelib.domain.case import CaseKind
from chalicelib.domain.lifecycle import ACTIONS
from chalicelib.domain.staff import Role
from tests.integration.support import token_of
from tests.integration.test_staff_api import act, body, call, report, staff_token
from tests.integration.test_status_and_mail import mails, run_send_outbox, text_of

# Wednesday 29 April 2026, 10:00 in Shanghai: two days before the Labour Day holidays
# (1-5 May), so "3 working days" and "3 days" differ.
T0 = datetime(2026, 4, 29, 2, 0, tzinfo=UTC)
EN = "[After-sales Service] "
ZH = "【After-sales Service】"

# Who is on duty: role -> staff id (events name them "staff:<id>").
ON_DUTY = {
    Role.AGENT: "ann",
    Role.SUPERVISOR: "sue",
    Role.FINANCE: "fei",
    Role.LOGISTICS: "leo",
    Role.OPERATIONS: "ola",
    Role.PURCHASING: "pat",
    Role.QA_MANAGER: "qiu",
    Role.TECHNICIAN: "tom",
    Role.SERVICE_DIRECTOR: "dan",
    Role.SERVICE_VP: "vic",
    Role.SUPPLY_VP: "sol",
    Role.SALES_VP: "sal",
}
AGENT, SUPERVISOR, FINANCE, LOGISTICS, OPERATIONS = (
    Role.AGENT, Role.SUPERVISOR, Role.FINANCE, Role.LOGISTICS, Role.OPERATIONS
)

# What the customer does not see on their status page: the desk's own work.
INTERNAL = frozenset({
    "add_note", "assign_owner", "mark_complaint_true", "mark_complaint_not_true",
    "feedback_to_department", "listing_corrected", "reject_resolution",
    "return_tracking_given", "return_received", "return_inspected", "return_back_in_stock",
    "submit_refund_request", "request_repair_fee", "close", "reopen", "cancel",
})


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)


@dataclass
class Opened:
    case_id: str
    case_number: str
    status_url: str
    opened_by: str  # the actor of the first event
    email: str


class Desk:
    """The test client, the staff on duty, and a clock that only moves when told."""

    def __init__(self, client: Any, mail_dir: Path, start: datetime = T0) -> None:
        self.client = client
        self.mail_dir = mail_dir
        self.now = start
        self.tokens: dict[Role, str] = {}
        self.done: dict[str, list[tuple[str, str]]] = {}  # case -> [(action, actor)]

    # -- time --------------------------------------------------------------------------

    @contextmanager
    def moment(self, wait: timedelta = timedelta(minutes=1),
               when: datetime | None = None) -> Iterator[datetime]:
        """Move the clock on (never back) and hold it there for what runs inside."""
        target = when or self.now + wait
        assert target >= self.now, "the clock only moves forward"
        self.now = target
        with time_machine.travel(target, tick=False):
            yield target

    # -- people ------------------------------------------------------------------------

    def token(self, role: Role) -> str:
        if role not in self.tokens:
            self.tokens[role] = staff_token(role, ON_DUTY[role])
        return self.tokens[role]

    @staticmethod
    def actor(role: Role) -> str:
        return f"staff:{ON_DUTY[role]}"

    # -- opening a case ----------------------------------------------------------------

    def customer_reports(self, **complaint: Any) -> Opened:
        with self.moment():
            receipt = report(self.client, **complaint)
        email = complaint.get("customer", {}).get("email", "ann@example.com")
        return self._opened(receipt, f"customer:{email}", email)

    def phone_call(self, role: Role, complaint: dict[str, Any]) -> Opened:
        with self.moment():
            response = call(self.client, "post", "/api/staff/cases", self.token(role), complaint)
        assert response.status_code == 201, response.body
        return self._opened(body(response), self.actor(role), complaint["customer"]["email"])

    def _opened(self, receipt: dict[str, Any], actor: str, email: str) -> Opened:
        self.done[receipt["case_id"]] = [("case_received", actor)]
        return Opened(receipt["case_id"], receipt["case_number"], receipt["status_url"],
                      actor, email)

    # -- working on it -----------------------------------------------------------------

    def read(self, case: Opened, role: Role = AGENT) -> dict[str, Any]:
        response = call(self.client, "get", f"/api/staff/cases/{case.case_id}",
                        self.token(role))
        assert response.status_code == 200, response.body
        read: dict[str, Any] = body(response)
        return read

    def do(self, case: Opened, role: Role, action: str, params: dict[str, Any] | None = None,
           *, wait: timedelta = timedelta(minutes=1)) -> dict[str, Any]:
        """Read the case, then take the action on the version read; returns the case."""
        with self.moment(wait):
            read = self.read(case, role)
            version = read["case"]["version"]
            assert action in read["available_actions"], (action, read["available_actions"])
            response = act(self.client, self.token(role), case.case_id, action, version, params)
        assert response.status_code == 200, (action, response.status_code, response.body)
        changed: dict[str, Any] = body(response)["case"]
        assert changed["version"] == version + 1
        self.done[case.case_id].append((action, self.actor(role)))
        return changed

    def walk(self, case: Opened, *steps: tuple[Any, ...]) -> dict[str, Any]:
        """Steps of (role, action[, params[, wait]])."""
        changed: dict[str, Any] = {}
        for step in steps:
            role, action, *rest = step
            params = rest[0] if rest else None
            wait = rest[1] if len(rest) > 1 else timedelta(minutes=1)
            changed = self.do(case, role, action, params, wait=wait)
        return changed

    def refused(self, case: Opened, role: Role, action: str,
                params: dict[str, Any] | None = None) -> tuple[int, str]:
        """An action that must be refused: nothing changes. Returns (status, reason)."""
        with self.moment():
            before = self.read(case)
            response = act(self.client, self.token(role), case.case_id, action,
                           before["case"]["version"], params)
            after = self.read(case)
        assert response.status_code in (400, 403, 422), (action, response.body)
        assert after["case"] == before["case"]
        assert after["history"] == before["history"]
        return response.status_code, body(response)["errors"][0]["message"]

    def overdue(self, role: Role = AGENT) -> list[str]:
        response = call(self.client, "get", "/api/staff/cases?overdue=true", self.token(role))
        assert response.status_code == 200, response.body
        return [c["case_number"] for c in body(response)["cases"]]

    # -- what happened -----------------------------------------------------------------

    def history(self, case: Opened) -> list[tuple[str, str, int]]:
        events = self.read(case)["history"]
        return [(e["action"], e["actor"], e["version"]) for e in reversed(events)]

    def send_mail(self) -> list[EmailMessage]:
        with self.moment():
            run_send_outbox(self.client)
        return mails(self.mail_dir)


@pytest.fixture
def desk(client: Any, aws: Path) -> Desk:
    return Desk(client, aws)


# -- the three checks after a walk ---------------------------------------------------------


def check_history(desk: Desk, case: Opened) -> None:
    """Every action, who took it, in order, versions 1..N with no gap."""
    done = desk.done[case.case_id]
    expected = [(action, actor, n) for n, (action, actor) in enumerate(done, start=1)]
    assert desk.history(case) == expected
    assert desk.read(case)["case"]["version"] == len(done)


def check_mails(
    desk: Desk, case: Opened, expected: list[tuple[str, list[str]]], *, language: str = "en"
) -> list[EmailMessage]:
    """The e-mails the customer got: exactly these subjects, each with these snippets."""
    got = [m for m in desk.send_mail() if str(m["X-Case-Id"]) == case.case_id]
    assert sorted(str(m["Subject"]) for m in got) == sorted(s for s, _ in expected)
    left = list(got)
    for subject, snippets in expected:
        # Two e-mails may share a subject: take the one with these snippets (mail files
        # come back in no particular order).
        same = [m for m in left if str(m["Subject"]) == subject]
        mail = next((m for m in same if all(x in text_of(m) for x in snippets)), same[0])
        left.remove(mail)
        text = text_of(mail)
        assert mail["To"].addresses[0].addr_spec == case.email
        assert case.status_url in text
        assert text.split("\n", 1)[0].endswith("您好：" if language == "zh" else ",")
        for snippet in snippets:
            assert snippet in text, (subject, snippet, text)
    return got


def check_status_page(
    desk: Desk,
    case: Opened,
    sent: list[EmailMessage],
    *,
    shows: list[str],
    hides: list[str],
    status: str = "closed",
) -> dict[str, Any]:
    """The customer's page: the steps they hear about, the same words as their e-mails,
    nothing internal."""
    token = token_of(case.status_url)
    with desk.moment():
        api = desk.client.http.get(f"/api/status/{token}")
        page = desk.client.http.get(f"/status/{token}").body.decode()
    assert api.status_code == 200
    view: dict[str, Any] = body(api)
    assert view["status"] == status
    # What the customer hears of: every step but the internal ones, and a decision only
    # once it is final (one waiting for approval is not told).
    with desk.moment():
        told = [e["action"] for e in reversed(desk.read(case)["history"])
                if e["told_customer"] or e["action"] == "case_received"]
    visible = [a for a, _ in desk.done[case.case_id] if a not in INTERNAL]
    if visible != told:
        assert [a for a in visible if a != "decide_resolution"] == [
            a for a in told if a != "decide_resolution"
        ]
        assert told.count("decide_resolution") < visible.count("decide_resolution")
        visible = told
    assert [line["action"] for line in reversed(view["history"])] == visible
    messages = [m for line in reversed(view["history"]) for m in line["messages"]]
    # One message for every e-mail about the case, the same words (the confirmation is the
    # status page's own first line).
    assert len(messages) == len(sent) - 1
    mail_texts = [text_of(m) for m in sent]
    for message in messages:
        assert any(message in text for text in mail_texts), message
        assert str(escape(message)) in page, message
    for snippet in shows:
        assert any(snippet in m for m in messages), snippet
        assert str(escape(snippet)) in page, snippet
    for secret in [*hides, "staff:", case.email]:
        assert secret not in json.dumps(view, ensure_ascii=False), secret
        assert str(escape(secret)) not in page and secret not in page, secret
    return view


def ann(**overrides: Any) -> dict[str, Any]:
    return {"customer": {"name": "Ann Lee", "email": "ann@example.com"}, "language": "en",
            **overrides}


# -- not as described (描述不一致) ----------------------------------------------------------


def test_not_as_described_customer_misread_explain_with_a_discount(desk: Desk) -> None:
    case = desk.customer_reports(**ann(kind="not_as_described", order_ref="SO-3001",
                                       description="The lamp is 30 cm, not 40 cm"))
    n = case.case_number

    desk.walk(
        case,
        (AGENT, "request_photos"),
        (AGENT, "mark_complaint_true"),
        (AGENT, "add_note", {"text": "NOTE-1 listing says 30 cm, customer read 40"}),
        (AGENT, "explain", {
            "reason": "misreading",
            "text": "The listing gives the height as 30 cm; we are sorry it was not clearer.",
            "offer": "discount", "offer_detail": "10% off your next order, code NEXT10",
        }),
        (AGENT, "close"),
    )

    check_history(desk, case)
    sent = check_mails(desk, case, [
        (f"{EN}We received your report, case {n}", [n]),
        (f"{EN}Photos needed for case {n}", ["photos of the product and of the package"]),
        (f"{EN}About your case {n}", [
            "gives the height as 30 cm", "we are sorry",
            "a discount on your next order: 10% off your next order, code NEXT10",
        ]),
    ])
    check_status_page(desk, case, sent, shows=["code NEXT10"], hides=["NOTE-1"])


def test_not_as_described_listing_wrong_partial_card_refund_in_chinese(desk: Desk) -> None:
    case = desk.customer_reports(
        kind="not_as_described", language="zh", order_ref="SO-3002",
        customer={"name": "王芳", "email": "wang.fang@example.com"},
        description="页面写的是纯棉，收到的是涤纶。",
    )
    n = case.case_number

    decided = desk.walk(
        case,
        (AGENT, "request_photos"),
        (AGENT, "mark_complaint_true"),
        (AGENT, "feedback_to_department",
         {"department": "purchasing", "root_cause": "ROOT-1 supplier changed the fabric"}),
        (AGENT, "feedback_to_department",
         {"department": "operations", "root_cause": "ROOT-2 listing still says cotton"}),
        (OPERATIONS, "listing_corrected", {"feedback_number": 2}),
        (AGENT, "decide_resolution",
         {"items": [{"remedy": "partial_refund", "amount": "30.00"}]}),
    )
    assert at(decided["refund"]["request_due_at"]) == desk.now + timedelta(days=3)
    assert decided["feedback"][1]["listing_corrected_at"] is not None
    desk.walk(
        case,
        (AGENT, "submit_refund_request", {"method": "credit_card"}),
        (FINANCE, "post_refund",
         {"amount": "30.00", "method": "credit_card", "reference": "FIN-CC-7781"}),
        (AGENT, "tell_customer_refunded"),
        (AGENT, "resolve"),
        (AGENT, "close"),
    )

    check_history(desk, case)
    sent = check_mails(desk, case, [
        (f"{ZH}已收到您的反馈，单号 {n}", [n]),
        (f"{ZH}单号 {n}：请提供照片", ["商品及外包装的照片"]),
        (f"{ZH}单号 {n}：处理方案", ["非常抱歉", "部分退款 (30.00)"]),
        (f"{ZH}单号 {n}：已退款", ["信用卡退款 30.00", "20", "30", "个工作日"]),
        (f"{ZH}单号 {n}：退款已完成", ["30.00", "再次向您致歉"]),
        (f"{ZH}单号 {n} 已处理完毕", ["感谢您的耐心"]),
    ], language="zh")
    card = next(m for m in sent if "已退款" in str(m["Subject"]))
    assert "20–30 个工作日" in text_of(card)
    check_status_page(desk, case, sent, shows=["20–30 个工作日", "再次向您致歉"],
                      hides=["ROOT-1", "ROOT-2", "FIN-CC-7781"])
    page = desk.client.http.get(f"/status/{token_of(case.status_url)}").body.decode()
    assert "已关闭" in page


# -- wrong item sent (发错产品) -------------------------------------------------------------


def test_wrong_item_of_high_value_is_returned_and_the_right_one_reshipped_with_a_gift(
    desk: Desk,
) -> None:
    case = desk.customer_reports(**ann(kind="wrong_item", order_ref="SO-3003",
                                       description="Got the 65-inch TV, ordered the 55-inch"))
    n = case.case_number
    day = timedelta(days=1)

    decided = desk.walk(
        case,
        (AGENT, "request_photos"),
        (AGENT, "mark_complaint_true"),
        (AGENT, "feedback_to_department",
         {"department": "logistics", "root_cause": "ROOT-3 labels swapped at packing"}),
        (AGENT, "decide_resolution", {"items": [
            {"remedy": "return_item"}, {"remedy": "reship"},
            {"remedy": "gift", "note": "HDMI cable"},
        ]}),
    )
    decided_at = desk.now
    assert at(decided["reship"]["due_at"]) == decided_at + timedelta(days=3)
    assert decided["reship"]["extras"] == ["gift"]
    assert decided["item_return"]["state"] == "awaiting_tracking"
    shipped = desk.walk(
        case,
        (AGENT, "return_tracking_given", {"tracking_no": "RT-55501", "carrier": "SF"}, day),
        (LOGISTICS, "reship", {"tracking_no": "SF1234567890", "carrier": "SF Express"}, day),
    )
    assert at(shipped["reship"]["shipped_at"]) <= at(shipped["reship"]["due_at"])
    returned = desk.walk(
        case,
        (LOGISTICS, "return_received", {"signed_by": "Leo at gate 2"}, 4 * day),
        (LOGISTICS, "return_inspected", {"ok": True, "note": "sealed, undamaged"}),
        (LOGISTICS, "return_back_in_stock"),
        (AGENT, "resolve"),
        (AGENT, "close"),
    )
    assert returned["item_return"]["state"] == "back_in_stock"
    assert returned["item_return"]["tracking_no"] == "RT-55501"

    check_history(desk, case)
    sent = check_mails(desk, case, [
        (f"{EN}We received your report, case {n}", [n]),
        (f"{EN}Photos needed for case {n}", []),
        (f"{EN}What we will do: case {n}", [
            "We are sorry", "the item is returned to us", "a new shipment", "a small gift",
        ]),
        (f"{EN}On its way: case {n}", [
            "Tracking number: SF1234567890 (SF Express)", "Also in the parcel: a small gift",
        ]),
        (f"{EN}Case {n} is resolved", []),
    ])
    check_status_page(desk, case, sent, shows=["SF1234567890", "Also in the parcel"],
                      hides=["ROOT-3", "Leo at gate 2", "sealed, undamaged"])


def test_wrong_item_of_low_value_is_kept_and_the_right_one_reshipped_with_a_coupon(
    desk: Desk,
) -> None:
    case = desk.customer_reports(**ann(kind="wrong_item", order_ref="SO-3004",
                                       description="Blue phone case instead of red"))
    n = case.case_number

    desk.walk(
        case,
        (AGENT, "assign_owner", {"owner": "ann"}),
        (AGENT, "request_photos"),
        (AGENT, "mark_complaint_true"),
        (AGENT, "feedback_to_department",
         {"department": "logistics", "root_cause": "ROOT-4 picked from the wrong bin"}),
        (AGENT, "decide_resolution", {"items": [
            {"remedy": "keep_wrong_item"}, {"remedy": "reship"}, {"remedy": "coupon"},
        ]}),
        (LOGISTICS, "reship", {"tracking_no": "YT998877", "carrier": "YTO"}),
        (AGENT, "resolve"),
        (AGENT, "close"),
    )

    check_history(desk, case)
    sent = check_mails(desk, case, [
        (f"{EN}We received your report, case {n}", [n]),
        (f"{EN}Photos needed for case {n}", []),
        (f"{EN}What we will do: case {n}", [
            "you keep the item sent by mistake", "a new shipment", "a coupon",
        ]),
        (f"{EN}On its way: case {n}", ["YT998877 (YTO)", "Also in the parcel: a coupon"]),
        (f"{EN}Case {n} is resolved", []),
    ])
    check_status_page(desk, case, sent, shows=["you keep the item sent by mistake"],
                      hides=["ROOT-4"])


# -- short shipment / missing accessory (少发/漏发配件) -------------------------------------


def test_missing_part_is_reshipped_within_3_days_with_a_small_gift(desk: Desk) -> None:
    case = desk.customer_reports(**ann(kind="missing_item", order_ref="SO-3005",
                                       description="The charger was not in the box"))
    n = case.case_number

    decided = desk.walk(
        case,
        (AGENT, "request_photos"),
        (AGENT, "mark_complaint_true"),
        (AGENT, "feedback_to_department",
         {"department": "purchasing", "root_cause": "ROOT-5 supplier packs without charger"}),
        (AGENT, "feedback_to_department",
         {"department": "logistics", "root_cause": "ROOT-6 no count check at packing"}),
        (AGENT, "decide_resolution",
         {"items": [{"remedy": "reship_missing_part"}, {"remedy": "gift"}]}),
    )
    assert at(decided["reship"]["due_at"]) == desk.now + timedelta(days=3)
    shipped = desk.walk(
        case,
        (LOGISTICS, "reship", {"tracking_no": "ZTO-4411"}, timedelta(days=2)),
        (AGENT, "resolve"),
        (AGENT, "close"),
    )
    assert at(shipped["reship"]["shipped_at"]) <= at(shipped["reship"]["due_at"])

    check_history(desk, case)
    sent = check_mails(desk, case, [
        (f"{EN}We received your report, case {n}", [n]),
        (f"{EN}Photos needed for case {n}", []),
        (f"{EN}What we will do: case {n}", ["sending the missing part", "a small gift"]),
        (f"{EN}On its way: case {n}", ["ZTO-4411", "Also in the parcel: a small gift"]),
        (f"{EN}Case {n} is resolved", []),
    ])
    check_status_page(desk, case, sent, shows=["ZTO-4411"], hides=["ROOT-5", "ROOT-6"])


# -- parcel not arriving (物流) --------------------------------------------------------------


def test_parcel_not_arriving_tracking_comes_online_within_5_days(desk: Desk) -> None:
    case = desk.customer_reports(**ann(kind="not_received", order_ref="SO-3006",
                                       description="Ordered three weeks ago, nothing came"))
    n = case.case_number

    watching = desk.walk(case, (AGENT, "explain_tracking"))
    assert watching["status"] == "watching_tracking"
    assert at(watching["tracking_check_due_at"]) == desk.now + timedelta(days=5)
    online = desk.walk(case, (AGENT, "check_tracking", {"online": True}, timedelta(days=4)))
    assert online["status"] == "resolved"
    desk.walk(case, (AGENT, "close"))

    check_history(desk, case)
    sent = check_mails(desk, case, [
        (f"{EN}We received your report, case {n}", [n]),
        (f"{EN}About your parcel: case {n}", ["after the parcel reaches your country"]),
        (f"{EN}Your parcel is on its way: case {n}", ["now online"]),
    ])
    check_status_page(desk, case, sent, shows=["on its way to you"], hides=[])


def test_parcel_not_arriving_still_not_online_full_refund_through_paypal(desk: Desk) -> None:
    case = desk.customer_reports(**ann(kind="not_received", order_ref="SO-3007",
                                       description="Tracking shows nothing"))
    n = case.case_number

    desk.walk(
        case,
        (AGENT, "explain_tracking"),
        (AGENT, "check_tracking", {"online": False, "note": "NOTE-7 still no scan"},
         timedelta(days=5)),
        (AGENT, "decide_resolution", {"items": [{"remedy": "full_refund", "amount": "45.90"}]}),
        (AGENT, "submit_refund_request", {"method": "paypal"}, timedelta(days=1)),
        (FINANCE, "post_refund", {"amount": "45.90", "method": "paypal", "reference": "PP-1"}),
        (AGENT, "tell_customer_refunded"),
        (AGENT, "resolve"),
        (AGENT, "close"),
    )

    check_history(desk, case)
    sent = check_mails(desk, case, [
        (f"{EN}We received your report, case {n}", [n]),
        (f"{EN}About your parcel: case {n}", ["updated only after the parcel reaches"]),
        (f"{EN}About your parcel: case {n}", ["still not online", "which you prefer"]),
        (f"{EN}What we will do: case {n}", ["a full refund (45.90)"]),
        (f"{EN}Refund sent: case {n}", ["refunded 45.90 through PayPal",
                                        "PayPal sends you its own refund"]),
        (f"{EN}Your refund is complete: case {n}", ["45.90", "we apologise"]),
        (f"{EN}Case {n} is resolved", []),
    ])
    check_status_page(desk, case, sent, shows=["we apologise"], hides=["NOTE-7"])


# -- quality problem (质量问题) --------------------------------------------------------------


def test_quality_problem_repaired_locally_finance_pays_the_repair_fee(desk: Desk) -> None:
    case = desk.customer_reports(**ann(kind="quality_problem", order_ref="SO-3008",
                                       description="The blender motor stopped after a week"))
    n = case.case_number

    desk.walk(
        case,
        (AGENT, "request_photos"),
        (AGENT, "mark_complaint_true"),
        (AGENT, "request_repair_fee", {"amount": "80.00", "repairer": "Chen's Repair, Pudong"}),
    )
    paid = desk.walk(
        case,
        (FINANCE, "pay_repair_fee", {"reference": "FIN-RF-31"}),
        (AGENT, "resolve"),
        (AGENT, "close"),
    )
    assert paid["repair_fee"]["state"] == "paid"

    check_history(desk, case)
    sent = check_mails(desk, case, [
        (f"{EN}We received your report, case {n}", [n]),
        (f"{EN}Photos needed for case {n}", []),
        (f"{EN}Repair paid: case {n}", ["Chen's Repair, Pudong", "costs you nothing"]),
        (f"{EN}Case {n} is resolved", []),
    ])
    check_status_page(desk, case, sent, shows=["Chen's Repair, Pudong"], hides=["FIN-RF-31"])


def test_quality_problem_the_product_comes_back_for_repair(desk: Desk) -> None:
    case = desk.customer_reports(**ann(kind="quality_problem", order_ref="SO-3009",
                                       description="The kettle leaks at the base"))
    n = case.case_number

    desk.walk(
        case,
        (AGENT, "request_photos"),
        (AGENT, "mark_complaint_true"),
        (AGENT, "feedback_to_department",
         {"department": "qa", "root_cause": "ROOT-9 base seal batch 2026-03"}),
        (AGENT, "decide_resolution",
         {"items": [{"remedy": "return_item", "note": "for repair"}, {"remedy": "reship"}]}),
        (AGENT, "return_tracking_given", {"tracking_no": "RT-9001"}),
        (LOGISTICS, "return_received", {"signed_by": "workshop"}, timedelta(days=2)),
        (LOGISTICS, "return_inspected", {"ok": False, "note": "seal cracked, repaired"}),
    )
    # A faulty product does not go back into stock.
    status, reason = desk.refused(case, LOGISTICS, "return_back_in_stock")
    assert status == 422 and "failed inspection" in reason
    desk.walk(
        case,
        (LOGISTICS, "reship", {"tracking_no": "SF-REPAIRED-1", "carrier": "SF Express"}),
        (AGENT, "resolve"),
        (AGENT, "close"),
    )

    check_history(desk, case)
    sent = check_mails(desk, case, [
        (f"{EN}We received your report, case {n}", [n]),
        (f"{EN}Photos needed for case {n}", []),
        (f"{EN}What we will do: case {n}", ["the item is returned to us", "a new shipment"]),
        (f"{EN}On its way: case {n}", ["SF-REPAIRED-1"]),
        (f"{EN}Case {n} is resolved", []),
    ])
    check_status_page(desk, case, sent, shows=["SF-REPAIRED-1"],
                      hides=["ROOT-9", "seal cracked"])


# -- in-sale: cancel and change an order (售中) ----------------------------------------------


def test_order_cancel_full_refund_above_500_needs_a_supervisor(desk: Desk) -> None:
    case = desk.customer_reports(**ann(kind="order_cancel", order_ref="SO-3010",
                                       description="Please cancel, ordered twice"))
    n = case.case_number

    waiting = desk.walk(
        case,
        (AGENT, "decide_resolution", {"items": [{"remedy": "full_refund", "amount": "650.00"}]}),
    )
    assert waiting["status"] == "awaiting_approval"
    assert waiting["pending_resolution"]["needs"] == "supervisor"
    assert waiting["refund"] is None
    assert "approve_resolution" not in desk.read(case, AGENT)["available_actions"]
    status, reason = desk.refused(case, AGENT, "approve_resolution")
    assert status == 403 and "supervisor" in reason
    approved = desk.walk(case, (SUPERVISOR, "approve_resolution"))
    assert approved["status"] == "in_progress"
    assert approved["refund"]["amount"] == "650.00"
    assert at(approved["refund"]["request_due_at"]) == desk.now + timedelta(days=3)
    desk.walk(
        case,
        (AGENT, "submit_refund_request", {"method": "credit_card"}),
        (FINANCE, "post_refund",
         {"amount": "650.00", "method": "credit_card", "reference": "FIN-CC-650"}),
        (AGENT, "tell_customer_refunded"),
        (AGENT, "resolve"),
        (AGENT, "close"),
    )

    check_history(desk, case)
    assert ("approve_resolution", "staff:sue", 3) in desk.history(case)
    sent = check_mails(desk, case, [
        (f"{EN}We received your report, case {n}", [n]),
        (f"{EN}What we will do: case {n}", ["a full refund (650.00)"]),
        (f"{EN}Refund sent: case {n}", [
            "refunded 650.00 to your credit card", "20 to 30 working days",
        ]),
        (f"{EN}Your refund is complete: case {n}", ["650.00", "we apologise"]),
        (f"{EN}Case {n} is resolved", []),
    ])
    check_status_page(desk, case, sent, shows=["20 to 30 working days"],
                      hides=["FIN-CC-650"])


def test_order_change_of_address(desk: Desk) -> None:
    case = desk.customer_reports(**ann(kind="order_change", order_ref="SO-3011",
                                       description="I moved; please send it to my office"))
    n = case.case_number
    address = "Room 1201, 88 Century Avenue, Pudong, Shanghai 200120"

    resolved = desk.walk(case, (AGENT, "change_address", {"address": address}))
    assert resolved["status"] == "resolved"
    desk.walk(case, (AGENT, "close"))

    check_history(desk, case)
    sent = check_mails(desk, case, [
        (f"{EN}We received your report, case {n}", [n]),
        (f"{EN}Address changed: case {n}", [address]),
    ])
    check_status_page(desk, case, sent, shows=[address], hides=[])


def test_order_change_exchange_refunds_the_difference_and_ships_within_3_working_days(
    desk: Desk,
) -> None:
    case = desk.customer_reports(**ann(kind="order_change", order_ref="SO-3012",
                                       description="Swap the 128 GB model for the 64 GB one"))
    n = case.case_number

    decided = desk.walk(case, (AGENT, "decide_resolution", {"items": [
        {"remedy": "exchange"}, {"remedy": "refund_difference", "amount": "20.00"},
    ]}))
    # Decided Wed 29 April 10:00 Shanghai; 30 April is the 1st working day, 1-5 May are the
    # Labour Day holidays, 6 and 7 May the 2nd and 3rd: due at the close of 7 May (17:30).
    assert at(decided["reship"]["due_at"]) == datetime(2026, 5, 7, 9, 30, tzinfo=UTC)
    assert at(decided["refund"]["request_due_at"]) == desk.now + timedelta(days=3)
    desk.walk(
        case,
        (AGENT, "submit_refund_request", {"method": "paypal"}),
        (FINANCE, "post_refund", {"amount": "20.00", "method": "paypal", "reference": "PP-20"}),
        (AGENT, "tell_customer_refunded"),
    )
    shipped = desk.walk(
        case,
        (LOGISTICS, "reship", {"tracking_no": "JD-64GB-01", "carrier": "JD"},
         datetime(2026, 5, 7, 8, 0, tzinfo=UTC) - desk.now),
    )
    assert at(shipped["reship"]["shipped_at"]) <= at(shipped["reship"]["due_at"])
    desk.walk(case, (AGENT, "resolve"), (AGENT, "close"))

    check_history(desk, case)
    sent = check_mails(desk, case, [
        (f"{EN}We received your report, case {n}", [n]),
        (f"{EN}What we will do: case {n}", [
            "an exchange", "a refund of the price difference (20.00)",
        ]),
        (f"{EN}Refund sent: case {n}", ["refunded 20.00 through PayPal"]),
        (f"{EN}Your refund is complete: case {n}", ["we apologise"]),
        (f"{EN}On its way: case {n}", ["JD-64GB-01 (JD)"]),
        (f"{EN}Case {n} is resolved", []),
    ])
    check_status_page(desk, case, sent, shows=["JD-64GB-01"], hides=["PP-20"])


# -- pre-sale: enquiries and wholesale accounts (售前) ---------------------------------------


def test_enquiry_is_answered(desk: Desk) -> None:
    case = desk.customer_reports(**ann(kind="enquiry", order_ref=None,
                                       description="Does the K-200 kettle work on 110 V?"))
    n = case.case_number
    answer = "The K-200 works on 220-240 V only; the K-200U model works on 110 V."

    desk.walk(
        case,
        (AGENT, "add_note", {"text": "NOTE-13 checked with the product team"}),
        (AGENT, "answer_enquiry", {"text": answer}),
        (AGENT, "close"),
    )

    check_history(desk, case)
    sent = check_mails(desk, case, [
        (f"{EN}We received your report, case {n}", [n]),
        (f"{EN}Answer to your question: case {n}", [answer]),
    ])
    check_status_page(desk, case, sent, shows=[answer], hides=["NOTE-13"])


def test_wholesale_registration_by_phone_gets_a_coupon_code_in_chinese(desk: Desk) -> None:
    case = desk.phone_call(AGENT, {
        "kind": "wholesale_registration",
        "customer": {"name": "李店长", "email": "li.shop@example.com", "phone": "13900001111"},
        "description": "想开通批发账户",
        "language": "zh",
    })
    n = case.case_number

    desk.walk(
        case,
        (AGENT, "register_wholesale_account",
         {"account": "WS-LI-001", "coupon_code": "WHOLESALE-8F3K"}),
        (AGENT, "close"),
    )

    check_history(desk, case)
    assert desk.history(case)[0] == ("case_received", "staff:ann", 1)
    assert desk.read(case)["case"]["channel"] == "phone"
    sent = check_mails(desk, case, [
        (f"{ZH}已收到您的反馈，单号 {n}", [n]),
        (f"{ZH}单号 {n}：您的批发账户", ["WS-LI-001", "优惠码：WHOLESALE-8F3K"]),
    ], language="zh")
    check_status_page(desk, case, sent, shows=["WHOLESALE-8F3K"], hides=["13900001111"])


# -- return request and complaints about the service -----------------------------------------


def test_return_request_item_back_in_stock_then_full_refund(desk: Desk) -> None:
    case = desk.customer_reports(**ann(kind="return_request", order_ref="SO-3015",
                                       description="Changed my mind, unopened"))
    n = case.case_number

    desk.walk(
        case,
        (AGENT, "decide_resolution", {"items": [
            {"remedy": "return_item"}, {"remedy": "full_refund", "amount": "129.00"},
        ]}),
        (AGENT, "return_tracking_given", {"tracking_no": "RT-1500"}),
        (LOGISTICS, "return_received", {"signed_by": "warehouse B"}, timedelta(days=1)),
        (LOGISTICS, "return_inspected", {"ok": True}),
        (LOGISTICS, "return_back_in_stock"),
        (AGENT, "submit_refund_request", {"method": "paypal"}),
        (FINANCE, "post_refund", {"amount": "129.00", "method": "paypal", "reference": "PP-15"}),
        (AGENT, "tell_customer_refunded"),
        (AGENT, "resolve"),
        (AGENT, "close"),
    )

    check_history(desk, case)
    sent = check_mails(desk, case, [
        (f"{EN}We received your report, case {n}", [n]),
        (f"{EN}What we will do: case {n}", ["the item is returned to us",
                                            "a full refund (129.00)"]),
        (f"{EN}Refund sent: case {n}", ["129.00", "PayPal"]),
        (f"{EN}Your refund is complete: case {n}", ["129.00", "we apologise"]),
        (f"{EN}Case {n} is resolved", []),
    ])
    check_status_page(desk, case, sent, shows=["a full refund (129.00)"],
                      hides=["RT-1500", "warehouse B"])


def test_service_complaint_is_apologised_for(desk: Desk) -> None:
    case = desk.customer_reports(**ann(kind="service_complaint", order_ref=None,
                                       description="Your agent hung up on me"))
    n = case.case_number
    apology = "We are sorry for how your call was handled; we have spoken with the team."

    desk.walk(
        case,
        (AGENT, "feedback_to_department",
         {"department": "operations", "root_cause": "ROOT-16 call dropped at shift change"}),
        (SUPERVISOR, "apologise", {"text": apology}),
        (SUPERVISOR, "close"),
    )

    check_history(desk, case)
    sent = check_mails(desk, case, [
        (f"{EN}We received your report, case {n}", [n]),
        (f"{EN}Our apologies: case {n}", [apology]),
    ])
    check_status_page(desk, case, sent, shows=[apology], hides=["ROOT-16"])


# -- promises: the overdue list ---------------------------------------------------------------


def test_a_refund_request_not_submitted_in_3_days_is_overdue_until_it_is(desk: Desk) -> None:
    case = desk.customer_reports(**ann(kind="order_cancel", order_ref="SO-3017",
                                       description="Cancel please"))
    calm = desk.customer_reports(**ann(kind="enquiry", order_ref=None,
                                       description="Opening hours?"))
    # Answered at once: a case whose promises are kept is never on the overdue list.
    desk.walk(calm, (AGENT, "answer_enquiry", {"text": "9:00 to 17:30."}))
    decided = desk.walk(
        case,
        (AGENT, "decide_resolution", {"items": [{"remedy": "full_refund", "amount": "99.00"}]}),
    )
    due = at(decided["refund"]["request_due_at"])
    assert due == desk.now + timedelta(days=3)
    assert at(desk.read(case)["case"]["next_due_at"]) == due

    with desk.moment():
        assert desk.overdue() == []
    with desk.moment(when=due - timedelta(seconds=1)):
        assert desk.overdue() == []
    with desk.moment(when=due + timedelta(seconds=1)):
        assert desk.overdue() == [case.case_number]
    desk.walk(case, (AGENT, "submit_refund_request", {"method": "paypal"}, timedelta(hours=1)))

    with desk.moment():
        assert desk.overdue() == []
    # What is due now is finance's posting of the refund, 2 working days on.
    posting_due = at(desk.read(case)["case"]["next_due_at"])
    assert posting_due > desk.now + timedelta(days=1)
    assert calm.case_number not in desk.overdue()
    check_history(desk, case)


def test_a_submitted_refund_finance_has_not_posted_in_2_working_days_is_overdue(
    desk: Desk,
) -> None:
    case = desk.customer_reports(**ann(kind="order_cancel", order_ref="SO-3018",
                                       description="Cancel please"))
    desk.walk(
        case,
        (AGENT, "decide_resolution", {"items": [{"remedy": "full_refund", "amount": "99.00"}]}),
        (AGENT, "submit_refund_request", {"method": "paypal"}),
    )
    # Submitted Wed 29 April; 2 working days later is Wed 6 May (Labour Day in between),
    # due at the close of business, 17:30 in Shanghai.
    with desk.moment(when=datetime(2026, 5, 6, 9, 0, tzinfo=UTC)):
        assert desk.overdue() == []
    with desk.moment(when=datetime(2026, 5, 7, 2, 0, tzinfo=UTC)):
        assert desk.overdue() == [case.case_number]


def test_photos_not_sent_within_3_days_put_the_case_on_the_overdue_list(desk: Desk) -> None:
    case = desk.customer_reports(**ann(kind="wrong_item", order_ref="SO-3020",
                                       description="Wrong colour"))
    desk.walk(case, (AGENT, "request_photos"))

    with desk.moment(timedelta(days=2, hours=23)):
        assert desk.overdue() == []
    with desk.moment(timedelta(days=3, hours=1)):
        assert desk.overdue() == [case.case_number]
    desk.walk(case, (AGENT, "mark_complaint_true"))
    with desk.moment(timedelta(days=3, hours=1)):
        assert desk.overdue() == []


# -- a closed case ----------------------------------------------------------------------------


def test_a_closed_case_accepts_only_reopen_and_work_goes_on_after_it(desk: Desk) -> None:
    case = desk.customer_reports(**ann(kind="not_as_described", order_ref="SO-3019",
                                       description="Colour looks different"))
    n = case.case_number
    desk.walk(
        case,
        (AGENT, "request_photos"),
        (AGENT, "mark_complaint_true"),
        (AGENT, "explain", {"reason": "photo_lighting",
                            "text": "The photo was taken under studio light."}),
        (AGENT, "close"),
    )
    before = desk.read(case, AGENT)
    # Closed, with its follow-up call still to make.
    assert before["available_actions"] == ["reopen", "record_follow_up_call"]

    for name, action in ACTIONS.items():
        if name in ("reopen", "record_follow_up_call", "answer_question"):
            continue  # (the follow-up after closing is tested with the follow-up calls)
        # Someone whose role may take the action: it is the closed case that says no.
        role = next(r for r in (AGENT, SUPERVISOR, FINANCE, LOGISTICS, OPERATIONS, *Role)
                    if r in action.roles)
        with desk.moment():
            response = act(desk.client, desk.token(role), case.case_id, name,
                           before["case"]["version"])
        status, reason = response.status_code, body(response)["errors"][0]["message"]
        assert status == 422, (name, status, reason)
        if CaseKind.NOT_AS_DESCRIBED in action.kinds:
            assert "while the case is closed" in reason, (name, reason)
        else:
            assert "not part of a not_as_described case" in reason, (name, reason)
    after = desk.read(case, AGENT)
    assert (after["case"], after["history"]) == (before["case"], before["history"])

    reopened = desk.walk(case, (SUPERVISOR, "reopen", {"text": "customer wrote back"}))
    assert reopened["status"] == "verified"
    desk.walk(
        case,
        (AGENT, "decide_resolution", {"items": [{"remedy": "coupon", "note": "5 off"}]}),
        (AGENT, "resolve"),
        (AGENT, "close"),
    )

    check_history(desk, case)
    sent = check_mails(desk, case, [
        (f"{EN}We received your report, case {n}", [n]),
        (f"{EN}Photos needed for case {n}", []),
        (f"{EN}About your case {n}", ["studio light"]),
        (f"{EN}What we will do: case {n}", ["a coupon"]),
        (f"{EN}Case {n} is resolved", []),
    ])
    check_status_page(desk, case, sent, shows=["studio light"],
                      hides=["customer wrote back"])
