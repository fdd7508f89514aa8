"""After reporting: the private status link, and the confirmation e-mail from the outbox."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
import time_machine

from chalicelib import bootstrap
from chalicelib.services.outbox import DrainReport, drain_outbox
from chalicelib.settings import get_settings
from tests.integration.support import (
    complaint,
    customer,
    outbox_items,
    path_of,
    post_case,
    token_of,
)

ACCOUNT = "123456789012"  # moto's default account
REGION = "eu-central-1"


def submit(client: Any, **overrides: Any) -> dict[str, Any]:
    response = post_case(client, complaint(**overrides))
    assert response.status_code == 201, response.body
    receipt: dict[str, Any] = json.loads(response.body)
    return receipt


def status_json(client: Any, receipt: dict[str, Any]) -> Any:
    return client.http.get(f"/api/status/{token_of(receipt['status_url'])}")


# -- the status page ---------------------------------------------------------------------


def test_the_status_page_shows_the_case_number_status_and_report(client: Any) -> None:
    receipt = submit(client, product="K-200 水壶", description="Leaks\nat the base")

    response = client.http.get(path_of(receipt["status_url"]))

    page = response.body.decode()
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert f'<span id="case-number">{receipt["case_number"]}</span>' in page
    assert "已受理，等待客服处理" in page  # the case's language (zh by default)
    assert "K-200 水壶" in page
    assert "Leaks\nat the base" in page
    assert "我们已收到您的反馈。" in page  # the first line of the history


def test_the_status_page_can_be_read_in_english(client: Any) -> None:
    receipt = submit(client)

    page = client.http.get(path_of(receipt["status_url"]) + "?lang=en").body.decode()

    assert '<html lang="en">' in page
    assert "Received, waiting for an agent" in page
    assert "Wrong item sent" in page


def test_the_status_page_is_in_the_language_of_the_report(client: Any) -> None:
    receipt = submit(client, language="en")

    page = client.http.get(path_of(receipt["status_url"])).body.decode()

    assert '<html lang="en">' in page


def test_markup_in_a_report_is_shown_as_text_not_run(client: Any) -> None:
    attack = "<img src=x onerror=alert(1)>"
    receipt = submit(
        client,
        description=attack,
        product=attack,
        customer=customer(name="<script>alert(1)</script>"),
    )

    page = client.http.get(path_of(receipt["status_url"])).body.decode()

    assert "<img" not in page
    assert "<script>alert" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


@pytest.mark.parametrize("token", ["not-a-token", "x" * 43, "x" * 101])
def test_a_wrong_link_finds_no_case(client: Any, token: str) -> None:
    submit(client)

    page = client.http.get(f"/status/{token}")
    api = client.http.get(f"/api/status/{token}")

    assert page.status_code == 404
    assert page.headers["Content-Type"].startswith("text/html")
    assert "找不到该单" in page.body.decode()
    assert api.status_code == 404
    assert api.headers["Content-Type"].startswith("application/json")
    assert {e["field"] for e in json.loads(api.body)["errors"]} == {"token"}


def test_the_json_view_shows_the_text_exactly_as_typed(client: Any) -> None:
    typed = {
        "customer": customer(name="Zoë 王芳 😀", email="zoe@example.com"),
        "order_ref": '=HYPERLINK("http://x","y")',
        "product": "Kettle™ «K-200» 👍🏽",
        "serial_no": "+SUM(A1:A9)",
        "purchase_date": "2025-12-24",
        "description": "  Two lines:\r\nsecond\ttabbed 🚀 \u200b & <b>bold</b>  ",
    }
    receipt = submit(client, **typed)

    response = status_json(client, receipt)

    view = json.loads(response.body)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert view["customer"] == {"name": typed["customer"]["name"]}
    for field in ("order_ref", "product", "serial_no", "purchase_date", "description"):
        assert view[field] == typed[field]
    assert view["case_number"] == receipt["case_number"]
    assert view["status"] == "new"
    assert view["kind"] == "wrong_item"
    assert [line["action"] for line in view["history"]] == ["case_received"]


def test_the_status_views_never_show_the_customers_e_mail(client: Any) -> None:
    receipt = submit(client, customer=customer(email="private.person@example.com"))

    for response in (status_json(client, receipt), client.http.get(path_of(receipt["status_url"]))):
        assert response.status_code == 200
        assert b"private.person" not in response.body


def test_a_status_link_shows_only_its_own_case(client: Any) -> None:
    mine = submit(client, customer=customer("Ann", "ann@example.com"), description="Ann's kettle")
    theirs = submit(client, customer=customer("Bob", "bob@example.com"), description="Bob's fan")

    for receipt, own, other in ((mine, "Ann", "Bob"), (theirs, "Bob", "Ann")):
        view = json.loads(status_json(client, receipt).body)
        page = client.http.get(path_of(receipt["status_url"])).body.decode()
        assert view["case_number"] == receipt["case_number"]
        assert view["customer"]["name"] == own
        assert other not in json.dumps(view, ensure_ascii=False)
        assert other not in page


# -- the confirmation e-mail -------------------------------------------------------------------


def scheduled_event(client: Any) -> dict[str, Any]:
    event: dict[str, Any] = client.events.generate_cw_event(
        source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]
    )
    return event


def run_send_outbox(client: Any) -> dict[str, int]:
    payload: dict[str, int] = client.lambda_.invoke("send_outbox", scheduled_event(client)).payload
    return payload


def mails(mail_dir: Path) -> list[EmailMessage]:
    if not mail_dir.exists():
        return []
    parser = BytesParser(policy=policy.default)
    return [parser.parsebytes(path.read_bytes()) for path in sorted(mail_dir.glob("*.eml"))]


def text_of(mail: EmailMessage) -> str:
    part = mail.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def html_of(mail: EmailMessage) -> str:
    part = mail.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())


def ses_sent_count() -> int:
    from moto.ses.models import ses_backends

    return int(ses_backends[ACCOUNT][REGION].sent_message_count)


def test_nothing_is_mailed_until_the_outbox_is_sent(client: Any, aws: Path) -> None:
    submit(client)

    assert mails(aws) == []
    assert ses_sent_count() == 0
    [message] = outbox_items()
    assert message["state"]["S"] == "pending"


def test_the_customer_gets_one_chinese_confirmation(client: Any, aws: Path) -> None:
    receipt = submit(client, language="zh", customer=customer("王芳", "wang.fang@example.com"))

    report = run_send_outbox(client)

    assert report == {"sent": 1, "retried": 0, "failed": 0, "skipped": 0}
    assert ses_sent_count() == 1
    [mail] = mails(aws)
    assert mail["To"].addresses[0].addr_spec == "wang.fang@example.com"
    assert mail["To"].addresses[0].display_name == "王芳"
    assert mail["From"].addresses[0].addr_spec == "service@example.com"
    assert "已收到您的反馈" in mail["Subject"]
    assert receipt["case_number"] in mail["Subject"]
    assert mail["X-Case-Id"] == receipt["case_id"]
    for body in (text_of(mail), html_of(mail)):
        assert receipt["case_number"] in body
        assert receipt["status_url"] in body
    assert text_of(mail).startswith("王芳，您好：")


def test_an_english_report_gets_an_english_confirmation(client: Any, aws: Path) -> None:
    receipt = submit(client, language="en", customer=customer("Ann Lee", "ann@example.com"))

    run_send_outbox(client)

    [mail] = mails(aws)
    assert mail["Subject"] == (
        f"[After-sales Service] We received your report, case {receipt['case_number']}"
    )
    assert text_of(mail).startswith("Dear Ann Lee,")
    assert receipt["status_url"] in text_of(mail)


def test_the_confirmation_follows_the_browser_language_when_none_was_chosen(
    client: Any, aws: Path
) -> None:
    post_case(client, complaint(), {"Accept-Language": "en-US,en;q=0.9"})

    run_send_outbox(client)

    [mail] = mails(aws)
    assert mail["Subject"].startswith("[After-sales Service] We received your report")


def test_sending_again_sends_nothing_more(client: Any, aws: Path) -> None:
    submit(client)
    run_send_outbox(client)

    again = run_send_outbox(client)

    assert again == {"sent": 0, "retried": 0, "failed": 0, "skipped": 0}
    assert len(mails(aws)) == 1
    assert ses_sent_count() == 1
    [message] = outbox_items()
    assert message["state"]["S"] == "sent"


def test_every_report_gets_its_own_confirmation(client: Any, aws: Path) -> None:
    numbers = {
        submit(client, customer=customer(f"Customer {n}", f"c{n}@example.com"))["case_number"]
        for n in range(3)
    }

    assert run_send_outbox(client)["sent"] == 3

    assert {mail["Subject"].rsplit(" ", 1)[1] for mail in mails(aws)} == numbers


def test_a_retried_report_is_confirmed_once(client: Any, aws: Path) -> None:
    key = {"Idempotency-Key": "once"}
    post_case(client, complaint(), key)
    post_case(client, complaint(), key)

    run_send_outbox(client)

    assert len(mails(aws)) == 1


def test_a_customer_with_an_internationalised_domain_gets_the_confirmation(
    client: Any, aws: Path
) -> None:
    submit(client, customer=customer("王芳", "wang@例子.广告"))

    assert run_send_outbox(client)["sent"] == 1

    [mail] = mails(aws)
    assert mail["To"].addresses[0].addr_spec == "wang@xn--fsqu00a.xn--4rr70v"


def test_a_dropped_bot_submission_sends_no_mail(client: Any, aws: Path) -> None:
    post_case(client, complaint(website="http://spam"))

    assert run_send_outbox(client)["sent"] == 0
    assert mails(aws) == []


class BrokenMailer:
    def __init__(self) -> None:
        self.calls = 0

    def send(self, message: EmailMessage) -> str:
        self.calls += 1
        raise ConnectionError("SES is down")


T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def submit_at(client: Any, moment: datetime) -> dict[str, Any]:
    with time_machine.travel(moment, tick=False):
        return submit(client)


def test_a_failed_send_is_retried_later_and_then_delivered(client: Any, aws: Path) -> None:
    receipt = submit_at(client, T0)
    store, settings = bootstrap.case_store(), get_settings()
    broken = BrokenMailer()

    first = drain_outbox(store, broken, settings, T0)
    too_soon = drain_outbox(store, broken, settings, T0 + timedelta(seconds=59))
    later = drain_outbox(store, bootstrap.mailer(), settings, T0 + timedelta(minutes=1))

    assert first == DrainReport(retried=1)
    assert too_soon == DrainReport()
    assert broken.calls == 1
    assert later == DrainReport(sent=1)
    [mail] = mails(aws)
    assert receipt["case_number"] in mail["Subject"]
    [message] = outbox_items()
    assert message["state"]["S"] == "sent"
    assert int(message["attempts"]["N"]) == 2


def test_a_send_that_keeps_failing_is_given_up_after_the_last_attempt(
    client: Any, aws: Path
) -> None:
    submit_at(client, T0)
    store, settings = bootstrap.case_store(), get_settings()
    broken = BrokenMailer()
    reports = []
    now = T0
    for _ in range(settings.outbox_max_attempts):
        reports.append(drain_outbox(store, broken, settings, now))
        [message] = outbox_items()
        if message["state"]["S"] == "pending":
            # Not due again before the back-off is over …
            due = message["due_sk"]["S"].split("#")[0]
            assert due > now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            assert drain_outbox(store, broken, settings, now + timedelta(seconds=30)) == (
                DrainReport()
            )
        now += timedelta(hours=1)  # … and due once it is (the longest back-off is an hour).

    assert reports == [DrainReport(retried=1)] * (settings.outbox_max_attempts - 1) + [
        DrainReport(failed=1)
    ]
    assert broken.calls == settings.outbox_max_attempts
    [message] = outbox_items()
    assert message["state"]["S"] == "failed"
    assert "SES is down" in message["last_error"]["S"]
    assert "due_sk" not in message
    # Given up: no further attempts, not even with a working mailer, much later.
    assert drain_outbox(store, bootstrap.mailer(), settings, now + timedelta(days=7)) == (
        DrainReport()
    )
    assert broken.calls == settings.outbox_max_attempts
    assert mails(aws) == []


def test_the_back_off_grows_between_attempts(client: Any) -> None:
    submit_at(client, T0)
    store, settings = bootstrap.case_store(), get_settings()
    now = T0
    waits = []
    for _ in range(4):
        drain_outbox(store, BrokenMailer(), settings, now)
        [message] = outbox_items()
        due = datetime.strptime(message["due_sk"]["S"].split("#")[0], "%Y-%m-%dT%H:%M:%S.%fZ")
        waits.append(due.replace(tzinfo=UTC) - now)
        now = due.replace(tzinfo=UTC)

    assert waits == [timedelta(minutes=m) for m in (1, 2, 4, 8)]


@pytest.mark.parametrize(
    "name",
    [
        "王芳 <a1@evil.com>, b <a2@evil.com>",
        "Ann O'Neil; Ünï",
        "Zoë <zoe@example.com>",
        '"Bob" <bob@evil.com>',
    ],
)
def test_a_name_that_looks_like_addresses_never_adds_a_recipient(
    client: Any, aws: Path, name: str
) -> None:
    submit(client, language="en", customer=customer(name, "victim@example.com"))

    run_send_outbox(client)

    [mail] = mails(aws)
    assert [a.addr_spec for a in mail["To"].addresses] == ["victim@example.com"]
    assert mail["To"].addresses[0].display_name == name
