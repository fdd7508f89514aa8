"""Google Sheets API requests per sync, and the sync's wall time, for 1, 100 and 10,000
changed cases — first added, then changed again (half leave the view, half are rewritten in
place) — against the fake Google Sheets HTTP API of the tests (tests/fakes), with moto as
DynamoDB. The real gspread client and the real sync run; only Google is faked.

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


def put_cases(client: Any, cases: list[Any]) -> None:
    """The cases as they are now, each with its dirty mark, in bulk (25 items a call)."""
    from chalicelib.adapters.dynamodb import SHEET_DUE_PARTITION, timestamp, to_item

    items = []
    for case in cases:
        items.append(to_item({"PK": f"CASE#{case.case_id}", "SK": "CASE",
                              "case": case.model_dump(mode="json"), "version": case.version}))
        items.append(to_item({"PK": f"CASE#{case.case_id}", "SK": "SHEET",
                              "due_pk": SHEET_DUE_PARTITION,
                              "due_sk": f"{timestamp(case.updated_at)}#{case.case_id}"}))
    for start in range(0, len(items), 25):
        client.batch_write_item(RequestItems={TABLE: [
            {"PutRequest": {"Item": item}} for item in items[start:start + 25]]})


def changed(cases: list[Any], now: datetime) -> list[Any]:
    """Every other case closed (its row leaves the Cases view), the rest given an owner
    (their rows rewritten in place): one version up each."""
    from chalicelib.domain.case import CaseStatus

    return [
        case.model_copy(update={"version": case.version + 1, "updated_at": now,
                                **({"status": CaseStatus.CLOSED, "closed_at": now} if n % 2
                                   else {"owner": "ann"})})
        for n, case in enumerate(cases)
    ]


def seed_cases(client: Any, count: int, now: datetime) -> list[Any]:
    """``count`` open cases, each with its dirty mark, written in bulk (25 items a call)."""
    from chalicelib.domain.case import Channel, Complaint, Language, format_case_number, open_case

    complaint = Complaint.model_validate(COMPLAINT)
    cases = []
    for n in range(count):
        case, _ = open_case(complaint, case_id=uuid.uuid4().hex,
                            case_number=format_case_number(n + 1, "BS"), language=Language.ZH,
                            channel=Channel.WEB_FORM, now=now - timedelta(minutes=1),
                            first_reply_due_at=now + timedelta(days=1))
        cases.append(case)
    put_cases(client, cases)
    return cases


def timed_sync(report: Report, fake: Any, sync: Any, what: str) -> None:
    """One sync, timed, with the Sheets requests it made judged against the target."""
    fake.clear_log()
    started = time.perf_counter()
    result = sync()
    seconds = time.perf_counter() - started
    kinds = [r.kind for r in fake.requests if r.kind != "token"]
    writes = [r for r in fake.requests if r.kind == "batchUpdate"]
    reads = len(kinds) - len(writes)
    largest = max((r.body_size for r in writes), default=0)
    split_needed = sum(r.body_size for r in writes) > 2_000_000
    print(f"  {what}: {result.rows_added} rows added, {result.rows_removed} removed, "
          f"{result.rows_written} written; requests {kinds}; "
          f"largest write {largest / 1e6:.2f} MB; {seconds:.1f} s")
    report.judge(f"Sheets requests per sync, {what}",
                 f"{len(kinds)} ({reads} read + {len(writes)} write)",
                 "1 read + 1 write (more writes only for the 2 MB split)",
                 reads == 1 and (len(writes) == 1 or split_needed) and largest <= 2_000_000)
    report.add(f"sync wall time, {what} (moto + fake API)", f"{seconds:.1f} s")


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
        cases = seed_cases(dynamodb, size, now + timedelta(seconds=1))
        timed_sync(report, fake, lambda: sheets.sync(desk(now + timedelta(seconds=2)),
                                                      limit=size + 10), f"{size} changed")
        fake.clear_log()
        sheets.reconcile(desk(now + timedelta(seconds=3)), limit=size + 10)
        reads = [r for r in fake.requests if r.kind in ("values.batchGet", "metadata")]
        report.judge(f"reads per reconcile, {size} rows in 5 views", str(len(reads)),
                     "≤ 1 per view (5)", len(reads) <= 5)
        # The same cases changed again: half leave the view (rows deleted), half are
        # rewritten in place.
        put_cases(dynamodb, changed(cases, now + timedelta(seconds=4)))
        timed_sync(report, fake, lambda: sheets.sync(desk(now + timedelta(seconds=5)),
                                                      limit=size + 10),
                   f"{size} changed again (half removed, half rewritten)")


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
