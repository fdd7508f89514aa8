"""Staff e-mails: reminders and reports, in both languages, the customer's words as text."""

from __future__ import annotations

import pytest

from chalicelib.domain.case import Language
from chalicelib.domain.messages import EmailText, case_message
from chalicelib.domain.staff_messages import (
    REMINDER_TEMPLATES,
    REPORT_TEMPLATES,
    TIMER_LABELS,
    report_email,
    staff_email,
)
from chalicelib.domain.timers import TimerKind

EVIL = "<script>alert(1)</script>"
REMINDERS = {
    "deadline_missed": TimerKind.REFUND_REQUEST,
    "deadline_escalated": TimerKind.RESHIP,
    "follow_up_call_overdue": TimerKind.FOLLOW_UP_CALL,
    "question_unanswered": TimerKind.CUSTOMER_QUESTION,
}


def _send(template: str, language: Language, **extra: str) -> EmailText:
    values = {
        "timer": REMINDERS[template].value,
        "due_at": "2026-11-23T09:30:00+00:00",
        "late": "",
        "call_number": "2",
        "question": f"Where is my {EVIL} refund?",
        **extra,
    }
    return staff_email(
        template=template,
        values=values,
        language=language,
        recipient_name="Li Wei",
        case_number="SD-2026-000042",
        customer_name=f"Ann {EVIL}",
        company_name="ACME",
        signature="Service Centre",
        timezone="Asia/Shanghai",
    )


@pytest.mark.parametrize("language", list(Language))
@pytest.mark.parametrize("template", sorted(REMINDERS))
def test_every_reminder_renders_with_case_label_and_local_time(
    template: str, language: Language
) -> None:
    email = _send(template, language)
    label = TIMER_LABELS[language][REMINDERS[template]]
    assert "SD-2026-000042" in email.subject
    assert email.subject.startswith("【ACME】" if language is Language.ZH else "[ACME] ")
    for part in (email.text, email.html):
        assert "SD-2026-000042" in part
    assert label in email.text
    # 09:30 UTC is 17:30 in Shanghai.
    assert "2026-11-23 17:30 (Asia/Shanghai)" in email.text
    assert "09:30" not in email.text
    assert "Li Wei" in email.text
    assert "Service Centre" in email.text


@pytest.mark.parametrize("language", list(Language))
@pytest.mark.parametrize("template", sorted(REMINDERS))
def test_customer_words_are_escaped_in_html(template: str, language: Language) -> None:
    email = _send(template, language)
    assert "<script>" not in email.html
    assert "&lt;script&gt;" in email.html
    assert f"Ann {EVIL}" in email.text  # plain text keeps them as typed
    if template == "question_unanswered":
        assert f"Where is my {EVIL} refund?" in email.text
        assert email.html.count("&lt;script&gt;") == 2


@pytest.mark.parametrize("language", list(Language))
@pytest.mark.parametrize("template", sorted(REMINDERS))
def test_late_line_only_when_late(template: str, language: Language) -> None:
    word = "较晚" if language is Language.ZH else "sent late"
    assert word not in _send(template, language).text
    late = _send(template, language, late="yes")
    assert word in late.text
    assert word in late.html


def test_escalation_names_the_owner_or_nobody() -> None:
    assert "Owner: Zhang San." in _send(
        "deadline_escalated", Language.EN, owner="Zhang San"
    ).text
    assert "Owner: nobody." in _send("deadline_escalated", Language.EN).text
    assert "负责人：无人负责" in _send("deadline_escalated", Language.ZH).text


def test_follow_up_call_names_the_call() -> None:
    assert "follow-up call number 2" in _send("follow_up_call_overdue", Language.EN).text
    assert "第 2 次回访电话" in _send("follow_up_call_overdue", Language.ZH).text


def test_question_lines_are_never_links() -> None:
    email = _send("question_unanswered", Language.EN, question="https://evil.example/x")
    assert "https://evil.example/x" in email.text
    assert "<a " not in email.html


def test_name_with_a_line_break_stays_in_its_sentence() -> None:
    email = staff_email(
        template="deadline_missed",
        values={"timer": "resolve", "due_at": "2026-11-23T09:30:00+00:00", "late": ""},
        language=Language.EN,
        recipient_name="Li",
        case_number="SD-1",
        customer_name="Ann\nhttps://evil.example/",
        company_name="ACME",
        signature="S",
        timezone="Europe/Berlin",
    )
    assert "<a " not in email.html
    assert "2026-11-23 10:30 (Europe/Berlin)" in email.text


