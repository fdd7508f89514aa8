"""The reports: a case as it stood at a period's end, the daily e-mail, the monthly
statistics and their workbook. Expected figures are counted here with plain loops."""

from __future__ import annotations

import random
import statistics
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import BytesIO
from typing import Any
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from openpyxl.chart import BarChart, PieChart

from chalicelib.adapters.report_workbook import monthly_workbook
from chalicelib.domain.case import CaseKind, CaseStatus, Channel, Language
from chalicelib.domain.messages import KIND_LABELS
from chalicelib.domain.reports import (
    MonthlyStatistics,
    PartsEntry,
    ReportRow,
    daily_summary,
    latest_rows,
    monthly_statistics,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
# March 2025 in the company's time zone: its first and last UTC days are only partly in it.
START = datetime(2025, 3, 1, tzinfo=SHANGHAI).astimezone(UTC)
END = datetime(2025, 4, 1, tzinfo=SHANGHAI).astimezone(UTC)
FORMULA = '=HYPERLINK("http://x")'
PRODUCTS = ["Kettle K2", "Fan F1", "Heater H9", FORMULA, "+86 adapter", None]
REGIONS = ["East", "North", "South", None]
DEALERS = ["Dealer A", "Dealer B", "-dash dealer", None]
SUPPLIERS = ["Supplier X", "Supplier Y", None]
CLASSES = ["A", "B", "C", None]
PARTIES = ["technician", "dealer", "supplier", None]
HOLDERS = ["east", "north", "tom", None]
OUTCOMES = ["satisfied", "not_satisfied", "no_answer", "question"]
SHEETS = [
    "Summary",
    "By kind",
    "By product",
    "By region",
    "By dealer",
    "By supplier",
    "Response times",
    "Warranty vs paid",
    "Parts and old parts",
    "Satisfaction",
]


def row(number: int, updated_at: datetime, **fields: Any) -> ReportRow:
    values: dict[str, Any] = {
        "case_id": f"case-{number}",
        "case_number": f"AS-{number:04d}",
        "kind": CaseKind.QUALITY_PROBLEM,
        "status": CaseStatus.NEW,
        "channel": Channel.WEB_FORM,
        "language": Language.ZH,
        "created_at": updated_at,
        "updated_at": updated_at,
    }
    values.update(fields)
    return ReportRow(**values)


@dataclass
class Month:
    rows: list[ReportRow]
    at_end: list[ReportRow]  # each case as the generator left it before the month's end


def generated_month(seed: int = 7, cases: int = 60) -> Month:
    """Cases opened around March 2025, each with one to three rows on different days,
    some changed again after the month's end (those changes must not count)."""
    rnd = random.Random(seed)
    kinds = list(CaseKind)
    rows: list[ReportRow] = []
    at_end: list[ReportRow] = []
    span = (END - START) + timedelta(days=4)
    for n in range(cases):
        created = (
            START - timedelta(days=3) + timedelta(seconds=rnd.randrange(int(span.total_seconds())))
        )
        if n == 0:
            created = START  # the first instant of the month counts
        base = {
            "kind": kinds[n % len(kinds)],
            "owner": rnd.choice(["li", "wang", None]),
            "product": PRODUCTS[n % len(PRODUCTS)],
            "region": rnd.choice(REGIONS),
            "dealer": rnd.choice(DEALERS),
            "supplier": rnd.choice(SUPPLIERS),
            "service_class": rnd.choice(CLASSES),
            "created_at": created,
            "first_reply_due_at": created + timedelta(hours=8),
            "resolve_due_at": created + timedelta(days=3) if n % 5 else None,
        }
        # The day it was opened: nothing done yet.
        opening = row(n, created + timedelta(minutes=5), **base)
        rows.append(opening)
        # A later day: replied, maybe resolved, called back and rated.
        later = created + timedelta(days=rnd.randint(1, 6), hours=rnd.randint(0, 12))
        replied = created + timedelta(hours=rnd.uniform(0.5, 12))
        resolved = created + timedelta(hours=rnd.uniform(10, 130)) if n % 3 else None
        calls: tuple[tuple[int, str, datetime], ...] = ()
        rating = rated = None
        if resolved is not None and n % 2:
            calls = ((1, OUTCOMES[(n // 2) % 4], resolved + timedelta(hours=2)),)
            if n % 4 == 1:
                rating, rated = 1 + n % 5, resolved + timedelta(hours=3)
        later = max([later, replied, *(at for _, _, at in calls), *([rated] if rated else [])])
        party = PARTIES[n % len(PARTIES)]
        dispatched = created + timedelta(hours=rnd.uniform(1, 30)) if party else None
        parts = []
        for number in range(1, rnd.randint(0, 2) + 1):
            spent = created + timedelta(hours=rnd.uniform(2, 100))
            old = n % 3 != 1
            back = spent + timedelta(days=rnd.uniform(1, 40)) if old and n % 2 else None
            sold = back if back is not None and number == 2 else None
            parts.append(PartsEntry(
                number=number, amount=Decimal(rnd.randint(1, 400)) / 4, spent_at=spent,
                paid_by_customer=n % 6 == 0, went_to=rnd.choice(HOLDERS),
                old_part_out_at=spent if old else None, old_part_back_at=back,
                sold_at=sold, sold_amount=Decimal(30) if sold else Decimal(0),
            ))
        later = max([later, *(e.spent_at for e in parts if e.spent_at),
                     *(e.old_part_back_at for e in parts if e.old_part_back_at),
                     *([dispatched] if dispatched else [])])
        final = row(
            n,
            later + timedelta(minutes=1),
            **base,
            status=CaseStatus.RESOLVED if resolved else CaseStatus.IN_PROGRESS,
            first_replied_at=replied,
            resolved_at=resolved,
            closed_at=resolved + timedelta(hours=4) if resolved and n % 4 == 0 else None,
            refunded_total=Decimal(rnd.randint(0, 100)) if resolved else Decimal(0),
            dispatch_party=party,
            dispatched_at=dispatched,
            parts=tuple(parts),
            calls=calls,
            satisfaction_rating=rating,
            rated_at=rated,
        )
        rows.append(final)
        # Some cases change again after the month: another product, more calls, closed.
        if n % 7 == 0:
            after = max(END, final.updated_at) + timedelta(hours=rnd.randint(0, 20))
            rows.append(
                final.model_copy(
                    update={
                        "updated_at": after,
                        "product": "Changed later",
                        "closed_at": after,
                        "dispatch_party": "dealer",
                        "dispatched_at": after,
                        "calls": (*calls, (2, "satisfied", after)),
                    }
                )
            )
        if final.updated_at < END:
            at_end.append(final)
        elif opening.updated_at < END:
            at_end.append(opening)  # opened in the month, next changed after it
    rnd.shuffle(rows)
    return Month(rows=rows, at_end=at_end)


def in_month(moment: datetime | None) -> bool:
    return moment is not None and START <= moment < END


def ranked(counts: dict[str, int]) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def tally(values: list[str | None]) -> list[tuple[str, int]]:
    counts: dict[str, int] = defaultdict(int)
    for value in values:
        counts["(not recorded)" if value is None else value] += 1
    return ranked(counts)


# --- latest_rows ----------------------------------------------------------------------


def test_latest_row_is_the_last_change_before_the_end() -> None:
    day = datetime(2025, 3, 10, tzinfo=UTC)
    rows = [
        row(2, day, product="first"),
        row(2, day + timedelta(days=1), product="second"),
        row(2, day + timedelta(days=2), product="after the end"),
        row(1, day + timedelta(days=1, hours=23), product="only"),
        row(3, day + timedelta(days=2), product="changed only after"),
    ]
    latest = latest_rows(rows, day + timedelta(days=2))
    assert [(r.case_number, r.product) for r in latest] == [
        ("AS-0001", "only"),
        ("AS-0002", "second"),
    ]


def test_a_case_opened_late_on_the_last_local_day_still_counts_in_its_month() -> None:
    """Shanghai's month ends at 16:00 UTC; a case opened at 15:00 UTC and changed again at
    20:00 UTC has only one row for that UTC day, written after the local month ended."""
    end = datetime(2025, 3, 31, 16, 0, tzinfo=UTC)
    start = datetime(2025, 2, 28, 16, 0, tzinfo=UTC)
    late = row(9, end + timedelta(hours=4), created_at=end - timedelta(hours=1),
               product="opened in March")
    after = row(10, end + timedelta(hours=5), product="opened in April")
    assert [r.case_number for r in latest_rows([late, after], end)] == ["AS-0009"]
    stats = monthly_statistics([late, after], start, end)
    assert stats.opened == 1
    assert stats.by_product == (("opened in March", 1),)


def test_the_generated_month_ends_as_the_generator_left_it() -> None:
    month = generated_month()
    expected = sorted(month.at_end, key=lambda r: r.case_number)
    assert latest_rows(month.rows, END) == expected


# --- the monthly statistics -----------------------------------------------------------


def test_monthly_statistics_match_the_cases_counted_by_hand() -> None:
    month = generated_month()
    cases = month.at_end
    stats = monthly_statistics(month.rows, START, END)

    opened = [r for r in cases if in_month(r.created_at)]
    assert any(r.created_at == START for r in opened)
    assert stats.opened == len(opened) > 20
    assert list(stats.by_kind) == tally([r.kind.value for r in opened])
    assert list(stats.by_product) == tally([r.product for r in opened])
    assert list(stats.by_region) == tally([r.region for r in opened])
    # Dealers and suppliers: the cases sent to one in the month, opened in it or before.
    dispatched = [r for r in cases if in_month(r.dispatched_at)]
    assert any(not in_month(r.created_at) for r in dispatched)
    assert list(stats.by_dealer) == tally(
        [r.dealer for r in dispatched if r.dispatch_party == "dealer"])
    assert list(stats.by_supplier) == tally(
        [r.supplier for r in dispatched if r.dispatch_party == "supplier"])
    assert list(stats.by_service_class) == tally([r.service_class for r in opened])
    assert ("Changed later", 1) not in stats.by_product

    replied = [r for r in cases if in_month(r.first_replied_at)]
    assert stats.first_reply.cases == len(replied)
    hours = sorted(
        (r.first_replied_at - r.created_at).total_seconds() / 3600
        for r in replied
        if r.first_replied_at
    )
    assert stats.first_reply.median_hours == pytest.approx(statistics.median(hours))
    on_time = 0
    for r in replied:
        assert r.first_replied_at and r.first_reply_due_at
        if r.first_replied_at <= r.first_reply_due_at:
            on_time += 1
    assert stats.first_reply.within_target == on_time
    assert 0 < on_time < len(replied)

    resolved = [r for r in cases if in_month(r.resolved_at)]
    assert stats.resolved == stats.completion.cases == len(resolved)
    hours = [
        (r.resolved_at - r.created_at).total_seconds() / 3600 for r in resolved if r.resolved_at
    ]
    assert stats.completion.median_hours == pytest.approx(statistics.median(hours))
    on_time = 0
    for r in resolved:
        assert r.resolved_at
        if r.resolve_due_at is None or r.resolved_at <= r.resolve_due_at:
            on_time += 1
    assert stats.completion.within_target == on_time
    assert stats.closed == sum(1 for r in cases if in_month(r.closed_at))

    # Parts: in the month they were shipped or bought, whenever the case was opened; parts
    # the customer paid for are no warranty cost; sales in the month of the sale.
    parts = sold = Decimal(0)
    out = 0
    spent_on_older_cases = False
    for r in cases:
        for entry in r.parts:
            if in_month(entry.spent_at) and not entry.paid_by_customer:
                parts += entry.amount
                spent_on_older_cases |= not in_month(r.created_at)
            if in_month(entry.sold_at):
                sold += entry.sold_amount
            if (entry.old_part_out_at is not None and entry.old_part_out_at < END
                    and (entry.old_part_back_at is None or entry.old_part_back_at >= END)):
                out += 1
    assert spent_on_older_cases and sold > 0 and out > 0
    refunds = Decimal(0)
    for r in resolved:
        refunds += r.refunded_total
    assert stats.parts_cost == parts and isinstance(stats.parts_cost, Decimal)
    assert stats.parts_sold == sold
    assert stats.refunded == refunds and isinstance(stats.refunded, Decimal)
    assert stats.old_parts_outstanding == out

    outcomes = dict.fromkeys(OUTCOMES, 0)
    for r in cases:
        for _, outcome, at in r.calls:
            if in_month(at):
                outcomes[outcome] += 1
    said = stats.satisfaction
    assert dict(said.calls) == outcomes
    answered = outcomes["satisfied"] + outcomes["not_satisfied"] + outcomes["question"]
    assert answered > 0
    assert said.satisfied_share == pytest.approx(outcomes["satisfied"] / answered)
    ratings = [
        r.satisfaction_rating
        for r in cases
        if r.satisfaction_rating is not None and in_month(r.rated_at)
    ]
    assert said.ratings == len(ratings) > 0
    assert said.average_rating == pytest.approx(sum(ratings) / len(ratings))
    assert said.by_rating == tuple((n, ratings.count(n)) for n in range(1, 6))


def test_an_empty_month_has_no_medians_and_no_shares() -> None:
    stats = monthly_statistics([], START, END)
    assert stats.opened == 0 and stats.by_kind == ()
    assert stats.first_reply.median_hours is None
    assert stats.completion.median_hours is None
    assert stats.satisfaction.satisfied_share is None
    assert stats.satisfaction.average_rating is None
    assert stats.parts_cost == Decimal(0)


def test_a_reply_with_no_target_counts_as_within_it() -> None:
    at = START + timedelta(days=1)
    rows = [
        row(1, at, first_replied_at=at, first_reply_due_at=None),
        row(2, at, first_replied_at=at, first_reply_due_at=at - timedelta(hours=1)),
        row(3, at, first_replied_at=at, first_reply_due_at=at),
    ]
    first = monthly_statistics(rows, START, END).first_reply
    assert (first.cases, first.within_target, first.late) == (3, 2, 1)


# --- the workbook ---------------------------------------------------------------------


def load(stats: MonthlyStatistics) -> openpyxl.Workbook:
    data = monthly_workbook(stats, company_name="Acme 售后", month_label="2025-03")
    return openpyxl.load_workbook(BytesIO(data))


def table(sheet: Any) -> dict[Any, Any]:
    """The first two columns under the header, down to the first empty row."""
    found: dict[Any, Any] = {}
    for label, value in sheet.iter_rows(min_row=2, max_col=2, values_only=True):
        if label is None:
            break
        found[label] = value
    return found


def test_the_workbook_shows_the_figures_counted_by_hand() -> None:
    month = generated_month()
    opened = [r for r in month.at_end if in_month(r.created_at)]
    book = load(monthly_statistics(month.rows, START, END))
    assert book.sheetnames == SHEETS

    for title in SHEETS[1:6]:
        sheet = book[title]
        assert [type(chart) for chart in sheet._charts] == [BarChart]
        assert sheet.freeze_panes == "A2"
        assert sheet["A1"].font.b and sheet["B1"].value == "Cases 案件数"
        assert sheet.column_dimensions["A"].width > 10
    assert [type(c) for c in book["Response times"]._charts] == [BarChart]
    assert [type(c) for c in book["Warranty vs paid"]._charts] == [PieChart]
    assert [type(c) for c in book["Satisfaction"]._charts] == [PieChart]

    by_product: dict[str, int] = defaultdict(int)
    by_dealer: dict[str, int] = defaultdict(int)
    by_kind: dict[str, int] = defaultdict(int)
    for r in month.at_end:
        if in_month(r.dispatched_at) and r.dispatch_party == "dealer":
            by_dealer[r.dealer or "(not recorded)"] += 1
    for r in opened:
        by_product[r.product or "(not recorded)"] += 1
        label = f"{KIND_LABELS[Language.EN][r.kind]} {KIND_LABELS[Language.ZH][r.kind]}"
        by_kind[label] += 1
    assert table(book["By product"]) == by_product
    assert table(book["By dealer"]) == by_dealer
    assert table(book["By kind"]) == by_kind
    for cell in book["By product"]["B"][1:]:
        assert cell.data_type == "n" and isinstance(cell.value, int)

    # Customer-typed names that look like formulas stay text.
    cells = [c for c in book["By product"]["A"] if c.value == FORMULA]
    assert len(cells) == 1 and cells[0].data_type == "s"
    assert [c.value for c in book["By product"]["A"] if c.data_type == "f"] == []
    assert "-dash dealer" in table(book["By dealer"])

    summary = table(book["Summary"])
    assert summary["Company 公司"] == "Acme 售后"
    assert summary["Month 月份"] == "2025-03"
    assert summary["Cases opened 新开案件"] == len(opened)

    resolved = [r for r in month.at_end if in_month(r.resolved_at)]
    late = sum(
        1
        for r in resolved
        if r.resolve_due_at and r.resolved_at and r.resolved_at > r.resolve_due_at
    )
    times = tuple(cell.value for cell in book["Response times"][3])
    assert times[:4] == ("Completion 完成", len(resolved) - late, late, len(resolved))

    stats = monthly_statistics(month.rows, START, END)
    parts = table(book["Parts and old parts"])
    assert parts["Warranty parts shipped or bought 当月发出或采购的三包备件费用"] == (
        pytest.approx(float(stats.parts_cost)))
    assert parts["Converted into parts sales to dealers 当月转为经销商备件销售"] == (
        pytest.approx(float(stats.parts_sold)))
    sheet = book["Parts and old parts"]
    column_a = [c.value for c in sheet["A"]]
    top = column_a.index("Old parts outstanding 未返还旧件") + 1
    assert sheet.cell(row=top, column=2).value == stats.old_parts_outstanding > 0
    held = {
        sheet.cell(row=r, column=1).value: sheet.cell(row=r, column=2).value
        for r in range(top + 3, sheet.max_row + 1)
    }
    assert held == dict(stats.old_parts_by_holder)
    assert sum(held.values()) == stats.old_parts_outstanding
    # Every sheet with figures has its chart; the parts sheet one for money, one for parts.
    assert [type(c) for c in sheet._charts] == [BarChart, BarChart]
    assert [type(c) for c in book["Summary"]._charts] == [BarChart]


def test_an_empty_month_still_has_headers_none_rows_and_charts() -> None:
    book = load(monthly_statistics([], START, END))
    assert book.sheetnames == SHEETS
    for title in [*SHEETS[1:6], "Warranty vs paid", "Satisfaction"]:
        sheet = book[title]
        assert sheet["A1"].value and sheet["A1"].font.b
        assert (sheet["A2"].value, sheet["B2"].value) == ("(none)", 0)
        assert len(sheet._charts) == 1
    assert all(sheet._charts for sheet in book.worksheets)


def test_a_formula_looking_company_name_stays_text() -> None:
    data = monthly_workbook(
        monthly_statistics([], START, END), company_name="=1+1", month_label="@month"
    )
    sheet = openpyxl.load_workbook(BytesIO(data))["Summary"]
    assert (sheet["B2"].value, sheet["B2"].data_type) == ("=1+1", "s")
    assert (sheet["B3"].value, sheet["B3"].data_type) == ("@month", "s")


# --- the daily e-mail -----------------------------------------------------------------

DAY_START = datetime(2025, 3, 10, tzinfo=SHANGHAI)
DAY_END = DAY_START + timedelta(days=1)


def test_the_day_counts_from_its_start_up_to_but_not_including_its_end() -> None:
    before = DAY_START - timedelta(seconds=1)
    rows = [
        row(1, DAY_START, created_at=DAY_START, owner="li"),  # opened at the start: counted
        row(2, DAY_END, created_at=DAY_END),  # changed only at the end: not in the day
        row(3, DAY_START + timedelta(hours=5), created_at=before, resolved_at=DAY_START),
        row(4, DAY_START + timedelta(hours=6), created_at=before, resolved_at=DAY_END),
        row(
            5,
            DAY_START + timedelta(hours=7),
            created_at=before,
            kind=CaseKind.REPAIR_REQUEST,
            owner="wang",
            resolved_at=before,
            closed_at=DAY_END - timedelta(microseconds=1),
        ),
        row(6, DAY_START + timedelta(hours=8), created_at=DAY_START + timedelta(hours=1)),
    ]
    overdue = [
        row(7, before, created_at=before, owner="wang", next_due_at=DAY_START),
        row(8, before, created_at=before, next_due_at=before),
    ]
    day = daily_summary(rows, overdue, DAY_START, DAY_END)
    assert (day.opened, day.resolved, day.closed) == (2, 1, 1)
    assert day.opened_by_kind == (("quality_problem", 2),)
    assert day.closed_by_kind == (("repair_request", 1),)
    assert [(c.case_number, c.owner) for c in day.overdue] == [
        ("AS-0008", None),
        ("AS-0007", "wang"),
    ]
    owners = {o.owner: (o.opened, o.resolved, o.closed, o.overdue) for o in day.by_owner}
    assert owners == {"li": (1, 0, 0, 0), "wang": (0, 0, 1, 1), "unassigned": (1, 1, 0, 1)}
    assert [o.owner for o in day.by_owner][-1] == "unassigned"

    zh = "\n".join(day.lines("zh"))
    assert "2025-03-10" in zh
    assert "新开案件：2" in zh and "已解决：1" in zh and "已关闭：1" in zh and "逾期未处理：2" in zh
    assert "AS-0007" in zh and "质量问题 2" in zh
    en = "\n".join(day.lines("en"))
    assert "Opened: 2" in en and "Resolved: 1" in en and "Closed: 1" in en and "Overdue: 2" in en
    assert "AS-0008 (unassigned, due 2025-03-09 23:59)" in en
    assert "li: opened 1, resolved 0, closed 0, overdue 0" in en


def test_a_quiet_day_says_so_in_both_languages() -> None:
    day = daily_summary([], [], DAY_START, DAY_END)
    assert day.by_owner == () and day.overdue == ()
    assert "新开案件：0" in "\n".join(day.lines("zh"))
    assert "Opened: 0" in "\n".join(day.lines(Language.EN))


def test_a_field_service_case_reports_its_region_dealer_class_and_parts() -> None:
    from datetime import UTC, datetime
    from decimal import Decimal

    from chalicelib.domain.case import CaseKind
    from chalicelib.domain.field_service import (
        Dispatch,
        FieldService,
        OldPart,
        PartsLine,
        PartsRequest,
        PartsSale,
        Party,
        ServiceClass,
        UnitOnCase,
        WarrantyCheck,
    )
    from chalicelib.domain.reports import report_row
    from chalicelib.domain.staff import Role
    from tests.unit.test_lifecycle import new_case

    now = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)

    def parts(number: int, amount: str, state: str, old: bool, sale: bool = False
              ) -> PartsRequest:
        return PartsRequest(
            number=number, lines=(PartsLine(part_no="P", quantity=1, unit_price=Decimal(amount)),),
            amount=Decimal(amount), requested_by="staff:leo", requested_at=now,
            needs=(Role.SERVICE_DIRECTOR,), state=state,  # type: ignore[arg-type]
            old_part=OldPart(due_at=now) if old else None,
            sale=PartsSale(amount=Decimal(amount), charged_to="east", reason="not_returned",
                           at=now) if sale else None,
        )

    record = FieldService(
        unit=UnitOnCase(serial_no="FL-1", model="CPD30", dealer="east", region="Shanghai"),
        warranty=WarrantyCheck(in_warranty=True, reasons=("in_period",),
                               service_class=ServiceClass.WARRANTY, checked_by="staff:leo",
                               checked_at=now),
        dispatch=Dispatch(party=Party.SUPPLIER, to="hydraulics", name="Hydraulics",
                          dispatched_at=now, dispatched_by="staff:ann"),
        parts=(
            parts(1, "480.00", "shipped", old=True),  # cost, old part still due
            parts(2, "120.00", "settled", old=False),  # cost
            parts(3, "900.00", "shipped", old=True, sale=True),  # charged back: no cost
            parts(4, "50.00", "awaiting_approval", old=False),  # not spent yet
        ),
    )
    case = new_case(CaseKind.REPAIR_REQUEST).model_copy(update={"field_service": record})
    row = report_row(case)
    assert (row.region, row.dealer, row.supplier, row.service_class, row.product) == (
        "Shanghai", "east", "hydraulics", "C", "CPD30",
    )
    assert row.parts_cost == Decimal("600.00")
    assert row.old_parts_outstanding == 1


# --- parts and old parts across months -----------------------------------------------

JUNE_END = datetime(2026, 7, 1, tzinfo=SHANGHAI).astimezone(UTC)
JULY_END = datetime(2026, 8, 1, tzinfo=SHANGHAI).astimezone(UTC)
AUGUST_END = datetime(2026, 9, 1, tzinfo=SHANGHAI).astimezone(UTC)
JUNE_START = datetime(2026, 6, 1, tzinfo=SHANGHAI).astimezone(UTC)


def test_parts_count_in_the_month_they_were_shipped_and_old_parts_while_they_are_out(
) -> None:
    """Opened 28 June, 480.00 of parts shipped 3 July, the old part still out in August
    though the case did not change then, back on 2 September."""
    opened = datetime(2026, 6, 28, 10, tzinfo=SHANGHAI).astimezone(UTC)
    shipped = datetime(2026, 7, 3, 10, tzinfo=SHANGHAI).astimezone(UTC)
    back = datetime(2026, 9, 2, 10, tzinfo=SHANGHAI).astimezone(UTC)
    entry = PartsEntry(number=1, amount=Decimal("480.00"), spent_at=shipped, went_to="east",
                       old_part_out_at=shipped)
    june = row(1, opened, created_at=opened)
    july = row(1, shipped, created_at=opened, parts=(entry,))
    # The case as the store keeps it for old parts: its latest row (back in September).
    latest = row(1, back, created_at=opened,
                 parts=(entry.model_copy(update={"old_part_back_at": back}),))

    in_june = monthly_statistics([june], JUNE_START, JUNE_END, old_parts=[latest])
    in_july = monthly_statistics([july], JUNE_END, JULY_END, old_parts=[latest])
    in_august = monthly_statistics([], JULY_END, AUGUST_END, old_parts=[latest])
    in_september = monthly_statistics(
        [latest], AUGUST_END, datetime(2026, 10, 1, tzinfo=SHANGHAI).astimezone(UTC),
        old_parts=[latest],
    )

    assert (in_june.parts_cost, in_june.old_parts_outstanding) == (Decimal(0), 0)
    assert (in_july.parts_cost, in_july.old_parts_outstanding) == (Decimal("480.00"), 1)
    assert in_july.old_parts_by_holder == (("east", 1),)
    assert (in_august.parts_cost, in_august.old_parts_outstanding) == (Decimal(0), 1)
    assert (in_september.parts_cost, in_september.old_parts_outstanding) == (Decimal(0), 0)


def test_a_case_opened_late_in_a_month_counts_under_its_dealer_when_dispatched() -> None:
    opened = datetime(2026, 6, 30, 22, tzinfo=SHANGHAI).astimezone(UTC)
    sent = datetime(2026, 7, 1, 9, tzinfo=SHANGHAI).astimezone(UTC)
    june = row(1, opened, created_at=opened, region="Zhejiang")
    july = row(1, sent, created_at=opened, region="Zhejiang", dealer="east",
               dispatch_party="dealer", dispatched_at=sent)
    supplier = row(2, sent, created_at=sent, supplier="hydraulics",
                   dispatch_party="supplier", dispatched_at=sent)
    technician = row(3, sent, created_at=sent, dealer="east",  # the unit's dealer
                     dispatch_party="technician", dispatched_at=sent)

    in_june = monthly_statistics([june], JUNE_START, JUNE_END)
    in_july = monthly_statistics([july, supplier, technician], JUNE_END, JULY_END)

    assert in_june.by_region == (("Zhejiang", 1),) and in_june.by_dealer == ()
    assert in_july.by_dealer == (("east", 1),)
    assert in_july.by_supplier == (("hydraulics", 1),)
