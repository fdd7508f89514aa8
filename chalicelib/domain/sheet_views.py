"""The staff's working views in the spreadsheet: which tabs, which columns, which rows.

DynamoDB is the truth; the sheet (Google Sheets, or a local workbook) is a window on the
work in hand, and staff may edit some of it. Each view is a tab with declared columns: which
are read-only, which staff may edit, and the values allowed. Its rows are computed from a
case and the time: one row per open case (``Cases``); per follow-up call from the day it is
due, kept with its outcome until a week after the case's last call (``Follow-ups``); per
parts request until a few days after it is done (``Parts``); per refund not yet told
(``Refunds``); per breached deadline (``Overdue``). Every row also carries the hidden case
id, its row key and the case version it shows, so rows are found by case id, never by
position. What people read is in the company's language (statuses, kinds, deadlines) and
local time; what staff pick from a dropdown stays the action's own value.

What staff type into an editable column becomes an action (``edit_actions``), applied by the
staff desk with the same validation and permission rules as the API. Pure domain code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from chalicelib.domain.actions import NoParams
from chalicelib.domain.case import Case, CaseStatus, Language
from chalicelib.domain.field_service import PartsRequest
from chalicelib.domain.followup import CALL_OUTCOMES, FollowUpCall
from chalicelib.domain.messages import KIND_LABELS
from chalicelib.domain.projects import MILESTONE_LABELS, Milestone
from chalicelib.domain.remedies import PaymentMethod
from chalicelib.domain.staff_messages import TIMER_LABELS
from chalicelib.domain.timers import TimerKind, timers_for

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
    # (case, now, local time zone, the company's language) → the case's rows in this view
    rows: Callable[[Case, datetime, ZoneInfo, Language], list[Row]]
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


# -- what people read: the company's language, local time ------------------------------------

ZH, EN = Language.ZH, Language.EN

# A recorded follow-up call stays on the view until the case's last call is this long done
# (while a later call is still to come, the earlier ones stay: their outcomes are what the
# next caller needs); a parts request stays this long after it is done (shipped with no old
# part owed, settled, its old part inspected or turned into a parts sale).
CALLS_KEPT_FOR = timedelta(days=7)
PARTS_KEPT_FOR = timedelta(days=3)

_WORDS: dict[Language, dict[str, str]] = {
    EN: {
        "yes": "yes", "service_centre": "service centre", "supervisors": "supervisors",
        "zh": "Chinese", "en": "English",
        # case statuses, as staff call them
        "new": "new", "awaiting_photos": "awaiting photos", "verified": "verified",
        "not_true": "complaint not true", "watching_tracking": "watching the tracking",
        "awaiting_approval": "awaiting approval", "in_progress": "in progress",
        "resolved": "resolved", "closed": "closed", "cancelled": "cancelled",
        # refunds
        "to_request": "to request from finance", "requested": "requested from finance",
        "posted": "posted", "customer_told": "customer told",
        # follow-up calls
        "satisfied": "satisfied", "not_satisfied": "not satisfied",
        "no_answer": "no answer", "question": "question",
        # parts requests
        "parts_awaiting_approval": "awaiting approval", "parts_approved": "approved, to ship",
        "parts_approved_local": "approved, to buy locally and settle",
        "parts_turned_down": "turned down by {by}", "parts_shipped": "shipped",
        "parts_settled": "bought locally, settled",
        "old_part_owed": "{state}; old part to come back",
        "old_part_received": "old part received, to inspect",
        "old_part_accepted": "old part accepted", "old_part_rejected": "old part rejected: {fault}",
        "parts_sold": "charged as a parts sale",
        "warranty": "warranty", "beyond_warranty": "beyond warranty",
        "paid_by_customer": "paid by the customer", "urgent_local": "urgent local purchase",
        "incomplete": "incomplete", "not_warranty": "not a warranty fault",
        "not_original": "not an original part", "not_returned": "old part not returned",
        "sale": "{amount} charged to {to} ({reason}), {at}",
        "approval": "{role} {by} {at}",
        "technician": "technician", "dealer": "dealer", "supplier": "supplier",
        # deadlines with a number, and the one deadline that is not a timer
        "numbered": "{label} (request {number})", "call_numbered": "{label} {number}",
        "milestone": "{label}: {milestone}",
        "manufacturer_due_back": "device due back from the manufacturer",
    },
    ZH: {
        "yes": "是", "service_centre": "客服中心", "supervisors": "主管",
        "zh": "中文", "en": "英文",
        "new": "新建", "awaiting_photos": "等待照片", "verified": "已核实",
        "not_true": "投诉不属实", "watching_tracking": "跟踪物流中",
        "awaiting_approval": "待审批", "in_progress": "处理中",
        "resolved": "已解决", "closed": "已结案", "cancelled": "已取消",
        "to_request": "待提交退款申请", "requested": "已提交财务",
        "posted": "已退款", "customer_told": "已告知客户",
        "satisfied": "满意", "not_satisfied": "不满意", "no_answer": "无人接听",
        "question": "有问题",
        "parts_awaiting_approval": "待审批", "parts_approved": "已批准，待发货",
        "parts_approved_local": "已批准，待本地采购报销",
        "parts_turned_down": "已驳回（{by}）", "parts_shipped": "已发货",
        "parts_settled": "本地采购已报销",
        "old_part_owed": "{state}，旧件待返回",
        "old_part_received": "旧件已收到，待检验",
        "old_part_accepted": "旧件检验合格", "old_part_rejected": "旧件检验不合格：{fault}",
        "parts_sold": "已转为配件销售",
        "warranty": "三包", "beyond_warranty": "非正常备件",
        "paid_by_customer": "客户付费", "urgent_local": "紧急本地采购",
        "incomplete": "不完整", "not_warranty": "非三包故障",
        "not_original": "非原装件", "not_returned": "旧件未返回",
        "sale": "{amount} 向 {to} 收取（{reason}），{at}",
        "approval": "{role} {by} {at}",
        "technician": "技术员", "dealer": "代理商", "supplier": "供应商",
        "numbered": "{label}（申请 {number}）", "call_numbered": "{label}（第 {number} 次）",
        "milestone": "{label}：{milestone}",
        "manufacturer_due_back": "设备应从厂家返回",
    },
}

ROLE_LABELS: dict[Language, dict[str, str]] = {
    EN: {"agent": "agent", "technician": "technician", "finance": "finance",
         "operations": "operations", "purchasing": "purchasing", "logistics": "logistics",
         "supervisor": "supervisor", "service_director": "service director",
         "qa_manager": "QA manager", "service_vp": "service VP", "supply_vp": "supply VP",
         "sales_vp": "sales VP", "rnd": "R&D"},
    ZH: {"agent": "客服", "technician": "技术员", "finance": "财务", "operations": "运营",
         "purchasing": "采购", "logistics": "物流", "supervisor": "主管",
         "service_director": "售服中心主任", "qa_manager": "品管部经理",
         "service_vp": "服务副总", "supply_vp": "供应副总", "sales_vp": "销售副总",
         "rnd": "研发部"},
}


def word(language: Language, key: str, **values: str) -> str:
    """A value as people read it in ``language`` (a status, a deadline's name …)."""
    return _WORDS[language][key].format(**values)


def _when(moment: datetime | None, zone: ZoneInfo) -> str:
    return f"{moment.astimezone(zone):%Y-%m-%d %H:%M}" if moment else ""


def _money(amount: Decimal | None) -> str:
    return f"{amount:.2f}" if amount is not None else ""


def _summary(case: Case) -> str:
    text = " ".join(case.description.split())
    return text if len(text) <= 120 else text[:119] + "…"


def _who(actor: str | None) -> str:
    """A person as events name them ("staff:ann") as staff know them ("ann")."""
    return (actor or "").removeprefix("staff:")


def _yes(flag: bool, language: Language) -> str:
    return word(language, "yes") if flag else ""


# -- deadlines: every promise the case holds, and when each is breached ------------------------


@dataclass(frozen=True)
class Deadline:
    """A promise on the case: ``name`` as its timer's (unique on the case), ``due_at`` when
    it is breached. A follow-up call is breached at the end of its window, not when it falls
    due; a device at the manufacturer when it is due back."""

    name: str
    kind: TimerKind | None  # None: the device due back from the manufacturer (no timer)
    due_at: datetime
    call_number: int | None = None
    parts_number: int | None = None

    def label(self, language: Language) -> str:
        if self.kind is None:
            return word(language, "manufacturer_due_back")
        # A kind that has no label yet still reads as words, never as an identifier.
        label = TIMER_LABELS[language].get(self.kind) or self.kind.value.replace("_", " ")
        if self.call_number is not None:
            return word(language, "call_numbered", label=label, number=str(self.call_number))
        if self.parts_number is not None:
            return word(language, "numbered", label=label, number=str(self.parts_number))
        if self.kind is TimerKind.MILESTONE:
            step = self.name.removeprefix(f"{TimerKind.MILESTONE.value}_")
            if step in Milestone._value2member_map_:
                return word(language, "milestone", label=label,
                             milestone=MILESTONE_LABELS[language.value][Milestone(step)])
        return label

    def reminded(self, case: Case, language: Language) -> str:
        """Whom the reminder goes to: the case's owner (the service centre when nobody owns
        the case); a customer's question unanswered goes to the supervisors."""
        if self.kind is TimerKind.CUSTOMER_QUESTION:
            return word(language, "supervisors")
        return case.owner or word(language, "service_centre")


_MANUFACTURER_DUE_BACK = "manufacturer_due_back"


def deadlines(case: Case) -> list[Deadline]:
    """Every deadline the case holds now (``timers_for``, so new features' promises show up
    here as they land), earliest first."""
    found = []
    for timer in timers_for(case).values():
        due = timer.window_ends_at if timer.kind is TimerKind.FOLLOW_UP_CALL else timer.deadline
        if due is not None:
            found.append(Deadline(timer.name, timer.kind, due, timer.call_number,
                                  timer.parts_number))
    sent = case.workshop.manufacturer if case.workshop else None
    if case.is_open and sent is not None and sent.received_at is None:
        # The staff API counts it as overdue too (timers.next_deadline); only the check
        # 12 h before has a timer.
        found.append(Deadline(_MANUFACTURER_DUE_BACK, None, sent.due_at))
    return sorted(found, key=lambda deadline: (deadline.due_at, deadline.name))


def breached(case: Case, now: datetime) -> list[Deadline]:
    return [deadline for deadline in deadlines(case) if deadline.due_at <= now]


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


def _case_rows(case: Case, now: datetime, zone: ZoneInfo, language: Language) -> list[Row]:
    if not case.is_open:
        return []
    due = deadlines(case)
    late = any(deadline.due_at <= now for deadline in due)
    cells = {
        "case_number": case.case_number,
        "kind": KIND_LABELS[language][case.kind],
        "status": word(language, case.status.value),
        "customer": case.customer.name,
        "phone": case.customer.phone or "",
        "product": case.product or "",
        "summary": _summary(case),
        "opened": _when(case.created_at, zone),
        "next_due": f"{_when(due[0].due_at, zone)} {due[0].label(language)}" if due else "",
        "overdue": _yes(late, language),
        "owner": case.owner or "",
        "do": "",
        "add_note": "",
    }
    return [Row("Cases", case.case_id, "", case.version, cells, overdue=late)]


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


# -- Follow-ups: the calls due, and the outcomes of those made ---------------------------------

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
    Column("result", "result", "回访结果"),
    Column("said", "recorded comment", "回访记录"),
    Column("recorded", "recorded", "记录时间"),
    Column("recorded_by", "recorded by", "记录人"),
    Column("owner", "owner", "负责人"),
    Column("overdue", "overdue", "超时"),
    Column("outcome", "outcome", "结果", editable=True, choices=CALL_OUTCOMES, typed_input=True),
    Column("comment", "comment / question", "备注/问题", editable=True, typed_input=True),
)


