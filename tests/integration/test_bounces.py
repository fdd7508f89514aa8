"""SES bounces and complaints, arriving later through SNS, are recorded on the e-mail and
the customer file, once, and never make anything be sent again (moto, the real outbox)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import time_machine

from chalicelib import bootstrap
from chalicelib.adapters.mail_records import MailRecords
from chalicelib.domain.customer import customer_id_for
from chalicelib.domain.staff import Role
from chalicelib.services.bounces import handle_sns_message
from chalicelib.services.outbox import DrainReport, drain_outbox
from chalicelib.services.ports import OutboxMessage
from chalicelib.settings import get_settings
from tests.conftest import TABLE
from tests.integration.support import all_items, complaint, outbox_items, post_case

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CUSTOMER_EMAIL = "wang.fang@example.com"


def raw_item(pk: str, sk: str) -> dict[str, Any] | None:
    response = boto3.client("dynamodb").get_item(
        TableName=TABLE, Key={"PK": {"S": pk}, "SK": {"S": sk}}, ConsistentRead=True
    )
    return response.get("Item")


def customer_item() -> dict[str, Any]:
    item = raw_item(f"CUSTOMER#{customer_id_for(CUSTOMER_EMAIL)}", "CUSTOMER")
    assert item is not None
    return item


def sent_message_id(pk: str, sk: str) -> str:
    """The SES MessageId of a sent e-mail, with the pointer that finds it again."""
    item = raw_item(pk, sk)
    assert item is not None and item["state"]["S"] == "sent"
    provider_id: str = item["provider_id"]["S"]
    # The sender wrote the pointer in the same transaction as the "sent" mark.
    assert raw_item(f"SESMSG#{provider_id}", "SESMSG") is not None
    return provider_id


def send_confirmation(client: Any) -> tuple[str, str]:
    """A customer reports a case; the outbox sends their confirmation through SES.
    Returns the case id and the SES MessageId of that e-mail."""
    with time_machine.travel(T0, tick=False):
        response = post_case(client, complaint())
    assert response.status_code == 201, response.body
    case_id = json.loads(response.body)["case_id"]
    report = drain_outbox(bootstrap.case_store(), bootstrap.mailer(), get_settings(), T0)
    assert report == DrainReport(sent=1)
    [outbox] = outbox_items()
    return case_id, sent_message_id(outbox["PK"]["S"], outbox["SK"]["S"])


def bounce(message_id: str, bounce_type: str = "Permanent", subtype: str = "General",
           diagnostic: str = "smtp; 550 5.1.1 user unknown",
           at: str = "2026-03-02T09:01:03.450Z") -> str:
    """The SNS message body SES publishes for a bounce (configuration-set event)."""
    return json.dumps(
        {
            "eventType": "Bounce",
            "bounce": {
                "feedbackId": f"feedback-{bounce_type}-{at}",
                "bounceType": bounce_type,
                "bounceSubType": subtype,
                "bouncedRecipients": [
                    {
                        "emailAddress": CUSTOMER_EMAIL,
                        "action": "failed",
                        "status": "5.1.1" if bounce_type == "Permanent" else "4.2.2",
                        "diagnosticCode": diagnostic,
                    }
                ],
                "timestamp": at,
                "reportingMTA": "dsn; b224-13.smtp-out.eu-central-1.amazonses.com",
            },
            "mail": {
                "timestamp": "2026-03-02T09:01:01.120Z",
                "source": "service@example.com",
                "messageId": message_id,
                "destination": [CUSTOMER_EMAIL],
            },
        }
    )


def complaint_about(message_id: str, at: str = "2026-03-02T11:30:00.000Z") -> str:
    return json.dumps(
        {
            "notificationType": "Complaint",
            "complaint": {
                "complainedRecipients": [{"emailAddress": CUSTOMER_EMAIL}],
                "complaintFeedbackType": "abuse",
                "timestamp": at,
                "feedbackId": f"complaint-{at}",
            },
            "mail": {"timestamp": "2026-03-02T09:01:01.120Z", "messageId": message_id},
        }
    )


def feed(message: str, now: datetime = T0 + timedelta(hours=1)) -> dict[str, int]:
    return handle_sns_message(MailRecords.of(bootstrap.case_store()), message, now)


# -- a bounce ----------------------------------------------------------------------------


def test_sending_leaves_a_pointer_from_the_ses_message_id(client: Any, aws: Path) -> None:
    case_id, message_id = send_confirmation(client)

    pointer = raw_item(f"SESMSG#{message_id}", "SESMSG")

    assert pointer is not None
    assert pointer["target_pk"]["S"] == f"CASE#{case_id}"
    assert pointer["target_sk"]["S"].startswith("OUTBOX#")
    expires = datetime.fromtimestamp(int(pointer["expires"]["N"]), UTC)
    assert T0 + timedelta(days=29) < expires <= T0 + timedelta(days=31)


def test_a_permanent_bounce_is_recorded_on_the_email_and_the_customer_file(
    client: Any, aws: Path
) -> None:
    case_id, message_id = send_confirmation(client)

    counts = feed(bounce(message_id))

    assert counts == {"feedback": 1, "recorded": 1, "unchanged": 0}
    [email] = bootstrap.case_store().case_outbox(case_id)
    assert email["state"] == "bounced"
    assert email["sent_at"] is not None
    [outbox] = outbox_items()
    feedback = outbox["feedback"]["M"]
    assert feedback["reason"]["S"] == "Permanent bounce (General): smtp; 550 5.1.1 user unknown"
    assert feedback["bounce_type"]["S"] == "Permanent"
    assert feedback["at"]["S"] == "2026-03-02T09:01:03.450000Z"
    assert feedback["recipients"]["L"][0]["M"]["email"]["S"] == CUSTOMER_EMAIL
    mark = customer_item()["email_undeliverable"]["M"]
    assert mark["at"]["S"] == "2026-03-02T09:01:03.450000Z"
    assert mark["reason"]["S"] == "Permanent bounce (General): smtp; 550 5.1.1 user unknown"
    assert mark["case_id"]["S"] == case_id
    assert bootstrap.case_store().get_customer(customer_id_for(CUSTOMER_EMAIL)) is not None


def test_a_bounced_email_is_not_sent_again(client: Any, aws: Path) -> None:
    send_confirmation(client)
    [outbox] = outbox_items()
    feed(bounce(sent_message_id(outbox["PK"]["S"], outbox["SK"]["S"])))

    later = drain_outbox(
        bootstrap.case_store(), bootstrap.mailer(), get_settings(), T0 + timedelta(days=2)
    )

    assert later == DrainReport()
    assert len(list((aws).glob("*.eml"))) == 1


def test_a_redelivered_notification_changes_nothing_more(client: Any, aws: Path) -> None:
    _, message_id = send_confirmation(client)
    feed(bounce(message_id))
    before = all_items()

    again = feed(bounce(message_id), now=T0 + timedelta(hours=5))

    assert again == {"feedback": 1, "recorded": 0, "unchanged": 1}
    assert sorted(map(str, all_items())) == sorted(map(str, before))


def test_a_notification_for_a_message_we_never_sent_is_ignored(client: Any, aws: Path) -> None:
    send_confirmation(client)
    before = all_items()

    counts = feed(bounce("0102018f-unknown-message-000000"))
    counts_complaint = feed(complaint_about("0102018f-unknown-message-000000"))

    assert counts == counts_complaint == {"feedback": 1, "recorded": 0, "unchanged": 1}
    assert sorted(map(str, all_items())) == sorted(map(str, before))


# -- soft bounces and complaints ------------------------------------------------------


def test_a_soft_bounce_is_recorded_without_marking_the_customer(client: Any, aws: Path) -> None:
    case_id, message_id = send_confirmation(client)

    feed(bounce(message_id, "Transient", "MailboxFull", "smtp; 452 4.2.2 mailbox full"))

    [email] = bootstrap.case_store().case_outbox(case_id)
    assert email["state"] == "soft_bounce"
    assert "email_undeliverable" not in customer_item()


def test_a_later_hard_bounce_or_complaint_outranks_a_softer_one(client: Any, aws: Path) -> None:
    case_id, message_id = send_confirmation(client)
    store = bootstrap.case_store()

    feed(bounce(message_id, "Transient", "MailboxFull", "smtp; 452 mailbox full"))
    feed(bounce(message_id, at="2026-03-02T10:00:00.000Z"))
    after_bounce = store.case_outbox(case_id)[0]["state"]
    feed(complaint_about(message_id))
    after_complaint = store.case_outbox(case_id)[0]["state"]
    late_soft = feed(bounce(message_id, "Transient", at="2026-03-03T00:00:00.000Z"))

    assert (after_bounce, after_complaint) == ("bounced", "complained")
    assert late_soft["recorded"] == 0
    assert store.case_outbox(case_id)[0]["state"] == "complained"
    mark = customer_item()["email_undeliverable"]["M"]
    assert mark["kind"]["S"] == "complained"
    assert mark["reason"]["S"] == "Complaint (abuse)"
    assert mark["at"]["S"] == "2026-03-02T11:30:00.000000Z"


def test_an_older_notification_does_not_overwrite_a_newer_mark(client: Any, aws: Path) -> None:
    _, message_id = send_confirmation(client)

    feed(complaint_about(message_id, at="2026-03-02T12:00:00.000Z"))
    feed(bounce(message_id, at="2026-03-02T09:30:00.000Z"))

    mark = customer_item()["email_undeliverable"]["M"]
    assert (mark["kind"]["S"], mark["at"]["S"]) == ("complained", "2026-03-02T12:00:00.000000Z")


# -- e-mails to staff ----------------------------------------------------------------------


def test_a_bounced_report_to_a_manager_creates_no_customer_file(aws: Path) -> None:
    store = bootstrap.case_store()
    report = OutboxMessage(
        message_id="daily-2026-03-01-manager",
        case_id="",
        template="daily_summary",
        payload={
            "to": "manager@example.com",
            "to_name": "李经理",
            "language": "zh",
            "lines": ["新案件 3"],
            "subject_detail": "2026-03-01",
        },
        due_at=T0,
        partition="REPORT#daily-2026-03-01",
    )
    assert store.claim_report("daily-2026-03-01", [report], T0)
    assert drain_outbox(store, bootstrap.mailer(), get_settings(), T0) == DrainReport(sent=1)
    message_id = sent_message_id("REPORT#daily-2026-03-01", "OUTBOX#daily-2026-03-01-manager")

    counts = feed(bounce(message_id))

    assert counts["recorded"] == 1
    item = raw_item("REPORT#daily-2026-03-01", "OUTBOX#daily-2026-03-01-manager")
    assert item is not None and item["state"]["S"] == "bounced"
    assert raw_item(f"CUSTOMER#{customer_id_for('manager@example.com')}", "CUSTOMER") is None


# -- an address that bounced gets no more customer e-mails ---------------------------------


def message_customer(client: Any, case_id: str, version: int, at: datetime) -> None:
    from tests.integration.test_staff_api import act, staff_token

    with time_machine.travel(at, tick=False):
        response = act(client, staff_token(Role.AGENT, "ann"), case_id, "message_customer",
                       version, {"text": "Your parcel left today."})
    assert response.status_code == 200, response.body


def test_after_a_hard_bounce_the_customer_is_not_mailed_again_and_the_case_says_why(
    client: Any, aws: Path
) -> None:
    case_id, message_id = send_confirmation(client)
    feed(bounce(message_id))
    later = T0 + timedelta(days=1)
    message_customer(client, case_id, 1, later)

    report = drain_outbox(bootstrap.case_store(), bootstrap.mailer(), get_settings(), later)

    assert report == DrainReport(failed=1)
    assert len(list(aws.glob("*.eml"))) == 1  # only the confirmation, before the bounce
    emails = bootstrap.case_store().case_outbox(case_id)
    [message] = [e for e in emails if e["template"] == "staff_message"]
    assert message["state"] == "failed"
    assert "bounced on 2026-03-02T09:01:03.450000Z" in message["last_error"]
    assert "550 5.1.1 user unknown" in message["last_error"]
    # Not retried: a later run sends nothing and changes nothing.
    assert drain_outbox(bootstrap.case_store(), bootstrap.mailer(), get_settings(),
                        later + timedelta(hours=2)) == DrainReport()


def test_a_soft_bounce_does_not_stop_later_e_mails(client: Any, aws: Path) -> None:
    case_id, message_id = send_confirmation(client)
    feed(bounce(message_id, bounce_type="Transient", subtype="MailboxFull"))
    later = T0 + timedelta(days=1)
    message_customer(client, case_id, 1, later)

    report = drain_outbox(bootstrap.case_store(), bootstrap.mailer(), get_settings(), later)

    assert report == DrainReport(sent=1)


def test_a_new_complaint_from_that_address_clears_the_mark_and_is_confirmed(
    client: Any, aws: Path
) -> None:
    _, message_id = send_confirmation(client)
    feed(bounce(message_id))
    assert "email_undeliverable" in customer_item()
    later = T0 + timedelta(days=3)

    with time_machine.travel(later, tick=False):
        response = post_case(client, complaint(order_ref="SO-2"))
    assert response.status_code == 201, response.body
    report = drain_outbox(bootstrap.case_store(), bootstrap.mailer(), get_settings(), later)

    assert report == DrainReport(sent=1)
    assert "email_undeliverable" not in customer_item()
    assert len(list(aws.glob("*.eml"))) == 2


def test_a_planned_visit_the_system_opens_leaves_the_mark_and_mails_nobody(
    client: Any, aws: Path
) -> None:
    from chalicelib.domain.case import Channel, PhoneComplaint
    from chalicelib.services.intake import submit_complaint
    from chalicelib.services.units import SYSTEM_ACTOR

    _, message_id = send_confirmation(client)
    feed(bounce(message_id))
    later = T0 + timedelta(days=30)
    visit = PhoneComplaint.model_validate(complaint(
        kind="maintenance_visit", order_ref=None, serial_no="FL-1",
        description="Planned maintenance visit"))

    submit_complaint(bootstrap.case_store(), get_settings(), visit, now=later,
                     base_url="https://help.example.com", channel=Channel.PHONE,
                     idempotency_key="visit-FL-1", taken_by=SYSTEM_ACTOR)
    report = drain_outbox(bootstrap.case_store(), bootstrap.mailer(), get_settings(), later)

    assert "email_undeliverable" in customer_item()
    assert report == DrainReport(failed=1)
    assert len(list(aws.glob("*.eml"))) == 1
