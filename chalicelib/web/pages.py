"""The customer's pages: the complaint form and the private status page.

Jinja2 with autoescaping: whatever a customer typed is shown as text, never as markup.
Jinja2 is imported on first render, so API-only cold starts do not pay for it.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from chalicelib.domain.case import FORM_KINDS, Case, Language
from chalicelib.domain.messages import (
    HISTORY_LABELS,
    KIND_LABELS,
    STATUS_LABELS,
    message_text,
)

if TYPE_CHECKING:
    from jinja2 import Environment

    from chalicelib.services.photos import PhotoPanel
    from chalicelib.services.status import CustomerCaseView

UI: dict[Language, dict[str, str]] = {
    Language.EN: {
        "title": "Report a problem",
        "intro": "Tell us what went wrong. We reply to every report; "
        "you will get a case number and a private link to follow it.",
        "name": "Your name",
        "email": "E-mail",
        "phone": "Phone (optional)",
        "order_ref": "Order number",
        "order_ref_hint": "Needed for problems with an order.",
        "product": "Product / model",
        "serial_no": "Serial number (optional)",
        "purchase_date": "Purchase date (optional)",
        "kind": "Kind of problem",
        "choose": "Please choose…",
        "description": "What happened?",
        "submit": "Send report",
        "website": "Leave this field empty",
        "errors_title": "Please correct the marked fields.",
        "already_sent": "This form was already sent once. Check it and send it again "
        "to open a new case.",
        "switch": "中文",
        "thanks": "Thank you, we have received your report.",
        "your_number": "Your case number",
        "keep_link": "Keep this private link to follow your case (do not share it):",
        "status": "Status",
        "history": "History",
        "details": "Your report",
        "case": "Case",
        "received": "Received — thank you",
        "received_text": "Your report has been received. We will contact you soon.",
        "not_found": "No case here",
        "not_found_text": "This link does not lead to a case. "
        "Please check the link in your e-mail.",
        "error_title": "Something went wrong",
        "unavailable": "We cannot take reports for a moment. Please try again in a minute: "
        "nothing you sent was lost or sent twice.",
        "too_many": "Too many reports were sent from here. "
        "Please try again in {minutes} minutes.",
    },
    Language.ZH: {
        "title": "问题反馈",
        "intro": "请告诉我们遇到了什么问题。每条反馈我们都会回复；"
        "提交后您会得到一个单号和一个查看进度的私人链接。",
        "name": "姓名",
        "email": "电子邮件",
        "phone": "电话（选填）",
        "order_ref": "订单号",
        "order_ref_hint": "订单相关的问题需要填写。",
        "product": "产品 / 型号",
        "serial_no": "序列号（选填）",
        "purchase_date": "购买日期（选填）",
        "kind": "问题类型",
        "choose": "请选择…",
        "description": "问题描述",
        "submit": "提交反馈",
        "website": "此栏请留空",
        "errors_title": "请修改标出的栏目。",
        "already_sent": "此表单已提交过。请核对后再次提交，将创建新的单号。",
        "switch": "English",
        "thanks": "谢谢，我们已收到您的反馈。",
        "your_number": "您的单号",
        "keep_link": "请保存此私人链接以查看处理进度（请勿转发）：",
        "status": "状态",
        "history": "处理记录",
        "details": "您的反馈",
        "case": "单号",
        "received": "已收到，谢谢",
        "received_text": "您的反馈已收到，我们会尽快与您联系。",
        "not_found": "找不到该单",
        "not_found_text": "此链接没有对应的单号，请核对邮件中的链接。",
        "error_title": "出错了",
        "too_many": "此处提交次数过多，请 {minutes} 分钟后再试。",
        "unavailable": "系统暂时无法受理，请一分钟后重试；已提交的内容不会丢失或重复。",
    },
}

# The photos part of the status page (templates/photos.html).
PHOTO_UI: dict[Language, dict[str, str]] = {
    Language.EN: {
        "title": "Photos",
        "wanted": "Please send us photos of the product and of the package it came in: "
        "one photo at a time, as many as help to show the problem.",
        "offer": "You may add photos of the product or its package if they help to show "
        "the problem.",
        "choose": "Choose a photo",
        "send": "Send photo",
        "hint": "JPEG, PNG, WebP or HEIC, up to {mb} MB. {count} of {most} photos sent.",
        "received": "Thank you, we have received your photo.",
        "full": "You have sent {most} photos, the most one case can take. If we need "
        "more, we will tell you.",
        "unavailable": "Your photos cannot be shown just now; please reload this page in "
        "a minute.",
        "wrong_type": "Please choose a photo: JPEG, PNG, WebP or HEIC.",
        "too_large": "This photo is larger than {mb} MB; please send a smaller one.",
        "failed": "The photo could not be prepared for sending; please reload the page.",
        "photo": "Photo {n}",
    },
    Language.ZH: {
        "title": "照片",
        "wanted": "请上传商品及外包装的照片：每次一张，能说明问题的都可以上传。",
        "offer": "如有助于说明问题，您可以上传商品或外包装的照片。",
        "choose": "选择照片",
        "send": "上传照片",
        "hint": "JPEG、PNG、WebP 或 HEIC 格式，不超过 {mb} MB。已上传 {count} / {most} 张。",
        "received": "谢谢，照片已收到。",
        "full": "您已上传 {most} 张照片，已达每个单号的上限。如需更多，我们会通知您。",
        "unavailable": "暂时无法显示您的照片，请一分钟后刷新此页面。",
        "wrong_type": "请选择照片：JPEG、PNG、WebP 或 HEIC 格式。",
        "too_large": "照片超过 {mb} MB，请上传较小的照片。",
        "failed": "照片上传准备失败，请刷新页面。",
        "photo": "照片 {n}",
    },
}


@lru_cache(maxsize=1)
def _environment() -> Environment:
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    return Environment(
        loader=FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _render(template: str, language: Language, **values: Any) -> str:
    other = Language.EN if language is Language.ZH else Language.ZH
    return _environment().get_template(template).render(
        lang=language.value, other_lang=other.value, t=UI[language], **values
    )


def complaint_form(
    language: Language,
    *,
    idempotency_key: str,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> str:
    kinds = [(kind.value, KIND_LABELS[language][kind]) for kind in FORM_KINDS]
    return _render(
        "form.html",
        language,
        kinds=kinds,
        idempotency_key=idempotency_key,
        values=values or {},
        errors=errors or {},
    )


def case_status(view: CustomerCaseView, language: Language, *, just_submitted: bool,
                status_url: str, photos: PhotoPanel | None = None,
                photos_api_url: str | None = None) -> str:
    case = view.case
    history = [
        (event.at, text)
        for event in view.history
        for text in (
            [message_text(m["template"], m["values"], language) for m in event.told_customer]
            or [HISTORY_LABELS[language].get(event.action, "")]
        )
        if text
    ]
    return _render(
        "status.html",
        language,
        case=case,
        kind_label=KIND_LABELS[language][case.kind],
        status_label=STATUS_LABELS[language][case.status],
        history=history,
        just_submitted=just_submitted,
        status_url=status_url,
        photos=photos,
        photos_api_url=photos_api_url,
        pt=PHOTO_UI[language],
    )


def message_page(language: Language, title_key: str, text: str, *, home: str) -> str:
    return _render("message.html", language, title=UI[language][title_key], text=text, home=home)


# The satisfaction page (templates/satisfaction.html): the link the customer gets after
# their case is resolved. Ratings 1 (very unhappy) … 5 (very happy).
SATISFACTION_UI: dict[Language, dict[str, str]] = {
    Language.EN: {
        "title": "How did we do?",
        "ask": "How satisfied are you with the way we handled your case?",
        "rating": "Your rating",
        "comment": "Anything you would like to tell us? (optional)",
        "send": "Send rating",
        "thanks": "Thank you for your rating.",
        "your_rating": "Your rating",
        "change": "Change my rating",
        "not_now": "There is nothing to rate on this case right now.",
    },
    Language.ZH: {
        "title": "请评价我们的服务",
        "ask": "您对我们处理此单的服务满意吗？",
        "rating": "您的评分",
        "comment": "还有什么想告诉我们的吗？（选填）",
        "send": "提交评价",
        "thanks": "感谢您的评价。",
        "your_rating": "您的评分",
        "change": "修改评价",
        "not_now": "此单目前没有需要评价的内容。",
    },
}

RATING_LABELS: dict[Language, dict[int, str]] = {
    Language.EN: {
        1: "Very unhappy",
        2: "Unhappy",
        3: "Neither happy nor unhappy",
        4: "Happy",
        5: "Very happy",
    },
    Language.ZH: {1: "非常不满意", 2: "不满意", 3: "一般", 4: "满意", 5: "非常满意"},
}

COMMENT_MAX_LENGTH = 2000


def satisfaction_page(
    language: Language,
    *,
    case_number: str,
    state: Literal["ask", "thanks", "not_now"],
    rating: int | None = None,
    comment: str = "",
    errors: dict[str, str] | None = None,
) -> str:
    """The customer's rating of a case: the form ("ask", with their rating and comment
    kept when it comes back with errors), the thanks, or nothing to rate ("not_now").
    The form posts to the page's own address; "change my rating" links to ``?change=1``."""
    return _render(
        "satisfaction.html",
        language,
        st=SATISFACTION_UI[language],
        case_number=case_number,
        state=state,
        ratings=sorted(RATING_LABELS[language].items()),
        rating=rating,
        rating_label=RATING_LABELS[language].get(rating) if rating is not None else None,
        comment=comment,
        comment_max=COMMENT_MAX_LENGTH,
        errors=errors or {},
    )


