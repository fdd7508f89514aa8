"""The outbox sender: drains due messages with a lease, retries with back-off."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import make_msgid

from email_validator import validate_email

from chalicelib.domain.case import CaseKind, Language
from chalicelib.domain.customer import CustomerRecord, customer_id_for
from chalicelib.domain.messages import (
    CASE_MESSAGES,
    EmailText,
    case_message,
    case_received_email,
)
from chalicelib.domain.staff_messages import (
    REMINDER_TEMPLATES,
    is_report_template,
    report_email,
    staff_email,
)
from chalicelib.services.ports import CaseStore, Mailer, OutboxMessage, Undeliverable
from chalicelib.settings import Settings

logger = logging.getLogger(__name__)


class UnknownTemplate(Exception):
    pass


def render(message: OutboxMessage, settings: Settings) -> EmailText:
    payload = message.payload
    if is_report_template(message.template):
        return report_email(
            template=message.template,
            language=Language(payload["language"]),
            recipient_name=payload["to_name"],
            lines=payload["lines"],
            subject_detail=payload["subject_detail"],
            company_name=settings.company_name,
            signature=settings.email_signature,
        )
    if message.template in REMINDER_TEMPLATES:
        return staff_email(
            template=message.template,
            values=payload.get("values", {}),
            language=Language(payload["language"]),
            recipient_name=payload["to_name"],
            case_number=payload["case_number"],
            customer_name=payload["customer_name"],
            company_name=settings.company_name,
            signature=settings.email_signature,
            timezone=payload["timezone"],
        )
    if message.template == "case_received":
        return case_received_email(
            language=Language(payload["language"]),
            customer_name=payload["customer_name"],
            case_number=payload["case_number"],
            kind=CaseKind(payload["kind"]),
            status_url=payload["status_url"],
            company_name=settings.company_name,
            signature=settings.email_signature,
        )
    language = Language(payload["language"])
    if message.template in CASE_MESSAGES[language]:
        return case_message(
            template=message.template,
            values=payload.get("values", {}),
            language=language,
            customer_name=payload["customer_name"],
            case_number=payload["case_number"],
            status_url=payload["status_url"],
            company_name=settings.company_name,
            signature=settings.email_signature,
        )
    raise UnknownTemplate(message.template)


def compose(
    message: OutboxMessage,
    settings: Settings,
    attachment: Callable[[str], bytes] | None = None,
) -> EmailMessage:
    """The e-mail of an outbox message; ``attachment`` fetches a file it names (a report
    workbook kept in S3)."""
    text = render(message, settings)
    email = EmailMessage()
    email["Subject"] = text.subject
    email["From"] = Address(display_name=settings.company_name, addr_spec=settings.mail_from)
    # Mail headers take ASCII addresses: an internationalised domain goes as punycode.
    to = message.payload["to"]
    to = validate_email(to, check_deliverability=False).ascii_email or to
    # An Address object, never formatted text: whatever the customer typed as their name
    # (commas, angle brackets, encoded words) stays a display name and adds no recipient.
    name = message.payload.get("to_name") or message.payload.get("customer_name", "")
    email["To"] = Address(display_name=name, addr_spec=to)
    email["Message-ID"] = make_msgid(idstring=message.message_id, domain="service-desk")
    email["X-Case-Id"] = message.case_id
    email.set_content(text.text)
    email.add_alternative(text.html, subtype="html")
    attached = message.payload.get("attachment")
    if attached:
        if attachment is None:
            raise Undeliverable("this e-mail has an attachment and no way to fetch it")
        email.add_attachment(
            attachment(attached["key"]),
            maintype="application",
            subtype="vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            filename=attached["filename"],
        )
    return email


def undeliverable_because(
    store: CaseStore, message: OutboxMessage, files: dict[str, CustomerRecord | None]
) -> str | None:
    """Why a customer's e-mail is not to be sent: their address bounced for good or they
    complained (SES feedback marks the customer file; a new complaint from them with that
    address clears the mark). Staff and report e-mails are always sent. ``files``: the
    customer files read so far in this run (each read once)."""
    template = message.template
    to = message.payload.get("to")
    if template in REMINDER_TEMPLATES or is_report_template(template) or not isinstance(
        to, str
    ) or not to:
        return None
    customer_id = customer_id_for(to)
    if customer_id not in files:
        files[customer_id] = store.get_customer(customer_id)
    record = files[customer_id]
    mark = record.email_undeliverable if record else None
    if not mark:
        return None
    what = "complained about our e-mail" if mark.get("kind") == "complained" else "bounced"
    return (f"not sent: this address {what} on {mark.get('at', '?')} "
            f"({mark.get('reason', 'no reason given')}); call the customer or correct "
            "the address")


def retry_delay(attempts: int) -> timedelta:
    """1, 2, 4, … minutes, at most an hour between tries."""
    return timedelta(minutes=min(60, 2 ** max(0, attempts - 1)))


@dataclass(frozen=True)
class DrainReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    skipped: int = 0


def drain_outbox(
    store: CaseStore,
    mailer: Mailer,
    settings: Settings,
    now: datetime,
    attachment: Callable[[str], bytes] | None = None,
) -> DrainReport:
    sent = retried = failed = skipped = 0
    files: dict[str, CustomerRecord | None] = {}
    for due in store.due_outbox(now, settings.outbox_batch_size):
        message = store.claim_outbox(due, now)
        if message is None:
            skipped += 1
            continue
        if message.attempts > settings.outbox_max_attempts:
            # Claimed again and again without being marked (e.g. the mark kept failing
            # after SES took it): stop rather than send it without end.
            store.outbox_retry(message, now, "too many attempts", None)
            failed += 1
            continue
        if why_not := undeliverable_because(store, message, files):
            store.outbox_retry(message, now, why_not, None)  # recorded on the case, once
            failed += 1
            continue
        try:
            provider_id = mailer.send(compose(message, settings, attachment))
        except Exception as error:  # any failure: record it, never lose the message
            give_up = message.attempts >= settings.outbox_max_attempts or isinstance(
                error, UnknownTemplate | Undeliverable
            )
            retry_at = None if give_up else now + retry_delay(message.attempts)
            store.outbox_retry(message, now, f"{type(error).__name__}: {error}", retry_at)
            logger.warning(
                "outbox message %s attempt %d failed: %s", message.message_id,
                message.attempts, error,
            )
            if give_up:
                failed += 1
            else:
                retried += 1
            continue
        store.outbox_sent(message, now, provider_id)
        sent += 1
    return DrainReport(sent=sent, retried=retried, failed=failed, skipped=skipped)
