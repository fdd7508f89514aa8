"""The daily summary and the monthly statistics report, end to end: cases reported and
worked through the API over a month, the report mailed once with its workbook, the
workbook's figures equal to a count done here, and staff downloading any month."""

from __future__ import annotations

import email
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import default as default_policy
from io import BytesIO
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import time_machine

from chalicelib import bootstrap
from chalicelib.domain.case import CaseKind, Language
from chalicelib.domain.messages import KIND_LABELS
from chalicelib.domain.staff import Role
from chalicelib.services import staff_desk
from chalicelib.services.outbox import drain_outbox
from chalicelib.services.reports import send_daily_summary, send_monthly_report
from chalicelib.settings import get_policies, get_settings
from tests.integration.test_staff_api import act, body, call, report

# Local month October 2026 in Shanghai: 2026-09-30 16:00 UTC to 2026-10-31 16:00 UTC.
OCTOBER_STARTS = datetime(2026, 9, 30, 16, 0, tzinfo=UTC)
OCTOBER_ENDS = datetime(2026, 10, 31, 16, 0, tzinfo=UTC)
KINDS = ["wrong_item", "quality_problem", "enquiry", "not_received", "missing_item"]
PRODUCTS = ["Kettle K1", "Lamp L2", "=HYPERLINK(\"http://evil\")", None]


def manager(role: Role, staff_id: str, address: str) -> str:
    _, token = staff_desk.add_staff(
        bootstrap.case_store(), staff_id=staff_id, name=staff_id.title(), role=role,
        email=address, now=datetime.now(UTC),
    )
    return token


def mails(mail_dir: Path) -> list[EmailMessage]:
    found = []
    for path in sorted(mail_dir.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=default_policy)
        assert isinstance(message, EmailMessage)
        found.append(message)
    return found


def drain(at: datetime) -> None:
    with time_machine.travel(at, tick=False):
        drain_outbox(bootstrap.case_store(), bootstrap.mailer(), get_settings(), at,
                     attachment=bootstrap.report_files().get)


@pytest.fixture
def month_of_cases(client: Any) -> dict[str, Any]:
    """Cases opened across October 2026 (and a few just outside it), some answered and
    resolved, counted here as they are made."""
    rnd = random.Random(5)
    agent = manager(Role.AGENT, "ann", "ann@desk.example.com")
    manager(Role.SERVICE_DIRECTOR, "zhou", "zhou@desk.example.com")
    manager(Role.SERVICE_VP, "li", "li@desk.example.com")
    opened: Counter[str] = Counter()
    by_product: Counter[str] = Counter()
    resolved = 0
    moments = [OCTOBER_STARTS - timedelta(hours=2), OCTOBER_ENDS + timedelta(hours=1)]
    moments += [OCTOBER_STARTS + timedelta(hours=rnd.randint(1, 30 * 24 - 10)) for _ in range(16)]
    for n, moment in enumerate(sorted(moments)):
        kind = KINDS[n % len(KINDS)]
        product = PRODUCTS[n % len(PRODUCTS)]
        extra: dict[str, Any] = {"kind": kind, "product": product}
        if kind == "enquiry":
            extra["order_ref"] = None
        with time_machine.travel(moment, tick=False):
            case = report(client, **extra)
        inside = OCTOBER_STARTS <= moment < OCTOBER_ENDS
        if inside:
            opened[kind] += 1
            by_product[product or "(not recorded)"] += 1
        if kind == "enquiry":
            with time_machine.travel(moment + timedelta(hours=2), tick=False):
                answered = act(client, agent, case["case_id"], "answer_enquiry", 1,
                               {"text": "Yes, it is."})
                assert answered.status_code == 200
            resolved += inside and moment + timedelta(hours=2) < OCTOBER_ENDS
    return {"opened": opened, "by_product": by_product, "resolved": resolved, "agent": agent}


def test_the_monthly_report_goes_to_the_managers_once_with_figures_that_match(
    month_of_cases: dict[str, Any], aws: Path, client: Any,
) -> None:
    store, settings, policies = bootstrap.case_store(), get_settings(), get_policies()
    morning_of_the_1st = datetime(2026, 11, 1, 1, 0, tzinfo=UTC)
    with time_machine.travel(morning_of_the_1st, tick=False):
        sent = send_monthly_report(store, bootstrap.report_files(), settings, policies,
                                   morning_of_the_1st)
        again = send_monthly_report(store, bootstrap.report_files(), settings, policies,
                                    morning_of_the_1st + timedelta(days=1))
    assert sent.sent and sent.name == "monthly#2026-10" and sent.recipients == 2
    assert not again.sent and again.reason == "already sent"
    drain(morning_of_the_1st + timedelta(minutes=1))

    reports = [m for m in mails(aws) if "2026-10" in str(m["Subject"])]
    assert sorted(str(m["To"]) for m in reports) == [
        "Li <li@desk.example.com>", "Zhou <zhou@desk.example.com>",
    ]
    attachment = next(reports[0].iter_attachments())
    assert attachment.get_filename() == "service-report-2026-10.xlsx"
    workbook = openpyxl.load_workbook(BytesIO(attachment.get_content()))

    by_kind = workbook["By kind"]
    counted = {
        row[0].value: row[1].value for row in by_kind.iter_rows(min_row=2) if row[1].value
    }
    expected = {
        f"{KIND_LABELS[Language.EN][CaseKind(kind)]} {KIND_LABELS[Language.ZH][CaseKind(kind)]}":
        count
        for kind, count in month_of_cases["opened"].items()
    }
    assert counted == expected
    assert by_kind._charts, "the by-kind sheet has its chart"

    products = {
        row[0].value: row[1].value for row in workbook["By product"].iter_rows(min_row=2)
    }
    assert products == dict(month_of_cases["by_product"])
    # The customer's formula-looking product name is text in the workbook, not a formula.
    formula = next(row[0] for row in workbook["By product"].iter_rows(min_row=2)
                   if str(row[0].value).startswith("="))
    assert formula.data_type == "s"


