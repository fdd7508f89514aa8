"""The customer's signature through the private link (/status/<token>/sign): consent to a
fee quote before paid work starts, then confirmation of the service form (售后服务处理单).

Opening the page signs nothing (mail scanners follow links); only the POST signs, and it
signs only the document the customer was shown.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from chalicelib.domain.staff import Role
from tests.integration.support import FORM, path_of
from tests.integration.test_staff_api import call
from tests.integration.test_timers import OWNER, Desk, Opened, ann, sh

TECHNICIAN = "leo"
# Sold on 1 March 2024 with 12 months' warranty: out of warranty in 2026.
OLD_UNIT = {
    "serial_no": "FL-2024-0001", "model": "CPD30", "customer_name": "Ann Lee",
    "customer_email": "ann.lee@example.com", "sold_on": "2024-03-01", "warranty_months": 12,
}


@pytest.fixture
def desk(client: Any, aws: Path) -> Desk:
    desk = Desk(client, aws)
    desk.add_staff(TECHNICIAN, Role.TECHNICIAN, "leo@desk.example.com")
    return desk


def register(desk: Desk, unit: dict[str, Any]) -> None:
    response = call(desk.client, "post", "/api/staff/units", desk.tokens[OWNER], unit)
    assert response.status_code == 201, response.body


def sign_url(case: Opened) -> str:
    return path_of(case.status_url) + "/sign"


def page(desk: Desk, case: Opened, query: str = "") -> Any:
    return desk.client.http.get(sign_url(case) + query)


def post(desk: Desk, case: Opened, **fields: str) -> Any:
    return desk.client.http.post(
        sign_url(case), headers=FORM, body=urlencode(fields).encode()
    )


def out_of_warranty_repair(desk: Desk) -> Opened:
    register(desk, OLD_UNIT)
    case = desk.report(sh(2026, 6, 1, 9, 0), **ann(
        kind="repair_request", serial_no=OLD_UNIT["serial_no"],
        description="The mast does not lift.",
    ))
    decided = desk.do(case, sh(2026, 6, 1, 9, 10), "check_warranty")
    assert decided["field_service"]["warranty"]["service_class"] == "A"
    return case


def test_the_customer_agrees_to_the_quote_then_confirms_the_work(desk: Desk) -> None:
    case = out_of_warranty_repair(desk)
    assert "nothing to sign" in page(desk, case).body.decode()

    refused = desk.act(case, sh(2026, 6, 1, 9, 20), "dispatch",
                       {"party": "technician", "to": TECHNICIAN})
    assert refused.status_code == 422
    assert "consent" in refused.body.decode()

    desk.do(case, sh(2026, 6, 1, 9, 30), "quote_fees",
            {"amount": "1280.00", "description": "Replace the lift cylinder seals"})
    desk.drain()
    quote_mail = next(m for m in desk.inbox() if "Quote" in m.subject)
    assert sign_url(case).split("/status/")[1] in quote_mail.text

    with desk.moment(sh(2026, 6, 1, 10, 0)):
        shown = page(desk, case)
        assert shown.status_code == 200
        assert "1280.00" in shown.body.decode()
        assert "Replace the lift cylinder seals" in shown.body.decode()
        # Opening the page signed nothing.
        assert desk.read(case)["case"]["field_service"]["quote"]["consent"] is None

        blank = post(desk, case, what="quote", name="   ")
        assert blank.status_code == 400
        assert desk.read(case)["case"]["field_service"]["quote"]["consent"] is None

        signed = post(desk, case, what="quote", name="Ann Lee", comment="Go ahead")
        assert signed.status_code == 303
        consent = desk.read(case)["case"]["field_service"]["quote"]["consent"]
        assert (consent["name"], consent["via"], consent["comment"]) == (
            "Ann Lee", "link", "Go ahead",
        )
        thanks = desk.client.http.get(sign_url(case) + "?signed=quote")
        assert "Ann Lee" in thanks.body.decode()

    desk.do(case, sh(2026, 6, 1, 10, 30), "dispatch", {"party": "technician", "to": TECHNICIAN})
    desk.do(case, sh(2026, 6, 2, 9, 0), "record_service_form",
            {"work": "Replaced the seals; tested <b>lift</b>.", "hours": "2.5",
             "parts_used": [{"part_no": "SEAL-30", "quantity": 2}]})
    with desk.moment(sh(2026, 6, 2, 18, 0)):
        shown = page(desk, case).body.decode()
        assert "SEAL-30 × 2" in shown
        assert "&lt;b&gt;lift&lt;/b&gt;" in shown  # the technician's words stay text
        # A page left open on the quote signs nothing now that the form waits.
        stale = post(desk, case, what="quote", name="Ann Lee")
        assert stale.status_code == 409
        assert desk.read(case)["case"]["field_service"]["form"]["sign_off"] is None
        assert post(desk, case, what="form", name="Ann Lee").status_code == 303
    form = desk.read(case)["case"]["field_service"]["form"]
    assert form["sign_off"]["name"] == "Ann Lee"
    history = [e["action"] for e in desk.read(case)["history"]]
    assert "customer_signed_service_form" in history
    assert "customer_agreed_to_quote" in history
    # Signed once: a second post finds nothing to sign.
    with desk.moment(sh(2026, 6, 2, 18, 5)):
        again = post(desk, case, what="form", name="Someone Else")
    assert again.status_code == 409
    assert desk.read(case)["case"]["field_service"]["form"]["sign_off"]["name"] == "Ann Lee"


def test_an_unknown_link_is_not_found(desk: Desk) -> None:
    assert desk.client.http.get("/status/not-a-token/sign").status_code == 404
