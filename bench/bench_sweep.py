"""Deadline-sweep benchmark: prints figures, it is not a timed test.

    .venv/bin/python bench/bench_sweep.py [--timers 100000] [--due 100] [--runs 3]
                                          [--stale 0]

1. DynamoDB read work of one sweep (``sweep_due_timers``) over a table holding ``--timers``
   open timers (one per case) of which ``--due`` are due, next to what one Scan of the same
   table reads. Reads are counted on the store's own boto3 client with botocore
   ``after-call`` handlers: items read by each Query/Scan (ScannedCount), 1 per item a
   GetItem returns, and 1 per item a refused transaction hands back. moto's
   ConsumedCapacity is a fixed placeholder (1 per Query/Scan, 0.5 per GetItem, whatever
   the size), so **items read** is the measure; an estimate of DynamoDB's read units from
   the sizes of the items returned is printed beside it.
   Target: the sweep reads ≤ 2× the due items. The same with a tenth of the timers (the
   same number due) shows whether the sweep's reads grow with timers not yet due.
   Each timer carries a copy of its case (projected onto the ``due`` index), so the sweep
   reads a case only when that copy is out of date. ``--stale N`` changes N of the due
   timers' cases after loading (a version up, as an owner change would) to show what
   that costs; by default every copy is fresh, the best case. Counted apart, because
   they are not reads: the ConditionChecks of the case version in the firings'
   transactions (DynamoDB bills them as part of the transaction) and the transactions
   refused for a stale copy (made again from the case read afresh).
2. Wall time of one sweep with 100 and with 1,000 due timers, each on a fresh table holding
   just those timers (and their cases), alternating, medians, and their ratio.

The table comes from the CloudFormation template (local/table.py). Cases and timers are
loaded with batch_write_item in the store's own layout: one real case is created through
``DynamoCaseStore.create_case``; its CASE item is cloned with new ids and the case's own
listing keys, and each TIMER item is the store's ``_timer_item`` for the timer
``timer_changes`` starts for that case.

Two members of staff with e-mails (added through ``add_staff``) own the notices; settings
name a service-centre mailbox; policies are the defaults. NOW is fixed (a Tuesday afternoon
in China) so the escalation stage each firing schedules is in the future.

moto stand-ins, stated because they change wall times, not what is read:
- moto answers a Query on a global secondary index by sorting and walking every item of
  the table, so in moto the sweep's Queries slow down with the table size (DynamoDB reads
  only the index partition). Wall times of part 1 are shown for that reason only.
- moto's TransactWriteItems deep-copies the whole table for every item of a transaction
  (its rollback snapshot): seconds per item at 200,000 items, well over 20 minutes for one
  sweep of 100 firings (estimated). This bench swaps that snapshot for one of just the items
  the transaction touches, put back the same way on failure (checked at start-up); the
  transaction otherwise runs as moto's.
- While loading only: moto's 400 KB item-size check is off (it re-sums the item for every
  attribute it sets; our items are ~1.5 KB), and so are botocore's client-side parameter
  check and the garbage collector. 1,400–2,000 items/s: 200,000 items in 100–135 s.
- A Scan through the API is made on the small table; at 200,000 items moto's paginated
  Scan (the table sorted again for every 1 MB page) would take far too long, so the big
  table's item count is read from moto's backend (``--api-scan`` scans it anyway).
About 5–6 minutes on 2 cores (343 s measured with another job on the other core), 2 GB
of memory; ``--timers 20000`` for a quick run.

Exit status non-zero only when something breaks (a sweep fires the wrong number, a load
fails); targets are reported as "target met" / "MISSED". Never talks to AWS.
"""

from __future__ import annotations

import argparse
import copy
import gc
import math
import os
import statistics
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import figures  # bench/ is on the path: the benches run as scripts
from figures import COMPLAINT, FAKE_AWS, Report, spread

# Before anything creates a boto3 session or client.
os.environ.update(FAKE_AWS)
for _name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
    os.environ.pop(_name, None)
for _name in [n for n in os.environ if n.startswith("SERVICE_DESK_")]:
    os.environ.pop(_name)  # the settings below are the bench's own

