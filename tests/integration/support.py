"""Small helpers shared by the integration tests (plain functions, no fixtures)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import boto3

from tests.conftest import TABLE

JSON = {"Content-Type": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
BASE_URL = "https://help.example.com"


def complaint(**overrides: Any) -> dict[str, Any]:
    """A complaint the service accepts; override any top-level field."""
    data: dict[str, Any] = {
        "kind": "wrong_item",
        "customer": {"name": "王芳", "email": "wang.fang@example.com"},
        "order_ref": "SO-2026-1042",
        "description": "收到的是蓝色，订的是红色。",
    }
    data.update(overrides)
    return data


def customer(name: str = "王芳", email: str = "wang.fang@example.com") -> dict[str, str]:
    return {"name": name, "email": email}


def post_case(client: Any, body: Any, headers: dict[str, str] | None = None) -> Any:
    """POST /api/cases; a dict or list is sent as JSON, bytes as they are."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.http.post("/api/cases", headers={**JSON, **(headers or {})}, body=raw)


def error_fields(response: Any) -> set[str]:
    return {e["field"] for e in json.loads(response.body)["errors"]}


def path_of(url: str) -> str:
    """The path and query of an absolute URL, for the test client."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def token_of(status_url: str) -> str:
    return urlsplit(status_url).path.rsplit("/", 1)[1]


def all_items(table: str = TABLE) -> list[dict[str, Any]]:
    """Every item of the table (a scan: fine in tests, never in the app)."""
    client = boto3.client("dynamodb")
    items: list[dict[str, Any]] = []
    for page in client.get_paginator("scan").paginate(TableName=table):
        items.extend(page["Items"])
    return items


def stored_cases(table: str = TABLE) -> list[dict[str, Any]]:
    return [
        item
        for item in all_items(table)
        if item["PK"]["S"].startswith("CASE#") and item["SK"]["S"] == "CASE"
    ]


def outbox_items(table: str = TABLE) -> list[dict[str, Any]]:
    return [item for item in all_items(table) if item["SK"]["S"].startswith("OUTBOX#")]
