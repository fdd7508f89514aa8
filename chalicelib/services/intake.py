"""Intake (叫修登记 / 客诉受理): a customer's report becomes a case."""

from __future__ import annotations

import hashlib
import json
import secrets
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from chalicelib.domain.case import (
    Channel,
    Complaint,
    choose_language,
    format_case_number,
    open_case,
)
from chalicelib.domain.customer import record_for
from chalicelib.services.ports import (
    AlreadySubmitted,
    CaseStore,
    IdempotencyRecord,
    NewCase,
    OutboxMessage,
    RateLimitCounter,
    RateLimitReached,
    WriteConflict,
)
from chalicelib.settings import Settings

if TYPE_CHECKING:
    from chalicelib.domain.policies import Policies


@dataclass(frozen=True)
class Receipt:
    """What the customer is told after submitting (the 201 body)."""

    case_id: str
    case_number: str
    status: str
    status_url: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


class IdempotencyKeyReused(Exception):
    """The same Idempotency-Key came with a different request."""


class TooManySubmissions(Exception):
    def __init__(self, retry_after_seconds: int, which: str) -> None:
        super().__init__(f"too many submissions for this {which}; retry later")
        self.retry_after_seconds = retry_after_seconds
        self.which = which


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _rate_limits(
    settings: Settings, complaint: Complaint, client_address: str | None, now: datetime
) -> list[RateLimitCounter]:
    if not settings.rate_limit_enabled:
        return []
    window_start = now.replace(minute=0, second=0, microsecond=0)
    window_ends_at = window_start + timedelta(hours=1)
    hour = window_start.strftime("%Y%m%d%H")
    counters = [
        RateLimitCounter(
            name="email",
            key=f"email#{_sha256(complaint.customer.email.lower())}#{hour}",
            limit=settings.rate_limit_per_email_per_hour,
            window_ends_at=window_ends_at,
        )
    ]
    if client_address:
        counters.append(
            RateLimitCounter(
                name="address",
                key=f"address#{_sha256(client_address)}#{hour}",
                limit=settings.rate_limit_per_address_per_hour,
                window_ends_at=window_ends_at,
            )
        )
    return counters


CONFLICT_RETRIES = 3


def _create_with_retries(store: CaseStore, new_case: NewCase, now: datetime) -> None:
    """Two submissions with one Idempotency-Key racing each other: DynamoDB cancels one
    transaction as a conflict. Trying again finds the winner's record (AlreadySubmitted)."""
    for attempt in range(1, CONFLICT_RETRIES + 1):
        try:
            store.create_case(new_case, now)
            return
        except WriteConflict:
            if attempt == CONFLICT_RETRIES:
                raise
            time.sleep(0.05 * attempt)


def submit_complaint(
    store: CaseStore,
    settings: Settings,
    complaint: Complaint,
    *,
    now: datetime,
    base_url: str,
    channel: Channel,
    idempotency_key: str | None = None,
    client_address: str | None = None,
    accept_language: str | None = None,
    taken_by: str | None = None,
    policies: Policies | None = None,
) -> Receipt | None:
    """Open a case for a complaint. Returns None when the honeypot says it is a bot.

    The store is called twice: one counter update for the case number, one transaction
    for everything else. A repeated idempotency key returns the first receipt. With the
    company's promises, the case gets its first-reply and resolution targets.
    """
    if complaint.is_from_a_bot:
        return None
    language = choose_language(complaint.language, accept_language, settings.default_language)
    case_id = uuid.uuid4().hex
    status_token = secrets.token_urlsafe(24)
    status_url = f"{base_url.rstrip('/')}/status/{status_token}"
    case_number = format_case_number(store.next_case_sequence(), settings.case_number_prefix)
    case, event = open_case(
        complaint,
        case_id=case_id,
        case_number=case_number,
        language=language,
        channel=channel,
        now=now,
        actor=taken_by,
        first_reply_due_at=policies.first_reply_due(now) if policies else None,
        resolve_due_at=policies.resolve_due(now) if policies else None,
        dispatch_due_at=policies.dispatch_due(now) if policies else None,
    )
    receipt = Receipt(
        case_id=case_id, case_number=case_number, status=case.status.value, status_url=status_url
    )
    confirmation = OutboxMessage(
        message_id=uuid.uuid4().hex,
        case_id=case_id,
        template="case_received",
        payload={
            "to": case.customer.email,
            "customer_name": case.customer.name,
            "language": language.value,
            "case_number": case_number,
            "kind": case.kind.value,
            "status_url": status_url,
        },
        due_at=now,
    )
    fingerprint = _sha256(json.dumps(complaint.fingerprint_fields(), sort_keys=True))
    idempotency = (
        IdempotencyRecord(
            key_hash=_sha256(idempotency_key),
            fingerprint=fingerprint,
            receipt=receipt.as_dict(),
            expires_at=now + timedelta(hours=settings.idempotency_ttl_hours),
        )
        if idempotency_key
        else None
    )
    new_case = NewCase(
        case=case,
        event=event,
        status_token=status_token,
        links_base=base_url.rstrip("/"),
        customer=record_for(case),
        taken_by_staff=taken_by is not None,
        address_typed=not (taken_by or "").startswith("system:"),
        outbox=[confirmation],
        idempotency=idempotency,
        # Staff taking a phone call are not limited; the public form is.
        rate_limits=[] if taken_by else _rate_limits(settings, complaint, client_address, now),
    )
    try:
        _create_with_retries(store, new_case, now)
    except AlreadySubmitted as earlier:
        if earlier.record.fingerprint != fingerprint:
            raise IdempotencyKeyReused(
                "this Idempotency-Key was already used for a different submission"
            ) from None
        return Receipt(**earlier.record.receipt)
    except RateLimitReached as reached:
        wait = reached.counter.window_ends_at - now
        raise TooManySubmissions(max(1, int(wait.total_seconds())), reached.counter.name) from None
    return receipt