TABLE = "service-desk-bench-sweep"
CENTRE = "centre@example.com"
TARGET_READ_RATIO = 2.0
# A Tuesday, 14:00 in China: every due timer fell due within the hour before, so each
# firing's next stage (the escalation, 4 business hours on) is in the future.
NOW = datetime(2026, 3, 10, 6, 0, tzinfo=UTC)

# -- reporting -------------------------------------------------------------------------


# -- DynamoDB item sizes and read units (DynamoDB's rules, estimated) --------------------


def _value_size(value: dict[str, Any]) -> int:
    ((kind, data),) = value.items()
    if kind == "S":
        return len(data.encode())
    if kind == "N":
        digits = len(data.lstrip("-").replace(".", "").strip("0")) or 1
        return (digits + 1) // 2 + 1
    if kind == "B":
        return len(data)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode()) for s in data)
    if kind == "NS":
        return sum(_value_size({"N": n}) for n in data)
    if kind == "L":
        return 3 + sum(_value_size(v) + 1 for v in data)
    if kind == "M":
        return 3 + sum(len(k.encode()) + _value_size(v) + 1 for k, v in data.items())
    return len(str(data))


def item_size(item: dict[str, Any]) -> int:
    """Bytes DynamoDB bills for an item: attribute names plus values."""
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def read_units(total_bytes: int, consistent: bool) -> float:
    """One read of that many bytes: 4 KB per unit (rounded up, one at least), half for an
    eventually consistent read."""
    units = max(1, math.ceil(total_bytes / 4096))
    return units if consistent else units / 2


# -- counting the store's reads ----------------------------------------------------------

READS = ("Query", "Scan", "GetItem", "BatchGetItem")
INDEX_ENTRY_OVERHEAD = 100  # bytes DynamoDB adds to each item of a secondary index


