"""Who is calling: the bearer token, checked by one guard against the roles each route declares.

Every route sets ``opt={"roles": (...)}``: ``("public",)`` for anonymous routes, otherwise
the roles allowed. A route without the declaration is refused, so none is open by accident.
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from kagi_gateway.tokens import read_token
from kagi_shared.problems import Problem
from kagi_shared.service_api import Caller
from kagi_shared.settings import get_settings

PUBLIC = ("public",)
ANY_USER = ("owner", "viewer", "company_admin", "operator", "target_system")


def client_ip(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    return connection.client.host if connection.client else None


def role_guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    roles = handler.opt.get("roles")
    if roles is None:
        raise Problem(403, "auth.route_undeclared", "この操作を行う権限がありません。")
    if tuple(roles) == PUBLIC:
        return
    header = connection.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Problem(401, "auth.required", "ログインが必要です。", headers={"WWW-Authenticate": "Bearer"})
    caller = read_token(token.strip(), get_settings().security)
    if not any(caller.has(r) for r in roles):
        raise Problem(403, "auth.forbidden", "この操作を行う権限がありません。")
    connection.scope.setdefault("state", {})["caller"] = Caller(
        account_id=caller.account_id, login_id=caller.login_id, email=caller.email, roles=caller.roles,
        ip=client_ip(connection))


def current_caller(request: Request[Any, Any, Any]) -> Caller:
    caller = request.scope.get("state", {}).get("caller")
    if caller is None:  # only reachable if a public route asks for a caller: a programming error
        raise Problem(401, "auth.required", "ログインが必要です。")
    assert isinstance(caller, Caller)
    return caller


def request_id(request: Request[Any, Any, Any]) -> str | None:
    value = request.scope.get("state", {}).get("request_id")
    return str(value) if value else None
