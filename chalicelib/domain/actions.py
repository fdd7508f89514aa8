"""The vocabulary of case actions: what an action is, what it may read (Context) and what
it returns (Outcome), and the refusal every rule raises. The web-shop flow (lifecycle.py),
the field-service flow (field_actions.py) and the project kinds (project_actions.py) declare
their actions with it; lifecycle.ACTIONS holds them all.

Pure domain code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chalicelib.domain.case import Case, CaseEvent, CaseKind, CaseStatus
from chalicelib.domain.policies import Duration, FieldServicePolicy
from chalicelib.domain.remedies import ResolutionItem
from chalicelib.domain.staff import Role, StaffMember
from chalicelib.domain.timers import Notice
from chalicelib.domain.units import Unit


class ShopPromises(Protocol):
    """The deadlines and approval limits of this deployment (from its policies file)."""

    def refund_request_due(self, decided_at: datetime) -> datetime: ...

    def refund_posting_due(self, requested_at: datetime) -> datetime: ...

    def photos_due(self, requested_at: datetime) -> datetime: ...

    def reship_due(self, decided_at: datetime, exchange: bool) -> datetime: ...

    def tracking_check_due(self, at: datetime) -> datetime: ...

    def approval_needed(self, item: ResolutionItem) -> Role | None: ...

    @property
    def card_refund_working_days(self) -> tuple[int, int]: ...

    def resolve_due(self, at: datetime) -> datetime: ...

    def follows_up(self, kind: CaseKind) -> bool: ...

    def first_call(
        self, handed_back_at: datetime, resolved_at: datetime
    ) -> tuple[datetime, datetime]: ...

    def second_call(self, first_call_at: datetime) -> tuple[datetime, datetime]: ...

    def call_again(self, at: datetime, window_ends_at: datetime | None) -> datetime | None: ...

    @property
    def call_attempts(self) -> int: ...

    def question_report_due(self, asked_at: datetime) -> datetime: ...

    def deadline(self, start: datetime, duration: Duration) -> datetime: ...

    def local_date(self, at: datetime) -> date: ...

    def local_time(self, at: datetime) -> datetime: ...

    @property
    def field_service(self) -> FieldServicePolicy: ...


@dataclass(frozen=True)
class CustomerMessage:
    """Something the customer is told: a template name and the values it needs."""

    template: str
    values: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Change:
    case: Case
    event: CaseEvent
    messages: tuple[CustomerMessage, ...]
    # Staff and partners to tell (by audience: the sweep's and the desk's recipients).
    notices: tuple[Notice, ...] = ()


class ActionRefused(Exception):
    """The action is not allowed now, for this person, or with these parameters."""

    def __init__(
        self, reason: str, errors: list[dict[str, str]] | None = None, code: str = "not_now"
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.errors = errors or []
        self.code = code  # "role": not this person's to do; "not_now": not in this state


_params = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)
Text = Field(min_length=1, max_length=5000)
Short = Field(min_length=1, max_length=200)
Money = Field(gt=0, max_digits=12, decimal_places=2)  # an amount of the company's currency


class NoParams(BaseModel):
    model_config = _params


class NoteParams(BaseModel):
    model_config = _params
    text: str = Text




Effect = Callable[[Case, Any, "Context"], "Outcome"]


@dataclass(frozen=True)
class Context:
    actor: StaffMember
    now: datetime
    promises: ShopPromises
    # The registered unit the case is about (field service), when there is one.
    unit: Unit | None = None
    # The active staff by id, for actions that name a colleague (a technician).
    staff: Mapping[str, StaffMember] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    updates: dict[str, Any] = field(default_factory=dict)
    status: CaseStatus | None = None
    messages: tuple[CustomerMessage, ...] = ()
    # Staff to tell at once (a major quality problem to management, a report to R&D …).
    notices: tuple[Notice, ...] = ()


@dataclass(frozen=True)
class Action:
    name: str
    roles: frozenset[Role]
    statuses: frozenset[CaseStatus]
    kinds: frozenset[CaseKind]
    params: type[BaseModel]
    effect: Effect
    customer_visible: bool = False
    # Kinds for which the action is possible in other statuses than ``statuses``.
    statuses_for: Mapping[CaseKind, frozenset[CaseStatus]] = field(default_factory=dict)
    # What the case must have for the action (a call to make, …): None, or why not.
    missing: Callable[[Case], str | None] | None = None
    # What the action reads beyond the case, for the caller to look up: the registered
    # unit ("unit"), the staff's names ("staff").
    reads: frozenset[Literal["unit", "staff"]] = frozenset()
    # Who, among those whose role may take the action, may not take it on this case now
    # (the dispatched technician's steps, an approval already given): None, or why not.
    # Offered actions leave the action out for that person; taking it anyway is a 403.
    not_for: Callable[[Case, StaffMember], str | None] | None = None

    def statuses_of(self, kind: CaseKind) -> frozenset[CaseStatus]:
        """The statuses in which this action is possible on a case of this kind."""
        return self.statuses_for.get(kind, self.statuses)


def refuse(reason: str, field: str | None = None, message: str | None = None) -> ActionRefused:
    """An action refused for ``reason``; naming a parameter ``field`` makes it a 400 on
    ``params.<field>`` with ``message`` (the reason when not given)."""
    errors = [{"field": f"params.{field}", "message": message or reason}] if field else None
    return ActionRefused(reason, errors)


def refused_parameters(
    error: ValidationError, reason: str, prefix: str = "params"
) -> ActionRefused:
    """A refusal naming every parameter that failed validation (``<prefix>.<field>``)."""
    errors = [
        {
            "field": ".".join([prefix] * bool(prefix) + [str(part) for part in e["loc"]]),
            "message": e["msg"].removeprefix("Value error, "),
        }
        for e in error.errors(include_url=False)
    ]
    return ActionRefused(reason, errors)


def snapshot(case: Case) -> dict[str, Any]:
    """The case as its history records it (what changed is judged on this)."""
    return case.model_dump(mode="json", exclude={"version", "updated_at"})


def record_change(
    case: Case,
    updates: Mapping[str, Any],
    *,
    actor: str,
    action: str,
    now: datetime,
    details: dict[str, Any] | None = None,
    visible: bool = False,
    messages: tuple[CustomerMessage, ...] = (),
    notices: tuple[Notice, ...] = (),
) -> Change:
    """The case with ``updates``, one version up, and the one event that records the
    change: who, what, when, and each changed field before and after."""
    changed = Case.model_validate(
        {**dict(case), **updates, "version": case.version + 1, "updated_at": now}
    )
    before, after = snapshot(case), snapshot(changed)
    keys = sorted(k for k in after if before.get(k) != after.get(k))
    event = CaseEvent(
        case_id=case.case_id,
        at=now,
        actor=actor,
        action=action,
        before={k: before.get(k) for k in keys},
        after={k: after.get(k) for k in keys},
        details=details,
        visible_to_customer=visible,
        version=changed.version,
        told_customer=tuple({"template": m.template, "values": m.values} for m in messages),
    )
    return Change(case=changed, event=event, messages=messages, notices=notices)
