"""The monthly report over a month of real field-service cases worked through the HTTP API
(warranty checks, dispatch to a technician, a dealer and a supplier, paid work, spare parts
shipped and old parts out and back, a follow-up call and a rating), one case opened in
June and worked in July. Every figure of July's workbook is checked against a count done
here, from what was done and from the cases as the staff API shows them; then August, in
which no case changed, still shows the old part that is out."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from io import BytesIO
from pathlib import Path
from typing import Any

import boto3
import openpyxl
import pytest

from chalicelib import bootstrap
from chalicelib.services.reports import build_monthly, send_monthly_report
from chalicelib.settings import get_policies, get_settings
from tests.integration.support import (
    LEO,
    TOM,
    FieldDeskMixin,
    use_field_policies,
)
from tests.integration.test_reports import drain, mails
from tests.integration.test_timers import DIRECTOR, OWNER, Desk, Opened, at, sh


class FieldDesk(FieldDeskMixin, Desk):
    """The desk of test_timers, with the field-service staff and a unit registry."""


JULY = date(2026, 7, 1)
JULY_STARTS, JULY_ENDS = sh(2026, 7, 1, 0), sh(2026, 8, 1, 0)


@pytest.fixture
def desk(client: Any, aws: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FieldDesk:
    use_field_policies(tmp_path, monkeypatch)
    return FieldDesk(client, aws)


def repair(desk: FieldDesk, when: datetime, serial_no: str) -> Opened:
    case = desk.report_repair(when, serial_no)
    desk.do(case, when.replace(minute=1), "assign_owner", {"owner": OWNER})
    desk.do(case, when.replace(minute=5), "check_warranty", {"operating_hours": 600})
    return case


def parts(desk: FieldDesk, case: Opened, when: datetime, number: int, price: str,
          shipped: datetime) -> None:
    desk.do(case, when, "request_parts",
            {"lines": [{"part_no": f"P-{number}", "quantity": 1, "unit_price": price}]})
    desk.do(case, when.replace(minute=30), "approve_parts", {"number": number},
            staff_id=DIRECTOR)
    desk.do(case, shipped, "ship_parts", {"number": number, "tracking_no": "SF1"},
            staff_id=LEO)


def month_of_field_work(desk: FieldDesk) -> dict[str, Opened]:
    for serial_no, unit in {
        "FL-A": {"dealer": "east", "region": "Zhejiang"},
        "FL-B": {"region": "Shanghai"},
        "FL-C": {"region": "Beijing", "sold_on": "2023-03-01", "accepted_on": "2023-03-01"},
        "FL-D": {"region": "Shanghai"},
        "FL-E": {"dealer": "north", "region": "Beijing"},
    }.items():
        desk.register_unit(sh(2026, 6, 20, 9), serial_no=serial_no, **unit)

    # A: opened on 30 June, dispatched to the dealer on 1 July, 480.00 of parts shipped
    # on Friday 3 July; its old part is still out at July's end.
    a = repair(desk, sh(2026, 6, 30, 16), "FL-A")
    desk.do(a, sh(2026, 7, 1, 9), "dispatch", {"party": "dealer"})
    parts(desk, a, sh(2026, 7, 1, 10), 1, "480.00", shipped=sh(2026, 7, 3, 10))

    # B: our technician, 60.00 of parts to him, fixed, signed, resolved; the customer is
    # called (satisfied) and rates 5. Tom's old part is not back by the end of August.
    b = repair(desk, sh(2026, 7, 6, 10), "FL-B")
    desk.do(b, sh(2026, 7, 6, 10, 30), "dispatch", {"party": "technician", "to": TOM})
    desk.do(b, sh(2026, 7, 6, 15), "arrived_on_site", staff_id=TOM)
    parts(desk, b, sh(2026, 7, 6, 16), 1, "60.00", shipped=sh(2026, 7, 7, 8, 30))
    desk.do(b, sh(2026, 7, 7, 8, 40), "record_service_form",
            {"work": "Pump replaced", "hours": "2"}, staff_id=TOM)
    desk.do(b, sh(2026, 7, 7, 8, 50), "service_form_signed_on_paper", {"signed_by": "Li Wei"},
            staff_id=TOM)
    desk.do(b, sh(2026, 7, 7, 9), "resolve")

    # C: out of warranty (paid, class A): quoted, consented, sent to Tom.
    c = repair(desk, sh(2026, 7, 8, 10), "FL-C")
    desk.do(c, sh(2026, 7, 8, 10, 30), "quote_fees",
            {"amount": "900.00", "description": "New chain"})
    desk.sign(c, sh(2026, 7, 8, 11), "quote", "Li Wei")
    desk.do(c, sh(2026, 7, 8, 11, 30), "dispatch", {"party": "technician", "to": TOM})

    # D: the supplier's part failed.
    d = repair(desk, sh(2026, 7, 9, 10), "FL-D")
    desk.do(d, sh(2026, 7, 9, 10, 30), "dispatch", {"party": "supplier", "to": "hydraulics"})

    # B's follow-up call falls due three days after it was resolved.
    desk.sweep_and_send(sh(2026, 7, 10, 9, 30))
    desk.do(b, sh(2026, 7, 10, 10), "record_follow_up_call",
            {"outcome": "satisfied", "note": "Works well"})
    with desk.moment(sh(2026, 7, 10, 11)):
        token = b.status_url.rsplit("/", 1)[1]
        rated = desk.client.http.post(
            f"/status/{token}/satisfaction",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            body=b"rating=5&comment=Fast")
        assert rated.status_code == 303, rated.body

    # E: the north dealer, 100.00 of parts; the old part is back on 20 July.
    e = repair(desk, sh(2026, 7, 13, 10), "FL-E")
    desk.do(e, sh(2026, 7, 13, 10, 10), "dispatch", {"party": "dealer"})
    parts(desk, e, sh(2026, 7, 13, 11), 1, "100.00", shipped=sh(2026, 7, 14, 10))
    desk.do(e, sh(2026, 7, 20, 10), "old_part_received", {"number": 1}, staff_id=LEO)

    return {"a": a, "b": b, "c": c, "d": d, "e": e}


def table(sheet: Any, first_row: int = 2) -> dict[Any, Any]:
    found: dict[Any, Any] = {}
    for label, value in sheet.iter_rows(min_row=first_row, max_col=2, values_only=True):
        if label is None:
            break
        found[label] = value
    return found


def in_july(moment: datetime | None) -> bool:
    return moment is not None and JULY_STARTS <= moment < JULY_ENDS


def test_a_month_of_field_service_in_the_workbook_matches_a_count_done_here(
    desk: FieldDesk, aws: Path,
) -> None:
    cases = month_of_field_work(desk)
    read = {name: desk.case(case) for name, case in cases.items()}

    # The count done here: what the cases say through the staff API.
    opened = [c for c in read.values() if in_july(at(c["created_at"]))]
    replied = [c for c in read.values()
               if c["first_replied_at"] and in_july(at(c["first_replied_at"]))]
    replied_on_time = sum(1 for c in replied if c["first_reply_due_at"] is None
                          or at(c["first_replied_at"]) <= at(c["first_reply_due_at"]))
    resolved = [c for c in read.values()
                if c["resolved_at"] and in_july(at(c["resolved_at"]))]
    resolved_on_time = sum(1 for c in resolved if c["resolve_due_at"] is None
                           or at(c["resolved_at"]) <= at(c["resolve_due_at"]))
    classes: dict[str, int] = {}
    regions: dict[str, int] = {}
    for c in opened:
        record = c["field_service"]
        label = {"A": "A paid 付费", "C": "C free warranty 免费保修"}[
            record["warranty"]["service_class"]]
        classes[label] = classes.get(label, 0) + 1
        regions[record["unit"]["region"]] = regions.get(record["unit"]["region"], 0) + 1
    cost = Decimal(0)
    out: dict[str, int] = {}
    for c in read.values():
        for request in c["field_service"]["parts"]:
            if in_july(at(request["shipped_at"])):
                cost += Decimal(request["amount"])
            old = request["old_part"]
            if old and (old["received_at"] is None or not in_july(at(old["received_at"]))):
                out[request["for_party"]] = out.get(request["for_party"], 0) + 1

    assert len(opened) == 4 and len(resolved) == 1 and len(replied) >= 4
    assert regions == {"Shanghai": 2, "Beijing": 2}
    assert classes == {"C free warranty 免费保修": 3, "A paid 付费": 1}
    assert cost == Decimal("640.00")  # A's 480 shipped in July though opened in June
    assert out == {"east": 1, TOM: 1}

    store, settings, policies = bootstrap.case_store(), get_settings(), get_policies()
    sent_at = datetime(2026, 8, 1, 1, 0, tzinfo=UTC)
    with desk.moment(sent_at):
        sent = send_monthly_report(store, bootstrap.report_files(), settings, policies,
                                   sent_at)
    assert sent.sent
    # The e-mailed build has a key of its own; a staff download meanwhile rebuilds only
    # the download key, and the attachment is the build that was sent.
    s3 = boto3.client("s3")
    bucket = bootstrap.report_files().bucket
    [key] = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="reports/sent/")
             ["Contents"]]
    built = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    with desk.moment(sent_at + timedelta(minutes=5)):
        download = desk.client.http.get(
            "/api/staff/reports/monthly/2026-07",
            headers={"Authorization": f"Bearer {desk.tokens[OWNER]}"})
        assert download.status_code == 200
    drain(sent_at + timedelta(minutes=10))
    reports = [m for m in mails(aws) if "2026-07" in str(m["Subject"])]
    assert reports
    attachment = next(reports[0].iter_attachments()).get_content()
    assert attachment == built
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == built

    book = openpyxl.load_workbook(BytesIO(attachment))
    assert all(sheet._charts for sheet in book.worksheets), [
        s.title for s in book.worksheets if not s._charts]
    summary = table(book["Summary"])
    assert summary["Cases opened 新开案件"] == len(opened)
    assert summary["Cases resolved 已解决案件"] == len(resolved)
    assert table(book["By region"]) == regions
    assert table(book["By dealer"]) == {"east": 1, "north": 1}  # A counts when dispatched
    assert table(book["By supplier"]) == {"hydraulics": 1}
    assert table(book["Warranty vs paid"]) == classes
    times = {row[0].value: tuple(c.value for c in row[1:4])
             for row in book["Response times"].iter_rows(min_row=2)}
    assert times["First reply 首次回复"] == (
        replied_on_time, len(replied) - replied_on_time, len(replied))
    assert times["Completion 完成"] == (
        resolved_on_time, len(resolved) - resolved_on_time, len(resolved))
    money = table(book["Parts and old parts"])
    shipped = money["Warranty parts shipped or bought 当月发出或采购的三包备件费用"]
    assert Decimal(str(shipped)) == cost
    sheet = book["Parts and old parts"]
    column_a = [cell.value for cell in sheet["A"]]
    top = column_a.index("Old parts outstanding 未返还旧件") + 1
    assert sheet.cell(row=top, column=2).value == sum(out.values())
    assert table(sheet, first_row=top + 3) == out
    calls = table(book["Satisfaction"])
    assert calls["Satisfied 满意"] == 1 and calls["Not satisfied 不满意"] == 0
    assert summary["Ratings 评价数"] == 1 and summary["Average rating 平均评分"] == 5

    # June: A was opened then (its unit's region is known), nothing spent, nothing out.
    june = build_monthly(store, policies, date(2026, 6, 1))
    assert (june.opened, june.by_region, june.by_dealer) == (1, (("Zhejiang", 1),), ())
    assert (june.parts_cost, june.old_parts_outstanding) == (Decimal(0), 0)

    # August: the dealer's old part is not back by 2 August, so the sweep turns it into a
    # parts sale to the dealer; Tom's is reminded and still out at the month's end,
    # although case B did not change in August.
    desk.sweep_and_send(sh(2026, 8, 2, 10, 30))
    desk.sweep_and_send(sh(2026, 8, 31, 12))
    august = build_monthly(store, policies, date(2026, 8, 1))
    assert august.opened == 0 and august.parts_cost == Decimal(0)
    assert august.parts_sold == Decimal("480.00")
    assert (august.old_parts_outstanding, august.old_parts_by_holder) == (1, ((TOM, 1),))
    assert at(desk.case(cases["b"])["updated_at"]) < JULY_ENDS