def _pending_call(case: Case) -> FollowUpCall | None:
    """The call to make next, whether due yet or not (none once the case is reopened)."""
    if case.follow_up is None or case.status not in (CaseStatus.RESOLVED, CaseStatus.CLOSED):
        return None
    return case.follow_up.pending_call


def _calls_leave_at(case: Case) -> datetime | None:
    """When the recorded calls leave the view: a week after the last one, once no call is to
    come; None while one is (or when there is none recorded)."""
    if case.follow_up is None or _pending_call(case) is not None:
        return None
    recorded = [call.recorded_at for call in case.follow_up.calls if call.recorded_at]
    return max(recorded) + CALLS_KEPT_FOR if recorded else None


def _follow_up_rows(case: Case, now: datetime, zone: ZoneInfo, language: Language
                    ) -> list[Row]:
    if case.follow_up is None:
        return []
    pending = _pending_call(case)
    leave_at = _calls_leave_at(case)
    rows = []
    for call in case.follow_up.calls:
        if call.pending:
            # From the moment it falls due (a call not answered: from the next try's).
            if pending is None or call.number != pending.number or call.due_at > now:
                continue
        elif leave_at is not None and leave_at <= now:
            continue
        late = call.pending and call.window_ends_at is not None and call.window_ends_at <= now
        cells = {
            "case_number": case.case_number,
            "customer": case.customer.name,
            "phone": case.customer.phone or "",
            "language": word(language, case.language.value),
            "product": case.product or "",
            "summary": _summary(case),
            "call": str(call.number),
            "due": _when(call.due_at, zone),
            "call_by": _when(call.window_ends_at, zone),
            "attempts": str(call.attempts),
            "result": word(language, call.outcome) if call.outcome else "",
            # A pending call's note is the last unanswered try's.
            "said": call.note or "",
            "recorded": _when(call.recorded_at, zone),
            "recorded_by": _who(call.by),
            "owner": case.owner or "",
            "overdue": _yes(late, language),
            "outcome": "",
            "comment": "",
        }
        rows.append(Row("Follow-ups", case.case_id, f"call{call.number}", case.version, cells,
                        late))
    return rows


