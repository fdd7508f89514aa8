"""Google Sheets API requests per sync, and the sync's wall time, for 1, 100 and 10,000
changed cases — against the fake Google Sheets HTTP API of the tests (tests/fakes), with
moto as DynamoDB. The real gspread client and the real sync run; only Google is faked.

    .venv/bin/python bench/bench_sheets.py [--sizes 1,100,10000]

Targets (issue 6): requests per sync independent of the number of rows (one write per sync,
more only where the 2 MB payload split needs it) and at most one read per view per reconcile.
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from figures import COMPLAINT, FAKE_AWS, Report, guarded, section, summary

os.environ.update(FAKE_AWS)
TABLE = "service-desk-bench-sheets"


def seed_cases(client: Any, count: int, now: datetime) -> list[str]:
    """``count`` open cases, each with its dirty mark, written in bulk (25 items a call)."""
    from chalicelib.adapters.dynamodb import SHEET_DUE_PARTITION, timestamp, to_item
    from chalicelib.domain.case import Channel, Complaint, Language, format_case_number, open_case

    complaint = Complaint.model_validate(COMPLAINT)
    items = []
    ids = []
    for n in range(count):
        case_id = uuid.uuid4().hex
        ids.append(case_id)
        case, _ = open_case(complaint, case_id=case_id,
                            case_number=format_case_number(n + 1, "BS"), language=Language.ZH,
                            channel=Channel.WEB_FORM, now=now - timedelta(minutes=1),
                            first_reply_due_at=now + timedelta(days=1))
        items.append(to_item({"PK": f"CASE#{case_id}", "SK": "CASE",
                              "case": case.model_dump(mode="json"), "version": 1}))
        items.append(to_item({"PK": f"CASE#{case_id}", "SK": "SHEET", "due_pk": SHEET_DUE_PARTITION,
                              "due_sk": f"{timestamp(case.updated_at)}#{case_id}"}))
    for start in range(0, len(items), 25):
        client.batch_write_item(RequestItems={TABLE: [
            {"PutRequest": {"Item": item}} for item in items[start:start + 25]]})
    return ids


def measure(report: Report, size: int) -> None:
    import boto3
    from moto import mock_aws

    from chalicelib.adapters import google_sheets
    from chalicelib.adapters.google_sheets import GoogleSheet
    from chalicelib.adapters.sheet_mirror import DynamoSheetStore
    from chalicelib.domain.policies import Policies
    from chalicelib.services import sheets
    from chalicelib.settings import Settings
    from local.table import create_table
    from tests.fakes.google_sheets import FakeGoogleSheets

    google_sheets.pause = lambda seconds: None
    with mock_aws(), FakeGoogleSheets() as fake:
        dynamodb = boto3.client("dynamodb")
        create_table(dynamodb, TABLE)
        sheet_id = fake.create_spreadsheet()
        backend = GoogleSheet(sheet_id, fake.service_account_info())
        store = DynamoSheetStore(TABLE)
        now = datetime.now(UTC)
        settings = Settings(table_name=TABLE)

        def desk(at: datetime) -> sheets.SheetDesk:
            return sheets.SheetDesk(store=store, backend=backend, policies=Policies(),
                                    settings=settings, now=at, base_url="https://x.example")

        seed_cases(dynamodb, 1, now)
        sheets.sync(desk(now))  # the layout, and the first row
        seed_cases(dynamodb, size, now + timedelta(seconds=1))
        fake.clear_log()
        started = time.perf_counter()
        result = sheets.sync(desk(now + timedelta(seconds=2)), limit=size + 10)
        seconds = time.perf_counter() - started
        kinds = [r.kind for r in fake.requests if r.kind != "token"]
        writes = [r for r in fake.requests if r.kind == "batchUpdate"]
        reads = len(kinds) - len(writes)
        largest = max((r.body_size for r in writes), default=0)
        print(f"  {size} changed cases: {result.rows_added} rows added; requests {kinds}; "
              f"largest write {largest / 1e6:.2f} MB; {seconds:.1f} s")
        split_needed = sum(r.body_size for r in writes) > 2_000_000
        report.judge(f"Sheets requests per sync, {size} changed", f"{len(kinds)} "
                     f"({reads} read + {len(writes)} write)",
                     "1 read + 1 write (more writes only for the 2 MB split)",
                     reads == 1 and (len(writes) == 1 or split_needed)
                     and largest <= 2_000_000)
        report.add(f"sync wall time, {size} rows (moto + fake API)", f"{seconds:.1f} s")
        fake.clear_log()
        result = sheets.reconcile(desk(now + timedelta(seconds=3)), limit=size + 10)
        reads = [r for r in fake.requests if r.kind in ("values.batchGet", "metadata")]
        report.judge(f"reads per reconcile, {size} rows in 5 views", str(len(reads)),
                     "≤ 1 per view (5)", len(reads) <= 5)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1,100,10000")
    args = parser.parse_args()
    report = Report()
    started = time.perf_counter()
    section("Google Sheets requests per sync (fake Google API, moto DynamoDB)")
    for size in (int(s) for s in args.sizes.split(",")):
        guarded(report, f"{size} changed cases", lambda size=size: measure(report, size))
    return summary(report, time.perf_counter() - started)


if __name__ == "__main__":
    raise SystemExit(main())
