"""The case store on one DynamoDB table.

Item layout (PK / SK):
  CASE#<id>            / CASE            the case (version-checked); gsi1 customer, gsi2 status
  CASE#<id>            / EVENT#<version> its history, append-only, one event per version
  CASE#<id>            / OUTBOX#<id>     side effects; on the sparse ``due`` index while pending
  CASE#<id>            / TIMER#<name>    a deadline of the case (timers.py); on ``due``
                                         (partition TIMER) until its last stage fired;
                                         follow-up calls also on gsi2 (CALLS, by due time)
  REPORTDAY#<date>     / CASE#<id>       the case as it stood at its last change that UTC day
  CASE#<id>            / REPORTOLDPARTS  its latest report row, once it owed an old part;
                                         gsi2 (REPORTOLDPARTS, when the last came back)
  REPORTSENT#<name>    / REPORTSENT      a daily or monthly report sent (claimed once)
  REPORT#<name>        / OUTBOX#<id>     the e-mails of a report
  CASENO#<number>      / CASENO          case number → case id (unique)
  TOKEN#<sha256>       / TOKEN           customer status token → case id (unique)
  IDEMPOTENCY#<sha256> / IDEMPOTENCY     the first receipt for an Idempotency-Key (TTL)
  RATE#<name>#<key>    / RATE            submissions in one hour window (TTL)
  COUNTER#case_number  / COUNTER         the case-number sequence
  CUSTOMER#<id>        / CUSTOMER        the customer file (gsi2: all customers by last seen);
                                         their cases are on gsi1 (CUSTOMER#<id>)
  PHONE#<digits>       / PHONE           phone number → customer id
  STAFF#<id>           / STAFF           a member of staff (gsi2: all staff)
  STAFFTOKEN#<sha256>  / STAFFTOKEN      a staff API token → who it is (only the hash is kept)
  CASE#<id>            / SHEET           the case's rows as last written to the staff's sheet
                                         (adapters/sheet_mirror.py); on ``due`` (SHEETS)
                                         while they wait to be written, on gsi2 (SHEETROWS)
Lookups by number and token are items, not index entries, so a customer who opens the
status link a moment after submitting reads it strongly consistently.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config
from pydantic import ValidationError

from chalicelib.adapters.mail_records import sent_lookup_item
from chalicelib.domain.case import Case, CaseEvent
from chalicelib.domain.customer import CustomerRecord, customer_id_for, phone_key
from chalicelib.domain.reports import (
    ReportRow,
    ever_owed_old_parts,
    last_old_part_back,
    report_row,
)
from chalicelib.domain.staff import StaffMember
from chalicelib.domain.timers import DueTimer, Timer, TimerChanges, timer_changes
from chalicelib.services.ports import (
    AlreadySubmitted,
    CaseFilter,
    IdempotencyRecord,
    NewCase,
    OutboxMessage,
    RateLimitReached,
    StaleCase,
    StaleSnapshot,
    TokenChanged,
    WriteConflict,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

DUE_INDEX = "due"
OUTBOX_DUE_PARTITION = "OUTBOX"
CASE_DUE_PARTITION = "CASEDUE"
TIMER_DUE_PARTITION = "TIMER"
CALLS_PARTITION = "CALLS"
SHEET_DUE_PARTITION = "SHEETS"  # cases whose rows in the staff's sheet wait to be written
REPORT_OLD_PARTS_PARTITION = "REPORTOLDPARTS"  # gsi2: cases that owed old parts (reports)
OUTBOX_LEASE = timedelta(minutes=5)

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def timestamp(moment: datetime) -> str:
    """Fixed-width UTC text, so text order is time order."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def to_item(values: dict[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(v) for k, v in values.items() if v is not None}


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _deserializer.deserialize(v) for k, v in item.items()}


def _case_key(case_id: str) -> dict[str, Any]:
    return {"PK": {"S": f"CASE#{case_id}"}, "SK": {"S": "CASE"}}


def _case_from(item: Mapping[str, Any]) -> Case:
    values = from_item(item)
    return Case.model_validate(
        {
            **values["case"],
            "status_token": values.get("status_token"),
            "links_base": values.get("links_base"),
        }
    )


def _timer_due_sk(case_id: str, name: str, stage: int, fire_at: datetime) -> str:
    return f"{timestamp(fire_at)}#{case_id}#{name}#{stage}"


def _due_timer(due_sk: str, snapshot: Case | None = None) -> DueTimer:
    moment, case_id, name, stage = due_sk.split("#")
    return DueTimer(
        case_id=case_id,
        name=name,
        stage=int(stage),
        fire_at=datetime.strptime(moment, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC),
        snapshot=snapshot,
    )


def _case_snapshot(case: Case) -> dict[str, Any]:
    """The case as its CASE item keeps it (``case``, ``status_token``, ``links_base``), in
    one map: what a timer carries so that the sweep need not read the case."""
    snapshot = case.model_dump(mode="json")
    if case.status_token is not None:
        snapshot["status_token"] = case.status_token
    if case.links_base is not None:
        snapshot["links_base"] = case.links_base
    return snapshot


def _snapshot_from(item: Mapping[str, Any]) -> Case | None:
    """The case a timer item (or its entry on the ``due`` index) carries; None when it has
    none (a timer written before timers carried one, or an index that does not project
    it), or one that does not hold together (the sweep then reads the case)."""
    if "case_snapshot" not in item or "case_version" not in item:
        return None
    values = from_item({k: item[k] for k in ("case_snapshot", "case_version")})
    try:
        snapshot = Case.model_validate(values["case_snapshot"])
    except ValidationError:
        return None  # a copy older than the case model: the case item itself is current
    return snapshot if snapshot.version == int(values["case_version"]) else None


