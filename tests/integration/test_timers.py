"""Timers: every promise on a case is kept by the deadline sweep, once.

What the staff notice: a reminder e-mail to the case's owner when a deadline passes (not a
second earlier), an escalation to the managers ``escalate_after`` (4 business hours) later,
each exactly once however often the sweep runs, two sweeps race, or a sweep dies half-way;
and a promise kept in time is never reminded. The clock only moves when told
(time_machine); the sweep and the outbox sender are called as their schedules call them.

Every kind of timer has a scenario (SCENARIOS, checked against TimerKind): deadlines in
calendar days or hours fall due over weekends, deadlines in working days are counted over
a public holiday (Spring Festival, National Day 2026) and its make-up working day (调休).

Deadlines are counted on the CN calendar in Asia/Shanghai (09:00-17:30): the times below
are local Shanghai times, turned into UTC by ``sh``.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine

from chalicelib import bootstrap
from chalicelib.adapters.dynamodb import DynamoCaseStore
from chalicelib.domain.case import Language
from chalicelib.domain.staff import Role
from chalicelib.domain.staff_messages import TIMER_LABELS
from chalicelib.domain.timers import TimerKind
from chalicelib.services import staff_desk
from chalicelib.services.outbox import drain_outbox
from chalicelib.services.ports import StaleSnapshot
from chalicelib.services.sweep import SweepReport, sweep_due_timers
from chalicelib.settings import get_policies, get_settings
from tests.integration.test_staff_api import act, body, call, report
from tests.integration.test_status_and_mail import mails, text_of

SHANGHAI = ZoneInfo("Asia/Shanghai")
SECOND = timedelta(seconds=1)

# Staff e-mails are in the company's language (Chinese by default).
LABELS = TIMER_LABELS[Language.ZH]
LATE_NOTE = "此提醒发送较晚"

# Who is on duty, with the address their reminders go to.
OWNER, SUPERVISOR, DIRECTOR = "ann", "sue", "dan"
EMAILS = {
    OWNER: "ann@desk.example.com",
    SUPERVISOR: "sue@desk.example.com",
    DIRECTOR: "dan@desk.example.com",
}
MANAGERS = {EMAILS[SUPERVISOR], EMAILS[DIRECTOR]}


def sh(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    """A local Shanghai wall-clock time, as UTC."""
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI).astimezone(UTC)


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)


@dataclass(frozen=True)
class Opened:
    case_id: str
    case_number: str
    status_url: str


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    case_id: str
    text: str


class Desk:
    """The test client, staff with e-mail addresses, and a clock moved only when told."""

    def __init__(self, client: Any, mail_dir: Path) -> None:
        self.client = client
        self.mail_dir = mail_dir
        self.now = datetime(2026, 1, 1, tzinfo=UTC)
        self.tokens: dict[str, str] = {}
        for staff_id, role in ((OWNER, Role.AGENT), (SUPERVISOR, Role.SUPERVISOR),
                               (DIRECTOR, Role.SERVICE_DIRECTOR)):
            self.add_staff(staff_id, role, EMAILS[staff_id])

    def add_staff(self, staff_id: str, role: Role, email: str | None) -> str:
        _, token = staff_desk.add_staff(
            bootstrap.case_store(), staff_id=staff_id, name=staff_id.title(), role=role,
            email=email, now=self.now,
        )
        self.tokens[staff_id] = token
        return token

    # -- time --------------------------------------------------------------------------

    @contextmanager
    def moment(self, when: datetime) -> Iterator[datetime]:
        """Move the clock to ``when`` (never back) and hold it there."""
        assert when >= self.now, f"the clock only moves forward ({when} < {self.now})"
        self.now = when
        with time_machine.travel(when, tick=False):
            yield when

    # -- cases -------------------------------------------------------------------------

    def report(self, when: datetime, **complaint: Any) -> Opened:
        with self.moment(when):
            receipt = report(self.client, **complaint)
        return Opened(receipt["case_id"], receipt["case_number"], receipt["status_url"])

    def read(self, case: Opened, staff_id: str = OWNER) -> dict[str, Any]:
        response = call(self.client, "get", f"/api/staff/cases/{case.case_id}",
                        self.tokens[staff_id])
        assert response.status_code == 200, response.body
        read: dict[str, Any] = body(response)
        return read

    def act(self, case: Opened, when: datetime, action: str,
            params: dict[str, Any] | None = None, staff_id: str = OWNER) -> Any:
        """Take the action on the version just read; returns the response."""
        with self.moment(when):
            version = self.read(case, staff_id)["case"]["version"]
            return act(self.client, self.tokens[staff_id], case.case_id, action, version,
                       params)

    def do(self, case: Opened, when: datetime, action: str,
           params: dict[str, Any] | None = None, staff_id: str = OWNER) -> dict[str, Any]:
        response = self.act(case, when, action, params, staff_id)
        assert response.status_code == 200, (action, response.status_code, response.body)
        changed: dict[str, Any] = body(response)["case"]
        return changed

    def timer(self, case: Opened, name: str) -> dict[str, Any] | None:
        return next((t for t in self.read(case)["timers"] if t["name"] == name), None)

    # -- the schedules -----------------------------------------------------------------

    def sweep(self, when: datetime) -> SweepReport:
        with self.moment(when):
            return sweep_due_timers(bootstrap.case_store(), get_settings(), get_policies(),
                                    when)

    def drain(self, when: datetime | None = None) -> None:
        with self.moment(when or self.now):
            drain_outbox(bootstrap.case_store(), bootstrap.mailer(), get_settings(), self.now)

    def sweep_and_send(self, when: datetime) -> SweepReport:
        """The sweep at ``when``, then the outbox sender right after it."""
        swept = self.sweep(when)
        self.drain()
        return swept

    # -- what arrived ------------------------------------------------------------------

    def inbox(self) -> list[Mail]:
        return [mail_of(m) for m in mails(self.mail_dir)]

    def received(self, case: Opened, subject_part: str) -> Counter[str]:
        """How many e-mails about this case with this in their subject each address got."""
        return Counter(
            m.to for m in self.inbox()
            if m.case_id == case.case_id and subject_part in m.subject
        )

    def queued(self, case: Opened) -> Counter[str]:
        """The case's outbox as the staff read shows it: messages per template."""
        return Counter(e["template"] for e in self.read(case)["emails"])