# The signing page (templates/sign.html): the customer's private link to agree to a fee
# quote before paid work, or to confirm the service form (售后服务处理单) once the work is
# done. The typed name is the signature.
SIGN_UI: dict[Language, dict[str, str]] = {
    Language.EN: {
        "title": "Sign",
        "heading_quote": "Quote for work outside the warranty",
        "heading_form": "Service form",
        "explain_quote": "By typing your name and signing, you agree to the quoted fees; "
        "the work starts after that.",
        "explain_form": "By typing your name and signing, you confirm the work was done. "
        "Anything not right? Say so in the comment.",
        "name": "Your full name (your signature)",
        "comment": "Comment (optional)",
        "sign": "Sign",
        "thanks": "Thank you: signed.",
        "not_now": "There is nothing to sign on this case right now.",
        "amount": "Amount",
        "description": "For",
        "work": "Work done",
        "parts": "Parts used",
        "hours": "Hours",
        "signed_by": "Signed by",
        "signed_at": "Signed at",
        "need_name": "type your name to sign",
    },
    Language.ZH: {
        "title": "签字确认",
        "heading_quote": "三包外维修报价",
        "heading_form": "售后服务处理单",
        "explain_quote": "输入姓名并签字，即表示您同意上述费用；签字后我们开始维修。",
        "explain_form": "输入姓名并签字，即表示您确认维修已完成。如有问题，请在意见栏中说明。",
        "name": "您的姓名（即签名）",
        "comment": "意见（选填）",
        "sign": "签字",
        "thanks": "谢谢，已签字。",
        "not_now": "此单目前没有需要签字的内容。",
        "amount": "金额",
        "description": "项目",
        "work": "维修内容",
        "parts": "使用配件",
        "hours": "工时",
        "signed_by": "签字人",
        "signed_at": "签字时间",
        "need_name": "请输入姓名以签字",
    },
}


