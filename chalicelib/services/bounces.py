"""SES feedback that arrives after a send: bounces and complaints, through SNS.

A refusal at send time already fails the outbox message at once (ses.py, outbox.py). An
address that bounces or complains later is reported by SES on an SNS topic; this records
it on the e-mail (so staff see its fate on the case) and, when the address is known to be
bad, on the customer file, once. Nothing here retries or re-sends anything.

Both shapes SES publishes are read: identity notifications (``notificationType``) and
configuration-set event publishing (``eventType``). Deliveries and every other event are
ignored; malformed input is logged and skipped, never raised (SNS would only redeliver it).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

logger = logging.getLogger(__name__)

FeedbackKind = Literal["bounced", "soft_bounce", "complained"]

# How much a later notification about the same e-mail may change: never downgrade a
# complaint to a bounce, nor a hard bounce to a soft one (and never record one twice).
FEEDBACK_RANK: dict[str, int] = {"soft_bounce": 1, "bounced": 2, "complained": 3}

MAX_RECIPIENTS = 20
MAX_TEXT = 1000


@dataclass(frozen=True)
class Feedback:
    """One bounce or complaint about one e-mail SES sent (``provider_id``: its MessageId).

    ``detail`` holds only text and lists of text (it is stored as it is): ``type``
    (Bounce / Complaint), ``bounce_type`` / ``bounce_subtype`` or ``complaint_type`` /
    ``complaint_subtype``, ``recipients`` ({email, diagnostic, status, action}),
    ``feedback_id`` and ``reason``, a one-line summary for staff.
    """

    provider_id: str
    kind: FeedbackKind
    at: datetime | None
    detail: dict[str, Any]

    @property
    def marks_customer(self) -> bool:
        return marks_customer(self.kind, self.detail)


def marks_customer(kind: str, detail: Mapping[str, Any]) -> bool:
    """A permanent bounce or a complaint says: stop e-mailing this address. A transient or
    undetermined bounce does not (a full mailbox, a server down for a day)."""
    return kind == "complained" or (
        kind == "bounced" and detail.get("bounce_type") == "Permanent"
    )


class FeedbackRecorder(Protocol):
    def record_feedback(self, feedback: Feedback, now: datetime) -> bool:
        """Record it on the e-mail it is about (and the customer file); False when that
        e-mail is unknown or this was recorded already."""


def _text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()[:MAX_TEXT]
    return None


def _moment(value: Any) -> datetime | None:
    text = _text(value)
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _recipients(value: Any) -> list[dict[str, str]]:
    found: list[dict[str, str]] = []
    for entry in value if isinstance(value, list) else []:
        entry = _mapping(entry)
        email = _text(entry.get("emailAddress"))
        if email is None:
            continue
        recipient = {"email": email}
        for field, key in (
            ("diagnostic", "diagnosticCode"), ("status", "status"), ("action", "action")
        ):
            text = _text(entry.get(key))
            if text is not None:
                recipient[field] = text
        found.append(recipient)
        if len(found) >= MAX_RECIPIENTS:
            break
    return found


def _bounce(provider_id: str, bounce: Mapping[str, Any]) -> Feedback:
    bounce_type = _text(bounce.get("bounceType")) or "Undetermined"
    subtype = _text(bounce.get("bounceSubType"))
    recipients = _recipients(bounce.get("bouncedRecipients"))
    diagnostic = next((r["diagnostic"] for r in recipients if "diagnostic" in r), None)
    reason = f"{bounce_type} bounce" + (f" ({subtype})" if subtype else "")
    if diagnostic:
        reason += f": {diagnostic}"
    detail: dict[str, Any] = {
        "type": "Bounce",
        "bounce_type": bounce_type,
        "bounce_subtype": subtype,
        "recipients": recipients,
        "feedback_id": _text(bounce.get("feedbackId")),
        "reason": reason[:MAX_TEXT],
    }
    return Feedback(
        provider_id=provider_id,
        kind="soft_bounce" if bounce_type == "Transient" else "bounced",
        at=_moment(bounce.get("timestamp")),
        detail={k: v for k, v in detail.items() if v is not None},
    )


def _complaint(provider_id: str, complaint: Mapping[str, Any]) -> Feedback:
    feedback_type = _text(complaint.get("complaintFeedbackType"))
    subtype = _text(complaint.get("complaintSubType"))
    reason = "Complaint" + (f" ({feedback_type})" if feedback_type else "")
    if subtype:
        reason += f" [{subtype}]"
    detail: dict[str, Any] = {
        "type": "Complaint",
        "complaint_type": feedback_type,
        "complaint_subtype": subtype,
        "recipients": _recipients(complaint.get("complainedRecipients")),
        "feedback_id": _text(complaint.get("feedbackId")),
        "reason": reason,
    }
    return Feedback(
        provider_id=provider_id,
        kind="complained",
        at=_moment(complaint.get("timestamp")),
        detail={k: v for k, v in detail.items() if v is not None},
    )


def parse_notification(message: str | bytes | Mapping[str, Any]) -> list[Feedback]:
    """The bounce or complaint an SES notification (the SNS message body) reports: none
    for a delivery, any other event, or anything that is not an SES notification."""
    try:
        document = (
            message if isinstance(message, Mapping) else json.loads(message)
        )
    except (ValueError, TypeError) as error:
        logger.warning("SES notification is not JSON, skipped: %s", error)
        return []
    if not isinstance(document, Mapping):
        logger.warning("SES notification is not a JSON object, skipped")
        return []
    kind = document.get("notificationType") or document.get("eventType")
    if kind not in ("Bounce", "Complaint"):
        if kind != "Delivery":
            logger.info("SES notification of type %r ignored", kind)
        return []
    mail = _mapping(document.get("mail"))
    provider_id = _text(mail.get("messageId"))
    body = document.get("bounce" if kind == "Bounce" else "complaint")
    if provider_id is None or not isinstance(body, Mapping):
        logger.warning("SES %s notification without mail.messageId or body, skipped", kind)
        return []
    feedback = _bounce(provider_id, body) if kind == "Bounce" else _complaint(provider_id, body)
    if feedback.at is None:
        feedback = Feedback(
            provider_id=feedback.provider_id,
            kind=feedback.kind,
            at=_moment(mail.get("timestamp")),
            detail=feedback.detail,
        )
    return [feedback]


def handle_sns_message(
    recorder: FeedbackRecorder, message: str | bytes | Mapping[str, Any], now: datetime
) -> dict[str, int]:
    """Record what one SNS message reports. Safe to run again for the same message (SNS
    delivers at least once): what was recorded is not recorded twice. A storage error is
    raised, so that the Lambda invocation fails and is retried."""
    found = parse_notification(message)
    recorded = 0
    for feedback in found:
        if recorder.record_feedback(feedback, now):
            recorded += 1
            logger.info(
                "SES %s for message %s recorded: %s",
                feedback.kind, feedback.provider_id, feedback.detail.get("reason"),
            )
        else:
            logger.info(
                "SES %s for message %s: unknown message or already recorded",
                feedback.kind, feedback.provider_id,
            )
    return {"feedback": len(found), "recorded": recorded, "unchanged": len(found) - recorded}
