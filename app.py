"""HTTP routes and schedules of the service desk. Each one parses, calls a service,
and maps the outcome to a response; the business lives in chalicelib.

Business modules are imported inside the functions that use them: every Lambda function
(the API, each schedule) then loads only what its own calls need, and `import app` (the
cold start) stays close to importing Chalice and boto3 alone.
"""

from __future__ import annotations

import functools
import logging
import re
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError
from chalice.app import Chalice, Cron, Rate, Request, Response

from chalicelib.web.responses import UNAVAILABLE, staff_or_401
from chalicelib.web.responses import errors_response as _errors
from chalicelib.web.responses import json_response as _json
from chalicelib.web.sheet_routes import sheets
from chalicelib.web.unit_routes import XLSX_TYPE, units

if TYPE_CHECKING:
    from chalicelib.domain.case import Case, Channel, Language
    from chalicelib.services.intake import Receipt
    from chalicelib.services.photos import PhotoPanel

MAX_BODY_BYTES = 64 * 1024
LOCAL_HOST = re.compile(r"[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?")

app = Chalice(app_name="service-desk")
app.log.setLevel(logging.INFO)

HTML = {"Content-Type": "text/html; charset=utf-8"}
NO_STORE = {"Cache-Control": "no-store"}
# A customer's private page: never cached, and its link never sent on as a referrer.
PRIVATE_PAGE = {**NO_STORE, "Referrer-Policy": "no-referrer"}


def _request() -> Request:
    request = app.current_request
    assert request is not None
    return request


def _html(status: int, body: str, headers: dict[str, str] | None = None) -> Response:
    return Response(body=body, status_code=status, headers={**HTML, **(headers or {})})


def _page_language(request: Request, fallback: Language | None = None) -> Language:
    from chalicelib.domain.case import choose_language
    from chalicelib.settings import get_settings

    query: Mapping[str, str] = request.query_params or {}
    return choose_language(
        query.get("lang"),
        None if fallback else request.headers.get("accept-language"),
        fallback or get_settings().default_language,
    )


def _base_url(request: Request) -> str:
    """Where customers reach this app, for the links we give them. Never taken from
    headers a client controls: the configured address, else API Gateway's own domain and
    stage; only the local server (no API Gateway in front) falls back to its Host header."""
    from chalicelib.settings import get_settings

    configured = get_settings().public_base_url
    if configured:
        return str(configured).rstrip("/")
    domain = request.context.get("domainName")
    if domain:
        stage = request.context.get("stage", "")
        # The execute-api address carries the stage in its path; a custom domain does not.
        on_execute_api = domain.endswith(".amazonaws.com") and stage
        return f"https://{domain}/{stage}" if on_execute_api else f"https://{domain}"
    host = request.headers.get("host", "")
    return f"http://{host}" if LOCAL_HOST.fullmatch(host) else "http://localhost"


def _raw_body(request: Request) -> bytes:
    raw = request.raw_body or b""
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    if len(raw) > MAX_BODY_BYTES:
        raise _BodyTooLarge()
    return raw


class _BodyTooLarge(Exception):
    pass


def _submit(request: Request, data: Any, channel: Channel, key: str | None,
            language: Language) -> Receipt | None:
    from chalicelib import bootstrap
    from chalicelib.services.intake import submit_complaint
    from chalicelib.settings import get_policies, get_settings
    from chalicelib.web import forms

    now = bootstrap.now()
    complaint, idempotency_key = forms.parse_submission(
        data, key, today=now.date(), language=language
    )
    return submit_complaint(
        bootstrap.case_store(),
        get_settings(),
        complaint,
        now=now,
        base_url=_base_url(request),
        channel=channel,
        idempotency_key=idempotency_key,
        client_address=request.context.get("identity", {}).get("sourceIp"),
        accept_language=request.headers.get("accept-language"),
        policies=get_policies(),
    )


