"""Wires the real adapters, once per Lambda container, on first use."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from chalicelib.adapters.dynamodb import DynamoCaseStore
from chalicelib.adapters.photos import S3PhotoStore
from chalicelib.adapters.report_files import S3ReportFiles
from chalicelib.adapters.ses import SesMailer
from chalicelib.adapters.units import DynamoUnitStore
from chalicelib.settings import SettingsError, get_settings, policies_from

if TYPE_CHECKING:
    from chalicelib.adapters.sheet_mirror import DynamoSheetStore
    from chalicelib.services.sheets import SheetBackend, SheetDesk


@lru_cache(maxsize=1)
def case_store() -> DynamoCaseStore:
    return DynamoCaseStore(get_settings().table_name)


@lru_cache(maxsize=1)
def unit_store() -> DynamoUnitStore:
    """The registry of sold units (same table as the cases)."""
    return DynamoUnitStore(get_settings().table_name)


@lru_cache(maxsize=1)
def mailer() -> SesMailer:
    settings = get_settings()
    return SesMailer(
        drop_dir=settings.mail_drop_dir, configuration_set=settings.ses_configuration_set
    )


@lru_cache(maxsize=1)
def photo_store() -> S3PhotoStore:
    return S3PhotoStore(get_settings().photo_bucket)


@lru_cache(maxsize=1)
def report_files() -> S3ReportFiles:
    return S3ReportFiles(get_settings().photo_bucket)


@lru_cache(maxsize=1)
def sheet_store() -> DynamoSheetStore:
    """The case store with what it keeps of the staff's sheet."""
    from chalicelib.adapters.sheet_mirror import DynamoSheetStore

    return DynamoSheetStore(get_settings().table_name)


@lru_cache(maxsize=1)
def sheets_secrets() -> tuple[dict[str, Any] | None, str | None]:
    """The Google service account's key and the webhook's HMAC secret: from the secret
    named by SERVICE_DESK_SHEETS_SECRET_ID, else from the environment (development)."""
    settings = get_settings()
    account: dict[str, Any] | None = None
    webhook: str | None = None
    if settings.google_service_account is not None:
        try:
            account = json.loads(settings.google_service_account.get_secret_value())
        except ValueError:
            raise SettingsError("bad settings: SERVICE_DESK_GOOGLE_SERVICE_ACCOUNT: "
                                "not the JSON key of a service account") from None
    if settings.sheets_webhook_secret is not None:
        webhook = settings.sheets_webhook_secret.get_secret_value()
    if settings.sheets_secret_id:
        from chalicelib.adapters.secrets import read_secret

        try:
            stored = json.loads(read_secret(settings.sheets_secret_id))
        except ValueError:
            raise SettingsError("bad settings: SERVICE_DESK_SHEETS_SECRET_ID: its value is "
                                "not JSON") from None
        if not isinstance(stored, dict):
            raise SettingsError("bad settings: SERVICE_DESK_SHEETS_SECRET_ID: its value must "
                                'be {"service_account": {...}, "webhook_secret": "..."}')
        account = stored.get("service_account") or account
        webhook = stored.get("webhook_secret") or webhook
    if account is not None and not isinstance(account, dict):
        raise SettingsError("bad settings: the service account key must be a JSON object")
    return account, webhook


@lru_cache(maxsize=2)
def sheet_backend(patient: bool = True) -> SheetBackend | None:
    """The staff's spreadsheet: Google Sheets when a service account is configured, else
    the local workbook when one is named, else none (the views are off)."""
    settings = get_settings()
    if settings.sheets_backend == "off":
        return None
    if settings.sheets_backend in ("auto", "google"):
        account, _ = sheets_secrets()
        if account is not None or settings.sheets_backend == "google":
            if account is None or not settings.sheet_id:
                raise SettingsError(
                    "bad settings: Google Sheets needs SERVICE_DESK_SHEET_ID and a service "
                    "account (SERVICE_DESK_SHEETS_SECRET_ID or "
                    "SERVICE_DESK_GOOGLE_SERVICE_ACCOUNT)")
            from chalicelib.adapters.google_sheets import GoogleSheet

            # A schedule may wait out a quota minute; the webhook answers within the
            # API's 30 s (the reconcile takes in what it could not).
            return GoogleSheet(settings.sheet_id, account, attempts=6 if patient else 3,
                               max_wait=32 if patient else 4)
    if settings.sheets_workbook is not None:
        from chalicelib.adapters.sheet_workbook import WorkbookSheet

        return WorkbookSheet(settings.sheets_workbook)
    if settings.sheets_backend == "workbook":
        raise SettingsError("bad settings: SERVICE_DESK_SHEETS_WORKBOOK: needed for the "
                            "workbook backend")
    return None


def sheet_desk(base_url: str | None = None, patient: bool = True) -> SheetDesk | None:
    """Everything a sheet sync or edit needs, or None when no sheet is configured."""
    from chalicelib.services.sheets import SheetDesk
    from chalicelib.settings import get_policies

    backend = sheet_backend(patient)
    if backend is None:
        return None
    settings = get_settings()
    base = base_url or (str(settings.public_base_url).rstrip("/")
                        if settings.public_base_url else "")
    return SheetDesk(store=sheet_store(), backend=backend, policies=get_policies(),
                     settings=settings, now=now(), base_url=base, units=unit_store())


def check_configuration() -> None:
    """Read and validate the settings and the policies file now, so that a bad value stops
    the function at start-up with a message naming it, not on a customer's request."""
    from chalicelib.settings import get_policies

    get_policies()


def now() -> datetime:
    return datetime.now(UTC)


def reset() -> None:
    """Forget settings and clients (tests change the environment between cases)."""
    get_settings.cache_clear()
    policies_from.cache_clear()
    case_store.cache_clear()
    unit_store.cache_clear()
    mailer.cache_clear()
    photo_store.cache_clear()
    report_files.cache_clear()
    sheet_store.cache_clear()
    sheets_secrets.cache_clear()
    sheet_backend.cache_clear()
