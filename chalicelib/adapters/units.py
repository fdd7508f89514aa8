"""The registry of sold units, on the service desk's one table (beside the cases).

Item layout (PK / SK):
  UNIT#<serial> / UNIT           the unit (domain/units.py); written once, never over another
  UNIT#<serial> / VISIT#<date>   a planned maintenance visit whose case is not opened yet; on
                                 the sparse ``due`` index (partition VISIT, sort key
                                 ``<opening of the visit day>#<serial>#<date>``) so the hourly
                                 schedule reads only what is due; deleted once its case is open
A unit and its visits are written in one transaction: a unit is registered with every visit
planned for it, or not at all.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from chalicelib.adapters.dynamodb import OnTheTable, from_item, timestamp, to_item
from chalicelib.domain.units import PlannedVisit, Unit

if TYPE_CHECKING:
    pass

VISIT_DUE_PARTITION = "VISIT"
MAX_TRANSACTION_ITEMS = 100  # DynamoDB's limit for one TransactWriteItems
CONFLICT_RETRIES = 3


def _unit_pk(serial_no: str) -> str:
    return f"UNIT#{serial_no}"


def _visit_due_sk(visit: PlannedVisit) -> str:
    return f"{timestamp(visit.due_at)}#{visit.serial_no}#{visit.day.isoformat()}"


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

    def _unit_writes(
        self, unit: Unit, visits: Sequence[PlannedVisit], now: datetime
    ) -> list[Any]:
        pk = _unit_pk(unit.serial_no)
        writes: list[Any] = [
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": to_item(
                        {"PK": pk, "SK": "UNIT", "type": "unit", "written_at": timestamp(now),
                         "unit": unit.model_dump(mode="json")}
                    ),
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            }
        ]
        for visit in visits:
            writes.append(
                {
                    "Put": {
                        "TableName": self.table_name,
                        "Item": to_item(
                            {
                                "PK": pk,
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
            )
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
        response = self.client.get_item(
            TableName=self.table_name,
            Key={"PK": {"S": _unit_pk(serial_no)}, "SK": {"S": "UNIT"}},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return Unit.model_validate(from_item(item)["unit"]) if item else None

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

    def visit_done(self, serial_no: str, day: date) -> bool:
        """The visit's case is open: the visit leaves the schedule. False if it had left
        already (another run got there first)."""
        try:
            self.client.delete_item(
                TableName=self.table_name,
                Key={"PK": {"S": _unit_pk(serial_no)}, "SK": {"S": f"VISIT#{day.isoformat()}"}},
                ConditionExpression="attribute_exists(PK)",
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True
