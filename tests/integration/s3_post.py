"""What S3 checks when a browser POSTs a form to a bucket, for tests.

moto stores whatever is POSTed to a bucket: it checks neither the signature nor the
policy's conditions (moto 5.x, ``S3Response._bucket_response_post``). So the tests run
each upload through this check first, written from the S3 documentation ("Creating a POST
policy", "Browser-based uploads using POST (AWS Signature Version 4)"), and only hand it to
moto if S3 would take it:

- the policy is signed (SigV4, the policy's base64 text is the string to sign) with the
  credential named in x-amz-credential;
- the policy has not expired;
- every condition holds: exact match ({"field": "value"} or ["eq", …]), ["starts-with", …],
  ["content-length-range", min, max] on the file's size; $bucket is the bucket posted to;
- every form field except policy, x-amz-signature, file and x-ignore-* is named by a
  condition (a field the policy does not mention is refused).
Field names are compared without regard to case, values exactly.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

NOT_CONDITIONED = {"policy", "x-amz-signature", "file"}


class Refused(Exception):
    """S3 would answer 403 (AccessDenied / "Invalid according to Policy")."""


def _sign(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def check_post(
    fields: dict[str, str], *, bucket: str, file_size: int, secret_key: str, now: datetime
) -> None:
    """Raise Refused with S3's reason if S3 would refuse this form; return if it takes it."""
    form = {name.lower(): value for name, value in fields.items()}
    policy_b64 = form.get("policy")
    if not policy_b64:
        raise Refused("no policy")
    _, date, region, service, _ = form["x-amz-credential"].split("/")
    key = _sign(f"AWS4{secret_key}".encode(), date)
    for part in (region, service, "aws4_request"):
        key = _sign(key, part)
    expected = hmac.new(key, policy_b64.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, form.get("x-amz-signature", "")):
        raise Refused("SignatureDoesNotMatch")
    policy = json.loads(base64.b64decode(policy_b64))
    expiration = datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00"))
    if now.astimezone(UTC) >= expiration:
        raise Refused("Invalid according to Policy: Policy expired.")
    values = {**form, "bucket": bucket}
    conditioned: set[str] = set()
    for condition in policy["conditions"]:
        if isinstance(condition, dict):
            ((name, wanted),) = condition.items()
            condition = ["eq", f"${name}", wanted]
        operator = condition[0].lower()
        if operator == "content-length-range":
            low, high = int(condition[1]), int(condition[2])
            if not low <= file_size <= high:
                raise Refused("EntityTooLarge" if file_size > high else "EntityTooSmall")
            continue
        name = condition[1].lstrip("$").lower()
        conditioned.add(name)
        value = values.get(name)
        if value is None:
            raise Refused(f"Invalid according to Policy: Policy Condition failed: {condition}")
        if operator == "eq" and value != condition[2]:
            raise Refused(f"Invalid according to Policy: Policy Condition failed: {condition}")
        if operator == "starts-with" and not value.startswith(condition[2]):
            raise Refused(f"Invalid according to Policy: Policy Condition failed: {condition}")
    for name in form:
        if name in NOT_CONDITIONED or name.startswith("x-ignore-"):
            continue
        if name not in conditioned:
            raise Refused(f"Invalid according to Policy: Extra input fields: {name}")


def policy_of(fields: dict[str, str]) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(base64.b64decode(fields["policy"]))
    return decoded