def test_unknown_template_is_refused() -> None:
    with pytest.raises(ValueError):
        staff_email(
            template="nope", values={}, language=Language.EN, recipient_name="x",
            case_number="1", customer_name="x", company_name="x", signature="x",
            timezone="UTC",
        )


@pytest.mark.parametrize("language", list(Language))
def test_reports(language: Language) -> None:
    daily = report_email(
        template="daily_summary", language=language, recipient_name="Boss",
        lines=["3 cases opened", "1 deadline <missed>"], subject_detail="2026-11-23",
        company_name="ACME", signature="Service desk",
    )
    assert "2026-11-23" in daily.subject
    assert "3 cases opened" in daily.text
    assert "&lt;missed&gt;" in daily.html
    monthly = report_email(
        template="monthly_report", language=language, recipient_name="Boss", lines=[],
        subject_detail="2026-11", company_name="ACME", signature="Service desk",
    )
    assert "2026-11" in monthly.subject
    assert "Excel" in monthly.text


FIELD_SERVICE = {
    # template: values, and what the reader must find in the text
    "work_dispatched": (
        {"party_name": "East Dealer", "reply_due_at": "2026-11-23T09:30:00+00:00",
         "on_site_due_at": "2026-11-24T01:00:00+00:00",
         "form_due_at": "2026-11-30T01:00:00+00:00"},
        ["East Dealer", "2026-11-23 17:30", "2026-11-24 09:00", "2026-11-30 09:00"],
    ),
    "parts_approval_needed": (
        {"number": "2", "amount": "2000.01", "roles": "service_vp,supply_vp"},
        ["2000.01", "service_vp, supply_vp"],
    ),
    "parts_sale_charged": (
        {"number": "1", "amount": "480.00", "reason": "not_returned"},
        ["480.00"],
    ),
    "abnormal_problem": ({"number": "1", "text": f"Gearbox {EVIL} cracks"}, ["    Gearbox"]),
    "major_quality_problem": ({"text": "Brakes fail on 3 units"}, ["    Brakes fail"]),
}


@pytest.mark.parametrize("language", list(Language))
@pytest.mark.parametrize("template", sorted(FIELD_SERVICE))
def test_field_service_emails_carry_their_figures(template: str, language: Language) -> None:
    values, expected = FIELD_SERVICE[template]
    email = staff_email(
        template=template, values=values, language=language, recipient_name="Li Wei",
        case_number="SD-2026-000042", customer_name=f"Ann {EVIL}", company_name="ACME",
        signature="Service Centre", timezone="Asia/Shanghai",
    )
    assert "SD-2026-000042" in email.subject
    for text in expected:
        assert text in email.text
    assert "{" not in email.text  # every field filled
    assert "<script>" not in email.html


def test_a_parts_sale_says_why() -> None:
    why = {
        language: staff_email(
            template="parts_sale_charged",
            values={"number": "1", "amount": "480.00", "reason": "not_returned"},
            language=language, recipient_name="East Dealer", case_number="SD-1",
            customer_name="Ann", company_name="ACME", signature="S", timezone="Asia/Shanghai",
        ).text
        for language in Language
    }
    assert "did not come back in time" in why[Language.EN]
    assert "三包旧件未按时返回" in why[Language.ZH]


def test_template_names() -> None:
    assert set(REMINDERS) | set(FIELD_SERVICE) == REMINDER_TEMPLATES
    assert {"daily_summary", "monthly_report"} == REPORT_TEMPLATES


@pytest.mark.parametrize("language", list(Language))
def test_satisfaction_survey_links_the_survey(language: Language) -> None:
    email = case_message(
        template="satisfaction_survey",
        values={"survey_url": "https://desk.example/satisfaction/abc?x=1&y=2"},
        language=language,
        customer_name=EVIL,
        case_number="SD-7",
        status_url="https://desk.example/status/abc",
        company_name="ACME",
        signature="S",
    )
    assert "SD-7" in email.subject
    assert "\nhttps://desk.example/satisfaction/abc?x=1&y=2\n" in email.text
    survey = "https://desk.example/satisfaction/abc?x=1&amp;y=2"
    assert f'<a href="{survey}">{survey}</a>' in email.html
    assert '<a href="https://desk.example/status/abc">' in email.html
    assert "<script>" not in email.html
