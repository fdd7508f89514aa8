"""What the customer reads, in their language: e-mails and the words on their status page."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from chalicelib.domain.case import CaseKind, CaseStatus, Language

KIND_LABELS: dict[Language, dict[CaseKind, str]] = {
    Language.EN: {
        CaseKind.ENQUIRY: "Question about a product or an order",
        CaseKind.ORDER_CANCEL: "Cancel an order",
        CaseKind.ORDER_CHANGE: "Change an order (product or address)",
        CaseKind.NOT_AS_DESCRIBED: "Item not as described",
        CaseKind.WRONG_ITEM: "Wrong item sent",
        CaseKind.MISSING_ITEM: "Item or accessory missing",
        CaseKind.NOT_RECEIVED: "Parcel not received",
        CaseKind.QUALITY_PROBLEM: "Quality problem",
        CaseKind.RETURN_REQUEST: "Return an item",
        CaseKind.REPAIR_REQUEST: "Repair request",
        CaseKind.SERVICE_COMPLAINT: "Complaint about our service",
        CaseKind.WHOLESALE_REGISTRATION: "Wholesale account registration",
    },
    Language.ZH: {
        CaseKind.ENQUIRY: "产品或订单咨询",
        CaseKind.ORDER_CANCEL: "取消订单",
        CaseKind.ORDER_CHANGE: "修改订单（换产品或改地址）",
        CaseKind.NOT_AS_DESCRIBED: "与描述不一致",
        CaseKind.WRONG_ITEM: "发错产品",
        CaseKind.MISSING_ITEM: "少发/漏发配件",
        CaseKind.NOT_RECEIVED: "未收到包裹",
        CaseKind.QUALITY_PROBLEM: "质量问题",
        CaseKind.RETURN_REQUEST: "退货",
        CaseKind.REPAIR_REQUEST: "报修",
        CaseKind.SERVICE_COMPLAINT: "服务投诉",
        CaseKind.WHOLESALE_REGISTRATION: "批发账户注册",
    },
}

STATUS_LABELS: dict[Language, dict[CaseStatus, str]] = {
    Language.EN: {CaseStatus.NEW: "Received, waiting for an agent"},
    Language.ZH: {CaseStatus.NEW: "已受理，等待客服处理"},
}

HISTORY_LABELS: dict[Language, dict[str, str]] = {
    Language.EN: {"case_received": "We received your report."},
    Language.ZH: {"case_received": "我们已收到您的反馈。"},
}


@dataclass(frozen=True)
class EmailText:
    subject: str
    text: str
    html: str


def case_received_email(
    *,
    language: Language,
    customer_name: str,
    case_number: str,
    kind: CaseKind,
    status_url: str,
    company_name: str,
    signature: str,
) -> EmailText:
    """The confirmation a customer gets right after reporting a problem."""
    kind_label = KIND_LABELS[language][kind]
    if language is Language.ZH:
        subject = f"【{company_name}】已收到您的反馈，单号 {case_number}"
        lines = [
            f"{customer_name}，您好：",
            "",
            f"我们已收到您的反馈（{kind_label}），单号为 {case_number}。",
            "客服会尽快与您联系。您可以随时通过下面的私人链接查看处理进度：",
            status_url,
            "请勿将此链接转发给他人。",
            "",
            signature,
        ]
    else:
        subject = f"[{company_name}] We received your report, case {case_number}"
        lines = [
            f"Dear {customer_name},",
            "",
            f"Thank you for telling us ({kind_label}). Your case number is {case_number}.",
            "An agent will contact you soon. You can follow your case at any time",
            "through this private link:",
            status_url,
            "Please do not share this link.",
            "",
            signature,
        ]
    text = "\n".join(lines) + "\n"
    body = "".join(
        f'<p><a href="{escape(line)}">{escape(line)}</a></p>'
        if line == status_url
        else f"<p>{escape(line)}</p>"
        for line in lines
        if line
    )
    html = f'<!doctype html><html lang="{language.value}"><body>{body}</body></html>'
    return EmailText(subject=subject, text=text, html=html)
