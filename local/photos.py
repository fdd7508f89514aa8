"""The photo bucket of the local stack, kept across restarts like the table.

moto keeps nothing, so the photos are mirrored into <data-dir>/photos/: each object as a
file named by its key, and index.json with each key's Content-Type. Saving copies only
what is new and forgets what is gone; restoring puts every file back into the bucket. A
restored photo's upload time is the restart's (S3 sets LastModified itself).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def create_bucket(client: Any, bucket: str) -> None:
    """The bucket, private (as deployed); no-op if it exists. The local region is us-east-1,
    which takes no LocationConstraint."""
    existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    if bucket not in existing:
        client.create_bucket(Bucket=bucket)


class PhotoSnapshot:
    def __init__(self, client: Any, bucket: str, folder: Path) -> None:
        self.client, self.bucket, self.folder = client, bucket, folder
        self.index_path = folder / "index.json"

    def _index(self) -> dict[str, str]:
        if not self.index_path.exists():
            return {}
        index: dict[str, str] = json.loads(self.index_path.read_text())
        return index

    def _file(self, key: str) -> Path:
        path = (self.folder / key).resolve()
        if self.folder.resolve() not in path.parents:  # keys are ours, but never trust a path
            raise ValueError(f"unexpected photo key {key!r}")
        return path

    def restore(self) -> int:
        index = self._index()
        for key, content_type in index.items():
            path = self._file(key)
            if path.exists():
                self.client.put_object(
                    Bucket=self.bucket, Key=key, Body=path.read_bytes(), ContentType=content_type
                )
        return len(index)

    def save(self) -> bool:
        index = self._index()
        keys = set()
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            keys.update(item["Key"] for item in page.get("Contents", []))
        new, gone = keys - set(index), set(index) - keys
        for key in sorted(new):
            stored = self.client.get_object(Bucket=self.bucket, Key=key)
            path = self._file(key)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(stored["Body"].read())
            index[key] = stored.get("ContentType", "application/octet-stream")
        for key in gone:
            self._file(key).unlink(missing_ok=True)
            del index[key]
        if not new and not gone:
            return False
        self.folder.mkdir(parents=True, exist_ok=True)
        temporary = self.index_path.with_suffix(".tmp")
        temporary.write_text(json.dumps(index, indent=1, sort_keys=True))
        temporary.replace(self.index_path)
        return True
