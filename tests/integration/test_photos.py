"""Customer photos: upload forms (presigned POST) from the status page and the photos API,
what S3 takes and refuses, the cap per case, and who sees which photos.

Uploads go to moto's S3 in-process (mock_aws also answers `requests` calls to S3). moto
does not check POST policies, so every upload first passes tests/integration/s3_post.py,
which checks the form the way S3 does (see there); an upload S3 would refuse never
reaches moto.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import requests

from chalicelib import bootstrap
from chalicelib.domain.staff import Role
from chalicelib.services import photos as photo_service
from tests.conftest import PHOTO_BUCKET
from tests.integration.s3_post import Refused, check_post, policy_of
from tests.integration.support import path_of, post_case, token_of
from tests.integration.test_staff_api import act, call, staff_token

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 2000 + b"\xff\xd9"
MB = 1024 * 1024


def open_case(client: Any, email: str = "ann@example.com") -> tuple[str, str]:
    """A new wrong-item case (English); returns its id and the customer's status token."""
    response = post_case(
        client,
        {
            "kind": "wrong_item",
            "customer": {"name": "Ann Lee", "email": email},
            "order_ref": "SO-1",
            "description": "Blue instead of red",
            "language": "en",
        },
    )
    assert response.status_code == 201, response.body
    receipt = json.loads(response.body)
    return receipt["case_id"], token_of(receipt["status_url"])


def ask_for_form(client: Any, token: str, body: Any = None) -> Any:
    kwargs: dict[str, Any] = {"headers": {"Content-Type": "application/json"}}
    if body is not None:
        kwargs["body"] = json.dumps(body)
    return client.http.post(f"/api/status/{token}/photos", **kwargs)


def new_form(client: Any, token: str, **body: Any) -> dict[str, Any]:
    response = ask_for_form(client, token, body)
    assert response.status_code == 201, response.body
    form: dict[str, Any] = json.loads(response.body)
    return form


def upload(
    url: str,
    fields: dict[str, str],
    data: bytes = JPEG,
    *,
    now: datetime | None = None,
    part_type: str = "image/jpeg",
) -> requests.Response:
    """POST the form as a browser does; raises Refused where S3 would refuse it."""
    bucket = urlsplit(url).hostname.split(".")[0]  # type: ignore[union-attr]
    credentials = boto3.Session().get_credentials()
    assert credentials is not None
    check_post(
        fields, bucket=bucket, file_size=len(data), secret_key=credentials.secret_key,
        now=now or datetime.now(UTC),
    )
    return requests.post(
        url, data=fields, files={"file": ("photo.jpg", data, part_type)},
        allow_redirects=False, timeout=10,
    )


def photo_keys() -> list[str]:
    listing = boto3.client("s3").list_objects_v2(Bucket=PHOTO_BUCKET)
    return [item["Key"] for item in listing.get("Contents", [])]


def status_json(client: Any, token: str) -> dict[str, Any]:
    response = client.http.get(f"/api/status/{token}")
    assert response.status_code == 200
    view: dict[str, Any] = json.loads(response.body)
    return view


def staff_read(client: Any, staff: str, case_id: str) -> dict[str, Any]:
    response = call(client, "get", f"/api/staff/cases/{case_id}", staff)
    assert response.status_code == 200, response.body
    read: dict[str, Any] = json.loads(response.body)
    return read


