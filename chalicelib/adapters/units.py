"""The registry of sold units, on the service desk's one table (beside the cases).

Item layout (PK / SK):
  UNIT#<serial> / UNIT           the unit (domain/units.py) and its ``version`` (1 when
                                 registered, one more at each correction, retirement or
                                 hour-meter reading; an item without one is version 1); a
                                 write is conditional on the version it read
  UNIT#<serial> / VISIT#<date>   a planned maintenance visit whose case is not opened yet; on
                                 the sparse ``due`` index (partition VISIT, sort key
                                 ``<opening of the visit day>#<serial>#<date>``) so the hourly
                                 schedule reads only what is due; deleted once its case is open
A unit and its visits are written in one transaction: a unit is registered with every visit
planned for it, or not at all; a correction re-plans its visits and a retirement removes
them in the transaction that writes the unit; a visit taken off the schedule plans the next
one after the warranty in the same transaction.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from chalicelib.adapters.dynamodb import OnTheTable, from_item, timestamp, to_item
from chalicelib.domain.units import PlannedVisit, Unit
from chalicelib.services.ports import WriteConflict

if TYPE_CHECKING:
    pass

VISIT_DUE_PARTITION = "VISIT"
MAX_TRANSACTION_ITEMS = 100  # DynamoDB's limit for one TransactWriteItems
CONFLICT_RETRIES = 3


def _unit_pk(serial_no: str) -> str:
    return f"UNIT#{serial_no}"


def _visit_due_sk(visit: PlannedVisit) -> str:
    return f"{timestamp(visit.due_at)}#{visit.serial_no}#{visit.day.isoformat()}"


def _visit_key(serial_no: str, day: date) -> dict[str, Any]:
    return {"PK": {"S": _unit_pk(serial_no)}, "SK": {"S": f"VISIT#{day.isoformat()}"}}


def _planned_visit(due_sk: str) -> PlannedVisit:
    # A serial number has no '#' (the Unit model's pattern), so the split is safe.
    moment, serial_no, day = due_sk.split("#")
    return PlannedVisit(
        serial_no=serial_no,
        day=date.fromisoformat(day),
        due_at=datetime.strptime(moment, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC),
    )


class DynamoUnitStore(OnTheTable):
    # A unit and all its visits go in one transaction.
    max_visits_per_unit = MAX_TRANSACTION_ITEMS - 1

    # -- registering ---------------------------------------------------------------------

    def _visit_put(self, visit: PlannedVisit) -> dict[str, Any]:
        return {
            "Put": {
                "TableName": self.table_name,
                "Item": to_item(
                    {
                        "PK": _unit_pk(visit.serial_no),
                        "SK": f"VISIT#{visit.day.isoformat()}",
                        "type": "visit",
                        "serial_no": visit.serial_no,
                        "day": visit.day.isoformat(),
                        "due_pk": VISIT_DUE_PARTITION,
                        "due_sk": _visit_due_sk(visit),
                    }
                ),
            }
        }

    def _unit_item(self, unit: Unit, version: int, now: datetime) -> dict[str, Any]:
        return to_item(
            {"PK": _unit_pk(unit.serial_no), "SK": "UNIT", "type": "unit",
             "written_at": timestamp(now), "version": version,
             "unit": unit.model_dump(mode="json")}
        )

    def _unit_writes(
        self, unit: Unit, visits: Sequence[PlannedVisit], now: datetime
    ) -> list[Any]:
        writes: list[Any] = [
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": self._unit_item(unit, 1, now),
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            }
        ]
        writes += [self._visit_put(visit) for visit in visits]
        return writes

    def add_units(
        self,
        units: Sequence[Unit],
        visits_by_serial: Mapping[str, Sequence[PlannedVisit]],
        now: datetime,
    ) -> set[str]:
        """Register each unit with its planned visits, all or nothing per unit. Returns the
        serial numbers refused because they are registered already (those write nothing).

        Units are grouped into transactions of up to 100 items for speed; when DynamoDB
        refuses a group because some of its serials exist, those units are taken out and
        the rest of the group is written again, so one refused unit never blocks the others.
        """
        serials = [unit.serial_no for unit in units]
        if len(set(serials)) != len(serials):
            raise ValueError("a serial number appears twice in one call")
        groups: list[list[tuple[str, list[Any]]]] = [[]]
        size = 0
        for unit in units:
            writes = self._unit_writes(unit, visits_by_serial.get(unit.serial_no, ()), now)
            if len(writes) > MAX_TRANSACTION_ITEMS:
                raise ValueError(
                    f"{unit.serial_no}: {len(writes) - 1} visits, more than "
                    f"{self.max_visits_per_unit} cannot be written with their unit"
                )
            if size + len(writes) > MAX_TRANSACTION_ITEMS:
                groups.append([])
                size = 0
            groups[-1].append((unit.serial_no, writes))
            size += len(writes)
        refused: set[str] = set()
        for group in groups:
            refused |= self._write_group(group)
        return refused

    def _write_group(self, group: list[tuple[str, list[Any]]]) -> set[str]:
        refused: set[str] = set()
        pending = list(group)
        conflicts = 0
        while pending:
            items: list[Any] = []
            unit_at: list[int] = []
            for _, writes in pending:
                unit_at.append(len(items))
                items += writes
            try:
                self.client.transact_write_items(TransactItems=items)
                return refused
            except self.client.exceptions.TransactionCanceledException as cancelled:
                reasons = cancelled.response.get("CancellationReasons", [])
                taken = {
                    index
                    for index, at in enumerate(unit_at)
                    if at < len(reasons) and reasons[at].get("Code") == "ConditionalCheckFailed"
                }
                if taken:
                    refused |= {pending[index][0] for index in taken}
                    pending = [p for index, p in enumerate(pending) if index not in taken]
                    continue
                # Someone else writing one of these serials at this instant: try again,
                # and the condition then says who won.
                conflict = any(r.get("Code") == "TransactionConflict" for r in reasons)
                if not conflict or conflicts == CONFLICT_RETRIES:
                    raise
                conflicts += 1
                time.sleep(0.05 * conflicts)
        return refused

    def registered(self, serials: Collection[str]) -> set[str]:
        """Which of these serial numbers are registered already."""
        wanted = sorted(set(serials))
        found: set[str] = set()
        for start in range(0, len(wanted), 100):
            keys: list[Any] = [
                {"PK": {"S": _unit_pk(serial)}, "SK": {"S": "UNIT"}}
                for serial in wanted[start:start + 100]
            ]
            for attempt in range(8):
                response = self.client.batch_get_item(
                    RequestItems={
                        self.table_name: {
                            "Keys": keys, "ProjectionExpression": "PK", "ConsistentRead": True,
                        }
                    }
                )
                for item in response["Responses"].get(self.table_name, []):
                    found.add(item["PK"]["S"].removeprefix("UNIT#"))
                unprocessed = response.get("UnprocessedKeys", {}).get(self.table_name)
                if not unprocessed:
                    break
                keys = list(unprocessed["Keys"])
                time.sleep(0.05 * 2**attempt)
            else:
                raise RuntimeError("DynamoDB kept some keys unprocessed; try again")
        return found

    # -- reading -------------------------------------------------------------------------

    def get_unit(self, serial_no: str) -> Unit | None:
        found = self.unit_with_version(serial_no)
        return found[0] if found else None

    def unit_with_version(self, serial_no: str) -> tuple[Unit, int] | None:
        """The unit and its version (what a correction must name), or None."""
        response = self.client.get_item(
            TableName=self.table_name,
            Key={"PK": {"S": _unit_pk(serial_no)}, "SK": {"S": "UNIT"}},
            ConsistentRead=True,
        )
        item = response.get("Item")
        if not item:
            return None
        values = from_item(item)
        return Unit.model_validate(values["unit"]), int(values.get("version", 1))

    def pending_visits(self, serial_no: str) -> list[date]:
        """The unit's planned visits whose case is not opened yet, earliest first."""
        days: list[date] = []
        query: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "PK = :pk AND begins_with(SK, :visit)",
            "ExpressionAttributeValues": {
                ":pk": {"S": _unit_pk(serial_no)}, ":visit": {"S": "VISIT#"},
            },
            "ProjectionExpression": "SK",
            "ConsistentRead": True,
        }
        while True:
            response = self.client.query(**query)
            days += [date.fromisoformat(i["SK"]["S"].removeprefix("VISIT#"))
                     for i in response["Items"]]
            if "LastEvaluatedKey" not in response:
                return days
            query["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    # -- the planned visits schedule -----------------------------------------------------

    def due_visits(
        self, now: datetime, limit: int, after: str | None = None
    ) -> tuple[list[PlannedVisit], str | None]:
        """Visits due at or before ``now``, oldest first, from the sparse index (the read is
        the due visits only). Returns a page and where the next one starts (None: the end)."""
        due, next_page = self.due_page(VISIT_DUE_PARTITION, now, limit, after)
        return [_planned_visit(due_sk) for due_sk in due], next_page

    def visit_done(
        self, serial_no: str, day: date, next_visit: PlannedVisit | None = None
    ) -> bool:
        """The visit's case is open: the visit leaves the schedule, and ``next_visit`` (the
        next one after the warranty) joins it in the same write. False if the visit had left
        already (another run got there first): then nothing is written."""
        if next_visit is None:
            try:
                self.client.delete_item(
                    TableName=self.table_name,
                    Key=_visit_key(serial_no, day),
                    ConditionExpression="attribute_exists(PK)",
                )
            except self.client.exceptions.ConditionalCheckFailedException:
                return False
            return True
        items: list[Any] = [
            {"Delete": {"TableName": self.table_name, "Key": _visit_key(serial_no, day),
                        "ConditionExpression": "attribute_exists(PK)"}},
            self._visit_put(next_visit),
        ]
        return self._transact(items)

    # -- correcting, retiring, reading the hour meter ------------------------------------

    def replace_unit(
        self,
        unit: Unit,
        version: int,
        now: datetime,
        *,
        drop_visits: Sequence[date] = (),
        add_visits: Sequence[PlannedVisit] = (),
    ) -> bool:
        """Write the unit as corrected (or retired) over ``version``, and in the same
        transaction take ``drop_visits`` off the schedule and put ``add_visits`` on it.
        False, writing nothing, when the unit is no longer at ``version`` (changed since)
        or not registered."""
        drops = sorted(set(drop_visits))
        if 1 + len(drops) + len(add_visits) > MAX_TRANSACTION_ITEMS:
            raise ValueError(f"{unit.serial_no}: too many visits to move in one write")
        condition = "#v = :v" if version > 1 else (
            "attribute_exists(PK) AND (attribute_not_exists(#v) OR #v = :v)"
        )
        items: list[Any] = [
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": self._unit_item(unit, version + 1, now),
                    "ConditionExpression": condition,
                    "ExpressionAttributeNames": {"#v": "version"},
                    "ExpressionAttributeValues": {":v": {"N": str(version)}},
                }
            }
        ]
        items += [
            {"Delete": {"TableName": self.table_name, "Key": _visit_key(unit.serial_no, day)}}
            for day in drops
        ]
        items += [self._visit_put(visit) for visit in add_visits]
        return self._transact(items)

    def record_operating_hours(
        self, serial_no: str, hours: int, at: datetime, by: str, *, on: date | None = None
    ) -> bool:
        """Record an hour-meter reading of the unit (operating_hours, hours_read_on = ``on``,
        else ``at``'s own date — give ``at`` in the company's time zone, or ``on`` —, and
        hours_read_by = ``by``) if it is higher than the last one: the hours only ever go up,
        so a lower or equal reading is ignored. True: recorded (the unit's version goes up
        by one); False: ignored, or no such unit. One conditional update: two readings at
        once leave the higher."""
        if isinstance(hours, bool) or not 0 <= hours <= 10_000_000:
            raise ValueError(f"not an hour-meter reading: {hours!r}")
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key={"PK": {"S": _unit_pk(serial_no)}, "SK": {"S": "UNIT"}},
                UpdateExpression=(
                    "SET #u.#h = :h, #u.#d = :d, #u.#b = :b, #w = :w, "
                    "#v = if_not_exists(#v, :one) + :one"
                ),
                ConditionExpression=(
                    "attribute_exists(PK) AND (NOT attribute_type(#u.#h, :number) OR #u.#h < :h)"
                ),
                ExpressionAttributeNames={
                    "#u": "unit", "#h": "operating_hours", "#d": "hours_read_on",
                    "#b": "hours_read_by", "#w": "written_at", "#v": "version",
                },
                ExpressionAttributeValues={
                    ":h": {"N": str(hours)},
                    ":d": {"S": (on or at.date()).isoformat()},
                    ":b": {"S": by[:100]},
                    ":w": {"S": timestamp(at)},
                    ":one": {"N": "1"},
                    ":number": {"S": "N"},
                },
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def _transact(self, items: list[Any]) -> bool:
        """One transaction; False when its first item's condition failed (nothing written),
        WriteConflict when another transaction kept touching the same items."""
        for attempt in range(CONFLICT_RETRIES + 1):
            try:
                self.client.transact_write_items(TransactItems=items)
                return True
            except self.client.exceptions.TransactionCanceledException as cancelled:
                reasons = cancelled.response.get("CancellationReasons", [])
                if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":
                    return False
                if not any(r.get("Code") == "TransactionConflict" for r in reasons):
                    raise
                if attempt == CONFLICT_RETRIES:
                    raise WriteConflict(str(cancelled)) from None
                time.sleep(0.05 * (attempt + 1))
        return False  # not reached