def storage_trouble_is_503(view: Callable[..., Response]) -> Callable[..., Response]:
    """AWS trouble is ours, not the customer's: 503 and a retry, never a bare 500.
    Pages answer with a page, the API with its error body."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Response:
        from chalicelib.services.ports import WriteConflict

        try:
            return view(*args, **kwargs)
        except (ClientError, BotoCoreError, WriteConflict) as error:
            app.log.exception("storage unavailable: %s", error)
            request = _request()
            if request.path.startswith("/api/"):
                return _errors(503, UNAVAILABLE)
            from chalicelib.web import pages

            language = _page_language(request)
            text = pages.UI[language]["unavailable"]
            page = pages.message_page(language, "error_title", text, home=_home(request))
            return _html(503, page, {"Retry-After": "30"})

    return wrapped


def _home(request: Request) -> str:
    return _base_url(request) + "/"


def _no_such_case_page(request: Request) -> Response:
    """The customer's page for a link that leads to no case (404)."""
    from chalicelib.web import pages

    language = _page_language(request)
    text = pages.UI[language]["not_found_text"]
    page = pages.message_page(language, "not_found", text, home=_home(request))
    return _html(404, page, NO_STORE)


def _case_behind(token: str) -> tuple[Case, Language] | Response:
    """The case a customer's private link leads to, and the language of its page; or the
    no-such-case page (404)."""
    from chalicelib import bootstrap

    request = _request()
    case = bootstrap.case_store().find_case_by_token(token) if len(token) <= 100 else None
    if case is None:
        return _no_such_case_page(request)
    return case, _page_language(request, fallback=case.language)


def _posted_page_form() -> dict[str, str] | Response:
    """The fields of a form posted from a customer's page, or the 413 page."""
    from chalicelib.web import forms, pages

    request = _request()
    try:
        return forms.form_values(_raw_body(request))
    except _BodyTooLarge:
        language = _page_language(request)
        page = pages.message_page(language, "error_title", "> 64 KiB", home=_home(request))
        return _html(413, page)


# -- the customer's side -------------------------------------------------------------


@app.route("/", methods=["GET"])
def complaint_form() -> Response:
    from chalicelib.web import pages

    language = _page_language(_request())
    page = pages.complaint_form(language, idempotency_key=uuid.uuid4().hex)
    return _html(200, page, NO_STORE)


