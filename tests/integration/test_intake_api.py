"""Reporting a problem: the JSON API and the HTML form, through the Chalice test client."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import boto3
import pytest
import time_machine
from botocore.exceptions import ClientError

from chalicelib import bootstrap
from chalicelib.domain.case import FORM_KINDS, Channel, Complaint, Language
from chalicelib.services.intake import Receipt, submit_complaint
from chalicelib.settings import get_settings
from chalicelib.web.pages import UI
from tests.integration.support import (
    BASE_URL,
    FORM,
    all_items,
    complaint,
    customer,
    error_fields,
    path_of,
    post_case,
    stored_cases,
)

DEV_TABLE = "service-desk-dev"


# -- a valid report --------------------------------------------------------------------


def test_a_valid_report_opens_a_new_case_with_a_private_status_link(client: Any) -> None:
    response = post_case(client, complaint())

    assert response.status_code == 201
    receipt = json.loads(response.body)
    assert set(receipt) == {"case_id", "case_number", "status", "status_url"}
    assert receipt["status"] == "new"
    assert re.fullmatch(r"AS\d{6}", receipt["case_number"])
    assert receipt["status_url"].startswith(f"{BASE_URL}/status/")
    assert response.headers["Location"] == receipt["status_url"]
    assert len(stored_cases()) == 1


def test_json_with_a_charset_is_accepted(client: Any) -> None:
    response = post_case(client, complaint(), {"Content-Type": "application/json; charset=utf-8"})

    assert response.status_code == 201


def test_consecutive_reports_get_unique_increasing_case_numbers(client: Any) -> None:
    numbers = []
    for n in range(6):
        response = post_case(client, complaint(description=f"report {n}"))
        assert response.status_code == 201
        numbers.append(json.loads(response.body)["case_number"])

    assert len(set(numbers)) == len(numbers)
    assert numbers == sorted(numbers)
    assert [int(n[2:]) for n in numbers] == sorted(int(n[2:]) for n in numbers)


def test_each_report_gets_its_own_status_link(client: Any) -> None:
    first = json.loads(post_case(client, complaint()).body)
    second = json.loads(post_case(client, complaint()).body)

    assert first["status_url"] != second["status_url"]
    assert first["case_id"] != second["case_id"]


# -- retries with an Idempotency-Key -----------------------------------------------------


def test_a_retried_report_with_the_same_key_opens_only_one_case(client: Any) -> None:
    key = {"Idempotency-Key": "retry-7f3c"}

    first = post_case(client, complaint(), key)
    again = post_case(client, complaint(), key)

    assert first.status_code == again.status_code == 201
    assert json.loads(again.body) == json.loads(first.body)
    assert len(stored_cases()) == 1


def test_different_keys_open_different_cases(client: Any) -> None:
    first = post_case(client, complaint(), {"Idempotency-Key": "key-a"})
    second = post_case(client, complaint(), {"Idempotency-Key": "key-b"})

    assert json.loads(first.body)["case_id"] != json.loads(second.body)["case_id"]
    assert len(stored_cases()) == 2


def test_reusing_a_key_for_a_different_report_is_refused(client: Any) -> None:
    key = {"Idempotency-Key": "retry-7f3c"}
    post_case(client, complaint(), key)

    response = post_case(client, complaint(description="something else"), key)

    assert response.status_code == 422
    assert error_fields(response) == {"Idempotency-Key"}
    assert len(stored_cases()) == 1


@pytest.mark.parametrize("key", ["x" * 256, "tab\there", "ключ"])
def test_an_unusable_idempotency_key_is_refused(client: Any, key: str) -> None:
    response = post_case(client, complaint(), {"Idempotency-Key": key})

    assert response.status_code == 400
    assert error_fields(response) == {"Idempotency-Key"}
    assert stored_cases() == []


@pytest.fixture
def atomic_moto(monkeypatch: pytest.MonkeyPatch) -> None:
    """DynamoDB runs each write (and each transaction) atomically; moto does not lock its
    in-memory tables, so threads could interleave inside one. Give moto that guarantee."""
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()
    for name in ("transact_write_items", "update_item", "put_item", "get_item"):
        original = getattr(DynamoDBBackend, name)

        def locked(*args: Any, __original: Any = original, **kwargs: Any) -> Any:
            with lock:
                return __original(*args, **kwargs)

        monkeypatch.setattr(DynamoDBBackend, name, locked)


def test_simultaneous_retries_with_one_key_all_get_the_same_case(
    aws: Path, atomic_moto: None
) -> None:
    store = bootstrap.case_store()
    settings = get_settings()
    assert store.client is not None  # create the boto3 client before the threads race
    report = Complaint.model_validate(complaint())
    threads = 8
    start = threading.Barrier(threads)
    receipts: list[Receipt | None] = []
    errors: list[BaseException] = []

    def submit() -> None:
        start.wait()
        try:
            receipts.append(
                submit_complaint(
                    store,
                    settings,
                    report,
                    now=datetime.now(UTC),
                    base_url=BASE_URL,
                    channel=Channel.API,
                    idempotency_key="double-click-42",
                )
            )
        except BaseException as error:  # collected and re-raised in the test thread
            errors.append(error)

    workers = [threading.Thread(target=submit) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)

    assert errors == []
    assert len(receipts) == threads
    assert len({r.case_id for r in receipts if r is not None}) == 1
    assert None not in receipts
    assert len(stored_cases()) == 1


# -- bad input --------------------------------------------------------------------------


def test_every_bad_field_is_named_at_once(client: Any) -> None:
    body = {
        "kind": "broken_toaster",
        "customer": {"email": "not-an-email"},
        "description": "",
    }

    response = post_case(client, body)

    assert response.status_code == 400
    assert error_fields(response) == {"kind", "customer.name", "customer.email", "description"}
    assert all(e["message"] for e in json.loads(response.body)["errors"])
    assert all_items() == []


def test_an_order_problem_without_order_number_is_refused_on_order_ref(client: Any) -> None:
    body = complaint()
    del body["order_ref"]

    response = post_case(client, body)

    assert response.status_code == 400
    assert error_fields(response) == {"order_ref"}
    assert all_items() == []


def test_an_unknown_field_is_refused(client: Any) -> None:
    response = post_case(client, complaint(priority="urgent"))

    assert response.status_code == 400
    assert error_fields(response) == {"priority"}


def test_a_purchase_date_in_the_future_is_refused(client: Any) -> None:
    with time_machine.travel(datetime(2026, 3, 2, 12, 0, tzinfo=UTC), tick=False):
        refused = post_case(client, complaint(purchase_date="2026-03-03"))
        accepted = post_case(client, complaint(purchase_date="2026-03-02"))

    assert refused.status_code == 400
    assert error_fields(refused) == {"purchase_date"}
    assert accepted.status_code == 201


@pytest.mark.parametrize("body", [[complaint()], 42, None, "a complaint", True])
def test_json_that_is_not_an_object_is_refused_on_body(client: Any, body: Any) -> None:
    response = post_case(client, json.dumps(body).encode())

    assert response.status_code == 400
    assert error_fields(response) == {"body"}
    assert all_items() == []


@pytest.mark.parametrize(
    "raw", [b"{", b"", b"{'kind': 'enquiry'}", b'{"a": 1} trailing', b"[" * 10_000]
)
def test_invalid_json_is_refused(client: Any, raw: bytes) -> None:
    response = post_case(client, raw)

    assert response.status_code == 400
    assert error_fields(response) == {"body"}
    assert all_items() == []


@pytest.mark.parametrize(
    "raw",
    [
        b'{"description": "\xff\xfe"}',
        json.dumps(complaint(), ensure_ascii=False).encode().replace(b"\xe7", b"\xc0", 1),
        '{"description": "\ud800"}'.encode("utf-8", "surrogatepass"),
    ],
)
def test_bytes_that_are_not_utf8_are_refused(client: Any, raw: bytes) -> None:
    response = post_case(client, raw)

    assert response.status_code == 400
    assert error_fields(response) == {"body"}
    assert all_items() == []


def test_a_body_over_64_kib_is_refused_as_too_large(client: Any) -> None:
    raw = json.dumps(complaint()).encode()
    at_limit = raw + b" " * (64 * 1024 - len(raw))

    accepted = post_case(client, at_limit)
    refused = post_case(client, at_limit + b" ")

    assert accepted.status_code == 201
    assert refused.status_code == 413
    assert error_fields(refused) == {"body"}
    assert len(stored_cases()) == 1


def test_a_body_that_is_not_json_is_refused_as_unsupported(client: Any) -> None:
    response = post_case(client, json.dumps(complaint()).encode(), {"Content-Type": "text/plain"})

    assert response.status_code == 415
    assert all_items() == []


@pytest.mark.parametrize("trouble", ["storage error", "transaction conflict"])
def test_storage_trouble_is_a_retryable_503_not_a_crash(
    client: Any, monkeypatch: pytest.MonkeyPatch, trouble: str
) -> None:
    from chalicelib.adapters.dynamodb import DynamoCaseStore
    from chalicelib.services.ports import WriteConflict

    def unavailable(self: Any, *args: Any) -> None:
        if trouble == "transaction conflict":
            raise WriteConflict("TransactionConflict")
        raise ClientError(
            {"Error": {"Code": "InternalServerError", "Message": "try again"}}, "TransactWriteItems"
        )

    monkeypatch.setattr(DynamoCaseStore, "create_case", unavailable)

    response = post_case(client, complaint())

    assert response.status_code == 503
    assert error_fields(response) == {"service"}
    assert stored_cases() == []


# -- the honeypot ----------------------------------------------------------------------------


def test_a_filled_honeypot_looks_accepted_but_stores_nothing(client: Any) -> None:
    response = post_case(client, complaint(website="http://spam"))

    assert response.status_code == 202
    assert json.loads(response.body) == {"status": "received"}
    assert all_items() == []


def test_an_empty_honeypot_is_a_normal_report(client: Any) -> None:
    assert post_case(client, complaint(website="")).status_code == 201


# -- rate limits ---------------------------------------------------------------------------


def test_the_local_stage_does_not_limit_submissions(client: Any) -> None:
    statuses = [post_case(client, complaint(description=f"#{n}")).status_code for n in range(12)]

    assert statuses == [201] * 12


@pytest.fixture
def dev_client(aws: Path) -> Iterator[Any]:
    """The 'dev' stage: its own table and rate limits on, as .chalice/config.json says."""
    from chalice.test import Client

    from app import app
    from local.table import create_table

    create_table(boto3.client("dynamodb"), DEV_TABLE)
    bootstrap.reset()
    with Client(app, stage_name="dev") as test_client:
        yield test_client
    bootstrap.reset()


TEN_PAST = datetime(2026, 3, 2, 10, 10, 0, tzinfo=UTC)
FROM_ANN = customer("Ann", "ann@example.com")
FROM_BOB = customer("Bob", "bob@example.com")


def test_one_address_may_report_five_times_an_hour(dev_client: Any) -> None:
    with time_machine.travel(TEN_PAST, tick=False):
        accepted = [
            post_case(dev_client, complaint(customer=FROM_ANN, description=f"#{n}"))
            for n in range(5)
        ]
        refused = post_case(dev_client, complaint(customer=FROM_ANN, description="#6"))

    assert [r.status_code for r in accepted] == [201] * 5
    assert refused.status_code == 429
    assert error_fields(refused) == {"customer.email"}
    # Until the hour is over: 10:10 → 11:00.
    assert refused.headers["Retry-After"] == str(50 * 60)
    assert json.loads(refused.body)["retry_after_seconds"] == 50 * 60
    assert len(stored_cases(DEV_TABLE)) == 5


def test_the_limit_ignores_the_case_of_the_address(dev_client: Any) -> None:
    with time_machine.travel(TEN_PAST, tick=False):
        for n in range(5):
            post_case(dev_client, complaint(customer=FROM_ANN, description=f"#{n}"))
        shouting = customer("Ann", "ANN@example.com")
        refused = post_case(dev_client, complaint(customer=shouting, description="#6"))

    assert refused.status_code == 429


def test_another_address_can_still_report_when_one_is_limited(dev_client: Any) -> None:
    with time_machine.travel(TEN_PAST, tick=False):
        for n in range(6):
            post_case(dev_client, complaint(customer=FROM_ANN, description=f"#{n}"))
        response = post_case(dev_client, complaint(customer=FROM_BOB))

    assert response.status_code == 201


def test_a_limited_address_can_report_again_in_the_next_hour(dev_client: Any) -> None:
    with time_machine.travel(TEN_PAST, tick=False):
        for n in range(5):
            post_case(dev_client, complaint(customer=FROM_ANN, description=f"#{n}"))
        assert post_case(dev_client, complaint(customer=FROM_ANN)).status_code == 429
    with time_machine.travel(TEN_PAST + timedelta(minutes=49, seconds=59), tick=False):
        assert post_case(dev_client, complaint(customer=FROM_ANN)).status_code == 429
    with time_machine.travel(TEN_PAST + timedelta(minutes=50), tick=False):
        assert post_case(dev_client, complaint(customer=FROM_ANN)).status_code == 201


def test_a_retry_of_an_accepted_report_is_not_blocked_by_the_limit(dev_client: Any) -> None:
    key = {"Idempotency-Key": "first-report"}
    with time_machine.travel(TEN_PAST, tick=False):
        first = post_case(dev_client, complaint(customer=FROM_ANN), key)
        for n in range(4):
            post_case(dev_client, complaint(customer=FROM_ANN, description=f"#{n}"))
        retried = post_case(dev_client, complaint(customer=FROM_ANN), key)

    assert retried.status_code == 201
    assert json.loads(retried.body) == json.loads(first.body)


def test_one_client_is_limited_across_addresses(
    dev_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SERVICE_DESK_RATE_LIMIT_PER_ADDRESS_PER_HOUR", "8")
    bootstrap.reset()
    with time_machine.travel(TEN_PAST, tick=False):
        from_ann = [post_case(dev_client, complaint(customer=FROM_ANN)) for _ in range(6)]
        from_bob = [post_case(dev_client, complaint(customer=FROM_BOB)) for _ in range(4)]

    assert [r.status_code for r in from_ann] == [201] * 5 + [429]
    assert [r.status_code for r in from_bob] == [201] * 3 + [429]
    assert error_fields(from_bob[-1]) == {"client"}
    assert "Retry-After" in from_bob[-1].headers
    assert len(stored_cases(DEV_TABLE)) == 8


def test_the_dev_stage_writes_to_its_own_table(dev_client: Any) -> None:
    assert post_case(dev_client, complaint()).status_code == 201

    assert len(stored_cases(DEV_TABLE)) == 1
    assert stored_cases() == []


# -- the HTML form -------------------------------------------------------------------------


def form_page(client: Any, path: str = "/", language: str = "zh-CN,zh;q=0.9") -> Any:
    return client.http.get(path, headers={"Accept-Language": language})


def idempotency_key_in(page: str) -> str:
    match = re.search(r'name="idempotency_key" value="([^"]+)"', page)
    assert match, "the form carries no idempotency key"
    return match.group(1)


def form_fields(**overrides: str) -> dict[str, str]:
    fields = {
        "language": "zh",
        "idempotency_key": "f" * 32,
        "kind": "wrong_item",
        "name": "王芳",
        "email": "wang.fang@example.com",
        "phone": "",
        "order_ref": "SO-2026-1042",
        "product": "",
        "serial_no": "",
        "purchase_date": "",
        "description": "收到的是蓝色，订的是红色。",
        "website": "",
    }
    fields.update(overrides)
    return fields


def post_form(client: Any, fields: dict[str, str]) -> Any:
    return client.http.post("/", headers=FORM, body=urlencode(fields).encode())


def test_the_form_is_chinese_for_a_chinese_browser_and_offers_every_kind(client: Any) -> None:
    response = form_page(client)

    page = response.body.decode()
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert '<html lang="zh">' in page
    assert "问题反馈" in page
    offered = set(re.findall(r'<option value="([a-z_]+)"', page))
    assert offered == {kind.value for kind in FORM_KINDS}
    assert len(offered) == 11
    assert re.fullmatch(r"[0-9a-f]{32}", idempotency_key_in(page))


def test_the_form_follows_the_browser_language(client: Any) -> None:
    page = form_page(client, language="en-GB,en;q=0.9,zh;q=0.3").body.decode()

    assert '<html lang="en">' in page
    assert "Report a problem" in page


def test_the_form_in_english_on_request(client: Any) -> None:
    page = form_page(client, "/?lang=en").body.decode()

    assert '<html lang="en">' in page
    assert "Report a problem" in page
    assert 'name="language" value="en"' in page


def test_each_form_is_a_new_submission(client: Any) -> None:
    first = idempotency_key_in(form_page(client).body.decode())
    second = idempotency_key_in(form_page(client).body.decode())

    assert first != second


def test_a_sent_form_leads_to_the_confirmation_with_the_case_number(client: Any) -> None:
    response = post_form(client, form_fields())

    assert response.status_code == 303
    location = response.headers["Location"]
    assert location.startswith(f"{BASE_URL}/status/")
    assert "?submitted=1" in location
    [case] = stored_cases()
    case_number = case["case"]["M"]["case_number"]["S"]
    confirmation = client.http.get(path_of(location))
    page = confirmation.body.decode()
    assert confirmation.status_code == 200
    assert case_number in page
    assert 'id="confirmation"' in page
    assert "谢谢，我们已收到您的反馈。" in page


def test_sending_the_same_form_twice_leads_to_the_same_case(client: Any) -> None:
    fields = form_fields(idempotency_key="a1" * 16)

    first = post_form(client, fields)
    second = post_form(client, fields)

    assert first.status_code == second.status_code == 303
    assert first.headers["Location"] == second.headers["Location"]
    assert len(stored_cases()) == 1


def test_an_old_copy_of_a_sent_form_edited_and_sent_again_is_shown_again_to_confirm(
    client: Any,
) -> None:
    sent = form_fields(idempotency_key="b2" * 16)
    post_form(client, sent)

    response = post_form(client, {**sent, "description": "Also the lid is cracked."})

    page = response.body.decode()
    assert response.status_code == 400
    assert UI[Language.ZH]["already_sent"] in page
    assert "Also the lid is cracked.</textarea>" in page
    assert idempotency_key_in(page) != sent["idempotency_key"]
    assert len(stored_cases()) == 1
    # Sending the shown form (with its fresh key) opens the second case.
    again = post_form(
        client,
        {
            **sent,
            "description": "Also the lid is cracked.",
            "idempotency_key": idempotency_key_in(page),
        },
    )
    assert again.status_code == 303
    assert len(stored_cases()) == 2


def test_a_form_with_mistakes_comes_back_with_what_was_typed_and_the_mistake_marked(
    client: Any,
) -> None:
    fields = form_fields(
        name="Ann <b>Lee</b>", email="not-an-email", description="Line 1\nLine 2 & more"
    )

    response = post_form(client, fields)

    page = response.body.decode()
    assert response.status_code == 400
    assert response.headers["Content-Type"].startswith("text/html")
    assert 'value="Ann &lt;b&gt;Lee&lt;/b&gt;"' in page
    assert 'value="not-an-email"' in page
    assert "Line 1\nLine 2 &amp; more</textarea>" in page
    assert re.search(r'<input id="email"[^>]*aria-invalid="true"', page)
    assert not re.search(r'<input id="name"[^>]*aria-invalid', page)
    assert 'id="email-error"' in page
    assert "请输入有效的电子邮件地址" in page
    assert '<option value="wrong_item" selected>' in page
    assert idempotency_key_in(page) == fields["idempotency_key"]
    assert all_items() == []


def test_an_order_problem_on_the_form_without_order_number_marks_that_field(
    client: Any,
) -> None:
    response = post_form(client, form_fields(order_ref=""))

    page = response.body.decode()
    assert response.status_code == 400
    assert re.search(r'<input id="order_ref"[^>]*aria-invalid="true"', page)
    assert "此类问题需要填写订单号" in page
    assert all_items() == []


def test_an_english_form_with_mistakes_is_answered_in_english(client: Any) -> None:
    response = post_form(client, form_fields(language="en", email="x@"))

    page = response.body.decode()
    assert response.status_code == 400
    assert '<html lang="en">' in page
    assert "Please correct the marked fields." in page


def test_a_form_with_the_honeypot_filled_looks_received_but_stores_nothing(
    client: Any,
) -> None:
    response = post_form(client, form_fields(leave_empty="http://spam"))

    assert response.status_code == 200
    assert "您的反馈已收到" in response.body.decode()
    assert all_items() == []


def test_the_form_posts_back_to_where_it_was_served_so_it_works_under_a_stage_path(
    client: Any,
) -> None:
    page = form_page(client).body.decode()

    assert 'action=""' in page
    assert 'href="?lang=' in page
    assert 'maxlength="200"' in page  # attributes reach the browser unescaped


def test_links_are_not_built_from_headers_a_client_controls(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SERVICE_DESK_PUBLIC_BASE_URL")
    bootstrap.reset()

    response = post_case(
        client,
        complaint(),
        {
            "Content-Type": "application/json",
            "Host": "evil.example/<script>",
            "X-Forwarded-Proto": "javascript:alert(1)//",
        },
    )

    assert response.status_code == 201
    assert json.loads(response.body)["status_url"].startswith("http://localhost/status/")
