"""The API's JSON answers, shared by app.py and its blueprints: a body, field-level errors,
the 503 for storage trouble, and the staff-token check (401)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from chalice.app import Response

if TYPE_CHECKING:
    from chalicelib.domain.staff import StaffMember

UNAVAILABLE = [{"field": "service", "message": "temporarily unavailable; please retry"}]


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(
        body=json.dumps(body, ensure_ascii=False),
        status_code=status,
        headers={"Content-Type": "application/json; charset=utf-8", **(headers or {})},
    )


def errors_response(status: int, errors: list[dict[str, str]], **extra: Any) -> Response:
    """``{"errors": [{"field", "message"}], …extra}``; a ``retry_after_seconds`` in extra is
    also the Retry-After header."""
    headers = {"Retry-After": str(extra["retry_after_seconds"])} if extra else None
    return json_response(status, {"errors": errors, **extra}, headers)


def staff_or_401(authorization: str | None) -> StaffMember | Response:
    """The active member of staff the token belongs to, or the 401 answer."""
    from chalicelib import bootstrap
    from chalicelib.services.staff_desk import staff_for

    member = staff_for(bootstrap.case_store(), authorization)
    if member is None:
        return errors_response(401, [{"field": "Authorization", "message": "a valid staff "
                                      "token is needed (Authorization: Bearer sdk_…)"}])
    return member
