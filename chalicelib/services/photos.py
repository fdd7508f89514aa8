"""Photos of the product and its package, sent by the customer for their case.

The customer's browser uploads each photo straight to S3 with a presigned POST that pins
everything the app decides: the key (``cases/<case_id>/p<slot>``), the exact
Content-Type (one of ALLOWED_TYPES), the size (1 byte to ``photo_max_bytes``), the page
S3 sends the browser back to, and a 15-minute expiry. Staff and the customer see the
photos through short-lived presigned GET links.

The photos of a case are found by listing its prefix in the bucket (see
adapters/photos.py for why the bucket, not the table, is the record). A case has a fixed
number of slots and each form is for the first free one, so the cap holds however many
forms are handed out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol, get_args

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, Field

from chalicelib.domain.case import Case, CaseStatus, Language

logger = logging.getLogger(__name__)

# What browsers and phones produce; each upload form admits exactly one of them. Not
# image/svg+xml (a document that can carry scripts) nor any other image/… type.
PhotoType = Literal["image/jpeg", "image/png", "image/webp", "image/heic"]
ALLOWED_TYPES: tuple[str, ...] = get_args(PhotoType)
DEFAULT_TYPE: PhotoType = "image/jpeg"


class UploadRequest(BaseModel):
    """The body of POST /api/status/{token}/photos (all optional)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    content_type: PhotoType = Field(
        default=DEFAULT_TYPE, description="The type the upload declares (exactly this one)."
    )
    lang: Language | None = Field(
        default=None, description="Language of the status page S3 sends the browser back to."
    )
UPLOAD_EXPIRES = timedelta(minutes=15)
VIEW_EXPIRES = timedelta(minutes=10)


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    last_modified: datetime


@dataclass(frozen=True)
class PresignedPost:
    url: str
    fields: dict[str, str]


class PhotoStore(Protocol):
    """What the photo use cases need of storage (adapters/photos.py: S3)."""

    def list_objects(self, prefix: str) -> list[StoredObject]: ...

    def presigned_post(
        self, key: str, *, content_type: str, max_bytes: int, redirect_to: str,
        expires_in_seconds: int,
    ) -> PresignedPost: ...

    def presigned_get(self, key: str, *, expires_in_seconds: int) -> str: ...


class PhotosNotTaken(Exception):
    """No upload form: the case is closed, or already has all the photos it may have."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason  # "closed" or "full"


@dataclass(frozen=True)
class Photo:
    photo_id: str
    uploaded_at: datetime
    size: int
    url: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "photo_id": self.photo_id,
            "uploaded_at": self.uploaded_at.isoformat(),
            "size": self.size,
            "url": self.url,
        }


@dataclass(frozen=True)
class UploadForm:
    """A presigned POST: an HTML form (or a multipart request) with these fields, then
    the file as the last field, named ``file``."""

    photo_id: str
    url: str
    fields: dict[str, str]
    content_type: str
    max_bytes: int
    expires_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "photo_id": self.photo_id,
            "url": self.url,
            "fields": self.fields,
            "content_type": self.content_type,
            "max_bytes": self.max_bytes,
            "expires_at": self.expires_at.isoformat(),
        }


def case_prefix(case_id: str) -> str:
    return f"cases/{case_id}/"


def case_photos(store: PhotoStore, case_id: str) -> list[Photo]:
    """The photos of one case, oldest first, each with a link valid for VIEW_EXPIRES."""
    prefix = case_prefix(case_id)
    objects = sorted(store.list_objects(prefix), key=lambda o: (o.last_modified, o.key))
    expires = int(VIEW_EXPIRES.total_seconds())
    return [
        Photo(
            photo_id=stored.key[len(prefix):],
            uploaded_at=stored.last_modified,
            size=stored.size,
            url=store.presigned_get(stored.key, expires_in_seconds=expires),
        )
        for stored in objects
    ]


def photo_list(store: PhotoStore, case_id: str) -> list[dict[str, Any]] | None:
    """The photos of a case as JSON, or None if S3 cannot be read just now (the case is
    still shown: its photos are not worth a failed page)."""
    try:
        return [photo.as_dict() for photo in case_photos(store, case_id)]
    except (ClientError, BotoCoreError) as error:
        logger.warning("photos of case %s unavailable: %s", case_id, error)
        return None


def staff_photos(case_id: str) -> list[dict[str, Any]] | None:
    """For the staff's view of a case (GET /api/staff/cases/{case_id})."""
    from chalicelib import bootstrap

    return photo_list(bootstrap.photo_store(), case_id)


