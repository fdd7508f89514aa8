"""The project kinds through the HTTP API (processes.md, "Installation projects" and
"Workshop repair"): opened by staff, worked step by step on the version read, with what the
customer hears (e-mails and status page) and what the staff are reminded of.

Runs on a fixed clock (time_machine): Monday 1 June 2026, 10:00 in Shanghai, and on.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from chalicelib.domain.projects import Milestone
from chalicelib.domain.staff import Role
from chalicelib.domain.timers import TimerKind
from tests.integration.support import token_of
from tests.integration.test_shop_flows import Desk, Opened, check_history, check_mails
from tests.integration.test_staff_api import act, body, call
from tests.integration.test_timers import (
    EMAILS,
    MANAGERS,
    OWNER,
    at,
    escalated,
    missed,
    sh,
)
from tests.integration.test_timers import Desk as TimerDesk
from tests.integration.test_timers import Opened as TimerCase

AGENT, FINANCE, TECHNICIAN, LOGISTICS = (
    Role.AGENT, Role.FINANCE, Role.TECHNICIAN, Role.LOGISTICS,
)
START = sh(2026, 6, 1, 10, 0)  # Monday
EN = "[After-sales Service] "
ZH = "【After-sales Service】"

# Who ticks which milestone: finance the money, the technician the site work.
TICKED_BY = {
    Milestone.PREPAYMENT_RECEIVED: FINANCE,
    Milestone.FINAL_SETTLEMENT: FINANCE,
    Milestone.SITE_MEASURED: TECHNICIAN,
    Milestone.DRAWINGS_APPROVED: TECHNICIAN,
    Milestone.DELIVERY_NOTE_CHECKED: LOGISTICS,
    Milestone.ON_SITE: TECHNICIAN,
    Milestone.GOODS_ACCEPTED: TECHNICIAN,
    Milestone.INSTALLATION_SUPERVISED: TECHNICIAN,
    Milestone.PROJECT_ACCEPTED: TECHNICIAN,
}


@pytest.fixture
def desk(client: Any, aws: Path) -> Desk:
    return Desk(client, aws, start=START)


def status_page(desk: Desk, case: Opened) -> dict[str, Any]:
    with desk.moment():
        response = desk.client.http.get(f"/api/status/{token_of(case.status_url)}")
    assert response.status_code == 200
    view: dict[str, Any] = body(response)
    return view


def busbar_project(desk: Desk) -> Opened:
    return desk.phone_call(AGENT, {
        "kind": "installation_project",
        "customer": {"name": "Zhou Min", "email": "zhou.min@example.com",
                     "phone": "13800001111"},
        "product": "Busbar trunking 2500 A",
        "description": "Plant 3 extension: busbar from the transformer room to hall B.",
        "language": "en",
    })


def test_an_installation_project_is_ticked_through_its_15_milestones_and_resolved(
    desk: Desk,
) -> None:
    case = busbar_project(desk)
    n = case.case_number
    read = desk.read(case)
    assert read["case"]["status"] == "new" and read["case"]["installation"] is None
    assert {"plan_milestone", "tick_milestone"} <= set(read["available_actions"])

    # A planned date is a timer of its own, due when that day ends in Shanghai.
    desk.walk(case, (AGENT, "plan_milestone",
                     {"milestone": "site_measured", "due_on": "2026-06-05"}))
    timers = {t["name"]: t for t in desk.read(case)["timers"]}
    assert at(timers["milestone_site_measured"]["due_at"]) == sh(2026, 6, 6, 0, 0)

    # Some steps wait for others, and the money is finance's to tick.
    status, reason = desk.refused(case, FINANCE, "tick_milestone",
                             {"milestone": "final_settlement"})
    assert (status, reason) == (
        422, "'final settlement and payment' comes after 'project accepted': tick that first"
    )
    status, reason = desk.refused(case, AGENT, "tick_milestone",
                             {"milestone": "prepayment_received"})
    assert status == 403 and reason.startswith("a agent may not tick 'prepayment received'")
    status, _ = desk.refused(case, AGENT, "tick_milestone",
                        {"milestone": "contract_read", "done_on": "2026-06-02"})
    assert status == 400  # a day still to come

    # Ticked one after the other, each on the version the previous answer returned.
    version = desk.read(case)["case"]["version"]
    for milestone in Milestone:
        role = TICKED_BY.get(milestone, AGENT)
        with desk.moment():
            response = act(desk.client, desk.token(role), case.case_id, "tick_milestone",
                           version, {"milestone": milestone.value})
        assert response.status_code == 200, (milestone, response.body)
        changed = body(response)["case"]
        assert changed["status"] == "in_progress"
        assert changed["version"] == version + 1
        version = changed["version"]
        desk.done[case.case_id].append(("tick_milestone", desk.actor(role)))
        if milestone is Milestone.CONTRACT_FILED:
            status, reason = desk.refused(case, AGENT, "resolve")
            assert status == 422 and "the milestone feedback_form" in reason
    read = desk.read(case)
    assert "milestone_site_measured" not in {t["name"] for t in read["timers"]}
    lines = read["case"]["installation"]["milestones"]
    assert [line["milestone"] for line in lines] == [m.value for m in Milestone]
    assert all(line["done"]["done_on"] == "2026-06-01" for line in lines)
    assert {line["milestone"]: line["done"]["by"] for line in lines}["final_settlement"] == (
        "staff:fei"
    )
    assert "tick_milestone" not in read["available_actions"]

    desk.walk(case, (AGENT, "resolve"))
    check_history(desk, case)
    check_mails(desk, case, [
        (f"{EN}We received your report, case {n}", [n]),
        (f"{EN}Case {n} is resolved", ["Your case is resolved"]),
    ])
    # The milestones are the desk's own work: the customer's page shows none of them.
    view = status_page(desk, case)
    assert view["status"] == "resolved"
    assert [line["action"] for line in view["history"]] == ["resolve", "case_received"]


def laptop(desk: Desk, language: str = "en") -> Opened:
    return desk.phone_call(AGENT, {
        "kind": "workshop_repair",
        "customer": {"name": "Wang Fang", "email": "wang.fang@example.com"},
        "product": "ThinkPad X1 Carbon",
        "serial_no": "PF-3K2L9",
        "description": "Does not switch on since yesterday.",
        "language": language,
    })


INTAKE = {"accessories": ["charger", "laptop bag"],
          "visible_damage": "scratch on the lid", "signed_by": "Wang Fang"}


def test_a_workshop_repair_goes_to_the_manufacturer_fails_a_check_and_is_settled(
    desk: Desk,
) -> None:
    case = laptop(desk)
    n = case.case_number
    desk.walk(
        case,
        (AGENT, "receive_device", INTAKE),
        (TECHNICIAN, "quote_repair",
         {"amount": "680", "description": "The mainboard's power circuit failed."}),
    )
    status, reason = desk.refused(case, AGENT, "quote_repair",
                             {"amount": "1", "description": "x"})
    assert status == 403 and reason.startswith("a agent may not quote repair")
    status, reason = desk.refused(case, AGENT, "ready_for_pickup")
    assert (status, reason) == (
        422, "calling the customer to collect is not possible now (the device is at: quoted)"
    )
    due_back = sh(2026, 6, 10, 18, 0)
    desk.walk(
        case,
        (AGENT, "quote_approved", {"note": "by phone"}),
        (LOGISTICS, "send_to_manufacturer",
         {"manufacturer": "Lenovo repair station", "due_at": due_back.isoformat(),
          "reference": "RMA-88"}),
    )
    timers = {t["name"]: t for t in desk.read(case)["timers"]}
    assert at(timers["manufacturer_return"]["due_at"]) == due_back - timedelta(hours=12)
    assert desk.read(case)["case"]["workshop"]["stage"] == "at_manufacturer"

    desk.walk(
        case,
        (LOGISTICS, "check_manufacturer_progress", {"note": "on schedule"}),
        (LOGISTICS, "back_from_manufacturer", {"note": "mainboard replaced"}),
        (TECHNICIAN, "full_check", {"passed": False, "note": "CHECK-1 Wi-Fi drops"}),
        (TECHNICIAN, "repair_in_house", {"text": "antenna cable reseated"}),
        (TECHNICIAN, "full_check", {"passed": True, "note": "all 39 checks passed"}),
        (AGENT, "ready_for_pickup"),
        (AGENT, "device_collected", {"signed_by": "Wang Fang"}),
    )
    assert "manufacturer_return" not in {t["name"] for t in desk.read(case)["timers"]}
    status, reason = desk.refused(case, AGENT, "resolve")
    assert (status, reason) == (422, "not yet resolved: still open is the settlement")
    desk.walk(
        case,
        (FINANCE, "settle_repair", {"amount": "680.00", "reference": "POS-0611"}),
        (AGENT, "resolve"),
    )

    job = desk.read(case)["case"]["workshop"]
    assert job["intake"]["accessories"] == ["charger", "laptop bag"]
    assert [c["passed"] for c in job["checks"]] == [False, True]
    assert (job["stage"], job["collected_by"], job["settlement"]["reference"]) == (
        "collected", "Wang Fang", "POS-0611"
    )
    check_history(desk, case)
    sent = check_mails(desk, case, [
        (f"{EN}We received your report, case {n}", [n]),
        (f"{EN}Repair quote: case {n}", ["The mainboard's power circuit failed.",
                                         "The repair costs 680.00"]),
        (f"{EN}Your device is ready: case {n}", ["passed our full check", "To pay: 680.00"]),
        (f"{EN}Case {n} is resolved", ["Your case is resolved"]),
    ])
    assert len(sent) == 4
    view = status_page(desk, case)
    assert [line["action"] for line in reversed(view["history"])] == [
        "case_received", "quote_repair", "ready_for_pickup", "resolve",
    ]
    assert "CHECK-1" not in str(view)


def test_a_declined_quote_returns_the_device_unrepaired_in_chinese(desk: Desk) -> None:
    case = laptop(desk, language="zh")
    n = case.case_number
    desk.walk(
        case,
        (AGENT, "receive_device", INTAKE),
        (TECHNICIAN, "quote_repair", {"amount": "1200", "description": "主板损坏，需更换。"}),
        (AGENT, "quote_declined", {"note": "客户觉得太贵"}),
    )
    read = desk.read(case, TECHNICIAN)
    assert read["case"]["workshop"]["stage"] == "declined"
    assert "repair_in_house" not in read["available_actions"]
    desk.walk(
        case,
        (AGENT, "ready_for_pickup"),
        (AGENT, "device_collected", {"signed_by": "王芳"}),
        (AGENT, "resolve"),  # nothing to settle: nothing was repaired
    )
    check_history(desk, case)
    check_mails(desk, case, [
        (f"{ZH}已收到您的反馈，单号 {n}", [n]),
        (f"{ZH}单号 {n}：维修报价", ["主板损坏，需更换。", "1200.00"]),
        (f"{ZH}单号 {n}：请取回设备", ["我们未维修您的设备"]),
        (f"{ZH}单号 {n} 已处理完毕", []),
    ], language="zh")


# -- reminders ------------------------------------------------------------------------------


TECH = "tom"


@pytest.fixture
def timer_desk(client: Any, aws: Path) -> TimerDesk:
    desk = TimerDesk(client, aws)
    desk.add_staff(TECH, Role.TECHNICIAN, "tom@desk.example.com")
    return desk


def opened_by_staff(desk: TimerDesk, when: Any, complaint: dict[str, Any]) -> TimerCase:
    with desk.moment(when):
        response = call(desk.client, "post", "/api/staff/cases", desk.tokens[OWNER],
                        {"customer": {"name": "Ann Lee", "email": "ann.lee@example.com"},
                         "language": "en", **complaint})
    assert response.status_code == 201, response.body
    receipt = body(response)
    case = TimerCase(receipt["case_id"], receipt["case_number"], receipt["status_url"])
    desk.do(case, when + timedelta(minutes=1), "assign_owner", {"owner": OWNER})
    return case


def test_the_owner_is_reminded_12_hours_before_the_device_is_due_back(
    timer_desk: TimerDesk,
) -> None:
    desk = timer_desk
    case = opened_by_staff(desk, sh(2026, 6, 1, 10, 0), {
        "kind": "workshop_repair", "product": "Dell XPS 13", "description": "No display.",
    })
    desk.do(case, sh(2026, 6, 1, 10, 2), "receive_device",
            {"visible_damage": "none", "signed_by": "Ann Lee"})
    desk.do(case, sh(2026, 6, 1, 11, 0), "quote_repair",
            {"amount": "300", "description": "Display cable."}, staff_id=TECH)
    desk.do(case, sh(2026, 6, 1, 12, 0), "quote_approved")
    due_back = sh(2026, 6, 10, 18, 0)
    desk.do(case, sh(2026, 6, 1, 15, 0), "send_to_manufacturer",
            {"manufacturer": "Dell depot", "due_at": due_back.isoformat()})
    check_at = sh(2026, 6, 10, 6, 0)
    timer = desk.timer(case, "manufacturer_return")
    assert timer is not None and at(timer["due_at"]) == check_at

    def reminded() -> Counter[str]:
        return desk.received(case, missed(TimerKind.MANUFACTURER_RETURN))

    desk.sweep_and_send(check_at - timedelta(seconds=1))
    assert reminded() == Counter()
    desk.sweep_and_send(check_at)
    assert reminded() == Counter({EMAILS[OWNER]: 1})
    [mail] = [m for m in desk.inbox() if m.case_id == case.case_id
              and missed(TimerKind.MANUFACTURER_RETURN) in m.subject]
    assert "2026-06-10 06:00 (Asia/Shanghai)" in mail.text
    assert "向厂家维修站询问维修进度" in mail.subject

    # The owner asks the manufacturer before it goes to the managers (13:00): it stops.
    desk.do(case, sh(2026, 6, 10, 9, 30), "check_manufacturer_progress",
            {"note": "Dell says it ships back today."})
    assert desk.timer(case, "manufacturer_return") is None
    desk.sweep_and_send(sh(2026, 6, 10, 13, 0))
    desk.sweep_and_send(sh(2026, 6, 11, 13, 0))
    assert desk.received(case, escalated(TimerKind.MANUFACTURER_RETURN)) == Counter()
    assert reminded() == Counter({EMAILS[OWNER]: 1})


def test_a_planned_milestone_not_ticked_by_its_day_is_reminded_then_escalated(
    timer_desk: TimerDesk,
) -> None:
    desk = timer_desk
    case = opened_by_staff(desk, sh(2026, 6, 1, 10, 0), {
        "kind": "installation_project", "description": "Busbar for hall B.",
    })
    desk.do(case, sh(2026, 6, 1, 10, 5), "plan_milestone",
            {"milestone": "site_measured", "due_on": "2026-06-03"})
    desk.do(case, sh(2026, 6, 1, 10, 6), "plan_milestone",
            {"milestone": "contract_read", "due_on": "2026-06-03"})
    desk.do(case, sh(2026, 6, 3, 16, 0), "tick_milestone", {"milestone": "contract_read"})
    end_of_day = sh(2026, 6, 4, 0, 0)  # Wednesday 3 June is over

    desk.sweep_and_send(end_of_day - timedelta(seconds=1))
    assert desk.received(case, missed(TimerKind.MILESTONE)) == Counter()
    desk.sweep_and_send(end_of_day)
    # One reminder: the milestone ticked in time is not one.
    assert desk.received(case, missed(TimerKind.MILESTONE)) == Counter({EMAILS[OWNER]: 1})
    timer = desk.timer(case, "milestone_site_measured")
    assert timer is not None and desk.timer(case, "milestone_contract_read") is None
    # 4 business hours from the next opening (Thursday 09:00): 13:00 to the managers.
    assert at(timer["next_fire_at"]) == sh(2026, 6, 4, 13, 0)
    desk.sweep_and_send(sh(2026, 6, 4, 13, 0))
    assert desk.received(case, escalated(TimerKind.MILESTONE)) == Counter(MANAGERS)


def test_the_staff_act_on_a_project_case_on_the_version_they_read(desk: Desk) -> None:
    case = busbar_project(desk)
    with desk.moment():
        token = desk.token(AGENT)
        first = act(desk.client, token, case.case_id, "tick_milestone", 1,
                    {"milestone": "contract_filed"})
        again = act(desk.client, token, case.case_id, "tick_milestone", 1,
                    {"milestone": "contract_read"})
    assert first.status_code == 200
    assert again.status_code == 409
    assert body(again)["changes"][0]["action"] == "tick_milestone"
