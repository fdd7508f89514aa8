"""The staff API: who may call it, working a case through its lifecycle, lost updates."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib import bootstrap
from chalicelib.domain.staff import Role
from chalicelib.services import staff_desk
from chalicelib.services.ports import TokenChanged
from tests.integration.support import post_case


def staff_token(role: Role, staff_id: str | None = None) -> str:
    staff_id = staff_id or role.value.replace("_", "-")
    _, token = staff_desk.add_staff(
        bootstrap.case_store(), staff_id=staff_id, name=staff_id.title(), role=role,
        email=None, now=datetime.now(UTC),
    )
    return token


def call(client: Any, method: str, path: str, token: str | None, body: Any = None) -> Any:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    kwargs: dict[str, Any] = {"headers": headers}
    if body is not None:
        kwargs["body"] = json.dumps(body)
    return getattr(client.http, method)(path, **kwargs)


def body(response: Any) -> Any:
    return json.loads(response.body)


def report(client: Any, **overrides: Any) -> dict[str, Any]:
    complaint = {
        "kind": "wrong_item",
        "customer": {"name": "Ann Lee", "email": "ann@example.com"},
        "order_ref": "SO-1",
        "description": "Blue instead of red",
        "language": "en",
        **overrides,
    }
    response = post_case(client, complaint)
    assert response.status_code == 201, response.body
    return body(response)


def act(client: Any, token: str, case_id: str, action: str, version: int,
        params: dict[str, Any] | None = None) -> Any:
    payload: dict[str, Any] = {"action": action, "version": version}
    if params is not None:
        payload["params"] = params
    return call(client, "post", f"/api/staff/cases/{case_id}/actions", token, payload)


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer nonsense", "Basic abc", "Bearer sdk_notarealtoken"],
)
def test_the_staff_api_needs_a_staff_token(client: Any, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = client.http.get("/api/staff/cases", headers=headers)

    assert response.status_code == 401
    assert body(response)["errors"][0]["field"] == "Authorization"


def test_a_customer_status_token_does_not_open_the_staff_api(client: Any) -> None:
    receipt = report(client)
    customer_token = receipt["status_url"].rsplit("/", 1)[1]

    response = call(client, "get", "/api/staff/cases", customer_token)

    assert response.status_code == 401


def test_a_revoked_token_stops_working(client: Any) -> None:
    token = staff_token(Role.AGENT, "ann")
    assert call(client, "get", "/api/staff/me", token).status_code == 200

    staff_desk.revoke_token(bootstrap.case_store(), "ann", datetime.now(UTC))

    assert call(client, "get", "/api/staff/me", token).status_code == 401


def test_a_new_token_replaces_the_old_one(client: Any) -> None:
    old = staff_token(Role.AGENT, "ann")
    new = staff_desk.issue_token(bootstrap.case_store(), "ann", datetime.now(UTC))

    assert call(client, "get", "/api/staff/me", old).status_code == 401
    assert body(call(client, "get", "/api/staff/me", new))["staff_id"] == "ann"


def test_an_agent_works_a_wrong_item_case_to_closed(client: Any, aws: Any) -> None:
    agent, logistics = staff_token(Role.AGENT), staff_token(Role.LOGISTICS)
    case_id = report(client)["case_id"]

    steps = [
        (agent, "request_photos", None),
        (agent, "mark_complaint_true", None),
        (agent, "feedback_to_department",
         {"department": "logistics", "root_cause": "picked from the wrong shelf"}),
        (agent, "decide_resolution",
         {"items": [{"remedy": "keep_wrong_item"}, {"remedy": "reship"},
                    {"remedy": "gift", "note": "phone strap"}]}),
        (logistics, "reship", {"tracking_no": "SF123456", "carrier": "SF Express"}),
        (agent, "resolve", None),
        (agent, "close", None),
    ]
    version = 1
    for token, action, params in steps:
        response = act(client, token, case_id, action, version, params)
        assert response.status_code == 200, (action, response.body)
        version += 1
        assert body(response)["case"]["version"] == version

    read = body(call(client, "get", f"/api/staff/cases/{case_id}", agent))
    assert read["case"]["status"] == "closed"
    assert [e["action"] for e in read["history"]] == [
        "close", "resolve", "reship", "decide_resolution", "feedback_to_department",
        "mark_complaint_true", "request_photos", "case_received",
    ]
    assert read["history"][2]["actor"] == "staff:logistics"
    # What is left after closing: the follow-up call (due 3 days after the resolution).
    assert read["available_actions"] == ["reopen", "record_follow_up_call"]
    assert [t["kind"] for t in read["timers"]] == ["follow_up_call"]


def test_a_stale_version_is_refused_saying_what_changed(client: Any) -> None:
    agent, supervisor = staff_token(Role.AGENT), staff_token(Role.SUPERVISOR)
    case_id = report(client)["case_id"]
    assert act(client, supervisor, case_id, "request_photos", 1).status_code == 200

    response = act(client, agent, case_id, "mark_complaint_true", 1)

    assert response.status_code == 409
    answer = body(response)
    assert answer["current_version"] == 2
    assert answer["changes"][0]["action"] == "request_photos"
    assert "request_photos by staff:supervisor" in answer["errors"][0]["message"]
    read = body(call(client, "get", f"/api/staff/cases/{case_id}", agent))
    assert read["case"]["status"] == "awaiting_photos"


def test_a_technician_cannot_post_a_refund(client: Any) -> None:
    agent, technician = staff_token(Role.AGENT), staff_token(Role.TECHNICIAN)
    case_id = report(client, kind="order_cancel")["case_id"]
    assert act(client, agent, case_id, "decide_resolution", 1,
               {"items": [{"remedy": "full_refund", "amount": "20.00"}]}).status_code == 200
    assert act(client, agent, case_id, "submit_refund_request", 2,
               {"method": "paypal"}).status_code == 200

    response = act(client, technician, case_id, "post_refund", 3,
                   {"amount": "20.00", "method": "paypal", "reference": "PP-1"})

    assert response.status_code == 403
    assert "technician may not post refund" in body(response)["errors"][0]["message"]


def test_an_action_not_allowed_now_says_why_and_changes_nothing(client: Any) -> None:
    agent = staff_token(Role.AGENT)
    case_id = report(client)["case_id"]

    response = act(client, agent, case_id, "close", 1)

    assert response.status_code == 422
    assert "while the case is new" in body(response)["errors"][0]["message"]
    assert body(call(client, "get", f"/api/staff/cases/{case_id}", agent))["case"]["version"] == 1


def test_bad_parameters_name_the_field(client: Any) -> None:
    agent = staff_token(Role.AGENT)
    case_id = report(client, kind="not_received")["case_id"]
    act(client, agent, case_id, "explain_tracking", 1)

    response = act(client, agent, case_id, "check_tracking", 2, {"online": "perhaps"})

    assert response.status_code == 400
    assert body(response)["errors"][0]["field"] == "params.online"


def test_a_case_taken_on_the_phone_is_opened_by_the_agent(client: Any) -> None:
    agent = staff_token(Role.AGENT, "ann")

    response = call(client, "post", "/api/staff/cases", agent, {
        "kind": "wholesale_registration",
        "customer": {"name": "Shop Owner", "email": "owner@example.com", "phone": "+86 21 1234"},
        "description": "Wants a wholesale account",
    })

    assert response.status_code == 201
    case_id = body(response)["case_id"]
    read = body(call(client, "get", f"/api/staff/cases/{case_id}", agent))
    assert read["case"]["channel"] == "phone"
    assert read["history"][0]["actor"] == "staff:ann"
    assert "register_wholesale_account" in read["available_actions"]


def test_lists_filter_by_status_kind_owner_and_number(client: Any) -> None:
    agent = staff_token(Role.AGENT, "ann")
    first = report(client)
    second = report(client, kind="enquiry", order_ref=None)
    act(client, agent, first["case_id"], "assign_owner", 1, {"owner": "ann"})

    def numbers(query: str) -> set[str]:
        cases = body(call(client, "get", f"/api/staff/cases{query}", agent))["cases"]
        return {case["case_number"] for case in cases}

    both = {first["case_number"], second["case_number"]}
    assert numbers("") == both
    assert numbers("?kind=enquiry") == {second["case_number"]}
    assert numbers("?owner=ann") == {first["case_number"]}
    assert numbers("?status=new") == both
    assert numbers("?status=closed") == set()
    assert numbers(f"?number={second['case_number']}") == {second["case_number"]}
    bad = call(client, "get", "/api/staff/cases?status=nonsense", agent)
    assert bad.status_code == 400


def test_the_customer_hears_each_step_by_e_mail_and_on_the_status_page(
    client: Any, aws: Any
) -> None:
    from tests.integration.test_status_and_mail import mails, run_send_outbox, text_of

    agent = staff_token(Role.AGENT)
    receipt = report(client)
    act(client, agent, receipt["case_id"], "request_photos", 1)

    run_send_outbox(client)

    subjects = sorted(str(mail["Subject"]) for mail in mails(aws))
    assert any("Photos needed" in subject for subject in subjects)
    photo_mail = next(m for m in mails(aws) if "Photos needed" in str(m["Subject"]))
    assert receipt["status_url"] in text_of(photo_mail)
    token = receipt["status_url"].rsplit("/", 1)[1]
    page = client.http.get(f"/status/{token}").body.decode()
    assert "photos of the product" in page


def test_the_customer_file_holds_every_case_and_is_found_by_e_mail_or_phone(
    client: Any,
) -> None:
    agent = staff_token(Role.AGENT)
    first = report(client, customer={"name": "Ann", "email": "Ann@Example.com",
                                     "phone": "+86 138-0000-1111"})
    report(client, kind="enquiry", order_ref=None,
           customer={"name": "Ann Lee", "email": "ann@example.com"})

    by_phone = body(call(client, "get", "/api/staff/customers?phone=%2B8613800001111", agent))
    [customer] = by_phone["customers"]
    assert customer["name"] == "Ann"  # the public form does not rename a known customer
    assert customer["case_count"] == 2
    by_email = body(call(client, "get", "/api/staff/customers?email=ann@example.com", agent))
    assert by_email["customers"][0]["customer_id"] == customer["customer_id"]
    read = body(call(client, "get", f"/api/staff/customers/{customer['customer_id']}", agent))
    assert {c["case_id"] for c in read["cases"]} >= {first["case_id"]}
    assert len(read["cases"]) == 2
    listed = body(call(client, "get", "/api/staff/customers", agent))["customers"]
    assert [c["customer_id"] for c in listed] == [customer["customer_id"]]
    missing = call(client, "get", "/api/staff/customers/cu_nobody", agent)
    assert missing.status_code == 404


def test_a_known_caller_is_found_by_phone_and_the_case_joins_their_file(client: Any) -> None:
    agent = staff_token(Role.AGENT, "ann")
    report(client, customer={"name": "Wang Fang", "email": "wang@example.com",
                             "phone": "13800001111"})

    response = call(client, "post", "/api/staff/cases", agent, {
        "kind": "enquiry",
        "customer": {"phone": "138 0000 1111"},
        "description": "Asks when the red one is back in stock",
    })

    assert response.status_code == 201, response.body
    found = body(call(client, "get", "/api/staff/customers?phone=13800001111", agent))
    assert found["customers"][0]["case_count"] == 2
    unknown = call(client, "post", "/api/staff/cases", agent, {
        "kind": "enquiry", "customer": {"phone": "999 9999 9999"}, "description": "?",
    })
    assert unknown.status_code == 400
    assert {e["field"] for e in body(unknown)["errors"]} >= {"customer.email"}


def test_a_token_issued_while_being_revoked_cannot_outlive_the_revoke(client: Any) -> None:
    store = bootstrap.case_store()
    staff_token(Role.AGENT, "ann")
    now = datetime.now(UTC)
    member, old_hash = store.get_staff("ann")  # type: ignore[misc]
    new = staff_desk.issue_token(store, "ann", now)

    # A revoke that read the staff record before that issue loses the race, visibly:
    with pytest.raises(TokenChanged):
        store.replace_token(member.model_copy(update={"active": False}), old_hash, None, now)

    staff_desk.revoke_token(store, "ann", now)
    assert call(client, "get", "/api/staff/me", new).status_code == 401


def test_someone_typing_a_callers_phone_on_the_form_cannot_take_over_their_file(
    client: Any,
) -> None:
    agent = staff_token(Role.AGENT, "ann")
    report(client, customer={"name": "Wang Fang", "email": "wang@example.com",
                             "phone": "13800001111"})
    # Someone else gives the same phone number, and even Wang's e-mail with another name.
    report(client, customer={"name": "Mallory", "email": "mallory@evil.example",
                             "phone": "13800001111"})
    report(client, kind="enquiry", order_ref=None,
           customer={"name": "Not Wang", "email": "wang@example.com", "phone": "999999"})

    wang = body(call(client, "get", "/api/staff/customers?email=wang@example.com", agent))
    assert wang["customers"][0]["name"] == "Wang Fang"
    assert wang["customers"][0]["phone"] == "13800001111"
    response = call(client, "post", "/api/staff/cases", agent, {
        "kind": "enquiry", "customer": {"phone": "13800001111"}, "description": "?",
    })
    assert response.status_code == 409
    assert "give the caller's e-mail" in body(response)["errors"][0]["message"]
    both = body(call(client, "get", "/api/staff/customers?phone=13800001111", agent))
    assert {c["email"] for c in both["customers"]} == {
        "wang@example.com", "mallory@evil.example",
    }


def test_a_known_customer_called_in_keeps_their_language(client: Any) -> None:
    agent = staff_token(Role.AGENT, "ann")
    report(client, language="en")

    response = call(client, "post", "/api/staff/cases", agent, {
        "kind": "enquiry", "customer": {"email": "ann@example.com"}, "description": "?",
    })

    case_id = body(response)["case_id"]
    read = body(call(client, "get", f"/api/staff/cases/{case_id}", agent))
    assert read["case"]["language"] == "en"
    assert read["case"]["customer"]["name"] == "Ann Lee"


@pytest.mark.parametrize("other_change_went_through", [True, False])
def test_two_changes_at_the_same_instant_give_409_or_a_retry_never_a_lost_update(
    client: Any, monkeypatch: pytest.MonkeyPatch, other_change_went_through: bool
) -> None:
    from chalicelib.adapters.dynamodb import DynamoCaseStore
    from chalicelib.services.ports import WriteConflict

    agent = staff_token(Role.AGENT)
    case_id = report(client)["case_id"]
    original = DynamoCaseStore.save_change

    def conflicting(
        self: Any, case: Any, event: Any, outbox: Any, expected: int, previous: Any = None
    ) -> None:
        if other_change_went_through:  # DynamoDB let the other writer's transaction win
            original(self, case.model_copy(update={"owner": "bob"}), event, [], expected)
        raise WriteConflict("TransactionConflict")

    monkeypatch.setattr(DynamoCaseStore, "save_change", conflicting)
    response = act(client, agent, case_id, "request_photos", 1)

    assert response.status_code == (409 if other_change_went_through else 503)


def test_the_list_is_newest_first_across_statuses_and_overdue_respects_the_status(
    client: Any,
) -> None:
    import time_machine

    agent = staff_token(Role.AGENT)
    older = report(client)
    newer = report(client, kind="enquiry", order_ref=None)
    assert act(client, agent, older["case_id"], "request_photos", 1).status_code == 200

    listed = body(call(client, "get", "/api/staff/cases", agent))["cases"]
    assert [c["case_id"] for c in listed] == [newer["case_id"], older["case_id"]]
    # The enquiry is answered at once, so its only promise (the first reply) is kept.
    answered = act(client, agent, newer["case_id"], "answer_enquiry", 1, {"text": "Yes."})
    assert answered.status_code == 200

    with time_machine.travel(datetime.now(UTC) + timedelta(days=4), tick=False):
        overdue = body(call(client, "get", "/api/staff/cases?overdue=true", agent))["cases"]
        assert [c["case_id"] for c in overdue] == [older["case_id"]]
        other_status = call(client, "get", "/api/staff/cases?overdue=true&status=new", agent)
        assert body(other_status)["cases"] == []


def test_a_case_is_assigned_only_to_a_member_of_staff(client: Any) -> None:
    supervisor = staff_token(Role.SUPERVISOR, "sue")
    staff_token(Role.AGENT, "ann")
    case_id = report(client)["case_id"]

    nobody = act(client, supervisor, case_id, "assign_owner", 1, {"owner": "nobody"})
    assert nobody.status_code == 400
    assert body(nobody)["errors"][0]["field"] == "params.owner"
    ann = act(client, supervisor, case_id, "assign_owner", 1, {"owner": "ann"})
    assert body(ann)["case"]["owner"] == "ann"


def test_a_new_repair_request_offers_the_field_service_flow_not_the_shop_remedies(
    client: Any,
) -> None:
    agent = staff_token(Role.AGENT)
    case_id = report(client, kind="repair_request", order_ref=None)["case_id"]

    read = body(call(client, "get", f"/api/staff/cases/{case_id}", agent))
    assert set(read["available_actions"]) == {
        "add_note", "message_customer", "assign_owner", "cancel",
        "check_warranty", "dispatch", "report_abnormal_problem",
        "flag_major_quality_problem", "register_unit_return",
    }
    assert act(client, agent, case_id, "cancel", 1, {"text": "Sent to the workshop by phone"}
               ).status_code == 200


@pytest.mark.parametrize(
    ("payload", "fields"),
    [
        ({"version": 1}, {"action"}),
        ({"action": "request_photos"}, {"version"}),
        ({"action": "request_photos", "version": True}, {"version"}),
        ({"action": "request_photos", "version": 10**9}, {"version"}),
        ({"action": "request_photos", "version": 1, "params": [1]}, {"params"}),
        ({"action": "request_photos", "version": 1, "extra": 1}, {"extra"}),
        ([], {"body"}),
    ],
)
def test_a_malformed_action_request_names_what_is_wrong(
    client: Any, payload: Any, fields: set[str]
) -> None:
    agent = staff_token(Role.AGENT)
    case_id = report(client)["case_id"]

    response = call(client, "post", f"/api/staff/cases/{case_id}/actions", agent, payload)

    assert response.status_code == 400
    assert {e["field"] for e in body(response)["errors"]} == fields


def test_staff_see_every_e_mail_of_the_case_and_whether_it_went(client: Any) -> None:
    from tests.integration.test_status_and_mail import run_send_outbox

    agent = staff_token(Role.AGENT)
    case_id = report(client)["case_id"]
    act(client, agent, case_id, "request_photos", 1)

    pending = body(call(client, "get", f"/api/staff/cases/{case_id}", agent))["emails"]
    assert [(m["template"], m["state"]) for m in pending] == [
        ("case_received", "pending"), ("photos_requested", "pending"),
    ]
    run_send_outbox(client)
    sent = body(call(client, "get", f"/api/staff/cases/{case_id}", agent))["emails"]
    assert {m["state"] for m in sent} == {"sent"}
    assert all(m["to"] == "ann@example.com" and m["sent_at"] for m in sent)


def test_a_message_the_mail_service_refuses_for_good_is_not_retried(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.integration.test_status_and_mail import run_send_outbox

    agent = staff_token(Role.AGENT)
    case_id = report(client)["case_id"]
    monkeypatch.setenv("SERVICE_DESK_MAIL_FROM", "not-verified@example.com")
    bootstrap.reset()

    report_of_drain = run_send_outbox(client)

    assert report_of_drain["failed"] == 1 and report_of_drain["retried"] == 0
    [mail] = body(call(client, "get", f"/api/staff/cases/{case_id}", agent))["emails"]
    assert mail["state"] == "failed"
    assert mail["attempts"] == 1
    assert "MessageRejected" in mail["last_error"]
