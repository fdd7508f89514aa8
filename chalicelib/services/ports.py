"""The small interfaces the use cases talk to. Adapters implement them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from typing import Any, Protocol

from chalicelib.domain.case import Case, CaseEvent
from chalicelib.domain.customer import CustomerRecord


@dataclass(frozen=True)
class OutboxMessage:
    """A side effect (an e-mail, later a sheet row) waiting to be sent.

    Written in the same transaction as the change that caused it, so nothing is sent
    for a change that did not commit and nothing committed goes unsent.
    """

    message_id: str
    case_id: str
    template: str
    payload: dict[str, Any]
    due_at: datetime
    attempts: int = 0
    # The item's partition: the case's (CASE#<case_id>) unless the message belongs to no
    # case (a report to managers: REPORT#...).
    partition: str | None = None

    @property
    def pk(self) -> str:
        return self.partition or f"CASE#{self.case_id}"


@dataclass(frozen=True)
class IdempotencyRecord:
    key_hash: str
    fingerprint: str
    receipt: dict[str, Any]
    expires_at: datetime


@dataclass(frozen=True)
class RateLimitCounter:
    """One fixed window ("this e-mail, this hour") with its cap."""

    name: str
    key: str
    limit: int
    window_ends_at: datetime


@dataclass(frozen=True)
class NewCase:
    """Everything that is written, all or nothing, when a case is opened."""

    case: Case
    event: CaseEvent
    status_token: str
    links_base: str | None = None  # where the customer reached us, for later links
    customer: CustomerRecord | None = None  # the customer file, created or brought up to date
    taken_by_staff: bool = False  # staff's details update the file; the public form's do not
    # Someone typed the e-mail address just now (the customer or staff), so a bounce mark on
    # it is cleared; not a case the system opens from its records (a planned visit).
    address_typed: bool = True
    outbox: list[OutboxMessage] = field(default_factory=list)
    idempotency: IdempotencyRecord | None = None
    rate_limits: list[RateLimitCounter] = field(default_factory=list)


class AlreadySubmitted(Exception):
    """The idempotency key was used before; the earlier record is attached."""

    def __init__(self, record: IdempotencyRecord) -> None:
        super().__init__("idempotency key already used")
        self.record = record


class RateLimitReached(Exception):
    def __init__(self, counter: RateLimitCounter) -> None:
        super().__init__(f"rate limit reached: {counter.name}")
        self.counter = counter


class WriteConflict(Exception):
    """Another transaction touched the same items at the same moment (DynamoDB's
    TransactionConflict); nothing was written and the same write may be tried again."""


class TokenChanged(Exception):
    """Someone issued or revoked this person's token at the same moment; nothing changed."""


class StaleCase(Exception):
    """The case changed since the version the caller saw; ``case`` is how it is now."""

    def __init__(self, case: Case) -> None:
        super().__init__(f"the case is now at version {case.version}")
        self.case = case


class StaleSnapshot(Exception):
    """The copy of the case a timer carries is out of date: the case changed since the
    timer was written. Nothing was written; fire it again with the case as it is now:
    ``case``, as the refused write found it (None: the case is gone)."""

    def __init__(self, message: str, case: Case | None = None) -> None:
        super().__init__(message)
        self.case = case


@dataclass(frozen=True)
class CaseFilter:
    statuses: frozenset[str]
    kind: str | None = None
    owner: str | None = None
    overdue_at: datetime | None = None  # only cases with a promise due before this
    limit: int = 100


class CaseStore(Protocol):
    def next_case_sequence(self) -> int: ...

    def create_case(self, new: NewCase, now: datetime) -> None:
        """Write the case, its event, outbox, idempotency record and counters in one
        transaction. Raises AlreadySubmitted, RateLimitReached or WriteConflict and
        writes nothing."""

    def find_case_by_token(self, status_token: str) -> Case | None: ...

    def get_case(self, case_id: str) -> Case | None: ...

    def get_customer(self, customer_id: str) -> CustomerRecord | None: ...

    def save_change(
        self,
        case: Case,
        event: CaseEvent,
        outbox: list[OutboxMessage],
        expected_version: int,
        previous: Case | None = None,
    ) -> None:
        """Write the changed case (only if it is still at expected_version), its event, its
        outbox and its timers (started, moved or cancelled from ``previous``, the case as it
        was) in one transaction; raises StaleCase and writes nothing otherwise."""

    def list_cases(self, where: CaseFilter) -> list[Case]: ...

    def events_since(self, case_id: str, version: int) -> list[CaseEvent]:
        """The events after that version, oldest first."""

    def find_case_by_number(self, case_number: str) -> Case | None: ...

    def case_history(self, case_id: str) -> list[CaseEvent]:
        """Newest first."""

    def due_outbox(self, now: datetime, limit: int) -> list[OutboxMessage]: ...

    def claim_outbox(self, message: OutboxMessage, now: datetime) -> OutboxMessage | None:
        """Take a lease on a due message; None if another sender has it or it is done."""

    def outbox_sent(self, message: OutboxMessage, now: datetime, receipt: str) -> None: ...

    def case_outbox(self, case_id: str) -> list[dict[str, Any]]:
        """Every message of the case: what was sent, is waiting, or failed and why."""

    def outbox_retry(
        self, message: OutboxMessage, now: datetime, error: str, retry_at: datetime | None
    ) -> None:
        """Schedule another attempt, or (retry_at None) give up and record why."""


class Undeliverable(Exception):
    """The mail service refused this message for good (a bad address, a rejected message):
    trying again would only be refused again."""


class Mailer(Protocol):
    def send(self, message: EmailMessage) -> str:
        """Send and return the provider's message id."""
