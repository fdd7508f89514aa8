"""Wires the real adapters, once per Lambda container, on first use."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache

from chalicelib.adapters.dynamodb import DynamoCaseStore
from chalicelib.adapters.photos import S3PhotoStore
from chalicelib.adapters.report_files import S3ReportFiles
from chalicelib.adapters.ses import SesMailer
from chalicelib.adapters.units import DynamoUnitStore
from chalicelib.settings import get_settings, policies_from


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
