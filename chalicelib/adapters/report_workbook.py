"""The monthly statistics report as an Excel workbook (.xlsx): one sheet per view, each
with its figures as numbers and a chart, headers in Chinese and English."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from decimal import Decimal
from io import BytesIO

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.chart import BarChart, PieChart, Reference
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from chalicelib.domain.case import CaseKind, Language
from chalicelib.domain.messages import KIND_LABELS
from chalicelib.domain.reports import NOT_RECORDED, Counts, MonthlyStatistics

NONE_ROW = "(none)"

# A spreadsheet reads text starting with these as a formula (CSV/formula injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

SERVICE_CLASSES = {
    "A": "A paid 付费",
    "B": "B contract 合同",
    "C": "C free warranty 免费保修",
    NOT_RECORDED: "(not recorded) 未记录",
}

CALL_OUTCOMES = {
    "satisfied": "Satisfied 满意",
    "not_satisfied": "Not satisfied 不满意",
    "no_answer": "No answer 未接听",
    "question": "Question raised 有疑问",
}

Value = str | int | float | Decimal | None


def monthly_workbook(stats: MonthlyStatistics, *, company_name: str, month_label: str) -> bytes:
    """The month's statistics summary and analysis report, as the bytes of an .xlsx file."""
    book = Workbook()
    summary = book.active
    assert summary is not None  # a new workbook always has its first sheet
    summary.title = "Summary"
    _summary(summary, stats, company_name=company_name, month_label=month_label)

    kinds = tuple((_kind(label), count) for label, count in stats.by_kind)
    for title, header, counts in (
        ("By kind", "Kind 类别", kinds),
        ("By product", "Product 产品", stats.by_product),
        ("By region", "Region 地区", stats.by_region),
        ("By dealer", "Dealer 经销商", stats.by_dealer),
        ("By supplier", "Supplier 供应商", stats.by_supplier),
    ):
        sheet = book.create_sheet(title)
        rows = _table(sheet, [header, "Cases 案件数"], _or_none(counts))
        _bar(sheet, title=f"Cases opened {title.lower()}", rows=rows, series=(2, 2))

    _response_times(book.create_sheet("Response times"), stats)

    sheet = book.create_sheet("Warranty vs paid")
    classes = tuple((SERVICE_CLASSES.get(c, c), n) for c, n in stats.by_service_class)
    rows = _table(sheet, ["Service class 服务类别", "Cases 案件数"], _or_none(classes))
    _pie(sheet, title="Warranty vs paid 保修与付费", rows=rows)

    _parts(book.create_sheet("Parts and old parts"), stats)
    _satisfaction(book.create_sheet("Satisfaction"), stats)

    for sheet in book.worksheets:
        _widths(sheet)
    out = BytesIO()
    book.save(out)
    return out.getvalue()


def _summary(
    sheet: Worksheet, stats: MonthlyStatistics, *, company_name: str, month_label: str
) -> None:
    first, done, said = stats.first_reply, stats.completion, stats.satisfaction
    money, hours, share = "#,##0.00", "0.0", "0.0%"
    figures: list[tuple[str, Value, str | None]] = [
        ("Company 公司", company_name, None),
        ("Month 月份", month_label, None),
        ("Cases opened 新开案件", stats.opened, None),
        ("Cases resolved 已解决案件", stats.resolved, None),
        ("Cases closed 已关闭案件", stats.closed, None),
        ("First replies 首次回复", first.cases, None),
        ("First replies within target 按时首次回复", first.within_target, None),
        ("Median hours to first reply 首次回复中位小时数", first.median_hours, hours),
        ("Completions within target 按时完成", done.within_target, None),
        ("Median hours to completion 完成中位小时数", done.median_hours, hours),
        ("Warranty parts cost 三包备件费用", stats.parts_cost, money),
        ("Parts sold to dealers 转为备件销售", stats.parts_sold, money),
        ("Refunds 退款", stats.refunded, money),
        ("Old parts outstanding 未返还旧件", stats.old_parts_outstanding, None),
        ("Follow-up calls 回访次数", sum(n for _, n in said.calls), None),
        ("Satisfied share 满意率", said.satisfied_share, share),
        ("Ratings 评价数", said.ratings, None),
        ("Average rating 平均评分", said.average_rating, "0.00"),
    ]
    _table(sheet, ["Figure 项目", "Value 数值"], [(label, value) for label, value, _ in figures])
    for number, (_, _, number_format) in enumerate(figures, start=2):
        if number_format:
            sheet.cell(row=number, column=2).number_format = number_format
    # The chart: the month's cases opened, resolved and closed (rows 4 to 6).
    _bar(sheet, title="Cases this month 本月案件", rows=6, series=(2, 2), first_row=3)


def _response_times(sheet: Worksheet, stats: MonthlyStatistics) -> None:
    rows = _table(
        sheet,
        [
            "Measure 指标",
            "Within target 按时",
            "Late 超时",
            "Cases 案件数",
            "Median hours 中位小时数",
        ],
        [
            (
                label,
                measure.within_target,
                measure.late,
                measure.cases,
                measure.median_hours,
            )
            for label, measure in (
                ("First reply 首次回复", stats.first_reply),
                ("Completion 完成", stats.completion),
            )
        ],
    )
    for (cell,) in sheet.iter_rows(min_row=2, min_col=5, max_col=5):
        cell.number_format = "0.0"
    chart = _bar(sheet, title="Within target vs late 按时与超时", rows=rows, series=(2, 3))
    chart.grouping = "stacked"
    chart.overlap = 100


