"""What the reports count: a case as it stood at the end of a day it changed.

The store keeps one `ReportRow` per case per (UTC) day on which the case changed, so the
report for any past period is rebuilt from the rows of its days, without reading every
case. A case that holds an old part (三包旧件) also keeps its latest row where the
monthly report finds it at any month's end, changed that month or not: an old part can be
out for months without its case changing. Each dated fact (parts shipped, an old part
back, a dispatch) is counted in the month of its own date. Pure domain code.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict

from chalicelib.domain.case import Case, CaseKind, CaseStatus, Channel, Language
from chalicelib.domain.field_service import PartsRequest
from chalicelib.domain.followup import CALL_OUTCOMES
from chalicelib.domain.messages import KIND_LABELS


class PartsEntry(BaseModel):
    """One spare-parts request as the reports count it, with its own dates."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    number: int
    amount: Decimal
    # When the money was spent: the parts shipped, or the urgent local purchase settled.
    spent_at: datetime | None = None
    paid_by_customer: bool = False  # paid work (class A): not a warranty cost
    went_to: str | None = None  # the dealer, supplier or technician the parts went to
    # The old part owed back from ``spent_at`` until it is received or the request is
    # converted into a parts sale (``old_part_back_at``, whichever came first).
    old_part_out_at: datetime | None = None
    old_part_back_at: datetime | None = None
    sold_at: datetime | None = None  # converted into a parts sale charged to the dealer
    sold_amount: Decimal = Decimal(0)

    def old_part_out(self, at: datetime) -> bool:
        """Was the old part still out at ``at``?"""
        return (
            self.old_part_out_at is not None
            and self.old_part_out_at < at
            and (self.old_part_back_at is None or self.old_part_back_at >= at)
        )


class ReportRow(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)

    case_id: str
    case_number: str
    kind: CaseKind
    status: CaseStatus
    channel: Channel
    language: Language
    owner: str | None = None
    product: str | None = None
    # Field-service facts: the unit's region and dealer (or the dealer dispatched), the
    # supplier dispatched, the service class A/B/C, the warranty parts cost (shipped or
    # bought, not charged back as a sale) and the old parts still due back.
    region: str | None = None
    dealer: str | None = None
    supplier: str | None = None
    service_class: str | None = None
    parts_cost: Decimal = Decimal(0)
    old_parts_outstanding: int = 0
    # Who the case was dispatched to (technician, dealer, supplier) and when.
    dispatch_party: str | None = None
    dispatched_at: datetime | None = None
    parts: tuple[PartsEntry, ...] = ()
    created_at: datetime
    updated_at: datetime
    first_reply_due_at: datetime | None = None
    first_replied_at: datetime | None = None
    resolve_due_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    next_due_at: datetime | None = None
    refunded_total: Decimal = Decimal(0)
    # Follow-up calls finished on this case, as (call number, outcome, recorded at).
    calls: tuple[tuple[int, str, datetime], ...] = ()
    satisfaction_rating: int | None = None
    rated_at: datetime | None = None


def _parts_entry(request: PartsRequest) -> PartsEntry:
    spent = request.shipped_at or request.settled_at
    old, sale = request.old_part, request.sale
    backs = [at for at in (old.received_at if old else None, sale.at if sale else None) if at]
    return PartsEntry(
        number=request.number,
        amount=request.amount,
        spent_at=spent if request.state in ("shipped", "settled") else None,
        paid_by_customer=request.paid_by_customer,
        went_to=request.for_party,
        old_part_out_at=spent if old is not None else None,
        old_part_back_at=min(backs) if old is not None and backs else None,
        sold_at=sale.at if sale else None,
        sold_amount=sale.amount if sale else Decimal(0),
    )


def _field_facts(case: Case) -> dict[str, object]:
    record = case.field_service
    if record is None:
        return {}
    dispatch = record.dispatch
    unit = record.unit
    dealer = unit.dealer if unit else None
    if dispatch is not None and dispatch.party.value == "dealer":
        dealer = dispatch.to
    return {
        "region": unit.region if unit else None,
        "dealer": dealer,
        "supplier": dispatch.to if dispatch and dispatch.party.value == "supplier" else None,
        "service_class": record.service_class.value if record.service_class else None,
        "parts_cost": sum(
            (r.amount for r in record.parts
             if r.state in ("shipped", "settled") and r.sale is None),
            Decimal(0),
        ),
        "old_parts_outstanding": sum(
            1 for r in record.parts
            if r.old_part is not None and r.old_part.received_at is None and r.sale is None
        ),
        "dispatch_party": dispatch.party.value if dispatch else None,
        "dispatched_at": dispatch.dispatched_at if dispatch else None,
        "parts": tuple(_parts_entry(r) for r in record.parts),
    }


