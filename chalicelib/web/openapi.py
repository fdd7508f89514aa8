"""The OpenAPI 3.1 document served at /api/openapi.json, built from the pydantic models
that validate the requests, so the description cannot drift from the code."""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field, create_model

from chalicelib.domain.case import CaseKind, CaseStatus, Complaint, PhoneComplaint
from chalicelib.domain.customer import CustomerRecord
from chalicelib.domain.units import EDITABLE_FIELDS, Unit
from chalicelib.services.photos import UploadRequest
from chalicelib.web.forms import ActionRequest


class ReceiptBody(BaseModel):
    case_id: str
    case_number: str = Field(examples=["AS000042"])
    status: CaseStatus
    status_url: str = Field(description="The customer's private link; keep it secret.")


class FieldError(BaseModel):
    field: str = Field(examples=["customer.email"])
    message: str


class ErrorsBody(BaseModel):
    errors: list[FieldError]
    retry_after_seconds: int | None = None


class HistoryLine(BaseModel):
    at: str
    action: str
    messages: list[str] = Field(description="What the customer was told, in their language.")


class CustomerName(BaseModel):
    name: str


class PhotoBody(BaseModel):
    photo_id: str
    uploaded_at: str
    size: int = Field(description="Bytes.")
    url: str = Field(description="A presigned GET link to the photo, valid for 10 minutes.")


class PhotoUploadForm(BaseModel):
    photo_id: str
    url: str = Field(description="Where to POST the form (S3).")
    fields: dict[str, str] = Field(
        description="Form fields to send as they are, before the file (multipart/form-data; "
        "the file last, named file)."
    )
    content_type: str
    max_bytes: int
    expires_at: str


class CaseStatusBody(BaseModel):
    case_number: str
    kind: CaseKind
    status: CaseStatus
    language: str
    created_at: str
    updated_at: str
    customer: CustomerName
    order_ref: str | None
    product: str | None
    serial_no: str | None
    purchase_date: str | None
    description: str
    history: list[HistoryLine]
    photos: list[PhotoBody] | None = Field(description="null: cannot be listed just now.")


class StaffCaseBody(BaseModel):
    case: dict[str, Any]


class StaffCaseRead(BaseModel):
    case: dict[str, Any]
    history: list[dict[str, Any]] = Field(description="Events, newest first.")
    available_actions: list[str]
    emails: list[dict[str, Any]] = Field(
        description="Every e-mail of the case: template, to, state (pending, sent, failed), "
        "attempts, sent_at, last_error."
    )
    photos: list[PhotoBody] | None = Field(
        description="The customer's photos, oldest first; null: cannot be listed just now."
    )


class StaffCaseList(BaseModel):
    cases: list[dict[str, Any]]


class CustomerList(BaseModel):
    customers: list[CustomerRecord]


class CustomerRead(BaseModel):
    customer: CustomerRecord
    cases: list[dict[str, Any]]


class StaleBody(BaseModel):
    errors: list[FieldError]
    current_version: int
    changes: list[dict[str, Any]]


class UnitRead(BaseModel):
    unit: Unit
    warranty_ends_on: date | None = Field(
        description="null: the warranty ends by operating hours only."
    )
    planned_visits: list[date] = Field(
        description="The maintenance visits still to come; each becomes a maintenance_visit "
        "case at the opening of business on its day. None once the unit is retired."
    )
    version: int = Field(description="Name it when correcting or retiring the unit.")


def _unit_correction() -> type[BaseModel]:
    """The body of PATCH /api/staff/units/{serial_no}: any of the fields staff correct, as
    the Unit model has them (null clears an optional one), and the version read."""
    fields: dict[str, Any] = {
        name: (Optional[Unit.model_fields[name].annotation], Field(default=None))  # noqa: UP045
        for name in EDITABLE_FIELDS
    }
    fields["version"] = (int | None, Field(default=None, ge=1, description=(
        "The version you read: if the unit changed since, 409 and nothing is written. "
        "Left out: the change applies to the unit as it is now.")))
    model: type[BaseModel] = create_model(
        "UnitCorrection", __config__=ConfigDict(extra="forbid"), **fields
    )
    return model