def _follow_up_edits(
    case: Case, key: str, edited: Mapping[str, str], row: Mapping[str, str]
) -> list[SheetAction]:
    del edited  # the call is recorded from the whole row
    pending = _pending_call(case)
    if pending is None or key != f"call{pending.number}":
        raise EditRefused("call_recorded")
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
    Column("type", "type", "类别"),
    Column("for", "for", "发往"),
    Column("parts", "parts", "备件"),
    Column("amount", "amount", "金额"),
    Column("state", "state", "状态"),
    Column("approved_by", "approvals given", "已审批"),
    Column("waiting_for", "approvals missing", "待审批"),
    Column("ship_by", "ship by", "应发货"),
    Column("shipped", "shipped", "发货时间"),
    Column("tracking_no", "tracking no", "运单号", editable=True),
    Column("old_part_due", "old part due", "旧件应返回"),
    Column("old_part", "old part back", "旧件已收到", editable=True, choices=("received",)),
    Column("old_part_received", "old part received", "旧件收到时间"),
    Column("old_part_check", "old part check", "旧件检验", editable=True,
           choices=OLD_PART_CHECKS),
    Column("inspected", "inspected", "检验时间"),
    Column("sale", "parts sale", "配件销售"),
    Column("owner", "owner", "负责人"),
    Column("overdue", "overdue", "超时"),
)