@app.route("/", methods=["POST"], content_types=["application/x-www-form-urlencoded"])
@storage_trouble_is_503
def submit_complaint_form() -> Response:
    from chalicelib.domain.case import Channel, choose_language
    from chalicelib.services.intake import IdempotencyKeyReused, TooManySubmissions
    from chalicelib.web import forms, pages

    request = _request()
    values: dict[str, str] = {}
    language = _page_language(request)
    try:
        values = forms.form_values(_raw_body(request))
        language = choose_language(values.get("language"), None, language)
        receipt = _submit(
            request,
            forms.complaint_data_from_form(values),
            Channel.WEB_FORM,
            values.get("idempotency_key"),
            language,
        )
    except _BodyTooLarge:
        page = pages.message_page(language, "error_title", "> 64 KiB", home=_home(request))
        return _html(413, page)
    except forms.BadRequest as bad:
        errors = {forms.INPUT_FOR_FIELD.get(e["field"], "body"): e["message"] for e in bad.errors}
        page = pages.complaint_form(
            language,
            idempotency_key=values.get("idempotency_key") or uuid.uuid4().hex,
            values=values,
            errors=errors,
        )
        return _html(400, page, NO_STORE)
    except TooManySubmissions as limited:
        text = pages.UI[language]["too_many"].format(minutes=limited.retry_after_seconds // 60 + 1)
        return _html(
            429, pages.message_page(language, "error_title", text, home=_home(request)),
            {"Retry-After": str(limited.retry_after_seconds)},
        )
    except IdempotencyKeyReused:
        # An old copy of the form (back button) that was already sent, now edited.
        page = pages.complaint_form(
            language, idempotency_key=uuid.uuid4().hex, values=values,
            errors={"body": pages.UI[language]["already_sent"]},
        )
        return _html(400, page, NO_STORE)
    if receipt is None:
        text = pages.UI[language]["received_text"]
        return _html(200, pages.message_page(language, "received", text, home=_home(request)))
    # Post/redirect/get: reloading the confirmation never submits again.
    location = f"{receipt.status_url}?submitted=1&lang={language.value}"
    return Response(body="", status_code=303, headers={"Location": location, **NO_STORE})


@app.route("/api/cases", methods=["POST"], content_types=["application/json"])
@storage_trouble_is_503
def create_case() -> Response:
    from chalicelib.domain.case import Channel, Language
    from chalicelib.services.intake import IdempotencyKeyReused, TooManySubmissions
    from chalicelib.web import forms

    request = _request()
    try:
        receipt = _submit(
            request,
            forms.json_body(_raw_body(request)),
            Channel.API,
            request.headers.get("idempotency-key"),
            Language.EN,
        )
    except _BodyTooLarge:
        return _errors(413, [{"field": "body", "message": "must be at most 64 KiB"}])
    except forms.BadRequest as bad:
        return _errors(400, bad.errors)
    except IdempotencyKeyReused as reused:
        return _errors(422, [{"field": "Idempotency-Key", "message": str(reused)}])
    except TooManySubmissions as limited:
        field = "customer.email" if limited.which == "email" else "client"
        return _errors(
            429, [{"field": field, "message": str(limited)}],
            retry_after_seconds=limited.retry_after_seconds,
        )
    if receipt is None:
        return _json(202, {"status": "received"})
    return _json(201, receipt.as_dict(), {"Location": receipt.status_url})


@app.route("/status/{token}", methods=["GET"])
@storage_trouble_is_503
def case_status_page(token: str) -> Response:
    from chalicelib import bootstrap
    from chalicelib.services.status import customer_view
    from chalicelib.web import pages

    request = _request()
    view = customer_view(bootstrap.case_store(), token) if len(token) <= 100 else None
    if view is None:
        return _no_such_case_page(request)
    language = _page_language(request, fallback=view.case.language)
    query: Mapping[str, str] = request.query_params or {}
    page = pages.case_status(
        view,
        language,
        just_submitted=query.get("submitted") == "1",
        status_url=f"{_base_url(request)}/status/{token}",
        photos=_photo_panel(request, token, view.case, language, query),
        photos_api_url=f"{_base_url(request)}/api/status/{token}/photos",
    )
    # no-referrer: neither S3 (the photo form and links) nor anyone else learns the link.
    return _html(200, page, PRIVATE_PAGE)


@app.route("/status/{token}/satisfaction", methods=["GET"])
@storage_trouble_is_503
def satisfaction_page(token: str) -> Response:
    """The rating form of the follow-up e-mail. Opening it records nothing."""
    return _satisfaction(token, None)


@app.route(
    "/status/{token}/satisfaction", methods=["POST"],
    content_types=["application/x-www-form-urlencoded"],
)
@storage_trouble_is_503
def rate_the_service(token: str) -> Response:
    values = _posted_page_form()
    return values if isinstance(values, Response) else _satisfaction(token, values)


def _satisfaction(token: str, posted: dict[str, str] | None) -> Response:
    from chalicelib import bootstrap
    from chalicelib.domain.lifecycle import rating_open
    from chalicelib.services.satisfaction import BadRating, parse_rating, record_rating
    from chalicelib.web import pages

    request = _request()
    store = bootstrap.case_store()
    found = _case_behind(token)
    if isinstance(found, Response):
        return found
    case, language = found
    headers = PRIVATE_PAGE
    if not rating_open(case):
        page = pages.satisfaction_page(language, case_number=case.case_number, state="not_now")
        return _html(409 if posted is not None else 200, page, headers)
    if posted is None:
        query: Mapping[str, str] = request.query_params or {}
        rated = case.rating_this_resolution
        page = pages.satisfaction_page(
            language, case_number=case.case_number,
            # Rated already: the thanks, unless they follow "change my rating".
            state="thanks" if rated and query.get("change") != "1" else "ask",
            rating=rated.rating if rated else None,
            comment=(rated.comment or "") if rated else "",
        )
        return _html(200, page, headers)
    try:
        form = parse_rating(posted)
    except BadRating as bad:
        page = pages.satisfaction_page(
            language, case_number=case.case_number, state="ask",
            comment=posted.get("comment", "")[:2000], errors=bad.errors,
        )
        return _html(400, page, headers)
    record_rating(store, case, form, bootstrap.now())
    # Post/redirect/get: a reload shows the thanks and records nothing more.
    return Response(
        body="", status_code=303,
        headers={"Location": f"satisfaction?lang={language.value}", **NO_STORE},
    )


@app.route("/status/{token}/sign", methods=["GET"])
@storage_trouble_is_503
def sign_page(token: str) -> Response:
    """The quote or service form for the customer to sign. Opening it signs nothing."""
    return _sign(token, None)


@app.route(
    "/status/{token}/sign", methods=["POST"],
    content_types=["application/x-www-form-urlencoded"],
)
@storage_trouble_is_503
def sign_document(token: str) -> Response:
    values = _posted_page_form()
    return values if isinstance(values, Response) else _sign(token, values)


def _sign(token: str, posted: dict[str, str] | None) -> Response:
    from chalicelib import bootstrap
    from chalicelib.domain.field_actions import signature_on, what_to_sign
    from chalicelib.domain.lifecycle import ActionRefused
    from chalicelib.services.sign_off import NotWhatWasShown, sign
    from chalicelib.web import pages

    request = _request()
    store = bootstrap.case_store()
    found = _case_behind(token)
    if isinstance(found, Response):
        return found
    case, language = found
    headers = PRIVATE_PAGE
    number = case.case_number
    what = what_to_sign(case)
    if posted is not None and what is not None:
        try:
            sign(store, case, posted.get("what") or None, posted.get("name", ""),
                 posted.get("comment"), bootstrap.now())
        except NotWhatWasShown:
            page = pages.sign_page(language, case_number=number, state="ask", what=what,
                                   lines=pages.sign_lines(case, what, language))
            return _html(409, page, headers)
        except ActionRefused:
            page = pages.sign_page(
                language, case_number=number, state="ask", what=what,
                lines=pages.sign_lines(case, what, language), name=posted.get("name", "")[:200],
                comment=posted.get("comment", "")[:2000],
                errors={"name": pages.SIGN_UI[language]["need_name"]},
            )
            return _html(400, page, headers)
        # Post/redirect/get: a reload shows what was signed and signs nothing more.
        return Response(
            body="", status_code=303,
            headers={"Location": f"sign?lang={language.value}&signed={what}", **NO_STORE},
        )
    if what is not None:
        page = pages.sign_page(language, case_number=number, state="ask", what=what,
                               lines=pages.sign_lines(case, what, language))
        return _html(200, page, headers)
    query: Mapping[str, str] = request.query_params or {}
    signed = query.get("signed")
    shown = signed if signed in ("quote", "form") else "form"
    if signature_on(case, shown) is not None:
        lines = pages.sign_lines(case, shown, language)
        page = pages.sign_page(language, case_number=number, state="signed", lines=lines)
    else:
        page = pages.sign_page(language, case_number=number, state="not_now")
    return _html(409 if posted is not None else 200, page, headers)


def _photo_return(request: Request, token: str, language: Language) -> str:
    """Where S3 sends the customer's browser after an upload (it adds bucket, key, etag)."""
    return f"{_base_url(request)}/status/{token}?uploaded=1&lang={language.value}"


def _photo_panel(request: Request, token: str, case: Case, language: Language,
                 query: Mapping[str, str]) -> PhotoPanel:
    from chalicelib import bootstrap
    from chalicelib.services.photos import customer_panel
    from chalicelib.settings import get_settings

    settings = get_settings()
    return customer_panel(
        bootstrap.photo_store(),
        case,
        max_photos=settings.photos_per_case,
        max_bytes=settings.photo_max_bytes,
        redirect_to=_photo_return(request, token, language),
        now=bootstrap.now(),
        uploaded_key=query.get("key") if query.get("uploaded") == "1" else None,
    )


@app.route("/api/status/{token}", methods=["GET"])
@storage_trouble_is_503
def case_status(token: str) -> Response:
    from chalicelib import bootstrap
    from chalicelib.services.status import customer_view

    view = customer_view(bootstrap.case_store(), token) if len(token) <= 100 else None
    if view is None:
        return _errors(404, [{"field": "token", "message": "no case for this link"}])
    from chalicelib.services.photos import photo_list

    photos = photo_list(bootstrap.photo_store(), view.case.case_id)
    return _json(200, {**view.as_dict(), "photos": photos}, NO_STORE)


@app.route("/api/status/{token}/photos", methods=["POST"], content_types=["application/json"])
@storage_trouble_is_503
def new_photo_upload(token: str) -> Response:
    """A presigned POST for one more photo of the customer's case.

    Body (optional): {"content_type": "image/png", "lang": "en"}; the type defaults to
    image/jpeg and is the one the upload must declare. 201 {photo_id, url, fields, …}: post
    the fields, then the file as the last field named "file", to url (multipart/form-data);
    S3 answers 303 to the status page. 409: the case has all the photos it may have;
    422: the case is closed.
    """
    from chalicelib import bootstrap
    from chalicelib.services.photos import (
        PhotosNotTaken,
        UploadRequest,
        photo_ids,
        upload_form,
    )
    from chalicelib.settings import get_settings
    from chalicelib.web import forms

    request = _request()
    case = bootstrap.case_store().find_case_by_token(token) if len(token) <= 100 else None
    if case is None:
        return _errors(404, [{"field": "token", "message": "no case for this link"}])
    try:
        raw = _raw_body(request)
        asked = forms.parse_body(UploadRequest, forms.json_body(raw) if raw.strip() else {})
    except _BodyTooLarge:
        return _errors(413, [{"field": "body", "message": "must be at most 64 KiB"}])
    except forms.BadRequest as bad:
        return _errors(400, bad.errors)
    settings = get_settings()
    store = bootstrap.photo_store()
    try:
        form = upload_form(
            store,
            case,
            taken=photo_ids(store, case.case_id),
            max_photos=settings.photos_per_case,
            max_bytes=settings.photo_max_bytes,
            redirect_to=_photo_return(request, token, asked.lang or case.language),
            now=bootstrap.now(),
            content_type=asked.content_type,
        )
    except PhotosNotTaken as refused:
        status = 409 if refused.reason == "full" else 422
        return _errors(status, [{"field": "photos", "message": str(refused)}])
    return _json(201, form.as_dict(), NO_STORE)


# -- the staff's side (Authorization: Bearer <token>, see `python -m chalicelib.cli`) -----


def staff_api(view: Callable[..., Response]) -> Callable[..., Response]:
    """A staff route: the caller must present an active staff token; the view gets them."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Response:
        member = staff_or_401(_request().headers.get("authorization"))
        if isinstance(member, Response):
            return member
        return view(member, *args, **kwargs)

    return storage_trouble_is_503(wrapped)


def _staff_case(case: Any) -> dict[str, Any]:
    from chalicelib.domain.customer import customer_id_for
    from chalicelib.services.staff_desk import status_url

    data: dict[str, Any] = case.model_dump(mode="json")
    data["status_url"] = status_url(case, _base_url(_request()))
    data["next_due_at"] = case.next_due_at.isoformat() if case.next_due_at else None
    data["customer_id"] = customer_id_for(case.customer.email)
    return data


@app.route("/api/staff/me", methods=["GET"])
@staff_api
def who_am_i(staff: Any) -> Response:
    return _json(200, staff.model_dump(mode="json"))


@app.route("/api/staff/cases", methods=["GET"])
@staff_api
def list_cases(staff: Any) -> Response:
    from chalicelib import bootstrap
    from chalicelib.domain.case import CaseKind
    from chalicelib.services.staff_desk import known_status, list_cases

    query: Mapping[str, str] = _request().query_params or {}
    store = bootstrap.case_store()
    if query.get("number"):
        if len(query["number"]) > 20:
            return _errors(400, [{"field": "number", "message": "not a case number"}])
        found = store.find_case_by_number(query["number"].strip().upper())
        return _json(200, {"cases": [_staff_case(found)] if found else []})
    errors = []
    if query.get("status") and not known_status(query["status"]):
        errors.append({"field": "status", "message": "not a case status"})
    if query.get("kind") and query["kind"] not in CaseKind._value2member_map_:
        errors.append({"field": "kind", "message": "not a case kind"})
    if query.get("overdue") not in (None, "true", "false"):
        errors.append({"field": "overdue", "message": "true or false"})
    if errors:
        return _errors(400, errors)
    cases = list_cases(
        store,
        status=query.get("status"),
        kind=query.get("kind"),
        owner=query.get("owner"),
        overdue_at=bootstrap.now() if query.get("overdue") == "true" else None,
    )
    return _json(200, {"cases": [_staff_case(case) for case in cases]})


@app.route("/api/staff/cases", methods=["POST"], content_types=["application/json"])
@staff_api
def open_case_for_customer(staff: Any) -> Response:
    """A case taken on the phone (or at the counter) on the customer's behalf."""
    from chalicelib import bootstrap
    from chalicelib.domain.case import Channel, PhoneComplaint
    from chalicelib.services.intake import submit_complaint
    from chalicelib.services.staff_desk import AmbiguousCaller, fill_from_customer_file
    from chalicelib.settings import get_policies, get_settings
    from chalicelib.web import forms

    request = _request()
    try:
        data = fill_from_customer_file(bootstrap.case_store(), forms.json_body(_raw_body(request)))
        complaint = forms.parse_complaint(
            data, today=bootstrap.now().date(), model=PhoneComplaint
        )
    except _BodyTooLarge:
        return _errors(413, [{"field": "body", "message": "must be at most 64 KiB"}])
    except forms.BadRequest as bad:
        return _errors(400, bad.errors)
    except AmbiguousCaller as ambiguous:
        names = "; ".join(f"{c.name} <{c.email}>" for c in ambiguous.candidates)
        return _errors(409, [{"field": "customer.email", "message":
                              f"several customers gave this phone number ({names}): "
                              "give the caller's e-mail"}])
    receipt = submit_complaint(
        bootstrap.case_store(),
        get_settings(),
        complaint,
        now=bootstrap.now(),
        base_url=_base_url(request),
        channel=Channel.PHONE,
        idempotency_key=None,
        taken_by=staff.actor,
        policies=get_policies(),
    )
    assert receipt is not None
    return _json(201, receipt.as_dict())


@app.route("/api/staff/customers", methods=["GET"])
@staff_api
def find_customers(staff: Any) -> Response:
    """The customer file: ?email= or ?phone= finds one; without either, the most recent."""
    from chalicelib import bootstrap

    query: Mapping[str, str] = _request().query_params or {}
    store = bootstrap.case_store()
    if query.get("email") or query.get("phone"):
        customers = store.find_customers(email=query.get("email"), phone=query.get("phone"))
    else:
        customers = store.list_customers(limit=50)
    return _json(200, {"customers": [c.model_dump(mode="json") for c in customers]})


@app.route("/api/staff/customers/{customer_id}", methods=["GET"])
@staff_api
def read_customer(staff: Any, customer_id: str) -> Response:
    from chalicelib import bootstrap

    store = bootstrap.case_store()
    customer = store.get_customer(customer_id) if len(customer_id) <= 64 else None
    if customer is None:
        return _errors(404, [{"field": "customer_id", "message": "no such customer"}])
    cases = store.customer_cases(customer_id)
    return _json(
        200,
        {
            "customer": customer.model_dump(mode="json"),
            "cases": [_staff_case(case) for case in cases],
        },
    )


@app.route("/api/staff/cases/{case_id}", methods=["GET"])
@staff_api
def read_case(staff: Any, case_id: str) -> Response:
    from chalicelib import bootstrap
    from chalicelib.domain.lifecycle import available_actions
    from chalicelib.services.photos import staff_photos

    store = bootstrap.case_store()
    case = store.get_case(case_id) if len(case_id) <= 64 else None
    if case is None:
        return _errors(404, [{"field": "case_id", "message": "no such case"}])
    history = [event.model_dump(mode="json") for event in store.case_history(case_id)]
    return _json(
        200,
        {
            "case": _staff_case(case),
            "history": history,
            "available_actions": available_actions(case, staff),
            "emails": store.case_outbox(case_id),
            "timers": store.case_timers(case_id),
            "photos": staff_photos(case.case_id),
        },
    )


@app.route(
    "/api/staff/cases/{case_id}/actions", methods=["POST"], content_types=["application/json"]
)
@staff_api
def act_on_case(staff: Any, case_id: str) -> Response:
    """Apply an action: {"action": "...", "params": {...}, "version": <the version read>}."""
    from chalicelib import bootstrap
    from chalicelib.domain.lifecycle import ActionRefused
    from chalicelib.services.staff_desk import CaseNotFound, StaleVersion, act_on_case
    from chalicelib.settings import get_policies, get_settings
    from chalicelib.web import forms

    request = _request()
    try:
        body = forms.parse_body(forms.ActionRequest, forms.json_body(_raw_body(request)))
    except _BodyTooLarge:
        return _errors(413, [{"field": "body", "message": "must be at most 64 KiB"}])
    except forms.BadRequest as bad:
        return _errors(400, bad.errors)
    try:
        case = act_on_case(
            bootstrap.case_store(),
            get_policies(),
            case_id=case_id,
            action=body.action,
            params=body.params,
            expected_version=body.version,
            actor=staff,
            now=bootstrap.now(),
            base_url=_base_url(request),
            settings=get_settings(),
            units=bootstrap.unit_store(),
        )
    except CaseNotFound:
        return _errors(404, [{"field": "case_id", "message": "no such case"}])
    except StaleVersion as stale:
        changes = [
            {"version": e.version, "action": e.action, "actor": e.actor, "at": e.at.isoformat()}
            for e in stale.changes
        ]
        summary = ", ".join(f"{c['action']} by {c['actor']}" for c in changes) or "changed"
        return _json(
            409,
            {
                "errors": [
                    {
                        "field": "version",
                        "message": f"the case is at version {stale.current.version}, not "
                        f"{body.version}: since then {summary}. Read it again and retry.",
                    }
                ],
                "current_version": stale.current.version,
                "changes": changes,
            },
        )
    except ActionRefused as refused:
        if refused.errors:
            return _errors(400, refused.errors)
        status = 403 if refused.code == "role" else 422
        return _errors(status, [{"field": "action", "message": refused.reason}])
    return _json(200, {"case": _staff_case(case)})


@app.route("/api/staff/follow-up-calls", methods=["GET"])
@staff_api
def follow_up_calls(staff: Any) -> Response:
    """The follow-up calls (回访) due now, the longest waiting first: whom to call, in which
    language, about what. Record each call with the case action record_follow_up_call."""
    from chalicelib import bootstrap

    calls = bootstrap.case_store().follow_up_calls(bootstrap.now())
    return _json(200, {"calls": calls})


@app.route("/api/staff/reports/monthly/{month}", methods=["GET"])
@staff_api
def monthly_report(staff: Any, month: str) -> Response:
    """The monthly statistics workbook of a past or the current month (YYYY-MM), rebuilt
    now from the cases: a short-lived download link and the headline figures."""
    from chalicelib import bootstrap
    from chalicelib.services.reports import (
        BadMonth,
        build_monthly_workbook,
        monthly_file_key,
        parse_month,
    )
    from chalicelib.settings import get_policies, get_settings

    try:
        first = parse_month(month)
    except BadMonth as bad:
        return _errors(400, [{"field": "month", "message": str(bad)}])
    if first > bootstrap.now().date():
        return _errors(400, [{"field": "month", "message": "that month has not begun"}])
    files = bootstrap.report_files()
    stats, _ = build_monthly_workbook(
        bootstrap.case_store(), files, get_settings(), get_policies(), first
    )
    return _json(200, {
        "month": f"{first:%Y-%m}",
        "download_url": files.link(monthly_file_key(first), f"service-report-{first:%Y-%m}.xlsx"),
        "expires_in_seconds": 600,
        "opened": stats.opened,
        "resolved": stats.resolved,
        "closed": stats.closed,
    }, NO_STORE)


@app.route("/api/openapi.json", methods=["GET"])
def openapi() -> Response:
    from chalicelib.web.openapi import openapi_document

    return _json(200, openapi_document())


# The registry of sold units (chalicelib/web/unit_routes.py); workbooks are posted as bytes.
app.register_blueprint(units)
app.register_blueprint(sheets)
app.api.binary_types.append(XLSX_TYPE)


# -- schedules -----------------------------------------------------------------------


@app.schedule(Rate(1, unit=Rate.MINUTES))
def send_outbox(event: Any) -> dict[str, int]:
    """Send what committed changes left in the outbox (e-mails), with retries."""
    from chalicelib import bootstrap
    from chalicelib.services.outbox import drain_outbox
    from chalicelib.settings import get_settings

    report = drain_outbox(
        bootstrap.case_store(), bootstrap.mailer(), get_settings(), bootstrap.now(),
        attachment=bootstrap.report_files().get,
    )
    if report.sent or report.retried or report.failed:
        app.log.info("outbox: %s", report)
    return report.__dict__


def _time_left(event: Any) -> Callable[[], float]:
    context = getattr(event, "context", None)
    if context is None:  # the local scheduler
        return lambda: float("inf")
    return lambda: float(context.get_remaining_time_in_millis()) / 1000


@app.schedule(Rate(5, unit=Rate.MINUTES))
def sweep_timers(event: Any) -> dict[str, int]:
    """Keep the promises: fire every deadline and follow-up call that is due, once."""
    from chalicelib import bootstrap
    from chalicelib.services.sweep import sweep_due_timers
    from chalicelib.settings import get_policies, get_settings

    report = sweep_due_timers(
        bootstrap.case_store(), get_settings(), get_policies(), bootstrap.now(),
        time_left=_time_left(event),
    )
    if report.due:
        app.log.info("sweep: %s", report.as_dict())
    return report.as_dict()


@app.schedule(Cron(30, 0, "*", "*", "?", "*"))
def daily_summary(event: Any) -> dict[str, Any]:
    """Yesterday's summary to the service centre (00:30 UTC: 08:30 in China), once."""
    from chalicelib import bootstrap
    from chalicelib.services.reports import send_daily_summary
    from chalicelib.settings import get_policies, get_settings

    sent = send_daily_summary(
        bootstrap.case_store(), get_settings(), get_policies(), bootstrap.now()
    )
    if sent.sent:
        app.log.info("daily summary %s to %d", sent.name, sent.recipients)
    return {"sent": int(sent.sent), "recipients": sent.recipients}


@app.schedule(Cron(0, 1, "1-5", "*", "?", "*"))
def monthly_report_mail(event: Any) -> dict[str, Any]:
    """Last month's statistics workbook to the managers by the 5th: tried each morning of
    the 1st to the 5th, sent once."""
    from chalicelib import bootstrap
    from chalicelib.services.reports import send_monthly_report
    from chalicelib.settings import get_policies, get_settings

    sent = send_monthly_report(
        bootstrap.case_store(), bootstrap.report_files(), get_settings(), get_policies(),
        bootstrap.now(),
    )
    if sent.sent:
        app.log.info("monthly report %s to %d", sent.name, sent.recipients)
    return {"sent": int(sent.sent), "recipients": sent.recipients}


@app.schedule(Rate(1, unit=Rate.HOURS))
def open_planned_visits(event: Any) -> dict[str, int]:
    """Planned maintenance (定期保养): open a case for each visit whose day has come, once."""
    from chalicelib import bootstrap
    from chalicelib.services.units import open_planned_visits as open_due_visits
    from chalicelib.settings import get_policies, get_settings

    report = open_due_visits(
        bootstrap.unit_store(), bootstrap.case_store(), get_settings(), get_policies(),
        bootstrap.now(), time_left=_time_left(event),
    )
    if report.due:
        app.log.info("planned visits: %s", report.as_dict())
    return report.as_dict()


@app.schedule(Rate(1, unit=Rate.MINUTES))
def sync_sheets(event: Any) -> dict[str, Any]:
    """Write the rows of every changed case into the staff's sheet (one batch write)."""
    from chalicelib import bootstrap
    from chalicelib.services.sheets import sync

    desk = bootstrap.sheet_desk()
    if desk is None:
        return {"sheet": "off"}
    report = sync(desk, limit=desk.settings.sheets_rows_per_sync)
    if report.dirty:
        app.log.info("sheet sync: %s", report.as_dict())
    return report.as_dict()


@app.schedule(Rate(10, unit=Rate.MINUTES))
def reconcile_sheets(event: Any) -> dict[str, Any]:
    """Take in the sheet edits no webhook brought, and put back rows staff deleted."""
    from chalicelib import bootstrap
    from chalicelib.services.sheets import reconcile

    desk = bootstrap.sheet_desk()
    if desk is None:
        return {"sheet": "off"}
    report = reconcile(desk, limit=desk.settings.sheets_rows_per_sync)
    app.log.info("sheet reconcile: %s", report.as_dict())
    return report.as_dict()


@app.on_sns_message(topic="${MailFeedbackTopic.TopicName}")  # resolved by Fn::Sub in the package
def handle_mail_feedback(event: Any) -> dict[str, int]:
    """SES bounces and complaints: recorded on the e-mail and the customer file, once."""
    from chalicelib import bootstrap
    from chalicelib.adapters.mail_records import MailRecords
    from chalicelib.services.bounces import handle_sns_message

    counts = handle_sns_message(
        MailRecords.of(bootstrap.case_store()), event.message, bootstrap.now()
    )
    if counts["feedback"]:
        app.log.info("mail feedback: %s", counts)
    return counts
