"""Staff routes of the registry of sold units (设备档案): register one unit, read, correct
or retire one, import a workbook of them. A Chalice blueprint, registered in app.py.

Like app.py, business modules are imported inside the views, so the API's cold start
does not load them until a unit route is called.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from chalice.app import Blueprint, Response

from chalicelib.web.responses import UNAVAILABLE, staff_or_401
from chalicelib.web.responses import errors_response as _errors
from chalicelib.web.responses import json_response as _json

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MAX_JSON_BYTES = 64 * 1024
MAX_WORKBOOK_BYTES = 5 * 1024 * 1024
# What one API call imports within the Lambda's 30 seconds; the CLI takes any number.
MAX_WORKBOOK_UNITS = 1000

units = Blueprint(__name__)


def _raw_body(limit: int) -> bytes | None:
    """The request body, or None when it is over ``limit`` bytes."""
    request = units.current_request
    raw = request.raw_body or b""
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    return None if len(raw) > limit else raw


def staff_route(view: Callable[..., Response]) -> Callable[..., Response]:
    """As app.py's staff_api: an active staff token is needed (401 otherwise), and AWS
    trouble is a 503 to retry, never a bare 500."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Response:
        from chalicelib.services.ports import WriteConflict

        try:
            member = staff_or_401(units.current_request.headers.get("authorization"))
            if isinstance(member, Response):
                return member
            return view(member, *args, **kwargs)
        except (ClientError, BotoCoreError, WriteConflict) as error:
            units.log.exception("storage unavailable: %s", error)
            return _errors(503, UNAVAILABLE)

    return wrapped


@units.route("/api/staff/units", methods=["POST"], content_types=["application/json"])
@staff_route
def register_unit(staff: Any) -> Response:
    """One unit: 201 with its warranty end and planned visits."""
    from pydantic import ValidationError

    from chalicelib import bootstrap
    from chalicelib.domain.units import Unit
    from chalicelib.services import units as registry
    from chalicelib.settings import get_policies

    data = _json_object()
    if isinstance(data, Response):
        return data
    try:
        unit = Unit.model_validate(data)
        registered = registry.register_unit(
            bootstrap.unit_store(), get_policies(), unit, bootstrap.now()
        )
    except ValidationError as error:
        return _errors(400, [p.as_dict() for p in registry.unit_problems(error)])
    except registry.UnitRejected as rejected:
        return _errors(400, [p.as_dict() for p in rejected.problems])
    except registry.UnitAlreadyRegistered as taken:
        return _errors(409, [{"field": "serial_no", "message": str(taken)}])
    return _json(201, registered.as_dict())


@units.route("/api/staff/units/{serial_no}", methods=["GET"])
@staff_route
def read_unit(staff: Any, serial_no: str) -> Response:
    """A unit with its warranty end and the planned visits still to come."""
    from chalicelib import bootstrap
    from chalicelib.services.units import unit_view
    from chalicelib.settings import get_policies

    view = None
    if 0 < len(serial_no) <= 64:
        view = unit_view(bootstrap.unit_store(), get_policies(), serial_no)
    if view is None:
        return _errors(404, [{"field": "serial_no", "message": "no such unit"}])
    return _json(200, view.as_dict())


def _json_object(limit: int = MAX_JSON_BYTES) -> dict[str, Any] | Response:
    """The request's JSON object (an empty body: an empty object), or the error answer."""
    from chalicelib.web import forms

    raw = _raw_body(limit)
    if raw is None:
        return _errors(413, [{"field": "body", "message": "must be at most 64 KiB"}])
    if not raw.strip():
        return {}
    try:
        data = forms.json_body(raw)
    except forms.BadRequest as bad:
        return _errors(400, bad.errors)
    if not isinstance(data, dict):
        return _errors(400, [{"field": "body", "message": "must be a JSON object"}])
    return data


def _change_body() -> tuple[dict[str, Any], int | None] | Response:
    """A correction's or retirement's JSON object, and the optional ``version`` the caller
    read (taken out of it); or the error answer."""
    data = _json_object()
    if isinstance(data, Response):
        return data
    version = data.pop("version", None)
    if version is None or (isinstance(version, int) and not isinstance(version, bool)
                           and version >= 1):
        return data, version
    return _errors(400, [{"field": "version", "message": "the unit's version as read: a "
                          "whole number from 1"}])