def ever_owed_old_parts(row: ReportRow) -> bool:
    """Did this case ever owe an old part back (三包旧件)?"""
    return any(p.old_part_out_at is not None for p in row.parts)


def last_old_part_back(row: ReportRow) -> datetime | None:
    """When the case's last old part came back; None while one is still out. The monthly
    report reads the cases whose last old part came back at or after a month's end."""
    backs = [p.old_part_back_at for p in row.parts if p.old_part_out_at is not None]
    if not backs or any(at is None for at in backs):
        return None
    return max(at for at in backs if at is not None)


def report_row(case: Case) -> ReportRow:
    calls = tuple(
        (call.number, call.outcome, call.recorded_at)
        for call in (case.follow_up.calls if case.follow_up else ())
        if call.outcome is not None and call.recorded_at is not None
    )
    return ReportRow(
        case_id=case.case_id,
        case_number=case.case_number,
        kind=case.kind,
        status=case.status,
        channel=case.channel,
        language=case.language,
        owner=case.owner,
        product=case.product or (
            case.field_service.unit.model
            if case.field_service and case.field_service.unit else None
        ),
        created_at=case.created_at,
        updated_at=case.updated_at,
        first_reply_due_at=case.first_reply_due_at,
        first_replied_at=case.first_replied_at,
        resolve_due_at=case.resolve_due_at,
        resolved_at=case.resolved_at,
        closed_at=case.closed_at,
        next_due_at=case.next_due_at,
        refunded_total=case.refunded_total,
        calls=calls,
        satisfaction_rating=case.satisfaction.rating if case.satisfaction else None,
        rated_at=case.satisfaction.at if case.satisfaction else None,
        **_field_facts(case),
    )


NOT_RECORDED = "(not recorded)"
UNASSIGNED = "unassigned"

# Ordered (label, count) pairs: the most frequent first, ties by label.
Counts = tuple[tuple[str, int], ...]


def latest_rows(rows: Iterable[ReportRow], until: datetime) -> list[ReportRow]:
    """Each case as it stood just before ``until``: its last row changed before then.

    Rows changed at or after ``until`` (the store hands over whole UTC days, which may
    run past a local period's end) stand in only for a case opened before ``until`` with
    no earlier row: its first later row, whose dated facts (opened, resolved, called …)
    the statistics still judge by their own dates. Sorted by case number.
    """
    latest: dict[str, ReportRow] = {}
    later: dict[str, ReportRow] = {}
    for row in rows:
        if row.updated_at >= until:
            first = later.get(row.case_id)
            if row.created_at >= until:
                continue  # opened after the period
            if first is None or row.updated_at < first.updated_at:
                later[row.case_id] = row
            continue
        kept = latest.get(row.case_id)
        if kept is None or row.updated_at > kept.updated_at:
            latest[row.case_id] = row
    for case_id, row in later.items():
        latest.setdefault(case_id, row)
    return sorted(latest.values(), key=lambda row: row.case_number)


def _within(moment: datetime | None, start: datetime, end: datetime) -> bool:
    return moment is not None and start <= moment < end


def _counts(labels: Iterable[str | None]) -> Counts:
    counter = Counter(NOT_RECORDED if label is None else label for label in labels)
    return tuple(sorted(counter.items(), key=lambda item: (-item[1], item[0])))


def _hours(since: datetime, until: datetime) -> float:
    return (until - since).total_seconds() / 3600


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


# --- The daily e-mail -----------------------------------------------------------------


@dataclass(frozen=True)
class OverdueCase:
    """An open case whose next deadline has passed."""

    case_number: str
    owner: str | None
    next_due_at: datetime | None


@dataclass(frozen=True)
class OwnerDay:
    """One agent's day; cases nobody owns are counted under "unassigned"."""

    owner: str
    opened: int = 0
    resolved: int = 0
    closed: int = 0
    overdue: int = 0