def mail_of(message: EmailMessage) -> Mail:
    return Mail(
        to=message["To"].addresses[0].addr_spec,
        subject=str(message["Subject"]),
        case_id=str(message["X-Case-Id"]),
        text=text_of(message),
    )


def missed(kind: TimerKind) -> str:
    """The subject of the reminder to the owner (deadline_missed)."""
    return f"已超期（{LABELS[kind]}）"


def escalated(kind: TimerKind) -> str:
    """The subject of the escalation to the managers (deadline_escalated)."""
    return f"超期仍未处理（{LABELS[kind]}）"


QUESTION_UNANSWERED = "客户问题仍未答复"


# The company's partners, for the field-service timers.
POLICIES = """
[field_service.dealers.east]
name = "East Forklift Service"
email = "service@east-dealer.example"
regions = ["Shanghai"]

[field_service.suppliers.hydraulics]
name = "Hydraulics Ltd"
email = "aftersales@hydraulics.example"
"""
EAST = "service@east-dealer.example"
TECHNICIAN = "tom"


@pytest.fixture
def desk(client: Any, aws: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Desk:
    policies = tmp_path / "company.toml"
    policies.write_text(POLICIES, encoding="utf-8")
    monkeypatch.setenv("SERVICE_DESK_POLICIES_FILE", str(policies))
    bootstrap.reset()
    return Desk(client, aws)


def ann(**overrides: Any) -> dict[str, Any]:
    return {"customer": {"name": "Ann Lee", "email": "ann.lee@example.com",
                         "phone": "+86 138 0013 8000"},
            "language": "en", **overrides}


# -- scenarios: each brings a case to one timer -------------------------------------------


@dataclass(frozen=True)
class Scenario:
    kind: TimerKind
    setup: Callable[[Desk], Opened]
    due: datetime  # when the promise falls due (and the reminder goes out)
    escalate: datetime | None  # when the managers hear of it; None: no escalation
    first_notice: str  # subject of the first e-mail
    first_to: frozenset[str]  # who gets it
    label: str = ""  # the test's id (the kind's name when empty)
    timer: str = ""  # the timer's name on the case (the kind's name when empty)
    up_notice: str = ""  # subject of the second e-mail (the escalation when empty) …
    up_to: frozenset[str] = frozenset(MANAGERS)  # … and who gets it
    promised: datetime | None = None  # the deadline the reminder names, if not ``due``

    @property
    def name(self) -> str:
        return self.timer or self.kind.value

    @property
    def id(self) -> str:
        return self.label or self.kind.value


def _first_reply(desk: Desk) -> Opened:
    # Friday 9 October 2026, 17:00: half an hour of business left; Saturday 10 October is
    # a make-up working day (调休), so the reply is due Saturday 09:30, not Monday.
    case = desk.report(sh(2026, 10, 9, 17, 0), **ann())
    desk.do(case, sh(2026, 10, 9, 17, 1), "assign_owner", {"owner": OWNER})  # no reply
    return case


def _resolve(desk: Desk) -> Opened:
    # Wednesday 30 September, before National Day (1-7 October): 5 working days are
    # Thu 8, Fri 9, Sat 10 (调休), Mon 12 and Tue 13 October, due at the close.
    case = desk.report(sh(2026, 9, 30, 10, 0), **ann())
    desk.do(case, sh(2026, 9, 30, 10, 1), "assign_owner", {"owner": OWNER})
    desk.do(case, sh(2026, 9, 30, 10, 2), "message_customer", {"text": "We are on it."})
    return case


def _opened_and_owned(desk: Desk, **complaint: Any) -> Opened:
    case = desk.report(sh(2026, 6, 1, 10, 0), **ann(**complaint))  # Monday 1 June
    desk.do(case, sh(2026, 6, 1, 10, 1), "assign_owner", {"owner": OWNER})
    return case


def _photos(desk: Desk) -> Opened:
    case = _opened_and_owned(desk)
    desk.do(case, sh(2026, 6, 1, 10, 2), "request_photos")
    return case


def _refund_request(desk: Desk) -> Opened:
    case = _opened_and_owned(desk, kind="order_cancel")
    desk.do(case, sh(2026, 6, 1, 10, 2), "decide_resolution",
            {"items": [{"remedy": "full_refund", "amount": "99.00"}]})
    return case


def _refund_posting(desk: Desk) -> Opened:
    # Submitted Thursday 4 June: 2 working days are Friday 5 and Monday 8 June.
    case = desk.report(sh(2026, 6, 4, 10, 0), **ann(kind="order_cancel"))
    desk.do(case, sh(2026, 6, 4, 10, 1), "assign_owner", {"owner": OWNER})
    desk.do(case, sh(2026, 6, 4, 10, 2), "decide_resolution",
            {"items": [{"remedy": "full_refund", "amount": "99.00"}]})
    desk.do(case, sh(2026, 6, 4, 10, 3), "submit_refund_request", {"method": "paypal"})
    return case


def _reship(desk: Desk) -> Opened:
    case = _opened_and_owned(desk, kind="not_received")
    desk.do(case, sh(2026, 6, 1, 10, 2), "decide_resolution", {"items": [{"remedy": "reship"}]})
    return case


def _tracking_check(desk: Desk) -> Opened:
    case = _opened_and_owned(desk, kind="not_received")
    desk.do(case, sh(2026, 6, 1, 10, 2), "explain_tracking")
    return case


def _customer_question(desk: Desk) -> Opened:
    case = _opened_and_owned(desk, kind="order_change")
    desk.do(case, sh(2026, 6, 1, 10, 2), "change_address", {"address": "1 New Road"})
    # The first follow-up call is due 3 days after the resolution.
    desk.do(case, sh(2026, 6, 4, 11, 0), "record_follow_up_call",
            {"outcome": "question", "question": "Can I get the invoice as a PDF?"})
    return case


def _photos_over_a_weekend(desk: Desk) -> Opened:
    # Asked on Thursday 4 June: due Sunday 7 June (3 calendar days, weekends included).
    case = desk.report(sh(2026, 6, 4, 10, 0), **ann())
    desk.do(case, sh(2026, 6, 4, 10, 1), "assign_owner", {"owner": OWNER})
    desk.do(case, sh(2026, 6, 4, 10, 2), "request_photos")
    return case


def _refund_request_over_a_weekend(desk: Desk) -> Opened:
    # Decided on Friday 5 June: due Monday 8 June.
    case = desk.report(sh(2026, 6, 5, 10, 0), **ann(kind="order_cancel"))
    desk.do(case, sh(2026, 6, 5, 10, 1), "assign_owner", {"owner": OWNER})
    desk.do(case, sh(2026, 6, 5, 10, 2), "decide_resolution",
            {"items": [{"remedy": "full_refund", "amount": "99.00"}]})
    return case


def _refund_posting_over_spring_festival(desk: Desk) -> Opened:
    # Submitted Friday 13 February 2026: 2 working days are Saturday 14 February (调休)
    # and, after the Spring Festival (15-23 February), Tuesday 24 February.
    case = desk.report(sh(2026, 2, 13, 10, 0), **ann(kind="order_cancel"))
    desk.do(case, sh(2026, 2, 13, 10, 1), "assign_owner", {"owner": OWNER})
    desk.do(case, sh(2026, 2, 13, 10, 2), "decide_resolution",
            {"items": [{"remedy": "full_refund", "amount": "99.00"}]})
    desk.do(case, sh(2026, 2, 13, 10, 3), "submit_refund_request", {"method": "paypal"})
    return case


def _reship_over_a_weekend(desk: Desk) -> Opened:
    # Decided on Thursday 4 June: due Sunday 7 June.
    case = desk.report(sh(2026, 6, 4, 10, 0), **ann(kind="not_received"))
    desk.do(case, sh(2026, 6, 4, 10, 1), "assign_owner", {"owner": OWNER})
    desk.do(case, sh(2026, 6, 4, 10, 2), "decide_resolution", {"items": [{"remedy": "reship"}]})
    return case


def _exchange_over_national_day(desk: Desk) -> Opened:
    # An exchange ships within 3 working days: decided Wednesday 30 September, they are
    # Thursday 8, Friday 9 and Saturday 10 October (调休), after National Day (1-7).
    case = desk.report(sh(2026, 9, 30, 10, 0), **ann(kind="order_change"))
    desk.do(case, sh(2026, 9, 30, 10, 1), "assign_owner", {"owner": OWNER})
    desk.do(case, sh(2026, 9, 30, 10, 2), "decide_resolution",
            {"items": [{"remedy": "exchange"}]})
    return case


def _question_over_a_weekend(desk: Desk) -> Opened:
    # Resolved Tuesday 2 June, the call on Friday 5 June: the question is due Sunday.
    case = desk.report(sh(2026, 6, 2, 10, 0), **ann(kind="order_change"))
    desk.do(case, sh(2026, 6, 2, 10, 1), "assign_owner", {"owner": OWNER})
    desk.do(case, sh(2026, 6, 2, 10, 2), "change_address", {"address": "1 New Road"})
    desk.do(case, sh(2026, 6, 5, 11, 0), "record_follow_up_call",
            {"outcome": "question", "question": "Can I get the invoice as a PDF?"})
    return case


def _follow_up_call_over_national_day(desk: Desk) -> Opened:
    # Resolved Monday 28 September: the call falls due on Thursday 1 October (the
    # customer gets the satisfaction link); if not made, the owner hears at the close of
    # the third working day: Thursday 8, Friday 9, Saturday 10 October (调休).
    case = desk.report(sh(2026, 9, 28, 10, 0), **ann(kind="order_change"))
    desk.do(case, sh(2026, 9, 28, 10, 1), "assign_owner", {"owner": OWNER})
    desk.do(case, sh(2026, 9, 28, 10, 2), "change_address", {"address": "1 New Road"})
    return case


# -- field service: a forklift, its dealer, a supplier, our technician -----------------------


def _repair(desk: Desk, when: datetime, serial_no: str, **unit: Any) -> Opened:
    """A repair of a registered forklift reported at ``when``, owned by the agent, its
    warranty checked (in warranty unless ``unit`` says otherwise)."""
    if TECHNICIAN not in desk.tokens:
        desk.add_staff(TECHNICIAN, Role.TECHNICIAN, "tom@desk.example.com")
    data = {
        "serial_no": serial_no, "model": "CPD30 forklift", "product_line": "forklift",
        "customer_name": "Harbour Logistics", "customer_email": "ops@harbour.example.com",
        "address": "Pudong, Shanghai", "region": "Shanghai", "sold_on": "2026-01-05",
        "accepted_on": "2026-01-10", "warranty_months": 12, **unit,
    }
    with desk.moment(when - timedelta(minutes=5)):
        response = call(desk.client, "post", "/api/staff/units", desk.tokens[OWNER], data)
    assert response.status_code == 201, response.body
    case = desk.report(when, kind="repair_request", serial_no=serial_no,
                       product="CPD30 forklift", description="The mast does not lift.",
                       customer={"name": "Li Wei", "email": "ops@harbour.example.com"},
                       language="en")
    desk.do(case, when + timedelta(minutes=1), "assign_owner", {"owner": OWNER})
    desk.do(case, when + timedelta(minutes=2), "check_warranty")
    return case


def _dispatch_over_a_weekend(desk: Desk) -> Opened:
    # Reported Friday 5 June 10:00: dispatched within 24 hours, so by Saturday 10:00.
    return _repair(desk, sh(2026, 6, 5, 10, 0), "FL-1")


def _technician_sent_on_friday(desk: Desk) -> Opened:
    # Dispatched Friday 5 June 10:30: a reply in 12 hours (Friday 22:30), on site and
    # running again in 24 (Saturday 10:30).
    case = _repair(desk, sh(2026, 6, 5, 10, 0), "FL-2")
    desk.do(case, sh(2026, 6, 5, 10, 30), "dispatch", {"party": "technician",
                                                       "to": TECHNICIAN})
    return case


def _technician_on_site_not_fixed(desk: Desk) -> Opened:
    case = _technician_sent_on_friday(desk)
    desk.do(case, sh(2026, 6, 5, 15, 0), "arrived_on_site", staff_id=TECHNICIAN)
    return case


def _dealer_sent_on_friday(desk: Desk) -> Opened:
    # Dispatched to the unit's dealer Friday 5 June 15:00: the clerk checks at 19:00 that
    # the task is arranged; the signed form is due 7 days later, Friday 12 June 15:00.
    case = _repair(desk, sh(2026, 6, 5, 10, 0), "FL-3", dealer="east")
    desk.do(case, sh(2026, 6, 5, 15, 0), "dispatch", {"party": "dealer"})
    return case


def _supplier_over_national_day(desk: Desk) -> Opened:
    # Dispatched to the supplier Wednesday 30 September: the signed form in 5 working
    # days, Thursday 8, Friday 9, Saturday 10 (调休), Monday 12, Tuesday 13 October.
    case = _repair(desk, sh(2026, 9, 30, 9, 0), "FL-4")
    desk.do(case, sh(2026, 9, 30, 10, 0), "dispatch", {"party": "supplier",
                                                       "to": "hydraulics"})
    desk.do(case, sh(2026, 9, 30, 11, 0), "party_replied")
    return case


def _parts(desk: Desk, case: Opened, when: datetime, urgent_local: bool = False) -> None:
    """A parts request of 480.00 for the case, approved by the service director."""
    desk.do(case, when - timedelta(minutes=30), "request_parts",
            {"lines": [{"part_no": "HYD-PUMP-7", "description": "lift pump", "quantity": 2,
                        "unit_price": "240.00"}], "urgent_local": urgent_local})
    desk.do(case, when, "approve_parts", {"number": 1}, staff_id=DIRECTOR)


def _parts_over_spring_festival(desk: Desk) -> Opened:
    # Approved Friday 13 February 2026: shipped within 2 working days, Saturday 14
    # February (调休) and Tuesday 24 February, after the Spring Festival (15-23).
    case = _repair(desk, sh(2026, 2, 13, 9, 0), "FL-5")
    _parts(desk, case, sh(2026, 2, 13, 10, 0))
    return case


def _local_purchase_due_on_a_saturday(desk: Desk) -> Opened:
    # An urgent local purchase approved Thursday 4 June 11:30: receipt and reimbursement
    # within 30 days, Saturday 4 July 11:30.
    case = _repair(desk, sh(2026, 6, 4, 10, 0), "FL-6")
    _parts(desk, case, sh(2026, 6, 4, 11, 30), urgent_local=True)
    return case


def _old_part_due_on_a_saturday(desk: Desk) -> Opened:
    # Parts for our own technician shipped Thursday 4 June 10:00: the old part is due back
    # 30 days later, Saturday 4 July (no dealer to charge: a deadline like any other).
    case = _repair(desk, sh(2026, 6, 4, 9, 0), "FL-7")
    desk.do(case, sh(2026, 6, 4, 9, 10), "dispatch", {"party": "technician",
                                                      "to": TECHNICIAN})
    _parts(desk, case, sh(2026, 6, 4, 9, 50))
    desk.do(case, sh(2026, 6, 4, 10, 0), "ship_parts", {"number": 1, "tracking_no": "SF1"})
    return case


def _fees_due_on_a_saturday(desk: Desk) -> Opened:
    # Paid work (the warranty ended); the service director agrees on Thursday 4 June
    # 10:00 that the fees are paid later: within 30 days, Saturday 4 July 10:00.
    case = _repair(desk, sh(2026, 6, 4, 9, 0), "FL-8", sold_on="2023-03-01",
                   accepted_on="2023-03-01")
    desk.do(case, sh(2026, 6, 4, 9, 10), "quote_fees",
            {"amount": "1200.00", "description": "New lift chain"})
    desk.do(case, sh(2026, 6, 4, 9, 20), "record_fee_consent", {"signed_by": "Li Wei"})
    desk.do(case, sh(2026, 6, 4, 9, 30), "dispatch", {"party": "technician",
                                                      "to": TECHNICIAN})
    desk.do(case, sh(2026, 6, 4, 10, 0), "set_fees",
            {"amount": "1200.00", "technician": TECHNICIAN, "on_the_spot": False},
            staff_id=DIRECTOR)
    return case


# -- projects: an installation's milestone, a device at the manufacturer ---------------------


def _staff_case(desk: Desk, when: datetime, **complaint: Any) -> Opened:
    with desk.moment(when):
        response = call(desk.client, "post", "/api/staff/cases", desk.tokens[OWNER],
                        {"customer": {"name": "Ann Lee", "email": "ann.lee@example.com"},
                         "language": "en", **complaint})
    assert response.status_code == 201, response.body
    receipt = body(response)
    case = Opened(receipt["case_id"], receipt["case_number"], receipt["status_url"])
    desk.do(case, when + timedelta(minutes=1), "assign_owner", {"owner": OWNER})
    return case


def _milestone_due_on_friday(desk: Desk) -> Opened:
    # Site measurement planned for Friday 5 June: not ticked when the day is over.
    case = _staff_case(desk, sh(2026, 6, 1, 10, 0), kind="installation_project",
                       description="Busbar for hall B.")
    desk.do(case, sh(2026, 6, 1, 10, 5), "plan_milestone",
            {"milestone": "site_measured", "due_on": "2026-06-05"})
    return case


def _device_due_back_on_sunday(desk: Desk) -> Opened:
    # Due back from the manufacturer Sunday 7 June 20:00: ask how it goes 12 hours
    # before, Sunday 08:00.
    case = _staff_case(desk, sh(2026, 6, 1, 10, 0), kind="workshop_repair",
                       product="Dell XPS 13", description="No display.")
    desk.do(case, sh(2026, 6, 1, 10, 2), "receive_device",
            {"visible_damage": "none", "signed_by": "Ann Lee"})
    desk.do(case, sh(2026, 6, 1, 11, 0), "quote_repair",
            {"amount": "300", "description": "Display cable."}, staff_id=SUPERVISOR)
    desk.do(case, sh(2026, 6, 1, 12, 0), "quote_approved")
    desk.do(case, sh(2026, 6, 1, 15, 0), "send_to_manufacturer",
            {"manufacturer": "Dell depot", "due_at": sh(2026, 6, 7, 20, 0).isoformat()})
    return case


OWNER_ONLY = frozenset({EMAILS[OWNER]})
# A missed deadline falling due when the office is closed is escalated 4 business hours
# after the next opening: 13:00 on the Monday.
MONDAY_13 = sh(2026, 6, 8, 13, 0)
MONDAY_6_JULY_13 = sh(2026, 7, 6, 13, 0)


def _missed(kind: TimerKind, setup: Callable[[Desk], Opened], due: datetime,
            escalate: datetime, label: str = "", timer: str = "",
            promised: datetime | None = None) -> Scenario:
    return Scenario(kind, setup, due, escalate, missed(kind), OWNER_ONLY, label, timer,
                    promised=promised)


SCENARIOS = [
    Scenario(TimerKind.FIRST_REPLY, _first_reply, sh(2026, 10, 10, 9, 30),
             sh(2026, 10, 10, 13, 30), missed(TimerKind.FIRST_REPLY),
             frozenset({EMAILS[OWNER]})),
    # Escalated 4 business hours after the close of Tuesday: Wednesday 13:00.
    Scenario(TimerKind.RESOLVE, _resolve, sh(2026, 10, 13, 17, 30), sh(2026, 10, 14, 13, 0),
             missed(TimerKind.RESOLVE), frozenset({EMAILS[OWNER]})),
    Scenario(TimerKind.PHOTOS, _photos, sh(2026, 6, 4, 10, 2), sh(2026, 6, 4, 14, 2),
             missed(TimerKind.PHOTOS), frozenset({EMAILS[OWNER]})),
    Scenario(TimerKind.REFUND_REQUEST, _refund_request, sh(2026, 6, 4, 10, 2),
             sh(2026, 6, 4, 14, 2), missed(TimerKind.REFUND_REQUEST),
             frozenset({EMAILS[OWNER]})),
    Scenario(TimerKind.REFUND_POSTING, _refund_posting, sh(2026, 6, 8, 17, 30),
             sh(2026, 6, 9, 13, 0), missed(TimerKind.REFUND_POSTING),
             frozenset({EMAILS[OWNER]})),
    Scenario(TimerKind.RESHIP, _reship, sh(2026, 6, 4, 10, 2), sh(2026, 6, 4, 14, 2),
             missed(TimerKind.RESHIP), frozenset({EMAILS[OWNER]})),
    # Due on Saturday 6 June (5 calendar days); escalated 4 business hours later, which
    # is Monday 8 June 13:00.
    Scenario(TimerKind.TRACKING_CHECK, _tracking_check, sh(2026, 6, 6, 10, 2),
             sh(2026, 6, 8, 13, 0), missed(TimerKind.TRACKING_CHECK),
             frozenset({EMAILS[OWNER]})),
    # A question from a call goes to the supervisors after 2 days; nothing goes further.
    Scenario(TimerKind.CUSTOMER_QUESTION, _customer_question, sh(2026, 6, 6, 11, 0), None,
             QUESTION_UNANSWERED, frozenset({EMAILS[SUPERVISOR]})),
    # Calendar days run over weekends: due on a Sunday (or Monday), reminded then,
    # escalated 4 business hours after the next opening.
    _missed(TimerKind.PHOTOS, _photos_over_a_weekend, sh(2026, 6, 7, 10, 2), MONDAY_13,
            "photos_over_a_weekend"),
    _missed(TimerKind.REFUND_REQUEST, _refund_request_over_a_weekend,
            sh(2026, 6, 8, 10, 2), sh(2026, 6, 8, 14, 2), "refund_request_over_a_weekend"),
    _missed(TimerKind.RESHIP, _reship_over_a_weekend, sh(2026, 6, 7, 10, 2), MONDAY_13,
            "reship_over_a_weekend"),
    Scenario(TimerKind.CUSTOMER_QUESTION, _question_over_a_weekend, sh(2026, 6, 7, 11, 0),
             None, QUESTION_UNANSWERED, frozenset({EMAILS[SUPERVISOR]}),
             "customer_question_over_a_weekend"),
    # Working days over a public holiday and its make-up working day (调休).
    _missed(TimerKind.REFUND_POSTING, _refund_posting_over_spring_festival,
            sh(2026, 2, 24, 17, 30), sh(2026, 2, 25, 13, 0),
            "refund_posting_over_spring_festival"),
    _missed(TimerKind.RESHIP, _exchange_over_national_day, sh(2026, 10, 10, 17, 30),
            sh(2026, 10, 12, 13, 0), "exchange_over_national_day"),
    # The follow-up call: the customer's satisfaction link when it falls due (over the
    # holiday), the owner told at the end of its window (never while the office is closed).
    Scenario(TimerKind.FOLLOW_UP_CALL, _follow_up_call_over_national_day,
             sh(2026, 10, 1, 10, 2), sh(2026, 10, 10, 17, 30), "How did we do?",
             frozenset({"ann.lee@example.com"}), "follow_up_call_over_national_day",
             "follow_up_call_1", "第 1 次回访未完成", OWNER_ONLY),
    # Field service: hours run round the clock, over the weekend.
    _missed(TimerKind.DISPATCH, _dispatch_over_a_weekend, sh(2026, 6, 6, 10, 0), MONDAY_13),
    _missed(TimerKind.PARTY_REPLY, _technician_sent_on_friday, sh(2026, 6, 5, 22, 30),
            MONDAY_13, "party_reply_technician"),
    # A dealer arranges within 2 hours; the clerk hears at 4 hours if it has not, and the
    # reminder names the 2-hour deadline the dealer missed.
    _missed(TimerKind.PARTY_REPLY, _dealer_sent_on_friday, sh(2026, 6, 5, 19, 0),
            MONDAY_13, "party_reply_dealer", promised=sh(2026, 6, 5, 17, 0)),
    _missed(TimerKind.ON_SITE, _technician_sent_on_friday, sh(2026, 6, 6, 10, 30),
            MONDAY_13),
    _missed(TimerKind.FIXED, _technician_on_site_not_fixed, sh(2026, 6, 6, 10, 30),
            MONDAY_13),
    # The dealer's form: 7 calendar days, over a weekend; escalated 2.5 business hours
    # on Friday and 1.5 on Monday.
    _missed(TimerKind.SIGNED_FORM, _dealer_sent_on_friday, sh(2026, 6, 12, 15, 0),
            sh(2026, 6, 15, 10, 30), "signed_form_dealer"),
    _missed(TimerKind.SIGNED_FORM, _supplier_over_national_day, sh(2026, 10, 13, 17, 30),
            sh(2026, 10, 14, 13, 0), "signed_form_supplier_over_national_day"),
    _missed(TimerKind.PARTS_SHIPPING, _parts_over_spring_festival, sh(2026, 2, 24, 17, 30),
            sh(2026, 2, 25, 13, 0), "parts_shipping_over_spring_festival",
            "parts_shipping_1"),
    _missed(TimerKind.LOCAL_PURCHASE, _local_purchase_due_on_a_saturday,
            sh(2026, 7, 4, 11, 30), MONDAY_6_JULY_13, timer="local_purchase_1"),
    _missed(TimerKind.OLD_PART, _old_part_due_on_a_saturday, sh(2026, 7, 4, 10, 0),
            MONDAY_6_JULY_13, "old_part_own_technician", "old_part_1"),
    _missed(TimerKind.FEES, _fees_due_on_a_saturday, sh(2026, 7, 4, 10, 0),
            MONDAY_6_JULY_13),
    # Projects: a milestone not ticked by the end of Friday (midnight), a device due back
    # on Sunday evening.
    _missed(TimerKind.MILESTONE, _milestone_due_on_friday, sh(2026, 6, 6, 0, 0), MONDAY_13,
            timer="milestone_site_measured"),
    _missed(TimerKind.MANUFACTURER_RETURN, _device_due_back_on_sunday, sh(2026, 6, 7, 8, 0),
            MONDAY_13),
]


def test_every_kind_of_timer_has_a_scenario() -> None:
    assert {s.kind for s in SCENARIOS} == set(TimerKind)
    assert len({s.id for s in SCENARIOS}) == len(SCENARIOS)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.id for s in SCENARIOS])