def sign_page(
    language: Language,
    *,
    case_number: str,
    state: Literal["ask", "signed", "not_now"],
    what: str = "",
    lines: list[tuple[str, str]] | None = None,
    name: str = "",
    comment: str = "",
    errors: dict[str, str] | None = None,
) -> str:
    """The quote or the service form with a name field to sign it ("ask"), the thanks with
    who signed and when ("signed"), or nothing to sign ("not_now"). Posts to itself."""
    return _render(
        "sign.html",
        language,
        sg=SIGN_UI[language],
        case_number=case_number,
        state=state,
        what=what,
        lines=lines or [],
        name=name,
        comment=comment,
        errors=errors or {},
    )


def sign_lines(case: Case, what: str, language: Language) -> list[tuple[str, str]]:
    """The document to sign (or signed) as label/value lines, in the customer's words."""
    from chalicelib.domain.field_actions import signature_on

    ui = SIGN_UI[language]
    record = case.field_service
    if record is None:
        return []
    if what == "quote" and record.quote is not None:
        quote = record.quote
        lines = [(ui["amount"], f"{quote.amount:.2f}"), (ui["description"], quote.description)]
    elif what == "form" and record.form is not None:
        form = record.form
        parts = "\n".join(
            f"{p.part_no} × {p.quantity}" + (f" ({p.description})" if p.description else "")
            for p in form.parts_used
        )
        lines = [(ui["work"], form.work), (ui["hours"], f"{form.hours}")]
        if parts:
            lines.append((ui["parts"], parts))
    else:
        return []
    signed = signature_on(case, what)
    if signed is not None:
        lines += [(ui["signed_by"], signed.name),
                  (ui["signed_at"], signed.at.strftime("%Y-%m-%d %H:%M UTC"))]
    return lines