def _parts(sheet: Worksheet, stats: MonthlyStatistics) -> None:
    money = [
        ("Warranty parts shipped or bought 当月发出或采购的三包备件费用", stats.parts_cost),
        ("Converted into parts sales to dealers 当月转为经销商备件销售", stats.parts_sold),
        ("Refunds of cases resolved 已解决案件退款", stats.refunded),
    ]
    rows = _table(sheet, ["Figure 项目", "Amount 金额"], money)
    for (cell,) in sheet.iter_rows(min_row=2, max_row=rows, min_col=2, max_col=2):
        cell.number_format = "#,##0.00"
    _bar(sheet, title="Parts and refunds 备件与退款", rows=rows, series=(2, 2))

    # Below: the old parts still out at the month's end, by who holds them, charted too.
    top = rows + 3
    sheet.cell(row=top, column=1, value="Old parts outstanding 未返还旧件")
    sheet.cell(row=top, column=2, value=stats.old_parts_outstanding)
    header = top + 2
    for column, text in enumerate(("Held by 持有方", "Old parts 旧件数"), start=1):
        sheet.cell(row=header, column=column, value=text).font = Font(bold=True)
    holders = _or_none(stats.old_parts_by_holder)
    for offset, (holder, count) in enumerate(holders, start=1):
        _put(sheet, header + offset, 1, holder)
        _put(sheet, header + offset, 2, count)
    _bar(sheet, title="Old parts outstanding at the month's end 月末未返还旧件",
         rows=header + len(holders), series=(2, 2), first_row=header,
         anchor=f"{get_column_letter(sheet.max_column + 2)}{header}")


def _satisfaction(sheet: Worksheet, stats: MonthlyStatistics) -> None:
    said = stats.satisfaction
    calls = tuple((CALL_OUTCOMES.get(o, o), n) for o, n in said.calls)
    rows = _table(
        sheet,
        ["Outcome 回访结果", "Calls 通话数"],
        calls if any(n for _, n in calls) else ((NONE_ROW, 0),),
    )
    _pie(sheet, title="Follow-up calls 回访结果", rows=rows)

    # Below the calls: the ratings customers gave, and the two shares.
    top = rows + 3
    for column, text in enumerate(("Rating 评分", "Ratings 评价数"), start=1):
        sheet.cell(row=top, column=column, value=text).font = Font(bold=True)
    for offset, (rating, count) in enumerate(said.by_rating, start=1):
        sheet.cell(row=top + offset, column=1, value=rating)
        sheet.cell(row=top + offset, column=2, value=count)
    below = top + len(said.by_rating) + 2
    sheet.cell(row=below, column=1, value="Satisfied share 满意率")
    sheet.cell(row=below, column=2, value=said.satisfied_share).number_format = "0.0%"
    sheet.cell(row=below + 1, column=1, value="Average rating 平均评分")
    sheet.cell(row=below + 1, column=2, value=said.average_rating).number_format = "0.00"


def _kind(value: str) -> str:
    try:
        kind = CaseKind(value)
    except ValueError:
        return value
    return f"{KIND_LABELS[Language.EN][kind]} {KIND_LABELS[Language.ZH][kind]}"


def _or_none(counts: Counts) -> Counts:
    return counts or ((NONE_ROW, 0),)


def _table(sheet: Worksheet, header: list[str], rows: Sequence[Sequence[Value]]) -> int:
    """Writes a bold, frozen header and the rows; returns the last row's number."""
    sheet.append(header)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    sheet.freeze_panes = "A2"
    for number, values in enumerate(rows, start=2):
        for column, value in enumerate(values, start=1):
            _put(sheet, number, column, value)
    return len(rows) + 1


def _put(sheet: Worksheet, row: int, column: int, value: Value) -> None:
    cell = sheet.cell(row=row, column=column)
    if not isinstance(value, str):
        cell.value = value
        return
    # Names come from customers and dealers: kept as plain text, never as a formula.
    cell.value = ILLEGAL_CHARACTERS_RE.sub("", value)
    cell.data_type = "s"
    if value.startswith(FORMULA_STARTS):
        cell.quotePrefix = True  # Excel keeps it text even when the cell is edited


def _widths(sheet: Worksheet) -> None:
    for number, column in enumerate(sheet.iter_cols(), start=1):
        widest = max((_width(cell.value) for cell in column), default=0)
        sheet.column_dimensions[get_column_letter(number)].width = min(max(widest + 2, 10), 60)


def _width(value: object) -> int:
    text = "" if value is None else str(value)
    # Chinese characters take two columns.
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def _bar(
    sheet: Worksheet, *, title: str, rows: int, series: tuple[int, int], first_row: int = 1,
    anchor: str | None = None,
) -> BarChart:
    """A column chart of the table whose header is ``first_row`` and last row ``rows``:
    the series from the columns ``series`` (titled by the header), categories column A."""
    chart = BarChart()
    chart.type = "col"
    chart.title = title
    first, last = series
    data = Reference(sheet, min_col=first, max_col=last, min_row=first_row, max_row=rows)
    chart.add_data(data, titles_from_data=True)
    chart.set_categories(Reference(sheet, min_col=1, min_row=first_row + 1, max_row=rows))
    # openpyxl 3.1 hides the axes unless told otherwise.
    chart.x_axis.delete = False
    chart.y_axis.delete = False
    chart.width, chart.height = 20, 10
    sheet.add_chart(chart, anchor or _beside(sheet))
    return chart


def _pie(sheet: Worksheet, *, title: str, rows: int) -> None:
    chart = PieChart()
    chart.title = title
    chart.add_data(Reference(sheet, min_col=2, min_row=1, max_row=rows), titles_from_data=True)
    chart.set_categories(Reference(sheet, min_col=1, min_row=2, max_row=rows))
    sheet.add_chart(chart, _beside(sheet))


def _beside(sheet: Worksheet) -> str:
    return f"{get_column_letter(sheet.max_column + 2)}2"
