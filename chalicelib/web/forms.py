"""Turning what arrives over HTTP into a Complaint, and errors into field messages.

No web framework here: the routes in app.py hand over plain values.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar
from urllib.parse import parse_qs

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError

from chalicelib.domain.case import Complaint, Language

# Form input name → field path in the JSON body (and in error messages).
FORM_FIELDS = {
    "kind": "kind",
    "name": "customer.name",
    "email": "customer.email",
    "phone": "customer.phone",
    "order_ref": "order_ref",
    "product": "product",
    "serial_no": "serial_no",
    "purchase_date": "purchase_date",
    "description": "description",
    "language": "language",
    "leave_empty": "website",  # the honeypot
}
INPUT_FOR_FIELD = {path: name for name, path in FORM_FIELDS.items()}


class BadRequest(Exception):
    """Input that cannot become a complaint; ``errors`` name every bad field."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))
        self.errors = errors


_ZH_MESSAGES = {
    "missing": "请填写此项",
    "string_too_short": "请填写此项",
    "string_too_long": "内容太长",
    "value_error": "格式不正确",
    "enum": "请从列表中选择",
    "literal_error": "请从列表中选择",
    "date_from_datetime_parsing": "日期格式应为 年-月-日",
    "date_parsing": "日期格式应为 年-月-日",
    "string_pattern_mismatch": "格式不正确",
    "extra_forbidden": "不认识的字段",
}


def field_errors(error: ValidationError, language: Language = Language.EN) -> list[dict[str, str]]:
    errors = []
    for detail in error.errors(include_url=False):
        field = ".".join(str(part) for part in detail["loc"]) or "body"
        message = detail["msg"].removeprefix("Value error, ")
        if language is Language.ZH:
            if field == "customer.email" and detail["type"] == "value_error":
                message = "请输入有效的电子邮件地址"
            elif "order number is needed" in message:
                message = "此类问题需要填写订单号"
            elif "future" in message:
                message = "日期不能晚于今天"
            else:
                message = _ZH_MESSAGES.get(detail["type"], message)
        errors.append({"field": field, "message": message})
    return errors


def parse_complaint(
    data: Any, *, today: Any, language: Language = Language.EN,
    model: type[Complaint] = Complaint,
) -> Complaint:
    if not isinstance(data, dict):
        raise BadRequest([{"field": "body", "message": "must be a JSON object"}])
    try:
        return model.model_validate(data, context={"today": today})
    except ValidationError as error:
        raise BadRequest(field_errors(error, language)) from None


def parse_submission(
    data: Any, idempotency_key: str | None, *, today: Any, language: Language = Language.EN
) -> tuple[Complaint, str | None]:
    """The complaint and its idempotency key, with the errors of both reported together."""
    errors: list[dict[str, str]] = []
    key: str | None = None
    try:
        key = valid_idempotency_key(idempotency_key)
    except BadRequest as bad:
        errors.extend(bad.errors)
    try:
        complaint = parse_complaint(data, today=today, language=language)
    except BadRequest as bad:
        raise BadRequest(bad.errors + errors) from None
    if errors:
        raise BadRequest(errors)
    return complaint, key


class ActionRequest(BaseModel):
    """The body of POST /api/staff/cases/{case_id}/actions."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    action: str = Field(min_length=1, max_length=64, description="One of available_actions.")
    params: dict[str, Any] | None = Field(default=None, description="The action's parameters.")
    version: StrictInt = Field(
        ge=1, lt=10**7, description="The case version you read (the lost-update guard)."
    )


Body = TypeVar("Body", bound=BaseModel)


def parse_body(model: type[Body], data: Any) -> Body:
    """A JSON body as one of the request models, or every bad field named."""
    if not isinstance(data, dict):
        raise BadRequest([{"field": "body", "message": "must be a JSON object"}])
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise BadRequest(field_errors(error)) from None


def json_body(raw: bytes) -> Any:
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadRequest([{"field": "body", "message": "must be UTF-8 text"}]) from None
    except (ValueError, RecursionError) as error:
        raise BadRequest([{"field": "body", "message": f"is not valid JSON: {error}"}]) from None


def form_values(raw: bytes) -> dict[str, str]:
    """The first value of each field of an urlencoded form."""
    try:
        parsed = parse_qs(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=50)
    except (UnicodeDecodeError, ValueError):
        raise BadRequest([{"field": "body", "message": "is not a readable form"}]) from None
    return {name: values[0] for name, values in parsed.items()}


def complaint_data_from_form(values: dict[str, str]) -> dict[str, Any]:
    """Form fields as the JSON body would carry them; blank optional fields are left out."""
    data: dict[str, Any] = {}
    for name, path in FORM_FIELDS.items():
        value = values.get(name, "")
        if value == "" and name not in {"name", "email", "description", "kind"}:
            continue
        if "." in path:
            parent, child = path.split(".")
            data.setdefault(parent, {})[child] = value
        else:
            data[path] = value
    return data


def valid_idempotency_key(key: str | None) -> str | None:
    if key is None or key == "":
        return None
    if len(key) > 255 or not key.isascii() or not key.isprintable():
        raise BadRequest(
            [{"field": "Idempotency-Key", "message": "must be 1–255 printable ASCII characters"}]
        )
    return key