class ReadCounter:
    """botocore handlers on one client: calls per operation, items read (ScannedCount of a
    Query or Scan, 1 per item a GetItem returns), moto's ConsumedCapacity, and read units
    estimated from the sizes of the items returned."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.items: Counter[str] = Counter()  # by operation, "Query <index>" for an index
        self.moto_capacity = 0.0
        self.estimated_units = 0.0
        # ConditionChecks in TransactWriteItems (the firing's check of the case version):
        # DynamoDB looks at the item but bills it as part of the transaction, so it is
        # counted here, apart from the items read.
        self.condition_checks = 0
        self.refused_transactions = 0
        self._params: dict[str, Any] = {}

    def install(self, client: Any) -> None:
        events = client.meta.events
        events.register("before-parameter-build.dynamodb", self._on_params)
        events.register("after-call.dynamodb", self._on_result)

    def _on_params(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name in READS:
            params.setdefault("ReturnConsumedCapacity", "TOTAL")
        if model.name == "TransactWriteItems":
            self.condition_checks += sum(
                "ConditionCheck" in item for item in params.get("TransactItems", [])
            )
        self._params = dict(params)

    def _on_result(self, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        op = model.name
        self.calls[op] += 1
        if op == "TransactWriteItems" and "CancellationReasons" in parsed:
            self.refused_transactions += 1
            for reason in parsed["CancellationReasons"]:  # an item handed back is read
                if reason.get("Item"):
                    self.items["TransactWriteItems ALL_OLD"] += 1
        if op not in READS:
            return
        params = self._params
        consistent = bool(params.get("ConsistentRead"))
        index = params.get("IndexName")
        label = f"{op} {index}" if index else f"{op} table"
        if op in ("Query", "Scan"):
            returned = parsed.get("Items", [])
            self.items[label] += int(parsed.get("ScannedCount", parsed.get("Count", 0)))
            overhead = INDEX_ENTRY_OVERHEAD if index else 0
            size = sum(item_size(i) + overhead for i in returned)
            self.estimated_units += read_units(size, consistent)
        elif op == "GetItem":
            item = parsed.get("Item")
            self.items[label] += 1 if item else 0
            self.estimated_units += read_units(item_size(item) if item else 0, consistent)
        else:  # BatchGetItem (the store does not use it today)
            for found in parsed.get("Responses", {}).values():
                self.items[label] += len(found)
                for item in found:
                    self.estimated_units += read_units(item_size(item), consistent)
        capacity = parsed.get("ConsumedCapacity")
        for entry in capacity if isinstance(capacity, list) else [capacity] if capacity else []:
            self.moto_capacity += float(entry.get("CapacityUnits", 0))

    def reset(self) -> None:
        self.calls.clear()
        self.items.clear()
        self.moto_capacity = 0.0
        self.estimated_units = 0.0
        self.condition_checks = 0
        self.refused_transactions = 0

    @property
    def items_read(self) -> int:
        return sum(self.items.values())

    def breakdown(self) -> str:
        return ", ".join(f"{name} {n}" for name, n in sorted(self.items.items())) or "none"

    def call_breakdown(self) -> str:
        return ", ".join(f"{name} {n}" for name, n in sorted(self.calls.items())) or "none"


# -- moto: a rollback snapshot of the touched items, not of the whole table --------------


def patch_moto_transactions() -> None:
    """moto deep-copies every table a TransactWriteItems names, once per item of the
    transaction, to roll back on failure. Keep a copy of just the items the transaction
    touches instead, and put them back the same way on failure."""
    import moto.dynamodb.models as models
    from moto.dynamodb.models.table import Table

    backend_class = models.DynamoDBBackend
    if getattr(backend_class, "_bench_sweep_patched", False):
        return
    real_copy = copy

    class TableCopyIsIdentity:
        @staticmethod
        def deepcopy(value: Any, memo: Any = None) -> Any:
            if isinstance(value, Table):
                return value  # moto's whole-table snapshot: replaced by the one below
            return real_copy.deepcopy(value, memo)

    models.copy = TableCopyIsIdentity  # type: ignore[assignment,attr-defined]
    original = backend_class.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        saved: list[tuple[str, dict[str, Any], Any]] = []
        for entry in transact_items:
            try:
                op = next(iter(entry.values()))
                table = self.get_table(op["TableName"])
                if "Key" in op:
                    key = op["Key"]
                else:
                    names = [table.hash_key_attr, table.range_key_attr]
                    key = {n: op["Item"][n] for n in names if n is not None}
                before = self.get_item(op["TableName"], key)
            except Exception:  # let moto's own validation report a malformed item
                continue
            saved.append((op["TableName"], key, real_copy.deepcopy(before)))
        try:
            original(self, transact_items)
        except Exception:
            for table_name, key, before in reversed(saved):
                if before is None:
                    if self.get_item(table_name, key) is not None:
                        self.delete_item(table_name, key)
                else:
                    self.put_item(table_name, before.to_json()["Attributes"])
            raise

    backend_class.transact_write_items = transact_write_items  # type: ignore[method-assign]
    backend_class._bench_sweep_patched = True  # type: ignore[attr-defined]


def check_patched_rollback() -> None:
    """A cancelled transaction still writes nothing, and undoes an update it made."""
    import boto3
    from moto import mock_aws

    with mock_aws():
        ddb = boto3.client("dynamodb")
        ddb.create_table(
            TableName="rollback-check",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"},
                                  {"AttributeName": "SK", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"},
                       {"AttributeName": "SK", "KeyType": "RANGE"}],
        )
        key = {"PK": {"S": "A"}, "SK": {"S": "A"}}
        ddb.put_item(TableName="rollback-check", Item={**key, "n": {"N": "1"}})
        try:
            ddb.transact_write_items(TransactItems=[
                {"Update": {"TableName": "rollback-check", "Key": key,
                            "UpdateExpression": "SET n = :two",
                            "ExpressionAttributeValues": {":two": {"N": "2"}}}},
                {"Put": {"TableName": "rollback-check",
                         "Item": {"PK": {"S": "B"}, "SK": {"S": "B"}}}},
                {"Put": {"TableName": "rollback-check",
                         "Item": {"PK": {"S": "C"}, "SK": {"S": "C"}},
                         "ConditionExpression": "attribute_exists(PK)"}},
            ])
        except ddb.exceptions.TransactionCanceledException:
            pass
        else:
            raise RuntimeError("the failing transaction went through")
        after = ddb.get_item(TableName="rollback-check", Key=key)["Item"]["n"]["N"]
        written = ddb.scan(TableName="rollback-check")["Count"]
        if after != "1" or written != 1:
            raise RuntimeError(f"rollback broken: n={after}, {written} items")


# -- loading cases and timers ------------------------------------------------------------


@dataclass
class Loaded:
    timers: int
    due: int
    items_written: int
    seconds: float
    due_case_ids: list[str]  # the cases whose timer is due, oldest first


class Fixture:
    """Settings, policies, the template case (created through the store), two staff."""

    def __init__(self) -> None:
        from chalicelib.domain.case import Channel, Complaint, Language, open_case
        from chalicelib.domain.policies import Policies
        from chalicelib.domain.staff import Role, StaffMember
        from chalicelib.settings import Settings

        self.policies = Policies()
        self.staff = [
            StaffMember(staff_id="agent-li", name="李娜", role=Role.AGENT,
                        email="li.na@example.com"),
            StaffMember(staff_id="supervisor-zhang", name="张伟", role=Role.SUPERVISOR,
                        email="zhang.wei@example.com"),
        ]
        created = NOW - timedelta(hours=3)
        case, event = open_case(
            Complaint.model_validate(COMPLAINT),
            case_id=uuid.uuid4().hex,
            case_number="AS000001",
            language=Language.ZH,
            channel=Channel.WEB_FORM,
            now=created,
            first_reply_due_at=NOW + timedelta(days=30),
        )
        self.case = case.model_copy(update={"owner": self.staff[0].staff_id})
        self.event = event
        self.settings_for: Callable[[str], Settings] = lambda table: Settings(
            table_name=table, service_centre_email=CENTRE
        )


def case_timer(case: Any) -> Any:
    """The one timer the store starts for a new case like ours (its first reply)."""
    from chalicelib.domain.timers import timer_changes

    started = timer_changes(None, case).start
    if len(started) != 1:
        raise RuntimeError(f"expected one timer per case, the store starts {started}")
    return started[0]


def new_store(table: str) -> Any:
    from chalicelib.adapters.dynamodb import DynamoCaseStore

    return DynamoCaseStore(table)


def seed(store: Any, fixture: Fixture) -> dict[str, Any]:
    """Two staff members and one real case through the store; returns the case's CASE
    item as the store wrote it (the template every other case is cloned from)."""
    from chalicelib.adapters.dynamodb import _listing_keys, from_item
    from chalicelib.services.ports import NewCase

    for member in fixture.staff:
        store.add_staff(member, uuid.uuid4().hex, NOW)
    case = fixture.case
    store.create_case(
        NewCase(case=case, event=fixture.event, status_token=uuid.uuid4().hex,
                links_base="https://help.example.com"),
        NOW - timedelta(hours=3),
    )
    raw = store.client.get_item(
        TableName=store.table_name,
        Key={"PK": {"S": f"CASE#{case.case_id}"}, "SK": {"S": "CASE"}},
        ConsistentRead=True,
    )["Item"]
    timer = store.client.get_item(
        TableName=store.table_name,
        Key={"PK": {"S": f"CASE#{case.case_id}"}, "SK": {"S": f"TIMER#{case_timer(case).name}"}},
        ConsistentRead=True,
    )["Item"]
    # The clones below are only as real as these two checks.
    if timer != store._timer_item(case, case_timer(case)):
        raise RuntimeError("the store's TIMER item differs from _timer_item(case, timer)")
    values = from_item(raw)
    listing = {k: v for k, v in _listing_keys(case).items() if v is not None}
    if {k: values.get(k) for k in listing} != listing:
        raise RuntimeError("the store's CASE item differs from _listing_keys(case)")
    return values


def load(store: Any, fixture: Fixture, template: dict[str, Any], timers: int, due: int,
         loader: Any) -> Loaded:
    """``timers`` cases with one timer each (the template case counts as one, not due):
    ``due`` of them fell due in the hour before NOW, the rest fall due within 60 days."""
    from chalicelib.adapters.dynamodb import _listing_keys, to_item
    from chalicelib.domain.case import format_case_number

    started = time.perf_counter()
    batch: list[dict[str, Any]] = []
    written = 0

    def put(item: dict[str, Any]) -> None:
        nonlocal written
        batch.append({"PutRequest": {"Item": item}})
        if len(batch) == 25:
            flush()

    def flush() -> None:
        nonlocal written
        pending: dict[str, Any] = {store.table_name: list(batch)}
        batch.clear()
        while pending:
            response = loader.batch_write_item(RequestItems=pending)
            written += sum(len(v) for v in pending.values())
            pending = response.get("UnprocessedItems") or {}
            written -= sum(len(v) for v in pending.values())

    to_create = timers - 1
    due_case_ids: list[str] = []
    for i in range(to_create):
        if i < due:  # spread over the hour before NOW, oldest first
            due_at = NOW - timedelta(seconds=3600 * (due - i) / (due + 1))
        else:
            due_at = NOW + timedelta(minutes=10 + (i * 7919) % (60 * 24 * 60))
        case = fixture.case.model_copy(update={
            "case_id": uuid.uuid4().hex,
            "case_number": format_case_number(i + 2, "AS"),
            "first_reply_due_at": due_at,
        })
        if i < due:
            due_case_ids.append(case.case_id)
        put(to_item({
            **template,
            "PK": f"CASE#{case.case_id}",
            "case": case.model_dump(mode="json"),
            **_listing_keys(case),
        }))
        put(store._timer_item(case, case_timer(case)))
    if batch:
        flush()
    return Loaded(timers=timers, due=due, items_written=written,
                  seconds=time.perf_counter() - started, due_case_ids=due_case_ids)


def change_cases(table: str, case_ids: list[str]) -> None:
    """These cases move on a version (as any change that leaves their timer alone, an
    owner change say, does): the copy their timer carries is out of date."""
    import boto3

    ddb = boto3.session.Session().client("dynamodb")  # uncounted
    for case_id in case_ids:
        ddb.update_item(
            TableName=table,
            Key={"PK": {"S": f"CASE#{case_id}"}, "SK": {"S": "CASE"}},
            UpdateExpression="SET #version = #version + :one, #case.#version = :two",
            ExpressionAttributeNames={"#version": "version", "#case": "case"},
            ExpressionAttributeValues={":one": {"N": "1"}, ":two": {"N": "2"}},
        )


@contextmanager
def bulk_loading() -> Iterator[None]:
    """While loading: moto's 400 KB item-size check off (it re-sums the whole item for
    every attribute set, two thirds of moto's put_item time; our items are ~1.5 KB) and
    the cyclic garbage collector off (millions of new objects, no cycles)."""
    from moto.dynamodb.models.dynamo_type import LimitedSizeDict

    checked = LimitedSizeDict.__setitem__
    LimitedSizeDict.__setitem__ = dict.__setitem__  # type: ignore[method-assign]
    gc.disable()
    try:
        yield
    finally:
        LimitedSizeDict.__setitem__ = checked  # type: ignore[method-assign]
        gc.enable()


@contextmanager
def table_with_timers(timers: int, due: int, fixture: Fixture,
                      quiet: bool = False) -> Iterator[tuple[Any, Loaded]]:
    """A fresh moto table holding the timers; yields the store (its client not yet
    counted) and what was loaded."""
    import boto3
    from botocore.config import Config
    from moto import mock_aws

    from local.table import create_table

    with mock_aws():
        # The bench's own client (uncounted); botocore's client-side parameter check off:
        # moto checks the requests anyway, and it is a quarter of the loading time.
        loader = boto3.session.Session().client(
            "dynamodb", config=Config(parameter_validation=False)
        )
        create_table(loader, TABLE)
        store = new_store(TABLE)
        template = seed(store, fixture)
        with bulk_loading():
            loaded = load(store, fixture, template, timers, due, loader)
        gc.collect()
        gc.freeze()  # the loaded table: not traversed by every later collection
        if not quiet:
            print(f"  loaded {timers:,} timers ({due:,} due) as {loaded.items_written:,} "
                  f"items with batch_write_item in {loaded.seconds:.1f} s "
                  f"({loaded.items_written / loaded.seconds:,.0f} items/s)", flush=True)
        try:
            yield store, loaded
        finally:
            del store, loader
            gc.unfreeze()
            gc.collect()


def run_sweep(store: Any, fixture: Fixture) -> tuple[Any, float]:
    from chalicelib.services.sweep import sweep_due_timers

    gc.collect()
    started = time.perf_counter()
    report = sweep_due_timers(store, fixture.settings_for(store.table_name),
                              fixture.policies, NOW)
    return report, time.perf_counter() - started


def check_sweep(report: Any, due: int) -> None:
    if (report.due, report.fired, report.lost_races, report.emails) != (due, due, 0, due):
        raise RuntimeError(f"sweep over {due} due timers reported {report.as_dict()}")


def moto_table(table: str) -> Any:
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    backend = dynamodb_backends[DEFAULT_ACCOUNT_ID][FAKE_AWS["AWS_DEFAULT_REGION"]]
    return backend.get_table(table)


def scan_through_api(table: str) -> tuple[int, int]:
    """One full Scan, paginated, Select=COUNT (what it reads, without returning it):
    items read, pages."""
    import boto3

    ddb = boto3.session.Session().client("dynamodb")
    scanned = pages = 0
    for page in ddb.get_paginator("scan").paginate(TableName=table, Select="COUNT"):
        scanned += int(page["ScannedCount"])
        pages += 1
    return scanned, pages


def table_contents(table: str) -> tuple[int, float]:
    """Every item of the table, from moto's backend (not through the API): how many, and
    DynamoDB's read units for one eventually consistent Scan of them, estimated."""
    items = moto_table(table).all_items()
    total = sum(item_size(item.to_json()["Attributes"]) for item in items)
    return len(items), read_units(total, consistent=False)


