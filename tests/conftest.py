"""Shared test setup: every test runs against moto, never real AWS."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# Before anything creates a boto3 client: fake credentials and a fixed region.
os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_SESSION_TOKEN="testing",
    AWS_DEFAULT_REGION="eu-central-1",
    AWS_ACCOUNT_ID_ENDPOINT_MODE="disabled",
)
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.pop("AWS_PROFILE", None)

TABLE = "service-desk-test"
PHOTO_BUCKET = "service-desk-photos-test"
MAIL_FROM = "service@example.com"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """moto with the real table (from the CloudFormation template), a verified sender and
    the photo bucket.

    Yields the folder the e-mails are dropped into as .eml files.
    """
    import boto3
    from moto import mock_aws

    from chalicelib import bootstrap
    from local.table import create_table

    mail_dir = tmp_path / "mail"
    monkeypatch.setenv("SERVICE_DESK_TABLE_NAME", TABLE)
    monkeypatch.setenv("SERVICE_DESK_MAIL_FROM", MAIL_FROM)
    monkeypatch.setenv("SERVICE_DESK_PHOTO_BUCKET", PHOTO_BUCKET)
    monkeypatch.setenv("SERVICE_DESK_MAIL_DROP_DIR", str(mail_dir))
    monkeypatch.setenv("SERVICE_DESK_PUBLIC_BASE_URL", "https://help.example.com")
    with mock_aws():
        create_table(boto3.client("dynamodb"), TABLE)
        boto3.client("ses").verify_email_identity(EmailAddress=MAIL_FROM)
        boto3.client("s3").create_bucket(
            Bucket=PHOTO_BUCKET,
            CreateBucketConfiguration={"LocationConstraint": os.environ["AWS_DEFAULT_REGION"]},
        )
        bootstrap.reset()
        yield mail_dir
        bootstrap.reset()


@pytest.fixture
def client(aws: Path) -> Iterator[object]:
    """The Chalice test client on the 'local' stage (rate limits off unless a test turns
    them on with SERVICE_DESK_RATE_LIMIT_ENABLED)."""
    from chalice.test import Client

    from app import app

    with Client(app, stage_name="local") as test_client:
        yield test_client


SHEETS_SECRET = "webhook-secret-for-tests"


@pytest.fixture
def google(aws: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, str]]:
    """moto outside, the fake Google inside: gspread's calls never leave the process."""
    import json

    from chalicelib import bootstrap
    from chalicelib.adapters import google_sheets
    from tests.fakes.google_sheets import FakeGoogleSheets

    waits: list[float] = []
    monkeypatch.setattr(google_sheets, "pause", waits.append)  # retries wait no real time
    with FakeGoogleSheets() as fake:
        sheet_id = fake.create_spreadsheet("Service desk")
        monkeypatch.setenv("SERVICE_DESK_GOOGLE_SERVICE_ACCOUNT",
                           json.dumps(fake.service_account_info()))
        monkeypatch.setenv("SERVICE_DESK_SHEET_ID", sheet_id)
        monkeypatch.setenv("SERVICE_DESK_SHEETS_WEBHOOK_SECRET", SHEETS_SECRET)
        bootstrap.reset()
        yield fake, sheet_id
        bootstrap.reset()
