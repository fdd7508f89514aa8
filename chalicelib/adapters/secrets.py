"""Secrets kept outside the repository: AWS Secrets Manager, or an SSM SecureString."""

from __future__ import annotations

import boto3


class SecretUnreadable(Exception):
    """The secret named in the settings could not be read; says which and why."""


def read_secret(secret_id: str) -> str:
    """The value of a Secrets Manager secret (name or ARN), or of an SSM parameter when the
    id is ``ssm:/path`` (decrypted). Clients are created on use, never at import."""
    try:
        if secret_id.startswith("ssm:"):
            name = secret_id.removeprefix("ssm:")
            answer = boto3.client("ssm").get_parameter(Name=name, WithDecryption=True)
            return str(answer["Parameter"]["Value"])
        value = boto3.client("secretsmanager").get_secret_value(SecretId=secret_id)
        return str(value["SecretString"])
    except Exception as error:  # botocore's many errors: missing, denied, throttled
        raise SecretUnreadable(f"cannot read the secret {secret_id!r}: {error}") from error
