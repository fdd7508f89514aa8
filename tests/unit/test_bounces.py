"""Reading SES's bounce and complaint notifications (as SNS delivers them), and what the
handler counts. The samples have the shape SES documents for both ways it publishes:
identity notifications (notificationType) and configuration-set events (eventType)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.services.bounces import Feedback, handle_sns_message, parse_notification

MESSAGE_ID = "0102018f2a8c1d2e-3b1c0a47-5e6f-4a1b-9c2d-7e8f9a0b1c2d-000000"
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def _mail(**overrides: Any) -> dict[str, Any]:
    mail: dict[str, Any] = {
        "timestamp": "2026-03-02T09:15:01.120Z",
        "source": "After-sales Service <service@example.com>",
        "sourceArn": "arn:aws:ses:eu-central-1:123456789012:identity/service@example.com",
        "sendingAccountId": "123456789012",
        "messageId": MESSAGE_ID,
        "destination": ["wang.fang@example.com"],
        "headersTruncated": False,
        "commonHeaders": {
            "from": ["After-sales Service <service@example.com>"],
            "to": ["王芳 <wang.fang@example.com>"],
            "subject": "您的反馈已受理 AS-000042",
        },
        "tags": {"ses:configuration-set": ["service-desk-dev"]},
    }
    mail.update(overrides)
    return mail


PERMANENT_BOUNCE: dict[str, Any] = {
    "eventType": "Bounce",
    "bounce": {
        "feedbackId": "0102018f2a8c2f11-8a3c5d1e-2b4f-4c6a-8e0d-1f2a3b4c5d6e-000000",
        "bounceType": "Permanent",
        "bounceSubType": "General",
        "bouncedRecipients": [
            {
                "emailAddress": "wang.fang@example.com",
                "action": "failed",
                "status": "5.1.1",
                "diagnosticCode": "smtp; 550 5.1.1 user unknown",
            }
        ],
        "timestamp": "2026-03-02T09:15:03.450Z",
        "reportingMTA": "dsn; b224-13.smtp-out.eu-central-1.amazonses.com",
    },
    "mail": _mail(),
}

TRANSIENT_BOUNCE: dict[str, Any] = {
    "notificationType": "Bounce",
    "bounce": {
        "bounceType": "Transient",
        "bounceSubType": "MailboxFull",
        "bouncedRecipients": [
            {
                "emailAddress": "wang.fang@example.com",
                "action": "failed",
                "status": "4.2.2",
                "diagnosticCode": "smtp; 452 4.2.2 mailbox full",
            }
        ],
        "timestamp": "2026-03-02T21:40:00.000Z",
        "feedbackId": "0102018f2d4e5f60-1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d-000000",
        "remoteMtaIp": "203.0.113.25",
        "reportingMTA": "dsn; a8-70.smtp-out.amazonses.com",
    },
    "mail": _mail(),
}

COMPLAINT: dict[str, Any] = {
    "notificationType": "Complaint",
    "complaint": {
        "userAgent": "ExampleCorp Feedback Loop (V0.01)",
        "complainedRecipients": [{"emailAddress": "wang.fang@example.com"}],
        "complaintFeedbackType": "abuse",
        "arrivalDate": "2026-03-02T10:02:11.000Z",
        "timestamp": "2026-03-02T10:02:12.517Z",
        "feedbackId": "0102018f2a9d0e1f-2c3d4e5f-6a7b-8c9d-0e1f-2a3b4c5d6e7f-000000",
    },
    "mail": _mail(),
}

DELIVERY: dict[str, Any] = {
    "notificationType": "Delivery",
    "delivery": {
        "timestamp": "2026-03-02T09:15:02.800Z",
        "processingTimeMillis": 1680,
        "recipients": ["wang.fang@example.com"],
        "smtpResponse": "250 2.6.0 Message received",
        "remoteMtaIp": "203.0.113.25",
        "reportingMTA": "a8-70.smtp-out.amazonses.com",
    },
    "mail": _mail(),
}


def only(message: Any) -> Feedback:
    found = parse_notification(message)
    assert len(found) == 1, found
    return found[0]


# -- bounces and complaints -------------------------------------------------------------


def test_a_permanent_bounce_is_a_bounce_that_marks_the_customer() -> None:
    feedback = only(json.dumps(PERMANENT_BOUNCE))

    assert feedback.provider_id == MESSAGE_ID
    assert feedback.kind == "bounced"
    assert feedback.marks_customer
    assert feedback.at == datetime(2026, 3, 2, 9, 15, 3, 450000, tzinfo=UTC)
    assert feedback.detail == {
        "type": "Bounce",
        "bounce_type": "Permanent",
        "bounce_subtype": "General",
        "recipients": [
            {
                "email": "wang.fang@example.com",
                "diagnostic": "smtp; 550 5.1.1 user unknown",
                "status": "5.1.1",
                "action": "failed",
            }
        ],
        "feedback_id": "0102018f2a8c2f11-8a3c5d1e-2b4f-4c6a-8e0d-1f2a3b4c5d6e-000000",
        "reason": "Permanent bounce (General): smtp; 550 5.1.1 user unknown",
    }


def test_a_transient_bounce_is_a_soft_bounce_that_leaves_the_customer_alone() -> None:
    feedback = only(json.dumps(TRANSIENT_BOUNCE))

    assert feedback.kind == "soft_bounce"
    assert not feedback.marks_customer
    assert feedback.detail["bounce_subtype"] == "MailboxFull"
    assert feedback.detail["reason"] == (
        "Transient bounce (MailboxFull): smtp; 452 4.2.2 mailbox full"
    )


def test_an_undetermined_bounce_is_recorded_but_does_not_mark_the_customer() -> None:
    message = copy.deepcopy(PERMANENT_BOUNCE)
    message["bounce"]["bounceType"] = "Undetermined"
    message["bounce"]["bounceSubType"] = "Undetermined"

    feedback = only(message)

    assert feedback.kind == "bounced"
    assert not feedback.marks_customer


def test_a_complaint_marks_the_customer() -> None:
    feedback = only(json.dumps(COMPLAINT))

    assert feedback.kind == "complained"
    assert feedback.marks_customer
    assert feedback.at == datetime(2026, 3, 2, 10, 2, 12, 517000, tzinfo=UTC)
    assert feedback.detail["recipients"] == [{"email": "wang.fang@example.com"}]
    assert feedback.detail["reason"] == "Complaint (abuse)"


def test_a_suppressed_address_is_a_permanent_bounce() -> None:
    message = copy.deepcopy(PERMANENT_BOUNCE)
    message["bounce"]["bounceSubType"] = "OnAccountSuppressionList"
    message["bounce"]["bouncedRecipients"][0]["diagnosticCode"] = (
        "Amazon SES did not send the message to this address because it is on the "
        "suppression list for your account."
    )

    feedback = only(message)

    assert (feedback.kind, feedback.marks_customer) == ("bounced", True)
    assert feedback.detail["reason"].startswith("Permanent bounce (OnAccountSuppressionList):")


def test_the_mails_time_stands_in_when_the_bounce_has_none() -> None:
    message = copy.deepcopy(PERMANENT_BOUNCE)
    del message["bounce"]["timestamp"]

    assert only(message).at == datetime(2026, 3, 2, 9, 15, 1, 120000, tzinfo=UTC)


def test_bytes_text_and_a_parsed_document_read_the_same() -> None:
    text = json.dumps(COMPLAINT)

    assert only(text) == only(text.encode()) == only(COMPLAINT)


def test_long_diagnostics_and_many_recipients_are_cut_short() -> None:
    message = copy.deepcopy(PERMANENT_BOUNCE)
    message["bounce"]["bouncedRecipients"] = [
        {"emailAddress": f"r{n}@example.com", "diagnosticCode": "x" * 5000} for n in range(50)
    ]

    detail = only(message).detail

    assert len(detail["recipients"]) == 20
    assert len(detail["recipients"][0]["diagnostic"]) == 1000
    assert len(detail["reason"]) <= 1000


# -- what is ignored -------------------------------------------------------------------


@pytest.mark.parametrize("event", ["Delivery", "Send", "Open", "Click", "DeliveryDelay"])
def test_deliveries_and_other_events_are_ignored(event: str) -> None:
    message = {**DELIVERY, "notificationType": event}

    assert parse_notification(message) == []
    assert parse_notification(json.dumps(DELIVERY)) == []


@pytest.mark.parametrize(
    "message",
    [
        "",
        "not json",
        "{",
        "[]",
        "null",
        "42",
        json.dumps({"Type": "SubscriptionConfirmation", "Token": "x"}),
        json.dumps({"notificationType": "Bounce"}),  # no mail, no bounce
        json.dumps({"notificationType": "Bounce", "mail": {}, "bounce": {}}),
        json.dumps({"notificationType": "Bounce", "mail": "x", "bounce": []}),
        json.dumps({"notificationType": "Complaint", "mail": {"messageId": 7}, "complaint": {}}),
        json.dumps({"eventType": ["Bounce"], "mail": {"messageId": "m"}}),
        b"\xff\xfe not utf-8",
    ],
)
def test_garbage_is_skipped_without_raising(message: Any) -> None:
    assert parse_notification(message) == []


def test_malformed_parts_of_a_bounce_are_left_out() -> None:
    message = copy.deepcopy(PERMANENT_BOUNCE)
    message["bounce"]["bouncedRecipients"] = [
        "not a recipient",
        {"emailAddress": 12},
        {"emailAddress": "ok@example.com", "diagnosticCode": {"nested": True}},
    ]
    message["bounce"]["timestamp"] = "yesterday"
    message["bounce"]["bounceType"] = None
    message["mail"]["timestamp"] = None

    feedback = only(message)

    assert feedback.kind == "bounced"
    assert feedback.at is None
    assert feedback.detail["bounce_type"] == "Undetermined"
    assert feedback.detail["recipients"] == [{"email": "ok@example.com"}]


# -- the handler -----------------------------------------------------------------------


class FakeRecorder:
    def __init__(self, known: set[str]) -> None:
        self.known = known
        self.seen: list[tuple[Feedback, datetime]] = []

    def record_feedback(self, feedback: Feedback, now: datetime) -> bool:
        first = feedback.provider_id in self.known and all(
            seen != feedback for seen, _ in self.seen
        )
        self.seen.append((feedback, now))
        return first


def test_the_handler_counts_what_it_recorded() -> None:
    recorder = FakeRecorder(known={MESSAGE_ID})

    first = handle_sns_message(recorder, json.dumps(PERMANENT_BOUNCE), NOW)
    again = handle_sns_message(recorder, json.dumps(PERMANENT_BOUNCE), NOW)

    assert first == {"feedback": 1, "recorded": 1, "unchanged": 0}
    assert again == {"feedback": 1, "recorded": 0, "unchanged": 1}
    assert recorder.seen[0][1] == NOW


def test_the_handler_records_nothing_for_a_delivery_or_garbage() -> None:
    recorder = FakeRecorder(known={MESSAGE_ID})

    assert handle_sns_message(recorder, json.dumps(DELIVERY), NOW) == {
        "feedback": 0, "recorded": 0, "unchanged": 0,
    }
    assert handle_sns_message(recorder, "garbage", NOW)["feedback"] == 0
    assert recorder.seen == []


def test_an_unknown_message_is_counted_unchanged() -> None:
    recorder = FakeRecorder(known=set())

    assert handle_sns_message(recorder, json.dumps(COMPLAINT), NOW) == {
        "feedback": 1, "recorded": 0, "unchanged": 1,
    }