def test_a_missed_deadline_is_reminded_once_on_time_then_escalated_once(
    desk: Desk, scenario: Scenario
) -> None:
    case = scenario.setup(desk)
    timer = desk.timer(case, scenario.name)
    assert timer is not None
    assert at(timer["due_at"]) == scenario.due

    def first() -> Counter[str]:
        return desk.received(case, scenario.first_notice)

    # A minute early, and one second early: nothing.
    desk.sweep_and_send(scenario.due - timedelta(minutes=1))
    desk.sweep_and_send(scenario.due - SECOND)
    assert first() == Counter()
    # At the deadline: the reminder, once; the next sweeps add nothing.
    desk.sweep_and_send(scenario.due)
    assert first() == Counter(scenario.first_to)
    desk.sweep_and_send(scenario.due)
    desk.sweep_and_send(scenario.due + timedelta(minutes=5))
    assert first() == Counter(scenario.first_to)
    timer = desk.timer(case, scenario.name)
    assert timer is not None
    assert [(f["stage"], at(f["at"]), f["late"]) for f in timer["fired"]] == [
        (0, scenario.due, False)
    ]

    if scenario.escalate is None:
        desk.sweep_and_send(scenario.due + timedelta(days=3))
        assert first() == Counter(scenario.first_to)
        assert [m.to for m in desk.inbox() if m.case_id == case.case_id
                and "超期" in m.subject] == []
        return

    def up() -> Counter[str]:
        return desk.received(case, scenario.up_notice or escalated(scenario.kind))

    assert at(timer["next_fire_at"]) == scenario.escalate
    desk.sweep_and_send(scenario.escalate - timedelta(minutes=1))
    desk.sweep_and_send(scenario.escalate - SECOND)
    assert up() == Counter()
    desk.sweep_and_send(scenario.escalate)
    assert up() == Counter(scenario.up_to)
    desk.sweep_and_send(scenario.escalate)
    desk.sweep_and_send(scenario.escalate + timedelta(minutes=5))
    desk.sweep_and_send(scenario.escalate + timedelta(days=1))
    assert up() == Counter(scenario.up_to)
    assert first() == Counter(scenario.first_to)
    timer = desk.timer(case, scenario.name)
    assert timer is not None
    assert [f["stage"] for f in timer["fired"]] == [0, 1]
    assert timer["next_fire_at"] is None
    if scenario.first_notice != missed(scenario.kind):
        return
    # What the owner read: which case, which deadline, when (local time).
    [reminder] = [m for m in desk.inbox() if m.case_id == case.case_id
                  and scenario.first_notice in m.subject]
    assert case.case_number in reminder.subject
    promised = scenario.promised or scenario.due
    local_due = promised.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")
    assert f"{local_due} (Asia/Shanghai)" in reminder.text
    assert LATE_NOTE not in reminder.text