def photo_ids(store: PhotoStore, case_id: str) -> set[str]:
    prefix = case_prefix(case_id)
    return {stored.key[len(prefix):] for stored in store.list_objects(prefix)}


def photos_wanted(case: Case) -> bool:
    """The customer was asked for photos and the case waits for them."""
    return case.status is CaseStatus.AWAITING_PHOTOS


def upload_form(
    store: PhotoStore,
    case: Case,
    *,
    taken: set[str],
    max_photos: int,
    max_bytes: int,
    redirect_to: str,
    now: datetime,
    content_type: str = DEFAULT_TYPE,
) -> UploadForm:
    """A new upload form for one more photo of an open case.

    `taken` are the photo ids the case has (the caller has listed them already). A case has
    `max_photos` fixed slots (p1, p2, …) and a form is for the first free one, so however
    many forms are handed out, the bucket never holds more than that many photos per case
    (two forms for one slot: the later upload replaces the earlier).
    Raises PhotosNotTaken if the case is closed or full, ValueError for a type not taken.
    """
    if content_type not in ALLOWED_TYPES:
        raise ValueError(f"must be one of {', '.join(ALLOWED_TYPES)}")
    if not case.is_open:
        raise PhotosNotTaken("closed", "the case is closed: photos can no longer be added")
    free = [f"p{slot}" for slot in range(1, max_photos + 1) if f"p{slot}" not in taken]
    if not free:
        raise PhotosNotTaken(
            "full", f"the case already has {len(taken)} photos, the most it can have"
        )
    photo_id = free[0]
    post = store.presigned_post(
        case_prefix(case.case_id) + photo_id,
        content_type=content_type,
        max_bytes=max_bytes,
        redirect_to=redirect_to,
        expires_in_seconds=int(UPLOAD_EXPIRES.total_seconds()),
    )
    return UploadForm(
        photo_id=photo_id,
        url=post.url,
        fields=post.fields,
        content_type=content_type,
        max_bytes=max_bytes,
        expires_at=now + UPLOAD_EXPIRES,
    )


@dataclass(frozen=True)
class PhotoPanel:
    """The photos part of the customer's status page."""

    photos: list[Photo] | None  # None: the bucket could not be read just now
    upload: UploadForm | None  # None: closed, full, or the bucket could not be read
    wanted: bool  # staff asked for photos: the upload comes first on the page
    full: bool
    just_uploaded: bool  # back from S3 after a successful upload of one of these photos
    max_photos: int
    max_bytes: int
    types: tuple[str, ...] = ALLOWED_TYPES

    @property
    def max_megabytes(self) -> str:
        return f"{self.max_bytes / 1024 / 1024:.3g}"

    @property
    def shown(self) -> bool:
        """Whether the page has a photos part: while photos can be sent, or there are some
        (or they could not be listed)."""
        return self.upload is not None or self.full or self.photos != []


def customer_panel(
    store: PhotoStore,
    case: Case,
    *,
    max_photos: int,
    max_bytes: int,
    redirect_to: str,
    now: datetime,
    uploaded_key: str | None = None,
) -> PhotoPanel:
    """The customer's photos and, while the case is open and not full, a fresh upload form
    (no JavaScript needed: a plain HTML form posts it to S3, which sends the browser back
    to `redirect_to`). If S3 cannot be read the page still shows the case, without photos."""
    try:
        photos: list[Photo] | None = case_photos(store, case.case_id)
    except (ClientError, BotoCoreError) as error:
        logger.warning("photos of case %s unavailable: %s", case.case_id, error)
        photos = None
    upload = None
    full = False
    if photos is not None:
        try:
            upload = upload_form(
                store, case, taken={p.photo_id for p in photos}, max_photos=max_photos,
                max_bytes=max_bytes, redirect_to=redirect_to, now=now,
            )
        except PhotosNotTaken as refused:
            full = refused.reason == "full"
    prefix = case_prefix(case.case_id)
    return PhotoPanel(
        photos=photos,
        upload=upload,
        wanted=photos_wanted(case),
        full=full,
        just_uploaded=bool(uploaded_key)
        and any(prefix + photo.photo_id == uploaded_key for photo in photos or []),
        max_photos=max_photos,
        max_bytes=max_bytes,
    )
