"""The spreadsheet's webhook: the Apps Script in sheets/edits.gs posts the rows staff just
edited, signed with the shared HMAC secret. A Chalice blueprint, registered in app.py.

The body is checked against the signature as it arrived (never re-serialised), and the
signed timestamp must be within five minutes of our clock, so a captured request cannot be
replayed later. The rows are then re-read from the sheet: the post says only where to look.
Like app.py, the body's model and the business modules are imported inside the view, so
`import app` (the cold start of every function) does not load pydantic for this route.
"""

from __future__ import annotations

import json
import time
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from chalice.app import Blueprint, Response

from chalicelib.web.responses import UNAVAILABLE
from chalicelib.web.responses import errors_response as _errors
from chalicelib.web.responses import json_response as _json

MAX_BODY_BYTES = 64 * 1024
MAX_SKEW_SECONDS = 300

sheets = Blueprint(__name__)


def signature_ok(secret: str, timestamp: str, signature: str, body: bytes,
                 now: float) -> bool:
    """``sha256=<hex of HMAC-SHA256(secret, "<timestamp>.<body>")>``, timestamp close to now."""
    import hashlib
    import hmac

    if not timestamp.isdigit() or abs(now - int(timestamp)) > MAX_SKEW_SECONDS:
        return False
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body,
                        hashlib.sha256).hexdigest()
    return hmac.compare_digest(f"sha256={expected}", signature.strip())


@sheets.route("/api/sheets/edits", methods=["POST"], content_types=["application/json"])
def sheet_edits() -> Response:
    from pydantic import ValidationError

    from chalicelib import bootstrap
    from chalicelib.services import sheets as sheet_service
    from chalicelib.services.ports import WriteConflict
    from chalicelib.web.sheet_edit_body import SheetEdits

    request = sheets.current_request
    raw = request.raw_body or b""
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    if len(raw) > MAX_BODY_BYTES:
        return _errors(413, [{"field": "body", "message": "too large"}])
    _, secret = bootstrap.sheets_secrets()
    if not secret:
        return _errors(404, [{"field": "", "message": "no sheet webhook is configured here"}])
    headers = request.headers
    if not signature_ok(secret, headers.get("x-sheets-timestamp", ""),
                        headers.get("x-sheets-signature", ""), raw, time.time()):
        return _errors(401, [{"field": "X-Sheets-Signature",
                              "message": "bad signature or stale timestamp"}])
    try:
        edits = SheetEdits.model_validate(json.loads(raw))
    except ValueError as error:
        problems: list[dict[str, Any]] = (
            [{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
             for e in error.errors(include_url=False)]
            if isinstance(error, ValidationError)
            else [{"field": "body", "message": "not JSON"}]
        )
        return _errors(400, problems)
    desk = bootstrap.sheet_desk(patient=False)
    if desk is None:
        return _errors(404, [{"field": "", "message": "no sheet is configured here"}])
    if (edits.spreadsheet_id and desk.settings.sheet_id
            and edits.spreadsheet_id != desk.settings.sheet_id):
        return _errors(400, [{"field": "spreadsheet_id", "message": "not our spreadsheet"}])
    rows = sorted({row for row in edits.rows if row >= 2})
    try:
        report = sheet_service.take_edits(desk, edits.sheet, rows, edits.editor)
    except (ClientError, BotoCoreError, WriteConflict) as error:
        sheets.log.exception("storage unavailable: %s", error)
        return _errors(503, UNAVAILABLE)
    if report.busy:
        return _errors(503, [{"field": "", "message": "another sync is writing the sheet; "
                              "the next reconcile takes the edit in"}])
    if report.unavailable:
        return _errors(503, [{"field": "", "message": "the sheet could not be read; "
                              "the next reconcile takes the edit in"}])
    return _json(200, {
        "rows": len(rows), "applied": report.edits_applied, "refused": report.edits_refused,
        "unchanged": len(rows) - report.edits_applied - report.edits_refused
        - report.edits_pending,
        "pending": report.edits_pending,
    })
