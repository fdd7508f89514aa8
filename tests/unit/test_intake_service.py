"""Intake against a stand-in store: behaviour DynamoDB shows but moto cannot reproduce."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.domain.case import Channel, Complaint
from chalicelib.services.intake import submit_complaint
from chalicelib.services.ports import (
    AlreadySubmitted,
    IdempotencyRecord,
    NewCase,
    WriteConflict,
)
from chalicelib.settings import Settings

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
COMPLAINT = Complaint.model_validate(
    {
        "kind": "enquiry",
        "customer": {"name": "Ann", "email": "ann@example.com"},
        "description": "Does it come in red?",
    }
)


class RacingStore:
    """Loses the race `conflicts` times, then finds the winner's idempotency record."""

    def __init__(self, conflicts: int) -> None:
        self.conflicts = conflicts
        self.attempts = 0
        self.winner: dict[str, str] | None = None

    def next_case_sequence(self) -> int:
        return 7

    def create_case(self, new: NewCase, now: datetime) -> None:
        self.attempts += 1
        assert new.idempotency is not None
        if self.attempts <= self.conflicts:
            raise WriteConflict("TransactionConflict")
        self.winner = {**new.idempotency.receipt, "case_id": "the-winner"}
        raise AlreadySubmitted(
            IdempotencyRecord(
                key_hash=new.idempotency.key_hash,
                fingerprint=new.idempotency.fingerprint,
                receipt=self.winner,
                expires_at=now + timedelta(hours=1),
            )
        )


def _submit(store: RacingStore) -> object:
    return submit_complaint(
        store,  # type: ignore[arg-type]
        Settings(rate_limit_enabled=False),
        COMPLAINT,
        now=NOW,
        base_url="https://help.example.com",
        channel=Channel.API,
        idempotency_key="double-click",
    )


def test_a_submission_that_loses_a_race_on_its_key_returns_the_winners_case() -> None:
    store = RacingStore(conflicts=1)
    receipt = _submit(store)
    assert store.attempts == 2
    assert receipt is not None and receipt.case_id == "the-winner"  # type: ignore[attr-defined]


def test_a_write_that_keeps_conflicting_gives_up_without_inventing_a_case() -> None:
    store = RacingStore(conflicts=10)
    with pytest.raises(WriteConflict):
        _submit(store)
    assert store.attempts == 3