def _done_at(request: PartsRequest) -> datetime | None:
    """When the request was done: shipped (or settled) with no old part owed, its old part
    inspected, or turned into a parts sale. None: still in hand (or turned down, which
    records no date: such a request stays while the case is open)."""
    if request.sale is not None:
        return request.sale.at
    sent = request.shipped_at or request.settled_at
    if request.state not in ("shipped", "settled") or sent is None:
        return None
    old = request.old_part
    if old is None:
        return sent
    return old.inspected_at if old.accepted is not None else None


def _shown(case: Case, request: PartsRequest, now: datetime) -> bool:
    if case.status is CaseStatus.CANCELLED and request.state not in ("shipped", "settled"):
        return False  # nothing more goes out; what went out still owes its old part
    if request.state == "turned_down":
        return case.is_open
    done = _done_at(request)
    return done is None or now < done + PARTS_KEPT_FOR


def _verdict(request: PartsRequest) -> str:
    """The old part's inspection as the dropdown says it."""
    old = request.old_part
    if old is None or old.accepted is None:
        return ""
    return "accepted" if old.accepted else f"rejected: {old.fault or ''}".strip()


def _parts_state(request: PartsRequest, language: Language) -> str:
    if request.sale is not None:
        return word(language, "parts_sold")
    if request.state == "awaiting_approval":
        return word(language, "parts_awaiting_approval")
    if request.state == "approved":
        return word(language, "parts_approved_local" if request.urgent_local
                     else "parts_approved")
    if request.state == "turned_down":
        return word(language, "parts_turned_down", by=_who(request.turned_down_by))
    sent = word(language, f"parts_{request.state}")
    old = request.old_part
    if old is None:
        return sent
    if old.received_at is None:
        return word(language, "old_part_owed", state=sent)
    if old.accepted is None:
        return word(language, "old_part_received")
    if old.accepted:
        return word(language, "old_part_accepted")
    fault = word(language, old.fault) if old.fault else ""
    return word(language, "old_part_rejected", fault=fault)