@dataclass(frozen=True)
class DailySummary:
    """The service and repair record of one day, as e-mailed every morning.

    ``start`` and ``end`` are as the caller gives them; in the company's time zone they
    make the e-mail show local dates and times.
    """

    start: datetime
    end: datetime
    opened: int
    resolved: int
    closed: int
    opened_by_kind: Counts
    resolved_by_kind: Counts
    closed_by_kind: Counts
    overdue: tuple[OverdueCase, ...]
    by_owner: tuple[OwnerDay, ...]

    def lines(self, language: str) -> list[str]:
        """The e-mail text, in Chinese ("zh") or English ("en")."""
        zh = Language(language) is Language.ZH
        day = self.start.strftime("%Y-%m-%d")
        if zh:
            lines = [
                f"{day} 售后服务日报",
                f"新开案件：{self.opened}　已解决：{self.resolved}　已关闭：{self.closed}"
                f"　逾期未处理：{len(self.overdue)}",
            ]
        else:
            lines = [
                f"After-sales service report for {day}",
                f"Opened: {self.opened}  Resolved: {self.resolved}  Closed: {self.closed}"
                f"  Overdue: {len(self.overdue)}",
            ]
        for title_zh, title_en, counts in (
            ("新开案件类别", "Opened by kind", self.opened_by_kind),
            ("已解决案件类别", "Resolved by kind", self.resolved_by_kind),
        ):
            if counts:
                kinds = ", ".join(f"{_kind_label(label, language)} {n}" for label, n in counts)
                lines.append(f"{title_zh}：{kinds}" if zh else f"{title_en}: {kinds}")
        if self.overdue:
            lines.append("逾期案件：" if zh else "Overdue cases:")
            for case in self.overdue:
                owner = case.owner or ("未分配" if zh else UNASSIGNED)
                due = (
                    case.next_due_at.astimezone(self.start.tzinfo).strftime("%Y-%m-%d %H:%M")
                    if case.next_due_at
                    else "-"
                )
                lines.append(
                    f"- {case.case_number}（{owner}，应于 {due} 前处理）"
                    if zh
                    else f"- {case.case_number} ({owner}, due {due})"
                )
        if self.by_owner:
            lines.append("按负责人：" if zh else "By owner:")
            for o in self.by_owner:
                name = "未分配" if zh and o.owner == UNASSIGNED else o.owner
                lines.append(
                    f"- {name}：新开 {o.opened}，解决 {o.resolved}，关闭 {o.closed}，"
                    f"逾期 {o.overdue}"
                    if zh
                    else f"- {name}: opened {o.opened}, resolved {o.resolved}, "
                    f"closed {o.closed}, overdue {o.overdue}"
                )
        return lines


def _kind_label(value: str, language: str) -> str:
    try:
        return KIND_LABELS[Language(language)][CaseKind(value)]
    except ValueError:
        return value


def daily_summary(
    rows: Iterable[ReportRow], overdue: list[ReportRow], start: datetime, end: datetime
) -> DailySummary:
    """What happened in [start, end): cases opened, resolved and closed, and what is
    overdue now (``overdue``: the open cases with a missed deadline)."""
    cases = latest_rows(rows, end)
    opened = [row for row in cases if _within(row.created_at, start, end)]
    resolved = [row for row in cases if _within(row.resolved_at, start, end)]
    closed = [row for row in cases if _within(row.closed_at, start, end)]
    late = sorted(
        overdue,
        key=lambda row: (row.next_due_at is None, row.next_due_at or end, row.case_number),
    )
    tally: dict[str, Counter[str]] = {}
    for what, group in (
        ("opened", opened),
        ("resolved", resolved),
        ("closed", closed),
        ("overdue", late),
    ):
        for row in group:
            tally.setdefault(row.owner or UNASSIGNED, Counter())[what] += 1
    by_owner = tuple(
        OwnerDay(owner=owner, **counts)
        for owner, counts in sorted(
            tally.items(), key=lambda item: (item[0] == UNASSIGNED, item[0])
        )
    )
    return DailySummary(
        start=start,
        end=end,
        opened=len(opened),
        resolved=len(resolved),
        closed=len(closed),
        opened_by_kind=_counts(row.kind.value for row in opened),
        resolved_by_kind=_counts(row.kind.value for row in resolved),
        closed_by_kind=_counts(row.kind.value for row in closed),
        overdue=tuple(OverdueCase(row.case_number, row.owner, row.next_due_at) for row in late),
        by_owner=by_owner,
    )


# --- The monthly statistics -----------------------------------------------------------


@dataclass(frozen=True)
class TimeToTarget:
    """How fast we were: the cases, their median hours, how many met the target."""

    cases: int
    median_hours: float | None
    within_target: int

    @property
    def late(self) -> int:
        return self.cases - self.within_target


@dataclass(frozen=True)
class Satisfaction:
    """What customers said: follow-up call outcomes (回访) and their ratings (1..5)."""

    calls: Counts  # every outcome, in CALL_OUTCOMES order
    satisfied_share: float | None  # satisfied among answered calls
    ratings: int
    average_rating: float | None
    by_rating: tuple[tuple[int, int], ...]  # (rating, count) for 1..5