def _customer_from(item: Mapping[str, Any]) -> CustomerRecord:
    values = from_item(item)
    return CustomerRecord.model_validate(
        {
            "customer_id": values["customer_id"],
            "name": values["name"],
            "email": values["email"],
            "phone": values.get("phone"),
            "language": values["language"],
            "first_seen": values["first_seen"],
            "last_seen": values["last_seen"],
            "case_count": int(values.get("case_count", 0)),
            "email_undeliverable": values.get("email_undeliverable"),
        }
    )


def _listing_keys(case: Case) -> dict[str, Any]:
    """Where a case shows up in the staff's lists: by status (gsi2), and on the sparse
    ``due`` index while it has a promise to keep (for the overdue list)."""
    due = case.next_due_at
    return {
        "gsi2pk": f"STATUS#{case.status.value}",
        "gsi2sk": timestamp(case.created_at),
        "due_pk": CASE_DUE_PARTITION if due else None,
        "due_sk": f"{timestamp(due)}#{case.case_id}" if due else None,
    }


def _outbox_from(values: dict[str, Any]) -> OutboxMessage:
    return OutboxMessage(
        message_id=values["message_id"],
        case_id=values["case_id"],
        template=values["template"],
        payload=values["payload"],
        due_at=datetime.fromisoformat(values["due_at"]),
        attempts=int(values.get("attempts", 0)),
        partition=None if values["PK"].startswith("CASE#") else values["PK"],
    )


class OnTheTable:
    """A store on the service desk's one table, with its DynamoDB client."""

    def __init__(self, table_name: str, client: DynamoDBClient | None = None) -> None:
        self.table_name = table_name
        self._client = client

    @property
    def client(self) -> DynamoDBClient:
        # Created on first use, not at import: cheaper cold starts, and moto sees it.
        if self._client is None:
            self._client = boto3.client(
                "dynamodb", config=Config(retries={"mode": "standard", "max_attempts": 4})
            )
        return self._client

    def due_items(
        self, partition: str, now: datetime, limit: int, after: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """The items of one partition of the sparse ``due`` index due at or before ``now``,
        oldest first, with what the index projects: the read is the due items only, however
        many wait for later. Returns a page and where the next page starts (None at the
        end)."""
        query: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": DUE_INDEX,
            "KeyConditionExpression": "due_pk = :p AND due_sk < :bound",
            "ExpressionAttributeValues": {
                ":p": {"S": partition},
                # '$' sorts after '#', so every item due at or before now is included.
                ":bound": {"S": f"{timestamp(now)}$"},
            },
            "Limit": limit,
        }
        if after is not None:
            pk, sk, due_sk = after.split("|")
            query["ExclusiveStartKey"] = {
                "PK": {"S": pk}, "SK": {"S": sk},
                "due_pk": {"S": partition}, "due_sk": {"S": due_sk},
            }
        response = self.client.query(**query)
        last = response.get("LastEvaluatedKey")
        next_page = (
            f"{last['PK']['S']}|{last['SK']['S']}|{last['due_sk']['S']}" if last else None
        )
        return response["Items"], next_page

    def due_page(
        self, partition: str, now: datetime, limit: int, after: str | None
    ) -> tuple[list[str], str | None]:
        """As ``due_items``, only the ``due_sk`` of each."""
        items, next_page = self.due_items(partition, now, limit, after)
        return [item["due_sk"]["S"] for item in items], next_page