class UnitRetirement(BaseModel):
    reason: str = Field(min_length=1, max_length=500,
                        examples=["scrapped after a fire"], description="One line.")
    version: int | None = Field(default=None, ge=1, description="The version you read.")


class UnitConflict(BaseModel):
    errors: list[FieldError]
    current_version: int | None = Field(
        default=None, description="Given when the unit changed since the version named."
    )


class RejectedRowBody(BaseModel):
    row: int = Field(description="The row's number in the sheet.")
    serial_no: str | None
    problems: list[FieldError]


class UnitImportReport(BaseModel):
    rows: int = Field(description="Rows with any value (empty rows are skipped).")
    registered: int
    serial_nos: list[str] = Field(description="The serial numbers registered.")
    visits_planned: int
    rejected: list[RejectedRowBody] = Field(description="Each with every reason; nothing of "
                                            "a rejected row is written.")
    dry_run: bool
    warnings: list[str] = Field(description="What of the sheet was ignored: a column the "
                                "registry does not know, values under no heading.")


def _json(model: type[BaseModel]) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}


def _html(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"text/html": {"schema": {"type": "string"}}}}


def _errors(description: str) -> dict[str, Any]:
    return {"description": description, "content": _json(ErrorsBody)}


TOKEN = {
    "name": "token",
    "in": "path",
    "required": True,
    "description": "The unguessable token from the customer's status link.",
    "schema": {"type": "string"},
}
CASE_ID = {
    "name": "case_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
}
UNIT_SERIAL = {
    "name": "serial_no",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
}
LANG = {
    "name": "lang",
    "in": "query",
    "required": False,
    "schema": {"type": "string", "enum": ["zh", "en"]},
    "description": "Page language; default from Accept-Language.",
}


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    models: list[type[BaseModel]] = [
        Complaint, PhoneComplaint, ReceiptBody, ErrorsBody, CaseStatusBody, ActionRequest,
        StaffCaseBody, StaffCaseRead, StaffCaseList, StaleBody, CustomerList, CustomerRead,
        UploadRequest, PhotoUploadForm, Unit, UnitRead, UnitImportReport,
        _unit_correction(), UnitRetirement, UnitConflict,
    ]
    staff_errors = {
        "401": _errors("No valid staff token (Authorization: Bearer sdk_…)."),
        "503": _errors("Storage unavailable; retry."),
    }
    bearer: list[dict[str, list[str]]] = [{"staffToken": []}]
    schemas: dict[str, Any] = {}
    for model in models:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    form_fields: dict[str, Any] = {
        "type": "object",
        "description": "The same fields as the JSON body, flat: name, email, phone, kind, "
        "order_ref, product, serial_no, purchase_date, description, language, "
        "leave_empty (honeypot: must stay empty), idempotency_key.",
        "additionalProperties": {"type": "string"},
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "After-sales service desk",
            "version": "1.0.0",
            "description": "Customers report problems; each becomes a case.",
        },
        "paths": {
            "/": {
                "get": {
                    "summary": "The complaint form (Chinese or English)",
                    "parameters": [LANG],
                    "responses": {"200": _html("The form.")},
                },
                "post": {
                    "summary": "Submit the complaint form",
                    "requestBody": {
                        "required": True,
                        "content": {"application/x-www-form-urlencoded": {"schema": form_fields}},
                    },
                    "responses": {
                        "303": {"description": "Accepted: see the confirmation at Location."},
                        "400": _html("The form again, with the bad fields marked."),
                        "413": _html("Too large."),
                        "429": _html("Too many submissions; try again later."),
                    },
                },
            },
            "/api/cases": {
                "post": {
                    "summary": "Report a problem: open a case",
                    "parameters": [
                        {
                            "name": "Idempotency-Key",
                            "in": "header",
                            "required": False,
                            "description": "Retries with the same key return the same case.",
                            "schema": {"type": "string", "maxLength": 255},
                        }
                    ],
                    "requestBody": {"required": True, "content": _json(Complaint)},
                    "responses": {
                        "201": {
                            "description": "The case was opened.",
                            "content": _json(ReceiptBody),
                        },
                        "202": {"description": "Dropped (the honeypot field was filled)."},
                        "400": _errors("Every bad field, with a message."),
                        "413": _errors("Body over 64 KiB."),
                        "415": {"description": "Content-Type is not application/json."},
                        "422": _errors("Idempotency-Key reused for a different body."),
                        "429": _errors("Too many submissions; see Retry-After."),
                        "503": _errors("Storage unavailable; retry with the same key."),
                    },
                }
            },
            "/status/{token}": {
                "get": {
                    "summary": "The customer's status page",
                    "parameters": [TOKEN, LANG],
                    "responses": {"200": _html("The case."), "404": _html("No such case.")},
                }
            },
            "/api/status/{token}": {
                "get": {
                    "summary": "The customer's view of their case, as JSON",
                    "parameters": [TOKEN],
                    "responses": {
                        "200": {"description": "The case.", "content": _json(CaseStatusBody)},
                        "404": _errors("No such case."),
                    },
                }
            },
            "/api/status/{token}/photos": {
                "post": {
                    "summary": "An upload form for one more photo (presigned POST to S3)",
                    "description": "POST `fields` and then the file (last, named `file`) as "
                    "multipart/form-data to `url` before `expires_at` (15 minutes). S3 takes "
                    "exactly this key and Content-Type, 1 byte to max_bytes, and answers 303 "
                    "to the status page.",
                    "parameters": [TOKEN],
                    "requestBody": {"required": False, "content": _json(UploadRequest)},
                    "responses": {
                        "201": {"description": "The form.", "content": _json(PhotoUploadForm)},
                        "400": _errors("A bad type or language."),
                        "404": _errors("No such case."),
                        "409": _errors("The case has all the photos it may have."),
                        "413": _errors("Body over 64 KiB."),
                        "415": {"description": "Content-Type is not application/json."},
                        "422": _errors("The case is closed."),
                        "503": _errors("Storage unavailable; retry."),
                    },
                }
            },
            "/api/staff/me": {
                "get": {
                    "summary": "Who the token belongs to",
                    "security": bearer,
                    "responses": {"200": {"description": "The member of staff."}, **staff_errors},
                }
            },
            "/api/staff/cases": {
                "get": {
                    "summary": "Open cases, filtered (all open statuses unless status is given)",
                    "security": bearer,
                    "parameters": [
                        {"name": name, "in": "query", "required": False,
                         "schema": {"type": "string"}, "description": text}
                        for name, text in (
                            ("status", "one case status"),
                            ("kind", "one case kind"),
                            ("owner", "staff id of the owner"),
                            ("overdue", "true: only cases with a promise past due"),
                            ("number", "a case number, e.g. AS000042"),
                        )
                    ],
                    "responses": {
                        "200": {"description": "The cases.", "content": _json(StaffCaseList)},
                        "400": _errors("A bad filter."),
                        **staff_errors,
                    },
                },
                "post": {
                    "summary": "Open a case on a customer's behalf (phone, counter)",
                    "security": bearer,
                    "requestBody": {"required": True, "content": _json(PhoneComplaint)},
                    "responses": {
                        "201": {"description": "Opened.", "content": _json(ReceiptBody)},
                        "400": _errors("Every bad field."),
                        "413": _errors("Body over 64 KiB."),
                        "415": {"description": "Content-Type is not application/json."},
                        **staff_errors,
                    },
                },
            },
            "/api/staff/customers": {
                "get": {
                    "summary": "The customer file: find by e-mail or phone, else the latest",
                    "security": bearer,
                    "parameters": [
                        {"name": name, "in": "query", "required": False,
                         "schema": {"type": "string"}}
                        for name in ("email", "phone")
                    ],
                    "responses": {
                        "200": {"description": "Customers.",
                                "content": _json(CustomerList)},
                        **staff_errors,
                    },
                }
            },
            "/api/staff/customers/{customer_id}": {
                "get": {
                    "summary": "A customer with every case",
                    "security": bearer,
                    "parameters": [
                        {"name": "customer_id", "in": "path", "required": True,
                         "schema": {"type": "string"}}
                    ],
                    "responses": {
                        "200": {"description": "The customer.",
                                "content": _json(CustomerRead)},
                        "404": _errors("No such customer."),
                        **staff_errors,
                    },
                }
            },
            "/api/staff/cases/{case_id}": {
                "get": {
                    "summary": "A case with its full history and what you may do next",
                    "security": bearer,
                    "parameters": [CASE_ID],
                    "responses": {
                        "200": {"description": "The case.", "content": _json(StaffCaseRead)},
                        "404": _errors("No such case."),
                        **staff_errors,
                    },
                }
            },
            "/api/staff/cases/{case_id}/actions": {
                "post": {
                    "summary": "Apply an action (note, message, assign, verify, decide, refund, "
                    "reship, resolve, close, reopen, cancel, …)",
                    "security": bearer,
                    "parameters": [CASE_ID],
                    "requestBody": {"required": True, "content": _json(ActionRequest)},
                    "responses": {
                        "200": {"description": "Applied.", "content": _json(StaffCaseBody)},
                        "400": _errors("Bad parameters, named by field."),
                        "403": _errors("Not this person's role."),
                        "404": _errors("No such case."),
                        "409": {
                            "description": "Stale version: what changed since.",
                            "content": _json(StaleBody),
                        },
                        "413": _errors("Body over 64 KiB."),
                        "415": {"description": "Content-Type is not application/json."},
                        "422": _errors("Not possible in the case's state; says why."),
                        **staff_errors,
                    },
                }
            },
            "/api/staff/follow-up-calls": {
                "get": {
                    "summary": "The follow-up calls (回访) due now, longest waiting first: "
                    "customer, phone, language, case summary. Record each with the action "
                    "record_follow_up_call.",
                    "security": bearer,
                    "responses": {
                        "200": {"description": "{\"calls\": [...]}",
                                "content": {"application/json": {"schema": {"type": "object"}}}},
                        **staff_errors,
                    },
                }
            },
            "/api/staff/reports/monthly/{month}": {
                "get": {
                    "summary": "The monthly statistics workbook of a month, rebuilt now: a "
                    "10-minute download link and the headline figures",
                    "security": bearer,
                    "parameters": [
                        {"name": "month", "in": "path", "required": True,
                         "schema": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}$"},
                         "description": "YYYY-MM, the current month or a past one"}
                    ],
                    "responses": {
                        "200": {"description": "month, download_url, expires_in_seconds, "
                                "opened, resolved, closed",
                                "content": {"application/json": {"schema": {"type": "object"}}}},
                        "400": _errors("Not a month, or a month still to come."),
                        **staff_errors,
                    },
                }
            },
            "/api/staff/units": {
                "post": {
                    "summary": "Register a sold unit (设备档案) with its planned visits",
                    "security": bearer,
                    "requestBody": {"required": True, "content": _json(Unit)},
                    "responses": {
                        "201": {"description": "Registered.", "content": _json(UnitRead)},
                        "400": _errors("Every bad field (a date to come, acceptance before "
                                       "the sale, an unknown dealer, …)."),
                        "409": _errors("The serial number is registered already."),
                        "413": _errors("Body over 64 KiB."),
                        "415": {"description": "Content-Type is not application/json."},
                        **staff_errors,
                    },
                }
            },
            "/api/staff/units/{serial_no}": {
                "get": {
                    "summary": "A unit, the end of its warranty and its visits to come",
                    "security": bearer,
                    "parameters": [UNIT_SERIAL],
                    "responses": {
                        "200": {"description": "The unit.", "content": _json(UnitRead)},
                        "404": _errors("No such unit."),
                        **staff_errors,
                    },
                },
                "patch": {
                    "summary": "Correct a unit: dealer, region, customer, model, product line, "
                    "sale or acceptance date, warranty terms, maintenance contract, hours",
                    "description": "Validated as at registration. When the dates or warranty "
                    "terms change, the visits still to come (after today) are planned afresh "
                    "in the same write. Front line (agent, supervisor, service director) and "
                    "service VP correct the unit; what decides the warranty (dates, terms, "
                    "contract, hours) only supervisor, service director, service VP.",
                    "security": bearer,
                    "parameters": [UNIT_SERIAL],
                    "requestBody": {"required": True, "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/UnitCorrection"}}}},
                    "responses": {
                        "200": {"description": "Corrected (or nothing to change).",
                                "content": _json(UnitRead)},
                        "400": _errors("Every bad field; a field that cannot be corrected."),
                        "403": _errors("Not this person's role, naming the fields."),
                        "404": _errors("No such unit."),
                        "409": {"description": "The unit changed since the version named, "
                                "or it is retired; nothing written.",
                                "content": _json(UnitConflict)},
                        "413": _errors("Body over 64 KiB."),
                        "415": {"description": "Content-Type is not application/json."},
                        **staff_errors,
                    },
                },
                "delete": {
                    "summary": "Retire a unit: kept for its history, marked retired (who, "
                    "when, why); its planned visits removed, no more opened",
                    "description": "Supervisor, service director or service VP.",
                    "security": bearer,
                    "parameters": [UNIT_SERIAL],
                    "requestBody": {"required": True, "content": _json(UnitRetirement)},
                    "responses": {
                        "200": {"description": "Retired.", "content": _json(UnitRead)},
                        "400": _errors("No reason given, or an unknown field."),
                        "403": _errors("Not this person's role."),
                        "404": _errors("No such unit."),
                        "409": {"description": "Retired already, or changed since the "
                                "version named; nothing written.",
                                "content": _json(UnitConflict)},
                        "413": _errors("Body over 64 KiB."),
                        "415": {"description": "Content-Type is not application/json."},
                        **staff_errors,
                    },
                },
            },
            "/api/staff/units/import": {
                "post": {
                    "summary": "Register the units of a workbook (.xlsx): the first sheet, "
                    "headed by column names in English or Chinese",
                    "description": "Good rows are registered with their planned visits; each "
                    "bad row is reported with every reason and nothing of it is written. "
                    "Formulas are refused, and serial numbers typed as numbers of more than "
                    "15 digits or with a fraction. At most 1,000 units per call.",
                    "security": bearer,
                    "requestBody": {"required": True, "content": {
                        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
                            "schema": {"type": "string", "format": "binary"}}}},
                    "responses": {
                        "200": {"description": "What was registered and what was rejected.",
                                "content": _json(UnitImportReport)},
                        "400": _errors("Not a workbook, a required column missing, two "
                                       "columns for one, or too many units (a column the "
                                       "registry does not know is ignored, with a warning)."),
                        "413": _errors("Over 5 MB."),
                        "415": {"description": "Not the .xlsx content type."},
                        **staff_errors,
                    },
                }
            },
            "/api/sheets/edits": {
                "post": {
                    "summary": "The staff's sheet: rows someone just edited (the Apps Script "
                    "in sheets/edits.gs posts them)",
                    "description": "Signed: X-Sheets-Timestamp (unix seconds, within 5 "
                    "minutes) and X-Sheets-Signature: sha256=<hex HMAC-SHA256 of "
                    "'<timestamp>.<raw body>' with the webhook secret>. The rows are re-read "
                    "from the sheet and each change applied through the same rules as the "
                    "staff API; a refused one is put back with a sync note.",
                    "parameters": [
                        {"name": "X-Sheets-Timestamp", "in": "header", "required": True,
                         "schema": {"type": "string"}},
                        {"name": "X-Sheets-Signature", "in": "header", "required": True,
                         "schema": {"type": "string"}},
                    ],
                    "requestBody": {"required": True, "content": {"application/json": {
                        "schema": {"type": "object", "required": ["sheet", "rows"],
                                   "additionalProperties": False, "properties": {
                                       "spreadsheet_id": {"type": "string"},
                                       "sheet": {"type": "string"},
                                       "rows": {"type": "array", "maxItems": 500,
                                                "items": {"type": "integer"}},
                                       "editor": {"type": "string"}}}}}},
                    "responses": {
                        "200": {"description": "How many rows were applied, refused, "
                                "unchanged or waiting.", "content": {"application/json": {
                                    "schema": {"type": "object"}}}},
                        "400": _errors("Not JSON, or a field is wrong."),
                        "401": _errors("A bad signature, or a timestamp too far from now."),
                        "404": _errors("No sheet is configured here."),
                        "413": _errors("Over 64 KB."),
                        "503": _errors("The sheet or the store is unavailable; the "
                                       "reconcile takes the edit in later."),
                    },
                }
            },
            "/status/{token}/satisfaction": {
                "get": {
                    "summary": "The customer's rating form (from the follow-up e-mail). "
                    "Opening it records nothing.",
                    "parameters": [TOKEN, LANG],
                    "responses": {"200": _html("The form, or the thanks."),
                                  "404": _html("No such case.")},
                },
                "post": {
                    "summary": "Record the customer's rating (1–5) and comment",
                    "parameters": [TOKEN, LANG],
                    "requestBody": {
                        "required": True,
                        "content": {"application/x-www-form-urlencoded": {"schema": {
                            "type": "object",
                            "properties": {
                                "rating": {"type": "string", "enum": ["1", "2", "3", "4", "5"]},
                                "comment": {"type": "string", "maxLength": 2000},
                            },
                            "required": ["rating"],
                        }}},
                    },
                    "responses": {
                        "303": {"description": "Recorded: the thanks at Location."},
                        "400": _html("The form again, with the problem marked."),
                        "404": _html("No such case."),
                        "409": _html("Nothing to rate on this case now."),
                    },
                },
            },
            "/status/{token}/sign": {
                "get": {
                    "summary": "The fee quote (before paid work) or the service form (after the "
                    "work) for the customer to sign. Opening it signs nothing.",
                    "parameters": [TOKEN, LANG],
                    "responses": {"200": _html("The document to sign, what was signed, or "
                                               "nothing to sign."),
                                  "404": _html("No such case.")},
                },
                "post": {
                    "summary": "Sign the document shown with the customer's typed name",
                    "parameters": [TOKEN, LANG],
                    "requestBody": {
                        "required": True,
                        "content": {"application/x-www-form-urlencoded": {"schema": {
                            "type": "object",
                            "properties": {
                                "what": {"type": "string", "enum": ["quote", "form"],
                                         "description": "The document shown."},
                                "name": {"type": "string", "maxLength": 200},
                                "comment": {"type": "string", "maxLength": 2000},
                            },
                            "required": ["name"],
                        }}},
                    },
                    "responses": {
                        "303": {"description": "Signed: what was signed at Location."},
                        "400": _html("The document again: a name is needed."),
                        "404": _html("No such case."),
                        "409": _html("Another document waits now, or nothing to sign."),
                    },
                },
            },
            "/api/openapi.json": {
                "get": {
                    "summary": "This document",
                    "responses": {"200": {"description": "OpenAPI 3.1"}},
                }
            },
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "staffToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A staff token from `python -m chalicelib.cli staff`.",
                }
            },
        },
    }
