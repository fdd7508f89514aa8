"""The published API description matches what the app actually serves."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from app import app
from chalicelib.domain.case import FORM_KINDS
from tests.integration.support import complaint, post_case, token_of

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


@pytest.fixture
def document(client: Any) -> dict[str, Any]:
    response = client.http.get("/api/openapi.json")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    body: dict[str, Any] = json.loads(response.body)
    return body


def resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"only local references are expected, got {ref}"
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from references(value)
    elif isinstance(node, list):
        for value in node:
            yield from references(value)


def test_the_document_is_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1.")
    assert document["info"]["title"]
    assert document["info"]["version"]
    for path, operations in document["paths"].items():
        assert path.startswith("/")
        for method, operation in operations.items():
            assert method in HTTP_METHODS
            assert operation["responses"], f"{method.upper()} {path} lists no responses"
            for code, response in operation["responses"].items():
                assert code.isdigit() and len(code) == 3
                assert response["description"]


def test_the_document_passes_an_openapi_validator(document: dict[str, Any]) -> None:
    import openapi_spec_validator as validator

    validator.validate(document)


def test_every_reference_in_the_document_resolves(document: dict[str, Any]) -> None:
    refs = set(references(document))

    assert refs, "the document should describe its bodies with schemas"
    for ref in refs:
        assert resolve(document, ref) is not None


def test_every_route_of_the_app_is_described_with_every_method(
    document: dict[str, Any],
) -> None:
    served = {(path, method.lower()) for path, methods in app.routes.items() for method in methods}
    described = {
        (path, method) for path, operations in document["paths"].items() for method in operations
    }

    assert served, "the app should have routes"
    assert served - described == set(), "routes the document does not describe"
    assert described - served == set(), "the document describes routes the app lacks"


def test_path_parameters_are_declared(document: dict[str, Any]) -> None:
    for path, operations in document["paths"].items():
        names = {part[1:-1] for part in path.split("/") if part.startswith("{")}
        for operation in operations.values():
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == names, path


def test_reporting_a_problem_takes_a_complaint_with_every_kind(
    document: dict[str, Any],
) -> None:
    operation = document["paths"]["/api/cases"]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]

    assert schema == {"$ref": "#/components/schemas/Complaint"}
    complaint = resolve(document, schema["$ref"])
    kind = complaint["properties"]["kind"]
    kind = resolve(document, kind["$ref"]) if "$ref" in kind else kind
    assert set(kind["enum"]) == {k.value for k in FORM_KINDS}
    assert len(kind["enum"]) == 11
    assert {"kind", "customer", "description"} <= set(complaint["required"])
    assert complaint["additionalProperties"] is False


def test_the_documented_receipt_matches_what_a_report_returns(
    client: Any, document: dict[str, Any]
) -> None:
    receipt = json.loads(post_case(client, complaint()).body)
    responses = document["paths"]["/api/cases"]["post"]["responses"]
    schema = resolve(document, responses["201"]["content"]["application/json"]["schema"]["$ref"])

    assert set(schema["properties"]) == set(receipt)
    assert set(schema["required"]) == set(receipt)


def test_the_documented_status_view_matches_what_the_status_link_returns(
    client: Any, document: dict[str, Any]
) -> None:
    receipt = json.loads(post_case(client, complaint()).body)
    view = json.loads(client.http.get(f"/api/status/{token_of(receipt['status_url'])}").body)
    responses = document["paths"]["/api/status/{token}"]["get"]["responses"]
    schema = resolve(document, responses["200"]["content"]["application/json"]["schema"]["$ref"])

    assert set(schema["properties"]) == set(view)