class DynamoCaseStore(OnTheTable):

    # -- writing a new case ------------------------------------------------------------

    def next_case_sequence(self) -> int:
        response = self.client.update_item(
            TableName=self.table_name,
            Key={"PK": {"S": "COUNTER#case_number"}, "SK": {"S": "COUNTER"}},
            UpdateExpression="ADD n :one",
            ExpressionAttributeValues={":one": {"N": "1"}},
            ReturnValues="UPDATED_NEW",
        )
        return int(response["Attributes"]["n"]["N"])

    def create_case(self, new: NewCase, now: datetime) -> None:
        case = new.case
        case_doc = case.model_dump(mode="json")
        created = timestamp(case.created_at)
        token_hash = hashlib.sha256(new.status_token.encode()).hexdigest()
        new_only = "attribute_not_exists(PK)"
        items: list[Any] = []
        idempotency_at = -1
        if new.idempotency is not None:
            record = new.idempotency
            idempotency_at = len(items)
            items.append(
                {
                    "Put": {
                        "TableName": self.table_name,
                        "Item": to_item(
                            {
                                "PK": f"IDEMPOTENCY#{record.key_hash}",
                                "SK": "IDEMPOTENCY",
                                "fingerprint": record.fingerprint,
                                "receipt": record.receipt,
                                "expires": _epoch(record.expires_at),
                            }
                        ),
                        "ConditionExpression": "attribute_not_exists(PK) OR expires < :now",
                        "ExpressionAttributeValues": {":now": {"N": str(_epoch(now))}},
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                }
            )
        rate_limits_at = len(items)
        for counter in new.rate_limits:
            items.append(
                {
                    "Update": {
                        "TableName": self.table_name,
                        "Key": {"PK": {"S": f"RATE#{counter.key}"}, "SK": {"S": "RATE"}},
                        "UpdateExpression": "ADD n :one SET expires = :expires",
                        "ConditionExpression": "attribute_not_exists(n) OR n < :limit",
                        "ExpressionAttributeValues": {
                            ":one": {"N": "1"},
                            ":limit": {"N": str(counter.limit)},
                            ":expires": {"N": str(_epoch(counter.window_ends_at) + 3600)},
                        },
                    }
                }
            )
        items.append(
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": to_item(
                        {
                            "PK": f"CASE#{case.case_id}",
                            "SK": "CASE",
                            "type": "case",
                            "case": case_doc,
                            "version": case.version,
                            "status_token": new.status_token,
                            "links_base": new.links_base,
                            "gsi1pk": f"CUSTOMER#{customer_id_for(case.customer.email)}",
                            "gsi1sk": created,
                            **_listing_keys(case),
                        }
                    ),
                    "ConditionExpression": new_only,
                }
            }
        )
        for pk, sk in (
            (f"CASENO#{case.case_number}", "CASENO"),
            (f"TOKEN#{token_hash}", "TOKEN"),
        ):
            items.append(
                {
                    "Put": {
                        "TableName": self.table_name,
                        "Item": to_item({"PK": pk, "SK": sk, "case_id": case.case_id}),
                        "ConditionExpression": new_only,
                    }
                }
            )
        if new.customer is not None:
            items += self._customer_items(new.customer, by_staff=new.taken_by_staff,
                                          address_typed=new.address_typed)
        items.append({"Put": {"TableName": self.table_name, "Item": self._event_item(new.event)}})
        items += self._outbox_puts(new.outbox)
        items += self._follow_on_writes(None, case)
        try:
            self._transact(items)
        except self.client.exceptions.TransactionCanceledException as cancelled:
            reasons = cancelled.response.get("CancellationReasons", [])

            def failed_condition(index: int) -> bool:
                return 0 <= index < len(reasons) and (
                    reasons[index].get("Code") == "ConditionalCheckFailed"
                )

            if failed_condition(idempotency_at) and "Item" in reasons[idempotency_at]:
                old = from_item(reasons[idempotency_at]["Item"])
                raise AlreadySubmitted(
                    IdempotencyRecord(
                        key_hash=old["PK"].removeprefix("IDEMPOTENCY#"),
                        fingerprint=old["fingerprint"],
                        receipt=old["receipt"],
                        expires_at=datetime.fromtimestamp(int(old["expires"]), UTC),
                    )
                ) from None
            for offset, counter in enumerate(new.rate_limits):
                if failed_condition(rate_limits_at + offset):
                    raise RateLimitReached(counter) from None
            if any(reason.get("Code") == "TransactionConflict" for reason in reasons):
                raise WriteConflict(str(cancelled)) from None
            raise

    def _customer_items(
        self, record: CustomerRecord, by_staff: bool, address_typed: bool = True
    ) -> list[Any]:
        """Create the customer's record or bring it up to date (the latest name, phone and
        language win), and let their phone number find them."""
        seen = timestamp(record.last_seen)
        values: dict[str, Any] = {
            ":id": {"S": record.customer_id},
            ":name": {"S": record.name},
            ":email": {"S": record.email},
            ":language": {"S": record.language.value},
            ":seen": {"S": seen},
            ":all": {"S": "CUSTOMERS"},
            ":one": {"N": "1"},
        }
        # What anyone typing this e-mail on the public form says does not overwrite the
        # record; what staff took down does.
        def given(field: str, value: str) -> str:
            kept = f"if_not_exists({field}, {value})"
            return f"{field} = {value if by_staff else kept}"

        expression = (
            f"SET customer_id = :id, {given('#name', ':name')}, email = :email, "
            f"{given('#language', ':language')}, last_seen = :seen, "
            "first_seen = if_not_exists(first_seen, :seen), gsi2pk = :all, gsi2sk = :seen"
        )
        if record.phone:
            expression += f", {given('phone', ':phone')}"
            values[":phone"] = {"S": record.phone}
        items: list[Any] = [
            {
                "Update": {
                    "TableName": self.table_name,
                    "Key": {
                        "PK": {"S": f"CUSTOMER#{record.customer_id}"},
                        "SK": {"S": "CUSTOMER"},
                    },
                    # A new case whose address someone just typed clears a bounce mark:
                    # e-mails are tried again (services/outbox.py). A case the system
                    # opens from its records (a planned visit) leaves it.
                    "UpdateExpression": expression
                    + (" REMOVE email_undeliverable" if address_typed else "")
                    + " ADD case_count :one",
                    "ExpressionAttributeNames": {"#name": "name", "#language": "language"},
                    "ExpressionAttributeValues": values,
                }
            }
        ]
        key = phone_key(record.phone) if record.phone else None
        if key:
            items.append(
                {
                    "Put": {
                        "TableName": self.table_name,
                        # One item per customer who gave this number: a number typed by
                        # someone else adds a candidate, it never re-points the number.
                        "Item": to_item(
                            {
                                "PK": f"PHONE#{key}",
                                "SK": f"CUSTOMER#{record.customer_id}",
                                "customer_id": record.customer_id,
                            }
                        ),
                    }
                }
            )
        return items

    def get_customer(self, customer_id: str) -> CustomerRecord | None:
        item = self._item(f"CUSTOMER#{customer_id}", "CUSTOMER")
        return _customer_from(item) if item else None

    def find_customers(
        self, *, email: str | None = None, phone: str | None = None
    ) -> list[CustomerRecord]:
        """By e-mail (one at most), else everyone who gave that phone number."""
        if email:
            found = self.get_customer(customer_id_for(email))
            return [found] if found else []
        key = phone_key(phone) if phone else None
        if not key:
            return []
        response = self.client.query(
            TableName=self.table_name,
            KeyConditionExpression="PK = :pk",
            ExpressionAttributeValues={":pk": {"S": f"PHONE#{key}"}},
            ConsistentRead=True,
            Limit=20,
        )
        records = [self.get_customer(item["customer_id"]["S"]) for item in response["Items"]]
        return [record for record in records if record is not None]

    def list_customers(self, limit: int) -> list[CustomerRecord]:
        """Customers, the most recently seen first."""
        response = self.client.query(
            TableName=self.table_name,
            IndexName="gsi2",
            KeyConditionExpression="gsi2pk = :p",
            ExpressionAttributeValues={":p": {"S": "CUSTOMERS"}},
            ScanIndexForward=False,
            Limit=limit,
        )
        return [_customer_from(item) for item in response["Items"]]

    def customer_cases(self, customer_id: str, limit: int = 200) -> list[Case]:
        """Every case of a customer, newest first."""
        paginator = self.client.get_paginator("query")
        cases: list[Case] = []
        for page in paginator.paginate(
            TableName=self.table_name,
            IndexName="gsi1",
            KeyConditionExpression="gsi1pk = :p",
            ExpressionAttributeValues={":p": {"S": f"CUSTOMER#{customer_id}"}},
            ScanIndexForward=False,
        ):
            cases += [_case_from(item) for item in page["Items"]]
            if len(cases) >= limit:
                break
        return cases[:limit]

    @staticmethod
    def _event_item(event: CaseEvent) -> dict[str, Any]:
        return to_item(
            {
                "PK": f"CASE#{event.case_id}",
                # Keyed by the version it produced: ordered, and one event per version.
                "SK": f"EVENT#{event.version:08d}",
                "type": "event",
                "event": event.model_dump(mode="json"),
            }
        )

    def _outbox_item(self, message: OutboxMessage) -> dict[str, Any]:
        return to_item(
            {
                "PK": message.pk,
                "SK": f"OUTBOX#{message.message_id}",
                "type": "outbox",
                "message_id": message.message_id,
                "case_id": message.case_id,
                "template": message.template,
                "payload": message.payload,
                "due_at": message.due_at.isoformat(),
                "attempts": message.attempts,
                "state": "pending",
                "due_pk": OUTBOX_DUE_PARTITION,
                "due_sk": f"{timestamp(message.due_at)}#{message.message_id}",
            }
        )

    def _outbox_puts(self, outbox: list[OutboxMessage]) -> list[Any]:
        return [
            {"Put": {"TableName": self.table_name, "Item": self._outbox_item(message)}}
            for message in outbox
        ]

    def _follow_on_writes(self, previous: Case | None, case: Case) -> list[Any]:
        """What every case change also writes: its timers, its report row of the day, and
        the mark that its rows in the staff's sheet must be written again."""
        return [*self._timer_writes(case, timer_changes(previous, case)),
                *self._report_writes(case), self._sheet_dirty_mark(case)]

    def _sheet_dirty_mark(self, case: Case) -> dict[str, Any]:
        """The sheet's outbox entry: the case's CASE#/SHEET item goes on the sparse ``due``
        index (partition SHEETS) until a sync has written its rows."""
        return {
            "Update": {
                "TableName": self.table_name,
                "Key": {"PK": {"S": f"CASE#{case.case_id}"}, "SK": {"S": "SHEET"}},
                "UpdateExpression": "SET due_pk = :p, due_sk = :s",
                "ExpressionAttributeValues": {
                    ":p": {"S": SHEET_DUE_PARTITION},
                    ":s": {"S": f"{timestamp(case.updated_at)}#{case.case_id}"},
                },
            }
        }

    def _transact(self, items: list[Any]) -> None:
        # One token per attempt: botocore's own retry of a transaction that did commit
        # then succeeds instead of failing on what it just wrote, and a new attempt after
        # a conflict is a new transaction.
        self.client.transact_write_items(TransactItems=items, ClientRequestToken=uuid.uuid4().hex)

    def _transact_unless_refused(self, items: list[Any]) -> bool:
        """All of it, or nothing and False when a condition (or a racing writer) says no."""
        try:
            self._transact(items)
        except self.client.exceptions.TransactionCanceledException:
            return False
        return True

    def _case_items(self, case_id: str, prefix: str, newest_first: bool = False) -> list[Any]:
        """A case's own items of one sort (EVENT#, OUTBOX#, TIMER#), read consistently."""
        found: list[dict[str, Any]] = []
        for page in self.client.get_paginator("query").paginate(
            TableName=self.table_name,
            KeyConditionExpression="PK = :pk AND begins_with(SK, :prefix)",
            ExpressionAttributeValues={
                ":pk": {"S": f"CASE#{case_id}"},
                ":prefix": {"S": prefix},
            },
            ScanIndexForward=not newest_first,
            ConsistentRead=True,
        ):
            found += [from_item(item) for item in page["Items"]]
        return found

    # -- reading -----------------------------------------------------------------------

    def get_case(self, case_id: str) -> Case | None:
        item = self._item(f"CASE#{case_id}", "CASE")
        return _case_from(item) if item else None

    def _item(self, pk: str, sk: str) -> dict[str, Any] | None:
        """One item by its key, read strongly consistently (lookups right after a write)."""
        response = self.client.get_item(
            TableName=self.table_name,
            Key={"PK": {"S": pk}, "SK": {"S": sk}},
            ConsistentRead=True,
        )
        return response.get("Item")

    def _case_via(self, pk: str, sk: str) -> Case | None:
        item = self._item(pk, sk)
        return self.get_case(item["case_id"]["S"]) if item else None

    def find_case_by_token(self, status_token: str) -> Case | None:
        token_hash = hashlib.sha256(status_token.encode()).hexdigest()
        return self._case_via(f"TOKEN#{token_hash}", "TOKEN")

    def find_case_by_number(self, case_number: str) -> Case | None:
        return self._case_via(f"CASENO#{case_number}", "CASENO")

    def case_history(self, case_id: str) -> list[CaseEvent]:
        return [
            CaseEvent.model_validate(values["event"])
            for values in self._case_items(case_id, "EVENT#", newest_first=True)
        ]

    # -- changing a case -----------------------------------------------------------------

    def save_change(
        self,
        case: Case,
        event: CaseEvent,
        outbox: list[OutboxMessage],
        expected_version: int,
        previous: Case | None = None,
    ) -> None:
        keys = _listing_keys(case)
        present = {k: v for k, v in keys.items() if v is not None}
        absent = [k for k, v in keys.items() if v is None]
        names = {"#case": "case", "#version": "version", **{f"#{k}": k for k in keys}}
        values = {
            ":case": _serializer.serialize(case.model_dump(mode="json")),
            ":version": {"N": str(case.version)},
            ":expected": {"N": str(expected_version)},
            **{f":{k}": {"S": v} for k, v in present.items()},
        }
        expression = "SET #case = :case, #version = :version" + "".join(
            f", #{k} = :{k}" for k in present
        )
        if absent:
            expression += " REMOVE " + ", ".join(f"#{k}" for k in absent)
        items: list[Any] = [
            {
                "Update": {
                    "TableName": self.table_name,
                    "Key": _case_key(case.case_id),
                    "UpdateExpression": expression,
                    "ConditionExpression": "#version = :expected",
                    "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": values,
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": self._event_item(event),
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            },
        ]
        items += self._outbox_puts(outbox)
        items += self._follow_on_writes(previous, case)
        try:
            self._transact(items)
        except self.client.exceptions.TransactionCanceledException as cancelled:
            reasons = cancelled.response.get("CancellationReasons", [])
            first = reasons[0] if reasons else {}
            if first.get("Code") == "ConditionalCheckFailed" and "Item" in first:
                raise StaleCase(_case_from(first["Item"])) from None
            if any(reason.get("Code") == "TransactionConflict" for reason in reasons):
                raise WriteConflict(str(cancelled)) from None
            raise

    def list_cases(self, where: CaseFilter) -> list[Case]:
        """Open work for the staff's lists: one Query per status asked for, or the overdue
        cases from the sparse due index; never a Scan. Kind and owner narrow the result."""
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        filters = []
        if where.kind:
            names.update({"#case": "case", "#kind": "kind"})
            values[":kind"] = {"S": where.kind}
            filters.append("#case.#kind = :kind")
        if where.owner:
            names.update({"#case": "case", "#owner": "owner"})
            values[":owner"] = {"S": where.owner}
            filters.append("#case.#owner = :owner")
        queries: list[dict[str, Any]] = []
        if where.overdue_at is not None:
            queries.append(
                {
                    "IndexName": DUE_INDEX,
                    "KeyConditionExpression": "due_pk = :p AND due_sk < :now",
                    "ExpressionAttributeValues": {
                        ":p": {"S": CASE_DUE_PARTITION},
                        ":now": {"S": timestamp(where.overdue_at)},
                    },
                }
            )
        else:
            queries += [
                {
                    "IndexName": "gsi2",
                    "KeyConditionExpression": "gsi2pk = :p",
                    "ExpressionAttributeValues": {":p": {"S": f"STATUS#{status}"}},
                    "ScanIndexForward": False,
                }
                for status in sorted(where.statuses)
            ]
        found: list[Case] = []
        for query in queries:  # (the overdue list is re-checked below: indexes lag)
            keys_only = query["IndexName"] == DUE_INDEX
            extra: dict[str, Any] = {}
            if filters and not keys_only:
                extra = {"FilterExpression": " AND ".join(filters),
                         "ExpressionAttributeNames": names}
                query["ExpressionAttributeValues"].update(values)
            paginator = self.client.get_paginator("query")
            from_this_query = 0
            for page in paginator.paginate(TableName=self.table_name, **query, **extra):
                # Each status query is newest first: its first `limit` cases are all it
                # can add to the newest `limit` overall.
                if from_this_query >= where.limit and not keys_only:
                    break
                from_this_query += len(page["Items"])
                for item in page["Items"]:
                    if keys_only:  # the due index holds keys only: read the case itself
                        case = self.get_case(from_item(item)["PK"].removeprefix("CASE#"))
                        due = case.next_due_at if case else None
                        assert where.overdue_at is not None
                        if (
                            case is None
                            or due is None
                            or due >= where.overdue_at
                            or case.status.value not in where.statuses
                            or (where.kind and case.kind != where.kind)
                            or (where.owner and case.owner != where.owner)
                        ):
                            continue
                        found.append(case)
                    else:
                        found.append(_case_from(item))
        # Newest first across the statuses asked for (each query is newest first already).
        found.sort(key=lambda case: case.created_at, reverse=True)
        return found[: where.limit]

    def events_since(self, case_id: str, version: int) -> list[CaseEvent]:
        response = self.client.query(
            TableName=self.table_name,
            KeyConditionExpression="PK = :pk AND SK BETWEEN :after AND :last",
            ExpressionAttributeValues={
                ":pk": {"S": f"CASE#{case_id}"},
                ":after": {"S": f"EVENT#{version + 1:08d}"},
                ":last": {"S": "EVENT#99999999"},
            },
            ConsistentRead=True,
        )
        return [CaseEvent.model_validate(from_item(i)["event"]) for i in response["Items"]]

    # -- staff -------------------------------------------------------------------------

    def add_staff(self, member: StaffMember, token_hash: str, now: datetime) -> None:
        """A new member of staff and their first token, or nothing if the id is taken."""
        self.client.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": self.table_name,
                        "Item": to_item(
                            {
                                "PK": f"STAFF#{member.staff_id}",
                                "SK": "STAFF",
                                "staff": member.model_dump(mode="json"),
                                "token_hash": token_hash,
                                "gsi2pk": "STAFF",
                                "gsi2sk": member.staff_id,
                                "created_at": timestamp(now),
                            }
                        ),
                        "ConditionExpression": "attribute_not_exists(PK)",
                    }
                },
                self._token_put(member, token_hash, now),
            ]
        )

    def _token_put(self, member: StaffMember, token_hash: str, now: datetime) -> Any:
        return {
            "Put": {
                "TableName": self.table_name,
                "Item": to_item(
                    {
                        "PK": f"STAFFTOKEN#{token_hash}",
                        "SK": "STAFFTOKEN",
                        "staff": member.model_dump(mode="json"),
                        "issued_at": timestamp(now),
                    }
                ),
            }
        }

    def get_staff(self, staff_id: str) -> tuple[StaffMember, str | None] | None:
        item = self._item(f"STAFF#{staff_id}", "STAFF")
        if item is None:
            return None
        values = from_item(item)
        return StaffMember.model_validate(values["staff"]), values.get("token_hash")

    def list_staff(self) -> list[StaffMember]:
        paginator = self.client.get_paginator("query")
        members = []
        for page in paginator.paginate(
            TableName=self.table_name,
            IndexName="gsi2",
            KeyConditionExpression="gsi2pk = :p",
            ExpressionAttributeValues={":p": {"S": "STAFF"}},
        ):
            members += [StaffMember.model_validate(from_item(i)["staff"]) for i in page["Items"]]
        return members

    def replace_token(
        self, member: StaffMember, old_hash: str | None, new_hash: str | None, now: datetime
    ) -> None:
        """Issue a new token (new_hash) or revoke (None); the old one stops working."""
        items: list[Any] = [
            {
                "Update": {
                    "TableName": self.table_name,
                    "Key": {"PK": {"S": f"STAFF#{member.staff_id}"}, "SK": {"S": "STAFF"}},
                    "UpdateExpression": (
                        "SET token_hash = :new, staff = :staff" if new_hash
                        else "SET staff = :staff REMOVE token_hash"
                    ),
                    "ExpressionAttributeValues": {
                        ":staff": _serializer.serialize(member.model_dump(mode="json")),
                        **({":new": {"S": new_hash}} if new_hash else {}),
                        **({":old": {"S": old_hash}} if old_hash else {}),
                    },
                    # Only if nobody issued or revoked a token since we read it: two
                    # racing commands must not leave a token that no revoke can find.
                    "ConditionExpression": "attribute_exists(PK) AND "
                    + ("token_hash = :old" if old_hash else "attribute_not_exists(token_hash)"),
                }
            }
        ]
        if old_hash:
            items.append(
                {
                    "Delete": {
                        "TableName": self.table_name,
                        "Key": {
                            "PK": {"S": f"STAFFTOKEN#{old_hash}"},
                            "SK": {"S": "STAFFTOKEN"},
                        },
                    }
                }
            )
        if new_hash:
            items.append(self._token_put(member, new_hash, now))
        try:
            self.client.transact_write_items(TransactItems=items)
        except self.client.exceptions.TransactionCanceledException:
            raise TokenChanged(member.staff_id) from None

    def staff_by_token(self, token_hash: str) -> StaffMember | None:
        item = self._item(f"STAFFTOKEN#{token_hash}", "STAFFTOKEN")
        return StaffMember.model_validate(from_item(item)["staff"]) if item else None

    # -- the outbox --------------------------------------------------------------------

    def due_outbox(self, now: datetime, limit: int) -> list[OutboxMessage]:
        response = self.client.query(
            TableName=self.table_name,
            IndexName=DUE_INDEX,
            KeyConditionExpression="due_pk = :p AND due_sk < :bound",
            ExpressionAttributeValues={
                ":p": {"S": OUTBOX_DUE_PARTITION},
                # '$' sorts after '#', so every message due at or before now is included.
                ":bound": {"S": f"{timestamp(now)}$"},
            },
            Limit=limit,
        )
        messages = []
        for item in response["Items"]:
            keys = from_item(item)
            pk = keys["PK"]
            message_id = keys["SK"].removeprefix("OUTBOX#")
            messages.append(
                OutboxMessage(
                    message_id=message_id,
                    case_id=pk.removeprefix("CASE#") if pk.startswith("CASE#") else "",
                    template="",
                    payload={},
                    due_at=now,
                    partition=None if pk.startswith("CASE#") else pk,
                )
            )
        return messages

    def case_outbox(self, case_id: str) -> list[dict[str, Any]]:
        messages = []
        for values in self._case_items(case_id, "OUTBOX#"):
            messages.append(
                {
                    "template": values["template"],
                    "to": values["payload"].get("to"),
                    "state": values["state"],
                    "queued_at": values["due_at"],
                    "attempts": int(values.get("attempts", 0)),
                    "sent_at": values.get("sent_at"),
                    "failed_at": values.get("failed_at"),
                    "last_error": values.get("last_error"),
                    "feedback": values.get("feedback"),
                }
            )
        return sorted(messages, key=lambda message: str(message["queued_at"]))

    def _outbox_key(self, message: OutboxMessage) -> dict[str, Any]:
        return {
            "PK": {"S": message.pk},
            "SK": {"S": f"OUTBOX#{message.message_id}"},
        }

    def claim_outbox(self, message: OutboxMessage, now: datetime) -> OutboxMessage | None:
        try:
            response = self.client.update_item(
                TableName=self.table_name,
                Key=self._outbox_key(message),
                UpdateExpression="SET lease_until = :lease ADD attempts :one",
                ConditionExpression=(
                    "#state = :pending AND (attribute_not_exists(lease_until) "
                    "OR lease_until < :now)"
                ),
                ExpressionAttributeValues={
                    ":lease": {"S": timestamp(now + OUTBOX_LEASE)},
                    ":now": {"S": timestamp(now)},
                    ":pending": {"S": "pending"},
                    ":one": {"N": "1"},
                },
                ExpressionAttributeNames={"#state": "state"},
                ReturnValues="ALL_NEW",
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return None
        return _outbox_from(from_item(response["Attributes"]))

    def outbox_sent(self, message: OutboxMessage, now: datetime, receipt: str) -> None:
        """Mark it sent and, in the same transaction, let SES's later bounce or complaint
        (which names only its MessageId, ``receipt``) find it again."""
        key = self._outbox_key(message)
        self._transact(
            [
                {
                    "Update": {
                        "TableName": self.table_name,
                        "Key": key,
                        "UpdateExpression": (
                            "SET #state = :sent, sent_at = :now, provider_id = :receipt "
                            "REMOVE due_pk, due_sk, lease_until"
                        ),
                        "ExpressionAttributeNames": {"#state": "state"},
                        "ExpressionAttributeValues": {
                            ":sent": {"S": "sent"},
                            ":now": {"S": timestamp(now)},
                            ":receipt": {"S": receipt},
                        },
                    }
                },
                {
                    "Put": {
                        "TableName": self.table_name,
                        "Item": sent_lookup_item(receipt, key["PK"]["S"], key["SK"]["S"], now),
                    }
                },
            ]
        )

    def outbox_retry(
        self, message: OutboxMessage, now: datetime, error: str, retry_at: datetime | None
    ) -> None:
        if retry_at is None:
            # Given up: off the due index, kept on the case with the reason.
            self.client.update_item(
                TableName=self.table_name,
                Key=self._outbox_key(message),
                UpdateExpression=(
                    "SET #state = :failed, last_error = :error, failed_at = :now "
                    "REMOVE due_pk, due_sk, lease_until"
                ),
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={
                    ":failed": {"S": "failed"},
                    ":error": {"S": error[:1000]},
                    ":now": {"S": timestamp(now)},
                },
            )
            return
        self.client.update_item(
            TableName=self.table_name,
            Key=self._outbox_key(message),
            UpdateExpression="SET last_error = :error, due_sk = :due REMOVE lease_until",
            ExpressionAttributeValues={
                ":error": {"S": error[:1000]},
                ":due": {"S": f"{timestamp(retry_at)}#{message.message_id}"},
            },
        )

    # -- timers ------------------------------------------------------------------------

    def _timer_item(self, case: Case, timer: Timer) -> dict[str, Any]:
        values: dict[str, Any] = {
            "PK": f"CASE#{case.case_id}",
            "SK": f"TIMER#{timer.name}",
            "type": "timer",
            "name": timer.name,
            "kind": timer.kind.value,
            "due_at": timer.due_at.isoformat(),
            "stage": 0,
            "due_pk": TIMER_DUE_PARTITION,
            "due_sk": _timer_due_sk(case.case_id, timer.name, 0, timer.due_at),
            # The case as this change leaves it, projected onto the due index: the sweep
            # fires from it without reading the case (services/sweep.py).
            "case_snapshot": _case_snapshot(case),
            "case_version": case.version,
        }
        if timer.call_number is not None:
            # A follow-up call is also a task on the agents' call list from its due time.
            call = case.follow_up.pending_call if case.follow_up else None
            values.update(
                gsi2pk=CALLS_PARTITION,
                gsi2sk=f"{timestamp(timer.due_at)}#{case.case_id}",
                call={
                    "case_id": case.case_id,
                    "case_number": case.case_number,
                    "call_number": timer.call_number,
                    "attempts": call.attempts if call else 0,
                    "due_at": timer.due_at.isoformat(),
                    "window_ends_at": timer.window_ends_at.isoformat()
                    if timer.window_ends_at else None,
                    "customer": case.customer.model_dump(mode="json"),
                    "language": case.language.value,
                    "kind": case.kind.value,
                    "product": case.product,
                    "order_ref": case.order_ref,
                    "summary": case.description[:300],
                    "resolved_at": case.resolved_at.isoformat() if case.resolved_at else None,
                },
            )
        return to_item(values)

    def _timer_writes(self, case: Case, changes: TimerChanges) -> list[Any]:
        """Start (or restart) and cancel a case's timers, inside the case's transaction."""
        writes: list[Any] = [
            {"Put": {"TableName": self.table_name, "Item": self._timer_item(case, timer)}}
            for timer in changes.start
        ]
        writes += [
            {
                "Delete": {
                    "TableName": self.table_name,
                    "Key": {"PK": {"S": f"CASE#{case.case_id}"}, "SK": {"S": f"TIMER#{name}"}},
                }
            }
            for name in changes.cancel
        ]
        return writes

    def due_timers(
        self, now: datetime, limit: int, after: str | None = None
    ) -> tuple[list[DueTimer], str | None]:
        """Timers due at or before ``now``, oldest first, from the sparse index: the read
        is the due timers only, however many timers wait for later, each with the copy of
        its case the index projects (``case_snapshot``; None for a timer written without
        one). Returns a page and where the next page starts (None at the end)."""
        items, next_page = self.due_items(TIMER_DUE_PARTITION, now, limit, after)
        return [_due_timer(item["due_sk"]["S"], _snapshot_from(item)) for item in items], next_page

    def fire_timer(
        self,
        due: DueTimer,
        next_stage_at: datetime | None,
        outbox: list[OutboxMessage],
        now: datetime,
        late: bool,
    ) -> bool:
        """Record that this stage fired and queue its e-mails, in one transaction, only if
        the timer is still exactly as the sweep found it. False: another sweep fired it,
        or the case moved or cancelled it meanwhile; nothing was written.

        With ``due.snapshot`` (the e-mails were made from the timer's copy of the case),
        only if the case is still at that version too; raises StaleSnapshot when the
        timer is as found but the case is not (nothing was written)."""
        key = {"PK": {"S": f"CASE#{due.case_id}"}, "SK": {"S": f"TIMER#{due.name}"}}
        fired = {"stage": due.stage, "at": now.isoformat(), "late": late}
        values: dict[str, Any] = {
            ":seen": {"S": _timer_due_sk(due.case_id, due.name, due.stage, due.fire_at)},
            ":stage": {"N": str(due.stage + 1)},
            ":fired": {"L": [_serializer.serialize(fired)]},
            ":none": {"L": []},
        }
        expression = (
            "SET stage = :stage, fired = list_append(if_not_exists(fired, :none), :fired)"
        )
        if next_stage_at is not None:
            expression += ", due_sk = :next"
            values[":next"] = {
                "S": _timer_due_sk(due.case_id, due.name, due.stage + 1, next_stage_at)
            }
        else:
            expression += " REMOVE due_pk, due_sk"
        items: list[Any] = [
            {
                "Update": {
                    "TableName": self.table_name,
                    "Key": key,
                    "UpdateExpression": expression,
                    "ConditionExpression": "due_sk = :seen",
                    "ExpressionAttributeValues": values,
                }
            }
        ]
        if due.snapshot is not None:
            items.append(
                {
                    "ConditionCheck": {
                        "TableName": self.table_name,
                        "Key": _case_key(due.case_id),
                        "ConditionExpression": "#version = :version",
                        "ExpressionAttributeNames": {"#version": "version"},
                        "ExpressionAttributeValues": {
                            ":version": {"N": str(due.snapshot.version)}
                        },
                        # The case as it is now comes back with the refusal: no second read.
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                }
            )
        items += self._outbox_puts(outbox)
        try:
            self._transact(items)
        except self.client.exceptions.TransactionCanceledException as cancelled:
            reasons = cancelled.response.get("CancellationReasons", [])
            codes = [r.get("Code") for r in reasons]
            timer_refused = bool(codes) and codes[0] == "ConditionalCheckFailed"
            case_moved = len(codes) > 1 and codes[1] == "ConditionalCheckFailed"
            if due.snapshot is not None and case_moved and not timer_refused:
                found = reasons[1].get("Item")
                raise StaleSnapshot(f"case {due.case_id} is past version "
                                    f"{due.snapshot.version}",
                                    _case_from(found) if found else None) from None
            return False
        return True

    def case_timers(self, case_id: str) -> list[dict[str, Any]]:
        """A case's timers: what is due when, and which stages fired (for the staff)."""
        timers = []
        for values in self._case_items(case_id, "TIMER#"):
            due_sk = values.get("due_sk")
            timers.append(
                {
                    "name": values["name"],
                    "kind": values["kind"],
                    "due_at": values["due_at"],
                    "next_stage": int(values["stage"]) if due_sk else None,
                    "next_fire_at": _due_timer(due_sk).fire_at.isoformat() if due_sk else None,
                    "fired": [
                        {"stage": int(f["stage"]), "at": f["at"], "late": bool(f["late"])}
                        for f in values.get("fired", [])
                    ],
                }
            )
        return sorted(timers, key=lambda timer: str(timer["due_at"]))

    def follow_up_calls(self, now: datetime, page_size: int = 200) -> list[dict[str, Any]]:
        """Every follow-up call due now, the longest waiting first (read ``page_size``
        at a time: each item carries its case, so a page is also cut at 1 MB)."""
        calls = []
        pages = self.client.get_paginator("query").paginate(
            TableName=self.table_name,
            IndexName="gsi2",
            KeyConditionExpression="gsi2pk = :p AND gsi2sk < :bound",
            ExpressionAttributeValues={
                ":p": {"S": CALLS_PARTITION},
                ":bound": {"S": f"{timestamp(now)}$"},
            },
            PaginationConfig={"PageSize": page_size},
        )
        for page in pages:
            for item in page["Items"]:
                call = from_item(item)["call"]
                # DynamoDB numbers come back as Decimal: the call list is plain JSON.
                call.update(call_number=int(call["call_number"]),
                            attempts=int(call["attempts"]))
                calls.append(call)
        return calls

    # -- report rows ---------------------------------------------------------------------

    def _report_writes(self, case: Case) -> list[dict[str, Any]]:
        """The case's report row of the day; and, for a case that ever owed an old part,
        its latest row on gsi2 (REPORTOLDPARTS), sorted by when its last old part came
        back ('~', after every date, while one is out): a month's report reads the cases
        holding an old part at its end from there, whether they changed that month or not."""
        row = report_row(case)
        day = case.updated_at.astimezone(UTC).date().isoformat()
        values = {"type": "report_row", "row": row.model_dump(mode="json")}
        writes: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": to_item(
                        {"PK": f"REPORTDAY#{day}", "SK": f"CASE#{case.case_id}", **values}
                    ),
                }
            }
        ]
        if ever_owed_old_parts(row):
            back = last_old_part_back(row)
            writes.append(
                {
                    "Put": {
                        "TableName": self.table_name,
                        "Item": to_item(
                            {
                                "PK": f"CASE#{case.case_id}",
                                "SK": "REPORTOLDPARTS",
                                **values,
                                "gsi2pk": REPORT_OLD_PARTS_PARTITION,
                                "gsi2sk": f"{timestamp(back) if back else '~'}#{case.case_id}",
                            }
                        ),
                    }
                }
            )
        return writes

    def report_rows(self, first: datetime, last: datetime) -> list[ReportRow]:
        """Every report row of the UTC days from ``first`` to ``last`` (one Query per
        day, paged): the cases that changed in that period, as they stood each day."""
        rows: list[ReportRow] = []
        day = first.astimezone(UTC).date()
        paginator = self.client.get_paginator("query")
        while day <= last.astimezone(UTC).date():
            for page in paginator.paginate(
                TableName=self.table_name,
                KeyConditionExpression="PK = :pk",
                ExpressionAttributeValues={":pk": {"S": f"REPORTDAY#{day.isoformat()}"}},
            ):
                rows += [ReportRow.model_validate(from_item(i)["row"]) for i in page["Items"]]
            day += timedelta(days=1)
        return rows

    def old_parts_rows(self, at: datetime) -> list[ReportRow]:
        """The latest report row of every case that held an old part at ``at`` or later:
        those with one still out and those whose last came back at or after ``at`` (one
        paged Query of gsi2; cases whose old parts all came back before are not read)."""
        rows: list[ReportRow] = []
        for page in self.client.get_paginator("query").paginate(
            TableName=self.table_name,
            IndexName="gsi2",
            KeyConditionExpression="gsi2pk = :p AND gsi2sk >= :at",
            ExpressionAttributeValues={
                ":p": {"S": REPORT_OLD_PARTS_PARTITION},
                ":at": {"S": timestamp(at)},
            },
        ):
            rows += [ReportRow.model_validate(from_item(i)["row"]) for i in page["Items"]]
        return rows

    def report_sent(self, name: str) -> bool:
        return self._item(f"REPORTSENT#{name}", "REPORTSENT") is not None

    def claim_report(self, name: str, outbox: list[OutboxMessage], now: datetime) -> bool:
        """Mark a report as sent and queue its e-mails, once: False if it was already."""
        items: list[Any] = [
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": to_item(
                        {"PK": f"REPORTSENT#{name}", "SK": "REPORTSENT", "at": timestamp(now)}
                    ),
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            }
        ]
        items += self._outbox_puts(outbox)
        return self._transact_unless_refused(items)
