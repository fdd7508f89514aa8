"""The daily summary and the monthly statistics report [004].

Both are built from the report rows (one per case per day it changed), never from a Scan,
and both are sent once: the report is claimed with a conditional write in the same
transaction as its e-mails (the outbox), so a schedule that fires twice, or again after a
failure, sends nothing twice. The monthly workbook is kept in S3 for the e-mail's
attachment and for staff to download; any past month can be rebuilt on demand. The
e-mailed workbook has a key of its own build (``reports/sent/…``), written once and never
overwritten: a staff download rebuilding the month meanwhile cannot change the attachment.
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from chalicelib.domain.case import OPEN_STATUSES, Case
from chalicelib.domain.policies import Policies
from chalicelib.domain.reports import (
    DailySummary,
    MonthlyStatistics,
    ReportRow,
    daily_summary,
    monthly_statistics,
    report_row,
)
from chalicelib.domain.staff import Role, StaffMember
from chalicelib.services.ports import CaseFilter, OutboxMessage
from chalicelib.services.recipients import MANAGERS, SUPERVISORS, Address, Recipients
from chalicelib.settings import Settings

logger = logging.getLogger(__name__)

MONTH = re.compile(r"^(?P<year>\d{4})-(?P<month>0[1-9]|1[0-2])$")


class ReportStore(Protocol):
    def report_rows(self, first: datetime, last: datetime) -> list[ReportRow]: ...

    def old_parts_rows(self, at: datetime) -> list[ReportRow]: ...

    def list_cases(self, where: CaseFilter) -> list[Case]: ...

    def list_staff(self) -> list[StaffMember]: ...

    def report_sent(self, name: str) -> bool: ...

    def claim_report(self, name: str, outbox: list[OutboxMessage], now: datetime) -> bool: ...


class ReportFiles(Protocol):
    def put(self, key: str, body: bytes, content_type: str) -> None: ...


class BadMonth(ValueError):
    pass


def parse_month(text: str) -> date:
    """'2026-10' → the first of that month."""
    match = MONTH.match(text.strip())
    if match is None:
        raise BadMonth(f"not a month: {text!r} (write it as YYYY-MM, e.g. 2026-10)")
    return date(int(match["year"]), int(match["month"]), 1)


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def _next_month(first: date) -> date:
    return date(first.year + first.month // 12, first.month % 12 + 1, 1)


def _recipients(store: ReportStore, settings: Settings, roles: frozenset[Role]) -> list[Address]:
    people = Recipients(store, settings)
    return people.centre() + people.with_roles(roles)


def _messages(
    template: str,
    partition: str,
    people: list[Address],
    settings: Settings,
    lines: list[str],
    subject_detail: str,
    now: datetime,
    attachment: dict[str, str] | None = None,
) -> list[OutboxMessage]:
    return [
        OutboxMessage(
            message_id=uuid.uuid4().hex,
            case_id="",
            template=template,
            payload={
                "to": address,
                "to_name": name,
                "language": settings.default_language.value,
                "lines": lines,
                "subject_detail": subject_detail,
                **({"attachment": attachment} if attachment else {}),
            },
            due_at=now,
            partition=partition,
        )
        for name, address in people
    ]


# -- daily ---------------------------------------------------------------------------------


def build_daily_summary(store: ReportStore, policies: Policies, day: date) -> DailySummary:
    """What happened on that local day, and what is overdue at its end."""
    zone = ZoneInfo(policies.calendar.timezone)
    start, end = _local_midnight(day, zone), _local_midnight(day + timedelta(days=1), zone)
    rows = store.report_rows(start, end)
    overdue_cases = store.list_cases(
        CaseFilter(
            statuses=frozenset(s.value for s in OPEN_STATUSES), overdue_at=end, limit=500
        )
    )
    return daily_summary(
        rows,
        [report_row(case) for case in overdue_cases],
        start.astimezone(zone),
        end.astimezone(zone),
    )


@dataclass(frozen=True)
class Sent:
    name: str
    sent: bool
    recipients: int
    reason: str = ""


def send_daily_summary(
    store: ReportStore, settings: Settings, policies: Policies, now: datetime
) -> Sent:
    """Yesterday's summary (local time) to the service centre, once."""
    zone = ZoneInfo(policies.calendar.timezone)
    day = now.astimezone(zone).date() - timedelta(days=1)
    name = f"daily#{day.isoformat()}"
    if store.report_sent(name):  # the usual case after the first run (cheap: one read)
        return Sent(name, False, 0, "already sent")
    people = _recipients(store, settings, SUPERVISORS)
    if not people:
        return Sent(name, False, 0, "nobody to send it to: set SERVICE_DESK_SERVICE_CENTRE_EMAIL")
    summary = build_daily_summary(store, policies, day)
    lines = summary.lines(settings.default_language.value)
    messages = _messages(
        "daily_summary", f"REPORT#{name}", people, settings, lines, day.isoformat(), now
    )
    if not store.claim_report(name, messages, now):
        return Sent(name, False, 0, "already sent")
    return Sent(name, True, len(messages))


