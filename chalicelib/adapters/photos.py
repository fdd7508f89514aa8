"""Customer photos in one private S3 bucket.

Layout: ``cases/<case_id>/<photo_id>``, one object per photo; the photo id is a random
UUID the app picks, never a file name the customer chose. The browser uploads straight to
S3 with a presigned POST (the bytes never pass through Lambda or API Gateway) and shows
photos through presigned GET links; the bucket itself stays private.

The bucket is the record of what was uploaded: nothing about a photo is kept in DynamoDB,
so a photo that is there is listed and counted, and an upload form that was handed out but
never used leaves no trace.
"""

from __future__ import annotations

from datetime import UTC
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from chalicelib.services.photos import PresignedPost, StoredObject

if TYPE_CHECKING:
    from collections.abc import Mapping

# More than a case can ever have (the cap is a setting of at most 100): one call lists all.
LIST_LIMIT = 1000


class S3PhotoStore:
    def __init__(self, bucket: str, client: Any | None = None) -> None:
        self.bucket = bucket
        self._client = client

    @property
    def client(self) -> Any:
        # Created on first use, not at import: cheaper cold starts, and moto sees it.
        # Virtual-host addressing gives the regional name (bucket.s3.<region>.amazonaws.com),
        # which answers a POST at once even for a new bucket outside us-east-1; botocore
        # still uses path style for an endpoint given as an address (moto on 127.0.0.1).
        if self._client is None:
            self._client = boto3.client(
                "s3",
                config=Config(
                    signature_version="s3v4",
                    s3={"addressing_style": "virtual"},
                    retries={"mode": "standard", "max_attempts": 4},
                ),
            )
        return self._client

    def list_objects(self, prefix: str) -> list[StoredObject]:
        """The objects under a prefix (one call: at most LIST_LIMIT, far above any cap)."""
        response: Mapping[str, Any] = self.client.list_objects_v2(
            Bucket=self.bucket, Prefix=prefix, MaxKeys=LIST_LIMIT
        )
        return [
            StoredObject(
                key=item["Key"],
                size=int(item["Size"]),
                last_modified=item["LastModified"].astimezone(UTC),
            )
            for item in response.get("Contents", [])
        ]

    def presigned_post(
        self,
        key: str,
        *,
        content_type: str,
        max_bytes: int,
        redirect_to: str,
        expires_in_seconds: int,
    ) -> PresignedPost:
        """A form that lets its holder store one object at exactly `key`, of exactly this
        Content-Type, between 1 byte and `max_bytes`, until it expires; after a
        successful upload S3 sends the browser to `redirect_to` (303)."""
        fields = {"Content-Type": content_type, "success_action_redirect": redirect_to}
        conditions: list[Any] = [
            {"Content-Type": content_type},
            ["content-length-range", 1, max_bytes],
            {"success_action_redirect": redirect_to},
        ]
        # boto3 adds {"bucket": …}, {"key": key} (exact) and the signature's own fields.
        post = self.client.generate_presigned_post(
            Bucket=self.bucket,
            Key=key,
            Fields=fields,
            Conditions=conditions,
            ExpiresIn=expires_in_seconds,
        )
        return PresignedPost(url=str(post["url"]), fields=dict(post["fields"]))

    def presigned_get(self, key: str, *, expires_in_seconds: int) -> str:
        url: str = self.client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": key},
            ExpiresIn=expires_in_seconds,
        )
        return url