def test_a_kept_promise_cancels_its_timer_and_is_never_reminded(desk: Desk) -> None:
    case = _refund_request(desk)
    due = sh(2026, 6, 4, 10, 2)
    assert desk.timer(case, "refund_request") is not None

    desk.do(case, due - timedelta(hours=1), "submit_refund_request", {"method": "paypal"})

    assert desk.timer(case, "refund_request") is None
    # What is due now is finance's posting (2 working days: Fri 5 and Mon 8 June).
    posting = desk.timer(case, "refund_posting")
    assert posting is not None and at(posting["due_at"]) == sh(2026, 6, 8, 17, 30)
    for when in (due, due + timedelta(hours=4), due + timedelta(days=1)):
        desk.sweep_and_send(when)
    assert desk.received(case, missed(TimerKind.REFUND_REQUEST)) == Counter()
    assert desk.received(case, escalated(TimerKind.REFUND_REQUEST)) == Counter()
    assert "deadline_missed" not in desk.queued(case)


def test_a_promise_kept_after_the_reminder_is_not_escalated(desk: Desk) -> None:
    case = _reship(desk)
    due = sh(2026, 6, 4, 10, 2)
    desk.sweep_and_send(due)
    assert desk.received(case, missed(TimerKind.RESHIP)) == Counter({EMAILS[OWNER]: 1})

    desk.do(case, due + timedelta(hours=1), "reship", {"tracking_no": "SF1", "carrier": "SF"})
    desk.sweep_and_send(sh(2026, 6, 4, 14, 2))
    desk.sweep_and_send(sh(2026, 6, 5, 10, 0))

    assert desk.received(case, escalated(TimerKind.RESHIP)) == Counter()
    assert desk.timer(case, "reship") is None