# -- 1. read work of one sweep vs a Scan --------------------------------------------------


@dataclass
class SweepReads:
    timers: int
    due: int
    items_read: int
    by_read: dict[str, int]
    breakdown: str
    calls: str
    moto_capacity: float
    estimated_units: float
    seconds: float
    table_items: int = 0
    scan_units: float = 0.0
    scanned: int | None = None  # by a Scan through the API, when one was made
    condition_checks: int = 0  # the case version checked in the firings' transactions
    refused: int = 0  # transactions cancelled (a stale copy: fired again)
    stale: int = 0  # firings whose copy of the case was out of date
    cases_read: int = 0  # due timers fired from the case read afresh


def measure_reads(timers: int, due: int, fixture: Fixture, api_scan: bool,
                  stale: int = 0) -> SweepReads:
    with table_with_timers(timers, due, fixture) as (store, loaded):
        change_cases(store.table_name, loaded.due_case_ids[:stale])
        counter = ReadCounter()
        counter.install(store.client)
        report, seconds = run_sweep(store, fixture)
        check_sweep(report, due)
        reads = SweepReads(
            timers=timers, due=due, items_read=counter.items_read,
            by_read=dict(counter.items), breakdown=counter.breakdown(),
            calls=counter.call_breakdown(),
            moto_capacity=counter.moto_capacity, estimated_units=counter.estimated_units,
            seconds=seconds, condition_checks=counter.condition_checks,
            refused=counter.refused_transactions, stale=report.stale_snapshots,
            cases_read=report.cases_read,
        )
        if report.stale_snapshots != min(stale, due):
            raise RuntimeError(f"{stale} cases changed, the sweep found "
                               f"{report.stale_snapshots} stale copies")
        print(f"  sweep: {report.as_dict()} in {seconds:.2f} s")
        print(f"    items read {reads.items_read} ({reads.breakdown}); calls {reads.calls}")
        print(f"    case version checks in the firings' transactions {reads.condition_checks} "
              f"(part of the transactions, not reads); transactions refused "
              f"{reads.refused}")
        print(f"    moto ConsumedCapacity {reads.moto_capacity:g} (placeholder: 1 per "
              f"Query, 0.5 per GetItem); estimated read units {reads.estimated_units:g}")
        reads.table_items, reads.scan_units = table_contents(store.table_name)
        if api_scan:
            started = time.perf_counter()
            reads.scanned, pages = scan_through_api(store.table_name)
            print(f"  full Scan through the API: {reads.scanned:,} items read in {pages} "
                  f"page(s) ({time.perf_counter() - started:.1f} s); moto's table holds "
                  f"{reads.table_items:,} items")
            if reads.scanned != reads.table_items:
                raise RuntimeError(f"the Scan read {reads.scanned} of {reads.table_items} items")
        else:
            print(f"  a full Scan reads every item: {reads.table_items:,} (counted in moto's "
                  "table; a Scan through the API reads exactly that on the small table, but "
                  "moto sorts the whole table again for every page: pages × items, far too "
                  "slow at this size; --api-scan does it anyway)")
        print(f"  estimated read units of a full Scan {reads.scan_units:,.0f}", flush=True)
        return reads