class PageForms(HTMLParser):
    """The upload form of a status page: its action and its fields in document order."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: list[tuple[str, str, str]] = []  # (type, name, value)
        self.images: list[str] = []
        self._in_form = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "form" and values.get("id") == "photo-form":
            self._in_form, self.action = True, values["action"]
        elif tag == "input" and self._in_form:
            self.fields.append((values.get("type", ""), values["name"], values.get("value", "")))
        elif tag == "img":
            self.images.append(values["src"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_form = False


def page(client: Any, path: str) -> tuple[str, PageForms]:
    response = client.http.get(path)
    assert response.status_code == 200, response.body
    html = response.body.decode()
    forms = PageForms()
    forms.feed(html)
    return html, forms


# -- the upload form -----------------------------------------------------------------


def test_a_customer_gets_an_upload_form_for_their_case(client: Any) -> None:
    case_id, token = open_case(client)

    form = new_form(client, token)

    assert form["url"].startswith(f"https://{PHOTO_BUCKET}.s3.")
    assert form["fields"]["key"] == f"cases/{case_id}/{form['photo_id']}"
    assert form["fields"]["Content-Type"] == "image/jpeg"
    assert form["max_bytes"] == 10 * MB
    policy = policy_of(form["fields"])
    conditions = policy["conditions"]
    assert {"key": f"cases/{case_id}/{form['photo_id']}"} in conditions
    assert {"Content-Type": "image/jpeg"} in conditions
    assert ["content-length-range", 1, 10 * MB] in conditions
    assert {"bucket": PHOTO_BUCKET} in conditions
    expires = datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00"))
    assert timedelta(minutes=14) < expires - datetime.now(UTC) <= timedelta(minutes=15)
    # S3 sends the browser back to the customer's own status page.
    redirect = form["fields"]["success_action_redirect"]
    assert redirect == f"https://help.example.com/status/{token}?uploaded=1&lang=en"


def test_a_request_without_a_body_gets_a_jpeg_form_in_the_case_language(client: Any) -> None:
    _, token = open_case(client)

    for response in (
        client.http.post(f"/api/status/{token}/photos"),
        ask_for_form(client, token, {"lang": None}),
    ):
        assert response.status_code == 201, response.body
        fields = json.loads(response.body)["fields"]
        assert fields["Content-Type"] == "image/jpeg"
        assert fields["success_action_redirect"].endswith("&lang=en")


@pytest.mark.parametrize("content_type", ["image/png", "image/webp", "image/heic"])
def test_the_form_admits_exactly_the_type_asked_for(client: Any, content_type: str) -> None:
    _, token = open_case(client)

    form = new_form(client, token, content_type=content_type, lang="zh")

    assert form["fields"]["Content-Type"] == content_type
    assert {"Content-Type": content_type} in policy_of(form["fields"])["conditions"]
    assert form["fields"]["success_action_redirect"].endswith("&lang=zh")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"content_type": "image/svg+xml"}, "content_type"),
        ({"content_type": "text/plain"}, "content_type"),
        ({"content_type": "image/"}, "content_type"),
        ({"lang": "fr"}, "lang"),
        ({"key": "cases/x/y"}, "key"),
        (["image/png"], "body"),
    ],
)
def test_a_form_for_anything_but_a_photo_is_refused(client: Any, body: Any, field: str) -> None:
    _, token = open_case(client)

    response = ask_for_form(client, token, body)

    assert response.status_code == 400
    assert {e["field"] for e in json.loads(response.body)["errors"]} == {field}


def test_a_wrong_token_gets_no_form(client: Any) -> None:
    open_case(client)

    response = ask_for_form(client, "x" * 32)

    assert response.status_code == 404
    assert photo_keys() == []


# -- what S3 takes and refuses ---------------------------------------------------------


def test_a_photo_within_the_limits_is_stored_and_the_browser_sent_back(client: Any) -> None:
    case_id, token = open_case(client)
    form = new_form(client, token, content_type="image/png")

    answer = upload(form["url"], form["fields"], b"\x89PNG\r\n\x1a\n" + b"\x00" * 100)

    assert answer.status_code == 303
    location = answer.headers["Location"]
    assert location.startswith(f"https://help.example.com/status/{token}?uploaded=1")
    key = f"cases/{case_id}/{form['photo_id']}"
    assert photo_keys() == [key]
    head = boto3.client("s3").head_object(Bucket=PHOTO_BUCKET, Key=key)
    assert head["ContentType"] == "image/png"
    # Back on the status page: the thank-you and the photo.
    html, forms = page(client, path_of(location))
    assert 'id="photo-received"' in html
    assert len(forms.images) == 1


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"Content-Type": "text/plain"}, "Policy Condition failed"),
        ({"Content-Type": "image/svg+xml"}, "Policy Condition failed"),
        ({"key": "cases/another-case/evil"}, "Policy Condition failed"),
        ({"key": "elsewhere.html"}, "Policy Condition failed"),
        ({"success_action_redirect": "https://evil.example/"}, "Policy Condition failed"),
        ({"acl": "public-read"}, "Extra input fields"),
        ({"x-amz-signature": "0" * 64}, "SignatureDoesNotMatch"),
    ],
)
def test_s3_refuses_a_form_changed_by_the_customer(
    client: Any, change: dict[str, str], reason: str
) -> None:
    _, token = open_case(client)
    form = new_form(client, token)

    with pytest.raises(Refused, match=reason):
        upload(form["url"], {**form["fields"], **change})
    assert photo_keys() == []


def test_s3_refuses_an_empty_file_a_too_large_one_and_a_stale_form(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SERVICE_DESK_PHOTO_MAX_BYTES", "5000")
    bootstrap.reset()
    _, token = open_case(client)
    form = new_form(client, token)

    with pytest.raises(Refused, match="EntityTooLarge"):
        upload(form["url"], form["fields"], b"\xff" * 5001)
    with pytest.raises(Refused, match="EntityTooSmall"):
        upload(form["url"], form["fields"], b"")
    with pytest.raises(Refused, match="expired"):
        upload(form["url"], form["fields"], now=datetime.now(UTC) + timedelta(minutes=16))
    assert photo_keys() == []
    assert upload(form["url"], form["fields"], b"\xff" * 5000).status_code == 303


# -- the status page -------------------------------------------------------------------


def test_the_status_page_uploads_without_javascript(client: Any) -> None:
    case_id, token = open_case(client)
    html, forms = page(client, f"/status/{token}")

    assert forms.action and forms.action.startswith(f"https://{PHOTO_BUCKET}.s3.")
    # The hidden fields first, the file last (S3 ignores anything after the file).
    assert forms.fields[-1][:2] == ("file", "file")
    fields = {name: value for kind, name, value in forms.fields if kind == "hidden"}
    assert fields["key"].startswith(f"cases/{case_id}/")
    assert 'enctype="multipart/form-data"' in html
    assert f'data-api="https://help.example.com/api/status/{token}/photos"' in html

    answer = upload(forms.action, fields)

    assert answer.status_code == 303
    assert photo_keys() == [fields["key"]]
    html, after = page(client, path_of(answer.headers["Location"]))
    assert 'id="photo-received"' in html
    assert "1 of 8 photos sent" in html
    assert after.fields and dict((n, v) for _, n, v in after.fields)["key"] != fields["key"]


def test_the_upload_comes_first_when_staff_asked_for_photos(client: Any) -> None:
    case_id, token = open_case(client)
    html, _ = page(client, f"/status/{token}")
    assert html.index('id="photos"') > html.index('id="case-status"')

    agent = staff_token(Role.AGENT)
    assert act(client, agent, case_id, "request_photos", 1).status_code == 200

    html, forms = page(client, f"/status/{token}")
    assert html.index('id="photos"') < html.index('id="case-status"')
    assert "photos of the product and of the package" in html
    assert forms.action


def test_a_closed_case_takes_no_more_photos_but_still_shows_them(client: Any) -> None:
    case_id, token = open_case(client)
    form = new_form(client, token)
    upload(form["url"], form["fields"])
    agent = staff_token(Role.AGENT)
    assert act(client, agent, case_id, "cancel", 1, {"text": "duplicate"}).status_code == 200

    response = ask_for_form(client, token)

    assert response.status_code == 422
    _, forms = page(client, f"/status/{token}")
    assert forms.action is None
    assert len(forms.images) == 1


def test_no_photos_section_on_a_closed_case_without_photos(client: Any) -> None:
    case_id, token = open_case(client)
    agent = staff_token(Role.AGENT)
    assert act(client, agent, case_id, "cancel", 1, {"text": "duplicate"}).status_code == 200

    html, _ = page(client, f"/status/{token}")

    assert 'id="photos"' not in html


# -- the cap -----------------------------------------------------------------------------


def test_a_case_takes_at_most_the_configured_number_of_photos(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SERVICE_DESK_PHOTOS_PER_CASE", "2")
    bootstrap.reset()
    _, token = open_case(client)
    for _ in range(2):
        form = new_form(client, token)
        assert upload(form["url"], form["fields"]).status_code == 303

    response = ask_for_form(client, token)

    assert response.status_code == 409
    assert json.loads(response.body)["errors"][0]["field"] == "photos"
    html, forms = page(client, f"/status/{token}")
    assert forms.action is None
    assert 'id="photos-full"' in html
    assert len(forms.images) == 2


def test_the_default_cap_is_eight(client: Any) -> None:
    _, token = open_case(client)
    for _ in range(8):
        form = new_form(client, token)
        upload(form["url"], form["fields"])

    assert ask_for_form(client, token).status_code == 409


# -- who sees which photos ------------------------------------------------------------------


def test_staff_see_the_photos_with_links_that_work(client: Any) -> None:
    case_id, token = open_case(client)
    agent = staff_token(Role.AGENT)
    assert staff_read(client, agent, case_id)["photos"] == []
    first = new_form(client, token)
    upload(first["url"], first["fields"], JPEG)
    second = new_form(client, token, content_type="image/webp")
    upload(second["url"], second["fields"], b"RIFF0000WEBPVP8 " + b"\x01" * 50)

    photos = staff_read(client, agent, case_id)["photos"]

    assert {p["photo_id"] for p in photos} == {first["photo_id"], second["photo_id"]}
    by_id = {p["photo_id"]: p for p in photos}
    assert by_id[first["photo_id"]]["size"] == len(JPEG)
    for photo in photos:
        assert datetime.fromisoformat(photo["uploaded_at"]).tzinfo is not None
        query = parse_qs(urlsplit(photo["url"]).query)
        assert query["X-Amz-Expires"] == ["600"]
    fetched = requests.get(by_id[first["photo_id"]]["url"], timeout=10)
    assert fetched.status_code == 200
    assert fetched.content == JPEG
    assert fetched.headers["Content-Type"] == "image/jpeg"


def test_the_staff_photo_list_needs_a_staff_token(client: Any) -> None:
    case_id, token = open_case(client)

    response = call(client, "get", f"/api/staff/cases/{case_id}", token)

    assert response.status_code == 401


def test_a_customer_never_sees_another_cases_photos(client: Any) -> None:
    case_a, token_a = open_case(client, "ann@example.com")
    case_b, token_b = open_case(client, "bob@example.com")
    form = new_form(client, token_a)
    upload(form["url"], form["fields"])

    assert status_json(client, token_b)["photos"] == []
    assert [p["photo_id"] for p in status_json(client, token_a)["photos"]] == [
        form["photo_id"]
    ]
    html, forms = page(client, f"/status/{token_b}")
    assert f"cases/{case_a}/" not in html
    assert forms.images == []
    # B's form can only ever write under B's prefix.
    fields = {name: value for _, name, value in forms.fields}
    assert fields["key"].startswith(f"cases/{case_b}/")
    # Coming back from S3 with A's key in the address does not show A's photo to B.
    html, _ = page(client, f"/status/{token_b}?uploaded=1&key=cases/{case_a}/{form['photo_id']}")
    assert 'id="photo-received"' not in html
    assert case_a not in html


def test_the_case_is_shown_when_the_photos_cannot_be_read(client: Any) -> None:
    case_id, token = open_case(client)
    boto3.client("s3").delete_bucket(Bucket=PHOTO_BUCKET)

    html, forms = page(client, f"/status/{token}")

    assert 'id="photos-unavailable"' in html
    assert forms.action is None
    assert status_json(client, token)["photos"] is None
    assert staff_read(client, staff_token(Role.AGENT), case_id)["photos"] is None
    assert ask_for_form(client, token).status_code == 503


# -- the published description ---------------------------------------------------------------


def test_the_documented_types_are_the_ones_taken(client: Any) -> None:
    document = json.loads(client.http.get("/api/openapi.json").body)
    schema = document["components"]["schemas"]["UploadRequest"]

    assert tuple(schema["properties"]["content_type"]["enum"]) == photo_service.ALLOWED_TYPES


# -- the local stack's copy of the bucket ------------------------------------------------------


def test_the_local_stack_keeps_photos_across_a_restart(client: Any, tmp_path: Any) -> None:
    from local.photos import PhotoSnapshot

    _, token = open_case(client)
    form = new_form(client, token, content_type="image/png")
    upload(form["url"], form["fields"], b"\x89PNG" + b"\x00" * 10)
    s3 = boto3.client("s3")
    snapshot = PhotoSnapshot(s3, PHOTO_BUCKET, tmp_path / "photos")
    assert snapshot.save() is True
    assert snapshot.save() is False  # nothing new
    key = form["fields"]["key"]
    s3.delete_object(Bucket=PHOTO_BUCKET, Key=key)  # moto forgets everything on restart

    assert snapshot.restore() == 1

    stored = s3.get_object(Bucket=PHOTO_BUCKET, Key=key)
    assert stored["ContentType"] == "image/png"
    assert stored["Body"].read() == b"\x89PNG" + b"\x00" * 10


def test_however_many_forms_are_fetched_a_case_never_holds_more_than_its_photos(
    client: Any,
) -> None:
    case_id, token = open_case(client)
    forms = [new_form(client, token) for _ in range(12)]  # nothing uploaded yet: one slot

    for form in forms:
        upload(form["url"], form["fields"])

    assert {form["photo_id"] for form in forms} == {"p1"}
    assert [p["photo_id"] for p in status_json(client, token)["photos"]] == ["p1"]
    listed = boto3.client("s3").list_objects_v2(Bucket=PHOTO_BUCKET, Prefix=f"cases/{case_id}/")
    assert listed["KeyCount"] == 1
