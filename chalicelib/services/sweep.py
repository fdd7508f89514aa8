"""The deadline sweep: fires every timer that is due, once.

Runs on a schedule every few minutes. It reads only what is due (a Query on the sparse
``due`` index, never a Scan) and, for each due timer, the case it belongs to. Each firing
is one conditional transaction: the timer's next stage and the e-mails it causes (through
the outbox) are written together, only if the timer is still as the sweep found it. Two
sweeps racing over the same timers, or a sweep that dies half-way and runs again, fire
every stage once: the loser's transaction writes nothing. A timer that fell due while
the sweep was not running fires at the next sweep, marked late.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from chalicelib.domain.case import Case
from chalicelib.domain.policies import Policies
from chalicelib.domain.staff import Role, StaffMember
from chalicelib.domain.timers import DueTimer, Notice, fire, is_late
from chalicelib.services.ports import OutboxMessage
from chalicelib.services.recipients import SUPERVISORS, Address, Recipients
from chalicelib.settings import Settings

logger = logging.getLogger(__name__)


class SweepStore(Protocol):
    def due_timers(
        self, now: datetime, limit: int, after: str | None = None
    ) -> tuple[list[DueTimer], str | None]: ...

    def get_case(self, case_id: str) -> Case | None: ...

    def list_staff(self) -> list[StaffMember]: ...

    def fire_timer(
        self,
        due: DueTimer,
        next_stage_at: datetime | None,
        outbox: list[OutboxMessage],
        now: datetime,
        late: bool,
    ) -> bool: ...


@dataclass
class SweepReport:
    due: int = 0
    fired: int = 0
    late: int = 0
    lost_races: int = 0  # fired by another sweep, or moved by a case change meanwhile
    emails: int = 0
    unaddressed: list[str] = field(default_factory=list)  # notices nobody could receive

    def as_dict(self) -> dict[str, Any]:
        return {
            "due": self.due, "fired": self.fired, "late": self.late,
            "lost_races": self.lost_races, "emails": self.emails,
            "unaddressed": len(self.unaddressed),
        }


def recipients_for(notice: Notice, case: Case, people: Recipients) -> list[Address]:
    """Everyone to tell; the service centre stands in for a case nobody owns, and for a
    company without supervisors on file."""
    if notice.to == "customer":
        return [(case.customer.name, case.customer.email)]
    if notice.to == "owner":
        return people.member(case.owner) or people.centre() or people.with_roles(SUPERVISORS)
    if notice.to == "supervisors":
        return (
            people.with_roles(frozenset({Role.SUPERVISOR}))
            or people.with_roles(SUPERVISORS)
            or people.centre()
        )
    return people.with_roles(SUPERVISORS) or people.centre()


def _status_url(case: Case, settings: Settings) -> str:
    base = str(settings.public_base_url or case.links_base or "").rstrip("/")
    return f"{base}/status/{case.status_token}"


def notice_messages(
    notice: Notice,
    case: Case,
    recipients: list[Address],
    settings: Settings,
    policies: Policies,
    now: datetime,
) -> list[OutboxMessage]:
    """One outbox message per recipient: the customer in their language, staff in the
    company's."""
    messages = []
    for name, address in recipients:
        if notice.to == "customer":
            status_url = _status_url(case, settings)
            payload: dict[str, Any] = {
                "to": address,
                "customer_name": case.customer.name,
                "language": case.language.value,
                "case_number": case.case_number,
                "status_url": status_url,
                "values": {**notice.values, "survey_url": f"{status_url}/satisfaction"},
            }
        else:
            payload = {
                "to": address,
                "to_name": name,
                "customer_name": case.customer.name,
                "language": settings.default_language.value,
                "case_number": case.case_number,
                "timezone": policies.calendar.timezone,
                "values": {**notice.values, "owner": case.owner or ""},
            }
        messages.append(
            OutboxMessage(
                message_id=uuid.uuid4().hex,
                case_id=case.case_id,
                template=notice.template,
                payload=payload,
                due_at=now,
            )
        )
    return messages


def sweep_due_timers(
    store: SweepStore,
    settings: Settings,
    policies: Policies,
    now: datetime,
    *,
    page_size: int = 100,
    time_left: Callable[[], float] | None = None,
) -> SweepReport:
    """Fire every timer due at ``now``. Stops early (the next sweep goes on) when
    ``time_left`` says the function is about to run out of time."""
    report = SweepReport()
    recipients = Recipients(store, settings)
    after: str | None = None
    started = time.monotonic()
    while True:
        page, after = store.due_timers(now, page_size, after)
        for due in page:
            report.due += 1
            case = store.get_case(due.case_id)
            firing = fire(due, case, policies, now) if case is not None else None
            late = is_late(due, now)
            messages: list[OutboxMessage] = []
            if case is not None and firing is not None:
                for notice in firing.notices:
                    people = recipients_for(notice, case, recipients)
                    if not people:
                        report.unaddressed.append(f"{case.case_number} {notice.template}")
                        logger.warning(
                            "nobody to tell of %s on case %s: set "
                            "SERVICE_DESK_SERVICE_CENTRE_EMAIL or give managers an e-mail",
                            notice.template, case.case_number,
                        )
                    messages += notice_messages(notice, case, people, settings, policies, now)
            next_stage_at = firing.next_stage_at if firing is not None else None
            if store.fire_timer(due, next_stage_at, messages, now, late):
                report.fired += 1
                report.late += late
                report.emails += len(messages)
            else:
                report.lost_races += 1
        if after is None:
            break
        if time_left is not None and time_left() < 5.0:
            logger.warning("sweep stopped after %.1f s; the next one goes on",
                           time.monotonic() - started)
            break
    return report
