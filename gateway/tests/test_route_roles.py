"""Every gateway route × every role answers as its declaration says.

The walk covers every route of the OpenAPI document: anonymous callers get 401 on
non-public routes, roles outside the declaration get 403, and declared roles pass the
guard (the services are unreachable here, so they end at the service call with 503 —
which is how this test sees that the guard let them through).
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from litestar.routes import HTTPRoute

from kagi_gateway.app import create_app
from kagi_gateway.deps import ANY_USER, PUBLIC
from kagi_gateway.tokens import issue_token
from kagi_shared.service_api import Caller
from kagi_shared.settings import get_settings
from tests.support import client_from, gateway_app, no_services

ROLES = ANY_USER
UNREACHABLE = "http://127.0.0.1:9"  # discard port: nothing listens


def routes() -> list[tuple[str, str, tuple[str, ...]]]:
    app = create_app()
    found = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            # Routes outside the document are walked too when they are API routes (a refusal-only route is kept
            # out of the document so that clients get no dead method, but its guard still counts).
            if not handler.include_in_schema and not route.path.startswith("/api/"):
                continue
            roles = handler.opt.get("roles")
            for method in handler.http_methods:
                if method in ("HEAD", "OPTIONS"):
                    continue
                found.append((method, route.path, tuple(roles) if roles is not None else ()))
    return sorted(found)


ROUTES = routes()
API_ROUTES = [r for r in ROUTES if r[1].startswith("/api/")]


def concrete(path: str) -> str:
    return re.sub(r"\{[^}:]+(:[^}]+)?\}", "00000000-0000-4000-8000-000000000000", path)


def token_for(role: str) -> str:
    caller = Caller(account_id=f"acct-{role}", login_id=f"{role}@example.jp", email=f"{role}@example.jp",
                    roles=(role,))
    token, _ = issue_token(caller, get_settings().security)
    return token


async def call(client: httpx.AsyncClient, method: str, path: str, token: str | None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}
    return await client.request(method, concrete(path), headers=headers, **body)


def test_every_api_route_declares_its_roles() -> None:
    assert len(API_ROUTES) >= 8
    undeclared = [(m, p) for m, p, roles in API_ROUTES if not roles]
    assert undeclared == []
    for _, _, roles in API_ROUTES:
        assert roles == PUBLIC or set(roles) <= set(ROLES)


async def test_every_route_answers_every_role_as_declared(monkeypatch: pytest.MonkeyPatch) -> None:
    no_services(monkeypatch)
    wrong: list[str] = []
    # One lifespan for the whole walk (anyio scopes must close in the task that opened them).
    async with gateway_app() as app, client_from(app) as client:
        documented = documented_statuses(app)
        for method, path, roles in API_ROUTES:
            wrong += await walk(client, method, path, roles, documented.get((method, path)))
    assert wrong == [], "\n".join(wrong)


def documented_statuses(app: Any) -> dict[tuple[str, str], set[int]]:
    """(method, route path) → the statuses its operation in the OpenAPI document lists."""
    found = {}
    for route in app.routes:
        if isinstance(route, HTTPRoute) and route.path_format in app.openapi_schema.paths:
            item = app.openapi_schema.paths[route.path_format]
            for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
                operation = getattr(item, method.lower())
                if operation is not None:
                    found[(method, route.path)] = {int(code) for code in operation.responses}
    return found


async def walk(client: httpx.AsyncClient, method: str, path: str, roles: tuple[str, ...],
               documented: set[int] | None) -> list[str]:
    """What the route answers each caller; every answer of a documented operation must be one it documents."""
    wrong = []
    anonymous = await call(client, method, path, None)
    replies = [anonymous]
    if not anonymous.headers.get("content-type", "").startswith("application/problem+json") \
            and anonymous.status_code >= 400:
        wrong.append(f"{method} {path} anonymous: {anonymous.status_code} is not problem+json")
    if roles == PUBLIC:
        if anonymous.status_code in (401, 403):
            wrong.append(f"{method} {path} is public but refused anonymous: {anonymous.text[:200]}")
        return wrong + undocumented(method, path, replies, documented)
    if anonymous.status_code != 401 or anonymous.json().get("code") != "auth.required":
        wrong.append(f"{method} {path} anonymous: expected 401 auth.required, got {anonymous.status_code}")
    for role in ROLES:
        reply = await call(client, method, path, token_for(role))
        replies.append(reply)
        code = reply.json().get("code") if reply.headers.get("content-type", "").startswith(
            "application/problem+json") else None
        if role in roles and code in ("auth.required", "auth.forbidden"):
            wrong.append(f"{method} {path} {role}: declared but refused ({code})")
        if role not in roles and (reply.status_code != 403 or code != "auth.forbidden"):
            wrong.append(f"{method} {path} {role}: not declared but answered {reply.status_code} {code}")
    return wrong + undocumented(method, path, replies, documented)


def undocumented(method: str, path: str, replies: list[httpx.Response], documented: set[int] | None) -> list[str]:
    if documented is None:
        return []
    return [f"{method} {path}: answered {r.status_code} {r.text[:120]}, which its operation does not document"
            for r in replies if r.status_code not in documented]
