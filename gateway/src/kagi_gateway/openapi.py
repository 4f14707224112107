"""The OpenAPI document tells what the gateway really answers, derived from each route rather than written per route.

Litestar documents a success response per handler and, for handlers with parameters, its own
``{status_code, detail, extra}`` 400 as ``application/json``. The gateway answers every failure with
``application/problem+json`` (``kagi_shared.problems``), and which failures a route can produce follows from how
it is declared:

- 400 ``request.invalid``: it takes a body or parameters; 413 ``request.too_large``: it takes a body;
- 401 and 403 (role, session, expired password): it declares roles other than ``("public",)``;
- 403 (access from abroad), 429 (edge rate limits), 503 and 504 (a service unreachable or slow), 404 (what the
  path, body or token names does not exist, or no longer: a link, an account, a request): it is under ``/api/``
  (the edge middleware, ``Services.call`` and the services' lookups apply to all of them);
- 409: it changes state (POST, PUT, PATCH, DELETE), which the owning service may refuse in the current state.
- the ``Idempotency-Key`` header (a reusable parameter) and 422 ``idempotency.key_reused``: it declares
  ``opt={"idempotent": True}`` (``kagi_shared.idempotency``); its success answers may carry ``Idempotent-Replayed``.

A route with another answer declares it with ``opt={"problems": (410,)}``. Public routes get ``security: []``
(the global requirement is the bearer token), every operation a description naming who may call it, and the
document a tag list. Routes added later need nothing more than the ``roles`` they already must declare.
"""

from __future__ import annotations

from collections.abc import Iterable
from http import HTTPStatus
from typing import Any

from litestar import Litestar
from litestar.handlers.http_handlers import HTTPRouteHandler
from litestar.openapi.spec import (
    OpenAPI,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Parameter,
    Reference,
    Schema,
    Tag,
)
from litestar.routes import HTTPRoute

from kagi_shared.idempotency import HEADER as IDEMPOTENCY_KEY
from kagi_shared.idempotency import MAX_KEY_LENGTH, REPLAYED_HEADER, RETRY_AFTER_S
from kagi_shared.problems import PROBLEM_JSON

PROBLEM_SCHEMA = "ProblemDetails"
FIELD_ERROR_SCHEMA = "ProblemFieldError"
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})

# What each status means for this gateway (the response description a client reads).
MEANINGS: dict[int, str] = {
    400: "入力内容に誤りがあります (`request.invalid`; `errors[]` names each field or parameter and the reason)",
    401: "ログインが必要です (`auth.required`), or the session has ended (`auth.session_ended`)",
    403: "Not allowed: the role (`auth.forbidden`), an expired password (`auth.password_change_required`), "
         "access from abroad, or a rule of the owning service",
    404: "What the path, body or token names does not exist or is not the caller's",
    409: "The resource's current state does not allow this (for example already decided, already registered), "
         "or a request with the same `Idempotency-Key` is still running (`idempotency.in_progress`; retry after "
         "`Retry-After` seconds) or was done but its answer is lost (`idempotency.answer_lost`)",
    410: "The link or key is no longer valid",
    413: "The request body is too large (`request.too_large`)",
    422: "The `Idempotency-Key` was already used with a different request body (`idempotency.key_reused`)",
    429: "Too many requests; retry after `Retry-After` seconds",
    503: "A service or its database is unreachable (`service.unavailable`); nothing was changed; retry after "
         "`Retry-After` seconds",
    504: "A service did not answer in time (`service.timeout`); the change may or may not have been made",
}