def test_an_unrelated_change_after_the_reminder_does_not_remind_again(desk: Desk) -> None:
    case = _refund_request(desk)
    due = sh(2026, 6, 4, 10, 2)
    desk.sweep_and_send(due)
    desk.do(case, due + timedelta(minutes=30), "add_note", {"text": "finance is on leave"})
    desk.sweep_and_send(due + timedelta(hours=1))
    desk.sweep_and_send(sh(2026, 6, 4, 14, 2))

    assert desk.received(case, missed(TimerKind.REFUND_REQUEST)) == Counter({EMAILS[OWNER]: 1})
    assert desk.received(case, escalated(TimerKind.REFUND_REQUEST)) == Counter(MANAGERS)


def test_a_deadline_of_a_case_nobody_owns_goes_to_the_service_centre(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SERVICE_DESK_SERVICE_CENTRE_EMAIL", "centre@desk.example.com")
    bootstrap.reset()
    case = desk.report(sh(2026, 6, 1, 10, 0), **ann(kind="not_received"))
    desk.do(case, sh(2026, 6, 1, 10, 2), "decide_resolution", {"items": [{"remedy": "reship"}]})

    desk.sweep_and_send(sh(2026, 6, 4, 10, 2))

    assert desk.received(case, missed(TimerKind.RESHIP)) == Counter(
        {"centre@desk.example.com": 1}
    )


# -- catching up after downtime -------------------------------------------------------------


def test_a_timer_due_during_an_outage_fires_at_the_next_sweep_once_marked_late(
    desk: Desk,
) -> None:
    case = _photos(desk)
    due = sh(2026, 6, 4, 10, 2)
    desk.sweep_and_send(due - timedelta(minutes=5))  # the last sweep before the outage

    back = due + timedelta(days=2)  # two days without a sweep
    swept = desk.sweep_and_send(back)

    assert swept.late >= 1
    [reminder] = [m for m in desk.inbox() if m.case_id == case.case_id
                  and missed(TimerKind.PHOTOS) in m.subject]
    assert reminder.to == EMAILS[OWNER]
    assert LATE_NOTE in reminder.text
    timer = desk.timer(case, "photos")
    assert timer is not None
    assert timer["fired"][0] == {"stage": 0, "at": back.isoformat(), "late": True}

    desk.sweep_and_send(back + timedelta(minutes=5))
    desk.sweep_and_send(back + timedelta(minutes=10))
    assert desk.received(case, missed(TimerKind.PHOTOS)) == Counter({EMAILS[OWNER]: 1})
    # The owner still gets the full 4 business hours from the late reminder before it goes
    # up the ladder: back is Saturday 6 June, so Monday 8 June 13:00 in Shanghai.
    assert desk.received(case, escalated(TimerKind.PHOTOS)) == Counter()
    escalation_due = sh(2026, 6, 8, 13, 0)
    desk.sweep_and_send(escalation_due - timedelta(minutes=1))
    assert desk.received(case, escalated(TimerKind.PHOTOS)) == Counter()
    desk.sweep_and_send(escalation_due)
    desk.sweep_and_send(escalation_due + timedelta(minutes=5))
    assert desk.received(case, escalated(TimerKind.PHOTOS)) == Counter(MANAGERS)


# -- two sweeps at once, and a sweep that dies ----------------------------------------------


def _three_overdue_cases(desk: Desk) -> tuple[list[Opened], datetime]:
    """Three cases whose refund request is due at the same moment, with nothing else
    due then."""
    cases = []
    for n in range(3):
        case = desk.report(sh(2026, 6, 1, 10, n), **ann(kind="order_cancel",
                                                       order_ref=f"SO-{n}"))
        cases.append(case)
    for case in cases:
        desk.do(case, sh(2026, 6, 1, 10, 10), "assign_owner", {"owner": OWNER})
    for case in cases:
        desk.do(case, sh(2026, 6, 1, 10, 20), "decide_resolution",
                {"items": [{"remedy": "full_refund", "amount": "99.00"}]})
    return cases, sh(2026, 6, 4, 10, 20)


def _reminded_once_each(desk: Desk, cases: list[Opened]) -> None:
    """Every case: one deadline_missed in its outbox, one e-mail to the owner."""
    for case in cases:
        assert desk.queued(case)["deadline_missed"] == 1, desk.read(case)["emails"]
        assert desk.received(case, missed(TimerKind.REFUND_REQUEST)) == Counter(
            {EMAILS[OWNER]: 1}
        )
        timer = desk.timer(case, "refund_request")
        assert timer is not None and [f["stage"] for f in timer["fired"]] == [0]


@pytest.fixture
def moto_serialised(monkeypatch: pytest.MonkeyPatch) -> None:
    """One request at a time inside moto, as DynamoDB applies each request (and each
    transaction) atomically; the sweeps themselves still run side by side."""
    from moto.core.botocore_stubber import BotocoreStubber

    lock = threading.Lock()
    original = BotocoreStubber.__call__

    def serialised(self: Any, *args: Any, **kwargs: Any) -> Any:
        with lock:
            return original(self, *args, **kwargs)

    monkeypatch.setattr(BotocoreStubber, "__call__", serialised)


def test_two_sweeps_at_the_same_moment_queue_each_reminder_once(
    desk: Desk, moto_serialised: None
) -> None:
    cases, due = _three_overdue_cases(desk)
    store, settings, policies = bootstrap.case_store(), get_settings(), get_policies()
    barrier = threading.Barrier(2)
    reports: list[SweepReport] = []
    errors: list[BaseException] = []

    def sweep() -> None:
        try:
            barrier.wait(timeout=10)
            reports.append(sweep_due_timers(store, settings, policies, due))
        except BaseException as error:  # reported in the test thread
            errors.append(error)

    with desk.moment(due):
        threads = [threading.Thread(target=sweep) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    assert errors == []
    assert len(reports) == 2
    assert sum(r.fired for r in reports) == 3
    desk.drain()

    _reminded_once_each(desk, cases)


def test_a_sweep_overtaken_by_another_between_reading_and_writing_fires_nothing(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    cases, due = _three_overdue_cases(desk)
    store, settings, policies = bootstrap.case_store(), get_settings(), get_policies()
    real_fire = store.fire_timer
    overtaken: list[SweepReport] = []

    def fire_after_the_other_sweep(*args: Any, **kwargs: Any) -> bool:
        if not overtaken:  # the first sweep has read everything; now the other one runs
            monkeypatch.setattr(store, "fire_timer", real_fire)
            overtaken.append(sweep_due_timers(store, settings, policies, due))
        return real_fire(*args, **kwargs)

    monkeypatch.setattr(store, "fire_timer", fire_after_the_other_sweep)
    with desk.moment(due):
        first = sweep_due_timers(store, settings, policies, due)
    desk.drain()

    assert overtaken[0].fired == 3
    assert (first.fired, first.lost_races, first.emails) == (0, 3, 0)
    _reminded_once_each(desk, cases)


class SweepDied(Exception):
    pass


def dying(real: Callable[..., bool], *, claims_before: int, after_claim: bool) -> Any:
    """A fire_timer that lets ``claims_before`` claims through, then dies: before the
    next claim, or (``after_claim``) right after it is written."""
    calls = 0

    def fire_timer(*args: Any, **kwargs: Any) -> bool:
        nonlocal calls
        calls += 1
        if calls <= claims_before:
            return real(*args, **kwargs)
        if after_claim:
            real(*args, **kwargs)
        raise SweepDied(f"at claim {calls}")

    return fire_timer


def test_a_sweep_that_dies_half_way_loses_and_repeats_no_reminder(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    cases, due = _three_overdue_cases(desk)
    store = bootstrap.case_store()
    real_fire = store.fire_timer

    # Dies between claims: two timers claimed (their e-mails queued), the third not.
    monkeypatch.setattr(store, "fire_timer", dying(real_fire, claims_before=2,
                                                   after_claim=False))
    with pytest.raises(SweepDied):
        desk.sweep(due)
    # The next run dies right after claiming the third, before the outbox is sent.
    monkeypatch.setattr(store, "fire_timer", dying(real_fire, claims_before=0,
                                                   after_claim=True))
    with pytest.raises(SweepDied):
        desk.sweep(due + timedelta(minutes=5))
    # Every claim made so far has its e-mail waiting in the outbox, none twice.
    assert [desk.queued(case)["deadline_missed"] for case in cases] == [1, 1, 1]
    # Then everything runs as it should.
    monkeypatch.setattr(store, "fire_timer", real_fire)
    again = desk.sweep(due + timedelta(minutes=10))
    desk.drain()

    assert again.fired == 0  # nothing left to fire: no claim is made twice
    _reminded_once_each(desk, cases)


# -- what the sweep reads: each timer carries its case -----------------------------------


class ItemsRead:
    """Items read through one store's client, counted as bench/bench_sweep.py counts
    them: what each Query or Scan reads (ScannedCount), and each item a GetItem or
    BatchGetItem returns."""

    def __init__(self, client: Any) -> None:
        self.by_call: Counter[str] = Counter()
        client.meta.events.register("after-call.dynamodb", self._count)

    def _count(self, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name in ("Query", "Scan"):
            self.by_call[model.name] += int(parsed.get("ScannedCount", 0))
        elif model.name == "GetItem":
            self.by_call[model.name] += 1 if parsed.get("Item") else 0
        elif model.name == "BatchGetItem":
            self.by_call[model.name] += sum(len(v) for v in parsed.get("Responses", {}).values())

    @property
    def total(self) -> int:
        return sum(self.by_call.values())


def test_a_sweep_reads_one_item_per_due_timer_and_the_staff_list_not_the_cases(
    desk: Desk,
) -> None:
    cases, due = _three_overdue_cases(desk)
    store = DynamoCaseStore(get_settings().table_name)  # its own client, counted
    reads = ItemsRead(store.client)

    with desk.moment(due):
        swept = sweep_due_timers(store, get_settings(), get_policies(), due)
    desk.drain()

    assert (swept.due, swept.fired, swept.cases_read, swept.stale_snapshots) == (3, 3, 0, 0)
    assert reads.by_call["GetItem"] == 0  # no case read: each came with its timer
    staff = len(desk.tokens)  # the staff list, read once per sweep for the recipients
    assert reads.total <= swept.due + staff, reads.by_call
    _reminded_once_each(desk, cases)


def test_a_reminder_goes_to_whoever_owns_the_case_when_it_fires(desk: Desk) -> None:
    case = _reship(desk)  # the reship timer was written while Ann owned the case
    due = sh(2026, 6, 4, 10, 2)
    bob = "bob@desk.example.com"
    desk.add_staff("bob", Role.AGENT, bob)
    # A new owner does not move the deadline: the timer (and the case it carries) stays.
    desk.do(case, sh(2026, 6, 3, 10, 0), "assign_owner", {"owner": "bob"},
            staff_id=SUPERVISOR)
    timer = desk.timer(case, "reship")
    assert timer is not None and at(timer["due_at"]) == due

    swept = desk.sweep_and_send(due)

    assert (swept.fired, swept.lost_races, swept.stale_snapshots) == (1, 0, 1)
    assert desk.received(case, missed(TimerKind.RESHIP)) == Counter({bob: 1})
    desk.sweep_and_send(due + timedelta(minutes=5))
    desk.sweep_and_send(sh(2026, 6, 4, 14, 2))  # the escalation, 4 business hours on
    desk.sweep_and_send(sh(2026, 6, 4, 14, 7))
    assert desk.received(case, missed(TimerKind.RESHIP)) == Counter({bob: 1})
    assert desk.received(case, escalated(TimerKind.RESHIP)) == Counter(MANAGERS)


def test_a_timer_written_before_timers_carried_their_case_still_fires_once(
    desk: Desk,
) -> None:
    case = _reship(desk)
    due = sh(2026, 6, 4, 10, 2)
    store = bootstrap.case_store()
    store.client.update_item(
        TableName=store.table_name,
        Key={"PK": {"S": f"CASE#{case.case_id}"}, "SK": {"S": "TIMER#reship"}},
        UpdateExpression="REMOVE case_snapshot, case_version",
    )

    swept = desk.sweep_and_send(due)
    desk.sweep_and_send(due + timedelta(minutes=5))

    assert (swept.fired, swept.cases_read, swept.stale_snapshots) == (1, 1, 0)
    assert desk.received(case, missed(TimerKind.RESHIP)) == Counter({EMAILS[OWNER]: 1})


def test_firing_tells_a_lost_race_from_a_case_that_moved_on(desk: Desk) -> None:
    case = _reship(desk)
    due = sh(2026, 6, 4, 10, 2)
    store = bootstrap.case_store()
    with desk.moment(due):
        [found] = [t for t in store.due_timers(due, 100)[0] if t.case_id == case.case_id]
    assert found.snapshot is not None and found.snapshot.owner == OWNER
    desk.do(case, due, "add_note", {"text": "the warehouse is closed today"})

    with desk.moment(due):
        # The timer is as found, the case is not: nothing written, fire it afresh.
        with pytest.raises(StaleSnapshot):
            store.fire_timer(found, None, [], due, False)
        assert store.fire_timer(replace(found, snapshot=None), None, [], due, False)
        # Now the timer is not as found either: a lost race, whatever the case did.
        assert store.fire_timer(found, None, [], due, False) is False
    timer = desk.timer(case, "reship")
    assert timer is not None and [f["stage"] for f in timer["fired"]] == [0]
