"""Sends e-mail through Amazon SES; optionally also drops each message as an .eml file
(the local stack does, so a person can open what the customer would get)."""

from __future__ import annotations

import re
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
from botocore.exceptions import ClientError

from chalicelib.services.ports import Undeliverable

if TYPE_CHECKING:
    from mypy_boto3_ses import SESClient


# SES answers these for a message that will never go through as it is; anything else
# (throttling, a service error) is worth another try.
PERMANENT_REFUSALS = frozenset(
    {
        "MessageRejected",
        "InvalidParameterValue",
        "MailFromDomainNotVerifiedException",
        "ConfigurationSetDoesNotExistException",
        "AccountSendingPausedException",
    }
)


class SesMailer:
    def __init__(
        self,
        drop_dir: Path | None = None,
        client: SESClient | None = None,
        configuration_set: str | None = None,
    ) -> None:
        self.drop_dir = drop_dir
        self._client = client
        self.configuration_set = configuration_set

    @property
    def client(self) -> SESClient:
        if self._client is None:
            self._client = boto3.client("ses")
        return self._client

    def send(self, message: EmailMessage) -> str:
        raw = message.as_bytes()
        try:
            if self.configuration_set:  # its bounces and complaints come back through SNS
                response = self.client.send_raw_email(
                    RawMessage={"Data": raw}, ConfigurationSetName=self.configuration_set
                )
            else:
                response = self.client.send_raw_email(RawMessage={"Data": raw})
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in PERMANENT_REFUSALS:
                raise Undeliverable(f"{code}: {error}") from error
            raise
        provider_id = response["MessageId"]
        if self.drop_dir is not None:
            self.drop_dir.mkdir(parents=True, exist_ok=True)
            case_id = re.sub(r"[^A-Za-z0-9_-]", "", str(message.get("X-Case-Id", "")))
            name = f"{case_id or 'mail'}-{re.sub(r'[^A-Za-z0-9_-]', '', provider_id)}.eml"
            (self.drop_dir / name).write_bytes(raw)
        return provider_id
