"""Report workbooks in the private bucket (``reports/…``), beside the customer photos."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config


class S3ReportFiles:
    def __init__(self, bucket: str, client: Any | None = None) -> None:
        self.bucket = bucket
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:  # on first use: moto sees it, cold starts stay short
            self._client = boto3.client(
                "s3", config=Config(signature_version="s3v4",
                                    retries={"mode": "standard", "max_attempts": 4})
            )
        return self._client

    def put(self, key: str, body: bytes, content_type: str) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)

    def get(self, key: str) -> bytes:
        data: bytes = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return data

    def link(self, key: str, filename: str, expires_in_seconds: int = 600) -> str:
        """A short-lived download link that saves under ``filename``."""
        url: str = self.client.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.bucket,
                "Key": key,
                "ResponseContentDisposition": f'attachment; filename="{filename}"',
            },
            ExpiresIn=expires_in_seconds,
        )
        return url