@dataclass(frozen=True)
class MonthlyStatistics:
    """The monthly statistics summary and analysis report (due by the 5th)."""

    start: datetime
    end: datetime
    opened: int
    resolved: int
    closed: int
    by_kind: Counts
    by_product: Counts
    by_region: Counts
    by_dealer: Counts
    by_supplier: Counts
    first_reply: TimeToTarget
    completion: TimeToTarget
    by_service_class: Counts  # A paid, B contract, C free warranty
    parts_cost: Decimal  # warranty parts shipped or bought in the month
    parts_sold: Decimal  # warranty parts converted into sales to dealers in the month
    refunded: Decimal  # of the cases resolved in the month
    old_parts_outstanding: int  # at the month's end
    old_parts_by_holder: Counts  # … by the dealer, supplier or technician holding them
    satisfaction: Satisfaction


def _time_to_target(
    rows: list[ReportRow],
    done: Callable[[ReportRow], datetime | None],
    due: Callable[[ReportRow], datetime | None],
) -> TimeToTarget:
    """Hours from opening to ``done``; a case with no target counts as within it."""
    hours: list[float] = []
    within = 0
    for row in rows:
        done_at, due_at = done(row), due(row)
        if done_at is None:
            continue
        hours.append(_hours(row.created_at, done_at))
        if due_at is None or done_at <= due_at:
            within += 1
    return TimeToTarget(cases=len(hours), median_hours=_median(hours), within_target=within)


def monthly_statistics(
    rows: Iterable[ReportRow],
    start: datetime,
    end: datetime,
    old_parts: Iterable[ReportRow] = (),
) -> MonthlyStatistics:
    """The month [start, end) from each case as it stood at the month's end.

    Cases are counted by kind, product, region and service class in the month they were
    opened; by dealer and supplier in the month they were dispatched to one; parts cost
    in the month the parts were shipped (or the local purchase settled), parts sold in
    the month of the sale. ``old_parts`` are rows (any, the latest best) of the cases
    that may hold an old part at the month's end though they did not change in it; each
    old part is counted by its own dates: out before the end and not back by then.
    """
    cases = latest_rows(rows, end)
    opened = [row for row in cases if _within(row.created_at, start, end)]
    dispatched = [row for row in cases if _within(row.dispatched_at, start, end)]
    parts = [entry for row in cases for entry in row.parts]
    holding = {row.case_id: row for row in cases}
    holding.update((row.case_id, row) for row in old_parts if row.created_at < end)
    out = [
        entry for row in holding.values() for entry in row.parts if entry.old_part_out(end)
    ]
    replied = [row for row in cases if _within(row.first_replied_at, start, end)]
    resolved = [row for row in cases if _within(row.resolved_at, start, end)]

    first_reply = _time_to_target(
        replied, lambda row: row.first_replied_at, lambda row: row.first_reply_due_at
    )
    completion = _time_to_target(
        resolved, lambda row: row.resolved_at, lambda row: row.resolve_due_at
    )

    outcomes = Counter(
        outcome for row in cases for _, outcome, at in row.calls if _within(at, start, end)
    )
    answered = outcomes["satisfied"] + outcomes["not_satisfied"] + outcomes["question"]
    ratings = [
        row.satisfaction_rating
        for row in cases
        if row.satisfaction_rating is not None and _within(row.rated_at, start, end)
    ]
    satisfaction = Satisfaction(
        calls=tuple((outcome, outcomes[outcome]) for outcome in CALL_OUTCOMES),
        satisfied_share=outcomes["satisfied"] / answered if answered else None,
        ratings=len(ratings),
        average_rating=statistics.fmean(ratings) if ratings else None,
        by_rating=tuple((rating, ratings.count(rating)) for rating in range(1, 6)),
    )

    return MonthlyStatistics(
        start=start,
        end=end,
        opened=len(opened),
        resolved=len(resolved),
        closed=sum(1 for row in cases if _within(row.closed_at, start, end)),
        by_kind=_counts(row.kind.value for row in opened),
        by_product=_counts(row.product for row in opened),
        by_region=_counts(row.region for row in opened),
        by_dealer=_counts(row.dealer for row in dispatched if row.dispatch_party == "dealer"),
        by_supplier=_counts(
            row.supplier for row in dispatched if row.dispatch_party == "supplier"
        ),
        first_reply=first_reply,
        completion=completion,
        by_service_class=_counts(row.service_class for row in opened),
        parts_cost=sum(
            (
                entry.amount for entry in parts
                if not entry.paid_by_customer and _within(entry.spent_at, start, end)
            ),
            Decimal(0),
        ),
        parts_sold=sum(
            (entry.sold_amount for entry in parts if _within(entry.sold_at, start, end)),
            Decimal(0),
        ),
        refunded=sum((row.refunded_total for row in resolved), Decimal(0)),
        old_parts_outstanding=len(out),
        old_parts_by_holder=_counts(entry.went_to for entry in out),
        satisfaction=satisfaction,
    )
