"""What the customer reads, in their language: e-mails and the words on their status page."""

from __future__ import annotations

import json
import re
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
        CaseKind.MAINTENANCE_VISIT: "Planned maintenance visit",
        CaseKind.INSTALLATION_PROJECT: "Installation project",
        CaseKind.WORKSHOP_REPAIR: "Workshop repair",
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
        CaseKind.MAINTENANCE_VISIT: "定期保养",
        CaseKind.INSTALLATION_PROJECT: "安装项目",
        CaseKind.WORKSHOP_REPAIR: "送修",
    },
}

STATUS_LABELS: dict[Language, dict[CaseStatus, str]] = {
    Language.EN: {
        CaseStatus.NEW: "Received, waiting for an agent",
        CaseStatus.AWAITING_PHOTOS: "Waiting for your photos",
        CaseStatus.VERIFIED: "Checked, we are deciding what to do",
        CaseStatus.NOT_TRUE: "Checked",
        CaseStatus.WATCHING_TRACKING: "We are watching your parcel's tracking",
        CaseStatus.AWAITING_APPROVAL: "We are deciding what to do",
        CaseStatus.IN_PROGRESS: "Being put right",
        CaseStatus.RESOLVED: "Resolved",
        CaseStatus.CLOSED: "Closed",
        CaseStatus.CANCELLED: "Cancelled",
    },
    Language.ZH: {
        CaseStatus.NEW: "已受理，等待客服处理",
        CaseStatus.AWAITING_PHOTOS: "等待您提供照片",
        CaseStatus.VERIFIED: "已核实，正在确定处理方案",
        CaseStatus.NOT_TRUE: "已核实",
        CaseStatus.WATCHING_TRACKING: "正在跟踪您的包裹物流",
        CaseStatus.AWAITING_APPROVAL: "正在确定处理方案",
        CaseStatus.IN_PROGRESS: "处理中",
        CaseStatus.RESOLVED: "已解决",
        CaseStatus.CLOSED: "已关闭",
        CaseStatus.CANCELLED: "已取消",
    },
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
    return _email(language, subject, lines, status_url)


# A line that is a web address and nothing else: shown as a link in the HTML e-mail.
_URL_LINE = re.compile(r"https?://[^\s<>\"']+", re.IGNORECASE)


def _is_link(line: str, status_url: str) -> bool:
    return line == status_url or _URL_LINE.fullmatch(line) is not None


def _email(language: Language, subject: str, lines: list[str], status_url: str) -> EmailText:
    """The same lines as plain text and as escaped HTML; a line that is exactly a web
    address (the status link, a survey link …) made a link."""
    text = "\n".join(lines) + "\n"
    body = "".join(
        f'<p><a href="{escape(line)}">{escape(line)}</a></p>'
        if _is_link(line, status_url)
        else f"<p>{escape(line)}</p>"
        for line in lines
        if line
    )
    html = f'<!doctype html><html lang="{language.value}"><body>{body}</body></html>'
    return EmailText(subject=subject, text=text, html=html)


REMEDY_LABELS: dict[Language, dict[str, str]] = {
    Language.EN: {
        "refund_difference": "a refund of the price difference",
        "partial_refund": "a partial refund",
        "full_refund": "a full refund",
        "reship": "a new shipment",
        "reship_missing_part": "sending the missing part",
        "exchange": "an exchange",
        "coupon": "a coupon",
        "gift": "a small gift",
        "keep_wrong_item": "you keep the item sent by mistake",
        "return_item": "the item is returned to us",
    },
    Language.ZH: {
        "refund_difference": "退还差价",
        "partial_refund": "部分退款",
        "full_refund": "全额退款",
        "reship": "重新发货",
        "reship_missing_part": "补发缺少的配件",
        "exchange": "换货",
        "coupon": "优惠券",
        "gift": "小礼品",
        "keep_wrong_item": "发错的商品您可以保留",
        "return_item": "请将商品寄回",
    },
}

OFFER_LABELS = {
    Language.EN: {
        "discount": "a discount on your next order",
        "gift": "a gift with your next order",
    },
    Language.ZH: {"discount": "下次购物的折扣", "gift": "下次购物赠送的小礼品"},
}

# Subject and body of each thing a customer is told as their case moves on. {case_number}
# is always there; the other fields come from the action (staff's own words in {text}).
CASE_MESSAGES: dict[Language, dict[str, tuple[str, str]]] = {
    Language.EN: {
        "photos_requested": (
            "Photos needed for case {case_number}",
            "To check what happened, please send us photos of the product and of the "
            "package it came in: upload them on your case page.",
        ),
        "explanation": ("About your case {case_number}", "{text}{offer}"),
        "resolution_decided": (
            "What we will do: case {case_number}",
            "We are sorry for the trouble. This is what we will do: {remedies}.",
        ),
        "refund_posted_card": (
            "Refund sent: case {case_number}",
            "We have refunded {amount} to your credit card. The bank needs "
            "{days_from} to {days_to} working days to show it on your account.",
        ),
        "refund_posted_paypal": (
            "Refund sent: case {case_number}",
            "We have refunded {amount} through PayPal; PayPal sends you its own refund "
            "e-mail as well.",
        ),
        "refund_posted": (
            "Refund sent: case {case_number}",
            "We have refunded {amount} by bank transfer.",
        ),
        "refunded_apology": (
            "Your refund is complete: case {case_number}",
            "Your refund of {amount} is complete. Once more, we apologise for the trouble.",
        ),
        "reshipped": (
            "On its way: case {case_number}",
            "We have shipped your parcel. Tracking number: {tracking_no} {carrier}{extras}",
        ),
        "tracking_explained": (
            "About your parcel: case {case_number}",
            "Parcel tracking is often updated only after the parcel reaches your country. "
            "We are watching it and will come back to you within a few days.",
        ),
        "tracking_not_online": (
            "About your parcel: case {case_number}",
            "The tracking of your parcel is still not online. We are sorry: we can refund "
            "you or send the parcel again. Please reply to this e-mail and tell us which "
            "you prefer.",
        ),
        "parcel_on_its_way": (
            "Your parcel is on its way: case {case_number}",
            "The tracking of your parcel is now online; it is on its way to you.",
        ),
        "repair_fee_paid": (
            "Repair paid: case {case_number}",
            "We have paid the repair fee to {repairer}; the repair costs you nothing.",
        ),
        "answer": ("Answer to your question: case {case_number}", "{text}"),
        "address_changed": (
            "Address changed: case {case_number}",
            "Your order will be delivered to: {address}",
        ),
        "wholesale_account": (
            "Your wholesale account: case {case_number}",
            "Your wholesale account {account} is ready. Your coupon code: {coupon_code}",
        ),
        "apology": ("Our apologies: case {case_number}", "{text}"),
        "staff_message": ("Message about your case {case_number}", "{text}"),
        "resolved": (
            "Case {case_number} is resolved",
            "Your case is resolved. Thank you for your patience; if anything is still "
            "not right, just reply to this e-mail.",
        ),
        "satisfaction_survey": (
            "How did we do? Case {case_number}",
            "How satisfied are you with the way we handled your case? Please tell us on "
            "this page, from 1 (very unhappy) to 5 (very happy):\n{survey_url}\n"
            "Opening the link alone records nothing: only the answer you send counts.",
        ),
        "workshop_quote": (
            "Repair quote: case {case_number}",
            "We have examined your device.\n{description}\nThe repair costs {amount}. Please "
            "tell us whether we should go ahead: reply to this e-mail or call us.",
        ),
        "workshop_ready_for_pickup": (
            "Your device is ready: case {case_number}",
            "Your device is repaired and has passed our full check. You can collect it at "
            "our shop, with everything you left with it. To pay: {amount}.",
        ),
        "workshop_return_unrepaired": (
            "Your device is ready to collect: case {case_number}",
            "As you asked, we have not repaired your device. You can collect it at our "
            "shop, with everything you left with it.",
        ),
        "warranty_decision": (
            "Warranty check: case {case_number}",
            "We have checked your unit {serial_no}. {decision}",
        ),
        "fees_quoted": (
            "Quote for the repair: case {case_number}",
            "The repair is not covered by the warranty. Our quote: {amount} for: "
            "{description}\nWe start the work once you agree. To agree, sign with your "
            "name on this page:\n{sign_url}",
        ),
        "technician_dispatched": (
            "Your repair is arranged: case {case_number}",
            "{party_name} will take care of your repair and contact you shortly.",
        ),
        "service_form_to_sign": (
            "Please confirm the repair: case {case_number}",
            "The work is done: {work}\nPlease confirm it on the service form by signing "
            "with your name on this page (you may add a comment):\n{sign_url}",
        ),
    },
    Language.ZH: {
        "photos_requested": (
            "单号 {case_number}：请提供照片",
            "为了核实情况，请在您的处理进度页面上传商品及外包装的照片。",
        ),
        "explanation": ("关于您的单号 {case_number}", "{text}{offer}"),
        "resolution_decided": (
            "单号 {case_number}：处理方案",
            "给您带来不便，非常抱歉。我们的处理方案是：{remedies}。",
        ),
        "refund_posted_card": (
            "单号 {case_number}：已退款",
            "已向您的信用卡退款 {amount}。银行入账需要 {days_from}–{days_to} 个工作日。",
        ),
        "refund_posted_paypal": (
            "单号 {case_number}：已退款",
            "已通过 PayPal 退款 {amount}，PayPal 也会给您发送退款通知邮件。",
        ),
        "refund_posted": ("单号 {case_number}：已退款", "已通过银行转账退款 {amount}。"),
        "refunded_apology": (
            "单号 {case_number}：退款已完成",
            "您的退款 {amount} 已完成。再次向您致歉。",
        ),
        "reshipped": (
            "单号 {case_number}：已发货",
            "我们已为您发货，物流单号：{tracking_no} {carrier}{extras}",
        ),
        "tracking_explained": (
            "单号 {case_number}：关于您的包裹",
            "包裹到达目的国后物流信息才会更新。我们会持续跟踪，并在几天内回复您。",
        ),
        "tracking_not_online": (
            "单号 {case_number}：关于您的包裹",
            "您的包裹物流信息仍未更新，非常抱歉。我们可以为您退款或重新发货，"
            "请回复此邮件告诉我们您的选择。",
        ),
        "parcel_on_its_way": (
            "单号 {case_number}：包裹已在途中",
            "您的包裹物流信息已更新，正在派送途中。",
        ),
        "repair_fee_paid": (
            "单号 {case_number}：维修费已支付",
            "我们已向 {repairer} 支付维修费用，您无需承担。",
        ),
        "answer": ("单号 {case_number}：问题答复", "{text}"),
        "address_changed": ("单号 {case_number}：地址已修改", "您的订单将寄往：{address}"),
        "wholesale_account": (
            "单号 {case_number}：您的批发账户",
            "您的批发账户 {account} 已开通，优惠码：{coupon_code}",
        ),
        "apology": ("单号 {case_number}：致歉", "{text}"),
        "staff_message": ("单号 {case_number}：客服留言", "{text}"),
        "resolved": (
            "单号 {case_number} 已处理完毕",
            "您的问题已处理完毕，感谢您的耐心。如仍有问题，请直接回复此邮件。",
        ),
        "satisfaction_survey": (
            "单号 {case_number}：请评价我们的服务",
            "您对我们处理此单的服务满意吗？请在下面的页面为我们打分"
            "（1 = 非常不满意，5 = 非常满意）：\n{survey_url}\n"
            "仅打开链接不会记录任何评价，提交后才算数。",
        ),
        "workshop_quote": (
            "单号 {case_number}：维修报价",
            "我们已检测您的设备。\n{description}\n维修费用为 {amount}。请回复此邮件或致电"
            "告诉我们是否进行维修。",
        ),
        "workshop_ready_for_pickup": (
            "单号 {case_number}：设备已修好",
            "您的设备已修好，并已通过全面检测。请到本店取回设备及随机物品。应付金额：{amount}。",
        ),
        "workshop_return_unrepaired": (
            "单号 {case_number}：请取回设备",
            "按您的要求，我们未维修您的设备。请到本店取回设备及随机物品。",
        ),
        "warranty_decision": (
            "单号 {case_number}：三包核定结果",
            "我们已核查您的设备 {serial_no}。{decision}",
        ),
        "fees_quoted": (
            "单号 {case_number}：维修报价",
            "此次维修不在三包范围内。报价：{amount}，项目：{description}\n"
            "您同意后我们即开始维修。请在此页面签名确认：\n{sign_url}",
        ),
        "technician_dispatched": (
            "单号 {case_number}：已派工",
            "{party_name} 将负责您的维修，并会尽快与您联系。",
        ),
        "service_form_to_sign": (
            "单号 {case_number}：请确认维修完成",
            "维修已完成：{work}\n请在此页面签名确认售后服务处理单（可附意见）：\n{sign_url}",
        ),
    },
}


_WARRANTY_REASONS = {
    Language.EN: {
        "period_ended": "the warranty period ended on {warranty_ends_on}",
        "hours_exceeded": "the operating hours are past the warranty hours",
        "misuse": "the technician found the fault was caused by misuse",
        "not_original_part": "a part that is not original caused the fault",
        "not_sold_yet": "our records do not show the unit as sold on that day",
        "hours_unknown": "the operating hours were not read",
    },
    Language.ZH: {
        "period_ended": "三包期已于 {warranty_ends_on} 结束",
        "hours_exceeded": "工作小时数已超过三包小时数",
        "misuse": "经技术员检查，故障系使用不当造成",
        "not_original_part": "故障由非原厂配件造成",
        "not_sold_yet": "记录显示该设备当日尚未售出",
        "hours_unknown": "未读取工作小时数",
    },
}


def _warranty_sentence(language: Language, values: dict[str, str]) -> str:
    """The warranty decision in the customer's words: free, under contract, or paid and why."""
    zh = language is Language.ZH
    if values.get("in_warranty"):
        ends = values.get("warranty_ends_on", "")
        if zh:
            return "设备在三包期内，维修免费" + (f"（三包期至 {ends}）。" if ends else "。")
        return "It is under warranty: the repair is free" + (
            f" (warranty until {ends})." if ends else "."
        )
    reasons = [
        _WARRANTY_REASONS[language].get(r, r).format(warranty_ends_on=values.get(
            "warranty_ends_on", ""))
        for r in values.get("reasons", "").split(",") if r
    ]
    why = ("；" if zh else "; ").join(reasons)
    if values.get("service_class") == "B":
        return (f"不在三包范围内（{why}），按保养合同处理。" if zh else
                f"It is not under warranty ({why}); the work is done under your maintenance "
                "contract.")
    return (f"不在三包范围内（{why}），维修需收费，开工前我们会先报价并请您确认。" if zh else
            f"It is not under warranty ({why}), so the repair is paid: we will send you a "
            "quote to agree to before any work starts.")


def _filled(language: Language, template: str, values: dict[str, str]) -> dict[str, str]:
    """The values as the customer reads them: remedies and offers in their words."""
    filled = dict(values)
    if "remedies" in values:
        names = REMEDY_LABELS[language]
        amounts = values.get("amounts", "").split(",")
        notes = json.loads(values["notes"]) if values.get("notes") else []
        parts = []
        for n, remedy in enumerate(values["remedies"].split(",")):
            extra = [x for x in (amounts[n] if n < len(amounts) else "",
                                 notes[n] if n < len(notes) else "") if x]
            parts.append(names.get(remedy, remedy) + (f" ({', '.join(extra)})" if extra else ""))
        filled["remedies"] = ("、" if language is Language.ZH else ", ").join(parts)
    if template == "explanation":
        offer = values.get("offer", "none")
        if offer in OFFER_LABELS[language]:
            label = OFFER_LABELS[language][offer]
            detail = values.get("offer_detail", "")
            filled["offer"] = (
                f"\n\n作为补偿，我们为您准备了{label}：{detail}"
                if language is Language.ZH
                else f"\n\nTo make up for it, we offer you {label}: {detail}"
            )
        else:
            filled["offer"] = ""
    if template == "warranty_decision":
        filled["decision"] = _warranty_sentence(language, values)
    if template == "reshipped":
        extras = [e for e in values.get("extras", "").split(",") if e]
        names = REMEDY_LABELS[language]
        filled["extras"] = (
            ("\n随包裹附赠：" if language is Language.ZH else "\nAlso in the parcel: ")
            + ", ".join(names.get(e, e) for e in extras)
            if extras
            else ""
        )
        filled["carrier"] = f"({values['carrier']})" if values.get("carrier") else ""
    return filled


class _Blank(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


def case_message(
    *,
    template: str,
    values: dict[str, str],
    language: Language,
    customer_name: str,
    case_number: str,
    status_url: str,
    company_name: str,
    signature: str,
) -> EmailText:
    """One step of a case, told to the customer (e-mail and status page use the same text)."""
    subject_format, body_format = CASE_MESSAGES[language][template]
    fields = _Blank({
        **_filled(language, template, values),
        "case_number": case_number,
        "sign_url": f"{status_url}/sign",
    })
    subject = f"【{company_name}】" if language is Language.ZH else f"[{company_name}] "
    subject += subject_format.format_map(fields)
    greeting = f"{customer_name}，您好：" if language is Language.ZH else f"Dear {customer_name},"
    follow = (
        "查看处理进度：" if language is Language.ZH else "Follow your case:"
    )
    body = body_format.format_map(fields)
    lines = [greeting, "", *body.split("\n"), "", follow, status_url, "", signature]
    return _email(language, subject, lines, status_url)


def message_text(template: str, values: dict[str, str], language: Language) -> str:
    """The body of a case message alone, for the customer's status page."""
    _, body_format = CASE_MESSAGES[language][template]
    return body_format.format_map(_Blank({**_filled(language, template, values)}))