def _unit_write(write: Callable[[], Any]) -> Response:
    """Run a correction or a retirement; its refusals as answers (nothing written)."""
    from chalicelib.services import units as registry

    try:
        view = write()
    except registry.NotYourRole as refused:
        return _errors(403, [p.as_dict() for p in refused.problems])
    except registry.UnitNotFound:
        return _errors(404, [{"field": "serial_no", "message": "no such unit"}])
    except registry.UnitRejected as rejected:
        return _errors(400, [p.as_dict() for p in rejected.problems])
    except registry.UnitRetired as retired:
        return _errors(409, [{"field": "serial_no", "message": str(retired)}])
    except registry.StaleUnit as stale:
        return _json(409, {"errors": [{"field": "version", "message": str(stale)}],
                           "current_version": stale.current_version})
    return _json(200, view.as_dict())


@units.route("/api/staff/units/{serial_no}", methods=["PATCH"],
             content_types=["application/json"])
@staff_route
def correct_unit(staff: Any, serial_no: str) -> Response:
    """Correct a unit's fields (a JSON object of the fields to change; null clears an
    optional one; ``version``: the version read, else the unit as it is now). Its visits to
    come are re-planned when its dates or warranty terms change."""
    from chalicelib import bootstrap
    from chalicelib.services import units as registry
    from chalicelib.settings import get_policies

    body = _change_body()
    if isinstance(body, Response):
        return body
    data, version = body
    if not 0 < len(serial_no) <= 64:
        return _errors(404, [{"field": "serial_no", "message": "no such unit"}])
    return _unit_write(lambda: registry.update_unit(
        bootstrap.unit_store(), get_policies(), serial_no, data, bootstrap.now(),
        role=staff.role, expected_version=version,
    ))


@units.route("/api/staff/units/{serial_no}", methods=["DELETE"],
             content_types=["application/json"])
@staff_route
def retire_unit(staff: Any, serial_no: str) -> Response:
    """Retire a unit (``{"reason": "…", "version"?: N}``): kept for its history, marked
    retired with who, when and why; its planned visits are removed and it opens no more."""
    from chalicelib import bootstrap
    from chalicelib.services import units as registry
    from chalicelib.settings import get_policies

    body = _change_body()
    if isinstance(body, Response):
        return body
    data, version = body
    reason = data.pop("reason", None)
    problems = [{"field": name, "message": "unknown field"} for name in data]
    if not isinstance(reason, str) or not reason.strip():
        problems.insert(0, {"field": "reason", "message": "say why the unit is retired "
                            "(scrapped, sold on, returned, …)"})
    if problems:
        return _errors(400, problems)
    assert isinstance(reason, str)
    if not 0 < len(serial_no) <= 64:
        return _errors(404, [{"field": "serial_no", "message": "no such unit"}])
    return _unit_write(lambda: registry.retire_unit(
        bootstrap.unit_store(), get_policies(), serial_no, reason=reason, by=staff.actor,
        now=bootstrap.now(), role=staff.role, expected_version=version,
    ))


@units.route("/api/staff/units/import", methods=["POST"], content_types=[XLSX_TYPE])
@staff_route
def import_workbook(staff: Any) -> Response:
    """A registry workbook (.xlsx, the body as it is): 200 with what was registered and
    every rejected row with its reasons."""
    from chalicelib import bootstrap
    from chalicelib.adapters.unit_workbook import WorkbookError, read_units
    from chalicelib.services.units import company_today, import_units
    from chalicelib.settings import get_policies

    raw = _raw_body(MAX_WORKBOOK_BYTES)
    if raw is None:
        return _errors(413, [{"field": "body", "message": "must be at most 5 MB"}])
    try:
        sheet = read_units(raw, max_rows=MAX_WORKBOOK_UNITS)
    except WorkbookError as bad:
        return _errors(400, [{"field": "body", "message": str(bad)}])
    policies, now = get_policies(), bootstrap.now()
    report = import_units(
        bootstrap.unit_store(), policies, sheet.rows, now, company_today(policies, now),
        warnings=sheet.warnings,
    )
    return _json(200, report.as_dict())