TAG_DESCRIPTIONS: dict[str, str] = {  # an area without an entry is described by its name
    "access-review": "棚卸: company admins review who keeps which permission",
    "audit": "The hash-chained audit ledger (operators)",
    "auth": "Login, tokens and the caller's own account",
    "contracts": "Water contract claims, SMS check and withdrawal (owners)",
    "enrolment": "認証情報登録 of B2B IDs: the mailed one-time URL and password; re-issue by operators",
    "invitations": "招待: invitation keys, co-users and memberships",
    "locations": "Usage locations, viewer keys and read-only viewing",
    "notifications": "Notification preferences, admin contacts and info-site updates",
    "operator": "託送受付センター: accounts, unlock requests, lifecycle preview, deliveries",
    "ops": "Probes for orchestration",
    "password": "Password change and reset, secret question, unlock requests",
    "permissions": "Permission requests, drafts, the catalogue and the company (company admins)",
    "permissions-operator": "Companies, request workflow, batches and grant deliveries (operators)",
    "registration": "Self-registration by mail link",
    "step-up": "追加認証: a one-time code by mail opens a 15-minute window",
}

RETRY_AFTER = OpenAPIHeader(schema=Schema(type=OpenAPIType.INTEGER), description="Seconds to wait before retrying")
WWW_AUTHENTICATE = OpenAPIHeader(schema=Schema(type=OpenAPIType.STRING), description="The bearer challenge")
HEADERS: dict[int, dict[str, OpenAPIHeader | Reference]] = {
    401: {"WWW-Authenticate": WWW_AUTHENTICATE},
    409: {"Retry-After": RETRY_AFTER},
    429: {"Retry-After": RETRY_AFTER},
    503: {"Retry-After": RETRY_AFTER},
}


IDEMPOTENCY_PARAMETER = "IdempotencyKey"
IDEMPOTENCY = Parameter(
    name=IDEMPOTENCY_KEY, param_in="header", required=False,
    description="A key the client makes once per logical request (a UUID) and sends again on each retry of it: "
                "a retry after a timeout or a lost answer gets the first attempt's answer (header "
                f"`{REPLAYED_HEADER}: true`) instead of doing the work twice. Answers are kept for 24 hours per "
                "caller (or client address), route and key; the same key with another body is refused with 422, "
                f"and while the first attempt still runs a retry gets 409 with `Retry-After: {RETRY_AFTER_S}`.",
    schema=Schema(type=OpenAPIType.STRING, min_length=1, max_length=MAX_KEY_LENGTH, pattern="^[!-~]+$"),
)
REPLAYED = OpenAPIHeader(schema=Schema(type=OpenAPIType.STRING, enum=["true"]),
                         description="The answer is the stored one of an earlier attempt with the same "
                                     "`Idempotency-Key`")


def is_public(handler: HTTPRouteHandler) -> bool:
    """Anonymous callers may use it: declared ``("public",)``, or outside the role guard (probes)."""
    roles = handler.opt.get("roles")
    return roles is None or tuple(roles) == ("public",)


def problem_statuses(handler: HTTPRouteHandler, method: str, path: str, operation: Operation) -> set[int]:
    """Every error status the route can answer, from how it is declared (see the module docstring)."""
    statuses: set[int] = set(handler.opt.get("problems", ()))
    parameters = [p for p in operation.parameters or [] if not isinstance(p, Reference)]
    if operation.request_body is not None:
        statuses |= {400, 413}
    if parameters:
        statuses.add(400)
    if not is_public(handler):
        statuses |= {401, 403}
    if path.startswith("/api/"):
        statuses |= {403, 404, 429, 503, 504}
        if method in WRITES:
            statuses.add(409)
    if handler.opt.get("idempotent"):
        statuses |= {400, 409, 422}
    return statuses


def _problem_response(status: int) -> OpenAPIResponse:
    return OpenAPIResponse(
        description=MEANINGS.get(status, HTTPStatus(status).phrase),
        headers=HEADERS.get(status),
        content={PROBLEM_JSON: OpenAPIMediaType(schema=Reference(ref=f"#/components/schemas/{PROBLEM_SCHEMA}"))})


