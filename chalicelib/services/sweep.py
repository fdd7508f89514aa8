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
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from chalicelib.domain.case import Case, CaseEvent
from chalicelib.domain.field_actions import convert_unreturned
from chalicelib.domain.policies import Policies
from chalicelib.domain.staff import StaffMember
from chalicelib.domain.timers import DueTimer, fire, is_late
from chalicelib.services.notices import notice_messages, recipients_for
from chalicelib.services.ports import OutboxMessage, StaleCase, WriteConflict
from chalicelib.services.recipients import Recipients
from chalicelib.settings import Settings

logger = logging.getLogger(__name__)


class SweepStore(Protocol):
    def due_timers(
        self, now: datetime, limit: int, after: str | None = None
    ) -> tuple[list[DueTimer], str | None]: ...

    def get_case(self, case_id: str) -> Case | None: ...

    def list_staff(self) -> list[StaffMember]: ...

    def save_change(
        self,
        case: Case,
        event: CaseEvent,
        outbox: list[OutboxMessage],
        expected_version: int,
        previous: Case | None = None,
    ) -> None: ...

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


def _convert_unreturned(
    store: SweepStore,
    case: Case,
    number: int,
    dealer: str,
    recipients: Recipients,
    settings: Settings,
    policies: Policies,
    now: datetime,
    report: SweepReport,
) -> None:
    """An old part not back in time: the parts request becomes a parts sale charged to the
    dealer, who is told why. One case change (version-checked, so a racing sweep writes
    nothing); it ends the timer in the same transaction."""
    change, notice = convert_unreturned(case, number, dealer, now)
    people = recipients_for(notice, change.case, recipients, policies)
    messages = notice_messages(notice, change.case, people, settings, policies, now)
    try:
        store.save_change(change.case, change.event, messages, case.version, previous=case)
    except (StaleCase, WriteConflict):
        report.lost_races += 1
        return
    report.fired += 1
    report.emails += len(messages)


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
            if case is not None and firing is not None and firing.lapsed_parts_request:
                assert firing.charge_to is not None
                _convert_unreturned(
                    store, case, firing.lapsed_parts_request, firing.charge_to, recipients,
                    settings, policies, now, report,
                )
                continue
            messages: list[OutboxMessage] = []
            if case is not None and firing is not None:
                for notice in firing.notices:
                    people = recipients_for(notice, case, recipients, policies)
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