def _parts_type(request: PartsRequest, language: Language) -> str:
    kinds = ["paid_by_customer" if request.paid_by_customer else
             "beyond_warranty" if request.beyond_warranty else "warranty"]
    if request.urgent_local:
        kinds.append("urgent_local")
    return ", ".join(word(language, kind) for kind in kinds)


def _parts_rows(case: Case, now: datetime, zone: ZoneInfo, language: Language) -> list[Row]:
    record = case.field_service
    if record is None:
        return []
    late_requests = {deadline.parts_number for deadline in breached(case, now)}
    rows = []
    for request in record.parts:
        if not _shown(case, request, now):
            continue
        old, sale = request.old_part, request.sale
        late = request.number in late_requests
        party = request.for_party or ""
        if party and request.for_party_kind is not None:
            party = f"{party} ({word(language, request.for_party_kind.value)})"
        cells = {
            "case_number": case.case_number,
            "request": str(request.number),
            "type": _parts_type(request, language),
            "for": party,
            "parts": "; ".join(f"{line.part_no} ×{line.quantity}" for line in request.lines),
            "amount": _money(request.amount),
            "state": _parts_state(request, language),
            "approved_by": "; ".join(
                word(language, "approval", role=ROLE_LABELS[language][approval.role.value],
                      by=_who(approval.by), at=_when(approval.at, zone))
                for approval in request.approvals),
            "waiting_for": ", ".join(ROLE_LABELS[language][role.value]
                                     for role in request.missing_approvals)
            if request.state == "awaiting_approval" else "",
            "ship_by": _when(request.ship_due_at, zone) if request.state == "approved" else "",
            "shipped": _when(request.shipped_at or request.settled_at, zone),
            "tracking_no": request.tracking_no or "",
            "old_part_due": _when(old.due_at, zone) if old else "",
            "old_part": "received" if old is not None and old.received_at else "",
            "old_part_received": _when(old.received_at, zone) if old else "",
            "old_part_check": _verdict(request),
            "inspected": f"{_when(old.inspected_at, zone)} {_who(old.inspected_by)}".strip()
            if old and old.inspected_at else "",
            "sale": word(language, "sale", amount=_money(sale.amount), to=sale.charged_to,
                          reason=word(language, sale.reason), at=_when(sale.at, zone))
            if sale else "",
            "owner": case.owner or "",
            "overdue": _yes(late, language),
        }
        rows.append(Row("Parts", case.case_id, f"parts{request.number}", case.version, cells,
                        late))
    return rows


def _parts_edits(
    case: Case, key: str, edited: Mapping[str, str], row: Mapping[str, str]
) -> list[SheetAction]:
    del row
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
    if "old_part_check" in edited:
        verdict = edited["old_part_check"]
        request = case.field_service.request(number) if case.field_service else None
        if not verdict:
            if request is not None and _verdict(request):
                raise EditRefused("cannot_clear")
        elif verdict == "accepted":
            actions.append(SheetAction("inspect_old_part", {"number": number, "accepted": True}))
        else:
            fault = verdict.removeprefix("rejected:").strip()
            actions.append(SheetAction("inspect_old_part",
                                       {"number": number, "accepted": False, "fault": fault}))
    return actions


# -- Refunds: requested, due by, posted -----------------------------------------------------

# The domain keeps no date of the decision or of the request to finance (RefundTrack):
# the view shows the promises (request by, post by) and what happened (method, reference,
# posted).
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