def test_staff_download_any_month_and_a_bad_month_is_a_400(
    month_of_cases: dict[str, Any], client: Any,
) -> None:
    agent = month_of_cases["agent"]
    with time_machine.travel(datetime(2026, 11, 3, tzinfo=UTC), tick=False):
        response = call(client, "get", "/api/staff/reports/monthly/2026-10", agent)
        assert response.status_code == 200
        data = body(response)
        assert data["opened"] == sum(month_of_cases["opened"].values())
        assert data["resolved"] == month_of_cases["resolved"]
        assert "reports/monthly-2026-10.xlsx" in data["download_url"]
        stored = bootstrap.report_files().get("reports/monthly-2026-10.xlsx")
        assert openpyxl.load_workbook(BytesIO(stored)).sheetnames[0] == "Summary"
        for bad in ("2026-13", "October", "2027-01"):
            refused = call(client, "get", f"/api/staff/reports/monthly/{bad}", agent)
            assert refused.status_code == 400, bad
            assert body(refused)["errors"][0]["field"] == "month"
        assert call(client, "get", "/api/staff/reports/monthly/2026-10", None).status_code == 401


def test_the_daily_summary_counts_the_day_and_is_sent_once(
    client: Any, aws: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SERVICE_DESK_SERVICE_CENTRE_EMAIL", "centre@desk.example.com")
    bootstrap.reset()
    agent = manager(Role.AGENT, "ann", "ann@desk.example.com")
    day = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)  # Friday 10:00 in Shanghai
    with time_machine.travel(day, tick=False):
        first = report(client, kind="enquiry", order_ref=None)
        report(client)
    with time_machine.travel(day + timedelta(hours=1), tick=False):
        assert act(client, agent, first["case_id"], "answer_enquiry", 1,
                   {"text": "Yes."}).status_code == 200
    next_morning = datetime(2026, 11, 21, 0, 30, tzinfo=UTC)
    store, settings, policies = bootstrap.case_store(), get_settings(), get_policies()
    with time_machine.travel(next_morning, tick=False):
        sent = send_daily_summary(store, settings, policies, next_morning)
        again = send_daily_summary(store, settings, policies, next_morning)
    assert sent.sent and sent.name == "daily#2026-11-20" and not again.sent
    drain(next_morning + timedelta(minutes=1))
    summaries = [m for m in mails(aws) if "2026-11-20" in str(m["Subject"])]
    assert [str(m["To"]).split("<")[-1] for m in summaries] == ["centre@desk.example.com>"]
    text = summaries[0].get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    # In the company's language (zh by default): two opened, one resolved; the second
    # case's first reply (1 business hour) was missed, so it is overdue at the day's end.
    assert "2026-11-20 售后服务日报" in text
    assert "新开案件：2　已解决：1　已关闭：0　逾期未处理：1" in text
    assert "- AS000002（未分配" in text


def test_a_repair_not_dispatched_in_24_hours_is_overdue_in_the_daily_summary(
    client: Any, aws: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SERVICE_DESK_SERVICE_CENTRE_EMAIL", "centre@desk.example.com")
    bootstrap.reset()
    agent = manager(Role.AGENT, "ann", "ann@desk.example.com")
    repair: dict[str, Any] = {"kind": "repair_request", "order_ref": None,
                              "product": "CPD30 forklift", "description": "The mast sags."}
    thursday_10 = datetime(2026, 11, 19, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
    friday_9 = datetime(2026, 11, 20, 1, 0, tzinfo=UTC)
    opened = []
    for when, address in ((thursday_10, "ann@example.com"), (friday_9, "bo@example.com")):
        with time_machine.travel(when, tick=False):
            case = report(client, customer={"name": "Li", "email": address}, **repair)
        # Answered within the half hour: the first reply is not what is late.
        with time_machine.travel(when + timedelta(minutes=30), tick=False):
            assert act(client, agent, case["case_id"], "message_customer", 1,
                       {"text": "We are on it."}).status_code == 200
        opened.append(case)
    late, in_time = opened
    store, settings, policies = bootstrap.case_store(), get_settings(), get_policies()

    next_morning = datetime(2026, 11, 21, 0, 30, tzinfo=UTC)
    with time_machine.travel(next_morning, tick=False):
        sent = send_daily_summary(store, settings, policies, next_morning)
    assert sent.sent
    drain(next_morning + timedelta(minutes=1))
    [summary] = [m for m in mails(aws) if "2026-11-20" in str(m["Subject"])]
    text = summary.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    # Nobody was sent within 24 h of Thursday's report (due Friday 10:00): overdue at the
    # day's end. Friday's repair still has until Saturday 09:00.
    assert "逾期未处理：1" in text
    assert f"- {late['case_number']}（未分配，应于 2026-11-20 10:00 前处理）" in text
    assert in_time["case_number"] not in text
