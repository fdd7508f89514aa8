"""The one settings object. Read from environment variables (``.chalice/config.json``
sets them per stage; the local stack sets its own). A bad value fails at start-up."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, HttpUrl
from pydantic_settings import BaseSettings, SettingsConfigDict

from chalicelib.domain.case import Language


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SERVICE_DESK_", frozen=True)

    table_name: str = Field(default="service-desk-local", min_length=3, max_length=255)
    public_base_url: HttpUrl | None = Field(
        default=None,
        description="Where customers reach the app, for links in e-mails. "
        "Unset: taken from the request (API Gateway domain and stage).",
    )
    company_name: str = "After-sales Service"
    email_signature: str = "After-sales Service Centre"
    mail_from: str = "service@example.com"
    mail_drop_dir: Path | None = Field(
        default=None, description="Also write every e-mail sent as an .eml file here."
    )
    default_language: Language = Language.ZH
    case_number_prefix: str = Field(default="AS", pattern=r"^[A-Z]{0,4}$")

    rate_limit_enabled: bool = True
    rate_limit_per_address_per_hour: int = Field(default=20, ge=1)
    rate_limit_per_email_per_hour: int = Field(default=5, ge=1)
    idempotency_ttl_hours: int = Field(default=24, ge=1, le=24 * 30)

    outbox_max_attempts: int = Field(default=8, ge=1)
    outbox_batch_size: int = Field(default=50, ge=1, le=500)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
