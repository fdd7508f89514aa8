"""The deadline sweep: fires every timer that is due, once.

Runs on a schedule every few minutes. It reads only what is due (a Query on the sparse
``due`` index, never a Scan). Each firing is one conditional transaction: the timer's next
stage and the e-mails it causes (through the outbox) are written together, only if the
timer is still as the sweep found it. Two sweeps racing over the same timers, or a sweep
that dies half-way and runs again, fire every stage once: the loser's transaction writes
nothing. A timer that fell due while the sweep was not running fires at the next sweep,
marked late.

The case a timer belongs to is not read: every timer item carries a copy of its case as
the change that wrote the timer left it (``case_snapshot``, with its version), and the
``due`` index projects it, so the Query brings each due timer with its case: about one
item read per due timer, plus the staff list once per sweep. The copy may be out of date
(a change that does not move a timer, an owner change say, does not rewrite it), so the
firing's transaction also checks that the case is still at the copy's version; if it is
not, nothing is written and the timer is fired again from the case read afresh, exactly
as without a copy (so are timers written before timers carried one, a parts sale that
changes the case, and a customer e-mail whose copy lacks the status link). Correctness
never depends on the copy being fresh; only the reads saved do.

The price: every timer item (and its entry on the ``due`` index, and for a follow-up call
on ``gsi2``) holds the whole case, 1-5 KB instead of ~200 bytes, so writing a timer, and
each stage it fires, costs write units by that size; a firing whose copy is out of date
costs one refused transaction, one read of the case and the transaction again; and the
case item is still checked (a ConditionCheck, part of the firing's transaction) once per
firing, just no longer read. Out-of-date copies are common: any change that leaves a
timer alone (a note, a message, a new owner) dates the copy of every timer the case
holds; in the integration tests' stories about 4 firings in 10 fall back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

from chalicelib.domain.case import Case, CaseEvent
from chalicelib.domain.field_actions import convert_unreturned
from chalicelib.domain.policies import Policies
from chalicelib.domain.staff import StaffMember
from chalicelib.domain.timers import DueTimer, fire, is_late
from chalicelib.services.notices import notice_messages, recipients_for
from chalicelib.services.ports import OutboxMessage, StaleCase, StaleSnapshot, WriteConflict
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
    ) -> bool:
        """False: the timer is no longer as found (nothing written). With
        ``due.snapshot``: raises StaleSnapshot when the case is past its version."""
        ...


@dataclass
class SweepReport:
    due: int = 0
    fired: int = 0
    late: int = 0
    lost_races: int = 0  # fired by another sweep, or moved by a case change meanwhile
    emails: int = 0
    unaddressed: list[str] = field(default_factory=list)  # notices nobody could receive
    cases_read: int = 0  # due timers fired from their case read afresh, not from its copy
    stale_snapshots: int = 0  # … of which because the copy was out of date

    def as_dict(self) -> dict[str, Any]:
        return {
            "due": self.due, "fired": self.fired, "late": self.late,
            "lost_races": self.lost_races, "emails": self.emails,
            "unaddressed": len(self.unaddressed), "cases_read": self.cases_read,
            "stale_snapshots": self.stale_snapshots,
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


def _fire_due(
    store: SweepStore,
    due: DueTimer,
    case: Case | None,
    recipients: Recipients,
    settings: Settings,
    policies: Policies,
    now: datetime,
    report: SweepReport,
) -> bool:
    """Fire this stage of the timer with ``case`` (None: the case is gone). With
    ``due.snapshot`` (``case`` is that copy), False when the copy will not do (nothing was
    done) and StaleSnapshot from the store when it is out of date."""
    firing = fire(due, case, policies, now) if case is not None else None
    late = is_late(due, now)
    if case is not None and firing is not None and firing.lapsed_parts_request:
        if due.snapshot is not None:
            return False  # a change of the case: made to the case as it is now
        assert firing.charge_to is not None
        _convert_unreturned(
            store, case, firing.lapsed_parts_request, firing.charge_to, recipients,
            settings, policies, now, report,
        )
        return True
    messages: list[OutboxMessage] = []
    nobody: list[tuple[str, str]] = []  # (case number, template) of notices nobody gets
    if case is not None and firing is not None:
        if due.snapshot is not None and case.status_token is None and any(
            notice.to == "customer" for notice in firing.notices
        ):
            return False  # a copy made before the case had its status link (intake)
        for notice in firing.notices:
            people = recipients_for(notice, case, recipients, policies)
            if not people:
                nobody.append((case.case_number, notice.template))
            messages += notice_messages(notice, case, people, settings, policies, now)
    next_stage_at = firing.next_stage_at if firing is not None else None
    fired = store.fire_timer(due, next_stage_at, messages, now, late)  # or StaleSnapshot
    for case_number, template in nobody:
        report.unaddressed.append(f"{case_number} {template}")
        logger.warning(
            "nobody to tell of %s on case %s: set "
            "SERVICE_DESK_SERVICE_CENTRE_EMAIL or give managers an e-mail",
            template, case_number,
        )
    if fired:
        report.fired += 1
        report.late += late
        report.emails += len(messages)
    else:
        report.lost_races += 1
    return True


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
            case: Case | None = None
            fresh = False
            if due.snapshot is not None:
                try:
                    if _fire_due(store, due, due.snapshot, recipients, settings, policies,
                                 now, report):
                        continue
                except StaleSnapshot as stale:
                    report.stale_snapshots += 1
                    case, fresh = stale.case, True  # the refusal brought the case back
            # No copy of the case, one that will not do, or one out of date: the case as
            # it is now, and no version check (the timer's own condition still holds).
            report.cases_read += 1
            if not fresh:
                case = store.get_case(due.case_id)
            _fire_due(store, replace(due, snapshot=None), case, recipients, settings,
                      policies, now, report)
        if after is None:
            break
        if time_left is not None and time_left() < 5.0:
            logger.warning("sweep stopped after %.1f s; the next one goes on",
                           time.monotonic() - started)
            break
    return report
