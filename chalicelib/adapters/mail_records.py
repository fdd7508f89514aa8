"""What happened to an e-mail after SES took it: the pointer from SES's MessageId to the
outbox item, and the bounces and complaints recorded on that item and the customer file.

Items (same table as dynamodb.py):
  SESMSG#<ses message id> / SESMSG    → the outbox item (target_pk / target_sk); TTL
                                         ``expires`` (SES reports within days, not months)
  <outbox item>                         state bounced / soft_bounce / complained, ``feedback``
  CUSTOMER#<id>           / CUSTOMER    ``email_undeliverable`` {at, reason, kind, case_id}

Self-contained on purpose: dynamodb.py imports this module, so this one imports nothing
from it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from chalicelib.domain.customer import customer_id_for
from chalicelib.services.bounces import FEEDBACK_RANK, Feedback, marks_customer

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from chalicelib.adapters.dynamodb import DynamoCaseStore

logger = logging.getLogger(__name__)

LOOKUP_TTL = timedelta(days=30)

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def _text_time(moment: datetime) -> str:
    """Fixed-width UTC text, as dynamodb.timestamp: text order is time order."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _lookup_key(provider_id: str) -> dict[str, Any]:
    return {"PK": {"S": f"SESMSG#{provider_id}"}, "SK": {"S": "SESMSG"}}


def sent_lookup_item(provider_id: str, pk: str, sk: str, now: datetime) -> dict[str, Any]:
    """The item (DynamoDB attribute values) that finds an outbox item from the MessageId
    SES gave its e-mail; written together with the outbox item's ``sent`` state."""
    return {
        **_lookup_key(provider_id),
        "type": {"S": "ses_message"},
        "target_pk": {"S": pk},
        "target_sk": {"S": sk},
        "sent_at": {"S": _text_time(now)},
        "expires": {"N": str(int((now + LOOKUP_TTL).timestamp()))},
    }


def _get(client: DynamoDBClient, table: str, key: dict[str, Any]) -> dict[str, Any] | None:
    response = client.get_item(TableName=table, Key=key, ConsistentRead=True)
    item = response.get("Item")
    return {k: _deserializer.deserialize(v) for k, v in item.items()} if item else None


def record_feedback(
    client: DynamoDBClient,
    table: str,
    provider_id: str,
    kind: str,
    detail: Mapping[str, Any],
    at: datetime,
) -> bool:
    """Record a bounce or complaint on the e-mail SES sent as ``provider_id`` and, for a
    permanent bounce or a complaint, on its recipient's customer file (if they have one).

    True if anything changed. False for an e-mail this table never sent (or whose pointer
    expired) and for a notification already recorded: each write is conditional, so a
    redelivery, or a retry after a failure half-way, changes nothing more.
    """
    if kind not in FEEDBACK_RANK:
        raise ValueError(f"unknown feedback kind {kind!r}")
    pointer = _get(client, table, _lookup_key(provider_id))
    if pointer is None:
        logger.info("feedback for SES message %s that is not ours (or expired)", provider_id)
        return False
    key = {"PK": {"S": pointer["target_pk"]}, "SK": {"S": pointer["target_sk"]}}
    at_text = _text_time(at)
    reason = str(detail.get("reason") or kind)
    feedback = {**detail, "kind": kind, "at": at_text}
    changed = False
    try:
        response = client.update_item(
            TableName=table,
            Key=key,
            UpdateExpression="SET #state = :state, feedback = :feedback, feedback_rank = :rank",
            # Never creates an item; never records the same or a lesser kind twice.
            ConditionExpression=(
                "attribute_exists(PK) AND "
                "(attribute_not_exists(feedback_rank) OR feedback_rank < :rank)"
            ),
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={
                ":state": {"S": kind},
                ":feedback": _serializer.serialize(feedback),
                ":rank": {"N": str(FEEDBACK_RANK[kind])},
            },
            ReturnValues="ALL_NEW",
        )
        outbox: dict[str, Any] | None = {
            k: _deserializer.deserialize(v) for k, v in response["Attributes"].items()
        }
        changed = True
    except client.exceptions.ConditionalCheckFailedException:
        outbox = _get(client, table, key)
    if outbox is None:
        logger.warning("SES message %s points at an outbox item that is gone", provider_id)
        return False
    to = outbox.get("payload", {}).get("to")
    if marks_customer(kind, detail) and isinstance(to, str) and to:
        changed = _mark_customer(
            client, table, to, at_text, reason, kind, str(outbox.get("case_id") or "")
        ) or changed
    return changed


def _mark_customer(
    client: DynamoDBClient,
    table: str,
    email: str,
    at_text: str,
    reason: str,
    kind: str,
    case_id: str,
) -> bool:
    """Put ``email_undeliverable`` on the customer file of this address, if there is one
    (a report to a manager has none), unless a mark as recent is there already."""
    mark: dict[str, str] = {"at": at_text, "reason": reason[:1000], "kind": kind}
    if case_id:
        mark["case_id"] = case_id
    try:
        client.update_item(
            TableName=table,
            Key={"PK": {"S": f"CUSTOMER#{customer_id_for(email)}"}, "SK": {"S": "CUSTOMER"}},
            UpdateExpression="SET email_undeliverable = :mark",
            ConditionExpression=(
                "attribute_exists(PK) AND (attribute_not_exists(email_undeliverable) "
                "OR email_undeliverable.#at < :at)"
            ),
            ExpressionAttributeNames={"#at": "at"},
            ExpressionAttributeValues={
                ":mark": _serializer.serialize(mark),
                ":at": {"S": at_text},
            },
        )
    except client.exceptions.ConditionalCheckFailedException:
        return False
    return True


class MailRecords:
    """The FeedbackRecorder of the bounce handler, on the case store's table."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self.client = client
        self.table_name = table_name

    @classmethod
    def of(cls, store: DynamoCaseStore) -> MailRecords:
        """On the same client and table as a DynamoCaseStore."""
        return cls(store.client, store.table_name)

    def record_feedback(self, feedback: Feedback, now: datetime) -> bool:
        return record_feedback(
            self.client,
            self.table_name,
            feedback.provider_id,
            feedback.kind,
            feedback.detail,
            feedback.at or now,
        )
