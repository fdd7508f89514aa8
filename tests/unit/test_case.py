"""The domain on its own: what a valid complaint is, case numbers, languages, the e-mail."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from chalicelib.domain.case import (
    FORM_KINDS,
    KINDS_NEEDING_AN_ORDER,
    CaseKind,
    Complaint,
    Language,
    choose_language,
    format_case_number,
)
from chalicelib.domain.messages import case_received_email
from chalicelib.web.forms import field_errors

TODAY = date(2026, 3, 2)


def complaint_data(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "kind": "quality_problem",
        "customer": {"name": "王芳", "email": "wang.fang@example.com"},
        "description": "The kettle leaks.",
    }
    data.update(overrides)
    return data


def validate(data: dict[str, Any], today: date | None = TODAY) -> Complaint:
    return Complaint.model_validate(data, context={"today": today})


def bad_fields(data: dict[str, Any], today: date | None = TODAY) -> set[str]:
    with pytest.raises(ValidationError) as caught:
        validate(data, today)
    return {e["field"] for e in field_errors(caught.value)}


# -- what a complaint must contain ----------------------------------------------------


def test_a_plain_complaint_is_accepted_exactly_as_typed() -> None:
    complaint = validate(
        complaint_data(description="  第一行\n第二行\r\n\tthird  ", product="K-200 水壶")
    )

    assert complaint.kind is CaseKind.QUALITY_PROBLEM
    assert complaint.customer.name == "王芳"
    assert complaint.description == "  第一行\n第二行\r\n\tthird  "
    assert complaint.product == "K-200 水壶"


def test_every_bad_field_is_reported_at_once_with_its_dotted_path() -> None:
    data = {
        "kind": "broken_toaster",
        "customer": {"email": "not-an-email", "phone": "call me"},
        "description": "",
        "purchase_date": "yesterday",
    }

    assert bad_fields(data) == {
        "kind",
        "customer.name",
        "customer.email",
        "customer.phone",
        "description",
        "purchase_date",
    }


def test_a_bad_email_is_reported_on_customer_email() -> None:
    data = complaint_data(customer={"name": "Ann", "email": "ann@"})

    assert bad_fields(data) == {"customer.email"}


@pytest.mark.parametrize("kind", sorted(KINDS_NEEDING_AN_ORDER))
def test_order_problems_without_an_order_number_are_rejected_on_order_ref(kind: str) -> None:
    assert bad_fields(complaint_data(kind=kind)) == {"order_ref"}


@pytest.mark.parametrize("kind", sorted(KINDS_NEEDING_AN_ORDER))
def test_order_problems_with_an_order_number_are_accepted(kind: str) -> None:
    assert validate(complaint_data(kind=kind, order_ref="SO-2026-1042")).order_ref == (
        "SO-2026-1042"
    )


@pytest.mark.parametrize("kind", sorted(set(FORM_KINDS) - KINDS_NEEDING_AN_ORDER))
def test_other_problems_need_no_order_number(kind: str) -> None:
    assert validate(complaint_data(kind=kind)).order_ref is None


def test_a_blank_order_number_does_not_count_as_one() -> None:
    assert bad_fields(complaint_data(kind="wrong_item", order_ref="   ")) == {"order_ref"}


def test_a_purchase_date_in_the_future_is_rejected() -> None:
    tomorrow = (TODAY + timedelta(days=1)).isoformat()

    assert bad_fields(complaint_data(purchase_date=tomorrow)) == {"purchase_date"}


def test_a_purchase_today_or_earlier_is_accepted() -> None:
    assert validate(complaint_data(purchase_date=TODAY.isoformat())).purchase_date == TODAY
    assert validate(complaint_data(purchase_date="2020-02-29")).purchase_date == date(2020, 2, 29)


@pytest.mark.parametrize("control", ["\x00", "\n", "\r", "\t", "\x1b", "\x7f", "\x85"])
def test_control_characters_in_the_name_are_rejected(control: str) -> None:
    data = complaint_data(customer={"name": f"Ann{control}Bcc: x", "email": "ann@example.com"})

    assert bad_fields(data) == {"customer.name"}


@pytest.mark.parametrize("field", ["order_ref", "product", "serial_no"])
def test_control_characters_in_one_line_fields_are_rejected(field: str) -> None:
    assert bad_fields(complaint_data(**{field: "ab\ncd"})) == {field}


def test_line_breaks_and_tabs_are_allowed_in_the_description() -> None:
    text = "Line one\nLine two\r\nLine\tthree"

    assert validate(complaint_data(description=text)).description == text


def test_other_control_characters_in_the_description_are_rejected() -> None:
    assert bad_fields(complaint_data(description="bell\x07")) == {"description"}


@pytest.mark.parametrize(
    ("field", "data"),
    [
        ("description", complaint_data(description="broken \ud83d here")),
        ("customer.name", complaint_data(customer={"name": "A\udc00", "email": "a@example.com"})),
        ("product", complaint_data(product="\udfff")),
    ],
)
def test_an_unpaired_surrogate_is_rejected(field: str, data: dict[str, Any]) -> None:
    assert bad_fields(data) == {field}


def test_emoji_and_formula_text_are_kept_as_typed() -> None:
    text = '=HYPERLINK("http://x","y") 😀👍🏽 \u200b'

    complaint = validate(complaint_data(description=text, product=text))

    assert complaint.description == text
    assert complaint.product == text


@pytest.mark.parametrize("blank", ["", "   ", "\n\t"])
def test_a_blank_description_is_rejected(blank: str) -> None:
    assert bad_fields(complaint_data(description=blank)) == {"description"}


def test_an_unknown_field_is_rejected_by_name() -> None:
    assert bad_fields(complaint_data(priority="urgent")) == {"priority"}


def test_an_unknown_field_inside_customer_is_rejected_by_dotted_path() -> None:
    data = complaint_data(customer={"name": "Ann", "email": "ann@example.com", "vip": True})

    assert bad_fields(data) == {"customer.vip"}


def test_too_long_texts_are_rejected() -> None:
    data = complaint_data(
        description="x" * 5001,
        customer={"name": "n" * 201, "email": "ann@example.com"},
    )

    assert bad_fields(data) == {"description", "customer.name"}


def test_an_e_mail_address_mail_cannot_be_delivered_to_is_rejected() -> None:
    # The part before the @ must be ASCII for the mail service to deliver the confirmation.
    data = complaint_data(customer={"name": "王芳", "email": "王芳@example.com"})

    assert bad_fields(data) == {"customer.email"}


def test_an_internationalised_mail_domain_is_accepted() -> None:
    data = complaint_data(customer={"name": "王芳", "email": "wang@例子.广告"})

    assert validate(data).customer.email.endswith("@例子.广告")


def test_the_honeypot_marks_a_bot() -> None:
    assert validate(complaint_data(website="http://spam")).is_from_a_bot
    assert not validate(complaint_data()).is_from_a_bot


def test_the_honeypot_does_not_change_what_counts_as_the_same_request() -> None:
    assert (
        validate(complaint_data(website="x")).fingerprint_fields()
        == validate(complaint_data()).fingerprint_fields()
    )


def test_zh_field_messages_are_chinese() -> None:
    with pytest.raises(ValidationError) as caught:
        validate(complaint_data(kind="wrong_item", customer={"name": "王", "email": "x"}))

    messages = {e["field"]: e["message"] for e in field_errors(caught.value, Language.ZH)}
    assert messages == {
        "customer.email": "请输入有效的电子邮件地址",
        "order_ref": "此类问题需要填写订单号",
    }


# -- case numbers ----------------------------------------------------------------------


def test_case_numbers_are_short_and_readable() -> None:
    assert format_case_number(42, "AS") == "AS000042"
    assert len(format_case_number(999_999, "AS")) == 8


def test_case_numbers_increase_both_as_text_and_as_numbers() -> None:
    numbers = [format_case_number(n, "AS") for n in range(1, 2001)]

    assert numbers == sorted(numbers)
    assert len(set(numbers)) == len(numbers)
    assert [int(n.removeprefix("AS")) for n in numbers] == list(range(1, 2001))


def test_case_numbers_start_at_one() -> None:
    with pytest.raises(ValueError):
        format_case_number(0, "AS")


# -- the customer's language -----------------------------------------------------------


def test_an_explicit_language_wins_over_the_browser() -> None:
    assert choose_language("en", "zh-CN,zh;q=0.9", Language.ZH) is Language.EN
    assert choose_language(Language.ZH, "en-US", Language.EN) is Language.ZH


def test_the_browser_language_with_the_highest_quality_wins() -> None:
    assert choose_language(None, "en-US;q=0.4, zh-CN;q=0.9", Language.EN) is Language.ZH
    assert choose_language(None, "zh-CN;q=0.4, en-GB;q=0.9", Language.ZH) is Language.EN


def test_equal_quality_keeps_the_browser_order() -> None:
    assert choose_language(None, "en-US, zh-CN", Language.ZH) is Language.EN
    assert choose_language(None, "zh-TW, en", Language.EN) is Language.ZH


def test_unsupported_languages_are_skipped_for_the_next_choice() -> None:
    assert choose_language(None, "de-DE, fr;q=0.9, en;q=0.1", Language.ZH) is Language.EN


@pytest.mark.parametrize("header", [None, "", "de-DE, fr;q=0.8", "*", "q=;;,,"])
def test_without_a_supported_language_the_default_is_used(header: str | None) -> None:
    assert choose_language(None, header, Language.ZH) is Language.ZH
    assert choose_language(None, header, Language.EN) is Language.EN


def test_an_unknown_explicit_language_falls_back_to_the_browser() -> None:
    assert choose_language("fr", "en", Language.ZH) is Language.EN


def test_a_language_the_browser_refuses_with_q_zero_is_not_chosen() -> None:
    # RFC 9110: q=0 means "not acceptable".
    assert choose_language(None, "en;q=0, de", Language.ZH) is Language.ZH
    assert choose_language(None, "zh;q=0.0, en;q=0.1", Language.ZH) is Language.EN


def test_a_malformed_quality_does_not_break_the_choice() -> None:
    assert choose_language(None, "en;q=abc, zh;q=0.5", Language.EN) is Language.ZH


# -- the confirmation e-mail -----------------------------------------------------------

STATUS_URL = "https://help.example.com/status/abcDEF123_-"


def confirmation(language: Language, name: str = "王芳") -> Any:
    return case_received_email(
        language=language,
        customer_name=name,
        case_number="AS000042",
        kind=CaseKind.WRONG_ITEM,
        status_url=STATUS_URL,
        company_name="After-sales Service",
        signature="After-sales Service Centre",
    )


def test_the_chinese_confirmation_names_the_case_and_links_to_its_status() -> None:
    email = confirmation(Language.ZH)

    assert "已收到您的反馈" in email.subject
    assert "AS000042" in email.subject
    for part in (email.text, email.html):
        assert "AS000042" in part
        assert STATUS_URL in part
        assert "发错产品" in part
    assert 'lang="zh"' in email.html
    assert f'href="{STATUS_URL}"' in email.html


def test_the_english_confirmation_names_the_case_and_links_to_its_status() -> None:
    email = confirmation(Language.EN, name="Ann")

    assert email.subject == "[After-sales Service] We received your report, case AS000042"
    assert email.text.startswith("Dear Ann,")
    for part in (email.text, email.html):
        assert "AS000042" in part
        assert STATUS_URL in part
        assert "Wrong item sent" in part
    assert 'lang="en"' in email.html


@pytest.mark.parametrize("language", list(Language))
def test_the_html_confirmation_shows_a_name_with_markup_as_text(language: Language) -> None:
    email = confirmation(language, name="<script>alert(1)</script>")

    assert "<script>" not in email.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in email.html
    assert "<script>alert(1)</script>" in email.text


def test_kinds_opened_by_staff_cannot_be_reported_on_the_form() -> None:
    assert bad_fields(complaint_data(kind="wholesale_registration")) == {"kind"}


@pytest.mark.parametrize(
    ("kind", "first_reply", "resolve", "dispatch"),
    [
        ("repair_request", True, True, True),
        ("maintenance_visit", False, True, True),
        ("installation_project", False, False, False),
        ("workshop_repair", True, True, False),
        ("wrong_item", True, True, False),
    ],
)
def test_each_kind_opens_with_the_targets_it_owes(
    kind: str, first_reply: bool, resolve: bool, dispatch: bool
) -> None:
    """A planned visit and a project are the company's initiative: no first reply owed; a
    project has no 5-day target; field-service kinds owe a dispatch."""
    from datetime import UTC, datetime

    from chalicelib.domain.case import Channel, Language, PhoneComplaint, open_case

    now = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)
    complaint = PhoneComplaint.model_validate({
        "kind": kind, "customer": {"name": "Ann", "email": "ann@example.com"},
        "order_ref": "SO-1", "description": "Planned work",
    })
    case, _ = open_case(
        complaint, case_id="c", case_number="AS000001", language=Language.EN,
        channel=Channel.PHONE, now=now, first_reply_due_at=now + timedelta(hours=1),
        resolve_due_at=now + timedelta(days=7), dispatch_due_at=now + timedelta(hours=24),
    )
    assert (case.first_reply_due_at is not None) == first_reply
    assert (case.resolve_due_at is not None) == resolve
    has_dispatch = case.field_service is not None and case.field_service.dispatch_due_at
    assert bool(has_dispatch) == dispatch
