"""Creates the service desk table from the same CloudFormation template that deploys it,
so moto in tests and in the local stack has exactly the keys and indexes production has."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TEMPLATE = Path(__file__).resolve().parent.parent / ".chalice" / "resources.json"


def table_properties() -> dict[str, Any]:
    template = json.loads(TEMPLATE.read_text())
    properties: dict[str, Any] = template["Resources"]["ServiceDeskTable"]["Properties"]
    return properties


def create_table(client: Any, table_name: str) -> None:
    """Create the table (and switch on its TTL); no-op if it already exists."""
    props = table_properties()
    existing = client.list_tables()["TableNames"]
    if table_name in existing:
        return
    client.create_table(
        TableName=table_name,
        BillingMode=props["BillingMode"],
        AttributeDefinitions=props["AttributeDefinitions"],
        KeySchema=props["KeySchema"],
        GlobalSecondaryIndexes=props["GlobalSecondaryIndexes"],
        SSESpecification={"Enabled": props["SSESpecification"]["SSEEnabled"]},
        DeletionProtectionEnabled=False,  # local and test tables are thrown away
    )
    client.get_waiter("table_exists").wait(TableName=table_name)
    ttl = props["TimeToLiveSpecification"]
    client.update_time_to_live(
        TableName=table_name,
        TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": ttl["Enabled"]},
    )
