"""After a case: the follow-up calls (回访) and what the customer said.

The first call is due some days after the product was handed back (the resolution; a
workshop repair's device collected), never before the resolution; the second some days
after the first. Each call has a window (working days) to be made in, after which the
case's owner is reminded. An agent records each call's outcome; a customer who does not
answer is called again the next working day, up to a limit and only inside the call's
window: the tries share it. Pure domain code.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

CallOutcome = Literal["satisfied", "not_satisfied", "no_answer", "question"]
CALL_OUTCOMES: tuple[CallOutcome, ...] = ("satisfied", "not_satisfied", "no_answer", "question")

_frozen = ConfigDict(frozen=True, defer_build=True, extra="forbid")


class FollowUpCall(BaseModel):
    """One follow-up call: due from ``due_at``; ``attempts`` counts the tries nobody
    answered; ``outcome`` is set once the call is over (answered, or given up)."""

    model_config = _frozen

    number: int = Field(ge=1)
    due_at: datetime
    window_ends_at: datetime | None = None  # make the call by then, else the owner hears
    attempts: int = 0
    outcome: CallOutcome | None = None
    recorded_at: datetime | None = None
    by: str | None = None
    note: str | None = None

    @property
    def pending(self) -> bool:
        return self.outcome is None


class FollowUp(BaseModel):
    """The follow-up of one resolution: its calls so far (the last may be pending)."""

    model_config = _frozen

    resolved_at: datetime
    calls: tuple[FollowUpCall, ...] = ()

    @property
    def pending_call(self) -> FollowUpCall | None:
        last = self.calls[-1] if self.calls else None
        return last if last is not None and last.pending else None


class OpenQuestion(BaseModel):
    """A request or complaint the customer raised on a follow-up call that could not be
    answered there: reported to the supervisor if still open after a while."""

    model_config = _frozen

    text: str
    asked_at: datetime
    report_due_at: datetime
    taken_by: str


class Satisfaction(BaseModel):
    """What the customer said through the satisfaction link (1 = very unhappy … 5)."""

    model_config = _frozen

    rating: int = Field(ge=1, le=5)
    comment: str | None = Field(default=None, max_length=2000)
    at: datetime
