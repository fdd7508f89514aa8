"""Whatever arrives at POST /api/cases, the customer gets a clear answer, never a crash,
and whatever is accepted is kept exactly as typed."""

from __future__ import annotations

import json
import string
from datetime import date
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from chalicelib import bootstrap
from chalicelib.domain.case import CaseKind
from chalicelib.services.outbox import drain_outbox
from chalicelib.settings import get_settings
from tests.integration.support import post_case, token_of

ANSWERS = {201, 202, 400, 413, 422, 429}
KINDS = [kind.value for kind in CaseKind]
ACROSS_EXAMPLES = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Everything a person (or a script) might type, surrogates and control characters included.
any_char = st.characters(exclude_categories=())
# What a person can type into one line, or into the description (line breaks and tabs).
typed_char = st.characters(exclude_categories=("Cs", "Cc"))
typed_text_char = st.characters(exclude_categories=("Cs", "Cc"), include_characters="\n\r\t")
TYPED = [
    '=HYPERLINK("http://x","y")',
    "=cmd|' /C calc'!A0",
    "+SUM(1,2)",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "<img src=x onerror=alert(1)>",
    "王芳 😀👍🏽 👨‍👩‍👧",
    "a\u2028b\u2029c\u200b\ufeff",
    "'; DROP TABLE cases; --",
    "  padded  ",
]
BROKEN = [
    "\ud83d",
    "\x00\x1b[31m",
    "Ann\r\nBcc: victim@example.com",
    " ",
    "",
    "x" * 5001,
]
one_line = st.one_of(
    st.text(typed_char, min_size=1, max_size=60).filter(str.strip), st.sampled_from(TYPED)
)
multi_line = st.one_of(
    st.text(typed_text_char, min_size=1, max_size=300).filter(str.strip),
    st.sampled_from([*TYPED, "line 1\r\nline 2\n\tend\n"]),
)
anything = st.one_of(
    st.text(any_char, max_size=60),
    st.sampled_from(BROKEN + TYPED),
    st.builds(lambda a, b: a + b, st.sampled_from(BROKEN), st.text(any_char, max_size=10)),
    st.integers(),
    st.none(),
)
valid_emails = st.one_of(
    st.sampled_from(
        [
            "wang.fang@example.com",
            "Ann.Lee+kettle@example.co.uk",
            "wang@例子.广告",
            "o'brien@example.ie",
        ]
    ),
    st.emails(),
)
any_emails = st.one_of(
    valid_emails, st.sampled_from(["王芳@example.com", "a@", "@b.com"]), anything
)
any_kinds = st.one_of(st.sampled_from(KINDS), anything)
any_dates = st.one_of(st.dates().map(str), anything)


FIELDS = [
    "name",
    "email",
    "phone",
    "kind",
    "description",
    "order_ref",
    "no order_ref",
    "product",
    "serial_no",
    "purchase_date",
    "language",
    "website",
    "unknown field",
]


@st.composite
def near_valid_complaints(draw: Any) -> dict[str, Any]:
    """Shaped like a complaint; mostly valid, with arbitrary text in every field, and now
    and then one or more fields anything at all."""

    broken = draw(st.sets(st.sampled_from(FIELDS), min_size=1)) if draw(st.booleans()) else set()

    def field(name: str, typed: st.SearchStrategy[Any], other: st.SearchStrategy[Any]) -> Any:
        return draw(other if name in broken else typed)

    person: dict[str, Any] = {
        "name": field("name", one_line, anything),
        "email": field("email", valid_emails, any_emails),
    }
    if draw(st.booleans()):
        phones = st.sampled_from(["+86 138 0013 8000", "(030) 123-45"])
        person["phone"] = field("phone", phones, anything)
    body: dict[str, Any] = {
        "kind": field("kind", st.sampled_from(KINDS), any_kinds),
        "customer": person,
        "description": field("description", multi_line, anything),
    }
    if "no order_ref" not in broken:
        body["order_ref"] = field("order_ref", one_line, anything)
    optional = {
        "product": (one_line, anything),
        "serial_no": (one_line, anything),
        "purchase_date": (st.dates(max_value=date(2025, 12, 31)).map(str), any_dates),
        "language": (st.sampled_from(["zh", "en"]), st.sampled_from(["fr", "", "ZH"])),
        "website": (st.just(""), anything),
    }
    for name, (typed, other) in optional.items():
        if name in broken or draw(st.booleans()):
            body[name] = field(name, typed, other)
    if "unknown field" in broken:
        body[draw(st.text(any_char, min_size=1, max_size=8))] = draw(anything)
    return body


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(any_char, max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(any_char, max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
random_objects = st.dictionaries(
    st.one_of(
        st.sampled_from(["kind", "customer", "description", "order_ref", "website"]), st.text()
    ),
    json_values,
    max_size=6,
)
keys = st.one_of(st.none(), st.sampled_from(["k1", "k2"]), st.text(string.printable, max_size=300))


def send(client: Any, body: Any, *, as_utf8: bool, key: str | None = None) -> Any:
    # ensure_ascii escapes lone surrogates as \\udXXX (valid JSON); without it they become
    # bytes that are not UTF-8.
    raw = json.dumps(body, ensure_ascii=not as_utf8).encode("utf-8", "surrogatepass")
    headers = {"Idempotency-Key": key} if key is not None else {}
    response = post_case(client, raw, headers)
    event(f"status {response.status_code}")
    assert response.status_code in ANSWERS, (response.status_code, response.body[:500])
    return response


@settings(ACROSS_EXAMPLES, max_examples=40)
@given(body=st.one_of(json_values, random_objects), as_utf8=st.booleans())
def test_any_json_gets_a_clear_answer(client: Any, body: Any, as_utf8: bool) -> None:
    send(client, body, as_utf8=as_utf8)


@settings(ACROSS_EXAMPLES, max_examples=15)
@given(raw=st.binary(max_size=300))
def test_any_bytes_get_a_clear_answer(client: Any, raw: bytes) -> None:
    response = post_case(client, raw)

    assert response.status_code in ANSWERS


@settings(ACROSS_EXAMPLES, max_examples=95)
@given(body=near_valid_complaints(), as_utf8=st.booleans(), key=keys)
def test_an_accepted_report_is_kept_exactly_as_typed_and_confirmed(
    client: Any, body: dict[str, Any], as_utf8: bool, key: str | None
) -> None:
    response = send(client, body, as_utf8=as_utf8, key=key)
    if response.status_code != 201:
        return

    token = token_of(json.loads(response.body)["status_url"])
    view = json.loads(client.http.get(f"/api/status/{token}").body)
    assert view["customer"]["name"] == body["customer"]["name"]
    assert view["description"] == body["description"]
    assert view["order_ref"] == body.get("order_ref")
    assert view["product"] == body.get("product")
    # … and the confirmation e-mail for it can be sent.
    report = drain_outbox(
        bootstrap.case_store(), bootstrap.mailer(), get_settings(), bootstrap.now()
    )
    assert (report.retried, report.failed) == (0, 0)