def _problem_schemas() -> dict[str, Schema]:
    text = Schema(type=OpenAPIType.STRING)
    return {
        FIELD_ERROR_SCHEMA: Schema(
            type=OpenAPIType.OBJECT, required=["field", "reason"],
            properties={"field": Schema(type=OpenAPIType.STRING,
                                        description="The body member (`loginId`, `items[0].name`) or parameter"),
                        "reason": text}),
        PROBLEM_SCHEMA: Schema(
            type=OpenAPIType.OBJECT, required=["type", "title", "status", "code"],
            description="RFC 9457 problem details with a stable machine `code`; other members may follow "
                        "(for example `service` on a 503, `accessToken` on `auth.password_change_required`).",
            properties={
                "type": Schema(type=OpenAPIType.STRING, format=None, description="A URI naming the problem type"),
                "title": Schema(type=OpenAPIType.STRING, description="For people, in Japanese"),
                "status": Schema(type=OpenAPIType.INTEGER, minimum=400, maximum=599),
                "code": Schema(type=OpenAPIType.STRING, description="Stable machine code, e.g. `request.invalid`"),
                "detail": text,
                "instance": Schema(type=OpenAPIType.STRING, description="The request path"),
                "requestId": Schema(type=OpenAPIType.STRING, description="Echoes the `X-Request-ID` header"),
                "errors": Schema(type=OpenAPIType.ARRAY,
                                 items=Reference(ref=f"#/components/schemas/{FIELD_ERROR_SCHEMA}")),
            }),
    }


def _operations(app: Litestar) -> Iterable[tuple[str, str, HTTPRouteHandler]]:
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            if not handler.resolve_include_in_schema():
                continue
            for method in sorted(handler.http_methods):
                if method not in ("HEAD", "OPTIONS"):
                    yield route.path_format or "/", method, handler


def document(app: Litestar) -> OpenAPI:
    """Complete the app's OpenAPI document in place (Litestar builds it once and serves that object)."""
    openapi = app.openapi_schema
    assert openapi.components is not None and openapi.paths is not None
    openapi.components.schemas = {**(openapi.components.schemas or {}), **_problem_schemas()}
    openapi.components.parameters = {**(openapi.components.parameters or {}), IDEMPOTENCY_PARAMETER: IDEMPOTENCY}
    tags: set[str] = set()
    for path, method, handler in _operations(app):
        item = openapi.paths[path]
        operation: Operation | None = getattr(item, method.lower())
        if operation is None:
            continue
        responses: dict[str, Any] = {
            code: response for code, response in (operation.responses or {}).items() if code.startswith("2")}
        for status in sorted(problem_statuses(handler, method, path, operation)):
            responses[str(status)] = _problem_response(status)
        if handler.opt.get("idempotent"):
            operation.parameters = [*(operation.parameters or []),
                                    Reference(ref=f"#/components/parameters/{IDEMPOTENCY_PARAMETER}")]
            for code, response in responses.items():
                if code.startswith("2") and isinstance(response, OpenAPIResponse):
                    response.headers = {**(response.headers or {}), REPLAYED_HEADER: REPLAYED}
        operation.responses = responses
        roles = handler.opt.get("roles")
        if is_public(handler):
            operation.security = []
            who = "anyone (no token)"
        else:
            who = ", ".join(roles or ())
        summary = operation.summary or handler.handler_name
        operation.description = operation.description or f"{summary}.\n\nWho may call: {who}."
        if not operation.tags:
            operation.tags = [path.strip("/").split("/")[-1] or "ops"]
        tags.update(operation.tags)
    openapi.tags = [Tag(name=tag, description=TAG_DESCRIPTIONS.get(tag, f"Operations on {tag}"))
                    for tag in sorted(tags)]
    return openapi


def main() -> None:
    """``python -m kagi_gateway.openapi FILE``: write the document (what ``/schema/openapi.json`` serves)."""
    import sys
    from pathlib import Path

    from litestar.serialization import encode_json

    from kagi_gateway.app import create_app

    Path(sys.argv[1]).write_bytes(encode_json(create_app().openapi_schema.to_schema()))


if __name__ == "__main__":
    main()
