"""The OpenAPI document says what the gateway answers: problem+json on every error, security, tags, unique names.

(That every status the gateway really answers is documented is walked in ``test_route_roles.py``.)
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import jsonschema
import pytest
from litestar import Litestar, get
from litestar.params import Parameter
from litestar.serialization import decode_json, encode_json
from litestar.testing import TestClient

from kagi_gateway.app import create_app
from kagi_gateway.openapi import PROBLEM_SCHEMA
from kagi_shared.problems import PROBLEM_JSON, FieldError, Problem, exception_handlers

METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    app = create_app()
    doc: dict[str, Any] = decode_json(encode_json(app.openapi_schema.to_schema()))
    return doc


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method.upper(), path, item[method]) for path, item in document["paths"].items()
            for method in METHODS if method in item]


def test_every_error_is_the_one_problem_schema(document: dict[str, Any]) -> None:
    wrong = []
    for method, path, op in operations(document):
        for status, response in op["responses"].items():
            if int(status) < 400:
                continue
            content = response.get("content", {})
            if list(content) != [PROBLEM_JSON] or \
                    content[PROBLEM_JSON]["schema"] != {"$ref": f"#/components/schemas/{PROBLEM_SCHEMA}"}:
                wrong.append(f"{method} {path} {status}: {content}")
    assert wrong == []


def test_statuses_follow_from_the_declaration(document: dict[str, Any]) -> None:
    by_operation = {(m, p): {int(s) for s in op["responses"]} for m, p, op in operations(document)}
    public = {(m, p) for m, p, op in operations(document) if op.get("security") == []}
    for (method, path), statuses in by_operation.items():
        if not path.startswith("/api/"):
            continue
        assert {403, 404, 429, 503, 504} <= statuses, (method, path)
        assert ((method, path) in public) != (401 in statuses) or path.endswith(
            ("/auth/login", "/auth/refresh", "/invitations/redeem")), (method, path, statuses)
        assert (method != "GET") == (409 in statuses), (method, path)
    assert 401 in by_operation[("POST", "/api/v1/auth/login")]
    assert 503 in by_operation[("GET", "/ready")]


def test_public_operations_need_no_token_and_others_the_bearer(document: dict[str, Any]) -> None:
    assert document["security"] == [{"bearer": []}]
    public = sorted(p for m, p, op in operations(document) if op.get("security") == [])
    assert "/api/v1/auth/login" in public and "/health" in public and "/api/v1/auth/registrations" in public
    assert "/api/v1/me" not in public and "/api/v1/operator/companies" not in public
    for _, _, op in operations(document):
        assert "security" not in op or op["security"] == [], op["operationId"]


def test_tags_and_descriptions(document: dict[str, Any]) -> None:
    declared = {tag["name"] for tag in document["tags"]}
    for method, path, op in operations(document):
        assert op.get("tags") and set(op["tags"]) <= declared, (method, path)
        assert op.get("summary") and op.get("description", "").startswith(op["summary"]), (method, path)
        assert "Who may call:" in op["description"]


def test_schema_names_are_unique_class_names(document: dict[str, Any]) -> None:
    # Litestar prefixes a class name with its module when two classes share it; a client generator then
    # gets two unrelated schemas of nearly one name.
    names = list(document["components"]["schemas"])
    assert [n for n in names if not re.fullmatch(r"[A-Z][A-Za-z0-9]*", n)] == []


def test_read_only_viewer_routes_stay_out_of_the_document(document: dict[str, Any]) -> None:
    item = document["paths"]["/api/v1/me/viewing-locations/{location_id}/contract"]
    assert set(item) & set(METHODS) == {"get"}


def test_problem_bodies_match_the_documented_schema(document: dict[str, Any]) -> None:
    schema = {**document["components"]["schemas"][PROBLEM_SCHEMA], "components": document["components"]}
    bodies = [
        Problem(409, "review.closed", "この棚卸は完了しています。").body("/api/v1/x", "rid-12345678"),
        Problem(400, "request.invalid", "入力内容に誤りがあります。", "detail",
                errors=[FieldError("loginId", "必須の項目です")], extra={"service": "lifecycle"}).body("/p"),
    ]
    for body in bodies:
        jsonschema.validate(body, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"status_code": 400, "detail": "x"}, schema)


def test_a_missing_query_parameter_is_named() -> None:
    @get("/x", sync_to_thread=False)
    def handler(recipient: Annotated[str, Parameter(min_length=3)]) -> dict[str, str]:
        return {"recipient": recipient}

    with TestClient(Litestar([handler], exception_handlers=exception_handlers())) as client:
        reply = client.get("/x")
    assert reply.status_code == 400
    assert reply.headers["content-type"].startswith(PROBLEM_JSON)
    assert reply.json()["errors"] == [{"field": "recipient", "reason": "必須の項目です (missing query parameter)"}]


def test_create_routes_document_the_idempotency_key(document: dict[str, Any]) -> None:
    parameter = document["components"]["parameters"]["IdempotencyKey"]
    assert (parameter["name"], parameter["in"], parameter["schema"]["maxLength"]) == ("Idempotency-Key", "header", 255)
    keyed = {(method, path): op for method, path, op in operations(document)
             if {"$ref": "#/components/parameters/IdempotencyKey"} in op.get("parameters", [])}
    assert ("POST", "/api/v1/invitations/requests") in keyed
    assert ("POST", "/api/v1/permission-requests") in keyed
    assert all(method == "POST" for method, _ in keyed)
    for op in keyed.values():
        assert {"400", "409", "422"} <= set(op["responses"])
        success = [r for status, r in op["responses"].items() if status.startswith("2")]
        assert all("Idempotent-Replayed" in r.get("headers", {}) for r in success)
