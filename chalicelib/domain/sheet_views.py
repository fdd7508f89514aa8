"""The staff's working views in the spreadsheet: which tabs, which columns, which rows.

DynamoDB is the truth; the sheet (Google Sheets, or a local workbook) is a window on the
work in hand, and staff may edit some of it. Each view is a tab with declared columns: which
are read-only, which staff may edit, and the values allowed. Its rows are computed from a
case: one row per open case (``Cases``), per follow-up call due (``Follow-ups``), per parts
request still outstanding (``Parts``), per refund not yet told (``Refunds``), per breached
deadline (``Overdue``). Every row also carries the hidden case id, its row key and the case
version it shows, so rows are found by case id, never by position.

What staff type into an editable column becomes an action (``edit_actions``), applied by the
staff desk with the same validation and permission rules as the API. Pure domain code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from chalicelib.domain.actions import NoParams
from chalicelib.domain.case import Case, CaseStatus, Language
from chalicelib.domain.field_service import PartsRequest
from chalicelib.domain.followup import CALL_OUTCOMES
from chalicelib.domain.remedies import PaymentMethod
from chalicelib.domain.timers import DEADLINES, Timer, timers_for

# The columns every view ends with. The Apps Script finds them by these header texts.
NOTE = "sync note"
CASE_ID, ROW_KEY, VERSION, EDITED_BY = "case id", "row", "version", "edited by"
HIDDEN = (CASE_ID, ROW_KEY, VERSION, EDITED_BY)


@dataclass(frozen=True)
class Column:
    """One column of a view. ``choices`` fill a dropdown (and are the only values accepted);
    ``staff_choices`` a dropdown of staff ids. A ``typed_input`` column is an instruction:
    what is typed is acted on, and the cell empties once it is done."""

    key: str
    en: str
    zh: str
    editable: bool = False
    choices: tuple[str, ...] = ()
    staff_choices: bool = False
    typed_input: bool = False

    def header(self, language: Language) -> str:
        return self.zh if language is Language.ZH else self.en


@dataclass(frozen=True)
class Row:
    """One row as the store says it should read. ``cells`` by column key (visible ones)."""

    view: str
    case_id: str
    key: str  # "" for views with one row per case
    version: int
    cells: Mapping[str, str]
    overdue: bool = False

    @property
    def row_id(self) -> str:
        return f"{self.case_id}/{self.key}"


@dataclass(frozen=True)
class SheetAction:
    """An action the staff desk applies for an edit: the same as a POST to the case."""

    action: str
    params: dict[str, Any] = field(default_factory=dict)


class EditRefused(Exception):
    """An edit that cannot become an action; ``note`` says why (by NOTES key)."""

    def __init__(self, note: str, **values: str) -> None:
        super().__init__(note)
        self.note = note
        self.values = values


class EditPending(Exception):
    """An edit that waits for another column (a call's comment waits for its outcome): left
    in the sheet as typed, applied together with the rest."""


@dataclass(frozen=True)
class View:
    name: str
    columns: tuple[Column, ...]
    rows: Callable[[Case, datetime, ZoneInfo], list[Row]]
    # (case, row key, edited cells by key, every cell of the row by key) → actions; None for
    # a read-only view (it has no editable column, so no edit ever reaches it).
    edits: Callable[[Case, str, Mapping[str, str], Mapping[str, str]], list[SheetAction]] | None = (
        None
    )

    @property
    def editable(self) -> tuple[Column, ...]:
        return tuple(column for column in self.columns if column.editable)

    def column(self, key: str) -> Column:
        return next(column for column in self.columns if column.key == key)

    @property
    def keys(self) -> tuple[str, ...]:
        """Every column's key in order: the visible columns, the sync note, the hidden ones."""
        return (*(column.key for column in self.columns), NOTE, *HIDDEN)

    def headers(self, language: Language) -> list[str]:
        """The header row, in ``keys`` order."""
        return [column.header(language) for column in self.columns] + [NOTE, *HIDDEN]

    def key_of_header(self, text: str) -> str | None:
        """The column key a header text names, in either language (a renamed or reordered
        column is still found)."""
        text = text.strip()
        if text in (NOTE, *HIDDEN):
            return text
        for column in self.columns:
            if text in (column.en, column.zh, column.key):
                return column.key
        return None

    def row_cells(self, row: Row, note: str = "", held: Mapping[str, str] | None = None
                  ) -> dict[str, str]:
        """Every cell of a row by key (``keys``), the editor cell empty; ``held``: typed
        input still waiting (a call's comment before its outcome)."""
        cells = {column.key: row.cells.get(column.key, "") for column in self.columns}
        cells.update(held or {})
        return {**cells, NOTE: note, CASE_ID: row.case_id, ROW_KEY: row.key,
                VERSION: str(row.version), EDITED_BY: ""}


# -- formatting ----------------------------------------------------------------------------


def _when(moment: datetime | None, zone: ZoneInfo) -> str:
    return f"{moment.astimezone(zone):%Y-%m-%d %H:%M}" if moment else ""


def _money(amount: Decimal | None) -> str:
    return f"{amount:.2f}" if amount is not None else ""


def _summary(case: Case) -> str:
    text = " ".join(case.description.split())
    return text if len(text) <= 120 else text[:119] + "…"


def _deadlines(case: Case) -> list[Timer]:
    return sorted(
        (timer for timer in timers_for(case).values() if timer.kind in DEADLINES),
        key=lambda timer: (timer.due_at, timer.name),
    )


def _breached(case: Case, now: datetime) -> list[Timer]:
    return [timer for timer in _deadlines(case) if timer.due_at <= now]


def _yes(flag: bool) -> str:
    return "yes" if flag else ""


# -- Cases: the open ticket list -------------------------------------------------------------

# What the "do" column offers: every action that needs nothing more than a click. Which of
# them a case allows now, and to whom, the staff desk decides as for the API.
def _one_click_actions() -> tuple[str, ...]:
    from chalicelib.domain.lifecycle import ACTIONS

    return tuple(sorted(name for name, action in ACTIONS.items() if action.params is NoParams))


CASE_COLUMNS = (
    Column("case_number", "case", "案件号"),
    Column("kind", "kind", "类型"),
    Column("status", "status", "状态"),
    Column("customer", "customer", "客户"),
    Column("phone", "phone", "电话"),
    Column("product", "product", "产品"),
    Column("summary", "summary", "问题"),
    Column("opened", "opened", "受理时间"),
    Column("next_due", "next due", "下一期限"),
    Column("overdue", "overdue", "超时"),
    Column("owner", "owner", "负责人", editable=True, staff_choices=True),
    Column("do", "do", "操作", editable=True, choices=_one_click_actions(), typed_input=True),
    Column("add_note", "add note", "添加备注", editable=True, typed_input=True),
)


def _case_rows(case: Case, now: datetime, zone: ZoneInfo) -> list[Row]:
    if not case.is_open:
        return []
    deadlines = _deadlines(case)
    breached = [timer for timer in deadlines if timer.due_at <= now]
    cells = {
        "case_number": case.case_number,
        "kind": case.kind.value,
        "status": case.status.value,
        "customer": case.customer.name,
        "phone": case.customer.phone or "",
        "product": case.product or "",
        "summary": _summary(case),
        "opened": _when(case.created_at, zone),
        "next_due": f"{_when(deadlines[0].due_at, zone)} {deadlines[0].name}" if deadlines else "",
        "overdue": _yes(bool(breached)),
        "owner": case.owner or "",
        "do": "",
        "add_note": "",
    }
    return [Row("Cases", case.case_id, "", case.version, cells, overdue=bool(breached))]


def _case_edits(
    case: Case, key: str, edited: Mapping[str, str], row: Mapping[str, str]
) -> list[SheetAction]:
    del key, row
    actions = []
    if "owner" in edited:
        if not edited["owner"]:
            raise EditRefused("owner_needed")
        actions.append(SheetAction("assign_owner", {"owner": edited["owner"]}))
    if edited.get("add_note"):
        actions.append(SheetAction("add_note", {"text": edited["add_note"]}))
    if edited.get("do"):
        actions.append(SheetAction(edited["do"]))
    return actions


# -- Follow-ups: the calls due -------------------------------------------------------------------

FOLLOW_UP_COLUMNS = (
    Column("case_number", "case", "案件号"),
    Column("customer", "customer", "客户"),
    Column("phone", "phone", "电话"),
    Column("language", "language", "语言"),
    Column("product", "product", "产品"),
    Column("summary", "summary", "问题"),
    Column("call", "call", "回访次数"),
    Column("due", "due", "应回访时间"),
    Column("call_by", "call by", "最迟"),
    Column("attempts", "tries", "未接通次数"),
    Column("owner", "owner", "负责人"),
    Column("overdue", "overdue", "超时"),
    Column("outcome", "outcome", "结果", editable=True, choices=CALL_OUTCOMES, typed_input=True),
    Column("comment", "comment / question", "备注/问题", editable=True, typed_input=True),
)


def _follow_up_rows(case: Case, now: datetime, zone: ZoneInfo) -> list[Row]:
    call = case.follow_up.pending_call if case.follow_up else None
    if call is None or case.status not in (CaseStatus.RESOLVED, CaseStatus.CLOSED):
        return []
    late = call.window_ends_at is not None and call.window_ends_at <= now
    cells = {
        "case_number": case.case_number,
        "customer": case.customer.name,
        "phone": case.customer.phone or "",
        "language": case.language.value,
        "product": case.product or "",
        "summary": _summary(case),
        "call": str(call.number),
        "due": _when(call.due_at, zone),
        "call_by": _when(call.window_ends_at, zone),
        "attempts": str(call.attempts),
        "owner": case.owner or "",
        "overdue": _yes(late),
        "outcome": "",
        "comment": "",
    }
    return [Row("Follow-ups", case.case_id, f"call{call.number}", case.version, cells, late)]


def _follow_up_edits(
    case: Case, key: str, edited: Mapping[str, str], row: Mapping[str, str]
) -> list[SheetAction]:
    del case, key, edited  # the call is recorded from the whole row
    outcome = row.get("outcome", "")
    if not outcome:
        raise EditPending()
    comment = row.get("comment", "") or None
    params: dict[str, Any] = {"outcome": outcome, "note": comment}
    if outcome == "question":
        params["question"] = comment
    return [SheetAction("record_follow_up_call", params)]


# -- Parts: requests, approvals, shipping, old parts ------------------------------------------

OLD_PART_CHECKS = (
    "accepted", "rejected: incomplete", "rejected: not_warranty", "rejected: not_original",
)

PARTS_COLUMNS = (
    Column("case_number", "case", "案件号"),
    Column("request", "request", "申请号"),
    Column("for", "for", "发往"),
    Column("parts", "parts", "备件"),
    Column("amount", "amount", "金额"),
    Column("state", "state", "状态"),
    Column("waiting_for", "approvals missing", "待审批"),
    Column("ship_by", "ship by", "应发货"),
    Column("tracking_no", "tracking no", "运单号", editable=True),
    Column("old_part_due", "old part due", "旧件应返回"),
    Column("old_part", "old part back", "旧件已收到", editable=True, choices=("received",)),
    Column("old_part_check", "old part check", "旧件检验", editable=True,
           choices=OLD_PART_CHECKS),
    Column("owner", "owner", "负责人"),
    Column("overdue", "overdue", "超时"),
)


def _outstanding(request: PartsRequest) -> bool:
    if request.state in ("awaiting_approval", "approved"):
        return True
    old = request.old_part
    return old is not None and request.sale is None and old.accepted is None


def _parts_rows(case: Case, now: datetime, zone: ZoneInfo) -> list[Row]:
    record = case.field_service
    if record is None or case.status is CaseStatus.CANCELLED:
        return []
    rows = []
    for request in record.parts:
        if not _outstanding(request):
            continue
        old = request.old_part
        due = [moment for moment in (
            request.ship_due_at if request.state == "approved" else None,
            request.settle_due_at if request.state == "approved" else None,
            old.due_at if old is not None and old.received_at is None else None,
        ) if moment is not None]
        late = any(moment <= now for moment in due)
        cells = {
            "case_number": case.case_number,
            "request": str(request.number),
            "for": request.for_party or "",
            "parts": "; ".join(f"{line.part_no} ×{line.quantity}" for line in request.lines),
            "amount": _money(request.amount),
            "state": request.state,
            "waiting_for": ", ".join(role.value for role in request.missing_approvals)
            if request.state == "awaiting_approval" else "",
            "ship_by": _when(request.ship_due_at, zone) if request.state == "approved" else "",
            "tracking_no": request.tracking_no or "",
            "old_part_due": _when(old.due_at, zone) if old else "",
            "old_part": "received" if old is not None and old.received_at else "",
            "old_part_check": "",
            "owner": case.owner or "",
            "overdue": _yes(late),
        }
        rows.append(Row("Parts", case.case_id, f"parts{request.number}", case.version, cells,
                        late))
    return rows


def _parts_edits(
    case: Case, key: str, edited: Mapping[str, str], row: Mapping[str, str]
) -> list[SheetAction]:
    del case, row
    number = int(key.removeprefix("parts"))
    actions = []
    if "tracking_no" in edited:
        if not edited["tracking_no"]:
            raise EditRefused("cannot_clear")
        actions.append(SheetAction("ship_parts", {"number": number,
                                                  "tracking_no": edited["tracking_no"]}))
    if "old_part" in edited:
        if edited["old_part"] != "received":
            raise EditRefused("cannot_clear")
        actions.append(SheetAction("old_part_received", {"number": number}))
    if edited.get("old_part_check"):
        verdict = edited["old_part_check"]
        if verdict == "accepted":
            actions.append(SheetAction("inspect_old_part", {"number": number, "accepted": True}))
        else:
            fault = verdict.removeprefix("rejected:").strip()
            actions.append(SheetAction("inspect_old_part",
                                       {"number": number, "accepted": False, "fault": fault}))
    return actions


# -- Refunds: requested, due by, posted -----------------------------------------------------

REFUND_COLUMNS = (
    Column("case_number", "case", "案件号"),
    Column("customer", "customer", "客户"),
    Column("order", "order", "订单号"),
    Column("amount", "amount", "金额"),
    Column("state", "state", "状态"),
    Column("request_by", "request by", "应提交申请"),
    Column("post_by", "post by", "应退款"),
    Column("posted_at", "posted", "已退款时间"),
    Column("owner", "owner", "负责人"),
    Column("overdue", "overdue", "超时"),
    Column("method", "method", "退款方式", editable=True,
           choices=tuple(method.value for method in PaymentMethod)),
    Column("reference", "reference", "退款流水号", editable=True),
)


def _refund_rows(case: Case, now: datetime, zone: ZoneInfo) -> list[Row]:
    refund = case.refund
    if refund is None or refund.state == "customer_told" or not case.is_open:
        return []
    due = refund.request_due_at if refund.state == "to_request" else (
        refund.post_due_at if refund.state == "requested" else None
    )
    late = due is not None and due <= now
    cells = {
        "case_number": case.case_number,
        "customer": case.customer.name,
        "order": case.order_ref or "",
        "amount": _money(refund.amount),
        "state": refund.state,
        "request_by": _when(refund.request_due_at, zone) if refund.state == "to_request" else "",
        "post_by": _when(refund.post_due_at, zone),
        "posted_at": _when(refund.posted_at, zone),
        "owner": case.owner or "",
        "overdue": _yes(late),
        "method": refund.method.value if refund.method else "",
        "reference": refund.reference or "",
    }
    return [Row("Refunds", case.case_id, "", case.version, cells, late)]


def _refund_edits(
    case: Case, key: str, edited: Mapping[str, str], row: Mapping[str, str]
) -> list[SheetAction]:
    del key
    refund = case.refund
    assert refund is not None  # the row exists only while there is a refund
    actions = []
    method = row.get("method", "")
    if "method" in edited:
        if refund.state != "to_request":
            raise EditRefused("method_fixed")
        actions.append(SheetAction("submit_refund_request", {"method": method}))
    if "reference" in edited:
        if not edited["reference"]:
            raise EditRefused("cannot_clear")
        actions.append(SheetAction("post_refund", {
            "amount": str(refund.amount), "method": method or (
                refund.method.value if refund.method else ""),
            "reference": edited["reference"],
        }))
    return actions


# -- Overdue: every breached deadline ----------------------------------------------------------

OVERDUE_COLUMNS = (
    Column("case_number", "case", "案件号"),
    Column("deadline", "deadline", "期限"),
    Column("due", "was due", "应完成时间"),
    Column("owner", "owner", "负责人"),
    Column("status", "status", "状态"),
    Column("kind", "kind", "类型"),
    Column("customer", "customer", "客户"),
)


def _overdue_rows(case: Case, now: datetime, zone: ZoneInfo) -> list[Row]:
    rows = []
    for timer in _breached(case, now):
        cells = {
            "case_number": case.case_number,
            "deadline": timer.name,
            "due": _when(timer.due_at, zone),
            "owner": case.owner or "",
            "status": case.status.value,
            "kind": case.kind.value,
            "customer": case.customer.name,
        }
        rows.append(Row("Overdue", case.case_id, timer.name, case.version, cells, True))
    return rows


VIEWS: tuple[View, ...] = (
    View("Cases", CASE_COLUMNS, _case_rows, _case_edits),
    View("Follow-ups", FOLLOW_UP_COLUMNS, _follow_up_rows, _follow_up_edits),
    View("Parts", PARTS_COLUMNS, _parts_rows, _parts_edits),
    View("Refunds", REFUND_COLUMNS, _refund_rows, _refund_edits),
    View("Overdue", OVERDUE_COLUMNS, _overdue_rows),
)
VIEWS_BY_NAME = {view.name: view for view in VIEWS}


def rows_for(case: Case, now: datetime, zone: ZoneInfo) -> dict[str, Row]:
    """Every row this case has in every view, by row id ("<view>|<case id>/<key>")."""
    return {
        f"{view.name}|{row.row_id}": row for view in VIEWS for row in view.rows(case, now, zone)
    }


def next_change_at(case: Case, now: datetime) -> datetime | None:
    """When the case's rows will read differently without the case changing: its next
    deadline, when it turns overdue."""
    future = [timer.due_at for timer in _deadlines(case) if timer.due_at > now]
    call = case.follow_up.pending_call if case.follow_up else None
    if call is not None and call.window_ends_at and call.window_ends_at > now:
        future.append(call.window_ends_at)
    return min(future) if future else None


# -- what a sync note says ------------------------------------------------------------------------

NOTES: dict[Language, dict[str, str]] = {
    Language.EN: {
        "not_saved": "Not saved ({at}): {reason}",
        "conflict": "{columns} changed meanwhile (now: {now}); your edit was not applied",
        "unknown_editor": "who made this edit is not known ({editor}): only staff can edit",
        "no_editor": "who made this edit is not known; type it again",
        "not_a_choice": "'{value}' is not one of: {choices}",
        "owner_needed": "a case cannot be left without an owner",
        "cannot_clear": "this cannot be undone from the sheet",
        "method_fixed": "the refund request has been submitted; its method cannot change",
        "left_view": "this row has left the view; the edit was not applied",
        "waiting": "waiting for the outcome of the call",
    },
    Language.ZH: {
        "not_saved": "未保存（{at}）：{reason}",
        "conflict": "{columns} 已被他人修改（现为：{now}），您的修改未保存",
        "unknown_editor": "无法确认修改人（{editor}）：只有员工可以修改",
        "no_editor": "无法确认修改人，请重新输入",
        "not_a_choice": "“{value}”不在可选值中：{choices}",
        "owner_needed": "案件必须有负责人",
        "cannot_clear": "此项不能在表格中撤销",
        "method_fixed": "退款申请已提交，退款方式不能再改",
        "left_view": "此行已移出视图，修改未保存",
        "waiting": "等待填写回访结果",
    },
}


def note_text(language: Language, key: str, **values: str) -> str:
    return NOTES[language][key].format(**values)