# -- monthly -------------------------------------------------------------------------------


def build_monthly(store: ReportStore, policies: Policies, month: date) -> MonthlyStatistics:
    """The statistics of a local calendar month, from the rows of its days and the rows
    of the cases holding old parts at its end."""
    zone = ZoneInfo(policies.calendar.timezone)
    start = _local_midnight(month, zone)
    end = _local_midnight(_next_month(month), zone)
    return monthly_statistics(
        store.report_rows(start, end), start, end, old_parts=store.old_parts_rows(end)
    )


def monthly_file_key(month: date, build: str | None = None) -> str:
    """Where a month's workbook is kept: the one staff download (rebuilt on each
    download), or, with ``build``, one e-mailed build that nothing overwrites."""
    if build is None:
        return f"reports/monthly-{month:%Y-%m}.xlsx"
    return f"reports/sent/monthly-{month:%Y-%m}-{build}.xlsx"


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def build_monthly_workbook(
    store: ReportStore, files: ReportFiles | None, settings: Settings, policies: Policies,
    month: date, key: str | None = None,
) -> tuple[MonthlyStatistics, bytes]:
    """The month's workbook; kept in the report files when given, under ``key`` (by
    default the month's download key)."""
    from chalicelib.adapters.report_workbook import monthly_workbook

    stats = build_monthly(store, policies, month)
    body = monthly_workbook(stats, company_name=settings.company_name,
                            month_label=f"{month:%Y-%m}")
    if files is not None:
        files.put(key or monthly_file_key(month), body, XLSX)
    return stats, body


def send_monthly_report(
    store: ReportStore,
    files: ReportFiles,
    settings: Settings,
    policies: Policies,
    now: datetime,
    month: date | None = None,
) -> Sent:
    """Last month's report (or the month given) to the managers, once."""
    zone = ZoneInfo(policies.calendar.timezone)
    if month is None:
        this_month = now.astimezone(zone).date().replace(day=1)
        month = (this_month - timedelta(days=1)).replace(day=1)
    name = f"monthly#{month:%Y-%m}"
    if store.report_sent(name):
        return Sent(name, False, 0, "already sent")
    people = _recipients(store, settings, MANAGERS)
    if not people:
        return Sent(name, False, 0, "nobody to send it to: give the managers an e-mail "
                    "or set SERVICE_DESK_SERVICE_CENTRE_EMAIL")
    # This build's own key: the outbox attaches exactly what was built here, whatever
    # downloads rebuild under the month's download key before it is sent.
    key = monthly_file_key(month, build=f"{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:12]}")
    stats, _ = build_monthly_workbook(store, files, settings, policies, month, key=key)
    lines = [
        f"{month:%Y-%m}: opened {stats.opened}, resolved {stats.resolved}, "
        f"closed {stats.closed}",
    ]
    attachment = {"key": key, "filename": f"service-report-{month:%Y-%m}.xlsx"}
    messages = _messages(
        "monthly_report", f"REPORT#{name}", people, settings, lines, f"{month:%Y-%m}", now,
        attachment,
    )
    if not store.claim_report(name, messages, now):
        return Sent(name, False, 0, "already sent")
    return Sent(name, True, len(messages))