def _refund_rows(case: Case, now: datetime, zone: ZoneInfo, language: Language) -> list[Row]:
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
        "state": word(language, refund.state),
        "request_by": _when(refund.request_due_at, zone) if refund.state == "to_request" else "",
        "post_by": _when(refund.post_due_at, zone),
        "posted_at": _when(refund.posted_at, zone),
        "owner": case.owner or "",
        "overdue": _yes(late, language),
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
    Column("reminded", "reminder to", "提醒对象"),
    Column("status", "status", "状态"),
    Column("kind", "kind", "类型"),
    Column("customer", "customer", "客户"),
)


def _overdue_rows(case: Case, now: datetime, zone: ZoneInfo, language: Language
                  ) -> list[Row]:
    rows = []
    for deadline in breached(case, now):
        cells = {
            "case_number": case.case_number,
            "deadline": deadline.label(language),
            "due": _when(deadline.due_at, zone),
            "owner": case.owner or word(language, "service_centre"),
            "reminded": deadline.reminded(case, language),
            "status": word(language, case.status.value),
            "kind": KIND_LABELS[language][case.kind],
            "customer": case.customer.name,
        }
        rows.append(Row("Overdue", case.case_id, deadline.name, case.version, cells, True))
    return rows


VIEWS: tuple[View, ...] = (
    View("Cases", CASE_COLUMNS, _case_rows, _case_edits),
    View("Follow-ups", FOLLOW_UP_COLUMNS, _follow_up_rows, _follow_up_edits),
    View("Parts", PARTS_COLUMNS, _parts_rows, _parts_edits),
    View("Refunds", REFUND_COLUMNS, _refund_rows, _refund_edits),
    View("Overdue", OVERDUE_COLUMNS, _overdue_rows),
)
VIEWS_BY_NAME = {view.name: view for view in VIEWS}


def rows_for(case: Case, now: datetime, zone: ZoneInfo, language: Language = Language.ZH
             ) -> dict[str, Row]:
    """Every row this case has in every view, by row id ("<view>|<case id>/<key>"), its
    words in ``language`` (the company's: SERVICE_DESK_DEFAULT_LANGUAGE, zh by default)."""
    return {
        f"{view.name}|{row.row_id}": row
        for view in VIEWS for row in view.rows(case, now, zone, language)
    }


def next_change_at(case: Case, now: datetime) -> datetime | None:
    """When the case's rows will read differently without the case changing: a deadline
    breached, a follow-up call falling due, recorded calls or a done parts request leaving."""
    moments: list[datetime | None] = [deadline.due_at for deadline in deadlines(case)]
    moments += [timer.due_at for timer in timers_for(case).values()]  # a call falls due
    moments.append(_calls_leave_at(case))
    if case.field_service is not None:
        moments += [done + PARTS_KEPT_FOR for request in case.field_service.parts
                    if (done := _done_at(request)) is not None]
    future = [moment for moment in moments if moment is not None and moment > now]
    return min(future) if future else None


# -- what a sync note says ------------------------------------------------------------------------

NOTES: dict[Language, dict[str, str]] = {
    Language.EN: {
        "not_saved": "Not saved ({at}): {reason}",
        "conflict": "{columns} changed meanwhile (now: {now}); your edit was not applied",
        "unknown_editor": "who made this edit is not known ({editor}): only staff can edit",
        "not_a_choice": "'{value}' is not one of: {choices}",
        "owner_needed": "a case cannot be left without an owner",
        "cannot_clear": "this cannot be undone from the sheet",
        "method_fixed": "the refund request has been submitted; its method cannot change",
        "left_view": "this row has left the view; the edit was not applied",
        "waiting": "waiting for the outcome of the call",
        "call_recorded": "this call is already recorded; only the call to make now can be",
    },
    Language.ZH: {
        "not_saved": "未保存（{at}）：{reason}",
        "conflict": "{columns} 已被他人修改（现为：{now}），您的修改未保存",
        "unknown_editor": "无法确认修改人（{editor}）：只有员工可以修改",
        "not_a_choice": "“{value}”不在可选值中：{choices}",
        "owner_needed": "案件必须有负责人",
        "cannot_clear": "此项不能在表格中撤销",
        "method_fixed": "退款申请已提交，退款方式不能再改",
        "left_view": "此行已移出视图，修改未保存",
        "waiting": "等待填写回访结果",
        "call_recorded": "此次回访已记录，只能填写当前待回访的电话",
    },
}


def note_text(language: Language, key: str, **values: str) -> str:
    return NOTES[language][key].format(**values)
