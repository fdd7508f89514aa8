"""Small helpers shared by the integration tests (plain functions, no fixtures)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo

import boto3
import pytest

from chalicelib import bootstrap
from chalicelib.domain.staff import Role
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


# -- field service (三包, 派工): the partners, the people and the desk that works with them --

FIELD_POLICIES = """
[field_service.dealers.east]
name = "East Forklift Service"
email = "service@east-dealer.example"
regions = ["Shanghai", "Jiangsu"]

[field_service.dealers.north]
name = "North Lift Partners"
email = "desk@north-dealer.example"
regions = ["Beijing"]

[field_service.suppliers.hydraulics]
name = "Hydraulics Ltd"
email = "aftersales@hydraulics.example"
"""
EAST, NORTH = "service@east-dealer.example", "desk@north-dealer.example"
HYDRAULICS = "aftersales@hydraulics.example"
CUSTOMER = "maintenance@harbour-logistics.example.com"
SHANGHAI = ZoneInfo("Asia/Shanghai")

# Who works the field service, besides the agent Ann (test_timers' OWNER: she owns the cases
# and registers the units), supervisor Sue and director Dan of test_timers' desk.
DESK_OWNER = "ann"
TOM, QIAN, VERA, SAM, RITA, LEO = "tom", "qian", "vera", "sam", "rita", "leo"
FIELD_STAFF = {
    TOM: (Role.TECHNICIAN, "tom@desk.example.com"),
    QIAN: (Role.QA_MANAGER, "qian@desk.example.com"),
    VERA: (Role.SERVICE_VP, "vera@desk.example.com"),
    SAM: (Role.SUPPLY_VP, "sam@desk.example.com"),
    RITA: (Role.RND, "rita@desk.example.com"),
    LEO: (Role.LOGISTICS, "leo@desk.example.com"),
}
FIELD_MAIL = {staff_id: email for staff_id, (_, email) in FIELD_STAFF.items()}

# What staff and partners read (the company's language, Chinese by default).
DISPATCHED = "派工给"
PARTS_TO_APPROVE = "待审批"
PARTS_SALE = "转为备件销售"
ABNORMAL = "售服异常问题反馈单"
MAJOR = "重大质量问题"


def use_field_policies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The company's policies with the dealers and the supplier above."""
    policies = tmp_path / "company.toml"
    policies.write_text(FIELD_POLICIES, encoding="utf-8")
    monkeypatch.setenv("SERVICE_DESK_POLICIES_FILE", str(policies))
    bootstrap.reset()


class FieldDeskMixin:
    """Field-service steps for test_timers' ``Desk`` (mixed in before it:
    ``class FieldDesk(FieldDeskMixin, Desk)``): the field staff, a unit registry, repair
    reports, the case's field-service record and timers, the customer's signature."""

    client: Any
    tokens: dict[str, str]

    def __init__(self, client: Any, mail_dir: Path) -> None:
        super().__init__(client, mail_dir)
        for staff_id, (role, email) in FIELD_STAFF.items():
            self.add_staff(staff_id, role, email)

    def register_unit(self, when: datetime, **unit: Any) -> None:
        data = {
            "model": "CPD30 forklift", "product_line": "forklift",
            "customer_name": "Harbour Logistics", "customer_email": CUSTOMER,
            "customer_phone": "021 5555 1234", "address": "Pudong, Shanghai",
            "sold_on": "2025-09-01", "accepted_on": "2025-09-10",
            "warranty_months": 12, "warranty_hours": 1500, **unit,
        }
        headers = {**JSON, "Authorization": f"Bearer {self.tokens[DESK_OWNER]}"}
        with self.moment(when):
            response = self.client.http.post(
                "/api/staff/units", headers=headers, body=json.dumps(data)
            )
        assert response.status_code == 201, response.body

    def report_repair(self, when: datetime, serial_no: str) -> Any:
        return self.report(
            when, kind="repair_request", serial_no=serial_no, product="CPD30 forklift",
            customer={"name": "Li Wei", "email": CUSTOMER, "phone": "021 5555 1234"},
            description="The mast does not lift with a load.", language="en",
        )

    def case(self, case: Any) -> dict[str, Any]:
        read: dict[str, Any] = self.read(case)["case"]
        return read

    def record(self, case: Any) -> dict[str, Any]:
        record: dict[str, Any] = self.case(case)["field_service"]
        return record

    def timers(self, case: Any) -> dict[str, datetime]:
        return {
            t["name"]: datetime.fromisoformat(t["due_at"])
            for t in self.read(case)["timers"]
        }

    def refused(
        self, case: Any, when: datetime, action: str, params: dict[str, Any] | None = None,
        staff_id: str = DESK_OWNER,
    ) -> tuple[int, str]:
        """An action that must change nothing: its status code and message."""
        version = self.case(case)["version"]
        response = self.act(case, when, action, params, staff_id)
        assert response.status_code != 200, (action, response.body)
        assert self.case(case)["version"] == version
        errors = json.loads(response.body)["errors"]
        return response.status_code, " | ".join(f"{e['field']}: {e['message']}" for e in errors)

    def sign(self, case: Any, when: datetime, what: str, name: str) -> None:
        """The customer opens the link from the e-mail and signs with their name."""
        path = path_of(case.status_url) + "/sign"
        with self.moment(when):
            page = self.client.http.get(path)
            assert page.status_code == 200, page.body
            response = self.client.http.post(
                path, headers=FORM, body=urlencode({"what": what, "name": name}).encode()
            )
        assert response.status_code == 303, response.body

    def mails_to(self, address: str, case: Any, subject_part: str) -> list[Any]:
        self.drain()
        return [
            m for m in self.inbox()
            if m.to == address and m.case_id == case.case_id and subject_part in m.subject
        ]


def local(moment: datetime) -> str:
    """A time as staff and partners read it in their e-mails."""
    return f"{moment.astimezone(SHANGHAI):%Y-%m-%d %H:%M} (Asia/Shanghai)"


def customer_mail(desk: Any, case: Any, subject_part: str) -> Any:
    [mail] = desk.mails_to(CUSTOMER, case, subject_part)
    return mail