def measure_sweep_reads(report: Report, timers: int, due: int, fixture: Fixture,
                        scan_all: bool, stale: int = 0) -> None:
    small = max(due + 1, timers // 10)
    results: list[SweepReads] = []
    for total in (small, timers):
        print(f"  -- {total:,} timers, {due} due, {stale} of their cases changed since",
              flush=True)
        results.append(measure_reads(total, due, fixture, api_scan=total < timers or scan_all,
                                     stale=stale))
    few, many = results
    ratio_due = many.items_read / due
    ratio_scan = many.items_read / many.table_items
    units_scan = many.estimated_units / many.scan_units
    print(f"\n  {'':36}{few.timers:>12,}{many.timers:>12,}  timers")
    for label, a, b in (
        ("due timers", few.due, many.due),
        ("items read by the sweep", few.items_read, many.items_read),
        ("items a full Scan reads", f"{few.table_items:,}", f"{many.table_items:,}"),
        ("sweep / Scan", f"{few.items_read / few.table_items:.5f}", f"{ratio_scan:.5f}"),
        ("sweep / due", f"{few.items_read / due:.2f}×", f"{ratio_due:.2f}×"),
        ("est. read units: sweep", f"{few.estimated_units:g}", f"{many.estimated_units:g}"),
        ("est. read units: full Scan", f"{few.scan_units:,.0f}", f"{many.scan_units:,.0f}"),
        ("stale copies: case read afresh", few.stale, many.stale),
        ("case version checks (in writes)", few.condition_checks, many.condition_checks),
        ("transactions refused", few.refused, many.refused),
        ("sweep wall time in moto (s)", f"{few.seconds:.2f}", f"{many.seconds:.2f}"),
    ):
        print(f"  {label:36}{a:>12}{b:>12}")
    index = many.by_read.get("Query due", 0)
    fetched = many.by_read.get("GetItem table", 0)
    returned = many.by_read.get("TransactWriteItems ALL_OLD", 0)
    cases = fetched + returned
    other = many.items_read - index - cases
    print(f"  the sweep's {many.items_read} items: {index} due-index entries (each with its "
          f"case's copy) + {cases} cases ({returned} returned by the {many.stale} refused "
          f"firings of stale copies, {fetched} read by GetItem) = "
          f"{(index + cases) / due:.2f} per due timer, + {other} per sweep (the staff list, "
          f"for the notices' recipients)")
    print(f"  not reads, but per firing: {many.condition_checks} ConditionChecks of the case "
          f"version in the firings' transactions (DynamoDB bills them as part of the "
          f"transaction); {many.refused} transactions refused and made again")
    report.judge(f"items read by one sweep / due ({many.timers:,} timers, {due} due)",
                 f"{many.items_read}/{due} = {ratio_due:.2f}×", f"≤ {TARGET_READ_RATIO:g}×",
                 ratio_due <= TARGET_READ_RATIO)
    report.add("items read per due timer, staff list left out",
               f"({index} + {cases}) / {due} = {(index + cases) / due:.2f}")
    report.add("stale copies (fired from the case the refused firing returned)",
               f"{many.stale} of {due} (--stale {stale})")
    report.add("items read: sweep / full Scan",
               f"{many.items_read:,} / {many.table_items:,} = {ratio_scan:.5f}")
    report.add("est. read units: sweep / full Scan",
               f"{many.estimated_units:g} / {many.scan_units:,.0f} = {units_scan:.5f}")
    report.judge(f"sweep items read, {few.timers:,} vs {many.timers:,} timers",
                 f"{few.items_read} vs {many.items_read}", "no growth",
                 many.items_read <= few.items_read)
    report.add(f"sweep wall time (moto), {few.timers:,} vs {many.timers:,} timers",
               f"{few.seconds:.2f} vs {many.seconds:.2f} s (moto walks the table per "
               "index Query)")


# -- 2. wall time, 100 vs 1,000 due --------------------------------------------------------


def measure_wall_time(report: Report, runs: int, fixture: Fixture) -> None:
    sizes = (100, 1000)
    times: dict[int, list[float]] = {n: [] for n in sizes}
    for round_no in range(runs):
        order = sizes if round_no % 2 == 0 else tuple(reversed(sizes))
        for due in order:
            # Only the due timers (and the template case, not due): a fresh table each run.
            with table_with_timers(due + 1, due, fixture, quiet=True) as (store, _):
                result, seconds = run_sweep(store, fixture)
                check_sweep(result, due)
                times[due].append(seconds)
        print(f"  round {round_no + 1}: " + ", ".join(
            f"{n} due {times[n][-1]:.2f} s" for n in sizes), flush=True)
    med = {n: statistics.median(times[n]) for n in sizes}
    ratio = med[1000] / med[100]
    print(f"  median of {runs}: 100 due {med[100]:.2f} s ({spread(times[100], '{:.2f}')}), "
          f"1,000 due {med[1000]:.2f} s ({spread(times[1000], '{:.2f}')}); ratio {ratio:.1f}×; "
          f"{med[100] / 100 * 1000:.1f} vs {med[1000] / 1000 * 1000:.1f} ms per due timer")
    report.add("sweep wall time, 100 vs 1,000 due (moto)",
               f"{med[100]:.2f} / {med[1000]:.2f} s = {ratio:.1f}× "
               f"({med[100] * 10:.1f} / {med[1000]:.1f} ms per timer)")


# -- main ------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timers", type=int, default=100_000,
                        help="open timers in the big table (default 100000); a table of a "
                        "tenth as many is measured beside it")
    parser.add_argument("--due", type=int, default=100,
                        help="of which due (default 100)")
    parser.add_argument("--runs", type=int, default=3,
                        help="wall-time runs of each of 100 and 1,000 due (default 3)")
    parser.add_argument("--api-scan", action="store_true",
                        help="Scan the big table through the API too (slow in moto)")
    parser.add_argument("--stale", type=int, default=0,
                        help="of the due timers' cases, how many changed since their timer "
                        "was written (its copy of the case out of date; default 0)")
    parser.add_argument("--skip-reads", action="store_true", help="skip figure 1")
    parser.add_argument("--skip-wall-time", action="store_true", help="skip figure 2")
    args = parser.parse_args()
    if args.due < 1 or args.timers <= args.due:
        parser.error("need 1 ≤ --due < --timers")
    if not 0 <= args.stale <= args.due:
        parser.error("need 0 ≤ --stale ≤ --due")

    started = time.perf_counter()
    report = Report()
    print(f"service desk sweep benchmark — python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs, moto in-process, no AWS")

    def guarded(title: str, step: Callable[[], None]) -> None:
        figures.guarded(report, title, step)

    patch_moto_transactions()
    try:
        check_patched_rollback()
    except Exception as error:
        report.broke("moto transaction snapshot", str(error))
        print(report.table())
        return 1
    fixture = Fixture()

    if not args.skip_reads:
        guarded(f"1. read work of one sweep ({args.due} due) vs a full Scan",
                lambda: measure_sweep_reads(report, args.timers, args.due, fixture,
                                            args.api_scan, args.stale))
    if not args.skip_wall_time:
        guarded("2. wall time of one sweep, 100 vs 1,000 due (fresh tables, moto)",
                lambda: measure_wall_time(report, args.runs, fixture))

    return figures.summary(report, time.perf_counter() - started)


if __name__ == "__main__":
    sys.exit(main())
