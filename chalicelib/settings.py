"""The one settings object. Read from environment variables (``.chalice/config.json``
sets them per stage; the local stack sets its own). A bad value fails at start-up."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field, HttpUrl, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from chalicelib.domain.case import Language

if TYPE_CHECKING:
    from chalicelib.domain.policies import Policies

CHALICELIB_DIR = Path(__file__).resolve().parent
DEFAULT_POLICIES_FILE = CHALICELIB_DIR / "policies" / "default.toml"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SERVICE_DESK_", frozen=True)

    table_name: str = Field(default="service-desk-local", min_length=3, max_length=255)
    public_base_url: HttpUrl | None = Field(
        default=None,
        description="Where customers reach the app, for links in e-mails. "
        "Unset: taken from the request (API Gateway domain and stage).",
    )

    @field_validator("public_base_url", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        """The stack passes an empty parameter as "": the same as not set."""
        return None if value == "" else value

    company_name: str = "After-sales Service"
    email_signature: str = "After-sales Service Centre"
    mail_from: str = "service@example.com"
    ses_configuration_set: str | None = Field(
        default=None,
        description="The SES configuration set whose bounces and complaints come back "
        "through SNS (the stack creates service-desk-<stage>).",
    )
    mail_drop_dir: Path | None = Field(
        default=None, description="Also write every e-mail sent as an .eml file here."
    )
    service_centre_email: str | None = Field(
        default=None,
        description="The service centre's shared mailbox (售服中心): gets the daily summary, "
        "reminders of cases nobody owns, and reports when no manager has an e-mail on file.",
    )
    default_language: Language = Language.ZH
    case_number_prefix: str = Field(default="AS", pattern=r"^[A-Z]{0,4}$")

    rate_limit_enabled: bool = True
    rate_limit_per_address_per_hour: int = Field(default=20, ge=1)
    rate_limit_per_email_per_hour: int = Field(default=5, ge=1)
    idempotency_ttl_hours: int = Field(default=24, ge=1, le=24 * 30)

    outbox_max_attempts: int = Field(default=8, ge=1)
    outbox_batch_size: int = Field(default=50, ge=1, le=500)

    photo_bucket: str = Field(
        default="service-desk-photos-local",
        pattern=r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$",
        description="The private S3 bucket of customer photos (cases/<case_id>/<photo_id>).",
    )
    photo_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1, le=5 * 1024**3)
    photos_per_case: int = Field(default=8, ge=1, le=100)

    # The staff's spreadsheet (see sheets/README.md). "auto": Google Sheets when a service
    # account is configured, else the local workbook when one is named, else no sheet.
    sheets_backend: Literal["auto", "google", "workbook", "off"] = "auto"
    sheet_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{10,200}$",
                                 description="The Google spreadsheet's id (from its URL).")
    google_service_account: SecretStr | None = Field(
        default=None, description="The service account's JSON key (development only: "
        "deployed stages read it from SERVICE_DESK_SHEETS_SECRET_ID).")
    sheets_secret_id: str | None = Field(
        default=None, description="Secrets Manager secret (name or ARN), or ssm:/parameter, "
        'whose value is {"service_account": {...}, "webhook_secret": "..."}.')
    sheets_webhook_secret: SecretStr | None = Field(
        default=None, description="The HMAC secret the Apps Script signs edits with "
        "(development only; deployed stages keep it in the secret).")
    sheets_workbook: Path | None = Field(
        default=None, description="The local xlsx workbook mirrored instead of Google Sheets.")
    sheets_default_editor: str | None = Field(
        default=None, description="The staff id edits are attributed to when the sheet does "
        "not say who made them (the local workbook).")
    sheets_rows_per_sync: int = Field(default=2000, ge=1, le=50_000)

    @field_validator("sheet_id", "sheets_secret_id", "sheets_default_editor",
                     "google_service_account", "sheets_webhook_secret", "sheets_workbook",
                     mode="before")
    @classmethod
    def _empty_sheet_setting_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    policies_file: Path = Field(
        default=DEFAULT_POLICIES_FILE,
        description="The company's policies (TOML, see policies/default.toml). "
        "A relative path is read from the chalicelib folder.",
    )

    @field_validator("policies_file")
    @classmethod
    def _policies_file_exists(cls, value: Path) -> Path:
        path = value if value.is_absolute() else CHALICELIB_DIR / value
        if not path.is_file():
            raise ValueError(f"no such file: {path}")
        return path


class SettingsError(ValueError):
    """A bad setting: says which environment variable and what is wrong with it."""


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as error:
        problems = "; ".join(
            f"SERVICE_DESK_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
            for e in error.errors(include_url=False)
        )
        raise SettingsError(f"bad settings: {problems}") from None


@lru_cache(maxsize=4)
def policies_from(path: Path) -> Policies:
    """The policies in that file, read once (cached by path)."""
    from chalicelib.domain.policies import load_policies  # holidays only when needed

    return load_policies(path)


def get_policies() -> Policies:
    """The policies of the file the settings name. Raises PoliciesError naming the file and
    every bad key. Follows get_settings(): after its cache is cleared a changed
    SERVICE_DESK_POLICIES_FILE is read; ``policies_from.cache_clear()`` forgets files read."""
    return policies_from(get_settings().policies_file)
