"""What the staff read, in the company's language: reminders of deadlines a case missed
(to its owner, then to the managers), follow-up calls and questions left undone, and the
daily and monthly reports.

Built like the customer's e-mails (`messages._email`): plain text, and the same lines as
escaped HTML. The customer's name and question are the customer's own words: only ever
text, never markup.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, TypeGuard, get_args

from chalicelib.domain.calendar import check_timezone
from chalicelib.domain.case import Language
from chalicelib.domain.messages import EmailText, _email
from chalicelib.domain.timers import TimerKind

TIMER_LABELS: dict[Language, dict[TimerKind, str]] = {
    Language.EN: {
        TimerKind.FIRST_REPLY: "first reply to the customer",
        TimerKind.RESOLVE: "case resolved",
        TimerKind.PHOTOS: "customer's photos",
        TimerKind.REFUND_REQUEST: "refund request submitted (退款申请单)",
        TimerKind.REFUND_POSTING: "refund posted by finance",
        TimerKind.RESHIP: "reshipment",
        TimerKind.TRACKING_CHECK: "tracking check",
        TimerKind.FOLLOW_UP_CALL: "follow-up call",
        TimerKind.CUSTOMER_QUESTION: "customer's question from a follow-up call",
        TimerKind.MILESTONE: "planned installation milestone",
        TimerKind.MANUFACTURER_RETURN: (
            "ask the manufacturer how the repair is going (12 h before the device is due back)"
        ),
        TimerKind.DISPATCH: "repair dispatched (派工)",
        TimerKind.PARTY_REPLY: "reply from the technician, dealer or supplier",
        TimerKind.ON_SITE: "technician on site",
        TimerKind.FIXED: "unit running again (else lend a unit)",
        TimerKind.SIGNED_FORM: "service form returned signed by the customer",
        TimerKind.PARTS_SHIPPING: "approved spare parts shipped (三包备件)",
        TimerKind.LOCAL_PURCHASE: "local purchase: receipt and reimbursement",
        TimerKind.OLD_PART: "old part returned (三包旧件)",
        TimerKind.FEES: "fees collected",
    },
    Language.ZH: {
        TimerKind.FIRST_REPLY: "首次回复客户",
        TimerKind.RESOLVE: "案件解决",
        TimerKind.PHOTOS: "客户照片",
        TimerKind.REFUND_REQUEST: "提交退款申请单",
        TimerKind.REFUND_POSTING: "财务退款",
        TimerKind.RESHIP: "补发/重发",
        TimerKind.TRACKING_CHECK: "物流跟踪查询",
        TimerKind.FOLLOW_UP_CALL: "回访电话",
        TimerKind.CUSTOMER_QUESTION: "回访中客户提出的问题",
        TimerKind.MILESTONE: "安装项目计划节点",
        TimerKind.MANUFACTURER_RETURN: "向厂家维修站询问维修进度（预计返回前 12 小时）",
        TimerKind.DISPATCH: "派工",
        TimerKind.PARTY_REPLY: "技术员/代理商/供应商回复",
        TimerKind.ON_SITE: "技术员到达现场",
        TimerKind.FIXED: "设备恢复运行（否则提供备用机）",
        TimerKind.SIGNED_FORM: "客户签字的售后服务处理单寄回",
        TimerKind.PARTS_SHIPPING: "三包备件发货",
        TimerKind.LOCAL_PURCHASE: "紧急采购：收据与报销",
        TimerKind.OLD_PART: "三包旧件返回",
        TimerKind.FEES: "收取服务费用",
    },
}

ReportTemplate = Literal["daily_summary", "monthly_report"]
REPORT_TEMPLATES: frozenset[ReportTemplate] = frozenset(get_args(ReportTemplate))


def is_report_template(name: str) -> TypeGuard[ReportTemplate]:
    return name in REPORT_TEMPLATES


# Subject (after the company's name) and body of each reminder. Fields: {case_number},
# {label} (what the deadline is), {customer}, {due} (local time), {owner}, {call_number}.
# The question a customer asked is added after the body, quoted.
_REMINDERS: dict[Language, dict[str, tuple[str, str]]] = {
    Language.EN: {
        "deadline_missed": (
            "Case {case_number}: deadline missed ({label})",
            'The deadline "{label}" of case {case_number} for customer {customer} passed '
            "at {due}.\nPlease take care of it now: if it stays undone, it goes to the "
            "managers.",
        ),
        "deadline_escalated": (
            "Case {case_number}: deadline still missed ({label})",
            'The deadline "{label}" of case {case_number} for customer {customer} passed '
            "at {due}, and it is still not met after the reminder to the case's owner.\n"
            "Owner: {owner}.\nPlease see that it is done.",
        ),
        "follow_up_call_overdue": (
            "Case {case_number}: follow-up call {call_number} not made",
            "The {label} number {call_number} of case {case_number} for customer "
            "{customer}, due at {due}, was not made in its window.\n"
            "Please make the call, or record why it could not be made.",
        ),
        "question_unanswered": (
            "Case {case_number}: customer's question still unanswered",
            "A {label} of case {case_number} (customer {customer}) is still unanswered; "
            "it was to be answered or reported by {due}:",
        ),
        "work_dispatched": (
            "Case {case_number}: service order for {party_name}",
            "Customer {customer} needs a repair (case {case_number}), sent to you: "
            "{party_name}.\nPlease reply by {reply_due}{on_site_line}{form_line}.",
        ),
        "parts_approval_needed": (
            "Case {case_number}: parts request {number} to approve ({amount})",
            "Parts request {number} of case {case_number} (customer {customer}) is worth "
            "{amount} and waits for the approval of: {roles}.",
        ),
        "parts_sale_charged": (
            "Case {case_number}: parts request {number} charged as a sale ({amount})",
            "The warranty parts of request {number} (case {case_number}, customer "
            "{customer}) are charged to you as a parts sale of {amount}, because "
            "{reason}.",
        ),
        "abnormal_problem": (
            "Case {case_number}: abnormal problem report {number}",
            "The service team reports an abnormal problem on case {case_number} "
            "(customer {customer}). The report:",
        ),
        "major_quality_problem": (
            "Case {case_number}: MAJOR QUALITY PROBLEM",
            "Case {case_number} (customer {customer}) is flagged as a major quality "
            "problem, to management at once. The finding:",
        ),
    },
    Language.ZH: {
        "deadline_missed": (
            "单号 {case_number}：已超期（{label}）",
            "客户 {customer} 的单号 {case_number}，期限“{label}”已于 {due} 到期。\n"
            "请立即处理；如仍未完成，将上报主管。",
        ),
        "deadline_escalated": (
            "单号 {case_number}：超期仍未处理（{label}）",
            "客户 {customer} 的单号 {case_number}，期限“{label}”已于 {due} 到期，"
            "提醒负责人后仍未完成。\n负责人：{owner}。\n请督促处理。",
        ),
        "follow_up_call_overdue": (
            "单号 {case_number}：第 {call_number} 次回访未完成",
            "客户 {customer} 的单号 {case_number}，第 {call_number} 次{label}"
            "（{due} 起）未在规定时间内完成。\n请尽快回访，或记录无法回访的原因。",
        ),
        "question_unanswered": (
            "单号 {case_number}：客户问题仍未答复",
            "客户 {customer} 的单号 {case_number}，{label}仍未答复"
            "（应于 {due} 前答复或上报）：",
        ),
        "work_dispatched": (
            "单号 {case_number}：派工给 {party_name}",
            "客户 {customer} 需要维修（单号 {case_number}），现派给：{party_name}。\n"
            "请于 {reply_due} 前回复{on_site_line}{form_line}。",
        ),
        "parts_approval_needed": (
            "单号 {case_number}：备件申请 {number} 待审批（{amount}）",
            "单号 {case_number}（客户 {customer}）的备件申请 {number} 金额 {amount}，"
            "待以下人员审批：{roles}。",
        ),
        "parts_sale_charged": (
            "单号 {case_number}：备件申请 {number} 转为备件销售（{amount}）",
            "单号 {case_number}（客户 {customer}）的三包备件申请 {number} 已转为备件销售，"
            "金额 {amount}，由贵方承担，原因：{reason}。",
        ),
        "abnormal_problem": (
            "单号 {case_number}：售服异常问题反馈单 {number}",
            "单号 {case_number}（客户 {customer}）出现异常问题，反馈如下：",
        ),
        "major_quality_problem": (
            "单号 {case_number}：重大质量问题",
            "单号 {case_number}（客户 {customer}）被标记为重大质量问题，立即上报管理层。情况：",
        ),
    },
}

REMINDER_TEMPLATES: frozenset[str] = frozenset(_REMINDERS[Language.EN])

_QUESTION_CLOSING = {
    Language.EN: "Please answer it, or report it to whoever can.",
    Language.ZH: "请答复客户，或上报给能处理的人。",
}

_LATE = {
    Language.EN: "This reminder is sent late: the reminder service was unavailable for a while.",
    Language.ZH: "此提醒发送较晚：提醒服务曾暂时不可用。",
}

_NOBODY = {Language.EN: "nobody", Language.ZH: "无人负责"}

_REPORTS: dict[Language, dict[ReportTemplate, str]] = {
    Language.EN: {"daily_summary": "Daily summary", "monthly_report": "Monthly report"},
    Language.ZH: {"daily_summary": "每日汇总", "monthly_report": "月度报表"},
}

_ATTACHED = {
    Language.EN: "The monthly report is attached as an Excel workbook.",
    Language.ZH: "月度报表见附件（Excel 工作簿）。",
}


def _subject(language: Language, company_name: str, subject: str) -> str:
    prefix = f"【{company_name}】" if language is Language.ZH else f"[{company_name}] "
    return " ".join((prefix + subject).split())  # one line, whatever the values hold


def _one_line(text: str) -> str:
    """Typed text inside a sentence: a line break in it must not start a line of ours."""
    return " ".join(text.split())


def _greeting(language: Language, recipient_name: str) -> str:
    recipient_name = _one_line(recipient_name)
    return f"{recipient_name}，您好：" if language is Language.ZH else f"Dear {recipient_name},"


def local_time(moment: str, timezone: str) -> str:
    """An ISO 8601 time with offset as the staff read it: "2026-11-23 17:30 (Asia/Shanghai)".
    A time that cannot be read is shown as it came."""
    zone = check_timezone(timezone)
    try:
        parsed = datetime.fromisoformat(moment)
    except ValueError:
        return moment
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        return moment
    return f"{parsed.astimezone(zone):%Y-%m-%d %H:%M} ({timezone})"


def _timer_label(language: Language, timer: str) -> str:
    try:
        return TIMER_LABELS[language][TimerKind(timer)]
    except ValueError:
        return timer


_SALE_REASONS = {
    Language.EN: {
        "not_returned": "the old part did not come back in time",
        "incomplete": "the old part came back incomplete",
        "not_warranty": "QA found the fault is not covered by the warranty",
        "not_original": "the old part is not an original part",
    },
    Language.ZH: {
        "not_returned": "三包旧件未按时返回",
        "incomplete": "返回的旧件不完整",
        "not_warranty": "经品管部检验，不属于三包范围",
        "not_original": "返回的旧件非原厂配件",
    },
}

_ON_SITE_LINE = {
    Language.EN: ", be on site by {on_site_due}",
    Language.ZH: "，{on_site_due} 前到达现场",
}

_FORM_LINE = {
    Language.EN: ", and return the service form signed by the customer by {form_due}",
    Language.ZH: "，并于 {form_due} 前寄回客户签字的售后服务处理单",
}


def _field_fields(language: Language, values: dict[str, str], timezone: str) -> dict[str, str]:
    """The fields of the field-service e-mails (dispatch, parts, escalations)."""
    form_due = values.get("form_due_at", "")
    on_site_due = values.get("on_site_due_at", "")  # a supplier is not sent on site
    return {
        "party_name": _one_line(values.get("party_name", "")),
        "reply_due": local_time(values.get("reply_due_at", ""), timezone),
        "on_site_line": _ON_SITE_LINE[language].format(
            on_site_due=local_time(on_site_due, timezone)
        ) if on_site_due else "",
        "form_line": _FORM_LINE[language].format(form_due=local_time(form_due, timezone))
        if form_due else "",
        "number": values.get("number", ""),
        "amount": values.get("amount", ""),
        "roles": values.get("roles", "").replace(",", ", "),
        "reason": _SALE_REASONS[language].get(values.get("reason", ""), values.get("reason", "")),
    }


def staff_email(
    *,
    template: str,
    values: dict[str, str],
    language: Language,
    recipient_name: str,
    case_number: str,
    customer_name: str,
    company_name: str,
    signature: str,
    timezone: str,
) -> EmailText:
    """A reminder about one case to its owner, the supervisors or the managers."""
    if template not in _REMINDERS[language]:
        raise ValueError(f"unknown staff template {template!r}")
    subject_format, body_format = _REMINDERS[language][template]
    fields = {
        "case_number": case_number,
        "label": _timer_label(language, values.get("timer", "")),
        "customer": _one_line(customer_name),
        "due": local_time(values.get("due_at", ""), timezone),
        "owner": values.get("owner") or _NOBODY[language],
        "call_number": values.get("call_number", ""),
        **_field_fields(language, values, timezone),
    }
    # Fields are filled in one pass: braces in a customer's name stay as they are.
    body = body_format.format_map(fields)
    lines = [_greeting(language, recipient_name), "", *body.split("\n")]
    if template == "question_unanswered":
        # Quoted (indented): the customer's words, never taken for a link or for ours.
        question = values.get("question", "").splitlines() or [""]
        lines += ["", *(f"    {line}" for line in question), "", _QUESTION_CLOSING[language]]
    if template in ("abnormal_problem", "major_quality_problem"):
        # The staff's finding, quoted the same way.
        lines += ["", *(f"    {line}" for line in values.get("text", "").splitlines() or [""])]
    if values.get("late") == "yes":
        lines += ["", _LATE[language]]
    lines += ["", signature]
    return _email(language, _subject(language, company_name, subject_format.format_map(fields)),
                  lines, "")


def report_email(
    *,
    template: ReportTemplate,
    language: Language,
    recipient_name: str,
    lines: list[str],
    subject_detail: str,
    company_name: str,
    signature: str,
) -> EmailText:
    """A report to the staff: the daily summary (its lines made by the caller) or the
    monthly report (a workbook attached by the caller; any lines follow the note)."""
    if template not in _REPORTS[language]:
        raise ValueError(f"unknown report template {template!r}")
    subject = _subject(
        language, company_name, f"{_REPORTS[language][template]} {subject_detail}".strip()
    )
    body = [_ATTACHED[language], *lines] if template == "monthly_report" else list(lines)
    text_lines = [_greeting(language, recipient_name), "", *body, "", signature]
    return _email(language, subject, text_lines, "")
