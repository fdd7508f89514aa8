"""What the store keeps of the staff's sheet: one CASE#<id>/SHEET item per case.

The item holds the case's rows as last written to the sheet (the editable cells, the case
version, the note shown), ``rev`` (bumped by every writer, so two never overwrite each
other unseen), and while its rows wait to be written the dirty mark: ``due_pk`` SHEETS and
``due_sk`` <when>#<case id> on the sparse ``due`` index. Every case change sets the mark in
its own transaction (DynamoCaseStore._sheet_dirty_mark); a sync clears it, or moves it to
the moment a row will turn overdue. Cases with rows in the sheet are on gsi2 (SHEETROWS).
Each row's record keeps the editable cells shown at its last few versions and a hash of
its read-only cells as written (services/sheets.MirrorEntry). One SHEETS/STATE item keeps
what concerns the sheet as a whole: the hash of the staff list its dropdowns offer. One
SHEETS/LEASE item, while a run reads and writes the sheet: who holds it, and until when.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from contextlib import suppress
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.adapters.dynamodb import (
    DUE_INDEX,
    SHEET_DUE_PARTITION,
    TIMER_DUE_PARTITION,
    DynamoCaseStore,
    _case_from,
    from_item,
    timestamp,
    to_item,
)
from chalicelib.domain.case import OPEN_STATUSES, Case
from chalicelib.services.sheets import Mirror, MirrorEntry

logger = logging.getLogger(__name__)
MIRRORED = "SHEETROWS"
STATE_KEY = {"PK": {"S": "SHEETS"}, "SK": {"S": "STATE"}}  # the sheet as a whole
LEASE_KEY = {"PK": {"S": "SHEETS"}, "SK": {"S": "LEASE"}}  # one writer at a time
_BATCH = 100  # BatchGetItem's limit


def _key(case_id: str, sk: str) -> dict[str, Any]:
    return {"PK": {"S": f"CASE#{case_id}"}, "SK": {"S": sk}}


def _mirror_from(case_id: str, values: dict[str, Any]) -> Mirror:
    rows = values.get("rows") or {}
    return Mirror(
        case_id=case_id,
        entries={row_id: MirrorEntry.of(entry) for row_id, entry in rows.items()},
        rev=int(values.get("rev", 0)),
        marker=values.get("due_sk") if values.get("due_pk") == SHEET_DUE_PARTITION else None,
    )


class DynamoSheetStore(DynamoCaseStore):
    """The case store, and what it keeps of the staff's sheet."""

    def _batch_get(self, keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for start in range(0, len(keys), _BATCH):
            request: dict[str, Any] = {
                self.table_name: {"Keys": keys[start:start + _BATCH], "ConsistentRead": True}
            }
            while request:
                response = self.client.batch_get_item(RequestItems=request)
                found += response.get("Responses", {}).get(self.table_name, [])
                request = response.get("UnprocessedKeys") or {}
        return found

    def get_cases(self, case_ids: Iterable[str]) -> dict[str, Case]:
        keys = [_key(case_id, "CASE") for case_id in dict.fromkeys(case_ids)]
        cases = [_case_from(item) for item in self._batch_get(keys)]
        return {case.case_id: case for case in cases}

    def sheet_mirrors(self, case_ids: Iterable[str]) -> dict[str, Mirror]:
        keys = [_key(case_id, "SHEET") for case_id in dict.fromkeys(case_ids)]
        mirrors = {}
        for item in self._batch_get(keys):
            case_id = item["PK"]["S"].removeprefix("CASE#")
            mirrors[case_id] = _mirror_from(case_id, from_item(item))
        return mirrors

    def dirty_sheet_mirrors(self, now: datetime, limit: int) -> list[Mirror]:
        case_ids: list[str] = []
        after: str | None = None
        while len(case_ids) < limit:
            page, after = self.due_page(SHEET_DUE_PARTITION, now, limit - len(case_ids), after)
            case_ids += [due_sk.rsplit("#", 1)[1] for due_sk in page]
            if after is None:
                break
        mirrors = self.sheet_mirrors(case_ids)
        return [mirrors[case_id] for case_id in case_ids if case_id in mirrors]

    def _paged_keys(self, **query: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for page in self.client.get_paginator("query").paginate(
            TableName=self.table_name, **query
        ):
            items += page["Items"]
        return items

    def mirrored_case_ids(self) -> list[str]:
        items = self._paged_keys(
            IndexName="gsi2",
            KeyConditionExpression="gsi2pk = :p",
            ExpressionAttributeValues={":p": {"S": MIRRORED}},
            ProjectionExpression="PK",
        )
        return [item["PK"]["S"].removeprefix("CASE#") for item in items]

    def sheet_candidates(self) -> list[str]:
        """Every case that may have a row in a view: the open cases, and the cases with a
        promise still running (a follow-up call, an old part) — by index, never a Scan."""
        found: dict[str, None] = {}
        for status in sorted(status.value for status in OPEN_STATUSES):
            for item in self._paged_keys(
                IndexName="gsi2",
                KeyConditionExpression="gsi2pk = :p",
                ExpressionAttributeValues={":p": {"S": f"STATUS#{status}"}},
                ProjectionExpression="PK",
            ):
                found[item["PK"]["S"].removeprefix("CASE#")] = None
        for item in self._paged_keys(
            IndexName=DUE_INDEX,
            KeyConditionExpression="due_pk = :p",
            ExpressionAttributeValues={":p": {"S": TIMER_DUE_PARTITION}},
            ProjectionExpression="PK",
        ):
            found[item["PK"]["S"].removeprefix("CASE#")] = None
        for case_id in self.mirrored_case_ids():
            found[case_id] = None
        return list(found)

    def save_sheet_mirror(self, mirror: Mirror, entries: dict[str, MirrorEntry],
                          settled: bool, next_at: datetime | None) -> bool:
        names = {"#rows": "rows", "#rev": "rev"}
        values: dict[str, Any] = {
            ":rows": to_item({"r": {k: e.as_dict() for k, e in entries.items()}})["r"]
            if entries else {"M": {}},
            ":rev": {"N": str(mirror.rev + 1)},
            ":seen": {"N": str(mirror.rev)},
        }
        sets = ["#rows = :rows", "#rev = :rev"]
        removes = []
        if entries:
            sets += ["gsi2pk = :mirrored", "gsi2sk = :case"]
            values.update({":mirrored": {"S": MIRRORED}, ":case": {"S": mirror.case_id}})
        else:
            removes += ["gsi2pk", "gsi2sk"]
        condition = "(attribute_not_exists(#rev) OR #rev = :seen)"
        if settled:
            # Cleared (or moved) only if the case was not marked again since it was read.
            if mirror.marker is not None:
                values[":marker"] = {"S": mirror.marker}
                condition += " AND (attribute_not_exists(due_sk) OR due_sk = :marker)"
            else:
                condition += " AND attribute_not_exists(due_sk)"
            if next_at is not None:
                sets += ["due_pk = :due", "due_sk = :when"]
                values.update({
                    ":due": {"S": SHEET_DUE_PARTITION},
                    ":when": {"S": f"{timestamp(next_at)}#{mirror.case_id}"},
                })
            else:
                removes += ["due_pk", "due_sk"]
        expression = "SET " + ", ".join(sets)
        if removes:
            expression += " REMOVE " + ", ".join(removes)
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=_key(mirror.case_id, "SHEET"),
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except self.client.exceptions.ConditionalCheckFailedException as failed:
            old: Any = failed.response.get("Item") or {}
            if settled and int(old.get("rev", {}).get("N", "0")) == mirror.rev:
                # Marked again meanwhile: keep the rows written, and the new mark.
                return self.save_sheet_mirror(mirror, entries, False, None)
            return False
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ValidationException":
                raise
            # The record is refused (too large an item, say): this case is skipped, not
            # the whole sync; it stays marked, so its rows are written again next time.
            logger.error("sheet record of case %s not saved: %s", mirror.case_id, error)
            return False
        return True

    def mark_sheet_dirty(self, case_ids: Iterable[str], now: datetime) -> None:
        for case_id in dict.fromkeys(case_ids):
            self.client.update_item(
                TableName=self.table_name,
                Key=_key(case_id, "SHEET"),
                UpdateExpression="SET due_pk = :p, due_sk = :s",
                ExpressionAttributeValues={
                    ":p": {"S": SHEET_DUE_PARTITION},
                    ":s": {"S": f"{timestamp(now)}#{case_id}"},
                },
            )

    def sheet_state(self) -> dict[str, str]:
        item = self.client.get_item(TableName=self.table_name, Key=STATE_KEY,
                                    ConsistentRead=True).get("Item")
        values = from_item(item) if item else {}
        return {key: str(value) for key, value in (values.get("state") or {}).items()}

    def save_sheet_state(self, values: Mapping[str, str]) -> None:
        self.client.put_item(TableName=self.table_name, Item={
            **STATE_KEY, **to_item({"state": dict(values)})})

    def take_sheet_lease(self, holder: str, now: datetime, until: datetime) -> bool:
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item={**LEASE_KEY, "holder": {"S": holder},
                      "expires_at": {"N": str(int(until.timestamp()))}},
                ConditionExpression=(
                    "attribute_not_exists(PK) OR expires_at < :now OR holder = :holder"),
                ExpressionAttributeValues={":now": {"N": str(int(now.timestamp()))},
                                           ":holder": {"S": holder}},
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def release_sheet_lease(self, holder: str) -> None:
        # Not held by ``holder`` any more: it ran out and another run holds it now.
        with suppress(self.client.exceptions.ConditionalCheckFailedException):
            self.client.delete_item(
                TableName=self.table_name, Key=LEASE_KEY,
                ConditionExpression="holder = :holder",
                ExpressionAttributeValues={":holder": {"S": holder}},
            )
